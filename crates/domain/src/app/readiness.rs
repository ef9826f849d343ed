//! Readiness checks as Marathon defines them (`readinessCheck.raml`, `readiness-checks.md`):
//! an HTTP(S) endpoint an agent polls from a task's start until it answers one of the
//! `httpStatusCodesForReady`; a deployment waits for its new instances to be ready.

use serde_json::{Value, json};

use super::PortDefinition;
use super::reader::ObjectReader;
use super::validation::ValidationErrors;
use crate::limits;

/// Marathon's default `name`.
pub const DEFAULT_NAME: &str = "readinessCheck";
/// Marathon's default `portName`.
pub const DEFAULT_PORT_NAME: &str = "http-api";

/// How a readiness check reaches the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadinessProtocol {
    /// Plain HTTP GET.
    Http,
    /// HTTPS GET (the certificate is not verified, as for health checks).
    Https,
}

impl ReadinessProtocol {
    /// Marathon's name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            ReadinessProtocol::Http => "HTTP",
            ReadinessProtocol::Https => "HTTPS",
        }
    }
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessCheck {
    /// Names the check in results (default `readinessCheck`).
    pub name: String,
    /// HTTP or HTTPS (default HTTP).
    pub protocol: ReadinessProtocol,
    /// The path to GET (default `/`).
    pub path: String,
    /// The port definition whose host port is checked (default `http-api`).
    pub port_name: String,
    /// Seconds between checks (default 30).
    pub interval_seconds: u32,
    /// Seconds before a check counts as not ready (default 10; less than the interval).
    pub timeout_seconds: u32,
    /// Status codes that mean ready (default `[200]`).
    pub http_status_codes_for_ready: Vec<u16>,
    /// Keep the last answer and show it in `readinessCheckResults` (default false).
    pub preserve_last_response: bool,
}

impl ReadinessCheck {
    /// Reads one readiness check, recording problems under `path`; `ports` are the app's
    /// port definitions, one of which `portName` must name.
    pub fn read(
        v: &Value,
        path: &str,
        ports: &[PortDefinition],
        errors: &mut ValidationErrors,
    ) -> Option<Self> {
        let mut r = ObjectReader::new(v, path, errors)?;
        let name = r.string_opt("name").unwrap_or_else(|| DEFAULT_NAME.into());
        if name.is_empty() {
            r.error("name", "must not be empty");
        }
        let protocol = match r.string_opt("protocol").as_deref() {
            None | Some("HTTP") => ReadinessProtocol::Http,
            Some("HTTPS") => ReadinessProtocol::Https,
            Some(other) => {
                r.error(
                    "protocol",
                    format!("'{other}' is not a readiness check protocol: use HTTP or HTTPS"),
                );
                ReadinessProtocol::Http
            }
        };
        let check_path = r.string_opt("path").unwrap_or_else(|| "/".into());
        if check_path.is_empty() {
            r.error("path", "must not be empty");
        }
        let port_name = r
            .string_opt("portName")
            .unwrap_or_else(|| DEFAULT_PORT_NAME.into());
        let names: Vec<&str> = ports.iter().filter_map(|p| p.name.as_deref()).collect();
        if port_name.is_empty() {
            r.error("portName", "must not be empty");
        } else if !names.contains(&port_name.as_str()) {
            let known = if names.is_empty() {
                "the app's port definitions have no names".to_string()
            } else {
                format!("expected one of: {}", names.join(", "))
            };
            r.error(
                "portName",
                format!(
                    "'{port_name}' names no port definition ({known}); give the port a name in portDefinitions and use it here"
                ),
            );
        }
        let seconds_max = limits::MAX_SECONDS as i64;
        let interval = r.int_in("intervalSeconds", 30, 0, seconds_max);
        let timeout = r.int_in("timeoutSeconds", 10, 0, seconds_max);
        if timeout <= 0 {
            r.error(
                "timeoutSeconds",
                format!("got {timeout}, expected more than 0"),
            );
        } else if timeout >= interval {
            r.error(
                "timeoutSeconds",
                format!("got {timeout}, expected less than intervalSeconds ({interval})"),
            );
        }
        let codes = r
            .array("httpStatusCodesForReady", |v, path, errors| {
                match v.as_u64().filter(|c| (100..=999).contains(c)) {
                    Some(c) => u16::try_from(c).ok(),
                    None => {
                        errors.add(
                            path,
                            format!("got {v}, expected an HTTP status code (100 to 999)"),
                        );
                        None
                    }
                }
            })
            .unwrap_or_else(|| vec![200]);
        let mut http_status_codes_for_ready: Vec<u16> = Vec::with_capacity(codes.len());
        for c in codes {
            if !http_status_codes_for_ready.contains(&c) {
                http_status_codes_for_ready.push(c);
            }
        }
        if http_status_codes_for_ready.is_empty()
            && r.errors()
                .at(&format!("{path}/httpStatusCodesForReady"))
                .is_empty()
        {
            r.error("httpStatusCodesForReady", "must not be empty");
        }
        let preserve_last_response = r.bool("preserveLastResponse", false);
        Some(ReadinessCheck {
            name,
            protocol,
            path: check_path,
            port_name,
            interval_seconds: interval.clamp(0, seconds_max) as u32,
            timeout_seconds: timeout.clamp(0, seconds_max) as u32,
            http_status_codes_for_ready,
            preserve_last_response,
        })
    }

    /// The index of the checked port among the app's port definitions (and so among an
    /// instance's host ports).
    pub fn port_index(&self, ports: &[PortDefinition]) -> Option<usize> {
        ports
            .iter()
            .position(|p| p.name.as_deref() == Some(self.port_name.as_str()))
    }

    /// True when `status` is one of the codes that mean ready.
    pub fn is_ready_status(&self, status: u16) -> bool {
        self.http_status_codes_for_ready.contains(&status)
    }

    /// Marathon's JSON with defaults filled in.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "protocol": self.protocol.name(),
            "path": self.path,
            "portName": self.port_name,
            "intervalSeconds": self.interval_seconds,
            "timeoutSeconds": self.timeout_seconds,
            "httpStatusCodesForReady": self.http_status_codes_for_ready,
            "preserveLastResponse": self.preserve_last_response,
        })
    }
}

/// Marathon's rule: one readiness check per app.
pub const AT_MOST_ONE: &str =
    "an app has at most one readiness check (as in Marathon); remove all but one";
