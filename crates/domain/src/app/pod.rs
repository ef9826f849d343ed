//! Marathon pods: several containers run together as one instance on one agent.
//!
//! A pod is read from Marathon's pod JSON ([`read_pod`]) into an [`AppDefinition`] whose
//! [`AppDefinition::pod`] holds the containers: the instance's resources are the sum of
//! its containers', each endpoint is one of the instance's ports, and every container's
//! health check is one of the instance's checks. Placement, deployments, kills and
//! replacement then treat a pod as they treat an app.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::health::Timing;
use super::reader::{ObjectReader, PATH_MISSING};
use super::{
    AppDefinition, HealthCheck, HealthProtocol, KillSelection, PortDefinition, UnreachableStrategy,
    UpgradeStrategy, ValidationErrors,
};
use crate::constraint::Constraint;
use crate::limits;

/// The 422 message for containers drover cannot run in a pod.
pub const PROCESSES_ONLY: &str =
    "pods run as processes only in this release: give exec.command.shell and no image";

/// Marathon's rule for container and endpoint names.
pub const NAME_MESSAGE: &str =
    "must fully match regular expression '^[a-z0-9]([a-z0-9-]*[a-z0-9]+)*$'";

/// The containers of a pod, and the pod's definition as it is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSpec {
    /// The containers, in the order given.
    pub containers: Vec<PodContainer>,
    /// The pod's JSON as given, id normalised and `scaling` filled in (written back as the
    /// pod definition; fields drover does not interpret are kept).
    pub definition: Map<String, Value>,
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodContainer {
    /// Unique name within the pod.
    pub name: String,
    /// `exec.command.shell`, run with `/bin/sh -c`.
    pub shell: String,
    /// CPU shares.
    pub cpus: f64,
    /// Memory, MiB.
    pub mem: f64,
    /// Disk, MiB.
    pub disk: f64,
    /// Names of this container's endpoints (each is one of the instance's ports).
    pub endpoints: Vec<String>,
    /// The container's own environment (over the pod's).
    pub env: BTreeMap<String, String>,
    /// Index of this container's health check in the instance's `health_checks`.
    pub health_check: Option<usize>,
}

fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Reads a pod's Marathon JSON into the app-like record drover schedules; every problem is
/// recorded in `errors` (Marathon's paths: `/containers(0)/name`).
pub fn read_pod(value: &Value, errors: &mut ValidationErrors) -> Option<AppDefinition> {
    let mut definition = match value {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut r = ObjectReader::new(value, "", errors)?;
    let id = super::read_id(&mut r);
    let env = read_env(&mut r, "environment");
    let labels = r.string_map("labels");

    let mut ports: Vec<PortDefinition> = Vec::new();
    let mut health_checks: Vec<HealthCheck> = Vec::new();
    let mut grace: Option<f64> = None;
    let containers = match r.take("containers") {
        None => {
            r.error("containers", PATH_MISSING);
            Vec::new()
        }
        Some(Value::Array(items)) => {
            if items.is_empty() {
                r.error("containers", "a pod needs at least one container");
            }
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("/containers({i})");
                if let Some(c) = read_container(
                    item,
                    &path,
                    r.errors(),
                    &mut ports,
                    &mut health_checks,
                    &mut grace,
                ) {
                    if out.iter().any(|o: &PodContainer| o.name == c.name) {
                        r.error_at(
                            format!("{path}/name"),
                            format!("container name '{}' is used twice: names must be unique within a pod", c.name),
                        );
                    }
                    out.push(c);
                }
            }
            out
        }
        Some(_) => {
            r.error("containers", super::reader::EXPECTED_ARRAY);
            Vec::new()
        }
    };
    if ports.len() > limits::MAX_PORTS {
        r.error_at(
            "/containers".to_string(),
            format!(
                "got {} endpoints, expected {} or fewer per pod",
                ports.len(),
                limits::MAX_PORTS
            ),
        );
    }

    let instances = match r.take("scaling") {
        None => 1,
        Some(v) => read_scaling(&v, r.errors()),
    };
    definition.insert(
        "scaling".into(),
        json!({"kind": "fixed", "instances": instances}),
    );
    if let Some(id) = &id {
        definition.insert("id".into(), json!(id.as_str()));
    }
    definition.remove("version");
    definition.remove("versionInfo");

    let mut scheduling = Scheduling::default();
    if let Some(v) = r.take("scheduling") {
        scheduling = read_scheduling(&v, r.errors());
    }
    if let Some(v) = r.take("networks") {
        let host_only = v.as_array().is_some_and(|nets| {
            nets.iter()
                .all(|n| n.get("mode").and_then(Value::as_str).unwrap_or("host") == "host")
        });
        if !host_only {
            r.error(
                "networks",
                "pods use the host's network in this release: give no networks, or [{\"mode\":\"host\"}]",
            );
        }
    }

    let sum = |f: fn(&PodContainer) -> f64| containers.iter().map(f).sum::<f64>();
    let (cpus, mem, disk) = (sum(|c| c.cpus), sum(|c| c.mem), sum(|c| c.disk));
    Some(AppDefinition {
        id: id?,
        cmd: None,
        args: None,
        instances,
        cpus,
        mem,
        disk,
        port_definitions: ports,
        require_ports: true,
        env,
        labels,
        constraints: scheduling.constraints,
        health_checks,
        readiness_checks: Vec::new(),
        upgrade_strategy: scheduling.upgrade,
        backoff_seconds: scheduling.backoff.0,
        backoff_factor: scheduling.backoff.1,
        max_launch_delay_seconds: scheduling.backoff.2,
        kill_selection: scheduling.kill_selection,
        unreachable_strategy: scheduling.unreachable,
        task_kill_grace_period_seconds: grace,
        container: None,
        unknown: Map::new(),
        pod: Some(PodSpec {
            containers,
            definition,
        }),
    })
}

/// An environment object: string values only (secrets are not supported).
fn read_env(r: &mut ObjectReader<'_>, key: &str) -> BTreeMap<String, String> {
    let env = r.string_map(key);
    for name in env.keys() {
        let ok = !name.is_empty()
            && !name.as_bytes()[0].is_ascii_digit()
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !ok {
            let path = format!("{}/{name}", r.path(key));
            r.error_at(
                path,
                "must contain only alphanumeric chars or underscore, and must not begin with a number",
            );
        }
    }
    env
}

fn read_container(
    v: &Value,
    path: &str,
    errors: &mut ValidationErrors,
    ports: &mut Vec<PortDefinition>,
    health_checks: &mut Vec<HealthCheck>,
    grace: &mut Option<f64>,
) -> Option<PodContainer> {
    let mut r = ObjectReader::new(v, path, errors)?;
    let name = match r.string_opt("name") {
        Some(n) if valid_name(&n) => n,
        Some(n) => {
            r.error("name", NAME_MESSAGE);
            n
        }
        None => {
            r.error("name", PATH_MISSING);
            String::new()
        }
    };
    if r.take("image").is_some() {
        r.error("image", PROCESSES_ONLY);
    }
    let shell = r
        .object("exec", |mut e| {
            e.object("command", |mut c| c.string_opt("shell")).flatten()
        })
        .flatten();
    let shell = match shell {
        Some(s) if !s.trim().is_empty() => s,
        _ => {
            r.error_at(format!("{path}/exec/command/shell"), PROCESSES_ONLY);
            String::new()
        }
    };
    let (cpus, mem, disk) = match r.take("resources") {
        None => {
            r.error("resources", PATH_MISSING);
            (0.0, 0.0, 0.0)
        }
        Some(res) => {
            let rpath = r.path("resources");
            match ObjectReader::new(&res, &rpath, r.errors()) {
                Some(mut res) => {
                    let cpus = res.number_in("cpus", 1.0, 0.0, limits::MAX_CPUS);
                    let mem = res.number_in("mem", 128.0, 0.0, limits::MAX_MEM_MIB);
                    let disk = res.number_in("disk", 0.0, 0.0, limits::MAX_DISK_MIB);
                    if cpus <= 0.0 {
                        res.error(
                            "cpus",
                            "got 0, expected more than 0: every container needs some CPU",
                        );
                    }
                    if res.f64("gpus", 0.0) != 0.0 {
                        res.error(
                            "gpus",
                            "drover does not schedule GPUs: give 0 or leave gpus out",
                        );
                    }
                    (cpus, mem, disk)
                }
                None => (0.0, 0.0, 0.0),
            }
        }
    };
    let env = read_env(&mut r, "environment");
    let mut endpoints = Vec::new();
    if let Some(Value::Array(items)) = r.take("endpoints").map(|v| match v {
        Value::Array(_) => v,
        _ => Value::Null,
    }) {
        for (i, item) in items.iter().enumerate() {
            let epath = format!("{path}/endpoints({i})");
            let Some(mut e) = ObjectReader::new(item, &epath, r.errors()) else {
                continue;
            };
            let ename = match e.string_opt("name") {
                Some(n) if valid_name(&n) => n,
                Some(n) => {
                    e.error("name", NAME_MESSAGE);
                    n
                }
                None => {
                    e.error("name", PATH_MISSING);
                    continue;
                }
            };
            let host_port = e.whole_opt("hostPort").map_or(0, |(n, _)| n);
            if !(0..=65535).contains(&host_port) {
                e.error(
                    "hostPort",
                    format!("got {host_port}, expected between 0 and 65535"),
                );
            }
            if let Some((cp, _)) = e.whole_opt("containerPort")
                && !(0..=65535).contains(&cp)
            {
                e.error(
                    "containerPort",
                    format!("got {cp}, expected between 0 and 65535"),
                );
            }
            let protocol = e
                .strings_opt("protocol")
                .filter(|p| !p.is_empty())
                .map_or_else(|| "tcp".to_string(), |p| p.join(","));
            if !matches!(protocol.as_str(), "tcp" | "udp" | "udp,tcp" | "tcp,udp") {
                e.error(
                    "protocol",
                    "protocol must be [\"tcp\"], [\"udp\"] or [\"udp\",\"tcp\"]",
                );
            }
            let labels = e.string_map("labels");
            if ports
                .iter()
                .any(|p| p.name.as_deref() == Some(ename.as_str()))
            {
                e.error(
                    "name",
                    format!("endpoint name '{ename}' is used twice: endpoint names must be unique within a pod"),
                );
            }
            let host_port = host_port.clamp(0, 65535) as u32;
            if host_port != 0 && ports.iter().any(|p| p.port == host_port) {
                e.error(
                    "hostPort",
                    format!("host port {host_port} is asked for twice: host ports must be unique within a pod"),
                );
            }
            endpoints.push(ename.clone());
            ports.push(PortDefinition {
                port: host_port,
                protocol,
                name: Some(ename),
                labels,
            });
        }
    }
    let health_check = match r.take("healthCheck") {
        None => None,
        Some(hc) => {
            let hpath = r.path("healthCheck");
            read_health(&hc, &hpath, r.errors(), &endpoints, ports).map(|check| {
                health_checks.push(check);
                health_checks.len() - 1
            })
        }
    };
    if let Some(g) = r
        .object("lifecycle", |mut l| l.f64_opt("killGracePeriodSeconds"))
        .flatten()
    {
        if !(0.0..=limits::MAX_SECONDS).contains(&g) {
            r.error_at(
                format!("{path}/lifecycle/killGracePeriodSeconds"),
                format!("got {g}, expected between 0 and {}", limits::MAX_SECONDS),
            );
        }
        *grace = Some(grace.map_or(g, |old| old.max(g)));
    }
    Some(PodContainer {
        name,
        shell,
        cpus,
        mem,
        disk,
        endpoints,
        env,
        health_check,
    })
}

/// A container's `healthCheck`: exactly one of `http`, `tcp` and `exec`.
fn read_health(
    v: &Value,
    path: &str,
    errors: &mut ValidationErrors,
    own_endpoints: &[String],
    ports: &[PortDefinition],
) -> Option<HealthCheck> {
    let mut r = ObjectReader::new(v, path, errors)?;
    let http = r.take("http");
    let https = r.take("https");
    let tcp = r.take("tcp");
    let exec = r.take("exec");
    let given = [&http, &https, &tcp, &exec]
        .iter()
        .filter(|x| x.is_some())
        .count();
    if given != 1 {
        r.error_at(
            path.to_string(),
            "a health check needs exactly one of http, tcp and exec",
        );
        return None;
    }
    let endpoint_of = |r: &mut ObjectReader<'_>, key: &str, v: &Value| -> Option<u32> {
        let name = v.get("endpoint").and_then(Value::as_str);
        let Some(name) = name else {
            r.error_at(format!("{path}/{key}/endpoint"), PATH_MISSING);
            return None;
        };
        if !own_endpoints.iter().any(|e| e == name) {
            r.error_at(
                format!("{path}/{key}/endpoint"),
                format!("'{name}' is not an endpoint of this container"),
            );
            return None;
        }
        ports
            .iter()
            .position(|p| p.name.as_deref() == Some(name))
            .map(|i| i as u32)
    };
    let (protocol, name, port_index, hc_path, command) = if let Some(h) = http.or(https.clone()) {
        let key = if https.is_some() { "https" } else { "http" };
        let idx = endpoint_of(&mut r, key, &h);
        let secure = https.is_some() || h.get("scheme").and_then(Value::as_str) == Some("HTTPS");
        let p = h
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_string();
        if secure {
            (HealthProtocol::Https, "MESOS_HTTPS", idx, p, None)
        } else {
            (HealthProtocol::Http, "MESOS_HTTP", idx, p, None)
        }
    } else if let Some(t) = tcp {
        let idx = endpoint_of(&mut r, "tcp", &t);
        (HealthProtocol::Tcp, "MESOS_TCP", idx, "/".to_string(), None)
    } else {
        let shell = exec
            .as_ref()
            .and_then(|e| e.get("command"))
            .and_then(|c| c.get("shell"))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty());
        if shell.is_none() {
            r.error_at(format!("{path}/exec/command/shell"), PATH_MISSING);
        }
        (
            HealthProtocol::Command,
            "COMMAND",
            None,
            "/".to_string(),
            shell.map(str::to_string),
        )
    };
    let timing = Timing::read(&mut r);
    if protocol.uses_port() && port_index.is_none() {
        return None;
    }
    Some(HealthCheck {
        protocol_name: name.to_string(),
        protocol,
        path: hc_path,
        port_index,
        port: None,
        command,
        grace_period_seconds: timing.grace_period_seconds,
        interval_seconds: timing.interval_seconds,
        timeout_seconds: timing.timeout_seconds,
        max_consecutive_failures: timing.max_consecutive_failures,
        ignore_http1xx: false,
        delay_seconds: timing.delay_seconds,
    })
}

/// `scaling`: Marathon's `{"kind":"fixed","instances":n}` (or `{"fixed":{"instances":n}}`).
fn read_scaling(v: &Value, errors: &mut ValidationErrors) -> u32 {
    let Some(mut r) = ObjectReader::new(v, "/scaling", errors) else {
        return 1;
    };
    if let Some(fixed) = r.take("fixed") {
        let Some(mut f) = ObjectReader::new(&fixed, "/scaling/fixed", r.errors()) else {
            return 1;
        };
        return u32::try_from(f.int_in("instances", 1, 0, limits::MAX_INSTANCES)).unwrap_or(0);
    }
    match r.string_opt("kind").as_deref() {
        None | Some("fixed") => {}
        Some(other) => r.error(
            "kind",
            format!("'{other}' is not a scaling kind: use fixed"),
        ),
    }
    u32::try_from(r.int_in("instances", 1, 0, limits::MAX_INSTANCES)).unwrap_or(0)
}

/// What `scheduling` says.
struct Scheduling {
    constraints: Vec<Constraint>,
    upgrade: UpgradeStrategy,
    /// backoff seconds, factor, max launch delay seconds.
    backoff: (f64, f64, f64),
    kill_selection: KillSelection,
    unreachable: UnreachableStrategy,
}

impl Default for Scheduling {
    fn default() -> Self {
        Scheduling {
            constraints: Vec::new(),
            upgrade: UpgradeStrategy::default(),
            backoff: (1.0, 1.15, 300.0),
            kill_selection: KillSelection::default(),
            unreachable: UnreachableStrategy::default(),
        }
    }
}

fn read_scheduling(v: &Value, errors: &mut ValidationErrors) -> Scheduling {
    let mut out = Scheduling::default();
    let Some(mut r) = ObjectReader::new(v, "/scheduling", errors) else {
        return out;
    };
    let backoff = r.take("backoff").or_else(|| r.take("backoffStrategy"));
    if let Some(b) = backoff
        && let Some(mut b) = ObjectReader::new(&b, "/scheduling/backoff", r.errors())
    {
        out.backoff = (
            b.number_in("backoff", 1.0, 0.0, limits::MAX_SECONDS),
            b.number_in("backoffFactor", 1.15, 1.0, limits::MAX_BACKOFF_FACTOR),
            b.number_in("maxLaunchDelay", 300.0, 0.0, limits::MAX_SECONDS),
        );
    }
    let upgrade = r.take("upgrade").or_else(|| r.take("upgradeStrategy"));
    if let Some(u) = upgrade
        && let Some(mut u) = ObjectReader::new(&u, "/scheduling/upgrade", r.errors())
    {
        out.upgrade = UpgradeStrategy {
            minimum_health_capacity: u.number_in("minimumHealthCapacity", 1.0, 0.0, 1.0),
            maximum_over_capacity: u.number_in("maximumOverCapacity", 1.0, 0.0, 1.0),
        };
    }
    if let Some(p) = r.take("placement")
        && let Some(mut p) = ObjectReader::new(&p, "/scheduling/placement", r.errors())
    {
        out.constraints = p
            .array("constraints", |v, path, errors| {
                // Pods write {fieldName, operator, value}; apps' array form is taken too.
                let as_array = match v {
                    Value::Object(o) => {
                        let mut parts = vec![
                            o.get("fieldName").cloned().unwrap_or(Value::Null),
                            o.get("operator").cloned().unwrap_or(Value::Null),
                        ];
                        if let Some(val) = o.get("value").filter(|x| !x.is_null()) {
                            parts.push(val.clone());
                        }
                        Value::Array(parts)
                    }
                    other => other.clone(),
                };
                Constraint::from_json(&as_array)
                    .map_err(|msg| errors.add(path, msg))
                    .ok()
            })
            .unwrap_or_default();
    }
    match r.string_opt("killSelection").as_deref() {
        None | Some("YOUNGEST_FIRST") => {}
        Some("OLDEST_FIRST") => out.kill_selection = KillSelection::OldestFirst,
        Some(other) => r.error(
            "killSelection",
            format!("'{other}' is not a kill selection: use YOUNGEST_FIRST or OLDEST_FIRST"),
        ),
    }
    out.unreachable = super::read_unreachable(&mut r);
    out
}

impl PodSpec {
    /// The pod's JSON as Marathon shows it, with `version`.
    pub fn to_json(&self, version: Option<&str>) -> Value {
        let mut m = self.definition.clone();
        if let Some(v) = version {
            m.insert("version".into(), json!(v));
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests;
