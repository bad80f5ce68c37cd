//! Metric analysis: from a metric check in a spec to a verdict in a status.
//!
//! - [`template`] fills in a query's `{{placeholders}}` (namespace, name, variant, version, revision,
//!   service, interval, window); [`candidate_vars`] gives the values that select a rollout candidate's series.
//! - [`builtin`] writes the PromQL of the built-in router's metrics (`builtin: errorRate` and others).
//! - [`prometheus`] asks a Prometheus server an instant query and reads the answer as one number, or "no
//!   data", or an error that says what to fix. Its parser is pure; its client bounds time and size.
//! - [`verdict`] judges a measurement against a threshold range ([`verdict::judge`], pure) and runs one
//!   check end to end ([`verdict::measure`]).
//!
//! Nothing here touches the Kubernetes API. Provider URLs come from the operator config by name, never
//! from a spec, and results carry parsed numbers and short messages only, never raw responses.
//!
//! A measurement that could not be taken is `Verdict::Error`, never `Fail`: a broken Prometheus holds a
//! rollout, it does not roll it back.

pub mod builtin;
pub mod prometheus;
pub mod router_scrape;
pub mod stats;
pub mod template;
pub mod verdict;

pub use prometheus::{PrometheusClient, ProviderError, Sample};
pub use template::{TemplateVars, candidate_vars, render};
pub use verdict::{judge, measure};
