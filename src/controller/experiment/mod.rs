//! The Experiment controller: validates an Experiment, decides its life (`experiment::lifecycle`), and puts
//! its variants' Deployments and Services in place (or removes them); the ModelDeployment's reconcile routes
//! to them (`experiment::serving::contribution`). It owns the variants' objects and keeps them in reflector
//! caches, and watches ModelDeployments, so that a waiting Experiment starts when its deployment's rollout
//! ends.

use std::sync::Arc;

use futures::future::Shared;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{controller, watcher};
use kube::{Resource, ResourceExt};

mod measure;

use super::model_deployment::apply::{apply_one, delete_one};
use super::referencing::{self, RefersToDeployment, deployment_ready};
use super::{
    Context, Result, Synced, acceptance, drain, error_policy, instrumented, scoped_api, status, tracked_controller,
    tracked_reflector,
};
use crate::api::experiment::ExperimentPhase;
use crate::api::experiment::OnSuccess;
use crate::api::{Experiment, ModelDeployment};
use crate::conditions;
use crate::conditions::Transition;
use crate::experiment::decision::{self, Verdict};
use crate::experiment::lifecycle::{self, Input};
use crate::experiment::promotion;
use crate::experiment::serving::{self, EXPERIMENT_LABEL};
use crate::names::reasons;
use crate::rollout::plan;

/// The kind's name in metrics and logs.
pub const KIND: &str = "Experiment";

/// The caches of one controller: the variants' objects and every Experiment of the scope.
#[derive(Clone)]
struct Caches {
    deployments: Store<Deployment>,
    services: Store<Service>,
    experiments: Store<Experiment>,
}

/// Runs the controller for one scope until `shutdown` completes.
pub async fn controller<F>(ctx: Arc<Context>, ns: Option<String>, shutdown: Shared<F>)
where
    F: std::future::Future<Output = ()> + Send + Unpin + 'static,
{
    let client = &ctx.client;
    let owned = || watcher::Config::default().labels(EXPERIMENT_LABEL);
    let (deployments, deployment_writer) = reflector::store::<Deployment>();
    let (services, service_writer) = reflector::store::<Service>();
    let synced = Synced::default();
    let main = tracked_controller(
        scoped_api::<Experiment>(client, ns.as_deref()),
        watcher::Config::default().any_semantic(),
        &synced,
    );
    let experiments = main.store();
    let caches = Caches { deployments, services, experiments: experiments.clone() };
    let cache = super::watch_cache(ctx.clone(), KIND, ns.clone(), main.store(), synced.wait_owned(), shutdown.clone());
    let stream = main
        .owns_stream(tracked_reflector(deployment_writer, scoped_api(client, ns.as_deref()), owned(), &synced))
        .owns_stream(tracked_reflector(service_writer, scoped_api(client, ns.as_deref()), owned(), &synced))
        .watches(
            scoped_api::<ModelDeployment>(client, ns.as_deref()),
            watcher::Config::default(),
            referencing::referrers(experiments),
        )
        .with_config(controller::Config::default().concurrency(4))
        .graceful_shutdown_on(shutdown)
        .run(
            move |obj, ctx| {
                let (caches, synced) = (caches.clone(), synced.clone());
                async move {
                    synced.wait().await;
                    instrumented(KIND, obj, ctx, move |x, ctx| reconcile(x, ctx, caches)).await
                }
            },
            |obj, _err, ctx| error_policy(KIND, obj.as_ref(), &ctx),
            ctx.clone(),
        );
    futures::join!(drain(KIND, stream), cache);
}

/// Reconciles one Experiment.
async fn reconcile(x: Arc<Experiment>, ctx: Arc<Context>, caches: Caches) -> Result<Action> {
    let now = jiff::Timestamp::now();
    let ns = x.namespace().unwrap_or_default();
    let errors = x.validate(&ctx.config);
    let mds: Api<ModelDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    let md = mds.get_opt(x.deployment_name()).await?;
    let Some(md) = md.filter(|_| errors.is_empty()) else {
        // Invalid, or its deployment is gone: say so, and serve nothing.
        remove_variants(&ctx, &x, &caches).await?;
        let (when_valid, warning) = deployment_ready(x.as_ref(), false);
        let decided =
            acceptance::plan(x.status.as_ref(), x.meta().generation, &errors, when_valid, warning, &Time(now));
        acceptance::apply(&ctx, KIND, x.as_ref(), x.status.as_ref(), &decided).await?;
        return Ok(Action::await_change());
    };
    ctx.metrics.invalid_specs.with_label_values(&[KIND, &ns, &x.name_any()]).set(0);

    let served = serving::served(&x, &md);
    let ready = |name: &str| {
        let d = caches.deployments.get(&ObjectRef::new(name).within(&ns));
        let want = d.as_ref().and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas).unwrap_or(1);
        let have = crate::rollout::desired::ready_replicas(d.as_deref());
        d.is_some() && have >= want.max(1)
    };
    let all: Vec<Experiment> = caches.experiments.state().iter().map(|e| e.as_ref().clone()).collect();
    let outcome = lifecycle::decide(&Input {
        x: &x,
        md: &md,
        all: &all,
        variants_ready: !served.is_empty() && served.iter().all(|s| ready(&s.name)),
        drain: plan::scale_down_delay(&md.spec),
        now,
    });

    let mut outcome = outcome;
    let before = x.status.as_ref().and_then(|s| s.phase).unwrap_or_default();
    let phase = outcome.status.phase.unwrap_or_default();
    let timed_out = before == ExperimentPhase::Running && phase == ExperimentPhase::Inconclusive;
    if phase == ExperimentPhase::Running || timed_out {
        evaluate(&ctx, &x, &md, &mut outcome, timed_out, now).await;
    }
    stop_request(&x, &md, &mut outcome, now);
    if before != ExperimentPhase::Concluded && outcome.status.phase == Some(ExperimentPhase::Concluded) {
        promote(&ctx, &x, &md, &mut outcome).await;
    }

    if outcome.serve {
        let (deployments, services) = serving::objects(&x, &md);
        let d_api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
        let s_api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
        for d in &deployments {
            let name = d.name_any();
            let cached = caches.deployments.get(&ObjectRef::new(&name).within(&ns));
            apply_one(&d_api, "Deployment", &name, d, cached.as_deref()).await?;
        }
        for s in &services {
            let name = s.name_any();
            let cached = caches.services.get(&ObjectRef::new(&name).within(&ns));
            apply_one(&s_api, "Service", &name, s, cached.as_deref()).await?;
        }
    } else {
        remove_variants(&ctx, &x, &caches).await?;
    }

    let current = x.status.clone().unwrap_or_default();
    let mut new_status = outcome.status.clone();
    new_status.assignment = Some(serving::assignment(&x, &md));
    new_status.observed_generation = x.meta().generation;
    new_status.conditions =
        conditions::merge(&current.conditions, &outcome.conditions, x.meta().generation, &Time(now));
    status::write_if_changed(&ctx, x.as_ref(), x.status.as_ref(), &new_status).await?;
    if !lifecycle::is_final(x.status.as_ref().and_then(|s| s.phase)) && lifecycle::is_final(new_status.phase) {
        let reason = new_status.conditions.iter().find(|c| c.type_ == crate::names::conditions::READY);
        let reason = reason.map(|c| c.reason.clone()).unwrap_or_default();
        let outcome_label = format!("{:?}", new_status.phase.unwrap_or_default());
        ctx.metrics.experiment_outcomes.with_label_values(&[&outcome_label, &reason]).inc();
    }
    for e in &outcome.events {
        status::publish(&ctx, x.as_ref(), e).await;
    }
    Ok(outcome.requeue_after.map(Action::requeue).unwrap_or_else(Action::await_change))
}

/// Measures and evaluates a running experiment when an evaluation is due (and once more at `maxDuration`,
/// the fixed horizon's one look), and ends it on a verdict.
async fn evaluate(
    ctx: &Context,
    x: &Experiment,
    md: &ModelDeployment,
    outcome: &mut lifecycle::Outcome,
    at_max: bool,
    now: jiff::Timestamp,
) {
    let interval = x
        .spec
        .decision
        .evaluation_interval
        .as_ref()
        .and_then(|d| d.to_std().ok())
        .unwrap_or(decision::DEFAULT_EVALUATION_INTERVAL)
        .max(std::time::Duration::from_secs(1));
    let last = outcome.status.last_evaluation.as_ref().map(|t| t.0);
    let next = last.and_then(|t| t.checked_add(jiff::SignedDuration::try_from(interval).ok()?).ok());
    if !at_max && next.is_some_and(|n| now < n) {
        let wait = next.map(|n| n.duration_since(now)).and_then(|d| std::time::Duration::try_from(d).ok());
        outcome.requeue_after = outcome.requeue_after.min(wait).or(wait);
        return;
    }
    let started = outcome.status.started_at.as_ref().map(|t| t.0).unwrap_or(now);
    let elapsed = std::time::Duration::try_from(now.duration_since(started)).unwrap_or_default();
    let drain = plan::scale_down_delay(&md.spec);
    let previous_message = x.status.as_ref().and_then(|s| s.message.clone());
    let mut status = outcome.status.clone();
    let evaluated = measure::evaluate(ctx, x, md, &mut status, elapsed, at_max).await;
    let invalid = |o: &mut lifecycle::Outcome, why: String| {
        let message = format!("the measurements cannot be used, no decision is taken from them: {why}");
        if previous_message.as_deref() != Some(message.as_str()) {
            o.events.push(Transition {
                warning: true,
                reason: reasons::MEASUREMENT_INVALID.into(),
                message: message.clone(),
            });
        }
        if o.status.phase == Some(ExperimentPhase::Running) {
            o.status.message = Some(message);
        }
    };
    match evaluated {
        Err(why) => invalid(outcome, why),
        Ok((e, notes)) => {
            let kept_message = outcome.status.message.clone();
            outcome.status = status;
            outcome.status.message = kept_message;
            outcome.status.variants = e.results;
            outcome.status.srm_strikes = Some(e.srm_strikes);
            outcome.status.last_evaluation = Some(Time(now));
            match e.verdict {
                Verdict::Continue(why) => {
                    if outcome.status.phase == Some(ExperimentPhase::Running) {
                        let listed = notes.iter().map(|n| format!("; {n}")).collect::<String>();
                        let message = format!("{why}{listed}");
                        // A query that selects nothing is said once (a Warning Event), while it lasts.
                        let new_notes =
                            notes.iter().any(|n| !previous_message.as_deref().unwrap_or("").contains(n.as_str()));
                        if new_notes {
                            outcome.events.push(Transition {
                                warning: true,
                                reason: reasons::OBJECTIVE_NO_DATA.into(),
                                message: format!("{}; no decision until every arm has data", notes.join("; ")),
                            });
                        }
                        outcome.status.message = Some(message);
                    }
                }
                Verdict::Invalid(why) => invalid(outcome, why),
                verdict => {
                    // At maxDuration the last look decides instead of the plain timeout.
                    outcome.events.retain(|t| t.reason != reasons::MAX_DURATION_REACHED);
                    conclude_with(outcome, verdict, now, drain);
                }
            }
        }
    }
    if outcome.status.phase == Some(ExperimentPhase::Running) {
        outcome.requeue_after = Some(outcome.requeue_after.map_or(interval, |r| r.min(interval)));
    }
}

/// `kubectl champion experiment stop`: the request annotation `stop/<id>`, consumed once.
fn stop_request(x: &Experiment, md: &ModelDeployment, outcome: &mut lifecycle::Outcome, now: jiff::Timestamp) {
    let Some(raw) = x.annotations().get(crate::names::annotations::REQUEST) else { return };
    if x.status.as_ref().and_then(|s| s.last_request.as_deref()) == Some(raw.as_str()) {
        return;
    }
    outcome.status.last_request = Some(raw.clone());
    let running = !lifecycle::is_final(outcome.status.phase);
    match raw.split_once('/') {
        Some(("stop", id)) if !id.is_empty() && running => {
            let drain = plan::scale_down_delay(&md.spec);
            let message = "stopped by request; no winner, stable stays as it is".to_string();
            lifecycle::conclude(
                outcome,
                ExperimentPhase::Aborted,
                reasons::STOPPED_BY_REQUEST,
                message,
                None,
                now,
                drain,
            );
        }
        Some(("stop", id)) if !id.is_empty() => outcome.events.push(Transition {
            warning: true,
            reason: reasons::REQUEST_IGNORED.into(),
            message: format!("request {raw} did nothing: the experiment has already ended"),
        }),
        _ => outcome.events.push(Transition {
            warning: true,
            reason: reasons::INVALID_REQUEST.into(),
            message: format!("invalid request {raw:?}: an Experiment takes stop/<id>"),
        }),
    }
}

/// Promotes a winning variant with `onSuccess: promote` (see `experiment::promotion`); says what was done,
/// or the exact change to make, in `status.promotion` and an Event.
async fn promote(ctx: &Context, x: &Experiment, md: &ModelDeployment, outcome: &mut lifecycle::Outcome) {
    let mut with = x.clone();
    with.status = Some(outcome.status.clone());
    let Some(winner) = promotion::winner(&with) else { return };
    let plan = promotion::plan(md, winner);
    if x.spec.on_success != Some(OnSuccess::Promote) {
        if let promotion::Promotion::EditSpec { message, .. } = plan {
            outcome.status.promotion = Some(format!("onSuccess is none; {message}"));
        }
        return;
    }
    let (warning, reason, message) = match plan {
        promotion::Promotion::EditSpec { message, .. } => (false, reasons::PROMOTION_NEEDED, message),
        promotion::Promotion::MoveAlias { model, alias, version } => {
            let follow =
                crate::api::common::RegistryRef { model: model.clone(), alias: alias.clone(), serving_alias: None };
            let moved = match ctx.registry.as_ref() {
                Some(access) => match access.client().await {
                    Ok(c) => crate::registry::sync::move_alias(c.as_ref(), &follow, &version)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                },
                None => Err("the operator config names no MLflow tracking server".into()),
            };
            match moved {
                Ok(_) => (
                    false,
                    reasons::WINNER_PROMOTED,
                    format!(
                        "alias {alias} of registered model {model} now points at version {version} (variant {});                          ModelDeployment {} rolls it out through its steps",
                        winner.name,
                        md.name_any()
                    ),
                ),
                Err(e) => (
                    true,
                    reasons::PROMOTION_FAILED,
                    format!(
                        "could not move alias {alias} of {model} to version {version}: {e};                          `kubectl champion promote-version {} {version}` does it",
                        md.name_any()
                    ),
                ),
            }
        }
    };
    outcome.status.promotion = Some(message.clone());
    outcome.events.push(Transition { warning, reason: reason.into(), message });
}

/// Ends the experiment on a terminal verdict (a winner, a stop, no decision at maxDuration).
fn conclude_with(outcome: &mut lifecycle::Outcome, verdict: Verdict, now: jiff::Timestamp, drain: std::time::Duration) {
    let (phase, reason, message, winner) = match verdict {
        Verdict::Winner { name, message } => (ExperimentPhase::Concluded, reasons::WINNER_DECIDED, message, Some(name)),
        Verdict::Stop { reason, message } => (ExperimentPhase::Aborted, reason, message, None),
        Verdict::Inconclusive(message) => (ExperimentPhase::Inconclusive, reasons::MAX_DURATION_REACHED, message, None),
        Verdict::Continue(_) | Verdict::Invalid(_) => return,
    };
    lifecycle::conclude(outcome, phase, reason, message, winner, now, drain);
}

/// Deletes the variants' Services, then their Deployments, where they exist.
async fn remove_variants(ctx: &Context, x: &Experiment, caches: &Caches) -> Result<()> {
    let ns = x.namespace().unwrap_or_default();
    let uid = x.uid();
    let mine = |owners: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]| {
        owners.iter().any(|o| Some(&o.uid) == uid.as_ref())
    };
    let s_api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    for s in caches.services.state().iter().filter(|s| s.namespace().as_deref() == Some(ns.as_str())) {
        if mine(s.owner_references()) {
            delete_one(&s_api, "Service", &s.name_any()).await?;
        }
    }
    let d_api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    for d in caches.deployments.state().iter().filter(|d| d.namespace().as_deref() == Some(ns.as_str())) {
        if mine(d.owner_references()) {
            delete_one(&d_api, "Deployment", &d.name_any()).await?;
        }
    }
    Ok(())
}
