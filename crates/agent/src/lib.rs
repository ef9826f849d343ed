//! drover's agent: it registers with the masters, heartbeats, long-polls its assignments,
//! runs them as processes (or Docker containers), checks their health, reports status
//! changes, and keeps its tasks running through any master outage and its own restarts.
//!
//! - [`run`]: the agent, from an [`AgentConfig`] to its end.
//! - [`client`]: the agent side of the master protocol (`state::protocol`).
//! - [`supervisor`] and [`executor`]: the task table and what runs tasks.
//! - [`health`]: Marathon's health checks.
//! - [`checkpoint`] and [`work_dir`]: what survives a restart.

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
mod runner;
mod session;
pub mod status_api;
pub mod supervisor;
pub mod work_dir;

pub use config::{AgentConfig, Timings, parse_masters};
pub use executor::NO_DOCKER;
pub use runner::{DEFAULT_KILL_GRACE, terminal_status};
pub use session::{AgentError, run};

/// Completes on Ctrl-C or SIGTERM: the usual way to stop an agent (its tasks keep running).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
