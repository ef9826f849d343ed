//! Unit tests of the scheduler, one module per policy, on the [`super::harness`]: a state
//! built by applying commands, observations set by hand, `reconcile` called, the
//! `Decision` asserted (commands, queue reasons, events, next wake-up). Deterministic ids,
//! no processes, no sleeps.

mod backoff;
mod driver;
mod eviction;
mod health;
mod placement;
mod readiness;
mod rebalance;
mod rolling;
mod steps;
mod unreachable;
