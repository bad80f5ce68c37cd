//! Builders of the objects Champion generates for a ModelDeployment: one Deployment per revision and
//! the Services in front of them. Pure: they return objects, the reconciler applies them.

pub mod deployment;
pub mod router;
pub mod service;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::api::ModelDeployment;
use crate::names::{FIELD_MANAGER, labels};

/// The owner reference every generated object carries, so deleting the ModelDeployment deletes them.
pub fn owner(md: &ModelDeployment) -> OwnerReference {
    md.controller_owner_ref(&()).unwrap_or_else(|| OwnerReference {
        api_version: ModelDeployment::api_version(&()).into_owned(),
        kind: ModelDeployment::kind(&()).into_owned(),
        name: md.name_any(),
        uid: md.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Labels common to every generated object of `md`.
pub fn common_labels(md: &ModelDeployment) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::DEPLOYMENT.to_string(), md.name_any()),
        (labels::MANAGED_BY.to_string(), FIELD_MANAGER.to_string()),
    ])
}

/// Metadata of a generated object: name, namespace, labels, owner.
pub fn meta(md: &ModelDeployment, name: &str, extra_labels: BTreeMap<String, String>) -> ObjectMeta {
    let mut l = common_labels(md);
    l.extend(extra_labels);
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: md.namespace(),
        labels: Some(l),
        owner_references: Some(vec![owner(md)]),
        ..ObjectMeta::default()
    }
}
