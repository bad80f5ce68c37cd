//! Revisions: a revision is identified by a hash of what the model server runs (the model reference
//! and the pod template), so the same spec always maps to the same generated Deployment.

use sha2::{Digest, Sha256};

use crate::api::model_deployment::{RegisteredVersion, RegistryStatus};
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
    /// The registered model and the registry's version number, when the version comes from a registry
    /// alias.
    pub registry: Option<RegisteredVersion>,
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

/// The target of a spec with a pinned version; `None` when the version comes from a registry alias (see
/// [`resolved_target`]).
pub fn target(spec: &ModelDeploymentSpec) -> Option<Target> {
    let version = spec.model.version.clone()?;
    let uri = spec.model.uri.clone()?;
    Some(Target { hash: hash(&spec.model, &spec.template), version, uri, registry: None })
}

/// The target of a spec that follows a registry alias, from what the alias pointed at when last read
/// (`status.registry`); `None` until it has been resolved once, or when the spec follows another model or
/// alias than the one resolved.
///
/// The revision is what the server runs: the registered model, the registry's version number, its
/// storage location and the template. The alias's name is not part of it, so following another alias
/// that points at the same version starts no rollout.
pub fn resolved_target(spec: &ModelDeploymentSpec, resolved: &RegistryStatus) -> Option<Target> {
    let follow = spec.model.registry.as_ref()?;
    if follow.model != resolved.model || follow.alias != resolved.alias {
        return None;
    }
    let number = resolved.version.clone()?;
    let uri = resolved.source.clone()?;
    let version = resolved.model_version.clone().unwrap_or_else(|| number.clone());
    let mut h = Sha256::new();
    h.update(b"registry\0");
    for part in [follow.model.as_str(), number.as_str(), uri.as_str()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(serde_json::to_vec(&spec.template.0).unwrap_or_default());
    let hash = h.finalize().iter().take(5).map(|b| format!("{b:02x}")).collect();
    Some(Target {
        hash,
        version,
        uri,
        registry: Some(RegisteredVersion { model: follow.model.clone(), version: number }),
    })
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

    #[test]
    fn a_resolved_alias_is_a_revision_of_model_version_source_and_template() {
        let mut spec = fixtures::model_deployment("fraud").spec;
        spec.model = ModelRef { version: None, uri: None, registry: Some(crate::api::common::RegistryRef::sample()) };
        let resolved = RegistryStatus {
            model: "fraud".into(),
            alias: "champion".into(),
            version: Some("3".into()),
            model_version: Some("2.1.0".into()),
            source: Some("s3://models/fraud/3".into()),
            ..RegistryStatus::default()
        };
        let t = resolved_target(&spec, &resolved).unwrap();
        assert_eq!((t.version.as_str(), t.uri.as_str()), ("2.1.0", "s3://models/fraud/3"));
        assert_eq!(t.registry.as_ref().map(|r| r.version.as_str()), Some("3"));
        assert_eq!(t.registry.as_ref().unwrap().models_uri(), "models:/fraud/3");
        assert_eq!(t.hash.len(), 10);
        // Another version number or source is another revision; the tag-derived version alone is not.
        let other = |f: &dyn Fn(&mut RegistryStatus)| {
            let mut r = resolved.clone();
            f(&mut r);
            resolved_target(&spec, &r).unwrap().hash
        };
        assert_ne!(other(&|r| r.version = Some("4".into())), t.hash);
        assert_ne!(other(&|r| r.source = Some("s3://models/fraud/3b".into())), t.hash);
        assert_eq!(other(&|r| r.model_version = None), t.hash);
        // Following another alias or model than the one resolved: not resolved yet.
        let mut elsewhere = spec.clone();
        elsewhere.model.registry.as_mut().unwrap().alias = "challenger".into();
        assert_eq!(resolved_target(&elsewhere, &resolved), None);
        // Unresolved (no version yet) or a pinned spec: none.
        assert_eq!(resolved_target(&spec, &RegistryStatus { version: None, ..resolved.clone() }), None);
        assert_eq!(resolved_target(&fixtures::model_deployment("fraud").spec, &resolved), None);
    }
}
