//! Control requests: the day-2 verbs (`promote`, `abort`, ...) travel as the annotation
//! `champion.ml/request: <verb>[:<argument>]/<id>`; the operator acts on a value once and records it in
//! `status.lastRequest`, so a request is consumed exactly once, across restarts too.

use std::fmt;

/// A day-2 verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// Advance one step (or leave an indefinite pause).
    Promote,
    /// Skip the remaining steps: the candidate becomes stable now.
    PromoteFull,
    /// Send all traffic back to stable and stop the rollout.
    Abort,
    /// Start the steps again for a rolled-back candidate.
    Retry,
    /// Hold the rollout where it is.
    Pause,
    /// Undo `Pause`.
    Resume,
    /// Serve a previous version at once, without steps; `None` means the previous stable.
    Rollback(Option<String>),
    /// Read the followed registry alias now instead of at the next poll.
    Refresh,
    /// Move the followed registry alias to this registry version number (the operator holds the
    /// registry's credentials, so people without MLflow at hand can promote).
    PromoteVersion(String),
}

impl Verb {
    /// Whether the verb is about the registry alias (handled before the rollout decides).
    pub fn is_registry(&self) -> bool {
        matches!(self, Verb::Refresh | Verb::PromoteVersion(_))
    }
}

/// A request as read from the annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The verb.
    pub verb: Verb,
    /// The annotation's whole value, recorded in status once consumed.
    pub raw: String,
}

/// Why an annotation value is not a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request {raw:?}: {why}")]
pub struct RequestError {
    /// The annotation's value.
    pub raw: String,
    /// What is wrong.
    pub why: String,
}

impl Request {
    /// Parses `<verb>[:<argument>]/<id>`.
    pub fn parse(raw: &str) -> Result<Self, RequestError> {
        let err = |why: &str| RequestError { raw: raw.to_string(), why: why.to_string() };
        let (body, id) = raw.rsplit_once('/').ok_or_else(|| err("expected <verb>/<id>, e.g. promote/1764230400"))?;
        if id.is_empty() {
            return Err(err("the id after / is empty"));
        }
        let (verb, arg) = match body.split_once(':') {
            Some((v, a)) => (v, Some(a)),
            None => (body, None),
        };
        let verb = match (verb, arg) {
            ("promote", None) => Verb::Promote,
            ("promote-full", None) => Verb::PromoteFull,
            ("abort", None) => Verb::Abort,
            ("retry", None) => Verb::Retry,
            ("pause", None) => Verb::Pause,
            ("resume", None) => Verb::Resume,
            ("rollback", None) => Verb::Rollback(None),
            ("rollback", Some("")) => return Err(err("rollback: needs a version after the colon")),
            ("rollback", Some(v)) => Verb::Rollback(Some(v.to_string())),
            ("refresh", None) => Verb::Refresh,
            ("promote-version", None | Some("")) => {
                return Err(err("promote-version: needs a registry version number after the colon"));
            }
            ("promote-version", Some(v)) if v.bytes().all(|b| b.is_ascii_digit()) => Verb::PromoteVersion(v.into()),
            ("promote-version", Some(_)) => {
                return Err(err("promote-version: the registry version must be a number, such as 3"));
            }
            (_, Some(_)) => {
                return Err(err(
                    "only rollback and promote-version take an argument (rollback:<version>, promote-version:<number>)",
                ));
            }
            _ => {
                return Err(err(
                    "unknown verb; use promote, promote-full, abort, retry, pause, resume, rollback, refresh or promote-version",
                ));
            }
        };
        Ok(Self { verb, raw: raw.to_string() })
    }

    /// The annotation value for a verb with a fresh id.
    pub fn format(verb: &Verb, id: &str) -> String {
        format!("{verb}/{id}")
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verb::Promote => f.write_str("promote"),
            Verb::PromoteFull => f.write_str("promote-full"),
            Verb::Abort => f.write_str("abort"),
            Verb::Retry => f.write_str("retry"),
            Verb::Pause => f.write_str("pause"),
            Verb::Resume => f.write_str("resume"),
            Verb::Rollback(None) => f.write_str("rollback"),
            Verb::Rollback(Some(v)) => write!(f, "rollback:{v}"),
            Verb::Refresh => f.write_str("refresh"),
            Verb::PromoteVersion(v) => write!(f, "promote-version:{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_verb() {
        let verbs = [
            Verb::Promote,
            Verb::PromoteFull,
            Verb::Abort,
            Verb::Retry,
            Verb::Pause,
            Verb::Resume,
            Verb::Rollback(None),
            Verb::Rollback(Some("2.0.0".into())),
            Verb::Refresh,
            Verb::PromoteVersion("4".into()),
        ];
        for v in verbs {
            let raw = Request::format(&v, "17");
            assert_eq!(Request::parse(&raw).unwrap(), Request { verb: v, raw: raw.clone() });
        }
    }

    #[test]
    fn rejects_malformed_values() {
        for (raw, why) in [
            ("promote", "expected <verb>/<id>"),
            ("promote/", "id after / is empty"),
            ("jump/1", "unknown verb"),
            ("abort:now/1", "only rollback and promote-version take an argument"),
            ("promote-version/1", "needs a registry version number"),
            ("promote-version:v4/1", "must be a number"),
            ("rollback:/1", "needs a version after the colon"),
        ] {
            let e = Request::parse(raw).unwrap_err().to_string();
            assert!(e.contains(why), "{raw}: {e}");
        }
    }
}
