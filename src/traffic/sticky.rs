//! Sticky assignment by a request header, for routers that match headers.
//!
//! A router cannot hash a header value itself, so the value's last character stands in for its hash: the
//! 62 letters and digits are dealt out to the backends in proportion to their weights (largest remainder
//! first), and each backend gets a rule matching the header values that end in one of its characters.
//! The same header value always ends in the same character, so one user stays on one backend. Values
//! ending in anything else, and requests without the header, take the weighted split. The split of
//! sticky requests is exact only to 1/62 (about 1.6 points), which is why it is used only when asked.

use super::Backend;

/// The characters header values are bucketed by, in order.
pub const ALPHABET: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// One sticky rule: requests whose header value matches `regex` (a full match, as Envoy and the Gateway
/// API implementations evaluate it) go to `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The backend's Service.
    pub service: String,
    /// The header value pattern, e.g. `.*[0-9a-f]`.
    pub regex: String,
}

/// The sticky rules for `backends` (backends with no characters get no rule).
pub fn buckets(backends: &[Backend]) -> Vec<Bucket> {
    let total: i64 = backends.iter().map(|b| i64::from(b.weight.max(0))).sum();
    let n = ALPHABET.len() as i64;
    if total == 0 {
        return Vec::new();
    }
    // Largest-remainder apportionment of the characters.
    let mut counts: Vec<i64> = backends.iter().map(|b| i64::from(b.weight.max(0)) * n / total).collect();
    let mut order: Vec<usize> = (0..backends.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((i64::from(backends[i].weight.max(0)) * n) % total));
    let mut left = n - counts.iter().sum::<i64>();
    for &i in order.iter().cycle().take(backends.len() * 2) {
        if left == 0 {
            break;
        }
        if backends[i].weight > 0 {
            counts[i] += 1;
            left -= 1;
        }
    }
    let chars: Vec<char> = ALPHABET.chars().collect();
    let mut start = 0usize;
    let mut out = Vec::new();
    for (b, count) in backends.iter().zip(counts) {
        let count = count as usize;
        if count > 0 {
            let class: String = chars[start..start + count].iter().collect();
            out.push(Bucket { service: b.service.clone(), regex: format!(".*[{class}]") });
        }
        start += count;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(service: &str, weight: i32) -> Backend {
        Backend::new(service, weight)
    }

    fn chars_of(bucket: &Bucket) -> usize {
        bucket.regex.trim_start_matches(".*[").trim_end_matches(']').chars().count()
    }

    #[test]
    fn characters_follow_the_weights_and_cover_the_alphabet_once() {
        // (weights, expected characters per backend with a rule)
        let table: &[(&[i32], &[usize])] = &[
            (&[100], &[62]),
            (&[50, 50], &[31, 31]),
            (&[80, 20], &[50, 12]),
            (&[100, 0], &[62]),
            (&[34, 33, 33], &[21, 21, 20]),
            (&[98, 1, 1], &[61, 1]),
        ];
        for (weights, want) in table {
            let backends: Vec<Backend> = weights.iter().enumerate().map(|(i, w)| b(&format!("s{i}"), *w)).collect();
            let got = buckets(&backends);
            let counts: Vec<usize> = got.iter().map(chars_of).collect();
            assert_eq!(&counts, want, "{weights:?}");
            let all: String = got.iter().map(|g| g.regex.trim_start_matches(".*[").trim_end_matches(']')).collect();
            assert_eq!(all, ALPHABET, "{weights:?}: every character exactly once, in order");
        }
        assert!(buckets(&[b("a", 0)]).is_empty());
    }
}
