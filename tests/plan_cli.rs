//! `intune-reset plan` on real files, as an administrator runs it.

use crate::common::{
    Row, count, intune_reset, read_report, utf16be_with_bom, utf16le_with_bom, write,
};
use predicates::prelude::*;
use tempfile::TempDir;

const IOS_A: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const IOS_B: &str = "11111111-2222-3333-4444-555555555555";

/// Runs `plan` on `files` with a report in a fresh directory; returns the exit code,
/// the report rows and stderr.
fn plan(files: &[&str], extra: &[&str]) -> (i32, Vec<Row>, String, TempDir) {
    let dir = TempDir::new().unwrap();
    let report = dir.path().join("report.csv");
    let out = intune_reset()
        .arg("plan")
        .args(files)
        .arg("--report")
        .arg(&report)
        .args(extra)
        .output()
        .unwrap();
    let rows = if report.exists() {
        read_report(&report)
    } else {
        vec![]
    };
    (
        out.status.code().unwrap_or(-1),
        rows,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    )
}

fn rows_of(rows: &[Row], field: &str) -> Vec<String> {
    rows.iter().map(|r| r[field].clone()).collect()
}

#[test]
fn admin_center_export_every_row_once_with_its_outcome() {
    let (code, rows, stderr, _d) = plan(&["samples/admin-center-export.csv"], &[]);
    assert_eq!(code, 1, "an invalid row makes the exit code 1\n{stderr}");
    assert_eq!(rows.len(), 17);
    let numbers: Vec<u64> = rows.iter().map(|r| r["row"].parse().unwrap()).collect();
    assert_eq!(
        numbers,
        (2..=18).collect::<Vec<_>>(),
        "Excel row numbers, header is row 1"
    );
    assert_eq!(count(&rows, "planned"), 9);
    assert_eq!(count(&rows, "ineligible"), 6);
    assert_eq!(count(&rows, "duplicate"), 1);
    assert_eq!(count(&rows, "invalid"), 1);
    let by_row = |n: &str| rows.iter().find(|r| r["row"] == n).unwrap().clone();
    assert_eq!(
        by_row("16")["detail"],
        "the same device as row 2, which is handled there"
    );
    assert!(by_row("17")["detail"].contains("column 'Device ID'"));
    assert_eq!(by_row("4")["reason"], "apple_user_enrollment");
    assert_eq!(by_row("15")["reason"], "not_mdm_managed");
    assert_eq!(by_row("14")["action"], "reset-pin");
    // 'seven' is no version the rules read: Graph's own facts judge the device.
    assert_eq!(by_row("18")["reason"], "lookup_required");
    assert!(
        by_row("18")["detail"]
            .starts_with("column 'OS version': 'seven' is not a version number: ")
    );
    assert!(stderr.contains("planned"), "{stderr}");
}

#[test]
fn utf16_semicolon_excel_file_with_comma_versions() {
    let (code, rows, stderr, _d) = plan(&["samples/excel-unicode-semicolon.csv"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rows.len(), 9);
    assert!(stderr.contains("';'-separated, UTF-16 LE"), "{stderr}");
    // "6,0" is Android 6.0: device admin eligible; "7,0" device admin is not.
    assert_eq!(rows[0]["os_version"], "6,0");
    assert_eq!(rows[0]["outcome"], "planned");
    assert_eq!(rows[2]["reason"], "android_device_admin_7_or_later");
    assert_eq!(
        rows[3]["outcome"], "planned",
        "work profile 7,0 is eligible"
    );
    assert_eq!(rows[4]["reason"], "android_work_profile_before_7");
    // A quoted field holding the delimiter, and umlauts through UTF-16.
    assert_eq!(rows[6]["device_name"], "Kasse Filiale; Köln");
    assert!(rows[2]["device_name"].starts_with("Außendienst"));
}

#[test]
fn graph_list_response_with_beta_fields() {
    let (code, rows, _, _d) = plan(&["samples/graph-export.json"], &[]);
    assert_eq!(code, 0);
    assert_eq!(rows.len(), 13);
    let platforms = rows_of(&rows, "platform");
    for p in [
        "android_aosp",
        "android_dedicated",
        "android_fully_managed",
        "windows_mobile",
    ] {
        assert!(platforms.contains(&p.to_string()), "{p} in {platforms:?}");
    }
    let numbers = rows_of(&rows, "row");
    assert_eq!(numbers, (1..=13).map(|n| n.to_string()).collect::<Vec<_>>());
}

#[test]
fn entra_download_sample_leaves_the_rows_it_cannot_tell_apart_to_the_tenant() {
    let (code, rows, stderr, _d) = plan(&["samples/entra-devices.csv"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rows.len(), 7);
    let by_name = |name: &str| rows.iter().find(|r| r["device_name"] == name).unwrap();
    // A Lumia and a Windows 10 1703 desktop look alike there; so do Android flavours.
    for name in ["Lumia-Greta", "PC-LAGER-03", "Nora-Pixel"] {
        let r = by_name(name);
        assert_eq!(
            (
                r["outcome"].as_str(),
                r["reason"].as_str(),
                r["platform"].as_str()
            ),
            ("planned", "lookup_required", ""),
            "{r:?}"
        );
    }
    // Builds after Windows 10 Mobile's last are desktops by the file alone.
    for name in ["DESKTOP-Jonas", "LT-Ana-01", "SRV-PRINT-01"] {
        assert_eq!(by_name(name)["reason"], "windows_not_supported", "{name}");
    }
    assert!(
        rows.iter().all(|r| r["device_id"].is_empty()),
        "no Entra id is taken for an Intune id: {rows:?}"
    );
}

#[test]
fn migration_list_by_serial_number_needs_lookups_and_dedupes_case_insensitively() {
    let (code, rows, _, _d) = plan(&["samples/migration-serials.csv"], &[]);
    assert_eq!(code, 0);
    assert_eq!(rows.len(), 13);
    assert_eq!(count(&rows, "planned"), 12);
    assert!(
        rows.iter()
            .filter(|r| r["outcome"] == "planned")
            .all(|r| r["reason"] == "lookup_required")
    );
    assert_eq!(count(&rows, "duplicate"), 1);
    let (code, rows, _, _d) = plan(&["samples/migration-serials.csv"], &["--lookup", "never"]);
    assert_eq!(
        code, 1,
        "rows that cannot be acted on without a lookup are invalid"
    );
    assert_eq!(count(&rows, "invalid"), 13);
    assert!(
        rows[0]["detail"].contains("Serial Number"),
        "{}",
        rows[0]["detail"]
    );
}

#[test]
fn several_files_make_one_report_and_duplicates_name_the_other_file() {
    let dir = TempDir::new().unwrap();
    let a = write(
        dir.path(),
        "a.csv",
        format!("id,operatingSystem\n{IOS_A},iOS\n"),
    );
    let b = write(
        dir.path(),
        "b.jsonl",
        format!(
            "{{\"id\":\"{IOS_B}\",\"operatingSystem\":\"iOS\"}}\n{{\"id\":\"{}\",\"operatingSystem\":\"iOS\"}}\n",
            IOS_A.to_uppercase()
        ),
    );
    let (code, rows, _, _d) = plan(&[a.to_str().unwrap(), b.to_str().unwrap()], &[]);
    assert_eq!(code, 0);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["outcome"], "duplicate");
    assert!(
        rows[2]["detail"].contains("row 2 of"),
        "{}",
        rows[2]["detail"]
    );
    assert!(rows[2]["source"].ends_with("b.jsonl"));
}

#[test]
fn job_document_action_and_row_actions() {
    let dir = TempDir::new().unwrap();
    let job = write(
        dir.path(),
        "job.json",
        format!(
            r#"{{"devices": [
                {{"id": "{IOS_A}", "operatingSystem": "iOS"}},
                {{"id": "{IOS_B}", "operatingSystem": "iOS", "action": "remove-passcode"}}
            ], "action": "reset-pin", "writeRate": 5}}"#
        ),
    );
    let (code, rows, _, _d) = plan(&[job.to_str().unwrap()], &[]);
    assert_eq!(code, 0);
    // The document's action (given after the devices) applies to the first row...
    assert_eq!(rows[0]["reason"], "action_not_supported");
    // ...and the row's own action wins for the second.
    assert_eq!(rows[1]["outcome"], "planned");
}

#[test]
fn an_unknown_document_action_makes_the_file_unusable() {
    let dir = TempDir::new().unwrap();
    let job = write(
        dir.path(),
        "job.json",
        r#"{"action": "wipe", "devices": []}"#,
    );
    let (code, rows, stderr, _d) = plan(&[job.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(rows.is_empty());
    assert!(
        stderr.contains("job.json") && stderr.contains("wipe"),
        "{stderr}"
    );
}

#[test]
fn command_line_action_restricts_platforms() {
    let (_, rows, _, _d) = plan(&["samples/graph-export.json"], &["--action", "reset-pin"]);
    assert_eq!(
        count(&rows, "planned"),
        1,
        "only Windows 10 Mobile supports reset-pin"
    );
    assert!(rows.iter().any(|r| r["reason"] == "action_not_supported"));
}

#[test]
fn unreadable_files_exit_2_naming_the_file_and_write_nothing() {
    let dir = TempDir::new().unwrap();
    let good = write(dir.path(), "good.csv", format!("id,os\n{IOS_A},iPhone\n"));
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (dir.path().join("missing.csv"), "missing.csv"),
        (write(dir.path(), "empty.csv", ""), "empty"),
        (write(dir.path(), "blank.csv", "\r\n\r\n  \n"), "empty"),
        (
            write(
                dir.path(),
                "binary.csv",
                b"\x00\x01\x02\x03garbage\x00\x00\xff",
            ),
            "binary",
        ),
        (
            write(dir.path(), "book.csv", b"PK\x03\x04\x14\x00\x06\x00"),
            "starts like a ZIP archive (or .xlsx) but cannot be read",
        ),
        (
            write(
                dir.path(),
                "nocols.csv",
                "Manufacturer,Model\nApple,iPhone\n",
            ),
            "names no column",
        ),
        (
            write(dir.path(), "broken.json", "{\"devices\": [ {\"id\": 1 "),
            "not a valid JSON document",
        ),
        (
            write(dir.path(), "text.json", "hello"),
            "does not start with",
        ),
    ];
    for (path, words) in cases {
        let report = dir.path().join("r.csv");
        intune_reset()
            .arg("plan")
            .arg(&good)
            .arg(&path)
            .arg("--report")
            .arg(&report)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                path.file_name().unwrap().to_str().unwrap(),
            ))
            .stderr(predicate::str::contains(words));
        assert!(!report.exists(), "no report for {}", path.display());
    }
}

#[test]
fn a_header_only_file_plans_nothing_and_succeeds() {
    let dir = TempDir::new().unwrap();
    let f = write(dir.path(), "header.csv", "Device ID;Serial number;OS\r\n");
    let (code, rows, stderr, _d) = plan(&[f.to_str().unwrap()], &[]);
    assert_eq!(code, 0);
    assert!(rows.is_empty());
    assert!(stderr.contains("0 rows"), "{stderr}");
}

#[test]
fn broken_json_mid_array_keeps_earlier_rows_and_reports_where_it_broke() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "devices.json",
        format!(
            "[{{\"id\":\"{IOS_A}\",\"operatingSystem\":\"iOS\"}}, 42, {{\"id\": \"{IOS_B}\" ,, ]"
        ),
    );
    let (code, rows, _, _d) = plan(&[f.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["outcome"], "planned");
    assert_eq!(rows[1]["reason"], "not_an_object");
    assert_eq!(rows[2]["reason"], "unreadable_rest_of_file");
    assert_eq!(rows[2]["row"], "3");
}

#[test]
fn json_lines_with_a_bad_line_go_on() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "devices.jsonl",
        format!(
            "{{\"id\":\"{IOS_A}\",\"operatingSystem\":\"iOS\"}}\n\nnot json\n{{\"serialNumber\":\"X1\",\"osVersion\":6.0}}\n"
        ),
    );
    let (_, rows, _, _d) = plan(&[f.to_str().unwrap()], &[]);
    assert_eq!(rows_of(&rows, "row"), ["1", "3", "4"]);
    assert_eq!(rows[1]["reason"], "invalid_json");
    assert_eq!(rows[2]["os_version"], "6.0", "numbers become text");
}

#[test]
fn windows_1252_and_utf16_be_files_decode() {
    let dir = TempDir::new().unwrap();
    let ansi = write(
        dir.path(),
        "ansi.csv",
        b"deviceName;serialNumber;operatingSystem\r\nJos\xe9's iPhone;ABC1;iOS\r\n",
    );
    let (_, rows, stderr, _d) = plan(&[ansi.to_str().unwrap()], &[]);
    assert_eq!(rows[0]["device_name"], "José's iPhone");
    assert!(stderr.contains("Windows-1252"), "{stderr}");
    let be = write(
        dir.path(),
        "be.csv",
        utf16be_with_bom("serialNumber\tOS\r\nZ9\tiPad\r\n"),
    );
    let (_, rows, _, _d) = plan(&[be.to_str().unwrap()], &[]);
    assert_eq!(
        (
            rows[0]["serial_number"].as_str(),
            rows[0]["platform"].as_str()
        ),
        ("Z9", "ios")
    );
    let le = write(
        dir.path(),
        "le.csv",
        utf16le_with_bom("serialNumber|OS\nZ8|iPhone\n"),
    );
    let (_, rows, _, _d) = plan(&[le.to_str().unwrap()], &[]);
    assert_eq!(rows[0]["serial_number"], "Z8");
}

#[test]
fn quoted_fields_with_newlines_and_excel_quirks() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "quirks.csv",
        format!(
            "sep=;\r\nDevice ID;Device name;OS;IMEI\r\n{IOS_A};\"two\r\nlines\";iPhone;=\"0123\"\r\n;;;\r\n{IOS_B};\"a;b\";iPad;\r\n"
        ),
    );
    let (_, rows, _, _d) = plan(&[f.to_str().unwrap()], &[]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["row"], "3");
    assert_eq!(
        rows[0]["outcome"], "planned",
        "a line break inside the device name of a row with an id: the id decides"
    );
    assert_eq!(rows[0]["device_name"], "two\r\nlines", "reported as read");
    assert_eq!(rows[1]["row"], "6");
    assert_eq!(rows[1]["device_name"], "a;b");
}

#[test]
fn jsonl_report_and_summary_json() {
    let dir = TempDir::new().unwrap();
    let report = dir.path().join("out.jsonl");
    let summary = dir.path().join("summary.json");
    intune_reset()
        .args(["plan", "samples/graph-export.json", "--format", "jsonl"])
        .arg("--report")
        .arg(&report)
        .arg("--summary-json")
        .arg(&summary)
        .assert()
        .success();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 13);
    assert_eq!(lines[0]["source"], "samples/graph-export.json");
    assert_eq!(lines[0]["outcome"], "planned");
    let keys: Vec<&str> = lines[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), intune_reset::report::COLUMNS.len());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["rows"], 13);
    assert_eq!(s["outcomes"]["planned"], 8);
    assert_eq!(s["outcomes"]["ineligible"], 5);
}

#[test]
fn default_report_path_is_under_reports_named_after_the_job() {
    let dir = TempDir::new().unwrap();
    std::fs::copy(
        crate::common::repo().join("jobs/nightly-lost-devices.csv"),
        dir.path().join("nightly.csv"),
    )
    .unwrap();
    intune_reset()
        .current_dir(dir.path())
        .args(["plan", "nightly.csv"])
        .assert()
        .success()
        .stderr(predicate::str::contains("report: reports/nightly-"));
    let reports: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .collect();
    assert_eq!(reports.len(), 1);
    let name = reports[0]
        .as_ref()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    assert!(
        name.starts_with("nightly-") && name.ends_with("Z.csv"),
        "{name}"
    );
}

#[test]
fn report_cells_that_look_like_formulas_are_defused() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "evil.csv",
        format!("id,deviceName,OS\n{IOS_A},=HYPERLINK(\"http://x\"),iPhone\n"),
    );
    let (_, rows, _, _d) = plan(&[f.to_str().unwrap()], &[]);
    assert!(rows[0]["device_name"].starts_with("'="));
}

#[test]
fn summary_snapshot() {
    let out = intune_reset()
        .args([
            "plan",
            "samples/admin-center-export.csv",
            "samples/graph-export.json",
        ])
        .arg("--report")
        .arg(TempDir::new().unwrap().path().join("r.csv"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let without_path: String = stderr
        .lines()
        .filter(|l| !l.starts_with("report: "))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!("plan_summary", without_path);
}

#[test]
fn a_report_named_jsonl_is_written_as_json_lines_without_format() {
    let dir = TempDir::new().unwrap();
    let report = dir.path().join("out.jsonl");
    intune_reset()
        .args(["plan", "jobs/nightly-lost-devices.csv", "--report"])
        .arg(&report)
        .assert()
        .success();
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(text.lines().count(), 8);
    for line in text.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["outcome"], "planned");
    }
}

/// A job read from a pipe (`plan <(cat job.csv)`, `/dev/stdin`) is read once: sniffing
/// for a workbook must not eat its first bytes.
#[cfg(unix)]
#[test]
fn a_csv_from_a_pipe_keeps_its_header() {
    let dir = TempDir::new().unwrap();
    let report = dir.path().join("report.csv");
    let out = crate::common::plan_piped(b"serialNumber\nC02XY1\n", &["--action", "auto"], &report);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_report(&report);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["serial_number"], "C02XY1");
}

#[test]
fn regression_18_action_reset_passcode_is_accepted_as_a_flag_as_in_a_job_file() {
    let export = crate::common::repo().join("samples/admin-center-export.csv");
    let export = export.to_string_lossy();
    let (by_flag_code, by_flag, stderr, _d1) = plan(&[&export], &["--action", "reset-passcode"]);
    let (auto_code, auto, _, _d2) = plan(&[&export], &["--action", "auto"]);

    assert_eq!(by_flag_code, auto_code, "{stderr}");
    assert!(!by_flag.is_empty(), "{stderr}");
    assert_eq!(rows_of(&by_flag, "action"), rows_of(&auto, "action"));
    assert_eq!(rows_of(&by_flag, "outcome"), rows_of(&auto, "outcome"));
}
