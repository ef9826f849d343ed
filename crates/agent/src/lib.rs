//! drover's agent: it registers with the masters, heartbeats, long-polls its assignments,
//! runs them as processes (or Docker containers), checks their health, reports status
//! changes, and keeps its tasks running through any master outage and its own restarts.
//!
//! - [`run`]: the agent, from an [`AgentConfig`] to its end.
//! - [`client`]: the agent side of the master protocol (`state::protocol`).
//! - [`supervisor`] and [`executor`]: the task table and what runs tasks.
//! - [`health`]: Marathon's health checks.
//! - [`checkpoint`] and [`work_dir`]: what survives a restart; [`retention`]: what does
//!   not stay forever.

pub mod backoff;
pub mod checkpoint;
pub mod client;
pub mod clock;
pub mod config;
pub mod env;
pub mod executor;
pub mod health;
pub mod machine;
pub mod outbox;
pub mod procfs;
pub mod readiness;
pub mod retention;
mod runner;
mod session;
pub mod status_api;
pub mod supervisor;
pub mod vip;
pub mod work_dir;

pub use config::{AgentConfig, TaskExecution, TaskState, TasksOnExit, Timings, parse_masters};
pub use executor::NO_DOCKER;
pub use retention::Retention;
pub use runner::{DEFAULT_KILL_GRACE, terminal_status};
pub use session::{AgentError, run};

/// Completes on Ctrl-C or SIGTERM: the usual way to stop an agent (its tasks keep running).
/// Handlers are installed when it is first polled; [`StopSignals`] installs them at once.
pub async fn shutdown_signal() {
    match StopSignals::install() {
        Ok(signals) => signals.wait().await,
        Err(_) => std::future::pending::<()>().await,
    }
}

/// SIGTERM and SIGINT, caught from the moment this is made (so a signal during start-up
/// stops the agent cleanly, exit 0, instead of killing it).
#[derive(Debug)]
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers; must run inside a tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// True when a stop signal arrived already (does not wait).
    pub fn received(&mut self) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        self.term.poll_recv(&mut cx).is_ready() || self.int.poll_recv(&mut cx).is_ready()
    }

    /// Completes when a stop signal arrives.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
