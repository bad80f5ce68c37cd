//! Builders of valid example objects for tests and benchmarks: start from a valid object and change
//! the one field a test is about.

use serde_json::json;

use crate::api::common::{MetricCheck, ModelRef, PodTemplate, PrometheusQuery, ThresholdRange};
use crate::api::experiment::{Decision, Experiment, ExperimentMode, ExperimentSpec, Objective, ObjectiveType, Variant};
use crate::api::model_deployment::{
    AnalysisStep, BackgroundAnalysis, Canary, ModelDeployment, ModelDeploymentSpec, PauseStep, Step, Strategy,
};
use crate::api::retrain_policy::{Dataset, Evaluation, Gate, RetrainPolicy, RetrainPolicySpec, Training};
use crate::api::{DeploymentRef, Duration, JobTemplate};

/// A pinned model reference.
pub fn model(version: &str) -> ModelRef {
    ModelRef { version: Some(version.to_string()), uri: Some(format!("s3://models/fraud/{version}")), registry: None }
}

/// A one-container pod template.
pub fn pod_template() -> PodTemplate {
    PodTemplate(json!({
        "spec": {"containers": [{"name": "server", "image": "example.invalid/fraud-server:1",
                                 "ports": [{"name": "http", "containerPort": 8080}]}]}
    }))
}

/// A one-container Job template.
pub fn job_template(name: &str) -> JobTemplate {
    JobTemplate(json!({
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                                        "containers": [{"name": name, "image": format!("example.invalid/{name}:1")}]}}}
    }))
}

/// A metric check on a query with a max bound.
pub fn metric(name: &str, max: f64) -> MetricCheck {
    MetricCheck {
        name: name.to_string(),
        prometheus: Some(PrometheusQuery {
            provider: None,
            query: format!("champion_test_{}{{variant=\"{{{{variant}}}}\"}}", name.replace('-', "_")),
        }),
        builtin: None,
        threshold_range: ThresholdRange { min: None, max: Some(max) },
        on_no_data: None,
    }
}

/// A `setWeight` step.
pub fn set_weight(w: i32) -> Step {
    Step { set_weight: Some(w), ..Step::default() }
}

/// A `pause` step; `None` waits for promote.
pub fn pause(duration: Option<&str>) -> Step {
    Step { pause: Some(PauseStep { duration: duration.map(Duration::new) }), ..Step::default() }
}

/// An `analysis` gate step.
pub fn analysis(metrics: &[&str]) -> Step {
    Step {
        analysis: Some(AnalysisStep { metrics: metrics.iter().map(|m| m.to_string()).collect() }),
        ..Step::default()
    }
}

/// A valid ModelDeployment with the replicas router and a 10 → 50 → 100 canary.
pub fn model_deployment(name: &str) -> ModelDeployment {
    let mut md = ModelDeployment::new(
        name,
        ModelDeploymentSpec {
            model: model("1.0.0"),
            replicas: Some(2),
            template: pod_template(),
            traffic: None,
            strategy: Some(Strategy {
                canary: Some(Canary {
                    steps: vec![set_weight(10), pause(Some("1m")), analysis(&["error-rate"]), set_weight(50)],
                    analysis: Some(BackgroundAnalysis {
                        interval: Some(Duration::new("1m")),
                        failure_limit: Some(1),
                        max_outage: None,
                        metrics: vec![metric("error-rate", 0.01)],
                    }),
                }),
                progress_deadline: Some(Duration::new("15m")),
                scale_down_delay: None,
            }),
            revision_history_limit: None,
        },
    );
    md.metadata.namespace = Some("default".into());
    md.metadata.generation = Some(1);
    md
}

/// A valid split Experiment with one challenger at 20%.
pub fn experiment(name: &str) -> Experiment {
    let mut x = Experiment::new(
        name,
        ExperimentSpec {
            deployment_ref: DeploymentRef { name: "fraud".into() },
            mode: ExperimentMode::Split,
            variants: vec![Variant {
                name: "challenger".into(),
                model: model("2.0.0"),
                weight: 20,
                ..Variant::default()
            }],
            assignment: None,
            objective: Objective {
                name: "conversion".into(),
                type_: ObjectiveType::Proportion,
                successes: Some("orders_total{variant=\"{{variant}}\"}".into()),
                trials: Some("sessions_total{variant=\"{{variant}}\"}".into()),
                ..Objective::default()
            },
            guardrails: vec![],
            non_inferiority: vec![],
            decision: Decision {
                confidence: 0.95,
                min_samples_per_variant: Some(1000),
                method: None,
                max_duration: Duration::new("7d"),
                ..Decision::default()
            },
            on_success: None,
        },
    );
    x.metadata.namespace = Some("default".into());
    x.metadata.generation = Some(1);
    x
}

/// A valid RetrainPolicy with one training Job and one gate.
pub fn retrain_policy(name: &str) -> RetrainPolicy {
    let mut p = RetrainPolicy::new(
        name,
        RetrainPolicySpec {
            deployment_ref: DeploymentRef { name: "fraud".into() },
            triggers: None,
            cooldown: Some(Duration::new("6h")),
            concurrency_policy: None,
            dataset: Dataset { uri: "s3://data/fraud".into(), version: None },
            training: Training {
                template: job_template("train"),
                search: None,
                model_output_uri: "s3://models/fraud/{{run}}/{{trial}}".into(),
            },
            evaluation: Evaluation {
                template: job_template("eval"),
                gates: vec![Gate { metric: "f1".into(), min_absolute_change: Some(0.005), ..Gate::default() }],
            },
            promotion: None,
            history_limit: None,
        },
    );
    p.metadata.namespace = Some("default".into());
    p.metadata.generation = Some(1);
    p
}

/// `md` behind `router`, with the built-in router's settings comparing answers at `label` when `compared`.
pub fn with_router(md: &mut crate::api::ModelDeployment, router: crate::api::model_deployment::Router, compared: bool) {
    use crate::api::model_deployment::{BuiltinTraffic, ShadowComparison, Traffic};
    md.spec.traffic = Some(Traffic {
        router: Some(router),
        builtin: Some(BuiltinTraffic {
            comparison: compared.then(|| ShadowComparison { path: "label".into(), ..ShadowComparison::default() }),
            ..BuiltinTraffic::default()
        }),
        ..Traffic::default()
    });
}
