//! The agent's conversation with the masters: register, then heartbeat and watch the
//! assignments until the leader loses track of the agent or no master answers, then
//! register again. Status updates flow beside it, retried until a master has them.
//!
//! Tasks never depend on this loop: when no master answers they keep running, and nothing
//! here stops them on exit, unless the agent was told to ([`TasksOnExit::Stop`], dev only).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

// tokio's Instant is the system's in production and follows a paused (simulated) runtime's time.
use tokio::time::Instant;

use domain::{Agent, AgentId};
use state::protocol::{
    AGENT_ID_IN_USE, AGENT_PROTOCOL, AGENT_PROTOCOL_UNSUPPORTED, DiskUse, Heartbeat,
    OLDEST_AGENT_PROTOCOL, Registration, StatusReport,
};
use tokio::sync::{Notify, watch};

use crate::backoff::Backoff;
use crate::client::{CallError, MasterClient};
use crate::config::{
    AgentConfig, DEFAULT_HEARTBEAT, TaskExecution, TaskState, TasksOnExit, Timings,
};
use crate::executor::{ContainerRuntime, Executors};
use crate::outbox::Outbox;
use crate::status_api::{self, AgentView};
use crate::supervisor::{Supervisor, TaskContext};
use crate::work_dir::{TermFence, WorkDir, WorkDirError};

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The work dir cannot be used.
    #[error(transparent)]
    WorkDir(#[from] WorkDirError),
    /// The task checkpoints cannot be read.
    #[error("cannot read the task checkpoints in {path}: {source}")]
    Checkpoints {
        /// The directory.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The leader refused the registration (a duplicate IP, bad fields): retrying cannot help.
    #[error("the masters refused this agent: {0}")]
    Refused(String),
    /// The leader knows this agent's id live at another address: the work dir is a copy.
    #[error(
        "the masters refused this agent: {message}\n\
         The work dir {work_dir} holds the id of another agent that is still running (it was copied \
         from that agent's work dir). To make this a new agent, stop it, then delete \
         {work_dir}/agent-id (the copied id) and {work_dir}/tasks and {work_dir}/sandboxes (the \
         other agent's task checkpoints and sandboxes), and start it again: it registers under a \
         new id. Nothing of the other agent or its tasks was touched."
    )]
    CopiedWorkDir {
        /// The master's explanation.
        message: String,
        /// The work dir.
        work_dir: String,
    },
    /// `--listen` could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// Runs an agent until `shutdown` completes (tasks keep running after it returns, unless
/// `config.tasks_on_exit` says to stop them) or the masters refuse it.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AgentError> {
    let work_dir = Arc::new(WorkDir::open(&config.work_dir)?);
    let agent_id = work_dir.agent_id()?;
    let fence = Arc::new(work_dir.term_fence()?);
    let outbox = Arc::new(Outbox::new());
    let executors = match &config.tasks {
        TaskExecution::Host => {
            let containers = ContainerRuntime::detect().await;
            if !containers.is_available() {
                tracing::info!(
                    "Docker apps cannot run here: {}",
                    containers.unavailable_reason()
                );
            }
            Executors::host(containers)
        }
        TaskExecution::Only(executor) => Executors::only(executor.clone()),
    };
    let on_disk = config.task_state == TaskState::OnDisk;
    let supervisor = Supervisor::new(TaskContext {
        hostname: config.hostname.clone(),
        ip: config.ip.clone(),
        work_dir: work_dir.clone(),
        checkpoints: if on_disk {
            crate::checkpoint::Checkpoints::new(work_dir.tasks_dir())
        } else {
            crate::checkpoint::Checkpoints::in_memory()
        },
        make_sandboxes: on_disk,
        outbox: outbox.clone(),
        executors,
    });
    let recovered = supervisor
        .recover()
        .await
        .map_err(|source| AgentError::Checkpoints {
            path: work_dir.tasks_dir().display().to_string(),
            source,
        })?;
    if !recovered.running.is_empty() || !recovered.lost.is_empty() {
        tracing::info!(
            "after the restart: {} task(s) still running, {} ended while the agent was down",
            recovered.running.len(),
            recovered.lost.len()
        );
    }
    let client = Arc::new(match (&config.pool, &config.connector) {
        (Some(pool), _) => MasterClient::with_pool(
            config.masters.clone(),
            config.timings.request_timeout,
            pool.clone(),
        ),
        (None, None) => MasterClient::new(config.masters.clone(), config.timings.request_timeout),
        (None, Some(connector)) => MasterClient::with_connector(
            config.masters.clone(),
            config.timings.request_timeout,
            connector.clone(),
        ),
    });
    let agent = Agent {
        id: agent_id.clone(),
        hostname: config.hostname.clone(),
        ip: config.ip.clone(),
        domain: config.domain.clone(),
        resources: config.resources.clone(),
        attributes: config.attributes.clone(),
    };
    let view = Arc::new(AgentView::new(agent.clone(), supervisor.clone()));
    let server = match config.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| AgentError::Listen { addr, source })?;
            tracing::info!("serving /health and /state on {addr}");
            Some(tokio::spawn(status_api::serve(listener, view.clone())))
        }
        None => None,
    };
    tracing::info!(
        "agent {agent_id} ({} {}) in {} with {}",
        agent.hostname,
        agent.ip,
        agent
            .domain
            .as_ref()
            .map_or("no fault domain".to_string(), |d| format!(
                "region {} zone {}",
                d.region, d.zone
            )),
        agent.resources
    );

    let disk = Arc::new(std::sync::Mutex::new(None));
    let (stop_sweeping, sweeping) = watch::channel(false);
    // Without sandboxes there is nothing to sweep (and no disk use worth reporting).
    let sweeper = on_disk.then(|| {
        tokio::spawn(crate::retention::run(
            supervisor.clone(),
            work_dir.clone(),
            config.sandbox_retention,
            disk.clone(),
            sweeping,
        ))
    });
    let forget_me = Arc::new(Notify::new());
    // Nothing is reported before a master has accepted this agent: a refused copy of another
    // agent's work dir must not report that agent's tasks as its own.
    let (registered, accepted) = watch::channel(false);
    let sender = tokio::spawn(send_status(
        client.clone(),
        outbox.clone(),
        agent_id.clone(),
        fence.clone(),
        forget_me.clone(),
        config.timings.clone(),
        accepted,
    ));
    let tasks_on_exit = config.tasks_on_exit;
    let session = Session {
        config,
        agent,
        client: client.clone(),
        fence: fence.clone(),
        outbox: outbox.clone(),
        supervisor: supervisor.clone(),
        forget_me,
        view,
        registered,
        disk,
    };
    let result = tokio::select! {
        biased;
        r = session.run() => r,
        () = shutdown => {
            match tasks_on_exit {
                TasksOnExit::Keep => tracing::info!("stopping the agent; its tasks keep running"),
                TasksOnExit::Stop => tracing::info!("stopping the agent and its tasks"),
            }
            Ok(())
        }
    };
    let was_accepted = *session.registered.borrow();
    if tasks_on_exit == TasksOnExit::Stop {
        // Before the sender goes: the tasks' ends join the last report below.
        supervisor.stop_all().await;
    }
    sender.abort();
    // Awaited, not aborted: a sweep under way holds the work dir (and its lock) until done,
    // and a restarted agent in this process must find the lock free.
    stop_sweeping.send_replace(true);
    if let Some(sweeper) = sweeper {
        let _ = sweeper.await;
    }
    if let Some(s) = server {
        s.abort();
        let _ = s.await;
    }
    // Stop watching the tasks, not the tasks: a restarted agent takes them over.
    supervisor.detach().await;
    // One last try to deliver what is queued; a restarted agent reports the ends again.
    let left = outbox.peek(usize::MAX);
    if was_accepted && !left.is_empty() {
        let report = StatusReport {
            term: fence.highest(),
            updates: left,
        };
        let _ =
            tokio::time::timeout(Duration::from_secs(2), client.report(&agent_id, &report)).await;
    }
    result
}

struct Session {
    config: AgentConfig,
    agent: Agent,
    client: Arc<MasterClient>,
    fence: Arc<TermFence>,
    /// Status updates waiting for a master.
    outbox: Arc<Outbox>,
    supervisor: Supervisor,
    /// Woken when a master says it does not know this agent (register again).
    forget_me: Arc<Notify>,
    view: Arc<AgentView>,
    /// True once a master has accepted the agent (status reports may flow).
    registered: watch::Sender<bool>,
    /// The work dir's disk use, as the last sandbox sweep measured it.
    disk: Arc<std::sync::Mutex<Option<DiskUse>>>,
}

impl Session {
    /// Records a leader's term (false for a deposed leader's). A new leader keeps task
    /// health only in memory, and an agent reports health only on change: on a higher term
    /// the agent tells the new leader everything it would otherwise never hear again.
    fn observe_term(&self, term: u64) -> bool {
        let before = self.fence.highest();
        let current = self.fence.observe(term);
        if current && term > before && before > 0 {
            self.outbox.replay(crate::clock::now_ms());
        }
        current
    }

    async fn run(&self) -> Result<(), AgentError> {
        loop {
            let heartbeat = self.register().await?;
            // biased: the heartbeat and the watch run side by side either way; polling them
            // in a fixed order sends their first requests in the same order every time.
            let why = tokio::select! {
                biased;
                why = self.heartbeat(heartbeat) => why,
                why = self.watch() => why,
                () = self.forget_me.notified() => "a master does not know this agent".to_string(),
            };
            self.view.set_registered(None);
            tracing::warn!("{why}; registering again (tasks keep running)");
        }
    }

    /// Registers with whichever master answers; returns the heartbeat interval to use.
    async fn register(&self) -> Result<Duration, AgentError> {
        let t = &self.config.timings;
        let mut backoff = Backoff::new(t.backoff_base, t.backoff_cap);
        let mut failures = 0u32;
        loop {
            let registration = Registration {
                agent: self.agent.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                protocol: AGENT_PROTOCOL,
                running: self.supervisor.running(),
            };
            let master = self.client.current().to_string();
            match self.client.register(&registration).await {
                // A master released before this agent's oldest protocol cannot refuse it
                // itself (it answers version 1 without knowing better): this agent does.
                Ok(r) if !(OLDEST_AGENT_PROTOCOL..=AGENT_PROTOCOL).contains(&r.protocol) => {
                    failures += 1;
                    tracing::error!(
                        "master {master} accepted this agent with agent protocol {}, and this agent speaks {OLDEST_AGENT_PROTOCOL} to {AGENT_PROTOCOL}: upgrade the masters first, then the agents; retrying ({failures} attempt(s), tasks keep running)",
                        r.protocol
                    );
                    self.client.rotate();
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Ok(r) => {
                    self.observe_term(r.term);
                    // Whoever leads now may have missed news while this agent was away.
                    self.outbox.replay(crate::clock::now_ms());
                    tracing::info!(
                        "registered with {master} (term {}, agent protocol {}, local region {}{})",
                        r.term,
                        r.protocol,
                        r.local_region,
                        if r.remote {
                            ", this agent is remote"
                        } else {
                            ""
                        }
                    );
                    self.view.set_registered(Some(master));
                    self.registered.send_replace(true);
                    let interval = self
                        .config
                        .heartbeat_interval
                        .or((r.heartbeat_interval_ms > 0)
                            .then(|| Duration::from_millis(r.heartbeat_interval_ms)))
                        .unwrap_or(DEFAULT_HEARTBEAT);
                    return Ok(interval);
                }
                Err(e @ CallError::Refused { .. }) if e.reason() == Some(AGENT_ID_IN_USE) => {
                    return Err(AgentError::CopiedWorkDir {
                        message: e.message(),
                        work_dir: self.config.work_dir.display().to_string(),
                    });
                }
                // Not this agent's fault, and mended by an upgrade: said every time, retried.
                Err(e @ CallError::Refused { .. })
                    if e.reason() == Some(AGENT_PROTOCOL_UNSUPPORTED) =>
                {
                    failures += 1;
                    tracing::error!(
                        "the masters refuse this agent's protocol: {}; retrying ({failures} attempt(s), tasks keep running)",
                        e.message()
                    );
                    self.client.rotate();
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e @ CallError::Refused { .. }) if matches!(e.status(), Some(409 | 422)) => {
                    return Err(AgentError::Refused(e.message()));
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(
                            "cannot register ({failures} attempt(s)): {e}; retrying across {} master(s)",
                            self.client.len()
                        );
                    }
                    if matches!(e, CallError::Refused { .. } | CallError::Unreadable { .. }) {
                        self.client.rotate();
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Heartbeats until the leader forgets the agent or no master answers; returns why.
    async fn heartbeat(&self, interval: Duration) -> String {
        // The first beat at a random point of the interval, not at once: agents that
        // registered together (a new leader's re-registration storm, a fleet started at
        // once) would otherwise beat in lockstep for as long as they run, and the leader
        // would see every agent's beat in the same few milliseconds of each second.
        // Registering counted as hearing from the agent, so the first beat is not late.
        let first = interval.mul_f64(fastrand::f64());
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rtt_ms = None;
        let timeout = (interval * 2).clamp(Duration::from_secs(1), self.client.timeout());
        loop {
            ticker.tick().await;
            let mut unavailable = 0;
            loop {
                let sent = Instant::now();
                let beat = Heartbeat {
                    rtt_ms,
                    disk: *self.disk.lock().unwrap_or_else(|p| p.into_inner()),
                };
                match self.client.heartbeat(&self.agent.id, &beat, timeout).await {
                    Ok(ack) => {
                        rtt_ms =
                            Some(u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX));
                        self.observe_term(ack.term);
                        break;
                    }
                    Err(e) if e.status() == Some(404) => {
                        return format!("the leader does not know this agent ({})", e.message());
                    }
                    Err(e @ CallError::Unavailable { .. }) => {
                        unavailable += 1;
                        tracing::debug!("heartbeat failed: {e}");
                        if unavailable >= self.client.len() {
                            return format!("no master answers heartbeats (last: {e})");
                        }
                    }
                    Err(e) => {
                        tracing::warn!("heartbeat refused: {e}");
                        break;
                    }
                }
            }
        }
    }

    /// Long-polls the assignments and reconciles the tasks with each answer; returns when
    /// the leader does not know the agent.
    async fn watch(&self) -> String {
        let t = &self.config.timings;
        let mut backoff = Backoff::new(t.backoff_base, t.backoff_cap);
        // 0 after every registration: the first answer comes at once, with the whole set.
        let mut after = 0;
        loop {
            let poll = self.client.assignments(&self.agent.id, after, t.long_poll);
            let answer = tokio::select! {
                biased;
                answer = poll => answer,
                // The heartbeats moved to another master: ask that one instead.
                () = self.client.rotated() => continue,
            };
            match answer {
                Ok(a) => {
                    if !self.observe_term(a.term) {
                        tracing::warn!(
                            "ignoring assignments from term {} (a deposed leader; the highest term seen is {})",
                            a.term,
                            self.fence.highest()
                        );
                        self.client.rotate();
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                    backoff.reset();
                    after = a.revision;
                    self.supervisor.reconcile(&a.tasks);
                }
                Err(e) if e.status() == Some(404) => {
                    return format!("the leader does not know this agent ({})", e.message());
                }
                Err(e) => {
                    tracing::debug!("assignments: {e}");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
}

/// Sends queued status updates in batches, oldest first, until each batch is acknowledged.
async fn send_status(
    client: Arc<MasterClient>,
    outbox: Arc<Outbox>,
    agent_id: AgentId,
    fence: Arc<TermFence>,
    forget_me: Arc<Notify>,
    timings: Timings,
    mut accepted: watch::Receiver<bool>,
) {
    if accepted.wait_for(|a| *a).await.is_err() {
        return;
    }
    let mut backoff = Backoff::new(timings.backoff_base, timings.backoff_cap);
    loop {
        if outbox.is_empty() {
            outbox.changed().await;
        }
        // Collect what else changes meanwhile into the same batch.
        tokio::time::sleep(timings.status_batch).await;
        let batch = outbox.peek(500);
        if batch.is_empty() {
            continue;
        }
        let report = StatusReport {
            term: fence.highest(),
            updates: batch,
        };
        match client.report(&agent_id, &report).await {
            Ok(()) => {
                outbox.acknowledge(report.updates.len());
                backoff.reset();
            }
            Err(e) => {
                if e.status() == Some(404) {
                    forget_me.notify_waiters();
                }
                tracing::debug!(
                    "{} status update(s) not delivered yet: {e}",
                    report.updates.len()
                );
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}
