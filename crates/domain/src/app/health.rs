//! Health checks as Marathon defines them (run by agents).

use serde_json::{Value, json};

use super::reader::ObjectReader;
use super::validation::ValidationErrors;
use crate::limits;

/// How a health check probes an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthProtocol {
    /// HTTP GET, 200–399 healthy.
    Http,
    /// HTTPS GET (certificate not verified), 200–399 healthy.
    Https,
    /// A TCP connect.
    Tcp,
    /// A shell command; exit 0 healthy.
    Command,
}

impl HealthProtocol {
    /// Reads Marathon's names, including the `MESOS_` spellings.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "HTTP" | "MESOS_HTTP" => HealthProtocol::Http,
            "HTTPS" | "MESOS_HTTPS" => HealthProtocol::Https,
            "TCP" | "MESOS_TCP" => HealthProtocol::Tcp,
            "COMMAND" => HealthProtocol::Command,
            _ => return None,
        })
    }

    /// True for protocols that probe a port.
    pub fn uses_port(self) -> bool {
        self != HealthProtocol::Command
    }
}

/// One health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// The protocol as written (kept for output, e.g. `MESOS_HTTP`).
    pub protocol_name: String,
    /// What the protocol means.
    pub protocol: HealthProtocol,
    /// HTTP path (default `/`).
    pub path: String,
    /// Index into the instance's ports (default 0).
    pub port_index: Option<u32>,
    /// A fixed port instead of an index.
    pub port: Option<u32>,
    /// Shell command for `COMMAND`.
    pub command: Option<String>,
    /// Failures ignored for this long after start (default 300 s).
    pub grace_period_seconds: f64,
    /// Seconds between checks (default 60).
    pub interval_seconds: f64,
    /// Seconds before a check counts as failed (default 20).
    pub timeout_seconds: f64,
    /// Failures in a row before the instance is killed; 0 never kills (default 3).
    pub max_consecutive_failures: u32,
    /// Treat 1xx answers as neither healthy nor unhealthy.
    pub ignore_http1xx: bool,
    /// Seconds before the first check (default 15).
    pub delay_seconds: f64,
}

/// When and how often a check runs, and how many failures kill: the fields apps' and pods'
/// health checks share, with Marathon's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Timing {
    pub(super) grace_period_seconds: f64,
    pub(super) interval_seconds: f64,
    pub(super) timeout_seconds: f64,
    pub(super) delay_seconds: f64,
    pub(super) max_consecutive_failures: u32,
}

impl Timing {
    /// Reads the timing fields of a check object, recording problems in `r`.
    pub(super) fn read(r: &mut ObjectReader<'_>) -> Self {
        let seconds = |r: &mut ObjectReader<'_>, key: &str, default: f64| {
            r.number_in(key, default, 0.0, limits::MAX_SECONDS)
        };
        let grace_period_seconds = seconds(r, "gracePeriodSeconds", 300.0);
        let interval_seconds = seconds(r, "intervalSeconds", 60.0);
        let timeout_seconds = seconds(r, "timeoutSeconds", 20.0);
        let delay_seconds = seconds(r, "delaySeconds", 15.0);
        if interval_seconds == 0.0 {
            r.error("intervalSeconds", "got 0, expected more than 0");
        }
        let max_failures = r.int_in(
            "maxConsecutiveFailures",
            3,
            0,
            limits::MAX_CONSECUTIVE_FAILURES,
        );
        Timing {
            grace_period_seconds,
            interval_seconds,
            timeout_seconds,
            delay_seconds,
            max_consecutive_failures: max_failures.max(0) as u32,
        }
    }
}

impl HealthCheck {
    /// Reads one health check, recording problems under `path`.
    pub fn read(v: &Value, path: &str, errors: &mut ValidationErrors) -> Option<Self> {
        let mut r = ObjectReader::new(v, path, errors)?;
        let protocol_name = r.string_opt("protocol").unwrap_or_else(|| "HTTP".into());
        let protocol = HealthProtocol::parse(&protocol_name).unwrap_or_else(|| {
            r.error(
                "protocol",
                format!("'{protocol_name}' is not a health check protocol: use HTTP, HTTPS, TCP, COMMAND, MESOS_HTTP, MESOS_HTTPS or MESOS_TCP"),
            );
            HealthProtocol::Http
        });
        let path_value = r.string_opt("path").unwrap_or_else(|| "/".into());
        let port_index = r.whole_opt("portIndex").map(|(n, _)| n);
        let port = r.whole_opt("port").map(|(n, _)| n);
        if port_index.is_some() && port.is_some() {
            r.error("port", "use either port or portIndex, not both");
        }
        let command = r.object("command", |mut c| c.string_opt("value")).flatten();
        if protocol == HealthProtocol::Command && command.as_deref().is_none_or(str::is_empty) {
            r.error(
                "command",
                "COMMAND health checks need {\"command\":{\"value\":\"…\"}}",
            );
        }
        let timing = Timing::read(&mut r);
        let ignore_http1xx = r.bool("ignoreHttp1xx", false);
        for (key, v) in [("portIndex", port_index), ("port", port)] {
            if v.is_some_and(|p| !(0..=65535).contains(&p)) {
                r.error(key, "got a value outside 0..65535");
            }
        }
        Some(HealthCheck {
            protocol_name,
            protocol,
            path: path_value,
            port_index: match (port_index, port) {
                (Some(i), _) => Some(i.clamp(0, 65535) as u32),
                (None, None) if protocol.uses_port() => Some(0),
                _ => None,
            },
            port: port.map(|p| p.clamp(0, 65535) as u32),
            command,
            grace_period_seconds: timing.grace_period_seconds,
            interval_seconds: timing.interval_seconds,
            timeout_seconds: timing.timeout_seconds,
            max_consecutive_failures: timing.max_consecutive_failures,
            ignore_http1xx,
            delay_seconds: timing.delay_seconds,
        })
    }

    /// Marathon's JSON with defaults filled in.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "protocol": self.protocol_name,
            "gracePeriodSeconds": self.grace_period_seconds,
            "intervalSeconds": self.interval_seconds,
            "timeoutSeconds": self.timeout_seconds,
            "maxConsecutiveFailures": self.max_consecutive_failures,
            "delaySeconds": self.delay_seconds,
        });
        // HTTP fields are written for other protocols too when given, so the definition
        // reads back as it was written (found by fuzzing: a TCP check with a path).
        let http = matches!(self.protocol, HealthProtocol::Http | HealthProtocol::Https);
        if http || self.path != "/" {
            v["path"] = json!(self.path);
        }
        if http || self.ignore_http1xx {
            v["ignoreHttp1xx"] = json!(self.ignore_http1xx);
        }
        if let Some(i) = self.port_index {
            v["portIndex"] = json!(i);
        }
        if let Some(p) = self.port {
            v["port"] = json!(p);
        }
        if let Some(c) = &self.command {
            v["command"] = json!({"value": c});
        }
        v
    }
}
