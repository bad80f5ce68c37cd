//! When the candidate's live agreement with stable is read for `status.shadow`: during a mirror step
//! under the built-in router with a comparison, once per analysis interval, over the window since the
//! step began. Pure; the reconciler runs the query.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::ModelDeploymentSpec;
use crate::api::model_deployment::{ModelDeploymentStatus, Router, ShadowStatus};
use crate::rollout::plan;

/// The shortest window the agreement is counted over (a few scrapes).
pub const MIN_WINDOW: Duration = Duration::from_secs(10);

/// What to do about `status.shadow`.
#[derive(Debug, Clone, PartialEq)]
pub enum ShadowPlan {
    /// Write this (the last reading, or nothing).
    Keep(Option<ShadowStatus>),
    /// Read the counts over `window` for the candidate `version`, for the step that began at `since`.
    Measure {
        /// The candidate version compared.
        version: String,
        /// When the mirror step began.
        since: Time,
        /// The window to count over (from the step's start, at least [`MIN_WINDOW`]).
        window: Duration,
    },
}

/// Whether the built-in router compares a candidate's shadow answers in the step `status` is at.
fn mirroring(spec: &ModelDeploymentSpec, status: &ModelDeploymentStatus) -> bool {
    let compared = spec.traffic.as_ref().and_then(|t| t.builtin.as_ref()).is_some_and(|b| b.comparison.is_some());
    plan::router(spec) == Router::Builtin
        && compared
        && plan::rolling(status)
        && status.weights.as_ref().is_some_and(|w| w.mirror > 0)
}

/// Whether agreement is measured now, given the status before this reconcile (`current`), the decided one
/// (`decided`) and the last reading.
pub fn plan(
    spec: &ModelDeploymentSpec,
    last: Option<&ShadowStatus>,
    current: &ModelDeploymentStatus,
    decided: &ModelDeploymentStatus,
    now: jiff::Timestamp,
) -> ShadowPlan {
    let candidate = decided.candidate.as_ref().map(|c| c.version.clone());
    // The last reading stays after its mirror step (and after a rollback or a promotion: it says how the
    // shadow did) until another candidate rolls out.
    let kept = || last.filter(|s| candidate.as_ref().is_none_or(|c| *c == s.version)).cloned();
    if !mirroring(spec, decided) {
        // The step that mirrored ends now (next step, rollback, promotion): one last reading of it.
        let ended = mirroring(spec, current).then(|| current.candidate.as_ref().map(|c| c.version.clone())).flatten();
        return match (ended, &current.step_started_at) {
            (Some(version), Some(since)) => {
                ShadowPlan::Measure { version, window: elapsed(since, now).max(MIN_WINDOW), since: since.clone() }
            }
            _ => ShadowPlan::Keep(kept()),
        };
    }
    let Some(version) = candidate.clone() else { return ShadowPlan::Keep(kept()) };
    let since = decided.step_started_at.clone().unwrap_or(Time(now));
    let fresh = last.is_some_and(|s| {
        s.version == version && s.since == since && elapsed(&s.measured_at, now) < plan::interval(spec)
    });
    if fresh {
        return ShadowPlan::Keep(kept());
    }
    ShadowPlan::Measure { version, window: elapsed(&since, now).max(MIN_WINDOW), since }
}

/// How soon the next reading is due while mirroring (the analysis interval), for the requeue.
pub fn next_reading(spec: &ModelDeploymentSpec, decided: &ModelDeploymentStatus) -> Option<Duration> {
    mirroring(spec, decided).then(|| plan::interval(spec))
}

fn elapsed(t: &Time, now: jiff::Timestamp) -> Duration {
    Duration::try_from(now.duration_since(t.0)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DeploymentPhase;
    use crate::api::model_deployment::{RevisionRef, Weights};
    use crate::fixtures;

    fn at(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + s).unwrap())
    }

    fn spec(router: Router, compared: bool) -> ModelDeploymentSpec {
        let mut md = fixtures::model_deployment("fraud");
        fixtures::with_router(&mut md, router, compared);
        md.spec
    }

    fn status(mirror: i32, phase: DeploymentPhase) -> ModelDeploymentStatus {
        ModelDeploymentStatus {
            phase: Some(phase),
            candidate: Some(RevisionRef { version: "2".into(), ..RevisionRef::default() }),
            weights: Some(Weights { stable: 100, candidate: 0, mirror }),
            step_started_at: Some(at(0)),
            ..ModelDeploymentStatus::default()
        }
    }

    fn reading(version: &str, since: i64, measured: i64) -> ShadowStatus {
        ShadowStatus {
            version: version.into(),
            comparisons: 10,
            agreement: Some(0.9),
            since: at(since),
            measured_at: at(measured),
        }
    }

    type Row = (&'static str, Router, bool, i32, DeploymentPhase, Option<ShadowStatus>, i64, ShadowPlan);

    #[test]
    fn table() {
        use DeploymentPhase::{Healthy, Progressing};
        let measure = |window: u64| ShadowPlan::Measure {
            version: "2".into(),
            since: at(0),
            window: Duration::from_secs(window),
        };
        // (case, router, comparison, mirror %, phase, last reading, now (s)) -> plan
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            ("first reading of a mirror step", Router::Builtin, true, 50, Progressing, None, 5, measure(10)),
            ("window from the step's start", Router::Builtin, true, 50, Progressing, None, 95, measure(95)),
            ("fresh reading kept", Router::Builtin, true, 50, Progressing, Some(reading("2", 0, 60)), 90, ShadowPlan::Keep(Some(reading("2", 0, 60)))),
            ("stale after an interval", Router::Builtin, true, 50, Progressing, Some(reading("2", 0, 20)), 80, measure(80)),
            ("a new step starts a new count", Router::Builtin, true, 50, Progressing, Some(reading("2", -100, 0)), 5, measure(10)),
            ("not a mirror step: kept for its candidate", Router::Builtin, true, 0, Progressing, Some(reading("2", 0, 60)), 90, ShadowPlan::Keep(Some(reading("2", 0, 60)))),
            ("another candidate: dropped", Router::Builtin, true, 0, Progressing, Some(reading("1", 0, 60)), 90, ShadowPlan::Keep(None)),
            ("kept after the rollout", Router::Builtin, true, 0, Healthy, Some(reading("2", 0, 60)), 90, ShadowPlan::Keep(Some(reading("2", 0, 60)))),
            ("no comparison: nothing to count", Router::Builtin, false, 50, Progressing, None, 5, ShadowPlan::Keep(None)),
            ("another router mirrors blind", Router::GatewayApi, true, 50, Progressing, None, 5, ShadowPlan::Keep(None)),
            ("rollout over", Router::Builtin, true, 50, Healthy, None, 5, ShadowPlan::Keep(None)),
        ];
        for (case, router, compared, mirror, phase, last, now, want) in table {
            let decided = status(mirror, phase);
            let got = plan(&spec(router, compared), last.as_ref(), &decided, &decided, at(now).0);
            assert_eq!(got, want, "{case}");
        }
        // The reconcile that ends a mirror step reads it once more, over the whole step.
        let spec = spec(Router::Builtin, true);
        let mirroring = status(50, Progressing);
        let rolled_back = ModelDeploymentStatus {
            candidate: None,
            step_started_at: Some(at(40)),
            ..status(0, DeploymentPhase::RolledBack)
        };
        let last = reading("2", 0, 20);
        assert_eq!(plan(&spec, Some(&last), &mirroring, &rolled_back, at(40).0), measure(40), "rollback");
        let next_step = status(0, Progressing);
        assert_eq!(plan(&spec, Some(&last), &mirroring, &next_step, at(40).0), measure(40), "next step");
        // Afterwards the reading stays, with no candidate or the same one.
        assert_eq!(
            plan(&spec, Some(&last), &rolled_back, &rolled_back, at(50).0),
            ShadowPlan::Keep(Some(last.clone()))
        );
    }
}
