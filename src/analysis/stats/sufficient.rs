//! The sufficient statistics of one arm, as the operator reads them from cumulative counters (baseline
//! subtracted at the start of the experiment), and the [`Moments`] every test works from.
//!
//! Counters are `f64` because Prometheus answers in `f64`; `increase()` can even give non-integers,
//! which are accepted here (the caller rounds or clamps if it wants integers).

use serde::{Deserialize, Serialize};

use super::Result;
use super::error::{StatsError, finite, is_positive, non_negative};

/// The least number of successes and of failures a proportion needs before its normal approximation is
/// used (the `n·p ≥ 5 and n·(1−p) ≥ 5` rule).
pub const MIN_EVENTS: f64 = 5.0;

/// A proportion metric of one arm: `successes` out of `trials`, such as conversions per request.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proportion {
    /// The units with a success.
    pub successes: f64,
    /// All units.
    pub trials: f64,
}

/// A mean metric of one arm, from three counters: the sum of the values, the sum of their squares and
/// their count (a Prometheus histogram has no sum of squares; it needs its own counter).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mean {
    /// Σx.
    pub sum: f64,
    /// Σx².
    pub sum_sq: f64,
    /// The number of values.
    pub count: f64,
}

/// The mean, variance and count of one arm: what every test here starts from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Moments {
    /// The sample mean.
    pub mean: f64,
    /// The variance of one unit: `p̂(1 − p̂)` for a proportion (plug-in), the unbiased sample variance
    /// (n − 1) for a mean.
    pub variance: f64,
    /// The number of units.
    pub count: f64,
}

impl Proportion {
    /// `successes` out of `trials`.
    pub fn new(successes: f64, trials: f64) -> Self {
        Proportion { successes, trials }
    }

    /// Checks the counts: finite, not negative, at least one trial, no more successes than trials.
    pub fn validate(&self) -> Result<()> {
        let successes = non_negative("successes", self.successes)?;
        let trials = non_negative("trials", self.trials)?;
        if trials == 0.0 {
            return Err(StatsError::TooFewUnits { what: "trials", count: trials, needed: 1.0 });
        }
        if successes > trials {
            return Err(StatsError::SuccessesExceedTrials { successes, trials });
        }
        Ok(())
    }

    /// The rate `successes / trials`, once the counts are valid.
    pub fn rate(&self) -> Result<f64> {
        self.validate()?;
        Ok(self.successes / self.trials)
    }

    /// The moments for a normal approximation: mean `p̂`, variance `p̂(1 − p̂)`, count `trials`. Fails
    /// unless the counts are valid and there are at least [`MIN_EVENTS`] successes and as many failures.
    pub fn moments(&self) -> Result<Moments> {
        let rate = self.rate()?;
        let failures = self.trials - self.successes;
        if self.successes < MIN_EVENTS || failures < MIN_EVENTS {
            return Err(StatsError::TooFewEvents { successes: self.successes, failures, needed: MIN_EVENTS });
        }
        Ok(Moments { mean: rate, variance: rate * (1.0 - rate), count: self.trials })
    }
}

impl Mean {
    /// The counters `sum`, `sum_sq` and `count`.
    pub fn new(sum: f64, sum_sq: f64, count: f64) -> Self {
        Mean { sum, sum_sq, count }
    }

    /// The moments: mean `S/n` and unbiased variance `(Q − S²/n)/(n − 1)`. Fails unless the counters
    /// are finite, `count ≥ 2` and `sum_sq ≥ 0`, and when the variance is not positive (cancellation can
    /// drive it below zero when mean² ≫ variance; such a metric needs another unit).
    pub fn moments(&self) -> Result<Moments> {
        let sum = finite("sum", self.sum)?;
        let sum_sq = non_negative("sum of squares", self.sum_sq)?;
        let count = non_negative("count", self.count)?;
        if count < 2.0 {
            return Err(StatsError::TooFewUnits { what: "count", count, needed: 2.0 });
        }
        let variance = (sum_sq - sum * sum / count) / (count - 1.0);
        if !is_positive(variance) {
            return Err(StatsError::ZeroVariance { what: "the values" });
        }
        Ok(Moments { mean: sum / count, variance, count })
    }
}

impl Moments {
    /// Moments from summary statistics (mean, standard deviation, count), checked like [`Moments::validate`].
    pub fn from_mean_sd(mean: f64, sd: f64, count: f64) -> Result<Self> {
        let sd = non_negative("standard deviation", sd)?;
        let moments = Moments { mean, variance: sd * sd, count };
        moments.validate()?;
        Ok(moments)
    }

    /// Checks the moments: finite, variance not negative, `count ≥ 2`.
    pub fn validate(&self) -> Result<()> {
        finite("mean", self.mean)?;
        non_negative("variance", self.variance)?;
        let count = non_negative("count", self.count)?;
        if count < 2.0 {
            return Err(StatsError::TooFewUnits { what: "count", count, needed: 2.0 });
        }
        Ok(())
    }

    /// The squared standard error of the mean, `variance / count`.
    pub fn variance_of_mean(&self) -> f64 {
        self.variance / self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_proportions_are_errors() {
        let cases = [
            (Proportion::new(-1.0, 10.0), StatsError::Negative { what: "successes", value: -1.0 }),
            (Proportion::new(1.0, -10.0), StatsError::Negative { what: "trials", value: -10.0 }),
            (Proportion::new(0.0, 0.0), StatsError::TooFewUnits { what: "trials", count: 0.0, needed: 1.0 }),
            (Proportion::new(11.0, 10.0), StatsError::SuccessesExceedTrials { successes: 11.0, trials: 10.0 }),
            (Proportion::new(f64::NAN, 10.0), StatsError::NotFinite { what: "successes" }),
            (Proportion::new(1.0, f64::INFINITY), StatsError::NotFinite { what: "trials" }),
            (Proportion::new(4.0, 100.0), StatsError::TooFewEvents { successes: 4.0, failures: 96.0, needed: 5.0 }),
            (Proportion::new(96.0, 100.0), StatsError::TooFewEvents { successes: 96.0, failures: 4.0, needed: 5.0 }),
        ];
        for (input, want) in cases {
            assert_eq!(input.moments(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn proportion_moments_use_the_plug_in_variance() {
        let m = Proportion::new(200.0, 2000.0).moments().unwrap();
        assert_eq!(m, Moments { mean: 0.1, variance: 0.1 * 0.9, count: 2000.0 });
    }

    #[test]
    fn bad_means_are_errors() {
        let cases = [
            (Mean::new(f64::NAN, 1.0, 10.0), StatsError::NotFinite { what: "sum" }),
            (Mean::new(1.0, -1.0, 10.0), StatsError::Negative { what: "sum of squares", value: -1.0 }),
            (Mean::new(1.0, 1.0, -3.0), StatsError::Negative { what: "count", value: -3.0 }),
            (Mean::new(1.0, 1.0, 1.0), StatsError::TooFewUnits { what: "count", count: 1.0, needed: 2.0 }),
            (Mean::new(1.0, 1.0, 0.0), StatsError::TooFewUnits { what: "count", count: 0.0, needed: 2.0 }),
            // all values equal: no variance
            (Mean::new(30.0, 90.0, 10.0), StatsError::ZeroVariance { what: "the values" }),
            // mean² ≫ variance: cancellation leaves a negative "variance"
            (Mean::new(1e9, 1e17 - 1e3, 10.0), StatsError::ZeroVariance { what: "the values" }),
        ];
        for (input, want) in cases {
            assert_eq!(input.moments(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn summary_moments_are_checked() {
        assert_eq!(
            Moments::from_mean_sd(1.0, -1.0, 10.0),
            Err(StatsError::Negative { what: "standard deviation", value: -1.0 })
        );
        assert_eq!(Moments::from_mean_sd(f64::NAN, 1.0, 10.0), Err(StatsError::NotFinite { what: "mean" }));
        assert_eq!(
            Moments::from_mean_sd(1.0, 1.0, 1.0),
            Err(StatsError::TooFewUnits { what: "count", count: 1.0, needed: 2.0 })
        );
        assert_eq!(Moments::from_mean_sd(1.0, 2.0, 10.0), Ok(Moments { mean: 1.0, variance: 4.0, count: 10.0 }));
    }
}
