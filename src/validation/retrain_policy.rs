//! Operator-side checks of a RetrainPolicy spec.

use super::{FieldError, check_duration, check_query};
use crate::api::RetrainPolicySpec;
use crate::config::OperatorConfig;
use crate::retrain::cron::{CronSchedule, parse_time_zone};

/// Placeholders a trigger query may use.
pub const QUERY_PLACEHOLDERS: &[&str] = &["namespace", "name", "version"];

/// Every problem CEL could not see, in field order.
pub fn validate(spec: &RetrainPolicySpec, config: &OperatorConfig) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(triggers) = &spec.triggers {
        if let Some(schedule) = &triggers.schedule {
            if let Err(e) = CronSchedule::parse(&schedule.cron) {
                errors.push(FieldError::new("spec.triggers.schedule.cron", e.to_string()));
            }
            if let Err(e) = parse_time_zone(schedule.time_zone.as_deref()) {
                errors.push(FieldError::new("spec.triggers.schedule.timeZone", e));
            }
        }
        for (i, m) in triggers.metrics.iter().enumerate() {
            let field = format!("spec.triggers.metrics[{i}]");
            errors.extend(check_query(&format!("{field}.prometheus"), &m.prometheus, QUERY_PLACEHOLDERS, config));
            errors.extend(check_duration(&format!("{field}.for"), m.for_.as_ref()));
        }
    }
    errors.extend(check_duration("spec.cooldown", spec.cooldown.as_ref()));
    if let Some(t) = &spec.triggers {
        errors.extend(check_duration("spec.triggers.checkInterval", t.check_interval.as_ref()));
    }
    if let Some(search) = &spec.training.search {
        for (name, p) in &search.parameters {
            let range = p.min.is_some() || p.max.is_some() || p.scale.is_some();
            if p.values.is_some() == range {
                errors.push(FieldError::new(
                    format!("spec.training.search.parameters.{name}"),
                    "a parameter has either values, or min and max (with an optional scale)",
                ));
            }
            for (i, v) in p.values.iter().flatten().enumerate() {
                if !(v.0.is_number() || v.0.is_string()) {
                    errors.push(FieldError::new(
                        format!("spec.training.search.parameters.{name}.values[{i}]"),
                        format!("{} is neither a number nor a string", v.0),
                    ));
                }
            }
        }
    }
    let uri = &spec.training.model_output_uri;
    let trials = spec.training.search.as_ref().map(|s| s.max_trials).unwrap_or(1);
    if !uri.contains("{{run}}") {
        errors.push(FieldError::new(
            "spec.training.modelOutputUri",
            "needs {{run}}, so that one run never overwrites the model of another",
        ));
    } else if trials > 1 && !uri.contains("{{trial}}") {
        errors.push(FieldError::new(
            "spec.training.modelOutputUri",
            "needs {{trial}} with a search, so that trials never overwrite each other's models",
        ));
    }
    if let Err(e) = spec.training.template.decode() {
        errors.push(FieldError::new("spec.training.template", format!("not a valid JobTemplateSpec: {e}")));
    }
    if let Err(e) = spec.evaluation.template.decode() {
        errors.push(FieldError::new("spec.evaluation.template", format!("not a valid JobTemplateSpec: {e}")));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RetrainPolicy;
    use crate::api::retrain_policy::{Schedule, Triggers};
    use crate::fixtures;

    fn schedule(cron: &str, tz: Option<&str>) -> Option<Triggers> {
        Some(Triggers {
            schedule: Some(Schedule { cron: cron.into(), time_zone: tz.map(Into::into) }),
            metrics: vec![],
            check_interval: None,
        })
    }

    type Case = (&'static str, fn(&mut RetrainPolicy), &'static [&'static str]);

    #[test]
    fn table() {
        let cases: &[Case] = &[
            ("valid", |_| {}, &[]),
            ("valid schedule", |p| p.spec.triggers = schedule("0 3 * * 0", Some("Europe/Berlin")), &[]),
            (
                "bad cron",
                |p| p.spec.triggers = schedule("0 25 * * *", None),
                &["spec.triggers.schedule.cron: invalid cron schedule \"0 25 * * *\": hour"],
            ),
            (
                "bad time zone",
                |p| p.spec.triggers = schedule("0 3 * * *", Some("Europe/Atlantis")),
                &["spec.triggers.schedule.timeZone: unknown time zone"],
            ),
            (
                "a model location without the run",
                |p| p.spec.training.model_output_uri = "s3://models/fraud/latest".into(),
                &["spec.training.modelOutputUri: needs {{run}}"],
            ),
            (
                "a search whose trials would share a model location",
                |p| {
                    p.spec.training.model_output_uri = "s3://models/{{run}}".into();
                    p.spec.training.search = Some(crate::api::retrain_policy::Search {
                        parameters: [(
                            "depth".to_string(),
                            crate::api::retrain_policy::Parameter {
                                min: Some(1.0),
                                values: Some(vec![
                                    crate::api::retrain_policy::ParameterValue(serde_json::json!(2)),
                                    crate::api::retrain_policy::ParameterValue(serde_json::json!([1])),
                                ]),
                                ..Default::default()
                            },
                        )]
                        .into(),
                        max_trials: 2,
                        ..Default::default()
                    });
                },
                &[
                    "spec.training.search.parameters.depth: a parameter has either values, or min and max",
                    "spec.training.search.parameters.depth.values[1]: [1] is neither a number nor a string",
                    "spec.training.modelOutputUri: needs {{trial}} with a search",
                ],
            ),
            (
                "training template with a bad field type",
                |p| p.spec.training.template.0["spec"]["backoffLimit"] = serde_json::json!("three"),
                &["spec.training.template: not a valid JobTemplateSpec"],
            ),
        ];
        let config = OperatorConfig::parse("prometheus: {default: http://p:9090}", "t").unwrap();
        for (name, mutate, want) in cases {
            let mut p = fixtures::retrain_policy("r");
            mutate(&mut p);
            super::super::assert_field_errors(name, &validate(&p.spec, &config), want);
        }
    }
}
