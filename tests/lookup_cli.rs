//! Lookups at the cost of pages (issue 11): many serial-number rows are joined against
//! the tenant's inventory, read once, instead of one `$filter` each; a row the listing
//! does not match is still asked by filter before it is `not_found`.

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;

use crate::common::tenant::{Tenant, ios_job, ios_serial, run_cmd, wait_for};
use crate::common::{count, read_report, write};

const LIMIT: Duration = Duration::from_secs(120);

/// The simulator's request log: GET requests to the managedDevices collection, and
/// how many of them carried a `$filter`.
fn list_requests(log: &str) -> (usize, usize) {
    let lists: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"GET\"") && l.contains("managedDevices?"))
        .collect();
    let filtered = lists.iter().filter(|l| l.contains("filter")).count();
    (lists.len(), filtered)
}

fn serial_job(dir: &Path, n: usize, unknown: usize) -> std::path::PathBuf {
    let mut csv = String::from("serialNumber\n");
    for i in 0..n {
        csv.push_str(&format!("{}\n", ios_serial(i).to_lowercase()));
    }
    for i in 0..unknown {
        csv.push_str(&format!("NOSUCH{i}\n"));
    }
    write(dir, "serials.csv", csv)
}

fn run(tenant: &Tenant, job: &Path, report: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut child = run_cmd(tenant, &[job], report, extra).spawn().unwrap();
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn many_serial_numbers_are_joined_against_one_reading_of_the_inventory() {
    let dir = TempDir::new().unwrap();
    // 2,500 devices in the tenant (three pages of 1000); 150 of them in the job, plus
    // two serial numbers the tenant does not have.
    let inventory = ios_job(dir.path(), 2500);
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let job = serial_job(dir.path(), 150, 2);
    let report = dir.path().join("report.csv");
    let (code, stderr) = run(&tenant, &job, &report, &["--unthrottled"]);
    assert_eq!(
        code,
        Some(1),
        "the two unknown serials need attention: {stderr}"
    );
    assert!(stderr.contains("managed devices in 3 pages"), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(count(&rows, "succeeded"), 150);
    assert_eq!(count(&rows, "not_found"), 2);
    let (log, _) = tenant.stop();
    let (lists, filtered) = list_requests(&log);
    // Three pages, and a $filter only for the two rows the listing did not match.
    assert_eq!((lists, filtered), (5, 2), "{log}");
}

#[test]
fn lookup_via_filter_sends_one_filter_per_row() {
    let dir = TempDir::new().unwrap();
    let inventory = ios_job(dir.path(), 20);
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let job = serial_job(dir.path(), 5, 0);
    let report = dir.path().join("report.csv");
    let (code, stderr) = run(
        &tenant,
        &job,
        &report,
        &["--unthrottled", "--lookup-via", "filter"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (log, _) = tenant.stop();
    assert_eq!(list_requests(&log), (5, 5));
    // And `inventory` forces the listing even for a handful of rows.
    let dir2 = TempDir::new().unwrap();
    let tenant = Tenant::start(
        &[&inventory],
        &dir2.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let report = dir2.path().join("report.csv");
    let (code, stderr) = run(
        &tenant,
        &job,
        &report,
        &["--unthrottled", "--lookup-via", "inventory"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (log, _) = tenant.stop();
    assert_eq!(list_requests(&log), (1, 0));
}
