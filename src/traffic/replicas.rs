//! The `replicas` router: no routing object; the split is the pod ratio behind the one stable Service
//! (see `rollout::replicas`), so it can neither split exactly, nor mirror, nor match headers.

use kube::core::ApiResource;

use super::{Capabilities, RouteObject, Routing, TrafficRouter};
use crate::api::ModelDeployment;

/// The replica-ratio router.
pub struct Replicas;

impl TrafficRouter for Replicas {
    fn capabilities(&self) -> Capabilities {
        Capabilities { exact_split: false, mirror: false, header_match: false }
    }

    fn objects(&self, _md: &ModelDeployment, _routing: &Routing) -> Vec<RouteObject> {
        Vec::new()
    }

    fn resource(&self) -> Option<ApiResource> {
        None
    }
}
