//! The registry part of a ModelDeployment reconcile, for a spec that follows an alias: act on `refresh`
//! and `promote-version`, read the alias when due, and after the rollout decided, write what the registry
//! should know (the serving alias and tags after a promotion, the reason after a rollback). The decisions
//! are in `registry::follow`; this module makes the calls and keeps the poll clock.

use std::time::Duration;

use jiff::Timestamp;
use kube::ResourceExt;

use crate::api::common::RegistryRef;
use crate::api::model_deployment::RegistryStatus;
use crate::api::{ModelDeployment, ModelDeploymentStatus};
use crate::conditions::{self, Desired, Transition};
use crate::controller::Context;
use crate::names::{conditions as cond, reasons};
use crate::registry::follow::{self, Followed};
use crate::registry::sync;
use crate::rollout::request::{Request, Verb};

/// What the registry part of one reconcile found and decided.
#[derive(Debug, Clone)]
pub struct Alias {
    /// `status.registry` after this reconcile.
    pub status: RegistryStatus,
    /// The RegistrySynced condition, when this reconcile decided it (`None`: keep the one in status).
    pub condition: Option<Desired>,
    /// Events to publish.
    pub events: Vec<Transition>,
    /// The registry request consumed (`refresh`, `promote-version`), to record in `status.lastRequest`.
    pub consumed: Option<String>,
    /// Whether the registry was read in this reconcile (so that pending records are written again).
    pub read: bool,
    /// How long until the alias is read again.
    pub next_read: Duration,
}

/// `namespace/name`, the key of the poll clock and the value of the `champion.ml/deployment` tag.
pub fn key(md: &ModelDeployment) -> String {
    format!("{}/{}", md.namespace().unwrap_or_default(), md.name_any())
}

/// Acts on a registry request, then reads the alias when it is due (or was asked for, or the spec follows
/// another alias than the one resolved).
pub async fn follow_alias(
    ctx: &Context,
    md: &ModelDeployment,
    follow: &RegistryRef,
    current: &ModelDeploymentStatus,
    request: Option<&Request>,
    now: Timestamp,
) -> Alias {
    let key = key(md);
    let mut alias = Alias {
        status: follow::base(follow, current.registry.as_ref()),
        condition: None,
        events: Vec::new(),
        consumed: None,
        read: false,
        next_read: Duration::ZERO,
    };
    let Some(access) = ctx.registry.as_ref() else {
        // Validation refuses such a spec; kept for safety.
        alias.condition = Some(Desired::new(
            cond::REGISTRY_SYNCED,
            false,
            reasons::REGISTRY_UNREACHABLE,
            "the operator config names no MLflow tracking server (mlflow.trackingUri)",
        ));
        return alias;
    };
    let registry_request = request.filter(|r| r.verb.is_registry());
    let unresolved = alias.status.version.is_none();
    if registry_request.is_none() && !unresolved && access.until_due(&key) > Duration::ZERO {
        alias.next_read = access.until_due(&key);
        return alias;
    }
    // A read (or a request) is due: only now is the client (and its token) needed.
    let client = access.client().await;
    if let Some(r) = registry_request {
        alias.consumed = Some(r.raw.clone());
        if let Verb::PromoteVersion(version) = &r.verb {
            let moved = match &client {
                Ok(c) => sync::move_alias(c.as_ref(), follow, version).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            alias.events.push(match moved {
                Ok(_) => Transition {
                    warning: false,
                    reason: reasons::ALIAS_MOVED_BY_REQUEST.into(),
                    message: format!(
                        "alias {} of registered model {} now points at version {version}, by request",
                        follow.alias, follow.model
                    ),
                },
                Err(e) => Transition {
                    warning: true,
                    reason: reasons::REQUEST_IGNORED.into(),
                    message: format!("request {} did nothing: {e}", r.raw),
                },
            });
        }
    }
    let followed = match &client {
        Ok(c) => sync::read_alias(c.as_ref(), follow, current, now).await,
        Err(e) => follow::unavailable(
            follow,
            current.registry.as_ref(),
            conditions::find(&current.conditions, cond::REGISTRY_SYNCED),
            reasons::REGISTRY_AUTH_FAILED,
            e,
            now,
        ),
    };
    access.polled(&key);
    let Followed { status, condition, events } = followed;
    alias.status = status;
    alias.condition = Some(condition);
    alias.events.extend(events);
    alias.read = true;
    alias.next_read = access.until_due(&key);
    alias
}

/// Writes what the registry is not told yet about `decided` (the rollout fields this reconcile decided;
/// `rollback` is the decided Degraded reason and message after a rollback): at once when it is new, and
/// again at each read of the alias while it fails. Updates `alias` with what was recorded, the condition
/// and the Events.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    ctx: &Context,
    md: &ModelDeployment,
    follow: &RegistryRef,
    alias: &mut Alias,
    before: &ModelDeploymentStatus,
    decided: &ModelDeploymentStatus,
    rollback: Option<(&str, &str)>,
    now: Timestamp,
) {
    let Some(access) = ctx.registry.as_ref() else { return };
    let deployment = key(md);
    let serving_alias = follow::serving_alias(&md.name_any(), follow);
    let mut with = decided.clone();
    with.registry = Some(alias.status.clone());
    let record = follow::record(&deployment, &serving_alias, follow, &with, rollback, now);
    if record.is_empty() {
        // Nothing to write: what the record says holds (a retried rollout forgets its last rollback).
        alias.status.serving_recorded = record.serving_recorded;
        alias.status.rollback_recorded = record.rollback_recorded;
        return;
    }
    // Pending writes are made at once when this decision made them, else at each read of the alias; the
    // status keeps what was recorded until they succeed.
    let new = follow::record(&deployment, &serving_alias, follow, before, rollback, now).writes != record.writes;
    if !alias.read && !new {
        return;
    }
    let written = match access.client().await {
        Ok(c) => sync::write_record(c.as_ref(), &follow.model, &record).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let was = alias
        .condition
        .as_ref()
        .map(|c| c.reason.clone())
        .or_else(|| conditions::find(&decided.conditions, cond::REGISTRY_SYNCED).map(|c| c.reason.clone()));
    match written {
        Ok(()) => {
            alias.status.serving_recorded = record.serving_recorded.clone();
            alias.status.rollback_recorded = record.rollback_recorded.clone();
            alias.events.push(Transition {
                warning: false,
                reason: reasons::REGISTRY_RECORDED.into(),
                message: format!("recorded in the registry: {}", record.summary.join("; ")),
            });
            if was.as_deref() == Some(reasons::REGISTRY_WRITE_FAILED) {
                alias.condition = Some(synced(&alias.status));
            }
        }
        Err(e) => {
            let message = format!(
                "could not record in the registry that {}: {e}; written again at the next read of the alias",
                record.summary.join("; ")
            );
            if alias.condition.as_ref().is_none_or(|c| c.status) {
                if was.as_deref() != Some(reasons::REGISTRY_WRITE_FAILED) {
                    alias.events.push(Transition {
                        warning: true,
                        reason: reasons::REGISTRY_WRITE_FAILED.into(),
                        message: message.clone(),
                    });
                }
                alias.condition =
                    Some(Desired::new(cond::REGISTRY_SYNCED, false, reasons::REGISTRY_WRITE_FAILED, message));
            }
        }
    }
}

/// RegistrySynced=True for a status whose alias resolved.
fn synced(s: &RegistryStatus) -> Desired {
    Desired::new(
        cond::REGISTRY_SYNCED,
        true,
        reasons::REGISTRY_SYNCED,
        format!(
            "alias {} of registered model {} points at version {}",
            s.alias,
            s.model,
            s.version.clone().unwrap_or_default()
        ),
    )
}
