//! The `drover` binary: argument parsing and wiring only.

mod cluster;
mod detect;
mod dev;
mod logging;
mod node;
mod plan;
mod run_agent;
mod run_master;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// drover: a highly available, fault-domain-aware cluster scheduler.
#[derive(Parser)]
#[command(
    name = "drover",
    version,
    about = "drover: a highly available, fault-domain-aware cluster scheduler",
    after_help = "Examples:\n  drover plan --nodes examples/nodes/seed-3-regions.json examples/apps/balanced-zones.json\n  drover plan --nodes examples/nodes/seed-3-regions.json --json examples/apps/remote-region.json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Try an app's constraints against a node inventory, without a cluster.
    Plan(plan::PlanArgs),
    /// Run a master: a Raft member serving the API (1, 3, 5 or 7 per cluster).
    Master(run_master::MasterArgs),
    /// Run an agent: registers with the masters and runs the tasks assigned to it.
    Agent(run_agent::AgentArgs),
    /// Masters and agents: `drover node list`.
    Node(node::NodeArgs),
    /// A whole cluster on this machine: masters and agents across regions and zones.
    Dev(dev::DevArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan(args) => plan::run(&args),
        Command::Master(args) => run_master::run(args),
        Command::Agent(args) => run_agent::run(args),
        Command::Node(args) => node::run(args),
        Command::Dev(args) => dev::run(args),
    }
}
