//! Revisions: a revision is identified by a hash of what the model server runs (the model reference
//! and the pod template), so the same spec always maps to the same generated Deployment.

use sha2::{Digest, Sha256};

use crate::api::{ModelDeploymentSpec, ModelRef, PodTemplate};

/// What a spec asks to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The revision hash (10 hex characters).
    pub hash: String,
    /// The model version.
    pub version: String,
    /// The model URI.
    pub uri: String,
}

/// The revision hash of a model reference and pod template.
pub fn hash(model: &ModelRef, template: &PodTemplate) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(model).unwrap_or_default());
    h.update([0]);
    h.update(serde_json::to_vec(&template.0).unwrap_or_default());
    let digest = h.finalize();
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// The target of a spec with a pinned version; `None` while the version comes from a registry alias
/// that has not been resolved.
pub fn target(spec: &ModelDeploymentSpec) -> Option<Target> {
    let version = spec.model.version.clone()?;
    let uri = spec.model.uri.clone()?;
    Some(Target { hash: hash(&spec.model, &spec.template), version, uri })
}

/// The name of the Deployment serving a revision.
pub fn deployment_name(md: &str, hash: &str) -> String {
    format!("{md}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn hash_follows_model_and_template_only() {
        let a = fixtures::model_deployment("fraud").spec;
        let mut b = a.clone();
        b.replicas = Some(7);
        b.strategy = None;
        assert_eq!(target(&a).unwrap().hash, target(&b).unwrap().hash, "replicas and steps are not the revision");
        b.model = fixtures::model("1.1.0");
        assert_ne!(target(&a).unwrap().hash, target(&b).unwrap().hash);
        let mut c = a.clone();
        c.template.0["spec"]["containers"][0]["image"] = "example.invalid/fraud-server:2".into();
        assert_ne!(target(&a).unwrap().hash, target(&c).unwrap().hash);
        assert_eq!(target(&a).unwrap().hash.len(), 10);
    }
}
