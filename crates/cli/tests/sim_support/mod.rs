//! One seeded run of the whole cluster on turmoil: masters with their real Raft and state
//! machine on simulated disks, agents on fake executors, writers through the Marathon API,
//! and the seed's fault schedule; then heal, wait for the cluster to settle, and check.
//!
//! Everything runs in this thread, in simulated time: turmoil steps each host's runtime
//! by one millisecond in turn. What the run checks is in [`checks`] and `docs/testing.md`.

pub mod checks;
pub mod client;
mod faults;
pub mod lifecycle;
pub mod net;
pub mod plan;
mod settle;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use agent::executor::FakeExecutor;
use agent::{AgentConfig, TaskExecution, Timings};
use domain::{AgentId, FaultDomain, Resources};
use master::peer::{Method, PeerClient};
use master::{MasterConfig, Seams, Store};
use state::MemDisk;

use crate::common::history::{Observed, check, version_key};
use client::Record;
use faults::{Undo, apply, leader_of, perform};
use plan::{Fault, HEAL_AT, Plan, Rng};
use settle::{finish, settled, unsettled};

/// The port every master serves on.
const PORT: u16 = 5050;
/// After healing, the cluster must settle within this much simulated time.
pub const SETTLE: Duration = Duration::from_secs(60);
/// One step of simulated time: every host runs this much at a time. Finer ticks cost run
/// time in proportion and found nothing more in the seeds tried (docs/testing.md).
const TICK: Duration = Duration::from_millis(5);
/// Every link's latency outside latency faults: from this…
const MIN_LATENCY: Duration = Duration::from_micros(200);
/// …to this.
const MAX_LATENCY: Duration = Duration::from_millis(2);
/// How long a torn crash may wait for its leader to have an unsynced append.
const TORN_WAIT: Duration = Duration::from_secs(2);
/// How often (simulated) the invariants are checked during the run.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// What a run that kept every invariant leaves.
#[derive(Debug)]
pub struct Finished {
    /// A hash of the trace: every API answer, every fault applied, and the final instances.
    pub trace_hash: u64,
    /// The trace: every API answer, every fault applied and undone, every committed log
    /// entry, and the final instances, each with its simulated time.
    pub trace: Vec<String>,
    /// Simulated time the run took.
    pub simulated: Duration,
    /// Writes acknowledged.
    pub acknowledged: usize,
    /// Apps at the end, and their instances running.
    pub apps: usize,
    /// Instances running at the end.
    pub running: usize,
}

/// A run that broke an invariant (or could not run): what, and the plan to replay it.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// The layout and the fault schedule.
    pub plan: String,
    /// The last lines of the trace.
    pub trace_tail: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.message)?;
        writeln!(f, "{}", self.plan)?;
        writeln!(f, "last trace lines:")?;
        for l in &self.trace_tail {
            writeln!(f, "  {l}")?;
        }
        Ok(())
    }
}

/// The simulation's view of one agent: its spec and each incarnation's tasks.
struct AgentSlot {
    ip: IpAddr,
    incarnations: Vec<FakeExecutor>,
}

/// What the run can see of the cluster from outside, shared with the hosts' software.
#[derive(Default)]
struct Shared {
    agents: Vec<AgentSlot>,
}

/// Runs `seed` to its end.
pub fn run(seed: u64) -> Result<Finished, Failure> {
    run_planned(Plan::new(seed))
}

/// Runs `plan` (a seed's, perhaps changed) to its end.
pub fn run_planned(plan: Plan) -> Result<Finished, Failure> {
    let seed = plan.seed;
    let record = Rc::new(RefCell::new(Record::default()));
    let result = run_plan(&plan, record.clone());
    let r = record.borrow();
    // DROVER_SIM_TRACE=PREFIX writes each run's trace to PREFIX.SEED.N, to diff two runs.
    if let Ok(prefix) = std::env::var("DROVER_SIM_TRACE") {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = std::fs::write(format!("{prefix}.{seed}.{n}"), r.trace.join("\n"));
    }
    match result {
        Ok(mut finished) => {
            let mut h = DefaultHasher::new();
            r.trace.hash(&mut h);
            finished.trace = r.trace.clone();
            finished.trace_hash = h.finish();
            Ok(finished)
        }
        Err(message) => Err(Failure {
            message,
            plan: plan.describe(),
            trace_tail: r.trace.iter().rev().take(30).rev().cloned().collect(),
        }),
    }
}

fn master_ip(i: usize) -> IpAddr {
    // turmoil numbers hosts in the order they are added: the masters first.
    IpAddr::V4(Ipv4Addr::new(192, 168, 0, (i + 1) as u8))
}

fn master_config(id: u64, masters: &BTreeMap<u64, String>) -> MasterConfig {
    MasterConfig {
        id,
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT),
        masters: masters.clone(),
        data_dir: PathBuf::from(format!("/nonexistent/sim/master-{id}")),
        domain: FaultDomain::new(plan::LOCAL_REGION, plan::LOCAL_ZONES[(id as usize - 1) % 3]),
        heartbeat: Duration::from_millis(100),
        election_timeout_min: Duration::from_millis(600),
        election_timeout_max: Duration::from_millis(1200),
        exit_on_leadership_loss: false,
        leader_wait: Duration::from_secs(3),
        write_timeout: Duration::from_secs(5),
        agent_heartbeat: Duration::from_millis(500),
        agent_unreachable_after: Duration::from_secs(5),
        agent_reregistration_grace: Duration::from_secs(5),
        eviction_threshold: 0.55,
        eviction_interval: Duration::from_secs(10),
        insecure: true,
        callbacks: Default::default(),
        membership: Default::default(),
    }
}

fn agent_config(
    spec: &plan::AgentSpec,
    ip: IpAddr,
    masters: &[String],
    work_dir: PathBuf,
    tasks: &FakeExecutor,
) -> AgentConfig {
    AgentConfig {
        masters: masters.to_vec(),
        work_dir,
        hostname: format!("{}.sim", spec.name),
        ip: ip.to_string(),
        domain: Some(FaultDomain::new(spec.region, spec.zone)),
        // Room on one agent for every instance the writers can ask for (4 apps of at most 4
        // instances of 0.5 cpus), so that every app fits even in the one-agent remote region.
        resources: Resources::parse("cpus:8;mem:8192;disk:1000;ports:[31000-31099]")
            .expect("valid resources"),
        attributes: Default::default(),
        listen: None,
        heartbeat_interval: Some(Duration::from_millis(500)),
        sandbox_retention: agent::Retention::default(),
        timings: Timings {
            long_poll: Duration::from_secs(5),
            request_timeout: Duration::from_secs(3),
            status_batch: Duration::from_millis(20),
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_secs(1),
        },
        tasks: TaskExecution::Only(Arc::new(tasks.clone())),
        tasks_on_exit: Default::default(),
        task_state: agent::TaskState::InMemory,
        pool: None,
        insecure: true,
        connector: Some(net::internal_connector()),
    }
}

/// Whether fault `s` is due at `t`. A torn crash waits (up to [`TORN_WAIT`]) for the leader
/// to have an unsynced append, so that it tears one: at a random instant the leader is
/// often idle.
fn due(
    s: &plan::Scheduled,
    t: Duration,
    disks: &[MemDisk],
    down: &BTreeSet<String>,
    names: &[String],
) -> bool {
    s.at <= t
        && (!matches!(s.fault, Fault::TornCrash { .. })
            || t >= s.at + TORN_WAIT
            || leader_of(disks, down, names).is_some_and(|l| disks[l].log().unsynced() > 0))
}

fn run_plan(plan: &Plan, record: Rc<RefCell<Record>>) -> Result<Finished, String> {
    state::runtime::seed(plan.seed);
    state::runtime::set_wall_clock(Some(net::wall_clock_ms));
    fastrand::seed(plan.seed);
    net::seed_replays(plan.seed);
    let work = tempfile::tempdir().map_err(|e| format!("a temp dir: {e}"))?;
    let mut sim = turmoil::Builder::new()
        .simulation_duration(HEAL_AT + SETTLE + Duration::from_secs(60))
        .tick_duration(TICK)
        .min_message_latency(MIN_LATENCY)
        .max_message_latency(MAX_LATENCY)
        .rng_seed(plan.seed)
        .build();

    let masters: BTreeMap<u64, String> = (0..plan.masters)
        .map(|i| ((i + 1) as u64, format!("{}:{PORT}", master_ip(i))))
        .collect();
    let master_addrs: Vec<String> = masters.values().cloned().collect();
    let master_names: Vec<String> = (1..=plan.masters).map(|i| format!("m{i}")).collect();
    let disks: Vec<MemDisk> = (0..plan.masters).map(|_| MemDisk::new()).collect();
    if plan
        .faults
        .iter()
        .any(|s| matches!(s.fault, Fault::TornCrash { .. }))
    {
        for d in &disks {
            d.log().set_flush_delay(Some(plan::SLOW_DISK));
        }
    }
    for (i, name) in master_names.iter().enumerate() {
        let config = master_config((i + 1) as u64, &masters);
        let disk = disks[i].clone();
        sim.host(name.as_str(), move || {
            let (config, disk) = (config.clone(), disk.clone());
            async move {
                let _close_in_order = net::CloseInOrder;
                let listener = turmoil::net::TcpListener::bind(config.listen).await?;
                let seams = Seams {
                    connector: net::internal_connector(),
                    clock: Arc::new(net::SimClock),
                    store: Store::Memory(disk),
                };
                let id = config.id;
                let ended = master::run_with(
                    config,
                    seams,
                    net::SimListener(listener),
                    std::future::pending(),
                )
                .await;
                match ended {
                    Ok(reason) => {
                        tracing::warn!(id, ?reason, "master ended");
                        Ok(())
                    }
                    Err(e) => Err(format!("master {id} could not run: {e}").into()),
                }
            }
        });
        if sim.lookup(name.as_str()) != master_ip(i) {
            return Err(format!(
                "turmoil gave {name} another address than {}",
                master_ip(i)
            ));
        }
    }

    let shared = Rc::new(RefCell::new(Shared::default()));
    let mut started_agents = BTreeSet::new();
    let start_agent = |sim: &mut turmoil::Sim<'_>, j: usize, shared: &Rc<RefCell<Shared>>| {
        let spec = plan.agents[j].clone();
        let work_dir = work.path().join(&spec.name);
        let masters = master_addrs.clone();
        let slot = shared.clone();
        let host = spec.name.clone();
        sim.host(host.as_str(), move || {
            // A new incarnation: the tasks of the one before died with it.
            let tasks = FakeExecutor::new();
            slot.borrow_mut().agents[j].incarnations.push(tasks.clone());
            let (spec, masters, work_dir) = (spec.clone(), masters.clone(), work_dir.clone());
            async move {
                let _close_in_order = net::CloseInOrder;
                let ip = turmoil::lookup(spec.name.as_str());
                let config = agent_config(&spec, ip, &masters, work_dir, &tasks);
                agent::run(config, std::future::pending())
                    .await
                    .map_err(|e| format!("agent {} could not run: {e}", spec.name))?;
                Ok(())
            }
        });
        shared.borrow_mut().agents[j].ip = sim.lookup(plan.agents[j].name.as_str());
    };
    for _ in &plan.agents {
        shared.borrow_mut().agents.push(AgentSlot {
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            incarnations: Vec::new(),
        });
    }
    for (j, a) in plan.agents.iter().enumerate() {
        if a.joins_at.is_zero() {
            start_agent(&mut sim, j, &shared);
            started_agents.insert(j);
        }
    }

    // The writers: two, with two apps each; their ops never overlap on one app.
    {
        let record = record.clone();
        let masters = master_addrs.clone();
        let seed = plan.seed;
        sim.client("client", async move {
            let mut writers = Vec::new();
            for w in 0..2u64 {
                let apps = (0..2).map(|a| format!("/sim/w{w}-app{a}")).collect();
                writers.push(tokio::task::spawn_local(client::writer(
                    format!("w{w}"),
                    apps,
                    masters.clone(),
                    HEAL_AT,
                    Rng::new(seed, 100 + w),
                    record.clone(),
                )));
            }
            for w in writers {
                let _ = w.await;
            }
            record.borrow_mut().writers_done = true;
            // Stay alive until the driver has checked the settled cluster.
            std::future::pending::<()>().await;
            Ok(())
        });
    }

    // The driver: apply the schedule, undo faults on time, check invariants every tick.
    let mut faults = plan.faults.iter().peekable();
    let mut undo: Vec<(Duration, Undo)> = Vec::new();
    let mut down: BTreeSet<String> = BTreeSet::new();
    let mut lost: BTreeSet<String> = BTreeSet::new();
    let mut terms = checks::Terms::default();
    let mut history = lifecycle::History::default();
    // Every task seen running, with the agents and incarnations (by index) it was seen on.
    let mut ever_ran: BTreeMap<state::InstanceId, BTreeSet<(usize, usize)>> = BTreeMap::new();
    let mut next_check = CHECK_EVERY;
    let mut healed = false;
    let all_hosts = |plan: &Plan| -> Vec<String> {
        master_names
            .iter()
            .cloned()
            .chain(plan.agents.iter().map(|a| a.name.clone()))
            .chain(["client".to_string()])
            .collect()
    };
    let trace = |line: String| record.borrow_mut().trace.push(line);
    loop {
        sim.step()
            .map_err(|e| format!("the simulation stopped: {e}"))?;
        let t = sim.elapsed();
        // Agents joining.
        for (j, a) in plan.agents.iter().enumerate() {
            if !started_agents.contains(&j) && a.joins_at <= t {
                start_agent(&mut sim, j, &shared);
                started_agents.insert(j);
                trace(format!("{t:?} {} joins", a.name));
            }
        }
        // Faults due.
        while let Some(s) = faults.next_if(|s| due(s, t, &disks, &down, &master_names)) {
            let leader = leader_of(&disks, &down, &master_names);
            trace(format!("{t:?} fault {:?} (leader {leader:?})", s.fault));
            apply(
                &mut sim,
                plan,
                &s.fault,
                t,
                leader,
                &master_names,
                &shared,
                &mut undo,
                &mut down,
                &mut lost,
            );
            if matches!(s.fault, Fault::TornCrash { .. })
                && let Some(l) = leader
            {
                let torn = disks[l].log().tear();
                trace(format!("{t:?} m{} lost {torn} unsynced entries", l + 1));
            }
        }
        // Undos due.
        undo.sort_by_key(|(at, _)| *at);
        while undo.first().is_some_and(|(at, _)| *at <= t) {
            let (_, u) = undo.remove(0);
            trace(format!("{t:?} undo {u:?}"));
            perform(&mut sim, &u, &mut down, &shared);
        }
        // Heal everything at once.
        if !healed && t >= HEAL_AT {
            healed = true;
            trace(format!(
                "{t:?} heal ({} connections replayed)",
                net::replayed()
            ));
            undo.clear();
            let hosts = all_hosts(plan);
            for a in &hosts {
                for b in &hosts {
                    if a < b {
                        sim.repair(a.as_str(), b.as_str());
                        sim.release(a.as_str(), b.as_str());
                    }
                }
            }
            sim.set_max_message_latency(MAX_LATENCY);
            net::set_replay(None);
            for m in &master_names {
                faults::normal_latency(&mut sim, m, &master_names);
            }
            for name in std::mem::take(&mut down) {
                if !lost.contains(&name) {
                    sim.bounce(name.as_str());
                } else {
                    down.insert(name);
                }
            }
        }
        if t >= next_check {
            next_check = t + CHECK_EVERY;
            for (j, slot) in shared.borrow().agents.iter().enumerate() {
                let k = slot.incarnations.len().saturating_sub(1);
                let Some(tasks) = slot.incarnations.last() else {
                    continue;
                };
                for id in tasks.running() {
                    if tasks.starts(&id) > 1 {
                        return Err(format!(
                            "{id} was started {} times on {} (one incarnation)",
                            tasks.starts(&id),
                            plan.agents[j].name
                        ));
                    }
                    ever_ran.entry(id).or_default().insert((j, k));
                }
            }
            for line in history.follow(&disks, t)? {
                trace(format!("{t:?} {line}"));
            }
            for (i, disk) in disks.iter().enumerate() {
                terms.observe((i + 1) as u64, disk)?;
                if let Some(reader) = disk.applied() {
                    reader.read(|a| checks::state_is_sound((i + 1) as u64, &a.state, false))?;
                }
            }
            if healed && record.borrow().writers_done {
                if let Some(done) = settled(&disks, &shared, &lost, plan)? {
                    checks::state_is_sound(0, &done.state, true)?;
                    let finished = finish(&mut sim, &shared, &disks, &record, &ever_ran, done, t)?;
                    state::runtime::set_wall_clock(None);
                    state::runtime::unseed();
                    return Ok(finished);
                }
                if t > HEAL_AT + SETTLE {
                    let why = unsettled(&disks, &shared, &lost);
                    return Err(format!(
                        "the cluster did not settle within {SETTLE:?} of healing: {why}"
                    ));
                }
            }
        }
    }
}
