//! What the report's outcomes, the status report's states and the audit's verdicts mean,
//! in plain words (the README's definitions, shortened). A name not listed is one this
//! page does not know: it says so instead of guessing.

pub fn outcome(name: &str) -> String {
    match name {
        "succeeded" => "Microsoft Graph accepted the action (a passcode reset, a lock, a key rotation or a revocation, as the row says); Intune queues a device action for the device.",
        "ineligible" => {
            "Not sent on purpose: the platform or its version does not allow the action, or Intune showed the same action under way or recently done."
        }
        "duplicate" => "Another row named the same device (or user) for the same action; that row carries its fate.",
        "invalid" => "The job row could not be read as a device.",
        "not_found" => "Intune has no such device.",
        "ambiguous" => "Several devices matched the row; nothing was sent.",
        "failed" => "The action did not go through, or its fate is unknown (see below).",
        "not_attempted" => "The run stopped, or was told not to send, before this device.",
        "planned" => "Planned only: nothing was sent.",
        other => return unknown(other),
    }
    .to_owned()
}

/// Graph's `actionState` values
/// (<https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-actionstate?view=graph-rest-1.0>)
/// and the words `status` writes when there is no state to copy.
pub fn state(name: &str) -> String {
    match name {
        "done" => "The device carried out the action.",
        "pending" => "Intune has the action; the device has not checked in to carry it out yet.",
        "active" => "The device is carrying out the action.",
        "failed" => "The device could not carry out the action (the error code says why).",
        "canceled" => "The action was canceled before the device carried it out.",
        "notSupported" => "The device does not support the action.",
        "none" => "Intune shows the action with no state.",
        "not_found_in_results" => {
            "Intune no longer shows this action among the device's actions (results are kept for a limited time, or a later one replaced it)."
        }
        "device_not_found" => "The device was deleted or retired since the run.",
        "read_failed" => "The device's actions could not be read, after retries.",
        "not_checked" => "The status check stopped before this device.",
        "unknown" => "Intune shows the action without a state.",
        "no_action_state" => {
            "A revocation of the user's sign-in sessions: Entra keeps no action state to follow."
        }
        "" => "Not queried: the run sent no device action for this row.",
        other => return unknown(other),
    }
    .to_owned()
}

pub fn verdict(name: &str) -> String {
    match name {
        "confirmed" => "Intune recorded exactly one reset this run sent.",
        "missing" => "This run sent the reset and Intune has no record of it.",
        "not_sent_by_this_run" => {
            "Intune records a reset of this device in the run's span that this run did not send (another admin, another tool)."
        }
        "twice" => "Intune records more than one reset of this device in the run's span.",
        "none" => "Nothing sent and nothing recorded: nothing to prove.",
        other => return unknown(other),
    }
    .to_owned()
}

fn unknown(name: &str) -> String {
    if name == super::super::facts::OTHERS {
        "Names past the first few dozen, counted together.".into()
    } else {
        "A value this page does not know; see the report.".into()
    }
}
