//! The `kubectl champion` plugin's rendering and request logic, kept apart from its I/O so it can be
//! tested.

pub mod experiment;
pub mod history;
pub mod runs;
pub mod status;

/// The `Conditions:` block of the status views: one line per condition, nothing when there are none.
pub(crate) fn write_conditions(
    out: &mut String,
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) {
    use std::fmt::Write;
    if conditions.is_empty() {
        return;
    }
    let _ = writeln!(out, "  Conditions:");
    for c in conditions {
        let _ = writeln!(out, "    {:<12} {:<6} {:<20} {}", c.type_, c.status, c.reason, c.message);
    }
}
