//! The CustomResourceDefinitions of the three kinds, as the operator generates them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::{Experiment, ModelDeployment, RetrainPolicy};

/// The CRDs with the file name each is committed under in `crds/`.
pub fn all() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("modeldeployments.yaml", ModelDeployment::crd()),
        ("experiments.yaml", Experiment::crd()),
        ("retrainpolicies.yaml", RetrainPolicy::crd()),
    ]
}

/// One CRD as YAML, as committed in `crds/`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::ser::Error> {
    serde_saphyr::to_string(crd)
}

/// All CRDs as one multi-document YAML stream, as `champion crds` prints it.
pub fn all_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for (_, crd) in all() {
        out.push_str("---\n");
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}
