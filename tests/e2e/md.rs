//! ModelDeployment helpers shared by the rollout and bad-input tests: a manifest builder, status
//! accessors, and the user actions (ship a version, run a plugin verb).

use std::time::Duration;

use champion::api::{DeploymentPhase, ModelDeployment, ModelDeploymentStatus};

use crate::harness::{TestEnv, output_text};

/// How long a status may take to reach what a test waits for.
pub const T: Duration = Duration::from_secs(60);

/// A ModelDeployment manifest: the replicas router unless `traffic` says otherwise, and one background
/// metric `error-rate` (default: the test exporter's `champion_e2e_error_rate` for the candidate) measured
/// every 2 s.
pub struct MdYaml {
    pub name: &'static str,
    pub version: &'static str,
    pub replicas: i32,
    pub traffic: &'static str,
    pub steps: &'static str,
    pub failure_limit: i32,
    pub query: &'static str,
    pub deadline: &'static str,
    pub pod_spec_extra: &'static str,
    /// `strategy.scaleDownDelay` (default 1s, so tests that wait for pods to go do not wait 30 s).
    pub scale_down_delay: &'static str,
}

impl MdYaml {
    pub fn new(name: &'static str, version: &'static str) -> Self {
        MdYaml {
            name,
            version,
            replicas: 2,
            traffic: "",
            steps: "[{setWeight: 50}]",
            failure_limit: 0,
            query: r#"champion_e2e_error_rate{namespace="{{namespace}}",variant="{{variant}}"}"#,
            deadline: "10m",
            pod_spec_extra: "",
            scale_down_delay: "1s",
        }
    }

    pub fn render(&self) -> String {
        let MdYaml {
            name,
            version,
            replicas,
            traffic,
            steps,
            failure_limit,
            query,
            deadline,
            pod_spec_extra,
            scale_down_delay,
        } = self;
        format!(
            r#"apiVersion: champion.ml/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}}}
spec:
  model: {{version: "{version}", uri: "s3://models/{name}/{version}"}}
  replicas: {replicas}
  template:
    spec:
      {pod_spec_extra}
      containers: [{{name: server, image: "example.invalid/server:1"}}]
{traffic}
  strategy:
    progressDeadline: {deadline}
    scaleDownDelay: {scale_down_delay}
    canary:
      steps: {steps}
      analysis:
        interval: 2s
        failureLimit: {failure_limit}
        metrics:
        - name: error-rate
          prometheus: {{query: '{query}'}}
          thresholdRange: {{max: 0.01}}
"#
        )
    }
}

pub fn status(md: &ModelDeployment) -> ModelDeploymentStatus {
    md.status.clone().unwrap_or_default()
}

pub fn phase(md: &ModelDeployment) -> Option<DeploymentPhase> {
    status(md).phase
}

pub fn stable_version(md: &ModelDeployment) -> Option<String> {
    status(md).stable.map(|s| s.version)
}

/// The Degraded condition as (status, reason, message).
pub fn degraded(md: &ModelDeployment) -> Option<(String, String, String)> {
    status(md).conditions.into_iter().find(|c| c.type_ == "Degraded").map(|c| (c.status, c.reason, c.message))
}

/// Changes the model version (and URI) the way a user's `kubectl apply` would.
pub fn ship(env: &TestEnv, name: &str, version: &str) {
    let patch = format!(r#"{{"spec":{{"model":{{"version":"{version}","uri":"s3://models/{name}/{version}"}}}}}}"#);
    let out = env.kubectl(&["patch", "modeldeployment", name, "--type=merge", "-p", &patch]);
    assert!(out.status.success(), "patch version: {}", output_text(&out));
}

/// Runs a `kubectl champion` verb and expects it to succeed.
pub fn plugin(env: &TestEnv, args: &[&str]) {
    let out = env.plugin(args);
    assert!(out.status.success(), "kubectl champion {args:?}: {}", output_text(&out));
}

pub async fn wait_healthy(env: &TestEnv, name: &str, version: &str) -> ModelDeployment {
    let v = version.to_string();
    env.wait_for::<ModelDeployment, _>(name, &format!("{name} Healthy on {version}"), T, move |md| {
        phase(md) == Some(DeploymentPhase::Healthy) && stable_version(md).as_deref() == Some(v.as_str())
    })
    .await
}
