//! The default sequential test: the mixture sequential probability ratio test (mSPRT) of Johari,
//! Koomen, Pekelis and Walsh ("Always Valid Inference", Operations Research 2022) with a normal mixing
//! prior `θ ~ N(θ0, τ²)` on the Gaussian approximation `θ̂ ~ N(θ, V)`:
//!
//! ```text
//! ln Λ = ½·ln(V/(V+τ²)) + τ²(θ̂−θ0)² / (2V(V+τ²))
//! p_k  = min(p_{k−1}, 1, 1/Λ_k)                       always-valid p-value, a running minimum
//! CS_k = θ̂_k ± √( V(V+τ²)/τ² · [2 ln(1/α) + ln((V+τ²)/V)] ),  intersected with CS_{k−1}
//! ```
//!
//! By Ville's inequality the chance that `p_k ≤ α` at *any* look under the null is at most `α`, however
//! often and whenever one looks. The decision is sticky: the caller keeps [`MsprtState`] in the status
//! and passes it back at the next look; the instantaneous `1/Λ` can rise again, the p-value cannot.
//!
//! `τ²` is frozen when the experiment starts ([`mixing_variance`]): changing it mid-run voids the
//! guarantee. Validity is asymptotic (a plug-in variance), so the caller waits for a burn-in of units per
//! arm before the first look. With several comparisons, pass `alpha / m` (Bonferroni).

use serde::{Deserialize, Serialize};

use super::Result;
use super::difference::Difference;
use super::error::{StatsError, finite, is_positive, open_unit, positive};
use super::fixed_horizon::Interval;

/// The settings of one mSPRT comparison, frozen for the experiment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MsprtConfig {
    /// τ², the variance of the mixing prior, in the squared units of the effect.
    pub mixing_variance: f64,
    /// The level: reject once the always-valid p-value is at most this.
    pub alpha: f64,
    /// θ0, the effect under the null (0 unless a guardrail tolerates a small regression).
    pub null_value: f64,
}

impl MsprtConfig {
    /// A two-sided test of θ = 0 with mixing variance τ² at level `alpha`.
    pub fn new(mixing_variance: f64, alpha: f64) -> Result<Self> {
        let config = MsprtConfig { mixing_variance, alpha, null_value: 0.0 };
        config.validate()?;
        Ok(config)
    }

    /// Checks `τ² > 0`, `alpha` in (0, 1) and a finite θ0.
    pub fn validate(&self) -> Result<()> {
        positive("mixing variance", self.mixing_variance)?;
        open_unit("alpha", self.alpha)?;
        finite("null value", self.null_value)?;
        Ok(())
    }
}

/// What the caller keeps in the status between looks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MsprtState {
    /// The looks taken so far.
    pub looks: u32,
    /// The always-valid p-value: the minimum over all looks so far of `min(1, 1/Λ)`; 1 before any look.
    pub p_value: f64,
    /// The running intersection of the confidence sequences; none before the first look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_sequence: Option<Interval>,
    /// The look (1-based) at which `p_value` first reached `alpha`; once set it stays set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_at_look: Option<u32>,
}

impl Default for MsprtState {
    fn default() -> Self {
        MsprtState { looks: 0, p_value: 1.0, confidence_sequence: None, rejected_at_look: None }
    }
}

impl MsprtState {
    /// Whether the null was rejected at some look.
    pub fn rejected(&self) -> bool {
        self.rejected_at_look.is_some()
    }

    fn validate(&self) -> Result<()> {
        let p = finite("previous p-value", self.p_value)?;
        if !(0.0..=1.0).contains(&p) {
            return Err(StatsError::OutOfRange { what: "previous p-value", value: p, range: "[0, 1]" });
        }
        if let Some(cs) = self.confidence_sequence {
            finite("previous confidence sequence", cs.lower)?;
            finite("previous confidence sequence", cs.upper)?;
        }
        Ok(())
    }
}

/// One look of an mSPRT.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MsprtLook {
    /// ln Λ at this look.
    pub log_likelihood_ratio: f64,
    /// `min(1, 1/Λ)` at this look alone (for display; not a p-value to act on).
    pub instant_p_value: f64,
    /// This look's confidence sequence before the intersection with the earlier ones.
    pub interval: Interval,
    /// The state after this look, to keep for the next.
    pub state: MsprtState,
}

/// ρ² of the GrowthBook / Waudby-Smith parametrisation (eq. 161, two-sided):
/// `ρ² = (−2 ln α + ln(1 − 2 ln α)) / N_tune`, which makes the confidence sequence about tightest when
/// `N_tune` units (all compared arms together) have been seen. For α = 0.05, `ρ²·N_tune = 7.9362`.
pub fn tuning_rho_squared(alpha: f64, tuning_sample_size: f64) -> Result<f64> {
    let alpha = open_unit("alpha", alpha)?;
    let n = positive("tuning sample size", tuning_sample_size)?;
    let l = alpha.ln();
    Ok((-2.0 * l + (1.0 - 2.0 * l).ln()) / n)
}

/// The mixing variance `τ² = ρ²·s²` for a tuning sample size, with `s²` the variance of one unit
/// ([`Difference::per_unit_variance`] of the first look, or a design value such as `4p(1 − p)` for a
/// rate `p` split evenly). Call it once when the experiment starts and keep the result: τ² must not move.
/// Setting `N_tune` to the fixed-horizon sample size of the minimum detectable effect makes τ ≈ that effect.
pub fn mixing_variance(alpha: f64, tuning_sample_size: f64, per_unit_variance: f64) -> Result<f64> {
    let s2 = positive("per-unit variance", per_unit_variance)?;
    Ok(tuning_rho_squared(alpha, tuning_sample_size)? * s2)
}

/// ln Λ of the normal-mixture likelihood ratio of θ = `null_value` against the mixture, computed in log
/// space (Λ itself overflows for large effects).
pub fn log_likelihood_ratio(difference: &Difference, mixing_variance: f64, null_value: f64) -> Result<f64> {
    let (estimate, v) = checked_difference(difference)?;
    let tau2 = positive("mixing variance", mixing_variance)?;
    let null_value = finite("null value", null_value)?;
    let delta = estimate - null_value;
    Ok(0.5 * (v / (v + tau2)).ln() + tau2 * delta * delta / (2.0 * v * (v + tau2)))
}

/// The half-width of the `1 − alpha` confidence sequence at a look with variance `V`:
/// `√(V(V+τ²)/τ² · [2 ln(1/α) + ln((V+τ²)/V)])`.
pub fn confidence_sequence_half_width(variance: f64, mixing_variance: f64, alpha: f64) -> Result<f64> {
    let v = positive("variance", variance)?;
    let tau2 = positive("mixing variance", mixing_variance)?;
    let alpha = open_unit("alpha", alpha)?;
    Ok((v * (v + tau2) / tau2 * (2.0 * (1.0 / alpha).ln() + ((v + tau2) / v).ln())).sqrt())
}

/// Takes one look: the always-valid p-value `min(previous, 1, 1/Λ)`, the confidence sequence intersected
/// with the previous one, and the look of the first rejection (`p ≤ alpha`), kept once set. Pass
/// [`MsprtState::default`] at the first look.
///
/// The intersection can in principle come out empty (the data then contradict the model; under it, the
/// chance is at most alpha); it is returned as it is, and [`Interval::is_empty`] tells.
pub fn msprt_look(difference: &Difference, config: &MsprtConfig, previous: &MsprtState) -> Result<MsprtLook> {
    config.validate()?;
    previous.validate()?;
    let log_lr = log_likelihood_ratio(difference, config.mixing_variance, config.null_value)?;
    let instant_p_value = (-log_lr).exp().min(1.0);
    let p_value = previous.p_value.min(instant_p_value);
    let half_width = confidence_sequence_half_width(difference.variance, config.mixing_variance, config.alpha)?;
    let interval = Interval::around(difference.estimate, half_width);
    let confidence_sequence = match previous.confidence_sequence {
        Some(cs) => cs.intersect(&interval),
        None => interval,
    };
    let looks = previous.looks.saturating_add(1);
    let rejected_at_look = previous.rejected_at_look.or((p_value <= config.alpha).then_some(looks));
    Ok(MsprtLook {
        log_likelihood_ratio: log_lr,
        instant_p_value,
        interval,
        state: MsprtState { looks, p_value, confidence_sequence: Some(confidence_sequence), rejected_at_look },
    })
}

fn checked_difference(difference: &Difference) -> Result<(f64, f64)> {
    let estimate = finite("estimate", difference.estimate)?;
    let v = finite("variance", difference.variance)?;
    if !is_positive(v) {
        return Err(StatsError::ZeroVariance { what: "the difference" });
    }
    Ok((estimate, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn difference(estimate: f64, variance: f64) -> Difference {
        Difference { estimate, variance, degrees_of_freedom: 1000.0, total_units: 2000.0 }
    }

    #[test]
    fn the_p_value_never_rises_and_a_rejection_sticks() {
        let config = MsprtConfig::new(1e-4, 0.05).unwrap();
        // strong, then no effect at all
        let looks = [difference(0.05, 1e-4), difference(0.0, 1e-5), difference(0.0, 1e-6)];
        let mut state = MsprtState::default();
        let mut ps = vec![];
        for d in &looks {
            let look = msprt_look(d, &config, &state).unwrap();
            state = look.state;
            ps.push((look.instant_p_value, state.p_value));
        }
        assert!(ps[0].1 <= 0.05, "{ps:?}");
        assert_eq!(ps[1].0, 1.0);
        assert_eq!(ps[2].1, ps[0].1);
        assert_eq!(state.rejected_at_look, Some(1));
        assert_eq!(state.looks, 3);
    }

    #[test]
    fn the_confidence_sequence_only_shrinks() {
        let config = MsprtConfig::new(1e-4, 0.05).unwrap();
        let mut state = MsprtState::default();
        let mut previous: Option<Interval> = None;
        for (estimate, variance) in [(0.01, 1e-4), (0.03, 5e-5), (-0.01, 2e-5), (0.0, 1e-5)] {
            state = msprt_look(&difference(estimate, variance), &config, &state).unwrap().state;
            let cs = state.confidence_sequence.unwrap();
            if let Some(p) = previous {
                assert!(cs.lower >= p.lower && cs.upper <= p.upper, "{cs:?} within {p:?}");
            }
            previous = Some(cs);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let d = difference(0.01, 1e-4);
        let config = MsprtConfig { mixing_variance: 1e-4, alpha: 0.05, null_value: 0.0 };
        assert!(MsprtConfig::new(0.0, 0.05).is_err());
        assert!(MsprtConfig::new(1e-4, 1.0).is_err());
        assert!(MsprtConfig::new(f64::NAN, 0.05).is_err());
        let bad_state = MsprtState { p_value: f64::NAN, ..MsprtState::default() };
        assert_eq!(msprt_look(&d, &config, &bad_state), Err(StatsError::NotFinite { what: "previous p-value" }));
        let bad_state = MsprtState { p_value: 1.5, ..MsprtState::default() };
        assert!(msprt_look(&d, &config, &bad_state).is_err());
        assert_eq!(
            msprt_look(&difference(0.01, 0.0), &config, &MsprtState::default()),
            Err(StatsError::ZeroVariance { what: "the difference" })
        );
        assert_eq!(
            msprt_look(&difference(f64::NAN, 1e-4), &config, &MsprtState::default()),
            Err(StatsError::NotFinite { what: "estimate" })
        );
        assert!(tuning_rho_squared(0.05, 0.0).is_err());
        assert!(mixing_variance(0.05, 5000.0, -1.0).is_err());
    }

    #[test]
    fn huge_effects_do_not_overflow() {
        let config = MsprtConfig::new(1e-4, 0.05).unwrap();
        let look = msprt_look(&difference(1.0, 1e-8), &config, &MsprtState::default()).unwrap();
        assert!(look.log_likelihood_ratio.is_finite() && look.log_likelihood_ratio > 1e6);
        assert_eq!(look.state.p_value, 0.0);
        assert!(look.state.rejected());
    }
}
