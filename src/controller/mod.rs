//! The controllers: one kube-runtime `Controller` per kind (and per watched namespace). Each reconcile
//! is observe → plan (pure) → apply → status; this module holds the wiring they share.

pub mod acceptance;
pub mod backoff;
pub mod context;
pub mod error;
pub mod experiment;
pub mod model_deployment;
pub mod readiness;
pub mod referencing;
pub mod registry_access;
pub mod retrain_policy;
pub mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::Instrument;

pub use context::Context;
pub use error::{Error, Result};
pub use readiness::Synced;

use crate::names::{GROUP, VERSION};

/// The resources that must be served before the controllers start.
const REQUIRED_RESOURCES: [&str; 3] = ["modeldeployments", "experiments", "retrainpolicies"];

/// Why the operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The CRDs are not installed (or not yet served).
    #[error(
        "the Champion CRDs are not served by this cluster ({missing}); install them with `kubectl apply -k config/` \
         or `champion crds | kubectl apply -f -`, then start the operator again"
    )]
    CrdsMissing {
        /// What is missing.
        missing: String,
    },
    /// The API server could not be asked.
    #[error("cannot reach the Kubernetes API to check the CRDs: {0}")]
    Kube(#[from] kube::Error),
}

/// Checks that `champion.ml/v1alpha1` serves all three kinds.
pub async fn check_crds_served(client: &Client) -> Result<(), StartError> {
    let group_version = format!("{GROUP}/{VERSION}");
    let list = match client.list_api_group_resources(&group_version).await {
        Ok(list) => list,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(StartError::CrdsMissing { missing: format!("{group_version} is not served") });
        }
        Err(e) => return Err(e.into()),
    };
    let missing: Vec<&str> =
        REQUIRED_RESOURCES.iter().copied().filter(|r| !list.resources.iter().any(|x| x.name == *r)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StartError::CrdsMissing { missing: format!("missing resources: {}", missing.join(", ")) })
    }
}

/// Runs one reconcile inside a span with the kind, namespace and name, and records its count,
/// duration and failure category.
pub async fn instrumented<K, F, Fut>(kind: &'static str, obj: Arc<K>, ctx: Arc<Context>, f: F) -> Result<Action>
where
    K: Resource + ResourceExt,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action>>,
{
    let span = tracing::info_span!("reconcile", kind, namespace = %obj.namespace().unwrap_or_default(), name = %obj.name_any());
    let started = Instant::now();
    let key = object_key(kind, obj.as_ref());
    let metrics = ctx.metrics.clone();
    let result = f(obj, ctx.clone()).instrument(span.clone()).await;
    metrics.reconciliations.with_label_values(&[kind]).inc();
    metrics.duration.with_label_values(&[kind]).observe(started.elapsed().as_secs_f64());
    match &result {
        Ok(_) => ctx.failures.succeed(&key),
        Err(e) => {
            metrics.failures.with_label_values(&[kind, e.category()]).inc();
            span.in_scope(|| tracing::warn!(error = %e, "reconcile failed; will retry"));
        }
    }
    result
}

/// The error policy of every controller: per-object exponential backoff with jitter, capped.
pub fn error_policy<K: Resource + ResourceExt>(kind: &'static str, obj: &K, ctx: &Context) -> Action {
    let failures = ctx.failures.fail(&object_key(kind, obj));
    Action::requeue(backoff::delay(failures, backoff::clock_jitter()))
}

fn object_key<K: ResourceExt>(kind: &str, obj: &K) -> String {
    format!("{kind}/{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// How often each controller prunes the metric series of objects that are gone from its cache.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// What every controller runs beside its reconciles: once `synced` completes (every cache of the
/// controller has listed once, see [`readiness::Synced`]) it reports to [`readiness::Readiness`]; then,
/// every [`PRUNE_EVERY`], it removes the per-object metric series of objects of `kind` in `scope` that
/// are no longer in the controller's cache `store` (deleted objects leave no reconcile behind). Returns
/// when `shutdown` completes. It never waits on `store` itself (see [`readiness::Synced`] for why).
pub async fn watch_cache<K, S>(
    ctx: Arc<Context>,
    kind: &'static str,
    scope: Option<String>,
    store: kube::runtime::reflector::Store<K>,
    synced: impl Future<Output = ()>,
    shutdown: S,
) where
    K: Resource<DynamicType = ()> + Clone + 'static,
    S: Future<Output = ()> + Clone,
{
    tokio::select! {
        _ = synced => {}
        _ = shutdown.clone() => return,
    }
    tracing::info!(kind, scope = scope.as_deref().unwrap_or("*"), "cache synced; reconciling");
    ctx.readiness.synced();
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.clone() => return,
        }
        let exists =
            |ns: &str, name: &str| store.get(&kube::runtime::reflector::ObjectRef::<K>::new(name).within(ns)).is_some();
        ctx.metrics.prune(kind, scope.as_deref(), exists);
        if let Some(registry) = ctx.registry.as_ref().filter(|_| kind == model_deployment::KIND) {
            let in_scope = |ns: &str| scope.as_deref().is_none_or(|s| s == ns);
            registry.retain(|key| key.split_once('/').is_none_or(|(ns, name)| !in_scope(ns) || exists(ns, name)));
        }
    }
}

/// The watch of `api` filling the cache behind `writer`, tracked in `synced` and with the default backoff,
/// as the objects it touches: the stream a controller's `owns_stream`/`watches_stream` takes.
pub fn tracked_reflector<K>(
    writer: reflector::store::Writer<K>,
    api: kube::Api<K>,
    config: watcher::Config,
    synced: &Synced,
) -> impl futures::Stream<Item = std::result::Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    reflector::reflector(writer, watcher::watcher(api, config))
        .inspect_ok(synced.track())
        .default_backoff()
        .touched_objects()
}

/// A controller for `K` as `Controller::new(api, config)` makes it, with its watch stream tracked in
/// `synced`, so that readiness and reconciles can wait for its first list without waiting on its store.
pub fn tracked_controller<K>(api: kube::Api<K>, config: watcher::Config, synced: &Synced) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let stream =
        reflector::reflector(writer, watcher::watcher(api, config)).inspect_ok(synced.track()).applied_objects();
    Controller::for_stream(stream, store)
}

/// The number of controllers [`run`] starts for `scopes` watched scopes: one per kind and scope.
pub fn controllers_for(scopes: usize) -> usize {
    3 * scopes
}

/// Starts every controller for the watched namespaces and runs them until `shutdown` completes.
/// `/readyz` turns ready once every one of them has synced its cache.
pub async fn run(ctx: Arc<Context>, namespaces: Vec<String>, shutdown: impl Future<Output = ()> + Send + 'static) {
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown) as BoxFuture<'static, ()>);
    let scopes: Vec<Option<String>> =
        if namespaces.is_empty() { vec![None] } else { namespaces.into_iter().map(Some).collect() };
    ctx.readiness.expect(controllers_for(scopes.len()));
    let mut all = Vec::new();
    for ns in scopes {
        all.push(model_deployment::controller(ctx.clone(), ns.clone(), shutdown.clone()).boxed());
        all.push(experiment::controller(ctx.clone(), ns.clone(), shutdown.clone()).boxed());
        all.push(retrain_policy::controller(ctx.clone(), ns.clone(), shutdown.clone()).boxed());
    }
    futures::future::join_all(all).await;
}

/// An `Api` for the watched scope: one namespace, or all.
pub fn scoped_api<K>(client: &Client, ns: Option<&str>) -> kube::Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match ns {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    }
}

/// Logs each reconcile outcome of a controller's stream.
pub async fn drain<S, T, E>(kind: &'static str, stream: S)
where
    S: futures::Stream<Item = std::result::Result<T, E>>,
    T: std::fmt::Debug,
    E: std::fmt::Display,
{
    stream
        .for_each(|r| async move {
            match r {
                Ok(o) => tracing::debug!(kind, object = ?o, "reconciled"),
                Err(e) => tracing::debug!(kind, error = %e, "reconcile error"),
            }
        })
        .await;
}
