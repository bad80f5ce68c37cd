//! Every CEL rule of the three CRDs, tested both ways through kube's client-side CEL check: a valid
//! fixture passes, and each change that breaks one rule fails with that rule's message.

use serde_json::json;

use super::experiment::{ExperimentMode, Variant};
use super::model_deployment::{GatewayApiTraffic, MirrorStep, ParentRef, Router, Step, Traffic};
use super::retrain_policy::{Parameter, ParameterValue, Search, SearchAlgorithm, SearchObjective};
use super::{Duration, ModelDeployment};
use crate::fixtures;

/// Runs the CRD's CEL rules; `Ok(())` or the joined error messages.
fn check<T: kube::CustomResourceExt + serde::Serialize>(obj: &T, old: Option<&T>) -> Result<(), String> {
    let res = match old {
        None => kube::core::cel::validate_cel(obj),
        Some(old) => kube::core::cel::validate_cel_update(obj, old),
    };
    res.map_err(|e| e.to_string())
}

fn expect(name: &str, got: Result<(), String>, want: Option<&str>) {
    match (got, want) {
        (Ok(()), None) => {}
        (Err(e), Some(msg)) => assert!(e.contains(msg), "{name}: error {e:?} does not contain {msg:?}"),
        (Ok(()), Some(msg)) => panic!("{name}: passed, but should fail with {msg:?}"),
        (Err(e), None) => panic!("{name}: should pass, failed with {e}"),
    }
}

fn gateway() -> Traffic {
    Traffic {
        router: Some(Router::GatewayApi),
        gateway_api: Some(GatewayApiTraffic {
            parent_refs: vec![ParentRef { name: "public".into(), ..ParentRef::default() }],
            hostnames: None,
        }),
        ..Traffic::default()
    }
}

fn mirror_step() -> Step {
    Step { mirror: Some(MirrorStep { percent: 100, duration: Duration::new("5m") }), ..Step::default() }
}

type MdCase = (&'static str, fn(&mut ModelDeployment), Option<&'static str>);

#[test]
fn the_name_limit_is_what_the_service_names_need() {
    let name = "a".repeat(super::model_deployment::MAX_NAME_LEN);
    assert_eq!(format!("{name}-candidate").len(), 63);
    assert!(format!("{name}-mirror").len() <= 63);
    assert_eq!(super::model_deployment::MAX_NAME_LEN, 53, "the CEL rule and its message say 53");
}

#[test]
fn model_deployment_rules() {
    let cases: &[MdCase] = &[
        ("valid fixture", |_| {}, None),
        (
            "name of the longest length that fits",
            |m| m.metadata.name = Some(format!("a{}", "b".repeat(super::model_deployment::MAX_NAME_LEN - 1))),
            None,
        ),
        (
            "name one character too long for <name>-candidate",
            |m| m.metadata.name = Some("a".repeat(super::model_deployment::MAX_NAME_LEN + 1)),
            Some("metadata.name must be at most 53 characters"),
        ),
        ("name with a dot", |m| m.metadata.name = Some("fraud.v2".into()), Some("must be a DNS-1035 label")),
        ("name starting with a digit", |m| m.metadata.name = Some("2fraud".into()), Some("must be a DNS-1035 label")),
        ("name with dashes and digits", |m| m.metadata.name = Some("fraud-detector-2".into()), None),
        ("version without uri", |m| m.spec.model.uri = None, Some("set either both model.version and model.uri")),
        (
            "registry beside version",
            |m| m.spec.model.registry = Some(super::common::RegistryRef::sample()),
            Some("set either both model.version and model.uri"),
        ),
        (
            "registry alone",
            |m| {
                m.spec.model.version = None;
                m.spec.model.uri = None;
                m.spec.model.registry = Some(super::common::RegistryRef::sample());
            },
            None,
        ),
        (
            "decreasing setWeight",
            |m| canary(m).steps = vec![fixtures::set_weight(50), fixtures::set_weight(10)],
            Some("setWeight steps must not decrease"),
        ),
        (
            "equal setWeight steps",
            |m| canary(m).steps = vec![fixtures::set_weight(10), fixtures::pause(None), fixtures::set_weight(10)],
            None,
        ),
        (
            "step with two actions",
            |m| canary(m).steps[0].pause = Some(Default::default()),
            Some("each step sets exactly one of"),
        ),
        ("empty step", |m| canary(m).steps[0] = Step::default(), Some("each step sets exactly one of")),
        (
            "mirror with replicas router (default)",
            |m| canary(m).steps.insert(0, mirror_step()),
            Some("the replicas router cannot mirror"),
        ),
        (
            "mirror with explicit replicas router",
            |m| {
                m.spec.traffic = Some(Traffic { router: Some(Router::Replicas), ..Traffic::default() });
                canary(m).steps.insert(0, mirror_step());
            },
            Some("the replicas router cannot mirror"),
        ),
        (
            "mirror with gatewayAPI router",
            |m| {
                m.spec.traffic = Some(gateway());
                canary(m).steps.insert(0, mirror_step());
            },
            None,
        ),
        (
            "gatewayAPI router without settings",
            |m| m.spec.traffic = Some(Traffic { router: Some(Router::GatewayApi), ..Traffic::default() }),
            Some("router gatewayAPI needs traffic.gatewayAPI"),
        ),
        (
            "istio router without settings",
            |m| m.spec.traffic = Some(Traffic { router: Some(Router::Istio), ..Traffic::default() }),
            Some("router istio needs traffic.istio"),
        ),
        (
            "analysis step names an undeclared metric",
            |m| canary(m).steps.push(fixtures::analysis(&["latency"])),
            Some("must be declared in strategy.canary.analysis.metrics"),
        ),
        (
            "duplicate metric names",
            |m| {
                let a = canary(m).analysis.as_mut().unwrap();
                a.metrics.push(a.metrics[0].clone());
            },
            Some("metric names must be unique"),
        ),
        (
            "threshold without bounds",
            |m| canary(m).analysis.as_mut().unwrap().metrics[0].threshold_range = Default::default(),
            Some("thresholdRange needs min, max or both"),
        ),
        (
            "threshold min above max",
            |m| canary(m).analysis.as_mut().unwrap().metrics[0].threshold_range.min = Some(0.5),
            Some("thresholdRange.min must not be greater than thresholdRange.max"),
        ),
        (
            "metric with both prometheus and builtin",
            |m| canary(m).analysis.as_mut().unwrap().metrics[0].builtin = Some(super::common::BuiltinMetric::ErrorRate),
            Some("a metric needs exactly one of prometheus or builtin"),
        ),
        (
            "metric with neither",
            |m| canary(m).analysis.as_mut().unwrap().metrics[0].prometheus = None,
            Some("a metric needs exactly one of prometheus or builtin"),
        ),
        (
            "builtin metric",
            |m| {
                let metric = &mut canary(m).analysis.as_mut().unwrap().metrics[0];
                metric.prometheus = None;
                metric.builtin = Some(super::common::BuiltinMetric::ShadowAgreement);
            },
            None,
        ),
        (
            "comparison tolerance outside numeric mode",
            |m| {
                m.spec.traffic = Some(Traffic {
                    router: Some(super::model_deployment::Router::Builtin),
                    builtin: Some(super::model_deployment::BuiltinTraffic {
                        comparison: Some(super::model_deployment::ShadowComparison {
                            path: "label".into(),
                            tolerance: Some(0.1),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Traffic::default()
                })
            },
            Some("comparison.tolerance is for mode numeric"),
        ),
    ];
    for (name, mutate, want) in cases {
        let mut md = fixtures::model_deployment("fraud");
        mutate(&mut md);
        expect(name, check(&md, None), *want);
    }
}

fn canary(m: &mut ModelDeployment) -> &mut super::model_deployment::Canary {
    m.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap()
}

type XCase = (&'static str, fn(&mut super::Experiment), Option<&'static str>);

#[test]
fn experiment_rules() {
    let cases: &[XCase] = &[
        ("valid fixture", |_| {}, None),
        (
            "duplicate variant names",
            |x| x.spec.variants.push(Variant { weight: 10, ..x.spec.variants[0].clone() }),
            Some("variant names must be unique"),
        ),
        (
            "weights over 100",
            |x| x.spec.variants.push(Variant { name: "b".into(), weight: 90, ..x.spec.variants[0].clone() }),
            Some("variant weights must sum to at most 100"),
        ),
        (
            "weights exactly 100",
            |x| x.spec.variants.push(Variant { name: "b".into(), weight: 80, ..x.spec.variants[0].clone() }),
            None,
        ),
        ("reserved control name", |x| x.spec.variants[0].name = "control".into(), Some("reserved")),
        (
            "shadow with two variants",
            |x| {
                x.spec.mode = ExperimentMode::Shadow;
                x.spec.variants.push(Variant { name: "b".into(), weight: 10, ..x.spec.variants[0].clone() });
            },
            Some("shadow mode compares exactly one variant"),
        ),
        ("proportion without trials", |x| x.spec.objective.trials = None, Some("needs successes and trials")),
        (
            "mean without its queries",
            |x| x.spec.objective.type_ = super::experiment::ObjectiveType::Mean,
            Some("needs sum, count and sumOfSquares"),
        ),
        (
            "duplicate guardrails",
            |x| x.spec.guardrails = vec![fixtures::metric("p99", 0.25), fixtures::metric("p99", 0.3)],
            Some("guardrail names must be unique"),
        ),
    ];
    for (name, mutate, want) in cases {
        let mut x = fixtures::experiment("fraud-ab");
        mutate(&mut x);
        expect(name, check(&x, None), *want);
    }
}

#[test]
fn experiment_deployment_ref_is_immutable() {
    let old = fixtures::experiment("fraud-ab");
    let mut new = old.clone();
    expect("unchanged", check(&new, Some(&old)), None);
    new.spec.deployment_ref.name = "other".into();
    expect("changed", check(&new, Some(&old)), Some("deploymentRef is immutable"));
}

fn search(max_trials: i32, parallelism: i32) -> Search {
    Search {
        algorithm: SearchAlgorithm::Random,
        parameters: [("lr".to_string(), Parameter { min: Some(0.001), max: Some(0.1), ..Parameter::default() })].into(),
        max_trials,
        parallelism: Some(parallelism),
        objective: SearchObjective { metric: "val_f1".into(), goal: Default::default() },
    }
}

type RCase = (&'static str, fn(&mut super::RetrainPolicy), Option<&'static str>);

#[test]
fn retrain_policy_rules() {
    let cases: &[RCase] = &[
        ("valid fixture", |_| {}, None),
        ("valid search", |p| p.spec.training.search = Some(search(8, 2)), None),
        (
            "parallelism above maxTrials",
            |p| p.spec.training.search = Some(search(2, 4)),
            Some("search.maxTrials must be at least search.parallelism"),
        ),
        (
            "parameter with values and range",
            |p| {
                let mut s = search(4, 1);
                s.parameters.get_mut("lr").unwrap().values = Some(vec![ParameterValue(json!(1))]);
                p.spec.training.search = Some(s);
            },
            // CEL cannot see `values` (its items have no single type): the operator's validation says it.
            None,
        ),
        (
            "parameter with values and only min",
            |p| {
                let mut s = search(4, 1);
                let lr = s.parameters.get_mut("lr").unwrap();
                lr.max = None;
                lr.values = Some(vec![ParameterValue(json!(1))]);
                p.spec.training.search = Some(s);
            },
            Some("a parameter range needs both min and max"),
        ),
        (
            "parameter with values only",
            |p| {
                let mut s = search(4, 1);
                let lr = s.parameters.get_mut("lr").unwrap();
                (lr.min, lr.max) = (None, None);
                lr.values = Some(vec![ParameterValue(json!(1)), ParameterValue(json!("adam"))]);
                p.spec.training.search = Some(s);
            },
            None,
        ),
        (
            "parameter min above max",
            |p| {
                let mut s = search(4, 1);
                s.parameters.get_mut("lr").unwrap().min = Some(1.0);
                p.spec.training.search = Some(s);
            },
            Some("a parameter's min must be less than its max"),
        ),
        (
            "log scale from zero",
            |p| {
                let mut s = search(4, 1);
                let lr = s.parameters.get_mut("lr").unwrap();
                lr.min = Some(0.0);
                lr.scale = Some(super::retrain_policy::Scale::Log);
                p.spec.training.search = Some(s);
            },
            Some("a log-scale parameter needs min > 0"),
        ),
        (
            "no parameters",
            |p| {
                let mut s = search(4, 1);
                s.parameters.clear();
                p.spec.training.search = Some(s);
            },
            Some("search.parameters needs between 1 and 16"),
        ),
        (
            "gate without a bound",
            |p| p.spec.evaluation.gates[0].min_absolute_change = None,
            Some("a gate needs minAbsoluteChange, maxAbsoluteChange, minRelativeChange or maxRelativeChange"),
        ),
        (
            "duplicate trigger metrics",
            |p| {
                let t = super::retrain_policy::MetricTrigger {
                    name: "drift".into(),
                    prometheus: fixtures::metric("drift", 0.2).prometheus.unwrap(),
                    threshold_range: super::ThresholdRange { min: None, max: Some(0.2) },
                    for_: None,
                };
                p.spec.triggers = Some(super::retrain_policy::Triggers {
                    schedule: None,
                    metrics: vec![t.clone(), t],
                    check_interval: None,
                });
            },
            Some("trigger metric names must be unique"),
        ),
    ];
    for (name, mutate, want) in cases {
        let mut p = fixtures::retrain_policy("fraud-retrain");
        mutate(&mut p);
        expect(name, check(&p, None), *want);
    }
}
