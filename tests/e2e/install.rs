//! Installing Champion from `config/` and the operator's life cycle: readiness, metrics, SIGTERM,
//! printer columns, and an invalid spec reported (and cleared) through status and Events.

use std::time::Duration;

use champion::api::{Experiment, ModelDeployment, RetrainPolicy};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;

use crate::harness::{CRDS, TestEnv, eventually, http_get, output_text, repo_root};

const STATUS_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn install_from_config_and_operator_becomes_ready() {
    let mut env = TestEnv::new("install").await;
    let client = env.client();

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "champion-system");
    let deployment = deployments.get("champion").await.expect("Deployment champion-system/champion");
    let pod_spec = deployment.spec.and_then(|s| s.template.spec).expect("the Deployment has a pod spec");
    assert_eq!(pod_spec.service_account_name.as_deref(), Some("champion"));
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "champion-system");
    accounts.get("champion").await.expect("ServiceAccount champion-system/champion");
    let roles: Api<ClusterRole> = Api::all(client.clone());
    roles.get("champion").await.expect("ClusterRole champion");
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    let binding = bindings.get("champion").await.expect("ClusterRoleBinding champion");
    assert_eq!(binding.role_ref.name, "champion");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in CRDS {
        let crds = crds.clone();
        eventually(&format!("CRD {name} Established"), STATUS_TIMEOUT, || {
            let crds = crds.clone();
            async move {
                let crd = crds.get(name).await.ok()?;
                let conditions = crd.status?.conditions?;
                conditions.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
            }
        })
        .await;
    }

    env.start_operator().await;
    let (status, body) = http_get(&env.metrics_url().replace("/metrics", "/healthz")).await;
    assert_eq!(status, 200, "/healthz: {body}");
    // /readyz answered 200 (start_operator waited for it) only after every controller synced its cache.
    let log = env.operator_log();
    for kind in ["ModelDeployment", "Experiment", "RetrainPolicy"] {
        assert!(
            log.lines().any(|l| l.contains("cache synced; reconciling") && l.contains(kind)),
            "ready before the {kind} controller synced its cache; log:\n{log}"
        );
    }
    let (status, body) = http_get(&env.metrics_url().replace("/metrics", "/readyz")).await;
    assert_eq!((status, body.as_str()), (200, "ok"));

    // The reconcile counters have a series once something was reconciled.
    env.apply_file(&repo_root().join("examples/modeldeployment-replicas.yaml")).expect("apply the replicas example");
    let url = env.metrics_url();
    let metrics = eventually("/metrics to count a ModelDeployment reconcile", STATUS_TIMEOUT, || {
        let url = url.clone();
        async move {
            let (status, body) = http_get(&url).await;
            (status == 200 && body.contains("champion_reconciliations_total{kind=\"ModelDeployment\"}")).then_some(body)
        }
    })
    .await;
    assert!(metrics.contains("champion_reconcile_duration_seconds_bucket"), "no reconcile histogram:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_operator_cleanly() {
    let mut env = TestEnv::new("sigterm").await;
    env.start_operator().await;
    let status = env.stop_operator().await;
    let log = env.operator_log();
    assert!(status.success(), "the operator exited with {status} after SIGTERM; log:\n{log}");
    assert!(log.contains("shutdown signal received"), "the log does not mention the signal:\n{log}");
    assert!(log.contains("champion stopped"), "the log does not say the operator stopped:\n{log}");

    // Started again after a stop, it becomes ready again (what a restart test relies on).
    env.start_operator().await;
    assert!(env.operator_running());
}

/// The header of `kubectl get <resource>` in the namespace, as words.
fn header(env: &TestEnv, resource: &str) -> Vec<String> {
    let out = env.kubectl(&["get", resource]);
    assert!(out.status.success(), "kubectl get {resource}: {}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().next().unwrap_or_default().split_whitespace().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn printer_columns_of_modeldeployments() {
    // Columns need no operator: they are read from the CRDs by the API server.
    let env = TestEnv::new("columns").await;
    for example in ["modeldeployment-replicas.yaml", "experiment-ab.yaml", "retrainpolicy.yaml"] {
        env.apply_file(&repo_root().join("examples").join(example)).unwrap_or_else(|e| panic!("{example}: {e}"));
    }
    let expected: [(&str, &str, &[&str]); 3] = [
        ("modeldeployments", "md", &["NAME", "MODEL", "CANDIDATE", "WEIGHT", "STEP", "PHASE", "AGE"]),
        ("experiments", "mlx", &["NAME", "DEPLOYMENT", "MODE", "PHASE", "WINNER", "CONFIDENCE", "AGE"]),
        ("retrainpolicies", "rtp", &["NAME", "DEPLOYMENT", "PHASE", "LAST-TRIGGER", "LAST-RUN", "NEXT", "AGE"]),
    ];
    for (plural, short, columns) in expected {
        assert_eq!(header(&env, plural), columns, "kubectl get {plural}");
        assert_eq!(header(&env, short), columns, "kubectl get {short}");
    }

    // The category lists all three kinds.
    let out = env.kubectl(&["get", "champion", "-o", "name"]);
    assert!(out.status.success(), "kubectl get champion: {}", output_text(&out));
    let names = String::from_utf8_lossy(&out.stdout);
    for name in [
        "modeldeployment.champion.ml/churn-predictor",
        "experiment.champion.ml/fraud-v22-vs-v21",
        "retrainpolicy.champion.ml/fraud-retrain",
    ] {
        assert!(names.lines().any(|l| l == name), "kubectl get champion lacks {name}:\n{names}");
    }
    // The typed API reads what kubectl wrote.
    env.api::<ModelDeployment>().get("churn-predictor").await.expect("typed get of the ModelDeployment");
    env.api::<Experiment>().get("fraud-v22-vs-v21").await.expect("typed get of the Experiment");
    env.api::<RetrainPolicy>().get("fraud-retrain").await.expect("typed get of the RetrainPolicy");
}

/// A ModelDeployment whose background analysis metric names the Prometheus provider `provider`.
fn with_provider(provider: &str) -> String {
    format!(
        r#"apiVersion: champion.ml/v1alpha1
kind: ModelDeployment
metadata:
  name: bad-provider
spec:
  model:
    version: "1.0.0"
    uri: s3://models/bad-provider/1.0.0
  template:
    spec:
      containers:
        - name: server
          image: example/server:1
  strategy:
    canary:
      steps:
        - setWeight: 50
      analysis:
        interval: 1m
        metrics:
          - name: error-rate
            prometheus:
              provider: {provider}
              query: 'sum(rate(http_requests_total{{namespace="{{{{namespace}}}}",code=~"5.."}}[1m]))'
            thresholdRange: {{max: 0.01}}
"#
    )
}

fn ready(md: &ModelDeployment) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    md.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Ready")
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_reports_an_invalid_spec() {
    let mut env = TestEnv::new("invalid-spec").await;
    env.start_operator().await;
    env.apply_yaml(&with_provider("thanos"))
        .expect("the API server accepts the spec (only the operator knows providers)");

    let md = env
        .wait_for::<ModelDeployment, _>("bad-provider", "Ready=False with reason InvalidSpec", STATUS_TIMEOUT, |md| {
            ready(md).is_some_and(|c| c.status == "False" && c.reason == "InvalidSpec")
        })
        .await;
    let message = &ready(&md).expect("Ready").message;
    assert!(message.contains("provider") && message.contains("thanos"), "Ready's message: {message}");
    assert_eq!(md.status.as_ref().and_then(|s| s.observed_generation), Some(1));

    let event = eventually("a Warning Event InvalidSpec for bad-provider", STATUS_TIMEOUT, || async {
        env.events().into_iter().find(|(reason, type_, _, regarding)| {
            reason == "InvalidSpec" && type_ == "Warning" && regarding == "bad-provider"
        })
    })
    .await;
    assert!(event.2.contains("thanos"), "the Event's note does not name the provider: {}", event.2);

    env.apply_yaml(&with_provider("default")).expect("apply the corrected spec");
    let md = env
        .wait_for::<ModelDeployment, _>(
            "bad-provider",
            "generation 2 observed, no longer InvalidSpec",
            STATUS_TIMEOUT,
            |md| {
                md.status.as_ref().and_then(|s| s.observed_generation) == Some(2)
                    && ready(md).is_some_and(|c| c.reason != "InvalidSpec")
            },
        )
        .await;
    assert_eq!(md.metadata.generation, Some(2));
}
