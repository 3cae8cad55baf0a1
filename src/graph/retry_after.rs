//! Reading a `Retry-After` header: how long Graph wants every worker to wait.
//!
//! Graph sends whole seconds (`10`) and, from some services, fractional ones (`2.128`)
//! (<https://learn.microsoft.com/en-us/graph/throttling>); HTTP also allows a date
//! (RFC 9110, section 10.2.3). A date already past means "now".
//!
//! A value above [`MAX_RETRY_AFTER`] (one day) is **rejected**, not clamped: no Graph
//! service asks for that, so it is a broken proxy or a misread header, and pausing a whole
//! incident response for a day on its word would be worse than the runner's own
//! exponential backoff, which is what `None` leads to.

use std::time::{Duration, SystemTime};

/// The longest wait taken from a header; anything longer is not believed.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The wait a `Retry-After` value asks for, or `None` when the value is not a usable
/// delay (negative, not a number, not a date, longer than [`MAX_RETRY_AFTER`]).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let wait = if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        seconds(value)?
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    (wait <= MAX_RETRY_AFTER).then_some(wait)
}

/// `10` or `2.128`; digits only, so `inf`, `NaN`, `1e9` and `-1` never get here.
fn seconds(value: &str) -> Option<Duration> {
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    let dots = value.len() - digits;
    if digits == 0 || dots > 1 {
        return None;
    }
    if dots == 0 {
        // Integer: avoid float rounding; a huge number is simply too long.
        return match value.parse::<u64>() {
            Ok(s) => Some(Duration::from_secs(s)),
            Err(_) => Some(Duration::MAX),
        };
    }
    let secs: f64 = value.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(secs)
        .ok()
        .or(Some(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> SystemTime {
        httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap()
    }

    #[test]
    fn samples_from_graph() {
        assert_eq!(
            parse_retry_after("10", now()),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("2.128", now()),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(".5", now()),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:28:30 GMT", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Tue, 20 Oct 2026 07:28:00 GMT", now()),
            Some(Duration::ZERO)
        );
        // More than a day ahead: not believed.
        assert_eq!(
            parse_retry_after("Fri, 23 Oct 2026 07:28:00 GMT", now()),
            None
        );
    }

    #[test]
    fn nonsense_is_refused() {
        for v in [
            "",
            "-1",
            "-0.5",
            "NaN",
            "nan",
            "inf",
            "1e3",
            "1.2.3",
            ".",
            "ten",
            "10s",
            "+5",
            "86401",
            "99999999999999999999999",
            "1e400",
        ] {
            assert_eq!(parse_retry_after(v, now()), None, "{v:?}");
        }
        assert_eq!(parse_retry_after("86400", now()), Some(MAX_RETRY_AFTER));
    }

    proptest! {
        #[test]
        fn whole_seconds_up_to_a_day(s in 0u64..=86_400) {
            prop_assert_eq!(parse_retry_after(&s.to_string(), now()), Some(Duration::from_secs(s)));
        }

        #[test]
        fn more_than_a_day_is_refused(s in 86_401u64..) {
            prop_assert_eq!(parse_retry_after(&s.to_string(), now()), None);
        }

        #[test]
        fn negatives_are_refused(s in 1i64..1_000_000, frac in proptest::option::of(0u32..1000)) {
            let v = match frac { Some(f) => format!("-{s}.{f:03}"), None => format!("-{s}") };
            prop_assert_eq!(parse_retry_after(&v, now()), None);
        }

        #[test]
        fn fractional_seconds_keep_milliseconds(s in 0u64..86_400, ms in 0u64..1000) {
            let got = parse_retry_after(&format!("{s}.{ms:03}"), now()).unwrap();
            let want = Duration::from_millis(s * 1000 + ms);
            let diff = got.abs_diff(want);
            prop_assert!(diff < Duration::from_micros(1), "{got:?} vs {want:?}");
        }

        #[test]
        fn dates_ahead_give_the_gap(s in 0u64..=86_400) {
            let at = now() + Duration::from_secs(s);
            let v = httpdate::fmt_http_date(at);
            prop_assert_eq!(parse_retry_after(&v, now()), Some(Duration::from_secs(s)));
        }

        #[test]
        fn dates_behind_mean_now(s in 0u64..10_000_000) {
            let v = httpdate::fmt_http_date(now() - Duration::from_secs(s));
            prop_assert_eq!(parse_retry_after(&v, now()), Some(Duration::ZERO));
        }

        #[test]
        fn never_panics_and_never_exceeds_a_day(v in "\\PC{0,40}") {
            if let Some(d) = parse_retry_after(&v, now()) {
                prop_assert!(d <= MAX_RETRY_AFTER);
            }
        }
    }
}
