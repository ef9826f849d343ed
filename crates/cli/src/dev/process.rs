//! The masters and agents a dev cluster runs, as child processes that cannot outlive it:
//! each leads its own process group (a closed terminal's SIGHUP reaches dev alone, which then
//! stops them in order) and gets SIGTERM from the kernel when dev dies, however it dies
//! (`PR_SET_PDEATHSIG`; see docs/decisions.md, "drover dev cleans up").

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use agent::checkpoint::Checkpoints;
use agent::procfs;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How long agents may take to stop after SIGTERM: their tasks' kill grace period (3 s
/// unless an app sets `taskKillGracePeriodSeconds`) and a last status report (2 s at most).
const AGENT_STOP: Duration = Duration::from_secs(15);

/// How long masters may take to stop after SIGTERM.
const MASTER_STOP: Duration = Duration::from_secs(10);

/// What a process is to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A `drover master`.
    Master,
    /// A `drover agent`.
    Agent,
}

/// One process the dev cluster started.
pub struct Process {
    /// `master-1`, `agent-local-a-1`, …
    pub name: String,
    /// Master or agent.
    pub role: Role,
    child: Child,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// How it ended, once it did.
    pub exited: Option<ExitStatus>,
    /// Program and arguments, to start it again.
    command: (PathBuf, Vec<OsString>),
    /// A file whose appearance asks drover dev to start the process again.
    restart_marker: PathBuf,
}

impl Process {
    /// Starts `cmd` as `name`, its output in `logs/<name>.log` (truncated), and writes the
    /// script that asks dev to start it again.
    pub fn spawn(cmd: Command, name: &str, role: Role, logs: &Path) -> Result<Self, String> {
        let std_cmd = cmd.as_std();
        let command = (
            PathBuf::from(std_cmd.get_program()),
            std_cmd.get_args().map(|a| a.to_os_string()).collect(),
        );
        let restart_marker = logs.join(format!("{name}.restart"));
        // Asking drover dev (not the shell) to start it again keeps it supervised: Ctrl-C
        // stops it like the rest.
        let script = logs.join(format!("{name}.restart.sh"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# Asks drover dev to start {name} again (after you killed it).\ntouch '{}'\n",
                restart_marker.display()
            ),
        )
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        start(name, role, command, restart_marker, logs, false)
    }

    /// Its pid, while it has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Notes (and returns) its exit status if it has ended since the last look.
    pub fn check_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exited = Some(status);
            return Some(status);
        }
        None
    }

    /// Starts it again when its restart script asked for it; says what happened.
    pub fn restart_if_asked(&mut self) -> Option<String> {
        if !self.restart_marker.exists() {
            return None;
        }
        let _ = std::fs::remove_file(&self.restart_marker);
        if self.exited.is_none() {
            return Some(format!("{} is still running; kill it first", self.name));
        }
        let logs = self.log.parent().map(Path::to_path_buf).unwrap_or_default();
        Some(
            match start(
                &self.name,
                self.role,
                self.command.clone(),
                self.restart_marker.clone(),
                &logs,
                true,
            ) {
                Ok(again) => {
                    *self = again;
                    format!(
                        "{} started again (pid {})",
                        self.name,
                        self.pid().unwrap_or(0)
                    )
                }
                Err(e) => format!("cannot start {} again: {e}", self.name),
            },
        )
    }
}

fn start(
    name: &str,
    role: Role,
    command: (PathBuf, Vec<OsString>),
    restart_marker: PathBuf,
    logs: &Path,
    append: bool,
) -> Result<Process, String> {
    let log = logs.join(format!("{name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(&log)
        .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let dev = std::process::id();
    let mut cmd = Command::new(&command.0);
    cmd.args(&command.1)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .process_group(0);
    // SAFETY: the closure makes two system calls and builds an error from a constant; it
    // neither allocates nor takes locks, as is required between fork and exec.
    unsafe {
        cmd.pre_exec(move || die_with(dev));
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    Ok(Process {
        name: name.to_string(),
        role,
        child,
        log,
        exited: None,
        command,
        restart_marker,
    })
}

/// In the child, before exec: SIGTERM when drover dev dies. The kernel sends it when the
/// *thread* that forked exits, so dev starts every process from its main thread (a
/// current-thread runtime), which lives as long as dev. Dev may have died before the
/// request took effect: then the child refuses to start.
fn die_with(dev: u32) -> std::io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
    if u32::try_from(nix::unistd::getppid().as_raw()).ok() != Some(dev) {
        return Err(nix::errno::Errno::ESRCH.into());
    }
    Ok(())
}

/// Stops the agents (which stop their tasks), then the masters: SIGTERM, and SIGKILL to any
/// that has not exited in time. Returns the names of those that needed SIGKILL.
pub async fn stop_all(procs: &mut [Process]) -> Vec<String> {
    let mut killed = stop(procs, Role::Agent, AGENT_STOP).await;
    killed.extend(stop(procs, Role::Master, MASTER_STOP).await);
    killed
}

async fn stop(procs: &mut [Process], role: Role, within: Duration) -> Vec<String> {
    let running = |p: &&mut Process| p.role == role && p.exited.is_none();
    for p in procs.iter_mut().filter(running) {
        if let Some(pid) = p.pid().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    let deadline = tokio::time::Instant::now() + within;
    let mut killed = Vec::new();
    for p in procs.iter_mut().filter(running) {
        match tokio::time::timeout_at(deadline, p.child.wait()).await {
            Ok(status) => p.exited = status.ok(),
            Err(_) => {
                let _ = p.child.kill().await;
                p.exited = p.child.try_wait().ok().flatten();
                killed.push(p.name.clone());
            }
        }
    }
    killed
}

/// The backstop for tasks whose agent could not stop them (it was killed, or did not stop
/// in time): each task leads its own process group, whose id is the pid the agent
/// checkpointed.
pub fn kill_tasks(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for tasks_dir in entries
        .flatten()
        .map(|e| e.path().join("tasks"))
        .filter(|p| p.is_dir())
    {
        let Ok(checkpoints) = Checkpoints::new(tasks_dir).load_all() else {
            continue;
        };
        for process in checkpoints
            .into_iter()
            .flatten()
            .filter_map(|cp| cp.process)
        {
            let pgid = i32::try_from(process.pid).ok().filter(|p| *p > 1);
            if let Some(pgid) = pgid
                && procfs::is_running(process)
            {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
        }
    }
}
