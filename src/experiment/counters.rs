//! Cumulative counters read per series, turned into counts since an experiment started (SPEC §1):
//! baseline-subtracted per series, with counter resets handled per series, and only then summed. Summing
//! first and differencing second breaks when one pod restarts; `increase()` over the whole window
//! extrapolates and can make successes exceed trials.
//!
//! The state is kept in status (numbers only), so an operator restart keeps every baseline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most series one counter keeps track of; beyond it, the series not seen the longest are folded into
/// [`Counter::retired`] (their counts stay, their baselines go).
pub const MAX_SERIES: usize = 64;

/// One series of a counter: its last value and what it added since the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    /// The series' labels, as `name="value"` pairs joined with commas (sorted), or `{}` for none.
    pub labels: String,
    /// The value at the last read.
    pub last: f64,
    /// What the series added since the experiment started.
    pub added: f64,
    /// The number of the read (see [`Counter::reads`]) that last saw it.
    pub seen: u64,
}

/// A counter summed over its series since the start.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counter {
    /// The reads taken in; the first sets the baselines.
    pub reads: u64,
    /// The series, by labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Series>,
    /// What series no longer tracked added (see [`MAX_SERIES`]).
    #[serde(default)]
    pub retired: f64,
    /// Counter resets seen (a value lower than the one before).
    #[serde(default)]
    pub resets: u64,
}

/// Why a read of a counter cannot be taken in; nothing of it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CounterError {
    /// A value that a counter cannot have.
    #[error("series {labels} has the value {value}, which a counter cannot have (it must be a finite number ≥ 0)")]
    NotACounter {
        /// The series' labels.
        labels: String,
        /// The value.
        value: f64,
    },
    /// The same series twice in one read.
    #[error("series {0} appears twice in one answer")]
    Duplicate(String),
}

impl Counter {
    /// What the counter added since the start, over all its series.
    pub fn total(&self) -> f64 {
        self.retired + self.series.iter().map(|s| s.added).sum::<f64>()
    }

    /// Takes in one read: `(labels, value)` per series. At the first read every series sets its baseline
    /// (adds 0); a series first seen later started after the experiment, so all of its value counts; a value
    /// lower than the last is a reset, and the value after the reset counts. A read with a bad value changes
    /// nothing.
    pub fn take(&mut self, read: &[(String, f64)]) -> Result<(), CounterError> {
        let mut seen = std::collections::BTreeSet::new();
        for (labels, value) in read {
            if !value.is_finite() || *value < 0.0 {
                return Err(CounterError::NotACounter { labels: labels.clone(), value: *value });
            }
            if !seen.insert(labels.as_str()) {
                return Err(CounterError::Duplicate(labels.clone()));
            }
        }
        let first = self.reads == 0;
        self.reads += 1;
        let now = self.reads;
        for (labels, value) in read {
            match self.series.iter_mut().find(|s| &s.labels == labels) {
                Some(s) => {
                    if *value < s.last {
                        self.resets += 1;
                        s.added += value;
                    } else {
                        s.added += value - s.last;
                    }
                    s.last = *value;
                    s.seen = now;
                }
                None => self.series.push(Series {
                    labels: labels.clone(),
                    last: *value,
                    added: if first { 0.0 } else { *value },
                    seen: now,
                }),
            }
        }
        if self.series.len() > MAX_SERIES {
            self.series.sort_by_key(|s| std::cmp::Reverse(s.seen));
            for gone in self.series.split_off(MAX_SERIES) {
                self.retired += gone.added;
            }
            self.series.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        Ok(())
    }
}

/// The labels of a series as one sorted string (`a="1",b="2"`), `{}` when it has none.
pub fn labels_key(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "{}".to_string();
    }
    labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(l, v)| (l.to_string(), *v)).collect()
    }

    #[test]
    fn counts_since_the_start_per_series_then_sums() {
        struct Case {
            name: &'static str,
            reads: Vec<Vec<(&'static str, f64)>>,
            total: f64,
            resets: u64,
        }
        let cases = [
            Case { name: "baseline only", reads: vec![vec![("a", 100.0), ("b", 50.0)]], total: 0.0, resets: 0 },
            Case {
                name: "growth",
                reads: vec![vec![("a", 100.0), ("b", 50.0)], vec![("a", 130.0), ("b", 55.0)]],
                total: 35.0,
                resets: 0,
            },
            Case {
                // Summing first would see 130+55=185 then 10+60=70: a drop of 115 for the whole variant.
                name: "one pod restarts: only its series resets",
                reads: vec![
                    vec![("a", 100.0), ("b", 50.0)],
                    vec![("a", 130.0), ("b", 55.0)],
                    vec![("a", 10.0), ("b", 60.0)],
                ],
                total: 30.0 + 10.0 + 5.0 + 5.0,
                resets: 1,
            },
            Case {
                name: "a new pod after the start counts all of its value",
                reads: vec![vec![("a", 100.0)], vec![("a", 110.0), ("c", 7.0)]],
                total: 17.0,
                resets: 0,
            },
            Case {
                name: "a series that leaves keeps what it added",
                reads: vec![vec![("a", 100.0), ("b", 1.0)], vec![("a", 120.0), ("b", 3.0)], vec![("b", 4.0)]],
                total: 23.0,
                resets: 0,
            },
            Case { name: "no series at all", reads: vec![vec![], vec![]], total: 0.0, resets: 0 },
        ];
        for c in cases {
            let mut counter = Counter::default();
            for r in &c.reads {
                counter.take(&read(r)).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            }
            assert_eq!(counter.total(), c.total, "{}", c.name);
            assert_eq!(counter.resets, c.resets, "{}", c.name);
        }
    }

    #[test]
    fn a_bad_read_changes_nothing() {
        let mut counter = Counter::default();
        counter.take(&read(&[("a", 10.0)])).unwrap();
        counter.take(&read(&[("a", 15.0)])).unwrap();
        let before = counter.clone();
        for bad in
            [vec![("a", -1.0)], vec![("a", f64::NAN)], vec![("a", f64::INFINITY)], vec![("a", 20.0), ("a", 21.0)]]
        {
            assert!(counter.take(&read(&bad)).is_err(), "{bad:?}");
            assert_eq!(counter, before, "{bad:?}");
        }
    }

    #[test]
    fn many_series_fold_the_oldest_and_keep_their_counts() {
        let mut counter = Counter::default();
        let first: Vec<(String, f64)> = (0..MAX_SERIES).map(|i| (format!("pod{i:03}"), 0.0)).collect();
        counter.take(&first).unwrap();
        let grown: Vec<(String, f64)> = (0..MAX_SERIES).map(|i| (format!("pod{i:03}"), 1.0)).collect();
        counter.take(&grown).unwrap();
        // New pods replace the old ones: the old ones' counts stay in `retired`.
        let replaced: Vec<(String, f64)> = (0..10).map(|i| (format!("new{i}"), 2.0)).collect();
        counter.take(&replaced).unwrap();
        assert_eq!(counter.series.len(), MAX_SERIES);
        assert_eq!(counter.total(), MAX_SERIES as f64 + 20.0);
        assert_eq!(counter.retired, 10.0, "ten of the old pods' series were folded");
    }

    #[test]
    fn labels_keys_are_sorted_and_quoted() {
        let l = BTreeMap::from([("pod".to_string(), "b".to_string()), ("app".to_string(), "x\"y".to_string())]);
        assert_eq!(labels_key(&l), r#"app="x\"y",pod="b""#);
        assert_eq!(labels_key(&BTreeMap::new()), "{}");
    }
}
