//! The built-in metrics straight from the router's pods when no Prometheus provider is named for them
//! (`router.provider` unset and no `default` provider): each measurement reads every ready router pod's
//! `/metrics` on the admin port, keeps the reading in the context's history, and computes the metric from
//! the increase since a reading one window old (`analysis::router_scrape`). The first measurement of a
//! window has no baseline yet: no data.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use crate::analysis::router_scrape::{self, Reading};
use crate::analysis::{TemplateVars, builtin};
use crate::api::ModelDeployment;
use crate::api::common::{BuiltinMetric, MetricCheck};
use crate::api::model_deployment::{MetricResult, Verdict};
use crate::config::OperatorConfig;
use crate::controller::Context;
use crate::names::labels;
use crate::resources::router;
use crate::rollout::desired::MIRROR_VARIANT;

/// Whether the built-in metrics are read from the router's pods (no Prometheus provider for them).
pub fn direct(config: &OperatorConfig) -> bool {
    config.router_provider().is_none() && config.provider_url(None).is_err()
}

/// How long readings are kept: the longest window a built-in metric uses.
fn keep(window: Duration) -> Duration {
    window.max(builtin::FEEDBACK_WINDOW) + Duration::from_secs(60)
}

/// Reads every ready router pod of `md` now and records the reading; returns it with the history's
/// baseline `window` old.
pub async fn read(ctx: &Context, md: &ModelDeployment, window: Duration) -> Result<(Reading, Option<Reading>), String> {
    let ns = md.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let lp = ListParams::default().labels(&format!("{}={}", labels::ROUTER, md.name_any()));
    let list = pods.list(&lp).await.map_err(|e| format!("cannot list the router's pods: {e}"))?;
    let ready: Vec<(String, String)> = list
        .items
        .iter()
        .filter(|p| crate::rollout::pods::is_ready(p))
        .filter_map(|p| Some((p.name_any(), p.status.as_ref()?.pod_ip.clone()?)))
        .collect();
    if ready.is_empty() {
        return Err(format!("no ready pod of the router {} to read", router::name(md)));
    }
    let http =
        reqwest::Client::builder().no_proxy().timeout(ctx.config.query_timeout()).build().map_err(|e| e.to_string())?;
    let mut reading = Reading { at: jiff::Timestamp::now(), pods: Default::default() };
    for (pod, ip) in ready {
        let url = format!("http://{ip}:{}/metrics", router::ADMIN_PORT);
        let text = async { http.get(&url).send().await?.error_for_status()?.text().await }
            .await
            .map_err(|e| format!("cannot read {url} (router pod {pod}): {e}"))?;
        reading.pods.insert(pod, router_scrape::parse(&text));
    }
    let key = format!("{ns}/{}", md.name_any());
    let mut histories = ctx.router_readings.lock().unwrap_or_else(|e| e.into_inner());
    let history = histories.entry(key).or_default();
    let baseline = history.baseline(reading.at, window).cloned();
    history.push(reading.clone(), keep(window));
    Ok((reading, baseline))
}

/// Measures a built-in `check` of the rollout's candidate over `vars.interval` from the router's pods.
pub async fn measure(ctx: &Context, md: &ModelDeployment, check: &MetricCheck, vars: &TemplateVars) -> MetricResult {
    let result = |value: Option<f64>, verdict, message: Option<String>| MetricResult {
        name: check.name.clone(),
        value,
        verdict,
        message,
    };
    let Some(metric) = check.builtin else { return result(None, Verdict::Error, Some("not a built-in metric".into())) };
    let interval = vars
        .interval
        .as_deref()
        .and_then(|i| crate::api::duration::parse_duration(i).ok())
        .unwrap_or(Duration::from_secs(60));
    let window =
        if metric == BuiltinMetric::FeedbackAccuracy { interval.max(builtin::FEEDBACK_WINDOW) } else { interval };
    let (now, baseline) = match read(ctx, md, window).await {
        Ok(r) => r,
        Err(e) => return result(None, Verdict::Error, Some(e)),
    };
    let Some(baseline) = baseline else {
        return result(None, Verdict::Inconclusive, Some("first reading of the router: no increase yet".into()));
    };
    let d = router_scrape::increase(&baseline, &now);
    let value = router_scrape::value(metric, &d, "candidate", MIRROR_VARIANT);
    let (verdict, value, message) = crate::analysis::judge(
        &Ok(value.map_or(crate::analysis::Sample::NoData, crate::analysis::Sample::Value)),
        &check.threshold_range,
        check.on_no_data.unwrap_or_default(),
    );
    result(value, verdict, message)
}

/// The candidate's agreement and comparisons since `since` (the oldest reading after it), from the router's
/// pods; `None` when they cannot be read.
pub async fn agreement(ctx: &Context, md: &ModelDeployment, window: Duration) -> Option<(Option<f64>, i64)> {
    let (now, baseline) = read(ctx, md, window).await.ok()?;
    let d = router_scrape::increase(&baseline?, &now);
    let agreement = router_scrape::value(BuiltinMetric::ShadowAgreement, &d, "candidate", MIRROR_VARIANT);
    let counted = ["agree", "disagree", "shadow_failed", "shadow_unusable"];
    let n: f64 = d
        .iter()
        .filter(|(k, _)| {
            k.starts_with("champion_router_shadow_comparisons_total{")
                && k.contains(&format!("shadow=\"{MIRROR_VARIANT}\""))
                && counted.iter().any(|o| k.contains(&format!("outcome=\"{o}\"")))
        })
        .map(|(_, v)| v)
        .sum();
    Some((agreement, n.round() as i64))
}
