//! The built-in router's objects (`traffic.router: builtin`): its Deployment `<name>-router`, whose pods
//! read the configuration from the ConfigMap of the same name (written by [`crate::traffic::builtin`]),
//! and the names of the objects around it. The stable Service `<name>` selects the router's pods once they
//! are ready; the stable revision's pods are then reached through `<name>-primary`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, HTTPGetAction, PodSpec, PodTemplateSpec, Probe, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::api::ModelDeployment;
use crate::names::labels;
use crate::resources::service;

/// The router's admin port: `/metrics`, `/healthz`, `/readyz`, `/config`.
pub const ADMIN_PORT: i32 = 9090;
/// Where the ConfigMap is mounted in the router's pods.
pub const CONFIG_DIR: &str = "/etc/champion-router";
/// The ConfigMap key (and file name) of the router's configuration.
pub const CONFIG_KEY: &str = "router.json";
/// Router pods when `traffic.builtin.replicas` is unset (one pod joins all feedback; see the field).
pub const DEFAULT_REPLICAS: i32 = 1;

/// The name of the router's Deployment and ConfigMap: `<name>-router`.
pub fn name(md: &ModelDeployment) -> String {
    format!("{}-router", md.name_any())
}

/// The name of the Service in front of the stable revision's pods under the built-in router:
/// `<name>-primary` (the stable Service `<name>` fronts the router).
pub fn primary_service(md: &ModelDeployment) -> String {
    service::name(md, PRIMARY)
}

/// The Service role of the stable revision's own Service under the built-in router.
pub const PRIMARY: &str = "primary";

/// The labels of the router's pods, which the stable Service selects once they are ready.
pub fn pod_selector(md: &ModelDeployment) -> BTreeMap<String, String> {
    BTreeMap::from([(labels::ROUTER.to_string(), md.name_any())])
}

/// The router's Deployment: `image`, `traffic.builtin.replicas` pods (default 1) listening on the
/// ModelDeployment's port, configuration from the ConfigMap, readiness on `/readyz` (so a pod that has no
/// valid configuration takes no traffic), scraped by Prometheus on the admin port. A rolling update keeps
/// every pod until its replacement is ready.
pub fn deployment(md: &ModelDeployment, image: &str) -> Deployment {
    let port = service::port(md);
    let settings = md.spec.traffic.as_ref().and_then(|t| t.builtin.clone()).unwrap_or_default();
    let probe = |path: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(ADMIN_PORT),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(2),
        ..Probe::default()
    };
    let container = Container {
        name: "router".into(),
        image: Some(image.into()),
        args: Some(vec![
            "--config".into(),
            format!("{CONFIG_DIR}/{CONFIG_KEY}"),
            "--listen".into(),
            format!("0.0.0.0:{port}"),
            "--admin-listen".into(),
            format!("0.0.0.0:{ADMIN_PORT}"),
        ]),
        ports: Some(vec![
            ContainerPort { name: Some("http".into()), container_port: port, ..ContainerPort::default() },
            ContainerPort { name: Some("admin".into()), container_port: ADMIN_PORT, ..ContainerPort::default() },
        ]),
        readiness_probe: Some(probe("/readyz")),
        resources: settings.resources.clone(),
        liveness_probe: Some(Probe { failure_threshold: Some(5), ..probe("/healthz") }),
        volume_mounts: Some(vec![VolumeMount {
            name: "config".into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/port".to_string(), ADMIN_PORT.to_string()),
    ]);
    let extra = BTreeMap::from([(labels::VARIANT.to_string(), "router".to_string())]);
    Deployment {
        metadata: super::meta(md, &name(md), extra),
        spec: Some(DeploymentSpec {
            replicas: Some(settings.replicas.unwrap_or(DEFAULT_REPLICAS)),
            selector: LabelSelector { match_labels: Some(pod_selector(md)), ..LabelSelector::default() },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_selector(md)),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    node_selector: settings.node_selector.clone(),
                    tolerations: settings.tolerations.clone(),
                    // The router holds no state worth a long drain: SIGTERM finishes open requests (10 s).
                    termination_grace_period_seconds: Some(15),
                    volumes: Some(vec![Volume {
                        name: "config".into(),
                        config_map: Some(ConfigMapVolumeSource { name: name(md), ..ConfigMapVolumeSource::default() }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn the_router_deployment_reads_its_config_map_and_is_never_selected_as_a_model_server() {
        let md = fixtures::model_deployment("fraud");
        let d = deployment(&md, "router:1");
        assert_eq!(d.metadata.name.as_deref(), Some("fraud-router"));
        // Watched like every generated object (the Deployment carries the ModelDeployment's label) ...
        assert_eq!(d.metadata.labels.as_ref().unwrap()[labels::DEPLOYMENT], "fraud");
        let spec = d.spec.unwrap();
        let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
        // ... but its pods do not, so no model-server selector (the replicas router's) picks them.
        assert!(!pod_labels.contains_key(labels::DEPLOYMENT));
        assert_eq!(pod_labels, pod_selector(&md));
        assert_eq!(spec.replicas, Some(DEFAULT_REPLICAS));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.volumes.unwrap()[0].config_map.as_ref().unwrap().name, "fraud-router");
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("router:1"));
        assert!(c.args.as_ref().unwrap().contains(&"/etc/champion-router/router.json".to_string()));
        assert!(c.args.as_ref().unwrap().contains(&"0.0.0.0:8080".to_string()));
        assert_eq!(primary_service(&md), "fraud-primary");
    }
}
