//! The evaluation gates: the candidate against the champion on the same held-out data, metric by metric,
//! with absolute and relative thresholds as TFX's and MLflow's evaluation thresholds have them. A change is
//! measured in the gate's direction (positive: the candidate is better).

use crate::api::experiment::Goal;
use crate::api::retrain_policy::{Gate, GateResult};

use super::report::Metrics;

/// Each gate's result, in the gates' order.
pub fn check(gates: &[Gate], candidate: &Metrics, champion: &Metrics) -> Vec<GateResult> {
    gates.iter().map(|g| one(g, candidate, champion)).collect()
}

fn one(g: &Gate, candidate: &Metrics, champion: &Metrics) -> GateResult {
    let (c, h) = (candidate.get(&g.metric).copied(), champion.get(&g.metric).copied());
    let fail =
        |message: String| GateResult { metric: g.metric.clone(), candidate: c, champion: h, passed: false, message };
    let (Some(c), Some(h)) = (c, h) else {
        let side = if c.is_none() { "candidate" } else { "champion" };
        let have = if c.is_none() { candidate } else { champion };
        let names: Vec<&str> = have.keys().map(String::as_str).collect();
        return fail(format!(
            "the evaluation reported no {:?} for the {side} (it reported: {}); fix the gate's metric or the evaluation program",
            g.metric,
            if names.is_empty() { "nothing".into() } else { names.join(", ") }
        ));
    };
    let goal = g.goal.unwrap_or_default();
    let change = match goal {
        Goal::Maximize => c - h,
        Goal::Minimize => h - c,
    };
    let relative = if h != 0.0 { Some(change / h.abs()) } else { None };
    let mut problems = Vec::new();
    if let Some(min) = g.min_absolute_change
        && change < min
    {
        problems.push(format!("needs an improvement of at least {min}"));
    }
    if let Some(max) = g.max_absolute_change
        && -change > max
    {
        problems.push(format!("may be at most {max} worse"));
    }
    for (bound, is_min) in [(g.min_relative_change, true), (g.max_relative_change, false)] {
        let Some(bound) = bound else { continue };
        match relative {
            None => problems.push("a relative change is undefined: the champion's value is 0".into()),
            Some(r) if is_min && r < bound => {
                problems.push(format!("needs a relative improvement of at least {bound}"))
            }
            Some(r) if !is_min && -r > bound => problems.push(format!("may be at most {bound} (relative) worse")),
            _ => {}
        }
    }
    let direction = if goal == Goal::Maximize { "higher is better" } else { "lower is better" };
    let mut message = format!("{} {c:.4} vs champion {h:.4} ({direction}): change {change:+.4}", g.metric);
    if let Some(r) = relative {
        message.push_str(&format!(" ({:+.2}%)", r * 100.0));
    }
    let passed = problems.is_empty();
    if !passed {
        message.push_str(&format!("; {}", problems.join(", ")));
    }
    GateResult { metric: g.metric.clone(), candidate: Some(c), champion: Some(h), passed, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(metric: &str, goal: Option<Goal>, f: impl FnOnce(&mut Gate)) -> Gate {
        let mut g = Gate { metric: metric.into(), goal, ..Gate::default() };
        f(&mut g);
        g
    }

    #[test]
    fn table() {
        let m = |v: &[(&str, f64)]| v.iter().map(|(k, x)| (k.to_string(), *x)).collect::<Metrics>();
        let cand = m(&[("f1", 0.91), ("fpr", 0.05), ("zero", 1.0)]);
        let champ = m(&[("f1", 0.90), ("fpr", 0.04), ("zero", 0.0)]);
        // (gate, passes, message fragment)
        let table: Vec<(Gate, bool, &str)> = vec![
            (gate("f1", None, |g| g.min_absolute_change = Some(0.005)), true, "change +0.0100"),
            (gate("f1", None, |g| g.min_absolute_change = Some(0.02)), false, "needs an improvement of at least 0.02"),
            (gate("f1", None, |g| g.min_relative_change = Some(0.01)), true, "+1.11%"),
            (gate("f1", None, |g| g.min_relative_change = Some(0.02)), false, "relative improvement"),
            (gate("fpr", Some(Goal::Minimize), |g| g.max_absolute_change = Some(0.0)), false, "may be at most 0 worse"),
            (gate("fpr", Some(Goal::Minimize), |g| g.max_absolute_change = Some(0.02)), true, "lower is better"),
            (gate("fpr", Some(Goal::Minimize), |g| g.max_relative_change = Some(0.1)), false, "(relative) worse"),
            (gate("fpr", Some(Goal::Minimize), |g| g.max_relative_change = Some(0.3)), true, "-25.00%"),
            (gate("zero", None, |g| g.min_relative_change = Some(0.0)), false, "champion's value is 0"),
            (
                gate("auc", None, |g| g.min_absolute_change = Some(0.0)),
                false,
                "reported no \"auc\" for the candidate (it reported: f1, fpr, zero)",
            ),
        ];
        for (g, passes, want) in table {
            let r = &check(std::slice::from_ref(&g), &cand, &champ)[0];
            assert_eq!(r.passed, passes, "{g:?}: {}", r.message);
            assert!(r.message.contains(want), "{g:?}: {}", r.message);
        }
    }
}
