//! `kubectl champion experiment status`: a readable view of one Experiment.

use std::fmt::Write;

use kube::ResourceExt;

use crate::api::Experiment;

/// The whole status view.
pub fn render(x: &Experiment) -> String {
    let mut out = String::new();
    let s = x.status.clone().unwrap_or_default();
    let phase = s.phase.map(|p| format!("{p:?}")).unwrap_or_else(|| "Unknown (not reconciled yet)".into());
    let _ = writeln!(out, "Experiment {}/{}", x.namespace().unwrap_or_default(), x.name_any());
    let _ = writeln!(out, "  Deployment: {} ({:?} mode)", x.spec.deployment_ref.name, x.spec.mode);
    let _ = writeln!(out, "  Phase:      {phase}");
    if let Some(m) = &s.message {
        let _ = writeln!(out, "  Message:    {m}");
    }
    if let Some(t) = &s.started_at {
        let _ = writeln!(out, "  Started:    {}", t.0);
    }
    if let Some(w) = &s.winner {
        let _ = writeln!(out, "  Winner:     {w}");
    }
    if let Some(p) = &s.promotion {
        let _ = writeln!(out, "  Promotion:  {p}");
    }
    if !s.variants.is_empty() {
        let _ = writeln!(
            out,
            "  {:<14} {:>9} {:>10} {:<22} {:>10} {:<24} {:>9}",
            "ARM", "SAMPLES", "ESTIMATE", "INTERVAL", "EFFECT", "EFFECT INTERVAL", "P-VALUE"
        );
        let pair = |v: &[f64]| match v {
            [a, b] => format!("[{a:.4}, {b:.4}]"),
            _ => "-".into(),
        };
        for v in &s.variants {
            let num = |n: Option<f64>| n.map(|n| format!("{n:.4}")).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "  {:<14} {:>9} {:>10} {:<22} {:>10} {:<24} {:>9}",
                v.name,
                v.samples,
                num(v.estimate),
                pair(&v.interval),
                num(v.effect),
                pair(&v.effect_interval),
                v.p_value.map(|p| format!("{p:.4}")).unwrap_or_else(|| "-".into())
            );
        }
    }
    for v in &s.variants {
        for r in &v.non_inferiority {
            let pct = |x: Option<f64>| x.map(|x| format!("{:+.2}%", x * 100.0)).unwrap_or_else(|| "-".into());
            let verdict = if r.harmful {
                "worse than the margin allows"
            } else if r.non_inferior {
                "shown within the margin"
            } else {
                "not shown within the margin yet"
            };
            let _ = writeln!(
                out,
                "  Guardrail:  {} of {}: lift {}, bound {}: {verdict}",
                r.name,
                v.name,
                pct(r.lift),
                pct(r.bound)
            );
        }
    }
    for v in s.variants.iter().filter(|v| v.comparisons.is_some()) {
        let agreement =
            v.agreement.map(|a| format!("{:.1}% agreement", a * 100.0)).unwrap_or_else(|| "no comparison yet".into());
        let _ = writeln!(
            out,
            "  Shadow:     {} {agreement} with stable over {} compared answers",
            v.name,
            v.comparisons.unwrap_or(0)
        );
    }
    super::write_conditions(&mut out, &s.conditions);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ExperimentStatus;
    use crate::api::experiment::{ExperimentPhase, VariantResult};
    use crate::fixtures;

    #[test]
    fn shows_arms_winner_and_promotion() {
        let mut x = fixtures::experiment("ab");
        x.status = Some(ExperimentStatus {
            phase: Some(ExperimentPhase::Concluded),
            winner: Some("challenger".into()),
            promotion: Some("set spec.model.version to \"2.0.0\"".into()),
            variants: vec![
                VariantResult { name: "control".into(), samples: 4000, estimate: Some(0.1), ..Default::default() },
                VariantResult {
                    name: "challenger".into(),
                    samples: 1000,
                    estimate: Some(0.2),
                    effect: Some(0.1),
                    effect_interval: vec![0.05, 0.15],
                    p_value: Some(0.001),
                    comparisons: Some(800),
                    agreement: Some(0.9731),
                    non_inferiority: vec![crate::api::experiment::NonInferiorityResult {
                        name: "latency".into(),
                        lift: Some(0.0125),
                        bound: Some(0.0238),
                        non_inferior: false,
                        harmful: false,
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let text = render(&x);
        assert!(text.contains("Phase:      Concluded"), "{text}");
        assert!(text.contains("Winner:     challenger"), "{text}");
        assert!(text.contains("Promotion:  set spec.model.version"), "{text}");
        assert!(text.contains("[0.0500, 0.1500]") && text.contains("0.0010"), "{text}");
        assert!(
            text.contains("Shadow:     challenger 97.3% agreement with stable over 800 compared answers"),
            "{text}"
        );
    }
}
