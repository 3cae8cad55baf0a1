//! CSV job files: delimiter detection, the header, and records as devices.

use std::path::Path;

use super::decode::{TextEncoding, TextSource, field_text};
use super::{Column, ColumnNames, DeviceFields, JobError, JobRow, ReadStats, RowDefect};

pub struct CsvBody {
    pub encoding: TextEncoding,
    reader: csv::Reader<Box<dyn std::io::BufRead + Send>>,
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
        .from_reader(text.reader);
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
        break record.iter().map(field_text).collect::<Vec<_>>();
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
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let mut fields = DeviceFields::default();
            for (i, value) in record.iter().enumerate() {
                if let Some(Some(column)) = self.map.get(i) {
                    let value = value.trim_ascii();
                    if !value.is_empty() {
                        fields.set(*column, &field_text(value));
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

    proptest! {
        #[test]
        fn detection_finds_the_delimiter_used_to_join_headers(
            d in proptest::sample::select(DELIMITERS.to_vec()),
            headers in proptest::collection::vec("[A-Za-z ]{1,12}", 2..8),
        ) {
            let line = headers.join(&(d as char).to_string());
            prop_assert_eq!(detect_delimiter(&line).0, d);
        }
    }
}
