//! From a measurement to a verdict: [`judge`] is the pure rule, [`measure`] runs one metric check end to end.

use crate::analysis::prometheus::{PrometheusClient, ProviderError, Sample};
use crate::analysis::template::{TemplateVars, render};
use crate::api::common::{MetricCheck, OnNoData, ThresholdRange};
use crate::api::model_deployment::{MetricResult, Verdict};
use crate::config::{DEFAULT_PROVIDER, OperatorConfig};

/// The message of a measurement that had no data.
pub const NO_DATA: &str = "no data";

/// Judges one measurement against its range: `(verdict, value, message)`.
///
/// | outcome                | verdict                                   | value | message            |
/// |------------------------|-------------------------------------------|-------|--------------------|
/// | a value within range   | `Pass`                                    | it    | none               |
/// | a value outside range  | `Fail`                                    | it    | which bound, e.g. "0.05 is above the maximum 0.01" |
/// | no data                | per `on_no_data`: `Pass`/`Fail`/`Inconclusive` | none | "no data"    |
/// | a provider error       | `Error` (never `Pass` or `Fail`: the caller holds the rollout) | none | the error |
///
/// A `NaN` value never passes: it is judged `Fail` (the parser already turns Prometheus's `NaN` into no
/// data, so this only guards values from elsewhere). Non-finite values are not returned as `value`, since
/// JSON cannot carry them.
pub fn judge(
    outcome: &Result<Sample, ProviderError>,
    range: &ThresholdRange,
    on_no_data: OnNoData,
) -> (Verdict, Option<f64>, Option<String>) {
    match outcome {
        Err(e) => (Verdict::Error, None, Some(e.to_string())),
        Ok(Sample::NoData) => {
            let verdict = match on_no_data {
                OnNoData::Pass => Verdict::Pass,
                OnNoData::Fail => Verdict::Fail,
                OnNoData::Inconclusive => Verdict::Inconclusive,
            };
            (verdict, None, Some(NO_DATA.to_string()))
        }
        Ok(Sample::Value(v)) if v.is_nan() => {
            (Verdict::Fail, None, Some("the value is NaN, which never passes".into()))
        }
        Ok(Sample::Value(v)) => {
            let value = v.is_finite().then_some(*v);
            if range.contains(*v) {
                (Verdict::Pass, value, None)
            } else if let Some(max) = range.max.filter(|max| v > max) {
                (Verdict::Fail, value, Some(format!("{v} is above the maximum {max}")))
            } else if let Some(min) = range.min.filter(|min| v < min) {
                (Verdict::Fail, value, Some(format!("{v} is below the minimum {min}")))
            } else {
                // Unreachable for a non-NaN value and NaN-free bounds; a NaN bound makes every value fail.
                (Verdict::Fail, value, Some(format!("{v} is outside the range")))
            }
        }
    }
}

/// Measures one metric check: picks the provider's URL from the operator config by name, fills in the
/// query's placeholders, queries Prometheus and judges the answer.
///
/// Every problem becomes `Verdict::Error` with a message (unknown provider, a placeholder without a value,
/// Prometheus unreachable or answering badly); none is a `Fail`, so a broken measurement holds a rollout
/// rather than rolling it back.
pub async fn measure(
    client: &PrometheusClient,
    config: &OperatorConfig,
    check: &MetricCheck,
    vars: &TemplateVars,
) -> MetricResult {
    let error = |message: String| MetricResult {
        name: check.name.clone(),
        value: None,
        verdict: Verdict::Error,
        message: Some(message),
    };
    let (provider, query) = match (&check.prometheus, check.builtin) {
        (Some(p), _) => (p.provider.as_deref(), render(&p.query, vars).map_err(|e| e.to_string())),
        (None, Some(b)) => (config.router_provider(), super::builtin::query(b, vars)),
        (None, None) => return error("the metric has neither prometheus nor builtin".into()),
    };
    let provider = provider.unwrap_or(DEFAULT_PROVIDER);
    let base_url = match config.provider_url(Some(provider)) {
        Ok(url) => url,
        Err(e) => return error(e.to_string()),
    };
    let query = match query {
        Ok(q) => q,
        Err(e) => return error(format!("cannot fill in the query: {e}")),
    };
    let outcome = client.query(base_url, &query).await;
    if let Err(e) = &outcome {
        tracing::debug!(metric = %check.name, provider, url = base_url, error = %e, "metric query failed");
    }
    let (verdict, value, message) = judge(&outcome, &check.threshold_range, check.on_no_data.unwrap_or_default());
    MetricResult { name: check.name.clone(), value, verdict, message }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::common::PrometheusQuery;

    fn range(min: Option<f64>, max: Option<f64>) -> ThresholdRange {
        ThresholdRange { min, max }
    }

    #[test]
    fn judges() {
        use OnNoData::{Fail as NdFail, Inconclusive as NdInc, Pass as NdPass};
        use Verdict::*;
        let max = range(None, Some(0.01));
        let min = range(Some(0.9), None);
        let both = range(Some(1.0), Some(2.0));
        let value = |v: f64| Ok(Sample::Value(v));
        let unreachable = || Err(ProviderError::Unreachable("cannot connect to Prometheus (refused)".into()));
        // case, outcome, range, onNoData, then the verdict, value and (part of the) message wanted
        type Row<'a> = (
            &'a str,
            Result<Sample, ProviderError>,
            &'a ThresholdRange,
            OnNoData,
            Verdict,
            Option<f64>,
            Option<&'a str>,
        );
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            ("below max",        value(0.002),  &max,  NdInc,  Pass, Some(0.002), None),
            ("at max",           value(0.01),   &max,  NdInc,  Pass, Some(0.01),  None),
            ("above max",        value(0.05),   &max,  NdInc,  Fail, Some(0.05),  Some("0.05 is above the maximum 0.01")),
            ("above min",        value(0.95),   &min,  NdInc,  Pass, Some(0.95),  None),
            ("at min",           value(0.9),    &min,  NdInc,  Pass, Some(0.9),   None),
            ("below min",        value(0.5),    &min,  NdInc,  Fail, Some(0.5),   Some("0.5 is below the minimum 0.9")),
            ("inside both",      value(1.5),    &both, NdInc,  Pass, Some(1.5),   None),
            ("under both",       value(0.0),    &both, NdInc,  Fail, Some(0.0),   Some("0 is below the minimum 1")),
            ("over both",        value(3.0),    &both, NdInc,  Fail, Some(3.0),   Some("3 is above the maximum 2")),
            ("negative",         value(-1.0),   &max,  NdInc,  Pass, Some(-1.0),  None),
            ("+inf",             value(f64::INFINITY), &max, NdInc, Fail, None,   Some("inf is above the maximum 0.01")),
            ("NaN, onNoData pass", value(f64::NAN), &max, NdPass, Fail, None,     Some("NaN, which never passes")),
            ("NaN, no bounds hit", value(f64::NAN), &both, NdInc, Fail, None,     Some("NaN, which never passes")),
            ("no data, pass",    Ok(Sample::NoData), &max, NdPass, Pass, None,    Some("no data")),
            ("no data, fail",    Ok(Sample::NoData), &max, NdFail, Fail, None,    Some("no data")),
            ("no data, inconclusive", Ok(Sample::NoData), &max, NdInc, Inconclusive, None, Some("no data")),
            ("unreachable, pass on no data", unreachable(), &max, NdPass, Error, None, Some("cannot connect to Prometheus")),
            ("unreachable, fail on no data", unreachable(), &max, NdFail, Error, None, Some("cannot connect to Prometheus")),
            ("query error",      Err(ProviderError::Query("bad_data: parse error".into())), &max, NdInc, Error, None, Some("Prometheus refused the query: bad_data")),
            ("http error",       Err(ProviderError::Http { status: 502, body_excerpt: "bad gateway".into() }), &max, NdInc, Error, None, Some("HTTP 502: bad gateway")),
            ("bad answer",       Err(ProviderError::BadAnswer("query returned 3 series".into())), &max, NdInc, Error, None, Some("3 series")),
        ];
        for (case, outcome, range, on_no_data, verdict, value, message) in table {
            let (v, val, msg) = judge(&outcome, range, on_no_data);
            assert_eq!(v, verdict, "{case}");
            assert_eq!(val, value, "{case}");
            match (msg.as_deref(), message) {
                (None, None) => {}
                (Some(got), Some(want)) => assert!(got.contains(want), "{case}: {got:?} does not contain {want:?}"),
                (got, want) => panic!("{case}: message {got:?}, want {want:?}"),
            }
        }
    }

    fn check(provider: Option<&str>, query: &str) -> MetricCheck {
        MetricCheck {
            name: "error-rate".into(),
            prometheus: Some(PrometheusQuery { provider: provider.map(Into::into), query: query.into() }),
            builtin: None,
            threshold_range: range(None, Some(0.01)),
            on_no_data: None,
        }
    }

    fn config(url: &str) -> OperatorConfig {
        OperatorConfig { prometheus: [("default".to_string(), url.to_string())].into(), ..OperatorConfig::default() }
    }

    #[tokio::test]
    async fn measure_refuses_an_unknown_provider() {
        let client = PrometheusClient::new(Duration::from_millis(200));
        let got =
            measure(&client, &config("http://127.0.0.1:9"), &check(Some("thanos"), "up"), &TemplateVars::default())
                .await;
        assert_eq!(
            got,
            MetricResult {
                name: "error-rate".into(),
                value: None,
                verdict: Verdict::Error,
                message: Some(
                    r#"no Prometheus provider named "thanos" in the operator config (configured: default)"#.into()
                ),
            }
        );
        let got = measure(&client, &OperatorConfig::default(), &check(None, "up"), &TemplateVars::default()).await;
        assert_eq!(
            got.message.as_deref(),
            Some(r#"no Prometheus provider named "default" in the operator config (configured: none)"#)
        );
    }

    #[tokio::test]
    async fn measure_reports_a_template_error() {
        let client = PrometheusClient::new(Duration::from_millis(200));
        let got = measure(
            &client,
            &config("http://127.0.0.1:9"),
            &check(None, "x{v=\"{{variant}}\"}"),
            &TemplateVars::default(),
        )
        .await;
        assert_eq!(got.verdict, Verdict::Error);
        assert_eq!(got.value, None);
        assert!(got.message.as_deref().unwrap().contains("{{variant}} has no value"), "{got:?}");
    }

    #[tokio::test]
    async fn measure_queries_and_judges() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0);
                head.extend_from_slice(&buf[..n]);
            }
            let body =
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.05"]}]}}"#;
            let response =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            socket.write_all(response.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        let client = PrometheusClient::without_proxy(Duration::from_secs(5));
        let vars = TemplateVars { variant: Some("candidate".into()), ..TemplateVars::default() };
        let got = measure(&client, &config(&url), &check(None, "x{v=\"{{ variant }}\"}"), &vars).await;
        assert_eq!(
            got,
            MetricResult {
                name: "error-rate".into(),
                value: Some(0.05),
                verdict: Verdict::Fail,
                message: Some("0.05 is above the maximum 0.01".into()),
            }
        );
        let head = server.await.unwrap();
        assert!(head.starts_with("GET /api/v1/query?query=x%7Bv%3D%22candidate%22%7D "), "{head}");
    }
}
