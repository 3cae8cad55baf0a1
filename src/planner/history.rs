//! A report read as a job: what its rows say already happened to their devices.
//!
//! Every report row holds the history of its device in `outcome`, `reason` and (a
//! status report) `action_state`, and the report says in its next steps to run it again.
//! So each outcome a report can write is read back for what it means, and a row whose
//! device was reset, or may have been, is never planned for a send:
//!
//! | the row says | read back as |
//! |---|---|
//! | `succeeded` | `ineligible` / `already_reset` (when: its `finished_at`) |
//! | `failed` / `outcome_unknown` (the answer was lost) | `ineligible` / `fate_unknown` |
//! | `ineligible` / `already_reset`, `fate_unknown`, `reset_in_progress`, `reset_recently_done` | the same, carried over |
//! | `duplicate` (another row of its run named the device) | `duplicate`, never sent |
//! | `action_state` `done`, `pending`, `active`, `none` (status) | `ineligible` / `already_reset` |
//! | `action_state` `failed`, `notSupported`, `canceled` (status) | judged again: the reset did not happen |
//! | anything else (`failed`, `not_found`, `invalid`, `not_attempted`, `planned`, ...) | judged again: nothing reached the device |
//!
//! A `duplicate` row is the one case whose fate lives on another row (the one that
//! handled the device). A spreadsheet filter may keep the duplicate and drop that row
//! (docs/reference.md's own advice, "filter to the rows that did not succeed", does exactly
//! that when the other row succeeded), so a duplicate row read back is never sent,
//! whatever else the file holds: that is safe for any subset of rows. The row that
//! handled the device carries its own history and is retried if nothing reached the
//! device; a filter that keeps only the duplicate resets nothing, and its detail says
//! which row to keep instead. For the same reason a duplicate row read back claims no
//! device: in its run, the row that handled the device may come later in the file
//! (rows claim devices as their lookups end), and that row, retried, is sent. A row
//! whose device was reset does claim it, and keeps its own words even when an earlier
//! row named the device too.
//!
//! The history does not fade with the rounds: a carried row is written with
//! its reason and a detail that says which report first said so and when, and that
//! detail is carried verbatim by every later round (a report of a report of a report
//! still says the device was reset, and when). `--reset-again` does not override it:
//! that flag is about what Intune shows, and the report's history must hold on its own
//! (a reset done more than a day ago is no longer in Intune's window). Clearing the row's
//! `outcome` cell is the one deliberate way to reset such a device again: a row with no
//! outcome has no history.

use crate::device::{Column, DeviceFields, normalize};
use crate::job::ColumnNames;
use crate::report::Outcome;

use super::{echo, quoted_column};

/// How a row's history is carried into the new report: its outcome, reason and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    pub outcome: Outcome,
    pub reason: &'static str,
    pub detail: String,
}

/// The reasons that mean the device was, or may have been, reset: carried over as they
/// are, whatever the row's outcome says beside them.
pub const CARRIED_REASONS: [&str; 8] = [
    "already_reset",
    "fate_unknown",
    "reset_in_progress",
    "reset_recently_done",
    "lock_in_progress",
    "lock_recently_done",
    "rotation_in_progress",
    "rotation_recently_done",
];

/// Joins the sentence a read-back writes to the detail the earlier report held. A detail
/// holding it was already written by a read-back, and is carried verbatim from then on,
/// so the first report's words (which run, when) are never buried under new ones.
pub const EARLIER: &str = "; the earlier report said: ";

/// How much of an earlier detail is carried (a Graph message can be long).
const CARRIED_LEN: usize = 1024;

/// What `fields` (a row of a run, plan or status report read as a job) says already
/// happened to its device, or `None` when nothing did and the row is judged as any job
/// row. `source` is the report's name as the new report shows it.
pub fn carried(fields: &DeviceFields, names: &ColumnNames, source: &str) -> Option<Carried> {
    // Called for every judged row: a job that is no report costs one lookup. A row whose
    // outcome cell is empty has no history: that is how a user resets one on purpose.
    let outcome = normalize(fields.get(Column::Outcome)?);
    let reason = fields
        .get(Column::Reason)
        .map(normalize)
        .unwrap_or_default();
    let state = fields
        .get(Column::ActionState)
        .map(normalize)
        .unwrap_or_default();
    let history = History {
        fields,
        names,
        source,
    };
    // Status never reads a duplicate row's device (the row sent nothing): a state beside
    // one is no word on this row, and a duplicate is never sent.
    if outcome == "duplicate" {
        return Some(history.carry(Outcome::Duplicate, "duplicate_device"));
    }
    // Status read the reset in deviceActionResults: its word is the latest.
    match state.as_str() {
        "failed" | "canceled" | "notsupported" => return None,
        "done" | "pending" | "active" | "none" => return Some(history.status_says_reset()),
        _ => {}
    }
    if let Some(carried) = CARRIED_REASONS.iter().find(|r| normalize(r) == reason) {
        return Some(history.carry(Outcome::Ineligible, carried));
    }
    match outcome.as_str() {
        "succeeded" => Some(history.reset()),
        _ if reason == "outcomeunknown" => Some(history.fate_unknown()),
        _ => None,
    }
}

struct History<'a> {
    fields: &'a DeviceFields,
    names: &'a ColumnNames,
    source: &'a str,
}

impl History<'_> {
    fn cell(&self, column: Column) -> String {
        echo(self.fields.get(column).unwrap_or(""))
    }

    /// `column 'outcome' says 'succeeded'`, naming the column as the file spells it.
    fn says(&self, column: Column) -> String {
        format!(
            "{} says '{}'",
            quoted_column(self.names, column),
            self.cell(column)
        )
    }

    /// ` at 2026-11-22T02:00:00.123Z` (the row's `finished_at`: when its run ended it),
    /// when the report says.
    fn when(&self) -> String {
        match self.fields.get(Column::FinishedAt) {
            Some(at) => format!(" at {}", truncate(at, 64)),
            None => String::new(),
        }
    }

    fn again(&self) -> String {
        format!(
            "to reset it once more on purpose, clear the row's '{}' cell",
            self.names.name(Column::Outcome)
        )
    }

    /// The earlier detail, after `lead`: the words of the report that first said it.
    fn with_earlier(&self, lead: String) -> String {
        match self.fields.get(Column::Detail) {
            Some(earlier) => format!("{lead}{EARLIER}{}", truncate(earlier, CARRIED_LEN)),
            None => lead,
        }
    }

    fn reset(&self) -> Carried {
        let lead = format!(
            "{}: Graph accepted this device's reset{} ({} is a report of that run); a second reset would change the passcode again, so it is not sent. Retry only the rows that did not succeed, or {}",
            self.says(Column::Outcome),
            self.when(),
            self.source,
            self.again()
        );
        Carried {
            outcome: Outcome::Ineligible,
            reason: "already_reset",
            detail: self.with_earlier(lead),
        }
    }

    fn status_says_reset(&self) -> Carried {
        let lead = format!(
            "{} for this device's reset, sent{} ({} is a status report): a second reset would change the passcode again, so it is not sent; {}",
            self.says(Column::ActionState),
            self.when(),
            self.source,
            self.again()
        );
        Carried {
            outcome: Outcome::Ineligible,
            reason: "already_reset",
            detail: self.with_earlier(lead),
        }
    }

    fn fate_unknown(&self) -> Carried {
        let lead = format!(
            "{} with reason outcome_unknown: the answer to this device's reset{} was lost, so it may have taken effect, and it is not sent. Learn its fate first with `intune-reset status {}`, and retry from the status report, which retries only the resets that failed; or, knowing it was not reset, {}",
            self.says(Column::Outcome),
            self.when(),
            self.source,
            self.again()
        );
        Carried {
            outcome: Outcome::Ineligible,
            reason: "fate_unknown",
            detail: self.with_earlier(lead),
        }
    }

    /// A row an earlier read-back already carried keeps its detail word for word; one
    /// the run itself wrote (Intune showed a reset; a duplicate) gets the sentence that
    /// says why it is not sent, before the run's own words.
    fn carry(&self, outcome: Outcome, reason: &'static str) -> Carried {
        let detail = match self.fields.get(Column::Detail) {
            Some(earlier) if earlier.contains(EARLIER) => truncate(earlier, 2 * CARRIED_LEN),
            _ => self.with_earlier(self.carry_lead(reason)),
        };
        Carried {
            outcome,
            reason,
            detail,
        }
    }

    fn carry_lead(&self, reason: &str) -> String {
        let said = format!(
            "{} is a report that says '{}'/'{reason}'",
            self.source,
            self.cell(Column::Outcome)
        );
        match reason {
            "duplicate_device" => format!(
                "{said}: this row named the same device as another row of its run, and that row carries the device's fate. A duplicate row read back is never sent, so that a filter that kept it without that row cannot reset the device again; if that row did not succeed, retry it (keep it in the file)"
            ),
            "already_reset" => format!(
                "{said}: the device was already reset, so it is not sent again; {}",
                self.again()
            ),
            "fate_unknown" => format!(
                "{said}: the device's reset may have taken effect, so it is not sent; learn its fate with `intune-reset status` on the report of the run that sent it, or, knowing it was not reset, {}",
                self.again()
            ),
            // reset_in_progress, reset_recently_done: what Intune showed.
            _ => format!(
                "{said}: when its run asked Intune{}, a reset of this device was under way or recently done, so it is not sent again, whatever --reset-again says; {}",
                self.when(),
                self.again()
            ),
        }
    }
}

/// At most `max` characters of `value`, with `…` when cut.
fn truncate(value: &str, max: usize) -> String {
    if value.len() <= max || value.chars().count() <= max {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(max).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests;
