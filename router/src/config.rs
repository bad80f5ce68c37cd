//! The router's configuration: the document the operator writes into the router's ConfigMap, and the router reads
//! from a file (JSON or YAML) and reloads when it changes.
//!
//! These types depend on serde only, so the operator can build them without the proxy (`default-features = false`).
//! Fields are camelCase like the CRDs; new fields are optional with a default, so an older router still reads a newer
//! operator's document (unknown fields are ignored).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::compare::FieldPath;

/// The whole configuration of one router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterConfig {
    /// The live backends (variants); each request goes to exactly one of them. At least one must have a weight above 0.
    pub backends: Vec<Backend>,
    /// Sticky assignment: requests that carry this header go to the backend its value hashes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    /// Shadow backends that receive copies of a share of the requests; their answers are compared, never returned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<Shadow>,
    /// How a shadow's JSON answer is compared with the live one. Without it shadows are only counted by status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// Where and how each prediction is logged.
    #[serde(default)]
    pub prediction_log: PredictionLog,
    /// The ground-truth feedback window.
    #[serde(default)]
    pub feedback: Feedback,
    /// Limits on the calls to live backends.
    #[serde(default)]
    pub upstream: Upstream,
}

/// A live backend: one variant of the model, reached at one address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// The variant's name (for example `stable` or `candidate`); it is the `variant` label of the metrics and the
    /// `variant` of the prediction log. Unique among backends and shadows.
    pub name: String,
    /// Where the backend listens: `host:port` or `http://host:port` (plain HTTP; HTTP/2 without TLS when the client
    /// spoke HTTP/2).
    pub address: String,
    /// The relative weight of this backend in the split; the share is `weight / sum of weights`. 0 takes no traffic.
    pub weight: u32,
    /// The model version this backend serves, written to the prediction log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
}

/// Sticky assignment by a request header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sticky {
    /// The header whose value picks the backend (for example `x-user-id`). Requests without it are split by weight.
    pub header: String,
}

/// A shadow backend: it receives copies of requests asynchronously, and its answers are compared with the live ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shadow {
    /// The shadow's name; it is the `shadow` label of the metrics. Unique among backends and shadows.
    pub name: String,
    /// Where the shadow listens: `host:port` or `http://host:port`.
    pub address: String,
    /// The model version this shadow serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// The share of requests copied to this shadow, 0 to 100. 0 (the default) copies nothing.
    #[serde(default)]
    pub mirror_percent: f64,
    /// At most this many copies in flight to this shadow; a copy that finds the cap full is dropped and counted.
    #[serde(default = "default_shadow_concurrency")]
    pub max_concurrency: u32,
    /// Requests with a larger body are not copied (counted as dropped); shadow and live answers larger than this
    /// are not compared.
    #[serde(default = "default_shadow_body_bytes")]
    pub max_body_bytes: u64,
    /// A copy that has no complete answer after this many milliseconds is abandoned and counted as failed.
    #[serde(default = "default_shadow_timeout_ms")]
    pub timeout_ms: u64,
}

/// Where the compared value sits in a JSON answer, and how two values are compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// The field compared: a dotted path (`predictions.0`, array indices as numbers) or a JSON pointer
    /// (`/predictions/0`). Empty compares the whole document.
    pub path: String,
    /// The comparison itself.
    #[serde(flatten)]
    pub mode: CompareMode,
}

/// How a live and a shadow value are judged to agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum CompareMode {
    /// The two JSON values are equal (numbers compared as numbers, so `1` equals `1.0`).
    Exact,
    /// Numbers, or arrays of numbers of the same shape: they agree when the largest absolute difference is at most
    /// `tolerance`. The difference goes into the per-shadow histogram.
    Numeric {
        /// The largest absolute difference that still agrees.
        #[serde(default)]
        tolerance: f64,
    },
    /// Classifier outputs: the sets of the `k` best labels agree (order ignored). A value can be an object of
    /// label → score, an array of scores (the label is the index), an array of labels best first, or one label.
    TopK {
        /// How many of the best labels are compared; 1 compares the arg-max.
        #[serde(default = "default_k")]
        k: u32,
    },
}

/// The prediction log: one JSON line per prediction (and per feedback joined with one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PredictionLog {
    /// Where the lines go.
    #[serde(default)]
    pub destination: LogDestination,
    /// A log file is rotated when it grows beyond this many bytes (to `<path>.1`, the older ones shifted).
    #[serde(default = "default_rotate_bytes")]
    pub rotate_bytes: u64,
    /// How many rotated files are kept besides the current one.
    #[serde(default = "default_keep_files")]
    pub keep_files: u32,
    /// The share of predictions, 0 to 100, whose request and response bodies are written to the log. 0 by default.
    #[serde(default)]
    pub body_sample_percent: f64,
    /// A logged body is cut to this many bytes (and marked truncated).
    #[serde(default = "default_log_body_bytes")]
    pub max_body_bytes: u64,
}

/// Where the prediction log is written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogDestination {
    /// Standard output (the router's own messages go to standard error).
    #[default]
    Stdout,
    /// Nowhere: the log is off.
    None,
    /// A file, appended to and rotated by size: `{file: /var/log/champion/predictions.jsonl}`.
    File(String),
}

/// Ground-truth feedback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    /// How many recent predictions are kept to join feedback with; older ones are forgotten, and feedback for them is
    /// counted as unmatched (and still logged). 0 turns the window off.
    #[serde(default = "default_window")]
    pub window_size: u32,
    /// Where the predicted label sits in a live answer, to judge a feedback `label` correct or not (same syntax as
    /// `comparison.path`). Defaults to `comparison.path`; without either, only rewards are scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_path: Option<String>,
}

/// Limits on calls to live backends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Upstream {
    /// A live backend that sends no response headers within this many milliseconds is answered with 504.
    #[serde(default = "default_upstream_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_shadow_concurrency() -> u32 {
    64
}
fn default_shadow_body_bytes() -> u64 {
    1 << 20
}
fn default_shadow_timeout_ms() -> u64 {
    10_000
}
fn default_k() -> u32 {
    1
}
fn default_rotate_bytes() -> u64 {
    100 << 20
}
fn default_keep_files() -> u32 {
    3
}
fn default_log_body_bytes() -> u64 {
    4096
}
fn default_window() -> u32 {
    50_000
}
fn default_upstream_timeout_ms() -> u64 {
    30_000
}

impl Default for PredictionLog {
    fn default() -> Self {
        PredictionLog {
            destination: LogDestination::default(),
            rotate_bytes: default_rotate_bytes(),
            keep_files: default_keep_files(),
            body_sample_percent: 0.0,
            max_body_bytes: default_log_body_bytes(),
        }
    }
}

impl Default for Feedback {
    fn default() -> Self {
        Feedback { window_size: default_window(), label_path: None }
    }
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream { timeout_ms: default_upstream_timeout_ms() }
    }
}

/// A configuration that could not be read: the text is not JSON/YAML of this shape, or a field is invalid.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// The text does not parse.
    Parse(String),
    /// The document parses but breaks these rules.
    Invalid(Vec<FieldError>),
}

/// One broken rule, with the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, as a path such as `backends[1].address`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Parse(e) => write!(f, "the configuration does not parse: {e}"),
            ConfigError::Invalid(errors) => {
                write!(f, "the configuration is invalid: ")?;
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        write!(f, "; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl RouterConfig {
    /// Parses a JSON or YAML document (JSON when it starts with `{`) and validates it.
    pub fn parse(text: &str) -> Result<RouterConfig, ConfigError> {
        let config: RouterConfig = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?
        };
        config.validate().map_err(ConfigError::Invalid)?;
        Ok(config)
    }

    /// Checks every rule a document must follow beyond its shape; all broken rules are returned at once.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut err = |field: String, message: &str| errors.push(FieldError { field, message: message.to_string() });
        let mut names = BTreeSet::new();
        if self.backends.is_empty() {
            err("backends".into(), "at least one backend is required");
        } else if self.backends.iter().all(|b| b.weight == 0) {
            err("backends".into(), "at least one backend needs a weight above 0");
        }
        for (i, b) in self.backends.iter().enumerate() {
            if let Some(m) = name_problem(&b.name) {
                err(format!("backends[{i}].name"), m);
            } else if !names.insert(b.name.as_str()) {
                err(format!("backends[{i}].name"), "the name is used twice");
            }
            if let Some(m) = address_problem(&b.address) {
                err(format!("backends[{i}].address"), m);
            }
        }
        for (i, s) in self.shadows.iter().enumerate() {
            if let Some(m) = name_problem(&s.name) {
                err(format!("shadows[{i}].name"), m);
            } else if !names.insert(s.name.as_str()) {
                err(format!("shadows[{i}].name"), "the name is used twice");
            }
            if let Some(m) = address_problem(&s.address) {
                err(format!("shadows[{i}].address"), m);
            }
            if !(0.0..=100.0).contains(&s.mirror_percent) {
                err(format!("shadows[{i}].mirrorPercent"), "must be between 0 and 100");
            }
            if s.max_concurrency == 0 {
                err(format!("shadows[{i}].maxConcurrency"), "must be at least 1");
            }
        }
        if let Some(sticky) = &self.sticky
            && (sticky.header.is_empty() || !sticky.header.bytes().all(is_header_name_byte))
        {
            err("sticky.header".into(), "must be a lower-case HTTP header name");
        }
        if let Some(c) = &self.comparison {
            if let Err(e) = FieldPath::parse(&c.path) {
                err("comparison.path".into(), &e);
            }
            match c.mode {
                CompareMode::Numeric { tolerance } if !(tolerance >= 0.0 && tolerance.is_finite()) => {
                    err("comparison.tolerance".into(), "must be a finite number of at least 0")
                }
                CompareMode::TopK { k: 0 } => err("comparison.k".into(), "must be at least 1"),
                _ => {}
            }
        }
        if let Some(path) = &self.feedback.label_path
            && let Err(e) = FieldPath::parse(path)
        {
            err("feedback.labelPath".into(), &e);
        }
        let log = &self.prediction_log;
        if !(0.0..=100.0).contains(&log.body_sample_percent) {
            err("predictionLog.bodySamplePercent".into(), "must be between 0 and 100");
        }
        if let LogDestination::File(path) = &log.destination
            && path.is_empty()
        {
            err("predictionLog.destination.file".into(), "must be a path");
        }
        if log.rotate_bytes == 0 {
            err("predictionLog.rotateBytes".into(), "must be at least 1");
        }
        if self.upstream.timeout_ms == 0 {
            err("upstream.timeoutMs".into(), "must be at least 1");
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// The path of the predicted label in a live answer: `feedback.labelPath`, else `comparison.path`.
    pub fn label_path(&self) -> Option<&str> {
        self.feedback.label_path.as_deref().or(self.comparison.as_ref().map(|c| c.path.as_str()))
    }
}

/// The `host:port` part of an address given as `host:port` or `http://host:port`.
pub fn authority_of(address: &str) -> &str {
    address.strip_prefix("http://").unwrap_or(address).trim_end_matches('/')
}

fn address_problem(address: &str) -> Option<&'static str> {
    if address.starts_with("https://") {
        return Some("https is not supported; use host:port or http://host:port");
    }
    let authority = authority_of(address);
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Some("must be host:port or http://host:port");
    };
    if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
        return Some("must be host:port or http://host:port");
    }
    None
}

/// Names become metric label values and log fields: short, printable, no spaces.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 63 {
        Some("must be 1 to 63 characters")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        Some("may hold only letters, digits, '-', '_' and '.'")
    } else {
        None
    }
}

fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
backends:
- {name: stable, address: "stable.ml:8080", weight: 90, modelVersion: "2.0.0"}
- {name: candidate, address: "http://candidate.ml:8080", weight: 10, modelVersion: "2.1.0"}
sticky: {header: x-user-id}
shadows:
- name: next
  address: next.ml:8080
  mirrorPercent: 25
comparison: {path: predictions.0, mode: numeric, tolerance: 0.01}
predictionLog:
  destination: {file: /var/log/p.jsonl}
  bodySamplePercent: 1
feedback: {windowSize: 1000}
"#;

    #[test]
    fn yaml_parses_with_defaults_filled() {
        let c = RouterConfig::parse(YAML).unwrap();
        assert_eq!(c.backends.len(), 2);
        assert_eq!(c.backends[1].model_version.as_deref(), Some("2.1.0"));
        assert_eq!(c.sticky.as_ref().unwrap().header, "x-user-id");
        let s = &c.shadows[0];
        assert_eq!((s.mirror_percent, s.max_concurrency, s.max_body_bytes), (25.0, 64, 1 << 20));
        assert_eq!(c.comparison.as_ref().unwrap().mode, CompareMode::Numeric { tolerance: 0.01 });
        assert_eq!(c.prediction_log.destination, LogDestination::File("/var/log/p.jsonl".into()));
        assert_eq!(c.prediction_log.max_body_bytes, 4096);
        assert_eq!(c.feedback.window_size, 1000);
        assert_eq!(c.label_path(), Some("predictions.0"));
        assert_eq!(c.upstream.timeout_ms, 30_000);
    }

    #[test]
    fn json_round_trips() {
        let c = RouterConfig::parse(YAML).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""mode":"numeric","tolerance":0.01"#), "{json}");
        assert!(json.contains(r#""destination":{"file":"/var/log/p.jsonl"}"#), "{json}");
        assert_eq!(RouterConfig::parse(&json).unwrap(), c);
    }

    #[test]
    fn mirror_percent_defaults_to_zero_and_modes_parse() {
        let c = RouterConfig::parse(
            "backends: [{name: a, address: 'a:1', weight: 1}]\nshadows: [{name: s, address: 's:1'}]\n\
             comparison: {path: /predictions/0, mode: topK, k: 3}\npredictionLog: {destination: none}\n",
        )
        .unwrap();
        assert_eq!(c.shadows[0].mirror_percent, 0.0);
        assert_eq!(c.comparison.unwrap().mode, CompareMode::TopK { k: 3 });
        assert_eq!(c.prediction_log.destination, LogDestination::None);
        let c = RouterConfig::parse(
            r#"{"backends":[{"name":"a","address":"a:1","weight":1}],"comparison":{"path":"","mode":"exact"}}"#,
        )
        .unwrap();
        assert_eq!(c.comparison.unwrap().mode, CompareMode::Exact);
    }

    #[test]
    fn invalid_documents_list_every_broken_field() {
        let table: &[(&str, &[&str])] = &[
            ("backends: []", &["backends"]),
            ("backends: [{name: a, address: 'a:1', weight: 0}]", &["backends"]),
            (
                "backends: [{name: a, address: 'nope', weight: 1}, {name: a, address: 'https://b:1', weight: 1}]",
                &["backends[0].address", "backends[1].name", "backends[1].address"],
            ),
            (
                "backends: [{name: 'a b', address: 'a:1', weight: 1}]\nshadows: [{name: s, address: 's:1', mirrorPercent: 101, maxConcurrency: 0}]",
                &["backends[0].name", "shadows[0].mirrorPercent", "shadows[0].maxConcurrency"],
            ),
            (
                "backends: [{name: a, address: 'a:1', weight: 1}]\nsticky: {header: 'X User'}\ncomparison: {path: 'a..b', mode: topK, k: 0}",
                &["sticky.header", "comparison.path", "comparison.k"],
            ),
            (
                "backends: [{name: a, address: 'a:1', weight: 1}]\ncomparison: {path: a, mode: numeric, tolerance: -1}\npredictionLog: {bodySamplePercent: 200}",
                &["comparison.tolerance", "predictionLog.bodySamplePercent"],
            ),
        ];
        for (text, fields) in table {
            match RouterConfig::parse(text) {
                Err(ConfigError::Invalid(errors)) => {
                    let got: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                    assert_eq!(&got, fields, "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // A valid document passes the same check.
        assert!(RouterConfig::parse("backends: [{name: a, address: 'a:1', weight: 1}]").is_ok());
    }

    #[test]
    fn bad_text_is_a_parse_error() {
        assert!(matches!(RouterConfig::parse("{not json"), Err(ConfigError::Parse(_))));
        assert!(matches!(RouterConfig::parse("backends: 3"), Err(ConfigError::Parse(_))));
    }
}
