//! A treatment compared with the control: the estimate of the effect and its variance, from the two
//! arms' [`Moments`]. Both the fixed-horizon tests and the sequential ones work from a [`Difference`].

use serde::{Deserialize, Serialize};

use super::Result;
use super::error::{StatsError, is_positive};
use super::sufficient::Moments;

/// An estimated effect of a treatment against the control.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// The estimate: `m_B − m_A`, or `m_B / m_A − 1` for a lift.
    pub estimate: f64,
    /// Its variance `V` (the squared standard error), unpooled: each arm keeps its own variance.
    pub variance: f64,
    /// The Welch–Satterthwaite degrees of freedom of the absolute difference (also used for the lift).
    pub degrees_of_freedom: f64,
    /// The units of both arms, `n_A + n_B`.
    pub total_units: f64,
}

impl Difference {
    /// The standard error, `√V`.
    pub fn standard_error(&self) -> f64 {
        self.variance.sqrt()
    }

    /// The estimate in standard errors, `estimate / √V` (the z of an unpooled z-test, Welch's t).
    pub fn z(&self) -> f64 {
        self.estimate / self.standard_error()
    }

    /// The variance of one unit, `s² = V · (n_A + n_B)`: nearly constant over an experiment, it scales a
    /// tuning sample size into a mixing variance ([`super::msprt::mixing_variance`]).
    pub fn per_unit_variance(&self) -> f64 {
        self.variance * self.total_units
    }
}

/// The absolute difference `m_B − m_A` with `V = s_A²/n_A + s_B²/n_B` and Welch's degrees of freedom
/// `ν = V² / (u_A²/(n_A − 1) + u_B²/(n_B − 1))`, `u = s²/n`. Fails when the moments are invalid or `V` is 0.
pub fn absolute_difference(control: &Moments, treatment: &Moments) -> Result<Difference> {
    control.validate()?;
    treatment.validate()?;
    let (ua, ub) = (control.variance_of_mean(), treatment.variance_of_mean());
    let variance = ua + ub;
    if !is_positive(variance) {
        return Err(StatsError::ZeroVariance { what: "the difference" });
    }
    Ok(Difference {
        estimate: treatment.mean - control.mean,
        variance,
        degrees_of_freedom: welch_degrees_of_freedom(control, treatment),
        total_units: control.count + treatment.count,
    })
}

/// The relative lift `L = m_B / m_A − 1` by the delta method, `Var(L) ≈ u_B/m_A² + m_B²·u_A/m_A⁴`
/// (independent arms, so no covariance term), with the degrees of freedom of the absolute difference.
/// Needs a positive control mean. The delta method is poor at small n; see [`super::log_ratio_lift_interval`].
pub fn relative_lift(control: &Moments, treatment: &Moments) -> Result<Difference> {
    let absolute = absolute_difference(control, treatment)?;
    let (ma, mb) = (control.mean, treatment.mean);
    if !is_positive(ma) {
        return Err(StatsError::NonPositiveBaseline(ma));
    }
    let variance = treatment.variance_of_mean() / (ma * ma) + mb * mb * control.variance_of_mean() / ma.powi(4);
    if !is_positive(variance) {
        return Err(StatsError::ZeroVariance { what: "the lift" });
    }
    Ok(Difference { estimate: mb / ma - 1.0, variance, ..absolute })
}

fn welch_degrees_of_freedom(control: &Moments, treatment: &Moments) -> f64 {
    let (ua, ub) = (control.variance_of_mean(), treatment.variance_of_mean());
    (ua + ub).powi(2) / (ua * ua / (control.count - 1.0) + ub * ub / (treatment.count - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(mean: f64, variance: f64, count: f64) -> Moments {
        Moments { mean, variance, count }
    }

    #[test]
    fn no_variance_is_an_error() {
        let zero = moments(1.0, 0.0, 100.0);
        assert_eq!(absolute_difference(&zero, &zero), Err(StatsError::ZeroVariance { what: "the difference" }));
    }

    #[test]
    fn one_arm_without_variance_keeps_the_other_arms_degrees_of_freedom() {
        let d = absolute_difference(&moments(1.0, 0.0, 100.0), &moments(2.0, 4.0, 50.0)).unwrap();
        assert!((d.degrees_of_freedom - 49.0).abs() < 1e-12, "{d:?}");
        assert_eq!(d.total_units, 150.0);
    }

    #[test]
    fn a_lift_needs_a_positive_baseline() {
        for ma in [0.0, -1.0] {
            let got = relative_lift(&moments(ma, 1.0, 100.0), &moments(1.0, 1.0, 100.0));
            assert_eq!(got, Err(StatsError::NonPositiveBaseline(ma)));
        }
    }

    #[test]
    fn invalid_moments_are_errors() {
        let good = moments(1.0, 1.0, 100.0);
        let nan = moments(f64::NAN, 1.0, 100.0);
        assert_eq!(absolute_difference(&good, &nan), Err(StatsError::NotFinite { what: "mean" }));
        let negative = moments(1.0, -1.0, 100.0);
        assert_eq!(absolute_difference(&negative, &good), Err(StatsError::Negative { what: "variance", value: -1.0 }));
    }
}
