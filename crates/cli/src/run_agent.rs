//! `drover agent`: run an agent (see crates/agent).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agent::{AgentConfig, Timings, machine};
use clap::Args;

use crate::detect;

/// Arguments of `drover agent`.
#[derive(Args)]
#[command(after_help = "\
An agent registers with any master (followers forward to the leader), heartbeats, long-polls
the tasks assigned to it, runs them as process groups in sandboxes under --work-dir, checks
their health, and reports what changes. When no master answers, its tasks keep running and it
registers again once one does. Stopping or killing the agent never stops its tasks: a
restarted agent with the same --work-dir finds them again.

Resources default to what the machine has: its cores, its memory, the space available on the
work dir's filesystem, and ports [31000-32000]. --resources overrides them one by one.

Exit codes: 0 after Ctrl-C or SIGTERM; 1 when the masters refuse the agent (another live agent
has its IP; invalid fields) or the work dir cannot be used; 2 on bad flags or a failing fault
domain detect script.

Examples:
  drover agent --masters 127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083 \\
    --work-dir /var/lib/drover/agent \\
    --domain '{\"fault_domain\":{\"region\":{\"name\":\"local\"},\"zone\":{\"name\":\"local-a\"}}}'
  drover agent --masters 10.0.1.10:8080,10.0.2.10:8080,10.0.3.10:8080 \\
    --work-dir /var/lib/drover/agent \\
    --fault-domain-detect /opt/drover/fault-domain-detect \\
    --resources 'cpus:8;mem:30000;ports:[31000-32000]' --attributes 'rack:r1;ssd:true'")]
pub struct AgentArgs {
    /// Masters to register with: HOST:PORT,… (any of them will do).
    #[arg(long, value_name = "HOST:PORT,…")]
    masters: String,
    /// Directory for the agent id, task checkpoints and sandboxes; keep it across restarts.
    #[arg(long, value_name = "DIR")]
    work_dir: PathBuf,
    /// Script printing this node's fault domain as DC/OS JSON; run once at start.
    #[arg(long, value_name = "PATH", conflicts_with = "domain")]
    fault_domain_detect: Option<PathBuf>,
    /// This node's fault domain as DC/OS JSON, instead of a detect script.
    #[arg(long, value_name = "JSON")]
    domain: Option<String>,
    /// Hostname to register with [default: the machine's hostname].
    #[arg(long, value_name = "HOST")]
    hostname: Option<String>,
    /// IP to register with; unique among live agents [default: the address of the route to
    /// the first master].
    #[arg(long, value_name = "IP")]
    advertise_ip: Option<IpAddr>,
    /// Resources to offer, overriding the detected ones: "cpus:4;mem:8192;disk:10000;ports:[31000-32000]".
    #[arg(long, value_name = "SPEC")]
    resources: Option<String>,
    /// Attributes for constraints: "rack:r1;ssd:true".
    #[arg(long, value_name = "SPEC")]
    attributes: Option<String>,
    /// Serve the agent's /health and /state here.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<SocketAddr>,
    /// Heartbeat interval [default: what the leader asks for, 1000 ms].
    #[arg(long, value_name = "MS")]
    heartbeat_interval_ms: Option<u64>,
}

/// Runs `drover agent`.
pub fn run(args: AgentArgs) -> ExitCode {
    let fail = |code: u8, msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(code)
    };
    let masters = match agent::parse_masters(&args.masters) {
        Ok(m) => m,
        Err(e) => return fail(2, e),
    };
    let domain =
        match detect::fault_domain(args.domain.as_deref(), args.fault_domain_detect.as_deref()) {
            Ok(d) => d,
            Err(e) => return fail(2, e),
        };
    if let Err(e) = std::fs::create_dir_all(&args.work_dir) {
        return fail(
            1,
            format!(
                "cannot create the work dir {}: {e}",
                args.work_dir.display()
            ),
        );
    }
    let detected = machine::detect_resources(&args.work_dir);
    let resources = match &args.resources {
        Some(text) => match detected.parse_over(text) {
            Ok(r) => r,
            Err(e) => return fail(2, format!("--resources: {e}")),
        },
        None => detected,
    };
    let attributes = match &args.attributes {
        Some(text) => match domain::attributes::parse_attributes(text) {
            Ok(a) => a,
            Err(e) => return fail(2, format!("--attributes: {e}")),
        },
        None => Default::default(),
    };
    let hostname = args
        .hostname
        .or_else(machine::hostname)
        .unwrap_or_else(|| "localhost".to_string());
    let ip = match args.advertise_ip {
        Some(ip) => ip,
        None => match machine::route_ip(&masters[0]) {
            Ok(ip) => ip,
            Err(e) => {
                return fail(
                    2,
                    format!(
                        "cannot tell which address masters see this agent at (no route to {}: {e}); give --advertise-ip",
                        masters[0]
                    ),
                );
            }
        },
    };
    let config = AgentConfig {
        masters,
        work_dir: args.work_dir,
        hostname,
        ip: ip.to_string(),
        domain: Some(domain),
        resources,
        attributes,
        listen: args.listen,
        heartbeat_interval: args.heartbeat_interval_ms.map(Duration::from_millis),
        timings: Timings::default(),
    };
    crate::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(1, format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(agent::run(config, agent::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, e.to_string()),
    }
}
