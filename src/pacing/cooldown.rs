//! The shared pause: one 429 stops every worker until its `Retry-After` has passed.
//!
//! The Graph SDKs retry each request on its own, so while one request waits out a 429
//! the other workers keep sending and collect more 429s (every one of which counts
//! against the limit). Here a 429 moves one shared deadline; every worker waits for it
//! before each request.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

pub struct Cooldown {
    state: Mutex<CooldownState>,
    backoff: Backoff,
}

impl Default for Cooldown {
    fn default() -> Self {
        Cooldown::new(Backoff::default())
    }
}

/// Base and cap of the exponential backoff used when Graph gives no `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: BACKOFF_BASE,
            cap: BACKOFF_CAP,
        }
    }
}

impl Backoff {
    /// Exponential backoff with full jitter (a uniform draw between zero and
    /// `min(cap, base * 2^attempt)`), as AWS's architecture blog recommends: it spreads
    /// retries so that workers paused together do not return together.
    pub fn full_jitter(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        Duration::from_secs_f64(rng.random_range(0.0..=ceiling.as_secs_f64()))
    }

    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(attempt.min(16)))
            .min(self.cap)
    }
}

#[derive(Default)]
struct CooldownState {
    until: Option<Instant>,
    /// 429s in a row that came without `Retry-After`: drives the backoff exponent.
    blind_streak: u32,
}

/// Default base and cap of the backoff used when a 429 or 503 has no `Retry-After`.
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);

impl Cooldown {
    pub fn new(backoff: Backoff) -> Cooldown {
        Cooldown {
            state: Mutex::new(CooldownState::default()),
            backoff,
        }
    }

    /// Pauses everyone for `retry_after`, or for a backoff when Graph gave no header.
    /// Returns the pause chosen. A pause never shortens one already in force.
    pub fn throttled(&self, retry_after: Option<Duration>) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let pause = match retry_after {
            Some(d) => {
                state.blind_streak = 0;
                d
            }
            None => {
                state.blind_streak = state.blind_streak.saturating_add(1);
                self.backoff
                    .full_jitter(state.blind_streak - 1, &mut rand::rng())
            }
        };
        let until = Instant::now() + pause;
        if state.until.is_none_or(|u| u < until) {
            state.until = Some(until);
        }
        pause
    }

    /// A request went through: the no-header backoff starts again from its base.
    /// Every waiter waits `left` more from now (a pause recorded by an earlier
    /// process): no Retry-After of its own, so the backoff streak is untouched.
    pub fn hold(&self, left: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let until = Instant::now() + left;
        if state.until.is_none_or(|u| u < until) {
            state.until = Some(until);
        }
    }

    pub fn succeeded(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.blind_streak = 0;
    }

    /// Waits until no pause is in force. Loops because a pause may be extended while
    /// waiting.
    pub async fn wait(&self) {
        loop {
            let until = {
                let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.until
            };
            match until {
                Some(u) if u > Instant::now() => tokio::time::sleep_until(u).await,
                _ => return,
            }
        }
    }

    /// The end of the pause in force, if any.
    pub fn until(&self) -> Option<Instant> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.until.filter(|u| *u > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn backoff_stays_within_zero_and_the_capped_ceiling(attempt in 0u32..100, seed in any::<u64>()) {
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let backoff = Backoff::default();
            let d = backoff.full_jitter(attempt, &mut rng);
            prop_assert!(d <= backoff.ceiling(attempt));
            prop_assert!(d <= BACKOFF_CAP);
        }
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(0), Duration::from_secs(2));
        assert_eq!(b.ceiling(1), Duration::from_secs(4));
        assert_eq!(b.ceiling(4), Duration::from_secs(32));
        assert_eq!(b.ceiling(5), BACKOFF_CAP);
        assert_eq!(b.ceiling(u32::MAX), BACKOFF_CAP);
    }

    #[tokio::test(start_paused = true)]
    async fn one_429_pauses_every_waiter_until_retry_after() {
        let cooldown = std::sync::Arc::new(Cooldown::default());
        let start = Instant::now();
        cooldown.throttled(Some(Duration::from_millis(2128)));
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let c = cooldown.clone();
                tokio::spawn(async move {
                    c.wait().await;
                    Instant::now()
                })
            })
            .collect();
        for w in waiters {
            assert!(w.await.unwrap() - start >= Duration::from_millis(2128));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_pause_never_cuts_a_longer_one() {
        let cooldown = Cooldown::default();
        let start = Instant::now();
        cooldown.throttled(Some(Duration::from_secs(10)));
        cooldown.throttled(Some(Duration::from_secs(1)));
        cooldown.wait().await;
        assert!(Instant::now() - start >= Duration::from_secs(10));
    }
}
