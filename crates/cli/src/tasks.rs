//! `drover task list` and `drover deployment …`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use client::{Change, Deployment, Tasks};
use master::peer::Method;

use crate::cluster::{CliError, MasterFlag};
use crate::output::{self, fail, fetch, or_na, request, table};

/// `drover task …`.
#[derive(Args)]
#[command(after_help = "Example:\n  drover task list --app /balanced-zones")]
pub struct TaskArgs {
    #[command(flatten)]
    master: MasterFlag,
    #[command(subcommand)]
    command: TaskCommand,
}

#[derive(Subcommand)]
enum TaskCommand {
    /// List running tasks (instances) with where they run.
    #[command(after_help = "Example:\n  drover task list --app /balanced-zones")]
    List {
        /// Only this app's tasks.
        #[arg(long)]
        app: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `drover deployment …`.
#[derive(Args)]
#[command(after_help = "Examples:\n  drover deployment list\n  drover deployment rollback <id>")]
pub struct DeploymentArgs {
    #[command(flatten)]
    master: MasterFlag,
    #[command(subcommand)]
    command: DeploymentCommand,
}

#[derive(Subcommand)]
enum DeploymentCommand {
    /// List deployments in progress.
    #[command(after_help = "Example:\n  drover deployment list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Roll a deployment back (its apps return to their previous version).
    #[command(
        after_help = "Examples:\n  drover deployment rollback 3b6a8705-992e-4fa4-947b-8edb63c072d4\n  drover deployment rollback 3b6a8705-992e-4fa4-947b-8edb63c072d4 --force"
    )]
    Rollback {
        /// Deployment id.
        id: String,
        /// Only stop tracking the deployment; change nothing.
        #[arg(long)]
        force: bool,
    },
}

fn done(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e.0),
    }
}

/// Runs `drover task …`.
pub fn run_task(args: TaskArgs) -> ExitCode {
    let TaskCommand::List { app, json } = args.command;
    done((|| {
        let path = match &app {
            Some(id) => format!("/v2/apps/{}/tasks", id.trim_start_matches('/')),
            None => "/v2/tasks".to_string(),
        };
        let answer: Tasks = fetch(&args.master, Method::GET, &path, None)?;
        if json {
            output::json(&answer);
            return Ok(());
        }
        let mut t = table(&[
            "TASK", "APP", "HOST", "REGION", "ZONE", "STATE", "HEALTH", "PORTS",
        ]);
        for task in &answer.tasks {
            t.add_row(output::task_row(task, true));
        }
        println!("{t}");
        Ok(())
    })())
}

/// Runs `drover deployment …`.
pub fn run_deployment(args: DeploymentArgs) -> ExitCode {
    let m = &args.master;
    done(match args.command {
        DeploymentCommand::List { json } => (|| {
            let answer: Vec<Deployment> = fetch(m, Method::GET, "/v2/deployments", None)?;
            if json {
                output::json(&answer);
                return Ok(());
            }
            let mut t = table(&["ID", "APPS", "ACTION", "VERSION"]);
            for d in &answer {
                let action = d.current_actions.first().map(|a| a.action.as_str());
                t.add_row([
                    or_na(Some(&d.id)),
                    d.affected_apps.join(","),
                    or_na(action),
                    or_na(Some(&d.version)),
                ]);
            }
            println!("{t}");
            Ok(())
        })(),
        DeploymentCommand::Rollback { id, force } => (|| {
            let path = format!(
                "/v2/deployments/{id}{}",
                if force { "?force=true" } else { "" }
            );
            if force {
                // The answer to a cancel is `{}`.
                request(m, Method::DELETE, &path, None)?;
                println!("Deployment {id} cancelled; nothing was changed back.");
            } else {
                let answer: Change = fetch(m, Method::DELETE, &path, None)?;
                println!(
                    "Rolling back: deployment {} (version {}).",
                    or_na(answer.deployment_id.as_deref()),
                    or_na(Some(&answer.version))
                );
            }
            Ok(())
        })(),
    })
}
