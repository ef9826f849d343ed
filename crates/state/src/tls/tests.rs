use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A TLS handshake between `client` and `server` over an in-memory pipe, dialling `name`;
/// the server's view of the client's certificate on success.
async fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
    name: &str,
) -> Result<Option<Vec<u8>>, String> {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let served = tokio::spawn(async move {
        let mut stream = acceptor.accept(b).await.map_err(|e| e.to_string())?;
        let peer = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c[0].to_vec());
        let mut byte = [0u8; 1];
        stream
            .read_exact(&mut byte)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(peer)
    });
    let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let mut stream = tokio_rustls::TlsConnector::from(client)
        .connect(name, a)
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(b"x").await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    served.await.map_err(|e| e.to_string())?
}

fn master_of(ca: &ClusterCa) -> Identity {
    ca.issue_master(&["127.0.0.1".to_string(), "m1.example".to_string()])
        .unwrap()
}

#[tokio::test]
async fn a_master_and_an_agent_are_told_apart_by_their_certificates() {
    let ca = ClusterCa::create().unwrap();
    let master = master_of(&ca);
    let agent = ca.issue_agent("a-1").unwrap();
    let server = config::server_config(ca.cert(), &master).unwrap();

    let seen = handshake(
        config::client_config(ca.cert(), Some(&agent)).unwrap(),
        server.clone(),
        "127.0.0.1",
    )
    .await
    .unwrap()
    .expect("the agent sent its certificate");
    let seen = rustls_pki_types::CertificateDer::from(seen);
    assert!(config::names_agent(&seen, "a-1"));
    assert!(!config::names_agent(&seen, "a-2"));
    assert!(!config::is_master(&seen));

    let seen = handshake(
        config::client_config(ca.cert(), Some(&master)).unwrap(),
        server.clone(),
        "m1.example",
    )
    .await
    .unwrap()
    .expect("the master sent its certificate");
    let seen = rustls_pki_types::CertificateDer::from(seen);
    assert!(config::is_master(&seen));
    assert!(!config::names_agent(&seen, "a-1"));

    let anonymous = handshake(
        config::client_config(ca.cert(), None).unwrap(),
        server,
        "127.0.0.1",
    )
    .await
    .unwrap();
    assert_eq!(anonymous, None, "an API client needs no certificate");
}

#[tokio::test]
async fn a_client_trusts_only_its_cluster_ca_and_the_name_it_dialled() {
    let ca = ClusterCa::create().unwrap();
    let other = ClusterCa::create().unwrap();
    let server = config::server_config(ca.cert(), &master_of(&ca)).unwrap();
    let stranger = config::client_config(other.cert(), None).unwrap();
    assert!(
        handshake(stranger, server.clone(), "127.0.0.1")
            .await
            .is_err()
    );
    let ours = config::client_config(ca.cert(), None).unwrap();
    assert!(handshake(ours, server, "127.0.0.2").await.is_err());
}

#[tokio::test]
async fn a_server_refuses_a_client_certificate_of_another_ca() {
    let ca = ClusterCa::create().unwrap();
    let other = ClusterCa::create().unwrap();
    let server = config::server_config(ca.cert(), &master_of(&ca)).unwrap();
    // The client trusts the server, but presents a certificate the server cannot verify.
    let forged =
        config::client_config(ca.cert(), Some(&other.issue_agent("a-1").unwrap())).unwrap();
    assert!(handshake(forged, server, "127.0.0.1").await.is_err());
}

#[tokio::test]
async fn a_joiner_trusts_only_the_ca_its_token_pins() {
    let ca = ClusterCa::create().unwrap();
    let other = ClusterCa::create().unwrap();
    let server = config::server_config(ca.cert(), &master_of(&ca)).unwrap();
    let pinned = join::pinned_client_config(&ca.fingerprint()).unwrap();
    handshake(pinned, server.clone(), "127.0.0.1")
        .await
        .unwrap();
    let wrong = join::pinned_client_config(&other.fingerprint()).unwrap();
    let refused = handshake(wrong, server.clone(), "127.0.0.1")
        .await
        .unwrap_err();
    assert!(refused.contains("join token pins"), "{refused}");
    // A server of another CA is refused.
    let pinned = join::pinned_client_config(&ca.fingerprint()).unwrap();
    let other_server = config::server_config(other.cert(), &master_of(&other)).unwrap();
    assert!(handshake(pinned, other_server, "127.0.0.1").await.is_err());
}

#[test]
fn a_ca_survives_its_files_and_signs_after_reloading() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::create().unwrap();
    ca.save(dir.path()).unwrap();
    for file in [ca::CA_CERT_FILE, ca::CA_KEY_FILE] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let loaded = ClusterCa::load(dir.path()).unwrap().unwrap();
    assert_eq!(loaded.fingerprint(), ca.fingerprint());
    let agent = loaded.issue_agent("a-1").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = config::server_config(ca.cert(), &master_of(&loaded)).unwrap();
    let client = config::client_config(ca.cert(), Some(&agent)).unwrap();
    runtime
        .block_on(handshake(client, server, "127.0.0.1"))
        .unwrap();
    assert!(ClusterCa::load(&dir.path().join("none")).unwrap().is_none());
}

#[test]
fn join_tokens_round_trip_and_bad_ones_say_what_is_wrong() {
    let ca = ClusterCa::create().unwrap();
    let token = JoinToken::generate(ca.fingerprint(), JoinKind::Agent).unwrap();
    let text = token.to_string();
    assert!(text.starts_with("drover-join."));
    assert_eq!(JoinToken::parse(&format!(" {text}\n")).unwrap(), token);
    assert!(!format!("{token:?}").contains(&token.secret));

    use join::JoinTokenError as E;
    assert_eq!(JoinToken::parse("hello"), Err(E::Malformed));
    assert_eq!(JoinToken::parse(""), Err(E::Malformed));
    assert_eq!(
        JoinToken::parse(&"x".repeat(10_000)),
        Err(E::TooLong(10_000))
    );
    let swap = |i: usize, part: &str| {
        let mut parts: Vec<&str> = text.split('.').collect();
        parts[i] = part;
        parts.join(".")
    };
    assert_eq!(JoinToken::parse(&swap(1, "abc")), Err(E::Fingerprint));
    assert_eq!(
        JoinToken::parse(&swap(2, "admin")),
        Err(E::Kind("admin".into()))
    );
    assert_eq!(JoinToken::parse(&swap(3, "zz")), Err(E::Part("id")));
    assert_eq!(JoinToken::parse(&swap(4, "short")), Err(E::Part("secret")));
    assert!(matches!(
        token.clone().expect(JoinKind::Master),
        Err(E::WrongKind { .. })
    ));
    assert!(token.expect(JoinKind::Agent).is_ok());
}

#[test]
fn an_agent_id_that_is_no_dns_label_gets_no_certificate() {
    let ca = ClusterCa::create().unwrap();
    for bad in ["", "-a", "a.b", &"a".repeat(64), "a_b"] {
        assert!(ca.issue_agent(bad).is_err(), "{bad:?}");
    }
}
