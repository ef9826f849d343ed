//! VIPs on this agent (`drover agent --vip-addr IP`): every VIP of the cluster is served at
//! `IP:VIP_PORT`, proxying TCP to the app's ready instances, this agent's zone first (see
//! `lb::choice`). Off unless the flag is given. Names: `<work dir>/vip-hosts`, kept current
//! in hosts-file format, maps `NAME.marathon.l4lb.drover.directory` to `IP`.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use domain::FaultDomain;
use lb::follow::FollowConfig;
use lb::vip::VipConfig;
use lb::{Balancer, Caller};

/// The hosts file of the VIP names, in the agent's work dir.
pub const HOSTS_FILE: &str = "vip-hosts";

/// Serves VIPs on `ip` for an agent in `domain` following `masters`, until the runtime ends.
pub async fn serve(masters: Vec<String>, ip: IpAddr, domain: Option<FaultDomain>, work_dir: &Path) {
    let caller = domain.map_or_else(Caller::default, |d| Caller {
        region: Some(d.region),
        zone: Some(d.zone),
    });
    let routes = lb::follow::follow(FollowConfig::new(masters));
    let balancer = Arc::new(Balancer::new(caller));
    let config = VipConfig {
        ip,
        hosts_file: Some(work_dir.join(HOSTS_FILE)),
    };
    tracing::info!(
        "serving VIPs on {ip}; names in {}",
        work_dir.join(HOSTS_FILE).display()
    );
    lb::vip::run(routes, balancer, config).await;
}
