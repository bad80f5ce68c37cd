//! How an Experiment's winner is promoted, the GitOps-safe way: where the ModelDeployment follows a registry
//! alias, the alias moves to the winner's registry version (the ModelDeployment then rolls it out through
//! its own steps); where it pins a version in Git, the operator changes nothing and says exactly which
//! fields to change (`kubectl champion experiment promote` makes that change for users without GitOps).

use crate::api::experiment::Variant;
use crate::api::{Experiment, ModelDeployment};

/// What to do for a winner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promotion {
    /// Move alias `alias` of registered model `model` to registry version `version`.
    MoveAlias {
        /// The registered model.
        model: String,
        /// The followed alias.
        alias: String,
        /// The winner's registry version number.
        version: String,
    },
    /// The ModelDeployment pins its version: the change to make, as a sentence and as a merge patch.
    EditSpec {
        /// What to change, for a person.
        message: String,
        /// The JSON merge patch of the ModelDeployment that makes it.
        patch: serde_json::Value,
    },
}

/// The winning variant of `x`, when it is one (not the control).
pub fn winner(x: &Experiment) -> Option<&Variant> {
    let name = x.status.as_ref()?.winner.as_deref()?;
    x.spec.variants.iter().find(|v| v.name == name)
}

/// What promoting `winner` in front of `md` takes.
pub fn plan(md: &ModelDeployment, winner: &Variant) -> Promotion {
    let version = winner.model.version.clone().unwrap_or_default();
    let uri = winner.model.uri.clone().unwrap_or_default();
    match &md.spec.model.registry {
        Some(follow) => Promotion::MoveAlias { model: follow.model.clone(), alias: follow.alias.clone(), version },
        None => Promotion::EditSpec {
            message: format!(
                "to promote variant {}, set spec.model.version to {version:?} and spec.model.uri to {uri:?} in \
                 ModelDeployment {} (in Git, or with `kubectl champion experiment promote`)",
                winner.name,
                kube::ResourceExt::name_any(md)
            ),
            patch: serde_json::json!({"spec": {"model": {"version": version, "uri": uri}}}),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ExperimentStatus;
    use crate::api::common::RegistryRef;
    use crate::fixtures;

    #[test]
    fn a_pinned_deployment_gets_the_change_to_make_and_a_followed_alias_moves() {
        let mut x = fixtures::experiment("ab");
        x.status = Some(ExperimentStatus { winner: Some("challenger".into()), ..Default::default() });
        let w = winner(&x).unwrap();
        let md = fixtures::model_deployment("fraud");
        match plan(&md, w) {
            Promotion::EditSpec { message, patch } => {
                assert!(message.contains(r#"set spec.model.version to "2.0.0""#), "{message}");
                assert_eq!(patch["spec"]["model"]["uri"], "s3://models/fraud/2.0.0");
            }
            other => panic!("{other:?}"),
        }
        let mut follows = md.clone();
        follows.spec.model = crate::api::ModelRef {
            version: None,
            uri: None,
            registry: Some(RegistryRef { model: "fraud".into(), alias: "champion".into(), serving_alias: None }),
        };
        assert_eq!(
            plan(&follows, w),
            Promotion::MoveAlias { model: "fraud".into(), alias: "champion".into(), version: "2.0.0".into() }
        );
        // The control winning promotes nothing.
        x.status.as_mut().unwrap().winner = Some("control".into());
        assert!(winner(&x).is_none());
    }
}
