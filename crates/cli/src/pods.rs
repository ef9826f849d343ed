//! `drover pod …`: deploy, inspect and remove Marathon pods (several containers per
//! instance).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use master::peer::Method;
use serde_json::Value;

use crate::cluster::{CliError, MasterFlag};
use crate::output::{self, fetch, force_query, id_in_file, read_json, request, table, text};

/// `drover pod …`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  drover pod add examples/pods/pair.json\n  drover pod list\n  drover pod show /shop/pair"
)]
pub struct PodArgs {
    #[command(flatten)]
    master: MasterFlag,
    #[command(subcommand)]
    command: PodCommand,
}

#[derive(Subcommand)]
enum PodCommand {
    /// List every pod with its containers and instance counts.
    #[command(after_help = "Example:\n  drover pod list --json")]
    List {
        /// Print JSON (`GET /v2/pods/::status`).
        #[arg(long)]
        json: bool,
    },
    /// Show one pod: its status, instances and their containers' endpoints.
    #[command(after_help = "Example:\n  drover pod show /shop/pair")]
    Show {
        /// Pod id, e.g. /shop/pair.
        id: String,
        /// Print JSON (`GET /v2/pods/{id}::status`).
        #[arg(long)]
        json: bool,
    },
    /// Create a pod from a Marathon pod definition.
    #[command(after_help = "Example:\n  drover pod add examples/pods/pair.json")]
    Add {
        /// The pod (Marathon JSON).
        file: PathArg,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace a pod's definition from a file (with its `id`).
    #[command(after_help = "Example:\n  drover pod update examples/pods/pair.json --force")]
    Update {
        /// The pod (Marathon JSON, with its `id`).
        file: PathArg,
        /// Override deployments in progress.
        #[arg(long)]
        force: bool,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a pod and stop every container of every instance.
    #[command(after_help = "Example:\n  drover pod remove /shop/pair")]
    Remove {
        /// Pod id.
        id: String,
    },
}

type PathArg = std::path::PathBuf;

fn pod_path(id: &str) -> String {
    format!("/v2/pods/{}", id.trim_matches('/'))
}

/// Runs `drover pod …`.
pub fn run(args: PodArgs) -> ExitCode {
    output::exit_with(run_inner(&args.master, args.command))
}

fn run_inner(m: &MasterFlag, command: PodCommand) -> Result<ExitCode, CliError> {
    match command {
        PodCommand::List { json } => {
            let all: Vec<Value> = fetch(m, Method::GET, "/v2/pods/::status", None)?;
            if json {
                output::json(&all);
            } else {
                let mut t = table(&["POD", "STATUS", "CONTAINERS", "RUNNING", "WANTED"]);
                for p in &all {
                    t.add_row(summary(p));
                }
                println!("{t}");
            }
        }
        PodCommand::Show { id, json } => {
            let path = format!("{}::status", pod_path(&id));
            let status: Value = fetch(m, Method::GET, &path, None)?;
            output::json_or(&status, json, print_status);
        }
        PodCommand::Add { file, json } => {
            let body = read_json(&file)?;
            let answer: Value = fetch(m, Method::POST, "/v2/pods", Some(&body))?;
            report("Created", &answer, json);
        }
        PodCommand::Update { file, force, json } => {
            let body = read_json(&file)?;
            let id = id_in_file(&body, &file, "pod")?;
            let path = format!("{}{}", pod_path(id), force_query(force));
            let answer: Value = fetch(m, Method::PUT, &path, Some(&body))?;
            report("Updated", &answer, json);
        }
        PodCommand::Remove { id } => {
            request(m, Method::DELETE, &pod_path(&id), None)?;
            println!("Removing {id}; its containers are being stopped.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `drover pod show`: the pod's state, one row per container of each instance (with how
/// it ended, when it did), then the last instances that ended.
fn print_status(status: &Value) {
    let mut t = table(&[
        "INSTANCE",
        "STATUS",
        "AGENT",
        "CONTAINER",
        "STATE",
        "ENDPOINTS",
    ]);
    for i in status["instances"].as_array().into_iter().flatten() {
        for c in i["containers"].as_array().into_iter().flatten() {
            let endpoints: Vec<String> = c["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| format!("{}:{}", text(&e["name"]), text(&e["allocatedHostPort"])))
                .collect();
            let mut state = text(&c["status"]);
            if let Some(code) = c["termination"]["exitCode"].as_i64() {
                state.push_str(&format!(" (exit {code})"));
            }
            t.add_row([
                text(&i["id"]),
                text(&i["status"]),
                text(&i["agentHostname"]),
                text(&c["name"]),
                state,
                endpoints.join(", "),
            ]);
        }
    }
    println!("{} is {}", text(&status["id"]), text(&status["status"]));
    println!("{t}");
    let ended = status["terminationHistory"]
        .as_array()
        .into_iter()
        .flatten();
    for (n, e) in ended.enumerate() {
        if n == 0 {
            println!("\nEnded instances (newest first):");
        }
        println!(
            "  {} at {}: {}",
            text(&e["instanceID"]),
            text(&e["terminatedAt"]),
            text(&e["message"])
        );
    }
}

/// One row of `drover pod list`.
fn summary(p: &Value) -> [String; 5] {
    let containers: Vec<String> = p["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| text(&c["name"]))
        .collect();
    let running = p["instances"]
        .as_array()
        .map_or(0, |i| i.iter().filter(|i| i["status"] == "STABLE").count());
    [
        text(&p["id"]),
        text(&p["status"]),
        containers.join(", "),
        running.to_string(),
        text(&p["spec"]["scaling"]["instances"]),
    ]
}

fn report(what: &str, pod: &Value, json: bool) {
    if json {
        output::json(pod);
        return;
    }
    println!(
        "{what} {} (version {}).",
        text(&pod["id"]),
        text(&pod["version"])
    );
}
