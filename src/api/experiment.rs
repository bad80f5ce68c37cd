//! The Experiment kind: an online A/B/n or shadow comparison of model versions with a statistical decision.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{DeploymentRef, MetricCheck, ModelRef};
use super::duration::Duration;

/// A time-boxed online comparison of model variants against a ModelDeployment's stable version.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "champion.ml",
    version = "v1alpha1",
    kind = "Experiment",
    doc = "An online A/B/n or shadow comparison of model versions with a statistical decision.",
    namespaced,
    status = "ExperimentStatus",
    shortname = "mlx",
    category = "champion",
    cel,
    printcolumn(name = "Deployment", type_ = "string", json_path = ".spec.deploymentRef.name"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Winner", type_ = "string", json_path = ".status.winner"),
    printcolumn(name = "Confidence", type_ = "number", json_path = ".spec.decision.confidence"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.mode != 'shadow' || self.variants.size() == 1")
        .message("shadow mode compares exactly one variant against the control"),
    validation = Rule::new("self.deploymentRef == oldSelf.deploymentRef").message("deploymentRef is immutable")
)]
pub struct ExperimentSpec {
    /// The ModelDeployment whose stable version is the control.
    pub deployment_ref: DeploymentRef,
    /// `split` (A/B/n on live traffic, the default) or `shadow` (mirrored requests, outputs compared).
    #[serde(default)]
    pub mode: ExperimentMode,
    /// The challengers; the rest of the traffic stays on stable (the control, named `control`).
    #[schemars(length(min = 1, max = 8))]
    #[x_kube(
        validation = Rule::new("self.all(v, self.exists_one(w, w.name == v.name))").message("variant names must be unique"),
        validation = Rule::new("self.map(v, v.weight).sum() <= 100").message("variant weights must sum to at most 100"),
        validation = Rule::new("self.all(v, v.name != 'control')").message("the name control is reserved for the stable version")
    )]
    pub variants: Vec<Variant>,
    /// How requests are assigned to variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
    /// The one metric that decides.
    pub objective: Objective,
    /// Metrics that must not get worse, whatever the objective says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.name == m.name))").message("guardrail names must be unique"))]
    pub guardrails: Vec<MetricCheck>,
    /// Metrics on which a variant may be worse than the control by at most a relative margin (latency,
    /// cost): a variant shown worse by more than the margin (always-valid, watched at every evaluation) stops
    /// the experiment, and a variant can only win once it is shown within the margin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.name == m.name))").message("nonInferiority names must be unique"))]
    pub non_inferiority: Vec<NonInferiorityCheck>,
    /// When and how the experiment decides.
    pub decision: Decision,
    /// `promote` rolls the winner out through the ModelDeployment's steps; `none` only reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<OnSuccess>,
}

/// How the experiment routes traffic.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum ExperimentMode {
    /// A/B/n: each variant serves its weight of live traffic.
    #[default]
    Split,
    /// The variant receives mirrored requests and serves nobody.
    Shadow,
}

/// A challenger model.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    /// The variant's name (lowercase, as in a label value).
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// The model it serves.
    pub model: ModelRef,
    /// Percent of live traffic (split mode) or of mirrored requests (shadow mode).
    #[schemars(range(min = 0, max = 100))]
    pub weight: i32,
    /// The model server image of this variant, instead of the ModelDeployment template's (first
    /// container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub image: Option<String>,
    /// Environment variables of this variant's model server (first container), replacing those of the
    /// same name in the ModelDeployment's template and adding the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub env: Option<Vec<k8s_openapi::api::core::v1::EnvVar>>,
}

/// Sticky assignment of users to variants.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The request header hashed for sticky assignment where the router supports it; else random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub header: Option<String>,
}

/// The kind of objective metric.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum ObjectiveType {
    /// successes / trials, such as a conversion rate.
    #[default]
    Proportion,
    /// sum / count, with the sum of squares for the variance, such as revenue per session.
    Mean,
}

/// Whether larger or smaller is better.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum Goal {
    /// Larger is better.
    #[default]
    Maximize,
    /// Smaller is better.
    Minimize,
}

/// The metric that decides the experiment; its queries return totals over `{{window}}` per `{{variant}}`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'proportion' || (has(self.successes) && has(self.trials))").message("a proportion objective needs successes and trials"),
    validation = Rule::new("self.type != 'mean' || (has(self.sum) && has(self.count) && has(self.sumOfSquares))").message("a mean objective needs sum, count and sumOfSquares")
)]
pub struct Objective {
    /// The objective's name.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// `proportion` (successes/trials, the default) or `mean` (sum/count).
    #[serde(default, rename = "type")]
    pub type_: ObjectiveType,
    /// The Prometheus provider by name (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub provider: Option<String>,
    /// Proportion: the query counting successes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub successes: Option<String>,
    /// Proportion: the query counting trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub trials: Option<String>,
    /// Mean: the query summing the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub sum: Option<String>,
    /// Mean: the query counting the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub count: Option<String>,
    /// Mean: the query summing the squared values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub sum_of_squares: Option<String>,
    /// `maximize` or `minimize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
}

/// A non-inferiority guardrail: a mean per arm from totals, like a `mean` objective.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NonInferiorityCheck {
    /// The metric's name.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// `minimize` (the default: smaller is better, as latency) or `maximize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
    /// How much worse than the control a variant may be, relative: 0.02 allows 2 %.
    #[schemars(range(min = 0.0001, max = 1.0))]
    pub margin: f64,
    /// The Prometheus provider by name (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub provider: Option<String>,
    /// The query summing the values per arm (placeholders as in the objective).
    #[schemars(length(min = 1, max = 4096))]
    pub sum: String,
    /// The query counting the values per arm.
    #[schemars(length(min = 1, max = 4096))]
    pub count: String,
    /// The query summing the squared values per arm.
    #[schemars(length(min = 1, max = 4096))]
    pub sum_of_squares: String,
}

/// The statistical test that decides.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum DecisionMethod {
    /// An always-valid sequential test: looking at the results continuously does not inflate errors.
    #[default]
    Sequential,
    /// A classical test, acted on once, at `maxDuration` (earlier values are shown, never acted on).
    FixedHorizon,
    /// A group-sequential design (Lan–DeMets O'Brien–Fleming spending) over `expectedSampleSize`: each
    /// evaluation is a look; it decides when a look crosses its boundary, and ends Inconclusive at the
    /// planned size without a crossing.
    GroupSequential,
}

/// When and how the experiment decides.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.method) || self.method != 'groupSequential' || has(self.expectedSampleSize)")
        .message("method groupSequential needs decision.expectedSampleSize (the total units of control and variant at the last look)")
)]
pub struct Decision {
    /// The confidence level, e.g. 0.95.
    #[schemars(range(min = 0.5, max = 0.9999))]
    pub confidence: f64,
    /// No decision before every variant has this many samples (trials or count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000_000))]
    pub min_samples_per_variant: Option<i64>,
    /// `sequential` (the default) or `fixedHorizon`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<DecisionMethod>,
    /// The experiment ends as Inconclusive after this long without a decision.
    pub max_duration: Duration,
    /// No decision before the experiment has run this long (default 0; a day covers a daily cycle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration: Option<Duration>,
    /// How often the objective and guardrails are measured and the statistics looked at (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_interval: Option<Duration>,
    /// The total sample size at which the sequential method's confidence sequence is tightest; frozen at
    /// the first look (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 1_000_000_000))]
    pub tuning_sample_size: Option<i64>,
    /// For `groupSequential`: the units of the control and a variant together at which the design ends
    /// (information fraction 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 1_000_000_000))]
    pub expected_sample_size: Option<i64>,
}

/// What happens when a challenger wins.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum OnSuccess {
    /// Roll the winner out through the ModelDeployment's steps.
    Promote,
    /// Report the winner only.
    #[default]
    None,
}

/// Where an Experiment stands.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExperimentPhase {
    /// Accepted, not yet running (or the spec is invalid; see conditions).
    #[default]
    Pending,
    /// Collecting samples.
    Running,
    /// A decision was reached.
    Concluded,
    /// maxDuration passed without a decision.
    Inconclusive,
    /// Stopped by a person or by a guardrail.
    Aborted,
}

/// The estimate for one variant.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct VariantResult {
    /// The variant's name (`control` for stable).
    pub name: String,
    /// Samples seen (trials or count).
    pub samples: i64,
    /// The estimated objective.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<f64>,
    /// The confidence interval of the estimate, `[low, high]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interval: Vec<f64>,
    /// The p-value of the comparison with the control: always valid (a running minimum) with the sequential
    /// method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// The difference to the control (variant − control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<f64>,
    /// The confidence interval (sequential: the always-valid confidence sequence) of the difference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effect_interval: Vec<f64>,
    /// Looks taken by the sequential method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looks: Option<i64>,
    /// The sequential method's mixing variance, frozen at the first look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixing_variance: Option<f64>,
    /// The look at which the sequential test first rejected "no difference"; it stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_at_look: Option<i64>,
    /// The group-sequential design's looks so far (information fraction and z), its history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_sequential_looks: Vec<GroupSequentialLook>,
    /// Shadow mode under the built-in router with a comparison: the variant's answers compared with the
    /// live (stable) answers since the experiment started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparisons: Option<i64>,
    /// The share of them that agreed (failed and unusable shadow answers count as disagreeing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    /// The non-inferiority guardrails of this variant against the control.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_inferiority: Vec<NonInferiorityResult>,
}

/// One non-inferiority guardrail of one variant.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NonInferiorityResult {
    /// The guardrail's name.
    pub name: String,
    /// The relative difference to the control, `variant / control − 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lift: Option<f64>,
    /// The one-sided bound of the lift on the harmful side (the upper bound when smaller is better).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
    /// Whether the bound lies inside the margin: the variant is shown no worse than the margin allows.
    pub non_inferior: bool,
    /// Whether the always-valid confidence sequence shows the variant worse than the margin allows.
    pub harmful: bool,
}

/// One look of a group-sequential design.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupSequentialLook {
    /// The information fraction `t = units / expectedSampleSize` (at most 1).
    pub information_fraction: f64,
    /// The z statistic of the difference at the look.
    pub z: f64,
    /// The boundary the look was held to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z_bound: Option<f64>,
}

/// The counters of one arm (control or a variant) since the experiment started, per query.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ArmCounters {
    /// The arm's name (`control` for stable).
    pub name: String,
    /// Its revision hash.
    pub revision: String,
    /// The counters by query (`successes`, `trials`, `sum`, `count`, `sumOfSquares`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<NamedCounter>,
}

/// One counter of an arm.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NamedCounter {
    /// The query's name.
    pub query: String,
    /// Its baselines and counts.
    pub counter: crate::experiment::counters::Counter,
}

/// What the operator observed and decided for an Experiment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the experiment stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ExperimentPhase>,
    /// A one-line explanation of the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the experiment started running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the experiment ended; its variants keep their pods for the ModelDeployment's
    /// `strategy.scaleDownDelay` after it, while the routing leaves them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Time>,
    /// The counters behind the estimates, per arm (baselines kept across operator restarts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arms: Vec<ArmCounters>,
    /// When the objective was last measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation: Option<Time>,
    /// Consecutive evaluations that found a sample ratio mismatch (three stop the experiment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srm_strikes: Option<i32>,
    /// Per-variant estimates, the control first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantResult>,
    /// The winning variant, once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    /// What promoting the winner did, or the exact change to make (a ModelDeployment that pins its version
    /// in Git is never edited by the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<String>,
    /// How live traffic is assigned to the variants: sticky by a header, or (the replicas router, which
    /// cannot match headers) by the ratio of pods, per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<String>,
    /// The last control request consumed (`champion.ml/request: stop/<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request: Option<String>,
    /// Standard conditions: Ready, Progressing, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
