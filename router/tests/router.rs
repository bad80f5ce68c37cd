//! The router as a whole, against small in-process upstreams on loopback.

mod support;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::json;
use support::*;
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_split_is_exact_and_every_answer_has_a_prediction_id() {
    let a = named("a", json!({})).await;
    let b = named("b", json!({})).await;
    let r = TestRouter::start(&format!(
        "backends:\n- {{name: a, address: '{a}', weight: 75, modelVersion: '1.0'}}\n- {{name: b, address: 'http://{b}', weight: 25}}\n\
         predictionLog: {{destination: {{file: '{{log}}'}}}}\n"
    ))
    .await;
    let client = h1();
    let mut counts = BTreeMap::new();
    let mut ids = HashSet::new();
    for _ in 0..400 {
        let (status, headers, body) = get(&client, &r.url("/v1/predict?x=1"), &[]).await;
        assert_eq!(status, 200);
        let id = headers["x-prediction-id"].to_str().unwrap().to_string();
        assert_eq!(headers["seen-prediction-id"], id.as_str(), "the backend sees the same ID");
        assert_eq!(headers["seen-version"], "HTTP/1.1");
        ids.insert(id);
        *counts.entry(body_json(&body)["backend"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    assert_eq!(counts, BTreeMap::from([("a".to_string(), 300), ("b".to_string(), 100)]));
    assert_eq!(ids.len(), 400, "IDs are unique");
    // A client's own ID is kept.
    let (_, headers, _) = get(&client, &r.url("/"), &[("x-prediction-id", "order-42")]).await;
    assert_eq!(
        (&headers["x-prediction-id"], &headers["seen-prediction-id"]),
        (&"order-42".parse().unwrap(), &"order-42".parse().unwrap())
    );

    // 300 of the 400, and the one with the client's ID.
    r.wait_metric("champion_router_requests_total", &[("variant", "a"), ("class", "2xx")], 301.0).await;
    r.wait_metric("champion_router_request_duration_seconds_count", &[("variant", "b")], 100.0).await;
    let log = r.log_records();
    let line = log.iter().find(|l| l["id"] == "order-42").expect("the prediction is logged");
    assert_eq!(
        (&line["type"], &line["status"], &line["path"], &line["method"]),
        (&json!("prediction"), &json!(200), &json!("/"), &json!("GET"))
    );
    assert!(line["latencyMs"].as_f64().is_some() && line["time"].as_str().unwrap().ends_with('Z'));
    assert!(log.iter().any(|l| l["variant"] == "a" && l["modelVersion"] == "1.0"));
    assert_eq!(log.iter().filter(|l| l["type"] == "prediction").count(), 401);
}

/// REST over HTTP/2 reaches the backend over HTTP/1.1, which every model server's REST port speaks; gRPC keeps
/// HTTP/2 (below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_is_proxied_to_the_backend_over_http1() {
    let a = named("a", json!({})).await;
    let r = TestRouter::start(&format!(
        "backends: [{{name: a, address: '{a}', weight: 1}}]\npredictionLog: {{destination: none}}\n"
    ))
    .await;
    let client = h2();
    for _ in 0..20 {
        let (status, headers, body) = post(&client, &r.url("/predict"), &[], r#"{"x":1}"#).await;
        assert_eq!(status, 200);
        assert_eq!(headers["seen-version"], "HTTP/1.1");
        assert_eq!(headers["seen-host"], r.url("").trim_start_matches("http://"), "the host is the :authority");
        assert!(headers.contains_key("x-prediction-id"));
        assert_eq!(body_json(&body)["backend"], "a");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_answers_pass_through_with_their_trailers() {
    let grpc = upstream(|req: Request<Incoming>| async move {
        assert_eq!(req.headers()["te"], "trailers", "te: trailers reaches the backend");
        assert_eq!(req.version(), http::Version::HTTP_2, "gRPC goes to the backend over HTTP/2");
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        trailers.insert("grpc-message", "echo".parse().unwrap());
        let mut r = http::Response::new(Frames(VecDeque::from([Frame::data(body), Frame::trailers(trailers)])));
        r.headers_mut().insert("content-type", "application/grpc".parse().unwrap());
        r
    })
    .await;
    let r = TestRouter::start(&format!(
        "backends: [{{name: a, address: '{grpc}', weight: 1}}]\npredictionLog: {{destination: none}}\n"
    ))
    .await;
    let req = Request::post(r.url("/model.Predictor/Predict"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\x02hi")))
        .unwrap();
    let resp = h2().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/grpc");
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers arrive");
    assert_eq!(
        (&trailers["grpc-status"], &trailers["grpc-message"]),
        (&"0".parse().unwrap(), &"echo".parse().unwrap())
    );
    assert_eq!(&collected.to_bytes()[..], b"\0\0\0\0\x02hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_header_keeps_each_user_on_one_variant() {
    let a = named("a", json!({})).await;
    let b = named("b", json!({})).await;
    let r = TestRouter::start(&format!(
        "backends: [{{name: a, address: '{a}', weight: 50}}, {{name: b, address: '{b}', weight: 50}}]\n\
         sticky: {{header: x-user-id}}\npredictionLog: {{destination: none}}\n"
    ))
    .await;
    let client = h1();
    let mut per_backend = BTreeMap::new();
    for user in 0..40 {
        let user = format!("user-{user}");
        let mut seen = HashSet::new();
        for _ in 0..5 {
            let (_, _, body) = get(&client, &r.url("/"), &[("x-user-id", &user)]).await;
            seen.insert(body_json(&body)["backend"].as_str().unwrap().to_string());
        }
        assert_eq!(seen.len(), 1, "{user} moved between variants: {seen:?}");
        *per_backend.entry(seen.into_iter().next().unwrap()).or_insert(0) += 1;
    }
    assert_eq!(per_backend.len(), 2, "both variants get users: {per_backend:?}");
}

const COMPARED: &str = "comparison: {path: predictions.0, mode: numeric, tolerance: 0.05}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_answers_are_compared_counted_and_logged() {
    let live = named("live", json!({"predictions": [0.90]})).await;
    let close = named("close", json!({"predictions": [0.93]})).await;
    let far = named("far", json!({"predictions": [0.20]})).await;
    let broken = upstream(|_| async { json(500, json!({"error": "boom"})) }).await;
    let r = TestRouter::start(&format!(
        "backends: [{{name: live, address: '{live}', weight: 1}}]\n\
         shadows:\n- {{name: close, address: '{close}', mirrorPercent: 100, modelVersion: '2'}}\n\
         - {{name: far, address: '{far}', mirrorPercent: 100}}\n- {{name: broken, address: '{broken}', mirrorPercent: 50}}\n\
         {COMPARED}predictionLog: {{destination: {{file: '{{log}}'}}}}\n"
    ))
    .await;
    let client = h1();
    for _ in 0..20 {
        let (status, _, body) = post(&client, &r.url("/predict"), &[], r#"{"instances":[[1,2]]}"#).await;
        assert_eq!((status.as_u16(), body_json(&body)["backend"].as_str()), (200, Some("live")));
    }
    let m = "champion_router_shadow_comparisons_total";
    r.wait_metric(m, &[("shadow", "close"), ("outcome", "agree")], 20.0).await;
    r.wait_metric(m, &[("shadow", "far"), ("outcome", "disagree")], 20.0).await;
    r.wait_metric(m, &[("shadow", "broken"), ("outcome", "shadow_failed")], 10.0).await;
    r.wait_metric("champion_router_shadow_responses_total", &[("shadow", "broken"), ("class", "5xx")], 10.0).await;
    r.wait_metric("champion_router_mirror_requests_total", &[("shadow", "far")], 20.0).await;
    let ratio = "champion_router_shadow_agreement_ratio";
    assert_eq!(
        (r.metric(ratio, &[("shadow", "close")]).await, r.metric(ratio, &[("shadow", "far")]).await),
        (1.0, 0.0)
    );
    // The numeric differences land in the histogram: 0.03 for close, 0.7 for far.
    let h = "champion_router_shadow_difference_bucket";
    assert_eq!(r.metric(h, &[("shadow", "close"), ("le", "0.05")]).await, 20.0);
    assert_eq!(r.metric(h, &[("shadow", "close"), ("le", "0.02")]).await, 0.0);
    assert_eq!(r.metric(h, &[("shadow", "far"), ("le", "0.5")]).await, 0.0);
    assert_eq!(r.metric(h, &[("shadow", "far"), ("le", "1")]).await, 20.0);
    let log = r.log_records();
    let shadow_lines: Vec<_> = log.iter().filter(|l| l["type"] == "shadow" && l["shadow"] == "close").collect();
    assert_eq!(shadow_lines.len(), 20);
    assert_eq!((&shadow_lines[0]["outcome"], &shadow_lines[0]["modelVersion"]), (&json!("agree"), &json!("2")));
    let prediction = log.iter().find(|l| l["id"] == shadow_lines[0]["id"] && l["type"] == "prediction").unwrap();
    assert!(prediction["shadows"].as_array().unwrap().contains(&json!("close")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_that_hangs_or_is_down_never_holds_the_live_answer() {
    let live = named("live", json!({"predictions": [1]})).await;
    // This shadow takes requests and never answers until released; a live path that waited would hang here.
    let release = Arc::new(Notify::new());
    let arrived = Arc::new(AtomicUsize::new(0));
    let (rel, arr) = (release.clone(), arrived.clone());
    let hanging = upstream(move |_| {
        let (rel, arr) = (rel.clone(), arr.clone());
        async move {
            // Registered before it is counted, so the release below cannot miss it.
            let released = rel.notified();
            arr.fetch_add(1, Ordering::SeqCst);
            released.await;
            json(200, json!({"predictions": [1]}))
        }
    })
    .await;
    let down = closed_port().await;
    let r = TestRouter::start(&format!(
        "backends: [{{name: live, address: '{live}', weight: 1}}]\n\
         shadows:\n- {{name: hanging, address: '{hanging}', mirrorPercent: 100, maxConcurrency: 3, timeoutMs: 60000}}\n\
         - {{name: down, address: '{down}', mirrorPercent: 100}}\n{COMPARED}predictionLog: {{destination: none}}\n"
    ))
    .await;
    let (a, b) = (h1(), h2());
    for i in 0..20 {
        let client = if i % 2 == 0 { &a } else { &b };
        let (status, _, body) = post(client, &r.url("/predict"), &[], "{}").await;
        assert_eq!((status.as_u16(), body_json(&body)["backend"].as_str()), (200, Some("live")));
    }
    r.wait_metric("champion_router_requests_total", &[("variant", "live"), ("class", "2xx")], 20.0).await;
    // The cap of 3 copies in flight: the other 17 are dropped and counted.
    r.wait_metric("champion_router_mirror_dropped_total", &[("shadow", "hanging"), ("reason", "concurrency")], 17.0)
        .await;
    eventually(|| {
        let arrived = arrived.clone();
        async move { arrived.load(Ordering::SeqCst) == 3 }
    })
    .await
    .expect("three copies reach the hanging shadow");
    // The dead shadow: each copy fails, until five in a row take it as down for a second (copies dropped, counted).
    eventually(|| {
        let r = &r;
        async move {
            let failed = r
                .metric("champion_router_shadow_comparisons_total", &[("shadow", "down"), ("outcome", "shadow_failed")])
                .await;
            let held = r
                .metric("champion_router_mirror_dropped_total", &[("shadow", "down"), ("reason", "shadow_down")])
                .await;
            failed >= 5.0 && failed + held == 20.0
        }
    })
    .await
    .expect("every copy to the dead shadow is either failed or held back");
    assert!(
        r.metric("champion_router_mirror_dropped_total", &[("shadow", "down"), ("reason", "shadow_down")]).await > 0.0
    );
    assert_eq!(r.metric("champion_router_shadow_agreement_ratio", &[("shadow", "down")]).await, 0.0);
    // Released, the three copies are compared and free their slots.
    release.notify_waiters();
    r.wait_metric("champion_router_shadow_comparisons_total", &[("shadow", "hanging"), ("outcome", "agree")], 3.0)
        .await;
    eventually(|| {
        let (r, a) = (&r, &a);
        async move {
            post(a, &r.url("/predict"), &[], "{}").await;
            r.metric("champion_router_mirror_requests_total", &[("shadow", "hanging")]).await >= 4.0
        }
    })
    .await
    .expect("freed slots take new copies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_request_bodies_are_not_mirrored() {
    let live = named("live", json!({})).await;
    let shadow = named("shadow", json!({})).await;
    let r = TestRouter::start(&format!(
        "backends: [{{name: live, address: '{live}', weight: 1}}]\n\
         shadows: [{{name: s, address: '{shadow}', mirrorPercent: 100, maxBodyBytes: 10}}]\npredictionLog: {{destination: none}}\n"
    ))
    .await;
    let (status, _, _) = post(&h1(), &r.url("/"), &[], &"x".repeat(100)).await;
    assert_eq!(status, 200, "the live request is served whole");
    post(&h1(), &r.url("/"), &[], "small").await;
    r.wait_metric("champion_router_mirror_dropped_total", &[("shadow", "s"), ("reason", "body_size")], 1.0).await;
    r.wait_metric("champion_router_mirror_requests_total", &[("shadow", "s")], 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_is_joined_scored_per_variant_and_logged() {
    let a = named("a", json!({"label": "cat"})).await;
    let b = named("b", json!({"label": "dog"})).await;
    let r = TestRouter::start(&format!(
        "backends: [{{name: a, address: '{a}', weight: 1, modelVersion: '1'}}, {{name: b, address: '{b}', weight: 1}}]\n\
         feedback: {{windowSize: 6, labelPath: label}}\npredictionLog: {{destination: {{file: '{{log}}'}}}}\n"
    ))
    .await;
    let client = h1();
    // Eight predictions with known IDs; a window of six forgets p0 and p1. The split alternates a, b, a, b...
    for i in 0..8 {
        let (_, headers, body) = get(&client, &r.url("/"), &[("x-prediction-id", &format!("p{i}"))]).await;
        assert_eq!(headers["x-prediction-id"], format!("p{i}").as_str());
        assert_eq!(body_json(&body)["backend"], if i % 2 == 0 { "a" } else { "b" });
    }
    let feedback = json!([
        {"predictionId": "p2", "label": "cat"},   // a, correct
        {"predictionId": "p4", "label": "dog"},   // a, incorrect
        {"predictionId": "p3", "label": "dog"},   // b, correct
        {"prediction_id": "p5", "reward": 0.5},   // b
        {"predictionId": "p7", "reward": 1.5},    // b
        {"predictionId": "p0", "label": "cat"},   // forgotten
        {"predictionId": "nope", "label": "cat"}, // unknown
        {"predictionId": "p2", "label": "cat"},   // a duplicate
        {"predictionId": "p6"},                    // neither label nor reward
        {"label": "cat"}
    ]);
    let (status, _, body) = post(&client, &r.url("/feedback"), &[], &feedback.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(body_json(&body), json!({"matched": 5, "notInWindow": 2, "duplicate": 1, "invalid": 2}));
    // A single object works too.
    let (status, _, body) = post(&client, &r.url("/feedback"), &[], r#"{"predictionId": "p6", "label": "cat"}"#).await;
    assert_eq!((status.as_u16(), body_json(&body)["matched"].as_u64()), (200, Some(1)));
    let (status, _, _) = post(&client, &r.url("/feedback"), &[], "not json").await;
    assert_eq!(status, 400);

    let acc = "champion_router_feedback_accuracy_ratio";
    assert_eq!(r.metric(acc, &[("variant", "a")]).await, 2.0 / 3.0);
    assert_eq!(r.metric(acc, &[("variant", "b")]).await, 1.0);
    assert_eq!(r.metric("champion_router_feedback_total", &[("variant", "a"), ("outcome", "incorrect")]).await, 1.0);
    assert_eq!(r.metric("champion_router_feedback_reward_sum", &[("variant", "b")]).await, 2.0);
    assert_eq!(r.metric("champion_router_feedback_reward_count", &[("variant", "b")]).await, 2.0);
    let unmatched = "champion_router_feedback_unmatched_total";
    assert_eq!(r.metric(unmatched, &[("reason", "not_in_window")]).await, 2.0);
    assert_eq!(r.metric(unmatched, &[("reason", "duplicate")]).await, 1.0);
    assert_eq!(r.metric(unmatched, &[("reason", "invalid")]).await, 3.0);

    let log = r.log_records();
    let joined = log.iter().find(|l| l["type"] == "feedback" && l["id"] == "p4").unwrap();
    assert_eq!(
        (
            &joined["matched"],
            &joined["variant"],
            &joined["modelVersion"],
            &joined["predicted"],
            &joined["label"],
            &joined["correct"]
        ),
        (&json!(true), &json!("a"), &json!("1"), &json!("cat"), &json!("dog"), &json!(false))
    );
    let late = log.iter().find(|l| l["type"] == "feedback" && l["id"] == "p0").unwrap();
    assert_eq!((&late["matched"], &late["label"]), (&json!(false), &json!("cat")), "late feedback is kept in the log");
    let prediction = log.iter().find(|l| l["type"] == "prediction" && l["id"] == "p3").unwrap();
    assert_eq!(prediction["label"], "dog", "the predicted label is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_logged_for_the_sampled_share_and_capped() {
    let a = named("a", json!({"predictions": ["a long answer that is cut"]})).await;
    let r = TestRouter::start(&format!(
        "backends: [{{name: a, address: '{a}', weight: 1}}]\n\
         predictionLog: {{destination: {{file: '{{log}}'}}, bodySamplePercent: 50, maxBodyBytes: 24}}\n"
    ))
    .await;
    for _ in 0..4 {
        post(&h1(), &r.url("/"), &[], r#"{"x":[1,2]}"#).await;
    }
    let log = r.log_records();
    let with_bodies: Vec<_> = log.iter().filter(|l| l.get("request").is_some()).collect();
    assert_eq!(with_bodies.len(), 2, "half of the predictions: {log:?}");
    assert_eq!(with_bodies[0]["request"], json!({"body": {"x": [1, 2]}}));
    let response = &with_bodies[0]["response"];
    assert_eq!((response["body"].as_str().map(str::len), &response["truncated"]), (Some(24), &json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_is_down_is_answered_502_and_counted() {
    let down = closed_port().await;
    let r = TestRouter::start(&format!(
        "backends: [{{name: gone, address: '{down}', weight: 1}}]\npredictionLog: {{destination: none}}\n"
    ))
    .await;
    let (status, headers, _) = get(&h1(), &r.url("/"), &[]).await;
    assert_eq!(status, 502);
    assert!(headers.contains_key("x-prediction-id"));
    r.wait_metric("champion_router_requests_total", &[("variant", "gone"), ("class", "5xx")], 1.0).await;
    r.wait_metric("champion_router_upstream_failures_total", &[("variant", "gone"), ("reason", "unreachable")], 1.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moves_traffic_on_an_open_connection_and_a_bad_file_keeps_the_last_good_config() {
    let a = named("a", json!({})).await;
    let b = named("b", json!({})).await;
    let config = |wa: u32, wb: u32| {
        format!(
            "backends: [{{name: a, address: '{a}', weight: {wa}}}, {{name: b, address: '{b}', weight: {wb}}}]\npredictionLog: {{destination: none}}\n"
        )
    };
    let r = TestRouter::start(&config(1, 0)).await;
    // One TCP connection for the whole test: the reload must not close it.
    let stream = tokio::net::TcpStream::connect(r.running.proxy_addr).await.unwrap();
    let (mut conn, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(driver);
    let mut backend_of_next = async || {
        conn.ready().await.expect("the connection stays open");
        let req = Request::get("/").header("host", "router").body(Full::new(Bytes::new())).unwrap();
        let resp = conn.send_request(req).await.expect("the connection stays open");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        body_json(&body)["backend"].as_str().unwrap().to_string()
    };
    assert_eq!(backend_of_next().await, "a");
    r.rewrite(&config(0, 1));
    let mut moved = false;
    for _ in 0..500 {
        if backend_of_next().await == "b" {
            moved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(moved, "the new weights took effect");
    r.wait_metric("champion_router_config_reloads_total", &[("result", "ok")], 2.0).await;

    r.rewrite("backends: [{name: a, address: 'nowhere', weight: 1}]\n");
    r.wait_metric("champion_router_config_reloads_total", &[("result", "error")], 1.0).await;
    assert_eq!(r.metric("champion_router_config_valid", &[]).await, 0.0);
    assert_eq!(backend_of_next().await, "b", "the last good configuration keeps serving");
    let (status, _, _) = get(&h1(), &r.admin("/readyz"), &[]).await;
    assert_eq!(status, 200);
    let (_, _, body) = get(&h1(), &r.admin("/config"), &[]).await;
    let doc = body_json(&body);
    assert!(doc["lastError"].as_str().unwrap().contains("backends[0].address"), "{doc}");
    assert_eq!(doc["config"]["backends"][1]["weight"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_at_start_is_unready_until_fixed() {
    let a = named("a", json!({})).await;
    let r = TestRouter::start("backends: []\n").await;
    let client = h1();
    let (status, headers, _) = get(&client, &r.url("/"), &[]).await;
    assert_eq!(status, 503);
    assert!(headers.contains_key("x-prediction-id"), "even a 503 carries its prediction ID");
    let (status, _, body) = get(&client, &r.admin("/readyz"), &[]).await;
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("at least one backend"));
    assert_eq!(get(&client, &r.admin("/healthz"), &[]).await.0, 200);
    r.rewrite(&format!("backends: [{{name: a, address: '{a}', weight: 1}}]\npredictionLog: {{destination: none}}\n"));
    eventually(|| {
        let client = client.clone();
        let url = r.admin("/readyz");
        async move { get(&client, &url, &[]).await.0 == 200 }
    })
    .await
    .expect("ready once the file is valid");
    assert_eq!(get(&client, &r.url("/"), &[]).await.0, 200);
}
