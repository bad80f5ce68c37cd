//! `kubectl champion runs`: a readable view of one RetrainPolicy and its runs.

use std::fmt::Write;

use kube::ResourceExt;

use crate::api::RetrainPolicy;

/// The whole view.
pub fn render(p: &RetrainPolicy) -> String {
    let mut out = String::new();
    let s = p.status.clone().unwrap_or_default();
    let phase = s.phase.map(|p| format!("{p:?}")).unwrap_or_else(|| "Unknown (not reconciled yet)".into());
    let _ = writeln!(out, "RetrainPolicy {}/{}", p.namespace().unwrap_or_default(), p.name_any());
    let _ = writeln!(out, "  Deployment: {}", p.spec.deployment_ref.name);
    let _ = writeln!(out, "  Phase:      {phase}");
    if let Some(m) = &s.message {
        let _ = writeln!(out, "  Message:    {m}");
    }
    if let Some(t) = &s.last_trigger {
        let at = t.at.as_ref().map(|a| a.0.to_string()).unwrap_or_default();
        let value = t.value.map(|v| format!(" (value {v})")).unwrap_or_default();
        let _ = writeln!(out, "  Last trigger: {} at {at}{value}", t.reason);
    }
    if let Some(n) = &s.next_scheduled {
        let _ = writeln!(out, "  Next scheduled: {}", n.0);
    }
    for m in &s.metric_triggers {
        let value = m.value.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let since = m.out_of_range_since.as_ref().map(|t| format!(", out of range since {}", t.0)).unwrap_or_default();
        let note = m.message.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
        let _ = writeln!(out, "  Trigger {}: {value}{since}{note}", m.name);
    }
    for r in &s.runs {
        let _ = writeln!(
            out,
            "  Run {} [{:?}] trigger {}, dataset {}, {} trial(s)",
            r.id,
            r.decision,
            r.trigger,
            r.dataset.as_deref().unwrap_or("-"),
            r.trials.unwrap_or(0)
        );
        for t in &r.trial_results {
            let metrics: Vec<String> = t.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let params: Vec<String> = t.params.iter().map(|(k, v)| format!("{k}={}", v.0)).collect();
            let best = if r.best_trial == Some(t.index) { " (best)" } else { "" };
            let reason = t.reason.as_ref().map(|x| format!(": {x}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "    trial {} {:?}{best} {{{}}} {}{reason}",
                t.index,
                t.state,
                params.join(", "),
                metrics.join(" ")
            );
        }
        if let Some(e) = &r.evaluation {
            for g in &e.gates {
                let _ = writeln!(out, "    gate {} {}", if g.passed { "passed" } else { "FAILED" }, g.message);
            }
        }
        if let Some(v) = &r.candidate_version {
            let _ = writeln!(out, "    registered version {v}, rollout {}", r.rollout.as_deref().unwrap_or("-"));
        }
        if let Some(reason) = &r.reason {
            let _ = writeln!(out, "    {reason}");
        }
    }
    super::write_conditions(&mut out, &s.conditions);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RetrainPolicyStatus;
    use crate::api::retrain_policy::{GateResult, JobState, RunDecision};
    use crate::fixtures;

    #[test]
    fn shows_runs_trials_and_gates() {
        let mut p = fixtures::retrain_policy("fraud-retrain");
        let mut run = crate::retrain::run::start(
            &p.spec,
            "s",
            "r-0002",
            ("feature-drift", Some(0.31)),
            jiff::Timestamp::UNIX_EPOCH,
        );
        run.trial_results[0].state = JobState::Succeeded;
        run.trial_results[0].metrics.insert("val_f1".into(), 0.91);
        run.best_trial = Some(0);
        run.decision = RunDecision::Rejected;
        run.reason = Some("rejected: gate f1 ...".into());
        run.evaluation = Some(crate::api::retrain_policy::EvaluationRecord {
            job: "e".into(),
            state: JobState::Succeeded,
            candidate: Default::default(),
            champion: Default::default(),
            gates: vec![GateResult {
                metric: "f1".into(),
                candidate: Some(0.9),
                champion: Some(0.9),
                passed: false,
                message: "f1 0.9000 vs champion 0.9000".into(),
            }],
            reason: None,
        });
        p.status = Some(RetrainPolicyStatus { runs: vec![run], ..Default::default() });
        let text = render(&p);
        assert!(text.contains("Run r-0002 [Rejected] trigger feature-drift"), "{text}");
        assert!(text.contains("trial 0 Succeeded (best) {} val_f1=0.91"), "{text}");
        assert!(text.contains("gate FAILED f1 0.9000 vs champion 0.9000"), "{text}");
    }
}
