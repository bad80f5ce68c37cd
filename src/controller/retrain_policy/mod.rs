//! The RetrainPolicy controller. This version validates RetrainPolicies and checks their
//! ModelDeployment; starting training Jobs is not implemented yet, and the Ready condition says so.

use std::sync::Arc;

use futures::future::Shared;

use super::Context;

/// Runs the controller for one scope until `shutdown` completes.
pub async fn controller<F>(ctx: Arc<Context>, ns: Option<String>, shutdown: Shared<F>)
where
    F: std::future::Future<Output = ()> + Send + Unpin + 'static,
{
    super::referencing::controller::<crate::api::RetrainPolicy, F>(ctx, ns, shutdown).await
}
