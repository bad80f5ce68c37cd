//! One ModelDeployment reconcile: observe (generated Deployments, the control request, metrics when
//! due) → decide (the pure step machine) → apply (objects) → status (written once, only when changed)
//! → Events for the transitions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;

use super::apply::{self, Observed};
use crate::analysis::{candidate_vars, measure};
use crate::api::model_deployment::MetricResult;
use crate::api::{DeploymentPhase, ModelDeployment, ModelDeploymentStatus};
use crate::conditions::{self, Desired, Transition};
use crate::controller::acceptance::{self, Acceptance};
use crate::controller::{Context, Result, status};
use crate::names::{annotations, conditions as cond, labels, reasons};
use crate::rollout::plan::{self, Decision, Input};
use crate::rollout::request::Request;
use crate::rollout::revision;
use crate::validation::FieldError;

/// How long a quiet ModelDeployment waits before a reconcile looks again (drift of objects that are not
/// watched, such as the HTTPRoute).
const RESYNC: Duration = Duration::from_secs(300);

/// Reconciles one ModelDeployment.
pub async fn reconcile(md: Arc<ModelDeployment>, ctx: Arc<Context>) -> Result<Action> {
    let now = jiff::Timestamp::now();
    let errors = crate::validation::model_deployment::validate(&md.spec, &ctx.config);
    let target = revision::target(&md.spec);
    let Some(target) = target.filter(|_| errors.is_empty()) else {
        // Invalid (or not yet resolvable): say so, and leave every generated object as it is, so that
        // whatever serves keeps serving.
        let decided = accept(&md, &errors, &Time(now));
        acceptance::apply(&ctx, super::KIND, md.as_ref(), md.status.as_ref(), &decided).await?;
        return Ok(Action::await_change());
    };
    ctx.metrics
        .invalid_specs
        .with_label_values(&[super::KIND, &md.namespace().unwrap_or_default(), &md.name_any()])
        .set(0);

    let observed = observe(&ctx, &md).await?;
    let current = md.status.clone().unwrap_or_default();
    let (request, bad_request) = read_request(&md, &current);
    let background = if plan::background_due(&md.spec, &current, &target, now) {
        Some(measure_metrics(&ctx, &md, &current, None).await)
    } else {
        None
    };
    let gate = match plan::gate_due(&md.spec, &current, &target) {
        Some(names) => Some(measure_metrics(&ctx, &md, &current, Some(names)).await),
        None => None,
    };
    let stable_ready = current
        .stable
        .as_ref()
        .and_then(|s| s.hash.as_ref())
        .and_then(|h| observed.deployments.get(h))
        .is_some_and(apply::is_ready);
    let candidate_ready_replicas = apply::ready_replicas(observed.deployments.get(&target.hash));
    let retained: Vec<String> = observed.deployments.keys().cloned().collect();
    let decision = plan::decide(&Input {
        spec: &md.spec,
        status: &current,
        target: &target,
        stable_ready,
        candidate_ready_replicas,
        background: background.as_deref(),
        gate: gate.as_deref(),
        request: request.as_ref(),
        retained: &retained,
        now,
    });

    apply::apply(&ctx, &md, &target, &decision, &observed).await?;

    let mut new_status = finish_status(&md, &current, &decision, &Time(now));
    let mut events = decision.events.clone();
    if let Some((raw, e)) = bad_request {
        new_status.last_request = Some(raw);
        events.push(Transition { warning: true, reason: "InvalidRequest".into(), message: e });
    }
    status::write_if_changed(&ctx, md.as_ref(), md.status.as_ref(), &new_status).await?;
    for e in &events {
        status::publish(&ctx, md.as_ref(), e).await;
    }
    record_metrics(&ctx, &md, &new_status);
    Ok(Action::requeue(decision.requeue_after.unwrap_or(RESYNC).min(RESYNC)))
}

/// The acceptance status of a spec the rollout cannot act on: invalid, or following a registry alias.
pub fn accept(md: &ModelDeployment, errors: &[FieldError], now: &Time) -> Acceptance<ModelDeploymentStatus> {
    let (waiting, warning) = if md.spec.model.registry.is_some() {
        let message = "following a registry alias is not available in this operator version; nothing is deployed. \
                       Pin spec.model.version and spec.model.uri instead";
        (Desired::new(cond::READY, false, reasons::REGISTRY_UNSUPPORTED, message), true)
    } else {
        (Desired::new(cond::READY, false, reasons::ACCEPTED, "spec is valid"), false)
    };
    acceptance::plan(md.status.as_ref(), md.metadata.generation, errors, waiting, warning, now)
}

async fn observe(ctx: &Context, md: &ModelDeployment) -> Result<Observed> {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &md.namespace().unwrap_or_default());
    let selector = format!("{}={}", labels::DEPLOYMENT, md.name_any());
    let uid = md.uid();
    let deployments = api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter(|d| d.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref()))
        .filter_map(|d| d.labels().get(labels::REVISION).cloned().map(|h| (h, d)))
        .collect::<BTreeMap<_, _>>();
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &md.namespace().unwrap_or_default());
    let services = services
        .list_metadata(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .map(|s| s.name_any())
        .collect();
    let spec_changed = md.status.as_ref().and_then(|s| s.observed_generation) != md.metadata.generation;
    Ok(Observed { deployments, services, spec_changed })
}

/// The control request to consume, and a malformed one to report once.
fn read_request(md: &ModelDeployment, status: &ModelDeploymentStatus) -> (Option<Request>, Option<(String, String)>) {
    let Some(raw) = md.annotations().get(annotations::REQUEST) else { return (None, None) };
    if status.last_request.as_deref() == Some(raw.as_str()) {
        return (None, None);
    }
    match Request::parse(raw) {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some((raw.clone(), e.to_string()))),
    }
}

/// Measures the background metrics (`names == None`) or the named gate metrics for the candidate.
async fn measure_metrics(
    ctx: &Context,
    md: &ModelDeployment,
    status: &ModelDeploymentStatus,
    names: Option<&[String]>,
) -> Vec<MetricResult> {
    let Some(analysis) = plan::background_analysis(&md.spec) else { return Vec::new() };
    let vars = candidate_vars(md, status.candidate.as_ref(), analysis.interval.as_ref());
    let mut out = Vec::new();
    for check in analysis.metrics.iter().filter(|m| names.is_none_or(|n| n.contains(&m.name))) {
        out.push(measure(&ctx.prometheus, &ctx.config, check, &vars).await);
    }
    out
}

/// The status to write: the decision's rollout fields, conditions merged (transition times kept when a
/// status did not move), `observedGeneration`.
fn finish_status(
    md: &ModelDeployment,
    current: &ModelDeploymentStatus,
    d: &Decision,
    now: &Time,
) -> ModelDeploymentStatus {
    let mut s = d.status.clone();
    s.observed_generation = md.metadata.generation;
    s.conditions = conditions::merge(&current.conditions, &d.conditions, md.metadata.generation, now);
    s
}

fn record_metrics(ctx: &Context, md: &ModelDeployment, s: &ModelDeploymentStatus) {
    let (ns, name) = (md.namespace().unwrap_or_default(), md.name_any());
    let weight = s.weights.as_ref().map(|w| i64::from(w.candidate)).unwrap_or(0);
    ctx.metrics.candidate_weight.with_label_values(&[&ns, &name]).set(weight);
    for phase in [
        DeploymentPhase::Pending,
        DeploymentPhase::Progressing,
        DeploymentPhase::Paused,
        DeploymentPhase::Healthy,
        DeploymentPhase::Degraded,
        DeploymentPhase::RolledBack,
    ] {
        let on = i64::from(s.phase == Some(phase));
        ctx.metrics.phase.with_label_values(&[&ns, &name, &format!("{phase:?}")]).set(on);
    }
}
