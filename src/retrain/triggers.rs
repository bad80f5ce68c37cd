//! When a run starts: the schedule (one catch-up run after an outage, not one per missed slot), the metric
//! triggers (out of range for `for`, measured from a first-seen time kept in status, so across operator
//! restarts) and `kubectl champion retrain` (a request consumed once). `cooldown` and `concurrencyPolicy`
//! decide what happens to a firing, and several triggers firing together start one run.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::cron::{CronSchedule, parse_time_zone};
use crate::api::retrain_policy::{ConcurrencyPolicy, MetricTriggerStatus, RetrainPolicySpec, RetrainPolicyStatus};
use crate::conditions::Transition;
use crate::names::reasons;

/// The cooldown when the spec gives none.
pub const DEFAULT_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(3600);
/// How often metric triggers are read when the spec does not say.
pub const DEFAULT_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// One metric trigger's reading.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// The query's value.
    Value(f64),
    /// The query returned no series.
    NoData,
    /// The query failed; the message says why.
    Error(String),
}

/// What the triggers see at one reconcile.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The spec.
    pub spec: &'a RetrainPolicySpec,
    /// The status as last written.
    pub status: &'a RetrainPolicyStatus,
    /// The metric triggers' readings, by name, when they were read at this reconcile.
    pub readings: Option<&'a [(String, Reading)]>,
    /// `kubectl champion retrain` asks for a run (a new request, not yet consumed).
    pub manual: bool,
    /// The id of a run under way.
    pub running: Option<&'a str>,
    /// When the policy was created (the schedule counts from it at first).
    pub created: Timestamp,
    /// Now.
    pub now: Timestamp,
}

/// A trigger that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// `manual`, a metric trigger's name, or `schedule`.
    pub reason: String,
    /// The metric value that fired it.
    pub value: Option<f64>,
    /// The other triggers that fired at the same time (folded into the same run).
    pub also: Vec<String>,
}

/// What the triggers decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Start a run.
    pub fire: Option<Firing>,
    /// Stop the run under way first (`concurrencyPolicy: Replace`).
    pub replace: bool,
    /// The schedule's last slot accounted for.
    pub last_scheduled: Option<Time>,
    /// When the schedule fires next.
    pub next_scheduled: Option<Time>,
    /// The metric triggers' state.
    pub metric_triggers: Vec<MetricTriggerStatus>,
    /// Events: dropped firings.
    pub events: Vec<Transition>,
}

fn std_of(d: Option<&crate::api::duration::Duration>, default: std::time::Duration) -> std::time::Duration {
    d.and_then(|d| d.to_std().ok()).unwrap_or(default)
}

fn plus(t: Timestamp, d: std::time::Duration) -> Timestamp {
    SignedDuration::try_from(d).ok().and_then(|d| t.checked_add(d).ok()).unwrap_or(Timestamp::MAX)
}

/// When the cooldown after the last run ends (`None`: no run yet).
pub fn cooldown_ends(spec: &RetrainPolicySpec, status: &RetrainPolicyStatus) -> Option<Timestamp> {
    let started = status.last_run_started.as_ref()?.0;
    Some(plus(started, std_of(spec.cooldown.as_ref(), DEFAULT_COOLDOWN)))
}

/// How often the metric triggers are read.
pub fn check_interval(spec: &RetrainPolicySpec) -> std::time::Duration {
    let d = spec.triggers.as_ref().and_then(|t| t.check_interval.as_ref());
    std_of(d, DEFAULT_CHECK_INTERVAL).max(std::time::Duration::from_secs(1))
}

/// Decides whether a run starts now.
pub fn decide(input: &Input) -> Decision {
    let Input { spec, status, now, .. } = *input;
    let triggers = spec.triggers.as_ref();
    let mut fired: Vec<(String, Option<f64>)> = Vec::new();
    let mut dropped_slot = false;

    // The schedule: a slot due since the last one accounted for fires once, however many were missed.
    let mut last_scheduled = status.last_scheduled.clone();
    let mut next_scheduled = None;
    if let Some(s) = triggers.and_then(|t| t.schedule.as_ref())
        && let (Ok(cron), Ok(tz)) = (CronSchedule::parse(&s.cron), parse_time_zone(s.time_zone.as_deref()))
    {
        let base = status.last_scheduled.as_ref().map(|t| t.0).unwrap_or(input.created);
        if cron.next_after(base, &tz).is_some_and(|due| due <= now) {
            fired.push(("schedule".into(), None));
            dropped_slot = true;
            last_scheduled = Some(Time(now));
        } else if status.last_scheduled.is_none() {
            last_scheduled = Some(Time(base));
        }
        let from = last_scheduled.as_ref().map(|t| t.0).unwrap_or(now);
        next_scheduled = cron.next_after(from, &tz).map(Time);
    }

    // The metric triggers: out of range without a break for `for`.
    let mut metric_triggers = Vec::new();
    for m in triggers.map(|t| t.metrics.as_slice()).unwrap_or_default() {
        let before = status.metric_triggers.iter().find(|s| s.name == m.name);
        let mut state =
            before.cloned().unwrap_or_else(|| MetricTriggerStatus { name: m.name.clone(), ..Default::default() });
        if let Some(reading) = input.readings.and_then(|r| r.iter().find(|(n, _)| *n == m.name)).map(|(_, r)| r) {
            match reading {
                Reading::Value(v) => {
                    state.value = Some(*v);
                    state.message = None;
                    let out = m.threshold_range.min.is_some_and(|min| *v < min)
                        || m.threshold_range.max.is_some_and(|max| *v > max);
                    state.out_of_range_since = if out { state.out_of_range_since.or(Some(Time(now))) } else { None };
                }
                Reading::NoData => {
                    state.value = None;
                    state.out_of_range_since = None;
                    state.message = Some("the query returned no series; the trigger cannot fire".into());
                }
                Reading::Error(e) => state.message = Some(e.clone()),
            }
        }
        let hold = std_of(m.for_.as_ref(), std::time::Duration::ZERO);
        if state.out_of_range_since.as_ref().is_some_and(|since| plus(since.0, hold) <= now) {
            fired.push((m.name.clone(), state.value));
        }
        metric_triggers.push(state);
    }
    if input.manual {
        fired.insert(0, ("manual".into(), None));
    }

    let mut decision =
        Decision { fire: None, replace: false, last_scheduled, next_scheduled, metric_triggers, events: Vec::new() };
    let Some(((reason, value), rest)) = fired.split_first() else { return decision };
    let names: Vec<String> = fired.iter().map(|(n, _)| n.clone()).collect();
    let consume_metrics = |d: &mut Decision| {
        for s in &mut d.metric_triggers {
            if names.contains(&s.name) {
                s.out_of_range_since = None;
            }
        }
    };

    // At most one run per cooldown: a slot or a request is dropped; a metric stays armed and fires when
    // the cooldown ends if it is still out of range.
    if let Some(ends) = cooldown_ends(spec, status).filter(|e| now < *e) {
        let dropped: Vec<&String> =
            names.iter().filter(|n| (n.as_str() == "schedule" && dropped_slot) || n.as_str() == "manual").collect();
        if !dropped.is_empty() {
            decision.events.push(Transition {
                warning: input.manual,
                reason: reasons::TRIGGER_DROPPED.into(),
                message: format!(
                    "{} did not start a run: the cooldown after the last run lasts until {ends}",
                    join(&dropped)
                ),
            });
        }
        return decision;
    }
    if let Some(run) = input.running {
        if spec.concurrency_policy.unwrap_or_default() == ConcurrencyPolicy::Forbid {
            consume_metrics(&mut decision);
            decision.events.push(Transition {
                warning: input.manual,
                reason: reasons::TRIGGER_DROPPED.into(),
                message: format!(
                    "{} did not start a run: run {run} is under way and concurrencyPolicy is Forbid",
                    join(&names.iter().collect::<Vec<_>>())
                ),
            });
            return decision;
        }
        decision.replace = true;
    }
    consume_metrics(&mut decision);
    decision.fire =
        Some(Firing { reason: reason.clone(), value: *value, also: rest.iter().map(|(n, _)| n.clone()).collect() });
    decision
}

fn join(names: &[&String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("trigger {n}")).collect();
    quoted.join(" and ")
}

#[cfg(test)]
#[path = "triggers_tests.rs"]
mod tests;
