//! `drover app …`: deploy, inspect, scale, restart and remove apps.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use client::{App, AppEnvelope, AppList, Change, Deployment, Plan, Queue, QueueItem};
use master::peer::Method;
use serde_json::json;

use crate::cluster::{CliError, MasterFlag};
use crate::output::{self, fail, fetch, or_na, read_json, request, table, text};

/// `drover app …`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  drover app add examples/apps/balanced-zones.json --wait\n  drover app list\n  drover app why /too-big"
)]
pub struct AppArgs {
    #[command(flatten)]
    master: MasterFlag,
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(Subcommand)]
enum AppCommand {
    /// Deploy an app from a Marathon JSON file.
    #[command(after_help = "Example:\n  drover app add examples/apps/balanced-zones.json --wait")]
    Add {
        /// The app definition (Marathon JSON).
        file: PathBuf,
        #[command(flatten)]
        wait: Wait,
    },
    /// List apps with their instance counts.
    #[command(after_help = "Example:\n  drover app list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one app: its instances and its definition.
    #[command(after_help = "Example:\n  drover app show /balanced-zones")]
    Show {
        /// App id, e.g. /prod/web.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change an app from a JSON file (fields not given keep their values).
    #[command(after_help = "Example:\n  drover app update /balanced-zones changes.json --wait")]
    Update {
        /// App id.
        id: String,
        /// The fields to change (Marathon JSON).
        file: PathBuf,
        /// Override a deployment in progress.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Set an app's instance count.
    #[command(after_help = "Example:\n  drover app scale /balanced-zones 8 --wait")]
    Scale {
        /// App id.
        id: String,
        /// Instances wanted.
        instances: u32,
        /// Override a deployment in progress.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Replace every instance, within the app's upgradeStrategy.
    #[command(after_help = "Example:\n  drover app restart /http-service --wait")]
    Restart {
        /// App id.
        id: String,
        /// Override a deployment in progress.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Remove an app and stop its instances.
    #[command(after_help = "Example:\n  drover app remove /balanced-zones")]
    Remove {
        /// App id.
        id: String,
    },
    /// Dry run: where would this app's instances go on the live cluster, and why not.
    #[command(after_help = "Example:\n  drover app plan examples/apps/remote-region.json")]
    Plan {
        /// The app definition (Marathon JSON).
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Why an app's instances are not placed, in words.
    #[command(after_help = "Example:\n  drover app why /too-big")]
    Why {
        /// App id.
        id: String,
    },
}

/// `--wait` and how long.
#[derive(Args, Clone, Copy)]
struct Wait {
    /// Wait for the deployment, showing its progress; exit non-zero if it fails.
    #[arg(long = "wait")]
    enabled: bool,
    /// How long --wait waits.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,
}

fn app_path(id: &str) -> String {
    format!("/v2/apps/{}", id.trim_start_matches('/'))
}

/// Runs `drover app …`.
pub fn run(args: AppArgs) -> ExitCode {
    output::exit_with(run_inner(&args.master, args.command))
}

fn run_inner(m: &MasterFlag, command: AppCommand) -> Result<ExitCode, CliError> {
    match command {
        AppCommand::Add { file, wait } => {
            let app = read_json(&file)?;
            let answer: App = fetch(m, Method::POST, "/v2/apps", Some(&app))?;
            let id = answer.id().to_string();
            let deployment = answer
                .deployments
                .as_ref()
                .and_then(|d| d.first())
                .map(|d| d.id.clone());
            println!("Created {id}");
            finish(m, &id, deployment, wait)
        }
        AppCommand::List { json } => {
            let answer: AppList = fetch(m, Method::GET, "/v2/apps", None)?;
            if json {
                output::json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table(&[
                "ID",
                "RUNNING",
                "HEALTHY",
                "WANTED",
                "CPUS",
                "MEM",
                "DEPLOYMENTS",
            ]);
            for a in &answer.apps {
                t.add_row([
                    or_na(Some(a.id())),
                    a.counts().tasks_running.to_string(),
                    a.counts().tasks_healthy.to_string(),
                    text(a.field("instances")),
                    text(a.field("cpus")),
                    text(a.field("mem")),
                    a.deployments.as_ref().map_or(0, Vec::len).to_string(),
                ]);
            }
            println!("{t}");
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Show { id, json } => {
            let answer: AppEnvelope = fetch(m, Method::GET, &app_path(&id), None)?;
            if json {
                output::json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let app = answer.app;
            println!(
                "{}  running {} / healthy {} / wanted {}  version {}",
                or_na(Some(app.id())),
                app.counts().tasks_running,
                app.counts().tasks_healthy,
                text(app.field("instances")),
                or_na(Some(&app.version))
            );
            let mut t = table(&["TASK", "HOST", "REGION", "ZONE", "STATE", "HEALTH", "PORTS"]);
            for task in app.tasks.iter().flatten() {
                t.add_row(output::task_row(task, false));
            }
            println!("\n{t}\n");
            // The definition with its version, without the status.
            let definition = App {
                counts: None,
                deployments: None,
                tasks: None,
                last_task_failure: None,
                readiness_check_results: None,
                task_stats: None,
                ..app
            };
            output::json(&definition);
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Update {
            id,
            file,
            force,
            wait,
        } => {
            let body = read_json(&file)?;
            let path = format!(
                "{}{}",
                app_path(&id),
                if force { "?force=true" } else { "" }
            );
            let answer: Change = fetch(m, Method::PUT, &path, Some(&body))?;
            changed(m, &id, &answer, wait)
        }
        AppCommand::Scale {
            id,
            instances,
            force,
            wait,
        } => {
            let path = format!(
                "{}{}",
                app_path(&id),
                if force { "?force=true" } else { "" }
            );
            let answer: Change = fetch(
                m,
                Method::PUT,
                &path,
                Some(&json!({ "instances": instances })),
            )?;
            changed(m, &id, &answer, wait)
        }
        AppCommand::Restart { id, force, wait } => {
            let path = format!(
                "{}/restart{}",
                app_path(&id),
                if force { "?force=true" } else { "" }
            );
            let answer: Change = fetch(m, Method::POST, &path, None)?;
            changed(m, &id, &answer, wait)
        }
        AppCommand::Remove { id } => {
            request(m, Method::DELETE, &app_path(&id), None)?;
            println!("Removed {id}; its instances are being stopped.");
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Plan { file, json } => {
            let app = read_json(&file)?;
            let answer: Plan = fetch(m, Method::POST, "/v1/plan", Some(&app))?;
            if json {
                output::json(&answer);
            } else {
                print_plan(&answer);
            }
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Why { id } => {
            let want = format!("/{}", id.trim_start_matches('/'));
            request(m, Method::GET, &app_path(&id), None)?;
            let queue: Queue = fetch(m, Method::GET, "/v2/queue", None)?;
            let entry = queue
                .queue
                .iter()
                .find(|q| q.app_id() == Some(want.as_str()));
            match entry {
                None => println!("Every instance of {want} is placed."),
                Some(q) => println!("{}", explain(&want, q)),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A reason key from the placement engine, said as the rest of "N agent(s) …".
pub fn reason_in_words(reason: &str) -> String {
    if let Some(c) = reason.strip_prefix("constraint ") {
        return format!("are ruled out by the constraint {c}");
    }
    match reason {
        "remote region" => "are in another region than the local one (add [\"@region\",\"IS\",\"<region>\"] to use them)".into(),
        "insufficient cpus" => "have too few free cpus".into(),
        "insufficient mem" => "have too little free memory".into(),
        "insufficient disk" => "have too little free disk".into(),
        "insufficient ports" => "have no free ports left in their ranges".into(),
        other => other.to_string(),
    }
}

fn explain(id: &str, q: &QueueItem) -> String {
    let mut out = format!("{} instance(s) of {id} are not placed.", q.count);
    let left = q.delay.time_left_seconds;
    if left > 0 {
        out.push_str(&format!(
            "\nLaunches are delayed {left} s more after failures (backoff)."
        ));
    }
    let reasons = q.unplaced_reasons();
    if !reasons.is_empty() {
        out.push_str("\nAgents that cannot take one:");
        let mut sorted: Vec<_> = reasons.into_iter().collect();
        sorted.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        for (reason, n) in sorted {
            out.push_str(&format!("\n  {n} agent(s) {}", reason_in_words(reason)));
        }
    }
    out
}

fn print_plan(answer: &Plan) {
    println!("Local region: {}", or_na(Some(&answer.local_region)));
    let mut per_zone: BTreeMap<(String, String), usize> = BTreeMap::new();
    for p in &answer.placements {
        *per_zone
            .entry((or_na(Some(&p.region)), or_na(p.zone.as_deref())))
            .or_default() += 1;
    }
    let placed: usize = per_zone.values().sum();
    let mut t = table(&["REGION", "ZONE", "NEW INSTANCES"]);
    for ((r, z), n) in &per_zone {
        t.add_row([r.clone(), z.clone(), n.to_string()]);
    }
    if placed > 0 {
        println!("{t}");
    }
    let unplaced = answer.unplaced;
    println!(
        "{placed} would be placed, {unplaced} not ({} already running).",
        answer.running.map_or("N/A".to_string(), |n| n.to_string())
    );
    if unplaced > 0 {
        for (reason, n) in &answer.reasons {
            println!("  {n} agent(s): {reason}");
        }
    }
}

fn changed(m: &MasterFlag, id: &str, answer: &Change, wait: Wait) -> Result<ExitCode, CliError> {
    let deployment = answer.deployment_id.clone();
    match &deployment {
        Some(d) => println!(
            "Deployment {d} started (version {}).",
            or_na(Some(&answer.version))
        ),
        None => println!("Nothing changed."),
    }
    finish(m, id, deployment, wait)
}

/// How long `--wait` lets an app settle once its deployment is gone (old instances stopping).
const SETTLE_AFTER_DEPLOYMENT: Duration = Duration::from_secs(30);

/// With `--wait`: follows the deployment with a progress line until it is gone; success when
/// the app then runs its wanted instances, failure when it was rolled back or time ran out.
fn finish(
    m: &MasterFlag,
    id: &str,
    deployment: Option<String>,
    wait: Wait,
) -> Result<ExitCode, CliError> {
    let (true, Some(deployment)) = (wait.enabled, deployment) else {
        return Ok(ExitCode::SUCCESS);
    };
    let timeout = wait.timeout;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut stderr = std::io::stderr();
    let mut gone_since: Option<Instant> = None;
    loop {
        let app: AppEnvelope = fetch(m, Method::GET, &app_path(id), None)?;
        let a = &app.app;
        let wanted = a.field("instances").as_u64().unwrap_or(0);
        let placed = a.tasks.as_ref().map_or(0, Vec::len);
        let running = u64::from(a.counts().tasks_running);
        let healthy = u64::from(a.counts().tasks_healthy);
        let checks = a
            .field("healthChecks")
            .as_array()
            .is_some_and(|h| !h.is_empty());
        let bar = |n: u64| {
            let filled = (n.min(wanted) * 20)
                .checked_div(wanted)
                .map_or(20, |f| f as usize);
            format!("[{}{}]", "#".repeat(filled), ".".repeat(20 - filled))
        };
        let _ = write!(
            stderr,
            "\r{} placed {placed}/{wanted}  running {running}/{wanted} {}{}",
            id,
            bar(running),
            if checks {
                format!("  healthy {healthy}/{wanted}")
            } else {
                String::new()
            }
        );
        let _ = stderr.flush();
        let deployments: Vec<Deployment> = fetch(m, Method::GET, "/v2/deployments", None)?;
        let active = deployments.iter().any(|d| d.id == deployment);
        if !active {
            let ready = if checks { healthy } else { running };
            if ready >= wanted && placed as u64 == wanted {
                let _ = writeln!(stderr);
                println!("Deployment {deployment} finished: {wanted} instance(s) of {id} running.");
                return Ok(ExitCode::SUCCESS);
            }
            // The app was read before the deployment list: a deployment that finished in
            // between leaves old instances that are still stopping. Give them a moment.
            let settled = *gone_since.get_or_insert_with(Instant::now);
            if settled.elapsed() >= SETTLE_AFTER_DEPLOYMENT || Instant::now() >= deadline {
                let _ = writeln!(stderr);
                return Ok(fail(format!(
                    "deployment {deployment} ended without finishing (rolled back, cancelled or replaced)"
                )));
            }
        }
        if Instant::now() >= deadline {
            let _ = writeln!(stderr);
            let queue: Queue = fetch(m, Method::GET, "/v2/queue", None)?;
            let why = queue
                .queue
                .iter()
                .find(|q| q.app_id() == Some(a.id()))
                .map(|q| format!("\n{}", explain(id, q)))
                .unwrap_or_default();
            return Ok(fail(format!(
                "deployment {deployment} did not finish within {timeout} s{why}"
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
