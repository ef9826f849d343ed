//! `drover dev`: a whole cluster on this machine in one command — masters and agents across
//! regions and zones, as real processes on loopback, cleaned up on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use agent::checkpoint::Checkpoints;
use agent::procfs;
use clap::Args;
use master::peer::PeerClient;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde::Deserialize;
use serde_json::Value;
use tokio::process::{Child, Command};

/// Arguments of `drover dev`.
#[derive(Args)]
#[command(after_help = "\
By default: one master in region `local`, and one agent in each zone of three regions —
`local`, `aws-us-east1` and `aws-us-east2`, zones `<region>-a` … `<region>-d` — twelve agents
in all, each with its own loopback address (127.0.1.N) and port range. Logs and data go to
--data-dir (a temporary directory unless given). Ctrl-C stops everything it started.

A topology file (TOML) chooses other regions and zones:

  [[region]]
  name = \"local\"
  zones = [\"local-a\", \"local-b\"]
  agents_per_zone = 2

  [[region]]
  name = \"eu-west\"
  zones = [\"eu-west-a\"]

The first region is the local one (the masters' region).

Examples:
  drover dev
  drover dev --masters 3 --listen 127.0.0.1:9090
  drover dev --topology my-topology.toml --data-dir /tmp/drover-dev")]
pub struct DevArgs {
    /// How many masters: 1 or 3.
    #[arg(long, default_value_t = 1, value_parser = master_count)]
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
}

fn master_count(s: &str) -> Result<u8, String> {
    match s {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err(format!("`{s}`: drover dev runs 1 or 3 masters")),
    }
}

/// Regions and zones of a dev cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Regions; the first is the local one.
    region: Vec<RegionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionSpec {
    name: String,
    zones: Vec<String>,
    #[serde(default = "one")]
    agents_per_zone: u32,
}

fn one() -> u32 {
    1
}

impl Topology {
    /// The seed examples' topology: three regions of four zones, one agent each.
    pub fn default_seed() -> Self {
        let region = |name: &str| RegionSpec {
            name: name.to_string(),
            zones: ["a", "b", "c", "d"]
                .iter()
                .map(|z| format!("{name}-{z}"))
                .collect(),
            agents_per_zone: 1,
        };
        Topology {
            region: vec![
                region("local"),
                region("aws-us-east1"),
                region("aws-us-east2"),
            ],
        }
    }

    fn parse(path: &Path) -> Result<Self, String> {
        let text = crate::input::read_text(path, "topology", crate::input::MAX_OTHER_FILE)?;
        let t: Topology = toml::from_str(&text)
            .map_err(|e| format!("topology {} is not valid: {e}", path.display()))?;
        if t.region.is_empty() || t.region.iter().any(|r| r.zones.is_empty()) {
            return Err(format!(
                "topology {}: every region needs a name and at least one zone",
                path.display()
            ));
        }
        Ok(t)
    }
}

/// The first port of the task port ranges dev gives agents; each agent gets
/// [`AGENT_PORTS`] ports after the previous one's.
const AGENT_PORT_BASE: u16 = 31000;

/// Task ports per dev agent.
const AGENT_PORTS: u16 = 100;

/// Dev agent N listens on 127.0.1.N, so there are at most this many.
const MAX_AGENTS: u64 = 254;

/// The ports a dev cluster uses, worked out (and checked) before anything starts.
#[derive(Debug, PartialEq, Eq)]
struct DevPorts {
    /// Each master's address, by id.
    masters: Vec<(u8, String)>,
    /// Each agent's loopback address and task port range (first, last), in start order.
    agents: Vec<(String, u16, u16)>,
}

/// Every port `drover dev` derives from `--listen`, `--masters` and the topology, or why
/// they do not fit (a port past 65535, port 0, masters inside the agents' task ports).
fn plan_ports(listen: std::net::SocketAddr, masters: u8, agents: u64) -> Result<DevPorts, String> {
    let port = listen.port();
    if port == 0 {
        return Err(format!(
            "--listen {listen}: drover dev needs a fixed port, since every master and agent is told the masters' addresses before they start; use e.g. --listen {}:8080",
            listen.ip()
        ));
    }
    let last = u32::from(port) + u32::from(masters) - 1;
    if last > u32::from(u16::MAX) {
        return Err(format!(
            "--listen {listen} with --masters {masters}: the masters would need ports {port} to {last}, past 65535; use a port from 1 to {}",
            u32::from(u16::MAX) + 1 - u32::from(masters)
        ));
    }
    if agents > MAX_AGENTS {
        return Err(format!(
            "the topology has {agents} agents; drover dev runs at most {MAX_AGENTS} (agent N gets the loopback address 127.0.1.N); use fewer zones or a smaller agents_per_zone"
        ));
    }
    let mut agent_ports = Vec::new();
    for n in 1..=agents {
        // At most 254 agents: 31000 + 254 * 100 stays below 65535.
        let first = u64::from(AGENT_PORT_BASE) + (n - 1) * u64::from(AGENT_PORTS);
        let last = first + u64::from(AGENT_PORTS) - 1;
        let (Ok(first), Ok(last)) = (u16::try_from(first), u16::try_from(last)) else {
            return Err(format!(
                "agent {n} would get task ports {first} to {last}, past 65535; use fewer agents"
            ));
        };
        agent_ports.push((format!("127.0.1.{n}"), first, last));
    }
    if let (Some((_, low, _)), Some((_, _, high))) = (agent_ports.first(), agent_ports.last())
        && u32::from(port) <= u32::from(*high)
        && last >= u32::from(*low)
    {
        return Err(format!(
            "--listen {listen}: the masters' ports {port} to {last} overlap the agents' task ports {low} to {high}, so tasks could not bind them; use a port below {low} or above {high}"
        ));
    }
    let host = listen.ip();
    let masters = (1..=masters)
        .map(|i| (i, format!("{host}:{}", u32::from(port) + u32::from(i) - 1)))
        .collect();
    Ok(DevPorts {
        masters,
        agents: agent_ports,
    })
}

impl Topology {
    /// How many agents it has.
    fn agent_count(&self) -> u64 {
        self.region
            .iter()
            .map(|r| (r.zones.len() as u64).saturating_mul(u64::from(r.agents_per_zone)))
            .fold(0, u64::saturating_add)
    }
}

fn domain_json(region: &str, zone: &str) -> String {
    domain::FaultDomain::new(region, zone).to_json().to_string()
}

/// One process the dev cluster started.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    exited: bool,
    /// Program and arguments, to start it again.
    command: (PathBuf, Vec<std::ffi::OsString>),
    /// A file whose appearance asks drover dev to start the process again.
    restart_marker: PathBuf,
}

/// Runs `drover dev`.
pub fn run(args: DevArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        eprintln!("error: drover dev binds loopback only; use --listen 127.0.0.1:PORT");
        return ExitCode::from(2);
    }
    let topology = match &args.topology {
        Some(path) => match Topology::parse(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Topology::default_seed(),
    };
    let ports = match plan_ports(args.listen, args.masters, topology.agent_count()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(dev(args, topology, ports))
}

async fn dev(args: DevArgs, topology: Topology, ports: DevPorts) -> ExitCode {
    let (data_dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("drover-dev-{}", std::process::id())),
            true,
        ),
    };
    let logs = data_dir.join("logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        eprintln!("error: cannot create {}: {e}", logs.display());
        return ExitCode::from(1);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the drover binary: {e}");
            return ExitCode::from(1);
        }
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

    let mut procs: Vec<Process> = Vec::new();
    for (i, addr) in &masters {
        let zone = &local_zones[(usize::from(*i) - 1) % local_zones.len()];
        let dir = data_dir.join(format!("master-{i}"));
        let mut cmd = Command::new(&exe);
        cmd.arg("master")
            .args([
                "--id",
                &i.to_string(),
                "--listen",
                addr,
                "--masters",
                &masters_flag,
            ])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--domain", &domain_json(&local, zone)]);
        match spawn(cmd, &format!("master-{i}"), &logs) {
            Ok(p) => procs.push(p),
            Err(e) => return fail(&mut procs, &e, &data_dir, temporary).await,
        }
    }
    let client = PeerClient::new();
    println!(
        "Starting {} master{} …",
        masters.len(),
        if masters.len() == 1 { "" } else { "s" }
    );
    if wait_for(
        &client,
        &masters[0].1,
        "/v2/leader",
        Duration::from_secs(30),
        |_| true,
    )
    .await
    .is_none()
    {
        let e = format!(
            "no leader was elected within 30 s; see the logs in {}",
            logs.display()
        );
        return fail(&mut procs, &e, &data_dir, temporary).await;
    }

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
                    return fail(&mut procs, &e, &data_dir, temporary).await;
                };
                let mut cmd = Command::new(&exe);
                cmd.arg("agent")
                    .args(["--masters", &masters_list])
                    .arg("--work-dir")
                    .arg(data_dir.join(&name))
                    .args(["--domain", &domain_json(&region.name, zone)])
                    .args(["--hostname", &name, "--advertise-ip", &ip])
                    .args([
                        "--resources",
                        &format!("cpus:2;mem:2048;disk:10000;ports:[{first_port}-{last_port}]"),
                    ])
                    .args(["--attributes", &format!("rack:{zone}-r{k}")]);
                match spawn(cmd, &name, &logs) {
                    Ok(p) => {
                        agent_rows.push((
                            name,
                            ip,
                            region.name.clone(),
                            zone.clone(),
                            p.child.id(),
                        ));
                        procs.push(p);
                    }
                    Err(e) => return fail(&mut procs, &e, &data_dir, temporary).await,
                }
            }
        }
    }
    let want = n as usize;
    let registered = wait_for(
        &client,
        &masters[0].1,
        "/v1/nodes",
        Duration::from_secs(60),
        |v| {
            v.get("nodes")
                .and_then(Value::as_array)
                .is_some_and(|nodes| {
                    nodes
                        .iter()
                        .filter(|n| n["type"] == "agent" && n["state"] == "active")
                        .count()
                        >= want
                })
        },
    )
    .await;
    if registered.is_none() {
        let e = format!(
            "not every agent registered within 60 s; see the logs in {}",
            logs.display()
        );
        return fail(&mut procs, &e, &data_dir, temporary).await;
    }

    let ui = format!("http://{}", masters[0].1);
    println!(
        "\ndrover dev is running: {} master(s), {n} agents in {} regions.\n",
        masters.len(),
        topology.region.len()
    );
    for (i, addr) in &masters {
        println!(
            "  master-{i}  http://{addr}  (pid {})",
            procs[usize::from(*i) - 1].child.id().unwrap_or(0)
        );
    }
    for (name, ip, region, zone, pid) in &agent_rows {
        let local_mark = if *region == local { " (local)" } else { "" };
        println!(
            "  {name:<24} {ip:<12} {region}{local_mark} / {zone}  (pid {})",
            pid.unwrap_or(0)
        );
    }
    println!("\nUI:   {ui}");
    println!("Logs: {}\n", logs.display());
    println!("Try:");
    println!("  drover node list --master {}", masters[0].1);
    println!("  curl -s -XPOST {ui}/v2/apps -d @examples/apps/balanced-zones.json");
    println!(
        "  drover plan --nodes examples/nodes/seed-3-regions.json examples/apps/balanced-zones.json"
    );
    println!(
        "\nKill an agent (kill -9 <pid>) and watch its instances come back elsewhere; start it again with"
    );
    println!("  sh {}/<agent>.restart.sh", logs.display());
    println!("Ctrl-C stops everything.");

    supervise(&mut procs).await;
    println!("\nStopping …");
    stop_all(&mut procs).await;
    kill_tasks(&data_dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    ExitCode::SUCCESS
}

fn spawn(cmd: Command, name: &str, logs: &Path) -> Result<Process, String> {
    let std_cmd = cmd.as_std();
    let command = (
        PathBuf::from(std_cmd.get_program()),
        std_cmd.get_args().map(|a| a.to_os_string()).collect(),
    );
    let restart_marker = logs.join(format!("{name}.restart"));
    // Asking drover dev (not the shell) to start it again keeps it supervised: Ctrl-C
    // stops it like the rest.
    let script = logs.join(format!("{name}.restart.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n# Asks drover dev to start {name} again (after you killed it).\ntouch '{}'\n",
            restart_marker.display()
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    start(name, command, restart_marker, logs, false)
}

fn start(
    name: &str,
    command: (PathBuf, Vec<std::ffi::OsString>),
    restart_marker: PathBuf,
    logs: &Path,
    append: bool,
) -> Result<Process, String> {
    let log = logs.join(format!("{name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(&log)
        .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let child = Command::new(&command.0)
        .args(&command.1)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    Ok(Process {
        name: name.to_string(),
        child,
        log,
        exited: false,
        command,
        restart_marker,
    })
}

async fn wait_for(
    client: &PeerClient,
    addr: &str,
    path: &str,
    within: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if let Some(v) = client.get_json(addr, path, Duration::from_secs(2)).await
            && ready(&v)
        {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Waits for Ctrl-C, reporting children that exit meanwhile (a killed agent is part of the
/// fun, not a reason to stop).
async fn supervise(procs: &mut [Process]) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return,
            Some(()) = async { match term.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => return,
            Some(()) = async { match hangup.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => return,
            _ = tick.tick() => {
                for p in procs.iter_mut() {
                    if !p.exited
                        && let Ok(Some(status)) = p.child.try_wait()
                    {
                        p.exited = true;
                        println!("{} exited ({status}); its log: {}", p.name, p.log.display());
                    }
                    if p.restart_marker.exists() {
                        let _ = std::fs::remove_file(&p.restart_marker);
                        if !p.exited {
                            println!("{} is still running; kill it first", p.name);
                            continue;
                        }
                        let logs = p.log.parent().map(Path::to_path_buf).unwrap_or_default();
                        match start(&p.name, p.command.clone(), p.restart_marker.clone(), &logs, true) {
                            Ok(again) => {
                                println!("{} started again (pid {})", p.name, again.child.id().unwrap_or(0));
                                *p = again;
                            }
                            Err(e) => println!("cannot start {} again: {e}", p.name),
                        }
                    }
                }
            }
        }
    }
}

async fn stop_all(procs: &mut [Process]) {
    for p in procs.iter_mut().filter(|p| !p.exited) {
        if let Some(pid) = p.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    for p in procs.iter_mut().filter(|p| !p.exited) {
        if tokio::time::timeout_at(deadline, p.child.wait())
            .await
            .is_err()
        {
            let _ = p.child.kill().await;
        }
    }
}

/// Agents leave their tasks running when they stop (so tasks survive agent restarts); a dev
/// cluster going away takes its tasks with it. Each task leads its own process group, whose
/// id is the pid the agent checkpointed.
fn kill_tasks(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for tasks_dir in entries
        .flatten()
        .map(|e| e.path().join("tasks"))
        .filter(|p| p.is_dir())
    {
        let Ok(checkpoints) = Checkpoints::new(tasks_dir).load_all() else {
            continue;
        };
        for process in checkpoints
            .into_iter()
            .flatten()
            .filter_map(|cp| cp.process)
        {
            let pgid = i32::try_from(process.pid).ok().filter(|p| *p > 1);
            if let Some(pgid) = pgid
                && procfs::is_running(process)
            {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
        }
    }
}

async fn fail(procs: &mut [Process], message: &str, data_dir: &Path, temporary: bool) -> ExitCode {
    eprintln!("error: {message}");
    for p in procs.iter() {
        if let Ok(text) = std::fs::read_to_string(&p.log) {
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            if !tail.is_empty() {
                eprintln!("--- last lines of {}:", p.log.display());
                for line in tail.iter().rev() {
                    eprintln!("    {line}");
                }
            }
        }
    }
    stop_all(procs).await;
    kill_tasks(data_dir);
    if temporary {
        let _ = std::fs::remove_dir_all(data_dir);
    }
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(s: &str) -> std::net::SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ports_past_65535_or_port_0_are_refused_before_anything_starts() {
        let e = plan_ports(listen("127.0.0.1:65535"), 3, 12).unwrap_err();
        assert!(
            e.contains("--listen") && e.contains("65537") && e.contains("65533"),
            "{e}"
        );
        let e = plan_ports(listen("127.0.0.1:0"), 1, 12).unwrap_err();
        assert!(e.contains("--listen") && e.contains("fixed port"), "{e}");
        let p = plan_ports(listen("127.0.0.1:65533"), 3, 0).unwrap();
        assert_eq!(p.masters.last().unwrap().1, "127.0.0.1:65535");
    }

    #[test]
    fn agents_get_their_own_addresses_and_ports_within_range() {
        let p = plan_ports(listen("127.0.0.1:8080"), 3, 12).unwrap();
        assert_eq!(
            p.masters,
            [
                (1, "127.0.0.1:8080".to_string()),
                (2, "127.0.0.1:8081".to_string()),
                (3, "127.0.0.1:8082".to_string())
            ]
        );
        assert_eq!(p.agents[0], ("127.0.1.1".to_string(), 31000, 31099));
        assert_eq!(p.agents[11], ("127.0.1.12".to_string(), 32100, 32199));
        let most = plan_ports(listen("127.0.0.1:8080"), 1, MAX_AGENTS).unwrap();
        assert_eq!(most.agents.len(), 254);
        let e = plan_ports(listen("127.0.0.1:8080"), 1, MAX_AGENTS + 1).unwrap_err();
        assert!(e.contains("255 agents") && e.contains("254"), "{e}");
    }

    #[test]
    fn masters_inside_the_agents_task_ports_are_refused() {
        let e = plan_ports(listen("127.0.0.1:31050"), 1, 12).unwrap_err();
        assert!(e.contains("31000") && e.contains("32199"), "{e}");
        let e = plan_ports(listen("127.0.0.1:30999"), 3, 12).unwrap_err();
        assert!(e.contains("overlap"), "{e}");
        plan_ports(listen("127.0.0.1:32200"), 3, 12).unwrap();
        plan_ports(listen("127.0.0.1:30997"), 3, 12).unwrap();
    }

    #[test]
    fn a_huge_topology_counts_without_overflow() {
        let t = Topology {
            region: vec![RegionSpec {
                name: "r".into(),
                zones: vec!["a".into(), "b".into()],
                agents_per_zone: u32::MAX,
            }],
        };
        assert_eq!(t.agent_count(), 2 * u64::from(u32::MAX));
    }
}
