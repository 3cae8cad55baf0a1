//! A report read as a job carries its history (issue 17, points 1 and 2): the real
//! binary against a `simulate` process, a report run again round after round and
//! filtered as a spreadsheet would. `--reset-again` is passed on the later rounds, so
//! that Intune's record of recent resets lets every send through and only the report's
//! history keeps the devices from a second reset.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;

use crate::common::tenant::{Tenant, ios_id, ios_job, ios_serial, run_cmd, wait_for};
use crate::common::{BOM, Row, count, read_report};

const LIMIT: Duration = Duration::from_secs(120);

/// Runs `cmd` to its end: its exit code and stderr.
fn finish(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    let mut child = cmd.spawn().expect("the run starts");
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Rewrites a CSV report as a spreadsheet would save it: `edit` changes a row, or drops
/// it (`false`), every column kept.
fn rewrite(report: &Path, mut edit: impl FnMut(&mut Row) -> bool) {
    let rows = read_report(report);
    let bytes = std::fs::read(report).expect("the report");
    let text = bytes.strip_prefix(BOM).unwrap_or(&bytes);
    let header = csv::Reader::from_reader(text)
        .headers()
        .expect("a header")
        .clone();
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&header).unwrap();
    for mut row in rows {
        if edit(&mut row) {
            out.write_record(header.iter().map(|h| row[h].clone()))
                .unwrap();
        }
    }
    std::fs::write(report, out.into_inner().unwrap()).unwrap();
}

/// Every device the simulator's full log shows reset, and how often.
fn resets_at_the_end(tenant: Tenant) -> BTreeMap<String, usize> {
    let (log, _) = tenant.stop();
    let mut out = BTreeMap::new();
    for line in log.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let took_effect = e
            .get("effect")
            .and_then(|v| v.as_bool())
            .unwrap_or(e["status"] == 204);
        if e["kind"] == "resetPasscode" && took_effect {
            *out.entry(e["device"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
    }
    out
}

#[test]
fn regression_17_1_a_report_read_back_three_times_resets_each_device_once() {
    const N: usize = 12;
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), N);
    // Resets are `done` at once: with --reset-again, Intune's record stops none.
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--action-delay", "0"],
    );
    let first = dir.path().join("r1.csv");
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &first, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&first);
    assert_eq!(count(&rows, "succeeded"), N, "{rows:?}");
    let reset_at: BTreeMap<String, String> = rows
        .iter()
        .filter(|r| r["outcome"] == "succeeded")
        .map(|r| (r["device_id"].clone(), r["finished_at"].clone()))
        .collect();

    // The control: one row's outcome cleared, the README's way to reset a device once
    // more on purpose. It is sent again in round 2, which shows that Intune's record
    // let every send through: only the history kept the other devices from a second.
    let control = ios_id(0);
    rewrite(&first, |row| {
        if row["device_id"] == control {
            row.insert("outcome".into(), String::new());
        }
        true
    });

    let mut report = first.clone();
    for round in 2..=3 {
        let next = dir.path().join(format!("r{round}.csv"));
        let (code, stderr) = finish(&mut run_cmd(&tenant, &[&report], &next, &["--reset-again"]));
        assert_eq!(code, Some(0), "round {round}: {stderr}");
        let rows = read_report(&next);
        assert_eq!(rows.len(), N + 2, "round {round}: every row, once");
        let sent = if round == 2 { 1 } else { 0 };
        assert_eq!(count(&rows, "succeeded"), sent, "round {round}: {rows:?}");
        for row in rows.iter().filter(|r| r["reason"] == "already_reset") {
            // A report of a report still says the device was reset, when, and by
            // which run.
            let id = &row["device_id"];
            if *id == control && round == 3 {
                continue;
            }
            let detail = &row["detail"];
            assert!(detail.contains(&reset_at[id]), "round {round}: {detail}");
            assert!(detail.contains("r1.csv"), "round {round}: {detail}");
        }
        assert_eq!(
            count(&rows, "ineligible"),
            N + 2 - sent,
            "round {round}: the reset devices and the two Macs: {rows:?}"
        );
        report = next;
    }

    let resets = resets_at_the_end(tenant);
    assert_eq!(resets.len(), N, "{resets:?}");
    for (device, n) in &resets {
        let expected = if *device == control { 2 } else { 1 };
        assert_eq!(*n, expected, "{device}: {resets:?}");
    }
}

#[test]
fn regression_17_2_a_report_filtered_to_its_duplicates_resets_nothing_again() {
    const N: usize = 10;
    let dir = TempDir::new().unwrap();
    let export = ios_job(dir.path(), N);
    // The same devices again, by serial number: each resolves to a device the export
    // names by id, so one of its two rows is a duplicate.
    let mut serials = String::from("serialNumber\n");
    for i in 0..N {
        serials.push_str(&format!("{}\n", ios_serial(i)));
    }
    let list = dir.path().join("serials.csv");
    std::fs::write(&list, serials).unwrap();
    let tenant = Tenant::start(
        &[&export],
        &dir.path().join("sim.jsonl"),
        &["--action-delay", "0"],
    );
    let report = dir.path().join("report.csv");
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&list, &export], &report, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(count(&rows, "succeeded"), N, "{rows:?}");
    assert_eq!(count(&rows, "duplicate"), N, "{rows:?}");

    // The README's advice: filter the report to the rows that did not succeed.
    rewrite(&report, |row| row["outcome"] != "succeeded");
    let again = dir.path().join("again.csv");
    let (code, stderr) = finish(&mut run_cmd(
        &tenant,
        &[&report],
        &again,
        &["--reset-again"],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&again);
    assert_eq!(rows.len(), N + 2, "every row, once: {rows:?}");
    assert_eq!(count(&rows, "duplicate"), N, "{rows:?}");
    assert_eq!(count(&rows, "ineligible"), 2, "the two Macs: {rows:?}");
    for row in rows.iter().filter(|r| r["outcome"] == "duplicate") {
        assert!(
            row["detail"].contains("never sent"),
            "the row says why: {}",
            row["detail"]
        );
    }

    let resets = resets_at_the_end(tenant);
    assert_eq!(resets.len(), N, "{resets:?}");
    assert!(resets.values().all(|n| *n == 1), "{resets:?}");
}
