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
    /// The cluster CA certificate (ca.pem from a master's data dir) to trust: the masters
    /// are reached over TLS that trusts only it.
    #[arg(long, global = true, env = "DROVER_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl MasterFlag {
    /// The masters named, `HOST:PORT` each (an `http://` or `https://` in front is dropped:
    /// `--ca-file` decides whether TLS is spoken).
    pub fn masters(&self) -> Vec<&str> {
        self.master
            .split(',')
            .map(str::trim)
            .map(|m| {
                m.strip_prefix("https://")
                    .or_else(|| m.strip_prefix("http://"))
                    .unwrap_or(m)
            })
            .map(|m| m.trim_end_matches('/'))
            .filter(|m| !m.is_empty())
            .collect()
    }

    /// A client for the masters: TLS trusting `--ca-file` when one is given.
    pub fn client(&self) -> Result<PeerClient, CliError> {
        crate::secure::cli_connector(self.ca_file.as_deref())
            .map(PeerClient::with_connector)
            .map_err(CliError)
    }
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
    call_with(&flag.client()?, flag, method, path, body)
}

/// [`call`] with `client` (e.g. one presenting a master's certificate).
pub fn call_with(
    client: &PeerClient,
    flag: &MasterFlag,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), CliError> {
    let masters = flag.masters();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
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
