//! Following a registry alias, as pure decisions: what one read of the alias means for a ModelDeployment
//! (`status.registry`, the RegistrySynced condition, Events), when to read it again, and what the operator
//! records in the registry after a promotion or a rollback.
//!
//! What serves is never lost to the registry: a failed read keeps the last resolution (so no rollout
//! starts and none is aborted because of it), and the condition says since when.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::{ModelVersion, ModelVersionStatus, RegistryError};
use crate::api::common::RegistryRef;
use crate::api::model_deployment::{RegisteredVersion, RegistryStatus};
use crate::api::{DeploymentPhase, ModelDeploymentStatus};
use crate::conditions::{Desired, Transition};
use crate::names::{conditions as cond, reasons};

/// Default `mlflow.pollInterval`: how often a followed alias is read.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// The longest value a tag written by the operator gets (MLflow accepts more; messages are cut).
pub const MAX_TAG_VALUE: usize = 500;

/// The model version tags Champion reads and writes.
pub mod tags {
    /// Read: a version's own name for itself (a semantic version such as `2.1.0`), shown as the version.
    pub const VERSION: &str = "champion.ml/version";
    /// Read when [`VERSION`] is absent: the common `version` tag.
    pub const PLAIN_VERSION: &str = "version";
    /// Written: the ModelDeployment (`namespace/name`) that serves or served the version.
    pub const DEPLOYMENT: &str = "champion.ml/deployment";
    /// Written: `production` while the version serves, `archived` once replaced, `rolled-back`.
    pub const STAGE: &str = "champion.ml/stage";
    /// Written: when the version became the one that serves (RFC 3339).
    pub const PROMOTED_AT: &str = "champion.ml/promoted-at";
    /// Written: the registry version that served before it.
    pub const PREVIOUS_VERSION: &str = "champion.ml/previous-version";
    /// Written on the version replaced by a promotion: when it stopped serving (RFC 3339).
    pub const REPLACED_AT: &str = "champion.ml/replaced-at";
    /// Written: why its rollout was rolled back (a reason such as `AnalysisFailed`).
    pub const ROLLED_BACK: &str = "champion.ml/rolled-back";
    /// Written: the rollback's message.
    pub const ROLLED_BACK_MESSAGE: &str = "champion.ml/rolled-back-message";
    /// Written: when it was rolled back (RFC 3339).
    pub const ROLLED_BACK_AT: &str = "champion.ml/rolled-back-at";
}

/// The stages written in [`tags::STAGE`].
pub mod stages {
    /// The version serves.
    pub const PRODUCTION: &str = "production";
    /// The version served and was replaced by a promotion.
    pub const ARCHIVED: &str = "archived";
    /// The version's rollout was rolled back.
    pub const ROLLED_BACK: &str = "rolled-back";
}

/// The alias the operator keeps on the version that serves: `spec.model.registry.servingAlias`, else
/// `<deployment>-serving`.
pub fn serving_alias(deployment: &str, follow: &RegistryRef) -> String {
    follow.serving_alias.clone().unwrap_or_else(|| format!("{deployment}-serving"))
}

/// The status of the alias `follow` as recorded, or a fresh one when the spec now follows another model
/// or alias (what was recorded for another model does not carry over).
pub fn base(follow: &RegistryRef, current: Option<&RegistryStatus>) -> RegistryStatus {
    match current {
        Some(c) if c.model == follow.model && c.alias == follow.alias => c.clone(),
        Some(c) if c.model == follow.model => RegistryStatus {
            model: c.model.clone(),
            alias: follow.alias.clone(),
            serving_recorded: c.serving_recorded.clone(),
            rollback_recorded: c.rollback_recorded.clone(),
            ..RegistryStatus::default()
        },
        _ => RegistryStatus { model: follow.model.clone(), alias: follow.alias.clone(), ..RegistryStatus::default() },
    }
}

/// What one read of the alias decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Followed {
    /// `status.registry` after the read.
    pub status: RegistryStatus,
    /// The RegistrySynced condition as far as the read goes.
    pub condition: Desired,
    /// Events: the alias moved, or a problem that is new.
    pub events: Vec<Transition>,
}

/// Takes in one read of the alias (`read`) and, when it was made, the check that the version serving
/// still exists (`serving_check`, see [`needs_serving_check`]).
pub fn observe(
    follow: &RegistryRef,
    current: Option<&RegistryStatus>,
    current_condition: Option<&Condition>,
    read: &Result<ModelVersion, RegistryError>,
    serving_check: Option<(&str, &Result<ModelVersion, RegistryError>)>,
    now: Timestamp,
) -> Followed {
    let mut s = base(follow, current);
    let what = format!("alias {} of registered model {}", follow.alias, follow.model);
    let keeps = keeps(&s);
    let mut events = Vec::new();
    let problem = |reason: &str, message: String| Desired::new(cond::REGISTRY_SYNCED, false, reason, message);
    let condition = match read {
        Ok(v) => {
            s.unavailable_since = None;
            match usable(v) {
                Err((reason, why)) => {
                    problem(reason, format!("{what} points at version {}, {why}; {keeps}", v.version))
                }
                Ok(source) => {
                    if s.version.as_deref() != Some(v.version.as_str()) || s.source.is_none() {
                        let message = match &s.version {
                            Some(before) => format!("{what} moved from version {before} to version {}", v.version),
                            None => format!("{what} points at version {}", v.version),
                        };
                        events.push(Transition { warning: false, reason: reasons::ALIAS_MOVED.into(), message });
                        s.version = Some(v.version.clone());
                        s.model_version = Some(model_version(v));
                        s.source = Some(source);
                        s.seen_at = Some(Time(now));
                    }
                    Desired::new(
                        cond::REGISTRY_SYNCED,
                        true,
                        reasons::REGISTRY_SYNCED,
                        format!("{what} points at version {}", v.version),
                    )
                }
            }
        }
        Err(e) if e.is_not_found() => {
            s.unavailable_since = None;
            problem(reasons::ALIAS_NOT_FOUND, format!("{what} cannot be resolved: {e}; {keeps}"))
        }
        Err(e) => return unavailable(follow, current, current_condition, failure_reason(e), &e.to_string(), now),
    };
    let mut condition = condition;
    // The version that serves and that the registry no longer has keeps serving; say so once.
    if let Some((version, check)) = serving_check {
        match check {
            Err(e) if e.is_not_found() => {
                if s.serving_deleted.as_deref() != Some(version) {
                    events.push(Transition {
                        warning: true,
                        reason: reasons::SERVING_VERSION_DELETED.into(),
                        message: format!(
                            "version {version} of registered model {} serves but was deleted from the registry; \
                             it keeps serving until the alias points at another version",
                            follow.model
                        ),
                    });
                }
                s.serving_deleted = Some(version.to_string());
            }
            Ok(_) => s.serving_deleted = None,
            Err(_) => {}
        }
    } else if read.as_ref().is_ok_and(|v| s.serving_deleted.as_deref() == Some(v.version.as_str())) {
        s.serving_deleted = None;
    }
    if let Some(v) = s.serving_deleted.as_ref().filter(|_| condition.status) {
        condition = problem(
            reasons::SERVING_VERSION_DELETED,
            format!(
                "{what} points at version {}, but version {v}, which serves, was deleted from the registry; \
                     it keeps serving",
                s.version.clone().unwrap_or_default()
            ),
        );
    }
    if !condition.status {
        let was = current_condition.filter(|c| c.status == "False").map(|c| c.reason.as_str());
        if was != Some(condition.reason.as_str()) && condition.reason != reasons::SERVING_VERSION_DELETED {
            let warning = condition.reason != reasons::VERSION_PENDING;
            events.push(Transition { warning, reason: condition.reason.clone(), message: condition.message.clone() });
        }
    }
    Followed { status: s, condition, events }
}

/// The registry cannot be read (unreachable, refusing the token, answering garbage; `reason` says which
/// and `detail` how): the last resolution stays the target, and the condition says since when.
pub fn unavailable(
    follow: &RegistryRef,
    current: Option<&RegistryStatus>,
    current_condition: Option<&Condition>,
    reason: &str,
    detail: &str,
    now: Timestamp,
) -> Followed {
    let mut s = base(follow, current);
    let keeps = keeps(&s);
    let since = s.unavailable_since.get_or_insert(Time(now)).0;
    let message = format!("the registry cannot be read since {since}: {detail}; {keeps}, and no rollout starts");
    let condition = Desired::new(cond::REGISTRY_SYNCED, false, reason, message);
    let was = current_condition.filter(|c| c.status == "False").map(|c| c.reason.as_str());
    let events = if was == Some(reason) {
        Vec::new()
    } else {
        vec![Transition { warning: true, reason: reason.to_string(), message: condition.message.clone() }]
    };
    Followed { status: s, condition, events }
}

/// What stays the target while the alias cannot be used: its last resolution, or nothing.
fn keeps(s: &RegistryStatus) -> String {
    match (&s.version, &s.source) {
        (Some(v), Some(_)) => format!("version {v} (the alias's last resolution) stays the target"),
        _ => "nothing is deployed until it resolves".to_string(),
    }
}

/// Whether the registry should be asked whether the version that serves still exists: when it came from
/// the followed model and the alias now points elsewhere (a version an alias points at exists).
pub fn needs_serving_check<'a>(
    follow: &RegistryRef,
    stable: Option<&'a RegisteredVersion>,
    read: &Result<ModelVersion, RegistryError>,
) -> Option<&'a str> {
    let stable = stable.filter(|s| s.model == follow.model)?;
    match read {
        Ok(v) if v.version == stable.version => None,
        Ok(_) => Some(stable.version.as_str()),
        Err(e) if e.is_not_found() => Some(stable.version.as_str()),
        Err(_) => None,
    }
}

/// The condition reason of a registry error that is not "not found".
pub fn failure_reason(e: &RegistryError) -> &'static str {
    if e.is_unreachable() {
        reasons::REGISTRY_UNREACHABLE
    } else if e.is_auth() {
        reasons::REGISTRY_AUTH_FAILED
    } else if e.is_not_found() {
        reasons::ALIAS_NOT_FOUND
    } else {
        reasons::REGISTRY_BAD_RESPONSE
    }
}

/// The version's storage location, or why it cannot be served.
fn usable(v: &ModelVersion) -> Result<String, (&'static str, String)> {
    match &v.status {
        Some(ModelVersionStatus::PendingRegistration) => {
            return Err((reasons::VERSION_PENDING, "whose registration is still pending".into()));
        }
        Some(ModelVersionStatus::FailedRegistration) => {
            let why = v.status_message.clone().unwrap_or_else(|| "no reason given".into());
            return Err((reasons::VERSION_UNUSABLE, format!("whose registration failed ({why})")));
        }
        _ => {}
    }
    match v.source.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err((reasons::VERSION_UNUSABLE, "which has no storage location (source) to serve".into())),
    }
}

/// The version a server is told it runs: the version's own tag, else the registry's number.
fn model_version(v: &ModelVersion) -> String {
    [tags::VERSION, tags::PLAIN_VERSION]
        .iter()
        .filter_map(|k| v.tags.get(*k))
        .map(|t| t.trim())
        .find(|t| !t.is_empty() && t.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| v.version.clone())
}

/// When the alias is read next: `interval` after the last read, stretched by up to a tenth by `jitter`
/// (a number in `[0, 1)`, fixed per ModelDeployment so that many of them spread out).
pub fn next_poll(last: Option<std::time::Instant>, interval: Duration, jitter: f64) -> Option<std::time::Instant> {
    last.map(|t| t + interval.mul_f64(1.0 + 0.1 * jitter.clamp(0.0, 1.0)))
}

/// A number in `[0, 1)` from a ModelDeployment's name, for [`next_poll`].
pub fn jitter_of(key: &str) -> f64 {
    // FNV-1a: a stable spread, not a secret.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 10_000) as f64 / 10_000.0
}

/// One write to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Sets a tag of a model version.
    Tag {
        /// The version number.
        version: String,
        /// The tag's key.
        key: String,
        /// Its value.
        value: String,
    },
    /// Points an alias at a version.
    Alias {
        /// The alias.
        alias: String,
        /// The version number.
        version: String,
    },
}

/// What the registry should be told about a status, and what `status.registry` says once it was.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// The writes, in order (tags first, the serving alias last).
    pub writes: Vec<Write>,
    /// `status.registry.servingRecorded` once all writes succeeded.
    pub serving_recorded: Option<String>,
    /// `status.registry.rollbackRecorded` once all writes succeeded.
    pub rollback_recorded: Option<String>,
    /// What was recorded, for the Event.
    pub summary: Vec<String>,
}

impl Record {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// What the registry is not told yet about `status` (the status decided by this reconcile): the version
/// that serves gets the production tags and the serving alias; a version whose rollout was rolled back
/// gets the rollback's reason. `deployment` is `namespace/name`; `rollback` is the Degraded condition's
/// reason and message after a rollback.
pub fn record(
    deployment: &str,
    serving_alias: &str,
    follow: &RegistryRef,
    status: &ModelDeploymentStatus,
    rollback: Option<(&str, &str)>,
    now: Timestamp,
) -> Record {
    let registry = status.registry.as_ref().filter(|r| r.model == follow.model);
    let rolled_back = status.phase == Some(DeploymentPhase::RolledBack);
    let mut out = Record {
        serving_recorded: registry.and_then(|r| r.serving_recorded.clone()),
        // A retried rollout that is rolled back again is recorded again.
        rollback_recorded: registry.and_then(|r| r.rollback_recorded.clone()).filter(|_| rolled_back),
        ..Record::default()
    };
    let of_model = |r: Option<&RegisteredVersion>| r.filter(|r| r.model == follow.model).map(|r| r.version.clone());
    let tag = |version: &str, key: &str, value: &str| Write::Tag {
        version: version.to_string(),
        key: key.to_string(),
        value: cut(value),
    };
    let failed = of_model(status.candidate.as_ref().and_then(|c| c.registry.as_ref())).filter(|_| rolled_back);

    if let Some(failed) = failed.clone().filter(|v| out.rollback_recorded.as_deref() != Some(v.as_str())) {
        let (reason, message) = rollback.unwrap_or((reasons::ROLLED_BACK, "rolled back"));
        out.writes.extend([
            tag(&failed, tags::STAGE, stages::ROLLED_BACK),
            tag(&failed, tags::DEPLOYMENT, deployment),
            tag(&failed, tags::ROLLED_BACK, reason),
            tag(&failed, tags::ROLLED_BACK_MESSAGE, message),
            tag(&failed, tags::ROLLED_BACK_AT, &now.to_string()),
        ]);
        out.summary.push(format!("version {failed} was rolled back ({reason})"));
        out.rollback_recorded = Some(failed.clone());
    }

    let serving = of_model(status.stable.as_ref().and_then(|s| s.registry.as_ref()));
    if let Some(serving) = serving.filter(|v| out.serving_recorded.as_deref() != Some(v.as_str())) {
        let first = status.history.first().filter(|h| of_model(h.registry.as_ref()).as_deref() == Some(&serving));
        let promoted_at = first.and_then(|h| h.promoted_at.as_ref()).map(|t| t.0).unwrap_or(now).to_string();
        let previous =
            status.history.iter().skip(1).find_map(|h| of_model(h.registry.as_ref())).filter(|p| *p != serving);
        out.writes.push(tag(&serving, tags::DEPLOYMENT, deployment));
        out.writes.push(tag(&serving, tags::STAGE, stages::PRODUCTION));
        out.writes.push(tag(&serving, tags::PROMOTED_AT, &promoted_at));
        if let Some(p) = &previous {
            out.writes.push(tag(&serving, tags::PREVIOUS_VERSION, p));
            // A version rolled back from keeps its rolled-back stage.
            if failed.as_deref() != Some(p.as_str()) {
                out.writes.push(tag(p, tags::STAGE, stages::ARCHIVED));
                out.writes.push(tag(p, tags::REPLACED_AT, &promoted_at));
            }
        }
        out.writes.push(Write::Alias { alias: serving_alias.to_string(), version: serving.clone() });
        out.summary.push(format!("version {serving} serves: alias {serving_alias} and stage production"));
        out.serving_recorded = Some(serving);
    }
    out
}

/// A tag value cut to [`MAX_TAG_VALUE`] characters.
fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_TAG_VALUE) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
