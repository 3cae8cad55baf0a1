//! Never twice beyond one ledger (issue 17): the real binaries, where a second ledger, a
//! second tenant, a rehearsal or a killed run's pause enters. Kills happen at a moment
//! an observable event chooses (a line of the run's ledger), never after a sleep.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tempfile::TempDir;

use crate::common::intune_reset;
use crate::common::tenant::{
    Tenant, ios_job, ledger_of, run_cmd, signal, wait_for, wait_for_ledger,
};

const LIMIT: Duration = Duration::from_secs(120);
const OTHER_TENANT: &str = "0b7e5a3c-9d1f-4e2a-8c6b-3f5d7e9a1c2b";

fn finish(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    let mut child = cmd.spawn().expect("the run starts");
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The simulator's log lines of `kind` (`resetPasscode`, `get`, ...), in order.
fn logged(tenant: &Tenant, kind: &str) -> Vec<Value> {
    std::fs::read_to_string(&tenant.log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn time_of(text: &Value) -> SystemTime {
    humantime::parse_rfc3339_weak(text.as_str().expect("a time").trim_end_matches('Z'))
        .expect("an RFC 3339 time")
}

fn assert_each_reset_at_most_once(tenant: &Tenant) {
    let twice: Vec<_> = tenant
        .resets()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(twice.is_empty(), "reset more than once: {twice:?}");
}

#[test]
fn regression_17_4_a_rehearsals_ledger_resumed_for_real_is_refused_and_resets_nothing() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 6);
    let report = dir.path().join("incident.csv");
    let rehearsal = intune_reset()
        .arg("run")
        .arg(&job)
        .args(["--simulate", "--yes", "--action", "auto", "--report"])
        .arg(&report)
        .output()
        .expect("the rehearsal runs");
    assert_eq!(rehearsal.status.code(), Some(0));
    let rehearsed = std::fs::read(&report).expect("the rehearsal's report");
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);

    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &["--resume"]));

    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("rehearsal"), "{stderr}");
    assert!(stderr.contains("another --report"), "{stderr}");
    assert!(tenant.resets().is_empty(), "nothing was sent");
    assert_eq!(
        std::fs::read(&report).unwrap(),
        rehearsed,
        "the report is untouched"
    );

    // The real run, under its own report, resets every device once.
    let real = dir.path().join("incident-real.csv");
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &real, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(tenant.resets().len(), 6);
    assert_each_reset_at_most_once(&tenant);
}

#[test]
fn regression_17_4_a_run_resumed_in_another_tenant_is_refused() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 8);
    let home = Tenant::start(&[&job], &dir.path().join("home.jsonl"), &[]);
    let elsewhere = Tenant::start(
        &[&job],
        &dir.path().join("elsewhere.jsonl"),
        &["--tenant", OTHER_TENANT],
    );
    let report = dir.path().join("report.csv");
    // A lost answer settles after twice the timeout: keep that short on loopback.
    let slow = ["--write-rate", "4", "--timeout", "1s"];
    let mut first = run_cmd(&home, &[&job], &report, &slow).spawn().unwrap();
    wait_for_ledger(&mut first, &ledger_of(&report), "send", 2, LIMIT);
    signal(&mut first, "-KILL");
    let _ = first.wait();

    let resume = [&slow[..], &["--resume"]].concat();
    let mut there = run_cmd(&elsewhere, &[&job], &report, &resume);
    let (code, stderr) = finish(there.env("AZURE_TENANT_ID", OTHER_TENANT));

    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(OTHER_TENANT), "{stderr}");
    assert!(elsewhere.resets().is_empty(), "nothing was sent there");

    // Resumed at home, the run finishes: each device once.
    let (code, stderr) = finish(&mut run_cmd(&home, &[&job], &report, &resume));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(home.resets().len(), 8);
    assert_each_reset_at_most_once(&home);
}

/// The `until` of the ledger's last `pause` line.
fn paused_until(ledger: &Path) -> SystemTime {
    let text = std::fs::read_to_string(ledger).expect("the ledger");
    let pause = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "pause")
        .expect("a pause on record");
    time_of(&pause["until"])
}

#[test]
fn regression_17_5_a_run_killed_during_a_429_pause_and_resumed_at_once_waits_it_out() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 10);
    // Three writes per 4 s window: the fourth POST is throttled with a Retry-After.
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--write-limit", "3", "--window", "4"],
    );
    let report = dir.path().join("report.csv");
    let ledger = ledger_of(&report);
    let quick = ["--timeout", "1s"];
    let mut first = run_cmd(&tenant, &[&job], &report, &quick).spawn().unwrap();
    wait_for_ledger(&mut first, &ledger, "pause", 1, LIMIT);
    signal(&mut first, "-KILL");
    let _ = first.wait();
    let until = paused_until(&ledger);

    let resume = [&quick[..], &["--resume"]].concat();
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &resume));

    assert!(matches!(code, Some(0 | 1)), "{stderr}");
    // The simulator writes its log when idle: read after the resume ended.
    let throttled_at = logged(&tenant, "resetPasscode")
        .iter()
        .filter(|e| e["status"] == 429)
        .map(|e| time_of(&e["time"]))
        .min()
        .expect("a 429 on record");
    let inside: Vec<_> = logged(&tenant, "resetPasscode")
        .into_iter()
        .map(|e| time_of(&e["time"]))
        .filter(|t| *t > throttled_at && *t < until)
        .collect();
    assert!(
        inside.is_empty(),
        "{} POSTs went out inside the announced pause",
        inside.len()
    );
    assert_each_reset_at_most_once(&tenant);
}

#[test]
fn regression_17_5_a_resume_with_a_shorter_timeout_settles_with_the_window_the_sends_went_out_under()
 {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 6);
    // Graph carries out each reset 5 s after its POST arrives, and answers then.
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--effect-delay-ms", "5000"],
    );
    let report = dir.path().join("report.csv");
    let mut first = run_cmd(&tenant, &[&job], &report, &["--timeout", "8s"])
        .spawn()
        .unwrap();
    // Killed once every reset is out and none has landed: each send is open, made
    // under an 8 s timeout (settled 16 s after it, long after its reset lands).
    wait_for_ledger(&mut first, &ledger_of(&report), "send", 6, LIMIT);
    signal(&mut first, "-KILL");
    let _ = first.wait();

    // A 1 s timeout would settle each send 2 s after it, before its reset lands, and
    // send it again.
    let resume = ["--timeout", "1s", "--resume"];
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &resume));

    assert_eq!(code, Some(0), "{stderr}");
    assert_each_reset_at_most_once(&tenant);
    assert_eq!(tenant.resets().len(), 6);
}
