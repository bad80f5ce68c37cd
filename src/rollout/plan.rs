//! The rollout step machine: a pure function of (spec, status, observations, now) that decides the
//! next status — which revision is stable, which is the candidate, at which step and weight, which
//! revisions wait to be scaled down — the conditions, the Events, and when to look again. The
//! reconciler only observes and applies.
//!
//! Rules it keeps (each pinned by a scenario in `plan_tests.rs`):
//! - Traffic moves only onto ready pods: a `setWeight` step keeps the weight in force until the
//!   candidate's pods for the new weight are ready, and a candidate with no ready pod gets no weight and
//!   no mirrored copies.
//! - A revision that traffic leaves keeps its pods for `scaleDownDelay` (`status.scaleDowns`).
//! - The progress deadline counts only waits that could end without a person (see
//!   `Strategy::progress_deadline`); a metric outage holds with its own clock.
//! - A control request is acted on, or answered with a `RequestIgnored` Event saying why not.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::model_deployment::{
    AnalysisStatus, BackgroundAnalysis, HistoryEntry, MetricResult, RevisionRef, Router, ScaleDown, Step, Verdict,
    Weights,
};
use crate::api::{DeploymentPhase, ModelDeploymentSpec, ModelDeploymentStatus};
use crate::conditions::{Desired, Transition};
use crate::names::{conditions as cond, reasons};
use crate::rollout::replicas;
use crate::rollout::request::{Request, Verb};
use crate::rollout::revision::Target;

/// Default `strategy.progressDeadline`.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// Default `strategy.canary.analysis.interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest `strategy.canary.analysis.interval` accepted (validation refuses shorter ones).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Default `strategy.scaleDownDelay`.
pub const DEFAULT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(30);
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
    /// Why the target revision's pods are not ready, when the kubelet says (see `rollout::pods`); looked
    /// up only while the rollout waits for them.
    pub candidate_pods_problem: Option<&'a str>,
    /// Background analysis measurements taken in this reconcile (see [`due`]).
    pub background: Option<&'a [MetricResult]>,
    /// Gate measurements taken in this reconcile (see [`due`]).
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
    /// Ready, Progressing, Degraded, Paused and WeightExact.
    pub conditions: Vec<Desired>,
    /// Transitions worth an Event.
    pub events: Vec<Transition>,
    /// When to look again at the latest (timers: pauses, mirrors, analysis, deadlines, scale-downs).
    pub requeue_after: Option<Duration>,
}

impl Decision {
    /// Whether the candidate should run pods (a rollout is under way, not rolled back).
    pub fn candidate_active(&self) -> bool {
        rolling(&self.status)
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

/// How often metrics are measured (background runs, and an analysis gate that has no answer yet).
pub fn interval(spec: &ModelDeploymentSpec) -> Duration {
    background_analysis(spec)
        .and_then(|a| a.interval.as_ref())
        .and_then(|d| d.to_std().ok())
        .unwrap_or(DEFAULT_INTERVAL)
        .max(MIN_INTERVAL)
}

/// How long a revision that traffic left keeps its pods.
pub fn scale_down_delay(spec: &ModelDeploymentSpec) -> Duration {
    let delay = spec
        .strategy
        .as_ref()
        .and_then(|s| s.scale_down_delay.as_ref())
        .and_then(|d| d.to_std().ok())
        .unwrap_or(DEFAULT_SCALE_DOWN_DELAY);
    // The built-in router learns that traffic left a revision when the kubelet refreshes its ConfigMap
    // volume: the revision keeps its pods at least that long.
    if router(spec) == Router::Builtin { delay.max(BUILTIN_ROUTER_PROPAGATION) } else { delay }
}

/// How long a new configuration of the built-in router may take to reach its pods (the kubelet's default
/// sync period of one minute, plus its jitter and the router's one-second reload): the shortest
/// `scaleDownDelay` under that router.
pub const BUILTIN_ROUTER_PROPAGATION: Duration = Duration::from_secs(90);

fn failure_limit(spec: &ModelDeploymentSpec) -> i32 {
    background_analysis(spec).and_then(|a| a.failure_limit).unwrap_or(0)
}

fn max_outage(spec: &ModelDeploymentSpec) -> Option<Duration> {
    background_analysis(spec).and_then(|a| a.max_outage.as_ref()).and_then(|d| d.to_std().ok())
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
    pods_at(spec, i, i32::MAX).candidate
}

/// The pods of stable and candidate at step `i` with `candidate_ready` candidate pods ready (see
/// [`replicas::running`]); after the last step the candidate runs at full size.
pub fn pods_at(spec: &ModelDeploymentSpec, i: usize, candidate_ready: i32) -> replicas::Split {
    let steps = steps(spec);
    let weight = if i >= steps.len() { 100 } else { weight_at(steps, i) };
    replicas::running(router(spec), replicas(spec), weight, mirror_at(steps, i), candidate_ready)
}

/// Whether a status describes a rollout under way (a candidate, not rolled back).
pub fn rolling(status: &ModelDeploymentStatus) -> bool {
    status.candidate.is_some() && matches!(status.phase, Some(DeploymentPhase::Progressing | DeploymentPhase::Paused))
}

fn is_rolling(status: &ModelDeploymentStatus, target: &Target) -> bool {
    rolling(status) && status.candidate.as_ref().is_some_and(|c| c.hash.as_deref() == Some(target.hash.as_str()))
}

/// Which measurements a reconcile should take before deciding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Due<'a> {
    /// Every background metric (each interval while a rollout is under way).
    pub background: bool,
    /// The metrics of the analysis gate the rollout stands at (at most once per interval).
    pub gate: Option<&'a [String]>,
}

impl Due<'_> {
    /// The names of the metrics to measure once for both purposes (`None`: all of them).
    pub fn metric_names(&self) -> Option<Vec<String>> {
        match (self.background, self.gate) {
            (true, _) => None,
            (false, Some(names)) => Some(names.to_vec()),
            (false, None) => Some(Vec::new()),
        }
    }

    /// Whether anything is to be measured.
    pub fn any(&self) -> bool {
        self.background || self.gate.is_some()
    }
}

/// The measurements due now. None while a control request waits: requests are acted on first, without
/// waiting for metrics, and measuring resumes on the next reconcile.
pub fn due<'a>(
    spec: &'a ModelDeploymentSpec,
    status: &ModelDeploymentStatus,
    target: &Target,
    request_pending: bool,
    now: Timestamp,
) -> Due<'a> {
    if request_pending || !is_rolling(status, target) {
        return Due::default();
    }
    let analysis = status.analysis.as_ref();
    let elapsed = |last: Option<&Time>| last.is_none_or(|t| now >= add(t.0, interval(spec)));
    let background = has_background_metrics(spec) && elapsed(analysis.and_then(|a| a.last_run.as_ref()));
    let gate = (status.manual_pause != Some(true))
        .then(|| usize::try_from(status.current_step?).ok())
        .flatten()
        .and_then(|i| steps(spec).get(i)?.analysis.as_ref())
        .filter(|_| elapsed(analysis.and_then(|a| a.gate_last_run.as_ref())))
        .map(|a| a.metrics.as_slice());
    Due { background, gate }
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
    /// The request of this decision, until something acts on it.
    request: Option<&'a Request>,
    /// Why the request did nothing, when a branch knows better than the generic answer.
    ignored: Option<String>,
    /// Whether this decision waited on something the progress deadline counts.
    waited: bool,
    /// What is wrong with the candidate's pods while the rollout waits for them.
    pods_failing: Option<String>,
}

impl<'a> Machine<'a> {
    fn event(&mut self, warning: bool, reason: &str, message: String) {
        self.events.push(Transition { warning, reason: reason.to_string(), message });
    }

    fn now(&self) -> Timestamp {
        self.input.now
    }

    fn verb(&self) -> Option<&'a Verb> {
        self.request.map(|r| &r.verb)
    }

    /// Marks the request as acted on. A user's action restarts the progress deadline.
    fn acted(&mut self) {
        self.request = None;
        self.s.waiting_since = None;
    }

    fn ignore(&mut self, why: String) {
        self.ignored.get_or_insert(why);
    }

    fn step_count(&self) -> usize {
        steps(self.input.spec).len()
    }

    fn set_weights(&mut self, candidate: i32, mirror: i32) {
        self.s.weights = Some(Weights { stable: 100 - candidate, candidate, mirror });
    }

    fn candidate_weight(&self) -> i32 {
        self.s.weights.as_ref().map(|w| w.candidate).unwrap_or(0)
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
                registry: r.registry.clone(),
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
            registry: t.registry.clone(),
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
        self.set_weights(0, 0);
        self.restart_steps();
        self.event(false, reasons::ROLLOUT_STARTED, message);
    }

    fn restart_steps(&mut self) {
        self.s.current_step = Some(0);
        self.s.step_started_at = Some(Time(self.now()));
        self.s.waiting_since = None;
        self.s.analysis = None;
        self.s.manual_pause = None;
        self.s.phase = Some(DeploymentPhase::Progressing);
    }

    fn roll_back(&mut self, reason: &str, message: String) {
        self.s.phase = Some(DeploymentPhase::RolledBack);
        self.s.manual_pause = None;
        self.s.waiting_since = None;
        self.set_weights(0, 0);
        self.s.message = Some(message.clone());
        self.degraded = Some((reason.to_string(), message.clone()));
        self.event(true, reason, format!("{message}; all traffic is back on the stable version"));
    }

    fn promote(&mut self) {
        let Some(candidate) = self.s.candidate.take() else { return };
        self.event(
            false,
            reasons::PROMOTED,
            format!("version {} is now stable and serves all traffic", candidate.version),
        );
        self.record_stable(&candidate);
        self.s.stable = Some(candidate);
        self.s.current_step = None;
        self.s.step_started_at = None;
        self.s.waiting_since = None;
        self.s.manual_pause = None;
        self.set_weights(0, 0);
        self.s.phase = Some(DeploymentPhase::Healthy);
    }

    fn advance(&mut self) {
        let i = self.s.current_step.unwrap_or(0) + 1;
        self.s.current_step = Some(i);
        self.s.step_started_at = Some(Time(self.now()));
        self.s.waiting_since = None;
        if let Some(a) = self.s.analysis.as_mut() {
            a.gate_last_run = None;
        }
        let total = self.step_count();
        let what = steps(self.input.spec)
            .get(i as usize)
            .map(crate::cli::status::describe_step)
            .unwrap_or_else(|| "promotion".to_string());
        self.event(
            false,
            reasons::CANARY_STEP_ADVANCED,
            format!("step {}/{total}: {what}", (i as usize + 1).min(total.max(1))),
        );
    }

    /// [`Machine::waiting`] for the candidate's pods: says what is wrong with them, when the kubelet
    /// says so (`Input::candidate_pods_problem`).
    fn waiting_for_pods(&mut self, why: &str) -> bool {
        match self.input.candidate_pods_problem {
            Some(problem) => {
                self.pods_failing = Some(problem.to_string());
                self.waiting(&format!("{why}: {problem}"))
            }
            None => self.waiting(why),
        }
    }

    /// Records a wait that counts toward the progress deadline (see `Strategy::progress_deadline`);
    /// rolls back once it has passed. Returns `false` (the step is not done).
    fn waiting(&mut self, why: &str) -> bool {
        let since = self.s.waiting_since.as_ref().map(|t| t.0).unwrap_or(self.now());
        self.s.waiting_since = Some(Time(since));
        self.waited = true;
        let deadline = progress_deadline(self.input.spec);
        let at = add(since, deadline);
        if self.now() >= at {
            let step = self.s.current_step.unwrap_or(0) + 1;
            self.roll_back(
                reasons::PROGRESS_DEADLINE_EXCEEDED,
                format!("no progress for {}s at step {step} ({why})", deadline.as_secs()),
            );
        } else {
            self.s.message.get_or_insert_with(|| why.to_string());
            self.wake.push(at);
        }
        false
    }
}

/// Decides the rollout. See the module docs.
pub fn decide(input: &Input) -> Decision {
    let request = input.request.filter(|r| input.status.last_request.as_deref() != Some(r.raw.as_str()));
    let mut m = Machine {
        input,
        s: input.status.clone(),
        events: Vec::new(),
        wake: Vec::new(),
        degraded: None,
        request,
        ignored: None,
        waited: false,
        pods_failing: None,
    };
    if let Some(r) = request {
        m.s.last_request = Some(r.raw.clone());
    }
    m.s.message = None;
    if m.verb().is_some_and(Verb::is_registry) {
        // The reconciler acts on these for a spec that follows a registry alias; here the version is pinned.
        m.ignore("the version is pinned in the spec; refresh and promote-version apply to a ModelDeployment that follows a registry alias".into());
    }
    decide_rollout(&mut m);
    finish(m)
}

fn decide_rollout(m: &mut Machine) {
    let input = m.input;
    let target = input.target;
    if m.s.stable.is_none() {
        // The first version goes straight to 100%.
        let r = RevisionRef {
            version: target.version.clone(),
            revision: 1,
            hash: Some(target.hash.clone()),
            registry: target.registry.clone(),
        };
        m.record_stable(&r);
        m.event(false, reasons::DEPLOYED, format!("serving version {} (revision 1)", r.version));
        m.s.stable = Some(r);
        m.s.candidate = None;
        m.set_weights(0, 0);
        m.s.phase = Some(DeploymentPhase::Progressing);
        return;
    }

    if let Some(Verb::Rollback(version)) = m.verb() {
        m.acted();
        rollback_to_history(m, version.as_deref());
        return;
    }

    let stable_hash = m.s.stable.as_ref().and_then(|s| s.hash.clone());
    if stable_hash.as_deref() == Some(target.hash.as_str()) {
        let was_rolling = rolling(&m.s);
        if let Some(c) = m.s.candidate.take().filter(|_| was_rolling) {
            m.event(
                false,
                reasons::ROLLOUT_CANCELLED,
                format!("the spec is back on the stable version; candidate {} is stopped", c.version),
            );
        }
        m.s.current_step = None;
        m.s.step_started_at = None;
        m.s.waiting_since = None;
        m.s.manual_pause = None;
        m.set_weights(0, 0);
        m.s.phase = Some(DeploymentPhase::Healthy);
        return;
    }

    let same_candidate = m.s.candidate.as_ref().and_then(|c| c.hash.as_deref()) == Some(target.hash.as_str());
    if !same_candidate {
        m.start_candidate();
    } else if m.s.phase == Some(DeploymentPhase::RolledBack) {
        let v = target.version.clone();
        if matches!(m.verb(), Some(Verb::Retry)) {
            m.acted();
            m.restart_steps();
            m.event(false, reasons::ROLLOUT_RETRIED, format!("retrying version {v} from the first step"));
        } else {
            m.set_weights(0, 0);
            m.s.message =
                Some(format!("version {v} was rolled back; `kubectl champion retry` or a new version starts again"));
            m.ignore(format!("version {v} was rolled back; only retry, rollback or a new version act now"));
            // Keep saying why it was rolled back.
            let why = crate::conditions::find(&input.status.conditions, cond::DEGRADED)
                .filter(|c| c.status == "True")
                .map(|c| (c.reason.clone(), c.message.clone()));
            m.degraded =
                Some(why.unwrap_or_else(|| (reasons::ROLLED_BACK.into(), format!("version {v} was rolled back"))));
            return;
        }
    }

    match m.verb() {
        Some(Verb::Abort) => {
            m.acted();
            let v = target.version.clone();
            m.roll_back(reasons::ABORTED, format!("rollout of version {v} aborted by request"));
            return;
        }
        Some(Verb::PromoteFull) => {
            m.acted();
            m.s.current_step = Some(m.step_count() as i32);
            m.s.manual_pause = None;
            m.event(false, reasons::PROMOTED_BY_REQUEST, "remaining steps skipped by request".into());
        }
        Some(Verb::Pause) if m.s.manual_pause == Some(true) => m.ignore("the rollout is already paused".into()),
        Some(Verb::Pause) => {
            m.acted();
            m.s.manual_pause = Some(true);
        }
        Some(Verb::Resume) if m.s.manual_pause == Some(true) => {
            m.acted();
            m.s.manual_pause = None;
        }
        Some(Verb::Resume) => m.ignore("the rollout is not paused by request".into()),
        Some(Verb::Retry) => m.ignore(format!("version {} is rolling out, not rolled back", target.version)),
        _ => {}
    }

    let blocked = analyse(m);
    if m.s.phase == Some(DeploymentPhase::RolledBack) {
        return;
    }
    if has_background_metrics(input.spec) {
        let last = m.s.analysis.as_ref().and_then(|a| a.last_run.as_ref()).map(|t| t.0).unwrap_or(input.now);
        m.wake.push(add(last, interval(input.spec)));
    }

    if m.s.manual_pause == Some(true) {
        m.s.phase = Some(DeploymentPhase::Paused);
        m.s.message = Some("paused by request; `kubectl champion resume` continues".into());
        if matches!(m.verb(), Some(Verb::Promote)) {
            m.ignore("the rollout is paused by request; `kubectl champion resume` first".into());
        }
        return;
    }
    step(m, blocked);
}

/// Takes in this reconcile's measurements: counts background failures (rolling back past the limit),
/// keeps the last result of every metric, and holds while any cannot be measured. Returns whether
/// analysis holds the rollout.
fn analyse(m: &mut Machine) -> bool {
    let input = m.input;
    let now = input.now;
    if let Some(results) = input.background {
        let a = m.s.analysis.get_or_insert_with(AnalysisStatus::default);
        a.last_run = Some(Time(now));
        a.metrics = results.to_vec();
        let failed: Vec<&MetricResult> = results.iter().filter(|r| r.verdict == Verdict::Fail).collect();
        if !failed.is_empty() {
            a.failures += 1;
            let failures = a.failures;
            let detail = describe(&failed);
            if failures > failure_limit(input.spec) {
                m.roll_back(
                    reasons::ANALYSIS_FAILED,
                    format!("background analysis failed ({detail}); {failures} failed run(s)"),
                );
                return true;
            }
            m.event(true, reasons::ANALYSIS_RUN_FAILED, format!("{detail}; {failures} failed run(s) so far"));
        }
    }
    if let Some(results) = input.gate {
        let a = m.s.analysis.get_or_insert_with(AnalysisStatus::default);
        a.gate_last_run = Some(Time(now));
        for r in results {
            match a.metrics.iter_mut().find(|x| x.name == r.name) {
                Some(x) => *x = r.clone(),
                None => a.metrics.push(r.clone()),
            }
        }
    }
    let errors: Vec<&MetricResult> =
        m.s.analysis.iter().flat_map(|a| a.metrics.iter()).filter(|r| r.verdict == Verdict::Error).collect();
    if errors.is_empty() {
        if let Some(a) = m.s.analysis.as_mut() {
            a.unavailable_since = None;
        }
        return false;
    }
    let detail = join_semi(errors.iter().map(|r| format!("{}: {}", r.name, r.message.clone().unwrap_or_default())));
    let a = m.s.analysis.get_or_insert_with(AnalysisStatus::default);
    let since = a.unavailable_since.get_or_insert(Time(now)).0;
    if let Some(limit) = max_outage(input.spec) {
        let at = add(since, limit);
        if now >= at {
            m.roll_back(
                reasons::METRIC_OUTAGE,
                format!("metrics could not be measured for {}s (analysis.maxOutage): {detail}", limit.as_secs()),
            );
            return true;
        }
        m.wake.push(at);
    }
    let message = format!("metrics cannot be measured since {since}, the rollout holds: {detail}");
    let was_blocked = crate::conditions::find(&input.status.conditions, cond::DEGRADED)
        .is_some_and(|c| c.status == "True" && c.reason == reasons::METRIC_UNAVAILABLE);
    if !was_blocked {
        m.event(true, reasons::METRIC_UNAVAILABLE, message.clone());
    }
    m.degraded = Some((reasons::METRIC_UNAVAILABLE.into(), message.clone()));
    m.s.message = Some(message);
    true
}

/// "name: why; name: why" for failed measurements.
fn describe(failed: &[&MetricResult]) -> String {
    join_semi(
        failed.iter().map(|r| format!("{}: {}", r.name, r.message.clone().unwrap_or_else(|| "out of range".into()))),
    )
}

/// Joins sentences with "; ".
fn join_semi(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join("; ")
}

/// Runs the current step: completes it (advancing one step per decision) or waits.
fn step(m: &mut Machine, analysis_blocked: bool) {
    let input = m.input;
    let all = steps(input.spec);
    let i = m.s.current_step.unwrap_or(0).max(0) as usize;
    let started = m.s.step_started_at.as_ref().map(|t| t.0).unwrap_or(input.now);
    let ready = input.candidate_ready_replicas >= candidate_needed(input.spec, i);
    m.s.phase = Some(DeploymentPhase::Progressing);
    m.s.step = Some(format!("{}/{}", (i + 1).min(all.len().max(1)), all.len()));

    if i >= all.len() {
        // All steps done: promote once the candidate runs at full size; the weight stays where it is.
        if matches!(m.verb(), Some(Verb::Promote)) {
            m.ignore("all steps are done; the candidate is promoted as soon as its pods are ready".into());
        }
        if ready {
            m.promote();
            m.s.step = None;
        } else {
            m.waiting_for_pods("waiting for the candidate's pods at full size before promotion");
        }
        return;
    }

    let current = &all[i];
    let done = if matches!(m.verb(), Some(Verb::Promote)) {
        m.acted();
        m.set_weights(weight_at(all, i).max(m.candidate_weight()), mirror_at(all, i));
        true
    } else if analysis_blocked {
        // Weights stay as they are: stable keeps its traffic and nothing more shifts.
        false
    } else if let Some(w) = current.set_weight {
        if ready {
            m.set_weights(w, 0);
            true
        } else {
            // The weight in force stays until the pods for the new one are ready.
            let held = m.candidate_weight();
            m.set_weights(held, 0);
            m.waiting_for_pods("waiting for the candidate's pods to be ready")
        }
    } else if let Some(p) = &current.pause {
        m.set_weights(weight_at(all, i), 0);
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
        m.set_weights(weight_at(all, i), mirror.percent);
        let end = add(started, mirror.duration.to_std().unwrap_or_default());
        if input.now < end {
            m.s.message = Some(format!("mirroring {}% of requests to the candidate", mirror.percent));
            m.wake.push(end);
            false
        } else {
            ready || m.waiting_for_pods("waiting for the candidate's pods to be ready")
        }
    } else if current.analysis.is_some() {
        m.set_weights(weight_at(all, i), 0);
        gate(m, i)
    } else {
        true
    };
    if done && m.s.phase != Some(DeploymentPhase::RolledBack) {
        m.advance();
        let next = m.s.current_step.unwrap_or(0) as usize;
        m.s.step = Some(format!("{}/{}", (next + 1).min(all.len()), all.len()));
        let held = m.candidate_weight();
        m.set_weights(held, mirror_at(all, next));
        m.s.phase = Some(DeploymentPhase::Progressing);
        // Look again at once: the next step may complete without waiting.
        m.wake.push(input.now);
    }
}

/// An analysis gate at step `i`: passes when every named metric passed in this reconcile's
/// measurement, rolls back when one failed, and otherwise waits (measured again after an interval).
fn gate(m: &mut Machine, i: usize) -> bool {
    let input = m.input;
    if let Some(results) = input.gate {
        let failed: Vec<&MetricResult> = results.iter().filter(|r| r.verdict == Verdict::Fail).collect();
        if !failed.is_empty() {
            let detail = describe(&failed);
            m.roll_back(reasons::ANALYSIS_FAILED, format!("analysis gate at step {} failed ({detail})", i + 1));
            return false;
        }
        if !results.is_empty() && results.iter().all(|r| r.verdict == Verdict::Pass) {
            return true;
        }
    }
    let last = m.s.analysis.as_ref().and_then(|a| a.gate_last_run.as_ref()).map(|t| t.0);
    m.wake.push(last.map(|t| add(t, interval(input.spec))).unwrap_or(input.now));
    m.waiting("waiting for the analysis gate's metrics")
}

fn rollback_to_history(m: &mut Machine, version: Option<&str>) {
    let stable_hash = m.s.stable.as_ref().and_then(|s| s.hash.clone());
    // A version is named by its version or, for one from a registry, its registry version number.
    let named = |h: &HistoryEntry| {
        version.is_none_or(|v| v == h.version || h.registry.as_ref().is_some_and(|r| r.version == v))
    };
    let found = m.s.history.iter().find(|h| h.hash != stable_hash && named(h)).cloned();
    let Some(entry) = found else {
        let what = version.map(|v| format!("version {v}")).unwrap_or_else(|| "a previous version".into());
        m.event(true, reasons::ROLLBACK_REFUSED, format!("{what} is not in the history of this ModelDeployment"));
        m.degraded = Some((reasons::ROLLBACK_REFUSED.into(), format!("{what} is not in the history")));
        return;
    };
    if !entry.hash.as_ref().is_some_and(|h| m.input.retained.contains(h)) {
        m.event(
            true,
            reasons::ROLLBACK_REFUSED,
            format!("the Deployment of version {} no longer exists", entry.version),
        );
        m.degraded = Some((reasons::ROLLBACK_REFUSED.into(), format!("revision {} is gone", entry.revision)));
        return;
    }
    let to = RevisionRef {
        version: entry.version.clone(),
        revision: entry.revision,
        hash: entry.hash.clone(),
        registry: entry.registry.clone(),
    };
    let target = m.input.target;
    m.record_stable(&to);
    m.s.stable = Some(to);
    m.s.current_step = None;
    m.s.step_started_at = None;
    m.s.waiting_since = None;
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
            registry: target.registry.clone(),
        });
        m.s.phase = Some(DeploymentPhase::RolledBack);
        m.s.message = Some(format!(
            "rolled back to version {} by request; version {} waits for `kubectl champion retry` or a new version",
            entry.version, target.version
        ));
    }
    m.event(true, reasons::ROLLED_BACK, format!("rolled back to version {} by request, without steps", entry.version));
}

/// The revisions that receive traffic (or copies of it) under a status.
fn serving(s: &ModelDeploymentStatus) -> Vec<String> {
    let mut out: Vec<String> = s.stable.iter().filter_map(|r| r.hash.clone()).collect();
    if rolling(s) {
        out.extend(s.candidate.iter().filter_map(|r| r.hash.clone()));
    }
    out
}

/// Revisions that traffic left in this decision keep their pods for `scaleDownDelay`; entries whose
/// time has come, or whose revision serves again, are dropped.
fn schedule_scale_downs(m: &mut Machine) {
    let now = m.now();
    let before = serving(m.input.status);
    let after = serving(&m.s);
    m.s.scale_downs.retain(|d| d.at.0 > now && !after.contains(&d.hash));
    let at = add(now, scale_down_delay(m.input.spec));
    for hash in before.into_iter().filter(|h| !after.contains(h)) {
        if at > now && !m.s.scale_downs.iter().any(|d| d.hash == hash) {
            m.s.scale_downs.push(ScaleDown { hash, at: Time(at) });
        }
    }
    let next = m.s.scale_downs.iter().map(|d| d.at.0).min();
    m.wake.extend(next);
}

/// The split actually in force: no weight and no copies for a candidate without a ready pod, and under
/// the `replicas` router the ratio of the pods that serve. Returns the WeightExact condition.
fn effective_weights(m: &mut Machine) -> Desired {
    let input = m.input;
    let exact =
        Desired::new(cond::WEIGHT_EXACT, true, reasons::EXACT, "the traffic split is the one the steps ask for");
    if !rolling(&m.s) {
        return exact;
    }
    let mut w = m.s.weights.clone().unwrap_or_default();
    if input.candidate_ready_replicas <= 0 {
        w = Weights { stable: 100, candidate: 0, mirror: 0 };
    }
    if router(input.spec) != Router::Replicas {
        m.s.weights = Some(w);
        return exact;
    }
    let all = steps(input.spec);
    let i = m.s.current_step.unwrap_or(0).max(0) as usize;
    let n = replicas(input.spec);
    let pods = pods_at(input.spec, i, input.candidate_ready_replicas);
    let serving = input.candidate_ready_replicas.clamp(0, pods.candidate);
    let effective = replicas::effective_weight(replicas::Split { stable: pods.stable, candidate: serving });
    m.s.weights = Some(Weights { stable: 100 - effective, candidate: effective, mirror: 0 });
    let requested = weight_at(all, i);
    let possible = replicas::split(Router::Replicas, n, requested, 0);
    let achievable = replicas::effective_weight(possible);
    if i < all.len() && achievable != requested {
        return Desired::new(
            cond::WEIGHT_EXACT,
            false,
            reasons::REPLICAS_TOO_FEW,
            format!(
                "setWeight {requested} cannot be met by the replicas router with {n} replicas: {} of {} pods \
                 ({achievable}%) serve the candidate; use more replicas or a traffic router (gatewayAPI, istio)",
                possible.candidate,
                possible.candidate + possible.stable
            ),
        );
    }
    exact
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
    if !m.waited {
        m.s.waiting_since = None;
    }
    if let Some(problem) = m.pods_failing.take().filter(|_| m.degraded.is_none()) {
        let message = format!("the candidate's pods are failing, the rollout waits for them: {problem}");
        m.degraded = Some((reasons::CANDIDATE_PODS_FAILING.into(), message));
    }
    let weight_exact = effective_weights(&mut m);
    schedule_scale_downs(&mut m);
    if let Some(r) = m.request {
        let why = m.ignored.take().unwrap_or_else(|| match m.s.phase.unwrap_or_default() {
            DeploymentPhase::Healthy => "no rollout is under way".to_string(),
            p => format!("it does not apply while the ModelDeployment is {p:?}"),
        });
        m.event(true, reasons::REQUEST_IGNORED, format!("request {} did nothing: {why}", r.raw));
    }

    let phase = m.s.phase.unwrap_or_default();
    let stable_version = m.s.stable.as_ref().map(|s| s.version.clone()).unwrap_or_default();
    let mut conditions = vec![if m.input.stable_ready {
        Desired::new(cond::READY, true, reasons::SERVING, format!("version {stable_version} is serving"))
    } else {
        Desired::new(
            cond::READY,
            false,
            reasons::PODS_NOT_READY,
            format!("version {stable_version} has pods that are not ready"),
        )
    }];
    let candidate = m.s.candidate.as_ref().map(|c| c.version.clone()).unwrap_or_default();
    conditions.push(match phase {
        DeploymentPhase::Progressing | DeploymentPhase::Paused if m.s.candidate.is_some() => Desired::new(
            cond::PROGRESSING,
            true,
            reasons::ROLLOUT_IN_PROGRESS,
            format!("rolling out version {candidate}, step {}", m.s.step.clone().unwrap_or_default()),
        ),
        DeploymentPhase::Progressing => Desired::new(cond::PROGRESSING, true, reasons::DEPLOYING, "waiting for pods"),
        DeploymentPhase::RolledBack => {
            Desired::new(cond::PROGRESSING, false, reasons::ROLLED_BACK, m.s.message.clone().unwrap_or_default())
        }
        _ => Desired::new(
            cond::PROGRESSING,
            false,
            reasons::ROLLOUT_COMPLETE,
            format!("version {stable_version} serves all traffic"),
        ),
    });
    conditions.push(match &m.degraded {
        Some((reason, message)) => Desired::new(cond::DEGRADED, true, reason, message.clone()),
        None => Desired::new(cond::DEGRADED, false, reasons::AS_EXPECTED, "no problem observed"),
    });
    conditions.push(if phase == DeploymentPhase::Paused {
        Desired::new(cond::PAUSED, true, reasons::PAUSED, m.s.message.clone().unwrap_or_default())
    } else {
        Desired::new(cond::PAUSED, false, reasons::NOT_PAUSED, "not paused")
    });
    conditions.push(weight_exact);
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
