//! `drover node list`: masters and agents with their regions and zones.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::NOTHING};
use master::peer::Method;
use serde_json::Value;

use crate::cluster::{self, MasterFlag};

/// `drover node …`.
#[derive(Args)]
#[command(after_help = "Example:\n  drover node list")]
pub struct NodeArgs {
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// List masters (the leader marked) and agents, with region and zone.
    #[command(after_help = "\
Columns: HOSTNAME IP ID TYPE REGION ZONE. TYPE is `master (leader)`, `master` or `agent`;
agents outside the local region show `(remote)` after their region; N/A marks a value
that is not known.

Examples:
  drover node list
  drover node list --master 10.0.1.10:8080 --json")]
    List {
        #[command(flatten)]
        master: MasterFlag,
        /// Print the nodes as JSON (the answer of GET /v1/nodes).
        #[arg(long)]
        json: bool,
    },
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "N/A".to_string(),
    }
}

/// Runs `drover node …`.
pub fn run(args: NodeArgs) -> ExitCode {
    let NodeCommand::List { master, json } = args.command;
    let (status, body) = match cluster::call(&master, Method::GET, "/v1/nodes", None) {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("error: {}", e.0);
            return ExitCode::from(1);
        }
    };
    if status != 200 {
        eprintln!(
            "error: the cluster answered {status}: {}",
            cluster::message(&body)
        );
        return ExitCode::from(1);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let mut table = Table::new();
    table.load_preset(NOTHING);
    table.set_header(["HOSTNAME", "IP", "ID", "TYPE", "REGION", "ZONE"]);
    for node in body
        .get("nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = match (
            text(node, "type").as_str(),
            node.get("leader").and_then(Value::as_bool),
        ) {
            ("master", Some(true)) => "master (leader)".to_string(),
            (other, _) => other.to_string(),
        };
        let mut region = text(node, "region");
        if node.get("remote").and_then(Value::as_bool) == Some(true) {
            region.push_str(" (remote)");
        }
        table.add_row([
            text(node, "hostname"),
            text(node, "ip"),
            text(node, "id"),
            kind,
            region,
            text(node, "zone"),
        ]);
    }
    println!("{table}");
    ExitCode::SUCCESS
}
