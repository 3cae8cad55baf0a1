//! What `summary.html` shows, read from the pack's files: the run report (counts by
//! outcome and platform, the rows needing attention grouped by reason), its ledger (who
//! ran it, every session, resets per minute, 429 pauses, interruptions) and, when given,
//! the status and audit reports (action states, audit verdicts).
//!
//! Runs of 100,000 rows are normal: every file is streamed once and only counts and
//! capped lists of examples are kept. Facts serialize as they are, so `manifest.json`
//! can carry them beside the page.

mod follow_ups;
mod meanings;
#[cfg(test)]
mod tests;
mod timeline;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::report::{Outcome, ReportError, ReportRow, RunReport};

pub use timeline::{Bucket, Interruption, Timeline};

/// Example devices kept per group of failures.
const EXAMPLES: usize = 5;
/// Groups of failures kept; a report with more distinct reasons has the rest in one
/// group (a hostile report could hold a reason per row).
const GROUPS: usize = 40;
/// Platforms kept; the rest are counted together.
const PLATFORMS: usize = 40;
/// Characters of a cell kept for an example (a detail may quote a long Graph message).
const CELL: usize = 300;
/// The group and platform name the rest are counted under.
pub const OTHERS: &str = "(others)";

/// Everything the page says, from the files alone.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// The files of the pack this summarises, by file name.
    pub files: PackFiles,
    /// The job files as the run read them (the ledger's fingerprints): what the run was
    /// told to do.
    pub job_files: Vec<JobFile>,
    /// The tenant the run began in; `None` only for ledgers written before it was
    /// recorded.
    pub tenant: Option<String>,
    /// The run was a rehearsal against the built-in simulator: no real device was touched.
    pub simulated: bool,
    /// The first session (the run's start) and every resume, in order.
    pub sessions: Vec<Session>,
    /// When the run began (RFC 3339, UTC, the ledger's clock).
    pub started_at: String,
    /// The latest time the ledger records (a send, a session's start, a row's end).
    pub last_activity_at: String,
    /// Rows of the run report (every job row once).
    pub rows: u64,
    /// Rows per outcome, in the report's order of outcomes; outcomes with no row left out.
    pub outcomes: Vec<Count>,
    /// Rows per platform, split by outcome; the most rows first.
    pub platforms: Vec<PlatformCounts>,
    /// `resetPasscode` requests that left (the ledger's sends, retries included).
    pub sends: u64,
    pub timeline: Timeline,
    /// Rows whose outcome needs a look (invalid, not found, ambiguous, failed, not
    /// attempted), and those rows grouped by reason, the most first.
    pub needs_attention: u64,
    pub failures: Vec<FailureGroup>,
    pub status: Option<StatusFacts>,
    pub audit: Option<AuditFacts>,
}

/// The files of the pack, by name (the page sits beside them).
#[derive(Debug, Clone, Serialize)]
pub struct PackFiles {
    pub run_report: String,
    pub ledger: String,
    pub status_report: Option<String>,
    pub audit_report: Option<String>,
}

/// A job file as the run read it.
#[derive(Debug, Clone, Serialize)]
pub struct JobFile {
    /// As the command line named it.
    pub source: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// Who signed in for one session of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Who {
    pub tenant: String,
    /// `--auth`'s name of the credential: `secret`, `browser`, ...
    pub method: String,
    pub user: Option<String>,
    pub client_id: Option<String>,
    pub simulated: bool,
    /// `ada@contoso.com (browser sign-in) in tenant T`.
    pub described: String,
}

/// One session: the run's start, or a resume.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub started_at: String,
    /// `None`: a ledger written before identities were recorded.
    pub who: Option<Who>,
    /// For a resume: the last thing the run recorded before it (where it was
    /// interrupted).
    pub interrupted_at: Option<String>,
}

/// A name and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformCounts {
    /// As the report names it (`ios`, `android_work_profile`); empty when unknown.
    pub platform: String,
    pub rows: u64,
    pub outcomes: Vec<Count>,
}

/// The rows that need a look, with one reason.
#[derive(Debug, Clone, Serialize)]
pub struct FailureGroup {
    /// The report's stable `reason` code (the outcome's name when it has none).
    pub reason: String,
    /// What it means, in plain words.
    pub meaning: String,
    pub count: u64,
    pub outcomes: Vec<Count>,
    /// The first few rows of it.
    pub examples: Vec<Example>,
}

/// A row shown as an example (cells cut to a few hundred characters).
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub device_name: String,
    pub device_id: String,
    /// `job.csv` row 12.
    pub source: String,
    pub row: String,
    /// The state or verdict it is listed for, where the list mixes several.
    pub label: String,
    pub detail: String,
}

/// The status report, counted.
#[derive(Debug, Clone, Serialize)]
pub struct StatusFacts {
    pub rows: u64,
    /// Rows per `action_state` (empty: the row sent nothing, so it was not queried).
    pub states: Vec<Count>,
    /// Devices whose state needs a look (not done, pending or active), at most 50.
    pub examples: Vec<Example>,
    /// How many such devices there are in all.
    pub flagged: u64,
}

/// The audit report, counted.
#[derive(Debug, Clone, Serialize)]
pub struct AuditFacts {
    pub rows: u64,
    /// Rows per verdict, in the audit's order (`confirmed`, `missing`,
    /// `not_sent_by_this_run`, `twice`, `none`), then any other.
    pub verdicts: Vec<Count>,
    /// Devices with a verdict other than `confirmed` or `none`, at most 200.
    pub examples: Vec<Example>,
    pub flagged: u64,
}

/// Reads the run report, its ledger and the optional status and audit reports.
/// `Err`: a sentence naming the file and what is wrong with it.
pub fn gather(
    run_report: &Path,
    status_report: Option<&Path>,
    audit_report: Option<&Path>,
) -> Result<Facts, String> {
    let ledger = crate::ledger::ledger_path(run_report);
    if !ledger.exists() {
        return Err(format!(
            "{} has no ledger beside it ({} is missing): the summary needs the run's ledger (who signed in, every session, when each reset left)",
            run_report.display(),
            ledger.display()
        ));
    }
    let run = timeline::read_ledger(&ledger)?;
    let counts = count_report(run_report)?;
    let status = status_report.map(follow_ups::read_status).transpose()?;
    let audit = audit_report.map(follow_ups::read_audit).transpose()?;
    Ok(Facts {
        files: PackFiles {
            run_report: file_name(run_report),
            ledger: file_name(&ledger),
            status_report: status_report.map(file_name),
            audit_report: audit_report.map(file_name),
        },
        job_files: run.job_files,
        tenant: run.tenant,
        simulated: run.simulated,
        sessions: run.sessions,
        started_at: run.started_at,
        last_activity_at: run.last_activity_at,
        rows: counts.rows,
        outcomes: counts.outcomes(),
        platforms: counts.platforms(),
        sends: run.sends,
        timeline: run.timeline,
        needs_attention: counts.needs_attention,
        failures: counts.failures(),
        status,
        audit,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// A cell as a person should read it: without the `'` the report put before a cell a
/// spreadsheet would run as a formula, cut to [`CELL`] characters.
pub(crate) fn shown(cell: &str) -> String {
    let mut chars = cell.chars();
    let cell = match (chars.next(), chars.next()) {
        (Some('\''), Some('=' | '+' | '-' | '@' | '\t' | '\r')) => &cell[1..],
        _ => cell,
    };
    match cell.char_indices().nth(CELL) {
        Some((end, _)) => format!("{}…", &cell[..end]),
        None => cell.to_owned(),
    }
}

/// The run report's rows, counted as they stream by.
#[derive(Default)]
struct ReportCounts {
    rows: u64,
    by_outcome: [u64; Outcome::ALL.len()],
    platforms: BTreeMap<String, [u64; Outcome::ALL.len()]>,
    needs_attention: u64,
    groups: BTreeMap<String, Group>,
}

#[derive(Default)]
struct Group {
    by_outcome: [u64; Outcome::ALL.len()],
    examples: Vec<Example>,
}

fn index(outcome: Outcome) -> usize {
    Outcome::ALL
        .iter()
        .position(|o| *o == outcome)
        .unwrap_or_default()
}

fn count_report(path: &Path) -> Result<ReportCounts, String> {
    let report = RunReport::open(path).map_err(|e| e.to_string())?;
    let mut counts = ReportCounts::default();
    report
        .each::<ReportError>(&mut |row| {
            counts.add(&row);
            Ok(true)
        })
        .map_err(|e| e.to_string())?;
    Ok(counts)
}

impl ReportCounts {
    fn add(&mut self, row: &ReportRow) {
        let i = index(row.outcome);
        self.rows += 1;
        self.by_outcome[i] += 1;
        let platform = shown(&row.platform);
        let known = self.platforms.len() < PLATFORMS || self.platforms.contains_key(&platform);
        let key = if known { platform } else { OTHERS.to_owned() };
        self.platforms.entry(key).or_default()[i] += 1;
        if !row.outcome.needs_attention() {
            return;
        }
        self.needs_attention += 1;
        let reason = match shown(&row.reason) {
            r if r.is_empty() => row.outcome.as_str().to_owned(),
            r => r,
        };
        let known = self.groups.len() < GROUPS || self.groups.contains_key(&reason);
        let group = self
            .groups
            .entry(if known { reason } else { OTHERS.to_owned() })
            .or_default();
        group.by_outcome[i] += 1;
        if group.examples.len() < EXAMPLES {
            group.examples.push(Example {
                device_name: shown(&row.device_name),
                device_id: shown(&row.device_id),
                source: shown(&row.source),
                row: row.row.to_string(),
                label: row.outcome.as_str().to_owned(),
                detail: shown(&row.detail),
            });
        }
    }

    fn outcomes(&self) -> Vec<Count> {
        outcome_counts(&self.by_outcome)
    }

    fn platforms(&self) -> Vec<PlatformCounts> {
        let mut platforms: Vec<PlatformCounts> = self
            .platforms
            .iter()
            .map(|(platform, by)| PlatformCounts {
                platform: platform.clone(),
                rows: by.iter().sum(),
                outcomes: outcome_counts(by),
            })
            .collect();
        platforms.sort_by(|a, b| b.rows.cmp(&a.rows).then(a.platform.cmp(&b.platform)));
        platforms
    }

    fn failures(&self) -> Vec<FailureGroup> {
        let mut groups: Vec<FailureGroup> = self
            .groups
            .iter()
            .map(|(reason, g)| FailureGroup {
                reason: reason.clone(),
                meaning: meanings::reason(reason),
                count: g.by_outcome.iter().sum(),
                outcomes: outcome_counts(&g.by_outcome),
                examples: g.examples.clone(),
            })
            .collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
        groups
    }
}

fn outcome_counts(by: &[u64; Outcome::ALL.len()]) -> Vec<Count> {
    Outcome::ALL
        .iter()
        .zip(by)
        .filter(|(_, n)| **n > 0)
        .map(|(o, n)| Count {
            name: o.as_str().to_owned(),
            count: *n,
        })
        .collect()
}
