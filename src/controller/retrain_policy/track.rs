//! MLflow tracking of retraining runs, when the operator config names a tracking server: an experiment per
//! RetrainPolicy (`champion/<namespace>/<policy>`), a run per retraining run (trigger and dataset version as
//! tags) and a nested run per trial (its parameters), opened before their Jobs are created so the Jobs get
//! `MLFLOW_TRACKING_URI`, `MLFLOW_EXPERIMENT_ID` and `MLFLOW_RUN_ID`. What a Job logged is read back when it
//! ends (MLflow wins over the termination message where both have a metric); what only the termination
//! message had is logged to the trial's run, and each run is ended with the outcome. A tracking server that
//! cannot be reached leaves the run untracked, with a Warning Event: retraining does not wait for tracking.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::ResourceExt;

use crate::api::RetrainPolicy;
use crate::api::retrain_policy::{JobState, RunDecision, RunRecord};
use crate::conditions::Transition;
use crate::controller::Context;
use crate::names::reasons;
use crate::registry::MlflowClient;
use crate::retrain::jobs::Tracking;
use crate::retrain::report::Metrics;
use crate::retrain::run::{self, JobToStart};

/// The tracking client and the URI handed to Jobs, when the operator config names a server.
pub struct Tracker {
    client: Arc<MlflowClient>,
    job_uri: String,
}

impl Tracker {
    /// The tracker of the operator config; `Err` says why the client could not be built (the token).
    pub async fn of(ctx: &Context) -> Option<Result<Tracker, String>> {
        let access = ctx.registry.as_ref()?;
        let mlflow = ctx.config.mlflow.as_ref().filter(|m| m.track_retraining != Some(false))?;
        let job_uri = mlflow.job_tracking_uri.clone().unwrap_or_else(|| mlflow.tracking_uri.clone());
        Some(access.client().await.map(|client| Tracker { client, job_uri }))
    }

    fn key(p: &RetrainPolicy, r: &RunRecord) -> String {
        format!("{}/{}/{}", p.namespace().unwrap_or_default(), p.name_any(), r.id)
    }

    /// Opens the run's MLflow run (once) and a nested run for each trial about to start; returns the
    /// tracking variables of each Job by name.
    pub async fn open(
        &self,
        p: &RetrainPolicy,
        r: &mut RunRecord,
        start: &[JobToStart],
        events: &mut Vec<Transition>,
    ) -> BTreeMap<String, Tracking> {
        let mut out = BTreeMap::new();
        if r.mlflow_run_id.is_none() && r.tracking.is_none() {
            let experiment = format!("champion/{}/{}", p.namespace().unwrap_or_default(), p.name_any());
            let mut tags = BTreeMap::from([
                ("champion.ml/retrain-policy".to_string(), p.name_any()),
                ("champion.ml/trigger".to_string(), r.trigger.clone()),
            ]);
            if let Some(d) = &r.dataset {
                tags.insert("champion.ml/dataset-version".into(), d.clone());
            }
            let opened = async {
                let id = self.client.experiment_id(&experiment).await?;
                let name = format!("{}-{}", p.name_any(), r.id);
                let run = self.client.find_or_create_run(&id, &Self::key(p, r), &name, None, &tags).await?;
                Ok::<_, crate::registry::RegistryError>((id, run))
            }
            .await;
            match opened {
                Ok((id, run)) => {
                    r.tracking = Some(format!("MLflow run {run} in experiment {experiment} ({id})"));
                    r.mlflow_experiment_id = Some(id);
                    r.mlflow_run_id = Some(run);
                }
                Err(e) => {
                    let why = format!("not tracked: the tracking server failed: {e}");
                    events.push(Transition::new(true, reasons::TRACKING_UNAVAILABLE, format!("run {}: {why}", r.id)));
                    r.tracking = Some(why);
                }
            }
        }
        let (Some(experiment), Some(parent)) = (r.mlflow_experiment_id.clone(), r.mlflow_run_id.clone()) else {
            return out;
        };
        for job in start {
            match job {
                JobToStart::Evaluation { name } => {
                    out.insert(name.clone(), self.vars(&experiment, &parent));
                }
                JobToStart::Trial { name, trial } => {
                    let run_key = Self::key(p, r);
                    let Some(t) = r.trial_results.iter_mut().find(|t| t.index == trial.index) else { continue };
                    if t.mlflow_run_id.is_none() {
                        let key = format!("{run_key}/t{}", t.index);
                        let params: BTreeMap<String, String> = t
                            .params
                            .iter()
                            .map(|(k, v)| (k.clone(), v.0.to_string().trim_matches('"').to_string()))
                            .collect();
                        let opened = async {
                            let run = self
                                .client
                                .find_or_create_run(&experiment, &key, name, Some(&parent), &BTreeMap::new())
                                .await?;
                            self.client.log_batch(&run, &Metrics::new(), &params, &BTreeMap::new()).await?;
                            Ok::<_, crate::registry::RegistryError>(run)
                        }
                        .await;
                        match opened {
                            Ok(run) => t.mlflow_run_id = Some(run),
                            Err(e) => {
                                events.push(Transition::new(
                                    true,
                                    reasons::TRACKING_UNAVAILABLE,
                                    format!("run {} trial {}: not tracked: {e}", r.id, t.index),
                                ));
                                continue;
                            }
                        }
                    }
                    if let Some(run) = &t.mlflow_run_id {
                        out.insert(name.clone(), self.vars(&experiment, run));
                    }
                }
            }
        }
        out
    }

    fn vars(&self, experiment: &str, run: &str) -> Tracking {
        Tracking { uri: self.job_uri.clone(), experiment_id: experiment.to_string(), run_id: run.to_string() }
    }

    /// The metrics logged to the MLflow runs of the trials whose Jobs just ended, by Job name.
    pub async fn logged(&self, p: &RetrainPolicy, r: &RunRecord, ended: &[String]) -> BTreeMap<String, Metrics> {
        let mut out = BTreeMap::new();
        for t in &r.trial_results {
            let name = run::trial_job(&p.name_any(), &r.id, t.index);
            let Some(run) = t.mlflow_run_id.as_ref().filter(|_| ended.contains(&name)) else { continue };
            match self.client.run_metrics(run).await {
                Ok(m) => {
                    out.insert(name, m);
                }
                Err(e) => tracing::warn!(error = %e, run = %run, "could not read the trial's MLflow metrics"),
            }
        }
        out
    }

    /// Logs what MLflow does not have yet and ends the MLflow runs of trials (and of the run) that ended
    /// between `before` and `after` (a run promoted by request after it ended `Evaluated` gets its
    /// registered version and is ended again). Failures are logged, not returned: the status holds the truth.
    pub async fn close(&self, before: &RunRecord, after: &RunRecord, logged: &BTreeMap<String, Metrics>, policy: &str) {
        for t in &after.trial_results {
            let Some(run) = &t.mlflow_run_id else { continue };
            let was = before.trial_results.iter().find(|b| b.index == t.index).map(|b| b.state);
            let ended = matches!(t.state, JobState::Succeeded | JobState::Failed);
            if !ended || matches!(was, Some(JobState::Succeeded | JobState::Failed)) {
                continue;
            }
            let have = logged.get(&run::trial_job(policy, &after.id, t.index)).cloned().unwrap_or_default();
            let missing: Metrics =
                t.metrics.iter().filter(|(k, _)| !have.contains_key(*k)).map(|(k, v)| (k.clone(), *v)).collect();
            let mut tags = BTreeMap::new();
            if let Some(reason) = &t.reason {
                tags.insert("champion.ml/reason".to_string(), reason.chars().take(4000).collect());
            }
            if let Err(e) = self.client.log_batch(run, &missing, &BTreeMap::new(), &tags).await {
                tracing::warn!(error = %e, run = %run, "could not log the trial's metrics to MLflow");
            }
            let status = if t.state == JobState::Succeeded { "FINISHED" } else { "FAILED" };
            if let Err(e) = self.client.end_run(run, status).await {
                tracing::warn!(error = %e, run = %run, "could not end the trial's MLflow run");
            }
        }
        let Some(run) = &after.mlflow_run_id else { return };
        if before.decision == after.decision || after.decision == RunDecision::Running {
            return;
        }
        let mut metrics: Metrics = after.best.iter().map(|(k, v)| (format!("best.{k}"), *v)).collect();
        if let Some(e) = &after.evaluation {
            metrics.extend(e.candidate.iter().map(|(k, v)| (format!("candidate.{k}"), *v)));
            metrics.extend(e.champion.iter().map(|(k, v)| (format!("champion.{k}"), *v)));
        }
        let mut tags = BTreeMap::from([("champion.ml/decision".to_string(), format!("{:?}", after.decision))]);
        if let Some(reason) = &after.reason {
            tags.insert("champion.ml/reason".into(), reason.chars().take(4000).collect());
        }
        if let Some(v) = &after.candidate_version {
            tags.insert("champion.ml/registered-version".into(), v.clone());
        }
        if let Err(e) = self.client.log_batch(run, &metrics, &BTreeMap::new(), &tags).await {
            tracing::warn!(error = %e, run = %run, "could not log the run's results to MLflow");
        }
        let status = match after.decision {
            RunDecision::Failed => "FAILED",
            RunDecision::Cancelled => "KILLED",
            _ => "FINISHED",
        };
        if let Err(e) = self.client.end_run(run, status).await {
            tracing::warn!(error = %e, run = %run, "could not end the run's MLflow run");
        }
    }
}
