//! Traffic routers: each turns a list of weighted backends and mirrors (and an optional sticky header)
//! into the objects its router reads. `gatewayAPI` generates an HTTPRoute, `istio` a VirtualService,
//! `builtin` the ConfigMap of Champion's own router; `replicas` needs no object (the pod ratio behind
//! the stable Service is the split). What a router can
//! do is part of the router ([`Capabilities`]), so callers ask it instead of matching on its kind.
//!
//! The ModelDeployment's apply is the single writer of its routing objects; other kinds (an
//! Experiment's variants) contribute [`Backend`]s and [`Mirror`]s to the [`Routing`] it hands over.

pub mod builtin;
pub mod gateway_api;
pub mod istio;
pub mod replicas;
pub mod sticky;

use kube::core::ApiResource;

use crate::api::ModelDeployment;
use crate::api::model_deployment::Router;

/// One Service that receives a share of live traffic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Backend {
    /// The Service's name (in the ModelDeployment's namespace).
    pub service: String,
    /// Percent of live traffic.
    pub weight: i32,
    /// The variant it serves (`stable`, `candidate`, an Experiment's variant), as routers that label
    /// their own metrics name it; empty means the Service's name.
    pub variant: String,
    /// The model version it serves, when known.
    pub version: Option<String>,
}

impl Backend {
    /// A backend with no variant name or version.
    pub fn new(service: impl Into<String>, weight: i32) -> Self {
        Backend { service: service.into(), weight, ..Backend::default() }
    }
}

/// One Service that receives copies of live requests; its answers are dropped (the built-in router
/// compares them with the live answers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mirror {
    /// The Service's name (in the ModelDeployment's namespace).
    pub service: String,
    /// Percent of live requests copied to it (1..=100).
    pub percent: i32,
    /// The variant it serves, as in [`Backend::variant`].
    pub variant: String,
    /// The model version it serves, when known.
    pub version: Option<String>,
}

impl Mirror {
    /// A mirror with no variant name or version.
    pub fn new(service: impl Into<String>, percent: i32) -> Self {
        Mirror { service: service.into(), percent, ..Mirror::default() }
    }
}

/// Everything a router must put in place.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routing {
    /// The backends, the first being the stable one; weights add up to 100.
    pub backends: Vec<Backend>,
    /// The mirrors (only those with a percentage above 0).
    pub mirrors: Vec<Mirror>,
    /// When set, requests carrying this header stay on one backend (see [`sticky`]).
    pub sticky_header: Option<String>,
    /// The ClusterIP of each Service by name, for routers that reach Services by address rather than
    /// by DNS name (the built-in router); filled from the Services the operator observes.
    pub addresses: std::collections::BTreeMap<String, String>,
}

impl Routing {
    /// The weight of the backend `service` (0 when it is not a backend).
    pub fn weight_of(&self, service: &str) -> i32 {
        self.backends.iter().filter(|b| b.service == service).map(|b| b.weight).sum()
    }
}

/// What a router can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Splits requests by exact percentages (otherwise the split is the ratio of pods).
    pub exact_split: bool,
    /// Copies requests to mirrors.
    pub mirror: bool,
    /// Matches request headers (for sticky assignment).
    pub header_match: bool,
}

/// A generated routing object.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteObject {
    /// Which API it belongs to.
    pub resource: ApiResource,
    /// Its name.
    pub name: String,
    /// The whole object, ready for server-side apply.
    pub body: serde_json::Value,
}

/// Turns a [`Routing`] into the objects one kind of router reads.
pub trait TrafficRouter: Sync {
    /// What this router can do.
    fn capabilities(&self) -> Capabilities;
    /// The objects to apply (none when the router needs none, or its settings are missing).
    fn objects(&self, md: &ModelDeployment, routing: &Routing) -> Vec<RouteObject>;
    /// The kind of object this router generates, to watch it and to clean up after a router change.
    fn resource(&self) -> Option<ApiResource>;
}

/// The router a spec names.
pub fn for_router(router: Router) -> &'static dyn TrafficRouter {
    match router {
        Router::GatewayApi => &gateway_api::GatewayApi,
        Router::Istio => &istio::Istio,
        Router::Replicas => &replicas::Replicas,
        Router::Builtin => &builtin::Builtin,
    }
}

/// All routers, for watching their objects and cleaning up those of routers a spec no longer names.
pub fn all() -> [&'static dyn TrafficRouter; 4] {
    [&gateway_api::GatewayApi, &istio::Istio, &replicas::Replicas, &builtin::Builtin]
}
