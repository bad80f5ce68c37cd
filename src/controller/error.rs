//! The controllers' error type; `category()` labels the failure metric with a fixed set of values.

/// A transient failure of a reconcile; retried with per-object backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a call.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be (de)serialized.
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// A metric provider could not be queried.
    #[error("metric provider: {0}")]
    Provider(String),
    /// A generated object could not be applied or deleted.
    #[error("{0}")]
    Apply(#[from] crate::controller::model_deployment::apply::ApplyError),
}

impl Error {
    /// A short fixed label for metrics: `kube`, `serialization`, `provider` or `apply`.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Serialization(_) => "serialization",
            Error::Provider(_) => "provider",
            Error::Apply(_) => "apply",
        }
    }
}

/// The controllers' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
