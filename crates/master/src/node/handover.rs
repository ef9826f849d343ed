//! A planned leadership move: the leader hands leadership to an up-to-date voter, which
//! stands at once and wins without the voters waiting out the leader's lease (etcd's
//! `TimeoutNow`; openraft 0.9 carries drover's patch for it, `vendor/openraft/PATCH.md`).
//!
//! 1. The leader stops taking writes ([`RaftNode::abdicating`]: requests wait for the new
//!    leader and are forwarded to it, its scheduler's writes are refused and retried there).
//! 2. It waits until a voter holds its whole log, and picks the one heard from last.
//! 3. It tells that voter to stand (`POST /internal/raft/transfer`, [`TransferRequest`]).
//! 4. It waits for the new leader. If no voter caught up, or none leads in time, this master
//!    leads on and says why; nothing was lost either way.
//!
//! `DELETE /v2/leader` and a SIGTERM of the leader (a rolling restart) both hand over.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::ServerState;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::RaftNode;
use crate::peer::Method;

/// The path of [`TransferRequest`], answered by the named voter itself (never forwarded).
pub const TRANSFER_PATH: &str = "/internal/raft/transfer";

/// How long the leader waits for a voter to hold its whole log before it gives up handing
/// over. Writes wait meanwhile, so it stays short: a voter that is this far behind is not
/// one to hand a cluster to.
const CATCH_UP: Duration = Duration::from_secs(2);

/// How long the chosen voter has to accept the transfer. It answers at once when it is
/// there; one that does not must not keep the cluster from writing for long.
const TRANSFER_CALL: Duration = Duration::from_secs(1);

/// The leader's word to the voter it hands leadership to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    /// The leader's id.
    pub leader: u64,
    /// Its term: a voter that has seen a later one ignores the request.
    pub term: u64,
    /// The leader's last log index, which the voter must hold.
    pub last_log_index: u64,
}

/// Why a handover did not happen. The master that tried leads on (or never led).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandOverError {
    /// Only the leader hands over.
    #[error("master {0} does not lead, so it has no leadership to hand over")]
    NotLeader(u64),
    /// Another handover is under way on this master.
    #[error("master {0} is already handing leadership over")]
    InProgress(u64),
    /// One voter: there is nobody to hand to.
    #[error(
        "master {0} is the only voter: there is no other master to hand leadership to (add masters with `drover master --join`)"
    )]
    NoOtherVoter(u64),
    /// Writes already under way did not finish in time.
    #[error(
        "writes under way on master {leader} did not finish within {waited:?}; master {leader} leads on"
    )]
    WritesInFlight {
        /// This master.
        leader: u64,
        /// How long it waited.
        waited: Duration,
    },
    /// No voter held the whole log in time.
    #[error(
        "no other voter held the log of master {leader} (up to index {last}) and answered within the election timeout, in {waited:?} ({lags}); master {leader} leads on. Check the other masters' /health"
    )]
    NoneCaughtUp {
        /// This master.
        leader: u64,
        /// How long it waited.
        waited: Duration,
        /// Its last log index.
        last: u64,
        /// Each other voter's lag in entries, as text.
        lags: String,
    },
    /// The chosen voter refused or could not be reached.
    #[error("master {target} did not take the transfer: {why}; master {leader} leads on")]
    Refused {
        /// This master.
        leader: u64,
        /// The voter.
        target: u64,
        /// Its answer, or why there was none.
        why: String,
    },
    /// The voter was told but no other master led in time.
    #[error(
        "master {target} was told to take over but no other master led within {waited:?}; master {leader} stands for election again"
    )]
    NoTakeover {
        /// This master.
        leader: u64,
        /// The voter.
        target: u64,
        /// How long it waited.
        waited: Duration,
    },
}

/// A handover that happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandedOver {
    /// The new leader.
    pub to: u64,
    /// From the moment writes stopped here to the moment the new leader was known here.
    pub took: Duration,
}

impl RaftNode {
    /// Hands leadership to the voter that holds this leader's whole log (see the module),
    /// giving up after `give_up`.
    pub async fn hand_over(
        self: &Arc<Self>,
        give_up: Duration,
    ) -> Result<HandedOver, HandOverError> {
        let me = self.config.id;
        if self.raft.metrics().borrow().state != ServerState::Leader {
            return Err(HandOverError::NotLeader(me));
        }
        if !self.has_other_voter() {
            return Err(HandOverError::NoOtherVoter(me));
        }
        if self.abdicating.swap(true, Ordering::SeqCst) {
            return Err(HandOverError::InProgress(me));
        }
        // From here no write starts on this master and its leadership is not vouched for.
        *self
            .confirmed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.raft.runtime_config().elect(false);
        let started = Instant::now();
        let outcome = self.transfer(started, give_up).await;
        self.raft.runtime_config().elect(true);
        self.abdicating.store(false, Ordering::SeqCst);
        match &outcome {
            Ok(done) => tracing::info!(
                to = done.to,
                took_ms = done.took.as_millis() as u64,
                "handed leadership to master {}",
                done.to
            ),
            Err(e) => tracing::warn!("leadership not handed over: {e}"),
        }
        outcome
    }

    async fn transfer(
        self: &Arc<Self>,
        started: Instant,
        give_up: Duration,
    ) -> Result<HandedOver, HandOverError> {
        let me = self.config.id;
        let waited = CATCH_UP.min(give_up);
        let catch_up = started + waited;
        // The writes that began before `abdicating` was set finish first; none starts after.
        if tokio::time::timeout_at(catch_up, self.writing.write())
            .await
            .is_err()
        {
            return Err(HandOverError::WritesInFlight { leader: me, waited });
        }
        let (target, request) = self.caught_up_voter(catch_up, waited).await?;
        let addr = self
            .members()
            .get(&target)
            .cloned()
            .or_else(|| self.config.masters.get(&target).cloned())
            .unwrap_or_default();
        let body = serde_json::to_value(&request).unwrap_or_default();
        let wait = give_up.saturating_sub(started.elapsed()).min(TRANSFER_CALL);
        let refused = |why: String| HandOverError::Refused {
            leader: me,
            target,
            why,
        };
        match self
            .peers
            .call(Method::POST, &addr, TRANSFER_PATH, Some(&body), wait)
            .await
        {
            Ok((status, _)) if status.is_success() => {}
            Ok((status, answer)) => {
                let why = answer
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map_or_else(|| status.to_string(), str::to_string);
                return Err(refused(format!("{status}: {why}")));
            }
            Err(e) => return Err(refused(e.to_string())),
        }
        let mut watch = self.raft.metrics();
        let deadline = started + give_up;
        loop {
            {
                let m = watch.borrow_and_update();
                if let Some(to) = m.current_leader.filter(|&l| l != me)
                    && m.state != ServerState::Leader
                {
                    return Ok(HandedOver {
                        to,
                        took: started.elapsed(),
                    });
                }
            }
            if tokio::time::timeout_at(deadline, watch.changed())
                .await
                .map_or(true, |changed| changed.is_err())
            {
                return Err(HandOverError::NoTakeover {
                    leader: me,
                    target,
                    waited: give_up,
                });
            }
        }
    }

    /// Waits until `deadline` for a voter that holds this leader's whole log and answered
    /// within the shortest election timeout (one that did not is down or cut off, whatever
    /// its log); of several, the one that answered last. `waited` is what the error says.
    async fn caught_up_voter(
        &self,
        deadline: Instant,
        waited: Duration,
    ) -> Result<(u64, TransferRequest), HandOverError> {
        let me = self.config.id;
        let mut watch = self.raft.metrics();
        let mut seen;
        loop {
            {
                let m = watch.borrow_and_update();
                if m.state != ServerState::Leader {
                    return Err(HandOverError::NotLeader(me));
                }
                let last = m.last_log_index.unwrap_or(0);
                let matched = |id: u64| {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id).cloned().flatten())
                        .map_or(0, |l| l.index)
                };
                let others: Vec<u64> = self.voters().into_iter().filter(|&v| v != me).collect();
                let lags: Vec<String> = others
                    .iter()
                    .map(|&v| match self.contacts.since(v) {
                        Some(since) => format!(
                            "master {v} is {} behind, heard from {} ms ago",
                            last.saturating_sub(matched(v)),
                            since.as_millis()
                        ),
                        None => format!("master {v} has not answered"),
                    })
                    .collect();
                seen = (last, lags.join(", "));
                let fresh = self.config.election_timeout_min;
                let best = others
                    .iter()
                    .copied()
                    .filter(|&v| matched(v) >= last)
                    .filter_map(|v| Some((v, self.contacts.since(v)?)))
                    .filter(|&(_, since)| since < fresh)
                    .min_by_key(|&(_, since)| since)
                    .map(|(v, _)| v);
                if let Some(target) = best {
                    return Ok((
                        target,
                        TransferRequest {
                            leader: me,
                            term: m.current_term,
                            last_log_index: last,
                        },
                    ));
                }
            }
            if tokio::time::timeout_at(deadline, watch.changed())
                .await
                .map_or(true, |changed| changed.is_err())
            {
                return Err(HandOverError::NoneCaughtUp {
                    leader: me,
                    waited,
                    last: seen.0,
                    lags: seen.1,
                });
            }
        }
    }

    /// Takes over from the leader that sent `request`, if it is this master's leader, in this
    /// master's term, and this master holds its whole log: stands for election at once, as a
    /// transfer. The answer's error says why not.
    pub async fn take_over(&self, request: &TransferRequest) -> Result<(), String> {
        let me = self.config.id;
        let (term, leader, last, state) = {
            let m = self.raft.metrics().borrow().clone();
            (
                m.current_term,
                m.current_leader,
                m.last_log_index.unwrap_or(0),
                m.state,
            )
        };
        if state != ServerState::Follower {
            return Err(format!(
                "master {me} is a {state:?}, not a follower: only a following voter takes over"
            ));
        }
        if term != request.term || leader != Some(request.leader) {
            let under =
                leader.map_or_else(|| "no leader".to_string(), |l| format!("leader master {l}"));
            return Err(format!(
                "master {me} is in term {term} under {under}, not in term {} under master {}: the request is stale or not from its leader; nothing was done",
                request.term, request.leader
            ));
        }
        if last < request.last_log_index {
            return Err(format!(
                "master {me} holds the log up to {last}, not {}: it is behind",
                request.last_log_index
            ));
        }
        tracing::info!(
            from = request.leader,
            "taking leadership over from master {}",
            request.leader
        );
        self.raft
            .trigger()
            .elect_for_transfer()
            .await
            .map_err(|e| format!("master {me} cannot stand for election: {e}"))
    }

    /// True when a voter other than this master exists: someone to hand leadership to.
    pub fn has_other_voter(&self) -> bool {
        self.voters().iter().any(|&v| v != self.config.id)
    }

    /// The voters of the membership in force (both halves during a change).
    fn voters(&self) -> Vec<u64> {
        let watch = self.raft.metrics();
        let m = watch.borrow();
        m.membership_config.membership().voter_ids().collect()
    }
}
