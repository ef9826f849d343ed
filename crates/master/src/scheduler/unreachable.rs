//! Instances on unreachable agents: Marathon's `unreachableStrategy` (replace after
//! `inactiveAfterSeconds`, forget after `expungeAfterSeconds`), under the zone rules of
//! [`super::eviction`], and marking them `unreachable`.

use domain::app::UnreachableStrategy;
use state::{Condition, Instance};

use super::eviction::{Assessment, EvictionMemory, ZoneState};
use super::reconcile::{Policy, Wake};

/// What becomes of one instance on an unreachable agent in this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Forget it (expunged): its agent kills it if it ever returns.
    pub forget: bool,
    /// Mark it `unreachable` (it is not yet).
    pub mark: bool,
    /// It still counts among its app's instances (no replacement yet).
    pub counts: bool,
}

/// Where an unreachable agent is, as the rules need it.
#[derive(Debug, Clone, Copy)]
pub struct Lost<'a> {
    /// Its id.
    pub agent: &'a domain::AgentId,
    /// Its zone (`""` without one).
    pub zone: &'a str,
    /// When it was marked unreachable, ms since the epoch.
    pub since_ms: u64,
}

/// Judges one instance (goal running) on the unreachable agent `lost` at `now_ms`. Paced
/// zones consume `memory`'s permits; `wake` learns when the answer changes by time alone.
#[expect(
    clippy::too_many_arguments,
    reason = "each input is one the rule reads; a struct would only rename them"
)]
pub fn judge(
    inst: &Instance,
    strategy: UnreachableStrategy,
    lost: Lost<'_>,
    zones: &Assessment,
    memory: &mut EvictionMemory,
    policy: &Policy,
    now_ms: u64,
    wake: &mut Wake,
) -> Verdict {
    let mark = inst.condition != Condition::Unreachable;
    let held = Verdict {
        forget: false,
        mark,
        counts: true,
    };
    // Agents are found silent (and come back) one after another: judge the zones only once
    // no agent has changed state for the settle delay (see `eviction`).
    let latest = zones
        .last_change_ms
        .unwrap_or(lost.since_ms)
        .max(lost.since_ms);
    let settled_at = latest.saturating_add(policy.settle_ms);
    if now_ms < settled_at {
        wake.at(settled_at);
        return held;
    }
    match zones.state(lost.zone) {
        ZoneState::CutOff => return held,
        ZoneState::PartlyUnreachable => {
            if let Err(next) = memory.permit(lost.agent, now_ms, policy.eviction_interval_ms) {
                wake.at(next);
                return held;
            }
        }
        ZoneState::Healthy | ZoneState::Outage => {}
    }
    let UnreachableStrategy::Enabled {
        inactive_after_seconds,
        expunge_after_seconds,
    } = strategy
    else {
        return held;
    };
    let after = |seconds: f64| {
        lost.since_ms
            .saturating_add((seconds.max(0.0) * 1000.0) as u64)
    };
    let (inactive_at, expunge_at) = (after(inactive_after_seconds), after(expunge_after_seconds));
    if now_ms >= expunge_at {
        return Verdict {
            forget: true,
            mark: false,
            counts: false,
        };
    }
    wake.at(expunge_at);
    if now_ms < inactive_at {
        wake.at(inactive_at);
    }
    Verdict {
        forget: false,
        mark,
        counts: now_ms < inactive_at,
    }
}
