//! The RetrainPolicy kind: triggers → training Jobs → offline evaluation → promotion.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{DeploymentRef, JobTemplate, PrometheusQuery, ThresholdRange};
use super::duration::Duration;
use super::experiment::Goal;

/// Retrains a ModelDeployment's model when a trigger fires, evaluates the result against the champion
/// offline, and hands a winner to the ModelDeployment's rollout.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "champion.ml",
    version = "v1alpha1",
    kind = "RetrainPolicy",
    doc = "Retraining of a deployed model: triggers, training Jobs, offline evaluation, promotion.",
    namespaced,
    status = "RetrainPolicyStatus",
    shortname = "rtp",
    category = "champion",
    cel,
    printcolumn(name = "Deployment", type_ = "string", json_path = ".spec.deploymentRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Last-Trigger", type_ = "string", json_path = ".status.lastTrigger.reason"),
    printcolumn(name = "Last-Run", type_ = "string", json_path = ".status.lastRun"),
    printcolumn(name = "Next", type_ = "date", json_path = ".status.nextScheduled"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct RetrainPolicySpec {
    /// The ModelDeployment whose model is retrained.
    pub deployment_ref: DeploymentRef,
    /// What starts a run. `kubectl champion retrain NAME` starts one by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Triggers>,
    /// At most one run per cooldown, whatever fires (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<Duration>,
    /// `Forbid` (a trigger during a run is dropped) or `Replace` (the running one is stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// The training data, passed to the Jobs and recorded per run.
    pub dataset: Dataset,
    /// The training Job(s).
    pub training: Training,
    /// The offline evaluation of the candidate against the champion.
    pub evaluation: Evaluation,
    /// What happens to a candidate that passes the gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
    /// Runs kept in status (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub history_limit: Option<i32>,
}

/// The triggers of a retraining run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Triggers {
    /// A cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Metrics (drift, live accuracy) that fire when out of range for a while.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.name == m.name))").message("trigger metric names must be unique"))]
    pub metrics: Vec<MetricTrigger>,
    /// How often the metric triggers' queries are read (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_interval: Option<Duration>,
}

/// A cron schedule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Five-field cron syntax, e.g. `0 3 * * 0` (checked by the operator).
    #[schemars(length(min = 9, max = 128))]
    pub cron: String,
    /// An IANA time zone such as `Europe/Berlin` (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
}

/// A metric that fires a run when out of range for `for`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricTrigger {
    /// The trigger's name, recorded as the run's reason.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Where the value comes from.
    pub prometheus: PrometheusQuery,
    /// The healthy range; leaving it fires.
    pub threshold_range: ThresholdRange,
    /// How long the value must stay out of range before firing (default: at once).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Duration>,
}

/// What happens to a trigger that fires while a run is under way.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConcurrencyPolicy {
    /// Dropped.
    #[default]
    Forbid,
    /// The running run is stopped and a new one starts.
    Replace,
}

/// The training data.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    /// The data's location, passed as `DATASET_URI`.
    #[schemars(length(min = 1, max = 1024))]
    pub uri: String,
    /// The data's version, passed as `DATASET_VERSION`; `{{now:%Y-%m-%d}}` is expanded at trigger time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub version: Option<String>,
}

/// The training Job(s).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Training {
    /// The Job template of one training trial.
    pub template: JobTemplate,
    /// An optional hyperparameter search; without it, one Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Search>,
    /// Where a trial writes its model, passed as `MODEL_OUTPUT_URI`; `{{namespace}}`, `{{policy}}`,
    /// `{{run}}` and `{{trial}}` are expanded. The best trial's location becomes the candidate's
    /// `CANDIDATE_MODEL_URI` and its registry source. Required.
    #[schemars(length(min = 1, max = 1024))]
    pub model_output_uri: String,
}

/// How the search space is explored.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum SearchAlgorithm {
    /// Every combination of the listed values (ranges are sampled at evenly spaced points).
    Grid,
    /// Random samples, reproducible from the run id.
    #[default]
    Random,
}

/// A hyperparameter search.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.parallelism) || self.maxTrials >= self.parallelism")
        .message("search.maxTrials must be at least search.parallelism")
)]
pub struct Search {
    /// `grid` or `random` (the default).
    #[serde(default)]
    pub algorithm: SearchAlgorithm,
    /// The parameters and their ranges or values, passed to each trial as `CHAMPION_PARAMS` (JSON).
    #[x_kube(validation = Rule::new("self.size() >= 1 && self.size() <= 16").message("search.parameters needs between 1 and 16 parameters"))]
    pub parameters: BTreeMap<String, Parameter>,
    /// The most trials to run.
    #[schemars(range(min = 1, max = 100))]
    pub max_trials: i32,
    /// Trials run at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub parallelism: Option<i32>,
    /// The metric, reported by each trial, that picks the best trial.
    pub objective: SearchObjective,
}

/// How a parameter's values are spread over a range.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum Scale {
    /// Evenly.
    #[default]
    Linear,
    /// Evenly in the logarithm (for learning rates and the like); min must be positive.
    Log,
}

/// A hyperparameter: a range (min, max, scale) or a list of values. (That it is one or the other is checked
/// by the operator: CEL cannot see `values`, whose items have no single type.)
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.min) == has(self.max)").message("a parameter range needs both min and max"),
    validation = Rule::new("!has(self.min) || !has(self.max) || self.min < self.max").message("a parameter's min must be less than its max"),
    validation = Rule::new("!has(self.scale) || self.scale != 'log' || (has(self.min) && self.min > 0.0)").message("a log-scale parameter needs min > 0")
)]
pub struct Parameter {
    /// The lowest value of a range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The highest value of a range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// `linear` (default) or `log`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
    /// The values to choose from (numbers or strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub values: Option<Vec<ParameterValue>>,
}

/// A hyperparameter value: a number or a string, kept as written.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(transparent)]
pub struct ParameterValue(pub serde_json::Value);

impl schemars::JsonSchema for ParameterValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ParameterValue".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Any JSON value as far as the schema goes (a structural schema has no "number or string" type);
        // the operator's validation accepts numbers and strings only.
        schemars::json_schema!({"x-kubernetes-preserve-unknown-fields": true, "description": "A number or a string."})
    }
}

/// The trial metric that picks the best trial.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SearchObjective {
    /// The metric's key in the trial's reported JSON.
    #[schemars(length(min = 1, max = 63))]
    pub metric: String,
    /// `maximize` (the default) or `minimize`.
    #[serde(default)]
    pub goal: Goal,
}

/// The offline evaluation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// The evaluation Job template; it gets `CANDIDATE_MODEL_URI` and `CHAMPION_MODEL_URI`.
    pub template: JobTemplate,
    /// Every gate must hold for the candidate to be promoted.
    #[schemars(length(min = 1, max = 16))]
    pub gates: Vec<Gate>,
}

/// A comparison of the candidate with the champion on one evaluation metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.minAbsoluteChange) || has(self.maxAbsoluteChange) || has(self.minRelativeChange) || has(self.maxRelativeChange)").message("a gate needs minAbsoluteChange, maxAbsoluteChange, minRelativeChange or maxRelativeChange"),
    validation = Rule::new("(!has(self.maxAbsoluteChange) || self.maxAbsoluteChange >= 0.0) && (!has(self.maxRelativeChange) || self.maxRelativeChange >= 0.0)").message("maxAbsoluteChange and maxRelativeChange are how much worse the candidate may be: 0 or more")
)]
pub struct Gate {
    /// The metric's key in the evaluation Job's report, which holds both models' metrics:
    /// `{"candidate": {"f1": 0.91, ...}, "champion": {"f1": 0.90, ...}}`.
    #[schemars(length(min = 1, max = 63))]
    pub metric: String,
    /// `maximize` (default) or `minimize`: which direction is better.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
    /// The candidate must improve on the champion by at least this much (in the goal's direction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_absolute_change: Option<f64>,
    /// The candidate may be worse than the champion by at most this much (0: no worse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_absolute_change: Option<f64>,
    /// The candidate must improve on the champion by at least this fraction of the champion's value
    /// (0.01: one percent better).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_relative_change: Option<f64>,
    /// The candidate may be worse than the champion by at most this fraction of the champion's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_relative_change: Option<f64>,
}

/// What happens to a candidate that passes the gates.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum PromotionMode {
    /// Handed to the ModelDeployment at once (its steps shadow and canary it).
    #[default]
    Auto,
    /// Waits in `Evaluated` for `kubectl champion promote-run NAME RUN`.
    Manual,
}

/// Promotion settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    /// `auto` (the default) or `manual`.
    #[serde(default)]
    pub mode: PromotionMode,
}

/// Where a RetrainPolicy stands.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RetrainPhase {
    /// Waiting for a trigger.
    #[default]
    Idle,
    /// Training Jobs are running.
    Training,
    /// The evaluation Job is running.
    Evaluating,
    /// A candidate is being handed to the ModelDeployment.
    Promoting,
    /// A run ended; the next may start after the cooldown.
    CoolingDown,
    /// The last run failed, or the spec is invalid; see conditions.
    Failed,
}

/// The last trigger that fired.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TriggerRecord {
    /// `schedule`, `manual`, or the metric trigger's name.
    pub reason: String,
    /// When it fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
    /// The metric value that fired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// How a run ended.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunDecision {
    /// Still under way.
    Running,
    /// Passed the gates; registered and handed to the rollout (the followed alias moved to it).
    Promoted,
    /// Passed the gates; waits for `kubectl champion promote-run`, or for a person to change the pinned
    /// version in the ModelDeployment (the reason says how).
    Evaluated,
    /// Failed a gate.
    Rejected,
    /// A Job failed or reported nothing usable, or promotion was impossible.
    Failed,
    /// Stopped because a newer run replaced it (`concurrencyPolicy: Replace`).
    Cancelled,
}

/// Where a run under way stands.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStage {
    /// Training trials run.
    Training,
    /// The evaluation Job runs.
    Evaluating,
    /// The candidate is being registered and the alias moved.
    Promoting,
    /// The run has ended.
    Done,
}

/// Where one Job (a trial or the evaluation) stands.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Not started yet (waiting for a parallelism slot).
    Pending,
    /// Its Job exists and has not finished.
    Running,
    /// Finished and reported usable metrics.
    Succeeded,
    /// Failed after its retries, or reported nothing usable.
    Failed,
}

/// One training trial.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrialRecord {
    /// The trial's number in the run, from 0, passed as `CHAMPION_TRIAL`.
    pub index: i32,
    /// The parameters proposed, passed as `CHAMPION_PARAMS`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, ParameterValue>,
    /// Where it stands.
    pub state: JobState,
    /// Its Job's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The metrics it reported.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its nested MLflow run, when a tracking server is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow_run_id: Option<String>,
}

/// One gate's result.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GateResult {
    /// The gate's metric.
    pub metric: String,
    /// The candidate's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<f64>,
    /// The champion's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion: Option<f64>,
    /// Whether it held.
    pub passed: bool,
    /// What was compared, in a sentence.
    pub message: String,
}

/// The offline evaluation of a run's candidate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationRecord {
    /// Its Job's name.
    pub job: String,
    /// Where it stands.
    pub state: JobState,
    /// The candidate's reported metrics.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub candidate: BTreeMap<String, f64>,
    /// The champion's reported metrics.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub champion: BTreeMap<String, f64>,
    /// Each gate's result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateResult>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One retraining run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The run's id, e.g. `r-0007`.
    pub id: String,
    /// What fired it: `schedule`, `manual`, or a metric trigger's name.
    pub trigger: String,
    /// The metric value that fired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_value: Option<f64>,
    /// The dataset version used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Where it stands while under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<RunStage>,
    /// Trials proposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<i32>,
    /// The trials; once the run has ended only the best and the failed ones are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trial_results: Vec<TrialRecord>,
    /// The best trial's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_trial: Option<i32>,
    /// The best trial's reported metrics.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub best: BTreeMap<String, f64>,
    /// The candidate model's location (the best trial's `MODEL_OUTPUT_URI`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_uri: Option<String>,
    /// The champion model's location when the evaluation started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion_uri: Option<String>,
    /// The offline evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<EvaluationRecord>,
    /// The model version produced: the registry's version number once registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_version: Option<String>,
    /// How the ModelDeployment's rollout of the promoted candidate went: `RollingOut`, `Serving` or
    /// `RolledBack: <why>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// The run's MLflow run, when a tracking server is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow_run_id: Option<String>,
    /// The MLflow experiment of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow_experiment_id: Option<String>,
    /// Where the run is tracked, or why it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<String>,
    /// How it ended (`Running` while under way).
    pub decision: RunDecision,
    /// Why, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A metric trigger's last reading.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricTriggerStatus {
    /// The trigger's name.
    pub name: String,
    /// The value last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Since when the value has been out of range without a break (kept across operator restarts, so
    /// `for` is measured from the first reading out of range).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_range_since: Option<Time>,
    /// Why the last reading failed or gave nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the operator observed and decided for a RetrainPolicy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RetrainPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the policy stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RetrainPhase>,
    /// A one-line explanation of the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The last trigger that fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trigger: Option<TriggerRecord>,
    /// The id and outcome of the last run, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// When the schedule fires next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled: Option<Time>,
    /// The schedule's last slot that was accounted for (fired, or dropped by the cooldown or a run
    /// under way); the next fires after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled: Option<Time>,
    /// When the last run started (the cooldown counts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_started: Option<Time>,
    /// How many runs have started; the next run's id is `r-<this + 1>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_started: Option<i64>,
    /// The metric triggers' last readings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_triggers: Vec<MetricTriggerStatus>,
    /// The last `champion.ml/request` annotation value acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request: Option<String>,
    /// Recent runs, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunRecord>,
    /// Standard conditions: Ready, Progressing, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
