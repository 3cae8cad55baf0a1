//! Issue 18: with `--log-format json` every line on stderr is one JSON object, for every
//! command and every ending; without a terminal the run's waits are logged with until
//! when. The real binary, against a `simulate` process.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::common::tenant::{CLIENT, Tenant, bin, ios_id, ios_job, run_cmd, wait_for};

const LIMIT: Duration = Duration::from_secs(120);
const SECRET: &str = "crash-test-secret";

/// Every line of `stderr` is one JSON object shaped as a log event; returns them.
fn json_lines(what: &str, stderr: &str) -> Vec<Value> {
    assert!(!stderr.trim().is_empty(), "{what}: nothing on stderr");
    assert!(
        !stderr.contains(SECRET),
        "{what}: the secret leaked: {stderr}"
    );
    stderr
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{what}: not one JSON object ({e}): {line}"));
            assert!(v["level"].is_string(), "{what}: no level: {line}");
            assert!(v["timestamp"].is_string(), "{what}: no timestamp: {line}");
            assert!(
                v["fields"]["message"].is_string(),
                "{what}: no message: {line}"
            );
            v
        })
        .collect()
}

fn finished(cmd: &mut Command) -> Output {
    let mut child = cmd.spawn().expect("the run starts");
    wait_for(&mut child, LIMIT)
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn message<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v["fields"]["message"] == message)
        .collect()
}

fn json_cmd(tenant: &Tenant, job: &Path, report: &Path, extra: &[&str]) -> Command {
    let mut cmd = run_cmd(tenant, &[job], report, extra);
    cmd.args(["--log-format", "json"]);
    cmd
}

#[test]
fn regression_18_every_stderr_line_is_json_with_log_format_json() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 3);
    let log = dir.path().join("sim.jsonl");
    let tenant = Tenant::start(&[&job], &log, &["--log-format", "json"]);

    // Success (exit 0): the summary is one object, each next step one with its command.
    let report = dir.path().join("report.csv");
    let out = finished(&mut json_cmd(&tenant, &job, &report, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = json_lines("run", &text(&out));
    let summary = message(&lines, "summary");
    assert_eq!(summary.len(), 1, "{lines:?}");
    assert_eq!(summary[0]["fields"]["summary"]["outcomes"]["succeeded"], 3);
    let steps = message(&lines, "next step");
    assert!(!steps.is_empty(), "{lines:?}");
    assert!(
        steps.iter().all(|s| s["fields"]["commands"][0]
            .as_str()
            .is_some_and(|c| c.starts_with("intune-reset "))),
        "{steps:?}"
    );

    // Refused (exit 2): the report exists and no --resume.
    let out = finished(&mut json_cmd(&tenant, &job, &report, &[]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let lines = json_lines("refused run", &text(&out));
    assert!(lines.iter().any(|v| v["level"] == "ERROR"), "{lines:?}");

    // Some rows failed (exit 1): a device the tenant does not have.
    let unknown = dir.path().join("unknown.csv");
    std::fs::write(
        &unknown,
        format!(
            "id,deviceName,operatingSystem,osVersion\n{},Gone,iOS,17.5\n",
            ios_id(99)
        ),
    )
    .unwrap();
    let out = finished(&mut json_cmd(
        &tenant,
        &unknown,
        &dir.path().join("r1.csv"),
        &[],
    ));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    json_lines("run with a missing device", &text(&out));

    // `status`, `plan`, and usage errors of each command kind.
    let mut status = Command::new(bin());
    status
        .arg("status")
        .arg(&report)
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .args([
            "--tenant",
            crate::common::tenant::TENANT,
            "--client-id",
            CLIENT,
        ])
        .args(["--log-format", "json"])
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let out = finished(&mut status);
    let lines = json_lines("status", &text(&out));
    assert_eq!(message(&lines, "summary").len(), 1, "{lines:?}");
    let runs: [(&str, Vec<&str>, i32); 5] = [
        ("plan", vec!["plan", "--log-format", "json"], 0),
        (
            "plan of a missing file",
            vec!["plan", "--log-format=json", "missing.csv"],
            2,
        ),
        (
            "rules usage",
            vec!["rules", "--format", "bogus", "--log-format", "json"],
            2,
        ),
        (
            "run usage",
            vec!["--log-format", "json", "run", "--bogus"],
            2,
        ),
        (
            "simulate usage",
            vec!["simulate", "--log-format", "json", "--seed", "x"],
            2,
        ),
    ];
    for (what, args, code) in runs {
        let mut cmd = Command::new(bin());
        cmd.current_dir(dir.path()).args(args);
        if what == "plan" {
            cmd.arg(&job)
                .arg("--report")
                .arg(dir.path().join("plan.csv"));
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{what}: {}", text(&out));
        let lines = json_lines(what, &text(&out));
        if code == 2 {
            assert!(
                lines.iter().all(|v| v["level"] == "ERROR"),
                "{what}: {lines:?}"
            );
        }
    }

    // The simulator's own stderr, its summary included.
    let (_, sim_stderr) = tenant.stop();
    #[cfg(unix)]
    assert!(sim_stderr.contains("simulator summary"), "{sim_stderr}");
    json_lines("simulate", &sim_stderr);
}

#[test]
fn regression_18_an_aborted_or_interrupted_run_logs_only_json_lines() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 3);
    // Aborted (exit 3): the app lacks the permission.
    let denied = Tenant::start(
        &[&job],
        &dir.path().join("denied.jsonl"),
        &["--deny-app", CLIENT],
    );
    let out = finished(&mut json_cmd(&denied, &job, &dir.path().join("r.csv"), &[]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let lines = json_lines("aborted run", &text(&out));
    assert!(
        lines.iter().any(|v| v["level"] == "ERROR"
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("PrivilegedOperations"))),
        "{lines:?}"
    );

    // Interrupted (exit 3) while the follow waits for its next pass.
    #[cfg(unix)]
    {
        let slow = Tenant::start(
            &[&job],
            &dir.path().join("slow.jsonl"),
            &["--no-limits", "--action-delay", "3600"],
        );
        let child = json_cmd(&slow, &job, &dir.path().join("f.csv"), &["--follow", "10m"])
            .spawn()
            .unwrap();
        let (code, seen) =
            crate::common::tenant::signal_at_line(child, "still pending; reading again", "-TERM");
        assert_eq!(code, Some(3), "{seen}");
        let lines = json_lines("interrupted follow", &seen);
        assert!(
            lines.iter().any(|v| v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("next pass at") && m.ends_with(" UTC"))),
            "the follow's wait says until when: {seen}"
        );
        assert_eq!(
            message(&lines, "summary").len(),
            2,
            "the run's and the follow's: {seen}"
        );
    }
}

/// Without a terminal there is no bar: each wait is logged once when it starts, with
/// until when.
#[test]
fn regression_18_waits_are_logged_with_until_when_without_a_terminal() {
    let dir = TempDir::new().unwrap();
    std::fs::create_dir(dir.path().join("three")).unwrap();
    let job = ios_job(dir.path(), 10);
    // Some answers are lost after the reset took effect (the seed fixes which): each
    // such reset is settled.
    let lossy = Tenant::start(
        &[&job],
        &dir.path().join("lossy.jsonl"),
        &["--no-limits", "--fault", "drop-after=0.3", "--seed", "1"],
    );
    let out = finished(&mut run_cmd(
        &lossy,
        &[&job],
        &dir.path().join("r.csv"),
        &["--timeout", "1s"],
    ));
    let stderr = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("settling a lost answer until ") && stderr.contains(" UTC ("),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET));
    // One write per window: the second reset meets Graph's 429 and everyone pauses.
    let tight = Tenant::start(
        &[&job],
        &dir.path().join("tight.jsonl"),
        &["--write-limit", "1", "--window", "1"],
    );
    let three = ios_job(&dir.path().join("three"), 3);
    let out = finished(&mut run_cmd(
        &tight,
        &[&three],
        &dir.path().join("t.csv"),
        &[],
    ));
    let stderr = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("paused by Graph until "), "{stderr}");
}
