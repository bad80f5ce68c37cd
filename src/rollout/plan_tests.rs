//! Scenario tables for the step machine, driven by a simulated clock.

use super::*;
use crate::api::ModelDeployment;
use crate::api::model_deployment::Traffic;
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
    pods_problem: Option<String>,
    last: Option<Decision>,
}

impl Sim {
    /// Starts with version 1.0.0 already stable, behind the Gateway API router (exact weights).
    fn new() -> Self {
        let mut md = fixtures::model_deployment("fraud");
        md.spec.traffic = Some(Traffic { router: Some(Router::GatewayApi), ..Traffic::default() });
        Self::with(md)
    }

    /// Starts with version 1.0.0 of `md` already stable.
    fn with(md: ModelDeployment) -> Self {
        let mut sim = Sim {
            md,
            status: ModelDeploymentStatus::default(),
            now: 0,
            stable_ready: true,
            candidate_ready: 0,
            retained: vec![],
            pods_problem: None,
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
            candidate_pods_problem: self.pods_problem.as_deref(),
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

    /// Takes the measurements `plan::due` asks for, from `results`, then decides.
    fn measure(&mut self, results: &[MetricResult]) -> Decision {
        let target = self.target();
        let due = due(&self.md.spec, &self.status, &target, false, ts(self.now));
        let background = due.background.then(|| results.to_vec());
        let gate = due.gate.map(|names| results.iter().filter(|r| names.contains(&r.name)).cloned().collect());
        self.decide_with(background, gate, None)
    }

    /// Keeps the conditions decided last, as the reconciler writes them.
    fn keep_conditions(&mut self) {
        self.status.conditions =
            crate::conditions::merge(&[], &self.last.as_ref().unwrap().conditions, Some(1), &Time(ts(self.now)));
    }

    fn canary(&mut self) -> &mut crate::api::model_deployment::Canary {
        self.md.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap()
    }

    fn message(&self) -> String {
        self.status.message.clone().unwrap_or_default()
    }

    fn event_messages(&self) -> Vec<String> {
        self.last.as_ref().unwrap().events.iter().map(|e| e.message.clone()).collect()
    }

    fn scale_downs(&self) -> Vec<(String, i64)> {
        self.status.scale_downs.iter().map(|d| (d.hash.clone(), d.at.0.as_second() - ts(0).as_second())).collect()
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

fn pass(name: &str) -> MetricResult {
    result(name, Verdict::Pass, Some(0.001))
}

fn error(name: &str, why: &str) -> MetricResult {
    MetricResult { message: Some(why.into()), ..result(name, Verdict::Error, None) }
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
    let old = sim.status.stable.clone().unwrap().hash.unwrap();
    sim.ship("1.1.0");
    let d = sim.at(10).tick();
    assert_eq!(sim.reasons(), ["RolloutStarted"]);
    assert_eq!(sim.status.candidate.as_ref().unwrap().revision, 2);
    assert!(d.candidate_active());
    // Pods not ready yet: still at step 0, and no traffic moves onto a candidate without ready pods.
    sim.at(20).tick();
    assert_eq!((sim.step(), sim.weights(), sim.phase()), (Some(0), (100, 0, 0), DeploymentPhase::Progressing));
    assert_eq!(sim.status.waiting_since, Some(Time(ts(10))), "the deadline counts from the start of the wait");
    sim.candidate_ready = 1;
    sim.at(30).tick();
    assert_eq!(sim.reasons(), ["CanaryStepAdvanced"]);
    assert_eq!((sim.step(), sim.weights()), (Some(1), (90, 10, 0)));
    assert_eq!(sim.status.waiting_since, None);
    // Timed pause of 1m.
    sim.at(60).tick();
    assert_eq!((sim.step(), sim.phase()), (Some(1), DeploymentPhase::Paused));
    assert!(sim.condition("Paused").status);
    let d = sim.at(89).tick();
    assert_eq!(d.requeue_after, Some(Duration::from_secs(1)));
    sim.at(90).tick();
    assert_eq!(sim.step(), Some(2), "pause of 1m ends at 30+60");
    // Analysis gate: measured at once, then at most once per interval.
    assert_eq!(due(&sim.md.spec, &sim.status, &sim.target(), false, ts(91)).gate.unwrap(), ["error-rate"]);
    sim.at(91).measure(&[result("error-rate", Verdict::Inconclusive, None)]);
    assert_eq!(sim.step(), Some(2), "inconclusive gates wait");
    assert_eq!(due(&sim.md.spec, &sim.status, &sim.target(), false, ts(120)).gate, None, "not before an interval");
    sim.at(120).measure(&[pass("error-rate")]);
    assert_eq!(sim.step(), Some(2), "a pass that was not measured does not count");
    sim.at(151).measure(&[pass("error-rate")]);
    assert_eq!(sim.step(), Some(3));
    // setWeight 50 needs 1 of 2 pods: already ready.
    sim.at(152).tick();
    assert_eq!((sim.step(), sim.weights()), (Some(4), (50, 50, 0)));
    // After the last step: full size before promotion.
    sim.at(153).tick();
    assert_eq!(sim.phase(), DeploymentPhase::Progressing);
    sim.candidate_ready = 2;
    let d = sim.at(154).tick();
    assert_eq!(sim.reasons(), ["Promoted"]);
    assert_eq!((sim.phase(), sim.weights()), (DeploymentPhase::Healthy, (100, 0, 0)));
    assert_eq!(sim.status.stable.as_ref().unwrap().version, "1.1.0");
    assert_eq!(sim.status.history.iter().map(|h| h.version.as_str()).collect::<Vec<_>>(), ["1.1.0", "1.0.0"]);
    assert!(sim.status.candidate.is_none());
    // The old stable keeps its pods for scaleDownDelay (30s) after traffic has left it.
    assert_eq!(sim.scale_downs(), [(old.clone(), 184)]);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(30)));
    sim.at(183).tick();
    assert_eq!(sim.scale_downs(), [(old, 184)]);
    sim.at(184).tick();
    assert!(sim.scale_downs().is_empty(), "its time has come");
}

#[test]
fn background_failures_roll_back_after_the_limit() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.candidate_ready = 1;
    sim.at(0).tick();
    let target = sim.target();
    assert!(due(&sim.md.spec, &sim.status, &target, false, ts(0)).background, "first run at once");
    let fail = [result("error-rate", Verdict::Fail, Some(0.2))];
    sim.at(1).measure(&fail);
    assert_eq!(sim.reasons(), ["AnalysisRunFailed"], "failureLimit 1 tolerates one");
    assert_eq!(sim.phase(), DeploymentPhase::Paused, "still at the timed pause");
    assert!(!due(&sim.md.spec, &sim.status, &target, false, ts(30)).background);
    assert!(due(&sim.md.spec, &sim.status, &target, false, ts(61)).background);
    let d = sim.at(61).measure(&fail);
    assert_eq!(sim.reasons(), ["AnalysisFailed"]);
    assert_eq!((sim.phase(), sim.weights()), (DeploymentPhase::RolledBack, (100, 0, 0)));
    assert!(!d.candidate_active());
    assert_eq!(sim.condition("Degraded").reason, "AnalysisFailed");
    assert_eq!(sim.status.stable.as_ref().unwrap().version, "1.0.0");
    // The candidate keeps its pods for the scale-down delay; traffic has already left it.
    assert_eq!(sim.scale_downs(), [(target.hash.clone(), 91)]);
    // It stays rolled back: no steps, no analysis.
    sim.at(200).tick();
    assert_eq!(sim.phase(), DeploymentPhase::RolledBack);
    assert!(!due(&sim.md.spec, &sim.status, &target, false, ts(300)).any());
}

#[test]
fn an_outage_holds_without_a_deadline_and_rolls_back_only_past_max_outage() {
    for max_outage in [None, Some("10m")] {
        let mut sim = Sim::new();
        let analysis = sim.canary().analysis.as_mut().unwrap();
        analysis.max_outage = max_outage.map(crate::api::Duration::new);
        sim.ship("1.1.0");
        sim.candidate_ready = 1;
        sim.at(0).tick();
        sim.at(0).measure(&[result("error-rate", Verdict::Inconclusive, None)]);
        assert_eq!(sim.status.analysis.as_ref().unwrap().failures, 0);
        assert_eq!(sim.step(), Some(1), "inconclusive counts nothing and blocks nothing");
        sim.at(61).measure(&[error("error-rate", "prometheus unreachable")]);
        assert_eq!(sim.condition("Degraded").reason, "MetricUnavailable");
        assert_eq!(sim.reasons(), ["MetricUnavailable"], "a Warning Event when metrics become unavailable");
        assert_eq!(sim.status.analysis.as_ref().unwrap().unavailable_since, Some(Time(ts(61))));
        sim.keep_conditions();
        sim.at(122).measure(&[error("error-rate", "prometheus unreachable")]);
        assert!(sim.reasons().is_empty(), "one Event per outage: {:?}", sim.reasons());
        assert!(sim.condition("Degraded").message.contains("prometheus unreachable"));
        // Held: the pause of 1m ended at 60, but the step does not advance while metrics error.
        assert_eq!((sim.step(), sim.weights()), (Some(1), (90, 10, 0)), "stable keeps its share; nothing shifts");
        // Far past the progress deadline (15m).
        let d = sim.at(61 + 3600).measure(&[error("error-rate", "prometheus unreachable")]);
        match max_outage {
            None => {
                assert_eq!(sim.phase(), DeploymentPhase::Progressing, "an outage is no reason to roll back");
                assert_eq!(sim.status.waiting_since, None, "nor does it run the progress deadline");
                assert!(d.requeue_after.unwrap() <= Duration::from_secs(60));
                // Metrics come back: the rollout goes on.
                sim.at(61 + 3660).measure(&[pass("error-rate")]);
                assert_eq!(sim.step(), Some(2));
                assert_eq!(sim.status.analysis.as_ref().unwrap().unavailable_since, None);
                assert_eq!(sim.condition("Degraded").reason, "AsExpected");
            }
            Some(_) => {
                assert_eq!(sim.phase(), DeploymentPhase::RolledBack);
                assert_eq!(sim.reasons(), ["MetricOutage"]);
                assert!(sim.message().contains("600s (analysis.maxOutage)"), "{}", sim.message());
            }
        }
    }
}

#[test]
fn a_failed_measurement_during_a_long_step_holds_and_does_not_roll_back() {
    let mut sim = Sim::new();
    sim.canary().steps = vec![fixtures::set_weight(10), fixtures::pause(Some("1h")), fixtures::set_weight(50)];
    sim.ship("1.1.0");
    sim.candidate_ready = 1;
    sim.at(0).tick();
    assert_eq!(sim.step(), Some(1));
    // 30 minutes into the hour-long pause (twice the progress deadline), one measurement errors.
    sim.at(1800).measure(&[error("error-rate", "timeout")]);
    assert_eq!(sim.phase(), DeploymentPhase::Progressing, "holding, not rolled back");
    sim.at(1861).measure(&[pass("error-rate")]);
    assert_eq!((sim.step(), sim.phase()), (Some(1), DeploymentPhase::Paused), "the pause goes on");
    sim.at(3600).measure(&[pass("error-rate")]);
    assert_eq!(sim.step(), Some(2));
}

#[test]
fn user_actions_restart_the_deadline_and_pauses_do_not_run_it() {
    // (request after an hour, the rollout's state then)
    for verb in ["promote-full", "resume", "promote"] {
        let mut sim = Sim::new();
        sim.canary().steps = vec![fixtures::set_weight(10), fixtures::pause(None), fixtures::set_weight(100)];
        sim.ship("1.1.0");
        sim.candidate_ready = 1;
        sim.at(0).tick();
        sim.at(1).tick();
        assert_eq!((sim.step(), sim.phase()), (Some(1), DeploymentPhase::Paused));
        if verb == "resume" {
            sim.at(2).request("pause/p");
        }
        sim.at(3600).tick();
        assert_ne!(sim.phase(), DeploymentPhase::RolledBack, "{verb}: an hour at a pause runs no deadline");
        assert_eq!(sim.status.waiting_since, None, "{verb}");
        sim.at(3601).request(&format!("{verb}/1"));
        if verb == "resume" {
            // Back at the indefinite pause; promote continues.
            assert_eq!(sim.phase(), DeploymentPhase::Paused);
            sim.at(3601).request("promote/2");
        }
        // Now waiting for pods that are not ready (1 of 2 at 100%), counted from the user's action.
        sim.at(3602).tick();
        assert_ne!(sim.phase(), DeploymentPhase::RolledBack, "{verb}: not rolled back at once");
        let since = sim.status.waiting_since.clone().map(|t| t.0.as_second() - ts(0).as_second());
        assert!(since.is_some_and(|s| s >= 3601), "{verb}: the clock starts at the action, not the step: {since:?}");
        sim.at(3601 + 15 * 60 - 1).tick();
        assert_ne!(sim.phase(), DeploymentPhase::RolledBack, "{verb}");
        sim.at(3602 + 15 * 60).tick();
        assert_eq!(sim.phase(), DeploymentPhase::RolledBack, "{verb}: the deadline still applies to the wait");
        assert_eq!(sim.reasons(), ["ProgressDeadlineExceeded"], "{verb}");
    }
}

#[test]
fn traffic_moves_only_onto_ready_pods() {
    let mut sim = Sim::new();
    sim.canary().steps = vec![
        Step {
            mirror: Some(crate::api::model_deployment::MirrorStep {
                percent: 100,
                duration: crate::api::Duration::new("1m"),
            }),
            ..Step::default()
        },
        fixtures::set_weight(50),
        fixtures::pause(None),
    ];
    sim.ship("1.1.0");
    sim.at(0).tick();
    assert_eq!(sim.weights(), (100, 0, 0), "no copies to a candidate without a ready pod");
    sim.candidate_ready = 2;
    sim.at(1).tick();
    assert_eq!(sim.weights(), (100, 0, 100));
    sim.at(60).tick();
    assert_eq!((sim.step(), sim.weights()), (Some(1), (100, 0, 0)), "the mirror ends with its step");
    sim.at(61).tick();
    assert_eq!((sim.step(), sim.weights()), (Some(2), (50, 50, 0)));
    // The candidate's pods crash at the pause: its weight goes back to stable until they are ready.
    sim.candidate_ready = 0;
    sim.at(100).tick();
    assert_eq!(sim.weights(), (100, 0, 0));
    sim.candidate_ready = 1;
    sim.at(101).tick();
    assert_eq!(sim.weights(), (50, 50, 0));
}

#[test]
fn indefinite_pause_waits_for_promote_and_abort_works_there() {
    for abort in [false, true] {
        let mut sim = Sim::new();
        sim.canary().steps = vec![fixtures::set_weight(20), fixtures::pause(None), fixtures::set_weight(60)];
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
            assert_eq!(sim.scale_downs().len(), 1, "the candidate's pods go only after the delay");
        } else {
            sim.at(10_001).request("promote/1");
            assert_eq!(sim.step(), Some(2));
            sim.at(10_002).request("promote/1");
            assert_eq!(sim.reasons(), ["CanaryStepAdvanced"], "advanced by readiness, not by the old request");
            assert_eq!((sim.step(), sim.weights()), (Some(3), (40, 60, 0)));
        }
    }
}

#[test]
fn a_new_version_mid_rollout_restarts_steps_and_analysis() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    let first = sim.target().hash;
    sim.candidate_ready = 1;
    sim.at(0).tick();
    sim.at(0).measure(&[result("error-rate", Verdict::Fail, Some(0.5))]);
    assert_eq!(sim.status.analysis.as_ref().unwrap().failures, 1);
    assert_eq!(sim.step(), Some(1));
    sim.ship("1.2.0");
    sim.at(5).tick();
    assert_eq!(sim.reasons(), ["RolloutStarted"]);
    assert_eq!((sim.step(), sim.weights()), (Some(0), (100, 0, 0)));
    assert!(sim.status.analysis.is_none(), "analysis restarts for the new candidate");
    assert_eq!(sim.status.candidate.as_ref().unwrap().version, "1.2.0");
    assert_eq!(sim.status.candidate.as_ref().unwrap().revision, 3);
    assert!(sim.event_messages()[0].contains("replaces candidate 1.1.0"));
    assert!(due(&sim.md.spec, &sim.status, &sim.target(), false, ts(5)).background);
    assert_eq!(sim.scale_downs(), [(first, 35)], "the replaced candidate drains first");
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
    assert!(sim.message().contains("no progress for 120s at step 1"));
    // Later decisions keep saying why.
    sim.keep_conditions();
    sim.at(200).tick();
    assert_eq!(sim.condition("Degraded").reason, "ProgressDeadlineExceeded");
}

#[test]
fn failing_candidate_pods_are_named_while_waiting_and_at_the_deadline() {
    let mut sim = Sim::new();
    sim.md.spec.strategy.as_mut().unwrap().progress_deadline = Some(crate::api::Duration::new("1m"));
    sim.ship("1.1.0");
    sim.pods_problem = Some("pod fraud-x: container server CrashLoopBackOff".into());
    sim.at(0).tick();
    let c = sim.condition("Degraded");
    assert_eq!((c.status, c.reason.as_str()), (true, "CandidatePodsFailing"));
    assert!(c.message.contains("CrashLoopBackOff"), "{}", c.message);
    assert!(sim.message().contains("waiting for the candidate's pods to be ready: pod fraud-x"), "{}", sim.message());
    sim.at(60).tick();
    assert_eq!(sim.reasons(), ["ProgressDeadlineExceeded"]);
    assert!(sim.message().contains("CrashLoopBackOff"), "the rollback says why: {}", sim.message());
    // Pods that are fine say nothing.
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.at(0).tick();
    assert_eq!(sim.condition("Degraded").reason, "AsExpected");
}

#[test]
fn retry_restarts_a_rolled_back_candidate() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.candidate_ready = 1;
    sim.at(0).tick();
    sim.at(1).request("abort/a");
    assert_eq!(sim.phase(), DeploymentPhase::RolledBack);
    assert_eq!(sim.scale_downs().len(), 1);
    sim.at(2).request("retry/b");
    // Step 0 (setWeight 10) completes at once: its pod is still there.
    assert_eq!((sim.phase(), sim.step(), sim.weights()), (DeploymentPhase::Progressing, Some(1), (90, 10, 0)));
    assert_eq!(sim.reasons(), ["RolloutRetried", "CanaryStepAdvanced"]);
    assert!(sim.scale_downs().is_empty(), "serving again: no scale-down");
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
    // Unknown version: refused with a reason, and no weight for the rolled-back candidate.
    sim.at(4).request("rollback:9.9.9/4");
    assert!(sim.event_messages()[0].contains("9.9.9 is not in the history"));
    assert_eq!(sim.weights(), (100, 0, 0));
}

#[test]
fn reverting_the_spec_to_stable_cancels_the_rollout() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    let candidate = sim.target().hash;
    sim.candidate_ready = 1;
    sim.at(0).tick();
    sim.ship("1.0.0");
    sim.at(1).tick();
    assert_eq!(sim.reasons(), ["RolloutCancelled"]);
    assert_eq!((sim.phase(), sim.weights()), (DeploymentPhase::Healthy, (100, 0, 0)));
    assert_eq!(sim.scale_downs(), [(candidate, 31)]);
}

#[test]
fn verbs_that_do_nothing_say_why() {
    // (what to do before, the request, a fragment of the RequestIgnored message)
    type Setup = fn(&mut Sim);
    let healthy: Setup = |_| {};
    let rolled_back: Setup = |sim| {
        sim.ship("1.1.0");
        sim.at(0).tick();
        sim.at(1).request("abort/setup");
    };
    let paused: Setup = |sim| {
        sim.ship("1.1.0");
        sim.at(0).tick();
        sim.at(1).request("pause/setup");
    };
    let rolling: Setup = |sim| {
        sim.ship("1.1.0");
        sim.at(0).tick();
    };
    let table: &[(Setup, &str, &str)] = &[
        (healthy, "promote/1", "no rollout is under way"),
        (healthy, "abort/1", "no rollout is under way"),
        (healthy, "pause/1", "no rollout is under way"),
        (rolled_back, "pause/1", "was rolled back"),
        (rolled_back, "promote/1", "was rolled back"),
        (rolled_back, "abort/1", "was rolled back"),
        (paused, "pause/1", "already paused"),
        (paused, "promote/1", "paused by request"),
        (rolling, "resume/1", "not paused"),
        (rolling, "retry/1", "not rolled back"),
    ];
    for (setup, request, why) in table {
        let mut sim = Sim::new();
        setup(&mut sim);
        let before = (sim.phase(), sim.step(), sim.weights());
        sim.at(5).request(request);
        assert_eq!(sim.reasons(), ["RequestIgnored"], "{request}");
        let message = &sim.event_messages()[0];
        assert!(message.contains(request) && message.contains(why), "{request}: {message}");
        assert_eq!((sim.phase(), sim.step(), sim.weights()), before, "{request} changed nothing");
        assert_eq!(sim.status.last_request.as_deref(), Some(*request), "consumed all the same");
    }
}

#[test]
fn requests_are_acted_on_before_anything_is_measured() {
    let mut sim = Sim::new();
    sim.ship("1.1.0");
    sim.candidate_ready = 1;
    sim.at(0).tick();
    let target = sim.target();
    assert!(due(&sim.md.spec, &sim.status, &target, false, ts(0)).background);
    assert!(!due(&sim.md.spec, &sim.status, &target, true, ts(0)).any(), "a pending request measures nothing");
    let d = due(&sim.md.spec, &sim.status, &target, false, ts(0));
    assert_eq!(d.metric_names(), None, "background runs measure every metric, gates included");
}

#[test]
fn the_replicas_router_reports_the_split_of_its_pods() {
    let mut md = fixtures::model_deployment("fraud");
    md.spec.replicas = Some(3);
    let mut sim = Sim::with(md);
    sim.canary().steps = vec![fixtures::pause(None), fixtures::set_weight(1), fixtures::pause(None)];
    sim.ship("1.1.0");
    sim.at(0).tick();
    // Before the first setWeight: no candidate pod behind the shared Service, weight 0.
    assert_eq!(candidate_needed(&sim.md.spec, 0), 0);
    assert_eq!((sim.step(), sim.weights()), (Some(0), (100, 0, 0)));
    assert!(sim.condition("WeightExact").status);
    sim.at(1).request("promote/1");
    assert_eq!(sim.step(), Some(1));
    // setWeight 1 on 3 replicas: 1 candidate pod, 2 stable, once it is ready.
    sim.candidate_ready = 1;
    sim.at(2).tick();
    assert_eq!((sim.step(), sim.weights()), (Some(2), (67, 33, 0)), "the effective split, not the asked one");
    let c = sim.condition("WeightExact");
    assert_eq!((c.status, c.reason.as_str()), (false, "ReplicasTooFew"));
    assert!(c.message.contains("setWeight 1") && c.message.contains("1 of 3 pods (33%)"), "{}", c.message);
    assert_eq!(pods_at(&sim.md.spec, 2, 1), replicas::Split { stable: 2, candidate: 1 });
    assert_eq!(pods_at(&sim.md.spec, 2, 0), replicas::Split { stable: 3, candidate: 1 }, "stable waits for it");
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

#[test]
fn the_builtin_router_keeps_a_revision_until_its_configuration_can_have_reached_the_router() {
    let mut md = fixtures::model_deployment("fraud");
    let with = |md: &mut ModelDeployment, router: Router, delay: &str| {
        md.spec.traffic = Some(Traffic { router: Some(router), ..Traffic::default() });
        md.spec.strategy.as_mut().unwrap().scale_down_delay = Some(crate::api::duration::Duration::new(delay));
        scale_down_delay(&md.spec)
    };
    assert_eq!(with(&mut md, Router::GatewayApi, "30s"), Duration::from_secs(30));
    assert_eq!(with(&mut md, Router::Builtin, "30s"), BUILTIN_ROUTER_PROPAGATION);
    assert_eq!(with(&mut md, Router::Builtin, "5m"), Duration::from_secs(300));
}
