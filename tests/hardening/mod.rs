//! Bad input through the real binary (`intune-reset plan`): files an incident or a
//! broken export really produces. Each ends in a clear outcome: the file refused with
//! exit 2 and nothing written, or one report row per record, none lost, no panic.

mod fuzz;

use std::path::Path;

use tempfile::TempDir;

use crate::common::{Row, count, intune_reset, read_report, utf16le_with_bom, write};

const IOS_A: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const IOS_B: &str = "11111111-2222-3333-4444-555555555555";

struct Planned {
    code: i32,
    rows: Vec<Row>,
    stderr: String,
    report_written: bool,
}

/// `intune-reset plan FILE --report DIR/report.csv`.
fn plan(dir: &Path, file: &Path) -> Planned {
    let report = dir.join("report.csv");
    let out = intune_reset()
        .arg("plan")
        .arg(file)
        .arg("--report")
        .arg(&report)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report_written = report.exists();
    Planned {
        code: out.status.code().unwrap_or(-1),
        rows: if report_written {
            read_report(&report)
        } else {
            vec![]
        },
        stderr,
        report_written,
    }
}

/// `plan` for the 100,000-row files: only the report's `row`, `outcome` and `detail`
/// and `device_id` columns, read by position (a map per row of a 100,000-row report
/// costs seconds in a debug build).
fn plan_big(dir: &Path, file: &Path) -> (i32, Vec<[String; 4]>) {
    let report = dir.join("report.csv");
    let out = intune_reset()
        .arg("plan")
        .arg(file)
        .arg("--report")
        .arg(&report)
        .output()
        .expect("the binary runs");
    let mut reader = csv::Reader::from_path(&report).expect("a report");
    let headers = reader.headers().expect("a header").clone();
    let at = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .expect("a report column")
    };
    let columns = [at("row"), at("outcome"), at("detail"), at("device_id")];
    let mut record = csv::StringRecord::new();
    let mut rows = Vec::new();
    while reader.read_record(&mut record).expect("a report row") {
        rows.push(columns.map(|i| record[i].to_owned()));
    }
    (out.status.code().unwrap_or(-1), rows)
}

fn row_numbers(rows: &[Row]) -> Vec<u64> {
    rows.iter()
        .map(|r| r["row"].parse().expect("a row number"))
        .collect()
}

#[test]
fn a_hundred_thousand_copies_of_one_device_give_one_planned_row_and_the_rest_duplicates() {
    let dir = TempDir::new().unwrap();
    let mut csv = String::from("id,operatingSystem\n");
    for _ in 0..100_000 {
        csv.push_str(&format!("{IOS_A},iOS\n"));
    }
    let file = write(dir.path(), "dups.csv", csv);
    let (code, rows) = plan_big(dir.path(), &file);
    assert_eq!(code, 0, "duplicates are expected outcomes");
    assert_eq!(rows.len(), 100_000, "one report row per job row");
    let outcome = |o: &str| rows.iter().filter(|r| r[1] == o).count();
    assert_eq!(outcome("planned"), 1);
    assert_eq!(outcome("duplicate"), 99_999);
    assert_eq!(rows[0][1], "planned");
    let numbers: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(numbers, (2..=100_001).collect::<Vec<_>>());
    assert_eq!(
        rows[99_999][2],
        "the same device as row 2, which is handled there"
    );
}

#[test]
fn a_field_of_several_megabytes_is_invalid_and_echoed_short() {
    let dir = TempDir::new().unwrap();
    let huge = "A".repeat(5 * 1024 * 1024);
    let file = write(
        dir.path(),
        "huge.csv",
        format!("id,deviceName,operatingSystem\n{IOS_A},{huge},iOS\n{IOS_B},Kiosk,iOS\n"),
    );
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 1, "{}", p.stderr);
    assert_eq!(p.rows.len(), 2);
    assert_eq!(p.rows[0]["outcome"], "invalid");
    assert_eq!(p.rows[0]["reason"], "value_too_long");
    let echoed = &p.rows[0]["device_name"];
    assert_eq!(
        echoed.chars().count(),
        257,
        "256 characters of the value and an ellipsis"
    );
    assert!(echoed.ends_with('…'));
    assert!(p.rows[0]["detail"].len() < 300, "{}", p.rows[0]["detail"]);
    assert_eq!(p.rows[1]["outcome"], "planned");

    let json = write(
        dir.path(),
        "huge.json",
        format!(
            r#"[{{"id":"{IOS_A}","serialNumber":"{huge}"}},{{"id":"{IOS_B}","operatingSystem":"iOS"}}]"#
        ),
    );
    let p = plan(dir.path(), &json);
    assert_eq!(p.rows.len(), 2);
    assert_eq!(p.rows[0]["reason"], "value_too_long");
    assert!(p.rows[0]["serial_number"].chars().count() <= 257);
    assert_eq!(p.rows[1]["outcome"], "planned");
}

/// Rows of a UTF-8 file long enough that the byte comes after the sniffed 64 KiB head.
fn long_utf8_body(rows: usize) -> String {
    (0..rows)
        .map(|i| format!("Köln {i},SN{i:06},iOS\n"))
        .collect()
}

#[test]
fn invalid_utf8_mid_file_spoils_one_value_not_the_file() {
    let dir = TempDir::new().unwrap();
    let mut bytes = b"deviceName,serialNumber,operatingSystem\n".to_vec();
    bytes.extend_from_slice(long_utf8_body(4000).as_bytes());
    bytes.extend_from_slice(b"Jos\xe9's iPhone,SNX,iOS\n");
    bytes.extend_from_slice("Zürich,SNY,iOS\n".as_bytes());
    assert!(bytes.len() > 64 * 1024);
    let file = write(dir.path(), "mixed.csv", &bytes);
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert!(p.stderr.contains("UTF-8"), "{}", p.stderr);
    assert_eq!(p.rows.len(), 4002);
    assert_eq!(p.rows[0]["device_name"], "Köln 0");
    assert_eq!(p.rows[4000]["device_name"], "José's iPhone");
    assert_eq!(p.rows[4001]["device_name"], "Zürich");
    assert_eq!(count(&p.rows, "planned"), 4002);
}

#[test]
fn invalid_utf8_mid_json_array_keeps_every_later_device() {
    let dir = TempDir::new().unwrap();
    let mut bytes = b"[".to_vec();
    for i in 0..3000 {
        bytes.extend_from_slice(
            format!(
                r#"{{"serialNumber":"SN{i:06}","operatingSystem":"iOS","deviceName":"Köln"}},"#
            )
            .as_bytes(),
        );
    }
    bytes.extend_from_slice(b"{\"serialNumber\":\"SNX\",\"deviceName\":\"Jos\xe9\"},");
    bytes.extend_from_slice(br#"{"serialNumber":"SNY","operatingSystem":"iOS"}]"#);
    assert!(bytes.len() > 64 * 1024);
    let file = write(dir.path(), "mixed.json", &bytes);
    let p = plan(dir.path(), &file);
    assert_eq!(p.rows.len(), 3002, "{}", p.stderr);
    assert_eq!(p.rows[3000]["device_name"], "José");
    assert_eq!(p.rows[3001]["serial_number"], "SNY");
    assert_eq!(count(&p.rows, "invalid"), 0);
}

#[test]
fn a_nul_inside_a_field_makes_that_row_invalid_unless_an_id_finds_the_device() {
    let dir = TempDir::new().unwrap();
    let file = write(
        dir.path(),
        "nul.csv",
        format!(
            "id,deviceName,serialNumber,operatingSystem\n,Kiosk,F2L\0X1,iOS\n\
             {IOS_B},Kiosk,,iOS\n{IOS_A},ab\0cd,,iOS\n"
        ),
    );
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 1, "{}", p.stderr);
    assert_eq!(p.rows.len(), 3);
    assert_eq!(p.rows[0]["outcome"], "invalid");
    assert_eq!(p.rows[0]["reason"], "control_characters");
    assert_eq!(p.rows[1]["outcome"], "planned");
    assert_eq!(p.rows[2]["outcome"], "planned", "{}", p.rows[2]["detail"]);
    assert_eq!(p.rows[2]["device_name"], "ab\0cd", "the name as read");
}

#[test]
fn nul_heavy_binary_garbage_is_refused_and_nothing_is_written() {
    let dir = TempDir::new().unwrap();
    // A header that parses, then a block of NULs (a file a crash left half written).
    let mut bytes = b"serialNumber,OS\nSN1,iOS\n".to_vec();
    bytes.extend(std::iter::repeat_n(0u8, 4096));
    let padded = write(dir.path(), "padded.csv", &bytes);
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| if i % 3 == 0 { 0 } else { (i * 37 % 251) as u8 })
        .collect();
    let random = write(dir.path(), "garbage.csv", &garbage);
    for file in [padded, random] {
        let p = plan(dir.path(), &file);
        assert_eq!(p.code, 2, "{}: {}", file.display(), p.stderr);
        assert!(p.stderr.contains("binary"), "{}", p.stderr);
        assert!(!p.report_written, "nothing written for {}", file.display());
    }
}

#[test]
fn header_only_files_of_every_shape_plan_nothing_and_succeed() {
    let dir = TempDir::new().unwrap();
    let cases: [(&str, &[u8]); 5] = [
        ("bom-no-newline.csv", b"\xEF\xBB\xBFid;serialNumber"),
        ("crlf.csv", b"Device ID,Serial number\r\n\r\n"),
        ("empty-array.json", b"[]"),
        (
            "empty-devices.json",
            br#"{"action": "auto", "devices": []}"#,
        ),
        ("empty-value.json", br#"{"value": []}"#),
    ];
    for (name, bytes) in cases {
        let file = write(dir.path(), name, bytes);
        let p = plan(dir.path(), &file);
        assert_eq!(p.code, 0, "{name}: {}", p.stderr);
        assert!(
            p.report_written,
            "{name}: an empty report is still a report"
        );
        assert!(p.rows.is_empty(), "{name}");
        assert!(p.stderr.contains("0 rows"), "{name}: {}", p.stderr);
    }
}

#[test]
fn a_utf16_file_cut_at_an_odd_byte_keeps_its_rows_and_flags_the_cut() {
    let dir = TempDir::new().unwrap();
    let mut bytes = utf16le_with_bom("serialNumber,OS\r\nZ1,iPhone\r\nZ2,iPad\r\n");
    bytes.push(b'Z');
    assert_eq!(bytes.len() % 2, 1);
    let file = write(dir.path(), "cut.csv", &bytes);
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 1, "{}", p.stderr);
    assert_eq!(row_numbers(&p.rows), [2, 3, 4]);
    assert_eq!(p.rows[0]["serial_number"], "Z1");
    assert_eq!(p.rows[1]["serial_number"], "Z2");
    assert_eq!(count(&p.rows, "planned"), 2);
    assert_eq!(p.rows[2]["outcome"], "invalid");
    assert_eq!(p.rows[2]["reason"], "undecodable_characters");
}

#[test]
fn the_last_line_without_a_newline_is_read() {
    let dir = TempDir::new().unwrap();
    for eol in ["\n", "\r\n"] {
        let file = write(
            dir.path(),
            "noeol.csv",
            format!("serialNumber,OS{eol}Z1,iPhone{eol}Z2,iPad"),
        );
        let p = plan(dir.path(), &file);
        assert_eq!(p.code, 0, "{}", p.stderr);
        assert_eq!(row_numbers(&p.rows), [2, 3]);
        assert_eq!(p.rows[1]["serial_number"], "Z2");
        assert_eq!(p.rows[1]["platform"], "ios");
    }
    let jsonl = write(
        dir.path(),
        "noeol.jsonl",
        r#"{"serialNumber":"Z1"}
{"serialNumber":"Z2"}"#,
    );
    let p = plan(dir.path(), &jsonl);
    assert_eq!(row_numbers(&p.rows), [1, 2]);
}

/// Excel 2011 for Mac and older save "CSV (Macintosh)" with a lone CR ending each line:
/// read as lines, numbered as an editor numbers them.
#[test]
fn cr_only_line_endings_are_lines() {
    let dir = TempDir::new().unwrap();
    let file = write(
        dir.path(),
        "mac.csv",
        format!(
            "Device ID;Device name;OS\r{IOS_A};Kasse 1;iPhone\r\r{IOS_B};Kasse 2;iPad\r{IOS_A};Kasse 1;iPhone\r"
        ),
    );
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert!(p.stderr.contains("';'-separated"), "{}", p.stderr);
    assert_eq!(row_numbers(&p.rows), [2, 4, 5]);
    assert_eq!(p.rows[1]["device_name"], "Kasse 2");
    assert_eq!(p.rows[2]["outcome"], "duplicate");
    assert_eq!(
        p.rows[2]["detail"],
        "the same device as row 2, which is handled there"
    );
}

#[test]
fn a_json_array_of_a_hundred_thousand_devices_is_streamed_whole() {
    let dir = TempDir::new().unwrap();
    let mut json = String::from("[\n");
    for i in 0..100_000u32 {
        if i > 0 {
            json.push_str(",\n");
        }
        json.push_str(&format!(
            r#"{{"id":"{i:08x}-0000-4000-8000-{i:012x}","operatingSystem":"iOS","osVersion":"17.5"}}"#
        ));
    }
    json.push_str("\n]\n");
    let file = write(dir.path(), "many.json", json);
    let (code, rows) = plan_big(dir.path(), &file);
    assert_eq!(code, 0);
    assert_eq!(rows.len(), 100_000);
    assert!(rows.iter().all(|r| r[1] == "planned"));
    let numbers: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(numbers, (1..=100_000).collect::<Vec<_>>());
    assert_eq!(
        rows[99_999][3],
        format!("{0:08x}-0000-4000-8000-{0:012x}", 99_999)
    );
}

/// Regression: Windows PowerShell 5.1's `Out-File -Encoding UTF8` writes a BOM; a JSON
/// job file with one was read as one `unreadable_rest_of_file` row.
#[test]
fn json_files_with_a_utf8_bom_are_read() {
    let dir = TempDir::new().unwrap();
    let array = write(
        dir.path(),
        "bom.json",
        format!("\u{feff}[{{\"id\":\"{IOS_A}\",\"operatingSystem\":\"iOS\"}}]"),
    );
    let document = write(
        dir.path(),
        "bom-doc.json",
        format!(
            "\u{feff}{{\"action\":\"auto\",\"devices\":[{{\"id\":\"{IOS_B}\",\"operatingSystem\":\"iOS\"}}]}}"
        ),
    );
    for file in [array, document] {
        let p = plan(dir.path(), &file);
        assert_eq!(p.code, 0, "{}: {}", file.display(), p.stderr);
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.rows[0]["outcome"], "planned");
    }
}

#[test]
fn json_lines_with_cr_only_line_endings_are_lines() {
    let dir = TempDir::new().unwrap();
    let file = write(
        dir.path(),
        "mac.jsonl",
        format!(
            "{{\"id\":\"{IOS_A}\",\"operatingSystem\":\"iOS\"}}\r\r{{\"id\":\"{IOS_B}\",\"operatingSystem\":\"iOS\"}}\rnot json\r"
        ),
    );
    let p = plan(dir.path(), &file);
    assert_eq!(row_numbers(&p.rows), [1, 3, 4], "{}", p.stderr);
    assert_eq!(count(&p.rows, "planned"), 2);
    assert_eq!(p.rows[2]["reason"], "invalid_json");
}

/// serde_json's recursion limit (128) is what keeps a hostile file from overflowing
/// the stack: the nested element is reported, the process lives.
#[test]
fn deeply_nested_json_is_a_reported_row_not_a_stack_overflow() {
    let dir = TempDir::new().unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let array = write(
        dir.path(),
        "deep.json",
        format!(r#"[{{"serialNumber":"A"}},{deep},{{"serialNumber":"B"}}]"#),
    );
    let p = plan(dir.path(), &array);
    assert_eq!(p.code, 1, "{}", p.stderr);
    assert_eq!(row_numbers(&p.rows), [1, 2, 3]);
    assert_eq!(p.rows[1]["reason"], "invalid_json");
    assert_eq!(p.rows[2]["serial_number"], "B");
    let lines = write(
        dir.path(),
        "deep.jsonl",
        format!("{{\"serialNumber\":\"A\"}}\n{deep}\n{{\"serialNumber\":\"B\"}}\n"),
    );
    let p = plan(dir.path(), &lines);
    assert_eq!(row_numbers(&p.rows), [1, 2, 3], "{}", p.stderr);
    assert_eq!(p.rows[1]["reason"], "invalid_json");
    assert_eq!(p.rows[2]["serial_number"], "B");
}

/// A hundred iOS devices by serial number, one per line after the header
/// `Serial number,Device name,OS`: device `i` is on line `i + 2`.
fn hundred_devices(eol: &str) -> Vec<String> {
    let mut lines = vec!["Serial number,Device name,OS".to_string()];
    lines.extend((0..100).map(|i| format!("SN{i:03},Kasse {i},iOS")));
    lines.iter().map(|l| format!("{l}{eol}")).collect()
}

/// Checks the 100-row contract: 100 report rows, every row number once, exactly one
/// invalid row, on `line`, with `reason`; returns that row's detail.
fn one_invalid_row_of_a_hundred(p: &Planned, line: u64, reason: &str) -> String {
    assert_eq!(p.rows.len(), 100, "{}", p.stderr);
    let invalid: Vec<&Row> = p
        .rows
        .iter()
        .filter(|r| r["outcome"] == "invalid")
        .collect();
    assert_eq!(invalid.len(), 1, "{:?}", invalid);
    assert_eq!(invalid[0]["row"], line.to_string());
    assert_eq!(invalid[0]["reason"], reason);
    let mut numbers = row_numbers(&p.rows);
    numbers.dedup();
    assert_eq!(numbers.len(), 100, "row numbers are unique");
    invalid[0]["detail"].clone()
}

/// Regression: one field that opened a quote and never closed it took the rest of the
/// file with it (100 rows in, 2 out, "control characters").
#[test]
fn an_unclosed_quote_does_not_swallow_the_rest_of_the_file() {
    let dir = TempDir::new().unwrap();
    for eol in ["\n", "\r\n", "\r"] {
        let mut lines = hundred_devices(eol);
        lines[40] = format!("SN039,\"Kasse 39,iOS{eol}");
        let file = write(dir.path(), "unclosed.csv", lines.concat());
        let p = plan(dir.path(), &file);
        assert_eq!(p.code, 1, "{}", p.stderr);
        let detail = one_invalid_row_of_a_hundred(&p, 41, "unclosed_quote");
        assert!(detail.contains("\"Device name\""), "{detail}");
        assert!(detail.contains("line 41"), "{detail}");
        assert_eq!(count(&p.rows, "planned"), 99, "{eol:?}");
        let next = p.rows.iter().find(|r| r["row"] == "42").expect("line 42");
        assert_eq!(next["serial_number"], "SN040");
    }
}

#[test]
fn a_quote_closed_many_lines_later_swallows_no_rows() {
    let dir = TempDir::new().unwrap();
    let mut lines = hundred_devices("\n");
    lines[10] = "SN009,\"Kasse 9,iOS\n".into();
    lines[60] = "SN059,Kasse 59\",iOS\n".into();
    let file = write(dir.path(), "late.csv", lines.concat());
    let p = plan(dir.path(), &file);
    let detail = one_invalid_row_of_a_hundred(&p, 11, "unclosed_quote");
    assert!(detail.contains("line 11"), "{detail}");
    let closing = p.rows.iter().find(|r| r["row"] == "61").expect("line 61");
    assert_eq!(closing["serial_number"], "SN059");
    assert_eq!(count(&p.rows, "planned"), 99);
}

#[test]
fn a_quote_never_closed_before_the_end_of_the_file_is_one_invalid_row() {
    let dir = TempDir::new().unwrap();
    let mut lines = hundred_devices("\r\n");
    lines[100] = "SN099,\"Kasse 99,iOS".into();
    let file = write(dir.path(), "eof.csv", lines.concat());
    let p = plan(dir.path(), &file);
    let detail = one_invalid_row_of_a_hundred(&p, 101, "unclosed_quote");
    assert!(detail.contains("end of the file"), "{detail}");
}

#[test]
fn a_multi_line_notes_field_is_still_one_row() {
    let dir = TempDir::new().unwrap();
    let mut csv = String::from("Serial number,Notes,OS\r\n");
    for i in 0..100 {
        if i == 50 {
            csv.push_str(
                "SN050,\"Screen cracked,\r\nsent to repair, 2 weeks\r\n\r\nback\",iOS\r\n",
            );
        } else {
            csv.push_str(&format!("SN{i:03},ok,iOS\r\n"));
        }
    }
    let file = write(dir.path(), "notes.csv", csv);
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(p.rows.len(), 100);
    assert_eq!(count(&p.rows, "planned"), 100);
    let numbers = row_numbers(&p.rows);
    assert_eq!(numbers[50], 52);
    assert_eq!(numbers[51], 56, "the row after the note starts on line 56");
    assert_eq!(p.rows[51]["serial_number"], "SN051");
}

/// `[ ... ]`, `{"value": [...]}` and `{"devices": [...]}` holding 100 devices, the one
/// at `broken` (0-based) replaced by `element`.
fn hundred_json_devices(broken: usize, element: &str) -> [String; 3] {
    let elements: Vec<String> = (0..100)
        .map(|i| {
            if i == broken {
                element.to_string()
            } else {
                format!(r#"{{"serialNumber":"SN{i:03}","operatingSystem":"iOS"}}"#)
            }
        })
        .collect();
    let array = format!("[\n{}\n]", elements.join(",\n"));
    [
        array.clone(),
        format!(r#"{{"value": {array}}}"#),
        format!(r#"{{"action": "auto", "devices": {array}}}"#),
    ]
}

/// Regression: one element deeper than serde_json's limit ended the array there.
#[test]
fn a_json_element_nested_deeper_than_128_is_one_invalid_row_and_reading_goes_on() {
    let dir = TempDir::new().unwrap();
    let deep = format!(
        r#"{{"serialNumber":"X","a":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    for (i, text) in hundred_json_devices(49, &deep).into_iter().enumerate() {
        let file = write(dir.path(), &format!("deep{i}.json"), text);
        let p = plan(dir.path(), &file);
        assert_eq!(p.code, 1, "{}", p.stderr);
        let detail = one_invalid_row_of_a_hundred(&p, 50, "invalid_json");
        assert!(detail.contains("recursion limit"), "{detail}");
        assert!(detail.contains("line 51"), "{detail}");
        assert_eq!(p.rows[99]["serial_number"], "SN099");
    }
}

#[test]
fn a_json_number_serde_rejects_is_one_invalid_row() {
    let dir = TempDir::new().unwrap();
    let huge = r#"{"serialNumber":"X","imei":1e999999}"#;
    for (i, text) in hundred_json_devices(29, huge).into_iter().enumerate() {
        let file = write(dir.path(), &format!("number{i}.json"), text);
        let p = plan(dir.path(), &file);
        let detail = one_invalid_row_of_a_hundred(&p, 30, "invalid_json");
        assert!(detail.contains("number out of range"), "{detail}");
    }
}

#[test]
fn a_syntax_error_inside_one_json_element_is_one_invalid_row() {
    let dir = TempDir::new().unwrap();
    let broken = r#"{"serialNumber": "X" "operatingSystem": "iOS"}"#;
    for (i, text) in hundred_json_devices(0, broken).into_iter().enumerate() {
        let file = write(dir.path(), &format!("syntax{i}.json"), text);
        let p = plan(dir.path(), &file);
        let detail = one_invalid_row_of_a_hundred(&p, 1, "invalid_json");
        assert!(detail.contains("expected `,` or `}`"), "{detail}");
    }
}

/// Regression: a second `devices` array, or `devices` beside `value`, was ignored.
#[test]
fn a_second_devices_array_is_read_too() {
    let dir = TempDir::new().unwrap();
    let device = |s: &str| format!(r#"{{"serialNumber":"{s}","operatingSystem":"iOS"}}"#);
    let cases = [
        format!(
            r#"{{"devices": [{}, {}], "action": "auto", "devices": [{}]}}"#,
            device("A"),
            device("B"),
            device("C")
        ),
        format!(
            r#"{{"value": [{}, {}], "devices": [{}]}}"#,
            device("A"),
            device("B"),
            device("C")
        ),
    ];
    for (i, text) in cases.into_iter().enumerate() {
        let file = write(dir.path(), &format!("two{i}.json"), text);
        let p = plan(dir.path(), &file);
        assert_eq!(p.code, 0, "{}", p.stderr);
        assert_eq!(row_numbers(&p.rows), [1, 2, 3]);
        let serials: Vec<&str> = p.rows.iter().map(|r| r["serial_number"].as_str()).collect();
        assert_eq!(serials, ["A", "B", "C"]);
    }
}

// Issue 12: files administrators hold.

const TYPE_LINE: &str = "#TYPE Microsoft.Graph.PowerShell.Models.MicrosoftGraphManagedDevice";

/// Regression: Windows PowerShell 5.1's `Export-Csv` without `-NoTypeInformation` was
/// refused ("names no column this tool knows") for its `#TYPE` line.
#[test]
fn a_powershell_export_with_its_type_line_plans_every_row_under_its_excel_row_number() {
    let dir = TempDir::new().unwrap();
    let text = format!(
        "{TYPE_LINE}\r\n\"Id\",\"DeviceName\",\"ManagedDeviceName\",\"OperatingSystem\",\"OSVersion\",\
         \"SerialNumber\",\"ManagementAgent\",\"ManagedDeviceOwnerType\",\"DeviceEnrollmentType\"\r\n\
         \"{IOS_A}\",\"Kiosk\",\"ana_iPhone_1/2/2024\",\"iOS\",\"17.4\",\"F2LXK1ABCDEF\",\"mdm\",\"company\",\"appleBulkWithUser\"\r\n\
         \"{IOS_B}\",\"Desk\",\"bo_iPhone_1/2/2024\",\"iOS\",\"17.4\",\"F2LXK1ABCDEG\",\"mdm\",\"company\",\"appleBulkWithUser\"\r\n"
    );
    for (name, bytes) in [
        ("ps51.csv", text.clone().into_bytes()),
        (
            "ps51-bom.csv",
            [&b"\xEF\xBB\xBF"[..], text.as_bytes()].concat(),
        ),
        ("ps51-unicode.csv", utf16le_with_bom(&text)),
    ] {
        let file = write(dir.path(), name, bytes);
        let p = plan(dir.path(), &file);
        assert_eq!(p.code, 0, "{name}: {}", p.stderr);
        assert_eq!(row_numbers(&p.rows), [3, 4], "{name}");
        assert_eq!(count(&p.rows, "planned"), 2, "{name}");
        assert_eq!(p.rows[0]["device_name"], "Kiosk", "{name}");
        assert_eq!(p.rows[1]["serial_number"], "F2LXK1ABCDEG", "{name}");
    }
}

#[test]
fn a_headerless_list_of_serial_numbers_is_planned_from_row_1_with_a_warning() {
    let dir = TempDir::new().unwrap();
    let file = write(
        dir.path(),
        "serials.txt",
        "F2LXK1ABCDEF\r\nR58M12ABCDE\r\n\r\nPF-3XYZ12\r\nf2lxk1abcdef\r\n",
    );
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(row_numbers(&p.rows), [1, 2, 4, 5]);
    assert_eq!(p.rows[0]["serial_number"], "F2LXK1ABCDEF");
    assert_eq!(count(&p.rows, "planned"), 3);
    assert_eq!(count(&p.rows, "duplicate"), 1);
    assert!(p.stderr.contains("serials.txt"), "{}", p.stderr);
    assert!(p.stderr.contains("\"serialNumber\" column"), "{}", p.stderr);
}

#[test]
fn a_headerless_list_of_guids_is_read_as_intune_ids_with_a_warning() {
    let dir = TempDir::new().unwrap();
    let file = write(dir.path(), "ids.csv", format!("{IOS_A}\n{IOS_B}\n"));
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(row_numbers(&p.rows), [1, 2]);
    let ids: Vec<&str> = p.rows.iter().map(|r| r["device_id"].as_str()).collect();
    assert_eq!(ids, [IOS_A, IOS_B]);
    assert!(p.stderr.contains("ids.csv"), "{}", p.stderr);
    assert!(p.stderr.contains("\"id\" column"), "{}", p.stderr);
}

#[test]
fn a_one_column_file_that_is_no_list_is_refused_naming_the_header_line_to_add() {
    let dir = TempDir::new().unwrap();
    let file = write(dir.path(), "names.csv", "Kiosk 1\nFront desk\n");
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 2, "{}", p.stderr);
    assert!(!p.report_written);
    assert!(p.stderr.contains("names.csv"), "{}", p.stderr);
    assert!(
        p.stderr
            .contains("add a first line \"serialNumber\" (or id, imei, deviceName)"),
        "{}",
        p.stderr
    );
}

/// Regression: Excel shows a 15-digit IMEI in a General cell as `3,57123E+14` and saves
/// it so; the row was sent to a lookup that could never match.
#[test]
fn imeis_and_serial_numbers_in_scientific_notation_are_invalid_naming_the_column_and_the_fix() {
    let dir = TempDir::new().unwrap();
    let file = write(
        dir.path(),
        "excel.csv",
        "IMEI;Serial number;OS\r\n3,57123E+14;;iPhone\r\n;1.2E+15;iPhone\r\n357123456789012;;iPhone\r\n;12E4567;iPhone\r\n",
    );
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 1, "{}", p.stderr);
    assert_eq!(row_numbers(&p.rows), [2, 3, 4, 5]);
    for (row, column) in [(0, "'IMEI'"), (1, "'Serial number'")] {
        let r = &p.rows[row];
        assert_eq!(r["outcome"], "invalid");
        assert_eq!(r["reason"], "scientific_notation");
        assert!(r["detail"].contains(column), "{}", r["detail"]);
        assert!(
            r["detail"]
                .contains("format the column as Text in Excel before saving, or export again"),
            "{}",
            r["detail"]
        );
    }
    assert_ne!(p.rows[2]["reason"], "scientific_notation");
    assert_ne!(
        p.rows[3]["reason"], "scientific_notation",
        "12E4567 is a serial number"
    );
}

#[test]
fn a_graph_page_with_a_next_link_is_planned_and_warns_it_is_one_page() {
    let dir = TempDir::new().unwrap();
    let file = write(
        dir.path(),
        "page1.json",
        format!(
            r#"{{"@odata.context":"https://graph.microsoft.com/beta/$metadata#deviceManagement/managedDevices",
"value":[{{"id":"{IOS_A}","operatingSystem":"iOS","osVersion":"17.4"}},{{"id":"{IOS_B}","operatingSystem":"iOS","osVersion":"17.4"}}],
"@odata.nextLink":"https://graph.microsoft.com/beta/deviceManagement/managedDevices?$skiptoken=abc"}}"#
        ),
    );
    let p = plan(dir.path(), &file);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(row_numbers(&p.rows), [1, 2]);
    assert_eq!(count(&p.rows, "planned"), 2);
    assert!(p.stderr.contains("page1.json"), "{}", p.stderr);
    assert!(p.stderr.contains("one page"), "{}", p.stderr);
    assert!(
        p.stderr
            .contains("Get-MgDeviceManagementManagedDevice -All"),
        "{}",
        p.stderr
    );
}
