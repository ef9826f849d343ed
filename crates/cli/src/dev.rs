//! `drover dev`: a whole cluster on this machine in one command — masters and agents across
//! regions and zones, as real processes on loopback, that go away with it: Ctrl-C, SIGTERM,
//! SIGHUP (a closed terminal), SIGKILL or a crash of dev stop every master, agent and task
//! it started.

mod acl;
mod lock;
mod process;
mod topology;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use master::peer::PeerClient;
use state::tls::JoinKind;
use tokio::process::Command;
use tokio::signal::unix::{Signal, SignalKind, signal};

use lock::DataDirLock;
use process::{Process, Role, kill_tasks, stop_all};
use topology::{DevPorts, Topology, plan_ports};

/// Prints a line on stdout, and never panics: after a closed terminal's SIGHUP, dev still
/// has to stop everything it started, with nobody left to read what it says.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// [`say!`] on stderr.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// How long masters may take to serve `/health` and agree on a leader.
const MASTERS_UP: Duration = Duration::from_secs(30);

/// How long agents may take to register.
const AGENTS_UP: Duration = Duration::from_secs(60);

/// Arguments of `drover dev`.
#[derive(Args)]
#[command(after_help = "\
By default: three masters in region `local`, one in each of the zones `local-a`, `local-b`
and `local-c` (they elect a leader, and the cluster survives losing one), and one agent in
each zone of three regions — `local`, `aws-us-east1` and `aws-us-east2`, zones `<region>-a`
… `<region>-d` — twelve agents in all, each with its own loopback address (127.0.1.N) and
port range. Logs and data go to --data-dir (a temporary directory unless given).

drover dev reports \"running\" once every master serves /health with a leader and every
agent has registered; otherwise it says which process failed and where its log is, and stops
the rest. Ctrl-C, SIGTERM and SIGHUP (a closed terminal) stop the agents, their tasks and the
masters. If drover dev itself is killed (SIGKILL) or crashes, the kernel stops its masters and
agents, and the agents stop their tasks. One drover dev at a time uses a data dir: a second
one on the same --data-dir refuses, naming the first one's pid.

A topology file (TOML) chooses other regions and zones:

  [[region]]
  name = \"local\"
  zones = [\"local-a\", \"local-b\"]
  agents_per_zone = 2

  [[region]]
  name = \"eu-west\"
  zones = [\"eu-west-a\"]

The first region is the local one (the masters' region); master N goes to its zone N (they
share zones when it has fewer zones than masters).

Examples:
  drover dev
  drover dev --masters 1 --listen 127.0.0.1:9090
  drover dev --topology my-topology.toml --data-dir /tmp/drover-dev")]
pub struct DevArgs {
    /// How many masters: 3 (one per zone of the local region) or 1.
    #[arg(long, default_value_t = 3, value_parser = master_count)]
    masters: u8,
    /// Regions, zones and agents per zone (TOML).
    #[arg(long, value_name = "FILE")]
    topology: Option<PathBuf>,
    /// Address of the first master (API and UI); more masters take the next ports. Loopback only.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    listen: std::net::SocketAddr,
    /// Where masters and agents keep their data and logs (default: a temporary directory,
    /// removed on exit).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Run without ACL tokens (and TLS): any local process may use the API. For tests and
    /// demos that want no token.
    #[arg(long)]
    insecure: bool,
}

fn master_count(s: &str) -> Result<u8, String> {
    match s {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err(format!("`{s}`: drover dev runs 1 or 3 masters")),
    }
}

/// `1 master`, `3 masters`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

fn domain_json(region: &str, zone: &str) -> String {
    domain::FaultDomain::new(region, zone).to_json().to_string()
}

/// Runs `drover dev`.
pub fn run(args: DevArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        say_err!("error: drover dev binds loopback only; use --listen 127.0.0.1:PORT");
        return ExitCode::from(2);
    }
    let topology = match &args.topology {
        Some(path) => match Topology::parse(path) {
            Ok(t) => t,
            Err(e) => {
                say_err!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Topology::default_seed(),
    };
    let ports = match plan_ports(args.listen, args.masters, topology.agent_count()) {
        Ok(p) => p,
        Err(e) => {
            say_err!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread: every child is started from it, and the kernel's parent-death signal
    // fires when the thread that started a child exits (see process::die_with).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say_err!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(dev(args, topology, ports))
}

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal): each stops the dev cluster.
struct StopSignals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        Ok(StopSignals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The name of the next stop signal.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// The cluster being started or run.
struct Cluster {
    procs: Vec<Process>,
    data_dir: PathBuf,
    /// The data dir is dev's own temporary one (removed after a clean stop).
    temporary: bool,
    stop: StopSignals,
    client: PeerClient,
}

/// How a start-up wait ended.
enum Startup {
    Up,
    /// These processes failed (what happened to each).
    Failed(Vec<(usize, String)>),
    /// A stop signal arrived.
    Stopped(&'static str),
}

async fn dev(args: DevArgs, topology: Topology, ports: DevPorts) -> ExitCode {
    let (data_dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("drover-dev-{}", std::process::id())),
            true,
        ),
    };
    // First of all: a data dir in use by another dev is left as it is.
    let _lock = match DataDirLock::acquire(&data_dir) {
        Ok(l) => l,
        Err(e) => {
            say_err!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let refuse = |e: String| {
        say_err!("error: {e}");
        if temporary {
            let _ = std::fs::remove_dir_all(&data_dir);
        }
        ExitCode::from(1)
    };
    let stop = match StopSignals::install() {
        Ok(s) => s,
        Err(e) => return refuse(format!("cannot install the signal handlers: {e}")),
    };
    if let Err(e) = ports_free(&ports) {
        return refuse(e);
    }
    let logs = data_dir.join("logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        return refuse(format!("cannot create {}: {e}", logs.display()));
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return refuse(format!("cannot find the drover binary: {e}")),
    };
    let mut c = Cluster {
        procs: Vec::new(),
        data_dir: data_dir.clone(),
        temporary,
        stop,
        client: PeerClient::new(),
    };
    let local = topology.region[0].name.clone();
    let local_zones = &topology.region[0].zones;
    let masters = ports.masters;
    let masters_flag = masters
        .iter()
        .map(|(i, a)| format!("{i}={a}"))
        .collect::<Vec<_>>()
        .join(",");
    let masters_list = masters
        .iter()
        .map(|(_, a)| a.clone())
        .collect::<Vec<_>>()
        .join(",");

    let first_id = masters.first().map_or(1, |(i, _)| *i);
    let secure = acl::Secure::of(&data_dir, first_id);
    let mut master_rows = Vec::new();
    for (i, addr) in &masters {
        let zone = &local_zones[(usize::from(*i) - 1) % local_zones.len()];
        let name = format!("master-{i}");
        let mut cmd = Command::new(&exe);
        cmd.arg("master");
        if args.insecure {
            cmd.arg("--insecure");
        } else if *i != first_id {
            cmd.arg("--join-token-file")
                .arg(secure.join_token(JoinKind::Master));
        }
        cmd.args([
            "--id",
            &i.to_string(),
            "--listen",
            addr,
            "--masters",
            &masters_flag,
        ])
        .arg("--data-dir")
        .arg(data_dir.join(&name))
        .args(["--domain", &domain_json(&local, zone)]);
        match Process::spawn(cmd, &name, Role::Master, &logs) {
            Ok(p) => c.procs.push(p),
            Err(e) => return c.fail(vec![(usize::MAX, e)]).await,
        }
        master_rows.push((name, addr.clone(), zone.clone()));
        if !args.insecure && *i == first_id {
            // The first master makes the cluster CA and the join tokens the others use.
            // It writes the CA first and the tokens last.
            let tokens = [
                secure.join_token(JoinKind::Master),
                secure.join_token(JoinKind::Agent),
            ];
            let outcome = c
                .wait_up(MASTERS_UP, "make the cluster CA", || {
                    let made = tokens.iter().all(|t| t.exists());
                    async move { if made { Vec::new() } else { vec![0] } }
                })
                .await;
            if let Some(code) = c.unless_up(outcome).await {
                return code;
            }
            match secure.client() {
                Ok(client) => c.client = client,
                Err(e) => return c.fail(vec![(usize::MAX, e)]).await,
            }
        }
    }
    let zones: Vec<&str> = master_rows.iter().map(|(_, _, z)| z.as_str()).collect();
    say!(
        "Starting {} in region {local}, zone{} {} …",
        count(masters.len(), "master"),
        if zones.len() == 1 { "" } else { "s" },
        zones.join(", ")
    );
    let master_addrs: Vec<(usize, String)> = masters
        .iter()
        .enumerate()
        .map(|(k, (_, a))| (k, a.clone()))
        .collect();
    let client = c.client.clone();
    let outcome = c
        .wait_up(MASTERS_UP, "serve /health with a leader", || {
            masters_not_up(&client, &master_addrs)
        })
        .await;
    if let Some(code) = c.unless_up(outcome).await {
        return code;
    }
    let first = masters[0].1.clone();
    let token = if args.insecure {
        None
    } else {
        match acl::bootstrap(&client, &first).await {
            Ok(t) => Some(t),
            Err(e) => return c.fail(vec![(usize::MAX, e)]).await,
        }
    };

    let mut n = 0u32;
    let mut agent_rows = Vec::new();
    let mut agent_ports = ports.agents.into_iter();
    for region in &topology.region {
        for zone in &region.zones {
            for k in 1..=region.agents_per_zone {
                n += 1;
                let name = format!("agent-{zone}-{k}");
                let Some((ip, first_port, last_port)) = agent_ports.next() else {
                    let e = format!("no ports were planned for agent {n}");
                    return c.fail(vec![(usize::MAX, e)]).await;
                };
                let mut cmd = Command::new(&exe);
                cmd.arg("agent");
                if args.insecure {
                    cmd.arg("--insecure");
                } else {
                    cmd.arg("--join-token-file")
                        .arg(secure.join_token(JoinKind::Agent));
                }
                cmd.args(["--masters", &masters_list])
                    .arg("--work-dir")
                    .arg(data_dir.join(&name))
                    .args(["--domain", &domain_json(&region.name, zone)])
                    .args(["--hostname", &name, "--advertise-ip", &ip]);
                // Every agent serves the cluster's VIPs on its own address, as in production.
                cmd.args(["--vip-addr", &ip]);
                cmd.args([
                    "--resources",
                    &format!("cpus:2;mem:2048;disk:10000;ports:[{first_port}-{last_port}]"),
                ])
                .args(["--attributes", &format!("rack:{zone}-r{k}")])
                // A dev cluster takes its tasks with it, also when dev is killed.
                .arg("--stop-tasks-on-exit");
                match Process::spawn(cmd, &name, Role::Agent, &logs) {
                    Ok(p) => {
                        agent_rows.push((
                            c.procs.len(),
                            name,
                            ip,
                            region.name.clone(),
                            zone.clone(),
                        ));
                        c.procs.push(p);
                    }
                    Err(e) => return c.fail(vec![(usize::MAX, e)]).await,
                }
            }
        }
    }
    let agents: Vec<(usize, String)> = agent_rows
        .iter()
        .map(|(k, name, ..)| (*k, name.clone()))
        .collect();
    let outcome = c
        .wait_up(AGENTS_UP, "register", || {
            agents_not_registered(&client, &first, token.as_deref(), &agents)
        })
        .await;
    if let Some(code) = c.unless_up(outcome).await {
        return code;
    }

    let scheme = if args.insecure { "http" } else { "https" };
    let ui = format!("{scheme}://{first}");
    // The token goes in the fragment, which browsers never send (nor log) to the server.
    let ui_line = match &token {
        Some(t) => format!("{ui}/#token={t}"),
        None => ui.clone(),
    };
    let cli_config = match &token {
        Some(t) => match acl::write_cli_config(&data_dir, &first, t, &secure.ca_file()) {
            Ok(written) => Some(written),
            Err(e) => return c.fail(vec![(usize::MAX, e)]).await,
        },
        None => None,
    };
    say!(
        "\ndrover dev is running: {}, {} in {} (drover dev: pid {}).\n",
        count(masters.len(), "master"),
        count(n as usize, "agent"),
        count(topology.region.len(), "region"),
        std::process::id()
    );
    for (k, (name, addr, zone)) in master_rows.iter().enumerate() {
        say!(
            "  {name:<24} {scheme}://{addr:<16} {local} / {zone}  (pid {})",
            c.procs[k].pid().unwrap_or(0)
        );
    }
    for (k, name, ip, region, zone) in &agent_rows {
        let local_mark = if *region == local { " (local)" } else { "" };
        say!(
            "  {name:<24} {ip:<23} {region}{local_mark} / {zone}  (pid {})",
            c.procs[*k].pid().unwrap_or(0)
        );
    }
    say!("\nUI:   {ui_line}");
    if let Some((config, _)) = &cli_config {
        say!("{}", config.hint());
    }
    say!("Logs: {}\n", logs.display());
    say!("Try:");
    say!("  drover node list --master {first}");
    match &token {
        Some(t) => say!(
            "  curl -s --cacert {} -XPOST {ui}/v2/apps -H 'Authorization: Bearer {t}' -d @examples/apps/balanced-zones.json",
            secure.ca_file().display()
        ),
        None => say!("  curl -s -XPOST {ui}/v2/apps -d @examples/apps/balanced-zones.json"),
    }
    say!(
        "  drover plan --nodes examples/nodes/seed-3-regions.json examples/apps/balanced-zones.json"
    );
    say!(
        "\nKill an agent or a master (kill -9 <pid>) and watch the cluster heal; start it again with"
    );
    say!("  sh {}/<name>.restart.sh", logs.display());
    say!("Ctrl-C stops everything.");

    let signal = c.supervise().await;
    c.stop_everything(signal).await;
    if let Some((config, written)) = &cli_config {
        config.remove(written);
    }
    ExitCode::SUCCESS
}

/// Refuses at once when a master's address is taken (say, by the masters of a dev on
/// another data dir), before any log is written: the masters would fail to bind, and the
/// other program's answers could pass for theirs.
fn ports_free(ports: &DevPorts) -> Result<(), String> {
    for (i, addr) in &ports.masters {
        if let Err(e) = std::net::TcpListener::bind(addr.as_str()) {
            return Err(format!(
                "master-{i}'s address {addr} cannot be used ({e}): another drover dev or another program listens there; give --listen another port (the masters take it and the next {})",
                ports.masters.len() - 1
            ));
        }
    }
    Ok(())
}

/// The masters (by index) that do not yet serve `/health` knowing a leader.
async fn masters_not_up(client: &PeerClient, masters: &[(usize, String)]) -> Vec<usize> {
    let mut waiting = Vec::new();
    for (k, addr) in masters {
        let health = client
            .get_json(addr, "/health", Duration::from_secs(2))
            .await
            .and_then(|v| serde_json::from_value::<client::ProcessHealth>(v).ok());
        if health.is_none_or(|h| h.leader.is_none()) {
            waiting.push(*k);
        }
    }
    waiting
}

/// The agents (by index) that the masters do not list as active yet.
async fn agents_not_registered(
    client: &PeerClient,
    master: &str,
    token: Option<&str>,
    agents: &[(usize, String)],
) -> Vec<usize> {
    let wait = Duration::from_secs(5);
    let nodes = client
        .call_as(
            master::peer::Method::GET,
            master,
            "/v1/nodes",
            None,
            token,
            wait,
        )
        .await
        .ok()
        .filter(|(status, _)| status.is_success())
        .and_then(|(_, v)| serde_json::from_value::<client::Nodes>(v).ok());
    let active: Vec<String> = nodes
        .map(|n| n.nodes)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|node| match node {
            client::Node::Agent(a) if a.state == client::NodeState::Active => Some(a.hostname),
            _ => None,
        })
        .collect();
    agents
        .iter()
        .filter(|(_, name)| !active.contains(name))
        .map(|(k, _)| *k)
        .collect()
}

impl Cluster {
    /// Waits until `not_up` names no process, a process exits, `within` passes, or a stop
    /// signal arrives.
    async fn wait_up<F, Fut>(&mut self, within: Duration, what: &str, not_up: F) -> Startup
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Vec<usize>>,
    {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let exited: Vec<(usize, String)> = self
                .procs
                .iter_mut()
                .enumerate()
                .filter_map(|(k, p)| {
                    p.check_exit()
                        .map(|status| (k, format!("{} exited ({status}) before it was up", p.name)))
                })
                .collect();
            if !exited.is_empty() {
                return Startup::Failed(exited);
            }
            let waiting = tokio::select! {
                signal = self.stop.recv() => return Startup::Stopped(signal),
                waiting = not_up() => waiting,
            };
            if waiting.is_empty() {
                return Startup::Up;
            }
            if tokio::time::Instant::now() >= deadline {
                let failed = waiting
                    .into_iter()
                    .map(|k| {
                        let name = self.procs.get(k).map_or("?", |p| p.name.as_str());
                        (
                            k,
                            format!("{name} did not {what} within {} s", within.as_secs()),
                        )
                    })
                    .collect();
                return Startup::Failed(failed);
            }
            tokio::select! {
                signal = self.stop.recv() => return Startup::Stopped(signal),
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    /// `None` when everything is up; otherwise stops what was started and gives dev's exit
    /// code.
    async fn unless_up(&mut self, outcome: Startup) -> Option<ExitCode> {
        match outcome {
            Startup::Up => None,
            Startup::Failed(failed) => Some(self.fail(failed).await),
            Startup::Stopped(signal) => {
                self.stop_everything(signal).await;
                Some(ExitCode::SUCCESS)
            }
        }
    }

    /// Says what failed (each failed process's last log lines), stops the rest, and keeps
    /// the data dir for the logs. `usize::MAX` marks a failure of no particular process.
    async fn fail(&mut self, failed: Vec<(usize, String)>) -> ExitCode {
        for (k, message) in &failed {
            say_err!("error: {message}");
            let Some(p) = self.procs.get(*k) else {
                continue;
            };
            say_err!("  its log: {}", p.log.display());
            if let Ok(text) = std::fs::read_to_string(&p.log) {
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                for line in tail.iter().rev() {
                    say_err!("    {line}");
                }
            }
        }
        say_err!("Stopping what was started …");
        let killed = stop_all(&mut self.procs).await;
        if !killed.is_empty() {
            say_err!("killed (they did not stop in time): {}", killed.join(", "));
        }
        kill_tasks(&self.data_dir);
        say_err!(
            "The logs are kept in {}.",
            self.data_dir.join("logs").display()
        );
        ExitCode::from(1)
    }

    /// Reports processes that exit and starts again those whose restart script ran, until a
    /// stop signal arrives (a killed agent is part of the fun, not a reason to stop).
    async fn supervise(&mut self) -> &'static str {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                signal = self.stop.recv() => return signal,
                _ = tick.tick() => {
                    for p in &mut self.procs {
                        if let Some(status) = p.check_exit() {
                            say!("{} exited ({status}); its log: {}", p.name, p.log.display());
                        }
                        if let Some(news) = p.restart_if_asked() {
                            say!("{news}");
                        }
                    }
                }
            }
        }
    }

    /// Stops the agents with their tasks, then the masters, and removes a temporary data dir.
    async fn stop_everything(&mut self, signal: &str) {
        say!("\n{signal}: stopping the agents and their tasks, then the masters …");
        let killed = stop_all(&mut self.procs).await;
        if !killed.is_empty() {
            say!("killed (they did not stop in time): {}", killed.join(", "));
        }
        // Tasks of agents that were killed (by the user, or above) are still running.
        kill_tasks(&self.data_dir);
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
        say!("Stopped.");
    }
}
