//! Promotion of a run's candidate: registered as a new version of the model that the ModelDeployment
//! follows (with the run's trigger, dataset version, parameters and metrics as tags) and the followed alias
//! moved to it, so that the ModelDeployment shadows and canaries it through its own steps. Where the
//! ModelDeployment pins a version in its spec, the operator never edits it: the run says what to change.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::retrain_policy::{RetrainPolicyStatus, RunDecision, RunRecord, RunStage};
use crate::api::{ModelDeployment, RetrainPolicy};
use crate::conditions::Transition;
use crate::controller::Context;
use crate::names::reasons;
use crate::registry::NewModelVersion;
use crate::registry::sync::{self, RETRAIN_RUN_TAG};
use crate::retrain::run::Champion;
use crate::retrain::summary::{self, ROLLING_OUT};

/// `kubectl champion promote-run NAME RUN`: a run waiting in `Evaluated` goes on to promotion.
pub fn request(
    md: &ModelDeployment,
    champion: &Champion,
    st: &mut RetrainPolicyStatus,
    run: &str,
    events: &mut Vec<Transition>,
) {
    let Some(r) = st.runs.iter_mut().find(|r| r.id == run) else {
        let known: Vec<&str> = st.runs.iter().map(|r| r.id.as_str()).collect();
        events.push(Transition::new(
            true,
            reasons::REQUEST_IGNORED,
            format!("promote-run {run}: no such run (known: {})", known.join(", ")),
        ));
        return;
    };
    if r.decision != RunDecision::Evaluated {
        events.push(Transition::new(
            true,
            reasons::REQUEST_IGNORED,
            format!("promote-run {run}: the run is {:?}; only a run that passed its gates and waits in Evaluated can be promoted", r.decision),
        ));
        return;
    }
    if !champion.follows_alias {
        events.push(Transition::new(true, reasons::PROMOTION_NEEDED, summary::pinned_change(&md.name_any(), r)));
        return;
    }
    r.decision = RunDecision::Running;
    r.stage = Some(RunStage::Promoting);
    r.finished_at = None;
}

/// The tags of the registered version.
fn tags(p: &RetrainPolicy, r: &RunRecord) -> std::collections::BTreeMap<String, String> {
    let mut t = std::collections::BTreeMap::new();
    t.insert(RETRAIN_RUN_TAG.to_string(), format!("{}/{}/{}", p.namespace().unwrap_or_default(), p.name_any(), r.id));
    t.insert("champion.ml/trigger".into(), r.trigger.clone());
    if let Some(d) = &r.dataset {
        t.insert("champion.ml/dataset-version".into(), d.clone());
    }
    if let Some(best) = r.best_trial.and_then(|b| r.trial_results.iter().find(|t| t.index == b)) {
        for (k, v) in &best.params {
            t.insert(format!("param.{k}"), v.0.to_string().trim_matches('"').to_string());
        }
    }
    for (k, v) in &r.best {
        t.insert(format!("metric.{k}"), v.to_string());
    }
    if let Some(e) = &r.evaluation {
        for (k, v) in &e.candidate {
            t.insert(format!("eval.{k}"), v.to_string());
        }
    }
    t
}

/// Registers the candidate and moves the alias; on a registry failure the run stays in `Promoting` and
/// is tried again at the next reconcile (what serves is untouched).
pub async fn register(
    ctx: &Context,
    p: &RetrainPolicy,
    md: &ModelDeployment,
    r: &mut RunRecord,
    events: &mut Vec<Transition>,
    now: Timestamp,
) {
    let Some(follow) = md.spec.model.registry.clone() else {
        r.decision = RunDecision::Evaluated;
        r.stage = Some(RunStage::Done);
        r.finished_at = Some(Time(now));
        let change = summary::pinned_change(&md.name_any(), r);
        events.push(Transition::new(false, reasons::PROMOTION_NEEDED, change.clone()));
        r.reason = Some(change);
        return;
    };
    let Some(access) = ctx.registry.as_ref() else {
        let why =
            "the operator config names no MLflow registry (mlflow.trackingUri), so the candidate cannot be registered"
                .to_string();
        events.push(Transition::new(true, reasons::PROMOTION_FAILED, format!("run {}: {why}", r.id)));
        crate::retrain::run::finish(r, RunDecision::Failed, why, now);
        return;
    };
    let new = NewModelVersion {
        name: follow.model.clone(),
        source: r.candidate_uri.clone().unwrap_or_default(),
        run_id: r.mlflow_run_id.clone(),
        description: Some(format!("Retrained by RetrainPolicy {} run {} (trigger {}).", p.name_any(), r.id, r.trigger)),
        tags: tags(p, r),
    };
    let result = match access.client().await {
        Ok(c) => sync::register_and_promote(c.as_ref(), &follow, &new).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => {
            let passed = r.reason.clone().unwrap_or_default();
            r.candidate_version = Some(v.version.clone());
            r.rollout = Some(ROLLING_OUT.into());
            let message = format!(
                "registered as version {} of {} and alias {} moved to it; ModelDeployment {} rolls it out through its steps",
                v.version,
                follow.model,
                follow.alias,
                md.name_any()
            );
            events.push(Transition::new(false, reasons::CANDIDATE_PROMOTED, format!("run {}: {message}", r.id)));
            r.decision = RunDecision::Promoted;
            r.stage = Some(RunStage::Done);
            r.finished_at = Some(Time(now));
            r.reason = Some(format!("{passed}; {message}"));
        }
        Err(e) => {
            let message = format!("run {}: promotion waits, the registry call failed: {e}", r.id);
            events.push(Transition::new(true, reasons::PROMOTION_FAILED, message));
        }
    }
}
