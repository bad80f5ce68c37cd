//! [`StatsError`]: why a number could not be computed. Every function of [`super`] returns it instead of
//! panicking, and a caller treats it as "no decision": the metric is invalid or not ready yet.

/// Why a statistic could not be computed from its inputs.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// An input is NaN or infinite.
    #[error("{what} is not a finite number")]
    NotFinite {
        /// The input, e.g. "trials".
        what: &'static str,
    },
    /// A count or a sum of squares is below zero.
    #[error("{what} is negative ({value})")]
    Negative {
        /// The input, e.g. "successes".
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// More successes than trials.
    #[error("successes ({successes}) exceed trials ({trials})")]
    SuccessesExceedTrials {
        /// The successes.
        successes: f64,
        /// The trials.
        trials: f64,
    },
    /// Too few units for the statistic (no trials at all, or fewer than two values for a variance).
    #[error("{what} is {count}, at least {needed} are needed")]
    TooFewUnits {
        /// The count, e.g. "trials".
        what: &'static str,
        /// Its value.
        count: f64,
        /// The least it may be.
        needed: f64,
    },
    /// A proportion with fewer than [`crate::analysis::stats::sufficient::MIN_EVENTS`] successes or
    /// failures: its normal approximation is not trusted yet.
    #[error("{successes} successes and {failures} failures: at least {needed} of each are needed")]
    TooFewEvents {
        /// The successes.
        successes: f64,
        /// The failures (trials − successes).
        failures: f64,
        /// The least of each.
        needed: f64,
    },
    /// The variance is zero (or below, after cancellation), so there is no standard error to divide by.
    #[error("the variance of {what} is zero")]
    ZeroVariance {
        /// What has no variance, e.g. "the difference".
        what: &'static str,
    },
    /// A relative lift needs a positive control mean.
    #[error("the control mean is {0}; a relative lift needs a positive baseline")]
    NonPositiveBaseline(f64),
    /// A parameter (alpha, power, a p-value, a weight, a margin, ...) is outside its range.
    #[error("{what} is {value}, it must be in {range}")]
    OutOfRange {
        /// The parameter, e.g. "alpha".
        what: &'static str,
        /// Its value.
        value: f64,
        /// The allowed range, e.g. "(0, 1)".
        range: &'static str,
    },
    /// The information fractions of a group-sequential design do not increase strictly.
    #[error("information fractions must increase strictly, got {previous} then {next}")]
    NotIncreasing {
        /// The earlier fraction.
        previous: f64,
        /// The later one.
        next: f64,
    },
    /// A list that must have items has none.
    #[error("{what} is empty")]
    Empty {
        /// The list, e.g. "p-values".
        what: &'static str,
    },
    /// Two lists that go together have different lengths.
    #[error("{what}: {left} and {right} items")]
    LengthMismatch {
        /// The lists, e.g. "counts and weights".
        what: &'static str,
        /// The length of the first.
        left: usize,
        /// The length of the second.
        right: usize,
    },
}

/// Checks that `value` is finite.
pub(crate) fn finite(what: &'static str, value: f64) -> Result<f64, StatsError> {
    if value.is_finite() { Ok(value) } else { Err(StatsError::NotFinite { what }) }
}

/// Checks that `value` is finite and at least zero.
pub(crate) fn non_negative(what: &'static str, value: f64) -> Result<f64, StatsError> {
    let value = finite(what, value)?;
    if value < 0.0 { Err(StatsError::Negative { what, value }) } else { Ok(value) }
}

/// Checks that `value` lies strictly between 0 and 1 (alpha, power, a rate).
pub(crate) fn open_unit(what: &'static str, value: f64) -> Result<f64, StatsError> {
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(StatsError::OutOfRange { what, value, range: "(0, 1)" })
    }
}

/// Checks that `value` is finite and strictly positive.
pub(crate) fn positive(what: &'static str, value: f64) -> Result<f64, StatsError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(StatsError::OutOfRange { what, value, range: "(0, ∞)" })
    }
}

/// `x > 0`, false for NaN: the check before dividing by a variance or a baseline.
pub(crate) fn is_positive(x: f64) -> bool {
    x > 0.0
}
