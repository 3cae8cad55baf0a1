//! What the simulator saw: counts kept while it runs, and the [`SimStats`] snapshot a
//! test asserts on and `simulate` prints on exit. The questions it answers are the ones
//! a rehearsal asks: did the runner stay under the limits, how often was it throttled,
//! which faults did it meet, and did any device get reset twice? Remote locks and key
//! rotations are counted beside resets, each on its own: a device locked and reset is
//! acted on once by each, a device locked twice is locked twice. Users' sign-in session
//! revocations are counted per user.
//!
//! A simulator serving several tenants counts each apart: [`SimStats`]'s own counts
//! are the first tenant's (so they read as they did with one tenant), each further
//! tenant's are in `other_tenants`, and the summary gives each tenant the same lines
//! under a heading naming it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use super::faults::FaultKind;
use super::reply::Kind;

/// A snapshot of the simulator's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Requests by kind (`token`, `list`, `get`, `resetPasscode`, `remoteLock`,
    /// `rotateBitLockerKeys`, `revokeSignInSessions`, `user` (a directory user read),
    /// `batch`, `other`); requests inside a `$batch` count under their own kind too.
    pub requests_by_kind: BTreeMap<String, u64>,
    /// Every 429 answered, whether from the limits or injected.
    pub too_many_requests: u64,
    /// 429s the limits gave (the rest were injected faults).
    pub throttled: u64,
    /// Faults injected, by name.
    pub faults: BTreeMap<String, u64>,
    /// Connections closed without an answer (the two drop faults).
    pub dropped: u64,
    /// Resets Intune accepted, by device id; a drop-after-effect reset counts. Every
    /// client since the simulator started: several runs against one simulator add up.
    pub resets_per_device: BTreeMap<String, u32>,
    /// Per device id, the resets sent while the one before was still pending or had
    /// ended `done`: a second passcode. A retry after a failed or unsupported reset is
    /// not one; `--reset-again` is the only way a run sends one on purpose.
    pub resets_over_standing: BTreeMap<String, u32>,
    /// Remote locks Intune accepted, by device id, counted as resets are.
    pub locks_per_device: BTreeMap<String, u32>,
    /// Per device id, the locks sent while the one before was still pending or had
    /// ended `done`: a device locked twice (a Mac gets a second unlock PIN).
    pub locks_over_standing: BTreeMap<String, u32>,
    /// BitLocker key rotations Intune accepted, by device id, counted as resets are.
    pub rotations_per_device: BTreeMap<String, u32>,
    /// Per device id, the rotations sent while the one before was still pending or had
    /// ended `done`: a device whose recovery key was rotated twice.
    pub rotations_over_standing: BTreeMap<String, u32>,
    /// Per app, the most writes inside one throttling window (Intune's: users'
    /// revocations are not among them).
    pub max_writes_in_any_window: BTreeMap<String, u32>,
    /// Sign-in session revocations Entra accepted (`revokeSignInSessions`), by the
    /// user's UPN as the directory holds it; a revocation whose answer was lost counts.
    /// Every client since the simulator started (a saved tenant's revocations
    /// included), as for resets.
    pub revocations_per_user: BTreeMap<String, u32>,
    /// The id of the tenant these counts are of: the first tenant's for the snapshot
    /// a simulator gives.
    pub tenant: String,
    /// Each further tenant's counts (`simulate --tenant-inventory`), in the order they
    /// were configured; empty with one tenant.
    pub other_tenants: Vec<SimStats>,
    /// Across tenants, per app, the most Graph requests inside one window of Graph's
    /// own limit (130,000 per 10 s per app); empty without limits.
    pub max_graph_requests_in_any_window: BTreeMap<String, u32>,
}

impl SimStats {
    pub fn total_requests(&self) -> u64 {
        self.requests_by_kind
            .iter()
            .filter(|(kind, _)| kind.as_str() != "batch")
            .map(|(_, n)| n)
            .sum()
    }

    /// Devices whose passcode was reset more than once: each has a second passcode.
    pub fn devices_reset_more_than_once(&self) -> Vec<&str> {
        more_than_once(&self.resets_per_device)
    }

    /// Devices remote locked more than once (locks alone: a reset does not count).
    pub fn devices_locked_more_than_once(&self) -> Vec<&str> {
        more_than_once(&self.locks_per_device)
    }

    /// Devices whose BitLocker keys were rotated more than once.
    pub fn devices_rotated_more_than_once(&self) -> Vec<&str> {
        more_than_once(&self.rotations_per_device)
    }

    /// Users whose sessions were revoked more than once: any second revocation Entra
    /// accepted for a user in the simulator's life. A revocation has no state to wait
    /// for, so every second one counts.
    pub fn users_revoked_more_than_once(&self) -> Vec<&str> {
        more_than_once(&self.revocations_per_user)
    }

    /// The summary `simulate` prints on exit: with one tenant, its lines; with several,
    /// each tenant's same lines under `tenant <id>`, then Graph's count across them.
    pub fn render(&self) -> String {
        let mut out = String::from("simulator summary\n");
        if self.other_tenants.is_empty() {
            self.write_lines(&mut out);
            return out;
        }
        for tenant in std::iter::once(self).chain(&self.other_tenants) {
            let _ = writeln!(out, "tenant {}", tenant.tenant);
            tenant.write_lines(&mut out);
        }
        let _ = writeln!(out, "across tenants");
        if self.max_graph_requests_in_any_window.is_empty() {
            let _ = writeln!(
                out,
                "  most Graph requests in one 10 s window by one app, all tenants: none counted"
            );
        }
        for (app, n) in &self.max_graph_requests_in_any_window {
            let _ = writeln!(
                out,
                "  most Graph requests in one 10 s window by {app}, all tenants: {n} (Graph allows 130000)"
            );
        }
        out
    }

    /// One tenant's lines.
    fn write_lines(&self, out: &mut String) {
        let kinds: Vec<String> = self
            .requests_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  requests:         {} ({})",
            self.total_requests(),
            kinds.join(", ")
        );
        let _ = writeln!(
            out,
            "  429 answers:      {} ({} from the limits, {} injected)",
            self.too_many_requests,
            self.throttled,
            self.too_many_requests - self.throttled.min(self.too_many_requests)
        );
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let faults = if faults.is_empty() {
            "none".to_owned()
        } else {
            faults.join(", ")
        };
        let _ = writeln!(out, "  faults injected:  {faults}");
        let _ = writeln!(out, "  dropped:          {}", self.dropped);
        write_action(
            out,
            &RESETS,
            &self.resets_per_device,
            &self.resets_over_standing,
        );
        // The other actions only when the simulator was sent some: a passcode
        // rehearsal's summary stays as it was.
        if !self.locks_per_device.is_empty() {
            write_action(
                out,
                &LOCKS,
                &self.locks_per_device,
                &self.locks_over_standing,
            );
        }
        if !self.rotations_per_device.is_empty() {
            write_action(
                out,
                &ROTATIONS,
                &self.rotations_per_device,
                &self.rotations_over_standing,
            );
        }
        if !self.revocations_per_user.is_empty() {
            write_revocations(out, &self.revocations_per_user);
        }
        for (app, n) in &self.max_writes_in_any_window {
            let _ = writeln!(out, "  most writes in one window by {app}: {n}");
        }
    }
}

fn more_than_once(per_device: &BTreeMap<String, u32>) -> Vec<&str> {
    per_device
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.as_str())
        .collect()
}

/// How the summary words one action's lines.
struct Wording {
    /// `resets:` padded to the summary's column.
    total: &'static str,
    /// `reset more than once (...)`.
    more_than_once: &'static str,
    /// `reset again while the last reset was pending or done (...)`.
    again: &'static str,
}

const RESETS: Wording = Wording {
    total: "resets:          ",
    more_than_once: "reset more than once (all runs together, retries of failed resets included)",
    again: "reset again while the last reset was pending or done (a second passcode; a run sends one only with --reset-again)",
};

const LOCKS: Wording = Wording {
    total: "remote locks:    ",
    more_than_once: "locked more than once (all runs together, retries of failed locks included)",
    again: "locked again while the last lock was pending or done (a Mac gets a second unlock PIN)",
};

const ROTATIONS: Wording = Wording {
    total: "key rotations:   ",
    more_than_once: "keys rotated more than once (all runs together, retries of failed rotations included)",
    again: "rotated again while the last rotation was pending or done (a second new recovery key)",
};

/// One action's lines: how many, on how many devices, how many devices took it more
/// than once, and which took it over a standing one.
fn write_action(
    out: &mut String,
    wording: &Wording,
    per_device: &BTreeMap<String, u32>,
    over_standing: &BTreeMap<String, u32>,
) {
    let total: u64 = per_device.values().map(|n| u64::from(*n)).sum();
    let _ = writeln!(
        out,
        "  {} {total} on {} devices",
        wording.total,
        per_device.len()
    );
    // Counted over every client since the simulator started: a second run retrying
    // failed actions adds up here too, so the line says so, and the one that matters
    // (a second action over a standing one) has its own line.
    let _ = writeln!(
        out,
        "  {}: {}",
        wording.more_than_once,
        more_than_once(per_device).len()
    );
    let over: Vec<&str> = over_standing.keys().map(String::as_str).collect();
    let shown: Vec<String> = over
        .iter()
        .take(10)
        .map(|id| format!("{id} ({})", per_device.get(*id).copied().unwrap_or(0)))
        .collect();
    let more = if over.len() > shown.len() {
        ", ..."
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  {}: {}{}{}",
        wording.again,
        over.len(),
        if shown.is_empty() {
            String::new()
        } else {
            format!(": {}", shown.join(", "))
        },
        more
    );
}

/// The users' lines: how many revocations, on how many users, and which users were
/// revoked more than once.
fn write_revocations(out: &mut String, per_user: &BTreeMap<String, u32>) {
    let total: u64 = per_user.values().map(|n| u64::from(*n)).sum();
    let _ = writeln!(
        out,
        "  revocations:      {total} on {} users (sign-in sessions)",
        per_user.len()
    );
    let again = more_than_once(per_user);
    let shown: Vec<String> = again
        .iter()
        .take(10)
        .map(|upn| format!("{upn} ({})", per_user.get(*upn).copied().unwrap_or(0)))
        .collect();
    let more = if again.len() > shown.len() {
        ", ..."
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  users revoked more than once (all runs together, retries included): {}{}{}",
        again.len(),
        if shown.is_empty() {
            String::new()
        } else {
            format!(": {}", shown.join(", "))
        },
        more
    );
}

#[derive(Debug, Default)]
struct Counts {
    /// Requests by kind.
    by_kind: BTreeMap<&'static str, u64>,
    /// Every 429 answered.
    too_many_requests: u64,
    /// 429s from the limits.
    throttled: u64,
    /// Injected faults by name.
    faults: BTreeMap<&'static str, u64>,
    /// Connections closed without an answer.
    dropped: u64,
}

/// The running counts, shared by every connection.
#[derive(Debug, Default)]
pub struct StatsCollector {
    /// One lock: a request updates several counts at once.
    counts: Mutex<Counts>,
}

impl StatsCollector {
    pub fn record(
        &self,
        kind: Kind,
        status: Option<u16>,
        fault: Option<FaultKind>,
        throttled: bool,
    ) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *c.by_kind.entry(kind.as_str()).or_default() += 1;
        if status == Some(429) {
            c.too_many_requests += 1;
        }
        if throttled {
            c.throttled += 1;
        }
        if let Some(fault) = fault {
            *c.faults.entry(fault.as_str()).or_default() += 1;
        }
        if status.is_none() {
            c.dropped += 1;
        }
    }

    /// The counts; the caller adds what other parts keep (resets, windows).
    pub fn snapshot(&self) -> SimStats {
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        SimStats {
            requests_by_kind: c
                .by_kind
                .iter()
                .map(|(k, n)| ((*k).to_owned(), *n))
                .collect(),
            too_many_requests: c.too_many_requests,
            throttled: c.throttled,
            faults: c
                .faults
                .iter()
                .map(|(k, n)| ((*k).to_owned(), *n))
                .collect(),
            dropped: c.dropped,
            ..SimStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_it_counts_and_names_devices_reset_over_a_standing_reset() {
        let collector = StatsCollector::default();
        collector.record(Kind::ResetPasscode, Some(204), None, false);
        collector.record(Kind::ResetPasscode, Some(429), None, true);
        collector.record(
            Kind::ResetPasscode,
            None,
            Some(FaultKind::DropAfterEffect),
            false,
        );
        collector.record(Kind::Batch, Some(200), None, false);
        let mut stats = collector.snapshot();
        stats.resets_per_device.insert("a".into(), 2);
        stats.resets_per_device.insert("b".into(), 1);
        stats.resets_per_device.insert("c".into(), 2);
        stats.resets_over_standing.insert("a".into(), 1);
        assert_eq!(stats.total_requests(), 3);
        assert_eq!(stats.devices_reset_more_than_once(), vec!["a", "c"]);
        let text = stats.render();
        assert!(
            text.contains("requests:         3 (batch 1, resetPasscode 3)"),
            "{text}"
        );
        assert!(
            text.contains("429 answers:      1 (1 from the limits, 0 injected)"),
            "{text}"
        );
        assert!(text.contains("drop-after 1"), "{text}");
        assert!(text.contains("resets:           5 on 3 devices"), "{text}");
        assert!(
            text.contains(
                "reset more than once (all runs together, retries of failed resets included): 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("reset again while the last reset was pending or done (a second passcode; a run sends one only with --reset-again): 1: a (2)\n"),
            "{text}"
        );
    }

    #[test]
    fn revocations_have_their_own_lines_only_when_some_were_sent() {
        let mut stats = SimStats::default();
        stats.resets_per_device.insert("a".into(), 1);
        assert!(!stats.render().contains("revocations"));
        stats
            .revocations_per_user
            .insert("ada@contoso.com".into(), 2);
        stats
            .revocations_per_user
            .insert("bo@contoso.com".into(), 1);
        assert_eq!(
            stats.users_revoked_more_than_once(),
            vec!["ada@contoso.com"]
        );
        let text = stats.render();
        assert!(
            text.contains("  revocations:      3 on 2 users (sign-in sessions)\n"),
            "{text}"
        );
        assert!(
            text.contains("  users revoked more than once (all runs together, retries included): 1: ada@contoso.com (2)\n"),
            "{text}"
        );
    }

    #[test]
    fn locks_and_rotations_have_their_own_lines_only_when_some_were_sent() {
        let mut stats = SimStats::default();
        stats.resets_per_device.insert("a".into(), 1);
        let text = stats.render();
        assert!(!text.contains("remote locks") && !text.contains("key rotations"));
        stats.rotations_per_device.insert("a".into(), 2);
        stats.rotations_over_standing.insert("a".into(), 1);
        stats.locks_per_device.insert("b".into(), 1);
        assert_eq!(stats.devices_rotated_more_than_once(), vec!["a"]);
        assert!(stats.devices_locked_more_than_once().is_empty());
        assert!(stats.devices_reset_more_than_once().is_empty());
        let text = stats.render();
        assert!(
            text.contains("  resets:           1 on 1 devices\n"),
            "{text}"
        );
        assert!(
            text.contains("  remote locks:     1 on 1 devices\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  locked more than once (all runs together, retries of failed locks included): 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  key rotations:    2 on 1 devices\n"),
            "{text}"
        );
        assert!(
            text.contains("  rotated again while the last rotation was pending or done (a second new recovery key): 1: a (2)\n"),
            "{text}"
        );
    }
}
