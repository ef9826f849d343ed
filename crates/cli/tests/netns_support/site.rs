//! A [`Site`] whose every master and agent runs in its own namespace of a [`Network`]:
//! masters at 10.213.1.N, agents at 10.213.2.N, the test's client in the hub. The rest of the
//! cross-process harness (waits, logs, task checkpoints) works unchanged on it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Deserialize;

use super::{Direction, Network, Node};
use crate::agent_support::Site;
use crate::common::http;
use crate::scheduler_support::Task;

/// The port every master listens on (each has its own address).
pub const MASTER_PORT: u16 = 5050;

/// The port of every agent's status API (`/health`, `/state`).
pub const AGENT_STATUS_PORT: u16 = 5051;

/// The first of the host ports each agent offers its tasks.
pub const FIRST_TASK_PORT: u16 = 31000;

/// Host ports each agent offers.
const TASK_PORTS: u16 = 8;

/// Timeout of one probe of an agent's status API.
const PROBE: Duration = Duration::from_secs(5);

/// One agent of a [`NetSite`].
#[derive(Debug, Clone)]
pub struct NetAgent {
    /// Its index in the [`Site`].
    pub index: usize,
    /// Its hostname.
    pub hostname: String,
    /// Its zone.
    pub zone: String,
    /// Its namespace and address.
    pub node: Node,
}

/// Masters and agents in namespaces, and the network between them. Fields drop in order: the
/// processes end before their namespaces are deleted.
pub struct NetSite {
    /// The processes.
    pub s: Site,
    /// The namespaces and partition rules.
    pub net: Network,
    /// Master `id`'s node is `masters[id - 1]`.
    pub masters: Vec<Node>,
    /// The agents, in the order they were added.
    pub agents: Vec<NetAgent>,
}

/// One entry of an agent's `GET /state` `tasks`.
#[derive(Debug, Deserialize)]
struct AgentTask {
    instance_id: String,
    active: bool,
}

/// An agent's `GET /state` (only what the suite reads).
#[derive(Debug, Deserialize)]
struct AgentState {
    tasks: Vec<AgentTask>,
}

impl NetSite {
    /// `masters` masters started with `flags`, each in its own namespace, with a leader.
    #[track_caller]
    pub fn start(name: &str, masters: u32, flags: Vec<String>) -> Self {
        let mut net = Network::new(name);
        let mut s = Site::new(name, masters);
        let mut nodes = Vec::new();
        for id in 1..=masters {
            let octet = u8::try_from(id).unwrap_or_else(|_| panic!("master id {id} > 255"));
            let node = net.add_node(&format!("m{id}"), Ipv4Addr::new(10, 213, 1, octet));
            let m = s.masters.master_mut(id);
            m.addr = format!("{}:{MASTER_PORT}", node.ip);
            m.netns = Some(node.netns.clone());
            nodes.push(node);
        }
        s.masters.extra_args = flags;
        s.start_masters();
        NetSite {
            s,
            net,
            masters: nodes,
            agents: Vec::new(),
        }
    }

    /// Adds `per_zone` agents to each of `zones` (region `local`, hostnames
    /// `agent-<zone>-<n>`), each in its own namespace, starts them and waits until every
    /// one is active; returns them.
    #[track_caller]
    pub fn add_agents(&mut self, zones: &[&str], per_zone: usize) -> Vec<NetAgent> {
        self.add_agents_with(zones, per_zone, None)
    }

    /// Like [`NetSite::add_agents`]; with `first`, the agents' `--masters` lists master
    /// `first` first, so that they register with it and keep talking to it while it answers.
    #[track_caller]
    pub fn add_agents_with(
        &mut self,
        zones: &[&str],
        per_zone: usize,
        first: Option<u32>,
    ) -> Vec<NetAgent> {
        let mut order = self.s.masters.ids();
        if let Some(first) = first {
            order.sort_by_key(|&id| id != first);
        }
        let masters: Vec<String> = order.iter().map(|&id| self.s.masters.addr(id)).collect();
        let mut added = Vec::new();
        for zone in zones {
            for n in 1..=per_zone {
                let hostname = format!("agent-{zone}-{n}");
                let index = self.s.add_agent(&hostname, "local", zone);
                let octet = u8::try_from(index + 1)
                    .unwrap_or_else(|_| panic!("agent {index}: more than 255 agents"));
                let node = self
                    .net
                    .add_node(&format!("a{index}"), Ipv4Addr::new(10, 213, 2, octet));
                let a = self.s.agent_mut(index);
                a.ip = node.ip.to_string();
                a.listen = format!("{}:{AGENT_STATUS_PORT}", node.ip);
                a.ports = (FIRST_TASK_PORT..FIRST_TASK_PORT + TASK_PORTS).collect();
                a.netns = Some(node.netns.clone());
                a.masters = masters.join(",");
                added.push(NetAgent {
                    index,
                    hostname,
                    zone: zone.to_string(),
                    node,
                });
            }
        }
        for a in &added {
            self.s.start_agent(a.index);
        }
        for a in &added {
            self.s.wait_agent_active(a.index);
        }
        self.agents.extend(added.iter().cloned());
        added
    }

    /// Every master's address.
    pub fn master_ips(&self) -> Vec<Ipv4Addr> {
        self.masters.iter().map(|n| n.ip).collect()
    }

    /// Master `id`'s node.
    pub fn master_node(&self, id: u32) -> &Node {
        &self.masters[id as usize - 1]
    }

    /// The agents of `zone`.
    pub fn zone(&self, zone: &str) -> Vec<NetAgent> {
        self.agents
            .iter()
            .filter(|a| a.zone == zone)
            .cloned()
            .collect()
    }

    /// The agent with `hostname`.
    pub fn agent_by_host(&self, hostname: &str) -> &NetAgent {
        self.agents
            .iter()
            .find(|a| a.hostname == hostname)
            .unwrap_or_else(|| self.s.fail(&format!("no agent is called {hostname}")))
    }

    /// Cuts each of `agents` off from every master, both directions (the test's client still
    /// reaches them).
    #[track_caller]
    pub fn cut_from_masters(&mut self, agents: &[NetAgent]) {
        let masters = self.master_ips();
        for a in agents {
            self.net.cut(&a.node, &masters, Direction::Both);
        }
    }

    /// Removes every cut of `agents`.
    #[track_caller]
    pub fn heal_agents(&mut self, agents: &[NetAgent]) {
        for a in agents {
            self.net.heal(&a.node);
        }
    }

    /// The instances agent `a` reports active on its status API, or why it could not be read.
    pub fn active_on(&self, a: &NetAgent) -> Result<BTreeSet<String>, String> {
        let addr = format!("{}:{AGENT_STATUS_PORT}", a.node.ip);
        let r = http::request(&addr, "GET", "/state", None, PROBE)
            .map_err(|e| format!("GET /state of {}: {e}", a.hostname))?;
        if r.status != 200 {
            return Err(format!("GET /state of {}: {r}", a.hostname));
        }
        let state: AgentState = r
            .decode()
            .map_err(|e| format!("GET /state of {}: {e}", a.hostname))?;
        Ok(state
            .tasks
            .into_iter()
            .filter(|t| t.active)
            .map(|t| t.instance_id)
            .collect())
    }

    /// Instance id → the agents that report it active, over every agent; an error when an
    /// agent does not answer.
    pub fn active_everywhere(&self) -> Result<BTreeMap<String, Vec<String>>, String> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in &self.agents {
            for id in self.active_on(a)? {
                out.entry(id).or_default().push(a.hostname.clone());
            }
        }
        Ok(out)
    }

    /// No duplicates, as the agents themselves tell: the instances active on the agents are
    /// exactly `tasks` (the masters' view), each on one agent only, the one the masters
    /// name, with one live process each.
    pub fn agents_run_exactly(&self, tasks: &[Task]) -> Result<(), String> {
        let active = self.active_everywhere()?;
        let mut wrong = Vec::new();
        for (id, hosts) in &active {
            match tasks.iter().find(|t| &t.id == id) {
                None => wrong.push(format!(
                    "{id} runs on {hosts:?} but the masters do not list it"
                )),
                Some(_) if hosts.len() > 1 => wrong.push(format!("{id} runs on {hosts:?}")),
                Some(t) if hosts[0] != t.host => wrong.push(format!(
                    "{id} runs on {} but the masters say {}",
                    hosts[0], t.host
                )),
                Some(_) => {}
            }
        }
        for t in tasks {
            if !active.contains_key(&t.id) {
                wrong.push(format!("{} ({}) is active on no agent", t.id, t.host));
            }
            if !self.s.task_process(&t.id).is_some_and(|p| p.is_alive()) {
                wrong.push(format!("{} has no live process", t.id));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("agents' /state disagrees: {}", wrong.join("; ")))
        }
    }
}

impl NetSite {
    /// Polls `f` until it returns `Ok`; on timeout fails with `what`, the last `Err` and every
    /// process's log tail.
    #[track_caller]
    pub fn wait_showing<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&mut NetSite) -> Result<T, String>,
    ) -> T {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let last = match f(self) {
                Ok(t) => return t,
                Err(e) => e,
            };
            if std::time::Instant::now() >= deadline {
                self.s.fail(&format!(
                    "timed out after {timeout:?} waiting until {what}; last seen: {last}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fails unless no launched instance outside `known` still has a live process: every
    /// task that runs is one the masters know (no orphans).
    #[track_caller]
    pub fn assert_no_orphans(&self, launched: &BTreeSet<String>, known: &BTreeSet<String>) {
        let orphans: Vec<&String> = launched
            .difference(known)
            .filter(|id| self.s.task_process(id).is_some_and(|p| p.is_alive()))
            .collect();
        if !orphans.is_empty() {
            self.s.fail(&format!(
                "tasks the masters no longer list still run: {orphans:?}"
            ));
        }
    }
}
