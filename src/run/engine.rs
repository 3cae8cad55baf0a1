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

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::graph::{ActionResult, CallError, Connection, GraphApi, Reply};
use crate::plan::Work;
use crate::report::{Outcome, ReportRow};
use crate::rules::Action;

use super::cooldown::Cooldown;
use super::ledger::{Claim, Fate, Ledger, OpenSends, RowKey};
use super::limiter::{WindowLimiter, acquire};
use super::reaction::{AbortReason, Reaction, reaction};

mod claims;
mod lookup;
mod settle;
#[cfg(test)]
mod tests;

pub use super::settings::Settings;
use claims::Claims;

/// What the run did, for the summary.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub posts: AtomicU64,
    pub throttled: AtomicU64,
    /// Resets whose answer was lost and that `deviceActionResults` proved done.
    pub confirmed_by_results: AtomicU64,
}

pub struct Engine<G> {
    graph: G,
    settings: Settings,
    writes: WindowLimiter,
    reads: WindowLimiter,
    any: WindowLimiter,
    pub cooldown: Cooldown,
    aborted: AtomicBool,
    abort_reason: Mutex<Option<AbortReason>>,
    /// Intune ids acted on in this run, and the row that claimed each: a serial-number
    /// row that resolves to a device another row names by id is a duplicate. A resumed
    /// run starts with every claim its ledger holds.
    claimed: Mutex<Claims>,
    pub counters: Counters,
    /// The run's durable record (see [`super::ledger`]); `None` for `status`.
    ledger: Option<Arc<Ledger>>,
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

/// Why [`Engine::action_results`] could not read a device.
#[derive(Debug, Clone)]
pub struct ReadFailure {
    /// `NotFound`: Graph has no such device (404); `NotAttempted`: the command stopped
    /// before the read; `Failed`: anything else, after the retries.
    pub outcome: Outcome,
    /// For people: Graph's message or the retries' story.
    pub detail: String,
}

/// How a device's processing ended, before it becomes a report row.
struct End {
    outcome: Outcome,
    reason: &'static str,
    detail: String,
    status: Option<u16>,
    request_id: Option<String>,
    client_request_id: Option<String>,
    fate: Fate,
}

impl End {
    /// Failed and not-attempted rows are not done: nothing reached Graph or Graph
    /// changed nothing, so a resume sends them. Every other outcome is final.
    fn new(outcome: Outcome, reason: &'static str, detail: impl Into<String>) -> End {
        let fate = match outcome {
            Outcome::Failed | Outcome::NotAttempted => Fate::Unchanged,
            _ => Fate::Final,
        };
        End {
            outcome,
            reason,
            detail: detail.into(),
            status: None,
            request_id: None,
            client_request_id: None,
            fate,
        }
    }

    fn from_error(outcome: Outcome, reason: &'static str, e: &CallError) -> End {
        End {
            status: e.status,
            request_id: e.request_id.clone(),
            client_request_id: Some(e.client_request_id.clone()),
            ..End::new(outcome, reason, e.to_string())
        }
    }

    /// A reset may have landed: not done, and settled before anything is sent again.
    fn unknown(mut self) -> End {
        self.fate = Fate::Unknown;
        self
    }
}

/// Newly fetched tokens one call may have refused before the run stops.
const MAX_TOKEN_RENEWALS: u32 = 3;

type CallFuture<'a, T> = Pin<Box<dyn Future<Output = Result<Reply<T>, CallError>> + Send + 'a>>;

impl<G: GraphApi> Engine<G> {
    pub fn new(graph: G, settings: Settings) -> Engine<G> {
        Engine {
            writes: WindowLimiter::new(settings.write_limit, settings.window, settings.write_rate),
            reads: WindowLimiter::new(settings.any_limit, settings.window, settings.read_rate),
            any: WindowLimiter::new(settings.any_limit, settings.window, 0.0),
            cooldown: Cooldown::new(settings.backoff),
            graph,
            settings,
            aborted: AtomicBool::new(false),
            abort_reason: Mutex::new(None),
            claimed: Mutex::new(Claims::default()),
            counters: Counters::default(),
            ledger: None,
        }
    }

    pub fn with_ledger(mut self, ledger: Arc<Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Records that `key` holds `device` (a resumed run, from its ledger), so no other
    /// row acts on it.
    pub fn restore_claim(&self, device: &str, key: RowKey, source: &str) {
        let mut claims = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        claims.claim(&device.to_ascii_lowercase(), key, source);
    }

    /// Stops the run; the first reason given is the one reported.
    pub fn abort(&self, reason: AbortReason) {
        let mut slot = self.abort_reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.aborted.store(true, Ordering::SeqCst);
    }

    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    pub fn abort_reason(&self) -> Option<AbortReason> {
        self.abort_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The row for a device that was not reached because the run stopped.
    pub fn not_attempted(&self, mut row: ReportRow) -> ReportRow {
        let why = self
            .abort_reason()
            .map(|r| r.sentence())
            .unwrap_or_else(|| "the run stopped".into());
        row.outcome = Outcome::NotAttempted;
        row.reason = "run_aborted".into();
        row.detail = format!("not attempted: {why}; `--resume` sends it").into();
        row
    }

    /// Everything for one planned device; always returns its row and fate. `prior`:
    /// what the ledger of an interrupted run says of the row (`--resume`).
    pub async fn process(&self, key: RowKey, row: ReportRow, work: Work, prior: Prior) -> Done {
        let started = SystemTime::now();
        let (mut row, end) = match prior.claim {
            Some(claim) => {
                let mut row = claim.report;
                row.started_at = timestamp(started);
                let end = match Action::parse(&claim.action) {
                    Some(action) => {
                        self.reset(key, &claim.device, action, &mut row, prior.open, prior.sends)
                            .await
                    }
                    None => End::new(
                        Outcome::Failed,
                        "outcome_unknown",
                        format!("the ledger names an action '{}' this tool does not know", claim.action),
                    )
                    .unknown(),
                };
                (row, end)
            }
            // Claims are written before sends, in one file, by one writer: a send
            // without a claim cannot be in a ledger this tool wrote.
            None if prior.open.is_some() => (
                row,
                End::new(
                    Outcome::Failed,
                    "outcome_unknown",
                    "the ledger shows a reset sent for this row but not for which device; not sent again. Check it with `intune-reset status`",
                )
                .unknown(),
            ),
            None => {
                let mut row = row;
                row.started_at = timestamp(started);
                let end = if self.is_aborted() {
                    End::new(Outcome::NotAttempted, "run_aborted", "")
                } else {
                    self.act(key, &mut row, &work).await
                };
                (row, end)
            }
        };
        if end.outcome == Outcome::NotAttempted {
            let mut row = self.not_attempted(row);
            row.started_at.clear();
            return Done {
                row,
                fate: end.fate,
            };
        }
        row.outcome = end.outcome;
        row.reason = end.reason.into();
        row.detail = end.detail.into();
        row.http_status = end.status.or(row.http_status);
        if let Some(id) = end.request_id {
            row.request_id = id;
        }
        if let Some(id) = end.client_request_id {
            row.client_request_id = id;
        }
        row.finished_at = timestamp(SystemTime::now());
        Done {
            row,
            fate: end.fate,
        }
    }

    async fn act(&self, key: RowKey, row: &mut ReportRow, work: &Work) -> End {
        let (id, action) = match self.resolve(row, work).await {
            Err(end) => return end,
            Ok(found) => found,
        };
        let earlier = {
            let mut claims = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
            claims.claim(&id.to_ascii_lowercase(), key, &row.source)
        };
        if let Some(earlier) = earlier {
            return End::new(
                Outcome::Duplicate,
                "duplicate_device",
                format!("the same Intune device ({id}) as {earlier}, which is handled there"),
            );
        }
        if let Some(ledger) = &self.ledger {
            let claim = Claim {
                device: id.clone(),
                action: action.as_str().to_owned(),
                report: row.clone(),
            };
            if let Err(e) = ledger.claim(key, &claim) {
                return self.unrecorded(ledger, e);
            }
        }
        self.reset(key, &id, action, row, None, 0).await
    }

    /// The ledger cannot be written: the run stops, and this row sends nothing.
    fn unrecorded(&self, ledger: &Ledger, e: std::io::Error) -> End {
        self.abort(AbortReason::Unrecorded(format!(
            "the run's ledger {} cannot be written ({e})",
            ledger.path().display()
        )));
        End::new(
            Outcome::Failed,
            "ledger_unwritable",
            format!("the run's ledger cannot be written ({e}); nothing was sent for this device"),
        )
    }

    /// Waits for the shared pause and a slot in the limiters. `after_abort`: this request
    /// finishes a device already in flight (a verification), so an abort does not stop it.
    async fn gate(&self, write: bool, after_abort: bool) -> Result<(), End> {
        loop {
            if self.is_aborted() && !after_abort {
                return Err(End::new(
                    Outcome::NotAttempted,
                    "run_aborted",
                    "the run stopped",
                ));
            }
            self.cooldown.wait().await;
            if write {
                acquire(&[&self.writes, &self.any]).await;
            } else {
                acquire(&[&self.reads, &self.any]).await;
            }
            // A 429 may have arrived while this worker waited for its slot.
            if self.cooldown.until().is_none() {
                self.counters.requests.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
    }

    /// A read, retried (reads are idempotent) until it succeeds or fails for good.
    async fn read<'a, T>(
        &'a self,
        call: impl Fn(Connection) -> CallFuture<'a, T>,
    ) -> Result<Reply<T>, End> {
        let mut connection = Connection::Pooled;
        let mut renewals = 0;
        for attempt in 1..=self.settings.max_attempts {
            self.gate(false, true).await?;
            let error = match call(connection).await {
                Ok(reply) => {
                    self.cooldown.succeeded();
                    return Ok(reply);
                }
                Err(e) => e,
            };
            match self.react(&error, false, &mut renewals) {
                Step::Again(fresh, wait) => {
                    connection = if fresh { Connection::Fresh } else { connection };
                    if let Some(wait) = wait {
                        tokio::time::sleep(wait).await;
                    } else if fresh {
                        let wait = self
                            .settings
                            .backoff
                            .full_jitter(attempt.min(4), &mut rand::rng());
                        tokio::time::sleep(wait).await;
                    }
                }
                Step::Stop(end) => return Err(end),
                // The policy verifies writes only; a read would simply be asked again.
                Step::Verify => {}
            }
        }
        Err(End::new(
            Outcome::Failed,
            "gave_up",
            format!(
                "reading the device failed {} times in a row; nothing was sent",
                self.settings.max_attempts
            ),
        ))
    }

    /// Sends `resetPasscode`, never twice unless Graph proved the earlier sends did not
    /// land. `open`: sends of an interrupted run whose fate is unknown; `earlier`: how
    /// many sends earlier runs made (for the report's `attempts`).
    async fn reset(
        &self,
        key: RowKey,
        id: &str,
        action: Action,
        row: &mut ReportRow,
        mut open: Option<OpenSends>,
        earlier: u32,
    ) -> End {
        let resumed_open = open.is_some();
        let mut connection = Connection::Pooled;
        let mut renewals = 0;
        let mut sends: u32 = 0;
        let mut last: Option<CallError> = None;
        loop {
            // A send whose fate is unknown is settled before anything else; an abort
            // does not skip this (its reads go on after an interrupt).
            if let Some(sent) = open {
                match self.settle(id, sent).await {
                    Ok(Some(entry)) => {
                        self.counters
                            .confirmed_by_results
                            .fetch_add(1, Ordering::Relaxed);
                        return confirmed(&entry, last.as_ref(), resumed_open, sent, action);
                    }
                    // Graph has no reset from those sends: sending now cannot make a
                    // second passcode.
                    Ok(None) => {
                        open = None;
                        connection = Connection::Fresh;
                    }
                    Err(failure) => return unsettled(last.as_ref(), &failure.detail, sent),
                }
            }
            if sends >= self.settings.max_attempts {
                return gave_up(sends, last);
            }
            if let Err(end) = self.gate(true, false).await {
                return end;
            }
            let sent_at = SystemTime::now();
            if let Some(ledger) = &self.ledger {
                let writer = ledger.clone();
                let device = id.to_owned();
                let written =
                    tokio::task::spawn_blocking(move || writer.send(key, &device, sent_at))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
                if let Err(e) = written {
                    return self.unrecorded(ledger, e);
                }
            }
            sends += 1;
            row.attempts = earlier + sends;
            self.counters.posts.fetch_add(1, Ordering::Relaxed);
            let error = match self.graph.reset_passcode(id, connection).await {
                Ok(reply) => {
                    self.cooldown.succeeded();
                    return accepted(reply, sends, last.as_ref(), action);
                }
                Err(e) => e,
            };
            row.http_status = error.status;
            row.client_request_id = error.client_request_id.clone();
            match self.react(&error, true, &mut renewals) {
                Step::Again(fresh, wait) => {
                    if fresh {
                        connection = Connection::Fresh;
                    }
                    let backoff = fresh.then(|| {
                        self.settings
                            .backoff
                            .full_jitter(sends.min(4), &mut rand::rng())
                    });
                    if let Some(wait) = wait.or(backoff) {
                        tokio::time::sleep(wait).await;
                    }
                }
                Step::Stop(end) => return end,
                Step::Verify => open = Some(OpenSends::at(sent_at)),
            }
            last = Some(error);
        }
    }

    /// One device's `deviceActionResults` for `status`, read with the run's limiters,
    /// shared pause and retry policy (reads are idempotent, so 503/504 and timeouts are
    /// retried). Graph's passcodes stay inside the `ActionResult`s' `Secret`s.
    pub async fn action_results(&self, id: &str) -> Result<Vec<ActionResult>, ReadFailure> {
        if self.is_aborted() {
            return Err(ReadFailure {
                outcome: Outcome::NotAttempted,
                detail: "not read: the command stopped".into(),
            });
        }
        self.read(|c| Box::pin(self.graph.action_results(id, c)))
            .await
            .map(|reply| reply.value)
            .map_err(|end| ReadFailure {
                outcome: end.outcome,
                detail: end.detail,
            })
    }

    /// Applies the retry policy's side effects; tells the caller what to do next.
    fn react(&self, error: &CallError, write: bool, renewals: &mut u32) -> Step {
        match reaction(error, write) {
            Reaction::PauseAll(retry_after) => {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                let pause = self.cooldown.throttled(retry_after);
                tracing::info!(
                    pause_ms = pause.as_millis() as u64,
                    retry_after = retry_after.is_some(),
                    "throttled (429): every worker pauses"
                );
                Step::Again(false, None)
            }
            Reaction::Retry { fresh, wait } => Step::Again(fresh, wait),
            Reaction::Verify => Step::Verify,
            // The client has already dropped the refused token; the retry fetches anew.
            // A few refusals in a row can be bad luck (a token revoked mid-run, a
            // replica that has not seen the new one); more mean sign-in is broken.
            Reaction::RenewToken if *renewals < MAX_TOKEN_RENEWALS => {
                *renewals += 1;
                Step::Again(false, None)
            }
            Reaction::RenewToken => {
                let reason = AbortReason::Authentication(format!(
                    "Graph refused {MAX_TOKEN_RENEWALS} newly fetched tokens in a row ({})",
                    error.message
                ));
                self.abort(reason.clone());
                Step::Stop(End::from_error(Outcome::Failed, "unauthorized", error))
            }
            Reaction::Abort(reason) => {
                let code = match reason {
                    AbortReason::MissingPermission(_) => "missing_permission",
                    _ => "authentication_failed",
                };
                self.abort(reason);
                Step::Stop(End::from_error(Outcome::Failed, code, error))
            }
            Reaction::NotFound => {
                Step::Stop(End::from_error(Outcome::NotFound, "not_found", error))
            }
            Reaction::Fail { reason } => {
                Step::Stop(End::from_error(Outcome::Failed, reason, error))
            }
        }
    }
}

enum Step {
    /// Try again: on a fresh connection, after a wait.
    Again(bool, Option<Duration>),
    Verify,
    Stop(End),
}

/// Graph took the reset (204): queued for the device's next check-in.
fn accepted(reply: Reply<()>, sends: u32, lost: Option<&CallError>, action: Action) -> End {
    let resent = match lost {
        Some(e) => format!(
            " on attempt {sends}, after an earlier answer was lost ({}) and deviceActionResults showed no reset from it",
            e.message
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
    end.status = Some(reply.status);
    end.request_id = reply.request_id;
    end.client_request_id = Some(reply.client_request_id);
    end
}

/// `deviceActionResults` shows a reset from sends whose answer was lost: done, and
/// not sent again.
fn confirmed(
    entry: &ActionResult,
    lost: Option<&CallError>,
    resumed: bool,
    sent: OpenSends,
    action: Action,
) -> End {
    let state = entry.action_state.as_deref().unwrap_or("unknown");
    let started = entry.start_date_time.as_deref().unwrap_or("?");
    let mut end = match lost {
        Some(e) if !resumed => {
            let mut end = End::from_error(Outcome::Succeeded, "", e);
            end.detail = format!(
                "the answer was lost ({}), but deviceActionResults shows the reset (state {state}, started {started}): confirmed, not sent again; {}",
                e.message,
                effect(action)
            );
            end
        }
        _ => End::new(
            Outcome::Succeeded,
            "",
            format!(
                "confirmed on resume: an interrupted run sent a reset at {} and deviceActionResults shows it (state {state}, started {started}); not sent again; {}",
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
fn unsettled(lost: Option<&CallError>, failure: &str, sent: OpenSends) -> End {
    let end = match lost {
        Some(e) => {
            let mut end = End::from_error(Outcome::Failed, "outcome_unknown", e);
            end.detail = format!(
                "the answer was lost ({}) and deviceActionResults could not be read ({failure}); not sent again, to avoid a second passcode. `--resume` settles it before anything is sent",
                e.message
            );
            end
        }
        None => End::new(
            Outcome::Failed,
            "outcome_unknown",
            format!(
                "an interrupted run sent a reset at {} and deviceActionResults could not be read ({failure}); not sent again. `--resume` settles it before anything is sent",
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
            end.detail = format!("gave up after {sends} attempts; the last answer: {e}");
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
    }
}

pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
