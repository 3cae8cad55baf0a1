//! Intune's audit trail of the actions the simulator carries out: one record per
//! `resetPasscode`, `remoteLock` or `rotateBitLockerKeys` that took effect (alone or
//! inside a `$batch`, its answer sent or dropped after the effect), none for a request
//! refused before it took effect. Graph
//! shows each record twice: in `auditEvents` (v1.0 and beta) and in the beta
//! `remoteActionAudits` report (docs/graph.md, "Audit").
//!
//! - `query`: the lists' `$filter`, `$top` and `$skiptoken`.
//! - `lists`: the two lists as Graph answers them, `--deny-audit-read`'s 403 and
//!   `--audit-delay` (a record shows only once that much time has passed since its
//!   action: Intune's audit appears late, and nobody documents how late).
//!
//! A record keeps who sent the action (the token's app, and user when delegated) and
//! the request's `client-request-id` as its `correlationId`, which Microsoft documents
//! as "the client request Id that is used to correlate activity within the system"
//! (<https://learn.microsoft.com/graph/api/resources/intune-auditing-auditevent>); no
//! tenant has confirmed that it is the header a client sends, so `--audit-correlation
//! mismatch` gives every record a fresh one instead, for clients to fall back on the
//! device, the action and the time.

mod lists;
mod query;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::clock::SimClock;
use super::graph::Caller;
use super::inventory::Inventory;
use crate::rules::Family;

pub use lists::{events, remote_actions};

/// Whether audit records carry the `client-request-id` of the request that carried the
/// action out (`--audit-correlation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditCorrelation {
    /// The request's `client-request-id` when it sent a GUID, else a fresh GUID.
    #[default]
    Match,
    /// A fresh GUID every time, matching nothing a client sent.
    Mismatch,
}

/// One action carried out, as Intune audits it.
#[derive(Debug, Clone)]
struct AuditRecord {
    /// The `auditEvent`'s id; the `remoteActionAudit`'s is derived from it.
    id: Uuid,
    /// The device, by inventory index.
    device: u32,
    /// Which action: a reset, a lock or a key rotation.
    action: Family,
    /// Which of the device's actions of its kind it was (1 for the first): decides how
    /// it ends, which `remoteActionAudits`' `actionState` shows.
    nth: u32,
    /// When the action took effect (the simulator's wall clock).
    at: SystemTime,
    /// The `correlationId`.
    correlation_id: Uuid,
    /// The client id of the token that sent it.
    app: Arc<str>,
    /// The signed-in user of a delegated token; `None` for app-only.
    user: Option<Arc<str>>,
}

impl AuditRecord {
    /// The `remoteActionAudit` id: another GUID, stable for the record.
    fn remote_id(&self) -> Uuid {
        Uuid::from_u128(self.id.as_u128() ^ 0x5a5a_5a5a_0000_0000_a5a5_a5a5_0000_0000)
    }
}

/// An audit record as a rehearsal's saved tenant keeps it (`<report>.sim.json`), so
/// the follow-ups of a rehearsal read the audit of its actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedAudit {
    /// The `auditEvent`'s id.
    pub id: String,
    /// The Intune managed device id.
    pub device: String,
    /// The action's Graph name (`resetPasscode`, `remoteLock`, `rotateBitLockerKeys`);
    /// absent from tenants saved when the simulator served resets alone.
    #[serde(default = "reset_name")]
    pub action: String,
    /// Which of the device's actions of that kind it was (1 for the first).
    pub nth: u32,
    /// RFC 3339, when the action took effect.
    pub at: String,
    pub correlation_id: String,
    /// The client id of the token that sent it.
    pub application_id: String,
    /// The signed-in user's UPN; absent for app-only tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// What a saved record without `action` was: a reset.
fn reset_name() -> String {
    Family::Passcode.graph_name().to_owned()
}

/// The action a saved record names.
fn action_named(name: &str) -> Option<Family> {
    Family::ALL.into_iter().find(|f| f.graph_name() == name)
}

/// The audit trail of one simulator.
#[derive(Debug)]
pub struct AuditTrail {
    /// `--audit-correlation`.
    correlation: AuditCorrelation,
    /// In the order the actions took effect, which is time order: the time is taken
    /// under this lock. Pages are ranges of it, so a record appended while a client
    /// pages shows on a later page, never shifts one already served.
    records: Mutex<Vec<AuditRecord>>,
}

impl AuditTrail {
    pub fn new(correlation: AuditCorrelation) -> AuditTrail {
        AuditTrail {
            correlation,
            records: Mutex::new(Vec::new()),
        }
    }

    /// Carries an action out through `act`, at the clock's time read under the trail's
    /// lock, and records it; `act` returns which of the device's actions of that kind
    /// it is.
    pub fn record(
        &self,
        device: u32,
        action: Family,
        clock: &SimClock,
        caller: &Caller,
        act: impl FnOnce(SystemTime) -> u32,
    ) {
        let correlation_id = match self.correlation {
            AuditCorrelation::Match => caller
                .client_request_id
                .and_then(|c| Uuid::parse_str(c.trim()).ok())
                .unwrap_or_else(Uuid::new_v4),
            AuditCorrelation::Mismatch => Uuid::new_v4(),
        };
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let at = ticks(clock.wall());
        let nth = act(at);
        records.push(AuditRecord {
            id: Uuid::new_v4(),
            device,
            action,
            nth,
            at,
            correlation_id,
            app: Arc::from(caller.app),
            user: caller.user.map(Arc::from),
        });
    }

    /// Puts back the records a saved tenant kept; a record of a device the inventory
    /// does not hold, of an action the simulator does not know, or that cannot be read,
    /// is left out (as a saved reset is).
    pub fn restore(&self, inventory: &Inventory, saved: &[SavedAudit]) {
        let mut restored: Vec<AuditRecord> = saved
            .iter()
            .filter_map(|s| {
                Some(AuditRecord {
                    id: Uuid::parse_str(&s.id).ok()?,
                    device: inventory.find_id(&s.device)?,
                    action: action_named(&s.action)?,
                    nth: s.nth.max(1),
                    at: humantime::parse_rfc3339(&s.at).ok()?,
                    correlation_id: Uuid::parse_str(&s.correlation_id).ok()?,
                    app: Arc::from(s.application_id.as_str()),
                    user: s.user.as_deref().map(Arc::from),
                })
            })
            .collect();
        restored.sort_by_key(|r| r.at);
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        restored.append(&mut records);
        *records = restored;
    }

    /// Every record, to save with the tenant.
    pub fn saved(&self, inventory: &Inventory) -> Vec<SavedAudit> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records
            .iter()
            .filter_map(|r| {
                Some(SavedAudit {
                    id: r.id.to_string(),
                    device: inventory.device(r.device)?.id.to_string(),
                    action: r.action.graph_name().to_owned(),
                    nth: r.nth,
                    at: humantime::format_rfc3339_nanos(r.at).to_string(),
                    correlation_id: r.correlation_id.to_string(),
                    application_id: r.app.to_string(),
                    user: r.user.as_deref().map(str::to_owned),
                })
            })
            .collect()
    }

    /// Up to `top` records visible at `now` (their action `delay` or more ago) that
    /// `keep` accepts, from position `from` on; and where the next page starts, when
    /// there is one.
    fn page(
        &self,
        from: usize,
        top: usize,
        visible_at: Visibility,
        keep: impl Fn(&AuditRecord) -> bool,
    ) -> (Vec<AuditRecord>, Option<usize>) {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let mut page = Vec::new();
        for (position, record) in records.iter().enumerate().skip(from) {
            // In time order: once one is not visible yet, none after it is.
            if !visible_at.shows(record) {
                break;
            }
            if !keep(record) {
                continue;
            }
            if page.len() == top {
                return (page, Some(position));
            }
            page.push(record.clone());
        }
        (page, None)
    }
}

/// Which records a read sees: those whose action is `delay` or more before `now`.
#[derive(Debug, Clone, Copy)]
struct Visibility {
    now: SystemTime,
    delay: Duration,
}

impl Visibility {
    fn shows(&self, record: &AuditRecord) -> bool {
        self.now
            .duration_since(record.at)
            .is_ok_and(|since| since >= self.delay)
    }
}

/// `at` to the 100 ns Graph's timestamps resolve, so the time a list shows is the
/// record's own: `activityDateTime le <the time shown>` includes it.
fn ticks(at: SystemTime) -> SystemTime {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let extra = Duration::from_nanos(u64::from(since.subsec_nanos() % 100));
    at.checked_sub(extra).unwrap_or(at)
}

/// Graph's timestamps in lists: UTC with seven digits of fraction
/// (`2016-12-31T23:59:51.6363086Z`, as in Microsoft's samples).
fn timestamp(at: SystemTime) -> String {
    let nanos = humantime::format_rfc3339_nanos(at).to_string();
    // `...SS.nnnnnnnnnZ`: drop the last two digits of the nine.
    match nanos.len().checked_sub(3) {
        Some(cut) if nanos.ends_with('Z') => format!("{}Z", &nanos[..cut]),
        _ => nanos,
    }
}

#[cfg(test)]
mod tests;
