//! `drover group …`: deploy, inspect, scale and remove Marathon application groups.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use client::{Change, Group};
use master::peer::Method;
use serde_json::json;

use crate::cluster::{CliError, MasterFlag};
use crate::output::{self, fetch, force_query, id_in_file, or_na, read_json, table, text};

/// `drover group …`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  drover group add examples/groups/shop.json\n  drover group list\n  drover group scale /shop 2"
)]
pub struct GroupArgs {
    #[command(flatten)]
    master: MasterFlag,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Subcommand)]
enum GroupCommand {
    /// List every group (a tree) with its apps' instance counts.
    #[command(after_help = "Example:\n  drover group list --json")]
    List {
        /// Print JSON (the root group, as `GET /v2/groups` answers it).
        #[arg(long)]
        json: bool,
    },
    /// Show one group: its apps, groups and dependencies.
    #[command(after_help = "Example:\n  drover group show /shop")]
    Show {
        /// Group id, e.g. /prod.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a group from a Marathon group file (its `id`, `apps`, `groups`, `dependencies`).
    #[command(after_help = "Example:\n  drover group add examples/groups/shop.json")]
    Add {
        /// The group (Marathon JSON).
        file: PathArg,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a group from a file: the apps and groups it lists replace the group's; those
    /// it leaves out stay.
    #[command(after_help = "Example:\n  drover group update examples/groups/shop.json --force")]
    Update {
        /// The group (Marathon JSON, with its `id`).
        file: PathArg,
        /// Override deployments in progress.
        #[arg(long)]
        force: bool,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Scale every app under a group by a factor (instances are rounded up).
    #[command(after_help = "Example:\n  drover group scale /shop 2")]
    Scale {
        /// Group id.
        id: String,
        /// The factor, e.g. 2 or 0.5.
        factor: f64,
        /// Override deployments in progress.
        #[arg(long)]
        force: bool,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a group and stop everything under it.
    #[command(after_help = "Example:\n  drover group remove /shop")]
    Remove {
        /// Group id.
        id: String,
        /// Override deployments in progress.
        #[arg(long)]
        force: bool,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

type PathArg = std::path::PathBuf;

/// What the tree shows: groups, apps and their task counts.
const EMBED_COUNTS: &str = "?embed=group.groups&embed=group.apps&embed=group.apps.counts";

fn group_path(id: &str, force: bool) -> String {
    let id = id.trim_matches('/');
    let flag = force_query(force);
    if id.is_empty() {
        format!("/v2/groups{flag}")
    } else {
        format!("/v2/groups/{id}{flag}")
    }
}

/// Runs `drover group …`.
pub fn run(args: GroupArgs) -> ExitCode {
    output::exit_with(run_inner(&args.master, args.command))
}

fn run_inner(m: &MasterFlag, command: GroupCommand) -> Result<ExitCode, CliError> {
    match command {
        GroupCommand::List { json } => {
            let path = format!("/v2/groups{EMBED_COUNTS}");
            let root: Group = fetch(m, Method::GET, &path, None)?;
            output::json_or(&root, json, print_tree);
        }
        GroupCommand::Show { id, json } => {
            let path = format!("{}{EMBED_COUNTS}", group_path(&id, false));
            let group: Group = fetch(m, Method::GET, &path, None)?;
            output::json_or(&group, json, print_tree);
        }
        GroupCommand::Add { file, json } => {
            let body = read_json(&file)?;
            let answer: Change = fetch(m, Method::POST, "/v2/groups", Some(&body))?;
            let id = body["id"].as_str().unwrap_or("the group");
            report(&format!("Created {id}"), &answer, json);
        }
        GroupCommand::Update { file, force, json } => {
            let body = read_json(&file)?;
            let id = id_in_file(&body, &file, "group")?;
            let answer: Change = fetch(m, Method::PUT, &group_path(id, force), Some(&body))?;
            report(&format!("Updated {id}"), &answer, json);
        }
        GroupCommand::Scale {
            id,
            factor,
            force,
            json,
        } => {
            let body = json!({ "scaleBy": factor });
            let answer: Change = fetch(m, Method::PUT, &group_path(&id, force), Some(&body))?;
            report(&format!("Scaling {id} by {factor}"), &answer, json);
        }
        GroupCommand::Remove { id, force, json } => {
            let answer: Change = fetch(m, Method::DELETE, &group_path(&id, force), None)?;
            report(
                &format!("Removing {id}; everything under it is being stopped"),
                &answer,
                json,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(what: &str, answer: &Change, json: bool) {
    if json {
        output::json(answer);
        return;
    }
    println!(
        "{what}: deployment {} (version {}).",
        or_na(answer.deployment_id.as_deref()),
        or_na(Some(&answer.version))
    );
}

/// The group's tree: one row per app, with its group and dependencies.
fn print_tree(group: &Group) {
    let mut t = table(&["GROUP", "APP", "RUNNING", "WANTED", "DEPENDENCIES"]);
    rows(group, &mut t);
    println!("{t}");
}

fn rows(group: &Group, t: &mut comfy_table::Table) {
    let deps = group.dependencies.join(", ");
    t.add_row([
        group.id.clone(),
        String::new(),
        String::new(),
        String::new(),
        deps,
    ]);
    for app in group.apps.iter().flatten() {
        let running = app
            .counts
            .as_ref()
            .map_or_else(|| "N/A".to_string(), |c| c.tasks_running.to_string());
        t.add_row([
            String::new(),
            app.id().to_string(),
            running,
            text(app.field("instances")),
            text(app.field("dependencies")),
        ]);
    }
    for g in group.groups.iter().flatten() {
        rows(g, t);
    }
}
