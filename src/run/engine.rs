//! The engine: one planned device in, its final report row out.
//!
//! For each device: find it in Graph when the plan says so (and judge its live facts),
//! make sure no other row of this run already claimed it, then send `resetPasscode`,
//! paced by the shared limiters and the shared pause. A failed call is data for the
//! report, never an error that stops other devices (oha's collector design); only a
//! missing permission, a broken sign-in or an interruption stops the run.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::graph::{ActionResult, CallError, Connection, GraphApi, Reply};
use crate::plan::Work;
use crate::report::{Outcome, ReportRow};
use crate::rules::Action;

use super::cooldown::Cooldown;
use super::journal::{Journal, Sending};
use super::limiter::{WindowLimiter, acquire};
use super::reaction::{AbortReason, Reaction, reaction};

mod claims;
mod lookup;
mod settle;

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
    /// Intune ids acted on in this run (by 64-bit hash), and the row that claimed each
    /// (its file's index in `claim_sources`, its row number): a serial-number
    /// row that resolves to a device another row names by id is a duplicate.
    claimed: Mutex<Claims>,
    pub counters: Counters,
    /// Where each send is recorded before it leaves (see [`super::journal`]).
    journal: Option<Journal>,
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
}

impl End {
    fn new(outcome: Outcome, reason: &'static str, detail: impl Into<String>) -> End {
        End {
            outcome,
            reason,
            detail: detail.into(),
            status: None,
            request_id: None,
            client_request_id: None,
        }
    }

    fn from_error(outcome: Outcome, reason: &'static str, e: &CallError) -> End {
        End {
            outcome,
            reason,
            detail: e.to_string(),
            status: e.status,
            request_id: e.request_id.clone(),
            client_request_id: Some(e.client_request_id.clone()),
        }
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
            journal: None,
        }
    }

    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
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
        row.detail = format!("not attempted: {why}").into();
        row
    }

    /// Everything for one planned device; always returns its final row.
    /// `prior`: the journal's record of a reset an interrupted run sent for this row
    /// (`--resume`); it is checked before anything is sent.
    pub async fn process(
        &self,
        mut row: ReportRow,
        work: Work,
        prior: Option<Sending>,
    ) -> ReportRow {
        if self.is_aborted() {
            return self.not_attempted(row);
        }
        let started = SystemTime::now();
        row.started_at = timestamp(started);
        let end = match prior {
            Some(prior) => match self.settle_prior(&prior).await {
                Ok(Some(end)) => {
                    row.device_id = prior.device_id.clone();
                    self.claim(&prior.device_id, &row);
                    end
                }
                Ok(None) => self.act(&mut row, &work).await,
                Err(end) => end,
            },
            None => self.act(&mut row, &work).await,
        };
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
        row
    }

    async fn act(&self, row: &mut ReportRow, work: &Work) -> End {
        match self.resolve(row, work).await {
            Err(end) => end,
            Ok((id, action)) => match self.claim(&id, row) {
                Some(earlier) => End::new(
                    Outcome::Duplicate,
                    "duplicate_device",
                    format!("the same Intune device ({id}) as {earlier}, which is handled there"),
                ),
                None => self.reset(&id, action, row).await,
            },
        }
    }

    /// Records that this row acts on `id`; returns the earlier claimant if any.
    fn claim(&self, id: &str, row: &ReportRow) -> Option<String> {
        let mut claims = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        claims.claim(&id.to_ascii_lowercase(), &row.source, row.row)
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

    /// Sends `resetPasscode`, never twice unless Graph proved the first did not land.
    async fn reset(&self, id: &str, action: Action, row: &mut ReportRow) -> End {
        let mut connection = Connection::Pooled;
        let mut renewals = 0;
        let mut sends: u32 = 0;
        let mut last: Option<CallError> = None;
        while sends < self.settings.max_attempts {
            // Before the first send an abort stops the device; after a lost answer the
            // device is already "in flight" and its fate is settled below instead.
            if let Err(end) = self.gate(true, false).await {
                return match last {
                    None => end,
                    Some(lost) => stopped_after_lost_answer(lost),
                };
            }
            let sent_at = SystemTime::now();
            if let Err(end) = self.record_sending(row, id, sent_at) {
                return end;
            }
            sends += 1;
            row.attempts = sends;
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
                Step::Verify => match self.settle_lost_answer(id, sent_at, &error, action).await {
                    Some(end) => return end,
                    // Graph has no new reset for the device: the request did not land,
                    // and sending it again cannot make a second passcode.
                    None => connection = Connection::Fresh,
                },
            }
            last = Some(error);
        }
        gave_up(sends, last)
    }

    /// Writes the journal line for a send about to happen; without it a crash could not
    /// be resumed safely, so nothing is sent.
    fn record_sending(&self, row: &ReportRow, id: &str, sent_at: SystemTime) -> Result<(), End> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let entry = Sending {
            source: row.source.clone(),
            row: row.row,
            device_id: id.to_owned(),
            sent_at: timestamp(sent_at),
        };
        journal.sending(&entry).map_err(|e| {
            End::new(
                Outcome::Failed,
                "journal_unwritable",
                format!("the in-flight journal cannot be written ({e}); nothing was sent"),
            )
        })
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

/// The run stopped while a device's lost answer awaited a resend: it is not sent again.
fn stopped_after_lost_answer(lost: CallError) -> End {
    End::from_error(
        Outcome::Failed,
        "outcome_unknown",
        &CallError {
            message: format!(
                "the run stopped after a reset whose answer was lost ({}); it was not sent again. Check it with `intune-reset status`",
                lost.message
            ),
            ..lost
        },
    )
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
