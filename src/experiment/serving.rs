//! Serving an Experiment's variants, as pure functions: one Deployment and one Service per variant (owned by
//! the Experiment, labelled like the ModelDeployment's revisions so that analysis queries select their
//! pods), and what the running Experiment contributes to its ModelDeployment's routing (which stays the
//! only writer of its routing objects): weighted backends in `split` mode, mirrors in `shadow` mode, and the
//! sticky header where the router matches headers.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::api::experiment::{ExperimentMode, ExperimentPhase, Variant};
use crate::api::model_deployment::Router;
use crate::api::{Experiment, ModelDeployment};
use crate::resources::deployment::{self, Revision};
use crate::resources::service;
use crate::rollout::plan;
use crate::traffic::{self, Backend, Mirror, Routing};

/// The label naming the Experiment a variant's objects belong to.
pub const EXPERIMENT_LABEL: &str = "champion.ml/experiment";

/// A variant as served: its revision hash (distinct from every ModelDeployment revision, so that no
/// ModelDeployment Service selects its pods) and the name of its Deployment and Service.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// The variant's name.
    pub variant: String,
    /// Its revision hash (10 hex characters), the pods' `champion.ml/revision` label.
    pub hash: String,
    /// The name of its Deployment and Service: `<deployment>-x<8 hex>` (at most 63 characters, as the
    /// ModelDeployment's name is at most 53).
    pub name: String,
    /// Percent of live traffic (split) or of requests copied to it (shadow).
    pub weight: i32,
    /// The model version it serves.
    pub version: Option<String>,
}

/// The variants of `x` as served in front of `md`; a variant whose model follows a registry alias is left
/// out (not supported by this version; validation says so).
pub fn served(x: &Experiment, md: &ModelDeployment) -> Vec<Served> {
    x.spec
        .variants
        .iter()
        .filter(|v| v.model.version.is_some() && v.model.uri.is_some())
        .map(|v| {
            let hash = variant_hash(x, md, v);
            Served {
                variant: v.name.clone(),
                name: format!("{}-x{}", md.name_any(), &hash[..8]),
                hash,
                weight: v.weight,
                version: v.model.version.clone(),
            }
        })
        .collect()
}

/// The revision hash of a variant: of the Experiment, the variant's name, its model and the ModelDeployment's
/// template.
pub fn variant_hash(x: &Experiment, md: &ModelDeployment, v: &Variant) -> String {
    let mut h = Sha256::new();
    for part in [b"variant".as_slice(), x.name_any().as_bytes(), v.name.as_bytes()] {
        h.update(part);
        h.update([0]);
    }
    h.update(serde_json::to_vec(&v.model).unwrap_or_default());
    h.update([0]);
    if v.image.is_some() || v.env.is_some() {
        h.update(serde_json::to_vec(&(&v.image, &v.env)).unwrap_or_default());
        h.update([0]);
    }
    h.update(serde_json::to_vec(&md.spec.template.0).unwrap_or_default());
    h.finalize().iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// Pods of a variant: under a router with exact weights, enough to carry its share of the stable size
/// (at least one); under the replicas router, the pods that make its share of all pods behind the stable
/// Service (`weight / (100 − Σ weights)` of the stable pods, at least one), the split being the pod ratio.
pub fn replicas(md: &ModelDeployment, weight: i32, total_weight: i32) -> i32 {
    let n = plan::replicas(&md.spec).max(1);
    let w = f64::from(weight.clamp(0, 100));
    let pods = match plan::router(&md.spec) {
        Router::Replicas => {
            let rest = f64::from((100 - total_weight).max(1));
            (f64::from(n) * w / rest).round()
        }
        _ => (f64::from(n) * w / 100.0).ceil(),
    };
    (pods as i32).max(1)
}

/// The owner reference of a variant's objects: the Experiment.
fn owner(x: &Experiment) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    x.controller_owner_ref(&()).unwrap_or_default()
}

/// The Deployment and Service of each variant.
pub fn objects(x: &Experiment, md: &ModelDeployment) -> (Vec<Deployment>, Vec<Service>) {
    let total: i32 = x.spec.variants.iter().map(|v| v.weight).sum();
    let Ok(template) = md.spec.template.decode() else { return (Vec::new(), Vec::new()) };
    let mut deployments = Vec::new();
    let mut services = Vec::new();
    for (s, v) in served(x, md).into_iter().zip(x.spec.variants.iter().filter(|v| v.model.version.is_some())) {
        let rev = Revision {
            hash: s.hash.clone(),
            version: v.model.version.clone().unwrap_or_default(),
            uri: v.model.uri.clone().unwrap_or_default(),
            template: with_overrides(template.clone(), v),
            registry: None,
        };
        let mut d = deployment::build(md, &rev, replicas(md, v.weight, total), &v.name);
        d.metadata.name = Some(s.name.clone());
        mark(&mut d.metadata, x);
        deployments.push(d);
        let mut svc = service::build(md, &v.name, deployment::selector(md, &s.hash));
        svc.metadata.name = Some(s.name.clone());
        mark(&mut svc.metadata, x);
        services.push(svc);
    }
    (deployments, services)
}

/// The ModelDeployment's pod template with a variant's `image` and `env` on its first container.
fn with_overrides(
    mut template: k8s_openapi::api::core::v1::PodTemplateSpec,
    v: &Variant,
) -> k8s_openapi::api::core::v1::PodTemplateSpec {
    let Some(c) = template.spec.as_mut().and_then(|s| s.containers.first_mut()) else { return template };
    if let Some(image) = &v.image {
        c.image = Some(image.clone());
    }
    for e in v.env.iter().flatten() {
        let env = c.env.get_or_insert_with(Vec::new);
        match env.iter_mut().find(|x| x.name == e.name) {
            Some(x) => *x = e.clone(),
            None => env.push(e.clone()),
        }
    }
    template
}

fn mark(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, x: &Experiment) {
    meta.owner_references = Some(vec![owner(x)]);
    meta.labels.get_or_insert_with(BTreeMap::new).insert(EXPERIMENT_LABEL.to_string(), x.name_any());
}

/// What the running Experiment of `md` (among `experiments`) contributes to its routing: the variants with a
/// ready pod (`ready` says how many pods of a Deployment are ready), as weighted backends (split) or mirrors
/// (shadow), and the sticky header where the router can match headers. Nothing while `md` rolls out.
pub fn contribution<'a>(
    md: &ModelDeployment,
    experiments: impl IntoIterator<Item = &'a Experiment>,
    ready: impl Fn(&str) -> i32,
) -> Routing {
    let rolling = md.status.as_ref().is_some_and(plan::rolling);
    let Some(x) = running(md, experiments).filter(|_| !rolling) else { return Routing::default() };
    let mut out = Routing::default();
    for s in served(x, md).into_iter().filter(|s| ready(&s.name) > 0 && s.weight > 0) {
        match x.spec.mode {
            ExperimentMode::Split => {
                out.backends.push(Backend { service: s.name, weight: s.weight, variant: s.variant, version: s.version })
            }
            ExperimentMode::Shadow => {
                out.mirrors.push(Mirror { service: s.name, percent: s.weight, variant: s.variant, version: s.version })
            }
        }
    }
    let header = x.spec.assignment.as_ref().and_then(|a| a.header.clone());
    if traffic::for_router(plan::router(&md.spec)).capabilities().header_match && !out.backends.is_empty() {
        out.sticky_header = header;
    }
    out
}

/// How `x` assigns live traffic in front of `md`, for `status.assignment`.
pub fn assignment(x: &Experiment, md: &ModelDeployment) -> String {
    let router = plan::router(&md.spec);
    let caps = traffic::for_router(router).capabilities();
    let header = x.spec.assignment.as_ref().and_then(|a| a.header.clone());
    match (x.spec.mode, header) {
        (ExperimentMode::Shadow, _) => "shadow: copies of live requests, no assignment".into(),
        (_, Some(h)) if router == Router::Builtin => {
            format!(
                "sticky by header {h} (consistent hashing of its value in the built-in router), else weighted per request"
            )
        }
        (_, Some(h)) if caps.header_match => {
            format!("sticky by header {h} (the value's last character picks the variant), else weighted per request")
        }
        (_, Some(h)) if !caps.exact_split => format!(
            "by the ratio of pods behind the stable Service, per request: the replicas router cannot match header {h}, so assignment is not sticky"
        ),
        (_, None) if !caps.exact_split => "by the ratio of pods behind the stable Service, per request".into(),
        _ => "weighted per request".into(),
    }
}

/// The Experiment running on `md`, if any.
pub fn running<'a>(
    md: &ModelDeployment,
    experiments: impl IntoIterator<Item = &'a Experiment>,
) -> Option<&'a Experiment> {
    experiments.into_iter().find(|x| {
        x.namespace() == md.namespace()
            && x.spec.deployment_ref.name == md.name_any()
            && x.status.as_ref().and_then(|s| s.phase) == Some(ExperimentPhase::Running)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ExperimentStatus;
    use crate::api::experiment::Assignment;
    use crate::api::model_deployment::{GatewayApiTraffic, Traffic};
    use crate::fixtures;
    use crate::names::labels;

    fn running_experiment(mode: ExperimentMode, weights: &[(&str, i32)]) -> Experiment {
        let mut x = fixtures::experiment("ab");
        x.metadata.namespace = Some("default".into());
        x.metadata.uid = Some("x-uid".into());
        x.spec.deployment_ref.name = "fraud".into();
        x.spec.mode = mode;
        x.spec.variants = weights
            .iter()
            .map(|(n, w)| Variant {
                name: n.to_string(),
                model: fixtures::model("2.0.0"),
                weight: *w,
                ..Variant::default()
            })
            .collect();
        x.status = Some(ExperimentStatus { phase: Some(ExperimentPhase::Running), ..Default::default() });
        x
    }

    fn gateway(mut md: ModelDeployment) -> ModelDeployment {
        md.spec.traffic = Some(Traffic {
            router: Some(Router::GatewayApi),
            gateway_api: Some(GatewayApiTraffic::default()),
            ..Traffic::default()
        });
        md
    }

    #[test]
    fn variants_get_their_own_revision_names_and_owner() {
        let md = fixtures::model_deployment("fraud");
        let x = running_experiment(ExperimentMode::Split, &[("b", 20), ("c", 10)]);
        let s = served(&x, &md);
        assert_eq!(s.len(), 2);
        assert_ne!(s[0].hash, s[1].hash, "same model, different variants: different revisions");
        let md_hash = crate::rollout::revision::target(&md.spec).unwrap().hash;
        assert!(s.iter().all(|v| v.hash != md_hash));
        assert!(s.iter().all(|v| v.name.len() <= 63 && v.name.starts_with("fraud-x")));
        let long = fixtures::model_deployment(&"m".repeat(53));
        assert!(served(&x, &long).iter().all(|v| v.name.len() == 63));

        let (deployments, services) = objects(&x, &md);
        assert_eq!((deployments.len(), services.len()), (2, 2));
        let d = &deployments[0];
        assert_eq!(d.metadata.name.as_deref(), Some(s[0].name.as_str()));
        assert_eq!(d.metadata.owner_references.as_ref().unwrap()[0].uid, "x-uid");
        assert_eq!(d.labels()[EXPERIMENT_LABEL], "ab");
        let pods = d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().labels.clone().unwrap();
        assert_eq!(pods[labels::DEPLOYMENT], "fraud", "pods are labelled for analysis like the deployment's");
        assert_eq!(pods[labels::REVISION], s[0].hash);
        let selector = services[0].spec.as_ref().unwrap().selector.clone().unwrap();
        assert_eq!(selector[labels::REVISION], s[0].hash);
    }

    #[test]
    fn a_variant_overrides_the_image_and_env_of_the_first_container() {
        use k8s_openapi::api::core::v1::EnvVar;
        let md = fixtures::model_deployment("fraud");
        let mut x = running_experiment(ExperimentMode::Shadow, &[("b", 20), ("c", 10)]);
        let before = served(&x, &md)[0].hash.clone();
        x.spec.variants[0].image = Some("ghcr.io/acme/server:2".into());
        let var =
            |name: &str, value: &str| EnvVar { name: name.into(), value: Some(value.into()), ..EnvVar::default() };
        x.spec.variants[0].env = Some(vec![var("DISAGREE", "0.5")]);
        assert_ne!(served(&x, &md)[0].hash, before, "another image or env is another revision");
        let (deployments, _) = objects(&x, &md);
        let container = |i: usize| deployments[i].spec.clone().unwrap().template.spec.unwrap().containers[0].clone();
        let (b, c) = (container(0), container(1));
        assert_eq!(b.image.as_deref(), Some("ghcr.io/acme/server:2"));
        assert!(b.env.as_ref().unwrap().contains(&var("DISAGREE", "0.5")));
        assert!(b.env.as_ref().unwrap().iter().any(|e| e.name == "MODEL_VERSION"), "the operator's variables stay");
        assert_ne!(c.image.as_deref(), Some("ghcr.io/acme/server:2"), "the other variant keeps the template's");
        assert!(!c.env.unwrap_or_default().iter().any(|e| e.name == "DISAGREE"));
    }

    #[test]
    fn replicas_for_a_variant() {
        let mut md = fixtures::model_deployment("fraud");
        md.spec.replicas = Some(4);
        // The replicas router: the pod ratio is the split, 1 of 5 pods = 20%.
        assert_eq!(replicas(&md, 20, 20), 1);
        assert_eq!(replicas(&md, 50, 50), 4);
        assert_eq!(replicas(&md, 1, 1), 1, "at least one pod");
        let md = gateway(md);
        assert_eq!(replicas(&md, 20, 20), 1);
        assert_eq!(replicas(&md, 50, 50), 2);
    }

    #[test]
    fn the_running_experiment_contributes_ready_variants() {
        let md = gateway(fixtures::model_deployment("fraud"));
        let mut x = running_experiment(ExperimentMode::Split, &[("b", 20), ("c", 10)]);
        x.spec.assignment = Some(Assignment { header: Some("x-user-id".into()) });
        let names: Vec<String> = served(&x, &md).into_iter().map(|s| s.name).collect();
        let only_b_ready = |n: &str| i32::from(n == names[0]);
        let r = contribution(&md, std::slice::from_ref(&x), only_b_ready);
        let b = Backend { variant: "b".into(), version: Some("2.0.0".into()), ..Backend::new(names[0].clone(), 20) };
        assert_eq!(r.backends, [b]);
        assert_eq!(r.sticky_header.as_deref(), Some("x-user-id"));
        assert!(r.mirrors.is_empty());

        // Shadow: mirrors, no backends, no stickiness.
        let shadow = running_experiment(ExperimentMode::Shadow, &[("b", 30)]);
        let r = contribution(&md, std::slice::from_ref(&shadow), |_| 1);
        assert_eq!(r.mirrors.len(), 1);
        assert_eq!(r.mirrors[0].percent, 30);
        assert!(r.backends.is_empty() && r.sticky_header.is_none());

        // Not running, another deployment's, or the deployment mid-rollout: nothing.
        let mut pending = x.clone();
        pending.status = None;
        assert_eq!(contribution(&md, &[pending], |_| 1), Routing::default());
        let other = fixtures::model_deployment("churn");
        assert_eq!(contribution(&other, std::slice::from_ref(&x), |_| 1), Routing::default());
        let mut rolling = md.clone();
        rolling.status = Some(crate::api::ModelDeploymentStatus {
            phase: Some(crate::api::DeploymentPhase::Progressing),
            candidate: Some(Default::default()),
            ..Default::default()
        });
        assert_eq!(contribution(&rolling, std::slice::from_ref(&x), |_| 1), Routing::default());

        assert!(assignment(&x, &md).starts_with("sticky by header x-user-id"), "{}", assignment(&x, &md));
        assert!(assignment(&x, &fixtures::model_deployment("fraud")).contains("cannot match header x-user-id"));
        assert!(assignment(&shadow, &md).starts_with("shadow"));

        // The replicas router cannot match headers: no stickiness (the pod ratio is the split).
        let replicas_md = fixtures::model_deployment("fraud");
        assert_eq!(contribution(&replicas_md, std::slice::from_ref(&x), |_| 1).sticky_header, None);
    }
}
