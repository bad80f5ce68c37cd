//! The A/A simulation of the statistics spec (§9): does each decision method keep its false-positive
//! rate when the operator looks at the results again and again?
//!
//! Each simulated experiment has two arms with the same conversion rate (10 %), 20 equally spaced looks
//! and 500 new units per arm per look (10 000 per arm at the end), α = 0.05 two-sided. Every method sees
//! the same data (common random numbers) and decides through the functions of
//! `champion::analysis::stats`, as the controller will:
//!
//! - naive: the fixed-horizon z-test (unpooled) read at every look, stop at the first p < α: invalid,
//!   it shows what peeking does (about 25 % over 20 looks; the pooled textbook z-test is shown too);
//! - fixed horizon: the same test read once, at the last look (about 5 %);
//! - mSPRT: the always-valid p-value with τ² frozen at the first look from a tuning sample size of the
//!   planned 20 000 units (at most 5 %, about 1 % with discrete looks);
//! - group-sequential O'Brien–Fleming with the 20 looks planned (about 5 %).
//!
//! `ci_sized_a_a_run` (2 000 experiments) runs with the other tests and asserts the bounds;
//! `full_run` (20 000 experiments, and a power run with a true +12 % lift, 0.100 → 0.112) is ignored:
//! `hack/simulate-aa.sh` runs it in release mode. Its output is recorded in `docs/statistics.md`.

use std::time::Instant;

use champion::analysis::stats::{
    GroupSequentialDesign, LookBoundary, MsprtConfig, MsprtState, Proportion, Sides, absolute_difference,
    first_crossing, group_sequential_bounds, mixing_variance, msprt_look, pooled_two_proportion_z_test,
    two_proportion_z_test,
};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use statrs::distribution::{Binomial, DiscreteCDF};

const ALPHA: f64 = 0.05;
const LOOKS: usize = 20;
const UNITS_PER_LOOK: u64 = 500;
const BASE_RATE: f64 = 0.10;
const TREATED_RATE: f64 = 0.112;
/// The planned total (both arms at the last look): the mSPRT tuning sample size.
const PLANNED_TOTAL: f64 = (2 * LOOKS as u64 * UNITS_PER_LOOK) as f64;
const SEED: u64 = 20240601;

/// Draws Binomial(n, p) by inverting its CDF (computed once by statrs).
struct BinomialSampler {
    cdf: Vec<f64>,
}

impl BinomialSampler {
    fn new(n: u64, p: f64) -> Self {
        let binomial = Binomial::new(p, n).expect("a valid binomial");
        BinomialSampler { cdf: (0..=n).map(|k| binomial.cdf(k)).collect() }
    }

    fn sample(&self, rng: &mut Xoshiro256PlusPlus) -> f64 {
        let u: f64 = rng.random();
        let k = self.cdf.partition_point(|&c| c <= u).min(self.cdf.len() - 1);
        k as f64
    }
}

/// The methods compared, in the order they are reported.
#[derive(Clone, Copy)]
enum Method {
    Naive,
    NaivePooled,
    Fixed,
    Msprt,
    ObrienFleming,
}

const METHODS: [Method; 5] = [Method::Naive, Method::NaivePooled, Method::Fixed, Method::Msprt, Method::ObrienFleming];

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::Naive => "naive: unpooled z-test at every look, stop at first p<0.05",
            Method::NaivePooled => "naive: pooled z-test at every look (the reference's naive)",
            Method::Fixed => "fixed horizon: unpooled z-test at look 20 only",
            Method::Msprt => "mSPRT, N_tune = 20000, tau^2 frozen at look 1",
            Method::ObrienFleming => "GST Lan-DeMets O'Brien-Fleming, K=20 planned = taken",
        }
    }

    /// The figures of `aa-simulation.txt` (seed 20240601, numpy; mSPRT there re-derives τ² at every look).
    fn reference(self) -> (&'static str, &'static str) {
        match self {
            Method::Naive => ("", ""),
            Method::NaivePooled => ("24.98%", ""),
            Method::Fixed => ("4.98%", "78.7%"),
            Method::Msprt => ("1.10%", "47.2%"),
            Method::ObrienFleming => ("5.03%", "76.7%"),
        }
    }
}

/// The look (1-based) at which each method decided in one experiment, if any.
type Decisions = [Option<usize>; METHODS.len()];

/// One simulated experiment: cumulative counts of both arms at every look, then every method's decision.
fn experiment(
    rng: &mut Xoshiro256PlusPlus,
    control: &BinomialSampler,
    treatment: &BinomialSampler,
    bounds: &[LookBoundary],
) -> Decisions {
    let mut decisions: Decisions = [None; METHODS.len()];
    let (mut xa, mut xb) = (0.0, 0.0);
    let mut msprt: Option<(MsprtConfig, MsprtState)> = None;
    let mut z_values = Vec::with_capacity(LOOKS);
    for look in 1..=LOOKS {
        xa += control.sample(rng);
        xb += treatment.sample(rng);
        let n = (look as u64 * UNITS_PER_LOOK) as f64;
        let (a, b) = (Proportion::new(xa, n), Proportion::new(xb, n));
        // a look whose counts fail the normal-approximation guard decides nothing
        let Ok(test) = two_proportion_z_test(&a, &b, ALPHA) else {
            z_values.push(0.0);
            continue;
        };
        let significant = test.difference.p_value < ALPHA;
        if significant {
            decisions[0].get_or_insert(look);
        }
        if pooled_two_proportion_z_test(&a, &b).is_ok_and(|t| t.p_value < ALPHA) {
            decisions[1].get_or_insert(look);
        }
        if look == LOOKS && significant {
            decisions[2] = Some(look);
        }
        let difference = absolute_difference(&a.moments().unwrap(), &b.moments().unwrap()).unwrap();
        let (config, state) = msprt.get_or_insert_with(|| {
            let tau2 = mixing_variance(ALPHA, PLANNED_TOTAL, difference.per_unit_variance()).unwrap();
            (MsprtConfig::new(tau2, ALPHA).unwrap(), MsprtState::default())
        });
        *state = msprt_look(&difference, config, state).unwrap().state;
        if state.rejected() {
            decisions[3].get_or_insert(look);
        }
        z_values.push(test.difference.statistic);
    }
    decisions[4] = first_crossing(&z_values, bounds, Sides::TwoSided).unwrap().map(|c| c.look);
    decisions
}

/// What the runs of one scenario gave, per method.
struct Summary {
    experiments: usize,
    decisions: Vec<Vec<Option<usize>>>,
}

impl Summary {
    fn rate(&self, method: usize) -> f64 {
        self.decisions[method].iter().filter(|d| d.is_some()).count() as f64 / self.experiments as f64
    }

    fn standard_error(&self, method: usize) -> f64 {
        let p = self.rate(method);
        (p * (1.0 - p) / self.experiments as f64).sqrt()
    }

    /// The median units per arm at the decision, among the experiments that decided.
    fn median_units(&self, method: usize) -> Option<f64> {
        let mut units: Vec<u64> =
            self.decisions[method].iter().flatten().map(|&look| look as u64 * UNITS_PER_LOOK).collect();
        if units.is_empty() {
            return None;
        }
        units.sort_unstable();
        let mid = units.len() / 2;
        Some(if units.len() % 2 == 1 { units[mid] as f64 } else { (units[mid - 1] + units[mid]) as f64 / 2.0 })
    }

    /// The mean number of looks taken, an undecided experiment counting all of them (as the reference).
    fn mean_looks(&self, method: usize) -> f64 {
        let total: usize = self.decisions[method].iter().map(|d| d.unwrap_or(LOOKS)).sum();
        total as f64 / self.experiments as f64
    }
}

fn obf_bounds() -> Vec<LookBoundary> {
    let fractions: Vec<f64> = (1..=LOOKS).map(|k| k as f64 / LOOKS as f64).collect();
    group_sequential_bounds(&fractions, &GroupSequentialDesign::default()).unwrap()
}

fn simulate(experiments: usize, treated_rate: f64, seed: u64, bounds: &[LookBoundary]) -> Summary {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let control = BinomialSampler::new(UNITS_PER_LOOK, BASE_RATE);
    let treatment = BinomialSampler::new(UNITS_PER_LOOK, treated_rate);
    let mut decisions = vec![Vec::with_capacity(experiments); METHODS.len()];
    for _ in 0..experiments {
        for (method, decided) in experiment(&mut rng, &control, &treatment, bounds).into_iter().enumerate() {
            decisions[method].push(decided);
        }
    }
    Summary { experiments, decisions }
}

fn print_false_positives(summary: &Summary) {
    for (i, method) in METHODS.iter().enumerate() {
        let (reference, _) = method.reference();
        println!(
            "  {:<62} FPR = {:5.2}%  (MC s.e. {:.2} pp)  reference {reference}",
            method.label(),
            100.0 * summary.rate(i),
            100.0 * summary.standard_error(i),
        );
    }
}

#[test]
fn ci_sized_a_a_run() {
    let started = Instant::now();
    let experiments = 2_000;
    let bounds = obf_bounds();
    let summary = simulate(experiments, BASE_RATE, SEED, &bounds);
    println!("A/A, {experiments} experiments, {LOOKS} looks of {UNITS_PER_LOOK} units/arm, alpha {ALPHA}:");
    print_false_positives(&summary);
    println!("  elapsed {:.1} s", started.elapsed().as_secs_f64());

    // Every valid method stays within alpha plus three Monte Carlo standard errors of alpha.
    let limit = ALPHA + 3.0 * (ALPHA * (1.0 - ALPHA) / experiments as f64).sqrt();
    for (i, method) in METHODS.iter().enumerate() {
        if matches!(method, Method::Fixed | Method::Msprt | Method::ObrienFleming) {
            assert!(summary.rate(i) <= limit, "{}: FPR {} above {limit}", method.label(), summary.rate(i));
        }
    }
    // Peeking at the fixed-horizon test is clearly inflated (expected about 25 %).
    for i in [0, 1] {
        assert!(summary.rate(i) >= 0.15, "{}: FPR {} is not inflated", METHODS[i].label(), summary.rate(i));
    }
}

#[test]
#[ignore = "20 000 experiments: run with hack/simulate-aa.sh (release mode)"]
fn full_run() {
    let started = Instant::now();
    let experiments = 20_000;
    let bounds = obf_bounds();
    println!(
        "O'Brien-Fleming bounds K={LOOKS}: first {:.3}, look 10 {:.3}, last {:.3}",
        bounds[0].z_bound,
        bounds[9].z_bound,
        bounds[LOOKS - 1].z_bound
    );

    println!(
        "\n[1] A/A: p={BASE_RATE}, K={LOOKS} looks, {UNITS_PER_LOOK} units/arm/look (n/arm at end = {}), \
         {experiments} experiments, alpha={ALPHA} two-sided, seed {SEED}",
        LOOKS as u64 * UNITS_PER_LOOK
    );
    let null = simulate(experiments, BASE_RATE, SEED, &bounds);
    print_false_positives(&null);

    println!(
        "\n[2] Power: p_A={BASE_RATE}, p_B={TREATED_RATE} (+12% rel.), same design, {experiments} experiments, \
         seed {}",
        SEED + 1
    );
    let power = simulate(experiments, TREATED_RATE, SEED + 1, &bounds);
    for (i, method) in METHODS.iter().enumerate() {
        let (_, reference) = method.reference();
        let median = power.median_units(i).map_or("-".to_string(), |m| format!("{m:.0}"));
        println!(
            "  {:<62} power = {:5.1}%  median units/arm at decision = {median:>6}  mean looks = {:5.2}  \
             reference {reference}",
            method.label(),
            100.0 * power.rate(i),
            power.mean_looks(i),
        );
    }
    println!("\nelapsed {:.1} s", started.elapsed().as_secs_f64());
}
