//! The registry's objects as Champion uses them, independent of MLflow's JSON (see `mlflow::wire` for that).

use std::collections::BTreeMap;

/// A registered model: a name under which versions are registered, with tags and aliases.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RegisteredModel {
    /// The model's unique name.
    pub name: String,
    /// Its description, when it has one.
    pub description: Option<String>,
    /// When it was created, in milliseconds since the Unix epoch.
    pub creation_timestamp_ms: Option<i64>,
    /// When its metadata last changed, in milliseconds since the Unix epoch.
    pub last_updated_timestamp_ms: Option<i64>,
    /// Its tags, key → value.
    pub tags: BTreeMap<String, String>,
    /// Its aliases, alias → the version number it points at.
    pub aliases: BTreeMap<String, String>,
}

/// Where a model version is in its registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelVersionStatus {
    /// The registry still copies or checks the version's files (`PENDING_REGISTRATION`).
    PendingRegistration,
    /// Registration failed (`FAILED_REGISTRATION`); `status_message` says why.
    FailedRegistration,
    /// The version can be used (`READY`).
    Ready,
    /// A status this client does not know, as the registry spelled it.
    Other(String),
}

impl ModelVersionStatus {
    /// The status of MLflow's spelling (`READY`, ...).
    pub fn from_mlflow(s: &str) -> Self {
        match s {
            "PENDING_REGISTRATION" => Self::PendingRegistration,
            "FAILED_REGISTRATION" => Self::FailedRegistration,
            "READY" => Self::Ready,
            other => Self::Other(other.to_string()),
        }
    }

    /// MLflow's spelling of the status.
    pub fn as_mlflow(&self) -> &str {
        match self {
            Self::PendingRegistration => "PENDING_REGISTRATION",
            Self::FailedRegistration => "FAILED_REGISTRATION",
            Self::Ready => "READY",
            Self::Other(s) => s,
        }
    }
}

/// One version of a registered model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelVersion {
    /// The registered model's name.
    pub name: String,
    /// The version number, as the registry writes it (a decimal number such as `"3"`).
    pub version: String,
    /// Where the version's files are (`s3://…`, `gs://…`, `runs:/…`, `models:/…`, a path); `None` when the
    /// registry has none (an empty `source` counts as none).
    pub source: Option<String>,
    /// The run that produced it, when the registry knows one.
    pub run_id: Option<String>,
    /// Where it is in its registration; `None` when the registry did not say.
    pub status: Option<ModelVersionStatus>,
    /// Details of a pending or failed status.
    pub status_message: Option<String>,
    /// Its legacy stage (`None`, `Staging`, `Production`, `Archived`); Champion uses aliases instead.
    pub current_stage: Option<String>,
    /// Its description, when it has one.
    pub description: Option<String>,
    /// When it was created, in milliseconds since the Unix epoch.
    pub creation_timestamp_ms: Option<i64>,
    /// When its metadata last changed, in milliseconds since the Unix epoch.
    pub last_updated_timestamp_ms: Option<i64>,
    /// Its tags, key → value.
    pub tags: BTreeMap<String, String>,
    /// The aliases that point at it, sorted.
    pub aliases: Vec<String>,
}

impl ModelVersion {
    /// A version with only a name and a number (every other field empty), for builders and fakes.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            source: None,
            run_id: None,
            status: None,
            status_message: None,
            current_stage: None,
            description: None,
            creation_timestamp_ms: None,
            last_updated_timestamp_ms: None,
            tags: BTreeMap::new(),
            aliases: Vec::new(),
        }
    }

    /// The version number as a number, when it is one (MLflow's always are).
    pub fn number(&self) -> Option<u64> {
        self.version.parse().ok()
    }
}

/// What [`crate::registry::Registry::create_model_version`] registers.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewModelVersion {
    /// The registered model, which must exist.
    pub name: String,
    /// Where the version's files are.
    pub source: String,
    /// The run that produced it, if any.
    pub run_id: Option<String>,
    /// A description, if any.
    pub description: Option<String>,
    /// Tags set at creation, key → value.
    pub tags: BTreeMap<String, String>,
}

/// A search of model versions (`/model-versions/search`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VersionSearch {
    /// MLflow's filter expression, e.g. `name='fraud'` (see [`VersionSearch::of_model`]); `None` selects all.
    pub filter: Option<String>,
    /// At most this many versions in the page; `None` leaves it to the registry.
    pub max_results: Option<i64>,
    /// Sort keys such as `version_number DESC`.
    pub order_by: Vec<String>,
    /// The `next_page_token` of the page before, to read the next one.
    pub page_token: Option<String>,
}

impl VersionSearch {
    /// All versions of the registered model `name`, newest first, at most `max_results` per page.
    ///
    /// `None` when `name` contains a quote or a backslash, which MLflow's filter syntax cannot carry safely.
    pub fn of_model(name: &str, max_results: i64) -> Option<Self> {
        if name.contains(['\'', '"', '\\']) {
            return None;
        }
        Some(Self {
            filter: Some(format!("name='{name}'")),
            max_results: Some(max_results),
            order_by: vec!["version_number DESC".to_string()],
            page_token: None,
        })
    }
}

/// One page of a model version search.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ModelVersionPage {
    /// The versions of this page, in the registry's order.
    pub versions: Vec<ModelVersion>,
    /// The token for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in ["READY", "PENDING_REGISTRATION", "FAILED_REGISTRATION", "ARCHIVED_SOMEHOW"] {
            assert_eq!(ModelVersionStatus::from_mlflow(s).as_mlflow(), s);
        }
        assert_eq!(ModelVersionStatus::from_mlflow("READY"), ModelVersionStatus::Ready);
        assert_eq!(ModelVersionStatus::from_mlflow("ready"), ModelVersionStatus::Other("ready".into()));
    }

    #[test]
    fn searches_of_a_model() {
        let s = VersionSearch::of_model("fraud-detector", 50).unwrap();
        assert_eq!(s.filter.as_deref(), Some("name='fraud-detector'"));
        assert_eq!(s.max_results, Some(50));
        assert_eq!(s.order_by, ["version_number DESC"]);
        for bad in ["it's", "a\"b", "a\\b"] {
            assert_eq!(VersionSearch::of_model(bad, 50), None, "{bad}");
        }
    }

    #[test]
    fn version_numbers() {
        assert_eq!(ModelVersion::new("m", "12").number(), Some(12));
        assert_eq!(ModelVersion::new("m", "v1").number(), None);
    }
}
