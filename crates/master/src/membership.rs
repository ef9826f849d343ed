//! Master membership (issue 16): masters join a running cluster as Raft learners and are
//! promoted to voters once caught up, operators remove them, and, when enabled, the leader
//! removes a voter that has been down too long.
//!
//! - A master started with `--join` asks the leader (`POST /internal/masters/join`, forwarded
//!   like any request) to add it; the leader adds it as a **learner** (it receives the log, or
//!   a snapshot, and votes in nothing).
//! - The leader's [`supervise`] loop promotes a learner to **voter** once it answers the
//!   leader and is at most [`PROMOTE_MAX_LAG`] entries behind ([`promotable`]).
//! - `DELETE /v1/operator/masters/{id}` removes a member, refused when the voters left would
//!   not have a quorum of masters that are up, or when it names the leader
//!   ([`check_removal`]). The removed master is told, checks with the leader, and stops.
//! - With `--remove-dead-masters-after`, the loop removes a voter silent that long, one at
//!   a time, only when [`check_removal`] allows it ([`dead_voter`]).
//! - With `--redundancy-zones`, the loop keeps one voter per zone and the other masters as
//!   standby learners instead, and replaces a voter down past `--remove-dead-masters-after`
//!   by a standby ([`zone_step`]: same zone first).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use openraft::ChangeMembers;
use openraft::error::{ClientWriteError, RaftError};
use serde_json::json;

use crate::error::ApiError;
use crate::node::RaftNode;

/// A learner at most this many entries behind the leader's last log index (and heard from
/// within [`UP_WITHIN`]) is promoted to voter.
pub const PROMOTE_MAX_LAG: u64 = 64;

/// A member that answered the leader's Raft RPCs within this long counts as up (heartbeats
/// go every `--heartbeat-ms`, 100 ms by default).
pub const UP_WITHIN: Duration = Duration::from_secs(2);

/// How often the leader looks at its learners (and at dead voters).
const TICK: Duration = Duration::from_millis(250);

/// Entries a member lacks behind the leader's `last` index, given the last index it has
/// (`matched`, `None` when it has nothing of the leader's log yet).
pub fn log_lag(last: Option<u64>, matched: Option<u64>) -> u64 {
    match (last, matched) {
        (None, _) => 0,
        (Some(last), None) => last + 1,
        (Some(last), Some(m)) => last.saturating_sub(m),
    }
}

/// The promotion rule: a learner becomes a voter once it answered the leader within
/// [`UP_WITHIN`] and lags at most [`PROMOTE_MAX_LAG`] entries. A learner that is down, or
/// still catching up (from a snapshot, or a long log), stays a learner: as a voter it would
/// count towards the quorum without being able to help form one.
pub fn promotable(lag: u64, last_contact: Option<Duration>) -> bool {
    lag <= PROMOTE_MAX_LAG && last_contact.is_some_and(|c| c <= UP_WITHIN)
}

/// Why a removal is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The id is not a member.
    #[error("master {0} is not a member of this cluster (see `drover operator masters`)")]
    NotMember(u64),
    /// The id is the leader's.
    #[error(
        "master {0} is the leader and cannot remove itself: hand leadership over first (`curl -X DELETE http://LEADER/v2/leader`, or stop it and let another master lead), then run `drover operator masters remove {0}` again; it is sent to the new leader"
    )]
    Leader(u64),
    /// It is the last voter.
    #[error("master {0} is the only voter; a cluster needs at least one")]
    LastVoter(u64),
    /// The voters in force have no quorum of masters that are up: no change can commit.
    #[error(
        "only {up} of the {voters} voters are up, fewer than the {needed} a quorum needs, so no membership change can be committed (removing master {id} included): nothing was done. Bring masters back up first; if they are gone for good, see `--force-new-cluster` in docs/operations.md"
    )]
    NoQuorumNow {
        /// The master to remove.
        id: u64,
        /// Voters in force.
        voters: usize,
        /// Of them, up.
        up: usize,
        /// A majority of `voters`.
        needed: usize,
    },
    /// The voters left would not have a quorum of masters that are up.
    #[error(
        "removing master {id} would leave {remaining} voters of which only {up} are up, fewer than the {needed} a quorum needs: nothing was done. Bring masters back up (or add new ones) first"
    )]
    NoQuorum {
        /// The master to remove.
        id: u64,
        /// Voters after the removal.
        remaining: usize,
        /// Of them, up.
        up: usize,
        /// A majority of `remaining`.
        needed: usize,
    },
}

/// The removal rule: `target` may go when it is a member, not the `leader`, and (for a
/// voter) the voters left keep a quorum of masters that are `up` (the leader counts as up).
/// A learner may always go: it is not part of any quorum.
pub fn check_removal(
    voters: &BTreeSet<u64>,
    learners: &BTreeSet<u64>,
    up: &BTreeSet<u64>,
    leader: u64,
    target: u64,
) -> Result<(), Refusal> {
    if target == leader {
        return Err(Refusal::Leader(target));
    }
    if learners.contains(&target) {
        return Ok(());
    }
    if !voters.contains(&target) {
        return Err(Refusal::NotMember(target));
    }
    let remaining: BTreeSet<u64> = voters.iter().copied().filter(|v| *v != target).collect();
    if remaining.is_empty() {
        return Err(Refusal::LastVoter(target));
    }
    // The change itself is committed by a quorum of the voters in force (a joint
    // configuration needs both halves): without one it would never complete.
    let up_now = voters
        .iter()
        .filter(|v| **v == leader || up.contains(v))
        .count();
    if up_now < voters.len() / 2 + 1 {
        return Err(Refusal::NoQuorumNow {
            id: target,
            voters: voters.len(),
            up: up_now,
            needed: voters.len() / 2 + 1,
        });
    }
    let up = remaining
        .iter()
        .filter(|v| **v == leader || up.contains(v))
        .count();
    let needed = remaining.len() / 2 + 1;
    if up < needed {
        return Err(Refusal::NoQuorum {
            id: target,
            remaining: remaining.len(),
            up,
            needed,
        });
    }
    Ok(())
}

/// The dead-master clean-up rule: the voter (not the leader) down longest, if it has been
/// down at least `after` and removing it passes [`check_removal`]. `down_for` holds how
/// long each member that is not up has been down.
pub fn dead_voter(
    voters: &BTreeSet<u64>,
    up: &BTreeSet<u64>,
    leader: u64,
    down_for: &BTreeMap<u64, Duration>,
    after: Duration,
) -> Option<u64> {
    let mut dead: Vec<(Duration, u64)> = voters
        .iter()
        .filter(|v| **v != leader)
        .filter_map(|v| down_for.get(v).map(|d| (*d, *v)))
        .filter(|(d, _)| *d >= after)
        .collect();
    dead.sort_by(|a, b| b.cmp(a));
    dead.into_iter()
        .map(|(_, v)| v)
        .find(|v| check_removal(voters, &BTreeSet::new(), up, leader, *v).is_ok())
}

/// One membership change the redundancy-zones rule asks for ([`zone_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneStep {
    /// Make this learner a voter.
    Promote(u64),
    /// Make this voter a learner (a standby), keeping it a member.
    Demote(u64),
}

/// What the leader knows of the members, for [`zone_step`].
#[derive(Debug, Clone, Default)]
pub struct ZoneView {
    /// Voter ids.
    pub voters: BTreeSet<u64>,
    /// Learner ids.
    pub learners: BTreeSet<u64>,
    /// The zone of every member whose fault domain is registered.
    pub zones: BTreeMap<u64, String>,
    /// The members that are up (the leader included).
    pub up: BTreeSet<u64>,
    /// The learners that may become voters now ([`promotable`]: up and caught up).
    pub ready: BTreeSet<u64>,
    /// The voters down at least `--remove-dead-masters-after`.
    pub dead: BTreeSet<u64>,
    /// The leader's id.
    pub leader: u64,
}

impl ZoneView {
    /// A voter's zone; a voter with no registered zone counts as a zone of its own.
    fn zone(&self, id: u64) -> String {
        self.zones
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("(master {id}, no zone)"))
    }
}

/// The redundancy-zones rule: the next membership change, if any, one at a time.
///
/// The zones are those of the members (voters and learners with a registered zone; a voter
/// with none counts as its own zone); the target is one voter per zone. Live voters are the
/// voters not in `dead`.
/// 1. A ready learner in a zone without a live voter is promoted (a dead voter's zone
///    first, then the lowest id), when a quorum of the voters is up (a joining master, a zone coming back, a lost voter's
///    standby in its own zone).
/// 2. When a voter is dead and the live voters are fewer than the zones, a ready learner of
///    another zone is promoted so the voter count stays: the one of the zone with the
///    fewest live voters, then the dead voter's zone, then the lowest id.
/// 3. A dead voter (never the leader) is demoted to learner when [`check_removal`] allows
///    it (once its replacement votes, or when no learner can replace it).
/// 4. With no dead voter and more voters than zones, a voter of the zone with the most
///    voters is demoted (not the leader; one that is down first, then the highest id), when
///    [`check_removal`] allows it.
///
/// Learners with no registered zone are neither promoted nor counted until it is known.
pub fn zone_step(v: &ZoneView) -> Option<ZoneStep> {
    let mut zones: BTreeSet<String> = v.voters.iter().map(|id| v.zone(*id)).collect();
    zones.extend(v.learners.iter().filter_map(|id| v.zones.get(id).cloned()));
    let mut live_in: BTreeMap<String, usize> = zones.iter().map(|z| (z.clone(), 0)).collect();
    let live: Vec<u64> = v
        .voters
        .iter()
        .copied()
        .filter(|id| !v.dead.contains(id))
        .collect();
    for id in &live {
        *live_in.entry(v.zone(*id)).or_default() += 1;
    }
    let quorum_up = v
        .voters
        .iter()
        .filter(|id| **id == v.leader || v.up.contains(id))
        .count()
        > v.voters.len() / 2;
    let dead_zones: BTreeSet<String> = v.dead.iter().map(|id| v.zone(*id)).collect();
    let candidates: Vec<(u64, &String)> = v
        .learners
        .iter()
        .filter(|id| v.ready.contains(id))
        .filter_map(|id| v.zones.get(id).map(|z| (*id, z)))
        .collect();
    if quorum_up {
        // 1. A zone without a live voter gets one.
        if let Some((id, _)) = candidates
            .iter()
            .filter(|(_, z)| live_in.get(*z).copied().unwrap_or(0) == 0)
            .min_by_key(|(id, z)| (!dead_zones.contains(*z), *id))
        {
            return Some(ZoneStep::Promote(*id));
        }
        // 2. A lost voter is replaced from another zone to keep the count.
        if !v.dead.is_empty() && live.len() < zones.len() {
            let best = candidates.iter().min_by_key(|(id, z)| {
                (
                    live_in.get(*z).copied().unwrap_or(0),
                    !dead_zones.contains(*z),
                    *id,
                )
            });
            if let Some((id, _)) = best {
                return Some(ZoneStep::Promote(*id));
            }
        }
    }
    // 3. A dead voter steps down to standby.
    if let Some(dead) = v.dead.iter().copied().find(|id| {
        *id != v.leader && check_removal(&v.voters, &BTreeSet::new(), &v.up, v.leader, *id).is_ok()
    }) {
        return Some(ZoneStep::Demote(dead));
    }
    // 4. More voters than zones: one of a shared zone steps down.
    if v.dead.is_empty() && v.voters.len() > zones.len() {
        let (zone, n) = live_in
            .iter()
            .max_by_key(|(z, n)| (**n, std::cmp::Reverse(*z)))?;
        if *n < 2 {
            return None;
        }
        let extra = v
            .voters
            .iter()
            .copied()
            .filter(|id| *id != v.leader && v.zone(*id) == *zone)
            .max_by_key(|id| (!v.up.contains(id), *id))?;
        if check_removal(&v.voters, &BTreeSet::new(), &v.up, v.leader, extra).is_ok() {
            return Some(ZoneStep::Demote(extra));
        }
    }
    None
}

/// The membership as this master's Raft sees it: voters, learners, addresses.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Voter ids (of the last config, when a change is in progress).
    pub voters: BTreeSet<u64>,
    /// Learner ids.
    pub learners: BTreeSet<u64>,
    /// Every member's address.
    pub addrs: BTreeMap<u64, String>,
    /// True while a joint configuration is in force (a change in progress).
    pub changing: bool,
}

impl View {
    /// The view from `node`'s Raft metrics.
    pub fn of(node: &RaftNode) -> Self {
        let metrics = node.raft().metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let joint = membership.get_joint_config();
        View {
            voters: joint.last().cloned().unwrap_or_default(),
            learners: membership.learner_ids().collect(),
            addrs: membership
                .nodes()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect(),
            changing: joint.len() > 1,
        }
    }

    /// The members that answered within [`UP_WITHIN`], `leader` included.
    pub fn up(&self, node: &RaftNode, leader: u64) -> BTreeSet<u64> {
        self.addrs
            .keys()
            .copied()
            .filter(|id| {
                *id == leader || node.contacts().since(*id).is_some_and(|c| c <= UP_WITHIN)
            })
            .collect()
    }
}

/// The log lag of every member, from the leader's replication metrics (`None` off the
/// leader).
pub fn lags(node: &RaftNode) -> Option<BTreeMap<u64, u64>> {
    let metrics = node.raft().metrics().borrow().clone();
    let replication = metrics.replication.as_ref()?;
    let last = metrics.last_log_index;
    let mut out: BTreeMap<u64, u64> = replication
        .iter()
        .map(|(id, matched)| (*id, log_lag(last, matched.map(|l| l.index))))
        .collect();
    out.insert(node.config().id, 0);
    Some(out)
}

fn change_error(e: RaftError<u64, ClientWriteError<u64, openraft::BasicNode>>) -> ApiError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => ApiError::unavailable(
            "This master stopped leading while changing the membership; nothing was done or the change completes under the new leader. Check `drover operator masters`, then retry.",
        ),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => ApiError::new(
            StatusCode::CONFLICT,
            format!("The membership cannot change now: {e}. Retry in a moment."),
        ),
        e => ApiError::unavailable(format!(
            "The membership change failed ({e}); check `drover operator masters`, then retry."
        )),
    }
}

/// On the leader: adds `id` at `addr` as a learner (not waiting for it to catch up), unless
/// it is a member already at that address. Refuses an id that is a member elsewhere and an
/// address another member has.
pub async fn add_learner(node: &RaftNode, id: u64, addr: &str) -> Result<&'static str, ApiError> {
    let view = View::of(node);
    if let Some(known) = view.addrs.get(&id) {
        if known == addr {
            return Ok("already a member");
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "master {id} is already a member at {known}, not {addr}. If {known} is gone for good, remove it first: `drover operator masters remove {id}`, then start this master again"
            ),
        ));
    }
    if let Some((other, _)) = view.addrs.iter().find(|(_, a)| a.as_str() == addr) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{addr} is already master {other}'s address; every master needs its own HOST:PORT (remove master {other} first if it is gone: `drover operator masters remove {other}`)"
            ),
        ));
    }
    if view.changing {
        return Err(ApiError::unavailable(
            "A membership change is in progress; retry in a moment.",
        ));
    }
    node.raft()
        .add_learner(id, openraft::BasicNode::new(addr), false)
        .await
        .map_err(change_error)?;
    tracing::info!(
        id,
        addr,
        "master added as a learner; it becomes a voter once it has caught up"
    );
    Ok("added as a learner; it becomes a voter once it has caught up")
}

/// On the leader: removes `target` from the membership if [`check_removal`] allows it, then
/// from the registry, and tells it so it stops.
pub async fn remove(node: &RaftNode, target: u64) -> Result<(), ApiError> {
    let leader = node.config().id;
    if !node.is_leader() {
        return Err(ApiError::unavailable(
            "This master is no longer the leader; nothing was done. Retry: the request will go to the new leader.",
        ));
    }
    let view = View::of(node);
    if view.changing {
        return Err(ApiError::unavailable(
            "A membership change is in progress; retry in a moment.",
        ));
    }
    let up = view.up(node, leader);
    check_removal(&view.voters, &view.learners, &up, leader, target).map_err(|e| {
        let status = match e {
            Refusal::NotMember(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::CONFLICT,
        };
        ApiError::new(status, e.to_string())
    })?;
    let change = if view.voters.contains(&target) {
        ChangeMembers::RemoveVoters(BTreeSet::from([target]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([target]))
    };
    node.raft()
        .change_membership(change, false)
        .await
        .map_err(change_error)?;
    tracing::warn!(id = target, "master removed from the membership");
    // Out of the registry too, so the id can be used again (`--join` with a new data dir).
    let _ = node
        .write(state::Command::RemoveMaster { id: target })
        .await?;
    if let Some(addr) = view.addrs.get(&target) {
        let body = json!({ "id": target, "leader": node.config().advertised() });
        let _ = node
            .peers()
            .post_json(
                addr,
                "/internal/masters/removed",
                &body,
                Duration::from_secs(2),
            )
            .await;
    }
    Ok(())
}

/// The leader's membership work, every [`TICK`]: promote learners that have caught up, and
/// with `--remove-dead-masters-after`, remove a voter that has been down that long.
pub async fn supervise(node: Arc<RaftNode>) {
    // When each member not up was first seen down by this leader.
    let mut down_since: BTreeMap<u64, tokio::time::Instant> = BTreeMap::new();
    // The dead voters kept (not removed) this leader has said so about.
    let mut kept_said: BTreeSet<u64> = BTreeSet::new();
    loop {
        tokio::time::sleep(TICK).await;
        if !node.is_leader() {
            down_since.clear();
            kept_said.clear();
            continue;
        }
        let view = View::of(&node);
        if view.changing {
            continue;
        }
        let leader = node.config().id;
        let Some(lags) = lags(&node) else { continue };
        let up = view.up(&node, leader);
        let now = tokio::time::Instant::now();
        down_since.retain(|id, _| !up.contains(id) && view.addrs.contains_key(id));
        for id in view.addrs.keys() {
            if !up.contains(id) {
                down_since.entry(*id).or_insert_with(|| {
                    // Down since its last contact, if this leader had any; else since now.
                    node.contacts()
                        .since(*id)
                        .and_then(|c| now.checked_sub(c))
                        .unwrap_or(now)
                });
            }
        }
        let after = node.config().membership.remove_dead_after;
        if node.config().membership.redundancy_zones {
            let dead = match after {
                Some(after) => view
                    .voters
                    .iter()
                    .copied()
                    .filter(|id| {
                        *id != leader
                            && down_since
                                .get(id)
                                .is_some_and(|at| now.saturating_duration_since(*at) >= after)
                    })
                    .collect(),
                None => BTreeSet::new(),
            };
            let zones: BTreeMap<u64, String> = node.state().read(|a| {
                a.state
                    .masters()
                    .iter()
                    .filter_map(|(id, m)| m.domain.as_ref().map(|d| (*id, d.zone.clone())))
                    .collect()
            });
            let ready = view
                .learners
                .iter()
                .copied()
                .filter(|id| {
                    promotable(
                        lags.get(id).copied().unwrap_or(u64::MAX),
                        node.contacts().since(*id),
                    )
                })
                .collect();
            let zv = ZoneView {
                voters: view.voters.clone(),
                learners: view.learners.clone(),
                zones,
                up,
                ready,
                dead,
                leader,
            };
            if let Some(step) = zone_step(&zv) {
                apply_zone_step(&node, step, &zv).await;
            }
            continue;
        }
        for learner in &view.learners {
            let lag = lags.get(learner).copied().unwrap_or(u64::MAX);
            if promotable(lag, node.contacts().since(*learner)) {
                match node
                    .raft()
                    .change_membership(
                        ChangeMembers::AddVoterIds(BTreeSet::from([*learner])),
                        false,
                    )
                    .await
                {
                    Ok(_) => tracing::info!(id = learner, lag, "learner promoted to voter"),
                    Err(e) => tracing::warn!(id = learner, "cannot promote the learner yet: {e}"),
                }
                // One change per tick: the next sees the new membership.
                break;
            }
        }
        let Some(after) = after else {
            continue;
        };
        let down_for: BTreeMap<u64, Duration> = down_since
            .iter()
            .map(|(id, at)| (*id, now.saturating_duration_since(*at)))
            .collect();
        // A voter down long enough that stays: said once (per leadership and outage), with
        // the reason, so the operator knows why it was not removed.
        for (id, down) in &down_for {
            if *id == leader || !view.voters.contains(id) || *down < after {
                continue;
            }
            if let Err(why) = check_removal(&view.voters, &BTreeSet::new(), &up, leader, *id)
                && kept_said.insert(*id)
            {
                tracing::warn!(
                    id,
                    down_ms = down.as_millis() as u64,
                    "master {id} is down longer than --remove-dead-masters-after but is kept as a voter: {why}"
                );
            }
        }
        kept_said.retain(|id| down_for.contains_key(id));
        if let Some(dead) = dead_voter(&view.voters, &up, leader, &down_for, after) {
            tracing::warn!(
                id = dead,
                down_ms = down_for.get(&dead).map(|d| d.as_millis() as u64),
                "removing a master down longer than --remove-dead-masters-after"
            );
            if let Err(e) = remove(&node, dead).await {
                tracing::warn!(
                    id = dead,
                    "cannot remove the dead master: {}",
                    e.body.message
                );
            }
        }
    }
}

/// Carries out one [`zone_step`] on the leader, logging it with its reason.
async fn apply_zone_step(node: &RaftNode, step: ZoneStep, v: &ZoneView) {
    let (change, id, what) = match step {
        ZoneStep::Promote(id) => (
            ChangeMembers::AddVoterIds(BTreeSet::from([id])),
            id,
            "redundancy zones: standby promoted to voter",
        ),
        ZoneStep::Demote(id) => (
            ChangeMembers::RemoveVoters(BTreeSet::from([id])),
            id,
            if v.dead.contains(&id) {
                "redundancy zones: voter down longer than --remove-dead-masters-after demoted to standby"
            } else {
                "redundancy zones: voter demoted to standby (its zone has another voter)"
            },
        ),
    };
    let zone = v.zones.get(&id).map(String::as_str).unwrap_or("none");
    // `retain`: a demoted voter stays a member, as a learner.
    match node.raft().change_membership(change, true).await {
        Ok(_) => tracing::warn!(id, zone, "{what}"),
        Err(e) => tracing::warn!(
            id,
            zone,
            "redundancy zones: cannot change the membership yet ({what}): {e}"
        ),
    }
}

/// On a master started with `--join`: until it is a member, asks the leader (through any
/// master it knows) to add it.
pub async fn join(node: Arc<RaftNode>) {
    let body = json!(node.config().announcement());
    loop {
        if View::of(&node).addrs.contains_key(&node.config().id) {
            return;
        }
        for (_, addr) in node.config().peers() {
            match node
                .peers()
                .post_json(
                    addr,
                    "/internal/masters/join",
                    &body,
                    Duration::from_secs(6),
                )
                .await
            {
                Some((status, _)) if status.is_success() => break,
                Some((status, answer)) => {
                    let message = answer
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or_default()
                        .to_string();
                    tracing::warn!(peer = addr, %status, "the cluster did not add this master yet: {message}");
                }
                None => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_learner_is_promoted_once_caught_up_and_heard_from() {
        let recent = Some(Duration::from_millis(100));
        assert!(promotable(0, recent));
        assert!(promotable(PROMOTE_MAX_LAG, recent));
        assert!(
            !promotable(PROMOTE_MAX_LAG + 1, recent),
            "still catching up"
        );
        assert!(!promotable(0, None), "never answered this leader");
        assert!(
            !promotable(0, Some(UP_WITHIN + Duration::from_millis(1))),
            "down"
        );
    }

    #[test]
    fn log_lag_counts_missing_entries() {
        assert_eq!(log_lag(Some(100), Some(100)), 0);
        assert_eq!(log_lag(Some(100), Some(40)), 60);
        assert_eq!(log_lag(Some(100), None), 101);
        assert_eq!(log_lag(None, None), 0);
    }

    #[test]
    fn a_removal_must_leave_a_quorum_of_masters_that_are_up() {
        let five = set(&[1, 2, 3, 4, 5]);
        let none = set(&[]);
        // All up: any follower may go.
        assert_eq!(check_removal(&five, &none, &five, 1, 5), Ok(()));
        // 4 and 5 down: removing 3 (up) leaves 1, 2 up of 4 voters: no quorum.
        assert_eq!(
            check_removal(&five, &none, &set(&[1, 2, 3]), 1, 3),
            Err(Refusal::NoQuorum {
                id: 3,
                remaining: 4,
                up: 2,
                needed: 3
            })
        );
        // Removing a down one (5) leaves 1, 2, 3 up of 4: a quorum.
        assert_eq!(check_removal(&five, &none, &set(&[1, 2, 3]), 1, 5), Ok(()));
        // The leader never removes itself.
        assert_eq!(
            check_removal(&five, &none, &five, 1, 1),
            Err(Refusal::Leader(1))
        );
        assert_eq!(
            check_removal(&five, &none, &five, 1, 9),
            Err(Refusal::NotMember(9))
        );
        // A learner may go even when masters are down.
        assert_eq!(check_removal(&five, &set(&[6]), &set(&[1]), 1, 6), Ok(()));
        // The leader counts as up even when `up` does not name it.
        let three = set(&[1, 2, 3]);
        assert_eq!(check_removal(&three, &none, &set(&[2]), 1, 3), Ok(()));
        assert_eq!(
            check_removal(&set(&[1, 2]), &none, &set(&[2]), 1, 2),
            Ok(()),
            "one voter left, the leader: its own quorum"
        );
        // Two voters, the other one down: the change itself could not be committed.
        assert_eq!(
            check_removal(&set(&[1, 2]), &none, &set(&[]), 1, 2),
            Err(Refusal::NoQuorumNow {
                id: 2,
                voters: 2,
                up: 1,
                needed: 2
            })
        );
    }

    #[test]
    fn only_a_voter_down_long_enough_is_removed_and_only_with_a_quorum_left() {
        let five = set(&[1, 2, 3, 4, 5]);
        let after = Duration::from_secs(60);
        let down = |pairs: &[(u64, u64)]| -> BTreeMap<u64, Duration> {
            pairs
                .iter()
                .map(|(id, s)| (*id, Duration::from_secs(*s)))
                .collect()
        };
        // 5 down for 61 s, 4 for 10 s: 5 goes.
        let up = set(&[1, 2, 3]);
        assert_eq!(
            dead_voter(&five, &up, 1, &down(&[(4, 10), (5, 61)]), after),
            Some(5)
        );
        // Not long enough yet.
        assert_eq!(dead_voter(&five, &up, 1, &down(&[(5, 59)]), after), None);
        // 3 voters, 2 and 3 down: removing either leaves 2 voters with 1 up: refused.
        let three = set(&[1, 2, 3]);
        assert_eq!(
            dead_voter(&three, &set(&[1]), 1, &down(&[(2, 100), (3, 100)]), after),
            None
        );
        // The leader is never removed, however it looks.
        assert_eq!(
            dead_voter(&three, &three, 1, &down(&[(1, 100)]), after),
            None
        );
    }

    /// Masters 1..=6 in zones a, b, c, a, b, c; `voters` vote, the rest are learners; all
    /// up and caught up, the leader 2.
    fn six(voters: &[u64]) -> ZoneView {
        let all = set(&[1, 2, 3, 4, 5, 6]);
        let voters = set(voters);
        let learners: BTreeSet<u64> = all.difference(&voters).copied().collect();
        ZoneView {
            zones: all
                .iter()
                .map(|id| (*id, ["a", "b", "c"][((id - 1) % 3) as usize].to_string()))
                .collect(),
            ready: learners.clone(),
            voters,
            learners,
            up: all,
            dead: BTreeSet::new(),
            leader: 2,
        }
    }

    fn lose(v: &mut ZoneView, ids: &[u64], dead: &[u64]) {
        for id in ids {
            v.up.remove(id);
            v.ready.remove(id);
        }
        v.dead = set(dead);
    }

    #[test]
    fn one_voter_per_zone_is_stable_and_extra_voters_step_down() {
        assert_eq!(zone_step(&six(&[1, 2, 3])), None);
        // All six voting (formed with --masters): the highest non-leader of the most
        // crowded zone (first by name on a tie) steps down, one at a time, down to one per
        // zone.
        assert_eq!(
            zone_step(&six(&[1, 2, 3, 4, 5, 6])),
            Some(ZoneStep::Demote(4))
        );
        assert_eq!(zone_step(&six(&[1, 2, 3, 5, 6])), Some(ZoneStep::Demote(5)));
        assert_eq!(zone_step(&six(&[1, 2, 3, 6])), Some(ZoneStep::Demote(6)));
        // The leader never steps down: the other voter of its zone does.
        assert_eq!(zone_step(&six(&[2, 3, 4, 5])), Some(ZoneStep::Demote(5)));
        let mut v = six(&[2, 3, 4, 5]);
        v.leader = 5;
        assert_eq!(zone_step(&v), Some(ZoneStep::Demote(2)));
        // A zone without a voter gets its standby promoted (lowest id first).
        assert_eq!(zone_step(&six(&[2, 3])), Some(ZoneStep::Promote(1)));
    }

    #[test]
    fn a_lost_voter_is_replaced_by_its_zones_standby_first() {
        let mut v = six(&[1, 2, 3]);
        lose(&mut v, &[3], &[]);
        // Down, but not yet for --remove-dead-masters-after: nothing changes.
        assert_eq!(zone_step(&v), None);
        lose(&mut v, &[3], &[3]);
        assert_eq!(zone_step(&v), Some(ZoneStep::Promote(6)));
        // Once 6 votes, 3 steps down to standby.
        v.voters = set(&[1, 2, 3, 6]);
        v.learners = set(&[4, 5]);
        assert_eq!(zone_step(&v), Some(ZoneStep::Demote(3)));
        v.voters = set(&[1, 2, 6]);
        v.learners = set(&[3, 4, 5]);
        v.dead.clear();
        assert_eq!(zone_step(&v), None);
        // The lost voter's own zone comes first, even before a new zone with a lower id.
        let mut w = v.clone();
        w.voters = set(&[1, 2, 3]);
        w.learners = set(&[4, 5, 6, 7]);
        w.zones.insert(7, "d".into());
        w.ready = set(&[4, 5, 6, 7]);
        w.dead = set(&[1]);
        w.up = set(&[2, 3, 4, 5, 6, 7]);
        assert_eq!(zone_step(&w), Some(ZoneStep::Promote(4)));
        w.dead = set(&[3]);
        w.up = set(&[1, 2, 4, 5, 6, 7]);
        assert_eq!(zone_step(&w), Some(ZoneStep::Promote(6)));
        // A standby still catching up is not promoted: another zone's is.
        let mut v = six(&[1, 2, 3]);
        v.ready.remove(&6);
        lose(&mut v, &[3], &[3]);
        assert_eq!(zone_step(&v), Some(ZoneStep::Promote(4)));
    }

    #[test]
    fn a_lost_zone_is_replaced_from_the_zone_with_the_fewest_voters() {
        // Zone a (voter 1, standby 4) is lost: 5 (zone b, lowest id of the tie) is promoted,
        // then 1 steps down, and nothing more moves while zone a is away.
        let mut v = six(&[1, 2, 3]);
        lose(&mut v, &[1, 4], &[1]);
        assert_eq!(zone_step(&v), Some(ZoneStep::Promote(5)));
        v.voters = set(&[1, 2, 3, 5]);
        v.learners = set(&[4, 6]);
        v.ready = set(&[6]);
        assert_eq!(zone_step(&v), Some(ZoneStep::Demote(1)));
        v.voters = set(&[2, 3, 5]);
        v.learners = set(&[1, 4, 6]);
        v.dead.clear();
        assert_eq!(zone_step(&v), None);
        // Zone a comes back: its lowest standby is promoted, then zone b's extra voter (not
        // the leader) steps down.
        v.up = set(&[1, 2, 3, 4, 5, 6]);
        v.ready = set(&[1, 4, 6]);
        assert_eq!(zone_step(&v), Some(ZoneStep::Promote(1)));
        v.voters = set(&[1, 2, 3, 5]);
        v.learners = set(&[4, 6]);
        assert_eq!(zone_step(&v), Some(ZoneStep::Demote(5)));
    }

    #[test]
    fn zone_changes_keep_a_quorum() {
        // Two of three voters dead: nothing can commit, so nothing is tried.
        let mut v = six(&[1, 2, 3]);
        lose(&mut v, &[1, 3], &[1, 3]);
        assert_eq!(zone_step(&v), None);
        // An extra voter that is up is not demoted while another voter is down and the
        // rest would lack a quorum: voters 2, 5 up, 4 down (not yet dead), 1 down.
        let mut v = six(&[1, 2, 4, 5]);
        v.up = set(&[2, 3, 5, 6]);
        assert_eq!(zone_step(&v), None);
        // A learner with no registered zone is neither promoted nor counted.
        let mut v = six(&[1, 2, 3]);
        v.zones.insert(7, "d".into());
        v.zones.remove(&7);
        v.learners.insert(7);
        v.ready.insert(7);
        assert_eq!(zone_step(&v), None);
        // A voter with no zone counts as its own zone: it is not demoted.
        let mut v = six(&[1, 2, 3]);
        v.voters.insert(7);
        v.up.insert(7);
        assert_eq!(zone_step(&v), None);
    }
}
