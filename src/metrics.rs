//! The operator's own Prometheus metrics, all prefixed `champion_`, with bounded label sets: kinds,
//! error categories and phases are fixed lists; per-object series exist only for ModelDeployments and
//! are removed when the object goes away.

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
        for c in [
            Box::new(reconciliations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(invalid_specs.clone()),
            Box::new(candidate_weight.clone()),
            Box::new(phase.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Self { registry, reconciliations, failures, duration, invalid_specs, candidate_weight, phase }
    }

    /// Removes the per-object series (weight, phase, invalid spec) of ModelDeployments for which `exists`
    /// says no, so deleted objects do not leave series behind.
    pub fn prune_model_deployments(&self, exists: impl Fn(&str, &str) -> bool) {
        use prometheus::core::Collector;
        let label = |m: &prometheus::proto::Metric, name: &str| {
            m.get_label().iter().find(|l| l.name() == name).map(|l| l.value().to_string()).unwrap_or_default()
        };
        for family in self.candidate_weight.collect() {
            for m in family.get_metric() {
                let (ns, name) = (label(m, "namespace"), label(m, "name"));
                if !exists(&ns, &name) {
                    let _ = self.candidate_weight.remove_label_values(&[&ns, &name]);
                    let _ = self.invalid_specs.remove_label_values(&["ModelDeployment", &ns, &name]);
                }
            }
        }
        for family in self.phase.collect() {
            for m in family.get_metric() {
                let (ns, name, phase) = (label(m, "namespace"), label(m, "name"), label(m, "phase"));
                if !exists(&ns, &name) {
                    let _ = self.phase.remove_label_values(&[&ns, &name, &phase]);
                }
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
        let text = m.render();
        assert!(text.contains("champion_reconciliations_total{kind=\"ModelDeployment\"} 1"), "{text}");
        assert!(text.contains("champion_reconcile_failures_total{category=\"kube\",kind=\"ModelDeployment\"} 1"));
    }

    #[test]
    fn prunes_series_of_deleted_model_deployments() {
        let m = Metrics::new();
        for name in ["kept", "gone"] {
            m.candidate_weight.with_label_values(&["ml", name]).set(10);
            m.phase.with_label_values(&["ml", name, "Progressing"]).set(1);
            m.phase.with_label_values(&["ml", name, "Healthy"]).set(0);
        }
        m.prune_model_deployments(|ns, name| ns == "ml" && name == "kept");
        let text = m.render();
        assert!(text.contains("name=\"kept\""), "{text}");
        assert!(!text.contains("name=\"gone\""), "{text}");
    }
}
