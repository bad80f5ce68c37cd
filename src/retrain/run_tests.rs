//! Tables for a run's progress.

use super::*;
use crate::api::retrain_policy::{Parameter, ParameterValue, Promotion, PromotionMode, Search, SearchObjective};
use crate::fixtures;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-12-01T10:00:00Z";

fn searching(trials: i32, parallelism: i32) -> RetrainPolicySpec {
    let mut spec = fixtures::retrain_policy("p").spec;
    spec.training.search = Some(Search {
        parameters: [("lr".to_string(), Parameter { min: Some(0.001), max: Some(0.1), ..Parameter::default() })].into(),
        max_trials: trials,
        parallelism: Some(parallelism),
        objective: SearchObjective { metric: "val_f1".into(), goal: Goal::Maximize },
        ..Search::default()
    });
    spec
}

fn champion() -> Champion {
    Champion { uri: Some("s3://models/fraud/1".into()), follows_alias: true }
}

/// Steps a run, with `jobs` as the Jobs observed, keeping the record like the controller does.
struct Sim {
    spec: RetrainPolicySpec,
    run: RunRecord,
    jobs: BTreeMap<String, Observed>,
    logged: BTreeMap<String, report::Metrics>,
    champion: Champion,
}

impl Sim {
    fn new(spec: RetrainPolicySpec) -> Self {
        let run = start(&spec, "default/p", "r-0001", ("manual", None), ts(NOW));
        Self { spec, run, jobs: BTreeMap::new(), logged: BTreeMap::new(), champion: champion() }
    }

    fn step(&mut self) -> Step {
        let s = step(&self.spec, "p", "default", &self.run, &self.jobs, &self.logged, &self.champion, ts(NOW));
        self.run = s.run.clone();
        for j in &s.start {
            let name = match j {
                JobToStart::Trial { name, .. } | JobToStart::Evaluation { name } => name,
            };
            self.jobs.entry(name.clone()).or_insert(Observed::Active);
        }
        s
    }

    fn active(&self) -> usize {
        self.jobs.values().filter(|j| **j == Observed::Active).count()
    }

    fn finish_job(&mut self, name: &str, o: Observed) {
        self.jobs.insert(name.to_string(), o);
    }
}

fn ok(json: &str) -> Observed {
    Observed::Succeeded(Some(json.to_string()))
}

const EVAL_PASS: &str = r#"{"candidate": {"f1": 0.93}, "champion": {"f1": 0.90}}"#;

#[test]
fn a_search_never_runs_more_than_parallelism_jobs_and_picks_the_best() {
    let mut sim = Sim::new(searching(4, 2));
    assert_eq!(sim.run.trial_results.len(), 4);
    let f1 = [0.80, 0.95, 0.70, 0.90];
    let mut most = 0;
    let mut done = 0;
    for _ in 0..20 {
        sim.step();
        most = most.max(sim.active());
        // Finish the oldest active trial.
        if let Some(name) =
            sim.jobs.iter().find(|(n, o)| **o == Observed::Active && n.contains("-t")).map(|(n, _)| n.clone())
        {
            let i: usize = name.rsplit('t').next().unwrap().parse().unwrap();
            sim.finish_job(&name, ok(&format!("{{\"val_f1\": {}}}", f1[i])));
            done += 1;
        }
        if sim.run.stage == Some(RunStage::Evaluating) {
            break;
        }
    }
    assert_eq!((most, done), (2, 4), "at most 2 Jobs at once, 4 trials");
    assert_eq!(sim.run.best_trial, Some(1));
    assert_eq!(sim.run.best["val_f1"], 0.95);
    assert_eq!(sim.run.candidate_uri.as_deref(), Some("s3://models/fraud/r-0001/1"));
    assert!(sim.jobs.contains_key("p-r-0001-eval"), "the evaluation Job is asked for");
}

#[test]
fn trial_proposals_are_the_same_after_a_restart() {
    let spec = searching(4, 2);
    let a = start(&spec, "default/p", "r-0003", ("manual", None), ts(NOW));
    let b = start(&spec, "default/p", "r-0003", ("manual", None), ts("2026-12-02T00:00:00Z"));
    assert_eq!(a.trial_results, b.trial_results);
}

#[test]
fn a_job_not_yet_in_the_cache_is_asked_for_again_not_a_second_one() {
    let mut sim = Sim::new(fixtures::retrain_policy("p").spec);
    let first = sim.step();
    assert_eq!(first.start.len(), 1);
    // The cache has not seen the Job yet: the same name is asked for (the controller's create is a no-op
    // when it exists), never a new one.
    sim.jobs.clear();
    let again = sim.step();
    assert_eq!(again.start, first.start);
}

#[test]
fn outcomes_of_a_single_trial_run() {
    type Case = (&'static str, Observed, Option<Observed>, fn(&mut Sim), RunDecision, &'static str);
    let cases: Vec<Case> = vec![
        (
            "passes the gates and goes to promotion",
            ok(r#"{"val_f1": 0.9}"#),
            Some(ok(EVAL_PASS)),
            |_| {},
            RunDecision::Running,
            "passed every gate: f1 0.9300 vs champion 0.9000",
        ),
        (
            "fails a gate",
            ok(r#"{"val_f1": 0.9}"#),
            Some(ok(r#"{"candidate": {"f1": 0.901}, "champion": {"f1": 0.90}}"#)),
            |_| {},
            RunDecision::Rejected,
            "rejected: gate f1 0.9010 vs champion 0.9000",
        ),
        (
            "a gate names a metric the evaluation never reports",
            ok(r#"{"val_f1": 0.9}"#),
            Some(ok(r#"{"candidate": {"auc": 0.9}, "champion": {"auc": 0.8}}"#)),
            |_| {},
            RunDecision::Rejected,
            "the evaluation reported no \"f1\" for the candidate (it reported: auc)",
        ),
        (
            "the training Job fails after its retries",
            Observed::Failed {
                why: "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
                message: Some("out of memory".into()),
            },
            None,
            |_| {},
            RunDecision::Failed,
            "the training Job failed: BackoffLimitExceeded: Job has reached the specified backoff limit: out of memory",
        ),
        (
            "a garbled report",
            Observed::Succeeded(Some("{val_f1: 0.9".into())),
            None,
            |_| {},
            RunDecision::Failed,
            "is not JSON",
        ),
        ("no report", Observed::Succeeded(None), None, |_| {}, RunDecision::Failed, "wrote no report"),
        (
            "a garbled evaluation report",
            ok(r#"{"val_f1": 0.9}"#),
            Some(ok(r#"{"f1": 0.9}"#)),
            |_| {},
            RunDecision::Failed,
            "the evaluation's report is unusable: the report has no \"candidate\" object",
        ),
        (
            "manual promotion waits in Evaluated",
            ok(r#"{"val_f1": 0.9}"#),
            Some(ok(EVAL_PASS)),
            |s| s.spec.promotion = Some(Promotion { mode: PromotionMode::Manual }),
            RunDecision::Evaluated,
            "passed every gate",
        ),
        (
            "a ModelDeployment that pins its version: Evaluated",
            ok(r#"{"val_f1": 0.9}"#),
            Some(ok(EVAL_PASS)),
            |s| s.champion.follows_alias = false,
            RunDecision::Evaluated,
            "passed every gate",
        ),
        (
            "no champion location",
            ok(r#"{"val_f1": 0.9}"#),
            None,
            |s| s.champion.uri = None,
            RunDecision::Failed,
            "the champion's model location is unknown",
        ),
    ];
    for (name, train, eval, setup, decision, reason) in cases {
        let mut sim = Sim::new(fixtures::retrain_policy("p").spec);
        setup(&mut sim);
        sim.step();
        sim.finish_job("p-r-0001-t0", train);
        sim.step();
        if let Some(eval) = eval {
            assert_eq!(sim.run.stage, Some(RunStage::Evaluating), "{name}");
            assert_eq!(sim.run.champion_uri, sim.champion.uri, "{name}");
            sim.finish_job("p-r-0001-eval", eval);
            sim.step();
        }
        assert_eq!(sim.run.decision, decision, "{name}: {:?}", sim.run.reason);
        let got = sim.run.reason.clone().unwrap_or_default();
        assert!(got.contains(reason), "{name}: {got}");
        if decision == RunDecision::Running {
            assert_eq!(sim.run.stage, Some(RunStage::Promoting), "{name}");
        } else {
            assert_eq!(sim.run.stage, Some(RunStage::Done), "{name}");
            assert!(sim.run.finished_at.is_some(), "{name}");
        }
    }
}

#[test]
fn a_search_fails_only_when_every_trial_failed() {
    let mut sim = Sim::new(searching(2, 2));
    sim.step();
    sim.finish_job("p-r-0001-t0", Observed::Failed { why: "BackoffLimitExceeded".into(), message: None });
    sim.finish_job("p-r-0001-t1", ok(r#"{"loss": 1}"#));
    let s = sim.step();
    assert_eq!(sim.run.decision, RunDecision::Failed);
    assert!(sim.run.reason.as_deref().unwrap().contains("all 2 trials failed"), "{:?}", sim.run.reason);
    assert_eq!(s.events.iter().filter(|e| e.reason == reasons::TRIAL_FAILED).count(), 2);
    let t1 = sim.run.trial_results.iter().find(|t| t.index == 1).unwrap();
    assert!(t1.reason.as_deref().unwrap().contains("no \"val_f1\", the search objective"), "{t1:?}");

    let mut sim = Sim::new(searching(2, 2));
    sim.step();
    sim.finish_job("p-r-0001-t0", Observed::Failed { why: "BackoffLimitExceeded".into(), message: None });
    sim.finish_job("p-r-0001-t1", ok(r#"{"val_f1": 0.5}"#));
    sim.step();
    assert_eq!((sim.run.stage, sim.run.best_trial), (Some(RunStage::Evaluating), Some(1)));
}

#[test]
fn finishing_keeps_the_best_and_the_failed_trials() {
    let mut run = start(&searching(3, 1), "s", "r-0001", ("manual", None), ts(NOW));
    run.trial_results[0].state = JobState::Succeeded;
    run.trial_results[1].state = JobState::Failed;
    run.trial_results[2].state = JobState::Succeeded;
    run.best_trial = Some(2);
    finish(&mut run, RunDecision::Rejected, "x".into(), ts(NOW));
    assert_eq!(run.trial_results.iter().map(|t| t.index).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(run.trials, Some(3));
}

#[test]
fn names_and_templates() {
    assert_eq!(trial_job("fraud", "r-0001", 3), "fraud-r-0001-t3");
    let long = "a".repeat(60);
    let name = evaluation_job(&long, "r-0001");
    assert!(name.len() <= 63 && name.ends_with("-r-0001-eval"), "{name}");
    assert_ne!(evaluation_job(&"a".repeat(61), "r-0001"), name, "the hash keeps cut names apart");
    assert_eq!(run_id(7), "r-0007");
    let now = ts("2026-11-27T03:00:00Z");
    assert_eq!(dataset_version(Some("{{now:%Y-%m-%d}}"), "r-0001", now).as_deref(), Some("2026-11-27"));
    assert_eq!(dataset_version(Some("v-{{run}}"), "r-0002", now).as_deref(), Some("v-r-0002"));
    assert_eq!(dataset_version(None, "r", now), None);
    let p = ParameterValue(serde_json::json!(1));
    assert_eq!(p.0, serde_json::json!(1));
}

#[test]
fn metrics_logged_to_mlflow_win_and_disagreements_are_reported() {
    let mut sim = Sim::new(searching(1, 1));
    sim.step();
    sim.finish_job("p-r-0001-t0", ok(r#"{"val_f1": 0.5, "only_reported": 7}"#));
    sim.logged.insert("p-r-0001-t0".into(), [("val_f1".to_string(), 0.88), ("only_logged".to_string(), 1.0)].into());
    let s = sim.step();
    let t = &sim.run.trial_results[0];
    assert_eq!(t.metrics["val_f1"], 0.88, "MLflow wins");
    assert_eq!((t.metrics["only_reported"], t.metrics["only_logged"]), (7.0, 1.0));
    let notes: Vec<&str> =
        s.events.iter().filter(|e| e.reason == reasons::METRICS_DISAGREE).map(|e| e.message.as_str()).collect();
    assert_eq!(
        notes,
        ["run r-0001 trial 0: val_f1 is 0.88 in MLflow and 0.5 in the termination message; MLflow's value is used"]
    );

    // An unusable report with metrics in MLflow: MLflow's are used, and that is said.
    let (m, notes) = merge_metrics(Err("the report is not JSON".into()), Some(&[("val_f1".to_string(), 0.9)].into()));
    assert_eq!(m.unwrap()["val_f1"], 0.9);
    assert!(notes[0].contains("the termination message was unusable"), "{notes:?}");
    let (m, _) = merge_metrics(Err("no report".into()), Some(&report::Metrics::new()));
    assert_eq!(m.unwrap_err(), "no report");
}
