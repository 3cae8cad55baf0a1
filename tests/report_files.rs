//! Reports for Excel (issue 12, items 6 and 7): a UTF-8 BOM on CSV (and `--no-bom`),
//! the final report in input order, the xlsx report and its Summary sheet, and the
//! `user_principal_name` column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use intune_reset::pacing::cooldown::Backoff;
use intune_reset::planner::{LookupMode, PlanOptions};
use intune_reset::report::xlsx::{SheetFacts, XlsxReport};
use intune_reset::report::{
    COLUMNS, FileSummary, Outcome, ReportFormat, ReportRow, RunStats, Summary, companion_csv,
};
use intune_reset::rules::ActionChoice;
use intune_reset::run::{RunConfig, RunOutcome, Settings, execute, prepare};
use intune_reset::sim::{Inventory, Latency, SimConfig, Simulator};
use tempfile::TempDir;

use crate::common::tenant::{Tenant, assert_complete, ios_job, ledger_of, run_cmd, signal};
use crate::common::tenant::{wait_for, wait_for_ledger};
use crate::common::xlsx::{Cell, sheet};
use crate::common::{BOM, Row, SIMULATED_CLIENT_ID, intune_reset, read_report, simulated_client};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn a_csv_report_starts_with_a_bom_and_no_bom_leaves_it_out() {
    let dir = TempDir::new().unwrap();
    for (flags, bom) in [(&[][..], true), (&["--no-bom"][..], false)] {
        let report = dir.path().join(format!("plan-{bom}.csv"));
        intune_reset()
            .args(["plan", "jobs/nightly-lost-devices.csv", "--report"])
            .arg(&report)
            .args(flags)
            .assert()
            .success();
        let bytes = std::fs::read(&report).unwrap();
        assert_eq!(bytes.starts_with(BOM), bom, "{flags:?}");
        let text = bytes.strip_prefix(BOM).unwrap_or(&bytes);
        assert!(text.starts_with(b"source,row,"), "{flags:?}");
        assert!(!text.windows(3).any(|w| w == BOM), "one BOM at most, first");
        assert_eq!(read_report(&report).len(), 8);
    }
}

/// A job whose device name would be a formula in a spreadsheet.
fn formula_job(dir: &Path) -> PathBuf {
    let path = dir.join("formula.csv");
    std::fs::write(
        &path,
        "id,deviceName,operatingSystem,osVersion,userPrincipalName\n\
         0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0,=cmd|' /C calc'!A0,iOS,17.5,ana@contoso.com\n\
         1f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0,+SUM(1),iOS,17.10,\n",
    )
    .unwrap();
    path
}

#[test]
fn an_xlsx_report_holds_text_cells_only_so_a_formula_name_stays_text() {
    let dir = TempDir::new().unwrap();
    let job = formula_job(dir.path());
    // By name: a `--report` ending in .xlsx is a workbook without --format.
    let report = dir.path().join("plan.xlsx");
    intune_reset()
        .args(["plan", "--action", "remove-passcode"])
        .arg(&job)
        .arg("--report")
        .arg(&report)
        .assert()
        .success();
    let sheet = sheet(&report, "Report");
    assert!(!sheet.xml.contains("<f>"), "no formula anywhere");
    let header: Vec<String> = sheet.rows()[0].clone();
    assert_eq!(header, COLUMNS.map(String::from).to_vec());
    let col = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap() as u32;
    assert_eq!(
        sheet.cells[&(1, col("device_name"))],
        Cell::Text("=cmd|' /C calc'!A0".into()),
        "written as text, not defused with a quote"
    );
    assert_eq!(
        sheet.cells[&(2, col("device_name"))],
        Cell::Text("+SUM(1)".into())
    );
    assert_eq!(
        sheet.cells[&(2, col("os_version"))],
        Cell::Text("17.10".into()),
        "a version stays as written"
    );
    assert_eq!(
        sheet.cells[&(1, col("row"))],
        Cell::Text("2".into()),
        "numbers too are text cells"
    );
    assert_eq!(
        sheet.cells[&(1, col("user_principal_name"))],
        Cell::Text("ana@contoso.com".into())
    );
    assert!(
        sheet.xml.contains("<autoFilter ref=\"A1:T3\"/>"),
        "an autofilter over the header and every row"
    );
    assert!(
        sheet.xml.contains("ySplit=\"1\"") && sheet.xml.contains("state=\"frozen\""),
        "the first row is frozen"
    );
    // Plan writes no CSV beside a workbook: only a run needs one to survive a kill.
    assert!(!companion_csv(&report).exists());
}

fn fixed_row(source: &str, n: u64, platform: &'static str, outcome: Outcome) -> ReportRow {
    ReportRow {
        source: source.into(),
        row: n,
        device_id: format!("{n:08x}-0000-4000-8000-000000000000"),
        device_name: format!("Device {n}"),
        serial_number: String::new(),
        user_principal_name: String::new(),
        operating_system: String::new(),
        os_version: String::new(),
        platform: platform.into(),
        action: "".into(),
        outcome,
        reason: match outcome {
            Outcome::Ineligible => "macos_not_supported".into(),
            Outcome::Failed => "gave_up".into(),
            _ => "".into(),
        },
        detail: "".into(),
        http_status: None,
        attempts: 1,
        request_id: String::new(),
        client_request_id: String::new(),
        started_at: String::new(),
        finished_at: String::new(),
        tenant: String::new(),
    }
}

#[test]
fn the_summary_sheet_counts_outcomes_by_platform_with_traffic_identity_and_time() {
    let dir = TempDir::new().unwrap();
    let rows = [
        fixed_row("job.csv", 2, "ios", Outcome::Succeeded),
        fixed_row("job.csv", 3, "ios", Outcome::Succeeded),
        fixed_row("job.csv", 4, "android_work_profile", Outcome::Succeeded),
        fixed_row("job.csv", 5, "android_work_profile", Outcome::Failed),
        fixed_row("job.csv", 6, "macos", Outcome::Ineligible),
        fixed_row("job.csv", 7, "", Outcome::NotFound),
    ];
    let mut summary = Summary::new("run");
    let mut workbook = XlsxReport::new();
    for r in &rows {
        summary.count(r);
        workbook.push(r).unwrap();
    }
    summary.files = vec![FileSummary {
        source: "job.csv".into(),
        format: "csv".into(),
        encoding: "utf-8".into(),
        rows: 6,
        blank_lines: 0,
    }];
    summary.run = Some(RunStats {
        requests: 9,
        posts: 4,
        throttled: 1,
        confirmed_by_action_results: 1,
        resets_per_second: 1.5,
        aborted: None,
    });
    let summary = summary.with_elapsed(Duration::from_millis(2500));
    let facts = SheetFacts {
        started: UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        ended: UNIX_EPOCH + Duration::from_secs(1_795_000_002),
        identity: vec![
            ("tenant".into(), "contoso.onmicrosoft.com".into()),
            (
                "client id".into(),
                "3e5c7a9b-1d2f-4a6b-8c0d-2e4f6a8b0c1d".into(),
            ),
        ],
    };
    let path = dir.path().join("run.xlsx");
    workbook.save(&path, &summary, &facts).unwrap();
    let summary_sheet = sheet(&path, "Summary");
    assert!(!summary_sheet.xml.contains("<f>"));
    let text: String = summary_sheet
        .rows()
        .iter()
        .map(|r| r.join(" | ").trim_end_matches(" | ").to_owned() + "\n")
        .collect();
    insta::assert_snapshot!(text);
}

fn settings() -> Settings {
    Settings {
        concurrency: 16,
        verify_delay: Duration::from_millis(20),
        request_timeout: Duration::from_secs(5),
        backoff: Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        },
        ..Settings::default()
    }
    .unlimited()
}

/// Two job files, named on the command line as `z.csv` then `a.csv` (so input order is
/// not name order): iOS devices with ids, half with a user in the job; a Mac (decided
/// at once); and serial numbers only, whose devices (and users) Graph must give.
fn two_jobs(dir: &Path) -> [PathBuf; 2] {
    let mut z = String::from(
        "id,deviceName,serialNumber,operatingSystem,osVersion,deviceType,userPrincipalName\n",
    );
    for i in 0..24u32 {
        let upn = if i.is_multiple_of(2) {
            format!("user{i}@contoso.com")
        } else {
            String::new()
        };
        z.push_str(&format!(
            "{:08x}-0000-4000-8000-{:012x},iPhone {i},SNZ{i:05},iOS,17.5,iPhone,{upn}\n",
            i + 1,
            i + 1
        ));
    }
    z.push_str("00000001-1111-4000-8000-000000000001,Mac,SNMAC,macOS,15.1,macMDM,\n");
    let mut a = String::from("serialNumber\n");
    for i in 0..12 {
        a.push_str(&format!("SNA{i:05}\n"));
    }
    let (zp, ap) = (dir.join("z.csv"), dir.join("a.csv"));
    std::fs::write(&zp, z).unwrap();
    std::fs::write(&ap, a).unwrap();
    [zp, ap]
}

/// A run of [`two_jobs`] at concurrency 16 against a simulator whose answers take 0 to
/// 40 ms at random, so outcomes arrive out of input order.
async fn concurrent_run(format: ReportFormat) -> (TempDir, PathBuf, Inventory, RunOutcome) {
    let dir = TempDir::new().unwrap();
    let jobs = two_jobs(dir.path());
    let inventory = Inventory::from_job_files(&jobs, 11, &Default::default()).unwrap();
    let config = SimConfig {
        inventory: inventory.clone(),
        seed: 11,
        limits: None,
        latency: Latency {
            base: Duration::ZERO,
            jitter: Duration::from_millis(40),
        },
        action_delay: Duration::from_millis(200),
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start(config, listener).unwrap();
    let report = dir.path().join(format!("run.{}", format.extension()));
    let run = RunConfig {
        files: jobs.to_vec(),
        options: PlanOptions {
            action: Some(intune_reset::rules::Actions::one(ActionChoice::Auto)),
            lookup: LookupMode::Auto,
            tenants: Default::default(),
        },
        report: Some(report.clone()),
        format,
        bom: true,
        summary_json: None,
        yes: true,
        max_devices: None,
        settings: settings(),
        interactive: false,
        resume: false,
        lock: None,
        wait_for_lock: false,
        passcodes: None,
        lookup_via: Default::default(),
        reset_again: false,
        tenants: Vec::new(),
        users: Vec::new(),
        groups: Vec::new(),
        filter: None,
        read: Default::default(),
    };
    let client = simulated_client(&sim, SIMULATED_CLIENT_ID, run.settings.request_timeout)
        .await
        .unwrap();
    let mut prepared = prepare(&run).unwrap();
    prepared.signed_in = Some(intune_reset::graph::SignedIn {
        method: "secret",
        tenant: sim.config().tenant_id.clone(),
        user: None,
        client_id: Some(SIMULATED_CLIENT_ID.into()),
        simulated: true,
    });
    let outcome = execute(&run, client, prepared, std::future::pending())
        .await
        .unwrap();
    sim.shutdown().await;
    (dir, report, inventory, outcome)
}

/// (file index, row) of each row, the file index by the order the files were named.
fn input_keys(rows: &[Row]) -> Vec<(usize, u64)> {
    rows.iter()
        .map(|r| {
            let file = if r["source"].ends_with("z.csv") { 0 } else { 1 };
            (file, r["row"].parse().unwrap())
        })
        .collect()
}

/// The (file, row) of each row the run settled, in the order the ledger recorded them:
/// the order outcomes arrived in.
fn arrival_order(report: &Path) -> Vec<(u64, u64)> {
    std::fs::read_to_string(ledger_of(report))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "settled")
        .map(|e| (e["file"].as_u64().unwrap(), e["row"].as_u64().unwrap()))
        .collect()
}

fn assert_input_order(rows: &[Row], report: &Path) {
    let keys = input_keys(rows);
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "the final report is in input order");
    assert_eq!(keys.len(), 25 + 12, "every row once");
    let arrived = arrival_order(report);
    assert!(
        arrived.windows(2).any(|w| w[0] > w[1]),
        "the outcomes arrived out of order (else this test shows nothing): {arrived:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_concurrent_run_the_csv_report_is_in_input_order_with_users() {
    let (dir, report, inventory, outcome) = concurrent_run(ReportFormat::Csv).await;
    assert!(outcome.aborted.is_none(), "{:?}", outcome.aborted);
    assert!(std::fs::read(&report).unwrap().starts_with(BOM));
    let rows = read_report(&report);
    assert_input_order(&rows, &report);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The user: from the job when it names one, else from Graph's device.
    let users: BTreeMap<&str, &str> = inventory
        .devices()
        .iter()
        .map(|d| (&*d.serial_number, &*d.user_principal_name))
        .collect();
    for r in &rows {
        let serial = r["serial_number"].as_str();
        if r["source"].ends_with("z.csv") && r["device_name"].starts_with("iPhone") {
            let i: usize = r["device_name"][7..].parse().unwrap();
            if i.is_multiple_of(2) {
                assert_eq!(r["user_principal_name"], format!("user{i}@contoso.com"));
            }
        } else if r["source"].ends_with("a.csv") && r["outcome"] != "not_found" {
            assert!(!users[serial].is_empty());
            assert_eq!(
                r["user_principal_name"], users[serial],
                "row {} got its user from Graph",
                r["row"]
            );
        }
    }
    let from_graph = rows
        .iter()
        .filter(|r| r["source"].ends_with("a.csv") && !r["user_principal_name"].is_empty())
        .count();
    assert!(from_graph > 0, "some users came from Graph");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_concurrent_xlsx_run_the_workbook_and_its_csv_are_in_input_order() {
    let (_dir, report, _inventory, outcome) = concurrent_run(ReportFormat::Xlsx).await;
    assert!(outcome.aborted.is_none(), "{:?}", outcome.aborted);
    let companion = companion_csv(&report);
    let csv_rows = read_report(&companion);
    assert_input_order(&csv_rows, &report);
    let sheet = sheet(&report, "Report");
    let xlsx_rows = sheet.records();
    assert_eq!(
        xlsx_rows, csv_rows,
        "the workbook holds the CSV's rows, in its order"
    );
    let summary = sheet_text(&report, "Summary");
    assert!(summary.contains("intune-reset run: 37 rows"), "{summary}");
    assert!(summary.contains(&format!(
        "tenant | {}",
        intune_reset::sim::DEFAULT_TENANT_ID
    )));
}

#[test]
fn a_run_s_xlsx_report_shows_a_formula_like_name_as_written_text() {
    let dir = TempDir::new().unwrap();
    let job = formula_job(dir.path());
    let report = dir.path().join("run.xlsx");
    let out = intune_reset()
        .arg("run")
        .arg(&job)
        .args([
            "--simulate",
            "--yes",
            "--action",
            "remove-passcode",
            "--report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let sheet = sheet(&report, "Report");
    assert!(!sheet.xml.contains("<f>"), "no formula anywhere");
    let col = COLUMNS.iter().position(|c| *c == "device_name").unwrap() as u32;
    assert_eq!(
        sheet.cells[&(1, col)],
        Cell::Text("=cmd|' /C calc'!A0".into()),
        "the workbook shows the name, the CSV beside it defuses it"
    );
    let companion = std::fs::read_to_string(companion_csv(&report)).unwrap();
    assert!(companion.contains("'=cmd"), "{companion}");
}

fn sheet_text(path: &Path, name: &str) -> String {
    sheet(path, name)
        .rows()
        .iter()
        .map(|r| r.join(" | ") + "\n")
        .collect()
}

#[test]
fn a_killed_xlsx_run_leaves_a_csv_that_reads_as_a_report_and_resume_writes_the_workbook() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 8);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--effect-delay-ms", "1500"],
    );
    let report = dir.path().join("report.xlsx");
    let companion = companion_csv(&report);
    let args = ["--timeout", "1s", "--concurrency", "4"];
    let mut child = run_cmd(&tenant, &[&job], &report, &args).spawn().unwrap();
    wait_for_ledger(&mut child, &ledger_of(&report), "send", 3, LIMIT);
    signal(&mut child, "-KILL");
    let _ = child.wait();
    // Killed mid-run: no workbook yet, and the CSV beside it reads as a report.
    assert!(
        !report.exists(),
        "the workbook is written only from the final rows"
    );
    assert!(std::fs::read(&companion).unwrap().starts_with(BOM));
    let before = read_report(&companion);
    assert!(before.len() < 10, "{before:?}");
    // `status` reads an xlsx report through that CSV, killed or not.
    let out = intune_reset()
        .arg("status")
        .arg(&report)
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .env("AZURE_TENANT_ID", crate::common::tenant::TENANT)
        .env("AZURE_CLIENT_ID", crate::common::tenant::CLIENT)
        .env("AZURE_CLIENT_SECRET", "crash-test-secret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "{stderr}");
    assert!(dir.path().join("report.status.csv").exists(), "{stderr}");

    let resume = [&args[..], &["--resume"]].concat();
    let mut child = run_cmd(&tenant, &[&job], &report, &resume).spawn().unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows = read_report(&companion);
    assert_complete(&rows, 10, 1);
    let keys: Vec<u64> = rows.iter().map(|r| r["row"].parse().unwrap()).collect();
    assert_eq!(keys, (2..12).collect::<Vec<u64>>(), "in input order");
    assert_eq!(sheet(&report, "Report").records(), rows);
    // As whom the run signed in, from the real sign-in, and never the secret.
    let summary = sheet_text(&report, "Summary");
    for line in [
        format!("tenant | {}", crate::common::tenant::TENANT),
        format!("client id | {}", crate::common::tenant::CLIENT),
        "sign-in | secret".to_owned(),
        "intune-reset run: 10 rows".to_owned(),
    ] {
        assert!(summary.contains(&line), "{line} in\n{summary}");
    }
    for sheet in crate::common::xlsx::read_workbook(&report) {
        assert!(
            sheet
                .cells
                .values()
                .all(|c| !c.text().contains("crash-test-secret")),
            "no secret in {}",
            sheet.name
        );
    }
    let resets = tenant.resets();
    assert_eq!(resets.len(), 8, "{resets:?}");
    assert!(resets.values().all(|n| *n == 1), "{resets:?}");
}
