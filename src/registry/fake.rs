//! An in-memory [`Registry`] that answers as MLflow 3.17.2 does (the same error codes and messages as the
//! recordings in `tests/fixtures/mlflow/`), for tests of decisions that read or write the registry.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::Registry;
use super::error::{RegistryError, error_codes};
use super::types::{
    ModelVersion, ModelVersionPage, ModelVersionStatus, NewModelVersion, RegisteredModel, VersionSearch,
};

#[derive(Debug, Default)]
struct Model {
    description: Option<String>,
    created_ms: i64,
    updated_ms: i64,
    tags: BTreeMap<String, String>,
    aliases: BTreeMap<String, String>,
    versions: BTreeMap<u64, ModelVersion>,
}

#[derive(Debug, Default)]
struct State {
    models: BTreeMap<String, Model>,
    /// A logical clock in milliseconds: each write moves it on by one, so timestamps are distinct and stable.
    clock_ms: i64,
    unreachable: bool,
    fail_next: VecDeque<RegistryError>,
    calls: Vec<String>,
}

/// An in-memory model registry.
///
/// Beyond the [`Registry`] calls it can be told to fail ([`FakeRegistry::set_unreachable`],
/// [`FakeRegistry::fail_next`]) and it keeps a log of the calls it was asked to make
/// ([`FakeRegistry::calls`]), so that a test can check what a decision wrote.
#[derive(Debug, Default)]
pub struct FakeRegistry {
    state: Mutex<State>,
}

fn api(call: &str, status: u16, error_code: &str, message: String) -> RegistryError {
    RegistryError::Api { call: call.to_string(), status, error_code: error_code.to_string(), message }
}

fn model_not_found(call: &str, name: &str) -> RegistryError {
    api(call, 404, error_codes::RESOURCE_DOES_NOT_EXIST, format!("Registered Model with name={name} not found"))
}

fn version_not_found(call: &str, name: &str, version: &str) -> RegistryError {
    api(
        call,
        404,
        error_codes::RESOURCE_DOES_NOT_EXIST,
        format!("Model Version (name={name}, version={version}) not found"),
    )
}

fn version_number(call: &str, version: &str) -> Result<u64, RegistryError> {
    version.parse().map_err(|_| {
        api(
            call,
            400,
            error_codes::INVALID_PARAMETER_VALUE,
            format!("Parameter 'version' must be an integer, got '{version}'."),
        )
    })
}

impl State {
    fn tick(&mut self) -> i64 {
        self.clock_ms += 1;
        self.clock_ms
    }

    /// Logs the call and returns the injected failure, if any.
    fn enter(&mut self, call: String) -> Result<(), RegistryError> {
        let name = call.split(' ').next().unwrap_or_default().to_string();
        self.calls.push(call);
        if self.unreachable {
            return Err(RegistryError::Unreachable { call: name, cause: "Connection refused (fake)".into() });
        }
        match self.fail_next.pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn model(&self, call: &str, name: &str) -> Result<&Model, RegistryError> {
        self.models.get(name).ok_or_else(|| model_not_found(call, name))
    }

    /// The version with its current aliases.
    fn version(&self, call: &str, name: &str, version: &str) -> Result<ModelVersion, RegistryError> {
        let number = version_number(call, version)?;
        let model = self.models.get(name).ok_or_else(|| version_not_found(call, name, version))?;
        let mut v = model.versions.get(&number).cloned().ok_or_else(|| version_not_found(call, name, version))?;
        v.aliases = model.aliases.iter().filter(|(_, target)| **target == v.version).map(|(a, _)| a.clone()).collect();
        Ok(v)
    }
}

impl FakeRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed; its state is still readable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// While `unreachable`, every call fails with [`RegistryError::Unreachable`] (and is still logged).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.state().unreachable = unreachable;
    }

    /// The next call fails with `error` (queued: several calls fail in order).
    pub fn fail_next(&self, error: RegistryError) {
        self.state().fail_next.push_back(error);
    }

    /// Every call made so far, in order, as `method arguments...` (e.g. `set_registered_model_alias m champion 2`).
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// Forgets the call log.
    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }

    /// Test set-up without going through the call log: creates the model `name` if needed and registers a
    /// `READY` version with `source`; returns its number.
    pub fn add_version(&self, name: &str, source: &str) -> String {
        let mut s = self.state();
        let now = s.tick();
        let model = s.models.entry(name.to_string()).or_insert_with(|| Model { created_ms: now, ..Model::default() });
        model.updated_ms = now;
        let number = model.versions.keys().next_back().map_or(1, |n| n + 1);
        let mut v = ModelVersion::new(name, number.to_string());
        v.source = (!source.is_empty()).then(|| source.to_string());
        v.status = Some(ModelVersionStatus::Ready);
        v.current_stage = Some("None".into());
        v.creation_timestamp_ms = Some(now);
        v.last_updated_timestamp_ms = Some(now);
        model.versions.insert(number, v);
        number.to_string()
    }

    /// Test set-up without the call log: points `alias` of `name` at `version` (which need not exist, to
    /// model a version deleted behind the alias's back).
    pub fn put_alias(&self, name: &str, alias: &str, version: &str) {
        let mut s = self.state();
        if let Some(m) = s.models.get_mut(name) {
            m.aliases.insert(alias.to_string(), version.to_string());
        }
    }

    /// Test set-up without the call log: deletes version `version` of `name` (its aliases stay, as they would
    /// not in MLflow, so a test can model a race).
    pub fn remove_version(&self, name: &str, version: &str) {
        let mut s = self.state();
        if let (Some(m), Ok(n)) = (s.models.get_mut(name), version.parse::<u64>()) {
            m.versions.remove(&n);
        }
    }

    /// Where alias `alias` of `name` points, read without the call log.
    pub fn alias(&self, name: &str, alias: &str) -> Option<String> {
        self.state().models.get(name).and_then(|m| m.aliases.get(alias).cloned())
    }

    /// The tags of version `version` of `name`, read without the call log.
    pub fn version_tags(&self, name: &str, version: &str) -> BTreeMap<String, String> {
        let s = self.state();
        let n = version.parse::<u64>().ok();
        s.models.get(name).and_then(|m| m.versions.get(&n?)).map(|v| v.tags.clone()).unwrap_or_default()
    }
}

impl Registry for FakeRegistry {
    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel, RegistryError> {
        let mut s = self.state();
        s.enter(format!("get_registered_model {name}"))?;
        let m = s.model("GET registered-models/get", name)?;
        Ok(RegisteredModel {
            name: name.to_string(),
            description: m.description.clone(),
            creation_timestamp_ms: Some(m.created_ms),
            last_updated_timestamp_ms: Some(m.updated_ms),
            tags: m.tags.clone(),
            aliases: m.aliases.clone(),
        })
    }

    async fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel, RegistryError> {
        let mut s = self.state();
        s.enter(format!("create_registered_model {name}"))?;
        if s.models.contains_key(name) {
            return Err(api(
                "POST registered-models/create",
                400,
                error_codes::RESOURCE_ALREADY_EXISTS,
                format!("Registered Model (name={name}) already exists."),
            ));
        }
        let now = s.tick();
        let description = description.filter(|d| !d.is_empty()).map(str::to_string);
        s.models.insert(
            name.to_string(),
            Model { description: description.clone(), created_ms: now, updated_ms: now, ..Model::default() },
        );
        Ok(RegisteredModel {
            name: name.to_string(),
            description,
            creation_timestamp_ms: Some(now),
            last_updated_timestamp_ms: Some(now),
            ..RegisteredModel::default()
        })
    }

    async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion, RegistryError> {
        let mut s = self.state();
        s.enter(format!("get_model_version {name} {version}"))?;
        s.version("GET model-versions/get", name, version)
    }

    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion, RegistryError> {
        const CALL: &str = "GET registered-models/alias";
        let mut s = self.state();
        s.enter(format!("get_model_version_by_alias {name} {alias}"))?;
        let target = s.model(CALL, name)?.aliases.get(alias).cloned().ok_or_else(|| {
            api(CALL, 400, error_codes::INVALID_PARAMETER_VALUE, format!("Registered model alias {alias} not found."))
        })?;
        s.version(CALL, name, &target)
    }

    async fn create_model_version(&self, new: &NewModelVersion) -> Result<ModelVersion, RegistryError> {
        {
            let mut s = self.state();
            s.enter(format!("create_model_version {} {}", new.name, new.source))?;
            s.model("POST model-versions/create", &new.name)?;
        }
        let number = self.add_version(&new.name, &new.source);
        let mut s = self.state();
        let n: u64 = number.parse().unwrap_or_default();
        if let Some(v) = s.models.get_mut(&new.name).and_then(|m| m.versions.get_mut(&n)) {
            v.run_id = new.run_id.clone().filter(|r| !r.is_empty());
            v.description = new.description.clone().filter(|d| !d.is_empty());
            v.tags = new.tags.clone();
        }
        s.version("POST model-versions/create", &new.name, &number)
    }

    async fn set_registered_model_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), RegistryError> {
        const CALL: &str = "POST registered-models/alias";
        let mut s = self.state();
        s.enter(format!("set_registered_model_alias {name} {alias} {version}"))?;
        s.version(CALL, name, version)?;
        let now = s.tick();
        if let Some(m) = s.models.get_mut(name) {
            m.aliases.insert(alias.to_string(), version.to_string());
            m.updated_ms = now;
        }
        Ok(())
    }

    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError> {
        let mut s = self.state();
        s.enter(format!("delete_registered_model_alias {name} {alias}"))?;
        s.model("DELETE registered-models/alias", name)?;
        let now = s.tick();
        if let Some(m) = s.models.get_mut(name) {
            // MLflow answers {} for an alias that does not exist, too.
            m.aliases.remove(alias);
            m.updated_ms = now;
        }
        Ok(())
    }

    async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), RegistryError> {
        let mut s = self.state();
        s.enter(format!("set_model_version_tag {name} {version} {key}={value}"))?;
        s.version("POST model-versions/set-tag", name, version)?;
        let number = version_number("POST model-versions/set-tag", version)?;
        let now = s.tick();
        if let Some(v) = s.models.get_mut(name).and_then(|m| m.versions.get_mut(&number)) {
            v.tags.insert(key.to_string(), value.to_string());
            v.last_updated_timestamp_ms = Some(now);
        }
        Ok(())
    }

    /// Understands the filters `None` and `name='X'`, the order `version_number DESC` (else ascending
    /// versions), `max_results` and its own page tokens.
    async fn search_model_versions(&self, search: &VersionSearch) -> Result<ModelVersionPage, RegistryError> {
        const CALL: &str = "GET model-versions/search";
        let mut s = self.state();
        s.enter(format!("search_model_versions {}", search.filter.as_deref().unwrap_or("")))?;
        let only: Option<&str> = match search.filter.as_deref() {
            None => None,
            Some(f) => match f.strip_prefix("name='").and_then(|r| r.strip_suffix('\'')) {
                Some(name) => Some(name),
                None => {
                    return Err(api(
                        CALL,
                        400,
                        error_codes::INVALID_PARAMETER_VALUE,
                        format!("Invalid clause(s) in filter string: {f}"),
                    ));
                }
            },
        };
        let mut all: Vec<ModelVersion> = Vec::new();
        for (name, model) in &s.models {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            for v in model.versions.values() {
                all.push(s.version(CALL, name, &v.version)?);
            }
        }
        if search.order_by.iter().any(|o| o == "version_number DESC") {
            all.reverse();
        }
        let offset: usize = match search.page_token.as_deref() {
            None => 0,
            Some(t) => t.strip_prefix("offset:").and_then(|n| n.parse().ok()).ok_or_else(|| {
                api(CALL, 400, error_codes::INVALID_PARAMETER_VALUE, format!("Invalid page token: {t}"))
            })?,
        };
        let max = search.max_results.map_or(usize::MAX, |m| usize::try_from(m.max(1)).unwrap_or(usize::MAX));
        let versions: Vec<ModelVersion> = all.iter().skip(offset).take(max).cloned().collect();
        let end = offset + versions.len();
        let next_page_token = (end < all.len()).then(|| format!("offset:{end}"));
        Ok(ModelVersionPage { versions, next_page_token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn follows_aliases_and_keeps_tags() {
        block(async {
            let r = FakeRegistry::new();
            r.create_registered_model("fraud", Some("scores payments")).await.unwrap();
            let v1 = r
                .create_model_version(&NewModelVersion {
                    name: "fraud".into(),
                    source: "s3://m/1".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!((v1.version.as_str(), v1.source.as_deref()), ("1", Some("s3://m/1")));
            assert_eq!(r.add_version("fraud", "s3://m/2"), "2");
            r.set_registered_model_alias("fraud", "champion", "1").await.unwrap();
            assert_eq!(r.get_model_version_by_alias("fraud", "champion").await.unwrap().version, "1");
            r.set_registered_model_alias("fraud", "champion", "2").await.unwrap();
            let v2 = r.get_model_version_by_alias("fraud", "champion").await.unwrap();
            assert_eq!((v2.version.as_str(), v2.aliases.as_slice()), ("2", &["champion".to_string()][..]));
            assert!(r.get_model_version("fraud", "1").await.unwrap().aliases.is_empty());
            r.set_model_version_tag("fraud", "2", "champion.ml/stage", "production").await.unwrap();
            assert_eq!(r.version_tags("fraud", "2").get("champion.ml/stage").map(String::as_str), Some("production"));
            let m = r.get_registered_model("fraud").await.unwrap();
            assert_eq!(m.aliases, BTreeMap::from([("champion".to_string(), "2".to_string())]));
            assert_eq!(m.description.as_deref(), Some("scores payments"));
            r.delete_registered_model_alias("fraud", "champion").await.unwrap();
            r.delete_registered_model_alias("fraud", "champion").await.unwrap(); // as MLflow: no error
            assert_eq!(r.alias("fraud", "champion"), None);
            assert_eq!(r.calls().len(), 11, "{:?}", r.calls());
            assert_eq!(r.calls()[4], "set_registered_model_alias fraud champion 2");
        });
    }

    #[test]
    fn answers_errors_as_mlflow_does() {
        block(async {
            let r = FakeRegistry::new();
            r.add_version("fraud", "s3://m/1");
            let e = r.get_registered_model("nope").await.unwrap_err();
            assert!(e.is_not_found(), "{e}");
            let e = r.get_model_version_by_alias("fraud", "champion").await.unwrap_err();
            assert!(e.is_not_found(), "{e}");
            assert!(
                e.to_string().contains("INVALID_PARAMETER_VALUE: Registered model alias champion not found."),
                "{e}"
            );
            let e = r.set_registered_model_alias("fraud", "champion", "7").await.unwrap_err();
            assert!(e.is_not_found(), "{e}");
            let e = r.get_model_version("fraud", "abc").await.unwrap_err();
            assert!(!e.is_not_found() && e.to_string().contains("must be an integer"), "{e}");
            let e = r.create_registered_model("fraud", None).await.unwrap_err();
            assert!(e.is_already_exists(), "{e}");
            let new = NewModelVersion { name: "nope".into(), source: "s3://x/1".into(), ..Default::default() };
            assert!(r.create_model_version(&new).await.unwrap_err().is_not_found());
            let bogus = VersionSearch { filter: Some("bogus".into()), ..Default::default() };
            let e = r.search_model_versions(&bogus).await.unwrap_err();
            assert!(e.to_string().contains("Invalid clause(s)"), "{e}");
        });
    }

    #[test]
    fn fails_on_request() {
        block(async {
            let r = FakeRegistry::new();
            r.add_version("fraud", "s3://m/1");
            r.set_unreachable(true);
            let e = r.get_model_version("fraud", "1").await.unwrap_err();
            assert!(e.is_unreachable(), "{e}");
            r.set_unreachable(false);
            r.fail_next(RegistryError::Timeout {
                call: "GET model-versions/get".into(),
                after: std::time::Duration::from_secs(1),
            });
            assert_eq!(r.get_model_version("fraud", "1").await.unwrap_err().category(), "timeout");
            assert_eq!(r.get_model_version("fraud", "1").await.unwrap().version, "1");
            assert_eq!(r.calls(), ["get_model_version fraud 1"; 3]);
        });
    }

    #[test]
    fn searches_in_pages() {
        block(async {
            let r = FakeRegistry::new();
            for i in 1..=5 {
                r.add_version("fraud", &format!("s3://m/{i}"));
            }
            r.add_version("other", "s3://o/1");
            let mut search = VersionSearch::of_model("fraud", 2).unwrap();
            let mut seen = Vec::new();
            loop {
                let page = r.search_model_versions(&search).await.unwrap();
                seen.extend(page.versions.iter().map(|v| v.version.clone()));
                match page.next_page_token {
                    Some(t) => search.page_token = Some(t),
                    None => break,
                }
            }
            assert_eq!(seen, ["5", "4", "3", "2", "1"]);
            let all = r.search_model_versions(&VersionSearch::default()).await.unwrap();
            assert_eq!(all.versions.len(), 6);
        });
    }
}
