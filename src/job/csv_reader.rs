//! CSV job files: delimiter detection, the header, and records as devices.

use super::csv_records::{Fields, Next, Records, Unclosed};
use super::decode::{TextSource, field_text};
use super::headerless::{guess_column, is_type_line};
use super::{ColumnNames, JobError, JobRow, ReadStats, RowDefect};
use crate::device::{Column, DeviceFields};

pub struct CsvBody {
    /// How messages name the file.
    name: String,
    records: Records,
    /// For each field position, the column it feeds.
    map: Vec<Option<Column>>,
    /// The header as the file spells it, to name a column in a message.
    header: Vec<String>,
    /// A headerless list's first line: a device, read before the rest.
    first_row: Option<(u64, Fields)>,
}

/// The delimiters Excel and MDM exports use, in order of preference on a tie.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Picks the delimiter that splits the header line into the most fields, counting only
/// outside quotes. Excel's `sep=;` first line, when present, decides instead. A
/// PowerShell `#TYPE` line above the header is passed over.
pub fn detect_delimiter(head: &str) -> (u8, bool) {
    // A lone `\r` ends a line too (classic Mac files): `str::lines` would take the whole
    // file for the header, and an unclosed quote further down would sway the count.
    let mut lines = head
        .split(['\r', '\n'])
        .map(|l| l.trim_start_matches('\u{feff}'));
    let first = lines
        .by_ref()
        .find(|l| !l.trim().is_empty() && !is_type_line(l))
        .unwrap_or("");
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

pub fn open(name: &str, text: TextSource) -> Result<(CsvBody, ColumnNames, u8), JobError> {
    let (delimiter, sep_line) = detect_delimiter(&text.head);
    let mut records = Records::new(text.reader, delimiter);
    let unreadable = |why: String| JobError::Unreadable {
        path: name.to_owned(),
        why,
    };
    let mut fields = Fields::default();
    let mut skipped_sep = !sep_line;
    let mut skipped_type = false;
    let (header_line, mut header) = loop {
        let line = match records.next_record(&mut fields) {
            Next::End => return Err(unreadable("it has no header row".into())),
            Next::Record { line } => line,
            Next::Unclosed { line, field, .. } => {
                return Err(unreadable(format!(
                    "the header cannot be read: field {} of line {line} opens a quote that is \
                     never closed",
                    field + 1
                )));
            }
            Next::Error { error, .. } => {
                return Err(unreadable(format!("the header cannot be read: {error}")));
            }
        };
        if fields.is_blank() {
            continue;
        }
        if !skipped_sep {
            skipped_sep = true;
            continue;
        }
        if !skipped_type
            && fields
                .iter()
                .next()
                .is_some_and(|f| is_type_line(&field_text(f)))
        {
            skipped_type = true;
            continue;
        }
        break (
            line,
            fields
                .iter()
                .map(|f| field_text(f).into_owned())
                .collect::<Vec<_>>(),
        );
    };
    records.set_row_width(header.len());
    let mut names = ColumnNames::default();
    let mut map = header_map(&header);
    let mut first_row = None;
    if map.iter().all(Option::is_none) {
        let guessed = (header.len() == 1)
            .then(|| guess_column(&text.head, !text.head_is_whole))
            .flatten();
        let Some(column) = guessed else {
            return Err(unreadable(no_known_column(&header)));
        };
        super::notice::warn(format!(
            "{}: no header line; every value looks like {}, so the file is read as one \
             \"{}\" column and its first line is {} (row {header_line}); add a first \
             line \"{}\" to say so",
            name,
            kind_of(column),
            column.canonical(),
            match column {
                Column::UserPrincipalName => "a user",
                _ => "a device",
            },
            column.canonical(),
        ));
        map = vec![Some(column)];
        // Messages name the column as the tool assumed it, not by the first device.
        header = vec![column.canonical().to_owned()];
        first_row = Some((header_line, std::mem::take(&mut fields)));
    }
    for (h, column) in header.iter().zip(&map) {
        if let Some(c) = column {
            names.note(*c, h);
        }
    }
    Ok((
        CsvBody {
            name: name.to_owned(),
            records,
            map,
            header,
            first_row,
        },
        names,
        delimiter,
    ))
}

/// For each header, the column it feeds. `Get-MgDeviceManagementManagedDevice` writes
/// both `DeviceName` and `ManagedDeviceName` (Intune's generated `user_iPhone_date`
/// name): the latter is only an alias where the file has no device name of its own.
pub(super) fn header_map(header: &[String]) -> Vec<Option<Column>> {
    let has_device_name = header
        .iter()
        .any(|h| crate::device::normalize(h) == "devicename");
    // The Entra admin center's device download: its deviceId is the Entra device id.
    let entra = crate::device::is_entra_device_list(header.iter().map(String::as_str));
    if entra {
        tracing::info!(
            "the file has the Entra admin center's device list shape: its deviceId is read as the Entra device id (azureADDeviceId), not an Intune id"
        );
    }
    let matcher = if entra {
        crate::device::match_entra_header
    } else {
        Column::match_header
    };
    header
        .iter()
        .map(|h| match matcher(h) {
            Some(Column::DeviceName)
                if has_device_name && crate::device::normalize(h) == "manageddevicename" =>
            {
                None
            }
            column => column,
        })
        .collect()
}

pub(super) fn no_known_column(header: &[String]) -> String {
    let shown: Vec<&str> = header.iter().take(8).map(|h| h.trim()).collect();
    let mut why = format!(
        "its first row ({}) names no column this tool knows; a job file needs a header \
         with at least one of id, serialNumber, azureADDeviceId, imei or deviceName \
         (or the admin center export's headers)",
        shown.join(", ")
    );
    if header.len() == 1 {
        why.push_str(
            "; if it is a list without a header, add a first line \"serialNumber\" (or id, \
             imei, deviceName) naming what the values are",
        );
    }
    why
}

/// What a guessed column's values are, in the user's words.
pub(super) fn kind_of(column: Column) -> &'static str {
    match column {
        Column::Id => "an Intune device id (a GUID)",
        Column::Imei => "an IMEI (14 to 16 digits)",
        Column::UserPrincipalName => "a user principal name (user@domain)",
        _ => "a serial number",
    }
}

impl CsvBody {
    pub fn read_rows(mut self, emit: &mut dyn FnMut(JobRow)) -> ReadStats {
        let mut stats = ReadStats::default();
        let mut record = Fields::default();
        let mut first_row = self.first_row.take();
        // The first row with a value that is not UTF-8 in a file whose head was.
        let mut not_utf8 = None;
        loop {
            let next = match first_row.take() {
                Some((line, fields)) => {
                    record = fields;
                    Next::Record { line }
                }
                None => self.records.next_record(&mut record),
            };
            let line = match next {
                Next::End => break,
                Next::Record { line } => line,
                Next::Unclosed { line, field, why } => {
                    stats.rows += 1;
                    emit(JobRow {
                        row: line,
                        fields: DeviceFields::default(),
                        defect: Some(self.unclosed_quote(line, field, why)),
                    });
                    continue;
                }
                Next::Error { line, error } => {
                    // Only I/O fails here (records are bytes, rows may be ragged): say
                    // where reading stopped, as a row, so the report shows it.
                    stats.rows += 1;
                    emit(JobRow {
                        row: line,
                        fields: DeviceFields::default(),
                        defect: Some(RowDefect {
                            reason: "unreadable_rest_of_file",
                            detail: format!(
                                "reading stopped here: {error}; rows after this point were not read"
                            ),
                        }),
                    });
                    break;
                }
            };
            if record.is_blank() {
                stats.blank_lines += 1;
                continue;
            }
            let mut fields = DeviceFields::with_capacity(record.byte_len());
            for (i, value) in record.iter().enumerate() {
                if let Some(Some(column)) = self.map.get(i) {
                    let value = value.trim_ascii();
                    if !value.is_empty() {
                        match std::str::from_utf8(value) {
                            Ok(text) => fields.set(*column, text),
                            Err(_) => {
                                not_utf8.get_or_insert(line);
                                fields.set(*column, &field_text(value));
                            }
                        }
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
        if let Some(row) = not_utf8 {
            super::notice::warn(format!(
                "{}: the file starts as UTF-8, but row {row} (and maybe others) holds bytes \
                 that are not; they were read as Windows-1252. If names look wrong there, \
                 save the file as CSV UTF-8 (Excel: File > Save As > CSV UTF-8 (Comma \
                 delimited)), or pass --encoding NAME",
                self.name
            ));
        }
        stats
    }

    /// The row for a record whose quote is never closed, naming the column as the
    /// header spells it.
    fn unclosed_quote(&self, line: u64, field: usize, why: Unclosed) -> RowDefect {
        let column = match self
            .header
            .get(field)
            .map(|h| h.trim().trim_start_matches('\u{feff}'))
        {
            Some(name) if !name.is_empty() => format!("the \"{name}\" value"),
            _ => format!("field {}", field + 1),
        };
        let until = match why {
            Unclosed::NextRow => "before the next row",
            Unclosed::EndOfFile => "before the end of the file",
            Unclosed::TooLong => "within the next 1000 lines",
        };
        RowDefect {
            reason: "unclosed_quote",
            detail: format!(
                "{column} on line {line} opens a quote that is not closed {until}; line {line} \
                 is skipped and reading goes on at line {}",
                line + 1
            ),
        }
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
    fn a_powershell_type_line_does_not_decide_the_delimiter() {
        let head = "#TYPE Microsoft.Graph.PowerShell.Models.MicrosoftGraphManagedDevice\r\n\
                    \"Id\";\"DeviceName\"\r\n";
        assert_eq!(detect_delimiter(head), (b';', false));
    }

    #[test]
    fn only_the_header_line_of_a_classic_mac_file_counts() {
        assert_eq!(detect_delimiter("a;b;c\rx,y,z,w\r").0, b';');
    }

    #[test]
    fn a_single_column_file_is_comma_separated() {
        assert_eq!(detect_delimiter("serialNumber\nABC\n").0, b',');
    }

    fn lines_of(data: &str) -> Vec<(String, u64)> {
        let reader: Box<dyn std::io::BufRead + Send> =
            Box::new(std::io::Cursor::new(data.as_bytes().to_vec()));
        let mut records = Records::new(reader, b';');
        records.set_row_width(2);
        let mut fields = Fields::default();
        let mut out = vec![];
        while let Next::Record { line } = records.next_record(&mut fields) {
            let first = fields.iter().next().unwrap_or_default();
            out.push((String::from_utf8_lossy(first).into_owned(), line));
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
