//! Types shared by the three kinds: model references, metric checks, templates.

use std::borrow::Cow;

use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// Which model a server loads: a pinned version and URI, or an MLflow registry alias to follow.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("(has(self.version) && has(self.uri) && !has(self.registry)) || (!has(self.version) && !has(self.uri) && has(self.registry))")
        .message("set either both model.version and model.uri, or model.registry, not both and not neither")
)]
pub struct ModelRef {
    /// The model version to serve, e.g. `2.1.0`. Changing it starts a rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub version: Option<String>,
    /// Where the model artifact lives; handed to the server as `MODEL_URI` (for MLflow: `models:/name/version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub uri: Option<String>,
    /// Follow an alias in the MLflow model registry instead of a pinned version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryRef>,
}

/// A model registry alias to follow (MLflow: registered model name and alias).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.servingAlias) || self.servingAlias != self.alias")
        .message("model.registry.servingAlias must differ from model.registry.alias: the operator moves the serving alias, never the one it follows"),
    validation = Rule::new("self.alias.lowerAscii() != 'latest' && !self.alias.matches('^[vV][0-9]+$') && (!has(self.servingAlias) || (self.servingAlias.lowerAscii() != 'latest' && !self.servingAlias.matches('^[vV][0-9]+$')))")
        .message("MLflow reserves the aliases 'latest' (in any case) and 'v<number>'"),
    validation = Rule::new("self.alias.matches('^[A-Za-z0-9_-]+$') && (!has(self.servingAlias) || self.servingAlias.matches('^[A-Za-z0-9_-]+$'))")
        .message("registry aliases may hold only letters, digits, '_' and '-'")
)]
pub struct RegistryRef {
    /// The registered model's name in the registry.
    #[schemars(length(min = 1, max = 256))]
    pub model: String,
    /// The alias to follow, e.g. `champion`; when the alias moves, a rollout starts. The operator never
    /// moves it (the user or a retraining run owns it).
    #[schemars(length(min = 1, max = 128))]
    pub alias: String,
    /// The alias the operator keeps on the version that really serves (default `<deployment>-serving`):
    /// moved at each promotion and rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub serving_alias: Option<String>,
}

/// A reference to a ModelDeployment in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRef {
    /// The ModelDeployment's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The range a measured value must stay within; at least one bound.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("has(self.min) || has(self.max)").message("thresholdRange needs min, max or both"),
    validation = Rule::new("!has(self.min) || !has(self.max) || self.min <= self.max").message("thresholdRange.min must not be greater than thresholdRange.max")
)]
pub struct ThresholdRange {
    /// The lowest passing value (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The highest passing value (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl ThresholdRange {
    /// Whether `value` lies within the range (bounds inclusive). NaN is never within.
    pub fn contains(&self, value: f64) -> bool {
        !value.is_nan() && self.min.is_none_or(|m| value >= m) && self.max.is_none_or(|m| value <= m)
    }
}

/// A PromQL query against one of the Prometheus providers named in the operator's config.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusQuery {
    /// The provider's name in the operator config (`prometheus:` map); `default` when unset. URLs are
    /// never taken from a spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub provider: Option<String>,
    /// The query, an instant query that must return one number. Templates: `{{namespace}}`, `{{name}}`,
    /// `{{variant}}`, `{{version}}`, `{{revision}}` (the revision hash, as in the pods' label
    /// `champion.ml/revision`), `{{service}}` (the variant's Service), `{{interval}}` (and `{{window}}` in
    /// experiments); see docs/analysis.md.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
}

/// What a measurement that returned no data counts as.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum OnNoData {
    /// No data passes.
    Pass,
    /// No data fails.
    Fail,
    /// No data counts for nothing; the check waits for data.
    #[default]
    Inconclusive,
}

/// A measurement the built-in router (`traffic.router: builtin`) provides without PromQL: the operator
/// writes the query over the router's own metrics (see docs/router.md).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum BuiltinMetric {
    /// The candidate's share of 5xx answers (live answers and, in a mirror step, its shadow answers,
    /// failed copies counted as errors) over the interval.
    ErrorRate,
    /// The 99th percentile of the candidate's live latency over the interval, in seconds.
    LatencyP99,
    /// The share of the candidate's shadow answers that agree with the live answer over the interval
    /// (`traffic.builtin.comparison`); a failed or unusable shadow answer counts as disagreeing.
    ShadowAgreement,
    /// The share of the candidate's predictions that ground-truth feedback (`POST /feedback` on the
    /// router) called correct, over the feedback of the last interval (at least 5 minutes: ground truth
    /// arrives late and in bursts).
    FeedbackAccuracy,
}

/// A named metric with a passing range.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.prometheus) != has(self.builtin)").message("a metric needs exactly one of prometheus or builtin")
)]
pub struct MetricCheck {
    /// The metric's name, unique within its list; analysis steps refer to it.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Where the value comes from: a PromQL query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusQuery>,
    /// Where the value comes from: a measurement of the built-in router (`errorRate`, `latencyP99`,
    /// `shadowAgreement`, `feedbackAccuracy`); only with `traffic.router: builtin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinMetric>,
    /// The range the value must stay within to pass.
    pub threshold_range: ThresholdRange,
    /// What an empty or NaN answer counts as: `pass`, `fail` or `inconclusive` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_no_data: Option<OnNoData>,
}

/// An object schema that names the `required` properties it checks and keeps every other field open.
fn open_object(required: &[&str], properties: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": required,
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": properties,
    })
}

/// The schema of a pod template: `spec.containers` with at least one container that has a name and an
/// image; everything else is left to the operator, which decodes it into the typed object.
fn pod_template_schema() -> serde_json::Value {
    let container = open_object(
        &["name", "image"],
        serde_json::json!({
            "name": {"type": "string", "minLength": 1, "maxLength": 63},
            "image": {"type": "string", "minLength": 1, "maxLength": 1024},
        }),
    );
    let containers = serde_json::json!({"type": "array", "minItems": 1, "maxItems": 16, "items": container});
    let spec = open_object(&["containers"], serde_json::json!({ "containers": containers }));
    open_object(
        &["spec"],
        serde_json::json!({
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "spec": spec,
        }),
    )
}

/// The schema of a Job template: a pod template under `spec.template`.
fn job_template_schema() -> serde_json::Value {
    let spec = open_object(&["template"], serde_json::json!({ "template": pod_template_schema() }));
    open_object(
        &["spec"],
        serde_json::json!({
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "spec": spec,
        }),
    )
}

/// Declares a JSON-valued wrapper whose schema checks the structure users most often get wrong and keeps
/// the rest open, so the CRD stays small enough for client-side `kubectl apply`; the operator decodes
/// the value into the typed Kubernetes object and reports what does not fit as a condition.
macro_rules! open_template {
    ($(#[$doc:meta])* $name:ident, $typed:ty, $schema:expr) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
        #[serde(transparent)]
        pub struct $name(pub serde_json::Value);

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                Schema::try_from($schema).expect("template schema is an object")
            }
        }

        impl $name {
            /// Decodes the template into the typed Kubernetes object; the error says which field does
            /// not fit.
            pub fn decode(&self) -> Result<$typed, serde_json::Error> {
                serde_json::from_value(self.0.clone())
            }
        }
    };
}

open_template!(
    /// A PodTemplateSpec for the model server, as in a Deployment's `spec.template`. The operator adds
    /// its labels and the `MODEL_NAME`, `MODEL_VERSION` and `MODEL_URI` variables to every container.
    PodTemplate,
    k8s_openapi::api::core::v1::PodTemplateSpec,
    pod_template_schema()
);

open_template!(
    /// A JobTemplateSpec (`spec.template.spec.containers` at least), as in a CronJob's `jobTemplate`.
    JobTemplate,
    k8s_openapi::api::batch::v1::JobTemplateSpec,
    job_template_schema()
);

#[cfg(test)]
impl RegistryRef {
    /// A sample alias reference for tests.
    pub fn sample() -> Self {
        Self { model: "fraud".into(), alias: "champion".into(), serving_alias: None }
    }
}
