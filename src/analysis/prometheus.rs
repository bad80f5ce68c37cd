//! The Prometheus HTTP API: one instant query (`/api/v1/query`) that must answer one number.
//!
//! [`parse_instant_response`] is pure and holds every rule about the answer's shape; [`PrometheusClient`]
//! only sends the request, bounds its time and size, and hands the body to the parser. Error messages are
//! written for the person reading a status or an Event: they say what went wrong and what to change, and
//! quote at most [`EXCERPT_CHARS`] characters of a response body.

use std::time::Duration;

use serde::Deserialize;

/// The largest response body read or parsed (1 MiB); an instant query that returns one number is tiny.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The most characters of a raw response body any message quotes.
pub const EXCERPT_CHARS: usize = 200;

/// The one number a query answered, or that it had none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sample {
    /// The value; always finite when it comes from [`parse_instant_response`].
    Value(f64),
    /// An empty vector, or the value `NaN` (which Prometheus returns for e.g. `0/0`, a rate ratio with no
    /// requests in the window): there was nothing to measure.
    NoData,
}

/// Why a query did not give a number.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// Prometheus could not be reached, or did not answer in time (connect error, timeout, broken body).
    #[error("{0}")]
    Unreachable(String),
    /// Prometheus (or something in front of it) answered with an HTTP error that is not a Prometheus API
    /// error.
    #[error(
        "Prometheus answered HTTP {status}{}; check the provider URL in the operator config and that it points at Prometheus",
        if body_excerpt.is_empty() { String::new() } else { format!(": {body_excerpt}") }
    )]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (at most [`EXCERPT_CHARS`] characters, on one line).
        body_excerpt: String,
    },
    /// Prometheus refused or failed the query; the text is Prometheus's own error.
    #[error("Prometheus refused the query: {0}")]
    Query(String),
    /// The answer is not one number (several series, a range vector, a string, an infinity, not JSON).
    #[error("{0}")]
    BadAnswer(String),
}

/// The Prometheus API envelope (`status`, `data`, `errorType`, `error`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    #[serde(default)]
    result: serde_json::Value,
}

/// Reads an `/api/v1/query` answer as one number.
///
/// - `status` must be `success`; otherwise [`ProviderError::Query`] with Prometheus's `error` text.
/// - `scalar` gives its value; a `vector` with no series is [`Sample::NoData`], with one series its value,
///   with more an error asking to aggregate; `matrix` and `string` are errors.
/// - The value `NaN` is [`Sample::NoData`]: Prometheus returns it when there was nothing to divide (e.g. an
///   error-rate ratio with no requests), which is "no data", not a measurement. `+Inf`/`-Inf` and
///   numbers that do not parse are errors.
/// - Bodies over [`MAX_BODY_BYTES`] are refused before parsing.
pub fn parse_instant_response(body: &[u8]) -> Result<Sample, ProviderError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    let data = success_data(body)?;
    match data.result_type.as_str() {
        "scalar" => sample_value(&data.result),
        "vector" => {
            let series = data.result.as_array().ok_or_else(|| bad("the vector result is not a list"))?;
            match series.as_slice() {
                [] => Ok(Sample::NoData),
                [one] => match one.get("value") {
                    Some(value) => sample_value(value),
                    None if one.get("histogram").is_some() => {
                        Err(bad("the query returned a native histogram, not a number; use histogram_quantile(), \
                         histogram_sum() or histogram_count()"))
                    }
                    None => Err(bad("the series in the answer has no value")),
                },
                many => Err(bad(format!(
                    "query returned {} series; it must return exactly one (wrap it in sum() or max())",
                    many.len()
                ))),
            }
        }
        other => Err(bad(format!(
            "query returned a {other}; it must return a single number (an instant vector with one series, or a scalar){}",
            if other == "matrix" { "; drop the [range] selector or wrap it in a function such as rate()" } else { "" }
        ))),
    }
}

/// The `data` of a `success` answer; an answer that is not the API's JSON, or not a success, is an error.
fn success_data(body: &[u8]) -> Result<Data, ProviderError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        ProviderError::BadAnswer(format!(
            "the answer is not Prometheus API JSON ({e}); check that the provider URL points at Prometheus; it begins: {}",
            excerpt(body)
        ))
    })?;
    if envelope.status != "success" {
        return Err(query_error(&envelope));
    }
    envelope.data.ok_or_else(|| bad("the answer has status success but no data"))
}

/// One series of an instant vector: its labels and its value.
pub type SeriesValue = (std::collections::BTreeMap<String, String>, f64);

/// Reads an `/api/v1/query` answer as an instant vector of any number of series (an experiment's
/// counters are read per series, see `experiment::counters`). A `scalar` is one series without labels;
/// `NaN` and infinite values are errors (a counter has neither); `matrix` and `string` are errors.
pub fn parse_vector_response(body: &[u8]) -> Result<Vec<SeriesValue>, ProviderError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(bad(format!("the answer is larger than {} MiB", MAX_BODY_BYTES / (1024 * 1024))));
    }
    let data = success_data(body)?;
    let finite = |pair: &serde_json::Value| match sample_value(pair)? {
        Sample::Value(v) => Ok(v),
        Sample::NoData => Err(bad("a series has the value NaN, which a counter cannot have")),
    };
    match data.result_type.as_str() {
        "scalar" => Ok(vec![(Default::default(), finite(&data.result)?)]),
        "vector" => {
            let series = data.result.as_array().ok_or_else(|| bad("the vector result is not a list"))?;
            series
                .iter()
                .map(|one| {
                    let labels = match one.get("metric") {
                        Some(serde_json::Value::Object(m)) => {
                            m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()
                        }
                        _ => Default::default(),
                    };
                    let value = one.get("value").ok_or_else(|| bad("a series in the answer has no value"))?;
                    Ok((labels, finite(value)?))
                })
                .collect()
        }
        other => Err(bad(format!("query returned a {other}; it must return an instant vector of counters"))),
    }
}

/// The error of a non-success answer.
fn query_error(envelope: &Envelope) -> ProviderError {
    let text = envelope.error.as_deref().unwrap_or("no error text");
    let text = truncate_chars(&one_line(text), EXCERPT_CHARS);
    match envelope.error_type.as_deref() {
        Some(kind) if !kind.is_empty() => ProviderError::Query(format!("{kind}: {text}")),
        _ => ProviderError::Query(text),
    }
}

/// The number in a `[<unix time>, "<value>"]` pair.
fn sample_value(pair: &serde_json::Value) -> Result<Sample, ProviderError> {
    let value = match pair.as_array().map(Vec::as_slice) {
        Some([_, value]) => value,
        _ => return Err(bad("the sample in the answer is not a [time, value] pair")),
    };
    let number = match value {
        serde_json::Value::String(s) => s.trim().parse::<f64>().map_err(|_| {
            bad(format!("the value {:?} in the answer is not a number", truncate_chars(s, EXCERPT_CHARS)))
        })?,
        serde_json::Value::Number(n) => n.as_f64().ok_or_else(|| bad("the value in the answer is not a number"))?,
        _ => return Err(bad("the value in the answer is not a number")),
    };
    if number.is_nan() {
        Ok(Sample::NoData)
    } else if number.is_infinite() {
        let sign = if number > 0.0 { "+" } else { "-" };
        Err(bad(format!(
            "query returned {sign}Inf, which no threshold can judge (a division by zero?); guard the divisor, e.g. `/ (x > 0)`"
        )))
    } else {
        Ok(Sample::Value(number))
    }
}

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::BadAnswer(message.into())
}

fn too_large() -> ProviderError {
    bad(format!(
        "the answer is larger than {} MiB; the query must return a single number (wrap it in sum() or max())",
        MAX_BODY_BYTES / (1024 * 1024)
    ))
}

/// The start of a raw body, at most [`EXCERPT_CHARS`] characters on one line, `…` when cut.
fn excerpt(body: &[u8]) -> String {
    // Decode a little more than needed so a cut multi-byte character does not matter.
    let head = &body[..body.len().min(EXCERPT_CHARS * 4)];
    truncate_chars(&one_line(&String::from_utf8_lossy(head)), EXCERPT_CHARS)
}

/// `s` with control characters (newlines included) as spaces and surrounding space trimmed.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

/// The first `max` characters of `s`, with `…` appended when it was longer.
fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

/// Sends instant queries to Prometheus servers, with a timeout and a size limit.
///
/// The base URL is passed per query: it comes from the operator config by provider name, never from a
/// spec. One client (one connection pool) serves all providers.
#[derive(Clone, Debug)]
pub struct PrometheusClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl PrometheusClient {
    /// A client whose queries each take at most `timeout` (connect, answer and body).
    pub fn new(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("champion/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .build()
            .expect("the HTTP client's TLS backend initializes");
        Self { http, timeout }
    }

    /// A client that ignores the `HTTP_PROXY`-style variables, so tests against a loopback server work
    /// wherever they run.
    #[cfg(test)]
    pub(crate) fn without_proxy(timeout: Duration) -> Self {
        Self { http: reqwest::Client::builder().no_proxy().build().expect("a plain HTTP client builds"), timeout }
    }

    /// Runs `query` as an instant query (`GET {base_url}/api/v1/query?query=…`) and reads the answer as one
    /// number (see [`parse_instant_response`]).
    pub async fn query(&self, base_url: &str, query: &str) -> Result<Sample, ProviderError> {
        let body = self.query_body(base_url, query).await?;
        parse_instant_response(&body)
    }

    /// Runs `query` as an instant query and reads the answer as series (see [`parse_vector_response`]).
    pub async fn query_vector(&self, base_url: &str, query: &str) -> Result<Vec<SeriesValue>, ProviderError> {
        let body = self.query_body(base_url, query).await?;
        parse_vector_response(&body)
    }

    /// The body of a successful instant query, or the error.
    async fn query_body(&self, base_url: &str, query: &str) -> Result<Vec<u8>, ProviderError> {
        let url = format!("{}/api/v1/query", base_url.trim_end_matches('/'));
        let mut response = self
            .http
            .get(&url)
            .query(&[("query", query)])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if status.is_success() && response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(too_large());
        }
        let body = self.read_limited(&mut response).await?;
        if status.is_success() {
            return Ok(body);
        }
        // Prometheus answers 400/422/503 with its own error JSON; anything else is someone else's page.
        match serde_json::from_slice::<Envelope>(&body) {
            Ok(envelope) if envelope.status == "error" => Err(query_error(&envelope)),
            _ => Err(ProviderError::Http { status: status.as_u16(), body_excerpt: excerpt(&body) }),
        }
    }

    /// The body, cut after [`MAX_BODY_BYTES`] + 1 bytes (so the parser sees that it was too large).
    async fn read_limited(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, ProviderError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY_BYTES {
                body.truncate(MAX_BODY_BYTES + 1);
                break;
            }
        }
        Ok(body)
    }

    /// A sentence for a failed request; it names no URL (the provider's name is what users know).
    fn transport_error(&self, e: reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            ProviderError::Unreachable(format!(
                "Prometheus did not answer within {:?} (timed out); check that it is up, or raise queryTimeout in \
                 the operator config",
                self.timeout
            ))
        } else if e.is_connect() {
            ProviderError::Unreachable(format!(
                "cannot connect to Prometheus ({}); check the provider URL in the operator config and that \
                 Prometheus is running",
                root_cause(&e)
            ))
        } else {
            ProviderError::Unreachable(format!("the request to Prometheus failed ({})", root_cause(&e)))
        }
    }
}

/// The innermost cause's message (e.g. "Connection refused (os error 111)"), without reqwest's URL.
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    truncate_chars(&one_line(&cause.to_string()), EXCERPT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(values: &[&str]) -> String {
        let series: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!(r#"{{"metric":{{"pod":"p{i}"}},"value":[1700000000.123,"{v}"]}}"#))
            .collect();
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#, series.join(","))
    }

    fn of_type(result_type: &str, result: &str) -> String {
        format!(r#"{{"status":"success","data":{{"resultType":"{result_type}","result":{result}}}}}"#)
    }

    #[test]
    fn parses_instant_answers() {
        use ProviderError::{BadAnswer, Query};
        type Want = Result<Sample, (fn(String) -> ProviderError, &'static str)>;
        let big = format!("{}{}", vector(&["1"]), " ".repeat(MAX_BODY_BYTES));
        let table: Vec<(&str, String, Want)> = vec![
            ("scalar", of_type("scalar", r#"[1700000000,"0.25"]"#), Ok(Sample::Value(0.25))),
            ("scalar number", of_type("scalar", "[1700000000,3]"), Ok(Sample::Value(3.0))),
            ("one series", vector(&["0.002"]), Ok(Sample::Value(0.002))),
            ("exponent", vector(&["1e-3"]), Ok(Sample::Value(0.001))),
            ("negative", vector(&["-4"]), Ok(Sample::Value(-4.0))),
            ("no series", vector(&[]), Ok(Sample::NoData)),
            ("NaN", vector(&["NaN"]), Ok(Sample::NoData)),
            ("NaN scalar", of_type("scalar", r#"[1,"NaN"]"#), Ok(Sample::NoData)),
            ("+Inf", vector(&["+Inf"]), Err((BadAnswer, "+Inf"))),
            ("-Inf", vector(&["-Inf"]), Err((BadAnswer, "-Inf"))),
            ("garbage value", vector(&["zero"]), Err((BadAnswer, "\"zero\" in the answer is not a number"))),
            (
                "three series",
                vector(&["1", "2", "3"]),
                Err((BadAnswer, "query returned 3 series; it must return exactly one (wrap it in sum() or max())")),
            ),
            (
                "matrix",
                of_type("matrix", r#"[{"metric":{},"values":[[1,"1"]]}]"#),
                Err((BadAnswer, "must return a single number (an instant vector")),
            ),
            (
                "string",
                of_type("string", r#"[1,"hello"]"#),
                Err((BadAnswer, "query returned a string; it must return a single number")),
            ),
            (
                "histogram",
                of_type("vector", r#"[{"metric":{},"histogram":[1,{}]}]"#),
                Err((BadAnswer, "native histogram")),
            ),
            ("bad pair", of_type("scalar", r#"[1]"#), Err((BadAnswer, "not a [time, value] pair"))),
            ("no data", r#"{"status":"success"}"#.into(), Err((BadAnswer, "no data"))),
            (
                "error",
                r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4: unexpected"}"#.into(),
                Err((Query, "Prometheus refused the query: bad_data: parse error at char 4: unexpected")),
            ),
            ("error without text", r#"{"status":"error"}"#.into(), Err((Query, "no error text"))),
            ("not JSON", "<html>Bad Gateway</html>".into(), Err((BadAnswer, "not Prometheus API JSON"))),
            ("too large", big, Err((BadAnswer, "larger than 1 MiB"))),
        ];
        for (case, body, want) in table {
            let got = parse_instant_response(body.as_bytes());
            match (&got, want) {
                (Ok(g), Ok(w)) => assert_eq!(*g, w, "{case}"),
                (Err(e), Err((variant, text))) => {
                    assert_eq!(
                        std::mem::discriminant(e),
                        std::mem::discriminant(&variant(String::new())),
                        "{case}: {e:?}"
                    );
                    assert!(e.to_string().contains(text), "{case}: {e}");
                }
                (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn parses_vectors_of_counters_per_series() {
        let two = of_type(
            "vector",
            r#"[{"metric":{"pod":"a","variant":"x"},"value":[1,"10"]},{"metric":{"pod":"b"},"value":[1,"2.5"]}]"#,
        );
        let got = parse_vector_response(two.as_bytes()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.get("pod").map(String::as_str), Some("a"));
        assert_eq!(got[0].0.get("variant").map(String::as_str), Some("x"));
        assert_eq!((got[0].1, got[1].1), (10.0, 2.5));
        assert_eq!(parse_vector_response(vector(&[]).as_bytes()).unwrap(), vec![]);
        let scalar = parse_vector_response(of_type("scalar", r#"[1,"4"]"#).as_bytes()).unwrap();
        assert_eq!(scalar, vec![(Default::default(), 4.0)]);
        for (case, body, text) in [
            ("NaN", vector(&["NaN"]), "NaN"),
            ("+Inf", vector(&["+Inf"]), "+Inf"),
            ("matrix", of_type("matrix", r#"[{"metric":{},"values":[[1,"1"]]}]"#), "instant vector of counters"),
            ("error", r#"{"status":"error","error":"boom"}"#.to_string(), "boom"),
            ("not JSON", "<html/>".to_string(), "not Prometheus API JSON"),
        ] {
            let e = parse_vector_response(body.as_bytes()).unwrap_err();
            assert!(e.to_string().contains(text), "{case}: {e}");
        }
    }

    #[test]
    fn messages_quote_at_most_200_chars_of_a_body() {
        let body = format!("<html>{}</html>", "x".repeat(5000));
        let e = parse_instant_response(body.as_bytes()).unwrap_err().to_string();
        assert!(!e.contains(&"x".repeat(EXCERPT_CHARS)), "{e}");
        assert!(e.contains("<html>xxx"), "{e}");
        let long_error = format!(r#"{{"status":"error","error":"{}"}}"#, "y".repeat(5000));
        let e = parse_instant_response(long_error.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(&"y".repeat(EXCERPT_CHARS)) && !e.contains(&"y".repeat(EXCERPT_CHARS + 1)), "{e}");
        let multiline = "line one\nline two\r\n".repeat(3);
        assert_eq!(excerpt(multiline.as_bytes()).lines().count(), 1);
        assert_eq!(truncate_chars("ääää", 2), "ää…");
        assert_eq!(excerpt(&[0xff, b'a']), "\u{fffd}a");
    }

    /// A one-connection HTTP server on loopback that answers with `response` (raw HTTP, written as is),
    /// or never answers when it is `None`. The request head arrives on the returned channel.
    async fn serve_once(response: Option<Vec<u8>>) -> (String, tokio::sync::oneshot::Receiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            match response {
                // The client may hang up early (size limit); that is its right.
                Some(bytes) => {
                    let _ = socket.write_all(&bytes).await;
                    let _ = socket.shutdown().await;
                }
                None => tokio::time::sleep(Duration::from_secs(30)).await,
            }
        });
        (base, rx)
    }

    fn http(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn client(timeout: Duration) -> PrometheusClient {
        PrometheusClient::without_proxy(timeout)
    }

    async fn ask(response: Option<Vec<u8>>) -> Result<Sample, ProviderError> {
        let (base, _) = serve_once(response).await;
        client(Duration::from_millis(200)).query(&base, "up").await
    }

    #[tokio::test]
    async fn sends_the_query_url_encoded() {
        let (base, head) = serve_once(Some(http("200 OK", &of_type("scalar", r#"[1,"7"]"#)))).await;
        let q = r#"sum(rate(x{v="a b",c=~"5.."}[1m])) / 2 + 1"#;
        let got = client(Duration::from_secs(5)).query(&format!("{base}/"), q).await;
        assert_eq!(got, Ok(Sample::Value(7.0)));
        let head = head.await.unwrap();
        let line = head.lines().next().unwrap();
        let want: String = url_encode(q);
        assert_eq!(line, format!("GET /api/v1/query?query={want} HTTP/1.1"));
    }

    /// Form encoding as reqwest's `.query()` does it (spaces as `+`).
    fn url_encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => (b as char).to_string(),
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn success_scalar() {
        assert_eq!(ask(Some(http("200 OK", &of_type("scalar", r#"[1,"0.5"]"#)))).await, Ok(Sample::Value(0.5)));
    }

    #[tokio::test]
    async fn vector_with_one_series() {
        assert_eq!(ask(Some(http("200 OK", &vector(&["0.01"])))).await, Ok(Sample::Value(0.01)));
    }

    #[tokio::test]
    async fn empty_vector_is_no_data() {
        assert_eq!(ask(Some(http("200 OK", &vector(&[])))).await, Ok(Sample::NoData));
    }

    #[tokio::test]
    async fn nan_is_no_data() {
        assert_eq!(ask(Some(http("200 OK", &vector(&["NaN"])))).await, Ok(Sample::NoData));
    }

    #[tokio::test]
    async fn three_series_is_a_bad_answer() {
        let e = ask(Some(http("200 OK", &vector(&["1", "2", "3"])))).await.unwrap_err();
        assert!(matches!(&e, ProviderError::BadAnswer(m) if m.contains("3 series")), "{e:?}");
    }

    #[tokio::test]
    async fn string_result_is_a_bad_answer() {
        let e = ask(Some(http("200 OK", &of_type("string", r#"[1,"x"]"#)))).await.unwrap_err();
        assert!(matches!(&e, ProviderError::BadAnswer(m) if m.contains("single number")), "{e:?}");
    }

    #[tokio::test]
    async fn prometheus_error_400_is_a_query_error() {
        let body =
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"}"#;
        let e = ask(Some(http("400 Bad Request", body))).await.unwrap_err();
        assert_eq!(e, ProviderError::Query(r#"bad_data: invalid parameter "query": 1:5: parse error"#.into()), "{e}");
    }

    #[tokio::test]
    async fn other_http_errors_quote_the_body_briefly() {
        let body = format!("<html>{}</html>", "gateway ".repeat(100));
        let e = ask(Some(http("502 Bad Gateway", &body))).await.unwrap_err();
        match &e {
            ProviderError::Http { status: 502, body_excerpt } => {
                assert!(body_excerpt.starts_with("<html>gateway"), "{body_excerpt}");
                assert_eq!(body_excerpt.chars().count(), EXCERPT_CHARS + 1, "{body_excerpt}"); // and the …
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().starts_with("Prometheus answered HTTP 502: <html>"), "{e}");
    }

    #[tokio::test]
    async fn connection_refused_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = client(Duration::from_secs(5)).query(&base, "up").await.unwrap_err();
        match &e {
            ProviderError::Unreachable(m) => {
                assert!(m.starts_with("cannot connect to Prometheus"), "{m}");
                assert!(!m.contains("127.0.0.1"), "no URL in messages: {m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let started = std::time::Instant::now();
        let e = ask(None).await.unwrap_err();
        assert!(matches!(&e, ProviderError::Unreachable(m) if m.contains("timed out") && m.contains("200ms")), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn oversized_body_is_refused() {
        let body = vector(&["1"]) + &" ".repeat(MAX_BODY_BYTES);
        // With a Content-Length, before reading.
        let e = ask(Some(http("200 OK", &body))).await.unwrap_err();
        assert!(matches!(&e, ProviderError::BadAnswer(m) if m.contains("larger than 1 MiB")), "{e:?}");
        // Without one (the body ends when the connection closes), while reading.
        let raw = format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{body}").into_bytes();
        let e = ask(Some(raw)).await.unwrap_err();
        assert!(matches!(&e, ProviderError::BadAnswer(m) if m.contains("larger than 1 MiB")), "{e:?}");
    }

    #[test]
    fn new_builds_a_client() {
        assert_eq!(PrometheusClient::new(Duration::from_secs(3)).timeout, Duration::from_secs(3));
    }
}
