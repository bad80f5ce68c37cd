//! The admin port: `/metrics` (Prometheus text), `/healthz` (the process serves), `/readyz` (a configuration is
//! loaded), `/config` (the configuration serving and the last load error).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use super::{State, lock};

/// Serves one request on the admin port.
pub async fn serve(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let ready = state.routing.load().is_some();
    Ok(match req.uri().path() {
        "/metrics" => text(StatusCode::OK, "text/plain; version=0.0.4", state.metrics.render()),
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if ready => text(StatusCode::OK, "text/plain", "ready\n".into()),
        "/readyz" => {
            let error = lock(&state.last_error).clone().unwrap_or_else(|| "no configuration loaded".into());
            text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("not ready: {error}\n"))
        }
        "/config" => {
            let routing = state.routing.load();
            let doc = serde_json::json!({
                "config": routing.as_ref().map(|r| &r.config),
                "lastError": *lock(&state.last_error),
            });
            text(StatusCode::OK, "application/json", doc.to_string())
        }
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    })
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
