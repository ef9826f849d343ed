//! Leader-only services: started when this master is elected, torn down the moment it is not.
//!
//! The scheduler, agent liveness and health aggregation plug in here as [`LeaderService`]s.
//! Each runs as one task per term; losing leadership aborts the tasks at once, so nothing a
//! deposed leader started keeps writing (and its writes would fail anyway: Raft refuses them).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use openraft::ServerState;
use state::{Command, Response};
use tokio::task::JoinHandle;

use crate::node::Master;

/// Exit code when `--exit-on-leadership-loss` is set and leadership is lost (as Marathon).
pub const EXIT_LEADERSHIP_LOST: i32 = 103;

/// A boxed future, as services return.
pub type ServiceFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Work only the leader does.
pub trait LeaderService: Send + Sync + 'static {
    /// Short name, for logs.
    fn name(&self) -> &'static str;
    /// Runs for as long as this master leads in `term`; it is aborted when that ends.
    fn run(&self, master: Arc<Master>, term: u64) -> ServiceFuture;
}

/// Fixes the cluster id once, when the first leader is elected.
pub struct ClusterIdentity;

impl LeaderService for ClusterIdentity {
    fn name(&self) -> &'static str {
        "cluster identity"
    }

    fn run(&self, master: Arc<Master>, _term: u64) -> ServiceFuture {
        Box::pin(async move {
            while master.state.read(|a| a.state.cluster_id().is_none()) {
                let id = uuid::Uuid::new_v4().to_string();
                match master.write(Command::InitCluster { cluster_id: id }).await {
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

/// Watches Raft and starts or stops the leader-only services.
pub async fn supervise(master: Arc<Master>, services: Vec<Arc<dyn LeaderService>>) {
    let mut metrics = master.raft.metrics();
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
            return;
        }
        if let Err(fatal) = stopped {
            eprintln!(
                "drover master {}: Raft stopped: {fatal}. Exiting.",
                master.config.id
            );
            std::process::exit(1);
        }
        if leader != last_leader {
            if last_leader.is_some() || leader.is_some() {
                master.metrics.leader_changed();
            }
            tracing::info!(?leader, term, "leader changed");
            last_leader = leader;
        }
        let leading = state == ServerState::Leader;
        match (&running, leading) {
            (Some((t, _)), true) if *t == term => {}
            (Some(_), _) => {
                let (t, tasks) = running.take().unwrap_or_default();
                for task in tasks {
                    task.abort();
                }
                tracing::info!(term = t, "leadership lost: leader-only services stopped");
                if master.config.exit_on_leadership_loss {
                    eprintln!(
                        "drover master {}: lost leadership of term {t}; exiting with code {EXIT_LEADERSHIP_LOST} (--exit-on-leadership-loss)",
                        master.config.id
                    );
                    std::process::exit(EXIT_LEADERSHIP_LOST);
                }
                continue;
            }
            (None, true) => {
                tracing::info!(term, "elected leader: starting leader-only services");
                let tasks = services
                    .iter()
                    .map(|s| {
                        tracing::debug!(service = s.name(), "starting");
                        tokio::spawn(s.run(master.clone(), term))
                    })
                    .collect();
                running = Some((term, tasks));
            }
            (None, false) => {}
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
