//! The `replicas` router: no routing object; the split is the pod ratio (see `rollout::replicas`).

use kube::core::ApiResource;

use super::{RouteObject, Split, TrafficRouter};
use crate::api::ModelDeployment;

/// The replica-ratio router.
pub struct Replicas;

impl TrafficRouter for Replicas {
    fn route(&self, _md: &ModelDeployment, _split: &Split) -> Option<RouteObject> {
        None
    }

    fn resource(&self) -> Option<ApiResource> {
        None
    }
}
