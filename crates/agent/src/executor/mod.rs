//! Executors: what runs a task, behind the [`Executor`] trait. A plain process
//! ([`process`]), a Docker container ([`docker`], behind the cargo feature of that name), or
//! nothing at all ([`fake`]: tasks that start, run and end when a test says so).
//!
//! The runner owns a task's life (sandbox, checkpoints, health checks, status updates); an
//! executor only starts it, finds it again after a restart, and hands back a
//! [`RunningTask`] to wait for, signal and clean up after.

pub mod fake;
pub mod pod;
pub mod process;

#[cfg(feature = "docker")]
pub mod docker;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use domain::AppDefinition;
use domain::app::ContainerType;
use state::Condition;
use state::protocol::{ContainerEnd, TaskAssignment};

use crate::checkpoint::Checkpoint;
use crate::procfs::ProcessIdentity;

pub use fake::FakeExecutor;
pub use process::{ProcessExecutor, ProcessTask};

/// A boxed future that can move between threads (what the object-safe traits here return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

impl Exit {
    /// The terminal condition of a task (or a pod's container) that ended so, and why: a
    /// kill asked for is `Killed`, exit 0 `Finished`, anything else `Failed`.
    pub fn outcome(&self, kill_requested: bool) -> (Condition, String) {
        match self {
            Exit::Unknown(_) if kill_requested => (Condition::Killed, "killed on request".into()),
            _ if kill_requested => (Condition::Killed, format!("killed on request; it {self}")),
            Exit::Code(0) => (Condition::Finished, self.to_string()),
            Exit::Code(_) | Exit::Signal(_) => (Condition::Failed, self.to_string()),
            Exit::Unknown(why) => (Condition::Failed, why.clone()),
        }
    }

    /// The exit code, when it exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(*c),
            _ => None,
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

/// Where a started task can be found again after an agent restart; the runner writes it
/// into the task's checkpoint before the task's command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    /// A process group on this host.
    Process(ProcessIdentity),
    /// A Docker container of this name.
    Container(String),
    /// The process groups of a pod's containers, in the pod's container order.
    Pod(Vec<ProcessIdentity>),
}

/// What starting a task needs.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// The assignment (app definition, ports, instance id).
    pub assignment: &'a TaskAssignment,
    /// The task's sandbox (it exists).
    pub sandbox: &'a Path,
    /// The task's whole environment.
    pub env: &'a BTreeMap<String, String>,
}

/// Records a task's [`Locator`] durably; `Err` carries the message to report (the task must
/// then not run).
pub type Record<'a> = &'a mut (dyn FnMut(Locator) -> Result<(), String> + Send);

/// Why a task did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// Its locator could not be recorded, so it was not started (reported `failed`).
    Unrecorded(String),
    /// The executor could not start it (reported `error`).
    Failed(String),
}

/// A started task, whatever runs it.
pub trait RunningTask: Send + Sync + fmt::Debug {
    /// Waits until the task ends. Cancel-safe: dropping the future leaves the task alone.
    fn wait(&mut self) -> BoxFuture<'_, Exit>;

    /// Sends a stop signal to the whole task (its process group, or its container).
    fn signal(&self, signal: StopSignal) -> BoxFuture<'_, ()>;

    /// Cleans up after the task ended: stray processes of its group, its container.
    fn clean_up(&self) -> BoxFuture<'_, ()>;

    /// How each container of a pod instance ended, once [`RunningTask::clean_up`] is done;
    /// empty for a task that is not a pod's.
    fn containers(&self) -> Vec<ContainerEnd> {
        Vec::new()
    }
}

impl dyn RunningTask {
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

/// A task being started: the running task, or why it did not start.
pub type Starting<'a> = BoxFuture<'a, Result<Box<dyn RunningTask>, StartError>>;

/// A task being looked for after a restart: found (and watched again), or gone.
pub type Recovering<'a> = BoxFuture<'a, Option<Box<dyn RunningTask>>>;

/// What starts tasks of one kind, and finds them again after an agent restart.
pub trait Executor: Send + Sync + fmt::Debug {
    /// Starts a task. An executor whose tasks survive the agent calls `record` with the
    /// task's [`Locator`] before the task's command runs, and does not run it when
    /// recording fails.
    fn start<'a>(&'a self, launch: Launch<'a>, record: Record<'a>) -> Starting<'a>;

    /// Takes over a task an earlier agent process started from its checkpoint, if it is
    /// still there.
    fn recover<'a>(&'a self, checkpoint: &'a Checkpoint) -> Recovering<'a>;
}

/// The executors of an agent, and which one runs which app.
#[derive(Debug, Clone)]
pub struct Executors {
    process: Arc<dyn Executor>,
    container: Arc<dyn Executor>,
}

impl Executors {
    /// This host's: apps as processes, Docker apps through `containers` (which may say
    /// why it cannot run them).
    pub fn host(containers: ContainerRuntime) -> Self {
        Executors {
            process: Arc::new(ProcessExecutor),
            container: Arc::new(containers),
        }
    }

    /// One executor for every app (e.g. a [`FakeExecutor`]).
    pub fn only(executor: Arc<dyn Executor>) -> Self {
        Executors {
            process: executor.clone(),
            container: executor,
        }
    }

    /// The executor that runs `app`.
    pub fn for_app(&self, app: &AppDefinition) -> &dyn Executor {
        let is_docker = app
            .container
            .as_ref()
            .is_some_and(|c| c.kind == ContainerType::Docker);
        if is_docker {
            self.container.as_ref()
        } else {
            self.process.as_ref()
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
}

impl Executor for ContainerRuntime {
    fn start<'a>(&'a self, launch: Launch<'a>, record: Record<'a>) -> Starting<'a> {
        Box::pin(async move {
            #[cfg(feature = "docker")]
            if let Some(engine) = &self.engine {
                // The name is known before the container exists: a restart looks for it.
                record(Locator::Container(docker::container_name(
                    &launch.assignment.instance_id,
                )))
                .map_err(StartError::Unrecorded)?;
                return engine
                    .launch(launch.assignment, launch.sandbox, launch.env)
                    .await
                    .map(|c| Box::new(c) as Box<dyn RunningTask>)
                    .map_err(StartError::Failed);
            }
            let _ = (launch, record);
            Err(StartError::Failed(format!(
                "{NO_DOCKER}: {}",
                self.unavailable
            )))
        })
    }

    fn recover<'a>(&'a self, checkpoint: &'a Checkpoint) -> Recovering<'a> {
        Box::pin(async move {
            #[cfg(feature = "docker")]
            if let (Some(engine), Some(name)) = (&self.engine, &checkpoint.container) {
                return engine
                    .adopt(name)
                    .await
                    .map(|c| Box::new(c) as Box<dyn RunningTask>);
            }
            let _ = checkpoint;
            None
        })
    }
}
