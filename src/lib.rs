//! Champion: a Kubernetes operator that carries ML models from a trained artifact into production.

pub mod api;
pub mod crds;
pub mod fixtures;
pub mod names;
