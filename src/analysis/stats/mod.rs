//! The statistics of an Experiment: pure functions from cumulative counters to estimates, intervals,
//! p-values and boundaries. The spec they follow, with its sources and test vectors, is summarised in
//! `docs/statistics.md`.
//!
//! - [`sufficient`]: the inputs, [`Proportion`] (successes, trials) and [`Mean`] (sum, sum of squares,
//!   count), checked and turned into [`Moments`] (mean, variance, count) of one arm.
//! - [`difference`]: the comparison of a treatment with the control, absolute or as a relative lift
//!   (delta method): a [`Difference`] is an estimate with its variance.
//! - [`fixed_horizon`]: the two-proportion z-test with the unpooled standard error (for the decision and
//!   the interval alike, so they never disagree), Welch's t-test, intervals for each variant, the
//!   difference and the lift, and the planned sample size. Valid only when read once.
//! - [`msprt`]: the default sequential test, mSPRT with a normal mixing prior: an always-valid p-value
//!   kept as a running minimum and a confidence sequence kept as a running intersection; the mixing
//!   variance from a tuning sample size.
//! - [`group_sequential`]: Lan–DeMets alpha spending (O'Brien–Fleming by default), boundaries by
//!   recursive numerical integration over the looks, and whether a look history crossed one.
//! - [`srm`]: the sample-ratio-mismatch check (chi-square goodness of fit against the weights).
//! - [`multiple_comparisons`]: Bonferroni and Holm adjustment across variants.
//! - [`guardrail`]: the non-inferiority test of a guardrail metric with a relative margin.
//! - [`error`]: [`StatsError`], what a bad number turns into.
//!
//! Everything here is pure: no I/O, no clock, no Kubernetes. Bad numbers (negative counts, successes
//! above trials, no trials, NaN) are a typed [`StatsError`], never a panic and never a decision.
//! Distributions (normal, Student t, chi-square) come from `statrs`.
//!
//! Conventions: arm `A` is the control, `B` the treatment; an effect is `B − A` (or `B/A − 1`);
//! `alpha` is `1 − confidence`, two-sided unless a function says otherwise.

pub mod difference;
mod distributions;
pub mod error;
pub mod fixed_horizon;
pub mod group_sequential;
pub mod guardrail;
pub mod msprt;
pub mod multiple_comparisons;
pub mod srm;
pub mod sufficient;

#[cfg(test)]
mod vector_tests;

pub use difference::{Difference, absolute_difference, relative_lift};
pub use error::StatsError;
pub use fixed_horizon::{
    FixedHorizonResult, Interval, PooledZTest, TestResult, VariantEstimate, log_ratio_lift_interval,
    planned_sample_size_per_arm, planned_sample_size_proportions, pooled_two_proportion_z_test, two_proportion_z_test,
    welch_t_test, welch_t_test_moments,
};
pub use group_sequential::{
    AlphaSpending, BoundaryCheck, Crossing, GroupSequentialDesign, Look, LookBoundary, Sides,
    bonferroni_spending_bounds, check_boundary, first_crossing, group_sequential_bounds,
};
pub use guardrail::{NonInferiority, relative_non_inferiority};
pub use msprt::{
    MsprtConfig, MsprtLook, MsprtState, confidence_sequence_half_width, log_likelihood_ratio, mixing_variance,
    msprt_look, tuning_rho_squared,
};
pub use multiple_comparisons::{bonferroni, bonferroni_alpha, holm};
pub use srm::{DEFAULT_SRM_THRESHOLD, SampleRatioCheck, sample_ratio_mismatch};
pub use sufficient::{Mean, Moments, Proportion};

/// The result of every function here.
pub type Result<T, E = StatsError> = std::result::Result<T, E>;
