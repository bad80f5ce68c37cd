//! Tables for the build step: replica counts per revision, Services, routing, deletions and the write
//! filter.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::*;
use crate::api::model_deployment::{GatewayApiTraffic, ParentRef, RevisionRef, ScaleDown, Traffic, Weights};
use crate::api::{DeploymentPhase, ModelDeploymentStatus};
use crate::fixtures;
use crate::rollout::revision;
use crate::traffic::istio::virtual_service_resource;

fn rev(version: &str, revision: i64, hash: &str) -> Option<RevisionRef> {
    Some(RevisionRef { version: version.into(), revision, hash: Some(hash.into()), registry: None })
}

fn decision(status: ModelDeploymentStatus) -> Decision {
    Decision { status, conditions: vec![], events: vec![], requeue_after: None }
}

fn md(router: Router, replicas: i32) -> ModelDeployment {
    let mut md = fixtures::model_deployment("fraud");
    md.metadata.uid = Some("uid-1".into());
    md.spec.replicas = Some(replicas);
    md.spec.traffic = Some(Traffic {
        router: Some(router),
        gateway_api: Some(GatewayApiTraffic {
            parent_refs: vec![ParentRef { name: "gw".into(), namespace: None, section_name: None }],
            hostnames: None,
        }),
        ..Traffic::default()
    });
    md
}

/// A Deployment of `hash` as the cache would show it: `replicas` asked, `ready` ready.
fn existing(md: &ModelDeployment, hash: &str, replicas: i32, ready: i32) -> Deployment {
    let r = Revision {
        hash: hash.into(),
        version: format!("v-{hash}"),
        uri: "s3://m".into(),
        template: fixtures::pod_template().decode().unwrap(),
        registry: None,
    };
    let mut d = deployment::build(md, &r, replicas, "stable");
    d.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus { ready_replicas: Some(ready), ..Default::default() });
    d
}

fn rolling(step: i32, candidate_weight: i32) -> ModelDeploymentStatus {
    ModelDeploymentStatus {
        phase: Some(DeploymentPhase::Progressing),
        stable: rev("1.0.0", 1, "aaaaaaaaaa"),
        candidate: rev("1.1.0", 2, "bbbbbbbbbb"),
        current_step: Some(step),
        weights: Some(Weights { stable: 100 - candidate_weight, candidate: candidate_weight, mirror: 0 }),
        ..ModelDeploymentStatus::default()
    }
}

fn counts(md: &ModelDeployment, status: ModelDeploymentStatus, observed: &Observed) -> Vec<(String, i32)> {
    replica_counts(md, &decision(status), observed)
}

fn observed(deployments: Vec<Deployment>) -> Observed {
    let deployments =
        deployments.into_iter().map(|d| (d.metadata.labels.as_ref().unwrap()[labels::REVISION].clone(), d)).collect();
    Observed { deployments, ..Observed::default() }
}

fn later(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(2_000_000_000 + secs).unwrap())
}

#[test]
fn replica_counts_per_revision() {
    let gw = md(Router::GatewayApi, 2);
    let rep = md(Router::Replicas, 4);
    let (a, b, c) = ("aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc");
    let promoted = |drain: bool| ModelDeploymentStatus {
        phase: Some(DeploymentPhase::Healthy),
        stable: rev("1.1.0", 2, b),
        history: vec![
            crate::api::model_deployment::HistoryEntry {
                version: "1.1.0".into(),
                revision: 2,
                hash: Some(b.into()),
                promoted_at: None,
                registry: None,
            },
            crate::api::model_deployment::HistoryEntry {
                version: "1.0.0".into(),
                revision: 1,
                hash: Some(a.into()),
                promoted_at: None,
                registry: None,
            },
        ],
        scale_downs: if drain { vec![ScaleDown { hash: a.into(), at: later(30) }] } else { vec![] },
        ..ModelDeploymentStatus::default()
    };
    let rolled_back = |drain: bool| ModelDeploymentStatus {
        phase: Some(DeploymentPhase::RolledBack),
        scale_downs: if drain { vec![ScaleDown { hash: b.into(), at: later(30) }] } else { vec![] },
        ..rolling(0, 0)
    };
    let replaced = ModelDeploymentStatus {
        candidate: rev("1.2.0", 3, c),
        scale_downs: vec![ScaleDown { hash: b.into(), at: later(30) }],
        ..rolling(0, 25)
    };
    // (case, md, status, existing (hash, replicas, ready), expected counts)
    type Case<'a> =
        (&'a str, &'a ModelDeployment, ModelDeploymentStatus, Vec<(&'a str, i32, i32)>, Vec<(&'a str, i32)>);
    let table: Vec<Case> = vec![
        ("gateway, 10%: stable full, one candidate pod", &gw, rolling(0, 10), vec![(a, 2, 2)], vec![(a, 2), (b, 1)]),
        (
            "replicas, 50%, none ready: stable keeps all",
            &rep,
            rolling(3, 50),
            vec![(a, 4, 4), (b, 2, 0)],
            vec![(a, 4), (b, 2)],
        ),
        (
            "replicas, 50%, ready: stable gives way",
            &rep,
            rolling(3, 50),
            vec![(a, 4, 4), (b, 2, 2)],
            vec![(a, 2), (b, 2)],
        ),
        (
            "promoted: the old stable drains at full size",
            &gw,
            promoted(true),
            vec![(a, 2, 2), (b, 2, 2)],
            vec![(b, 2), (a, 2)],
        ),
        (
            "promoted, drained: the old stable goes",
            &gw,
            promoted(false),
            vec![(a, 2, 2), (b, 2, 2)],
            vec![(b, 2), (a, 0)],
        ),
        ("rolled back: the candidate drains", &gw, rolled_back(true), vec![(a, 2, 2), (b, 1, 1)], vec![(a, 2), (b, 1)]),
        ("rolled back, drained", &gw, rolled_back(false), vec![(a, 2, 2), (b, 1, 1)], vec![(a, 2), (b, 0)]),
        (
            "gateway, replaced candidate drains",
            &gw,
            replaced.clone(),
            vec![(a, 2, 2), (b, 1, 1)],
            vec![(a, 2), (c, 1), (b, 1)],
        ),
        (
            "replicas, replaced candidate goes at once",
            &rep,
            replaced,
            vec![(a, 4, 4), (b, 1, 1)],
            vec![(a, 4), (c, 1), (b, 0)],
        ),
    ];
    for (case, md, status, have, want) in table {
        let obs = observed(have.iter().map(|(h, n, r)| existing(md, h, *n, *r)).collect());
        let got = counts(md, status, &obs);
        let want: Vec<(String, i32)> = want.iter().map(|(h, n)| (h.to_string(), *n)).collect();
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn promotion_moves_selectors_and_route_first_and_scales_down_after_the_delay() {
    let md = md(Router::GatewayApi, 2);
    let target = revision::target(&md.spec).unwrap();
    let (old, new) = ("aaaaaaaaaa", target.hash.as_str());
    let mut status = ModelDeploymentStatus {
        phase: Some(DeploymentPhase::Healthy),
        stable: rev("1.0.0", 2, new),
        weights: Some(Weights { stable: 100, candidate: 0, mirror: 0 }),
        scale_downs: vec![ScaleDown { hash: old.into(), at: later(30) }],
        ..ModelDeploymentStatus::default()
    };
    status.history = vec![crate::api::model_deployment::HistoryEntry {
        version: "0.9.0".into(),
        revision: 1,
        hash: Some(old.into()),
        promoted_at: None,
        registry: None,
    }];
    let mut obs = observed(vec![existing(&md, old, 2, 2), existing(&md, new, 2, 2)]);
    for role in ["stable", "candidate"] {
        let s = service::build(&md, role, BTreeMap::new());
        obs.services.insert(s.metadata.name.clone().unwrap(), s);
    }
    let vs: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "fraud"}}),
    )
    .unwrap();
    obs.routes.push((virtual_service_resource(), vs));
    let d = desired(&md, &target, &decision(status.clone()), &obs, &Routing::default(), "router:test");
    let stable = d.services.iter().find(|s| s.metadata.name.as_deref() == Some("fraud")).unwrap();
    assert_eq!(
        stable.spec.as_ref().unwrap().selector.as_ref().unwrap()[labels::REVISION],
        new,
        "selector on the new stable"
    );
    assert_eq!(d.routes.len(), 1);
    assert_eq!(d.routes[0].resource.kind, "HTTPRoute");
    assert_eq!(
        d.routes[0].body["spec"]["rules"][0]["backendRefs"],
        json!([{"name": "fraud", "port": 8080, "weight": 100}])
    );
    assert!(d.scale_down.is_empty(), "nothing loses pods while the old stable drains");
    assert_eq!(d.delete_services, ["fraud-candidate"], "the candidate Service goes after the route left it");
    assert_eq!(
        d.delete_routes.iter().map(|(r, n)| (r.kind.as_str(), n.as_str())).collect::<Vec<_>>(),
        [("VirtualService", "fraud")]
    );
    // After the delay.
    status.scale_downs.clear();
    let d = desired(&md, &target, &decision(status), &obs, &Routing::default(), "router:test");
    assert_eq!(d.scale_down.len(), 1);
    assert_eq!(d.scale_down[0].spec.as_ref().unwrap().replicas, Some(0));
    assert_eq!(d.scale_down[0].metadata.name.as_deref(), Some(format!("fraud-{old}").as_str()));
}

#[test]
fn the_replicas_router_shares_the_stable_service_only_while_rolling() {
    let md = md(Router::Replicas, 4);
    let target = revision::target(&md.spec).unwrap();
    let obs = observed(vec![existing(&md, "aaaaaaaaaa", 4, 4)]);
    let selector = |status: ModelDeploymentStatus| {
        let d = desired(&md, &target, &decision(status), &obs, &Routing::default(), "router:test");
        assert!(
            d.routes.is_empty() && d.delete_routes.is_empty(),
            "no routing object, none deleted that does not exist"
        );
        d.services[0].spec.clone().unwrap().selector.unwrap()
    };
    assert!(!selector(rolling(0, 25)).contains_key(labels::REVISION), "both revisions behind one Service");
    let done = ModelDeploymentStatus { phase: Some(DeploymentPhase::RolledBack), ..rolling(0, 0) };
    assert_eq!(selector(done)[labels::REVISION], "aaaaaaaaaa", "traffic leaves the candidate's pods by selector");
}

#[test]
fn routing_carries_extra_backends_and_mirrors() {
    let md = md(Router::GatewayApi, 2);
    let mut status = rolling(0, 10);
    status.weights = Some(Weights { stable: 90, candidate: 10, mirror: 50 });
    let extra = Routing {
        backends: vec![Backend::new("fraud-challenger", 20)],
        mirrors: vec![],
        sticky_header: Some("x-user".into()),
        addresses: Default::default(),
    };
    let r = routing(&md, &decision(status), &extra);
    let got: Vec<(&str, i32)> = r.backends.iter().map(|b| (b.service.as_str(), b.weight)).collect();
    assert_eq!(got, [("fraud", 70), ("fraud-candidate", 10), ("fraud-challenger", 20)]);
    let variants: Vec<&str> = r.backends.iter().map(|b| b.variant.as_str()).collect();
    assert_eq!(variants, ["stable", "candidate", ""]);
    let version = r.mirrors[0].version.clone();
    assert_eq!(r.mirrors, [Mirror { variant: "mirror".into(), version, ..Mirror::new("fraud-mirror", 50) }]);
    assert_eq!(r.sticky_header.as_deref(), Some("x-user"));
    assert_eq!(r.weight_of("fraud-challenger"), 20);
}

#[test]
fn up_to_date_ignores_what_others_add_and_sees_what_differs() {
    let desired =
        json!({"spec": {"replicas": 2, "ports": [{"port": 8080}], "w": 30.0}, "metadata": {"labels": {"a": "1"}}});
    let table = [
        (
            json!({"spec": {"replicas": 2, "ports": [{"port": 8080, "protocol": "TCP"}], "w": 30}, "metadata": {"labels": {"a": "1", "b": "2"}, "uid": "x"}}),
            true,
        ),
        (
            json!({"spec": {"replicas": 3, "ports": [{"port": 8080}], "w": 30}, "metadata": {"labels": {"a": "1"}}}),
            false,
        ),
        (
            json!({"spec": {"replicas": 2, "ports": [{"port": 8080}, {"port": 9090}], "w": 30}, "metadata": {"labels": {"a": "1"}}}),
            false,
        ),
        (
            json!({"spec": {"replicas": 2, "ports": [{"port": 8080}], "w": 31}, "metadata": {"labels": {"a": "2"}}}),
            false,
        ),
        (json!({"spec": {"replicas": 2, "ports": [{"port": 8080}], "w": 30}, "metadata": {}}), false),
    ];
    for (current, want) in table {
        assert_eq!(up_to_date(&desired, &current), want, "{current}");
    }
    // A generated Deployment compared with itself as the API server returns it (defaults added).
    let md = md(Router::GatewayApi, 2);
    let d = existing(&md, "aaaaaaaaaa", 2, 2);
    let mut served = serde_json::to_value(&d).unwrap();
    served["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    served["metadata"]["resourceVersion"] = json!("42");
    assert!(up_to_date(&serde_json::to_value(&d).unwrap(), &served));
    served["spec"]["replicas"] = json!(5);
    assert!(!up_to_date(&serde_json::to_value(&d).unwrap(), &served), "a hand scale is put back");
}

#[test]
fn a_field_the_operator_stops_setting_is_a_change() {
    // The replicas router drops the revision from the stable Service's selector during a rollout; the
    // object applied before still has it, which containment alone would call up to date.
    let md = md(Router::Replicas, 4);
    let narrow = service::build(&md, "stable", deployment::selector(&md, "aaaaaaaaaa"));
    let wide = service::build(&md, "stable", BTreeMap::from([(labels::DEPLOYMENT.to_string(), "fraud".to_string())]));
    let applied = with_applied_hash(serde_json::to_value(&narrow).unwrap());
    assert!(up_to_date(&serde_json::to_value(&wide).unwrap(), &applied), "containment alone misses it");
    assert!(!up_to_date(&with_applied_hash(serde_json::to_value(&wide).unwrap()), &applied));
    assert!(up_to_date(&with_applied_hash(serde_json::to_value(&narrow).unwrap()), &applied), "unchanged: no write");
}

#[test]
fn the_builtin_router_takes_the_stable_service_only_once_ready_and_gives_it_back_before_it_goes() {
    let md = md(Router::Builtin, 2);
    let target = revision::target(&md.spec).unwrap();
    let status = rolling(0, 10);
    let selector_of = |d: &DesiredObjects, name: &str| {
        let s = d.services.iter().find(|s| s.metadata.name.as_deref() == Some(name)).expect(name);
        s.spec.clone().unwrap().selector.unwrap()
    };
    let mut obs = observed(vec![existing(&md, "aaaaaaaaaa", 2, 2), existing(&md, "bbbbbbbbbb", 1, 1)]);

    // The Services the router sends to have no ClusterIP yet: no configuration is written (and none deleted).
    let held: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fraud-router"}}))
            .unwrap();
    obs.routes.push((crate::traffic::builtin::config_map_resource(), held));
    let d = desired(&md, &target, &decision(status.clone()), &obs, &Routing::default(), "router:test");
    assert!(d.routes.is_empty() && d.delete_routes.is_empty(), "{:?} {:?}", d.routes, d.delete_routes);
    obs.routes.clear();
    for (role, ip) in [("primary", "10.0.0.1"), ("candidate", "10.0.0.2")] {
        let mut s = service::build(&md, role, BTreeMap::new());
        s.spec.as_mut().unwrap().cluster_ip = Some(ip.into());
        obs.services.insert(s.metadata.name.clone().unwrap(), s);
    }

    // No router yet: its Deployment comes first, the ConfigMap is written, stable keeps the Service.
    let d = desired(&md, &target, &decision(status.clone()), &obs, &Routing::default(), "router:test");
    assert_eq!(d.scale_up[0].metadata.name.as_deref(), Some("fraud-router"));
    assert_eq!(
        d.scale_up[0].spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("router:test")
    );
    assert_eq!(selector_of(&d, "fraud")[labels::REVISION], "aaaaaaaaaa", "no request meets a router that is not ready");
    assert_eq!(selector_of(&d, "fraud-primary")[labels::REVISION], "aaaaaaaaaa");
    assert_eq!(
        (d.routes.len(), d.routes[0].resource.kind.as_str(), d.routes[0].name.as_str()),
        (1, "ConfigMap", "fraud-router")
    );
    let config: champion_router::config::RouterConfig =
        serde_json::from_str(d.routes[0].body["data"]["router.json"].as_str().unwrap()).unwrap();
    let split: Vec<(&str, &str, u32)> =
        config.backends.iter().map(|b| (b.name.as_str(), b.address.as_str(), b.weight)).collect();
    assert_eq!(split, [("stable", "10.0.0.1:8080", 90), ("candidate", "10.0.0.2:8080", 10)]);

    // The router is ready: the stable Service selects its pods.
    let mut router = crate::resources::router::deployment(&md, "router:test");
    router.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
        ready_replicas: Some(2),
        updated_replicas: Some(2),
        ..Default::default()
    });
    obs.router = Some(router);
    let d = desired(&md, &target, &decision(status.clone()), &obs, &Routing::default(), "router:test");
    assert_eq!(selector_of(&d, "fraud"), crate::resources::router::pod_selector(&md));
    assert!(d.delete_deployments.is_empty());

    // Another router named: the stable Service goes back to stable's pods, then the router goes.
    let other = self::md(Router::GatewayApi, 2);
    let config_map: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fraud-router"}}))
            .unwrap();
    obs.routes.push((crate::traffic::builtin::config_map_resource(), config_map));
    let d = desired(&other, &target, &decision(status), &obs, &Routing::default(), "router:test");
    assert_eq!(selector_of(&d, "fraud")[labels::REVISION], "aaaaaaaaaa");
    assert!(!d.scale_up.iter().any(|x| x.metadata.name.as_deref() == Some("fraud-router")));
    assert_eq!(d.delete_deployments, ["fraud-router"]);
    assert_eq!(
        d.delete_routes.iter().map(|(r, n)| (r.kind.as_str(), n.as_str())).collect::<Vec<_>>(),
        [("ConfigMap", "fraud-router")]
    );
}

#[test]
fn the_builtin_router_reaches_an_experiments_variants_by_the_addresses_it_contributes() {
    let md = md(Router::Builtin, 2);
    let target = revision::target(&md.spec).unwrap();
    let status = ModelDeploymentStatus {
        phase: Some(DeploymentPhase::Healthy),
        stable: rev("1.0.0", 1, "aaaaaaaaaa"),
        weights: Some(Weights { stable: 100, candidate: 0, mirror: 0 }),
        ..ModelDeploymentStatus::default()
    };
    let mut obs = observed(vec![existing(&md, "aaaaaaaaaa", 2, 2)]);
    let mut primary = service::build(&md, "primary", BTreeMap::new());
    primary.spec.as_mut().unwrap().cluster_ip = Some("10.0.0.1".into());
    obs.services.insert("fraud-primary".into(), primary);
    let mut extra = Routing {
        mirrors: vec![Mirror { variant: "flips".into(), ..Mirror::new("fraud-x12345678", 100) }],
        ..Routing::default()
    };
    let d = desired(&md, &target, &decision(status.clone()), &obs, &extra, "router:test");
    assert!(d.routes.is_empty(), "held until the variant's Service has an address");
    extra.addresses.insert("fraud-x12345678".into(), "10.0.0.9".into());
    let d = desired(&md, &target, &decision(status), &obs, &extra, "router:test");
    let config: champion_router::config::RouterConfig =
        serde_json::from_str(d.routes[0].body["data"]["router.json"].as_str().unwrap()).unwrap();
    assert_eq!((config.shadows[0].name.as_str(), config.shadows[0].address.as_str()), ("flips", "10.0.0.9:8080"));
}
