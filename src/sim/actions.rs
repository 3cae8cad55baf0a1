//! Resets the simulator has queued, and the `deviceActionResults` they show.
//!
//! A 204 from `resetPasscode` means *queued*: the entry reads `pending` until the device
//! checks in (`SimConfig::action_delay`), then `done` (with the new `passcode` where
//! the platform generates one), `failed` or `notSupported`
//! (<https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-resetpasscodeactionresult?view=graph-rest-1.0>).
//! The simulator keeps one result per action, the latest, as the admin center shows it
//! (Microsoft documents no history; unconfirmed): a second reset replaces the entry and
//! its `startDateTime`, which is how a client sees that a reset it was unsure of landed.
//!
//! Which resets fail is drawn from the seed, the device and the reset's number, so a
//! rehearsal replays the same way. Microsoft does not document `errorCode` values; the
//! simulator uses its own two, named below, inside the range Graph's schema gives
//! (`errorCode`: Int32, valid values 0 to 2147483647; 0 when there is no error).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use super::clock::{SimClock, rfc3339};
use super::dice::{Dice, combine, unit};
use super::inventory::{Device, Inventory, Support};
use crate::rules::{Action, Platform};

/// `errorCode` of an iOS/iPadOS reset the device refused: Apple's MDM error 5013
/// "Cannot clear passcode" as Intune's status-code table writes it (0x87D13AA5).
/// Microsoft documents no reset error codes (see `status::codes`): the simulator's
/// failures are illustrations, shaped as Microsoft describes the failures.
pub const ERROR_CANNOT_CLEAR_PASSCODE: i32 = -2016331099;

/// How a reset ends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Done { passcode: Option<String> },
    Failed { error_code: i32 },
    NotSupported,
}

#[derive(Debug, Clone)]
struct Latest {
    /// Simulator time of the reset.
    started: Duration,
    /// How it ends once the device has checked in, drawn when the reset was made.
    ending: Ending,
}

#[derive(Debug, Clone)]
struct DeviceResets {
    /// Resets Intune accepted for the device: more than one means a second passcode.
    count: u32,
    /// Intune shows only the latest result per action.
    latest: Latest,
}

#[derive(Debug)]
pub struct Resets {
    /// Seeds which resets fail and the passcodes generated.
    seed: u64,
    /// How long a reset stays `pending`.
    delay: Duration,
    /// By inventory index; only devices that were reset have an entry.
    by_device: Mutex<HashMap<u32, DeviceResets>>,
}

impl Resets {
    pub fn new(seed: u64, delay: Duration) -> Resets {
        Resets {
            seed,
            delay,
            by_device: Mutex::new(HashMap::new()),
        }
    }

    /// Records a reset that Intune accepted for device `index`.
    pub fn record(&self, index: u32, device: &Device, now: Duration) {
        let mut by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        let count = by_device.get(&index).map_or(0, |r| r.count) + 1;
        let ending = ending(self.seed, device, count);
        by_device.insert(
            index,
            DeviceResets {
                count,
                latest: Latest {
                    started: now,
                    ending,
                },
            },
        );
    }

    /// The device's `deviceActionResults` at `now`.
    pub fn action_results(&self, index: u32, now: Duration, clock: &SimClock) -> Vec<Value> {
        let by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        let Some(resets) = by_device.get(&index) else {
            return Vec::new();
        };
        let latest = &resets.latest;
        let finished = now.saturating_sub(latest.started) >= self.delay;
        let (state, passcode, error_code, updated) = match (&latest.ending, finished) {
            (_, false) => ("pending", None, 0, latest.started),
            (Ending::Done { passcode }, true) => {
                ("done", passcode.clone(), 0, latest.started + self.delay)
            }
            (Ending::Failed { error_code }, true) => {
                ("failed", None, *error_code, latest.started + self.delay)
            }
            (Ending::NotSupported, true) => ("notSupported", None, 0, latest.started + self.delay),
        };
        vec![json!({
            "@odata.type": "#microsoft.graph.resetPasscodeActionResult",
            "actionName": "resetPasscode",
            "actionState": state,
            "startDateTime": rfc3339(clock.wall_at(latest.started)),
            "lastUpdatedDateTime": rfc3339(clock.wall_at(updated)),
            "passcode": passcode,
            "errorCode": error_code,
        })]
    }

    /// Resets per device id, for the summary.
    pub fn per_device(&self, inventory: &Inventory) -> BTreeMap<String, u32> {
        let by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        by_device
            .iter()
            .filter_map(|(i, r)| inventory.device(*i).map(|d| (d.id.to_string(), r.count)))
            .collect()
    }
}

/// How the `nth` reset of `device` ends, the same for the same seed.
fn ending(seed: u64, device: &Device, nth: u32) -> Ending {
    let key = combine(&[
        seed,
        device.id.as_u128() as u64,
        (device.id.as_u128() >> 64) as u64,
        u64::from(nth),
    ]);
    let (platform, action) = match &device.facts.support {
        Support::Supported { platform, action } => (*platform, *action),
        Support::NotSupportedByDevice { .. } | Support::Refused { .. } => {
            return Ending::NotSupported;
        }
    };
    let roll = unit(key);
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
    };
    Ending::Done { passcode }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_is_pending_then_final_and_replays_the_same_for_a_seed() {
        let inv = Inventory::generate(300, 4);
        let clock = SimClock::new();
        let delay = Duration::from_secs(10);
        let a = Resets::new(4, delay);
        let b = Resets::new(4, delay);
        let mut states: BTreeMap<String, usize> = BTreeMap::new();
        for (i, d) in inv.devices().iter().enumerate() {
            let i = i as u32;
            a.record(i, d, Duration::from_secs(5));
            b.record(i, d, Duration::from_secs(5));
            let pending = &a.action_results(i, Duration::from_secs(14), &clock)[0];
            assert_eq!(pending["actionState"], "pending");
            assert_eq!(pending["passcode"], Value::Null);
            let done = &a.action_results(i, Duration::from_secs(15), &clock)[0];
            assert_eq!(
                done,
                &b.action_results(i, Duration::from_secs(15), &clock)[0]
            );
            let state = done["actionState"].as_str().unwrap_or_default().to_owned();
            let generated = !done["passcode"].is_null();
            let ios = matches!(
                d.facts.support,
                Support::Supported {
                    platform: Platform::Ios,
                    ..
                }
            );
            if state == "done" {
                assert_eq!(generated, !ios, "{:?}", d.facts);
            }
            *states.entry(state).or_default() += 1;
        }
        for state in ["done", "failed", "notSupported"] {
            assert!(states.contains_key(state), "{states:?}");
        }
        assert!(a.action_results(1000, Duration::ZERO, &clock).is_empty());
        // A second reset replaces the entry and counts.
        let d = &inv.devices()[0];
        a.record(0, d, Duration::from_secs(20));
        assert_eq!(
            a.action_results(0, Duration::from_secs(21), &clock)[0]["actionState"],
            "pending"
        );
        assert_eq!(a.per_device(&inv).get(&d.id.to_string()), Some(&2));
    }
}
