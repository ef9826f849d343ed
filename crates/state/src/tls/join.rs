//! Join tokens, k3s style: `drover-join.<ca-fingerprint>.<kind>.<id>.<secret>`. The
//! fingerprint pins the cluster CA, so a joiner checks the master's chain against it before
//! it sends the secret; the id names the token in `drover token list|revoke`; only the
//! secret's SHA-256 is kept in the replicated state.

use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};

use super::ca::Fingerprint;
use super::{TlsError, provider, random_hex, sha256_hex};

/// Every join token starts with this.
pub const PREFIX: &str = "drover-join";
/// Longest token accepted (a real one is about 170 characters).
const MAX_LEN: usize = 512;

/// Who a join token admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinKind {
    /// A master: it gets a master certificate and the CA key.
    Master,
    /// An agent: it gets a client certificate naming its agent id.
    Agent,
}

impl fmt::Display for JoinKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JoinKind::Master => "master",
            JoinKind::Agent => "agent",
        })
    }
}

/// A join token: the CA it pins, whom it admits, its id and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// The fingerprint of the cluster CA.
    pub ca: Fingerprint,
    /// Whom it admits.
    pub kind: JoinKind,
    /// Its public id (16 hex digits).
    pub id: String,
    /// Its secret (64 hex digits).
    pub secret: String,
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        write!(f, "JoinToken({} {} for CA {})", self.kind, self.id, self.ca)
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}.{}.{}.{}.{}",
            self.ca, self.kind, self.id, self.secret
        )
    }
}

/// Why a join token was refused before anyone was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinTokenError {
    /// Not a drover join token at all.
    #[error(
        "this is not a drover join token (it must look like {PREFIX}.<ca-fingerprint>.<agent|master>.<id>.<secret>); take the token file the first master wrote into its data dir, or make one with `drover token create`"
    )]
    Malformed,
    /// Longer than any real token.
    #[error("the join token is {0} characters long; a drover join token has under {MAX_LEN}")]
    TooLong(usize),
    /// The fingerprint part is not 64 hex digits.
    #[error("the join token's CA fingerprint is not 64 hex digits; the token was cut or changed")]
    Fingerprint,
    /// Neither `agent` nor `master`.
    #[error("the join token is for `{0}`, not for an agent or a master")]
    Kind(String),
    /// The id or secret part is not hex of the right length.
    #[error("the join token's {0} is not hex of the right length; the token was cut or changed")]
    Part(&'static str),
    /// An agent token given to a master, or the other way round.
    #[error(
        "this is {given} join token, but a {wanted} needs a {wanted} join token (`drover token create --{wanted}`)"
    )]
    WrongKind {
        /// "an agent" or "a master".
        given: &'static str,
        /// "agent" or "master".
        wanted: JoinKind,
    },
}

impl JoinToken {
    /// A new token of `kind` for the CA with fingerprint `ca`.
    pub fn generate(ca: Fingerprint, kind: JoinKind) -> Result<Self, TlsError> {
        Ok(JoinToken {
            ca,
            kind,
            id: random_hex(8)?,
            secret: random_hex(32)?,
        })
    }

    /// Parses a token (surrounding whitespace, as in a file, is ignored).
    pub fn parse(text: &str) -> Result<Self, JoinTokenError> {
        let text = text.trim();
        if text.len() > MAX_LEN {
            return Err(JoinTokenError::TooLong(text.len()));
        }
        let parts: Vec<&str> = text.split('.').collect();
        let [prefix, ca, kind, id, secret] = parts[..] else {
            return Err(JoinTokenError::Malformed);
        };
        if prefix != PREFIX {
            return Err(JoinTokenError::Malformed);
        }
        let ca = Fingerprint::parse_hex(ca).ok_or(JoinTokenError::Fingerprint)?;
        let kind = match kind {
            "agent" => JoinKind::Agent,
            "master" => JoinKind::Master,
            other => return Err(JoinTokenError::Kind(other.chars().take(20).collect())),
        };
        let hex_of = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex_of(id, 16) {
            return Err(JoinTokenError::Part("id"));
        }
        if !hex_of(secret, 64) {
            return Err(JoinTokenError::Part("secret"));
        }
        Ok(JoinToken {
            ca,
            kind,
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// This token, if it admits `wanted`.
    pub fn expect(self, wanted: JoinKind) -> Result<Self, JoinTokenError> {
        if self.kind == wanted {
            return Ok(self);
        }
        let given = match self.kind {
            JoinKind::Agent => "an agent",
            JoinKind::Master => "a master",
        };
        Err(JoinTokenError::WrongKind { given, wanted })
    }

    /// The SHA-256 of the secret, as the state keeps it.
    pub fn secret_hash(&self) -> String {
        sha256_hex(self.secret.as_bytes())
    }
}

/// What a joiner sends to `POST /internal/join`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The whole join token.
    pub token: String,
    /// An agent's id (agents only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The hosts (IPs or DNS names) a master is reached at (masters only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// What a master grants a joiner whose token it accepted.
#[derive(Clone, Serialize, Deserialize)]
pub struct JoinGrant {
    /// The CA certificate.
    pub ca_pem: String,
    /// The joiner's certificate chain, leaf first.
    pub chain_pem: String,
    /// The joiner's private key.
    pub key_pem: String,
    /// The CA key (masters only: every master can sign after a failover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key_pem: Option<String>,
}

impl fmt::Debug for JoinGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinGrant")
    }
}

/// A client configuration for joining: it trusts a server only if the chain it presents
/// holds the CA with fingerprint `ca` and the server's certificate is valid under that CA
/// for the name dialled.
pub fn pinned_client_config(ca: &Fingerprint) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa {
            ca: ca.clone(),
            provider,
        }))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Verifies a server against the CA a join token pins.
#[derive(Debug)]
struct PinnedCa {
    ca: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates.iter().find(|c| Fingerprint::of(c) == self.ca) else {
            return Err(rustls::Error::General(format!(
                "the server does not present the cluster CA the join token pins ({}): it is not a master of this cluster",
                self.ca
            )));
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
