//! The engine: one planned device in, its final report row and [`Fate`] out.
//!
//! For each device: find it in Graph when the plan says so (and judge its live facts),
//! make sure no other row of this run already claimed it, record the claim in the
//! ledger, then send `resetPasscode`, paced by the shared limiters and the shared pause,
//! each send recorded in the ledger before it leaves. A failed call is data for the
//! report, never an error that stops other devices (oha's collector design); only a
//! missing permission, a broken sign-in, an unwritable record or an interruption stops
//! the run.
//!
//! A send whose fate is unknown (timeout, lost connection, 5xx) is settled by one
//! policy, [`Engine::settle`], in the run, after an interrupt and on resume alike.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::graph::paging::{self, Paging};
use crate::graph::{ActionResult, CallError, Connection, GraphApi, ManagedDevice, Reply};
use crate::pacing::{AbortReason, Budget, Counters, Failure, Pacer, Settings, Step};
use crate::planner::Work;
use crate::report::{Outcome, ReportRow};
use crate::rules::{Action, Family};

use super::ledger::{Claim, Fate, Ledger, OpenSends, RowKey};

mod claims;
pub(super) mod intune_state;
pub(super) mod inventory;
#[cfg(test)]
mod listing_tests;
mod lookup;
mod settle;
#[cfg(test)]
mod tests;
mod users;

pub(super) use lookup::Listing;
use lookup::Live;

use claims::Claims;

pub struct Engine<G> {
    /// Every request goes through it: limiters, the shared pause, the retry policy.
    /// Shared with `run --follow`'s reads while the run sends (issue 19).
    pacer: Arc<Pacer<G>>,
    /// Intune ids acted on in this run, and the row that claimed each: a serial-number
    /// row that resolves to a device another row names by id is a duplicate. A resumed
    /// run starts with every claim its ledger holds.
    claimed: Mutex<Claims>,
    /// The run's durable record (see [`super::ledger`]); `None` for `status`.
    ledger: Option<Arc<Ledger>>,
    /// The tenant's devices, read once when the job needs many lookups.
    inventory: std::sync::OnceLock<inventory::TenantIndex>,
    /// Devices a user, group or filter listing gave with their facts, by lowercase
    /// Intune id: each is judged by them once, instead of being read again.
    listed: Mutex<std::collections::HashMap<String, ManagedDevice>>,
    /// `plan --live`: resolve, judge and claim, but never send.
    dry: bool,
    /// How long a finished reset in Intune's record keeps a device from another
    /// ([`intune_state::RECENT_RESET`]); `None` with `--reset-again`.
    recent_reset: Option<std::time::Duration>,
    /// Lost answers being settled now: the progress bar says so.
    settling: settle::Settling,
    /// The tenant this engine's sign-in acts in (its id, lower case, and any other
    /// name the run gave it: its domain): a row naming another tenant is never acted
    /// on here. `None`: not known (tests, `status`).
    tenant: Option<Vec<String>>,
    /// A run across several tenants names the tenant in its rows' words (issue 22).
    label: Option<String>,
}

/// What the ledger knew of a row before this run (`--resume`).
#[derive(Debug, Clone, Default)]
pub struct Prior {
    /// The device the row claimed, and the live facts it was judged by: it acts on
    /// that device again, without a new lookup.
    pub claim: Option<Claim>,
    /// Resets sent whose fate is unknown: settled before anything is sent.
    pub open: Option<OpenSends>,
    /// Resets sent for the row by earlier runs.
    pub sends: u32,
}

/// A device's end in this run: its report row, and whether it is done.
#[derive(Debug, Clone)]
pub struct Done {
    pub row: ReportRow,
    pub fate: Fate,
}

/// How a device's processing ended, before it becomes a report row.
struct End {
    failure: Failure,
    fate: Fate,
    /// Resets sent for the row, over every run.
    attempts: u32,
    /// What Graph said of a looked-up device, for the report.
    live: Option<Box<Live>>,
}

impl End {
    /// Failed and not-attempted rows are not done: nothing reached Graph or Graph
    /// changed nothing, so a resume sends them. Every other outcome is final.
    fn new(outcome: Outcome, reason: &'static str, detail: impl Into<String>) -> End {
        Failure::new(outcome, reason, detail).into()
    }

    fn from_error(outcome: Outcome, reason: &'static str, e: &CallError) -> End {
        Failure::from_error(outcome, reason, e).into()
    }

    /// A reset may have landed: not done, and settled before anything is sent again.
    fn unknown(mut self) -> End {
        self.fate = Fate::Unknown;
        self
    }
}

impl From<Failure> for End {
    fn from(failure: Failure) -> End {
        let fate = match failure.outcome {
            Outcome::Failed | Outcome::NotAttempted => Fate::Unchanged,
            _ => Fate::Final,
        };
        End {
            failure,
            fate,
            attempts: 0,
            live: None,
        }
    }
}

impl<G: GraphApi> Engine<G> {
    pub fn new(graph: G, settings: Settings) -> Engine<G> {
        Engine::on(Arc::new(Pacer::new(graph, settings)))
    }

    /// An engine whose requests go through `pacer`, with whatever else shares it.
    pub fn on(pacer: Arc<Pacer<G>>) -> Engine<G> {
        Engine {
            pacer,
            claimed: Mutex::new(Claims::default()),
            ledger: None,
            inventory: std::sync::OnceLock::new(),
            listed: Mutex::new(std::collections::HashMap::new()),
            dry: false,
            recent_reset: Some(intune_state::RECENT_RESET),
            settling: settle::Settling::default(),
            tenant: None,
            label: None,
        }
    }

    /// Acts only on rows of the tenant `who` signed in to (rows naming no tenant are
    /// this tenant's).
    pub fn in_tenant(mut self, who: Option<&crate::graph::SignedIn>) -> Engine<G> {
        self.tenant = who.map(|w| vec![w.tenant.trim().to_ascii_lowercase()]);
        self
    }

    /// One tenant of a run across several (issue 22): rows may name it by any of
    /// `names` (its id, its domain), and its rows say which tenant they are about.
    pub fn one_of_many(mut self, label: &str, names: &[String]) -> Engine<G> {
        let mut known = self.tenant.take().unwrap_or_default();
        known.extend(names.iter().map(|n| n.trim().to_ascii_lowercase()));
        self.tenant = Some(known);
        self.label = Some(label.to_owned());
        self
    }

    /// The final row of a row naming another tenant than this engine's, before anything
    /// is read for it (its users, groups and filters are not listed here either).
    pub fn refused_here(&self, row: &ReportRow, work: &Work) -> Option<ReportRow> {
        let end = self.other_tenant(work)?;
        Some(self.report_row(row.clone(), end, SystemTime::now()))
    }

    /// The end of a row that names another tenant than this engine's: not sent here.
    fn other_tenant(&self, work: &Work) -> Option<End> {
        let (Some(named), Some(names)) = (&work.tenant, &self.tenant) else {
            return None;
        };
        if names.contains(named) {
            return None;
        }
        let here = names.first().map(String::as_str).unwrap_or_default();
        let by_domain = if named.contains('.') {
            " (a tenant named by its domain is not matched to the id of the tenant signed in to: give its id)"
        } else {
            ""
        };
        Some(End::new(
            Outcome::Ineligible,
            "other_tenant",
            format!(
                "the row names tenant {named}, and this run signed in to tenant {here}{by_domain}; nothing was sent. Run it signed in to that tenant, or with several: --tenant given for each, --tenants FILE, or no tenant configured (no --tenant, no AZURE_TENANT_ID), and the run signs in to every tenant its rows name"
            ),
        ))
    }

    /// `--reset-again`: a reset Intune shows `done` no longer keeps a device from
    /// another (one still pending or active always does).
    pub fn reset_again(mut self, again: bool) -> Engine<G> {
        self.recent_reset = (!again).then_some(intune_state::RECENT_RESET);
        self
    }

    /// An interrupted run of the same job was pausing every worker until `until`
    /// (a 429), and sent writes at `sends` (wall clock, oldest first): this run waits
    /// the pause out and counts those writes against Intune's window.
    pub fn carry_over(&self, until: Option<SystemTime>, sends: &[SystemTime]) {
        if let Some(until) = until {
            self.pacer.hold_until(until);
        }
        self.pacer.prime_writes(sends);
    }

    /// Reads only: a row that would be reset ends `planned` (`plan --live`).
    pub fn dry(mut self) -> Engine<G> {
        self.dry = true;
        self
    }

    /// Reads the tenant's managed devices once, so that lookups join locally; the
    /// number of devices and pages read, or why the listing failed (lookups then go
    /// one `$filter` per row).
    pub async fn read_inventory(&self) -> Result<(usize, u64), String> {
        let mut devices = Vec::new();
        let all = crate::graph::PageRequest::All {
            select: crate::graph::RULE_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let pages = self
            .each_listed_device(
                all,
                Paging::new("the tenant's managed devices", paging::TENANT_PAGES),
                |d| devices.push(d),
            )
            .await
            .map_err(|f| f.detail)?;
        let index = inventory::TenantIndex::from_devices(devices, pages);
        let counts = (index.len(), index.pages);
        let _ = self.inventory.set(index);
        Ok(counts)
    }

    /// Devices a listing gave with the facts the rules need (the expansion of users,
    /// groups and filters before the question): each is judged by them when it is
    /// processed, instead of being read once more.
    pub fn remember_listed(&self, devices: Vec<ManagedDevice>) {
        let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        for d in devices {
            listed.insert(d.id.to_ascii_lowercase(), d);
        }
    }

    /// The listed facts of `id`, once (each device is processed once).
    pub(super) fn take_listed(&self, id: &str) -> Option<ManagedDevice> {
        self.listed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id.to_ascii_lowercase())
    }

    /// What the run sent, for the summary.
    pub fn counters(&self) -> &Counters {
        &self.pacer.counters
    }

    /// What the run waits for now: lost answers being settled, Graph's 429 pause.
    pub fn waiting(&self) -> super::progress::Waiting {
        let (settling, settle_until) = self.settling.now();
        let paused_until =
            self.pacer.cooldown.until().map(|u| {
                SystemTime::now() + u.saturating_duration_since(tokio::time::Instant::now())
            });
        super::progress::Waiting {
            settling,
            settle_until,
            paused_until,
        }
    }

    /// Records every send, and every 429 pause (so a resume started during it waits
    /// it out), in `ledger`.
    pub fn with_ledger(mut self, ledger: Arc<Ledger>) -> Self {
        let pauses = ledger.clone();
        self.pacer.on_pause(Box::new(move |until| {
            // After the run's end (a 429 while `--follow` reads) there is nothing to
            // record: the session is closed.
            if pauses.is_closed() {
                return;
            }
            // A failed write breaks the ledger: the next send's record fails and stops
            // the run, so nothing leaves unrecorded.
            if let Err(e) = pauses.pause(until) {
                tracing::warn!("the run's ledger cannot record a pause ({e})");
            }
        }));
        self.ledger = Some(ledger);
        self
    }

    /// Records that `key` holds `device` (a resumed run, from its ledger), so no other
    /// row acts on it.
    pub fn restore_claim(&self, device: &str, action: &str, key: RowKey, source: &str) {
        let family = Action::parse(action).map_or(Family::Passcode, Action::family);
        let mut claims = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        // An index that cannot be read back stays lost: every later claim fails, and
        // its row is not sent ([`Engine::claim`]).
        let _ = claims.claim(&claim_key(device, family), key, source);
    }

    /// Stops the run; the first reason given is the one reported.
    pub fn abort(&self, reason: AbortReason) {
        self.pacer.abort(reason);
    }

    pub fn is_aborted(&self) -> bool {
        self.pacer.is_aborted()
    }

    pub fn abort_reason(&self) -> Option<AbortReason> {
        self.pacer.abort_reason()
    }

    /// The row for a device that was not reached because the run stopped.
    pub fn not_attempted(&self, mut row: ReportRow) -> ReportRow {
        let why = self
            .abort_reason()
            .map(|r| r.sentence())
            .unwrap_or_else(|| "the run stopped".into());
        let why = match &self.label {
            Some(tenant) => format!("in tenant {tenant}, {why}"),
            None => why,
        };
        row.outcome = Outcome::NotAttempted;
        row.reason = "run_aborted".into();
        row.detail = format!("not attempted: {why}; `--resume` sends it").into();
        row
    }

    /// Everything for one planned device; always returns its row and fate. `prior`:
    /// what the ledger of an interrupted run says of the row (`--resume`). The report
    /// row is built once, from the planned row (or the claimed one) and how it ended.
    pub async fn process(&self, key: RowKey, row: ReportRow, work: Work, prior: Prior) -> Done {
        let started = SystemTime::now();
        let (base, end) = match prior.claim {
            Some(claim) => {
                let end = match Action::parse(&claim.action) {
                    Some(action) => {
                        self.reset(key, &claim.device, action, prior.open, prior.sends)
                            .await
                    }
                    None => End::new(
                        Outcome::Failed,
                        "outcome_unknown",
                        format!("the ledger names an action '{}' this tool does not know", claim.action),
                    )
                    .unknown(),
                };
                (claim.report, end)
            }
            // Claims are written before sends, in one file, by one writer: a send
            // without a claim cannot be in a ledger this tool wrote.
            None if prior.open.is_some() => (
                row,
                End::new(
                    Outcome::Failed,
                    "outcome_unknown",
                    "the ledger shows an action sent for this row but not for which device; not sent again. Check it with `intune-reset status`",
                )
                .unknown(),
            ),
            None if self.is_aborted() => (row, End::new(Outcome::NotAttempted, "run_aborted", "")),
            None if let Some(end) = self.other_tenant(&work) => (row, end),
            None => {
                let end = self.act(key, &row, &work).await;
                (row, end)
            }
        };
        let fate = end.fate;
        Done {
            row: self.report_row(base, end, started),
            fate,
        }
    }

    /// The row as it ends: the base row, the live facts, then the outcome.
    fn report_row(&self, base: ReportRow, end: End, started: SystemTime) -> ReportRow {
        let End {
            failure,
            attempts,
            live,
            ..
        } = end;
        let row = match live {
            Some(live) => with_live(base, &live),
            None => base,
        };
        if failure.outcome == Outcome::NotAttempted {
            return self.not_attempted(row);
        }
        let mut detail = failure.detail;
        // A succeeded row keeps what the plan said the device will experience (the
        // reset token to activate, the passcode policy needed).
        if failure.outcome == Outcome::Succeeded
            && let Some(caveat) = crate::rules::eligible_detail(&row.platform, &row.action)
        {
            detail = format!("{detail}; on this platform {caveat}");
        }
        ReportRow {
            outcome: failure.outcome,
            reason: failure.reason.into(),
            detail: detail.into(),
            http_status: failure.status.or(row.http_status),
            request_id: failure.request_id.unwrap_or(row.request_id),
            client_request_id: failure.client_request_id.unwrap_or(row.client_request_id),
            attempts: attempts.max(row.attempts),
            started_at: timestamp(started),
            finished_at: timestamp(SystemTime::now()),
            ..row
        }
    }

    async fn act(&self, key: RowKey, row: &ReportRow, work: &Work) -> End {
        let mut end = self.act_on(key, row, work).await;
        // An Intune id Graph does not know: say which column it was read from (an
        // Entra admin center file's deviceId, taken for Intune's, ends here).
        if end.failure.outcome == Outcome::NotFound
            && let (crate::planner::Identity::Id(id), Some(header)) =
                (&work.identity, &work.id_header)
        {
            end.failure.detail = format!(
                "Intune has no managed device with the id {id}, read from the column '{header}' as the Intune device id; if the file comes from the Entra admin center or holds Entra ids, that column is not Intune's ({})",
                end.failure.detail
            );
        }
        end
    }

    async fn act_on(&self, key: RowKey, row: &ReportRow, work: &Work) -> End {
        if work.choice.family().on_users() {
            return self.act_on_user(key, row, work).await;
        }
        let found = match self.resolve(work).await {
            Err(end) => return self.claim_ineligible(key, row, work.choice.family(), end),
            Ok(found) => found,
        };
        let (id, action) = (found.id.clone(), found.action);
        let mut end = self
            .claim_and_reset(key, row, found.live.as_deref(), &id, action)
            .await;
        end.live = found.live;
        end
    }

    /// A device its live facts make ineligible is claimed too: a second row reaching it
    /// (a user list and a group naming one user) is its `duplicate`, not a second
    /// `ineligible` row for one device.
    fn claim_ineligible(&self, key: RowKey, row: &ReportRow, family: Family, end: End) -> End {
        let Some(live) = end
            .live
            .as_ref()
            .filter(|l| end.failure.outcome == Outcome::Ineligible && !l.device.id.is_empty())
        else {
            return end;
        };
        let id = live.device.id.clone();
        let earlier = match self.claim(&id, family, key, row) {
            Ok(earlier) => earlier,
            Err(lost) => return lost,
        };
        match earlier {
            Some(earlier) => End {
                live: end.live,
                ..End::new(
                    Outcome::Duplicate,
                    "duplicate_device",
                    format!("the same Intune device ({id}) as {earlier}, which is handled there"),
                )
            },
            None => end,
        }
    }

    /// Claims `id` for `key`: the earlier row that holds it, if any. When the claims'
    /// temporary file can no longer be read, the row ends `failed`, not sent: whether
    /// another row holds the device is unknown.
    fn claim(
        &self,
        id: &str,
        family: Family,
        key: RowKey,
        row: &ReportRow,
    ) -> Result<Option<String>, End> {
        let mut claims = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        claims
            .claim(&claim_key(id, family), key, &row.source)
            .map_err(|e| {
                End::new(
                    Outcome::Failed,
                    "internal_error",
                    format!(
                        "not sent: the run's index of the devices it acts on could not be read back ({e}), so whether another row holds this device is unknown; `--resume` sends it"
                    ),
                )
            })
    }

    async fn claim_and_reset(
        &self,
        key: RowKey,
        row: &ReportRow,
        live: Option<&Live>,
        id: &str,
        action: Action,
    ) -> End {
        let earlier = match self.claim(id, action.family(), key, row) {
            Ok(earlier) => earlier,
            Err(lost) => return lost,
        };
        if let Some(earlier) = earlier {
            return End::new(
                Outcome::Duplicate,
                "duplicate_device",
                format!("the same Intune device ({id}) as {earlier}, which is handled there"),
            );
        }
        if self.dry {
            return End::new(
                Outcome::Planned,
                "",
                format!(
                    "would {} (Intune id {id}), judged by its live facts in Graph; plan --live sends nothing",
                    action.as_str()
                ),
            );
        }
        if let Some(ledger) = &self.ledger {
            let claim = Claim {
                device: id.to_owned(),
                action: action.as_str().to_owned(),
                report: match live {
                    Some(live) => with_live(row.clone(), live),
                    None => row.clone(),
                },
            };
            if let Err(e) = ledger.claim(key, &claim) {
                return self.unrecorded(ledger, e);
            }
        }
        self.reset(key, id, action, None, 0).await
    }

    /// The ledger cannot be written: the run stops, and this row sends nothing.
    fn unrecorded(&self, ledger: &Ledger, e: std::io::Error) -> End {
        self.abort(ledger.unwritable(&e));
        End::new(
            Outcome::Failed,
            "ledger_unwritable",
            format!("the run's ledger cannot be written ({e}); nothing was sent for this device"),
        )
    }

    /// Sends `resetPasscode`, never twice unless Graph proved the earlier sends did not
    /// land. `open`: sends of an interrupted run whose fate is unknown; `earlier`: how
    /// many sends earlier runs made (for the report's `attempts`).
    async fn reset(
        &self,
        key: RowKey,
        id: &str,
        action: Action,
        open: Option<OpenSends>,
        earlier: u32,
    ) -> End {
        let mut sent = Sent::default();
        // Intune's own record first, unless this row's earlier sends are to be settled
        // (settling reads the same record, and tells ours from any other).
        if open.is_none()
            && let Err(mut end) = self.intune_allows(id, action.family()).await
        {
            end.attempts = earlier;
            return end;
        }
        let mut end = self
            .send_until_known(key, id, action, open, &mut sent)
            .await;
        // The last answer Graph gave, when the end has none of its own.
        if let Some(last) = &sent.last {
            end.failure.status = end.failure.status.or(last.status);
            if end.failure.client_request_id.is_none() {
                end.failure.client_request_id = Some(last.client_request_id.clone());
            }
        }
        end.attempts = earlier + sent.count;
        end
    }

    async fn send_until_known(
        &self,
        key: RowKey,
        id: &str,
        action: Action,
        mut open: Option<OpenSends>,
        sent: &mut Sent,
    ) -> End {
        let mut connection = Connection::Pooled;
        let mut renewals = 0;
        loop {
            // A send whose fate is unknown is settled before anything else; an abort
            // does not skip this (its reads go on after an interrupt).
            if let Some(sends) = open {
                match self.settle(id, action.family(), sends).await {
                    Ok(Some(entry)) => {
                        self.pacer
                            .counters
                            .confirmed_by_results
                            .fetch_add(1, Ordering::Relaxed);
                        return confirmed(&entry, sent.last.as_ref(), sends, action);
                    }
                    // Graph has no reset from those sends: sending now cannot make a
                    // second passcode.
                    Ok(None) => {
                        open = None;
                        connection = Connection::Fresh;
                    }
                    Err(failure) => {
                        return unsettled(sent.last.as_ref(), &failure.detail, sends, action);
                    }
                }
            }
            if sent.count >= self.pacer.settings.max_attempts {
                return gave_up(sent.count, sent.last.take());
            }
            let budget = budget(action);
            let slot = match self.pacer.gate_in(budget, true, false).await {
                Ok(slot) => slot,
                Err(failure) => return failure.into(),
            };
            let recorded = SystemTime::now();
            if let Some(ledger) = &self.ledger {
                let writer = ledger.clone();
                let device = id.to_owned();
                let written =
                    tokio::task::spawn_blocking(move || writer.send(key, &device, recorded))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
                if let Err(e) = written {
                    return self.unrecorded(ledger, e);
                }
            }
            // A 429 that came during the ledger's sync pauses this send too; a stop
            // meanwhile means it never leaves (the row is then settled unchanged).
            if let Err(failure) = self.pacer.before_departure_in(budget).await {
                return failure.into();
            }
            sent.count += 1;
            self.pacer.counters.posts.fetch_add(1, Ordering::Relaxed);
            // The window counts from when the request leaves, after the ledger's sync.
            self.pacer.departed_in(budget, slot);
            let (posted, left) = (SystemTime::now(), tokio::time::Instant::now());
            let error = match self
                .pacer
                .graph
                .device_action(id, action.family(), connection)
                .await
            {
                Ok(reply) => {
                    self.pacer.succeeded_in(budget);
                    return accepted(reply, sent.count, sent.last.as_ref(), action);
                }
                Err(e) => e,
            };
            match self.pacer.react_in(budget, &error, true, &mut renewals) {
                Step::Again(fresh, wait) => {
                    if fresh {
                        connection = Connection::Fresh;
                    }
                    let backoff = fresh.then(|| {
                        self.pacer
                            .settings
                            .backoff
                            .full_jitter(sent.count.min(4), &mut rand::rng())
                    });
                    if let Some(wait) = wait.or(backoff) {
                        tokio::time::sleep(wait).await;
                    }
                }
                Step::Stop(failure) => {
                    sent.last = Some(error);
                    return failure.into();
                }
                Step::Verify => open = Some(OpenSends::sent_now(recorded, posted, left)),
            }
            sent.last = Some(error);
        }
    }
}

/// Graph's record that settles a lost answer of `action`.
fn record_name(action: Action) -> &'static str {
    if action.family().on_users() {
        "the user's signInSessionsValidFromDateTime"
    } else {
        "deviceActionResults"
    }
}

/// Whose limits an action's POST counts against: a user's action is Entra's, not
/// Intune's.
fn budget(action: Action) -> Budget {
    if action.family().on_users() {
        Budget::Directory
    } else {
        Budget::Intune
    }
}

/// What a claim holds: a device for one action family. A passcode claim is the bare
/// Intune id (as ledgers written before issue 21 hold it); a lock or a rotation of the
/// same device is another claim, so one device takes each action once.
fn claim_key(id: &str, family: Family) -> String {
    let id = id.to_ascii_lowercase();
    match family {
        Family::Passcode => id,
        other => format!("{}:{id}", other.as_str()),
    }
}

/// The sends of one device in this run.
#[derive(Default)]
struct Sent {
    count: u32,
    /// The last failed answer, if any.
    last: Option<CallError>,
}

/// The row with what Graph said of the device: its Intune id, the facts the file left
/// empty, the platform and action its live facts gave.
fn with_live(mut row: ReportRow, live: &Live) -> ReportRow {
    lookup::fill_from_live(&mut row, &live.device);
    if let Some(p) = live.platform {
        row.platform = p.as_str().into();
    }
    if let Some(a) = live.action {
        row.action = match live.platform {
            Some(p) => a.effect(p),
            None => a.as_str(),
        }
        .into();
    }
    row
}

/// Graph took the reset (204): queued for the device's next check-in.
fn accepted(reply: Reply<()>, sends: u32, lost: Option<&CallError>, action: Action) -> End {
    let resent = match lost {
        Some(e) => format!(
            " on attempt {sends}, after an earlier answer was lost ({}) and {} showed no {} from it",
            e.message,
            record_name(action),
            action.family().noun()
        ),
        None if sends > 1 => format!(" on attempt {sends}"),
        None => String::new(),
    };
    let mut end = End::new(
        Outcome::Succeeded,
        "",
        format!(
            "Graph accepted the action ({}){resent}: {}",
            reply.status,
            effect(action)
        ),
    );
    end.failure.status = Some(reply.status);
    end.failure.request_id = reply.request_id;
    end.failure.client_request_id = Some(reply.client_request_id);
    end
}

/// `deviceActionResults` shows a reset from sends whose answer was lost: done, and
/// not sent again.
/// `lost`: this run's lost answer; `None` while an interrupted run's sends are settled.
fn confirmed(
    entry: &ActionResult,
    lost: Option<&CallError>,
    sent: OpenSends,
    action: Action,
) -> End {
    let state = entry.action_state.as_deref().unwrap_or("unknown");
    let started = entry.start_date_time.as_deref().unwrap_or("?");
    let noun = action.family().noun();
    // What Graph's record shows: Entra keeps no action state of a revocation, only
    // when the user's sessions were last revoked.
    let shows = if action.family().on_users() {
        format!("Entra shows the user's sessions revoked at {started}")
    } else {
        format!("deviceActionResults shows the {noun} (state {state}, started {started})")
    };
    let mut end = match lost {
        Some(e) => {
            let mut end = End::from_error(Outcome::Succeeded, "", e);
            end.failure.detail = format!(
                "the answer was lost ({}), but {shows}: confirmed, not sent again; {}",
                e.message,
                effect(action)
            );
            end
        }
        None => End::new(
            Outcome::Succeeded,
            "",
            format!(
                "confirmed on resume: an interrupted run sent a {noun} at {} and {shows}; not sent again; {}",
                timestamp(sent.first),
                effect(action)
            ),
        ),
    };
    end.fate = Fate::Final;
    end
}

/// Sends whose fate is unknown, and `deviceActionResults` could not be read: nothing
/// is sent again, and the row stays open for `--resume` to settle.
fn unsettled(lost: Option<&CallError>, failure: &str, sent: OpenSends, action: Action) -> End {
    let noun = action.family().noun();
    let record = record_name(action);
    let end = match lost {
        Some(e) => {
            let mut end = End::from_error(Outcome::Failed, "outcome_unknown", e);
            end.failure.detail = format!(
                "the answer was lost ({}) and {record} could not be read ({failure}); not sent again, to avoid a second {noun}. `--resume` settles it before anything is sent",
                e.message
            );
            end
        }
        None => End::new(
            Outcome::Failed,
            "outcome_unknown",
            format!(
                "an interrupted run sent a {noun} at {} and {record} could not be read ({failure}); not sent again. `--resume` settles it before anything is sent",
                timestamp(sent.first)
            ),
        ),
    };
    end.unknown()
}

/// Every attempt was used up.
fn gave_up(sends: u32, last: Option<CallError>) -> End {
    match last {
        Some(e) => {
            let mut end = End::from_error(Outcome::Failed, "gave_up", &e);
            end.failure.detail = format!("gave up after {sends} attempts; the last answer: {e}");
            end
        }
        None => End::new(
            Outcome::Failed,
            "gave_up",
            format!("gave up after {sends} attempts"),
        ),
    }
}

/// What the device will experience, for the report.
fn effect(action: Action) -> &'static str {
    match action {
        Action::RemovePasscode => "the passcode is removed or reset on the device's next check-in",
        Action::ResetPin => "a new PIN is generated on the device's next check-in",
        Action::RemoteLock => "the device locks on its next check-in",
        Action::RotateBitLockerKeys => {
            "the device rotates its BitLocker recovery password on its next check-in"
        }
        Action::RevokeSessions => {
            "the user's refresh tokens and session cookies stop working within minutes; Entra keeps no action state to follow"
        }
    }
}

/// A report's and the ledger's time: RFC 3339, UTC, milliseconds (the ledger's own).
pub use crate::ledger::timestamp;
