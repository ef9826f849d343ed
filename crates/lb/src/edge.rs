//! The edge balancer behind `drover lb`: the shared HTTP port routes by virtual host, and
//! each service port an app of its group declares gets a listener of its own (TCP or HTTP).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::balancer::Balancer;
use crate::follow::Routes;
use crate::http::{HttpProxy, Target};
use crate::listen::{Drain, Listeners, Serve};
use crate::routes::Mode;

/// What `drover lb` serves.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// The group whose apps it serves (`*`: every group).
    pub group: String,
    /// Where the virtual hosts are served (none: no shared HTTP port).
    pub http: Option<SocketAddr>,
    /// The address service ports are bound on.
    pub bind_ip: IpAddr,
    /// Where `/metrics` and `/routes` are served.
    pub admin: Option<SocketAddr>,
    /// How long open connections may take to finish after a stop.
    pub drain_grace: Duration,
}

/// Why the edge balancer could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// A fixed address could not be bound.
    #[error("cannot listen on {addr} for {what}: {source}; is another process on it?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What it was for.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// Binds `addr` for `what`.
async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, EdgeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| EdgeError::Bind { addr, what, source })
}

/// Runs the edge balancer until `stop` completes, then stops accepting and lets open
/// connections finish (up to the drain grace).
pub async fn run(
    mut routes: Routes,
    balancer: Arc<Balancer>,
    config: EdgeConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), EdgeError> {
    let drain = Drain::default();
    let proxy = HttpProxy::new(balancer.clone());
    let mut fixed = Vec::new();
    if let Some(addr) = config.http {
        let listener = bind(addr, "virtual hosts (--http)").await?;
        tracing::info!("serving virtual hosts on {addr}");
        let (proxy, routes, drain, group) = (
            proxy.clone(),
            routes.clone(),
            drain.clone(),
            config.group.clone(),
        );
        fixed.push(tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let target = Target::VirtualHost {
                    group: group.clone(),
                };
                tokio::spawn(proxy.clone().serve(
                    routes.clone(),
                    target,
                    stream,
                    peer,
                    drain.open(),
                ));
            }
        }));
    }
    if let Some(addr) = config.admin {
        let listener = bind(addr, "metrics (--admin)").await?;
        let app = crate::admin::router(balancer.clone(), routes.clone());
        fixed.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("the admin API stopped: {e}");
            }
        }));
    }
    let mut listeners: Listeners<Mode> = Listeners::new(config.bind_ip);
    tokio::pin!(stop);
    loop {
        let view = routes.current();
        let wanted: BTreeMap<u16, Mode> = view
            .edge_services(&config.group)
            .filter_map(|(_, e)| Some((e.service_port?, e.mode)))
            .collect();
        let serve = |mode: &Mode| -> Serve {
            let (routes, balancer, proxy, drain, group) = (
                routes.clone(),
                balancer.clone(),
                proxy.clone(),
                drain.clone(),
                config.group.clone(),
            );
            let mode = *mode;
            Arc::new(move |port, stream, peer| {
                let open = drain.open();
                match mode {
                    Mode::Http => {
                        let target = Target::ServicePort {
                            group: group.clone(),
                            port,
                        };
                        tokio::spawn(proxy.clone().serve(
                            routes.clone(),
                            target,
                            stream,
                            peer,
                            open,
                        ));
                    }
                    Mode::Tcp => {
                        let (routes, balancer, group) =
                            (routes.clone(), balancer.clone(), group.clone());
                        tokio::spawn(async move {
                            let view = routes.current();
                            if let Some((service, _)) = view.service_port(&group, port) {
                                crate::tcp::proxy(stream, service, &balancer).await;
                            }
                            drop(open);
                        });
                    }
                }
            })
        };
        listeners.reconcile(&wanted, serve).await;
        tokio::select! {
            _ = routes.changed() => {}
            _ = &mut stop => break,
        }
    }
    listeners.close_all();
    for f in fixed {
        f.abort();
    }
    let left = drain.drain(config.drain_grace).await;
    if left > 0 {
        tracing::warn!(
            "{left} connection(s) still open after {:?}; closing them",
            config.drain_grace
        );
    }
    Ok(())
}
