//! Benchmarks of the pure rollout decisions: how long one decision takes and how large the status it
//! produces is. Run with `cargo bench --bench rollout`; figures are recorded in docs/benchmarks.md.
//! A plain timing loop (no timing thresholds anywhere): the numbers are read, not asserted.

use std::hint::black_box;
use std::time::Instant;

use champion::api::model_deployment::{MetricResult, Verdict};
use champion::api::{ModelDeploymentSpec, ModelDeploymentStatus};
use champion::fixtures;
use champion::rollout::plan::{Input, decide};
use champion::rollout::revision;

fn time<F: FnMut()>(name: &str, iterations: u32, mut f: F) {
    for _ in 0..iterations / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per = started.elapsed() / iterations;
    println!("{name:<48} {:>10.2} µs/op  ({iterations} iterations)", per.as_secs_f64() * 1e6);
}

fn status_mid_rollout(spec: &ModelDeploymentSpec) -> ModelDeploymentStatus {
    let first = revision::target(spec).unwrap();
    let mut status = ModelDeploymentStatus::default();
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    for (version, ready) in [("1.0.0", 0), ("1.1.0", 1)] {
        let mut s = spec.clone();
        s.model = fixtures::model(version);
        let target = revision::target(&s).unwrap_or_else(|| first.clone());
        let d = decide(&Input {
            spec: &s,
            status: &status,
            target: &target,
            stable_ready: true,
            candidate_ready_replicas: ready,
            candidate_pods_problem: None,
            background: None,
            gate: None,
            request: None,
            retained: &[],
            now,
        });
        status = d.status;
    }
    status
}

fn main() {
    let md = fixtures::model_deployment("fraud");
    let mut spec = md.spec.clone();
    let status = status_mid_rollout(&spec);
    spec.model = fixtures::model("1.1.0");
    let target = revision::target(&spec).unwrap();
    let results: Vec<MetricResult> =
        vec![MetricResult { name: "error-rate".into(), value: Some(0.001), verdict: Verdict::Pass, message: None }];
    let now = jiff::Timestamp::from_second(1_800_000_100).unwrap();
    let input = Input {
        spec: &spec,
        status: &status,
        target: &target,
        stable_ready: true,
        candidate_ready_replicas: 1,
        candidate_pods_problem: None,
        background: Some(&results),
        gate: None,
        request: None,
        retained: &[],
        now,
    };
    time("decide (mid-rollout, with background results)", 200_000, || {
        black_box(decide(black_box(&input)));
    });
    time("revision hash of model + template", 200_000, || {
        black_box(revision::target(black_box(&spec)));
    });
    time("status comparison (differs, timestamps aside)", 200_000, || {
        black_box(champion::conditions::differs(Some(&status), black_box(&status)));
    });
    time("CRD generation (all three kinds)", 200, || {
        black_box(champion::crds::all());
    });
    let bytes = serde_json::to_vec(&decide(&input).status).unwrap().len();
    println!("{:<48} {bytes:>10} bytes", "status of a ModelDeployment mid-rollout (JSON)");
}
