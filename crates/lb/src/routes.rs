//! The route model: what the masters' view of apps and tasks says should be load balanced,
//! and to which instances.
//!
//! Read from `GET /v2/apps?embed=apps.tasks`, or the agents' projection of it (only the
//! fields of `client::routing`, which are all this reads of a definition). Each port
//! definition of an app is one [`Service`]: its VIPs (DC/OS's `VIP_<k>` port labels), its
//! edge route (marathon-lb's `HAPROXY_*` labels or drover's `DROVER_LB_*`), and its
//! [`Backend`]s, one per live task.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use client::{App, Task};

/// Label (app level) naming the group of `drover lb` processes that serve an app's edge
/// routes; drover's name, read before marathon-lb's [`HAPROXY_GROUP`].
pub const DROVER_LB_GROUP: &str = "DROVER_LB_GROUP";

/// marathon-lb's group label: `drover lb --group G` serves the apps of group G.
pub const HAPROXY_GROUP: &str = "HAPROXY_GROUP";

/// Label (app level) capping the connections one instance takes before the local zone
/// counts as short of capacity and new connections spill over to other zones.
pub const DROVER_LB_MAX_CONN: &str = "DROVER_LB_MAX_CONN";

/// The group a `drover lb` serves when none is given, marathon-lb's default.
pub const DEFAULT_GROUP: &str = "external";

/// How an edge route proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// Bytes both ways.
    Tcp,
    /// HTTP/1.1 requests, routed by `Host` on the shared HTTP port.
    Http,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Tcp => "tcp",
            Mode::Http => "http",
        })
    }
}

/// A VIP as a port label declares it: `/web:80` (a name) or `10.0.0.1:80` (an address).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vip {
    /// The name (`web`, without the slash) or the address, as written.
    pub name: VipName,
    /// The port clients connect to.
    pub port: u16,
}

/// The first part of a VIP label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VipName {
    /// `/web:80`: reached as `web.marathon.l4lb.drover.directory` (see [`Vip::hostname`]).
    Named(String),
    /// `10.0.0.1:80`: the address is the VIP's key.
    Address(IpAddr),
}

/// The DNS suffix of named VIPs (DC/OS uses `marathon.l4lb.thisdcos.directory`).
pub const VIP_DOMAIN: &str = "marathon.l4lb.drover.directory";

impl Vip {
    /// Parses a `VIP_<k>` label value; the error says what form is expected.
    pub fn parse(text: &str) -> Result<Vip, String> {
        let usage = "expected /NAME:PORT (e.g. /web:80) or IP:PORT (e.g. 10.0.0.1:80)";
        let (name, port) = text
            .trim()
            .rsplit_once(':')
            .ok_or_else(|| format!("`{text}` has no port: {usage}"))?;
        let port: u16 = match port.parse() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("`{text}` has no port from 1 to 65535: {usage}")),
        };
        if let Some(named) = name.strip_prefix('/') {
            let named = named.trim_matches('/');
            let ok = !named.is_empty()
                && named
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/' | '_'));
            if !ok {
                return Err(format!(
                    "`{text}`: a VIP name is letters, digits, `-`, `_`, `.` and `/`: {usage}"
                ));
            }
            return Ok(Vip {
                name: VipName::Named(named.to_ascii_lowercase()),
                port,
            });
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => Ok(Vip {
                name: VipName::Address(ip),
                port,
            }),
            Err(_) => Err(format!("`{text}`: {usage}")),
        }
    }

    /// The host name clients use for a named VIP: `/web` is `web.marathon.l4lb.drover.directory`
    /// and `/team/web` is `web.team.marathon.l4lb.drover.directory`; none for an address.
    pub fn hostname(&self) -> Option<String> {
        match &self.name {
            VipName::Named(n) => {
                let parts: Vec<&str> = n.split('/').rev().collect();
                Some(format!("{}.{VIP_DOMAIN}", parts.join(".")))
            }
            VipName::Address(_) => None,
        }
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            VipName::Named(n) => write!(f, "/{n}:{}", self.port),
            VipName::Address(ip) => write!(f, "{ip}:{}", self.port),
        }
    }
}

/// Where `drover lb` exposes one port of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRoute {
    /// The `drover lb` group that serves it.
    pub group: String,
    /// How it proxies.
    pub mode: Mode,
    /// The port `drover lb` listens on for it (`HAPROXY_<n>_PORT`, else the port
    /// definition's `port` when not 0); none for a route reached only by virtual host.
    pub service_port: Option<u16>,
    /// Virtual hosts routed to it on the shared HTTP port (lower case, no port).
    pub vhosts: Vec<String>,
}

/// One live instance a service can send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The instance id.
    pub instance_id: String,
    /// Where it listens: its agent's address and its host port.
    pub addr: SocketAddr,
    /// Its agent's region.
    pub region: Option<String>,
    /// Its agent's zone.
    pub zone: Option<String>,
    /// Running, passing its health checks (when the app has any), and not being killed.
    pub ready: bool,
    /// Running, but the masters know no health result of it (new, or the masters restarted:
    /// health results are not replicated).
    pub health_unknown: bool,
}

/// One port of one app: its VIPs, its edge route and its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The app.
    pub app_id: String,
    /// The port definition's index.
    pub port_index: usize,
    /// VIPs declared on the port.
    pub vips: Vec<Vip>,
    /// Its edge route, if the app has a group.
    pub edge: Option<EdgeRoute>,
    /// Connections one instance takes before its zone counts as full ([`DROVER_LB_MAX_CONN`]).
    pub max_connections: Option<u32>,
    /// Every live instance, ready or not (the chooser skips the ones that are not).
    pub backends: Arc<Vec<Backend>>,
}

impl Service {
    /// `app_id:port_index`, the key of metrics and logs.
    pub fn key(&self) -> String {
        format!("{}:{}", self.app_id, self.port_index)
    }
}

/// A label that could not be used, and why; logged, never fatal (the other routes work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The app.
    pub app_id: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "app {}: {}", self.app_id, self.message)
    }
}

/// Every service of the cluster, as last read from the masters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Services ordered by app id, then port index.
    pub services: Vec<Service>,
}

impl View {
    /// The view of `apps` (read with their tasks embedded), with the labels that were not
    /// understood.
    pub fn from_apps(apps: &[App]) -> (View, Vec<Problem>) {
        let mut services = Vec::new();
        let mut problems = Vec::new();
        let mut apps: Vec<&App> = apps.iter().collect();
        apps.sort_by(|a, b| a.id().cmp(b.id()));
        for app in apps {
            services.extend(services_of(app, &mut problems));
        }
        let mut view = View { services };
        view.drop_conflicts(&mut problems);
        (view, problems)
    }

    /// Marks instance `id` as not ready everywhere (an event said it failed, is being killed
    /// or unhealthy); true when it was ready somewhere.
    pub fn mark_not_ready(&mut self, id: &str) -> bool {
        let mut changed = false;
        for s in &mut self.services {
            if s.backends.iter().any(|b| b.instance_id == id && b.ready) {
                let mut backends = (*s.backends).clone();
                for b in backends.iter_mut().filter(|b| b.instance_id == id) {
                    b.ready = false;
                }
                s.backends = Arc::new(backends);
                changed = true;
            }
        }
        changed
    }

    /// Keeps ready the instances that were ready in `previous` and whose health the masters
    /// no longer know (after a restart of every master, until the agents report again): an
    /// instance is never taken out for what nobody knows. New instances wait for a result.
    pub fn keep_ready_while_health_unknown(&mut self, previous: &View) {
        for s in &mut self.services {
            if !s.backends.iter().any(|b| b.health_unknown) {
                continue;
            }
            let Some(before) = previous
                .services
                .iter()
                .find(|p| p.app_id == s.app_id && p.port_index == s.port_index)
            else {
                continue;
            };
            let was_ready = |id: &str| {
                before
                    .backends
                    .iter()
                    .any(|b| b.instance_id == id && b.ready)
            };
            let mut backends = (*s.backends).clone();
            for b in backends
                .iter_mut()
                .filter(|b| b.health_unknown && was_ready(&b.instance_id))
            {
                b.ready = true;
            }
            s.backends = Arc::new(backends);
        }
    }

    /// Services with VIPs.
    pub fn vip_services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|s| !s.vips.is_empty())
    }

    /// Services with an edge route served by `group` (`*` serves every group).
    pub fn edge_services<'a>(
        &'a self,
        group: &str,
    ) -> impl Iterator<Item = (&'a Service, &'a EdgeRoute)> + use<'a> {
        let group = group.to_string();
        self.services.iter().filter_map(move |s| {
            let e = s.edge.as_ref()?;
            (group == "*" || e.group == group).then_some((s, e))
        })
    }

    /// The service of `group` for HTTP virtual host `host` (any port suffix ignored).
    pub fn vhost(&self, group: &str, host: &str) -> Option<&Service> {
        let host = host_without_port(host).to_ascii_lowercase();
        self.edge_services(group)
            .find(|(_, e)| e.mode == Mode::Http && e.vhosts.contains(&host))
            .map(|(s, _)| s)
    }

    /// The service of `group` on service port `port`.
    pub fn service_port(&self, group: &str, port: u16) -> Option<(&Service, Mode)> {
        self.edge_services(group)
            .find(|(_, e)| e.service_port == Some(port))
            .map(|(s, e)| (s, e.mode))
    }

    /// The service of VIP `vip`.
    pub fn vip(&self, vip: &Vip) -> Option<&Service> {
        self.vip_services().find(|s| s.vips.contains(vip))
    }

    /// Every VIP port, with the VIP served there (one VIP per port on an address).
    pub fn vip_ports(&self) -> BTreeMap<u16, Vip> {
        let mut out = BTreeMap::new();
        for s in self.vip_services() {
            for v in &s.vips {
                out.entry(v.port).or_insert_with(|| v.clone());
            }
        }
        out
    }

    /// Keeps the first claim (by app id) of a service port, virtual host or VIP port, and
    /// reports the others: two apps cannot share one.
    fn drop_conflicts(&mut self, problems: &mut Vec<Problem>) {
        let mut ports: BTreeMap<(String, u16), String> = BTreeMap::new();
        let mut vhosts: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut vip_ports: BTreeMap<u16, String> = BTreeMap::new();
        for s in &mut self.services {
            let key = s.key();
            if let Some(e) = s.edge.as_mut() {
                if let Some(p) = e.service_port {
                    let claim = ports
                        .entry((e.group.clone(), p))
                        .or_insert_with(|| key.clone());
                    if *claim != key {
                        problems.push(Problem {
                            app_id: s.app_id.clone(),
                            message: format!(
                                "service port {p} of group {} is taken by {claim}; give this app another HAPROXY_{}_PORT",
                                e.group, s.port_index
                            ),
                        });
                        e.service_port = None;
                    }
                }
                let group = e.group.clone();
                e.vhosts.retain(|v| {
                    let claim = vhosts
                        .entry((group.clone(), v.clone()))
                        .or_insert_with(|| key.clone());
                    if *claim != key {
                        problems.push(Problem {
                            app_id: s.app_id.clone(),
                            message: format!("virtual host {v} is taken by {claim}"),
                        });
                    }
                    *claim == key
                });
            }
            s.vips.retain(|v| {
                let claim = vip_ports.entry(v.port).or_insert_with(|| key.clone());
                if *claim != key {
                    problems.push(Problem {
                        app_id: s.app_id.clone(),
                        message: format!(
                            "VIP {v}: port {} is taken by the VIP of {claim} (agents serve every VIP on their own address, one VIP per port)",
                            v.port
                        ),
                    });
                }
                *claim == key
            });
        }
    }

    /// Instance ids of every ready backend.
    pub fn ready_ids(&self) -> BTreeSet<String> {
        self.services
            .iter()
            .flat_map(|s| s.backends.iter().filter(|b| b.ready))
            .map(|b| b.instance_id.clone())
            .collect()
    }

    /// Instance ids of every backend.
    pub fn instance_ids(&self) -> BTreeSet<String> {
        self.services
            .iter()
            .flat_map(|s| s.backends.iter().map(|b| b.instance_id.clone()))
            .collect()
    }
}

/// `host:port` or `[v6]:port` without the port.
fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The label `DROVER_LB_<rest>`, else `HAPROXY_<rest>` (drover's wins when both are set).
fn lb_label<'a>(labels: &'a BTreeMap<String, String>, rest: &str) -> Option<(&'a str, String)> {
    for prefix in ["DROVER_LB_", "HAPROXY_"] {
        let name = format!("{prefix}{rest}");
        if let Some(v) = labels.get(&name) {
            return Some((v.as_str(), name));
        }
    }
    None
}

/// The services of one app: one per port definition with a VIP or an edge route.
fn services_of(app: &App, problems: &mut Vec<Problem>) -> Vec<Service> {
    let app_id = app.id().to_string();
    let mut problem = |message: String| {
        problems.push(Problem {
            app_id: app_id.clone(),
            message,
        })
    };
    let def = match app.routing() {
        Ok(d) => d,
        Err(e) => {
            problem(format!(
                "its definition cannot be read ({e}); it gets no routes"
            ));
            return Vec::new();
        }
    };
    let labels = &def.labels;
    let group = labels
        .get(DROVER_LB_GROUP)
        .or_else(|| labels.get(HAPROXY_GROUP))
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty());
    let max_connections = match labels
        .get(DROVER_LB_MAX_CONN)
        .map(|v| v.trim().parse::<u32>())
    {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => {
            problem(format!(
                "{DROVER_LB_MAX_CONN} must be a whole number from 1 up (connections per instance); ignored"
            ));
            None
        }
    };
    let tasks: &[Task] = app.tasks.as_deref().unwrap_or_default();
    let checked = !def.health_checks.is_empty();
    let mut out = Vec::new();
    for (n, port) in def.port_definitions.iter().enumerate() {
        let mut vips = BTreeSet::new();
        for (key, value) in &port.labels {
            if key.starts_with("VIP_") {
                match Vip::parse(value) {
                    Ok(v) => {
                        vips.insert(v);
                    }
                    Err(e) => problem(format!("port {n} label {key}: {e}")),
                }
            }
        }
        let edge = group
            .as_ref()
            .and_then(|g| edge_route(g, n, port.port, labels, &mut problem));
        if vips.is_empty() && edge.is_none() {
            continue;
        }
        let backends = tasks
            .iter()
            .filter_map(|t| backend(t, n, checked))
            .collect();
        out.push(Service {
            app_id: app_id.clone(),
            port_index: n,
            vips: vips.into_iter().collect(),
            edge,
            max_connections,
            backends: Arc::new(backends),
        });
    }
    out
}

/// The edge route of port `n` of an app in `group`, from its labels; none when the port
/// declares neither a service port nor a virtual host.
fn edge_route(
    group: &str,
    n: usize,
    defined_port: u32,
    labels: &BTreeMap<String, String>,
    problem: &mut impl FnMut(String),
) -> Option<EdgeRoute> {
    let vhosts: Vec<String> = lb_label(labels, &format!("{n}_VHOST"))
        .map(|(v, _)| {
            v.split(',')
                .map(|h| host_without_port(h.trim()).to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let service_port = match lb_label(labels, &format!("{n}_PORT")) {
        Some((v, name)) => match v.trim().parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                problem(format!(
                    "{name} is `{v}`, expected a port from 1 to 65535; ignored"
                ));
                None
            }
        },
        None => u16::try_from(defined_port).ok().filter(|&p| p > 0),
    };
    let mode = match lb_label(labels, &format!("{n}_MODE")) {
        Some((v, name)) => match v.trim().to_ascii_lowercase().as_str() {
            "tcp" => Mode::Tcp,
            "http" => Mode::Http,
            _ => {
                problem(format!(
                    "{name} is `{v}`, expected tcp or http; the port is not exposed"
                ));
                return None;
            }
        },
        None if vhosts.is_empty() => Mode::Tcp,
        None => Mode::Http,
    };
    if mode == Mode::Tcp && !vhosts.is_empty() {
        problem(format!(
            "port {n} has virtual hosts but mode tcp: virtual hosts need mode http; they are ignored"
        ));
    }
    let vhosts = if mode == Mode::Http {
        vhosts
    } else {
        Vec::new()
    };
    if service_port.is_none() && vhosts.is_empty() {
        return None;
    }
    Some(EdgeRoute {
        group: group.to_string(),
        mode,
        service_port,
        vhosts,
    })
}

/// The backend of port `n` of task `t`, if the task has that port and an address.
fn backend(t: &Task, n: usize, checked: bool) -> Option<Backend> {
    let port = u16::try_from(*t.ports.get(n)?).ok()?;
    let ip: IpAddr = t.ip_addresses.first()?.ip_address.parse().ok()?;
    let results = &t.health_check_results;
    let healthy = !checked || (!results.is_empty() && results.iter().all(|h| h.alive));
    let running = t.state == "TASK_RUNNING";
    Some(Backend {
        instance_id: t.id.clone(),
        addr: SocketAddr::new(ip, port),
        region: t.region.clone(),
        zone: t.zone.clone(),
        ready: running && healthy,
        health_unknown: running && checked && results.is_empty(),
    })
}

#[cfg(test)]
mod tests;
