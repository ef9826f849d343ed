//! How CLI commands reach the cluster: any master answers (followers forward to the leader).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use master::peer::{CallError, Method, PeerClient};
use serde_json::Value;

/// The master asked when neither a flag, the environment nor the config file names one.
pub const DEFAULT_MASTER: &str = "127.0.0.1:8080";

/// The flags every cluster command takes: where to ask, and with which ACL token.
#[derive(Args, Clone, Default)]
pub struct MasterFlag {
    /// Master(s) to ask, HOST:PORT[,HOST:PORT…]; any master works [default: the config
    /// file's `master` (see `drover login`), else 127.0.0.1:8080].
    #[arg(long, global = true, env = "DROVER_MASTER", value_name = "HOST:PORT")]
    pub master: Option<String>,
    /// The ACL token's secret to send [default: the config file's `token`].
    #[arg(
        long,
        global = true,
        env = "DROVER_TOKEN",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub token: Option<String>,
    /// The cluster CA certificate to trust (ca.pem from a master's data dir, or what
    /// `drover dev` wrote): the masters are then reached over HTTPS that trusts only it
    /// [default: the config file's `ca_file`; without one, plain HTTP].
    #[arg(long, global = true, env = "DROVER_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Where to ask, with which token, and trusting which CA, after flags, environment and
/// config file.
pub struct Target {
    /// The masters, `HOST:PORT` each.
    pub masters: Vec<String>,
    /// The token's secret, if any.
    pub token: Option<String>,
    /// The cluster CA to trust; `None`: plain HTTP (an `--insecure` cluster).
    pub ca_file: Option<PathBuf>,
}

impl MasterFlag {
    /// The masters, token and CA: flag, else environment, else the config file, else the
    /// default master, no token and plain HTTP. A config file that cannot be read is an
    /// error naming it.
    pub fn target(&self) -> Result<Target, CliError> {
        let profile = if self.master.is_some() && self.token.is_some() && self.ca_file.is_some() {
            crate::profile::Profile::default()
        } else {
            crate::profile::load().map_err(CliError)?
        };
        // The config file's CA belongs to the config file's master, not to another one a
        // flag names.
        let profile_ca = match (&self.master, &profile.master) {
            (Some(flag), Some(file)) if addresses(flag) != addresses(file) => None,
            _ => profile.ca_file.map(PathBuf::from),
        };
        let master = self
            .master
            .clone()
            .or(profile.master)
            .unwrap_or_else(|| DEFAULT_MASTER.to_string());
        let masters = addresses(&master);
        let token = self
            .token
            .clone()
            .or(profile.token)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let ca_file = self.ca_file.clone().or(profile_ca);
        if ca_file.is_none() && master.contains("https://") {
            return Err(CliError(format!(
                "{master} is HTTPS, but no cluster CA is given to trust: pass --ca-file (or DROVER_CA_FILE, or `drover login --ca-file`) with the ca.pem of a master's data dir"
            )));
        }
        Ok(Target {
            masters,
            token,
            ca_file,
        })
    }
}

/// The `HOST:PORT`s of a comma-separated list of masters (`drover login` takes URLs; the
/// CA, not the scheme, decides whether TLS is spoken).
fn addresses(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .map(|m| {
            m.strip_prefix("http://")
                .or_else(|| m.strip_prefix("https://"))
                .unwrap_or(m)
                .trim_end_matches('/')
        })
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

impl Target {
    /// A client for the masters: HTTPS trusting only the cluster CA when one is given.
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
    let target = flag.target()?;
    let client = target.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let mut failures = Vec::new();
        for m in &target.masters {
            let token = target.token.as_deref();
            match client.call_as(method.clone(), m, path, body, token, Duration::from_secs(30)).await {
                Ok((status, value)) => return Ok((status.as_u16(), value)),
                Err(e @ (CallError::Unreachable(..) | CallError::Timeout(..) | CallError::Request(..))) => {
                    failures.push(e.to_string())
                }
            }
        }
        Err(CliError(format!(
            "no master answers ({}). Is drover running? Start one with `drover dev`, or point --master / DROVER_MASTER (or `drover login`) at a master.",
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
