//! The end-to-end harness: a fresh namespace per test on the real control plane of `tests/cluster/`, the
//! real `champion` binary as a child process under the RBAC of `config/`, and helpers to apply manifests,
//! wait on objects, set metrics and read Events.
//!
//! The cluster and Prometheus are started outside the test binary (by `hack/test.sh`), which passes their
//! folder in `CHAMPION_E2E_DIR`: `env` (KUBECONFIG, KUBECTL, CLUSTER_BIN, ...) and `prometheus.env`
//! (PROMETHEUS_URL, EXPORTER_URL), and `mlflow.env` (MLFLOW_TRACKING_URI) when MLflow runs (optional: a
//! test that needs it fails with a clear message when it is absent). Once per test process the harness installs `config/` with
//! `kubectl apply -k` and mints a token kubeconfig for `champion-system/champion`, so the operator runs with
//! exactly the permissions that a real install gives it: a missing permission fails a test.
//!
//! Each test's files (operator config and log) live in `$CHAMPION_E2E_DIR/e2e/<namespace>/`. When a test
//! panics, the drop of its `TestEnv` prints the operator log's tail, the namespace's objects and Events.
//! The drop always stops the operator and deletes the namespace.

// Tests use different parts of this API; not every helper is used by every build of the tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::NamespaceResourceScope;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How often `wait_for` and `eventually` look again.
const POLL: Duration = Duration::from_millis(200);
/// How long the operator may take to answer `/readyz` with 200.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long the operator may take to exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// The ServiceAccount the operator runs as (from `config/`).
const OPERATOR_NAMESPACE: &str = "champion-system";
const OPERATOR_SERVICE_ACCOUNT: &str = "champion";
/// The CRDs that `config/` installs.
pub const CRDS: [&str; 3] = ["modeldeployments.champion.ml", "experiments.champion.ml", "retrainpolicies.champion.ml"];
/// Label on every test namespace, so leftovers are easy to find.
pub const E2E_LABEL: &str = "champion.ml/e2e";

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What the once-per-process setup found and made.
#[derive(Debug, Clone)]
struct Cluster {
    /// `$CHAMPION_E2E_DIR`.
    dir: PathBuf,
    /// The admin (system:masters) kubeconfig.
    admin_kubeconfig: PathBuf,
    /// The token kubeconfig of champion-system/champion.
    sa_kubeconfig: PathBuf,
    /// The built kubectl (same version as the API server).
    kubectl: PathBuf,
    prometheus_url: String,
    exporter_url: String,
    /// From `mlflow.env`; `None` when MLflow was not started (`tests/cluster/mlflow.sh`).
    mlflow_tracking_uri: Option<String>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The cluster of `$CHAMPION_E2E_DIR`, with `config/` installed (once per process).
fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(setup) {
        Ok(c) => c,
        Err(e) => panic!("end-to-end setup failed: {e}"),
    }
}

fn setup() -> Result<Cluster, String> {
    let dir = std::env::var_os("CHAMPION_E2E_DIR").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "CHAMPION_E2E_DIR is not set. The end-to-end tests need a running control plane and Prometheus: \
             run `hack/test.sh` (it builds and starts them, runs every test and tears everything down)."
        )
    });
    let env = read_env_file(&dir.join("env"))?;
    let prom = read_env_file(&dir.join("prometheus.env"))?;
    let mlflow_env = dir.join("mlflow.env");
    let mlflow = if mlflow_env.exists() { Some(read_env_file(&mlflow_env)?) } else { None };
    let get = |m: &BTreeMap<String, String>, file: &str, k: &str| {
        m.get(k).cloned().ok_or_else(|| format!("{} has no {k}", dir.join(file).display()))
    };
    let cluster = Cluster {
        admin_kubeconfig: PathBuf::from(get(&env, "env", "KUBECONFIG")?),
        kubectl: PathBuf::from(get(&env, "env", "KUBECTL")?),
        prometheus_url: get(&prom, "prometheus.env", "PROMETHEUS_URL")?,
        exporter_url: get(&prom, "prometheus.env", "EXPORTER_URL")?,
        mlflow_tracking_uri: match &mlflow {
            Some(m) => Some(get(m, "mlflow.env", "MLFLOW_TRACKING_URI")?),
            None => None,
        },
        sa_kubeconfig: dir.join("e2e").join("champion-sa.kubeconfig"),
        dir,
    };
    let admin = |args: &[&str]| -> Result<String, String> {
        let out = Command::new(&cluster.kubectl)
            .arg("--kubeconfig")
            .arg(&cluster.admin_kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", cluster.kubectl.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("kubectl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
        }
    };
    let config_dir = repo_root().join("config");
    admin(&["apply", "-k", &config_dir.to_string_lossy()])?;
    let mut wait = vec!["wait", "--for=condition=Established", "--timeout=60s"];
    let crds: Vec<String> = CRDS.iter().map(|c| format!("crd/{c}")).collect();
    wait.extend(crds.iter().map(String::as_str));
    admin(&wait)?;
    let out = Command::new(repo_root().join("tests/cluster/sa-kubeconfig.sh"))
        .arg(&cluster.dir)
        .arg(OPERATOR_NAMESPACE)
        .arg(OPERATOR_SERVICE_ACCOUNT)
        .arg(&cluster.sa_kubeconfig)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run sa-kubeconfig.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!("sa-kubeconfig.sh failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(cluster)
}

/// Reads `export KEY=VALUE` lines as written by `printf 'export K=%q'` (backslash escapes only).
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = fs::read_to_string(path).map_err(|e| {
        format!("cannot read {}: {e} (is the cluster and Prometheus of hack/test.sh running?)", path.display())
    })?;
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("export ") else { continue };
        let Some((key, raw)) = rest.split_once('=') else { continue };
        if raw.starts_with("$'") {
            return Err(format!("{}: {key} uses $'...' quoting, which the harness does not read", path.display()));
        }
        let mut value = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '\'' => value.extend(chars.by_ref().take_while(|&c| c != '\'')),
                c => value.push(c),
            }
        }
        vars.insert(key.to_string(), value);
    }
    Ok(vars)
}

/// A namespace name `<prefix>-<random>`: lowercase, at most 63 characters.
fn namespace_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default();
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64 finaliser: neighbouring inputs give unrelated suffixes
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let mut suffix = String::new();
    for _ in 0..8 {
        suffix.push(char::from_digit((x % 36) as u32, 36).unwrap_or('0'));
        x /= 36;
    }
    let mut clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
        .collect();
    clean.truncate(63 - 1 - suffix.len());
    let clean = clean.trim_matches('-');
    if clean.is_empty() { format!("e2e-{suffix}") } else { format!("{clean}-{suffix}") }
}

/// The operator child process.
struct Operator {
    child: Child,
    port: u16,
}

/// One test's namespace, operator and work folder.
pub struct TestEnv {
    /// The test's own namespace (`<prefix>-<random>`).
    pub ns: String,
    cluster: &'static Cluster,
    client: Client,
    work_dir: PathBuf,
    operator: Option<Operator>,
    starts: u32,
}

impl TestEnv {
    /// Installs `config/` (once per process) and creates a fresh namespace `<prefix>-<random>`.
    pub async fn new(prefix: &str) -> TestEnv {
        let cluster = cluster();
        let kubeconfig = Kubeconfig::read_from(&cluster.admin_kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", cluster.admin_kubeconfig.display()));
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", cluster.admin_kubeconfig.display()));
        let client = Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a Kubernetes client: {e}"));
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = loop {
            let name = namespace_name(prefix);
            let mut obj = Namespace::default();
            obj.metadata.name = Some(name.clone());
            obj.metadata.labels = Some(BTreeMap::from([(E2E_LABEL.to_string(), "true".to_string())]));
            match namespaces.create(&PostParams::default(), &obj).await {
                Ok(_) => break name,
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => panic!("cannot create namespace {name}: {e}"),
            }
        };
        let work_dir = cluster.dir.join("e2e").join(&ns);
        fs::create_dir_all(&work_dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", work_dir.display()));
        TestEnv { ns, cluster, client, work_dir, operator: None, starts: 0 }
    }

    /// The folder for this test's files (operator config and log).
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The kubeconfig of the operator's ServiceAccount (token, RBAC of `config/`).
    pub fn sa_kubeconfig(&self) -> &Path {
        &self.cluster.sa_kubeconfig
    }

    /// The admin kubeconfig.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.cluster.admin_kubeconfig
    }

    /// The test Prometheus' base URL.
    pub fn prometheus_url(&self) -> &str {
        &self.cluster.prometheus_url
    }

    /// The test MLflow's tracking URI (`http://127.0.0.1:PORT`); panics with what to do when MLflow is not
    /// running.
    pub fn mlflow_tracking_uri(&self) -> &str {
        self.cluster.mlflow_tracking_uri.as_deref().unwrap_or_else(|| {
            panic!(
                "this test needs MLflow, but {} does not exist: run it with hack/test.sh, or start MLflow with \
                 `tests/cluster/mlflow.sh start {}`",
                self.cluster.dir.join("mlflow.env").display(),
                self.cluster.dir.display()
            )
        })
    }

    /// The test exporter's base URL (`/set`, `/delete`, `/reset`).
    pub fn exporter_url(&self) -> &str {
        &self.cluster.exporter_url
    }

    /// Starts the operator with the default config: the test Prometheus as provider `default`, watching
    /// only this namespace.
    pub async fn start_operator(&mut self) {
        self.start_operator_with("").await;
    }

    /// Starts the operator with the default config plus `extra_config_yaml` (top-level YAML lines such as
    /// `mlflow: {trackingUri: "http://127.0.0.1:9"}`), and waits until `/readyz` answers 200.
    pub async fn start_operator_with(&mut self, extra_config_yaml: &str) {
        let url = self.cluster.prometheus_url.clone();
        self.start_operator_with_prometheus(&url, extra_config_yaml).await;
    }

    /// Like [`TestEnv::start_operator_with`], with `prometheus_url` as the `default` provider (for tests
    /// of an unreachable Prometheus).
    pub async fn start_operator_with_prometheus(&mut self, prometheus_url: &str, extra_config_yaml: &str) {
        self.start_operator_with_config(&format!("prometheus:\n  default: {prometheus_url:?}\n{extra_config_yaml}"))
            .await;
    }

    /// Starts the operator with no Prometheus provider at all, plus `extra_config_yaml`.
    pub async fn start_operator_without_prometheus(&mut self, extra_config_yaml: &str) {
        self.start_operator_with_config(extra_config_yaml).await;
    }

    async fn start_operator_with_config(&mut self, config_yaml: &str) {
        assert!(self.operator.is_none(), "start_operator: the operator is already running; stop it first");
        self.starts += 1;
        let config_path = self.work_dir.join(format!("operator-{}.yaml", self.starts));
        let config = format!("# written by the e2e harness\nnamespaces: [{:?}]\n{config_yaml}\n", self.ns);
        fs::write(&config_path, config).unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
        let port = free_port();
        let log_path = self.log_path();
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log_path.display()));
        let _ = writeln!(log, "===== e2e harness: start #{} on 127.0.0.1:{port} =====", self.starts);
        let stderr = log.try_clone().unwrap_or_else(|e| panic!("cannot share the log file: {e}"));
        let child = Command::new(env!("CARGO_BIN_EXE_champion"))
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("KUBECONFIG", &self.cluster.sa_kubeconfig)
            .env("POD_NAMESPACE", OPERATOR_NAMESPACE)
            .env("RUST_LOG", "info,champion=debug")
            .env("NO_COLOR", "1")
            .env_remove("CHAMPION_CONFIG")
            .env_remove("CHAMPION_LISTEN")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", env!("CARGO_BIN_EXE_champion")));
        self.operator = Some(Operator { child, port });

        let url = format!("http://127.0.0.1:{port}/readyz");
        let http = http_client();
        let started = Instant::now();
        loop {
            if let Some(op) = self.operator.as_mut()
                && let Ok(Some(status)) = op.child.try_wait()
            {
                self.operator = None;
                panic!("the operator exited before it was ready ({status}); its log:\n{}", self.operator_log());
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status() == reqwest::StatusCode::OK
            {
                return;
            }
            if started.elapsed() > READY_DEADLINE {
                panic!("the operator was not ready within {READY_DEADLINE:?} ({url})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits up to 20 s for the operator to exit; then SIGKILLs it and panics.
    pub async fn stop_operator(&mut self) -> ExitStatus {
        let mut op = self.operator.take().expect("stop_operator: the operator is not running");
        signal(op.child.id(), "TERM");
        let started = Instant::now();
        loop {
            match op.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) => {}
                Err(e) => panic!("cannot wait for the operator: {e}"),
            }
            if started.elapsed() > STOP_DEADLINE {
                let _ = op.child.kill();
                let _ = op.child.wait();
                panic!("the operator did not exit within {STOP_DEADLINE:?} of SIGTERM; it was killed");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILLs the operator (a crash) and reaps it.
    pub fn kill_operator(&mut self) {
        let mut op = self.operator.take().expect("kill_operator: the operator is not running");
        let _ = op.child.kill();
        let _ = op.child.wait();
    }

    /// Whether the operator child is running.
    pub fn operator_running(&mut self) -> bool {
        self.operator.as_mut().is_some_and(|op| matches!(op.child.try_wait(), Ok(None)))
    }

    /// Everything the operator wrote so far (all starts of this test, each after a header line).
    pub fn operator_log(&self) -> String {
        fs::read(self.log_path()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// The URL of the running operator's `/metrics`.
    pub fn metrics_url(&self) -> String {
        let op = self.operator.as_ref().expect("metrics_url: the operator is not running");
        format!("http://127.0.0.1:{}/metrics", op.port)
    }

    fn log_path(&self) -> PathBuf {
        self.work_dir.join("operator.log")
    }

    /// Runs the cluster's kubectl with the admin kubeconfig and `-n <ns>`.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_stdin(args, None)
    }

    fn kubectl_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.cluster.kubectl);
        cmd.arg("--kubeconfig").arg(&self.cluster.admin_kubeconfig).arg("-n").arg(&self.ns).args(args);
        run(cmd, stdin)
    }

    /// Runs the `kubectl-champion` plugin binary with the admin kubeconfig and `-n <ns>`.
    pub fn plugin(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-champion"));
        cmd.env("KUBECONFIG", &self.cluster.admin_kubeconfig).args(args).arg("-n").arg(&self.ns);
        run(cmd, None)
    }

    /// `kubectl apply -f <path>` in the namespace: `Ok(stdout)` or `Err(stderr)`.
    pub fn apply_file(&self, path: &Path) -> Result<String, String> {
        result(self.kubectl(&["apply", "-f", &path.to_string_lossy()]))
    }

    /// `kubectl apply -f -` of `yaml` in the namespace: `Ok(stdout)` or `Err(stderr)`.
    pub fn apply_yaml(&self, yaml: &str) -> Result<String, String> {
        result(self.kubectl_with_stdin(&["apply", "-f", "-"], Some(yaml)))
    }

    /// An admin client.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// An admin `Api` for a kind in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Polls the object `name` of kind `K` in the namespace every 200 ms until `pred` holds and returns it.
    /// On timeout, panics naming `what` and showing the last object seen (or the last error).
    pub async fn wait_for<K, F>(&self, name: &str, what: &str, timeout: Duration, pred: F) -> K
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
        F: Fn(&K) -> bool,
    {
        let api: Api<K> = self.api();
        let started = Instant::now();
        loop {
            let last = match api.get_opt(name).await {
                Ok(Some(obj)) if pred(&obj) => return obj,
                Ok(Some(obj)) => serde_json::to_string_pretty(&obj).unwrap_or_else(|e| format!("{obj:?} ({e})")),
                Ok(None) => "not found".into(),
                Err(e) => format!("error: {e}"),
            };
            if started.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what} ({} {name} in namespace {}); last seen:\n{last}",
                    K::kind(&()),
                    self.ns
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sets a gauge of the test exporter (Prometheus scrapes it every second). NaN and ±Inf are allowed.
    pub async fn set_metric(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let value = if value.is_nan() {
            serde_json::json!("NaN")
        } else if value.is_infinite() {
            serde_json::json!(if value > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            serde_json::json!(value)
        };
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let body = serde_json::json!({"name": name, "labels": labels, "value": value});
        let url = format!("{}/set", self.cluster.exporter_url);
        let r = http_client().post(&url).json(&body).send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = r.status();
        if !status.is_success() {
            panic!("POST {url} {body}: {status}: {}", r.text().await.unwrap_or_default());
        }
    }

    /// The value of an instant query against the test Prometheus: the first sample of a vector (or the
    /// scalar), `None` when the result is empty. Panics when Prometheus refuses the query.
    pub async fn prometheus_value(&self, query: &str) -> Option<f64> {
        let url = format!("{}/api/v1/query", self.cluster.prometheus_url);
        let r = http_client()
            .get(&url)
            .query(&[("query", query)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"));
        if !status.is_success() || body["status"] != "success" {
            panic!("Prometheus refused {query:?}: {status}: {body}");
        }
        let data = &body["data"];
        let sample = match data["resultType"].as_str() {
            Some("vector") => data["result"].get(0).map(|s| &s["value"])?,
            Some("scalar") => &data["result"],
            other => panic!("query {query:?}: unexpected result type {other:?}"),
        };
        let text = sample.get(1)?.as_str()?;
        Some(text.parse().unwrap_or_else(|e| panic!("query {query:?}: bad value {text:?}: {e}")))
    }

    /// The namespace's Events (events.k8s.io/v1) as `(reason, type, note, regarding name)`.
    pub fn events(&self) -> Vec<(String, String, String, String)> {
        let out = self.kubectl(&["get", "events.events.k8s.io", "-o", "json"]);
        if !out.status.success() {
            panic!("kubectl get events failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let list: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("events are not JSON: {e}"));
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|e| (s(&e["reason"]), s(&e["type"]), s(&e["note"]), s(&e["regarding"]["name"])))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Prints what a failing test needs to see: the operator log's tail, the namespace's objects and Events.
    fn dump(&self) {
        let mut out = format!("\n========== e2e dump of namespace {} ==========\n", self.ns);
        let log = self.operator_log();
        let lines: Vec<&str> = log.lines().collect();
        out += &format!(
            "----- operator log ({}), last {} of {} lines -----\n",
            self.log_path().display(),
            lines.len().min(200),
            lines.len()
        );
        for l in &lines[lines.len().saturating_sub(200)..] {
            out += l;
            out.push('\n');
        }
        let show = |out: &mut String, title: &str, args: &[&str]| {
            let o = self.kubectl(args);
            *out += &format!(
                "----- {title} -----\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        };
        show(
            &mut out,
            "kubectl get champion,deploy,rs,svc,pods,httproutes,virtualservices,jobs -o wide",
            &["get", "champion,deploy,rs,svc,pods,httproutes,virtualservices,jobs", "-o", "wide"],
        );
        out += "----- events (reason, type, regarding: note) -----\n";
        for (reason, kind, note, regarding) in self.events() {
            out += &format!("{reason} {kind} {regarding}: {note}\n");
        }
        show(&mut out, "kubectl get champion -o yaml", &["get", "champion", "-o", "yaml"]);
        out += &format!("========== end of dump of namespace {} ==========\n", self.ns);
        eprint!("{out}");
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The dump must not panic again (a panic in drop while panicking aborts).
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.dump()));
        }
        if let Some(mut op) = self.operator.take() {
            signal(op.child.id(), "TERM");
            let started = Instant::now();
            while matches!(op.child.try_wait(), Ok(None)) && started.elapsed() < STOP_DEADLINE {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = op.child.kill();
            let _ = op.child.wait();
        }
        let deleted = Command::new(&self.cluster.kubectl)
            .arg("--kubeconfig")
            .arg(&self.cluster.admin_kubeconfig)
            .args(["delete", "namespace", &self.ns, "--wait=false"])
            .stdin(Stdio::null())
            .output();
        match deleted {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("e2e: cannot delete namespace {}: {}", self.ns, String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("e2e: cannot run kubectl to delete namespace {}: {e}", self.ns),
        }
    }
}

/// Calls `f` every 200 ms until it returns `Some`, and returns that; panics naming `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// An HTTP client for loopback endpoints (never through a proxy).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|e| panic!("cannot build an HTTP client: {e}"))
}

/// GETs a URL and returns `(status, body)`.
pub async fn http_get(url: &str) -> (u16, String) {
    let r = http_client().get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("cannot write to {cmd:?}: {e}"));
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("cannot wait for {cmd:?}: {e}"))
}

fn result(out: Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The text of a command's stdout and stderr, for messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
