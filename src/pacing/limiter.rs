//! Pacing: never more requests in any window than Graph allows, at the fastest pace it
//! allows.
//!
//! Intune's limits (docs/graph.md, "Throttling"): per app per tenant, 200 writes and 2000
//! requests of any kind per 20 seconds. A [`WindowLimiter`] keeps the send times of the
//! last `limit` requests and lets a new one go only when the oldest of them is a full
//! window old, so no window of our *send* times ever holds more than `limit`. Graph counts
//! *arrival* times, which differ by network jitter, so the window carries a margin. On
//! top, a minimum interval (`--write-rate`, `--read-rate`) spreads requests evenly instead
//! of sending 200 at once and then idling.

use std::collections::VecDeque;
use std::time::Duration;

use std::sync::Mutex;
use tokio::time::Instant;

/// The documented per-app limits, and the margins this tool keeps below them.
pub const WRITE_LIMIT: usize = 200;
pub const ANY_LIMIT: usize = 2000;
pub const WINDOW: Duration = Duration::from_secs(20);
/// Microsoft Entra's directory limits for an app in a tenant (docs/graph.md,
/// "Throttling"; <https://learn.microsoft.com/graph/throttling-limits>, identity and access):
/// 3,000 writes per 150 s, and 3,500 resource units per 10 s in the smallest tenants
/// (every request costs at least one). Users' actions (`revokeSignInSessions`) and reads
/// go through this budget, not Intune's: 200 writes in any 10 s window never make more
/// than 3,000 in 150 s.
pub const DIRECTORY_WRITE_LIMIT: usize = 200;
pub const DIRECTORY_ANY_LIMIT: usize = 3500;
pub const DIRECTORY_WINDOW: Duration = Duration::from_secs(10);
/// 200 per 10.25 s is 19.5/s: the window binds, the rate spreads the sends.
pub const DIRECTORY_WRITE_RATE: f64 = 19.5;

/// A limit no window reaches (`--unthrottled`): its limiter keeps no send times, so a
/// run against a simulator with limits off holds no memory per request.
pub const UNLIMITED: usize = usize::MAX / 2;
/// Added to the window: a request sent 20.0 s after another may arrive sooner than it
/// (network jitter). A POST's send time is taken when it leaves, after the ledger's
/// sync ([`WindowLimiter::restamp`]), so the margin covers the network alone.
pub const WINDOW_MARGIN: Duration = Duration::from_millis(250);
/// Default pace: 200 writes per 20.25 s is 9.88/s, so the window binds, not this.
pub const DEFAULT_WRITE_RATE: f64 = 9.9;
/// Reads go at the any-request budget's pace (2,000 per 20 s): the reads before a run's
/// question (a user's or group's devices) take R / 100 s. Beside the writes, their share
/// of the window (1,800 per 20.5 s, 87.8/s) binds (issue 19).
pub const DEFAULT_READ_RATE: f64 = 100.0;

/// The reads' share of the any-request limit: what is left once the writes' own limit
/// is set aside, so that reads (lookups, expansions, follow reads) never take the slot
/// a POST needs in the any-request window. A POST counts against both limits; a read
/// against this and the any-request one.
pub fn read_share(any_limit: usize, write_limit: usize) -> usize {
    match any_limit.checked_sub(write_limit) {
        Some(rest) if rest >= write_limit => rest,
        // Limits set by hand that leave no room (or no limits at all): reads may use
        // the whole any-request limit, as before.
        _ => any_limit,
    }
}

/// A sliding-window limit plus an even pace.
pub struct WindowLimiter {
    limit: usize,
    window: Duration,
    interval: Duration,
    state: Mutex<State>,
}

struct State {
    /// Send times of the most recent requests, at most `limit` of them.
    sent: VecDeque<Instant>,
    /// The earliest moment the next request may go, by the pace.
    next_slot: Option<Instant>,
}

impl WindowLimiter {
    /// `limit` requests per `window`, and at most `rate` per second (0 or less: no pace).
    pub fn new(limit: usize, window: Duration, rate: f64) -> WindowLimiter {
        let interval = if rate > 0.0 && rate.is_finite() {
            Duration::from_secs_f64(1.0 / rate)
        } else {
            Duration::ZERO
        };
        WindowLimiter {
            limit: limit.max(1),
            window,
            interval,
            state: Mutex::new(State {
                sent: VecDeque::new(),
                next_slot: None,
            }),
        }
    }

    pub async fn acquire(&self) -> Instant {
        acquire(&[self]).await
    }

    /// When the next request may be sent, given what was sent before `now`.
    /// Counts requests sent at `times` (oldest first, all in the past) as if this
    /// limiter had let them through: another process's sends, read from its record.
    pub fn prime(&self, times: &[Instant]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.limit >= UNLIMITED {
            return;
        }
        let mut all: Vec<Instant> = state
            .sent
            .iter()
            .copied()
            .chain(times.iter().copied())
            .collect();
        all.sort();
        let keep = all.len().saturating_sub(self.limit);
        state.sent = all.into_iter().skip(keep).collect();
        if let Some(last) = state.sent.back().copied() {
            let next = last + self.interval;
            state.next_slot = Some(state.next_slot.map_or(next, |n| n.max(next)));
        }
    }

    /// The request that took its slot at `was` leaves only now (after the ledger's
    /// sync): its send time becomes `now`, so the window counts from when it really
    /// left, not from when it was let through.
    pub fn restamp(&self, was: Instant, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now <= was {
            return;
        }
        if let Some(at) = state.sent.iter().rposition(|t| *t == was) {
            state.sent.remove(at);
            let to = state.sent.partition_point(|t| *t <= now);
            state.sent.insert(to, now);
        }
    }

    fn free_at(&self, state: &State, now: Instant) -> Instant {
        let by_window = if state.sent.len() >= self.limit {
            state.sent[state.sent.len() - self.limit] + self.window
        } else {
            now
        };
        by_window.max(state.next_slot.unwrap_or(now))
    }

    fn record(&self, state: &mut State, now: Instant) {
        if self.limit < UNLIMITED {
            state.sent.push_back(now);
            if state.sent.len() > self.limit {
                state.sent.pop_front();
            }
        }
        // From the slot this request was due at, when it is at most one interval late
        // (the timer wakes up to a millisecond after it was asked to): the pace keeps
        // its rate instead of losing a rounding per request, and a request that waited
        // longer does not earn a burst.
        let base = match state.next_slot {
            Some(due) if now.saturating_duration_since(due) < self.interval => due,
            _ => now,
        };
        state.next_slot = Some(base + self.interval);
    }
}

/// Takes a slot in every limiter at the same instant (a POST counts against both the
/// write limit and the any-request limit), waiting until all of them have one. The
/// check and the record happen under all the locks, so no limiter ever records a send
/// at a time other than the real one. Callers pass limiters in one fixed order
/// (specific first, then the any-request limiter), so the locks cannot deadlock.
pub async fn acquire(limiters: &[&WindowLimiter]) -> Instant {
    loop {
        let wait_until = {
            let now = Instant::now();
            let mut guards: Vec<_> = limiters
                .iter()
                .map(|l| l.state.lock().unwrap_or_else(|e| e.into_inner()))
                .collect();
            let free = limiters
                .iter()
                .zip(guards.iter())
                .map(|(l, g)| l.free_at(g, now))
                .max()
                .unwrap_or(now);
            if free <= now {
                for (l, g) in limiters.iter().zip(guards.iter_mut()) {
                    l.record(g, now);
                }
                return now;
            }
            free
        };
        tokio::time::sleep_until(wait_until).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_window_ever_holds_more_than_the_limit() {
        let limiter = WindowLimiter::new(5, Duration::from_secs(2), 0.0);
        let start = Instant::now();
        let mut times = vec![];
        for _ in 0..23 {
            limiter.acquire().await;
            times.push(Instant::now() - start);
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .filter(|u| **u < *t + Duration::from_secs(2))
                .count();
            assert!(in_window <= 5, "window starting at {t:?} holds {in_window}");
        }
        // And it is as fast as allowed: 23 requests, 5 per 2 s, take 8 s.
        assert_eq!(*times.last().unwrap(), Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn the_pace_spreads_requests_evenly() {
        let limiter = WindowLimiter::new(100, Duration::from_secs(20), 10.0);
        let start = Instant::now();
        for _ in 0..11 {
            limiter.acquire().await;
        }
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_pace_keeps_its_rate_when_the_timer_rounds_up() {
        // 1/90 s is 11.1 ms; a timer that wakes at whole milliseconds would make each
        // interval 12 ms (83/s) if the pace counted from the wake-up.
        let limiter = WindowLimiter::new(100_000, Duration::from_secs(20), 90.0);
        let start = Instant::now();
        for _ in 0..901 {
            limiter.acquire().await;
        }
        let took = Instant::now() - start;
        assert!(
            took <= Duration::from_millis(10_010),
            "900 intervals took {took:?}"
        );
        assert!(
            took >= Duration::from_secs(10),
            "faster than the pace: {took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_leaves_late_counts_from_when_it_left() {
        let limiter = WindowLimiter::new(2, Duration::from_secs(10), 0.0);
        let start = Instant::now();
        let first = limiter.acquire().await;
        // The first request leaves 3 s after its slot (a slow disk sync before it).
        tokio::time::sleep(Duration::from_secs(3)).await;
        limiter.restamp(first, Instant::now());
        limiter.acquire().await;
        // The third waits for the window of the first's real departure: 13 s.
        limiter.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(13));
    }

    #[tokio::test(start_paused = true)]
    async fn a_post_counts_against_both_limits_at_the_same_instant() {
        let writes = WindowLimiter::new(2, Duration::from_secs(10), 0.0);
        let any = WindowLimiter::new(3, Duration::from_secs(10), 0.0);
        let start = Instant::now();
        acquire(&[&writes, &any]).await;
        acquire(&[&writes, &any]).await;
        any.acquire().await; // a read: the any-limit is now full
        acquire(&[&writes, &any]).await; // waits for both windows: 10 s
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
    }

    #[test]
    fn reads_leave_the_writes_their_share_of_the_any_request_limit() {
        assert_eq!(read_share(ANY_LIMIT, WRITE_LIMIT), 1800);
        // Unlimited settings keep reads unlimited.
        assert_eq!(read_share(UNLIMITED, UNLIMITED), UNLIMITED);
        assert_eq!(read_share(300, 200), 300);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_in_a_burst_never_delay_a_post_in_the_any_request_window() {
        // Reads as fast as the windows let them go (no pace: a burst) for a minute, and
        // POSTs just below the write limit (one every 104 ms): every POST finds a slot
        // in both windows when it is due.
        let window = WINDOW + WINDOW_MARGIN;
        let writes = std::sync::Arc::new(WindowLimiter::new(WRITE_LIMIT, window, 10.0));
        let reads = std::sync::Arc::new(WindowLimiter::new(
            read_share(ANY_LIMIT, WRITE_LIMIT),
            window,
            0.0,
        ));
        let any = std::sync::Arc::new(WindowLimiter::new(ANY_LIMIT, window, 0.0));
        let start = Instant::now();
        let (r2, a2) = (reads.clone(), any.clone());
        let reader = tokio::spawn(async move {
            while Instant::now() - start < Duration::from_secs(60) {
                acquire(&[&r2, &a2]).await;
            }
        });
        let mut late = Duration::ZERO;
        for i in 0..590u32 {
            let due = start + Duration::from_millis(104) * i;
            tokio::time::sleep_until(due).await;
            acquire(&[&writes, &any]).await;
            late = late.max(Instant::now() - due);
        }
        reader.abort();
        assert_eq!(late, Duration::ZERO, "a POST waited for the reads");
    }

    #[tokio::test(start_paused = true)]
    async fn defaults_sustain_more_than_9_5_writes_per_second_within_200_per_20s() {
        let limiter = WindowLimiter::new(WRITE_LIMIT, WINDOW + WINDOW_MARGIN, DEFAULT_WRITE_RATE);
        let start = Instant::now();
        let mut times = vec![];
        for _ in 0..2000 {
            limiter.acquire().await;
            times.push(Instant::now() - start);
        }
        let elapsed = times.last().unwrap().as_secs_f64();
        assert!(2000.0 / elapsed >= 9.5, "{} writes/s", 2000.0 / elapsed);
        let mut j = 0;
        for i in 0..times.len() {
            while times[j] + WINDOW <= times[i] {
                j += 1;
            }
            assert!(i - j < WRITE_LIMIT, "{} writes within 20 s", i - j + 1);
        }
    }
}
