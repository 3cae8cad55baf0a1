//! Crashes, interruptions and overlapping runs, with the real binaries: a `simulate`
//! process as the tenant, `run` processes killed and resumed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::common::read_report;
use crate::common::tenant::{
    CLIENT, Tenant, assert_complete, bin, ios_job, ledger_of, run_cmd, signal, wait_for,
    wait_for_ledger,
};

fn job(dir: &Path, n: usize) -> std::path::PathBuf {
    ios_job(dir, n)
}

#[test]
fn killed_with_sigkill_then_resumed_resets_every_device_exactly_once() {
    // Killed at the 5th and at the 25th send the ledger records: the moment is an
    // observable event, never a sleep.
    for kill_at in [5, 25] {
        let dir = TempDir::new().unwrap();
        let job = job(dir.path(), 40);
        // Slow answers keep several resets on the wire at any moment: the kill lands
        // between "sent" and "answered" for some of them.
        let tenant = Tenant::start(
            &[&job],
            &dir.path().join("sim.jsonl"),
            &["--latency-ms", "250", "--jitter-ms", "150"],
        );
        let report = dir.path().join("report.csv");
        let ledger = ledger_of(&report);
        let mut first = run_cmd(
            &tenant,
            &[&job],
            &report,
            &["--write-rate", "12", "--timeout", "1s"],
        )
        .spawn()
        .unwrap();
        wait_for_ledger(
            &mut first,
            &ledger,
            "send",
            kill_at,
            Duration::from_secs(60),
        );
        signal(&mut first, "-KILL");
        let _ = first.wait();
        let open = open_rows(&ledger);

        let mut resumed = run_cmd(
            &tenant,
            &[&job],
            &report,
            &["--resume", "--write-rate", "12", "--timeout", "1s"],
        )
        .spawn()
        .unwrap();
        let out = wait_for(&mut resumed, Duration::from_secs(90));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");

        let rows = read_report(&report);
        assert_complete(&rows, 42, 1);
        assert_eq!(
            rows.iter().filter(|r| r["outcome"] == "succeeded").count(),
            40
        );
        let resets = tenant.resets();
        assert_eq!(resets.len(), 40, "every eligible device was reset");
        let twice: Vec<_> = resets.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "reset more than once after a kill at send {kill_at}: {twice:?}"
        );
        // Each send the kill left open was settled by the resume: confirmed through
        // deviceActionResults, or sent once more because it had not reached Graph.
        // (How many were open depends on the machine's speed; what happened to each
        // does not.)
        for row in rows.iter().filter(|r| open.contains(&r["row"])) {
            assert!(
                row["detail"].starts_with("confirmed on resume") || row["attempts"] == "2",
                "an open send of row {} ended without being settled: {:?}",
                row["row"],
                row
            );
        }
    }
}

/// The rows with a `send` and no `settled` line in the ledger: sends whose fate the
/// kill left unknown.
fn open_rows(ledger: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(ledger).unwrap_or_default();
    let mut open = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let row = event["row"].to_string();
        match event["event"].as_str() {
            Some("send") => {
                open.insert(row);
            }
            Some("settled") => {
                open.remove(&row);
            }
            _ => {}
        }
    }
    open.into_iter().collect()
}

#[cfg(unix)]
#[test]
fn sigterm_stops_dispatching_exits_3_and_resume_finishes_the_job() {
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 40);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--latency-ms", "30"],
    );
    let report = dir.path().join("report.csv");
    let mut run = run_cmd(&tenant, &[&job], &report, &["--write-rate", "10"])
        .spawn()
        .unwrap();
    wait_for_ledger(
        &mut run,
        &ledger_of(&report),
        "settled",
        5,
        Duration::from_secs(60),
    );
    signal(&mut run, "-TERM");
    let out = wait_for(&mut run, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stderr.contains("not_attempted"),
        "the summary counts what was left: {stderr}"
    );
    let rows = read_report(&report);
    assert_complete(&rows, 42, 1);
    let order: Vec<u64> = rows.iter().map(|r| r["row"].parse().unwrap()).collect();
    assert!(
        order.is_sorted(),
        "an interrupted run still ends with its report in input order: {order:?}"
    );
    let left = rows
        .iter()
        .filter(|r| r["outcome"] == "not_attempted")
        .count();
    assert!(left > 0, "some rows were left for later");

    // The OS released the lock with the process: the resume takes it at once.
    let mut resumed = run_cmd(&tenant, &[&job], &report, &["--resume"])
        .spawn()
        .unwrap();
    let out = wait_for(&mut resumed, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_report(&report);
    assert_complete(&rows, 42, 1);
    assert_eq!(
        rows.iter().filter(|r| r["outcome"] == "succeeded").count(),
        40
    );
    assert!(tenant.resets().values().all(|n| *n == 1));
}

#[test]
fn a_second_run_of_the_same_job_is_refused_naming_the_first() {
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 30);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let a = dir.path().join("a.csv");
    let mut first = run_cmd(&tenant, &[&job], &a, &["--write-rate", "5"])
        .spawn()
        .unwrap();
    // The first run holds the lock once its ledger has begun.
    wait_for_ledger(
        &mut first,
        &ledger_of(&a),
        "begin",
        1,
        Duration::from_secs(30),
    );
    let second = run_cmd(&tenant, &[&job], &dir.path().join("b.csv"), &[])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("process {}", first.id())),
        "{stderr}"
    );
    assert!(
        !dir.path().join("b.csv").exists(),
        "the second run wrote nothing"
    );
    signal(&mut first, "-KILL");
    let _ = first.wait();
}

#[test]
fn a_wrong_client_secret_stops_before_any_device_with_entras_code() {
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 5);
    let mut child = Command::new(bin())
        .args([
            "simulate",
            "--client-secret-env",
            "SIM_SECRET",
            "--inventory",
        ])
        .arg(&job)
        .env("SIM_SECRET", "the-right-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let tenant = Tenant {
        url: first
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned(),
        child,
        log: dir.path().join("unused.jsonl"),
    };
    let job = job.as_path();
    let report = dir.path().join("report.csv");
    let out = run_cmd(&tenant, &[job], &report, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("AADSTS7000215"), "{stderr}");
    assert!(
        !stderr.contains("crash-test-secret"),
        "the secret is never echoed: {stderr}"
    );
    assert!(!report.exists(), "nothing was written");
}

#[test]
fn an_existing_report_is_never_overwritten_by_a_new_run() {
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 3);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    std::fs::write(&report, "the record of an earlier run\n").unwrap();
    let out = run_cmd(&tenant, &[&job], &report, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("already exists") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        "the record of an earlier run\n"
    );
    assert!(tenant.resets().is_empty(), "nothing was sent");
}

#[test]
fn a_missing_permission_exits_3_naming_it_and_leaves_the_rest_not_attempted() {
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 30);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--deny-app", CLIENT],
    );
    let report = dir.path().join("report.csv");
    let out = run_cmd(&tenant, &[&job], &report, &["--concurrency", "4"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("DeviceManagementManagedDevices.PrivilegedOperations.All"),
        "{stderr}"
    );
    let rows = read_report(&report);
    assert_complete(&rows, 32, 1);
    let not_attempted = rows
        .iter()
        .filter(|r| r["outcome"] == "not_attempted")
        .count();
    assert!(
        not_attempted >= 26,
        "only the first few devices were tried: {not_attempted}"
    );
    assert!(tenant.resets().is_empty());
}
