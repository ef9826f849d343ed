//! The process executor: a task is a process group on this host, started in its sandbox
//! with `/bin/sh -c cmd` (or `args` directly), stdout and stderr written to files there.
//!
//! A new task is held by a small gate shell until the agent has checkpointed its pid: a task
//! whose checkpoint cannot be written (a full disk) never runs, and one the agent dies
//! before checkpointing ends unrun instead of becoming an orphan no restart would find.
//!
//! Tasks lead their own process group, so a signal meant for the agent (Ctrl-C in its
//! terminal, a supervisor's SIGTERM) never reaches them, and a stop reaches everything the
//! task started. The agent never kills tasks when it exits: a restarted agent finds them
//! again by their checkpointed pid and start time.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use state::protocol::TaskAssignment;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin};

use super::{
    BoxFuture, Executor, Exit, Launch, Locator, Record, Recovering, RunningTask, StartError,
    Starting, StopSignal,
};
use crate::checkpoint::Checkpoint;
use crate::procfs::{self, ProcessIdentity};

/// How often a task found again after a restart is checked for exit.
pub const ADOPTED_POLL: Duration = Duration::from_millis(250);

/// A task's process group.
#[derive(Debug)]
pub struct ProcessTask {
    identity: ProcessIdentity,
    /// Set when this agent process started the task (it can read the exit status).
    child: Option<Child>,
    /// Set once the process has been waited for (its pid may be reused after that).
    exited: bool,
}

/// The shell that holds a new task until its checkpoint is durable: it waits for one line
/// `go` on stdin, then execs the task's command with stdin from `/dev/null`. The pid (and
/// its start time) stay the same across the exec, so the checkpoint written while it waits
/// names the task's process. Anything but `go` (EOF: the agent died first) ends it unrun.
const GATE: &str = "IFS= read -r gate && [ \"$gate\" = go ] || exit 125; exec \"$@\" </dev/null";

/// `$0` of the gate shell (shown by `ps` until the command runs).
const GATE_NAME: &str = "drover-task-gate";

/// A task's process, started and held before its command runs (see [`spawn`]): the caller
/// checkpoints [`HeldTask::identity`], then calls [`HeldTask::release`], or
/// [`HeldTask::abandon`] when the checkpoint cannot be written.
#[derive(Debug)]
pub struct HeldTask {
    task: ProcessTask,
    gate: ChildStdin,
}

impl HeldTask {
    /// The process's identity, for the checkpoint.
    pub fn identity(&self) -> ProcessIdentity {
        self.task.identity
    }

    /// Lets the task's command run.
    pub async fn release(mut self) -> ProcessTask {
        // A failed write means the gate shell is gone: waiting on the task reports its exit.
        let _ = self.gate.write_all(b"go\n").await;
        let _ = self.gate.flush().await;
        drop(self.gate);
        self.task
    }

    /// Kills the held process (its command never ran) and reaps it.
    pub async fn abandon(mut self) {
        drop(self.gate);
        self.task.signal(StopSignal::Kill);
        self.task.wait().await;
    }
}

/// Runs tasks as process groups on this host ([`spawn`], held until their identity is
/// recorded, then released).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessExecutor;

impl Executor for ProcessExecutor {
    fn start<'a>(&'a self, launch: Launch<'a>, record: Record<'a>) -> Starting<'a> {
        if launch.assignment.app.pod.is_some() {
            return super::pod::start(launch, record);
        }
        Box::pin(async move {
            let held =
                spawn(launch.assignment, launch.sandbox, launch.env).map_err(StartError::Failed)?;
            if let Err(message) = record(Locator::Process(held.identity())) {
                // Its command has not run: without the pid on disk a restarted agent could
                // not find it, so it never does.
                held.abandon().await;
                return Err(StartError::Unrecorded(message));
            }
            Ok(Box::new(held.release().await) as Box<dyn RunningTask>)
        })
    }

    fn recover<'a>(&'a self, checkpoint: &'a Checkpoint) -> Recovering<'a> {
        if !checkpoint.pod_processes.is_empty() {
            return super::pod::recover(checkpoint);
        }
        let task = checkpoint
            .process
            .and_then(ProcessTask::adopt)
            .map(|t| Box::new(t) as Box<dyn RunningTask>);
        Box::pin(std::future::ready(task))
    }
}

impl RunningTask for ProcessTask {
    fn wait(&mut self) -> BoxFuture<'_, Exit> {
        Box::pin(ProcessTask::wait(self))
    }

    fn signal(&self, signal: StopSignal) -> BoxFuture<'_, ()> {
        ProcessTask::signal(self, signal);
        Box::pin(std::future::ready(()))
    }

    fn clean_up(&self) -> BoxFuture<'_, ()> {
        ProcessTask::signal(self, StopSignal::Kill);
        Box::pin(std::future::ready(()))
    }
}

/// Finds `program` as `execvp` would with `PATH` `path`: a name with a `/` is taken as is.
fn find_program(program: &str, path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return runnable(&p).then_some(p);
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| runnable(p))
}

/// Starts a task's process in `sandbox` with exactly the environment `env`, held before its
/// command runs: nothing of the task runs until [`HeldTask::release`].
pub fn spawn(
    assignment: &TaskAssignment,
    sandbox: &Path,
    env: &BTreeMap<String, String>,
) -> Result<HeldTask, String> {
    let app = &assignment.app;
    let argv = argv_of(app, env)?;
    spawn_argv(&argv, sandbox, env, &Logs::task())
}

/// The command line of an app's task.
fn argv_of(
    app: &domain::AppDefinition,
    env: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    Ok(match (&app.cmd, &app.args) {
        (Some(cmd), _) => vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
        (None, Some(args)) if !args.is_empty() => {
            let path = env.get("PATH").map_or("", String::as_str);
            if find_program(&args[0], path).is_none() {
                return Err(format!(
                    "cannot start `{}`: no such executable file (PATH is {path})",
                    args[0]
                ));
            }
            args.clone()
        }
        _ => return Err("the app has neither cmd nor args to run".to_string()),
    })
}

/// The files in the sandbox a process's output goes to (appended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logs {
    /// The file standard output goes to.
    pub stdout: String,
    /// The file standard error goes to.
    pub stderr: String,
}

impl Logs {
    /// A task's: `stdout` and `stderr`.
    pub fn task() -> Self {
        Logs {
            stdout: "stdout".into(),
            stderr: "stderr".into(),
        }
    }

    /// A pod container's, named after it: `<name>.stdout` and `<name>.stderr` (container
    /// names are lower-case letters, digits and dashes, so they are safe file names).
    pub fn container(name: &str) -> Self {
        Logs {
            stdout: format!("{name}.stdout"),
            stderr: format!("{name}.stderr"),
        }
    }
}

/// Starts `argv` as a held process group in `sandbox` with exactly the environment `env`,
/// its output appended to `logs` (see [`spawn`]).
pub fn spawn_argv(
    argv: &[String],
    sandbox: &Path,
    env: &BTreeMap<String, String>,
    logs: &Logs,
) -> Result<HeldTask, String> {
    // The gate shell adds PWD to what it passes on; a task gets only `env`.
    let script = if env.contains_key("PWD") {
        GATE.to_string()
    } else {
        format!("unset PWD; {GATE}")
    };
    let mut command = tokio::process::Command::new("/bin/sh");
    command.arg("-c").arg(script).arg(GATE_NAME).args(argv);
    let open = |name: &str| {
        let path = sandbox.join(name);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))
    };
    command
        .env_clear()
        .envs(env)
        .current_dir(sandbox)
        .stdin(Stdio::piped())
        .stdout(open(&logs.stdout)?)
        .stderr(open(&logs.stderr)?)
        .process_group(0)
        .kill_on_drop(false);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start /bin/sh: {e}"))?;
    let gate = child
        .stdin
        .take()
        .ok_or_else(|| "the new process has no stdin to release it by".to_string())?;
    let pid = child
        .id()
        .ok_or_else(|| "the process exited before its pid was known".to_string())?;
    let mut task = ProcessTask {
        identity: ProcessIdentity { pid, start_time: 0 },
        child: Some(child),
        exited: false,
    };
    // A process that already exited is a zombie until waited for: its stat is still there.
    match procfs::stat(pid) {
        Some(st) => task.identity.start_time = st.start_time,
        None => {
            task.signal(StopSignal::Kill);
            return Err(format!("cannot read /proc/{pid}/stat of the new process"));
        }
    }
    Ok(HeldTask { task, gate })
}

impl ProcessTask {
    /// Takes over a task an earlier agent process started, if it is still running.
    pub fn adopt(identity: ProcessIdentity) -> Option<Self> {
        procfs::is_running(identity).then_some(ProcessTask {
            identity,
            child: None,
            exited: false,
        })
    }

    /// The process's identity, for the checkpoint.
    pub fn identity(&self) -> ProcessIdentity {
        self.identity
    }

    /// Waits for the group leader to exit.
    pub async fn wait(&mut self) -> Exit {
        let exit = match self.child.as_mut() {
            Some(child) => match child.wait().await {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    match (status.code(), status.signal()) {
                        (Some(code), _) => Exit::Code(code),
                        (None, Some(sig)) => Exit::Signal(sig),
                        (None, None) => Exit::Unknown(format!("ended ({status})")),
                    }
                }
                Err(e) => Exit::Unknown(format!("cannot be waited for: {e}")),
            },
            None => {
                while procfs::is_running(self.identity) {
                    tokio::time::sleep(ADOPTED_POLL).await;
                }
                Exit::Unknown(
                    "exited after an agent restart; the restarted agent is not its parent, so its exit code is unknown"
                        .to_string(),
                )
            }
        };
        self.exited = true;
        exit
    }

    /// Signals the task's process group. Before the leader exits, an adopted task is checked
    /// to still be the same process, so a reused pid is never signalled.
    pub fn signal(&self, signal: StopSignal) {
        if !self.exited && self.child.is_none() && !procfs::is_running(self.identity) {
            return;
        }
        let Ok(pid) = i32::try_from(self.identity.pid) else {
            return;
        };
        let sig = match signal {
            StopSignal::Term => Signal::SIGTERM,
            StopSignal::Kill => Signal::SIGKILL,
        };
        // ESRCH: the group is already empty.
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}
