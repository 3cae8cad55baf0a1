//! Intune's own record, asked before every reset: the last word on "never twice".
//!
//! The ledger keeps one run from resetting a device twice; it knows nothing of a second
//! ledger, folder, machine or person, nor of the admin center. Intune does: each reset
//! is an entry in the device's `deviceActionResults`
//! (<https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-resetpasscodeactionresult?view=graph-rest-1.0>).
//! So before a reset leaves, the device's entries are read (one GET, within the read
//! budget: 200 of these per 20 s beside 200 POSTs stay far under Intune's 2,000
//! requests): a reset still `pending` or `active` is never sent again, and one that
//! ended `done` within [`RECENT_RESET`] is not sent unless the run says `--reset-again`.
//! See [`crate::graph::verify::standing`].

use std::time::{Duration, SystemTime};

use crate::graph::GraphApi;
use crate::graph::verify::{Standing, standing};
use crate::report::Outcome;
use crate::rules::Family;

use super::{End, Engine};

/// How long a finished reset keeps a device from another without `--reset-again`: a
/// responder who runs the same incident list again the same day almost always means
/// the devices not yet reset, and a second reset hands the user a second passcode.
pub const RECENT_RESET: Duration = Duration::from_secs(24 * 3600);

impl<G: GraphApi> Engine<G> {
    /// `Ok`: Intune shows nothing that forbids sending a reset to `id` now; `Err`: the
    /// row's end (not sent).
    pub(super) async fn intune_allows(&self, id: &str, action: Family) -> Result<(), End> {
        // Entra keeps no state of a revocation (only when sessions were last revoked,
        // which a password reset moves too): nothing to ask before one.
        if action.on_users() {
            return Ok(());
        }
        let noun = action.noun();
        let results = match self.pacer.action_results(id).await {
            Ok(actions) => actions.results,
            Err(failure) => {
                return Err(match failure.outcome {
                    Outcome::NotAttempted => End::new(Outcome::NotAttempted, "run_aborted", ""),
                    Outcome::NotFound => End::new(
                        Outcome::NotFound,
                        "not_found",
                        format!(
                            "Graph has no managed device {id} (it was deleted or retired); nothing was sent"
                        ),
                    ),
                    _ => End::new(
                        Outcome::Failed,
                        "state_unread",
                        format!(
                            "Intune's record of this device's actions (deviceActionResults) could not be read ({}), so no {noun} was sent: one already under way is never sent twice. `--resume` tries again",
                            failure.detail
                        ),
                    ),
                });
            }
        };
        match standing(&results, action, SystemTime::now(), self.recent_reset) {
            Standing::Clear => Ok(()),
            Standing::InProgress { state, started } => Err(End::new(
                Outcome::Ineligible,
                in_progress_reason(action),
                format!(
                    "Intune already shows a {noun} of this device '{state}' (started {started}), sent by an earlier run, another administrator or another tool; a second one {}, so it was not sent. Follow it with `intune-reset status`",
                    match action {
                        Family::Passcode => "would only change the passcode again",
                        Family::Lock =>
                            "would only lock it again (on a Mac, with a new recovery PIN)",
                        Family::BitLocker => "would only rotate the recovery key again",
                        Family::Sessions => "would only sign the user out again",
                    }
                ),
            )),
            Standing::RecentlyDone { state, at } => Err(End::new(
                Outcome::Ineligible,
                recently_done_reason(action),
                format!(
                    "Intune shows a {noun} of this device '{state}' at {at}, within the last {}; it was not sent again. Pass --reset-again to send it once more on purpose",
                    humantime::format_duration(self.recent_reset.unwrap_or(RECENT_RESET))
                ),
            )),
        }
    }
}

/// The report's reason for an action Intune shows queued or under way.
pub fn in_progress_reason(action: Family) -> &'static str {
    match action {
        Family::Passcode => "reset_in_progress",
        Family::Lock => "lock_in_progress",
        Family::BitLocker => "rotation_in_progress",
        Family::Sessions => "revocation_in_progress",
    }
}

/// The report's reason for an action Intune shows done within [`RECENT_RESET`].
pub fn recently_done_reason(action: Family) -> &'static str {
    match action {
        Family::Passcode => "reset_recently_done",
        Family::Lock => "lock_recently_done",
        Family::BitLocker => "rotation_recently_done",
        Family::Sessions => "revocation_recently_done",
    }
}
