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
use crate::rules::Family;

/// How far Graph's clock may be behind ours. An entry this much older than our send is
/// still taken as ours: treating a very recent earlier reset as ours leaves the device
/// with one reset instead of two, the safe side.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(120);

/// The newest entry of `action` that started at or after `sent_at - allowance`.
pub fn entry_since(
    results: &[ActionResult],
    action: Family,
    sent_at: SystemTime,
) -> Option<&ActionResult> {
    let earliest = sent_at
        .checked_sub(CLOCK_SKEW_ALLOWANCE)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    results
        .iter()
        .filter(|r| is_action(r, action))
        .filter_map(|r| started(r).map(|t| (t, r)))
        .filter(|(t, _)| *t >= earliest)
        .max_by_key(|(t, _)| *t)
        .map(|(_, r)| r)
}

/// What Intune's own record says of a device before a reset is sent to it: the last word
/// on "never twice", whatever ledger, report, folder or person started the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// No reset in the way: none on record, or the last one ended badly (`failed`,
    /// `canceled`, `notSupported`) or long enough ago.
    Clear,
    /// A reset is queued or under way (`pending`, `active`): a second one is always an
    /// accident, it would only change the passcode again.
    InProgress { state: String, started: String },
    /// A reset ended `done` (or with no state Graph names) within the recent window.
    RecentlyDone { state: String, at: String },
}

/// The standing of a device's newest reset entry at `now`; `recent`: how long a
/// finished reset keeps the device from another (`None`: it does not,
/// `--reset-again`). An entry whose start cannot be read is ignored, as settling does.
pub fn standing(
    results: &[ActionResult],
    action: Family,
    now: SystemTime,
    recent: Option<Duration>,
) -> Standing {
    let Some(entry) = entry_since(results, action, SystemTime::UNIX_EPOCH) else {
        return Standing::Clear;
    };
    let state = entry.action_state.clone().unwrap_or_default();
    let started = entry.start_date_time.clone().unwrap_or_default();
    match state.to_ascii_lowercase().as_str() {
        "pending" | "active" => return Standing::InProgress { state, started },
        "failed" | "canceled" | "notsupported" => return Standing::Clear,
        _ => {}
    }
    // `done`, `none`, or a state Graph does not document: the reset went out, so the
    // recent window applies. Its end is the last update, else its start.
    let Some(recent) = recent else {
        return Standing::Clear;
    };
    let at = entry
        .last_updated_date_time
        .clone()
        .filter(|t| parse_timestamp(t).is_some())
        .unwrap_or(started);
    match parse_timestamp(&at) {
        // A time ahead of ours (clock skew) is recent too.
        Some(t) if now.duration_since(t).map_or(true, |ago| ago < recent) => {
            Standing::RecentlyDone { state, at }
        }
        _ => Standing::Clear,
    }
}

/// Whether `result` is an entry of `action`: by `actionName`, else by its type
/// (`#microsoft.graph.resetPasscodeActionResult`, `remoteLockActionResult`,
/// `rotateBitLockerKeysDeviceActionResult`).
pub fn is_action(result: &ActionResult, action: Family) -> bool {
    let name = action.graph_name();
    match result.action_name.as_deref() {
        Some(n) if !n.is_empty() => n.eq_ignore_ascii_case(name),
        _ => result.odata_type.as_deref().is_some_and(|t| {
            let t = t.rsplit('.').next().unwrap_or(t);
            t.len() > name.len()
                && t[..name.len()].eq_ignore_ascii_case(name)
                && t.ends_with("ActionResult")
        }),
    }
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
    use proptest::prelude::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn state(name: &str, state: &str, start: &str, updated: &str) -> ActionResult {
        ActionResult {
            action_name: Some(name.into()),
            start_date_time: Some(start.into()),
            last_updated_date_time: Some(updated.into()),
            action_state: Some(state.into()),
            ..ActionResult::default()
        }
    }

    #[test]
    fn a_pending_or_active_reset_is_in_progress_whatever_its_age_or_the_flag() {
        for s in ["pending", "active", "Pending"] {
            let results = vec![state(
                "resetPasscode",
                s,
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
            )];
            assert!(matches!(
                standing(&results, Family::Passcode, at("2026-11-22T10:00:00Z"), None),
                Standing::InProgress { .. }
            ));
        }
    }

    #[test]
    fn a_done_reset_blocks_only_within_the_recent_window_and_without_reset_again() {
        let results = vec![state(
            "resetPasscode",
            "done",
            "2026-11-22T08:00:00Z",
            "2026-11-22T09:00:00Z",
        )];
        let now = at("2026-11-22T10:00:00Z");
        assert!(matches!(
            standing(&results, Family::Passcode, now, Some(DAY)),
            Standing::RecentlyDone { ref at, .. } if at == "2026-11-22T09:00:00Z"
        ));
        assert_eq!(
            standing(&results, Family::Passcode, now, None),
            Standing::Clear
        );
        assert_eq!(
            standing(
                &results,
                Family::Passcode,
                at("2026-11-23T09:00:01Z"),
                Some(DAY)
            ),
            Standing::Clear
        );
    }

    #[test]
    fn a_reset_that_ended_badly_or_another_action_is_no_obstacle() {
        let now = at("2026-11-22T10:00:00Z");
        for s in ["failed", "canceled", "notSupported"] {
            let results = vec![state(
                "resetPasscode",
                s,
                "2026-11-22T09:59:00Z",
                "2026-11-22T09:59:30Z",
            )];
            assert_eq!(
                standing(&results, Family::Passcode, now, Some(DAY)),
                Standing::Clear
            );
        }
        let lock = vec![state(
            "remoteLock",
            "pending",
            "2026-11-22T09:59:00Z",
            "2026-11-22T09:59:00Z",
        )];
        assert_eq!(
            standing(&lock, Family::Passcode, now, Some(DAY)),
            Standing::Clear
        );
    }

    #[test]
    fn the_newest_reset_decides() {
        let results = vec![
            state(
                "resetPasscode",
                "pending",
                "2026-11-20T10:00:00Z",
                "2026-11-20T10:00:00Z",
            ),
            state(
                "resetPasscode",
                "failed",
                "2026-11-22T09:00:00Z",
                "2026-11-22T09:00:10Z",
            ),
        ];
        assert_eq!(
            standing(
                &results,
                Family::Passcode,
                at("2026-11-22T10:00:00Z"),
                Some(DAY)
            ),
            Standing::Clear
        );
    }

    proptest! {
        /// Whatever else the device's record holds, a reset still pending or active
        /// after every other entry keeps the device from a second one.
        #[test]
        fn a_newest_pending_reset_always_stops_a_second(
            older in proptest::collection::vec((0u64..1_000_000, 0usize..6), 0..8),
            again in any::<bool>(),
        ) {
            let states = ["pending", "active", "done", "failed", "canceled", "notSupported"];
            let base = at("2026-01-01T00:00:00Z");
            let stamp = |s: u64| humantime::format_rfc3339(base + Duration::from_secs(s)).to_string();
            let mut results: Vec<ActionResult> = older
                .iter()
                .map(|(s, i)| state("resetPasscode", states[*i], &stamp(*s), &stamp(*s)))
                .collect();
            results.push(state("resetPasscode", "pending", &stamp(1_000_001), &stamp(1_000_001)));
            let recent = if again { None } else { Some(DAY) };
            let is_in_progress = matches!(
                standing(&results, Family::Passcode, base + Duration::from_secs(2_000_000), recent),
                Standing::InProgress { .. }
            );
            prop_assert!(is_in_progress);
        }
    }

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
        let found = entry_since(&results, Family::Passcode, at("2026-11-22T10:00:02Z")).unwrap();
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
        assert!(entry_since(&results, Family::Passcode, at("2026-11-22T10:00:00Z")).is_none());
    }

    #[test]
    fn graph_clock_behind_ours_within_the_allowance_still_counts() {
        let results = vec![entry("resetPasscode", "2026-11-22T09:59:00Z")];
        assert!(entry_since(&results, Family::Passcode, at("2026-11-22T10:00:00Z")).is_some());
    }

    #[test]
    fn entries_without_a_readable_start_are_ignored() {
        let results = vec![entry("resetPasscode", "yesterday")];
        assert!(entry_since(&results, Family::Passcode, at("2026-11-22T10:00:00Z")).is_none());
    }
}
