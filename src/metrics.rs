//! The operator's own Prometheus metrics, all prefixed `champion_`, with bounded label sets: kinds,
//! error categories and phases are fixed lists; per-object series (`champion_invalid_spec` of every
//! kind, the weight and phase of ModelDeployments) are removed when the object goes away, by the
//! controller whose cache holds it ([`Metrics::prune`]).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Every metric the operator exports.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` serves.
    pub registry: Registry,
    /// Reconciliations run, by kind.
    pub reconciliations: IntCounterVec,
    /// Failed reconciliations, by kind and error category.
    pub failures: IntCounterVec,
    /// Reconcile duration, by kind.
    pub duration: HistogramVec,
    /// Objects whose spec is invalid, by kind (set on each reconcile of the object).
    pub invalid_specs: IntGaugeVec,
    /// Candidate traffic weight in percent, per ModelDeployment.
    pub candidate_weight: IntGaugeVec,
    /// 1 for the phase each ModelDeployment is in, 0 for the others.
    pub phase: IntGaugeVec,
    /// Experiments that ended, by outcome (`Concluded`, `Inconclusive`, `Aborted`) and reason.
    pub experiment_outcomes: IntCounterVec,
    /// Retraining runs that ended, by trigger (`schedule`, `manual`, a metric trigger's name) and outcome
    /// (`Promoted`, `Evaluated`, `Rejected`, `Failed`, `Cancelled`).
    pub retrain_runs: IntCounterVec,
}

impl Metrics {
    /// Registers all metrics in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let reconciliations =
            IntCounterVec::new(Opts::new("champion_reconciliations_total", "Reconciliations run, by kind"), &["kind"])
                .expect("valid metric");
        let failures = IntCounterVec::new(
            Opts::new("champion_reconcile_failures_total", "Failed reconciliations, by kind and error category"),
            &["kind", "category"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new("champion_reconcile_duration_seconds", "Reconcile duration, by kind")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["kind"],
        )
        .expect("valid metric");
        let invalid_specs = IntGaugeVec::new(
            Opts::new("champion_invalid_spec", "1 when an object's spec is invalid, by kind, namespace and name"),
            &["kind", "namespace", "name"],
        )
        .expect("valid metric");
        let candidate_weight = IntGaugeVec::new(
            Opts::new("champion_candidate_weight_percent", "Live traffic on the candidate, per ModelDeployment"),
            &["namespace", "name"],
        )
        .expect("valid metric");
        let phase = IntGaugeVec::new(
            Opts::new("champion_modeldeployment_phase", "1 for the phase a ModelDeployment is in"),
            &["namespace", "name", "phase"],
        )
        .expect("valid metric");
        let experiment_outcomes = IntCounterVec::new(
            Opts::new("champion_experiment_outcomes_total", "Experiments that ended, by outcome and reason"),
            &["outcome", "reason"],
        )
        .expect("valid metric");
        let retrain_runs = IntCounterVec::new(
            Opts::new("champion_retrain_runs_total", "Retraining runs that ended, by trigger and outcome"),
            &["trigger", "outcome"],
        )
        .expect("valid metric");
        for c in [
            Box::new(reconciliations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(experiment_outcomes.clone()),
            Box::new(retrain_runs.clone()),
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(invalid_specs.clone()),
            Box::new(candidate_weight.clone()),
            Box::new(phase.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Self {
            registry,
            reconciliations,
            failures,
            duration,
            invalid_specs,
            candidate_weight,
            phase,
            experiment_outcomes,
            retrain_runs,
        }
    }

    /// Removes the per-object series of objects of `kind` in `scope` (one namespace, or all when `None`)
    /// for which `exists(namespace, name)` says no, so deleted objects leave no series behind. Series of
    /// other kinds and of namespaces outside `scope` are left alone: each controller prunes what its
    /// own cache can answer for. `champion_invalid_spec` is pruned for every kind, the weight and phase
    /// series for ModelDeployments.
    pub fn prune(&self, kind: &str, scope: Option<&str>, exists: impl Fn(&str, &str) -> bool) {
        let gone = |ns: &str, name: &str| scope.is_none_or(|s| s == ns) && !exists(ns, name);
        for labels in series_labels(&self.invalid_specs) {
            let (k, ns, name) = (label(&labels, "kind"), label(&labels, "namespace"), label(&labels, "name"));
            if k == kind && gone(ns, name) {
                let _ = self.invalid_specs.remove_label_values(&[k, ns, name]);
            }
        }
        if kind != MODEL_DEPLOYMENT {
            return;
        }
        for labels in series_labels(&self.candidate_weight) {
            let (ns, name) = (label(&labels, "namespace"), label(&labels, "name"));
            if gone(ns, name) {
                let _ = self.candidate_weight.remove_label_values(&[ns, name]);
            }
        }
        for labels in series_labels(&self.phase) {
            let (ns, name, phase) = (label(&labels, "namespace"), label(&labels, "name"), label(&labels, "phase"));
            if gone(ns, name) {
                let _ = self.phase.remove_label_values(&[ns, name, phase]);
            }
        }
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out).unwrap_or_default();
        out
    }
}

/// The kind label of ModelDeployment series.
const MODEL_DEPLOYMENT: &str = "ModelDeployment";

/// The label pairs of every series of a metric vector.
fn series_labels(collector: &impl prometheus::core::Collector) -> Vec<Vec<(String, String)>> {
    collector
        .collect()
        .iter()
        .flat_map(|family| family.get_metric().iter())
        .map(|m| m.get_label().iter().map(|l| (l.name().to_string(), l.value().to_string())).collect())
        .collect()
}

/// The value of label `name` in `labels` (empty when absent).
fn label<'a>(labels: &'a [(String, String)], name: &str) -> &'a str {
    labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_default()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics() {
        let m = Metrics::new();
        m.reconciliations.with_label_values(&["ModelDeployment"]).inc();
        m.failures.with_label_values(&["ModelDeployment", "kube"]).inc();
        m.experiment_outcomes.with_label_values(&["Concluded", "WinnerDecided"]).inc();
        let text = m.render();
        assert!(
            text.contains("champion_experiment_outcomes_total{outcome=\"Concluded\",reason=\"WinnerDecided\"} 1"),
            "{text}"
        );
        assert!(text.contains("champion_reconciliations_total{kind=\"ModelDeployment\"} 1"), "{text}");
        assert!(text.contains("champion_reconcile_failures_total{category=\"kube\",kind=\"ModelDeployment\"} 1"));
    }

    /// Every per-object series as `metric{kind/namespace/name}` lines, sorted, for comparisons.
    fn per_object_series(m: &Metrics) -> Vec<String> {
        let mut out = Vec::new();
        for (metric, labels) in [
            ("invalid", series_labels(&m.invalid_specs)),
            ("weight", series_labels(&m.candidate_weight)),
            ("phase", series_labels(&m.phase)),
        ] {
            for l in labels {
                let kind = if metric == "invalid" { label(&l, "kind") } else { MODEL_DEPLOYMENT };
                out.push(format!("{metric} {kind}/{}/{}", label(&l, "namespace"), label(&l, "name")));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn prunes_only_deleted_objects_of_its_kind_and_scope() {
        let fresh = || {
            let m = Metrics::new();
            for ns in ["a", "b"] {
                for name in ["kept", "gone"] {
                    m.candidate_weight.with_label_values(&[ns, name]).set(10);
                    m.phase.with_label_values(&[ns, name, "Progressing"]).set(1);
                    m.phase.with_label_values(&[ns, name, "Healthy"]).set(0);
                    for kind in ["ModelDeployment", "Experiment", "RetrainPolicy"] {
                        m.invalid_specs.with_label_values(&[kind, ns, name]).set(0);
                    }
                }
            }
            // An invalid ModelDeployment never got a weight series; its invalid-spec series is pruned too.
            m.invalid_specs.with_label_values(&["ModelDeployment", "a", "never-valid"]).set(1);
            m
        };
        let kept = |_: &str, name: &str| name == "kept";
        // (kind, scope, series that must be gone afterwards; every other series must stay)
        let table: &[(&str, Option<&str>, &[&str])] = &[
            (
                "ModelDeployment",
                Some("a"),
                &[
                    "invalid ModelDeployment/a/gone",
                    "invalid ModelDeployment/a/never-valid",
                    "phase ModelDeployment/a/gone",
                    "weight ModelDeployment/a/gone",
                ],
            ),
            ("Experiment", Some("b"), &["invalid Experiment/b/gone"]),
            ("RetrainPolicy", None, &["invalid RetrainPolicy/a/gone", "invalid RetrainPolicy/b/gone"]),
        ];
        for (kind, scope, want_gone) in table {
            let m = fresh();
            let before = per_object_series(&m);
            m.prune(kind, *scope, kept);
            let after = per_object_series(&m);
            let gone: Vec<&str> = before.iter().filter(|s| !after.contains(s)).map(String::as_str).collect();
            assert_eq!(&gone, want_gone, "{kind} in {scope:?}");
        }
    }
}
