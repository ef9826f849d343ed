//! `drover agent`: run an agent (see crates/agent).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agent::{AgentConfig, Retention, Timings, machine};
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

Sandboxes of ended tasks are removed once more than --sandbox-retention-count of them are kept
(the oldest first) or when older than --sandbox-retention-age. A task is started only once its
checkpoint is on disk: on a full disk it fails with a message instead.

Exit codes: 0 after Ctrl-C or SIGTERM (tasks keep running); 1 when the masters refuse the agent
(another live agent has its IP, or its id: a copied work dir; invalid fields) or the work dir
cannot be used; 2 on bad flags or a failing fault domain detect script (one that runs longer
than 10 s is killed).

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
    /// Serve the agent's /health and /state here (a port from 1 to 65535). They take no
    /// token, so only a loopback address is accepted unless --insecure.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    listen: Option<SocketAddr>,
    /// Heartbeat interval, 50 to 60000 [default: what the leader asks for, 1000 ms].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(50..=60_000))]
    heartbeat_interval_ms: Option<u64>,
    /// Sandboxes of ended tasks to keep, the most recently ended ones; 0 to 100000.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(0..=MAX_RETENTION_COUNT))]
    sandbox_retention_count: u64,
    /// How long a sandbox is kept after its task ended: 90s, 30m, 1h, 7d; 0s to 365d.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_retention_age)]
    sandbox_retention_age: Duration,
    /// Serve every VIP (`VIP_<n>` port labels) on this address of the agent's own, at the
    /// VIP's port; names in <work dir>/vip-hosts. Off when not given.
    #[arg(long, value_name = "IP")]
    vip_addr: Option<IpAddr>,
    /// Serve the VIPs' /metrics (per backend), /routes and /health here.
    #[arg(long, value_name = "HOST:PORT", requires = "vip_addr", value_parser = parse_listen)]
    vip_admin: Option<SocketAddr>,
    /// drover dev's: stop the tasks when the agent stops (a real agent leaves them running).
    #[arg(long, hide = true)]
    stop_tasks_on_exit: bool,
    /// Run without TLS to the masters and without a join token: anyone on the path can read
    /// or forge what this agent is told to run. Only for loopback or a trusted network.
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    join: crate::secure::JoinTokenFlags,
}

/// Most sandboxes of ended tasks an agent can be told to keep.
const MAX_RETENTION_COUNT: u64 = 100_000;

/// Longest an agent can be told to keep a sandbox of an ended task.
const MAX_RETENTION_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `--listen`: an address with a fixed port (port 0 would be a port nobody knows).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.parse().map_err(|_| {
        format!("`{text}` is not IP:PORT with a port from 1 to 65535 (e.g. 127.0.0.1:5051)")
    })?;
    if addr.port() == 0 {
        return Err(format!("`{text}` has port 0; give a port from 1 to 65535"));
    }
    Ok(addr)
}

/// Parses `--sandbox-retention-age`: a whole number and a unit, `s`, `m`, `h` or `d`.
pub(crate) fn parse_retention_age(text: &str) -> Result<Duration, String> {
    let usage =
        "give a whole number and a unit s, m, h or d (e.g. 90s, 30m, 1h, 7d), from 0s to 365d";
    let t = text.trim();
    let split = t.len().saturating_sub(1);
    let (number, unit) = (t.get(..split).unwrap_or(""), t.get(split..).unwrap_or(""));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` has no unit: {usage}")),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: {usage}"))?;
    match n.checked_mul(scale).map(Duration::from_secs) {
        Some(d) if d <= MAX_RETENTION_AGE => Ok(d),
        _ => Err(format!("`{text}` is longer than 365d: {usage}")),
    }
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
    let runtime = match crate::async_runtime() {
        Ok(r) => r,
        Err(e) => return fail(1, e),
    };
    // Caught from here on: SIGTERM or Ctrl-C while the agent starts still ends it with 0.
    let mut signals = {
        let _runtime = runtime.enter();
        match agent::StopSignals::install() {
            Ok(s) => s,
            Err(e) => return fail(1, format!("cannot install the signal handlers: {e}")),
        }
    };
    let domain =
        match detect::fault_domain(args.domain.as_deref(), args.fault_domain_detect.as_deref()) {
            Ok(d) => d,
            Err(e) => return fail(2, e),
        };
    if signals.received() {
        eprintln!("stopped before the agent started");
        return ExitCode::SUCCESS;
    }
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
    if let Some(listen) = args
        .listen
        .filter(|l| !l.ip().is_loopback() && !args.insecure)
    {
        return fail(
            2,
            format!(
                "--listen {listen}: the agent's status API takes no token, so it listens on loopback only (e.g. 127.0.0.1:{}); give --insecure to serve it on {listen} anyway",
                listen.port()
            ),
        );
    }
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
        sandbox_retention: Retention {
            max_count: usize::try_from(args.sandbox_retention_count).unwrap_or(usize::MAX),
            max_age: args.sandbox_retention_age,
        },
        timings: Timings::default(),
        tasks: agent::TaskExecution::Host,
        tasks_on_exit: if args.stop_tasks_on_exit {
            agent::TasksOnExit::Stop
        } else {
            agent::TasksOnExit::Keep
        },
        connector: None,
        task_state: agent::TaskState::OnDisk,
        pool: None,
        insecure: args.insecure,
    };
    crate::logging::init();
    if config.insecure {
        tracing::warn!(
            "--insecure: no TLS to the masters and no join token; anyone on the path can \
             read or forge what this agent is told to run"
        );
    }
    let mut config = config;
    if !config.insecure {
        let token = match args.join.token() {
            Ok(t) => t,
            Err(e) => return fail(2, e),
        };
        let connector = runtime.block_on(crate::secure::agent_connector(
            &config.work_dir,
            &config.masters,
            token,
            config.timings.request_timeout,
        ));
        match connector {
            Ok(c) => config.connector = Some(c),
            Err(e) => return fail(1, e),
        }
    }
    // After the connector: a secure agent reads the VIPs' routes with its certificate.
    if let Some(vip_ip) = args.vip_addr {
        let agent_id =
            match agent::work_dir::WorkDir::open(&config.work_dir).and_then(|dir| dir.agent_id()) {
                Ok(id) => id,
                Err(e) => return fail(1, e.to_string()),
            };
        let vip_admin = args.vip_admin;
        runtime.spawn({
            let (masters, connector, domain, work_dir) = (
                config.masters.clone(),
                config.master_connector(),
                config.domain.clone(),
                config.work_dir.clone(),
            );
            async move {
                agent::vip::serve(
                    masters, &agent_id, connector, vip_ip, vip_admin, domain, &work_dir,
                )
                .await
            }
        });
    }
    match runtime.block_on(agent::run(config, signals.wait())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_ages_need_a_unit_and_stay_within_a_year() {
        assert_eq!(parse_retention_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_retention_age("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_retention_age("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_retention_age("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_retention_age("365d"), Ok(MAX_RETENTION_AGE));
        for bad in [
            "",
            "h",
            "10",
            "-1h",
            "1.5h",
            "1w",
            "366d",
            "99999999999999999d",
        ] {
            let e = parse_retention_age(bad).unwrap_err();
            assert!(
                e.contains(&format!("`{bad}`")) && e.contains("0s to 365d"),
                "{bad}: {e}"
            );
        }
    }
}
