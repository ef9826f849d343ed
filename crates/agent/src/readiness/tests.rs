use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

fn app(check: serde_json::Value) -> AppDefinition {
    AppDefinition::from_json(&json!({
        "id": "/web", "cmd": "x",
        "portDefinitions": [{"port": 0, "name": "admin"}, {"port": 0, "name": "http-api"}],
        "readinessChecks": [check]
    }))
    .expect("a valid app")
}

fn target(ports: Vec<u64>) -> Target {
    Target {
        host: "127.0.0.1".into(),
        ports,
        env: BTreeMap::new(),
        sandbox: PathBuf::from("/"),
    }
}

fn answer(status: u16, body: &str) -> Outcome {
    Ok(HttpAnswer {
        status,
        content_type: "text/plain".into(),
        body: body.into(),
    })
}

/// A server that answers `503 warming up` to its first `not_ready` requests and `200 ready`
/// after, counting them; only requests for `/ready` are answered at all.
async fn warming_server(not_ready: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if !head.starts_with(b"GET /ready HTTP/1.1\r\n") {
                continue;
            }
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let reply: &[u8] = if n < not_ready {
                // Chunked, as many servers send a body of unknown length.
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7\r\nwarming\r\n3\r\n up\r\n0\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nready"
            };
            let _ = s.write_all(reply).await;
            let _ = s.shutdown().await;
        }
    });
    (port, seen)
}

#[test]
fn ready_is_reported_once_and_is_final() {
    let a = app(json!({"httpStatusCodesForReady": [200, 204]}));
    let mut r = TaskReadiness::new(&a.readiness_checks);
    assert!(!r.ready());
    let first = r
        .record(0, Err("GET http://x: refused".into()))
        .expect("the first outcome is reported");
    assert!(!first.ready);
    assert_eq!(first.checks[0].name, "readinessCheck");
    assert_eq!(
        first.checks[0].last_response, None,
        "kept only with preserveLastResponse"
    );
    assert_eq!(
        r.record(0, answer(503, "warming")),
        None,
        "still not ready: nothing new"
    );
    let ready = r
        .record(0, answer(204, ""))
        .expect("the turn to ready is reported");
    assert!(ready.ready && ready.checks[0].ready);
    assert!(r.check_ready(0));
    assert_eq!(r.record(0, answer(503, "later")), None, "ready is final");
    assert!(r.ready());
}

#[test]
fn a_preserved_response_is_reported_whenever_it_changes() {
    let a = app(json!({"preserveLastResponse": true}));
    let mut r = TaskReadiness::new(&a.readiness_checks);
    let first = r.record(0, answer(503, "warming 1%")).expect("first");
    assert_eq!(
        first.checks[0].last_response.as_ref().map(|a| a.status),
        Some(503)
    );
    assert_eq!(
        r.record(0, answer(503, "warming 1%")),
        None,
        "the same answer again"
    );
    let next = r.record(0, answer(503, "warming 50%")).expect("a new body");
    assert_eq!(
        next.checks[0]
            .last_response
            .as_ref()
            .map(|a| a.body.as_str()),
        Some("warming 50%")
    );
    let done = r.record(0, answer(200, "ok")).expect("ready");
    assert!(done.ready);
    assert_eq!(
        done.checks[0].last_response.as_ref().map(|a| a.status),
        Some(200)
    );
}

#[test]
fn the_checked_port_is_the_one_port_name_names() {
    let a = app(json!({}));
    assert_eq!(
        check_port(&a, &a.readiness_checks[0], &[31000, 31001]),
        Some(31001)
    );
    assert_eq!(check_port(&a, &a.readiness_checks[0], &[31000]), None);
}

#[tokio::test]
async fn the_runner_checks_until_ready_then_stops() {
    let (port, seen) = warming_server(2).await;
    let mut a = app(json!({"path": "/ready", "preserveLastResponse": true}));
    // Back to back: the validated minimum of 2 s would only slow the test down.
    a.readiness_checks[0].interval_seconds = 0;
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink_reports = reports.clone();
    let sink: ReadinessSink = Arc::new(move |r| sink_reports.lock().expect("lock").push(r));
    // The task's second port is the one named http-api.
    run_checks(&a, target(vec![1, u64::from(port)]), sink).await;
    let reports = reports.lock().expect("lock").clone();
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "two 503s, one 200, then no more checks"
    );
    assert_eq!(
        reports.len(),
        2,
        "the first answer, then ready: {reports:?}"
    );
    assert!(!reports[0].ready);
    let warming = reports[0].checks[0]
        .last_response
        .clone()
        .expect("preserved");
    assert_eq!(
        (
            warming.status,
            warming.content_type.as_str(),
            warming.body.as_str()
        ),
        (503, "text/plain", "warming up")
    );
    assert!(reports[1].ready);
    let ready = reports[1].checks[0]
        .last_response
        .clone()
        .expect("preserved");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));
}

#[tokio::test]
async fn a_port_name_without_a_port_is_reported_not_ready() {
    let a = app(json!({}));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink: ReadinessSink = Arc::new(move |r| {
        let _ = tx.send(r);
    });
    // One port only: the named one (the second) is missing.
    let run = run_checks(&a, target(vec![31000]), sink);
    let report = tokio::select! {
        () = run => panic!("a check that cannot be ready never ends the runner"),
        r = rx.recv() => r.expect("a report"),
    };
    assert!(!report.ready);
    assert!(!report.checks[0].ready);
}
