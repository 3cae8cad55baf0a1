//! Faults on demand, seeded and reproducible.
//!
//! Whether a request meets a fault depends only on the seed, the request itself (method,
//! path, query) and how many times that same request was made before, never on the time
//! or on other requests. So a run replayed with the same seed meets the same faults even
//! when its workers interleave differently, and a retry of a faulted request rolls anew.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use super::dice::{combine, hash_text, unit};

/// A fault the simulator can inject. The names are what `--fault NAME=P` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// 429 without `Retry-After` (reported for Intune): the client must back off itself.
    TooManyRequestsWithoutRetryAfter,
    /// 429 whose `Retry-After` has a fraction (`2.128`, as in Microsoft's sample).
    FractionalRetryAfter,
    /// 503 Service Unavailable with `Retry-After`.
    ServiceUnavailable,
    /// 503 Service Unavailable without `Retry-After`.
    ServiceUnavailableWithoutRetryAfter,
    /// 504 Gateway Timeout.
    GatewayTimeout,
    /// The connection closes before the request took effect: nothing happened.
    DropBeforeEffect,
    /// The connection closes after the request took effect: the action *was* queued.
    DropAfterEffect,
    /// The answer comes late (`SimConfig::slow`), long enough to trip client timeouts.
    Slow,
    /// The bearer token is treated as expired from now on: 401.
    ExpiredToken,
    /// A listing's page names itself as its `@odata.nextLink`: paging that goes in a
    /// circle (issue 17, point 7), which a client must stop rather than follow forever.
    NextLinkLoop,
    /// A front end refuses the request with a 400 whose page quotes the start of its
    /// `Authorization` header (an oversized token): the client must not write that
    /// token anywhere (issue 17, point 9).
    EchoAuthorization,
}

impl FaultKind {
    pub const ALL: [FaultKind; 11] = [
        FaultKind::TooManyRequestsWithoutRetryAfter,
        FaultKind::FractionalRetryAfter,
        FaultKind::ServiceUnavailable,
        FaultKind::ServiceUnavailableWithoutRetryAfter,
        FaultKind::GatewayTimeout,
        FaultKind::DropBeforeEffect,
        FaultKind::DropAfterEffect,
        FaultKind::Slow,
        FaultKind::ExpiredToken,
        FaultKind::NextLinkLoop,
        FaultKind::EchoAuthorization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::TooManyRequestsWithoutRetryAfter => "429-no-retry-after",
            FaultKind::FractionalRetryAfter => "fractional-retry-after",
            FaultKind::ServiceUnavailable => "503",
            FaultKind::ServiceUnavailableWithoutRetryAfter => "503-no-retry-after",
            FaultKind::GatewayTimeout => "504",
            FaultKind::DropBeforeEffect => "drop-before",
            FaultKind::DropAfterEffect => "drop-after",
            FaultKind::Slow => "slow",
            FaultKind::ExpiredToken => "expired-token",
            FaultKind::NextLinkLoop => "next-link-loop",
            FaultKind::EchoAuthorization => "echo-authorization",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        FaultKind::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown fault '{s}'; known: {}", names.join(", "))
            })
    }
}

/// Parses `KIND=PROBABILITY` as `--fault` takes it (`drop-after=0.05`).
pub fn parse_fault(text: &str) -> Result<(FaultKind, f64), String> {
    let (kind, p) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not KIND=PROBABILITY"))?;
    let kind: FaultKind = kind.parse()?;
    let p: f64 = p
        .trim()
        .parse()
        .map_err(|_| format!("'{p}' is not a probability"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("probability {p} is not between 0 and 1"));
    }
    Ok((kind, p))
}

/// A fault a request met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Which fault.
    pub kind: FaultKind,
    /// Seeded randomness for the fault's details (a `Retry-After` value), so they
    /// replay too.
    pub entropy: u64,
}

impl FaultKind {
    /// Faults that concern the connection rather than one Graph request: inside a
    /// `$batch` only the outer request meets them.
    pub fn is_connection_level(self) -> bool {
        matches!(
            self,
            FaultKind::DropBeforeEffect
                | FaultKind::DropAfterEffect
                | FaultKind::Slow
                | FaultKind::ExpiredToken
        )
    }
}

/// The faults of one simulator and how often each request was seen.
#[derive(Debug)]
pub struct FaultPlan {
    /// The configured faults with their probabilities, in roll order.
    faults: Vec<(FaultKind, f64)>,
    /// Makes the rolls reproducible.
    seed: u64,
    /// Times each request (by hash of method, path and query) was rolled for.
    seen: Mutex<HashMap<u64, u32>>,
}

impl FaultPlan {
    pub fn new(faults: Vec<(FaultKind, f64)>, seed: u64) -> FaultPlan {
        FaultPlan {
            faults: faults.into_iter().filter(|(_, p)| *p > 0.0).collect(),
            seed,
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// The fault this request meets, if any, among those `applies` accepts. Each
    /// configured fault is rolled in order; the first that fires wins.
    pub fn roll(&self, request: &str, applies: impl Fn(FaultKind) -> bool) -> Option<Fault> {
        if self.faults.is_empty() {
            return None;
        }
        let key = hash_text(request);
        let nth = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let n = seen.entry(key).or_insert(0);
            *n += 1;
            *n
        };
        self.faults.iter().find_map(|&(kind, p)| {
            let u = unit(combine(&[self.seed, key, u64::from(nth), kind as u64]));
            (applies(kind) && u < p).then(|| Fault {
                kind,
                entropy: combine(&[self.seed, key, u64::from(nth), 0xfa17]),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_input_is_refused() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.as_str().parse::<FaultKind>(), Ok(kind));
        }
        assert_eq!(
            parse_fault("drop-after=0.25"),
            Ok((FaultKind::DropAfterEffect, 0.25))
        );
        assert!(parse_fault("drop-after").is_err());
        assert!(parse_fault("drop-after=1.5").is_err());
        assert!(parse_fault("flood=0.1").is_err());
    }

    fn sequence(seed: u64) -> Vec<Option<FaultKind>> {
        let plan = FaultPlan::new(
            vec![(FaultKind::GatewayTimeout, 0.3), (FaultKind::Slow, 0.3)],
            seed,
        );
        (0..200)
            .map(|i| {
                plan.roll(&format!("GET /device/{}", i % 7), |_| true)
                    .map(|f| f.kind)
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let a = sequence(42);
        assert_eq!(a, sequence(42));
        assert_ne!(a, sequence(43));
        let faulted = a.iter().filter(|f| f.is_some()).count();
        // 1 - 0.7 * 0.7 = 51% expected; 200 rolls stay well inside 30%..70%.
        assert!((60..140).contains(&faulted), "{faulted}");
        assert!(a.contains(&Some(FaultKind::Slow)));
    }

    #[test]
    fn probability_one_always_fires_and_zero_never_does() {
        let always = FaultPlan::new(vec![(FaultKind::DropAfterEffect, 1.0)], 1);
        let never = FaultPlan::new(vec![(FaultKind::DropAfterEffect, 0.0)], 1);
        assert!(never.is_empty());
        for i in 0..50 {
            let req = format!("POST /r/{i}");
            assert_eq!(
                always.roll(&req, |_| true).map(|f| f.kind),
                Some(FaultKind::DropAfterEffect)
            );
            assert_eq!(always.roll(&req, |k| k != FaultKind::DropAfterEffect), None);
            assert_eq!(never.roll(&req, |_| true), None);
        }
    }
}
