//! How CLI commands print: tables for people, `--json` for machines, errors in words.

use std::process::ExitCode;

use comfy_table::{Table, presets::NOTHING};
use serde::Serialize;
use serde::de::DeserializeOwned;
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
pub fn json(v: &impl Serialize) {
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

/// An optional text for a table: `N/A` when absent or empty.
pub fn or_na(v: Option<&str>) -> String {
    match v {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "N/A".into(),
    }
}

/// A task's row: TASK, [APP,] HOST, REGION, ZONE, STATE, HEALTH, PORTS.
pub fn task_row(task: &client::Task, with_app: bool) -> Vec<String> {
    let mut row = vec![or_na(Some(&task.id))];
    if with_app {
        row.push(or_na(Some(&task.app_id)));
    }
    row.extend([
        or_na(task.host.as_deref()),
        or_na(task.region.as_deref()),
        or_na(task.zone.as_deref()),
        or_na(Some(&task.state)),
        task.health().to_string(),
        task.ports_text(),
    ]);
    row
}

/// `v` as JSON when `json`, else as `print` shows it to people.
pub fn json_or<T: Serialize>(v: &T, json: bool, print: impl FnOnce(&T)) {
    if json {
        self::json(v);
    } else {
        print(v);
    }
}

/// The exit of a client command: its own, or 1 with its error printed.
pub fn exit_with(result: Result<ExitCode, CliError>) -> ExitCode {
    result.unwrap_or_else(|e| fail(e.0))
}

/// The `id` a definition file gives (`what` names the definition: "pod", "group"), or an
/// error naming the file.
pub fn id_in_file<'a>(
    body: &'a Value,
    file: &std::path::Path,
    what: &str,
) -> Result<&'a str, CliError> {
    body["id"].as_str().ok_or_else(|| {
        CliError(format!(
            "{} has no \"id\": give the {what}'s id in the file",
            file.display()
        ))
    })
}

/// The query that overrides deployments in progress, when `force`.
pub fn force_query(force: bool) -> &'static str {
    if force { "?force=true" } else { "" }
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
    // An error body that is not Marathon's shape is shown whole.
    let Ok(error) = serde_json::from_value::<client::ErrorBody>(answer.clone()) else {
        return Err(CliError(format!(
            "{} (HTTP {status})",
            cluster::message(&answer)
        )));
    };
    let mut message = format!("{} (HTTP {status})", error.message);
    for d in error.details.into_iter().flatten() {
        message.push_str(&format!("\n  {}: {}", d.path, d.errors.join("; ")));
    }
    Err(CliError(message))
}

/// Calls the cluster like [`request`] and decodes the answer into the endpoint's type; an
/// answer of another shape is an error naming the endpoint and the field.
pub fn fetch<T: DeserializeOwned>(
    flag: &MasterFlag,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<T, CliError> {
    let endpoint = format!("{method} {path}");
    let answer = request(flag, method, path, body)?;
    client::decode(&endpoint, answer).map_err(|e| CliError(e.to_string()))
}

/// Reads a JSON file, naming the file and the problem when it cannot.
pub fn read_json(path: &std::path::Path) -> Result<Value, CliError> {
    // A directory, /dev/zero or a FIFO is refused, not read forever.
    crate::input::read_json(path, "app definition", crate::input::MAX_APP_FILE).map_err(CliError)
}
