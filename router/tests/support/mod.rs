//! Test support: small in-process upstreams, a router started on a temporary config file, clients, and readers for
//! the metrics and the prediction log. Waiting is always "until a condition holds, within a deadline".

#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use champion_router::server::{Options, Running, start};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;

/// How long a test waits for a condition before it fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// A response body made of given frames (data and trailers).
pub struct Frames(pub VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

/// A JSON answer.
pub fn json(status: u16, v: Value) -> Response<Frames> {
    let mut r = Response::new(Frames(VecDeque::from([Frame::data(Bytes::from(v.to_string()))])));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
    r
}

/// Starts an upstream (HTTP/1.1 and HTTP/2 prior knowledge) on a free loopback port.
pub async fn upstream<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Frames>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let f = handler(req);
                    async move { Ok::<_, Infallible>(f.await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    addr
}

/// An upstream that answers `{"backend": name, ...extra}` and echoes what it saw in headers: the prediction ID
/// (`seen-prediction-id`), the HTTP version (`seen-version`) and the shadow header (`seen-shadow`).
pub async fn named(name: &'static str, extra: Value) -> SocketAddr {
    upstream(move |req: Request<Incoming>| {
        let extra = extra.clone();
        async move {
            let seen_id = req.headers().get("x-prediction-id").cloned();
            let seen_host = req.headers().get("host").cloned();
            let version = format!("{:?}", req.version());
            let mut doc = serde_json::json!({"backend": name});
            if let (Value::Object(d), Value::Object(e)) = (&mut doc, extra) {
                d.extend(e);
            }
            let mut r = json(200, doc);
            if let Some(id) = seen_id {
                r.headers_mut().insert("seen-prediction-id", id);
            }
            r.headers_mut().insert("seen-version", version.parse().unwrap());
            if let Some(host) = seen_host {
                r.headers_mut().insert("seen-host", host);
            }
            r
        }
    })
    .await
}

/// A loopback address where nothing listens.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// A router serving a config file in its own temporary directory.
pub struct TestRouter {
    pub running: Running,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl TestRouter {
    /// Starts a router on `config` (YAML); `{log}` in it is replaced by the log file's path.
    pub async fn start(config: &str) -> TestRouter {
        let dir = std::env::temp_dir().join(format!(
            "champion-router-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("predictions.jsonl");
        let path = dir.join("router.yaml");
        std::fs::write(&path, config.replace("{log}", &log.display().to_string())).unwrap();
        let running = start(Options {
            config_path: path.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            resolve: Default::default(),
            reload_every: Duration::from_millis(50),
        })
        .await
        .unwrap();
        TestRouter { running, dir, config: path, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.proxy_addr)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.admin_addr)
    }

    /// Replaces the config file (the router picks it up within its reload interval).
    pub fn rewrite(&self, config: &str) {
        let tmp = self.dir.join("router.yaml.tmp");
        std::fs::write(&tmp, config.replace("{log}", &self.log.display().to_string())).unwrap();
        std::fs::rename(tmp, &self.config).unwrap();
    }

    /// The metrics text.
    pub async fn metrics(&self) -> String {
        let (_, _, body) = get(&h1(), &self.admin("/metrics"), &[]).await;
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// The value of the series `name{labels...}`, 0 when it does not exist yet.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics().await, name, labels)
    }

    /// Waits until the series reaches `want`.
    pub async fn wait_metric(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        let end = tokio::time::Instant::now() + DEADLINE;
        loop {
            let got = self.metric(name, labels).await;
            if got == want {
                return;
            }
            assert!(tokio::time::Instant::now() < end, "{name}{labels:?} is {got}, want {want}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The prediction log's records, after a flush.
    pub fn log_records(&self) -> Vec<Value> {
        self.running.state.log.flush();
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Polls `check` until it holds, within the deadline.
pub async fn eventually<F, Fut>(mut check: F) -> Result<(), ()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < end {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(())
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

/// An HTTP/1.1 client.
pub fn h1() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 prior-knowledge client.
pub fn h2() -> TestClient {
    Client::builder(TokioExecutor::new()).http2_only(true).build_http()
}

/// Sends a request and reads the whole answer.
pub async fn send(
    client: &TestClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client.request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

pub async fn get(client: &TestClient, url: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
    send(client, "GET", url, headers, "").await
}

pub async fn post(
    client: &TestClient,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Bytes) {
    send(client, "POST", url, headers, body).await
}

pub fn body_json(b: &Bytes) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(b)))
}
