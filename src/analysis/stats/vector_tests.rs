//! Every number of the spec's test vectors (`tests/fixtures/statistics/vectors.json`) against the
//! functions of this module. Each vector is read through [`Vector`], which records the fields compared;
//! a vector with a number or flag left unchecked fails, and so does a vector in the file that no table
//! below names.

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::*;
use crate::api::experiment::Goal;

const VECTORS: &str = include_str!("../../../tests/fixtures/statistics/vectors.json");

/// The spec's tolerance.
const RTOL: f64 = 1e-6;
/// The spec's tolerance for the numerically integrated group-sequential boundaries.
const RTOL_GST: f64 = 1e-5;

fn all_vectors() -> Map<String, Value> {
    serde_json::from_str(VECTORS).expect("vectors.json is a JSON object")
}

/// Whether `actual` matches a vector's `expected`: within `rtol` relative, or within half a unit of the
/// last digit the generator kept (it rounds to 6 decimals, or 6 significant digits below 1e-3).
fn matches(actual: f64, expected: f64, rtol: f64) -> bool {
    let magnitude = expected.abs();
    let unit = if magnitude >= 1e-3 || magnitude == 0.0 { 1e-6 } else { 10f64.powf(magnitude.log10().floor() - 5.0) };
    let allowed = (rtol * magnitude).max(0.5 * unit * (1.0 + 1e-9));
    actual.is_finite() && (actual - expected).abs() <= allowed
}

/// Whether a field holds something a test must look at (a number, a flag, a list, or an object with one).
fn must_be_checked(value: &Value) -> bool {
    match value {
        Value::Number(_) | Value::Bool(_) => true,
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => fields.values().any(must_be_checked),
        Value::String(_) | Value::Null => false,
    }
}

/// One vector, with the fields read so far and the mismatches found.
struct Vector {
    name: String,
    fields: Map<String, Value>,
    rtol: f64,
    used: RefCell<BTreeSet<String>>,
    failures: RefCell<Vec<String>>,
}

impl Vector {
    fn new(all: &Map<String, Value>, name: &str) -> Vector {
        let fields = all
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("no vector {name} in vectors.json"))
            .clone();
        Vector::from_fields(name.to_string(), fields)
    }

    fn from_fields(name: String, fields: Map<String, Value>) -> Vector {
        Vector { name, fields, rtol: RTOL, used: RefCell::default(), failures: RefCell::default() }
    }

    fn with_rtol(mut self, rtol: f64) -> Vector {
        self.rtol = rtol;
        self
    }

    fn field(&self, field: &str) -> &Value {
        self.used.borrow_mut().insert(field.to_string());
        self.fields.get(field).unwrap_or_else(|| panic!("{}: no field {field}", self.name))
    }

    fn number(&self, field: &str) -> f64 {
        self.field(field).as_f64().unwrap_or_else(|| panic!("{}.{field} is not a number", self.name))
    }

    fn numbers(&self, field: &str) -> Vec<f64> {
        let items = self.field(field).as_array().unwrap_or_else(|| panic!("{}.{field} is not a list", self.name));
        items
            .iter()
            .map(|v| v.as_f64().unwrap_or_else(|| panic!("{}.{field}: {v} is not a number", self.name)))
            .collect()
    }

    fn fail(&self, message: String) {
        self.failures.borrow_mut().push(message);
    }

    /// Compares a number.
    fn check(&self, field: &str, actual: f64) {
        let expected = self.number(field);
        if !matches(actual, expected, self.rtol) {
            self.fail(format!("{field}: got {actual}, want {expected}"));
        }
    }

    /// Compares a list of numbers.
    fn check_all(&self, field: &str, actual: &[f64]) {
        let expected = self.numbers(field);
        if expected.len() != actual.len() || !actual.iter().zip(&expected).all(|(a, e)| matches(*a, *e, self.rtol)) {
            self.fail(format!("{field}: got {actual:?}, want {expected:?}"));
        }
    }

    /// Compares an interval with a `[lower, upper]` list.
    fn check_interval(&self, field: &str, actual: Interval) {
        self.check_all(field, &[actual.lower, actual.upper]);
    }

    /// Compares a list of flags, or one flag.
    fn flags(&self, field: &str, actual: &[bool]) {
        let expected: Vec<bool> = match self.field(field) {
            Value::Bool(b) => vec![*b],
            Value::Array(items) => items.iter().map(|v| v.as_bool().expect("a flag")).collect(),
            other => panic!("{}.{field}: {other} is not a flag", self.name),
        };
        if expected != actual {
            self.fail(format!("{field}: got {actual:?}, want {expected:?}"));
        }
    }

    /// The vectors in a list field (TV9's looks); each must be finished on its own.
    fn nested(&self, field: &str) -> Vec<Vector> {
        let items = self.field(field).as_array().unwrap_or_else(|| panic!("{}.{field} is not a list", self.name));
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let fields = item.as_object().expect("a nested vector is an object").clone();
                Vector::from_fields(format!("{}.{field}[{i}]", self.name), fields)
            })
            .collect()
    }

    /// Fails unless every number and flag was compared (or read as an input) and all of them matched.
    fn finish(self) {
        let used = self.used.borrow();
        let unchecked: Vec<&String> =
            self.fields.iter().filter(|(k, v)| must_be_checked(v) && !used.contains(*k)).map(|(k, _)| k).collect();
        let failures = self.failures.borrow();
        assert!(unchecked.is_empty(), "{}: fields not checked: {unchecked:?}", self.name);
        assert!(failures.is_empty(), "{}:\n  {}", self.name, failures.join("\n  "));
    }
}

/// Runs `check` on each named vector and finishes it.
fn each(names: &[&str], rtol: f64, check: impl Fn(&str, &Vector)) {
    let all = all_vectors();
    for name in names {
        let v = Vector::new(&all, name).with_rtol(rtol);
        check(name, &v);
        v.finish();
    }
}

fn proportion(successes: f64, trials: f64) -> Proportion {
    Proportion::new(successes, trials)
}

// ------------------------------------------------------------------------------------------ proportions

const PROPORTIONS: &[&str] = &["TV1_prop_10pct_vs_12.5pct", "TV2_prop_10pct_vs_11pct_n10k", "TV3_prop_unequal_n"];

fn proportion_inputs(name: &str) -> (Proportion, Proportion) {
    match name {
        "TV1_prop_10pct_vs_12.5pct" => (proportion(200.0, 2000.0), proportion(250.0, 2000.0)),
        "TV2_prop_10pct_vs_11pct_n10k" => (proportion(1000.0, 10000.0), proportion(1100.0, 10000.0)),
        "TV3_prop_unequal_n" => (proportion(480.0, 5000.0), proportion(560.0, 5200.0)),
        _ => unreachable!("{name}"),
    }
}

#[test]
fn two_proportion_vectors() {
    each(PROPORTIONS, RTOL, |name, v| {
        let (a, b) = proportion_inputs(name);
        let r = two_proportion_z_test(&a, &b, 0.05).unwrap();
        let pooled = pooled_two_proportion_z_test(&a, &b).unwrap();
        v.check("diff", r.difference.estimate);
        v.check("z_pooled", pooled.statistic);
        v.check("p_pooled", pooled.p_value);
        v.check("z_unpooled", r.difference.statistic);
        v.check("p_unpooled", r.difference.p_value);
        v.check_interval("ci95_diff_wald", r.difference.interval);
        let lift = r.lift.unwrap();
        v.check("lift", lift.estimate);
        v.check("se_lift_delta", lift.standard_error);
        v.check_interval("ci95_lift_delta", lift.interval);
        let log_ratio = log_ratio_lift_interval(&a.moments().unwrap(), &b.moments().unwrap(), 0.05).unwrap();
        v.check_interval("ci95_lift_logratio", log_ratio);
    });
}

// ------------------------------------------------------------------------------------------ Welch

const WELCH_SUMMARIES: &[&str] = &["TV4_welch_growthbook_abs", "TV5_welch_growthbook_relative", "TV7b_welch_textbook"];

fn from_sd(mean: f64, sd: f64, count: f64) -> Moments {
    Moments::from_mean_sd(mean, sd, count).unwrap()
}

#[test]
fn welch_vectors_from_summaries() {
    each(WELCH_SUMMARIES, RTOL, |name, v| {
        let (a, b) = match name {
            "TV7b_welch_textbook" => (from_sd(95.0, 20.0, 20.0), from_sd(100.0, 15.0, 20.0)),
            _ => (from_sd(0.41, 3.9, 3407.0), from_sd(0.70, 6.2, 3461.0)),
        };
        let r = welch_t_test_moments(&a, &b, 0.05).unwrap();
        if name == "TV5_welch_growthbook_relative" {
            let lift = r.lift.unwrap();
            v.check("lift", lift.estimate);
            v.check("se_lift", lift.standard_error);
            v.check("p_lift", lift.p_value);
            v.check_interval("ci95_lift", lift.interval);
            return;
        }
        if name == "TV4_welch_growthbook_abs" {
            v.check("diff", r.difference.estimate);
        }
        let d = r.difference;
        v.check("se", d.standard_error);
        v.check("t", d.statistic);
        v.check("df", d.degrees_of_freedom.unwrap());
        v.check("p", d.p_value);
        v.check_interval("ci95", d.interval);
    });
}

const WELCH_COUNTERS: &[&str] = &["TV6_welch_from_counters", "TV7_welch_small_sample"];

/// The raw data of TV7 (Wikipedia, "Welch's t-test", example 1).
const TV7_A1: [f64; 15] = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4];
const TV7_A2: [f64; 15] = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4];

fn counters(values: &[f64]) -> Mean {
    Mean::new(values.iter().sum(), values.iter().map(|x| x * x).sum(), values.len() as f64)
}

#[test]
fn welch_vectors_from_counters() {
    each(WELCH_COUNTERS, RTOL, |name, v| {
        let (a, b) = if name == "TV7_welch_small_sample" {
            let (a, b) = (counters(&TV7_A1), counters(&TV7_A2));
            v.check("sum_a", a.sum);
            v.check("sumsq_a", a.sum_sq);
            v.check("sum_b", b.sum);
            v.check("sumsq_b", b.sum_sq);
            (a, b)
        } else {
            (Mean::new(1396.87, 52377.9767, 3000.0), Mean::new(2422.7, 134698.29, 3461.0))
        };
        let r = welch_t_test(&a, &b, 0.05).unwrap();
        if name == "TV6_welch_from_counters" {
            let (ma, mb) = (a.moments().unwrap(), b.moments().unwrap());
            v.check("mean_a", ma.mean);
            v.check("var_a", ma.variance);
            v.check("mean_b", mb.mean);
            v.check("var_b", mb.variance);
            v.check("se", r.difference.standard_error);
            let lift = r.lift.unwrap();
            v.check("lift", lift.estimate);
            v.check_interval("ci95_lift", lift.interval);
        }
        let d = r.difference;
        v.check("diff", d.estimate);
        v.check("t", d.statistic);
        v.check("df", d.degrees_of_freedom.unwrap());
        v.check("p", d.p_value);
        v.check_interval("ci95", d.interval);
    });
}

// ------------------------------------------------------------------------------------------ mSPRT

const MSPRT_FIXED_TAU: &[&str] = &["TV8_msprt_tau_0.01", "TV8_msprt_tau_0.05"];

#[test]
fn msprt_vectors_with_a_fixed_tau() {
    each(MSPRT_FIXED_TAU, RTOL, |name, v| {
        let tau: f64 = if name.ends_with("0.01") { 0.01 } else { 0.05 };
        let (a, b) = (proportion(1000.0, 10000.0), proportion(1100.0, 10000.0));
        let d = absolute_difference(&a.moments().unwrap(), &b.moments().unwrap()).unwrap();
        let config = MsprtConfig::new(tau * tau, 0.05).unwrap();
        let look = msprt_look(&d, &config, &MsprtState::default()).unwrap();
        v.check("theta_hat", d.estimate);
        v.check("V", d.variance);
        v.check("z", d.z());
        v.check("log_Lambda", look.log_likelihood_ratio);
        v.check("Lambda", look.log_likelihood_ratio.exp());
        v.check("always_valid_p", look.state.p_value);
        v.check("cs95_halfwidth", confidence_sequence_half_width(d.variance, tau * tau, 0.05).unwrap());
        v.check_interval("cs95", look.state.confidence_sequence.unwrap());
        let fixed = two_proportion_z_test(&a, &b, 0.05).unwrap().difference.interval;
        v.check("fixed_horizon_ci95_halfwidth", (fixed.upper - fixed.lower) / 2.0);
    });
}

#[test]
fn msprt_vector_of_a_running_minimum() {
    each(&["TV9_msprt_running_min"], RTOL, |_, v| {
        let tau = v.number("tau");
        let config = MsprtConfig::new(tau * tau, 0.05).unwrap();
        let inputs = [
            (50.0, 500.0, 62.0, 500.0),
            (100.0, 1000.0, 150.0, 1000.0),
            (210.0, 2000.0, 262.0, 2000.0),
            (320.0, 3000.0, 350.0, 3000.0),
        ];
        let looks = v.nested("looks");
        assert_eq!(looks.len(), inputs.len());
        let mut state = MsprtState::default();
        for (look_vector, (xa, na, xb, nb)) in looks.into_iter().zip(inputs) {
            let d = absolute_difference(&proportion(xa, na).moments().unwrap(), &proportion(xb, nb).moments().unwrap())
                .unwrap();
            let look = msprt_look(&d, &config, &state).unwrap();
            state = look.state;
            look_vector.check("theta_hat", d.estimate);
            look_vector.check("V", d.variance);
            look_vector.check("Lambda", look.log_likelihood_ratio.exp());
            look_vector.check("p_instant", look.instant_p_value);
            look_vector.check("p_always_valid", state.p_value);
            look_vector.finish();
        }
        // rejected at look 2, and it sticks although Λ falls below 1 by look 4
        assert_eq!(state.rejected_at_look, Some(2));
    });
}

const MSPRT_TUNED: &[&str] = &["TV10_gb_seq_prop", "TV11_gb_seq_mean_counters"];

#[test]
fn msprt_vectors_with_a_tuning_sample_size() {
    each(MSPRT_TUNED, RTOL, |name, v| {
        let (a, b, n_tune) = if name == "TV10_gb_seq_prop" {
            (proportion(1000.0, 10000.0).moments().unwrap(), proportion(1100.0, 10000.0).moments().unwrap(), 5000.0)
        } else {
            (
                Mean::new(1396.87, 52377.9767, 3000.0).moments().unwrap(),
                Mean::new(2422.7, 134698.29, 3461.0).moments().unwrap(),
                1000.0,
            )
        };
        let d = absolute_difference(&a, &b).unwrap();
        let tau2 = mixing_variance(0.05, n_tune, d.per_unit_variance()).unwrap();
        let look = msprt_look(&d, &MsprtConfig::new(tau2, 0.05).unwrap(), &MsprtState::default()).unwrap();
        let cs = look.state.confidence_sequence.unwrap();
        v.check("theta_hat", d.estimate);
        v.check("V", d.variance);
        v.check("N_total", d.total_units);
        v.check("rho2", tuning_rho_squared(0.05, n_tune).unwrap());
        v.check("tau2_abs", tau2);
        v.check("Lambda", look.log_likelihood_ratio.exp());
        v.check("always_valid_p", look.state.p_value);
        v.check("gbstats_0.8.0_p", look.state.p_value);
        v.check_interval("cs95", cs);
        v.check_interval("gbstats_0.8.0_ci", cs);
    });
}

/// The squared half-width of the confidence sequence in units of V, as a function of `x = N·ρ²`.
fn squared_width(x: f64) -> f64 {
    confidence_sequence_half_width(1.0, x, 0.05).unwrap().powi(2)
}

/// The minimum of a unimodal `f` on `[lo, hi]` by golden-section search.
fn argmin(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    while hi - lo > 1e-10 {
        let (c, d) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if f(c) < f(d) {
            hi = d;
        } else {
            lo = c;
        }
    }
    0.5 * (lo + hi)
}

#[test]
fn msprt_vector_of_the_tuning_choice() {
    each(&["rho_check"], RTOL, |_, v| {
        let exact = argmin(squared_width, 1e-3, 1e3);
        let growthbook = tuning_rho_squared(0.05, 1.0).unwrap();
        v.check("exact_argmin_N_rho2", exact);
        v.check("gb_eq161_N_rho2", growthbook);
        v.check("width_ratio_gb_vs_exact", (squared_width(growthbook) / squared_width(exact)).sqrt());
        // the generator divided by 1.959964, z_{0.975} rounded
        v.check("cs_over_ci_width_at_N", squared_width(exact).sqrt() / 1.959964);
    });
}

// ------------------------------------------------------------------------------------------ group sequential

const GROUP_SEQUENTIAL: &[&str] =
    &["TV12_gst_obf_K5_two_sided", "TV13_gst_obf_one_sided_K4", "TV14_gst_obf_unequal_looks"];

fn z_bounds(bounds: &[LookBoundary]) -> Vec<f64> {
    bounds.iter().map(|b| b.z_bound).collect()
}

#[test]
fn group_sequential_vectors() {
    each(GROUP_SEQUENTIAL, RTOL_GST, |name, v| {
        let two_sided = GroupSequentialDesign::default();
        let (fractions, design): (&[f64], _) = match name {
            "TV12_gst_obf_K5_two_sided" => (&[0.2, 0.4, 0.6, 0.8, 1.0], two_sided),
            "TV13_gst_obf_one_sided_K4" => {
                (&[0.25, 0.5, 0.75, 1.0], GroupSequentialDesign { sides: Sides::OneSided, ..two_sided })
            }
            _ => (&[0.1, 0.35, 0.6, 1.0], two_sided),
        };
        let bounds = group_sequential_bounds(fractions, &design).unwrap();
        v.check_all("z_bounds", &z_bounds(&bounds));
        let cumulative: Vec<f64> = bounds.iter().map(|b| b.cumulative_alpha).collect();
        match name {
            "TV12_gst_obf_K5_two_sided" => {
                v.check_all("cum_alpha_per_side", &cumulative);
                v.check_all(
                    "nominal_two_sided_p_at_bound",
                    &bounds.iter().map(|b| b.nominal_alpha).collect::<Vec<_>>(),
                );
                let bonferroni = bonferroni_spending_bounds(fractions, &design).unwrap();
                v.check_all("bonferroni_spending_closed_form_bounds", &z_bounds(&bonferroni));
            }
            "TV13_gst_obf_one_sided_K4" => v.check_all("cum_alpha", &cumulative),
            _ => {}
        }
        if v.fields.contains_key("first_look_closed_form") {
            // the first look needs no integration: hold it to the tighter tolerance
            let first = bounds[0].z_bound;
            let expected = v.number("first_look_closed_form");
            assert!(matches(first, expected, RTOL), "{name}: first look {first}, want {expected}");
        }
    });
}

#[test]
fn group_sequential_vector_of_first_looks() {
    each(&["TV23_first_look"], RTOL, |_, v| {
        let untruncated = GroupSequentialDesign { z_truncation: 12.0, ..GroupSequentialDesign::default() };
        for t in ["0.05", "0.1", "0.2", "0.25", "0.5", "1.0"] {
            let fraction: f64 = t.parse().unwrap();
            let bound = group_sequential_bounds(&[fraction], &untruncated).unwrap()[0].z_bound;
            v.check(t, bound);
            let bonferroni = bonferroni_spending_bounds(&[fraction], &untruncated).unwrap()[0].z_bound;
            assert_eq!(bonferroni, bound, "t = {t}: one look has one closed form");
        }
        // with the default truncation at 8, t = 0.05 (9.955) is cut to 8
        let truncated = group_sequential_bounds(&[0.05], &GroupSequentialDesign::default()).unwrap();
        assert_eq!(truncated[0].z_bound, 8.0);
    });
}

// ------------------------------------------------------------------------------------------ SRM

const SAMPLE_RATIO: &[&str] =
    &["TV15_srm_600_400", "TV16_srm_44000_45000", "TV17_srm_3arm", "TV18_srm_50500_49500", "TV19_srm_lukasvermeer"];

#[test]
fn sample_ratio_vectors() {
    each(SAMPLE_RATIO, RTOL, |_, v| {
        let r = sample_ratio_mismatch(&v.numbers("counts"), &v.numbers("weights"), DEFAULT_SRM_THRESHOLD).unwrap();
        v.check("chi2", r.chi_square);
        v.check("df", r.degrees_of_freedom);
        v.check("p", r.p_value);
        v.flags("srm_at_0.001", &[r.mismatch]);
    });
}

// ------------------------------------------------------------------------------------------ multiple comparisons

const MULTIPLE: &[&str] = &["TV20_bonferroni", "TV20_holm"];

#[test]
fn multiple_comparison_vectors() {
    each(MULTIPLE, RTOL, |name, v| {
        let p = v.numbers("p");
        let adjusted = if name == "TV20_holm" { holm(&p) } else { bonferroni(&p) }.unwrap();
        v.check_all("adjusted", &adjusted);
        v.flags("reject_at_0.05", &adjusted.iter().map(|&p| p <= 0.05).collect::<Vec<_>>());
    });
}

// ------------------------------------------------------------------------------------------ guardrail, sample size

#[test]
fn guardrail_vector() {
    each(&["TV21_guardrail_latency"], RTOL, |_, v| {
        let (a, b) = (from_sd(120.0, 40.0, 5000.0), from_sd(121.5, 42.0, 5000.0));
        let r = relative_non_inferiority(&a, &b, 0.02, Goal::Minimize, 0.05).unwrap();
        v.check("lift", r.lift);
        v.check("se_lift", r.standard_error);
        v.check("df", r.degrees_of_freedom);
        v.check("upper_one_sided_95", r.bound);
        v.check("p_noninferiority", r.p_value);
        v.flags("non_inferior", &[r.non_inferior]);
        v.check("p_harm_one_sided", r.harm_p_value);
        v.flags("significant_harm", &[r.harm_p_value < 0.05]);
    });
}

#[test]
fn sample_size_vector() {
    each(&["TV22_sample_size"], RTOL, |_, v| {
        let n = planned_sample_size_proportions(0.10, 0.112, 0.05, 0.80).unwrap();
        v.check("n_per_arm_unrounded", n);
        v.check("n_per_arm", n.ceil());
    });
}

// ------------------------------------------------------------------------------------------ coverage

#[test]
fn every_vector_in_the_file_has_a_test() {
    let tested: BTreeSet<&str> = [
        PROPORTIONS,
        WELCH_SUMMARIES,
        WELCH_COUNTERS,
        MSPRT_FIXED_TAU,
        &["TV9_msprt_running_min"],
        MSPRT_TUNED,
        &["rho_check"],
        GROUP_SEQUENTIAL,
        &["TV23_first_look"],
        SAMPLE_RATIO,
        MULTIPLE,
        &["TV21_guardrail_latency"],
        &["TV22_sample_size"],
    ]
    .concat()
    .into_iter()
    .collect();
    let in_file: BTreeSet<String> = all_vectors().keys().cloned().collect();
    let in_file: BTreeSet<&str> = in_file.iter().map(String::as_str).collect();
    assert_eq!(tested, in_file);
    assert_eq!(in_file.len(), 27);
}

#[test]
fn the_matching_rule() {
    // within rounding of a 6-decimal value
    assert!(matches(0.0122834, 0.012283, RTOL));
    assert!(!matches(0.0122836, 0.012283, RTOL));
    // 6 significant digits below 1e-3
    assert!(matches(5.388714e-7, 5.38871e-07, RTOL));
    assert!(!matches(5.38872e-7, 5.38871e-07, RTOL));
    // relative tolerance for large values
    assert!(matches(10326.5194, 10326.509437, RTOL));
    assert!(!matches(10326.53, 10326.509437, RTOL));
    assert!(!matches(f64::NAN, 1.0, RTOL));
}
