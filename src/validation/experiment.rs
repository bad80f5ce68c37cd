//! Operator-side checks of an Experiment spec.

use super::{FieldError, check_duration, check_placeholders, check_provider, check_query};
use crate::api::ExperimentSpec;
use crate::api::experiment::ObjectiveType;
use crate::config::OperatorConfig;

/// Placeholders an experiment query may use; each query is asked per variant, so `revision` and
/// `service` are that variant's.
pub const QUERY_PLACEHOLDERS: &[&str] = &["namespace", "name", "variant", "version", "revision", "service", "window"];

/// Every problem CEL could not see, in field order.
pub fn validate(spec: &ExperimentSpec, config: &OperatorConfig) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, v) in spec.variants.iter().enumerate() {
        if v.model.registry.is_some() {
            errors.push(FieldError::new(
                format!("spec.variants[{i}].model.registry"),
                "a variant following a registry alias is not supported in this version; give model.version and                  model.uri (when the ModelDeployment follows an alias, model.version is the registry version number                  that a promotion moves the alias to)",
            ));
        }
    }
    let objective = &spec.objective;
    errors.extend(check_provider("spec.objective.provider", objective.provider.as_deref(), config));
    let queries: &[(&str, &Option<String>)] = match objective.type_ {
        ObjectiveType::Proportion => &[("successes", &objective.successes), ("trials", &objective.trials)],
        ObjectiveType::Mean => {
            &[("sum", &objective.sum), ("count", &objective.count), ("sumOfSquares", &objective.sum_of_squares)]
        }
    };
    for (name, q) in queries {
        if let Some(Err(m)) = q.as_deref().map(|q| check_placeholders(q, QUERY_PLACEHOLDERS)) {
            errors.push(FieldError::new(format!("spec.objective.{name}"), m));
        }
    }
    for (i, g) in spec.guardrails.iter().enumerate() {
        match &g.prometheus {
            Some(q) => {
                errors.extend(check_query(&format!("spec.guardrails[{i}].prometheus"), q, QUERY_PLACEHOLDERS, config))
            }
            // A built-in metric (the ModelDeployment's router must be `builtin`, which the controller checks).
            None => errors.extend(check_provider(
                &format!("spec.guardrails[{i}].builtin"),
                config.router_provider(),
                config,
            )),
        }
    }
    for (i, c) in spec.non_inferiority.iter().enumerate() {
        let field = format!("spec.nonInferiority[{i}]");
        errors.extend(check_provider(&format!("{field}.provider"), c.provider.as_deref(), config));
        for (name, q) in [("sum", &c.sum), ("count", &c.count), ("sumOfSquares", &c.sum_of_squares)] {
            if let Err(m) = check_placeholders(q, QUERY_PLACEHOLDERS) {
                errors.push(FieldError::new(format!("{field}.{name}"), m));
            }
        }
    }
    errors.extend(check_duration("spec.decision.maxDuration", Some(&spec.decision.max_duration)));
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Experiment;
    use crate::fixtures;

    type Case = (&'static str, fn(&mut Experiment), &'static [&'static str]);

    #[test]
    fn table() {
        let cases: &[Case] = &[
            ("valid", |_| {}, &[]),
            (
                "unknown objective provider",
                |x| x.spec.objective.provider = Some("other".into()),
                &["spec.objective.provider: no Prometheus provider named \"other\""],
            ),
            (
                "unknown placeholder in trials",
                |x| x.spec.objective.trials = Some("sum(x{v=\"{{arm}}\"})".into()),
                &["spec.objective.trials: unknown placeholder {{arm}}"],
            ),
            (
                "a variant following an alias",
                |x| {
                    x.spec.variants[0].model = crate::api::ModelRef {
                        version: None,
                        uri: None,
                        registry: Some(crate::api::common::RegistryRef {
                            model: "m".into(),
                            alias: "a".into(),
                            serving_alias: None,
                        }),
                    }
                },
                &["spec.variants[0].model.registry: a variant following a registry alias is not supported"],
            ),
            (
                "guardrail with unknown provider",
                |x| {
                    let mut g = fixtures::metric("p99", 0.25);
                    g.prometheus.as_mut().unwrap().provider = Some("nope".into());
                    x.spec.guardrails = vec![g];
                },
                &["spec.guardrails[0].prometheus.provider"],
            ),
        ];
        let config = OperatorConfig::parse("prometheus: {default: http://p:9090}", "t").unwrap();
        for (name, mutate, want) in cases {
            let mut x = fixtures::experiment("ab");
            mutate(&mut x);
            super::super::assert_field_errors(name, &validate(&x.spec, &config), want);
        }
    }
}
