//! How each device action ends, drawn from the seed, the device, the action and its
//! number, so a rehearsal replays the same way; and the `deviceActionResults` entry it
//! shows, shaped as Graph's result type of that action.
//!
//! Microsoft documents no `errorCode` values; the simulator uses its own, named below,
//! inside the range Graph's schema gives (`errorCode`: Int32, valid values 0 to
//! 2147483647; 0 when there is no error).

use std::time::SystemTime;

use serde_json::{Value, json};

use super::super::clock::rfc3339;
use super::super::dice::{Dice, combine, hash_text, unit};
use super::super::inventory::{Device, Support};
use crate::rules::{Action, Family, Platform};

/// `errorCode` of an iOS/iPadOS reset the device refused: Apple's MDM error 5013
/// "Cannot clear passcode" as Intune's status-code table writes it (0x87D13AA5).
/// Microsoft documents no reset error codes (see `status::codes`): the simulator's
/// failures are illustrations, shaped as Microsoft describes the failures.
pub const ERROR_CANNOT_CLEAR_PASSCODE: i32 = -2016331099;

/// The share of accepted remote locks that end `failed` (a device that never received
/// the command, or refused it): an illustration, Microsoft publishes no rate.
const LOCK_FAILURES: f64 = 0.03;
/// The share of accepted key rotations that end `failed`: Microsoft says rotation needs
/// the BitLocker policy's client-driven recovery password rotation, which Intune cannot
/// tell from the device's record; a device without it fails (no code documented).
const ROTATION_FAILURES: f64 = 0.05;

/// How an action ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Done { passcode: Option<String> },
    Failed { error_code: i32 },
    NotSupported,
}

/// The seeded key of device `device`'s `nth` action of `family`. The passcode reset's
/// key is the one the simulator always used, so rehearsals recorded before the other
/// actions existed replay as they did; the others add the action's name, so a lock's
/// outcome says nothing of the reset's.
fn key(seed: u64, family: Family, device: &Device, nth: u32) -> u64 {
    let mut parts = vec![
        seed,
        device.id.as_u128() as u64,
        (device.id.as_u128() >> 64) as u64,
        u64::from(nth),
    ];
    if family != Family::Passcode {
        parts.push(hash_text(family.graph_name()));
    }
    combine(&parts)
}

/// How the `nth` action of `family` on `device` ends, the same for the same seed.
pub fn ending(seed: u64, family: Family, device: &Device, nth: u32) -> Ending {
    let key = key(seed, family, device, nth);
    let (platform, action) = match device.facts.support_for(family) {
        Support::Supported { platform, action } => (*platform, *action),
        Support::NotSupportedByDevice { .. } | Support::Refused { .. } => {
            return Ending::NotSupported;
        }
    };
    let roll = unit(key);
    match family {
        Family::Passcode => passcode_ending(key, roll, platform, action),
        Family::Lock if roll < LOCK_FAILURES => Ending::Failed { error_code: 0 },
        Family::BitLocker if roll < ROTATION_FAILURES => Ending::Failed { error_code: 0 },
        Family::Lock | Family::BitLocker => Ending::Done { passcode: None },
        // Not a device action: users' revocations are not queued on devices.
        Family::Sessions => Ending::NotSupported,
    }
}

fn passcode_ending(key: u64, roll: f64, platform: Platform, action: Action) -> Ending {
    match platform {
        // Microsoft: a work profile whose user never activated the reset token answers
        // "Not Supported".
        Platform::AndroidWorkProfile if roll < 0.15 => return Ending::NotSupported,
        // Microsoft: without a passcode enforced by policy "the reset fails" (no code).
        Platform::AndroidFullyManaged | Platform::AndroidCorporateWorkProfile if roll < 0.10 => {
            return Ending::Failed { error_code: 0 };
        }
        // Microsoft: a wrong stored unlock token makes "Remove passcode" fail.
        Platform::Ios if roll < 0.02 => {
            return Ending::Failed {
                error_code: ERROR_CANNOT_CLEAR_PASSCODE,
            };
        }
        _ => {}
    }
    let mut dice = Dice::new(key);
    let passcode = match (platform, action) {
        // iOS/iPadOS and visionOS: the passcode is removed, none is generated.
        (Platform::Ios | Platform::Visionos, _) => None,
        (_, Action::ResetPin) => Some(dice.text(b"0123456789", 6)),
        (_, Action::RemovePasscode) => Some(dice.text(b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", 8)),
        // The other actions generate no passcode.
        (_, Action::RemoteLock | Action::RotateBitLockerKeys | Action::RevokeSessions) => None,
    };
    Ending::Done { passcode }
}

/// The 6-digit PIN a Mac's remote lock sets, seeded like a passcode: Intune sends it
/// with Apple's Device Lock command and shows it as the lock's `unlockPin`
/// (<https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-remotelockactionresult?view=graph-rest-beta>;
/// Microsoft's remote lock page: macOS locks behind a 6-digit recovery PIN). Every
/// other device's lock has none.
pub fn unlock_pin(seed: u64, family: Family, device: &Device, nth: u32) -> Option<String> {
    let mac = matches!(
        device.facts.support_for(family),
        Support::Supported {
            platform: Platform::Macos,
            action: Action::RemoteLock,
        }
    );
    if !mac {
        return None;
    }
    let mut dice = Dice::new(combine(&[
        key(seed, family, device, nth),
        hash_text("unlockPin"),
    ]));
    Some(dice.text(b"0123456789", 6))
}

/// What `deviceActionResults` shows of an action at one moment.
pub struct Shown<'a> {
    pub family: Family,
    /// `pending`, `done`, `failed` or `notSupported`.
    pub state: &'static str,
    pub started: SystemTime,
    pub updated: SystemTime,
    /// The reset's generated passcode, once done.
    pub passcode: Option<&'a str>,
    pub error_code: i32,
    /// A Mac lock's PIN, from the moment the lock was sent.
    pub unlock_pin: Option<&'a str>,
}

/// The entry as Graph writes the action's result type: `resetPasscodeActionResult`
/// (with `passcode` and `errorCode`), `remoteLockActionResult` (with `unlockPin`,
/// <https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-remotelockactionresult?view=graph-rest-beta>)
/// and `rotateBitLockerKeysDeviceActionResult` (with `errorCode`,
/// <https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-rotatebitlockerkeysdeviceactionresult?view=graph-rest-beta>).
/// A nullable property without a value is written `null`, as Graph writes it.
pub fn entry(shown: &Shown) -> Value {
    let mut entry = json!({
        "@odata.type": match shown.family {
            Family::Passcode => "#microsoft.graph.resetPasscodeActionResult",
            Family::Lock => "#microsoft.graph.remoteLockActionResult",
            Family::BitLocker => "#microsoft.graph.rotateBitLockerKeysDeviceActionResult",
            Family::Sessions => "#microsoft.graph.deviceActionResult",
        },
        "actionName": shown.family.graph_name(),
        "actionState": shown.state,
        "startDateTime": rfc3339(shown.started),
        "lastUpdatedDateTime": rfc3339(shown.updated),
    });
    match shown.family {
        Family::Passcode => {
            entry["passcode"] = json!(shown.passcode);
            entry["errorCode"] = json!(shown.error_code);
        }
        Family::Lock => entry["unlockPin"] = json!(shown.unlock_pin),
        Family::BitLocker => entry["errorCode"] = json!(shown.error_code),
        Family::Sessions => {}
    }
    entry
}
