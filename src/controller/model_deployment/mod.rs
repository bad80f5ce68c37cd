//! The ModelDeployment controller: owns the generated Deployments, Services and routing objects, and
//! keeps them in reflector caches ([`Caches`]) that reconciles read instead of listing.

pub mod apply;
pub mod caches;
pub mod reconcile;
pub mod registry;
pub mod router_config;
pub mod router_metrics;

use std::sync::Arc;

use futures::future::Shared;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::reflector;
use kube::runtime::{controller, watcher};

use super::{Context, Synced, drain, error_policy, instrumented, scoped_api, tracked_controller, tracked_reflector};
use crate::api::{Experiment, ModelDeployment};
use crate::traffic;
pub use caches::Caches;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

/// The kind's name in metrics and logs.
pub const KIND: &str = "ModelDeployment";

/// Runs the controller for one scope until `shutdown` completes.
pub async fn controller<F>(ctx: Arc<Context>, ns: Option<String>, shutdown: Shared<F>)
where
    F: std::future::Future<Output = ()> + Send + Unpin + 'static,
{
    let client = &ctx.client;
    let owned = || watcher::Config::default().labels(crate::names::labels::DEPLOYMENT);
    let (deployments, deployment_writer) = reflector::store::<Deployment>();
    let (services, service_writer) = reflector::store::<Service>();
    let (experiments, experiment_writer) = reflector::store::<Experiment>();
    // Every watch stream is tracked, so readiness and reconciles wait for all of the caches.
    let synced = Synced::default();
    let controller = tracked_controller(
        scoped_api::<ModelDeployment>(client, ns.as_deref()),
        watcher::Config::default().any_semantic(),
        &synced,
    )
    .owns_stream(tracked_reflector(deployment_writer, scoped_api(client, ns.as_deref()), owned(), &synced))
    .owns_stream(tracked_reflector(service_writer, scoped_api(client, ns.as_deref()), owned(), &synced));
    // Experiments contribute their variants to the routing of the ModelDeployment they name.
    let experiments_api = scoped_api::<Experiment>(client, ns.as_deref());
    let controller = controller.watches_stream(
        tracked_reflector(experiment_writer, experiments_api, watcher::Config::default(), &synced),
        |x: Experiment| {
            let ns = x.namespace().unwrap_or_default();
            Some(ObjectRef::<ModelDeployment>::new(&x.spec.deployment_ref.name).within(&ns))
        },
    );
    let mut controller = controller;
    // Routing objects are watched where their API is served, so a hand edit is put back at once.
    let mut routes = Vec::new();
    for resource in traffic::all().into_iter().filter_map(|r| r.resource()) {
        if served(client, &resource).await {
            let api: Api<DynamicObject> = match ns.as_deref() {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
                None => Api::all_with(client.clone(), &resource),
            };
            let writer = reflector::store::Writer::new(resource.clone());
            routes.push((resource.clone(), writer.as_reader()));
            let stream = tracked_reflector(writer, api, owned(), &synced);
            controller = controller.owns_stream_with(stream, resource);
        } else {
            tracing::info!(kind = %resource.kind, "API not served; generated objects of this kind are not watched");
        }
    }
    let caches = Arc::new(Caches { deployments, services, routes, experiments });
    // Readiness once every cache is synced, and pruning of deleted objects' metric series.
    let cache =
        super::watch_cache(ctx.clone(), KIND, ns.clone(), controller.store(), synced.wait_owned(), shutdown.clone());
    let stream =
        controller.with_config(controller::Config::default().concurrency(8)).graceful_shutdown_on(shutdown).run(
            move |obj, ctx| {
                let (caches, synced) = (caches.clone(), synced.clone());
                async move {
                    // kube-runtime holds reconciles until the ModelDeployments are listed, not the
                    // generated objects: a reconcile before that would take existing objects for missing.
                    synced.wait().await;
                    instrumented(KIND, obj, ctx, move |md, ctx| reconcile::reconcile(md, ctx, caches)).await
                }
            },
            |obj, _err, ctx| error_policy(KIND, obj.as_ref(), &ctx),
            ctx.clone(),
        );
    futures::join!(drain(KIND, stream), cache);
}

/// Whether the cluster serves `resource` (its CRD is installed).
async fn served(client: &kube::Client, resource: &ApiResource) -> bool {
    match client.list_api_group_resources(&resource.api_version).await {
        Ok(list) => list.resources.iter().any(|r| r.name == resource.plural),
        Err(_) => false,
    }
}
