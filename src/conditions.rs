//! Standard conditions and status comparison: `lastTransitionTime` moves only when a condition's
//! status moves, and a status counts as changed only when something other than a timestamp changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::Serialize;

/// The desired state of one condition, without timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The condition type, e.g. `Ready`.
    pub type_: &'static str,
    /// `True` or `False`.
    pub status: bool,
    /// A CamelCase reason.
    pub reason: String,
    /// A sentence a person can act on.
    pub message: String,
}

impl Desired {
    /// A condition with the given type, status, reason and message.
    pub fn new(type_: &'static str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Self { type_, status, reason: reason.to_string(), message: message.into() }
    }
}

/// The condition list after setting `desired`: conditions of other types are kept; one of the same type
/// keeps its `lastTransitionTime` when its status is unchanged, and takes `now` when it moved.
pub fn merge(current: &[Condition], desired: &[Desired], generation: Option<i64>, now: &Time) -> Vec<Condition> {
    let mut out: Vec<Condition> =
        current.iter().filter(|c| !desired.iter().any(|d| d.type_ == c.type_)).cloned().collect();
    for d in desired {
        let status = if d.status { "True" } else { "False" };
        let since = current
            .iter()
            .find(|c| c.type_ == d.type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        out.push(Condition {
            type_: d.type_.to_string(),
            status: status.to_string(),
            reason: d.reason.clone(),
            message: d.message.clone(),
            observed_generation: generation,
            last_transition_time: since,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// The condition of a type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether two statuses differ in anything but condition timestamps (`lastTransitionTime`).
pub fn differs<T: Serialize>(old: Option<&T>, new: &T) -> bool {
    let Some(old) = old else { return true };
    let strip = |v: &T| {
        let mut v = serde_json::to_value(v).unwrap_or_default();
        strip_timestamps(&mut v);
        v
    };
    strip(old) != strip(new)
}

fn strip_timestamps(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.remove("lastTransitionTime");
            map.values_mut().for_each(strip_timestamps);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_timestamps),
        _ => {}
    }
}

/// A transition worth an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Warning for problems, Normal otherwise.
    pub warning: bool,
    /// The CamelCase reason.
    pub reason: String,
    /// What happened, for a person.
    pub message: String,
}

impl Transition {
    /// A Transition with the given kind, reason and message.
    pub fn new(warning: bool, reason: &str, message: impl Into<String>) -> Self {
        Self { warning, reason: reason.to_string(), message: message.into() }
    }
}

/// The Event for a condition that moved: its status or its reason changed (a new message alone is no
/// transition). `warning` marks reasons that need a person.
pub fn transition(old: Option<&Condition>, new: &Condition, warning: bool) -> Option<Transition> {
    let moved = old.is_none_or(|o| o.status != new.status || o.reason != new.reason);
    moved.then(|| Transition { warning, reason: new.reason.clone(), message: new.message.clone() })
}

/// The Ready condition of a spec: `False/InvalidSpec` naming the fields when `errors` is not empty,
/// else `ready` (the kind's own state when valid).
pub fn spec_ready(errors: &[crate::validation::FieldError], ready: Desired) -> Desired {
    if errors.is_empty() {
        ready
    } else {
        Desired::new(
            crate::names::conditions::READY,
            false,
            crate::names::reasons::INVALID_SPEC,
            format!("invalid spec: {}", crate::validation::summarize(errors)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::reasons;

    fn t(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn ready(status: bool, reason: &str) -> Desired {
        Desired::new("Ready", status, reason, format!("{reason} message"))
    }

    #[test]
    fn transition_time_moves_only_with_status() {
        // (current status and time, desired, expected time)
        type Case = (Option<(bool, i64)>, Desired, i64);
        let table: &[Case] = &[
            (None, ready(false, reasons::INVALID_SPEC), 100),
            (Some((false, 10)), ready(false, reasons::INVALID_SPEC), 10),
            (Some((false, 10)), ready(false, "OtherReason"), 10),
            (Some((false, 10)), ready(true, reasons::ACCEPTED), 100),
            (Some((true, 10)), ready(false, reasons::INVALID_SPEC), 100),
        ];
        for (current, desired, want) in table {
            let current: Vec<Condition> =
                current.map(|(s, at)| merge(&[], &[ready(s, "Before")], Some(1), &t(at))).unwrap_or_default();
            let got = merge(&current, std::slice::from_ref(desired), Some(2), &t(100));
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].last_transition_time, t(*want), "{current:?} -> {desired:?}");
            assert_eq!(got[0].reason, desired.reason);
            assert_eq!(got[0].observed_generation, Some(2));
        }
    }

    #[test]
    fn other_condition_types_are_kept() {
        let current = merge(&[], &[Desired::new("Degraded", true, "X", "x")], Some(1), &t(5));
        let got = merge(&current, &[ready(true, "Ok")], Some(1), &t(9));
        assert_eq!(got.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(), ["Degraded", "Ready"]);
        assert_eq!(find(&got, "Degraded").unwrap().last_transition_time, t(5));
    }

    #[test]
    fn transitions_on_status_or_reason_only() {
        let old = merge(&[], &[ready(false, reasons::INVALID_SPEC)], Some(1), &t(1));
        let same_other_message =
            merge(&old, &[Desired::new("Ready", false, reasons::INVALID_SPEC, "another field")], Some(2), &t(2));
        let fixed = merge(&old, &[ready(true, reasons::ACCEPTED)], Some(2), &t(2));
        let other_reason = merge(&old, &[ready(false, reasons::DEPLOYMENT_NOT_FOUND)], Some(2), &t(2));
        assert_eq!(transition(Some(&old[0]), &same_other_message[0], true), None);
        assert_eq!(transition(Some(&old[0]), &fixed[0], false).unwrap().reason, reasons::ACCEPTED);
        assert_eq!(transition(Some(&old[0]), &other_reason[0], true).unwrap().reason, reasons::DEPLOYMENT_NOT_FOUND);
        assert!(transition(None, &old[0], true).unwrap().warning);
    }

    #[test]
    fn differs_ignores_timestamps_only() {
        let a = merge(&[], &[ready(true, "Ok")], Some(1), &t(1));
        let b = merge(&[], &[ready(true, "Ok")], Some(1), &t(2));
        let c = merge(&[], &[ready(false, "Ok")], Some(1), &t(1));
        assert!(!differs(Some(&a), &b));
        assert!(differs(Some(&a), &c));
        assert!(differs(None, &a));
    }
}
