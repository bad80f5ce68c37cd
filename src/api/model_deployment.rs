//! The ModelDeployment kind: serves one model and rolls every new version out by steps.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{MetricCheck, ModelRef, PodTemplate};
use super::duration::Duration;

/// The longest ModelDeployment name: `<name>-candidate` must fit in a Service name (63 characters); a CEL
/// rule on `metadata.name` enforces it at apply.
pub const MAX_NAME_LEN: usize = 63 - "-candidate".len();

/// Serves one model behind one stable Service, and rolls every new version out progressively.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "champion.ml",
    version = "v1alpha1",
    kind = "ModelDeployment",
    doc = "A model served behind one stable Service, with every new version rolled out by steps.",
    namespaced,
    status = "ModelDeploymentStatus",
    shortname = "md",
    category = "champion",
    cel,
    // The name goes into the Services `<name>-candidate` and `<name>-mirror` (DNS-1035 labels, at most 63
    // characters) and into the label value `champion.ml/deployment`: see `MAX_NAME_LEN`.
    validation = Rule::new("self.metadata.name.size() <= 53")
        .message("metadata.name must be at most 53 characters, so that the Services <name>-candidate and <name>-mirror fit in 63"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter), as the Services named after it must be"),
    printcolumn(
        name = "Model",
        type_ = "string",
        description = "The stable version",
        json_path = ".status.stable.version"
    ),
    printcolumn(
        name = "Candidate",
        type_ = "string",
        description = "The version being tried",
        json_path = ".status.candidate.version"
    ),
    printcolumn(
        name = "Weight",
        type_ = "integer",
        description = "Percent of live traffic on the candidate",
        json_path = ".status.weights.candidate"
    ),
    printcolumn(
        name = "Step",
        type_ = "string",
        description = "Current step / number of steps",
        json_path = ".status.step"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        description = "Where the rollout stands",
        json_path = ".status.phase"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.strategy) || !has(self.strategy.canary) || (has(self.traffic) && has(self.traffic.router) && self.traffic.router != 'replicas') || !self.strategy.canary.steps.exists(s, has(s.mirror))")
        .message("mirror steps need a traffic router that can copy requests (gatewayAPI or istio); the replicas router cannot mirror")
)]
pub struct ModelDeploymentSpec {
    /// The model to serve. Changing the version (or the alias target) starts a rollout.
    pub model: ModelRef,
    /// Pods of the stable version (default 1). The candidate gets as many pods as its weight needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// The pod template of the model server (an ordinary PodTemplateSpec).
    pub template: PodTemplate,
    /// How live traffic is split between stable and candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// How a new version is rolled out. Without it, a new version replaces the old one at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// How many old revisions are kept (at zero replicas) for fast rollback (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 50))]
    pub revision_history_limit: Option<i32>,
}

/// The traffic router that splits requests between versions.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Router {
    /// A Gateway API HTTPRoute with weighted backends.
    #[serde(rename = "gatewayAPI")]
    GatewayApi,
    /// An Istio VirtualService with weighted routes.
    #[serde(rename = "istio")]
    Istio,
    /// No router: the candidate's share of pods behind one Service sets its share of traffic.
    #[default]
    #[serde(rename = "replicas")]
    Replicas,
    /// Champion's own router (`champion-router`), deployed per ModelDeployment in front of its versions:
    /// exact and sticky splits, shadows whose answers are compared with the live ones, prediction IDs,
    /// ground-truth feedback and the built-in analysis metrics. No mesh needed.
    #[serde(rename = "builtin")]
    Builtin,
}

/// How live traffic reaches the model servers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.router) || self.router != 'gatewayAPI' || has(self.gatewayAPI)").message("router gatewayAPI needs traffic.gatewayAPI with parentRefs"),
    validation = Rule::new("!has(self.router) || self.router != 'istio' || has(self.istio)").message("router istio needs traffic.istio with hosts")
)]
pub struct Traffic {
    /// `gatewayAPI`, `istio`, `builtin` or `replicas` (the default: replica ratio, no mesh needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<Router>,
    /// Settings of the built-in router (all optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinTraffic>,
    /// Settings of the Gateway API router.
    #[serde(default, rename = "gatewayAPI", skip_serializing_if = "Option::is_none")]
    pub gateway_api: Option<GatewayApiTraffic>,
    /// Settings of the Istio router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioTraffic>,
    /// The port the model server listens on and the Services expose (default 8080).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// The built-in router's settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BuiltinTraffic {
    /// Router pods (default 1). Feedback is joined by the router pod that served the prediction: with
    /// several pods, feedback that reaches another one is counted as unmatched (the prediction log keeps
    /// every prediction for an offline join).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub replicas: Option<i32>,
    /// Node labels the router's pods must run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<std::collections::BTreeMap<String, String>>,
    /// Taints the router's pods tolerate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub tolerations: Option<Vec<k8s_openapi::api::core::v1::Toleration>>,
    /// The router container's resource requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
    /// How a shadow's JSON answer is compared with the live one in mirror steps (and Experiments in
    /// shadow mode). Without it shadows are counted by status only and `shadowAgreement` has no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<ShadowComparison>,
    /// Where the predicted label sits in an answer, to score feedback labels (same syntax as
    /// `comparison.path`; default `comparison.path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub label_path: Option<String>,
    /// The share of predictions, 0 to 100, whose request and response bodies go to the prediction log
    /// (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub log_body_percent: Option<f64>,
}

/// How live and shadow answers are compared.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.tolerance) || self.mode == 'numeric'").message("comparison.tolerance is for mode numeric"),
    validation = Rule::new("!has(self.k) || self.mode == 'topK'").message("comparison.k is for mode topK")
)]
pub struct ShadowComparison {
    /// The field compared: a dotted path (`predictions.0`) or a JSON pointer (`/predictions/0`); empty
    /// compares the whole answer.
    #[schemars(length(max = 256))]
    pub path: String,
    /// `exact` (the default), `numeric` (within `tolerance`) or `topK` (the sets of the `k` best labels).
    #[serde(default)]
    pub mode: CompareMode,
    /// The largest absolute difference that still agrees (mode numeric; default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub tolerance: Option<f64>,
    /// How many of the best labels are compared (mode topK; default 1, the arg-max).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub k: Option<u32>,
}

/// How two answers are judged to agree.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum CompareMode {
    /// Equal JSON values (numbers compared as numbers).
    #[default]
    Exact,
    /// Numbers (or arrays of numbers) within `tolerance`.
    Numeric,
    /// Classifier outputs whose `k` best labels are the same set.
    #[serde(rename = "topK")]
    TopK,
}

/// Where the generated HTTPRoute attaches.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiTraffic {
    /// The Gateways the HTTPRoute attaches to.
    #[schemars(length(min = 1, max = 16))]
    pub parent_refs: Vec<ParentRef>,
    /// Hostnames the route matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    pub hostnames: Option<Vec<String>>,
}

/// A Gateway an HTTPRoute attaches to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    /// The Gateway's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The Gateway's namespace (default: the ModelDeployment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// A listener of the Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub section_name: Option<String>,
}

/// Where the generated VirtualService applies.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IstioTraffic {
    /// Hosts the VirtualService routes (e.g. `fraud.example.com` or the stable Service's name).
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 253)))]
    pub hosts: Vec<String>,
    /// Istio Gateways the VirtualService binds to (default: the mesh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    pub gateways: Option<Vec<String>>,
}

/// The rollout strategy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// Canary: the steps a new version goes through and the checks that guard them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// A rollout that waits this long without progress, while progress is possible, is rolled back
    /// (default 15m).
    ///
    /// The rule: the deadline counts only time spent waiting for something that could happen without a
    /// person: the candidate's pods to become ready (a `setWeight` step, the end of a `mirror` step, the
    /// full size before promotion) and data for an analysis gate that answers "no data". Its clock
    /// (`status.waitingSince`) starts when such a wait begins and is cleared when the rollout advances.
    /// It never runs during a `pause` step (timed or indefinite), a user's `kubectl champion pause`, the
    /// running time of a `mirror` step, or while metrics cannot be measured (a metric outage holds the
    /// rollout with its own clock, `status.analysis.unavailableSince`, see `analysis.maxOutage`). It
    /// restarts from zero whenever a user acts: `promote`, `promote --full`, `resume`, `retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline: Option<Duration>,
    /// How long a revision that traffic has left keeps its pods before they are scaled down (default
    /// 30s): the old stable after a promotion, a candidate after an abort or a rollback. Traffic always
    /// leaves first (route and Services), so in-flight requests finish on pods that are still there.
    /// Under the built-in router at least 90s, the time its configuration may take to reach its pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay: Option<Duration>,
}

/// Canary steps and background analysis.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.analysis) ? self.steps.all(s, !has(s.analysis) || s.analysis.metrics.all(m, self.analysis.metrics.exists(d, d.name == m))) : !self.steps.exists(s, has(s.analysis))")
        .message("every metric named in an analysis step must be declared in strategy.canary.analysis.metrics")
)]
pub struct Canary {
    /// The steps, in order. After the last one the candidate gets 100% and becomes stable.
    #[serde(default)]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()").message("setWeight steps must not decrease"))]
    pub steps: Vec<Step>,
    /// Checks run every interval during all steps; too many failures roll back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<BackgroundAnalysis>,
}

/// One rollout step; exactly one of its fields is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("[has(self.setWeight), has(self.pause), has(self.analysis), has(self.mirror)].filter(x, x).size() == 1")
        .message("each step sets exactly one of setWeight, pause, analysis, mirror")
)]
pub struct Step {
    /// Send this percent of live traffic to the candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub set_weight: Option<i32>,
    /// Wait: for a duration, or (without one) until `kubectl champion promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStep>,
    /// A gate: the named metrics must pass now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStep>,
    /// Shadow phase: the candidate receives copies of live requests and serves nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorStep>,
}

/// A pause step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PauseStep {
    /// How long to wait; without it, wait for promote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

/// A gate step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStep {
    /// Names of metrics from `strategy.canary.analysis.metrics` that must pass.
    #[schemars(length(min = 1, max = 8), inner(length(min = 1, max = 63)))]
    pub metrics: Vec<String>,
}

/// A mirror (shadow) step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MirrorStep {
    /// Percent of live requests copied to the candidate.
    #[schemars(range(min = 1, max = 100))]
    pub percent: i32,
    /// How long to mirror before the next step.
    pub duration: Duration,
}

/// Checks that run in the background during every step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundAnalysis {
    /// How often the metrics are measured (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Failed measurements tolerated before rollback (default 0: the first failure rolls back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub failure_limit: Option<i32>,
    /// How long metrics may stay unmeasurable (provider unreachable, bad answers) before the rollout is
    /// rolled back. Unset (the default): a metric outage holds the rollout, with the weights where they
    /// are, until the metrics can be measured again; it is never by itself a reason to roll back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_outage: Option<Duration>,
    /// The metrics, each with its passing range.
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.name == m.name))").message("metric names must be unique"))]
    pub metrics: Vec<MetricCheck>,
}

/// Where a ModelDeployment stands.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeploymentPhase {
    /// Accepted, nothing serving yet (or the spec is invalid; see conditions).
    #[default]
    Pending,
    /// A rollout is under way.
    Progressing,
    /// A rollout waits at a pause step.
    Paused,
    /// One version serves all traffic.
    Healthy,
    /// Something needs attention; the stable version keeps serving.
    Degraded,
    /// The last rollout was rolled back; the stable version serves all traffic.
    RolledBack,
}

/// A version and the revision that serves it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRef {
    /// The model version.
    pub version: String,
    /// The revision number, counting up from 1 for each new (model, template) pair.
    pub revision: i64,
    /// The hash of the model reference and template that identifies the revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The registered model and the registry's version number, when the version came from a registry alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegisteredVersion>,
}

/// A version of a registered model in the registry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredVersion {
    /// The registered model's name.
    pub model: String,
    /// The registry's version number (MLflow's `3`).
    pub version: String,
}

impl RegisteredVersion {
    /// The MLflow URI of the version, `models:/<model>/<version>`.
    pub fn models_uri(&self) -> String {
        format!("models:/{}/{}", self.model, self.version)
    }
}

/// The traffic split now in force, in percent.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Weights {
    /// Percent of live traffic on stable.
    pub stable: i32,
    /// Percent of live traffic on the candidate.
    pub candidate: i32,
    /// Percent of live requests copied to the candidate.
    pub mirror: i32,
}

/// A measurement's outcome.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within range.
    Pass,
    /// Out of range, or no data with `onNoData: fail`.
    Fail,
    /// No data with `onNoData: inconclusive`; counts for nothing.
    Inconclusive,
    /// The measurement could not be taken (provider unreachable, bad answer).
    Error,
}

/// The last measurement of one metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// The metric's name.
    pub name: String,
    /// The parsed value, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The outcome.
    pub verdict: Verdict,
    /// Why, when the value alone does not say (no data, provider error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Background analysis counters and the last measurements.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStatus {
    /// Failed measurements since the candidate's rollout began.
    pub failures: i32,
    /// When the metrics were last measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Time>,
    /// When the current analysis gate was last measured (gates are measured at most once per interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_last_run: Option<Time>,
    /// Since when the metrics cannot be measured; the rollout holds meanwhile. Unset when they can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_since: Option<Time>,
    /// The last measurement of each metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricResult>,
}

/// A revision waiting to be scaled down once the traffic that left it has drained.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDown {
    /// The revision hash.
    pub hash: String,
    /// When its pods are scaled down.
    pub at: Time,
}

/// A version that served as stable.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The model version.
    pub version: String,
    /// Its revision number.
    pub revision: i64,
    /// Its revision hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// When it became stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<Time>,
    /// The registered model and version number, when the version came from a registry alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegisteredVersion>,
}

/// The registry alias a ModelDeployment follows: what it pointed at when last read, and what the operator
/// recorded in the registry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegistryStatus {
    /// The registered model.
    pub model: String,
    /// The alias followed.
    pub alias: String,
    /// The registry's version number that the alias pointed at when last read successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The version handed to the server as `MODEL_VERSION`: the model version's `champion.ml/version` (or
    /// `version`) tag as it was when first seen, else the version number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// The version's storage location (MLflow's `source`), handed to the server as `MODEL_URI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When the operator first saw the alias pointing at this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_at: Option<Time>,
    /// Since when the registry cannot be reached (or answers errors); unset when it can. What serves keeps
    /// serving, and no rollout starts because of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_since: Option<Time>,
    /// The registry version for which the serving alias and the promotion tags were last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_recorded: Option<String>,
    /// The registry version whose rollback was last written (the `champion.ml/rolled-back` tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_recorded: Option<String>,
    /// The registry version that serves and that the registry no longer has (it keeps serving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_deleted: Option<String>,
}

/// What the operator observed and decided for a ModelDeployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelDeploymentStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the rollout stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DeploymentPhase>,
    /// A one-line explanation of the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The version serving live traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<RevisionRef>,
    /// The version being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<RevisionRef>,
    /// The index of the current step (0-based) while a rollout is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<i32>,
    /// The step position as `current/total`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The traffic split now in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    /// Background analysis state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStatus>,
    /// When the current step began (the position a restarted operator resumes from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<Time>,
    /// Since when the rollout waits for progress that is possible (pods to become ready, data for a
    /// gate); the progress deadline counts from here. Unset when nothing such is awaited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<Time>,
    /// Revisions that traffic has left and that keep their pods until the given time, when they are
    /// scaled down (see `strategy.scaleDownDelay`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_downs: Vec<ScaleDown>,
    /// True while the rollout is paused by `kubectl champion pause`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_pause: Option<bool>,
    /// The last control request consumed (the value of the `champion.ml/request` annotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request: Option<String>,
    /// Versions that served as stable, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// The registry alias followed (with `spec.model.registry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryStatus>,
    /// The candidate's live agreement with stable in the current (or last) mirror step, built-in router
    /// with a comparison only; kept after the step until another candidate rolls out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowStatus>,
    /// Standard conditions: Ready, Progressing, Degraded, Paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// How the candidate's shadow answers compared with the live ones since its mirror step began.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShadowStatus {
    /// The candidate version compared.
    pub version: String,
    /// Shadow answers compared since `since`.
    pub comparisons: i64,
    /// The share of them that agreed with the live answer (failed and unusable shadow answers count as
    /// disagreeing); unset before the first comparison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    /// When the mirror step began (the start of the counts).
    pub since: Time,
    /// When the counts were last read.
    pub measured_at: Time,
}
