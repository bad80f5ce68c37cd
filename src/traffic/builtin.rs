//! The `builtin` router: Champion's own `champion-router`, one per ModelDeployment. What it reads is a
//! ConfigMap `<name>-router` holding the router's configuration document (the types are the router
//! crate's own, so the two cannot drift): the backends by exact weight, the mirrors as shadows whose
//! answers are compared with the live ones, the sticky header, the comparison and feedback settings.
//! Rewriting it is how traffic moves; the router reloads it without dropping connections. The router's
//! Deployment and the Service in front of stable are built by [`crate::resources::router`].

use champion_router::config::{
    Backend as RouterBackend, CompareMode as RouterCompare, Comparison, Feedback, PredictionLog, RouterConfig, Shadow,
    Sticky, Upstream,
};
use kube::ResourceExt;
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use super::{Capabilities, RouteObject, Routing, TrafficRouter};
use crate::api::ModelDeployment;
use crate::api::model_deployment::{BuiltinTraffic, CompareMode};
use crate::resources::{router, service};

/// The built-in router.
pub struct Builtin;

/// The ConfigMap API.
pub fn config_map_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "ConfigMap"), "configmaps")
}

/// A short hash of the router configuration among `routes` (the ConfigMap `<name>-router`), if they hold it:
/// the value of [`crate::names::annotations::ROUTER_CONFIG`] on router pods once they were told of it.
pub fn config_hash(md: &ModelDeployment, routes: &[RouteObject]) -> Option<String> {
    let name = router::name(md);
    let route = routes.iter().find(|r| r.resource.kind == "ConfigMap" && r.name == name)?;
    let document = route.body.get("data")?.get(router::CONFIG_KEY)?.as_str()?;
    Some(crate::rollout::desired::short_hash(document.as_bytes()))
}

/// The router pods (by name) to tell of the configuration with `hash`: those not yet annotated with it and
/// not going away.
pub fn pods_to_tell<'a>(pods: &'a [k8s_openapi::api::core::v1::Pod], hash: &str) -> Vec<&'a str> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.annotations().get(crate::names::annotations::ROUTER_CONFIG).map(String::as_str) != Some(hash))
        .filter_map(|p| p.metadata.name.as_deref())
        .collect()
}

/// Where a Service of `md` is reached from the router's pods: its ClusterIP (no DNS lookup on the data
/// path, and no dependency on cluster DNS), else `<service>.<namespace>.svc`, at the Services' port.
fn address(md: &ModelDeployment, routing: &Routing, service: &str) -> String {
    let port = service::port(md);
    match routing.addresses.get(service) {
        Some(ip) if ip.contains(':') => format!("[{ip}]:{port}"),
        Some(ip) => format!("{ip}:{port}"),
        None => format!("{service}.{}.svc:{port}", md.namespace().unwrap_or_default()),
    }
}

/// The Service each backend and mirror of `routing` is reached through (stable's is `<name>-primary`).
pub fn services(md: &ModelDeployment, routing: &Routing) -> Vec<String> {
    let stable = service::name(md, "stable");
    let target = |s: &String| if *s == stable { router::primary_service(md) } else { s.clone() };
    routing
        .backends
        .iter()
        .map(|b| target(&b.service))
        .chain(routing.mirrors.iter().map(|m| target(&m.service)))
        .collect()
}

/// The variant name of a backend or mirror (its Service's name when the contributor named none).
fn variant(name: &str, service: &str) -> String {
    if name.is_empty() { service.to_string() } else { name.to_string() }
}

/// The router's configuration for `routing`. The stable backend (the stable Service, which fronts the
/// router itself) is reached through `<name>-primary`.
pub fn config(md: &ModelDeployment, routing: &Routing) -> RouterConfig {
    let settings: BuiltinTraffic = md.spec.traffic.as_ref().and_then(|t| t.builtin.clone()).unwrap_or_default();
    let stable = service::name(md, "stable");
    let backends = routing
        .backends
        .iter()
        .map(|b| {
            let target = if b.service == stable { router::primary_service(md) } else { b.service.clone() };
            RouterBackend {
                name: variant(&b.variant, &b.service),
                address: address(md, routing, &target),
                weight: b.weight.max(0) as u32,
                model_version: b.version.clone(),
            }
        })
        .collect();
    let shadows = routing
        .mirrors
        .iter()
        .map(|m| Shadow {
            name: variant(&m.variant, &m.service),
            address: address(md, routing, &m.service),
            model_version: m.version.clone(),
            mirror_percent: f64::from(m.percent.clamp(0, 100)),
            ..default_shadow()
        })
        .collect();
    let comparison = settings.comparison.as_ref().map(|c| Comparison {
        path: c.path.clone(),
        mode: match c.mode {
            CompareMode::Exact => RouterCompare::Exact,
            CompareMode::Numeric => RouterCompare::Numeric { tolerance: c.tolerance.unwrap_or(0.0) },
            CompareMode::TopK => RouterCompare::TopK { k: c.k.unwrap_or(1) },
        },
    });
    RouterConfig {
        backends,
        sticky: routing.sticky_header.as_ref().map(|h| Sticky { header: h.to_ascii_lowercase() }),
        shadows,
        comparison,
        prediction_log: PredictionLog {
            body_sample_percent: settings.log_body_percent.unwrap_or(0.0),
            ..PredictionLog::default()
        },
        feedback: Feedback { label_path: settings.label_path.clone(), ..Feedback::default() },
        upstream: Upstream::default(),
    }
}

/// A shadow with the router's defaults (concurrency, body and time limits), for the fields the operator
/// does not set.
fn default_shadow() -> Shadow {
    serde_json::from_value(json!({"name": "", "address": ""})).expect("a shadow with only the required fields")
}

impl TrafficRouter for Builtin {
    fn capabilities(&self) -> Capabilities {
        Capabilities { exact_split: true, mirror: true, header_match: true }
    }

    fn objects(&self, md: &ModelDeployment, routing: &Routing) -> Vec<RouteObject> {
        let name = router::name(md);
        let document = serde_json::to_string_pretty(&config(md, routing)).unwrap_or_default();
        let meta = crate::resources::meta(md, &name, Default::default());
        vec![RouteObject {
            resource: config_map_resource(),
            name,
            body: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                         "data": {router::CONFIG_KEY: document}}),
        }]
    }

    fn resource(&self) -> Option<ApiResource> {
        Some(config_map_resource())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model_deployment::{Router, ShadowComparison, Traffic};
    use crate::fixtures;
    use crate::traffic::{Backend, Mirror};

    fn md() -> ModelDeployment {
        let mut md = fixtures::model_deployment("fraud");
        md.spec.traffic = Some(Traffic {
            router: Some(Router::Builtin),
            builtin: Some(BuiltinTraffic {
                comparison: Some(ShadowComparison {
                    path: "label".into(),
                    mode: CompareMode::TopK,
                    k: Some(2),
                    ..ShadowComparison::default()
                }),
                ..BuiltinTraffic::default()
            }),
            ..Traffic::default()
        });
        md
    }

    #[test]
    fn backends_shadows_and_comparison() {
        let md = md();
        let routing = Routing {
            backends: vec![
                Backend { service: "fraud".into(), weight: 70, variant: "stable".into(), version: Some("1".into()) },
                Backend {
                    service: "fraud-candidate".into(),
                    weight: 30,
                    variant: "candidate".into(),
                    version: Some("2".into()),
                },
            ],
            mirrors: vec![Mirror::new("fraud-xabc", 25)],
            sticky_header: Some("X-User".into()),
            addresses: Default::default(),
        };
        let mut c = config(&md, &routing);
        let ns = md.namespace().unwrap();
        let rows: Vec<(&str, String, u32, Option<&str>)> = c
            .backends
            .iter()
            .map(|b| (b.name.as_str(), b.address.clone(), b.weight, b.model_version.as_deref()))
            .collect();
        assert_eq!(
            rows,
            [
                ("stable", format!("fraud-primary.{ns}.svc:8080"), 70, Some("1")),
                ("candidate", format!("fraud-candidate.{ns}.svc:8080"), 30, Some("2")),
            ]
        );
        assert_eq!(c.shadows.len(), 1);
        assert_eq!((c.shadows[0].name.as_str(), c.shadows[0].mirror_percent), ("fraud-xabc", 25.0));
        assert_eq!(c.shadows[0].address, format!("fraud-xabc.{ns}.svc:8080"));
        assert_eq!(c.sticky.clone().unwrap().header, "x-user");
        // Observed Services are reached by ClusterIP.
        let mut routing = routing;
        routing.addresses =
            [("fraud-primary".to_string(), "10.0.0.7".to_string()), ("fraud-xabc".into(), "fd00::9".into())].into();
        c = config(&md, &routing);
        assert_eq!(c.backends[0].address, "10.0.0.7:8080");
        assert_eq!(c.backends[1].address, format!("fraud-candidate.{ns}.svc:8080"));
        assert_eq!(c.shadows[0].address, "[fd00::9]:8080");
        assert_eq!(services(&md, &routing), ["fraud-primary", "fraud-candidate", "fraud-xabc"]);
        let comparison = c.comparison.unwrap();
        assert_eq!((comparison.path.as_str(), comparison.mode), ("label", RouterCompare::TopK { k: 2 }));
    }

    #[test]
    fn the_config_map_holds_a_document_the_router_accepts() {
        let md = md();
        let routing = Routing { backends: vec![Backend::new("fraud", 100)], ..Routing::default() };
        let objects = Builtin.objects(&md, &routing);
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].name, "fraud-router");
        let text = objects[0].body["data"][router::CONFIG_KEY].as_str().unwrap();
        let parsed = RouterConfig::parse(text).expect("the router's own parser and rules accept it");
        assert_eq!(parsed.backends[0].name, "fraud");
    }

    #[test]
    fn the_hash_follows_the_document_and_pods_not_told_of_it_are_named() {
        let md = md();
        let at = |weight| {
            let routing = Routing {
                backends: vec![Backend::new("fraud", 100 - weight), Backend::new("fraud-canary", weight)],
                ..Routing::default()
            };
            Builtin.objects(&md, &routing)
        };
        let (ten, twenty) = (config_hash(&md, &at(10)).unwrap(), config_hash(&md, &at(20)).unwrap());
        assert_eq!(ten.len(), 16);
        assert_eq!(config_hash(&md, &at(10)).as_deref(), Some(ten.as_str()));
        assert_ne!(ten, twenty);
        assert_eq!(config_hash(&md, &[]), None);

        let pod = |name: &str, told: Option<&str>, going: bool| {
            let mut p = k8s_openapi::api::core::v1::Pod::default();
            p.metadata.name = Some(name.into());
            if let Some(h) = told {
                p.annotations_mut().insert(crate::names::annotations::ROUTER_CONFIG.into(), h.into());
            }
            if going {
                p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ));
            }
            p
        };
        let pods = [
            pod("new", None, false),
            pod("told", Some(&twenty), false),
            pod("stale", Some(&ten), false),
            pod("going", None, true),
        ];
        assert_eq!(pods_to_tell(&pods, &twenty), ["new", "stale"]);
    }
}
