//! The files in `examples/` are documentation that must keep working: every `examples/*.yaml` parses
//! into its typed resource with no unknown fields, passes the CRD's CEL rules client-side, decodes its
//! pod and Job templates, parses its durations and passes the operator's own validation (against the
//! config that `config/` installs); every `examples/invalid/*.yaml` passes all that but fails exactly
//! the one CEL rule that its first line (`# expect: <message>`) names. Two more tests check `config/`:
//! the shipped operator configs load, and the namespaced Role grants what the ClusterRole grants.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use champion::api::{Duration, Experiment, ModelDeployment, RetrainPolicy};
use champion::config::{MlflowConfig, OperatorConfig};
use champion::validation;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Examples that must exist (more may be added; each is checked).
const EXPECTED_VALID: &[&str] = &[
    "experiment-ab.yaml",
    "experiment-shadow.yaml",
    "modeldeployment-gateway-canary.yaml",
    "modeldeployment-istio.yaml",
    "modeldeployment-registry-alias.yaml",
    "modeldeployment-replicas.yaml",
    "retrainpolicy.yaml",
];

/// Deliberately invalid manifests that must exist, at least one per kind.
const EXPECTED_INVALID: &[&str] =
    &["experiment.yaml", "modeldeployment-long-name.yaml", "modeldeployment.yaml", "retrainpolicy.yaml"];

const API_VERSION: &str = "champion.ml/v1alpha1";
const EXPECT_PREFIX: &str = "# expect: ";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// The operator config that `config/` installs, plus an MLflow server (which the shipped file leaves
/// commented out) for the examples that follow a registry alias.
fn operator_config() -> OperatorConfig {
    let path = config_dir().join("operator/config.yaml");
    let mut config = OperatorConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    config
        .mlflow
        .get_or_insert(MlflowConfig { tracking_uri: "http://mlflow.mlflow:5000".into(), ..MlflowConfig::default() });
    config
}

/// The `.yaml` files directly in `dir`, sorted; a `.yml` file is an error, so that none is skipped.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml") => files.push(path),
            Some("yml") => panic!("{}: name example files *.yaml", path.display()),
            _ => {}
        }
    }
    files.sort();
    files
}

fn file_names(files: &[PathBuf]) -> BTreeSet<String> {
    files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
}

/// One parsed example, typed by its kind.
enum Resource {
    ModelDeployment(Box<ModelDeployment>),
    Experiment(Box<Experiment>),
    RetrainPolicy(Box<RetrainPolicy>),
}

impl Resource {
    fn kind(&self) -> &'static str {
        match self {
            Resource::ModelDeployment(_) => "ModelDeployment",
            Resource::Experiment(_) => "Experiment",
            Resource::RetrainPolicy(_) => "RetrainPolicy",
        }
    }

    fn name(&self) -> String {
        let meta = match self {
            Resource::ModelDeployment(r) => &r.metadata,
            Resource::Experiment(r) => &r.metadata,
            Resource::RetrainPolicy(r) => &r.metadata,
        };
        meta.name.clone().unwrap_or_default()
    }

    /// The ModelDeployment an Experiment or RetrainPolicy refers to.
    fn deployment_ref(&self) -> Option<&str> {
        match self {
            Resource::ModelDeployment(_) => None,
            Resource::Experiment(x) => Some(&x.spec.deployment_ref.name),
            Resource::RetrainPolicy(p) => Some(&p.spec.deployment_ref.name),
        }
    }

    /// Runs the CRD's CEL rules (creation rules only: there is no old object).
    fn validate_cel(&self) -> Result<(), kube::core::cel::ValidationErrors> {
        match self {
            Resource::ModelDeployment(r) => kube::core::cel::validate_cel(r.as_ref()),
            Resource::Experiment(r) => kube::core::cel::validate_cel(r.as_ref()),
            Resource::RetrainPolicy(r) => kube::core::cel::validate_cel(r.as_ref()),
        }
    }

    /// The checks the operator makes beyond CEL (providers, query placeholders, cron, time zones).
    fn operator_checks(&self, config: &OperatorConfig) -> Vec<validation::FieldError> {
        match self {
            Resource::ModelDeployment(r) => validation::model_deployment::validate(&r.spec, config),
            Resource::Experiment(r) => validation::experiment::validate(&r.spec, config),
            Resource::RetrainPolicy(r) => validation::retrain_policy::validate(&r.spec, config),
        }
    }

    /// Decodes the embedded pod and Job templates into the typed Kubernetes objects, with no field lost.
    fn check_templates(&self) -> Result<(), String> {
        match self {
            Resource::ModelDeployment(md) => {
                let t = decode_exactly("spec.template", &md.spec.template.0, || md.spec.template.decode())?;
                if t.spec.is_none_or(|s| s.containers.is_empty()) {
                    return Err("spec.template.spec.containers is empty".into());
                }
            }
            Resource::Experiment(_) => {}
            Resource::RetrainPolicy(p) => {
                for (what, template) in [
                    ("spec.training.template", &p.spec.training.template),
                    ("spec.evaluation.template", &p.spec.evaluation.template),
                ] {
                    let job = decode_exactly(what, &template.0, || template.decode())?;
                    if job.spec.and_then(|s| s.template.spec).is_none_or(|s| s.containers.is_empty()) {
                        return Err(format!("{what}.spec.template.spec.containers is empty"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every duration field that is set, with its path.
    fn durations(&self) -> Vec<(String, &Duration)> {
        let mut out = Vec::new();
        match self {
            Resource::ModelDeployment(md) => {
                if let Some(strategy) = &md.spec.strategy {
                    out.extend(strategy.progress_deadline.iter().map(|d| ("spec.strategy.progressDeadline".into(), d)));
                    if let Some(canary) = &strategy.canary {
                        for (i, step) in canary.steps.iter().enumerate() {
                            if let Some(d) = step.pause.as_ref().and_then(|p| p.duration.as_ref()) {
                                out.push((format!("spec.strategy.canary.steps[{i}].pause.duration"), d));
                            }
                            if let Some(m) = &step.mirror {
                                out.push((format!("spec.strategy.canary.steps[{i}].mirror.duration"), &m.duration));
                            }
                        }
                        if let Some(d) = canary.analysis.as_ref().and_then(|a| a.interval.as_ref()) {
                            out.push(("spec.strategy.canary.analysis.interval".into(), d));
                        }
                    }
                }
            }
            Resource::Experiment(x) => out.push(("spec.decision.maxDuration".into(), &x.spec.decision.max_duration)),
            Resource::RetrainPolicy(p) => {
                out.extend(p.spec.cooldown.iter().map(|d| ("spec.cooldown".into(), d)));
                for (i, m) in p.spec.triggers.iter().flat_map(|t| t.metrics.iter()).enumerate() {
                    out.extend(m.for_.iter().map(|d| (format!("spec.triggers.metrics[{i}].for"), d)));
                }
            }
        }
        out
    }
}

/// Paths of fields that `written` has and `typed` (the re-serialized typed object) lost or changed:
/// unknown or misspelt fields that serde ignored, and which the API server would reject or prune.
fn lost_fields(written: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (written, typed) {
        (Value::Object(w), Value::Object(t)) => {
            for (k, wv) in w {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match t.get(k) {
                    Some(tv) => lost_fields(wv, tv, &p, out),
                    None if wv.is_null() => {}
                    None => out.push(format!("{p} (unknown field)")),
                }
            }
        }
        (Value::Array(w), Value::Array(t)) if w.len() == t.len() => {
            for (i, (wv, tv)) in w.iter().zip(t).enumerate() {
                lost_fields(wv, tv, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Number(w), Value::Number(t)) if w.as_f64() == t.as_f64() => {}
        (w, t) if w == t => {}
        (w, t) => out.push(format!("{path} (written {w}, read back as {t})")),
    }
}

/// Decodes an open template into its Kubernetes type and checks that no written field was dropped.
fn decode_exactly<T: Serialize>(
    what: &str,
    raw: &Value,
    decode: impl FnOnce() -> Result<T, serde_json::Error>,
) -> Result<T, String> {
    let typed = decode().map_err(|e| format!("{what} does not decode: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| format!("{what} does not serialize back: {e}"))?;
    let mut lost = Vec::new();
    lost_fields(raw, &back, what, &mut lost);
    if lost.is_empty() { Ok(typed) } else { Err(format!("fields not in the Kubernetes API: {}", lost.join(", "))) }
}

/// Deserializes `value` into `T` and checks that no written field was dropped on the way.
fn typed<T: DeserializeOwned + Serialize>(value: &Value) -> Result<T, String> {
    let obj: T = serde_json::from_value(value.clone()).map_err(|e| format!("does not deserialize: {e}"))?;
    let back = serde_json::to_value(&obj).map_err(|e| format!("does not serialize back: {e}"))?;
    let mut lost = Vec::new();
    lost_fields(value, &back, "", &mut lost);
    if lost.is_empty() { Ok(obj) } else { Err(format!("fields not in the API: {}", lost.join(", "))) }
}

/// Reads one manifest, checks its header fields and deserializes it by its kind.
fn load(path: &Path) -> Result<(String, Resource), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let value: Value = serde_saphyr::from_str(&text).map_err(|e| format!("not one YAML document: {e}"))?;
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    if api_version != Some(API_VERSION) {
        return Err(format!("apiVersion is {api_version:?}, want {API_VERSION:?}"));
    }
    let meta = value.get("metadata").ok_or("no metadata")?;
    if meta.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err("no metadata.name".into());
    }
    if meta.get("namespace").is_some() {
        return Err("sets metadata.namespace (tests apply examples into a namespace of their own)".into());
    }
    let resource = match value.get("kind").and_then(Value::as_str) {
        Some("ModelDeployment") => Resource::ModelDeployment(Box::new(typed(&value)?)),
        Some("Experiment") => Resource::Experiment(Box::new(typed(&value)?)),
        Some("RetrainPolicy") => Resource::RetrainPolicy(Box::new(typed(&value)?)),
        other => return Err(format!("unexpected kind {other:?}")),
    };
    Ok((text, resource))
}

/// The checks every manifest must pass apart from CEL: templates decode, durations parse, and the
/// operator's own validation finds nothing.
fn check_shape(resource: &Resource, config: &OperatorConfig) -> Result<(), String> {
    resource.check_templates()?;
    for (path, d) in resource.durations() {
        d.to_std().map_err(|e| format!("{path}: {e}"))?;
    }
    let errors = resource.operator_checks(config);
    if !errors.is_empty() {
        return Err(format!("the operator would refuse it: {}", validation::summarize(&errors)));
    }
    Ok(())
}

fn fail_if_any(problems: Vec<String>) {
    assert!(problems.is_empty(), "{} problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

#[test]
fn examples_folder_holds_every_expected_file() {
    let valid = file_names(&yaml_files(&examples_dir()));
    let invalid = file_names(&yaml_files(&examples_dir().join("invalid")));
    let mut problems = Vec::new();
    for want in EXPECTED_VALID {
        if !valid.contains(*want) {
            problems.push(format!("examples/{want} is missing"));
        }
    }
    for want in EXPECTED_INVALID {
        if !invalid.contains(*want) {
            problems.push(format!("examples/invalid/{want} is missing"));
        }
    }
    fail_if_any(problems);
}

#[test]
fn every_example_is_valid() {
    let files = yaml_files(&examples_dir());
    let config = operator_config();
    let mut problems = Vec::new();
    if files.len() < EXPECTED_VALID.len() {
        problems.push(format!("only {} example files in examples/, want {}", files.len(), EXPECTED_VALID.len()));
    }
    let mut loaded = Vec::new();
    for path in &files {
        let file = format!("examples/{}", path.file_name().unwrap().to_string_lossy());
        let (text, resource) = match load(path) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{file}: {e}"));
                continue;
            }
        };
        if !text.starts_with("# ") {
            problems.push(format!("{file}: should start with a comment saying what it shows"));
        }
        if let Err(e) = resource.validate_cel() {
            problems.push(format!("{file}: fails the CRD's CEL rules: {e}"));
        }
        if let Err(e) = check_shape(&resource, &config) {
            problems.push(format!("{file}: {e}"));
        }
        loaded.push((file, resource));
    }

    // Each kind has an example, and examples can share one namespace (no two of a kind share a name).
    let mut names: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (_, r) in &loaded {
        names.entry(r.kind()).or_default().push(r.name());
    }
    for kind in ["ModelDeployment", "Experiment", "RetrainPolicy"] {
        match names.get(kind) {
            None => problems.push(format!("no example of kind {kind}")),
            Some(n) if n.iter().collect::<BTreeSet<_>>().len() != n.len() => {
                problems.push(format!("two {kind} examples share a name: {n:?}"))
            }
            Some(_) => {}
        }
    }

    // Every reference to a ModelDeployment names one that an example defines.
    let deployments = names.get("ModelDeployment").cloned().unwrap_or_default();
    for (file, r) in &loaded {
        if let Some(target) = r.deployment_ref()
            && !deployments.iter().any(|d| d == target)
        {
            problems.push(format!("{file}: deploymentRef {target:?} is not a ModelDeployment in examples/"));
        }
    }
    fail_if_any(problems);
}

#[test]
fn every_invalid_example_fails_its_rule() {
    let files = yaml_files(&examples_dir().join("invalid"));
    let config = operator_config();
    let mut problems = Vec::new();
    if files.len() < EXPECTED_INVALID.len() {
        problems.push(format!("only {} files in examples/invalid/, want {}", files.len(), EXPECTED_INVALID.len()));
    }
    let mut kinds = BTreeSet::new();
    for path in &files {
        let file = format!("examples/invalid/{}", path.file_name().unwrap().to_string_lossy());
        let (text, resource) = match load(path) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{file}: must parse (only a CEL rule may fail): {e}"));
                continue;
            }
        };
        kinds.insert(resource.kind());
        let expect = match text.lines().next().and_then(|l| l.strip_prefix(EXPECT_PREFIX)).map(str::trim) {
            Some(m) if !m.is_empty() => m,
            _ => {
                problems.push(format!("{file}: the first line must be `{EXPECT_PREFIX}<CEL rule message>`"));
                continue;
            }
        };
        if let Err(e) = check_shape(&resource, &config) {
            problems.push(format!("{file}: {e}"));
        }
        match resource.validate_cel() {
            Ok(()) => problems.push(format!("{file}: passes the CEL rules, but should fail with {expect:?}")),
            // Exactly one failure, so the file shows the one rule it is about.
            Err(errors) => match errors.as_slice() {
                [one] if one.message.contains(expect) => {}
                _ => problems.push(format!("{file}: want exactly one error containing {expect:?}, got {errors}")),
            },
        }
    }
    for kind in ["ModelDeployment", "Experiment", "RetrainPolicy"] {
        if !kinds.contains(kind) {
            problems.push(format!("examples/invalid/ has no {kind}"));
        }
    }
    fail_if_any(problems);
}

/// The namespaced install (`config/namespaced/`) grants in each watched namespace exactly what the
/// cluster-wide install grants everywhere, and its operator config names those namespaces.
#[test]
fn namespaced_role_matches_cluster_role() {
    let read = |p: &str| -> Value {
        let text = std::fs::read_to_string(config_dir().join(p)).unwrap_or_else(|e| panic!("config/{p}: {e}"));
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("config/{p}: {e}"))
    };
    let cluster_role = read("rbac/clusterrole.yaml");
    let role = read("namespaced/role.yaml");
    assert_eq!(cluster_role["kind"], "ClusterRole");
    assert_eq!(role["kind"], "Role");
    assert!(cluster_role["rules"].as_array().is_some_and(|r| !r.is_empty()), "ClusterRole has no rules");
    assert_eq!(role["rules"], cluster_role["rules"], "config/namespaced/role.yaml and config/rbac/clusterrole.yaml");

    let binding = read("namespaced/rolebinding.yaml");
    let namespace = role["metadata"]["namespace"].as_str().expect("the Role has a namespace");
    assert_eq!(binding["metadata"]["namespace"], namespace, "the RoleBinding is in the Role's namespace");
    let config = OperatorConfig::load(&config_dir().join("namespaced/config.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.namespaces, [namespace], "config/namespaced/config.yaml watches the Role's namespace");
}

/// The config that `config/` installs loads, names a default Prometheus and watches every namespace.
#[test]
fn shipped_operator_config_loads() {
    let config = OperatorConfig::load(&config_dir().join("operator/config.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.prometheus_url(None).is_some(), "no default Prometheus provider");
    assert!(config.namespaces.is_empty(), "the cluster-wide install watches all namespaces");
}

/// The commented-out `mlflow:` block of the shipped configs is valid once uncommented, token reference
/// included.
#[test]
fn shipped_mlflow_config_example_loads_when_uncommented() {
    for file in ["operator/config.yaml", "namespaced/config.yaml"] {
        let path = config_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let uncommented = text
            .replace("# mlflow:\n", "mlflow:\n")
            .replace("#   trackingUri:", "  trackingUri:")
            .replace("#   tokenSecretRef:", "  tokenSecretRef:")
            .replace("#   pollInterval:", "  pollInterval:")
            .replace("#   requestTimeout:", "  requestTimeout:");
        assert_ne!(uncommented, text, "{file} has no commented mlflow block");
        let config = OperatorConfig::parse(&uncommented, file).unwrap_or_else(|e| panic!("{e}"));
        let mlflow = config.mlflow.unwrap_or_else(|| panic!("{file}: the mlflow block did not uncomment"));
        let secret = mlflow.token_secret_ref.clone().unwrap_or_else(|| panic!("{file}: no tokenSecretRef"));
        assert_eq!((secret.name.as_str(), secret.key.as_str()), ("champion-mlflow-token", "token"), "{file}");
        assert_eq!(mlflow.poll_interval(), std::time::Duration::from_secs(30), "{file}");
        assert_eq!(mlflow.request_timeout(), std::time::Duration::from_secs(10), "{file}");
        // The Role that lets the operator read the token names that Secret, and only it.
        let role = std::fs::read_to_string(config_dir().join("operator/registry-token-role.yaml")).unwrap();
        assert!(role.contains(&format!("resourceNames: [\"{}\"]", secret.name)), "{file}: {role}");
    }
}
