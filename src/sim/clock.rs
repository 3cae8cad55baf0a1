//! The simulator's time: real time plus an offset that tests move forward, so throttling
//! windows, token lifetimes and pending actions can be tested at their edges in
//! milliseconds instead of by sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// A clock shared by every part of one simulator; clones see the same time.
#[derive(Debug, Clone)]
pub struct SimClock {
    /// When the clock was made: `now()` counts from here.
    start: Instant,
    /// The wall-clock time at `start`, for the timestamps Graph puts in bodies.
    wall_start: SystemTime,
    /// Nanoseconds added by [`SimClock::advance`].
    offset_nanos: Arc<AtomicU64>,
}

impl SimClock {
    pub fn new() -> SimClock {
        SimClock {
            start: Instant::now(),
            wall_start: SystemTime::now(),
            offset_nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Moves time forward for everyone holding this clock.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Time since the clock was made, including what was advanced.
    pub fn now(&self) -> Duration {
        self.start.elapsed() + Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst))
    }

    /// The wall-clock time that `at` (a value of [`SimClock::now`]) stands for.
    pub fn wall_at(&self, at: Duration) -> SystemTime {
        self.wall_start + at
    }

    pub fn wall(&self) -> SystemTime {
        self.wall_at(self.now())
    }
}

impl Default for SimClock {
    fn default() -> Self {
        SimClock::new()
    }
}

/// Graph's timestamp format: RFC 3339 in UTC with seconds (`2025-01-14T10:00:00Z`).
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = SimClock::new();
        let other = clock.clone();
        let before = other.now();
        clock.advance(Duration::from_secs(20));
        assert!(other.now() >= before + Duration::from_secs(20));
        assert!(other.wall() >= clock.wall_at(before) + Duration::from_secs(20));
    }
}
