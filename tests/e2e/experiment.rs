//! Experiments on the real cluster: the variants' Deployments and Services come and go with the
//! experiment, the ModelDeployment's HTTPRoute carries them (weighted and sticky in split mode, mirrored in
//! shadow mode) only while it runs, one experiment runs at a time per ModelDeployment, and a rollout of the
//! ModelDeployment stops a running experiment.

use champion::api::{Experiment, ExperimentPhase};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use serde_json::Value;

use crate::harness::{TestEnv, eventually};
use crate::md::{MdYaml, T, ship, wait_healthy};
use crate::rollout::route_api;

const GATEWAY: &str = "  traffic:\n    router: gatewayAPI\n    gatewayAPI: {parentRefs: [{name: public}]}";

fn experiment_yaml(name: &str, mode: &str, weight: i32, max_duration: &str) -> String {
    format!(
        r#"apiVersion: champion.ml/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  deploymentRef: {{name: scorer}}
  mode: {mode}
  variants:
  - name: challenger
    model: {{version: "2.0.0", uri: "s3://models/scorer/2.0.0"}}
    weight: {weight}
  assignment: {{header: x-user-id}}
  objective:
    name: conversion
    type: proportion
    successes: 'sum(orders_total{{champion_ml_revision="{{{{revision}}}}"}})'
    trials: 'sum(sessions_total{{champion_ml_revision="{{{{revision}}}}"}})'
  decision: {{confidence: 0.95, maxDuration: {max_duration}}}
"#
    )
}

fn phase(x: &Experiment) -> Option<ExperimentPhase> {
    x.status.as_ref().and_then(|s| s.phase)
}

fn ready_reason(x: &Experiment) -> Option<(String, String)> {
    let s = x.status.as_ref()?;
    s.conditions.iter().find(|c| c.type_ == "Ready").map(|c| (c.reason.clone(), c.message.clone()))
}

async fn wait_phase(env: &TestEnv, name: &str, want: ExperimentPhase) -> Experiment {
    env.wait_for::<Experiment, _>(name, &format!("{name} {want:?}"), T, move |x| phase(x) == Some(want)).await
}

/// The HTTPRoute's backends (name → weight), its mirror (name, percent) and its number of rules.
async fn route(env: &TestEnv) -> (Vec<(String, i64)>, Option<(String, i64)>, usize) {
    let api = route_api(env, "gateway.networking.k8s.io", "HTTPRoute", "httproutes");
    let r = serde_json::to_value(api.get("scorer").await.unwrap()).unwrap();
    let rules = r["spec"]["rules"].as_array().cloned().unwrap_or_default();
    let last = rules.last().cloned().unwrap_or(Value::Null);
    let backends = last["backendRefs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|b| (b["name"].as_str().unwrap_or_default().to_string(), b["weight"].as_i64().unwrap_or(-1)))
        .collect();
    let mirror = last["filters"].as_array().and_then(|f| {
        f.iter().find_map(|f| {
            let m = &f["requestMirror"];
            m.is_object().then(|| {
                (m["backendRef"]["name"].as_str().unwrap_or_default().to_string(), m["percent"].as_i64().unwrap_or(-1))
            })
        })
    });
    (backends, mirror, rules.len())
}

async fn variant_deployments(env: &TestEnv) -> Vec<String> {
    let api: Api<Deployment> = env.api();
    let list = api.list(&kube::api::ListParams::default().labels("champion.ml/experiment")).await.unwrap();
    list.items.iter().map(|d| d.metadata.name.clone().unwrap_or_default()).collect()
}

async fn healthy_scorer(env: &mut TestEnv) {
    env.start_operator().await;
    env.apply_yaml(&MdYaml { traffic: GATEWAY, ..MdYaml::new("scorer", "1.0.0") }.render()).unwrap();
    wait_healthy(env, "scorer", "1.0.0").await;
}

/// Split mode: while the experiment runs, the HTTPRoute sends the variant its weight (sticky by the
/// header); at maxDuration it ends Inconclusive, the route goes back to stable alone, and the variant's
/// objects are removed after the drain.
#[tokio::test(flavor = "multi_thread")]
async fn split_mode_routes_the_variants_weight_until_it_ends() {
    let mut env = TestEnv::new("x-split").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&experiment_yaml("ab", "split", 20, "15s")).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let variants = variant_deployments(&env).await;
    assert_eq!(variants.len(), 1, "{variants:?}");
    let variant = variants[0].clone();
    let (backends, mirror, rules) = eventually("the variant in the HTTPRoute", T, || async {
        let r = route(&env).await;
        r.0.iter().any(|(n, _)| *n == variant).then_some(r)
    })
    .await;
    assert_eq!(backends, [("scorer".to_string(), 80), (variant.clone(), 20)], "weighted split");
    assert_eq!(mirror, None);
    assert!(rules > 1, "sticky rules by x-user-id come before the weighted rule ({rules} rules)");
    let x: Experiment = env.api().get("ab").await.unwrap();
    let assignment = x.status.and_then(|s| s.assignment).unwrap_or_default();
    assert!(assignment.starts_with("sticky by header x-user-id"), "{assignment}");

    let x = wait_phase(&env, "ab", ExperimentPhase::Inconclusive).await;
    assert_eq!(ready_reason(&x).map(|r| r.0).as_deref(), Some("MaxDurationReached"));
    eventually("the HTTPRoute back to stable alone", T, || async {
        let r = route(&env).await;
        (r.0 == [("scorer".to_string(), 100)] && r.2 == 1).then_some(())
    })
    .await;
    eventually("the variant removed", T, || async { variant_deployments(&env).await.is_empty().then_some(()) }).await;
    let events = env.events();
    assert!(events.iter().any(|e| e.0 == "ExperimentStarted"), "{events:?}");
    assert!(events.iter().any(|e| e.0 == "MaxDurationReached"), "{events:?}");
}

/// Shadow mode: the variant gets copies of live requests (a mirror filter), never a weight, and the
/// mirroring is removed when the experiment ends.
#[tokio::test(flavor = "multi_thread")]
async fn shadow_mode_creates_and_removes_the_mirroring() {
    let mut env = TestEnv::new("x-shadow").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&experiment_yaml("shadow", "shadow", 30, "15s")).unwrap();
    wait_phase(&env, "shadow", ExperimentPhase::Running).await;
    let variant = variant_deployments(&env).await.pop().unwrap();
    let (backends, mirror, _) = eventually("the mirror in the HTTPRoute", T, || async {
        let r = route(&env).await;
        r.1.is_some().then_some(r)
    })
    .await;
    assert_eq!(mirror, Some((variant.clone(), 30)));
    assert_eq!(backends, [("scorer".to_string(), 100)], "no live traffic to a shadow");
    wait_phase(&env, "shadow", ExperimentPhase::Inconclusive).await;
    eventually("the mirror removed", T, || async { route(&env).await.1.is_none().then_some(()) }).await;
    eventually("the variant removed", T, || async { variant_deployments(&env).await.is_empty().then_some(()) }).await;
}

/// A second experiment on the same ModelDeployment waits with a condition naming the first, and starts
/// when the first ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_experiment_waits_until_the_first_ends() {
    let mut env = TestEnv::new("x-queue").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&experiment_yaml("first", "split", 20, "12s")).unwrap();
    wait_phase(&env, "first", ExperimentPhase::Running).await;
    env.apply_yaml(&experiment_yaml("second", "split", 10, "1h")).unwrap();
    let x = env
        .wait_for::<Experiment, _>("second", "second waiting", T, |x| {
            ready_reason(x).is_some_and(|r| r.0 == "WaitingForExperiment")
        })
        .await;
    let (_, message) = ready_reason(&x).unwrap();
    assert!(message.contains("experiment first goes first on ModelDeployment scorer"), "{message}");
    assert_eq!(phase(&x), Some(ExperimentPhase::Pending));
    wait_phase(&env, "first", ExperimentPhase::Inconclusive).await;
    wait_phase(&env, "second", ExperimentPhase::Running).await;
}

/// A rollout of the ModelDeployment stops the running experiment (Aborted, with a Warning) and the rollout
/// goes on without the variant.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_of_the_deployment_aborts_a_running_experiment() {
    let mut env = TestEnv::new("x-abort").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&experiment_yaml("ab", "split", 20, "1h")).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    ship(&env, "scorer", "1.1.0");
    let x = wait_phase(&env, "ab", ExperimentPhase::Aborted).await;
    let (reason, message) = ready_reason(&x).unwrap();
    assert_eq!(reason, "ExperimentAborted");
    assert!(message.contains("rollout of version 1.1.0"), "{message}");
    eventually("the variant removed", T, || async { variant_deployments(&env).await.is_empty().then_some(()) }).await;
    // The rollout goes on to its end.
    wait_healthy(&env, "scorer", "1.1.0").await;
    let events = env.events();
    assert!(events.iter().any(|e| e.0 == "ExperimentAborted" && e.1 == "Warning"), "{events:?}");
}

/// An experiment whose objective counters (and a guardrail) come from the test exporter, in the `scorer`
/// namespace's series: `champion_e2e_sessions` and `champion_e2e_orders` per arm, and a latency gauge.
fn counted_yaml(name: &str, max_duration: &str, guardrail_max: f64) -> String {
    counted_yaml_with(
        name,
        max_duration,
        guardrail_max,
        r#"{version: "2.0.0", uri: "s3://models/scorer/2.0.0"}"#,
        "none",
    )
}

/// [`counted_yaml`] with the variant's model and `onSuccess`.
fn counted_yaml_with(name: &str, max_duration: &str, guardrail_max: f64, model: &str, on_success: &str) -> String {
    format!(
        r#"apiVersion: champion.ml/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  deploymentRef: {{name: scorer}}
  mode: split
  variants:
  - name: challenger
    model: {model}
    weight: 20
  onSuccess: {on_success}
  objective:
    name: conversion
    type: proportion
    successes: 'champion_e2e_orders{{namespace="{{{{namespace}}}}",arm="{{{{variant}}}}"}}'
    trials: 'champion_e2e_sessions{{namespace="{{{{namespace}}}}",arm="{{{{variant}}}}"}}'
  guardrails:
  - name: p99-latency
    prometheus: {{query: 'max(champion_e2e_latency{{namespace="{{{{namespace}}}}",arm="{{{{variant}}}}"}})'}}
    thresholdRange: {{max: {guardrail_max}}}
    onNoData: inconclusive
  decision: {{confidence: 0.95, minSamplesPerVariant: 300, evaluationInterval: 2s, maxDuration: {max_duration}}}
"#
    )
}

/// Feeds the exporter counters that grow each second: `per_second` sessions split by `share` (the
/// challenger's fraction), converting at `rates` (control, challenger), until `stop` says so.
async fn feed(env: &TestEnv, per_second: f64, share: f64, rates: (f64, f64), seconds: usize) {
    let ns = env.ns.clone();
    let mut totals = [(0.0, 0.0), (0.0, 0.0)];
    for _ in 0..seconds {
        for (i, (arm, rate)) in [("control", rates.0), ("challenger", rates.1)].into_iter().enumerate() {
            let n = per_second * if i == 0 { 1.0 - share } else { share };
            totals[i].0 += n;
            totals[i].1 += (n * rate).round();
            let labels = [("namespace", ns.as_str()), ("arm", arm)];
            env.set_metric("champion_e2e_sessions", &labels, totals[i].0).await;
            env.set_metric("champion_e2e_orders", &labels, totals[i].1).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Feeds the counters (400 sessions a second, `share` to the challenger, converting at `rates`) for up to
/// 60 s, until Experiment `ab` is as `done` says; panics naming `what` if it never is.
async fn feed_until(
    env: &TestEnv,
    share: f64,
    rates: (f64, f64),
    what: &str,
    done: impl Fn(&Experiment) -> bool,
) -> Experiment {
    let feeding = feed(env, 400.0, share, rates, 60);
    let ended = env.wait_for::<Experiment, _>("ab", what, T, done);
    tokio::select! {
        x = ended => x,
        _ = feeding => panic!("fed 60 s and the experiment is not {what}"),
    }
}

/// A clear winner (a conversion of 20% against 10%) is decided by the sequential test while the numbers
/// grow: Concluded, the winner in status with its always-valid p-value, and the variant removed.
#[tokio::test(flavor = "multi_thread")]
async fn a_clear_winner_is_detected_from_growing_counters() {
    let mut env = TestEnv::new("x-winner").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&counted_yaml("ab", "10m", 1.0)).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let x = feed_until(&env, 0.2, (0.10, 0.20), "Concluded", |x| phase(x) == Some(ExperimentPhase::Concluded)).await;
    let s = x.status.clone().unwrap();
    assert_eq!(s.winner.as_deref(), Some("challenger"), "{s:?}");
    let challenger = s.variants.iter().find(|v| v.name == "challenger").unwrap();
    assert!(challenger.p_value.unwrap() <= 0.05, "{challenger:?}");
    assert!(challenger.samples >= 300 && challenger.rejected_at_look.is_some(), "{challenger:?}");
    let control = s.variants.iter().find(|v| v.name == "control").unwrap();
    assert!((control.estimate.unwrap() - 0.10).abs() < 0.03, "{control:?}");
    assert_eq!(ready_reason(&x).map(|r| r.0).as_deref(), Some("WinnerDecided"));
    eventually("the variant removed", T, || async { variant_deployments(&env).await.is_empty().then_some(()) }).await;
    let (_, metrics) = crate::harness::http_get(&env.metrics_url()).await;
    assert!(
        metrics.contains(r#"champion_experiment_outcomes_total{outcome="Concluded",reason="WinnerDecided"} 1"#),
        "{metrics}"
    );
}

/// Units split 50/50 against weights of 80/20: a sample ratio mismatch stops the experiment, with no winner.
#[tokio::test(flavor = "multi_thread")]
async fn a_sample_ratio_mismatch_stops_the_experiment() {
    let mut env = TestEnv::new("x-srm").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&counted_yaml("ab", "10m", 1.0)).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let x = feed_until(&env, 0.5, (0.10, 0.10), "Aborted", |x| phase(x) == Some(ExperimentPhase::Aborted)).await;
    let (reason, message) = ready_reason(&x).unwrap();
    assert_eq!(reason, "SampleRatioMismatch", "{message}");
    assert!(message.contains("against weights 80/20"), "{message}");
    assert_eq!(x.status.unwrap().winner, None);
}

/// A guardrail out of range stops the experiment early, whatever the objective says, and the variant goes.
#[tokio::test(flavor = "multi_thread")]
async fn a_guardrail_breach_stops_the_experiment_early() {
    let mut env = TestEnv::new("x-guard").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&counted_yaml("ab", "10m", 0.25)).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let ns = env.ns.clone();
    env.set_metric("champion_e2e_latency", &[("namespace", ns.as_str()), ("arm", "challenger")], 0.4).await;
    let x = env.wait_for::<Experiment, _>("ab", "Aborted", T, |x| phase(x) == Some(ExperimentPhase::Aborted)).await;
    let (reason, message) = ready_reason(&x).unwrap();
    assert_eq!(reason, "GuardrailBreached", "{message}");
    assert!(message.contains("p99-latency of variant challenger is 0.4"), "{message}");
    eventually("the variant removed", T, || async { variant_deployments(&env).await.is_empty().then_some(()) }).await;
}

/// The operator restarted mid-experiment keeps the baselines (counts from before the start never count)
/// and the sequential state (looks go on, the always-valid p-value never rises, the mixing variance stays).
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_operator_keeps_the_baselines_and_the_running_minimum() {
    let mut env = TestEnv::new("x-restart").await;
    healthy_scorer(&mut env).await;
    // Counts from before the experiment, at a conversion of 50%: they must never count.
    let ns = env.ns.clone();
    for arm in ["control", "challenger"] {
        let labels = [("namespace", ns.as_str()), ("arm", arm)];
        env.set_metric("champion_e2e_sessions", &labels, 100_000.0).await;
        env.set_metric("champion_e2e_orders", &labels, 50_000.0).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    env.apply_yaml(&counted_yaml("ab", "10m", 1.0)).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;

    let mut sessions = [0.0, 0.0];
    feed_null(&env, &mut sessions, 12).await;
    let looked = |min: i64| {
        move |x: &Experiment| {
            x.status.as_ref().and_then(|s| s.variants.iter().find(|v| v.name == "challenger")).and_then(|v| v.looks)
                >= Some(min)
        }
    };
    let before = env.wait_for::<Experiment, _>("ab", "some looks", T, looked(2)).await.status.unwrap();
    let b = before.variants.iter().find(|v| v.name == "challenger").cloned().unwrap();

    env.stop_operator().await;
    feed_null(&env, &mut sessions, 4).await;
    env.start_operator().await;
    let next = b.looks.unwrap() + 2;
    let after = env.wait_for::<Experiment, _>("ab", "looks after the restart", T, looked(next)).await.status.unwrap();
    let a = after.variants.iter().find(|v| v.name == "challenger").cloned().unwrap();
    let control = after.variants.iter().find(|v| v.name == "control").cloned().unwrap();
    assert_eq!(phase_of_status(&after), Some(ExperimentPhase::Running), "{after:?}");
    assert!((control.estimate.unwrap() - 0.10).abs() < 0.02, "baselines kept: {control:?}");
    assert_eq!(a.mixing_variance, b.mixing_variance, "the mixing variance stays frozen");
    assert!(a.p_value.unwrap() <= b.p_value.unwrap(), "running minimum: {:?} then {:?}", b.p_value, a.p_value);
    assert_eq!(after.started_at, before.started_at);
}

/// Grows the exporter's counters (`sessions` holds their values: control, challenger) at a conversion of
/// 10% in both arms, 80/20 units, on top of 100,000 sessions and 50,000 orders from before.
async fn feed_null(env: &TestEnv, sessions: &mut [f64; 2], seconds: usize) {
    let ns = env.ns.clone();
    for _ in 0..seconds {
        for (i, (arm, n)) in [("control", 320.0), ("challenger", 80.0)].into_iter().enumerate() {
            sessions[i] += n;
            let labels = [("namespace", ns.as_str()), ("arm", arm)];
            env.set_metric("champion_e2e_sessions", &labels, 100_000.0 + sessions[i]).await;
            env.set_metric("champion_e2e_orders", &labels, 50_000.0 + (sessions[i] * 0.1).round()).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn phase_of_status(s: &champion::api::ExperimentStatus) -> Option<ExperimentPhase> {
    s.phase
}

/// With `onSuccess: promote` and a ModelDeployment that pins its version, the operator changes nothing and
/// says which fields to change; `kubectl champion experiment promote` makes that change, and the
/// ModelDeployment rolls the winner out. `experiment status` shows the arms.
#[tokio::test(flavor = "multi_thread")]
async fn a_winner_of_a_pinned_deployment_is_promoted_with_the_plugin() {
    let mut env = TestEnv::new("x-promote").await;
    healthy_scorer(&mut env).await;
    let model = r#"{version: "2.0.0", uri: "s3://models/scorer/2.0.0"}"#;
    env.apply_yaml(&counted_yaml_with("ab", "10m", 1.0, model, "promote")).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let x = feed_until(&env, 0.2, (0.10, 0.20), "Concluded", |x| phase(x) == Some(ExperimentPhase::Concluded)).await;
    let promotion = x.status.clone().unwrap().promotion.unwrap_or_default();
    assert!(promotion.contains(r#"set spec.model.version to "2.0.0""#), "{promotion}");
    let events = env.events();
    assert!(events.iter().any(|e| e.0 == "PromotionNeeded"), "{events:?}");
    let md: champion::api::ModelDeployment = env.api().get("scorer").await.unwrap();
    assert_eq!(md.spec.model.version.as_deref(), Some("1.0.0"), "the operator never edits the spec");

    let out = env.plugin(&["experiment", "status", "ab"]);
    let text = crate::harness::output_text(&out);
    assert!(text.contains("Winner:     challenger") && text.contains("challenger "), "{text}");
    crate::md::plugin(&env, &["experiment", "promote", "ab"]);
    wait_healthy(&env, "scorer", "2.0.0").await;
}

/// `kubectl champion experiment stop`: Aborted by request, no winner, the variant removed.
#[tokio::test(flavor = "multi_thread")]
async fn an_experiment_is_stopped_by_request() {
    let mut env = TestEnv::new("x-stop").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&experiment_yaml("ab", "split", 20, "1h")).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    crate::md::plugin(&env, &["experiment", "stop", "ab"]);
    let x = wait_phase(&env, "ab", ExperimentPhase::Aborted).await;
    assert_eq!(ready_reason(&x).map(|r| r.0).as_deref(), Some("StoppedByRequest"));
    assert_eq!(x.status.unwrap().winner, None);
    eventually("the variant removed", T, || async { variant_deployments(&env).await.is_empty().then_some(()) }).await;
}

/// A winner against a ModelDeployment that follows a registry alias is promoted by moving the alias (the
/// real MLflow); the ModelDeployment then rolls it out through its own steps.
#[tokio::test(flavor = "multi_thread")]
async fn a_winner_is_promoted_through_the_registry() {
    use champion::registry::{MlflowClient, NewModelVersion, Registry};
    let mut env = TestEnv::new("x-registry").await;
    let uri = env.mlflow_tracking_uri().to_string();
    let model = format!("{}-model", env.ns);
    let mlflow = MlflowClient::new(&uri, std::time::Duration::from_secs(10));
    mlflow.create_registered_model(&model, None).await.unwrap();
    let mut versions = Vec::new();
    for i in 1..=2 {
        let new = NewModelVersion {
            name: model.clone(),
            source: format!("s3://champion-e2e/{model}/{i}"),
            ..Default::default()
        };
        versions.push(mlflow.create_model_version(&new).await.unwrap().version);
    }
    mlflow.set_registered_model_alias(&model, "champion", &versions[0]).await.unwrap();
    env.start_operator_with(&format!("mlflow: {{trackingUri: {uri:?}, pollInterval: 2s}}")).await;
    env.apply_yaml(&format!(
        r#"apiVersion: champion.ml/v1alpha1
kind: ModelDeployment
metadata: {{name: scorer}}
spec:
  model: {{registry: {{model: {model}, alias: champion}}}}
  replicas: 2
  template: {{spec: {{containers: [{{name: server, image: "example.invalid/server:1"}}]}}}}
{GATEWAY}
  strategy: {{scaleDownDelay: 1s, canary: {{steps: [{{setWeight: 50}}]}}}}
"#
    ))
    .unwrap();
    env.wait_for::<champion::api::ModelDeployment, _>("scorer", "serving version 1", T, |md| {
        md.status.as_ref().and_then(|s| s.stable.as_ref()).and_then(|s| s.registry.as_ref()).map(|r| r.version.as_str())
            == Some("1")
            && md.status.as_ref().and_then(|s| s.phase) == Some(champion::api::DeploymentPhase::Healthy)
    })
    .await;
    let variant = format!(r#"{{version: "{}", uri: "s3://champion-e2e/{model}/2"}}"#, versions[1]);
    env.apply_yaml(&counted_yaml_with("ab", "10m", 1.0, &variant, "promote")).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let x = feed_until(&env, 0.2, (0.10, 0.20), "Concluded", |x| phase(x) == Some(ExperimentPhase::Concluded)).await;
    let promotion = x.status.clone().unwrap().promotion.unwrap_or_default();
    assert!(promotion.contains(&format!("now points at version {}", versions[1])), "{promotion}");
    assert_eq!(mlflow.get_model_version_by_alias(&model, "champion").await.unwrap().version, versions[1]);
    env.wait_for::<champion::api::ModelDeployment, _>("scorer", "serving version 2", T, |md| {
        md.status.as_ref().and_then(|s| s.stable.as_ref()).and_then(|s| s.registry.as_ref()).map(|r| r.version.as_str())
            == Some("2")
            && md.status.as_ref().and_then(|s| s.phase) == Some(champion::api::DeploymentPhase::Healthy)
    })
    .await;
}

/// A null effect (both arms convert at 10%) with plenty of samples decides nothing and ends Inconclusive at
/// maxDuration, with the numbers in status.
#[tokio::test(flavor = "multi_thread")]
async fn a_null_effect_ends_inconclusive_at_max_duration() {
    let mut env = TestEnv::new("x-null").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&counted_yaml("ab", "25s", 1.0)).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let x = feed_until(&env, 0.2, (0.10, 0.10), "Inconclusive", |x| {
        matches!(phase(x), Some(ExperimentPhase::Inconclusive | ExperimentPhase::Concluded))
    })
    .await;
    assert_eq!(phase(&x), Some(ExperimentPhase::Inconclusive), "{:?}", x.status);
    let s = x.status.clone().unwrap();
    assert_eq!(s.winner, None);
    let challenger = s.variants.iter().find(|v| v.name == "challenger").unwrap();
    assert!(challenger.samples >= 300 && challenger.rejected_at_look.is_none(), "{challenger:?}");
    assert_eq!(ready_reason(&x).map(|r| r.0).as_deref(), Some("MaxDurationReached"));
}

/// The group-sequential design (O'Brien–Fleming over `expectedSampleSize`): a clear winner crosses a
/// boundary at a look, and the look history is in status.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_sequential_design_finds_a_clear_winner_at_a_look() {
    let mut env = TestEnv::new("x-gst").await;
    healthy_scorer(&mut env).await;
    let yaml = counted_yaml("ab", "10m", 1.0).replace(
        "decision: {confidence: 0.95,",
        "decision: {method: groupSequential, expectedSampleSize: 6000, confidence: 0.95,",
    );
    assert!(yaml.contains("groupSequential"));
    env.apply_yaml(&yaml).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let x = feed_until(&env, 0.2, (0.10, 0.20), "Concluded", |x| phase(x) == Some(ExperimentPhase::Concluded)).await;
    let s = x.status.unwrap();
    assert_eq!(s.winner.as_deref(), Some("challenger"));
    let c = s.variants.iter().find(|v| v.name == "challenger").unwrap();
    let looks = &c.group_sequential_looks;
    assert!(!looks.is_empty() && looks.iter().all(|l| l.z_bound.is_some()), "{looks:?}");
    let crossed = looks[c.rejected_at_look.unwrap() as usize - 1].clone();
    assert!(crossed.z.abs() >= crossed.z_bound.unwrap(), "{crossed:?}");
}

/// [`counted_yaml`] with a non-inferiority guardrail on latency (5 % margin) from the exporter's totals.
fn non_inferiority_yaml() -> String {
    counted_yaml("ab", "10m", 1.0).replace(
        "  decision:",
        r#"  nonInferiority:
  - name: latency
    margin: 0.05
    sum: 'champion_e2e_latency_sum{namespace="{{namespace}}",arm="{{variant}}"}'
    count: 'champion_e2e_latency_count{namespace="{{namespace}}",arm="{{variant}}"}'
    sumOfSquares: 'champion_e2e_latency_sumsq{namespace="{{namespace}}",arm="{{variant}}"}'
  decision:"#,
    )
}

/// Like [`feed`], and each session's latency too: mean `latency` (control, challenger) seconds, sd 0.02.
async fn feed_with_latency(env: &TestEnv, rates: (f64, f64), latency: (f64, f64), seconds: usize) {
    let ns = env.ns.clone();
    let mut totals = [[0.0; 5]; 2];
    for _ in 0..seconds {
        for (i, (arm, rate, mean)) in
            [("control", rates.0, latency.0), ("challenger", rates.1, latency.1)].into_iter().enumerate()
        {
            let n = 400.0 * if i == 0 { 0.8 } else { 0.2 };
            let t = &mut totals[i];
            t[0] += n;
            t[1] += (n * rate).round();
            t[2] += n * mean;
            t[3] += n;
            t[4] += n * (0.02 * 0.02 + mean * mean);
            let labels = [("namespace", ns.as_str()), ("arm", arm)];
            for (metric, v) in [
                ("champion_e2e_sessions", t[0]),
                ("champion_e2e_orders", t[1]),
                ("champion_e2e_latency_sum", t[2]),
                ("champion_e2e_latency_count", t[3]),
                ("champion_e2e_latency_sumsq", t[4]),
            ] {
                env.set_metric(metric, &labels, v).await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// A challenger that converts better but is 20 % slower is stopped by the non-inferiority guardrail (its
/// always-valid confidence sequence lies beyond the 5 % margin), with no winner.
#[tokio::test(flavor = "multi_thread")]
async fn a_variant_worse_than_the_non_inferiority_margin_is_stopped() {
    let mut env = TestEnv::new("x-ni-harm").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&non_inferiority_yaml()).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let feeding = feed_with_latency(&env, (0.10, 0.20), (0.100, 0.120), 60);
    let ended = env.wait_for::<Experiment, _>("ab", "Aborted", T, |x| phase(x) == Some(ExperimentPhase::Aborted));
    let x = tokio::select! { x = ended => x, _ = feeding => panic!("fed 60 s and the experiment is not Aborted") };
    let (reason, message) = ready_reason(&x).unwrap();
    assert_eq!(reason, "GuardrailBreached", "{message}");
    assert!(
        message.contains("variant challenger is worse than the control on latency by more than the 5.0% margin"),
        "{message}"
    );
    let s = x.status.unwrap();
    assert_eq!(s.winner, None);
    let ni = &s.variants.iter().find(|v| v.name == "challenger").unwrap().non_inferiority;
    assert!(ni.len() == 1 && ni[0].harmful && (ni[0].lift.unwrap() - 0.2).abs() < 0.02, "{ni:?}");
}

/// The same better-converting challenger with the same latency is shown within the margin and wins.
#[tokio::test(flavor = "multi_thread")]
async fn a_variant_shown_within_the_non_inferiority_margin_wins() {
    let mut env = TestEnv::new("x-ni-ok").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&non_inferiority_yaml()).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let feeding = feed_with_latency(&env, (0.10, 0.20), (0.100, 0.100), 60);
    let ended = env.wait_for::<Experiment, _>("ab", "Concluded", T, |x| phase(x) == Some(ExperimentPhase::Concluded));
    let x = tokio::select! { x = ended => x, _ = feeding => panic!("fed 60 s and the experiment is not Concluded") };
    let s = x.status.unwrap();
    assert_eq!(s.winner.as_deref(), Some("challenger"), "{:?}", s.message);
    let ni = &s.variants.iter().find(|v| v.name == "challenger").unwrap().non_inferiority;
    assert!(ni.len() == 1 && ni[0].non_inferior && !ni[0].harmful, "{ni:?}");
}

/// An objective query that selects nothing (a misspelt metric) decides nothing: the experiment keeps
/// running, its message and a Warning Event say which query of which arm has no series.
#[tokio::test(flavor = "multi_thread")]
async fn an_objective_query_that_selects_nothing_is_reported_and_decides_nothing() {
    let mut env = TestEnv::new("x-nodata").await;
    healthy_scorer(&mut env).await;
    env.apply_yaml(&counted_yaml("ab", "10m", 1.0).replace("champion_e2e_orders", "champion_e2e_ordres")).unwrap();
    wait_phase(&env, "ab", ExperimentPhase::Running).await;
    let feeding = feed(&env, 400.0, 0.2, (0.10, 0.20), 20);
    let reported = eventually("the ObjectiveNoData Event", T, || async {
        env.events().into_iter().find(|(reason, kind, _, _)| reason == "ObjectiveNoData" && kind == "Warning")
    });
    let (_, _, note, _) =
        tokio::select! { e = reported => e, _ = feeding => panic!("fed 20 s and no ObjectiveNoData Event") };
    assert!(note.contains("the objective's successes query selects no series for arm control"), "{note}");
    let x: Experiment = env.api().get("ab").await.unwrap();
    let s = x.status.unwrap();
    assert_eq!(s.phase, Some(ExperimentPhase::Running));
    assert_eq!(s.winner, None);
    assert!(s.message.unwrap_or_default().contains("selects no series"));
}
