//! The cluster's certificate authority: one ECDSA P-256 key and its self-signed certificate,
//! kept in a master's data dir (`ca.pem`, `ca-key.pem`, mode 0600).

use std::fmt;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::identity::{Identity, read_file, write_private};
use super::{TlsError, hex};

/// The CA certificate's file in a data dir.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA key's file in a data dir (masters only).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// The name every master certificate carries besides its address: what makes it a master's.
pub const MASTER_NAME: &str = "master.drover";
/// The domain under which an agent certificate names its agent: `<agent-id>.agent.drover`.
pub const AGENT_DOMAIN: &str = "agent.drover";

/// The CA's common name; the issuer of every certificate it signs.
const CA_COMMON_NAME: &str = "drover cluster CA";
/// How long the CA and the certificates it issues are valid. Long, because drover does not
/// renew certificates yet (docs/security.md, rotation).
const VALIDITY_DAYS: i64 = 3650;

/// The SHA-256 of a certificate's DER: what a join token pins the CA by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of the certificate `der`.
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Fingerprint(out)
    }

    /// Parses 64 hex digits.
    pub fn parse_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// The cluster's CA: it signs master and agent certificates.
pub struct ClusterCa {
    key: KeyPair,
    cert: CertificateDer<'static>,
    cert_pem: String,
}

impl fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        write!(f, "ClusterCa({})", self.fingerprint())
    }
}

impl ClusterCa {
    /// A new CA with a new key.
    pub fn create() -> Result<Self, TlsError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = ca_params();
        (params.not_before, params.not_after) = validity();
        let cert = params.self_signed(&key)?;
        Ok(ClusterCa {
            cert_pem: cert.pem(),
            cert: cert.der().clone(),
            key,
        })
    }

    /// The CA from its certificate and key in PEM (`source` names where they came from, for
    /// errors).
    pub fn from_pem(cert_pem: &str, key_pem: &str, source: &Path) -> Result<Self, TlsError> {
        let cert =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| TlsError::Pem {
                path: source.to_path_buf(),
                what: format!("no CA certificate: {e}"),
            })?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| TlsError::Pem {
            path: source.to_path_buf(),
            what: format!("no CA key: {e}"),
        })?;
        Ok(ClusterCa {
            key,
            cert,
            cert_pem: cert_pem.to_string(),
        })
    }

    /// Reads `ca.pem` and `ca-key.pem` from `dir`; `None` when there is no CA there yet.
    pub fn load(dir: &Path) -> Result<Option<Self>, TlsError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if !cert_path.exists() && !key_path.exists() {
            return Ok(None);
        }
        let cert = read_file(&cert_path)?;
        let key = read_file(&key_path)?;
        Self::from_pem(&cert, &key, dir).map(Some)
    }

    /// Writes `ca.pem` and `ca-key.pem` into `dir` (mode 0600).
    pub fn save(&self, dir: &Path) -> Result<(), TlsError> {
        write_private(&dir.join(CA_CERT_FILE), self.cert_pem.as_bytes())?;
        write_private(&dir.join(CA_KEY_FILE), self.key.serialize_pem().as_bytes())
    }

    /// The CA certificate (what everyone trusts).
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA key in PEM: only ever written to a master's data dir or sent to a joining
    /// master over a pinned connection.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The CA certificate's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert)
    }

    /// A master's certificate (serving and client): named [`MASTER_NAME`] and each of
    /// `hosts` (IP addresses or DNS names clients reach it by).
    pub fn issue_master(&self, hosts: &[String]) -> Result<Identity, TlsError> {
        let mut names = vec![MASTER_NAME.to_string()];
        for host in hosts {
            if !names.contains(host) {
                names.push(host.clone());
            }
        }
        self.issue(
            names,
            "drover master",
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// An agent's client certificate, naming `<agent>.agent.drover`.
    pub fn issue_agent(&self, agent: &str) -> Result<Identity, TlsError> {
        let name = agent_name(agent)?;
        self.issue(
            vec![name],
            &format!("drover agent {agent}"),
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )
    }

    fn issue(
        &self,
        names: Vec<String>,
        common_name: &str,
        usages: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<Identity, TlsError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params =
            CertificateParams::new(names.clone()).map_err(|_| TlsError::Name(names.join(", ")))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages;
        params.use_authority_key_identifier_extension = true;
        (params.not_before, params.not_after) = validity();
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Identity::new(
            format!("{}{}", cert.pem(), self.cert_pem),
            key.serialize_pem(),
        ))
    }
}

/// Reads a CA certificate (PEM) from `path`: what a client trusts.
pub fn read_ca_cert(path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::from_pem_slice(read_file(path)?.as_bytes()).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        what: format!(
            "no certificate in it ({e}); give the cluster CA, ca.pem in a master's data dir"
        ),
    })
}

/// The DNS name an agent's certificate carries: `<agent>.agent.drover`.
pub fn agent_name(agent: &str) -> Result<String, TlsError> {
    let name = format!("{agent}.{AGENT_DOMAIN}");
    let label_ok = !agent.is_empty()
        && agent.len() <= 63
        && agent.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !agent.starts_with('-')
        && !agent.ends_with('-');
    if !label_ok {
        return Err(TlsError::Name(format!(
            "{name} (an agent id must be 1 to 63 letters, digits or inner dashes)"
        )));
    }
    Ok(name)
}

/// What identifies the CA as an issuer: its name, key usages and key identifier method
/// (the same every time, so an issuer is rebuilt from the key alone).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// From an hour ago (clocks of a cluster's machines differ a little) for [`VALIDITY_DAYS`].
fn validity() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (
        now - time::Duration::hours(1),
        now + time::Duration::days(VALIDITY_DAYS),
    )
}
