//! A duration written the way people write them in YAML: `30s`, `10m`, `1h30m`, `7d`.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The pattern a duration string must match: one or more `<integer><unit>` parts, units ms, s, m, h, d.
pub const DURATION_PATTERN: &str = r"^([0-9]{1,9}(ms|s|m|h|d))+$";

/// A duration such as `90s`, `10m`, `1h30m` or `7d` (units `ms`, `s`, `m`, `h`, `d`).
///
/// Kept as the string the user wrote, so that status and `kubectl get -o yaml` show it unchanged; the
/// schema pattern rejects malformed values at `kubectl apply`, and [`Duration::to_std`] parses it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

impl Duration {
    /// A duration from its string form (not validated until [`Duration::to_std`] is called).
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// Parses the string into a [`std::time::Duration`].
    pub fn to_std(&self) -> Result<std::time::Duration, DurationError> {
        parse_duration(&self.0)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 32,
            "pattern": DURATION_PATTERN,
        })
    }
}

/// Why a duration string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {why} (expected e.g. 30s, 10m, 1h30m, 7d)")]
pub struct DurationError {
    /// The string that was given.
    pub input: String,
    /// What was wrong with it.
    pub why: &'static str,
}

/// Parses `90s`, `10m`, `1h30m`, `7d`, `250ms` into a [`std::time::Duration`].
pub fn parse_duration(input: &str) -> Result<std::time::Duration, DurationError> {
    let err = |why| DurationError { input: input.to_string(), why };
    if input.is_empty() {
        return Err(err("empty"));
    }
    let mut total = std::time::Duration::ZERO;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("a number must come before each unit"));
        }
        if digits > 9 {
            return Err(err("number too large"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err("not a number"))?;
        rest = &rest[digits..];
        let (unit_secs_millis, unit_len) = if rest.starts_with("ms") {
            (1u64, 2)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else if rest.starts_with('d') {
            (86_400_000, 1)
        } else {
            return Err(err("unknown or missing unit"));
        };
        rest = &rest[unit_len..];
        total += std::time::Duration::from_millis(n * unit_secs_millis);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as D;

    #[test]
    fn parses_the_forms_people_write() {
        let table = [
            ("30s", D::from_secs(30)),
            ("10m", D::from_secs(600)),
            ("1h30m", D::from_secs(5400)),
            ("7d", D::from_secs(7 * 86400)),
            ("250ms", D::from_millis(250)),
            ("1m30s", D::from_secs(90)),
            ("0s", D::ZERO),
        ];
        for (s, want) in table {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn rejects_malformed_strings() {
        for s in ["", "10", "m", "1.5h", "10x", "-1s", "1h 30m", "9999999999s"] {
            assert!(parse_duration(s).is_err(), "{s} should be rejected");
        }
    }
}
