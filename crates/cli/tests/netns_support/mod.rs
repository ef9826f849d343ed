//! A real network for the partition suite (`tests/partitions.rs`): one network namespace per
//! master and per agent, joined by a Linux bridge in a namespace of the test's own (the
//! *hub*), where the test's client thread lives too. Addresses are 10.213.0.0/16 inside
//! those namespaces only: no namespace has a default route, and the hub is not connected to
//! the machine's own network, so nothing is ever routed off the machine; and two tests
//! running at once cannot see each other's addresses.
//!
//! Partitions are `nft` rules inside a node's namespace that drop packets to or from some
//! peers (both directions or one), or the node's link taken down; real packets are lost and
//! real TCP connections time out. Healing removes them.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables): a missing one fails the test with a
//! message saying what is missing. Namespaces are named `drover-pt-<pid>-<n>-…`; dropping a
//! [`Network`] deletes its own, and creating one deletes those of test processes that no
//! longer exist (a crashed earlier run), with whatever still runs inside them.
#![allow(dead_code)]

pub mod site;
pub mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sched::{CloneFlags, setns};

/// Every namespace of the suite starts with this.
const PREFIX: &str = "drover-pt-";

/// The hub's address on the bridge: the test's client.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);

/// Prefix length of the suite's private network.
const PREFIX_LEN: u8 = 16;

/// The nft table a node's partition rules live in.
const TABLE: &str = "drover_partition";

/// Which packets a cut drops, seen from the node it is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// Nothing passes between the node and the peers.
    Both,
    /// The node hears nothing from the peers; what it sends still arrives.
    Inbound,
    /// What the node sends to the peers is lost; it still hears them.
    Outbound,
}

/// One master's or agent's namespace, with its address on the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// A short name, unique in its [`Network`] (`m1`, `a-b-2`).
    pub name: String,
    /// The network namespace (`ip netns exec NAME …`).
    pub netns: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its veth's end in the hub, on the bridge.
    link: String,
}

/// The namespaces, bridge and partition rules of one test. The thread that creates it moves
/// into the hub (and back when it is dropped), so threads it spawns meanwhile are there too.
pub struct Network {
    hub: String,
    prefix: String,
    nodes: Vec<Node>,
    /// The rules of each node (by namespace), rewritten as a whole on every change.
    cuts: BTreeMap<String, BTreeSet<(Ipv4Addr, Direction)>>,
    /// The namespace the creating thread came from.
    home: File,
}

/// Panics saying what the suite needs and what is missing, unless everything is there.
pub fn require_capabilities() {
    let mut missing = Vec::new();
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("unknown");
    if euid != "0" {
        missing.push(format!(
            "root (effective uid is {euid}): network namespaces, bridges and nft rules need CAP_NET_ADMIN and CAP_SYS_ADMIN"
        ));
    }
    for (tool, args, package) in [
        ("ip", &["-V"][..], "iproute2"),
        ("nft", &["--version"][..], "nftables"),
    ] {
        let ok = Command::new(tool)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing.push(format!(
                "`{tool}` (Debian package {package}; scripts/test installs it)"
            ));
        }
    }
    if !missing.is_empty() {
        panic!(
            "the partition suite runs masters and agents in network namespaces and cannot here; missing: {}",
            missing.join("; ")
        );
    }
}

/// Runs a command to its end; panics with its output when it fails.
#[track_caller]
fn run(program: &str, args: &[&str]) {
    run_with_input(program, args, None);
}

/// Like [`run`], writing `input` to its stdin.
#[track_caller]
fn run_with_input(program: &str, args: &[&str], input: Option<&str>) {
    if let Err(e) = try_run(program, args, input) {
        panic!("{e}");
    }
}

/// Runs a command to its end, writing `input` to its stdin; on failure, what failed and its
/// output.
fn try_run(program: &str, args: &[&str], input: Option<&str>) -> Result<(), String> {
    let line = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run `{line}`: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("write the input of `{line}`: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wait for `{line}`: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{line}` failed ({}): {}{}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        input.map(|i| format!("\ninput:\n{i}")).unwrap_or_default()
    ))
}

/// Output of a command, or `None` when it fails (for cleanup, which must not panic).
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The pid a namespace name of this suite was made by (`drover-pt-<pid>-…`).
fn owner_pid(netns: &str) -> Option<u32> {
    netns.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Deletes the suite's namespaces whose test process is gone, killing what runs inside.
fn remove_leftovers() {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid == me || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // A crashed run's masters, agents and tasks would keep the namespace (and its
        // addresses) alive after its name is gone.
        for p in output("ip", &["netns", "pids", &name])
            .unwrap_or_default()
            .split_whitespace()
        {
            let _ = Command::new("kill").args(["-KILL", p]).status();
        }
        let _ = output("ip", &["netns", "delete", &name]);
    }
}

/// Removes a namespace if it exists (for cleanup: never panics).
fn delete_netns(name: &str) {
    if Path::new("/run/netns").join(name).exists() {
        let _ = output("ip", &["netns", "delete", name]);
    }
}

impl Network {
    /// Creates the hub (bridge `br0`, the client's address [`CLIENT_IP`]) and moves the
    /// calling thread into it. `name` goes into the namespaces' names, for people.
    #[track_caller]
    pub fn new(name: &str) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        require_capabilities();
        remove_leftovers();
        let short: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect();
        let prefix = format!(
            "{PREFIX}{}-{}-{short}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let hub = format!("{prefix}-hub");
        let home = File::open("/proc/thread-self/ns/net")
            .unwrap_or_else(|e| panic!("open this thread's network namespace: {e}"));
        let net = Network {
            hub: hub.clone(),
            prefix,
            nodes: Vec::new(),
            cuts: BTreeMap::new(),
            home,
        };
        if let Err(e) = try_run("ip", &["netns", "add", &hub], None) {
            panic!(
                "the partition suite cannot create a network namespace here (it needs CAP_SYS_ADMIN and a writable /run/netns): {e}"
            );
        }
        run("ip", &["-n", &hub, "link", "set", "lo", "up"]);
        // A table made and removed at once: nft works in a namespace (the kernel has
        // nf_tables), or the suite says so now rather than at the first cut.
        let probe = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
        if let Err(e) = try_run(
            "ip",
            &["netns", "exec", &hub, "nft", "-f", "-"],
            Some(&probe),
        ) {
            panic!(
                "the partition suite cannot use nft in a network namespace here (is the kernel's nf_tables available?): {e}"
            );
        }
        run("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        run(
            "ip",
            &[
                "-n",
                &hub,
                "addr",
                "add",
                &format!("{CLIENT_IP}/{PREFIX_LEN}"),
                "dev",
                "br0",
            ],
        );
        run("ip", &["-n", &hub, "link", "set", "br0", "up"]);
        let ns = File::open(Path::new("/run/netns").join(&hub))
            .unwrap_or_else(|e| panic!("open namespace {hub}: {e}"));
        setns(&ns, CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("enter namespace {hub} (setns): {e}"));
        net
    }

    /// Adds a node `name` at `ip`: its namespace, with loopback up and a veth on the bridge.
    #[track_caller]
    pub fn add_node(&mut self, name: &str, ip: Ipv4Addr) -> Node {
        assert!(
            self.nodes.iter().all(|n| n.name != name && n.ip != ip),
            "node {name} at {ip}: the name or the address is taken"
        );
        let netns = format!("{}-{name}", self.prefix);
        // Interface names are at most 15 bytes; this one only has to be unique in the hub.
        let link = format!("v{}", self.nodes.len());
        run("ip", &["netns", "add", &netns]);
        run("ip", &["-n", &netns, "link", "set", "lo", "up"]);
        run(
            "ip",
            &[
                "-n", &self.hub, "link", "add", &link, "type", "veth", "peer", "name", "eth0",
                "netns", &netns,
            ],
        );
        run(
            "ip",
            &["-n", &self.hub, "link", "set", &link, "master", "br0", "up"],
        );
        run(
            "ip",
            &[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{ip}/{PREFIX_LEN}"),
                "dev",
                "eth0",
            ],
        );
        run("ip", &["-n", &netns, "link", "set", "eth0", "up"]);
        let node = Node {
            name: name.to_string(),
            netns,
            ip,
            link,
        };
        self.nodes.push(node.clone());
        node
    }

    /// Drops what `node` exchanges with `peers` in `direction`, on top of its other cuts.
    #[track_caller]
    pub fn cut(&mut self, node: &Node, peers: &[Ipv4Addr], direction: Direction) {
        let rules = self.cuts.entry(node.netns.clone()).or_default();
        rules.extend(peers.iter().map(|&p| (p, direction)));
        self.write_rules(node);
    }

    /// Removes every cut of `node`.
    #[track_caller]
    pub fn heal(&mut self, node: &Node) {
        self.cuts.remove(&node.netns);
        self.write_rules(node);
    }

    /// Removes every cut of every node.
    #[track_caller]
    pub fn heal_all(&mut self) {
        for node in self.nodes.clone() {
            self.heal(&node);
        }
    }

    /// Takes `node`'s link down (its end on the bridge): nothing reaches it, nothing leaves.
    #[track_caller]
    pub fn link_down(&self, node: &Node) {
        run("ip", &["-n", &self.hub, "link", "set", &node.link, "down"]);
    }

    /// Brings `node`'s link up again.
    #[track_caller]
    pub fn link_up(&self, node: &Node) {
        run("ip", &["-n", &self.hub, "link", "set", &node.link, "up"]);
    }

    /// The nft ruleset of `node` as it is now, for failure messages.
    pub fn ruleset(&self, node: &Node) -> String {
        output(
            "ip",
            &["netns", "exec", &node.netns, "nft", "list", "ruleset"],
        )
        .unwrap_or_else(|| "(nft list ruleset failed)".into())
    }

    /// Replaces `node`'s partition table with its current cuts in one nft transaction (the
    /// table is declared first so that deleting it cannot fail when it does not exist).
    #[track_caller]
    fn write_rules(&self, node: &Node) {
        let mut script = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
        if let Some(rules) = self.cuts.get(&node.netns).filter(|r| !r.is_empty()) {
            let set = |dir: Direction| {
                let ips: Vec<String> = rules
                    .iter()
                    .filter(|(_, d)| *d == dir || *d == Direction::Both)
                    .map(|(ip, _)| ip.to_string())
                    .collect();
                (!ips.is_empty()).then(|| ips.join(", "))
            };
            let _ = writeln!(script, "table inet {TABLE} {{");
            let _ = writeln!(
                script,
                "  chain input {{ type filter hook input priority 0; policy accept;"
            );
            if let Some(ips) = set(Direction::Inbound) {
                let _ = writeln!(script, "    ip saddr {{ {ips} }} drop");
            }
            let _ = writeln!(script, "  }}");
            let _ = writeln!(
                script,
                "  chain output {{ type filter hook output priority 0; policy accept;"
            );
            if let Some(ips) = set(Direction::Outbound) {
                let _ = writeln!(script, "    ip daddr {{ {ips} }} drop");
            }
            let _ = writeln!(script, "  }}\n}}");
        }
        run_with_input(
            "ip",
            &["netns", "exec", &node.netns, "nft", "-f", "-"],
            Some(&script),
        );
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.home, CloneFlags::CLONE_NEWNET) {
            eprintln!("partition suite: could not return to the test's network namespace: {e}");
        }
        for node in &self.nodes {
            delete_netns(&node.netns);
        }
        delete_netns(&self.hub);
    }
}
