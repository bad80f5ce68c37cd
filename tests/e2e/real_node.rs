//! Tests on the real node of `tests/cluster/node-up.sh` (kubelet, containerd, CNI bridge, kube-proxy):
//! pods that really run the images of `tests/images/`, requests that really cross a ClusterIP Service
//! from this machine, and Prometheus scraping the pods through Kubernetes service discovery.
//!
//! - a candidate whose real error rate (a bounded load loop through the Service) rolls it back;
//! - the replicas router's split, measured from which version answered real requests;
//! - training and evaluation Jobs that really run and report through their termination message;
//! - bad input: a crashing container, a missing image, a readiness probe that never passes.
//!
//! Known operator bug these tests catch (main at 75e1ebe): under the replicas router the stable Service
//! must select both revisions while rolling out, but `rollout::desired::up_to_date` lets a current map
//! hold more keys than the desired one, so a Service whose selector still has `champion.ml/revision`
//! counts as up to date and the candidate's pods get no real traffic (WEIGHT says 25, the candidate
//! answered 0/400). The split and the error-rate rollback tests fail until the selector is compared
//! exactly; with that one change all six pass.
//!
//! When the node could not start (`node-up.sh` wrote `node.unavailable`), each test prints why and
//! returns; under `CI=true` that is a failure instead.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use champion::api::{DeploymentPhase, ModelDeployment};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::harness::{TestEnv, eventually, read_env_file, repo_root};
use crate::md::{T, degraded, phase, plugin, stable_version, status, wait_healthy};

/// The example these tests ship versions of, and its ModelDeployment's name.
const EXAMPLE: &str = "examples/modeldeployment-real-node.yaml";
const EXAMPLE_NAME: &str = "sentiment";
/// Real pods start in seconds, but tests share the machine's two cores.
pub(crate) const POD_T: Duration = Duration::from_secs(120);

/// What `node-up.sh` wrote to `node.env`.
pub(crate) struct RealNode {
    pub(crate) name: String,
    /// The label (value "true") and taint key (value "true", NoSchedule) of the node.
    pub(crate) label: String,
    pub(crate) server_image: String,
    pub(crate) trainer_image: String,
    /// The first three octets of the node's /24 pod CIDR, with the dot: `10.88.7.`.
    pod_ip_prefix: String,
    /// The node's containerd socket (to import images).
    pub(crate) containerd: String,
}

/// The real node, or `None` after printing why it is not there. Under `CI=true` its absence panics.
pub(crate) fn real_node(test: &str) -> Option<RealNode> {
    let dir =
        PathBuf::from(std::env::var_os("CHAMPION_E2E_DIR").expect("CHAMPION_E2E_DIR is not set: run hack/test.sh"));
    let env = match read_env_file(&dir.join("node.env")) {
        Ok(env) => env,
        Err(e) => {
            let why = std::fs::read_to_string(dir.join("node.unavailable"))
                .unwrap_or_else(|_| format!("node-up.sh did not run ({e})"));
            let why = why.trim();
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true requires the real node, but it is unavailable: {why}");
            }
            eprintln!("SKIPPED {test}: the real node is unavailable: {why}");
            return None;
        }
    };
    let get = |k: &str| env.get(k).cloned().unwrap_or_else(|| panic!("node.env has no {k}"));
    let cidr = get("REAL_NODE_POD_CIDR");
    let prefix = cidr.strip_suffix("0/24").unwrap_or_else(|| panic!("REAL_NODE_POD_CIDR {cidr} is not a /24"));
    Some(RealNode {
        name: get("REAL_NODE_NAME"),
        label: get("REAL_NODE_LABEL"),
        server_image: get("REAL_NODE_IMAGE_SERVER"),
        trainer_image: get("REAL_NODE_IMAGE_TRAINER"),
        pod_ip_prefix: prefix.to_string(),
        containerd: get("REAL_NODE_CONTAINERD"),
    })
}

impl RealNode {
    /// Pod spec lines (YAML, 6 spaces deep) that put a pod on the real node.
    pub(crate) fn placement(&self) -> String {
        let l = &self.label;
        format!(
            "      nodeSelector: {{{l}: \"true\"}}\n      tolerations: [{{key: {l}, operator: Equal, value: \"true\", \
             effect: NoSchedule}}]\n      automountServiceAccountToken: false\n"
        )
    }
}

/// A ModelDeployment of the example model server on the real node, replicas router, one background
/// check of the real error rate (the label contract of the example).
fn server_md(
    node: &RealNode,
    name: &str,
    version: &str,
    replicas: i32,
    steps: &str,
    env: &str,
    deadline: &str,
) -> String {
    let head = served_on_the_node(node, name, version, replicas, env);
    format!(
        r#"{head}  traffic: {{router: replicas, port: 8080}}
  strategy:
    progressDeadline: {deadline}
    canary:
      steps: {steps}
      analysis:
        interval: 2s
        metrics:
        - name: error-rate
          prometheus: {{query: 'sum(rate(http_requests_total{{namespace="{{{{namespace}}}}",champion_ml_revision="{{{{revision}}}}",code=~"5.."}}[30s])) / sum(rate(http_requests_total{{namespace="{{{{namespace}}}}",champion_ml_revision="{{{{revision}}}}"}}[30s]))'}}
          thresholdRange: {{max: 0.05}}
"#
    )
}

/// The beginning of a ModelDeployment of the example model server on the real node (`env` its container's
/// environment), up to its pod template; the caller adds `traffic` and `strategy`.
pub fn served_on_the_node(node: &RealNode, name: &str, version: &str, replicas: i32, env: &str) -> String {
    let placement = node.placement();
    let image = &node.server_image;
    format!(
        r#"apiVersion: champion.ml/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}}}
spec:
  model: {{version: "{version}", uri: "s3://models/{name}/{version}"}}
  replicas: {replicas}
  template:
    spec:
{placement}      terminationGracePeriodSeconds: 5
      containers:
      - name: server
        image: {image}
        imagePullPolicy: Never
        env: {env}
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /health, port: http}}, periodSeconds: 1}}
"#
    )
}

/// One answer of the model server: the HTTP status and the version and pod it names; status 0 is a
/// transport error (connection refused while kube-proxy catches up with a removed endpoint).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Answer {
    pub(crate) code: u16,
    pub(crate) version: String,
    pub(crate) pod: String,
}

/// Requests per (version, code).
pub(crate) type Tally = BTreeMap<(String, u16), u32>;

pub(crate) fn tally(answers: &[Answer]) -> Tally {
    let mut t = Tally::new();
    for a in answers {
        *t.entry((a.version.clone(), a.code)).or_default() += 1;
    }
    t
}

/// A client that opens a new connection per request, so that kube-proxy balances every request (a kept-
/// alive connection would stick to one pod).
pub(crate) fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("HTTP client")
}

/// `http://<ClusterIP>:<port>/predict` of a Service (the real node routes the Service CIDR locally).
pub(crate) async fn predict_url(env: &TestEnv, service: &str) -> String {
    let svc: Service = env.api::<Service>().get(service).await.unwrap_or_else(|e| panic!("Service {service}: {e}"));
    let spec = svc.spec.expect("Service spec");
    let ip = spec.cluster_ip.expect("a ClusterIP");
    let port = spec.ports.and_then(|p| p.first().map(|p| p.port)).expect("a port");
    format!("http://{ip}:{port}/predict")
}

pub(crate) async fn predict(client: &reqwest::Client, url: &str, i: usize) -> Answer {
    let body = serde_json::json!({"features": [i, i % 7, i % 13]});
    match client.post(url).json(&body).send().await {
        Ok(r) => {
            let code = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            Answer { code, version: s("version"), pod: s("pod") }
        }
        Err(_) => Answer { code: 0, version: String::new(), pod: String::new() },
    }
}

/// The load's pace: at most one request per tick (100 a second), so the traffic lasts as long as the
/// test needs it. Unpaced, a fast machine spent a request budget in seconds, and an analysis over a 30 s
/// window then had nothing to divide by.
const LOAD_TICK: Duration = Duration::from_millis(10);

/// Sends up to `max` requests (at most `max_time`), one after the other and at most one per
/// [`LOAD_TICK`]; every 25 requests asks `stop` whether to end early. Returns the answers.
async fn load<F, Fut>(url: &str, max: usize, max_time: Duration, stop: F) -> Vec<Answer>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let client = fresh_connections();
    let started = Instant::now();
    let mut tick = tokio::time::interval(LOAD_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut answers = Vec::new();
    for i in 0..max {
        if started.elapsed() > max_time || (i % 25 == 0 && i > 0 && stop().await) {
            break;
        }
        tick.tick().await;
        answers.push(predict(&client, url, i).await);
    }
    answers
}

/// Sends requests until `want` consecutive ones are answered 200 by `version` (bounded by time, 60 s: how
/// fast kube-proxy follows an endpoint change depends on the machine's load, not on a request count);
/// panics with what answered otherwise.
pub(crate) async fn until_only(url: &str, version: &str, want: usize) {
    let client = fresh_connections();
    let started = Instant::now();
    let (mut run, mut seen) = (0, Vec::new());
    for i in 0.. {
        let a = predict(&client, url, i).await;
        run = if a.code == 200 && a.version == version { run + 1 } else { 0 };
        if run >= want {
            return;
        }
        seen.push(a);
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    panic!("{url}: never {want} answers in a row from {version}; answers: {:?}", tally(&seen));
}

/// The example with another version and error rate, as a user would edit and apply it.
fn example_at(version: &str, error_rate: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join(EXAMPLE)).expect("read the example");
    let edited = text
        .replace("version: \"1.0.0\"", &format!("version: \"{version}\""))
        .replace("sentiment/1.0.0", &format!("sentiment/{version}"))
        .replace("{name: ERROR_RATE, value: \"0\"}", &format!("{{name: ERROR_RATE, value: \"{error_rate}\"}}"));
    assert!(edited.contains(&format!("value: \"{error_rate}\"")), "the example's ERROR_RATE line moved");
    edited
}

#[tokio::test(flavor = "multi_thread")]
async fn real_node_a_candidate_with_real_errors_is_rolled_back() {
    let Some(node) = real_node("real_node_a_candidate_with_real_errors_is_rolled_back") else { return };
    let mut env = TestEnv::new("rn-errors").await;
    env.start_operator().await;
    env.apply_file(&repo_root().join(EXAMPLE)).expect("apply the example");
    let name = EXAMPLE_NAME;
    wait_for_md(&env, name, "1.0.0 Healthy", |md| {
        phase(md) == Some(DeploymentPhase::Healthy) && stable_version(md).as_deref() == Some("1.0.0")
    })
    .await;
    check_pods_on(&env, &node, name).await;
    let url = predict_url(&env, name).await;
    until_only(&url, "1.0.0", 10).await;

    env.apply_yaml(&example_at("1.1.0", "0.5")).expect("ship 1.1.0 with ERROR_RATE 0.5");
    let shipped = Instant::now();
    let api: Api<ModelDeployment> = env.api();
    let candidate_hash = std::sync::Mutex::new(None::<String>);
    let (api, hash_ref) = (&api, &candidate_hash);
    let answers = load(&url, usize::MAX, Duration::from_secs(150), move || async move {
        let s = api.get(name).await.ok().as_ref().map(status).unwrap_or_default();
        if let Some(h) = s.candidate.as_ref().filter(|c| c.version == "1.1.0").and_then(|c| c.hash.clone()) {
            *hash_ref.lock().unwrap() = Some(h);
        }
        s.phase == Some(DeploymentPhase::RolledBack)
    })
    .await;
    let md = wait_for_md(&env, name, "RolledBack", |md| phase(md) == Some(DeploymentPhase::RolledBack)).await;
    let took = shipped.elapsed();
    let t = tally(&answers);
    eprintln!(
        "MEASURED: shipping 1.1.0 (ERROR_RATE 0.5) to RolledBack took {:.1} s, {} requests through the Service: {t:?}; \
         last analysis: {:?}",
        took.as_secs_f64(),
        answers.len(),
        status(&md).analysis.map(|a| a.metrics)
    );
    assert_eq!(stable_version(&md).as_deref(), Some("1.0.0"));
    let (s, reason, message) = degraded(&md).expect("a Degraded condition");
    assert_eq!((s.as_str(), reason.as_str()), ("True", "AnalysisFailed"), "{message}");
    assert!(message.contains("error-rate"), "{message}");
    // The candidate really served, and really failed; the stable version never did.
    assert!(t.get(&("1.1.0".into(), 500)).copied().unwrap_or(0) > 0, "the candidate answered no 500: {t:?}");
    assert!(t.get(&("1.1.0".into(), 200)).copied().unwrap_or(0) > 0, "the candidate answered no 200: {t:?}");
    assert_eq!(t.get(&("1.0.0".into(), 500)), None, "the stable version failed: {t:?}");
    // What the analysis read is what Prometheus scraped from the candidate's pods, by the label contract
    // (over a range: the candidate's pods are gone, so an instant query sees their series as stale).
    let hash = candidate_hash.lock().unwrap().clone().expect("the candidate's revision hash was seen in status");
    let q = format!(
        r#"sum(max_over_time(http_requests_total{{namespace="{}",champion_ml_revision="{hash}",code="500"}}[10m]))"#,
        env.ns
    );
    let scraped = env.prometheus_value(&q).await;
    assert!(scraped.is_some_and(|v| v > 0.0), "{q} = {scraped:?}");
    until_only(&url, "1.0.0", 30).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_node_the_replicas_split_is_measured_from_real_responses() {
    let Some(node) = real_node("real_node_the_replicas_split_is_measured_from_real_responses") else { return };
    let mut env = TestEnv::new("rn-split").await;
    env.start_operator().await;
    let name = "splitter";
    let steps = "[{setWeight: 25}, {pause: {}}]";
    let env_none = "[]";
    env.apply_yaml(&server_md(&node, name, "1.0.0", 4, steps, env_none, "5m")).expect("apply");
    wait_for_md(&env, name, "1.0.0 Healthy", |md| {
        phase(md) == Some(DeploymentPhase::Healthy) && stable_version(md).as_deref() == Some("1.0.0")
    })
    .await;
    let url = predict_url(&env, name).await;
    env.apply_yaml(&server_md(&node, name, "2.0.0", 4, steps, env_none, "5m")).expect("ship 2.0.0");
    wait_for_md(&env, name, "paused at 25%", |md| {
        phase(md) == Some(DeploymentPhase::Paused) && status(md).weights.is_some_and(|w| w.candidate == 25)
    })
    .await;
    // 3 stable pods and 1 candidate pod, all ready, none terminating: then the split is the pod ratio.
    let pods: Api<Pod> = env.api();
    let lp = ListParams::default().labels(&format!("champion.ml/deployment={name}"));
    eventually("4 ready pods, none terminating", POD_T, || {
        let (pods, lp) = (pods.clone(), lp.clone());
        async move {
            let list = pods.list(&lp).await.ok()?;
            let ready = list.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none() && pod_ready(p)).count();
            (list.items.len() == 4 && ready == 4).then_some(())
        }
    })
    .await;
    check_pods_on(&env, &node, name).await;
    // Let kube-proxy catch up with the last endpoint change: 20 answers in a row that are all 200.
    until_ok(&url, 20).await;

    let n = 400;
    let answers = load(&url, n, Duration::from_secs(120), || async { false }).await;
    let t = tally(&answers);
    let ok: u32 = t.iter().filter(|((_, c), _)| *c == 200).map(|(_, n)| n).sum();
    let candidate = t.get(&("2.0.0".into(), 200)).copied().unwrap_or(0);
    let share = f64::from(candidate) / f64::from(ok.max(1));
    let pods_seen: std::collections::BTreeSet<&str> = answers.iter().map(|a| a.pod.as_str()).collect();
    eprintln!(
        "MEASURED: at setWeight 25 (3 stable + 1 candidate pod) the candidate answered {candidate}/{ok} = {share:.3}: {t:?}"
    );
    assert_eq!(ok as usize, answers.len(), "every request answered 200: {t:?}");
    assert_eq!(answers.len(), n, "all {n} requests were sent");
    // Binomial(400, 0.25): standard deviation 0.022, so [0.15, 0.35] is 4.6 of them either side.
    assert!((0.15..=0.35).contains(&share), "candidate share {share:.3} is not near 25%: {t:?}");
    assert_eq!(pods_seen.len(), 4, "answers came from 4 pods: {pods_seen:?}");

    plugin(&env, &["promote", name]);
    wait_healthy(&env, name, "2.0.0").await;
    until_only(&url, "2.0.0", 30).await;
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Sends requests until `want` in a row are answered 200 (by any version).
async fn until_ok(url: &str, want: usize) {
    let client = fresh_connections();
    let mut run = 0;
    for i in 0..want * 20 {
        run = if predict(&client, url, i).await.code == 200 { run + 1 } else { 0 };
        if run >= want {
            return;
        }
    }
    panic!("{url}: never {want} answers 200 in a row");
}

/// Every pod of the ModelDeployment runs on the real node with an IP of its bridge.
pub(crate) async fn check_pods_on(env: &TestEnv, node: &RealNode, name: &str) {
    let pods: Api<Pod> = env.api();
    let list = pods.list(&ListParams::default().labels(&format!("champion.ml/deployment={name}"))).await.expect("pods");
    assert!(!list.items.is_empty(), "no pods of {name}");
    for p in &list.items {
        let on = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
        let pod = p.metadata.name.clone().unwrap_or_default();
        assert_eq!(on, node.name, "pod {pod} runs on the real node");
        assert!(ip.starts_with(&node.pod_ip_prefix), "pod {pod} has IP {ip}, not one of the real node's bridge");
    }
}

pub(crate) async fn wait_for_md(
    env: &TestEnv,
    name: &str,
    what: &str,
    pred: fn(&ModelDeployment) -> bool,
) -> ModelDeployment {
    env.wait_for::<ModelDeployment, _>(name, what, POD_T, pred).await
}

/// A namespace's Events as `TestEnv::events` gives them: (reason, type, note, regarding).
type Events = [(String, String, String, String)];

/// Ships a candidate with a fault (container env or image), checks with what the kubelet really reported
/// (`fault_seen` over the pods and the namespace's Events) that the fault happened, that stable answered
/// every request meanwhile, and that the rollout was rolled back when the progress deadline passed, with
/// a Degraded condition saying why.
async fn a_broken_candidate_is_rolled_back(
    prefix: &str,
    image: Option<&str>,
    env_yaml: &str,
    fault_seen: fn(&[Pod], &Events) -> Option<String>,
    operator_says: &str,
) {
    let Some(node) = real_node(prefix) else { return };
    let mut env = TestEnv::new(prefix).await;
    env.start_operator().await;
    let name = "fragile";
    let steps = "[{setWeight: 50}, {pause: {}}]";
    env.apply_yaml(&server_md(&node, name, "1.0.0", 2, steps, "[]", "20s")).expect("apply");
    wait_for_md(&env, name, "1.0.0 Healthy", |md| {
        phase(md) == Some(DeploymentPhase::Healthy) && stable_version(md).as_deref() == Some("1.0.0")
    })
    .await;
    let url = predict_url(&env, name).await;
    until_only(&url, "1.0.0", 10).await;

    let mut broken = server_md(&node, name, "1.1.0", 2, steps, env_yaml, "20s");
    if let Some(image) = image {
        broken = broken.replace(&node.server_image, image);
    }
    env.apply_yaml(&broken).expect("ship the broken 1.1.0");
    let shipped = Instant::now();
    let (env_ref, name_ref) = (&env, name);
    let api: Api<ModelDeployment> = env.api();
    let api = &api;
    let answers = load(&url, 3000, Duration::from_secs(90), move || async move {
        api.get(name_ref).await.ok().is_some_and(|md| phase(&md) == Some(DeploymentPhase::RolledBack))
    })
    .await;
    let md = wait_for_md(&env, name, "RolledBack", |md| phase(md) == Some(DeploymentPhase::RolledBack)).await;
    let took = shipped.elapsed();
    // The fault was real: the kubelet said so (the candidate's pod may be gone by now; its Events stay).
    let seen = eventually("the kubelet reporting the fault", T, move || async move {
        let pods: Api<Pod> = env_ref.api();
        let list = pods.list(&ListParams::default()).await.ok()?;
        fault_seen(&list.items, &env_ref.events())
    })
    .await;
    let t = tally(&answers);
    let (s, reason, message) = degraded(&md).expect("a Degraded condition");
    eprintln!(
        "MEASURED: {prefix}: RolledBack {:.1} s after shipping (progressDeadline 20s); {} requests meanwhile: {t:?}; \
         Degraded {reason}: {message}; the kubelet said: {seen}",
        took.as_secs_f64(),
        answers.len(),
    );
    assert!(answers.iter().any(|a| a.code == 200), "stable answered: {t:?}");
    assert!(
        answers.iter().all(|a| a.code == 0 || (a.code == 200 && a.version == "1.0.0")),
        "every answer came from the stable version: {t:?}"
    );
    assert_eq!(stable_version(&md).as_deref(), Some("1.0.0"));
    assert_eq!((s.as_str(), reason.as_str()), ("True", "ProgressDeadlineExceeded"), "{message}");
    assert!(message.contains("candidate's pods"), "{message}");
    assert!(message.contains(operator_says), "the operator names the cause ({operator_says}): {message}");
    until_only(&url, "1.0.0", 20).await;
}

/// The first kubelet Event of `reason` whose note contains `text`, as "reason: note".
fn event_with(events: &Events, reason: &str, text: &str) -> Option<String> {
    events
        .iter()
        .find(|(r, _, note, _)| r == reason && note.contains(text))
        .map(|(r, _, note, _)| format!("{r}: {note}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn real_node_a_crashing_candidate_is_rolled_back_and_stable_keeps_serving() {
    a_broken_candidate_is_rolled_back(
        "rn-crash",
        None,
        r#"[{name: EXIT_CODE, value: "3"}]"#,
        |pods, events| {
            let exited_3 = pods
                .iter()
                .flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
                .any(|c| c.last_state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 3));
            let backoff = event_with(events, "BackOff", "restarting failed container");
            if exited_3 { backoff.or(Some("a container exited with code 3".into())) } else { backoff }
        },
        "exit code 3",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_node_a_missing_image_is_rolled_back_and_stable_keeps_serving() {
    a_broken_candidate_is_rolled_back(
        "rn-noimage",
        Some("champion.test/no-such-image:1"),
        "[]",
        |_, events| event_with(events, "ErrImageNeverPull", "no-such-image"),
        "ErrImageNeverPull",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_node_a_candidate_that_never_gets_ready_is_rolled_back_and_stable_keeps_serving() {
    a_broken_candidate_is_rolled_back(
        "rn-unready",
        None,
        r#"[{name: NEVER_READY, value: "true"}]"#,
        |_, events| event_with(events, "Unhealthy", "Readiness probe failed"),
        "readiness probe does not pass",
    )
    .await;
}
