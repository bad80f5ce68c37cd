//! The non-inferiority test of a guardrail metric (latency, error rate): at decision time the treatment
//! may be worse than the control by at most a relative `margin`, shown by the one-sided `1 − alpha`
//! bound of the lift (delta method, Welch degrees of freedom) staying inside the margin.
//!
//! The other guardrail mode, abort on harm, is watched continuously and is therefore sequential: an
//! [`super::msprt`] comparison whose confidence sequence lies entirely on the harmful side.

use serde::{Deserialize, Serialize};

use super::Result;
use super::difference::relative_lift;
use super::distributions::{t_cdf, t_isf, t_sf};
use super::error::{open_unit, positive};
use super::sufficient::Moments;
use crate::api::experiment::Goal;

/// The outcome of a non-inferiority test with a relative margin.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NonInferiority {
    /// The lift `m_B / m_A − 1`.
    pub lift: f64,
    /// Its standard error (delta method).
    pub standard_error: f64,
    /// The Welch degrees of freedom.
    pub degrees_of_freedom: f64,
    /// The one-sided `1 − alpha` bound on the harmful side: the upper bound when smaller is better, the
    /// lower bound when larger is better.
    pub bound: f64,
    /// The p-value of "the treatment is worse by the margin or more".
    pub p_value: f64,
    /// Whether the bound lies inside the margin (`bound < margin`, or `bound > −margin`).
    pub non_inferior: bool,
    /// The one-sided p-value of "the treatment is no worse at all" (a harm test against 0).
    pub harm_p_value: f64,
}

/// Tests that the treatment is at most `margin` (relative, e.g. 0.02 for 2 %) worse than the control on
/// a metric where `goal` says which way is better, at one-sided level `alpha`.
pub fn relative_non_inferiority(
    control: &Moments,
    treatment: &Moments,
    margin: f64,
    goal: Goal,
    alpha: f64,
) -> Result<NonInferiority> {
    let alpha = open_unit("alpha", alpha)?;
    let margin = positive("margin", margin)?;
    let lift = relative_lift(control, treatment)?;
    let (l, se, df) = (lift.estimate, lift.standard_error(), lift.degrees_of_freedom);
    let q = t_isf(alpha, df);
    let (bound, non_inferior, p_value, harm_p_value) = match goal {
        Goal::Minimize => {
            let bound = l + q * se;
            (bound, bound < margin, t_cdf((l - margin) / se, df), t_sf(l / se, df))
        }
        Goal::Maximize => {
            let bound = l - q * se;
            (bound, bound > -margin, t_sf((l + margin) / se, df), t_cdf(l / se, df))
        }
    };
    Ok(NonInferiority {
        lift: l,
        standard_error: se,
        degrees_of_freedom: df,
        bound,
        p_value,
        non_inferior,
        harm_p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::stats::StatsError;

    fn moments(mean: f64, sd: f64, count: f64) -> Moments {
        Moments::from_mean_sd(mean, sd, count).unwrap()
    }

    #[test]
    fn the_goal_decides_which_side_is_harmful() {
        // the treatment is 1 % better on a larger-is-better metric, or 1 % worse on a smaller-is-better one
        let (a, b) = (moments(100.0, 10.0, 10_000.0), moments(101.0, 10.0, 10_000.0));
        let max = relative_non_inferiority(&a, &b, 0.02, Goal::Maximize, 0.05).unwrap();
        let min = relative_non_inferiority(&a, &b, 0.02, Goal::Minimize, 0.05).unwrap();
        assert!(max.non_inferior && max.harm_p_value > 0.99 && max.bound < max.lift, "{max:?}");
        assert!(min.non_inferior && min.harm_p_value < 1e-10 && min.bound > min.lift, "{min:?}");
        let tight = relative_non_inferiority(&a, &b, 0.005, Goal::Minimize, 0.05).unwrap();
        assert!(!tight.non_inferior && tight.p_value > 0.5, "{tight:?}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (a, b) = (moments(100.0, 10.0, 100.0), moments(101.0, 10.0, 100.0));
        assert!(relative_non_inferiority(&a, &b, 0.0, Goal::Minimize, 0.05).is_err());
        assert!(relative_non_inferiority(&a, &b, 0.02, Goal::Minimize, 1.0).is_err());
        let zero = moments(0.0, 1.0, 100.0);
        assert_eq!(
            relative_non_inferiority(&zero, &b, 0.02, Goal::Minimize, 0.05),
            Err(StatsError::NonPositiveBaseline(0.0))
        );
    }
}
