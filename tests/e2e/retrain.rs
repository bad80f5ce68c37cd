//! RetrainPolicies on the real cluster: the example training program (examples/training: boosted trees on
//! scikit-learn's breast cancer data) runs as real Jobs on the real node, reports through its termination
//! message, and writes its models to a hostPath folder that every Job of the test mounts at /mnt/models (the volume `models`, so the models are
//! `pvc://models/...` as KServe names them); the
//! triggers read the real Prometheus (the test exporter's gauges); candidates are registered in the real
//! MLflow, and the ModelDeployment (on kwok nodes) follows the alias that promotion moves.
//!
//! The champion of each test is trained first by a plain Job on the shifted dataset version (tumours with a
//! mean radius under 13 only), so a candidate trained on the full training split beats it on the held-out
//! set, and a gate that asks for more fails.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use champion::api::retrain_policy::{JobState, RunDecision, RunRecord};
use champion::api::{ModelDeployment, RetrainPolicy, RetrainPolicyStatus};
use champion::registry::{MlflowClient, NewModelVersion, Registry};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use crate::harness::{TestEnv, eventually, output_text};
use crate::md::status;
use crate::real_node::{RealNode, real_node};

/// How long a run may take here (Jobs start in about a second on the real node).
const RUN_T: Duration = Duration::from_secs(120);

fn mlflow(uri: &str) -> MlflowClient {
    MlflowClient::new(uri, Duration::from_secs(10))
}

/// What a test's policy looks like.
struct Policy<'a> {
    name: &'a str,
    md: &'a str,
    /// The `triggers:` value (flow YAML), or "" for none.
    triggers: &'a str,
    /// Extra lines of `training:` (e.g. a search), 4 spaces deep.
    search: &'a str,
    /// Extra env entries of the training container (flow YAML list items).
    train_env: &'a str,
    backoff: i32,
    /// Jobs on the host's network, so that they reach the test's MLflow on 127.0.0.1.
    host_network: bool,
    cooldown: &'a str,
    /// `Forbid` or `Replace`.
    concurrency: &'a str,
    history: i32,
    gates: &'a str,
    mode: &'a str,
    dataset_version: &'a str,
}

impl Default for Policy<'_> {
    fn default() -> Self {
        Self {
            name: "retrain",
            md: "scorer",
            triggers: "",
            search: "",
            train_env: "",
            backoff: 0,
            host_network: false,
            cooldown: "1s",
            concurrency: "Forbid",
            history: 10,
            gates: "[{metric: f1, minAbsoluteChange: 0.01}, {metric: false_positive_rate, goal: minimize, maxAbsoluteChange: 0.02}]",
            mode: "auto",
            dataset_version: "full-{{run}}",
        }
    }
}

/// The pod spec of a Job of the example program on the real node with the models folder, 10 spaces deep.
fn pod(node: &RealNode, models: &str, container: &str, env: &str, host_network: bool) -> String {
    let l = &node.label;
    let image = &node.trainer_image;
    format!(
        r#"          hostNetwork: {host_network}
          nodeSelector: {{{l}: "true"}}
          tolerations: [{{key: {l}, operator: Equal, value: "true", effect: NoSchedule}}]
          automountServiceAccountToken: false
          restartPolicy: Never
          volumes: [{{name: models, hostPath: {{path: {models}, type: DirectoryOrCreate}}}}]
          containers:
          - name: {container}
            image: {image}
            imagePullPolicy: Never
            env: [{env}]
            volumeMounts: [{{name: models, mountPath: /mnt/models}}]
            resources: {{requests: {{cpu: 10m, memory: 16Mi}}, limits: {{memory: 256Mi}}}}
"#
    )
}

fn policy_yaml(node: &RealNode, models: &str, p: &Policy) -> String {
    let triggers = if p.triggers.is_empty() { String::new() } else { format!("  triggers: {}\n", p.triggers) };
    let indent = |text: String| text.lines().map(|l| format!("  {l}\n")).collect::<String>();
    let train = indent(pod(node, models, "train", p.train_env, p.host_network));
    let eval = indent(pod(node, models, "eval", "", p.host_network));
    format!(
        r#"apiVersion: champion.ml/v1alpha1
kind: RetrainPolicy
metadata: {{name: {name}}}
spec:
  deploymentRef: {{name: {md}}}
{triggers}  cooldown: {cooldown}
  concurrencyPolicy: {concurrency}
  dataset: {{uri: "builtin:breast_cancer", version: "{version}"}}
  training:
    modelOutputUri: "pvc://models/{{{{policy}}}}/{{{{run}}}}/trial-{{{{trial}}}}"
{search}    template:
      spec:
        backoffLimit: {backoff}
        template:
          spec:
{train}  evaluation:
    gates: {gates}
    template:
      spec:
        backoffLimit: 0
        template:
          spec:
{eval}  promotion: {{mode: {mode}}}
  historyLimit: {history}
"#,
        history = p.history,
        name = p.name,
        md = p.md,
        version = p.dataset_version,
        search = p.search,
        backoff = p.backoff,
        cooldown = p.cooldown,
        concurrency = p.concurrency,
        gates = p.gates,
        mode = p.mode,
    )
}

/// A ModelDeployment on kwok nodes that follows alias `champion` of `model` (or pins `uri` when `model` is
/// empty), replicas router, with a long pause so a rollout that starts stays visible; the background
/// metric reads the exporter's error rate of the candidate.
fn md_yaml(name: &str, model: &str, uri: &str) -> String {
    let model = if model.is_empty() {
        format!("{{version: \"1.0.0\", uri: \"{uri}\"}}")
    } else {
        format!("{{registry: {{model: {model}, alias: champion}}}}")
    };
    format!(
        r#"apiVersion: champion.ml/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}}}
spec:
  model: {model}
  replicas: 1
  template:
    spec:
      containers: [{{name: server, image: "example.invalid/server:1"}}]
  strategy:
    scaleDownDelay: 1s
    canary:
      steps: [{{setWeight: 50}}, {{pause: {{duration: 1h}}}}]
      analysis:
        interval: 2s
        metrics:
        - name: error-rate
          prometheus: {{query: 'champion_e2e_error_rate{{namespace="{{{{namespace}}}}",variant="{{{{variant}}}}"}}'}}
          thresholdRange: {{max: 0.01}}
"#
    )
}

/// One test's world: the namespace with its operator, the real node, the models folder, MLflow.
struct World {
    env: TestEnv,
    node: RealNode,
    /// The hostPath folder mounted at /mnt/models.
    models: String,
    uri: String,
    /// The registered model (unique per test).
    model: String,
}

impl World {
    /// Starts the operator (MLflow polled every 2 s), trains the champion with a plain Job, registers it as
    /// version 1 of a fresh registered model with alias `champion`, and applies a ModelDeployment
    /// following it (or pinning it, with `pinned`). `None` when the real node is unavailable.
    async fn new(prefix: &str, pinned: bool) -> Option<World> {
        let node = real_node(prefix)?;
        let mut env = TestEnv::new(prefix).await;
        let uri = env.mlflow_tracking_uri().to_string();
        let models = env.work_dir().join("models").display().to_string();
        std::fs::create_dir_all(&models).unwrap();
        env.start_operator_with(&format!("mlflow:\n  trackingUri: {uri:?}\n  pollInterval: 2s")).await;
        let model = format!("{}-model", env.ns);
        let w = World { env, node, models, uri, model };
        w.train_champion().await;
        if pinned {
            w.env.apply_yaml(&md_yaml("scorer", "", "pvc://models/champion")).expect("apply the ModelDeployment");
        } else {
            let c = mlflow(&w.uri);
            c.create_registered_model(&w.model, Some("e2e: retraining")).await.unwrap();
            let new = NewModelVersion {
                name: w.model.clone(),
                source: "pvc://models/champion".into(),
                ..NewModelVersion::default()
            };
            let v = c.create_model_version(&new).await.unwrap();
            c.set_registered_model_alias(&w.model, "champion", &v.version).await.unwrap();
            w.env.apply_yaml(&md_yaml("scorer", &w.model, "")).expect("apply the ModelDeployment");
        }
        w.env
            .wait_for::<ModelDeployment, _>("scorer", "the champion serves", RUN_T, |md| {
                status(md).stable.is_some() && status(md).candidate.is_none()
            })
            .await;
        Some(w)
    }

    async fn train_champion(&self) {
        let env = r#"{name: DATASET_URI, value: "builtin:breast_cancer"}, {name: DATASET_VERSION, value: shifted-2026-11}, {name: MODEL_OUTPUT_URI, value: "pvc://models/champion"}, {name: CHAMPION_PARAMS, value: '{"n_estimators": 20, "max_depth": 2}'}"#;
        let job = format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: champion-seed}}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n{}",
            pod(&self.node, &self.models, "train", env, false).lines().map(|l| &l[4..]).collect::<Vec<_>>().join("\n")
        );
        self.env.apply_yaml(&job).expect("apply the champion's training Job");
        self.env
            .wait_for::<Job, _>("champion-seed", "the champion trained", RUN_T, |j| {
                j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) == 1
            })
            .await;
    }

    fn apply(&self, p: &Policy) {
        self.env.apply_yaml(&policy_yaml(&self.node, &self.models, p)).expect("apply the RetrainPolicy");
    }

    /// Waits until run `id` of `name` has ended, and returns it.
    async fn run_ended(&self, name: &str, id: &str) -> RunRecord {
        let id2 = id.to_string();
        let p = self
            .env
            .wait_for::<RetrainPolicy, _>(name, &format!("run {id} ended"), RUN_T, move |p| {
                runs(p).iter().any(|r| r.id == id2 && r.decision != RunDecision::Running)
            })
            .await;
        runs(&p).into_iter().find(|r| r.id == id).unwrap()
    }

    async fn versions(&self) -> Vec<String> {
        let search = champion::registry::VersionSearch::of_model(&self.model, 50).unwrap();
        let page = mlflow(&self.uri).search_model_versions(&search).await.unwrap();
        page.versions.into_iter().map(|v| v.version).collect()
    }

    async fn jobs(&self, policy: &str) -> Vec<Job> {
        let api: Api<Job> = self.env.api();
        let lp = ListParams::default().labels(&format!("champion.ml/retrain-policy={policy}"));
        api.list(&lp).await.unwrap().items
    }
}

fn st(p: &RetrainPolicy) -> RetrainPolicyStatus {
    p.status.clone().unwrap_or_default()
}

fn runs(p: &RetrainPolicy) -> Vec<RunRecord> {
    st(p).runs
}

fn event_notes(env: &TestEnv, reason: &str) -> Vec<String> {
    env.events().into_iter().filter(|e| e.0 == reason).map(|e| e.2).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_drift_held_for_its_duration_starts_exactly_one_run_and_promotes_a_better_candidate() {
    let Some(w) = World::new("rt-drift", false).await else { return };
    let ns = w.env.ns.clone();
    let triggers = format!(
        "{{checkInterval: 1s, metrics: [{{name: feature-drift, prometheus: {{query: 'max(champion_e2e_feature_psi{{namespace=\"{ns}\"}})'}}, thresholdRange: {{max: 0.2}}, for: 6s}}]}}"
    );
    // A cooldown longer than the test: the drift stays high after the run, and still only one run starts.
    let p = Policy { name: "drift", triggers: &triggers, cooldown: "1h", ..Policy::default() };
    w.env.set_metric("champion_e2e_feature_psi", &[("namespace", &ns)], 0.05).await;
    w.apply(&p);
    // In range: nothing starts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = w.env.api::<RetrainPolicy>().get("drift").await.unwrap();
    assert!(runs(&before).is_empty(), "no run while the drift is in range: {:?}", st(&before));

    w.env.set_metric("champion_e2e_feature_psi", &[("namespace", &ns)], 0.31).await;
    let drifted = Instant::now();
    let p1 = w.env.wait_for::<RetrainPolicy, _>("drift", "a run started", RUN_T, |p| !runs(p).is_empty()).await;
    let held = drifted.elapsed();
    assert!(held >= Duration::from_secs(6), "the trigger fired after {held:?}, before `for: 6s` had passed");
    let fired_at = st(&p1).last_trigger.as_ref().and_then(|t| t.at.clone()).unwrap().0;
    assert_eq!(st(&p1).last_trigger.as_ref().map(|t| t.reason.as_str()), Some("feature-drift"));

    let run = w.run_ended("drift", "r-0001").await;
    assert_eq!(run.decision, RunDecision::Promoted, "{run:?}");
    assert_eq!(run.trigger_value, Some(0.31));
    let eval = run.evaluation.clone().unwrap();
    assert!(eval.candidate["f1"] > eval.champion["f1"], "{eval:?}");
    assert!(run.reason.as_deref().unwrap().contains("passed every gate"), "{run:?}");
    let version = run.candidate_version.clone().unwrap();
    assert_eq!(version, "2");

    // The registry has the new version with the run's story, and the alias moved to it.
    let c = mlflow(&w.uri);
    let v = c.get_model_version(&w.model, &version).await.unwrap();
    assert_eq!(v.source.as_deref(), Some("pvc://models/drift/r-0001/trial-0"));
    assert_eq!(v.tags.get("champion.ml/trigger").map(String::as_str), Some("feature-drift"));
    assert_eq!(v.tags.get("champion.ml/dataset-version").map(String::as_str), Some("full-r-0001"));
    assert!(v.tags.contains_key("metric.val_f1") && v.tags.contains_key("eval.f1"), "{:?}", v.tags);
    assert_eq!(c.get_model_version_by_alias(&w.model, "champion").await.unwrap().version, version);
    // ... and the ModelDeployment rolls it out through its own steps.
    w.env
        .wait_for::<ModelDeployment, _>("scorer", "the candidate rolls out", RUN_T, |md| {
            status(md).candidate.and_then(|c| c.registry).map(|r| r.version).as_deref() == Some("2")
        })
        .await;

    // The drift is still high, for more than `for` again: the cooldown keeps it at one run.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let jobs = w.jobs("drift").await;
    let first_job = jobs.iter().filter_map(|j| j.creation_timestamp()).map(|t| t.0).min().unwrap();
    let to_job = first_job.duration_since(fired_at);
    eprintln!(
        "MEASURED: drift trigger fired to first Job created: {:.0} s (both times in whole seconds); drift set to \
         run started, with for: 6s, a 1 s scrape and a 1 s check interval: {:.1} s",
        to_job.as_secs_f64(),
        held.as_secs_f64()
    );
    assert_eq!(
        jobs.iter().filter(|j| j.labels().get("champion.ml/run").map(String::as_str) == Some("r-0001")).count(),
        2,
        "one training Job and one evaluation Job"
    );
    let p = w.env.api::<RetrainPolicy>().get("drift").await.unwrap();
    assert_eq!(st(&p).runs_started, Some(1), "exactly one run: {:?}", st(&p).runs);
    assert!(
        event_notes(&w.env, "RunStarted")
            .iter()
            .any(|n| n.contains("run r-0001 started by trigger feature-drift at 0.31"))
    );
    assert!(event_notes(&w.env, "CandidatePromoted").iter().any(|n| n.contains("registered as version 2")));
    let (_, metrics) = crate::harness::http_get(&w.env.metrics_url()).await;
    assert!(
        metrics.contains(r#"champion_retrain_runs_total{outcome="Promoted",trigger="feature-drift"} 1"#),
        "{}",
        metrics.lines().filter(|l| l.contains("retrain")).collect::<Vec<_>>().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_a_candidate_failing_a_gate_is_not_promoted_and_says_why() {
    let Some(w) = World::new("rt-gate", false).await else { return };
    let p = Policy { gates: "[{metric: f1, minAbsoluteChange: 0.5}]", ..Policy::default() };
    w.apply(&p);
    let out = w.env.plugin(&["retrain", "retrain"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let run = w.run_ended("retrain", "r-0001").await;
    assert_eq!(run.decision, RunDecision::Rejected, "{run:?}");
    let reason = run.reason.clone().unwrap();
    assert!(reason.contains("needs an improvement of at least 0.5"), "{reason}");
    assert_eq!(run.trigger, "manual");
    assert_eq!(w.versions().await, vec!["1".to_string()], "nothing was registered");
    let c = mlflow(&w.uri);
    assert_eq!(c.get_model_version_by_alias(&w.model, "champion").await.unwrap().version, "1");
    let md = w.env.api::<ModelDeployment>().get("scorer").await.unwrap();
    assert!(status(&md).candidate.is_none(), "no rollout: {:?}", status(&md));
    assert!(event_notes(&w.env, "CandidateRejected").iter().any(|n| n.contains("the champion keeps serving")));
    let shown = output_text(&w.env.plugin(&["runs", "retrain"]));
    assert!(shown.contains("gate FAILED f1") && shown.contains("Run r-0001 [Rejected] trigger manual"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_a_schedule_fires_on_a_fast_cron_and_a_pinned_deployment_gets_the_change_to_make() {
    let Some(w) = World::new("rt-cron", true).await else { return };
    let p = Policy { triggers: "{schedule: {cron: \"* * * * *\", timeZone: Europe/Berlin}}", ..Policy::default() };
    w.apply(&p);
    let p1 = w
        .env
        .wait_for::<RetrainPolicy, _>("retrain", "the next slot is scheduled", RUN_T, |p| {
            st(p).next_scheduled.is_some()
        })
        .await;
    let next = st(&p1).next_scheduled.unwrap().0;
    assert_eq!(next.as_second() % 60, 0, "a minute boundary: {next}");
    let p2 = w
        .env
        .wait_for::<RetrainPolicy, _>("retrain", "the schedule fired", Duration::from_secs(75), |p| !runs(p).is_empty())
        .await;
    let at = st(&p2).last_trigger.clone().unwrap();
    assert_eq!(at.reason, "schedule");
    assert!(at.at.unwrap().0 >= next, "fired at its slot or after");
    assert!(st(&p2).next_scheduled.unwrap().0 > next, "the next slot moved on");
    let run = w.run_ended("retrain", "r-0001").await;
    assert_eq!(run.decision, RunDecision::Evaluated, "{run:?}");
    assert!(
        run.reason.as_deref().unwrap().contains("set spec.model.uri to \"pvc://models/retrain/r-0001/trial-0\""),
        "{run:?}"
    );
    assert!(event_notes(&w.env, "PromotionNeeded").iter().any(|n| n.contains("never edits")));
    let md = w.env.api::<ModelDeployment>().get("scorer").await.unwrap();
    assert_eq!(md.spec.model.uri.as_deref(), Some("pvc://models/champion"), "the spec is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_an_operator_restart_during_training_starts_no_second_job() {
    let Some(mut w) = World::new("rt-restart", false).await else { return };
    let p = Policy { train_env: "{name: TRAIN_SECONDS, value: \"12\"}", ..Policy::default() };
    w.apply(&p);
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    // The Jobs of trial 0 of run r-0001, found by their labels (not by the name the operator should give).
    let api: Api<Job> = w.env.api();
    let trial0 = ListParams::default().labels("champion.ml/run=r-0001,champion.ml/trial=0");
    let job = eventually("the training Job exists", RUN_T, || async {
        api.list(&trial0).await.ok().and_then(|l| l.items.into_iter().next())
    })
    .await;
    let uid = job.uid().unwrap();
    w.env.kill_operator();
    w.env.start_operator_with(&format!("mlflow:\n  trackingUri: {:?}\n  pollInterval: 2s", w.uri)).await;
    let run = w.run_ended("retrain", "r-0001").await;
    assert_eq!(run.decision, RunDecision::Promoted, "{run:?}");
    let after = api.list(&trial0).await.unwrap().items;
    let names: Vec<String> = after.iter().map(|j| j.name_any()).collect();
    assert_eq!(names, vec!["retrain-r-0001-t0".to_string()], "one Job for the trial");
    assert_eq!(after[0].uid().unwrap(), uid, "the same Job, not a new one");
    let pods: Api<Pod> = w.env.api();
    let lp = ListParams::default().labels("batch.kubernetes.io/job-name=retrain-r-0001-t0");
    assert_eq!(pods.list(&lp).await.unwrap().items.len(), 1, "one pod: trained once");
    let p = w.env.api::<RetrainPolicy>().get("retrain").await.unwrap();
    assert_eq!(st(&p).runs_started, Some(1));
    assert_eq!(w.versions().await.len(), 2, "registered once");
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_a_search_of_4_trials_at_parallelism_2_never_runs_more_than_2_jobs_and_picks_the_best() {
    let Some(w) = World::new("rt-search", false).await else { return };
    let search = "    search:\n      algorithm: grid\n      parameters:\n        max_depth: {values: [1, 3]}\n        learning_rate: {values: [0.02, 0.3]}\n      maxTrials: 4\n      parallelism: 2\n      objective: {metric: val_log_loss, goal: minimize}\n";
    let p = Policy { search, train_env: "{name: TRAIN_SECONDS, value: \"3\"}", ..Policy::default() };
    w.apply(&p);
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    let api: Api<Job> = w.env.api();
    let lp = ListParams::default().labels("champion.ml/run=r-0001,champion.ml/trial!=eval");
    let mut most = 0;
    let started = Instant::now();
    let pol: Api<RetrainPolicy> = w.env.api();
    loop {
        let jobs = api.list(&lp).await.unwrap().items;
        let active = jobs
            .iter()
            .filter(|j| {
                let s = j.status.clone().unwrap_or_default();
                s.succeeded.unwrap_or(0) == 0 && s.failed.unwrap_or(0) == 0
            })
            .count();
        most = most.max(active);
        assert!(
            active <= 2,
            "{active} training Jobs at once: {:?}",
            jobs.iter().map(|j| j.name_any()).collect::<Vec<_>>()
        );
        let p = pol.get("retrain").await.unwrap();
        if runs(&p).first().is_some_and(|r| r.decision != RunDecision::Running) {
            break;
        }
        assert!(started.elapsed() < RUN_T, "the search did not end: {:?}", st(&p));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(most, 2, "two at once were used");
    let run = w.run_ended("retrain", "r-0001").await;
    assert_eq!(run.trials, Some(4));
    // What each trial reported, read from its pod here, independently of the operator.
    let pods: Api<Pod> = w.env.api();
    let mut reported = BTreeMap::new();
    for i in 0..4 {
        let lp = ListParams::default().labels(&format!("batch.kubernetes.io/job-name=retrain-r-0001-t{i}"));
        let pod = pods.list(&lp).await.unwrap().items.into_iter().next().unwrap();
        let msg = pod.status.unwrap().container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap()
            .message
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
        reported.insert(i, v["val_log_loss"].as_f64().unwrap());
    }
    let least = reported.values().cloned().fold(f64::INFINITY, f64::min);
    let best = run.best_trial.unwrap();
    assert_eq!(reported[&best], least, "the best trial has the least val_log_loss: {reported:?}, best {best}");
    assert_eq!(run.best["val_log_loss"], least);
    let kept = run.trial_results.iter().find(|t| t.index == best).unwrap();
    assert_eq!(kept.state, JobState::Succeeded);
    assert_eq!(run.candidate_uri.as_deref(), Some(format!("pvc://models/retrain/r-0001/trial-{best}").as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_a_failing_job_is_retried_then_fails_the_run_and_a_garbled_report_fails_the_next() {
    let Some(w) = World::new("rt-fail", false).await else { return };
    let mut p = Policy {
        train_env: "{name: FAIL_WITH, value: \"the feature store is unreachable\"}",
        backoff: 1,
        history: 1,
        ..Policy::default()
    };
    w.apply(&p);
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    let run = w.run_ended("retrain", "r-0001").await;
    assert_eq!(run.decision, RunDecision::Failed, "{run:?}");
    let reason = run.reason.clone().unwrap();
    assert!(reason.contains("BackoffLimitExceeded") && reason.contains("the feature store is unreachable"), "{reason}");
    let pods: Api<Pod> = w.env.api();
    let lp = ListParams::default().labels("batch.kubernetes.io/job-name=retrain-r-0001-t0");
    assert_eq!(pods.list(&lp).await.unwrap().items.len(), 2, "backoffLimit 1: tried twice");
    let pol = w.env.api::<RetrainPolicy>().get("retrain").await.unwrap();
    let degraded = st(&pol).conditions.into_iter().find(|c| c.type_ == "Degraded").unwrap();
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "RunFailed"));

    p.train_env = "{name: REPORT_OVERRIDE, value: \"training finished fine\"}";
    w.apply(&p);
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    let run = w.run_ended("retrain", "r-0002").await;
    assert_eq!(run.decision, RunDecision::Failed, "{run:?}");
    assert!(run.reason.as_deref().unwrap().contains("the report is not JSON"), "{run:?}");
    // historyLimit 1: the first run left the history, and its Jobs went with it.
    let pol = w.env.api::<RetrainPolicy>().get("retrain").await.unwrap();
    assert_eq!(runs(&pol).iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r-0002"]);
    let api: Api<Job> = w.env.api();
    let first = ListParams::default().labels("champion.ml/run=r-0001");
    eventually("the Jobs of r-0001 are deleted", RUN_T, || async {
        api.list(&first).await.unwrap().items.iter().all(|j| j.metadata.deletion_timestamp.is_some()).then_some(())
    })
    .await;
    assert_eq!(w.versions().await, vec!["1".to_string()], "nothing was registered");
    assert_eq!(mlflow(&w.uri).get_model_version_by_alias(&w.model, "champion").await.unwrap().version, "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_manual_promotion_waits_for_promote_run_and_a_failed_canary_is_recorded_on_the_run() {
    let Some(w) = World::new("rt-manual", false).await else { return };
    let p = Policy {
        mode: "manual",
        gates: "[{metric: f1, minRelativeChange: 0.01}, {metric: auc, minAbsoluteChange: 0}]",
        ..Policy::default()
    };
    w.apply(&p);
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    // A gate on a metric the evaluation never reports: rejected, with the metrics it did report.
    let run = w.run_ended("retrain", "r-0001").await;
    assert_eq!(run.decision, RunDecision::Rejected, "{run:?}");
    assert!(
        run.reason.as_deref().unwrap().contains(
            "reported no \"auc\" for the candidate (it reported: accuracy, f1, false_positive_rate, log_loss)"
        ),
        "{run:?}"
    );

    let p = Policy { mode: "manual", gates: "[{metric: f1, minRelativeChange: 0.01}]", ..Policy::default() };
    w.apply(&p);
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    let run = w.run_ended("retrain", "r-0002").await;
    assert_eq!(run.decision, RunDecision::Evaluated, "{run:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(w.versions().await.len(), 1, "manual: nothing registered before promote-run");
    let out = w.env.plugin(&["promote-run", "retrain", "r-0002"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let pol = w
        .env
        .wait_for::<RetrainPolicy, _>("retrain", "r-0002 promoted", RUN_T, |p| {
            runs(p).iter().any(|r| r.id == "r-0002" && r.decision == RunDecision::Promoted)
        })
        .await;
    let run = runs(&pol).into_iter().find(|r| r.id == "r-0002").unwrap();
    assert_eq!(run.rollout.as_deref(), Some("RollingOut"));
    // The canary fails its analysis: the ModelDeployment rolls back, and the run says so.
    w.env.set_metric("champion_e2e_error_rate", &[("namespace", &w.env.ns), ("variant", "candidate")], 0.5).await;
    let pol = w
        .env
        .wait_for::<RetrainPolicy, _>("retrain", "the rollback is recorded on the run", RUN_T, |p| {
            runs(p)
                .iter()
                .any(|r| r.id == "r-0002" && r.rollout.as_deref().is_some_and(|x| x.starts_with("RolledBack")))
        })
        .await;
    let run = runs(&pol).into_iter().find(|r| r.id == "r-0002").unwrap();
    assert!(run.rollout.as_deref().unwrap().contains("error-rate"), "{run:?}");
    assert!(event_notes(&w.env, "CandidateRolledBack").iter().any(|n| n.contains("rolled registry version 2 back")));
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_runs_are_tracked_in_mlflow_and_what_a_job_logged_wins_over_its_report() {
    let Some(w) = World::new("rt-track", false).await else { return };
    // The training program logs its real metrics to MLflow, but its termination message says otherwise.
    let p = Policy {
        host_network: true,
        train_env: r#"{name: REPORT_OVERRIDE, value: '{"val_f1": 0.5, "only_reported": 7}'}"#,
        ..Policy::default()
    };
    w.apply(&p);
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    let run = w.run_ended("retrain", "r-0001").await;
    assert_eq!(run.decision, RunDecision::Promoted, "{run:?}");
    let parent = run.mlflow_run_id.clone().unwrap_or_else(|| panic!("not tracked: {:?}", run.tracking));
    let trial = run.trial_results[0].clone();
    let trial_run = trial.mlflow_run_id.clone().unwrap();
    // MLflow's value won, the report-only metric was kept, and the disagreement was said.
    assert_ne!(trial.metrics["val_f1"], 0.5, "{trial:?}");
    assert_eq!(trial.metrics["only_reported"], 7.0);
    assert!(
        event_notes(&w.env, "MetricsDisagree")
            .iter()
            .any(|n| n.contains("val_f1 is") && n.contains("and 0.5 in the termination message")),
        "{:?}",
        w.env.events()
    );

    // What MLflow holds, read over its REST API.
    let http = crate::harness::http_client();
    let get = |id: String| {
        let url = format!("{}/api/2.0/mlflow/runs/get", w.uri);
        let http = http.clone();
        async move {
            http.get(&url).query(&[("run_id", id)]).send().await.unwrap().json::<serde_json::Value>().await.unwrap()
        }
    };
    let kv = |v: &serde_json::Value, field: &str| -> BTreeMap<String, serde_json::Value> {
        v["run"]["data"][field]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e["key"].as_str().unwrap().to_string(), e["value"].clone()))
            .collect()
    };
    let t = get(trial_run.clone()).await;
    assert_eq!(kv(&t, "tags")["mlflow.parentRunId"], serde_json::json!(parent));
    assert_eq!(t["run"]["info"]["status"], "FINISHED");
    let metrics = kv(&t, "metrics");
    assert_eq!(metrics["val_f1"].as_f64(), Some(trial.metrics["val_f1"]), "logged by the Job: {metrics:?}");
    assert_eq!(metrics["only_reported"].as_f64(), Some(7.0), "logged by the operator: {metrics:?}");
    let r = get(parent.clone()).await;
    let tags = kv(&r, "tags");
    assert_eq!(tags["champion.ml/trigger"], "manual");
    assert_eq!(tags["champion.ml/dataset-version"], "full-r-0001");
    assert_eq!(tags["champion.ml/decision"], "Promoted");
    assert_eq!(tags["champion.ml/registered-version"], "2");
    assert!(kv(&r, "metrics").contains_key("candidate.f1"), "{r}");
    let v = mlflow(&w.uri).get_model_version(&w.model, "2").await.unwrap();
    assert_eq!(v.run_id.as_deref(), Some(parent.as_str()), "the version links to the run");

    // The Job got the contract's tracking variables.
    let job = w.env.api::<Job>().get("retrain-r-0001-t0").await.unwrap();
    let env: BTreeMap<String, String> = job.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert_eq!(env["MLFLOW_RUN_ID"], trial_run);
    assert_eq!(env["MLFLOW_TRACKING_URI"], w.uri);
    assert_eq!(env["MLFLOW_EXPERIMENT_ID"], run.mlflow_experiment_id.clone().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_bad_input_and_outages_are_reported_and_nothing_is_lost() {
    let Some(mut w) = World::new("rt-bad", false).await else { return };
    // A template without containers: refused at apply, with the schema's message.
    let no_containers = policy_yaml(&w.node, &w.models, &Policy { name: "empty", ..Policy::default() }).replacen(
        "          containers:\n",
        "          containers: []\n          unused:\n",
        1,
    );
    let err = w.env.apply_yaml(&no_containers).unwrap_err();
    assert!(err.contains("containers") && err.contains("should have at least 1 items"), "{err}");
    // A ModelDeployment that does not exist: Ready=False with what to fix.
    w.apply(&Policy { name: "orphan", md: "missing", ..Policy::default() });
    let orphan = w
        .env
        .wait_for::<RetrainPolicy, _>("orphan", "DeploymentNotFound", RUN_T, |p| {
            st(p).conditions.iter().any(|c| c.type_ == "Ready" && c.reason == "DeploymentNotFound")
        })
        .await;
    let ready = st(&orphan).conditions.into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert!(ready.message.contains("ModelDeployment \"missing\" not found"), "{}", ready.message);

    // Prometheus and MLflow both unreachable: the operator restarts with dead addresses for both.
    w.env.kill_operator();
    w.env
        .start_operator_with_prometheus(
            "http://127.0.0.1:9",
            "mlflow:\n  trackingUri: \"http://127.0.0.1:9\"\n  pollInterval: 2s",
        )
        .await;
    let triggers = "{checkInterval: 1s, metrics: [{name: drift, prometheus: {query: 'max(champion_e2e_feature_psi)'}, thresholdRange: {max: 0.2}}]}";
    w.apply(&Policy { name: "watcher", triggers, ..Policy::default() });
    let watcher = w
        .env
        .wait_for::<RetrainPolicy, _>("watcher", "TriggerUnavailable", RUN_T, |p| {
            st(p).conditions.iter().any(|c| c.type_ == "Degraded" && c.reason == "TriggerUnavailable")
        })
        .await;
    let degraded = st(&watcher).conditions.into_iter().find(|c| c.type_ == "Degraded").unwrap();
    assert!(degraded.message.contains("trigger drift: the query failed"), "{}", degraded.message);
    assert!(runs(&watcher).is_empty(), "no run from a query that failed");

    // A run trains and evaluates untracked, and waits in Promoting while the registry is down.
    w.apply(&Policy::default());
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    let waiting = w
        .env
        .wait_for::<RetrainPolicy, _>("retrain", "the promotion waits", RUN_T, |p| {
            runs(p).first().is_some_and(|r| r.stage == Some(champion::api::retrain_policy::RunStage::Promoting))
        })
        .await;
    let run = runs(&waiting)[0].clone();
    assert!(run.tracking.as_deref().unwrap_or_default().starts_with("not tracked"), "{run:?}");
    assert_eq!(run.decision, RunDecision::Running);
    let promotion_failed = eventually("a PromotionFailed Event", RUN_T, || async {
        event_notes(&w.env, "PromotionFailed").into_iter().find(|n| n.contains("promotion waits"))
    })
    .await;
    assert!(promotion_failed.contains("the registry call failed"), "{promotion_failed}");
    assert!(!event_notes(&w.env, "TrackingUnavailable").is_empty(), "the untracked run was said");
    let c = mlflow(&w.uri);
    assert_eq!(c.get_model_version_by_alias(&w.model, "champion").await.unwrap().version, "1", "nothing promoted");
    let md = w.env.api::<ModelDeployment>().get("scorer").await.unwrap();
    assert!(status(&md).candidate.is_none() && status(&md).stable.is_some(), "the champion keeps serving");

    // MLflow is back (the operator's config names it again): the promotion completes, nothing was lost.
    w.env.kill_operator();
    w.env.start_operator_with(&format!("mlflow:\n  trackingUri: {:?}\n  pollInterval: 2s", w.uri)).await;
    let run = w.run_ended("retrain", "r-0001").await;
    assert_eq!(run.decision, RunDecision::Promoted, "{run:?}");
    assert_eq!(c.get_model_version_by_alias(&w.model, "champion").await.unwrap().version, "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_concurrency_policy_replace_cancels_the_run_under_way_and_forbid_drops_the_firing() {
    let Some(w) = World::new("rt-replace", false).await else { return };
    let api: Api<Job> = w.env.api();
    let run_jobs = |id: &str| ListParams::default().labels(&format!("champion.ml/run={id}"));
    // Forbid: a request during a run is dropped, with an Event that says why.
    let mut p = Policy { train_env: "{name: TRAIN_SECONDS, value: \"30\"}", ..Policy::default() };
    w.apply(&p);
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    eventually("r-0001's Job", RUN_T, || async {
        api.list(&run_jobs("r-0001")).await.unwrap().items.into_iter().next()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    let dropped = eventually("a TriggerDropped Event", RUN_T, || async {
        event_notes(&w.env, "TriggerDropped").into_iter().next()
    })
    .await;
    assert!(dropped.contains("run r-0001 is under way and concurrencyPolicy is Forbid"), "{dropped}");
    let pol = w.env.api::<RetrainPolicy>().get("retrain").await.unwrap();
    assert_eq!(st(&pol).runs_started, Some(1));

    // Replace: the next request stops r-0001 (Cancelled, its Jobs deleted) and starts r-0002.
    p.concurrency = "Replace";
    p.train_env = "{name: TRAIN_SECONDS, value: \"1\"}";
    w.apply(&p);
    assert!(w.env.plugin(&["retrain", "retrain"]).status.success());
    let first = w.run_ended("retrain", "r-0001").await;
    assert_eq!(first.decision, RunDecision::Cancelled, "{first:?}");
    assert!(
        first
            .reason
            .as_deref()
            .unwrap()
            .contains("replaced by a new run (trigger manual; concurrencyPolicy is Replace)")
    );
    eventually("r-0001's Jobs are deleted", RUN_T, || async {
        api.list(&run_jobs("r-0001"))
            .await
            .unwrap()
            .items
            .iter()
            .all(|j| j.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
    let second = w.run_ended("retrain", "r-0002").await;
    assert_eq!(second.decision, RunDecision::Promoted, "{second:?}");
    assert!(event_notes(&w.env, "RunCancelled").iter().any(|n| n.starts_with("run r-0001: replaced")));
}
