//! How a wait is told to a person: until when on the wall clock (UTC, as the logs'
//! timestamps) and how long is left, e.g. `until 14:03:27 UTC (58 s)`.
//!
//! Core module: imports nothing of the crate.

use std::time::{Duration, SystemTime};

/// `until 14:03:27 UTC (58 s)`: the wall clock a log shows, and the countdown.
pub fn until_text(until: SystemTime, now: SystemTime) -> String {
    let left = until.duration_since(now).unwrap_or_default();
    format!("until {} UTC ({})", clock(until), short(left))
}

/// `HH:MM:SS` of a UTC time.
pub fn clock(at: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    stamp.get(11..19).unwrap_or(&stamp).to_owned()
}

/// `58 s`, `5 min 40 s`, `2 h 5 min`: whole seconds, rounded up.
pub fn short(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_countdown_read_as_a_person_would() {
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_652_000 + s);
        assert_eq!(
            until_text(at(3723), at(0)),
            "until 15:02:03 UTC (1 h 2 min)"
        );
        assert_eq!(until_text(at(0), at(5)), "until 14:00:00 UTC (0 s)");
        assert_eq!(short(Duration::from_millis(59_200)), "1 min 0 s");
        assert_eq!(clock(at(59)), "14:00:59");
    }
}
