//! The built-in metrics read from the router's own `/metrics` endpoints, for operators without a Prometheus
//! (no provider named for the built-in metrics): each router pod's counters are read at every measurement,
//! and a metric is computed from their increase since a reading at least one window old, summed over the
//! pods. A counter that went down (the pod restarted) counts from zero. Pure: the reconciler fetches the
//! text and keeps the [`History`].

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::api::common::BuiltinMetric;

/// One pod's series: the canonical series key (`name{a="x",b="y"}`, labels sorted) → value.
pub type Series = BTreeMap<String, f64>;

/// The canonical key of a series.
pub fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut l: Vec<(&str, &str)> = labels.to_vec();
    l.sort();
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// The `champion_router_*` samples of a text exposition (comments and other metrics skipped).
pub fn parse(text: &str) -> Series {
    let mut out = Series::new();
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with("champion_router_") {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some((s, v)) => (s.trim(), v),
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else { continue };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let pairs: Vec<(&str, &str)> = labels
            .split(',')
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k.trim(), v.trim().trim_matches('"')))
            })
            .collect();
        out.insert(key(name, &pairs), value);
    }
    out
}

/// All router pods' series at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// When it was read.
    pub at: jiff::Timestamp,
    /// Per pod name.
    pub pods: BTreeMap<String, Series>,
}

/// The increase of every series from `old` to `new`, per pod (a pod that is new, or whose counter went
/// down, counts from zero), summed over the pods of `new`.
pub fn increase(old: &Reading, new: &Reading) -> Series {
    let mut out = Series::new();
    for (pod, series) in &new.pods {
        let before = old.pods.get(pod);
        for (k, v) in series {
            let was = before.and_then(|b| b.get(k)).copied().unwrap_or(0.0);
            let d = if *v >= was { v - was } else { *v };
            *out.entry(k.clone()).or_default() += d;
        }
    }
    out
}

/// The readings of one ModelDeployment's routers, newest last, kept for `keep`.
#[derive(Debug, Clone, Default)]
pub struct History {
    readings: VecDeque<Reading>,
}

impl History {
    /// Adds a reading and forgets those older than `keep` before it (one older one stays as a baseline).
    pub fn push(&mut self, reading: Reading, keep: Duration) {
        let cutoff = reading.at.checked_sub(jiff::SignedDuration::try_from(keep).unwrap_or_default()).ok();
        self.readings.push_back(reading);
        while self.readings.len() > 2 && cutoff.is_some_and(|c| self.readings[1].at <= c) {
            self.readings.pop_front();
        }
    }

    /// The newest reading at least `window` before `now`, else the oldest one before `now` (a shorter
    /// window is better than none); `None` without an earlier reading.
    pub fn baseline(&self, now: jiff::Timestamp, window: Duration) -> Option<&Reading> {
        let from = now.checked_sub(jiff::SignedDuration::try_from(window).unwrap_or_default()).ok()?;
        self.readings.iter().rev().find(|r| r.at <= from).or_else(|| self.readings.iter().find(|r| r.at < now))
    }
}

/// The value of `metric` from the increases `d`, for the live variant `variant` and the shadow `shadow`;
/// `None` without data (nothing counted).
pub fn value(metric: BuiltinMetric, d: &Series, variant: &str, shadow: &str) -> Option<f64> {
    let sum = |name: &str, label: &str, value: &str, other: Option<(&str, &[&str])>| -> f64 {
        d.iter()
            .filter(|(k, _)| {
                k.starts_with(&format!("{name}{{"))
                    && k.contains(&format!("{label}=\"{value}\""))
                    && other.is_none_or(|(l, vs)| vs.iter().any(|v| k.contains(&format!("{l}=\"{v}\""))))
            })
            .map(|(_, v)| v)
            .sum()
    };
    let ratio = |num: f64, den: f64| (den > 0.0).then(|| num / den);
    match metric {
        BuiltinMetric::ErrorRate => {
            let requests = "champion_router_requests_total";
            let shadows = "champion_router_shadow_responses_total";
            let errors = sum(requests, "variant", variant, Some(("class", &["5xx"])))
                + sum(shadows, "shadow", shadow, Some(("class", &["5xx", "failed"])));
            ratio(errors, sum(requests, "variant", variant, None) + sum(shadows, "shadow", shadow, None))
        }
        BuiltinMetric::ShadowAgreement => {
            let c = "champion_router_shadow_comparisons_total";
            let counted = ["agree", "disagree", "shadow_failed", "shadow_unusable"];
            ratio(
                sum(c, "shadow", shadow, Some(("outcome", &["agree"]))),
                sum(c, "shadow", shadow, Some(("outcome", &counted))),
            )
        }
        BuiltinMetric::FeedbackAccuracy => {
            let f = "champion_router_feedback_total";
            let correct = sum(f, "variant", variant, Some(("outcome", &["correct"])));
            ratio(correct, correct + sum(f, "variant", variant, Some(("outcome", &["incorrect"]))))
        }
        BuiltinMetric::LatencyP99 => quantile(0.99, d, variant),
    }
}

/// The `q` quantile of the live latency histogram's increases, interpolated within the bucket as
/// Prometheus's `histogram_quantile` does.
fn quantile(q: f64, d: &Series, variant: &str) -> Option<f64> {
    let prefix = "champion_router_request_duration_seconds_bucket{";
    let mut buckets: Vec<(f64, f64)> = d
        .iter()
        .filter(|(k, _)| k.starts_with(prefix) && k.contains(&format!("variant=\"{variant}\"")))
        .filter_map(|(k, v)| {
            let le = k.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((bound, *v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (bound, count) in &buckets {
        if *count >= rank {
            if bound.is_infinite() {
                return Some(lower);
            }
            let inside = count - below;
            return Some(if inside > 0.0 { lower + (bound - lower) * (rank - below) / inside } else { *bound });
        }
        (lower, below) = (*bound, *count);
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = r#"# HELP champion_router_requests_total Live requests
# TYPE champion_router_requests_total counter
champion_router_requests_total{class="2xx",variant="candidate"} 90
champion_router_requests_total{class="5xx",variant="candidate"} 10
champion_router_requests_total{class="2xx",variant="stable"} 900
champion_router_shadow_comparisons_total{outcome="agree",shadow="mirror"} 70
champion_router_shadow_comparisons_total{outcome="disagree",shadow="mirror"} 30
champion_router_shadow_comparisons_total{outcome="live_unusable",shadow="mirror"} 5
champion_router_request_duration_seconds_bucket{le="0.01",variant="candidate"} 50
champion_router_request_duration_seconds_bucket{le="0.1",variant="candidate"} 100
champion_router_request_duration_seconds_bucket{le="+Inf",variant="candidate"} 100
process_cpu_seconds_total 3
"#;

    fn reading(at: i64, pods: &[(&str, &str)]) -> Reading {
        Reading {
            at: jiff::Timestamp::from_second(1_800_000_000 + at).unwrap(),
            pods: pods.iter().map(|(p, t)| (p.to_string(), parse(t))).collect(),
        }
    }

    #[test]
    fn parses_and_computes_each_metric_from_increases() {
        let s = parse(A);
        assert_eq!(s[&key("champion_router_requests_total", &[("variant", "candidate"), ("class", "5xx")])], 10.0);
        assert!(!s.keys().any(|k| k.starts_with("process_")));
        let d = increase(&reading(0, &[]), &reading(60, &[("p1", A)]));
        assert_eq!(value(BuiltinMetric::ErrorRate, &d, "candidate", "mirror"), Some(0.1));
        assert_eq!(
            value(BuiltinMetric::ShadowAgreement, &d, "candidate", "mirror"),
            Some(0.7),
            "live_unusable not counted"
        );
        assert_eq!(value(BuiltinMetric::FeedbackAccuracy, &d, "candidate", "mirror"), None, "no feedback: no data");
        let p99 = value(BuiltinMetric::LatencyP99, &d, "candidate", "mirror").unwrap();
        assert!((p99 - (0.01 + 0.09 * 49.0 / 50.0)).abs() < 1e-12, "{p99}");
    }

    #[test]
    fn increases_sum_pods_and_a_restarted_pod_counts_from_zero() {
        let later = A.replace("} 10\n", "} 14\n").replace("\"candidate\"} 90", "\"candidate\"} 96");
        let old = reading(0, &[("p1", A), ("p2", A)]);
        // p1 grew by 6 ok and 4 errors; p2 restarted (its counters are lower): everything it has counts.
        let restarted = "champion_router_requests_total{class=\"5xx\",variant=\"candidate\"} 1\nchampion_router_requests_total{class=\"2xx\",variant=\"candidate\"} 1\n";
        let d = increase(&old, &reading(60, &[("p1", &later), ("p2", restarted)]));
        assert_eq!(value(BuiltinMetric::ErrorRate, &d, "candidate", "mirror"), Some(5.0 / 12.0));
    }

    #[test]
    fn the_baseline_is_a_window_old_and_history_is_bounded() {
        let mut h = History::default();
        for t in [0, 10, 20, 30, 40] {
            h.push(reading(t, &[]), Duration::from_secs(25));
        }
        let now = jiff::Timestamp::from_second(1_800_000_045).unwrap();
        assert_eq!(h.baseline(now, Duration::from_secs(20)).unwrap().at.as_second(), 1_800_000_020);
        // Shorter history than the window: the oldest kept.
        let oldest = h.baseline(now, Duration::from_secs(600)).unwrap().at.as_second();
        assert_eq!(oldest, 1_800_000_010, "readings older than 25 s before the last are dropped but one");
        assert!(History::default().baseline(now, Duration::from_secs(1)).is_none());
    }
}
