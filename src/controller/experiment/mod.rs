//! The Experiment controller. This version validates Experiments and checks their ModelDeployment;
//! routing traffic to variants is not implemented yet, and the Ready condition says so.

use std::sync::Arc;

use futures::future::Shared;

use super::Context;

/// Runs the controller for one scope until `shutdown` completes.
pub async fn controller<F>(ctx: Arc<Context>, ns: Option<String>, shutdown: Shared<F>)
where
    F: std::future::Future<Output = ()> + Send + Unpin + 'static,
{
    super::referencing::controller::<crate::api::Experiment, F>(ctx, ns, shutdown).await
}
