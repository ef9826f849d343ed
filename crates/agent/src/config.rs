//! How an agent is configured: what it tells the masters about itself, and its timings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use domain::{Attributes, FaultDomain, Resources};

/// Everything `agent::run` needs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Master addresses, `HOST:PORT` each.
    pub masters: Vec<String>,
    /// The work dir: agent id, checkpoints, sandboxes.
    pub work_dir: PathBuf,
    /// The hostname it registers with (`HOST` for tasks, `hostname` constraints).
    pub hostname: String,
    /// The IP it registers with; unique among live agents.
    pub ip: String,
    /// Its region and zone.
    pub domain: Option<FaultDomain>,
    /// Resources it offers.
    pub resources: Resources,
    /// Attributes for constraints.
    pub attributes: Attributes,
    /// Where to serve the agent's own `/health` and `/state`, if anywhere.
    pub listen: Option<SocketAddr>,
    /// Heartbeat interval; `None` uses what the leader asks for (1 s if it says nothing).
    pub heartbeat_interval: Option<Duration>,
    /// How long sandboxes of ended tasks are kept.
    pub sandbox_retention: crate::retention::Retention,
    /// Protocol timings.
    pub timings: Timings,
    /// What runs the tasks.
    pub tasks: TaskExecution,
    /// What happens to the tasks when the agent stops.
    pub tasks_on_exit: TasksOnExit,
    /// How connections to the masters are opened; `None`: TCP, giving up a connection
    /// attempt after `timings.request_timeout`.
    pub connector: Option<state::transport::Connector>,
    /// Where task checkpoints and sandboxes live.
    pub task_state: TaskState,
    /// A connection pool shared with the other agents of this process (hollow agents);
    /// `None`: the agent opens its own, with `connector`.
    pub pool: Option<crate::client::MasterPool>,
    /// `--insecure`: no TLS to the masters and no join token; for loopback and trusted
    /// networks only, and logged loudly at start.
    pub insecure: bool,
}

impl AgentConfig {
    /// The connector to the masters: `connector`, or TCP giving up a connection attempt
    /// after `timings.request_timeout`.
    pub fn master_connector(&self) -> state::transport::Connector {
        self.connector
            .clone()
            .unwrap_or_else(|| state::transport::Connector::tcp(Some(self.timings.request_timeout)))
    }
}

/// Where an agent keeps what it knows about its tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskState {
    /// In the work dir: a checkpoint fsynced at every step and a sandbox directory per task,
    /// so a restarted agent finds its tasks again (every real agent).
    #[default]
    OnDisk,
    /// In memory: no checkpoint file, no sandbox, no sandbox sweeps. For hollow agents,
    /// whose fake tasks end with the process anyway. The agent id and the leader-term
    /// fence stay in the work dir.
    InMemory,
}

/// What runs an agent's tasks.
#[derive(Debug, Clone, Default)]
pub enum TaskExecution {
    /// Processes on this host, and Docker containers when an engine answers (the default).
    #[default]
    Host,
    /// One executor for every task, e.g. a [`crate::executor::FakeExecutor`] for a
    /// simulated agent.
    Only(std::sync::Arc<dyn crate::executor::Executor>),
}

/// What happens to an agent's tasks when the agent stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TasksOnExit {
    /// They keep running, and a restarted agent with the same work dir finds them again
    /// (the default: an agent upgrade or crash costs no task).
    #[default]
    Keep,
    /// They are stopped (each with its kill grace period) before the agent exits: for
    /// `drover dev`, whose cluster takes its tasks with it when it goes.
    Stop,
}

/// Protocol timings; the defaults are for production, tests shorten them.
#[derive(Debug, Clone)]
pub struct Timings {
    /// `wait_ms` of the assignments long poll.
    pub long_poll: Duration,
    /// Time limit of every other call to a master.
    pub request_timeout: Duration,
    /// How long status updates are collected before a batch is sent.
    pub status_batch: Duration,
    /// First retry delay when no master answers.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            long_poll: Duration::from_millis(25_000),
            request_timeout: Duration::from_secs(5),
            status_batch: Duration::from_millis(200),
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(5),
        }
    }
}

/// The heartbeat interval when neither the flag nor the leader sets one.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// Parses `--masters HOST:PORT,HOST:PORT`.
pub fn parse_masters(text: &str) -> Result<Vec<String>, String> {
    let masters: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| m.trim_start_matches("http://").to_string())
        .collect();
    if masters.is_empty() {
        return Err("--masters: give at least one master as HOST:PORT".to_string());
    }
    for m in &masters {
        let port = m.rsplit_once(':').map(|(_, p)| p);
        match port.map(str::parse::<u16>) {
            Some(Ok(1..)) => {}
            Some(Ok(0)) => {
                return Err(format!(
                    "--masters: `{m}` has port 0; a master's port is 1 to 65535"
                ));
            }
            _ => {
                return Err(format!(
                    "--masters: `{m}` is not HOST:PORT with a port from 1 to 65535 (e.g. 10.0.1.10:8080)"
                ));
            }
        }
    }
    Ok(masters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_need_a_port() {
        assert_eq!(
            parse_masters("127.0.0.1:8081, m2:8082").unwrap(),
            vec!["127.0.0.1:8081", "m2:8082"]
        );
        assert!(parse_masters("").is_err());
        let e = parse_masters("m1").unwrap_err();
        assert!(e.contains("HOST:PORT"), "{e}");
        for bad in ["m1:0", "m1:65536", "m1:-1"] {
            let e = parse_masters(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("1 to 65535"), "{bad}: {e}");
        }
    }
}
