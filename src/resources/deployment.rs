//! The Deployment of one revision.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{EnvVar, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

use crate::api::ModelDeployment;
use crate::api::model_deployment::RegisteredVersion;
use crate::names::{annotations, labels};
use crate::rollout::revision::deployment_name;

/// The environment variable naming the model (the ModelDeployment's name), set in every container and
/// init container.
pub const MODEL_NAME: &str = "MODEL_NAME";
/// The environment variable with the model version, set in every container and init container.
pub const MODEL_VERSION: &str = "MODEL_VERSION";
/// The environment variable with the model URI, set in every container and init container.
pub const MODEL_URI: &str = "MODEL_URI";
/// The environment variable with the registry's URI of the version (`models:/<model>/<version>`), set
/// beside the others when the version comes from a registry alias.
pub const MODEL_REGISTRY_URI: &str = "MODEL_REGISTRY_URI";

/// What a revision serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// The revision hash.
    pub hash: String,
    /// The model version.
    pub version: String,
    /// The model URI.
    pub uri: String,
    /// The pod template (from the spec for the spec's revision, from the cluster for older ones).
    pub template: PodTemplateSpec,
    /// The registry version, when the version comes from a registry alias (read back from
    /// `MODEL_REGISTRY_URI` for revisions no longer in the spec).
    pub registry: Option<RegisteredVersion>,
}

/// The pod labels that select a revision's pods.
pub fn selector(md: &ModelDeployment, hash: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(labels::DEPLOYMENT.to_string(), md.name_any()), (labels::REVISION.to_string(), hash.to_string())])
}

/// The Deployment of `rev` with `replicas` pods, labelled with its `variant` (stable, candidate, ...).
/// The variant is on the Deployment only, not on its pods: promotion relabels no pod.
pub fn build(md: &ModelDeployment, rev: &Revision, replicas: i32, variant: &str) -> Deployment {
    let pod_labels = selector(md, &rev.hash);
    let mut template = rev.template.clone();
    let tmeta = template.metadata.get_or_insert_with(Default::default);
    tmeta.labels.get_or_insert_with(BTreeMap::new).extend(pod_labels.clone());
    if let Some(spec) = template.spec.as_mut() {
        // Init containers too: storage initializers (KServe's, for one) fetch MODEL_URI before the server runs.
        let mut model_env =
            vec![(MODEL_NAME, md.name_any()), (MODEL_VERSION, rev.version.clone()), (MODEL_URI, rev.uri.clone())];
        model_env.extend(rev.registry.as_ref().map(|r| (MODEL_REGISTRY_URI, r.models_uri())));
        for c in spec.init_containers.iter_mut().flatten().chain(spec.containers.iter_mut()) {
            let env = c.env.get_or_insert_with(Vec::new);
            for (name, value) in &model_env {
                env.retain(|e| e.name != *name);
                env.push(EnvVar { name: (*name).to_string(), value: Some(value.clone()), value_from: None });
            }
        }
    }
    let mut extra = pod_labels.clone();
    extra.insert(labels::VARIANT.to_string(), variant.to_string());
    let mut meta = super::meta(md, &deployment_name(&md.name_any(), &rev.hash), extra);
    meta.annotations = Some(BTreeMap::from([(annotations::MODEL_VERSION.to_string(), rev.version.clone())]));
    Deployment {
        metadata: meta,
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(pod_labels), match_expressions: None },
            template,
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// Reads back what an existing revision serves (for revisions no longer in the spec).
pub fn revision_of(d: &Deployment) -> Option<Revision> {
    let hash = d.labels().get(labels::REVISION)?.clone();
    let version = d.annotations().get(annotations::MODEL_VERSION)?.clone();
    let template = d.spec.as_ref()?.template.clone();
    let env_value = |name: &str| {
        template
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.env.as_ref())
            .and_then(|env| env.iter().find(|e| e.name == name))
            .and_then(|e| e.value.clone())
    };
    let uri = env_value(MODEL_URI).unwrap_or_default();
    let registry = env_value(MODEL_REGISTRY_URI).as_deref().and_then(parse_models_uri);
    Some(Revision { hash, version, uri, template, registry })
}

/// The registered model and version of a `models:/<model>/<version>` URI.
fn parse_models_uri(uri: &str) -> Option<RegisteredVersion> {
    let (model, version) = uri.strip_prefix("models:/")?.rsplit_once('/')?;
    (!model.is_empty() && !version.is_empty())
        .then(|| RegisteredVersion { model: model.to_string(), version: version.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn rev() -> Revision {
        Revision {
            hash: "abc1234567".into(),
            version: "1.0.0".into(),
            uri: "s3://m/1".into(),
            template: fixtures::pod_template().decode().unwrap(),
            registry: None,
        }
    }

    #[test]
    fn a_registry_version_adds_its_models_uri_and_reads_back_unchanged() {
        let md = fixtures::model_deployment("fraud");
        let registry = Some(RegisteredVersion { model: "fraud".into(), version: "3".into() });
        let d = build(&md, &Revision { registry, ..rev() }, 2, "candidate");
        let env = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].env.clone().unwrap();
        let uris: Vec<_> = env.iter().filter(|e| e.name == MODEL_REGISTRY_URI).collect();
        assert_eq!(uris.len(), 1);
        assert_eq!(uris[0].value.as_deref(), Some("models:/fraud/3"));
        // Read back from the cluster, the rebuilt Deployment is the same (env in the same order).
        let back = revision_of(&d).unwrap();
        assert_eq!(back.registry, Some(RegisteredVersion { model: "fraud".into(), version: "3".into() }));
        assert_eq!(build(&md, &back, 2, "candidate"), d);
        assert!(
            build(&md, &rev(), 2, "candidate").spec.unwrap().template.spec.unwrap().containers[0]
                .env
                .as_ref()
                .unwrap()
                .iter()
                .all(|e| e.name != MODEL_REGISTRY_URI)
        );
    }

    #[test]
    fn labels_env_owner_and_round_trip() {
        let mut md = fixtures::model_deployment("fraud");
        md.metadata.uid = Some("uid-1".into());
        let d = build(&md, &rev(), 3, "stable");
        assert_eq!(d.metadata.name.as_deref(), Some("fraud-abc1234567"));
        assert_eq!(d.labels()[labels::VARIANT], "stable");
        assert_eq!(d.labels()[labels::REVISION], "abc1234567");
        assert_eq!(d.metadata.owner_references.as_ref().unwrap()[0].uid, "uid-1");
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        let pod_labels = spec.template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        assert!(!pod_labels.contains_key(labels::VARIANT), "pods carry no variant label");
        assert_eq!(spec.selector.match_labels.as_ref().unwrap(), &selector(&md, "abc1234567"));
        let env = spec.template.spec.as_ref().unwrap().containers[0].env.as_ref().unwrap();
        let get = |n: &str| env.iter().find(|e| e.name == n).and_then(|e| e.value.clone()).unwrap();
        assert_eq!(
            (get("MODEL_NAME"), get("MODEL_VERSION"), get("MODEL_URI")),
            ("fraud".into(), "1.0.0".into(), "s3://m/1".into())
        );
        // Rebuilding from the object gives the same Deployment (env not duplicated).
        let back = revision_of(&d).unwrap();
        assert_eq!((back.hash.as_str(), back.version.as_str(), back.uri.as_str()), ("abc1234567", "1.0.0", "s3://m/1"));
        assert_eq!(build(&md, &back, 3, "stable"), d);
    }

    #[test]
    fn model_env_reaches_init_containers_and_reads_back() {
        let md = fixtures::model_deployment("fraud");
        let mut r = rev();
        let spec = r.template.spec.as_mut().unwrap();
        spec.init_containers = Some(vec![
            k8s_openapi::api::core::v1::Container {
                name: "storage-initializer".into(),
                // a stale value from the user's template is replaced, not duplicated
                env: Some(vec![EnvVar { name: MODEL_URI.into(), value: Some("s3://old".into()), value_from: None }]),
                ..Default::default()
            },
            k8s_openapi::api::core::v1::Container { name: "warmup".into(), ..Default::default() },
        ]);
        let d = build(&md, &r, 1, "candidate");
        let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let all = pod.init_containers.iter().flatten().chain(pod.containers.iter());
        for c in all {
            let env = c.env.as_deref().unwrap_or_default();
            for (name, want) in [(MODEL_NAME, "fraud"), (MODEL_VERSION, "1.0.0"), (MODEL_URI, "s3://m/1")] {
                let found: Vec<_> = env.iter().filter(|e| e.name == name).collect();
                assert_eq!(found.len(), 1, "{} has {name} once: {env:?}", c.name);
                assert_eq!(found[0].value.as_deref(), Some(want), "{} {name}", c.name);
            }
        }
        let back = revision_of(&d).unwrap();
        assert_eq!(back.uri, "s3://m/1", "MODEL_URI reads back from the server container");
        assert_eq!(build(&md, &back, 1, "candidate"), d, "rebuilding from the object changes nothing");
    }
}
