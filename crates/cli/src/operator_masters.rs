//! `drover operator masters`: list the masters' Raft membership, remove a master.

use std::process::ExitCode;

use clap::Subcommand;
use client::system::MastersList;
use master::peer::Method;

use crate::cluster::MasterFlag;
use crate::output::{fail, fetch, json, or_na, table};

/// `drover operator masters …`.
#[derive(Subcommand)]
pub enum MastersCommand {
    /// Every member: id, address, zone, voter or learner, last contact (ms), log lag, protocol.
    #[command(
        after_help = "Examples:\n  drover operator masters list\n  drover operator masters list --json"
    )]
    List,
    /// Remove a master from the membership (refused for the leader, and when the voters left
    /// would not keep a quorum of masters that are up). Needs an operator token.
    #[command(after_help = "\
The removed master stops by itself when it is reachable; otherwise stop its process. To bring
it back (say, its disk was replaced), wipe its data dir and start it with --join.

Example:
  drover operator masters remove 3")]
    Remove {
        /// The master's id.
        id: u64,
    },
}

/// Runs `drover operator masters …`.
pub fn run(m: &MasterFlag, command: Option<MastersCommand>, as_json: bool) -> ExitCode {
    match command.unwrap_or(MastersCommand::List) {
        MastersCommand::List => {
            let list: MastersList = match fetch(m, Method::GET, "/v1/operator/masters", None) {
                Ok(l) => l,
                Err(e) => return fail(e.0),
            };
            if as_json {
                json(&list);
                return ExitCode::SUCCESS;
            }
            let mut t = table(&[
                "ID",
                "ADDRESS",
                "ZONE",
                "ROLE",
                "LEADER",
                "LAST CONTACT MS",
                "LOG LAG",
                "PROTOCOL",
            ]);
            for member in &list.masters {
                t.add_row(vec![
                    member.id.to_string(),
                    member.address.clone(),
                    or_na(member.zone.as_deref()),
                    member.role.clone(),
                    if member.leader { "yes" } else { "" }.to_string(),
                    member
                        .last_contact_ms
                        .map_or("N/A".to_string(), |ms| ms.to_string()),
                    member.log_lag.map_or("N/A".to_string(), |l| l.to_string()),
                    member.protocol.map_or("N/A".to_string(), |p| p.to_string()),
                ]);
            }
            println!("{t}");
            ExitCode::SUCCESS
        }
        MastersCommand::Remove { id } => {
            let path = format!("/v1/operator/masters/{id}");
            match crate::output::request(m, Method::DELETE, &path, None) {
                Ok(answer) => {
                    println!("{}", crate::cluster::message(&answer));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e.0),
            }
        }
    }
}
