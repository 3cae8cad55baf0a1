//! `run --follow` (issue 13): after the last POST the run follows its resets through
//! `deviceActionResults`, writes the status report, puts generated passcodes in the
//! 0600 file only, and exits as `status` would.

use std::time::Duration;

use tempfile::TempDir;

use crate::common::tenant::{Tenant, run_cmd, wait_for};
use crate::common::{read_report, write};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn a_followed_run_collects_passcodes_and_exits_as_status_would() {
    let dir = TempDir::new().unwrap();
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion,deviceType\n");
    for i in 1..=3 {
        csv.push_str(&format!(
            "a1000000-0000-4000-8000-00000000000{i},Work profile {i},Android,14,androidForWork\n"
        ));
    }
    csv.push_str("b1000000-0000-4000-8000-000000000001,iPhone 1,iOS,17.5,iPhone\n");
    let job = write(dir.path(), "job.csv", csv);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0", "--seed", "3"],
    );
    let report = dir.path().join("report.csv");
    let passcodes = dir.path().join("passcodes.csv");
    let p = passcodes.to_string_lossy().into_owned();
    let mut child = run_cmd(
        &tenant,
        &[&job],
        &report,
        &["--follow", "20s", "--passcodes", &p],
    )
    .spawn()
    .unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = read_report(&dir.path().join("report.status.csv"));
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
    let mut child = run_cmd(
        &tenant,
        &[&job],
        &report2,
        &["--follow", "20s", "--passcodes", &p],
    )
    .spawn()
    .unwrap();
    let out = wait_for(&mut child, LIMIT);
    assert_eq!(out.status.code(), Some(2));
    assert!(!report2.exists(), "nothing was sent");
}
