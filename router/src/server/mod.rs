//! The proxy: two listeners (proxy and admin), the shared state, and the configuration reload loop.

pub mod admin;
pub mod body;
pub mod feedback;
pub mod h1conn;
pub mod h1server;
pub mod h1wire;
pub mod h2pool;
pub mod h2server;
pub mod h2wire;
pub mod id;
pub mod listener;
pub mod log;
pub mod metrics;
pub mod mirror;
pub mod pool;
pub mod proxy;
pub mod routing;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::RouterConfig;
use crate::window::Window;

use self::log::LogHandle;
use self::metrics::Metrics;
use self::routing::Routing;

/// A recent prediction, as the feedback window keeps it.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The variant that answered.
    pub variant: Arc<str>,
    /// Its model version.
    pub model_version: Option<Arc<str>>,
    /// The predicted label read from the answer, when a label path is configured.
    pub label: Option<String>,
    /// When the request arrived.
    pub time: SystemTime,
    /// Feedback has been joined with it already.
    pub feedback_seen: bool,
}

/// The HTTP clients: the live path and the shadows each have their own pools, HTTP/1.1 ([`pool::H1Pool`]) and
/// HTTP/2 ([`h2pool::H2Pool`]) apart.
pub struct Clients {
    /// Live backends, HTTP/1.1.
    pub live_h1: pool::H1Pool,
    /// Live backends, HTTP/2 without TLS (prior knowledge).
    pub live_h2: h2pool::H2Pool,
    /// Shadows, HTTP/1.1.
    pub shadow_h1: pool::H1Pool,
    /// Shadows, HTTP/2.
    pub shadow_h2: h2pool::H2Pool,
}

/// What every request shares.
pub struct State {
    /// The configuration serving; none until a valid one is loaded.
    pub routing: ArcSwapOption<Routing>,
    /// The metrics.
    pub metrics: Metrics,
    /// Recent predictions for feedback.
    pub window: Mutex<Window<Prediction>>,
    /// The prediction log.
    pub log: LogHandle,
    /// The HTTP clients.
    pub clients: Clients,
    /// Why the configuration file's current content is not serving, if it is not.
    pub last_error: Mutex<Option<String>>,
    /// Address overrides ([`Options::resolve`]).
    pub resolve: BTreeMap<String, String>,
}

/// Locks a mutex; a panic elsewhere while holding it leaves data that is still usable here.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The status class label: `1xx` to `5xx`.
pub fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// How to start a router.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file (JSON or YAML), re-read when it changes.
    pub config_path: PathBuf,
    /// The proxy port.
    pub listen: SocketAddr,
    /// The admin port (`/metrics`, `/healthz`, `/readyz`, `/config`).
    pub admin_listen: SocketAddr,
    /// How often the configuration file is checked.
    pub reload_every: Duration,
    /// Addresses to use instead of the configured ones (`host:port` → `ip:port`), like curl's
    /// `--resolve`: for running the router outside the cluster whose Service names its configuration uses.
    pub resolve: BTreeMap<String, String>,
}

/// A running router.
pub struct Running {
    /// Where the proxy listens.
    pub proxy_addr: SocketAddr,
    /// Where the admin port listens.
    pub admin_addr: SocketAddr,
    /// The shared state (for tests and the binary).
    pub state: Arc<State>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets open connections finish (at most `grace`), and flushes the log.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(grace, t).await;
        }
        let log = self.state.log.clone();
        let _ = tokio::task::spawn_blocking(move || log.flush()).await;
    }
}

/// Loads the configuration, binds both ports and starts serving. An invalid configuration file does not stop the
/// start: the router is unready (and answers 503) until the file becomes valid.
pub async fn start(options: Options) -> io::Result<Running> {
    let metrics = Metrics::new();
    let text = tokio::fs::read_to_string(&options.config_path).await;
    let first = match &text {
        Ok(t) => RouterConfig::parse(t).map_err(|e| e.to_string()),
        Err(e) => Err(format!("{}: {e}", options.config_path.display())),
    };
    let log_config = first.as_ref().map(|c| c.prediction_log.clone()).unwrap_or_default();
    let state = Arc::new(State {
        routing: ArcSwapOption::empty(),
        window: Mutex::new(Window::new(0)),
        log: LogHandle::start(&log_config, metrics.log_dropped.clone()),
        metrics,
        clients: Clients {
            live_h1: pool::H1Pool::default(),
            live_h2: h2pool::H2Pool::default(),
            shadow_h1: pool::H1Pool::default(),
            shadow_h2: h2pool::H2Pool::default(),
        },
        last_error: Mutex::new(None),
        resolve: options.resolve.clone(),
    });
    match first {
        Ok(config) => apply(&state, config),
        Err(e) => reject(&state, e),
    }

    let proxy = TcpListener::bind(options.listen).await?;
    let admin = TcpListener::bind(options.admin_listen).await?;
    let (proxy_addr, admin_addr) = (proxy.local_addr()?, admin.local_addr()?);
    let (stop, stopped) = watch::channel(false);
    let proxy_task = tokio::spawn(listener::accept(proxy, stopped.clone(), state.clone()));
    let s = state.clone();
    let admin_task = tokio::spawn(accept(admin, stopped.clone(), move |req| admin::serve(s.clone(), req)));
    let reload_task = tokio::spawn(reload(
        state.clone(),
        options.config_path,
        text.unwrap_or_default(),
        options.reload_every,
        stopped,
    ));
    Ok(Running { proxy_addr, admin_addr, state, stop, tasks: vec![proxy_task, admin_task, reload_task] })
}

/// Accepts connections on the admin port (HTTP/1.1 and HTTP/2 prior knowledge, through hyper) until told to stop,
/// then waits for the open ones to finish their requests.
async fn accept<F, Fut, B>(listener: TcpListener, mut stop: watch::Receiver<bool>, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, std::convert::Infallible>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let builder = builder.clone();
                let handler = handler.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let conn = builder.serve_connection(TokioIo::new(stream), service_fn(handler));
                    let _ = watcher.watch(conn).await;
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Swaps a new configuration in; the requests in flight finish on the one they started with.
fn apply(state: &State, config: RouterConfig) {
    let previous = state.routing.load_full();
    match Routing::build(config, &state.metrics, previous.as_deref(), &state.resolve) {
        Ok(routing) => {
            state.log.configure(&routing.config.prediction_log);
            lock(&state.window).set_capacity(routing.window_size);
            state.clients.live_h1.keep_only(routing.backends.iter().map(|b| &b.authority));
            state.clients.shadow_h1.keep_only(routing.shadows.iter().map(|s| &s.authority));
            state.clients.live_h2.keep_only(routing.backends.iter().map(|b| &b.authority));
            state.clients.shadow_h2.keep_only(routing.shadows.iter().map(|s| &s.authority));
            state.routing.store(Some(Arc::new(routing)));
            *lock(&state.last_error) = None;
            state.metrics.config_valid.set(1);
            state.metrics.config_reloads.with_label_values(&["ok"]).inc();
        }
        Err(e) => reject(state, e),
    }
}

fn reject(state: &State, error: String) {
    eprintln!("champion-router: configuration rejected, the last good one keeps serving: {error}");
    *lock(&state.last_error) = Some(error);
    state.metrics.config_valid.set(0);
    state.metrics.config_reloads.with_label_values(&["error"]).inc();
}

/// Re-reads the configuration file every `every` and applies it when its content changed. A mounted ConfigMap is
/// replaced through a symlink swap, so the content is compared, not the modification time.
async fn reload(state: Arc<State>, path: PathBuf, mut seen: String, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Ok(text) = tokio::fs::read_to_string(&path).await else { continue };
        if text == seen {
            continue;
        }
        match RouterConfig::parse(&text) {
            Ok(config) => apply(&state, config),
            Err(e) => reject(&state, e.to_string()),
        }
        seen = text;
    }
}
