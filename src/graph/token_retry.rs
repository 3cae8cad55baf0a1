//! Asking the token endpoint again when its answer is one that usually passes: 429,
//! 500, 502, 503, 504, a dropped connection, a timeout, a connection that could not be
//! opened.
//!
//! Unlike Graph calls (which the runner retries, see [`super::client`]), a token request
//! changes nothing in the tenant, so retrying it here is safe, and only here can it be
//! done once for every worker: the one fetch in flight retries while the others wait for
//! its result. MSAL.NET retries the token endpoint once, after a second, on 500-600, and
//! Microsoft notes that Entra ID may send `Retry-After`, "which needs to be taken into
//! account" (<https://learn.microsoft.com/en-us/entra/msal/dotnet/advanced/exceptions/retry-policy>);
//! MSAL keeps a 429's throttling state for its `Retry-After`
//! (<https://github.com/AzureAD/microsoft-authentication-library-for-dotnet/wiki/Client-Throttling>).
//! We ask a few more times, with exponential backoff and jitter, bounded both in
//! attempts and in total time, so an Entra outage ends the run with its real cause
//! within about a minute instead of a sentence about the client secret.
//!
//! Waits go through `tokio::time`, so tests run them under paused time.

use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::time::Instant;

use super::retry_after::parse_retry_after;

/// How hard to try before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRetry {
    /// Requests in all, the first included.
    pub attempts: u32,
    /// No wait starts that would end later than this after the first request.
    pub budget: Duration,
    /// The first backoff's ceiling; it doubles with each failure.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
}

impl Default for TokenRetry {
    fn default() -> Self {
        TokenRetry {
            attempts: 5,
            budget: Duration::from_secs(60),
            base: Duration::from_secs(1),
            cap: Duration::from_secs(16),
        }
    }
}

impl TokenRetry {
    /// The wait after `failures` failed requests when the endpoint named none: "equal
    /// jitter", half the ceiling plus a uniform share of the other half, so a wait is
    /// never near zero (Entra needs a moment) and two processes that failed together
    /// do not return together. `unit` is the random share, in `0.0..=1.0`.
    pub fn backoff(&self, failures: u32, unit: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(16);
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.cap);
        let half = ceiling / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Why a token request is worth repeating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passing {
    /// 429: Entra throttles this app's sign-ins.
    Throttled,
    /// 500, 502, 503, 504: the service, or a gateway in front of it, failed.
    Unavailable(u16),
    /// The connection could not be opened, broke, or gave no answer in time; `why` is
    /// what the transport said.
    Network { why: String },
}

impl Passing {
    /// The HTTP statuses worth repeating. A 501 or 505 will not change by asking again.
    pub fn from_status(status: u16) -> Option<Passing> {
        match status {
            429 => Some(Passing::Throttled),
            500 | 502 | 503 | 504 => Some(Passing::Unavailable(status)),
            _ => None,
        }
    }

    /// `503 Service Unavailable`, `a dropped connection (...)`.
    pub fn describe(&self) -> String {
        let status = |s: u16| {
            let reason = reqwest::StatusCode::from_u16(s)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("");
            format!("{s} {reason}").trim_end().to_owned()
        };
        match self {
            Passing::Throttled => status(429),
            Passing::Unavailable(s) => status(*s),
            Passing::Network { why } => format!("no answer ({why})"),
        }
    }

    /// Whether two failures are "the same answer" for the message's count.
    fn same_kind(&self, other: &Passing) -> bool {
        match (self, other) {
            (Passing::Network { .. }, Passing::Network { .. }) => true,
            _ => self == other,
        }
    }
}

/// One failed token request that may pass: what happened and how long the endpoint
/// asked us to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transient {
    pub cause: Passing,
    /// `Retry-After`, parsed (seconds, fractional seconds or an HTTP date).
    pub retry_after: Option<Duration>,
}

impl Transient {
    pub fn answered(cause: Passing, retry_after: Option<&str>) -> Transient {
        Transient {
            cause,
            retry_after: retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())),
        }
    }
}

/// The retries ran out: the story for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp {
    /// The last failure.
    pub last: Passing,
    /// Requests sent.
    pub attempts: u32,
    /// From the first request to the last failure.
    pub over: Duration,
    /// Every failure was of the last one's kind.
    pub all_alike: bool,
    /// The endpoint's `Retry-After` when it asked for more than the budget left.
    pub asked_to_wait: Option<Duration>,
}

/// What one attempt came to.
pub enum Attempt<T, E> {
    Done(T),
    /// A definitive answer: asking again cannot help.
    Final(E),
    Again(Transient),
}

/// Runs `attempt` until it is done, definitively refused, or the policy is spent.
pub async fn retrying<T, E, F, Fut>(policy: &TokenRetry, mut attempt: F) -> Result<T, Failed<E>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Attempt<T, E>>,
{
    let started = Instant::now();
    let mut failures = 0u32;
    let mut all_alike = true;
    let mut previous: Option<Passing> = None;
    loop {
        let transient = match attempt().await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Final(e) => return Err(Failed::Final(e)),
            Attempt::Again(t) => t,
        };
        failures += 1;
        if let Some(p) = &previous {
            all_alike &= p.same_kind(&transient.cause);
        }
        let wait = transient
            .retry_after
            .unwrap_or_else(|| policy.backoff(failures, rand::rng().random_range(0.0..=1.0)));
        let elapsed = started.elapsed();
        tracing::warn!(
            attempt = failures,
            answer = %transient.cause.describe(),
            wait_ms = wait.as_millis() as u64,
            "the token endpoint failed; asking again"
        );
        let too_long = elapsed + wait > policy.budget;
        if failures >= policy.attempts || too_long {
            return Err(Failed::GaveUp(GaveUp {
                last: transient.cause,
                attempts: failures,
                over: elapsed,
                all_alike,
                asked_to_wait: transient.retry_after.filter(|_| too_long),
            }));
        }
        previous = Some(transient.cause);
        tokio::time::sleep(wait).await;
    }
}

/// Why [`retrying`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed<E> {
    Final(E),
    GaveUp(GaveUp),
}

/// `40 s`, `1.5 s`, `250 ms`: for a person, not a parser.
pub fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d < Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} s", d.as_secs_f64().round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    proptest! {
        #[test]
        fn a_backoff_stays_between_half_and_the_whole_capped_ceiling(failures in 0u32..1000, unit in 0.0f64..=1.0) {
            let p = TokenRetry::default();
            let d = p.backoff(failures, unit);
            let ceiling = p.base.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16))).min(p.cap);
            prop_assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} vs {ceiling:?}");
        }
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = TokenRetry::default();
        let top: Vec<u64> = (1..=7).map(|n| p.backoff(n, 1.0).as_secs()).collect();
        assert_eq!(top, [1, 2, 4, 8, 16, 16, 16]);
        assert_eq!(p.backoff(3, 0.0), Duration::from_secs(2));
    }

    fn again(cause: Passing, retry_after: Option<Duration>) -> Attempt<u32, ()> {
        Attempt::Again(Transient { cause, retry_after })
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_success_ends_the_loop() {
        let n = Cell::new(0);
        let start = Instant::now();
        let got = retrying(&TokenRetry::default(), || {
            n.set(n.get() + 1);
            let k = n.get();
            async move {
                match k {
                    1 => again(Passing::Throttled, Some(Duration::from_secs(7))),
                    2 => again(Passing::Unavailable(503), Some(Duration::from_millis(2500))),
                    _ => Attempt::Done(k),
                }
            }
        })
        .await;
        assert_eq!(got, Ok(3));
        // Exactly the waits asked for: 7 s, then 2.5 s.
        assert_eq!(start.elapsed(), Duration::from_millis(9500));
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_five_attempts_and_about_a_minute() {
        let n = Cell::new(0u32);
        let start = Instant::now();
        let got = retrying(&TokenRetry::default(), || {
            n.set(n.get() + 1);
            async { again(Passing::Unavailable(503), None) }
        })
        .await;
        assert_eq!(n.get(), 5);
        let Err(Failed::GaveUp(g)) = got else {
            panic!("{got:?}")
        };
        assert_eq!((g.attempts, g.all_alike), (5, true));
        assert_eq!(g.over, start.elapsed());
        // Four waits of at most 1 + 2 + 4 + 8 s.
        assert!(g.over <= Duration::from_secs(15), "{:?}", g.over);

        // A Retry-After beyond the budget is not waited out.
        n.set(0);
        let got = retrying(&TokenRetry::default(), || {
            n.set(n.get() + 1);
            async { again(Passing::Throttled, Some(Duration::from_secs(120))) }
        })
        .await;
        assert_eq!(n.get(), 1);
        assert!(matches!(
            got,
            Err(Failed::GaveUp(GaveUp { attempts: 1, .. }))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_definitive_answer_is_not_repeated() {
        let n = Cell::new(0u32);
        let got: Result<u32, Failed<&str>> = retrying(&TokenRetry::default(), || {
            n.set(n.get() + 1);
            async { Attempt::Final("AADSTS7000215") }
        })
        .await;
        assert_eq!(got, Err(Failed::Final("AADSTS7000215")));
        assert_eq!(n.get(), 1);
    }

    #[test]
    fn statuses_worth_repeating() {
        for s in [429, 500, 502, 503, 504] {
            assert!(Passing::from_status(s).is_some(), "{s}");
        }
        for s in [400, 401, 403, 404, 501, 505] {
            assert!(Passing::from_status(s).is_none(), "{s}");
        }
        assert_eq!(
            Passing::Unavailable(503).describe(),
            "503 Service Unavailable"
        );
        assert_eq!(Passing::Throttled.describe(), "429 Too Many Requests");
        assert_eq!(human(Duration::from_millis(40_400)), "40 s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
    }
}
