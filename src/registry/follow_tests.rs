//! Tables for following an alias: reads of the alias, the records written after promotions and
//! rollbacks, and the rollout that a moved alias starts (through `plan::decide`, as the reconciler does).

use std::collections::BTreeMap;

use super::*;
use crate::api::ModelRef;
use crate::api::model_deployment::{HistoryEntry, RevisionRef};
use crate::fixtures;
use crate::rollout::plan::{self, Input};
use crate::rollout::revision;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn follow() -> RegistryRef {
    RegistryRef { model: "fraud".into(), alias: "champion".into(), serving_alias: None }
}

fn version(n: &str, source: Option<&str>) -> ModelVersion {
    let mut v = ModelVersion::new("fraud", n);
    v.source = source.map(str::to_string);
    v.status = Some(ModelVersionStatus::Ready);
    v
}

fn resolved(n: &str) -> RegistryStatus {
    RegistryStatus {
        model: "fraud".into(),
        alias: "champion".into(),
        version: Some(n.into()),
        model_version: Some(n.into()),
        source: Some(format!("s3://m/{n}")),
        seen_at: Some(Time(ts(0))),
        ..RegistryStatus::default()
    }
}

fn unreachable() -> RegistryError {
    RegistryError::Unreachable { call: "GET registered-models/alias".into(), cause: "Connection refused".into() }
}

fn api(status: u16, code: &str, message: &str) -> RegistryError {
    RegistryError::Api {
        call: "GET registered-models/alias".into(),
        status,
        error_code: code.into(),
        message: message.into(),
    }
}

fn condition(reason: &str, ok: bool) -> Condition {
    Condition {
        type_: cond::REGISTRY_SYNCED.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: None,
        last_transition_time: Time(ts(0)),
    }
}

#[test]
fn reads_of_the_alias() {
    struct Case {
        name: &'static str,
        current: Option<RegistryStatus>,
        was: Option<Condition>,
        read: Result<ModelVersion, RegistryError>,
        // (version, source) kept in status afterwards
        want_target: Option<(&'static str, &'static str)>,
        want_reason: &'static str,
        want_events: &'static [&'static str],
        want_unavailable_since: Option<i64>,
    }
    let tagged = {
        let mut v = version("4", Some("s3://m/4"));
        v.tags = BTreeMap::from([(tags::VERSION.to_string(), "2.1.0".to_string())]);
        v
    };
    let pending = {
        let mut v = version("4", Some("s3://m/4"));
        v.status = Some(ModelVersionStatus::PendingRegistration);
        v
    };
    let failed = {
        let mut v = version("4", Some("s3://m/4"));
        v.status = Some(ModelVersionStatus::FailedRegistration);
        v.status_message = Some("copy failed".into());
        v
    };
    let down_since_10 = RegistryStatus { unavailable_since: Some(Time(ts(10))), ..resolved("3") };
    let cases = [
        Case {
            name: "first resolution",
            current: None,
            was: None,
            read: Ok(version("3", Some("s3://m/3"))),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::REGISTRY_SYNCED,
            want_events: &[reasons::ALIAS_MOVED],
            want_unavailable_since: None,
        },
        Case {
            name: "same version: nothing new",
            current: Some(resolved("3")),
            was: Some(condition(reasons::REGISTRY_SYNCED, true)),
            read: Ok(version("3", Some("s3://m/3"))),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::REGISTRY_SYNCED,
            want_events: &[],
            want_unavailable_since: None,
        },
        Case {
            name: "alias moved",
            current: Some(resolved("3")),
            was: Some(condition(reasons::REGISTRY_SYNCED, true)),
            read: Ok(version("4", Some("s3://m/4"))),
            want_target: Some(("4", "s3://m/4")),
            want_reason: reasons::REGISTRY_SYNCED,
            want_events: &[reasons::ALIAS_MOVED],
            want_unavailable_since: None,
        },
        Case {
            name: "alias moved back",
            current: Some(resolved("4")),
            was: Some(condition(reasons::REGISTRY_SYNCED, true)),
            read: Ok(version("3", Some("s3://m/3"))),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::REGISTRY_SYNCED,
            want_events: &[reasons::ALIAS_MOVED],
            want_unavailable_since: None,
        },
        Case {
            name: "a version tag names the version",
            current: Some(resolved("3")),
            was: None,
            read: Ok(tagged),
            want_target: Some(("2.1.0", "s3://m/4")),
            want_reason: reasons::REGISTRY_SYNCED,
            want_events: &[reasons::ALIAS_MOVED],
            want_unavailable_since: None,
        },
        Case {
            name: "registry unreachable: the last resolution stays, since now",
            current: Some(resolved("3")),
            was: Some(condition(reasons::REGISTRY_SYNCED, true)),
            read: Err(unreachable()),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::REGISTRY_UNREACHABLE,
            want_events: &[reasons::REGISTRY_UNREACHABLE],
            want_unavailable_since: Some(50),
        },
        Case {
            name: "still unreachable: since is kept, no second Event",
            current: Some(down_since_10.clone()),
            was: Some(condition(reasons::REGISTRY_UNREACHABLE, false)),
            read: Err(unreachable()),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::REGISTRY_UNREACHABLE,
            want_events: &[],
            want_unavailable_since: Some(10),
        },
        Case {
            name: "back: the outage ends",
            current: Some(down_since_10),
            was: Some(condition(reasons::REGISTRY_UNREACHABLE, false)),
            read: Ok(version("3", Some("s3://m/3"))),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::REGISTRY_SYNCED,
            want_events: &[],
            want_unavailable_since: None,
        },
        Case {
            name: "alias deleted",
            current: Some(resolved("3")),
            was: None,
            read: Err(api(400, "INVALID_PARAMETER_VALUE", "Registered model alias champion not found.")),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::ALIAS_NOT_FOUND,
            want_events: &[reasons::ALIAS_NOT_FOUND],
            want_unavailable_since: None,
        },
        Case {
            name: "model missing before any resolution",
            current: None,
            was: None,
            read: Err(api(404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=fraud not found")),
            want_target: None,
            want_reason: reasons::ALIAS_NOT_FOUND,
            want_events: &[reasons::ALIAS_NOT_FOUND],
            want_unavailable_since: None,
        },
        Case {
            name: "a version without a storage location",
            current: Some(resolved("3")),
            was: None,
            read: Ok(version("4", None)),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::VERSION_UNUSABLE,
            want_events: &[reasons::VERSION_UNUSABLE],
            want_unavailable_since: None,
        },
        Case {
            name: "a blank storage location",
            current: Some(resolved("3")),
            was: None,
            read: Ok(version("4", Some("  "))),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::VERSION_UNUSABLE,
            want_events: &[reasons::VERSION_UNUSABLE],
            want_unavailable_since: None,
        },
        Case {
            name: "registration pending",
            current: Some(resolved("3")),
            was: None,
            read: Ok(pending),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::VERSION_PENDING,
            want_events: &[reasons::VERSION_PENDING],
            want_unavailable_since: None,
        },
        Case {
            name: "registration failed",
            current: Some(resolved("3")),
            was: None,
            read: Ok(failed),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::VERSION_UNUSABLE,
            want_events: &[reasons::VERSION_UNUSABLE],
            want_unavailable_since: None,
        },
        Case {
            name: "a wrong token",
            current: Some(resolved("3")),
            was: None,
            read: Err(api(401, "UNAUTHENTICATED", "bad token")),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::REGISTRY_AUTH_FAILED,
            want_events: &[reasons::REGISTRY_AUTH_FAILED],
            want_unavailable_since: Some(50),
        },
        Case {
            name: "garbage",
            current: Some(resolved("3")),
            was: None,
            read: Err(RegistryError::BadBody { call: "GET".into(), problem: "expected value at line 1".into() }),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::REGISTRY_BAD_RESPONSE,
            want_events: &[reasons::REGISTRY_BAD_RESPONSE],
            want_unavailable_since: Some(50),
        },
        Case {
            name: "a huge body",
            current: Some(resolved("3")),
            was: None,
            read: Err(RegistryError::TooLarge { call: "GET".into(), limit: 1 << 20 }),
            want_target: Some(("3", "s3://m/3")),
            want_reason: reasons::REGISTRY_BAD_RESPONSE,
            want_events: &[reasons::REGISTRY_BAD_RESPONSE],
            want_unavailable_since: Some(50),
        },
    ];
    for c in cases {
        let got = observe(&follow(), c.current.as_ref(), c.was.as_ref(), &c.read, None, ts(50));
        let target = got.status.version.as_deref().zip(got.status.source.as_deref());
        let target = target.map(|(v, s)| (got.status.model_version.as_deref().unwrap_or(v), s));
        assert_eq!(target, c.want_target, "{}: target", c.name);
        assert_eq!(got.condition.reason, c.want_reason, "{}: reason ({})", c.name, got.condition.message);
        assert_eq!(got.condition.status, c.want_reason == reasons::REGISTRY_SYNCED, "{}", c.name);
        let events: Vec<&str> = got.events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(events, c.want_events, "{}: events", c.name);
        assert_eq!(got.status.unavailable_since.map(|t| t.0), c.want_unavailable_since.map(ts), "{}", c.name);
        if !got.condition.status && c.current.is_some() {
            assert!(got.condition.message.contains("version 3 (the alias's last resolution) stays"), "{}", c.name);
        }
    }
}

#[test]
fn seen_at_is_when_the_version_was_first_seen() {
    let first = observe(&follow(), None, None, &Ok(version("3", Some("s3://m/3"))), None, ts(5));
    assert_eq!(first.status.seen_at, Some(Time(ts(5))));
    let again = observe(&follow(), Some(&first.status), None, &Ok(version("3", Some("s3://m/3"))), None, ts(99));
    assert_eq!(again.status.seen_at, Some(Time(ts(5))));
    let moved = observe(&follow(), Some(&again.status), None, &Ok(version("4", Some("s3://m/4"))), None, ts(120));
    assert_eq!(moved.status.seen_at, Some(Time(ts(120))));
}

#[test]
fn another_alias_or_model_starts_afresh() {
    let other_alias = RegistryRef { alias: "challenger".into(), ..follow() };
    let mut current = resolved("3");
    current.serving_recorded = Some("3".into());
    let b = base(&other_alias, Some(&current));
    assert_eq!((b.alias.as_str(), b.version.as_deref()), ("challenger", None));
    assert_eq!(b.serving_recorded.as_deref(), Some("3"), "records of the same model carry over");
    let other_model = RegistryRef { model: "churn".into(), ..follow() };
    assert_eq!(base(&other_model, Some(&current)).serving_recorded, None);
}

#[test]
fn a_deleted_serving_version_is_reported_once_and_keeps_serving() {
    let gone = Err(api(404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=fraud, version=3) not found"));
    let read = Ok(version("4", Some("s3://m/4")));
    let first = observe(&follow(), Some(&resolved("4")), None, &read, Some(("3", &gone)), ts(1));
    assert_eq!(first.condition.reason, reasons::SERVING_VERSION_DELETED);
    assert_eq!(first.status.serving_deleted.as_deref(), Some("3"));
    assert_eq!(first.events.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(), [reasons::SERVING_VERSION_DELETED]);
    let was = condition(reasons::SERVING_VERSION_DELETED, false);
    let again = observe(&follow(), Some(&first.status), Some(&was), &read, Some(("3", &gone)), ts(2));
    assert!(again.events.is_empty(), "{:?}", again.events);
    // Once the alias points at the serving version again, the report ends.
    let back = observe(&follow(), Some(&again.status), Some(&was), &Ok(version("3", Some("s3://m/3"))), None, ts(3));
    assert_eq!(back.status.serving_deleted, None);
    assert_eq!(back.condition.reason, reasons::REGISTRY_SYNCED);
}

#[test]
fn the_serving_version_is_checked_only_when_the_alias_left_it() {
    let stable = RegisteredVersion { model: "fraud".into(), version: "3".into() };
    let other = RegisteredVersion { model: "churn".into(), version: "3".into() };
    let at = |n: &str| Ok(version(n, Some("s3://m")));
    assert_eq!(needs_serving_check(&follow(), Some(&stable), &at("3")), None);
    assert_eq!(needs_serving_check(&follow(), Some(&stable), &at("4")), Some("3"));
    assert_eq!(needs_serving_check(&follow(), Some(&other), &at("4")), None);
    assert_eq!(needs_serving_check(&follow(), None, &at("4")), None);
    assert_eq!(needs_serving_check(&follow(), Some(&stable), &Err(unreachable())), None);
}

#[test]
fn polls_spread_by_jitter() {
    let t = std::time::Instant::now();
    let i = Duration::from_secs(30);
    assert_eq!(next_poll(None, i, 0.5), None, "never read: now");
    assert_eq!(next_poll(Some(t), i, 0.0), Some(t + i));
    assert_eq!(next_poll(Some(t), i, 0.5), Some(t + Duration::from_millis(31_500)));
    let a = jitter_of("ml/fraud");
    assert!((0.0..1.0).contains(&a));
    assert_eq!(a, jitter_of("ml/fraud"), "stable per object");
    assert_ne!(a, jitter_of("ml/churn"));
}

fn reg(n: &str) -> Option<RegisteredVersion> {
    Some(RegisteredVersion { model: "fraud".into(), version: n.into() })
}

fn rev(n: &str, revision: i64) -> RevisionRef {
    RevisionRef { version: n.into(), revision, hash: Some(format!("h{n}")), registry: reg(n) }
}

fn entry(n: &str, revision: i64, at: i64) -> HistoryEntry {
    HistoryEntry {
        version: n.into(),
        revision,
        hash: Some(format!("h{n}")),
        promoted_at: Some(Time(ts(at))),
        registry: reg(n),
    }
}

fn tag(v: &str, k: &str, value: &str) -> Write {
    Write::Tag { version: v.into(), key: k.into(), value: value.into() }
}

#[test]
fn records_of_promotions_and_rollbacks() {
    let promoted = ModelDeploymentStatus {
        phase: Some(DeploymentPhase::Healthy),
        stable: Some(rev("4", 2)),
        history: vec![entry("4", 2, 100), entry("3", 1, 10)],
        registry: Some(RegistryStatus { serving_recorded: Some("3".into()), ..resolved("4") }),
        ..ModelDeploymentStatus::default()
    };
    let r = record("ml/fraud", "fraud-serving", &follow(), &promoted, None, ts(200));
    assert_eq!(
        r.writes,
        [
            tag("4", tags::DEPLOYMENT, "ml/fraud"),
            tag("4", tags::STAGE, stages::PRODUCTION),
            tag("4", tags::PROMOTED_AT, &ts(100).to_string()),
            tag("4", tags::PREVIOUS_VERSION, "3"),
            tag("3", tags::STAGE, stages::ARCHIVED),
            tag("3", tags::REPLACED_AT, &ts(100).to_string()),
            Write::Alias { alias: "fraud-serving".into(), version: "4".into() },
        ]
    );
    assert_eq!(r.serving_recorded.as_deref(), Some("4"));

    // Recorded: nothing more to write.
    let mut done = promoted.clone();
    done.registry.as_mut().unwrap().serving_recorded = Some("4".into());
    assert!(record("ml/fraud", "fraud-serving", &follow(), &done, None, ts(300)).is_empty());

    // The first version: no previous version.
    let first = ModelDeploymentStatus {
        phase: Some(DeploymentPhase::Healthy),
        stable: Some(rev("3", 1)),
        history: vec![entry("3", 1, 10)],
        registry: Some(resolved("3")),
        ..ModelDeploymentStatus::default()
    };
    let r = record("ml/fraud", "fraud-serving", &follow(), &first, None, ts(20));
    assert_eq!(r.writes.len(), 4, "{:?}", r.writes);
    assert_eq!(r.writes.last(), Some(&Write::Alias { alias: "fraud-serving".into(), version: "3".into() }));

    // A rolled-back candidate gets the reason; the serving alias is already right.
    let rolled_back = ModelDeploymentStatus {
        phase: Some(DeploymentPhase::RolledBack),
        candidate: Some(rev("5", 3)),
        registry: Some(RegistryStatus { serving_recorded: Some("4".into()), ..resolved("5") }),
        ..done.clone()
    };
    let why = Some((reasons::ANALYSIS_FAILED, "analysis gate at step 2 failed (error-rate: 0.3)"));
    let r = record("ml/fraud", "fraud-serving", &follow(), &rolled_back, why, ts(400));
    assert_eq!(
        r.writes,
        [
            tag("5", tags::STAGE, stages::ROLLED_BACK),
            tag("5", tags::DEPLOYMENT, "ml/fraud"),
            tag("5", tags::ROLLED_BACK, reasons::ANALYSIS_FAILED),
            tag("5", tags::ROLLED_BACK_MESSAGE, "analysis gate at step 2 failed (error-rate: 0.3)"),
            tag("5", tags::ROLLED_BACK_AT, &ts(400).to_string()),
        ]
    );
    assert_eq!(r.rollback_recorded.as_deref(), Some("5"));
    let mut recorded = rolled_back.clone();
    recorded.registry.as_mut().unwrap().rollback_recorded = Some("5".into());
    assert!(record("ml/fraud", "fraud-serving", &follow(), &recorded, why, ts(401)).is_empty());
    // Retried: a second rollback is recorded again.
    let mut retried = recorded.clone();
    retried.phase = Some(DeploymentPhase::Progressing);
    let r = record("ml/fraud", "fraud-serving", &follow(), &retried, None, ts(402));
    assert!(r.is_empty() && r.rollback_recorded.is_none(), "{r:?}");

    // `rollback` to an older version: it serves again, and the version rolled back from is not archived.
    let back = ModelDeploymentStatus {
        phase: Some(DeploymentPhase::RolledBack),
        stable: Some(rev("3", 1)),
        candidate: Some(rev("4", 2)),
        history: vec![entry("3", 1, 500), entry("4", 2, 100)],
        registry: Some(RegistryStatus { serving_recorded: Some("4".into()), ..resolved("4") }),
        ..ModelDeploymentStatus::default()
    };
    let r = record("ml/fraud", "fraud-serving", &follow(), &back, Some((reasons::ROLLED_BACK, "by request")), ts(500));
    assert!(r.writes.contains(&Write::Alias { alias: "fraud-serving".into(), version: "3".into() }));
    assert!(r.writes.contains(&tag("4", tags::ROLLED_BACK, reasons::ROLLED_BACK)));
    assert!(!r.writes.contains(&tag("4", tags::STAGE, stages::ARCHIVED)), "{:?}", r.writes);
    assert!(r.writes.contains(&tag("3", tags::PROMOTED_AT, &ts(500).to_string())));

    // A stable pinned in the spec (no registry version) or of another model: nothing to record.
    let pinned = ModelDeploymentStatus {
        stable: Some(RevisionRef { registry: None, ..rev("1", 1) }),
        ..ModelDeploymentStatus::default()
    };
    assert!(record("ml/fraud", "fraud-serving", &follow(), &pinned, None, ts(1)).is_empty());
}

#[test]
fn long_messages_are_cut_in_tags() {
    let s = ModelDeploymentStatus {
        phase: Some(DeploymentPhase::RolledBack),
        stable: Some(rev("3", 1)),
        candidate: Some(rev("4", 2)),
        registry: Some(RegistryStatus { serving_recorded: Some("3".into()), ..resolved("4") }),
        ..ModelDeploymentStatus::default()
    };
    let long = "x".repeat(2000);
    let r = record("ml/fraud", "s", &follow(), &s, Some(("AnalysisFailed", &long)), ts(0));
    let Some(Write::Tag { value, .. }) =
        r.writes.iter().find(|w| matches!(w, Write::Tag { key, .. } if key == tags::ROLLED_BACK_MESSAGE))
    else {
        panic!("no message tag")
    };
    assert_eq!(value.chars().count(), MAX_TAG_VALUE + 1);
}

/// The rollout that a read of the alias leads to: the reconciler's sequence (observe → resolved target →
/// plan::decide) with a simulated clock.
struct Follow {
    md: crate::api::ModelDeployment,
    status: ModelDeploymentStatus,
    candidate_ready: i32,
}

impl Follow {
    fn new() -> Self {
        let mut md = fixtures::model_deployment("fraud");
        md.spec.model = ModelRef { version: None, uri: None, registry: Some(follow()) };
        let mut f = Follow { md, status: ModelDeploymentStatus::default(), candidate_ready: 0 };
        f.alias_at("3", 0);
        assert_eq!(f.status.stable.as_ref().map(|s| s.version.as_str()), Some("3"));
        f
    }

    /// The alias is read at `at` pointing at `n`, and the rollout decides.
    fn alias_at(&mut self, n: &str, at: i64) -> plan::Decision {
        let read = Ok(version(n, Some(&format!("s3://m/{n}"))));
        let followed = observe(&follow(), self.status.registry.as_ref(), None, &read, None, ts(at));
        self.status.registry = Some(followed.status);
        let target = revision::resolved_target(&self.md.spec, self.status.registry.as_ref().unwrap()).unwrap();
        let d = plan::decide(&Input {
            spec: &self.md.spec,
            status: &self.status,
            target: &target,
            stable_ready: true,
            candidate_ready_replicas: self.candidate_ready,
            candidate_pods_problem: None,
            background: None,
            gate: None,
            request: None,
            retained: &[],
            now: ts(at),
        });
        let registry = self.status.registry.clone();
        self.status = d.status.clone();
        self.status.registry = registry;
        d
    }

    fn candidate(&self) -> Option<&str> {
        self.status.candidate.as_ref().filter(|_| plan::rolling(&self.status)).map(|c| c.version.as_str())
    }
}

#[test]
fn a_moved_alias_starts_a_rollout_through_the_steps() {
    let mut f = Follow::new();
    let d = f.alias_at("4", 10);
    assert_eq!(f.candidate(), Some("4"));
    assert_eq!(f.status.current_step, Some(0));
    assert!(d.events.iter().any(|e| e.reason == reasons::ROLLOUT_STARTED), "{:?}", d.events);
    let c = f.status.candidate.as_ref().unwrap();
    assert_eq!(c.registry, reg("4"), "the candidate keeps its registry version");
    // Read again, same version: the rollout goes on where it is, nothing restarts.
    f.alias_at("4", 20);
    assert_eq!((f.candidate(), f.status.current_step), (Some("4"), Some(0)));
}

#[test]
fn an_alias_moved_back_to_stable_cancels_the_rollout() {
    let mut f = Follow::new();
    f.alias_at("4", 10);
    let d = f.alias_at("3", 20);
    assert_eq!(f.candidate(), None);
    assert_eq!(f.status.phase, Some(DeploymentPhase::Healthy));
    assert!(d.events.iter().any(|e| e.reason == reasons::ROLLOUT_CANCELLED), "{:?}", d.events);
}

#[test]
fn an_alias_moved_during_a_rollout_restarts_for_the_new_target() {
    let mut f = Follow::new();
    f.alias_at("4", 10);
    f.candidate_ready = 1;
    for t in 11..15 {
        f.alias_at("4", t);
    }
    assert!(f.status.current_step > Some(0), "the rollout moved on: {:?}", f.status.current_step);
    f.candidate_ready = 0; // the new revision has no pods yet
    let d = f.alias_at("5", 30);
    assert_eq!((f.candidate(), f.status.current_step), (Some("5"), Some(0)));
    let started = d.events.iter().find(|e| e.reason == reasons::ROLLOUT_STARTED).unwrap();
    assert!(started.message.contains("replaces candidate 4"), "{}", started.message);
}

#[test]
fn a_rolled_back_alias_target_is_not_retried_until_the_alias_moves() {
    let mut f = Follow::new();
    f.alias_at("4", 10);
    f.status.phase = Some(DeploymentPhase::RolledBack);
    for t in [20, 50, 90] {
        f.alias_at("4", t);
        assert_eq!(f.status.phase, Some(DeploymentPhase::RolledBack), "at {t}");
        assert_eq!(f.candidate(), None);
    }
    f.alias_at("5", 100);
    assert_eq!(f.candidate(), Some("5"));
}
