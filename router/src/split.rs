//! Choosing a backend: an exact weighted split (a precomputed smooth weighted round robin schedule walked by an
//! atomic counter), sticky choice by consistent (rendezvous) hashing, and exact-share sampling for mirrors and body
//! logging. Pure and lock-free; nothing here does I/O.

use std::sync::atomic::{AtomicU64, Ordering};

/// The longest schedule; weights whose reduced sum is larger are scaled to this many slots (0.01% resolution).
const MAX_SLOTS: u64 = 10_000;

/// An exact weighted split: over every `len()` consecutive picks, backend `i` is picked exactly its share of times,
/// spread out evenly (smooth weighted round robin), whatever the number of threads picking.
#[derive(Debug)]
pub struct Split {
    schedule: Vec<u32>,
    next: AtomicU64,
}

impl Split {
    /// A split over backends with these weights (indices into `weights`). At least one weight must be above 0.
    pub fn new(weights: &[u32]) -> Split {
        let slots = slots(weights);
        let total: i64 = slots.iter().map(|&s| s as i64).sum();
        let mut current = vec![0i64; slots.len()];
        let mut schedule = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, &s) in current.iter_mut().zip(&slots) {
                *c += s as i64;
            }
            // The first of the largest: a deterministic order.
            let best = (0..slots.len()).fold(0, |best, i| if current[i] > current[best] { i } else { best });
            current[best] -= total;
            schedule.push(best as u32);
        }
        Split { schedule, next: AtomicU64::new(0) }
    }

    /// The backend for the next request.
    pub fn pick(&self) -> usize {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.schedule[(n % self.schedule.len() as u64) as usize] as usize
    }

    /// The schedule's length: the split is exact over every run of this many picks.
    pub fn len(&self) -> usize {
        self.schedule.len()
    }

    /// Always false: a split has at least one slot.
    pub fn is_empty(&self) -> bool {
        self.schedule.is_empty()
    }
}

/// Weights reduced by their greatest common divisor, or scaled to `MAX_SLOTS` by largest remainder when still larger.
fn slots(weights: &[u32]) -> Vec<u64> {
    let g = weights.iter().fold(0u64, |g, &w| gcd(g, w as u64)).max(1);
    let reduced: Vec<u64> = weights.iter().map(|&w| w as u64 / g).collect();
    let total: u64 = reduced.iter().sum();
    if total <= MAX_SLOTS {
        return reduced;
    }
    let mut scaled: Vec<u64> = reduced.iter().map(|&w| w * MAX_SLOTS / total).collect();
    let mut rest: Vec<(u64, usize)> = reduced.iter().enumerate().map(|(i, &w)| (w * MAX_SLOTS % total, i)).collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let missing = MAX_SLOTS - scaled.iter().sum::<u64>();
    for &(_, i) in rest.iter().take(missing as usize) {
        scaled[i] += 1;
    }
    scaled
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A stable 64-bit hash (FNV-1a, then a SplitMix64 finalizer): the same on every router replica and Rust version,
/// unlike the standard library's hasher.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Sticky choice by weighted rendezvous hashing: each backend, identified by the hash of its name, scores the key;
/// the highest score wins. The same key always lands on the same backend; changing a weight moves only the keys
/// whose winner changes (about the share that moved); adding a backend moves keys only to it; the order of the
/// backends does not matter. `backends` holds `(stable_hash(name), weight)`; a weight of 0 never wins.
pub fn sticky_pick(key: &[u8], backends: &[(u64, u32)]) -> Option<usize> {
    let k = stable_hash(key);
    let mut best: Option<(usize, f64)> = None;
    for (i, &(id, weight)) in backends.iter().enumerate() {
        if weight == 0 {
            continue;
        }
        // A uniform number in (0, 1) from the pair, then the score -w / ln(u): the winner is backend i with
        // probability w_i / sum(w).
        let u = ((mix(k ^ id) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = -(weight as f64) / u.ln();
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}

/// Exact-share sampling: of every run of picks, the share `percent / 100` (rounded down at any point) are hits,
/// spread evenly. Used for the mirror percentage and the body sampling of the log.
#[derive(Debug)]
pub struct Sampler {
    /// The share in millionths, so shares such as 33.3% are exact.
    per_million: u64,
    n: AtomicU64,
}

impl Sampler {
    /// A sampler that hits `percent` percent of the time (clamped to 0..=100).
    pub fn new(percent: f64) -> Sampler {
        let per_million = (percent.clamp(0.0, 100.0) * 10_000.0).round() as u64;
        Sampler { per_million, n: AtomicU64::new(0) }
    }

    /// Whether this pick is a hit.
    pub fn hit(&self) -> bool {
        match self.per_million {
            0 => false,
            1_000_000.. => true,
            p => {
                // Wrapping after 2^64 / 10^6 picks only restarts the pattern.
                let n = self.n.fetch_add(1, Ordering::Relaxed) % 1_000_000;
                (n + 1) * p / 1_000_000 > n * p / 1_000_000
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(split: &Split, n: usize, backends: usize) -> Vec<usize> {
        let mut c = vec![0; backends];
        for _ in 0..n {
            c[split.pick()] += 1;
        }
        c
    }

    #[test]
    fn split_is_exact_within_two_points_over_ten_thousand() {
        let table: &[&[u32]] = &[
            &[90, 10],
            &[50, 50],
            &[1, 1, 1],
            &[33, 33, 34],
            &[7, 0, 93],
            &[1, 999],
            &[5, 15, 30, 50],
            &[3, 7, 11, 13, 17],
        ];
        for weights in table {
            let split = Split::new(weights);
            let c = counts(&split, 10_000, weights.len());
            let total: u32 = weights.iter().sum();
            for (i, &w) in weights.iter().enumerate() {
                let want = 100.0 * w as f64 / total as f64;
                let got = 100.0 * c[i] as f64 / 10_000.0;
                assert!((got - want).abs() <= 2.0, "{weights:?}: backend {i} got {got}%, want {want}%");
                // Tighter than the goal: over whole schedules the split is exact.
                assert!((got - want).abs() <= 100.0 * split.len() as f64 / 10_000.0, "{weights:?}: {c:?}");
            }
        }
    }

    #[test]
    fn split_is_spread_not_bursty() {
        let split = Split::new(&[90, 10]);
        assert_eq!(split.len(), 10);
        let picks: Vec<usize> = (0..100).map(|_| split.pick()).collect();
        // The candidate's picks are evenly spaced, one in every ten.
        let gaps: Vec<usize> = picks
            .iter()
            .enumerate()
            .filter(|p| *p.1 == 1)
            .map(|p| p.0)
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        assert!(gaps.iter().all(|&g| g == 10), "{gaps:?}");
        let split = Split::new(&[50, 50]);
        let picks: Vec<usize> = (0..10).map(|_| split.pick()).collect();
        assert_eq!(picks, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn huge_weights_are_scaled_and_stay_exact() {
        let split = Split::new(&[1_000_000, 3_000_000, 7]);
        assert_eq!(split.len(), 10_000);
        let c = counts(&split, 10_000, 3);
        assert_eq!(c, [2500, 7500, 0]);
        assert_eq!(slots(&[4, 6]), [2, 3]);
    }

    fn ids(names: &[&str], weights: &[u32]) -> Vec<(u64, u32)> {
        names.iter().zip(weights).map(|(n, &w)| (stable_hash(n.as_bytes()), w)).collect()
    }

    fn assign(keys: usize, backends: &[(u64, u32)]) -> Vec<usize> {
        (0..keys).map(|k| sticky_pick(format!("user-{k}").as_bytes(), backends).unwrap()).collect()
    }

    #[test]
    fn sticky_follows_weights_and_is_stable() {
        let b = ids(&["stable", "candidate"], &[90, 10]);
        let first = assign(10_000, &b);
        assert_eq!(first, assign(10_000, &b), "the same key goes to the same backend");
        let share = first.iter().filter(|&&i| i == 1).count() as f64 / 100.0;
        assert!((share - 10.0).abs() <= 2.0, "candidate share {share}%");
        // The order of the backends does not matter.
        let reversed = ids(&["candidate", "stable"], &[10, 90]);
        assert!(assign(10_000, &reversed).iter().zip(&first).all(|(r, f)| *r == 1 - f));
        // A known value, so a change of hash (which would move every user at an upgrade) fails here.
        assert_eq!(stable_hash(b"user-1"), 0xf16d_8d44_0fbb_25d5);
    }

    #[test]
    fn sticky_weight_change_moves_only_a_proportional_share() {
        let before = assign(10_000, &ids(&["stable", "candidate"], &[90, 10]));
        let after = assign(10_000, &ids(&["stable", "candidate"], &[80, 20]));
        let moved: Vec<(usize, usize)> =
            before.iter().zip(&after).filter(|(b, a)| b != a).map(|(b, a)| (*b, *a)).collect();
        assert!(moved.iter().all(|&m| m == (0, 1)), "keys only move towards the backend that gained weight");
        let share = moved.len() as f64 / 100.0;
        assert!((share - 10.0).abs() <= 2.0, "moved {share}%, want about 10%");
        // A new backend takes keys only from the others, about its share.
        let three = assign(10_000, &ids(&["stable", "candidate", "next"], &[80, 20, 25]));
        assert!(after.iter().zip(&three).all(|(a, t)| a == t || *t == 2));
        let taken = three.iter().filter(|&&t| t == 2).count() as f64 / 100.0;
        assert!((taken - 20.0).abs() <= 2.0, "the new backend took {taken}%");
        // Weight 0 takes nothing.
        assert!(assign(1000, &ids(&["stable", "candidate"], &[1, 0])).iter().all(|&i| i == 0));
        assert_eq!(sticky_pick(b"k", &ids(&["a"], &[0])), None);
    }

    #[test]
    fn sampler_hits_the_exact_share() {
        for (percent, hits) in [(0.0, 0), (100.0, 10_000), (25.0, 2500), (1.0, 100), (0.5, 50), (33.3, 3330)] {
            let s = Sampler::new(percent);
            let got = (0..10_000).filter(|_| s.hit()).count();
            assert_eq!(got, hits, "{percent}%");
        }
    }
}
