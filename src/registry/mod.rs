//! The model registry: what a registered model, a model version, an alias and a tag are, the [`Registry`]
//! trait that later decisions are written against, and its two implementations: [`MlflowClient`] (the MLflow
//! REST API 2.0 over HTTP) and [`FakeRegistry`] (in memory, for tests).
//!
//! The tracking server's URL and its token come only from the operator config (`mlflow.trackingUri`,
//! `mlflow.tokenSecretRef`, a Secret in the operator's own namespace, see [`token_from_secret_data`]); a
//! tenant's spec names a model and an alias, never a server.

mod auth;
mod error;
mod fake;
pub mod follow;
mod mlflow;
pub mod sync;
pub mod tracking;
mod types;

pub use auth::{BearerToken, TokenError, token_from_secret_data};
pub use error::{EXCERPT_CHARS, RegistryError, error_codes};
pub use fake::FakeRegistry;
pub use mlflow::{
    MAX_BODY_BYTES, MlflowClient, parse_empty, parse_error, parse_model_version, parse_model_version_page,
    parse_registered_model,
};
pub use types::{ModelVersion, ModelVersionPage, ModelVersionStatus, NewModelVersion, RegisteredModel, VersionSearch};

use std::future::Future;

/// A model registry: the calls Champion makes, in MLflow's terms.
///
/// Every call is one request; none retries (the caller decides, with its own backoff). Errors say whether the
/// registry was not reached ([`RegistryError::is_unreachable`]) or answered that something does not exist
/// ([`RegistryError::is_not_found`]), so that a caller can keep what serves when the registry is down.
pub trait Registry: Send + Sync {
    /// The registered model `name`, with its tags and aliases.
    fn get_registered_model(&self, name: &str) -> impl Future<Output = Result<RegisteredModel, RegistryError>> + Send;

    /// Creates the registered model `name`; fails with `RESOURCE_ALREADY_EXISTS` when it exists.
    fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> impl Future<Output = Result<RegisteredModel, RegistryError>> + Send;

    /// Version `version` (a decimal number such as `"3"`) of the registered model `name`.
    fn get_model_version(
        &self,
        name: &str,
        version: &str,
    ) -> impl Future<Output = Result<ModelVersion, RegistryError>> + Send;

    /// The version that alias `alias` of the registered model `name` points at.
    fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> impl Future<Output = Result<ModelVersion, RegistryError>> + Send;

    /// Registers a new version of an existing registered model; the registry picks its number.
    fn create_model_version(
        &self,
        new: &NewModelVersion,
    ) -> impl Future<Output = Result<ModelVersion, RegistryError>> + Send;

    /// Points alias `alias` of `name` at `version`, moving it if it pointed elsewhere.
    fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Removes alias `alias` of `name`.
    fn delete_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Sets tag `key` of version `version` of `name` to `value`, replacing an earlier value.
    fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// One page of the model versions that `search` selects.
    fn search_model_versions(
        &self,
        search: &VersionSearch,
    ) -> impl Future<Output = Result<ModelVersionPage, RegistryError>> + Send;
}
