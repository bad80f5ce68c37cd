//! The pure build step of a ModelDeployment reconcile: from the decision and what exists, the objects
//! to apply and to delete, grouped in the order that never sends traffic to pods that are going away:
//!
//! 1. `scale_up`: Deployments that are new or keep or gain pods (the pods must exist before traffic);
//! 2. `services`: the Services (selectors move before the route does);
//! 3. `routes`: the routing objects (traffic moves);
//! 4. `scale_down`: Deployments that lose pods (traffic has left them: a revision that traffic left
//!    waits `scaleDownDelay` in `status.scaleDowns` first);
//! 5. `delete_*`: routing objects, then Services, then Deployments that are no longer needed, only
//!    those that exist.
//!
//! [`up_to_date`] tells which of them the cache already shows, so a steady state writes nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use serde_json::Value;

use crate::api::ModelDeployment;
use crate::api::model_deployment::{RevisionRef, Router};
use crate::names::{annotations, labels};
use crate::resources::deployment::{self, Revision};
use crate::resources::router as router_objects;
use crate::resources::service;
use crate::rollout::plan::{self, Decision};
use crate::rollout::replicas;
use crate::rollout::revision::Target;
use crate::traffic::{self, Backend, Mirror, RouteObject, Routing};

/// The variant name of the rollout's mirror (the candidate receiving copies), as the built-in router
/// labels its shadow metrics.
pub const MIRROR_VARIANT: &str = "mirror";

/// What exists for a ModelDeployment (from the controller's caches).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Generated Deployments by revision hash.
    pub deployments: BTreeMap<String, Deployment>,
    /// Generated Services by name.
    pub services: BTreeMap<String, Service>,
    /// Generated routing objects, with their API.
    pub routes: Vec<(ApiResource, DynamicObject)>,
    /// The built-in router's Deployment, when it exists.
    pub router: Option<Deployment>,
}

/// Whether a Deployment has all the pods it asks for ready and up to date.
pub fn is_ready(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let current = status.observed_generation >= d.metadata.generation;
    current && status.ready_replicas.unwrap_or(0) >= want && status.updated_replicas.unwrap_or(0) >= want
}

/// Ready pods of a Deployment.
pub fn ready_replicas(d: Option<&Deployment>) -> i32 {
    d.and_then(|d| d.status.as_ref()).and_then(|s| s.ready_replicas).unwrap_or(0)
}

fn spec_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The objects to apply and delete, in groups applied in field order (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredObjects {
    /// Deployments that are new or keep or gain pods.
    pub scale_up: Vec<Deployment>,
    /// Services.
    pub services: Vec<Service>,
    /// Routing objects.
    pub routes: Vec<RouteObject>,
    /// Deployments that lose pods.
    pub scale_down: Vec<Deployment>,
    /// Routing objects of other routers that exist: (API, name).
    pub delete_routes: Vec<(ApiResource, String)>,
    /// Services that exist and are no longer needed.
    pub delete_services: Vec<String>,
    /// Deployments that exist and are no longer needed.
    pub delete_deployments: Vec<String>,
    /// Revisions that should run but whose Deployment is gone and cannot be rebuilt.
    pub lost: Vec<String>,
}

/// The role a revision plays, as its Deployment's `champion.ml/variant` label says.
fn role(hash: &str, d: &Decision) -> &'static str {
    let is = |r: &Option<crate::api::model_deployment::RevisionRef>| {
        r.as_ref().and_then(|r| r.hash.as_deref()) == Some(hash)
    };
    if is(&d.status.stable) {
        "stable"
    } else if is(&d.status.candidate) {
        "candidate"
    } else {
        "previous"
    }
}

/// Pods per revision hash: stable and candidate by the step's split, revisions waiting in
/// `status.scaleDowns` keep what they have, every other retained revision 0.
pub fn replica_counts(md: &ModelDeployment, d: &Decision, observed: &Observed) -> Vec<(String, i32)> {
    let spec = &md.spec;
    let n = plan::replicas(spec);
    let rolling = d.candidate_active();
    let stable = d.status.stable.as_ref().and_then(|s| s.hash.clone()).unwrap_or_default();
    let candidate = d.status.candidate.as_ref().and_then(|c| c.hash.clone()).filter(|c| *c != stable);
    let candidate_ready = ready_replicas(candidate.as_ref().and_then(|c| observed.deployments.get(c)));
    let pods = if rolling {
        let step = d.status.current_step.unwrap_or(0).max(0) as usize;
        plan::pods_at(spec, step, candidate_ready)
    } else {
        replicas::Split { stable: n, candidate: 0 }
    };
    // Under the replicas router one Service selects every revision while a rollout runs, so a revision
    // that is neither stable nor candidate cannot be taken out of traffic before it goes: it goes now.
    let shared_service = rolling && plan::router(spec) == Router::Replicas;
    let waiting = |hash: &str| -> Option<i32> {
        let drains = d.status.scale_downs.iter().any(|s| s.hash == hash);
        let is_pair = hash == stable || Some(hash) == candidate.as_deref();
        if !drains || (shared_service && !is_pair) {
            return None;
        }
        observed.deployments.get(hash).map(spec_replicas)
    };
    let mut out = vec![(stable.clone(), pods.stable)];
    if let Some(c) = &candidate {
        let want = if rolling { pods.candidate } else { 0 };
        out.push((c.clone(), waiting(c).map_or(want, |keep| keep.max(want))));
    }
    for h in d.status.history.iter().filter_map(|h| h.hash.clone()) {
        if !out.iter().any(|(w, _)| *w == h) && observed.deployments.contains_key(&h) {
            out.push((h.clone(), waiting(&h).unwrap_or(0)));
        }
    }
    for s in &d.status.scale_downs {
        if !out.iter().any(|(w, _)| *w == s.hash) && observed.deployments.contains_key(&s.hash) {
            out.push((s.hash.clone(), waiting(&s.hash).unwrap_or(0)));
        }
    }
    out
}

/// The routing a decision asks for: stable and candidate backends with the decided weights, other
/// kinds' `extra` backends taking their weight from stable, and the mirrors.
pub fn routing(md: &ModelDeployment, d: &Decision, extra: &Routing) -> Routing {
    let w = d.status.weights.clone().unwrap_or_default();
    let taken: i32 = extra.backends.iter().map(|b| b.weight).sum();
    let version = |r: &Option<RevisionRef>| r.as_ref().map(|r| r.version.clone());
    let mut backends = vec![Backend {
        service: service::name(md, "stable"),
        weight: (w.stable - taken).max(0),
        variant: "stable".into(),
        version: version(&d.status.stable),
    }];
    if d.status.candidate.is_some() {
        backends.push(Backend {
            service: service::name(md, "candidate"),
            weight: w.candidate,
            variant: "candidate".into(),
            version: version(&d.status.candidate),
        });
    }
    backends.extend(extra.backends.iter().cloned());
    let mut mirrors = Vec::new();
    if d.candidate_active() && w.mirror > 0 {
        mirrors.push(Mirror {
            service: service::name(md, "mirror"),
            percent: w.mirror,
            variant: MIRROR_VARIANT.into(),
            version: version(&d.status.candidate),
        });
    }
    mirrors.extend(extra.mirrors.iter().cloned());
    Routing { backends, mirrors, sticky_header: extra.sticky_header.clone(), addresses: extra.addresses.clone() }
}

/// Everything to apply and delete for a decision. `target` is the spec's revision (its template comes
/// from the spec; older revisions' templates from their existing Deployments); `router_image` is the
/// built-in router's image (used with `traffic.router: builtin` only).
pub fn desired(
    md: &ModelDeployment,
    target: &Target,
    d: &Decision,
    observed: &Observed,
    extra: &Routing,
    router_image: &str,
) -> DesiredObjects {
    let spec = &md.spec;
    let mut out = DesiredObjects::default();
    let counts = replica_counts(md, d, observed);
    for (hash, replicas) in &counts {
        let rev = if *hash == target.hash {
            spec.template.decode().ok().map(|template| Revision {
                hash: target.hash.clone(),
                version: target.version.clone(),
                uri: target.uri.clone(),
                template,
                registry: target.registry.clone(),
            })
        } else {
            observed.deployments.get(hash).and_then(deployment::revision_of)
        };
        let Some(rev) = rev else {
            out.lost.push(hash.clone());
            continue;
        };
        let obj = deployment::build(md, &rev, *replicas, role(hash, d));
        match observed.deployments.get(hash) {
            Some(now) if spec_replicas(now) > *replicas => out.scale_down.push(obj),
            _ => out.scale_up.push(obj),
        }
    }
    for (hash, obj) in &observed.deployments {
        if !counts.iter().any(|(w, _)| w == hash) {
            out.delete_deployments.push(obj.name_any());
        }
    }

    let router = plan::router(spec);
    let rolling = d.candidate_active();
    let stable_hash = d.status.stable.as_ref().and_then(|s| s.hash.clone()).unwrap_or_default();
    // The built-in router's pods come first; the stable Service moves to them only once they are ready (and
    // back to stable's pods before they go), so no request meets a router that is not there.
    let builtin = router == Router::Builtin;
    if builtin {
        out.scale_up.insert(0, router_objects::deployment(md, router_image));
    } else if let Some(r) = &observed.router {
        out.delete_deployments.push(r.name_any());
    }
    let router_ready = builtin && observed.router.as_ref().is_some_and(is_ready);
    let stable_selector = if router_ready {
        router_objects::pod_selector(md)
    } else if router == Router::Replicas && (rolling || !extra.backends.is_empty()) {
        // The pod ratio is the split: one Service over both revisions (or over stable and an
        // Experiment's variants).
        BTreeMap::from([(labels::DEPLOYMENT.to_string(), md.name_any())])
    } else {
        deployment::selector(md, &stable_hash)
    };
    out.services.push(service::build(md, "stable", stable_selector));
    if builtin {
        out.services.push(service::build(md, router_objects::PRIMARY, deployment::selector(md, &stable_hash)));
    }
    let weights = d.status.weights.clone().unwrap_or_default();
    if let Some(c) = d.status.candidate.as_ref().and_then(|c| c.hash.as_ref()) {
        out.services.push(service::build(md, "candidate", deployment::selector(md, c)));
        if rolling && weights.mirror > 0 {
            out.services.push(service::build(md, "mirror", deployment::selector(md, c)));
        }
    }
    for name in observed.services.keys() {
        if !out.services.iter().any(|s| s.metadata.name.as_deref() == Some(name)) {
            out.delete_services.push(name.clone());
        }
    }

    let chosen = traffic::for_router(router);
    let mut routing = routing(md, d, extra);
    let mut hold = None;
    if builtin {
        routing.addresses = observed
            .services
            .iter()
            .filter_map(|(name, s)| {
                let ip = s.spec.as_ref()?.cluster_ip.clone().filter(|ip| !ip.is_empty() && ip != "None")?;
                Some((name.clone(), ip))
            })
            .chain(extra.addresses.clone())
            .collect();
        // The router reaches Services by ClusterIP: until every Service it sends to has one (a Service
        // created by this very apply has none in the cache yet), its configuration stays as it is.
        if traffic::builtin::services(md, &routing).iter().any(|s| !routing.addresses.contains_key(s)) {
            hold = Some(router_objects::name(md));
        }
    }
    out.routes = if hold.is_some() { Vec::new() } else { chosen.objects(md, &routing) };
    for (resource, obj) in &observed.routes {
        let kept =
            out.routes.iter().any(|r| r.resource.kind == resource.kind && Some(&r.name) == obj.metadata.name.as_ref());
        let held = resource.kind == "ConfigMap" && obj.metadata.name == hold;
        if !kept && !held {
            out.delete_routes.push((resource.clone(), obj.name_any()));
        }
    }
    out
}

/// The first 8 bytes of the SHA-256 of `data`, as 16 hex digits: the hashes the operator writes into
/// annotations.
pub fn short_hash(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `desired` with the annotation [`annotations::APPLIED`] set to a hash of it. Applied objects carry it,
/// so [`up_to_date`] of the result also sees what the operator stopped setting: an object applied from
/// another desired state carries another hash.
pub fn with_applied_hash(mut desired: Value) -> Value {
    let hash = short_hash(&serde_json::to_vec(&desired).unwrap_or_default());
    if !desired["metadata"]["annotations"].is_object() {
        desired["metadata"]["annotations"] = Value::Object(Default::default());
    }
    desired["metadata"]["annotations"][annotations::APPLIED] = Value::String(hash);
    desired
}

/// Whether `current` (an object as the cache shows it) already holds every field of `desired` with the
/// same value: maps may have more keys, lists must have the same length and hold element by element,
/// and numbers compare by value (`30` and `30.0` are equal). Fields set by others or defaulted by the
/// API server do not count as a difference, so an unchanged object needs no write.
pub fn up_to_date(desired: &Value, current: &Value) -> bool {
    match (desired, current) {
        (Value::Object(d), Value::Object(c)) => {
            d.iter().all(|(k, v)| c.get(k).is_some_and(|cv| up_to_date(v, cv)) || (v.is_null() && c.get(k).is_none()))
        }
        (Value::Array(d), Value::Array(c)) => d.len() == c.len() && d.iter().zip(c).all(|(a, b)| up_to_date(a, b)),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
