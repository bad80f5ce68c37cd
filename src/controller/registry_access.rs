//! The operator's access to the model registry: the MLflow client of the operator config, its token read
//! from a Secret in the operator's own namespace (cached for a minute, so a rotated token is picked up),
//! and when each ModelDeployment's alias was last read (in memory: after a restart every alias is read
//! once at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::config::{MlflowConfig, SecretKeyRef};
use crate::registry::follow::{jitter_of, next_poll};
use crate::registry::{MlflowClient, token_from_secret_data};

/// How long a token read from its Secret is used before the Secret is read again.
const TOKEN_TTL: Duration = Duration::from_secs(60);

/// A client with its token, or why the token could not be read.
type Built = Result<Arc<MlflowClient>, String>;

/// The registry of the operator config, shared by the reconciles.
pub struct RegistryAccess {
    config: MlflowConfig,
    client: Client,
    namespace: String,
    cached: Mutex<Option<(Instant, Built)>>,
    polls: Mutex<HashMap<String, Instant>>,
}

impl RegistryAccess {
    /// Access to the registry of `config`; a token Secret is read from `namespace` (the operator's own).
    pub fn new(config: MlflowConfig, client: Client, namespace: String) -> Self {
        Self { config, client, namespace, cached: Mutex::new(None), polls: Mutex::new(HashMap::new()) }
    }

    /// How often an alias is read.
    pub fn interval(&self) -> Duration {
        self.config.poll_interval()
    }

    /// The client, with the token of the Secret when the config names one; the error says which Secret
    /// could not be read and why.
    pub async fn client(&self) -> Result<Arc<MlflowClient>, String> {
        if let Some((_, c)) =
            self.cached.lock().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|(at, _)| at.elapsed() < TOKEN_TTL)
        {
            return c.clone();
        }
        let built = self.build().await;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), built.clone()));
        built
    }

    async fn build(&self) -> Built {
        let client = MlflowClient::new(&self.config.tracking_uri, self.config.request_timeout());
        let Some(SecretKeyRef { name, key }) = &self.config.token_secret_ref else { return Ok(Arc::new(client)) };
        let where_ = format!("Secret {}/{name} (mlflow.tokenSecretRef)", self.namespace);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let secret = match secrets.get_opt(name).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(format!("the registry token's {where_} does not exist")),
            Err(e) => return Err(format!("cannot read the registry token's {where_}: {e}")),
        };
        let token = token_from_secret_data(&secret.data.unwrap_or_default(), key)
            .map_err(|e| format!("the registry token in {where_}: {e}"))?;
        Ok(Arc::new(client.with_token(token)))
    }

    /// How long until the alias of `key` (`namespace/name`) is due to be read; zero when it is due now.
    pub fn until_due(&self, key: &str) -> Duration {
        let last = self.polls.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied();
        next_poll(last, self.interval(), jitter_of(key))
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::ZERO)
    }

    /// Records that the alias of `key` was read now.
    pub fn polled(&self, key: &str) {
        self.polls.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_string(), Instant::now());
    }

    /// Forgets the poll times of ModelDeployments that `keep` does not keep (deleted ones).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.polls.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| keep(k));
    }
}
