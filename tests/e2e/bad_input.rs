//! Bad input the operator can only see at run time: metric queries that do not return one number, an
//! unreachable Prometheus, and a pod template that can never become Ready. Each gets a condition and an
//! Event that say what is wrong, and the stable version keeps its traffic.

use champion::api::{DeploymentPhase, ModelDeployment};

use crate::harness::{TestEnv, eventually};
use crate::md::{MdYaml, T, degraded, ship, status};

/// A ModelDeployment whose one background metric runs `query`, with steps setWeight 50 and a 1 s pause.
fn md_yaml(version: &'static str, query: &'static str, deadline: &'static str, pod_spec_extra: &'static str) -> String {
    let steps = "[{setWeight: 50}, {pause: {duration: 1s}}]";
    MdYaml { steps, query, deadline, pod_spec_extra, ..MdYaml::new("m", version) }.render()
}

async fn healthy(env: &TestEnv, name: &str) {
    env.wait_for::<ModelDeployment, _>(name, "Healthy", T, |md| status(md).phase == Some(DeploymentPhase::Healthy))
        .await;
}

/// Ships 1.1.0 and waits until the rollout holds with `Degraded=True MetricUnavailable` whose message
/// contains `says`; the candidate's weight stays at the step's and nothing is promoted.
async fn holds_with(env: &TestEnv, name: &str, says: &str) {
    ship(env, name, "1.1.0");
    let says = says.to_string();
    let md = env
        .wait_for::<ModelDeployment, _>(
            name,
            &format!("Degraded MetricUnavailable mentioning {says:?}"),
            T,
            move |md| {
                degraded(md).is_some_and(|(s, r, m)| s == "True" && r == "MetricUnavailable" && m.contains(&says))
            },
        )
        .await;
    let s = status(&md);
    assert_eq!(s.stable.map(|r| r.version).as_deref(), Some("1.0.0"), "nothing promoted");
    assert!(matches!(s.phase, Some(DeploymentPhase::Progressing | DeploymentPhase::Paused)), "{:?}", s.phase);
    assert!(s.weights.is_some_and(|w| w.stable >= 50), "stable keeps its share");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_returning_a_string_holds_the_rollout() {
    let mut env = TestEnv::new("badstring").await;
    env.start_operator().await;
    env.apply_yaml(&md_yaml("1.0.0", r#""not a number""#, "10m", "")).expect("apply");
    healthy(&env, "m").await;
    holds_with(&env, "m", "single number").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_returning_many_series_holds_the_rollout() {
    let mut env = TestEnv::new("badseries").await;
    let ns = env.ns.clone();
    for variant in ["a", "b", "c"] {
        env.set_metric("champion_e2e_many", &[("namespace", &ns), ("shard", variant)], 0.1).await;
    }
    // The analysis must see the three series, not an empty result before Prometheus's first scrape of them
    // (seen once in CI: "no data", and the rollout went through).
    let count = format!(r#"count(champion_e2e_many{{namespace="{ns}"}})"#);
    eventually("Prometheus has scraped the three series", T, || {
        let (env, count) = (&env, count.clone());
        async move { (env.prometheus_value(&count).await == Some(3.0)).then_some(()) }
    })
    .await;
    env.start_operator().await;
    env.apply_yaml(&md_yaml("1.0.0", r#"champion_e2e_many{namespace="{{namespace}}"}"#, "10m", "")).expect("apply");
    healthy(&env, "m").await;
    holds_with(&env, "m", "3 series").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_prometheus_holds_the_rollout() {
    let mut env = TestEnv::new("unreach").await;
    env.start_operator_with_prometheus("http://127.0.0.1:9", "").await;
    env.apply_yaml(&md_yaml("1.0.0", "up", "10m", "")).expect("apply");
    healthy(&env, "m").await;
    holds_with(&env, "m", "cannot connect to Prometheus").await;
    assert!(
        env.events().iter().any(|(reason, type_, _, _)| reason == "MetricUnavailable" && type_ == "Warning"),
        "a Warning Event says what is wrong"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_that_never_gets_ready_rolls_back_at_the_deadline() {
    let mut env = TestEnv::new("notready").await;
    env.start_operator().await;
    env.apply_yaml(&md_yaml("1.0.0", "vector(0)", "8s", "")).expect("apply");
    healthy(&env, "m").await;
    // The new template asks for a node that does not exist: its pods stay Pending.
    env.apply_yaml(&md_yaml("1.1.0", "vector(0)", "8s", "nodeSelector: {champion.ml/e2e: nowhere}"))
        .expect("apply the unschedulable version");
    let md = env
        .wait_for::<ModelDeployment, _>("m", "rolled back at the progress deadline", T, |md| {
            status(md).phase == Some(DeploymentPhase::RolledBack)
        })
        .await;
    let (s, reason, message) = degraded(&md).expect("Degraded condition");
    assert_eq!((s.as_str(), reason.as_str()), ("True", "ProgressDeadlineExceeded"));
    assert!(message.contains("pods"), "{message}");
    assert_eq!(status(&md).stable.map(|r| r.version).as_deref(), Some("1.0.0"));
    assert_eq!(status(&md).weights.map(|w| w.stable), Some(100));
    assert!(
        env.events().iter().any(|(reason, type_, _, _)| reason == "ProgressDeadlineExceeded" && type_ == "Warning")
    );
}
