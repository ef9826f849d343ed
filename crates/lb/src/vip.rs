//! VIPs on an agent: every VIP of the cluster is served on one address of the agent's own
//! (`drover agent --vip-addr IP`), at the VIP's port, proxying TCP to the app's ready instances
//! with the agent's zone first. Named VIPs resolve through a hosts file the agent keeps
//! current (`IP NAME.marathon.l4lb.drover.directory` per VIP), for the node's resolver to
//! include (dnsmasq's `addn-hosts`, or appended to `/etc/hosts`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::balancer::Balancer;
use crate::follow::Routes;
use crate::listen::{Drain, Listeners, Serve};
use crate::routes::{View, Vip};

/// Where the VIPs of one agent are served.
#[derive(Debug, Clone)]
pub struct VipConfig {
    /// The address every VIP port is bound on.
    pub ip: IpAddr,
    /// The hosts file to keep (none: no names).
    pub hosts_file: Option<PathBuf>,
    /// Where `/metrics`, `/routes` and `/health` are served (none: nowhere).
    pub admin: Option<SocketAddr>,
}

/// The hosts-file lines naming every named VIP of `view` at `ip`, sorted.
pub fn hosts_lines(view: &View, ip: IpAddr) -> String {
    let mut names: Vec<String> = view
        .vip_services()
        .flat_map(|s| s.vips.iter().filter_map(Vip::hostname))
        .collect();
    names.sort();
    names.dedup();
    let mut out =
        String::from("# drover VIPs: written by the agent, rewritten when the VIPs change\n");
    for n in names {
        out.push_str(&format!("{ip} {n}\n"));
    }
    out
}

/// Writes `text` to `path` through a temporary file and a rename, so readers never see half.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Serves the VIPs of `routes` until the runtime ends.
pub async fn run(mut routes: Routes, balancer: Arc<Balancer>, config: VipConfig) {
    if let Some(addr) = config.admin {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let app = crate::admin::router(balancer.clone(), routes.clone());
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::error!("the VIP metrics endpoint stopped: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::error!("cannot serve VIP metrics on {addr}: {e}; VIPs are served without")
            }
        }
    }
    let drain = Drain::default();
    let mut listeners: Listeners<Vip> = Listeners::new(config.ip);
    let mut written = None;
    loop {
        let view = routes.current();
        if let Some(path) = &config.hosts_file {
            let text = hosts_lines(&view, config.ip);
            if written.as_ref() != Some(&text) {
                match write_atomically(path, &text) {
                    Ok(()) => written = Some(text),
                    Err(e) => {
                        tracing::warn!("cannot write the VIP hosts file {}: {e}", path.display())
                    }
                }
            }
        }
        let wanted: BTreeMap<u16, Vip> = view.vip_ports();
        let serve = |vip: &Vip| -> Serve {
            let (routes, balancer, drain, vip) =
                (routes.clone(), balancer.clone(), drain.clone(), vip.clone());
            Arc::new(move |_port, stream, _peer| {
                let (routes, balancer, vip, open) =
                    (routes.clone(), balancer.clone(), vip.clone(), drain.open());
                tokio::spawn(async move {
                    let view = routes.current();
                    if let Some(service) = view.vip(&vip) {
                        crate::tcp::proxy(stream, service, &balancer).await;
                    }
                    drop(open);
                });
            })
        };
        listeners.reconcile(&wanted, serve).await;
        routes.changed().await;
    }
}
