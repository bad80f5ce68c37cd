//! champion-router: Champion's data plane, a small reverse proxy that Champion deploys per ModelDeployment.
//!
//! It splits live traffic between any number of backends by exact weights (or sticks a user to one by a header),
//! copies a share of the requests to shadow backends and compares their JSON answers with the live ones, gives every
//! prediction an ID and logs it, joins ground-truth feedback with recent predictions, and exposes all of it as
//! Prometheus metrics. See `docs/router.md`.
//!
//! The modules `config`, `compare`, `split` and `window` are pure and always built; the operator uses `config` to
//! write the router's ConfigMap. The proxy (`server`) is behind the default feature `server`.

#![warn(missing_docs)]

pub mod compare;
pub mod config;
pub mod split;
pub mod window;

#[cfg(feature = "server")]
pub mod server;
