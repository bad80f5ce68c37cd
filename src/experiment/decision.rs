//! What one evaluation of a running Experiment decides from its numbers (SPEC §7's order): (0) validity of
//! the data and the sample ratio, (1) minimum samples per variant and minimum duration, (2) guardrails,
//! (3) the objective — sequential (mSPRT, always-valid, the running state kept per variant) or fixed
//! horizon (one look, at `maxDuration`) — with Bonferroni over the variants. Pure; the numbers come from
//! `experiment::counters`, the statistics from `analysis::stats`.

use std::time::Duration;

use crate::analysis::stats::{
    self, Interval, Mean, Moments, MsprtConfig, MsprtState, Proportion, StatsError, absolute_difference,
};
use crate::analysis::stats::{GroupSequentialDesign, Look};
use crate::api::experiment::{
    DecisionMethod, ExperimentMode, ExperimentSpec, Goal, GroupSequentialLook, NonInferiorityResult, ObjectiveType,
    VariantResult,
};
use crate::experiment::non_inferiority;

/// The arm name of the ModelDeployment's stable version.
pub const CONTROL: &str = "control";
/// Default `decision.minSamplesPerVariant`.
pub const DEFAULT_MIN_SAMPLES: i64 = 1000;
/// Default `decision.tuningSampleSize`.
pub const DEFAULT_TUNING_SAMPLE_SIZE: i64 = 5000;
/// Default `decision.evaluationInterval`.
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
/// The sample ratio mismatch threshold (p below it is a mismatch).
pub const SRM_THRESHOLD: f64 = stats::DEFAULT_SRM_THRESHOLD;
/// Units each arm needs before the sample ratio is checked.
pub const SRM_MIN_UNITS: f64 = 100.0;
/// Consecutive mismatches that stop the experiment (one alone is too easily a peeking artefact).
pub const SRM_STRIKES: i32 = 3;
/// The most looks a group-sequential design keeps (SPEC §11 caps at 200; the boundaries of every look are
/// integrated again at each evaluation, so this version keeps fewer).
pub const GROUP_SEQUENTIAL_MAX_LOOKS: usize = 50;

/// One arm's numbers since the start: `(successes, trials)` or `(sum, count, sum of squares)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Numbers {
    /// A proportion objective.
    Proportion {
        /// Successes.
        successes: f64,
        /// Trials.
        trials: f64,
    },
    /// A mean objective.
    Mean {
        /// The sum of values.
        sum: f64,
        /// Their count.
        count: f64,
        /// The sum of their squares.
        sum_of_squares: f64,
    },
}

impl Numbers {
    /// Units seen.
    pub fn samples(&self) -> f64 {
        match self {
            Numbers::Proportion { trials, .. } => *trials,
            Numbers::Mean { count, .. } => *count,
        }
    }

    fn moments(&self) -> Result<Moments, StatsError> {
        match self {
            Numbers::Proportion { successes, trials } => Proportion::new(*successes, *trials).moments(),
            Numbers::Mean { sum, count, sum_of_squares } => Mean::new(*sum, *sum_of_squares, *count).moments(),
        }
    }
}

/// What an evaluation decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Keep running (the message says what it waits for).
    Continue(String),
    /// A winner: a variant's name, or `control` when every significant variant is worse.
    Winner {
        /// The winning arm.
        name: String,
        /// Why, for the Event.
        message: String,
    },
    /// Stop without a winner: a guardrail breached or the sample ratio does not match the weights.
    Stop {
        /// A reason constant.
        reason: &'static str,
        /// Why.
        message: String,
    },
    /// At `maxDuration` without a decision.
    Inconclusive(String),
    /// The numbers cannot be used (successes above trials, too few events, ...): no decision from them.
    Invalid(String),
}

/// The outcome of an evaluation: per-arm results for status (control first), the sample-ratio strikes,
/// and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Per-arm results, the control first.
    pub results: Vec<VariantResult>,
    /// Consecutive sample ratio mismatches so far.
    pub srm_strikes: i32,
    /// The verdict.
    pub verdict: Verdict,
}

/// The non-inferiority guardrails assessed per variant (`experiment::non_inferiority`): variant name → results.
pub type NonInferiorities = [(String, Vec<NonInferiorityResult>)];

/// Evaluates. `arms` holds the control first, then the variants in spec order; `previous` the per-arm
/// results of the last evaluation (their sequential state); `breached` the guardrails out of range
/// (`name: why`); `non_inferiority` the non-inferiority guardrails per variant; `elapsed` the time since the
/// start; `at_max` whether `maxDuration` has passed.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    spec: &ExperimentSpec,
    arms: &[(String, Numbers)],
    previous: &[VariantResult],
    previous_strikes: i32,
    breached: &[String],
    non_inferiority: &NonInferiorities,
    elapsed: Duration,
    at_max: bool,
) -> Evaluation {
    let confidence = spec.decision.confidence;
    let alpha = 1.0 - confidence;
    let variants = arms.len().saturating_sub(1).max(1);
    let alpha_each = stats::bonferroni_alpha(alpha, variants).unwrap_or(alpha / variants as f64);
    let min_samples = spec.decision.min_samples_per_variant.unwrap_or(DEFAULT_MIN_SAMPLES) as f64;
    let min_duration = spec.decision.min_duration.as_ref().and_then(|d| d.to_std().ok()).unwrap_or_default();
    let method = spec.decision.method.unwrap_or_default();
    let goal = spec.objective.goal.unwrap_or_default();
    let mut results: Vec<VariantResult> = arms
        .iter()
        .map(|(name, n)| {
            let m = n.moments().ok();
            VariantResult {
                name: name.clone(),
                samples: n.samples() as i64,
                estimate: m.map(|m| m.mean),
                interval: m
                    .and_then(|m| {
                        let z = stats_z(confidence)?;
                        let half = z * m.variance_of_mean().sqrt();
                        Some(vec![m.mean - half, m.mean + half])
                    })
                    .unwrap_or_default(),
                ..VariantResult::default()
            }
        })
        .collect();
    let out = |results, strikes, verdict| Evaluation { results, srm_strikes: strikes, verdict };

    // (0) Validity: a bad count decides nothing.
    for (name, n) in arms {
        if let Numbers::Proportion { successes, trials } = n
            && successes > trials
        {
            let why = format!("arm {name} has {successes} successes in {trials} trials; check the queries");
            return out(results, previous_strikes, Verdict::Invalid(why));
        }
    }
    // The sample ratio (split mode: live traffic is divided by the weights).
    let mut strikes = 0;
    if spec.mode == ExperimentMode::Split && arms.iter().all(|(_, n)| n.samples() >= SRM_MIN_UNITS) {
        let total: i32 = spec.variants.iter().map(|v| v.weight).sum();
        let weights: Vec<f64> = std::iter::once(f64::from(100 - total))
            .chain(spec.variants.iter().map(|v| f64::from(v.weight)))
            .take(arms.len())
            .collect();
        let counts: Vec<f64> = arms.iter().map(|(_, n)| n.samples()).collect();
        if let Ok(check) = stats::sample_ratio_mismatch(&counts, &weights, SRM_THRESHOLD)
            && check.mismatch
        {
            {
                strikes = previous_strikes + 1;
                if strikes >= SRM_STRIKES {
                    let message = format!(
                        "sample ratio mismatch: {} units per arm against weights {} (χ² p = {:.2e}, {strikes} evaluations in a row); \
                         the split is not what the weights say, so no result can be trusted",
                        join(&counts),
                        join(&weights),
                        check.p_value
                    );
                    return out(
                        results,
                        strikes,
                        Verdict::Stop { reason: crate::names::reasons::SAMPLE_RATIO_MISMATCH, message },
                    );
                }
            }
        }
    }
    // (2) Guardrails stop it whatever the objective says (also before the minimums).
    if !breached.is_empty() {
        let message = format!("guardrail breached: {}", breached.join("; "));
        return out(results, strikes, Verdict::Stop { reason: crate::names::reasons::GUARDRAIL_BREACHED, message });
    }
    // (1) Minimums.
    let fewest = arms.iter().map(|(_, n)| n.samples()).fold(f64::INFINITY, f64::min);
    let gathering = fewest < min_samples || elapsed < min_duration;
    // (2) Non-inferiority guardrails: shown harm stops it once the arms have their minimum samples.
    for (variant, ni) in non_inferiority {
        if let Some(r) = results.iter_mut().find(|r| r.name == *variant) {
            r.non_inferiority = ni.clone();
        }
    }
    if fewest >= min_samples {
        for (variant, ni) in non_inferiority {
            let harm = ni.iter().find(|r| r.harmful);
            if let Some((r, check)) =
                harm.and_then(|r| Some((r, spec.non_inferiority.iter().find(|c| c.name == r.name)?)))
            {
                let message = format!("guardrail breached: {}", non_inferiority::harm_message(variant, check, r));
                return out(
                    results,
                    strikes,
                    Verdict::Stop { reason: crate::names::reasons::GUARDRAIL_BREACHED, message },
                );
            }
        }
    }
    // A variant wins only once it is shown within every non-inferiority margin.
    let not_shown = |name: &str| -> Vec<String> {
        let ni = non_inferiority.iter().find(|(v, _)| v == name).map(|(_, r)| r.as_slice()).unwrap_or(&[]);
        spec.non_inferiority
            .iter()
            .filter(|c| !ni.iter().any(|r| r.name == c.name && r.non_inferior))
            .map(|c| c.name.clone())
            .collect()
    };

    // (3) The objective, per variant against the control.
    let control = arms.first().and_then(|(_, n)| n.moments().ok());
    let tuning = spec.decision.tuning_sample_size.unwrap_or(DEFAULT_TUNING_SAMPLE_SIZE) as f64;
    let mut significant: Vec<(String, f64)> = Vec::new();
    let mut invalid = None;
    // Group-sequential: whether every variant reached the planned size without crossing a boundary.
    let mut exhausted = method == DecisionMethod::GroupSequential && arms.len() > 1;
    for (i, (name, n)) in arms.iter().enumerate().skip(1) {
        let (Some(a), Ok(b)) = (control, n.moments()) else {
            if !gathering {
                invalid
                    .get_or_insert(format!("arm {name} or the control has too few events for a normal approximation"));
            }
            continue;
        };
        let Ok(diff) = absolute_difference(&a, &b) else { continue };
        let r = &mut results[i];
        r.effect = Some(diff.estimate);
        match method {
            DecisionMethod::Sequential => {
                let before = previous.iter().find(|p| p.name == *name);
                let state = before.map(to_state).unwrap_or_default();
                let tau2 = before
                    .and_then(|p| p.mixing_variance)
                    .or_else(|| stats::mixing_variance(alpha_each, tuning, diff.per_unit_variance()).ok());
                let Some(tau2) = tau2 else { continue };
                r.mixing_variance = Some(tau2);
                let Ok(config) = MsprtConfig::new(tau2, alpha_each) else { continue };
                let Ok(look) = stats::msprt_look(&diff, &config, &state) else { continue };
                r.p_value = Some(look.state.p_value);
                r.looks = Some(i64::from(look.state.looks));
                r.rejected_at_look = look.state.rejected_at_look.map(i64::from);
                r.effect_interval = look.state.confidence_sequence.map(|c| vec![c.lower, c.upper]).unwrap_or_default();
                if look.state.rejected() {
                    significant.push((name.clone(), diff.estimate));
                }
            }
            DecisionMethod::GroupSequential => {
                let expected = spec.decision.expected_sample_size.unwrap_or(0) as f64;
                let before = previous.iter().find(|p| p.name == *name);
                let mut looks = before.map(|p| p.group_sequential_looks.clone()).unwrap_or_default();
                if expected <= 0.0 {
                    exhausted = false;
                    continue;
                }
                let t = ((a.count + b.count) / expected).min(1.0);
                let last = looks.last().map(|l| l.information_fraction).unwrap_or(0.0);
                if t > last + 1e-9 && looks.len() < GROUP_SEQUENTIAL_MAX_LOOKS {
                    looks.push(GroupSequentialLook { information_fraction: t, z: diff.z(), z_bound: None });
                }
                let design = GroupSequentialDesign { alpha: alpha_each, ..GroupSequentialDesign::default() };
                let history: Vec<Look> =
                    looks.iter().map(|l| Look { information_fraction: l.information_fraction, z: l.z }).collect();
                let Ok(check) = stats::check_boundary(&history, &design) else {
                    exhausted = false;
                    continue;
                };
                for (l, b) in looks.iter_mut().zip(&check.bounds) {
                    l.z_bound = Some(b.z_bound);
                }
                r.group_sequential_looks = looks;
                r.looks = Some(r.group_sequential_looks.len() as i64);
                match check.crossed {
                    Some(c) => {
                        r.rejected_at_look = Some(c.look as i64);
                        significant.push((name.clone(), diff.estimate));
                        exhausted = false;
                    }
                    None if t < 1.0 => exhausted = false,
                    None => {}
                }
            }
            DecisionMethod::FixedHorizon => {
                let test = match n {
                    Numbers::Proportion { successes, trials } => match arms[0].1 {
                        Numbers::Proportion { successes: s0, trials: t0 } => stats::two_proportion_z_test(
                            &Proportion::new(s0, t0),
                            &Proportion::new(*successes, *trials),
                            alpha_each,
                        ),
                        _ => continue,
                    },
                    Numbers::Mean { .. } => stats::welch_t_test_moments(&a, &b, alpha_each),
                };
                let Ok(test) = test else { continue };
                r.p_value = Some(test.difference.p_value);
                r.effect_interval = vec![test.difference.interval.lower, test.difference.interval.upper];
                // One look only, at the planned end: earlier values are shown, never acted on.
                if at_max && test.difference.p_value <= alpha_each {
                    significant.push((name.clone(), diff.estimate));
                }
            }
        }
    }
    if let Some(why) = invalid {
        return out(results, strikes, Verdict::Invalid(why));
    }
    if !gathering && !significant.is_empty() {
        let better = |effect: f64| match goal {
            Goal::Maximize => effect > 0.0,
            Goal::Minimize => effect < 0.0,
        };
        let best = significant.iter().filter(|(_, e)| better(*e)).max_by(|a, b| {
            let key = |e: f64| if goal == Goal::Maximize { e } else { -e };
            key(a.1).total_cmp(&key(b.1))
        });
        let level = format!("{:.0}%", confidence * 100.0);
        if let Some((name, _)) = best {
            let missing = not_shown(name);
            if !missing.is_empty() {
                let why = format!(
                    "variant {name} beats the control on {} at {level} confidence but is not yet shown within the non-inferiority margin of {}",
                    spec.objective.name,
                    missing.join(", ")
                );
                return out(results, strikes, Verdict::Continue(why));
            }
        }
        return out(
            results,
            strikes,
            match best {
                Some((name, effect)) => Verdict::Winner {
                    name: name.clone(),
                    message: format!(
                        "variant {name} beats the control on {} by {effect:+.4} at {level} confidence",
                        spec.objective.name
                    ),
                },
                None => Verdict::Winner {
                    name: CONTROL.into(),
                    message: format!(
                        "every variant that differs from the control is worse on {} at {level} confidence; stable stays",
                        spec.objective.name
                    ),
                },
            },
        );
    }
    if exhausted && !gathering {
        let message = format!(
            "the group-sequential design reached its planned size ({} units) without crossing a boundary; stable stays as it is",
            spec.decision.expected_sample_size.unwrap_or_default()
        );
        return out(results, strikes, Verdict::Inconclusive(message));
    }
    if at_max {
        return out(
            results,
            strikes,
            Verdict::Inconclusive(format!(
                "no decision within maxDuration {} ({:.0} units in the smallest arm); stable stays as it is",
                spec.decision.max_duration, fewest
            )),
        );
    }
    let waits = if fewest < min_samples {
        format!("gathering samples: {fewest:.0} of {min_samples:.0} in the smallest arm")
    } else if elapsed < min_duration {
        format!(
            "running for the minimum duration {}",
            spec.decision.min_duration.as_ref().map(ToString::to_string).unwrap_or_default()
        )
    } else {
        "no significant difference yet".to_string()
    };
    out(results, strikes, Verdict::Continue(waits))
}

fn to_state(r: &VariantResult) -> MsprtState {
    MsprtState {
        looks: r.looks.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
        p_value: r.p_value.unwrap_or(1.0).clamp(0.0, 1.0),
        confidence_sequence: match r.effect_interval.as_slice() {
            [lower, upper] if r.looks.is_some() => Some(Interval { lower: *lower, upper: *upper }),
            _ => None,
        },
        rejected_at_look: r.rejected_at_look.and_then(|l| u32::try_from(l).ok()),
    }
}

fn stats_z(confidence: f64) -> Option<f64> {
    use statrs::distribution::{ContinuousCDF, Normal};
    Some(Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0)).filter(|z| z.is_finite())
}

fn join(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join("/")
}

/// The arm numbers of an objective from its named counters (`successes`, `trials`, `sum`, `count`,
/// `sumOfSquares`).
pub fn numbers(type_: ObjectiveType, get: impl Fn(&str) -> f64) -> Numbers {
    match type_ {
        ObjectiveType::Proportion => Numbers::Proportion { successes: get("successes"), trials: get("trials") },
        ObjectiveType::Mean => {
            Numbers::Mean { sum: get("sum"), count: get("count"), sum_of_squares: get("sumOfSquares") }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn spec() -> ExperimentSpec {
        let mut s = fixtures::experiment("ab").spec;
        s.decision.min_samples_per_variant = Some(500);
        s
    }

    fn p(successes: f64, trials: f64) -> Numbers {
        Numbers::Proportion { successes, trials }
    }

    fn arms(control: Numbers, variant: Numbers) -> Vec<(String, Numbers)> {
        vec![(CONTROL.into(), control), ("challenger".into(), variant)]
    }

    /// Runs looks of growing counts (the variant's rate `b` against the control's `a`, 80/20 split) until a
    /// verdict other than Continue, or `looks` looks.
    fn run(spec: &ExperimentSpec, a: f64, b: f64, looks: usize) -> (Verdict, usize) {
        let mut previous = Vec::new();
        let mut strikes = 0;
        for look in 1..=looks {
            let n = 1000.0 * look as f64;
            let (nc, nv) = (n * 0.8, n * 0.2);
            let e = evaluate(
                spec,
                &arms(p(a * nc, nc), p(b * nv, nv)),
                &previous,
                strikes,
                &[],
                &[],
                Duration::from_secs(3600),
                false,
            );
            previous = e.results;
            strikes = e.srm_strikes;
            if !matches!(e.verdict, Verdict::Continue(_)) {
                return (e.verdict, look);
            }
        }
        (Verdict::Continue(String::new()), looks)
    }

    #[test]
    fn a_clear_winner_is_found_and_a_null_effect_is_not() {
        let (v, at) = run(&spec(), 0.10, 0.20, 50);
        assert!(matches!(&v, Verdict::Winner { name, .. } if name == "challenger"), "{v:?} at {at}");
        let (v, _) = run(&spec(), 0.10, 0.10, 30);
        assert!(matches!(v, Verdict::Continue(_)), "{v:?}");
        // Worse: the control wins.
        let (v, _) = run(&spec(), 0.20, 0.10, 50);
        assert!(matches!(&v, Verdict::Winner { name, .. } if name == CONTROL), "{v:?}");
        // Minimize: a lower rate wins.
        let mut min = spec();
        min.objective.goal = Some(Goal::Minimize);
        let (v, _) = run(&min, 0.20, 0.10, 50);
        assert!(matches!(&v, Verdict::Winner { name, .. } if name == "challenger"), "{v:?}");
    }

    #[test]
    fn non_inferiority_blocks_a_winner_until_shown_and_harm_stops_it() {
        use crate::api::experiment::{NonInferiorityCheck, NonInferiorityResult};
        let mut s = spec();
        s.non_inferiority =
            vec![NonInferiorityCheck { name: "latency".into(), margin: 0.05, ..NonInferiorityCheck::default() }];
        let numbers = arms(p(400.0, 4000.0), p(200.0, 1000.0));
        let ni = |non_inferior: bool, harmful: bool| {
            vec![(
                "challenger".to_string(),
                vec![NonInferiorityResult {
                    name: "latency".into(),
                    lift: Some(0.01),
                    bound: Some(0.06),
                    non_inferior,
                    harmful,
                }],
            )]
        };
        // Clearly better on the objective, not yet shown within the latency margin: no winner yet.
        let e = evaluate(&s, &numbers, &[], 0, &[], &ni(false, false), Duration::ZERO, false);
        assert!(
            matches!(&e.verdict, Verdict::Continue(m) if m.contains("not yet shown within the non-inferiority margin of latency")),
            "{:?}",
            e.verdict
        );
        assert_eq!(e.results[1].non_inferiority.len(), 1, "the assessment is in status");
        // Shown within: it wins.
        let e = evaluate(&s, &numbers, &[], 0, &[], &ni(true, false), Duration::ZERO, false);
        assert!(matches!(&e.verdict, Verdict::Winner { name, .. } if name == "challenger"), "{:?}", e.verdict);
        // No assessment at all (too few values) is not shown.
        let e = evaluate(&s, &numbers, &[], 0, &[], &[], Duration::ZERO, false);
        assert!(matches!(&e.verdict, Verdict::Continue(_)), "{:?}", e.verdict);
        // Harm stops it, whatever the objective says.
        let e = evaluate(&s, &numbers, &[], 0, &[], &ni(false, true), Duration::ZERO, false);
        assert!(
            matches!(&e.verdict, Verdict::Stop { reason, message } if *reason == crate::names::reasons::GUARDRAIL_BREACHED && message.contains("worse than the control on latency by more than the 5.0% margin")),
            "{:?}",
            e.verdict
        );
        // ... but not before the minimum samples.
        let few =
            evaluate(&s, &arms(p(40.0, 400.0), p(80.0, 100.0)), &[], 0, &[], &ni(false, true), Duration::ZERO, false);
        assert!(matches!(&few.verdict, Verdict::Continue(_)), "{:?}", few.verdict);
    }

    #[test]
    fn the_sequential_state_persists_and_a_decision_once_made_stays() {
        let s = spec();
        let first = evaluate(&s, &arms(p(400.0, 4000.0), p(200.0, 1000.0)), &[], 0, &[], &[], Duration::ZERO, false);
        let r = &first.results[1];
        assert_eq!(r.looks, Some(1));
        let tau2 = r.mixing_variance.unwrap();
        assert!(r.rejected_at_look.is_some(), "{r:?}");
        // Later numbers show no difference: the always-valid p-value stays at its minimum, tau² stays frozen.
        let later =
            evaluate(&s, &arms(p(800.0, 8000.0), p(200.0, 2000.0)), &first.results, 0, &[], &[], Duration::ZERO, false);
        let r2 = &later.results[1];
        assert_eq!(r2.mixing_variance, Some(tau2));
        assert_eq!(r2.looks, Some(2));
        assert!(r2.p_value <= r.p_value, "{:?} then {:?}", r.p_value, r2.p_value);
        assert_eq!(r2.rejected_at_look, r.rejected_at_look);
    }

    #[test]
    fn gates_guardrails_validity_and_the_sample_ratio() {
        let s = spec();
        let few = evaluate(&s, &arms(p(40.0, 400.0), p(80.0, 100.0)), &[], 0, &[], &[], Duration::ZERO, false);
        assert!(
            matches!(&few.verdict, Verdict::Continue(m) if m.contains("gathering samples: 100 of 500")),
            "{:?}",
            few.verdict
        );
        let mut long = s.clone();
        long.decision.min_duration = Some(crate::api::duration::Duration::new("1h"));
        let early = evaluate(
            &long,
            &arms(p(400.0, 4000.0), p(500.0, 1000.0)),
            &[],
            0,
            &[],
            &[],
            Duration::from_secs(60),
            false,
        );
        assert!(
            matches!(&early.verdict, Verdict::Continue(m) if m.contains("minimum duration")),
            "{:?}",
            early.verdict
        );

        let breached = ["p99-latency: 0.4 above 0.25".to_string()];
        let g = evaluate(&s, &arms(p(40.0, 400.0), p(10.0, 100.0)), &[], 0, &breached, &[], Duration::ZERO, false);
        assert!(
            matches!(&g.verdict, Verdict::Stop { reason, .. } if *reason == crate::names::reasons::GUARDRAIL_BREACHED)
        );

        let bad = evaluate(&s, &arms(p(500.0, 400.0), p(10.0, 100.0)), &[], 0, &[], &[], Duration::ZERO, false);
        assert!(
            matches!(&bad.verdict, Verdict::Invalid(m) if m.contains("500 successes in 400 trials")),
            "{:?}",
            bad.verdict
        );

        // 50/50 units against 80/20 weights, three evaluations in a row.
        let skewed = arms(p(100.0, 1000.0), p(100.0, 1000.0));
        let one = evaluate(&s, &skewed, &[], 0, &[], &[], Duration::ZERO, false);
        assert_eq!(one.srm_strikes, 1);
        assert!(!matches!(one.verdict, Verdict::Stop { .. }));
        let three = evaluate(&s, &skewed, &[], 2, &[], &[], Duration::ZERO, false);
        assert!(
            matches!(&three.verdict, Verdict::Stop { reason, message } if *reason == crate::names::reasons::SAMPLE_RATIO_MISMATCH && message.contains("1000/1000 units per arm against weights 80/20")),
            "{:?}",
            three.verdict
        );
        // A matching ratio resets the strikes.
        let fine = evaluate(&s, &arms(p(400.0, 4000.0), p(100.0, 1000.0)), &[], 2, &[], &[], Duration::ZERO, false);
        assert_eq!(fine.srm_strikes, 0);
    }

    #[test]
    fn group_sequential_decides_at_a_crossing_and_ends_at_the_planned_size() {
        let mut s = spec();
        s.decision.method = Some(DecisionMethod::GroupSequential);
        s.decision.expected_sample_size = Some(8_000);
        let (v, at) = run(&s, 0.10, 0.20, 12);
        assert!(matches!(&v, Verdict::Winner { name, .. } if name == "challenger"), "{v:?} at {at}");
        assert!(at < 8, "a strong effect crosses before the planned size (look {at})");
        // A null effect: no crossing, Inconclusive once the planned size is reached (8 looks of 1000).
        let (v, at) = run(&s, 0.10, 0.10, 12);
        assert!(matches!(&v, Verdict::Inconclusive(m) if m.contains("planned size (8000 units)")), "{v:?}");
        assert_eq!(at, 8, "t reaches 1 at 8,000 units");
        // The look history is kept, with the boundary of each look (O'Brien–Fleming: high early).
        let first = evaluate(&s, &arms(p(400.0, 4000.0), p(100.0, 1000.0)), &[], 0, &[], &[], Duration::ZERO, false);
        let looks = &first.results[1].group_sequential_looks;
        assert_eq!(looks.len(), 1);
        assert!((looks[0].information_fraction - 5000.0 / 8000.0).abs() < 1e-12);
        assert!(looks[0].z_bound.unwrap() > 2.0, "{looks:?}");
        // The same size again is no new look.
        let again =
            evaluate(&s, &arms(p(400.0, 4000.0), p(100.0, 1000.0)), &first.results, 0, &[], &[], Duration::ZERO, false);
        assert_eq!(again.results[1].group_sequential_looks.len(), 1);
    }

    #[test]
    fn fixed_horizon_decides_only_at_the_end() {
        let mut s = spec();
        s.decision.method = Some(DecisionMethod::FixedHorizon);
        let a = arms(p(400.0, 4000.0), p(200.0, 1000.0));
        let before = evaluate(&s, &a, &[], 0, &[], &[], Duration::from_secs(60), false);
        assert!(matches!(before.verdict, Verdict::Continue(_)), "{:?}", before.verdict);
        assert!(before.results[1].p_value.unwrap() < 0.05, "shown, not acted on");
        let end = evaluate(&s, &a, &[], 0, &[], &[], Duration::from_secs(60), true);
        assert!(matches!(&end.verdict, Verdict::Winner { name, .. } if name == "challenger"), "{:?}", end.verdict);
        let null =
            evaluate(&s, &arms(p(400.0, 4000.0), p(100.0, 1000.0)), &[], 0, &[], &[], Duration::from_secs(60), true);
        assert!(matches!(null.verdict, Verdict::Inconclusive(_)), "{:?}", null.verdict);
    }
}
