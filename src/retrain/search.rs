//! The trials of a run: one trial without a search; with one, the parameter sets of a grid or of a random
//! search. Random proposals come from a generator seeded by the policy and run id, so a run is
//! reproducible and an operator restart proposes exactly the same trials.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::api::retrain_policy::{Parameter, ParameterValue, Scale, Search, SearchAlgorithm};

/// One trial's parameters, passed to its Job as `CHAMPION_PARAMS`.
pub type Params = BTreeMap<String, ParameterValue>;

/// The parameter sets of a run, in trial order: `[{}]` without a search, at most `maxTrials` with one.
pub fn propose(search: Option<&Search>, seed: &str) -> Vec<Params> {
    let Some(search) = search else { return vec![Params::new()] };
    let max = search.max_trials.max(1) as usize;
    match search.algorithm {
        SearchAlgorithm::Grid => grid(&search.parameters, max),
        SearchAlgorithm::Random => {
            let mut rng = SplitMix64::from_seed(seed);
            (0..max)
                .map(|_| search.parameters.iter().map(|(k, p)| (k.clone(), sample(p, &mut rng))).collect())
                .collect()
        }
    }
}

/// The points of a range on a grid of `k` points (both ends included), or a parameter's values.
fn points(p: &Parameter, k: usize) -> Vec<ParameterValue> {
    if let Some(values) = &p.values {
        return values.clone();
    }
    let (lo, hi) = (p.min.unwrap_or(0.0), p.max.unwrap_or(0.0));
    let k = k.max(2);
    (0..k)
        .map(|i| {
            let t = i as f64 / (k - 1) as f64;
            number(match p.scale.unwrap_or_default() {
                Scale::Linear => lo + t * (hi - lo),
                Scale::Log => (lo.ln() + t * (hi.ln() - lo.ln())).exp(),
            })
        })
        .collect()
}

/// Every combination of the parameters' points, in lexicographic order of the parameter names, cut at
/// `max`. A range gets as many points as keep the grid within `max` (at least 2): with `maxTrials: 12`,
/// one list of 3 values and one range, the range gets 4 points.
fn grid(parameters: &BTreeMap<String, Parameter>, max: usize) -> Vec<Params> {
    let listed: usize = parameters.values().filter_map(|p| p.values.as_ref().map(Vec::len)).product();
    let ranges = parameters.values().filter(|p| p.values.is_none()).count();
    let per_range = if ranges == 0 {
        0
    } else {
        let room = (max as f64 / listed.max(1) as f64).max(1.0);
        (room.powf(1.0 / ranges as f64).floor() as usize).max(2)
    };
    let axes: Vec<(&String, Vec<ParameterValue>)> = parameters.iter().map(|(k, p)| (k, points(p, per_range))).collect();
    let mut out = vec![Params::new()];
    for (name, values) in &axes {
        out = out
            .iter()
            .flat_map(|base| {
                values.iter().map(move |v| {
                    let mut next = base.clone();
                    next.insert((*name).clone(), v.clone());
                    next
                })
            })
            .collect();
    }
    out.truncate(max);
    out
}

fn sample(p: &Parameter, rng: &mut SplitMix64) -> ParameterValue {
    if let Some(values) = &p.values {
        let i = (rng.next_f64() * values.len() as f64) as usize;
        return values[i.min(values.len() - 1)].clone();
    }
    let (lo, hi) = (p.min.unwrap_or(0.0), p.max.unwrap_or(0.0));
    let u = rng.next_f64();
    number(match p.scale.unwrap_or_default() {
        Scale::Linear => lo + u * (hi - lo),
        Scale::Log => (lo.ln() + u * (hi.ln() - lo.ln())).exp(),
    })
}

/// A number rounded to 6 significant digits, so that status and Job environments stay readable.
fn number(x: f64) -> ParameterValue {
    let rounded = if x == 0.0 || !x.is_finite() {
        x
    } else {
        let digits = 6 - x.abs().log10().ceil() as i32;
        let f = 10f64.powi(digits);
        (x * f).round() / f
    };
    ParameterValue(serde_json::Number::from_f64(rounded).map(serde_json::Value::Number).unwrap_or_default())
}

/// SplitMix64 (Steele, Lea and Flood, 2014): small, fast, and good enough to spread trials over a space.
struct SplitMix64(u64);

impl SplitMix64 {
    fn from_seed(seed: &str) -> Self {
        let digest = Sha256::digest(seed.as_bytes());
        Self(u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8])))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(min: f64, max: f64, scale: Option<Scale>) -> Parameter {
        Parameter { min: Some(min), max: Some(max), scale, values: None }
    }

    fn values(v: &[serde_json::Value]) -> Parameter {
        Parameter { values: Some(v.iter().cloned().map(ParameterValue).collect()), ..Parameter::default() }
    }

    fn search(algorithm: SearchAlgorithm, max_trials: i32, params: Vec<(&str, Parameter)>) -> Search {
        Search {
            algorithm,
            parameters: params.into_iter().map(|(k, p)| (k.to_string(), p)).collect(),
            max_trials,
            ..Search::default()
        }
    }

    fn num(p: &Params, k: &str) -> f64 {
        p[k].0.as_f64().unwrap()
    }

    #[test]
    fn without_a_search_one_trial_without_parameters() {
        assert_eq!(propose(None, "x"), vec![Params::new()]);
    }

    #[test]
    fn random_proposals_are_reproducible_and_inside_the_space() {
        let s = search(
            SearchAlgorithm::Random,
            8,
            vec![("learning_rate", range(1e-4, 0.1, Some(Scale::Log))), ("max_depth", values(&[json!(4), json!(6)]))],
        );
        let a = propose(Some(&s), "ns/p/r-0001");
        assert_eq!(a.len(), 8);
        assert_eq!(a, propose(Some(&s), "ns/p/r-0001"), "same seed, same trials");
        assert_ne!(a, propose(Some(&s), "ns/p/r-0002"), "another run, other trials");
        for p in &a {
            let lr = num(p, "learning_rate");
            assert!((1e-4..=0.1).contains(&lr), "{lr}");
            assert!([4.0, 6.0].contains(&num(p, "max_depth")));
        }
        // A log scale spreads over the decades: some trial below 1e-3, some above 1e-2.
        assert!(a.iter().any(|p| num(p, "learning_rate") < 1e-3) && a.iter().any(|p| num(p, "learning_rate") > 1e-2));
    }

    #[test]
    fn grids() {
        // (parameters, maxTrials, expected count, first, last)
        let s = search(
            SearchAlgorithm::Grid,
            12,
            vec![("a", values(&[json!("x"), json!("y"), json!("z")])), ("b", range(0.0, 1.0, None))],
        );
        let g = propose(Some(&s), "seed");
        assert_eq!(g.len(), 12, "3 values x 4 points");
        assert_eq!(g[0]["a"].0, json!("x"));
        assert_eq!(num(&g[0], "b"), 0.0);
        assert_eq!(num(&g[3], "b"), 1.0);
        assert_eq!(g[4]["a"].0, json!("y"));

        let log = search(SearchAlgorithm::Grid, 3, vec![("lr", range(0.001, 0.1, Some(Scale::Log)))]);
        let g = propose(Some(&log), "seed");
        assert_eq!(g.iter().map(|p| num(p, "lr")).collect::<Vec<_>>(), vec![0.001, 0.01, 0.1]);

        let cut = search(
            SearchAlgorithm::Grid,
            4,
            vec![("a", values(&[json!(1), json!(2), json!(3)])), ("b", values(&[json!(1), json!(2)]))],
        );
        assert_eq!(propose(Some(&cut), "seed").len(), 4, "a grid larger than maxTrials is cut");
    }
}
