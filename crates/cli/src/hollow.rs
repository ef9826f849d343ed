//! `drover hollow-agents N`: N simulated agents in one process, for scale tests and
//! benchmarks (Kubernetes' kubemark "hollow nodes" are the model).
//!
//! Each hollow agent is the real agent (`agent::run`): its own id and work dir, hostname,
//! address label, fault domain and resources, registering, heartbeating, long-polling and
//! reporting over real HTTP to real masters. Only its tasks are fake: one
//! [`FakeExecutor`] runs every agent's tasks as table entries, which end when the control
//! endpoint says so. Checkpoints stay in memory and no sandbox is made
//! ([`agent::TaskState::InMemory`]); all agents share one connection pool.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::client::MasterPool;
use agent::executor::FakeExecutor;
use agent::{AgentConfig, Retention, TaskExecution, TaskState, Timings};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use clap::Args;
use client::{Node, Nodes};
use domain::{FaultDomain, Resources};
use master::peer::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::Instrument;

use crate::cluster::MasterFlag;

/// Most hollow agents one process runs.
const MAX_AGENTS: u32 = 10_000;

/// Most zones per region (named `<region>-a` … `<region>-z`).
const MAX_ZONES: u8 = 26;

/// How long the tool waits for the masters to say which zones their region has.
const ZONES_WAIT: Duration = Duration::from_secs(30);

/// Arguments of `drover hollow-agents`.
#[derive(Args)]
#[command(after_help = "\
A benchmark and test tool, not for production: it runs N agents in one process, each with its
own id, hostname (<prefix>-1 … <prefix>-N), address label (--first-ip counting up), fault
domain and resources. They speak the real agent protocol over HTTP to the masters, so the
masters cannot tell them from real agents, but their tasks are fake: a task starts, reports
running and runs, without a process, a sandbox or a checkpoint on disk, until it is told to
end through the control endpoint:

  GET  /tasks                                the running fake tasks (instance ids)
  POST /tasks/<instance>/exit?code=N         the task exits with code N (0: finished,
                                             otherwise failed, and the master replaces it)
  POST /tasks/<instance>/fail                the task exits with code 1
  GET  /agents                               the agents: hostname, ip, zone, running, tasks
  POST /agents/<hostname>/crash              that agent's machine dies: the agent stops
                                             without a word and its tasks die with it
  POST /agents/crash?zone=Z                  every agent of zone Z dies at once

A task also ends when the master kills it. Fake tasks serve no ports: apps with HTTP, TCP or
COMMAND health checks become unhealthy. Stopping the tool (Ctrl-C, SIGTERM) stops every agent
and ends every fake task with it: the masters see the agents go unreachable, as after a crash
of N machines.

Fault domains: agent K is in the K-th domain of the list, round-robin. The list is the zones of
--regions, --zones per region, named <region>-a, <region>-b, … (like drover dev); without
--regions, the local region (the masters') with --zones zones, or without either flag the
zones the local region's masters and agents are in.

Each agent keeps its id and leader-term fence in --work-dir/<hostname>, so a restarted tool
registers the same agents again. Each agent holds a file descriptor for its work dir's lock
and a connection or two to the masters: allow about 3 × N open files (ulimit -n).

Exit codes: 0 after Ctrl-C or SIGTERM; 1 when an agent stopped early (refused by the masters,
e.g. a duplicate IP, or an unusable work dir) or the control endpoint cannot be bound; 2 on
bad flags, or when no fault domains could be told (give --regions).

Examples:
  drover hollow-agents 30 --masters 127.0.0.1:8080 --work-dir /tmp/hollow \\
    --regions local,aws-us-east2 --zones 2
  curl -X POST 'http://127.0.0.1:5050/tasks/web.instance-1f2e…/exit?code=3'
  drover hollow-agents 1000 --masters 10.0.1.10:8080,10.0.2.10:8080,10.0.3.10:8080 \\
    --work-dir /var/tmp/hollow --resources 'cpus:64;mem:65536;ports:[31000-32000]'")]
pub struct HollowArgs {
    /// How many agents to run, 1 to 10000.
    #[arg(value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_AGENTS)))]
    count: u32,
    /// Masters to register with: HOST:PORT,… (any of them will do).
    #[arg(long, value_name = "HOST:PORT,…")]
    masters: String,
    /// Directory for the agents' ids, one subdirectory per agent; keep it to reuse them.
    #[arg(long, value_name = "DIR")]
    work_dir: PathBuf,
    /// Regions to spread the agents over: NAME,NAME,… [default: the masters' region].
    #[arg(long, value_name = "NAME,…")]
    regions: Option<String>,
    /// Zones per region, 1 to 26, named <region>-a, <region>-b, … [default: 4 with
    /// --regions; else the zones the local region's masters and agents are in].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_ZONES)))]
    zones: Option<u8>,
    /// Resources each agent offers: "cpus:4;mem:8192;disk:10000;ports:[31000-32000]".
    #[arg(
        long,
        value_name = "SPEC",
        default_value = "cpus:4;mem:8192;disk:10000;ports:[31000-32000]"
    )]
    resources: String,
    /// Attributes of every agent, for constraints: "rack:r1;ssd:true".
    #[arg(long, value_name = "SPEC")]
    attributes: Option<String>,
    /// Agents are named <PREFIX>-1 … <PREFIX>-N; give two fleets of one cluster different
    /// prefixes.
    #[arg(long, value_name = "PREFIX", default_value = "hollow")]
    hostname_prefix: String,
    /// The first agent's IP label; the others count up from it. Masters never connect to
    /// it, but it must be unique among live agents (two fleets need distinct ranges).
    #[arg(long, value_name = "IP", default_value = "127.3.0.1")]
    first_ip: Ipv4Addr,
    /// Where to serve the control endpoint for the fake tasks (port 0: any free port; the
    /// address is printed).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5050")]
    control: SocketAddr,
    /// Give every agent its own connections to the masters, as agent processes have,
    /// instead of one pool shared by the fleet (to compare what each costs the masters).
    #[arg(long)]
    connections_per_agent: bool,
    /// Run the fleet without TLS to the masters and without a join token (as `drover agent
    /// --insecure`).
    #[arg(long)]
    insecure: bool,
    /// Heartbeat interval, 50 to 60000 [default: what the leader asks for, 1000 ms].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(50..=60_000))]
    heartbeat_interval_ms: Option<u64>,
}

/// One hollow agent's identity.
#[derive(Debug, Clone, PartialEq)]
struct Identity {
    hostname: String,
    ip: Ipv4Addr,
    domain: FaultDomain,
}

/// The zones of `regions`, `zones` each, named like `drover dev` names them.
fn domains_of(regions: &[String], zones: u8) -> Vec<FaultDomain> {
    regions
        .iter()
        .flat_map(|r| {
            (0..zones)
                .map(move |z| FaultDomain::new(r.as_str(), format!("{r}-{}", (b'a' + z) as char)))
        })
        .collect()
}

/// Parses `--regions`: names, comma-separated, none empty, none twice.
fn parse_regions(text: &str) -> Result<Vec<String>, String> {
    let regions: Vec<String> = text.split(',').map(|r| r.trim().to_string()).collect();
    if regions.iter().any(String::is_empty) {
        return Err(format!(
            "--regions `{text}`: give region names separated by commas, e.g. local,aws-us-east2"
        ));
    }
    for (i, r) in regions.iter().enumerate() {
        if regions[..i].contains(r) {
            return Err(format!("--regions `{text}` names region `{r}` twice"));
        }
    }
    Ok(regions)
}

/// The zones the local region's masters and agents are in, sorted.
fn local_domains(nodes: &Nodes) -> Vec<FaultDomain> {
    let region = nodes.local_region.as_str();
    let mut zones: Vec<&str> = nodes
        .nodes
        .iter()
        .filter_map(|n| match n {
            Node::Master(m) if m.region.as_deref() == Some(region) => m.zone.as_deref(),
            Node::Agent(a) if a.region == region => a.zone.as_deref(),
            _ => None,
        })
        .collect();
    zones.sort_unstable();
    zones.dedup();
    zones
        .into_iter()
        .map(|z| FaultDomain::new(region, z))
        .collect()
}

/// Asks the masters for `/v1/nodes` until `ready` accepts the answer or the wait is over.
fn ask_masters<T>(masters: &[String], ready: impl Fn(&Nodes) -> Option<T>) -> Result<T, String> {
    let flag = MasterFlag {
        master: Some(masters.join(",")),
        // A cluster with ACLs on needs a read token for /v1/nodes, and its CA for HTTPS.
        token: std::env::var("DROVER_TOKEN").ok(),
        ca_file: std::env::var_os("DROVER_CA_FILE").map(Into::into),
    };
    let deadline = Instant::now() + ZONES_WAIT;
    loop {
        let last = match crate::output::fetch::<Nodes>(&flag, Method::GET, "/v1/nodes", None) {
            Ok(nodes) => match ready(&nodes) {
                Some(t) => return Ok(t),
                None => format!(
                    "the masters know no zone in their region `{}` yet",
                    nodes.local_region
                ),
            },
            Err(e) => e.0,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "cannot tell which fault domains to use ({last}); give --regions and --zones"
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The fault domains the agents are spread over, from the flags or the masters.
fn fault_domains(args: &HollowArgs, masters: &[String]) -> Result<Vec<FaultDomain>, String> {
    match (&args.regions, args.zones) {
        (Some(text), zones) => Ok(domains_of(&parse_regions(text)?, zones.unwrap_or(4))),
        (None, Some(zones)) => ask_masters(masters, |n| {
            Some(domains_of(std::slice::from_ref(&n.local_region), zones))
        }),
        (None, None) => ask_masters(masters, |n| {
            let found = local_domains(n);
            (!found.is_empty()).then_some(found)
        }),
    }
}

/// Names, addresses and domains of `count` agents: domains round-robin.
fn identities(
    count: u32,
    prefix: &str,
    first_ip: Ipv4Addr,
    domains: &[FaultDomain],
) -> Result<Vec<Identity>, String> {
    let first = u32::from(first_ip);
    (0..count)
        .map(|k| {
            let ip = first.checked_add(k).map(Ipv4Addr::from).ok_or_else(|| {
                format!("--first-ip {first_ip}: {count} addresses counting up from it pass 255.255.255.255; give a lower one")
            })?;
            let domain = domains[k as usize % domains.len()].clone();
            Ok(Identity {
                hostname: format!("{prefix}-{}", k + 1),
                ip,
                domain,
            })
        })
        .collect()
}

/// Checks `--hostname-prefix`: it names directories and hosts.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 50
        && prefix.starts_with(|c: char| c.is_ascii_alphanumeric())
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--hostname-prefix `{prefix}`: use 1 to 50 letters, digits and `-`, starting with a letter or digit"
        ))
    }
}

/// Runs `drover hollow-agents`.
pub fn run(args: HollowArgs) -> ExitCode {
    let fail = |code: u8, msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(code)
    };
    let masters = match agent::parse_masters(&args.masters) {
        Ok(m) => m,
        Err(e) => return fail(2, e),
    };
    if let Err(e) = check_prefix(&args.hostname_prefix) {
        return fail(2, e);
    }
    let resources = match Resources::parse(&args.resources) {
        Ok(r) => r,
        Err(e) => return fail(2, format!("--resources: {e}")),
    };
    let attributes = match &args.attributes {
        Some(text) => match domain::attributes::parse_attributes(text) {
            Ok(a) => a,
            Err(e) => return fail(2, format!("--attributes: {e}")),
        },
        None => Default::default(),
    };
    // Asked before the runtime starts: the CLI's cluster calls run their own.
    let domains = match fault_domains(&args, &masters) {
        Ok(d) => d,
        Err(e) => return fail(2, e),
    };
    let fleet = match identities(args.count, &args.hostname_prefix, args.first_ip, &domains) {
        Ok(f) => f,
        Err(e) => return fail(2, e),
    };
    let runtime = match crate::async_runtime() {
        Ok(r) => r,
        Err(e) => return fail(1, e),
    };
    let signals = {
        let _runtime = runtime.enter();
        match agent::StopSignals::install() {
            Ok(s) => s,
            Err(e) => return fail(1, format!("cannot install the signal handlers: {e}")),
        }
    };
    crate::logging::init_quiet_agents();
    let timings = Timings::default();
    let pool = MasterPool::new(state::transport::Connector::tcp(Some(
        timings.request_timeout,
    )));
    // One executor per agent, so a crashed agent's tasks can die with it.
    let fakes: Vec<FakeExecutor> = fleet.iter().map(|_| FakeExecutor::new()).collect();
    let configs: Vec<AgentConfig> = fleet
        .iter()
        .zip(&fakes)
        .map(|(id, fake)| AgentConfig {
            masters: masters.clone(),
            work_dir: args.work_dir.join(&id.hostname),
            hostname: id.hostname.clone(),
            ip: id.ip.to_string(),
            domain: Some(id.domain.clone()),
            resources: resources.clone(),
            attributes: attributes.clone(),
            listen: None,
            heartbeat_interval: args.heartbeat_interval_ms.map(Duration::from_millis),
            sandbox_retention: Retention::default(),
            timings: timings.clone(),
            tasks: TaskExecution::Only(Arc::new(fake.clone())),
            connector: None,
            tasks_on_exit: Default::default(),
            task_state: TaskState::InMemory,
            pool: (!args.connections_per_agent).then(|| pool.clone()),
            insecure: args.insecure,
        })
        .collect();
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.control).await {
            Ok(l) => l,
            Err(e) => {
                return fail(
                    1,
                    format!(
                        "cannot serve the control endpoint on {} ({e}); give --control HOST:PORT, port 0 for any free port",
                        args.control
                    ),
                );
            }
        };
        let control = listener.local_addr().unwrap_or(args.control);
        let members: Vec<Member> = fleet
            .iter()
            .zip(fakes)
            .map(|(identity, tasks)| Member {
                identity: identity.clone(),
                tasks,
                life: watch::Sender::new(Life::Running),
            })
            .collect();
        let members = Arc::new(members);
        let server = {
            let members = Arc::clone(&members);
            tokio::spawn(async move {
                let _ = axum::serve(listener, control_api(members)).await;
            })
        };
        let mut agents = tokio::task::JoinSet::new();
        for (config, member) in configs.into_iter().zip(members.iter()) {
            let mut life = member.life.subscribe();
            let tasks = member.tasks.clone();
            let span = tracing::info_span!("agent", host = %config.hostname);
            let host = config.hostname.clone();
            let shutdown = async move {
                let _ = life.wait_for(|l| *l != Life::Running).await;
            };
            let mut crashed = member.life.subscribe();
            agents.spawn(
                async move {
                    let ended = agent::run(config, shutdown).await;
                    // The machine is gone: its tasks die with it, unreported.
                    if *crashed.borrow_and_update() == Life::Crashed {
                        for id in tasks.running() {
                            tasks.crash(&id, SIGKILL);
                        }
                    }
                    (host, ended)
                }
                .instrument(span),
            );
        }
        println!(
            "{} hollow agents running against {}; domains {}",
            args.count,
            masters.join(","),
            domains
                .iter()
                .map(|d| format!("{}/{}", d.region, d.zone))
                .collect::<Vec<_>>()
                .join(",")
        );
        println!("control endpoint: http://{control}");
        let mut failed = 0usize;
        let waiting = signals.wait();
        tokio::pin!(waiting);
        loop {
            tokio::select! {
                () = &mut waiting => break,
                done = agents.join_next() => match done {
                    // An agent ends by itself only when the masters refuse it (a duplicate
                    // IP, bad fields) or its work dir cannot be used.
                    Some(Ok((host, Err(e)))) => {
                        failed += 1;
                        eprintln!("error: agent {host} stopped: {e}");
                    }
                    Some(_) => {}
                    None => break,
                },
            }
        }
        eprintln!("stopping {} hollow agents and their fake tasks", agents.len());
        for m in members.iter() {
            m.life.send_if_modified(|l| {
                let running = *l == Life::Running;
                if running {
                    *l = Life::Stopped;
                }
                running
            });
        }
        while agents.join_next().await.is_some() {}
        server.abort();
        if failed > 0 {
            fail(
                1,
                format!("{failed} of {} agents stopped early (their errors are above)", args.count),
            )
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// The signal number a crashed machine's fake tasks die of.
const SIGKILL: i32 = 9;

/// Where one hollow agent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Running,
    /// Stopping with the tool: its tasks keep running until the tool ends.
    Stopped,
    /// Its machine died (`POST /agents/…/crash`): it stops without a word to the masters
    /// and its tasks die with it.
    Crashed,
}

/// One hollow agent, as the control endpoint sees it.
struct Member {
    identity: Identity,
    tasks: FakeExecutor,
    life: watch::Sender<Life>,
}

/// The fleet the control endpoint commands.
type Members = Arc<Vec<Member>>;

/// The control endpoint's routes over the fleet and its fake tasks.
fn control_api(members: Members) -> axum::Router {
    axum::Router::new()
        .route("/tasks", get(list_tasks))
        .route("/tasks/{instance}/exit", post(exit_task))
        .route("/tasks/{instance}/fail", post(fail_task))
        .route("/agents", get(list_agents))
        .route("/agents/crash", post(crash_zone))
        .route("/agents/{hostname}/crash", post(crash_agent))
        .with_state(members)
}

/// `GET /tasks`: every running fake task of the fleet, sorted.
async fn list_tasks(State(members): State<Members>) -> Json<Value> {
    let mut tasks: Vec<state::InstanceId> =
        members.iter().flat_map(|m| m.tasks.running()).collect();
    tasks.sort();
    Json(json!({ "tasks": tasks }))
}

/// The query of `POST /tasks/{instance}/exit`.
#[derive(Deserialize)]
struct ExitQuery {
    code: i32,
}

/// `POST /tasks/{instance}/exit?code=N`.
async fn exit_task(
    State(members): State<Members>,
    Path(instance): Path<String>,
    Query(q): Query<ExitQuery>,
) -> (StatusCode, Json<Value>) {
    end_task(&members, instance, q.code)
}

/// `POST /tasks/{instance}/fail`: exit code 1.
async fn fail_task(
    State(members): State<Members>,
    Path(instance): Path<String>,
) -> (StatusCode, Json<Value>) {
    end_task(&members, instance, 1)
}

fn end_task(members: &[Member], instance: String, code: i32) -> (StatusCode, Json<Value>) {
    let id = state::InstanceId(instance);
    if members.iter().any(|m| m.tasks.exit(&id, code)) {
        (
            StatusCode::OK,
            Json(json!({ "instance": id, "exit_code": code })),
        )
    } else {
        not_found(format!(
            "no fake task {id} runs here; GET /tasks lists the running ones"
        ))
    }
}

fn not_found(message: String) -> (StatusCode, Json<Value>) {
    (StatusCode::NOT_FOUND, Json(json!({ "message": message })))
}

/// `GET /agents`: each agent's hostname, IP label, zone and whether it runs.
async fn list_agents(State(members): State<Members>) -> Json<Value> {
    let agents: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "hostname": m.identity.hostname,
                "ip": m.identity.ip.to_string(),
                "region": m.identity.domain.region,
                "zone": m.identity.domain.zone,
                "running": *m.life.borrow() == Life::Running,
                "tasks": m.tasks.running().len(),
            })
        })
        .collect();
    Json(json!({ "agents": agents }))
}

/// Crashes `m` unless it already stopped; true when it was running.
fn crash(m: &Member) -> bool {
    m.life.send_if_modified(|l| {
        let running = *l == Life::Running;
        if running {
            *l = Life::Crashed;
        }
        running
    })
}

/// `POST /agents/{hostname}/crash`: the agent's machine dies.
async fn crash_agent(
    State(members): State<Members>,
    Path(hostname): Path<String>,
) -> (StatusCode, Json<Value>) {
    match members.iter().find(|m| m.identity.hostname == hostname) {
        Some(m) => {
            let crashed = crash(m);
            (
                StatusCode::OK,
                Json(json!({ "crashed": if crashed { vec![hostname] } else { vec![] } })),
            )
        }
        None => not_found(format!(
            "no hollow agent {hostname} here; GET /agents lists them"
        )),
    }
}

/// The query of `POST /agents/crash`.
#[derive(Deserialize)]
struct ZoneQuery {
    zone: String,
}

/// `POST /agents/crash?zone=Z`: every running agent of zone `Z` dies at once.
async fn crash_zone(
    State(members): State<Members>,
    Query(q): Query<ZoneQuery>,
) -> (StatusCode, Json<Value>) {
    let in_zone: Vec<&Member> = members
        .iter()
        .filter(|m| m.identity.domain.zone == q.zone)
        .collect();
    if in_zone.is_empty() {
        return not_found(format!(
            "no hollow agent here is in zone {}; GET /agents lists their zones",
            q.zone
        ));
    }
    let crashed: Vec<&str> = in_zone
        .into_iter()
        .filter(|m| crash(m))
        .map(|m| m.identity.hostname.as_str())
        .collect();
    (StatusCode::OK, Json(json!({ "crashed": crashed })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_spread_round_robin_over_every_zone_of_every_region() {
        let domains = domains_of(&["local".into(), "east".into()], 2);
        let names: Vec<String> = domains
            .iter()
            .map(|d| format!("{}/{}", d.region, d.zone))
            .collect();
        assert_eq!(
            names,
            [
                "local/local-a",
                "local/local-b",
                "east/east-a",
                "east/east-b"
            ]
        );
        let fleet = identities(6, "h", Ipv4Addr::new(127, 3, 0, 254), &domains).unwrap();
        let got: Vec<(String, String, String)> = fleet
            .iter()
            .map(|i| (i.hostname.clone(), i.ip.to_string(), i.domain.zone.clone()))
            .collect();
        assert_eq!(
            got[0],
            ("h-1".into(), "127.3.0.254".into(), "local-a".into())
        );
        assert_eq!(got[2], ("h-3".into(), "127.3.1.0".into(), "east-a".into()));
        assert_eq!(got[4], ("h-5".into(), "127.3.1.2".into(), "local-a".into()));
    }

    #[test]
    fn bad_fleet_flags_say_what_to_give() {
        let e = identities(
            3,
            "h",
            Ipv4Addr::new(255, 255, 255, 254),
            &domains_of(&["r".into()], 1),
        )
        .unwrap_err();
        assert!(e.contains("--first-ip") && e.contains("lower"), "{e}");
        for bad in ["", "a,,b", " ,b"] {
            let e = parse_regions(bad).unwrap_err();
            assert!(
                e.contains("--regions") && e.contains("commas"),
                "{bad}: {e}"
            );
        }
        assert!(parse_regions("a,b,a").unwrap_err().contains("twice"));
        for bad in ["", "-x", "a/b", "a b"] {
            let e = check_prefix(bad).unwrap_err();
            assert!(e.contains("--hostname-prefix"), "{bad}: {e}");
        }
        assert!(check_prefix("hollow-east").is_ok());
    }
}
