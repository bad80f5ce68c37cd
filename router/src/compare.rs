//! Comparing a live and a shadow JSON answer at a field path: the pure part of shadow agreement, also used to read
//! the predicted label that feedback is scored against.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::Value;

use crate::config::CompareMode;

/// A parsed field path: a dotted path (`predictions.0.label`) or a JSON pointer (`/predictions/0/label`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// Parses a path; the empty path is the whole document.
    pub fn parse(path: &str) -> Result<FieldPath, String> {
        if path.is_empty() {
            return Ok(FieldPath(Vec::new()));
        }
        if let Some(pointer) = path.strip_prefix('/') {
            let segments = pointer.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
            return Ok(FieldPath(segments));
        }
        let segments: Vec<String> = path.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("{path:?} has an empty segment; use a.b.0 or a JSON pointer /a/b/0"));
        }
        Ok(FieldPath(segments))
    }

    /// The value at this path, if the document has one.
    pub fn lookup<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(doc, |v, segment| match v {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }
}

/// The judgement on one pair of answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The shadow agrees with the live answer; `difference` is the numeric difference in numeric mode.
    Agree {
        /// The largest absolute difference (numeric mode only).
        difference: Option<f64>,
    },
    /// The shadow disagrees.
    Disagree {
        /// The largest absolute difference (numeric mode, same shapes only).
        difference: Option<f64>,
    },
    /// The shadow's answer cannot be compared: not JSON, no value at the path, or a value the mode cannot read.
    ShadowUnusable,
    /// The live answer cannot be compared; the pair says nothing about the shadow and is not counted as agreement.
    LiveUnusable,
}

/// Compares two answer bodies at `path` with `mode`.
pub fn compare_bodies(path: &FieldPath, mode: &CompareMode, live: &[u8], shadow: &[u8]) -> Outcome {
    let Some(live_doc) = serde_json::from_slice::<Value>(live).ok() else {
        return Outcome::LiveUnusable;
    };
    let Some(live) = path.lookup(&live_doc) else {
        return Outcome::LiveUnusable;
    };
    if !readable(mode, live) {
        return Outcome::LiveUnusable;
    }
    let Some(shadow_doc) = serde_json::from_slice::<Value>(shadow).ok() else {
        return Outcome::ShadowUnusable;
    };
    match path.lookup(&shadow_doc) {
        Some(shadow) if readable(mode, shadow) => compare_values(mode, live, shadow),
        _ => Outcome::ShadowUnusable,
    }
}

/// Compares two values that `mode` can read.
pub fn compare_values(mode: &CompareMode, live: &Value, shadow: &Value) -> Outcome {
    match mode {
        CompareMode::Exact => verdict(json_eq(live, shadow), None),
        CompareMode::Numeric { tolerance } => {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            if !(numbers(live, &mut a) && numbers(shadow, &mut b)) {
                return Outcome::ShadowUnusable;
            }
            if a.len() != b.len() {
                return Outcome::Disagree { difference: None };
            }
            let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
            verdict(diff <= *tolerance, Some(diff))
        }
        CompareMode::TopK { k } => match (top_labels(live, *k as usize), top_labels(shadow, *k as usize)) {
            (Some(a), Some(b)) => verdict(a == b, None),
            _ => Outcome::ShadowUnusable,
        },
    }
}

fn verdict(agree: bool, difference: Option<f64>) -> Outcome {
    if agree { Outcome::Agree { difference } } else { Outcome::Disagree { difference } }
}

fn readable(mode: &CompareMode, v: &Value) -> bool {
    match mode {
        CompareMode::Exact => true,
        CompareMode::Numeric { .. } => numbers(v, &mut Vec::new()),
        CompareMode::TopK { k } => top_labels(v, *k as usize).is_some(),
    }
}

/// JSON equality with numbers compared by value (`1 == 1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The numbers of a number or of nested arrays of numbers, in order; false for anything else.
fn numbers(v: &Value, out: &mut Vec<f64>) -> bool {
    match v {
        Value::Number(n) => n.as_f64().map(|x| out.push(x)).is_some(),
        Value::Array(items) => items.iter().all(|i| numbers(i, out)),
        _ => false,
    }
}

/// The `k` best labels of a classifier output, as a set.
pub fn top_labels(v: &Value, k: usize) -> Option<BTreeSet<String>> {
    let mut scored: Vec<(String, f64)> = match v {
        Value::Object(map) => {
            map.iter().map(|(label, s)| s.as_f64().map(|s| (label.clone(), s))).collect::<Option<_>>()?
        }
        Value::Array(items) if items.iter().all(Value::is_number) => {
            items.iter().enumerate().map(|(i, s)| (i.to_string(), s.as_f64().unwrap_or(f64::NAN))).collect()
        }
        // Labels best first: the order is the ranking.
        Value::Array(items) => {
            return items.iter().take(k).map(scalar_label).collect();
        }
        other => return scalar_label(other).map(|l| BTreeSet::from([l])),
    };
    // Best score first; equal scores by label, so the choice is stable.
    scored.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
    Some(scored.into_iter().take(k).map(|(l, _)| l).collect())
}

/// A label as text: strings as they are, numbers without a needless `.0`, booleans as `true`/`false`.
pub fn scalar_label(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => Some(format!("{}", x as i64)),
            _ => Some(n.to_string()),
        },
        _ => None,
    }
}

/// The predicted label of a value: a scalar as such, a classifier output as its arg-max.
pub fn predicted_label(v: &Value) -> Option<String> {
    scalar_label(v).or_else(|| top_labels(v, 1)?.into_iter().next())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(p: &str) -> FieldPath {
        FieldPath::parse(p).unwrap()
    }

    #[test]
    fn paths_dotted_and_pointer() {
        let doc = json!({"predictions": [{"label": "cat", "a/b": 1}, 2]});
        assert_eq!(path("predictions.0.label").lookup(&doc), Some(&json!("cat")));
        assert_eq!(path("/predictions/0/label").lookup(&doc), Some(&json!("cat")));
        assert_eq!(path("/predictions/0/a~1b").lookup(&doc), Some(&json!(1)));
        assert_eq!(path("predictions.1").lookup(&doc), Some(&json!(2)));
        assert_eq!(path("").lookup(&doc), Some(&doc));
        assert_eq!(path("predictions.7").lookup(&doc), None);
        assert_eq!(path("predictions.x").lookup(&doc), None);
        assert!(FieldPath::parse("a..b").is_err());
        assert!(FieldPath::parse(".a").is_err());
    }

    #[test]
    fn exact_mode() {
        let exact = CompareMode::Exact;
        let cases = [
            (json!(1), json!(1.0), true),
            (json!({"a": [1, "x"]}), json!({"a": [1, "x"]}), true),
            (json!({"a": [1, "x"]}), json!({"a": [1, "y"]}), false),
            (json!("cat"), json!("dog"), false),
            (json!([1, 2]), json!([1, 2, 3]), false),
        ];
        for (a, b, agree) in cases {
            let got = compare_values(&exact, &a, &b);
            assert_eq!(matches!(got, Outcome::Agree { .. }), agree, "{a} vs {b}: {got:?}");
        }
    }

    #[test]
    fn numeric_mode_with_tolerance_and_difference() {
        let m = CompareMode::Numeric { tolerance: 0.05 };
        assert!(
            matches!(compare_values(&m, &json!(0.90), &json!(0.94)), Outcome::Agree { difference: Some(d) } if (d - 0.04).abs() < 1e-9)
        );
        assert!(
            matches!(compare_values(&m, &json!(0.9), &json!(0.99)), Outcome::Disagree { difference: Some(d) } if (d - 0.09).abs() < 1e-9)
        );
        // Element-wise over arrays: the largest difference decides.
        assert!(matches!(compare_values(&m, &json!([[0.1, 0.9]]), &json!([[0.2, 0.9]])), Outcome::Disagree { .. }));
        assert!(matches!(compare_values(&m, &json!([0.1, 0.9]), &json!([0.11, 0.89])), Outcome::Agree { .. }));
        assert_eq!(compare_values(&m, &json!([1, 2]), &json!([1])), Outcome::Disagree { difference: None });
        assert_eq!(compare_values(&m, &json!(1), &json!("1")), Outcome::ShadowUnusable);
    }

    #[test]
    fn top_k_mode() {
        let top1 = CompareMode::TopK { k: 1 };
        let top2 = CompareMode::TopK { k: 2 };
        let live = json!({"cat": 0.6, "dog": 0.3, "fox": 0.1});
        let shadow = json!({"cat": 0.2, "dog": 0.7, "fox": 0.1});
        assert!(matches!(compare_values(&top1, &live, &shadow), Outcome::Disagree { .. }));
        assert!(matches!(compare_values(&top2, &live, &shadow), Outcome::Agree { .. }));
        // Score arrays: labels are indices.
        assert!(matches!(
            compare_values(&top1, &json!([0.1, 0.8, 0.1]), &json!([0.2, 0.5, 0.3])),
            Outcome::Agree { .. }
        ));
        assert!(matches!(
            compare_values(&top1, &json!([0.1, 0.8, 0.1]), &json!([0.6, 0.3, 0.1])),
            Outcome::Disagree { .. }
        ));
        // Ranked label lists, and single labels.
        assert!(matches!(
            compare_values(&top2, &json!(["a", "b", "c"]), &json!(["b", "a", "d"])),
            Outcome::Agree { .. }
        ));
        assert!(matches!(compare_values(&top1, &json!("a"), &json!("a")), Outcome::Agree { .. }));
        assert_eq!(compare_values(&top1, &json!("a"), &json!({"a": "x"})), Outcome::ShadowUnusable);
    }

    #[test]
    fn bodies_judge_which_side_is_unusable() {
        let p = path("predictions.0");
        let m = CompareMode::Exact;
        assert_eq!(
            compare_bodies(&p, &m, br#"{"predictions":[1]}"#, br#"{"predictions":[1]}"#),
            Outcome::Agree { difference: None }
        );
        assert_eq!(compare_bodies(&p, &m, br#"{"predictions":[1]}"#, b"<html>"), Outcome::ShadowUnusable);
        assert_eq!(compare_bodies(&p, &m, br#"{"predictions":[1]}"#, br#"{"error":"x"}"#), Outcome::ShadowUnusable);
        assert_eq!(compare_bodies(&p, &m, b"oops", br#"{"predictions":[1]}"#), Outcome::LiveUnusable);
        assert_eq!(compare_bodies(&p, &m, br#"{"predictions":[]}"#, br#"{"predictions":[1]}"#), Outcome::LiveUnusable);
    }

    #[test]
    fn predicted_labels() {
        assert_eq!(predicted_label(&json!("fraud")), Some("fraud".into()));
        assert_eq!(predicted_label(&json!(1.0)), Some("1".into()));
        assert_eq!(predicted_label(&json!(0.25)), Some("0.25".into()));
        assert_eq!(predicted_label(&json!([0.2, 0.7, 0.1])), Some("1".into()));
        assert_eq!(predicted_label(&json!({"no": 0.3, "yes": 0.7})), Some("yes".into()));
        assert_eq!(predicted_label(&json!(null)), None);
    }
}
