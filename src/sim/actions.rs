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
use std::time::{Duration, SystemTime};

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
    /// Wall-clock time of the reset (as the simulator's clock tells it), so a
    /// rehearsal's tenant reloaded later (`<report>.sim.json`) shows it as it was.
    started: SystemTime,
    /// How it ends once the device has checked in, drawn when the reset was made.
    ending: Ending,
}

#[derive(Debug, Clone)]
struct DeviceResets {
    /// Resets Intune accepted for the device: more than one means a second passcode.
    count: u32,
    /// Of those, resets sent while the one before was still pending, or had ended
    /// `done`: a second passcode on purpose (`--reset-again`) or by accident. A retry
    /// after a failed or unsupported reset is not counted here.
    over_standing: u32,
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

    /// Records a reset that Intune accepted for device `index` at `now` (wall time, as
    /// [`SimClock::wall`] tells it); returns which of the device's resets it is (1 for
    /// the first), which decides how it ends.
    pub fn record(&self, index: u32, device: &Device, now: SystemTime) -> u32 {
        let mut by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        let before = by_device.get(&index);
        let count = before.map_or(0, |r| r.count) + 1;
        let standing = before.is_some_and(|r| {
            let finished = self.finished(&r.latest, now);
            !finished || matches!(r.latest.ending, Ending::Done { .. })
        });
        let over_standing = before.map_or(0, |r| r.over_standing) + u32::from(standing);
        let ending = ending(self.seed, device, count);
        by_device.insert(
            index,
            DeviceResets {
                count,
                over_standing,
                latest: Latest {
                    started: now,
                    ending,
                },
            },
        );
        count
    }

    /// The `actionState` of device `index`'s `nth` reset, sent at `started`, at `now`:
    /// what `deviceActionResults` showed for it while it was the latest, which is what
    /// the audit's `remoteActionAudits` report for each reset.
    pub fn state_of(
        &self,
        device: &Device,
        nth: u32,
        started: SystemTime,
        now: SystemTime,
    ) -> &'static str {
        let latest = Latest {
            started,
            ending: ending(self.seed, device, nth),
        };
        match (&latest.ending, self.finished(&latest, now)) {
            (_, false) => "pending",
            (Ending::Done { .. }, true) => "done",
            (Ending::Failed { .. }, true) => "failed",
            (Ending::NotSupported, true) => "notSupported",
        }
    }

    /// Puts back what a saved rehearsal tenant recorded for device `index`: `count`
    /// resets, the latest sent at `started`. Its ending is drawn again from the seed,
    /// as it was when sent: the passcode is never saved.
    pub fn restore(&self, index: u32, device: &Device, saved: RestoredReset) {
        let mut by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        let count = saved.count.max(1);
        by_device.insert(
            index,
            DeviceResets {
                count,
                over_standing: saved.over_standing.min(count - 1),
                latest: Latest {
                    started: saved.started,
                    ending: ending(self.seed, device, count),
                },
            },
        );
    }

    /// What to save of each reset device, by inventory index.
    pub fn saved(&self) -> Vec<(u32, RestoredReset)> {
        let by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        let mut saved: Vec<(u32, RestoredReset)> = by_device
            .iter()
            .map(|(i, r)| {
                (
                    *i,
                    RestoredReset {
                        count: r.count,
                        over_standing: r.over_standing,
                        started: r.latest.started,
                    },
                )
            })
            .collect();
        saved.sort_unstable_by_key(|(i, _)| *i);
        saved
    }

    fn finished(&self, latest: &Latest, now: SystemTime) -> bool {
        now.duration_since(latest.started)
            .is_ok_and(|since| since >= self.delay)
    }

    /// The device's `deviceActionResults` at `now` (a value of [`SimClock::now`]).
    pub fn action_results(&self, index: u32, now: Duration, clock: &SimClock) -> Vec<Value> {
        let by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        let Some(resets) = by_device.get(&index) else {
            return Vec::new();
        };
        let latest = &resets.latest;
        let finished = self.finished(latest, clock.wall_at(now));
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
            "startDateTime": rfc3339(latest.started),
            "lastUpdatedDateTime": rfc3339(updated),
            "passcode": passcode,
            "errorCode": error_code,
        })]
    }

    /// Resets per device id, for the summary.
    pub fn per_device(&self, inventory: &Inventory) -> BTreeMap<String, u32> {
        self.by_device_id(inventory, |r| r.count)
    }

    /// Per device id, the resets sent over a standing one (pending, or `done`).
    pub fn over_standing(&self, inventory: &Inventory) -> BTreeMap<String, u32> {
        self.by_device_id(inventory, |r| r.over_standing)
    }

    fn by_device_id(
        &self,
        inventory: &Inventory,
        count: impl Fn(&DeviceResets) -> u32,
    ) -> BTreeMap<String, u32> {
        let by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        by_device
            .iter()
            .filter(|(_, r)| count(r) > 0)
            .filter_map(|(i, r)| inventory.device(*i).map(|d| (d.id.to_string(), count(r))))
            .collect()
    }
}

/// A device's resets as a rehearsal's saved tenant keeps them (no passcode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoredReset {
    /// Resets Intune accepted for the device.
    pub count: u32,
    /// Of those, sent over a standing reset (see [`Resets::over_standing`]).
    pub over_standing: u32,
    /// When the latest was sent.
    pub started: SystemTime,
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
        // The other actions generate no passcode the simulator shows.
        (_, Action::RemoteLock | Action::RotateBitLockerKeys | Action::RevokeSessions) => None,
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
            a.record(i, d, clock.wall_at(Duration::from_secs(5)));
            b.record(i, d, clock.wall_at(Duration::from_secs(5)));
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
        a.record(0, d, clock.wall_at(Duration::from_secs(20)));
        assert_eq!(
            a.action_results(0, Duration::from_secs(21), &clock)[0]["actionState"],
            "pending"
        );
        assert_eq!(a.per_device(&inv).get(&d.id.to_string()), Some(&2));
    }

    #[test]
    fn a_second_reset_counts_as_over_a_standing_one_unless_the_first_failed() {
        let inv = Inventory::generate(300, 4);
        let clock = SimClock::new();
        let delay = Duration::from_secs(10);
        let resets = Resets::new(4, delay);
        let at = |s| clock.wall_at(Duration::from_secs(s));
        for (i, d) in inv.devices().iter().enumerate() {
            resets.record(i as u32, d, at(0));
        }
        let state = |i: u32| {
            resets.action_results(i, Duration::from_secs(30), &clock)[0]["actionState"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        let failed = (0..300u32).find(|i| state(*i) == "failed");
        let done = (0..300u32).find(|i| state(*i) == "done");
        let (Some(failed), Some(done)) = (failed, done) else {
            panic!("the mix has failed and done resets");
        };
        // Still pending, then done: over a standing reset. After a failure: a retry.
        let pending = (0..300u32)
            .find(|i| *i != failed && *i != done)
            .unwrap_or(0);
        resets.record(pending, &inv.devices()[pending as usize], at(5));
        resets.record(done, &inv.devices()[done as usize], at(30));
        resets.record(failed, &inv.devices()[failed as usize], at(30));
        let over = resets.over_standing(&inv);
        let id = |i: u32| inv.devices()[i as usize].id.to_string();
        assert_eq!(over.get(&id(pending)), Some(&1));
        assert_eq!(over.get(&id(done)), Some(&1));
        assert_eq!(over.get(&id(failed)), None, "a retry after a failure");
        assert_eq!(resets.per_device(&inv).get(&id(failed)), Some(&2));
    }

    #[test]
    fn the_state_of_each_reset_is_what_action_results_showed_for_it_as_the_latest() {
        let inv = Inventory::generate(200, 6);
        let clock = SimClock::new();
        let resets = Resets::new(6, Duration::from_secs(10));
        for (i, d) in inv.devices().iter().enumerate() {
            let i = i as u32;
            let mut sent = Vec::new();
            for (n, s) in [(0u64, 1u32), (20, 2)] {
                let started = clock.wall_at(Duration::from_secs(n));
                assert_eq!(resets.record(i, d, started), s);
                sent.push(started);
                for after in [5, 10] {
                    let now = Duration::from_secs(n + after);
                    let shown = &resets.action_results(i, now, &clock)[0]["actionState"];
                    let state = resets.state_of(d, s, started, clock.wall_at(now));
                    assert_eq!(shown, state, "{:?}", d.facts);
                }
            }
            // The first reset's state, read later, is still its own.
            let first = resets.state_of(d, 1, sent[0], clock.wall_at(Duration::from_secs(40)));
            assert_ne!(first, "pending");
        }
    }

    #[test]
    fn a_restored_reset_shows_as_it_was_with_the_same_passcode() {
        let inv = Inventory::generate(50, 9);
        let clock = SimClock::new();
        let delay = Duration::from_secs(10);
        let first = Resets::new(9, delay);
        for (i, d) in inv.devices().iter().enumerate() {
            first.record(i as u32, d, clock.wall_at(Duration::ZERO));
        }
        let again = Resets::new(9, delay);
        for (i, saved) in first.saved() {
            again.restore(i, &inv.devices()[i as usize], saved);
        }
        for i in 0..50u32 {
            for at in [Duration::from_secs(1), Duration::from_secs(11)] {
                assert_eq!(
                    first.action_results(i, at, &clock),
                    again.action_results(i, at, &clock)
                );
            }
        }
    }
}
