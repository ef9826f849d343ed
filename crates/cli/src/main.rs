//! The `drover` binary: argument parsing and wiring only.

mod acl;
mod apps;
mod cluster;
mod detect;
mod dev;
mod groups;
mod hollow;
mod input;
mod lb;
mod logging;
mod node;
mod operator;
mod operator_masters;
mod output;
mod plan;
mod pods;
mod profile;
mod run_agent;
mod run_master;
mod secure;
mod status;
mod tasks;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// drover: a highly available, fault-domain-aware cluster scheduler.
#[derive(Parser)]
#[command(
    name = "drover",
    version,
    about = "drover: a highly available, fault-domain-aware cluster scheduler",
    after_help = "\
Start here:
  drover dev                                   a whole cluster on this machine (UI at http://127.0.0.1:8080)
  drover node list                             masters and agents with their regions and zones
  drover app add examples/apps/balanced-zones.json --wait
  drover task list --app /balanced-zones       where its instances run
  drover app why /too-big                      why instances are not placed
  drover plan --nodes examples/nodes/seed-3-regions.json examples/apps/balanced-zones.json

Cluster commands ask --master (or DROVER_MASTER, or the config file of `drover login`;
default 127.0.0.1:8080): any master works. They send the ACL token of --token (or
DROVER_TOKEN, or the config file).
Each command's --help is its manual."
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
    /// Run an edge load balancer: serves the apps' virtual hosts and service ports.
    Lb(lb::LbArgs),
    /// Masters and agents: `drover node list`.
    Node(node::NodeArgs),
    /// A whole cluster on this machine: masters and agents across regions and zones.
    Dev(dev::DevArgs),
    /// Benchmark and test tool: N simulated agents with fake tasks, in one process.
    HollowAgents(hollow::HollowArgs),
    /// Apps: add, list, show, update, scale, restart, remove, plan, why.
    App(apps::AppArgs),
    /// Groups (Marathon's application groups): list, show, add, update, scale, remove.
    Group(groups::GroupArgs),
    /// Pods (several containers per instance): list, show, add, update, remove.
    Pod(pods::PodArgs),
    /// Tasks (running instances): `drover task list`.
    Task(tasks::TaskArgs),
    /// Deployments: list, rollback.
    Deployment(tasks::DeploymentArgs),
    /// Print the leading master.
    Leader(status::LeaderArgs),
    /// Cluster health checks: `drover cluster health`.
    Cluster(status::ClusterArgs),
    /// Follow the event stream (/v2/events).
    Events(status::EventsArgs),
    /// ACL tokens: `drover acl bootstrap`, `drover acl token create|list|revoke|self`.
    Acl(acl::AclArgs),
    /// Check a token with a master and save both in the CLI's config file.
    Login(acl::LoginArgs),
    /// Cluster operations: `drover operator masters [list|remove ID]` (membership),
    /// `drover operator snapshot save|restore FILE` (backups).
    Operator(operator::OperatorArgs),
    /// Join tokens: create, list, revoke (on a master's host).
    Token(token::TokenArgs),
}

/// The multi-threaded tokio runtime the long-running commands (master, agent, lb,
/// hollow-agents) run on; the error says why it could not start.
fn async_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan(args) => plan::run(&args),
        Command::Master(args) => run_master::run(args),
        Command::Agent(args) => run_agent::run(args),
        Command::Lb(args) => lb::run(args),
        Command::Node(args) => node::run(args),
        Command::Dev(args) => dev::run(args),
        Command::HollowAgents(args) => hollow::run(args),
        Command::App(args) => apps::run(args),
        Command::Group(args) => groups::run(args),
        Command::Pod(args) => pods::run(args),
        Command::Task(args) => tasks::run_task(args),
        Command::Deployment(args) => tasks::run_deployment(args),
        Command::Leader(args) => status::run_leader(args),
        Command::Cluster(args) => status::run_cluster(args),
        Command::Events(args) => status::run_events(args),
        Command::Acl(args) => acl::run(args),
        Command::Login(args) => acl::login(args),
        Command::Operator(args) => operator::run(args),
        Command::Token(args) => token::run(args),
    }
}
