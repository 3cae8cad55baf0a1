//! `--resume`: continue the run recorded in `--report`.
//!
//! Rows with a final outcome stay in the report and are not touched again. Rows the
//! interrupted run marked `not_attempted`, and a last row torn by a `kill -9`, are
//! dropped: the resumed run reports them afresh, so the report ends with one row per
//! job row. Rows the journal shows a reset was sent for, without a final row, are
//! checked through `deviceActionResults` before anything is sent again.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::plan::CommandError;
use crate::report::{COLUMNS, Outcome, ReportFormat, Summary, write_csv_line};

use super::journal::{Sending, journal_path, row_key, unsettled};

/// What a resumed run starts from.
pub struct Resumed {
    /// Rows already final, by [`row_key`]: skipped.
    pub settled: HashSet<u64>,
    /// Rows whose reset may have gone out, with the journal's record of it.
    pub in_flight: HashMap<u64, Sending>,
    /// The counts of the rows kept.
    pub summary: Summary,
    /// The job files the report names.
    pub sources: HashSet<String>,
}

/// Rewrites `report` down to its final rows (atomically, through a temporary file) and
/// reads the journal.
pub fn prepare(report: &Path, format: ReportFormat) -> Result<Resumed, CommandError> {
    let err = |source: io::Error| CommandError::Write {
        what: "the report to resume",
        path: report.to_owned(),
        source,
    };
    let mut file = File::open(report).map_err(|e| {
        CommandError::Usage(format!(
            "cannot resume: cannot read the report {}: {e}",
            report.display()
        ))
    })?;
    let complete_last_line = ends_with_newline(&mut file).map_err(err)?;
    let tmp = temp_path(report);
    let mut out = BufWriter::new(File::create(&tmp).map_err(err)?);
    let mut kept = Resumed {
        settled: HashSet::new(),
        in_flight: HashMap::new(),
        summary: Summary::new("run"),
        sources: HashSet::new(),
    };
    let result = match format {
        ReportFormat::Csv => copy_csv(file, complete_last_line, &mut out, &mut kept),
        ReportFormat::Jsonl => copy_jsonl(file, complete_last_line, &mut out, &mut kept),
    };
    result
        .and_then(|_| out.flush())
        .and_then(|_| out.get_ref().sync_all())
        .map_err(err)?;
    drop(out);
    std::fs::rename(&tmp, report).map_err(err)?;
    kept.in_flight = unsettled(&journal_path(report), &kept.settled).map_err(err)?;
    Ok(kept)
}

fn temp_path(report: &Path) -> PathBuf {
    let mut name = report.as_os_str().to_owned();
    name.push(".resume-tmp");
    PathBuf::from(name)
}

fn ends_with_newline(file: &mut File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(last[0] == b'\n')
}

/// Final outcomes: everything but `not_attempted` (and `planned`, which a run never
/// writes).
fn settled_outcome(text: &str) -> Option<Outcome> {
    let outcome: Outcome = serde_json::from_value(serde_json::Value::String(text.into())).ok()?;
    (!matches!(outcome, Outcome::NotAttempted | Outcome::Planned)).then_some(outcome)
}

fn keep(
    kept: &mut Resumed,
    source: &str,
    row: u64,
    outcome: Outcome,
    platform: &str,
    reason: &str,
) {
    kept.settled.insert(row_key(source, row));
    kept.sources.insert(source.to_owned());
    kept.summary.count_parts(outcome, platform, reason);
}

fn copy_csv(
    file: File,
    complete: bool,
    out: &mut impl Write,
    kept: &mut Resumed,
) -> io::Result<()> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let headers = reader.headers()?.clone();
    let index = |name: &str| headers.iter().position(|h| h == name);
    let (Some(source), Some(row), Some(outcome), Some(platform), Some(reason)) = (
        index("source"),
        index("row"),
        index("outcome"),
        index("platform"),
        index("reason"),
    ) else {
        return Err(io::Error::other(
            "it is not an intune-reset report (missing columns)",
        ));
    };
    write_csv_line(out, COLUMNS)?;
    let mut pending: Option<csv::StringRecord> = None;
    for record in reader.records() {
        let Ok(record) = record else { continue };
        if let Some(previous) = pending.replace(record) {
            copy_csv_record(
                &previous,
                out,
                kept,
                [source, row, outcome, platform, reason],
            )?;
        }
    }
    // The last record counts only if the process finished writing its line.
    if let Some(last) = pending
        && complete
    {
        copy_csv_record(&last, out, kept, [source, row, outcome, platform, reason])?;
    }
    Ok(())
}

fn copy_csv_record(
    record: &csv::StringRecord,
    out: &mut impl Write,
    kept: &mut Resumed,
    [source, row, outcome, platform, reason]: [usize; 5],
) -> io::Result<()> {
    if record.len() != COLUMNS.len() {
        return Ok(());
    }
    let (Some(src), Some(n), Some(o)) = (
        record.get(source),
        record.get(row).and_then(|r| r.parse::<u64>().ok()),
        record.get(outcome).and_then(settled_outcome),
    ) else {
        return Ok(());
    };
    keep(
        kept,
        src,
        n,
        o,
        record.get(platform).unwrap_or(""),
        record.get(reason).unwrap_or(""),
    );
    write_csv_line(out, record.iter())
}

fn copy_jsonl(
    file: File,
    complete: bool,
    out: &mut impl Write,
    kept: &mut Resumed,
) -> io::Result<()> {
    let mut lines = BufReader::new(file).lines().peekable();
    while let Some(line) = lines.next() {
        let line = line?;
        let last = lines.peek().is_none();
        if last && !complete {
            break;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let text = |k: &str| value.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let (Some(n), Some(o)) = (
            value.get("row").and_then(|v| v.as_u64()),
            settled_outcome(text("outcome")),
        ) else {
            continue;
        };
        keep(kept, text("source"), n, o, text("platform"), text("reason"));
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "source,row,device_id,device_name,serial_number,operating_system,os_version,platform,action,outcome,reason,detail,http_status,attempts,request_id,client_request_id,started_at,finished_at\n";

    fn line(row: u64, outcome: &str) -> String {
        format!(
            "job.csv,{row},id{row},n,s,iOS,17,ios,remove-passcode,{outcome},,d,204,1,r,c,t0,t1\n"
        )
    }

    #[test]
    fn final_rows_stay_not_attempted_and_torn_rows_go() {
        let dir = tempfile::TempDir::new().unwrap();
        let report = dir.path().join("r.csv");
        let torn = "job.csv,5,id5,n,s,iOS,17,ios,remove-passcode,succ";
        std::fs::write(
            &report,
            format!(
                "{HEADER}{}{}{}{torn}",
                line(2, "succeeded"),
                line(3, "not_attempted"),
                line(4, "failed")
            ),
        )
        .unwrap();
        let r = prepare(&report, ReportFormat::Csv).unwrap();
        assert_eq!(r.settled.len(), 2);
        assert!(r.settled.contains(&row_key("job.csv", 2)));
        assert!(r.settled.contains(&row_key("job.csv", 4)));
        let text = std::fs::read_to_string(&report).unwrap();
        assert_eq!(
            text,
            format!("{HEADER}{}{}", line(2, "succeeded"), line(4, "failed"))
        );
        assert_eq!(r.summary.rows, 2);
    }

    #[test]
    fn jsonl_reports_resume_too() {
        let dir = tempfile::TempDir::new().unwrap();
        let report = dir.path().join("r.jsonl");
        std::fs::write(
            &report,
            "{\"source\":\"a\",\"row\":1,\"outcome\":\"succeeded\"}\n{\"source\":\"a\",\"row\":2,\"outcome\":\"not_attempted\"}\n{\"source\":\"a\",\"row\":3,\"outc",
        )
        .unwrap();
        let r = prepare(&report, ReportFormat::Jsonl).unwrap();
        assert_eq!(r.settled.len(), 1);
        assert_eq!(
            std::fs::read_to_string(&report).unwrap(),
            "{\"source\":\"a\",\"row\":1,\"outcome\":\"succeeded\"}\n"
        );
    }
}
