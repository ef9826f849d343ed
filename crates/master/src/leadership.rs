//! Leader-only services: started when this master is elected, torn down the moment it is not.
//!
//! The scheduler, agent liveness and health aggregation plug in here as [`LeaderService`]s.
//! Each runs as one task per term; losing leadership aborts the tasks at once, so nothing a
//! deposed leader started keeps writing (and its writes would fail anyway: Raft refuses them).
//!
//! When the master must end (Raft stopped with a fatal error, or leadership was lost under
//! `--exit-on-leadership-loss`), [`supervise`] returns an [`ExitReason`]; only `main` exits
//! the process, so a master can also run inside a test or a simulation.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use openraft::ServerState;
use state::{Command, Response};
use tokio::task::JoinHandle;

use crate::node::RaftNode;

/// Exit code when `--exit-on-leadership-loss` is set and leadership is lost (as Marathon).
pub const EXIT_LEADERSHIP_LOST: i32 = 103;

/// Why a running master ended, and the exit code the process ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// A stop this process was asked for (SIGTERM, Ctrl-C): exit 0.
    Requested,
    /// Raft stopped with a fatal error (storage): exit 1.
    RaftFailed {
        /// This master's id.
        id: u64,
        /// What Raft said.
        reason: String,
    },
    /// Leadership was lost with `--exit-on-leadership-loss` set: exit
    /// [`EXIT_LEADERSHIP_LOST`].
    LeadershipLost {
        /// This master's id.
        id: u64,
        /// The term it led.
        term: u64,
    },
    /// The leader removed this master from the membership (`drover operator masters
    /// remove`): exit 0, it has nothing left to serve.
    Removed {
        /// This master's id.
        id: u64,
    },
}

impl ExitReason {
    /// The process's exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExitReason::Requested | ExitReason::Removed { .. } => 0,
            ExitReason::RaftFailed { .. } => 1,
            ExitReason::LeadershipLost { .. } => EXIT_LEADERSHIP_LOST,
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitReason::Requested => f.write_str("stopped on request"),
            ExitReason::RaftFailed { id, reason } => {
                write!(f, "drover master {id}: Raft stopped: {reason}. Exiting.")
            }
            ExitReason::LeadershipLost { id, term } => write!(
                f,
                "drover master {id}: lost leadership of term {term}; exiting with code {EXIT_LEADERSHIP_LOST} (--exit-on-leadership-loss)"
            ),
            ExitReason::Removed { id } => write!(
                f,
                "drover master {id}: removed from the cluster (`drover operator masters remove {id}`); exiting. Its data dir is no longer a member's: to bring it back, wipe the data dir and start it with --join"
            ),
        }
    }
}

/// A boxed future, as services return.
pub type ServiceFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Work only the leader does.
pub trait LeaderService: Send + Sync + 'static {
    /// Short name, for logs.
    fn name(&self) -> &'static str;
    /// Runs for as long as this master leads in `term`; it is aborted when that ends.
    fn run(&self, term: u64) -> ServiceFuture;
}

/// Fixes the cluster id once, when the first leader is elected.
pub struct ClusterIdentity {
    node: Arc<RaftNode>,
}

impl ClusterIdentity {
    /// The service, writing through `node`.
    pub fn new(node: Arc<RaftNode>) -> Self {
        ClusterIdentity { node }
    }
}

impl LeaderService for ClusterIdentity {
    fn name(&self) -> &'static str {
        "cluster identity"
    }

    fn run(&self, _term: u64) -> ServiceFuture {
        let node = self.node.clone();
        Box::pin(async move {
            while node.state().read(|a| a.state.cluster_id().is_none()) {
                let id = state::runtime::uuid_v4().to_string();
                match node.write(Command::InitCluster { cluster_id: id }).await {
                    Ok(Response::ClusterId { cluster_id }) => {
                        tracing::info!(cluster_id, "cluster id fixed");
                    }
                    Ok(other) => tracing::warn!(?other, "unexpected answer to InitCluster"),
                    Err(e) => {
                        tracing::warn!(error = ?e.body, "cannot fix the cluster id yet");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
            }
        })
    }
}

/// Watches Raft and starts or stops the leader-only services. Returns when Raft stops: with
/// the reason the master must exit for, or `None` when this process asked Raft to stop (the
/// caller then decides how it ends).
pub async fn supervise(
    node: Arc<RaftNode>,
    services: Vec<Arc<dyn LeaderService>>,
) -> Option<ExitReason> {
    let mut metrics = node.raft().metrics();
    let mut running: Option<(u64, Vec<JoinHandle<()>>)> = None;
    let mut last_leader = None;
    loop {
        let (state, term, leader, stopped) = {
            let m = metrics.borrow_and_update();
            (
                m.state,
                m.current_term,
                m.current_leader,
                m.running_state.clone(),
            )
        };
        if let Err(openraft::error::Fatal::Stopped) = stopped {
            // A shutdown this process asked for (SIGTERM, Ctrl-C): startup decides the exit.
            abort_all(running.take());
            return None;
        }
        if let Err(fatal) = stopped {
            abort_all(running.take());
            return Some(ExitReason::RaftFailed {
                id: node.config().id,
                reason: fatal.to_string(),
            });
        }
        if leader != last_leader {
            if last_leader.is_some() || leader.is_some() {
                node.metrics().leader_changed();
            }
            tracing::info!(?leader, term, "leader changed");
            last_leader = leader;
        }
        let leading = state == ServerState::Leader;
        match (&running, leading) {
            (Some((t, _)), true) if *t == term => {}
            (Some(_), _) => {
                let t = abort_all(running.take());
                tracing::info!(term = t, "leadership lost: leader-only services stopped");
                if node.config().exit_on_leadership_loss {
                    return Some(ExitReason::LeadershipLost {
                        id: node.config().id,
                        term: t,
                    });
                }
                continue;
            }
            (None, true) => {
                tracing::info!(term, "elected leader: starting leader-only services");
                let tasks = services
                    .iter()
                    .map(|s| {
                        tracing::debug!(service = s.name(), "starting");
                        tokio::spawn(s.run(term))
                    })
                    .collect();
                running = Some((term, tasks));
            }
            (None, false) => {}
        }
        if metrics.changed().await.is_err() {
            abort_all(running.take());
            return None;
        }
    }
}

/// Aborts the leader-only tasks of a term; returns that term (0 when none ran).
fn abort_all(running: Option<(u64, Vec<JoinHandle<()>>)>) -> u64 {
    let (term, tasks) = running.unwrap_or_default();
    for task in tasks {
        task.abort();
    }
    term
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reasons_keep_the_codes_and_messages_operators_rely_on() {
        let raft = ExitReason::RaftFailed {
            id: 2,
            reason: "storage error".into(),
        };
        let lost = ExitReason::LeadershipLost { id: 3, term: 7 };
        assert_eq!(
            (
                ExitReason::Requested.exit_code(),
                raft.exit_code(),
                lost.exit_code()
            ),
            (0, 1, 103)
        );
        assert_eq!(
            raft.to_string(),
            "drover master 2: Raft stopped: storage error. Exiting."
        );
        assert_eq!(
            lost.to_string(),
            "drover master 3: lost leadership of term 7; exiting with code 103 (--exit-on-leadership-loss)"
        );
    }
}
