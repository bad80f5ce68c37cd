//! A run's progress, as a pure function of the run's record, the Jobs observed and now: which trials to
//! start (never more than `parallelism` at once), what each finished Job reported, the best trial, the
//! evaluation and its gates, and how the run ends. The controller creates the Jobs this names, registers
//! and promotes candidates, and writes the record back.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::report;
use super::search;
use crate::api::experiment::Goal;
use crate::api::retrain_policy::{
    EvaluationRecord, JobState, PromotionMode, RetrainPolicySpec, RunDecision, RunRecord, RunStage, TrialRecord,
};
use crate::conditions::Transition;
use crate::names::reasons;

/// The longest Job name: a Job's name becomes its pods' `job-name` label value.
const MAX_JOB_NAME: usize = 63;

/// A finished or running Job, as the controller saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// It has not finished.
    Active,
    /// It completed; the termination message of its pod's container.
    Succeeded(Option<String>),
    /// It failed after its retries (`backoffLimit`); why, and the last pod's termination message.
    Failed { why: String, message: Option<String> },
}

/// A Job to create.
#[derive(Debug, Clone, PartialEq)]
pub enum JobToStart {
    /// A training trial.
    Trial {
        /// Its name.
        name: String,
        /// Its record (index and parameters).
        trial: TrialRecord,
    },
    /// The evaluation of the candidate against the champion.
    Evaluation {
        /// Its name.
        name: String,
    },
}

/// What the ModelDeployment tells the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Champion {
    /// The champion model's location (`CHAMPION_MODEL_URI`), when known.
    pub uri: Option<String>,
    /// Whether the ModelDeployment follows a registry alias (promotion moves it); if not, it pins a
    /// version in its spec and a person changes it.
    pub follows_alias: bool,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The updated record.
    pub run: RunRecord,
    /// Jobs to create (the controller creates each only if it does not exist).
    pub start: Vec<JobToStart>,
    /// Events for the transitions.
    pub events: Vec<Transition>,
}

/// A Job's name: `<policy>-<run>-<suffix>`, with the policy's name cut (and a hash added) when too long.
pub fn job_name(policy: &str, run: &str, suffix: &str) -> String {
    let tail = format!("-{run}-{suffix}");
    if policy.len() + tail.len() <= MAX_JOB_NAME {
        return format!("{policy}{tail}");
    }
    let hash = short_hash(policy);
    let keep = MAX_JOB_NAME.saturating_sub(tail.len() + hash.len() + 1);
    let cut = policy[..keep.min(policy.len())].trim_end_matches('-');
    format!("{cut}-{hash}{tail}")
}

fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// A trial's Job name.
pub fn trial_job(policy: &str, run: &str, index: i32) -> String {
    job_name(policy, run, &format!("t{index}"))
}

/// The evaluation's Job name.
pub fn evaluation_job(policy: &str, run: &str) -> String {
    job_name(policy, run, "eval")
}

/// The run id of the `n`th run (`r-0007`).
pub fn run_id(n: i64) -> String {
    format!("r-{n:04}")
}

/// Expands `{{now:<strftime>}}` (UTC) and `{{run}}` in the dataset version.
pub fn dataset_version(template: Option<&str>, run: &str, now: Timestamp) -> Option<String> {
    let mut out = template?.replace("{{run}}", run);
    while let Some(start) = out.find("{{now:") {
        let Some(len) = out[start..].find("}}") else { break };
        let format = &out[start + 6..start + len];
        let text = jiff::fmt::strtime::format(format, &now.to_zoned(jiff::tz::TimeZone::UTC))
            .unwrap_or_else(|_| format.to_string());
        out.replace_range(start..start + len + 2, &text);
    }
    Some(out)
}

/// A trial's `MODEL_OUTPUT_URI`.
pub fn model_output_uri(spec: &RetrainPolicySpec, namespace: &str, policy: &str, run: &str, trial: i32) -> String {
    spec.training
        .model_output_uri
        .replace("{{namespace}}", namespace)
        .replace("{{policy}}", policy)
        .replace("{{run}}", run)
        .replace("{{trial}}", &trial.to_string())
}

/// A new run's record: its trials proposed (seeded by `seed` and the run id), none started yet.
pub fn start(
    spec: &RetrainPolicySpec,
    seed: &str,
    id: &str,
    trigger: (&str, Option<f64>),
    now: Timestamp,
) -> RunRecord {
    let trials: Vec<TrialRecord> = search::propose(spec.training.search.as_ref(), &format!("{seed}/{id}"))
        .into_iter()
        .enumerate()
        .map(|(i, params)| TrialRecord {
            index: i as i32,
            params,
            state: JobState::Pending,
            job: None,
            metrics: BTreeMap::new(),
            reason: None,
            mlflow_run_id: None,
        })
        .collect();
    RunRecord {
        id: id.to_string(),
        trigger: trigger.0.to_string(),
        trigger_value: trigger.1,
        dataset: dataset_version(spec.dataset.version.as_deref(), id, now),
        started_at: Some(Time(now)),
        finished_at: None,
        stage: Some(RunStage::Training),
        trials: Some(trials.len() as i32),
        trial_results: trials,
        best_trial: None,
        best: BTreeMap::new(),
        candidate_uri: None,
        champion_uri: None,
        evaluation: None,
        candidate_version: None,
        rollout: None,
        mlflow_run_id: None,
        mlflow_experiment_id: None,
        tracking: None,
        decision: RunDecision::Running,
        reason: None,
    }
}

/// Ends a run: its decision and reason, the end time, and only the best and the failed trials kept.
pub fn finish(run: &mut RunRecord, decision: RunDecision, reason: String, now: Timestamp) {
    run.decision = decision;
    run.reason = Some(reason);
    run.stage = Some(RunStage::Done);
    run.finished_at = Some(Time(now));
    let best = run.best_trial;
    run.trial_results.retain(|t| Some(t.index) == best || t.state == JobState::Failed);
}

/// A trial's metrics from its report and from what it logged to MLflow (`logged`, which wins where both have
/// a metric); the notes say where the two disagree, or that the report was unusable and MLflow's metrics
/// were used.
pub fn merge_metrics(
    report: Result<report::Metrics, String>,
    logged: Option<&report::Metrics>,
) -> (Result<report::Metrics, String>, Vec<String>) {
    let logged = logged.filter(|m| !m.is_empty());
    match (report, logged) {
        (Ok(r), None) => (Ok(r), Vec::new()),
        (Err(e), None) => (Err(e), Vec::new()),
        (Err(e), Some(l)) => (
            Ok(l.clone()),
            vec![format!("the termination message was unusable ({e}); the metrics logged to MLflow are used")],
        ),
        (Ok(r), Some(l)) => {
            let mut notes = Vec::new();
            let mut merged = r.clone();
            for (k, v) in l {
                if let Some(mine) = r.get(k)
                    && (mine - v).abs() > 1e-9 * v.abs().max(1.0)
                {
                    notes.push(format!(
                        "{k} is {v} in MLflow and {mine} in the termination message; MLflow's value is used"
                    ));
                }
                merged.insert(k.clone(), *v);
            }
            (Ok(merged), notes)
        }
    }
}

/// Why a Job failed: its condition's reason, and the first 300 characters of its pod's termination message
/// when there is one.
fn failure(why: &str, message: Option<&str>) -> String {
    match message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => format!("{why}: {}", m.chars().take(300).collect::<String>()),
        None => why.to_string(),
    }
}

/// Advances a run under way. `logged` holds what the trials whose Jobs ended logged to MLflow, by Job name.
#[allow(clippy::too_many_arguments)]
pub fn step(
    spec: &RetrainPolicySpec,
    policy: &str,
    namespace: &str,
    run: &RunRecord,
    jobs: &BTreeMap<String, Observed>,
    logged: &BTreeMap<String, report::Metrics>,
    champion: &Champion,
    now: Timestamp,
) -> Step {
    let mut s = Step { run: run.clone(), start: Vec::new(), events: Vec::new() };
    match run.stage {
        Some(RunStage::Training) => train(spec, policy, namespace, jobs, logged, champion, now, &mut s),
        Some(RunStage::Evaluating) => evaluate(spec, policy, jobs, champion, now, &mut s),
        _ => {}
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn train(
    spec: &RetrainPolicySpec,
    policy: &str,
    namespace: &str,
    jobs: &BTreeMap<String, Observed>,
    logged: &BTreeMap<String, report::Metrics>,
    champion: &Champion,
    now: Timestamp,
    s: &mut Step,
) {
    let id = s.run.id.clone();
    let objective = spec.training.search.as_ref().map(|x| &x.objective);
    for t in s.run.trial_results.iter_mut().filter(|t| matches!(t.state, JobState::Pending | JobState::Running)) {
        let name = trial_job(policy, &id, t.index);
        match jobs.get(&name) {
            Some(Observed::Active) => t.state = JobState::Running,
            Some(Observed::Succeeded(message)) => {
                let (merged, notes) = merge_metrics(report::trial(message.as_deref()), logged.get(&name));
                for n in notes {
                    s.events.push(Transition::new(
                        true,
                        reasons::METRICS_DISAGREE,
                        format!("run {id} trial {}: {n}", t.index),
                    ));
                }
                match merged {
                    Ok(metrics) => {
                        let missing = objective.filter(|o| !metrics.contains_key(&o.metric));
                        t.metrics = metrics;
                        if let Some(o) = missing {
                            t.state = JobState::Failed;
                            t.reason = Some(format!(
                                "the report has no {:?}, the search objective (it has: {})",
                                o.metric,
                                t.metrics.keys().cloned().collect::<Vec<_>>().join(", ")
                            ));
                        } else {
                            t.state = JobState::Succeeded;
                        }
                    }
                    Err(e) => {
                        t.state = JobState::Failed;
                        t.reason = Some(e);
                    }
                }
            }
            Some(Observed::Failed { why, message }) => {
                t.state = JobState::Failed;
                t.reason = Some(failure(why, message.as_deref()));
            }
            None => {}
        }
        if t.state == JobState::Failed {
            s.events.push(Transition::new(
                true,
                reasons::TRIAL_FAILED,
                format!("run {id} trial {} failed: {}", t.index, t.reason.clone().unwrap_or_default()),
            ));
        }
    }

    // Start pending trials while fewer than `parallelism` run.
    let parallelism = spec.training.search.as_ref().and_then(|x| x.parallelism).unwrap_or(1).max(1) as usize;
    let running = s.run.trial_results.iter().filter(|t| t.state == JobState::Running).count();
    let slots = parallelism.saturating_sub(running);
    for t in s.run.trial_results.iter_mut().filter(|t| t.state == JobState::Pending).take(slots) {
        let name = trial_job(policy, &id, t.index);
        t.state = JobState::Running;
        t.job = Some(name.clone());
        s.start.push(JobToStart::Trial { name, trial: t.clone() });
    }
    // Jobs that run and are not observed yet (just created; the cache lags) are asked for again: the
    // controller creates a Job only when it does not exist.
    for t in s.run.trial_results.iter().filter(|t| t.state == JobState::Running) {
        let name = trial_job(policy, &id, t.index);
        if !jobs.contains_key(&name)
            && !s.start.iter().any(|j| matches!(j, JobToStart::Trial { name: n, .. } if *n == name))
        {
            s.start.push(JobToStart::Trial { name, trial: t.clone() });
        }
    }
    if s.run.trial_results.iter().any(|t| matches!(t.state, JobState::Pending | JobState::Running)) {
        return;
    }

    // Every trial has ended: the best one is the candidate.
    let goal = objective.map(|o| o.goal).unwrap_or_default();
    let better = |a: f64, b: f64| if goal == Goal::Maximize { a > b } else { a < b };
    let mut best: Option<&TrialRecord> = None;
    for t in s.run.trial_results.iter().filter(|t| t.state == JobState::Succeeded) {
        let value = |t: &TrialRecord| objective.and_then(|o| t.metrics.get(&o.metric).copied());
        best = match (best, value(t)) {
            (None, _) => Some(t),
            (Some(b), Some(v)) if value(b).is_none_or(|bv| better(v, bv)) => Some(t),
            (b, _) => b,
        };
    }
    let Some(best) = best.cloned() else {
        let first = s.run.trial_results.iter().find_map(|t| t.reason.clone()).unwrap_or_default();
        let n = s.run.trial_results.len();
        let reason = if n == 1 {
            format!("the training Job failed: {first}")
        } else {
            format!("all {n} trials failed; the first: {first}")
        };
        s.events.push(Transition::new(true, reasons::RUN_FAILED, format!("run {id}: {reason}; nothing is promoted")));
        finish(&mut s.run, RunDecision::Failed, reason, now);
        return;
    };
    s.run.best_trial = Some(best.index);
    s.run.best = best.metrics.clone();
    s.run.candidate_uri = Some(model_output_uri(spec, namespace, policy, &id, best.index));
    let Some(champion_uri) = champion.uri.clone() else {
        let reason = "the champion's model location is unknown (the ModelDeployment has no model uri and no registry source yet), so the candidate cannot be evaluated against it".to_string();
        s.events.push(Transition::new(true, reasons::RUN_FAILED, format!("run {id}: {reason}")));
        finish(&mut s.run, RunDecision::Failed, reason, now);
        return;
    };
    s.run.champion_uri = Some(champion_uri);
    s.run.stage = Some(RunStage::Evaluating);
    let name = evaluation_job(policy, &id);
    s.run.evaluation = Some(EvaluationRecord {
        job: name.clone(),
        state: JobState::Running,
        candidate: BTreeMap::new(),
        champion: BTreeMap::new(),
        gates: Vec::new(),
        reason: None,
    });
    let objective_text =
        objective.and_then(|o| best.metrics.get(&o.metric).map(|v| format!(" ({} {v})", o.metric))).unwrap_or_default();
    s.events.push(Transition::new(
        false,
        reasons::EVALUATION_STARTED,
        format!(
            "run {id}: training done, trial {} of {} is the candidate{objective_text}; evaluating it against the champion",
            best.index,
            s.run.trial_results.len()
        ),
    ));
    s.start.push(JobToStart::Evaluation { name });
}

fn evaluate(
    spec: &RetrainPolicySpec,
    policy: &str,
    jobs: &BTreeMap<String, Observed>,
    champion: &Champion,
    now: Timestamp,
    s: &mut Step,
) {
    let id = s.run.id.clone();
    let name = evaluation_job(policy, &id);
    let Some(mut e) = s.run.evaluation.clone() else { return };
    let fail = |s: &mut Step, e: EvaluationRecord, reason: String| {
        s.events.push(Transition::new(true, reasons::RUN_FAILED, format!("run {id}: {reason}; nothing is promoted")));
        s.run.evaluation = Some(e);
        finish(&mut s.run, RunDecision::Failed, reason, now);
    };
    match jobs.get(&name) {
        None => s.start.push(JobToStart::Evaluation { name }),
        Some(Observed::Active) => {}
        Some(Observed::Failed { why, message }) => {
            let reason = format!("the evaluation Job failed: {}", failure(why, message.as_deref()));
            e.state = JobState::Failed;
            e.reason = Some(reason.clone());
            fail(s, e, reason);
        }
        Some(Observed::Succeeded(message)) => match report::evaluation(message.as_deref()) {
            Err(why) => {
                let reason = format!("the evaluation's report is unusable: {why}");
                e.state = JobState::Failed;
                e.reason = Some(why);
                fail(s, e, reason);
            }
            Ok((candidate, champion_metrics)) => {
                e.gates = super::gates::check(&spec.evaluation.gates, &candidate, &champion_metrics);
                e.candidate = candidate;
                e.champion = champion_metrics;
                e.state = JobState::Succeeded;
                let failed: Vec<String> =
                    e.gates.iter().filter(|g| !g.passed).map(|g| format!("gate {}", g.message)).collect();
                let summary: Vec<String> = e.gates.iter().map(|g| g.message.clone()).collect();
                s.run.evaluation = Some(e);
                if !failed.is_empty() {
                    let reason = format!("rejected: {}", failed.join("; "));
                    s.events.push(Transition::new(
                        true,
                        reasons::CANDIDATE_REJECTED,
                        format!("run {id}: {reason}; the champion keeps serving"),
                    ));
                    finish(&mut s.run, RunDecision::Rejected, reason, now);
                    return;
                }
                let passed = format!("passed every gate: {}", summary.join("; "));
                let manual = spec.promotion.as_ref().map(|p| p.mode) == Some(PromotionMode::Manual);
                if manual || !champion.follows_alias {
                    s.run.stage = Some(RunStage::Done);
                    s.run.decision = RunDecision::Evaluated;
                    s.run.finished_at = Some(Time(now));
                    s.run.reason = Some(passed);
                } else {
                    s.run.stage = Some(RunStage::Promoting);
                    s.run.reason = Some(passed);
                }
            }
        },
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
