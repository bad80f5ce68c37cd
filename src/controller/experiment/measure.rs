//! The measurements of a running Experiment: the objective's counters per arm (control and each variant),
//! read per series and baseline-subtracted (`experiment::counters`), and the guardrails per variant; then
//! one evaluation (`experiment::decision`).

use std::time::Duration;

use crate::analysis::template::TemplateVars;
use crate::analysis::{builtin, measure, render};
use crate::api::experiment::NonInferiorityResult;
use crate::api::experiment::{ArmCounters, ExperimentMode, NamedCounter, ObjectiveType};
use crate::api::model_deployment::{Router, Verdict as MetricVerdict};
use crate::api::{Experiment, ExperimentStatus, ModelDeployment};
use crate::config::DEFAULT_PROVIDER;
use crate::controller::Context;
use crate::experiment::counters::labels_key;
use crate::experiment::decision::{self, CONTROL, Evaluation, Numbers};
use crate::experiment::non_inferiority::{self, Totals};
use crate::experiment::serving;
use crate::rollout::plan;
use kube::ResourceExt;

/// One arm to measure.
struct Arm {
    name: String,
    revision: String,
    version: String,
    service: String,
}

fn arms(x: &Experiment, md: &ModelDeployment) -> Vec<Arm> {
    let stable = md.status.as_ref().and_then(|s| s.stable.clone()).unwrap_or_default();
    let mut out = vec![Arm {
        name: CONTROL.into(),
        revision: stable.hash.unwrap_or_default(),
        version: stable.version,
        service: md.name_any(),
    }];
    for (s, v) in serving::served(x, md).into_iter().zip(x.spec.variants.iter()) {
        out.push(Arm {
            name: s.variant.clone(),
            revision: s.hash.clone(),
            version: v.model.version.clone().unwrap_or_default(),
            service: s.name.clone(),
        });
    }
    out
}

fn vars(md: &ModelDeployment, arm: &Arm, window: Duration) -> TemplateVars {
    TemplateVars {
        namespace: md.namespace(),
        name: Some(md.name_any()),
        variant: Some(arm.name.clone()),
        version: Some(arm.version.clone()),
        revision: Some(arm.revision.clone()),
        service: Some(arm.service.clone()),
        interval: None,
        window: Some(format!("{}s", window.as_secs().max(1))),
    }
}

/// The objective's queries by name, then each non-inferiority guardrail's (`ni/<name>/sum` and so on), with
/// their provider.
fn queries(x: &Experiment) -> Vec<(String, String, Option<String>)> {
    let o = &x.spec.objective;
    let named: Vec<(&'static str, &Option<String>)> = match o.type_ {
        ObjectiveType::Proportion => vec![("successes", &o.successes), ("trials", &o.trials)],
        ObjectiveType::Mean => vec![("sum", &o.sum), ("count", &o.count), ("sumOfSquares", &o.sum_of_squares)],
    };
    let mut out: Vec<(String, String, Option<String>)> =
        named.into_iter().filter_map(|(n, q)| q.clone().map(|q| (n.to_string(), q, o.provider.clone()))).collect();
    for c in &x.spec.non_inferiority {
        for (part, q) in [("sum", &c.sum), ("count", &c.count), ("sumOfSquares", &c.sum_of_squares)] {
            out.push((format!("ni/{}/{part}", c.name), q.clone(), c.provider.clone()));
        }
    }
    out
}

/// Measures and evaluates; `status` gets the new counters. `Err` says why nothing could be measured (a
/// query failed, a value is not a counter): no decision is taken from such numbers.
pub async fn evaluate(
    ctx: &Context,
    x: &Experiment,
    md: &ModelDeployment,
    status: &mut ExperimentStatus,
    elapsed: Duration,
    at_max: bool,
) -> Result<(Evaluation, Vec<String>), String> {
    let arms = arms(x, md);
    let mut counters: Vec<ArmCounters> = status.arms.clone();
    let mut numbers = Vec::new();
    let mut totals: Vec<Vec<Totals>> = Vec::new();
    let mut notes = Vec::new();
    for arm in &arms {
        let entry = match counters.iter().position(|a| a.name == arm.name && a.revision == arm.revision) {
            Some(i) => i,
            None => {
                counters.push(ArmCounters { name: arm.name.clone(), revision: arm.revision.clone(), counters: vec![] });
                counters.len() - 1
            }
        };
        for (name, query, provider) in queries(x) {
            let provider = provider.as_deref().unwrap_or(DEFAULT_PROVIDER);
            let base = ctx.config.provider_url(Some(provider)).map_err(|e| e.to_string())?;
            let q = render(&query, &vars(md, arm, elapsed)).map_err(|e| format!("objective {name}: {e}"))?;
            let series = ctx
                .prometheus
                .query_vector(base, &q)
                .await
                .map_err(|e| format!("objective {name} of arm {}: {e}", arm.name))?;
            let read: Vec<(String, f64)> = series.iter().map(|(l, v)| (labels_key(l), *v)).collect();
            if read.is_empty() {
                notes.push(format!("the objective's {name} query selects no series for arm {}", arm.name));
            }
            let c = &mut counters[entry].counters;
            let i = match c.iter().position(|n| n.query == name) {
                Some(i) => i,
                None => {
                    c.push(NamedCounter { query: name.to_string(), counter: Default::default() });
                    c.len() - 1
                }
            };
            c[i].counter.take(&read).map_err(|e| format!("objective {name} of arm {}: {e}", arm.name))?;
        }
        let held = &counters[entry].counters;
        let get = |q: &str| held.iter().find(|n| n.query == q).map(|n| n.counter.total()).unwrap_or(0.0);
        numbers.push((arm.name.clone(), decision::numbers(x.spec.objective.type_, get)));
        let ni: Vec<Totals> = x
            .spec
            .non_inferiority
            .iter()
            .map(|c| {
                let part = |p: &str| get(&format!("ni/{}/{p}", c.name));
                Totals { sum: part("sum"), count: part("count"), sum_of_squares: part("sumOfSquares") }
            })
            .collect();
        totals.push(ni);
    }
    status.arms = counters;
    let alpha = 1.0 - x.spec.decision.confidence;
    let tuning = x.spec.decision.tuning_sample_size.unwrap_or(decision::DEFAULT_TUNING_SAMPLE_SIZE) as f64;
    let non_inferiority: Vec<(String, Vec<NonInferiorityResult>)> = arms
        .iter()
        .zip(&totals)
        .skip(1)
        .map(|(arm, t)| {
            let assessed = x
                .spec
                .non_inferiority
                .iter()
                .zip(t)
                .zip(&totals[0])
                .filter_map(|((c, variant), control)| non_inferiority::assess(c, *control, *variant, alpha, tuning))
                .collect();
            (arm.name.clone(), assessed)
        })
        .collect();

    let builtin = plan::router(&md.spec) == Router::Builtin;
    if let Some(g) = x.spec.guardrails.iter().find(|g| g.builtin.is_some()).filter(|_| !builtin) {
        return Err(format!(
            "guardrail {} is a built-in metric, but ModelDeployment {} does not use traffic.router: builtin",
            g.name,
            md.name_any()
        ));
    }
    let mut breached = Vec::new();
    for arm in arms.iter().skip(1) {
        for g in &x.spec.guardrails {
            let r = measure(&ctx.prometheus, &ctx.config, g, &vars(md, arm, elapsed)).await;
            if r.verdict == MetricVerdict::Fail {
                let value = r.value.map(|v| format!("{v}")).unwrap_or_else(|| "no data".into());
                breached.push(format!("{} of variant {} is {value}{}", g.name, arm.name, detail(&r.message)));
            }
        }
    }
    let numbers: Vec<(String, Numbers)> = numbers;
    let strikes = status.srm_strikes.unwrap_or(0);
    let mut evaluation =
        decision::evaluate(&x.spec, &numbers, &status.variants, strikes, &breached, &non_inferiority, elapsed, at_max);
    let compared = md.spec.traffic.as_ref().and_then(|t| t.builtin.as_ref()).is_some_and(|b| b.comparison.is_some());
    if builtin && compared && x.spec.mode == ExperimentMode::Shadow {
        for arm in arms.iter().skip(1) {
            let (agreement, comparisons) = agreement(ctx, &vars(md, arm, elapsed)).await;
            if let Some(r) = evaluation.results.iter_mut().find(|r| r.name == arm.name) {
                (r.agreement, r.comparisons) = (agreement, comparisons);
            }
        }
    }
    Ok((evaluation, notes))
}

/// A shadow variant's agreement with the live answers and the number of comparisons over `vars.window`, read
/// from the built-in router's series; `None`s when they cannot be read (the agreement is reported, it
/// decides nothing unless a `shadowAgreement` guardrail asks).
async fn agreement(ctx: &Context, vars: &TemplateVars) -> (Option<f64>, Option<i64>) {
    let Ok(base) = ctx.config.provider_url(ctx.config.router_provider()) else { return (None, None) };
    builtin::read_agreement(&ctx.prometheus, base, vars).await.unwrap_or((None, None))
}

fn detail(m: &Option<String>) -> String {
    m.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
}
