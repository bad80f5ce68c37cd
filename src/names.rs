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
    /// On the built-in router's pods: the ModelDeployment they route for. (Router pods do not carry
    /// [`DEPLOYMENT`], so no selector of model server pods ever selects them.)
    pub const ROUTER: &str = "champion.ml/router";
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
    /// Whether the registry alias a ModelDeployment follows was read, and what the operator records in the
    /// registry was written (`spec.model.registry` only).
    pub const REGISTRY_SYNCED: &str = "RegistrySynced";
}

/// Every reason Champion puts on a condition or an Event (CamelCase, as Kubernetes does). A reason that
/// appears both on an Event and as a condition's reason is one constant, so the two always match.
/// Grouped by where they appear; tests compare against these constants, not against literals.
pub mod reasons {
    // ----- acceptance: is the spec usable (the Ready condition of every kind, and its Events) -----

    /// The spec has a problem only the operator could see; the message names the field (Ready=False,
    /// and a Warning Event).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The spec was accepted and is waiting for its first action (Ready=False).
    pub const ACCEPTED: &str = "Accepted";
    /// The ModelDeployment named in spec.deploymentRef does not exist (Ready=False on an Experiment or a
    /// RetrainPolicy, and a Warning Event).
    pub const DEPLOYMENT_NOT_FOUND: &str = "DeploymentNotFound";

    // ----- ModelDeployment conditions -----

    /// Ready=True: the stable version's pods are ready and serve.
    pub const SERVING: &str = "Serving";
    /// Ready=False: the stable version has pods that are not ready.
    pub const PODS_NOT_READY: &str = "PodsNotReady";
    /// Progressing=True: a candidate is being rolled out.
    pub const ROLLOUT_IN_PROGRESS: &str = "RolloutInProgress";
    /// Progressing=True: the first version is being deployed (no candidate yet).
    pub const DEPLOYING: &str = "Deploying";
    /// Progressing=False: one version serves all traffic.
    pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
    /// Degraded=False: nothing needs attention.
    pub const AS_EXPECTED: &str = "AsExpected";
    /// Paused=True: the rollout waits at a pause step or by request.
    pub const PAUSED: &str = "Paused";
    /// Paused=False.
    pub const NOT_PAUSED: &str = "NotPaused";
    /// WeightExact=True: the traffic split is the one the steps ask for.
    pub const EXACT: &str = "Exact";
    /// WeightExact=False: the replicas router cannot give the requested weight with the pods it has.
    pub const REPLICAS_TOO_FEW: &str = "ReplicasTooFew";

    // ----- ModelDeployment Events (Normal): the rollout's transitions -----

    /// The first version of a ModelDeployment is deployed.
    pub const DEPLOYED: &str = "Deployed";
    /// A new version starts its canary steps (also when it replaces a candidate mid-rollout).
    pub const ROLLOUT_STARTED: &str = "RolloutStarted";
    /// A canary step completed and the next one began.
    pub const CANARY_STEP_ADVANCED: &str = "CanaryStepAdvanced";
    /// The candidate became stable and serves all traffic.
    pub const PROMOTED: &str = "Promoted";
    /// `promote --full`: the remaining steps are skipped by request.
    pub const PROMOTED_BY_REQUEST: &str = "PromotedByRequest";
    /// The spec went back to the stable version; the candidate is stopped.
    pub const ROLLOUT_CANCELLED: &str = "RolloutCancelled";
    /// `retry`: a rolled-back candidate starts its steps again.
    pub const ROLLOUT_RETRIED: &str = "RolloutRetried";

    // ----- ModelDeployment Events (Warning) and Degraded=True reasons: what went wrong -----

    /// Rolled back to stable (by `rollback`, or as Progressing=False / Degraded=True after any rollback).
    pub const ROLLED_BACK: &str = "RolledBack";
    /// `abort`: all traffic back to stable by request.
    pub const ABORTED: &str = "Aborted";
    /// Background analysis failed more than failureLimit times, or an analysis gate failed: rolled back.
    pub const ANALYSIS_FAILED: &str = "AnalysisFailed";
    /// One background analysis run failed, within failureLimit.
    pub const ANALYSIS_RUN_FAILED: &str = "AnalysisRunFailed";
    /// A metric could not be measured (provider unreachable, bad answer): the rollout holds.
    pub const METRIC_UNAVAILABLE: &str = "MetricUnavailable";
    /// Metrics stayed unmeasurable longer than `analysis.maxOutage`: rolled back.
    pub const METRIC_OUTAGE: &str = "MetricOutage";
    /// No progress within progressDeadline: rolled back.
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// Degraded: the candidate's pods are failing (crashing, image missing, not getting ready, not
    /// scheduled) while the rollout waits for them; the message says which pod and why.
    pub const CANDIDATE_PODS_FAILING: &str = "CandidatePodsFailing";
    /// `rollback` asked for a version that is not in the history, or whose Deployment is gone.
    pub const ROLLBACK_REFUSED: &str = "RollbackRefused";
    /// The `champion.ml/request` annotation could not be parsed; reported once.
    pub const INVALID_REQUEST: &str = "InvalidRequest";
    /// A control request did nothing in the current phase; the message says why.
    pub const REQUEST_IGNORED: &str = "RequestIgnored";
    /// A generated object could not be applied; the message names it and why.
    pub const APPLY_FAILED: &str = "ApplyFailed";

    // ----- the registry alias a ModelDeployment follows: RegistrySynced (and Ready=False before the
    // first resolution), and Events -----

    /// RegistrySynced=True: the alias was read and what the operator records is written.
    pub const REGISTRY_SYNCED: &str = "Synced";
    /// Event: the alias points at another version than before (a rollout follows).
    pub const ALIAS_MOVED: &str = "AliasMoved";
    /// Event: `kubectl champion promote-version` moved the followed alias.
    pub const ALIAS_MOVED_BY_REQUEST: &str = "AliasMovedByRequest";
    /// The registered model or the alias does not exist.
    pub const ALIAS_NOT_FOUND: &str = "AliasNotFound";
    /// The alias points at a version that cannot be served (no storage location, failed registration).
    pub const VERSION_UNUSABLE: &str = "VersionUnusable";
    /// The alias points at a version whose registration is still pending.
    pub const VERSION_PENDING: &str = "VersionPending";
    /// The registry cannot be reached or does not answer in time.
    pub const REGISTRY_UNREACHABLE: &str = "RegistryUnreachable";
    /// The registry refused the operator's token (or its Secret cannot be read).
    pub const REGISTRY_AUTH_FAILED: &str = "RegistryAuthFailed";
    /// The registry answered something that is not MLflow's REST API (garbage, an HTTP error page, a body
    /// too large).
    pub const REGISTRY_BAD_RESPONSE: &str = "RegistryBadResponse";
    /// The version that serves is no longer in the registry; it keeps serving (Warning Event).
    pub const SERVING_VERSION_DELETED: &str = "ServingVersionDeleted";
    /// Event: a promotion or a rollback was written to the registry (serving alias, tags).
    pub const REGISTRY_RECORDED: &str = "RegistryRecorded";
    /// A promotion or a rollback could not be written to the registry yet; it is written again at the next
    /// poll.
    pub const REGISTRY_WRITE_FAILED: &str = "RegistryWriteFailed";

    // ----- Experiments: Ready and Progressing, and Events -----

    /// The experiment waits: another one goes first on the same ModelDeployment.
    pub const WAITING_FOR_EXPERIMENT: &str = "WaitingForExperiment";
    /// The experiment waits for its ModelDeployment's rollout to end.
    pub const WAITING_FOR_ROLLOUT: &str = "WaitingForRollout";
    /// The variants' pods are starting.
    pub const VARIANTS_STARTING: &str = "VariantsStarting";
    /// The variants serve (Ready=True, Progressing=True).
    pub const EXPERIMENT_RUNNING: &str = "Running";
    /// Event: the variants began to serve.
    pub const EXPERIMENT_STARTED: &str = "ExperimentStarted";
    /// The experiment was stopped before a decision (its ModelDeployment started a rollout).
    pub const EXPERIMENT_ABORTED: &str = "ExperimentAborted";
    /// A guardrail was out of range: the experiment stopped without a winner.
    pub const GUARDRAIL_BREACHED: &str = "GuardrailBreached";
    /// The arms' sample counts do not match the weights: the experiment stopped without a winner.
    pub const SAMPLE_RATIO_MISMATCH: &str = "SampleRatioMismatch";
    /// A winner was decided (the variant, or the control).
    pub const WINNER_DECIDED: &str = "WinnerDecided";
    /// Event: an objective query selects no series for an arm (the experiment waits; check the query).
    pub const OBJECTIVE_NO_DATA: &str = "ObjectiveNoData";
    /// The measured numbers cannot be used (successes above trials, a value that is not a counter, too
    /// few events); no decision is taken from them.
    pub const MEASUREMENT_INVALID: &str = "MeasurementInvalid";
    /// Event: the winner was promoted by moving the registry alias its ModelDeployment follows.
    pub const WINNER_PROMOTED: &str = "WinnerPromoted";
    /// Event: the winner is to be promoted by a change of the ModelDeployment's spec, which the operator
    /// never makes; the message says which (`kubectl champion experiment promote` makes it).
    pub const PROMOTION_NEEDED: &str = "PromotionNeeded";
    /// Event (Warning): the winner could not be promoted through the registry; the message says why.
    pub const PROMOTION_FAILED: &str = "PromotionFailed";
    /// `kubectl champion experiment stop`: stopped by request, no winner.
    pub const STOPPED_BY_REQUEST: &str = "StoppedByRequest";
    /// No decision within `decision.maxDuration`: Inconclusive.
    pub const MAX_DURATION_REACHED: &str = "MaxDurationReached";

    // ----- RetrainPolicies: Ready and Progressing, and Events -----

    /// Waiting for a trigger.
    pub const IDLE: &str = "Idle";
    /// A run's training Jobs run.
    pub const TRAINING: &str = "Training";
    /// A run's evaluation Job runs.
    pub const EVALUATING: &str = "Evaluating";
    /// A run's candidate is being registered and promoted.
    pub const PROMOTING: &str = "Promoting";
    /// A run ended; the next waits for the cooldown.
    pub const COOLING_DOWN: &str = "CoolingDown";
    /// Event: a trigger started a run.
    pub const RUN_STARTED: &str = "RunStarted";
    /// Event: a trigger fired but started no run (cooldown, or a run under way with Forbid).
    pub const TRIGGER_DROPPED: &str = "TriggerDropped";
    /// A metric trigger's query failed or returned nothing.
    pub const TRIGGER_UNAVAILABLE: &str = "TriggerUnavailable";
    /// Event (Warning): a training trial failed or reported nothing usable.
    pub const TRIAL_FAILED: &str = "TrialFailed";
    /// Event: training ended and the candidate's evaluation started.
    pub const EVALUATION_STARTED: &str = "EvaluationStarted";
    /// The candidate failed a gate; nothing is promoted.
    pub const CANDIDATE_REJECTED: &str = "CandidateRejected";
    /// The candidate passed the gates and waits for `kubectl champion promote-run` or a spec change.
    pub const CANDIDATE_EVALUATED: &str = "CandidateEvaluated";
    /// Event: the candidate was registered and the followed alias moved to it.
    pub const CANDIDATE_PROMOTED: &str = "CandidatePromoted";
    /// Event: the ModelDeployment serves the promoted candidate as stable.
    pub const CANDIDATE_SERVING: &str = "CandidateServing";
    /// Event (Warning): the ModelDeployment rolled the promoted candidate back.
    pub const CANDIDATE_ROLLED_BACK: &str = "CandidateRolledBack";
    /// A run failed (a Job, a report, or the champion's location); nothing is promoted.
    pub const RUN_FAILED: &str = "RunFailed";
    /// Event: a run was stopped because a newer one replaced it.
    pub const RUN_CANCELLED: &str = "RunCancelled";
    /// Event (Warning): the tracking server could not open a run's MLflow run; the run goes on untracked.
    pub const TRACKING_UNAVAILABLE: &str = "TrackingUnavailable";
    /// Event (Warning): a trial's metric differs between MLflow and its termination message (MLflow's is
    /// used), or the report was unusable and MLflow's metrics were used.
    pub const METRICS_DISAGREE: &str = "MetricsDisagree";

    /// Every reason above, for checks over all of them.
    pub const ALL: &[&str] = &[
        INVALID_SPEC,
        ACCEPTED,
        DEPLOYMENT_NOT_FOUND,
        SERVING,
        PODS_NOT_READY,
        ROLLOUT_IN_PROGRESS,
        DEPLOYING,
        ROLLOUT_COMPLETE,
        AS_EXPECTED,
        PAUSED,
        NOT_PAUSED,
        EXACT,
        REPLICAS_TOO_FEW,
        DEPLOYED,
        ROLLOUT_STARTED,
        CANARY_STEP_ADVANCED,
        PROMOTED,
        PROMOTED_BY_REQUEST,
        ROLLOUT_CANCELLED,
        ROLLOUT_RETRIED,
        ROLLED_BACK,
        ABORTED,
        ANALYSIS_FAILED,
        ANALYSIS_RUN_FAILED,
        METRIC_UNAVAILABLE,
        METRIC_OUTAGE,
        PROGRESS_DEADLINE_EXCEEDED,
        CANDIDATE_PODS_FAILING,
        ROLLBACK_REFUSED,
        INVALID_REQUEST,
        REQUEST_IGNORED,
        APPLY_FAILED,
        REGISTRY_SYNCED,
        ALIAS_MOVED,
        ALIAS_MOVED_BY_REQUEST,
        ALIAS_NOT_FOUND,
        VERSION_UNUSABLE,
        VERSION_PENDING,
        REGISTRY_UNREACHABLE,
        REGISTRY_AUTH_FAILED,
        REGISTRY_BAD_RESPONSE,
        SERVING_VERSION_DELETED,
        REGISTRY_RECORDED,
        REGISTRY_WRITE_FAILED,
        WAITING_FOR_EXPERIMENT,
        WAITING_FOR_ROLLOUT,
        VARIANTS_STARTING,
        EXPERIMENT_RUNNING,
        EXPERIMENT_STARTED,
        EXPERIMENT_ABORTED,
        MAX_DURATION_REACHED,
        GUARDRAIL_BREACHED,
        SAMPLE_RATIO_MISMATCH,
        WINNER_DECIDED,
        MEASUREMENT_INVALID,
        OBJECTIVE_NO_DATA,
        WINNER_PROMOTED,
        PROMOTION_NEEDED,
        PROMOTION_FAILED,
        STOPPED_BY_REQUEST,
        IDLE,
        TRAINING,
        EVALUATING,
        PROMOTING,
        COOLING_DOWN,
        RUN_STARTED,
        TRIGGER_DROPPED,
        TRIGGER_UNAVAILABLE,
        TRIAL_FAILED,
        EVALUATION_STARTED,
        CANDIDATE_REJECTED,
        CANDIDATE_EVALUATED,
        CANDIDATE_PROMOTED,
        CANDIDATE_SERVING,
        CANDIDATE_ROLLED_BACK,
        RUN_FAILED,
        RUN_CANCELLED,
        TRACKING_UNAVAILABLE,
        METRICS_DISAGREE,
    ];
}

/// Annotation keys read by the operator.
pub mod annotations {
    /// A control request (`promote`, `abort`, ...) for the operator to consume once; see
    /// `docs/requests.md`.
    pub const REQUEST: &str = "champion.ml/request";
    /// The model version a generated Deployment serves.
    pub const MODEL_VERSION: &str = "champion.ml/model-version";
    /// A hash of what the operator last applied to a generated object, so a field it stops setting (a
    /// selector key, a mirror filter) is seen as a change even though the object still holds it.
    pub const APPLIED: &str = "champion.ml/applied";
    /// On a built-in router's pod: a hash of the router configuration the operator last wrote. Changing it
    /// makes the kubelet sync the pod, which refreshes its ConfigMap volume at once instead of at its next
    /// periodic sync (a minute by default).
    pub const ROUTER_CONFIG: &str = "champion.ml/router-config";
}

#[cfg(test)]
mod tests {
    use super::reasons;

    #[test]
    fn reasons_are_unique_camel_case_words() {
        let mut seen = std::collections::BTreeSet::new();
        for r in reasons::ALL {
            assert!(seen.insert(*r), "{r} twice");
            // What the API server accepts as a condition reason, in Kubernetes' CamelCase style.
            assert!(r.len() <= 1024 && r.starts_with(|c: char| c.is_ascii_uppercase()), "{r}");
            assert!(r.chars().all(|c| c.is_ascii_alphanumeric()), "{r}");
        }
        // The source lists every constant of the module in ALL.
        let source = include_str!("names.rs");
        let module = &source[source.find("pub mod reasons").unwrap_or(0)..source.find("pub const ALL").unwrap_or(0)];
        let declared = module.matches("pub const ").count();
        assert_eq!(declared, reasons::ALL.len(), "a reason is missing from reasons::ALL");
    }
}
