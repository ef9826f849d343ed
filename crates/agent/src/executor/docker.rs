//! The Docker executor (cargo feature `docker`): a `container.type: DOCKER` task is a
//! container named `drover-<instance id>`, on the host network (it listens on its assigned
//! ports, `PORT0…`), with the sandbox mounted at `/mnt/mesos/sandbox` and its output copied
//! into the sandbox's `stdout` and `stderr`.
//!
//! `cmd` runs as `/bin/sh -c cmd` (the image's entrypoint is replaced, as Mesos does);
//! `args` are passed to the image's entrypoint; with neither, the image runs as built.
//! Stopping sends SIGTERM, then SIGKILL after the grace period, like the process executor.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use state::InstanceId;
use state::protocol::TaskAssignment;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use super::{BoxFuture, Exit, RunningTask, StopSignal};

/// Where the sandbox appears inside a container (`MESOS_SANDBOX`), as with Mesos.
pub const SANDBOX_IN_CONTAINER: &str = "/mnt/mesos/sandbox";

/// Label carrying the instance id on every container drover starts.
pub const INSTANCE_LABEL: &str = "drover.instance";

/// The container name of an instance.
pub fn container_name(id: &InstanceId) -> String {
    format!("drover-{id}")
}

/// A Docker engine that answered a ping.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects to the engine at `DOCKER_HOST` (default: the local socket) and pings it.
    pub async fn connect() -> Result<Self, String> {
        let endpoint = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        let docker = Docker::connect_with_defaults()
            .map_err(|e| format!("cannot use the Docker engine at {endpoint}: {e}"))?
            // Waits for a container last as long as the container: no request time limit.
            .with_timeout(Duration::from_secs(u64::from(u32::MAX)));
        match tokio::time::timeout(Duration::from_secs(3), docker.ping()).await {
            Ok(Ok(_)) => Ok(Engine { docker }),
            Ok(Err(e)) => Err(format!("no Docker engine answers at {endpoint}: {e}")),
            Err(_) => Err(format!(
                "the Docker engine at {endpoint} did not answer within 3s"
            )),
        }
    }

    /// Creates and starts an instance's container.
    pub async fn launch(
        &self,
        assignment: &TaskAssignment,
        sandbox: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<ContainerTask, String> {
        let app = &assignment.app;
        let image = app
            .container
            .as_ref()
            .and_then(|c| c.docker_image.clone())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| "the app's container has no docker.image".to_string())?;
        let name = container_name(&assignment.instance_id);
        // A container of that name can only be left from an attempt that crashed before
        // its checkpoint: it was never reported running, so it goes.
        let _ = self
            .docker
            .remove_container(
                &name,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;

        let mut env = env.clone();
        env.remove("PATH"); // the image's own PATH applies
        env.insert("MESOS_SANDBOX".into(), SANDBOX_IN_CONTAINER.into());
        let (entrypoint, cmd) = match (&app.cmd, &app.args) {
            (Some(cmd), _) => (
                Some(vec!["/bin/sh".to_string(), "-c".to_string()]),
                Some(vec![cmd.clone()]),
            ),
            (None, Some(args)) => (None, Some(args.clone())),
            (None, None) => (None, None),
        };
        let memory = (app.mem > 0.0).then_some((app.mem * 1024.0 * 1024.0) as i64);
        let cpu_shares = (app.cpus > 0.0).then(|| ((app.cpus * 1024.0) as i64).max(2));
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            entrypoint,
            cmd,
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(HashMap::from([(
                INSTANCE_LABEL.to_string(),
                assignment.instance_id.to_string(),
            )])),
            host_config: Some(HostConfig {
                network_mode: Some("host".into()),
                binds: Some(vec![format!(
                    "{}:{SANDBOX_IN_CONTAINER}",
                    sandbox.display()
                )]),
                memory,
                cpu_shares,
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = match self
            .docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                self.pull(&image).await?;
                self.docker.create_container(Some(options), body).await
            }
            other => other,
        };
        created.map_err(|e| format!("cannot create a container of {image}: {}", message(&e)))?;
        if let Err(e) = self.docker.start_container(&name, None).await {
            let _ = self
                .docker
                .remove_container(
                    &name,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
            return Err(format!(
                "cannot start the container of {image}: {}",
                message(&e)
            ));
        }
        Ok(ContainerTask::new(self.docker.clone(), name, sandbox, 0))
    }

    async fn pull(&self, image: &str) -> Result<(), String> {
        tracing::info!("pulling {image}");
        let options = CreateImageOptionsBuilder::new().from_image(image).build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            step.map_err(|e| {
                format!(
                    "image {image} is not here and cannot be pulled: {}",
                    message(&e)
                )
            })?;
        }
        Ok(())
    }

    /// Takes over a container an earlier agent process started (its output from now on is
    /// copied). An exited container is taken too: waiting for it gives its exit code at once.
    pub async fn adopt(&self, name: &str) -> Option<ContainerTask> {
        let info = self.docker.inspect_container(name, None).await.ok()?;
        let sandbox = info
            .mounts
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.destination.as_deref() == Some(SANDBOX_IN_CONTAINER))
            .and_then(|m| m.source)?;
        Some(ContainerTask::new(
            self.docker.clone(),
            name.to_string(),
            Path::new(&sandbox),
            now_secs(),
        ))
    }
}

/// A task's container.
#[derive(Debug)]
pub struct ContainerTask {
    docker: Docker,
    name: String,
    logs: Mutex<Option<JoinHandle<()>>>,
}

impl ContainerTask {
    /// Watches container `name`, copying its output from `since` (Unix seconds; 0: all).
    fn new(docker: Docker, name: String, sandbox: &Path, since: i64) -> Self {
        let logs = tokio::spawn(copy_logs(
            docker.clone(),
            name.clone(),
            sandbox.to_path_buf(),
            since,
        ));
        ContainerTask {
            docker,
            name,
            logs: Mutex::new(Some(logs)),
        }
    }

    /// The container's name, for the checkpoint.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until the container stops.
    pub async fn wait(&mut self) -> Exit {
        loop {
            let mut waiting = self.docker.wait_container(&self.name, None);
            match waiting.next().await {
                Some(Ok(r)) => return Exit::Code(clamp(r.status_code)),
                Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
                    return Exit::Code(clamp(code));
                }
                failed => {
                    // The engine restarted or the connection broke: look before waiting again.
                    let why = match failed {
                        Some(Err(e)) => message(&e),
                        _ => "the engine ended the wait".to_string(),
                    };
                    match self.docker.inspect_container(&self.name, None).await {
                        Ok(info) => {
                            let state = info.state.unwrap_or_default();
                            if state.running != Some(true) {
                                return match state.exit_code {
                                    Some(code) => Exit::Code(clamp(code)),
                                    None => Exit::Unknown(format!("the container stopped ({why})")),
                                };
                            }
                        }
                        Err(e) => {
                            return Exit::Unknown(format!(
                                "the container is gone: {}",
                                message(&e)
                            ));
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Sends SIGTERM or SIGKILL to the container's main process.
    pub async fn signal(&self, signal: StopSignal) {
        let name = match signal {
            StopSignal::Term => "SIGTERM",
            StopSignal::Kill => "SIGKILL",
        };
        let options = KillContainerOptionsBuilder::new().signal(name).build();
        if let Err(e) = self.docker.kill_container(&self.name, Some(options)).await {
            tracing::debug!("{name} to container {}: {}", self.name, message(&e));
        }
    }

    /// Removes the stopped container, once its output is copied into the sandbox.
    pub async fn clean_up(&self) {
        let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(logs) = logs {
            let _ = tokio::time::timeout(Duration::from_secs(5), logs).await;
        }
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        if let Err(e) = self
            .docker
            .remove_container(&self.name, Some(options))
            .await
        {
            tracing::warn!("cannot remove container {}: {}", self.name, message(&e));
        }
    }
}

impl RunningTask for ContainerTask {
    fn wait(&mut self) -> BoxFuture<'_, Exit> {
        Box::pin(ContainerTask::wait(self))
    }

    fn signal(&self, signal: StopSignal) -> BoxFuture<'_, ()> {
        Box::pin(ContainerTask::signal(self, signal))
    }

    fn clean_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(ContainerTask::clean_up(self))
    }
}

impl Drop for ContainerTask {
    fn drop(&mut self) {
        if let Some(logs) = self.logs.lock().unwrap_or_else(|p| p.into_inner()).take() {
            logs.abort();
        }
    }
}

/// Follows a container's output into the sandbox's `stdout` and `stderr` until it stops.
async fn copy_logs(docker: Docker, name: String, sandbox: std::path::PathBuf, since: i64) {
    let open = |file: &'static str| {
        let path = sandbox.join(file);
        async move {
            tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await
        }
    };
    let (Ok(mut out), Ok(mut err)) = (open("stdout").await, open("stderr").await) else {
        tracing::warn!("cannot open the output files in {}", sandbox.display());
        return;
    };
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .since(i32::try_from(since).unwrap_or(0))
        .build();
    let mut logs = docker.logs(&name, Some(options));
    while let Some(Ok(chunk)) = logs.next().await {
        let written = match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                out.write_all(&message).await
            }
            LogOutput::StdErr { message } => err.write_all(&message).await,
            LogOutput::StdIn { .. } => Ok(()),
        };
        if written.is_err() {
            break;
        }
    }
}

fn clamp(code: i64) -> i32 {
    i32::try_from(code).unwrap_or(i32::MAX)
}

fn now_secs() -> i64 {
    i64::try_from(crate::clock::now_ms() / 1000).unwrap_or(0)
}

/// The engine's own message for an error, without bollard's wrapping.
fn message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
