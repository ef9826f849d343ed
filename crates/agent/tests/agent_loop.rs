//! The agent against a fake master on 127.0.0.1: registration, assignments, status reports,
//! refusals, term fencing, outages and re-registration.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::{AgentConfig, AgentError, Timings};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::*;
use domain::{FaultDomain, Resources};
use serde::Deserialize;
use serde_json::json;
use state::protocol::{
    Assignments, Heartbeat, HeartbeatAck, Registered, Registration, StatusReport, TaskAssignment,
    TaskGoal, TaskStatus,
};
use state::{Condition, InstanceId};
use tokio::sync::{Notify, oneshot};

/// What the fake master answers and what it has seen.
#[derive(Default)]
struct Master {
    /// Answer 503 to everything (no leader).
    down: bool,
    /// Answer registrations with this refusal.
    refuse: Option<(StatusCode, String)>,
    /// The `reason` of that refusal, if any.
    refuse_reason: Option<String>,
    /// Agents it knows (others get 404 on heartbeats, watches and status reports).
    known: Vec<String>,
    term: u64,
    revision: u64,
    tasks: Vec<TaskAssignment>,
    registrations: Vec<Registration>,
    heartbeats: usize,
    reports: Vec<StatusReport>,
    /// Registrations tried while `down`.
    registrations_while_down: usize,
    /// Registrations answered with `refuse`.
    refused: usize,
    /// How often an answer of each term was served.
    served_terms: HashMap<u64, usize>,
}

#[derive(Clone)]
struct Fake {
    master: Arc<Mutex<Master>>,
    changed: Arc<Notify>,
}

impl Fake {
    fn with<T>(&self, f: impl FnOnce(&mut Master) -> T) -> T {
        let out = f(&mut self.master.lock().unwrap());
        self.changed.notify_waiters();
        out
    }

    /// Replaces the desired set (a new revision) under `term`.
    fn assign(&self, term: u64, tasks: Vec<TaskAssignment>) {
        self.with(|m| {
            m.term = term;
            m.revision += 1;
            m.tasks = tasks;
        });
    }

    fn statuses(&self) -> Vec<TaskStatus> {
        self.with(|m| m.reports.iter().flat_map(|r| r.updates.clone()).collect())
    }

    async fn status_where(&self, id: &str, pred: impl Fn(&TaskStatus) -> bool) -> TaskStatus {
        let id = InstanceId::from(id);
        eventually(&format!("a status report about {id}"), || {
            let found = self
                .statuses()
                .into_iter()
                .find(|u| u.instance_id == id && pred(u));
            async move { found }
        })
        .await
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"message": "no leader"})),
    )
        .into_response()
}

fn unknown(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"message": format!("unknown agent {id}")})),
    )
        .into_response()
}

async fn register(State(f): State<Fake>, Json(reg): Json<Registration>) -> Response {
    f.with(|m| {
        if m.down {
            m.registrations_while_down += 1;
            return unavailable();
        }
        if let Some((code, msg)) = &m.refuse {
            m.refused += 1;
            let body = json!({"message": msg, "reason": m.refuse_reason});
            return (*code, Json(body)).into_response();
        }
        m.known.push(reg.agent.id.0.clone());
        let answer = Registered {
            agent_id: reg.agent.id.clone(),
            term: m.term,
            heartbeat_interval_ms: 1000,
            local_region: "local".into(),
            remote: false,
            protocol: reg.protocol,
        };
        m.registrations.push(reg);
        Json(answer).into_response()
    })
}

async fn heartbeat(
    State(f): State<Fake>,
    Path(id): Path<String>,
    Json(_hb): Json<Heartbeat>,
) -> Response {
    f.with(|m| {
        if m.down {
            return unavailable();
        }
        if !m.known.contains(&id) {
            return unknown(&id);
        }
        m.heartbeats += 1;
        Json(HeartbeatAck { term: m.term }).into_response()
    })
}

#[derive(Deserialize)]
struct Watch {
    after: u64,
    wait_ms: u64,
}

async fn assignments(
    State(f): State<Fake>,
    Path(id): Path<String>,
    Query(w): Query<Watch>,
) -> Response {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(w.wait_ms);
    loop {
        let changed = f.changed.notified();
        let answer = {
            let mut m = f.master.lock().unwrap();
            if m.down {
                return unavailable();
            }
            if !m.known.contains(&id) {
                return unknown(&id);
            }
            let now = tokio::time::Instant::now();
            (m.revision != w.after || now >= deadline).then(|| {
                let term = m.term;
                *m.served_terms.entry(term).or_default() += 1;
                Assignments {
                    term: m.term,
                    revision: m.revision,
                    tasks: m.tasks.clone(),
                }
            })
        };
        if let Some(a) = answer {
            return Json(a).into_response();
        }
        let _ = tokio::time::timeout_at(deadline, changed).await;
    }
}

async fn status(
    State(f): State<Fake>,
    Path(id): Path<String>,
    Json(report): Json<StatusReport>,
) -> Response {
    f.with(|m| {
        if m.down {
            return unavailable();
        }
        if !m.known.contains(&id) {
            return unknown(&id);
        }
        m.reports.push(report);
        Json(json!({})).into_response()
    })
}

/// A fake master that knows nothing yet, and its internal agent API.
fn fake_router() -> (Fake, Router) {
    let fake = Fake {
        master: Arc::new(Mutex::new(Master {
            term: 1,
            revision: 1,
            ..Master::default()
        })),
        changed: Arc::new(Notify::new()),
    };
    let app = Router::new()
        .route("/internal/agents/register", post(register))
        .route("/internal/agents/{id}/heartbeat", post(heartbeat))
        .route("/internal/agents/{id}/assignments", get(assignments))
        .route("/internal/agents/{id}/status", post(status))
        .with_state(fake.clone());
    (fake, app)
}

async fn fake_master() -> (Fake, SocketAddr) {
    let (fake, app) = fake_router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, addr)
}

fn config(masters: Vec<String>, work_dir: &std::path::Path) -> AgentConfig {
    AgentConfig {
        masters,
        work_dir: work_dir.to_path_buf(),
        hostname: "agent-1".into(),
        ip: "127.0.0.1".into(),
        domain: Some(FaultDomain::new("local", "local-a")),
        resources: Resources::parse("cpus:2;mem:1024;disk:100;ports:[31000-31010]").unwrap(),
        attributes: domain::attributes::parse_attributes("rack:r1").unwrap(),
        listen: None,
        heartbeat_interval: Some(Duration::from_millis(50)),
        sandbox_retention: agent::Retention::default(),
        timings: Timings {
            long_poll: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            status_batch: Duration::from_millis(20),
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(100),
        },
        tasks: agent::TaskExecution::Host,
        tasks_on_exit: agent::TasksOnExit::Keep,
        connector: None,
        task_state: agent::TaskState::OnDisk,
        pool: None,
        insecure: true,
    }
}

/// A running agent; dropping the handle's sender stops it.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), AgentError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.done.await.unwrap().unwrap();
    }
}

fn start(config: AgentConfig) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(agent::run(config, async {
        let _ = stopped.await;
    }));
    Running {
        stop: Some(stop),
        done,
    }
}

fn sleeper(id: &str) -> TaskAssignment {
    assignment(
        id,
        json!({"id": "/sleepy", "cmd": "exec sleep 60"}),
        vec![31001],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_runs_its_assignments_and_reports_status() {
    let (fake, addr) = fake_master().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start(config(vec![addr.to_string()], dir.path()));

    let reg = eventually("a registration", || {
        let r = fake.with(|m| m.registrations.first().cloned());
        async move { r }
    })
    .await;
    assert_eq!(reg.agent.hostname, "agent-1");
    assert_eq!(reg.agent.domain, Some(FaultDomain::new("local", "local-a")));
    assert_eq!(reg.agent.resources.cpus, 2.0);
    assert!(reg.running.is_empty());
    let agent_id = std::fs::read_to_string(dir.path().join("agent-id")).unwrap();
    assert_eq!(agent_id.trim(), reg.agent.id.0);

    fake.assign(1, vec![sleeper("sleepy.instance-1")]);
    fake.status_where("sleepy.instance-1", |u| u.condition == Condition::Running)
        .await;
    let conditions: Vec<Condition> = fake.statuses().iter().map(|u| u.condition).collect();
    assert_eq!(conditions, [Condition::Staging, Condition::Running]);
    assert!(fake.with(|m| m.reports.iter().all(|r| r.term == 1)));
    eventually("heartbeats", || {
        let n = fake.with(|m| m.heartbeats);
        async move { (n >= 2).then_some(()) }
    })
    .await;

    let mut kill = sleeper("sleepy.instance-1");
    kill.goal = TaskGoal::Killed;
    fake.assign(1, vec![kill]);
    fake.status_where("sleepy.instance-1", |u| u.condition == Condition::Killed)
        .await;
    agent.stop().await;

    // A restarted agent registers as itself.
    let again = start(config(vec![addr.to_string()], dir.path()));
    eventually("a second registration", || {
        let r = fake.with(|m| m.registrations.get(1).cloned());
        async move { r }
    })
    .await;
    assert_eq!(
        fake.with(|m| m.registrations[1].agent.id.clone()),
        reg.agent.id
    );
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_stops_the_agent_with_the_master_s_message() {
    let (fake, addr) = fake_master().await;
    let msg = "agent 127.0.0.1 is already registered as a live agent with id x";
    fake.with(|m| m.refuse = Some((StatusCode::CONFLICT, msg.into())));
    let dir = tempfile::tempdir().unwrap();
    let agent = start(config(vec![addr.to_string()], dir.path()));
    match agent.done.await.unwrap() {
        Err(AgentError::Refused(m)) => assert_eq!(m, msg),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_protocol_the_masters_refuse_keeps_retrying_until_they_accept_it() {
    let (fake, addr) = fake_master().await;
    let msg = "this agent speaks agent protocol 3; this master speaks 1 to 2: upgrade the masters first, then the agents";
    fake.with(|m| {
        m.refuse = Some((StatusCode::BAD_REQUEST, msg.into()));
        m.refuse_reason = Some(state::protocol::AGENT_PROTOCOL_UNSUPPORTED.into());
    });
    let dir = tempfile::tempdir().unwrap();
    let agent = start(config(vec![addr.to_string()], dir.path()));
    eventually("refused registrations, retried", || {
        let n = fake.with(|m| m.refused);
        async move { (n >= 3).then_some(()) }
    })
    .await;
    assert!(
        !agent.done.is_finished(),
        "a protocol refusal does not stop the agent"
    );
    // The masters are upgraded: the next try is accepted.
    fake.with(|m| m.refuse = None);
    let reg = eventually("a registration once the masters accept it", || {
        let r = fake.with(|m| m.registrations.first().cloned());
        async move { r }
    })
    .await;
    assert_eq!(reg.protocol, state::protocol::AGENT_PROTOCOL);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_copy_of_a_work_dir_reports_nothing_and_says_how_to_reset_it() {
    let (fake, addr) = fake_master().await;
    let dir = tempfile::tempdir().unwrap();
    // A copy of another agent's work dir: its id, and a checkpoint of a task that does not
    // run here (a restarted agent would report it failed).
    std::fs::write(dir.path().join("agent-id"), "copied-id\n").unwrap();
    std::fs::create_dir_all(dir.path().join("tasks")).unwrap();
    let cp = agent::checkpoint::Checkpoint {
        assignment: sleeper("theirs.instance-1"),
        sandbox: dir.path().join("sandboxes/theirs.instance-1"),
        started_at_ms: 1,
        process: Some(agent::procfs::ProcessIdentity {
            pid: u32::MAX - 1,
            start_time: 1,
        }),
        container: None,
        pod_processes: Vec::new(),
        kill_requested: false,
        terminal: None,
    };
    agent::checkpoint::Checkpoints::new(dir.path().join("tasks"))
        .save(&cp)
        .unwrap();
    let msg = "agent copied-id is live at 127.0.0.2";
    fake.with(|m| {
        // The original is registered: reports under its id would be taken as its own.
        m.known.push("copied-id".into());
        m.refuse = Some((StatusCode::CONFLICT, msg.into()));
        m.refuse_reason = Some(state::protocol::AGENT_ID_IN_USE.into());
    });
    let agent = start(config(vec![addr.to_string()], dir.path()));
    match agent.done.await.unwrap() {
        Err(e @ AgentError::CopiedWorkDir { .. }) => {
            let text = e.to_string();
            let work_dir = dir.path().display().to_string();
            for want in [
                msg.to_string(),
                format!("{work_dir}/agent-id"),
                format!("{work_dir}/tasks"),
            ] {
                assert!(text.contains(&want), "no {want:?} in {text}");
            }
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.statuses().is_empty(), "{:?}", fake.statuses());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_an_older_term_are_ignored() {
    let (fake, addr) = fake_master().await;
    let dir = tempfile::tempdir().unwrap();
    fake.assign(5, vec![sleeper("keep.instance-1")]);
    let agent = start(config(vec![addr.to_string()], dir.path()));
    fake.status_where("keep.instance-1", |u| u.condition == Condition::Running)
        .await;

    // A deposed leader (term 3) says the agent should run nothing.
    fake.assign(3, vec![]);
    // Served twice: the agent read the first answer, ignored it, and asked again.
    eventually("the old term to be served twice", || {
        let n = fake.with(|m| m.served_terms.get(&3).copied().unwrap_or(0));
        async move { (n >= 2).then_some(()) }
    })
    .await;
    // The current leader adds a task; the first one is still there and never stopped.
    fake.assign(
        6,
        vec![sleeper("keep.instance-1"), sleeper("new.instance-1")],
    );
    fake.status_where("new.instance-1", |u| u.condition == Condition::Running)
        .await;
    assert!(
        fake.statuses()
            .iter()
            .all(|u| u.instance_id.0 != "keep.instance-1" || !u.condition.is_terminal()),
        "{:?}",
        fake.statuses()
    );
    let cp = checkpoint(dir.path(), "keep.instance-1");
    assert!(!cp.kill_requested);
    assert!(agent::procfs::is_running(cp.process.unwrap()));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("term"))
            .unwrap()
            .trim(),
        "6"
    );
    agent.stop().await;
    // Tasks outlive the agent; clean up.
    for id in ["keep.instance-1", "new.instance-1"] {
        let p = checkpoint(dir.path(), id).process.unwrap();
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(p.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_keep_running_through_an_outage_and_the_agent_registers_again() {
    let (fake, addr) = fake_master().await;
    let dir = tempfile::tempdir().unwrap();
    fake.assign(1, vec![sleeper("steady.instance-1")]);
    // The first master in the list is not there at all.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = gone.local_addr().unwrap().to_string();
    drop(gone);
    let agent = start(config(vec![nowhere, addr.to_string()], dir.path()));
    fake.status_where("steady.instance-1", |u| u.condition == Condition::Running)
        .await;
    let pid = checkpoint(dir.path(), "steady.instance-1").process.unwrap();

    fake.with(|m| m.down = true);
    // No master answers: the agent notices and keeps trying to register.
    eventually("registrations during the outage", || {
        let n = fake.with(|m| m.registrations_while_down);
        async move { (n >= 2).then_some(()) }
    })
    .await;
    assert!(
        agent::procfs::is_running(pid),
        "tasks run on without masters"
    );
    // The task ends during the outage; its end is delivered afterwards.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    fake.with(|m| m.down = false);
    let reg = eventually("a registration after the outage", || {
        let r = fake.with(|m| m.registrations.get(1).cloned());
        async move { r }
    })
    .await;
    assert_eq!(
        reg.agent.id,
        fake.with(|m| m.registrations[0].agent.id.clone())
    );
    let end = fake
        .status_where("steady.instance-1", |u| u.condition.is_terminal())
        .await;
    assert_eq!(end.condition, Condition::Failed);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_forgot_the_agent_gets_a_new_registration_with_its_tasks() {
    let (fake, addr) = fake_master().await;
    let dir = tempfile::tempdir().unwrap();
    fake.assign(1, vec![sleeper("kept.instance-1")]);
    let agent = start(config(vec![addr.to_string()], dir.path()));
    fake.status_where("kept.instance-1", |u| u.condition == Condition::Running)
        .await;
    // A new leader that has not heard from this agent: 404 until it registers again.
    fake.with(|m| {
        m.known.clear();
        m.term = 2;
    });
    let reg = eventually("a re-registration", || {
        let r = fake.with(|m| m.registrations.get(1).cloned());
        async move { r }
    })
    .await;
    assert_eq!(reg.running, vec![InstanceId::from("kept.instance-1")]);
    agent.stop().await;
    let p = checkpoint(dir.path(), "kept.instance-1").process.unwrap();
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(p.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_agent_leaves_its_tasks_running_and_a_new_one_takes_them_over() {
    let (fake, addr) = fake_master().await;
    let dir = tempfile::tempdir().unwrap();
    fake.assign(1, vec![sleeper("durable.instance-1")]);
    let first = start(config(vec![addr.to_string()], dir.path()));
    fake.status_where("durable.instance-1", |u| u.condition == Condition::Running)
        .await;
    let pid = checkpoint(dir.path(), "durable.instance-1")
        .process
        .unwrap();
    first.stop().await;
    assert!(
        agent::procfs::is_running(pid),
        "stopping the agent stops no task"
    );

    let second = start(config(vec![addr.to_string()], dir.path()));
    let reg = eventually("the second registration", || {
        let r = fake.with(|m| m.registrations.get(1).cloned());
        async move { r }
    })
    .await;
    assert_eq!(reg.running, vec![InstanceId::from("durable.instance-1")]);
    // The master stops listing it: the new agent stops the very same process.
    fake.assign(1, vec![]);
    let end = fake
        .status_where("durable.instance-1", |u| u.condition.is_terminal())
        .await;
    assert_eq!(end.condition, Condition::Killed);
    assert!(!agent::procfs::is_running(pid));
    let staged = fake
        .statuses()
        .iter()
        .filter(|u| u.condition == Condition::Staging)
        .count();
    assert_eq!(staged, 1, "started once, never again");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_told_to_stop_its_tasks_on_exit_stops_them_and_reports_them_killed() {
    let (fake, addr) = fake_master().await;
    let dir = tempfile::tempdir().unwrap();
    fake.assign(
        1,
        vec![sleeper("dev.instance-1"), {
            let mut a = sleeper("dev.instance-2");
            a.ports = vec![31002];
            a
        }],
    );
    let mut cfg = config(vec![addr.to_string()], dir.path());
    cfg.tasks_on_exit = agent::TasksOnExit::Stop;
    let agent = start(cfg);
    let mut pids = Vec::new();
    for id in ["dev.instance-1", "dev.instance-2"] {
        fake.status_where(id, |u| u.condition == Condition::Running)
            .await;
        pids.push(checkpoint(dir.path(), id).process.unwrap());
    }
    agent.stop().await;
    for (id, pid) in ["dev.instance-1", "dev.instance-2"].into_iter().zip(pids) {
        assert!(
            !agent::procfs::is_running(pid),
            "{id} still runs after its agent stopped"
        );
        let end = checkpoint(dir.path(), id)
            .terminal
            .expect("a checkpointed end");
        assert_eq!(end.condition, Condition::Killed, "{id}");
        assert!(
            fake.statuses()
                .iter()
                .any(|u| u.instance_id == InstanceId::from(id) && u.condition == Condition::Killed),
            "the agent's last report carries the end of {id}"
        );
    }
}

/// The seam a simulation uses: the agent's every call to its master goes through a
/// replaced connector, here into the fake master's router over in-memory streams, and its
/// tasks run on a fake executor, so nothing opens a socket or starts a process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_talks_to_its_master_through_a_replaced_connector() {
    use agent::executor::FakeExecutor;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use state::transport::{Connector, Stream};

    let (fake, app) = fake_router();
    let dialled: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = dialled.clone();
    let connector = Connector::new(move |uri: hyper::Uri| {
        seen.lock().unwrap().push(uri.to_string());
        let (client, server) = tokio::io::duplex(64 * 1024);
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server), service)
                .await;
        });
        async move { Ok(Stream::tokio(client)) }
    });
    let executor = FakeExecutor::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(vec!["master-1.simulated:8080".into()], dir.path());
    config.connector = Some(connector);
    config.tasks = agent::TaskExecution::Only(Arc::new(executor.clone()));
    let agent = start(config);

    let reg = eventually("a registration", || {
        let r = fake.with(|m| m.registrations.first().cloned());
        async move { r }
    })
    .await;
    fake.assign(1, vec![sleeper("sleepy.instance-1")]);
    fake.status_where("sleepy.instance-1", |u| u.condition == Condition::Running)
        .await;
    assert_eq!(executor.running(), ["sleepy.instance-1".into()]);
    assert!(executor.exit(&"sleepy.instance-1".into(), 0));
    fake.status_where("sleepy.instance-1", |u| u.condition == Condition::Finished)
        .await;
    assert!(
        fake.with(|m| m.heartbeats) > 0,
        "heartbeats of {}",
        reg.agent.id.0
    );
    agent.stop().await;

    let dialled = dialled.lock().unwrap().clone();
    assert!(!dialled.is_empty());
    assert!(
        dialled
            .iter()
            .all(|u| u == "http://master-1.simulated:8080/"),
        "{dialled:?}"
    );
}
