//! A dev cluster's shape: the regions, zones and agents of its topology, and the addresses
//! and ports every master and agent gets, worked out (and checked) before anything starts.

use std::path::Path;

use serde::Deserialize;

/// Regions and zones of a dev cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Regions; the first is the local one.
    pub region: Vec<RegionSpec>,
}

/// One region of a topology.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// The region's name.
    pub name: String,
    /// Its zones.
    pub zones: Vec<String>,
    /// Agents in each zone.
    #[serde(default = "one")]
    pub agents_per_zone: u32,
}

fn one() -> u32 {
    1
}

impl Topology {
    /// The seed examples' topology: three regions of four zones, one agent each.
    pub fn default_seed() -> Self {
        let region = |name: &str| RegionSpec {
            name: name.to_string(),
            zones: ["a", "b", "c", "d"]
                .iter()
                .map(|z| format!("{name}-{z}"))
                .collect(),
            agents_per_zone: 1,
        };
        Topology {
            region: vec![
                region("local"),
                region("aws-us-east1"),
                region("aws-us-east2"),
            ],
        }
    }

    /// Reads a topology file (TOML).
    pub fn parse(path: &Path) -> Result<Self, String> {
        let text = crate::input::read_text(path, "topology", crate::input::MAX_OTHER_FILE)?;
        let t: Topology = toml::from_str(&text)
            .map_err(|e| format!("topology {} is not valid: {e}", path.display()))?;
        if t.region.is_empty() || t.region.iter().any(|r| r.zones.is_empty()) {
            return Err(format!(
                "topology {}: every region needs a name and at least one zone",
                path.display()
            ));
        }
        Ok(t)
    }
}

/// The first port of the task port ranges dev gives agents; each agent gets
/// [`AGENT_PORTS`] ports after the previous one's.
const AGENT_PORT_BASE: u16 = 31000;

/// Task ports per dev agent.
const AGENT_PORTS: u16 = 100;

/// Dev agent N listens on 127.0.1.N, so there are at most this many.
const MAX_AGENTS: u64 = 254;

/// The ports a dev cluster uses, worked out (and checked) before anything starts.
#[derive(Debug, PartialEq, Eq)]
pub struct DevPorts {
    /// Each master's address, by id.
    pub masters: Vec<(u8, String)>,
    /// Each agent's loopback address and task port range (first, last), in start order.
    pub agents: Vec<(String, u16, u16)>,
}

/// Every port `drover dev` derives from `--listen`, `--masters` and the topology, or why
/// they do not fit (a port past 65535, port 0, masters inside the agents' task ports).
pub fn plan_ports(
    listen: std::net::SocketAddr,
    masters: u8,
    agents: u64,
) -> Result<DevPorts, String> {
    let port = listen.port();
    if port == 0 {
        return Err(format!(
            "--listen {listen}: drover dev needs a fixed port, since every master and agent is told the masters' addresses before they start; use e.g. --listen {}:8080",
            listen.ip()
        ));
    }
    let last = u32::from(port) + u32::from(masters) - 1;
    if last > u32::from(u16::MAX) {
        return Err(format!(
            "--listen {listen} with --masters {masters}: the masters would need ports {port} to {last}, past 65535; use a port from 1 to {}",
            u32::from(u16::MAX) + 1 - u32::from(masters)
        ));
    }
    if agents > MAX_AGENTS {
        return Err(format!(
            "the topology has {agents} agents; drover dev runs at most {MAX_AGENTS} (agent N gets the loopback address 127.0.1.N); use fewer zones or a smaller agents_per_zone"
        ));
    }
    let mut agent_ports = Vec::new();
    for n in 1..=agents {
        // At most 254 agents: 31000 + 254 * 100 stays below 65535.
        let first = u64::from(AGENT_PORT_BASE) + (n - 1) * u64::from(AGENT_PORTS);
        let last = first + u64::from(AGENT_PORTS) - 1;
        let (Ok(first), Ok(last)) = (u16::try_from(first), u16::try_from(last)) else {
            return Err(format!(
                "agent {n} would get task ports {first} to {last}, past 65535; use fewer agents"
            ));
        };
        agent_ports.push((format!("127.0.1.{n}"), first, last));
    }
    if let (Some((_, low, _)), Some((_, _, high))) = (agent_ports.first(), agent_ports.last())
        && u32::from(port) <= u32::from(*high)
        && last >= u32::from(*low)
    {
        return Err(format!(
            "--listen {listen}: the masters' ports {port} to {last} overlap the agents' task ports {low} to {high}, so tasks could not bind them; use a port below {low} or above {high}"
        ));
    }
    let host = listen.ip();
    let masters = (1..=masters)
        .map(|i| (i, format!("{host}:{}", u32::from(port) + u32::from(i) - 1)))
        .collect();
    Ok(DevPorts {
        masters,
        agents: agent_ports,
    })
}

impl Topology {
    /// How many agents it has.
    pub fn agent_count(&self) -> u64 {
        self.region
            .iter()
            .map(|r| (r.zones.len() as u64).saturating_mul(u64::from(r.agents_per_zone)))
            .fold(0, u64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(s: &str) -> std::net::SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ports_past_65535_or_port_0_are_refused_before_anything_starts() {
        let e = plan_ports(listen("127.0.0.1:65535"), 3, 12).unwrap_err();
        assert!(
            e.contains("--listen") && e.contains("65537") && e.contains("65533"),
            "{e}"
        );
        let e = plan_ports(listen("127.0.0.1:0"), 1, 12).unwrap_err();
        assert!(e.contains("--listen") && e.contains("fixed port"), "{e}");
        let p = plan_ports(listen("127.0.0.1:65533"), 3, 0).unwrap();
        assert_eq!(p.masters.last().unwrap().1, "127.0.0.1:65535");
    }

    #[test]
    fn agents_get_their_own_addresses_and_ports_within_range() {
        let p = plan_ports(listen("127.0.0.1:8080"), 3, 12).unwrap();
        assert_eq!(
            p.masters,
            [
                (1, "127.0.0.1:8080".to_string()),
                (2, "127.0.0.1:8081".to_string()),
                (3, "127.0.0.1:8082".to_string())
            ]
        );
        assert_eq!(p.agents[0], ("127.0.1.1".to_string(), 31000, 31099));
        assert_eq!(p.agents[11], ("127.0.1.12".to_string(), 32100, 32199));
        let most = plan_ports(listen("127.0.0.1:8080"), 1, MAX_AGENTS).unwrap();
        assert_eq!(most.agents.len(), 254);
        let e = plan_ports(listen("127.0.0.1:8080"), 1, MAX_AGENTS + 1).unwrap_err();
        assert!(e.contains("255 agents") && e.contains("254"), "{e}");
    }

    #[test]
    fn masters_inside_the_agents_task_ports_are_refused() {
        let e = plan_ports(listen("127.0.0.1:31050"), 1, 12).unwrap_err();
        assert!(e.contains("31000") && e.contains("32199"), "{e}");
        let e = plan_ports(listen("127.0.0.1:30999"), 3, 12).unwrap_err();
        assert!(e.contains("overlap"), "{e}");
        plan_ports(listen("127.0.0.1:32200"), 3, 12).unwrap();
        plan_ports(listen("127.0.0.1:30997"), 3, 12).unwrap();
    }

    #[test]
    fn a_huge_topology_counts_without_overflow() {
        let t = Topology {
            region: vec![RegionSpec {
                name: "r".into(),
                zones: vec!["a".into(), "b".into()],
                agents_per_zone: u32::MAX,
            }],
        };
        assert_eq!(t.agent_count(), 2 * u64::from(u32::MAX));
    }
}
