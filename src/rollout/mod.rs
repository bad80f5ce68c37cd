//! Pure rollout decisions: revisions, replica splits, control requests and the step machine. No I/O;
//! `now` is passed in.

pub mod desired;
pub mod plan;
pub mod pods;
pub mod replicas;
pub mod request;
pub mod revision;
pub mod shadow;
