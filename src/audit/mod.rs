//! `intune-reset audit REPORT`: proof afterwards (issue 20). Reads Intune's two records
//! of remote actions (`auditEvents`, `remoteActionAudits`: [`crate::graph::audit`]) over
//! the span of the run recorded in REPORT and its ledger, and writes an audit report:
//! every run row once, its identifying columns (`device_id` first), then the audit's
//! verdict on its device ([`reconcile::Verdict`]) and the records it rests on.
//!
//! The ledger gives what the report cannot: when the run began and last acted, who it
//! signed in as, and which devices it sent a reset to (also those whose answer was lost).
//! A report whose sends the ledger beside it does not record is refused: that ledger is
//! another run's, or was cut short.
//!
//! Reads go through the shared [`Pacer`] (its read budget and its 429 pause). A list
//! that answers 403 stops the audit (exit 3) naming the permission it needs; a list
//! whose paging never ends is stopped by [`Paging`] and stops the audit too: a verdict
//! on half a list would be no proof.
//!
//! A command: it uses the core (ledger, pacing, graph, report), never another command.

pub mod reconcile;
mod summary;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::CommandError;
use crate::graph::GraphApi;
use crate::graph::audit::{AuditList, AuditRecord};
use crate::graph::paging::{PageLimit, Paging};
use crate::ledger::{History, Ledger, LedgerError, ledger_path};
use crate::pacing::{AbortReason, Pacer, Settings};
use crate::report::{Outcome, ReportError, ReportRow, RunReport, write_csv_line};

use reconcile::{Identity, Judged, RowFacts, Sent, Verdict};
pub use summary::AuditSummary;

/// Everything `audit` needs, validated; nothing here knows about clap.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The report `run` wrote; its ledger is beside it.
    pub run_report: PathBuf,
    /// `--report` [default: beside the run report, `<stem>.audit.csv`].
    pub report: Option<PathBuf>,
    /// `--summary-json`.
    pub summary_json: Option<PathBuf>,
    /// The CSV starts with a UTF-8 byte-order mark (`--no-bom`: without).
    pub bom: bool,
    /// `--wait`: how long to read the lists again while a reset the run sent has no
    /// record yet (Intune's records appear late; nobody documents how late).
    pub wait: Option<Duration>,
    /// Pause between reads with `--wait`.
    pub poll_interval: Duration,
    pub settings: Settings,
    pub tenant: crate::graph::Tenant,
}

/// Default pause between `--wait` reads of the lists.
pub const POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Pages an audit list may take: 20,000 pages hold a million records at 50 a page, far
/// more than the actions of a run's span; a list that goes on is paging in a circle.
pub const AUDIT_PAGES: PageLimit = PageLimit {
    pages: 20_000,
    why: "20,000 pages hold a million records, far more than a run's span holds",
};

/// What stops `audit` before it reads anything.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(
        "{report} has no ledger beside it ({ledger} is missing): the audit needs the run's ledger (when the run acted, who signed in, which devices it sent a reset to). Audit the report in the folder where `run` wrote it"
    )]
    NoLedger { report: PathBuf, ledger: PathBuf },
    #[error("{0}")]
    Ledger(#[from] LedgerError),
    #[error(
        "the ledger {ledger} records no run (no begin line): that run sent nothing, so there is nothing to audit"
    )]
    EmptyLedger { ledger: PathBuf },
    #[error(
        "the ledger {ledger} is not this report's: {why}. Audit a report with the ledger its run wrote"
    )]
    NotThisRun { ledger: PathBuf, why: String },
    #[error("the audit report would replace {path}: pass --report with another path")]
    ReportIsInput { path: PathBuf },
    #[error(
        "{path} already exists: an audit report is never overwritten; choose another --report (or leave it out: the default name gets -2, -3, ...)"
    )]
    ReportExists { path: PathBuf },
}

impl From<AuditError> for CommandError {
    fn from(e: AuditError) -> CommandError {
        CommandError::Refused(Box::new(e))
    }
}

/// The files, checked before any request, and what they say.
pub struct Prepared {
    input: RunReport,
    output: PathBuf,
    /// The ledger read back.
    history: History,
    /// The run's sends, by device (lower case), from its ledger.
    sent: HashMap<String, Sent>,
    /// A run across several tenants (issue 22): the tenants its rows name, each read
    /// in its own sign-in; empty for a run of one tenant.
    tenants: Vec<String>,
}

impl Prepared {
    /// The tenants to sign in to, when the run spanned several (issue 22): the names
    /// its rows give them. Empty: the run acted in one tenant.
    pub fn tenants(&self) -> &[String] {
        &self.tenants
    }
}

/// Reads the run report and its ledger and checks they belong together: every refusal
/// comes before any request.
pub fn prepare(config: &AuditConfig) -> Result<Prepared, CommandError> {
    let input = RunReport::open(&config.run_report).map_err(AuditError::from)?;
    let ledger = ledger_path(&config.run_report);
    if !ledger.exists() {
        return Err(AuditError::NoLedger {
            report: config.run_report.clone(),
            ledger,
        }
        .into());
    }
    let history = Ledger::read(&ledger)
        .map_err(AuditError::from)?
        .ok_or_else(|| AuditError::EmptyLedger {
            ledger: ledger.clone(),
        })?;
    // A run across several tenants recorded the others' sign-ins: its rows' tenants.
    let mut tenants = std::collections::BTreeSet::new();
    if !history.tenants.is_empty() {
        input
            .each::<ReportError>(&mut |row| {
                let t = row.tenant.trim().to_ascii_lowercase();
                if !t.is_empty() && row.attempts > 0 {
                    tenants.insert(t);
                }
                Ok(true)
            })
            .map_err(AuditError::from)?;
    }
    let tenants: Vec<String> = tenants.into_iter().collect();
    let sent = sends_by_device(&history, !tenants.is_empty());
    crate::ledger::check_report(&input, &history).map_err(|why| AuditError::NotThisRun {
        ledger: ledger.clone(),
        why,
    })?;
    let output = match &config.report {
        Some(path) => {
            if path.exists() {
                return Err(AuditError::ReportExists { path: path.clone() }.into());
            }
            path.clone()
        }
        None => default_path(&config.run_report),
    };
    use crate::paths::{Named, distinct};
    if distinct(&[
        Named::read("the run report", input.path.clone()),
        Named::read("its ledger", ledger.clone()),
        Named::written("the audit report", output.clone()),
    ])
    .is_err()
    {
        return Err(AuditError::ReportIsInput { path: output }.into());
    }
    Ok(Prepared {
        input,
        output,
        history,
        sent,
        tenants,
    })
}

/// `<stem>.audit.csv` beside the run report, never over an earlier audit.
pub fn default_path(run_report: &Path) -> PathBuf {
    let stem = run_report
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    crate::report::unused_name(run_report.with_file_name(format!("{stem}.audit.csv")))
}

/// A device's key in a run across several tenants: the tenant the row names and the
/// device id (the same id in two tenants is two devices); in a run of one, its id.
fn device_key(many: bool, tenant: &str, device: &str) -> String {
    let device = device.trim().to_ascii_lowercase();
    if many {
        format!("{}/{device}", tenant.trim().to_ascii_lowercase())
    } else {
        device
    }
}

fn sends_by_device(history: &History, many: bool) -> HashMap<String, Sent> {
    let mut sent: HashMap<String, Sent> = HashMap::new();
    for h in history.rows.values() {
        let (Some(claim), Some(first), Some(last)) = (&h.claim, h.first_sent, h.last_sent) else {
            continue;
        };
        // The audit reads Intune's records of passcode resets: a lock or a rotation
        // sent to the device is not one (issue 21).
        if crate::rules::Action::parse(&claim.action)
            .is_some_and(|a| a.family() != crate::rules::Family::Passcode)
        {
            continue;
        }
        let device = device_key(many, &claim.report.tenant, &claim.device);
        let entry = sent.entry(device).or_insert(Sent {
            sends: 0,
            first,
            last,
        });
        entry.sends += h.sends;
        entry.first = entry.first.min(first);
        entry.last = entry.last.max(last);
    }
    sent
}

/// What stops the audit early (an interrupt, from the CLI).
pub type Shutdown = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// How `audit` ended.
pub struct AuditOutcome {
    pub summary: AuditSummary,
    /// Why it stopped before its verdicts (exit 3): a 403, a list that never ends, an
    /// interrupt.
    pub aborted: Option<String>,
}

impl AuditOutcome {
    /// The sign-in failed: nothing was read.
    pub fn not_signed_in(config: &AuditConfig, why: String) -> AuditOutcome {
        let mut summary = AuditSummary::new(config.run_report.clone());
        let why = format!("authentication failed: {why}");
        summary.aborted = Some(why.clone());
        AuditOutcome {
            summary,
            aborted: Some(why),
        }
    }

    /// Exit 0 only when every reset the run sent is confirmed and nothing else was found.
    pub fn exit_code(&self) -> u8 {
        crate::error::exit_code(self.aborted.is_some(), !self.summary.all_confirmed())
    }
}

/// The span of Intune's records that are the run's business: from its start to its last
/// act, widened by the clock skew, and after the last act by the settle window (a send
/// Graph may still carry out that late).
fn span(history: &History) -> (SystemTime, SystemTime) {
    let began = crate::graph::verify::parse_timestamp(&history.started_at)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let settle = history
        .sessions
        .iter()
        .chain(history.begin.origin.as_ref())
        .map(|o| o.settle_window())
        .max()
        .unwrap_or(Duration::from_secs(60));
    let last = history.last_at.unwrap_or(began).max(began);
    (
        began
            .checked_sub(reconcile::CLOCK_SKEW)
            .unwrap_or(SystemTime::UNIX_EPOCH),
        last + settle + reconcile::CLOCK_SKEW,
    )
}

fn identity(history: &History) -> Identity {
    let origin = history.begin.origin.as_ref();
    Identity {
        client_id: origin.and_then(|o| o.client_id.clone()),
        user: origin.and_then(|o| o.user.clone()),
    }
}

/// Why the tenant signed in to cannot hold the run's records, if it cannot: another
/// tenant, or a real tenant for a rehearsal (or the reverse).
pub fn refuses(prepared: &Prepared, who: &crate::graph::SignedIn) -> Option<String> {
    let origin = prepared.history.begin.origin.as_ref()?;
    // A run across several tenants: any tenant it signed in to.
    let origin = std::iter::once(origin)
        .chain(&prepared.history.tenants)
        .find(|o| o.tenant.eq_ignore_ascii_case(&who.tenant))
        .unwrap_or(origin);
    if origin.simulated != who.simulated {
        return Some(format!(
            "the run was {}; its records are not in {}",
            if origin.simulated {
                "a rehearsal against the simulator"
            } else {
                "a real run"
            },
            if who.simulated {
                "the simulator"
            } else {
                "a real tenant"
            }
        ));
    }
    (!origin.tenant.eq_ignore_ascii_case(&who.tenant)).then(|| {
        format!(
            "the run acted in tenant {}, and this sign-in is to tenant {}: Intune's records of its resets are in the first. Sign in to that tenant (--tenant)",
            origin.tenant, who.tenant
        )
    })
}

/// `audit` on what [`prepare`] checked, on a client signed in as `who`.
pub async fn execute_prepared<G: GraphApi>(
    config: &AuditConfig,
    prepared: Prepared,
    graph: G,
    who: &crate::graph::SignedIn,
    shutdown: Shutdown,
) -> Result<AuditOutcome, CommandError> {
    let one = AuditTenant {
        names: vec![String::new()],
        graph,
        who: who.clone(),
    };
    execute_tenants(config, prepared, vec![one], shutdown).await
}

/// One tenant of a run across several, as `audit` reads it: every name the run's rows
/// give it (its domain, its id), and a client signed in there.
pub struct AuditTenant<G> {
    pub names: Vec<String>,
    pub graph: G,
    pub who: crate::graph::SignedIn,
}

/// `audit` of a run across several tenants (issue 22): each tenant's lists read
/// through its own sign-in and pacer, each row judged by its own tenant's records.
pub async fn execute_tenants<G: GraphApi>(
    config: &AuditConfig,
    prepared: Prepared,
    tenants: Vec<AuditTenant<G>>,
    shutdown: Shutdown,
) -> Result<AuditOutcome, CommandError> {
    for t in &tenants {
        if let Some(why) = refuses(&prepared, &t.who) {
            return Err(CommandError::Usage(format!("{why} (nothing was read)")));
        }
    }
    let many = !prepared.tenants.is_empty();
    let pacers: Vec<(Vec<String>, Arc<Pacer<G>>)> = tenants
        .into_iter()
        .map(|t| {
            (
                t.names,
                Arc::new(Pacer::new(t.graph, config.settings.clone())),
            )
        })
        .collect();
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let watcher = {
        let pacers: Vec<Arc<Pacer<G>>> = pacers.iter().map(|(_, p)| p.clone()).collect();
        tokio::spawn(async move {
            shutdown.await;
            for pacer in pacers {
                pacer.abort(AbortReason::Interrupted);
            }
            let _ = stop_tx.send(true);
        })
    };
    let Prepared {
        input,
        output,
        history,
        sent,
        ..
    } = prepared;
    let (from, to) = span(&history);
    let who = identity(&history);
    let settle = history
        .begin
        .origin
        .as_ref()
        .map(|o| o.settle_window())
        .unwrap_or(Duration::from_secs(60));
    let owners = owners(&input, &sent, many).map_err(AuditError::from)?;
    let mut summary = AuditSummary::new(config.run_report.clone());
    summary.describe_run(&history, from, to);
    let deadline = config.wait.map(|w| tokio::time::Instant::now() + w);
    let judged = loop {
        let mut by_device = HashMap::new();
        // What the lists held at this read (each tenant's added up).
        summary.lists.clear();
        for (names, pacer) in &pacers {
            let records = match read_lists(pacer, from, &mut summary).await {
                Ok(records) => records,
                Err(why) => {
                    watcher.abort();
                    let why = match many {
                        true => format!("in tenant {}: {why}", names.join(" / ")),
                        false => why,
                    };
                    summary.aborted = Some(why.clone());
                    return Ok(AuditOutcome {
                        summary,
                        aborted: Some(why),
                    });
                }
            };
            for (device, records) in group(records, from, to) {
                for name in names {
                    by_device.insert(device_key(many, name, &device), records.clone());
                }
            }
        }
        let judged: HashMap<String, Judged> = owners
            .iter()
            .map(|(device, (_, facts))| {
                let records = by_device.get(device).map(Vec::as_slice).unwrap_or(&[]);
                (
                    device.clone(),
                    reconcile::judge(facts, records, &who, settle),
                )
            })
            .collect();
        summary.reads += 1;
        let missing = judged
            .values()
            .filter(|j| j.verdict == Verdict::Missing)
            .count();
        let now = tokio::time::Instant::now();
        match deadline {
            Some(end) if missing > 0 && now < end => {
                let pause = config.poll_interval.min(end - now);
                tracing::info!(
                    "{missing} reset{} the run sent have no record in Intune's audit yet; reading again in {}",
                    if missing == 1 { "" } else { "s" },
                    humantime::format_duration(Duration::from_secs(pause.as_secs().max(1)))
                );
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => break judged,
                }
            }
            _ => break judged,
        }
    };
    watcher.abort();
    if pacers
        .iter()
        .any(|(_, p)| p.abort_reason() == Some(AbortReason::Interrupted))
    {
        let why = "interrupted: no audit report was written (run `audit` again)".to_owned();
        summary.aborted = Some(why.clone());
        return Ok(AuditOutcome {
            summary,
            aborted: Some(why),
        });
    }
    let written = write_report(
        &output,
        config.bom,
        &input,
        (&owners, many),
        &judged,
        &mut summary,
    )
    .map_err(|source| CommandError::Write {
        what: "the audit report",
        path: output.clone(),
        source,
    })?;
    summary.report = Some(written);
    if let Some(path) = &config.summary_json {
        crate::report::write_summary_json(path, &summary)?;
    }
    Ok(AuditOutcome {
        summary,
        aborted: None,
    })
}

/// Reads both lists whole (since `from`): their passcode resets, or why the audit stops.
async fn read_lists<G: GraphApi>(
    pacer: &Pacer<G>,
    from: SystemTime,
    summary: &mut AuditSummary,
) -> Result<Vec<AuditRecord>, String> {
    let since = humantime::format_rfc3339_seconds(from).to_string();
    let mut all = Vec::new();
    for list in [AuditList::Events, AuditList::RemoteActions] {
        let mut paging = Paging::new(format!("Intune's {}", list.as_str()), AUDIT_PAGES);
        let mut next: Option<String> = None;
        let mut found = 0usize;
        loop {
            let graph = &pacer.graph;
            let page = match pacer
                .read(|c| Box::pin(graph.audit_page(list, &since, next.as_deref(), c)))
                .await
            {
                Ok(reply) => reply.value,
                Err(failure) => {
                    return Err(match pacer.abort_reason() {
                        Some(AbortReason::MissingPermission(p)) => format!(
                            "Intune's {} answered 403: the sign-in lacks the permission {p} (an application permission for app-only sign-in, a delegated one for browser and device-code sign-in, with admin consent); grant it, then run `audit` again",
                            list.as_str()
                        ),
                        Some(reason) => reason.sentence(),
                        None => format!(
                            "Intune's {} could not be read: {}",
                            list.as_str(),
                            failure.detail
                        ),
                    });
                }
            };
            found += page.records.len();
            all.extend(page.records);
            match paging.after_page(page.next_link) {
                Ok(Some(link)) => next = Some(link),
                Ok(None) => break,
                Err(cut) => return Err(cut.to_string()),
            }
        }
        summary.count_list(list, paging.pages(), found);
    }
    Ok(all)
}

/// Records by device, those in the run's span (a record whose time cannot be read is
/// kept: it may be the run's).
fn group(
    records: Vec<AuditRecord>,
    from: SystemTime,
    to: SystemTime,
) -> HashMap<String, Vec<AuditRecord>> {
    let mut by_device: HashMap<String, Vec<AuditRecord>> = HashMap::new();
    for r in records {
        if r.at.is_none_or(|t| t >= from && t <= to) {
            by_device.entry(r.device_id.clone()).or_default().push(r);
        }
    }
    by_device
}

/// Whether the audit judges `row`: a passcode row (Intune's audit lists are read for
/// `resetPasscode` only).
fn audited(row: &ReportRow) -> bool {
    crate::rules::Family::of_report(&row.action) == crate::rules::Family::Passcode
}

/// For each device the report names, the row that answers for it (the one whose run
/// sent to it, else its first row that is not a duplicate) and what the run says of it.
fn owners(
    input: &RunReport,
    sent: &HashMap<String, Sent>,
    many: bool,
) -> Result<HashMap<String, (u64, RowFacts)>, ReportError> {
    let mut owners: HashMap<String, (u64, RowFacts)> = HashMap::new();
    let mut ordinal = 0u64;
    input.each::<ReportError>(&mut |row| {
        let here = ordinal;
        ordinal += 1;
        if row.device_id.trim().is_empty() || row.outcome == Outcome::Duplicate || !audited(&row) {
            return Ok(true);
        }
        let device = device_key(many, &row.tenant, &row.device_id);
        if device.is_empty() {
            return Ok(true);
        }
        let posts = row.attempts;
        let facts = RowFacts {
            outcome: row.outcome,
            reason: row.reason.to_string(),
            client_request_id: row.client_request_id.trim().to_ascii_lowercase(),
            sent: sent.get(&device).copied(),
        };
        match owners.get(&device) {
            // A later row that sent to the device answers for it over one that did not.
            Some((_, earlier)) if earlier.sent.is_some() || posts == 0 => {}
            _ => {
                owners.insert(device, (here, facts));
            }
        }
        Ok(true)
    })?;
    Ok(owners)
}

/// The columns of an audit report: the run row's identifying ones, then the audit's.
pub const AUDIT_COLUMNS: [&str; 21] = [
    "device_id",
    "source",
    "row",
    "device_name",
    "serial_number",
    "user_principal_name",
    "platform",
    "action",
    "outcome",
    "reason",
    "attempts",
    "client_request_id",
    "started_at",
    "verdict",
    "records",
    "recorded_at",
    "recorded_by",
    "correlation_id",
    "matched_by",
    "remote_action_state",
    "audit_detail",
];

/// Writes the audit report (under a temporary name, renamed when whole): every run row
/// once, in the run report's order.
fn write_report(
    output: &Path,
    bom: bool,
    input: &RunReport,
    (owners, many): (&HashMap<String, (u64, RowFacts)>, bool),
    judged: &HashMap<String, Judged>,
    summary: &mut AuditSummary,
) -> std::io::Result<PathBuf> {
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    let partial = output.with_file_name(name);
    let mut out = BufWriter::new(std::fs::File::create(&partial)?);
    if bom {
        out.write_all(crate::report::BOM)?;
    }
    write_csv_line(&mut out, AUDIT_COLUMNS)?;
    let mut ordinal = 0u64;
    let mut failed: Option<std::io::Error> = None;
    let read = input.each::<ReportError>(&mut |row| {
        let here = ordinal;
        ordinal += 1;
        let device = device_key(many, &row.tenant, &row.device_id);
        let verdict = match owners.get(&device) {
            Some((owner, _)) if *owner == here && audited(&row) => judged.get(&device),
            _ => None,
        };
        summary.count(&row, verdict);
        if let Err(e) = write_row(&mut out, &row, verdict, owners.get(&device).map(|o| o.0)) {
            failed = Some(e);
            return Ok(false);
        }
        Ok(true)
    });
    if let Some(e) = failed {
        return Err(e);
    }
    read.map_err(std::io::Error::other)?;
    out.flush()?;
    out.get_ref().sync_all()?;
    drop(out);
    std::fs::rename(&partial, output)?;
    Ok(output.to_owned())
}

fn write_row<W: Write>(
    out: &mut W,
    row: &ReportRow,
    judged: Option<&Judged>,
    owner: Option<u64>,
) -> std::io::Result<()> {
    let (verdict, records, at, by, correlation, matched_by, state, detail) = match judged {
        Some(j) => {
            let join = |records: &mut dyn Iterator<Item = &AuditRecord>,
                        f: &dyn Fn(&AuditRecord) -> Option<String>| {
                let mut seen: Vec<String> = Vec::new();
                for r in records {
                    if let Some(v) = f(r).filter(|v| !v.is_empty())
                        && !seen.contains(&v)
                    {
                        seen.push(v);
                    }
                }
                seen.join("; ")
            };
            (
                j.verdict.as_str(),
                j.count.to_string(),
                join(&mut j.shown(), &|r| Some(r.at_text.clone())),
                join(&mut j.shown(), &|r| Some(reconcile::actor(r))),
                join(&mut j.shown(), &|r| r.correlation_id.clone()),
                j.matched_by.to_owned(),
                join(
                    &mut j
                        .records
                        .iter()
                        .filter(|r| r.list == AuditList::RemoteActions),
                    &|r| r.action_state.clone(),
                ),
                j.detail.clone(),
            )
        }
        None => {
            let detail = if row.device_id.trim().is_empty() {
                "no Intune device: nothing to audit".to_owned()
            } else if !audited(row) {
                format!(
                    "the audit reads Intune's records of passcode resets; its records of a {} are not read (yet): `intune-reset status` shows the action's state",
                    crate::rules::Family::of_report(&row.action).noun()
                )
            } else if row.outcome == Outcome::Duplicate || owner.is_some() {
                "another row of the report answers for this device".to_owned()
            } else {
                String::new()
            };
            (
                Verdict::None.as_str(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                detail,
            )
        }
    };
    let cells: [&str; 21] = [
        &row.device_id,
        &row.source,
        &row.row.to_string(),
        &row.device_name,
        &row.serial_number,
        &row.user_principal_name,
        &row.platform,
        &row.action,
        row.outcome.as_str(),
        &row.reason,
        &row.attempts.to_string(),
        &row.client_request_id,
        &row.started_at,
        verdict,
        &records,
        &at,
        &by,
        &correlation,
        &matched_by,
        &state,
        &detail,
    ];
    write_csv_line(out, cells.iter().map(|c| crate::report::defuse(c)))
}
