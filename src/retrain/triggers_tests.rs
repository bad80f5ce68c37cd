//! Tables for the triggers, with an injected clock.

use super::*;
use crate::api::common::{PrometheusQuery, ThresholdRange};
use crate::api::duration::Duration;
use crate::api::retrain_policy::{MetricTrigger, Schedule, Triggers};
use crate::fixtures;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn spec(cron: Option<&str>, metric_for: Option<&str>) -> RetrainPolicySpec {
    let mut p = fixtures::retrain_policy("r").spec;
    p.cooldown = Some(Duration::new("1h"));
    p.triggers = Some(Triggers {
        schedule: cron.map(|c| Schedule { cron: c.into(), time_zone: None }),
        metrics: metric_for
            .map(|f| MetricTrigger {
                name: "drift".into(),
                prometheus: PrometheusQuery { query: "psi".into(), ..Default::default() },
                threshold_range: ThresholdRange { min: None, max: Some(0.2) },
                for_: Some(Duration::new(f)),
            })
            .into_iter()
            .collect(),
        check_interval: None,
    });
    p
}

struct World {
    spec: RetrainPolicySpec,
    status: RetrainPolicyStatus,
    created: Timestamp,
    running: Option<String>,
}

impl World {
    fn new(spec: RetrainPolicySpec) -> Self {
        Self { spec, status: RetrainPolicyStatus::default(), created: ts("2026-12-01T00:00:00Z"), running: None }
    }

    /// One reconcile at `now`; a firing starts a run (recorded like the controller does).
    fn at(&mut self, now: &str, reading: Option<Reading>, manual: bool) -> Decision {
        let now = ts(now);
        let readings: Option<Vec<(String, Reading)>> = reading.map(|r| vec![("drift".to_string(), r)]);
        let d = decide(&Input {
            spec: &self.spec,
            status: &self.status,
            readings: readings.as_deref(),
            manual,
            running: self.running.as_deref(),
            created: self.created,
            now,
        });
        self.status.last_scheduled = d.last_scheduled.clone();
        self.status.next_scheduled = d.next_scheduled.clone();
        self.status.metric_triggers = d.metric_triggers.clone();
        if d.fire.is_some() {
            self.status.last_run_started = Some(Time(now));
        }
        d
    }
}

fn fired(d: &Decision) -> Option<&str> {
    d.fire.as_ref().map(|f| f.reason.as_str())
}

#[test]
fn a_schedule_fires_once_per_slot_and_next_scheduled_is_always_right() {
    let mut w = World::new(spec(Some("0 * * * *"), None));
    // (now, fires, next scheduled)
    let table = [
        ("2026-12-01T00:30:00Z", None, "2026-12-01T01:00:00Z"),
        ("2026-12-01T00:59:59Z", None, "2026-12-01T01:00:00Z"),
        ("2026-12-01T01:00:00Z", Some("schedule"), "2026-12-01T02:00:00Z"),
        ("2026-12-01T01:00:05Z", None, "2026-12-01T02:00:00Z"),
        ("2026-12-01T02:00:30Z", Some("schedule"), "2026-12-01T03:00:00Z"),
    ];
    for (now, fires, next) in table {
        let d = w.at(now, None, false);
        assert_eq!(fired(&d), fires, "at {now}");
        assert_eq!(d.next_scheduled, Some(Time(ts(next))), "next at {now}");
    }
}

#[test]
fn after_an_outage_one_catch_up_run_not_one_per_missed_slot() {
    let mut w = World::new(spec(Some("*/10 * * * *"), None));
    w.spec.cooldown = Some(Duration::new("1s"));
    assert_eq!(fired(&w.at("2026-12-01T00:05:00Z", None, false)), None);
    // The operator was down from 00:05 to 03:07: 18 slots were missed.
    assert_eq!(fired(&w.at("2026-12-01T03:07:00Z", None, false)), Some("schedule"));
    assert_eq!(fired(&w.at("2026-12-01T03:07:02Z", None, false)), None, "no second catch-up");
    assert_eq!(w.status.next_scheduled, Some(Time(ts("2026-12-01T03:10:00Z"))));
}

#[test]
fn a_metric_fires_after_holding_out_of_range_for_its_duration() {
    let mut w = World::new(spec(None, Some("5m")));
    // (now, reading, fires)
    let table = [
        ("2026-12-01T01:00:00Z", Some(Reading::Value(0.1)), None),
        ("2026-12-01T01:01:00Z", Some(Reading::Value(0.3)), None),
        ("2026-12-01T01:04:00Z", Some(Reading::Value(0.3)), None),
        // A dip back into range resets the clock.
        ("2026-12-01T01:05:00Z", Some(Reading::Value(0.19)), None),
        ("2026-12-01T01:06:00Z", Some(Reading::Value(0.31)), None),
        // A failed read keeps the clock running; no reading at all too.
        ("2026-12-01T01:08:00Z", Some(Reading::Error("prometheus down".into())), None),
        ("2026-12-01T01:10:00Z", None, None),
        ("2026-12-01T01:11:00Z", Some(Reading::Value(0.33)), Some("drift")),
        // Consumed: holding out of range again needs another 5 minutes (and the cooldown).
        ("2026-12-01T01:12:00Z", Some(Reading::Value(0.33)), None),
    ];
    for (now, reading, fires) in table {
        let d = w.at(now, reading, false);
        assert_eq!(fired(&d), fires, "at {now}: {:?}", d.metric_triggers);
    }
    assert_eq!(w.status.metric_triggers[0].value, Some(0.33));
}

#[test]
fn the_first_seen_time_survives_a_restart_because_it_lives_in_status() {
    let mut w = World::new(spec(None, Some("30m")));
    w.at("2026-12-01T01:00:00Z", Some(Reading::Value(0.5)), false);
    let saved = w.status.clone();
    // A new operator process reads the same status.
    let mut restarted = World::new(w.spec.clone());
    restarted.status = saved;
    assert_eq!(fired(&restarted.at("2026-12-01T01:29:00Z", Some(Reading::Value(0.5)), false)), None);
    assert_eq!(fired(&restarted.at("2026-12-01T01:30:00Z", Some(Reading::Value(0.5)), false)), Some("drift"));
}

#[test]
fn no_series_means_the_trigger_cannot_fire_and_says_so() {
    let mut w = World::new(spec(None, None));
    w.spec.triggers.as_mut().unwrap().metrics = spec(None, Some("0s")).triggers.unwrap().metrics;
    let d = w.at("2026-12-01T01:00:00Z", Some(Reading::NoData), false);
    assert_eq!(fired(&d), None);
    assert!(d.metric_triggers[0].message.as_deref().unwrap().contains("no series"));
}

#[test]
fn several_triggers_at_once_start_one_run() {
    let mut w = World::new(spec(Some("0 * * * *"), Some("0s")));
    let d = w.at("2026-12-01T01:00:00Z", Some(Reading::Value(0.9)), true);
    let f = d.fire.unwrap();
    assert_eq!(f.reason, "manual");
    assert_eq!(f.also, vec!["schedule".to_string(), "drift".to_string()]);
    // All three were consumed: nothing fires right after.
    w.spec.cooldown = Some(Duration::new("1s"));
    assert_eq!(fired(&w.at("2026-12-01T01:00:02Z", None, false)), None);
}

#[test]
fn the_cooldown_drops_slots_and_requests_and_holds_metrics() {
    let mut w = World::new(spec(Some("5 * * * *"), Some("0s")));
    assert_eq!(fired(&w.at("2026-12-01T01:00:00Z", None, true)), Some("manual"));
    // A slot in the cooldown is dropped with an Event, and not fired later.
    let d = w.at("2026-12-01T01:05:30Z", None, false);
    assert_eq!(fired(&d), None);
    assert!(d.events[0].message.contains("trigger schedule did not start a run: the cooldown"), "{:?}", d.events);
    // A request too.
    let d = w.at("2026-12-01T01:20:00Z", None, true);
    assert_eq!((fired(&d), d.events[0].warning), (None, true));
    // A metric out of range in the cooldown fires when it ends (01:00 + 1h), if still out.
    assert_eq!(fired(&w.at("2026-12-01T01:30:01Z", Some(Reading::Value(0.5)), false)), None);
    assert_eq!(fired(&w.at("2026-12-01T02:00:00Z", Some(Reading::Value(0.5)), false)), Some("drift"));
}

#[test]
fn concurrency_policy_forbid_drops_and_replace_replaces() {
    let mut w = World::new(spec(None, Some("0s")));
    w.spec.cooldown = Some(Duration::new("1s"));
    w.running = Some("r-0001".into());
    let d = w.at("2026-12-01T01:00:00Z", Some(Reading::Value(0.5)), false);
    assert_eq!(fired(&d), None);
    assert!(d.events[0].message.contains("run r-0001 is under way and concurrencyPolicy is Forbid"));
    assert_eq!(d.metric_triggers[0].out_of_range_since, None, "the firing was dropped, not deferred");

    w.spec.concurrency_policy = Some(ConcurrencyPolicy::Replace);
    let d = w.at("2026-12-01T01:00:05Z", Some(Reading::Value(0.5)), false);
    assert_eq!((fired(&d), d.replace), (Some("drift"), true));
}

#[test]
fn without_triggers_nothing_fires_until_asked() {
    let mut w = World::new(fixtures::retrain_policy("r").spec);
    assert_eq!(fired(&w.at("2026-12-01T01:00:00Z", None, false)), None);
    assert_eq!(w.status.next_scheduled, None);
    assert_eq!(fired(&w.at("2026-12-01T01:00:01Z", None, true)), Some("manual"));
}
