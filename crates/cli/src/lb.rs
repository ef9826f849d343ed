//! `drover lb`: the edge load balancer (see crates/lb).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use lb::edge::EdgeConfig;
use lb::follow::FollowConfig;
use lb::{Balancer, Caller};

use crate::detect;

/// Arguments of `drover lb`.
#[derive(Args)]
#[command(after_help = "\
drover lb follows the masters (their event stream, and a full read of /v2/apps at least every
--resync-ms) and serves the apps of its --group: each virtual host on --http (HTTP/1.1, routed
by Host, with X-Forwarded-For), and each service port on --bind-ip (TCP, or HTTP with mode
http). Run several for high availability: they share nothing, any of them serves every route.

Apps opt in with labels, marathon-lb's or drover's (DROVER_LB_* wins when both are set):
  HAPROXY_GROUP / DROVER_LB_GROUP         the group of balancers that serves the app
  HAPROXY_<n>_VHOST / DROVER_LB_<n>_VHOST virtual hosts of port index n (comma-separated)
  HAPROXY_<n>_PORT / DROVER_LB_<n>_PORT   service port of port index n [default: its port]
  HAPROXY_<n>_MODE / DROVER_LB_<n>_MODE   tcp or http [default: http with a vhost, else tcp]
  DROVER_LB_MAX_CONN                      connections per instance before the zone spills over

With a fault domain (--domain or --fault-domain-detect), instances in the balancer's zone are
preferred, then its region; without one, every ready instance is used alike. A connect error
to one instance retries the next at once. While no master answers, the last routes are kept.
SIGTERM or Ctrl-C stops accepting and lets open connections finish (--drain-grace-ms).

Exit codes: 0 after a stop signal; 1 when a fixed address cannot be bound; 2 on bad flags.

Examples:
  drover lb --masters 10.0.1.10:8080,10.0.2.10:8080,10.0.3.10:8080
  drover lb --masters 127.0.0.1:8080 --http 127.0.0.1:8000 --bind-ip 127.0.0.1 \\
    --admin 127.0.0.1:9090 --domain '{\"fault_domain\":{\"region\":{\"name\":\"local\"},\"zone\":{\"name\":\"local-a\"}}}'")]
pub struct LbArgs {
    /// Masters to follow: HOST:PORT,… (any of them will do).
    #[arg(long, value_name = "HOST:PORT,…")]
    masters: String,
    /// The group of apps to serve (HAPROXY_GROUP); `*` serves every group.
    #[arg(long, value_name = "NAME", default_value = lb::routes::DEFAULT_GROUP)]
    group: String,
    /// Where virtual hosts are served.
    #[arg(long, value_name = "HOST:PORT", default_value = "0.0.0.0:80")]
    http: SocketAddr,
    /// The address service ports are bound on.
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    bind_ip: IpAddr,
    /// Where /metrics (per backend), /routes and /health are served.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9090")]
    admin: SocketAddr,
    /// This balancer's fault domain as DC/OS JSON: its zone's instances are preferred.
    #[arg(long, value_name = "JSON")]
    domain: Option<String>,
    /// Script printing this node's fault domain as DC/OS JSON, instead of --domain.
    #[arg(long, value_name = "PATH", conflicts_with = "domain")]
    fault_domain_detect: Option<PathBuf>,
    /// Full reads of the masters' apps at least this often, 100 to 600000.
    #[arg(long, value_name = "MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    resync_ms: u64,
    /// How long open connections may take to finish after a stop signal, 0 to 3600000.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    drain_grace_ms: u64,
    /// Read the masters over plain HTTP without a token (masters started with --insecure).
    #[arg(long)]
    insecure: bool,
    /// The ACL token the masters are read with (a `read` token is enough).
    #[arg(
        long,
        env = "DROVER_TOKEN",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    token: Option<String>,
    /// The cluster CA certificate (ca.pem from a master's data dir, or what `drover dev`
    /// wrote): the masters are read over HTTPS that trusts only it.
    #[arg(
        long,
        env = "DROVER_CA_FILE",
        value_name = "FILE",
        conflicts_with = "insecure"
    )]
    ca_file: Option<PathBuf>,
}

/// Runs `drover lb`.
pub fn run(args: LbArgs) -> ExitCode {
    let fail = |code: u8, msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(code)
    };
    let masters = match agent::parse_masters(&args.masters) {
        Ok(m) => m,
        Err(e) => return fail(2, e),
    };
    if !args.insecure && args.token.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return fail(
            2,
            "drover lb reads the masters' /v2/apps and /v2/events, which need an ACL token: give --token or DROVER_TOKEN (a read token is enough: drover acl token create --name lb --policy read), or --insecure for masters started with --insecure".into(),
        );
    }
    if !args.insecure && args.ca_file.is_none() {
        return fail(
            2,
            "drover lb reads secure masters over HTTPS: give --ca-file FILE (or DROVER_CA_FILE) with the cluster CA, the ca.pem of a master's data dir, or --insecure for masters started with --insecure".into(),
        );
    }
    let caller = if args.domain.is_none() && args.fault_domain_detect.is_none() {
        Caller::default()
    } else {
        match detect::fault_domain(args.domain.as_deref(), args.fault_domain_detect.as_deref()) {
            Ok(d) => Caller {
                region: Some(d.region),
                zone: Some(d.zone),
            },
            Err(e) => return fail(2, e),
        }
    };
    let runtime = match crate::async_runtime() {
        Ok(r) => r,
        Err(e) => return fail(1, e),
    };
    crate::logging::init();
    if args.insecure {
        tracing::warn!("--insecure: the masters are read over plain HTTP without a token");
    }
    let signals = {
        let _runtime = runtime.enter();
        match agent::StopSignals::install() {
            Ok(s) => s,
            Err(e) => return fail(1, format!("cannot install the signal handlers: {e}")),
        }
    };
    let config = EdgeConfig {
        group: args.group,
        http: Some(args.http),
        bind_ip: args.bind_ip,
        admin: Some(args.admin),
        drain_grace: Duration::from_millis(args.drain_grace_ms),
    };
    let mut follow = FollowConfig::new(masters);
    // The follower's own TCP connector (its connect time-out), with TLS when a CA is given.
    follow.connector = match crate::secure::trusting(follow.connector, args.ca_file.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    follow.token = args.token.clone().filter(|_| !args.insecure);
    follow.resync = Duration::from_millis(args.resync_ms);
    runtime.block_on(async move {
        let routes = lb::follow::follow(follow);
        let balancer = Arc::new(Balancer::new(caller));
        match lb::edge::run(routes, balancer, config, signals.wait()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, e.to_string()),
        }
    })
}
