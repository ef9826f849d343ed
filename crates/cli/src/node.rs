//! `drover node list`: masters and agents with their regions and zones; `drover node
//! remove`: an agent removed for good.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use client::{Node, Nodes};
use master::peer::Method;

use crate::cluster::MasterFlag;
use crate::output::{self, fail, fetch, or_na, table};

/// `drover node …`.
#[derive(Args)]
#[command(after_help = "Examples:\n  drover node list\n  drover node remove 3f2c…")]
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
    /// Remove an agent for good: its instances are replaced elsewhere and its certificates
    /// revoked (needs an operator token).
    #[command(after_help = "\
The agent's instances that have not ended are started on other agents. On a secure
cluster the agent cannot report or register again: to bring the machine back, join it
with a new join token and an empty work dir. On an --insecure cluster an agent that still
runs registers again by itself, so stop it first.

Example:
  drover node remove 3f2c9a1e-…")]
    Remove {
        #[command(flatten)]
        master: MasterFlag,
        /// The agent's id (the ID column of `drover node list`).
        id: String,
    },
}

/// What `DELETE /v1/nodes/{id}` answers.
#[derive(serde::Deserialize)]
struct Removed {
    message: String,
}

/// Runs `drover node …`.
pub fn run(args: NodeArgs) -> ExitCode {
    let (master, json) = match args.command {
        NodeCommand::List { master, json } => (master, json),
        NodeCommand::Remove { master, id } => {
            let path = format!("/v1/nodes/{}", urlencode(&id));
            return match fetch::<Removed>(&master, Method::DELETE, &path, None) {
                Ok(r) => {
                    println!("{}", r.message);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e.0),
            };
        }
    };
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

/// An agent id as one path segment.
fn urlencode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
