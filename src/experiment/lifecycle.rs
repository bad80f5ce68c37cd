//! An Experiment's life, as a pure function of (spec, status, its ModelDeployment, the other Experiments,
//! whether its variants' pods are ready, now): when it may start (one at a time per ModelDeployment, first
//! come first served, never while the ModelDeployment rolls out), when its variants serve, and when it
//! ends (the ModelDeployment started a rollout, `maxDuration`). Decisions from the statistics come on top
//! of this (see `analysis::stats`).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::experiment::ExperimentPhase;
use crate::api::{Experiment, ExperimentStatus, ModelDeployment};
use crate::conditions::{Desired, Transition};
use crate::names::{conditions as cond, reasons};
use crate::rollout::plan;

/// How often a waiting Experiment looks again (it is also woken by changes of its ModelDeployment).
pub const WAIT_RECHECK: Duration = Duration::from_secs(10);

/// What the lifecycle looks at.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The Experiment.
    pub x: &'a Experiment,
    /// Its ModelDeployment (it exists: a missing one is an acceptance problem).
    pub md: &'a ModelDeployment,
    /// Every Experiment of the namespace (this one may be among them).
    pub all: &'a [Experiment],
    /// Whether every variant's Deployment has all its pods ready.
    pub variants_ready: bool,
    /// How long the variants keep their pods after the experiment ends, while the routing leaves them (the
    /// ModelDeployment's `strategy.scaleDownDelay`).
    pub drain: Duration,
    /// The time of the decision.
    pub now: Timestamp,
}

/// What the lifecycle decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The status (conditions are in `conditions`).
    pub status: ExperimentStatus,
    /// Ready and Progressing.
    pub conditions: Vec<Desired>,
    /// Transitions worth an Event.
    pub events: Vec<Transition>,
    /// Whether the variants' Deployments and Services should exist.
    pub serve: bool,
    /// When to look again.
    pub requeue_after: Option<Duration>,
}

fn phase_of(x: &Experiment) -> ExperimentPhase {
    x.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
}

/// Whether an Experiment has ended.
pub fn ended(x: &Experiment) -> bool {
    is_final(Some(phase_of(x)))
}

/// Whether a phase is one an Experiment ends in.
pub fn is_final(phase: Option<ExperimentPhase>) -> bool {
    matches!(phase, Some(ExperimentPhase::Concluded | ExperimentPhase::Inconclusive | ExperimentPhase::Aborted))
}

/// The Experiment that goes first on `md`: a running one, else the oldest that has not ended.
pub fn first_in_line<'a>(md: &ModelDeployment, all: &'a [Experiment]) -> Option<&'a Experiment> {
    let mine = || {
        all.iter()
            .filter(|x| x.namespace() == md.namespace() && x.spec.deployment_ref.name == md.name_any() && !ended(x))
    };
    mine().find(|x| phase_of(x) == ExperimentPhase::Running).or_else(|| {
        mine().min_by(|a, b| {
            let at = |x: &Experiment| x.metadata.creation_timestamp.as_ref().map(|t| t.0);
            at(a).cmp(&at(b)).then_with(|| a.name_any().cmp(&b.name_any()))
        })
    })
}

/// Decides the lifecycle. See the module docs.
pub fn decide(input: &Input) -> Outcome {
    let x = input.x;
    let mut s = x.status.clone().unwrap_or_default();
    let mut events = Vec::new();
    let md_name = input.md.name_any();
    let phase = phase_of(x);
    // After the end, the variants keep serving for `drain` (the routing leaves them first), then go.
    let done = |s: ExperimentStatus, conditions, events| {
        let ended = s.ended_at.as_ref().map(|t| t.0).unwrap_or(input.now);
        let gone = ended.checked_add(jiff::SignedDuration::try_from(input.drain).unwrap_or_default()).unwrap_or(ended);
        let left = Duration::try_from(gone.duration_since(input.now)).unwrap_or_default();
        Outcome {
            status: s,
            conditions,
            events,
            serve: input.now < gone,
            requeue_after: (input.now < gone).then(|| left.max(Duration::from_millis(200))),
        }
    };
    if ended(x) {
        // The conditions set when it ended say how; they stay.
        return done(s, Vec::new(), events);
    }
    let end = |s: &mut ExperimentStatus, events: &mut Vec<Transition>, phase, reason: &str, message: String| {
        s.phase = Some(phase);
        s.message = Some(message.clone());
        s.ended_at = Some(Time(input.now));
        events.push(Transition {
            warning: phase == ExperimentPhase::Aborted,
            reason: reason.into(),
            message: message.clone(),
        });
        vec![
            Desired::new(cond::READY, false, reason, message.clone()),
            Desired::new(cond::PROGRESSING, false, reason, message),
        ]
    };
    let md_status = input.md.status.clone().unwrap_or_default();
    let rolling = plan::rolling(&md_status);
    if phase == ExperimentPhase::Running && rolling {
        let version = md_status.candidate.map(|c| c.version).unwrap_or_default();
        let message = format!(
            "ModelDeployment {md_name} started a rollout of version {version}; the experiment stopped and its variants are removed"
        );
        let conditions = end(&mut s, &mut events, ExperimentPhase::Aborted, reasons::EXPERIMENT_ABORTED, message);
        return done(s, conditions, events);
    }
    let wait = |mut s: ExperimentStatus, reason: &str, message: String, serve: bool| {
        s.phase = Some(ExperimentPhase::Pending);
        s.message = Some(message.clone());
        Outcome {
            status: s,
            conditions: vec![
                Desired::new(cond::READY, false, reason, message.clone()),
                Desired::new(cond::PROGRESSING, false, reason, message),
            ],
            events: Vec::new(),
            serve,
            requeue_after: Some(WAIT_RECHECK),
        }
    };
    if let Some(first) = first_in_line(input.md, input.all).filter(|f| f.name_any() != x.name_any()) {
        let message = format!(
            "experiment {} goes first on ModelDeployment {md_name} (one experiment at a time); this one starts when it ends",
            first.name_any()
        );
        return wait(s, reasons::WAITING_FOR_EXPERIMENT, message, false);
    }
    if rolling || md_status.stable.is_none() {
        let message = format!(
            "ModelDeployment {md_name} is rolling out (or has no stable version yet); the experiment starts when one version serves all traffic"
        );
        return wait(s, reasons::WAITING_FOR_ROLLOUT, message, false);
    }
    if phase != ExperimentPhase::Running {
        if !input.variants_ready {
            return wait(s, reasons::VARIANTS_STARTING, "waiting for the variants' pods to be ready".into(), true);
        }
        s.phase = Some(ExperimentPhase::Running);
        s.started_at = Some(Time(input.now));
        events.push(Transition {
            warning: false,
            reason: reasons::EXPERIMENT_STARTED.into(),
            message: format!("variants {} serve beside ModelDeployment {md_name}", variant_names(x)),
        });
    }
    let started = s.started_at.as_ref().map(|t| t.0).unwrap_or(input.now);
    let max = x.spec.decision.max_duration.to_std().unwrap_or_default();
    let deadline = started.checked_add(jiff::SignedDuration::try_from(max).unwrap_or_default()).unwrap_or(started);
    if input.now >= deadline {
        let message = format!("no decision within maxDuration {}; stable stays as it is", x.spec.decision.max_duration);
        let conditions =
            end(&mut s, &mut events, ExperimentPhase::Inconclusive, reasons::MAX_DURATION_REACHED, message);
        return done(s, conditions, events);
    }
    let message = format!("running since {started}; ends by {deadline} at the latest");
    // After the first evaluation the message is the last evaluation's (what it waits for, a query
    // without data); reconciles between evaluations keep it.
    if s.last_evaluation.is_none() || s.message.is_none() {
        s.message = Some(message.clone());
    }
    let wake = Duration::try_from(deadline.duration_since(input.now)).unwrap_or_default();
    Outcome {
        status: s,
        conditions: vec![
            Desired::new(cond::READY, true, reasons::EXPERIMENT_RUNNING, message.clone()),
            Desired::new(cond::PROGRESSING, true, reasons::EXPERIMENT_RUNNING, message),
        ],
        events,
        serve: true,
        requeue_after: Some(wake.min(Duration::from_secs(60)).max(Duration::from_millis(200))),
    }
}

/// Ends a running experiment from an evaluation's verdict: the phase, the winner (if any), the reason on
/// Ready and Progressing, an Event; the variants keep their pods for `drain` while the routing leaves them.
pub fn conclude(
    o: &mut Outcome,
    phase: ExperimentPhase,
    reason: &str,
    message: String,
    winner: Option<String>,
    now: Timestamp,
    drain: Duration,
) {
    o.status.phase = Some(phase);
    o.status.message = Some(message.clone());
    o.status.winner = winner;
    o.status.ended_at = Some(Time(now));
    o.conditions = vec![
        Desired::new(cond::READY, false, reason, message.clone()),
        Desired::new(cond::PROGRESSING, false, reason, message.clone()),
    ];
    o.events.push(Transition { warning: phase == ExperimentPhase::Aborted, reason: reason.into(), message });
    o.serve = !drain.is_zero();
    o.requeue_after = Some(drain.max(Duration::from_millis(200)));
}

fn variant_names(x: &Experiment) -> String {
    x.spec.variants.iter().map(|v| format!("{} ({}%)", v.name, v.weight)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model_deployment::RevisionRef;
    use crate::api::{DeploymentPhase, ModelDeploymentStatus};
    use crate::fixtures;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn healthy_md() -> ModelDeployment {
        let mut md = fixtures::model_deployment("fraud");
        md.status = Some(ModelDeploymentStatus {
            phase: Some(DeploymentPhase::Healthy),
            stable: Some(RevisionRef { version: "1.0.0".into(), revision: 1, ..Default::default() }),
            ..Default::default()
        });
        md
    }

    fn experiment(name: &str, created: i64, phase: Option<ExperimentPhase>) -> Experiment {
        let mut x = fixtures::experiment(name);
        x.spec.decision.max_duration = crate::api::duration::Duration::new("1h");
        x.metadata.creation_timestamp = Some(Time(ts(created)));
        x.status =
            phase.map(|p| ExperimentStatus { phase: Some(p), started_at: Some(Time(ts(0))), ..Default::default() });
        x
    }

    fn run(x: &Experiment, md: &ModelDeployment, all: &[Experiment], ready: bool, now: i64) -> Outcome {
        decide(&Input { x, md, all, variants_ready: ready, drain: Duration::from_secs(30), now: ts(now) })
    }

    #[test]
    fn starts_once_the_variants_are_ready_and_ends_at_max_duration() {
        let md = healthy_md();
        let x = experiment("a", 0, None);
        let o = run(&x, &md, std::slice::from_ref(&x), false, 5);
        assert_eq!(o.status.phase, Some(ExperimentPhase::Pending));
        assert!(o.serve, "the variants start");
        assert_eq!(o.conditions[0].reason, reasons::VARIANTS_STARTING);

        let o = run(&x, &md, std::slice::from_ref(&x), true, 10);
        assert_eq!(o.status.phase, Some(ExperimentPhase::Running));
        assert_eq!(o.status.started_at, Some(Time(ts(10))));
        assert!(o.serve);
        assert_eq!(o.events[0].reason, reasons::EXPERIMENT_STARTED);

        let mut running = x.clone();
        running.status = Some(o.status);
        let o = run(&running, &md, std::slice::from_ref(&running), true, 20);
        assert!(o.events.is_empty(), "started once");
        assert_eq!(o.requeue_after, Some(Duration::from_secs(60)));
        let o = run(&running, &md, std::slice::from_ref(&running), true, 10 + 3600);
        assert_eq!(o.status.phase, Some(ExperimentPhase::Inconclusive));
        assert_eq!(o.status.ended_at, Some(Time(ts(3610))));
        assert!(o.serve, "the variants keep their pods while the routing leaves them");
        assert_eq!(o.requeue_after, Some(Duration::from_secs(30)));
        assert_eq!(o.events[0].reason, reasons::MAX_DURATION_REACHED);

        let mut ended = running.clone();
        ended.status = Some(o.status);
        let o = run(&ended, &md, std::slice::from_ref(&ended), true, 3610 + 29);
        assert!(o.serve && o.events.is_empty());
        let o = run(&ended, &md, std::slice::from_ref(&ended), true, 3610 + 30);
        assert_eq!(o.status.phase, Some(ExperimentPhase::Inconclusive));
        assert!(!o.serve && o.events.is_empty(), "torn down after the drain");
    }

    #[test]
    fn one_at_a_time_first_come_first_served() {
        let md = healthy_md();
        let older = experiment("b-older", 0, None);
        let newer = experiment("a-newer", 5, None);
        let all = [older.clone(), newer.clone()];
        let o = run(&newer, &md, &all, true, 10);
        assert_eq!(o.status.phase, Some(ExperimentPhase::Pending));
        assert_eq!(o.conditions[0].reason, reasons::WAITING_FOR_EXPERIMENT);
        assert!(o.conditions[0].message.contains("experiment b-older goes first"), "{}", o.conditions[0].message);
        assert!(!o.serve);
        assert_eq!(run(&older, &md, &all, true, 10).status.phase, Some(ExperimentPhase::Running));

        // A running one goes first even when it is newer; an ended one is out of the line.
        let running_newer = experiment("a-newer", 5, Some(ExperimentPhase::Running));
        let all = [older.clone(), running_newer];
        assert_eq!(run(&older, &md, &all, true, 10).conditions[0].reason, reasons::WAITING_FOR_EXPERIMENT);
        let ended_older = experiment("b-older", 0, Some(ExperimentPhase::Aborted));
        let all = [ended_older, newer.clone()];
        assert_eq!(run(&newer, &md, &all, true, 10).status.phase, Some(ExperimentPhase::Running));
        // Another deployment's experiment is not in the line.
        let mut elsewhere = experiment("c", 0, Some(ExperimentPhase::Running));
        elsewhere.spec.deployment_ref.name = "churn".into();
        let all = [elsewhere, newer.clone()];
        assert_eq!(run(&newer, &md, &all, true, 10).status.phase, Some(ExperimentPhase::Running));
    }

    #[test]
    fn never_while_the_deployment_rolls_out() {
        let mut md = healthy_md();
        let s = md.status.as_mut().unwrap();
        s.phase = Some(DeploymentPhase::Progressing);
        s.candidate = Some(RevisionRef { version: "1.1.0".into(), revision: 2, ..Default::default() });
        let x = experiment("a", 0, None);
        let o = run(&x, &md, std::slice::from_ref(&x), true, 10);
        assert_eq!(o.conditions[0].reason, reasons::WAITING_FOR_ROLLOUT);
        assert!(!o.serve);
        // Running when the rollout starts: aborted, torn down, with a Warning.
        let running = experiment("a", 0, Some(ExperimentPhase::Running));
        let o = run(&running, &md, std::slice::from_ref(&running), true, 10);
        assert_eq!(o.status.phase, Some(ExperimentPhase::Aborted));
        assert_eq!(o.requeue_after, Some(Duration::from_secs(30)), "torn down after the drain");
        assert!(o.events[0].warning && o.events[0].message.contains("rollout of version 1.1.0"), "{:?}", o.events);
    }
}
