//! `drover operator …`: backups of the cluster's state and their restore into a cluster;
//! the masters' membership (`operator_masters`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use master::api::operator::{
    BACKUP_FORMAT, BACKUP_FORMAT_VERSION, Backup, RESTORE_BODY_LIMIT, RestorePart, Restored,
    RestoredGroup,
};
use master::peer::Method;
use serde_json::Value;
use state::ClusterState;

use crate::cluster::{CliError, MasterFlag};
use crate::output::{fail, fetch, request};

/// `drover operator …`.
#[derive(Args)]
#[command(after_help = "\
Examples:
  drover operator snapshot save backup.json
  drover operator snapshot restore backup.json --master 10.0.2.10:8080")]
pub struct OperatorArgs {
    #[command(flatten)]
    master: MasterFlag,
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// The masters' Raft membership: `drover operator masters [list]`, `… remove ID`.
    #[command(after_help = "\
Add a master by starting it with --join (see `drover master --help`): the leader adds it as a
learner and makes it a voter once it has caught up.

Examples:
  drover operator masters
  drover operator masters remove 3")]
    Masters {
        #[command(subcommand)]
        command: Option<crate::operator_masters::MastersCommand>,
        /// Print JSON instead of a table (`drover operator masters list --json` too).
        #[arg(long, global = true)]
        json: bool,
    },
    /// Backups: `drover operator snapshot save FILE`, `… restore FILE`.
    #[command(after_help = "Example:\n  drover operator snapshot save backup.json")]
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Save the cluster's whole state, consistent, from the leader, while it serves.
    #[command(after_help = "\
The file holds every app with its stored versions (and their environments), deployments,
agents, instances and ACL tokens (their secrets' hashes, not the secrets): keep it as you keep
credentials. It is written with mode 0600. Needs a management token.

Example:
  drover operator snapshot save /backups/drover-$(date +%F).json")]
    Save {
        /// Where to write the backup (an existing file is replaced).
        file: PathBuf,
    },
    /// Restore a backup's apps (every stored version), groups, ACL tokens and event subscriptions.
    #[command(after_help = "\
Meant for a fresh cluster: each app is stored with its versions, oldest first, under their
original version strings, and the scheduler places its instances on this cluster's agents.
Agents, masters and instances of the old cluster are not restored (they are its machines).
ACL tokens of the backup work again (one whose accessor id is taken is left out), and its
event subscriptions are subscribed again. An app that
this cluster has already, at or after a version being restored, stops the restore before
anything of that part is written: delete it first. Needs a management token.

Example:
  drover operator snapshot restore /backups/drover-2026-12-01.json")]
    Restore {
        /// The backup file (from `drover operator snapshot save`).
        file: PathBuf,
    },
}

/// Runs `drover operator …`.
pub fn run(args: OperatorArgs) -> ExitCode {
    let command = match args.command {
        OperatorCommand::Masters { command, json } => {
            return crate::operator_masters::run(&args.master, command, json);
        }
        OperatorCommand::Snapshot { command } => command,
    };
    let done = match command {
        SnapshotCommand::Save { file } => save(&args.master, &file),
        SnapshotCommand::Restore { file } => restore(&args.master, &file),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e.0),
    }
}

fn save(m: &MasterFlag, file: &Path) -> Result<(), CliError> {
    let body = request(m, Method::GET, "/v1/operator/snapshot", None)?;
    let backup = read_backup(body, "the master's answer")?;
    let bytes = serde_json::to_vec(&backup)
        .map_err(|e| CliError(format!("cannot encode the backup: {e}")))?;
    // Written beside the target, then renamed: a failed save never leaves half a file.
    let partial = file.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&partial, file)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&partial);
        CliError(format!("cannot write {}: {e}", file.display()))
    })?;
    let (apps, versions) = counts(&backup.state);
    println!(
        "saved {} ({} bytes): {apps} apps with {versions} versions, {} ACL tokens, cluster {}, log index {}, taken at {}",
        file.display(),
        bytes.len(),
        backup.state.acl().tokens().len(),
        backup.cluster_id.as_deref().unwrap_or("N/A"),
        backup.applied_index,
        backup.taken_at,
    );
    Ok(())
}

fn restore(m: &MasterFlag, file: &Path) -> Result<(), CliError> {
    let text =
        fs::read(file).map_err(|e| CliError(format!("cannot read {}: {e}", file.display())))?;
    let value: Value = serde_json::from_slice(&text).map_err(|e| {
        CliError(format!(
            "{} is not JSON ({e}); give a file written by `drover operator snapshot save`",
            file.display()
        ))
    })?;
    let backup = read_backup(value, &file.display().to_string())?;
    let parts = parts(&backup.state)?;
    let mut total = Restored::default();
    for (n, part) in parts.iter().enumerate() {
        let body = serde_json::to_value(part)
            .map_err(|e| CliError(format!("cannot encode part {}: {e}", n + 1)))?;
        let done: Restored =
            fetch(m, Method::POST, "/v1/operator/restore", Some(&body)).map_err(|e| {
                CliError(format!(
                    "{} (part {} of {}; the parts before it were restored)",
                    e.0,
                    n + 1,
                    parts.len()
                ))
            })?;
        total.versions += done.versions;
        total.groups += done.groups;
        total.acl_tokens += done.acl_tokens;
        total.acl_tokens_present += done.acl_tokens_present;
        total.event_subscriptions += done.event_subscriptions;
    }
    let (apps, _) = counts(&backup.state);
    println!(
        "restored {apps} apps with {} versions, {} groups, {} ACL tokens ({} already here) and {} event subscriptions from {} (cluster {}, taken at {})",
        total.versions,
        total.groups,
        total.acl_tokens,
        total.acl_tokens_present,
        total.event_subscriptions,
        file.display(),
        backup.cluster_id.as_deref().unwrap_or("N/A"),
        backup.taken_at,
    );
    Ok(())
}

/// A backup from JSON, with its format checked.
fn read_backup(value: Value, source: &str) -> Result<Backup, CliError> {
    let format = value.get("format").and_then(Value::as_str);
    let version = value.get("formatVersion").and_then(Value::as_u64);
    if format != Some(BACKUP_FORMAT) {
        return Err(CliError(format!(
            "{source} is not a drover backup (its \"format\" is {}, not \"{BACKUP_FORMAT}\"); give a file written by `drover operator snapshot save`",
            format.map_or("missing".into(), |f| format!("\"{f}\""))
        )));
    }
    if version.is_none_or(|v| v > u64::from(BACKUP_FORMAT_VERSION)) {
        return Err(CliError(format!(
            "{source} is a backup of format version {}, and this drover reads up to {BACKUP_FORMAT_VERSION}: use the drover release that wrote it, or a newer one",
            version.map_or("(missing)".into(), |v| v.to_string())
        )));
    }
    serde_json::from_value(value)
        .map_err(|e| CliError(format!("{source} is a damaged backup: {e}")))
}

/// Apps and stored versions in a state.
fn counts(state: &ClusterState) -> (usize, usize) {
    let versions = state.apps().values().map(|r| r.versions().count()).sum();
    (state.apps().len(), versions)
}

/// The restore's parts: each app's versions oldest first, then the tokens, packed so that
/// each part's body stays under the restore limit (less room for framing).
fn parts(state: &ClusterState) -> Result<Vec<RestorePart>, CliError> {
    let budget = RESTORE_BODY_LIMIT - 64 * 1024;
    let mut parts = vec![RestorePart::default()];
    let mut used = 0;
    let mut room = |size: usize, parts: &mut Vec<RestorePart>| {
        if used + size > budget && used > 0 {
            parts.push(RestorePart::default());
            used = 0;
        }
        used += size;
    };
    for record in state.apps().values() {
        for v in record.versions() {
            let size = size_of_json(v)?;
            if size > budget {
                return Err(CliError(format!(
                    "app {} version {} is {size} bytes, over what one restore request carries ({budget}); nothing was restored",
                    v.app.id, v.version
                )));
            }
            room(size, &mut parts);
            parts.last_mut().expect("one part").apps.push(v.clone());
        }
    }
    for (id, record) in state.groups() {
        let group = RestoredGroup {
            id: id.clone(),
            record: record.clone(),
        };
        room(size_of_json(&group)?, &mut parts);
        parts.last_mut().expect("one part").groups.push(group);
    }
    for token in state.acl().tokens().values() {
        room(size_of_json(token)?, &mut parts);
        parts
            .last_mut()
            .expect("one part")
            .acl_tokens
            .push(token.clone());
    }
    for url in state.event_subscriptions() {
        room(url.len() + 4, &mut parts);
        parts
            .last_mut()
            .expect("one part")
            .event_subscriptions
            .push(url.clone());
    }
    Ok(parts)
}

fn size_of_json(v: &impl serde::Serialize) -> Result<usize, CliError> {
    serde_json::to_vec(v)
        .map(|b| b.len())
        .map_err(|e| CliError(format!("cannot encode the backup: {e}")))
}
