//! How many publish calls an invocation keeps in flight: additive increase while calls succeed,
//! multiplicative decrease when the service throttles (AIMD, as TCP congestion control), between 1
//! and `RELAY_MAX_IN_FLIGHT`.
//!
//! A call counts as throttled when its answer says so (a throttling code on the call or on an
//! entry) or when the SDK retried a throttled attempt while it was in flight ([`crate::retry`]
//! counts those). One throttle halves the limit once: calls that started before that decrease do
//! not halve it again (one decrease per window, as TCP does per round trip). Each success adds
//! `1 / limit`, so the limit grows by about one per window of successful calls. The relay keeps the
//! limit an invocation ended with for the next one, so a warm environment starts where it left off.
//!
//! Without `RELAY_MAX_IN_FLIGHT` the cap follows the function's memory ([`default_max_in_flight`]):
//! Lambda gives CPU in proportion to memory, and past a few dozen calls per vCPU the relay's own
//! CPU, not the network, bounds how fast a batch goes out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::retry;

/// The cap when `RELAY_MAX_IN_FLIGHT` is unset and the memory size is unknown, and the least the
/// memory-derived cap gives: enough to overlap network waits at any memory size.
pub const MIN_DEFAULT_MAX_IN_FLIGHT: usize = 16;
/// The most the memory-derived cap gives: far below Lambda's 1,024 file descriptors.
pub const MAX_DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Memory at which Lambda gives a function one full vCPU, in MiB.
const MIB_PER_VCPU: u64 = 1769;
/// Calls in flight one vCPU keeps going: a call waits about 15 ms on the network and costs the
/// relay about 0.2 ms of CPU (building, signing and parsing it; `bench/latency`), but calls finish
/// in bursts: measured, 30 per vCPU stay within 1.10x of the floor ⌈calls / in-flight⌉ × 15 ms,
/// and 40 and 50 per vCPU did not (1.13-1.18x on the two-core bench machine; README, Latency).
const CALLS_PER_VCPU: u64 = 30;

/// The in-flight cap for a function of `memory_mib` (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`) running
/// `concurrent_invocations` at once per environment (`AWS_LAMBDA_MAX_CONCURRENCY`, Lambda Managed
/// Instances), when `RELAY_MAX_IN_FLIGHT` does not set it: ⌈memory × 30 / 1769⌉ calls, shared by
/// the concurrent invocations, between 16 and 256 each.
///
/// ```
/// use s3_trace_relay::concurrency::default_max_in_flight;
/// assert_eq!(default_max_in_flight(None, None), 16);
/// assert_eq!(default_max_in_flight(Some(256), None), 16);
/// assert_eq!(default_max_in_flight(Some(1769), None), 30);
/// assert_eq!(default_max_in_flight(Some(10240), None), 174);
/// assert_eq!(default_max_in_flight(Some(10240), Some(4)), 44);
/// ```
pub fn default_max_in_flight(memory_mib: Option<u64>, concurrent_invocations: Option<u64>) -> usize {
    let Some(memory) = memory_mib else {
        return MIN_DEFAULT_MAX_IN_FLIGHT;
    };
    let calls = memory.saturating_mul(CALLS_PER_VCPU).div_ceil(MIB_PER_VCPU);
    let each = calls.div_ceil(concurrent_invocations.unwrap_or(1).max(1));
    usize::try_from(each)
        .unwrap_or(usize::MAX)
        .clamp(MIN_DEFAULT_MAX_IN_FLIGHT, MAX_DEFAULT_MAX_IN_FLIGHT)
}

/// What a finished call says about the service's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Answered without throttling.
    Succeeded,
    /// Throttled (its answer, or an SDK retry while it was in flight).
    Throttled,
    /// Failed otherwise, or not made: says nothing about capacity.
    Neutral,
}

/// The in-flight limit of one invocation.
#[derive(Debug)]
pub struct Limiter {
    state: Mutex<State>,
    freed: Notify,
    max: usize,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    /// Incremented at every decrease; a permit from an earlier window cannot decrease again.
    window: u64,
}

/// A call slot; give it back with [`Permit::finish`] (dropping it counts as [`Signal::Neutral`]).
#[derive(Debug)]
pub struct Permit<'a> {
    limiter: &'a Limiter,
    window: u64,
    throttles_at_start: u64,
    finished: bool,
}

impl Limiter {
    /// A limiter starting at `initial` calls (clamped to 1..=`max`).
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1);
        Limiter {
            state: Mutex::new(State {
                limit: initial.clamp(1, max) as f64,
                in_flight: 0,
                window: 0,
            }),
            freed: Notify::new(),
            max,
        }
    }

    /// The current limit, in whole calls.
    pub fn limit(&self) -> usize {
        whole(self.lock().limit)
    }

    /// Waits for a free call slot.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut state = self.lock();
                if state.in_flight < whole(state.limit) {
                    state.in_flight += 1;
                    return Permit {
                        limiter: self,
                        window: state.window,
                        throttles_at_start: retry::throttles_seen(),
                        finished: false,
                    };
                }
            }
            freed.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn release(&self, window: u64, signal: Signal) {
        {
            let mut state = self.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            match signal {
                Signal::Throttled if window == state.window => {
                    state.limit = (state.limit / 2.0).max(1.0);
                    state.window += 1;
                }
                Signal::Succeeded => {
                    state.limit = (state.limit + 1.0 / state.limit).min(self.max as f64);
                }
                Signal::Throttled | Signal::Neutral => {}
            }
        }
        self.freed.notify_waiters();
    }
}

impl Permit<'_> {
    /// Gives the slot back with what the call said; an SDK retry of a throttled attempt while it
    /// was in flight makes any answer a throttle.
    pub fn finish(mut self, signal: Signal) {
        self.finished = true;
        let signal = if retry::throttles_seen() > self.throttles_at_start {
            Signal::Throttled
        } else {
            signal
        };
        self.limiter.release(self.window, signal);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.limiter.release(self.window, Signal::Neutral);
        }
    }
}

/// The limit the last invocation of this process ended with: where the next one starts.
#[derive(Debug)]
pub struct Learned(AtomicUsize);

impl Learned {
    /// Starts at `initial`.
    pub fn new(initial: usize) -> Self {
        Learned(AtomicUsize::new(initial))
    }

    /// A limiter for one invocation, starting at the learned limit.
    pub fn limiter(&self, max: usize) -> Limiter {
        Limiter::new(self.0.load(Ordering::Relaxed), max)
    }

    /// Keeps what an invocation's limiter ended with.
    pub fn keep(&self, limiter: &Limiter) {
        self.0.store(limiter.limit(), Ordering::Relaxed);
    }
}

fn whole(limit: f64) -> usize {
    // `limit` stays within 1..=max (a usize), so the cast cannot truncate.
    limit.floor().max(1.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_throttle_halves_the_limit_once_per_window() {
        let limiter = Limiter::new(16, 16);
        let a = limiter.acquire().await;
        let b = limiter.acquire().await;
        a.finish(Signal::Throttled);
        assert_eq!(limiter.limit(), 8);
        b.finish(Signal::Throttled);
        assert_eq!(limiter.limit(), 8, "b started before the decrease: no second halving");
        limiter.acquire().await.finish(Signal::Throttled);
        assert_eq!(limiter.limit(), 4);
    }

    #[tokio::test]
    async fn successes_grow_the_limit_by_about_one_per_window_up_to_the_cap() {
        let limiter = Limiter::new(4, 6);
        for _ in 0..4 {
            limiter.acquire().await.finish(Signal::Succeeded);
        }
        assert_eq!(limiter.limit(), 4, "0.25 + 0.235 + … stays under 5 after 4 successes");
        for _ in 0..4 {
            limiter.acquire().await.finish(Signal::Succeeded);
        }
        assert_eq!(limiter.limit(), 5);
        for _ in 0..100 {
            limiter.acquire().await.finish(Signal::Succeeded);
        }
        assert_eq!(limiter.limit(), 6, "never above the cap");
    }

    #[tokio::test]
    async fn the_limit_never_falls_below_one() {
        let limiter = Limiter::new(2, 8);
        for _ in 0..5 {
            limiter.acquire().await.finish(Signal::Throttled);
        }
        assert_eq!(limiter.limit(), 1);
    }

    #[tokio::test]
    async fn a_full_limiter_makes_the_next_call_wait_for_a_free_slot() {
        let limiter = Limiter::new(1, 1);
        let first = limiter.acquire().await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), limiter.acquire()).await;
        assert!(waiting.is_err(), "no second slot while the first is held");
        drop(first);
        let second = tokio::time::timeout(std::time::Duration::from_secs(1), limiter.acquire()).await;
        assert!(second.is_ok(), "the freed slot is handed on");
    }

    #[tokio::test]
    async fn a_dropped_or_neutral_permit_changes_nothing() {
        let limiter = Limiter::new(3, 8);
        drop(limiter.acquire().await);
        limiter.acquire().await.finish(Signal::Neutral);
        assert_eq!(limiter.limit(), 3);
    }

    #[test]
    fn the_next_invocation_starts_at_the_learned_limit() {
        let learned = Learned::new(16);
        let limiter = learned.limiter(16);
        limiter.release(0, Signal::Throttled);
        learned.keep(&limiter);
        assert_eq!(learned.limiter(16).limit(), 8);
    }
}
