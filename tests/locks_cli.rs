//! One run per tenant and app at a time, files that are the runner's own, paths that
//! never name one file twice, and exit codes once resets were sent (issue 17, points
//! 3, 6, 8, 10 and 11): the real binary against a `simulate` process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::common::tenant::{
    Tenant, ios_id, ios_job, ledger_events, ledger_of, run_cmd, wait_for, wait_for_ledger,
};

const LIMIT: Duration = Duration::from_secs(120);

fn finish(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    let mut child = cmd.spawn().unwrap();
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The devices whose reset took effect, in the order the simulator carried them out.
fn reset_order(tenant: &Tenant) -> Vec<String> {
    let text = std::fs::read_to_string(&tenant.log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| {
            e["kind"] == "resetPasscode"
                && e.get("effect")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(e["status"] == 204)
        })
        .map(|e| e["device"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// A job of iOS devices `range` (Intune ids), written as `dir/name`.
fn job_of(dir: &Path, name: &str, range: std::ops::Range<usize>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion\n");
    for i in range {
        csv.push_str(&format!("{},iPhone {i},iOS,17.5\n", ios_id(i)));
    }
    crate::common::write(dir, name, csv)
}

#[test]
fn regression_17_3_two_runs_of_one_tenant_from_two_folders_never_both_act() {
    let dir = TempDir::new().unwrap();
    // The same job, twice: another folder, another file name, another report name.
    let first_job = job_of(&dir.path().join("alice"), "job.csv", 0..6);
    let second_job = job_of(&dir.path().join("bob"), "incident.csv", 0..6);
    let tenant = Tenant::start(&[&first_job], &dir.path().join("sim.jsonl"), &[]);
    let first_report = dir.path().join("alice").join("report.csv");
    let second_report = dir.path().join("bob").join("tonight.csv");
    let slow = ["--write-rate", "2"];
    let mut first = run_cmd(&tenant, &[&first_job], &first_report, &slow)
        .spawn()
        .unwrap();
    wait_for_ledger(&mut first, &ledger_of(&first_report), "send", 1, LIMIT);
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&second_job], &second_report, &slow));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("in progress"), "{stderr}");
    assert!(stderr.contains("--wait-for-lock"), "{stderr}");
    if cfg!(unix) {
        // The first run, as its lock note names it (Windows: unreadable while held).
        assert!(
            stderr.contains(&format!("process {}", first.id())),
            "{stderr}"
        );
        assert!(stderr.contains("report.csv"), "{stderr}");
        assert!(stderr.contains("started 20"), "{stderr}");
    }
    assert!(
        !ledger_of(&second_report).exists(),
        "the second run recorded nothing: it sent nothing"
    );
    let out = wait_for(&mut first, LIMIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resets = tenant.resets();
    assert_eq!(resets.len(), 6, "{resets:?}");
    assert!(resets.values().all(|n| *n == 1), "{resets:?}");
}

#[test]
fn regression_17_3_a_run_told_to_wait_for_the_lock_starts_when_the_first_ends() {
    let dir = TempDir::new().unwrap();
    let first_job = job_of(&dir.path().join("alice"), "job.csv", 0..4);
    let second_job = job_of(&dir.path().join("bob"), "other.csv", 10..13);
    let tenant = Tenant::start(
        &[&first_job, &second_job],
        &dir.path().join("sim.jsonl"),
        &[],
    );
    let first_report = dir.path().join("alice").join("report.csv");
    let second_report = dir.path().join("bob").join("report.csv");
    let mut first = run_cmd(
        &tenant,
        &[&first_job],
        &first_report,
        &["--write-rate", "2"],
    )
    .spawn()
    .unwrap();
    wait_for_ledger(&mut first, &ledger_of(&first_report), "send", 1, LIMIT);
    let mut second = run_cmd(
        &tenant,
        &[&second_job],
        &second_report,
        &["--wait-for-lock"],
    )
    .spawn()
    .unwrap();
    // It says that it waits, and waits: nothing of its own is on record yet.
    let mut lines = BufReader::new(second.stderr.take().unwrap()).lines();
    let mut said = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("waiting for it to finish") {
            break;
        }
    }
    assert!(said.contains("waiting for it to finish"), "{said}");
    assert_eq!(ledger_events(&ledger_of(&second_report), "send"), 0);
    let out = wait_for(&mut first, LIMIT);
    assert_eq!(out.status.code(), Some(0));
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = second.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{said}{}", rest.join("\n"));
    // Every reset of the first run was carried out before any of the second's.
    let order = reset_order(&tenant);
    let firsts: Vec<String> = (0..4).map(ios_id).collect();
    let seconds: Vec<String> = (10..13).map(ios_id).collect();
    assert_eq!(order.len(), 7, "{order:?}");
    assert!(order[..4].iter().all(|d| firsts.contains(d)), "{order:?}");
    assert!(order[4..].iter().all(|d| seconds.contains(d)), "{order:?}");
}

#[test]
fn regression_17_6_a_lock_naming_the_ledger_is_refused_and_the_ledger_kept() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 2);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    let ledger = ledger_of(&report);
    let before = std::fs::read(&ledger).unwrap();
    let lock = ledger.to_string_lossy().into_owned();
    let (code, stderr) = finish(&mut run_cmd(
        &tenant,
        &[&job],
        &report,
        &["--resume", "--lock", &lock],
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--lock"), "{stderr}");
    assert!(stderr.contains("the ledger"), "{stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert_eq!(
        std::fs::read(&ledger).unwrap(),
        before,
        "the ledger is kept"
    );
    assert_eq!(tenant.resets().len(), 2);
}

#[test]
fn regression_17_6_a_summary_naming_the_report_is_refused_before_anything_is_sent() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 2);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    // Spelt another way: through a `..`.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let summary = sub.join("..").join("report.csv");
    let summary = summary.to_string_lossy().into_owned();
    let (code, stderr) = finish(&mut run_cmd(
        &tenant,
        &[&job],
        &report,
        &["--summary-json", &summary],
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--summary-json"), "{stderr}");
    assert!(stderr.contains("--report"), "{stderr}");
    assert!(tenant.resets().is_empty(), "nothing was sent");
    assert!(!report.exists() && !ledger_of(&report).exists());
}

#[cfg(unix)]
#[test]
fn regression_17_8_a_passcodes_file_that_is_a_hard_link_or_a_symlink_is_refused() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 2);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    // Another user's header-only passcodes file, reached by a second name.
    let theirs = crate::common::write(
        dir.path(),
        "theirs.csv",
        "device_id,device_name,serial_number,user_principal_name,passcode,generated_at\n",
    );
    let hard = dir.path().join("hard.csv");
    std::fs::hard_link(&theirs, &hard).unwrap();
    let soft = dir.path().join("soft.csv");
    std::os::unix::fs::symlink(&theirs, &soft).unwrap();
    for (link, why) in [(&hard, "hard links"), (&soft, "symbolic link")] {
        let report = dir.path().join(format!("report-{why}.csv"));
        let p = link.to_string_lossy().into_owned();
        let (code, stderr) = finish(&mut run_cmd(
            &tenant,
            &[&job],
            &report,
            &["--follow", "5s", "--passcodes", &p],
        ));
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
        assert!(stderr.contains("nothing was sent"), "{stderr}");
    }
    assert!(tenant.resets().is_empty(), "nothing was sent");
    let after = std::fs::read_to_string(&theirs).unwrap();
    assert!(after.starts_with("device_id,") && after.lines().count() == 1);
}

#[cfg(unix)]
#[test]
fn regression_17_11_a_symlinked_lock_is_refused_and_its_target_unchanged() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 2);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let precious = crate::common::write(dir.path(), "precious.txt", "keep me\n");
    let link = dir.path().join("job.lock");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    let report = dir.path().join("report.csv");
    let (code, stderr) = finish(&mut run_cmd(&tenant, &[&job], &report, &[]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");
    assert!(tenant.resets().is_empty(), "nothing was sent");
}

#[test]
fn regression_17_10_following_that_fails_after_the_resets_exits_3_never_2() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 4);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    let passcodes = dir.path().join("passcodes.csv");
    let p = passcodes.to_string_lossy().into_owned();
    let mut run = run_cmd(
        &tenant,
        &[&job],
        &report,
        &["--write-rate", "4", "--follow", "5s", "--passcodes", &p],
    )
    .spawn()
    .unwrap();
    // Once resets are on their way, the passcodes name is taken by someone else's
    // file: following cannot write there, after the resets were sent.
    wait_for_ledger(&mut run, &ledger_of(&report), "send", 1, LIMIT);
    std::fs::write(&passcodes, "their notes\n").unwrap();
    let out = wait_for(&mut run, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("following the resets failed"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&passcodes).unwrap(),
        "their notes\n"
    );
    assert_eq!(tenant.resets().len(), 4);
}
