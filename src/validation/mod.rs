//! What CEL cannot check and only the operator can: decoded templates, query templates, provider names
//! from the operator config, cron syntax and time zones. Pure functions of (spec, config).

pub mod experiment;
pub mod model_deployment;
pub mod retrain_policy;

use std::fmt;

use crate::api::{Duration, PrometheusQuery};
use crate::config::OperatorConfig;

/// A problem with one field of a spec, as shown in the `InvalidSpec` condition and Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, such as `spec.strategy.canary.analysis.metrics[0].prometheus.query`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Joins the problems into one message for a condition (the first few, then a count).
pub fn summarize(errors: &[FieldError]) -> String {
    const SHOWN: usize = 3;
    let mut parts: Vec<String> = errors.iter().take(SHOWN).map(ToString::to_string).collect();
    if errors.len() > SHOWN {
        parts.push(format!("and {} more", errors.len() - SHOWN));
    }
    parts.join("; ")
}

pub use crate::analysis::template::check_placeholders;

/// Checks that the provider a query names (`None`: `default`) exists in the operator config; the same
/// rule and message as a measurement's ([`crate::config::OperatorConfig::provider_url`]).
pub fn check_provider(field: &str, provider: Option<&str>, config: &OperatorConfig) -> Option<FieldError> {
    config.provider_url(provider).err().map(|e| FieldError::new(field, e.to_string()))
}

/// Checks a Prometheus query: the provider exists in the operator config and the placeholders are known.
pub fn check_query(field: &str, q: &PrometheusQuery, allowed: &[&str], config: &OperatorConfig) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(check_provider(&format!("{field}.provider"), q.provider.as_deref(), config));
    if let Err(m) = check_placeholders(&q.query, allowed) {
        errors.push(FieldError::new(format!("{field}.query"), m));
    }
    errors
}

/// Checks that a duration parses (the schema pattern already holds at apply time; this catches
/// objects stored before a pattern change).
pub fn check_duration(field: &str, d: Option<&Duration>) -> Option<FieldError> {
    d.and_then(|d| d.to_std().err()).map(|e| FieldError::new(field, e.to_string()))
}

/// Test helper: `got` has exactly one error per entry of `want`, each starting with it.
#[cfg(test)]
pub(crate) fn assert_field_errors(case: &str, got: &[FieldError], want: &[&str]) {
    let got: Vec<String> = got.iter().map(ToString::to_string).collect();
    assert_eq!(got.len(), want.len(), "{case}: {got:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.starts_with(w), "{case}: {g:?} does not start with {w:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let allowed = ["variant", "namespace"];
        let table = [
            ("rate(x{v=\"{{variant}}\"}[1m])", None),
            ("rate(x{v=\"{{ variant }}\",ns=\"{{namespace}}\"}[1m])", None),
            ("no placeholders", None),
            ("x{v=\"{{varient}}\"}", Some("unknown placeholder {{varient}}")),
            ("x{v=\"{{variant\"}", Some("not closed")),
            ("x{v=\"variant}}\"}", Some("no matching")),
        ];
        for (t, want) in table {
            match (check_placeholders(t, &allowed), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{t}: {e}"),
                (got, want) => panic!("{t}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn summary_caps_the_list() {
        let errs: Vec<FieldError> = (0..5).map(|i| FieldError::new(format!("spec.f{i}"), "bad")).collect();
        assert_eq!(summarize(&errs), "spec.f0: bad; spec.f1: bad; spec.f2: bad; and 2 more");
    }
}
