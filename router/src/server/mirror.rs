//! A copy of one request to one shadow, run as a detached task with its own client: it waits for the request body
//! the live backend read, sends it, reads the shadow's answer (capped), waits for the live answer, compares them and
//! counts the outcome. Nothing here can slow or fail the live answer; every step is bounded by the shadow's timeout.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::HeaderValue;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::timeout_at;

use crate::compare::{Outcome, compare_bodies};

use super::body::Captured;
use super::id::rfc3339;
use super::metrics::Comparison;
use super::routing::{Comparator, ShadowBackend};
use super::{State, status_class};

/// The header that tells a shadow it is answering a copy.
pub const SHADOW_HEADER: &str = "x-champion-shadow";

/// The live answer, as the comparison sees it.
pub struct LiveAnswer {
    /// The live status.
    pub status: StatusCode,
    /// The whole live body, when it arrived whole and within the capture limit.
    pub body: Option<Bytes>,
}

/// One copy of a request to a shadow; it holds its slot of the shadow's concurrency cap until it ends.
pub struct Copy {
    /// The shadow.
    pub shadow: Arc<ShadowBackend>,
    /// The slot in the shadow's cap.
    pub permit: OwnedSemaphorePermit,
    /// The prediction ID of the live request.
    pub id: String,
    /// The request's method.
    pub method: Method,
    /// The request's path and query.
    pub path_and_query: PathAndQuery,
    /// The request's headers, hop-by-hop ones removed.
    pub headers: HeaderMap,
    /// Whether to speak HTTP/2 to the shadow (the client spoke HTTP/2).
    pub h2: bool,
    /// The request body, once the live side has read it.
    pub request: oneshot::Receiver<Arc<Captured>>,
    /// The live answer, when a comparison is configured.
    pub live: Option<oneshot::Receiver<Arc<LiveAnswer>>>,
    /// The comparison.
    pub comparator: Option<Arc<Comparator>>,
}

/// One line of the prediction log for a shadow's answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShadowRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    time: String,
    shadow: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    difference: Option<f64>,
}

impl Copy {
    /// Runs the copy to its end.
    pub async fn run(self, state: Arc<State>) {
        let shadow = self.shadow.clone();
        let name: &str = &shadow.name;
        let deadline = tokio::time::Instant::now() + shadow.timeout;
        let metrics = &state.metrics;
        let request = match timeout_at(deadline, self.request).await {
            Ok(Ok(c)) if c.complete && !c.truncated && c.bytes.len() <= shadow.max_body => c,
            Ok(Ok(c)) if c.complete => {
                metrics.mirror_dropped.with_label_values(&[name, "body_size"]).inc();
                return;
            }
            _ => {
                metrics.mirror_dropped.with_label_values(&[name, "incomplete_body"]).inc();
                return;
            }
        };
        metrics.mirrored.with_label_values(&[name]).inc();
        let started = Instant::now();
        let time = SystemTime::now();
        let mut headers = self.headers;
        if let Ok(v) = HeaderValue::from_str(name) {
            headers.insert(SHADOW_HEADER, v);
        }
        let uri = Uri::builder()
            .scheme("http")
            .authority(shadow.authority.clone())
            .path_and_query(self.path_and_query)
            .build()
            .expect("an authority and a path make a URI");
        let mut req = Request::new(Full::new(request.bytes.clone()));
        *req.method_mut() = self.method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        *req.version_mut() = if self.h2 { Version::HTTP_2 } else { Version::HTTP_11 };
        let max_body = shadow.max_body;
        let answer = timeout_at(deadline, async {
            let (status, body) = if self.h2 {
                let r = state.clients.shadow_h2.send(&shadow.authority, req).await.ok()?;
                (r.status(), Limited::new(r.into_body(), max_body).collect().await)
            } else {
                let r = state.clients.shadow_h1.send(&shadow.authority, req).await.ok()?;
                (r.status(), Limited::new(r.into_body(), max_body).collect().await)
            };
            Some((status, body.ok().map(|b| b.to_bytes())))
        })
        .await
        .ok()
        .flatten();
        let latency = started.elapsed().as_secs_f64();
        if answer.is_some() {
            shadow.breaker.answered();
        } else {
            shadow.breaker.failed();
        }
        let class = answer.as_ref().map_or("failed", |(s, _)| status_class(*s));
        metrics.shadow_responses.with_label_values(&[name, class]).inc();

        let mut outcome = None;
        let mut difference = None;
        if let (Some(live), Some(comparator)) = (self.live, &self.comparator) {
            let live = timeout_at(deadline, live).await.ok().and_then(Result::ok);
            let judged = judge(comparator, live.as_deref(), answer.as_ref());
            difference = judged.1;
            metrics.compared(name, judged.0, judged.1);
            outcome = Some(judged.0);
        }
        state.log.write(&ShadowRecord {
            kind: "shadow",
            id: &self.id,
            time: rfc3339(time),
            shadow: name,
            model_version: shadow.model_version.as_deref(),
            status: answer.as_ref().map(|(s, _)| s.as_u16()),
            latency_ms: (latency * 1e6).round() / 1e3,
            outcome: outcome.map(Comparison::label),
            difference,
        });
        drop(self.permit);
    }
}

/// The outcome of a pair: the live side first (an unusable live answer says nothing about the shadow), then the
/// shadow's failure, then the comparison itself.
fn judge(
    comparator: &Comparator,
    live: Option<&LiveAnswer>,
    shadow: Option<&(StatusCode, Option<Bytes>)>,
) -> (Comparison, Option<f64>) {
    let Some(live_body) = live.filter(|l| l.status.is_success()).and_then(|l| l.body.as_ref()) else {
        return (Comparison::LiveUnusable, None);
    };
    let shadow_body = match shadow {
        Some((status, Some(body))) if status.is_success() => body,
        _ => return (Comparison::ShadowFailed, None),
    };
    match compare_bodies(&comparator.path, &comparator.mode, live_body, shadow_body) {
        Outcome::Agree { difference } => (Comparison::Agree, difference),
        Outcome::Disagree { difference } => (Comparison::Disagree, difference),
        Outcome::ShadowUnusable => (Comparison::ShadowUnusable, None),
        Outcome::LiveUnusable => (Comparison::LiveUnusable, None),
    }
}
