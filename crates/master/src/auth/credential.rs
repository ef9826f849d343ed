//! The caller's credential: an ACL token's secret read from `Authorization` (`Bearer <secret>`
//! or DC/OS's `token=<secret>`), or from `?access_token=` on the event stream (a browser's
//! EventSource cannot set headers). Secrets are made and hashed here.

use axum::http::{HeaderMap, StatusCode, header};

use crate::error::ApiError;

/// The longest `Authorization` header read (a secret is 64 characters); longer is refused
/// with 400 before anything else looks at it.
pub const MAX_AUTHORIZATION_BYTES: usize = 1024;

/// Bytes of randomness in a secret (256 bits), written as 64 hex digits.
const SECRET_BYTES: usize = 32;

/// A token's secret as the caller sent it. Never logged, never stored.
pub struct Secret(String);

impl Secret {
    /// The SHA-256 of the secret, lower-case hex: what the state stores and looks up.
    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

/// The SHA-256 of `secret`, lower-case hex (as join token secrets are kept).
pub fn hash(secret: &str) -> String {
    state::tls::sha256_hex(secret.as_bytes())
}

/// A new secret from the system's secure random source, or an error answer if it fails.
pub fn new_secret() -> Result<String, ApiError> {
    state::tls::random_hex(SECRET_BYTES).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The system's random source failed, so no secret could be made; nothing was done. Retry; if it persists, check the master's host.",
        )
    })
}

/// Why a request carries no usable credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    /// No `Authorization` header (nor `access_token` where it is accepted).
    Missing,
    /// Over [`MAX_AUTHORIZATION_BYTES`].
    Oversized(usize),
    /// Not printable ASCII, or a scheme without a secret.
    Malformed(&'static str),
    /// A scheme other than Bearer or `token=` (e.g. Basic).
    Scheme(String),
}

impl CredentialError {
    /// The answer: 400 for a header that cannot be read, 401 for one that carries no token.
    pub fn answer(&self) -> ApiError {
        match self {
            CredentialError::Missing => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "This request needs an ACL token, and it carries none; nothing was done. Send `Authorization: Bearer <secret>` (or `Authorization: token=<secret>`); with the CLI give --token, DROVER_TOKEN or `drover login`. The first token comes from `drover acl bootstrap`.",
            ),
            CredentialError::Oversized(len) => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "The Authorization header is {len} bytes; at most {MAX_AUTHORIZATION_BYTES} are read. Nothing was done: send `Authorization: Bearer <secret>` with the token's secret only."
                ),
            ),
            CredentialError::Malformed(why) => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "The Authorization header cannot be read: {why}. Nothing was done: send `Authorization: Bearer <secret>` or `Authorization: token=<secret>`."
                ),
            ),
            CredentialError::Scheme(scheme) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!(
                    "The Authorization scheme `{scheme}` is not accepted; nothing was done. Send an ACL token as `Authorization: Bearer <secret>` or `Authorization: token=<secret>`."
                ),
            ),
        }
    }
}

/// The secret of a request: from `Authorization`, or (only when `query_allowed`, for the
/// event stream) from `access_token=` in `query`.
pub fn secret(
    headers: &HeaderMap,
    query: Option<&str>,
    query_allowed: bool,
) -> Result<Secret, CredentialError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return match query.filter(|_| query_allowed).and_then(access_token) {
            Some(token) => parse_secret(token),
            None => Err(CredentialError::Missing),
        };
    };
    if values.next().is_some() {
        return Err(CredentialError::Malformed(
            "it is given more than once; send one",
        ));
    }
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(CredentialError::Oversized(value.len()));
    }
    let text = value
        .to_str()
        .map_err(|_| CredentialError::Malformed("it is not printable ASCII"))?
        .trim();
    if let Some(rest) = text.strip_prefix("token=") {
        return parse_secret(rest);
    }
    match text.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => parse_secret(rest),
        Some((scheme, _)) => Err(CredentialError::Scheme(scheme.to_string())),
        None if text.eq_ignore_ascii_case("bearer") => Err(CredentialError::Malformed(
            "`Bearer` is not followed by a secret",
        )),
        None if text.is_empty() => Err(CredentialError::Malformed("it is empty")),
        None => Err(CredentialError::Malformed(
            "it has no scheme; put `Bearer ` before the secret",
        )),
    }
}

fn access_token(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("access_token="))
}

fn parse_secret(raw: &str) -> Result<Secret, CredentialError> {
    let secret = raw.trim();
    if secret.is_empty() {
        return Err(CredentialError::Malformed("the secret is empty"));
    }
    if secret.len() > MAX_AUTHORIZATION_BYTES {
        return Err(CredentialError::Oversized(secret.len()));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CredentialError::Malformed(
            "the secret has spaces or characters outside printable ASCII",
        ));
    }
    Ok(Secret(secret.to_string()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).expect("a header value"),
        );
        h
    }

    #[test]
    fn bearer_and_dcos_token_headers_give_the_same_secret() {
        for value in [&b"Bearer abc123"[..], b"bearer   abc123", b"token=abc123"] {
            let s = secret(&with(value), None, false).expect("readable");
            assert_eq!(s.hash(), hash("abc123"));
        }
    }

    #[test]
    fn unreadable_headers_are_refused_with_what_was_wrong() {
        assert_eq!(
            secret(&HeaderMap::new(), None, false).err(),
            Some(CredentialError::Missing)
        );
        let long = format!("Bearer {}", "a".repeat(2000));
        assert!(matches!(
            secret(&with(long.as_bytes()), None, false),
            Err(CredentialError::Oversized(_))
        ));
        assert!(matches!(
            secret(&with(b"Basic dXNlcjpwYXNz"), None, false),
            Err(CredentialError::Scheme(s)) if s == "Basic"
        ));
        for bad in [&b"Bearer"[..], b"token=", b"abc", b"Bearer \xff\xfe"] {
            assert!(
                matches!(
                    secret(&with(bad), None, false),
                    Err(CredentialError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        for e in [
            CredentialError::Missing,
            CredentialError::Oversized(5000),
            CredentialError::Scheme("Basic".into()),
        ] {
            assert!(e.answer().body.message.contains("Bearer"));
        }
    }

    #[test]
    fn the_query_carries_a_token_only_where_it_is_allowed() {
        let q = Some("event_type=x&access_token=s3cret");
        assert!(secret(&HeaderMap::new(), q, true).is_ok());
        assert_eq!(
            secret(&HeaderMap::new(), q, false).err(),
            Some(CredentialError::Missing)
        );
    }

    #[test]
    fn secrets_are_long_random_and_hashed_not_kept() {
        let a = new_secret().expect("random");
        let b = new_secret().expect("random");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a);
    }
}
