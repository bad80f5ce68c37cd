//! Per-object exponential backoff with jitter, capped at one minute: a failing object is retried
//! quickly at first and never waits many minutes, and one object's failures never slow another's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The first retry delay.
pub const BASE: Duration = Duration::from_millis(500);
/// The longest delay between retries.
pub const CAP: Duration = Duration::from_secs(60);

/// The delay before retry number `failures` (1 for the first failure), with `jitter` in `[0, 1)`
/// spreading it by up to ±20% so that objects failing together do not retry together.
pub fn delay(failures: u32, jitter: f64) -> Duration {
    let exp = BASE.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)));
    let capped = exp.min(CAP);
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    capped.mul_f64(factor).min(CAP)
}

/// Consecutive failures per object key.
#[derive(Default)]
pub struct FailureCounts(Mutex<HashMap<String, u32>>);

impl FailureCounts {
    /// Records a failure of `key` and returns the count so far.
    pub fn fail(&self, key: &str) -> u32 {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// Forgets `key`'s failures after a successful reconcile.
    pub fn succeed(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// A jitter value in `[0, 1)` from the clock's sub-second nanoseconds (good enough to spread retries).
pub fn clock_jitter() -> f64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        // (failures, jitter, expected)
        let table = [
            (1, 0.5, Duration::from_millis(500)),
            (2, 0.5, Duration::from_secs(1)),
            (3, 0.5, Duration::from_secs(2)),
            (8, 0.5, Duration::from_secs(60)),
            (1000, 0.5, Duration::from_secs(60)),
            (1, 0.0, Duration::from_millis(400)),
            (1, 1.0, Duration::from_millis(600)),
            (1000, 1.0, Duration::from_secs(60)),
        ];
        for (n, j, want) in table {
            assert_eq!(delay(n, j), want, "failures={n} jitter={j}");
        }
    }

    #[test]
    fn counts_per_key_and_resets() {
        let c = FailureCounts::default();
        assert_eq!(c.fail("a"), 1);
        assert_eq!(c.fail("a"), 2);
        assert_eq!(c.fail("b"), 1);
        c.succeed("a");
        assert_eq!(c.fail("a"), 1);
    }
}
