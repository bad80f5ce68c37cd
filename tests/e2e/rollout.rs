//! ModelDeployment rollouts on the real control plane with the real Prometheus, one behaviour each:
//! the examples walked step by step (HTTPRoute, VirtualService and replica counts checked at each
//! waiting point), rollback on a failing metric, pause and promote, abort, a new version mid-rollout,
//! an operator restart mid-rollout, hand edits put back, fast rollback, and an unreachable Prometheus.

use std::time::{Duration, Instant};

use champion::api::model_deployment::Verdict;
use champion::api::{DeploymentPhase, ModelDeployment};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::analysis::revision_hash;
use crate::harness::{TestEnv, eventually, output_text, repo_root};
use crate::md::{MdYaml, T, phase, plugin, ship, stable_version, status, wait_healthy};

fn candidate_weight(md: &ModelDeployment) -> Option<i32> {
    status(md).weights.map(|w| w.candidate)
}

async fn wait_step(env: &TestEnv, name: &str, step: i32, what: &str) -> ModelDeployment {
    env.wait_for::<ModelDeployment, _>(name, what, T, move |md| {
        status(md).candidate.is_some()
            && status(md).current_step == Some(step)
            && matches!(phase(md), Some(DeploymentPhase::Progressing | DeploymentPhase::Paused))
    })
    .await
}

async fn wait_phase(env: &TestEnv, name: &str, want: DeploymentPhase) -> ModelDeployment {
    env.wait_for::<ModelDeployment, _>(name, &format!("{name} in phase {want:?}"), T, move |md| phase(md) == Some(want))
        .await
}

/// Replicas of the stable and the candidate Deployment, as their specs say.
async fn replica_counts(env: &TestEnv, md: &ModelDeployment) -> (i32, i32) {
    let api: Api<Deployment> = env.api();
    let count = |hash: Option<String>| {
        let api = api.clone();
        let name = md.metadata.name.clone().unwrap_or_default();
        async move {
            let Some(hash) = hash else { return 0 };
            api.get(&format!("{name}-{hash}")).await.ok().and_then(|d| d.spec).and_then(|s| s.replicas).unwrap_or(0)
        }
    };
    let s = status(md);
    (count(s.stable.and_then(|r| r.hash)).await, count(s.candidate.and_then(|r| r.hash)).await)
}

/// (stable weight, candidate weight if a candidate backend exists, mirror percent if mirroring).
type RouteSplit = (i64, Option<i64>, Option<i64>);

pub(crate) fn route_api(env: &TestEnv, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural);
    Api::namespaced_with(env.client(), &env.ns, &ar)
}

/// (stable weight, candidate weight or None, mirror percent or None) of the generated HTTPRoute.
fn http_route_split(route: &Value) -> RouteSplit {
    let rule = &route["spec"]["rules"][0];
    let backends = rule["backendRefs"].as_array().cloned().unwrap_or_default();
    let weight = |suffix: &str| {
        backends
            .iter()
            .find(|b| b["name"].as_str().is_some_and(|n| n.ends_with(suffix)))
            .and_then(|b| b["weight"].as_i64())
    };
    (weight_of_first(&backends), weight("-candidate"), rule["filters"][0]["requestMirror"]["percent"].as_i64())
}

fn weight_of_first(backends: &[Value]) -> i64 {
    backends.first().and_then(|b| b["weight"].as_i64()).unwrap_or(-1)
}

/// (stable weight, candidate weight or None, mirror percent or None) of the generated VirtualService.
fn virtual_service_split(vs: &Value) -> RouteSplit {
    let http = &vs["spec"]["http"][0];
    let routes = http["route"].as_array().cloned().unwrap_or_default();
    let candidate = routes
        .iter()
        .find(|r| r["destination"]["host"].as_str().is_some_and(|h| h.contains("-candidate.")))
        .and_then(|r| r["weight"].as_i64());
    (
        routes.first().and_then(|r| r["weight"].as_i64()).unwrap_or(-1),
        candidate,
        http["mirrors"][0]["percentage"]["value"].as_f64().map(|v| v as i64),
    )
}

/// Waits until the routing object shows `want`.
async fn wait_route(
    api: &Api<DynamicObject>,
    name: &str,
    split: fn(&Value) -> RouteSplit,
    want: RouteSplit,
    what: &str,
) {
    let api = api.clone();
    let name = name.to_string();
    eventually(what, T, || {
        let (api, name) = (api.clone(), name.clone());
        async move {
            let obj = api.get(&name).await.ok()?;
            let v = serde_json::to_value(&obj).ok()?;
            (split(&v) == want).then_some(())
        }
    })
    .await;
}

/// How one router's example is walked: the file, its ModelDeployment, the version it ships and the one a
/// test moves to, the routing object, and the split expected at each step that waits.
struct RouterWalk {
    file: &'static str,
    name: &'static str,
    from: &'static str,
    to: &'static str,
    route: (&'static str, &'static str, &'static str),
    split: fn(&Value) -> RouteSplit,
    waits: [(i32, RouteSplit); 4],
}

/// Applies the example, ships a new version, and at each waiting step (mirror, timed pause, gate, pause
/// {}) checks the routing object and moves on with `promote`; setWeight steps complete by themselves
/// once the candidate's pods are ready. The examples' background metrics read series nobody exports
/// here: no data, inconclusive, nothing blocks.
async fn walk(prefix: &str, w: RouterWalk) -> (TestEnv, ModelDeployment) {
    let mut env = TestEnv::new(prefix).await;
    env.start_operator().await;
    env.apply_file(&repo_root().join(w.file)).expect("apply example");
    wait_healthy(&env, w.name, w.from).await;
    let (group, kind, plural) = w.route;
    let api = route_api(&env, group, kind, plural);
    wait_route(&api, w.name, w.split, (100, None, None), &format!("{kind} all on stable")).await;
    ship(&env, w.name, w.to);
    for (step, want) in w.waits {
        wait_step(&env, w.name, step, &format!("step {step}")).await;
        wait_route(&api, w.name, w.split, want, &format!("{kind} at step {step} = {want:?}")).await;
        plugin(&env, &["promote", w.name]);
    }
    let md = wait_healthy(&env, w.name, w.to).await;
    wait_route(&api, w.name, w.split, (100, None, None), &format!("{kind} all on the new stable")).await;
    (env, md)
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_example_walks_every_step_and_the_httproute_follows() {
    let (env, md) = walk(
        "gw",
        RouterWalk {
            file: "examples/modeldeployment-gateway-canary.yaml",
            name: "fraud-detector",
            from: "2.1.0",
            to: "2.2.0",
            route: ("gateway.networking.k8s.io", "HTTPRoute", "httproutes"),
            split: http_route_split,
            waits: [
                (0, (100, Some(0), Some(100))),
                (2, (99, Some(1), None)),
                (4, (90, Some(10), None)),
                (6, (50, Some(50), None)),
            ],
        },
    )
    .await;
    assert_eq!(status(&md).history.iter().map(|h| h.version.as_str()).collect::<Vec<_>>(), ["2.2.0", "2.1.0"]);
    let services: Api<Service> = env.api();
    assert!(services.get_opt("fraud-detector-mirror").await.unwrap().is_none(), "the mirror Service is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn istio_example_walks_every_step_and_the_virtualservice_follows() {
    walk(
        "istio",
        RouterWalk {
            file: "examples/modeldeployment-istio.yaml",
            name: "recommender",
            from: "5.0.2",
            to: "5.1.0",
            route: ("networking.istio.io", "VirtualService", "virtualservices"),
            split: virtual_service_split,
            waits: [
                (0, (100, Some(0), Some(50))),
                (2, (80, Some(20), None)),
                (3, (80, Some(20), None)),
                (5, (40, Some(60), None)),
            ],
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_example_sets_replica_counts_per_step() {
    let mut env = TestEnv::new("replicas").await;
    env.start_operator().await;
    env.apply_file(&repo_root().join("examples/modeldeployment-replicas.yaml")).expect("apply example");
    let name = "churn-predictor";
    let md = wait_healthy(&env, name, "1.3.0").await;
    assert_eq!(replica_counts(&env, &md).await, (4, 0));
    ship(&env, name, "1.4.0");
    // (timed pause step, expected (stable, candidate) pods: 25% of 4 is one pod, 50% two)
    for (step, want) in [(1, (3, 1)), (3, (2, 2))] {
        let md = wait_step(&env, name, step, &format!("pause at step {step}")).await;
        assert_eq!(replica_counts(&env, &md).await, want, "replicas at step {step}");
        plugin(&env, &["promote", name]);
    }
    let md = wait_healthy(&env, name, "1.4.0").await;
    assert_eq!(replica_counts(&env, &md).await, (4, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_metric_rolls_back_within_one_interval() {
    let mut env = TestEnv::new("failing").await;
    env.start_operator().await;
    let name = "scorer";
    env.apply_yaml(&MdYaml { steps: "[{setWeight: 50}, {pause: {}}]", ..MdYaml::new(name, "1.0.0") }.render())
        .expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    env.set_metric("champion_e2e_error_rate", &[("namespace", &env.ns), ("variant", "candidate")], 0.001).await;
    ship(&env, name, "1.1.0");
    let md = wait_step(&env, name, 1, "the indefinite pause").await;
    assert_eq!(candidate_weight(&md), Some(50));
    let failing_at = Instant::now();
    env.set_metric("champion_e2e_error_rate", &[("namespace", &env.ns), ("variant", "candidate")], 0.2).await;
    let md = env
        .wait_for::<ModelDeployment, _>(name, "rolled back with all traffic on stable", T, |md| {
            phase(md) == Some(DeploymentPhase::RolledBack) && candidate_weight(md) == Some(0)
        })
        .await;
    let elapsed = failing_at.elapsed();
    eprintln!(
        "MEASURED: failing measurement to 100% stable took {:.1} s (analysis interval 2 s)",
        elapsed.as_secs_f64()
    );
    assert_eq!(stable_version(&md).as_deref(), Some("1.0.0"));
    let degraded = status(&md).conditions.into_iter().find(|c| c.type_ == "Degraded").expect("Degraded condition");
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "AnalysisFailed"));
    assert!(degraded.message.contains("error-rate"), "{}", degraded.message);
    let md2 = md.clone();
    eventually("candidate scaled to zero, stable at full size", T, || {
        let (env, md) = (&env, md2.clone());
        async move { (replica_counts(env, &md).await == (2, 0)).then_some(()) }
    })
    .await;
    assert!(env.events().iter().any(|(reason, type_, _, _)| reason == "AnalysisFailed" && type_ == "Warning"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_indefinite_pause_waits_for_promote() {
    let mut env = TestEnv::new("pause").await;
    env.start_operator().await;
    let name = "ranker";
    env.apply_yaml(
        &MdYaml { steps: "[{setWeight: 30}, {pause: {}}, {setWeight: 60}]", ..MdYaml::new(name, "1.0.0") }.render(),
    )
    .expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    ship(&env, name, "1.1.0");
    let md = env
        .wait_for::<ModelDeployment, _>(name, "paused at step 2", T, |md| {
            phase(md) == Some(DeploymentPhase::Paused) && status(md).current_step == Some(1)
        })
        .await;
    let paused = status(&md).conditions.into_iter().find(|c| c.type_ == "Paused").unwrap();
    assert_eq!(paused.status, "True");
    let view = env.plugin(&["status", name]);
    let text = output_text(&view);
    assert!(view.status.success() && text.contains("→ 2. pause (until promote)"), "kubectl champion status:\n{text}");
    assert!(text.contains("Candidate:  1.1.0") && text.contains("stable 50%, candidate 50%"), "{text}");
    plugin(&env, &["promote", name]);
    let md = wait_healthy(&env, name, "1.1.0").await;
    assert!(
        status(&md).last_request.is_some_and(|r| r.starts_with("promote/")),
        "the request is acknowledged: {:#?}",
        md.status
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_during_a_pause_rolls_back() {
    let mut env = TestEnv::new("abort").await;
    env.start_operator().await;
    let name = "ranker";
    env.apply_yaml(&MdYaml { steps: "[{setWeight: 30}, {pause: {}}]", ..MdYaml::new(name, "1.0.0") }.render())
        .expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    ship(&env, name, "1.1.0");
    wait_step(&env, name, 1, "the indefinite pause").await;
    plugin(&env, &["abort", name]);
    let md = wait_phase(&env, name, DeploymentPhase::RolledBack).await;
    assert_eq!((stable_version(&md).as_deref(), candidate_weight(&md)), (Some("1.0.0"), Some(0)));
    assert!(env.events().iter().any(|(reason, _, _, _)| reason == "Aborted"));
    // Retry starts the steps again.
    plugin(&env, &["retry", name]);
    wait_step(&env, name, 1, "the pause again after retry").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_mid_rollout_restarts_the_steps() {
    let mut env = TestEnv::new("newver").await;
    env.start_operator().await;
    let name = "ranker";
    // Each revision's own error rate, selected by its hash as a pod scrape labels it; 50 failures are
    // tolerated, so failures pile up without a rollback.
    let query = r#"champion_e2e_error_rate{namespace="{{namespace}}",champion_ml_revision="{{revision}}"}"#;
    let steps = "[{setWeight: 30}, {pause: {}}, {setWeight: 60}, {pause: {}}]";
    env.apply_yaml(&MdYaml { steps, query, failure_limit: 50, ..MdYaml::new(name, "1.0.0") }.render()).expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    ship(&env, name, "1.1.0");
    let bad = revision_hash(&env, name, "1.1.0").await;
    env.set_metric("champion_e2e_error_rate", &[("namespace", &env.ns), ("champion_ml_revision", &bad)], 0.5).await;
    wait_step(&env, name, 1, "first pause for 1.1.0").await;
    plugin(&env, &["promote", name]);
    wait_step(&env, name, 3, "second pause for 1.1.0").await;
    env.wait_for::<ModelDeployment, _>(name, "1.1.0 has failed measurements", T, |md| {
        status(md).analysis.is_some_and(|a| a.failures >= 2)
    })
    .await;
    ship(&env, name, "1.2.0");
    let good = revision_hash(&env, name, "1.2.0").await;
    env.set_metric("champion_e2e_error_rate", &[("namespace", &env.ns), ("champion_ml_revision", &good)], 0.001).await;
    let md = env
        .wait_for::<ModelDeployment, _>(name, "1.2.0 restarted at the first pause, measured on its own", T, |md| {
            let measured_pass = status(md).analysis.is_some_and(|a| {
                a.metrics.iter().any(|m| m.name == "error-rate" && m.verdict == Verdict::Pass && m.value == Some(0.001))
            });
            status(md).candidate.is_some_and(|c| c.version == "1.2.0")
                && status(md).current_step == Some(1)
                && measured_pass
        })
        .await;
    // setWeight 30 on 2 replicas under the replicas router: 1 of 2 pods, so 50% of the traffic.
    assert_eq!(candidate_weight(&md), Some(50));
    assert_eq!(
        status(&md).analysis.map(|a| a.failures),
        Some(0),
        "analysis restarted: 1.1.0's failures are not counted against 1.2.0"
    );
    let old: Api<Deployment> = env.api();
    eventually("the superseded candidate's Deployment removed after the scale-down delay", T, || {
        let old = old.clone();
        async move {
            let previous = old.list(&Default::default()).await.ok()?.items;
            previous
                .iter()
                .all(|d| {
                    d.metadata.annotations.as_ref().and_then(|a| a.get("champion.ml/model-version")).map(String::as_str)
                        != Some("1.1.0")
                })
                .then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_operator_resumes_at_the_same_step_and_repeats_nothing() {
    let mut env = TestEnv::new("restart").await;
    env.start_operator().await;
    let name = "ranker";
    env.apply_yaml(
        &MdYaml { steps: "[{setWeight: 30}, {pause: {}}, {setWeight: 60}, {pause: {}}]", ..MdYaml::new(name, "1.0.0") }
            .render(),
    )
    .expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    ship(&env, name, "1.1.0");
    let before = wait_step(&env, name, 1, "first pause").await;
    env.kill_operator();
    // While the operator is down, someone relabels the stable Service by hand (a change that moves no
    // traffic and no step): only a process that reconciles puts it back.
    let out = env.kubectl(&["label", "service", name, "--overwrite", "app.kubernetes.io/managed-by=someone-else"]);
    assert!(out.status.success(), "{}", output_text(&out));
    env.start_operator().await;
    let services: Api<Service> = env.api();
    eventually("the restarted operator to put the stable Service's label back", T, || {
        let services = services.clone();
        async move {
            let svc = services.get(name).await.ok()?;
            (svc.metadata.labels?.get("app.kubernetes.io/managed-by")?.as_str() == "champion").then_some(())
        }
    })
    .await;
    // It reconciled: now check that it resumed where it was and redid nothing.
    let after = wait_step(&env, name, 1, "still at the first pause after the restart").await;
    let (b, a) = (status(&before), status(&after));
    assert_eq!(
        (a.step_started_at, a.candidate.clone(), a.weights.clone()),
        (b.step_started_at, b.candidate, b.weights)
    );
    let started =
        env.events().iter().filter(|(reason, _, _, _)| reason == champion::names::reasons::ROLLOUT_STARTED).count();
    assert_eq!(started, 1, "RolloutStarted once, not again after the restart");
    plugin(&env, &["promote", name]);
    wait_step(&env, name, 3, "second pause after promote").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hand_edits_to_generated_objects_are_put_back() {
    let mut env = TestEnv::new("drift").await;
    env.start_operator().await;
    let name = "fraud-detector";
    env.apply_file(&repo_root().join("examples/modeldeployment-gateway-canary.yaml")).expect("apply example");
    let md = wait_healthy(&env, name, "2.1.0").await;
    let deployment = format!("{name}-{}", status(&md).stable.unwrap().hash.unwrap());
    let out = env.kubectl(&["scale", "deployment", &deployment, "--replicas=1"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let routes = route_api(&env, "gateway.networking.k8s.io", "HTTPRoute", "httproutes");
    let out = env.kubectl(&[
        "patch",
        "httproute",
        name,
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":7}]"#,
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let deployments: Api<Deployment> = env.api();
    eventually("the Deployment's replicas put back", T, || {
        let (api, n) = (deployments.clone(), deployment.clone());
        async move { (api.get(&n).await.ok()?.spec?.replicas == Some(3)).then_some(()) }
    })
    .await;
    wait_route(&routes, name, http_route_split, (100, None, None), "the HTTPRoute weight put back").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_to_a_previous_version_is_immediate() {
    let mut env = TestEnv::new("rollback").await;
    env.start_operator().await;
    let name = "ranker";
    env.apply_yaml(&MdYaml::new(name, "1.0.0").render()).expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    ship(&env, name, "2.0.0");
    wait_healthy(&env, name, "2.0.0").await;
    plugin(&env, &["rollback", name, "--to", "1.0.0"]);
    let md = env
        .wait_for::<ModelDeployment, _>(name, "1.0.0 stable again", T, |md| {
            stable_version(md).as_deref() == Some("1.0.0")
        })
        .await;
    assert_eq!(phase(&md), Some(DeploymentPhase::RolledBack), "the spec's 2.0.0 waits for retry");
    assert_eq!(status(&md).current_step, None, "no steps were walked");
    let md2 = md.clone();
    eventually("1.0.0 at full size", T, || {
        let (env, md) = (&env, md2.clone());
        async move { (replica_counts(env, &md).await.0 == 2).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_and_resume_hold_and_release_the_rollout() {
    let mut env = TestEnv::new("pauseresume").await;
    env.start_operator().await;
    let name = "ranker";
    // Step 2 is a timed pause: without `pause`, the rollout moves on by itself after 8 s.
    let hold = Duration::from_secs(8);
    let steps = "[{setWeight: 30}, {pause: {duration: 8s}}, {setWeight: 60}, {pause: {}}]";
    env.apply_yaml(&MdYaml { steps, ..MdYaml::new(name, "1.0.0") }.render()).expect("apply");
    wait_healthy(&env, name, "1.0.0").await;
    ship(&env, name, "1.1.0");
    let md = wait_step(&env, name, 1, "the timed pause").await;
    plugin(&env, &["pause", name]);
    let md_paused = env
        .wait_for::<ModelDeployment, _>(name, "paused by request", T, |md| status(md).manual_pause == Some(true))
        .await;
    assert_eq!(status(&md_paused).current_step, Some(1), "paused during the timed pause, before it ended");
    assert!(status(&md_paused).message.is_some_and(|m| m.contains("paused by request")));
    // Watch the rollout until well after the timed pause would have ended: it must stay at step 2.
    let step_started = status(&md).step_started_at.expect("stepStartedAt").0;
    let until = step_started + hold + Duration::from_secs(4);
    let held = eventually("the timed pause's end to pass while paused", T, || {
        let api: Api<ModelDeployment> = env.api();
        async move {
            let md = api.get(name).await.ok()?;
            assert_eq!(
                (status(&md).current_step, status(&md).manual_pause),
                (Some(1), Some(true)),
                "the rollout moved while paused by request: {:#?}",
                md.status
            );
            (jiff::Timestamp::now() > until).then_some(md)
        }
    })
    .await;
    assert_eq!(candidate_weight(&held), candidate_weight(&md), "the weight held too");
    plugin(&env, &["resume", name]);
    let md = wait_step(&env, name, 3, "released after resume: past the timed pause, at the indefinite one").await;
    assert_eq!(status(&md).manual_pause, None);
    plugin(&env, &["promote", name]);
    wait_healthy(&env, name, "1.1.0").await;
}
