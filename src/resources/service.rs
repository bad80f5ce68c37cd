//! The Services in front of the revisions: `<name>` (stable), `<name>-candidate`, `<name>-mirror`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::api::ModelDeployment;
use crate::names::labels;

/// The port Services expose by default.
pub const DEFAULT_PORT: i32 = 8080;

/// The port of a ModelDeployment's Services.
pub fn port(md: &ModelDeployment) -> i32 {
    md.spec.traffic.as_ref().and_then(|t| t.port).unwrap_or(DEFAULT_PORT)
}

/// Service names by role.
pub fn name(md: &ModelDeployment, role: &str) -> String {
    match role {
        "stable" => md.name_any(),
        other => format!("{}-{other}", md.name_any()),
    }
}

/// A ClusterIP Service for `role` selecting `selector`.
pub fn build(md: &ModelDeployment, role: &str, selector: BTreeMap<String, String>) -> Service {
    let port = port(md);
    let extra = BTreeMap::from([(labels::VARIANT.to_string(), role.to_string())]);
    Service {
        metadata: super::meta(md, &name(md, role), extra),
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port,
                target_port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn names_ports_and_selectors() {
        let md = fixtures::model_deployment("fraud");
        let s = build(&md, "candidate", BTreeMap::from([("a".to_string(), "b".to_string())]));
        assert_eq!(s.metadata.name.as_deref(), Some("fraud-candidate"));
        assert_eq!(name(&md, "stable"), "fraud");
        let spec = s.spec.unwrap();
        assert_eq!(spec.ports.unwrap()[0].port, 8080);
        assert_eq!(spec.selector.unwrap()["a"], "b");
    }
}
