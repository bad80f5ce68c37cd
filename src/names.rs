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
    /// Whether the traffic split is the one the steps ask for (the replicas router can only split by
    /// whole pods).
    pub const WEIGHT_EXACT: &str = "WeightExact";
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

    // ModelDeployment rollout: Event reasons (and the Degraded condition's reasons where noted).
    /// The first version of a ModelDeployment is deployed.
    pub const DEPLOYED: &str = "Deployed";
    /// A new version starts its steps.
    pub const ROLLOUT_STARTED: &str = "RolloutStarted";
    /// The spec went back to the stable version mid-rollout.
    pub const ROLLOUT_CANCELLED: &str = "RolloutCancelled";
    /// `retry` restarted a rolled-back version.
    pub const ROLLOUT_RETRIED: &str = "RolloutRetried";
    /// The candidate became stable.
    pub const PROMOTED: &str = "Promoted";
    /// `promote --full` skipped the remaining steps.
    pub const PROMOTED_BY_REQUEST: &str = "PromotedByRequest";
    /// The rollout moved to its next step.
    pub const CANARY_STEP_ADVANCED: &str = "CanaryStepAdvanced";
    /// Analysis failed and the rollout was rolled back (also a Degraded reason).
    pub const ANALYSIS_FAILED: &str = "AnalysisFailed";
    /// One background analysis run failed, within the failure limit.
    pub const ANALYSIS_RUN_FAILED: &str = "AnalysisRunFailed";
    /// Metrics cannot be measured; the rollout holds (also a Degraded reason).
    pub const METRIC_UNAVAILABLE: &str = "MetricUnavailable";
    /// Metrics stayed unmeasurable longer than `analysis.maxOutage`; rolled back (also a Degraded reason).
    pub const METRIC_OUTAGE: &str = "MetricOutage";
    /// The rollout waited longer than `progressDeadline`; rolled back (also a Degraded reason).
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// `abort` rolled the rollout back (also a Degraded reason).
    pub const ABORTED: &str = "Aborted";
    /// A rollback (by request, or the condition of a rolled-back version).
    pub const ROLLED_BACK: &str = "RolledBack";
    /// `rollback` could not be done (also a Degraded reason).
    pub const ROLLBACK_REFUSED: &str = "RollbackRefused";
    /// A control request did nothing in the current phase; the message says why.
    pub const REQUEST_IGNORED: &str = "RequestIgnored";
    /// The request annotation could not be parsed.
    pub const INVALID_REQUEST: &str = "InvalidRequest";
    /// A generated object could not be applied; the message names it (also a Degraded reason).
    pub const APPLY_FAILED: &str = "ApplyFailed";

    // ModelDeployment condition reasons.
    /// Ready: the stable version's pods are ready.
    pub const SERVING: &str = "Serving";
    /// Ready: the stable version has pods that are not ready.
    pub const PODS_NOT_READY: &str = "PodsNotReady";
    /// Progressing: a candidate is being rolled out.
    pub const ROLLOUT_IN_PROGRESS: &str = "RolloutInProgress";
    /// Progressing: the first version waits for its pods.
    pub const DEPLOYING: &str = "Deploying";
    /// Progressing (false): one version serves all traffic.
    pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
    /// Degraded (false): nothing to report.
    pub const AS_EXPECTED: &str = "AsExpected";
    /// Paused: the rollout waits at a pause.
    pub const PAUSED: &str = "Paused";
    /// Paused (false).
    pub const NOT_PAUSED: &str = "NotPaused";
    /// WeightExact: the split is the requested one.
    pub const EXACT: &str = "Exact";
    /// WeightExact (false): the replicas router cannot give the requested weight with the pods it has.
    pub const REPLICAS_TOO_FEW: &str = "ReplicasTooFew";
}

/// Annotation keys read by the operator.
pub mod annotations {
    /// A control request (`promote`, `abort`, ...) for the operator to consume once; see
    /// `docs/requests.md`.
    pub const REQUEST: &str = "champion.ml/request";
    /// The model version a generated Deployment serves.
    pub const MODEL_VERSION: &str = "champion.ml/model-version";
}
