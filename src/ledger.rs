//! The ledger: the one durable record of a run, `<report>.ledger`, JSON Lines.
//!
//! Everything a resume must know is in it, written before the act it records:
//! - `begin`: a fingerprint (size, SHA-256) of every job file and the plan options, so a
//!   resume of a changed job is refused, and where the run belongs ([`Origin`]: the
//!   tenant, who signed in, whether it was simulated, the settle window its sends are
//!   settled with), so a resume against another tenant, or a real run on a rehearsal's
//!   ledger, is refused;
//! - `session`: each resume, with its own [`Origin`] (a colleague may finish the run);
//! - `pause`: a 429's pause, until when: a resume started at once waits it out;
//! - `claim`: which Intune device a row acts on (and the live facts it was judged by),
//!   written before the row sends anything, so a resumed run knows every device that is
//!   taken, also by rows it will not touch again;
//! - `send`: a `resetPasscode` about to leave, written and synced to disk *before* the
//!   request;
//! - `settled`: a row's report row and its [`Fate`]: final, or not final with Graph's
//!   state certainly unchanged, or not final with its fate unknown.
//!
//! The report is a view of the plan and the ledger: a resumed run writes it anew. The
//! ledger is locked with an OS file lock for as long as a run holds it, so two processes
//! never write one ledger; the OS releases the lock when the process dies.
//!
//! A write that fails (disk full) is undone (the file is cut back to its last whole
//! line) and the ledger refuses every later write, so no record ever follows a torn one;
//! a line torn by a kill is the last line, and a resume cuts it off.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::report::ReportRow;

/// The format of the lines below; a resume refuses a ledger of another version.
const VERSION: u32 = 1;

/// `<report>.ledger`.
/// A time as the ledger (and the report) writes it: RFC 3339, UTC, milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn ledger_path(report: &Path) -> PathBuf {
    let mut name = report.as_os_str().to_owned();
    name.push(".ledger");
    PathBuf::from(name)
}

/// A job row: its file's position among the job files given, and its row number. The
/// same file named twice is two files here, so their rows never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    pub file: u32,
    pub row: u64,
    /// Which of the row's actions (0 for the first or only one; issue 21).
    pub step: u8,
    /// 0 for the row itself; `n` for the n-th device a user row expanded to.
    pub sub: u32,
}

impl RowKey {
    pub fn new(file: u32, row: u64) -> RowKey {
        RowKey::at(file, row, 0)
    }

    /// The row's `step`-th action.
    pub fn at(file: u32, row: u64, step: u8) -> RowKey {
        RowKey {
            file,
            row,
            step,
            sub: 0,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_first(n: &u8) -> bool {
    *n == 0
}

/// What a job file was when the run began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The file as the command line named it (the report's `source`).
    pub source: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// Where a row stands once this run is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Graph's state is known and the row is done (succeeded, or decided without a
    /// reset: ineligible by live facts, duplicate, not found, ambiguous).
    Final,
    /// Not done, and nothing this row sent changed Graph (nothing reached it, or Graph
    /// refused): a resume sends it.
    Unchanged,
    /// Not done, and a reset may have landed: a resume settles it through
    /// `deviceActionResults` before anything is sent.
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Begin {
        version: u32,
        started_at: String,
        files: Vec<Fingerprint>,
        /// The plan options, as [`crate::planner::PlanOptions`] names them.
        action: Option<String>,
        lookup: String,
        /// `--sheet` and `--encoding`, when given: they change which rows the files
        /// hold. Absent in ledgers written before they existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sheet: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encoding: Option<String>,
        /// Where the run belongs. Absent in ledgers written before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
        /// The other tenants of a run across several (issue 22).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tenants: Vec<Origin>,
    },
    /// A resume: who continued the run, and with which settle window (the first
    /// tenant's; `tenants`: the others of a run across several).
    Session {
        started_at: String,
        origin: Origin,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tenants: Vec<Origin>,
    },
    /// Every worker paused after a 429 until `until` (RFC 3339, our clock).
    Pause { until: String },
    Claim {
        file: u32,
        row: u64,
        /// Which of the row's actions (absent: the first or only one).
        #[serde(default, skip_serializing_if = "is_first")]
        step: u8,
        #[serde(default, skip_serializing_if = "is_zero")]
        sub: u32,
        device: String,
        action: String,
        /// The row as the live facts left it, before anything was sent.
        report: Box<ReportRow>,
    },
    Send {
        file: u32,
        row: u64,
        /// Which of the row's actions (absent: the first or only one).
        #[serde(default, skip_serializing_if = "is_first")]
        step: u8,
        #[serde(default, skip_serializing_if = "is_zero")]
        sub: u32,
        device: String,
        /// RFC 3339, our clock, taken just before the request left.
        at: String,
    },
    Settled {
        file: u32,
        row: u64,
        /// Which of the row's actions (absent: the first or only one).
        #[serde(default, skip_serializing_if = "is_first")]
        step: u8,
        #[serde(default, skip_serializing_if = "is_zero")]
        sub: u32,
        fate: Fate,
        report: Box<ReportRow>,
    },
    /// The process closed the run's record in order (the run ended, was interrupted or
    /// aborted, but not killed): with `sends`, this session's POSTs. A ledger whose last
    /// session has no end line was killed there, or had lines cut off its end.
    End { at: String, sends: u64 },
    /// What a row naming a user expanded to, before any of its devices is acted on: a
    /// resume acts on exactly these devices.
    Expand {
        file: u32,
        row: u64,
        /// Which of the row's actions (absent: the first or only one).
        #[serde(default, skip_serializing_if = "is_first")]
        step: u8,
        /// `user ada@contoso.com`.
        target: String,
        /// Intune ids, in the order their rows are numbered (`sub` 1, 2, ...).
        devices: Vec<String>,
    },
}

/// The plan options and files a run began with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    pub files: Vec<Fingerprint>,
    pub action: Option<String>,
    pub lookup: String,
    pub sheet: Option<String>,
    pub encoding: Option<String>,
    /// Where the run belongs; `None` only in ledgers written before it was recorded.
    /// A run across several tenants: the first tenant signed in to.
    pub origin: Option<Origin>,
    /// A run across several tenants (issue 22): the other tenants signed in to.
    pub tenants: Vec<Origin>,
}

/// Where a run belongs: the tenant and identity its resets went out under, whether the
/// tenant was the built-in simulator, and how long after a send Graph may still carry
/// it out (the settle window its lost answers are settled with).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The tenant id the token was issued in (else the tenant as configured).
    pub tenant: String,
    /// `--auth`'s name of the credential: `secret`, `browser`, ...
    pub method: String,
    /// The user's UPN (delegated sign-ins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The app's (or managed identity's) client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The built-in simulator, not a real tenant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub simulated: bool,
    /// The settle window of this session's sends, in milliseconds.
    pub settle_window_ms: u64,
}

impl Origin {
    pub fn new(who: &crate::graph::SignedIn, settle_window: Duration) -> Origin {
        Origin {
            tenant: who.tenant.clone(),
            method: who.method.to_owned(),
            user: who.user.clone(),
            client_id: who.client_id.clone(),
            simulated: who.simulated,
            settle_window_ms: settle_window.as_millis().min(u64::MAX as u128) as u64,
        }
    }

    pub fn settle_window(&self) -> Duration {
        Duration::from_millis(self.settle_window_ms)
    }

    /// `ada@contoso.com (browser) in tenant T`, for refusals.
    pub fn describe(&self) -> String {
        let who = self
            .user
            .as_deref()
            .or(self.client_id.as_deref())
            .unwrap_or("an unnamed identity");
        let tenant = if self.simulated {
            format!("the simulated tenant {}", self.tenant)
        } else {
            format!("tenant {}", self.tenant)
        };
        format!("{who} ({} sign-in) in {tenant}", self.method)
    }

    /// Why `now` may not continue a run that began as `self`, if it may not: another
    /// tenant, or a real tenant continuing a rehearsal (or the reverse). Another user or
    /// app of the same tenant may (a colleague finishing the run): it is recorded.
    pub fn refuses(&self, now: &Origin) -> Option<String> {
        if self.simulated && !now.simulated {
            return Some(format!(
                "its ledger is a rehearsal's: it began against {}, and its devices were never reset in a real tenant. Start a new run with another --report instead of resuming it",
                self.describe()
            ));
        }
        if !self.simulated && now.simulated {
            return Some(format!(
                "its ledger is a real run's ({}); a simulated tenant cannot settle its resets. Resume it without --simulate",
                self.describe()
            ));
        }
        if !self.tenant.eq_ignore_ascii_case(&now.tenant) {
            return Some(format!(
                "the run began in tenant {}, and this sign-in is to tenant {}: its devices and resets are in the first. Sign in to that tenant (--tenant) to resume it",
                self.tenant, now.tenant
            ));
        }
        None
    }
}

/// Which device a row claimed, with the action and the row its live facts gave.
#[derive(Debug, Clone)]
pub struct Claim {
    pub device: String,
    pub action: String,
    pub report: ReportRow,
}

/// Resets whose fate is unknown: any reset entry since `first` (less the clock-skew
/// allowance) is theirs, and Graph's state can be read once `last`'s settle window
/// has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenSends {
    pub first: SystemTime,
    pub last: SystemTime,
    /// When the last send left, on this process's monotonic clock, if this process sent
    /// it: its settle window is then measured on that clock, which no wall-clock jump
    /// (NTP, a laptop waking up) can shorten.
    pub left: Option<tokio::time::Instant>,
    /// The settle window the sends were made under (an earlier session's, read from
    /// the ledger): settling waits at least this long, whatever this run's `--timeout`.
    pub window: Option<Duration>,
}

impl OpenSends {
    /// Sends an earlier process made (read back from the ledger).
    pub fn at(t: SystemTime, window: Option<Duration>) -> OpenSends {
        OpenSends {
            first: t,
            last: t,
            left: None,
            window,
        }
    }

    pub fn and(self, t: SystemTime, window: Option<Duration>) -> OpenSends {
        OpenSends {
            first: self.first.min(t),
            last: self.last.max(t),
            left: None,
            window: self.window.max(window),
        }
    }

    /// A send this process made: recorded in the ledger at `recorded`, on its way at
    /// `posted` (after the ledger was synced), `left` on the monotonic clock.
    pub fn sent_now(
        recorded: SystemTime,
        posted: SystemTime,
        left: tokio::time::Instant,
    ) -> OpenSends {
        OpenSends {
            first: recorded,
            last: posted,
            left: Some(left),
            window: None,
        }
    }
}

/// What the ledger says of one row.
#[derive(Debug, Clone, Default)]
pub struct RowHistory {
    pub claim: Option<Claim>,
    /// Sends not yet known to have changed nothing.
    pub open: Option<OpenSends>,
    /// Sends recorded in all, over every run.
    pub sends: u32,
    /// When the first and the last of them left (RFC 3339 as recorded; `audit` looks for
    /// Intune's records of them around these times).
    pub first_sent: Option<SystemTime>,
    pub last_sent: Option<SystemTime>,
    /// The row's final report row, once it has one.
    pub done: Option<ReportRow>,
}

/// A ledger read back: how the run began, and every row it touched.
#[derive(Debug, Clone)]
pub struct History {
    pub begin: Begin,
    /// When the run began (RFC 3339, as its begin line says): named when it resumes.
    pub started_at: String,
    pub rows: HashMap<RowKey, RowHistory>,
    /// The devices each expanded row (by its own key, `sub` 0) stands for.
    pub expansions: HashMap<RowKey, Vec<String>>,
    /// Each resume, in order: who continued the run.
    pub sessions: Vec<Origin>,
    /// A run across several tenants: every other tenant any session signed in to.
    pub tenants: Vec<Origin>,
    /// When each resume began (RFC 3339, as its line says), in the same order.
    pub session_starts: Vec<String>,
    /// The latest end of a 429 pause any session recorded.
    pub paused_until: Option<SystemTime>,
    /// The newest sends (at most [`RECENT_SENDS`]), oldest first: a resume started at
    /// once counts them against Intune's write window.
    pub recent_sends: VecDeque<SystemTime>,
    /// The latest time any line records (a send, a session's start, a row's end): with
    /// the run's start, the span `audit` reads Intune's records of.
    pub last_at: Option<SystemTime>,
    /// The last line's chain hash; `None` for a ledger begun before lines were chained.
    pub chain: Option<String>,
    /// Whole lines read.
    pub lines: u64,
    /// The last session closed the record in order (an `end` line after it): without
    /// one, it was killed, or lines were cut off the ledger's end.
    pub ended: bool,
}

/// Sends kept for the write window of a resume: Intune's limit is 200 per 20 s.
pub const RECENT_SENDS: usize = 400;

impl History {
    /// The settle window of the session writing now (the last one on record).
    fn window(&self) -> Option<Duration> {
        self.sessions
            .last()
            .or(self.begin.origin.as_ref())
            .map(Origin::settle_window)
    }

    fn saw(&mut self, t: Option<SystemTime>) {
        self.last_at = self.last_at.max(t);
    }

    /// Folds events in ledger order.
    fn apply(&mut self, event: Event) {
        match event {
            Event::Begin { .. } => {}
            Event::Session {
                origin,
                started_at,
                tenants,
            } => {
                self.saw(crate::graph::verify::parse_timestamp(&started_at));
                self.session_starts.push(started_at);
                self.tenants.extend(tenants);
                self.sessions.push(origin);
                self.ended = false;
            }
            Event::End { at, .. } => {
                self.saw(crate::graph::verify::parse_timestamp(&at));
                self.ended = true;
            }
            Event::Pause { until } => {
                if let Some(t) = crate::graph::verify::parse_timestamp(&until) {
                    self.paused_until = self.paused_until.max(Some(t));
                }
            }
            Event::Expand {
                file,
                row,
                step,
                devices,
                ..
            } => {
                self.expansions.insert(RowKey::at(file, row, step), devices);
            }
            Event::Claim {
                file,
                row,
                step,
                sub,
                device,
                action,
                report,
            } => {
                let h = self
                    .rows
                    .entry(RowKey {
                        file,
                        row,
                        step,
                        sub,
                    })
                    .or_default();
                h.claim = Some(Claim {
                    device,
                    action,
                    report: *report,
                });
            }
            Event::Send {
                file,
                row,
                step,
                sub,
                at,
                ..
            } => {
                // A send whose time cannot be read is taken as sent long ago: every
                // reset entry Graph shows then counts as its own (the safe side).
                let t =
                    crate::graph::verify::parse_timestamp(&at).unwrap_or(SystemTime::UNIX_EPOCH);
                let window = self.window();
                self.saw(Some(t));
                let h = self
                    .rows
                    .entry(RowKey {
                        file,
                        row,
                        step,
                        sub,
                    })
                    .or_default();
                h.sends += 1;
                h.first_sent = Some(h.first_sent.map_or(t, |f| f.min(t)));
                h.last_sent = Some(h.last_sent.map_or(t, |l| l.max(t)));
                h.open = Some(
                    h.open
                        .map_or(OpenSends::at(t, window), |o| o.and(t, window)),
                );
                if self.recent_sends.len() == RECENT_SENDS {
                    self.recent_sends.pop_front();
                }
                self.recent_sends.push_back(t);
            }
            Event::Settled {
                file,
                row,
                step,
                sub,
                fate,
                report,
            } => {
                self.saw(crate::graph::verify::parse_timestamp(&report.finished_at));
                let h = self
                    .rows
                    .entry(RowKey {
                        file,
                        row,
                        step,
                        sub,
                    })
                    .or_default();
                match fate {
                    Fate::Final => {
                        h.open = None;
                        h.done = Some(*report);
                    }
                    Fate::Unchanged => h.open = None,
                    Fate::Unknown => {}
                }
            }
        }
    }
}

/// Why the run report `input` is not the record of the run this ledger holds, if it is
/// not: it names a job file the run did not read, or shows POSTs to a device the ledger
/// records no send to (another run's ledger, or one cut short). `audit` and `evidence`
/// refuse such a pair.
pub fn check_report(input: &crate::report::RunReport, history: &History) -> Result<(), String> {
    let sources: Vec<&str> = history
        .begin
        .files
        .iter()
        .map(|f| f.source.as_str())
        .collect();
    let sent: std::collections::HashSet<String> = history
        .rows
        .values()
        .filter(|h| h.sends > 0)
        .filter_map(|h| h.claim.as_ref())
        .map(|c| c.device.to_ascii_lowercase())
        .collect();
    let revoked = history.rows.values().any(|h| {
        h.sends > 0
            && h.claim
                .as_ref()
                .is_some_and(|c| c.action == crate::rules::Action::RevokeSessions.as_str())
    });
    let mut why = None;
    input
        .each::<crate::report::ReportError>(&mut |row| {
            // `--user`, `--group`, `--where` rows come from `(--user)` and the like,
            // which the ledger fingerprints as job files too.
            if !sources.contains(&row.source.as_str()) {
                why = Some(format!(
                    "row {} of the report comes from {}, a job file its run did not read ({})",
                    row.row,
                    row.source,
                    sources.join(", ")
                ));
                return Ok(false);
            }
            let posts = row.attempts;
            // A revocation is sent to a user, claimed by object id: the report's row
            // names the user as the job did (a UPN), so the ledger must record some
            // revocation sent.
            if posts > 0 && crate::rules::Family::of_report(&row.action).on_users() {
                if !revoked {
                    why = Some(format!(
                        "row {} of {} shows {posts} revocation POST{}, which the ledger does not record (another run's ledger, or one cut short)",
                        row.row,
                        row.source,
                        if posts == 1 { "" } else { "s" }
                    ));
                    return Ok(false);
                }
                return Ok(true);
            }
            if posts > 0 && !sent.contains(&row.device_id.to_ascii_lowercase()) {
                why = Some(format!(
                    "row {} of {} shows {posts} POST{} to device {}, which the ledger does not record (another run's ledger, or one cut short)",
                    row.row,
                    row.source,
                    if posts == 1 { "" } else { "s" },
                    row.device_id
                ));
                return Ok(false);
            }
            Ok(true)
        })
        .map_err(|e| e.to_string())?;
    why.map_or(Ok(()), Err)
}

/// Why a ledger cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot open the run's ledger {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "the run's ledger {path} is held by another intune-reset process that is still running; wait for it to finish"
    )]
    Held { path: PathBuf },
    #[error(
        "the run's ledger {path} is damaged at line {line}: {why}; nothing can rely on it from there (a resume, an audit, an evidence pack)"
    )]
    Damaged {
        path: PathBuf,
        line: u64,
        why: String,
    },
}

/// The ledger of a run in progress. Every method writes one whole line with one
/// `write`; sends are also synced to disk before they return.
pub struct Ledger {
    path: PathBuf,
    /// Holds the OS lock for as long as the run lasts.
    file: File,
    /// Serialises writes; the file's length after the last whole line.
    end: Mutex<Tail>,
    /// Lines written, and lines known to be on disk (group commit: one sync serves
    /// every line written before it).
    written: AtomicU64,
    synced: Mutex<u64>,
    /// A write failed: nothing more is recorded (see the module doc).
    broken: AtomicBool,
    /// The session ended ([`Ledger::close`]): nothing more is recorded, and the lock is
    /// released even while a clone of this ledger lives on (the follow's pause hook).
    closed: AtomicBool,
}

/// Where the next line goes, and the chain hash it follows from.
struct Tail {
    /// The file's length after the last whole line.
    end: u64,
    /// The last line's chain hash (`""` before the first line); `None` in a ledger
    /// begun before lines were chained, which stays unchained.
    chain: Option<String>,
}

/// Every line of a ledger begun by this version starts with `{"chain":"<hex>",`: the
/// SHA-256 of the line before's chain hash, a line feed, and this line without its chain
/// (`{` and the rest). A line edited, removed or inserted breaks every hash after it, so
/// [`verify_chain`] (and every read of the ledger) finds where. A cut at the end leaves a
/// chain that holds: the evidence pack's manifest records the last hash and the line
/// count, which a shorter ledger no longer matches.
const CHAIN_PREFIX: &[u8] = b"{\"chain\":\"";

fn chain_hash(previous: &str, body: &[u8]) -> String {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(previous.as_bytes());
    digest.update(b"\n");
    digest.update(body);
    hex(digest.finish().as_ref())
}

/// Lower-case hex, as the ledger writes every SHA-256.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A line's chain hash and the line without it (`{` and the rest, no line feed), when
/// it has one.
fn split_chain(line: &[u8]) -> Option<(&str, Vec<u8>)> {
    let rest = line.strip_prefix(CHAIN_PREFIX)?;
    let hash = std::str::from_utf8(rest.get(..64)?).ok()?;
    let rest = rest.get(64..)?.strip_prefix(b"\",")?;
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    let mut body = Vec::with_capacity(rest.len() + 1);
    body.push(b'{');
    body.extend_from_slice(rest);
    Some((hash, body))
}

/// The line for `event` after `previous` (`None`: unchained), with its line feed, and
/// its chain hash.
fn chained_line(event: &Event, previous: Option<&str>) -> io::Result<(Vec<u8>, Option<String>)> {
    let body = serde_json::to_vec(event).map_err(io::Error::other)?;
    let Some(previous) = previous else {
        let mut line = body;
        line.push(b'\n');
        return Ok((line, None));
    };
    let hash = chain_hash(previous, &body);
    let mut line = Vec::with_capacity(body.len() + 80);
    line.extend_from_slice(CHAIN_PREFIX);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\",");
    line.extend_from_slice(&body[1..]);
    line.push(b'\n');
    Ok((line, Some(hash)))
}

/// What [`verify_chain`] found: the ledger's whole lines and the last chain hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Whole lines (a torn last line is not counted).
    pub lines: u64,
    /// The last line's chain hash; `None` for a ledger begun before lines were chained.
    pub head: Option<String>,
    /// Bytes of a last line torn by a kill, after the whole lines.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub torn_bytes: u64,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Follows the chain from `previous` through `line` (number `n`): the new hash, or why
/// the line does not follow.
fn follow(previous: Option<&str>, line: &[u8], n: u64) -> Result<Option<String>, String> {
    let Some(previous) = previous else {
        return Ok(None);
    };
    let Some((hash, body)) = split_chain(line) else {
        return Err(format!(
            "line {n} carries no chain hash in a ledger whose lines are chained: it was written by hand or by another program"
        ));
    };
    let expected = chain_hash(previous, &body);
    if hash != expected {
        return Err(format!(
            "line {n} does not follow from the line before it (its chain hash differs): the ledger was edited there, or a line before it was removed or inserted"
        ));
    }
    Ok(Some(expected))
}

/// Checks the chain of the ledger at `path` line by line, without taking it.
pub fn verify_chain(path: &Path) -> Result<ChainHead, LedgerError> {
    let io_err = |source| LedgerError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut reader = BufReader::new(&file);
    let mut line = Vec::new();
    let mut lines = 0u64;
    let mut chain: Option<String> = None;
    let mut torn_bytes = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io_err)?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            torn_bytes = n as u64;
            break;
        }
        lines += 1;
        let damaged = |why: String| LedgerError::Damaged {
            path: path.to_owned(),
            line: lines,
            why,
        };
        chain = if lines == 1 {
            match split_chain(&line) {
                Some(_) => follow(Some(""), &line, 1).map_err(damaged)?,
                None => None,
            }
        } else {
            follow(chain.as_deref(), &line, lines).map_err(damaged)?
        };
    }
    Ok(ChainHead {
        lines,
        head: chain,
        torn_bytes,
    })
}

fn lock(file: &File, path: &Path) -> Result<(), LedgerError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::Held {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(LedgerError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

impl Ledger {
    /// Starts the ledger of a new run: refuses an existing file, locks, writes `begin`
    /// and syncs it.
    pub fn create(path: &Path, begin: &Begin) -> Result<Ledger, LedgerError> {
        let io_err = |source| LedgerError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_err)?;
        lock(&file, path)?;
        let ledger = Ledger::over(path, file, 0, Some(String::new()));
        ledger.begin(begin).map_err(io_err)?;
        Ok(ledger)
    }

    /// The first line: how the run began. Synced before anything else happens.
    pub fn begin(&self, begin: &Begin) -> io::Result<()> {
        self.append(
            &Event::Begin {
                version: VERSION,
                started_at: timestamp(SystemTime::now()),
                files: begin.files.clone(),
                action: begin.action.clone(),
                lookup: begin.lookup.clone(),
                sheet: begin.sheet.clone(),
                encoding: begin.encoding.clone(),
                origin: begin.origin.clone(),
                tenants: begin.tenants.clone(),
            },
            true,
        )
    }

    /// The last line of a session that closes the record in order, synced.
    pub fn end(&self, sends: u64) -> io::Result<()> {
        self.append(
            &Event::End {
                at: timestamp(SystemTime::now()),
                sends,
            },
            true,
        )
    }

    /// A resume: who continues the run, synced before anything is sent.
    pub fn session(&self, origin: &Origin, tenants: &[Origin]) -> io::Result<()> {
        self.append(
            &Event::Session {
                started_at: timestamp(SystemTime::now()),
                origin: origin.clone(),
                tenants: tenants.to_vec(),
            },
            true,
        )
    }

    /// Every worker pauses until `until` (a 429): on disk before this returns, so a
    /// resume started during the pause waits it out.
    pub fn pause(&self, until: SystemTime) -> io::Result<()> {
        self.append(
            &Event::Pause {
                until: timestamp(until),
            },
            true,
        )
    }

    /// Opens the ledger of an earlier run to continue it: locks it, reads it back
    /// (through the locked handle: on Windows no other handle may read it), and cuts off
    /// a last line torn by a kill. `Ok(None)`: the file holds no `begin` (the run was
    /// killed before it recorded anything, so it sent nothing).
    pub fn resume(path: &Path) -> Result<(Ledger, Option<History>), LedgerError> {
        let io_err = |source| LedgerError::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err)?;
        lock(&file, path)?;
        let (history, whole) = read_history(&file, path)?;
        let len = file.metadata().map_err(io_err)?.len();
        if whole < len {
            tracing::warn!(
                "the ledger {} ends with a line torn by a kill ({} bytes); it is cut off",
                path.display(),
                len - whole
            );
            file.set_len(whole).map_err(io_err)?;
        }
        (&file).seek(SeekFrom::Start(whole)).map_err(io_err)?;
        // A ledger with no line yet starts a chain; an unchained one (begun before lines
        // were chained) stays unchained.
        let chain = match &history {
            Some(h) => h.chain.clone(),
            None => Some(String::new()),
        };
        Ok((Ledger::over(path, file, whole, chain), history))
    }

    /// Reads the ledger of a run without taking it (`audit`, `evidence`): every whole
    /// line, a last line torn by a kill left out. `Ok(None)`: it holds no `begin`. A run
    /// still holding it is refused (its record is not finished; on Windows its lock
    /// keeps other readers out anyway).
    pub fn read(path: &Path) -> Result<Option<History>, LedgerError> {
        let file = open_finished(path)?;
        let (history, _) = read_history(&file, path)?;
        Ok(history)
    }

    fn over(path: &Path, file: File, end: u64, chain: Option<String>) -> Ledger {
        Ledger {
            path: path.to_owned(),
            file,
            end: Mutex::new(Tail { end, chain }),
            written: AtomicU64::new(0),
            synced: Mutex::new(0),
            broken: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Ends the session's record: nothing more is written, and the OS lock is released
    /// now, so `audit` and `evidence` may read the ledger at once (`run --follow
    /// --audit`), whoever still holds this handle.
    pub fn close(&self) {
        let _tail = self.end.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.file.unlock();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the run stops when a write to this ledger failed.
    pub fn unwritable(&self, e: &io::Error) -> crate::pacing::AbortReason {
        crate::pacing::AbortReason::Unrecorded(format!(
            "the run's ledger {} cannot be written ({e})",
            self.path.display()
        ))
    }

    /// A claim, before the row sends anything.
    pub fn claim(&self, key: RowKey, claim: &Claim) -> io::Result<()> {
        self.append(
            &Event::Claim {
                file: key.file,
                row: key.row,
                step: key.step,
                sub: key.sub,
                device: claim.device.clone(),
                action: claim.action.clone(),
                report: Box::new(claim.report.clone()),
            },
            false,
        )
    }

    /// A send about to leave: on disk before this returns.
    pub fn send(&self, key: RowKey, device: &str, at: SystemTime) -> io::Result<()> {
        self.append(
            &Event::Send {
                file: key.file,
                row: key.row,
                step: key.step,
                sub: key.sub,
                device: device.to_owned(),
                at: timestamp(at),
            },
            true,
        )
    }

    pub fn settled(&self, key: RowKey, fate: Fate, report: &ReportRow) -> io::Result<()> {
        self.append(
            &Event::Settled {
                file: key.file,
                row: key.row,
                step: key.step,
                sub: key.sub,
                fate,
                report: Box::new(report.clone()),
            },
            false,
        )
    }

    /// What a user row expands to, before any of its devices is acted on.
    pub fn expand(&self, key: RowKey, target: &str, devices: &[String]) -> io::Result<()> {
        self.append(
            &Event::Expand {
                file: key.file,
                row: key.row,
                step: key.step,
                target: target.to_owned(),
                devices: devices.to_vec(),
            },
            false,
        )
    }

    /// Syncs everything written so far (the end of a run).
    pub fn sync(&self) -> io::Result<()> {
        self.sync_through(self.written.load(Ordering::SeqCst))
    }

    fn append(&self, event: &Event, durable: bool) -> io::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(io::Error::other(
                "the run's record is closed: its session ended",
            ));
        }
        if self.broken.load(Ordering::SeqCst) {
            return Err(io::Error::other(
                "an earlier write to the ledger failed, so nothing more is recorded",
            ));
        }
        let seq = {
            let mut tail = self.end.lock().unwrap_or_else(|e| e.into_inner());
            // Chained under the lock: the line before is the one written last.
            let (line, hash) = chained_line(event, tail.chain.as_deref())?;
            if let Err(e) = (&self.file).write_all(&line) {
                // Undo a partial line, so the ledger still ends with a whole one.
                self.broken.store(true, Ordering::SeqCst);
                let _ = self.file.set_len(tail.end);
                let _ = (&self.file).seek(SeekFrom::Start(tail.end));
                return Err(e);
            }
            tail.end += line.len() as u64;
            if hash.is_some() {
                tail.chain = hash;
            }
            self.written.fetch_add(1, Ordering::SeqCst) + 1
        };
        if durable {
            self.sync_through(seq)?;
        }
        Ok(())
    }

    /// Returns once line `seq` is on disk; the first waiter syncs for all.
    fn sync_through(&self, seq: u64) -> io::Result<()> {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        if *synced >= seq {
            return Ok(());
        }
        let target = self.written.load(Ordering::SeqCst);
        if let Err(e) = self.file.sync_data() {
            self.broken.store(true, Ordering::SeqCst);
            return Err(e);
        }
        *synced = target;
        Ok(())
    }
}

/// The ledger at `path` opened to read, with a shared lock: refused while a run holds
/// it (its record is not finished; on Windows its lock keeps other readers out anyway).
fn open_finished(path: &Path) -> Result<File, LedgerError> {
    let file = File::open(path).map_err(|source| LedgerError::Io {
        path: path.to_owned(),
        source,
    })?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::Held {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(LedgerError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Every whole line of the ledger at `path`, in order, as its events (a last line torn
/// by a kill left out): what the evidence pack's timeline is drawn from. Read without
/// taking the ledger; a run still holding it is refused, as in [`Ledger::read`].
pub fn each_event(path: &Path, each: &mut dyn FnMut(&Event)) -> Result<(), LedgerError> {
    let io_err = |source| LedgerError::Io {
        path: path.to_owned(),
        source,
    };
    let file = open_finished(path)?;
    let mut reader = BufReader::new(&file);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io_err)? == 0 {
            return Ok(());
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            return Ok(());
        }
        let event: Event = serde_json::from_slice(&line).map_err(|e| LedgerError::Damaged {
            path: path.to_owned(),
            line: number,
            why: e.to_string(),
        })?;
        each(&event);
    }
}

/// Reads every whole line; returns the history (if the ledger has begun) and the
/// length of the whole lines. Only the last line may be torn; a broken line anywhere
/// else means the file was damaged, and guessing what it said could reset a device
/// twice.
fn read_history(file: &File, path: &Path) -> Result<(Option<History>, u64), LedgerError> {
    let mut reader = BufReader::new(file);
    let mut history: Option<History> = None;
    let mut whole = 0u64;
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| LedgerError::Io {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            // Torn by a kill mid-write: the act it would record never happened.
            break;
        }
        let damaged = |why: String| LedgerError::Damaged {
            path: path.to_owned(),
            line: number,
            why,
        };
        let event: Event = serde_json::from_slice(&line).map_err(|e| damaged(e.to_string()))?;
        // The begin line says whether the ledger is chained; every line after it must
        // then follow from the one before.
        let previous = match &history {
            None if split_chain(&line).is_some() => Some(String::new()),
            None => None,
            Some(h) => h.chain.clone(),
        };
        let chain = follow(previous.as_deref(), &line, number).map_err(&damaged)?;
        match (&mut history, event) {
            (
                None,
                Event::Begin {
                    version,
                    started_at,
                    files,
                    action,
                    lookup,
                    sheet,
                    encoding,
                    origin,
                    tenants,
                    ..
                },
            ) => {
                if version != VERSION {
                    return Err(damaged(format!(
                        "it is of format {version}; this intune-reset reads format {VERSION}"
                    )));
                }
                let began = crate::graph::verify::parse_timestamp(&started_at);
                history = Some(History {
                    started_at,
                    begin: Begin {
                        files,
                        action,
                        lookup,
                        sheet,
                        encoding,
                        origin,
                        tenants: tenants.clone(),
                    },
                    rows: HashMap::new(),
                    expansions: HashMap::new(),
                    sessions: Vec::new(),
                    tenants,
                    session_starts: Vec::new(),
                    paused_until: None,
                    recent_sends: VecDeque::new(),
                    last_at: began,
                    chain: None,
                    lines: 0,
                    ended: false,
                });
            }
            (None, _) => {
                return Err(damaged(
                    "it does not start with the run's begin line".into(),
                ));
            }
            (Some(_), Event::Begin { .. }) => {
                return Err(damaged("a second begin line".into()));
            }
            (Some(h), event) => h.apply(event),
        }
        if let Some(h) = &mut history {
            h.chain = chain;
            h.lines = number;
        }
        whole += n as u64;
    }
    Ok((history, whole))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Outcome;
    use std::borrow::Cow;

    fn begin() -> Begin {
        Begin {
            tenants: Vec::new(),
            files: vec![Fingerprint {
                source: "job.csv".into(),
                bytes: 10,
                sha256: "ab".into(),
            }],
            action: Some("auto".into()),
            lookup: "auto".into(),
            sheet: None,
            encoding: None,
            origin: Some(origin(false, 60_000)),
        }
    }

    fn origin(simulated: bool, settle_window_ms: u64) -> Origin {
        Origin {
            tenant: "6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10".into(),
            method: "secret".into(),
            user: None,
            client_id: Some("0c4d2a7e-5b1f-4e8a-9d3c-7f6e5d4c3b2a".into()),
            simulated,
            settle_window_ms,
        }
    }

    fn row(n: u64, outcome: Outcome) -> ReportRow {
        ReportRow {
            source: "job.csv".into(),
            row: n,
            device_id: format!("d{n}"),
            device_name: "é".into(),
            serial_number: String::new(),
            user_principal_name: String::new(),
            operating_system: String::new(),
            os_version: String::new(),
            platform: Cow::Borrowed("ios"),
            action: Cow::Borrowed("remove-passcode"),
            outcome,
            reason: Cow::Borrowed(""),
            detail: Cow::Borrowed(""),
            http_status: None,
            attempts: 1,
            request_id: String::new(),
            client_request_id: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            tenant: String::new(),
        }
    }

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    /// A ledger of four lines: begin, a claim, a send, a settlement. Written under
    /// another name and copied: `path` is a file no lock was ever taken on, so a process
    /// another test forks meanwhile cannot hold this test's lock on for a moment.
    fn four_lines(path: &Path) {
        let scratch = path.with_extension("scratch");
        four_lines_at(&scratch);
        std::fs::copy(&scratch, path).unwrap();
    }

    fn four_lines_at(path: &Path) {
        let ledger = Ledger::create(path, &begin()).unwrap();
        let key = RowKey::new(0, 2);
        let claim = Claim {
            device: "d2".into(),
            action: "remove-passcode".into(),
            report: row(2, Outcome::Planned),
        };
        ledger.claim(key, &claim).unwrap();
        ledger.send(key, "d2", at("2026-11-22T10:00:00Z")).unwrap();
        ledger
            .settled(key, Fate::Final, &row(2, Outcome::Succeeded))
            .unwrap();
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn regression_20_2_every_line_of_a_new_ledger_is_chained_to_the_one_before() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        four_lines(&path);
        let text = lines(&path);
        assert!(
            text.iter().all(|l| l.starts_with("{\"chain\":\"")),
            "{text:?}"
        );
        let head = verify_chain(&path).unwrap();
        assert_eq!(head.lines, 4);
        let history = Ledger::read(&path).unwrap().unwrap();
        assert_eq!(history.chain, head.head);
        assert_eq!(history.lines, 4);
        // A resume goes on from the last hash.
        let (ledger, _) = Ledger::resume(&path).unwrap();
        ledger.session(&origin(false, 60_000), &[]).unwrap();
        drop(ledger);
        let after = verify_chain(&path).unwrap();
        assert_eq!(after.lines, 5);
        assert_ne!(after.head, head.head);
    }

    #[test]
    fn regression_20_2_a_session_closed_in_order_ends_with_an_end_line() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        let scratch = dir.path().join("r.scratch");
        four_lines_at(&scratch);
        std::fs::copy(&scratch, &path).unwrap();
        assert!(
            !Ledger::read(&path).unwrap().unwrap().ended,
            "killed: no end line"
        );
        let (ledger, _) = Ledger::resume(&path).unwrap();
        ledger.end(1).unwrap();
        drop(ledger);
        let copy = dir.path().join("copy.ledger");
        std::fs::copy(&path, &copy).unwrap();
        assert!(Ledger::read(&copy).unwrap().unwrap().ended);
        // A resume after the end opens a session that has not ended yet.
        let (ledger, _) = Ledger::resume(&copy).unwrap();
        ledger.session(&origin(false, 60_000), &[]).unwrap();
        drop(ledger);
        let again = dir.path().join("again.ledger");
        std::fs::copy(&copy, &again).unwrap();
        assert!(!Ledger::read(&again).unwrap().unwrap().ended);
        assert_eq!(verify_chain(&again).unwrap().lines, 6);
    }

    #[test]
    fn regression_20_a_closed_ledger_can_be_read_while_its_handle_lives_on() {
        // `run --follow --audit`: the follow's pause hook still holds the run's ledger
        // when the audit reads it; closing the session releases the lock.
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        let ledger = Ledger::create(&path, &begin()).unwrap();
        assert!(
            matches!(Ledger::read(&path), Err(LedgerError::Held { .. })),
            "held while the session is open"
        );
        ledger.end(0).unwrap();
        ledger.close();
        let history = Ledger::read(&path).unwrap().unwrap();
        assert!(history.ended);
        let err = ledger.pause(at("2026-11-22T10:00:00Z")).unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
        assert_eq!(
            verify_chain(&path).unwrap().lines,
            2,
            "nothing after the end"
        );
        drop(ledger);
    }

    #[test]
    fn regression_20_2_an_edited_line_is_found_by_its_number() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        four_lines(&path);
        let mut text = lines(&path);
        // Still valid JSON, still a send: another time.
        text[2] = text[2].replace("10:00:00", "11:00:00");
        write_lines(&path, &text);
        for err in [
            verify_chain(&path).unwrap_err(),
            Ledger::read(&path).unwrap_err(),
            Ledger::resume(&path).err().unwrap(),
        ] {
            let msg = err.to_string();
            assert!(
                msg.contains("line 3") && msg.contains("does not follow"),
                "{msg}"
            );
        }
    }

    #[test]
    fn regression_20_2_a_removed_or_inserted_line_breaks_the_chain_where_it_was() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        four_lines(&path);
        let text = lines(&path);
        let mut removed = text.clone();
        removed.remove(1);
        write_lines(&path, &removed);
        let msg = verify_chain(&path).unwrap_err().to_string();
        assert!(msg.contains("line 2"), "{msg}");
        let mut inserted = text.clone();
        inserted.insert(2, text[1].clone());
        write_lines(&path, &inserted);
        let msg = verify_chain(&path).unwrap_err().to_string();
        assert!(msg.contains("line 3"), "{msg}");
        // A line without its hash, as a hand-written one would be.
        let mut bare = text.clone();
        bare[3] = format!("{{{}", &bare[3][76..]);
        write_lines(&path, &bare);
        let msg = verify_chain(&path).unwrap_err().to_string();
        assert!(
            msg.contains("line 4") && msg.contains("no chain hash"),
            "{msg}"
        );
    }

    #[test]
    fn regression_20_2_a_cut_ledger_keeps_a_chain_but_not_its_head() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        four_lines(&path);
        let whole = verify_chain(&path).unwrap();
        let text = lines(&path);
        write_lines(&path, &text[..3]);
        let cut = verify_chain(&path).unwrap();
        assert_eq!(cut.lines, 3);
        assert_ne!(
            cut.head, whole.head,
            "the head a manifest recorded no longer matches"
        );
    }

    #[test]
    fn a_ledger_written_before_lines_were_chained_still_reads_and_stays_unchained() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        four_lines(&path);
        let unchained: Vec<String> = lines(&path)
            .iter()
            .map(|l| format!("{{{}", &l[76..]))
            .collect();
        write_lines(&path, &unchained);
        let history = Ledger::read(&path).unwrap().unwrap();
        assert_eq!(history.chain, None);
        assert_eq!(history.rows.len(), 1);
        let (ledger, _) = Ledger::resume(&path).unwrap();
        ledger.session(&origin(false, 60_000), &[]).unwrap();
        drop(ledger);
        let head = verify_chain(&path).unwrap();
        assert_eq!((head.lines, head.head), (5, None));
    }

    #[test]
    fn a_resume_rebuilds_claims_open_sends_and_final_rows() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        let ledger = Ledger::create(&path, &begin()).unwrap();
        let k = |row| RowKey::new(0, row);
        let claim = |n| Claim {
            device: format!("d{n}"),
            action: "remove-passcode".into(),
            report: row(n, Outcome::Planned),
        };
        for n in [2, 3, 4] {
            ledger.claim(k(n), &claim(n)).unwrap();
        }
        ledger.send(k(2), "d2", at("2026-11-22T10:00:00Z")).unwrap();
        ledger
            .settled(k(2), Fate::Final, &row(2, Outcome::Succeeded))
            .unwrap();
        ledger.send(k(3), "d3", at("2026-11-22T10:00:01Z")).unwrap();
        ledger.send(k(3), "d3", at("2026-11-22T10:00:05Z")).unwrap();
        ledger
            .settled(k(3), Fate::Unknown, &row(3, Outcome::Failed))
            .unwrap();
        ledger.send(k(4), "d4", at("2026-11-22T10:00:02Z")).unwrap();
        ledger
            .settled(k(4), Fate::Unchanged, &row(4, Outcome::Failed))
            .unwrap();
        drop(ledger);

        let (_ledger, history) = Ledger::resume(&path).unwrap();
        let history = history.unwrap();
        assert_eq!(history.begin, begin());
        let two = &history.rows[&k(2)];
        assert_eq!(two.done.as_ref().unwrap().outcome, Outcome::Succeeded);
        assert!(two.open.is_none());
        let three = &history.rows[&k(3)];
        assert!(three.done.is_none());
        assert_eq!(
            three.open,
            Some(OpenSends {
                first: at("2026-11-22T10:00:01Z"),
                last: at("2026-11-22T10:00:05Z"),
                left: None,
                window: Some(Duration::from_secs(60)),
            })
        );
        assert_eq!(three.sends, 2);
        let four = &history.rows[&k(4)];
        assert!(four.open.is_none() && four.done.is_none());
        assert_eq!(four.claim.as_ref().unwrap().device, "d4");
    }

    #[test]
    fn regression_17_5_each_send_settles_with_the_window_of_the_session_that_sent_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        let ledger = Ledger::create(&path, &begin()).unwrap();
        let k = |row| RowKey::new(0, row);
        ledger.send(k(1), "d1", at("2026-11-22T10:00:00Z")).unwrap();
        ledger.session(&origin(false, 1_000), &[]).unwrap();
        ledger.send(k(2), "d2", at("2026-11-22T10:05:00Z")).unwrap();
        ledger.session(&origin(false, 5_000), &[]).unwrap();
        ledger.send(k(1), "d1", at("2026-11-22T10:06:00Z")).unwrap();
        drop(ledger);

        let (_ledger, history) = Ledger::resume(&path).unwrap();
        let history = history.unwrap();

        assert_eq!(history.sessions.len(), 2);
        let window = |n| history.rows[&k(n)].open.as_ref().unwrap().window;
        assert_eq!(
            window(1),
            Some(Duration::from_secs(60)),
            "the longest window any of its sends went out under"
        );
        assert_eq!(window(2), Some(Duration::from_secs(1)));
        assert_eq!(
            history.recent_sends,
            [
                at("2026-11-22T10:00:00Z"),
                at("2026-11-22T10:05:00Z"),
                at("2026-11-22T10:06:00Z")
            ]
        );
    }

    /// Issue 21: a row asking for two actions of one device is two rows of the ledger
    /// (its step), so a resume knows which action was sent; a ledger line of the first
    /// action writes no step, as ledgers before issue 21 did.
    #[test]
    fn regression_21_each_action_of_a_row_has_its_own_history() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        let ledger = Ledger::create(&path, &begin()).unwrap();
        let (lock, rotation) = (RowKey::at(0, 2, 0), RowKey::at(0, 2, 1));
        ledger.send(lock, "d1", at("2026-11-22T10:00:00Z")).unwrap();
        ledger
            .settled(lock, Fate::Final, &row(2, Outcome::Succeeded))
            .unwrap();
        ledger
            .send(rotation, "d1", at("2026-11-22T10:00:01Z"))
            .unwrap();
        drop(ledger);
        let text = std::fs::read_to_string(&path).unwrap();
        let sends: Vec<&str> = text.lines().filter(|l| l.contains("\"send\"")).collect();
        assert!(!sends[0].contains("\"step\""), "{}", sends[0]);
        assert!(sends[1].contains("\"step\":1"), "{}", sends[1]);

        let (_ledger, history) = Ledger::resume(&path).unwrap();
        let history = history.unwrap();
        assert!(history.rows[&lock].done.is_some());
        assert!(history.rows[&lock].open.is_none());
        assert!(history.rows[&rotation].done.is_none());
        assert!(
            history.rows[&rotation].open.is_some(),
            "the rotation is settled on resume"
        );
    }

    #[test]
    fn regression_17_5_a_pause_on_record_is_the_latest_one_any_session_announced() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        let ledger = Ledger::create(&path, &begin()).unwrap();
        ledger.pause(at("2026-11-22T10:00:30Z")).unwrap();
        ledger.pause(at("2026-11-22T10:00:10Z")).unwrap();
        drop(ledger);

        let (_ledger, history) = Ledger::resume(&path).unwrap();

        assert_eq!(
            history.unwrap().paused_until,
            Some(at("2026-11-22T10:00:30Z"))
        );
    }

    #[test]
    fn regression_17_4_a_rehearsal_or_another_tenant_cannot_continue_a_run() {
        let real = origin(false, 60_000);
        let rehearsal = origin(true, 60_000);
        let elsewhere = Origin {
            tenant: "11111111-2222-3333-4444-555555555555".into(),
            ..real.clone()
        };
        let colleague = Origin {
            method: "browser".into(),
            user: Some("ada@contoso.com".into()),
            client_id: None,
            ..real.clone()
        };

        let refusal = rehearsal.refuses(&real).expect("a real run on a rehearsal");
        assert!(refusal.contains("rehearsal"), "{refusal}");
        assert!(real.refuses(&rehearsal).is_some());
        let refusal = real.refuses(&elsewhere).expect("another tenant");
        assert!(refusal.contains(&elsewhere.tenant), "{refusal}");
        assert_eq!(real.refuses(&colleague), None);
        assert_eq!(real.refuses(&real), None);
    }

    #[test]
    fn regression_8_12_a_line_torn_inside_a_utf8_character_is_cut_off_on_resume() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        let ledger = Ledger::create(&path, &begin()).unwrap();
        let key = RowKey::new(0, 2);
        ledger
            .settled(key, Fate::Final, &row(2, Outcome::Succeeded))
            .unwrap();
        drop(ledger);
        let whole = std::fs::metadata(&path).unwrap().len();
        let line = serde_json::to_vec(&Event::Settled {
            file: 0,
            row: 3,
            step: 0,
            sub: 0,
            fate: Fate::Final,
            report: Box::new(row(3, Outcome::Succeeded)),
        })
        .unwrap();
        // Cut inside the two bytes of "é".
        let cut = line.iter().position(|b| *b == 0xC3).unwrap() + 1;
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&line[..cut]).unwrap();
        drop(f);

        let (ledger, history) = Ledger::resume(&path).unwrap();
        let history = history.unwrap();
        assert!(history.rows.contains_key(&key));
        assert!(!history.rows.contains_key(&RowKey::new(0, 3)));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        ledger
            .settled(RowKey::new(0, 3), Fate::Final, &row(3, Outcome::Succeeded))
            .unwrap();
        drop(ledger);
        let (_l, history) = Ledger::resume(&path).unwrap();
        assert!(history.unwrap().rows.contains_key(&RowKey::new(0, 3)));
    }

    #[test]
    fn a_ledger_held_by_a_running_process_is_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        let held = Ledger::create(&path, &begin()).unwrap();
        assert!(matches!(
            Ledger::resume(&path),
            Err(LedgerError::Held { .. })
        ));
        drop(held);
        assert!(Ledger::resume(&path).is_ok());
    }

    #[test]
    fn a_new_run_never_takes_over_an_existing_ledger() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        drop(Ledger::create(&path, &begin()).unwrap());
        assert!(Ledger::create(&path, &begin()).is_err());
    }

    #[test]
    fn a_damaged_line_before_the_last_stops_the_resume() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        drop(Ledger::create(&path, &begin()).unwrap());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"event\":\"send\",\"fi\n{}\n").unwrap();
        drop(f);
        match Ledger::resume(&path) {
            Err(LedgerError::Damaged { line, .. }) => assert_eq!(line, 2),
            Err(e) => panic!("expected Damaged, got {e}"),
            Ok(_) => panic!("expected Damaged, got a ledger"),
        }
    }

    #[test]
    fn an_empty_ledger_has_no_history() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.ledger");
        std::fs::write(&path, b"{\"event\":\"beg").unwrap();
        let (_l, history) = Ledger::resume(&path).unwrap();
        assert!(history.is_none());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
