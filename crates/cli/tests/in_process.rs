//! A whole cluster inside one test process: three masters (`master::run_with`, each over its
//! own loopback listener and temp data dir, peers reached over TCP) and three agents
//! (`agent::run` on fake executors, so no task is a process). The test stops the leader
//! through its shutdown future, as the fault-injection tests will, and checks that the cluster
//! carries on without replacing anything.
//!
//! Waits poll a condition to a deadline; on failure the masters' and agents' logs (captured
//! by the test harness) show what happened.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent::executor::FakeExecutor;
use agent::{AgentConfig, AgentError, TaskExecution, Timings};
use client::{AppEnvelope, ClusterHealth, Node, Nodes, ProcessHealth, Tasks};
use domain::{FaultDomain, Resources};
use master::leadership::ExitReason;
use master::peer::{Method, PeerClient};
use master::{MasterConfig, Seams, StartupError};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The longest any one condition of this test may take to come true.
const DEADLINE: Duration = Duration::from_secs(30);
/// How long one API call may take.
const CALL: Duration = Duration::from_secs(5);
/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(50);

/// A master running in this process.
struct RunningMaster {
    id: u64,
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    ended: JoinHandle<Result<ExitReason, StartupError>>,
}

impl RunningMaster {
    /// Fires its shutdown future and waits for it to end.
    async fn stop(&mut self) -> Result<ExitReason, StartupError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(DEADLINE, &mut self.ended)
            .await
            .expect("the master ends within the deadline once its shutdown future fired")
            .expect("the master's task did not panic")
    }
}

/// An agent running in this process, its tasks on `tasks`.
struct RunningAgent {
    tasks: FakeExecutor,
    stop: Option<oneshot::Sender<()>>,
    ended: JoinHandle<Result<(), AgentError>>,
}

impl RunningAgent {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let ended = tokio::time::timeout(DEADLINE, self.ended).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(())))),
            "the agent stops cleanly: {ended:?}"
        );
    }
}

fn master_config(
    id: u64,
    listen: std::net::SocketAddr,
    masters: &BTreeMap<u64, String>,
    data_dir: &Path,
) -> MasterConfig {
    MasterConfig {
        id,
        listen,
        masters: masters.clone(),
        data_dir: data_dir.join(format!("master-{id}")),
        domain: FaultDomain::new("local", format!("local-{id}")),
        heartbeat: Duration::from_millis(100),
        election_timeout_min: Duration::from_millis(600),
        election_timeout_max: Duration::from_millis(1200),
        exit_on_leadership_loss: false,
        leader_wait: Duration::from_secs(3),
        write_timeout: Duration::from_secs(5),
        agent_heartbeat: Duration::from_millis(200),
        // Long enough for every agent to find the new leader on a loaded machine, short
        // enough that a new leader's wrong idea of its agents would show within the test.
        agent_unreachable_after: Duration::from_secs(3),
        agent_reregistration_grace: Duration::from_secs(3),
        eviction_threshold: 0.55,
        eviction_interval: Duration::from_secs(30),
        insecure: true,
        callbacks: Default::default(),
        membership: Default::default(),
    }
}

/// Three masters on 127.0.0.1, their listeners bound first so `--masters` can name the ports.
async fn start_masters(data_dir: &Path) -> Vec<RunningMaster> {
    let mut listeners = BTreeMap::new();
    for id in 1..=3u64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        listeners.insert(id, listener);
    }
    let masters: BTreeMap<u64, String> = listeners
        .iter()
        .map(|(id, l)| (*id, l.local_addr().expect("bound").to_string()))
        .collect();
    let mut running = Vec::new();
    for (id, listener) in listeners {
        let listen = listener.local_addr().expect("bound");
        let config = master_config(id, listen, &masters, data_dir);
        let (stop, stopped) = oneshot::channel::<()>();
        let ended = tokio::spawn(master::run_with(
            config,
            Seams::system(),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        running.push(RunningMaster {
            id,
            addr: masters[&id].clone(),
            stop: Some(stop),
            ended,
        });
    }
    running
}

fn agent_config(n: u32, masters: &[String], work_dir: &Path, tasks: &FakeExecutor) -> AgentConfig {
    AgentConfig {
        masters: masters.to_vec(),
        work_dir: work_dir.join(format!("agent-{n}")),
        hostname: format!("agent-{n}.local"),
        ip: format!("127.0.0.{n}"),
        domain: Some(FaultDomain::new("local", format!("local-{n}"))),
        resources: Resources::parse("cpus:4;mem:4096;disk:1000;ports:[31000-31100]")
            .expect("valid resources"),
        attributes: Default::default(),
        listen: None,
        heartbeat_interval: Some(Duration::from_millis(200)),
        sandbox_retention: agent::Retention::default(),
        timings: Timings {
            long_poll: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            status_batch: Duration::from_millis(20),
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(200),
        },
        tasks: TaskExecution::Only(Arc::new(tasks.clone())),
        tasks_on_exit: Default::default(),
        task_state: agent::TaskState::InMemory,
        pool: None,
        insecure: true,
        connector: None,
    }
}

fn start_agent(n: u32, masters: &[String], work_dir: &Path) -> RunningAgent {
    let tasks = FakeExecutor::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let ended = tokio::spawn(agent::run(
        agent_config(n, masters, work_dir, &tasks),
        async move {
            let _ = stopped.await;
        },
    ));
    RunningAgent {
        tasks,
        stop: Some(stop),
        ended,
    }
}

/// Polls `probe` until it gives a value, for at most [`DEADLINE`].
async fn eventually<T, F>(what: &str, mut probe: impl FnMut() -> F) -> T
where
    F: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("{what}: not within {DEADLINE:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// `method path` on the master at `addr`, decoded as `T` when it answers `expect`.
async fn call<T: DeserializeOwned>(
    client: &PeerClient,
    method: Method,
    addr: &str,
    path: &str,
    body: Option<&Value>,
    expect: u16,
) -> Result<T, String> {
    let (status, answer) = client
        .call(method.clone(), addr, path, body, CALL)
        .await
        .map_err(|e| e.to_string())?;
    if status.as_u16() != expect {
        return Err(format!("{method} {path} at {addr}: {status} {answer}"));
    }
    serde_json::from_value(answer.clone())
        .map_err(|e| format!("{method} {path} at {addr}: {e} in {answer}"))
}

async fn get<T: DeserializeOwned>(
    client: &PeerClient,
    addr: &str,
    path: &str,
) -> Result<T, String> {
    call(client, Method::GET, addr, path, None, 200).await
}

/// The one master among `among` that says it leads, once the others agree.
async fn leader(client: &PeerClient, among: &[&RunningMaster]) -> Result<u64, String> {
    let mut leaders = BTreeSet::new();
    for m in among {
        let health: ProcessHealth = get(client, &m.addr, "/health").await?;
        if health.role == "leader" {
            leaders.insert(m.id);
        }
        let named = health
            .leader
            .ok_or(format!("master {} knows no leader", m.id))?;
        let id = among
            .iter()
            .find(|o| o.addr == named)
            .map(|o| o.id)
            .ok_or(format!(
                "master {} names {named}, not one of the masters asked",
                m.id
            ))?;
        leaders.insert(id);
    }
    match leaders.into_iter().collect::<Vec<_>>()[..] {
        [one] => Ok(one),
        ref many => Err(format!("the masters name leaders {many:?}")),
    }
}

/// The agents `/v1/nodes` on `addr` lists, by hostname: active, and heard from by this master
/// (it has their round-trip time).
async fn agents_heard(client: &PeerClient, addr: &str) -> Result<BTreeMap<String, bool>, String> {
    let nodes: Nodes = get(client, addr, "/v1/nodes").await?;
    Ok(nodes
        .nodes
        .into_iter()
        .filter_map(|n| match n {
            Node::Agent(a) => Some((
                a.hostname,
                a.state == client::NodeState::Active && a.rtt_ms.is_some(),
            )),
            Node::Master(_) => None,
        })
        .collect())
}

/// Every fake task running on `agents`.
fn running(agents: &[RunningAgent]) -> BTreeSet<String> {
    agents
        .iter()
        .flat_map(|a| a.tasks.running())
        .map(|id| id.to_string())
        .collect()
}

/// The app's running tasks as the master at `addr` serves them, once it counts `n` running.
async fn app_running(client: &PeerClient, addr: &str, n: u32) -> Result<BTreeSet<String>, String> {
    let app: AppEnvelope = get(client, addr, "/v2/apps/web").await?;
    let counts = app.app.counts.ok_or("no task counts")?;
    let tasks: Tasks = get(client, addr, "/v2/apps/web/tasks").await?;
    let ids: BTreeSet<String> = tasks
        .tasks
        .iter()
        .filter(|t| t.state == "TASK_RUNNING")
        .map(|t| t.id.clone())
        .collect();
    if counts.tasks_running == n && ids.len() == n as usize {
        Ok(ids)
    } else {
        Err(format!("{} running, tasks {ids:?}", counts.tasks_running))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_leader_stops_a_new_one_serves_the_app_and_replaces_nothing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .try_init();
    let dir = tempfile::tempdir().expect("a temp dir");
    let client = PeerClient::new();
    let mut masters = start_masters(dir.path()).await;
    let addrs: Vec<String> = masters.iter().map(|m| m.addr.clone()).collect();
    let all: Vec<&RunningMaster> = masters.iter().collect();
    let first = eventually("a leader all three masters agree on", || {
        leader(&client, &all)
    })
    .await;
    let agents: Vec<RunningAgent> = (1..=3)
        .map(|n| start_agent(n, &addrs, dir.path()))
        .collect();
    let leader_addr = addrs[(first - 1) as usize].clone();
    eventually("three agents registered and heard from", || async {
        let heard = agents_heard(&client, &leader_addr).await?;
        (heard.len() == 3 && heard.values().all(|h| *h))
            .then_some(())
            .ok_or(format!("{heard:?}"))
    })
    .await;

    // Created through a follower: it is forwarded to the leader like any request.
    let follower = addrs[(first % 3) as usize].clone();
    let app = json!({"id": "/web", "cmd": "serve", "instances": 3, "cpus": 0.1, "mem": 32});
    // Once, not retried: a retry of a create that was applied would be refused (409).
    let created: Value = call(
        &client,
        Method::POST,
        &follower,
        "/v2/apps",
        Some(&app),
        201,
    )
    .await
    .expect("the app is created");
    assert_eq!(created["id"], "/web", "{created}");
    let before = eventually("three instances running", || async {
        let on_agents = running(&agents);
        let served = app_running(&client, &follower, 3).await?;
        (on_agents == served)
            .then_some(served)
            .ok_or(format!("agents run {on_agents:?}"))
    })
    .await;
    eventually("the app's deployment finished", || async {
        let deployments: Vec<client::Deployment> =
            get(&client, &follower, "/v2/deployments").await?;
        deployments
            .is_empty()
            .then_some(())
            .ok_or(format!("{} deployments", deployments.len()))
    })
    .await;

    let old = masters
        .iter_mut()
        .find(|m| m.id == first)
        .expect("the leader is one of the masters");
    let ended = old.stop().await;
    assert!(
        matches!(ended, Ok(ExitReason::Requested)),
        "a stop asked for ends the master with ExitReason::Requested: {ended:?}"
    );
    assert!(
        client
            .call(Method::GET, &leader_addr, "/health", None, CALL)
            .await
            .is_err(),
        "a stopped master no longer answers"
    );
    let rest: Vec<&RunningMaster> = masters.iter().filter(|m| m.id != first).collect();
    let second = eventually("a new leader among the other two", || {
        leader(&client, &rest)
    })
    .await;
    assert_ne!(second, first);
    let new_addr = addrs[(second - 1) as usize].clone();
    let other_addr = rest
        .iter()
        .find(|m| m.id != second)
        .map(|m| m.addr.clone())
        .expect("two masters are left");

    // The new leader hears every agent again, and its scheduler has assessed the zones: a
    // pass has run, from the state it inherited.
    eventually("every agent heard from by the new leader", || async {
        let heard = agents_heard(&client, &new_addr).await?;
        (heard.len() == 3 && heard.values().all(|h| *h))
            .then_some(())
            .ok_or(format!("{heard:?}"))
    })
    .await;
    eventually("a pass of the new leader's scheduler", || async {
        let health: ClusterHealth = get(&client, &new_addr, "/v1/cluster/health").await?;
        let healthy = health.zones.len() == 3 && health.zones.iter().all(|z| z.state == "healthy");
        healthy
            .then_some(())
            .ok_or(format!("zones {:?}", health.zones))
    })
    .await;
    for addr in [&new_addr, &other_addr] {
        let served = eventually("the app served by both remaining masters", || {
            app_running(&client, addr, 3)
        })
        .await;
        assert_eq!(served, before, "the same instances, served by {addr}");
    }

    // The new leader's scheduler acts: scaled up by one, the app gets exactly one more
    // instance, and the three it inherited are the ones that ran all along.
    let four = json!({"instances": 4});
    let scaled: Value = eventually("the app scaled to four", || {
        call(
            &client,
            Method::PUT,
            &other_addr,
            "/v2/apps/web",
            Some(&four),
            200,
        )
    })
    .await;
    assert!(scaled["deploymentId"].is_string(), "{scaled}");
    let after = eventually("four instances running", || async {
        let on_agents = running(&agents);
        let served = app_running(&client, &new_addr, 4).await?;
        (on_agents == served)
            .then_some(served)
            .ok_or(format!("agents run {on_agents:?}"))
    })
    .await;
    assert!(before.is_subset(&after), "{before:?} kept in {after:?}");
    for agent in &agents {
        for id in agent.tasks.running() {
            assert_eq!(
                agent.tasks.starts(&id),
                1,
                "{id} was started once, never again"
            );
            assert!(
                agent.tasks.signals(&id).is_empty(),
                "{id} was never told to stop"
            );
        }
    }

    for agent in agents {
        agent.stop().await;
    }
    for m in masters.iter_mut().filter(|m| m.id != first) {
        let ended = m.stop().await;
        assert!(
            matches!(ended, Ok(ExitReason::Requested)),
            "master {}: {ended:?}",
            m.id
        );
    }
}
