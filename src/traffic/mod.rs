//! Traffic routers: each turns the decided split (stable, candidate and mirror weights) into the object
//! its router reads. `gatewayAPI` generates an HTTPRoute, `istio` a VirtualService; `replicas` needs
//! no object (the pod ratio behind the stable Service is the split).

pub mod gateway_api;
pub mod istio;
pub mod replicas;

use kube::core::ApiResource;

use crate::api::ModelDeployment;
use crate::api::model_deployment::Router;

/// The split a router must put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Percent of live traffic on the stable Service.
    pub stable: i32,
    /// Percent of live traffic on the candidate Service (0 when there is no candidate).
    pub candidate: i32,
    /// Percent of live requests copied to the mirror Service.
    pub mirror: i32,
    /// Whether a candidate Service exists.
    pub has_candidate: bool,
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

/// Turns a split into the object one kind of router reads.
pub trait TrafficRouter: Sync {
    /// The object to apply, or `None` when the router needs none.
    fn route(&self, md: &ModelDeployment, split: &Split) -> Option<RouteObject>;
    /// The kinds of object this router may have generated, to clean up after a router change.
    fn resource(&self) -> Option<ApiResource>;
}

/// The router a spec names.
pub fn for_router(router: Router) -> &'static dyn TrafficRouter {
    match router {
        Router::GatewayApi => &gateway_api::GatewayApi,
        Router::Istio => &istio::Istio,
        Router::Replicas => &replicas::Replicas,
    }
}

/// All routers, for cleaning up objects of routers a spec no longer names.
pub fn all() -> [&'static dyn TrafficRouter; 3] {
    [&gateway_api::GatewayApi, &istio::Istio, &replicas::Replicas]
}
