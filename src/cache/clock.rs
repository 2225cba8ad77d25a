//! Monotonic time for the KEK cache: the OS's coarse monotonic clock, or a manual clock that
//! tests advance by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a KEK cache reads the time. Cheap to clone; clones of a [`Clock::Manual`] share time.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The OS monotonic clock. On Linux this is `CLOCK_MONOTONIC_COARSE`: a few nanoseconds to
    /// read, with the kernel tick (1–4 ms) as resolution — so an entry may live up to one tick
    /// past its TTL.
    #[default]
    System,
    /// Time that moves only when [`ManualClock::advance`] is called: for tests of expiry.
    /// A cache on a manual clock has no background sweeper; expired entries are dropped by the
    /// next insert or by `purge_expired`.
    Manual(ManualClock),
}

/// A hand-driven clock for [`Clock::Manual`]. Starts at zero; thread-safe.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves the clock forward by `by` (saturating at about 584 years).
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(nanos))
            });
    }
}

impl Clock {
    /// Nanoseconds on this clock's monotonic timeline.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self {
            Clock::System => system_now(),
            Clock::Manual(clock) => clock.0.load(Ordering::Acquire),
        }
    }

    pub(crate) fn is_system(&self) -> bool {
        matches!(self, Clock::System)
    }
}

#[cfg(target_os = "linux")]
#[inline]
fn system_now() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write; CLOCK_MONOTONIC_COARSE exists on every Linux
    // since 2.6.32 and cannot fail with a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

#[cfg(not(target_os = "linux"))]
fn system_now() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let manual = ManualClock::new();
        let clock = Clock::Manual(manual.clone());
        assert_eq!(clock.now(), 0);
        manual.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), 1_500_000_000);
        manual.advance(Duration::MAX);
        assert_eq!(clock.now(), u64::MAX);
    }

    #[test]
    fn system_clock_never_goes_back() {
        let clock = Clock::System;
        let first = clock.now();
        assert!(first > 0);
        assert!(clock.now() >= first);
    }
}
