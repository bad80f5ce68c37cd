//! The operator's HTTP endpoints: `/metrics`, `/healthz` (the process runs) and `/readyz` (the CRDs
//! are served and every controller has synced its cache and reconciles; see
//! [`crate::controller::readiness`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::controller::readiness::Readiness;
use crate::metrics::Metrics;

/// What the endpoints read.
#[derive(Clone)]
pub struct ServerState {
    /// The metrics to serve.
    pub metrics: Arc<Metrics>,
    /// Whether the controllers' caches are synced.
    pub ready: Arc<Readiness>,
}

/// The router with the three endpoints.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(s): State<ServerState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render())
}

async fn readyz(State(s): State<ServerState>) -> impl IntoResponse {
    let code = if s.ready.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, s.ready.describe())
}

/// Serves on a bound listener until `shutdown` completes.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    state: ServerState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
