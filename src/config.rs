//! The operator's own configuration file: metric providers by name, the MLflow tracking server, and
//! the namespaces to watch. Tenants pick a provider by name; URLs never come from a spec.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The name a spec gets when it names no provider.
pub const DEFAULT_PROVIDER: &str = "default";

/// The parsed operator config file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorConfig {
    /// Prometheus providers: name → base URL (`http://prometheus.monitoring:9090`).
    #[serde(default)]
    pub prometheus: BTreeMap<String, String>,
    /// The MLflow tracking server, when one is used.
    #[serde(default)]
    pub mlflow: Option<MlflowConfig>,
    /// Namespaces to watch; empty means all namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Timeout of one metric query, e.g. `10s` (default 10s).
    #[serde(default)]
    pub query_timeout: Option<String>,
    /// The built-in router (`traffic.router: builtin`).
    #[serde(default)]
    pub router: Option<RouterSettings>,
}

/// How the built-in router is deployed and measured.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouterSettings {
    /// The `champion-router` image (default [`DEFAULT_ROUTER_IMAGE`]).
    #[serde(default)]
    pub image: Option<String>,
    /// The Prometheus provider the built-in metrics are read from (default `default`).
    #[serde(default)]
    pub provider: Option<String>,
}

/// The router image when the config names none: the one released with this operator.
pub const DEFAULT_ROUTER_IMAGE: &str = concat!("ghcr.io/champion-ml/champion-router:", env!("CARGO_PKG_VERSION"));

impl OperatorConfig {
    /// The router image to deploy.
    pub fn router_image(&self) -> &str {
        self.router.as_ref().and_then(|r| r.image.as_deref()).unwrap_or(DEFAULT_ROUTER_IMAGE)
    }

    /// The Prometheus provider of the built-in metrics.
    pub fn router_provider(&self) -> Option<&str> {
        self.router.as_ref().and_then(|r| r.provider.as_deref())
    }
}

/// Where the MLflow tracking server is, and how the operator authenticates to it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MlflowConfig {
    /// The tracking server's base URL.
    pub tracking_uri: String,
    /// A Secret in the operator's own namespace whose key holds a token, sent as `Authorization: Bearer`
    /// (see `registry::token_from_secret_data`); none means no credentials.
    #[serde(default)]
    pub token_secret_ref: Option<SecretKeyRef>,
    /// How often a followed alias is read, e.g. `30s` (the default; at least 1s). Each ModelDeployment's
    /// polls are spread by up to a tenth more; `kubectl champion refresh` reads at once.
    #[serde(default)]
    pub poll_interval: Option<String>,
    /// Timeout of one registry call, e.g. `10s` (the default).
    #[serde(default)]
    pub request_timeout: Option<String>,
    /// The tracking server's URL as retraining Jobs reach it (`MLFLOW_TRACKING_URI`), when it differs from
    /// `trackingUri` (default: `trackingUri`). Jobs get no credentials from the operator.
    #[serde(default)]
    pub job_tracking_uri: Option<String>,
    /// Whether retraining runs are tracked as MLflow runs (default true).
    #[serde(default)]
    pub track_retraining: Option<bool>,
}

impl MlflowConfig {
    /// `pollInterval`, or its default.
    pub fn poll_interval(&self) -> std::time::Duration {
        self.poll_interval
            .as_deref()
            .and_then(|t| crate::api::duration::parse_duration(t).ok())
            .unwrap_or(crate::registry::follow::DEFAULT_POLL_INTERVAL)
            .max(std::time::Duration::from_secs(1))
    }

    /// `requestTimeout`, or its default.
    pub fn request_timeout(&self) -> std::time::Duration {
        self.request_timeout
            .as_deref()
            .and_then(|t| crate::api::duration::parse_duration(t).ok())
            .unwrap_or(std::time::Duration::from_secs(10))
    }
}

/// One key of a Secret in the operator's own namespace.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key in the Secret's data.
    pub key: String,
}

/// Why the config file was refused; the message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file's path.
        path: String,
        /// The parser's message, with the line and column.
        message: String,
    },
    /// A field has a value the operator cannot use.
    #[error("config file {path}: field `{field}`: {message}")]
    Field {
        /// The file's path.
        path: String,
        /// The field, as a path such as `prometheus.default`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl OperatorConfig {
    /// Reads and checks the config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    /// Parses and checks config text; `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: OperatorConfig = if text.trim().is_empty() {
            OperatorConfig::default()
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| ConfigError::Parse { path: origin.to_string(), message: e.to_string() })?
        };
        config.check().map_err(|(field, message)| ConfigError::Field { path: origin.to_string(), field, message })?;
        Ok(config)
    }

    /// The checks serde cannot make: URLs, namespace names, the timeout.
    fn check(&self) -> Result<(), (String, String)> {
        for (name, url) in &self.prometheus {
            if !is_dns_label(name) {
                return Err((format!("prometheus.{name}"), "provider names are lowercase DNS labels".into()));
            }
            check_http_url(url).map_err(|m| (format!("prometheus.{name}"), m))?;
        }
        if let Some(mlflow) = &self.mlflow {
            check_http_url(&mlflow.tracking_uri).map_err(|m| ("mlflow.trackingUri".to_string(), m))?;
            if let Some(u) = &mlflow.job_tracking_uri {
                check_http_url(u).map_err(|m| ("mlflow.jobTrackingUri".to_string(), m))?;
            }
            if let Some(secret) = &mlflow.token_secret_ref {
                if !is_dns_subdomain(&secret.name) {
                    return Err((
                        "mlflow.tokenSecretRef.name".into(),
                        format!("{:?} is not a valid Secret name", secret.name),
                    ));
                }
                if !is_secret_key(&secret.key) {
                    return Err((
                        "mlflow.tokenSecretRef.key".into(),
                        format!("{:?} is not a valid Secret key (letters, digits, '-', '_', '.')", secret.key),
                    ));
                }
            }
            for (field, value) in [("pollInterval", &mlflow.poll_interval), ("requestTimeout", &mlflow.request_timeout)]
            {
                if let Some(t) = value {
                    let d = crate::api::duration::parse_duration(t)
                        .map_err(|e| (format!("mlflow.{field}"), e.to_string()))?;
                    if d < std::time::Duration::from_secs(1) {
                        return Err((format!("mlflow.{field}"), format!("{t:?} is shorter than 1s")));
                    }
                }
            }
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            if !is_dns_label(ns) {
                return Err((format!("namespaces[{i}]"), format!("{ns:?} is not a valid namespace name")));
            }
        }
        if let Some(t) = &self.query_timeout {
            crate::api::duration::parse_duration(t).map_err(|e| ("queryTimeout".to_string(), e.to_string()))?;
        }
        Ok(())
    }

    /// The base URL of a Prometheus provider by name (`None` picks `default`).
    pub fn prometheus_url(&self, provider: Option<&str>) -> Option<&str> {
        self.provider_url(provider).ok()
    }

    /// The base URL of a Prometheus provider by name (`None` picks `default`), or the error that
    /// validation and measurement both report.
    pub fn provider_url(&self, provider: Option<&str>) -> Result<&str, UnknownProvider> {
        let name = provider.unwrap_or(DEFAULT_PROVIDER);
        self.prometheus.get(name).map(String::as_str).ok_or_else(|| UnknownProvider {
            name: name.to_string(),
            configured: self.prometheus.keys().cloned().collect(),
        })
    }

    /// The metric query timeout.
    pub fn query_timeout(&self) -> std::time::Duration {
        self.query_timeout
            .as_deref()
            .and_then(|t| crate::api::duration::parse_duration(t).ok())
            .unwrap_or(std::time::Duration::from_secs(10))
    }
}

/// A spec names a Prometheus provider the operator config does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no Prometheus provider named {name:?} in the operator config (configured: {})",
    if configured.is_empty() { "none".to_string() } else { configured.join(", ") }
)]
pub struct UnknownProvider {
    /// The name asked for (`default` when the spec names none).
    pub name: String,
    /// The names the config has.
    pub configured: Vec<String>,
}

/// Whether `s` is a lowercase RFC 1123 label (namespace names, provider names).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a lowercase RFC 1123 subdomain (Secret names).
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Whether `s` can be a key of a Secret's data.
fn is_secret_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s != "."
        && s != ".."
}

fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = OperatorConfig::parse(
            "prometheus:\n  default: http://prometheus.monitoring:9090\n  long-term: https://thanos:10902/\n\
             mlflow:\n  trackingUri: http://mlflow:5000\nnamespaces: [ml, fraud]\nqueryTimeout: 5s\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.prometheus_url(None), Some("http://prometheus.monitoring:9090"));
        assert_eq!(c.prometheus_url(Some("long-term")), Some("https://thanos:10902/"));
        assert_eq!(c.prometheus_url(Some("missing")), None);
        assert_eq!(c.namespaces, vec!["ml", "fraud"]);
        assert_eq!(c.query_timeout(), std::time::Duration::from_secs(5));
        let mlflow = c.mlflow.unwrap();
        assert_eq!(mlflow.tracking_uri, "http://mlflow:5000");
        assert_eq!(mlflow.token_secret_ref, None);
    }

    #[test]
    fn parses_an_mlflow_token_secret_ref() {
        let c = OperatorConfig::parse(
            "mlflow:\n  trackingUri: https://mlflow.example\n  tokenSecretRef: {name: mlflow-token, key: token}\n",
            "c.yaml",
        )
        .unwrap();
        let secret = c.mlflow.unwrap().token_secret_ref.unwrap();
        assert_eq!(secret, SecretKeyRef { name: "mlflow-token".into(), key: "token".into() });
    }

    #[test]
    fn empty_file_means_defaults() {
        assert_eq!(OperatorConfig::parse("", "c.yaml").unwrap(), OperatorConfig::default());
    }

    #[test]
    fn bad_configs_name_the_field() {
        let table = [
            ("prometheus:\n  default: prometheus:9090\n", "prometheus.default"),
            ("prometheus:\n  Default: http://p:9090\n", "prometheus.Default"),
            ("mlflow:\n  trackingUri: ftp://x\n", "mlflow.trackingUri"),
            (
                "mlflow:\n  trackingUri: http://m\n  tokenSecretRef: {name: Bad_Name, key: token}\n",
                "mlflow.tokenSecretRef.name",
            ),
            (
                "mlflow:\n  trackingUri: http://m\n  tokenSecretRef: {name: ok, key: 'a/b'}\n",
                "mlflow.tokenSecretRef.key",
            ),
            ("mlflow:\n  trackingUri: http://m\n  tokenSecretRef: {name: ok}\n", "key"),
            ("mlflow:\n  trackingUri: http://m\n  token: abc\n", "token"),
            ("mlflow:\n  trackingUri: http://m\n  pollInterval: 500ms\n", "mlflow.pollInterval"),
            ("mlflow:\n  trackingUri: http://m\n  requestTimeout: soon\n", "mlflow.requestTimeout"),
            ("namespaces: [ml, Bad_NS]\n", "namespaces[1]"),
            ("queryTimeout: soon\n", "queryTimeout"),
            ("prometheus: {default: http://p:9090}\nnamspaces: [ml]\n", "namspaces"),
            ("namespaces: ml\n", "namespaces"),
        ];
        for (text, field) in table {
            let err = OperatorConfig::parse(text, "c.yaml").unwrap_err().to_string();
            assert!(err.contains(field), "{text:?}: {err}");
            assert!(err.contains("c.yaml"), "{err}");
        }
    }
}
