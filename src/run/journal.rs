//! The in-flight journal: a line written and flushed *before* each `resetPasscode` is
//! sent, beside the report (`<report>.journal`).
//!
//! The report gets a row only when a device's outcome is known, so after a `kill -9`
//! the report cannot say which devices had a reset on the wire. The journal can: a row
//! with a journal line and no final report row was (maybe) sent, and `--resume` reads
//! its `deviceActionResults` before deciding to send again. Lines are appended with one
//! `write` each, so a kill leaves at most one torn last line, which is ignored.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// `<report>.journal`.
pub fn journal_path(report: &Path) -> PathBuf {
    let mut name = report.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sending {
    pub source: String,
    pub row: u64,
    pub device_id: String,
    /// RFC 3339, our clock, taken just before the request left.
    pub sent_at: String,
}

impl Sending {
    pub fn sent_at(&self) -> Option<SystemTime> {
        super::verify::parse_timestamp(&self.sent_at)
    }
}

pub struct Journal {
    file: Mutex<File>,
}

impl Journal {
    /// Opens for appending; a resumed run adds to the journal of the run it continues.
    pub fn open(path: &Path) -> io::Result<Journal> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal {
            file: Mutex::new(file),
        })
    }

    /// Records that a reset for this row is about to be sent. One `write` of a whole
    /// line, unbuffered: it is on its way to disk before the request is.
    pub fn sending(&self, entry: &Sending) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)
    }
}

/// The key of a report row: its file and row number.
pub fn row_key(source: &str, row: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    source.hash(&mut h);
    row.hash(&mut h);
    h.finish()
}

/// The earliest send recorded for each row not in `settled`: the resets that may be
/// on their way or done without a report row to say so.
pub fn unsettled(path: &Path, settled: &HashSet<u64>) -> io::Result<HashMap<u64, Sending>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    let mut out: HashMap<u64, Sending> = HashMap::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        // A torn last line (the process died mid-write) is not a record.
        let Ok(entry) = serde_json::from_str::<Sending>(&line) else {
            continue;
        };
        let key = row_key(&entry.source, entry.row);
        if settled.contains(&key) {
            continue;
        }
        out.entry(key).or_insert(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(row: u64, at: &str) -> Sending {
        Sending {
            source: "job.csv".into(),
            row,
            device_id: format!("d{row}"),
            sent_at: at.into(),
        }
    }

    #[test]
    fn unsettled_rows_keep_their_first_send_and_torn_lines_are_ignored() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.csv.journal");
        let journal = Journal::open(&path).unwrap();
        journal
            .sending(&entry(2, "2026-11-22T10:00:00.000Z"))
            .unwrap();
        journal
            .sending(&entry(3, "2026-11-22T10:00:01.000Z"))
            .unwrap();
        journal
            .sending(&entry(2, "2026-11-22T10:00:05.000Z"))
            .unwrap();
        drop(journal);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"source\":\"job.csv\",\"row\":4,\"dev")
            .unwrap();
        let settled: HashSet<u64> = [row_key("job.csv", 3)].into();
        let open = unsettled(&path, &settled).unwrap();
        assert_eq!(open.len(), 1);
        let two = &open[&row_key("job.csv", 2)];
        assert_eq!(two.sent_at, "2026-11-22T10:00:00.000Z");
        assert!(two.sent_at().is_some());
    }

    #[test]
    fn no_journal_means_nothing_in_flight() {
        let dir = tempfile::TempDir::new().unwrap();
        assert!(
            unsettled(&dir.path().join("none"), &HashSet::new())
                .unwrap()
                .is_empty()
        );
    }
}
