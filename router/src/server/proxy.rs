//! The live path: pick a backend, forward the request, stream the answer back with its prediction ID. Everything
//! else (copies to shadows, the comparison, the window entry, the log line) is handed off without waiting.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Body;
use tokio::sync::oneshot;

use crate::compare::predicted_label;

use super::body::{Captured, Tee};
use super::h2wire::H2Body;
use super::id::{PREDICTION_ID, prediction_id, rfc3339};
use super::log::{Line, LoggedBody, Record};
use super::mirror::{Copy, LiveAnswer};
use super::pool::Pooled;
use super::routing::Routing;
use super::{Prediction, State, feedback, lock};

/// The path that takes feedback instead of being proxied.
pub const FEEDBACK_PATH: &str = "/feedback";
/// The largest live answer read for its predicted label.
const LABEL_BODY_BYTES: usize = 1 << 20;
/// A predicted label longer than this is not kept in the window.
const MAX_LABEL: usize = 256;

/// A live backend's answer, over HTTP/1.1 or HTTP/2.
pub type LiveBody = Either<Pooled, H2Body>;
/// The body of the router's answers: a proxied stream, or a small answer of the router's own.
pub type OutBody = Either<Tee<LiveBody>, Full<Bytes>>;

/// Serves one request on the proxy port.
pub async fn serve<B>(state: Arc<State>, req: Request<B>) -> Result<Response<OutBody>, Infallible>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if req.method() == Method::POST && req.uri().path() == FEEDBACK_PATH {
        return Ok(feedback::handle(&state, req).await.map(Either::Right));
    }
    let Some(routing) = state.routing.load_full() else {
        let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "champion-router has no valid configuration yet\n");
        if let Ok(id) = HeaderValue::from_str(&prediction_id(req.headers(), SystemTime::now())) {
            r.headers_mut().insert(PREDICTION_ID, id);
        }
        return Ok(r);
    };
    // On the heap: the proxy future is several kilobytes, and hyper moves the service's future (into each HTTP/2
    // stream's task, and more) a number of times, which a pointer makes cheap (callgrind, docs/router-benchmark.md).
    Ok(Box::pin(proxy(state, routing, req)).await)
}

/// A short text answer of the router's own.
pub fn plain(status: StatusCode, text: &'static str) -> Response<OutBody> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(text.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

async fn proxy<B>(state: Arc<State>, routing: Arc<Routing>, req: Request<B>) -> Response<OutBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let start = Instant::now();
    let now = SystemTime::now();
    let id = prediction_id(req.headers(), now);
    let id_header = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    let index = routing.choose(req.headers());
    let backend = &routing.backends[index];

    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(PREDICTION_ID, id_header.clone());
    let h2 = grpc_over_h2(&parts);
    if !h2 && parts.version == Version::HTTP_2 {
        http2_fields_for_http1(&mut parts);
    }
    let path_and_query = parts.uri.path_and_query().cloned().unwrap_or_else(|| "/".parse().expect("a valid path"));

    // Which shadows get a copy: sampled, small enough, and under their concurrency cap, decided now.
    let body_len = body.size_hint().exact();
    let mut copies = Vec::new();
    let mut request_senders: Vec<oneshot::Sender<Arc<Captured>>> = Vec::new();
    let mut live_senders: Vec<oneshot::Sender<Arc<LiveAnswer>>> = Vec::new();
    let mut capture_limit = 0;
    let mut drain = None;
    for shadow in &routing.shadows {
        if !shadow.sampler.hit() {
            continue;
        }
        if shadow.breaker.is_open() {
            state.metrics.mirror_dropped.with_label_values(&[&shadow.name, "shadow_down"]).inc();
            continue;
        }
        if body_len.is_some_and(|n| n > shadow.max_body as u64) {
            state.metrics.mirror_dropped.with_label_values(&[&shadow.name, "body_size"]).inc();
            continue;
        }
        let Ok(permit) = shadow.in_flight.clone().try_acquire_owned() else {
            state.metrics.mirror_dropped.with_label_values(&[&shadow.name, "concurrency"]).inc();
            continue;
        };
        let (request_tx, request_rx) = oneshot::channel();
        request_senders.push(request_tx);
        let live = routing.comparator.as_ref().map(|_| {
            let (tx, rx) = oneshot::channel();
            live_senders.push(tx);
            rx
        });
        capture_limit = capture_limit.max(shadow.max_body);
        drain = drain.max(Some(shadow.timeout));
        copies.push(Copy {
            shadow: shadow.clone(),
            permit,
            id: id.clone(),
            method: parts.method.clone(),
            path_and_query: path_and_query.clone(),
            headers: parts.headers.clone(),
            h2,
            request: request_rx,
            live,
            comparator: routing.comparator.clone(),
        });
    }
    let sample = routing.body_sampler.hit();
    let logged_request = if sample {
        let (tx, rx) = oneshot::channel();
        request_senders.push(tx);
        capture_limit = capture_limit.max(routing.log_body_bytes);
        Some(rx)
    } else {
        None
    };
    let shadows: Vec<Arc<str>> = copies.iter().map(|c| c.shadow.name.clone()).collect();
    for copy in copies {
        tokio::spawn(copy.run(state.clone()));
    }
    let body = if request_senders.is_empty() {
        Tee::plain(body)
    } else {
        let tee = Tee::capture(body, capture_limit, move |c| {
            let c = Arc::new(c);
            for tx in request_senders {
                let _ = tx.send(c.clone());
            }
        });
        // The shadows need the whole request even when the live backend answers without reading it.
        match drain {
            Some(time) => tee.drain_on_drop(time),
            None => tee,
        }
    };

    parts.version = if h2 { Version::HTTP_2 } else { Version::HTTP_11 };
    let method = parts.method.clone();
    let sent = if h2 {
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(backend.authority.clone())
            .path_and_query(path_and_query.clone())
            .build()
            .expect("an authority and a path make a URI");
        let request = state.clients.live_h2.send(&backend.authority, Request::from_parts(parts, body));
        tokio::time::timeout(routing.timeout, request).await.map(|r| r.map(|r| r.map(Either::Right)).map_err(drop))
    } else {
        let request = state.clients.live_h1.send(&backend.authority, Request::from_parts(parts, body));
        tokio::time::timeout(routing.timeout, request).await.map(|r| r.map(|r| r.map(Either::Left)).map_err(drop))
    };

    let mut finish = Finish {
        state: state.clone(),
        routing: routing.clone(),
        index,
        id,
        time: now,
        method,
        path: path_and_query.path().to_string(),
        status: StatusCode::BAD_GATEWAY,
        latency_ms: 0.0,
        shadows,
        live_senders,
        logged_request,
        sample,
    };
    let response = match sent {
        Ok(Ok(r)) => r,
        failed => {
            let timed_out = failed.is_err();
            let (status, text) = if timed_out {
                (StatusCode::GATEWAY_TIMEOUT, "the model backend did not answer in time\n")
            } else {
                (StatusCode::BAD_GATEWAY, "the model backend cannot be reached\n")
            };
            backend.metrics.upstream_failure(timed_out);
            let elapsed = start.elapsed().as_secs_f64();
            backend.metrics.observe(status.as_u16(), elapsed);
            finish.status = status;
            finish.latency_ms = millis(elapsed);
            finish.run(None);
            let mut r = plain(status, text);
            r.headers_mut().insert(PREDICTION_ID, id_header);
            return r;
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    backend.metrics.observe(response.status().as_u16(), elapsed);
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(PREDICTION_ID, id_header);
    finish.status = parts.status;
    finish.latency_ms = millis(elapsed);
    let wants_label = routing.label_path.is_some() && routing.window_size > 0 && parts.status.is_success();
    let mut limit = if finish.live_senders.is_empty() { 0 } else { capture_limit };
    if wants_label {
        limit = limit.max(LABEL_BODY_BYTES);
    }
    if sample {
        limit = limit.max(routing.log_body_bytes);
    }
    let body = if limit == 0 {
        finish.run(None);
        Tee::plain(body)
    } else {
        Tee::capture(body, limit, move |c| finish.run(Some(c)))
    };
    Response::from_parts(parts, Either::Left(body))
}

fn millis(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

/// What is done once the live answer has gone through: the window entry, the answer for the comparisons, the log.
struct Finish {
    state: Arc<State>,
    routing: Arc<Routing>,
    index: usize,
    id: String,
    time: SystemTime,
    method: Method,
    path: String,
    status: StatusCode,
    latency_ms: f64,
    shadows: Vec<Arc<str>>,
    live_senders: Vec<oneshot::Sender<Arc<LiveAnswer>>>,
    logged_request: Option<oneshot::Receiver<Arc<Captured>>>,
    sample: bool,
}

impl Finish {
    fn run(self, answer: Option<Captured>) {
        let backend = &self.routing.backends[self.index];
        let whole = answer.as_ref().filter(|a| a.complete && !a.truncated);
        let label = match (&self.routing.label_path, whole) {
            (Some(path), Some(a)) if self.status.is_success() => serde_json::from_slice(&a.bytes)
                .ok()
                .and_then(|doc| path.lookup(&doc).and_then(predicted_label))
                .filter(|l| l.len() <= MAX_LABEL),
            _ => None,
        };
        if self.routing.window_size > 0 {
            let prediction = Prediction {
                variant: backend.name.clone(),
                model_version: backend.model_version.clone(),
                label: label.clone(),
                time: self.time,
                feedback_seen: false,
            };
            lock(&self.state.window).insert(&self.id, prediction);
        }
        if !self.live_senders.is_empty() {
            let live = Arc::new(LiveAnswer { status: self.status, body: whole.map(|a| a.bytes.clone()) });
            for tx in self.live_senders {
                let _ = tx.send(live.clone());
            }
        }
        self.state.log.write_later(PredictionRecord {
            id: self.id,
            time: self.time,
            variant: backend.name.clone(),
            model_version: backend.model_version.clone(),
            method: self.method,
            path: self.path,
            status: self.status.as_u16(),
            latency_ms: self.latency_ms,
            shadows: self.shadows,
            label,
            request: self.logged_request.and_then(|mut rx| rx.try_recv().ok()),
            response: if self.sample { answer } else { None },
            body_limit: self.routing.log_body_bytes,
        });
    }
}

/// One line of the prediction log, formatted by the log's writer thread, off the request path.
struct PredictionRecord {
    id: String,
    time: SystemTime,
    variant: Arc<str>,
    model_version: Option<Arc<str>>,
    method: Method,
    path: String,
    status: u16,
    latency_ms: f64,
    shadows: Vec<Arc<str>>,
    label: Option<String>,
    /// The sampled request body's copy.
    request: Option<Arc<Captured>>,
    /// The sampled answer body's copy.
    response: Option<Captured>,
    /// The logged bodies' size cap.
    body_limit: usize,
}

impl Record for PredictionRecord {
    fn line(&self) -> String {
        let mut line = Line::new();
        line.str("type", "prediction")
            .str("id", &self.id)
            .str("time", &rfc3339(self.time))
            .str("variant", &self.variant)
            .opt_str("modelVersion", self.model_version.as_deref())
            .str("method", self.method.as_str())
            .str("path", &self.path)
            .value("status", &self.status)
            .value("latencyMs", &self.latency_ms);
        if !self.shadows.is_empty() {
            line.value("shadows", &self.shadows);
        }
        line.opt_str("label", self.label.as_deref());
        if let Some(c) = &self.request {
            line.value("request", &LoggedBody::new(c, self.body_limit));
        }
        if let Some(c) = &self.response {
            line.value("response", &LoggedBody::new(c, self.body_limit));
        }
        line.finish()
    }
}

/// Whether a request goes to its backend over HTTP/2: a gRPC request (which needs HTTP/2's trailers and streams)
/// that came over HTTP/2. Anything else goes over HTTP/1.1, which every model server's REST port speaks (uvicorn,
/// which serves KServe's Python model servers, MLServer and BentoML, speaks no HTTP/2), as nginx and Istio do for a
/// port that is not declared gRPC. gRPC-Web (`application/grpc-web`) is made for HTTP/1.1 and goes over it.
pub fn grpc_over_h2(parts: &http::request::Parts) -> bool {
    parts.version == Version::HTTP_2
        && parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| {
            let v = v.as_bytes();
            v.len() >= 16
                && v[..16].eq_ignore_ascii_case(b"application/grpc")
                && matches!(v.get(16), None | Some(b'+' | b';'))
        })
}

/// What an HTTP/2 request needs to go on over HTTP/1.1 (RFC 9113 §8.3.1 and §8.2.3): a `host` header from its
/// `:authority`, and its `cookie` fields, which HTTP/2 may send one per cookie, joined into one.
pub fn http2_fields_for_http1(parts: &mut http::request::Parts) {
    if !parts.headers.contains_key(header::HOST)
        && let Some(host) = parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(header::HOST, host);
    }
    let cookies = parts.headers.get_all(header::COOKIE);
    if cookies.iter().nth(1).is_some() {
        let joined: Vec<&[u8]> = cookies.iter().map(HeaderValue::as_bytes).collect();
        if let Ok(one) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
            parts.headers.insert(header::COOKIE, one);
        }
    }
}

/// `keep-alive` and `proxy-connection`, which `http` has no constants for.
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes the headers that belong to one connection (RFC 9110 §7.6.1), keeping `te: trailers` for gRPC.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them (or only `connection`): one pass over the names decides whether to look.
    let hop_by_hop = |name: &HeaderName| {
        name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
            || name == header::UPGRADE
            || name == header::PROXY_AUTHENTICATE
            || name == header::PROXY_AUTHORIZATION
            || name == header::TE
            || name == KEEP_ALIVE
            || name == PROXY_CONNECTION
    };
    if !headers.keys().any(hop_by_hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
    ] {
        headers.remove(name);
    }
    let trailers_only = headers.get(header::TE).is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    if !trailers_only {
        headers.remove(header::TE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_grpc_over_http2_goes_to_the_backend_over_http2() {
        let cases = [
            (Version::HTTP_2, Some("application/grpc"), true),
            (Version::HTTP_2, Some("application/grpc+proto"), true),
            (Version::HTTP_2, Some("Application/GRPC; charset=x"), true),
            (Version::HTTP_2, Some("application/grpc-web"), false),
            (Version::HTTP_2, Some("application/grpcx"), false),
            (Version::HTTP_2, Some("application/json"), false),
            (Version::HTTP_2, None, false),
            (Version::HTTP_11, Some("application/grpc"), false),
        ];
        for (version, content_type, want) in cases {
            let mut req = Request::post("/p").version(version);
            if let Some(t) = content_type {
                req = req.header(header::CONTENT_TYPE, t);
            }
            let parts = req.body(()).unwrap().into_parts().0;
            assert_eq!(grpc_over_h2(&parts), want, "{version:?} {content_type:?}");
        }
    }

    #[test]
    fn an_http2_request_gets_a_host_and_one_cookie_line_for_http1() {
        let mut parts = Request::post("http://models:8080/p")
            .version(Version::HTTP_2)
            .header(header::COOKIE, "a=1")
            .header(header::COOKIE, "b=2")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        http2_fields_for_http1(&mut parts);
        assert_eq!(parts.headers[header::HOST], "models:8080");
        let cookies: Vec<_> = parts.headers.get_all(header::COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2"]);
        // A host the client sent is kept.
        let mut parts = Request::get("http://models/p").header(header::HOST, "mine").body(()).unwrap().into_parts().0;
        http2_fields_for_http1(&mut parts);
        assert_eq!(parts.headers[header::HOST], "mine");
    }

    #[test]
    fn hop_by_hop_headers_go_and_te_trailers_stays() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-user-id", HeaderValue::from_static("u1"));
        strip_hop_by_hop(&mut h);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["te", "x-user-id"]);
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut h);
        assert!(h.get(header::TE).is_none());
    }
}
