//! Adjusting p-values when several treatments are each compared with the control (the family is
//! treatments × objective metrics; guardrails are not corrected). Reject where the adjusted p-value is
//! at most alpha. Bonferroni is the default and the one for sequential tests, where it is applied to
//! alpha instead ([`bonferroni_alpha`]); Holm is uniformly more powerful for fixed-horizon tests.

use super::Result;
use super::error::{StatsError, finite, open_unit};

/// Bonferroni: `p̃_i = min(1, m·p_i)`.
pub fn bonferroni(p_values: &[f64]) -> Result<Vec<f64>> {
    check(p_values)?;
    let m = p_values.len() as f64;
    Ok(p_values.iter().map(|p| (m * p).min(1.0)).collect())
}

/// Holm's step-down: with `p_(1) ≤ … ≤ p_(m)`, `p̃_(i) = max_{j≤i} min(1, (m − j + 1)·p_(j))`, returned in
/// the order of the input.
pub fn holm(p_values: &[f64]) -> Result<Vec<f64>> {
    check(p_values)?;
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running;
    }
    Ok(adjusted)
}

/// The per-comparison level of `comparisons` comparisons under Bonferroni, `alpha / m`: what a sequential
/// test is run at (mSPRT: reject when Λ ≥ m/α; group-sequential: spend α/m).
pub fn bonferroni_alpha(alpha: f64, comparisons: usize) -> Result<f64> {
    let alpha = open_unit("alpha", alpha)?;
    if comparisons == 0 {
        return Err(StatsError::Empty { what: "comparisons" });
    }
    Ok(alpha / comparisons as f64)
}

fn check(p_values: &[f64]) -> Result<()> {
    if p_values.is_empty() {
        return Err(StatsError::Empty { what: "p-values" });
    }
    for &p in p_values {
        let p = finite("p-value", p)?;
        if !(0.0..=1.0).contains(&p) {
            return Err(StatsError::OutOfRange { what: "p-value", value: p, range: "[0, 1]" });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_comparison_is_not_adjusted() {
        assert_eq!(bonferroni(&[0.03]).unwrap(), vec![0.03]);
        assert_eq!(holm(&[0.03]).unwrap(), vec![0.03]);
        assert_eq!(bonferroni_alpha(0.05, 1).unwrap(), 0.05);
    }

    #[test]
    fn holm_is_monotone_in_the_sorted_order_and_capped_at_one() {
        let adjusted = holm(&[0.9, 0.2, 0.6, 0.2]).unwrap();
        // sorted 0.2, 0.2, 0.6, 0.9 → 0.8, max(0.8, 0.6) = 0.8, max(0.8, 1.2→1) = 1, 1
        assert_eq!(adjusted, vec![1.0, 0.8, 1.0, 0.8]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(bonferroni(&[]), Err(StatsError::Empty { what: "p-values" }));
        assert_eq!(holm(&[0.1, f64::NAN]), Err(StatsError::NotFinite { what: "p-value" }));
        assert!(holm(&[1.5]).is_err());
        assert!(bonferroni(&[-0.1]).is_err());
        assert_eq!(bonferroni_alpha(0.05, 0), Err(StatsError::Empty { what: "comparisons" }));
    }
}
