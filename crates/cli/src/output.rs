//! How CLI commands print: tables for people, `--json` for machines, errors in words.

use std::process::ExitCode;

use comfy_table::{Table, presets::NOTHING};
use serde_json::Value;

use crate::cluster::{self, CliError, MasterFlag};
use master::peer::Method;

/// A table with drover's look: no borders, upper-case headers.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(header.iter().copied());
    t
}

/// Pretty JSON on stdout.
pub fn json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A value as table text: strings bare, `null` as N/A.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "N/A".into(),
        Value::String(s) if s.is_empty() => "N/A".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A task's health as one word: `healthy`, `unhealthy`, or `-` without health checks.
pub fn task_health(task: &Value) -> String {
    match task["healthCheckResults"].as_array() {
        Some(r) if !r.is_empty() && r.iter().all(|h| h["alive"] == true) => "healthy".into(),
        Some(r) if !r.is_empty() => "unhealthy".into(),
        _ => "-".into(),
    }
}

/// A task's host ports, comma-separated, or `-`.
pub fn task_ports(task: &Value) -> String {
    let ports: Vec<String> = task["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    if ports.is_empty() {
        "-".into()
    } else {
        ports.join(",")
    }
}

/// Prints an error and gives the exit code 1.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(1)
}

/// Calls the cluster; any answer outside 2xx becomes an error with the API's message (and
/// Marathon's validation details, one per line).
pub fn request(
    flag: &MasterFlag,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, CliError> {
    let (status, answer) = cluster::call(flag, method, path, body)?;
    if (200..300).contains(&status) {
        return Ok(answer);
    }
    let mut message = format!("{} (HTTP {status})", cluster::message(&answer));
    for d in answer
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let errors: Vec<String> = d["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        message.push_str(&format!("\n  {}: {}", text(&d["path"]), errors.join("; ")));
    }
    Err(CliError(message))
}

/// Reads a JSON file, naming the file and the problem when it cannot.
pub fn read_json(path: &std::path::Path) -> Result<Value, CliError> {
    // A directory, /dev/zero or a FIFO is refused, not read forever.
    crate::input::read_json(path, "app definition", crate::input::MAX_APP_FILE).map_err(CliError)
}
