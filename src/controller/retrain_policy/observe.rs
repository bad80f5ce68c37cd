//! What the RetrainPolicy controller reads: the metric triggers' values from Prometheus, and the state of
//! a run's Jobs with the termination message of their pods (where the Jobs report their metrics).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::Store;

use crate::analysis::prometheus::Sample;
use crate::analysis::render;
use crate::analysis::template::TemplateVars;
use crate::api::retrain_policy::{JobState, RunRecord, RunStage};
use crate::api::{ModelDeployment, RetrainPolicy};
use crate::controller::{Context, Result};
use crate::retrain::jobs::{POLICY_LABEL, RUN_LABEL};
use crate::retrain::run::{self, Observed};
use crate::retrain::triggers::Reading;

/// Reads each metric trigger once.
pub async fn read_triggers(ctx: &Context, p: &RetrainPolicy, md: &ModelDeployment) -> Vec<(String, Reading)> {
    let mut out = Vec::new();
    let Some(t) = p.spec.triggers.as_ref() else { return out };
    let version = md.status.as_ref().and_then(|s| s.stable.as_ref()).map(|s| s.version.clone());
    let vars = TemplateVars { namespace: p.namespace(), name: Some(md.name_any()), version, ..TemplateVars::default() };
    for m in &t.metrics {
        let reading = async {
            let base = ctx.config.provider_url(m.prometheus.provider.as_deref()).map_err(|e| e.to_string())?;
            let q = render(&m.prometheus.query, &vars)?;
            ctx.prometheus.query(base, &q).await.map_err(|e| e.to_string())
        }
        .await;
        out.push((
            m.name.clone(),
            match reading {
                Ok(Sample::Value(v)) => Reading::Value(v),
                Ok(Sample::NoData) => Reading::NoData,
                Err(e) => Reading::Error(format!("the query failed: {e}")),
            },
        ));
    }
    out
}

/// The Jobs of run `r` that the run still waits for, by name, with the termination message of a finished
/// Job's pod. Jobs of the run whose result is already recorded are not read again.
pub async fn jobs(
    ctx: &Context,
    store: &Store<Job>,
    p: &RetrainPolicy,
    r: &RunRecord,
) -> Result<BTreeMap<String, Observed>> {
    let name = p.name_any();
    let waiting: Vec<String> = match r.stage {
        Some(RunStage::Training) => r
            .trial_results
            .iter()
            .filter(|t| matches!(t.state, JobState::Pending | JobState::Running))
            .map(|t| run::trial_job(&name, &r.id, t.index))
            .collect(),
        Some(RunStage::Evaluating) => vec![run::evaluation_job(&name, &r.id)],
        _ => Vec::new(),
    };
    let mut out = BTreeMap::new();
    for job in store.state() {
        if !of_run(&job, p, &r.id) || !waiting.contains(&job.name_any()) {
            continue;
        }
        let observed = match finished(&job) {
            None => Observed::Active,
            Some(Ok(())) => Observed::Succeeded(message(ctx, &job, "Succeeded").await?),
            Some(Err(why)) => Observed::Failed { why, message: message(ctx, &job, "Failed").await? },
        };
        out.insert(job.name_any(), observed);
    }
    Ok(out)
}

/// Whether `job` is one of run `id` of `p`: in its namespace, labelled with the policy and the run, and owned
/// by this very policy (not by a deleted one of the same name).
pub(super) fn of_run(job: &Job, p: &RetrainPolicy, id: &str) -> bool {
    let labels = job.labels();
    job.namespace() == p.namespace()
        && labels.get(POLICY_LABEL) == Some(&p.name_any())
        && labels.get(RUN_LABEL).map(String::as_str) == Some(id)
        && job.owner_references().iter().any(|o| Some(&o.uid) == p.uid().as_ref())
}

/// `Some(Ok)` for a Job that completed, `Some(Err(why))` for one that failed, `None` while it runs.
fn finished(job: &Job) -> Option<std::result::Result<(), String>> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    for c in conditions.iter().filter(|c| c.status == "True") {
        match c.type_.as_str() {
            "Complete" => return Some(Ok(())),
            "Failed" => {
                let reason = c.reason.clone().unwrap_or_else(|| "Failed".into());
                let detail = c.message.clone().map(|m| format!(": {m}")).unwrap_or_default();
                return Some(Err(format!("{reason}{detail}")));
            }
            _ => {}
        }
    }
    None
}

/// The termination message of the newest pod of `job` in `phase` (the first container's that has one).
async fn message(ctx: &Context, job: &Job, phase: &str) -> Result<Option<String>> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let selector = format!("batch.kubernetes.io/job-name={}", job.name_any());
    let mut list = pods.list(&ListParams::default().labels(&selector)).await?.items;
    list.retain(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase));
    list.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let Some(pod) = list.last() else { return Ok(None) };
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
    Ok(statuses.iter().find_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone()))
}
