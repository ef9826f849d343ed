//! How CLI commands reach the cluster: any master answers (followers forward to the leader).

use std::time::Duration;

use clap::Args;
use master::peer::{CallError, Method, PeerClient};
use serde_json::Value;

/// The flag every cluster command takes.
#[derive(Args, Clone)]
pub struct MasterFlag {
    /// Master(s) to ask, HOST:PORT[,HOST:PORT…]; any master works.
    #[arg(
        long,
        global = true,
        env = "DROVER_MASTER",
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT"
    )]
    pub master: String,
}

/// A failed call, said for people.
pub struct CliError(pub String);

/// Calls the first master that answers and returns the status and JSON body.
pub fn call(
    flag: &MasterFlag,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), CliError> {
    let masters: Vec<&str> = flag
        .master
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let client = PeerClient::new();
        let mut failures = Vec::new();
        for m in &masters {
            match client.call(method.clone(), m, path, body, Duration::from_secs(30)).await {
                Ok((status, value)) => return Ok((status.as_u16(), value)),
                Err(e @ (CallError::Unreachable(..) | CallError::Timeout(..) | CallError::Request(..))) => {
                    failures.push(e.to_string())
                }
            }
        }
        Err(CliError(format!(
            "no master answers ({}). Is drover running? Start one with `drover dev`, or point --master / DROVER_MASTER at a master.",
            failures.join("; ")
        )))
    })
}

/// The `message` of an error answer, or the whole body (for bodies that are not
/// [`client::ErrorBody`]).
pub fn message(body: &Value) -> String {
    body.get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string())
}
