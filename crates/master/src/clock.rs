//! Wall-clock time: the [`Clock`] the master reads it from (the system's, or a test's
//! [`ManualClock`]), and Marathon's way of writing it, `2026-11-21T19:55:01.123Z`.
//!
//! The master reads the time through [`crate::RaftNode::clock`] (its event bus through the
//! same clock), so a test or a simulation decides what "now" is.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the master reads wall-clock time from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch, now.
    fn now_ms(&self) -> u64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// Says whether a log line that would repeat many times a second (at every heartbeat, every
/// retry) is due: at most once per interval of the master's clock, the first time at once.
#[derive(Debug)]
pub struct Rarely {
    interval_ms: u64,
    /// When it was last due, in the clock's ms; `u64::MAX` before the first time.
    last: AtomicU64,
}

impl Rarely {
    /// Due at most once per `interval`.
    pub const fn every(interval: Duration) -> Self {
        Rarely {
            interval_ms: interval.as_millis() as u64,
            last: AtomicU64::new(u64::MAX),
        }
    }

    /// True, and noted, when the interval has passed since it last was (at `now_ms`).
    pub fn due(&self, now_ms: u64) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        (last == u64::MAX || now_ms.saturating_sub(last) >= self.interval_ms)
            && self
                .last
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// A clock that moves only when told to (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `ms` since the Unix epoch.
    pub fn at(ms: u64) -> Self {
        ManualClock {
            ms: AtomicU64::new(ms),
        }
    }

    /// Sets the time to `ms` since the Unix epoch (it may go back, as a real clock can).
    pub fn set(&self, ms: u64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        // fetch_update with a closure that always succeeds: the Err arm cannot happen.
        let _ = self
            .ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ms| {
                Some(ms.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// Milliseconds since the Unix epoch, now, by the system's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Formats ms since the epoch as ISO-8601 UTC with milliseconds.
pub fn iso(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    )
}

/// Parses what [`iso`] writes back into ms since the epoch.
pub fn parse_iso(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[10] != b'T' || b[23] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let days = days_from_civil(n(0..4)? as i64, n(5..7)?, n(8..10)?);
    let secs = days as u64 * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?;
    Some(secs * 1000 + n(20..23)?)
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rare_line_is_due_at_once_then_once_per_interval() {
        let rarely = Rarely::every(Duration::from_secs(10));
        assert!(
            rarely.due(5),
            "the first time is due, however early the clock"
        );
        assert!(!rarely.due(5));
        assert!(!rarely.due(10_004));
        assert!(rarely.due(10_005));
        assert!(!rarely.due(19_000));
    }

    use super::*;

    #[test]
    fn formats_and_parses_marathon_versions() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_795_290_901_123), "2026-11-21T19:55:01.123Z");
        for ms in [0, 951_782_400_000, 1_795_290_901_123, 4_102_444_800_999] {
            assert_eq!(parse_iso(&iso(ms)), Some(ms));
        }
        assert_eq!(parse_iso("yesterday"), None);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.now_ms(), 1_250);
        clock.set(500);
        assert_eq!(clock.now_ms(), 500);
        clock.set(u64::MAX - 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now_ms(), u64::MAX);
    }
}
