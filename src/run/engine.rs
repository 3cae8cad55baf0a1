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

use crate::graph::{ActionResult, CallError, Connection, GraphApi, Reply};
use crate::pacing::{AbortReason, Counters, Failure, Pacer, Settings, Step};
use crate::planner::Work;
use crate::report::{Outcome, ReportRow};
use crate::rules::Action;

use super::ledger::{Claim, Fate, Ledger, OpenSends, RowKey};

mod claims;
mod lookup;
mod settle;

use claims::Claims;

pub struct Engine<G> {
    /// Every request goes through it: limiters, the shared pause, the retry policy.
    pacer: Pacer<G>,
    /// Intune ids acted on in this run, and the row that claimed each: a serial-number
    /// row that resolves to a device another row names by id is a duplicate. A resumed
    /// run starts with every claim its ledger holds.
    claimed: Mutex<Claims>,
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

/// How a device's processing ended, before it becomes a report row.
struct End {
    failure: Failure,
    fate: Fate,
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
        End { failure, fate }
    }
}

impl<G: GraphApi> Engine<G> {
    pub fn new(graph: G, settings: Settings) -> Engine<G> {
        Engine {
            pacer: Pacer::new(graph, settings),
            claimed: Mutex::new(Claims::default()),
            ledger: None,
        }
    }

    /// What the run sent, for the summary.
    pub fn counters(&self) -> &Counters {
        &self.pacer.counters
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
        let End { failure: end, fate } = end;
        if end.outcome == Outcome::NotAttempted {
            let mut row = self.not_attempted(row);
            row.started_at.clear();
            return Done { row, fate };
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
        Done { row, fate }
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
                        self.pacer
                            .counters
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
            if sends >= self.pacer.settings.max_attempts {
                return gave_up(sends, last);
            }
            if let Err(failure) = self.pacer.gate(true, false).await {
                return failure.into();
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
            self.pacer.counters.posts.fetch_add(1, Ordering::Relaxed);
            let error = match self.pacer.graph.reset_passcode(id, connection).await {
                Ok(reply) => {
                    self.pacer.cooldown.succeeded();
                    return accepted(reply, sends, last.as_ref(), action);
                }
                Err(e) => e,
            };
            row.http_status = error.status;
            row.client_request_id = error.client_request_id.clone();
            match self.pacer.react(&error, true, &mut renewals) {
                Step::Again(fresh, wait) => {
                    if fresh {
                        connection = Connection::Fresh;
                    }
                    let backoff = fresh.then(|| {
                        self.pacer
                            .settings
                            .backoff
                            .full_jitter(sends.min(4), &mut rand::rng())
                    });
                    if let Some(wait) = wait.or(backoff) {
                        tokio::time::sleep(wait).await;
                    }
                }
                Step::Stop(failure) => return failure.into(),
                Step::Verify => open = Some(OpenSends::at(sent_at)),
            }
            last = Some(error);
        }
    }
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
    end.failure.status = Some(reply.status);
    end.failure.request_id = reply.request_id;
    end.failure.client_request_id = Some(reply.client_request_id);
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
            end.failure.detail = format!(
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
            end.failure.detail = format!(
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
    }
}

pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
