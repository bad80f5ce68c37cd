//! The Jobs of a run, built from the policy's templates with the Job contract of DESIGN.md: every
//! container gets `CHAMPION_RUN_ID`, `CHAMPION_TRIAL`, `CHAMPION_PARAMS` (JSON), `DATASET_URI`,
//! `DATASET_VERSION`, `MODEL_OUTPUT_URI`, the evaluation also `CANDIDATE_MODEL_URI` and
//! `CHAMPION_MODEL_URI`, and with MLflow tracking `MLFLOW_TRACKING_URI`, `MLFLOW_EXPERIMENT_ID` and
//! `MLFLOW_RUN_ID`. Jobs are owned by the policy and labelled with it, the run and the trial.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobTemplateSpec};
use k8s_openapi::api::core::v1::EnvVar;
use kube::{Resource, ResourceExt};

use super::run::{self, JobToStart};
use crate::api::RetrainPolicy;
use crate::api::retrain_policy::RunRecord;
use crate::names::labels;

/// The label naming the policy that owns a Job.
pub const POLICY_LABEL: &str = "champion.ml/retrain-policy";
/// The label naming the run of a Job.
pub const RUN_LABEL: &str = "champion.ml/run";
/// The label naming a trial's number, or `eval` for the evaluation.
pub const TRIAL_LABEL: &str = "champion.ml/trial";

/// The MLflow run a Job reports to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tracking {
    /// `MLFLOW_TRACKING_URI`.
    pub uri: String,
    /// `MLFLOW_EXPERIMENT_ID`.
    pub experiment_id: String,
    /// `MLFLOW_RUN_ID`.
    pub run_id: String,
}

fn var(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

/// The Job for `job` of `run`.
pub fn build(policy: &RetrainPolicy, run: &RunRecord, job: &JobToStart, tracking: Option<&Tracking>) -> Job {
    let spec = &policy.spec;
    let (ns, name) = (policy.namespace().unwrap_or_default(), policy.name_any());
    let (job_name, template, trial, env) = match job {
        JobToStart::Trial { name: job_name, trial } => {
            let params = serde_json::to_string(&trial.params).unwrap_or_else(|_| "{}".into());
            let output = run::model_output_uri(spec, &ns, &name, &run.id, trial.index);
            let env = vec![
                var("CHAMPION_TRIAL", trial.index.to_string()),
                var("CHAMPION_PARAMS", params),
                var("MODEL_OUTPUT_URI", output),
            ];
            (job_name, &spec.training.template, trial.index.to_string(), env)
        }
        JobToStart::Evaluation { name: job_name } => {
            let env = vec![
                var("CANDIDATE_MODEL_URI", run.candidate_uri.clone().unwrap_or_default()),
                var("CHAMPION_MODEL_URI", run.champion_uri.clone().unwrap_or_default()),
            ];
            (job_name, &spec.evaluation.template, "eval".to_string(), env)
        }
    };
    let mut env_all = vec![
        var("CHAMPION_RUN_ID", run.id.clone()),
        var("DATASET_URI", spec.dataset.uri.clone()),
        var("DATASET_VERSION", run.dataset.clone().unwrap_or_default()),
    ];
    env_all.extend(env);
    if let Some(t) = tracking {
        env_all.extend([
            var("MLFLOW_TRACKING_URI", t.uri.clone()),
            var("MLFLOW_EXPERIMENT_ID", t.experiment_id.clone()),
            var("MLFLOW_RUN_ID", t.run_id.clone()),
        ]);
    }
    // The template was checked by validation; a template that no longer decodes gives an empty Job,
    // which the API server rejects with its own message.
    let template: JobTemplateSpec = template.decode().unwrap_or_default();
    let mut job_spec = template.spec.unwrap_or_default();
    let pod = job_spec.template.spec.get_or_insert_with(Default::default);
    if pod.restart_policy.is_none() {
        pod.restart_policy = Some("Never".into());
    }
    for c in &mut pod.containers {
        let mut env: Vec<EnvVar> = c.env.take().unwrap_or_default();
        env.retain(|e| !env_all.iter().any(|o| o.name == e.name));
        env.extend(env_all.iter().cloned());
        c.env = Some(env);
        if c.termination_message_policy.is_none() {
            // A crashing program's last log lines become the reason when it wrote no report.
            c.termination_message_policy = Some("FallbackToLogsOnError".into());
        }
    }
    let mut job_labels: BTreeMap<String, String> =
        template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    job_labels.insert(POLICY_LABEL.into(), name.clone());
    job_labels.insert(RUN_LABEL.into(), run.id.clone());
    job_labels.insert(TRIAL_LABEL.into(), trial);
    job_labels.insert(labels::MANAGED_BY.into(), crate::names::CONTROLLER_NAME.into());
    let pod_labels =
        job_spec.template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(Default::default);
    for (k, v) in &job_labels {
        pod_labels.insert(k.clone(), v.clone());
    }
    let mut job = Job { spec: Some(job_spec), ..Job::default() };
    job.metadata.name = Some(job_name.clone());
    job.metadata.namespace = Some(ns);
    job.metadata.labels = Some(job_labels);
    job.metadata.annotations = template.metadata.and_then(|m| m.annotations);
    job.metadata.owner_references = policy.controller_owner_ref(&()).map(|o| vec![o]);
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use jiff::Timestamp;

    fn env_of(job: &Job) -> BTreeMap<String, String> {
        let c = &job.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
        c.env.as_ref().unwrap().iter().map(|e| (e.name.clone(), e.value.clone().unwrap_or_default())).collect()
    }

    #[test]
    fn trial_and_evaluation_jobs_carry_the_contract() {
        let mut p = fixtures::retrain_policy("fraud-retrain");
        p.metadata.uid = Some("uid-1".into());
        p.spec.dataset.version = Some("{{now:%Y}}".into());
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let mut run = run::start(&p.spec, "default/fraud-retrain", "r-0002", ("manual", None), now);
        run.trial_results[0]
            .params
            .insert("lr".into(), crate::api::retrain_policy::ParameterValue(serde_json::json!(0.01)));
        let trial = JobToStart::Trial { name: "fraud-retrain-r-0002-t0".into(), trial: run.trial_results[0].clone() };
        let tracking = Tracking { uri: "http://mlflow:5000".into(), experiment_id: "4".into(), run_id: "abc".into() };
        let job = build(&p, &run, &trial, Some(&tracking));
        let env = env_of(&job);
        assert_eq!(env["CHAMPION_RUN_ID"], "r-0002");
        assert_eq!(env["CHAMPION_TRIAL"], "0");
        assert_eq!(env["CHAMPION_PARAMS"], r#"{"lr":0.01}"#);
        assert_eq!(env["DATASET_URI"], "s3://data/fraud");
        assert_eq!(env["DATASET_VERSION"], "2026");
        assert_eq!(env["MODEL_OUTPUT_URI"], "s3://models/fraud/r-0002/0");
        assert_eq!(env["MLFLOW_RUN_ID"], "abc");
        assert_eq!(job.metadata.name.as_deref(), Some("fraud-retrain-r-0002-t0"));
        assert_eq!(job.metadata.owner_references.as_ref().unwrap()[0].uid, "uid-1");
        let pod = job.spec.as_ref().unwrap().template.clone();
        assert_eq!(pod.metadata.unwrap().labels.unwrap()[RUN_LABEL], "r-0002");
        let ps = pod.spec.unwrap();
        assert_eq!(ps.restart_policy.as_deref(), Some("Never"));
        assert_eq!(ps.containers[0].termination_message_policy.as_deref(), Some("FallbackToLogsOnError"));

        run.candidate_uri = Some("s3://c".into());
        run.champion_uri = Some("s3://h".into());
        let eval = build(&p, &run, &JobToStart::Evaluation { name: "e".into() }, None);
        let env = env_of(&eval);
        assert_eq!((env["CANDIDATE_MODEL_URI"].as_str(), env["CHAMPION_MODEL_URI"].as_str()), ("s3://c", "s3://h"));
        assert!(!env.contains_key("CHAMPION_TRIAL") && !env.contains_key("MLFLOW_RUN_ID"));
        assert_eq!(eval.metadata.labels.unwrap()[TRIAL_LABEL], "eval");
    }
}
