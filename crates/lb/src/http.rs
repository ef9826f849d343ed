//! The HTTP/1.1 proxy: keep-alive on both sides (a pool of idle backend connections per
//! backend, see [`crate::pool`]), `X-Forwarded-For`, routing by `Host` on the shared HTTP port or to one service on
//! its own port. A request that could not be sent (connect refused, a pooled connection the
//! backend had closed) goes to the next backend at once; a request that was sent is never
//! sent twice.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::balancer::Balancer;
use crate::follow::Routes;
use crate::listen::Open;
use crate::pool::{Pool, SendFail};
use crate::routes::{Service, View};

/// The body of what the proxy answers.
pub type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// How requests on one port find their service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// By `Host`, among the virtual hosts of `group`.
    VirtualHost {
        /// The `drover lb` group.
        group: String,
    },
    /// The service of `group` on service port `port`.
    ServicePort {
        /// The `drover lb` group.
        group: String,
        /// The port.
        port: u16,
    },
}

impl Target {
    /// The service a request goes to, or what to tell the client.
    fn service<'v>(&self, view: &'v View, req: &Request<Incoming>) -> Result<&'v Service, String> {
        match self {
            Target::VirtualHost { group } => {
                let host = req
                    .headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .or_else(|| req.uri().host())
                    .ok_or("the request has no Host header; say which virtual host you want")?;
                view.vhost(group, host).ok_or_else(|| {
                    format!("no app of group {group} has virtual host {host} (label HAPROXY_0_VHOST or DROVER_LB_0_VHOST)")
                })
            }
            Target::ServicePort { group, port } => view
                .service_port(group, *port)
                .map(|(s, _)| s)
                .ok_or_else(|| format!("no app of group {group} has service port {port} any more")),
        }
    }
}

/// The HTTP proxy of one process: its balancer and its idle backend connections.
pub struct HttpProxy {
    balancer: Arc<Balancer>,
    pool: Arc<Pool>,
}

impl HttpProxy {
    /// A proxy choosing backends with `balancer`.
    pub fn new(balancer: Arc<Balancer>) -> Arc<Self> {
        Arc::new(HttpProxy {
            balancer,
            pool: Pool::new(),
        })
    }

    /// Serves one client connection (keep-alive) until it closes, or until the process
    /// drains (then it closes after the request in progress).
    pub async fn serve(
        self: Arc<Self>,
        routes: Routes,
        target: Target,
        stream: TcpStream,
        peer: SocketAddr,
        mut open: Open,
    ) {
        let _ = stream.set_nodelay(true);
        let proxy = self.clone();
        let service = hyper::service::service_fn(move |req| {
            let proxy = proxy.clone();
            let view = routes.current();
            let target = target.clone();
            async move { Ok::<_, Infallible>(proxy.handle(&view, &target, peer, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = open.draining.wait_for(|d| *d) => conn.as_mut().graceful_shutdown(),
        }
        let _ = conn.await;
    }

    /// One request: route, choose, forward.
    async fn handle(
        &self,
        view: &View,
        target: &Target,
        peer: SocketAddr,
        mut req: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let service = match target.service(view, &req) {
            Ok(s) => s,
            Err(message) => return answer(StatusCode::NOT_FOUND, message),
        };
        strip_hop_by_hop(req.headers_mut());
        forwarded_for(req.headers_mut(), peer);
        let mut tried = BTreeSet::new();
        let mut last = None;
        while let Some(active) = self.balancer.pick(service, &tried) {
            tried.insert(active.addr);
            let started = Instant::now();
            let stats = active.stats.clone();
            match self.pool.send(active.addr, req, active).await {
                Ok(resp) => {
                    stats.observe(started.elapsed());
                    let (mut parts, body) = resp.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    return Response::from_parts(parts, body.boxed_unsync());
                }
                Err((SendFail::NotSent(back, e), active)) => {
                    self.balancer.refused(&active);
                    last = Some(e);
                    req = *back;
                }
                Err((SendFail::Failed(e), active)) => {
                    active.stats.errors.fetch_add(1, Ordering::Relaxed);
                    return answer(
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "{} ({}) failed the request: {e}",
                            active.addr, active.instance_id
                        ),
                    );
                }
            }
        }
        self.balancer.count_no_backend(&service.key());
        match last {
            None => answer(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{} has no ready instance", service.key()),
            ),
            Some(e) => answer(
                StatusCode::BAD_GATEWAY,
                format!(
                    "no instance of {} could be reached (last: {e})",
                    service.key()
                ),
            ),
        }
    }
}

/// A short text answer of the proxy itself.
fn answer(status: StatusCode, message: String) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(message + "\n"))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Headers of one hop only (RFC 9110 7.6.1): not forwarded.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ] {
        headers.remove(n);
    }
}

/// Appends the client's address to `X-Forwarded-For`.
fn forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let name = HeaderName::from_static("x-forwarded-for");
    let ip = peer.ip().to_string();
    let value = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {ip}"),
        _ => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_and_the_client_is_appended_to_x_forwarded_for() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.9"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        forwarded_for(&mut h, "127.0.0.7:5000".parse().expect("addr"));
        let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        names.sort();
        assert_eq!(names, vec!["x-forwarded-for", "x-kept"]);
        assert_eq!(h["x-forwarded-for"], "10.0.0.9, 127.0.0.7");
    }
}
