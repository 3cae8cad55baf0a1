//! Reading a run report back, one row at a time: the one reader of reports.
//!
//! `status` takes the report `run` wrote (docs/reference.md, "The report"), CSV or JSON Lines,
//! and must reproduce every row of it once. (`--resume` reads the run's ledger, the
//! durable record, not the report, which is a view of it.) Reports of a million rows are normal, so
//! rows are streamed to a callback, never collected. The CSV cells `run` defused with a
//! leading `'` are read as they are and written back unchanged (defusing is idempotent).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::{COLUMNS, OPTIONAL_COLUMNS, ReportFormat, ReportRow};

/// A report that cannot be read, or is not a run report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read the run report {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a run report: {why}. Give status the report that `intune-reset run` wrote (CSV, JSON Lines or xlsx)"
    )]
    NotARunReport { path: PathBuf, why: String },
}

/// A run report, opened and checked, ready to be streamed (more than once).
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Where it is; named in every error.
    pub path: PathBuf,
    /// CSV or JSON Lines, by extension, else by its first character.
    pub format: ReportFormat,
}

impl RunReport {
    /// Opens the report and checks it is one: a CSV header naming every report column,
    /// or a first JSON line that reads as a report row.
    ///
    /// An xlsx report is read through the CSV `run` keeps beside it
    /// ([`companion_csv`](super::companion_csv)): the same rows, and the one written
    /// while the run went on.
    pub fn open(path: &Path) -> Result<RunReport, ReportError> {
        if ReportFormat::from_name(path) == Some(ReportFormat::Xlsx) {
            let csv = super::companion_csv(path);
            if !csv.exists() {
                return Err(ReportError::NotARunReport {
                    path: path.to_owned(),
                    why: format!(
                        "{} is not beside it (an xlsx report is read through the CSV `run` writes next to it)",
                        csv.display()
                    ),
                });
            }
            return RunReport::open(&csv);
        }
        let format = detect(path)?;
        let report = RunReport {
            path: path.to_owned(),
            format,
        };
        match format {
            ReportFormat::Csv | ReportFormat::Xlsx => {
                let mut reader = report.csv_reader()?;
                let headers = reader.headers().map_err(|e| report.csv_error(e))?;
                let missing: Vec<&str> = COLUMNS
                    .iter()
                    .filter(|c| !OPTIONAL_COLUMNS.contains(c))
                    .filter(|c| !headers.iter().any(|h| h == **c))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    return Err(ReportError::NotARunReport {
                        path: report.path.clone(),
                        why: format!("its header lacks {}", missing.join(", ")),
                    });
                }
            }
            ReportFormat::Jsonl => {
                // Reading to the first row checks the shape; the callback stops there.
                let mut first = true;
                report.each_jsonl(&mut |_| -> Result<bool, ReportError> {
                    let keep_going = !first;
                    first = false;
                    Ok(keep_going)
                })?;
            }
        }
        Ok(report)
    }

    /// Calls `each` with every row, in file order; `each` returns `false` to stop.
    pub fn each<E: From<ReportError>>(
        &self,
        each: &mut dyn FnMut(ReportRow) -> Result<bool, E>,
    ) -> Result<(), E> {
        match self.format {
            ReportFormat::Csv | ReportFormat::Xlsx => {
                let mut reader = self.csv_reader()?;
                for record in reader.deserialize::<ReportRow>() {
                    if !each(record.map_err(|e| self.csv_error(e))?)? {
                        break;
                    }
                }
                Ok(())
            }
            ReportFormat::Jsonl => self.each_jsonl(each),
        }
    }

    fn csv_reader(&self) -> Result<csv::Reader<BufReader<File>>, ReportError> {
        Ok(csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(self.open_past_bom()?))
    }

    /// The file, past a UTF-8 byte-order mark: a report saved again by Excel has one.
    fn open_past_bom(&self) -> Result<BufReader<File>, ReportError> {
        let file = File::open(&self.path).map_err(|source| self.open_error(source))?;
        let mut reader = BufReader::new(file);
        let has_bom = reader
            .fill_buf()
            .map_err(|source| self.open_error(source))?
            .starts_with(b"\xEF\xBB\xBF");
        if has_bom {
            reader.consume(3);
        }
        Ok(reader)
    }

    fn each_jsonl<E: From<ReportError>>(
        &self,
        each: &mut dyn FnMut(ReportRow) -> Result<bool, E>,
    ) -> Result<(), E> {
        for (i, line) in self.open_past_bom()?.lines().enumerate() {
            let line = line.map_err(|source| self.open_error(source))?;
            if line.trim().is_empty() {
                continue;
            }
            let row: ReportRow =
                serde_json::from_str(&line).map_err(|e| ReportError::NotARunReport {
                    path: self.path.clone(),
                    why: format!("line {} is not a report row ({e})", i + 1),
                })?;
            if !each(row)? {
                break;
            }
        }
        Ok(())
    }

    fn open_error(&self, source: std::io::Error) -> ReportError {
        ReportError::Read {
            path: self.path.clone(),
            source,
        }
    }

    fn csv_error(&self, e: csv::Error) -> ReportError {
        let line = e
            .position()
            .map(|p| format!("line {}: ", p.line()))
            .unwrap_or_default();
        match e.into_kind() {
            csv::ErrorKind::Io(source) => self.open_error(source),
            kind => ReportError::NotARunReport {
                path: self.path.clone(),
                why: format!("{line}{}", describe_csv(kind)),
            },
        }
    }
}

fn describe_csv(kind: csv::ErrorKind) -> String {
    match kind {
        csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} cells where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".into(),
        other => format!("{other:?}"),
    }
}

/// `.csv` is CSV and `.jsonl`/`.ndjson`/`.json` are JSON Lines; any other name is judged
/// by its first non-blank character (`{` starts JSON Lines).
fn detect(path: &Path) -> Result<ReportFormat, ReportError> {
    if let Some(format) = ReportFormat::from_name(path) {
        return Ok(format);
    }
    // A JSON Lines report someone saved as `.json`.
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return Ok(ReportFormat::Jsonl);
    }
    let read_error = |source| ReportError::Read {
        path: path.to_owned(),
        source,
    };
    let mut head = Vec::with_capacity(512);
    File::open(path)
        .map_err(read_error)?
        .take(512)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    Ok(sniff(&head))
}

fn sniff(head: &[u8]) -> ReportFormat {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => ReportFormat::Jsonl,
        _ => ReportFormat::Csv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Outcome, ReportWriter};

    fn row(n: u64, outcome: Outcome, name: &str) -> ReportRow {
        ReportRow {
            source: "job.csv".into(),
            row: n,
            device_id: format!("id-{n}"),
            device_name: name.into(),
            serial_number: String::new(),
            user_principal_name: String::new(),
            operating_system: "Android".into(),
            os_version: "13".into(),
            platform: "android_work_profile".into(),
            action: "reset_passcode".into(),
            outcome,
            reason: "".into(),
            detail: "Graph said \"yes\", twice\nreally".into(),
            http_status: (outcome == Outcome::Succeeded).then_some(204),
            attempts: 1,
            request_id: "r".into(),
            client_request_id: "c".into(),
            started_at: "2026-11-22T02:00:00.123Z".into(),
            finished_at: String::new(),
            tenant: String::new(),
        }
    }

    fn read_back(path: &Path) -> Vec<ReportRow> {
        let report = RunReport::open(path).unwrap();
        let mut rows = vec![];
        report
            .each::<ReportError>(&mut |r| {
                rows.push(r);
                Ok(true)
            })
            .unwrap();
        rows
    }

    #[test]
    fn both_formats_read_back_what_run_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            row(1, Outcome::Succeeded, "Pixel, 7"),
            row(2, Outcome::Ineligible, "José's tablet"),
            row(3, Outcome::Failed, ""),
        ];
        for (name, format) in [
            ("r.csv", ReportFormat::Csv),
            ("r.jsonl", ReportFormat::Jsonl),
            ("r.txt", ReportFormat::Jsonl),
        ] {
            let path = dir.path().join(name);
            let mut w = ReportWriter::create(&path, format, true).unwrap();
            for r in &rows {
                w.write(r).unwrap();
            }
            w.flush().unwrap();
            assert_eq!(RunReport::open(&path).unwrap().format, format, "{name}");
            assert_eq!(read_back(&path), rows, "{name}");
        }
    }

    #[test]
    fn a_defused_cell_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut w = ReportWriter::create(&path, ReportFormat::Csv, false).unwrap();
        w.write(&row(1, Outcome::Succeeded, "=HYPERLINK(1)"))
            .unwrap();
        w.flush().unwrap();
        assert_eq!(read_back(&path)[0].device_name, "'=HYPERLINK(1)");
    }

    #[test]
    fn a_job_file_is_not_a_run_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.csv");
        std::fs::write(&path, "id,deviceName\nabc,Pixel\n").unwrap();
        let err = RunReport::open(&path).unwrap_err().to_string();
        assert!(err.contains("lacks source, row"), "{err}");
        let path = dir.path().join("job.jsonl");
        std::fs::write(&path, "{\"id\": \"abc\"}\n").unwrap();
        let err = RunReport::open(&path).unwrap_err().to_string();
        assert!(err.contains("line 1 is not a report row"), "{err}");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut w = ReportWriter::create(&path, ReportFormat::Csv, false).unwrap();
        w.write(&row(1, Outcome::Succeeded, "Pixel")).unwrap();
        w.flush().unwrap();
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend(std::fs::read(&path).unwrap());
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(read_back(&path), vec![row(1, Outcome::Succeeded, "Pixel")]);
    }

    #[test]
    fn a_report_from_before_the_user_column_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let header: Vec<&str> = COLUMNS
            .iter()
            .copied()
            .filter(|c| *c != "user_principal_name" && *c != "tenant")
            .collect();
        let csv = dir.path().join("old.csv");
        std::fs::write(
            &csv,
            format!(
                "{}\njob.csv,2,id-2,Pixel,,Android,13,android_work_profile,reset_passcode,succeeded,,,204,1,r,c,,\n",
                header.join(",")
            ),
        )
        .unwrap();
        let jsonl = dir.path().join("old.jsonl");
        let mut line = serde_json::to_value(row(2, Outcome::Succeeded, "Pixel")).unwrap();
        line.as_object_mut().unwrap().remove("user_principal_name");
        std::fs::write(&jsonl, format!("{line}\n")).unwrap();
        for path in [csv, jsonl] {
            let rows = read_back(&path);
            assert_eq!(rows.len(), 1, "{}", path.display());
            assert_eq!(rows[0].device_id, "id-2");
            assert_eq!(rows[0].user_principal_name, "");
        }
    }

    #[test]
    fn an_xlsx_report_is_read_through_the_csv_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let xlsx = dir.path().join("run.xlsx");
        let err = RunReport::open(&xlsx).unwrap_err().to_string();
        assert!(err.contains("run.xlsx.csv"), "{err}");
        let mut w = ReportWriter::create(
            &crate::report::companion_csv(&xlsx),
            ReportFormat::Xlsx,
            true,
        )
        .unwrap();
        w.write(&row(1, Outcome::Succeeded, "Pixel")).unwrap();
        w.flush().unwrap();
        let report = RunReport::open(&xlsx).unwrap();
        assert_eq!(report.format, ReportFormat::Csv);
        assert_eq!(read_back(&xlsx), vec![row(1, Outcome::Succeeded, "Pixel")]);
    }

    #[test]
    fn unknown_names_are_sniffed() {
        assert_eq!(sniff(b"  \n{\"source\":1}"), ReportFormat::Jsonl);
        assert_eq!(sniff(b"source,row"), ReportFormat::Csv);
        assert_eq!(sniff(b""), ReportFormat::Csv);
        assert_eq!(sniff(b"\xEF\xBB\xBF{\"source\":1}"), ReportFormat::Jsonl);
    }
}
