//! What every reconcile shares: the client, the Event recorder, the operator config and metrics.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use super::backoff::FailureCounts;
use super::readiness::Readiness;
use super::registry_access::RegistryAccess;
use crate::analysis::PrometheusClient;
use crate::config::OperatorConfig;
use crate::metrics::Metrics;
use crate::names::CONTROLLER_NAME;

/// Shared state of the controllers.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes Events.
    pub recorder: Recorder,
    /// The operator config.
    pub config: Arc<OperatorConfig>,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for backoff.
    pub failures: FailureCounts,
    /// The metric query client.
    pub prometheus: PrometheusClient,
    /// Whether every controller's cache is synced (read by `/readyz`).
    pub readiness: Arc<Readiness>,
    /// The model registry of the operator config (`mlflow`), when it names one.
    pub registry: Option<Arc<RegistryAccess>>,
    /// The built-in router's recent readings per ModelDeployment (`namespace/name`), when its metrics are
    /// read from its pods (no Prometheus provider for them).
    pub router_readings: std::sync::Mutex<std::collections::HashMap<String, crate::analysis::router_scrape::History>>,
}

/// The environment variable with the operator's own namespace (the downward API sets it in
/// `config/operator/deployment.yaml`); without it, the kubeconfig's namespace.
pub const POD_NAMESPACE: &str = "POD_NAMESPACE";

impl Context {
    /// A context around a client.
    pub fn new(client: Client, config: Arc<OperatorConfig>, metrics: Arc<Metrics>) -> Arc<Self> {
        let reporter = Reporter { controller: CONTROLLER_NAME.into(), instance: std::env::var("POD_NAME").ok() };
        let namespace = std::env::var(POD_NAMESPACE).unwrap_or_else(|_| client.default_namespace().to_string());
        let registry =
            config.mlflow.clone().map(|m| Arc::new(RegistryAccess::new(m, client.clone(), namespace.clone())));
        Arc::new(Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            config: config.clone(),
            metrics,
            failures: FailureCounts::default(),
            prometheus: PrometheusClient::new(config.query_timeout()),
            readiness: Arc::new(Readiness::default()),
            registry,
            router_readings: Default::default(),
        })
    }
}
