//! CSV job files: delimiter detection, the header, and records as devices.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::path::Path;

use super::decode::{TextEncoding, TextSource, field_text_in};
use super::{Column, ColumnNames, DeviceFields, JobError, JobRow, ReadStats, RowDefect};

pub struct CsvBody {
    pub encoding: TextEncoding,
    reader: csv::Reader<LineTracker>,
    /// For each field position, the column it feeds.
    map: Vec<Option<Column>>,
}

/// The delimiters Excel and MDM exports use, in order of preference on a tie.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Picks the delimiter that splits the header line into the most fields, counting only
/// outside quotes. Excel's `sep=;` first line, when present, decides instead.
pub fn detect_delimiter(head: &str) -> (u8, bool) {
    let mut lines = head.lines().map(|l| l.trim_start_matches('\u{feff}'));
    let first = lines.by_ref().find(|l| !l.trim().is_empty()).unwrap_or("");
    if let Some(sep) = first.trim().strip_prefix("sep=")
        && let [d] = sep.as_bytes()
    {
        return (*d, true);
    }
    let mut counts = [0usize; DELIMITERS.len()];
    let mut in_quotes = false;
    for b in first.bytes() {
        match b {
            b'"' => in_quotes = !in_quotes,
            _ if in_quotes => {}
            _ => {
                if let Some(i) = DELIMITERS.iter().position(|d| *d == b) {
                    counts[i] += 1;
                }
            }
        }
    }
    let best = (0..DELIMITERS.len())
        .max_by_key(|i| (counts[*i], std::cmp::Reverse(*i)))
        .unwrap_or(0);
    (DELIMITERS[best], false)
}

pub fn open(path: &Path, text: TextSource) -> Result<(CsvBody, ColumnNames, u8), JobError> {
    let (delimiter, sep_line) = detect_delimiter(&text.head);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(LineTracker::new(text.reader));
    let unreadable = |why: String| JobError::Unreadable {
        path: path.display().to_string(),
        why,
    };
    let mut record = csv::ByteRecord::new();
    let mut skipped_sep = !sep_line;
    let header = loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Err(unreadable("it has no header row".into())),
            Ok(true) => {}
            Err(e) => return Err(unreadable(format!("the header cannot be read: {e}"))),
        }
        if is_blank(&record) {
            continue;
        }
        if !skipped_sep {
            skipped_sep = true;
            continue;
        }
        break record
            .iter()
            .map(|f| field_text_in(f, text.encoding).into_owned())
            .collect::<Vec<_>>();
    };
    let mut names = ColumnNames::default();
    let map: Vec<Option<Column>> = header
        .iter()
        .map(|h| {
            let column = Column::match_header(h);
            if let Some(c) = column {
                names.note(c, h);
            }
            column
        })
        .collect();
    if map.iter().all(Option::is_none) {
        let shown: Vec<&str> = header.iter().take(8).map(|h| h.trim()).collect();
        return Err(unreadable(format!(
            "its first row ({}) names no column this tool knows; a job file needs a header \
             with at least one of id, serialNumber, azureADDeviceId, imei or deviceName \
             (or the admin center export's headers)",
            shown.join(", ")
        )));
    }
    Ok((
        CsvBody {
            encoding: text.encoding,
            reader,
            map,
        },
        names,
        delimiter,
    ))
}

fn is_blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|f| f.trim_ascii().is_empty())
}

impl CsvBody {
    pub fn read_rows(mut self, emit: &mut dyn FnMut(JobRow)) -> ReadStats {
        let mut stats = ReadStats::default();
        let mut record = csv::ByteRecord::new();
        loop {
            match self.reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    // Only I/O fails here (records are bytes, rows may be ragged): say
                    // where reading stopped, as a row, so the report shows it.
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    stats.rows += 1;
                    emit(JobRow {
                        row: line,
                        fields: DeviceFields::default(),
                        defect: Some(RowDefect {
                            reason: "unreadable_rest_of_file",
                            detail: format!(
                                "reading stopped here: {e}; rows after this point were not read"
                            ),
                        }),
                    });
                    break;
                }
            }
            if is_blank(&record) {
                stats.blank_lines += 1;
                continue;
            }
            let start = record.position().map(|p| p.byte()).unwrap_or(0);
            let line = self.reader.get_mut().line_of(start);
            let mut fields = DeviceFields::with_capacity(record.as_slice().len());
            for (i, value) in record.iter().enumerate() {
                if let Some(Some(column)) = self.map.get(i) {
                    let value = value.trim_ascii();
                    if !value.is_empty() {
                        fields.set(*column, &field_text_in(value, self.encoding));
                    }
                }
            }
            stats.rows += 1;
            let defect = fields.is_empty().then(|| RowDefect {
                reason: "no_known_values",
                detail: "the row has values only in columns this tool does not use".into(),
            });
            emit(JobRow {
                row: line,
                fields,
                defect,
            });
        }
        stats
    }
}

/// Counts lines under the CSV parser, so a record's `row` is the line it starts on.
///
/// The csv crate's own `Position::line()` lags behind: a record's position is where the
/// previous record's terminator began (the `\n` of a CRLF and any blank lines come
/// first), so a record's first line is found by skipping line breaks from there. The
/// tracker keeps only the bytes between the last record asked about and the read-ahead
/// point: one record and one buffer, whatever the file's size.
///
/// A line ends at `\n`, `\r\n` or a lone `\r`: the csv crate ends records at all three,
/// and a CSV saved by Excel for the classic Mac OS has `\r` only; counting `\n` alone
/// would number every row of such a file 1.
pub struct LineTracker {
    inner: Box<dyn BufRead + Send>,
    pending: VecDeque<u8>,
    /// Byte offset of `pending[0]`.
    base: u64,
    /// Line number (1-based) at `base`.
    base_line: u64,
    /// The byte before `pending[0]` was `\r`: a `\n` there ends no new line.
    after_cr: bool,
}

/// 1 when `b` starts a new line, given whether the byte before it was `\r`.
fn line_break(after_cr: &mut bool, b: u8) -> u64 {
    let was_cr = std::mem::replace(after_cr, b == b'\r');
    u64::from(b == b'\r' || (b == b'\n' && !was_cr))
}

impl LineTracker {
    fn new(inner: Box<dyn BufRead + Send>) -> Self {
        LineTracker {
            inner,
            pending: VecDeque::new(),
            base: 0,
            base_line: 1,
            after_cr: false,
        }
    }

    /// The line on which the record whose position is `start` has its first byte.
    /// Calls must come with non-decreasing `start`.
    fn line_of(&mut self, start: u64) -> u64 {
        let advance = (start.saturating_sub(self.base) as usize).min(self.pending.len());
        let mut after_cr = self.after_cr;
        for b in self.pending.drain(..advance) {
            self.base_line += line_break(&mut after_cr, b);
        }
        self.after_cr = after_cr;
        self.base += advance as u64;
        let breaks: u64 = self
            .pending
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .map(|b| line_break(&mut after_cr, *b))
            .sum();
        self.base_line + breaks
    }
}

impl Read for LineTracker {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending.extend(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn delimiter_is_the_one_that_splits_the_header_most() {
        assert_eq!(detect_delimiter("id,serialNumber,OS\n").0, b',');
        assert_eq!(detect_delimiter("Device ID;Serial number;OS\r\n").0, b';');
        assert_eq!(detect_delimiter("id\tserialNumber\n").0, b'\t');
        assert_eq!(detect_delimiter("id|serialNumber|osVersion\n").0, b'|');
    }

    #[test]
    fn delimiters_inside_quotes_do_not_count() {
        assert_eq!(detect_delimiter("\"a,b,c,d\";\"e\";f\n").0, b';');
    }

    #[test]
    fn blank_lines_before_the_header_are_skipped() {
        assert_eq!(detect_delimiter("\n\r\n  \nid;os\n").0, b';');
    }

    #[test]
    fn excel_sep_line_decides() {
        assert_eq!(detect_delimiter("sep=|\nid,os\n"), (b'|', true));
    }

    #[test]
    fn a_single_column_file_is_comma_separated() {
        assert_eq!(detect_delimiter("serialNumber\nABC\n").0, b',');
    }

    fn lines_of(data: &str) -> Vec<(String, u64)> {
        let reader: Box<dyn BufRead + Send> =
            Box::new(std::io::Cursor::new(data.as_bytes().to_vec()));
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(b';')
            .has_headers(false)
            .flexible(true)
            .from_reader(LineTracker::new(reader));
        let mut record = csv::ByteRecord::new();
        let mut out = vec![];
        while csv.read_byte_record(&mut record).unwrap() {
            let start = record.position().unwrap().byte();
            let line = csv.get_mut().line_of(start);
            out.push((String::from_utf8_lossy(&record[0]).into_owned(), line));
        }
        out
    }

    #[test]
    fn rows_are_numbered_as_excel_numbers_them() {
        let got = lines_of("h1;h2\r\na;b\r\n\r\nc;\"d\ne\"\r\nf;g\r\n");
        let want = [("h1", 1), ("a", 2), ("c", 4), ("f", 6)];
        assert_eq!(got, want.map(|(s, n)| (s.to_string(), n)));
        let lf = lines_of("h\n\n\nx\ny\n");
        assert_eq!(
            lf,
            [("h", 1), ("x", 4), ("y", 5)].map(|(s, n)| (s.to_string(), n))
        );
    }

    #[test]
    fn classic_mac_files_with_cr_only_line_ends_are_numbered_by_line() {
        let got = lines_of("h1;h2\ra;b\r\rc;\"d\re\"\rf;g");
        let want = [("h1", 1), ("a", 2), ("c", 4), ("f", 6)];
        assert_eq!(got, want.map(|(s, n)| (s.to_string(), n)));
    }

    proptest! {
        #[test]
        fn row_numbers_match_line_numbers_with_any_blank_lines_and_line_endings(
            blanks in proptest::collection::vec(0usize..3, 1..30),
            eol in proptest::sample::select(vec!["\n", "\r\n", "\r"]),
        ) {
            let mut data = format!("id;x{eol}");
            let mut want = vec![("id".to_string(), 1u64)];
            let mut line = 2u64;
            for (i, b) in blanks.iter().enumerate() {
                for _ in 0..*b { data.push_str(eol); line += 1; }
                data.push_str(&format!("r{i};v{eol}"));
                want.push((format!("r{i}"), line));
                line += 1;
            }
            prop_assert_eq!(lines_of(&data), want);
        }

        #[test]
        fn detection_finds_the_delimiter_used_to_join_headers(
            d in proptest::sample::select(DELIMITERS.to_vec()),
            headers in proptest::collection::vec("[A-Za-z][A-Za-z ]{0,11}", 2..8),
        ) {
            let line = headers.join(&(d as char).to_string());
            prop_assert_eq!(detect_delimiter(&line).0, d);
        }
    }
}
