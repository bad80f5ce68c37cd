//! The three custom resources of `champion.ml/v1alpha1` and the types they share. Types only.

pub mod common;
pub mod duration;
// Clippy reads repeated `printcolumn(type_ = ..)` arguments of the derive as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
pub mod experiment;
// Clippy reads repeated `printcolumn(type_ = ..)` arguments of the derive as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
pub mod model_deployment;
// Clippy reads repeated `printcolumn(type_ = ..)` arguments of the derive as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
pub mod retrain_policy;

pub use common::{
    DeploymentRef, JobTemplate, MetricCheck, ModelRef, OnNoData, PodTemplate, PrometheusQuery, ThresholdRange,
};
pub use duration::Duration;
pub use experiment::{Experiment, ExperimentPhase, ExperimentSpec, ExperimentStatus};
pub use model_deployment::{DeploymentPhase, ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus};
pub use retrain_policy::{RetrainPhase, RetrainPolicy, RetrainPolicySpec, RetrainPolicyStatus};

#[cfg(test)]
mod cel_tests;
