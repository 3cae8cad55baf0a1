//! Device actions the simulator has queued (`resetPasscode`, `remoteLock`,
//! `rotateBitLockerKeys`), and the `deviceActionResults` they show.
//!
//! A 204 from an action means *queued*: its entry reads `pending` until the device
//! checks in (`SimConfig::action_delay`), then `done` (a reset with the new `passcode`
//! where the platform generates one), `failed` or `notSupported`
//! (<https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-resetpasscodeactionresult?view=graph-rest-1.0>).
//! The simulator keeps one result per action, the latest, as the admin center shows it
//! (Microsoft documents no history; unconfirmed): a second reset replaces the reset's
//! entry and its `startDateTime`, which is how a client sees that a reset it was unsure
//! of landed; a lock replaces the lock's entry and leaves the reset's alone.
//!
//! Which actions fail is drawn from the seed, the device, the action and its number
//! ([`ending`]), so a rehearsal replays the same way.

mod ending;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::clock::SimClock;
use super::inventory::{Device, Inventory};
use crate::rules::Family;
use ending::{Ending, Shown, entry};

pub use ending::ERROR_CANNOT_CLEAR_PASSCODE;

#[derive(Debug, Clone)]
struct Latest {
    /// Wall-clock time of the action (as the simulator's clock tells it), so a
    /// rehearsal's tenant reloaded later (`<report>.sim.json`) shows it as it was.
    started: SystemTime,
    /// How it ends once the device has checked in, drawn when the action was made.
    ending: Ending,
    /// A Mac lock's PIN, drawn when the lock was made.
    unlock_pin: Option<String>,
}

/// One device's actions of one kind.
#[derive(Debug, Clone)]
struct History {
    /// Actions Intune accepted for the device: more than one reset means a second
    /// passcode, more than one lock a second lock.
    count: u32,
    /// Of those, actions sent while the one before was still pending, or had ended
    /// `done`: a second passcode (or lock, or key) on purpose (`--reset-again`) or by
    /// accident. A retry after a failed or unsupported action is not counted here.
    over_standing: u32,
    /// Intune shows only the latest result per action.
    latest: Latest,
}

/// Every device's actions, each kind counted on its own: a lock and a reset on one
/// device are one action of each, not a device acted on twice.
#[derive(Debug)]
pub struct DeviceActions {
    /// Seeds which actions fail, the passcodes and the unlock PINs.
    seed: u64,
    /// How long an action stays `pending`.
    delay: Duration,
    /// By inventory index and action; only devices acted on have an entry.
    by_device: Mutex<HashMap<(u32, Family), History>>,
}

impl DeviceActions {
    pub fn new(seed: u64, delay: Duration) -> DeviceActions {
        DeviceActions {
            seed,
            delay,
            by_device: Mutex::new(HashMap::new()),
        }
    }

    fn latest(&self, family: Family, device: &Device, nth: u32, started: SystemTime) -> Latest {
        Latest {
            started,
            ending: ending::ending(self.seed, family, device, nth),
            unlock_pin: ending::unlock_pin(self.seed, family, device, nth),
        }
    }

    /// Records an action of `family` that Intune accepted for device `index` at `now`
    /// (wall time, as [`SimClock::wall`] tells it); returns which of the device's
    /// actions of that kind it is (1 for the first), which decides how it ends.
    pub fn record(&self, family: Family, index: u32, device: &Device, now: SystemTime) -> u32 {
        let mut by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        let before = by_device.get(&(index, family));
        let count = before.map_or(0, |r| r.count) + 1;
        let standing = before.is_some_and(|r| {
            let finished = self.finished(&r.latest, now);
            !finished || matches!(r.latest.ending, Ending::Done { .. })
        });
        let over_standing = before.map_or(0, |r| r.over_standing) + u32::from(standing);
        let latest = self.latest(family, device, count, now);
        by_device.insert(
            (index, family),
            History {
                count,
                over_standing,
                latest,
            },
        );
        count
    }

    /// The `actionState` of device `index`'s `nth` action of `family`, sent at
    /// `started`, at `now`: what `deviceActionResults` showed for it while it was the
    /// latest, which is what the audit's `remoteActionAudits` report for each action.
    pub fn state_of(
        &self,
        family: Family,
        device: &Device,
        nth: u32,
        started: SystemTime,
        now: SystemTime,
    ) -> &'static str {
        let latest = self.latest(family, device, nth, started);
        state(&latest.ending, self.finished(&latest, now))
    }

    /// Puts back what a saved rehearsal tenant recorded for device `index`: `count`
    /// actions of `family`, the latest sent at `started`. Its ending is drawn again from
    /// the seed, as it was when sent: neither passcode nor PIN is ever saved.
    pub fn restore(&self, family: Family, index: u32, device: &Device, saved: RestoredReset) {
        let mut by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        let count = saved.count.max(1);
        by_device.insert(
            (index, family),
            History {
                count,
                over_standing: saved.over_standing.min(count - 1),
                latest: self.latest(family, device, count, saved.started),
            },
        );
    }

    /// What to save of each device's actions of `family`, by inventory index.
    pub fn saved(&self, family: Family) -> Vec<(u32, RestoredReset)> {
        let by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        let mut saved: Vec<(u32, RestoredReset)> = by_device
            .iter()
            .filter(|((_, f), _)| *f == family)
            .map(|((i, _), r)| {
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

    /// The device's `deviceActionResults` at `now` (a value of [`SimClock::now`]): one
    /// entry per action it was given, the reset's first, then the lock's, then the
    /// rotation's.
    pub fn action_results(&self, index: u32, now: Duration, clock: &SimClock) -> Vec<Value> {
        let by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        let wall = clock.wall_at(now);
        Family::ALL
            .into_iter()
            .filter_map(|family| {
                let latest = &by_device.get(&(index, family))?.latest;
                let finished = self.finished(latest, wall);
                let (passcode, error_code) = match (&latest.ending, finished) {
                    (Ending::Done { passcode }, true) => (passcode.as_deref(), 0),
                    (Ending::Failed { error_code }, true) => (None, *error_code),
                    _ => (None, 0),
                };
                Some(entry(&Shown {
                    family,
                    state: state(&latest.ending, finished),
                    started: latest.started,
                    updated: if finished {
                        latest.started + self.delay
                    } else {
                        latest.started
                    },
                    passcode,
                    error_code,
                    unlock_pin: latest.unlock_pin.as_deref(),
                }))
            })
            .collect()
    }

    /// Actions of `family` per device id, for the summary.
    pub fn per_device(&self, family: Family, inventory: &Inventory) -> BTreeMap<String, u32> {
        self.by_device_id(family, inventory, |r| r.count)
    }

    /// Per device id, the actions of `family` sent over a standing one (pending, or
    /// `done`).
    pub fn over_standing(&self, family: Family, inventory: &Inventory) -> BTreeMap<String, u32> {
        self.by_device_id(family, inventory, |r| r.over_standing)
    }

    fn by_device_id(
        &self,
        family: Family,
        inventory: &Inventory,
        count: impl Fn(&History) -> u32,
    ) -> BTreeMap<String, u32> {
        let by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        by_device
            .iter()
            .filter(|((_, f), r)| *f == family && count(r) > 0)
            .filter_map(|((i, _), r)| inventory.device(*i).map(|d| (d.id.to_string(), count(r))))
            .collect()
    }
}

/// The `actionState` of an action that ends so, finished (the device checked in) or not.
fn state(ending: &Ending, finished: bool) -> &'static str {
    match (ending, finished) {
        (_, false) => "pending",
        (Ending::Done { .. }, true) => "done",
        (Ending::Failed { .. }, true) => "failed",
        (Ending::NotSupported, true) => "notSupported",
    }
}

/// A device's actions of one kind (resets, locks or rotations) as a rehearsal's saved
/// tenant keeps them (no passcode, no PIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoredReset {
    /// Actions Intune accepted for the device.
    pub count: u32,
    /// Of those, sent over a standing one (see [`DeviceActions::over_standing`]).
    pub over_standing: u32,
    /// When the latest was sent.
    pub started: SystemTime,
}

#[cfg(test)]
mod tests;
