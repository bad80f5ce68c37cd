//! Operator-side checks of a ModelDeployment spec.

use super::{FieldError, check_duration, check_provider, check_query};
use crate::api::ModelDeploymentSpec;
use crate::api::common::BuiltinMetric;
use crate::api::model_deployment::Router;
use crate::config::OperatorConfig;
use crate::rollout::plan::{self, MIN_INTERVAL};

/// Placeholders a rollout metric query may use.
pub const QUERY_PLACEHOLDERS: &[&str] = &["namespace", "name", "variant", "version", "revision", "service", "interval"];

/// Every problem CEL could not see, in field order.
pub fn validate(spec: &ModelDeploymentSpec, config: &OperatorConfig) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(e) = spec.template.decode() {
        errors.push(FieldError::new("spec.template", format!("not a valid PodTemplateSpec: {e}")));
    }
    if spec.model.registry.is_some() && config.mlflow.is_none() {
        errors.push(FieldError::new(
            "spec.model.registry",
            "following a registry alias needs an MLflow tracking server in the operator config (mlflow.trackingUri)",
        ));
    }
    if let Some(strategy) = &spec.strategy {
        errors.extend(check_duration("spec.strategy.progressDeadline", strategy.progress_deadline.as_ref()));
        errors.extend(check_duration("spec.strategy.scaleDownDelay", strategy.scale_down_delay.as_ref()));
        if let Some(canary) = &strategy.canary {
            for (i, step) in canary.steps.iter().enumerate() {
                let field = format!("spec.strategy.canary.steps[{i}]");
                errors.extend(check_duration(
                    &format!("{field}.pause.duration"),
                    step.pause.as_ref().and_then(|p| p.duration.as_ref()),
                ));
                errors.extend(check_duration(
                    &format!("{field}.mirror.duration"),
                    step.mirror.as_ref().map(|m| &m.duration),
                ));
            }
            if let Some(analysis) = &canary.analysis {
                errors.extend(check_duration("spec.strategy.canary.analysis.interval", analysis.interval.as_ref()));
                errors.extend(check_duration("spec.strategy.canary.analysis.maxOutage", analysis.max_outage.as_ref()));
                if let Some(d) = analysis.interval.as_ref().and_then(|d| d.to_std().ok())
                    && d < MIN_INTERVAL
                {
                    errors.push(FieldError::new(
                        "spec.strategy.canary.analysis.interval",
                        format!(
                            "{} is shorter than the floor of {}s: measuring more often only loads Prometheus",
                            analysis.interval.as_ref().map(ToString::to_string).unwrap_or_default(),
                            MIN_INTERVAL.as_secs()
                        ),
                    ));
                }
                for (i, m) in analysis.metrics.iter().enumerate() {
                    let field = format!("spec.strategy.canary.analysis.metrics[{i}]");
                    if let Some(q) = &m.prometheus {
                        errors.extend(check_query(&format!("{field}.prometheus"), q, QUERY_PLACEHOLDERS, config));
                    }
                    if let Some(b) = m.builtin {
                        errors.extend(check_builtin(&format!("{field}.builtin"), b, spec, config));
                    }
                }
            }
        }
    }
    errors
}

/// A built-in metric needs the built-in router, a Prometheus provider to read it from, and (for
/// `shadowAgreement`) a comparison to count agreement by.
fn check_builtin(
    field: &str,
    metric: BuiltinMetric,
    spec: &ModelDeploymentSpec,
    config: &OperatorConfig,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if plan::router(spec) != Router::Builtin {
        errors.push(FieldError::new(field, "built-in metrics are measured by the built-in router: set traffic.router: builtin, or use a prometheus query"));
    }
    // Read through `router.provider`, else the `default` provider, else from the router's pods: only a
    // named provider must exist.
    if config.router_provider().is_some() {
        errors.extend(check_provider(field, config.router_provider(), config));
    }
    let compared = spec.traffic.as_ref().and_then(|t| t.builtin.as_ref()).is_some_and(|b| b.comparison.is_some());
    if metric == BuiltinMetric::ShadowAgreement && !compared {
        errors.push(FieldError::new(
            field,
            "shadowAgreement needs traffic.builtin.comparison (which field of the answers to compare)",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model_deployment::ModelDeployment;
    use crate::fixtures;

    fn config() -> OperatorConfig {
        OperatorConfig::parse("prometheus: {default: http://prometheus:9090}", "test").unwrap()
    }

    fn metric_query(md: &mut ModelDeployment) -> &mut crate::api::PrometheusQuery {
        let canary = md.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap();
        canary.analysis.as_mut().unwrap().metrics[0].prometheus.as_mut().unwrap()
    }

    fn builtin_metric(md: &mut ModelDeployment, metric: BuiltinMetric) {
        let canary = md.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap();
        let m = &mut canary.analysis.as_mut().unwrap().metrics[0];
        m.prometheus = None;
        m.builtin = Some(metric);
    }

    type Case = (&'static str, fn(&mut ModelDeployment), &'static [&'static str]);

    #[test]
    fn table() {
        let cases: &[Case] = &[
            ("valid", |_| {}, &[]),
            (
                "every placeholder a rollout offers, {{service}} and the revision hash included",
                |md| {
                    metric_query(md).query = r#"sum(rate(istio_requests_total{destination_service_name="{{service}}",destination_service_namespace="{{namespace}}",x="{{name}}{{variant}}{{version}}",champion_ml_revision="{{revision}}"}[{{interval}}]))"#.into()
                },
                &[],
            ),
            (
                "{{window}} belongs to experiments",
                |md| metric_query(md).query = "increase(x[{{window}}])".into(),
                &["spec.strategy.canary.analysis.metrics[0].prometheus.query: unknown placeholder {{window}}"],
            ),
            (
                "template container without a name type",
                |md| md.spec.template.0["spec"]["containers"][0]["ports"] = serde_json::json!("http"),
                &["spec.template: not a valid PodTemplateSpec"],
            ),
            (
                "unknown provider",
                |md| metric_query(md).provider = Some("thanos".into()),
                &[
                    "spec.strategy.canary.analysis.metrics[0].prometheus.provider: no Prometheus provider named \"thanos\"",
                ],
            ),
            (
                "a built-in metric under the built-in router",
                |md| {
                    builtin_metric(md, BuiltinMetric::ErrorRate);
                    fixtures::with_router(md, Router::Builtin, false);
                },
                &[],
            ),
            (
                "a built-in metric needs the built-in router",
                |md| builtin_metric(md, BuiltinMetric::ErrorRate),
                &[
                    "spec.strategy.canary.analysis.metrics[0].builtin: built-in metrics are measured by the built-in router",
                ],
            ),
            (
                "shadowAgreement needs a comparison",
                |md| {
                    builtin_metric(md, BuiltinMetric::ShadowAgreement);
                    fixtures::with_router(md, Router::Builtin, false);
                },
                &["spec.strategy.canary.analysis.metrics[0].builtin: shadowAgreement needs traffic.builtin.comparison"],
            ),
            (
                "shadowAgreement with a comparison",
                |md| {
                    builtin_metric(md, BuiltinMetric::ShadowAgreement);
                    fixtures::with_router(md, Router::Builtin, true);
                },
                &[],
            ),
            (
                "unknown placeholder",
                |md| metric_query(md).query = "up{v=\"{{varient}}\"}".into(),
                &["spec.strategy.canary.analysis.metrics[0].prometheus.query: unknown placeholder {{varient}}"],
            ),
            (
                "registry without MLflow",
                |md| {
                    md.spec.model = crate::api::ModelRef {
                        registry: Some(crate::api::common::RegistryRef {
                            model: "m".into(),
                            alias: "a".into(),
                            serving_alias: None,
                        }),
                        ..Default::default()
                    }
                },
                &["spec.model.registry: following a registry alias needs an MLflow tracking server"],
            ),
            (
                "bad duration stored before validation",
                |md| md.spec.strategy.as_mut().unwrap().progress_deadline = Some(crate::api::Duration::new("soon")),
                &["spec.strategy.progressDeadline: invalid duration"],
            ),
            (
                "analysis interval under the floor",
                |md| {
                    let canary = md.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap();
                    canary.analysis.as_mut().unwrap().interval = Some(crate::api::Duration::new("500ms"));
                },
                &["spec.strategy.canary.analysis.interval: 500ms is shorter than the floor of 1s"],
            ),
            (
                "analysis interval at the floor",
                |md| {
                    let canary = md.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap();
                    canary.analysis.as_mut().unwrap().interval = Some(crate::api::Duration::new("1s"));
                },
                &[],
            ),
        ];
        for (name, mutate, want) in cases {
            let mut md = fixtures::model_deployment("fraud");
            mutate(&mut md);
            super::super::assert_field_errors(name, &validate(&md.spec, &config()), want);
        }
    }
}
