//! One ModelDeployment reconcile: observe (generated Deployments, the control request, metrics when
//! due) → decide (the pure step machine) → apply (objects) → status (written once, only when changed)
//! → Events for the transitions.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;

use super::apply::{self, ApplyError};
use super::{Caches, registry, router_config, router_metrics};
use crate::analysis::{TemplateVars, builtin, candidate_vars, measure};
use crate::api::model_deployment::{MetricResult, ShadowStatus, Verdict};
use crate::api::{DeploymentPhase, ModelDeployment, ModelDeploymentStatus};
use crate::conditions::{self, Desired, Transition};
use crate::controller::acceptance::{self, Acceptance};
use crate::controller::{Context, Result, status};
use crate::names::{annotations, conditions as cond, reasons};
use crate::rollout::desired;
use crate::rollout::plan::{self, Input};
use crate::rollout::pods as rollout_pods;
use crate::rollout::request::Request;
use crate::rollout::revision;
use crate::rollout::shadow::{self, ShadowPlan};
use crate::validation::FieldError;

/// How long a quiet ModelDeployment waits before a reconcile looks again (drift of objects that are not
/// watched, such as the HTTPRoute).
const RESYNC: Duration = Duration::from_secs(300);

/// Reconciles one ModelDeployment.
pub async fn reconcile(md: Arc<ModelDeployment>, ctx: Arc<Context>, caches: Arc<Caches>) -> Result<Action> {
    let now = jiff::Timestamp::now();
    let errors = crate::validation::model_deployment::validate(&md.spec, &ctx.config);
    let current = md.status.clone().unwrap_or_default();
    let (request, bad_request) = read_request(&md, &current);
    // A followed registry alias is read (when due) before anything decides: its last resolution is the target.
    let follow = md.spec.model.registry.as_ref().filter(|_| errors.is_empty());
    let mut alias = match follow {
        Some(f) => Some(registry::follow_alias(&ctx, &md, f, &current, request.as_ref(), now).await),
        None => None,
    };
    let target = match &alias {
        Some(a) => revision::resolved_target(&md.spec, &a.status),
        None => revision::target(&md.spec),
    };
    let Some(target) = target.filter(|_| errors.is_empty()) else {
        // Invalid (or not resolved yet): say so, and leave every generated object as it is, so that
        // whatever serves keeps serving.
        let mut decided = accept(&md, &errors, alias.as_ref(), &Time(now));
        if let Some(a) = &alias {
            decided.status.registry = Some(a.status.clone());
            if let Some(raw) = &a.consumed {
                decided.status.last_request = Some(raw.clone());
            }
        }
        acceptance::apply(&ctx, super::KIND, md.as_ref(), md.status.as_ref(), &decided).await?;
        for e in alias.iter().flat_map(|a| a.events.iter()) {
            status::publish(&ctx, md.as_ref(), e).await;
        }
        return Ok(match &alias {
            Some(a) => Action::requeue(a.next_read.max(Duration::from_secs(1))),
            None => Action::await_change(),
        });
    };
    ctx.metrics
        .invalid_specs
        .with_label_values(&[super::KIND, &md.namespace().unwrap_or_default(), &md.name_any()])
        .set(0);

    let observed = caches.observe(&md);
    // Registry requests were acted on above; the rollout gets the others.
    let request = request.filter(|r| alias.is_none() || !r.verb.is_registry());
    // Requests first: while one waits, nothing is measured (see `plan::due`).
    let due = plan::due(&md.spec, &current, &target, request.is_some(), now);
    let measured = if due.any() { measure_metrics(&ctx, &md, &current, due.metric_names()).await } else { Vec::new() };
    let gate: Option<Vec<MetricResult>> =
        due.gate.map(|names| measured.iter().filter(|r| names.contains(&r.name)).cloned().collect());
    let stable_ready = current
        .stable
        .as_ref()
        .and_then(|s| s.hash.as_ref())
        .and_then(|h| observed.deployments.get(h))
        .is_some_and(desired::is_ready);
    let candidate_ready_replicas = desired::ready_replicas(observed.deployments.get(&target.hash));
    let pods_problem = candidate_pods_problem(&ctx, &md, &current, &target, candidate_ready_replicas).await;
    let retained: Vec<String> = observed.deployments.keys().cloned().collect();
    let decision = plan::decide(&Input {
        spec: &md.spec,
        status: &current,
        target: &target,
        stable_ready,
        candidate_ready_replicas,
        candidate_pods_problem: pods_problem.as_deref(),
        background: due.background.then_some(measured.as_slice()),
        gate: gate.as_deref(),
        request: request.as_ref(),
        retained: &retained,
        now,
    });

    let extra = caches.experiment_routing(&md);
    let objects = desired::desired(&md, &target, &decision, &observed, &extra, ctx.config.router_image());
    if let Err(e) = apply::apply(&ctx.client, &md, &objects, &observed).await {
        report_apply_failure(&ctx, &md, &current, &e, &Time(now)).await?;
        return Err(e.into());
    }
    router_config::tell(&ctx, &md, &objects.routes).await;

    let mut conditions = decision.conditions.clone();
    let mut new_status = decision.status.clone();
    let mut events = decision.events.clone();
    if let (Some(a), Some(f)) = (alias.as_mut(), follow) {
        // What serves now is recorded in the registry (after the objects are applied), with the reason of
        // a rollback from the decided Degraded condition.
        let rollback = decision
            .conditions
            .iter()
            .find(|c| c.type_ == cond::DEGRADED && c.status)
            .map(|c| (c.reason.as_str(), c.message.as_str()));
        registry::record(&ctx, &md, f, a, &current, &new_status, rollback, now).await;
        new_status.registry = Some(a.status.clone());
        if let Some(raw) = &a.consumed {
            new_status.last_request = Some(raw.clone());
        }
        conditions.extend(a.condition.clone());
        events.append(&mut a.events);
    }
    new_status.shadow = match shadow::plan(&md.spec, current.shadow.as_ref(), &current, &new_status, now) {
        ShadowPlan::Keep(s) => s,
        ShadowPlan::Measure { version, since, window } => {
            let kept = current.shadow.clone().filter(|s| s.version == version);
            read_agreement(&ctx, &md, version, since, window, now).await.or(kept)
        }
    };
    let mut new_status = finish_status(&md, &current, &conditions, new_status, &Time(now));
    if let Some((raw, e)) = bad_request {
        new_status.last_request = Some(raw);
        events.push(Transition { warning: true, reason: reasons::INVALID_REQUEST.into(), message: e });
    }
    status::write_if_changed(&ctx, md.as_ref(), md.status.as_ref(), &new_status).await?;
    for e in &events {
        status::publish(&ctx, md.as_ref(), e).await;
    }
    record_metrics(&ctx, &md, &new_status);
    let mut requeue = decision.requeue_after.unwrap_or(RESYNC).min(RESYNC);
    if let Some(next) = shadow::next_reading(&md.spec, &new_status) {
        requeue = requeue.min(next);
    }
    if let Some(a) = &alias {
        requeue = requeue.min(a.next_read.max(Duration::from_secs(1)));
    }
    Ok(Action::requeue(requeue))
}

/// A generated object could not be applied: the status keeps its rollout fields (nothing moved), and
/// says which object and why in `Degraded=True ApplyFailed`, with a Warning Event when that is new.
async fn report_apply_failure(
    ctx: &Context,
    md: &ModelDeployment,
    current: &ModelDeploymentStatus,
    e: &ApplyError,
    now: &Time,
) -> Result<()> {
    let message = format!("could not {e}; the objects already in place keep serving");
    let degraded = Desired::new(cond::DEGRADED, true, reasons::APPLY_FAILED, message.clone());
    let again = conditions::find(&current.conditions, cond::DEGRADED)
        .is_some_and(|c| c.status == "True" && c.reason == reasons::APPLY_FAILED && c.message == message);
    let s = finish_status(md, current, &[degraded], current.clone(), now);
    status::write_if_changed(ctx, md, md.status.as_ref(), &s).await?;
    if !again {
        let t = Transition { warning: true, reason: reasons::APPLY_FAILED.into(), message };
        status::publish(ctx, md, &t).await;
    }
    Ok(())
}

/// Why the candidate's pods are not ready, looked up (one LIST of its pods) only while a rollout of the
/// spec's revision waits for pods that are not ready; a failed lookup says nothing.
async fn candidate_pods_problem(
    ctx: &Context,
    md: &ModelDeployment,
    current: &ModelDeploymentStatus,
    target: &revision::Target,
    ready: i32,
) -> Option<String> {
    let rolling =
        plan::rolling(current) && current.candidate.as_ref().and_then(|c| c.hash.as_ref()) == Some(&target.hash);
    let step = current.current_step.unwrap_or(0).max(0) as usize;
    if !rolling || ready >= plan::candidate_needed(&md.spec, step) {
        return None;
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &md.namespace().unwrap_or_default());
    let selector = crate::resources::deployment::selector(md, &target.hash)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => rollout_pods::problem(&list.items),
        Err(e) => {
            tracing::debug!(error = %e, "could not list the candidate's pods");
            None
        }
    }
}

/// The acceptance status of a spec the rollout cannot act on: invalid, or following a registry alias that
/// has not resolved yet (Ready says why, with the registry's reason).
pub fn accept(
    md: &ModelDeployment,
    errors: &[FieldError],
    alias: Option<&registry::Alias>,
    now: &Time,
) -> Acceptance<ModelDeploymentStatus> {
    let status = md.status.as_ref();
    let waiting = match alias {
        Some(a) => {
            let registry = a.condition.clone().or_else(|| {
                let c =
                    conditions::find(status.map(|s| s.conditions.as_slice()).unwrap_or(&[]), cond::REGISTRY_SYNCED)?;
                Some(Desired::new(cond::REGISTRY_SYNCED, c.status == "True", &c.reason, c.message.clone()))
            });
            let (reason, why) = match registry {
                Some(c) => (c.reason, c.message),
                None => (reasons::ALIAS_NOT_FOUND.to_string(), "the registry alias has not been read yet".to_string()),
            };
            Desired::new(cond::READY, false, &reason, format!("nothing is deployed: {why}"))
        }
        None => Desired::new(cond::READY, false, reasons::ACCEPTED, "spec is valid"),
    };
    let mut decided = acceptance::plan(status, md.metadata.generation, errors, waiting, false, now);
    if let Some(c) = alias.and_then(|a| a.condition.clone()) {
        decided.status.conditions = conditions::merge(&decided.status.conditions, &[c], md.metadata.generation, now);
    }
    if alias.is_none() {
        decided.status.conditions.retain(|c| c.type_ != cond::REGISTRY_SYNCED);
        decided.status.registry = None;
    }
    decided
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

/// Measures the named metrics (`None`: all of them) for the candidate, all at once under one time
/// budget (the operator's query timeout): a metric not measured in time is an `Error` result.
async fn measure_metrics(
    ctx: &Context,
    md: &ModelDeployment,
    status: &ModelDeploymentStatus,
    names: Option<Vec<String>>,
) -> Vec<MetricResult> {
    let Some(analysis) = plan::background_analysis(&md.spec) else { return Vec::new() };
    let vars = candidate_vars(md, status.candidate.as_ref(), analysis.interval.as_ref());
    let budget = ctx.config.query_timeout();
    let deadline = tokio::time::Instant::now() + budget;
    let checks = analysis.metrics.iter().filter(|m| names.as_ref().is_none_or(|n| n.contains(&m.name)));
    futures::future::join_all(checks.map(|check| {
        let vars = &vars;
        async move {
            let measured = async {
                if check.builtin.is_some() && router_metrics::direct(&ctx.config) {
                    router_metrics::measure(ctx, md, check, vars).await
                } else {
                    measure(&ctx.prometheus, &ctx.config, check, vars).await
                }
            };
            match tokio::time::timeout_at(deadline, measured).await {
                Ok(result) => result,
                Err(_) => MetricResult {
                    name: check.name.clone(),
                    value: None,
                    verdict: Verdict::Error,
                    message: Some(format!("not measured within the {}s budget of a reconcile", budget.as_secs_f64())),
                },
            }
        }
    }))
    .await
}

/// The candidate's agreement with stable over `window`, read from the built-in router's series through
/// Prometheus; `None` when it cannot be read (the last reading stays).
async fn read_agreement(
    ctx: &Context,
    md: &ModelDeployment,
    version: String,
    since: Time,
    window: Duration,
    now: jiff::Timestamp,
) -> Option<ShadowStatus> {
    if router_metrics::direct(&ctx.config) {
        let (agreement, comparisons) = router_metrics::agreement(ctx, md, window).await?;
        let agreement = agreement.map(builtin::rounded);
        return Some(ShadowStatus { version, comparisons, agreement, since, measured_at: Time(now) });
    }
    let base = ctx.config.provider_url(ctx.config.router_provider()).ok()?;
    let vars = TemplateVars {
        namespace: md.namespace(),
        name: Some(md.name_any()),
        interval: Some(format!("{}s", window.as_secs())),
        ..TemplateVars::default()
    };
    let (agreement, count) = match builtin::read_agreement(&ctx.prometheus, base, &vars).await {
        Ok(read) => read,
        Err(e) => {
            tracing::debug!(error = %e, "could not read the shadow agreement");
            return None;
        }
    };
    Some(ShadowStatus { version, comparisons: count.unwrap_or(0), agreement, since, measured_at: Time(now) })
}

/// The status to write: the decision's rollout fields, conditions merged (transition times kept when a
/// status did not move), `observedGeneration`.
fn finish_status(
    md: &ModelDeployment,
    current: &ModelDeploymentStatus,
    desired: &[Desired],
    mut s: ModelDeploymentStatus,
    now: &Time,
) -> ModelDeploymentStatus {
    s.observed_generation = md.metadata.generation;
    s.conditions = conditions::merge(&current.conditions, desired, md.metadata.generation, now);
    if md.spec.model.registry.is_none() {
        // A spec that stopped following an alias keeps no registry state.
        s.conditions.retain(|c| c.type_ != cond::REGISTRY_SYNCED);
        s.registry = None;
    }
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
