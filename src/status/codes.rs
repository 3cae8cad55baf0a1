//! One sentence for each way a reset ends badly: the `actionState`, the `errorCode`
//! and the platform, as an Intune administrator needs them to act.
//!
//! What Microsoft documents, and what it does not (research of 2026-12-01):
//! - `resetPasscodeActionResult.errorCode` is an Int32 whose description, in v1.0 and
//!   beta and in every generated SDK, is a copy of another action's ("RotateBitLockerKeys
//!   action error code. Valid values 0 to 2147483647"): Microsoft publishes **no list of
//!   the values a reset returns**, and none was found in the wild.
//!   <https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-resetpasscodeactionresult?view=graph-rest-1.0>
//! - The one Microsoft table of Intune's numeric status codes (0x87D1xxxx, negative as
//!   Int32) is "Error and status codes in Microsoft Intune", written for access to
//!   company resources, not for remote actions. Its codes that can concern a passcode
//!   are [`KNOWN`], each quoted, and said to come from that table; an iOS row there is
//!   0x87D12710 plus Apple's MDM error number, so other Apple errors are named by
//!   number. Every other code is said to be unknown, never guessed.
//!   <https://learn.microsoft.com/en-us/troubleshoot/mem/intune/general/troubleshoot-company-resource-access-problems>
//! - The causes Microsoft does document, by platform:
//!   - iOS/iPadOS: "If the Remove passcode action fails, Intune might have stored the
//!     wrong unlock token. You need to Wipe the device to regain access."
//!     <https://learn.microsoft.com/en-us/intune/device-management/actions/remove-passcode>
//!   - Android work profile: "Not Supported" means "the reset token hasn't been
//!     activated on the device": a work-profile passcode must be required by policy,
//!     set by the user, and the user must accept the prompt to allow passcode reset.
//!     <https://learn.microsoft.com/en-us/troubleshoot/mem/intune/device-management/troubleshoot-device-actions>
//!   - Android: "ensure that the passcode requirement is enforced via device
//!     configuration policies—otherwise, the reset fails."
//!     <https://learn.microsoft.com/en-us/intune/device-management/actions/reset-passcode>
//! - `actionState`: `failed` "Action failed", `notSupported` "Action is not
//!   supported.", `canceled` "Action has been cancelled."
//!   <https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-actionstate?view=graph-rest-1.0>

/// The codes of Microsoft's Intune status-code table that can concern a passcode
/// action: `(Int32 value, message as the table writes it)`. Keyed on the decimal value,
/// which is right in every row of the table (a few of its hex values are not).
pub const KNOWN: &[(i32, &str)] = &[
    (-2016281112, "Remediation failed"),
    (-2016281111, "Not applicable for this device"),
    (-2016341109, "iOS device has returned an error"),
    (
        -2016341110,
        "iOS device has rejected the command due to incorrect format",
    ),
    (
        -2016341111,
        "iOS device has returned an unexpected Idle status",
    ),
    (-2016341112, "iOS device is currently busy"),
    (-2016322111, "14001:Device locked"),
    (-2016324093, "12019:Cannot copy escrow secret"),
    (-2016324094, "12018:Cannot copy escrow keybag data"),
    (-2016324095, "12017:Cannot create escrow keybag"),
    (-2016324105, "12007:Not authorized"),
    (-2016324112, "12000:Invalid access rights"),
    (-2016331097, "5015:Cannot set grace period"),
    (-2016331098, "5014:Cannot set passcode"),
    (-2016331099, "5013:Cannot clear passcode"),
    (-2016331101, "5011:Wrong passcode"),
    (-2016331102, "5010:Device locked"),
    (-2016331104, "5008:Passcode too recent"),
    (-2016331105, "5007:Passcode expired"),
    (-2016331106, "5006:Passcode requires alpha characters"),
    (-2016331107, "5005:Passcode requires number"),
    (
        -2016331108,
        "5004:Passcode has ascending descending characters",
    ),
    (-2016331109, "5003:Passcode has repeating characters"),
    (-2016331110, "5002:Too few complex characters"),
    (-2016331111, "5001:Too few unique characters"),
    (-2016331112, "5000:Passcode too short"),
    (-2016332103, "4009:Device locked"),
    (-2016332107, "4005:Passcode does not comply"),
];

/// Where the table's iOS rows start: 0x87D12710 plus Apple's MDM error number.
const APPLE_BASE: u32 = 0x87D1_2710;
/// The Apple error numbers the table spans.
const APPLE_ERRORS: std::ops::RangeInclusive<u32> = 1000..=36001;

/// An `errorCode` as the status report writes it (`-2016331099`, `1024`, or text Graph
/// sent), read as an Int32: decimal, or hex with `0x`.
fn parse(code: &str) -> Option<i32> {
    let code = code.trim();
    if let Some(hex) = code.strip_prefix("0x").or_else(|| code.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok().map(|u| u as i32);
    }
    code.parse::<i64>().ok().and_then(|n| {
        i32::try_from(n)
            .ok()
            .or_else(|| u32::try_from(n).ok().map(|u| u as i32))
    })
}

/// What an `errorCode` is known to mean: a quoted row of Microsoft's table, Apple's
/// error number, or "unknown". Empty for no code (none, or 0).
pub fn describe_code(code: &str) -> String {
    let text = code.trim();
    if text.is_empty() || text == "0" {
        return String::new();
    }
    let Some(n) = parse(text) else {
        return format!(
            "error code '{text}' is not a number Intune documents; its meaning is unknown"
        );
    };
    let hex = format!("0x{:08X}", n as u32);
    if let Some((_, message)) = KNOWN.iter().find(|(k, _)| *k == n) {
        return format!(
            "error code {n} ({hex}) is '{message}' in Microsoft's table of Intune status codes (a table written for company resources, not for remote actions)"
        );
    }
    let apple = (n as u32).wrapping_sub(APPLE_BASE);
    if (n as u32) >= APPLE_BASE && APPLE_ERRORS.contains(&apple) {
        return format!(
            "error code {n} ({hex}) carries Apple's MDM error {apple}, which Microsoft's table does not describe; its meaning is unknown"
        );
    }
    format!(
        "error code {n} ({hex}) is not documented by Microsoft for this action; its meaning is unknown"
    )
}

/// The sentence for a reset that ended badly (`failed`, `notSupported`, `canceled`), for
/// the summary and the status report's `detail`; empty for any other state.
/// `platform` is the report's platform key (`ios`, `android_work_profile`, ...).
pub fn explain(state: &str, code: &str, platform: &str) -> String {
    let android = platform.starts_with("android");
    let cause = match state {
        "notSupported"
            if platform == "android_work_profile"
                || platform == "android_corporate_work_profile" =>
        {
            "Intune says the device does not support the reset: on a work profile this means the reset token was never activated (Microsoft: require a work-profile passcode by policy; the user sets it and accepts the prompt to allow passcode reset), then reset again"
        }
        "notSupported" => {
            "Intune says the device does not support the reset (the device refused it or its platform cannot do it); check the platform in `intune-reset rules`"
        }
        "failed" if platform == "ios" || platform == "visionos" => {
            "the passcode was not removed: Microsoft says Intune may hold the wrong unlock token, in which case only a wipe regains access to the device"
        }
        "failed" if android => {
            "the passcode was not reset: Microsoft says the reset fails unless a device configuration policy enforces a passcode on the device (for a work profile, the work-profile passcode); assign one, then reset again"
        }
        "failed" => "the reset failed on the device",
        "canceled" => {
            "the reset was canceled before the device acted on it (a retire, wipe or delete takes precedence over other pending actions); reset again if the device is still enrolled"
        }
        _ => return String::new(),
    };
    let code = describe_code(code);
    if code.is_empty() {
        if state == "failed" {
            format!("{cause}; Intune gave no error code")
        } else {
            cause.to_owned()
        }
    } else {
        format!("{cause}; {code}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_of_the_table_is_quoted_with_its_hex_and_its_source() {
        let s = describe_code("-2016331099");
        assert!(s.contains("0x87D13AA5"), "{s}");
        assert!(s.contains("'5013:Cannot clear passcode'"), "{s}");
        assert!(s.contains("Microsoft's table"), "{s}");
        assert_eq!(describe_code("0x87D13AA5"), s, "hex reads as the same code");
        assert_eq!(describe_code("2278636197"), s, "so does the unsigned value");
    }

    #[test]
    fn every_code_of_the_table_is_an_intune_status_code() {
        for (code, message) in KNOWN {
            assert_eq!((*code as u32) >> 16, 0x87D1, "{code} {message}");
            if let Some((apple, _)) = message.split_once(':') {
                let apple: u32 = apple.parse().unwrap();
                assert_eq!(*code as u32, APPLE_BASE + apple, "{message}");
            }
        }
    }

    #[test]
    fn an_apple_error_outside_the_table_is_named_by_number_and_unknown() {
        let s = describe_code(&(APPLE_BASE as i32 + 12345).to_string());
        assert!(s.contains("Apple's MDM error 12345"), "{s}");
        assert!(s.contains("unknown"), "{s}");
    }

    #[test]
    fn any_other_code_is_unknown_and_no_code_says_nothing() {
        for code in ["1001", "1024", "-5", "0x80070005"] {
            let s = describe_code(code);
            assert!(s.contains("meaning is unknown"), "{code}: {s}");
        }
        assert!(describe_code("E_FAIL").contains("unknown"));
        assert_eq!(describe_code(""), "");
        assert_eq!(describe_code("0"), "");
    }

    #[test]
    fn each_bad_ending_gets_the_cause_microsoft_documents_for_the_platform() {
        let wp = explain("notSupported", "", "android_work_profile");
        assert!(wp.contains("reset token was never activated"), "{wp}");
        let ios = explain("failed", "-2016331099", "ios");
        assert!(
            ios.contains("wrong unlock token") && ios.contains("5013"),
            "{ios}"
        );
        let android = explain("failed", "", "android_fully_managed");
        assert!(android.contains("enforces a passcode"), "{android}");
        assert!(android.ends_with("Intune gave no error code"), "{android}");
        assert!(explain("canceled", "", "ios").contains("canceled"));
        assert!(explain("failed", "77", "windows_mobile").contains("77"));
        for fine in ["done", "pending", "active", "not_found_in_results"] {
            assert_eq!(explain(fine, "", "ios"), "", "{fine}");
        }
    }
}
