//! The callback URLs the API accepts: absolute `http` URLs with a host, no credentials, at
//! most 2 KiB. Checked when a URL is subscribed or unsubscribed; what is stored was checked.

use axum::http::Uri;

/// The longest callback URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// A callback URL that passed [`CallbackUrl::parse`], kept as the caller wrote it (so that
/// unsubscribing takes the same text as subscribing, as in Marathon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl {
    text: String,
    uri: Uri,
}

/// Why a callback URL was refused; the message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Longer than [`MAX_URL_BYTES`].
    #[error(
        "callbackUrl is {0} bytes long; the limit is {MAX_URL_BYTES} bytes (2 KiB): give a shorter URL"
    )]
    TooLong(usize),
    /// Not a URL at all, or not an absolute one.
    #[error(
        "callbackUrl `{url}` is not an absolute URL ({why}); give one such as http://hooks.example:9090/marathon-events"
    )]
    NotAUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// `https`: drover's master has no TLS client with a trust store to verify subscribers.
    #[error(
        "callbackUrl `{0}`: https callbacks are not delivered yet (the master cannot verify a subscriber's certificate); use an http URL on a network you trust, or read GET /v2/events, which the master serves over its own listener"
    )]
    Https(String),
    /// A scheme other than `http`.
    #[error(
        "callbackUrl `{url}` uses the scheme `{scheme}`; events are POSTed over http only: give an http:// URL"
    )]
    Scheme {
        /// What was given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// `user:password@` in the URL.
    #[error(
        "callbackUrl `{0}` carries credentials (user@ or user:password@): drover sends subscribers no credentials and would show them to every reader of GET /v2/eventSubscriptions; give the URL without them"
    )]
    Credentials(String),
    /// A port outside 1–65535.
    #[error("callbackUrl `{0}` has no valid port: give one from 1 to 65535, or none (80)")]
    Port(String),
}

impl CallbackUrl {
    /// Checks `text` as a callback URL.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        if text.len() > MAX_URL_BYTES {
            return Err(UrlError::TooLong(text.len()));
        }
        let not_a_url = |why: &str| UrlError::NotAUrl {
            url: text.to_string(),
            why: why.to_string(),
        };
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(not_a_url("it contains spaces or control characters"));
        }
        if text.contains('#') {
            return Err(not_a_url("a #fragment is never sent to a server"));
        }
        // The scheme first: `file:///…` and the like are refused for what they are, not for
        // lacking a host.
        match text.split_once("://").map(|(s, _)| s.to_ascii_lowercase()) {
            None => return Err(not_a_url("it has no scheme: start it with http://")),
            Some(s) if s == "http" => {}
            Some(s) if s == "https" => return Err(UrlError::Https(text.to_string())),
            Some(scheme) => {
                return Err(UrlError::Scheme {
                    url: text.to_string(),
                    scheme,
                });
            }
        }
        let uri: Uri = text
            .parse()
            .map_err(|e: axum::http::uri::InvalidUri| not_a_url(&e.to_string()))?;
        let Some(authority) = uri.authority() else {
            return Err(not_a_url("it names no host"));
        };
        if authority.as_str().contains('@') {
            return Err(UrlError::Credentials(text.to_string()));
        }
        if authority.host().is_empty() {
            return Err(not_a_url("it names no host"));
        }
        // The port as written (`http` lets 99999 through as no port at all); an IPv6 host's
        // colons are inside its brackets.
        let text_after_host = match authority.as_str().rfind(']') {
            Some(end) => &authority.as_str()[end + 1..],
            None => authority.as_str(),
        };
        if let Some((_, port)) = text_after_host.rsplit_once(':')
            && !port.parse::<u16>().is_ok_and(|p| p != 0)
        {
            return Err(UrlError::Port(text.to_string()));
        }
        Ok(CallbackUrl {
            text: text.to_string(),
            uri,
        })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The URL as a request target.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_with_a_host_are_accepted_as_written() {
        for url in [
            "http://127.0.0.1:9090/callback",
            "http://hooks.example/marathon?team=a&x=1",
            "http://[::1]:8080/",
            "HTTP://Hooks.Example:80",
            "http://localhost:65535/a/b%20c",
        ] {
            let parsed = CallbackUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.as_str(), url);
            assert!(parsed.uri().host().is_some(), "{url}");
        }
    }

    #[test]
    fn other_urls_are_refused_saying_why() {
        let long = format!("http://h.example/{}", "a".repeat(MAX_URL_BYTES));
        let cases: Vec<(&str, &str)> = vec![
            (&long, "the limit is 2048 bytes"),
            ("", "not an absolute URL"),
            ("hooks.example/callback", "no scheme"),
            ("/callback", "no scheme"),
            ("mailto:ops@example.com", "no scheme"),
            ("ftp://hooks.example/x", "the scheme `ftp`"),
            ("file:///etc/passwd", "the scheme `file`"),
            (
                "https://hooks.example/x",
                "https callbacks are not delivered yet",
            ),
            ("http://user:secret@hooks.example/x", "carries credentials"),
            ("http://token@hooks.example/x", "carries credentials"),
            ("http://hooks.example:0/x", "valid port"),
            ("http://hooks.example:99999/x", "valid port"),
            ("http://hooks example/x", "spaces"),
            ("http://hooks.example/x\n", "control characters"),
            ("http://hooks.example/x#part", "#fragment"),
            ("http:///x", "not an absolute URL"),
        ];
        for (url, says) in cases {
            let err = CallbackUrl::parse(url)
                .map(|u| u.as_str().to_string())
                .expect_err(url)
                .to_string();
            assert!(err.contains(says), "{url}: {err}");
        }
    }

    #[test]
    fn a_url_of_exactly_the_limit_is_accepted() {
        let head = "http://h.example/";
        let url = format!("{head}{}", "a".repeat(MAX_URL_BYTES - head.len()));
        assert_eq!(url.len(), MAX_URL_BYTES);
        assert!(CallbackUrl::parse(&url).is_ok());
    }
}
