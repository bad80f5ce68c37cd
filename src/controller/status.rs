//! Writing status and Events: status goes out as a server-side apply patch under the field manager
//! `champion`, and only when it changed; Events mark transitions.

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::context::Context;
use super::error::Result;
use crate::conditions::Transition;
use crate::names::FIELD_MANAGER;

/// A namespaced kind whose objects the controllers read and write.
pub trait NamespacedKind:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug
{
}

impl<K> NamespacedKind for K where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
{
}

/// Applies `status` to the object's status subresource when it differs (timestamps aside) from
/// `current`. Returns whether a write happened.
pub async fn write_if_changed<K, S>(ctx: &Context, obj: &K, current: Option<&S>, status: &S) -> Result<bool>
where
    K: NamespacedKind,
    S: Serialize,
{
    if !crate::conditions::differs(current, status) {
        return Ok(false);
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let mut patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    // The status was decided from this version of the object; if the object moved on meanwhile (a
    // reconcile from a stale cache), the write fails with a conflict and the reconcile runs again on
    // fresh data, so a request is never acted on twice.
    if let Some(rv) = obj.resource_version() {
        patch["metadata"] = serde_json::json!({ "resourceVersion": rv });
    }
    api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(true)
}

/// Publishes an Event about `obj`. A failure to publish is logged, not returned: an Event is a
/// notice, and the status already holds the truth.
pub async fn publish<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, t: &Transition) {
    let event = Event {
        type_: if t.warning { EventType::Warning } else { EventType::Normal },
        reason: t.reason.clone(),
        note: Some(t.message.chars().take(1000).collect()),
        // kube's recorder folds Events with the same reason and action into one series that keeps the
        // first note; the note as the action keeps distinct transitions (step 2, step 3) apart.
        action: t.message.chars().take(128).collect(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason = %t.reason, "could not publish event");
    }
}
