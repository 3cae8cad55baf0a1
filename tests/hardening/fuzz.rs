//! A proptest fuzz target for the job-file readers: arbitrary bytes, and well-formed
//! CSV, JSON and JSON Lines that are then mangled, written to a file and put through
//! `job::open`, `JobFile::read_rows` and the planner, as `plan` does.
//!
//! Properties: nothing panics (the simulator's inventory reader included); a file is either refused as a whole (`JobError`) or
//! every row comes out with a row number, in increasing order, and one assessment per
//! row; and where the input was generated from known records, one row per record with
//! its own value and line (an oracle independent of the readers); and where one record
//! of such an input is broken (a quote never closed, a JSON element serde_json rejects),
//! that record alone is lost, as one `invalid` row.
//!
//! It runs on stable Rust (no cargo-fuzz). `cargo test` runs a few dozen cases per
//! property; CI runs a longer, time-bounded campaign with `PROPTEST_CASES` (see
//! `.ci/run`).

use std::path::Path;

use intune_reset::device::Column;
use intune_reset::job::{self, JobError, JobRow};
use intune_reset::planner::{LookupMode, PlanOptions, Planner};
use intune_reset::rules::ActionChoice;
use intune_reset::sim::Inventory;
use proptest::prelude::*;
use proptest::test_runner::Config;
use tempfile::TempDir;

/// Cases per property: small for `cargo test`, `PROPTEST_CASES` for a campaign.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    Config {
        cases,
        // Failing inputs are printed; a regression file per property is not needed
        // for inputs that are this cheap to regenerate.
        failure_persistence: None,
        ..Config::default()
    }
}

/// What reading a file gave: refused, or its rows (each already assessed).
enum Read {
    Refused(JobError),
    Rows(Vec<JobRow>),
}

/// Writes `bytes` as `name`, then opens, reads and plans it; checks the properties
/// every input must have.
fn read(name: &str, bytes: &[u8]) -> Result<Read, TestCaseError> {
    let dir = TempDir::new().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    read_path(&path)
}

/// Reads `text` written in `encoding`. A legacy code page is named, as `--encoding`
/// names it: these properties are about recovering rows, and no detector can always
/// tell the code page of a few accented words (a short "ééßé" list is as likely
/// Windows-1252 as another page); the README sends such files to `--encoding`.
fn read_encoded(name: &str, text: &str, encoding: Encoding) -> Result<Read, TestCaseError> {
    let named = match encoding {
        Encoding::Windows1252 => job::decode::TextEncoding::from_name("windows-1252"),
        _ => None,
    };
    let dir = TempDir::new().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join(name);
    std::fs::write(&path, encode(text, encoding))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    read_path_with(&path, named)
}

fn read_path(path: &Path) -> Result<Read, TestCaseError> {
    read_path_with(path, None)
}

fn read_path_with(
    path: &Path,
    encoding: Option<job::decode::TextEncoding>,
) -> Result<Read, TestCaseError> {
    let options = job::ReadOptions {
        encoding,
        ..job::ReadOptions::default()
    };
    let opened = job::open_all(path, &options).and_then(|mut files| match files.len() {
        1 => Ok(files.remove(0)),
        n => Err(JobError::Unreadable {
            path: path.display().to_string(),
            why: format!("it is a ZIP archive of {n} job files"),
        }),
    });
    let file = match opened {
        Ok(file) => file,
        Err(e) => {
            prop_assert!(e.to_string().contains(&path.display().to_string()));
            return Ok(Read::Refused(e));
        }
    };
    let mut planner = Planner::new(PlanOptions {
        action: Some(intune_reset::rules::Actions::one(ActionChoice::Auto)),
        lookup: LookupMode::Auto,
        tenants: Default::default(),
    });
    let source = planner.add_source(&file.source);
    let names = file.columns.clone();
    let mut rows = Vec::new();
    let mut assessed = 0u64;
    let mut mismatch = None;
    let stats = file.read_rows(&mut |row| {
        let all = planner.assess(source, &names, None, row.clone());
        assessed += 1;
        if all.is_empty() {
            mismatch = Some(row.row);
        }
        for assessment in all {
            if assessment.row.row != row.row || (row.defect.is_some() && assessment.work.is_some())
            {
                mismatch = Some(row.row);
            }
        }
        rows.push(row);
    });
    let stats = match stats {
        Ok(stats) => stats,
        Err(e) => return Ok(Read::Refused(e)),
    };
    prop_assert_eq!(mismatch, None, "the report row keeps the row number");
    prop_assert_eq!(stats.rows, rows.len() as u64, "stats count every row");
    prop_assert_eq!(assessed, rows.len() as u64);
    for pair in rows.windows(2) {
        prop_assert!(
            pair[0].row < pair[1].row,
            "row numbers increase: {} then {}",
            pair[0].row,
            pair[1].row
        );
    }
    prop_assert!(rows.iter().all(|r| r.row >= 1), "every row has a number");
    let stopped = |r: &JobRow| {
        r.defect
            .as_ref()
            .is_some_and(|d| d.reason == "unreadable_rest_of_file")
    };
    if let Some(at) = rows.iter().position(stopped) {
        prop_assert_eq!(at + 1, rows.len(), "reading stops at most once, at the end");
    }
    // The simulator seeds its tenant from job files with the same readers (`simulate
    // --inventory`, `run --simulate`): it must not panic on them either.
    let _ = Inventory::from_job_files(&[path.to_owned()], 1, &Default::default());
    Ok(Read::Rows(rows))
}

fn rows_of(read: Read) -> Result<Vec<JobRow>, TestCaseError> {
    match read {
        Read::Rows(rows) => Ok(rows),
        Read::Refused(e) => Err(TestCaseError::fail(format!("refused: {e}"))),
    }
}

/// A CSV field as Excel writes it: quoted when it holds the delimiter, a quote or a
/// line break.
fn csv_field(value: &str, delimiter: char) -> String {
    if value.contains([delimiter, '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Counts line starts the way an editor does: `\n`, `\r\n` or a lone `\r` ends a line.
fn lines_before(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut lines = 1;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'\r' => lines += 1,
            b'\n' if i == 0 || bytes[i - 1] != b'\r' => lines += 1,
            _ => {}
        }
    }
    lines
}

#[derive(Debug, Clone, Copy)]
enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    /// An ANSI export from a Western-European Windows.
    Windows1252,
}

fn encode(text: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Utf8 => text.as_bytes().to_vec(),
        Encoding::Utf8Bom => [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat(),
        Encoding::Utf16Le => crate::common::utf16le_with_bom(text),
        Encoding::Utf16Be => crate::common::utf16be_with_bom(text),
        Encoding::Windows1252 => encoding_rs::WINDOWS_1252.encode(text).0.into_owned(),
    }
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Utf8),
        Just(Encoding::Utf8Bom),
        Just(Encoding::Utf16Le),
        Just(Encoding::Utf16Be),
        Just(Encoding::Windows1252),
    ]
}

/// A generated CSV record: a unique serial number, a device name with whatever Excel
/// puts in names (delimiters, quotes, line breaks, accents), and blank lines before it.
#[derive(Debug, Clone)]
struct Record {
    name: String,
    blanks_before: usize,
}

fn record() -> impl Strategy<Value = Record> {
    ("[A-Za-z0-9 ,;|\t\"éß€\n]{0,12}", 0usize..3).prop_map(|(name, blanks_before)| Record {
        name,
        blanks_before,
    })
}

/// Mangling: cut the file, flip bytes, insert NULs or stray bytes.
#[derive(Debug, Clone)]
enum Mangle {
    Truncate(prop::sample::Index),
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
}

fn mangle() -> impl Strategy<Value = Mangle> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Mangle::Truncate),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mangle::Set(i, b)),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(
                prop_oneof![Just(0u8), Just(b'"'), Just(b'\r'), any::<u8>()],
                1..6
            )
        )
            .prop_map(|(i, b)| Mangle::Insert(i, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, mangles: &[Mangle]) -> Vec<u8> {
    for m in mangles {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mangle::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Mangle::Set(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            Mangle::Insert(i, b) => {
                let at = i.index(bytes.len());
                bytes.splice(at..at, b.iter().copied());
            }
        }
    }
    bytes
}

/// A generated CSV job: its text and, per record, (serial, trimmed name, line).
fn csv_job(
    records: &[Record],
    delimiter: char,
    eol: &str,
    final_eol: bool,
) -> (String, Vec<(String, String, u64)>) {
    let d = delimiter;
    let mut text = format!("serialNumber{d}deviceName{d}OS");
    let mut expected = Vec::new();
    for (i, r) in records.iter().enumerate() {
        text.push_str(eol);
        for _ in 0..r.blanks_before {
            text.push_str(eol);
        }
        let line = lines_before(&text);
        let serial = format!("SN{i:05}");
        text.push_str(&format!("{serial}{d}{}{d}iOS", csv_field(&r.name, d)));
        expected.push((serial, r.name.trim().to_owned(), line));
    }
    if final_eol {
        text.push_str(eol);
    }
    (text, expected)
}

/// A multi-line value with an inner line (neither its first nor its last) that could
/// split into all three columns on its own: no reader can tell it from rows swallowed
/// by an unclosed quote, and the CSV reader takes it for the latter (see
/// `job::csv_records`), so the oracles leave such values out.
fn looks_like_swallowed_rows(name: &str, delimiter: char) -> bool {
    let lines: Vec<&str> = name.split(['\r', '\n']).collect();
    lines.len() > 2
        && lines[1..lines.len() - 1]
            .iter()
            .any(|l| l.matches(delimiter).count() >= 2)
}

/// Elements that serde_json rejects on their own, but whose end a reader can still
/// find.
fn broken_json_element() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(format!(
            "{{\"serialNumber\":\"X\",\"a\":{}1{}}}",
            "[".repeat(200),
            "]".repeat(200)
        )),
        Just(r#"{"imei": 1e999999}"#.to_string()),
        Just(r#"{"serialNumber": "X" "operatingSystem": "iOS"}"#.to_string()),
        Just(r#"{"serialNumber": tru}"#.to_string()),
        Just(r#"{"serialNumber": "X",}"#.to_string()),
        Just("{\"serialNumber\": \"a\nb\"}".to_string()),
        Just(r#"{"serialNumber": "\u12"}"#.to_string()),
        Just(r#"{"a": [1, 2]} x"#.to_string()),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes at all, under any of the names a job file has.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        name in prop::sample::select(vec!["job.csv", "job.json", "job.jsonl", "job.txt", "job"]),
    ) {
        read(name, &bytes)?;
    }

    /// Well-formed CSV in every dialect: one row per record, with its own value and
    /// the line it starts on.
    #[test]
    fn generated_csv_gives_one_row_per_record(
        records in prop::collection::vec(record(), 0..25),
        delimiter in prop::sample::select(vec![',', ';', '\t', '|']),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        final_eol in any::<bool>(),
        encoding in encoding(),
    ) {
        prop_assume!(!records.iter().any(|r| looks_like_swallowed_rows(&r.name, delimiter)));
        let (text, expected) = csv_job(&records, delimiter, eol, final_eol);
        let bytes = encode(&text, encoding);
        // A legacy code page is guessed from the bytes' statistics, and a random mix
        // of `éß€` is no language (a lone `€`, 0x80, reads as OEM 850's `Ç` as well):
        // there, values are compared only when they are ASCII. The legacy detector has
        // property tests of its own, on names (src/job/legacy.rs).
        let knowable = !matches!(encoding, Encoding::Windows1252) || text.is_ascii();
        let rows = rows_of(read("job.csv", &bytes)?)?;
        prop_assert_eq!(rows.len(), expected.len());
        for (row, (serial, name, line)) in rows.iter().zip(&expected) {
            prop_assert_eq!(row.fields.get(Column::SerialNumber), Some(serial.as_str()));
            if knowable {
                prop_assert_eq!(row.fields.get(Column::DeviceName).unwrap_or(""), name.as_str());
            }
            prop_assert_eq!(row.row, *line, "the line of {}", serial);
            prop_assert!(row.defect.is_none());
        }
    }

    /// The same CSV, then cut, overwritten and padded with NULs and stray bytes: no
    /// panic, and no rows invented out of nothing.
    #[test]
    fn mangled_csv_never_panics_or_invents_rows(
        records in prop::collection::vec(record(), 1..25),
        delimiter in prop::sample::select(vec![',', ';', '\t', '|']),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        encoding in encoding(),
        mangles in prop::collection::vec(mangle(), 1..4),
    ) {
        let (text, expected) = csv_job(&records, delimiter, eol, true);
        let bytes = apply(encode(&text, encoding), &mangles);
        if let Read::Rows(rows) = read("job.csv", &bytes)? {
            // A mangled quote or line break may join records or split them, but a row
            // starts on a line of its own, and in every encoding the readers know a
            // line break needs a 0x0A or 0x0D byte.
            let breaks = bytes.iter().filter(|b| matches!(b, b'\n' | b'\r')).count();
            prop_assert!(
                rows.len() <= breaks + 1,
                "{} rows from {} records and {} line breaks", rows.len(), expected.len(), breaks
            );
        }
    }

    /// A JSON array (or Graph list response, or job document): one row per element,
    /// numbered by position, whatever the element is.
    #[test]
    fn generated_json_gives_one_row_per_element(
        elements in prop::collection::vec(prop_oneof![
            "[A-Za-z0-9éß\\\\\"]{0,10}".prop_map(|s| serde_json::json!({"serialNumber": s, "operatingSystem": "iOS"})),
            any::<i32>().prop_map(|n| serde_json::json!({"imei": n})),
            Just(serde_json::Value::Null),
            "[a-z]{0,6}".prop_map(serde_json::Value::from),
            Just(serde_json::json!({"unrelated": true})),
        ], 0..30),
        shape in 0usize..4,
        encoding in encoding(),
    ) {
        let text = json_document(&elements, shape)?;
        let rows = rows_of(read_encoded("job.json", &text, encoding)?)?;
        prop_assert_eq!(rows.len(), elements.len());
        for (i, (row, element)) in rows.iter().zip(&elements).enumerate() {
            prop_assert_eq!(row.row, i as u64 + 1);
            prop_assert_eq!(row.defect.is_some(), element.as_object().is_none_or(|o| o.contains_key("unrelated")));
        }
    }

    /// A generated CSV with one record's device name opening a quote it never closes:
    /// that record is one `unclosed_quote` row on its own line, every other record
    /// comes out as it would have.
    #[test]
    fn an_unclosed_quote_loses_only_its_own_line(
        mut records in prop::collection::vec(record(), 1..25),
        broken in any::<prop::sample::Index>(),
        open_name in "[A-Za-z0-9 ,;|\t]{0,12}",
        delimiter in prop::sample::select(vec![',', ';', '\t', '|']),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        final_eol in any::<bool>(),
        encoding in encoding(),
    ) {
        prop_assume!(!records.iter().any(|r| looks_like_swallowed_rows(&r.name, delimiter)));
        let k = broken.index(records.len());
        // The broken record is one line, as the records after it expect.
        records[k].name = open_name.clone();
        // A quote left open just before a record whose own quoted value spans lines
        // cannot be told from one value spanning lines: the next record is one line.
        if let Some(next) = records.get_mut(k + 1) {
            next.name = next.name.replace(['\r', '\n'], " ");
        }
        let (text, expected) = csv_job(&records, delimiter, eol, final_eol);
        // Rebuild the file with record k's name replaced by an unclosed quote.
        let d = delimiter;
        let serial = &expected[k].0;
        let good = format!("{serial}{d}{}{d}iOS", csv_field(&records[k].name, d));
        let bad = format!("{serial}{d}\"{open_name}{d}iOS");
        let at = text.find(&good).ok_or_else(|| TestCaseError::fail("record not found"))?;
        let text = format!("{}{bad}{}", &text[..at], &text[at + good.len()..]);
        let rows = rows_of(read_encoded("job.csv", &text, encoding)?)?;
        prop_assert_eq!(rows.len(), expected.len());
        for (i, (row, (serial, _, line))) in rows.iter().zip(&expected).enumerate() {
            prop_assert_eq!(row.row, *line);
            if i == k {
                let defect = row.defect.as_ref().ok_or_else(|| TestCaseError::fail("no defect"))?;
                prop_assert_eq!(defect.reason, "unclosed_quote");
                prop_assert!(defect.detail.contains("\"deviceName\""), "{}", defect.detail);
            } else {
                prop_assert_eq!(row.fields.get(Column::SerialNumber), Some(serial.as_str()));
                prop_assert!(row.defect.is_none(), "{:?}", row.defect);
            }
        }
    }

    /// A JSON array (in every shape) with one element serde_json rejects: that element
    /// is one `invalid_json` row, every other element comes out at its position.
    #[test]
    fn a_broken_json_element_loses_only_itself(
        elements in prop::collection::vec(prop_oneof![
            "[A-Za-z0-9éß\\\\\"]{1,10}".prop_map(|s| serde_json::json!({"serialNumber": s})),
            Just(serde_json::Value::Null),
            "[a-z,\\]}]{0,6}".prop_map(serde_json::Value::from),
        ], 1..30),
        broken in any::<prop::sample::Index>(),
        element in broken_json_element(),
        shape in 0usize..4,
        encoding in encoding(),
    ) {
        let k = broken.index(elements.len());
        let mut marked = elements.clone();
        marked[k] = serde_json::Value::from("__BROKEN__");
        let text = json_document(&marked, shape)?.replace("\"__BROKEN__\"", &element);
        let rows = rows_of(read_encoded("job.json", &text, encoding)?)?;
        prop_assert_eq!(rows.len(), elements.len());
        for (i, (row, original)) in rows.iter().zip(&elements).enumerate() {
            prop_assert_eq!(row.row, i as u64 + 1);
            if i == k {
                prop_assert_eq!(row.defect.as_ref().map(|d| d.reason), Some("invalid_json"));
            } else {
                prop_assert_eq!(row.defect.is_some(), !original.is_object());
            }
        }
    }

    /// JSON Lines with blank and broken lines: one row per non-blank line, numbered
    /// by line.
    #[test]
    fn generated_json_lines_give_one_row_per_non_blank_line(
        lines in prop::collection::vec(prop_oneof![
            "[A-Z0-9]{1,8}".prop_map(|s| format!("{{\"serialNumber\":\"{s}\"}}")),
            Just(String::new()),
            Just("   ".to_string()),
            "[a-z{}\\[\\]:,]{1,10}".prop_map(|s| format!("x{s}")),
        ], 0..30),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        encoding in encoding(),
    ) {
        let text: String = lines.iter().map(|l| format!("{l}{eol}")).collect();
        let expected: Vec<u64> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, _)| i as u64 + 1)
            .collect();
        match read_encoded("job.jsonl", &text, encoding)? {
            Read::Rows(rows) => {
                let numbers: Vec<u64> = rows.iter().map(|r| r.row).collect();
                prop_assert_eq!(numbers, expected);
            }
            // Only a file with nothing in it is refused.
            Read::Refused(e) => prop_assert!(expected.is_empty(), "refused: {}", e),
        }
    }

    /// Mangled JSON and JSON Lines: no panic; a broken array says where it broke
    /// (checked in [`read_path`]) instead of dropping the rest silently.
    #[test]
    fn mangled_json_never_panics(
        count in 1usize..20,
        lines in any::<bool>(),
        encoding in encoding(),
        mangles in prop::collection::vec(mangle(), 1..4),
    ) {
        let devices: Vec<String> = (0..count)
            .map(|i| format!("{{\"serialNumber\":\"SN{i}\",\"deviceName\":\"Köln {i}\"}}"))
            .collect();
        let (name, text) = if lines {
            ("job.jsonl", devices.join("\n"))
        } else {
            ("job.json", format!("[{}]", devices.join(",\n")))
        };
        let bytes = apply(encode(&text, encoding), &mangles);
        read(name, &bytes)?;
    }
}

/// The elements as a JSON array (shape 0), a Graph list response (1), a job document
/// (2), or a document with two device arrays, `value` then `devices` (3), as text: the
/// order of the keys matters, and `json!` would sort them.
fn json_document(elements: &[serde_json::Value], shape: usize) -> Result<String, TestCaseError> {
    let text = |v: &[serde_json::Value]| {
        serde_json::to_string_pretty(v).map_err(|e| TestCaseError::fail(e.to_string()))
    };
    let array = text(elements)?;
    Ok(match shape {
        0 => array,
        1 => format!("{{\"value\": {array}}}"),
        2 => format!("{{\"devices\": {array}, \"action\": \"auto\"}}"),
        _ => {
            let (first, second) = elements.split_at(elements.len() / 2);
            format!(
                "{{\"value\": {},\n\"action\": \"auto\",\n\"devices\": {}}}",
                text(first)?,
                text(second)?
            )
        }
    })
}
