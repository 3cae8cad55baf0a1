//! The simulator's time. The product's simulator runs on real time; a test that drives
//! time owns a manual clock instead, which moves only when the test advances it, so
//! throttling windows, `Retry-After`, token lifetimes, late effects and pending actions
//! are tested at their exact edges, whatever the machine's speed, without sleeping.
//!
//! A real clock can be advanced too (real time plus an offset), but a test that checks an
//! edge on it also depends on how little real time passed between its requests: a test
//! that asserts anything at an edge uses [`SimClock::manual`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

/// A clock shared by every part of one simulator; clones see the same time.
#[derive(Debug, Clone)]
pub struct SimClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `Some(start)`: real time since `start` counts; `None`: only advances count.
    real_since: Option<Instant>,
    /// The wall-clock time at the start, for the timestamps Graph puts in bodies.
    wall_start: SystemTime,
    /// Nanoseconds added by [`SimClock::advance`].
    offset_nanos: AtomicU64,
    /// Wakes [`SimClock::sleep`]ers when the clock is advanced.
    advanced: Notify,
}

impl SimClock {
    /// Real time plus whatever is advanced: the product's clock (`simulate`,
    /// `run --simulate`).
    pub fn new() -> SimClock {
        SimClock::with_base(Some(Instant::now()))
    }

    /// A clock that stands still until [`SimClock::advance`] moves it: for tests, where
    /// every moment the simulator sees is one the test chose.
    pub fn manual() -> SimClock {
        SimClock::with_base(None)
    }

    fn with_base(real_since: Option<Instant>) -> SimClock {
        SimClock {
            inner: Arc::new(Inner {
                real_since,
                wall_start: SystemTime::now(),
                offset_nanos: AtomicU64::new(0),
                advanced: Notify::new(),
            }),
        }
    }

    /// Moves time forward for everyone holding this clock, and wakes whoever sleeps on it.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.inner.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
        self.inner.advanced.notify_waiters();
    }

    /// Time since the clock was made, including what was advanced.
    pub fn now(&self) -> Duration {
        let real = self
            .inner
            .real_since
            .map(|s| s.elapsed())
            .unwrap_or_default();
        real + Duration::from_nanos(self.inner.offset_nanos.load(Ordering::SeqCst))
    }

    /// Returns once `by` has passed on this clock, counted from this call (not from the
    /// first poll): on a real clock after `by` of real time (`tokio::time`, so paused
    /// tokio time applies) or sooner if it is advanced past the end; on a manual clock
    /// only when it is advanced past the end.
    pub fn sleep(&self, by: Duration) -> impl Future<Output = ()> + Send + 'static {
        let until = self.now() + by;
        let clock = self.clone();
        async move { clock.sleep_until(until).await }
    }

    async fn sleep_until(&self, until: Duration) {
        loop {
            // Registered before the clock is read, so an advance in between is not missed.
            let advanced = self.inner.advanced.notified();
            tokio::pin!(advanced);
            advanced.as_mut().enable();
            let now = self.now();
            if now >= until {
                return;
            }
            match self.inner.real_since {
                Some(_) => tokio::select! {
                    // Tokio's timer, not `now()`, decides here: under paused tokio time
                    // the real part of `now()` does not move.
                    () = tokio::time::sleep(until - now) => return,
                    () = &mut advanced => {}
                },
                None => advanced.await,
            }
        }
    }

    /// The wall-clock time that `at` (a value of [`SimClock::now`]) stands for.
    pub fn wall_at(&self, at: Duration) -> SystemTime {
        self.inner.wall_start + at
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

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = SimClock::manual();
        assert_eq!(clock.now(), Duration::ZERO);
        clock.clone().advance(Duration::from_millis(19_500));
        assert_eq!(clock.now(), Duration::from_millis(19_500));
        assert_eq!(
            clock.wall(),
            clock.wall_at(Duration::ZERO) + Duration::from_millis(19_500)
        );
    }

    // Issue 18, point 1: the throttling edge test failed on a loaded machine because the
    // real time between its requests counted on the simulator's clock.
    #[test]
    fn regression_18_1_real_time_does_not_move_a_manual_clock() {
        let clock = SimClock::manual();
        clock.advance(Duration::from_millis(19_500));
        // Not a wait: real time passing, as it does between a slow machine's requests.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.now(), Duration::from_millis(19_500));
    }

    #[tokio::test]
    async fn a_sleep_on_a_manual_clock_ends_when_an_advance_reaches_its_end() {
        let clock = SimClock::manual();
        let sleeper = tokio::spawn(clock.sleep(Duration::from_secs(60)));
        // Short of the end: the sleeper is woken, finds it early, and sleeps on.
        clock.advance(Duration::from_secs(59));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_on_the_real_clock_follows_tokio_time() {
        // Paused tokio time and no sockets: the sleep ends when tokio's timer does.
        let clock = SimClock::new();
        let started = tokio::time::Instant::now();
        clock.sleep(Duration::from_secs(30)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }
}
