//! `kubectl champion status`: a readable view of one ModelDeployment.

use std::fmt::Write;

use kube::ResourceExt;

use crate::api::ModelDeployment;
use crate::api::model_deployment::Step;

/// One step as a short phrase, e.g. `setWeight 10`, `pause 10m`, `pause (until promote)`.
pub fn describe_step(step: &Step) -> String {
    if let Some(w) = step.set_weight {
        format!("setWeight {w}")
    } else if let Some(p) = &step.pause {
        match &p.duration {
            Some(d) => format!("pause {d}"),
            None => "pause (until promote)".to_string(),
        }
    } else if let Some(a) = &step.analysis {
        format!("analysis {}", a.metrics.join(", "))
    } else if let Some(m) = &step.mirror {
        format!("mirror {}% for {}", m.percent, m.duration)
    } else {
        "(empty step)".to_string()
    }
}

/// The whole status view.
pub fn render(md: &ModelDeployment) -> String {
    let mut out = String::new();
    let status = md.status.clone().unwrap_or_default();
    let phase = status.phase.map(|p| format!("{p:?}")).unwrap_or_else(|| "Unknown (not reconciled yet)".into());
    let _ = writeln!(out, "ModelDeployment {}/{}", md.namespace().unwrap_or_default(), md.name_any());
    let _ = writeln!(out, "  Phase:      {phase}");
    if let Some(m) = &status.message {
        let _ = writeln!(out, "  Message:    {m}");
    }
    let rev = |r: &Option<crate::api::model_deployment::RevisionRef>| {
        r.as_ref()
            .map(|r| match &r.registry {
                Some(reg) => format!("{} (revision {}, registry {})", r.version, r.revision, reg.models_uri()),
                None => format!("{} (revision {})", r.version, r.revision),
            })
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(out, "  Stable:     {}", rev(&status.stable));
    let _ = writeln!(out, "  Candidate:  {}", rev(&status.candidate));
    if let Some(r) = &status.registry {
        let at = match (&r.version, &r.seen_at) {
            (Some(v), Some(t)) => format!("version {v} (seen {})", t.0),
            (Some(v), None) => format!("version {v}"),
            _ => "not resolved yet".to_string(),
        };
        let _ = writeln!(out, "  Registry:   alias {} of {} → {at}", r.alias, r.model);
        if let Some(source) = &r.source {
            let _ = writeln!(out, "    source:   {source}");
        }
        if let Some(t) = &r.unavailable_since {
            let _ = writeln!(out, "    registry unavailable since {} (what serves keeps serving)", t.0);
        }
        if let Some(v) = &r.serving_deleted {
            let _ = writeln!(out, "    version {v} serves but was deleted from the registry");
        }
    }
    if let Some(w) = &status.weights {
        let _ = writeln!(out, "  Traffic:    stable {}%, candidate {}%, mirror {}%", w.stable, w.candidate, w.mirror);
    }
    if let Some(sh) = &status.shadow {
        let _ = writeln!(out, "  Shadow:     {}", shadow_line(sh));
    }
    if let Some(t) = &status.waiting_since {
        let _ = writeln!(out, "  Waiting:    since {} (counts toward the progress deadline)", t.0);
    }
    for d in &status.scale_downs {
        let _ = writeln!(out, "  Draining:   revision {} keeps its pods until {}", d.hash, d.at.0);
    }
    let steps = md.spec.strategy.as_ref().and_then(|s| s.canary.as_ref()).map(|c| c.steps.as_slice()).unwrap_or(&[]);
    if !steps.is_empty() {
        let _ = writeln!(out, "  Steps:");
        for (i, step) in steps.iter().enumerate() {
            let current = status.candidate.is_some() && status.current_step == Some(i as i32);
            let marker = if current { "→" } else { " " };
            let _ = writeln!(out, "    {marker} {}. {}", i + 1, describe_step(step));
        }
    }
    if let Some(a) = &status.analysis {
        let _ = writeln!(out, "  Analysis:   {} failed measurement(s)", a.failures);
        if let Some(t) = &a.unavailable_since {
            let _ = writeln!(out, "    metrics unavailable since {} (the rollout holds)", t.0);
        }
        for m in &a.metrics {
            let value = m.value.map(|v| format!("{v}")).unwrap_or_else(|| "no data".into());
            let why = m.message.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
            let _ = writeln!(out, "    {:<20} {:<12} {:?}{why}", m.name, value, m.verdict);
        }
    }
    if !status.history.is_empty() {
        let _ = writeln!(out, "  History:");
        for h in &status.history {
            let registry = h.registry.as_ref().map(|r| format!(", registry version {}", r.version)).unwrap_or_default();
            let _ = writeln!(out, "    {} (revision {}{registry})", h.version, h.revision);
        }
    }
    super::write_conditions(&mut out, &status.conditions);
    out
}

/// The candidate's live agreement, as `kubectl champion status` prints it.
pub fn shadow_line(s: &crate::api::model_deployment::ShadowStatus) -> String {
    let agreement = match s.agreement {
        Some(a) => format!("{:.1}% agreement", a * 100.0),
        None => "no comparison yet".to_string(),
    };
    format!(
        "version {} {agreement} with stable over {} compared answers since {} (read {})",
        s.version, s.comparisons, s.since.0, s.measured_at.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model_deployment::{RevisionRef, Weights};
    use crate::api::{DeploymentPhase, ModelDeploymentStatus};
    use crate::fixtures;

    #[test]
    fn marks_the_current_step_and_shows_weights() {
        let mut md = fixtures::model_deployment("fraud");
        md.status = Some(ModelDeploymentStatus {
            phase: Some(DeploymentPhase::Progressing),
            stable: Some(RevisionRef { version: "1.0.0".into(), revision: 1, hash: None, registry: None }),
            candidate: Some(RevisionRef { version: "1.1.0".into(), revision: 2, hash: None, registry: None }),
            current_step: Some(1),
            weights: Some(Weights { stable: 90, candidate: 10, mirror: 0 }),
            ..Default::default()
        });
        let text = render(&md);
        assert!(text.contains("Phase:      Progressing"), "{text}");
        assert!(text.contains("Candidate:  1.1.0 (revision 2)"), "{text}");
        assert!(text.contains("stable 90%, candidate 10%, mirror 0%"), "{text}");
        assert!(text.contains("    → 2. pause 1m"), "{text}");
        assert!(text.contains("      1. setWeight 10"), "{text}");
        assert!(text.contains("      3. analysis error-rate"), "{text}");
    }

    #[test]
    fn shows_the_deadline_clock_outages_and_draining_revisions() {
        use crate::api::model_deployment::{AnalysisStatus, ScaleDown};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let t = |s| Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap());
        let mut md = fixtures::model_deployment("fraud");
        md.status = Some(ModelDeploymentStatus {
            waiting_since: Some(t(1_800_000_000)),
            scale_downs: vec![ScaleDown { hash: "abc1234567".into(), at: t(1_800_000_030) }],
            analysis: Some(AnalysisStatus { unavailable_since: Some(t(1_800_000_010)), ..Default::default() }),
            ..Default::default()
        });
        let text = render(&md);
        assert!(text.contains("Waiting:    since 2027-01-15T08:00:00Z"), "{text}");
        assert!(text.contains("Draining:   revision abc1234567 keeps its pods until 2027-01-15T08:00:30Z"), "{text}");
        assert!(text.contains("metrics unavailable since 2027-01-15T08:00:10Z"), "{text}");
    }

    #[test]
    fn shows_the_followed_alias_and_registry_versions() {
        use crate::api::model_deployment::{RegisteredVersion, RegistryStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let t = |s| Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap());
        let mut md = fixtures::model_deployment("fraud");
        let registry = Some(RegisteredVersion { model: "fraud".into(), version: "3".into() });
        md.status = Some(ModelDeploymentStatus {
            stable: Some(RevisionRef { version: "2.1.0".into(), revision: 1, hash: None, registry }),
            registry: Some(RegistryStatus {
                model: "fraud".into(),
                alias: "champion".into(),
                version: Some("3".into()),
                source: Some("s3://m/3".into()),
                seen_at: Some(t(1_800_000_000)),
                unavailable_since: Some(t(1_800_000_100)),
                ..Default::default()
            }),
            ..Default::default()
        });
        let text = render(&md);
        assert!(text.contains("Stable:     2.1.0 (revision 1, registry models:/fraud/3)"), "{text}");
        assert!(text.contains("Registry:   alias champion of fraud → version 3 (seen 2027-01-15T08:00:00Z)"), "{text}");
        assert!(text.contains("source:   s3://m/3"), "{text}");
        assert!(text.contains("registry unavailable since 2027-01-15T08:01:40Z"), "{text}");
    }

    #[test]
    fn shows_the_live_shadow_agreement() {
        let mut md = fixtures::model_deployment("fraud");
        let t = |s| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::from_second(s).unwrap());
        md.status = Some(ModelDeploymentStatus {
            shadow: Some(crate::api::model_deployment::ShadowStatus {
                version: "2.0.0".into(),
                comparisons: 1500,
                agreement: Some(0.9733),
                since: t(1_800_000_000),
                measured_at: t(1_800_000_060),
            }),
            ..ModelDeploymentStatus::default()
        });
        let out = render(&md);
        assert!(
            out.contains("Shadow:     version 2.0.0 97.3% agreement with stable over 1500 compared answers"),
            "{out}"
        );
    }

    #[test]
    fn unreconciled_object() {
        let text = render(&fixtures::model_deployment("fraud"));
        assert!(text.contains("Unknown (not reconciled yet)"), "{text}");
        assert!(!text.contains('→'), "no step is current without a candidate: {text}");
    }
}
