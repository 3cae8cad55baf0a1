//! Issue 18, "a rehearsal cannot finish the runbook": a rehearsal's tenant is saved
//! beside its report, and every follow-up it prints (with `--simulate`) goes on in it;
//! a rehearsal's users and groups come from an inventory, so a mistyped UPN is
//! `user_not_found` as in the tenant. The real binary, run as printed.

use std::path::Path;

use tempfile::TempDir;

use crate::common::{count, intune_reset, read_report, write};

/// 40 Android work profiles (each reset generates a passcode, or ends notSupported
/// when the simulated user never activated the reset token) and two iPhones.
fn job(dir: &Path) -> std::path::PathBuf {
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion,deviceType\n");
    for i in 1..=40 {
        csv.push_str(&format!(
            "a1800000-0000-4000-8000-{i:012},Work profile {i},Android,14,androidForWork\n"
        ));
    }
    for i in 1..=2 {
        csv.push_str(&format!(
            "b1800000-0000-4000-8000-{i:012},iPhone {i},iOS,17.5,iPhone\n"
        ));
    }
    write(dir, "job.csv", csv)
}

/// The commands a summary's next steps print, each as its arguments (without the
/// program's name and the "(and the same flags)" note).
fn printed_commands(stderr: &str) -> Vec<Vec<String>> {
    stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("intune-reset "))
        .map(|l| {
            l.split(" (and the same flags)")
                .next()
                .unwrap_or(l)
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// `intune-reset ARGS` in `dir`, to its end: exit code and stderr.
fn run_in(dir: &Path, args: &[String]) -> (Option<i32>, String) {
    let out = intune_reset().current_dir(dir).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn regression_18_a_rehearsal_s_follow_ups_work_as_printed() {
    let dir = TempDir::new().unwrap();
    job(dir.path());
    let (code, stderr) = run_in(
        dir.path(),
        &args(&[
            "run",
            "job.csv",
            "--simulate",
            "--yes",
            "--action",
            "auto",
            "--report",
            "r.csv",
        ]),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.path().join("r.csv.sim.json").is_file(), "{stderr}");
    let follow_ups = printed_commands(&stderr);
    assert_eq!(follow_ups.len(), 2, "{stderr}");
    assert!(
        follow_ups
            .iter()
            .all(|c| c[0] == "status" && c.last().is_some_and(|a| a == "--simulate")),
        "{follow_ups:?}"
    );
    // `status r.csv --wait 30m --simulate`: the resets the run queued, in the run's
    // tenant, are followed to their end (pending 5 s there).
    let wait = follow_ups
        .iter()
        .find(|c| c.contains(&"--wait".to_owned()))
        .expect("a status --wait follow-up");
    let (code, waited) = run_in(dir.path(), wait);
    assert_eq!(
        code,
        Some(1),
        "some work profiles end notSupported: {waited}"
    );
    let states = read_report(&dir.path().join("r.status.csv"));
    let state = |s: &str| states.iter().filter(|r| r["action_state"] == s).count();
    assert_eq!(state("pending"), 0, "{waited}");
    assert_eq!(
        state("not_found_in_results"),
        0,
        "the tenant forgot: {waited}"
    );
    let not_supported = state("notSupported");
    assert!(not_supported > 0 && state("done") > 0, "{waited}");
    // `status r.csv --passcodes passcodes.csv --simulate`: the same tenant shows the
    // passcodes, and the saved tenant holds none of them.
    let collect = follow_ups
        .iter()
        .find(|c| c.contains(&"--passcodes".to_owned()))
        .expect("a status --passcodes follow-up");
    let (_, collected) = run_in(dir.path(), collect);
    let passcodes = std::fs::read_to_string(dir.path().join("passcodes.csv")).unwrap();
    let lines: Vec<&str> = passcodes.lines().skip(1).collect();
    let android_done = states
        .iter()
        .filter(|r| r["action_state"] == "done" && r["platform"].starts_with("android"))
        .count();
    assert_eq!(
        lines.len(),
        android_done,
        "the iPhones get none: {collected}"
    );
    let saved = std::fs::read_to_string(dir.path().join("r.csv.sim.json")).unwrap();
    for line in &lines {
        // device_id,device_name,serial_number,user_principal_name,passcode,generated_at
        let code = line.split(',').nth(4).unwrap_or_default();
        assert!(!code.is_empty() && !saved.contains(code), "{line}");
    }
    // The status summary's retry: `run r.status.csv --simulate` resets again only the
    // devices whose reset failed, in the same tenant.
    let retry = printed_commands(&waited);
    let retry = retry
        .iter()
        .find(|c| c[0] == "run")
        .expect("a run follow-up for the failed resets");
    assert_eq!(retry.last().map(String::as_str), Some("--simulate"));
    let mut retry = retry.clone();
    retry.extend(args(&["--yes", "--report", "retry.csv"]));
    let (code, retried) = run_in(dir.path(), &retry);
    assert_eq!(code, Some(0), "{retried}");
    let rows = read_report(&dir.path().join("retry.csv"));
    assert_eq!(count(&rows, "succeeded"), not_supported, "{retried}");
    assert!(
        retried.contains(&format!("{not_supported} resetPasscode POSTs")),
        "{retried}"
    );
    // And its own follow-up goes on in the tenant it left.
    let again = printed_commands(&retried);
    let wait = again
        .iter()
        .find(|c| c.contains(&"--wait".to_owned()))
        .expect("a status --wait follow-up of the retry");
    let (_, followed) = run_in(dir.path(), wait);
    let states = read_report(&dir.path().join("retry.status.csv"));
    let read: Vec<&str> = states
        .iter()
        .filter(|r| r["outcome"] == "succeeded")
        .map(|r| r["action_state"].as_str())
        .collect();
    assert_eq!(read.len(), not_supported, "{followed}");
    assert!(
        read.iter()
            .all(|s| ["done", "failed", "notSupported"].contains(s)),
        "the retry's resets, followed to their end in its tenant: {read:?} {followed}"
    );
}

/// An inventory of the tenant's devices, as the admin center exports them.
fn inventory(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "inventory.csv",
        "Device ID,Device name,OS,OS version,Primary user UPN\n\
         c1800000-0000-4000-8000-000000000001,Ada's iPhone,iPhone,17.5,ada@contoso.com\n\
         c1800000-0000-4000-8000-000000000002,Ada's iPad,iPad,17.5,ada@contoso.com\n\
         c1800000-0000-4000-8000-000000000003,Bob's iPhone,iPhone,17.5,bob@contoso.com\n",
    )
}

#[test]
fn regression_18_a_mistyped_upn_in_a_rehearsal_is_user_not_found() {
    let dir = TempDir::new().unwrap();
    inventory(dir.path());
    let (code, stderr) = run_in(
        dir.path(),
        &args(&[
            "run",
            "--simulate",
            "--simulate-inventory",
            "inventory.csv",
            "--user",
            "ada@contoso.com",
            "--user",
            "adaa@contoso.com",
            "--action",
            "auto",
            "--yes",
            "--report",
            "u.csv",
        ]),
    );
    assert_eq!(code, Some(1), "{stderr}");
    let rows = read_report(&dir.path().join("u.csv"));
    assert_eq!(count(&rows, "succeeded"), 2, "Ada's two devices: {rows:?}");
    let typo: Vec<_> = rows
        .iter()
        .filter(|r| r["user_principal_name"] == "adaa@contoso.com")
        .collect();
    assert_eq!(typo.len(), 1, "{rows:?}");
    assert_eq!(typo[0]["outcome"], "not_found");
    assert_eq!(typo[0]["reason"], "user_not_found");
    // Without an inventory a rehearsal cannot know the user: refused, nothing sent.
    let (code, stderr) = run_in(
        dir.path(),
        &args(&[
            "run",
            "--simulate",
            "--user",
            "adaa@contoso.com",
            "--action",
            "auto",
            "--yes",
            "--report",
            "none.csv",
        ]),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--simulate-inventory"), "{stderr}");
    assert!(!dir.path().join("none.csv").exists());
}

#[test]
fn regression_18_a_rehearsal_of_a_group_acts_on_its_inventory_s_devices() {
    let dir = TempDir::new().unwrap();
    inventory(dir.path());
    let (code, stderr) = run_in(
        dir.path(),
        &args(&[
            "run",
            "--simulate",
            "--simulate-inventory",
            "inventory.csv",
            "--group",
            "Sales phones",
            "--action",
            "auto",
            "--yes",
            "--max-devices",
            "10",
            "--report",
            "g.csv",
        ]),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&dir.path().join("g.csv"));
    assert_eq!(count(&rows, "succeeded"), 3, "{rows:?}");
    assert!(stderr.contains("group Sales phones"), "{stderr}");
    // Without an inventory: refused with what a rehearsal of a group needs.
    let (code, stderr) = run_in(
        dir.path(),
        &args(&[
            "run",
            "--simulate",
            "--group",
            "Sales phones",
            "--action",
            "auto",
            "--yes",
        ]),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("group Sales phones") && stderr.contains("--simulate-inventory"),
        "{stderr}"
    );
}

#[test]
fn status_of_a_rehearsal_whose_tenant_is_gone_says_so_and_reads_nothing() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "r.csv",
        "source,row,device_id,outcome\njob.csv,2,c1800000-0000-4000-8000-000000000001,succeeded\n",
    );
    let (code, stderr) = run_in(dir.path(), &args(&["status", "r.csv", "--simulate"]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("r.csv.sim.json"), "{stderr}");
}
