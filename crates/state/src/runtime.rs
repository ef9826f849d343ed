//! Where drover's masters and agents draw chance and wall-clock time from: the operating
//! system in production, a seed and a simulated clock in a simulation.
//!
//! A deterministic simulation runs every master and agent in one thread and must replay a
//! run from its seed. Three things would otherwise differ between two runs of one seed:
//! openraft's election timeouts (drawn from `AsyncRuntime::thread_rng`), the random UUIDs of
//! deployments, instances and the cluster id, and wall-clock timestamps. Each is drawn here.
//! Nothing is seeded unless [`seed`] is called on the thread, so production draws from the
//! operating system exactly as before.

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::async_runtime::{AsyncRuntime, TokioRuntime};
use openraft::{OptionalSend, TokioInstant};

thread_local! {
    /// This thread's seeded generator, when a simulation has seeded it.
    static SEEDED: RefCell<Option<SplitMix64>> = const { RefCell::new(None) };
    /// This thread's simulated wall clock (ms since the Unix epoch), when one is installed.
    static WALL_CLOCK: Cell<Option<fn() -> u64>> = const { Cell::new(None) };
}

/// Makes every draw on this thread (election timeouts, UUIDs) follow `seed` from now on.
pub fn seed(seed: u64) {
    SEEDED.with(|s| *s.borrow_mut() = Some(SplitMix64(seed)));
}

/// Returns this thread to the operating system's randomness.
pub fn unseed() {
    SEEDED.with(|s| *s.borrow_mut() = None);
}

/// Makes [`wall_clock_ms`] on this thread read `clock` (a simulation's clock), or the
/// system's clock again with `None`.
pub fn set_wall_clock(clock: Option<fn() -> u64>) {
    WALL_CLOCK.with(|c| c.set(clock));
}

/// Milliseconds since the Unix epoch: the simulated clock if one is installed on this
/// thread, else the system's.
pub fn wall_clock_ms() -> u64 {
    if let Some(clock) = WALL_CLOCK.with(Cell::get) {
        return clock();
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// 64 random bits: from the seed when this thread is seeded, else from the OS-seeded
/// thread generator.
pub fn next_u64() -> u64 {
    SEEDED
        .with(|s| s.borrow_mut().as_mut().map(SplitMix64::next))
        .unwrap_or_else(|| rand::RngCore::next_u64(&mut rand::thread_rng()))
}

/// Runs `work` on tokio's blocking pool, so that seconds of CPU (encoding a snapshot of a
/// large state) do not stall the runtime worker that also sends Raft heartbeats; on a
/// seeded thread (a simulation, which must not start real threads) it runs in place.
/// `None` if `work` panicked.
pub async fn off_worker<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    if SEEDED.with(|s| s.borrow().is_some()) {
        return Some(work());
    }
    tokio::task::spawn_blocking(work).await.ok()
}

/// A random (version 4) UUID, drawn as [`next_u64`] draws.
pub fn uuid_v4() -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&next_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&next_u64().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Sebastiano Vigna's SplitMix64: small, fast, and good enough for timeouts and ids.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// openraft's random numbers (election timeouts), drawn as [`next_u64`] draws.
#[derive(Debug, Clone, Copy, Default)]
pub struct RaftRng;

impl rand::RngCore for RaftRng {
    fn next_u32(&mut self) -> u32 {
        (next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// openraft's async runtime for drover: tokio's in every respect but its random numbers,
/// which come from [`RaftRng`] so that a seeded simulation elects the same way each run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DroverRuntime;

impl AsyncRuntime for DroverRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> =
        <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = RaftRng;
    type OneshotSender<T: OptionalSend> = <TokioRuntime as AsyncRuntime>::OneshotSender<T>;
    type OneshotReceiverError = <TokioRuntime as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> = <TokioRuntime as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        RaftRng
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        TokioRuntime::oneshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_thread_draws_the_same_numbers_again() {
        seed(7);
        let first: Vec<u64> = (0..4).map(|_| next_u64()).collect();
        let id = uuid_v4();
        seed(7);
        let again: Vec<u64> = (0..4).map(|_| next_u64()).collect();
        assert_eq!(first, again);
        assert_eq!(uuid_v4(), id);
        assert_eq!(id.get_version_num(), 4);
        unseed();
        assert_ne!(uuid_v4(), id, "unseeded, the ids are the OS's again");
    }

    #[test]
    fn an_installed_wall_clock_is_read_instead_of_the_systems() {
        set_wall_clock(Some(|| 42));
        assert_eq!(wall_clock_ms(), 42);
        set_wall_clock(None);
        assert!(wall_clock_ms() > 1_700_000_000_000);
    }
}
