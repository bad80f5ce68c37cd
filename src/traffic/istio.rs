//! The `istio` router: a VirtualService (networking.istio.io/v1) with weighted routes to the stable and
//! candidate Services, and `mirror` + `mirrorPercentage` while mirroring.

use kube::ResourceExt;
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use super::{RouteObject, Split, TrafficRouter};
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

/// The cluster-local host name of one of the ModelDeployment's Services.
fn host(md: &ModelDeployment, role: &str) -> String {
    format!("{}.{}.svc.cluster.local", service::name(md, role), md.namespace().unwrap_or_default())
}

impl TrafficRouter for Istio {
    fn route(&self, md: &ModelDeployment, split: &Split) -> Option<RouteObject> {
        let settings = md.spec.traffic.as_ref()?.istio.as_ref()?;
        let port = service::port(md);
        let destination = |role: &str, weight: i32| json!({"destination": {"host": host(md, role), "port": {"number": port}}, "weight": weight});
        let mut routes = vec![destination("stable", split.stable)];
        if split.has_candidate {
            routes.push(destination("candidate", split.candidate));
        }
        let mut http = json!({"name": "primary", "route": routes});
        if split.mirror > 0 {
            http["mirror"] = json!({"host": host(md, "mirror"), "port": {"number": port}});
            http["mirrorPercentage"] = json!({"value": f64::from(split.mirror)});
        }
        let mut spec = json!({"hosts": settings.hosts, "http": [http]});
        if let Some(g) = &settings.gateways {
            spec["gateways"] = json!(g);
        }
        let meta = crate::resources::meta(md, &md.name_any(), Default::default());
        Some(RouteObject {
            resource: virtual_service_resource(),
            name: md.name_any(),
            body: json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta, "spec": spec}),
        })
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

    #[test]
    fn weighted_routes_and_mirror() {
        let mut md = fixtures::model_deployment("fraud");
        md.spec.traffic = Some(Traffic {
            router: Some(Router::Istio),
            istio: Some(IstioTraffic { hosts: vec!["fraud".into()], gateways: None }),
            ..Traffic::default()
        });
        let split = Split { stable: 80, candidate: 20, mirror: 30, has_candidate: true };
        let vs = Istio.route(&md, &split).unwrap();
        let http = &vs.body["spec"]["http"][0];
        assert_eq!(http["route"][0]["destination"]["host"], "fraud.default.svc.cluster.local");
        assert_eq!(http["route"][0]["weight"], 80);
        assert_eq!(http["route"][1]["destination"]["host"], "fraud-candidate.default.svc.cluster.local");
        assert_eq!(http["route"][1]["weight"], 20);
        assert_eq!(http["mirror"]["host"], "fraud-mirror.default.svc.cluster.local");
        assert_eq!(http["mirrorPercentage"]["value"], 30.0);
        let no_mirror = Istio.route(&md, &Split { mirror: 0, ..split }).unwrap();
        assert!(no_mirror.body["spec"]["http"][0].get("mirror").is_none());
    }
}
