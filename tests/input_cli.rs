//! Issue 12, the input half: workbooks, ZIP downloads and legacy code pages, as
//! administrators hold them. Every fixture is written by the test (rust_xlsxwriter,
//! the zip crate's writer, encoding_rs and oem_cp encoders), none is checked in.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::{Row, intune_reset, read_report, write};
use rust_xlsxwriter::Workbook;
use tempfile::TempDir;

const IOS_A: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const IOS_B: &str = "11111111-2222-3333-4444-555555555555";
const ANDROID: &str = "22222222-3333-4444-5555-666666666666";

struct Plan {
    code: i32,
    rows: Vec<Row>,
    stderr: String,
}

fn plan(dir: &Path, files: &[&Path], extra: &[&str]) -> Plan {
    let report = dir.join("report.csv");
    let _ = std::fs::remove_file(&report);
    let out = intune_reset()
        .arg("plan")
        .args(files)
        .arg("--report")
        .arg(&report)
        .args(extra)
        .output()
        .unwrap();
    Plan {
        code: out.status.code().unwrap_or(-1),
        rows: if report.exists() {
            read_report(&report)
        } else {
            vec![]
        },
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An admin-center style workbook: a title and a blank row above the header, numbers
/// typed as numbers (an OS version, an IMEI), a blank row inside the table, and a
/// second sheet.
fn devices_workbook(path: &Path) {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Devices").unwrap();
    sheet
        .write(0, 0, "Intune devices, exported 2026-11-30")
        .unwrap();
    let header = ["Device ID", "Device name", "OS", "OS version", "IMEI"];
    for (c, h) in header.iter().enumerate() {
        sheet.write(2, c as u16, *h).unwrap();
    }
    sheet.write(3, 0, IOS_A).unwrap();
    sheet.write(3, 1, "Kasse 1").unwrap();
    sheet.write(3, 2, "iOS").unwrap();
    sheet.write(3, 3, 17.5).unwrap();
    sheet.write(3, 4, 357123456789012.0).unwrap();
    // Row 5 is blank.
    sheet.write(5, 0, ANDROID).unwrap();
    sheet.write(5, 1, "Lager").unwrap();
    sheet.write(5, 2, "Android").unwrap();
    sheet.write(5, 3, 6).unwrap();
    sheet.write(6, 0, "n/a").unwrap();
    sheet.write(6, 1, "Spare").unwrap();
    let other = book.add_worksheet();
    other.set_name("Kiosks").unwrap();
    other.write(0, 0, "serialNumber").unwrap();
    other.write(0, 1, "operatingSystem").unwrap();
    other.write(1, 0, "F2LXK1ABCDEF").unwrap();
    other.write(1, 1, "iOS").unwrap();
    book.save(path).unwrap();
}

fn by(rows: &[Row], field: &str) -> Vec<String> {
    rows.iter().map(|r| r[field].clone()).collect()
}

#[test]
fn an_xlsx_export_is_read_from_its_header_row_with_excel_row_numbers_and_values() {
    let dir = TempDir::new().unwrap();
    let book = dir.path().join("devices.xlsx");
    devices_workbook(&book);
    let p = plan(dir.path(), &[&book], &[]);
    assert_eq!(
        p.code, 1,
        "the row with a malformed id is invalid\n{}",
        p.stderr
    );
    assert_eq!(by(&p.rows, "row"), ["4", "6", "7"], "Excel's row numbers");
    assert_eq!(p.rows[0]["device_id"], IOS_A);
    assert_eq!(p.rows[0]["os_version"], "17.5", "a version stays 17.5");
    assert_eq!(p.rows[0]["outcome"], "planned");
    assert_eq!(p.rows[1]["os_version"], "6", "a whole number is digits");
    assert_eq!(p.rows[1]["platform"], "android_device_admin");
    assert_eq!(p.rows[2]["outcome"], "invalid");
    assert!(
        p.stderr
            .contains("Excel workbook (.xlsx), sheet 'Devices', Unicode"),
        "{}",
        p.stderr
    );
}

/// A workbook piped in (`plan /dev/stdin < devices.xlsx`, `plan <(curl ...)`) is read
/// as the workbook it is, not refused as binary text.
#[cfg(unix)]
#[test]
fn a_workbook_piped_in_is_read_as_a_workbook() {
    let dir = TempDir::new().unwrap();
    let book = dir.path().join("devices.xlsx");
    devices_workbook(&book);
    let report = dir.path().join("piped.csv");
    let out = crate::common::plan_piped(&std::fs::read(&book).unwrap(), &[], &report);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Excel workbook (.xlsx), sheet 'Devices', Unicode"),
        "{stderr}"
    );
    let rows = read_report(&report);
    assert_eq!(
        by(&rows, "row"),
        ["4", "6", "7"],
        "the same rows as from the file"
    );
}

#[test]
fn an_imei_typed_as_a_number_is_all_its_digits() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("imeis.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write(0, 0, "IMEI").unwrap();
    sheet.write(0, 1, "operatingSystem").unwrap();
    sheet.write(1, 0, 357123456789012.0).unwrap();
    sheet.write(1, 1, "iOS").unwrap();
    sheet.write(2, 0, 1.2e15).unwrap();
    sheet.write(2, 1, "iOS").unwrap();
    book.save(&path).unwrap();
    let p = plan(dir.path(), &[&path], &[]);
    assert_eq!(p.rows.len(), 2, "{}", p.stderr);
    for row in &p.rows {
        assert_eq!(row["reason"], "lookup_required", "{row:?}");
        assert!(!row["detail"].contains("E+"), "{}", row["detail"]);
    }
    assert!(p.rows[0]["detail"].contains("'357123456789012'"));
    assert!(p.rows[1]["detail"].contains("'1200000000000000'"));
}

#[test]
fn sheet_picks_the_worksheet_and_a_missing_one_lists_the_sheets() {
    let dir = TempDir::new().unwrap();
    let book = dir.path().join("devices.xlsx");
    devices_workbook(&book);
    let p = plan(dir.path(), &[&book], &["--sheet", "kiosks"]);
    assert_eq!(
        by(&p.rows, "serial_number"),
        ["F2LXK1ABCDEF"],
        "{}",
        p.stderr
    );
    assert_eq!(p.rows[0]["row"], "2");
    let missing = plan(dir.path(), &[&book], &["--sheet", "Laptops"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains(&book.display().to_string())
            && missing.stderr.contains(
                "it has no sheet named 'Laptops' (--sheet); its sheets are 'Devices', 'Kiosks'"
            ),
        "{}",
        missing.stderr
    );
    assert!(missing.rows.is_empty());
}

#[test]
fn a_sheet_that_names_no_column_is_refused_naming_file_and_sheet() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("budget.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write(0, 0, "Manufacturer").unwrap();
    sheet.write(0, 1, "Model").unwrap();
    sheet.write(1, 0, "Apple").unwrap();
    book.save(&path).unwrap();
    let p = plan(dir.path(), &[&path], &[]);
    assert_eq!(p.code, 2);
    assert!(
        p.stderr.contains("budget.xlsx")
            && p.stderr
                .contains("in sheet 'Sheet1', no row (Manufacturer, Model)"),
        "{}",
        p.stderr
    );
}

fn zip_of(path: &Path, members: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn csv_job() -> Vec<u8> {
    format!("id,operatingSystem,osVersion\n{IOS_A},iOS,17.5\n{IOS_B},iOS,16.1\n").into_bytes()
}

#[test]
fn a_zip_holding_one_csv_is_read_in_place_under_its_own_name() {
    let dir = TempDir::new().unwrap();
    let zip = dir.path().join("DevicesExport.zip");
    zip_of(&zip, &[("DevicesWithInventory_2026.csv", csv_job())]);
    let p = plan(dir.path(), &[&zip], &[]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(by(&p.rows, "row"), ["2", "3"]);
    assert!(
        p.rows
            .iter()
            .all(|r| r["source"] == zip.display().to_string())
    );
}

#[test]
fn a_zip_of_several_files_is_one_job_file_each_named_zip_bang_member() {
    let dir = TempDir::new().unwrap();
    let book = dir.path().join("b.xlsx");
    devices_workbook(&book);
    let zip = dir.path().join("jobs.zip");
    zip_of(
        &zip,
        &[
            ("a.csv", csv_job()),
            ("__MACOSX/._a.csv", b"\0\x05\x16\x07".to_vec()),
            ("readme.pdf", b"%PDF".to_vec()),
            ("more/b.xlsx", std::fs::read(&book).unwrap()),
        ],
    );
    let p = plan(dir.path(), &[&zip], &[]);
    let z = zip.display().to_string();
    let sources: Vec<String> = by(&p.rows, "source");
    assert_eq!(
        sources,
        [
            format!("{z}!a.csv"),
            format!("{z}!a.csv"),
            format!("{z}!more/b.xlsx"),
            format!("{z}!more/b.xlsx"),
            format!("{z}!more/b.xlsx"),
        ],
        "{}",
        p.stderr
    );
    // The workbook's first row is the same device as the CSV's: a duplicate across files.
    assert_eq!(p.rows[2]["outcome"], "duplicate");
    assert!(p.rows[2]["detail"].contains(&format!("row 2 of {z}!a.csv")));
    let empty = dir.path().join("empty.zip");
    zip_of(&empty, &[("readme.pdf", b"%PDF".to_vec())]);
    let refused = plan(dir.path(), &[&empty], &[]);
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stderr
            .contains("a ZIP archive holding no CSV, JSON or workbook file (it holds readme.pdf)"),
        "{}",
        refused.stderr
    );
}

/// "CSV (MS-DOS)": semicolons and OEM 850 bytes, as a German Excel saves it.
fn ms_dos_csv() -> Vec<u8> {
    let text = format!(
        "Device ID;Device name;OS\r\n{IOS_A};Jürgen Müllers iPad;iOS\r\n{IOS_B};Françoise Bérénice;iOS\r\n\
         ;Søren Ærø Kiosk;iOS\r\n"
    );
    oem_cp::encode_string_checked(&text, &oem_cp::code_table::ENCODING_TABLE_CP850).unwrap()
}

#[test]
fn a_csv_ms_dos_file_decodes_its_names_and_says_which_encoding_was_assumed() {
    let dir = TempDir::new().unwrap();
    let file = write(dir.path(), "dos.csv", ms_dos_csv());
    let p = plan(dir.path(), &[&file], &[]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(
        by(&p.rows, "device_name"),
        [
            "Jürgen Müllers iPad",
            "Françoise Bérénice",
            "Søren Ærø Kiosk"
        ]
    );
    assert!(p.rows.iter().all(|r| r["outcome"] == "planned"));
    assert!(
        p.stderr
            .contains("dos.csv: the file is not UTF-8; it is read as OEM 850")
            && p.stderr.contains("CSV UTF-8"),
        "{}",
        p.stderr
    );
}

#[test]
fn a_row_with_a_valid_id_is_planned_even_when_its_name_is_read_in_the_wrong_code_page() {
    let dir = TempDir::new().unwrap();
    let file = write(dir.path(), "dos.csv", ms_dos_csv());
    // Windows-1252 reads OEM 850's `ü` (0x81) as a C1 control character.
    let p = plan(dir.path(), &[&file], &["--encoding", "windows-1252"]);
    assert_eq!(p.rows[0]["outcome"], "planned", "{}", p.rows[0]["detail"]);
    assert_eq!(p.rows[0]["device_name"], "J\u{81}rgen M\u{81}llers iPad");
    assert!(
        p.stderr
            .contains("Windows-1252 (Western Europe) (as --encoding said)"),
        "{}",
        p.stderr
    );
}

#[test]
fn encoding_overrides_detection_and_an_unknown_name_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let text = "deviceName,serialNumber,operatingSystem\r\nИван,F2L1,iOS\r\n";
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(text);
    let file = write(dir.path(), "cyr.csv", &bytes);
    let p = plan(dir.path(), &[&file], &["--encoding", "cp1251"]);
    assert_eq!(p.rows[0]["device_name"], "Иван", "{}", p.stderr);
    let bad = plan(dir.path(), &[&file], &["--encoding", "klingon"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("'klingon' is not an encoding this tool knows"),
        "{}",
        bad.stderr
    );
}

#[test]
fn legacy_code_pages_of_each_locale_are_detected() {
    let dir = TempDir::new().unwrap();
    let cases: [(&str, &'static encoding_rs::Encoding, &[&str]); 4] = [
        (
            "pl.csv",
            encoding_rs::WINDOWS_1250,
            &["Łukasz Wróbel", "Zbigniew Żółć", "Jiří Dvořák"],
        ),
        (
            "ru.csv",
            encoding_rs::WINDOWS_1251,
            &["Иван Петров", "Ольга Смирнова", "Дмитрий Кузнецов"],
        ),
        (
            "cn.csv",
            encoding_rs::GBK,
            &["王伟的手机", "李娜 财务部", "张敏 刘洋"],
        ),
        (
            "jp.csv",
            encoding_rs::SHIFT_JIS,
            &["佐藤 太郎", "鈴木 花子", "高橋 さくら"],
        ),
    ];
    for (name, encoding, names) in cases {
        let mut text = String::from("deviceName;serialNumber;operatingSystem\r\n");
        for (i, n) in names.iter().enumerate() {
            text.push_str(&format!("{n};F2L{i};iOS\r\n"));
        }
        let (bytes, _, errors) = encoding.encode(&text);
        assert!(!errors);
        let file = write(dir.path(), name, &bytes);
        let p = plan(dir.path(), &[&file], &[]);
        assert_eq!(by(&p.rows, "device_name"), names, "{name}: {}", p.stderr);
        assert!(p.stderr.contains("is not UTF-8"), "{name}: {}", p.stderr);
    }
}

#[test]
fn a_run_reads_workbooks_and_zips_through_its_private_copy() {
    let dir = TempDir::new().unwrap();
    let book = dir.path().join("devices.xlsx");
    devices_workbook(&book);
    let zip = dir.path().join("jobs.zip");
    zip_of(
        &zip,
        &[
            (
                "x.csv",
                b"serialNumber,operatingSystem\nF2LXK9ZZZZZZ,iOS\n".to_vec(),
            ),
            (
                "y.csv",
                format!("id,operatingSystem\n{IOS_B},iOS\n").into_bytes(),
            ),
        ],
    );
    let report = dir.path().join("run.csv");
    let out = intune_reset()
        .args([
            "run",
            "--simulate",
            "--yes",
            "--action",
            "auto",
            "--sheet",
            "Devices",
        ])
        .arg(&book)
        .arg(&zip)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rows = read_report(&report);
    let sources: std::collections::BTreeSet<String> = by(&rows, "source").into_iter().collect();
    let z = zip.display().to_string();
    let want: std::collections::BTreeSet<String> = [
        book.display().to_string(),
        format!("{z}!x.csv"),
        format!("{z}!y.csv"),
    ]
    .into();
    assert_eq!(sources, want, "{stderr}");
    assert_eq!(rows.len(), 5, "{stderr}");
    let ios = rows.iter().find(|r| r["device_id"] == IOS_A).unwrap();
    assert_eq!(ios["outcome"], "succeeded", "{stderr}");
    assert_eq!(ios["row"], "4");
    assert!(
        !stderr.contains("intune-reset-job-"),
        "no temp path leaks: {stderr}"
    );
    assert_eq!(
        stderr.matches("the header is row 3").count(),
        1,
        "the job is read three times, the notice is said once: {stderr}"
    );
}

/// The workbook formats calamine reads, by their bytes (xlsm is an xlsx with macros).
#[test]
fn a_workbook_renamed_to_csv_is_still_read_as_a_workbook() {
    let dir = TempDir::new().unwrap();
    let book = dir.path().join("devices.xlsx");
    devices_workbook(&book);
    let renamed: PathBuf = dir.path().join("devices.csv");
    std::fs::copy(&book, &renamed).unwrap();
    let p = plan(dir.path(), &[&renamed], &[]);
    assert_eq!(p.rows.len(), 3, "{}", p.stderr);
}

/// The smallest OpenDocument spreadsheet LibreOffice reads: `mimetype` first, then
/// `content.xml` with one table.
fn ods_of(path: &Path, rows: &[&[&str]]) {
    let mut table = String::new();
    for row in rows {
        table.push_str("<table:table-row>");
        for cell in *row {
            if let Ok(n) = cell.parse::<f64>() {
                table.push_str(&format!(
                    "<table:table-cell office:value-type=\"float\" office:value=\"{n}\"><text:p>{cell}</text:p></table:table-cell>"
                ));
            } else {
                table.push_str(&format!(
                    "<table:table-cell office:value-type=\"string\"><text:p>{cell}</text:p></table:table-cell>"
                ));
            }
        }
        table.push_str("</table:table-row>");
    }
    let content = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
         xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
         xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\">\
         <office:body><office:spreadsheet><table:table table:name=\"Geräte\">{table}</table:table>\
         </office:spreadsheet></office:body></office:document-content>"
    );
    let manifest = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"1.2\">\
        <manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/>\
        <manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/>\
        </manifest:manifest>";
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("mimetype", stored).unwrap();
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    zip.start_file("META-INF/manifest.xml", stored).unwrap();
    zip.write_all(manifest.as_bytes()).unwrap();
    zip.start_file("content.xml", stored).unwrap();
    zip.write_all(content.as_bytes()).unwrap();
    zip.finish().unwrap();
}

#[test]
fn an_ods_spreadsheet_is_read_like_a_workbook() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("geraete.ods");
    ods_of(
        &path,
        &[
            &["Geräteliste"],
            &["id", "operatingSystem", "osVersion"],
            &[IOS_A, "iOS", "17.5"],
        ],
    );
    let p = plan(dir.path(), &[&path], &[]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(by(&p.rows, "row"), ["3"]);
    assert_eq!(p.rows[0]["os_version"], "17.5");
    assert!(
        p.stderr
            .contains("OpenDocument spreadsheet (.ods), sheet 'Geräte'"),
        "{}",
        p.stderr
    );
}

#[test]
fn a_one_column_sheet_of_serial_numbers_without_a_header_is_read_from_row_1() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("serials.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (r, serial) in ["F2LXK1ABCDEF", "R58M12ABCDE", "PF-3XYZ12"]
        .iter()
        .enumerate()
    {
        sheet.write(r as u32, 0, *serial).unwrap();
    }
    book.save(&path).unwrap();
    let p = plan(dir.path(), &[&path], &[]);
    assert_eq!(by(&p.rows, "row"), ["1", "2", "3"], "{}", p.stderr);
    assert_eq!(p.rows[2]["serial_number"], "PF-3XYZ12");
    assert!(
        p.stderr.contains("no header row") && p.stderr.contains("add a first row \"serialNumber\""),
        "{}",
        p.stderr
    );
}

#[test]
fn a_stray_windows_1252_byte_past_the_sniffed_head_is_read_as_such_with_a_warning() {
    let dir = TempDir::new().unwrap();
    let mut bytes = b"serialNumber,deviceName,operatingSystem\n".to_vec();
    let mut n = 0;
    while bytes.len() < 70 * 1024 {
        bytes.extend_from_slice(format!("SN{n:08},Kiosk {n},iOS\n").as_bytes());
        n += 1;
    }
    bytes.extend_from_slice(b"SNLAST,Jos\xe9,iOS\n");
    let file = write(dir.path(), "long.csv", &bytes);
    let p = plan(dir.path(), &[&file], &[]);
    let last = p.rows.last().unwrap();
    assert_eq!(last["device_name"], "José");
    assert!(
        p.stderr.contains(&format!(
            "long.csv: the file starts as UTF-8, but row {} (and maybe others) holds bytes that are not",
            n + 2
        )),
        "{}",
        p.stderr
    );
}

#[test]
fn a_byte_order_mark_wins_over_encoding_with_a_word() {
    let dir = TempDir::new().unwrap();
    let file = write(
        dir.path(),
        "bom.csv",
        "\u{feff}deviceName,serialNumber,operatingSystem\r\nJosé,F2L1,iOS\r\n",
    );
    let p = plan(dir.path(), &[&file], &["--encoding", "850"]);
    assert_eq!(p.rows[0]["device_name"], "José", "{}", p.stderr);
    assert!(
        p.stderr.contains(
            "starts with a UTF-8 byte-order mark, so it is read as UTF-8, not as --encoding OEM 850"
        ),
        "{}",
        p.stderr
    );
}
