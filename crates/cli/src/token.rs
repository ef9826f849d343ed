//! `drover token create|list|revoke`: join tokens, managed on a master's host with that
//! master's certificate (like `k3s token`): the calls go to `/internal/join-tokens`, which
//! only masters may use.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use master::peer::{Method, PeerClient};
use serde_json::{Value, json};
use state::tls::{Identity, config};

use crate::cluster::{self, CliError, MasterFlag};

/// Arguments of `drover token`.
#[derive(Args)]
#[command(after_help = "\
Run on a master's host: the commands use that master's certificate from --data-dir.

Examples:
  drover token create --agent --ttl 24h --data-dir /var/lib/drover --master 10.0.1.10:8080 --ca-file /var/lib/drover/ca.pem
  drover token list --data-dir /var/lib/drover
  drover token revoke 3f2a9c0d11e4b7a8 --data-dir /var/lib/drover")]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    /// The data dir of a master on this host (its certificate and the CA are read there).
    #[arg(long, global = true, env = "DROVER_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    master: MasterFlag,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a join token; it is printed this once (the cluster keeps only its hash).
    #[command(after_help = "\
Examples:
  drover token create --agent --ttl 24h --data-dir /var/lib/drover --master 10.0.1.10:8080
  drover token create --master-token --data-dir /var/lib/drover --master 10.0.1.10:8080")]
    Create {
        /// A token for agents.
        #[arg(
            long,
            conflicts_with = "master_token",
            required_unless_present = "master_token"
        )]
        agent: bool,
        /// A token for masters.
        #[arg(long = "master-token", id = "master_token")]
        master_token: bool,
        /// How long it works (e.g. 30m, 24h, 7d; at most 365d); without it, until revoked.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
    /// List the join tokens (ids, kinds, expiry; never secrets).
    #[command(after_help = "\
Example:
  drover token list --data-dir /var/lib/drover --master 10.0.1.10:8080")]
    List,
    /// Revoke a join token: it admits no one from now on.
    #[command(after_help = "\
Example:
  drover token revoke 3f2a9c0d11e4b7a8 --data-dir /var/lib/drover --master 10.0.1.10:8080")]
    Revoke {
        /// The token's id (the fourth part of the token; see `drover token list`).
        id: String,
    },
}

/// Runs `drover token …`.
pub fn run(args: TokenArgs) -> ExitCode {
    match run_inner(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run_inner(args: &TokenArgs) -> Result<(), CliError> {
    let client = master_client(args)?;
    let (method, path, body) = match &args.command {
        TokenCommand::Create { agent, ttl, .. } => {
            let ttl_ms = match ttl {
                Some(text) => {
                    let ttl = crate::run_agent::parse_retention_age(text)
                        .map_err(|e| CliError(format!("--ttl {e}")))?;
                    if ttl.is_zero() {
                        return Err(CliError("--ttl 0s makes a token that never works".into()));
                    }
                    Some(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
                }
                None => None,
            };
            let kind = if *agent { "agent" } else { "master" };
            (
                Method::POST,
                "/internal/join-tokens".to_string(),
                Some(json!({ "kind": kind, "ttl_ms": ttl_ms })),
            )
        }
        TokenCommand::List => (Method::GET, "/internal/join-tokens".to_string(), None),
        TokenCommand::Revoke { id } => {
            (Method::DELETE, format!("/internal/join-tokens/{id}"), None)
        }
    };
    let (status, answer) = cluster::call_with(&client, &args.master, method, &path, body.as_ref())?;
    if !(200..300).contains(&status) {
        return Err(CliError(format!("{status}: {}", cluster::message(&answer))));
    }
    match &args.command {
        TokenCommand::Create { .. } => {
            println!(
                "{}",
                answer.get("token").and_then(Value::as_str).unwrap_or("")
            );
        }
        TokenCommand::List => print_list(&answer),
        TokenCommand::Revoke { id } => println!("revoked {id}"),
    }
    Ok(())
}

fn print_list(answer: &Value) {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["ID", "KIND", "EXPIRES", "REVOKED"]);
    for token in answer.as_array().into_iter().flatten() {
        let field = |name: &str| token.get(name).cloned().unwrap_or(Value::Null);
        let expires = match field("expires_ms").as_u64() {
            Some(ms) => format!("{}", ms / 1000),
            None => "never".to_string(),
        };
        table.add_row([
            field("id").as_str().unwrap_or("").to_string(),
            field("kind").as_str().unwrap_or("").to_string(),
            expires,
            field("revoked").as_bool().unwrap_or(false).to_string(),
        ]);
    }
    println!("{table}");
}

/// A client presenting the certificate of the master whose data dir is given, trusting
/// the CA kept there.
fn master_client(args: &TokenArgs) -> Result<PeerClient, CliError> {
    let Some(dir) = &args.data_dir else {
        return Err(CliError(
            "drover token needs --data-dir (or DROVER_DATA_DIR): the data dir of a master on this host, whose certificate it uses".into(),
        ));
    };
    let identity = Identity::load(dir, master::tls::MASTER_IDENTITY)
        .map_err(|e| CliError(e.to_string()))?
        .ok_or_else(|| {
            CliError(format!(
                "{} holds no master certificate (master.pem): is it a secure master's data dir?",
                dir.display()
            ))
        })?;
    let ca_path = args
        .master
        .ca_file
        .clone()
        .unwrap_or_else(|| dir.join(state::tls::ca::CA_CERT_FILE));
    let ca = state::tls::ca::read_ca_cert(&ca_path).map_err(|e| CliError(e.to_string()))?;
    let tls = config::client_config(&ca, Some(&identity)).map_err(|e| CliError(e.to_string()))?;
    Ok(PeerClient::with_connector(
        state::transport::Connector::tcp(Some(Duration::from_secs(2))).with_tls(tls),
    ))
}
