//! `drover master`: run one master of the cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use master::leadership::ExitReason;
use master::{MasterConfig, MembershipConfig, parse_join_masters, parse_masters};

use crate::detect;

/// Arguments of `drover master`.
#[derive(Args)]
#[command(after_help = "\
Run 1, 3, 5 or 7 masters, one per zone of the local region. The master with the lowest id
forms the cluster once every listed master answers; restarting never forms it again.

Every *-ms flag takes 1 to 86400000 (one day); --heartbeat-ms < --election-timeout-min-ms <
--election-timeout-max-ms; --agent-unreachable-ms > --agent-heartbeat-ms; --eviction-threshold
is a fraction above 0 and at most 1. --masters names each id and each address once, and this
master's entry must be its --listen address (any host when --listen is 0.0.0.0 or [::]).

Add a master to a running cluster with --join (--masters names it and masters of the cluster);
remove one with `drover operator masters remove ID`. See docs/operations.md.

Exit codes: 0 after Ctrl-C or SIGTERM, or once removed from the cluster; 1 on a fatal error (storage, region mismatch, a data
dir lost while the cluster exists, a data dir of another cluster); 2 on bad flags; 103 when
--exit-on-leadership-loss is set and this master stops being the leader.

Examples:
  drover master --id 1 --listen 127.0.0.1:8081 --data-dir /var/lib/drover/m1 \\
    --masters 1=127.0.0.1:8081,2=127.0.0.1:8082,3=127.0.0.1:8083 \\
    --domain '{\"fault_domain\":{\"region\":{\"name\":\"local\"},\"zone\":{\"name\":\"local-a\"}}}'
  drover master --id 2 --listen 0.0.0.0:8080 --data-dir /var/lib/drover \\
    --masters 1=10.0.1.10:8080,2=10.0.2.10:8080,3=10.0.3.10:8080 \\
    --fault-domain-detect /opt/drover/fault-domain-detect")]
pub struct MasterArgs {
    /// This master's id: one of the ids in --masters.
    #[arg(long)]
    id: u64,
    /// Address to listen on (API, UI and Raft share one port).
    #[arg(long, value_name = "HOST:PORT")]
    listen: SocketAddr,
    /// Every master, this one included: ID=HOST:PORT,… (1, 3, 5 or 7 of them; with --join,
    /// this one and any masters of the running cluster).
    #[arg(long, value_name = "ID=HOST:PORT,…")]
    masters: String,
    /// Directory for the Raft log, vote and snapshots; keep it across restarts.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Script printing this node's fault domain as DC/OS JSON; run once at start.
    #[arg(long, value_name = "PATH", conflicts_with = "domain")]
    fault_domain_detect: Option<PathBuf>,
    /// This node's fault domain as DC/OS JSON, instead of a detect script.
    #[arg(long, value_name = "JSON")]
    domain: Option<String>,
    /// Raft heartbeat interval.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    heartbeat_ms: u64,
    /// Shortest Raft election timeout.
    #[arg(long, default_value_t = 600, value_name = "MS")]
    election_timeout_min_ms: u64,
    /// Longest Raft election timeout.
    #[arg(long, default_value_t = 1200, value_name = "MS")]
    election_timeout_max_ms: u64,
    /// How long a request waits for a leader before answering 503.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    leader_wait_ms: u64,
    /// How long a write waits for a quorum before failing with 503.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    write_timeout_ms: u64,
    /// Exit with code 103 when this master stops being the leader (for supervisors).
    #[arg(long)]
    exit_on_leadership_loss: bool,
    /// How often agents heartbeat (told to them when they register).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    agent_heartbeat_ms: u64,
    /// An agent without a heartbeat for this long is unreachable (its instances are replaced
    /// per the app's unreachableStrategy).
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    agent_unreachable_ms: u64,
    /// After an election, how long every agent has to be heard from before any is called
    /// unreachable.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    agent_reregistration_grace_ms: u64,
    /// Mass eviction protection: the fraction of a zone's (or all) agents that, unreachable
    /// together (and at least two), slows replacement down; when every zone looks
    /// unreachable, nothing is replaced.
    #[arg(long, default_value_t = 0.55, value_name = "FRACTION")]
    eviction_threshold: f64,
    /// Mass eviction protection: in a protected zone, replace one more unreachable agent's
    /// instances per this interval.
    #[arg(long, default_value_t = 30000, value_name = "MS")]
    eviction_interval_ms: u64,
    /// Run without TLS between cluster processes and without API tokens: anyone who reaches
    /// --listen can run any command on every agent. Only for loopback or a trusted network.
    #[arg(long)]
    insecure: bool,
    /// Event callbacks: how many events may wait per subscribed URL before the oldest are
    /// dropped (counted in /metrics).
    #[arg(long, default_value_t = 1024, value_name = "EVENTS")]
    event_callback_queue: usize,
    /// Event callbacks: how long one POST to a subscribed URL may take before it is retried
    /// (three attempts per event).
    #[arg(long, default_value_t = 10000, value_name = "MS")]
    event_callback_timeout_ms: u64,
    /// Join the running cluster of the other masters in --masters as a new member: this
    /// master is added as a learner, catches up (from a snapshot if need be) and is promoted
    /// to voter by the leader. --masters then names this master and any masters of the
    /// cluster (any count). Also how a master whose data dir was lost comes back, after
    /// `drover operator masters remove ID`.
    #[arg(long = "join", conflicts_with = "force_new_cluster")]
    join_cluster: bool,
    /// Recovery when every other master is gone for good: rewrite this master's stored
    /// membership to itself alone, so it leads a cluster of one with its log (logged
    /// loudly). Refused while another member answers. Remove the flag once it runs.
    #[arg(long)]
    force_new_cluster: bool,
    /// The leader removes a voter that has not answered for this long (e.g. 30m, 2h),
    /// one at a time and only when the voters left keep a quorum of masters that are up.
    /// Off by default.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    remove_dead_masters_after: Option<Duration>,
    /// Redundancy zones: the leader keeps one voter per zone (the zone of each master's
    /// --domain or --fault-domain-detect) and the others as standby learners. A voter down longer than
    /// --remove-dead-masters-after (required with this flag) is replaced by a caught-up
    /// standby of its zone, else of a zone with no voter, else of the zone with the fewest
    /// voters, and demoted to standby, only when a quorum is kept. See docs/operations.md.
    #[arg(long, requires = "remove_dead_masters_after")]
    redundancy_zones: bool,
    #[command(flatten)]
    join: crate::secure::JoinTokenFlags,
}

/// `90s`, `30m`, `2h`, `1d` or plain milliseconds, at least 10 s.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit_ms) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (text, 1),
        Some((i, _)) => {
            let unit = match &text[i..] {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                other => {
                    return Err(format!(
                        "unknown unit `{other}` in `{text}`: use ms, s, m, h or d (e.g. 30m)"
                    ));
                }
            };
            (&text[..i], unit)
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: give e.g. 90s, 30m or 2h"))?;
    let ms = n
        .checked_mul(unit_ms)
        .ok_or_else(|| format!("`{text}` is too long"))?;
    if ms < 10_000 {
        return Err(format!(
            "`{text}` is too short: a master must be down at least 10s before it is removed"
        ));
    }
    Ok(Duration::from_millis(ms))
}

/// Runs `drover master`.
pub fn run(args: MasterArgs) -> ExitCode {
    let fail = |code: u8, msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(code)
    };
    let parsed = if args.join_cluster {
        parse_join_masters(&args.masters)
    } else {
        parse_masters(&args.masters)
    };
    let masters = match parsed {
        Ok(m) => m,
        Err(e) => return fail(2, e.to_string()),
    };
    let domain =
        match detect::fault_domain(args.domain.as_deref(), args.fault_domain_detect.as_deref()) {
            Ok(d) => d,
            Err(e) => return fail(2, e),
        };
    let config = MasterConfig {
        id: args.id,
        listen: args.listen,
        masters,
        data_dir: args.data_dir,
        domain,
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        election_timeout_min: Duration::from_millis(args.election_timeout_min_ms),
        election_timeout_max: Duration::from_millis(args.election_timeout_max_ms),
        exit_on_leadership_loss: args.exit_on_leadership_loss,
        leader_wait: Duration::from_millis(args.leader_wait_ms),
        write_timeout: Duration::from_millis(args.write_timeout_ms),
        agent_heartbeat: Duration::from_millis(args.agent_heartbeat_ms),
        agent_unreachable_after: Duration::from_millis(args.agent_unreachable_ms),
        agent_reregistration_grace: Duration::from_millis(args.agent_reregistration_grace_ms),
        eviction_threshold: args.eviction_threshold,
        eviction_interval: Duration::from_millis(args.eviction_interval_ms),
        insecure: args.insecure,
        callbacks: master::callbacks::CallbackConfig {
            queue: args.event_callback_queue,
            timeout: Duration::from_millis(args.event_callback_timeout_ms),
        },
        membership: MembershipConfig {
            join: args.join_cluster,
            force_new_cluster: args.force_new_cluster,
            remove_dead_after: args.remove_dead_masters_after,
            redundancy_zones: args.redundancy_zones,
        },
    };
    if let Err(e) = config.validate() {
        return fail(2, e.to_string());
    }
    crate::logging::init();
    let runtime = match crate::async_runtime() {
        Ok(r) => r,
        Err(e) => return fail(1, e),
    };
    let token = match args.join.token() {
        Ok(t) => t,
        Err(e) => return fail(2, e),
    };
    match runtime.block_on(serve(config, token)) {
        Ok(ExitReason::Requested) => ExitCode::SUCCESS,
        Ok(reason) => {
            eprintln!("{reason}");
            // Fail fast, as a supervisor expects: nothing of this master waits for its
            // in-flight work (blocking storage calls included) before the process ends.
            runtime.shutdown_background();
            ExitCode::from(u8::try_from(reason.exit_code()).unwrap_or(1))
        }
        Err(e) => fail(1, e.to_string()),
    }
}

/// Serves one master until SIGTERM or SIGINT: the handlers are installed first (a signal
/// while it starts is a request to stop), then `--listen` is bound.
/// Without `--insecure`, its CA and certificate come first (see `master::tls::prepare`).
async fn serve(
    config: MasterConfig,
    token: Option<state::tls::JoinToken>,
) -> Result<ExitReason, master::StartupError> {
    let stop = master::startup::stop_signals()?;
    if config.insecure {
        let listener = master::startup::bind(config.listen).await?;
        return master::run_with(config, master::Seams::system(), listener, stop).await;
    }
    let pki = master::tls::prepare(&config, token).await?;
    let listener = master::startup::bind(config.listen).await?;
    master::run_secure(config, pki, listener, stop).await
}
