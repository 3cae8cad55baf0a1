//! The ledger, read once line by line: who ran the run and when (every session), and
//! its timeline: resets per minute, the minutes a 429 paused every worker, and where
//! the run was interrupted and resumed.
//!
//! Only counts per minute with a send and the pause spans are kept, so a ledger of
//! 100,000 sends costs a few megabytes at most. A run that lasted days (interrupted on
//! Friday, resumed on Monday) is drawn in wider buckets, so the page never holds more
//! than [`MAX_BUCKETS`] bars.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{JobFile, Session, Who};
use crate::graph::verify::parse_timestamp;
use crate::ledger::{Event, Origin, each_event, timestamp};

/// Bars at most: 12 hours of minutes.
pub const MAX_BUCKETS: u64 = 720;
/// Bucket widths tried, in minutes, the narrowest first; past a day, whole days.
const WIDTHS: [u64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];
const MINUTE: u64 = 60;

/// Resets per bucket of time, from the run's start to its last activity.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// The start of the first bucket (RFC 3339, UTC, a whole minute).
    pub start: String,
    /// Each bucket's width: 1 unless the run lasted more than 12 hours.
    pub bucket_minutes: u64,
    pub buckets: Vec<Bucket>,
    /// The most resets that left in one minute.
    pub peak_per_minute: u64,
    /// 429 pauses the ledger records, and the minutes they covered (overlaps once).
    pub pauses: u64,
    pub paused_minutes: u64,
    pub interruptions: Vec<Interruption>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// `resetPasscode` requests that left in it.
    pub sends: u64,
    /// A 429 pause held every worker for part of it.
    pub paused: bool,
    /// The run was not running for part of it (between an interruption and its resume).
    pub stopped: bool,
}

/// The run stopped (killed, interrupted, aborted) and was resumed later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interruption {
    /// The last thing the run recorded before it stopped.
    pub stopped_at: String,
    pub resumed_at: String,
    /// The buckets these fall in.
    pub from: usize,
    pub to: usize,
}

/// What the ledger says.
pub struct LedgerFacts {
    pub job_files: Vec<JobFile>,
    pub tenant: Option<String>,
    pub simulated: bool,
    pub sessions: Vec<Session>,
    pub started_at: String,
    pub last_activity_at: String,
    pub sends: u64,
    pub timeline: Timeline,
}

fn who(origin: &Origin) -> Who {
    Who {
        tenant: origin.tenant.clone(),
        method: origin.method.clone(),
        user: origin.user.clone(),
        client_id: origin.client_id.clone(),
        simulated: origin.simulated,
        described: origin.describe(),
    }
}

/// The state of the one pass over the ledger.
#[derive(Default)]
pub(super) struct Pass {
    began: Option<(SystemTime, LedgerFacts)>,
    /// The latest time recorded so far (a pause starts then: its line holds only its end).
    latest: Option<SystemTime>,
    /// Sends per minute since the epoch.
    per_minute: BTreeMap<u64, u64>,
    /// Pause spans, in order, overlapping ones merged.
    pauses: Vec<(SystemTime, SystemTime)>,
    /// From the last thing recorded before a resume to the resume.
    stops: Vec<(SystemTime, SystemTime)>,
    pause_lines: u64,
    /// The first line that is not where it belongs, for the error.
    misplaced: Option<String>,
}

impl Pass {
    fn saw(&mut self, t: Option<SystemTime>) {
        self.latest = self.latest.max(t);
    }

    pub(super) fn event(&mut self, event: &Event) {
        let Some((_, facts)) = &mut self.began else {
            match event {
                Event::Begin {
                    started_at,
                    files,
                    origin,
                    ..
                } => self.begin(started_at, files, origin.as_ref()),
                _ => {
                    self.misplaced.get_or_insert_with(|| {
                        "it does not start with the run's begin line".into()
                    });
                }
            }
            return;
        };
        match event {
            Event::Begin { .. } => {
                self.misplaced
                    .get_or_insert_with(|| "it holds a second begin line".into());
            }
            Event::Session {
                started_at, origin, ..
            } => {
                let at = parse_timestamp(started_at);
                facts.sessions.push(Session {
                    started_at: started_at.clone(),
                    who: Some(who(origin)),
                    interrupted_at: self.latest.map(timestamp),
                });
                if let (Some(stopped), Some(resumed)) = (self.latest, at) {
                    self.stops.push((stopped, resumed.max(stopped)));
                }
                self.saw(at);
            }
            Event::Send { at, .. } => {
                facts.sends += 1;
                if let Some(t) = parse_timestamp(at) {
                    *self.per_minute.entry(minute_of(t)).or_default() += 1;
                    self.saw(Some(t));
                }
            }
            Event::Pause { until } => {
                self.pause_lines += 1;
                if let (Some(from), Some(until)) = (self.latest, parse_timestamp(until)) {
                    self.pause(from, until.max(from));
                }
            }
            Event::Settled { report, .. } => self.saw(parse_timestamp(&report.finished_at)),
            Event::End { at, .. } => self.saw(parse_timestamp(at)),
            Event::Claim { .. } | Event::Expand { .. } => {}
        }
    }

    fn begin(
        &mut self,
        started_at: &str,
        files: &[crate::ledger::Fingerprint],
        origin: Option<&Origin>,
    ) {
        // A start that cannot be read is taken from the first time a line gives.
        let at = parse_timestamp(started_at);
        self.saw(at);
        let facts = LedgerFacts {
            job_files: files
                .iter()
                .map(|f| JobFile {
                    source: f.source.clone(),
                    bytes: f.bytes,
                    sha256: f.sha256.clone(),
                })
                .collect(),
            tenant: origin.map(|o| o.tenant.clone()),
            simulated: origin.is_some_and(|o| o.simulated),
            sessions: vec![Session {
                started_at: started_at.to_owned(),
                who: origin.map(who),
                interrupted_at: None,
            }],
            started_at: started_at.to_owned(),
            last_activity_at: String::new(),
            sends: 0,
            timeline: Timeline::empty(started_at),
        };
        self.began = Some((at.unwrap_or(SystemTime::UNIX_EPOCH), facts));
    }

    fn pause(&mut self, from: SystemTime, until: SystemTime) {
        if let Some(last) = self.pauses.last_mut()
            && from <= last.1
        {
            last.1 = last.1.max(until);
            return;
        }
        self.pauses.push((from, until));
    }
}

fn minute_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / MINUTE
}

impl Timeline {
    fn empty(start: &str) -> Timeline {
        Timeline {
            start: start.to_owned(),
            bucket_minutes: 1,
            buckets: Vec::new(),
            peak_per_minute: 0,
            pauses: 0,
            paused_minutes: 0,
            interruptions: Vec::new(),
        }
    }
}

/// Reads the ledger at `path` once. `Err`: a sentence naming it.
pub fn read_ledger(path: &Path) -> Result<LedgerFacts, String> {
    let mut pass = Pass::default();
    each_event(path, &mut |event| pass.event(event)).map_err(|e| e.to_string())?;
    pass.finish(path)
}

impl Pass {
    /// The facts, once every line is read.
    pub(super) fn finish(mut self, path: &Path) -> Result<LedgerFacts, String> {
        if let Some(why) = self.misplaced.take() {
            return Err(format!(
                "the run's ledger {} is damaged: {why}",
                path.display()
            ));
        }
        let Some((began, mut facts)) = self.began.take() else {
            return Err(format!(
                "the ledger {} records no run (it has no begin line): the run sent nothing",
                path.display()
            ));
        };
        // A begin time that cannot be read: the first send stands for it.
        let start = match self.per_minute.keys().next() {
            Some(m) if began == SystemTime::UNIX_EPOCH => {
                SystemTime::UNIX_EPOCH + Duration::from_secs(m * MINUTE)
            }
            _ => began,
        };
        let end = self.latest.unwrap_or(start).max(start);
        facts.last_activity_at = timestamp(end);
        facts.timeline = draw(&self, start, end);
        Ok(facts)
    }
}

/// The buckets from `start` to `end`.
fn draw(pass: &Pass, start: SystemTime, end: SystemTime) -> Timeline {
    let first = minute_of(start);
    let span = minute_of(end) - first + 1;
    let width = WIDTHS
        .iter()
        .copied()
        .find(|w| span.div_ceil(*w) <= MAX_BUCKETS)
        .unwrap_or_else(|| 1440 * span.div_ceil(1440 * MAX_BUCKETS));
    let count = span.div_ceil(width);
    let mut buckets = vec![Bucket::default(); count as usize];
    // A time before the start (a clock set back) counts in the first bucket.
    let at = |t: SystemTime| (minute_of(t).saturating_sub(first) / width).min(count - 1) as usize;
    let at_minute = |m: u64| (m.saturating_sub(first) / width).min(count - 1) as usize;
    for (minute, sends) in &pass.per_minute {
        buckets[at_minute(*minute)].sends += sends;
    }
    let mut paused = Duration::ZERO;
    for (from, until) in &pass.pauses {
        // A pause the run was interrupted in ends, on this page, where the run did.
        let until = (*until).min(end).max(*from);
        for b in &mut buckets[at(*from)..=at(until)] {
            b.paused = true;
        }
        paused += until.duration_since(*from).unwrap_or_default();
    }
    let mut interruptions = Vec::new();
    for (stopped, resumed) in &pass.stops {
        let (from, to) = (at(*stopped), at(*resumed));
        for b in &mut buckets[from..=to] {
            b.stopped = true;
        }
        interruptions.push(Interruption {
            stopped_at: timestamp(*stopped),
            resumed_at: timestamp(*resumed),
            from,
            to,
        });
    }
    Timeline {
        start: timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(first * MINUTE)),
        bucket_minutes: width,
        buckets,
        peak_per_minute: pass.per_minute.values().copied().max().unwrap_or(0),
        pauses: pass.pause_lines,
        paused_minutes: paused.as_secs().div_ceil(MINUTE),
        interruptions,
    }
}
