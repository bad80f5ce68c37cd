//! Every file in `examples/` on the real API server: each valid example applies and reaches its first
//! status from the operator; each `examples/invalid/*.yaml` is refused by the API server with the CEL
//! message its first line (`# expect: <message>`) names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use champion::api::{Experiment, ExperimentPhase, ModelDeployment, RetrainPhase, RetrainPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::harness::{TestEnv, repo_root};

const STATUS_TIMEOUT: Duration = Duration::from_secs(60);
const EXPECT_PREFIX: &str = "# expect: ";

/// The `*.yaml` files of a folder, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

/// The first status is there: this generation observed, and a Ready condition that is not InvalidSpec.
fn first_status(generation: Option<i64>, observed: Option<i64>, conditions: &[Condition]) -> bool {
    generation.is_some()
        && observed == generation
        && conditions.iter().any(|c| c.type_ == "Ready" && c.reason != "InvalidSpec")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_applies_and_reaches_its_first_status() {
    let mut env = TestEnv::new("examples").await;
    // The registry-alias example needs an MLflow server in the config; here it is one that cannot be reached
    // (its first status says so: RegistryUnreachable). `follow::the_registry_example_follows_its_alias_and_serves`
    // applies it against the real MLflow.
    env.start_operator_with("mlflow: {trackingUri: \"http://127.0.0.1:9\"}").await;

    // kind -> (file, name) of every object the examples create
    let mut objects: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let files = yaml_files(&repo_root().join("examples"));
    assert!(!files.is_empty(), "examples/ has no *.yaml");
    for file in &files {
        let shown = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let out = env.kubectl(&["apply", "-f", &file.to_string_lossy(), "-o", "name"]);
        assert!(out.status.success(), "kubectl apply -f {shown}: {}", String::from_utf8_lossy(&out.stderr));
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (resource, name) = line.split_once('/').unwrap_or_else(|| panic!("{shown}: odd output {line:?}"));
            objects.entry(resource.to_string()).or_default().push((shown.clone(), name.to_string()));
        }
    }
    for kind in ["modeldeployment.champion.ml", "experiment.champion.ml", "retrainpolicy.champion.ml"] {
        assert!(objects.contains_key(kind), "examples/ has no file with a {kind}: {objects:?}");
    }

    for (resource, list) in &objects {
        for (file, name) in list {
            let what = format!("the first status of {resource}/{name} from {file}");
            match resource.as_str() {
                "modeldeployment.champion.ml" => {
                    env.wait_for::<ModelDeployment, _>(name, &what, STATUS_TIMEOUT, |o| {
                        let s = o.status.clone().unwrap_or_default();
                        first_status(o.metadata.generation, s.observed_generation, &s.conditions)
                    })
                    .await;
                }
                "experiment.champion.ml" => {
                    // Pending (waiting for its turn, its deployment's rollout, or its variants' pods) or
                    // Running.
                    let what = format!("{what} (phase Pending or Running)");
                    env.wait_for::<Experiment, _>(name, &what, STATUS_TIMEOUT, |o| {
                        let s = o.status.clone().unwrap_or_default();
                        first_status(o.metadata.generation, s.observed_generation, &s.conditions)
                            && matches!(s.phase, Some(ExperimentPhase::Pending | ExperimentPhase::Running))
                    })
                    .await;
                }
                "retrainpolicy.champion.ml" => {
                    env.wait_for::<RetrainPolicy, _>(name, &format!("{what} (phase Idle)"), STATUS_TIMEOUT, |o| {
                        let s = o.status.clone().unwrap_or_default();
                        first_status(o.metadata.generation, s.observed_generation, &s.conditions)
                            && s.phase == Some(RetrainPhase::Idle)
                    })
                    .await;
                }
                other => panic!("an example creates a {other}, which this test does not know how to check"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_examples_are_rejected_by_the_apiserver() {
    let env = TestEnv::new("invalid-examples").await;
    let files = yaml_files(&repo_root().join("examples/invalid"));
    assert!(!files.is_empty(), "examples/invalid/ has no *.yaml");
    for file in files {
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read {shown}: {e}"));
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix(EXPECT_PREFIX))
            .unwrap_or_else(|| panic!("{shown}: the first line must be `{EXPECT_PREFIX}<CEL message>`"))
            .trim();
        match env.apply_file(&file) {
            Ok(stdout) => panic!("{shown} was accepted by the API server: {stdout}"),
            Err(stderr) => assert!(stderr.contains(expect), "{shown}: stderr does not contain {expect:?}:\n{stderr}"),
        }
    }
}
