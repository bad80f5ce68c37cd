//! Tells the built-in router's pods that their configuration changed. The router re-reads its ConfigMap
//! volume every second, but the kubelet rewrites that volume only when it syncs the pod: every
//! `syncFrequency` (a minute by default), or at once when the pod itself changes. So after the ConfigMap
//! is written, each router pod gets the configuration's hash as an annotation
//! ([`annotations::ROUTER_CONFIG`]); the kubelet syncs the pod and the step reaches the router in seconds.
//! A failure here only delays the step until the next periodic sync, so it is logged, not reported.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::api::ModelDeployment;
use crate::controller::Context;
use crate::names::{FIELD_MANAGER, annotations, labels};
use crate::traffic::RouteObject;
use crate::traffic::builtin::{config_hash, pods_to_tell};

/// Annotates every router pod of `md` not yet told of the configuration among `routes`.
pub async fn tell(ctx: &Context, md: &ModelDeployment, routes: &[RouteObject]) {
    let Some(hash) = config_hash(md, routes) else { return };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &md.namespace().unwrap_or_default());
    let lp = ListParams::default().labels(&format!("{}={}", labels::ROUTER, md.name_any()));
    let list = match pods.list(&lp).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the router's pods to tell them of a new configuration");
            return;
        }
    };
    let patch = json!({"metadata": {"annotations": {annotations::ROUTER_CONFIG: hash}}});
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
    for name in pods_to_tell(&list.items, &hash) {
        if let Err(e) = pods.patch(name, &params, &Patch::Merge(&patch)).await {
            tracing::warn!(pod = name, error = %e, "cannot tell a router pod of a new configuration");
        }
    }
}
