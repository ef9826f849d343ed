//! `drover app …`: deploy, inspect, scale, restart and remove apps.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use master::peer::Method;
use serde_json::{Value, json};

use crate::cluster::{CliError, MasterFlag};
use crate::output::{self, fail, read_json, request, table, text};

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
    match run_inner(&args.master, args.command) {
        Ok(code) => code,
        Err(e) => fail(e.0),
    }
}

fn run_inner(m: &MasterFlag, command: AppCommand) -> Result<ExitCode, CliError> {
    match command {
        AppCommand::Add { file, wait } => {
            let app = read_json(&file)?;
            let answer = request(m, Method::POST, "/v2/apps", Some(&app))?;
            let id = text(&answer["id"]);
            let deployment = answer["deployments"][0]["id"].as_str().map(str::to_string);
            println!("Created {id}");
            finish(m, &id, deployment, wait)
        }
        AppCommand::List { json } => {
            let answer = request(m, Method::GET, "/v2/apps", None)?;
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
            for a in answer["apps"].as_array().into_iter().flatten() {
                t.add_row([
                    text(&a["id"]),
                    text(&a["tasksRunning"]),
                    text(&a["tasksHealthy"]),
                    text(&a["instances"]),
                    text(&a["cpus"]),
                    text(&a["mem"]),
                    a["deployments"].as_array().map_or(0, Vec::len).to_string(),
                ]);
            }
            println!("{t}");
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Show { id, json } => {
            let answer = request(m, Method::GET, &app_path(&id), None)?;
            if json {
                output::json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let app = &answer["app"];
            println!(
                "{}  running {} / healthy {} / wanted {}  version {}",
                text(&app["id"]),
                text(&app["tasksRunning"]),
                text(&app["tasksHealthy"]),
                text(&app["instances"]),
                text(&app["version"])
            );
            let mut t = table(&["TASK", "HOST", "REGION", "ZONE", "STATE", "HEALTH", "PORTS"]);
            for task in app["tasks"].as_array().into_iter().flatten() {
                t.add_row([
                    text(&task["id"]),
                    text(&task["host"]),
                    text(&task["region"]),
                    text(&task["zone"]),
                    text(&task["state"]),
                    output::task_health(task),
                    output::task_ports(task),
                ]);
            }
            println!("\n{t}\n");
            let mut definition = app.clone();
            if let Some(o) = definition.as_object_mut() {
                for k in [
                    "tasks",
                    "tasksRunning",
                    "tasksHealthy",
                    "tasksStaged",
                    "tasksUnhealthy",
                    "deployments",
                ] {
                    o.remove(k);
                }
            }
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
            let answer = request(m, Method::PUT, &path, Some(&body))?;
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
            let answer = request(
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
            let answer = request(m, Method::POST, &path, None)?;
            changed(m, &id, &answer, wait)
        }
        AppCommand::Remove { id } => {
            request(m, Method::DELETE, &app_path(&id), None)?;
            println!("Removed {id}; its instances are being stopped.");
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Plan { file, json } => {
            let app = read_json(&file)?;
            let answer = request(m, Method::POST, "/v1/plan", Some(&app))?;
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
            let queue = request(m, Method::GET, "/v2/queue", None)?;
            let entry = queue["queue"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|q| q["app"]["id"] == want.as_str());
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

fn explain(id: &str, q: &Value) -> String {
    let mut out = format!("{} instance(s) of {id} are not placed.", text(&q["count"]));
    let left = q["delay"]["timeLeftSeconds"].as_u64().unwrap_or(0);
    if left > 0 {
        out.push_str(&format!(
            "\nLaunches are delayed {left} s more after failures (backoff)."
        ));
    }
    let reasons: BTreeMap<String, u64> = q["unplacedReasons"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect();
    if !reasons.is_empty() {
        out.push_str("\nAgents that cannot take one:");
        let mut sorted: Vec<_> = reasons.into_iter().collect();
        sorted.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        for (reason, n) in sorted {
            out.push_str(&format!("\n  {n} agent(s) {}", reason_in_words(&reason)));
        }
    }
    out
}

fn print_plan(answer: &Value) {
    println!("Local region: {}", text(&answer["local_region"]));
    let mut per_zone: BTreeMap<(String, String), usize> = BTreeMap::new();
    for p in answer["placements"].as_array().into_iter().flatten() {
        *per_zone
            .entry((text(&p["region"]), text(&p["zone"])))
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
    let unplaced = answer["unplaced"].as_u64().unwrap_or(0);
    println!(
        "{placed} would be placed, {unplaced} not ({} already running).",
        text(&answer["running"])
    );
    if unplaced > 0 {
        for (reason, n) in answer["reasons"].as_object().into_iter().flatten() {
            println!("  {} agent(s): {}", text(n), reason);
        }
    }
}

fn changed(m: &MasterFlag, id: &str, answer: &Value, wait: Wait) -> Result<ExitCode, CliError> {
    let deployment = answer["deploymentId"].as_str().map(str::to_string);
    match &deployment {
        Some(d) => println!(
            "Deployment {d} started (version {}).",
            text(&answer["version"])
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
        let app = request(m, Method::GET, &app_path(id), None)?;
        let a = &app["app"];
        let wanted = a["instances"].as_u64().unwrap_or(0);
        let placed = a["tasks"].as_array().map_or(0, Vec::len);
        let running = a["tasksRunning"].as_u64().unwrap_or(0);
        let healthy = a["tasksHealthy"].as_u64().unwrap_or(0);
        let checks = a["healthChecks"].as_array().is_some_and(|h| !h.is_empty());
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
        let deployments = request(m, Method::GET, "/v2/deployments", None)?;
        let active = deployments
            .as_array()
            .is_some_and(|ds| ds.iter().any(|d| d["id"] == deployment.as_str()));
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
            let queue = request(m, Method::GET, "/v2/queue", None)?;
            let why = queue["queue"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|q| q["app"]["id"] == a["id"])
                .map(|q| format!("\n{}", explain(id, q)))
                .unwrap_or_default();
            return Ok(fail(format!(
                "deployment {deployment} did not finish within {timeout} s{why}"
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
