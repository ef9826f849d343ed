//! The edge's HTTP proxy on loopback, with a backend in the test: keep-alive on both sides
//! (many requests, one connection each way), `X-Forwarded-For`, routing by `Host`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use lb::edge::EdgeConfig;
use lb::follow::Routes;
use lb::routes::{Backend, EdgeRoute, Mode, Service, View};
use lb::{Balancer, Caller};
use tokio::net::{TcpListener, TcpStream};

/// A backend answering `/empty` with 204, a POST with its body, anything else with the
/// `X-Forwarded-For` it got; closes each connection after one answer unless `keep_alive`.
/// Counts the connections it accepted.
async fn backend_with(keep_alive: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        if req.uri().path() == "/empty" {
                            let mut r = hyper::Response::new(Full::new(Bytes::new()));
                            *r.status_mut() = hyper::StatusCode::NO_CONTENT;
                            return Ok::<_, Infallible>(r);
                        }
                        if req.method() == hyper::Method::POST {
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            return Ok(hyper::Response::new(Full::new(body.unwrap_or_default())));
                        }
                        let xff = req
                            .headers()
                            .get("x-forwarded-for")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("none")
                            .to_string();
                        Ok(hyper::Response::new(Full::new(Bytes::from(xff))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(keep_alive)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, accepted)
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Starts the edge with virtual host `web.test` going to `backend_addr`; a client connection
/// to it.
async fn proxy_to(
    backend_addr: SocketAddr,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let service = Service {
        app_id: "/web".into(),
        port_index: 0,
        vips: vec![],
        edge: Some(EdgeRoute {
            group: "external".into(),
            mode: Mode::Http,
            service_port: None,
            vhosts: vec!["web.test".into()],
        }),
        max_connections: None,
        backends: Arc::new(vec![Backend {
            instance_id: "web.1".into(),
            addr: backend_addr,
            region: None,
            zone: None,
            ready: true,
            health_unknown: false,
        }]),
    };
    let (routes, _keep) = Routes::fixed(View {
        services: vec![service],
    });
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let config = EdgeConfig {
        group: "external".into(),
        http: Some(http),
        bind_ip: "127.0.0.1".parse().expect("ip"),
        admin: None,
        drain_grace: Duration::ZERO,
    };
    let balancer = Arc::new(Balancer::new(Caller::default()));
    tokio::spawn(lb::edge::run(
        routes,
        balancer,
        config,
        std::future::pending::<()>(),
    ));

    let stream = loop {
        if let Ok(s) = TcpStream::connect(http).await {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (client, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    client
}

/// `method path` through `client` with `Host: web.test` and `body`: (status, body).
async fn exchange(
    client: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    method: hyper::Method,
    path: &str,
    body: &'static str,
) -> (u16, Bytes) {
    client.ready().await.expect("the connection stays open");
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "web.test")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request");
    let resp = client.send_request(req).await.expect("an answer");
    let status = resp.status().as_u16();
    (
        status,
        resp.into_body().collect().await.expect("body").to_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_holds_one_connection_each_way_and_the_client_is_forwarded() {
    let (backend_addr, accepted) = backend_with(true).await;
    let mut client = proxy_to(backend_addr).await;
    for i in 0..20 {
        client.ready().await.expect("the connection stays open");
        let req = hyper::Request::get("/")
            .header("host", "web.test:80")
            .header("x-forwarded-for", "10.9.8.7")
            .body(Full::new(Bytes::new()))
            .expect("request");
        let resp = client.send_request(req).await.expect("an answer");
        assert_eq!(resp.status(), 200, "request {i}");
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(body, "10.9.8.7, 127.0.0.1", "request {i}");
    }
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        1,
        "the balancer reuses its backend connection"
    );

    // Answers without a body give their connection back too; bodies go both ways.
    for i in 0..5 {
        let (status, _) = exchange(&mut client, hyper::Method::GET, "/empty", "").await;
        assert_eq!(status, 204, "request {i}");
        let (status, body) = exchange(&mut client, hyper::Method::POST, "/", "a body").await;
        assert_eq!((status, &body[..]), (200, &b"a body"[..]), "request {i}");
    }
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        1,
        "the balancer reuses its backend connection after 204s and POSTs"
    );

    client.ready().await.expect("open");
    let req = hyper::Request::get("/")
        .header("host", "other.test")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = client.send_request(req).await.expect("an answer");
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_closes_its_connections_costs_no_failed_request() {
    let (backend_addr, accepted) = backend_with(false).await;
    let mut client = proxy_to(backend_addr).await;
    for i in 0..10 {
        let (status, body) = exchange(&mut client, hyper::Method::GET, "/", "").await;
        assert_eq!((status, &body[..]), (200, &b"127.0.0.1"[..]), "request {i}");
    }
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        10,
        "one backend connection per request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_backend_connection_closed_by_the_backend_is_not_used_again() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Answers one request per connection as if it kept it open, then closes it silently
    // (as a backend's idle timeout does), and says so.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let backend_addr = listener.local_addr().expect("addr");
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            drop(stream);
            let _ = closed_tx.send(());
        }
    });
    let mut client = proxy_to(backend_addr).await;
    for i in 0..5 {
        let (status, body) = exchange(&mut client, hyper::Method::GET, "/", "").await;
        assert_eq!((status, &body[..]), (200, &b"ok"[..]), "request {i}");
        closed
            .recv()
            .await
            .expect("the backend closed the connection");
    }
}
