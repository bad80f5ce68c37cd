//! The built-in router's metrics as PromQL: `errorRate`, `latencyP99`, `shadowAgreement` and
//! `feedbackAccuracy` of a rollout's candidate, over `champion-router`'s own series.
//!
//! The router's series are selected as a Kubernetes pod scrape labels them: `namespace` and `pod` (every
//! common scrape configuration keeps these two; the router's pods are `<name>-router-<hash>-<suffix>`),
//! and by the router's own labels `variant` and `shadow`: for a rollout (`{{variant}}` is `candidate`) the
//! live variant `candidate` and the shadow `mirror` (the candidate receiving copies in a mirror step); for
//! an Experiment's variant, its name for both. The window is `{{window}}` where set (Experiments), else
//! `{{interval}}`.

use crate::analysis::{PrometheusClient, Sample, TemplateVars};
use crate::api::common::BuiltinMetric;
use crate::rollout::desired::MIRROR_VARIANT;

/// The candidate's variant name in the router's metrics.
const CANDIDATE: &str = "candidate";

/// The shortest window `feedbackAccuracy` counts feedback over.
pub const FEEDBACK_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// The PromQL of `metric` for the ModelDeployment `vars.name` in `vars.namespace`, over `vars.interval`.
pub fn query(metric: BuiltinMetric, vars: &TemplateVars) -> Result<String, String> {
    let need = |v: &Option<String>, what: &str| v.clone().ok_or_else(|| format!("no {what} to select the router by"));
    let (ns, name) = (need(&vars.namespace, "namespace")?, need(&vars.name, "name")?);
    let interval = need(&vars.window.clone().or_else(|| vars.interval.clone()), "interval")?;
    let variant = vars.variant.clone().unwrap_or_else(|| CANDIDATE.to_string());
    let shadow = if variant == CANDIDATE { MIRROR_VARIANT.to_string() } else { variant.clone() };
    let pods = format!(r#"namespace="{ns}",pod=~"{}-router-[a-z0-9]+-[a-z0-9]+""#, name.replace('.', r"\\."));
    let rate = |series: &str, labels: &str| format!("sum(rate({series}{{{pods},{labels}}}[{interval}]))");
    let increase = |series: &str, labels: &str| format!("sum(increase({series}{{{pods},{labels}}}[{interval}]))");
    let zero = |q: String| format!("({q} or vector(0))");
    let requests = "champion_router_requests_total";
    let shadow_responses = "champion_router_shadow_responses_total";
    let live = format!(r#"variant="{variant}""#);
    let mirrored = format!(r#"shadow="{shadow}""#);
    Ok(match metric {
        BuiltinMetric::ErrorRate => format!(
            "({} + {}) / ({} + {})",
            zero(rate(requests, &format!(r#"{live},class="5xx""#))),
            zero(rate(shadow_responses, &format!(r#"{mirrored},class=~"5xx|failed""#))),
            zero(rate(requests, &live)),
            zero(rate(shadow_responses, &mirrored)),
        ),
        BuiltinMetric::LatencyP99 => format!(
            "histogram_quantile(0.99, sum by (le) (rate(champion_router_request_duration_seconds_bucket{{{pods},{live}}}[{interval}])))"
        ),
        BuiltinMetric::ShadowAgreement => {
            let comparisons = "champion_router_shadow_comparisons_total";
            format!(
                "{} / {}",
                zero(increase(comparisons, &format!(r#"{mirrored},outcome="agree""#))),
                increase(comparisons, &format!(r#"{mirrored},outcome!="live_unusable""#)),
            )
        }
        BuiltinMetric::FeedbackAccuracy => {
            // Ground truth arrives late and in bursts: it is counted over at least FEEDBACK_WINDOW.
            let window = match crate::api::duration::parse_duration(&interval) {
                Ok(d) if d > FEEDBACK_WINDOW => interval.clone(),
                _ => format!("{}s", FEEDBACK_WINDOW.as_secs()),
            };
            let feedback = |labels: &str| {
                format!("sum(increase(champion_router_feedback_total{{{pods},{live},{labels}}}[{window}]))")
            };
            format!("{} / {}", zero(feedback(r#"outcome="correct""#)), feedback(r#"outcome=~"correct|incorrect""#))
        }
    })
}

/// An agreement as status shows it: four decimals.
pub fn rounded(agreement: f64) -> f64 {
    (agreement * 10_000.0).round() / 10_000.0
}

/// The shadow's agreement (rounded) and the number of its compared answers over the window of `vars`, through
/// the Prometheus at `base`; `None` where a query has no data.
pub async fn read_agreement(
    client: &PrometheusClient,
    base: &str,
    vars: &TemplateVars,
) -> Result<(Option<f64>, Option<i64>), String> {
    let (agreement, count) = (query(BuiltinMetric::ShadowAgreement, vars)?, comparisons_query(vars)?);
    let (agreement, count) = futures::join!(client.query(base, &agreement), client.query(base, &count));
    let value = |s: Sample| match s {
        Sample::Value(v) => Some(v),
        Sample::NoData => None,
    };
    let (agreement, count) = (agreement.map_err(|e| e.to_string())?, count.map_err(|e| e.to_string())?);
    Ok((value(agreement).map(rounded), value(count).map(|c| c.round() as i64)))
}

/// The number of the candidate's shadow answers compared over `vars.interval` (for the status).
pub fn comparisons_query(vars: &TemplateVars) -> Result<String, String> {
    let q = query(BuiltinMetric::ShadowAgreement, vars)?;
    // The denominator of the agreement is the count.
    Ok(q.split_once(" / ").map(|(_, d)| d.to_string()).unwrap_or(q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            namespace: Some("ml".into()),
            name: Some("fraud".into()),
            interval: Some("30s".into()),
            ..TemplateVars::default()
        }
    }

    #[test]
    fn queries_select_the_router_pods_of_one_model_deployment() {
        let pods = r#"namespace="ml",pod=~"fraud-router-[a-z0-9]+-[a-z0-9]+""#;
        let table = [
            (BuiltinMetric::ErrorRate, r#"champion_router_requests_total{POD,variant="candidate",class="5xx"}[30s]"#),
            (
                BuiltinMetric::ErrorRate,
                r#"champion_router_shadow_responses_total{POD,shadow="mirror",class=~"5xx|failed"}"#,
            ),
            (
                BuiltinMetric::LatencyP99,
                r#"histogram_quantile(0.99, sum by (le) (rate(champion_router_request_duration_seconds_bucket{POD,variant="candidate"}[30s])))"#,
            ),
            (
                BuiltinMetric::ShadowAgreement,
                r#"(sum(increase(champion_router_shadow_comparisons_total{POD,shadow="mirror",outcome="agree"}[30s])) or vector(0)) / "#,
            ),
            (BuiltinMetric::FeedbackAccuracy, r#"outcome=~"correct|incorrect"}[300s]))"#),
        ];
        for (metric, part) in table {
            let q = query(metric, &vars()).unwrap();
            assert!(q.contains(&part.replace("POD", pods)), "{metric:?}: {q}");
        }
        assert_eq!(
            comparisons_query(&vars()).unwrap(),
            format!(
                r#"sum(increase(champion_router_shadow_comparisons_total{{{pods},shadow="mirror",outcome!="live_unusable"}}[30s]))"#
            )
        );
    }

    #[test]
    fn an_experiment_variant_is_selected_by_its_name_over_the_window() {
        let v =
            TemplateVars { variant: Some("challenger".into()), window: Some("600s".into()), interval: None, ..vars() };
        let q = query(BuiltinMetric::ShadowAgreement, &v).unwrap();
        assert!(q.contains(r#"shadow="challenger",outcome="agree"}[600s]"#), "{q}");
        let q = query(BuiltinMetric::ErrorRate, &v).unwrap();
        assert!(q.contains(r#"variant="challenger",class="5xx"}[600s]"#), "{q}");
    }

    #[test]
    fn feedback_is_counted_over_at_least_five_minutes() {
        let mut v = vars();
        v.interval = Some("10m".into());
        assert!(query(BuiltinMetric::FeedbackAccuracy, &v).unwrap().contains("}[10m]))"));
        assert!(query(BuiltinMetric::ErrorRate, &v).unwrap().contains("}[10m]))"));
    }

    #[test]
    fn a_dotted_name_is_matched_literally_and_missing_values_are_errors() {
        let mut v = vars();
        v.name = Some("fraud.v2".into());
        assert!(query(BuiltinMetric::ErrorRate, &v).unwrap().contains(r#"pod=~"fraud\\.v2-router-"#));
        v.interval = None;
        assert_eq!(query(BuiltinMetric::ErrorRate, &v).unwrap_err(), "no interval to select the router by");
    }
}
