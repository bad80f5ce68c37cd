//! The first thing every reconcile decides: is the spec usable? The status then carries
//! `observedGeneration`, the phase (kept, `Pending` at first) and a Ready condition that names the
//! invalid fields, and a change of Ready raises an Event. Shared by the three kinds.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use serde::Serialize;

use super::status::NamespacedKind;
use super::{Context, Result, status};
use crate::conditions::{self, Desired, Transition};
use crate::names::conditions as cond;
use crate::validation::FieldError;

/// A status with the fields acceptance sets.
pub trait AcceptanceStatus: Serialize + Clone + Default {
    /// The current conditions.
    fn conditions(&self) -> &[Condition];
    /// Sets `observedGeneration`, the message and the conditions, and the phase to its first value
    /// when it has none.
    fn accept(&mut self, generation: Option<i64>, message: Option<String>, conditions: Vec<Condition>);
}

/// What acceptance decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Acceptance<S> {
    /// The status to write.
    pub status: S,
    /// The Event for a transition of Ready.
    pub event: Option<Transition>,
    /// Whether the spec is invalid.
    pub invalid: bool,
}

/// Decides the status: Ready is `InvalidSpec` when there are `errors`, else `when_valid` (an Event
/// marks it as a warning when `valid_is_warning`, e.g. a missing referenced object).
pub fn plan<S: AcceptanceStatus>(
    current: Option<&S>,
    generation: Option<i64>,
    errors: &[FieldError],
    when_valid: Desired,
    valid_is_warning: bool,
    now: &Time,
) -> Acceptance<S> {
    let mut status = current.cloned().unwrap_or_default();
    let ready = conditions::spec_ready(errors, when_valid);
    let merged = conditions::merge(status.conditions(), std::slice::from_ref(&ready), generation, now);
    let warning = !errors.is_empty() || valid_is_warning;
    let event = conditions::find(&merged, cond::READY)
        .and_then(|r| conditions::transition(conditions::find(status.conditions(), cond::READY), r, warning));
    status.accept(generation, Some(ready.message), merged);
    Acceptance { status, event, invalid: !errors.is_empty() }
}

/// Writes the decided status (only if changed), publishes the Event, and sets the invalid-spec gauge.
pub async fn apply<K, S>(ctx: &Context, kind: &str, obj: &K, current: Option<&S>, a: &Acceptance<S>) -> Result<()>
where
    K: NamespacedKind,
    S: AcceptanceStatus,
{
    status::write_if_changed(ctx, obj, current, &a.status).await?;
    if let Some(t) = &a.event {
        status::publish(ctx, obj, t).await;
    }
    ctx.metrics
        .invalid_specs
        .with_label_values(&[kind, &obj.namespace().unwrap_or_default(), &obj.name_any()])
        .set(i64::from(a.invalid));
    Ok(())
}

macro_rules! acceptance_status {
    ($status:ty, $phase:expr) => {
        impl AcceptanceStatus for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }

            fn accept(&mut self, generation: Option<i64>, message: Option<String>, conditions: Vec<Condition>) {
                self.observed_generation = generation;
                self.message = message;
                self.conditions = conditions;
                self.phase.get_or_insert($phase);
            }
        }
    };
}

acceptance_status!(crate::api::ModelDeploymentStatus, crate::api::DeploymentPhase::Pending);
acceptance_status!(crate::api::ExperimentStatus, crate::api::ExperimentPhase::Pending);
acceptance_status!(crate::api::RetrainPolicyStatus, crate::api::RetrainPhase::Idle);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DeploymentPhase, ModelDeploymentStatus};
    use crate::names::reasons;

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    fn accepted() -> Desired {
        Desired::new(cond::READY, false, reasons::ACCEPTED, "waiting")
    }

    #[test]
    fn invalid_then_same_then_fixed() {
        let errors = [FieldError::new("spec.template", "not a valid PodTemplateSpec")];
        let first: Acceptance<ModelDeploymentStatus> = plan(None, Some(1), &errors, accepted(), false, &t(10));
        assert!(first.invalid);
        assert_eq!(first.status.phase, Some(DeploymentPhase::Pending));
        assert_eq!(first.status.observed_generation, Some(1));
        let ready = conditions::find(&first.status.conditions, cond::READY).unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", reasons::INVALID_SPEC));
        assert_eq!(ready.message, "invalid spec: spec.template: not a valid PodTemplateSpec");
        let event = first.event.clone().unwrap();
        assert!(event.warning);
        assert_eq!(event.reason, reasons::INVALID_SPEC);

        // The same spec again: nothing changed but timestamps, and no Event.
        let again = plan(Some(&first.status), Some(1), &errors, accepted(), false, &t(20));
        assert!(!conditions::differs(Some(&first.status), &again.status));
        assert_eq!(again.event, None);

        // Fixed in generation 2: Ready's reason moves (a Normal Event), its status does not (time kept).
        let fixed = plan(Some(&again.status), Some(2), &[], accepted(), false, &t(30));
        assert!(!fixed.invalid);
        assert_eq!(fixed.status.observed_generation, Some(2));
        let ready = conditions::find(&fixed.status.conditions, cond::READY).unwrap();
        assert_eq!(ready.reason, reasons::ACCEPTED);
        assert_eq!(ready.last_transition_time, t(10));
        assert!(!fixed.event.unwrap().warning);
    }

    #[test]
    fn phase_already_set_is_kept() {
        let current = ModelDeploymentStatus { phase: Some(DeploymentPhase::Healthy), ..Default::default() };
        let a = plan(Some(&current), Some(3), &[], accepted(), false, &t(1));
        assert_eq!(a.status.phase, Some(DeploymentPhase::Healthy));
    }
}
