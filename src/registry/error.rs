//! Why a registry call failed, as a value a caller can decide on.

use std::time::Duration;

/// The most characters of a raw response body or of a registry message that an error quotes.
pub const EXCERPT_CHARS: usize = 200;

/// MLflow's error codes (`error_code` in its error JSON) that Champion tells apart.
pub mod error_codes {
    /// The model, version or alias does not exist.
    pub const RESOURCE_DOES_NOT_EXIST: &str = "RESOURCE_DOES_NOT_EXIST";
    /// The model (or version) already exists.
    pub const RESOURCE_ALREADY_EXISTS: &str = "RESOURCE_ALREADY_EXISTS";
    /// A parameter was refused (a bad filter, a version that is not a number, ...).
    pub const INVALID_PARAMETER_VALUE: &str = "INVALID_PARAMETER_VALUE";
    /// The token is missing or wrong.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// The token may not do this.
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
}

/// Why a registry call failed. Messages are written for a status condition or an Event: they name the call,
/// never the server's URL or the token, and quote at most [`EXCERPT_CHARS`] characters of what came back.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached: no connection, a broken connection or body, a TLS failure.
    #[error(
        "cannot reach the model registry for {call} ({cause}); check mlflow.trackingUri in the operator config and that MLflow is running"
    )]
    Unreachable {
        /// The call, such as `GET registered-models/alias`.
        call: String,
        /// The innermost cause, e.g. `Connection refused (os error 111)`.
        cause: String,
    },
    /// The registry did not answer within the per-call timeout.
    #[error("the model registry did not answer {call} within {after:?} (timed out)")]
    Timeout {
        /// The call.
        call: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The registry answered with its own error: an HTTP status and MLflow's `error_code` and `message`.
    #[error("the model registry refused {call}: HTTP {status} {error_code}: {message}")]
    Api {
        /// The call.
        call: String,
        /// The HTTP status code.
        status: u16,
        /// MLflow's error code, such as `RESOURCE_DOES_NOT_EXIST` (see [`error_codes`]).
        error_code: String,
        /// MLflow's message, on one line, at most [`EXCERPT_CHARS`] characters.
        message: String,
    },
    /// Something answered with an HTTP error that is not MLflow's error JSON (a proxy, a login page).
    #[error(
        "the model registry answered {call} with HTTP {status}{}; check mlflow.trackingUri and the token in the operator config",
        if body_excerpt.is_empty() { String::new() } else { format!(": {body_excerpt}") }
    )]
    Http {
        /// The call.
        call: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the body, on one line, at most [`EXCERPT_CHARS`] characters.
        body_excerpt: String,
    },
    /// A success answer that is not what MLflow sends (not JSON, a missing or mistyped field).
    #[error("the model registry's answer to {call} is not MLflow REST JSON: {problem}")]
    BadBody {
        /// The call.
        call: String,
        /// What is wrong, with the start of the body.
        problem: String,
    },
    /// The answer was larger than the client reads.
    #[error("the model registry's answer to {call} is larger than {limit} bytes")]
    TooLarge {
        /// The call.
        call: String,
        /// The limit, in bytes.
        limit: usize,
    },
}

impl RegistryError {
    /// Whether the registry was not reached or did not answer in time: the registry's state is unknown, so a
    /// caller keeps what it has. 502/503/504 from a proxy in front of it count as not reached.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } => true,
            Self::Http { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// Whether the registry answered that the model, version or alias does not exist: `RESOURCE_DOES_NOT_EXIST`,
    /// or MLflow's answer to a missing alias, which is `INVALID_PARAMETER_VALUE` with the message
    /// "Registered model alias X not found." (MLflow 3.17.2; `tests/fixtures/mlflow/error-alias-not-found.json`).
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Api { error_code, message, .. } => {
                error_code == error_codes::RESOURCE_DOES_NOT_EXIST
                    || (error_code == error_codes::INVALID_PARAMETER_VALUE
                        && message.starts_with("Registered model alias ")
                        && message.ends_with(" not found."))
            }
            _ => false,
        }
    }

    /// Whether the registry answered that the thing to create already exists.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Self::Api { error_code, .. } if error_code == error_codes::RESOURCE_ALREADY_EXISTS)
    }

    /// Whether the token was refused (HTTP 401/403, or MLflow's `UNAUTHENTICATED`/`PERMISSION_DENIED`).
    pub fn is_auth(&self) -> bool {
        match self {
            Self::Api { status, error_code, .. } => {
                matches!(status, 401 | 403)
                    || error_code == error_codes::UNAUTHENTICATED
                    || error_code == error_codes::PERMISSION_DENIED
            }
            Self::Http { status, .. } => matches!(status, 401 | 403),
            _ => false,
        }
    }

    /// A short fixed label for metrics: `unreachable`, `timeout`, `not_found`, `auth`, `api`, `http`,
    /// `bad_body` or `too_large`.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Timeout { .. } => "timeout",
            e if e.is_not_found() => "not_found",
            e if e.is_auth() => "auth",
            Self::Api { .. } => "api",
            Self::Http { .. } => "http",
            Self::BadBody { .. } => "bad_body",
            Self::TooLarge { .. } => "too_large",
        }
    }
}

/// The start of a raw body, at most [`EXCERPT_CHARS`] characters on one line, `…` when cut.
pub(crate) fn excerpt(body: &[u8]) -> String {
    // Decode a little more than needed so a cut multi-byte character does not matter.
    let head = &body[..body.len().min(EXCERPT_CHARS * 4)];
    short(&String::from_utf8_lossy(head))
}

/// `s` on one line (control characters as spaces, trimmed), cut to [`EXCERPT_CHARS`] characters with `…`.
pub(crate) fn short(s: &str) -> String {
    let line = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
    let line = line.trim();
    match line.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> RegistryError {
        RegistryError::Api { call: "GET x".into(), status, error_code: code.into(), message: "m".into() }
    }

    #[test]
    fn classifies_errors() {
        let unreachable = RegistryError::Unreachable { call: "GET x".into(), cause: "refused".into() };
        let timeout = RegistryError::Timeout { call: "GET x".into(), after: Duration::from_secs(1) };
        let http = |status| RegistryError::Http { call: "GET x".into(), status, body_excerpt: String::new() };
        let bad = RegistryError::BadBody { call: "GET x".into(), problem: "p".into() };
        let large = RegistryError::TooLarge { call: "GET x".into(), limit: 1 };
        let table = [
            (unreachable, "unreachable", true),
            (timeout, "timeout", true),
            (http(503), "http", true),
            (http(404), "http", false),
            (http(401), "auth", false),
            (api(404, error_codes::RESOURCE_DOES_NOT_EXIST), "not_found", false),
            (api(400, error_codes::RESOURCE_ALREADY_EXISTS), "api", false),
            (api(401, error_codes::UNAUTHENTICATED), "auth", false),
            (api(403, error_codes::PERMISSION_DENIED), "auth", false),
            (api(500, "INTERNAL_ERROR"), "api", false),
            (bad, "bad_body", false),
            (large, "too_large", false),
        ];
        for (e, category, unreachable) in table {
            assert_eq!(e.category(), category, "{e:?}");
            assert_eq!(e.is_unreachable(), unreachable, "{e:?}");
        }
        assert!(api(404, error_codes::RESOURCE_DOES_NOT_EXIST).is_not_found());
        assert!(!api(404, "ENDPOINT_NOT_FOUND").is_not_found());
        let missing_alias = |message: &str| RegistryError::Api {
            call: "GET registered-models/alias".into(),
            status: 400,
            error_code: error_codes::INVALID_PARAMETER_VALUE.into(),
            message: message.into(),
        };
        assert!(missing_alias("Registered model alias champion not found.").is_not_found());
        assert!(!missing_alias("Invalid clause(s) in filter string: bogus").is_not_found());
        assert!(api(400, error_codes::RESOURCE_ALREADY_EXISTS).is_already_exists());
    }

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        assert_eq!(excerpt(b"a\nb\r\n"), "a b");
        let long = "x".repeat(1000);
        assert_eq!(excerpt(long.as_bytes()).chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(short(&"ä".repeat(300)).chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(excerpt(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn messages_name_the_call() {
        let e = api(404, error_codes::RESOURCE_DOES_NOT_EXIST);
        assert_eq!(e.to_string(), "the model registry refused GET x: HTTP 404 RESOURCE_DOES_NOT_EXIST: m");
    }
}
