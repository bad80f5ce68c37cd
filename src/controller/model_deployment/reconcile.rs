//! One ModelDeployment reconcile: validate what CEL could not, compute status, write it when changed,
//! and raise an Event on each transition.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;

use crate::api::{ModelDeployment, ModelDeploymentStatus};
use crate::conditions::Desired;
use crate::config::OperatorConfig;
use crate::controller::acceptance::{self, Acceptance};
use crate::controller::{Context, Result};
use crate::names::{conditions as cond, reasons};

/// Reconciles one ModelDeployment.
pub async fn reconcile(md: Arc<ModelDeployment>, ctx: Arc<Context>) -> Result<Action> {
    let now = Time(jiff::Timestamp::now());
    let decided = plan(&md, &ctx.config, &now);
    acceptance::apply(&ctx, super::KIND, md.as_ref(), md.status.as_ref(), &decided).await?;
    Ok(Action::await_change())
}

/// Decides the status of a ModelDeployment from its spec, current status and the operator config.
pub fn plan(md: &ModelDeployment, config: &OperatorConfig, now: &Time) -> Acceptance<ModelDeploymentStatus> {
    let errors = crate::validation::model_deployment::validate(&md.spec, config);
    let waiting = Desired::new(cond::READY, false, reasons::ACCEPTED, "spec is valid; no revision is serving yet");
    acceptance::plan(md.status.as_ref(), md.metadata.generation, &errors, waiting, false, now)
}
