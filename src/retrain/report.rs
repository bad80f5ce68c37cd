//! What a Job reports: one JSON object of numbers in its container's termination message. A training trial
//! reports its metrics (`{"val_f1": 0.91}`); the evaluation reports both models'
//! (`{"candidate": {...}, "champion": {...}}`). Anything else is a failure with a reason a person can act on.

use std::collections::BTreeMap;

/// The most Kubernetes keeps of a container's termination message (`terminationMessagePath`): longer
/// messages are cut, which leaves no valid JSON.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// Metrics by name.
pub type Metrics = BTreeMap<String, f64>;

/// Parses a training trial's report: the object's numeric members (other members, such as strings, are
/// ignored).
pub fn trial(message: Option<&str>) -> Result<Metrics, String> {
    let object = object(message)?;
    let metrics = numbers(&object);
    if metrics.is_empty() {
        return Err("the report has no numeric metric (expected e.g. {\"val_f1\": 0.91})".into());
    }
    Ok(metrics)
}

/// Parses the evaluation's report into the candidate's and the champion's metrics.
pub fn evaluation(message: Option<&str>) -> Result<(Metrics, Metrics), String> {
    let object = object(message)?;
    let side = |key: &str| match object.get(key) {
        Some(serde_json::Value::Object(m)) => Ok(numbers(m)),
        Some(_) => Err(format!("the report's {key:?} is not an object of metrics")),
        None => Err(format!(
            "the report has no {key:?} object (expected {{\"candidate\": {{...}}, \"champion\": {{...}}}})"
        )),
    };
    Ok((side("candidate")?, side("champion")?))
}

fn object(message: Option<&str>) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let text = message.map(str::trim).filter(|m| !m.is_empty()).ok_or_else(|| {
        "the container wrote no report: write one JSON object of metrics to /dev/termination-log".to_string()
    })?;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!("the report is not a JSON object: {}", excerpt(text))),
        Err(_) if text.len() >= TERMINATION_MESSAGE_LIMIT => Err(format!(
            "the report is larger than a termination message may be ({TERMINATION_MESSAGE_LIMIT} bytes; Kubernetes cut it): report fewer metrics"
        )),
        Err(e) => Err(format!("the report is not JSON ({e}): {}", excerpt(text))),
    }
}

fn numbers(m: &serde_json::Map<String, serde_json::Value>) -> Metrics {
    m.iter().filter_map(|(k, v)| v.as_f64().filter(|x| x.is_finite()).map(|x| (k.clone(), x))).collect()
}

fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    if cut.len() < text.len() { format!("{cut:?}...") } else { format!("{cut:?}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_reports() {
        let ok = trial(Some(r#"{"val_f1": 0.91, "val_loss": 0.2, "note": "x"}"#)).unwrap();
        assert_eq!(ok, Metrics::from([("val_f1".into(), 0.91), ("val_loss".into(), 0.2)]));
        // (message, expected error)
        let long = format!("{{\"a\": \"{}", "x".repeat(TERMINATION_MESSAGE_LIMIT));
        let table: [(Option<&str>, &str); 6] = [
            (None, "wrote no report"),
            (Some("  "), "wrote no report"),
            (Some("training done"), "is not JSON"),
            (Some("[1, 2]"), "not a JSON object"),
            (Some(r#"{"note": "x"}"#), "no numeric metric"),
            (Some(&long), "larger than a termination message"),
        ];
        for (message, want) in table {
            let e = trial(message).unwrap_err();
            assert!(e.contains(want), "{message:?}: {e}");
        }
    }

    #[test]
    fn evaluation_reports() {
        let (c, h) = evaluation(Some(r#"{"candidate": {"f1": 0.9}, "champion": {"f1": 0.8}}"#)).unwrap();
        assert_eq!((c["f1"], h["f1"]), (0.9, 0.8));
        let e = evaluation(Some(r#"{"f1": 0.9}"#)).unwrap_err();
        assert!(e.contains("no \"candidate\" object"), "{e}");
        let e = evaluation(Some(r#"{"candidate": 1, "champion": {}}"#)).unwrap_err();
        assert!(e.contains("not an object"), "{e}");
    }
}
