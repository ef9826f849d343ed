//! `drover node list`: masters and agents with their regions and zones.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use client::{Node, Nodes};
use master::peer::Method;

use crate::cluster::MasterFlag;
use crate::output::{self, fail, fetch, or_na, table};

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

/// Runs `drover node …`.
pub fn run(args: NodeArgs) -> ExitCode {
    let NodeCommand::List { master, json } = args.command;
    let nodes: Nodes = match fetch(&master, Method::GET, "/v1/nodes", None) {
        Ok(nodes) => nodes,
        Err(e) => return fail(e.0),
    };
    if json {
        output::json(&nodes);
        return ExitCode::SUCCESS;
    }
    let mut table = table(&["HOSTNAME", "IP", "ID", "TYPE", "REGION", "ZONE"]);
    for node in &nodes.nodes {
        let (kind, region, zone, ip) = match node {
            Node::Master(m) => (
                if m.leader {
                    "master (leader)"
                } else {
                    "master"
                },
                or_na(m.region.as_deref()),
                m.zone.as_deref(),
                m.ip.as_str(),
            ),
            Node::Agent(a) => (
                "agent",
                if a.remote {
                    format!("{} (remote)", or_na(Some(&a.region)))
                } else {
                    or_na(Some(&a.region))
                },
                a.zone.as_deref(),
                a.ip.as_str(),
            ),
        };
        table.add_row([
            or_na(Some(node.hostname())),
            or_na(Some(ip)),
            or_na(Some(node.id())),
            kind.to_string(),
            region,
            or_na(zone),
        ]);
    }
    println!("{table}");
    ExitCode::SUCCESS
}
