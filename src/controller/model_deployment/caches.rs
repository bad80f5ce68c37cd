//! The controller's reflector caches of generated objects: a reconcile reads what exists from them
//! instead of listing, so a steady-state reconcile makes no read request at all.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use kube::runtime::reflector::Store;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;

use crate::api::{Experiment, ModelDeployment};
use crate::names::labels;
use crate::rollout::desired::Observed;

/// The caches of one controller (one watched scope).
pub struct Caches {
    /// Generated Deployments.
    pub deployments: Store<Deployment>,
    /// Generated Services.
    pub services: Store<Service>,
    /// Generated routing objects, per served routing API.
    pub routes: Vec<(ApiResource, Store<DynamicObject>)>,
    /// Experiments, whose running variants the routing carries.
    pub experiments: Store<Experiment>,
}

fn owned_by<K: ResourceExt>(obj: &K, md: &ModelDeployment) -> bool {
    obj.namespace() == md.namespace() && obj.owner_references().iter().any(|o| Some(&o.uid) == md.uid().as_ref())
}

impl Caches {
    /// What exists for `md`: its Deployments by revision, Services by name, routing objects.
    pub fn observe(&self, md: &ModelDeployment) -> Observed {
        let deployments = self
            .deployments
            .state()
            .into_iter()
            .filter(|d| owned_by(d.as_ref(), md))
            .filter_map(|d| d.labels().get(labels::REVISION).cloned().map(|h| (h, d.as_ref().clone())))
            .collect();
        let services = self
            .services
            .state()
            .into_iter()
            .filter(|s| owned_by(s.as_ref(), md))
            .map(|s| (s.name_any(), s.as_ref().clone()))
            .collect();
        let routes = self
            .routes
            .iter()
            .flat_map(|(resource, store)| {
                store
                    .state()
                    .into_iter()
                    .filter(|o| owned_by(o.as_ref(), md))
                    .map(|o| (resource.clone(), o.as_ref().clone()))
            })
            .collect();
        let router_name = crate::resources::router::name(md);
        let router = self
            .deployments
            .state()
            .into_iter()
            .find(|d| {
                owned_by(d.as_ref(), md) && d.name_any() == router_name && !d.labels().contains_key(labels::REVISION)
            })
            .map(|d| d.as_ref().clone());
        Observed { deployments, services, routes, router }
    }

    /// What the Experiment running on `md` (if any) adds to its routing: its variants with ready pods.
    pub fn experiment_routing(&self, md: &ModelDeployment) -> crate::traffic::Routing {
        let experiments = self.experiments.state();
        let ns = md.namespace().unwrap_or_default();
        let ready = |name: &str| {
            let d = self.deployments.get(&kube::runtime::reflector::ObjectRef::new(name).within(&ns));
            crate::rollout::desired::ready_replicas(d.as_deref())
        };
        let mut routing = crate::experiment::serving::contribution(md, experiments.iter().map(AsRef::as_ref), ready);
        // The variants' Services belong to the Experiment, not to `md`: their ClusterIPs come from here.
        let services: Vec<String> = routing
            .backends
            .iter()
            .map(|b| b.service.clone())
            .chain(routing.mirrors.iter().map(|m| m.service.clone()))
            .collect();
        for name in services {
            let svc = self.services.get(&kube::runtime::reflector::ObjectRef::new(&name).within(&ns));
            if let Some(ip) =
                svc.and_then(|s| s.spec.as_ref()?.cluster_ip.clone()).filter(|ip| !ip.is_empty() && ip != "None")
            {
                routing.addresses.insert(name, ip);
            }
        }
        routing
    }

    /// Caches filled with the given objects (for tests and benchmarks: no watch behind them).
    pub fn with_objects(
        deployments: Vec<Deployment>,
        services: Vec<Service>,
        routes: Vec<(ApiResource, Vec<DynamicObject>)>,
    ) -> Self {
        let mut dw = Writer::<Deployment>::default();
        for d in deployments {
            dw.apply_watcher_event(&watcher::Event::Apply(d));
        }
        let mut sw = Writer::<Service>::default();
        for s in services {
            sw.apply_watcher_event(&watcher::Event::Apply(s));
        }
        let routes = routes
            .into_iter()
            .map(|(resource, objs)| {
                let mut w = Writer::<DynamicObject>::new(resource.clone());
                for o in objs {
                    w.apply_watcher_event(&watcher::Event::Apply(o));
                }
                (resource, w.as_reader())
            })
            .collect();
        Self {
            deployments: dw.as_reader(),
            services: sw.as_reader(),
            routes,
            experiments: Writer::<Experiment>::default().as_reader(),
        }
    }
}
