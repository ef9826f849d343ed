//! What one seed decides before the run starts: the cluster's layout and the fault
//! schedule. Everything random in a run is drawn from the seed, here or in the client.

use std::fmt;
use std::time::Duration;

/// A small seeded generator (SplitMix64), for the plan and the client's choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; `stream` separates the plan's draws from the client's.
    pub fn new(seed: u64, stream: u64) -> Self {
        Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F))
    }

    /// 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A duration in `lo..=hi` ms.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.between(lo, hi))
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The local region (the masters') and its zones, and the remote region's one zone: 2
/// regions, 4 zones.
pub const LOCAL_ZONES: [&str; 3] = ["east-a", "east-b", "east-c"];
/// The remote region's zone.
pub const REMOTE_ZONE: &str = "west-a";
/// The masters' region.
pub const LOCAL_REGION: &str = "east";
/// The remote region.
pub const REMOTE_REGION: &str = "west";

/// One agent of the layout.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// Its host name in the simulation (`a1`, `a2`, …).
    pub name: String,
    /// Region and zone.
    pub region: &'static str,
    /// Zone.
    pub zone: &'static str,
    /// When it first starts (`ZERO`: with the cluster; later: an agent joining).
    pub joins_at: Duration,
}

/// A fault, as scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Master `i` (index) crashes, and restarts with its log after `for`.
    CrashMaster { master: usize, down: Duration },
    /// The leader of the moment crashes, and restarts with its log after `down`.
    CrashLeader { down: Duration },
    /// Agent `i` crashes (its tasks die with it) and restarts after `down`.
    CrashAgent { agent: usize, down: Duration },
    /// Agent `i` crashes and never comes back.
    LoseAgent { agent: usize },
    /// The leader of the moment is cut from the other masters (a minority leader; the
    /// majority is without it); agents and the client still reach it.
    IsolateLeader { down: Duration },
    /// The leader of the moment is cut from every host.
    CutLeaderOff { down: Duration },
    /// Every agent of a zone is cut from every master.
    CutZone { zone: &'static str, down: Duration },
    /// One agent is cut from every master.
    CutAgent { agent: usize, down: Duration },
    /// Messages from master `from` to master `to` are dropped; the other way works.
    OneWay {
        from: usize,
        to: usize,
        down: Duration,
    },
    /// The link between masters `a` and `b` goes down and up every `period`, `times` times.
    Flap {
        a: usize,
        b: usize,
        period: Duration,
        times: u32,
    },
    /// Messages between agent `agent` and every master are held for `down`, then delivered.
    Delay { agent: usize, down: Duration },
    /// Every link's latency goes up to `max` for `down`.
    Latency { max: Duration, down: Duration },
    /// Split brain with flapping agent links: the leader of the moment is cut from the other
    /// masters; `after` later (a new leader is elected meanwhile) the agents of `zone` lose
    /// the deposed leader and move to the majority; `after` later again they lose the
    /// majority and regain the deposed leader, the only master they can talk to; all heals
    /// after `down`. With `task_ends`, one running task on each of the zone's agents dies
    /// halfway through their time with the new leader: the new leader records its end and
    /// stops listing it, the agent forgets it, and the deposed leader still lists it as
    /// running. An agent that obeyed a leader older than one it has seen would start it
    /// again (the term fence's bug, issue 11 bug (b)).
    SplitBrain {
        zone: &'static str,
        after: Duration,
        down: Duration,
        task_ends: bool,
    },
    /// Every agent is cut from every master for `down` (the masters still reach each other
    /// and the client): the leader sees every zone unreachable, assumes it is the one cut
    /// off, and must replace nothing (mass-eviction protection, `lifecycle.rs`).
    CutAllAgents { down: Duration },
    /// The leader of the moment crashes and its disk loses what it had not yet synced (a
    /// torn tail: the entries whose appends were not yet acknowledged; see
    /// `MemLogStore::tear`), and it restarts after `down`. A plan with one gives every
    /// master's disk a flush delay ([`SLOW_DISK`]), so that unsynced appends exist.
    TornCrash { down: Duration },
    /// A running task on agent `agent` dies (the first one, in id order).
    TaskFails { agent: usize },
    /// The leader of the moment is asked to hand leadership over (`DELETE /v2/leader`, what
    /// a SIGTERM of the leader does first): it stops writing, waits for a voter with its
    /// whole log, and tells it to stand as a transfer, which the voters grant without
    /// waiting out the leader's lease (`node/handover.rs`).
    HandOver,
    /// Slow commits: the leader of the moment's links to the other masters take `latency`
    /// each way for `down`, so every commit waits that long for its quorum while agents
    /// and clients reach the leader at once. This widens the window between a scheduler
    /// pass's copy of the state and the commit of its decision, in which agents' reports
    /// commit.
    SlowCommits { latency: Duration, down: Duration },
    /// Duplicated and reordered requests for `down`: `percent` of drover's internal
    /// connections (Raft, agents' registrations, heartbeats and reports) are sent again up
    /// to `max_delay` later (see `net::Replay`).
    Replay {
        percent: u64,
        max_delay: Duration,
        down: Duration,
    },
}

/// A fault at its time.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// Simulated time since the start.
    pub at: Duration,
    /// What happens.
    pub fault: Fault,
}

impl fmt::Display for Scheduled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>7.3}s {:?}", self.at.as_secs_f64(), self.fault)
    }
}

/// Everything a seed decides up front.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The seed.
    pub seed: u64,
    /// Masters (3 or 5).
    pub masters: usize,
    /// Agents, the ones joining late included.
    pub agents: Vec<AgentSpec>,
    /// Faults, in time order, all within [`FAULT_WINDOW`].
    pub faults: Vec<Scheduled>,
}

/// Faults start within this window after the cluster formed; every one has ended (or is
/// healed) by [`HEAL_AT`].
pub const FAULT_WINDOW: Duration = Duration::from_secs(20);
/// When every fault is healed: partitions repaired, crashed hosts restarted.
pub const HEAL_AT: Duration = Duration::from_secs(30);
/// How long a master's disk takes to sync an append in a plan with a [`Fault::TornCrash`]
/// (two ticks: an append is unsynced across at least one step of the simulation).
pub const SLOW_DISK: Duration = Duration::from_millis(10);
/// When faults may start: after the cluster formed and the agents registered.
pub const FIRST_FAULT: Duration = Duration::from_secs(5);

impl Plan {
    /// The plan of `seed`.
    pub fn new(seed: u64) -> Plan {
        let mut rng = Rng::new(seed, 1);
        let masters = if rng.chance(15) { 5 } else { 3 };
        let initial = rng.between(6, 10) as usize;
        let joining = rng.between(0, 2) as usize;
        let mut agents = Vec::new();
        for n in 0..initial + joining {
            // Every local zone gets agents; every fourth agent is remote.
            let (region, zone) = if n % 4 == 3 {
                (REMOTE_REGION, REMOTE_ZONE)
            } else {
                (LOCAL_REGION, LOCAL_ZONES[(n - n / 4) % LOCAL_ZONES.len()])
            };
            let joins_at = if n < initial {
                Duration::ZERO
            } else {
                FIRST_FAULT + rng.ms(0, FAULT_WINDOW.as_millis() as u64)
            };
            agents.push(AgentSpec {
                name: format!("a{}", n + 1),
                region,
                zone,
                joins_at,
            });
        }
        let mut faults = Vec::new();
        let count = rng.between(3, 10);
        // Agents that are lost for good: at most one, so that `hostname UNIQUE` still fits.
        let mut lost = None;
        for _ in 0..count {
            let at = FIRST_FAULT + rng.ms(0, FAULT_WINDOW.as_millis() as u64);
            let down = rng.ms(300, 8_000);
            let agent = rng.below(initial as u64) as usize;
            let fault = match rng.below(16) {
                0 => Fault::CrashMaster {
                    master: rng.below(masters as u64) as usize,
                    down,
                },
                1 | 2 => Fault::CrashLeader { down },
                3 => Fault::CrashAgent { agent, down },
                // Only a local agent is lost for good: the remote region may have one agent.
                4 if lost.is_none() && agent % 4 != 3 => {
                    lost = Some(agent);
                    Fault::LoseAgent { agent }
                }
                5 | 6 => Fault::IsolateLeader { down },
                7 => Fault::CutLeaderOff { down },
                8 => Fault::CutZone {
                    zone: LOCAL_ZONES[rng.below(LOCAL_ZONES.len() as u64) as usize],
                    down,
                },
                9 => Fault::CutAgent { agent, down },
                10 => {
                    let from = rng.below(masters as u64) as usize;
                    let to = (from + 1 + rng.below(masters as u64 - 1) as usize) % masters;
                    Fault::OneWay { from, to, down }
                }
                11 => {
                    let a = rng.below(masters as u64) as usize;
                    Fault::Flap {
                        a,
                        b: (a + 1) % masters,
                        period: rng.ms(200, 1_500),
                        times: rng.between(2, 6) as u32,
                    }
                }
                12 => Fault::Delay { agent, down },
                13 => Fault::Latency {
                    max: rng.ms(5, 80),
                    down,
                },
                14 | 15 => Fault::SplitBrain {
                    zone: LOCAL_ZONES[rng.below(LOCAL_ZONES.len() as u64) as usize],
                    after: rng.ms(2_000, 5_000),
                    down: down + Duration::from_secs(10),
                    task_ends: false,
                },
                _ => Fault::TaskFails { agent },
            };
            faults.push(Scheduled { at, fault });
        }
        // Task failures come on top of the faults: a few per run.
        for _ in 0..rng.between(1, 4) {
            faults.push(Scheduled {
                at: FIRST_FAULT + rng.ms(0, FAULT_WINDOW.as_millis() as u64),
                fault: Fault::TaskFails {
                    agent: rng.below(initial as u64) as usize,
                },
            });
        }
        // Drawn from a stream of their own, so that adding them left every seed's other
        // draws (and the seeds recorded in docs/testing.md) as they were.
        let mut slow = Rng::new(seed, 2);
        for _ in 0..slow.below(3) {
            faults.push(Scheduled {
                at: FIRST_FAULT + slow.ms(0, FAULT_WINDOW.as_millis() as u64),
                fault: Fault::SlowCommits {
                    // Below half the Raft heartbeat (100 ms), which is also openraft's
                    // time-out for an append: commits are slow, not impossible.
                    latency: slow.ms(5, 45),
                    down: slow.ms(1_000, 8_000),
                },
            });
        }
        let mut replays = Rng::new(seed, 4);
        if replays.chance(50) {
            faults.push(Scheduled {
                at: FIRST_FAULT + replays.ms(0, FAULT_WINDOW.as_millis() as u64),
                fault: Fault::Replay {
                    percent: replays.between(10, 50),
                    max_delay: replays.ms(100, 3_000),
                    down: replays.ms(2_000, 10_000),
                },
            });
        }
        // Every agent cut from the masters, in a third of the seeds: long enough (6–14 s)
        // for the agents to be found unreachable (5 s) and the zones judged cut off.
        let mut all = Rng::new(seed, 5);
        if all.chance(33) {
            faults.push(Scheduled {
                at: FIRST_FAULT + all.ms(0, FAULT_WINDOW.as_millis() as u64),
                fault: Fault::CutAllAgents {
                    down: all.ms(6_000, 14_000),
                },
            });
        }
        // A split brain aimed at the term fence in a third of the seeds: a task of the moved
        // zone ends under the new leader, which the deposed leader never hears of.
        let mut fence = Rng::new(seed, 7);
        if fence.chance(33) {
            let down = fence.ms(300, 8_000);
            faults.push(Scheduled {
                at: FIRST_FAULT + fence.ms(0, FAULT_WINDOW.as_millis() as u64 / 2),
                fault: Fault::SplitBrain {
                    zone: LOCAL_ZONES[fence.below(LOCAL_ZONES.len() as u64) as usize],
                    after: fence.ms(2_000, 4_000),
                    down: down + Duration::from_secs(10),
                    task_ends: true,
                },
            });
        }
        // A planned leadership move in a third of the seeds: the one fault that skips the
        // leader lease. Stream 8 because none of `REGRESSION_SEEDS` draws it there, so
        // they replay what they were kept for.
        let mut handover = Rng::new(seed, 8);
        if handover.chance(33) {
            faults.push(Scheduled {
                at: FIRST_FAULT + handover.ms(0, FAULT_WINDOW.as_millis() as u64),
                fault: Fault::HandOver,
            });
        }
        // A torn last write in a third of the seeds.
        let mut torn = Rng::new(seed, 6);
        if torn.chance(33) {
            faults.push(Scheduled {
                at: FIRST_FAULT + torn.ms(0, FAULT_WINDOW.as_millis() as u64),
                fault: Fault::TornCrash {
                    down: torn.ms(300, 4_000),
                },
            });
        }
        faults.sort_by_key(|s| s.at);
        Plan {
            seed,
            masters,
            agents,
            faults,
        }
    }

    /// The plan as people read it: layout and schedule, one fault a line.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "seed {}: {} masters, {} agents ({})\n",
            self.seed,
            self.masters,
            self.agents.len(),
            self.agents
                .iter()
                .map(|a| {
                    if a.joins_at.is_zero() {
                        format!("{}@{}", a.name, a.zone)
                    } else {
                        format!(
                            "{}@{} joins at {:.1}s",
                            a.name,
                            a.zone,
                            a.joins_at.as_secs_f64()
                        )
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        for s in &self.faults {
            out.push_str(&format!("  {s}\n"));
        }
        out
    }
}
