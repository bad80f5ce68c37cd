//! The apply path of a ModelDeployment reconcile against a mock API server that keeps the objects it is
//! sent: which calls a reconcile makes, in which order, for a first create, a steady state (no call at
//! all), a promotion and a rollback. The controller's caches are filled from what the mock server holds,
//! as the watches would fill them, with every Deployment's pods ready.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::DynamicObject;
use kube::client::Body;
use serde_json::{Value, json};

use champion::api::model_deployment::{GatewayApiTraffic, ParentRef, Router, Traffic};
use champion::api::{DeploymentPhase, Duration, ModelDeployment};
use champion::config::OperatorConfig;
use champion::controller::Context;
use champion::controller::model_deployment::Caches;
use champion::controller::model_deployment::reconcile::reconcile;
use champion::fixtures;
use champion::metrics::Metrics;
use champion::traffic::gateway_api::http_route_resource;

/// The objects the mock API server holds, by URL path (without the query).
#[derive(Default, Clone)]
struct Cluster {
    objects: BTreeMap<String, Value>,
}

impl Cluster {
    fn of_kind(&self, segment: &str) -> Vec<Value> {
        self.objects.iter().filter(|(p, _)| p.contains(segment)).map(|(_, v)| v.clone()).collect()
    }

    /// The caches as the watches would show them: every Deployment has all its pods ready.
    fn caches(&self) -> Arc<Caches> {
        let deployments: Vec<Deployment> = self
            .of_kind("/deployments/")
            .into_iter()
            .map(|mut v| {
                let n = v["spec"]["replicas"].as_i64().unwrap_or(1);
                v["status"] = json!({"replicas": n, "readyReplicas": n, "updatedReplicas": n, "observedGeneration": 1});
                v["metadata"]["generation"] = json!(1);
                serde_json::from_value(v).unwrap()
            })
            .collect();
        let services: Vec<Service> =
            self.of_kind("/services/").into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
        let routes: Vec<DynamicObject> =
            self.of_kind("/httproutes/").into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
        Arc::new(Caches::with_objects(deployments, services, vec![(http_route_resource(), routes)]))
    }

    fn replicas(&self, name: &str) -> Option<i64> {
        let path = format!("/apis/apps/v1/namespaces/default/deployments/{name}");
        self.objects.get(&path).and_then(|d| d["spec"]["replicas"].as_i64())
    }
}

/// One API call: method, path, and a short description of the body (replicas, weights, selector).
#[derive(Debug, Clone, PartialEq)]
struct Call {
    method: Method,
    path: String,
    body: Value,
}

impl Call {
    fn short(&self) -> String {
        let kind = self.path.rsplit('/').nth(1).unwrap_or_default();
        let name = self.path.rsplit('/').next().unwrap_or_default();
        match (kind, name) {
            (_, "status") => format!("{} status", self.method),
            (_, "events") => format!("{} event {}", self.method, self.body["reason"].as_str().unwrap_or_default()),
            _ => format!("{} {kind}/{name}", self.method),
        }
    }
}

/// Runs one reconcile of `md` against `cluster`; returns the calls and the written status (if any).
async fn reconcile_once(md: &ModelDeployment, cluster: &mut Cluster) -> (Vec<Call>, Option<Value>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let config = OperatorConfig::parse("prometheus: {default: http://127.0.0.1:9}", "test").unwrap();
    let ctx = Context::new(client, Arc::new(config), Arc::new(Metrics::new()));
    let state = Arc::new(Mutex::new((cluster.clone(), Vec::<Call>::new(), None::<Value>)));
    let md_json = serde_json::to_value(md).unwrap();
    let server = {
        let state = state.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let method = req.method().clone();
                let path = req.uri().path().to_string();
                let bytes = req.into_body().collect_bytes().await.unwrap();
                let body: Value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
                let mut s = state.lock().unwrap();
                s.1.push(Call { method: method.clone(), path: path.clone(), body: body.clone() });
                let (status, answer) = match method {
                    Method::PATCH if path.ends_with("/status") => {
                        s.2 = Some(body["status"].clone());
                        let mut obj = md_json.clone();
                        obj["status"] = body["status"].clone();
                        (StatusCode::OK, obj)
                    }
                    Method::PATCH => {
                        let mut obj = body.clone();
                        obj["metadata"]["uid"] = json!(format!("uid-{path}"));
                        s.0.objects.insert(path, obj.clone());
                        (StatusCode::OK, obj)
                    }
                    Method::DELETE => {
                        s.0.objects.remove(&path);
                        (StatusCode::OK, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
                    }
                    _ => (StatusCode::CREATED, body),
                };
                send.send_response(
                    Response::builder().status(status).body(Body::from(serde_json::to_vec(&answer).unwrap())).unwrap(),
                );
            }
        })
    };
    let caches = cluster.caches();
    reconcile(Arc::new(md.clone()), ctx.clone(), caches).await.unwrap();
    drop(ctx);
    server.await.unwrap();
    let (c, calls, status) = Arc::try_unwrap(state).ok().unwrap().into_inner().unwrap();
    *cluster = c;
    (calls, status)
}

fn gateway_md(steps: Vec<champion::api::model_deployment::Step>, delay: Option<&str>) -> ModelDeployment {
    let mut md = fixtures::model_deployment("fraud");
    md.metadata.uid = Some("uid-md".into());
    md.metadata.resource_version = Some("1".into());
    md.spec.traffic = Some(Traffic {
        router: Some(Router::GatewayApi),
        gateway_api: Some(GatewayApiTraffic {
            parent_refs: vec![ParentRef { name: "gw".into(), namespace: None, section_name: None }],
            hostnames: None,
        }),
        ..Traffic::default()
    });
    let strategy = md.spec.strategy.as_mut().unwrap();
    strategy.scale_down_delay = delay.map(Duration::new);
    let canary = strategy.canary.as_mut().unwrap();
    canary.steps = steps;
    canary.analysis = None;
    md
}

/// Reconciles until nothing is written any more (at most `max` times); returns every pass's calls.
async fn settle(md: &mut ModelDeployment, cluster: &mut Cluster, max: usize) -> Vec<Vec<Call>> {
    let mut passes = Vec::new();
    for _ in 0..max {
        let (calls, status) = reconcile_once(md, cluster).await;
        let quiet = calls.is_empty();
        passes.push(calls);
        if let Some(s) = status {
            md.status = Some(serde_json::from_value(s).unwrap());
        }
        if quiet {
            return passes;
        }
    }
    panic!(
        "no steady state after {max} reconciles: {:?}",
        passes.last().map(|c| c.iter().map(Call::short).collect::<Vec<_>>())
    );
}

fn shorts(calls: &[Call]) -> Vec<String> {
    calls.iter().map(Call::short).collect()
}

fn phase(md: &ModelDeployment) -> Option<DeploymentPhase> {
    md.status.as_ref().and_then(|s| s.phase)
}

#[tokio::test]
async fn first_create_then_a_steady_state_with_no_calls_at_all() {
    let mut md = gateway_md(vec![fixtures::set_weight(50)], None);
    let mut cluster = Cluster::default();
    let (calls, status) = reconcile_once(&md, &mut cluster).await;
    let hash = champion::rollout::revision::target(&md.spec).unwrap().hash;
    assert_eq!(
        shorts(&calls),
        [
            format!("PATCH deployments/fraud-{hash}"),
            "PATCH services/fraud".into(),
            "PATCH httproutes/fraud".into(),
            "PATCH status".into(),
            "POST event Deployed".into(),
        ],
        "create in order: pods, Service, route; no LIST, GET or DELETE"
    );
    md.status = Some(serde_json::from_value(status.unwrap()).unwrap());
    let passes = settle(&mut md, &mut cluster, 4).await;
    assert_eq!(phase(&md), Some(DeploymentPhase::Healthy));
    assert!(passes.last().unwrap().is_empty(), "steady state: not one API call");
    assert!(passes.iter().flatten().all(|c| c.method != Method::DELETE), "{:?}", passes);
}

#[tokio::test]
async fn promotion_moves_the_service_and_route_before_any_pod_goes() {
    for delay in [None, Some("0s")] {
        let mut md = gateway_md(vec![fixtures::set_weight(50)], delay);
        let mut cluster = Cluster::default();
        settle(&mut md, &mut cluster, 6).await;
        let old = champion::rollout::revision::target(&md.spec).unwrap().hash;
        md.spec.model = fixtures::model("1.1.0");
        md.metadata.generation = Some(2);
        let new = champion::rollout::revision::target(&md.spec).unwrap().hash;
        let passes = settle(&mut md, &mut cluster, 10).await;
        assert_eq!(md.status.as_ref().unwrap().stable.as_ref().unwrap().version, "1.1.0", "{delay:?}");
        let promotion =
            passes.iter().find(|p| p.iter().any(|c| c.body["reason"] == "Promoted")).expect("a pass that promoted");
        let order = shorts(promotion);
        let pos = |what: &str| order.iter().position(|c| c == what);
        let service = pos("PATCH services/fraud").expect("the stable Service moves to the new revision");
        let route = pos("PATCH httproutes/fraud").expect("the route moves");
        assert!(service < route, "{delay:?}: selector before route: {order:?}");
        let selector = &promotion[service].body["spec"]["selector"];
        assert_eq!(selector["champion.ml/revision"], new.as_str());
        // The old stable's Deployment is relabelled (variant) in the first group, keeping its pods; with
        // no delay it is also scaled down, after the route.
        let old_patches: Vec<(usize, i64)> = order
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == format!("PATCH deployments/fraud-{old}"))
            .map(|(i, _)| (i, promotion[i].body["spec"]["replicas"].as_i64().unwrap()))
            .collect();
        assert!(old_patches.iter().all(|(i, n)| *n > 0 || *i > route), "{delay:?}: {order:?} {old_patches:?}");
        let old_scaled = old_patches.iter().find(|(_, n)| *n == 0).map(|(i, _)| *i);
        match delay {
            None => {
                assert_eq!(old_scaled, None, "the old stable keeps its pods for scaleDownDelay: {order:?}");
                assert_eq!(cluster.replicas(&format!("fraud-{old}")), Some(2));
                let drains = &md.status.as_ref().unwrap().scale_downs;
                assert_eq!(drains.iter().map(|d| d.hash.as_str()).collect::<Vec<_>>(), [old.as_str()]);
            }
            Some(_) => {
                assert!(old_scaled.unwrap() > route, "scaled down only after the route left it: {order:?}");
                assert_eq!(cluster.replicas(&format!("fraud-{old}")), Some(0));
            }
        }
        let deletes = pos("DELETE services/fraud-candidate").expect("the candidate Service goes");
        assert!(deletes > route, "{order:?}");
    }
}

#[tokio::test]
async fn abort_takes_the_route_weight_away_before_the_candidate_is_scaled_down() {
    for delay in [None, Some("0s")] {
        let mut md = gateway_md(vec![fixtures::set_weight(50), fixtures::pause(None)], delay);
        let mut cluster = Cluster::default();
        settle(&mut md, &mut cluster, 6).await;
        md.spec.model = fixtures::model("1.1.0");
        md.metadata.generation = Some(2);
        let candidate = format!("fraud-{}", champion::rollout::revision::target(&md.spec).unwrap().hash);
        settle(&mut md, &mut cluster, 10).await;
        assert_eq!(phase(&md), Some(DeploymentPhase::Paused), "{delay:?}");
        assert_eq!(cluster.replicas(&candidate), Some(1));
        md.metadata.annotations = Some(BTreeMap::from([("champion.ml/request".to_string(), "abort/1".to_string())]));
        let (calls, status) = reconcile_once(&md, &mut cluster).await;
        md.status = Some(serde_json::from_value(status.unwrap()).unwrap());
        assert_eq!(phase(&md), Some(DeploymentPhase::RolledBack));
        let order = shorts(&calls);
        let route = order.iter().position(|c| c == "PATCH httproutes/fraud").expect("the route changes");
        let weights: Vec<i64> = calls[route].body["spec"]["rules"][0]["backendRefs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["weight"].as_i64().unwrap())
            .collect();
        assert_eq!(weights, [100, 0]);
        let scaled = order.iter().enumerate().position(|(i, c)| {
            *c == format!("PATCH deployments/{candidate}") && calls[i].body["spec"]["replicas"] == 0
        });
        match delay {
            None => assert_eq!((scaled, cluster.replicas(&candidate)), (None, Some(1)), "{order:?}"),
            Some(_) => {
                assert!(scaled.unwrap() > route, "{order:?}");
                assert_eq!(cluster.replicas(&candidate), Some(0));
            }
        }
    }
}
