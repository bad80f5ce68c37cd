//! Kinds that refer to a ModelDeployment (Experiment, RetrainPolicy): their controllers also watch
//! ModelDeployments, so that an object waiting for its deployment is reconciled when it appears, and
//! their Ready condition says when the deployment is missing.

use std::sync::Arc;

use futures::future::Shared;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{controller, watcher};
use kube::{Api, ResourceExt};

use super::acceptance::{self, AcceptanceStatus};
use super::status::NamespacedKind;
use super::{Context, Result, Synced, drain, error_policy, instrumented, scoped_api, tracked_controller};
use crate::api::ModelDeployment;
use crate::conditions::Desired;
use crate::config::OperatorConfig;
use crate::names::{conditions as cond, reasons};
use crate::validation::FieldError;

/// A kind that names a ModelDeployment in `spec.deploymentRef`.
pub trait RefersToDeployment: NamespacedKind + Send + Sync + 'static {
    /// The kind's status type.
    type Status: AcceptanceStatus + Send + Sync;
    /// The kind's name in metrics and logs.
    const KIND: &'static str;
    /// What the Ready message says while the spec is valid and the deployment exists.
    const WAITING: &'static str;
    /// The referenced ModelDeployment's name.
    fn deployment_name(&self) -> &str;
    /// The current status.
    fn current_status(&self) -> Option<&Self::Status>;
    /// The operator-side checks of the spec.
    fn validate(&self, config: &OperatorConfig) -> Vec<FieldError>;
}

impl RefersToDeployment for crate::api::Experiment {
    type Status = crate::api::ExperimentStatus;
    const KIND: &'static str = "Experiment";
    // Not used: the Experiment controller decides its Ready condition itself (`experiment::lifecycle`).
    const WAITING: &'static str = "spec is valid";
    fn deployment_name(&self) -> &str {
        &self.spec.deployment_ref.name
    }
    fn current_status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    fn validate(&self, config: &OperatorConfig) -> Vec<FieldError> {
        crate::validation::experiment::validate(&self.spec, config)
    }
}

impl RefersToDeployment for crate::api::RetrainPolicy {
    type Status = crate::api::RetrainPolicyStatus;
    const KIND: &'static str = "RetrainPolicy";
    const WAITING: &'static str =
        "spec is valid; running retraining is not available in this operator version, no Job is started";
    fn deployment_name(&self) -> &str {
        &self.spec.deployment_ref.name
    }
    fn current_status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    fn validate(&self, config: &OperatorConfig) -> Vec<FieldError> {
        crate::validation::retrain_policy::validate(&self.spec, config)
    }
}

/// The Ready condition of a valid spec, given whether its ModelDeployment exists; the flag says
/// whether it deserves a Warning Event.
pub fn deployment_ready<K: RefersToDeployment>(obj: &K, found: bool) -> (Desired, bool) {
    if found {
        (Desired::new(cond::READY, false, reasons::ACCEPTED, K::WAITING), false)
    } else {
        let message = format!(
            "ModelDeployment {:?} not found in namespace {:?}; create it or fix spec.deploymentRef.name",
            obj.deployment_name(),
            obj.namespace().unwrap_or_default()
        );
        (Desired::new(cond::READY, false, reasons::DEPLOYMENT_NOT_FOUND, message), true)
    }
}

/// Reconciles one object of a referencing kind.
pub async fn reconcile<K: RefersToDeployment>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let now = Time(jiff::Timestamp::now());
    let errors = obj.validate(&ctx.config);
    let deployments: Api<ModelDeployment> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let found = deployments.get_opt(obj.deployment_name()).await?.is_some();
    let (when_valid, warning) = deployment_ready(obj.as_ref(), found);
    let decided = acceptance::plan(obj.current_status(), obj.meta().generation, &errors, when_valid, warning, &now);
    acceptance::apply(&ctx, K::KIND, obj.as_ref(), obj.current_status(), &decided).await?;
    Ok(Action::await_change())
}

/// Runs the controller of a referencing kind for one scope until `shutdown` completes.
pub async fn controller<K, F>(ctx: Arc<Context>, ns: Option<String>, shutdown: Shared<F>)
where
    K: RefersToDeployment,
    F: std::future::Future<Output = ()> + Send + Unpin + 'static,
{
    let synced = Synced::default();
    let main = tracked_controller(
        scoped_api::<K>(&ctx.client, ns.as_deref()),
        watcher::Config::default().any_semantic(),
        &synced,
    );
    let store = main.store();
    let cache =
        super::watch_cache(ctx.clone(), K::KIND, ns.clone(), main.store(), synced.wait_owned(), shutdown.clone());
    let stream = main
        .watches(scoped_api::<ModelDeployment>(&ctx.client, ns.as_deref()), watcher::Config::default(), move |md| {
            let (name, ns) = (md.name_any(), md.namespace());
            store
                .state()
                .into_iter()
                .filter(|o| o.deployment_name() == name && o.namespace() == ns)
                .map(|o| ObjectRef::from_obj(o.as_ref()))
                .collect::<Vec<_>>()
        })
        .with_config(controller::Config::default().concurrency(4))
        .graceful_shutdown_on(shutdown)
        .run(
            |obj, ctx| instrumented(K::KIND, obj, ctx, reconcile::<K>),
            |obj, _err, ctx| error_policy(K::KIND, obj.as_ref(), &ctx),
            ctx.clone(),
        );
    futures::join!(drain(K::KIND, stream), cache);
}
