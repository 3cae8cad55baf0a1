//! Issue 22: one run across several tenants, the real binary against a `simulate`
//! serving three: each row acted on in the tenant it names, each with its own sign-in
//! and pace; a tenant that cannot be signed in to leaves its rows `not_attempted` and
//! the others go on; a killed run resumed acts on nothing twice in any tenant.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::common::read_report;
use crate::common::tenant::{Tenant, bin, run_action_cmd, wait_for};

const LIMIT: Duration = Duration::from_secs(180);

const T1: &str = intune_reset::sim::DEFAULT_TENANT_ID;
const T2: &str = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";
const T2_DOMAIN: &str = "fabrikam.onmicrosoft.com";
const T3: &str = "1c2d3e4f-5061-4b7c-8d9e-0f1a2b3c4d5e";
/// A tenant no simulator serves: its sign-in fails.
const UNKNOWN: &str = "9f9f9f9f-0000-4000-8000-000000000009";

fn device(i: usize) -> String {
    format!("{:08x}-dddd-4000-8000-{:012x}", i + 1, i + 1)
}

/// An inventory of `n` iPhones (ids `device(0..n)`).
fn inventory(dir: &Path, name: &str, n: usize) -> PathBuf {
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion\n");
    for i in 0..n {
        csv.push_str(&format!("{},iPhone {i},iOS,17.5\n", device(i)));
    }
    let path = dir.join(name);
    std::fs::write(&path, csv).unwrap();
    path
}

/// `simulate` serving T1 (first), T2 (also by its domain) and T3, each holding the
/// same `n` device ids: the same id in two tenants is two devices.
fn three_tenants(dir: &Path, n: usize, extra: &[&str]) -> Tenant {
    let devices = inventory(dir, "inventory.csv", n);
    let log = dir.join("sim.log");
    let mut cmd = Command::new(bin());
    cmd.arg("simulate")
        .arg("--inventory")
        .arg(&devices)
        .arg("--tenant-inventory")
        .arg(format!("{T2},{T2_DOMAIN}={}", devices.display()))
        .arg("--tenant-inventory")
        .arg(format!("{T3}={}", devices.display()))
        .args(extra)
        .arg("--log")
        .arg(&log);
    Tenant::spawn(&mut cmd, &log)
}

/// `run` signed in with an app secret and no tenant configured: the tenants are the
/// ones the job's rows name.
fn run_unconfigured(tenant: &Tenant, job: &Path, report: &Path, extra: &[&str]) -> Command {
    let mut cmd = run_action_cmd(tenant, &[job], report, "remote-lock", extra);
    cmd.env_remove("AZURE_TENANT_ID");
    cmd
}

/// Locks that took effect, per tenant and device, from the simulator's log.
fn locks_by_tenant(log: &Path) -> BTreeMap<(String, String), u32> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if e["kind"] == "remoteLock" && e["effect"].as_bool() == Some(true) {
            let key = (
                e["tenant"].as_str().unwrap_or("?").to_owned(),
                e["device"].as_str().unwrap_or("?").to_owned(),
            );
            *out.entry(key).or_default() += 1;
        }
    }
    out
}

/// Issue 22: a job naming three tenants (one by its domain), a tenant no one can sign
/// in to, and a row naming none, run with no tenant configured: each tenant's rows
/// are locked in it, the same device id in two tenants is two devices, the unknown
/// tenant's row is `not_attempted` naming why (exit 3), the row without a tenant is
/// `invalid`; the report says each row's tenant and the summary has each tenant. A
/// `--resume` sends nothing again.
#[test]
fn regression_22_a_job_across_tenants_is_acted_on_in_each_rows_own_tenant() {
    let dir = TempDir::new().unwrap();
    let tenant = three_tenants(dir.path(), 3, &["--no-limits"]);
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion,tenant\n");
    for (i, t) in [(0, T1), (1, T1), (0, T2), (1, T2_DOMAIN), (0, T3), (2, T3)] {
        csv.push_str(&format!("{},iPhone {i},iOS,17.5,{t}\n", device(i)));
    }
    csv.push_str(&format!("{},iPhone 2,iOS,17.5,{UNKNOWN}\n", device(2)));
    csv.push_str(&format!("{},iPhone 2,iOS,17.5,\n", device(2)));
    let job = dir.path().join("job.csv");
    std::fs::write(&job, csv).unwrap();
    let report = dir.path().join("report.csv");
    let summary = dir.path().join("summary.json");
    let summary_arg = summary.to_str().unwrap();
    let mut child = run_unconfigured(
        &tenant,
        &job,
        &report,
        &["--timeout", "1s", "--summary-json", summary_arg],
    )
    .spawn()
    .unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a tenant did not sign in: {stderr}"
    );
    let rows = read_report(&report);
    let seen: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["tenant"].as_str(),
                r["outcome"].as_str(),
                r["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (T1, "succeeded", ""),
            (T1, "succeeded", ""),
            (T2, "succeeded", ""),
            (T2_DOMAIN, "succeeded", ""),
            (T3, "succeeded", ""),
            (T3, "succeeded", ""),
            (UNKNOWN, "not_attempted", "tenant_unavailable"),
            ("", "invalid", "no_tenant"),
        ],
        "{stderr}"
    );
    assert!(rows[6]["detail"].contains(UNKNOWN), "{}", rows[6]["detail"]);
    let locks = locks_by_tenant(&dir.path().join("sim.log"));
    let expected: BTreeMap<(String, String), u32> =
        [(T1, 0), (T1, 1), (T2, 0), (T2, 1), (T3, 0), (T3, 2)]
            .into_iter()
            .map(|(t, i)| ((t.to_owned(), device(i)), 1))
            .collect();
    assert_eq!(
        locks, expected,
        "each row's device, once, in its own tenant"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let tenants = json["tenants"].as_object().expect("a tenants section");
    assert_eq!(tenants.len(), 4, "{json}");
    assert_eq!(tenants[T2]["outcomes"]["succeeded"], 2, "{json}");
    assert!(
        tenants[UNKNOWN]["aborted"].is_string(),
        "the unknown tenant says why: {json}"
    );

    // Resumed: the unknown tenant still cannot sign in; nothing is sent again.
    let mut child = run_unconfigured(&tenant, &job, &report, &["--timeout", "1s", "--resume"])
        .spawn()
        .unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(read_report(&report).len(), 8, "{stderr}");
    assert_eq!(locks_by_tenant(&dir.path().join("sim.log")), expected);
}

/// Issue 22: a run across three tenants, each paced on its own and killed mid-way,
/// resumed: every device of every tenant is locked exactly once, and every row is
/// reported once with its tenant.
#[cfg(unix)]
#[test]
fn regression_22_a_killed_run_across_tenants_resumed_acts_on_nothing_twice() {
    use crate::common::tenant::{ledger_of, signal, wait_for_ledger};
    let dir = TempDir::new().unwrap();
    let n = 12;
    let tenant = three_tenants(dir.path(), n, &["--latency-ms", "60"]);
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion,tenant\n");
    for t in [T1, T2, T3] {
        for i in 0..n {
            csv.push_str(&format!("{},iPhone {i},iOS,17.5,{t}\n", device(i)));
        }
    }
    let job = dir.path().join("job.csv");
    std::fs::write(&job, csv).unwrap();
    let report = dir.path().join("report.csv");
    let args = ["--write-rate", "6", "--timeout", "1s"];
    let mut child = run_unconfigured(&tenant, &job, &report, &args)
        .spawn()
        .unwrap();
    wait_for_ledger(&mut child, &ledger_of(&report), "send", 15, LIMIT);
    signal(&mut child, "-KILL");
    let _ = child.wait();
    let resume = [&args[..], &["--resume"]].concat();
    // Resumed signed in to one tenant only: refused, nothing sent (its other tenants'
    // rows would be left as another tenant's).
    let before = locks_by_tenant(&dir.path().join("sim.log"));
    let mut child = run_action_cmd(&tenant, &[&job], &report, "remote-lock", &resume)
        .spawn()
        .unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("spans several tenants"), "{stderr}");
    assert_eq!(locks_by_tenant(&dir.path().join("sim.log")), before);
    let mut child = run_unconfigured(&tenant, &job, &report, &resume)
        .spawn()
        .unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 3 * n, "every row once: {stderr}");
    assert!(rows.iter().all(|r| r["outcome"] == "succeeded"), "{stderr}");
    for t in [T1, T2, T3] {
        assert_eq!(rows.iter().filter(|r| r["tenant"] == t).count(), n);
    }
    let locks = locks_by_tenant(&dir.path().join("sim.log"));
    assert_eq!(
        locks.len(),
        3 * n,
        "every device of every tenant: {locks:?}"
    );
    assert!(
        locks.values().all(|k| *k == 1),
        "each device locked once in its tenant: {locks:?}"
    );
}

/// Issue 22: `run --follow --audit` of a rehearsal across three simulated tenants (one
/// named by its domain): every row's action is followed in its own tenant (each row
/// gains its state), and the audit confirms each reset from its own tenant's records.
#[test]
fn regression_22_a_run_across_tenants_is_followed_and_audited_in_each_tenant() {
    let dir = TempDir::new().unwrap();
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion,tenant\n");
    for (i, t) in [
        (0, T1),
        (1, T1),
        (2, T2),
        (3, T2),
        (4, T2_DOMAIN),
        (5, "northwind.onmicrosoft.com"),
    ] {
        csv.push_str(&format!("{},iPhone {i},iOS,17.5,{t}\n", device(i)));
    }
    let job = dir.path().join("job.csv");
    std::fs::write(&job, csv).unwrap();
    let mut child = Command::new(bin())
        .current_dir(dir.path())
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .args(["run", "job.csv", "--simulate", "--yes", "--action", "auto"])
        .args(["--follow", "60s", "--audit", "--report", "r.csv"])
        .env("INTUNE_RESET_LOCK_DIR", crate::common::tenant::lock_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rows = read_report(&dir.path().join("r.csv"));
    assert_eq!(rows.len(), 6, "{stderr}");
    let sent = rows.iter().filter(|r| r["outcome"] == "succeeded").count();
    assert!(sent > 0, "{stderr}");
    for r in rows.iter().filter(|r| r["outcome"] == "succeeded") {
        assert!(
            !r["action_state"].is_empty() && r["action_state"] != "not_found_in_results",
            "each reset followed in its own tenant: {r:?}"
        );
    }
    let audit = read_report(&dir.path().join("r.audit.csv"));
    let confirmed = audit.iter().filter(|r| r["verdict"] == "confirmed").count();
    assert_eq!(
        confirmed, sent,
        "each reset confirmed in its tenant: {stderr}"
    );
    assert!(stderr.contains("tenants (4)"), "{stderr}");
}

/// Issue 22: each tenant has its own lane: a tenant whose rows come first and go
/// slowly (300 of them at one write a second) does not hold up another's. Tenant 1's
/// twelve rows, last in the job, are all sent while tenant 3 has sent a few of its own;
/// with one dispatcher for every tenant they would wait behind all 300.
#[cfg(unix)]
#[test]
fn regression_22_a_slow_tenant_does_not_hold_up_another() {
    use crate::common::tenant::signal;
    let dir = TempDir::new().unwrap();
    let tenant = three_tenants(dir.path(), 300, &["--no-limits"]);
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion,tenant\n");
    for i in 0..300 {
        csv.push_str(&format!("{},iPhone {i},iOS,17.5,{T3}\n", device(i)));
    }
    for i in 0..12 {
        csv.push_str(&format!("{},iPhone {i},iOS,17.5,{T1}\n", device(i)));
    }
    let job = dir.path().join("job.csv");
    std::fs::write(&job, csv).unwrap();
    let report = dir.path().join("report.csv");
    let mut child = run_unconfigured(&tenant, &job, &report, &["--write-rate", "1"])
        .spawn()
        .unwrap();
    let log = dir.path().join("sim.log");
    let in_tenant = |t: &str| {
        locks_by_tenant(&log)
            .keys()
            .filter(|(tenant, _)| tenant == t)
            .count()
    };
    let start = std::time::Instant::now();
    while in_tenant(T1) < 12 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before tenant 1's rows were sent"
        );
        assert!(
            start.elapsed() < LIMIT,
            "tenant 1's rows waited behind tenant 3's: {} of 12 sent",
            in_tenant(T1)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let t3 = in_tenant(T3);
    signal(&mut child, "-KILL");
    let _ = child.wait();
    assert!(t3 < 300, "tenant 3 was still being sent: {t3} of 300");
}
