//! `POST /feedback`: ground truth for earlier predictions, `{predictionId, label}` or `{predictionId, reward}`, one
//! object or an array. Each item is joined with the window of recent predictions, scored per variant, and written
//! to the prediction log, joined or not, so late feedback is counted and kept for offline joins.

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compare::scalar_label;

use super::id::rfc3339;
use super::metrics::Scored;
use super::{State, lock};

/// The largest feedback body accepted.
const MAX_FEEDBACK_BYTES: usize = 4 << 20;

/// One feedback item.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    #[serde(alias = "prediction_id")]
    prediction_id: String,
    #[serde(default)]
    label: Option<Value>,
    #[serde(default)]
    reward: Option<f64>,
}

/// The answer: how many items were joined and why the others were not.
#[derive(Serialize, Default, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Joined with a prediction in the window.
    pub matched: u64,
    /// Not in the window: unknown, or older than the window (logged anyway).
    pub not_in_window: u64,
    /// For a prediction that already had feedback (logged, not scored again).
    pub duplicate: u64,
    /// Not of the expected shape.
    pub invalid: u64,
}

/// One line of the prediction log for a feedback item.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FeedbackRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    time: String,
    matched: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prediction_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    predicted: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correct: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reward: Option<f64>,
}

/// Serves `POST /feedback`.
pub async fn handle<B>(state: &State, req: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let body = match Limited::new(req.into_body(), MAX_FEEDBACK_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &serde_json::json!({"error": "the feedback body is too large"}),
            );
        }
        Err(_) => {
            return json(StatusCode::BAD_REQUEST, &serde_json::json!({"error": "the feedback body did not arrive"}));
        }
    };
    let items = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        Ok(item @ Value::Object(_)) => vec![item],
        _ => {
            state.metrics.feedback_unmatched.with_label_values(&["invalid"]).inc();
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"error": "expected {predictionId, label} or {predictionId, reward}, or an array of them"}),
            );
        }
    };
    let mut summary = Summary::default();
    for item in items {
        match serde_json::from_value::<Item>(item) {
            Ok(item) if valid(&item) => join(state, &item, &mut summary),
            _ => {
                summary.invalid += 1;
                state.metrics.feedback_unmatched.with_label_values(&["invalid"]).inc();
            }
        }
    }
    json(StatusCode::OK, &summary)
}

fn valid(item: &Item) -> bool {
    let label_ok = item.label.as_ref().is_none_or(|l| scalar_label(l).is_some());
    let reward_ok = item.reward.is_none_or(f64::is_finite);
    !item.prediction_id.is_empty() && (item.label.is_some() || item.reward.is_some()) && label_ok && reward_ok
}

fn join(state: &State, item: &Item, summary: &mut Summary) {
    let now = SystemTime::now();
    // Copy what is needed out of the window, and take the lock only for that.
    let joined = {
        let mut window = lock(&state.window);
        window.get_mut(&item.prediction_id).map(|p| {
            let first = !p.feedback_seen;
            p.feedback_seen = true;
            (first, p.variant.clone(), p.model_version.clone(), p.label.clone(), p.time)
        })
    };
    let mut record = FeedbackRecord {
        kind: "feedback",
        id: &item.prediction_id,
        time: rfc3339(now),
        matched: false,
        duplicate: false,
        variant: None,
        model_version: None,
        prediction_time: None,
        predicted: None,
        label: item.label.as_ref(),
        correct: None,
        reward: item.reward,
    };
    let Some((first, variant, model_version, predicted, time)) = &joined else {
        summary.not_in_window += 1;
        state.metrics.feedback_unmatched.with_label_values(&["not_in_window"]).inc();
        state.log.write(&record);
        return;
    };
    record.matched = true;
    record.variant = Some(variant);
    record.model_version = model_version.as_deref();
    record.prediction_time = Some(rfc3339(*time));
    record.predicted = predicted.as_deref();
    let correct = match (&item.label, predicted) {
        (Some(label), Some(predicted)) => scalar_label(label).map(|l| &l == predicted),
        _ => None,
    };
    record.correct = correct;
    if *first {
        summary.matched += 1;
        if item.label.is_some() {
            let scored = match correct {
                Some(true) => Scored::Correct,
                Some(false) => Scored::Incorrect,
                None => Scored::Unscored,
            };
            state.metrics.labelled(variant, scored);
        }
        if let Some(reward) = item.reward {
            state.metrics.rewarded(variant, reward);
        }
    } else {
        summary.duplicate += 1;
        record.duplicate = true;
        state.metrics.feedback_unmatched.with_label_values(&["duplicate"]).inc();
    }
    state.log.write(&record);
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
