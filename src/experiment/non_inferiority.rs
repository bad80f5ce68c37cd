//! The non-inferiority guardrails of an Experiment (SPEC §7), per variant against the control, from the
//! arms' totals (sum, count, sum of squares since the start): harm is watched at every evaluation with the
//! always-valid confidence sequence of the difference (so looking often does not raise false alarms),
//! against the margin (a negligible regression does not stop anything); non-inferiority, which a winner
//! needs, is the one-sided bound of the relative lift inside the margin. Pure.

use crate::analysis::stats::{self, Mean};
use crate::api::experiment::{Goal, NonInferiorityCheck, NonInferiorityResult};

/// The totals of one arm for one guardrail.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    /// The sum of values.
    pub sum: f64,
    /// Their count.
    pub count: f64,
    /// The sum of their squares.
    pub sum_of_squares: f64,
}

/// Assesses `variant` against `control` at level `alpha`, the mixing variance from `tuning` units (as the
/// objective's). `None` while the numbers do not make a comparison yet (too few values, no variance).
pub fn assess(
    check: &NonInferiorityCheck,
    control: Totals,
    variant: Totals,
    alpha: f64,
    tuning: f64,
) -> Option<NonInferiorityResult> {
    let moments = |t: Totals| Mean::new(t.sum, t.sum_of_squares, t.count).moments().ok();
    let (a, b) = (moments(control)?, moments(variant)?);
    let goal = check.goal.unwrap_or(Goal::Minimize);
    let ni = stats::relative_non_inferiority(&a, &b, check.margin, goal, alpha).ok()?;
    let diff = stats::absolute_difference(&a, &b).ok()?;
    let tau2 = stats::mixing_variance(alpha, tuning, diff.per_unit_variance()).ok()?;
    let half = stats::confidence_sequence_half_width(diff.variance, tau2, alpha).ok()?;
    let allowed = check.margin * a.mean.abs();
    let harmful = match goal {
        Goal::Minimize => diff.estimate - half > allowed,
        Goal::Maximize => diff.estimate + half < -allowed,
    };
    Some(NonInferiorityResult {
        name: check.name.clone(),
        lift: Some(ni.lift),
        bound: Some(ni.bound),
        non_inferior: ni.non_inferior,
        harmful,
    })
}

/// The sentence of a harmful result, for the condition and the Event.
pub fn harm_message(variant: &str, check: &NonInferiorityCheck, r: &NonInferiorityResult) -> String {
    format!(
        "variant {variant} is worse than the control on {} by more than the {:.1}% margin (lift {:+.2}%, shown by the always-valid confidence sequence)",
        check.name,
        check.margin * 100.0,
        r.lift.unwrap_or(f64::NAN) * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(margin: f64, goal: Goal) -> NonInferiorityCheck {
        NonInferiorityCheck { name: "latency".into(), goal: Some(goal), margin, ..NonInferiorityCheck::default() }
    }

    /// `n` values with mean `m` and standard deviation `sd`, as totals.
    fn totals(n: f64, m: f64, sd: f64) -> Totals {
        Totals { sum: n * m, count: n, sum_of_squares: (n - 1.0) * sd * sd + n * m * m }
    }

    #[test]
    fn table() {
        use Goal::{Maximize, Minimize};
        // (case, margin, goal, control, variant) -> (non-inferior, harmful)
        #[rustfmt::skip]
        let table = [
            ("same latency, many values: within the margin", 0.05, Minimize, totals(5000.0, 100.0, 20.0), totals(5000.0, 100.0, 20.0), (true, false)),
            ("20% slower: harmful", 0.05, Minimize, totals(5000.0, 100.0, 20.0), totals(5000.0, 120.0, 20.0), (false, true)),
            ("4.5% slower, 5% margin: not harmful, not shown within", 0.05, Minimize, totals(2000.0, 100.0, 20.0), totals(2000.0, 104.5, 20.0), (false, false)),
            ("3% slower, 5% margin: shown within", 0.05, Minimize, totals(2000.0, 100.0, 20.0), totals(2000.0, 103.0, 20.0), (true, false)),
            ("few values: nothing shown", 0.05, Minimize, totals(20.0, 100.0, 20.0), totals(20.0, 110.0, 20.0), (false, false)),
            ("faster is fine", 0.02, Minimize, totals(5000.0, 100.0, 20.0), totals(5000.0, 90.0, 20.0), (true, false)),
            ("revenue 20% lower: harmful", 0.05, Maximize, totals(5000.0, 10.0, 2.0), totals(5000.0, 8.0, 2.0), (false, true)),
            ("revenue higher: within", 0.05, Maximize, totals(5000.0, 10.0, 2.0), totals(5000.0, 10.5, 2.0), (true, false)),
        ];
        for (case, margin, goal, control, variant, want) in table {
            let r = assess(&check(margin, goal), control, variant, 0.05, 5000.0).unwrap_or_else(|| panic!("{case}"));
            assert_eq!((r.non_inferior, r.harmful), want, "{case}: {r:?}");
        }
        assert!(assess(&check(0.05, Minimize), Totals::default(), totals(10.0, 1.0, 1.0), 0.05, 5000.0).is_none());
    }

    #[test]
    fn the_spec_vector_tv21_is_not_non_inferior_at_a_2_percent_margin() {
        // SPEC §7: latency +1.25 % (SE 0.69 %), upper 95 % bound +2.38 % > 2 % margin.
        let control = totals(10_000.0, 200.0, 100.0);
        let variant = totals(10_000.0, 202.5, 100.0);
        let r = assess(&check(0.02, Goal::Minimize), control, variant, 0.05, 5000.0).unwrap();
        assert!((r.lift.unwrap() - 0.0125).abs() < 1e-9, "{r:?}");
        assert!(!r.non_inferior && !r.harmful, "{r:?}");
        assert!(r.bound.unwrap() > 0.02, "{r:?}");
    }
}
