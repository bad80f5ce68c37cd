//! The `gatewayAPI` router: an HTTPRoute (gateway.networking.k8s.io/v1) with weighted backendRefs, one
//! RequestMirror filter per mirror (with `percent`), and, for a sticky header, one rule per backend
//! matching the header values of its bucket (see [`super::sticky`]) ahead of the weighted rule.

use kube::ResourceExt;
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::{Capabilities, RouteObject, Routing, TrafficRouter, sticky};
use crate::api::ModelDeployment;
use crate::resources::service;

/// The Gateway API router.
pub struct GatewayApi;

/// The HTTPRoute API.
pub fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
}

impl TrafficRouter for GatewayApi {
    fn capabilities(&self) -> Capabilities {
        Capabilities { exact_split: true, mirror: true, header_match: true }
    }

    fn objects(&self, md: &ModelDeployment, routing: &Routing) -> Vec<RouteObject> {
        let Some(settings) = md.spec.traffic.as_ref().and_then(|t| t.gateway_api.as_ref()) else {
            return Vec::new();
        };
        let port = service::port(md);
        let backend = |name: &str, weight: i32| json!({"name": name, "port": port, "weight": weight});
        let filters: Vec<Value> = routing
            .mirrors
            .iter()
            .map(|m| {
                json!({"type": "RequestMirror",
                       "requestMirror": {"backendRef": {"name": m.service, "port": port}, "percent": m.percent}})
            })
            .collect();
        let with_filters = |mut rule: Value| {
            if !filters.is_empty() {
                rule["filters"] = json!(filters);
            }
            rule
        };
        let mut rules = Vec::new();
        if let Some(header) = &routing.sticky_header {
            for b in sticky::buckets(&routing.backends) {
                rules.push(with_filters(json!({
                    "matches": [{"headers": [{"type": "RegularExpression", "name": header, "value": b.regex}]}],
                    "backendRefs": [backend(&b.service, 1)],
                })));
            }
        }
        let backends: Vec<Value> = routing.backends.iter().map(|b| backend(&b.service, b.weight)).collect();
        rules.push(with_filters(json!({ "backendRefs": backends })));
        let parent_refs: Vec<Value> = settings
            .parent_refs
            .iter()
            .map(|p| {
                let mut r = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": p.name});
                if let Some(ns) = &p.namespace {
                    r["namespace"] = json!(ns);
                }
                if let Some(s) = &p.section_name {
                    r["sectionName"] = json!(s);
                }
                r
            })
            .collect();
        let mut spec = json!({"parentRefs": parent_refs, "rules": rules});
        if let Some(h) = &settings.hostnames {
            spec["hostnames"] = json!(h);
        }
        let meta = crate::resources::meta(md, &md.name_any(), Default::default());
        vec![RouteObject {
            resource: http_route_resource(),
            name: md.name_any(),
            body: json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta, "spec": spec}),
        }]
    }

    fn resource(&self) -> Option<ApiResource> {
        Some(http_route_resource())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model_deployment::{GatewayApiTraffic, ParentRef, Router, Traffic};
    use crate::fixtures;
    use crate::traffic::{Backend, Mirror};

    fn md() -> ModelDeployment {
        let mut md = fixtures::model_deployment("fraud");
        md.spec.traffic = Some(Traffic {
            router: Some(Router::GatewayApi),
            gateway_api: Some(GatewayApiTraffic {
                parent_refs: vec![ParentRef {
                    name: "public".into(),
                    namespace: Some("gateways".into()),
                    section_name: None,
                }],
                hostnames: Some(vec!["fraud.example.com".into()]),
            }),
            ..Traffic::default()
        });
        md
    }

    fn routing(backends: &[(&str, i32)], mirrors: &[(&str, i32)]) -> Routing {
        Routing {
            backends: backends.iter().map(|(s, w)| Backend::new(s.to_string(), *w)).collect(),
            mirrors: mirrors.iter().map(|(s, p)| Mirror::new(s.to_string(), *p)).collect(),
            sticky_header: None,
            addresses: Default::default(),
        }
    }

    /// `(name, number)` pairs read from each element of `list` at the two JSON pointers.
    fn pairs(list: &Value, name: &str, number: &str) -> Vec<(String, i64)> {
        let items = list.as_array().cloned().unwrap_or_default();
        items
            .iter()
            .map(|v| {
                (v.pointer(name).unwrap().as_str().unwrap().to_string(), v.pointer(number).unwrap().as_i64().unwrap())
            })
            .collect()
    }

    #[test]
    fn weighted_backends_and_mirrors() {
        // (backends, mirrors) -> the last rule's (name, weight)s and its mirror filters' (name, percent)s
        type Pairs<'a> = &'a [(&'a str, i32)];
        let table: &[(Pairs, Pairs)] = &[
            (&[("fraud", 100)], &[]),
            (&[("fraud", 90), ("fraud-candidate", 10)], &[]),
            (&[("fraud", 100), ("fraud-candidate", 0)], &[("fraud-mirror", 50)]),
            (&[("fraud", 60), ("fraud-a", 20), ("fraud-b", 20)], &[("fraud-m1", 10), ("fraud-m2", 100)]),
        ];
        for (backends, mirrors) in table {
            let route = GatewayApi.objects(&md(), &routing(backends, mirrors)).remove(0);
            let rules = route.body["spec"]["rules"].as_array().unwrap();
            assert_eq!(rules.len(), 1, "no sticky header, one rule");
            let got = pairs(&rules[0]["backendRefs"], "/name", "/weight");
            let want: Vec<(String, i64)> = backends.iter().map(|(n, w)| (n.to_string(), i64::from(*w))).collect();
            assert_eq!(got, want);
            let got = pairs(&rules[0]["filters"], "/requestMirror/backendRef/name", "/requestMirror/percent");
            let want: Vec<(String, i64)> = mirrors.iter().map(|(n, p)| (n.to_string(), i64::from(*p))).collect();
            assert_eq!(got, want);
            assert_eq!(route.body["spec"]["parentRefs"][0]["namespace"], "gateways");
            assert_eq!(route.body["spec"]["hostnames"][0], "fraud.example.com");
            assert_eq!(route.body["metadata"]["ownerReferences"][0]["kind"], "ModelDeployment");
        }
    }

    #[test]
    fn a_sticky_header_adds_one_matching_rule_per_bucket_before_the_weighted_rule() {
        let mut r = routing(&[("fraud", 50), ("fraud-b", 50)], &[("fraud-m", 5)]);
        r.sticky_header = Some("x-user-id".into());
        let route = GatewayApi.objects(&md(), &r).remove(0);
        let rules = route.body["spec"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 3);
        for (rule, service) in rules.iter().zip(["fraud", "fraud-b"]) {
            let m = &rule["matches"][0]["headers"][0];
            assert_eq!((m["type"].as_str(), m["name"].as_str()), (Some("RegularExpression"), Some("x-user-id")));
            assert_eq!(rule["backendRefs"][0]["name"], service);
            assert_eq!(rule["filters"][0]["requestMirror"]["percent"], 5, "mirrors apply to sticky requests too");
        }
        assert!(rules[2].get("matches").is_none(), "the weighted rule matches everything else");
    }

    #[test]
    fn no_settings_no_object() {
        let mut plain = md();
        plain.spec.traffic = None;
        assert!(GatewayApi.objects(&plain, &routing(&[("fraud", 100)], &[])).is_empty());
    }
}
