//! The load balancer benchmark's helper processes (see docs/benchmarks.md, "Load balancer"):
//!
//! - `bench backend ADDR…`: HTTP/1.1 servers answering `ok` (keep-alive), the backends.
//! - `bench master ADDR TCP_PORT BACKEND,…`: a stand-in for the masters that `drover lb`
//!   follows: `GET /v2/apps?embed=apps.tasks` answers one app, `/bench`, with a task per
//!   BACKEND and marathon-lb's labels (virtual host `bench.test` on port index 0, TCP
//!   service port TCP_PORT on port index 1), and `/v2/events` is a stream that stays open
//!   and quiet. The release `drover lb` runs against it unchanged, and no scheduler, agent or
//!   health check shares the machine with the measurement.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use http_body_util::Full;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Bytes, Frame};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

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
        Some("master") if args.len() == 4 => {
            let addr = parse(&args[1])?;
            let tcp_port: u16 = args[2]
                .parse()
                .map_err(|e| format!("TCP_PORT {}: {e}", args[2]))?;
            let backends = args[3]
                .split(',')
                .map(parse)
                .collect::<Result<Vec<_>, _>>()?;
            runtime.block_on(master(addr, apps(tcp_port, &backends)))
        }
        _ => Err("usage: bench backend ADDR… | bench master ADDR TCP_PORT BACKEND,…".into()),
    }
}

/// Serves every connection accepted on `addr` with `answer` until killed.
async fn serve<F, Fut>(addr: SocketAddr, answer: F) -> Result<(), String>
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = hyper::Response<BoxBody<Bytes, Infallible>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let reply = answer(req);
                async move { Ok::<_, Infallible>(reply.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Serves `ok` on every address until killed.
async fn backends(addrs: Vec<SocketAddr>) -> Result<(), String> {
    let mut tasks = Vec::new();
    for addr in addrs {
        tasks.push(tokio::spawn(serve(addr, |_req| async {
            hyper::Response::new(Full::new(Bytes::from_static(b"ok\n")).boxed())
        })));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// What the stand-in master answers to `GET /v2/apps?embed=apps.tasks`.
fn apps(tcp_port: u16, backends: &[SocketAddr]) -> Value {
    let tasks: Vec<Value> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "id": format!("bench.instance-{i}"), "appId": "/bench", "host": b.ip().to_string(),
                "ipAddresses": [{"ipAddress": b.ip().to_string(), "protocol": "IPv4"}],
                "ports": [b.port(), b.port()], "servicePorts": [], "slaveId": "a", "agentId": "a",
                "state": "TASK_RUNNING", "stagedAt": "2026-01-01T00:00:00.000Z",
                "startedAt": "2026-01-01T00:00:00.000Z", "version": "2026-01-01T00:00:00.000Z",
                "healthCheckResults": [],
            })
        })
        .collect();
    json!({"apps": [{
        "id": "/bench", "cmd": "bench backend", "instances": backends.len(),
        "version": "2026-01-01T00:00:00.000Z",
        "versionInfo": {"lastConfigChangeAt": "2026-01-01T00:00:00.000Z",
                        "lastScalingAt": "2026-01-01T00:00:00.000Z"},
        "portDefinitions": [{"port": 0}, {"port": 0}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "bench.test",
                   "HAPROXY_1_PORT": tcp_port.to_string(), "HAPROXY_1_MODE": "tcp"},
        "tasks": tasks,
    }]})
}

/// A body that never ends and never sends: the quiet event stream.
struct Quiet;

impl Body for Quiet {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

/// Serves the stand-in master on `addr` until killed.
async fn master(addr: SocketAddr, apps: Value) -> Result<(), String> {
    let apps = Bytes::from(apps.to_string());
    serve(addr, move |req| {
        let apps = apps.clone();
        async move {
            let mut resp = if req.uri().path() == "/v2/events" {
                hyper::Response::new(Quiet.boxed())
            } else {
                hyper::Response::new(Full::new(apps).boxed())
            };
            let kind = if req.uri().path() == "/v2/events" {
                "text/event-stream"
            } else {
                "application/json"
            };
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(kind),
            );
            resp
        }
    })
    .await
}
