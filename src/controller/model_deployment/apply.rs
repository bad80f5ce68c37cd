//! Puts [`DesiredObjects`] in place with server-side apply under the field manager `champion`, in the
//! order the build step grouped them (new pods, Services, route, fewer pods, deletions), writing only
//! objects that the cache does not already show as desired and deleting only objects that exist.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::{Resource, ResourceExt};
use serde::Serialize;

use crate::api::ModelDeployment;
use crate::names::FIELD_MANAGER;
use crate::rollout::desired::{DesiredObjects, Observed, up_to_date, with_applied_hash};

/// A generated object that could not be applied or deleted.
#[derive(Debug, thiserror::Error)]
#[error("{action} {object}: {source}")]
pub struct ApplyError {
    /// `apply` or `delete`.
    pub action: &'static str,
    /// The object, as `Kind name`.
    pub object: String,
    /// What the API server said.
    #[source]
    pub source: kube::Error,
}

impl ApplyError {
    /// Whether the API server refused the object itself (4xx other than a conflict or throttling):
    /// retrying the same object will not help, the user must change something.
    pub fn refused(&self) -> bool {
        matches!(&self.source, kube::Error::Api(s) if (400..500).contains(&s.code) && s.code != 409 && s.code != 429)
    }
}

/// What an apply did: the number of writes (patches and deletes).
pub type Writes = usize;

fn params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

fn fail(action: &'static str, kind: &str, name: &str) -> impl FnOnce(kube::Error) -> ApplyError {
    let object = format!("{kind} {name}");
    move |source| ApplyError { action, object, source }
}

/// Applies `obj`, with the hash of what is applied (see [`with_applied_hash`]), unless `current` already
/// shows it.
pub(crate) async fn apply_one<K, C>(
    api: &Api<K>,
    kind: &str,
    name: &str,
    obj: &K,
    current: Option<&C>,
) -> Result<Writes, ApplyError>
where
    K: Resource + Clone + Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
    C: Serialize,
{
    let desired = with_applied_hash(serde_json::to_value(obj).unwrap_or_default());
    if current.and_then(|c| serde_json::to_value(c).ok()).is_some_and(|c| up_to_date(&desired, &c)) {
        return Ok(0);
    }
    api.patch(name, &params(), &Patch::Apply(&desired)).await.map_err(fail("apply", kind, name))?;
    Ok(1)
}

pub(crate) async fn delete_one<K>(api: &Api<K>, kind: &str, name: &str) -> Result<Writes, ApplyError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(1),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(1),
        Err(e) => Err(fail("delete", kind, name)(e)),
    }
}

fn dynamic_api(client: &kube::Client, ns: &str, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, resource)
}

/// Applies `objects` in order; stops at the first failure, which names the object.
pub async fn apply(
    client: &kube::Client,
    md: &ModelDeployment,
    objects: &DesiredObjects,
    observed: &Observed,
) -> Result<Writes, ApplyError> {
    let ns = md.namespace().unwrap_or_default();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let cached_deployment = |name: &str| {
        observed.deployments.values().chain(observed.router.iter()).find(|d| d.metadata.name.as_deref() == Some(name))
    };
    let mut writes = 0;
    for d in &objects.scale_up {
        let name = d.name_any();
        writes += apply_one(&deployments, "Deployment", &name, d, cached_deployment(&name)).await?;
    }
    for s in &objects.services {
        let name = s.name_any();
        writes += apply_one(&services, "Service", &name, s, observed.services.get(&name)).await?;
    }
    for r in &objects.routes {
        let api = dynamic_api(client, &ns, &r.resource);
        let cached = observed
            .routes
            .iter()
            .find(|(res, o)| res.kind == r.resource.kind && o.metadata.name.as_deref() == Some(r.name.as_str()))
            .map(|(_, o)| o);
        let obj: DynamicObject = serde_json::from_value(r.body.clone()).map_err(|e| ApplyError {
            action: "apply",
            object: format!("{} {}", r.resource.kind, r.name),
            source: kube::Error::SerdeError(e),
        })?;
        writes += apply_one(&api, &r.resource.kind, &r.name, &obj, cached).await?;
    }
    for d in &objects.scale_down {
        let name = d.name_any();
        writes += apply_one(&deployments, "Deployment", &name, d, cached_deployment(&name)).await?;
    }
    for (resource, name) in &objects.delete_routes {
        writes += delete_one(&dynamic_api(client, &ns, resource), &resource.kind, name).await?;
    }
    for name in &objects.delete_services {
        writes += delete_one(&services, "Service", name).await?;
    }
    for name in &objects.delete_deployments {
        writes += delete_one(&deployments, "Deployment", name).await?;
    }
    for hash in &objects.lost {
        tracing::warn!(revision = %hash, "the Deployment of this revision is gone and cannot be rebuilt");
    }
    Ok(writes)
}
