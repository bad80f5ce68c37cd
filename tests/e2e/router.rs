//! The built-in router (`traffic.router: builtin`) on the real node: the operator deploys `champion-router`
//! (an image built here from the workspace's own binary) in front of real model-server pods, writes its
//! configuration into a ConfigMap at each step, and measures the built-in metrics through the real
//! Prometheus, which scrapes the router's pod through Kubernetes service discovery. Requests really cross
//! the stable Service (now the router's) from this machine.
//!
//! - a candidate that disagrees with stable in a mirror step is rolled back by `builtin: shadowAgreement`,
//!   and its live agreement shows in `status.shadow` and `kubectl champion status`;
//! - a candidate that answers 5xx at a canary weight is rolled back by `builtin: errorRate`;
//! - feedback posted for prediction IDs read from the router's prediction log moves `feedbackAccuracy`;
//! - every step reaches the router while it lasts (its pods are annotated, so the kubelet refreshes the
//!   ConfigMap volume at once).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use champion::api::{DeploymentPhase, ModelDeployment};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use crate::harness::{TestEnv, eventually, output_text, repo_root};
use crate::md::{degraded, phase, stable_version, status};
use crate::real_node::{
    Answer, POD_T, RealNode, fresh_connections, predict_url, real_node, served_on_the_node, tally, wait_for_md,
};

/// The router image the tests import into the real node's containerd.
const ROUTER_IMAGE: &str = "champion.test/router:e2e";

/// `champion-router`, built next to the operator by `cargo build --workspace --bins`.
fn router_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_champion")).with_file_name("champion-router");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --workspace --bins` (hack/test.sh does)",
        bin.display()
    );
    bin
}

/// Builds the router image from the workspace's binary with `hack/router-image.sh` (the binary and its shared
/// libraries) and imports it into the real node's containerd, once per test process.
fn import_router_image(node: &RealNode) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("champion-router-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("image folder");
        let tar = dir.join("router.tar");
        let built = Command::new("bash")
            .arg(repo_root().join("hack/router-image.sh"))
            .arg(&tar)
            .arg(ROUTER_IMAGE)
            .arg(router_binary())
            .output()
            .expect("python3");
        assert!(built.status.success(), "hack/router-image.sh: {}", output_text(&built));
        let imported = Command::new("ctr")
            .args(["--address", &node.containerd, "-n", "k8s.io", "images", "import"])
            .arg(&tar)
            .output()
            .expect("ctr");
        assert!(imported.status.success(), "ctr images import: {}", output_text(&imported));
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// A ModelDeployment of the example model server on the real node behind the built-in router (on the real
/// node too), comparing answers by their `label`, with the built-in metrics as background analysis.
fn routed_md(node: &RealNode, name: &str, version: &str, env: &str, steps: &str) -> String {
    let head = served_on_the_node(node, name, version, 1, env);
    let l = &node.label;
    format!(
        r#"{head}  traffic:
    router: builtin
    port: 8080
    builtin:
      comparison: {{path: label}}
      nodeSelector: {{{l}: "true"}}
      tolerations: [{{key: {l}, operator: Equal, value: "true", effect: NoSchedule}}]
  strategy:
    progressDeadline: 3m
    canary:
      steps: {steps}
      analysis:
        interval: 5s
        metrics:
        - {{name: agreement, builtin: shadowAgreement, thresholdRange: {{min: 0.97}}}}
        - {{name: errors, builtin: errorRate, thresholdRange: {{max: 0.05}}}}
        - {{name: accuracy, builtin: feedbackAccuracy, thresholdRange: {{min: 0.5}}}}
"#
    )
}

/// One answer through the router, with the prediction ID it returned and the label it predicted.
#[derive(Debug, Clone)]
struct Routed {
    answer: Answer,
    id: Option<String>,
    label: Option<String>,
}

async fn predict(client: &reqwest::Client, url: &str, i: usize) -> Routed {
    let body = json!({"features": [i, i % 7, i % 13]});
    match client.post(url).json(&body).send().await {
        Ok(r) => {
            let code = r.status().as_u16();
            let id = r.headers().get("x-prediction-id").and_then(|v| v.to_str().ok()).map(str::to_string);
            let v: Value = r.json().await.unwrap_or(Value::Null);
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            // Labels are compared as text by the router (the example server answers a boolean).
            let label = match &v["label"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            Routed { answer: Answer { code, version: s("version"), pod: s("pod") }, id, label }
        }
        Err(_) => {
            Routed { answer: Answer { code: 0, version: String::new(), pod: String::new() }, id: None, label: None }
        }
    }
}

/// Starts the operator with the router image, applies `yaml` and waits until 1.0.0 serves through the
/// router: its Deployment ready, the stable Service selecting its pod, answers with prediction IDs.
async fn serving_through_the_router(env: &mut TestEnv, node: &RealNode, name: &str, yaml: &str) -> String {
    import_router_image(node);
    env.start_operator_with(&format!("router: {{image: {ROUTER_IMAGE}}}")).await;
    routed(env, name, yaml).await
}

/// Applies `yaml` with the operator already running and waits as [`serving_through_the_router`] does.
async fn routed(env: &mut TestEnv, name: &str, yaml: &str) -> String {
    env.apply_yaml(yaml).expect("apply");
    wait_for_md(env, name, "1.0.0 Healthy", |md| {
        phase(md) == Some(DeploymentPhase::Healthy) && stable_version(md).as_deref() == Some("1.0.0")
    })
    .await;
    let router = format!("{name}-router");
    let deployments: Api<Deployment> = env.api();
    let services: Api<Service> = env.api();
    eventually("the stable Service selects the router's pods", POD_T, || {
        let (deployments, services, router) = (deployments.clone(), services.clone(), router.clone());
        async move {
            let d = deployments.get(&router).await.ok()?;
            let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) >= 1;
            let s = services.get(name).await.ok()?;
            let selector = s.spec?.selector?;
            (ready && selector.get("champion.ml/router").map(String::as_str) == Some(name)).then_some(())
        }
    })
    .await;
    let url = predict_url(env, name).await;
    let client = fresh_connections();
    eventually("10 answers in a row from 1.0.0 through the router, with prediction IDs", POD_T, || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            for i in 0..10 {
                let r = predict(&client, &url, i).await;
                if r.answer.code != 200 || r.answer.version != "1.0.0" || r.id.is_none() {
                    return None;
                }
            }
            Some(())
        }
    })
    .await;
    url
}

/// Sends requests through `url` until `stop` (asked every 25 requests) or `max_time`.
async fn load<F, Fut>(url: &str, max_time: Duration, stop: F) -> Vec<Routed>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let client = fresh_connections();
    let started = Instant::now();
    let mut answers = Vec::new();
    for i in 0.. {
        if started.elapsed() > max_time || (i % 25 == 0 && i > 0 && stop().await) {
            break;
        }
        answers.push(predict(&client, url, i).await);
    }
    answers
}

/// Sends requests through `url` until `name` is rolled back (at most 150 s), then waits for that status.
async fn load_until_rolled_back(env: &TestEnv, url: &str, name: &str) -> (Vec<Routed>, ModelDeployment) {
    let api: Api<ModelDeployment> = env.api();
    let api = &api;
    let routed = load(url, Duration::from_secs(150), move || async move {
        api.get(name).await.ok().is_some_and(|md| phase(&md) == Some(DeploymentPhase::RolledBack))
    })
    .await;
    let md = wait_for_md(env, name, "RolledBack", |md| phase(md) == Some(DeploymentPhase::RolledBack)).await;
    (routed, md)
}

/// Asserts that `md` was rolled back by its analysis, the failing `metric` named, and 1.0.0 serves again.
fn rolled_back_by(md: &ModelDeployment, metric: &str) {
    let (s, reason, message) = degraded(md).expect("a Degraded condition");
    assert_eq!((s.as_str(), reason.as_str()), ("True", "AnalysisFailed"), "{message}");
    assert!(message.contains(metric), "{message}");
    assert_eq!(stable_version(md).as_deref(), Some("1.0.0"));
}

fn answers(routed: &[Routed]) -> Vec<Answer> {
    routed.iter().map(|r| r.answer.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn router_a_candidate_that_disagrees_in_shadow_is_rolled_back_and_its_agreement_shows_in_status() {
    let test = "router_a_candidate_that_disagrees_in_shadow_is_rolled_back_and_its_agreement_shows_in_status";
    let Some(node) = real_node(test) else { return };
    let mut env = TestEnv::new("rt-shadow").await;
    let name = "shadowed";
    let steps = "[{mirror: {percent: 100, duration: 3m}}, {setWeight: 50}, {pause: {}}]";
    let url = serving_through_the_router(&mut env, &node, name, &routed_md(&node, name, "1.0.0", "[]", steps)).await;

    let disagrees = r#"[{name: DISAGREE, value: "0.3"}]"#;
    env.apply_yaml(&routed_md(&node, name, "2.0.0", disagrees, steps)).expect("ship 2.0.0, which disagrees on 30%");
    let api: Api<ModelDeployment> = env.api();
    let (api, env_ref) = (&api, &env);
    let seen = std::sync::Mutex::new(None::<(champion::api::model_deployment::ShadowStatus, String)>);
    let seen_ref = &seen;
    let routed = load(&url, Duration::from_secs(150), move || async move {
        let Ok(md) = api.get(name).await else { return false };
        let s = status(&md);
        if let Some(shadow) = s.shadow.clone().filter(|sh| sh.version == "2.0.0" && sh.comparisons > 0) {
            let out = env_ref.plugin(&["status", name]);
            *seen_ref.lock().unwrap() = Some((shadow, output_text(&out)));
        }
        s.phase == Some(DeploymentPhase::RolledBack)
    })
    .await;
    let md = wait_for_md(&env, name, "RolledBack", |md| phase(md) == Some(DeploymentPhase::RolledBack)).await;
    let t = tally(&answers(&routed));
    // The agreement shows in status (read during the step, and once more when it ended) and in the plugin.
    let during = seen.lock().unwrap().clone();
    let shadow = status(&md).shadow.expect("status.shadow keeps the last mirror step's agreement");
    assert!(shadow.version == "2.0.0" && shadow.comparisons > 0, "{shadow:?}");
    let printed = output_text(&env.plugin(&["status", name]));
    eprintln!("MEASURED: status.shadow during the step: {during:?}");
    eprintln!(
        "MEASURED: {} requests through the router: {t:?}; status.shadow: {shadow:?}; last analysis: {:?}",
        routed.len(),
        status(&md).analysis.map(|a| a.metrics)
    );
    let agreement = shadow.agreement.expect("an agreement value");
    assert!((0.5..0.97).contains(&agreement), "about 70% agreement with 30% of labels flipped: {agreement}");
    assert!(printed.contains("Shadow:     version 2.0.0") && printed.contains("% agreement"), "{printed}");
    rolled_back_by(&md, "agreement");
    // The shadow's answers never reached a client.
    assert!(routed.iter().all(|r| r.answer.code == 0 || r.answer.version == "1.0.0"), "{t:?}");
    // What the analysis read is what Prometheus scraped from the router's pod.
    let q = format!(
        r#"sum(max_over_time(champion_router_shadow_comparisons_total{{namespace="{}",shadow="mirror",outcome="disagree"}}[10m]))"#,
        env.ns
    );
    let scraped = env.prometheus_value(&q).await;
    assert!(scraped.is_some_and(|v| v > 0.0), "{q} = {scraped:?}");
    // After the rollback the router no longer mirrors: the ConfigMap has no shadow.
    let cm = env.kubectl(&["get", "configmap", &format!("{name}-router"), "-o", "jsonpath={.data.router\\.json}"]);
    let config: Value = serde_json::from_slice(&cm.stdout).expect("the router's configuration");
    assert!(config.get("shadows").is_none(), "{config}");
}

#[tokio::test(flavor = "multi_thread")]
async fn router_a_candidate_with_errors_is_rolled_back_by_the_builtin_error_rate() {
    let Some(node) = real_node("router_a_candidate_with_errors_is_rolled_back_by_the_builtin_error_rate") else {
        return;
    };
    let mut env = TestEnv::new("rt-errors").await;
    let name = "erring";
    let steps = "[{setWeight: 50}, {pause: {duration: 3m}}]";
    let url = serving_through_the_router(&mut env, &node, name, &routed_md(&node, name, "1.0.0", "[]", steps)).await;

    let errs = r#"[{name: ERROR_RATE, value: "0.5"}]"#;
    env.apply_yaml(&routed_md(&node, name, "2.0.0", errs, steps)).expect("ship 2.0.0 with ERROR_RATE 0.5");
    let (routed, md) = load_until_rolled_back(&env, &url, name).await;
    let t = tally(&answers(&routed));
    eprintln!(
        "MEASURED: {} requests through the router: {t:?}; last analysis: {:?}",
        routed.len(),
        status(&md).analysis.map(|a| a.metrics)
    );
    rolled_back_by(&md, "errors");
    assert!(t.get(&("2.0.0".into(), 500)).copied().unwrap_or(0) > 0, "the candidate answered no 500: {t:?}");
    assert!(t.get(&("2.0.0".into(), 200)).copied().unwrap_or(0) > 0, "the candidate answered no 200: {t:?}");
    assert_eq!(t.get(&("1.0.0".into(), 500)), None, "the stable version failed: {t:?}");
}

/// Without any Prometheus provider the operator reads the built-in metrics from the router's pods
/// themselves: a candidate answering 5xx is rolled back by `builtin: errorRate` all the same, and a mirror
/// step's agreement still shows in status.
#[tokio::test(flavor = "multi_thread")]
async fn router_without_prometheus_the_builtin_metrics_are_read_from_the_router() {
    let Some(node) = real_node("router_without_prometheus_the_builtin_metrics_are_read_from_the_router") else {
        return;
    };
    let mut env = TestEnv::new("rt-direct").await;
    let name = "direct";
    let steps = "[{mirror: {percent: 100, duration: 20s}}, {setWeight: 50}, {pause: {duration: 3m}}]";
    import_router_image(&node);
    env.start_operator_without_prometheus(&format!("router: {{image: {ROUTER_IMAGE}}}")).await;
    let url =
        routed(&mut env, name, &routed_md(&node, name, "1.0.0", "[]", steps).replace("min: 0.97", "min: 0.5")).await;

    let errs = r#"[{name: ERROR_RATE, value: "0.5"}]"#;
    let shipped = routed_md(&node, name, "2.0.0", errs, steps).replace("min: 0.97", "min: 0.5");
    env.apply_yaml(&shipped).expect("ship 2.0.0 with ERROR_RATE 0.5");
    let (routed, md) = load_until_rolled_back(&env, &url, name).await;
    let t = tally(&answers(&routed));
    eprintln!(
        "MEASURED: {} requests: {t:?}; status.shadow {:?}; last analysis {:?}",
        routed.len(),
        status(&md).shadow,
        status(&md).analysis.map(|a| a.metrics)
    );
    rolled_back_by(&md, "errors");
    // The mirror step (an erring shadow answers 5xx half the time, which counts as disagreeing) was read too.
    let shadow = status(&md).shadow.expect("status.shadow from the router's pods");
    assert!(shadow.version == "2.0.0" && shadow.comparisons > 0, "{shadow:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn router_feedback_for_logged_prediction_ids_moves_the_accuracy_metric() {
    let Some(node) = real_node("router_feedback_for_logged_prediction_ids_moves_the_accuracy_metric") else { return };
    let mut env = TestEnv::new("rt-feedback").await;
    let name = "scored";
    let steps = "[{setWeight: 50}, {pause: {}}]";
    let url = serving_through_the_router(&mut env, &node, name, &routed_md(&node, name, "1.0.0", "[]", steps)).await;
    env.apply_yaml(&routed_md(&node, name, "2.0.0", "[]", steps)).expect("ship 2.0.0");
    wait_for_md(&env, name, "paused at 50%", |md| {
        phase(md) == Some(DeploymentPhase::Paused) && status(md).weights.is_some_and(|w| w.candidate == 50)
    })
    .await;
    // Once the router has the 50/50 configuration, both versions answer.
    let client = fresh_connections();
    let routed = eventually("both versions answering through the router", POD_T, || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let mut out = Vec::new();
            for i in 0..40 {
                out.push(predict(&client, &url, i).await);
            }
            let by: BTreeMap<String, usize> = out.iter().fold(BTreeMap::new(), |mut m, r| {
                *m.entry(r.answer.version.clone()).or_default() += 1;
                m
            });
            (by.get("2.0.0").copied().unwrap_or(0) >= 10 && by.get("1.0.0").copied().unwrap_or(0) >= 10).then_some(out)
        }
    })
    .await;
    // The prediction IDs as the router logged them (its pod's standard output), with their variant.
    let logged: BTreeMap<String, String> = eventually("the predictions in the router's log", POD_T, || async {
        let out = env.kubectl(&["logs", &format!("deployment/{name}-router"), "--tail=2000"]);
        let lines: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "prediction")
            .filter_map(|v| Some((v["id"].as_str()?.to_string(), v["variant"].as_str()?.to_string())))
            .collect();
        routed.iter().all(|r| r.id.as_ref().is_some_and(|id| lines.contains_key(id))).then_some(lines)
    })
    .await;
    // Ground truth for the candidate's predictions: three in four labels agree with the prediction.
    let mut feedback = Vec::new();
    let mut want = (0, 0);
    for (i, r) in routed.iter().filter(|r| r.answer.version == "2.0.0").enumerate() {
        let (id, label) = (r.id.clone().unwrap(), r.label.clone().expect("a predicted label"));
        assert_eq!(logged.get(&id).map(String::as_str), Some("candidate"), "{id} logged as the candidate's");
        let correct = i % 4 != 3;
        let truth = if correct { label } else { format!("not-{label}") };
        feedback.push(json!({"predictionId": id, "label": truth}));
        if correct { want.0 += 1 } else { want.1 += 1 }
    }
    feedback.push(json!({"predictionId": "never-predicted", "label": "x"}));
    // Prometheus counts an increase from a scraped value: wait until it has scraped the candidate's
    // feedback counters at 0 (the router creates them when the candidate joins its configuration).
    let zero = format!(r#"sum(champion_router_feedback_total{{namespace="{}",variant="candidate"}})"#, env.ns);
    eventually("the candidate's feedback counters scraped at 0", POD_T, || async {
        (env.prometheus_value(&zero).await == Some(0.0)).then_some(())
    })
    .await;
    let feedback_url = url.replace("/predict", "/feedback");
    let answer: Value =
        client.post(&feedback_url).json(&feedback).send().await.expect("POST /feedback").json().await.unwrap();
    assert_eq!(answer["matched"], json!(want.0 + want.1), "{answer}");
    assert_eq!(answer["notInWindow"], json!(1), "{answer}");
    let expected = f64::from(want.0) / f64::from(want.0 + want.1);
    // The operator's built-in metric reads it back through Prometheus.
    let md = eventually("the built-in feedbackAccuracy in status", POD_T, || async {
        let md = env.api::<ModelDeployment>().get(name).await.ok()?;
        let m = status(&md).analysis?.metrics.into_iter().find(|m| m.name == "accuracy")?;
        m.value.filter(|v| (v - expected).abs() < 1e-6).map(|_| md)
    })
    .await;
    eprintln!(
        "MEASURED: feedback {want:?} (correct, incorrect); analysis: {:?}",
        status(&md).analysis.map(|a| a.metrics)
    );
    let q =
        format!(r#"sum(champion_router_feedback_unmatched_total{{namespace="{}",reason="not_in_window"}})"#, env.ns);
    let unmatched = env.prometheus_value(&q).await;
    assert_eq!(unmatched, Some(1.0), "{q}");
}

#[tokio::test(flavor = "multi_thread")]
async fn router_an_experiment_in_shadow_mode_compares_answers_and_a_disagreeing_variant_is_stopped() {
    use champion::api::Experiment;
    use champion::api::experiment::ExperimentPhase;
    let test = "router_an_experiment_in_shadow_mode_compares_answers_and_a_disagreeing_variant_is_stopped";
    let Some(node) = real_node(test) else { return };
    let mut env = TestEnv::new("rt-xshadow").await;
    let name = "compared";
    let url =
        serving_through_the_router(&mut env, &node, name, &routed_md(&node, name, "1.0.0", "[]", "[{pause: {}}]"))
            .await;
    // A shadow variant that flips half of its labels (its env overrides the template's). The objective
    // counts each arm's answered predictions, as the pods' own metrics say.
    let experiment = format!(
        r#"apiVersion: champion.ml/v1alpha1
kind: Experiment
metadata: {{name: compare}}
spec:
  deploymentRef: {{name: {name}}}
  mode: shadow
  variants:
  - {{name: flips, weight: 100, model: {{version: "1.2.0", uri: "s3://models/{name}/1.2.0"}}, env: [{{name: DISAGREE, value: "0.5"}}]}}
  objective:
    name: answered
    type: proportion
    successes: 'sum(http_requests_total{{namespace="{{{{namespace}}}}",champion_ml_revision="{{{{revision}}}}",handler="/predict",code="200"}})'
    trials: 'sum(http_requests_total{{namespace="{{{{namespace}}}}",champion_ml_revision="{{{{revision}}}}",handler="/predict"}})'
  guardrails:
  - {{name: agreement, builtin: shadowAgreement, thresholdRange: {{min: 0.9}}}}
  decision: {{confidence: 0.95, maxDuration: 10m, evaluationInterval: 5s}}
"#
    );
    env.apply_yaml(&experiment).expect("apply the Experiment");
    let api: Api<Experiment> = env.api();
    let api = &api;
    let routed = load(&url, Duration::from_secs(180), move || async move {
        api.get("compare").await.ok().and_then(|x| x.status).and_then(|s| s.phase) == Some(ExperimentPhase::Aborted)
    })
    .await;
    let x = env
        .wait_for::<Experiment, _>("compare", "compare Aborted", POD_T, |x| {
            x.status.as_ref().and_then(|s| s.phase) == Some(ExperimentPhase::Aborted)
        })
        .await;
    let s = x.status.clone().unwrap_or_default();
    let agreement = |v: &str| s.variants.iter().find(|r| r.name == v).and_then(|r| r.agreement.zip(r.comparisons));
    eprintln!(
        "MEASURED: {} requests through the router; variants: {:?}; message: {:?}",
        routed.len(),
        s.variants,
        s.message
    );
    let (flips, flips_n) = agreement("flips").expect("the flipping variant's agreement in status");
    assert!(flips < 0.9 && flips > 0.2 && flips_n > 0, "about half: {flips} over {flips_n}");
    let ready = s.conditions.iter().find(|c| c.type_ == "Ready").map(|c| (c.reason.clone(), c.message.clone()));
    let (reason, message) = ready.expect("a Ready condition");
    assert_eq!(reason, "GuardrailBreached", "{message}");
    assert!(message.contains("agreement of variant flips"), "{message}");
    let printed = output_text(&env.plugin(&["experiment", "status", "compare"]));
    assert!(printed.contains("Shadow:     flips") && printed.contains("% agreement"), "{printed}");
    // The shadows never answered a client, and the mirroring goes with the variants.
    assert!(routed.iter().all(|r| r.answer.code == 0 || r.answer.version == "1.0.0"), "{:?}", tally(&answers(&routed)));
    eventually("the router's configuration without shadows", POD_T, || async {
        let cm = env.kubectl(&["get", "configmap", &format!("{name}-router"), "-o", "jsonpath={.data.router\\.json}"]);
        let config: Value = serde_json::from_slice(&cm.stdout).ok()?;
        config.get("shadows").is_none().then_some(())
    })
    .await;
}

/// The kubelet rewrites a pod's ConfigMap volume when it syncs the pod: every minute (the real node keeps
/// the kubelet's default), or at once when the pod changes. The operator annotates the router's pods with
/// each new configuration's hash, so every step reaches the router while it lasts: two 15 s steps in a row
/// are both seen in the configuration the router itself serves (`/config` on its admin port), where
/// periodic syncs alone, a minute apart, could show at most one of them.
#[tokio::test(flavor = "multi_thread")]
async fn router_each_step_reaches_the_router_while_it_lasts() {
    let Some(node) = real_node("router_each_step_reaches_the_router_while_it_lasts") else { return };
    let mut env = TestEnv::new("rt-steps").await;
    let name = "stepped";
    let steps = "[{setWeight: 20}, {pause: {duration: 15s}}, {setWeight: 40}, {pause: {duration: 15s}}, \
                 {setWeight: 60}, {pause: {}}]";
    // No analysis: only the steps' timing matters here.
    let without_analysis = |yaml: String| yaml[..yaml.find("      analysis:").expect("an analysis block")].to_string();
    let first = without_analysis(routed_md(&node, name, "1.0.0", "[]", steps));
    serving_through_the_router(&mut env, &node, name, &first).await;
    env.apply_yaml(&without_analysis(routed_md(&node, name, "2.0.0", "[]", steps))).expect("ship 2.0.0");

    let pods: Api<Pod> = env.api();
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build().unwrap();
    let selector = ListParams::default().labels(&format!("champion.ml/router={name}"));
    let mut seen: Vec<u64> = Vec::new();
    let started = Instant::now();
    while seen.last() != Some(&60) {
        assert!(started.elapsed() < Duration::from_secs(180), "the router never served weight 60; it served {seen:?}");
        for pod in pods.list(&selector).await.expect("router pods").items {
            let Some(ip) = pod.status.and_then(|s| s.pod_ip) else { continue };
            let Ok(r) = http.get(format!("http://{ip}:9090/config")).send().await else { continue };
            let Ok(doc) = r.json::<Value>().await else { continue };
            let weight = doc["config"]["backends"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|b| b["name"] == "candidate")
                .and_then(|b| b["weight"].as_u64())
                .unwrap_or(0);
            if seen.last() != Some(&weight) {
                eprintln!(
                    "MEASURED: {:.1} s after shipping, the router serves candidate weight {weight}",
                    started.elapsed().as_secs_f64()
                );
                seen.push(weight);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let steps_seen: Vec<u64> = seen.iter().copied().filter(|w| *w > 0).collect();
    assert_eq!(steps_seen, [20, 40, 60], "every step reached the router in turn: {seen:?}");
    // The router's pod carries the hash of the configuration it was told of.
    let pod = pods.list(&selector).await.expect("router pods").items.remove(0);
    let told = pod.metadata.annotations.unwrap_or_default().remove("champion.ml/router-config");
    assert!(told.is_some_and(|h| h.len() == 16), "the router pod was annotated with the configuration's hash");
}
