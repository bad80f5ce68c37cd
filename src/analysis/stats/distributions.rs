//! The distributions the tests need, all from `statrs`, as plain functions of `f64`. Callers check their
//! arguments first (finite, degrees of freedom > 0, probabilities in (0, 1)); these wrappers only map a
//! `statrs` construction error, which then cannot happen, to NaN rather than panic.
//!
//! Tails are always computed with survival functions, never as `1 − cdf`.

use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, Normal, StudentsT};

/// Φ̄(x) = P(Z > x) for a standard normal Z.
pub(crate) fn normal_sf(x: f64) -> f64 {
    Normal::standard().sf(x)
}

/// φ(x), the standard normal density.
pub(crate) fn normal_pdf(x: f64) -> f64 {
    Normal::standard().pdf(x)
}

/// Φ̄⁻¹(p): the x with P(Z > x) = p, for p in (0, 1). Computed as −Φ⁻¹(p), which keeps full precision
/// for tiny p (where Φ⁻¹(1 − p) would lose it).
pub(crate) fn normal_isf(p: f64) -> f64 {
    -Normal::standard().inverse_cdf(p)
}

fn students_t(df: f64) -> Option<StudentsT> {
    StudentsT::new(0.0, 1.0, df).ok()
}

/// P(T > x) for Student's t with `df` degrees of freedom.
pub(crate) fn t_sf(x: f64, df: f64) -> f64 {
    students_t(df).map_or(f64::NAN, |t| t.sf(x))
}

/// P(T ≤ x) for Student's t with `df` degrees of freedom.
pub(crate) fn t_cdf(x: f64, df: f64) -> f64 {
    students_t(df).map_or(f64::NAN, |t| t.cdf(x))
}

/// The x with P(T > x) = p, for p in (0, 1): −F⁻¹(p) by symmetry.
pub(crate) fn t_isf(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    students_t(df).map_or(f64::NAN, |t| -t.inverse_cdf(p))
}

/// P(X > x) for a chi-square X with `df` degrees of freedom.
pub(crate) fn chi_square_sf(x: f64, df: f64) -> f64 {
    ChiSquared::new(df).map_or(f64::NAN, |c| c.sf(x))
}
