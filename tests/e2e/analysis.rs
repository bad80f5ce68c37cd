//! Analysis on the real cluster with the examples' own queries. The test exporter publishes the series a
//! real cluster would have, labelled exactly as a standard Kubernetes pod scrape labels them (every pod
//! label through `labelmap: __meta_kubernetes_pod_label_(.+)`, plus `namespace` and `pod`; see
//! docs/analysis.md) or, for mesh metrics, as Istio labels them (`destination_service_name`), for BOTH the
//! stable and the candidate revision. The queries are read from the files in `examples/`, so an example
//! whose queries cannot select the candidate fails here.
//!
//! Each test runs the example's ModelDeployment as it is (template, traffic, metrics), with short steps
//! and a 2 s analysis interval instead of the example's.

use std::collections::BTreeMap;

use champion::api::model_deployment::{MetricResult, Step, Verdict};
use champion::api::{DeploymentPhase, Duration, ModelDeployment};
use champion::names::{annotations, labels, reasons};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::json;

use crate::harness::{TestEnv, eventually, http_client, repo_root};
use crate::md::{T, degraded, phase, plugin, ship, stable_version, status, wait_healthy};

/// An example's ModelDeployment, read from its file, run with `steps` and a 2 s analysis interval; its
/// metrics (queries, ranges, onNoData) stay exactly as the file has them.
fn example(file: &str, steps: Vec<Step>) -> ModelDeployment {
    let path = repo_root().join("examples").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut md: ModelDeployment = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let canary = md.spec.strategy.as_mut().and_then(|s| s.canary.as_mut()).expect("the example has canary steps");
    canary.steps = steps;
    let analysis = canary.analysis.as_mut().expect("the example has background analysis");
    assert!(!analysis.metrics.is_empty(), "{file} has no metrics");
    analysis.interval = Some(Duration::new("2s"));
    md
}

fn set_weight(w: i32) -> Step {
    Step { set_weight: Some(w), ..Step::default() }
}

fn pause() -> Step {
    Step { pause: Some(Default::default()), ..Step::default() }
}

fn gate(metrics: &[&str]) -> Step {
    let metrics = metrics.iter().map(|m| m.to_string()).collect();
    Step { analysis: Some(champion::api::model_deployment::AnalysisStep { metrics }), ..Step::default() }
}

fn apply(env: &TestEnv, md: &ModelDeployment) {
    let text = serde_json::to_string(md).expect("a ModelDeployment serializes");
    env.apply_yaml(&text).unwrap_or_else(|e| panic!("apply {}: {e}", md.name_any()));
}

/// The revision hash of the generated Deployment that serves `version`, read from its label.
pub(crate) async fn revision_hash(env: &TestEnv, name: &str, version: &str) -> String {
    let api: Api<Deployment> = env.api();
    let selector = format!("{}={name}", labels::DEPLOYMENT);
    eventually(&format!("the Deployment of {name} {version}"), T, || {
        let (api, selector) = (api.clone(), selector.clone());
        async move {
            let list = api.list(&ListParams::default().labels(&selector)).await.ok()?;
            list.items
                .iter()
                .find(|d| d.annotations().get(annotations::MODEL_VERSION).map(String::as_str) == Some(version))
                .and_then(|d| d.labels().get(labels::REVISION).cloned())
        }
    })
    .await
}

/// A pod label name as Kubernetes service discovery exposes it (`__meta_kubernetes_pod_label_<name>`):
/// every character that cannot be in a Prometheus label name becomes `_`.
fn sanitize(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// The target labels a pod scrape gives a pod's series: each pod label through
/// `labelmap: __meta_kubernetes_pod_label_(.+)`, then `namespace` and `pod` from the pod's metadata.
fn scrape_labels(pod: &Pod) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = pod.labels().iter().map(|(k, v)| (sanitize(k), v.clone())).collect();
    out.insert("namespace".into(), pod.namespace().unwrap_or_default());
    out.insert("pod".into(), pod.name_any());
    out
}

/// The pods of one revision of `name` (at least one, waiting for them).
async fn revision_pods(env: &TestEnv, name: &str, hash: &str) -> Vec<Pod> {
    let api: Api<Pod> = env.api();
    let selector = format!("{}={name},{}={hash}", labels::DEPLOYMENT, labels::REVISION);
    eventually(&format!("pods of revision {hash}"), T, || {
        let (api, selector) = (api.clone(), selector.clone());
        async move {
            let pods = api.list(&ListParams::default().labels(&selector)).await.ok()?.items;
            (!pods.is_empty()).then_some(pods)
        }
    })
    .await
}

/// Sets a counter of the test exporter that grows by `per_second` (so `rate()` over it is `per_second`).
async fn set_counter(env: &TestEnv, name: &str, labels: &BTreeMap<String, String>, per_second: f64) {
    let body = json!({"name": name, "labels": labels, "value": 0.0, "rate": per_second});
    let url = format!("{}/set", env.exporter_url());
    let r = http_client().post(&url).json(&body).send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert!(r.status().is_success(), "POST {url} {body}: {}", r.status());
}

/// The model server's own metrics of one revision, as its pods would export them and a pod scrape would
/// label them: `http_requests_total` by `code` and `http_request_duration_seconds_bucket` (all requests
/// faster than 50 ms), split evenly over the revision's pods.
async fn publish_server_metrics(env: &TestEnv, name: &str, hash: &str, requests_per_s: f64, error_share: f64) {
    let pods = revision_pods(env, name, hash).await;
    let n = pods.len() as f64;
    for pod in &pods {
        let base = scrape_labels(pod);
        for (code, share) in [("200", 1.0 - error_share), ("500", error_share)] {
            let mut l = base.clone();
            l.insert("code".into(), code.into());
            set_counter(env, "http_requests_total", &l, requests_per_s * share / n).await;
        }
        for le in ["0.05", "0.1", "0.25", "+Inf"] {
            let mut l = base.clone();
            l.insert("le".into(), le.into());
            set_counter(env, "http_request_duration_seconds_bucket", &l, requests_per_s / n).await;
        }
    }
}

/// Istio's request counter for requests to `service`, as the destination's sidecar reports it (and a
/// pod scrape of the sidecar collects it).
async fn publish_mesh_metrics(env: &TestEnv, service: &str, requests_per_s: f64, error_share: f64) {
    for (code, share) in [("200", 1.0 - error_share), ("503", error_share)] {
        let l = BTreeMap::from([
            ("reporter".to_string(), "destination".to_string()),
            ("destination_service_name".to_string(), service.to_string()),
            ("destination_service_namespace".to_string(), env.ns.clone()),
            ("response_code".to_string(), code.to_string()),
        ]);
        set_counter(env, "istio_requests_total", &l, requests_per_s * share).await;
    }
}

/// The last measurement of metric `name`.
fn measured(md: &ModelDeployment, name: &str) -> Option<MetricResult> {
    status(md).analysis?.metrics.into_iter().find(|m| m.name == name)
}

/// Ships `version` and returns the (stable, candidate) revision hashes once the candidate's Deployment
/// exists, with the server metrics of both published: `stable_errors` and `candidate_errors` are the
/// shares of requests that fail.
async fn ship_with_server_metrics(
    env: &TestEnv,
    name: &str,
    (from, to): (&str, &str),
    stable_errors: f64,
    candidate_errors: f64,
) -> (String, String) {
    let stable = revision_hash(env, name, from).await;
    publish_server_metrics(env, name, &stable, 20.0, stable_errors).await;
    ship(env, name, to);
    let candidate = revision_hash(env, name, to).await;
    assert_ne!(stable, candidate);
    publish_server_metrics(env, name, &candidate, 20.0, candidate_errors).await;
    (stable, candidate)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_examples_queries_roll_back_a_candidate_with_a_bad_error_rate() {
    let mut env = TestEnv::new("an-badcand").await;
    env.start_operator().await;
    let md = example("modeldeployment-gateway-canary.yaml", vec![set_weight(50), pause()]);
    let name = md.name_any();
    apply(&env, &md);
    wait_healthy(&env, &name, "2.1.0").await;
    // Stable answers everything; the candidate fails one request in five.
    ship_with_server_metrics(&env, &name, ("2.1.0", "2.2.0"), 0.0, 0.2).await;
    let md = env
        .wait_for::<ModelDeployment, _>(&name, "rolled back on the candidate's error rate", T, |md| {
            phase(md) == Some(DeploymentPhase::RolledBack)
        })
        .await;
    assert_eq!(stable_version(&md).as_deref(), Some("2.1.0"));
    let (cond_status, reason, message) = degraded(&md).expect("a Degraded condition");
    assert_eq!((cond_status.as_str(), reason.as_str()), ("True", reasons::ANALYSIS_FAILED), "{message}");
    assert!(message.contains("error-rate"), "{message}");
    let error_rate = measured(&md, "error-rate").expect("error-rate measured");
    assert_eq!(error_rate.verdict, Verdict::Fail, "{error_rate:?}");
    let value = error_rate.value.expect("a value");
    assert!((value - 0.2).abs() < 0.05, "the candidate's error rate (0.2) was measured, got {value}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_stable_does_not_roll_back_a_good_candidate() {
    let mut env = TestEnv::new("an-badstable").await;
    env.start_operator().await;
    let md = example("modeldeployment-gateway-canary.yaml", vec![set_weight(50), pause()]);
    let name = md.name_any();
    apply(&env, &md);
    wait_healthy(&env, &name, "2.1.0").await;
    // Stable fails half of its requests; the candidate none.
    ship_with_server_metrics(&env, &name, ("2.1.0", "2.2.0"), 0.5, 0.0).await;
    let md = env
        .wait_for::<ModelDeployment, _>(&name, "the candidate's own figures measured, passing", T, |md| {
            let pass = |m: Option<MetricResult>| m.is_some_and(|m| m.verdict == Verdict::Pass && m.value.is_some());
            pass(measured(md, "error-rate")) && pass(measured(md, "p99-latency"))
        })
        .await;
    assert_eq!(measured(&md, "error-rate").and_then(|m| m.value), Some(0.0), "the candidate has no errors");
    let p99 = measured(&md, "p99-latency").and_then(|m| m.value).unwrap_or(f64::NAN);
    assert!(p99 <= 0.05, "the candidate's p99 is under 50 ms, got {p99}");
    assert_eq!(phase(&md), Some(DeploymentPhase::Paused), "{:#?}", md.status);
    assert_eq!(status(&md).analysis.map(|a| a.failures), Some(0));
    plugin(&env, &["promote", &name]);
    wait_healthy(&env, &name, "2.2.0").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_istio_examples_gate_passes_on_good_candidate_data() {
    let mut env = TestEnv::new("an-gate").await;
    env.start_operator().await;
    let md = example("modeldeployment-istio.yaml", vec![set_weight(20), gate(&["error-rate"]), pause()]);
    let name = md.name_any();
    apply(&env, &md);
    wait_healthy(&env, &name, "5.0.2").await;
    // The mesh sees the stable Service fail a third of its requests, the candidate's none.
    publish_mesh_metrics(&env, &name, 30.0, 0.33).await;
    ship(&env, &name, "5.1.0");
    // Istio labels a request with the Service it was routed to: the candidate's route destination.
    let vs = crate::rollout::route_api(&env, "networking.istio.io", "VirtualService", "virtualservices");
    let candidate_service = eventually("a VirtualService route to the candidate", T, || {
        let vs = vs.clone();
        let name = name.clone();
        async move {
            let obj = serde_json::to_value(vs.get(&name).await.ok()?).ok()?;
            let routes = obj["spec"]["http"][0]["route"].as_array()?.clone();
            routes
                .iter()
                .filter_map(|r| r["destination"]["host"].as_str())
                .find(|h| h.starts_with(&format!("{name}-")))
                .and_then(|h| h.split('.').next())
                .map(str::to_string)
        }
    })
    .await;
    publish_mesh_metrics(&env, &candidate_service, 30.0, 0.0).await;
    let md = env
        .wait_for::<ModelDeployment, _>(&name, "past the gate, at the pause", T, |md| {
            status(md).current_step == Some(2) && phase(md) == Some(DeploymentPhase::Paused)
        })
        .await;
    let error_rate = measured(&md, "error-rate").expect("error-rate measured");
    assert_eq!((error_rate.verdict, error_rate.value), (Verdict::Pass, Some(0.0)), "{error_rate:?}");
    assert_eq!(status(&md).candidate.map(|c| c.version).as_deref(), Some("5.1.0"));
}
