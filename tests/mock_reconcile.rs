//! Mock-API-server tests: each pins the exact API calls of one reconcile per kind. The status goes out
//! as a server-side apply patch with field manager `champion`, an Event follows the transition, and a
//! second reconcile over the written status writes nothing.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::Value;
use tower_test::mock::{Handle, SendResponse};

use champion::config::OperatorConfig;
use champion::controller::Context;
use champion::controller::model_deployment::Caches;
use champion::controller::model_deployment::reconcile::reconcile as reconcile_md;
use champion::fixtures;
use champion::metrics::Metrics;

type MockHandle = Handle<Request<Body>, Response<Body>>;

fn context() -> (Arc<Context>, MockHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let config = OperatorConfig::parse("prometheus: {default: http://prometheus:9090}", "test").unwrap();
    (Context::new(client, Arc::new(config), Arc::new(Metrics::new())), handle)
}

async fn next(handle: &mut MockHandle) -> (Method, String, Option<String>, Value, SendResponse<Response<Body>>) {
    let (req, send) = handle.next_request().await.expect("an API call was expected");
    let method = req.method().clone();
    let uri = req.uri().to_string();
    let content_type = req.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    (method, uri, content_type, body, send)
}

fn respond(send: SendResponse<Response<Body>>, status: StatusCode, body: &Value) {
    send.send_response(Response::builder().status(status).body(Body::from(serde_json::to_vec(body).unwrap())).unwrap());
}

/// Expects the status apply patch for `plural/name`; answers with the object carrying that status.
async fn expect_status_apply(handle: &mut MockHandle, plural: &str, name: &str, obj: &Value) -> Value {
    let (method, uri, content_type, body, send) = next(handle).await;
    assert_eq!(method, Method::PATCH);
    let path = format!("/apis/champion.ml/v1alpha1/namespaces/default/{plural}/{name}/status?");
    assert!(uri.starts_with(&path), "{uri}");
    assert!(uri.contains("fieldManager=champion") && uri.contains("force=true"), "{uri}");
    assert_eq!(content_type.as_deref(), Some("application/apply-patch+yaml"));
    assert_eq!(body["apiVersion"], "champion.ml/v1alpha1");
    assert!(body.get("spec").is_none(), "a status patch must not carry the spec");
    assert_eq!(
        body["metadata"]["resourceVersion"], obj["metadata"]["resourceVersion"],
        "the status write is conditional on the version it was decided from"
    );
    let mut answer = obj.clone();
    answer["status"] = body["status"].clone();
    respond(send, StatusCode::OK, &answer);
    body["status"].clone()
}

/// Expects an Event about `name` with `reason`.
async fn expect_event(handle: &mut MockHandle, name: &str, reason: &str, type_: &str) {
    let (method, uri, _, body, send) = next(handle).await;
    assert_eq!(method, Method::POST);
    assert!(uri.starts_with("/apis/events.k8s.io/v1/namespaces/default/events"), "{uri}");
    assert_eq!(body["regarding"]["name"], name);
    assert_eq!(body["reason"], reason);
    assert_eq!(body["type"], type_);
    respond(send, StatusCode::CREATED, &body);
}

fn no_caches() -> Arc<Caches> {
    Arc::new(Caches::with_objects(vec![], vec![], vec![]))
}

/// After the reconcile the context is dropped; any further call would show up here.
async fn expect_no_more_calls(ctx: Arc<Context>, mut handle: MockHandle) {
    drop(ctx);
    assert!(handle.next_request().await.is_none(), "no further API call was expected");
}

#[tokio::test]
async fn model_deployment_invalid_spec_writes_status_once() {
    let mut md = fixtures::model_deployment("fraud");
    md.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap().analysis.as_mut().unwrap().metrics[0]
        .prometheus
        .as_mut()
        .unwrap()
        .provider = Some("thanos".into());
    md.metadata.resource_version = Some("42".into());
    let obj = serde_json::to_value(&md).unwrap();

    let (ctx, mut handle) = context();
    let verifier = tokio::spawn(async move {
        let status = expect_status_apply(&mut handle, "modeldeployments", "fraud", &obj).await;
        expect_event(&mut handle, "fraud", "InvalidSpec", "Warning").await;
        (status, handle)
    });
    reconcile_md(Arc::new(md.clone()), ctx.clone(), no_caches()).await.unwrap();
    let (status, handle) = verifier.await.unwrap();
    assert_eq!(status["phase"], "Pending");
    assert_eq!(status["observedGeneration"], 1);
    let ready = &status["conditions"][0];
    assert_eq!((ready["type"].as_str(), ready["status"].as_str()), (Some("Ready"), Some("False")));
    assert!(ready["message"].as_str().unwrap().contains("no Prometheus provider named \"thanos\""), "{ready}");

    // Same object with the written status: nothing to write, no Event.
    md.status = Some(serde_json::from_value(status).unwrap());
    reconcile_md(Arc::new(md), ctx.clone(), no_caches()).await.unwrap();
    expect_no_more_calls(ctx, handle).await;
}
