//! Which `deviceActionResults` entry is the run's reset, and the words the status
//! report uses for it.
//!
//! Graph's own `actionState` values (`none`, `pending`, `canceled`, `active`, `done`,
//! `failed`, `notSupported`:
//! <https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-actionstate?view=graph-rest-1.0>)
//! are written as Graph spells them. When there is no state to copy, `status` writes one
//! of its own snake_case words, stable for scripts: [`NOT_FOUND_IN_RESULTS`],
//! [`DEVICE_NOT_FOUND`], [`READ_FAILED`], [`NOT_CHECKED`], [`UNKNOWN`],
//! [`NO_ACTION_STATE`].

use std::time::SystemTime;

use crate::graph::verify::entry_since;
use crate::graph::{ActionResult, ErrorCode, Secret};
use crate::rules::Family;

/// The device has no `resetPasscode` entry that started at or after the run's send
/// (less the clock-skew allowance): Graph no longer shows the reset (it keeps results
/// for a limited time) or a later action replaced it.
pub const NOT_FOUND_IN_RESULTS: &str = "not_found_in_results";
/// Graph answers 404 for the device: it was deleted or retired since the run.
pub const DEVICE_NOT_FOUND: &str = "device_not_found";
/// The device could not be read, after the retries; the summary gives Graph's answer.
pub const READ_FAILED: &str = "read_failed";
/// The command stopped (sign-in, a missing permission) before this device was read.
pub const NOT_CHECKED: &str = "not_checked";
/// The row's action has no state in Graph to follow: a revocation of a user's sign-in
/// sessions (Entra keeps when sessions were last revoked, nothing more).
pub const NO_ACTION_STATE: &str = "no_action_state";
/// The entry carries no `actionState`.
pub const UNKNOWN: &str = "unknown";

/// What the status report says about one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Graph's `actionState`, or one of this module's words.
    pub state: String,
    /// Graph's `lastUpdatedDateTime`, as Graph wrote it.
    pub updated_at: String,
    /// Graph's `errorCode` when it is not 0 (0 means no error).
    pub error_code: String,
    /// The generated passcode, for the `--passcodes` file only.
    pub passcode: Option<Secret>,
    /// Why the device could not be read, for the summary (never a passcode).
    pub detail: String,
    /// The device's user as Graph names it: the passcode's recipient when the run
    /// report does not say.
    pub user: Option<String>,
    /// What a bad ending means and what to do ([`super::codes::explain`]); empty for
    /// any other state.
    pub meaning: String,
}

impl Found {
    /// A state of this module's own, with nothing from Graph.
    pub fn own(state: &str, detail: impl Into<String>) -> Found {
        Found {
            state: state.to_owned(),
            updated_at: String::new(),
            error_code: String::new(),
            passcode: None,
            detail: detail.into(),
            user: None,
            meaning: String::new(),
        }
    }
}

/// The run's reset among a device's entries: the newest `resetPasscode` entry started
/// at or after `sent_at` (the row's `started_at`) less the clock-skew allowance, as
/// `run` verifies a lost answer. Without a readable `sent_at`, the newest reset entry.
pub fn select(results: &[ActionResult], action: Family, sent_at: Option<SystemTime>) -> Found {
    let since = sent_at.unwrap_or(SystemTime::UNIX_EPOCH);
    let Some(entry) = entry_since(results, action, since) else {
        return Found::own(NOT_FOUND_IN_RESULTS, "");
    };
    Found {
        state: entry
            .action_state
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| UNKNOWN.to_owned()),
        updated_at: entry.last_updated_date_time.clone().unwrap_or_default(),
        error_code: match &entry.error_code {
            None | Some(ErrorCode::Number(0)) => String::new(),
            Some(ErrorCode::Number(n)) => n.to_string(),
            Some(ErrorCode::Text(t)) if t.trim() == "0" => String::new(),
            Some(ErrorCode::Text(t)) => t.clone(),
        },
        passcode: entry.passcode.clone().filter(|p| !p.expose().is_empty()),
        detail: String::new(),
        user: None,
        meaning: String::new(),
    }
}

/// The row's `started_at` as a time; `None` when it is empty or unreadable.
pub fn sent_at(started_at: &str) -> Option<SystemTime> {
    crate::graph::verify::parse_timestamp(started_at.trim())
}

/// States that may still change: `--wait` reads these devices again.
pub fn is_open(state: &str) -> bool {
    matches!(state, "pending" | "active" | "none")
}

/// The only state that needs nothing more from anyone.
pub fn is_done(state: &str) -> bool {
    state == "done"
}

/// States that ended badly on the device (Graph's words).
pub fn is_failure(state: &str) -> bool {
    matches!(state, "failed" | "notSupported" | "canceled")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        state: &str,
        start: &str,
        code: Option<ErrorCode>,
        passcode: Option<&str>,
    ) -> ActionResult {
        ActionResult {
            odata_type: Some("#microsoft.graph.resetPasscodeActionResult".into()),
            action_name: Some("resetPasscode".into()),
            action_state: Some(state.into()),
            start_date_time: Some(start.into()),
            last_updated_date_time: Some(start.into()),
            passcode: passcode.map(Secret::new),
            error_code: code,
        }
    }

    #[test]
    fn the_newest_reset_since_the_send_is_the_runs() {
        let results = vec![
            entry("done", "2026-11-20T10:00:00Z", None, Some("111111")),
            entry(
                "failed",
                "2026-11-22T10:00:01Z",
                Some(ErrorCode::Number(1001)),
                None,
            ),
        ];
        let found = select(
            &results,
            Family::Passcode,
            sent_at("2026-11-22T10:00:00.500Z"),
        );
        assert_eq!(found.state, "failed");
        assert_eq!(found.error_code, "1001");
        assert_eq!(found.passcode, None);
    }

    #[test]
    fn an_older_reset_is_not_found_and_lends_no_passcode() {
        let results = vec![entry("done", "2026-11-20T10:00:00Z", None, Some("111111"))];
        let found = select(&results, Family::Passcode, sent_at("2026-11-22T10:00:00Z"));
        assert_eq!(found, Found::own(NOT_FOUND_IN_RESULTS, ""));
        assert_eq!(
            select(&[], Family::Passcode, sent_at("2026-11-22T10:00:00Z")).state,
            NOT_FOUND_IN_RESULTS
        );
    }

    #[test]
    fn graph_seconds_match_the_reports_milliseconds() {
        // Graph may round startDateTime down to the second the report has in millis.
        let results = vec![entry(
            "done",
            "2026-11-22T10:00:00Z",
            Some(ErrorCode::Number(0)),
            Some("42"),
        )];
        let found = select(
            &results,
            Family::Passcode,
            sent_at("2026-11-22T10:00:00.900Z"),
        );
        assert_eq!(found.state, "done");
        assert_eq!(found.error_code, "");
        assert_eq!(found.passcode.as_ref().map(Secret::expose), Some("42"));
    }

    #[test]
    fn without_a_send_time_the_newest_reset_counts() {
        let results = vec![
            entry("done", "2026-11-20T10:00:00Z", None, None),
            entry(
                "pending",
                "2026-11-21T10:00:00Z",
                Some(ErrorCode::Text("0x87D1FDE8".into())),
                None,
            ),
        ];
        let found = select(&results, Family::Passcode, sent_at(""));
        assert_eq!(found.state, "pending");
        assert_eq!(found.error_code, "0x87D1FDE8");
    }

    #[test]
    fn open_done_and_failed_states_are_told_apart() {
        for s in ["pending", "active", "none"] {
            assert!(is_open(s) && !is_done(s) && !is_failure(s), "{s}");
        }
        assert!(is_done("done") && !is_open("done"));
        for s in ["failed", "notSupported", "canceled"] {
            assert!(is_failure(s) && !is_open(s), "{s}");
        }
        for s in [
            NOT_FOUND_IN_RESULTS,
            DEVICE_NOT_FOUND,
            READ_FAILED,
            NOT_CHECKED,
            UNKNOWN,
        ] {
            assert!(!is_open(s) && !is_done(s) && !is_failure(s), "{s}");
        }
    }
}
