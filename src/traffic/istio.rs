//! The `istio` router: a VirtualService (networking.istio.io/v1) with weighted routes, `mirrors` (one
//! per mirror, each with its percentage), and, for a sticky header, one route per backend matching the
//! header values of its bucket (see [`super::sticky`]) ahead of the weighted route.

use kube::ResourceExt;
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::{Capabilities, RouteObject, Routing, TrafficRouter, sticky};
use crate::api::ModelDeployment;
use crate::resources::service;

/// The Istio router.
pub struct Istio;

/// The VirtualService API.
pub fn virtual_service_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService"),
        "virtualservices",
    )
}

/// The cluster-local host name of a Service in the ModelDeployment's namespace.
fn host(md: &ModelDeployment, service: &str) -> String {
    format!("{service}.{}.svc.cluster.local", md.namespace().unwrap_or_default())
}

impl TrafficRouter for Istio {
    fn capabilities(&self) -> Capabilities {
        Capabilities { exact_split: true, mirror: true, header_match: true }
    }

    fn objects(&self, md: &ModelDeployment, routing: &Routing) -> Vec<RouteObject> {
        let Some(settings) = md.spec.traffic.as_ref().and_then(|t| t.istio.as_ref()) else {
            return Vec::new();
        };
        let port = service::port(md);
        let destination = |service: &str, weight: i32| json!({"destination": {"host": host(md, service), "port": {"number": port}}, "weight": weight});
        let mirrors: Vec<Value> = routing
            .mirrors
            .iter()
            .map(|m| {
                json!({"destination": {"host": host(md, &m.service), "port": {"number": port}},
                       "percentage": {"value": f64::from(m.percent)}})
            })
            .collect();
        let with_mirrors = |mut http: Value| {
            if !mirrors.is_empty() {
                http["mirrors"] = json!(mirrors);
            }
            http
        };
        let mut http = Vec::new();
        if let Some(header) = &routing.sticky_header {
            for (i, b) in sticky::buckets(&routing.backends).iter().enumerate() {
                http.push(with_mirrors(json!({
                    "name": format!("sticky-{i}"),
                    "match": [{"headers": {header: {"regex": b.regex}}}],
                    "route": [destination(&b.service, 100)],
                })));
            }
        }
        let routes: Vec<Value> = routing.backends.iter().map(|b| destination(&b.service, b.weight)).collect();
        http.push(with_mirrors(json!({"name": "primary", "route": routes})));
        let mut spec = json!({"hosts": settings.hosts, "http": http});
        if let Some(g) = &settings.gateways {
            spec["gateways"] = json!(g);
        }
        let meta = crate::resources::meta(md, &md.name_any(), Default::default());
        vec![RouteObject {
            resource: virtual_service_resource(),
            name: md.name_any(),
            body: json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta, "spec": spec}),
        }]
    }

    fn resource(&self) -> Option<ApiResource> {
        Some(virtual_service_resource())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model_deployment::{IstioTraffic, Router, Traffic};
    use crate::fixtures;
    use crate::traffic::{Backend, Mirror};

    fn md() -> ModelDeployment {
        let mut md = fixtures::model_deployment("fraud");
        md.spec.traffic = Some(Traffic {
            router: Some(Router::Istio),
            istio: Some(IstioTraffic { hosts: vec!["fraud".into()], gateways: None }),
            ..Traffic::default()
        });
        md
    }

    #[test]
    fn weighted_routes_and_mirrors() {
        let routing = Routing {
            backends: vec![Backend::new("fraud", 80), Backend::new("fraud-candidate", 20)],
            mirrors: vec![Mirror::new("fraud-mirror", 30)],
            sticky_header: None,
            addresses: Default::default(),
        };
        let vs = Istio.objects(&md(), &routing).remove(0);
        let http = &vs.body["spec"]["http"][0];
        assert_eq!(http["route"][0]["destination"]["host"], "fraud.default.svc.cluster.local");
        assert_eq!(http["route"][0]["weight"], 80);
        assert_eq!(http["route"][1]["destination"]["host"], "fraud-candidate.default.svc.cluster.local");
        assert_eq!(http["route"][1]["weight"], 20);
        assert_eq!(http["mirrors"][0]["destination"]["host"], "fraud-mirror.default.svc.cluster.local");
        assert_eq!(http["mirrors"][0]["percentage"]["value"], 30.0);
        let no_mirror = Istio.objects(&md(), &Routing { mirrors: vec![], ..routing.clone() }).remove(0);
        assert!(no_mirror.body["spec"]["http"][0].get("mirrors").is_none());
        let sticky = Istio.objects(&md(), &Routing { sticky_header: Some("x-user".into()), ..routing }).remove(0);
        let http = sticky.body["spec"]["http"].as_array().unwrap();
        assert_eq!(http.len(), 3);
        assert_eq!(
            http[0]["match"][0]["headers"]["x-user"]["regex"].as_str().map(|r| r.starts_with(".*[")),
            Some(true)
        );
        assert_eq!(http[2]["name"], "primary");
    }
}
