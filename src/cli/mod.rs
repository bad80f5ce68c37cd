//! The `kubectl champion` plugin's rendering and request logic, kept apart from its I/O so it can be
//! tested.

pub mod experiment;
pub mod history;
pub mod runs;
pub mod status;
