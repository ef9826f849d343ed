//! `drover token create|list|revoke`: join tokens for agents and masters (like `k3s
//! token`), managed with a management ACL token over the public API (`/v1/join-tokens`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use master::peer::Method;
use serde_json::{Value, json};

use crate::cluster::{CliError, MasterFlag};

/// Arguments of `drover token`.
#[derive(Args)]
#[command(after_help = "\
Needs a management token (--token, DROVER_TOKEN or `drover login`) and the cluster CA
(--ca-file, DROVER_CA_FILE or `drover login --ca-file`).

Examples:
  drover token create --agent --ttl 24h
  drover token list
  drover token revoke 3f2a9c0d11e4b7a8")]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    #[command(flatten)]
    master: MasterFlag,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a join token; it is printed this once (the cluster keeps only its hash).
    #[command(after_help = "\
Examples:
  drover token create --agent --ttl 24h --master 10.0.1.10:8080
  drover token create --master-token --master 10.0.1.10:8080")]
    Create {
        /// A token for agents.
        #[arg(
            long,
            conflicts_with = "master_token",
            required_unless_present = "master_token"
        )]
        agent: bool,
        /// A token for masters (`--master` names the master to ask).
        #[arg(long = "master-token", id = "master_token")]
        master_token: bool,
        /// How long it works (e.g. 30m, 24h, 7d; at most 365d); without it, until revoked.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
    /// List the join tokens (ids, kinds, expiry; never secrets).
    #[command(after_help = "\
Example:
  drover token list --master 10.0.1.10:8080")]
    List,
    /// Revoke a join token: it admits no one from now on.
    #[command(after_help = "\
Example:
  drover token revoke 3f2a9c0d11e4b7a8 --master 10.0.1.10:8080")]
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
                "/v1/join-tokens".to_string(),
                Some(json!({ "kind": kind, "ttl_ms": ttl_ms })),
            )
        }
        TokenCommand::List => (Method::GET, "/v1/join-tokens".to_string(), None),
        TokenCommand::Revoke { id } => (Method::DELETE, format!("/v1/join-tokens/{id}"), None),
    };
    let answer = crate::output::request(&args.master, method, &path, body.as_ref())?;
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
            Some(ms) => master::clock::iso(ms),
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
