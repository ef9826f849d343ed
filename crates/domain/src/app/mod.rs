//! App definitions in Marathon's JSON, with Marathon's defaults and validation.
//!
//! [`AppDefinition::from_json`] is the one way in: it reads every field, records every
//! problem (type errors and rule violations) and returns them all at once as Marathon's
//! 422 body. Fields drover does not know are kept and written back unchanged.

mod health;
pub mod pod;
mod reader;
pub mod readiness;
pub mod validation;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

pub use health::{HealthCheck, HealthProtocol};
pub use pod::{PodContainer, PodSpec};
use reader::{EXPECTED_STRING, ObjectReader, PATH_MISSING, out_of};
pub use readiness::{ReadinessCheck, ReadinessProtocol};
pub use validation::ValidationErrors;

use crate::constraint::Constraint;
use crate::limits;

/// An app's path id, always absolute: `/prod/web`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppId(String);

/// Marathon's rule for one path segment.
pub const ID_SEGMENT_MESSAGE: &str = "must fully match regular expression '^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|(\\.|\\.\\.)$'";

/// drover's limit on an id's length (agents name files after it).
pub const ID_LENGTH_MESSAGE: &str = "is longer than 200 bytes: agents name each instance's sandbox directory after its app id, and a file name has at most 255 bytes; use a shorter id";

impl AppId {
    /// Normalises and checks an id: `web` becomes `/web`; segments follow Marathon's rule.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim_end_matches('/');
        let segments: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() {
            return Err("Path must contain at least one path element");
        }
        if !segments.iter().all(|s| valid_segment(s)) {
            return Err(ID_SEGMENT_MESSAGE);
        }
        Ok(AppId(format!("/{}", segments.join("/"))))
    }

    /// The id as text, with its leading slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_segment(s: &str) -> bool {
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    s != "." && s != ".." && s.split('.').all(label_ok)
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for AppId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AppId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AppId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One port an app asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct PortDefinition {
    /// 0 for "any port"; with `requirePorts`, the exact host port.
    pub port: u32,
    /// `tcp`, `udp` or `udp,tcp`.
    pub protocol: String,
    /// Name, exported as `PORT_<NAME>`.
    pub name: Option<String>,
    /// Labels of the port.
    pub labels: BTreeMap<String, String>,
}

/// How a deployment replaces instances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpgradeStrategy {
    /// Fraction of instances that must stay healthy (default 1.0).
    pub minimum_health_capacity: f64,
    /// Fraction of extra instances allowed during a deployment (default 1.0).
    pub maximum_over_capacity: f64,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
        }
    }
}

/// What happens to instances on an unreachable agent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnreachableStrategy {
    /// Never replace; wait for the agent.
    Disabled,
    /// Replace after `inactive_after_seconds`, forget after `expunge_after_seconds`.
    Enabled {
        /// Seconds until a replacement is launched.
        inactive_after_seconds: f64,
        /// Seconds until the unreachable instance is expunged.
        expunge_after_seconds: f64,
    },
}

impl Default for UnreachableStrategy {
    /// Marathon's current default: replace at once.
    fn default() -> Self {
        UnreachableStrategy::Enabled {
            inactive_after_seconds: 0.0,
            expunge_after_seconds: 0.0,
        }
    }
}

/// Which instances a scale-down kills first, after constraints and health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KillSelection {
    /// Newest first (Marathon's default).
    #[default]
    YoungestFirst,
    /// Oldest first.
    OldestFirst,
}

/// Where a task runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerType {
    /// A Docker container.
    Docker,
    /// A plain process (Mesos containerizer).
    Mesos,
}

/// The `container` field: its type, the Docker image, and everything else kept verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// DOCKER or MESOS.
    pub kind: ContainerType,
    /// `container.docker.image`.
    pub docker_image: Option<String>,
    /// The container object as given (for round-tripping fields drover does not use).
    pub raw: Map<String, Value>,
}

/// A Marathon app definition.
#[derive(Debug, Clone, PartialEq)]
pub struct AppDefinition {
    /// Absolute path id.
    pub id: AppId,
    /// Shell command.
    pub cmd: Option<String>,
    /// Command as argv (instead of `cmd`).
    pub args: Option<Vec<String>>,
    /// Desired instance count.
    pub instances: u32,
    /// CPU shares per instance.
    pub cpus: f64,
    /// Memory per instance, MiB.
    pub mem: f64,
    /// Disk per instance, MiB.
    pub disk: f64,
    /// Ports per instance.
    pub port_definitions: Vec<PortDefinition>,
    /// Use the port numbers given as host ports.
    pub require_ports: bool,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Placement constraints.
    pub constraints: Vec<Constraint>,
    /// Health checks.
    pub health_checks: Vec<HealthCheck>,
    /// Readiness checks (at most one, as in Marathon).
    pub readiness_checks: Vec<ReadinessCheck>,
    /// Deployment strategy.
    pub upgrade_strategy: UpgradeStrategy,
    /// First launch delay after a failure, seconds.
    pub backoff_seconds: f64,
    /// Multiplier of the delay per failure.
    pub backoff_factor: f64,
    /// Upper bound of the delay, seconds.
    pub max_launch_delay_seconds: f64,
    /// Scale-down preference.
    pub kill_selection: KillSelection,
    /// What to do with instances on unreachable agents.
    pub unreachable_strategy: UnreachableStrategy,
    /// Seconds between SIGTERM and SIGKILL.
    pub task_kill_grace_period_seconds: Option<f64>,
    /// Container settings.
    pub container: Option<Container>,
    /// Fields drover does not interpret, kept as given.
    pub unknown: Map<String, Value>,
    /// Set for a pod (`/v2/pods`): its containers run together as each instance.
    pub pod: Option<PodSpec>,
}

/// The message for an app that names the field drover stores pods under.
pub const POD_FIELD_MESSAGE: &str = "is not a field of an app: a pod (several containers per instance) is created with POST /v2/pods";

const MSG_CMD_ARGS: &str =
    "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.";

fn between(value: f64, min: f64, max: f64) -> Option<String> {
    (!(min..=max).contains(&value))
        .then(|| format!("got {value}, expected between {min:?} and {max:?}"))
}

impl AppDefinition {
    /// Reads and validates an app from Marathon's JSON; every problem is reported at once.
    pub fn from_json(value: &Value) -> Result<Self, ValidationErrors> {
        Self::read(value, ValidationErrors::default())
    }

    /// Reads a definition that was accepted before, from the log or a snapshot: as
    /// [`AppDefinition::from_json`], but without drover's limits (values beyond one are
    /// clamped to it), so a limit tightened by an upgrade never makes the log unreadable.
    pub fn from_stored_json(value: &Value) -> Result<Self, ValidationErrors> {
        Self::read(value, ValidationErrors::for_stored())
    }

    /// Reads and validates a pod from Marathon's pod JSON (`/v2/pods`) into the app-like
    /// record drover schedules (see [`pod`]).
    pub fn pod_from_json(value: &Value) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        find_nul_bytes(value, "", &mut errors);
        let app = pod::read_pod(value, &mut errors);
        if let Some(app) = &app {
            let size = app.to_json().to_string().len();
            if size > limits::MAX_APP_BYTES {
                errors.add_limit(
                    "/",
                    format!(
                        "the pod definition is {size} bytes as JSON; at most {} bytes (512 KiB) are allowed",
                        limits::MAX_APP_BYTES
                    ),
                );
            }
        }
        match app {
            Some(app) if errors.is_empty() => Ok(app),
            _ => Err(errors),
        }
    }

    /// True for a pod's record.
    pub fn is_pod(&self) -> bool {
        self.pod.is_some()
    }

    /// Sets the desired instance count; a pod's `scaling` follows, so the definition it is
    /// shown and stored as says the same (a pod is read back from that definition).
    pub fn set_instances(&mut self, instances: u32) {
        self.instances = instances;
        if let Some(pod) = self.pod.as_mut() {
            pod.definition.insert(
                "scaling".into(),
                json!({"kind": "fixed", "instances": instances}),
            );
        }
    }

    /// True when `self` and `other` are the same definition but for the instance count: a
    /// change between them is a scale, and instances of one are not outdated by the other.
    pub fn same_but_instances(&self, other: &AppDefinition) -> bool {
        let mut same = other.clone();
        same.set_instances(self.instances);
        same == *self
    }

    fn read(value: &Value, mut errors: ValidationErrors) -> Result<Self, ValidationErrors> {
        if let Some(pod) = value.get("pod").filter(|p| !p.is_null()) {
            if !errors.enforces_limits() {
                // A stored pod: its definition is the pod's JSON.
                return pod::read_pod(pod, &mut errors).ok_or(errors);
            }
            errors.add("/pod", POD_FIELD_MESSAGE);
        }
        // The rules added for new input (no NUL bytes, the size) are not applied to what is
        // stored: an entry accepted before them must stay readable, and re-encoding every
        // definition on every log read just to measure it would be wasted work.
        let enforce = errors.enforces_limits();
        if enforce {
            find_nul_bytes(value, "", &mut errors);
        }
        let app = read_app(value, &mut errors);
        if let Some(app) = app.as_ref().filter(|_| enforce) {
            let size = app.to_json().to_string().len();
            if size > limits::MAX_APP_BYTES {
                errors.add_limit(
                    "/",
                    format!(
                        "the app definition is {size} bytes as JSON; at most {} bytes (512 KiB) are allowed: keep large data out of it (fetch it from a URI at start instead)",
                        limits::MAX_APP_BYTES
                    ),
                );
            }
        }
        match app {
            Some(app) if errors.is_empty() => Ok(app),
            // A stored definition was valid when it was accepted: a rule tightened since then
            // must not make the log or a snapshot unreadable. It loads as read, every field
            // the current rules refuse at its default; only a definition without a readable
            // id (which no version of drover accepted) is refused.
            Some(app) if !enforce => Ok(app),
            _ => Err(errors),
        }
    }

    /// Reads and validates an app from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, ValidationErrors> {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => Self::from_json(&v),
            Err(e) => {
                let mut errors = ValidationErrors::default();
                errors.add("/", format!("Invalid JSON: {e}"));
                Err(errors)
            }
        }
    }

    /// The region the app is pinned to by `["@region","IS",R]` (or `CLUSTER` with a value).
    pub fn region(&self) -> Option<&str> {
        self.constraints.iter().find_map(Constraint::region)
    }

    /// Marathon's JSON, defaults filled in, unknown fields written back.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id.as_str()));
        if let Some(cmd) = &self.cmd {
            m.insert("cmd".into(), json!(cmd));
        }
        if let Some(args) = &self.args {
            m.insert("args".into(), json!(args));
        }
        m.insert("instances".into(), json!(self.instances));
        m.insert("cpus".into(), json!(self.cpus));
        m.insert("mem".into(), json!(self.mem));
        m.insert("disk".into(), json!(self.disk));
        let ports: Vec<Value> = self
            .port_definitions
            .iter()
            .map(|p| {
                let mut v = json!({"port": p.port, "protocol": p.protocol});
                if let Some(name) = &p.name {
                    v["name"] = json!(name);
                }
                if !p.labels.is_empty() {
                    v["labels"] = json!(p.labels);
                }
                v
            })
            .collect();
        m.insert("portDefinitions".into(), Value::Array(ports));
        m.insert("requirePorts".into(), json!(self.require_ports));
        m.insert("env".into(), json!(self.env));
        m.insert("labels".into(), json!(self.labels));
        m.insert("constraints".into(), json!(self.constraints));
        let hcs: Vec<Value> = self
            .health_checks
            .iter()
            .map(HealthCheck::to_json)
            .collect();
        m.insert("healthChecks".into(), Value::Array(hcs));
        let rcs: Vec<Value> = self
            .readiness_checks
            .iter()
            .map(ReadinessCheck::to_json)
            .collect();
        m.insert("readinessChecks".into(), Value::Array(rcs));
        m.insert(
            "upgradeStrategy".into(),
            json!({
                "minimumHealthCapacity": self.upgrade_strategy.minimum_health_capacity,
                "maximumOverCapacity": self.upgrade_strategy.maximum_over_capacity,
            }),
        );
        m.insert("backoffSeconds".into(), json!(self.backoff_seconds));
        m.insert("backoffFactor".into(), json!(self.backoff_factor));
        m.insert(
            "maxLaunchDelaySeconds".into(),
            json!(self.max_launch_delay_seconds),
        );
        m.insert(
            "killSelection".into(),
            json!(match self.kill_selection {
                KillSelection::YoungestFirst => "YOUNGEST_FIRST",
                KillSelection::OldestFirst => "OLDEST_FIRST",
            }),
        );
        m.insert(
            "unreachableStrategy".into(),
            match self.unreachable_strategy {
                UnreachableStrategy::Disabled => json!("disabled"),
                UnreachableStrategy::Enabled {
                    inactive_after_seconds,
                    expunge_after_seconds,
                } => json!({
                    "inactiveAfterSeconds": inactive_after_seconds,
                    "expungeAfterSeconds": expunge_after_seconds,
                }),
            },
        );
        if let Some(g) = self.task_kill_grace_period_seconds {
            m.insert("taskKillGracePeriodSeconds".into(), json!(g));
        }
        if let Some(c) = &self.container {
            m.insert("container".into(), Value::Object(c.raw.clone()));
        }
        for (k, v) in &self.unknown {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if let Some(pod) = &self.pod {
            m.insert("pod".into(), Value::Object(pod.definition.clone()));
        }
        Value::Object(m)
    }
}

impl Serialize for AppDefinition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for AppDefinition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only stored definitions are deserialised; the API reads with `from_json`.
        let v = Value::deserialize(d)?;
        AppDefinition::from_stored_json(&v).map_err(serde::de::Error::custom)
    }
}

/// Strings become argv, environment and file names on an agent, none of which can hold a NUL
/// byte: such a definition could never start, so it is refused where the NUL is.
fn find_nul_bytes(value: &Value, path: &str, errors: &mut ValidationErrors) {
    const MESSAGE: &str = "contains a NUL byte (\\u0000), which no command, argument, environment variable or file name can hold; remove it";
    match value {
        Value::String(s) if s.contains('\0') => errors.add(reader::path_or_root(path), MESSAGE),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_nul_bytes(item, &format!("{path}({i})"), errors);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let child = format!("{path}/{k}");
                if k.contains('\0') {
                    errors.add(child.clone(), MESSAGE);
                }
                find_nul_bytes(v, &child, errors);
            }
        }
        _ => {}
    }
}

/// The `id` of an app or pod: required, Marathon's path rules, drover's length limit.
fn read_id(r: &mut ObjectReader<'_>) -> Option<AppId> {
    match r.string_opt("id") {
        Some(raw) => match AppId::parse(&raw) {
            Ok(id) if id.as_str().len() > limits::MAX_APP_ID_BYTES => {
                let path = r.path("id");
                r.errors().add_limit(path, ID_LENGTH_MESSAGE);
                Some(id)
            }
            Ok(id) => Some(id),
            Err(msg) => {
                r.error("id", msg);
                None
            }
        },
        None => {
            // A wrong type was reported already; a missing id is reported here.
            if !r.errors().at("/id").contains(&EXPECTED_STRING.to_string()) {
                r.error("id", PATH_MISSING);
            }
            None
        }
    }
}

fn read_app(value: &Value, errors: &mut ValidationErrors) -> Option<AppDefinition> {
    let mut r = ObjectReader::new(value, "", errors)?;

    let id = read_id(&mut r);
    let cmd = r.string_opt("cmd");
    let args = r.strings_opt("args");

    let instances = r.int_in("instances", 1, 0, limits::MAX_INSTANCES);
    let cpus = r.number_in("cpus", 1.0, 0.0, limits::MAX_CPUS);
    let mem = r.number_in("mem", 128.0, 0.0, limits::MAX_MEM_MIB);
    let disk = r.number_in("disk", 0.0, 0.0, limits::MAX_DISK_MIB);
    let backoff_seconds = r.number_in("backoffSeconds", 1.0, 0.0, limits::MAX_SECONDS);
    let max_launch_delay_seconds =
        r.number_in("maxLaunchDelaySeconds", 300.0, 0.0, limits::MAX_SECONDS);
    let backoff_factor = r.number_in("backoffFactor", 1.15, 1.0, limits::MAX_BACKOFF_FACTOR);
    let task_kill_grace_period_seconds = r.f64_opt("taskKillGracePeriodSeconds");
    if let Some(e) =
        task_kill_grace_period_seconds.and_then(|g| out_of(g, 0.0, limits::MAX_SECONDS))
    {
        r.error("taskKillGracePeriodSeconds", e);
    }

    let port_definitions = read_ports(&mut r);
    let require_ports = r.bool("requirePorts", false);
    let env = r.string_map("env");
    for name in env.keys() {
        let ok = !name.is_empty()
            && !name.as_bytes()[0].is_ascii_digit()
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !ok {
            let path = format!("{}/{name}", r.path("env"));
            r.error_at(
                path,
                "must contain only alphanumeric chars or underscore, and must not begin with a number",
            );
        }
    }
    let labels = r.string_map("labels");

    let constraints = r
        .array("constraints", |v, path, errors| {
            Constraint::from_json(v)
                .map_err(|msg| errors.add(path, msg))
                .ok()
        })
        .unwrap_or_default();
    let mut region: Option<(usize, &str)> = None;
    for (i, c) in constraints.iter().enumerate() {
        if let Some(rg) = c.region() {
            match region {
                Some((first, other)) if other != rg => r.error_at(
                    format!("/constraints({i})"),
                    format!(
                        "a service runs in exactly one region, but this names {rg} and /constraints({first}) names {other}"
                    ),
                ),
                None => region = Some((i, rg)),
                _ => {}
            }
        }
    }

    let health_checks = r
        .array("healthChecks", |v, path, errors| {
            HealthCheck::read(v, &path, errors)
        })
        .unwrap_or_default();
    for (i, hc) in health_checks.iter().enumerate() {
        if let Some(idx) = hc.port_index
            && hc.port.is_none()
            && hc.protocol.uses_port()
            && idx as usize >= port_definitions.len()
        {
            r.error_at(
                format!("/healthChecks({i})"),
                "Health check port indices must address an element of the ports array or container port mappings.",
            );
        }
    }

    let readiness_checks = r
        .array("readinessChecks", |v, path, errors| {
            ReadinessCheck::read(v, &path, &port_definitions, errors)
        })
        .unwrap_or_default();
    if readiness_checks.len() > 1 {
        r.error("readinessChecks", readiness::AT_MOST_ONE);
    }

    let upgrade_strategy = r
        .object("upgradeStrategy", |mut u| {
            let s = UpgradeStrategy {
                minimum_health_capacity: u.f64("minimumHealthCapacity", 1.0),
                maximum_over_capacity: u.f64("maximumOverCapacity", 1.0),
            };
            for (key, v) in [
                ("minimumHealthCapacity", s.minimum_health_capacity),
                ("maximumOverCapacity", s.maximum_over_capacity),
            ] {
                if let Some(e) = between(v, 0.0, 1.0) {
                    u.error(key, e);
                }
            }
            s
        })
        .unwrap_or_default();

    let kill_selection = match r.string_opt("killSelection").as_deref() {
        None | Some("YOUNGEST_FIRST") => KillSelection::YoungestFirst,
        Some("OLDEST_FIRST") => KillSelection::OldestFirst,
        Some(other) => {
            r.error(
                "killSelection",
                format!("'{other}' is not a kill selection: use YOUNGEST_FIRST or OLDEST_FIRST"),
            );
            KillSelection::YoungestFirst
        }
    };
    let unreachable_strategy = read_unreachable(&mut r);
    let container = read_container(&mut r);

    let both = cmd.is_some() && args.is_some();
    let neither = cmd.is_none() && args.is_none() && container.is_none();
    if both || neither {
        r.error_at("/".to_string(), MSG_CMD_ARGS);
    }

    let unknown = r.rest();
    Some(AppDefinition {
        id: id?,
        cmd,
        args,
        // In range: a value outside was recorded above and the app refused.
        instances: u32::try_from(instances).unwrap_or(0),
        cpus,
        mem,
        disk,
        port_definitions,
        require_ports,
        env,
        labels,
        constraints,
        health_checks,
        readiness_checks,
        upgrade_strategy,
        backoff_seconds,
        backoff_factor,
        max_launch_delay_seconds,
        kill_selection,
        unreachable_strategy,
        task_kill_grace_period_seconds,
        container,
        unknown,
        pod: None,
    })
}

/// A port definition as read, before its checks: port, protocol, name, labels.
type RawPort = (
    (i64, String),
    String,
    Option<String>,
    BTreeMap<String, String>,
);

fn read_ports(r: &mut ObjectReader<'_>) -> Vec<PortDefinition> {
    let legacy = r.array("ports", |v, path, errors| match reader::whole(v) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.add(path, e);
            None
        }
    });
    let defs = r.array("portDefinitions", |v, path, errors| {
        let mut p = ObjectReader::new(v, &path, errors)?;
        let port = p.whole_opt("port").unwrap_or((0, "0".into()));
        let protocol = p.string_opt("protocol").unwrap_or_else(|| "tcp".into());
        if !matches!(protocol.as_str(), "tcp" | "udp" | "udp,tcp" | "tcp,udp") {
            p.error("protocol", "protocol must be one of tcp, udp or udp,tcp");
        }
        let name = p.string_opt("name");
        let labels = p.string_map("labels");
        Some((port, protocol, name, labels))
    });
    if legacy.is_some() && defs.is_some() {
        r.error_at(
            "/".to_string(),
            "You cannot specify both ports and port definitions",
        );
    }
    let raw: Vec<RawPort> = match (legacy, defs) {
        (_, Some(defs)) => defs,
        (Some(ports), None) => ports
            .into_iter()
            .map(|p| (p, "tcp".to_string(), None, BTreeMap::new()))
            .collect(),
        (None, None) => vec![(
            (0, "0".into()),
            "tcp".into(),
            Some("default".into()),
            BTreeMap::new(),
        )],
    };
    if raw.len() > limits::MAX_PORTS {
        r.error_at(
            "/portDefinitions".to_string(),
            format!(
                "got {} ports, expected {} or fewer per app",
                raw.len(),
                limits::MAX_PORTS
            ),
        );
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut seen_ports = Vec::new();
    let mut seen_names = Vec::new();
    for (i, ((port, text), protocol, name, labels)) in raw.into_iter().enumerate() {
        if !(0..=65535).contains(&port) {
            r.error_at(
                format!("/portDefinitions({i})/port"),
                format!("got {text}, expected between 0 and 65535"),
            );
        }
        if port != 0 {
            if seen_ports.contains(&port) {
                r.error_at("/portDefinitions".to_string(), "Ports must be unique.");
            }
            seen_ports.push(port);
        }
        if let Some(n) = &name {
            if seen_names.contains(n) {
                r.error_at("/portDefinitions".to_string(), "Port names must be unique.");
            }
            seen_names.push(n.clone());
        }
        out.push(PortDefinition {
            port: port.clamp(0, 65535) as u32,
            protocol,
            name,
            labels,
        });
    }
    out
}

fn read_unreachable(r: &mut ObjectReader<'_>) -> UnreachableStrategy {
    match r.take("unreachableStrategy") {
        None => UnreachableStrategy::default(),
        Some(Value::String(s)) if s == "disabled" => UnreachableStrategy::Disabled,
        Some(v @ Value::Object(_)) => {
            let path = r.path("unreachableStrategy");
            let Some(mut u) = ObjectReader::new(&v, &path, r.errors()) else {
                return UnreachableStrategy::default();
            };
            let inactive = u.number_in("inactiveAfterSeconds", 0.0, 0.0, limits::MAX_SECONDS);
            let expunge = u.number_in("expungeAfterSeconds", 0.0, 0.0, limits::MAX_SECONDS);
            if expunge < inactive {
                u.error(
                    "expungeAfterSeconds",
                    "expungeAfterSeconds must be greater than or equal to inactiveAfterSeconds",
                );
            }
            UnreachableStrategy::Enabled {
                inactive_after_seconds: inactive,
                expunge_after_seconds: expunge,
            }
        }
        Some(_) => {
            r.error(
                "unreachableStrategy",
                "must be \"disabled\" or {\"inactiveAfterSeconds\":N,\"expungeAfterSeconds\":M}",
            );
            UnreachableStrategy::default()
        }
    }
}

fn read_container(r: &mut ObjectReader<'_>) -> Option<Container> {
    let raw = r.take("container")?;
    let Value::Object(map) = raw else {
        r.error("container", reader::EXPECTED_OBJECT);
        return None;
    };
    let kind = match map.get("type").and_then(Value::as_str).unwrap_or("MESOS") {
        "DOCKER" => ContainerType::Docker,
        "MESOS" => ContainerType::Mesos,
        other => {
            r.error_at(
                "/container/type".to_string(),
                format!("'{other}' is not a container type: use DOCKER or MESOS"),
            );
            ContainerType::Mesos
        }
    };
    let docker_image = map
        .get("docker")
        .and_then(|d| d.get("image"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if kind == ContainerType::Docker && docker_image.as_deref().is_none_or(str::is_empty) {
        r.error_at(
            "/container/docker/image".to_string(),
            "must not be empty: a DOCKER container needs an image",
        );
    }
    Some(Container {
        kind,
        docker_image,
        raw: map,
    })
}

#[cfg(test)]
mod tests;
