//! Launch backoff after failures, Marathon's: after instances failed, the app's next
//! launches wait `backoffSeconds × backoffFactor^n`, capped at `maxLaunchDelaySeconds`; a
//! run of the wanted count clears it.

use domain::AppDefinition;
use state::machine::Backoff;

/// What the backoff policy says about an app's launches in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Instances failed in this pass: set this backoff (delay, until) and launch nothing.
    Set {
        /// The new delay, ms.
        delay_ms: u64,
        /// No launch before this, ms since the epoch.
        until_ms: u64,
    },
    /// A backoff holds launches until then (ms since the epoch).
    Wait(u64),
    /// Launch; `clear` when the app's stored backoff should go (it runs its wanted count).
    Open {
        /// Clear the stored backoff.
        clear: bool,
    },
}

/// The gate for an app whose instances `failed` in this pass, with its stored backoff.
/// `rebalancing` launches (one extra instance to even a `GROUP_BY`) ignore a held backoff;
/// `all_running` says that the app runs its wanted count.
pub fn gate(
    app: &AppDefinition,
    failed: u32,
    stored: Option<Backoff>,
    now_ms: u64,
    rebalancing: bool,
    all_running: bool,
) -> Gate {
    if failed > 0 {
        let base = (app.backoff_seconds * 1000.0) as u64;
        let cap = (app.max_launch_delay_seconds * 1000.0) as u64;
        let delay_ms = match stored {
            Some(b) => ((b.delay_ms as f64 * app.backoff_factor) as u64).min(cap),
            None => base.min(cap),
        };
        return Gate::Set {
            delay_ms,
            until_ms: now_ms.saturating_add(delay_ms),
        };
    }
    match stored {
        Some(b) if now_ms < b.until_ms && !rebalancing => Gate::Wait(b.until_ms),
        Some(_) => Gate::Open { clear: all_running },
        None => Gate::Open { clear: false },
    }
}
