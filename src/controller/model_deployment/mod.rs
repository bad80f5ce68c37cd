//! The ModelDeployment controller: owns the generated Deployments and Services.

pub mod apply;
pub mod reconcile;

use std::sync::Arc;

use futures::future::Shared;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::{Controller, controller, watcher};

use super::{Context, drain, error_policy, instrumented, scoped_api};
use crate::api::ModelDeployment;

/// The kind's name in metrics and logs.
pub const KIND: &str = "ModelDeployment";

/// Runs the controller for one scope until `shutdown` completes.
pub async fn controller<F>(ctx: Arc<Context>, ns: Option<String>, shutdown: Shared<F>)
where
    F: std::future::Future<Output = ()> + Send + Unpin + 'static,
{
    let client = &ctx.client;
    let stream = Controller::new(
        scoped_api::<ModelDeployment>(client, ns.as_deref()),
        watcher::Config::default().any_semantic(),
    )
    .owns(
        scoped_api::<Deployment>(client, ns.as_deref()),
        watcher::Config::default().labels(crate::names::labels::DEPLOYMENT),
    )
    .owns(
        scoped_api::<Service>(client, ns.as_deref()),
        watcher::Config::default().labels(crate::names::labels::DEPLOYMENT),
    )
    .with_config(controller::Config::default().concurrency(8))
    .graceful_shutdown_on(shutdown)
    .run(
        |obj, ctx| instrumented(KIND, obj, ctx, reconcile::reconcile),
        |obj, _err, ctx| error_policy(KIND, obj.as_ref(), &ctx),
        ctx.clone(),
    );
    drain(KIND, stream).await;
}
