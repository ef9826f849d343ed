use std::collections::BTreeMap;
use std::path::PathBuf;

use domain::app::{HealthCheck, ValidationErrors};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

fn check(v: serde_json::Value) -> HealthCheck {
    let mut errors = ValidationErrors::default();
    let c = HealthCheck::read(&v, "/healthChecks(0)", &mut errors).expect("a check");
    assert!(errors.is_empty(), "{errors:?}");
    c
}

fn target(ports: Vec<u64>) -> Target {
    Target {
        host: "127.0.0.1".into(),
        ports,
        env: BTreeMap::from([("CHECK_ME".to_string(), "yes".to_string())]),
        sandbox: PathBuf::from("/"),
    }
}

/// A server on 127.0.0.1 that answers every request with `status_line`.
async fn http_server(status_line: &'static str) -> u16 {
    http_server_on("127.0.0.1", status_line).await
}

/// A server on `ip` that answers every request with `status_line`.
async fn http_server_on(ip: &str, status_line: &'static str) -> u16 {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(answer(s, status_line));
        }
    });
    port
}

/// A self-signed certificate and its key, made once with openssl for these tests.
const TEST_CERT: &str = include_str!("testdata/cert.pem");
const TEST_KEY: &str = include_str!("testdata/key.pem");

/// An HTTPS server on 127.0.0.1 with a self-signed certificate, answering `status_line`.
async fn https_server(status_line: &'static str) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(TEST_CERT.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    answer(tls, status_line).await;
                }
            });
        }
    });
    port
}

/// Reads one request for `/ready` and answers `status_line`.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, status_line: &'static str) {
    {
        let mut buf = [0u8; 1024];
        let mut head = Vec::new();
        // Something that is not a GET (a TLS hello) gets an answer at once, as from a
        // plain HTTP server.
        while !head.windows(4).any(|w| w == b"\r\n\r\n")
            && b"GET ".starts_with(&head[..head.len().min(4)])
        {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        assert!(head.starts_with(b"GET /ready HTTP/1.1\r\n") || !head.starts_with(b"GET "));
        let answer = format!("{status_line}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = s.write_all(answer.as_bytes()).await;
        let _ = s.shutdown().await;
    }
}

async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn status_codes_read_as_marathon_does() {
    assert_eq!(http_verdict(200, false), Verdict::Healthy);
    assert_eq!(http_verdict(302, false), Verdict::Healthy);
    assert_eq!(http_verdict(399, false), Verdict::Healthy);
    assert!(matches!(http_verdict(400, false), Verdict::Unhealthy(_)));
    assert!(matches!(http_verdict(503, true), Verdict::Unhealthy(_)));
    assert!(matches!(http_verdict(101, false), Verdict::Unhealthy(_)));
    assert_eq!(http_verdict(101, true), Verdict::Ignored);
    assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
    assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
}

#[tokio::test]
async fn http_checks_read_the_status_of_a_local_server() {
    // The server is the instance's second port.
    let hc = |port: u16, ignore: bool| {
        let c = check(
            json!({"protocol": "MESOS_HTTP", "path": "/ready", "portIndex": 1,
                             "ignoreHttp1xx": ignore}),
        );
        (c, target(vec![1, u64::from(port)]))
    };
    let ok = http_server("HTTP/1.1 200 OK").await;
    let (c, t) = hc(ok, false);
    assert_eq!(probe(&c, &t).await, Verdict::Healthy);

    let bad = http_server("HTTP/1.1 503 Service Unavailable").await;
    let (c, t) = hc(bad, false);
    assert_eq!(
        probe(&c, &t).await,
        Verdict::Unhealthy("HTTP status 503".into())
    );

    let early = http_server("HTTP/1.1 102 Processing").await;
    let (c, t) = hc(early, true);
    assert_eq!(probe(&c, &t).await, Verdict::Ignored);
    let (c, t) = hc(early, false);
    assert!(matches!(probe(&c, &t).await, Verdict::Unhealthy(_)));

    let (c, t) = hc(closed_port().await, false);
    match probe(&c, &t).await {
        Verdict::Unhealthy(cause) => assert!(cause.starts_with("GET http://127.0.0.1:"), "{cause}"),
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn tcp_checks_connect() {
    let open = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port();
    let c = check(json!({"protocol": "TCP", "port": port}));
    assert_eq!(probe(&c, &target(vec![])).await, Verdict::Healthy);
    let c = check(json!({"protocol": "MESOS_TCP", "portIndex": 0}));
    assert!(matches!(
        probe(&c, &target(vec![u64::from(closed_port().await)])).await,
        Verdict::Unhealthy(_)
    ));
    let c = check(json!({"protocol": "TCP", "portIndex": 3}));
    assert_eq!(
        probe(&c, &target(vec![1])).await,
        Verdict::Unhealthy("portIndex 3 names no port: the instance has 1 port(s)".into())
    );
}

#[tokio::test]
async fn command_checks_see_the_task_environment() {
    let c = check(json!({"protocol": "COMMAND",
                         "command": {"value": "test \"$CHECK_ME\" = yes"}}));
    assert_eq!(probe(&c, &target(vec![])).await, Verdict::Healthy);
    let c = check(json!({"protocol": "COMMAND",
                         "command": {"value": "echo broken >&2; exit 3"}}));
    match probe(&c, &target(vec![])).await {
        Verdict::Unhealthy(cause) => {
            assert!(cause.contains("exit status: 3"), "{cause}");
            assert!(cause.ends_with(": broken"), "{cause}");
        }
        v => panic!("{v:?}"),
    }
    let c = check(json!({"protocol": "COMMAND", "timeoutSeconds": 0.2,
                         "command": {"value": "sleep 30"}}));
    match probe(&c, &target(vec![])).await {
        Verdict::Unhealthy(cause) => assert!(cause.contains("did not finish"), "{cause}"),
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn https_checks_accept_a_self_signed_certificate_and_read_the_status() {
    for protocol in ["HTTPS", "MESOS_HTTPS"] {
        let hc = |port: u16| check(json!({"protocol": protocol, "path": "/ready", "port": port}));
        let ok = https_server("HTTP/1.1 200 OK").await;
        assert_eq!(probe(&hc(ok), &target(vec![])).await, Verdict::Healthy);
        let down = https_server("HTTP/1.1 503 Service Unavailable").await;
        assert_eq!(
            probe(&hc(down), &target(vec![])).await,
            Verdict::Unhealthy("HTTP status 503".into())
        );
        // Plain HTTP where TLS is expected fails the handshake, and says so.
        let plain = http_server("HTTP/1.1 200 OK").await;
        match probe(&hc(plain), &target(vec![])).await {
            Verdict::Unhealthy(cause) => assert!(cause.contains("TLS handshake"), "{cause}"),
            v => panic!("{protocol}: {v:?}"),
        }
    }
}

/// An address of this machine's loopback network other than 127.0.0.1, as agents on
/// distinct loopback addresses have.
const AGENT_IP: &str = "127.0.3.7";

#[tokio::test]
async fn marathon_level_checks_reach_the_task_at_its_host_and_mesos_level_ones_at_loopback() {
    // A task bound to $HOST only, on an agent whose host is 127.0.3.7.
    let port = http_server_on(AGENT_IP, "HTTP/1.1 200 OK").await;
    let on_agent = Target {
        host: AGENT_IP.into(),
        ..target(vec![u64::from(port)])
    };
    for protocol in ["HTTP", "TCP"] {
        let c = check(json!({"protocol": protocol, "path": "/ready"}));
        assert_eq!(probe_host(&c, &on_agent), AGENT_IP);
        assert_eq!(probe(&c, &on_agent).await, Verdict::Healthy, "{protocol}");
    }
    // Mesos runs these next to the task and, for host networking, on the loopback interface:
    // Marathon documents that such tasks must listen there too.
    for protocol in ["MESOS_HTTP", "MESOS_TCP"] {
        let c = check(json!({"protocol": protocol, "path": "/ready"}));
        assert_eq!(probe_host(&c, &on_agent), MESOS_CHECK_HOST);
        match probe(&c, &on_agent).await {
            Verdict::Unhealthy(cause) => {
                assert!(cause.contains(&format!("127.0.0.1:{port}")), "{cause}")
            }
            v => panic!("{protocol}: {v:?}"),
        }
    }
}

#[test]
fn the_task_host_is_the_advertised_ip_whatever_the_hostname() {
    assert_eq!(task_host("no-such-agent.invalid", AGENT_IP), AGENT_IP);
    assert_eq!(task_host("localhost", AGENT_IP), AGENT_IP);
    assert_eq!(task_host("agent-1", ""), "agent-1");
}

const IN_GRACE: Duration = Duration::from_secs(1);
const AFTER_GRACE: Duration = Duration::from_secs(100);

fn failing() -> Verdict {
    Verdict::Unhealthy("down".into())
}

#[test]
fn failures_in_the_grace_period_before_the_first_success_do_not_count() {
    let c = check(json!({"protocol": "TCP", "gracePeriodSeconds": 10,
                         "maxConsecutiveFailures": 2}));
    let mut s = CheckState::new(&c);
    s.record(failing(), IN_GRACE, 1);
    assert_eq!((s.healthy, s.consecutive_failures), (None, 0));
    s.record(Verdict::Healthy, IN_GRACE, 2);
    assert_eq!(s.healthy, Some(true));
    // After a success, failures count even within the grace period.
    s.record(failing(), IN_GRACE, 3);
    assert_eq!((s.healthy, s.consecutive_failures), (Some(false), 1));
    assert!(!s.should_kill());
    s.record(failing(), AFTER_GRACE, 4);
    assert!(s.should_kill());
    assert_eq!(s.last_failure_cause.as_deref(), Some("down"));
    s.record(Verdict::Healthy, AFTER_GRACE, 5);
    assert_eq!((s.healthy, s.consecutive_failures), (Some(true), 0));
    assert!(!s.should_kill());
}

#[test]
fn zero_max_failures_kills_at_the_first_counted_failure_of_mesos_level_checks() {
    for protocol in ["MESOS_HTTP", "MESOS_TCP"] {
        let c = check(json!({"protocol": protocol, "gracePeriodSeconds": 10,
                             "maxConsecutiveFailures": 0}));
        let mut s = CheckState::new(&c);
        s.record(failing(), IN_GRACE, 1);
        assert!(
            !s.should_kill(),
            "{protocol}: failures in the grace period do not count"
        );
        s.record(failing(), AFTER_GRACE, 2);
        assert!(s.should_kill(), "{protocol}");
    }
}

#[test]
fn failures_after_the_grace_period_count_and_zero_never_kills() {
    let c = check(json!({"protocol": "TCP", "gracePeriodSeconds": 10,
                         "maxConsecutiveFailures": 0}));
    let mut s = CheckState::new(&c);
    for i in 0..10 {
        s.record(failing(), AFTER_GRACE, i);
    }
    assert_eq!((s.healthy, s.consecutive_failures), (Some(false), 10));
    assert!(!s.should_kill());
    s.record(Verdict::Ignored, AFTER_GRACE, 11);
    assert_eq!(s.consecutive_failures, 10);
}

#[test]
fn a_task_is_reported_only_when_its_verdict_changes() {
    let tcp = check(json!({"protocol": "TCP", "gracePeriodSeconds": 0,
                           "maxConsecutiveFailures": 2}));
    let mut h = TaskHealth::new(&[tcp.clone(), tcp]);
    // One of two checks passed: not known to be healthy yet.
    assert_eq!(h.record(0, Verdict::Healthy, AFTER_GRACE, 1), None);
    let r = h.record(1, Verdict::Healthy, AFTER_GRACE, 2).unwrap();
    assert!(r.healthy && !r.should_kill);
    assert_eq!(h.record(0, Verdict::Healthy, AFTER_GRACE, 3), None);
    let r = h.record(1, failing(), AFTER_GRACE, 4).unwrap();
    assert!(!r.healthy && !r.should_kill);
    assert_eq!(r.consecutive_failures, 1);
    assert_eq!(r.last_failure_cause.as_deref(), Some("down"));
    let r = h.record(1, failing(), AFTER_GRACE, 5).unwrap();
    assert!(r.should_kill);
    assert_eq!(h.record(1, failing(), AFTER_GRACE, 6), None);
    let r = h.record(1, Verdict::Healthy, AFTER_GRACE, 7).unwrap();
    assert!(r.healthy && !r.should_kill);
}

#[tokio::test]
async fn the_check_loop_reports_a_failing_task() {
    let port = closed_port().await;
    let c = check(
        json!({"protocol": "TCP", "portIndex": 0, "gracePeriodSeconds": 0,
                         "intervalSeconds": 0.05, "delaySeconds": 0,
                         "maxConsecutiveFailures": 2}),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink: HealthSink = Arc::new(move |r| {
        let _ = tx.send(r);
    });
    let run = tokio::spawn(run_checks(vec![c], target(vec![u64::from(port)]), 0, sink));
    let first = rx.recv().await.unwrap();
    assert!(!first.healthy && !first.should_kill);
    let second = rx.recv().await.unwrap();
    assert!(second.should_kill);
    run.abort();
}
