//! The router's Prometheus metrics, all prefixed `champion_router_`. Labels are bounded: `variant` and `shadow` are
//! names from the configuration, `class` is a status class (`1xx`..`5xx`), the other labels have fixed value sets.

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds: fine below a millisecond, where a proxy's cost shows.
const LATENCY_BUCKETS: &[f64] =
    &[0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Buckets for the absolute difference between a live and a shadow number.
const DIFFERENCE_BUCKETS: &[f64] = &[0.0, 1e-6, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 10.0, 100.0];

/// Every metric the router exports, registered in one registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_failures: IntCounterVec,
    /// Copies sent to shadows, by shadow.
    pub mirrored: IntCounterVec,
    /// Copies not sent, by shadow and reason (`concurrency`, `shadow_down`, `body_size`, `incomplete_body`).
    pub mirror_dropped: IntCounterVec,
    /// Shadow answers by shadow and class (`2xx`..`5xx`, or `failed` for no answer).
    pub shadow_responses: IntCounterVec,
    shadow_comparisons: IntCounterVec,
    shadow_agreement: GaugeVec,
    shadow_difference: HistogramVec,
    feedback: IntCounterVec,
    /// Feedback not joined with a prediction, by reason (`not_in_window`, `duplicate`, `invalid`).
    pub feedback_unmatched: IntCounterVec,
    feedback_accuracy: GaugeVec,
    feedback_reward_sum: GaugeVec,
    feedback_reward_count: IntCounterVec,
    /// Prediction log lines dropped because the writer fell behind.
    pub log_dropped: IntCounter,
    /// Configuration loads by result (`ok`, `error`).
    pub config_reloads: IntCounterVec,
    /// 1 when the configuration file's current content is valid and serving, 0 when the last good one still serves.
    pub config_valid: IntGauge,
}

/// The per-variant series of the live path, looked up once per configuration so a request only touches atomics.
#[derive(Clone)]
pub struct VariantMetrics {
    by_class: [IntCounter; 5],
    duration: Histogram,
    unreachable: IntCounter,
    timeout: IntCounter,
}

impl VariantMetrics {
    /// Counts one answered request (also the router's own 502/504 answers).
    pub fn observe(&self, status: u16, seconds: f64) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].inc();
        self.duration.observe(seconds);
    }

    /// Counts a live backend that could not be reached (`timeout` false) or did not answer in time.
    pub fn upstream_failure(&self, timeout: bool) {
        if timeout { self.timeout.inc() } else { self.unreachable.inc() }
    }
}

/// How a shadow's answer compared with the live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Same answer.
    Agree,
    /// A different answer.
    Disagree,
    /// The shadow gave no usable answer (error, timeout, non-2xx, too large).
    ShadowFailed,
    /// The shadow's answer was not JSON with a comparable value at the path.
    ShadowUnusable,
    /// The live answer could not be compared; not counted in the agreement.
    LiveUnusable,
}

impl Comparison {
    /// The `outcome` label value.
    pub fn label(self) -> &'static str {
        match self {
            Comparison::Agree => "agree",
            Comparison::Disagree => "disagree",
            Comparison::ShadowFailed => "shadow_failed",
            Comparison::ShadowUnusable => "shadow_unusable",
            Comparison::LiveUnusable => "live_unusable",
        }
    }
}

/// How one feedback item scored against its prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scored {
    /// The label equals the predicted label.
    Correct,
    /// The label differs from the predicted label.
    Incorrect,
    /// A label for a prediction whose label could not be read (no label path, or the answer had none).
    Unscored,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric definition");
    r.register(Box::new(c.clone())).expect("metric registered once");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("metric definition");
    r.register(Box::new(g.clone())).expect("metric registered once");
    g
}

fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let h =
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels).expect("metric definition");
    r.register(Box::new(h.clone())).expect("metric registered once");
    h
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let log_dropped = IntCounter::new(
            "champion_router_log_dropped_total",
            "Prediction log lines dropped because the log writer fell behind",
        )
        .expect("metric definition");
        r.register(Box::new(log_dropped.clone())).expect("metric registered once");
        let config_valid = IntGauge::new(
            "champion_router_config_valid",
            "1 when the configuration file is valid and serving; 0 when it is invalid and the last good configuration serves",
        )
        .expect("metric definition");
        r.register(Box::new(config_valid.clone())).expect("metric registered once");
        Metrics {
            requests: counter_vec(
                &r,
                "champion_router_requests_total",
                "Live requests answered, by variant and status class",
                &["variant", "class"],
            ),
            duration: histogram_vec(
                &r,
                "champion_router_request_duration_seconds",
                "Time from a request's arrival to the live response headers, by variant",
                &["variant"],
                LATENCY_BUCKETS,
            ),
            upstream_failures: counter_vec(
                &r,
                "champion_router_upstream_failures_total",
                "Live backends that could not be reached (answered 502) or timed out (504), by variant",
                &["variant", "reason"],
            ),
            mirrored: counter_vec(
                &r,
                "champion_router_mirror_requests_total",
                "Request copies sent to a shadow",
                &["shadow"],
            ),
            mirror_dropped: counter_vec(
                &r,
                "champion_router_mirror_dropped_total",
                "Request copies not sent to a shadow, by reason (concurrency, shadow_down, body_size, incomplete_body)",
                &["shadow", "reason"],
            ),
            shadow_responses: counter_vec(
                &r,
                "champion_router_shadow_responses_total",
                "Shadow answers by status class, or failed when there was none",
                &["shadow", "class"],
            ),
            shadow_comparisons: counter_vec(
                &r,
                "champion_router_shadow_comparisons_total",
                "Shadow answers compared with the live answer, by outcome",
                &["shadow", "outcome"],
            ),
            shadow_agreement: gauge_vec(
                &r,
                "champion_router_shadow_agreement_ratio",
                "agree / (agree + disagree + shadow_failed + shadow_unusable) since the router started",
                &["shadow"],
            ),
            shadow_difference: histogram_vec(
                &r,
                "champion_router_shadow_difference",
                "Largest absolute difference between live and shadow numbers (numeric comparison)",
                &["shadow"],
                DIFFERENCE_BUCKETS,
            ),
            feedback: counter_vec(
                &r,
                "champion_router_feedback_total",
                "Feedback joined with a prediction, by variant and outcome (correct, incorrect, unscored, reward)",
                &["variant", "outcome"],
            ),
            feedback_unmatched: counter_vec(
                &r,
                "champion_router_feedback_unmatched_total",
                "Feedback not joined, by reason (not_in_window, duplicate, invalid)",
                &["reason"],
            ),
            feedback_accuracy: gauge_vec(
                &r,
                "champion_router_feedback_accuracy_ratio",
                "correct / (correct + incorrect) labels since the router started, by variant",
                &["variant"],
            ),
            feedback_reward_sum: gauge_vec(
                &r,
                "champion_router_feedback_reward_sum",
                "Sum of the rewards received, by variant",
                &["variant"],
            ),
            feedback_reward_count: counter_vec(
                &r,
                "champion_router_feedback_reward_count",
                "Number of rewards received, by variant",
                &["variant"],
            ),
            config_reloads: counter_vec(
                &r,
                "champion_router_config_reloads_total",
                "Configuration loads, by result (ok, error)",
                &["result"],
            ),
            log_dropped,
            config_valid,
            registry: r,
        }
    }

    /// Creates a shadow's counters at zero, so that the first comparisons show as an increase (a
    /// counter that first appears at 5 has no increase in Prometheus).
    pub fn shadow(&self, name: &str) {
        for outcome in [
            Comparison::Agree,
            Comparison::Disagree,
            Comparison::ShadowFailed,
            Comparison::ShadowUnusable,
            Comparison::LiveUnusable,
        ] {
            self.shadow_comparisons.with_label_values(&[name, outcome.label()]);
        }
        for class in ["1xx", "2xx", "3xx", "4xx", "5xx", "failed"] {
            self.shadow_responses.with_label_values(&[name, class]);
        }
    }

    /// The series of one variant (its request and feedback counters created at zero, like a shadow's).
    pub fn variant(&self, name: &str) -> VariantMetrics {
        for outcome in ["correct", "incorrect", "unscored", "reward"] {
            self.feedback.with_label_values(&[name, outcome]);
        }
        let class = |c: &str| self.requests.with_label_values(&[name, c]);
        VariantMetrics {
            by_class: [class("1xx"), class("2xx"), class("3xx"), class("4xx"), class("5xx")],
            duration: self.duration.with_label_values(&[name]),
            unreachable: self.upstream_failures.with_label_values(&[name, "unreachable"]),
            timeout: self.upstream_failures.with_label_values(&[name, "timeout"]),
        }
    }

    /// Counts a comparison and refreshes the shadow's agreement ratio.
    pub fn compared(&self, shadow: &str, outcome: Comparison, difference: Option<f64>) {
        self.shadow_comparisons.with_label_values(&[shadow, outcome.label()]).inc();
        if let Some(d) = difference {
            self.shadow_difference.with_label_values(&[shadow]).observe(d);
        }
        let n = |o: Comparison| self.shadow_comparisons.with_label_values(&[shadow, o.label()]).get() as f64;
        let agree = n(Comparison::Agree);
        let total = agree + n(Comparison::Disagree) + n(Comparison::ShadowFailed) + n(Comparison::ShadowUnusable);
        if total > 0.0 {
            self.shadow_agreement.with_label_values(&[shadow]).set(agree / total);
        }
    }

    /// Counts a labelled feedback and refreshes the variant's accuracy.
    pub fn labelled(&self, variant: &str, scored: Scored) {
        let outcome = match scored {
            Scored::Correct => "correct",
            Scored::Incorrect => "incorrect",
            Scored::Unscored => "unscored",
        };
        self.feedback.with_label_values(&[variant, outcome]).inc();
        let correct = self.feedback.with_label_values(&[variant, "correct"]).get() as f64;
        let incorrect = self.feedback.with_label_values(&[variant, "incorrect"]).get() as f64;
        if correct + incorrect > 0.0 {
            self.feedback_accuracy.with_label_values(&[variant]).set(correct / (correct + incorrect));
        }
    }

    /// Counts a reward.
    pub fn rewarded(&self, variant: &str, reward: f64) {
        self.feedback.with_label_values(&[variant, "reward"]).inc();
        self.feedback_reward_sum.with_label_values(&[variant]).add(reward);
        self.feedback_reward_count.with_label_values(&[variant]).inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
