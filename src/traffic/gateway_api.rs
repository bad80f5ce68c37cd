//! The `gatewayAPI` router: an HTTPRoute (gateway.networking.k8s.io/v1) with weighted backendRefs to
//! the stable and candidate Services, and a RequestMirror filter with a percentage while mirroring.

use kube::ResourceExt;
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::{RouteObject, Split, TrafficRouter};
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
    fn route(&self, md: &ModelDeployment, split: &Split) -> Option<RouteObject> {
        let settings = md.spec.traffic.as_ref()?.gateway_api.as_ref()?;
        let port = service::port(md);
        let backend =
            |role: &str, weight: i32| json!({"name": service::name(md, role), "port": port, "weight": weight});
        let mut backends = vec![backend("stable", split.stable)];
        if split.has_candidate {
            backends.push(backend("candidate", split.candidate));
        }
        let mut rule = json!({ "backendRefs": backends });
        if split.mirror > 0 {
            rule["filters"] = json!([{
                "type": "RequestMirror",
                "requestMirror": {"backendRef": {"name": service::name(md, "mirror"), "port": port}, "percent": split.mirror},
            }]);
        }
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
        let mut spec = json!({"parentRefs": parent_refs, "rules": [rule]});
        if let Some(h) = &settings.hostnames {
            spec["hostnames"] = json!(h);
        }
        let meta = crate::resources::meta(md, &md.name_any(), Default::default());
        Some(RouteObject {
            resource: http_route_resource(),
            name: md.name_any(),
            body: json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta, "spec": spec}),
        })
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

    #[test]
    fn weighted_backends_and_mirror() {
        // (split, expected backends (name, weight), expected mirror percent)
        let table = [
            (Split { stable: 100, candidate: 0, mirror: 0, has_candidate: false }, vec![("fraud", 100)], None),
            (
                Split { stable: 90, candidate: 10, mirror: 0, has_candidate: true },
                vec![("fraud", 90), ("fraud-candidate", 10)],
                None,
            ),
            (
                Split { stable: 100, candidate: 0, mirror: 50, has_candidate: true },
                vec![("fraud", 100), ("fraud-candidate", 0)],
                Some(50),
            ),
        ];
        for (split, backends, mirror) in table {
            let route = GatewayApi.route(&md(), &split).unwrap();
            let rule = &route.body["spec"]["rules"][0];
            let got: Vec<(String, i64)> = rule["backendRefs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| (b["name"].as_str().unwrap().to_string(), b["weight"].as_i64().unwrap()))
                .collect();
            let want: Vec<(String, i64)> = backends.iter().map(|(n, w)| (n.to_string(), *w)).collect();
            assert_eq!(got, want, "{split:?}");
            assert_eq!(rule["filters"][0]["requestMirror"]["percent"].as_i64(), mirror.map(i64::from), "{split:?}");
            assert_eq!(route.body["spec"]["parentRefs"][0]["namespace"], "gateways");
            assert_eq!(route.body["spec"]["hostnames"][0], "fraud.example.com");
            assert_eq!(route.body["metadata"]["ownerReferences"][0]["kind"], "ModelDeployment");
        }
    }
}
