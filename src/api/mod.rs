//! The three custom resources of `champion.ml/v1alpha1` and the types they share. Types only.

pub mod common;
pub mod duration;
pub mod experiment;
pub mod model_deployment;
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
