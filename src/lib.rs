//! Champion: a Kubernetes operator that carries ML models from a trained artifact into production.

pub mod analysis;
pub mod api;
pub mod cli;
pub mod conditions;
pub mod config;
pub mod controller;
pub mod crds;
pub mod experiment;
pub mod fixtures;
pub mod metrics;
pub mod names;
pub mod registry;
pub mod resources;
pub mod retrain;
pub mod rollout;
pub mod server;
pub mod telemetry;
pub mod traffic;
pub mod validation;
