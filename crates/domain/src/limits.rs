//! The limits on what a definition may ask for, in one place.
//!
//! Everything the API accepts is written to the replicated log and then read by every
//! master's scheduler, forever. A value no agent could ever satisfy, or one large enough to
//! make a pass allocate without bound, would take down every master in turn. So each number
//! has a range here, checked at the API with Marathon's 422 body, and `docs/operations.md`
//! lists them. The ranges are generous: far beyond any real machine or app.

/// Instances one app may ask for.
pub const MAX_INSTANCES: i64 = 100_000;

/// CPU shares one instance may ask for.
pub const MAX_CPUS: f64 = 10_000.0;

/// Memory one instance may ask for, MiB (16 TiB).
pub const MAX_MEM_MIB: f64 = 16.0 * 1024.0 * 1024.0;

/// Disk one instance may ask for, MiB (1 PiB).
pub const MAX_DISK_MIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Port definitions one app may have.
pub const MAX_PORTS: usize = 100;

/// Any duration in a definition, seconds (7 days): backoff, launch delay, kill grace,
/// health-check grace, interval, timeout and delay, unreachable timeouts.
pub const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// The largest `backoffFactor`.
pub const MAX_BACKOFF_FACTOR: f64 = 1000.0;

/// The largest health check `maxConsecutiveFailures`.
pub const MAX_CONSECUTIVE_FAILURES: i64 = 10_000;

/// An app id's length in bytes, leading slash included. Agents name a sandbox directory
/// and a checkpoint file after each instance (`<id>.instance-<uuid>`), and a file name has
/// at most 255 bytes.
pub const MAX_APP_ID_BYTES: usize = 200;

/// An app definition's size as JSON, bytes (512 KiB). Each version is one log entry, and
/// the app keeps up to 50 versions: large data belongs in fetched artifacts, not here.
pub const MAX_APP_BYTES: usize = 512 * 1024;
