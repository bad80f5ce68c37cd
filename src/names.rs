//! Every name the cluster sees, in one place: the API group, the field manager, label and annotation
//! keys, condition types and reasons, and Event reasons.

/// The API group of Champion's custom resources.
pub const GROUP: &str = "champion.ml";
/// The served (and stored) API version.
pub const VERSION: &str = "v1alpha1";
/// The field manager of every server-side apply Champion makes.
pub const FIELD_MANAGER: &str = "champion";
/// The name the operator reports as the source of its Events.
pub const CONTROLLER_NAME: &str = "champion";

/// Label keys put on every generated object.
pub mod labels {
    /// The ModelDeployment an object belongs to.
    pub const DEPLOYMENT: &str = "champion.ml/deployment";
    /// The revision hash of the model server an object belongs to.
    pub const REVISION: &str = "champion.ml/revision";
    /// The role of a revision: `stable`, `candidate` or `mirror`.
    pub const VARIANT: &str = "champion.ml/variant";
    /// `app.kubernetes.io/managed-by`, set to `champion`.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
}

/// Condition types shared by the three kinds.
pub mod conditions {
    /// The resource is valid and, for a ModelDeployment, serving.
    pub const READY: &str = "Ready";
    /// A rollout, an experiment or a retraining run is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// Something the operator observed needs a person's attention.
    pub const DEGRADED: &str = "Degraded";
    /// A rollout waits at a pause step.
    pub const PAUSED: &str = "Paused";
}

/// Reasons used on conditions and Events (CamelCase, as Kubernetes does).
pub mod reasons {
    /// The spec has a problem only the operator could see; the message names the field.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The spec was accepted and is waiting for its first action.
    pub const ACCEPTED: &str = "Accepted";
    /// The spec follows a registry alias, which this operator version cannot resolve.
    pub const REGISTRY_UNSUPPORTED: &str = "RegistryUnsupported";
    /// The ModelDeployment named in spec.deploymentRef does not exist.
    pub const DEPLOYMENT_NOT_FOUND: &str = "DeploymentNotFound";
}

/// Annotation keys read by the operator.
pub mod annotations {
    /// A control request (`promote`, `abort`, ...) for the operator to consume once; see
    /// `docs/requests.md`.
    pub const REQUEST: &str = "champion.ml/request";
    /// The model version a generated Deployment serves.
    pub const MODEL_VERSION: &str = "champion.ml/model-version";
}
