//! Never twice, nothing lost, also when a run is interrupted, resumed or fed a broken
//! file (issue 8): one regression test per point, with the real binaries where the
//! point is about processes. Kills happen at a moment an observable event chooses (the
//! n-th line of the run's ledger), never after a sleep.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::common::read_report;
#[cfg(unix)]
use crate::common::tenant::bin;
use crate::common::tenant::{
    CLIENT, Tenant, assert_complete, ios_job, ios_serial, ledger_events, ledger_of, run_cmd,
    signal, wait_for, wait_for_ledger,
};

const LIMIT: Duration = Duration::from_secs(120);

fn count(rows: &[crate::common::Row], outcome: &str) -> usize {
    rows.iter().filter(|r| r["outcome"] == outcome).count()
}

/// Every device in `tenants`' logs was reset exactly once, and there are `n` of them.
fn assert_each_reset_once(tenants: &[&Tenant], n: usize) {
    let mut all = std::collections::BTreeMap::<String, u32>::new();
    for t in tenants {
        for (device, k) in t.resets() {
            *all.entry(device).or_default() += k;
        }
    }
    let twice: Vec<_> = all.iter().filter(|(_, k)| **k > 1).collect();
    assert!(twice.is_empty(), "reset more than once: {twice:?}");
    assert_eq!(all.len(), n, "every eligible device was reset: {all:?}");
}

/// Kills `cmd` with SIGKILL once its ledger holds `sends` send lines.
fn run_and_kill_at(cmd: &mut std::process::Command, report: &Path, sends: usize) {
    let mut child = cmd.spawn().unwrap();
    wait_for_ledger(&mut child, &ledger_of(report), "send", sends, LIMIT);
    signal(&mut child, "-KILL");
    let _ = child.wait();
}

fn finish(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    let mut child = cmd.spawn().unwrap();
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn regression_8_1_the_same_device_named_twice_then_killed_and_resumed_is_reset_once() {
    let dir = TempDir::new().unwrap();
    let export = ios_job(dir.path(), 30);
    // The same devices again, by serial number: each resolves to a device the export
    // names by id.
    let mut serials = String::from("serialNumber\n");
    for i in 0..30 {
        serials.push_str(&format!("{}\n", ios_serial(i)));
    }
    let list = dir.path().join("serials.csv");
    std::fs::write(&list, serials).unwrap();
    let tenant = Tenant::start(
        &[&export],
        &dir.path().join("sim.jsonl"),
        &["--latency-ms", "60"],
    );
    let report = dir.path().join("report.csv");
    let args = ["--write-rate", "12", "--timeout", "1s"];
    run_and_kill_at(
        &mut run_cmd(&tenant, &[&list, &export], &report, &args),
        &report,
        10,
    );
    let resume = [&args[..], &["--resume"]].concat();
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&list, &export], &report, &resume));
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_complete(&rows, 30 + 32, 1);
    assert_eq!(count(&rows, "succeeded"), 30);
    assert_eq!(count(&rows, "duplicate"), 30);
    assert_each_reset_once(&[&tenant], 30);
}

#[test]
fn regression_8_2_a_reset_in_flight_at_a_kill_is_settled_before_anything_is_sent_again() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 8);
    // Graph carries each reset out 3 s after it arrives; the client gives up after 2 s.
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--effect-delay-ms", "3000"],
    );
    let report = dir.path().join("report.csv");
    let args = ["--write-rate", "8", "--timeout", "2s"];
    run_and_kill_at(&mut run_cmd(&tenant, &[&job], &report, &args), &report, 4);
    let resume = [&args[..], &["--resume"]].concat();
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &resume));
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_complete(&rows, 10, 1);
    assert_eq!(count(&rows, "succeeded"), 8);
    assert_each_reset_once(&[&tenant], 8);
    assert!(
        rows.iter()
            .any(|r| r["detail"].starts_with("confirmed on resume")),
        "the resets in flight at the kill were confirmed, not sent again"
    );
}

#[test]
fn regression_8_3_a_kill_before_the_first_report_row_is_resumed() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 6);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--effect-delay-ms", "2500"],
    );
    let report = dir.path().join("report.csv");
    let args = ["--timeout", "2s"];
    run_and_kill_at(&mut run_cmd(&tenant, &[&job], &report, &args), &report, 1);
    // Killed at the first send: no device has a row yet (the two Macs may or may not),
    // and the report already has its header, so it reads as a report.
    assert!(
        std::fs::read(&report)
            .unwrap()
            .starts_with(b"\xEF\xBB\xBFsource,row,"),
        "the header is on disk, not in a buffer"
    );
    let before = read_report(&report);
    assert!(
        before.len() <= 2 && before.iter().all(|r| r["outcome"] == "ineligible"),
        "{before:?}"
    );
    // A new run refuses to replace the record; --resume continues it.
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &args));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let resume = [&args[..], &["--resume"]].concat();
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &resume));
    assert_eq!(code, Some(0), "{stderr}");
    assert_complete(&read_report(&report), 8, 1);
    assert_each_reset_once(&[&tenant], 6);
}

#[test]
fn regression_8_4_a_killed_run_leaves_a_lock_the_next_run_simply_takes() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 12);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    let args = ["--write-rate", "6", "--timeout", "1s"];
    run_and_kill_at(&mut run_cmd(&tenant, &[&job], &report, &args), &report, 3);
    assert!(dir.path().join("job.lock").exists(), "the lock file stays");
    let resume = [&args[..], &["--resume"]].concat();
    let mut first = run_cmd(&tenant, &[&job], &report, &resume).spawn().unwrap();
    wait_for_ledger(&mut first, &ledger_of(&report), "send", 4, LIMIT);
    // While the resume holds the lock, a second resume of the same run is refused.
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &resume));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("in progress"), "{stderr}");
    let out = wait_for(&mut first, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("taking over"), "{stderr}");
    assert_each_reset_once(&[&tenant], 12);
}

#[test]
fn regression_8_5_a_resume_of_a_changed_job_is_refused_naming_the_file() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 20);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    let args = ["--write-rate", "6"];
    run_and_kill_at(&mut run_cmd(&tenant, &[&job], &report, &args), &report, 5);
    // The same file exported again: the same rows in another order.
    let text = std::fs::read_to_string(&job).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    std::fs::write(&job, lines.join("\n") + "\n").unwrap();
    let sent = ledger_events(&ledger_of(&report), "send");
    let resume = [&args[..], &["--resume"]].concat();
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &resume));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("has changed") && stderr.contains(&job.display().to_string()),
        "{stderr}"
    );
    assert_eq!(
        ledger_events(&ledger_of(&report), "send"),
        sent,
        "nothing was sent"
    );
}

#[test]
fn a_resume_with_another_encoding_is_refused_before_anything_is_sent() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 20);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    let args = ["--write-rate", "6"];
    run_and_kill_at(&mut run_cmd(&tenant, &[&job], &report, &args), &report, 5);
    let sent = ledger_events(&ledger_of(&report), "send");
    let resume = [&args[..], &["--resume", "--encoding", "850"]].concat();
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &resume));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--sheet (none) --encoding (detected)")
            && stderr.contains("--encoding OEM 850"),
        "{stderr}"
    );
    assert_eq!(ledger_events(&ledger_of(&report), "send"), sent);
}

#[cfg(unix)]
#[test]
fn regression_8_6_a_job_from_a_pipe_is_read_once_and_max_devices_holds_for_it() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 5);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let shell = |report: &Path, extra: &str| {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg("-c")
            .arg(format!(
                "exec \"$BIN\" run <(cat \"$JOB\") --yes --action auto --graph-url \"$URL\" \
                 --authority-url \"$URL\" --report \"$REPORT\" --lock \"$REPORT.lock\" {extra}"
            ))
            .env("BIN", bin())
            .env("JOB", &job)
            .env("URL", &tenant.url)
            .env("REPORT", report)
            .env("AZURE_TENANT_ID", crate::common::tenant::TENANT)
            .env("AZURE_CLIENT_ID", CLIENT)
            .env("AZURE_CLIENT_SECRET", "pipe-secret")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let capped = dir.path().join("capped.csv");
    let (code, stderr) = finish(&mut shell(&capped, "--max-devices 4"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("more than --max-devices 4"), "{stderr}");
    assert!(tenant.resets().is_empty(), "nothing was sent");

    let report = dir.path().join("report.csv");
    let (code, stderr) = finish(&mut shell(&report, "--max-devices 5"));
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_complete(&rows, 7, 1);
    assert_eq!(count(&rows, "succeeded"), 5);
    assert_each_reset_once(&[&tenant], 5);
}

#[cfg(unix)]
#[test]
fn regression_8_6_a_named_fifo_job_file_is_read_once_and_does_not_hang() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 4);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let fifo = dir.path().join("job-fifo.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // The writer blocks until the run opens the FIFO, writes once, and closes it.
    let text = std::fs::read(&job).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, text))
    };
    let report = dir.path().join("report.csv");
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&fifo], &report, &[]));
    writer.join().unwrap().unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert_complete(&read_report(&report), 6, 1);
    assert_each_reset_once(&[&tenant], 4);
}

#[test]
fn regression_8_7_rows_where_nothing_reached_graph_are_sent_on_resume() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 10);
    // The app lacks the permission: every reset is refused (403), nothing changes.
    let denied = Tenant::start(
        &[&job],
        &dir.path().join("denied.jsonl"),
        &["--deny-app", CLIENT],
    );
    let report = dir.path().join("report.csv");
    let (code, stderr) = finish(&mut run_cmd(&denied, &[&job], &report, &[]));
    assert_eq!(code, Some(3), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(count(&rows, "succeeded"), 0);
    // Granted: the same tenant without the refusal. Graph answers some resets with
    // 503 and --max-attempts 1 gives up on them: not final either.
    let granted = Tenant::start(
        &[&job],
        &dir.path().join("granted.jsonl"),
        &["--fault", "503=0.4", "--seed", "5"],
    );
    let resume = ["--resume", "--max-attempts", "1", "--timeout", "1s"];
    let (code, stderr) = finish(&mut run_cmd(&granted, &[&job], &report, &resume));
    assert_eq!(code, Some(1), "some resets were given up: {stderr}");
    let rows = read_report(&report);
    let failed = count(&rows, "failed");
    assert!(
        failed > 0 && count(&rows, "succeeded") + failed == 10,
        "{rows:?}"
    );
    let fine = Tenant::start(&[&job], &dir.path().join("fine.jsonl"), &[]);
    // A lost answer's settle window is twice the timeout: short on loopback.
    let (code, stderr) = finish(&mut run_cmd(
        &fine,
        &[&job],
        &report,
        &["--resume", "--timeout", "1s"],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_complete(&rows, 12, 1);
    assert_eq!(count(&rows, "succeeded"), 10);
    assert_each_reset_once(&[&denied, &granted, &fine], 10);
}

#[test]
fn regression_8_10_the_same_file_named_twice_killed_and_resumed_loses_no_row() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 20);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    let args = ["--write-rate", "10"];
    run_and_kill_at(
        &mut run_cmd(&tenant, &[&job, &job], &report, &args),
        &report,
        8,
    );
    let resume = [&args[..], &["--resume"]].concat();
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job, &job], &report, &resume));
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_complete(&rows, 2 * 22, 2);
    assert_eq!(count(&rows, "succeeded"), 20);
    // The second naming's rows, the two Macs among them.
    assert_eq!(count(&rows, "duplicate"), 22);
    assert_each_reset_once(&[&tenant], 20);
}

#[test]
fn regression_8_11_a_summary_path_that_cannot_be_written_stops_before_the_first_post() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 4);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    let not_a_folder = crate::common::write(dir.path(), "file.txt", "x");
    let summary = not_a_folder.join("summary.json");
    let mut cmd = run_cmd(&tenant, &[&job], &report, &["--summary-json"]);
    cmd.arg(&summary);
    let (code, stderr) = finish(&mut cmd);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("summary"), "{stderr}");
    assert!(tenant.resets().is_empty(), "nothing was sent");
}

#[cfg(target_os = "linux")]
#[test]
fn regression_8_11_a_summary_that_cannot_be_written_after_resets_exits_3_with_the_summary() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 4);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    // /dev/full opens, and every write to it fails as a full disk does.
    let (code, stderr) = finish(&mut run_cmd(
        &tenant,
        &[&job],
        &report,
        &["--summary-json", "/dev/full"],
    ));
    assert_eq!(code, Some(3), "resets were sent: not exit 2. {stderr}");
    assert!(
        stderr.contains("outcomes:"),
        "the summary is printed: {stderr}"
    );
    assert!(stderr.contains("/dev/full"), "{stderr}");
    assert_each_reset_once(&[&tenant], 4);
}

#[cfg(unix)]
#[test]
fn regression_8_11_a_full_disk_mid_run_stops_sending_exits_3_and_resume_finishes() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 40);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    // A file size limit stands in for a full disk: past 24 KiB every write fails
    // (EFBIG, with SIGXFSZ ignored), first the ledger's or the report's.
    let mut full = std::process::Command::new("bash");
    full.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 24; exec \"$@\"")
        .arg("bash")
        .arg(bin());
    let run = run_cmd(
        &tenant,
        &[&job],
        &report,
        &["--write-rate", "20", "--timeout", "1s"],
    );
    full.args(run.get_args());
    for (k, v) in run.get_envs() {
        match v {
            Some(v) => full.env(k, v),
            None => full.env_remove(k),
        };
    }
    full.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let (code, stderr) = finish(&mut full);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("cannot be written"), "{stderr}");
    assert!(
        stderr.contains("outcomes:"),
        "the summary is printed: {stderr}"
    );
    let (code, stderr) = finish(&mut run_cmd(
        &tenant,
        &[&job],
        &report,
        &["--resume", "--timeout", "1s"],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_complete(&rows, 42, 1);
    assert_eq!(count(&rows, "succeeded"), 40);
    assert_each_reset_once(&[&tenant], 40);
}

/// 30 iPhones: a run killed after 25 sends, then resumed to its end with
/// `--summary-json`: the tenant, the resume's summary and its stderr.
fn killed_at_25_and_resumed(dir: &Path) -> (Tenant, Value, String) {
    let job = ios_job(dir, 30);
    let tenant = Tenant::start(&[&job], &dir.join("sim.jsonl"), &[]);
    let report = dir.join("report.csv");
    run_and_kill_at(
        &mut run_cmd(&tenant, &[&job], &report, &["--write-rate", "15"]),
        &report,
        25,
    );
    let summary = dir.join("summary.json");
    let mut cmd = run_cmd(&tenant, &[&job], &report, &["--resume", "--summary-json"]);
    cmd.arg(&summary);
    let (code, stderr) = finish(&mut cmd);
    assert_eq!(code, Some(0), "{stderr}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    (tenant, s, stderr)
}

#[test]
fn regression_20_2_a_resumed_runs_summary_covers_the_whole_run() {
    let dir = TempDir::new().unwrap();
    let (tenant, s, stderr) = killed_at_25_and_resumed(dir.path());
    let whole = &s["whole_run"];
    let sessions = whole["sessions"].as_array().unwrap();
    assert_eq!(
        sessions.len(),
        2,
        "the first session and the resume: {whole}"
    );
    assert!(
        sessions
            .iter()
            .all(|s| s.as_str().unwrap().contains(" (secret sign-in) in tenant ")),
        "{whole}"
    );
    // Every POST of both sessions: at least one per device (30), the first session's
    // included, where this session's traffic counts only its own.
    let all = whole["posts"].as_u64().unwrap();
    let this = s["run"]["posts"].as_u64().unwrap();
    assert!(all >= 30 && this < all, "{all} in all, {this} now");
    assert!(stderr.contains("whole run: began "), "{stderr}");
    assert!(stderr.contains("this session's traffic: "), "{stderr}");
    assert_each_reset_once(&[&tenant], 30);
}

#[test]
fn regression_8_14_a_resumed_run_reports_the_rate_of_its_own_resets() {
    let dir = TempDir::new().unwrap();
    let (tenant, s, _) = killed_at_25_and_resumed(dir.path());
    let rate = s["run"]["resets_per_second"].as_f64().unwrap();
    let elapsed = s["elapsed_seconds"].as_f64().unwrap();
    let posts = s["run"]["posts"].as_f64().unwrap();
    assert!(posts < 30.0, "the resume sent only what was left: {posts}");
    assert!(
        rate * elapsed <= posts + 0.5,
        "{rate}/s over {elapsed} s counts more resets than this run's {posts} POSTs"
    );
    assert_each_reset_once(&[&tenant], 30);
}
