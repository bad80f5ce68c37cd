//! Following an MLflow alias on the real cluster with the real MLflow that `hack/test.sh` starts (and, for
//! the outage test, one of the test's own): the registry example serves what its alias names; moving the
//! alias rolls out through the steps and the serving alias and tags say so at the end; a failing metric
//! rolls back and the registry says why; MLflow stopped mid-rollout and started again loses nothing; the
//! day-2 verbs (refresh, promote-version, history, rollback) work against the registry.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use champion::api::{DeploymentPhase, ModelDeployment};
use champion::registry::{MlflowClient, NewModelVersion, Registry};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

use crate::harness::{TestEnv, eventually, output_text, repo_root};
use crate::md::{T, phase, plugin, status};

/// The operator reads aliases every 2 s in these tests (30 s by default).
const POLL: &str = "2s";

fn mlflow(uri: &str) -> MlflowClient {
    MlflowClient::new(uri, Duration::from_secs(10))
}

/// Creates the registered model `model` (unless it exists) with versions whose sources are
/// `s3://champion-e2e/<model>/<i>`, and points `champion` at the first; returns the version numbers.
async fn register(uri: &str, model: &str, versions: usize) -> Vec<String> {
    let c = mlflow(uri);
    if let Err(e) = c.create_registered_model(model, Some("e2e: follow an alias")).await {
        assert!(e.is_already_exists(), "create {model}: {e}");
    }
    let mut out = Vec::new();
    for i in 1..=versions {
        let new = NewModelVersion {
            name: model.to_string(),
            source: format!("s3://champion-e2e/{model}/{i}"),
            tags: BTreeMap::from([("champion.ml/version".to_string(), format!("1.{i}.0"))]),
            ..NewModelVersion::default()
        };
        out.push(
            c.create_model_version(&new).await.unwrap_or_else(|e| panic!("create a version of {model}: {e}")).version,
        );
    }
    c.set_registered_model_alias(model, "champion", &out[0]).await.unwrap();
    out
}

/// A ModelDeployment following alias `champion` of `model`, with the replicas router and `steps`; the
/// background metric reads the test exporter's error rate of the candidate.
fn follow_yaml(name: &str, model: &str, steps: &str) -> String {
    format!(
        r#"apiVersion: champion.ml/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}}}
spec:
  model:
    registry: {{model: {model}, alias: champion}}
  replicas: 2
  template:
    spec:
      containers: [{{name: server, image: "example.invalid/server:1"}}]
  strategy:
    scaleDownDelay: 1s
    canary:
      steps: {steps}
      analysis:
        interval: 2s
        metrics:
        - name: error-rate
          prometheus: {{query: 'champion_e2e_error_rate{{namespace="{{{{namespace}}}}",variant="{{{{variant}}}}"}}'}}
          thresholdRange: {{max: 0.01}}
"#
    )
}

fn registry_condition(md: &ModelDeployment) -> Option<(String, String, String)> {
    status(md).conditions.into_iter().find(|c| c.type_ == "RegistrySynced").map(|c| (c.status, c.reason, c.message))
}

fn stable_registry_version(md: &ModelDeployment) -> Option<String> {
    status(md).stable.and_then(|s| s.registry).map(|r| r.version)
}

async fn wait_serving(env: &TestEnv, name: &str, number: &str) -> ModelDeployment {
    let n = number.to_string();
    env.wait_for::<ModelDeployment, _>(name, &format!("{name} Healthy on registry version {number}"), T, move |md| {
        phase(md) == Some(DeploymentPhase::Healthy) && stable_registry_version(md).as_deref() == Some(n.as_str())
    })
    .await
}

/// Waits until the registry's serving alias points at `number` and returns that version's tags.
async fn wait_recorded(uri: &str, model: &str, serving_alias: &str, number: &str) -> BTreeMap<String, String> {
    let c = mlflow(uri);
    eventually(&format!("alias {serving_alias} of {model} on version {number}"), T, || async {
        match c.get_model_version_by_alias(model, serving_alias).await {
            Ok(v) if v.version == number => Some(v.tags),
            _ => None,
        }
    })
    .await
}

async fn tags(uri: &str, model: &str, version: &str) -> BTreeMap<String, String> {
    mlflow(uri).get_model_version(model, version).await.unwrap_or_else(|e| panic!("{model} {version}: {e}")).tags
}

fn env_of(d: &Deployment, name: &str) -> Option<String> {
    let c = d.spec.as_ref()?.template.spec.as_ref()?.containers.first()?;
    c.env.as_ref()?.iter().find(|e| e.name == name)?.value.clone()
}

/// The example of `examples/` as shipped: it serves the version its alias names, with MLflow's source as
/// `MODEL_URI`, and the registry's serving alias and tags say it serves.
#[tokio::test(flavor = "multi_thread")]
async fn the_registry_example_follows_its_alias_and_serves() {
    let mut env = TestEnv::new("follow-example").await;
    let uri = env.mlflow_tracking_uri().to_string();
    let versions = register(&uri, "credit-scorer", 2).await;
    env.start_operator_with(&format!("mlflow: {{trackingUri: {uri:?}, pollInterval: {POLL}}}")).await;
    env.apply_file(&repo_root().join("examples/modeldeployment-registry-alias.yaml")).unwrap();

    let md = wait_serving(&env, "credit-scorer", &versions[0]).await;
    let s = status(&md);
    assert_eq!(s.stable.as_ref().map(|r| r.version.as_str()), Some("1.1.0"), "the version tag names it");
    let registry = s.registry.clone().unwrap();
    assert_eq!(registry.version.as_deref(), Some(versions[0].as_str()));
    assert_eq!(registry.source.as_deref(), Some("s3://champion-e2e/credit-scorer/1"));
    assert!(registry.seen_at.is_some());
    let cond = registry_condition(&md).unwrap();
    assert_eq!((cond.0.as_str(), cond.1.as_str()), ("True", "Synced"), "{cond:?}");

    let hash = s.stable.and_then(|r| r.hash).unwrap();
    let d: Deployment = env.api().get(&format!("credit-scorer-{hash}")).await.unwrap();
    assert_eq!(env_of(&d, "MODEL_URI").as_deref(), Some("s3://champion-e2e/credit-scorer/1"));
    assert_eq!(env_of(&d, "MODEL_REGISTRY_URI"), Some(format!("models:/credit-scorer/{}", versions[0])));
    assert_eq!(env_of(&d, "MODEL_VERSION").as_deref(), Some("1.1.0"));

    let t = wait_recorded(&uri, "credit-scorer", "credit-scorer-serving", &versions[0]).await;
    assert_eq!(t.get("champion.ml/stage").map(String::as_str), Some("production"), "{t:?}");
    assert_eq!(t.get("champion.ml/deployment"), Some(&format!("{}/credit-scorer", env.ns)), "{t:?}");
    assert!(t.contains_key("champion.ml/promoted-at"), "{t:?}");

    let out = env.plugin(&["status", "credit-scorer"]);
    let text = output_text(&out);
    assert!(text.contains("Registry:   alias champion of credit-scorer → version 1"), "{text}");
}

/// Moving the alias starts a rollout through the ModelDeployment's own steps; at the end the serving alias
/// and the tags say which version serves and which one it replaced. Prints the time from the move to the
/// first step.
#[tokio::test(flavor = "multi_thread")]
async fn moving_the_alias_rolls_out_through_the_steps_and_the_registry_records_it() {
    let mut env = TestEnv::new("follow-move").await;
    let uri = env.mlflow_tracking_uri().to_string();
    let model = format!("{}-model", env.ns);
    let versions = register(&uri, &model, 2).await;
    env.start_operator_with(&format!("mlflow: {{trackingUri: {uri:?}, pollInterval: {POLL}}}")).await;
    env.apply_yaml(&follow_yaml("scorer", &model, "[{setWeight: 50}, {pause: {}}]")).unwrap();
    wait_serving(&env, "scorer", &versions[0]).await;
    wait_recorded(&uri, &model, "scorer-serving", &versions[0]).await;

    let moved = Instant::now();
    mlflow(&uri).set_registered_model_alias(&model, "champion", &versions[1]).await.unwrap();
    let v2 = versions[1].clone();
    let md = env
        .wait_for::<ModelDeployment, _>("scorer", "a rollout of version 2 at its first step", T, move |md| {
            let s = status(md);
            s.candidate.as_ref().and_then(|c| c.registry.as_ref()).map(|r| r.version.as_str()) == Some(v2.as_str())
                && s.current_step.is_some()
        })
        .await;
    eprintln!(
        "e2e figure: alias move to first rollout step in {:.1} s (pollInterval {POLL})",
        moved.elapsed().as_secs_f64()
    );
    assert_eq!(stable_registry_version(&md).as_deref(), Some(versions[0].as_str()), "stable keeps serving");
    let events = env.events();
    assert!(
        events.iter().any(|e| e.0 == "AliasMoved" && e.2.contains("moved from version 1 to version 2")),
        "{events:?}"
    );

    // The steps hold it: at the indefinite pause, the registry still says version 1 serves.
    env.wait_for::<ModelDeployment, _>("scorer", "the pause", T, |md| phase(md) == Some(DeploymentPhase::Paused)).await;
    let serving = mlflow(&uri).get_model_version_by_alias(&model, "scorer-serving").await.unwrap();
    assert_eq!(serving.version, versions[0], "the serving alias moves only at the end");
    plugin(&env, &["promote", "scorer"]);
    wait_serving(&env, "scorer", &versions[1]).await;

    let t2 = wait_recorded(&uri, &model, "scorer-serving", &versions[1]).await;
    assert_eq!(t2.get("champion.ml/stage").map(String::as_str), Some("production"), "{t2:?}");
    assert_eq!(t2.get("champion.ml/previous-version"), Some(&versions[0]), "{t2:?}");
    let t1 = tags(&uri, &model, &versions[0]).await;
    assert_eq!(t1.get("champion.ml/stage").map(String::as_str), Some("archived"), "{t1:?}");
    assert!(t1.contains_key("champion.ml/replaced-at"), "{t1:?}");
    assert_eq!(
        mlflow(&uri).get_model_version_by_alias(&model, "champion").await.unwrap().version,
        versions[1],
        "the user's alias is the user's"
    );

    let out = env.plugin(&["history", "scorer", "--tracking-uri", &uri]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let row = |v: &str| lines.iter().find(|l| l.trim_start().starts_with(v)).copied().unwrap_or_default();
    assert!(row("1.2.0").contains("serving; registry stage production"), "{text}");
    assert!(row("1.1.0").contains("replaced; registry stage archived"), "{text}");
}

/// A failing metric rolls the new version back: the registry tags it with the reason, the serving alias
/// stays, the user's alias is not moved, and the rolled-back target is not retried on the next reads.
/// `promote-version` then moves the user's alias back for them.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_metric_rolls_back_and_the_registry_says_why() {
    let mut env = TestEnv::new("follow-fail").await;
    let uri = env.mlflow_tracking_uri().to_string();
    let model = format!("{}-model", env.ns);
    let versions = register(&uri, &model, 2).await;
    env.start_operator_with(&format!("mlflow: {{trackingUri: {uri:?}, pollInterval: {POLL}}}")).await;
    env.apply_yaml(&follow_yaml("scorer", &model, "[{setWeight: 50}, {pause: {duration: 1m}}]")).unwrap();
    wait_serving(&env, "scorer", &versions[0]).await;
    let ns = env.ns.clone();
    env.set_metric("champion_e2e_error_rate", &[("namespace", ns.as_str()), ("variant", "candidate")], 0.5).await;

    mlflow(&uri).set_registered_model_alias(&model, "champion", &versions[1]).await.unwrap();
    env.wait_for::<ModelDeployment, _>("scorer", "rolled back", T, |md| phase(md) == Some(DeploymentPhase::RolledBack))
        .await;
    let c = mlflow(&uri);
    let t2 = eventually("the rollback tags on version 2", T, || async {
        let t = c.get_model_version(&model, &versions[1]).await.ok()?.tags;
        t.contains_key("champion.ml/rolled-back").then_some(t)
    })
    .await;
    assert_eq!(t2.get("champion.ml/rolled-back").map(String::as_str), Some("AnalysisFailed"), "{t2:?}");
    assert!(t2.get("champion.ml/rolled-back-message").is_some_and(|m| m.contains("error-rate")), "{t2:?}");
    assert_eq!(t2.get("champion.ml/stage").map(String::as_str), Some("rolled-back"), "{t2:?}");
    assert_eq!(c.get_model_version_by_alias(&model, "scorer-serving").await.unwrap().version, versions[0]);
    assert_eq!(c.get_model_version_by_alias(&model, "champion").await.unwrap().version, versions[1], "not moved");

    // Read again (refresh): the alias still names the rolled-back version, which is not retried.
    plugin(&env, &["refresh", "scorer"]);
    env.wait_for::<ModelDeployment, _>("scorer", "the refresh consumed", T, |md| {
        status(md).last_request.as_deref().is_some_and(|r| r.starts_with("refresh/"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let md: ModelDeployment = env.api().get("scorer").await.unwrap();
    assert_eq!(phase(&md), Some(DeploymentPhase::RolledBack));
    assert_eq!(status(&md).weights.map(|w| w.candidate), Some(0));

    // promote-version: the operator moves the user's alias back; version 1 serves all along.
    plugin(&env, &["promote-version", "scorer", &versions[0]]);
    wait_serving(&env, "scorer", &versions[0]).await;
    assert_eq!(c.get_model_version_by_alias(&model, "champion").await.unwrap().version, versions[0]);
    let events = env.events();
    assert!(events.iter().any(|e| e.0 == "AliasMovedByRequest"), "{events:?}");

    // A version that does not exist: refused with a reason, the alias stays.
    plugin(&env, &["promote-version", "scorer", "99"]);
    eventually("promote-version 99 refused", T, || async {
        env.events().into_iter().find(|e| e.0 == "RequestIgnored" && e.2.contains("promote-version:99"))
    })
    .await;
    assert_eq!(c.get_model_version_by_alias(&model, "champion").await.unwrap().version, versions[0]);

    let out = env.plugin(&["history", "scorer", "--tracking-uri", &uri]);
    let text = output_text(&out);
    assert!(text.contains("rolled back (AnalysisFailed"), "{text}");
}

/// A registry stand-in on 127.0.0.1 that answers every request with `body` (HTTP 200, JSON); returns its URL.
async fn serve_stub(body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = sock.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
            });
        }
    });
    url
}

/// Runs `tests/cluster/mlflow.sh` for a server of the test's own.
fn mlflow_sh(cmd: &str, dir: &Path, port: Option<u16>) {
    let mut c = Command::new(repo_root().join("tests/cluster/mlflow.sh"));
    c.arg(cmd).arg(dir);
    if let Some(p) = port {
        c.env("MLFLOW_PORT", p.to_string()).env("MLFLOW_KEEP_DATA", "1");
    }
    let out = c.output().unwrap_or_else(|e| panic!("mlflow.sh {cmd}: {e}"));
    assert!(out.status.success(), "mlflow.sh {cmd}: {}", output_text(&out));
}

/// Stops the test's own MLflow when the test ends, however it ends.
struct OwnMlflow(std::path::PathBuf);

impl Drop for OwnMlflow {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("tests/cluster/mlflow.sh")).arg("stop").arg(&self.0).output();
    }
}

/// MLflow stopped in the middle of a rollout: the rollout neither aborts nor jumps, the condition says since
/// when, the promotion goes on, and once MLflow is back the serving alias and tags are written.
#[tokio::test(flavor = "multi_thread")]
async fn mlflow_stopped_mid_rollout_and_started_again_changes_nothing() {
    let mut env = TestEnv::new("follow-outage").await;
    let dir = env.work_dir().join("own-mlflow");
    let _own = OwnMlflow(dir.clone());
    mlflow_sh("start", &dir, None);
    let uri = crate::harness::read_env_file(&dir.join("mlflow.env")).unwrap()["MLFLOW_TRACKING_URI"].clone();
    let port: u16 = uri.rsplit(':').next().unwrap().parse().unwrap();
    let model = "outage-model";
    let versions = register(&uri, model, 2).await;
    env.start_operator_with(&format!("mlflow: {{trackingUri: {uri:?}, pollInterval: {POLL}, requestTimeout: 2s}}"))
        .await;
    env.apply_yaml(&follow_yaml("scorer", model, "[{setWeight: 50}, {pause: {}}]")).unwrap();
    wait_serving(&env, "scorer", &versions[0]).await;
    mlflow(&uri).set_registered_model_alias(model, "champion", &versions[1]).await.unwrap();
    env.wait_for::<ModelDeployment, _>("scorer", "the pause of version 2", T, |md| {
        phase(md) == Some(DeploymentPhase::Paused) && status(md).weights.map(|w| w.candidate) == Some(50)
    })
    .await;

    mlflow_sh("stop", &dir, None);
    let md = env
        .wait_for::<ModelDeployment, _>("scorer", "RegistrySynced=False RegistryUnreachable", T, |md| {
            registry_condition(md).is_some_and(|c| c.0 == "False" && c.1 == "RegistryUnreachable")
        })
        .await;
    let s = status(&md);
    assert!(s.registry.as_ref().unwrap().unavailable_since.is_some(), "{s:?}");
    assert!(registry_condition(&md).unwrap().2.contains("version 2 (the alias's last resolution) stays the target"));
    // Several reads fail meanwhile; the rollout stays where it was.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let md: ModelDeployment = env.api().get("scorer").await.unwrap();
    assert_eq!(phase(&md), Some(DeploymentPhase::Paused));
    assert_eq!(status(&md).weights.map(|w| w.candidate), Some(50));
    assert_eq!(status(&md).candidate.and_then(|c| c.registry).map(|r| r.version), Some(versions[1].clone()));

    // The rollout goes on without the registry; what the registry should know waits for it.
    plugin(&env, &["promote", "scorer"]);
    wait_serving(&env, "scorer", &versions[1]).await;

    mlflow_sh("start", &dir, Some(port));
    let t2 = wait_recorded(&uri, model, "scorer-serving", &versions[1]).await;
    assert_eq!(t2.get("champion.ml/stage").map(String::as_str), Some("production"), "{t2:?}");
    let md = env
        .wait_for::<ModelDeployment, _>("scorer", "RegistrySynced=True again", T, |md| {
            registry_condition(md).is_some_and(|c| c.0 == "True")
        })
        .await;
    assert_eq!(status(&md).registry.unwrap().unavailable_since, None);
    assert_eq!(phase(&md), Some(DeploymentPhase::Healthy));
    let events = env.events();
    assert!(events.iter().any(|e| e.0 == "RegistryUnreachable" && e.1 == "Warning"), "{events:?}");
}

/// What the registry cannot give becomes a condition and an Event, and nothing that serves is lost: an
/// alias that does not exist, a serving version deleted from the registry, a version without a storage
/// location, a body too large, a tracking server that answers something else, a token Secret that is
/// missing.
#[tokio::test(flavor = "multi_thread")]
async fn registry_bad_input_is_reported_and_loses_nothing() {
    let mut env = TestEnv::new("follow-bad").await;
    let uri = env.mlflow_tracking_uri().to_string();
    let model = format!("{}-model", env.ns);
    let versions = register(&uri, &model, 1).await;
    env.start_operator_with(&format!("mlflow: {{trackingUri: {uri:?}, pollInterval: {POLL}}}")).await;

    // An alias that does not exist: nothing deployed, Ready says why.
    env.apply_yaml(&follow_yaml("missing", &format!("{model}-nope"), "[{setWeight: 50}]")).unwrap();
    let md = env
        .wait_for::<ModelDeployment, _>("missing", "Ready=False AliasNotFound", T, |md| {
            status(md)
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "AliasNotFound")
        })
        .await;
    let ready = status(&md).conditions.into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert!(ready.message.contains("nothing is deployed") && ready.message.contains("not found"), "{}", ready.message);
    let deployments: Api<Deployment> = env.api();
    assert!(deployments.list(&Default::default()).await.unwrap().items.is_empty(), "nothing deployed");

    // Serving version 1.
    env.apply_yaml(&follow_yaml("scorer", &model, "[{setWeight: 50}]")).unwrap();
    wait_serving(&env, "scorer", &versions[0]).await;
    let c = mlflow(&uri);

    // The version that serves is deleted from the registry (MLflow drops its aliases too): it keeps
    // serving, with a Warning.
    c.set_registered_model_alias(&model, "champion", &versions[0]).await.unwrap();
    wait_recorded(&uri, &model, "scorer-serving", &versions[0]).await;
    let deleted = crate::harness::http_client()
        .delete(format!("{uri}/api/2.0/mlflow/model-versions/delete"))
        .json(&serde_json::json!({"name": model, "version": versions[0]}))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "delete version: {}", deleted.status());
    let md = env
        .wait_for::<ModelDeployment, _>("scorer", "the deleted serving version reported", T, |md| {
            status(md).registry.and_then(|r| r.serving_deleted).is_some()
        })
        .await;
    assert_eq!(phase(&md), Some(DeploymentPhase::Healthy), "it keeps serving");
    assert_eq!(stable_registry_version(&md).as_deref(), Some(versions[0].as_str()));
    let events = env.events();
    assert!(events.iter().any(|e| e.0 == "ServingVersionDeleted" && e.1 == "Warning"), "{events:?}");
    env.stop_operator().await;

    // A registry whose alias names a version without a storage location (MLflow 3.17.2 refuses to
    // register one, other registries do not), one that answers a body too large to read, and a tracking
    // server that is something else (the test exporter): each is a condition, and version 1 keeps serving.
    let no_source = format!(
        r#"{{"model_version": {{"name": "{model}", "version": "7", "status": "READY", "aliases": ["champion"]}}}}"#
    );
    let huge = format!(r#"{{"model_version": {{"name": "{model}", "description": "{}"}}}}"#, "x".repeat(5 << 20));
    let stubs = [(serve_stub(no_source).await, "VersionUnusable"), (serve_stub(huge).await, "RegistryBadResponse")];
    let exporter = env.exporter_url().to_string();
    for (url, reason) in stubs.into_iter().chain([(exporter, "RegistryBadResponse")]) {
        env.start_operator_with(&format!("mlflow: {{trackingUri: {url:?}, pollInterval: {POLL}}}")).await;
        let want = reason.to_string();
        let md = env
            .wait_for::<ModelDeployment, _>(
                "scorer",
                &format!("RegistrySynced=False {reason} from {url}"),
                T,
                move |md| registry_condition(md).is_some_and(|c| c.1 == want),
            )
            .await;
        assert_eq!(phase(&md), Some(DeploymentPhase::Healthy), "{url}");
        assert_eq!(stable_registry_version(&md).as_deref(), Some(versions[0].as_str()), "{url}");
        assert!(status(&md).candidate.is_none(), "no rollout starts: {url}");
        env.stop_operator().await;
    }

    // A token Secret that does not exist: RegistryAuthFailed naming the Secret.
    env.start_operator_with(&format!(
        "mlflow: {{trackingUri: {uri:?}, pollInterval: {POLL}, tokenSecretRef: {{name: champion-mlflow-token, key: token}}}}"
    ))
    .await;
    let md = env
        .wait_for::<ModelDeployment, _>("scorer", "RegistrySynced=False RegistryAuthFailed", T, |md| {
            registry_condition(md).is_some_and(|c| c.1 == "RegistryAuthFailed")
        })
        .await;
    let message = registry_condition(&md).unwrap().2;
    // "does not exist", not "forbidden": the operator's Role lets it read that Secret (and only it).
    assert!(
        message.contains("champion-system/champion-mlflow-token") && message.contains("does not exist"),
        "{message}"
    );
    assert_eq!(phase(&md), Some(DeploymentPhase::Healthy));
}

/// The quickstart's registry demo: `hack/demo-registry.sh` registers the demo model, the registry example
/// follows it, and `kubectl champion` promotes (promote-version) and rolls back; the registry says what
/// serves after each, and the user's alias is moved only by promote-version.
#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_demo_model_is_promoted_and_rolled_back_with_the_plugin() {
    let mut env = TestEnv::new("follow-demo").await;
    let uri = env.mlflow_tracking_uri().to_string();
    // The example's model under a name of this test's own (the shared MLflow also holds credit-scorer).
    let model = format!("{}-scorer", env.ns);
    let out = Command::new(repo_root().join("hack/demo-registry.sh")).arg(&uri).arg(&model).output().unwrap();
    assert!(out.status.success(), "demo-registry.sh: {}", output_text(&out));
    let numbers: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
    assert_eq!(numbers.len(), 2, "{numbers:?}");
    let again = Command::new(repo_root().join("hack/demo-registry.sh")).arg(&uri).arg(&model).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout).split_whitespace().collect::<Vec<_>>(), numbers, "idempotent");

    env.start_operator_with(&format!("mlflow: {{trackingUri: {uri:?}, pollInterval: 5s}}")).await;
    let example = std::fs::read_to_string(repo_root().join("examples/modeldeployment-registry-alias.yaml")).unwrap();
    assert!(example.contains("model: credit-scorer"), "the example follows credit-scorer");
    env.apply_yaml(&example.replace("model: credit-scorer", &format!("model: {model}"))).unwrap();
    let md = wait_serving(&env, "credit-scorer", &numbers[0]).await;
    assert_eq!(status(&md).stable.map(|s| s.version).as_deref(), Some("1.0.0"));

    plugin(&env, &["promote-version", "credit-scorer", &numbers[1]]);
    wait_serving(&env, "credit-scorer", &numbers[1]).await;
    wait_recorded(&uri, &model, "credit-scorer-serving", &numbers[1]).await;

    plugin(&env, &["rollback", "credit-scorer"]);
    let md = env
        .wait_for::<ModelDeployment, _>("credit-scorer", "rolled back to version 1", T, |md| {
            phase(md) == Some(DeploymentPhase::RolledBack)
        })
        .await;
    assert_eq!(stable_registry_version(&md).as_deref(), Some(numbers[0].as_str()));
    wait_recorded(&uri, &model, "credit-scorer-serving", &numbers[0]).await;
    let c = mlflow(&uri);
    let t2 = eventually("version 2 tagged rolled back", T, || async {
        let t = c.get_model_version(&model, &numbers[1]).await.ok()?.tags;
        (t.get("champion.ml/rolled-back").map(String::as_str) == Some("RolledBack")).then_some(t)
    })
    .await;
    assert_eq!(t2.get("champion.ml/stage").map(String::as_str), Some("rolled-back"), "{t2:?}");
    assert_eq!(c.get_model_version_by_alias(&model, "champion").await.unwrap().version, numbers[1], "the user's alias");

    let out = env.plugin(&["history", "credit-scorer", "--tracking-uri", &uri]);
    let text = output_text(&out);
    eprintln!("kubectl champion history credit-scorer:\n{text}");
    let first = text.lines().find(|l| l.trim_start().starts_with("1.0.0")).unwrap_or_default();
    assert!(first.contains("serving"), "{text}");
    let second = text.lines().find(|l| l.trim_start().starts_with("1.1.0")).unwrap_or_default();
    assert!(second.contains("rolled back (RolledBack)"), "{text}");
}
