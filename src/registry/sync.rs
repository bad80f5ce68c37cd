//! The registry calls of following an alias, over any [`Registry`]: read the alias (and check that the
//! version serving still exists), write a [`Record`], move the followed alias by request. The decisions are
//! in [`super::follow`]; this module only makes the calls, so it is tested against [`super::FakeRegistry`].

use jiff::Timestamp;

use super::follow::{self, Followed, Record, Write};
use super::{ModelVersion, NewModelVersion, Registry, RegistryError, VersionSearch};
use crate::api::ModelDeploymentStatus;
use crate::api::common::RegistryRef;
use crate::conditions;
use crate::names::conditions as cond;

/// Reads the alias that `follow` names and decides what it means for `current` (one call; two when the
/// version that serves has to be checked, see [`follow::needs_serving_check`]).
pub async fn read_alias<R: Registry>(
    registry: &R,
    follow: &RegistryRef,
    current: &ModelDeploymentStatus,
    now: Timestamp,
) -> Followed {
    let read = registry.get_model_version_by_alias(&follow.model, &follow.alias).await;
    let stable = current.stable.as_ref().and_then(|s| s.registry.as_ref());
    let check = match follow::needs_serving_check(follow, stable, &read) {
        Some(v) => Some((v.to_string(), registry.get_model_version(&follow.model, v).await)),
        None => None,
    };
    follow::observe(
        follow,
        current.registry.as_ref(),
        conditions::find(&current.conditions, cond::REGISTRY_SYNCED),
        &read,
        check.as_ref().map(|(v, r)| (v.as_str(), r)),
        now,
    )
}

/// Makes the writes of `record` in order, stopping at the first that fails.
pub async fn write_record<R: Registry>(registry: &R, model: &str, record: &Record) -> Result<(), RegistryError> {
    for w in &record.writes {
        match w {
            Write::Tag { version, key, value } => registry.set_model_version_tag(model, version, key, value).await?,
            Write::Alias { alias, version } => registry.set_registered_model_alias(model, alias, version).await?,
        }
    }
    Ok(())
}

/// Why `promote-version` did not move the alias.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MoveError {
    /// The version cannot be served (no storage location, registration not ready).
    #[error("version {version} of registered model {model} cannot be served: {why}")]
    Unusable {
        /// The registered model.
        model: String,
        /// The version asked for.
        version: String,
        /// Why not.
        why: String,
    },
    /// A registry call failed (including "the version does not exist").
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Points the followed alias at `version` after checking that the version exists and can be served, so
/// that a typo never leaves the alias on nothing.
pub async fn move_alias<R: Registry>(
    registry: &R,
    follow: &RegistryRef,
    version: &str,
) -> Result<ModelVersion, MoveError> {
    let v = registry.get_model_version(&follow.model, version).await?;
    let unusable = |why: &str| MoveError::Unusable {
        model: follow.model.clone(),
        version: version.to_string(),
        why: why.to_string(),
    };
    if v.source.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err(unusable("it has no storage location (source)"));
    }
    if matches!(
        v.status,
        Some(super::ModelVersionStatus::PendingRegistration | super::ModelVersionStatus::FailedRegistration)
    ) {
        return Err(unusable("its registration is not READY"));
    }
    registry.set_registered_model_alias(&follow.model, &follow.alias, version).await?;
    Ok(v)
}

/// The tag that marks a version registered by a retraining run: `<namespace>/<policy>/<run>`.
pub const RETRAIN_RUN_TAG: &str = "champion.ml/retrain-run";

/// Registers a retraining run's candidate as a new version of the followed model (once: a version that
/// already carries the run's [`RETRAIN_RUN_TAG`], registered before an operator restart, is used again)
/// and points the followed alias at it, so that the ModelDeployment rolls it out through its own steps.
pub async fn register_and_promote<R: Registry>(
    registry: &R,
    follow: &RegistryRef,
    new: &NewModelVersion,
) -> Result<ModelVersion, MoveError> {
    let run = new.tags.get(RETRAIN_RUN_TAG).cloned().unwrap_or_default();
    let mut existing = None;
    if let Some(search) = VersionSearch::of_model(&follow.model, 200) {
        let page = registry.search_model_versions(&search).await?;
        existing = page.versions.into_iter().find(|v| v.tags.get(RETRAIN_RUN_TAG) == Some(&run));
    }
    let v = match existing {
        Some(v) => v,
        None => registry.create_model_version(new).await?,
    };
    move_alias(registry, follow, &v.version).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model_deployment::{RegisteredVersion, RevisionRef};
    use crate::names::reasons;
    use crate::registry::FakeRegistry;

    fn follow() -> RegistryRef {
        RegistryRef { model: "fraud".into(), alias: "champion".into(), serving_alias: None }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    #[tokio::test]
    async fn reads_the_alias_and_checks_a_serving_version_only_when_the_alias_left_it() {
        let fake = FakeRegistry::new();
        let v1 = fake.add_version("fraud", "s3://m/1");
        let v2 = fake.add_version("fraud", "s3://m/2");
        fake.put_alias("fraud", "champion", &v1);
        let mut status = ModelDeploymentStatus::default();
        let first = read_alias(&fake, &follow(), &status, now()).await;
        assert_eq!(first.status.version.as_deref(), Some("1"));
        assert_eq!(fake.calls(), ["get_model_version_by_alias fraud champion"]);

        status.registry = Some(first.status);
        status.stable = Some(RevisionRef {
            version: "1".into(),
            revision: 1,
            hash: None,
            registry: Some(RegisteredVersion { model: "fraud".into(), version: v1.clone() }),
        });
        fake.clear_calls();
        fake.put_alias("fraud", "champion", &v2);
        fake.remove_version("fraud", &v1);
        let moved = read_alias(&fake, &follow(), &status, now()).await;
        assert_eq!(fake.calls(), ["get_model_version_by_alias fraud champion", "get_model_version fraud 1"]);
        assert_eq!(moved.status.version.as_deref(), Some("2"));
        assert_eq!(moved.status.serving_deleted.as_deref(), Some("1"));
        assert_eq!(moved.condition.reason, reasons::SERVING_VERSION_DELETED);
    }

    #[tokio::test]
    async fn writes_a_record_in_order_and_stops_at_the_first_failure() {
        let fake = FakeRegistry::new();
        let v = fake.add_version("fraud", "s3://m/1");
        let record = Record {
            writes: vec![
                Write::Tag { version: v.clone(), key: "champion.ml/stage".into(), value: "production".into() },
                Write::Alias { alias: "fraud-serving".into(), version: v.clone() },
            ],
            ..Record::default()
        };
        write_record(&fake, "fraud", &record).await.unwrap();
        assert_eq!(fake.alias("fraud", "fraud-serving").as_deref(), Some("1"));
        assert_eq!(fake.version_tags("fraud", "1")["champion.ml/stage"], "production");

        fake.set_unreachable(true);
        fake.clear_calls();
        let e = write_record(&fake, "fraud", &record).await.unwrap_err();
        assert!(e.is_unreachable(), "{e}");
        assert_eq!(fake.calls().len(), 1, "no write after the first failure: {:?}", fake.calls());
    }

    #[tokio::test]
    async fn moves_the_alias_only_to_a_version_that_can_serve() {
        let fake = FakeRegistry::new();
        fake.add_version("fraud", "s3://m/1");
        let without_source = fake.add_version("fraud", "");
        fake.put_alias("fraud", "champion", "1");
        let e = move_alias(&fake, &follow(), &without_source).await.unwrap_err();
        assert!(matches!(e, MoveError::Unusable { .. }), "{e}");
        let e = move_alias(&fake, &follow(), "9").await.unwrap_err();
        assert!(matches!(&e, MoveError::Registry(r) if r.is_not_found()), "{e}");
        assert_eq!(fake.alias("fraud", "champion").as_deref(), Some("1"), "the alias did not move");
        let v3 = fake.add_version("fraud", "s3://m/3");
        move_alias(&fake, &follow(), &v3).await.unwrap();
        assert_eq!(fake.alias("fraud", "champion").as_deref(), Some("3"));
    }

    #[tokio::test]
    async fn a_candidate_is_registered_once_and_the_alias_moves_to_it() {
        let fake = FakeRegistry::new();
        let v1 = fake.add_version("fraud", "s3://m/1");
        fake.put_alias("fraud", "champion", &v1);
        let new = NewModelVersion {
            name: "fraud".into(),
            source: "s3://m/r-0001".into(),
            run_id: None,
            description: None,
            tags: [(RETRAIN_RUN_TAG.to_string(), "default/p/r-0001".to_string())].into(),
        };
        let v = register_and_promote(&fake, &follow(), &new).await.unwrap();
        assert_eq!(v.version, "2");
        // Again (an operator restart before the status was written): the same version, not a third.
        let again = register_and_promote(&fake, &follow(), &new).await.unwrap();
        assert_eq!(again.version, "2");
        let by_alias = fake.get_model_version_by_alias("fraud", "champion").await.unwrap();
        assert_eq!((by_alias.version.as_str(), by_alias.source.as_deref()), ("2", Some("s3://m/r-0001")));
        assert_eq!(fake.calls().iter().filter(|c| c.starts_with("create_model_version")).count(), 1);
    }
}
