//! `/v1/operator/…`: backups of the replicated state and their restore into another cluster
//! (etcd's `snapshot save`/`restore`, done through the API so the cluster keeps serving).
//!
//! A backup is the leader's whole state at one applied index, read linearizably: apps with
//! every stored version, deployments, agents, instances and ACL tokens (secret hashes only).
//! A restore replays what belongs to the workload and its users into a running cluster,
//! normally a fresh one: each app's versions, oldest first, under their original version
//! strings, the explicit groups with their versions and dependencies, the ACL tokens and
//! the event subscriptions. Agents, masters and instances belong to the machines of the
//! old cluster and are not restored; the scheduler places the restored apps' instances on
//! the new cluster's agents.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use state::acl::AclToken;
use state::machine::{AppVersion, GroupRecord};
use state::{ClusterState, Command, Response as Applied};

use crate::clock::iso;
use crate::error::ApiError;
use crate::node::RaftNode;

/// The `format` of a backup file.
pub const BACKUP_FORMAT: &str = "drover-backup";

/// The version of the backup file's layout this release writes and reads.
pub const BACKUP_FORMAT_VERSION: u32 = 1;

/// The largest body `POST /v1/operator/restore` accepts: one app version can be near the
/// public limit (1 MiB) on its own, plus the request's framing.
pub const RESTORE_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A backup file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    /// Always [`BACKUP_FORMAT`].
    pub format: String,
    /// The layout's version ([`BACKUP_FORMAT_VERSION`]).
    pub format_version: u32,
    /// The cluster it was taken from.
    pub cluster_id: Option<String>,
    /// When the leader took it (ISO-8601).
    pub taken_at: String,
    /// The Raft log index the state is at.
    pub applied_index: u64,
    /// The replicated state, as snapshots store it.
    pub state: ClusterState,
}

/// One part of a restore: app versions (each app's oldest first) and ACL tokens. The CLI
/// splits a backup into parts that fit the body limit.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestorePart {
    /// App versions to store, in the order given.
    #[serde(default)]
    pub apps: Vec<AppVersion>,
    /// Explicit groups (dependencies, versions to roll back to), each written whole.
    #[serde(default)]
    pub groups: Vec<RestoredGroup>,
    /// ACL tokens to add (a token whose accessor id is taken is left as it is).
    #[serde(default)]
    pub acl_tokens: Vec<AclToken>,
    /// HTTP callback URLs to subscribe to events (one already subscribed stays).
    #[serde(default)]
    pub event_subscriptions: Vec<String>,
}

/// An explicit group of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoredGroup {
    /// The group.
    pub id: domain::GroupId,
    /// Its record as the backup holds it.
    pub record: GroupRecord,
}

impl RestoredGroup {
    /// The commands that write the group as the backup has it: each stored version oldest
    /// first, then its current version and dependencies.
    fn commands(self) -> impl Iterator<Item = Command> {
        let RestoredGroup { id, record } = self;
        let put = |version: String, definition| Command::PutGroup {
            id: id.clone(),
            dependencies: record.dependencies.clone(),
            version,
            definition,
        };
        let mut commands: Vec<Command> = record
            .versions
            .iter()
            .map(|v| put(v.version.clone(), Some(v.definition.clone())))
            .collect();
        commands.push(put(record.version.clone(), None));
        commands.into_iter()
    }
}

/// What a restore part did.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    /// App versions stored.
    pub versions: usize,
    /// Explicit groups written.
    #[serde(default)]
    pub groups: usize,
    /// ACL tokens added.
    pub acl_tokens: usize,
    /// ACL tokens left out because this cluster has their accessor id or secret already.
    pub acl_tokens_present: usize,
    /// Event subscriptions the cluster now has of those restored.
    #[serde(default)]
    pub event_subscriptions: usize,
}

/// `GET /v1/operator/snapshot`: the whole replicated state, consistent, from the leader.
pub async fn snapshot(State(m): State<Arc<RaftNode>>) -> Result<Response, ApiError> {
    m.linearizable().await?;
    let now = m.clock().now_ms();
    let (state, applied_index) = m
        .state()
        .read(|a| (a.state.clone(), a.last_applied.map_or(0, |l| l.index)));
    // Encoding a large state takes seconds: off the runtime's workers, as snapshots are.
    let encoded = state::runtime::off_worker(move || {
        serde_json::to_vec(&Backup {
            format: BACKUP_FORMAT.into(),
            format_version: BACKUP_FORMAT_VERSION,
            cluster_id: state.cluster_id().map(str::to_string),
            taken_at: iso(now),
            applied_index,
            state,
        })
    })
    .await
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the backup panicked",
        )
    })?
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the backup: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], encoded).into_response())
}

/// `POST /v1/operator/restore` with a [`RestorePart`]: stores the app versions and adds the
/// ACL tokens, in one commit. An app this cluster has already, at or after a version being
/// restored, refuses the whole part (409): restore into a fresh cluster, or delete the app
/// first. Parts of one app follow each other oldest first, so a later part continues it.
pub async fn restore(State(m): State<Arc<RaftNode>>, body: Bytes) -> Result<Response, ApiError> {
    let part: RestorePart = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "The body is not a restore part ({e}); nothing was restored. Use `drover operator snapshot restore FILE`, which reads a backup file and sends it in parts."
            ),
        )
    })?;
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    let clashes: Vec<String> = m.state().read(|a| clashes(&a.state, &part.apps));
    if !clashes.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "This cluster has these apps already, at or after the versions being restored: {}; nothing was restored. Restore into a fresh cluster, or delete them first.",
                clashes.join(", ")
            ),
        ));
    }
    for url in &part.event_subscriptions {
        crate::callbacks::url::CallbackUrl::parse(url).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "{e}; nothing was restored. Remove it from the backup's eventSubscriptions."
                ),
            )
        })?;
    }
    let versions = part.apps.len();
    let tokens = part.acl_tokens.len();
    let subscriptions = part.event_subscriptions.len();
    let groups = part.groups.len();
    let mut commands: Vec<Command> = part
        .apps
        .into_iter()
        .map(|v| Command::PutApp {
            app: v.app,
            version: v.version,
        })
        .collect();
    // Groups after the apps: their answers are not read (a group write always applies).
    let group_commands: Vec<Command> = part
        .groups
        .into_iter()
        .flat_map(RestoredGroup::commands)
        .collect();
    commands.extend(
        part.acl_tokens
            .into_iter()
            .map(|token| Command::PutAclToken { token }),
    );
    let groups_at = commands.len();
    commands.extend(group_commands);
    let group_count = commands.len() - groups_at;
    commands.extend(
        part.event_subscriptions
            .into_iter()
            .map(|callback_url| Command::Subscribe { callback_url }),
    );
    if commands.is_empty() {
        return Ok(Json(Restored::default()).into_response());
    }
    let answer = m.write(Command::Batch { commands }).await?;
    let Applied::Batch { responses } = answer else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the restore's commit answered {answer:?}"),
        ));
    };
    let (app_answers, rest) = responses.split_at(versions.min(responses.len()));
    let (token_answers, rest) = rest.split_at(tokens.min(rest.len()));
    let subscription_answers = &rest[group_count.min(rest.len())..];
    if let Some(refused) = app_answers
        .iter()
        .find(|r| !matches!(r, Applied::AppVersion { .. }))
    {
        // Another writer raced the check above (it holds no lock on the apps' ids).
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "An app version was refused while restoring: {refused:?}. Check the apps named, then run the restore again."
            ),
        ));
    }
    let added = token_answers
        .iter()
        .filter(|r| matches!(r, Applied::Ok))
        .count();
    if let Some(Applied::Conflict { message }) = subscription_answers
        .iter()
        .find(|r| matches!(r, Applied::Conflict { .. }))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "The apps and tokens of this part were restored, but not every event subscription: {message}"
            ),
        ));
    }
    Ok(Json(Restored {
        versions,
        groups,
        acl_tokens: added,
        acl_tokens_present: tokens - added,
        event_subscriptions: subscriptions,
    })
    .into_response())
}

/// The apps of `versions` that `state` has at or after the version being restored: those a
/// restore would overwrite or reorder.
fn clashes(state: &ClusterState, versions: &[AppVersion]) -> Vec<String> {
    let mut out: Vec<String> = versions
        .iter()
        .filter_map(|v| {
            let record = state.app(&v.app.id)?;
            // Versions are ISO-8601 times of one format: their text order is their time order.
            (record.current().version.as_str() >= v.version.as_str()).then(|| {
                format!(
                    "{} (has {}, restoring {})",
                    v.app.id,
                    record.current().version,
                    v.version
                )
            })
        })
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::AppDefinition;

    fn version(id: &str, v: &str) -> AppVersion {
        let app: AppDefinition =
            serde_json::from_value(serde_json::json!({"id": id, "cmd": "true"})).expect("app");
        AppVersion {
            version: v.into(),
            app,
            format: state::machine::APP_FORMAT,
        }
    }

    #[test]
    fn a_restore_may_continue_an_app_but_not_overwrite_or_reorder_one() {
        let mut state = ClusterState::default();
        let v = version("/web", "2026-01-02T00:00:00.000Z");
        state.apply(Command::PutApp {
            app: v.app.clone(),
            version: v.version.clone(),
        });
        // Newer versions continue the app (a later part of the same restore).
        assert!(clashes(&state, &[version("/web", "2026-01-03T00:00:00.000Z")]).is_empty());
        // The same version, or an older one, would be written over or out of order.
        for at in ["2026-01-02T00:00:00.000Z", "2026-01-01T00:00:00.000Z"] {
            let found = clashes(&state, &[version("/web", at)]);
            assert_eq!(found.len(), 1, "{at}: {found:?}");
            assert!(found[0].starts_with("/web (has 2026-01-02"), "{found:?}");
        }
        // Apps this cluster does not have never clash.
        assert!(clashes(&state, &[version("/db", "2020-01-01T00:00:00.000Z")]).is_empty());
    }
}
