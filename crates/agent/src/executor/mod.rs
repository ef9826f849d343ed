//! Executors: what runs a task. A plain process (`process`), or a Docker container
//! (`docker`, behind the cargo feature of that name).

pub mod process;

#[cfg(feature = "docker")]
pub mod docker;

use std::fmt;
use std::time::Duration;

pub use process::ProcessTask;

/// How a task's process or container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// It is gone, and how it ended cannot be known (it was found again after an agent
    /// restart, so the agent is not its parent and cannot read its exit status).
    Unknown(String),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with code {c}"),
            Exit::Signal(s) => match nix::sys::signal::Signal::try_from(*s) {
                Ok(sig) => write!(f, "was ended by signal {sig} ({s})"),
                Err(_) => write!(f, "was ended by signal {s}"),
            },
            Exit::Unknown(why) => f.write_str(why),
        }
    }
}

/// The signals a stop sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Ask the task to stop (SIGTERM).
    Term,
    /// Make it stop (SIGKILL).
    Kill,
}

/// A started task, whatever runs it.
#[derive(Debug)]
pub enum Workload {
    /// A process group on this host.
    Process(ProcessTask),
    /// A Docker container.
    #[cfg(feature = "docker")]
    Container(docker::ContainerTask),
}

impl Workload {
    /// Waits until the task ends. Cancel-safe: dropping the future leaves the task alone.
    pub async fn wait(&mut self) -> Exit {
        match self {
            Workload::Process(p) => p.wait().await,
            #[cfg(feature = "docker")]
            Workload::Container(c) => c.wait().await,
        }
    }

    /// Sends a stop signal to the whole task (its process group, or its container).
    pub async fn signal(&self, signal: StopSignal) {
        match self {
            Workload::Process(p) => p.signal(signal),
            #[cfg(feature = "docker")]
            Workload::Container(c) => c.signal(signal).await,
        }
    }

    /// Cleans up after the task ended: stray processes of its group, its container.
    pub async fn clean_up(&self) {
        match self {
            Workload::Process(p) => p.signal(StopSignal::Kill),
            #[cfg(feature = "docker")]
            Workload::Container(c) => c.clean_up().await,
        }
    }

    /// Stops the task: SIGTERM, then SIGKILL once `grace` has passed. Returns how it ended.
    pub async fn stop(&mut self, grace: Duration) -> Exit {
        self.signal(StopSignal::Term).await;
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(exit) => exit,
            Err(_) => {
                self.signal(StopSignal::Kill).await;
                self.wait().await
            }
        }
    }
}

/// The start of every message about a Docker app this agent cannot run.
pub const NO_DOCKER: &str = "this agent cannot run Docker containers";

/// Docker on this agent: an engine to talk to, or the reason there is none.
#[derive(Debug, Clone)]
pub struct ContainerRuntime {
    #[cfg(feature = "docker")]
    engine: Option<docker::Engine>,
    unavailable: String,
}

impl ContainerRuntime {
    /// No container support, for `reason`.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        ContainerRuntime {
            #[cfg(feature = "docker")]
            engine: None,
            unavailable: reason.into(),
        }
    }

    /// Looks for a Docker engine (the local socket, or `DOCKER_HOST`).
    pub async fn detect() -> Self {
        #[cfg(feature = "docker")]
        {
            match docker::Engine::connect().await {
                Ok(engine) => ContainerRuntime {
                    engine: Some(engine),
                    unavailable: String::new(),
                },
                Err(reason) => Self::unavailable(reason),
            }
        }
        #[cfg(not(feature = "docker"))]
        {
            Self::unavailable("drover was built without Docker support (cargo feature `docker`)")
        }
    }

    /// True when Docker apps can run here.
    pub fn is_available(&self) -> bool {
        #[cfg(feature = "docker")]
        {
            self.engine.is_some()
        }
        #[cfg(not(feature = "docker"))]
        {
            false
        }
    }

    /// Why Docker apps cannot run here (empty when they can).
    pub fn unavailable_reason(&self) -> &str {
        &self.unavailable
    }

    /// Starts a Docker task, or says why this agent cannot.
    pub async fn launch(
        &self,
        assignment: &state::protocol::TaskAssignment,
        sandbox: &std::path::Path,
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<Workload, String> {
        #[cfg(feature = "docker")]
        if let Some(engine) = &self.engine {
            return engine
                .launch(assignment, sandbox, env)
                .await
                .map(Workload::Container);
        }
        let _ = (assignment, sandbox, env);
        Err(format!("{NO_DOCKER}: {}", self.unavailable))
    }

    /// Takes over a container an earlier agent process started, if it still runs.
    pub async fn adopt(&self, name: &str) -> Option<Workload> {
        #[cfg(feature = "docker")]
        if let Some(engine) = &self.engine {
            return engine.adopt(name).await.map(Workload::Container);
        }
        let _ = name;
        None
    }
}
