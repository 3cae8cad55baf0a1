//! The report: one row per job-file row, always, and the summary that ends every command.
//!
//! Columns (docs/reference.md, "The report"); JSON Lines uses the same keys. CSV cells that a
//! spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) are prefixed with `'`:
//! device names are chosen by users, and the report is opened in Excel. A CSV report
//! starts with a UTF-8 BOM unless told not to (Windows Excel reads UTF-8 without one as
//! the ANSI code page). [`xlsx`] writes the report as a workbook.
//!
//! Input order: [`ReportWriter::write_keyed`] remembers where each row went, and
//! [`ReportWriter::finish_in_order`] writes the rows again sorted by job file and row,
//! renamed over the report in one step, so `run` can write rows as outcomes arrive and
//! still end with a report in input order.
//!
//! Core module: it imports only the error contract, never a command.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::spill::{Record, SpillSort};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::CommandError;

use serde::{Deserialize, Serialize};

mod reader;
pub mod xlsx;
pub use reader::{ReportError, RunReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Planned,
    Succeeded,
    Ineligible,
    Duplicate,
    Invalid,
    NotFound,
    Ambiguous,
    Failed,
    NotAttempted,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Planned,
        Outcome::Succeeded,
        Outcome::Ineligible,
        Outcome::Duplicate,
        Outcome::Invalid,
        Outcome::NotFound,
        Outcome::Ambiguous,
        Outcome::Failed,
        Outcome::NotAttempted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Planned => "planned",
            Outcome::Succeeded => "succeeded",
            Outcome::Ineligible => "ineligible",
            Outcome::Duplicate => "duplicate",
            Outcome::Invalid => "invalid",
            Outcome::NotFound => "not_found",
            Outcome::Ambiguous => "ambiguous",
            Outcome::Failed => "failed",
            Outcome::NotAttempted => "not_attempted",
        }
    }

    /// Outcomes that make the exit code 1: something an administrator must look at.
    pub fn needs_attention(self) -> bool {
        matches!(
            self,
            Outcome::Invalid
                | Outcome::NotFound
                | Outcome::Ambiguous
                | Outcome::Failed
                | Outcome::NotAttempted
        )
    }
}

/// One report row. Empty strings stand for "nothing to say" in both formats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRow {
    pub source: String,
    pub row: u64,
    pub device_id: String,
    pub device_name: String,
    pub serial_number: String,
    /// The device's user: the job row's, else Graph's `userPrincipalName` (when the run
    /// read the device). Absent from reports written before the column existed.
    #[serde(default)]
    pub user_principal_name: String,
    pub operating_system: String,
    pub os_version: String,
    pub platform: Cow<'static, str>,
    pub action: Cow<'static, str>,
    pub outcome: Outcome,
    pub reason: Cow<'static, str>,
    pub detail: Cow<'static, str>,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub request_id: String,
    pub client_request_id: String,
    pub started_at: String,
    pub finished_at: String,
    /// The tenant the row names (its id or domain, lower case) in a job that names
    /// tenants (issue 22); empty otherwise. Last, and absent from reports written
    /// before it existed.
    #[serde(default)]
    pub tenant: String,
}

pub const COLUMNS: [&str; 20] = [
    "source",
    "row",
    "device_id",
    "device_name",
    "serial_number",
    "user_principal_name",
    "operating_system",
    "os_version",
    "platform",
    "action",
    "outcome",
    "reason",
    "detail",
    "http_status",
    "attempts",
    "request_id",
    "client_request_id",
    "started_at",
    "finished_at",
    "tenant",
];

/// Columns a reader does without: reports written before they existed lack them (a run
/// resumed from an older ledger, `status` of an older report).
pub const OPTIONAL_COLUMNS: [&str; 2] = ["user_principal_name", "tenant"];

/// The UTF-8 byte-order mark a CSV report starts with (unless `--no-bom`): without it,
/// Windows Excel reads UTF-8 as the ANSI code page and garbles every accent.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Csv,
    Jsonl,
    /// An Excel workbook, written from the final rows; while a run goes on, its rows
    /// are in the crash-safe CSV beside it ([`companion_csv`]).
    Xlsx,
}

impl ReportFormat {
    /// The format a report's file name says: `.jsonl`/`.ndjson` are JSON Lines, `.csv`
    /// is CSV, `.xlsx` a workbook; `None` for any other name.
    pub fn from_name(path: &Path) -> Option<ReportFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(ReportFormat::Csv),
            "jsonl" | "ndjson" => Some(ReportFormat::Jsonl),
            "xlsx" => Some(ReportFormat::Xlsx),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Csv => "csv",
            ReportFormat::Jsonl => "jsonl",
            ReportFormat::Xlsx => "xlsx",
        }
    }
}

/// The CSV an xlsx run report keeps beside it, `<report>.csv` (`job.xlsx.csv`): written
/// row by row as outcomes arrive, so a killed run leaves a report that reads as one, and
/// rewritten in input order at the end. `status` reads it.
pub fn companion_csv(xlsx: &Path) -> PathBuf {
    let mut name = xlsx.as_os_str().to_owned();
    name.push(".csv");
    PathBuf::from(name)
}

/// `reports/<job>-<UTC timestamp>.<ext>`, the job being the first file's name.
pub fn default_path(first_job: &Path, format: ReportFormat, now: std::time::SystemTime) -> PathBuf {
    let job = first_job
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".into());
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(['-', ':'], "");
    PathBuf::from("reports").join(format!("{job}-{stamp}.{}", format.extension()))
}

/// A line report (CSV or JSON Lines) being written, row by row, flushed as the caller
/// says. It knows where each row lies, so [`ReportWriter::finish_in_order`] can write
/// the rows again in input order once they are all there.
pub struct ReportWriter {
    out: Counting<BufWriter<File>>,
    path: PathBuf,
    jsonl: bool,
    /// Bytes before the first row: the BOM and the header.
    head: u64,
    /// Where each row written with [`ReportWriter::write_keyed`] lies: a few thousand
    /// in memory, the rest in a temporary file, so the run's memory stays flat.
    placed: SpillSort<Placed>,
    /// Whether the keyed rows came in input order so far, and the last one's place.
    in_order: bool,
    last: Option<(u32, u64, u8)>,
}

/// One row's place in input order (job file, row, the row's action) and in the file
/// (offset, length). Ordered by input order, then by where it was written: rows of one
/// job row and action (a user's devices) keep the order they were written in.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Placed {
    file: u32,
    row: u64,
    /// Which of the row's actions (issue 21: one report row per job row and action).
    step: u8,
    start: u64,
    /// A report line is at most a few kilobytes (values are cut at 256 characters).
    len: u32,
}

impl Record for Placed {
    const SIZE: usize = 25;
    fn put(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.file.to_le_bytes());
        out[4..12].copy_from_slice(&self.row.to_le_bytes());
        out[12..20].copy_from_slice(&self.start.to_le_bytes());
        out[20..24].copy_from_slice(&self.len.to_le_bytes());
        out[24] = self.step;
    }
    fn get(b: &[u8]) -> Self {
        let mut u32s = [0u8; 4];
        let mut u64s = [0u8; 8];
        u32s.copy_from_slice(&b[0..4]);
        let file = u32::from_le_bytes(u32s);
        u64s.copy_from_slice(&b[4..12]);
        let row = u64::from_le_bytes(u64s);
        u64s.copy_from_slice(&b[12..20]);
        let start = u64::from_le_bytes(u64s);
        u32s.copy_from_slice(&b[20..24]);
        Placed {
            file,
            row,
            step: b[24],
            start,
            len: u32::from_le_bytes(u32s),
        }
    }
}

impl ReportWriter {
    /// Creates (or truncates) the report: CSV gets its BOM (if `bom`) and its header, on
    /// disk before the first row. An `Xlsx` format writes its CSV (the companion).
    pub fn create(path: &Path, format: ReportFormat, bom: bool) -> io::Result<ReportWriter> {
        create_parent(path)?;
        let mut out = Counting::new(BufWriter::new(File::create(path)?));
        let jsonl = format == ReportFormat::Jsonl;
        if !jsonl {
            if bom {
                out.write_all(BOM)?;
            }
            write_csv_line(&mut out, COLUMNS)?;
            // On disk before the first POST: a run killed at its first send leaves
            // a report that reads as one, not an empty file.
            out.flush()?;
        }
        Ok(ReportWriter {
            head: out.written,
            out,
            path: path.to_owned(),
            jsonl,
            placed: SpillSort::default(),
            in_order: true,
            last: None,
        })
    }

    pub fn write(&mut self, row: &ReportRow) -> io::Result<()> {
        if self.jsonl {
            serde_json::to_writer(&mut self.out, row)?;
            self.out.write_all(b"\n")
        } else {
            write_csv_row(&mut self.out, row, &[])
        }
    }

    /// Writes a row and remembers its place in input order: the `file`-th job file's
    /// row `row.row`, its `step`-th action.
    pub fn write_keyed(&mut self, file: u32, step: u8, row: &ReportRow) -> io::Result<()> {
        let start = self.out.written;
        self.write(row)?;
        let len = u32::try_from(self.out.written - start)
            .map_err(|_| io::Error::other("a report row longer than 4 GiB"))?;
        if self.last.is_some_and(|last| last > (file, row.row, step)) {
            self.in_order = false;
        }
        self.last = Some((file, row.row, step));
        self.placed.push(Placed {
            start,
            row: row.row,
            step,
            file,
            len,
        });
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes, and when the keyed rows were written out of input order (as outcomes
    /// arrived), writes the report again sorted by job file then row: to a temporary
    /// file in the same folder, synced, then renamed over the report. Until the rename
    /// the report on disk is the one written so far, whole; after it, the ordered one.
    pub fn finish_in_order(mut self) -> io::Result<PathBuf> {
        self.out.flush()?;
        if self.in_order {
            self.out.inner.get_ref().sync_all()?;
            return Ok(self.path);
        }
        let ReportWriter {
            out,
            path,
            placed,
            head,
            ..
        } = self;
        drop(out);
        // Unbuffered: each row is one seek and one read of exactly its bytes.
        let mut source = File::open(&path)?;
        // The ordered file keeps the report's permissions (its owner may have set them).
        let permissions = source.metadata()?.permissions();
        replace_atomically(&path, Some(permissions), |ordered| {
            let mut buf = Vec::new();
            copy_range(&mut source, ordered, &mut buf, 0, head)?;
            for p in placed.into_sorted()? {
                let p = p?;
                copy_range(&mut source, ordered, &mut buf, p.start, u64::from(p.len))?;
            }
            // Closed before the rename: Windows renames over no open file.
            drop(source);
            Ok(())
        })?;
        Ok(path)
    }
}

/// Writes a file whole and puts it at `path` at once: `write` fills a temporary file in
/// the same folder, which is synced and renamed over `path` (an existing file is
/// replaced, on Windows too). Until the rename `path` is as it was; a failure leaves no
/// temporary file behind. The file gets `permissions`, else those `File::create` gives
/// a new file (0666 less the umask on Unix), not a temporary file's 0600.
fn replace_atomically(
    path: &Path,
    permissions: Option<std::fs::Permissions>,
    write: impl FnOnce(&mut BufWriter<tempfile::NamedTempFile>) -> io::Result<()>,
) -> io::Result<()> {
    let folder = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent.to_owned(),
        None => PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".report-").suffix(".tmp");
    #[cfg(unix)]
    let permissions = permissions.or_else(|| {
        use std::os::unix::fs::PermissionsExt;
        Some(std::fs::Permissions::from_mode(0o666))
    });
    if let Some(p) = permissions.filter(|p| !p.readonly()) {
        builder.permissions(p);
    }
    let mut out = BufWriter::new(builder.tempfile_in(&folder)?);
    write(&mut out)?;
    let temp = out.into_inner().map_err(|e| e.into_error())?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_folder(&folder);
    Ok(())
}

/// Copies `len` bytes at `start` of `from` to `to`.
fn copy_range(
    from: &mut File,
    to: &mut impl Write,
    buf: &mut Vec<u8>,
    start: u64,
    len: u64,
) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    from.seek(SeekFrom::Start(start))?;
    buf.resize(len as usize, 0);
    from.read_exact(buf)?;
    to.write_all(buf)
}

/// Makes a rename durable (Unix: the folder's entry is synced; elsewhere a no-op, and a
/// failure changes nothing the run can act on).
fn sync_folder(folder: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = folder;
}

/// A writer that counts the bytes written through it: where the next row starts.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W> Counting<W> {
    fn new(inner: W) -> Self {
        Counting { inner, written: 0 }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl ReportRow {
    /// The row's cells in [`COLUMNS`] order: one list for the CSV line and the
    /// workbook's row.
    pub(crate) fn cells(&self) -> [Cow<'_, str>; COLUMNS.len()] {
        fn s(v: &str) -> Cow<'_, str> {
            Cow::Borrowed(v)
        }
        [
            s(&self.source),
            Cow::Owned(self.row.to_string()),
            s(&self.device_id),
            s(&self.device_name),
            s(&self.serial_number),
            s(&self.user_principal_name),
            s(&self.operating_system),
            s(&self.os_version),
            s(&self.platform),
            s(&self.action),
            s(self.outcome.as_str()),
            s(&self.reason),
            s(&self.detail),
            Cow::Owned(self.http_status.map(|v| v.to_string()).unwrap_or_default()),
            Cow::Owned(self.attempts.to_string()),
            s(&self.request_id),
            s(&self.client_request_id),
            s(&self.started_at),
            s(&self.finished_at),
            s(&self.tenant),
        ]
    }
}

/// A report row as one CSV line, followed by `extra` cells (the columns `status` adds),
/// every cell defused.
pub(crate) fn write_csv_row<W: Write>(
    out: &mut W,
    row: &ReportRow,
    extra: &[&str],
) -> io::Result<()> {
    let cells = row.cells();
    write_csv_line(
        out,
        cells
            .iter()
            .map(|c| &**c)
            .chain(extra.iter().copied())
            .map(defuse),
    )
}

/// One RFC 4180 line: a field is quoted when it holds a comma, a quote or a line break,
/// and its quotes are doubled. (The csv crate's general writer cost a quarter of
/// `plan`'s time on a million rows; this is all the report needs.)
pub fn write_csv_line<W: Write, S: AsRef<str>>(
    out: &mut W,
    cells: impl IntoIterator<Item = S>,
) -> io::Result<()> {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let cell = cell.as_ref();
        if cell
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        {
            out.write_all(b"\"")?;
            out.write_all(cell.replace('"', "\"\"").as_bytes())?;
            out.write_all(b"\"")?;
        } else {
            out.write_all(cell.as_bytes())?;
        }
    }
    out.write_all(b"\n")
}

/// Keeps spreadsheets from evaluating a cell as a formula.
pub(crate) fn defuse(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Per-file facts for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub source: String,
    pub format: String,
    pub encoding: String,
    pub rows: u64,
    pub blank_lines: u64,
}

/// Counts by outcome, platform and reason; printed on stderr, or as JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub command: String,
    pub rows: u64,
    pub outcomes: BTreeMap<Outcome, u64>,
    pub platforms: BTreeMap<String, u64>,
    pub reasons: BTreeMap<String, u64>,
    pub files: Vec<FileSummary>,
    pub report: Option<PathBuf>,
    pub elapsed_seconds: f64,
    /// What a run sent (absent for `plan`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunStats>,
    /// Who signed in: the audit record of whose authority the resets were sent under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_in: Option<crate::graph::SignedIn>,
    /// Graph or Entra refused that sign-in during the run (a ready token Graph answers
    /// 401 to, a revoked refresh token): the summary does not say "signed in as".
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sign_in_refused: bool,
    /// Each row naming a user (`user ada@contoso.com`) and the devices it stood for.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub expansions: BTreeMap<String, u64>,
    /// Rows per platform and outcome: `platforms`, split.
    pub platform_outcomes: BTreeMap<String, BTreeMap<Outcome, u64>>,
    /// Rows per action (the report's `action` column) and outcome (issue 21).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub action_outcomes: BTreeMap<String, BTreeMap<Outcome, u64>>,
    /// Succeeded passcode resets on platforms that generate a new passcode.
    #[serde(skip)]
    pub generating: u64,
    /// `run --follow` followed the resets: the follow-up's own next steps say what to
    /// do with them, so the run's say only what the run left undone.
    #[serde(skip)]
    pub followed: bool,
    /// How this run was invoked, for next steps that work as printed (set by `cli`).
    #[serde(skip)]
    pub rerun: Option<Rerun>,
    /// A resumed run: the whole run, over every session (`traffic` is this session's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_run: Option<WholeRun>,
    /// A run across several tenants (issue 22): each tenant's sign-in and rows, by the
    /// name the run gave it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tenants: BTreeMap<String, TenantSummary>,
}

/// One tenant of a run across several.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TenantSummary {
    /// Who signed in there (absent: the tenant could not be signed in to or read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_in: Option<crate::graph::SignedIn>,
    /// Its rows, by outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Action POSTs sent in it, and 429s it answered.
    pub posts: u64,
    pub throttled: u64,
    /// Why it stopped, or could not start (its rows are `not_attempted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
}

/// A resumed run as a whole, from its ledger: when it began, each session (the first,
/// each resume), and the resets sent over all of them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WholeRun {
    pub started_at: String,
    /// `2026-12-07T10:00:00Z by app ... (secret sign-in) in tenant ...`, in order; the
    /// last is this one.
    pub sessions: Vec<String>,
    /// resetPasscode POSTs of every session, this one's included.
    pub posts: u64,
}

/// The flags a run's follow-up commands repeat, as words (quoted when printed with
/// [`shell_word`]); built by `cli`, which alone knows the command line.
#[derive(Debug, Clone, Default)]
pub struct Rerun {
    /// `run`'s words that `--resume` needs again, `--report` excepted: the job files
    /// and target flags in their order, `--action`, how the files are read, the
    /// sign-in and the pacing given.
    pub run: Vec<String>,
    /// The sign-in flags, for `status`.
    pub sign_in: Vec<String>,
    /// A rehearsal (`--simulate`): it is rehearsed again, never resumed.
    pub simulated: bool,
}

impl Rerun {
    fn words(words: &[String]) -> String {
        words
            .iter()
            .map(|w| format!(" {}", shell_word(w)))
            .collect()
    }
}

/// The traffic of a run, for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    pub requests: u64,
    pub posts: u64,
    pub throttled: u64,
    /// Resets whose answer was lost, confirmed through `deviceActionResults`.
    pub confirmed_by_action_results: u64,
    /// Succeeded resets per second of the whole run.
    pub resets_per_second: f64,
    /// Why the run stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
}

impl Summary {
    pub fn new(command: &str) -> Summary {
        Summary {
            command: command.to_owned(),
            ..Summary::default()
        }
    }

    pub fn count(&mut self, row: &ReportRow) {
        // A user's action has no platform: its rows are counted as the users'.
        let platform = match crate::rules::Family::of_report(&row.action).on_users() {
            true => "users",
            false => &row.platform,
        };
        self.count_row(row.outcome, platform, &row.reason);
        if !row.action.is_empty() {
            *self
                .action_outcomes
                .entry(row.action.to_string())
                .or_default()
                .entry(row.outcome)
                .or_default() += 1;
        }
        if row.outcome == Outcome::Succeeded
            && is_passcode_action(&row.action)
            && generates_passcode(&row.platform)
        {
            self.generating += 1;
        }
    }

    /// A passcode reset's row by its parts (its succeeded rows on platforms that
    /// generate one count as passcodes to collect).
    pub fn count_parts(&mut self, outcome: Outcome, platform: &str, reason: &str) {
        self.count_row(outcome, platform, reason);
        if outcome == Outcome::Succeeded && generates_passcode(platform) {
            self.generating += 1;
        }
    }

    /// Every row's action is a passcode reset (or the summary counts no action): the
    /// summary speaks of resets, as it always has.
    pub fn passcodes_only(&self) -> bool {
        self.action_outcomes.keys().all(|a| is_passcode_action(a))
    }

    /// Succeeded rows per action, for the summary's words (`remote-lock 3`).
    fn succeeded_by_action(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, u64)> {
        self.action_outcomes
            .iter()
            .filter(|(a, _)| keep(a))
            .map(|(a, by)| (a.clone(), by.get(&Outcome::Succeeded).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn count_row(&mut self, outcome: Outcome, platform: &str, reason: &str) {
        self.rows += 1;
        *self.outcomes.entry(outcome).or_default() += 1;
        let platform = if platform.is_empty() {
            "unknown"
        } else {
            platform
        };
        bump(&mut self.platforms, platform);
        match self.platform_outcomes.get_mut(platform) {
            Some(by) => *by.entry(outcome).or_default() += 1,
            None => {
                self.platform_outcomes
                    .insert(platform.to_owned(), BTreeMap::from([(outcome, 1)]));
            }
        }
        if !reason.is_empty() {
            bump(&mut self.reasons, reason);
        }
    }

    pub fn with_elapsed(mut self, elapsed: Duration) -> Self {
        self.elapsed_seconds = elapsed.as_secs_f64();
        self
    }

    pub fn needs_attention(&self) -> bool {
        self.outcomes
            .iter()
            .any(|(o, n)| *n > 0 && o.needs_attention())
    }

    /// The text people read at the end of a command.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // The synthetic files of `--user`, `--group` and `--where` are named as the
        // flags they are, not as CSV files.
        let flag_of = |source: &str| {
            source
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .filter(|s| s.starts_with("--"))
                .map(str::to_owned)
        };
        let files = self
            .files
            .iter()
            .filter(|f| flag_of(&f.source).is_none())
            .count();
        let flags: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| flag_of(&f.source))
            .collect();
        let from = match (files, flags.is_empty()) {
            (0, false) => flags.join(", "),
            (n, true) => format!("{n} file{}", plural(n as u64)),
            (n, false) => format!("{n} file{} and {}", plural(n as u64), flags.join(", ")),
        };
        out.push_str(&format!(
            "{}: {} row{} from {from}\n",
            self.command,
            self.rows,
            plural(self.rows),
        ));
        for f in &self.files {
            if let Some(flag) = flag_of(&f.source) {
                let named = match flag.as_str() {
                    "--user" => "user",
                    "--group" => "group",
                    _ => "filter",
                };
                out.push_str(&format!(
                    "  {flag}: {} {named}{} named on the command line\n",
                    f.rows,
                    plural(f.rows)
                ));
                continue;
            }
            let blank = if f.blank_lines > 0 {
                format!(
                    ", {} blank line{} skipped",
                    f.blank_lines,
                    plural(f.blank_lines)
                )
            } else {
                String::new()
            };
            out.push_str(&format!(
                "  {}: {} rows ({}, {}{})\n",
                f.source, f.rows, f.format, f.encoding, blank
            ));
        }
        section(
            &mut out,
            "outcomes",
            self.outcomes
                .iter()
                .map(|(o, n)| (o.as_str().to_owned(), *n)),
        );
        if !self.platforms.is_empty() {
            out.push_str("platforms:\n");
            let width = self.platforms.keys().map(String::len).max().unwrap_or(0);
            for (p, n) in &self.platforms {
                let split: Vec<String> = self
                    .platform_outcomes
                    .get(p)
                    .map(|by| {
                        by.iter()
                            .map(|(o, k)| format!("{} {k}", o.as_str()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push_str(&format!("  {p:<width$}  {n:>7}   {}\n", split.join(", ")));
            }
        }
        // Another action than a passcode reset: each action's outcomes (a passcode
        // reset's effect per platform is in the platforms above).
        if !self.passcodes_only() {
            out.push_str("actions:\n");
            let width = self
                .action_outcomes
                .keys()
                .map(String::len)
                .max()
                .unwrap_or(0);
            for (a, by) in &self.action_outcomes {
                let n: u64 = by.values().sum();
                let split: Vec<String> = by
                    .iter()
                    .map(|(o, k)| format!("{} {k}", o.as_str()))
                    .collect();
                out.push_str(&format!("  {a:<width$}  {n:>7}   {}\n", split.join(", ")));
            }
        }
        section(
            &mut out,
            "reasons",
            self.reasons.iter().map(|(r, n)| (r.clone(), *n)),
        );
        section(
            &mut out,
            "expansions (devices each row naming a user stood for)",
            self.expansions.iter().map(|(t, n)| (t.clone(), *n)),
        );
        if !self.tenants.is_empty() {
            out.push_str(&format!("tenants ({}):\n", self.tenants.len()));
            for (name, t) in &self.tenants {
                let outcomes: Vec<String> = t
                    .outcomes
                    .iter()
                    .map(|(o, n)| format!("{} {n}", o.as_str()))
                    .collect();
                let who = match (&t.signed_in, &t.aborted) {
                    (_, Some(why)) => format!("stopped: {why}"),
                    (Some(who), None) => format!("as {}", who.describe()),
                    (None, None) => String::new(),
                };
                out.push_str(&format!(
                    "  {name}: {}; {} POSTs, {} throttled; {who}\n",
                    if outcomes.is_empty() {
                        "no rows".to_owned()
                    } else {
                        outcomes.join(", ")
                    },
                    t.posts,
                    t.throttled
                ));
            }
        }
        if let Some(who) = self.signed_in.as_ref().filter(|_| self.tenants.is_empty()) {
            let label = match self.sign_in_refused {
                true => "sign-in refused during the run",
                false => "signed in as",
            };
            out.push_str(&format!("{label}: {}\n", who.describe()));
        }
        if let Some(whole) = &self.whole_run {
            out.push_str(&format!(
                "whole run: began {}, {} sessions, {} resetPasscode POSTs in all\n",
                whole.started_at,
                whole.sessions.len(),
                whole.posts
            ));
            for (i, session) in whole.sessions.iter().enumerate() {
                let what = if i == 0 { "began" } else { "resumed" };
                out.push_str(&format!("  {what} {session}\n"));
            }
        }
        if let Some(run) = &self.run {
            let this = if self.whole_run.is_some() {
                "this session's traffic"
            } else {
                "traffic"
            };
            let (posts, per, record) = match self.passcodes_only() {
                true => ("resetPasscode POSTs", "resets/s", "deviceActionResults"),
                false => ("action POSTs", "actions/s", "Graph's record"),
            };
            out.push_str(&format!(
                "{this}: {} requests, {} {posts}, {} throttled (429), {} confirmed through {record}\n",
                run.requests, run.posts, run.throttled, run.confirmed_by_action_results
            ));
            out.push_str(&format!(
                "elapsed: {:.1} s, {:.2} {per}\n",
                self.elapsed_seconds, run.resets_per_second
            ));
            if let Some(why) = &run.aborted {
                out.push_str(&format!("ABORTED: {why}\n"));
            }
        }
        if let Some(report) = &self.report {
            out.push_str(&format!("report: {}\n", report.display()));
            if self.run.is_some() && ReportFormat::from_name(report) == Some(ReportFormat::Xlsx) {
                out.push_str(&format!(
                    "its rows as CSV (written as they arrived; `status` reads it): {}\n",
                    companion_csv(report).display()
                ));
            }
        }
        if self.command == "run" {
            out.push_str(&self.next_steps());
        }
        out
    }

    /// What the responder does next, with the commands: follow the queued resets,
    /// collect generated passcodes (Graph shows them for 7 days), finish the failed ones.
    pub fn next_steps(&self) -> String {
        self.next_steps_at(std::time::SystemTime::now())
    }

    /// [`Summary::next_steps`] as of `now` (when the 7 days of passcodes end).
    pub fn next_steps_at(&self, now: std::time::SystemTime) -> String {
        let Some(report) = &self.report else {
            return String::new();
        };
        let report = shown_path(report);
        let passcodes_only = self.passcodes_only();
        // What devices act on at their next check-in: every succeeded device action
        // (a revocation is no device's and has no state to follow).
        let queued: Vec<(String, u64)> = if passcodes_only {
            let all = self.outcomes.get(&Outcome::Succeeded).copied().unwrap_or(0);
            vec![("reset".to_owned(), all)]
        } else {
            self.succeeded_by_action(|a| {
                crate::rules::Family::of_report(a) != crate::rules::Family::Sessions
            })
        };
        let queued_total: u64 = queued.iter().map(|(_, n)| n).sum();
        let generated = self.generating;
        // A rehearsal's follow-ups go on in its saved tenant (`<report>.sim.json`).
        let sim = if self.signed_in.as_ref().is_some_and(|w| w.simulated) {
            " --simulate"
        } else {
            ""
        };
        let count = |o: Outcome| self.outcomes.get(&o).copied().unwrap_or(0);
        let unfinished = count(Outcome::Failed) + count(Outcome::NotAttempted);
        let sign_in = self
            .rerun
            .as_ref()
            .map(|r| Rerun::words(&r.sign_in))
            .unwrap_or_default();
        let mut steps = Vec::new();
        if queued_total > 0 && !self.followed {
            let what = if passcodes_only {
                format!(
                    "{queued_total} reset{} queued",
                    if queued_total == 1 { " is" } else { "s are" }
                )
            } else {
                let each: Vec<String> = queued.iter().map(|(a, n)| format!("{a} {n}")).collect();
                format!(
                    "{queued_total} action{} queued ({})",
                    if queued_total == 1 { " is" } else { "s are" },
                    each.join(", ")
                )
            };
            steps.push(format!(
                "{what}: each device acts on it at its next check-in. Follow them with\n      intune-reset status {report}{sign_in} --wait 30m{sim}",
            ));
        }
        if generated > 0 && !self.followed {
            let by = humantime::format_rfc3339_seconds(now + Duration::from_secs(7 * 24 * 3600));
            steps.push(format!(
                "{generated} Android or Windows 10 Mobile device{} will get a new passcode, which Graph shows for 7 days (until about {by}): collect them for their users with\n      intune-reset status {report}{sign_in} --passcodes {}{sim}",
                if generated == 1 { "" } else { "s" },
                fresh_passcodes_file(),
            ));
        }
        if unfinished > 0 {
            let not_reset = if passcodes_only {
                format!(
                    "{unfinished} device{} not reset (failed or not attempted)",
                    if unfinished == 1 { " was" } else { "s were" },
                )
            } else {
                format!(
                    "{unfinished} row{} not done (failed or not attempted)",
                    if unfinished == 1 { " was" } else { "s were" },
                )
            };
            let read_as_job = format!(
                "read the report as a job (its succeeded rows and lost answers are not sent again; `plan` shows what would be):\n      intune-reset plan {report}"
            );
            steps.push(match &self.rerun {
                Some(rerun) if rerun.simulated => format!(
                    "{not_reset}: a rehearsal is not resumed; rehearse the job again with\n      intune-reset run{}",
                    Rerun::words(&rerun.run)
                ),
                Some(rerun) => format!(
                    "{not_reset}: finish them, never resetting a device twice, with\n      intune-reset run{} --resume --report {report}\n    or {read_as_job}",
                    Rerun::words(&rerun.run)
                ),
                None => {
                    let files: Vec<String> = self
                        .files
                        .iter()
                        .filter(|f| !f.source.starts_with('('))
                        .map(|f| shown_path(Path::new(&f.source)))
                        .collect();
                    format!(
                        "{not_reset}: finish them, never resetting a device twice, with\n      intune-reset run {} --resume --report {report}{sim} (and the same flags)\n    or {read_as_job}",
                        files.join(" "),
                    )
                }
            });
        }
        next_steps_text(&steps)
    }
}

/// A report's `action` cell of a passcode reset (`remove-passcode`, `reset-passcode`,
/// `reset-pin`, `auto`).
fn is_passcode_action(action: &str) -> bool {
    crate::rules::Family::of_report(action) == crate::rules::Family::Passcode
}

/// The "next steps" block every summary ends with (the CLI reads its `  - ` items back
/// for `--log-format json`): empty when there is nothing to do.
pub fn next_steps_text(steps: &[String]) -> String {
    if steps.is_empty() {
        return String::new();
    }
    let mut out = String::from("next steps:\n");
    for step in steps {
        out.push_str(&format!("  - {step}\n"));
    }
    out
}

/// Platforms whose reset makes Graph generate a passcode (shown in
/// `deviceActionResults`): Android and Windows 10 Mobile; iOS/iPadOS lose theirs.
pub fn generates_passcode(platform: &str) -> bool {
    platform.starts_with("android") || platform == "windows_mobile"
}

/// A path as a shell would take it (see [`shell_word`]).
pub fn shown_path(path: &Path) -> String {
    shell_word(&path.display().to_string())
}

/// A word as PowerShell and POSIX shells both take it: bare when it holds only
/// characters neither shell treats specially, else in single quotes (literal in both).
/// A single quote inside is the one case the two differ: PowerShell doubles it, POSIX
/// closes the quotes around an escaped one; each platform gets its own shell's form.
/// (cmd.exe takes no single quotes: the README says to use PowerShell.)
pub fn shell_word(word: &str) -> String {
    let bare = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if bare {
        return word.to_owned();
    }
    let inner = if cfg!(windows) {
        word.replace('\'', "''")
    } else {
        word.replace('\'', "'\\''")
    };
    format!("'{inner}'")
}

/// A passcodes file name that does not exist yet in the current folder, where the
/// printed command runs: `passcodes.csv`, else `passcodes-2.csv`, ... (`status`
/// refuses a file that exists rather than overwrite generated passcodes).
pub fn fresh_passcodes_file() -> String {
    shown_path(&unused_name(PathBuf::from("passcodes.csv")))
}

/// Counts a key without allocating once the key is known (called for every row).
fn bump(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}

fn section(out: &mut String, title: &str, items: impl Iterator<Item = (String, u64)>) {
    let items: Vec<(String, u64)> = items.collect();
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("{title}:\n"));
    let width = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, n) in items {
        out.push_str(&format!("  {k:<width$}  {n:>7}\n"));
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub fn report_path(explicit: &Option<PathBuf>, files: &[PathBuf], format: ReportFormat) -> PathBuf {
    explicit.clone().unwrap_or_else(|| {
        let path = default_path(
            files
                .first()
                .map(PathBuf::as_path)
                .unwrap_or(Path::new("job")),
            format,
            SystemTime::now(),
        );
        unused_name(path)
    })
}

/// `path`, or `<stem>-2.<ext>`, `-3`, ... when two commands start in the same second:
/// a default report never replaces another.
pub fn unused_name(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (2..)
        .map(|n| path.with_file_name(format!("{stem}-{n}{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(path)
}

pub fn write_summary_json(
    path: &Path,
    summary: &impl serde::Serialize,
) -> Result<(), CommandError> {
    let err = summary_error(path);
    create_parent(path).map_err(&err)?;
    let text = serde_json::to_string_pretty(summary).map_err(|e| err(e.into()))?;
    std::fs::write(path, text + "\n").map_err(err)
}

/// Creates `--summary-json`'s folder, and the file if missing (without truncating it):
/// a path that cannot be written fails now, before `run` sends anything.
pub fn check_summary_path(path: &Path) -> Result<(), CommandError> {
    let err = summary_error(path);
    create_parent(path).map_err(&err)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(err)
}

fn summary_error(path: &Path) -> impl Fn(io::Error) -> CommandError + '_ {
    move |source| CommandError::Write {
        what: "the summary",
        path: path.to_owned(),
        source,
    }
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_18_flag_only_targets_are_named_as_flags_not_as_csv_files() {
        let file = |source: &str, rows| FileSummary {
            source: source.into(),
            format: "CSV".into(),
            encoding: "UTF-8".into(),
            rows,
            blank_lines: 0,
        };
        let mut s = Summary::new("run");
        s.rows = 3;
        s.files = vec![file("(--user)", 2), file("(--group)", 1)];
        let text = s.render();
        assert!(
            text.starts_with("run: 3 rows from --user, --group\n"),
            "{text}"
        );
        assert!(
            text.contains("  --user: 2 users named on the command line\n"),
            "{text}"
        );
        assert!(
            text.contains("  --group: 1 group named on the command line\n"),
            "{text}"
        );
        assert!(!text.contains("CSV"), "{text}");

        s.files.insert(0, file("jobs.csv", 4));
        let text = s.render();
        assert!(
            text.starts_with("run: 3 rows from 1 file and --user, --group\n"),
            "{text}"
        );
        assert!(text.contains("  jobs.csv: 4 rows (CSV, UTF-8)\n"), "{text}");
    }

    /// The end of a run as a responder reads it: counts split by outcome, and the next
    /// steps with their commands.
    #[test]
    fn the_run_summary_ends_with_what_to_do_next() {
        let mut s = Summary::new("run");
        for (outcome, platform, n) in [
            (Outcome::Succeeded, "ios", 5),
            (Outcome::Succeeded, "android_work_profile", 3),
            (Outcome::Failed, "android_work_profile", 1),
            (Outcome::NotAttempted, "ios", 1),
            (Outcome::Ineligible, "macos", 2),
        ] {
            for _ in 0..n {
                s.count_parts(outcome, platform, "");
            }
        }
        s.files = vec![FileSummary {
            source: "jobs/incident 7.csv".into(),
            format: "CSV".into(),
            encoding: "UTF-8".into(),
            rows: 12,
            blank_lines: 0,
        }];
        s.report = Some(PathBuf::from("reports/incident-20261201T120000Z.csv"));
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        let mut text = s.render();
        let cut = text.find("next steps:").unwrap();
        text.truncate(cut);
        text.push_str(&s.next_steps_at(at));
        insta::assert_snapshot!(text);
        // Nothing left to do, nothing said.
        let mut done = Summary::new("run");
        done.count_parts(Outcome::Ineligible, "macos", "");
        done.report = s.report.clone();
        assert_eq!(done.next_steps_at(at), "");
    }

    proptest::proptest! {
        #[test]
        fn csv_lines_read_back_as_written(cells in proptest::collection::vec("\\PC{0,12}|[,\"\r\n a]{0,6}", 1..6)) {
            if cells.len() == 1 && cells[0].is_empty() {
                // A lone empty field is an empty line, which CSV readers skip.
                return Ok(());
            }
            let mut out = Vec::new();
            write_csv_line(&mut out, &cells).unwrap();
            let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&out[..]);
            let record = reader.records().next().unwrap().unwrap();
            let back: Vec<&str> = record.iter().collect();
            proptest::prop_assert_eq!(back, cells.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }

    fn row(source: &str, n: u64) -> ReportRow {
        ReportRow {
            source: source.into(),
            row: n,
            device_id: format!("id-{n}"),
            device_name: format!("Pixel, {n}"),
            serial_number: String::new(),
            user_principal_name: "ana@contoso.com".into(),
            operating_system: "Android".into(),
            os_version: "13".into(),
            platform: "android_work_profile".into(),
            action: "reset_passcode".into(),
            outcome: Outcome::Succeeded,
            reason: "".into(),
            detail: "multi\nline \"quoted\"".into(),
            http_status: Some(204),
            attempts: 1,
            request_id: String::new(),
            client_request_id: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            tenant: String::new(),
        }
    }

    #[test]
    fn a_csv_report_starts_with_a_bom_unless_told_not_to() {
        let dir = tempfile::tempdir().unwrap();
        for (bom, format, starts) in [
            (true, ReportFormat::Csv, &b"\xEF\xBB\xBFsource,row,"[..]),
            (false, ReportFormat::Csv, b"source,row,"),
            // JSON Lines never has one: each line is a JSON document.
            (true, ReportFormat::Jsonl, b"{\"source\""),
        ] {
            let path = dir.path().join(format!("r-{bom}.{}", format.extension()));
            let mut w = ReportWriter::create(&path, format, bom).unwrap();
            w.write(&row("job.csv", 2)).unwrap();
            w.flush().unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.starts_with(starts), "{bom} {format:?}: {bytes:?}");
            assert_eq!(
                bytes.windows(3).filter(|w| *w == BOM).count(),
                usize::from(bom && format == ReportFormat::Csv)
            );
        }
    }

    #[test]
    fn the_final_report_is_in_input_order_and_keeps_its_head() {
        let dir = tempfile::tempdir().unwrap();
        for format in [ReportFormat::Csv, ReportFormat::Jsonl] {
            let path = dir.path().join(format!("r.{}", format.extension()));
            let mut w = ReportWriter::create(&path, format, true).unwrap();
            // As outcomes arrive: file 1 before file 0, rows out of order.
            for (file, source, n) in [
                (1, "b.csv", 3),
                (0, "a.csv", 4),
                (1, "b.csv", 2),
                (0, "a.csv", 2),
            ] {
                w.write_keyed(file, 0, &row(source, n)).unwrap();
            }
            w.flush().unwrap();
            let arrived = std::fs::read(&path).unwrap();
            let permissions = std::fs::metadata(&path).unwrap().permissions();
            assert_eq!(w.finish_in_order().unwrap(), path);
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions(),
                permissions,
                "the ordered report keeps the report's permissions, not a temporary file's"
            );
            let rows = read_all(&path);
            let order: Vec<(String, u64)> =
                rows.iter().map(|r| (r.source.clone(), r.row)).collect();
            assert_eq!(
                order,
                [("a.csv", 2), ("a.csv", 4), ("b.csv", 2), ("b.csv", 3)]
                    .map(|(s, n)| (s.to_owned(), n))
                    .to_vec(),
                "{format:?}"
            );
            let ordered = std::fs::read(&path).unwrap();
            assert_eq!(ordered.len(), arrived.len(), "the same bytes, reordered");
            if format == ReportFormat::Csv {
                assert_eq!(
                    ordered[..20],
                    arrived[..20],
                    "the BOM and header stay first"
                );
            }
            let leftovers: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                .collect();
            assert!(leftovers.is_empty(), "no temporary file is left");
        }
    }

    #[test]
    fn a_report_of_more_rows_than_memory_holds_is_rewritten_in_input_order() {
        // Past the in-memory limit the rows' places go to sorted runs on disk, merged
        // at the end; two devices of one user row keep the order they came in.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut w = ReportWriter::create(&path, ReportFormat::Csv, false).unwrap();
        let n = crate::spill::IN_MEMORY as u64 * 2 + 500;
        for i in (0..n).rev() {
            let mut first = row("a.csv", i + 2);
            first.device_id = format!("first-{i}");
            w.write_keyed(0, 0, &first).unwrap();
            if i % 1000 == 0 {
                let mut second = row("a.csv", i + 2);
                second.device_id = format!("second-{i}");
                w.write_keyed(0, 0, &second).unwrap();
            }
        }
        assert!(w.placed.spilled(), "the test must reach the disk");
        w.finish_in_order().unwrap();
        let rows = read_all(&path);
        let mut expected = Vec::new();
        for i in 0..n {
            expected.push((i + 2, format!("first-{i}")));
            if i % 1000 == 0 {
                expected.push((i + 2, format!("second-{i}")));
            }
        }
        let got: Vec<(u64, String)> = rows.into_iter().map(|r| (r.row, r.device_id)).collect();
        assert_eq!(got.len(), expected.len(), "every row once");
        assert!(got == expected, "rows in input order");
    }

    #[test]
    fn a_report_already_in_input_order_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut w = ReportWriter::create(&path, ReportFormat::Csv, false).unwrap();
        w.write_keyed(0, 0, &row("a.csv", 2)).unwrap();
        w.write_keyed(0, 0, &row("a.csv", 3)).unwrap();
        let before = std::fs::metadata(&path).unwrap();
        w.finish_in_order().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let after = std::fs::metadata(&path).unwrap();
            assert_eq!(
                before.ino(),
                after.ino(),
                "the same file, not a renamed copy"
            );
        }
        let _ = before;
        assert_eq!(read_all(&path).len(), 2);
    }

    fn read_all(path: &Path) -> Vec<ReportRow> {
        let mut rows = Vec::new();
        RunReport::open(path)
            .unwrap()
            .each::<ReportError>(&mut |r| {
                rows.push(r);
                Ok(true)
            })
            .unwrap();
        rows
    }

    #[test]
    fn formula_cells_are_defused() {
        assert_eq!(defuse("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse("+1"), "'+1");
        assert_eq!(defuse("@SUM"), "'@SUM");
        assert_eq!(defuse("iPhone de José"), "iPhone de José");
    }

    #[test]
    fn default_report_path_names_the_job_and_utc_time() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let p = default_path(Path::new("jobs/incident.json"), ReportFormat::Csv, t);
        assert_eq!(p, PathBuf::from("reports/incident-20261118T110640Z.csv"));
    }
    #[test]
    fn default_reports_never_replace_each_other() {
        let dir = tempfile::TempDir::new().unwrap();
        let first = dir.path().join("job-20261122T010203Z.csv");
        assert_eq!(unused_name(first.clone()), first);
        std::fs::write(&first, "").unwrap();
        let second = unused_name(first.clone());
        assert_eq!(second, dir.path().join("job-20261122T010203Z-2.csv"));
        std::fs::write(&second, "").unwrap();
        assert_eq!(
            unused_name(first),
            dir.path().join("job-20261122T010203Z-3.csv")
        );
    }
}
