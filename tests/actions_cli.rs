//! Issue 21: the responder's other actions on the same engine, the real binary against
//! `simulate`: several actions in one run, each judged by its own rules, each sent
//! once per device, followed by `status` through the action's own entry.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;

use crate::common::read_report;
use crate::common::tenant::{Tenant, run_action_cmd, wait_for};

const LIMIT: Duration = Duration::from_secs(120);

const IPHONE: &str = "00000001-aaaa-4000-8000-000000000001";
const MAC: &str = "00000002-bbbb-4000-8000-000000000002";
const WIN11: &str = "00000003-cccc-4000-8000-000000000003";
const WIN1809: &str = "00000004-cccc-4000-8000-000000000004";

/// An iPhone, a Mac, a Windows 11 desktop and a Windows 10 1809 desktop.
fn mixed_job(dir: &Path) -> std::path::PathBuf {
    let csv = format!(
        "id,deviceName,operatingSystem,osVersion,deviceType,userPrincipalName\n\
         {IPHONE},iPhone,iOS,17.5,iPhone,ada@contoso.com\n\
         {MAC},Mac,macOS,15.1,macMDM,ada@contoso.com\n\
         {WIN11},PC-11,Windows,10.0.22631.4460,desktop,bo@contoso.com\n\
         {WIN1809},PC-1809,Windows,10.0.17763.1,desktop,bo@contoso.com\n"
    );
    let path = dir.join("job.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// `(device_id, action) -> (outcome, reason)` of a report.
fn outcomes(report: &Path) -> BTreeMap<(String, String), (String, String)> {
    read_report(report)
        .into_iter()
        .map(|r| {
            (
                (r["device_id"].clone(), r["action"].clone()),
                (r["outcome"].clone(), r["reason"].clone()),
            )
        })
        .collect()
}

fn run(tenant: &Tenant, job: &Path, report: &Path, action: &str) -> (Option<i32>, String) {
    let mut child = run_action_cmd(tenant, &[job], report, action, &["--timeout", "1s"])
        .spawn()
        .unwrap();
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn regression_21_two_device_actions_in_one_run_are_judged_by_their_own_rules_and_sent_once() {
    let dir = TempDir::new().unwrap();
    let job = mixed_job(dir.path());
    // Devices carry actions out at once: the second run finds them done.
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.log"),
        &["--no-limits", "--action-delay", "0"],
    );
    let report = dir.path().join("report.csv");
    let (code, stderr) = run(&tenant, &job, &report, "rotate-bitlocker-keys,remote-lock");
    let ok = |s: &str| (s.to_owned(), String::new());
    let no = |s: &str| ("ineligible".to_owned(), s.to_owned());
    let key = |d: &str, a: &str| (d.to_owned(), a.to_owned());
    let expected: BTreeMap<_, _> = [
        (key(IPHONE, "remote-lock"), ok("succeeded")),
        (
            key(IPHONE, "rotate-bitlocker-keys"),
            no("bitlocker_windows_only"),
        ),
        (key(MAC, "remote-lock"), ok("succeeded")),
        (
            key(MAC, "rotate-bitlocker-keys"),
            no("bitlocker_windows_only"),
        ),
        (key(WIN11, "remote-lock"), no("lock_windows_not_supported")),
        (key(WIN11, "rotate-bitlocker-keys"), ok("succeeded")),
        (
            key(WIN1809, "remote-lock"),
            no("lock_windows_not_supported"),
        ),
        (
            key(WIN1809, "rotate-bitlocker-keys"),
            no("bitlocker_windows_before_1909"),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(outcomes(&report), expected, "{stderr}");
    // Ineligible rows are data, not failures: every action that could be sent was.
    assert_eq!(code, Some(0), "{stderr}");
    // One row per job row and action, the lock first (the families' order).
    let rows = read_report(&report);
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0]["action"], "remote-lock");
    assert_eq!(rows[1]["action"], "rotate-bitlocker-keys");
    assert_eq!(rows[0]["row"], rows[1]["row"]);

    let locks = tenant.effects("remoteLock");
    let rotations = tenant.effects("rotateBitLockerKeys");
    assert_eq!(locks.values().copied().collect::<Vec<_>>(), [1, 1]);
    assert_eq!(rotations.keys().collect::<Vec<_>>(), [WIN11]);
    assert!(tenant.resets().is_empty(), "no passcode reset was asked");

    // What Intune's record says of each lock and rotation now (`status`, through each
    // action's own entry).
    let (_, status_err) = status(&tenant, &report);
    let states: BTreeMap<(String, String), String> =
        read_report(&dir.path().join("report.status.csv"))
            .into_iter()
            .filter(|r| r["outcome"] == "succeeded")
            .map(|r| {
                (
                    (r["device_id"].clone(), r["action"].clone()),
                    r["action_state"].clone(),
                )
            })
            .collect();
    assert_eq!(states.len(), 3, "{status_err}");
    assert!(
        states.values().all(|s| s == "done" || s == "failed"),
        "{states:?}"
    );

    // The same job again, into another report: an action Intune shows done within the
    // day is not sent again; one that failed on the device is.
    let again = dir.path().join("again.csv");
    let (_, stderr) = run(&tenant, &job, &again, "remote-lock,rotate-bitlocker-keys");
    let second = outcomes(&again);
    for ((device, action), state) in &states {
        let (graph_name, earlier) = match action.as_str() {
            "remote-lock" => ("remoteLock", &locks),
            _ => ("rotateBitLockerKeys", &rotations),
        };
        let now = tenant.effects(graph_name)[device];
        if state == "done" {
            let reason = match action.as_str() {
                "remote-lock" => "lock_recently_done",
                _ => "rotation_recently_done",
            };
            assert_eq!(second[&key(device, action)], no(reason), "{stderr}");
            assert_eq!(now, earlier[device], "{device} {action}: not sent again");
        } else {
            assert_eq!(second[&key(device, action)], ok("succeeded"), "{stderr}");
            assert_eq!(now, earlier[device] + 1, "{device} {action}: sent again");
        }
    }
}

/// `intune-reset status REPORT` against `tenant`: its exit code and stderr.
fn status(tenant: &Tenant, report: &Path) -> (Option<i32>, String) {
    let out = crate::common::intune_reset()
        .arg("status")
        .arg(report)
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .env("AZURE_TENANT_ID", crate::common::tenant::TENANT)
        .env("AZURE_CLIENT_ID", crate::common::tenant::CLIENT)
        .env("AZURE_CLIENT_SECRET", "actions-test-secret")
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn regression_21_a_mac_locks_pin_never_reaches_the_report_or_the_log() {
    let dir = TempDir::new().unwrap();
    let job = mixed_job(dir.path());
    let log = dir.path().join("sim.log");
    let tenant = Tenant::start(&[&job], &log, &["--no-limits", "--action-delay", "0"]);
    let report = dir.path().join("report.csv");
    let (_, stderr) = run(&tenant, &job, &report, "remote-lock");
    // `status` reads the locks' entries (the Mac's carries its unlockPin).
    let (_, status_err) = status(&tenant, &report);
    let status_report = dir.path().join("report.status.csv");
    let states: BTreeMap<String, String> = read_report(&status_report)
        .into_iter()
        .filter(|r| r["action"] == "remote-lock" && r["outcome"] == "succeeded")
        .map(|r| (r["device_id"].clone(), r["action_state"].clone()))
        .collect();
    assert_eq!(
        states.keys().collect::<Vec<_>>(),
        [IPHONE, MAC],
        "{status_err}"
    );
    assert!(
        states.values().all(|s| s == "done" || s == "failed"),
        "the locks' own entries are followed: {states:?}"
    );
    // The simulator's answer to status held the Mac's unlockPin: the tool reads no such
    // field (`graph::device` tests), and nothing it wrote names one.
    for written in [
        std::fs::read_to_string(&report).unwrap(),
        std::fs::read_to_string(&status_report).unwrap(),
        stderr,
        status_err,
    ] {
        assert!(!written.to_lowercase().contains("unlockpin"));
    }
}

/// Three iPhones of two users (`Ada` spelled two ways).
fn users_job(dir: &Path) -> std::path::PathBuf {
    let csv = "id,deviceName,operatingSystem,osVersion,userPrincipalName\n\
               00000001-aaaa-4000-8000-000000000001,iPhone A1,iOS,17.5,ada@contoso.com\n\
               00000002-aaaa-4000-8000-000000000002,iPhone A2,iOS,17.5,Ada@Contoso.com\n\
               00000003-aaaa-4000-8000-000000000003,iPhone B,iOS,17.5,bo@contoso.com\n";
    let path = dir.join("users.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// The simulator's log lines, in order: `(kind, status)`.
fn log_kinds(log: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_owned(),
                e["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn regression_21_revoke_sessions_revokes_each_user_once_before_any_device_action() {
    let dir = TempDir::new().unwrap();
    let job = users_job(dir.path());
    let log = dir.path().join("sim.log");
    let tenant = Tenant::start(&[&job], &log, &["--no-limits", "--action-delay", "0"]);
    let report = dir.path().join("report.csv");
    let (code, stderr) = run(&tenant, &job, &report, "remote-lock,revoke-sessions");
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    let seen: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["row"].clone(),
                r["action"].clone(),
                r["outcome"].clone(),
                r["reason"].clone(),
            )
        })
        .collect();
    let row = |n: &str, a: &str, o: &str, r: &str| {
        (n.to_owned(), a.to_owned(), o.to_owned(), r.to_owned())
    };
    assert_eq!(
        seen,
        [
            row("2", "revoke-sessions", "succeeded", ""),
            row("2", "remote-lock", "succeeded", ""),
            row("3", "revoke-sessions", "duplicate", "duplicate_user"),
            row("3", "remote-lock", "succeeded", ""),
            row("4", "revoke-sessions", "succeeded", ""),
            row("4", "remote-lock", "succeeded", ""),
        ],
        "{stderr}"
    );
    // Each user revoked once, every revocation before the first lock.
    let kinds = log_kinds(&log);
    let revocations: Vec<usize> = (0..kinds.len())
        .filter(|i| kinds[*i] == ("revokeSignInSessions".into(), 200))
        .collect();
    let first_lock = kinds.iter().position(|k| k.0 == "remoteLock").unwrap();
    assert_eq!(revocations.len(), 2, "{kinds:?}");
    assert!(revocations.iter().all(|i| *i < first_lock), "{kinds:?}");
    assert!(
        stderr.contains("revoke-sessions        3   succeeded 2, duplicate 1"),
        "{stderr}"
    );

    // Entra keeps no action state of a revocation: status says so, and reads none.
    let (_, status_err) = status(&tenant, &report);
    let states: Vec<(String, String)> = read_report(&dir.path().join("report.status.csv"))
        .into_iter()
        .filter(|r| r["outcome"] == "succeeded")
        .map(|r| (r["action"].clone(), r["action_state"].clone()))
        .collect();
    assert_eq!(
        states
            .iter()
            .filter(|(a, s)| a == "revoke-sessions" && s == "no_action_state")
            .count(),
        2,
        "{states:?} {status_err}"
    );
    assert!(
        states
            .iter()
            .filter(|(a, _)| a == "remote-lock")
            .all(|(_, s)| s == "done" || s == "failed"),
        "{states:?}"
    );
    // The run's report read as a job sends nothing again.
    let again = dir.path().join("again.csv");
    let (_, stderr) = run(&tenant, &report, &again, "remote-lock,revoke-sessions");
    let sent_again = log_kinds(&log)
        .iter()
        .filter(|k| k.0 == "revokeSignInSessions")
        .count();
    assert_eq!(sent_again, 2, "{stderr}");
}

#[test]
fn regression_21_a_refused_revocation_stops_the_run_naming_the_permission_before_any_lock() {
    let dir = TempDir::new().unwrap();
    let job = users_job(dir.path());
    let log = dir.path().join("sim.log");
    let tenant = Tenant::start(&[&job], &log, &["--no-limits", "--deny-revoke-sessions"]);
    let report = dir.path().join("report.csv");
    let (code, stderr) = run(&tenant, &job, &report, "revoke-sessions,remote-lock");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("User.RevokeSessions.All"), "{stderr}");
    assert!(
        !log_kinds(&log).iter().any(|k| k.0 == "remoteLock"),
        "no device action leaves after the users' actions stopped the run"
    );
    // Nothing is lost: every row and action is in the report.
    assert_eq!(read_report(&report).len(), 6);
}

#[test]
fn regression_21_a_groups_users_are_revoked_each_once() {
    let dir = TempDir::new().unwrap();
    let job = users_job(dir.path());
    let log = dir.path().join("sim.log");
    let tenant = Tenant::start(
        &[&job],
        &log,
        &[
            "--no-limits",
            "--group",
            "Sales=ada@contoso.com,bo@contoso.com,ADA@contoso.com",
        ],
    );
    let report = dir.path().join("report.csv");
    let mut child = crate::common::tenant::run_action_cmd(
        &tenant,
        &[],
        &report,
        "revoke-sessions",
        &["--group", "Sales", "--timeout", "1s"],
    )
    .spawn()
    .unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let mut users: Vec<(String, String)> = read_report(&report)
        .into_iter()
        .map(|r| {
            (
                r["user_principal_name"].to_lowercase(),
                r["outcome"].clone(),
            )
        })
        .collect();
    users.sort();
    assert!(
        stderr.contains("users of group Sales → 2 users"),
        "{stderr}"
    );
    assert_eq!(
        users,
        [
            ("ada@contoso.com".to_owned(), "succeeded".to_owned()),
            ("bo@contoso.com".to_owned(), "succeeded".to_owned()),
        ],
        "{stderr}"
    );
    let revoked = log_kinds(&log)
        .iter()
        .filter(|k| k.0 == "revokeSignInSessions")
        .count();
    assert_eq!(revoked, 2);
}

/// Issue 21: a run of a user action and a device action, killed mid-way and resumed,
/// revokes each user once and locks each device once, and reports every job row and
/// action exactly once: the ledger keeps each action of a row apart.
#[cfg(unix)]
#[test]
fn regression_21_a_killed_run_of_two_actions_resumed_acts_on_nothing_twice() {
    use crate::common::tenant::{ledger_of, signal, wait_for_ledger};
    let dir = TempDir::new().unwrap();
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion,userPrincipalName\n");
    for i in 0..30 {
        csv.push_str(&format!(
            "{:08x}-aaaa-4000-8000-{:012x},iPhone {i},iOS,17.5,user{}@contoso.com\n",
            i + 1,
            i + 1,
            i % 15
        ));
    }
    let job = dir.path().join("job.csv");
    std::fs::write(&job, csv).unwrap();
    let log = dir.path().join("sim.log");
    let tenant = Tenant::start(&[&job], &log, &["--latency-ms", "60"]);
    let report = dir.path().join("report.csv");
    let args = ["--write-rate", "12", "--timeout", "1s"];
    // Killed once the locks have begun: every revocation and some locks are sent.
    let mut child = run_action_cmd(
        &tenant,
        &[&job],
        &report,
        "revoke-sessions,remote-lock",
        &args,
    )
    .spawn()
    .unwrap();
    wait_for_ledger(&mut child, &ledger_of(&report), "send", 15 + 5, LIMIT);
    signal(&mut child, "-KILL");
    let _ = child.wait();
    let resume = [&args[..], &["--resume"]].concat();
    let mut child = run_action_cmd(
        &tenant,
        &[&job],
        &report,
        "revoke-sessions,remote-lock",
        &resume,
    )
    .spawn()
    .unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 60, "every job row and action once: {stderr}");
    let count = |action: &str, outcome: &str| {
        rows.iter()
            .filter(|r| r["action"] == action && r["outcome"] == outcome)
            .count()
    };
    assert_eq!(count("revoke-sessions", "succeeded"), 15);
    assert_eq!(count("revoke-sessions", "duplicate"), 15);
    assert_eq!(count("remote-lock", "succeeded"), 30);
    let kinds = log_kinds(&log);
    let took = |kind: &str, status: u64| {
        kinds
            .iter()
            .filter(|k| k.0 == kind && k.1 == status)
            .count()
    };
    assert_eq!(
        took("revokeSignInSessions", 200),
        15,
        "each user revoked once"
    );
    let locks = tenant.effects("remoteLock");
    assert_eq!(locks.len(), 30);
    assert!(
        locks.values().all(|n| *n == 1),
        "each device locked once: {locks:?}"
    );
}

/// Issue 21: `run --follow` follows each lock through its own entry into the run
/// report, and writes `no_action_state` for the revocations it cannot follow.
#[test]
fn regression_21_a_followed_run_of_revocations_and_locks_writes_each_ones_state() {
    let dir = TempDir::new().unwrap();
    let job = users_job(dir.path());
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.log"),
        &["--no-limits", "--action-delay", "0"],
    );
    let report = dir.path().join("report.csv");
    let mut child = run_action_cmd(
        &tenant,
        &[&job],
        &report,
        "revoke-sessions,remote-lock",
        &["--follow", "20s", "--timeout", "1s"],
    )
    .spawn()
    .unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let states: Vec<(String, String, String)> = read_report(&report)
        .into_iter()
        .map(|r| {
            (
                r["action"].clone(),
                r["outcome"].clone(),
                r["action_state"].clone(),
            )
        })
        .collect();
    assert_eq!(states.len(), 6, "{stderr}");
    for (action, outcome, state) in &states {
        match (action.as_str(), outcome.as_str()) {
            ("revoke-sessions", "succeeded") => assert_eq!(state, "no_action_state"),
            ("remote-lock", "succeeded") => {
                assert!(state == "done" || state == "failed", "{states:?}")
            }
            _ => assert_eq!(state, "", "{states:?}"),
        }
    }
    assert!(stderr.contains("followed:"), "{stderr}");
}

/// Issue 22, first piece: a job whose rows name their tenant acts only on the rows of
/// the tenant the run signed in to; a row naming another tenant (by id or domain) is
/// `ineligible`/`other_tenant`, saying why, and nothing is read or sent for it, not even
/// its user's devices.
#[test]
fn regression_22_rows_naming_another_tenant_are_never_acted_on_here() {
    let dir = TempDir::new().unwrap();
    let here = crate::common::tenant::TENANT;
    let other = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";
    let csv = format!(
        "id,deviceName,operatingSystem,osVersion,userPrincipalName,tenant\n\
         00000001-aaaa-4000-8000-000000000001,iPhone 1,iOS,17.5,ada@contoso.com,{here}\n\
         00000002-aaaa-4000-8000-000000000002,iPhone 2,iOS,17.5,bo@contoso.com,{other}\n\
         00000003-aaaa-4000-8000-000000000003,iPhone 3,iOS,17.5,bo@contoso.com,fabrikam.onmicrosoft.com\n\
         ,,,,bo@contoso.com,{other}\n"
    );
    let job = dir.path().join("job.csv");
    std::fs::write(&job, csv).unwrap();
    let log = dir.path().join("sim.log");
    let tenant = Tenant::start(&[&job], &log, &["--no-limits"]);
    let report = dir.path().join("report.csv");
    let (code, stderr) = run(&tenant, &job, &report, "remote-lock");
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    let seen: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r["row"].clone(), r["outcome"].clone(), r["reason"].clone()))
        .collect();
    let row = |n: &str, o: &str, r: &str| (n.to_owned(), o.to_owned(), r.to_owned());
    assert_eq!(
        seen,
        [
            row("2", "succeeded", ""),
            row("3", "ineligible", "other_tenant"),
            row("4", "ineligible", "other_tenant"),
            row("5", "ineligible", "other_tenant"),
        ],
        "{stderr}"
    );
    assert!(rows[1]["detail"].contains(other), "{}", rows[1]["detail"]);
    // Nothing was read or sent for the other tenants' rows.
    let touched: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["path"].as_str().map(str::to_owned))
        .collect();
    assert!(
        touched.iter().all(|p| !p.contains("000000000002")
            && !p.contains("000000000003")
            && !p.contains("bo@contoso.com")),
        "{touched:?}"
    );
    assert_eq!(tenant.effects("remoteLock").len(), 1);
}
