//! The rollout step machine: a pure function of (spec, status, observations, now) that decides the
//! next status — which revision is stable, which is the candidate, at which step and weight — the
//! conditions, the Events, and when to look again. The reconciler only observes and applies.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::model_deployment::{
    AnalysisStatus, BackgroundAnalysis, HistoryEntry, MetricResult, RevisionRef, Router, Step, Verdict, Weights,
};
use crate::api::{DeploymentPhase, ModelDeploymentSpec, ModelDeploymentStatus};
use crate::conditions::{Desired, Transition};
use crate::names::conditions as cond;
use crate::rollout::replicas;
use crate::rollout::request::{Request, Verb};
use crate::rollout::revision::Target;

/// Default `strategy.progressDeadline`.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// Default `strategy.canary.analysis.interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default `revisionHistoryLimit`.
pub const DEFAULT_HISTORY_LIMIT: usize = 5;

/// Everything the step machine looks at.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The spec.
    pub spec: &'a ModelDeploymentSpec,
    /// The current status (default when there is none).
    pub status: &'a ModelDeploymentStatus,
    /// The revision the spec asks for.
    pub target: &'a Target,
    /// Whether the stable revision's Deployment has all its desired pods ready.
    pub stable_ready: bool,
    /// Ready pods of the target revision's Deployment (0 when it does not exist yet).
    pub candidate_ready_replicas: i32,
    /// Background analysis measurements taken in this reconcile (see [`background_due`]).
    pub background: Option<&'a [MetricResult]>,
    /// Gate measurements taken in this reconcile (see [`gate_due`]).
    pub gate: Option<&'a [MetricResult]>,
    /// A control request not yet consumed.
    pub request: Option<&'a Request>,
    /// Revision hashes whose Deployment still exists (for rollback to history).
    pub retained: &'a [String],
    /// The time of the decision.
    pub now: Timestamp,
}

/// What the step machine decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The status with the rollout fields decided (conditions are in `conditions`).
    pub status: ModelDeploymentStatus,
    /// Ready, Progressing, Degraded and Paused.
    pub conditions: Vec<Desired>,
    /// Transitions worth an Event.
    pub events: Vec<Transition>,
    /// When to look again at the latest (timers: pauses, mirrors, analysis, deadlines).
    pub requeue_after: Option<Duration>,
}

impl Decision {
    /// Whether the candidate should run pods (a rollout is under way, not rolled back).
    pub fn candidate_active(&self) -> bool {
        self.status.candidate.is_some()
            && matches!(self.status.phase, Some(DeploymentPhase::Progressing | DeploymentPhase::Paused))
    }
}

/// The canary steps of a spec (none without a strategy).
pub fn steps(spec: &ModelDeploymentSpec) -> &[Step] {
    spec.strategy.as_ref().and_then(|s| s.canary.as_ref()).map(|c| c.steps.as_slice()).unwrap_or(&[])
}

/// The traffic router of a spec.
pub fn router(spec: &ModelDeploymentSpec) -> Router {
    spec.traffic.as_ref().and_then(|t| t.router).unwrap_or_default()
}

/// The stable size.
pub fn replicas(spec: &ModelDeploymentSpec) -> i32 {
    spec.replicas.unwrap_or(1)
}

/// The background analysis of a spec, if it declares one.
pub fn background_analysis(spec: &ModelDeploymentSpec) -> Option<&BackgroundAnalysis> {
    spec.strategy.as_ref()?.canary.as_ref()?.analysis.as_ref()
}

fn interval(spec: &ModelDeploymentSpec) -> Duration {
    background_analysis(spec)
        .and_then(|a| a.interval.as_ref())
        .and_then(|d| d.to_std().ok())
        .unwrap_or(DEFAULT_INTERVAL)
}

fn failure_limit(spec: &ModelDeploymentSpec) -> i32 {
    background_analysis(spec).and_then(|a| a.failure_limit).unwrap_or(0)
}

fn progress_deadline(spec: &ModelDeploymentSpec) -> Duration {
    spec.strategy
        .as_ref()
        .and_then(|s| s.progress_deadline.as_ref())
        .and_then(|d| d.to_std().ok())
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE)
}

fn has_background_metrics(spec: &ModelDeploymentSpec) -> bool {
    background_analysis(spec).is_some_and(|a| !a.metrics.is_empty())
}

/// The candidate weight in force at step `i`: the last `setWeight` at or before it (0 before any).
pub fn weight_at(steps: &[Step], i: usize) -> i32 {
    steps.iter().take(i.saturating_add(1)).filter_map(|s| s.set_weight).next_back().unwrap_or(0)
}

/// The mirror percentage in force at step `i`.
pub fn mirror_at(steps: &[Step], i: usize) -> i32 {
    steps.get(i).and_then(|s| s.mirror.as_ref()).map(|m| m.percent).unwrap_or(0)
}

/// Candidate pods needed at step `i` (after the last step: the full size, ready for promotion).
pub fn candidate_needed(spec: &ModelDeploymentSpec, i: usize) -> i32 {
    let steps = steps(spec);
    if i >= steps.len() {
        return replicas(spec).max(1);
    }
    replicas::split(router(spec), replicas(spec), weight_at(steps, i), mirror_at(steps, i)).candidate
}

fn is_rolling(status: &ModelDeploymentStatus, target: &Target) -> bool {
    status.candidate.as_ref().is_some_and(|c| c.hash.as_deref() == Some(target.hash.as_str()))
        && matches!(status.phase, Some(DeploymentPhase::Progressing | DeploymentPhase::Paused))
}

/// Whether background analysis should be measured now.
pub fn background_due(
    spec: &ModelDeploymentSpec,
    status: &ModelDeploymentStatus,
    target: &Target,
    now: Timestamp,
) -> bool {
    if !has_background_metrics(spec) || !is_rolling(status, target) {
        return false;
    }
    match status.analysis.as_ref().and_then(|a| a.last_run.as_ref()) {
        None => true,
        Some(last) => now >= add(last.0, interval(spec)),
    }
}

/// The metric names an analysis gate needs measured now, if the rollout stands at one.
pub fn gate_due<'a>(
    spec: &'a ModelDeploymentSpec,
    status: &ModelDeploymentStatus,
    target: &Target,
) -> Option<&'a [String]> {
    if !is_rolling(status, target) || status.manual_pause == Some(true) {
        return None;
    }
    let i = usize::try_from(status.current_step?).ok()?;
    steps(spec).get(i)?.analysis.as_ref().map(|a| a.metrics.as_slice())
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)).unwrap_or(Timestamp::MAX)
}

fn until(now: Timestamp, t: Timestamp) -> Duration {
    Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// Working state of one decision.
struct Machine<'a> {
    input: &'a Input<'a>,
    s: ModelDeploymentStatus,
    events: Vec<Transition>,
    wake: Vec<Timestamp>,
    degraded: Option<(String, String)>,
}

impl<'a> Machine<'a> {
    fn event(&mut self, warning: bool, reason: &str, message: String) {
        self.events.push(Transition { warning, reason: reason.to_string(), message });
    }

    fn now(&self) -> Timestamp {
        self.input.now
    }

    fn step_count(&self) -> usize {
        steps(self.input.spec).len()
    }

    fn set_weights(&mut self, candidate: i32, mirror: i32) {
        self.s.weights = Some(Weights { stable: 100 - candidate, candidate, mirror });
    }

    fn next_revision(&self) -> i64 {
        let s = &self.s;
        s.stable
            .iter()
            .chain(s.candidate.iter())
            .map(|r| r.revision)
            .chain(s.history.iter().map(|h| h.revision))
            .max()
            .unwrap_or(0)
            + 1
    }

    fn revision_for(&self, hash: &str) -> i64 {
        let s = &self.s;
        s.history
            .iter()
            .find(|h| h.hash.as_deref() == Some(hash))
            .map(|h| h.revision)
            .unwrap_or_else(|| self.next_revision())
    }

    fn record_stable(&mut self, r: &RevisionRef) {
        self.s.history.retain(|h| h.hash != r.hash);
        self.s.history.insert(
            0,
            HistoryEntry {
                version: r.version.clone(),
                revision: r.revision,
                hash: r.hash.clone(),
                promoted_at: Some(Time(self.now())),
            },
        );
        let limit = self
            .input
            .spec
            .revision_history_limit
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(DEFAULT_HISTORY_LIMIT);
        self.s.history.truncate(limit + 1);
    }

    fn start_candidate(&mut self) {
        let t = self.input.target;
        let revision = RevisionRef {
            version: t.version.clone(),
            revision: self.revision_for(&t.hash),
            hash: Some(t.hash.clone()),
        };
        let previous = self.s.candidate.take();
        let message = match previous {
            Some(p) if matches!(self.s.phase, Some(DeploymentPhase::Progressing | DeploymentPhase::Paused)) => format!(
                "version {} replaces candidate {} mid-rollout; steps and analysis restart",
                t.version, p.version
            ),
            _ => format!("rolling out version {} (revision {})", t.version, revision.revision),
        };
        self.s.candidate = Some(revision);
        self.restart_steps();
        self.event(false, "RolloutStarted", message);
    }

    fn restart_steps(&mut self) {
        self.s.current_step = Some(0);
        self.s.step_started_at = Some(Time(self.now()));
        self.s.analysis = None;
        self.s.manual_pause = None;
        self.s.phase = Some(DeploymentPhase::Progressing);
    }

    fn roll_back(&mut self, reason: &str, message: String) {
        self.s.phase = Some(DeploymentPhase::RolledBack);
        self.s.manual_pause = None;
        self.set_weights(0, 0);
        self.s.message = Some(message.clone());
        self.degraded = Some((reason.to_string(), message.clone()));
        self.event(true, reason, format!("{message}; all traffic is back on the stable version"));
    }

    fn promote(&mut self) {
        let Some(candidate) = self.s.candidate.take() else { return };
        self.event(false, "Promoted", format!("version {} is now stable and serves all traffic", candidate.version));
        self.record_stable(&candidate);
        self.s.stable = Some(candidate);
        self.s.current_step = None;
        self.s.step_started_at = None;
        self.s.manual_pause = None;
        self.set_weights(0, 0);
        self.s.phase = Some(DeploymentPhase::Healthy);
    }

    fn advance(&mut self) {
        let i = self.s.current_step.unwrap_or(0) + 1;
        self.s.current_step = Some(i);
        self.s.step_started_at = Some(Time(self.now()));
        let total = self.step_count();
        let what = steps(self.input.spec)
            .get(i as usize)
            .map(crate::cli::status::describe_step)
            .unwrap_or_else(|| "promotion".to_string());
        self.event(false, "CanaryStepAdvanced", format!("step {}/{total}: {what}", (i as usize + 1).min(total.max(1))));
    }
}

/// Decides the rollout. See the module docs.
pub fn decide(input: &Input) -> Decision {
    let mut m = Machine { input, s: input.status.clone(), events: Vec::new(), wake: Vec::new(), degraded: None };
    let target = input.target;
    let request = input.request.filter(|r| m.s.last_request.as_deref() != Some(r.raw.as_str()));
    if let Some(r) = request {
        m.s.last_request = Some(r.raw.clone());
    }
    m.s.message = None;

    if m.s.stable.is_none() {
        // The first version goes straight to 100%.
        let r = RevisionRef { version: target.version.clone(), revision: 1, hash: Some(target.hash.clone()) };
        m.record_stable(&r);
        m.event(false, "Deployed", format!("serving version {} (revision 1)", r.version));
        m.s.stable = Some(r);
        m.s.candidate = None;
        m.set_weights(0, 0);
        m.s.phase = Some(DeploymentPhase::Progressing);
        return finish(m);
    }

    if let Some(Verb::Rollback(version)) = request.map(|r| &r.verb) {
        rollback_to_history(&mut m, version.as_deref());
        return finish(m);
    }

    let stable_hash = m.s.stable.as_ref().and_then(|s| s.hash.clone());
    if stable_hash.as_deref() == Some(target.hash.as_str()) {
        let was_rolling = matches!(m.s.phase, Some(DeploymentPhase::Progressing | DeploymentPhase::Paused));
        if let Some(c) = m.s.candidate.take().filter(|_| was_rolling) {
            m.event(
                false,
                "RolloutCancelled",
                format!("the spec is back on the stable version; candidate {} is stopped", c.version),
            );
        }
        m.s.current_step = None;
        m.s.step_started_at = None;
        m.s.manual_pause = None;
        m.set_weights(0, 0);
        m.s.phase = Some(DeploymentPhase::Healthy);
        return finish(m);
    }

    let same_candidate = m.s.candidate.as_ref().and_then(|c| c.hash.as_deref()) == Some(target.hash.as_str());
    if !same_candidate {
        m.start_candidate();
    } else if m.s.phase == Some(DeploymentPhase::RolledBack) {
        if matches!(request.map(|r| &r.verb), Some(Verb::Retry)) {
            m.restart_steps();
            let v = target.version.clone();
            m.event(false, "RolloutRetried", format!("retrying version {v} from the first step"));
        } else {
            m.set_weights(0, 0);
            let v = target.version.clone();
            m.s.message =
                Some(format!("version {v} was rolled back; `kubectl champion retry` or a new version starts again"));
            // Keep saying why it was rolled back.
            let why = crate::conditions::find(&input.status.conditions, cond::DEGRADED)
                .filter(|c| c.status == "True")
                .map(|c| (c.reason.clone(), c.message.clone()));
            m.degraded = Some(why.unwrap_or_else(|| ("RolledBack".into(), format!("version {v} was rolled back"))));
            return finish(m);
        }
    }

    match request.map(|r| &r.verb) {
        Some(Verb::Abort) => {
            let v = target.version.clone();
            m.roll_back("Aborted", format!("rollout of version {v} aborted by request"));
            return finish(m);
        }
        Some(Verb::PromoteFull) => {
            m.s.current_step = Some(m.step_count() as i32);
            m.event(false, "PromotedByRequest", "remaining steps skipped by request".into());
        }
        Some(Verb::Pause) => m.s.manual_pause = Some(true),
        Some(Verb::Resume) => m.s.manual_pause = None,
        _ => {}
    }

    // Background analysis: counts failed runs; errors hold the rollout without counting.
    if let Some(results) = input.background {
        let a = m.s.analysis.get_or_insert_with(AnalysisStatus::default);
        a.last_run = Some(Time(input.now));
        a.metrics = results.to_vec();
        let failed: Vec<&MetricResult> = results.iter().filter(|r| r.verdict == Verdict::Fail).collect();
        if !failed.is_empty() {
            a.failures += 1;
            let failures = a.failures;
            let detail = failed
                .iter()
                .map(|r| format!("{}: {}", r.name, r.message.clone().unwrap_or_else(|| "out of range".into())))
                .collect::<Vec<_>>()
                .join("; ");
            if failures > failure_limit(input.spec) {
                m.roll_back(
                    "AnalysisFailed",
                    format!("background analysis failed ({detail}); {failures} failed run(s)"),
                );
                return finish(m);
            }
            m.event(true, "AnalysisRunFailed", format!("{detail}; {failures} failed run(s) so far"));
        }
    }
    let errors: Vec<String> =
        m.s.analysis
            .iter()
            .flat_map(|a| a.metrics.iter())
            .chain(input.gate.unwrap_or_default())
            .filter(|r| r.verdict == Verdict::Error)
            .map(|r| format!("{}: {}", r.name, r.message.clone().unwrap_or_default()))
            .collect();
    let analysis_blocked = !errors.is_empty();
    if analysis_blocked {
        let message = format!("metrics cannot be measured, the rollout holds: {}", errors.join("; "));
        let was_blocked = crate::conditions::find(&input.status.conditions, cond::DEGRADED)
            .is_some_and(|c| c.status == "True" && c.reason == "MetricUnavailable");
        if !was_blocked {
            m.event(true, "MetricUnavailable", message.clone());
        }
        m.degraded = Some(("MetricUnavailable".into(), message.clone()));
        m.s.message = Some(message);
    }
    if has_background_metrics(input.spec) {
        let last = m.s.analysis.as_ref().and_then(|a| a.last_run.as_ref()).map(|t| t.0).unwrap_or(input.now);
        m.wake.push(add(last, interval(input.spec)));
    }

    if m.s.manual_pause == Some(true) {
        m.s.phase = Some(DeploymentPhase::Paused);
        m.s.message = Some("paused by request; `kubectl champion resume` continues".into());
        hold_weights(&mut m);
        return finish(m);
    }

    step(&mut m, request, analysis_blocked);
    finish(m)
}

fn hold_weights(m: &mut Machine) {
    let i = m.s.current_step.unwrap_or(0) as usize;
    let steps = steps(m.input.spec);
    m.set_weights(weight_at(steps, i.min(steps.len().saturating_sub(1))).min(100), mirror_at(steps, i));
}

/// Runs the current step: completes it (advancing one step per decision) or waits.
fn step(m: &mut Machine, request: Option<&Request>, analysis_blocked: bool) {
    let input = m.input;
    let all = steps(input.spec);
    let i = m.s.current_step.unwrap_or(0).max(0) as usize;
    let started = m.s.step_started_at.as_ref().map(|t| t.0).unwrap_or(input.now);
    let ready = input.candidate_ready_replicas >= candidate_needed(input.spec, i);
    let promote_one = matches!(request.map(|r| &r.verb), Some(Verb::Promote));
    m.s.phase = Some(DeploymentPhase::Progressing);
    m.s.step = Some(format!("{}/{}", (i + 1).min(all.len().max(1)), all.len()));

    if i >= all.len() {
        // All steps done: promote once the candidate runs at full size.
        let last = weight_at(all, all.len());
        m.set_weights(if all.is_empty() { 0 } else { last }, 0);
        if ready {
            m.promote();
            m.s.step = None;
        } else {
            waiting(m, started, "waiting for the candidate's pods at full size before promotion");
        }
        return;
    }

    let current = &all[i];
    m.set_weights(weight_at(all, i), mirror_at(all, i));
    let done = if promote_one {
        true
    } else if analysis_blocked {
        waiting(m, started, "holding while metrics cannot be measured");
        false
    } else if current.set_weight.is_some() {
        ready || waiting(m, started, "waiting for the candidate's pods to be ready")
    } else if let Some(p) = &current.pause {
        m.s.phase = Some(DeploymentPhase::Paused);
        match p.duration.as_ref().and_then(|d| d.to_std().ok()) {
            Some(d) => {
                let end = add(started, d);
                m.s.message =
                    Some(format!("paused for {}", p.duration.as_ref().map(ToString::to_string).unwrap_or_default()));
                if input.now >= end {
                    true
                } else {
                    m.wake.push(end);
                    false
                }
            }
            None => {
                m.s.message = Some("paused until `kubectl champion promote`".into());
                false
            }
        }
    } else if let Some(mirror) = &current.mirror {
        let end = add(started, mirror.duration.to_std().unwrap_or_default());
        if input.now < end {
            m.s.message = Some(format!("mirroring {}% of requests to the candidate", mirror.percent));
            m.wake.push(end);
            false
        } else {
            ready || waiting(m, end, "waiting for the candidate's pods to be ready")
        }
    } else if current.analysis.is_some() {
        match input.gate {
            Some(results) if results.iter().any(|r| r.verdict == Verdict::Fail) => {
                let detail = results
                    .iter()
                    .filter(|r| r.verdict == Verdict::Fail)
                    .map(|r| format!("{}: {}", r.name, r.message.clone().unwrap_or_else(|| "out of range".into())))
                    .collect::<Vec<_>>()
                    .join("; ");
                m.s.analysis.get_or_insert_with(AnalysisStatus::default).metrics = results.to_vec();
                m.roll_back("AnalysisFailed", format!("analysis gate at step {} failed ({detail})", i + 1));
                return;
            }
            Some(results) if !results.is_empty() && results.iter().all(|r| r.verdict == Verdict::Pass) => true,
            _ => {
                m.wake.push(add(input.now, interval(input.spec)));
                waiting(m, started, "waiting for the analysis gate's metrics")
            }
        }
    } else {
        true
    };
    if done {
        m.advance();
        let next = m.s.current_step.unwrap_or(0) as usize;
        m.s.step = Some(format!("{}/{}", (next + 1).min(all.len()), all.len()));
        if next < all.len() {
            m.set_weights(weight_at(all, next), mirror_at(all, next));
        }
        // Look again at once: the next step may complete without waiting.
        m.wake.push(input.now);
    }
}

/// Records a wait that counts toward the progress deadline; rolls back once it has passed.
/// Returns `false` (the step is not done).
fn waiting(m: &mut Machine, since: Timestamp, why: &str) -> bool {
    let deadline = progress_deadline(m.input.spec);
    let at = add(since, deadline);
    if m.input.now >= at {
        let step = m.s.current_step.unwrap_or(0) + 1;
        m.roll_back(
            "ProgressDeadlineExceeded",
            format!("no progress for {}s at step {step} ({why})", deadline.as_secs()),
        );
    } else {
        m.s.message.get_or_insert_with(|| why.to_string());
        m.wake.push(at);
    }
    false
}

fn rollback_to_history(m: &mut Machine, version: Option<&str>) {
    let stable_hash = m.s.stable.as_ref().and_then(|s| s.hash.clone());
    let found = m.s.history.iter().find(|h| h.hash != stable_hash && version.is_none_or(|v| v == h.version)).cloned();
    let Some(entry) = found else {
        let what = version.map(|v| format!("version {v}")).unwrap_or_else(|| "a previous version".into());
        m.event(true, "RollbackRefused", format!("{what} is not in the history of this ModelDeployment"));
        m.degraded = Some(("RollbackRefused".into(), format!("{what} is not in the history")));
        hold_weights(m);
        return;
    };
    if !entry.hash.as_ref().is_some_and(|h| m.input.retained.contains(h)) {
        m.event(true, "RollbackRefused", format!("the Deployment of version {} no longer exists", entry.version));
        m.degraded = Some(("RollbackRefused".into(), format!("revision {} is gone", entry.revision)));
        hold_weights(m);
        return;
    }
    let to = RevisionRef { version: entry.version.clone(), revision: entry.revision, hash: entry.hash.clone() };
    let target = m.input.target;
    m.record_stable(&to);
    m.s.stable = Some(to);
    m.s.current_step = None;
    m.s.step_started_at = None;
    m.s.manual_pause = None;
    m.set_weights(0, 0);
    if entry.hash.as_deref() == Some(target.hash.as_str()) {
        m.s.candidate = None;
        m.s.phase = Some(DeploymentPhase::Healthy);
    } else {
        m.s.candidate = Some(RevisionRef {
            version: target.version.clone(),
            revision: m.revision_for(&target.hash),
            hash: Some(target.hash.clone()),
        });
        m.s.phase = Some(DeploymentPhase::RolledBack);
        m.s.message = Some(format!(
            "rolled back to version {} by request; version {} waits for `kubectl champion retry` or a new version",
            entry.version, target.version
        ));
    }
    m.event(true, "RolledBack", format!("rolled back to version {} by request, without steps", entry.version));
}

fn finish(mut m: Machine) -> Decision {
    let phase = m.s.phase.unwrap_or_default();
    if phase == DeploymentPhase::Progressing && m.s.candidate.is_none() {
        // First version: progressing until its pods are ready.
        if m.input.stable_ready {
            m.s.phase = Some(DeploymentPhase::Healthy);
        } else {
            m.s.message.get_or_insert_with(|| "waiting for the stable version's pods to be ready".into());
        }
    }
    if m.s.phase == Some(DeploymentPhase::Healthy) && !m.input.stable_ready {
        m.s.phase = Some(DeploymentPhase::Progressing);
        m.s.message.get_or_insert_with(|| "waiting for the stable version's pods to be ready".into());
    }
    if m.s.candidate.is_none() || m.s.phase == Some(DeploymentPhase::RolledBack) {
        m.s.step = m.s.candidate.as_ref().and(m.s.step.clone());
    }
    let phase = m.s.phase.unwrap_or_default();
    let stable_version = m.s.stable.as_ref().map(|s| s.version.clone()).unwrap_or_default();
    let mut conditions = vec![if m.input.stable_ready {
        Desired::new(cond::READY, true, "Serving", format!("version {stable_version} is serving"))
    } else {
        Desired::new(
            cond::READY,
            false,
            "PodsNotReady",
            format!("version {stable_version} has pods that are not ready"),
        )
    }];
    let candidate = m.s.candidate.as_ref().map(|c| c.version.clone()).unwrap_or_default();
    conditions.push(match phase {
        DeploymentPhase::Progressing | DeploymentPhase::Paused if m.s.candidate.is_some() => Desired::new(
            cond::PROGRESSING,
            true,
            "RolloutInProgress",
            format!("rolling out version {candidate}, step {}", m.s.step.clone().unwrap_or_default()),
        ),
        DeploymentPhase::Progressing => Desired::new(cond::PROGRESSING, true, "Deploying", "waiting for pods"),
        DeploymentPhase::RolledBack => {
            Desired::new(cond::PROGRESSING, false, "RolledBack", m.s.message.clone().unwrap_or_default())
        }
        _ => Desired::new(
            cond::PROGRESSING,
            false,
            "RolloutComplete",
            format!("version {stable_version} serves all traffic"),
        ),
    });
    conditions.push(match &m.degraded {
        Some((reason, message)) => Desired::new(cond::DEGRADED, true, reason, message.clone()),
        None => Desired::new(cond::DEGRADED, false, "AsExpected", "no problem observed"),
    });
    conditions.push(if phase == DeploymentPhase::Paused {
        Desired::new(cond::PAUSED, true, "Paused", m.s.message.clone().unwrap_or_default())
    } else {
        Desired::new(cond::PAUSED, false, "NotPaused", "not paused")
    });
    if m.s.message.is_none() {
        m.s.message = Some(match phase {
            DeploymentPhase::Healthy => format!("version {stable_version} serves all traffic"),
            _ => format!("rolling out version {candidate}"),
        });
    }
    let now = m.input.now;
    let requeue_after = m.wake.iter().min().map(|t| until(now, *t).max(Duration::from_millis(200)));
    Decision { status: m.s, conditions, events: m.events, requeue_after }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
