//! Agents' status reports, committed together: many agents' reports in one log entry.
//!
//! Every agent reports its instances' conditions as they change. Deploying 100,000
//! instances over 1,000 agents sent one report per agent per scheduler pass, each its own
//! Raft entry: about one entry per instance, and the leader spent a core replicating,
//! applying and waking up for them (the scale benchmark, issue 13). Reports that arrive
//! while a commit is in flight wait for it and then go out as one [`Command::Batch`] — group
//! commit, as databases do with their logs. A lone report still costs one entry and no wait.
//!
//! Whoever holds the turn commits everything queued (up to [`MAX_REPORTS_PER_ENTRY`]) and
//! hands each sender its own answer; a sender whose report someone else committed returns as
//! soon as it gets the turn. Nothing runs in the background: every queued report's sender is
//! waiting for the turn, so every report is committed by one of them.

use std::future::Future;
use std::sync::Mutex;

use domain::AgentId;
use state::{Command, InstanceReport, Response};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::node::RaftNode;

/// Where the reports' entries are committed: the Raft node, or a test's recorder.
pub trait Committer: Sync {
    /// Commits one entry and answers what applying it gave.
    fn commit_entry(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<Response, ApiError>> + Send;
}

impl Committer for RaftNode {
    fn commit_entry(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<Response, ApiError>> + Send {
        // Reports are idempotent and their senders retry, so an ambiguous answer costs
        // nothing: no leadership round before the commit (`RaftNode::write` has one).
        self.commit(command)
    }
}

/// At most this many agents' reports go into one log entry (a few hundred bytes each: far
/// below the entry size limit).
pub const MAX_REPORTS_PER_ENTRY: usize = 512;

/// One agent's report waiting for its commit.
struct Queued {
    agent_id: AgentId,
    reports: Vec<InstanceReport>,
    answer: oneshot::Sender<Result<Response, ApiError>>,
}

/// The agents' reports queued for the next commit, and the turn to commit them.
#[derive(Default)]
pub struct ReportCommits {
    queued: Mutex<Vec<Queued>>,
    turn: tokio::sync::Mutex<()>,
}

impl ReportCommits {
    /// Commits one agent's reports, with whatever other agents reported meanwhile; answers
    /// what the state machine answered for this agent's part (`Response::Reported`).
    pub async fn commit(
        &self,
        node: &impl Committer,
        agent_id: AgentId,
        reports: Vec<InstanceReport>,
    ) -> Result<Response, ApiError> {
        let (answer, mut answered) = oneshot::channel();
        self.lock().push(Queued {
            agent_id,
            reports,
            answer,
        });
        let _turn = self.turn.lock().await;
        loop {
            match answered.try_recv() {
                Ok(done) => return done,
                Err(oneshot::error::TryRecvError::Closed) => {
                    return Err(ApiError::unavailable(
                        "The commit carrying this report was interrupted; it may have been applied. Report again.",
                    ));
                }
                // Still queued: commit the oldest reports, this one among them sooner or later.
                Err(oneshot::error::TryRecvError::Empty) => self.commit_next(node).await,
            }
        }
    }

    /// Commits the oldest queued reports in one entry and answers each sender.
    async fn commit_next(&self, node: &impl Committer) {
        let batch: Vec<Queued> = {
            let mut queued = self.lock();
            let take = queued.len().min(MAX_REPORTS_PER_ENTRY);
            queued.drain(..take).collect()
        };
        let (mut commands, answers): (Vec<Command>, Vec<_>) = batch
            .into_iter()
            .map(|q| {
                let command = Command::ReportInstances {
                    agent_id: q.agent_id,
                    reports: q.reports,
                };
                (command, q.answer)
            })
            .unzip();
        let command = match commands.len() {
            0 => return,
            1 => commands.remove(0),
            _ => Command::Batch { commands },
        };
        let responses: Vec<Result<Response, ApiError>> = match node.commit_entry(command).await {
            Ok(Response::Batch { responses }) if answers.len() > 1 => {
                responses.into_iter().map(Ok).collect()
            }
            Ok(single) => vec![Ok(single)],
            Err(e) => answers.iter().map(|_| Err(e.clone())).collect(),
        };
        // A sender missing from `responses` (the machine answered fewer) sees its channel
        // closed and is told to report again; one that gave up needs no answer.
        for (answer, response) in answers.into_iter().zip(responses) {
            let _ = answer.send(response);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        self.queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use state::{Condition, InstanceId};
    use tokio::sync::Semaphore;

    use super::*;

    /// Records the entries it is given; holds each commit until the test lets one through.
    struct Recorder {
        entries: Mutex<Vec<Command>>,
        gate: Semaphore,
        /// Commits begun (some may wait at the gate).
        begun: std::sync::atomic::AtomicUsize,
    }

    impl Committer for Recorder {
        async fn commit_entry(&self, command: Command) -> Result<Response, ApiError> {
            self.begun.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let permit = self.gate.acquire().await;
            permit.expect("the gate stays open").forget();
            let answer = |c: &Command| match c {
                Command::ReportInstances { reports, .. } => Response::Reported {
                    changed: reports
                        .iter()
                        .map(|r| (r.instance_id.clone(), r.condition))
                        .collect(),
                },
                _ => Response::Ok,
            };
            let response = match &command {
                Command::Batch { commands } => Response::Batch {
                    responses: commands.iter().map(answer).collect(),
                },
                single => answer(single),
            };
            self.entries.lock().unwrap().push(command);
            Ok(response)
        }
    }

    fn report(instance: &str) -> Vec<InstanceReport> {
        vec![InstanceReport {
            instance_id: InstanceId(instance.to_string()),
            condition: Condition::Running,
            at_ms: 1,
        }]
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reports_sent_while_a_commit_is_in_flight_share_the_next_entry_and_each_gets_its_own_answer()
     {
        let commits = Arc::new(ReportCommits::default());
        let recorder = Arc::new(Recorder {
            entries: Mutex::default(),
            gate: Semaphore::new(0),
            begun: Default::default(),
        });
        let send = |agent: &str| {
            let (commits, recorder, agent) = (commits.clone(), recorder.clone(), agent.to_string());
            tokio::spawn(async move {
                let instance = format!("{agent}-i");
                commits
                    .commit(recorder.as_ref(), AgentId(agent), report(&instance))
                    .await
            })
        };
        let first = send("a1");
        // a1 takes the turn and its commit waits at the gate; then three more arrive.
        while recorder.begun.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = ["a2", "a3", "a4"].into_iter().map(send).collect();
        while commits.lock().len() < 3 {
            tokio::task::yield_now().await;
        }
        recorder.gate.add_permits(2);
        let mut answers = vec![first.await.unwrap().unwrap()];
        for r in rest {
            answers.push(r.await.unwrap().unwrap());
        }
        let entries = recorder.entries.lock().unwrap().clone();
        assert_eq!(
            entries.len(),
            2,
            "one entry for a1, one for the three that waited: {entries:?}"
        );
        match &entries[1] {
            Command::Batch { commands } => assert_eq!(commands.len(), 3, "{commands:?}"),
            other => panic!("the second entry should batch the three reports: {other:?}"),
        }
        for (agent, answer) in ["a1", "a2", "a3", "a4"].into_iter().zip(answers) {
            let Response::Reported { changed } = answer else {
                panic!("{agent} got {answer:?}");
            };
            assert_eq!(
                changed,
                vec![(InstanceId(format!("{agent}-i")), Condition::Running)]
            );
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lone_report_is_committed_at_once_as_its_own_entry() {
        let commits = ReportCommits::default();
        let recorder = Recorder {
            entries: Mutex::default(),
            gate: Semaphore::new(1),
            begun: Default::default(),
        };
        let answer = commits
            .commit(&recorder, AgentId("a1".into()), report("i1"))
            .await
            .unwrap();
        assert!(matches!(answer, Response::Reported { .. }), "{answer:?}");
        let entries = recorder.entries.lock().unwrap();
        assert!(
            matches!(entries.as_slice(), [Command::ReportInstances { .. }]),
            "{entries:?}"
        );
    }
}
