//! The device actions' unit tests: each action pending then final, one entry per
//! action, counts per action, and replays for a seed.

use super::*;
use crate::rules::Platform;
use crate::sim::inventory::Support;

const P: Family = Family::Passcode;

#[test]
fn a_reset_is_pending_then_final_and_replays_the_same_for_a_seed() {
    let inv = Inventory::generate(300, 4);
    let clock = SimClock::new();
    let delay = Duration::from_secs(10);
    let a = DeviceActions::new(4, delay);
    let b = DeviceActions::new(4, delay);
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for (i, d) in inv.devices().iter().enumerate() {
        let i = i as u32;
        a.record(P, i, d, clock.wall_at(Duration::from_secs(5)));
        b.record(P, i, d, clock.wall_at(Duration::from_secs(5)));
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
    a.record(P, 0, d, clock.wall_at(Duration::from_secs(20)));
    assert_eq!(
        a.action_results(0, Duration::from_secs(21), &clock)[0]["actionState"],
        "pending"
    );
    assert_eq!(a.per_device(P, &inv).get(&d.id.to_string()), Some(&2));
}

#[test]
fn a_second_reset_counts_as_over_a_standing_one_unless_the_first_failed() {
    let inv = Inventory::generate(300, 4);
    let clock = SimClock::new();
    let delay = Duration::from_secs(10);
    let resets = DeviceActions::new(4, delay);
    let at = |s| clock.wall_at(Duration::from_secs(s));
    for (i, d) in inv.devices().iter().enumerate() {
        resets.record(P, i as u32, d, at(0));
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
    resets.record(P, pending, &inv.devices()[pending as usize], at(5));
    resets.record(P, done, &inv.devices()[done as usize], at(30));
    resets.record(P, failed, &inv.devices()[failed as usize], at(30));
    let over = resets.over_standing(P, &inv);
    let id = |i: u32| inv.devices()[i as usize].id.to_string();
    assert_eq!(over.get(&id(pending)), Some(&1));
    assert_eq!(over.get(&id(done)), Some(&1));
    assert_eq!(over.get(&id(failed)), None, "a retry after a failure");
    assert_eq!(resets.per_device(P, &inv).get(&id(failed)), Some(&2));
}

#[test]
fn the_state_of_each_reset_is_what_action_results_showed_for_it_as_the_latest() {
    let inv = Inventory::generate(200, 6);
    let clock = SimClock::new();
    let resets = DeviceActions::new(6, Duration::from_secs(10));
    for (i, d) in inv.devices().iter().enumerate() {
        let i = i as u32;
        let mut sent = Vec::new();
        for (n, s) in [(0u64, 1u32), (20, 2)] {
            let started = clock.wall_at(Duration::from_secs(n));
            assert_eq!(resets.record(P, i, d, started), s);
            sent.push(started);
            for after in [5, 10] {
                let now = Duration::from_secs(n + after);
                let shown = &resets.action_results(i, now, &clock)[0]["actionState"];
                let state = resets.state_of(P, d, s, started, clock.wall_at(now));
                assert_eq!(shown, state, "{:?}", d.facts);
            }
        }
        // The first reset's state, read later, is still its own.
        let first = resets.state_of(P, d, 1, sent[0], clock.wall_at(Duration::from_secs(40)));
        assert_ne!(first, "pending");
    }
}

#[test]
fn a_restored_reset_shows_as_it_was_with_the_same_passcode() {
    let inv = Inventory::generate(50, 9);
    let clock = SimClock::new();
    let delay = Duration::from_secs(10);
    let first = DeviceActions::new(9, delay);
    for (i, d) in inv.devices().iter().enumerate() {
        first.record(P, i as u32, d, clock.wall_at(Duration::ZERO));
    }
    let again = DeviceActions::new(9, delay);
    for (i, saved) in first.saved(P) {
        again.restore(P, i, &inv.devices()[i as usize], saved);
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

#[test]
fn locks_and_rotations_end_done_or_a_seeded_few_failed_the_same_for_a_seed() {
    let inv = Inventory::generate(600, 8);
    let clock = SimClock::new();
    let delay = Duration::from_secs(10);
    let a = DeviceActions::new(8, delay);
    let b = DeviceActions::new(8, delay);
    let sent = clock.wall_at(Duration::ZERO);
    let mut states: BTreeMap<(Family, String), usize> = BTreeMap::new();
    for (i, d) in inv.devices().iter().enumerate() {
        let i = i as u32;
        for family in [Family::Lock, Family::BitLocker] {
            if !matches!(d.facts.support_for(family), Support::Supported { .. }) {
                continue;
            }
            a.record(family, i, d, sent);
            b.record(family, i, d, sent);
            let shown = |at: u64| {
                a.action_results(i, Duration::from_secs(at), &clock)
                    .into_iter()
                    .find(|e| e["actionName"] == family.graph_name())
                    .unwrap_or_default()
            };
            assert_eq!(shown(9)["actionState"], "pending");
            let last = shown(10);
            assert_eq!(
                last,
                b.action_results(i, Duration::from_secs(10), &clock)[0]
            );
            let state = last["actionState"].as_str().unwrap_or_default().to_owned();
            assert_eq!(state, a.state_of(family, d, 1, sent, clock.wall_at(delay)));
            *states.entry((family, state)).or_default() += 1;
        }
    }
    let count = |family, state: &str| {
        states
            .get(&(family, state.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    for family in [Family::Lock, Family::BitLocker] {
        let (done, failed) = (count(family, "done"), count(family, "failed"));
        assert!(failed > 0 && failed * 10 < done, "{family:?}: {states:?}");
        assert_eq!(count(family, "notSupported"), 0, "{states:?}");
    }
    assert!(a.per_device(Family::Passcode, &inv).is_empty());
}

#[test]
fn only_a_macs_lock_has_an_unlock_pin() {
    let inv = Inventory::generate(400, 3);
    let clock = SimClock::new();
    let actions = DeviceActions::new(3, Duration::from_secs(10));
    let mut macs = 0;
    for (i, d) in inv.devices().iter().enumerate() {
        let Support::Supported { platform, .. } = d.facts.support_for(Family::Lock) else {
            continue;
        };
        actions.record(Family::Lock, i as u32, d, clock.wall_at(Duration::ZERO));
        let lock = &actions.action_results(i as u32, Duration::ZERO, &clock)[0];
        let pin = lock["unlockPin"].as_str();
        if *platform == Platform::Macos {
            macs += 1;
            assert!(
                pin.is_some_and(|p| p.len() == 6 && p.bytes().all(|b| b.is_ascii_digit())),
                "{lock}"
            );
        } else {
            assert_eq!(lock["unlockPin"], Value::Null, "{lock}");
        }
        assert!(lock.get("passcode").is_none(), "{lock}");
    }
    assert!(macs > 5, "{macs}");
}
