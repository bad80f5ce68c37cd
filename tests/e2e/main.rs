//! End-to-end tests: the real `champion` binary against the real control plane of `tests/cluster/`.
//!
//! Run them with `hack/test.sh`, which builds and starts the cluster, Prometheus and MLflow, sets
//! `CHAMPION_E2E_DIR` and tears everything down afterwards. Each test gets its own namespace and, when it
//! needs one, its own operator process (see `harness.rs`).

mod harness;

mod analysis;
mod bad_input;
mod examples;
mod experiment;
mod follow;
mod hardening;
mod install;
mod md;
mod real_node;
mod registry;
mod retrain;
mod rollout;
mod router;
