//! The load balancer benchmark's two processes (see docs/benchmarks.md, "Load balancer"):
//!
//! - `bench backend ADDR…`: HTTP/1.1 servers answering `ok` (keep-alive), the backends.
//! - `bench edge HTTP_ADDR TCP_ADDR BACKEND,…`: the edge balancer of `drover lb`
//!   (`lb::edge::run`, the same proxies, balancer and listeners) over a fixed view: virtual
//!   host `bench.test` on HTTP_ADDR and a TCP service port on TCP_ADDR, both to BACKENDs. The
//!   masters are left out so that only the data path is measured.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use lb::edge::EdgeConfig;
use lb::follow::Routes;
use lb::routes::{Backend, EdgeRoute, Mode, Service, View};
use lb::{Balancer, Caller};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let parse = |a: &str| a.parse::<SocketAddr>().map_err(|e| format!("{a}: {e}"));
    match args.first().map(String::as_str) {
        Some("backend") => {
            let addrs = args[1..]
                .iter()
                .map(|a| parse(a))
                .collect::<Result<Vec<_>, _>>()?;
            runtime.block_on(backends(addrs))
        }
        Some("edge") if args.len() == 4 => {
            let (http, tcp) = (parse(&args[1])?, parse(&args[2])?);
            let backends = args[3]
                .split(',')
                .map(parse)
                .collect::<Result<Vec<_>, _>>()?;
            runtime.block_on(edge(http, tcp, backends))
        }
        _ => Err("usage: bench backend ADDR… | bench edge HTTP_ADDR TCP_ADDR BACKEND,…".into()),
    }
}

/// Serves `ok` on every address until killed.
async fn backends(addrs: Vec<SocketAddr>) -> Result<(), String> {
    let mut tasks = Vec::new();
    for addr in addrs {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                            b"ok\n",
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

/// Runs the edge balancer over a fixed view until killed.
async fn edge(http: SocketAddr, tcp: SocketAddr, backends: Vec<SocketAddr>) -> Result<(), String> {
    let backends: Arc<Vec<Backend>> = Arc::new(
        backends
            .iter()
            .enumerate()
            .map(|(i, addr)| Backend {
                instance_id: format!("bench.{i}"),
                addr: *addr,
                region: None,
                zone: None,
                ready: true,
                health_unknown: false,
            })
            .collect(),
    );
    let service = |port_index, mode, service_port: Option<u16>, vhosts: Vec<String>| Service {
        app_id: "/bench".into(),
        port_index,
        vips: vec![],
        edge: Some(EdgeRoute {
            group: "external".into(),
            mode,
            service_port,
            vhosts,
        }),
        max_connections: None,
        backends: backends.clone(),
    };
    let view = View {
        services: vec![
            service(0, Mode::Http, None, vec!["bench.test".into()]),
            service(1, Mode::Tcp, Some(tcp.port()), vec![]),
        ],
    };
    let (routes, _keep) = Routes::fixed(view);
    let config = EdgeConfig {
        group: "external".into(),
        http: Some(http),
        bind_ip: tcp.ip(),
        admin: None,
        drain_grace: Duration::ZERO,
    };
    let balancer = Arc::new(Balancer::new(Caller::default()));
    lb::edge::run(routes, balancer, config, std::future::pending::<()>())
        .await
        .map_err(|e| e.to_string())
}
