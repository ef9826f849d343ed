//! `drover leader`, `drover cluster health` and `drover events`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use axum::body::Body;
use clap::{Args, Subcommand};
use client::{ClusterHealth, Leader, Status};
use http_body_util::BodyExt;
use master::peer::Method;
use serde_json::Value;

use crate::cluster::MasterFlag;
use crate::output::{self, fail, fetch, or_na, table};

/// `drover leader`.
#[derive(Args)]
#[command(after_help = "Example:\n  drover leader --master 10.0.1.10:8080")]
pub struct LeaderArgs {
    #[command(flatten)]
    master: MasterFlag,
}

/// Runs `drover leader`.
pub fn run_leader(args: LeaderArgs) -> ExitCode {
    match fetch::<Leader>(&args.master, Method::GET, "/v2/leader", None) {
        Ok(answer) => {
            println!("{}", or_na(Some(&answer.leader)));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.0),
    }
}

/// `drover cluster …`.
#[derive(Args)]
#[command(after_help = "Example:\n  drover cluster health")]
pub struct ClusterArgs {
    #[command(flatten)]
    master: MasterFlag,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Checks of the cluster's health, each pass, warn or fail with a reason.
    #[command(after_help = "Example:\n  drover cluster health --json")]
    Health {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `drover cluster …`; exits 1 when a check fails.
pub fn run_cluster(args: ClusterArgs) -> ExitCode {
    let ClusterCommand::Health { json } = args.command;
    let answer: ClusterHealth = match fetch(&args.master, Method::GET, "/v1/cluster/health", None) {
        Ok(a) => a,
        Err(e) => return fail(e.0),
    };
    if json {
        output::json(&answer);
    } else {
        let mut t = table(&["CHECK", "STATUS", "REASON"]);
        for c in &answer.checks {
            t.add_row([
                or_na(Some(&c.name)),
                c.status.as_str().to_string(),
                or_na(Some(&c.reason)),
            ]);
        }
        println!("{t}\n\nOverall: {}", answer.status.as_str());
    }
    if answer.status == Status::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `drover events`.
#[derive(Args)]
#[command(
    after_help = "Example:\n  drover events --type status_update_event --type deployment_success"
)]
pub struct EventsArgs {
    #[command(flatten)]
    master: MasterFlag,
    /// Only events of this type (repeatable).
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    types: Vec<String>,
}

/// Runs `drover events`: prints the event stream until interrupted.
pub fn run_events(args: EventsArgs) -> ExitCode {
    let mut path = "/v2/events".to_string();
    for (i, t) in args.types.iter().enumerate() {
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str(&format!("event_type={t}"));
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return fail("cannot start the async runtime");
    };
    let target = match args.master.target() {
        Ok(t) => t,
        Err(e) => return fail(e.0),
    };
    runtime.block_on(async {
        let client = match target.client() {
            Ok(c) => c,
            Err(e) => return fail(e.0),
        };
        let mut last = String::new();
        for m in &target.masters {
            let mut request =
                axum::http::Request::get(format!("http://{m}{path}")).header("accept", "text/event-stream");
            if let Some(token) = &target.token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let request = match request.body(Body::empty())
            {
                Ok(r) => r,
                Err(e) => return fail(format!("bad master address {m}: {e}")),
            };
            let response = match tokio::time::timeout(Duration::from_secs(10), client.send(request)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    last = format!("{m} does not answer: {e}");
                    continue;
                }
                Err(_) => {
                    last = format!("{m} did not answer within 10 s");
                    continue;
                }
            };
            if !response.status().is_success() {
                let status = response.status();
                let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let message = serde_json::from_slice::<Value>(&body).map_or_else(|_| String::new(), |v| crate::cluster::message(&v));
                return fail(format!("{m} answered {status}: {message}"));
            }
            let mut body = response.into_body();
            let mut buffer = String::new();
            let mut stdout = std::io::stdout();
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                let Some(data) = frame.data_ref() else { continue };
                buffer.push_str(&String::from_utf8_lossy(data));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    let kind = event.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("message");
                    if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                        let compact = serde_json::from_str::<Value>(data).map_or(data.to_string(), |v| v.to_string());
                        let _ = writeln!(stdout, "{kind}\t{compact}");
                        let _ = stdout.flush();
                    }
                }
            }
            return fail(format!("the event stream from {m} ended"));
        }
        fail(format!("no master answers ({last}). Is drover running? Start one with `drover dev`, or point --master / DROVER_MASTER at a master."))
    })
}
