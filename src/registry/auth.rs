//! The registry token, from a Secret in the operator's own namespace (`mlflow.tokenSecretRef`).
//!
//! Reading the Secret is the controller's I/O; this part only checks what it holds, so the rules are tested
//! without a cluster.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use reqwest::header::HeaderValue;

/// A checked registry token, ready to send as `Authorization: Bearer <token>`. Its `Debug` never shows it.
#[derive(Clone)]
pub struct BearerToken(HeaderValue);

impl BearerToken {
    /// `token` as a bearer token; `None` when it is empty or holds white space, control or non-ASCII
    /// characters (which could not be, or could smuggle, a header).
    pub fn parse(token: &str) -> Option<Self> {
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
            return None;
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
        value.set_sensitive(true);
        Some(Self(value))
    }

    /// The `Authorization` header value (marked sensitive, so HTTP logging hides it).
    pub fn header(&self) -> &HeaderValue {
        &self.0
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Why the token Secret's data gives no usable token. Messages name the key, never the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The Secret has no such key.
    #[error("the MLflow token Secret has no key {key:?}; set mlflow.tokenSecretRef.key to one of its keys")]
    MissingKey {
        /// The key that was looked for.
        key: String,
    },
    /// The value is empty (or only white space).
    #[error("the MLflow token Secret's key {key:?} is empty")]
    Empty {
        /// The key.
        key: String,
    },
    /// The value cannot go into an HTTP header: not UTF-8, or white space or control characters inside.
    #[error(
        "the MLflow token Secret's key {key:?} is not a token (not UTF-8, or white space or control characters inside it)"
    )]
    Malformed {
        /// The key.
        key: String,
    },
}

/// The token in `data[key]` of the Secret named by `mlflow.tokenSecretRef`, sent as `Authorization: Bearer`.
///
/// One trailing newline or surrounding white space (as `echo token > file` leaves) is dropped; anything that
/// could not be a header value is refused.
pub fn token_from_secret_data(data: &BTreeMap<String, ByteString>, key: &str) -> Result<BearerToken, TokenError> {
    let raw = data.get(key).ok_or_else(|| TokenError::MissingKey { key: key.to_string() })?;
    let text = std::str::from_utf8(&raw.0).map_err(|_| TokenError::Malformed { key: key.to_string() })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Empty { key: key.to_string() });
    }
    BearerToken::parse(token).ok_or_else(|| TokenError::Malformed { key: key.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(value: &[u8]) -> BTreeMap<String, ByteString> {
        BTreeMap::from([("token".to_string(), ByteString(value.to_vec()))])
    }

    #[test]
    fn reads_tokens() {
        for value in [&b"dapi123"[..], b"  dapi123\n"] {
            let token = token_from_secret_data(&data(value), "token").unwrap();
            assert_eq!(token.header().to_str().unwrap(), "Bearer dapi123");
            assert!(token.header().is_sensitive());
            assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");
        }
        let table: [(&[u8], &str, TokenError); 6] = [
            (b"x", "other", TokenError::MissingKey { key: "other".into() }),
            (b"", "token", TokenError::Empty { key: "token".into() }),
            (b" \n", "token", TokenError::Empty { key: "token".into() }),
            (b"two words", "token", TokenError::Malformed { key: "token".into() }),
            (b"a\r\nX-Evil: 1", "token", TokenError::Malformed { key: "token".into() }),
            (&[0xff, 0xfe], "token", TokenError::Malformed { key: "token".into() }),
        ];
        for (value, key, want) in table {
            let got = token_from_secret_data(&data(value), key).unwrap_err();
            assert_eq!(got, want, "{value:?}");
            let message = want.to_string();
            assert!(message.contains(key), "{message}");
        }
    }

    #[test]
    fn messages_never_quote_the_value() {
        let e = token_from_secret_data(&data(b"secret value"), "token").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
