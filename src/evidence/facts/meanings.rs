//! The report's `reason` codes of the rows that need a look, in plain words for a reader
//! who does not know the tool. A code not listed here is explained by its rows' own
//! `detail` (the page shows it beside the examples).

/// What the rows with `reason` mean.
pub fn reason(reason: &str) -> String {
    known(reason).map(str::to_owned).unwrap_or_else(|| {
        format!(
            "The report's code '{reason}'; the details of the examples below say what happened."
        )
    })
}

fn known(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "outcome_unknown" => {
            "The reset request left, but its answer was lost and Intune's action results could not be read: the device may or may not have been reset. It was deliberately not sent again; the status and audit reports settle it."
        }
        "run_aborted" => {
            "The run stopped (interrupted, or a sign-in or permission problem) before this device was done. A resume sends what is left, never a device twice."
        }
        "gave_up" => {
            "Microsoft Graph kept failing for this device (timeouts, server errors) until the tool stopped retrying. The detail quotes the last answer."
        }
        "rejected" => {
            "Microsoft Graph refused the request for this device (a 4xx answer); the detail quotes its message."
        }
        "forbidden" => {
            "Microsoft Graph answered 403 for this device without naming a permission: usually the Intune role's scope does not cover the device."
        }
        "missing_permission" => {
            "The sign-in lacked the Microsoft Graph permission the reset needs, so the device was not reset."
        }
        "missing_intune_role" => {
            "The signed-in account's Intune role does not allow the remote task Reset passcode, so the device was not reset."
        }
        "authentication_failed" => {
            "Signing in to Microsoft Graph failed during the run, so the device was not reset."
        }
        "not_found" | "device_not_found" => {
            "Intune has no device with this id (it was deleted or retired, or the job file's id is wrong)."
        }
        "no_device_matches" => {
            "No Intune device matches what the job row names (serial number, name, IMEI)."
        }
        "ambiguous" => {
            "Several Intune devices match what the job row names, so nothing was sent: the row needs the device's Intune id."
        }
        "ambiguous_group" => "Several groups have the name the job row gives, so none was used.",
        "user_not_found" => "Entra ID has no user with the name the job row gives.",
        "user_has_no_device" => "The user the job row names has no Intune device.",
        "group_not_found" => "Entra ID has no group with the name or id the job row gives.",
        "group_has_no_device" => "The group the job row names holds no Intune device.",
        "listing_incomplete" => {
            "Microsoft Graph's list of a user's or a group's devices could not be read whole, so none of the devices it named was reset."
        }
        "lookup_too_broad" => {
            "Looking the device up returned far more devices than any real match (Graph may have ignored the filter), so nothing was sent."
        }
        "unsafe_next_link" => {
            "Microsoft Graph's next page pointed away from Graph; it was not followed (the access token would have gone with it)."
        }
        "state_unread" => {
            "The device's recent actions could not be read, so the tool did not risk resetting it a second time."
        }
        "ledger_unwritable" => {
            "The run's own record (its ledger) could not be written (a full disk, a missing folder), so the run stopped sending."
        }
        "internal_error" => {
            "The tool met an unexpected problem on this row; the detail says what, and whether anything was sent."
        }
        "malformed_id" | "malformed_azure_ad_device_id" => {
            "The job file's device id is not a valid id (a GUID)."
        }
        "malformed_user" => {
            "The job file's user is neither a user principal name (user@domain) nor a user object id."
        }
        "no_identity" => "The job row names no device (no id, serial number, name, IMEI or user).",
        "lookup_disabled" => {
            "Finding this device needed a lookup in Microsoft Graph, and the run was told not to look devices up."
        }
        "lookup_required" => {
            "The job row lacks the Intune id or the platform, and the run could not look them up."
        }
        "unsupported_filter" => {
            "The job row's filter is not one the tool can send to Microsoft Graph."
        }
        "missing_os_version" | "unreadable_os_version" => {
            "The device's OS version is missing or unreadable, so whether the reset works on it could not be judged."
        }
        "missing_operating_system" | "missing_device_type" | "missing_enrollment_type" => {
            "The job row lacks what tells the device's platform, so whether the reset works on it could not be judged."
        }
        "contradictory_platform" => {
            "The job row's platform columns contradict each other, so the device was not reset."
        }
        "unrecognised_platform" | "platform_unknown" => {
            "The device's platform is not one the tool knows, so it was not reset."
        }
        "invalid_json" | "not_an_object" | "unclosed_quote" | "unreadable_rest_of_file" => {
            "The job file could not be read at this row (broken JSON or CSV); the detail says where."
        }
        "undecodable_characters"
        | "control_characters"
        | "value_too_long"
        | "scientific_notation" => {
            "A cell of the job row could not be trusted (broken characters, a number Excel rewrote); the detail names it."
        }
        "not_attempted" => "The device was not sent: the detail says why.",
        _ => return None,
    })
}
