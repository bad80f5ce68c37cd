//! The MLflow REST API 2.0 (`/api/2.0/mlflow/...`) for registered models, model versions, aliases and tags.
//!
//! The `parse_*` functions are pure and hold every rule about MLflow's JSON (the `wire` types);
//! [`MlflowClient`] only sends the request, bounds its time and size and hands the body to them. The answers
//! the tests parse were recorded from a real MLflow 3.17.2 (`tests/fixtures/mlflow/`, `record.sh` there).
//!
//! Observed on MLflow 3.17.2 (and relied on here): GET calls take query parameters, POST and DELETE a JSON
//! body (a DELETE with query parameters is refused); writes answer `{}`; empty strings stand for "none"
//! (`run_id`, `description`, `run_link`); errors are `{"error_code", "message"}` with 400 or 404, except that
//! an unknown endpoint answers an HTML 404; and a missing alias answers 400 `INVALID_PARAMETER_VALUE`
//! ("Registered model alias X not found."), not `RESOURCE_DOES_NOT_EXIST` (see
//! [`RegistryError::is_not_found`]).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Registry;
use super::auth::BearerToken;
use super::error::{RegistryError, excerpt, short};
use super::types::{
    ModelVersion, ModelVersionPage, ModelVersionStatus, NewModelVersion, RegisteredModel, VersionSearch,
};

/// The largest response body read (4 MiB): a page of a hundred versions with their tags is far smaller.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

const USER_AGENT: &str = concat!("champion/", env!("CARGO_PKG_VERSION"));

/// MLflow's JSON, field by field as 3.17.2 sends it; unknown fields are ignored, so newer servers parse.
pub(crate) mod wire {
    use serde::Deserialize;

    /// An int64 that MLflow writes as a number (and protobuf JSON as a string).
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Int {
        /// `1796119607522`
        Number(i64),
        /// `"1796119607522"`
        Text(String),
    }

    impl Int {
        pub fn get(&self) -> Option<i64> {
            match self {
                Int::Number(n) => Some(*n),
                Int::Text(s) => s.parse().ok(),
            }
        }
    }

    #[derive(Deserialize)]
    pub struct Tag {
        pub key: String,
        #[serde(default)]
        pub value: String,
    }

    #[derive(Deserialize)]
    pub struct Alias {
        pub alias: String,
        pub version: String,
    }

    #[derive(Deserialize)]
    pub struct RegisteredModel {
        pub name: String,
        #[serde(default)]
        pub description: Option<String>,
        #[serde(default)]
        pub creation_timestamp: Option<Int>,
        #[serde(default)]
        pub last_updated_timestamp: Option<Int>,
        #[serde(default)]
        pub tags: Vec<Tag>,
        #[serde(default)]
        pub aliases: Vec<Alias>,
    }

    #[derive(Deserialize)]
    pub struct ModelVersion {
        pub name: String,
        pub version: String,
        #[serde(default)]
        pub creation_timestamp: Option<Int>,
        #[serde(default)]
        pub last_updated_timestamp: Option<Int>,
        #[serde(default)]
        pub current_stage: Option<String>,
        #[serde(default)]
        pub description: Option<String>,
        #[serde(default)]
        pub source: Option<String>,
        #[serde(default)]
        pub run_id: Option<String>,
        #[serde(default)]
        pub status: Option<String>,
        #[serde(default)]
        pub status_message: Option<String>,
        #[serde(default)]
        pub tags: Vec<Tag>,
        #[serde(default)]
        pub aliases: Vec<String>,
    }

    #[derive(Deserialize)]
    pub struct RegisteredModelResponse {
        pub registered_model: RegisteredModel,
    }

    #[derive(Deserialize)]
    pub struct ModelVersionResponse {
        pub model_version: ModelVersion,
    }

    #[derive(Deserialize)]
    pub struct SearchModelVersionsResponse {
        #[serde(default)]
        pub model_versions: Vec<ModelVersion>,
        #[serde(default)]
        pub next_page_token: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Error {
        pub error_code: String,
        #[serde(default)]
        pub message: String,
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn tags(tags: Vec<wire::Tag>) -> BTreeMap<String, String> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

impl From<wire::RegisteredModel> for RegisteredModel {
    fn from(m: wire::RegisteredModel) -> Self {
        RegisteredModel {
            name: m.name,
            description: non_empty(m.description),
            creation_timestamp_ms: m.creation_timestamp.and_then(|t| t.get()),
            last_updated_timestamp_ms: m.last_updated_timestamp.and_then(|t| t.get()),
            tags: tags(m.tags),
            aliases: m.aliases.into_iter().map(|a| (a.alias, a.version)).collect(),
        }
    }
}

impl From<wire::ModelVersion> for ModelVersion {
    fn from(v: wire::ModelVersion) -> Self {
        let mut aliases = v.aliases;
        aliases.sort();
        ModelVersion {
            name: v.name,
            version: v.version,
            source: non_empty(v.source),
            run_id: non_empty(v.run_id),
            status: non_empty(v.status).map(|s| ModelVersionStatus::from_mlflow(&s)),
            status_message: non_empty(v.status_message),
            current_stage: non_empty(v.current_stage),
            description: non_empty(v.description),
            creation_timestamp_ms: v.creation_timestamp.and_then(|t| t.get()),
            last_updated_timestamp_ms: v.last_updated_timestamp.and_then(|t| t.get()),
            tags: tags(v.tags),
            aliases,
        }
    }
}

/// `body` as `T`, or [`RegistryError::BadBody`] / [`RegistryError::TooLarge`] for `call`.
pub(super) fn parse<T: DeserializeOwned>(call: &str, body: &[u8]) -> Result<T, RegistryError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RegistryError::TooLarge { call: call.to_string(), limit: MAX_BODY_BYTES });
    }
    serde_json::from_slice(body).map_err(|e| RegistryError::BadBody {
        call: call.to_string(),
        problem: format!("{}; it begins: {}", short(&e.to_string()), excerpt(body)),
    })
}

/// A `registered-models/get` or `registered-models/create` answer.
pub fn parse_registered_model(call: &str, body: &[u8]) -> Result<RegisteredModel, RegistryError> {
    parse::<wire::RegisteredModelResponse>(call, body).map(|r| r.registered_model.into())
}

/// A `model-versions/get`, `model-versions/create` or `registered-models/alias` (GET) answer.
pub fn parse_model_version(call: &str, body: &[u8]) -> Result<ModelVersion, RegistryError> {
    parse::<wire::ModelVersionResponse>(call, body).map(|r| r.model_version.into())
}

/// A `model-versions/search` answer; an empty `next_page_token` means the last page.
pub fn parse_model_version_page(call: &str, body: &[u8]) -> Result<ModelVersionPage, RegistryError> {
    parse::<wire::SearchModelVersionsResponse>(call, body).map(|r| ModelVersionPage {
        versions: r.model_versions.into_iter().map(Into::into).collect(),
        next_page_token: non_empty(r.next_page_token),
    })
}

/// The answer of a write (`{}`): any JSON object.
pub fn parse_empty(call: &str, body: &[u8]) -> Result<(), RegistryError> {
    parse::<serde_json::Map<String, serde_json::Value>>(call, body).map(|_| ())
}

/// The error of a non-2xx answer: MLflow's own ([`RegistryError::Api`]) when the body is its error JSON,
/// else [`RegistryError::Http`] quoting the body's start.
pub fn parse_error(call: &str, status: u16, body: &[u8]) -> RegistryError {
    match serde_json::from_slice::<wire::Error>(body) {
        Ok(e) if !e.error_code.is_empty() => RegistryError::Api {
            call: call.to_string(),
            status,
            error_code: short(&e.error_code),
            message: short(&e.message),
        },
        _ => RegistryError::Http { call: call.to_string(), status, body_excerpt: excerpt(body) },
    }
}

/// The MLflow REST API of one tracking server, with a per-call timeout, a body size limit and an optional
/// bearer token. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct MlflowClient {
    http: reqwest::Client,
    api: String,
    timeout: Duration,
    token: Option<BearerToken>,
}

impl std::fmt::Debug for MlflowClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlflowClient")
            .field("api", &self.api)
            .field("timeout", &self.timeout)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl MlflowClient {
    /// A client of the server at `tracking_uri` (the operator config's `mlflow.trackingUri`, e.g.
    /// `http://mlflow.mlflow:5000`) whose calls each take at most `timeout` (connect, answer and body).
    pub fn new(tracking_uri: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(timeout)
            .build()
            .expect("the HTTP client's TLS backend initializes");
        Self::with_http(http, tracking_uri, timeout)
    }

    /// A client that ignores the `HTTP_PROXY`-style variables, for tests against loopback servers.
    #[cfg(test)]
    pub(crate) fn without_proxy(tracking_uri: &str, timeout: Duration) -> Self {
        let http =
            reqwest::Client::builder().user_agent(USER_AGENT).no_proxy().build().expect("a plain HTTP client builds");
        Self::with_http(http, tracking_uri, timeout)
    }

    fn with_http(http: reqwest::Client, tracking_uri: &str, timeout: Duration) -> Self {
        let api = format!("{}/api/2.0/mlflow", tracking_uri.trim_end_matches('/'));
        Self { http, api, timeout, token: None }
    }

    /// The same client, sending `token` as `Authorization: Bearer` on every call.
    pub fn with_token(mut self, token: BearerToken) -> Self {
        self.token = Some(token);
        self
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One call: `GET` with `query` as query parameters, other methods with `body` as JSON. Returns the body
    /// of a 2xx answer (at most [`MAX_BODY_BYTES`]), or the error.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, RegistryError> {
        let call = format!("{method} {path}");
        let mut request = self.http.request(method, format!("{}/{path}", self.api)).timeout(self.timeout);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, token.header().clone());
        }
        let mut response = request.send().await.map_err(|e| self.transport_error(&call, e))?;
        let status = response.status();
        if status.is_success() && response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(RegistryError::TooLarge { call, limit: MAX_BODY_BYTES });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(&call, e))? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_BODY_BYTES {
                if status.is_success() {
                    return Err(RegistryError::TooLarge { call, limit: MAX_BODY_BYTES });
                }
                break; // enough of an error page to quote it
            }
        }
        if status.is_success() { Ok(bytes) } else { Err(parse_error(&call, status.as_u16(), &bytes)) }
    }

    /// The error of a request that got no complete answer; it names the call, never the URL.
    fn transport_error(&self, call: &str, e: reqwest::Error) -> RegistryError {
        if e.is_timeout() {
            RegistryError::Timeout { call: call.to_string(), after: self.timeout }
        } else {
            RegistryError::Unreachable { call: call.to_string(), cause: root_cause(&e) }
        }
    }
}

/// The innermost cause's message (e.g. "Connection refused (os error 111)"), without reqwest's URL.
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    short(&cause.to_string())
}

const GET_MODEL: &str = "registered-models/get";
const CREATE_MODEL: &str = "registered-models/create";
const ALIAS: &str = "registered-models/alias";
const GET_VERSION: &str = "model-versions/get";
const CREATE_VERSION: &str = "model-versions/create";
const SET_VERSION_TAG: &str = "model-versions/set-tag";
const SEARCH_VERSIONS: &str = "model-versions/search";

impl Registry for MlflowClient {
    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel, RegistryError> {
        let body = self.call(Method::GET, GET_MODEL, &[("name", name)], None).await?;
        parse_registered_model(&format!("GET {GET_MODEL}"), &body)
    }

    async fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel, RegistryError> {
        let mut request = json!({ "name": name });
        if let Some(d) = description {
            request["description"] = json!(d);
        }
        let body = self.call(Method::POST, CREATE_MODEL, &[], Some(request)).await?;
        parse_registered_model(&format!("POST {CREATE_MODEL}"), &body)
    }

    async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion, RegistryError> {
        let body = self.call(Method::GET, GET_VERSION, &[("name", name), ("version", version)], None).await?;
        parse_model_version(&format!("GET {GET_VERSION}"), &body)
    }

    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion, RegistryError> {
        let body = self.call(Method::GET, ALIAS, &[("name", name), ("alias", alias)], None).await?;
        parse_model_version(&format!("GET {ALIAS}"), &body)
    }

    async fn create_model_version(&self, new: &NewModelVersion) -> Result<ModelVersion, RegistryError> {
        let mut request = json!({ "name": new.name, "source": new.source });
        if let Some(run_id) = &new.run_id {
            request["run_id"] = json!(run_id);
        }
        if let Some(d) = &new.description {
            request["description"] = json!(d);
        }
        if !new.tags.is_empty() {
            let tags: Vec<_> = new.tags.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect();
            request["tags"] = json!(tags);
        }
        let body = self.call(Method::POST, CREATE_VERSION, &[], Some(request)).await?;
        parse_model_version(&format!("POST {CREATE_VERSION}"), &body)
    }

    async fn set_registered_model_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), RegistryError> {
        let request = json!({ "name": name, "alias": alias, "version": version });
        let body = self.call(Method::POST, ALIAS, &[], Some(request)).await?;
        parse_empty(&format!("POST {ALIAS}"), &body)
    }

    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError> {
        let request = json!({ "name": name, "alias": alias });
        let body = self.call(Method::DELETE, ALIAS, &[], Some(request)).await?;
        parse_empty(&format!("DELETE {ALIAS}"), &body)
    }

    async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), RegistryError> {
        let request = json!({ "name": name, "version": version, "key": key, "value": value });
        let body = self.call(Method::POST, SET_VERSION_TAG, &[], Some(request)).await?;
        parse_empty(&format!("POST {SET_VERSION_TAG}"), &body)
    }

    async fn search_model_versions(&self, search: &VersionSearch) -> Result<ModelVersionPage, RegistryError> {
        let max_results = search.max_results.map(|n| n.to_string());
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(f) = &search.filter {
            query.push(("filter", f));
        }
        if let Some(n) = &max_results {
            query.push(("max_results", n));
        }
        for o in &search.order_by {
            query.push(("order_by", o));
        }
        if let Some(t) = &search.page_token {
            query.push(("page_token", t));
        }
        let body = self.call(Method::GET, SEARCH_VERSIONS, &query, None).await?;
        parse_model_version_page(&format!("GET {SEARCH_VERSIONS}"), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::error_codes;

    /// A recorded MLflow 3.17.2 answer (`tests/fixtures/mlflow/`, see `record.sh` there).
    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mlflow/", $name)).as_slice()
        };
    }

    #[test]
    fn parses_recorded_registered_models() {
        let m = parse_registered_model("GET x", fixture!("registered-model-get.json")).unwrap();
        assert_eq!(m.name, "fraud-detector");
        assert_eq!(m.description.as_deref(), Some("Scores card payments"));
        assert_eq!(m.tags, BTreeMap::from([("team".to_string(), "fraud".to_string())]));
        assert_eq!(m.aliases, BTreeMap::from([("champion".to_string(), "1".to_string())]));
        assert!(m.creation_timestamp_ms.is_some_and(|t| t > 1_700_000_000_000), "{m:?}");
        assert!(m.last_updated_timestamp_ms >= m.creation_timestamp_ms, "{m:?}");
        let created = parse_registered_model("POST x", fixture!("registered-model-create.json")).unwrap();
        assert_eq!((created.name.as_str(), created.aliases.len()), ("fraud-detector", 0));
    }

    #[test]
    fn parses_recorded_model_versions() {
        let v = parse_model_version("GET x", fixture!("model-version-by-alias.json")).unwrap();
        assert_eq!((v.name.as_str(), v.version.as_str(), v.number()), ("fraud-detector", "1", Some(1)));
        assert_eq!(v.source.as_deref(), Some("s3://models/fraud/1"));
        assert_eq!(v.status, Some(ModelVersionStatus::Ready));
        assert_eq!(v.aliases, ["champion"]);
        assert_eq!(v.description.as_deref(), Some("baseline"));
        assert_eq!(v.run_id, None, "MLflow's empty run_id is none");
        assert_eq!(v.current_stage.as_deref(), Some("None"));
        assert_eq!(v.tags, BTreeMap::from([("framework".to_string(), "sklearn".to_string())]));
        let v2 = parse_model_version("GET x", fixture!("model-version-get.json")).unwrap();
        assert_eq!((v2.version.as_str(), v2.description.as_deref()), ("2", None));
        assert_eq!(v2.tags.get("champion.ml/stage").map(String::as_str), Some("candidate"));
        assert!(v2.aliases.is_empty());
        for f in [fixture!("model-version-create.json"), fixture!("model-version-create-2.json")] {
            assert!(parse_model_version("POST x", f).unwrap().source.is_some_and(|s| s.starts_with("s3://models/")));
        }
        let page = parse_model_version_page("GET x", fixture!("model-versions-search.json")).unwrap();
        assert_eq!(page.versions.iter().map(|v| v.version.as_str()).collect::<Vec<_>>(), ["2"]);
        assert_eq!(page.next_page_token.as_deref(), Some("eyJvZmZzZXQiOiAxfQ=="));
        for f in [fixture!("empty-set-alias.json"), fixture!("empty-set-tag.json"), fixture!("empty-delete-alias.json")]
        {
            parse_empty("POST x", f).unwrap();
        }
    }

    #[test]
    fn tolerates_what_other_servers_send() {
        // Protobuf JSON's int64 as text, no optional fields at all, an unknown field, no next page.
        let v = parse_model_version(
            "GET x",
            br#"{"model_version":{"name":"m","version":"3","creation_timestamp":"1700000000000","new_field":[1]}}"#,
        )
        .unwrap();
        assert_eq!(v.creation_timestamp_ms, Some(1_700_000_000_000));
        assert_eq!((v.source, v.status, v.tags.len()), (None, None, 0));
        let page = parse_model_version_page("GET x", br#"{"next_page_token":""}"#).unwrap();
        assert_eq!(page, ModelVersionPage::default());
    }

    #[test]
    fn refuses_bodies_that_are_not_mlflow_json() {
        let table: [(&[u8], &str); 5] = [
            (b"<html>oops</html>", "it begins: <html>oops</html>"),
            (br#"{"model_version":{"name":"m"}}"#, "missing field `version`"),
            (br#"{"registered_model":{"name":"m"}}"#, "missing field `model_version`"),
            (br#"{"model_version":{"name":"m","version":3}}"#, "invalid type"),
            (b"", "EOF"),
        ];
        for (body, want) in table {
            match parse_model_version("GET model-versions/get", body) {
                Err(e @ RegistryError::BadBody { .. }) => assert!(e.to_string().contains(want), "{e}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
        assert!(matches!(parse_empty("POST x", b"[]"), Err(RegistryError::BadBody { .. })));
        let huge = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(matches!(parse_empty("POST x", &huge), Err(RegistryError::TooLarge { .. })));
    }

    #[test]
    fn reads_recorded_errors() {
        use error_codes::*;
        let table = [
            (fixture!("error-model-not-found.json"), 404, RESOURCE_DOES_NOT_EXIST, true),
            (fixture!("error-model-not-found-create.json"), 404, RESOURCE_DOES_NOT_EXIST, true),
            (fixture!("error-version-not-found.json"), 404, RESOURCE_DOES_NOT_EXIST, true),
            (fixture!("error-version-not-found-alias.json"), 404, RESOURCE_DOES_NOT_EXIST, true),
            (fixture!("error-alias-not-found.json"), 400, INVALID_PARAMETER_VALUE, true),
            (fixture!("error-already-exists.json"), 400, RESOURCE_ALREADY_EXISTS, false),
            (fixture!("error-version-not-a-number.json"), 400, INVALID_PARAMETER_VALUE, false),
            (fixture!("error-bad-filter.json"), 400, INVALID_PARAMETER_VALUE, false),
            (fixture!("error-bad-source.json"), 400, INVALID_PARAMETER_VALUE, false),
        ];
        for (body, status, code, not_found) in table {
            let e = parse_error("GET x", status, body);
            match &e {
                RegistryError::Api { status: s, error_code, message, .. } => {
                    assert_eq!((*s, error_code.as_str()), (status, code), "{e}");
                    assert!(!message.is_empty() && message.chars().count() <= EXCERPT_CHARS + 1, "{e}");
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(e.is_not_found(), not_found, "{e}");
        }
        let e = parse_error("GET x", 404, fixture!("not-an-endpoint.html"));
        assert!(
            matches!(&e, RegistryError::Http { status: 404, body_excerpt, .. } if body_excerpt.starts_with("<!doctype html>")),
            "{e:?}"
        );
        assert!(!e.is_not_found());
    }

    use crate::registry::EXCERPT_CHARS;

    /// What a mock server received: the request line, the headers (lowercase names) and the body.
    #[derive(Debug)]
    struct Received {
        line: String,
        headers: BTreeMap<String, String>,
        body: String,
    }

    impl Received {
        fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
        }
    }

    /// How a mock server answers one connection.
    enum Answer {
        /// These raw bytes, then close.
        Raw(Vec<u8>),
        /// The head and the start of a body, then silence.
        Stall(Vec<u8>),
        /// Nothing at all.
        Silent,
    }

    fn http(status: &str, body: &[u8]) -> Answer {
        let mut raw = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        Answer::Raw(raw)
    }

    /// A loopback server that answers one connection per answer, in order; what it received arrives on
    /// the returned channel.
    async fn serve(answers: Vec<Answer>) -> (String, tokio::sync::mpsc::UnboundedReceiver<Received>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for answer in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break data.len(),
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
                let mut lines = head.lines();
                let line = lines.next().unwrap_or_default().to_string();
                let headers: BTreeMap<String, String> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let length: usize = headers.get("content-length").and_then(|n| n.parse().ok()).unwrap_or(0);
                while data.len() < head_end + length {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&data[head_end..]).into_owned();
                let _ = tx.send(Received { line, headers, body });
                // Answer in a task of its own, so a stalled answer does not hold up the next connection.
                tokio::spawn(async move {
                    match answer {
                        // The client may hang up early (size limit); that is its right.
                        Answer::Raw(bytes) => {
                            let _ = socket.write_all(&bytes).await;
                            let _ = socket.shutdown().await;
                        }
                        Answer::Stall(bytes) => {
                            let _ = socket.write_all(&bytes).await;
                            tokio::time::sleep(Duration::from_secs(30)).await;
                        }
                        Answer::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        (base, rx)
    }

    fn client(base: &str) -> MlflowClient {
        MlflowClient::without_proxy(base, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn each_call_sends_what_mlflow_expects_and_reads_its_answer() {
        let ok = || http("200 OK", b"{}");
        let (base, mut rx) = serve(vec![
            http("200 OK", fixture!("registered-model-get.json")),
            http("200 OK", fixture!("registered-model-create.json")),
            http("200 OK", fixture!("model-version-get.json")),
            http("200 OK", fixture!("model-version-by-alias.json")),
            http("200 OK", fixture!("model-version-create.json")),
            ok(),
            ok(),
            ok(),
            http("200 OK", fixture!("model-versions-search.json")),
        ])
        .await;
        let c = client(&format!("{base}/"));
        let name = "fraud detector/ä"; // encoded in query strings, verbatim in JSON
        assert_eq!(c.get_registered_model(name).await.unwrap().aliases.len(), 1);
        let r = rx.recv().await.unwrap();
        assert_eq!(r.line, "GET /api/2.0/mlflow/registered-models/get?name=fraud+detector%2F%C3%A4 HTTP/1.1");
        assert!(!r.headers.contains_key("authorization"), "{r:?}");
        assert!(r.headers.get("user-agent").is_some_and(|a| a.starts_with("champion/")), "{r:?}");

        c.create_registered_model("m", Some("about m")).await.unwrap();
        let r = rx.recv().await.unwrap();
        assert_eq!(r.line, "POST /api/2.0/mlflow/registered-models/create HTTP/1.1");
        assert_eq!(r.json(), json!({"name": "m", "description": "about m"}));
        assert_eq!(r.headers.get("content-type").map(String::as_str), Some("application/json"));

        assert_eq!(c.get_model_version("m", "2").await.unwrap().version, "2");
        let r = rx.recv().await.unwrap();
        assert_eq!(r.line, "GET /api/2.0/mlflow/model-versions/get?name=m&version=2 HTTP/1.1");

        assert_eq!(c.get_model_version_by_alias("m", "champion").await.unwrap().aliases, ["champion"]);
        let r = rx.recv().await.unwrap();
        assert_eq!(r.line, "GET /api/2.0/mlflow/registered-models/alias?name=m&alias=champion HTTP/1.1");

        let new = NewModelVersion {
            name: "m".into(),
            source: "s3://models/m/1".into(),
            run_id: Some("r1".into()),
            description: None,
            tags: BTreeMap::from([("framework".to_string(), "sklearn".to_string())]),
        };
        assert_eq!(c.create_model_version(&new).await.unwrap().version, "1");
        let r = rx.recv().await.unwrap();
        assert_eq!(r.line, "POST /api/2.0/mlflow/model-versions/create HTTP/1.1");
        assert_eq!(
            r.json(),
            json!({"name": "m", "source": "s3://models/m/1", "run_id": "r1",
                   "tags": [{"key": "framework", "value": "sklearn"}]})
        );

        c.set_registered_model_alias("m", "champion", "2").await.unwrap();
        let r = rx.recv().await.unwrap();
        assert_eq!(r.line, "POST /api/2.0/mlflow/registered-models/alias HTTP/1.1");
        assert_eq!(r.json(), json!({"name": "m", "alias": "champion", "version": "2"}));

        c.delete_registered_model_alias("m", "champion").await.unwrap();
        let r = rx.recv().await.unwrap();
        assert_eq!(r.line, "DELETE /api/2.0/mlflow/registered-models/alias HTTP/1.1");
        assert_eq!(r.json(), json!({"name": "m", "alias": "champion"}));

        c.set_model_version_tag("m", "2", "champion.ml/stage", "production").await.unwrap();
        let r = rx.recv().await.unwrap();
        assert_eq!(r.line, "POST /api/2.0/mlflow/model-versions/set-tag HTTP/1.1");
        assert_eq!(r.json(), json!({"name": "m", "version": "2", "key": "champion.ml/stage", "value": "production"}));

        let mut search = VersionSearch::of_model("m", 1).unwrap();
        search.page_token = Some("abc=".into());
        let page = c.search_model_versions(&search).await.unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("eyJvZmZzZXQiOiAxfQ=="));
        let r = rx.recv().await.unwrap();
        assert_eq!(
            r.line,
            "GET /api/2.0/mlflow/model-versions/search?filter=name%3D%27m%27&max_results=1\
             &order_by=version_number+DESC&page_token=abc%3D HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn sends_the_token_as_a_bearer_header() {
        let (base, mut rx) = serve(vec![http("200 OK", b"{}")]).await;
        let c = client(&base).with_token(BearerToken::parse("s3cr3t").unwrap());
        assert!(!format!("{c:?}").contains("s3cr3t"), "{c:?}");
        c.set_model_version_tag("m", "1", "k", "v").await.unwrap();
        let r = rx.recv().await.unwrap();
        assert_eq!(r.headers.get("authorization").map(String::as_str), Some("Bearer s3cr3t"));
    }

    #[tokio::test]
    async fn not_found_is_typed() {
        let (base, _rx) = serve(vec![
            http("404 Not Found", fixture!("error-model-not-found.json")),
            http("400 Bad Request", fixture!("error-alias-not-found.json")),
        ])
        .await;
        let c = client(&base);
        let e = c.get_registered_model("no-such-model").await.unwrap_err();
        assert_eq!(
            e,
            RegistryError::Api {
                call: "GET registered-models/get".into(),
                status: 404,
                error_code: error_codes::RESOURCE_DOES_NOT_EXIST.into(),
                message: "Registered Model with name=no-such-model not found".into(),
            }
        );
        assert!(e.is_not_found() && !e.is_unreachable());
        let e = c.get_model_version_by_alias("fraud-detector", "no-such-alias").await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }

    #[tokio::test]
    async fn garbage_and_foreign_pages_are_typed() {
        let page = format!("<html>{}</html>", "bad gateway ".repeat(100));
        let (base, _rx) = serve(vec![
            http("200 OK", b"\x00\xffnot json at all"),
            http("502 Bad Gateway", page.as_bytes()),
            http("401 Unauthorized", b"<html>log in</html>"),
        ])
        .await;
        let c = client(&base);
        let e = c.get_model_version("m", "1").await.unwrap_err();
        assert!(matches!(&e, RegistryError::BadBody { call, .. } if call == "GET model-versions/get"), "{e:?}");
        let e = c.get_model_version("m", "1").await.unwrap_err();
        match &e {
            RegistryError::Http { status: 502, body_excerpt, .. } => {
                assert!(body_excerpt.starts_with("<html>bad gateway"), "{body_excerpt}");
                assert_eq!(body_excerpt.chars().count(), EXCERPT_CHARS + 1, "{body_excerpt}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_unreachable(), "a proxy's 502 means MLflow was not reached");
        let e = c.get_model_version("m", "1").await.unwrap_err();
        assert!(e.is_auth() && e.category() == "auth", "{e:?}");
    }

    /// The client stops at the limit: it refuses a too-large Content-Length before reading the body, and
    /// stops reading a body without one after the limit. Both servers then stall, so a client that read on
    /// would time out instead.
    #[tokio::test]
    async fn oversized_bodies_are_refused_without_reading_them() {
        let claims_huge = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{{", MAX_BODY_BYTES + 1).into_bytes();
        let mut unsized_answer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        unsized_answer.extend_from_slice(br#"{"model_version":{"name":"m","version":"1","description":""#);
        unsized_answer.extend(std::iter::repeat_n(b'x', MAX_BODY_BYTES));
        let (base, _rx) = serve(vec![Answer::Stall(claims_huge), Answer::Stall(unsized_answer)]).await;
        let c = MlflowClient::without_proxy(&base, Duration::from_secs(20));
        for how in ["with a Content-Length", "without one"] {
            let started = std::time::Instant::now();
            let e = c.get_model_version("m", "1").await.unwrap_err();
            assert_eq!(
                e,
                RegistryError::TooLarge { call: "GET model-versions/get".into(), limit: MAX_BODY_BYTES },
                "{how}"
            );
            assert!(started.elapsed() < Duration::from_secs(10), "{how}: {:?}", started.elapsed());
        }
    }

    #[tokio::test]
    async fn slow_answers_time_out() {
        let stalled_body = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"model_version\":".to_vec();
        let (base, _rx) = serve(vec![Answer::Silent, Answer::Stall(stalled_body)]).await;
        let c = MlflowClient::without_proxy(&base, Duration::from_millis(300));
        for how in ["no answer", "a body that stops"] {
            let started = std::time::Instant::now();
            let e = c.get_model_version("m", "1").await.unwrap_err();
            assert_eq!(
                e,
                RegistryError::Timeout { call: "GET model-versions/get".into(), after: Duration::from_millis(300) },
                "{how}"
            );
            assert!(e.is_unreachable());
            assert!(started.elapsed() < Duration::from_secs(5), "{how}: {:?}", started.elapsed());
        }
    }

    #[tokio::test]
    async fn connection_refused_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = client(&base).get_model_version_by_alias("m", "champion").await.unwrap_err();
        match &e {
            RegistryError::Unreachable { call, cause } => {
                assert_eq!(call, "GET registered-models/alias");
                assert!(cause.contains("refused"), "{cause}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!e.to_string().contains("127.0.0.1"), "no URL in messages: {e}");
    }

    #[test]
    fn new_builds_a_client() {
        let c = MlflowClient::new("http://mlflow:5000/", Duration::from_secs(3));
        assert_eq!((c.api.as_str(), c.timeout()), ("http://mlflow:5000/api/2.0/mlflow", Duration::from_secs(3)));
    }
}
