//! The RetrainPolicy controller: reads the metric triggers when due, decides whether a run starts
//! (`retrain::triggers`), advances the run under way (`retrain::run`), creates its Jobs (never two for one
//! trial: names are fixed by run and trial, and a Job that exists is left alone), registers and promotes a
//! candidate through the registry alias its ModelDeployment follows, and follows the rollout that
//! follows. It owns the Jobs and keeps them in a reflector cache, and watches ModelDeployments (a missing
//! deployment that appears, the champion's location, a promoted candidate's rollout).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::Shared;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{controller, watcher};
use kube::{Resource, ResourceExt};

mod observe;
mod promote;
mod track;

use super::referencing::{self, RefersToDeployment, deployment_ready};
use super::{
    Context, Result, Synced, acceptance, drain, error_policy, instrumented, scoped_api, status, tracked_controller,
    tracked_reflector,
};
use crate::api::retrain_policy::{RunDecision, RunStage, TriggerRecord};
use crate::api::{ModelDeployment, RetrainPolicy};
use crate::conditions::{self, Desired, Transition};
use crate::names::{conditions as cond, reasons};
use crate::retrain::jobs::{self, POLICY_LABEL};
use crate::retrain::request::{self, Request};
use crate::retrain::run::{self, JobToStart};
use crate::retrain::{summary, triggers};

/// The kind's name in metrics and logs.
pub const KIND: &str = "RetrainPolicy";

/// How often a run under way is looked at even without a change of its Jobs.
const RUN_RECHECK: Duration = Duration::from_secs(15);

/// The controller's caches: the policies' Jobs, and when each policy's metric triggers were last read
/// (in memory: after a restart they are read at once).
#[derive(Clone)]
struct Caches {
    jobs: Store<Job>,
    checked: Arc<Mutex<HashMap<String, Instant>>>,
}

/// Runs the controller for one scope until `shutdown` completes.
pub async fn controller<F>(ctx: Arc<Context>, ns: Option<String>, shutdown: Shared<F>)
where
    F: std::future::Future<Output = ()> + Send + Unpin + 'static,
{
    let client = &ctx.client;
    let (job_store, job_writer) = reflector::store::<Job>();
    let synced = Synced::default();
    let main = tracked_controller(
        scoped_api::<RetrainPolicy>(client, ns.as_deref()),
        watcher::Config::default().any_semantic(),
        &synced,
    );
    let policies = main.store();
    let caches = Caches { jobs: job_store, checked: Arc::default() };
    let cache = super::watch_cache(ctx.clone(), KIND, ns.clone(), main.store(), synced.wait_owned(), shutdown.clone());
    let owned = watcher::Config::default().labels(POLICY_LABEL);
    let stream = main
        .owns_stream(tracked_reflector(job_writer, scoped_api(client, ns.as_deref()), owned, &synced))
        .watches(
            scoped_api::<ModelDeployment>(client, ns.as_deref()),
            watcher::Config::default(),
            referencing::referrers(policies),
        )
        .with_config(controller::Config::default().concurrency(4))
        .graceful_shutdown_on(shutdown)
        .run(
            move |obj, ctx| {
                let (caches, synced) = (caches.clone(), synced.clone());
                async move {
                    synced.wait().await;
                    instrumented(KIND, obj, ctx, move |p, ctx| reconcile(p, ctx, caches)).await
                }
            },
            |obj, _err, ctx| error_policy(KIND, obj.as_ref(), &ctx),
            ctx.clone(),
        );
    futures::join!(drain(KIND, stream), cache);
}

fn key(p: &RetrainPolicy) -> String {
    format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())
}

/// Reconciles one RetrainPolicy.
async fn reconcile(p: Arc<RetrainPolicy>, ctx: Arc<Context>, caches: Caches) -> Result<Action> {
    let now = jiff::Timestamp::now();
    let ns = p.namespace().unwrap_or_default();
    let errors = p.validate(&ctx.config);
    let mds: Api<ModelDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    let md = mds.get_opt(p.deployment_name()).await?;
    let Some(md) = md.filter(|_| errors.is_empty()) else {
        // Invalid, or its deployment is missing: say so and start nothing; a run under way is left to
        // finish its Jobs, and is picked up again once the spec is fixed.
        let (when_valid, warning) = deployment_ready(p.as_ref(), false);
        let decided =
            acceptance::plan(p.status.as_ref(), p.meta().generation, &errors, when_valid, warning, &Time(now));
        acceptance::apply(&ctx, KIND, p.as_ref(), p.status.as_ref(), &decided).await?;
        return Ok(Action::await_change());
    };
    ctx.metrics.invalid_specs.with_label_values(&[KIND, &ns, &p.name_any()]).set(0);

    let current = p.status.clone().unwrap_or_default();
    let mut st = current.clone();
    let mut events: Vec<Transition> = Vec::new();

    // Requests: consumed once.
    let mut manual = false;
    let mut promote_run: Option<String> = None;
    if let Some(raw) = p.annotations().get(crate::names::annotations::REQUEST)
        && current.last_request.as_deref() != Some(raw.as_str())
    {
        st.last_request = Some(raw.clone());
        match request::parse(raw) {
            Ok(Request::Retrain) => manual = true,
            Ok(Request::PromoteRun(run)) => promote_run = Some(run),
            Err(e) => events.push(Transition::new(true, reasons::INVALID_REQUEST, e)),
        }
    }

    // The metric triggers, when due.
    let interval = triggers::check_interval(&p.spec);
    let has_metrics = p.spec.triggers.as_ref().is_some_and(|t| !t.metrics.is_empty());
    let due = has_metrics && {
        let checked = caches.checked.lock().unwrap_or_else(|e| e.into_inner());
        checked.get(&key(&p)).is_none_or(|at| at.elapsed() >= interval)
    };
    let readings = if due {
        let r = observe::read_triggers(&ctx, &p, &md).await;
        caches.checked.lock().unwrap_or_else(|e| e.into_inner()).insert(key(&p), Instant::now());
        Some(r)
    } else {
        None
    };

    let running_id = current.runs.first().filter(|r| r.decision == RunDecision::Running).map(|r| r.id.clone());
    let created = p.meta().creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
    let decided = triggers::decide(&triggers::Input {
        spec: &p.spec,
        status: &current,
        readings: readings.as_deref(),
        manual,
        running: running_id.as_deref(),
        created,
        now,
    });
    st.last_scheduled = decided.last_scheduled.clone();
    st.next_scheduled = decided.next_scheduled.clone();
    st.metric_triggers = decided.metric_triggers.clone();
    events.extend(decided.events.iter().cloned());
    let mut to_delete: Vec<String> = Vec::new();

    if let Some(fire) = &decided.fire {
        if decided.replace
            && let Some(r) = st.runs.first_mut().filter(|r| r.decision == RunDecision::Running)
        {
            let message = format!("replaced by a new run (trigger {}; concurrencyPolicy is Replace)", fire.reason);
            run::finish(r, RunDecision::Cancelled, message.clone(), now);
            events.push(Transition::new(false, reasons::RUN_CANCELLED, format!("run {}: {message}", r.id)));
            ctx.metrics.retrain_runs.with_label_values(&[&r.trigger, "Cancelled"]).inc();
            to_delete.extend(jobs_of_run(&caches, &p, &r.id));
        }
        let n = current.runs_started.unwrap_or(0) + 1;
        let id = run::run_id(n);
        let record = run::start(&p.spec, &key(&p), &id, (&fire.reason, fire.value), now);
        let also =
            if fire.also.is_empty() { String::new() } else { format!(" (also fired: {})", fire.also.join(", ")) };
        let value = fire.value.map(|v| format!(" at {v}")).unwrap_or_default();
        events.push(Transition::new(
            false,
            reasons::RUN_STARTED,
            format!(
                "run {id} started by trigger {}{value}{also}: {} trial(s), dataset version {}",
                fire.reason,
                record.trial_results.len(),
                record.dataset.as_deref().unwrap_or("(none)")
            ),
        ));
        st.runs.insert(0, record);
        st.runs_started = Some(n);
        st.last_run_started = Some(Time(now));
        st.last_trigger = Some(TriggerRecord { reason: fire.reason.clone(), at: Some(Time(now)), value: fire.value });
    }

    // The run under way.
    let champion = summary::champion_of(&md);
    let mut creates: Vec<Job> = Vec::new();
    let tracker = match track::Tracker::of(&ctx).await {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "MLflow tracking is unavailable");
            None
        }
        None => None,
    };
    let mut tracked_before: Option<(
        crate::api::retrain_policy::RunRecord,
        BTreeMap<String, crate::retrain::report::Metrics>,
    )> = None;
    if let Some(r) = st.runs.first().filter(|r| r.decision == RunDecision::Running).cloned() {
        let observed = observe::jobs(&ctx, &caches.jobs, &p, &r).await?;
        let ended: Vec<String> =
            observed.iter().filter(|(_, o)| !matches!(o, run::Observed::Active)).map(|(n, _)| n.clone()).collect();
        let logged = match &tracker {
            Some(t) if !ended.is_empty() => t.logged(&p, &r, &ended).await,
            _ => BTreeMap::new(),
        };
        let mut step = run::step(&p.spec, &p.name_any(), &ns, &r, &observed, &logged, &champion, now);
        let vars = match &tracker {
            Some(t) if !step.start.is_empty() => t.open(&p, &mut step.run, &step.start, &mut events).await,
            _ => BTreeMap::new(),
        };
        for j in &step.start {
            let name = match j {
                JobToStart::Trial { name, .. } | JobToStart::Evaluation { name } => name,
            };
            if !observed.contains_key(name) {
                creates.push(jobs::build(&p, &step.run, j, vars.get(name)));
            }
        }
        events.extend(step.events);
        st.runs[0] = step.run;
        tracked_before = Some((r, logged));
    }
    if let Some(r) = st
        .runs
        .first_mut()
        .filter(|r| r.decision == RunDecision::Evaluated && r.finished_at.as_ref().is_some_and(|t| t.0 == now))
    {
        // Just evaluated: say what comes next.
        let message = if champion.follows_alias {
            format!(
                "run {}: the candidate passed the gates and waits: kubectl champion promote-run {} {}",
                r.id,
                p.name_any(),
                r.id
            )
        } else {
            let change = summary::pinned_change(&md.name_any(), r);
            r.reason = Some(format!("{}; {change}", r.reason.clone().unwrap_or_default()));
            change
        };
        events.push(Transition::new(
            false,
            if champion.follows_alias { reasons::CANDIDATE_EVALUATED } else { reasons::PROMOTION_NEEDED },
            message,
        ));
    }
    if let Some(run_id) = promote_run {
        promote::request(&md, &champion, &mut st, &run_id, &mut events);
    }
    if let Some(r) = st.runs.iter_mut().find(|r| r.stage == Some(RunStage::Promoting)) {
        promote::register(&ctx, &p, &md, r, &mut events, now).await;
    }
    if let Some(md_status) = md.status.as_ref() {
        for r in st.runs.iter_mut() {
            if let Some((rollout, e)) = summary::rollout_progress(r, md_status) {
                r.rollout = Some(rollout);
                events.push(e);
            }
        }
    }

    // What MLflow does not have yet, and the ends of the trials and runs that ended.
    if let Some(t) = &tracker {
        for after in &st.runs {
            let Some(before) = current.runs.iter().find(|r| r.id == after.id) else { continue };
            if before == after {
                continue;
            }
            let logged = tracked_before.as_ref().filter(|(r, _)| r.id == after.id).map(|(_, l)| l.clone());
            t.close(before, after, &logged.unwrap_or_default(), &p.name_any()).await;
        }
    }

    // Runs that ended at this reconcile: counted once.
    for r in &st.runs {
        let was_running = current.runs.iter().find(|c| c.id == r.id).is_none_or(|c| c.decision == RunDecision::Running);
        if was_running && r.decision != RunDecision::Running && r.decision != RunDecision::Cancelled {
            ctx.metrics.retrain_runs.with_label_values(&[&r.trigger, &format!("{:?}", r.decision)]).inc();
        }
    }

    // The run history, and the Jobs of the runs it forgets.
    let limit = p.spec.history_limit.unwrap_or(10).max(1) as usize;
    if st.runs.len() > limit {
        for r in st.runs.split_off(limit) {
            to_delete.extend(jobs_of_run(&caches, &p, &r.id));
        }
    }

    let (phase, message, conds) = summary::summarize(&p.spec, &st, now);
    st.phase = Some(phase);
    st.message = Some(message);
    st.last_run = summary::last_run(&st);
    st.observed_generation = p.meta().generation;
    let ready = Desired::new(cond::READY, true, reasons::ACCEPTED, "spec is valid and its ModelDeployment exists");
    let mut desired = vec![ready];
    desired.extend(conds);
    st.conditions = conditions::merge(&current.conditions, &desired, p.meta().generation, &Time(now));
    for c in &desired {
        let before = conditions::find(&current.conditions, c.type_);
        if let Some(after) = conditions::find(&st.conditions, c.type_)
            && c.type_ == cond::DEGRADED
            && c.status
            && let Some(t) = conditions::transition(before, after, true)
        {
            events.push(t);
        }
    }

    // Jobs first (their names are fixed, so a conflict on the status below cannot make a second one),
    // then the status, then the Events.
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    for j in &creates {
        match api.create(&PostParams::default(), j).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    for name in &to_delete {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    status::write_if_changed(&ctx, p.as_ref(), p.status.as_ref(), &st).await?;
    for e in &events {
        status::publish(&ctx, p.as_ref(), e).await;
    }

    // Next look: the next trigger read, the schedule, the end of the cooldown, or a run under way.
    let mut wait: Option<Duration> = None;
    let mut sooner = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
    if has_metrics {
        sooner(interval);
    }
    let until = |t: jiff::Timestamp| Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO);
    if let Some(next) = &st.next_scheduled {
        sooner(until(next.0).max(Duration::from_millis(200)));
    }
    if let Some(e) = triggers::cooldown_ends(&p.spec, &st).filter(|e| *e > now) {
        sooner(until(e));
    }
    if st.runs.first().is_some_and(|r| r.decision == RunDecision::Running) {
        sooner(RUN_RECHECK);
    }
    if st.runs.iter().any(|r| r.rollout.as_deref() == Some(summary::ROLLING_OUT)) {
        sooner(RUN_RECHECK);
    }
    Ok(wait.map(Action::requeue).unwrap_or_else(Action::await_change))
}

/// The names of the Jobs of run `id` in the cache.
fn jobs_of_run(caches: &Caches, p: &RetrainPolicy, id: &str) -> Vec<String> {
    caches.jobs.state().iter().filter(|j| observe::of_run(j, p, id)).map(|j| j.name_any()).collect()
}
