//! Puts a rollout decision in place: the Deployments of the stable, candidate and retained revisions,
//! the Services, and the routing object, all with server-side apply under the field manager
//! `champion`; objects no longer needed are deleted.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use crate::api::ModelDeployment;
use crate::api::model_deployment::Router;
use crate::controller::{Context, Result};
use crate::names::{FIELD_MANAGER, labels};
use crate::resources::deployment::{self, Revision};
use crate::resources::service;
use crate::rollout::plan::{self, Decision};
use crate::rollout::replicas;
use crate::rollout::revision::Target;
use crate::traffic::{self, Split};

/// What exists for a ModelDeployment before the apply.
pub struct Observed {
    /// Generated Deployments by revision hash.
    pub deployments: BTreeMap<String, Deployment>,
    /// Names of the generated Services.
    pub services: Vec<String>,
    /// Whether the spec changed since the last status (a router change can only come with one).
    pub spec_changed: bool,
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

fn params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

async fn delete_ignoring_missing<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Applies the decision. `target` is the spec's revision; its template comes from the spec, the
/// templates of older revisions from their existing Deployments.
pub async fn apply(
    ctx: &Context,
    md: &ModelDeployment,
    target: &Target,
    d: &Decision,
    observed: &Observed,
) -> Result<()> {
    let ns = md.namespace().unwrap_or_default();
    let spec = &md.spec;
    let router = plan::router(spec);
    let n = plan::replicas(spec);
    let weights = d.status.weights.clone().unwrap_or_default();
    let active = d.candidate_active();
    let stable_hash = d.status.stable.as_ref().and_then(|s| s.hash.clone()).unwrap_or_default();
    let candidate_hash = d.status.candidate.as_ref().and_then(|c| c.hash.clone());

    let (stable_n, candidate_n) = if active {
        let split = replicas::split(router, n, weights.candidate, weights.mirror);
        let step = d.status.current_step.unwrap_or(0).max(0) as usize;
        (split.stable, split.candidate.max(plan::candidate_needed(spec, step)))
    } else {
        (n, 0)
    };

    let revision_for = |hash: &str| -> Option<Revision> {
        if hash == target.hash {
            Some(Revision {
                hash: target.hash.clone(),
                version: target.version.clone(),
                uri: target.uri.clone(),
                template: spec.template.decode().ok()?,
            })
        } else {
            observed.deployments.get(hash).and_then(deployment::revision_of)
        }
    };

    let mut wanted: Vec<(String, i32, &str)> = vec![(stable_hash.clone(), stable_n, "stable")];
    if let Some(c) = candidate_hash.as_ref().filter(|c| **c != stable_hash) {
        wanted.push((c.clone(), candidate_n, "candidate"));
    }
    for h in d.status.history.iter().filter_map(|h| h.hash.clone()) {
        if !wanted.iter().any(|(w, _, _)| *w == h) && observed.deployments.contains_key(&h) {
            wanted.push((h, 0, "previous"));
        }
    }

    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    for (hash, replicas, variant) in &wanted {
        match revision_for(hash) {
            Some(rev) => {
                let obj = deployment::build(md, &rev, *replicas, variant);
                deployments.patch(&obj.name_any(), &params(), &Patch::Apply(&obj)).await?;
            }
            None => tracing::warn!(revision = %hash, "the Deployment of this revision is gone and cannot be rebuilt"),
        }
    }
    for (hash, obj) in &observed.deployments {
        if !wanted.iter().any(|(w, _, _)| w == hash) {
            delete_ignoring_missing(&deployments, &obj.name_any()).await?;
        }
    }

    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    let stable_selector = match router {
        Router::Replicas => BTreeMap::from([(labels::DEPLOYMENT.to_string(), md.name_any())]),
        _ => deployment::selector(md, &stable_hash),
    };
    let stable_svc = service::build(md, "stable", stable_selector);
    services.patch(&stable_svc.name_any(), &params(), &Patch::Apply(&stable_svc)).await?;
    for (role, needed) in [("candidate", candidate_hash.is_some()), ("mirror", active && weights.mirror > 0)] {
        match (&candidate_hash, needed) {
            (Some(c), true) => {
                let svc = service::build(md, role, deployment::selector(md, c));
                services.patch(&svc.name_any(), &params(), &Patch::Apply(&svc)).await?;
            }
            _ if observed.services.contains(&service::name(md, role)) => {
                delete_ignoring_missing(&services, &service::name(md, role)).await?
            }
            _ => {}
        }
    }

    let split = Split {
        stable: weights.stable,
        candidate: weights.candidate,
        mirror: if active { weights.mirror } else { 0 },
        has_candidate: candidate_hash.is_some(),
    };
    let chosen = traffic::for_router(router);
    if let Some(route) = chosen.route(md, &split) {
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &route.resource);
        api.patch(&route.name, &params(), &Patch::Apply(&route.body)).await?;
    }
    let chosen_kind = chosen.resource().map(|r| r.kind);
    // Objects of another router exist only if the router changed, which changes the spec.
    let others = if observed.spec_changed { traffic::all().to_vec() } else { Vec::new() };
    for other in others.into_iter().filter_map(|r| r.resource()) {
        if Some(&other.kind) != chosen_kind.as_ref() {
            let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &other);
            delete_ignoring_missing(&api, &md.name_any()).await?;
        }
    }
    Ok(())
}
