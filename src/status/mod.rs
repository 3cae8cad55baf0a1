//! `intune-reset status REPORT`: did the resets a run sent take effect?
//!
//! A 204 from `resetPasscode` only means *queued*; the result appears later in the
//! device's `deviceActionResults` (docs/graph.md, "The action"). `status` reads them for the
//! rows the run report says succeeded (and for resets whose answer was lost and that the
//! run could not verify, which the run sends here) and writes a status report: every run
//! row once,
//! with `action_state`, `action_updated_at` and `error_code` added (empty for rows that
//! were not queried). `--wait` reads the devices still open again, within the same read
//! limit, until none is or the time is up.
//!
//! Reads go through the shared [`Pacer`](crate::pacing::Pacer): its `WindowLimiter`s (Intune: 2000 requests
//! per 20 s per app), its shared `Cooldown` (one 429 pauses every worker) and its retry
//! policy (`pacing::reaction`; reads are idempotent, so 503/504 and timeouts are retried).
//!
//! Generated passcodes are [`Secret`](crate::graph::Secret)s from the moment they are
//! parsed, and are written in one place only: the `--passcodes` file.
//!
//! # Layout
//! - the run report is read by [`crate::report::RunReport`], the one report reader.
//! - [`state`]: which entry is the run's reset; the state words.
//! - `passes`: one read of every device, then `--wait`'s reads of the open ones.
//! - [`output`]: the status report and the passcodes file.
//! - [`summary`]: counts by state, pending and failed devices.
//!
//! A command: it uses the core (pacing, graph, report), never another command.

pub mod codes;
pub mod follow;
pub mod output;
mod passes;
pub mod state;
pub mod summary;

#[cfg(test)]
mod poll_tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crate::error::CommandError;
use crate::graph::{GraphApi, SignedIn};
use crate::pacing::{AbortReason, Pacer, Settings};
use crate::report::write_summary_json;
use crate::report::xlsx::{SheetFacts, XlsxReport};
use crate::report::{Outcome, ReportError, ReportFormat, ReportRow, RunReport, Summary};

pub use output::{PasscodeFile, StatusWriter};
pub use state::Found;
pub use summary::StatusSummary;

/// What stops `status` before it reads anything, or while it writes.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(
        "the passcodes file {path} already exists; passcodes are never overwritten or appended: move it away or name a new file (nothing was read from Graph)"
    )]
    PasscodesFileExists { path: PathBuf },
    #[error("cannot create the passcodes file {path}: {source} (nothing was read from Graph)")]
    PasscodesFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the status report would replace the run report {path}: pass --report with another path"
    )]
    ReportIsInput { path: PathBuf },
}

impl From<StatusError> for CommandError {
    fn from(e: StatusError) -> CommandError {
        CommandError::Refused(Box::new(e))
    }
}

/// Everything `status` needs, validated; nothing here knows about clap.
#[derive(Debug, Clone)]
pub struct StatusConfig {
    /// The report `run` wrote.
    pub run_report: PathBuf,
    /// `--report` [default: beside the run report, `<stem>.status.<ext>`].
    pub report: Option<PathBuf>,
    /// `--passcodes`: the only file generated passcodes are written to.
    pub passcodes: Option<PathBuf>,
    /// `--summary-json`.
    pub summary_json: Option<PathBuf>,
    /// CSV files start with a UTF-8 byte-order mark (`--no-bom`: without).
    pub bom: bool,
    /// `--wait`: how long to keep reading devices whose reset is still open.
    pub wait: Option<Duration>,
    /// Pause between passes with `--wait` (shortened when less wait remains).
    pub poll_interval: Duration,
    /// Pacing and retries (`--read-rate`, `--concurrency`; writes are never sent).
    /// `request_timeout` is also the HTTP client's timeout.
    pub settings: Settings,
    /// The tenant to read from.
    pub tenant: crate::graph::Tenant,
    /// `run --follow`: the run report itself gains the status columns (written to a
    /// temporary file renamed over it) instead of a status report beside it.
    pub into_run_report: bool,
    /// With `into_run_report`, for an xlsx run report: its workbook is written again
    /// with the status columns, and this Summary sheet.
    pub run_sheet: Option<(crate::report::Summary, crate::report::xlsx::SheetFacts)>,
}

/// Default pause between `--wait` passes: a device checks in every few minutes at
/// best, so reading more often only spends the read limit.
pub const POLL_INTERVAL: Duration = Duration::from_secs(15);

/// How `status` ended.
pub struct StatusOutcome {
    /// What the summary says (and `--summary-json` holds).
    pub summary: StatusSummary,
    /// Why the command stopped early: exit code 3.
    pub aborted: Option<AbortReason>,
}

/// A succeeded row to read: its place in the report, its device and when it was sent.
#[derive(Clone)]
struct Query {
    /// The row's position in the run report (0-based): the key the final write joins on.
    ordinal: u64,
    /// The Intune id to read.
    device_id: String,
    /// For the summary's lists.
    device_name: String,
    /// The report's platform key: what a bad ending means depends on it.
    platform: String,
    /// The row's `started_at`: our reset is the newest one since then.
    sent_at: Option<SystemTime>,
    /// Which action's entry is the row's (its `action` cell).
    action: crate::rules::Family,
    /// The tenant the row names (lower case; empty in a single-tenant run): the one
    /// its device is read in.
    tenant: String,
}

/// The files, checked and created before any request.
pub struct Prepared {
    /// The run report, checked.
    input: RunReport,
    /// Where the status report goes.
    output: PathBuf,
    /// `--passcodes`, already created (so an existing file stops everything first).
    passcodes: Option<PasscodeFile>,
}

/// Checks the run report and the outputs and creates the passcodes file: every refusal
/// comes before any request.
pub fn prepare(config: &StatusConfig) -> Result<Prepared, CommandError> {
    let input = RunReport::open(&config.run_report).map_err(StatusError::from)?;
    if config.into_run_report {
        let passcodes = match &config.passcodes {
            Some(path) => Some(PasscodeFile::create_new(path, config.bom)?),
            None => None,
        };
        return Ok(Prepared {
            output: input.path.clone(),
            input,
            passcodes,
        });
    }
    let output = config
        .report
        .clone()
        // Named after the report given (`job.xlsx` -> `job.status.csv`), in the format
        // of the file read.
        .unwrap_or_else(|| output::default_path(&config.run_report, input.format));
    use crate::paths::{Named, distinct};
    let files = [
        Named::read("the run report", input.path.clone()),
        Named::written("the status report", output.clone()),
    ];
    if distinct(&files).is_err() {
        return Err(StatusError::ReportIsInput { path: output }.into());
    }
    if config.report.is_some() && output.exists() {
        return Err(CommandError::Usage(format!(
            "{} already exists: a status report is never overwritten; choose another --report (or leave it out: the default name gets -2, -3, ...)",
            output.display()
        )));
    }
    let passcodes = match &config.passcodes {
        Some(path) => Some(PasscodeFile::create_new(path, config.bom)?),
        None => None,
    };
    Ok(Prepared {
        input,
        output,
        passcodes,
    })
}

/// What stops `status` early (an interrupt, from the CLI): the reads in flight end,
/// the rest are `not_checked`, and the reports are written with what was read.
pub type Shutdown = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl Prepared {
    /// The command stops before reading (the credential cannot be used): the
    /// passcodes file it created holds nothing and is removed.
    pub fn abandon(self) {
        if let Some(file) = self.passcodes {
            file.discard_if_empty();
        }
    }

    /// The tenants the rows to read name (their `tenant` cells, lower case, each
    /// once, in the report's order): empty for a report of one tenant, which is read
    /// as it always was; else `status` signs in to each ([`execute_tenants`]).
    pub fn tenants(&self) -> Result<Vec<String>, CommandError> {
        let mut named: Vec<String> = Vec::new();
        self.input.each::<StatusError>(&mut |row| {
            let tenant = row.tenant.trim().to_ascii_lowercase();
            if !tenant.is_empty() && is_queried(&row) && !named.contains(&tenant) {
                named.push(tenant);
            }
            Ok(true)
        })?;
        Ok(named)
    }

    /// The sign-in failed: nothing was read; a summary that says why, exit 3.
    pub fn not_signed_in(self, reason: AbortReason) -> StatusOutcome {
        let mut summary = StatusSummary::new(self.input.path.clone());
        summary.aborted = Some(reason.sentence());
        self.abandon();
        StatusOutcome {
            summary,
            aborted: Some(reason),
        }
    }
}

/// `status` on an already signed-in client (tests drive it against the simulator).
pub async fn execute<G: GraphApi>(
    config: &StatusConfig,
    graph: G,
    shutdown: Shutdown,
) -> Result<StatusOutcome, CommandError> {
    let prepared = prepare(config)?;
    execute_prepared(config, prepared, graph, shutdown).await
}

/// `status` on what [`prepare`] checked, on a signed-in client.
pub async fn execute_prepared<G: GraphApi>(
    config: &StatusConfig,
    prepared: Prepared,
    graph: G,
    shutdown: Shutdown,
) -> Result<StatusOutcome, CommandError> {
    let pacer = Arc::new(Pacer::new(graph, config.settings.clone()));
    execute_on(config, prepared, pacer, follow::Known::default(), shutdown).await
}

/// `run --follow`'s last step: `status` on the run's own pacer (its windows and pause
/// still hold), reading only the devices whose end the follower did not see while the
/// run sent (`known`).
pub async fn execute_on<G: GraphApi>(
    config: &StatusConfig,
    prepared: Prepared,
    pacer: Arc<Pacer<G>>,
    known: follow::Known,
    shutdown: Shutdown,
) -> Result<StatusOutcome, CommandError> {
    let one = TenantReads {
        label: String::new(),
        names: Vec::new(),
        ready: Ok((pacer, None)),
        known,
    };
    read_tenants(config, prepared, vec![one], false, shutdown).await
}

/// One tenant of a `status` across several (issue 22): the rows naming it are read in
/// it, through its own pacer (its own read budget and 429 pause).
pub struct TenantReads<G> {
    /// How the report's rows (or the run's flags) name it, lower case: the summary's
    /// name for it.
    pub label: String,
    /// Every name rows may give it, lower case: the label, and the id its sign-in found.
    pub names: Vec<String>,
    /// Its pacer and who signed in there; else why it cannot be read (its rows are
    /// `not_checked`, naming why).
    pub ready: Result<(Arc<Pacer<G>>, Option<SignedIn>), String>,
    /// `run --follow`: what the follower on this tenant's pacer saw end while the run
    /// sent ([`follow::Known::default`] otherwise).
    pub known: follow::Known,
}

/// `status` across a run's tenants (issue 22), and `run --follow`'s last step across
/// them: each queried row's device is read in the tenant its `tenant` cell names,
/// through that tenant's pacer; the tenants are read in parallel. A tenant that could
/// not be signed in to leaves its rows `not_checked`, naming why, and the command
/// aborted (exit 3: the worst tenant); the others are read. No tenant signed in:
/// nothing is read ([`Prepared::not_signed_in`]).
pub async fn execute_tenants<G: GraphApi>(
    config: &StatusConfig,
    prepared: Prepared,
    tenants: Vec<TenantReads<G>>,
    shutdown: Shutdown,
) -> Result<StatusOutcome, CommandError> {
    if !tenants.is_empty() && tenants.iter().all(|t| t.ready.is_err()) {
        let first = tenants.iter().find_map(|t| {
            t.ready
                .as_ref()
                .err()
                .map(|why| (t.label.clone(), why.clone()))
        });
        let reason = match first {
            Some((label, why)) if tenants.len() > 1 => {
                AbortReason::Authentication(why).in_tenant(&label)
            }
            Some((_, why)) => AbortReason::Authentication(why),
            None => AbortReason::Authentication("no tenant to sign in to".into()),
        };
        let mut summary_tenants = std::collections::BTreeMap::new();
        for t in &tenants {
            summary_tenants.insert(
                t.label.clone(),
                summary::TenantStatus {
                    aborted: t.ready.as_ref().err().cloned(),
                    ..Default::default()
                },
            );
        }
        let mut outcome = prepared.not_signed_in(reason);
        outcome.summary.tenants = summary_tenants;
        return Ok(outcome);
    }
    read_tenants(config, prepared, tenants, true, shutdown).await
}

/// A tenant being read: its part of the queries and what its pacer counted before.
struct Reading<G> {
    label: String,
    names: Vec<String>,
    pacer: Option<Arc<Pacer<G>>>,
    signed_in: Option<SignedIn>,
    unavailable: Option<String>,
    known: follow::Known,
    /// The pacer's requests and 429s before this command.
    before: (u64, u64),
    queries: Vec<Query>,
    ended: HashMap<u64, Found>,
    passes: u32,
}

/// The reads of [`execute_on`] (one tenant, every row its own: `many` false) and of
/// [`execute_tenants`] (`many`: each row read in the tenant it names), then the
/// outputs.
async fn read_tenants<G: GraphApi>(
    config: &StatusConfig,
    prepared: Prepared,
    tenants: Vec<TenantReads<G>>,
    many: bool,
    shutdown: Shutdown,
) -> Result<StatusOutcome, CommandError> {
    let started = Instant::now();
    let Prepared {
        input,
        output,
        passcodes,
    } = prepared;
    let queries = match succeeded_rows(&input) {
        Ok(q) => q,
        Err(e) => {
            if let Some(file) = passcodes {
                file.discard_if_empty();
            }
            return Err(e.into());
        }
    };
    let mut readings: Vec<Reading<G>> = tenants
        .into_iter()
        .map(|t| {
            let (pacer, signed_in, unavailable) = match t.ready {
                Ok((pacer, who)) => (Some(pacer), who, None),
                Err(why) => (None, None, Some(why)),
            };
            let before = pacer.as_ref().map_or((0, 0), |p| {
                (
                    p.counters.requests.load(Ordering::Relaxed),
                    p.counters.throttled.load(Ordering::Relaxed),
                )
            });
            Reading {
                label: t.label,
                names: t
                    .names
                    .iter()
                    .map(|n| n.trim().to_ascii_lowercase())
                    .collect(),
                pacer,
                signed_in,
                unavailable,
                known: t.known,
                before,
                queries: Vec::new(),
                ended: HashMap::new(),
                passes: 0,
            }
        })
        .collect();
    // Each row to its tenant; a row no tenant read can take ends `not_checked`, saying
    // why.
    let mut found_elsewhere: HashMap<u64, Found> = HashMap::new();
    for q in &queries {
        let at = if many {
            readings
                .iter()
                .position(|r| r.label == q.tenant || r.names.contains(&q.tenant))
        } else {
            (!readings.is_empty()).then_some(0)
        };
        match at {
            Some(i) if readings[i].pacer.is_some() => readings[i].queries.push(q.clone()),
            Some(i) => {
                let r = &readings[i];
                let why = r
                    .unavailable
                    .as_deref()
                    .unwrap_or("it was not signed in to");
                found_elsewhere.insert(
                    q.ordinal,
                    Found::own(
                        state::NOT_CHECKED,
                        format!("tenant {} could not be read: {why}", r.label),
                    ),
                );
            }
            None if q.tenant.is_empty() => {
                found_elsewhere.insert(
                    q.ordinal,
                    Found::own(
                        state::NOT_CHECKED,
                        "the row names no tenant, and the run spans several: its device is never guessed into one",
                    ),
                );
            }
            None => {
                found_elsewhere.insert(
                    q.ordinal,
                    Found::own(
                        state::NOT_CHECKED,
                        format!(
                            "the row names tenant {}, which was not signed in to",
                            q.tenant
                        ),
                    ),
                );
            }
        }
    }
    // What the follower saw end while the run sent is not read again.
    let mut followed = false;
    let mut seen_ended = 0;
    let mut follow_reads = 0;
    for r in &mut readings {
        followed |= !r.known.is_empty();
        follow_reads += r.known.reads;
        for q in &r.queries {
            if let Some(found) = r.known.take(&q.device_id, q.action, q.sent_at) {
                r.ended.insert(q.ordinal, found);
            }
        }
        seen_ended += r.ended.len();
    }
    let to_read = queries.len() - seen_ended - found_elsewhere.len();
    if followed {
        tracing::info!(
            "{} reset{} ended while the run sent; reading deviceActionResults of the other {to_read}",
            seen_ended,
            if seen_ended == 1 { "" } else { "s" },
        );
    } else {
        tracing::info!(
            "reading deviceActionResults of {} device{} (at most {} reads/s)",
            queries.len(),
            if queries.len() == 1 { "" } else { "s" },
            config.settings.read_rate
        );
    }
    if many {
        for r in &readings {
            match &r.unavailable {
                None => tracing::info!(
                    "tenant {}: reading {} device{} (at most {} reads/s)",
                    r.label,
                    r.queries.len() - r.ended.len(),
                    if r.queries.len() - r.ended.len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    config.settings.read_rate
                ),
                Some(why) => tracing::warn!(
                    "tenant {}: cannot be read ({why}); its rows are not_checked",
                    r.label
                ),
            }
        }
    }
    // An interrupt stops the reads (those in flight finish) and the waiting; the reports
    // are then written with every state read so far.
    let pacers: Vec<Arc<Pacer<G>>> = readings.iter().filter_map(|r| r.pacer.clone()).collect();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let watcher = {
        let pacers = pacers.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::warn!(
                "interrupted: writing the report with the states read so far (the rest are not_checked)"
            );
            for pacer in &pacers {
                pacer.abort(AbortReason::Interrupted);
            }
            let _ = stop_tx.send(true);
        })
    };
    // Each tenant's passes on its own pacer, the tenants in parallel.
    let mut found: HashMap<u64, Found> = found_elsewhere;
    if readings.len() == 1 {
        let r = &mut readings[0];
        if let Some(pacer) = &r.pacer {
            let ended = std::mem::take(&mut r.ended);
            let (f, passes) = passes::poll(config, pacer, &r.queries, ended, stop).await;
            found.extend(f);
            r.passes = passes;
        }
    } else {
        let shared = Arc::new(config.clone());
        let mut tasks = Vec::new();
        for (i, r) in readings.iter_mut().enumerate() {
            let Some(pacer) = r.pacer.clone() else {
                continue;
            };
            let (config, queries, ended, stop) = (
                shared.clone(),
                r.queries.clone(),
                std::mem::take(&mut r.ended),
                stop.clone(),
            );
            tasks.push((
                i,
                tokio::spawn(
                    async move { passes::poll(&config, &pacer, &queries, ended, stop).await },
                ),
            ));
        }
        for (i, task) in tasks {
            match task.await {
                Ok((f, passes)) => {
                    found.extend(f);
                    readings[i].passes = passes;
                }
                // A tenant's reads that panicked (a bug) leave its rows a state that
                // says so.
                Err(e) => {
                    for q in &readings[i].queries {
                        found.entry(q.ordinal).or_insert_with(|| {
                            Found::own(
                                state::NOT_CHECKED,
                                format!("the read stopped unexpectedly ({e})"),
                            )
                        });
                    }
                }
            }
        }
    }
    // The follower's reads while the run sent count as a pass of their own.
    let passes = readings.iter().map(|r| r.passes).max().unwrap_or(0) + u32::from(followed);
    watcher.abort();
    let aborted = abort_reason(&readings, many);

    let mut summary = StatusSummary::new(input.path.clone());
    // Graph shows a generated passcode for 7 days: from the first reset that makes one.
    summary.passcodes_until = queries
        .iter()
        .filter(|q| crate::report::generates_passcode(&q.platform))
        .filter_map(|q| q.sent_at)
        .min()
        .map(|t| {
            humantime::format_rfc3339_seconds(t + Duration::from_secs(7 * 24 * 3600)).to_string()
        });
    for q in &queries {
        if let Some(f) = found.get(&q.ordinal) {
            summary.count(&q.device_id, &q.device_name, &q.platform, q.action, f);
        }
    }
    let workbook = config
        .run_sheet
        .as_ref()
        .filter(|_| config.into_run_report)
        .filter(|_| ReportFormat::from_name(&config.run_report) == Some(ReportFormat::Xlsx))
        .map(|sheet| (config.run_report.as_path(), sheet));
    write_outputs(
        &input,
        &output,
        config.bom,
        passcodes,
        &found,
        &mut summary,
        workbook,
    )?;
    summary.passes = passes;
    let counted = |r: &Reading<G>| {
        r.pacer.as_ref().map_or((0, 0), |p| {
            (
                p.counters.requests.load(Ordering::Relaxed) - r.before.0,
                p.counters.throttled.load(Ordering::Relaxed) - r.before.1,
            )
        })
    };
    summary.requests = readings.iter().map(|r| counted(r).0).sum::<u64>() + follow_reads;
    summary.throttled = readings.iter().map(|r| counted(r).1).sum();
    if many {
        for r in &readings {
            let (requests, throttled) = counted(r);
            let mut states = std::collections::BTreeMap::new();
            for q in queries
                .iter()
                .filter(|q| r.names.contains(&q.tenant) || r.label == q.tenant)
            {
                if let Some(f) = found.get(&q.ordinal) {
                    *states.entry(f.state.clone()).or_default() += 1;
                }
            }
            let tenant = summary::TenantStatus {
                signed_in: r.signed_in.clone(),
                queried: states.values().sum(),
                states,
                requests: requests + r.known.reads,
                throttled,
                aborted: match (&r.pacer, &r.unavailable) {
                    (Some(p), _) => p.abort_reason().map(|a| a.sentence()),
                    (None, why) => why.clone(),
                },
            };
            summary.tenants.insert(r.label.clone(), tenant);
        }
    }
    summary.aborted = aborted.as_ref().map(AbortReason::sentence);
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &config.summary_json {
        write_summary_json(path, &summary)?;
    }
    Ok(StatusOutcome { summary, aborted })
}

/// Why the command, as a whole, stopped: an interrupt; else the first tenant that
/// stopped or could not be read, named when there are several (the worst tenant's
/// exit code).
fn abort_reason<G: GraphApi>(readings: &[Reading<G>], many: bool) -> Option<AbortReason> {
    let reasons: Vec<(&str, AbortReason)> = readings
        .iter()
        .filter_map(|r| {
            let reason = match (&r.pacer, &r.unavailable) {
                (Some(p), _) => p.abort_reason(),
                (None, Some(why)) => Some(AbortReason::Authentication(why.clone())),
                (None, None) => None,
            };
            reason.map(|a| (r.label.as_str(), a))
        })
        .collect();
    if reasons
        .iter()
        .any(|(_, a)| matches!(a, AbortReason::Interrupted))
    {
        return Some(AbortReason::Interrupted);
    }
    let (label, reason) = reasons.into_iter().next()?;
    Some(if many {
        reason.in_tenant(label)
    } else {
        reason
    })
}

/// Streams the run report once more and writes each row with its state to the status
/// report, and each generated passcode to the passcodes file (the only place it goes).
fn write_outputs(
    input: &RunReport,
    output: &std::path::Path,
    bom: bool,
    mut passcodes: Option<PasscodeFile>,
    found: &HashMap<u64, Found>,
    summary: &mut StatusSummary,
    workbook: Option<(&std::path::Path, &(Summary, SheetFacts))>,
) -> Result<(), CommandError> {
    let write_err = |source| CommandError::Write {
        what: "the status report",
        path: output.to_owned(),
        source,
    };
    let mut writer = StatusWriter::create(output, input.format, bom).map_err(write_err)?;
    let mut sheet = workbook.map(|_| XlsxReport::with_extra(&output::STATUS_COLUMNS));
    let mut ordinal = 0u64;
    let mut failed: Option<CommandError> = None;
    // A revocation's row: Entra keeps no action state to read, and says so.
    let unfollowed = Found::own(state::NO_ACTION_STATE, "");
    input.each::<StatusError>(&mut |row| {
        let f = found.get(&ordinal).or_else(|| {
            (row.outcome == Outcome::Succeeded
                && crate::rules::Family::of_report(&row.action).on_users())
            .then_some(&unfollowed)
        });
        ordinal += 1;
        summary.rows += 1;
        // A reset that ended badly: the run's "Graph accepted the action" gives way to
        // what the ending means and what to do.
        let mut row = match f.filter(|f| !f.meaning.is_empty()) {
            Some(f) => ReportRow {
                detail: f.meaning.clone().into(),
                ..row
            },
            None => row,
        };
        // Whose device it is, as Graph says, where the run report does not.
        if row.user_principal_name.trim().is_empty()
            && let Some(user) = f.and_then(|f| f.user.as_deref())
        {
            row.user_principal_name = user.to_owned();
        }
        if let Err(e) = writer.write(&row, f).and_then(|()| match &mut sheet {
            Some(sheet) => sheet.push_with(&row, &output::status_cells(f)),
            None => Ok(()),
        }) {
            failed = Some(write_err(e));
            return Ok(false);
        }
        if let (
            Some(file),
            Some(Found {
                passcode: Some(p),
                updated_at,
                ..
            }),
        ) = (&mut passcodes, f)
            && let Err(source) = file.write(&row, p, updated_at)
        {
            failed = Some(CommandError::Write {
                what: "the passcodes file",
                path: file.path.clone(),
                source,
            });
            return Ok(false);
        }
        Ok(true)
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    summary.report = Some(writer.finish().map_err(write_err)?);
    if let (Some(sheet), Some((path, (run_summary, facts)))) = (sheet, workbook) {
        sheet
            .save(path, run_summary, facts)
            .map_err(|source| CommandError::Write {
                what: "the report",
                path: path.to_owned(),
                source,
            })?;
        summary.report = Some(path.to_owned());
    }
    if let Some(file) = passcodes.take_if(|f| f.written == 0) {
        // No passcode yet (none generated, or still pending): no file, so the same
        // `--passcodes FILE` works on the next `status`.
        file.discard_if_empty();
    }
    if let Some(file) = passcodes {
        let path = file.path.clone();
        file.finish().map_err(|source| CommandError::Write {
            what: "the passcodes file",
            path: path.clone(),
            source,
        })?;
        summary.passcodes_file = Some(path);
    }
    Ok(())
}

/// Whether `status` reads a row's device: its reset succeeded, or its answer was lost
/// and the run could not tell (`failed`, `outcome_unknown`: the run's detail sends the
/// administrator here). Everything else is copied as it is.
pub fn is_queried(row: &ReportRow) -> bool {
    let sent = match row.outcome {
        Outcome::Succeeded => true,
        Outcome::Failed => row.reason == OUTCOME_UNKNOWN,
        _ => false,
    };
    // Entra keeps no action state of a revocation: there is nothing to follow.
    sent && !row.device_id.trim().is_empty()
        && !crate::rules::Family::of_report(&row.action).on_users()
}

/// The run's reason for a reset whose answer was lost and could not be verified.
const OUTCOME_UNKNOWN: &str = "outcome_unknown";

/// The rows to read (see [`is_queried`]), with their place in the report.
fn succeeded_rows(input: &RunReport) -> Result<Vec<Query>, StatusError> {
    let mut queries = Vec::new();
    let mut ordinal = 0u64;
    input.each::<StatusError>(&mut |row| {
        if is_queried(&row) {
            queries.push(Query {
                ordinal,
                device_id: row.device_id.trim().to_owned(),
                device_name: row.device_name,
                action: crate::rules::Family::of_report(&row.action),
                platform: row.platform.into_owned(),
                sent_at: state::sent_at(&row.started_at),
                tenant: row.tenant.trim().to_ascii_lowercase(),
            });
        }
        ordinal += 1;
        Ok(true)
    })?;
    Ok(queries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run report row with the cells `status` reads; the rest empty.
    pub(crate) fn row(outcome: Outcome, reason: &'static str, device_id: &str) -> ReportRow {
        ReportRow {
            source: "job.csv".into(),
            row: 2,
            device_id: device_id.into(),
            device_name: String::new(),
            serial_number: String::new(),
            user_principal_name: String::new(),
            operating_system: String::new(),
            os_version: String::new(),
            platform: "".into(),
            action: "".into(),
            outcome,
            reason: reason.into(),
            detail: "".into(),
            http_status: None,
            attempts: 1,
            request_id: String::new(),
            client_request_id: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            tenant: String::new(),
        }
    }

    #[test]
    fn only_sent_resets_with_a_device_id_are_read() {
        assert!(is_queried(&row(Outcome::Succeeded, "", "d1")));
        assert!(is_queried(&row(Outcome::Failed, "outcome_unknown", "d1")));
        assert!(!is_queried(&row(Outcome::Succeeded, "", " ")));
        assert!(!is_queried(&row(Outcome::Failed, "gave_up", "d1")));
        for outcome in Outcome::ALL {
            if outcome != Outcome::Succeeded && outcome != Outcome::Failed {
                assert!(!is_queried(&row(outcome, "", "d1")), "{outcome:?}");
            }
        }
    }
}
