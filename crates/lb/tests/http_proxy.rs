//! The edge's HTTP proxy on loopback, with a backend in the test: keep-alive on both sides
//! (many requests, one connection each way), `X-Forwarded-For`, routing by `Host`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use lb::edge::EdgeConfig;
use lb::follow::Routes;
use lb::routes::{Backend, EdgeRoute, Mode, Service, View};
use lb::{Balancer, Caller};
use tokio::net::{TcpListener, TcpStream};

/// A backend answering with the `X-Forwarded-For` it got; counts the connections it accepted.
async fn backend() -> (SocketAddr, Arc<AtomicUsize>) {
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
                        let xff = req
                            .headers()
                            .get("x-forwarded-for")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("none")
                            .to_string();
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(xff))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_holds_one_connection_each_way_and_the_client_is_forwarded() {
    let (backend_addr, accepted) = backend().await;
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
    let (mut client, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    for i in 0..20 {
        client.ready().await.expect("the connection stays open");
        let req = hyper::Request::get("/")
            .header("host", "web.test:80")
            .header("x-forwarded-for", "10.9.8.7")
            .body(Empty::new())
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

    client.ready().await.expect("open");
    let req = hyper::Request::get("/")
        .header("host", "other.test")
        .body(Empty::new())
        .expect("request");
    let resp = client.send_request(req).await.expect("an answer");
    assert_eq!(resp.status(), 404);
}
