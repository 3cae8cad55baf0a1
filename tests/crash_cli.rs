//! Crashes, interruptions and overlapping runs, with the real binaries: a `simulate`
//! process as the tenant, `run` processes killed and resumed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::common::{Row, read_report};

const TENANT: &str = intune_reset::sim::DEFAULT_TENANT_ID;
const CLIENT: &str = "3e5c7a9b-1d2f-4a6b-8c0d-2e4f6a8b0c1d";

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("intune-reset")
}

/// A `simulate` process serving `inventory`; killed when dropped.
struct Tenant {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Tenant {
    fn start(inventory: &Path, log: &Path, extra: &[&str]) -> Tenant {
        let mut child = Command::new(bin())
            .args(["simulate", "--inventory"])
            .arg(inventory)
            .arg("--log")
            .arg(log)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        Tenant {
            child,
            url,
            log: log.to_owned(),
        }
    }

    /// Successful resets per device, from the simulator's request log.
    fn resets(&self) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        for line in std::fs::read_to_string(&self.log).unwrap().lines() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            if e["kind"] == "resetPasscode" && e["status"] == 204 {
                *out.entry(e["device"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        out
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_cmd(tenant: &Tenant, job: &Path, report: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg(job)
        .args([
            "--yes",
            "--action",
            "auto",
            "--graph-url",
            &tenant.url,
            "--authority-url",
            &tenant.url,
        ])
        .arg("--report")
        .arg(report)
        .args(extra)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", "crash-test-secret")
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// `n` iOS devices with Intune ids, plus two macOS ones (never touched).
fn job(dir: &Path, n: usize) -> PathBuf {
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{:08x}-aaaa-4000-8000-{:012x},iPhone {i},iOS,17.5\n",
            i + 1,
            i + 1
        ));
    }
    csv.push_str("00000001-bbbb-4000-8000-000000000001,Mac 1,macOS,15.1\n");
    csv.push_str("00000002-bbbb-4000-8000-000000000002,Mac 2,macOS,15.1\n");
    let path = dir.join("job.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn wait_for(child: &mut Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < limit,
            "the run did not finish in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        e.read_to_string(&mut stderr).unwrap();
    }
    std::process::Output {
        status: child.wait().unwrap(),
        stdout: vec![],
        stderr: stderr.into_bytes(),
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// One report row per job row, each exactly once.
fn assert_complete(rows: &[Row], job_rows: usize) {
    let mut seen: Vec<&str> = rows.iter().map(|r| r["row"].as_str()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), rows.len(), "a row appears twice");
    assert_eq!(rows.len(), job_rows, "every job row appears");
}

#[test]
fn killed_with_sigkill_then_resumed_resets_every_device_exactly_once() {
    let mut confirmed_on_resume = 0;
    for kill_after in [Duration::from_millis(1200), Duration::from_millis(2700)] {
        let dir = TempDir::new().unwrap();
        let job = job(dir.path(), 40);
        // Slow answers keep several resets on the wire at any moment: the kill lands
        // between "sent" and "answered" for some of them.
        let tenant = Tenant::start(
            &job,
            &dir.path().join("sim.jsonl"),
            &["--latency-ms", "250", "--jitter-ms", "150"],
        );
        let report = dir.path().join("report.csv");
        let mut first = run_cmd(
            &tenant,
            &job,
            &report,
            &["--write-rate", "12", "--timeout", "2s"],
        )
        .spawn()
        .unwrap();
        std::thread::sleep(kill_after);
        signal(&first, "-KILL");
        let _ = first.wait();
        let before = read_report(&report).len();
        assert!(
            before < 42,
            "the run was killed before it finished ({before} rows)"
        );

        let mut resumed = run_cmd(
            &tenant,
            &job,
            &report,
            &["--resume", "--write-rate", "12", "--timeout", "2s"],
        )
        .spawn()
        .unwrap();
        let out = wait_for(&mut resumed, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("taking over the lock"),
            "the dead run's lock is taken over: {stderr}"
        );

        let rows = read_report(&report);
        assert_complete(&rows, 42);
        assert_eq!(
            rows.iter().filter(|r| r["outcome"] == "succeeded").count(),
            40
        );
        let resets = tenant.resets();
        assert_eq!(resets.len(), 40, "every eligible device was reset");
        let twice: Vec<_> = resets.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "reset more than once after a kill at {kill_after:?}: {twice:?}"
        );
        confirmed_on_resume += rows
            .iter()
            .filter(|r| r["detail"].starts_with("confirmed on resume"))
            .count();
    }
    assert!(
        confirmed_on_resume > 0,
        "resets in flight at the kill were confirmed through deviceActionResults"
    );
}

#[test]
fn sigterm_stops_dispatching_exits_3_and_resume_finishes_the_job() {
    let dir = TempDir::new().unwrap();
    let job = job(dir.path(), 40);
    let tenant = Tenant::start(&job, &dir.path().join("sim.jsonl"), &["--latency-ms", "30"]);
    let report = dir.path().join("report.csv");
    let mut run = run_cmd(&tenant, &job, &report, &["--write-rate", "10"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(&run, "-TERM");
    let out = wait_for(&mut run, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stderr.contains("not_attempted"),
        "the summary counts what was left: {stderr}"
    );
    let rows = read_report(&report);
    assert_complete(&rows, 42);
    let left = rows
        .iter()
        .filter(|r| r["outcome"] == "not_attempted")
        .count();
    assert!(left > 0, "some rows were left for later");
    assert!(
        !dir.path().join("job.lock").exists(),
        "the lock is released"
    );

    let mut resumed = run_cmd(&tenant, &job, &report, &["--resume"])
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
    assert_complete(&rows, 42);
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
    let tenant = Tenant::start(&job, &dir.path().join("sim.jsonl"), &[]);
    let mut first = run_cmd(
        &tenant,
        &job,
        &dir.path().join("a.csv"),
        &["--write-rate", "5"],
    )
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let second = run_cmd(&tenant, &job, &dir.path().join("b.csv"), &[])
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
    signal(&first, "-KILL");
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
    let report = dir.path().join("report.csv");
    let out = run_cmd(&tenant, &job, &report, &[]).output().unwrap();
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
    let tenant = Tenant::start(&job, &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    std::fs::write(&report, "the record of an earlier run\n").unwrap();
    let out = run_cmd(&tenant, &job, &report, &[]).output().unwrap();
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
    let tenant = Tenant::start(&job, &dir.path().join("sim.jsonl"), &["--deny-app", CLIENT]);
    let report = dir.path().join("report.csv");
    let out = run_cmd(&tenant, &job, &report, &["--concurrency", "4"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("DeviceManagementManagedDevices.PrivilegedOperations.All"),
        "{stderr}"
    );
    let rows = read_report(&report);
    assert_complete(&rows, 32);
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
