//! Issue 20, point 1: `intune-reset audit REPORT`, the real binary, after a real `run`
//! against a `simulate` process that keeps Intune's audit lists.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::common::read_report;
use crate::common::tenant::{
    CLIENT, TENANT, Tenant, bin, ios_id, ios_job, lock_dir, run_cmd, wait_for,
};

const LIMIT: Duration = Duration::from_secs(120);
/// The two Macs every `ios_job` ends with.
const MACS: [&str; 2] = [
    "00000001-bbbb-4000-8000-000000000001",
    "00000002-bbbb-4000-8000-000000000002",
];

fn audit_cmd(tenant: &Tenant, report: &Path, extra: &[&str]) -> Command {
    follow_up_cmd("audit", tenant, report, extra)
}

/// `intune-reset COMMAND REPORT` against `tenant`, signed in as the run was.
fn follow_up_cmd(command: &str, tenant: &Tenant, report: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg(command)
        .arg(report)
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .args(extra)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", "audit-test-secret")
        .env("INTUNE_RESET_LOCK_DIR", lock_dir())
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `n` iPhones through `run` against `tenant`; the run must end with exit 0.
fn run(tenant: &Tenant, job: &Path, report: &Path) {
    let mut child = run_cmd(tenant, &[job], report, &["--timeout", "1s"])
        .spawn()
        .expect("the run starts");
    let out = wait_for(&mut child, LIMIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn audit(tenant: &Tenant, report: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut child = audit_cmd(tenant, report, extra)
        .spawn()
        .expect("the audit starts");
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `(device_id, verdict, matched_by)` of every audit report row, in order.
fn verdicts(path: &Path) -> Vec<(String, String, String)> {
    read_report(path)
        .into_iter()
        .map(|r| {
            (
                r["device_id"].clone(),
                r["verdict"].clone(),
                r["matched_by"].clone(),
            )
        })
        .collect()
}

fn lossy_tenant(job: &Path, log: &Path, extra: &[&str]) -> Tenant {
    let mut flags = vec!["--no-limits", "--fault", "drop-after=0.3", "--seed", "1"];
    flags.extend_from_slice(extra);
    Tenant::start(&[job], log, &flags)
}

#[test]
fn regression_20_1_every_reset_of_a_run_with_lost_answers_is_confirmed_by_its_correlation_id() {
    let dir = TempDir::new().expect("a temporary folder");
    let job = ios_job(dir.path(), 10);
    let log = dir.path().join("sim.jsonl");
    let tenant = lossy_tenant(&job, &log, &[]);
    let report = dir.path().join("run.csv");
    run(&tenant, &job, &report);
    let lost = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "resetPasscode" && e["effect"] == true && e["status"].is_null())
        .count();
    assert!(
        lost >= 1,
        "the seed loses an answer after its reset took effect"
    );
    let (code, stderr) = audit(&tenant, &report, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let rows = verdicts(&dir.path().join("run.audit.csv"));
    let mut expected: Vec<(String, String, String)> = (0..10)
        .map(|i| (ios_id(i), "confirmed".into(), "correlation_id".into()))
        .collect();
    // The job's two Macs are ineligible: nothing sent, nothing recorded.
    for mac in MACS {
        expected.push((mac.into(), "none".into(), String::new()));
    }
    assert_eq!(rows, expected, "{stderr}");
    assert!(stderr.contains("confirmed"), "{stderr}");
    assert!(stderr.contains("audit report: "), "{stderr}");
}

#[test]
fn regression_20_1_correlation_ids_that_match_nothing_fall_back_to_device_identity_and_time() {
    let dir = TempDir::new().expect("a temporary folder");
    let job = ios_job(dir.path(), 6);
    let tenant = lossy_tenant(
        &job,
        &dir.path().join("sim.jsonl"),
        &["--audit-correlation", "mismatch"],
    );
    let report = dir.path().join("run.csv");
    run(&tenant, &job, &report);
    let (code, stderr) = audit(&tenant, &report, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let rows = verdicts(&dir.path().join("run.audit.csv"));
    assert_eq!(rows.len(), 8, "6 iPhones and the job's 2 Macs");
    assert!(
        rows[..6]
            .iter()
            .all(|(_, v, m)| v == "confirmed" && m == "device_and_time"),
        "{rows:?}"
    );
    assert!(rows[6..].iter().all(|(_, v, _)| v == "none"), "{rows:?}");
}

/// Resets `device` in `tenant` as another app registration: another admin's tool.
fn reset_as_another_app(tenant: &Tenant, device: &str) {
    crate::sim::install_crypto();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let answer: Value = client
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", tenant.url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "99999999-8888-4777-8666-555555555555"),
                ("client_secret", "another-tool"),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .expect("the token endpoint answers")
            .json()
            .await
            .expect("a token answer");
        let token = answer["access_token"].as_str().expect("a token");
        let status = client
            .post(format!(
                "{}/v1.0/deviceManagement/managedDevices/{device}/resetPasscode",
                tenant.url
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("the reset is answered")
            .status();
        assert_eq!(status.as_u16(), 204);
    });
}

#[test]
fn regression_20_1_another_tools_reset_in_the_runs_span_makes_its_device_twice() {
    let dir = TempDir::new().expect("a temporary folder");
    let job = ios_job(dir.path(), 4);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &["--no-limits"]);
    let report = dir.path().join("run.csv");
    run(&tenant, &job, &report);
    reset_as_another_app(&tenant, &ios_id(2));
    let (code, stderr) = audit(&tenant, &report, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let rows = verdicts(&dir.path().join("run.audit.csv"));
    let twice: Vec<&String> = rows
        .iter()
        .filter(|(_, v, _)| v == "twice")
        .map(|(d, _, _)| d)
        .collect();
    assert_eq!(twice, [&ios_id(2)], "{rows:?}");
    assert!(stderr.contains("twice: "), "{stderr}");
    assert!(stderr.contains("next steps:"), "{stderr}");
}

#[test]
fn regression_20_a_denied_audit_read_exits_3_naming_the_permission_and_writes_no_report() {
    let dir = TempDir::new().expect("a temporary folder");
    let job = ios_job(dir.path(), 3);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--deny-audit-read"],
    );
    let report = dir.path().join("run.csv");
    run(&tenant, &job, &report);
    let (code, stderr) = audit(&tenant, &report, &[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("DeviceManagementApps.Read.All"), "{stderr}");
    assert!(!dir.path().join("run.audit.csv").exists());
}

#[test]
fn regression_20_a_report_without_its_ledger_exits_2_before_signing_in() {
    let dir = TempDir::new().expect("a temporary folder");
    let job = ios_job(dir.path(), 2);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &["--no-limits"]);
    let report = dir.path().join("run.csv");
    run(&tenant, &job, &report);
    let ledger = dir.path().join("run.csv.ledger");
    std::fs::rename(&ledger, dir.path().join("kept.ledger")).expect("the ledger moves");
    let (code, stderr) = audit(&tenant, &report, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("has no ledger beside it"), "{stderr}");
    let (_, log) = tenant.stop();
    assert_eq!(
        log.lines().filter(|l| l.contains("auditEvents")).count(),
        0,
        "nothing was read"
    );
}

#[test]
fn regression_20_1_status_with_audit_follows_the_resets_then_reconciles_them() {
    let dir = TempDir::new().expect("a temporary folder");
    let job = ios_job(dir.path(), 4);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let report = dir.path().join("run.csv");
    run(&tenant, &job, &report);
    let mut child = follow_up_cmd("status", &tenant, &report, &["--audit"])
        .spawn()
        .expect("status starts");
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(dir.path().join("run.status.csv").is_file(), "{stderr}");
    let rows = verdicts(&dir.path().join("run.audit.csv"));
    assert_eq!(
        rows.iter().filter(|(_, v, _)| v == "confirmed").count(),
        4,
        "{rows:?}"
    );
    let status_at = stderr.find("report: ").expect("the status summary");
    let audit_at = stderr.find("audit of ").expect("the audit summary");
    assert!(
        status_at < audit_at,
        "the audit follows the status: {stderr}"
    );
}

#[test]
fn regression_20_1_status_with_a_denied_audit_exits_3_after_writing_the_status_report() {
    let dir = TempDir::new().expect("a temporary folder");
    let job = ios_job(dir.path(), 2);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0", "--deny-audit-read"],
    );
    let report = dir.path().join("run.csv");
    run(&tenant, &job, &report);
    let mut child = follow_up_cmd("status", &tenant, &report, &["--audit"])
        .spawn()
        .expect("status starts");
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(dir.path().join("run.status.csv").is_file(), "{stderr}");
    assert!(stderr.contains("DeviceManagementApps.Read.All"), "{stderr}");
}

#[test]
fn regression_20_1_run_follow_with_audit_ends_with_the_runs_audit() {
    let dir = TempDir::new().expect("a temporary folder");
    let job = ios_job(dir.path(), 4);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let report = dir.path().join("run.csv");
    let mut child = run_cmd(&tenant, &[&job], &report, &["--follow", "1m", "--audit"])
        .spawn()
        .expect("the run starts");
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows = verdicts(&dir.path().join("run.audit.csv"));
    assert_eq!(
        rows.iter().filter(|(_, v, _)| v == "confirmed").count(),
        4,
        "{rows:?}"
    );
    let followed_at = stderr.find("followed:").expect("the follow's summary");
    let audit_at = stderr.find("audit of ").expect("the audit's summary");
    assert!(followed_at < audit_at, "{stderr}");
}
