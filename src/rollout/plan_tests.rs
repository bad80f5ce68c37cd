//! Scenario tables for the step machine, driven by a simulated clock.

use super::*;
use crate::api::ModelDeployment;
use crate::fixtures;
use crate::rollout::revision;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn result(name: &str, verdict: Verdict, value: Option<f64>) -> MetricResult {
    MetricResult { name: name.into(), value, verdict, message: None }
}

/// A ModelDeployment driven through decisions; each `tick` applies the decided status.
struct Sim {
    md: ModelDeployment,
    status: ModelDeploymentStatus,
    now: i64,
    stable_ready: bool,
    candidate_ready: i32,
    retained: Vec<String>,
    last: Option<Decision>,
}

impl Sim {
    /// Starts with version 1.0.0 already stable.
    fn new() -> Self {
        let mut sim = Sim {
            md: fixtures::model_deployment("fraud"),
            status: ModelDeploymentStatus::default(),
            now: 0,
            stable_ready: true,
            candidate_ready: 0,
            retained: vec![],
            last: None,
        };
        sim.tick();
        assert_eq!(sim.phase(), DeploymentPhase::Healthy);
        sim
    }

    fn target(&self) -> Target {
        revision::target(&self.md.spec).unwrap()
    }

    fn ship(&mut self, version: &str) {
        self.md.spec.model = fixtures::model(version);
        self.candidate_ready = 0;
    }

    fn at(&mut self, secs: i64) -> &mut Self {
        self.now = secs;
        self
    }

    fn decide_with(
        &mut self,
        background: Option<Vec<MetricResult>>,
        gate: Option<Vec<MetricResult>>,
        request: Option<&str>,
    ) -> Decision {
        let target = self.target();
        let request = request.map(|r| Request::parse(r).unwrap());
        let input = Input {
            spec: &self.md.spec,
            status: &self.status,
            target: &target,
            stable_ready: self.stable_ready,
            candidate_ready_replicas: self.candidate_ready,
            background: background.as_deref(),
            gate: gate.as_deref(),
            request: request.as_ref(),
            retained: &self.retained,
            now: ts(self.now),
        };
        let d = decide(&input);
        self.status = d.status.clone();
        self.last = Some(d.clone());
        d
    }

    fn tick(&mut self) -> Decision {
        self.decide_with(None, None, None)
    }

    fn request(&mut self, r: &str) -> Decision {
        self.decide_with(None, None, Some(r))
    }

    fn phase(&self) -> DeploymentPhase {
        self.status.phase.unwrap()
    }

    fn weights(&self) -> (i32, i32, i32) {
        let w = self.status.weights.clone().unwrap();
        (w.stable, w.candidate, w.mirror)
    }

    fn step(&self) -> Option<i32> {
        self.status.current_step
    }

    fn reasons(&self) -> Vec<String> {
        self.last.as_ref().unwrap().events.iter().map(|e| e.reason.clone()).collect()
    }

    fn condition(&self, type_: &str) -> Desired {
        self.last.as_ref().unwrap().conditions.iter().find(|c| c.type_ == type_).unwrap().clone()
    }
}

#[test]
fn first_version_goes_straight_to_full_traffic() {
    let mut sim = Sim::new();
    assert_eq!(sim.weights(), (100, 0, 0));
    assert_eq!(sim.status.stable.as_ref().unwrap().version, "1.0.0");
    assert_eq!(sim.status.history.len(), 1);
    assert!(sim.status.candidate.is_none());
    assert!(sim.condition("Ready").status);
    // Not ready pods: progressing, not healthy.
    sim.stable_ready = false;
    sim.tick();
    assert_eq!(sim.phase(), DeploymentPhase::Progressing);
    assert_eq!(sim.condition("Ready").reason, "PodsNotReady");
}

#[test]
fn happy_path_walks_every_step_and_promotes() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    // (time, candidate ready pods, gate results, expected step, weights, phase, events)
    let d = sim.at(10).tick();
    assert_eq!(sim.reasons(), ["RolloutStarted"]);
    assert_eq!((sim.step(), sim.weights(), sim.phase()), (Some(0), (90, 10, 0), DeploymentPhase::Progressing));
    assert_eq!(sim.status.candidate.as_ref().unwrap().revision, 2);
    assert!(d.candidate_active());
    // Pods not ready yet: still at step 0.
    sim.at(20).tick();
    assert_eq!(sim.step(), Some(0));
    sim.candidate_ready = 1;
    sim.at(30).tick();
    assert_eq!(sim.reasons(), ["CanaryStepAdvanced"]);
    assert_eq!((sim.step(), sim.weights()), (Some(1), (90, 10, 0)));
    // Timed pause of 1m.
    sim.at(60).tick();
    assert_eq!((sim.step(), sim.phase()), (Some(1), DeploymentPhase::Paused));
    assert!(sim.condition("Paused").status);
    let d = sim.at(89).tick();
    assert_eq!(d.requeue_after, Some(Duration::from_secs(1)));
    sim.at(90).tick();
    assert_eq!(sim.step(), Some(2), "pause of 1m ends at 30+60");
    // Analysis gate.
    assert_eq!(gate_due(&sim.md.spec, &sim.status, &sim.target()).unwrap(), ["error-rate"]);
    sim.at(91).decide_with(None, Some(vec![result("error-rate", Verdict::Inconclusive, None)]), None);
    assert_eq!(sim.step(), Some(2), "inconclusive gates wait");
    sim.at(92).decide_with(None, Some(vec![result("error-rate", Verdict::Pass, Some(0.001))]), None);
    assert_eq!(sim.step(), Some(3));
    // setWeight 50 needs 1 of 2 pods (replicas router, 2 replicas): already ready.
    assert_eq!(sim.weights(), (50, 50, 0));
    sim.at(93).tick();
    assert_eq!(sim.step(), Some(4));
    // After the last step: full size before promotion.
    sim.at(94).tick();
    assert_eq!(sim.phase(), DeploymentPhase::Progressing);
    sim.candidate_ready = 2;
    sim.at(95).tick();
    assert_eq!(sim.reasons(), ["Promoted"]);
    assert_eq!((sim.phase(), sim.weights()), (DeploymentPhase::Healthy, (100, 0, 0)));
    assert_eq!(sim.status.stable.as_ref().unwrap().version, "1.1.0");
    assert_eq!(sim.status.history.iter().map(|h| h.version.as_str()).collect::<Vec<_>>(), ["1.1.0", "1.0.0"]);
    assert!(sim.status.candidate.is_none());
}

#[test]
fn background_failures_roll_back_after_the_limit() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.candidate_ready = 1;
    sim.at(0).tick();
    let target = sim.target();
    assert!(background_due(&sim.md.spec, &sim.status, &target, ts(0)), "first run at once");
    let fail = || Some(vec![result("error-rate", Verdict::Fail, Some(0.2))]);
    sim.at(1).decide_with(fail(), None, None);
    assert_eq!(sim.reasons(), ["AnalysisRunFailed"], "failureLimit 1 tolerates one");
    assert_eq!(sim.phase(), DeploymentPhase::Paused, "still at the timed pause");
    assert!(!background_due(&sim.md.spec, &sim.status, &target, ts(30)));
    assert!(background_due(&sim.md.spec, &sim.status, &target, ts(61)));
    let d = sim.at(61).decide_with(fail(), None, None);
    assert_eq!(sim.reasons(), ["AnalysisFailed"]);
    assert_eq!((sim.phase(), sim.weights()), (DeploymentPhase::RolledBack, (100, 0, 0)));
    assert!(!d.candidate_active());
    assert_eq!(sim.condition("Degraded").reason, "AnalysisFailed");
    assert_eq!(sim.status.stable.as_ref().unwrap().version, "1.0.0");
    // It stays rolled back: no steps, no analysis.
    sim.at(200).tick();
    assert_eq!(sim.phase(), DeploymentPhase::RolledBack);
    assert!(!background_due(&sim.md.spec, &sim.status, &target, ts(300)));
}

#[test]
fn no_data_is_inconclusive_and_provider_errors_hold() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.candidate_ready = 1;
    sim.at(0).decide_with(Some(vec![result("error-rate", Verdict::Inconclusive, None)]), None, None);
    assert_eq!(sim.status.analysis.as_ref().unwrap().failures, 0);
    assert_eq!(sim.step(), Some(1), "inconclusive counts nothing and blocks nothing");
    let mut err = result("error-rate", Verdict::Error, None);
    err.message = Some("prometheus unreachable".into());
    sim.at(61).decide_with(Some(vec![err.clone()]), None, None);
    assert_eq!(sim.condition("Degraded").reason, "MetricUnavailable");
    assert_eq!(sim.reasons(), ["MetricUnavailable"], "a Warning Event when metrics become unavailable");
    // The Degraded condition is what the reconciler writes; with it in place, no second Event.
    sim.status.conditions =
        crate::conditions::merge(&[], &sim.last.as_ref().unwrap().conditions, Some(1), &Time(ts(61)));
    sim.at(63).decide_with(Some(vec![err]), None, None);
    assert!(sim.reasons().is_empty(), "{:?}", sim.reasons());
    assert!(sim.condition("Degraded").message.contains("prometheus unreachable"));
    // Held: the pause of 1m ended at 60, but the step does not advance while metrics error.
    assert_eq!(sim.step(), Some(1));
    assert_eq!(sim.weights(), (90, 10, 0), "stable keeps its share; nothing shifts");
    // Errors for longer than the progress deadline roll back.
    sim.at(61 + 15 * 60).tick();
    assert_eq!(sim.phase(), DeploymentPhase::RolledBack);
    assert_eq!(sim.reasons(), ["ProgressDeadlineExceeded"]);
}

#[test]
fn indefinite_pause_waits_for_promote_and_abort_works_there() {
    for abort in [false, true] {
        let mut sim = Sim::new();
        let canary = sim.md.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap();
        canary.steps = vec![fixtures::set_weight(20), fixtures::pause(None), fixtures::set_weight(60)];
        sim.ship("2.0.0");
        sim.candidate_ready = 2;
        sim.at(0).tick();
        sim.at(1).tick();
        assert_eq!((sim.step(), sim.phase()), (Some(1), DeploymentPhase::Paused));
        // Long after the progress deadline, still paused: an indefinite pause has no deadline.
        sim.at(10_000).tick();
        assert_eq!((sim.step(), sim.phase()), (Some(1), DeploymentPhase::Paused));
        if abort {
            sim.at(10_001).request("abort/1");
            assert_eq!((sim.phase(), sim.weights()), (DeploymentPhase::RolledBack, (100, 0, 0)));
            assert_eq!(sim.reasons(), ["Aborted"]);
        } else {
            sim.at(10_001).request("promote/1");
            assert_eq!((sim.step(), sim.weights()), (Some(2), (40, 60, 0)));
            // The same request value again is not consumed twice.
            sim.at(10_002).request("promote/1");
            assert_eq!(sim.step(), Some(3));
            assert_eq!(sim.reasons(), ["CanaryStepAdvanced"], "advanced by readiness, not by the old request");
        }
    }
}

#[test]
fn a_new_version_mid_rollout_restarts_steps_and_analysis() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.candidate_ready = 1;
    sim.at(0).decide_with(Some(vec![result("error-rate", Verdict::Fail, Some(0.5))]), None, None);
    assert_eq!(sim.status.analysis.as_ref().unwrap().failures, 1);
    assert_eq!(sim.step(), Some(1));
    sim.ship("1.2.0");
    sim.at(5).tick();
    assert_eq!(sim.reasons(), ["RolloutStarted"]);
    assert_eq!(sim.step(), Some(0));
    assert!(sim.status.analysis.is_none(), "analysis restarts for the new candidate");
    assert_eq!(sim.status.candidate.as_ref().unwrap().version, "1.2.0");
    assert_eq!(sim.status.candidate.as_ref().unwrap().revision, 3);
    assert!(sim.last.as_ref().unwrap().events[0].message.contains("replaces candidate 1.1.0"));
    assert!(background_due(&sim.md.spec, &sim.status, &sim.target(), ts(5)));
}

#[test]
fn progress_deadline_rolls_back_a_candidate_that_never_gets_ready() {
    let mut sim = Sim::new();
    sim.md.spec.strategy.as_mut().unwrap().progress_deadline = Some(crate::api::Duration::new("2m"));
    sim.ship("1.1.0");
    sim.at(0).tick();
    let d = sim.at(60).tick();
    assert_eq!(sim.phase(), DeploymentPhase::Progressing);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(60)), "wakes at the deadline");
    sim.at(120).tick();
    assert_eq!(sim.phase(), DeploymentPhase::RolledBack);
    assert!(sim.status.message.as_ref().unwrap().contains("no progress for 120s at step 1"));
    // Later decisions keep saying why.
    sim.status.conditions =
        crate::conditions::merge(&[], &sim.last.as_ref().unwrap().conditions, Some(1), &Time(ts(120)));
    sim.at(200).tick();
    assert_eq!(sim.condition("Degraded").reason, "ProgressDeadlineExceeded");
}

#[test]
fn retry_restarts_a_rolled_back_candidate() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.at(0).tick();
    sim.at(1).request("abort/a");
    assert_eq!(sim.phase(), DeploymentPhase::RolledBack);
    sim.at(2).request("retry/b");
    assert_eq!((sim.phase(), sim.step(), sim.weights()), (DeploymentPhase::Progressing, Some(0), (90, 10, 0)));
    assert_eq!(sim.reasons(), ["RolloutRetried"]);
}

#[test]
fn manual_pause_and_resume_hold_the_step() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.at(0).tick();
    sim.candidate_ready = 1;
    sim.at(1).request("pause/1");
    assert_eq!((sim.phase(), sim.step()), (DeploymentPhase::Paused, Some(0)));
    sim.at(2).tick();
    assert_eq!(sim.step(), Some(0), "paused: ready pods do not advance the step");
    sim.at(3).request("resume/2");
    assert_eq!((sim.phase(), sim.step()), (DeploymentPhase::Progressing, Some(1)));
}

#[test]
fn promote_full_skips_the_remaining_steps() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.at(0).tick();
    sim.candidate_ready = 2;
    sim.at(1).request("promote-full/1");
    assert_eq!(sim.phase(), DeploymentPhase::Healthy);
    assert_eq!(sim.status.stable.as_ref().unwrap().version, "1.1.0");
}

#[test]
fn rollback_to_a_version_in_history_without_steps() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.candidate_ready = 2;
    sim.at(0).request("promote-full/1");
    assert_eq!(sim.status.stable.as_ref().unwrap().version, "1.1.0");
    let old_hash = sim.status.history[1].hash.clone().unwrap();
    // Refused while the old Deployment is gone.
    sim.at(1).request("rollback:1.0.0/2");
    assert_eq!(sim.reasons(), ["RollbackRefused"]);
    assert_eq!(sim.status.stable.as_ref().unwrap().version, "1.1.0");
    sim.retained = vec![old_hash];
    sim.at(2).request("rollback:1.0.0/3");
    assert_eq!(sim.reasons(), ["RolledBack"]);
    assert_eq!(sim.status.stable.as_ref().unwrap().version, "1.0.0");
    assert_eq!((sim.phase(), sim.weights()), (DeploymentPhase::RolledBack, (100, 0, 0)));
    // The spec still says 1.1.0: it waits, it does not roll out again by itself.
    sim.at(3).tick();
    assert_eq!(sim.phase(), DeploymentPhase::RolledBack);
    assert_eq!(sim.status.candidate.as_ref().unwrap().version, "1.1.0");
    // Unknown version: refused with a reason.
    sim.at(4).request("rollback:9.9.9/4");
    assert!(sim.last.unwrap().events[0].message.contains("9.9.9 is not in the history"));
}

#[test]
fn reverting_the_spec_to_stable_cancels_the_rollout() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.at(0).tick();
    sim.ship("1.0.0");
    sim.at(1).tick();
    assert_eq!(sim.reasons(), ["RolloutCancelled"]);
    assert_eq!((sim.phase(), sim.weights()), (DeploymentPhase::Healthy, (100, 0, 0)));
}

#[test]
fn weights_by_step() {
    let steps = [fixtures::set_weight(5), fixtures::pause(None), fixtures::analysis(&["x"]), fixtures::set_weight(30)];
    let table = [(0, 5), (1, 5), (2, 5), (3, 30), (9, 30)];
    for (i, w) in table {
        assert_eq!(weight_at(&steps, i), w, "step {i}");
    }
    assert_eq!(weight_at(&[], 0), 0);
}
