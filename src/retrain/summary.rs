//! What a RetrainPolicy's status says about itself: the phase, the one-line message, the conditions, the
//! `LAST-RUN` column, and how the ModelDeployment's rollout of a promoted candidate went.

use jiff::Timestamp;

use super::run::Champion;
use crate::api::model_deployment::DeploymentPhase;
use crate::api::retrain_policy::{
    JobState, RetrainPhase, RetrainPolicySpec, RetrainPolicyStatus, RunDecision, RunRecord, RunStage,
};
use crate::api::{ModelDeployment, ModelDeploymentStatus};
use crate::conditions::{Desired, Transition};
use crate::names::{conditions as cond, reasons};

/// What the run's rollout field says while the ModelDeployment rolls the candidate out.
pub const ROLLING_OUT: &str = "RollingOut";
/// What it says once the candidate is the stable version.
pub const SERVING: &str = "Serving";

/// The champion as the ModelDeployment names it: the registry version's source when it follows an alias
/// (what the alias pointed at when last read), else its pinned `spec.model.uri`.
pub fn champion_of(md: &ModelDeployment) -> Champion {
    let follows_alias = md.spec.model.registry.is_some();
    let uri = if follows_alias {
        md.status.as_ref().and_then(|s| s.registry.as_ref()).and_then(|r| r.source.clone())
    } else {
        md.spec.model.uri.clone()
    };
    Champion { uri, follows_alias }
}

/// The exact change that promotes `run`'s candidate into a ModelDeployment that pins its version.
pub fn pinned_change(md: &str, run: &RunRecord) -> String {
    format!(
        "ModelDeployment {md} pins its model in its spec, which the operator never edits: to promote run {}, set spec.model.uri to {:?} and spec.model.version to {:?} (or make it follow a registry alias, and Champion promotes retrained models itself)",
        run.id,
        run.candidate_uri.as_deref().unwrap_or_default(),
        run.id
    )
}

/// How the rollout of a promoted run's registry version went, when that changed: the new value of the
/// run's `rollout` and the Event.
pub fn rollout_progress(run: &RunRecord, md: &ModelDeploymentStatus) -> Option<(String, Transition)> {
    let version = run.candidate_version.as_deref()?;
    if run.decision != RunDecision::Promoted || run.rollout.as_deref() != Some(ROLLING_OUT) {
        return None;
    }
    let registry_version = |r: Option<&crate::api::model_deployment::RevisionRef>| {
        r.and_then(|r| r.registry.as_ref()).map(|r| r.version.clone())
    };
    if registry_version(md.stable.as_ref()).as_deref() == Some(version) {
        let message = format!("run {}: the ModelDeployment serves registry version {version} as stable", run.id);
        return Some((
            SERVING.into(),
            Transition { warning: false, reason: reasons::CANDIDATE_SERVING.into(), message },
        ));
    }
    let rolled_back = md.registry.as_ref().and_then(|r| r.rollback_recorded.as_deref()) == Some(version)
        || (md.phase == Some(DeploymentPhase::RolledBack)
            && registry_version(md.candidate.as_ref()).as_deref() == Some(version));
    if rolled_back {
        let why = md.message.clone().unwrap_or_else(|| "the rollout failed".into());
        let message = format!("run {}: the ModelDeployment rolled registry version {version} back: {why}", run.id);
        return Some((
            format!("RolledBack: {why}"),
            Transition { warning: true, reason: reasons::CANDIDATE_ROLLED_BACK.into(), message },
        ));
    }
    None
}

/// The phase, message and conditions (Progressing, Degraded) of a valid policy.
pub fn summarize(
    spec: &RetrainPolicySpec,
    status: &RetrainPolicyStatus,
    now: Timestamp,
) -> (RetrainPhase, String, Vec<Desired>) {
    let newest = status.runs.first();
    let next =
        status.next_scheduled.as_ref().map(|t| format!("; the schedule fires next at {}", t.0)).unwrap_or_default();
    let unavailable: Vec<String> = status
        .metric_triggers
        .iter()
        .filter_map(|m| m.message.as_ref().map(|msg| format!("trigger {}: {msg}", m.name)))
        .collect();
    let (phase, message) = match newest {
        Some(r) if r.decision == RunDecision::Running => {
            let done =
                r.trial_results.iter().filter(|t| matches!(t.state, JobState::Succeeded | JobState::Failed)).count();
            match r.stage {
                Some(RunStage::Evaluating) => {
                    (RetrainPhase::Evaluating, format!("run {}: evaluating the candidate against the champion", r.id))
                }
                Some(RunStage::Promoting) => (
                    RetrainPhase::Promoting,
                    format!("run {}: {}", r.id, r.reason.clone().unwrap_or_else(|| "promoting".into())),
                ),
                _ => (
                    RetrainPhase::Training,
                    format!("run {}: training, {done} of {} trials done", r.id, r.trial_results.len()),
                ),
            }
        }
        Some(r) if r.decision == RunDecision::Failed => {
            (RetrainPhase::Failed, format!("run {} failed: {}{next}", r.id, r.reason.clone().unwrap_or_default()))
        }
        Some(r) => {
            let ended = format!("run {} {:?}: {}", r.id, r.decision, r.reason.clone().unwrap_or_default());
            match super::triggers::cooldown_ends(spec, status).filter(|e| now < *e) {
                Some(e) => (RetrainPhase::CoolingDown, format!("{ended}; cooling down until {e}{next}")),
                None => (RetrainPhase::Idle, format!("{ended}; waiting for a trigger{next}")),
            }
        }
        None => (RetrainPhase::Idle, format!("waiting for a trigger{next}")),
    };
    let progressing = match phase {
        RetrainPhase::Training => Desired::new(cond::PROGRESSING, true, reasons::TRAINING, message.clone()),
        RetrainPhase::Evaluating => Desired::new(cond::PROGRESSING, true, reasons::EVALUATING, message.clone()),
        RetrainPhase::Promoting => Desired::new(cond::PROGRESSING, true, reasons::PROMOTING, message.clone()),
        RetrainPhase::CoolingDown => Desired::new(cond::PROGRESSING, false, reasons::COOLING_DOWN, message.clone()),
        _ => Desired::new(cond::PROGRESSING, false, reasons::IDLE, message.clone()),
    };
    let degraded = if phase == RetrainPhase::Failed {
        Desired::new(cond::DEGRADED, true, reasons::RUN_FAILED, message.clone())
    } else if !unavailable.is_empty() {
        Desired::new(cond::DEGRADED, true, reasons::TRIGGER_UNAVAILABLE, unavailable.join("; "))
    } else {
        Desired::new(cond::DEGRADED, false, reasons::AS_EXPECTED, "triggers read and the last run did not fail")
    };
    (phase, message, vec![progressing, degraded])
}

/// The `LAST-RUN` column: `r-0007 Promoted`.
pub fn last_run(status: &RetrainPolicyStatus) -> Option<String> {
    status.runs.first().map(|r| format!("{} {:?}", r.id, r.decision))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model_deployment::{RegisteredVersion, RegistryStatus, RevisionRef};
    use crate::fixtures;

    fn promoted() -> RunRecord {
        let spec = fixtures::retrain_policy("p").spec;
        let mut r = super::super::run::start(&spec, "s", "r-0001", ("manual", None), Timestamp::UNIX_EPOCH);
        r.decision = RunDecision::Promoted;
        r.candidate_version = Some("3".into());
        r.rollout = Some(ROLLING_OUT.into());
        r
    }

    fn rev(version: &str) -> RevisionRef {
        RevisionRef {
            version: version.into(),
            revision: 1,
            hash: None,
            registry: Some(RegisteredVersion { model: "fraud".into(), version: version.into() }),
        }
    }

    #[test]
    fn rollout_of_a_promoted_candidate() {
        let run = promoted();
        let mut md = ModelDeploymentStatus { stable: Some(rev("2")), candidate: Some(rev("3")), ..Default::default() };
        assert_eq!(rollout_progress(&run, &md), None, "still rolling out");
        md.phase = Some(DeploymentPhase::RolledBack);
        md.message = Some("analysis error-rate failed".into());
        let (rollout, e) = rollout_progress(&run, &md).unwrap();
        assert_eq!(rollout, "RolledBack: analysis error-rate failed");
        assert!(e.warning && e.message.contains("rolled registry version 3 back"));
        let md = ModelDeploymentStatus {
            stable: Some(rev("2")),
            registry: Some(RegistryStatus { rollback_recorded: Some("3".into()), ..Default::default() }),
            ..Default::default()
        };
        assert!(rollout_progress(&run, &md).unwrap().0.starts_with("RolledBack"));
        let md = ModelDeploymentStatus { stable: Some(rev("3")), ..Default::default() };
        assert_eq!(rollout_progress(&run, &md).unwrap().0, SERVING);
        let mut done = run.clone();
        done.rollout = Some(SERVING.into());
        assert_eq!(rollout_progress(&done, &md), None, "reported once");
    }

    #[test]
    fn phases() {
        let spec = fixtures::retrain_policy("p").spec;
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let (phase, message, _) = summarize(&spec, &RetrainPolicyStatus::default(), now);
        assert_eq!((phase, message.as_str()), (RetrainPhase::Idle, "waiting for a trigger"));
        let mut status = RetrainPolicyStatus::default();
        let mut run = super::super::run::start(&spec, "s", "r-0001", ("manual", None), now);
        status.runs.push(run.clone());
        assert_eq!(summarize(&spec, &status, now).0, RetrainPhase::Training);
        run.decision = RunDecision::Rejected;
        run.stage = Some(RunStage::Done);
        status.runs[0] = run.clone();
        status.last_run_started = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        assert_eq!(summarize(&spec, &status, now).0, RetrainPhase::CoolingDown);
        run.decision = RunDecision::Failed;
        status.runs[0] = run;
        let (phase, _, conds) = summarize(&spec, &status, now);
        assert_eq!(phase, RetrainPhase::Failed);
        assert!(conds[1].status && conds[1].reason == reasons::RUN_FAILED);
    }
}
