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

/// Whether agreement is measured now, given the decided status (`decided`) and the last reading.
pub fn plan(
    spec: &ModelDeploymentSpec,
    last: Option<&ShadowStatus>,
    decided: &ModelDeploymentStatus,
    now: jiff::Timestamp,
) -> ShadowPlan {
    let candidate = decided.candidate.as_ref().map(|c| c.version.clone());
    let compared = spec.traffic.as_ref().and_then(|t| t.builtin.as_ref()).is_some_and(|b| b.comparison.is_some());
    let mirroring = plan::router(spec) == Router::Builtin
        && compared
        && plan::rolling(decided)
        && decided.weights.as_ref().is_some_and(|w| w.mirror > 0);
    // Outside a mirror step the last reading stays while its candidate does (after the step, and on a
    // rollback, it says how the shadow did).
    let kept = || last.filter(|s| candidate.as_ref() == Some(&s.version)).cloned();
    let (Some(version), true) = (candidate.clone(), mirroring) else { return ShadowPlan::Keep(kept()) };
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
pub fn next_reading(
    spec: &ModelDeploymentSpec,
    decided: &ModelDeploymentStatus,
    now: jiff::Timestamp,
) -> Option<Duration> {
    match plan(spec, None, decided, now) {
        ShadowPlan::Measure { .. } => Some(plan::interval(spec)),
        ShadowPlan::Keep(_) => None,
    }
}

fn elapsed(t: &Time, now: jiff::Timestamp) -> Duration {
    Duration::try_from(now.duration_since(t.0)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DeploymentPhase;
    use crate::api::model_deployment::{BuiltinTraffic, RevisionRef, ShadowComparison, Traffic, Weights};
    use crate::fixtures;

    fn at(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + s).unwrap())
    }

    fn spec(router: Router, compared: bool) -> ModelDeploymentSpec {
        let mut md = fixtures::model_deployment("fraud");
        md.spec.traffic = Some(Traffic {
            router: Some(router),
            builtin: Some(BuiltinTraffic {
                comparison: compared.then(|| ShadowComparison { path: "label".into(), ..ShadowComparison::default() }),
                ..BuiltinTraffic::default()
            }),
            ..Traffic::default()
        });
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
            ("no comparison: nothing to count", Router::Builtin, false, 50, Progressing, None, 5, ShadowPlan::Keep(None)),
            ("another router mirrors blind", Router::GatewayApi, true, 50, Progressing, None, 5, ShadowPlan::Keep(None)),
            ("rollout over", Router::Builtin, true, 50, Healthy, None, 5, ShadowPlan::Keep(None)),
        ];
        for (case, router, compared, mirror, phase, last, now, want) in table {
            let got = plan(&spec(router, compared), last.as_ref(), &status(mirror, phase), at(now).0);
            assert_eq!(got, want, "{case}");
        }
    }
}
