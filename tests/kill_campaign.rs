//! The kill campaign (issue 8): runs against a simulated tenant that loses answers,
//! drops connections, throttles, answers slowly and carries resets out late, killed
//! (SIGKILL or SIGTERM) at sends chosen from a seed, then resumed, maybe killed again,
//! and resumed until done. After each, the simulator's log must show every eligible
//! device reset exactly once (no double, no miss) and the report every job row once.
//!
//! `cargo test` runs a few kill points; CI runs more (`KILL_CAMPAIGN_POINTS`, see
//! `.ci/run`), on a bounded budget.

use std::time::Duration;

use tempfile::TempDir;

use crate::common::read_report;
use crate::common::tenant::{
    Tenant, assert_complete, ios_job, ios_serial, ledger_events, ledger_of, reached, run_cmd,
    signal, wait_for,
};

/// Kill points `cargo test` runs; CI asks for more.
const DEFAULT_POINTS: u64 = 3;
const DEVICES: usize = 24;
/// Serial-number rows naming devices the export names by id: duplicates by lookup.
const SERIAL_ROWS: usize = 6;
const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn kill_campaign_leaves_every_device_reset_exactly_once_and_every_row_reported() {
    let points = std::env::var("KILL_CAMPAIGN_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_POINTS);
    // `KILL_CAMPAIGN_SEEDS=3,10` replays chosen points (a failure names its seed).
    let chosen: Option<Vec<u64>> = std::env::var("KILL_CAMPAIGN_SEEDS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect());
    for seed in chosen.unwrap_or_else(|| (0..points).collect()) {
        kill_point(seed);
    }
}

fn kill_point(seed: u64) {
    let dir = TempDir::new().unwrap();
    let export = ios_job(dir.path(), DEVICES);
    let mut serials = String::from("serialNumber\n");
    for i in 0..SERIAL_ROWS {
        serials.push_str(&format!("{}\n", ios_serial(i * 3)));
    }
    let list = dir.path().join("serials.csv");
    std::fs::write(&list, serials).unwrap();
    let effect_delay = ((seed % 3) * 700).to_string();
    let seed_text = seed.to_string();
    let tenant = Tenant::start(
        &[&export],
        &dir.path().join("sim.jsonl"),
        &[
            "--fault",
            "503=0.05",
            "--fault",
            "drop-after=0.05",
            "--fault",
            "drop-before=0.05",
            "--fault",
            "429-no-retry-after=0.03",
            "--fault",
            "slow=0.03",
            "--slow-ms",
            "1500",
            "--latency-ms",
            "40",
            "--jitter-ms",
            "60",
            "--effect-delay-ms",
            &effect_delay,
            "--seed",
            &seed_text,
            // Each reset ends (done, or failed on the device) as soon as it lands, so
            // the colleague's run below meets every device's final state.
            "--action-delay",
            "0",
        ],
    );
    let report = dir.path().join("report.csv");
    let ledger = ledger_of(&report);
    let jobs = [export.as_path(), list.as_path()];
    let args = [
        "--write-rate",
        "15",
        "--timeout",
        "1s",
        "--concurrency",
        "8",
    ];
    let resume: Vec<&str> = [&args[..], &["--resume"]].concat();
    // SIGTERM exists on Unix only; elsewhere every kill is a hard one.
    let how = if seed % 3 == 2 && cfg!(unix) {
        "-TERM"
    } else {
        "-KILL"
    };

    // The first kill, at a send chosen by the seed, or (every fourth seed) during the
    // first pause a 429 or 503 announced (issue 17).
    let at = 1 + (seed as usize * 7) % 18;
    let (event, at) = if seed % 4 == 1 {
        ("pause", 1)
    } else {
        ("send", at)
    };
    let mut first = run_cmd(&tenant, &jobs, &report, &args).spawn().unwrap();
    if reached(&mut first, &ledger, event, at, LIMIT) {
        signal(&mut first, how);
    }
    let _ = wait_for(&mut first, LIMIT);
    // Odd seeds kill the resume too, a few sends in.
    if seed % 2 == 1 {
        let more = ledger_events(&ledger, "send") + 3;
        let mut second = run_cmd(&tenant, &jobs, &report, &resume).spawn().unwrap();
        if reached(&mut second, &ledger, "send", more, LIMIT) {
            signal(&mut second, "-KILL");
        }
        let _ = wait_for(&mut second, LIMIT);
    }
    let mut last = None;
    for _ in 0..4 {
        let mut child = run_cmd(&tenant, &jobs, &report, &resume).spawn().unwrap();
        let out = wait_for(&mut child, LIMIT);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        last = Some((out.status.code(), stderr));
        if out.status.code() == Some(0) {
            break;
        }
    }
    let (code, stderr) = last.expect("at least one resume ran");
    assert_eq!(code, Some(0), "seed {seed}: {stderr}");

    let rows = read_report(&report);
    assert_complete(&rows, DEVICES + 2 + SERIAL_ROWS, 1);
    let succeeded = rows.iter().filter(|r| r["outcome"] == "succeeded").count();
    assert_eq!(
        succeeded, DEVICES,
        "seed {seed}: every device succeeded once"
    );
    let resets = tenant.resets();
    let twice: Vec<_> = resets.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "seed {seed}: reset more than once: {twice:?}"
    );
    assert_eq!(
        resets.len(),
        DEVICES,
        "seed {seed}: a device was never reset"
    );

    // A colleague starts the same incident from another folder, under another report:
    // Intune's record holds back every device whose reset is under way or done; only
    // one whose reset failed on the device (the simulator fails a few iOS ones, as
    // Intune does) may be reset again (issue 17, point 3).
    let states = action_states(&tenant, &report, dir.path());
    let elsewhere = TempDir::new().unwrap();
    let again = elsewhere.path().join("report.csv");
    let mut child = run_cmd(&tenant, &jobs, &again, &args).spawn().unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "seed {seed}: {stderr}"
    );
    let after = tenant.resets();
    let mut reset_again = 0;
    for (device, n) in &after {
        if *n > resets[device] {
            reset_again += 1;
            let state = states.get(device).map(String::as_str).unwrap_or("");
            assert!(
                matches!(state, "failed" | "notSupported" | "canceled"),
                "seed {seed}: {device} was reset again though Intune showed its reset '{state}'"
            );
        }
    }
    let held_back = read_report(&again)
        .iter()
        .filter(|r| r["reason"] == "reset_in_progress" || r["reason"] == "reset_recently_done")
        .count();
    assert_eq!(held_back + reset_again, DEVICES, "seed {seed}: {stderr}");
}

/// Each device's action state as `status` reads it from the simulator, by device id.
fn action_states(
    tenant: &Tenant,
    report: &std::path::Path,
    dir: &std::path::Path,
) -> std::collections::BTreeMap<String, String> {
    let status = dir.join("status.csv");
    let out = std::process::Command::new(crate::common::tenant::bin())
        .arg("status")
        .arg(report)
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .arg("--report")
        .arg(&status)
        .env("AZURE_TENANT_ID", crate::common::tenant::TENANT)
        .env("AZURE_CLIENT_ID", crate::common::tenant::CLIENT)
        .env("AZURE_CLIENT_SECRET", "crash-test-secret")
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .output()
        .expect("status runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A device two rows name has one state, on the row that acted (its duplicate's is
    // empty).
    read_report(&status)
        .into_iter()
        .filter(|r| !r["action_state"].is_empty())
        .map(|r| (r["device_id"].clone(), r["action_state"].clone()))
        .collect()
}
