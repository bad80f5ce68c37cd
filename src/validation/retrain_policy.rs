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
