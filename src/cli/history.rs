//! `kubectl champion history`: which version served when, from the ModelDeployment's status history,
//! joined (when the registry can be read) with the tags the operator wrote on the registry's versions, so
//! versions whose rollout was rolled back appear too.

use std::fmt::Write;

use kube::ResourceExt;

use crate::api::ModelDeployment;
use crate::registry::ModelVersion;
use crate::registry::follow::tags;

/// One line of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The version, as the ModelDeployment shows it.
    pub version: String,
    /// The registry's version number, when the version came from the registry.
    pub registry_version: Option<String>,
    /// The revision number (none for a version that never served as stable).
    pub revision: Option<i64>,
    /// When it began to serve as stable.
    pub from: Option<String>,
    /// When it stopped (`None` while it serves, or when unknown).
    pub until: Option<String>,
    /// What happened: `serving`, `replaced`, `rolled back (reason)`, the registry's stage.
    pub note: String,
}

/// The rows, newest first: the status history, then (with `registry`, the versions of the followed
/// model) the versions this ModelDeployment rolled back that never served as stable.
pub fn rows(md: &ModelDeployment, registry: Option<&[ModelVersion]>) -> Vec<Row> {
    let status = md.status.clone().unwrap_or_default();
    let deployment = format!("{}/{}", md.namespace().unwrap_or_default(), md.name_any());
    let find = |number: &str| registry.and_then(|vs| vs.iter().find(|v| v.version == number));
    let mut out = Vec::new();
    let mut newer_from: Option<String> = None;
    for (i, h) in status.history.iter().enumerate() {
        let from = h.promoted_at.as_ref().map(|t| t.0.to_string());
        let number = h.registry.as_ref().map(|r| r.version.clone());
        let tagged = number.as_deref().and_then(find);
        let mut note = if i == 0 { "serving".to_string() } else { "replaced".to_string() };
        if let Some(reason) = tagged.and_then(|v| v.tags.get(tags::ROLLED_BACK)).filter(|_| i > 0) {
            note = format!("rolled back ({reason})");
        }
        if let Some(stage) = tagged.and_then(|v| v.tags.get(tags::STAGE)) {
            note = format!("{note}; registry stage {stage}");
        }
        out.push(Row {
            version: h.version.clone(),
            registry_version: number,
            revision: Some(h.revision),
            from: from.clone(),
            until: if i == 0 { None } else { newer_from.clone() },
            note,
        });
        newer_from = from;
    }
    if let Some(versions) = registry {
        let mut rolled_back: Vec<&ModelVersion> = versions
            .iter()
            .filter(|v| v.tags.get(tags::DEPLOYMENT) == Some(&deployment) && v.tags.contains_key(tags::ROLLED_BACK))
            .filter(|v| !out.iter().any(|r| r.registry_version.as_deref() == Some(v.version.as_str())))
            .collect();
        rolled_back.sort_by_key(|v| std::cmp::Reverse(v.number()));
        for v in rolled_back {
            let reason = v.tags.get(tags::ROLLED_BACK).cloned().unwrap_or_default();
            let message = v.tags.get(tags::ROLLED_BACK_MESSAGE).map(|m| format!(": {m}")).unwrap_or_default();
            out.push(Row {
                version: v.tags.get(tags::VERSION).cloned().unwrap_or_else(|| v.version.clone()),
                registry_version: Some(v.version.clone()),
                revision: None,
                from: None,
                until: v.tags.get(tags::ROLLED_BACK_AT).cloned(),
                note: format!("rolled back ({reason}{message}), never served as stable"),
            });
        }
    }
    out
}

/// The history as a table; `registry_note` says why the registry was not joined, when it was not.
pub fn render(md: &ModelDeployment, registry: Option<&[ModelVersion]>, registry_note: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ModelDeployment {}/{}", md.namespace().unwrap_or_default(), md.name_any());
    let rows = rows(md, registry);
    if rows.is_empty() {
        let _ = writeln!(out, "  no version has served yet");
    } else {
        let _ = writeln!(
            out,
            "  {:<12} {:<9} {:<9} {:<21} {:<21} WHAT",
            "VERSION", "REGISTRY", "REVISION", "SERVED FROM", "UNTIL"
        );
        for r in &rows {
            let dash = || "-".to_string();
            let _ = writeln!(
                out,
                "  {:<12} {:<9} {:<9} {:<21} {:<21} {}",
                r.version,
                r.registry_version.clone().unwrap_or_else(dash),
                r.revision.map(|n| n.to_string()).unwrap_or_else(dash),
                r.from.clone().unwrap_or_else(dash),
                r.until.clone().unwrap_or_else(|| if r.revision.is_some() && r.from.is_some() {
                    "now".into()
                } else {
                    dash()
                }),
                r.note
            );
        }
    }
    if let Some(note) = registry_note {
        let _ = writeln!(out, "  ({note})");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::ModelDeploymentStatus;
    use crate::api::model_deployment::{HistoryEntry, RegisteredVersion};
    use crate::fixtures;

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + s).unwrap())
    }

    fn entry(version: &str, revision: i64, at: i64, number: &str) -> HistoryEntry {
        HistoryEntry {
            version: version.into(),
            revision,
            hash: None,
            promoted_at: Some(t(at)),
            registry: Some(RegisteredVersion { model: "fraud".into(), version: number.into() }),
        }
    }

    fn version(n: &str, tags: &[(&str, &str)]) -> ModelVersion {
        let mut v = ModelVersion::new("fraud", n);
        v.tags = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
        v
    }

    fn md() -> ModelDeployment {
        let mut md = fixtures::model_deployment("fraud");
        md.metadata.namespace = Some("ml".into());
        md.status = Some(ModelDeploymentStatus {
            history: vec![entry("4", 2, 100, "4"), entry("3", 1, 0, "3")],
            ..ModelDeploymentStatus::default()
        });
        md
    }

    #[test]
    fn history_says_when_each_version_served() {
        let r = rows(&md(), None);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].version.as_str(), r[0].until.as_deref(), r[0].note.as_str()), ("4", None, "serving"));
        assert_eq!(r[1].from, Some(t(0).0.to_string()));
        assert_eq!(r[1].until, Some(t(100).0.to_string()), "served until the next one was promoted");
        let text = render(&md(), None, Some("the registry was not read: no tracking URI"));
        assert!(text.contains("now"), "{text}");
        assert!(text.contains("(the registry was not read: no tracking URI)"), "{text}");
    }

    #[test]
    fn the_registry_adds_rolled_back_versions_and_stages() {
        let registry = [
            version("3", &[(tags::STAGE, "archived")]),
            version("4", &[(tags::STAGE, "production")]),
            version(
                "5",
                &[
                    (tags::DEPLOYMENT, "ml/fraud"),
                    (tags::ROLLED_BACK, "AnalysisFailed"),
                    (tags::ROLLED_BACK_MESSAGE, "error-rate 0.4"),
                    (tags::ROLLED_BACK_AT, "2027-01-15T08:10:00Z"),
                ],
            ),
            // Rolled back by another deployment: not this one's history.
            version("6", &[(tags::DEPLOYMENT, "ml/other"), (tags::ROLLED_BACK, "Aborted")]),
        ];
        let r = rows(&md(), Some(&registry));
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(r[0].note, "serving; registry stage production");
        assert_eq!(r[1].note, "replaced; registry stage archived");
        assert_eq!(r[2].registry_version.as_deref(), Some("5"));
        assert_eq!(r[2].note, "rolled back (AnalysisFailed: error-rate 0.4), never served as stable");
        assert_eq!(r[2].until.as_deref(), Some("2027-01-15T08:10:00Z"));
    }

    #[test]
    fn nothing_served_yet() {
        let text = render(&fixtures::model_deployment("fraud"), None, None);
        assert!(text.contains("no version has served yet"), "{text}");
    }
}
