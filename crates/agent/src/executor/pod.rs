//! Pod instances: one process group per container, all in the instance's sandbox, run and
//! ended together.
//!
//! Every container sees the instance's ports (`PORT0…`, `PORTS`, `PORT_<NAME>`) and one
//! `ENDPOINT_<NAME>` per endpoint of the pod, whichever container declared it, so the
//! containers of an instance find each other on the host's loopback. When the first
//! container ends, [`PodTask::wait`] ends with it: the runner then cleans up, which kills
//! the other containers, and the instance is reported as ended (a failure, unless a kill
//! was asked for), so the scheduler replaces it as it replaces a failed app task.
//!
//! Each container writes its own `<name>.stdout` and `<name>.stderr` in the sandbox, and
//! the instance's terminal status says how each container ended ([`ContainerEnd`]): the
//! one that ended first with its exit code, the others as stopped because of it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use domain::app::PodSpec;
use state::Condition;
use state::protocol::ContainerEnd;
use tokio::sync::Mutex;

use super::process::{HeldTask, Logs, ProcessTask, spawn_argv};
use super::{
    BoxFuture, Exit, Launch, Locator, Record, Recovering, RunningTask, StartError, Starting,
    StopSignal,
};
use crate::checkpoint::Checkpoint;

/// How long a clean-up waits for a killed container's process to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// One container's process group.
#[derive(Debug)]
struct Member {
    name: String,
    task: Mutex<ProcessTask>,
    /// How it ended, once that was seen.
    exit: std::sync::Mutex<Option<Exit>>,
}

impl Member {
    fn new(name: String, task: ProcessTask) -> Self {
        Member {
            name,
            task: Mutex::new(task),
            exit: std::sync::Mutex::new(None),
        }
    }

    fn exit(&self) -> std::sync::MutexGuard<'_, Option<Exit>> {
        self.exit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running pod instance: its containers' process groups.
#[derive(Debug)]
pub struct PodTask {
    members: Vec<Member>,
    /// Set when a container was already gone when the instance was found again.
    missing: Option<String>,
    /// The containers that were already gone then.
    gone: Vec<String>,
    /// The index of the container whose own end ended the instance.
    first: std::sync::Mutex<Option<usize>>,
    /// Set once a stop was asked: `wait` then waits for every container.
    stopping: AtomicBool,
}

/// `ENDPOINT_<NAME>` for a name: upper case, anything not alphanumeric as `_`.
pub fn endpoint_variable(name: &str) -> String {
    let mut out = String::from("ENDPOINT_");
    out.extend(name.chars().map(|c| {
        let c = c.to_ascii_uppercase();
        if c.is_ascii_alphanumeric() { c } else { '_' }
    }));
    out
}

/// The environment of one container: the instance's, the endpoints', then its own.
pub fn container_env(
    launch_env: &BTreeMap<String, String>,
    app: &domain::AppDefinition,
    ports: &[u64],
    pod: &PodSpec,
    index: usize,
) -> BTreeMap<String, String> {
    let mut env = launch_env.clone();
    for (def, port) in app.port_definitions.iter().zip(ports) {
        if let Some(name) = &def.name {
            env.insert(endpoint_variable(name), port.to_string());
        }
    }
    if let Some(c) = pod.containers.get(index) {
        env.insert("MESOS_CONTAINER_NAME".into(), c.name.clone());
        for (k, v) in &c.env {
            env.insert(k.clone(), v.clone());
        }
    }
    env
}

/// Starts every container of a pod instance, held until all their identities are recorded.
pub fn start<'a>(launch: Launch<'a>, record: Record<'a>) -> Starting<'a> {
    Box::pin(async move {
        let app = &launch.assignment.app;
        let Some(pod) = app.pod.as_ref() else {
            return Err(StartError::Failed("the assignment is not a pod".into()));
        };
        let mut held: Vec<(String, HeldTask)> = Vec::with_capacity(pod.containers.len());
        for (i, c) in pod.containers.iter().enumerate() {
            let env = container_env(launch.env, app, &launch.assignment.ports, pod, i);
            let argv = vec!["/bin/sh".to_string(), "-c".to_string(), c.shell.clone()];
            match spawn_argv(&argv, launch.sandbox, &env, &Logs::container(&c.name)) {
                Ok(h) => held.push((c.name.clone(), h)),
                Err(e) => {
                    for (_, h) in held {
                        h.abandon().await;
                    }
                    return Err(StartError::Failed(format!("container {}: {e}", c.name)));
                }
            }
        }
        let identities = held.iter().map(|(_, h)| h.identity()).collect();
        if let Err(message) = record(Locator::Pod(identities)) {
            for (_, h) in held {
                h.abandon().await;
            }
            return Err(StartError::Unrecorded(message));
        }
        let mut members = Vec::with_capacity(held.len());
        for (name, h) in held {
            members.push(Member::new(name, h.release().await));
        }
        Ok(Box::new(PodTask {
            members,
            missing: None,
            gone: Vec::new(),
            first: std::sync::Mutex::new(None),
            stopping: AtomicBool::new(false),
        }) as Box<dyn RunningTask>)
    })
}

/// Finds a pod instance's containers again after an agent restart. When some are gone the
/// instance is taken over anyway, and ends at once (the rest are stopped by its clean-up).
pub fn recover(checkpoint: &Checkpoint) -> Recovering<'_> {
    let names: Vec<String> = checkpoint
        .assignment
        .app
        .pod
        .as_ref()
        .map(|p| p.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let mut members = Vec::new();
    let mut missing = Vec::new();
    for (i, identity) in checkpoint.pod_processes.iter().enumerate() {
        let name = names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
        match ProcessTask::adopt(*identity) {
            Some(task) => members.push(Member::new(name, task)),
            None => missing.push(name),
        }
    }
    let task = (!members.is_empty()).then(|| {
        Box::new(PodTask {
            members,
            missing: (!missing.is_empty()).then(|| {
                format!(
                    "container {} ended while the agent was away; the pod instance ends with it",
                    missing.join(", ")
                )
            }),
            gone: missing,
            first: std::sync::Mutex::new(None),
            stopping: AtomicBool::new(false),
        }) as Box<dyn RunningTask>
    });
    Box::pin(std::future::ready(task))
}

impl PodTask {
    /// Waits for the first container to end (or, once stopping, for all of them).
    async fn wait_pod(&mut self) -> Exit {
        if let Some(why) = &self.missing {
            return Exit::Unknown(why.clone());
        }
        if self.stopping.load(Ordering::SeqCst) {
            let mut first = None;
            for m in &mut self.members {
                let exit = m.task.get_mut().wait().await;
                *m.exit() = Some(exit.clone());
                if first.is_none() {
                    first = Some(exit);
                }
            }
            return first.unwrap_or(Exit::Unknown("the pod has no containers".into()));
        }
        type Waiting<'w> = Pin<Box<dyn Future<Output = Exit> + Send + 'w>>;
        let mut waits: Vec<Waiting<'_>> = self
            .members
            .iter_mut()
            .map(|m| Box::pin(m.task.get_mut().wait()) as Waiting<'_>)
            .collect();
        if waits.is_empty() {
            return Exit::Unknown("the pod has no containers".into());
        }
        let (index, exit) = std::future::poll_fn(|cx| {
            for (i, w) in waits.iter_mut().enumerate() {
                if let Poll::Ready(exit) = w.as_mut().poll(cx) {
                    return Poll::Ready((i, exit));
                }
            }
            Poll::Pending
        })
        .await;
        drop(waits);
        let member = &self.members[index];
        let name = member.name.clone();
        *member.exit() = Some(exit.clone());
        *self.first_ended() = Some(index);
        Exit::Unknown(format!(
            "container {name} {exit}; the pod instance ends with it"
        ))
    }
}

impl PodTask {
    fn first_ended(&self) -> std::sync::MutexGuard<'_, Option<usize>> {
        self.first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RunningTask for PodTask {
    fn wait(&mut self) -> BoxFuture<'_, Exit> {
        Box::pin(self.wait_pod())
    }

    fn signal(&self, signal: StopSignal) -> BoxFuture<'_, ()> {
        self.stopping.store(true, Ordering::SeqCst);
        Box::pin(async move {
            for m in &self.members {
                m.task.lock().await.signal(signal);
            }
        })
    }

    fn clean_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for m in &self.members {
                let mut task = m.task.lock().await;
                task.signal(StopSignal::Kill);
                // Reaped here, so no container lingers as a zombie of the agent.
                if let Ok(exit) = tokio::time::timeout(REAP_WAIT, task.wait()).await {
                    m.exit().get_or_insert(exit);
                }
            }
        })
    }

    fn containers(&self) -> Vec<ContainerEnd> {
        let first = *self.first_ended();
        let stopping = self.stopping.load(Ordering::SeqCst);
        let cause = first.and_then(|i| self.members.get(i)).map_or_else(
            || "another container".to_string(),
            |m| format!("container {}", m.name),
        );
        let mut out: Vec<ContainerEnd> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let exit = m.exit().clone();
                let (condition, message) = match &exit {
                    Some(e) if stopping => e.outcome(true),
                    Some(e) if first == Some(i) => e.outcome(false),
                    Some(e) => (
                        Condition::Killed,
                        format!("stopped by the agent because {cause} ended; it {e}"),
                    ),
                    None => (
                        Condition::Killed,
                        "stopped by the agent; its end was not seen in time".to_string(),
                    ),
                };
                ContainerEnd {
                    name: m.name.clone(),
                    condition,
                    exit_code: exit.as_ref().and_then(Exit::code),
                    message,
                }
            })
            .collect();
        out.extend(self.gone.iter().map(|name| ContainerEnd {
            name: name.clone(),
            condition: Condition::Failed,
            exit_code: None,
            message: "ended while the agent was away; its exit code is unknown".to_string(),
        }));
        out
    }
}
