//! The rollout's safety net on the real control plane, one promise each: the progress deadline counts
//! only waits that could end without a person; a metric outage holds; traffic leaves pods before they
//! go and never reaches a candidate without ready pods; the replicas router reports the split of its
//! pods; an object the API server refuses becomes a condition and an Event; requests are acted on
//! while Prometheus hangs; and a verb that does nothing says why.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use champion::api::{DeploymentPhase, ModelDeployment};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};

use crate::harness::{TestEnv, eventually, http_client};
use crate::md::{MdYaml, T, degraded, phase, plugin, ship, stable_version, status, wait_healthy};

/// The Gateway API router, attached to a Gateway that need not exist (the route is only checked).
const GATEWAY: &str = "  traffic:\n    router: gatewayAPI\n    gatewayAPI: {parentRefs: [{name: public}]}";
/// Pods of a template with this never get scheduled (no node has the label), so they are never Ready.
const NOWHERE: &str = "nodeSelector: {champion.ml/e2e: nowhere}";

fn weights(md: &ModelDeployment) -> (i32, i32) {
    status(md).weights.map(|w| (w.stable, w.candidate)).unwrap_or_default()
}

fn never_rolled_back(md: &ModelDeployment) {
    assert_ne!(phase(md), Some(DeploymentPhase::RolledBack), "rolled back: {:#?}", md.status);
}

fn seconds_since(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> f64 {
    let Some(t) = t else { return 0.0 };
    let now = k8s_openapi::jiff::Timestamp::now();
    now.duration_since(t.0).as_secs_f64()
}

/// Removes one series from the test exporter.
async fn delete_metric(env: &TestEnv, name: &str, labels: &[(&str, &str)]) {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let url = format!("{}/delete", env.exporter_url());
    let body = serde_json::json!({"name": name, "labels": labels});
    let r = http_client().post(&url).json(&body).send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert!(r.status().is_success(), "POST {url} {body}: {}", r.status());
}

fn http_routes(env: &TestEnv) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    );
    Api::namespaced_with(env.client(), &env.ns, &ar)
}

/// The weights of the HTTPRoute's weighted rule, by backend name.
async fn route_weights(env: &TestEnv, name: &str) -> BTreeMap<String, i64> {
    let Ok(route) = http_routes(env).get(name).await else { return BTreeMap::new() };
    let rules = route.data["spec"]["rules"].as_array().cloned().unwrap_or_default();
    let last = rules.last().cloned().unwrap_or_default();
    last["backendRefs"]
        .as_array()
        .map(|b| {
            b.iter()
                .map(|r| (r["name"].as_str().unwrap_or_default().to_string(), r["weight"].as_i64().unwrap_or(-1)))
                .collect()
        })
        .unwrap_or_default()
}

/// The replicas a revision's Deployment asks for (None when it does not exist).
async fn replicas_of(env: &TestEnv, name: &str, hash: Option<String>) -> Option<i32> {
    let api: Api<Deployment> = env.api();
    api.get_opt(&format!("{name}-{}", hash?)).await.ok().flatten().and_then(|d| d.spec).and_then(|s| s.replicas)
}

async fn wait_paused_at(env: &TestEnv, name: &str, step: i32) -> ModelDeployment {
    env.wait_for::<ModelDeployment, _>(name, &format!("paused at step {}", step + 1), T, move |md| {
        phase(md) == Some(DeploymentPhase::Paused) && status(md).current_step == Some(step)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metric_outage_during_a_long_step_holds_past_the_deadline_and_then_goes_on() {
    let mut env = TestEnv::new("outage").await;
    let ns = env.ns.clone();
    let query = r#"champion_e2e_outage{namespace="{{namespace}}"}"#;
    env.set_metric("champion_e2e_outage", &[("namespace", &ns), ("shard", "a")], 0.001).await;
    env.start_operator().await;
    let steps = "[{setWeight: 50}, {pause: {duration: 40s}}]";
    let name = "holder";
    env.apply_yaml(&MdYaml { steps, query, deadline: "6s", ..MdYaml::new(name, "1.0.0") }.render()).expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    ship(&env, name, "1.1.0");
    wait_paused_at(&env, name, 1).await;
    // A second series makes the query ambiguous: the metric cannot be measured.
    env.set_metric("champion_e2e_outage", &[("namespace", &ns), ("shard", "b")], 0.001).await;
    let md = env
        .wait_for::<ModelDeployment, _>(name, "holding on MetricUnavailable", T, |md| {
            never_rolled_back(md);
            degraded(md).is_some_and(|(s, r, _)| s == "True" && r == "MetricUnavailable")
        })
        .await;
    let since = status(&md).analysis.and_then(|a| a.unavailable_since).expect("status says since when");
    // Keep measuring (every 2 s) until the outage has lasted well past the 6 s progress deadline.
    env.wait_for::<ModelDeployment, _>(name, "an outage twice as long as the deadline", T, |md| {
        never_rolled_back(md);
        let last_run = status(md).analysis.and_then(|a| a.last_run);
        last_run.is_some_and(|t| t.0.duration_since(since.0).as_secs_f64() > 12.0)
            && degraded(md).is_some_and(|(_, r, _)| r == "MetricUnavailable")
    })
    .await;
    delete_metric(&env, "champion_e2e_outage", &[("namespace", &ns), ("shard", "b")]).await;
    let md = env
        .wait_for::<ModelDeployment, _>(name, "measurable again, still at the pause", T, |md| {
            never_rolled_back(md);
            degraded(md).is_some_and(|(s, _, _)| s == "False")
        })
        .await;
    assert_eq!(status(&md).analysis.and_then(|a| a.unavailable_since), None);
    plugin(&env, &["promote", name]);
    wait_healthy(&env, name, "1.1.0").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_full_and_resume_after_a_long_wait_restart_the_deadline() {
    let mut env = TestEnv::new("deadline").await;
    env.start_operator().await;
    // promote --full after an indefinite pause longer than the deadline: the candidate still needs its
    // second pod, which takes a moment; it must not be rolled back for the time spent paused.
    let name = "full";
    let steps = "[{setWeight: 50}, {pause: {}}]";
    env.apply_yaml(&MdYaml { steps, query: "vector(0)", deadline: "5s", ..MdYaml::new(name, "1.0.0") }.render())
        .expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    ship(&env, name, "1.1.0");
    env.wait_for::<ModelDeployment, _>(name, "paused longer than the deadline", T, |md| {
        phase(md) == Some(DeploymentPhase::Paused) && seconds_since(status(md).step_started_at.as_ref()) > 7.0
    })
    .await;
    plugin(&env, &["promote", name, "--full"]);
    env.wait_for::<ModelDeployment, _>(name, "promoted in full", T, |md| {
        never_rolled_back(md);
        phase(md) == Some(DeploymentPhase::Healthy) && stable_version(md).as_deref() == Some("1.1.0")
    })
    .await;

    // resume after a user's pause longer than the deadline, while the candidate's pods can never be
    // ready: not rolled back at once, but a deadline later, counted from the resume.
    let name = "resumed";
    let steps = "[{setWeight: 50}]";
    let yaml = |version, extra| {
        MdYaml { steps, query: "vector(0)", deadline: "8s", pod_spec_extra: extra, ..MdYaml::new(name, version) }
            .render()
    };
    env.apply_yaml(&yaml("1.0.0", "")).expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    env.apply_yaml(&yaml("1.1.0", NOWHERE)).expect("ship an unschedulable version");
    plugin(&env, &["pause", name]);
    env.wait_for::<ModelDeployment, _>(name, "paused by request for longer than the deadline", T, |md| {
        never_rolled_back(md);
        status(md).manual_pause == Some(true) && seconds_since(status(md).step_started_at.as_ref()) > 10.0
    })
    .await;
    let resumed = Instant::now();
    plugin(&env, &["resume", name]);
    let md = env
        .wait_for::<ModelDeployment, _>(name, "waiting again after resume", T, |md| {
            never_rolled_back(md);
            status(md).manual_pause.is_none() && status(md).waiting_since.is_some()
        })
        .await;
    assert!(seconds_since(status(&md).waiting_since.as_ref()) < 8.0, "the clock restarted at resume: {:?}", md.status);
    let md = env
        .wait_for::<ModelDeployment, _>(name, "rolled back at the deadline after resume", T, |md| {
            phase(md) == Some(DeploymentPhase::RolledBack)
        })
        .await;
    // Status times have second precision, so the deadline may end up to a second early.
    assert!(resumed.elapsed() >= Duration::from_secs(7), "not before a whole deadline after the resume");
    assert_eq!(degraded(&md).map(|d| d.1).as_deref(), Some("ProgressDeadlineExceeded"));
}

#[tokio::test(flavor = "multi_thread")]
async fn traffic_leaves_pods_before_they_go_and_never_reaches_pods_that_are_not_ready() {
    let mut env = TestEnv::new("order").await;
    env.start_operator().await;
    let name = "router";
    let yaml = |version, extra| {
        MdYaml {
            steps: "[{setWeight: 50}, {pause: {}}]",
            query: "vector(0)",
            traffic: GATEWAY,
            scale_down_delay: "8s",
            pod_spec_extra: extra,
            ..MdYaml::new(name, version)
        }
        .render()
    };
    env.apply_yaml(&yaml("1.0.0", "")).expect("apply");
    wait_healthy(&env, name, "1.0.0").await;

    // A candidate whose pods never get ready gets no weight, though its step asks for 50.
    env.apply_yaml(&yaml("1.1.0", NOWHERE)).expect("ship an unschedulable version");
    let md = env
        .wait_for::<ModelDeployment, _>(name, "waiting for the candidate's pods", T, |md| {
            status(md).waiting_since.is_some() && status(md).candidate.is_some()
        })
        .await;
    assert_eq!(weights(&md), (100, 0));
    let w = route_weights(&env, name).await;
    assert_eq!(w.get("router-candidate"), Some(&0), "the route gives no weight to unready pods: {w:?}");
    assert_eq!(w.get("router"), Some(&100), "{w:?}");

    // A candidate that serves: at the pause, abort. The route takes its weight away at once; its pods
    // stay for the scale-down delay.
    env.apply_yaml(&yaml("1.2.0", "")).expect("ship a good version");
    let md = wait_paused_at(&env, name, 1).await;
    let candidate = status(&md).candidate.and_then(|c| c.hash);
    assert_eq!(route_weights(&env, name).await.get("router-candidate"), Some(&50));
    plugin(&env, &["abort", name]);
    let md = env
        .wait_for::<ModelDeployment, _>(name, "rolled back", T, |md| phase(md) == Some(DeploymentPhase::RolledBack))
        .await;
    let aborted = Instant::now();
    let drains: Vec<Option<String>> = status(&md).scale_downs.into_iter().map(|d| Some(d.hash)).collect();
    assert!(drains.contains(&candidate), "the aborted candidate drains: {drains:?}");
    eventually("the route back on stable", T, || async {
        (route_weights(&env, name).await.get("router-candidate") == Some(&0)).then_some(())
    })
    .await;
    let kept = replicas_of(&env, name, candidate.clone()).await;
    assert!(
        kept.is_some_and(|n| n >= 1) || aborted.elapsed() >= Duration::from_secs(8),
        "the candidate keeps its pods while traffic drains: {kept:?}"
    );
    eventually("the candidate scaled down after the delay", T, || async {
        (replicas_of(&env, name, candidate.clone()).await == Some(0)).then_some(())
    })
    .await;
    // A refused rollback gives the rolled-back candidate (no pods now) no share either.
    plugin(&env, &["rollback", name, "--to", "9.9.9"]);
    eventually("RollbackRefused", T, || async {
        env.events().iter().any(|(r, _, note, _)| r == "RollbackRefused" && note.contains("9.9.9")).then_some(())
    })
    .await;
    let md = env
        .wait_for::<ModelDeployment, _>(name, "still rolled back", T, |md| {
            phase(md) == Some(DeploymentPhase::RolledBack)
        })
        .await;
    assert_eq!(weights(&md), (100, 0));
    assert_eq!(route_weights(&env, name).await.get("router-candidate"), Some(&0));

    // Promotion: the stable Service selects the new revision first, the old stable's pods go later.
    plugin(&env, &["retry", name]);
    wait_paused_at(&env, name, 1).await;
    let old = status(&md).stable.and_then(|s| s.hash);
    plugin(&env, &["promote", name]);
    let md = wait_healthy(&env, name, "1.2.0").await;
    let promoted = Instant::now();
    let services: Api<Service> = env.api();
    let selector = services.get(name).await.expect("stable Service").spec.and_then(|s| s.selector).unwrap_or_default();
    assert_eq!(selector.get("champion.ml/revision"), status(&md).stable.and_then(|s| s.hash).as_ref());
    let kept = replicas_of(&env, name, old.clone()).await;
    assert!(
        kept.is_some_and(|n| n == 2) || promoted.elapsed() >= Duration::from_secs(8),
        "the old stable keeps its pods while traffic drains: {kept:?}"
    );
    eventually("the old stable scaled down after the delay", T, || async {
        (replicas_of(&env, name, old.clone()).await == Some(0)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_replicas_router_reports_the_split_of_its_pods() {
    let mut env = TestEnv::new("ratio").await;
    env.start_operator().await;
    let name = "ratio";
    let steps = "[{pause: {}}, {setWeight: 1}, {pause: {}}]";
    env.apply_yaml(&MdYaml { steps, query: "vector(0)", replicas: 3, ..MdYaml::new(name, "1.0.0") }.render())
        .expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    ship(&env, name, "1.1.0");
    let md = wait_paused_at(&env, name, 0).await;
    let candidate = status(&md).candidate.and_then(|c| c.hash);
    assert_eq!(weights(&md), (100, 0));
    assert_eq!(replicas_of(&env, name, candidate.clone()).await, Some(0), "no candidate pod at weight 0");
    plugin(&env, &["promote", name]);
    let md = wait_paused_at(&env, name, 2).await;
    assert_eq!(weights(&md), (67, 33), "1 of 3 pods serve the candidate, whatever the step asked");
    let c = status(&md).conditions.into_iter().find(|c| c.type_ == "WeightExact").expect("WeightExact condition");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "ReplicasTooFew"), "{}", c.message);
    assert!(c.message.contains("setWeight 1") && c.message.contains("33%"), "{}", c.message);
    let out = env.kubectl(&["get", "modeldeployment", name]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let row: Vec<&str> = text.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(row.get(3), Some(&"33"), "the WEIGHT column says the real split:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_the_api_server_refuses_becomes_a_condition_and_an_event() {
    let mut env = TestEnv::new("refused").await;
    env.start_operator().await;
    let name = "quant";
    let yaml = |version, extra| {
        MdYaml { steps: "[{setWeight: 50}]", query: "vector(0)", pod_spec_extra: extra, ..MdYaml::new(name, version) }
            .render()
    };
    env.apply_yaml(&yaml("1.0.0", "")).expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    // The operator can read this template, but the API server refuses the Deployment built from it.
    env.apply_yaml(&yaml("1.1.0", "hostname: Not_A_Label")).expect("the CRD accepts it");
    let md = env
        .wait_for::<ModelDeployment, _>(name, "Degraded ApplyFailed", T, |md| {
            degraded(md).is_some_and(|(s, r, _)| s == "True" && r == "ApplyFailed")
        })
        .await;
    let (_, _, message) = degraded(&md).unwrap();
    assert!(message.contains("Deployment quant-") && message.contains("hostname"), "{message}");
    assert_eq!(stable_version(&md).as_deref(), Some("1.0.0"), "the running version keeps serving");
    let events = env.events();
    assert!(
        events.iter().any(|(r, t, note, _)| r == "ApplyFailed" && t == "Warning" && note.contains("Deployment quant-")),
        "{events:?}"
    );
    // Fixed: the rollout goes on.
    env.apply_yaml(&yaml("1.1.0", "")).expect("fix");
    wait_healthy(&env, name, "1.1.0").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_is_acted_on_while_prometheus_hangs() {
    // A Prometheus that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hole = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let mut env = TestEnv::new("hang").await;
    env.start_operator_with_prometheus(&url, "queryTimeout: 15s\n").await;
    let name = "hung";
    let metric =
        |m: &str| format!("        - {{name: {m}, prometheus: {{query: 'vector(0)'}}, thresholdRange: {{max: 1}}}}\n");
    let metrics: String = ["a", "b", "c", "d"].iter().map(|m| metric(m)).collect();
    let yaml = |version: &str| {
        format!(
            r#"apiVersion: champion.ml/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}}}
spec:
  model: {{version: "{version}", uri: "s3://m/{version}"}}
  replicas: 2
  template: {{spec: {{containers: [{{name: server, image: "example.invalid/server:1"}}]}}}}
  strategy:
    scaleDownDelay: 1s
    canary:
      steps: [{{setWeight: 50}}, {{pause: {{}}}}]
      analysis:
        interval: 2s
        metrics:
{metrics}"#
        )
    };
    env.apply_yaml(&yaml("1.0.0")).expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    env.apply_yaml(&yaml("1.1.0")).expect("ship");
    // Every background run now hangs until the budget ends.
    env.wait_for::<ModelDeployment, _>(name, "metrics unavailable", T, |md| {
        degraded(md).is_some_and(|(s, r, _)| s == "True" && r == "MetricUnavailable")
    })
    .await;
    let asked = Instant::now();
    plugin(&env, &["abort", name]);
    // Four metrics one after another would hold the abort for a minute; one budget at most 15 s.
    env.wait_for::<ModelDeployment, _>(name, "aborted within one measurement budget", Duration::from_secs(40), |md| {
        phase(md) == Some(DeploymentPhase::RolledBack)
    })
    .await;
    eprintln!("MEASURED: abort with a hanging Prometheus acted on after {:.1} s", asked.elapsed().as_secs_f64());
    hole.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verb_that_does_nothing_says_why() {
    let mut env = TestEnv::new("ignored").await;
    env.start_operator().await;
    let name = "idle";
    env.apply_yaml(&MdYaml { query: "vector(0)", ..MdYaml::new(name, "1.0.0") }.render()).expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    plugin(&env, &["promote", name]);
    let note = eventually("a RequestIgnored Event", T, || async {
        env.events().into_iter().find(|(r, t, _, _)| r == "RequestIgnored" && t == "Warning").map(|e| e.2)
    })
    .await;
    assert!(note.contains("promote/") && note.contains("no rollout is under way"), "{note}");
    let md = wait_healthy(&env, name, "1.0.0").await;
    assert!(status(&md).last_request.is_some_and(|r| r.starts_with("promote/")), "consumed once");
}
