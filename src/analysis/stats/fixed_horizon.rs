//! Fixed-horizon tests: read **once**, at the planned sample size (or at the maximum duration). Reading
//! them at every evaluation and acting on the first significant one inflates false positives from 5 % to
//! about 25 % over 20 looks (the A/A simulation, `tests/aa_simulation.rs`); use [`super::msprt`] or
//! [`super::group_sequential`] for that.
//!
//! The two-proportion z-test uses the **unpooled** standard error for both the p-value and the interval,
//! so "the interval excludes 0" and "p < alpha" always agree (the pooled textbook test is
//! [`pooled_two_proportion_z_test`], for reference). Means use Welch's t-test.

use serde::{Deserialize, Serialize};

use super::Result;
use super::difference::{Difference, absolute_difference, relative_lift};
use super::distributions::{normal_isf, normal_sf, t_isf, t_sf};
use super::error::{StatsError, is_positive, open_unit, positive};
use super::sufficient::{Mean, Moments, Proportion};

/// A closed interval `[lower, upper]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interval {
    /// The lower end.
    pub lower: f64,
    /// The upper end.
    pub upper: f64,
}

impl Interval {
    /// `center ± half_width`.
    pub fn around(center: f64, half_width: f64) -> Self {
        Interval { lower: center - half_width, upper: center + half_width }
    }

    /// Whether `x` lies within the interval (ends included).
    pub fn contains(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }

    /// Whether the whole interval lies above `x`.
    pub fn is_above(&self, x: f64) -> bool {
        self.lower > x
    }

    /// Whether the whole interval lies below `x`.
    pub fn is_below(&self, x: f64) -> bool {
        self.upper < x
    }

    /// The intersection with `other`; it is empty (`lower > upper`) when they do not overlap.
    pub fn intersect(&self, other: &Interval) -> Interval {
        Interval { lower: self.lower.max(other.lower), upper: self.upper.min(other.upper) }
    }

    /// Whether `lower > upper`.
    pub fn is_empty(&self) -> bool {
        self.lower > self.upper
    }
}

/// The estimate of one arm on its own.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantEstimate {
    /// The rate or the mean.
    pub estimate: f64,
    /// Its standard error.
    pub standard_error: f64,
    /// Its two-sided `1 − alpha` interval (Wald for a rate, Student t with `n − 1` for a mean).
    pub interval: Interval,
}

/// A test of one effect (a difference or a lift) against 0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// The estimated effect.
    pub estimate: f64,
    /// Its (unpooled) standard error.
    pub standard_error: f64,
    /// `estimate / standard_error`: z, or Welch's t.
    pub statistic: f64,
    /// The degrees of freedom of a t-test; none for a z-test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degrees_of_freedom: Option<f64>,
    /// The two-sided p-value.
    pub p_value: f64,
    /// The two-sided `1 − alpha` interval; it excludes 0 exactly when `p_value < alpha`.
    pub interval: Interval,
}

/// A fixed-horizon comparison of a treatment with the control.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixedHorizonResult {
    /// The control on its own.
    pub control: VariantEstimate,
    /// The treatment on its own.
    pub treatment: VariantEstimate,
    /// The absolute difference, treatment − control: the decision.
    pub difference: TestResult,
    /// The relative lift, treatment / control − 1 (delta method); none when the control mean is not
    /// positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lift: Option<TestResult>,
}

/// The textbook pooled two-proportion z-test (`statsmodels.proportions_ztest`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PooledZTest {
    /// `z = (p̂_B − p̂_A) / √(p̄(1 − p̄)(1/n_A + 1/n_B))`, `p̄` the pooled rate.
    pub statistic: f64,
    /// The two-sided p-value.
    pub p_value: f64,
}

/// The reference distribution of a test statistic.
#[derive(Clone, Copy, Debug)]
enum Reference {
    Normal,
    StudentT(f64),
}

impl Reference {
    fn two_sided_p(self, statistic: f64) -> f64 {
        let tail = match self {
            Reference::Normal => normal_sf(statistic.abs()),
            Reference::StudentT(df) => t_sf(statistic.abs(), df),
        };
        (2.0 * tail).min(1.0)
    }

    /// The upper `alpha / 2` quantile.
    fn critical_value(self, alpha: f64) -> f64 {
        match self {
            Reference::Normal => normal_isf(alpha / 2.0),
            Reference::StudentT(df) => t_isf(alpha / 2.0, df),
        }
    }

    fn degrees_of_freedom(self) -> Option<f64> {
        match self {
            Reference::Normal => None,
            Reference::StudentT(df) => Some(df),
        }
    }
}

fn test(effect: &Difference, reference: Reference, alpha: f64) -> TestResult {
    let standard_error = effect.standard_error();
    let statistic = effect.z();
    TestResult {
        estimate: effect.estimate,
        standard_error,
        statistic,
        degrees_of_freedom: reference.degrees_of_freedom(),
        p_value: reference.two_sided_p(statistic),
        interval: Interval::around(effect.estimate, reference.critical_value(alpha) * standard_error),
    }
}

fn variant(moments: &Moments, reference: Reference, alpha: f64) -> VariantEstimate {
    let standard_error = moments.variance_of_mean().sqrt();
    VariantEstimate {
        estimate: moments.mean,
        standard_error,
        interval: Interval::around(moments.mean, reference.critical_value(alpha) * standard_error),
    }
}

/// The lift, or none when the control mean is not positive; other errors are passed on.
fn lift_if_defined(control: &Moments, treatment: &Moments) -> Result<Option<Difference>> {
    match relative_lift(control, treatment) {
        Ok(lift) => Ok(Some(lift)),
        Err(StatsError::NonPositiveBaseline(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The two-proportion z-test with the unpooled (Wald) standard error
/// `√(p̂_A(1 − p̂_A)/n_A + p̂_B(1 − p̂_B)/n_B)` for the p-value and the interval alike; the lift by the
/// delta method with the normal quantile. Each arm needs at least 5 successes and 5 failures.
pub fn two_proportion_z_test(control: &Proportion, treatment: &Proportion, alpha: f64) -> Result<FixedHorizonResult> {
    let alpha = open_unit("alpha", alpha)?;
    let (a, b) = (control.moments()?, treatment.moments()?);
    let difference = absolute_difference(&a, &b)?;
    let lift = lift_if_defined(&a, &b)?;
    Ok(FixedHorizonResult {
        control: variant(&a, Reference::Normal, alpha),
        treatment: variant(&b, Reference::Normal, alpha),
        difference: test(&difference, Reference::Normal, alpha),
        lift: lift.map(|l| test(&l, Reference::Normal, alpha)),
    })
}

/// The pooled two-proportion z-test, for reference and for users who ask for it: it can disagree with
/// the unpooled interval near `alpha` (test vector TV3), which is why the decision uses
/// [`two_proportion_z_test`].
pub fn pooled_two_proportion_z_test(control: &Proportion, treatment: &Proportion) -> Result<PooledZTest> {
    let (a, b) = (control.moments()?, treatment.moments()?);
    let pooled = (control.successes + treatment.successes) / (control.trials + treatment.trials);
    let se = (pooled * (1.0 - pooled) * (1.0 / a.count + 1.0 / b.count)).sqrt();
    let statistic = (b.mean - a.mean) / se;
    Ok(PooledZTest { statistic, p_value: Reference::Normal.two_sided_p(statistic) })
}

/// Welch's t-test of two means from their counters (sum, sum of squares, count).
pub fn welch_t_test(control: &Mean, treatment: &Mean, alpha: f64) -> Result<FixedHorizonResult> {
    welch_t_test_moments(&control.moments()?, &treatment.moments()?, alpha)
}

/// Welch's t-test from the arms' moments: `t = θ̂ / √(s_A²/n_A + s_B²/n_B)` against Student's t with
/// Welch–Satterthwaite degrees of freedom; the lift by the delta method with the same t quantile
/// (as GrowthBook does); each arm's interval with `n − 1` degrees of freedom.
pub fn welch_t_test_moments(control: &Moments, treatment: &Moments, alpha: f64) -> Result<FixedHorizonResult> {
    let alpha = open_unit("alpha", alpha)?;
    let difference = absolute_difference(control, treatment)?;
    let lift = lift_if_defined(control, treatment)?;
    let reference = Reference::StudentT(difference.degrees_of_freedom);
    Ok(FixedHorizonResult {
        control: variant(control, Reference::StudentT(control.count - 1.0), alpha),
        treatment: variant(treatment, Reference::StudentT(treatment.count - 1.0), alpha),
        difference: test(&difference, reference, alpha),
        lift: lift.map(|l| test(&l, reference, alpha)),
    })
}

/// The log-ratio (Katz) interval for the lift, `exp(ln(m_B/m_A) ± z·√(u_B/m_B² + u_A/m_A²)) − 1`: never
/// below −100 %, better behaved than the delta method at small n. Needs both means positive.
pub fn log_ratio_lift_interval(control: &Moments, treatment: &Moments, alpha: f64) -> Result<Interval> {
    let alpha = open_unit("alpha", alpha)?;
    control.validate()?;
    treatment.validate()?;
    let (ma, mb) = (control.mean, treatment.mean);
    if !is_positive(ma) {
        return Err(StatsError::NonPositiveBaseline(ma));
    }
    if !is_positive(mb) {
        return Err(StatsError::OutOfRange { what: "treatment mean", value: mb, range: "(0, ∞)" });
    }
    let se = (treatment.variance_of_mean() / (mb * mb) + control.variance_of_mean() / (ma * ma)).sqrt();
    if !is_positive(se) {
        return Err(StatsError::ZeroVariance { what: "the lift" });
    }
    let center = (mb / ma).ln();
    let half = normal_isf(alpha / 2.0) * se;
    Ok(Interval { lower: (center - half).exp_m1(), upper: (center + half).exp_m1() })
}

/// The units per arm a fixed-horizon test needs to detect `effect` with probability `power` at two-sided
/// level `alpha`: `(z_{1−α/2} + z_{power})² (σ_A² + σ_B²) / δ²`, unrounded (round up).
pub fn planned_sample_size_per_arm(
    variance_control: f64,
    variance_treatment: f64,
    effect: f64,
    alpha: f64,
    power: f64,
) -> Result<f64> {
    let alpha = open_unit("alpha", alpha)?;
    let power = open_unit("power", power)?;
    let variance = positive("variance", variance_control)? + positive("variance", variance_treatment)?;
    let effect = positive("effect size", effect.abs())?;
    let z = normal_isf(alpha / 2.0) - normal_isf(power);
    Ok(z * z * variance / (effect * effect))
}

/// [`planned_sample_size_per_arm`] for rates `p_control → p_treatment`, with `σ² = p(1 − p)`.
pub fn planned_sample_size_proportions(p_control: f64, p_treatment: f64, alpha: f64, power: f64) -> Result<f64> {
    let pa = open_unit("control rate", p_control)?;
    let pb = open_unit("treatment rate", p_treatment)?;
    planned_sample_size_per_arm(pa * (1.0 - pa), pb * (1.0 - pb), pb - pa, alpha, power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_excludes_zero_exactly_when_p_is_below_alpha() {
        // A grid of treatments around the boundary, at three levels.
        let control = Proportion::new(480.0, 5000.0);
        for alpha in [0.01, 0.05, 0.1] {
            for successes in (400..=640).step_by(3) {
                let treatment = Proportion::new(f64::from(successes), 5200.0);
                let r = two_proportion_z_test(&control, &treatment, alpha).unwrap().difference;
                let significant = r.p_value < alpha;
                assert_eq!(significant, !r.interval.contains(0.0), "alpha {alpha}, {successes}/5200: {r:?}");
            }
        }
    }

    #[test]
    fn variant_intervals() {
        let r = two_proportion_z_test(&Proportion::new(200.0, 2000.0), &Proportion::new(250.0, 2000.0), 0.05).unwrap();
        // 0.1 ± 1.959964·√(0.09/2000)
        assert!((r.control.interval.upper - 0.113148).abs() < 1e-6, "{:?}", r.control);
        assert!((r.control.standard_error - (0.09f64 / 2000.0).sqrt()).abs() < 1e-15);
        let m = welch_t_test_moments(
            &Moments { mean: 10.0, variance: 4.0, count: 10.0 },
            &Moments { mean: 11.0, variance: 4.0, count: 10.0 },
            0.05,
        )
        .unwrap();
        // 10 ± t_{9, 0.975}·2/√10 with t_{9, 0.975} = 2.262157
        assert!((m.control.interval.upper - (10.0 + 2.262157 * 2.0 / 10f64.sqrt())).abs() < 1e-5, "{:?}", m.control);
    }

    #[test]
    fn no_lift_without_a_positive_baseline() {
        let control = Moments { mean: -1.0, variance: 4.0, count: 100.0 };
        let treatment = Moments { mean: 1.0, variance: 4.0, count: 100.0 };
        let r = welch_t_test_moments(&control, &treatment, 0.05).unwrap();
        assert_eq!(r.lift, None);
        assert_eq!(r.difference.estimate, 2.0);
        assert_eq!(log_ratio_lift_interval(&control, &treatment, 0.05), Err(StatsError::NonPositiveBaseline(-1.0)));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let good = Proportion::new(200.0, 2000.0);
        for alpha in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(matches!(
                two_proportion_z_test(&good, &good, alpha),
                Err(StatsError::OutOfRange { what: "alpha", .. })
            ));
        }
        assert_eq!(
            two_proportion_z_test(&good, &Proportion::new(3.0, 2.0), 0.05),
            Err(StatsError::SuccessesExceedTrials { successes: 3.0, trials: 2.0 })
        );
        assert!(welch_t_test(&Mean::new(1.0, 1.0, 1.0), &Mean::new(1.0, 2.0, 10.0), 0.05).is_err());
        assert!(planned_sample_size_proportions(0.1, 0.1, 0.05, 0.8).is_err());
        assert!(planned_sample_size_proportions(0.1, 1.1, 0.05, 0.8).is_err());
        assert!(planned_sample_size_per_arm(0.09, 0.09, 0.01, 0.05, 1.0).is_err());
    }
}
