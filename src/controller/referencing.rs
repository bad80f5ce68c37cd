//! Kinds that refer to a ModelDeployment (Experiment, RetrainPolicy): their controllers also watch
//! ModelDeployments, so that an object waiting for its deployment is reconciled when it appears, and
//! their Ready condition says when the deployment is missing ([`deployment_ready`]).

use kube::ResourceExt;

use super::acceptance::AcceptanceStatus;
use super::status::NamespacedKind;
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
    // Not used: the RetrainPolicy controller decides its conditions itself (`retrain::summary`).
    const WAITING: &'static str = "spec is valid";
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

/// The watch mapper of a referencing kind's controller: a ModelDeployment that changes reconciles the
/// objects of `store` that name it.
pub fn referrers<K: RefersToDeployment>(
    store: kube::runtime::reflector::Store<K>,
) -> impl Fn(crate::api::ModelDeployment) -> Vec<kube::runtime::reflector::ObjectRef<K>> + Send + Sync + 'static {
    move |md| {
        let (name, ns) = (md.name_any(), md.namespace());
        store
            .state()
            .into_iter()
            .filter(|o| o.deployment_name() == name && o.namespace() == ns)
            .map(|o| kube::runtime::reflector::ObjectRef::from_obj(o.as_ref()))
            .collect()
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
