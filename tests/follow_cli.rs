//! `run --follow` (issue 13): after the last POST the run follows its resets through
//! `deviceActionResults`, writes the action states into the run report itself, puts
//! generated passcodes in the 0600 file only, and exits as `status` would. The report
//! is then a job that retries only the resets that failed.

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;

use crate::common::tenant::{Tenant, run_cmd, wait_for};
use crate::common::xlsx::sheet;
use crate::common::{intune_reset, read_report, write};

/// `n` Android work profiles (each reset generates a passcode, or ends notSupported
/// when the simulated user never activated the reset token) and an iPhone.
fn job(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion,deviceType\n");
    for i in 1..=n {
        csv.push_str(&format!(
            "a1000000-0000-4000-8000-{i:012},Work profile {i},Android,14,androidForWork\n"
        ));
    }
    csv.push_str("b1000000-0000-4000-8000-000000000001,iPhone 1,iOS,17.5,iPhone\n");
    write(dir, "job.csv", csv)
}

const STATUS_COLUMNS: [&str; 3] = ["action_state", "action_updated_at", "error_code"];

const LIMIT: Duration = Duration::from_secs(120);

/// A simulated tenant of the job's devices: `seed` decides which resets fail; each is
/// final `delay` seconds after it is sent.
fn tenant(dir: &Path, job: &Path, seed: u32, delay: u32) -> Tenant {
    Tenant::start(
        &[job],
        &dir.join("sim.jsonl"),
        &[
            "--no-limits",
            "--action-delay",
            &delay.to_string(),
            "--seed",
            &seed.to_string(),
        ],
    )
}

/// `run JOB --report REPORT EXTRA` against `tenant`, to its end.
fn followed(tenant: &Tenant, job: &Path, report: &Path, extra: &[&str]) -> std::process::Output {
    let mut child = run_cmd(tenant, &[job], report, extra).spawn().unwrap();
    wait_for(&mut child, LIMIT)
}

#[test]
fn a_followed_run_collects_passcodes_and_exits_as_status_would() {
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 3);
    let tenant = tenant(dir.path(), &job, 3, 0);
    let report = dir.path().join("report.csv");
    let passcodes = dir.path().join("passcodes.csv");
    let p = passcodes.to_string_lossy().into_owned();
    let json = dir.path().join("summary.json");
    let j = json.to_string_lossy().into_owned();
    let out = followed(
        &tenant,
        &job,
        &report,
        &["--follow", "20s", "--passcodes", &p, "--summary-json", &j],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // For machines: the run's summary, and what following found.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["command"], "run");
    assert_eq!(summary["followed"]["command"], "status");
    assert_eq!(summary["followed"]["queried"], 4, "{summary}");
    // The run report itself carries the action states: no second report beside it.
    assert!(!dir.path().join("report.status.csv").exists());
    let status = read_report(&report);
    assert_eq!(status.len(), 4, "every row once");
    for column in STATUS_COLUMNS {
        assert!(status[0].contains_key(column), "{column}: {:?}", status[0]);
    }
    let done = status
        .iter()
        .filter(|r| r["action_state"] == "done")
        .count();
    let expected = if done == 4 { 0 } else { 1 };
    assert_eq!(
        out.status.code(),
        Some(expected),
        "as status would exit: {stderr}"
    );
    assert!(stderr.contains("followed:"), "{stderr}");
    // The action names the effect per device, and a succeeded row keeps the caveat.
    for row in &status {
        let (action, caveat) = if row["operating_system"] == "Android" {
            ("reset-passcode", "reset token")
        } else {
            ("remove-passcode", "passcode policy")
        };
        assert_eq!(row["action"], action, "{row:?}");
        if row["action_state"] == "done" {
            assert!(row["detail"].contains(caveat), "{row:?}");
        }
    }
    // Passcodes only in the file, never on stderr.
    let file = std::fs::read_to_string(&passcodes).unwrap();
    for line in file.lines().skip(1) {
        let code = line.split(',').nth(4).unwrap();
        assert!(!stderr.contains(code), "a passcode leaked to stderr");
    }
    assert!(
        file.lines().count() > 1,
        "Android resets generated passcodes: {file}"
    );
    // An existing passcodes file is refused before anything is sent.
    let report2 = dir.path().join("report2.csv");
    let out = followed(
        &tenant,
        &job,
        &report2,
        &["--follow", "20s", "--passcodes", &p],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!report2.exists(), "nothing was sent");
}

#[test]
fn a_followed_report_read_as_a_job_retries_only_the_resets_that_failed() {
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 40);
    let tenant = tenant(dir.path(), &job, 5, 0);
    let report = dir.path().join("report.csv");
    let out = followed(&tenant, &job, &report, &["--follow", "20s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let followed = read_report(&report);
    let failed: Vec<&str> = followed
        .iter()
        .filter(|r| r["action_state"] != "done")
        .map(|r| r["device_id"].as_str())
        .collect();
    assert!(
        !failed.is_empty() && failed.len() < 20,
        "some work profiles never activated their reset token: {failed:?}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The next steps say how to retry them, with the report as the job.
    let shown = report.display().to_string();
    assert!(
        stderr.contains(&format!("intune-reset run {shown}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("--wait 30m"),
        "nothing is pending, and the run's own follow-up step gave way: {stderr}"
    );
    // `plan` of the report: the failed resets are planned again, by the platform the
    // report names; every device whose reset is done is not sent again.
    let plan = dir.path().join("plan.csv");
    let out = intune_reset()
        .arg("plan")
        .arg(&report)
        .arg("--report")
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let planned = read_report(&plan);
    assert_eq!(planned.len(), followed.len());
    for (row, was) in planned.iter().zip(&followed) {
        let retried = failed.contains(&row["device_id"].as_str());
        if retried {
            assert_eq!(row["outcome"], "planned", "{row:?}");
            assert_eq!(row["platform"], was["platform"], "{row:?}");
            assert_eq!(row["action"], was["action"], "{row:?}");
        } else {
            assert_eq!(row["outcome"], "ineligible", "{row:?}");
            assert_eq!(row["reason"], "already_reset", "{row:?}");
        }
    }
}

#[test]
fn a_followed_workbook_report_carries_the_action_states_too() {
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 3);
    let tenant = tenant(dir.path(), &job, 3, 0);
    let report = dir.path().join("report.xlsx");
    let out = followed(&tenant, &job, &report, &["--follow", "20s"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = sheet(&report, "Report").records();
    assert_eq!(rows.len(), 4);
    let companion = read_report(&dir.path().join("report.xlsx.csv"));
    for (book, line) in rows.iter().zip(&companion) {
        for column in STATUS_COLUMNS {
            assert_eq!(book[column], line[column], "{column}");
        }
        assert!(!book["action_state"].is_empty(), "{book:?}");
    }
    // The Summary sheet is still the run's.
    let summary = sheet(&report, "Summary").rows();
    assert!(
        summary.iter().flatten().any(|c| c == "succeeded"),
        "{summary:?}"
    );
}

#[test]
fn the_rehearsal_shows_the_simulator_s_own_account_only_when_verbose() {
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 2);
    let rehearse = |verbose: bool| {
        let report = dir.path().join(format!("report-{verbose}.csv"));
        let mut cmd = intune_reset();
        cmd.arg("run")
            .arg(&job)
            .args(["--simulate", "--yes", "--action", "auto", "--report"])
            .arg(&report);
        if verbose {
            cmd.arg("-v");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = rehearse(false);
    assert!(quiet.contains("next steps:"), "{quiet}");
    assert!(!quiet.contains("the simulated tenant saw"), "{quiet}");
    let verbose = rehearse(true);
    assert!(verbose.contains("the simulated tenant saw"), "{verbose}");
}

/// SIGTERM (Ctrl-C is the same path) while the run follows: the run report gains the
/// states read so far, and the run exits 3 as an interrupted `status` does.
#[cfg(unix)]
#[test]
fn an_interrupted_follow_writes_the_states_read_so_far() {
    use crate::common::tenant::signal_at_line;
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 3);
    // Resets stay pending for an hour: the follow waits.
    let tenant = tenant(dir.path(), &job, 3, 3600);
    let report = dir.path().join("report.csv");
    let passcodes = dir.path().join("passcodes.csv");
    let p = passcodes.to_string_lossy().into_owned();
    let child = run_cmd(
        &tenant,
        &[&job],
        &report,
        &["--follow", "10m", "--passcodes", &p],
    )
    .spawn()
    .unwrap();
    let (code, seen) = signal_at_line(child, "still pending; reading again", "-TERM");
    assert_eq!(code, Some(3), "{seen}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter().all(|r| r["action_state"] == "pending"),
        "{rows:?}"
    );
    assert!(!passcodes.exists(), "no passcode yet, so no file: {seen}");
}
