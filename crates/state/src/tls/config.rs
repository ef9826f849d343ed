//! rustls configurations that trust only the cluster CA, and what a verified peer
//! certificate says about who holds it.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, DnsName, ServerName};

use super::ca::{MASTER_NAME, agent_name};
use super::identity::Identity;
use super::{TlsError, provider};

/// A master's server configuration: it presents `identity` and verifies a client
/// certificate against `ca` when one is sent. API clients send none, so a certificate is
/// optional here; the routes that need one (`/internal/*`) check for it.
pub fn server_config(
    ca: &CertificateDer<'static>,
    identity: &Identity,
) -> Result<Arc<ServerConfig>, TlsError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
        .allow_unauthenticated()
        .build()?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain()?, identity.key()?)?;
    Ok(Arc::new(config))
}

/// A client configuration that trusts only `ca`, presenting `identity` if given (masters
/// and agents do; the CLI does not).
pub fn client_config(
    ca: &CertificateDer<'static>,
    identity: Option<&Identity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca)?);
    let config = match identity {
        Some(identity) => builder.with_client_auth_cert(identity.chain()?, identity.key()?)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn roots(ca: &CertificateDer<'static>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone())?;
    Ok(roots)
}

/// Whether a (verified) peer certificate is a master's.
pub fn is_master(cert: &CertificateDer<'_>) -> bool {
    names(cert, MASTER_NAME)
}

/// Whether a (verified) peer certificate is the certificate of agent `agent`.
pub fn names_agent(cert: &CertificateDer<'_>, agent: &str) -> bool {
    agent_name(agent).is_ok_and(|name| names(cert, &name))
}

/// Whether `cert` carries the DNS name `name` (checked by webpki, as a server name is).
fn names(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(dns) = DnsName::try_from(name) else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&ServerName::DnsName(dns))
        .is_ok()
}
