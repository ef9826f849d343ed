//! VIPs on this agent (`drover agent --vip-addr IP`): every VIP of the cluster is served at
//! `IP:VIP_PORT`, proxying TCP to the app's ready instances, this agent's zone first (see
//! `lb::choice`). Off unless the flag is given. Names: `<work dir>/vip-hosts`, kept current
//! in hosts-file format, maps `NAME.marathon.l4lb.drover.directory` to `IP`.
//!
//! The routes are read from the masters' projection for agents
//! (`/internal/agents/{id}/vips`, `lb::follow::Source::Agent`) over the agent's own
//! connector: mutual TLS with its certificate on a secure cluster, plain TCP with
//! `--insecure`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use domain::{AgentId, FaultDomain};
use lb::follow::{FollowConfig, Source};
use lb::vip::VipConfig;
use lb::{Balancer, Caller};
use state::transport::Connector;

/// How often an agent reads every app when no event asked it to.
pub const RESYNC: std::time::Duration = std::time::Duration::from_secs(10);

/// The hosts file of the VIP names, in the agent's work dir.
pub const HOSTS_FILE: &str = "vip-hosts";

/// Serves VIPs on `ip` for agent `agent_id` in `domain`, following `masters` through
/// `connector` (the agent's own), with their `/metrics` on `admin` if given, until the
/// runtime ends.
pub async fn serve(
    masters: Vec<String>,
    agent_id: &AgentId,
    connector: Connector,
    ip: IpAddr,
    admin: Option<SocketAddr>,
    domain: Option<FaultDomain>,
    work_dir: &Path,
) {
    let caller = domain.map_or_else(Caller::default, |d| Caller {
        region: Some(d.region),
        zone: Some(d.zone),
    });
    let mut follow = FollowConfig::new(masters);
    // Every agent reads: the events carry the changes, the steady read is only a safety net.
    follow.resync = RESYNC;
    follow.source = Source::Agent(agent_id.0.clone());
    follow.connector = connector;
    let routes = lb::follow::follow(follow);
    let balancer = Arc::new(Balancer::new(caller));
    let config = VipConfig {
        ip,
        hosts_file: Some(work_dir.join(HOSTS_FILE)),
        admin,
    };
    tracing::info!(
        "serving VIPs on {ip}; names in {}",
        work_dir.join(HOSTS_FILE).display()
    );
    lb::vip::run(routes, balancer, config).await;
}
