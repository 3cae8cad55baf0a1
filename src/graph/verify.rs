//! Did a reset whose answer was lost take effect? Read `deviceActionResults` and look.
//!
//! A second `resetPasscode` generates a second passcode (and locks out a user who was
//! just handed the first), so a POST whose fate is unknown (timeout, dropped connection,
//! 5xx after sending) is never blindly re-sent. Graph records every reset in the device's
//! `deviceActionResults` with its `startDateTime`
//! (<https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-resetpasscodeactionresult?view=graph-rest-1.0>);
//! an entry that started after our send (less a clock-skew allowance) is ours, and the
//! device must not be sent another.

use std::time::{Duration, SystemTime};

use crate::graph::ActionResult;

/// How far Graph's clock may be behind ours. An entry this much older than our send is
/// still taken as ours: treating a very recent earlier reset as ours leaves the device
/// with one reset instead of two, the safe side.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(120);

/// The newest reset entry that started at or after `sent_at - allowance`.
pub fn reset_since(results: &[ActionResult], sent_at: SystemTime) -> Option<&ActionResult> {
    let earliest = sent_at
        .checked_sub(CLOCK_SKEW_ALLOWANCE)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    results
        .iter()
        .filter(|r| is_reset(r))
        .filter_map(|r| started(r).map(|t| (t, r)))
        .filter(|(t, _)| *t >= earliest)
        .max_by_key(|(t, _)| *t)
        .map(|(_, r)| r)
}

pub fn is_reset(result: &ActionResult) -> bool {
    result
        .action_name
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case("resetPasscode"))
        || result
            .odata_type
            .as_deref()
            .is_some_and(|t| t.ends_with("resetPasscodeActionResult"))
}

pub fn started(result: &ActionResult) -> Option<SystemTime> {
    result.start_date_time.as_deref().and_then(parse_timestamp)
}

/// A time as Graph and this tool write them: RFC 3339 in UTC with a `Z`, and up to 7
/// fraction digits (`2026-11-22T10:00:03.1234567Z`).
pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, start: &str) -> ActionResult {
        ActionResult {
            action_name: Some(name.into()),
            start_date_time: Some(start.into()),
            action_state: Some("pending".into()),
            ..ActionResult::default()
        }
    }

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn an_entry_started_after_the_send_is_ours() {
        let results = vec![
            entry("resetPasscode", "2026-11-20T10:00:00Z"),
            entry("resetPasscode", "2026-11-22T10:00:03.1234567Z"),
        ];
        let found = reset_since(&results, at("2026-11-22T10:00:02Z")).unwrap();
        assert_eq!(
            found.start_date_time.as_deref(),
            Some("2026-11-22T10:00:03.1234567Z")
        );
    }

    #[test]
    fn an_old_reset_or_another_action_is_not_ours() {
        let results = vec![
            entry("resetPasscode", "2026-11-22T09:00:00Z"),
            entry("remoteLock", "2026-11-22T10:00:05Z"),
        ];
        assert!(reset_since(&results, at("2026-11-22T10:00:00Z")).is_none());
    }

    #[test]
    fn graph_clock_behind_ours_within_the_allowance_still_counts() {
        let results = vec![entry("resetPasscode", "2026-11-22T09:59:00Z")];
        assert!(reset_since(&results, at("2026-11-22T10:00:00Z")).is_some());
    }

    #[test]
    fn entries_without_a_readable_start_are_ignored() {
        let results = vec![entry("resetPasscode", "yesterday")];
        assert!(reset_since(&results, at("2026-11-22T10:00:00Z")).is_none());
    }
}
