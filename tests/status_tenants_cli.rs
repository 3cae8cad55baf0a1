//! Issue 22: `status` of a run across tenants, the real binary against `simulate`
//! serving two tenants: each row's device is read in the tenant the row names (a
//! device id can exist in both, with different states), a tenant that cannot be signed
//! in to leaves its rows `not_checked` naming why while the others are read, and
//! `status --simulate` of a rehearsal across tenants reads each in its simulated tenant.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;

use crate::common::tenant::{TENANT, Tenant, run_cmd, wait_for};
use crate::common::{intune_reset, read_report, write};

const LIMIT: Duration = Duration::from_secs(120);

const FABRIKAM: &str = "2b7e0c1d-4f3a-4e6b-9c8d-7a6b5c4d3e2f";
const FABRIKAM_DOMAIN: &str = "fabrikam.onmicrosoft.com";

/// Contoso's own iPhone.
const C1: &str = "00000001-aaaa-4000-8000-000000000001";
/// Fabrikam's own iPhone.
const F1: &str = "00000002-aaaa-4000-8000-000000000002";
/// Ids both tenants hold (two devices, one in each): the run resets `SHARED_C` in
/// Contoso only and `SHARED_F` in Fabrikam only, so read in the other tenant each shows
/// no reset at all.
const SHARED_C: &str = "00000003-aaaa-4000-8000-000000000003";
const SHARED_F: &str = "00000004-aaaa-4000-8000-000000000004";

const HEADER: &str = "id,deviceName,operatingSystem,osVersion,userPrincipalName";

fn iphone(id: &str, name: &str) -> String {
    format!("{id},{name},iOS,17.5,ada@contoso.com")
}

/// The job (Contoso named by its id, Fabrikam by its domain) and each tenant's
/// inventory: both hold the shared ids.
fn files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let job = write(
        dir,
        "job.csv",
        format!(
            "{HEADER},tenant\n{},{TENANT}\n{},{FABRIKAM_DOMAIN}\n{},{TENANT}\n{},{FABRIKAM_DOMAIN}\n",
            iphone(C1, "C1"),
            iphone(F1, "F1"),
            iphone(SHARED_C, "Shared C"),
            iphone(SHARED_F, "Shared F"),
        ),
    );
    let contoso = write(
        dir,
        "contoso.csv",
        format!(
            "{HEADER}\n{}\n{}\n{}\n",
            iphone(C1, "C1"),
            iphone(SHARED_C, "Shared C"),
            iphone(SHARED_F, "Shared F")
        ),
    );
    let fabrikam = write(
        dir,
        "fabrikam.csv",
        format!(
            "{HEADER}\n{}\n{}\n{}\n",
            iphone(F1, "F1"),
            iphone(SHARED_C, "Shared C"),
            iphone(SHARED_F, "Shared F")
        ),
    );
    (job, contoso, fabrikam)
}

/// A simulator serving Contoso (the first tenant) and Fabrikam, devices carrying
/// actions out at once, and a run of the job across both (no tenant configured: the
/// rows name them). Returns the simulator and the run report.
fn ran(dir: &Path) -> (Tenant, std::path::PathBuf) {
    let (job, contoso, fabrikam) = files(dir);
    let more = format!("{FABRIKAM},{FABRIKAM_DOMAIN}={}", fabrikam.display());
    let tenant = Tenant::start(
        &[&contoso],
        &dir.join("sim.log"),
        &[
            "--no-limits",
            "--action-delay",
            "0",
            "--tenant-inventory",
            &more,
        ],
    );
    let report = dir.join("report.csv");
    let mut child = run_cmd(&tenant, &[&job], &report, &["--timeout", "5s"])
        .env_remove("AZURE_TENANT_ID")
        .spawn()
        .unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows = read_report(&report);
    let outcomes: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["device_id"].as_str(), r["outcome"].as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (C1, "succeeded"),
            (F1, "succeeded"),
            (SHARED_C, "succeeded"),
            (SHARED_F, "succeeded")
        ],
        "{stderr}"
    );
    (tenant, report)
}

/// `intune-reset status REPORT --summary-json S` against `tenant`, Contoso configured
/// as the tenant (the rows' tenants are read all the same): exit code, stderr, the
/// status report's states by device and the summary.
fn status(
    tenant: &Tenant,
    report: &Path,
    dir: &Path,
) -> (
    Option<i32>,
    String,
    BTreeMap<String, String>,
    serde_json::Value,
) {
    let summary = dir.join("status-summary.json");
    let out = intune_reset()
        .arg("status")
        .arg(report)
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .arg("--summary-json")
        .arg(&summary)
        .args(["--timeout", "5s"])
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", crate::common::tenant::CLIENT)
        .env("AZURE_CLIENT_SECRET", "status-tenants-secret")
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let status_report = report.with_file_name(format!(
        "{}.status.csv",
        report.file_stem().unwrap().to_string_lossy()
    ));
    let states = read_report(&status_report)
        .into_iter()
        .map(|r| (r["device_id"].clone(), r["action_state"].clone()))
        .collect();
    let json = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap_or_default())
        .unwrap_or(serde_json::Value::Null);
    (out.status.code(), stderr, states, json)
}

fn states(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(d, s)| ((*d).to_owned(), (*s).to_owned()))
        .collect()
}

#[test]
fn regression_22_status_reads_each_row_in_the_tenant_it_names() {
    let dir = TempDir::new().unwrap();
    let (tenant, report) = ran(dir.path());
    let (code, stderr, read, summary) = status(&tenant, &report, dir.path());
    // Each reset is read where it was sent: every one is done. Read in Contoso (the
    // tenant configured), Fabrikam's F1 would be device_not_found and SHARED_F, like
    // SHARED_C in Fabrikam, not_found_in_results.
    assert_eq!(
        read,
        states(&[
            (C1, "done"),
            (F1, "done"),
            (SHARED_C, "done"),
            (SHARED_F, "done")
        ]),
        "{stderr}"
    );
    assert_eq!(code, Some(0), "{stderr}");
    // The summary per tenant: each signed in, each with its two rows.
    let tenants = &summary["tenants"];
    assert_eq!(tenants[TENANT]["states"]["done"], 2, "{summary}");
    assert_eq!(tenants[FABRIKAM_DOMAIN]["states"]["done"], 2, "{summary}");
    assert_eq!(tenants[FABRIKAM_DOMAIN]["signed_in"]["tenant"], FABRIKAM);
    assert!(tenants[FABRIKAM_DOMAIN]["aborted"].is_null(), "{summary}");
    assert!(stderr.contains("tenants (2):"), "{stderr}");

    // The simulator served each device's requests (the run's and status's) in its
    // row's tenant only.
    let (log, _) = tenant.stop();
    let home = |d: &str| {
        if d == F1 || d == SHARED_F {
            FABRIKAM
        } else {
            TENANT
        }
    };
    let mut seen = 0;
    for e in log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        if let Some(device) = e["device"]
            .as_str()
            .filter(|d| [C1, F1, SHARED_C, SHARED_F].contains(d))
        {
            seen += 1;
            assert_eq!(e["tenant"], home(device), "{e}");
        }
    }
    assert!(seen >= 8, "{log}");
}

#[test]
fn regression_22_a_tenant_that_cannot_sign_in_leaves_its_rows_not_checked_and_the_others_read() {
    let dir = TempDir::new().unwrap();
    let (tenant, report) = ran(dir.path());
    // Fabrikam's rows now name a tenant the simulator does not hold: its sign-in fails.
    let text = std::fs::read_to_string(&report).unwrap();
    let moved = dir.path().join("moved.csv");
    std::fs::write(
        &moved,
        text.replace(FABRIKAM_DOMAIN, "northwind.onmicrosoft.com"),
    )
    .unwrap();
    let (code, stderr, read, summary) = status(&tenant, &moved, dir.path());
    assert_eq!(
        read,
        states(&[
            (C1, "done"),
            (F1, "not_checked"),
            (SHARED_C, "done"),
            (SHARED_F, "not_checked")
        ]),
        "{stderr}"
    );
    // Aborted, as the worst tenant: exit 3, the tenant and why named.
    assert_eq!(code, Some(3), "{stderr}");
    let northwind = &summary["tenants"]["northwind.onmicrosoft.com"];
    assert!(northwind["signed_in"].is_null(), "{summary}");
    assert!(northwind["aborted"].is_string(), "{summary}");
    assert_eq!(northwind["states"]["not_checked"], 2, "{summary}");
    assert_eq!(summary["tenants"][TENANT]["states"]["done"], 2, "{summary}");
    let aborted = summary["aborted"].as_str().unwrap_or_default();
    assert!(
        aborted.contains("northwind.onmicrosoft.com"),
        "{aborted}\n{stderr}"
    );
    assert!(
        stderr.contains("tenant northwind.onmicrosoft.com could not be read"),
        "{stderr}"
    );
    drop(tenant);
}

#[test]
fn regression_22_status_simulate_reads_a_rehearsal_s_rows_each_in_its_simulated_tenant() {
    let dir = TempDir::new().unwrap();
    // The rehearsal's tenants hold the inventory's devices: the shared ids in both.
    let inventory = write(
        dir.path(),
        "inventory.csv",
        format!(
            "{HEADER},tenant\n{},{TENANT}\n{},{TENANT}\n{},{TENANT}\n{},{FABRIKAM}\n{},{FABRIKAM}\n{},{FABRIKAM}\n",
            iphone(C1, "C1"),
            iphone(SHARED_C, "Shared C"),
            iphone(SHARED_F, "Shared F"),
            iphone(F1, "F1"),
            iphone(SHARED_C, "Shared C"),
            iphone(SHARED_F, "Shared F"),
        ),
    );
    let job = write(
        dir.path(),
        "job.csv",
        format!(
            "{HEADER},tenant\n{},{TENANT}\n{},{FABRIKAM}\n{},{TENANT}\n{},{FABRIKAM}\n",
            iphone(C1, "C1"),
            iphone(F1, "F1"),
            iphone(SHARED_C, "Shared C"),
            iphone(SHARED_F, "Shared F"),
        ),
    );
    let report = dir.path().join("r.csv");
    let out = intune_reset()
        .current_dir(dir.path())
        .arg("run")
        .arg(&job)
        .arg("--simulate-inventory")
        .arg(&inventory)
        .args(["--simulate", "--yes", "--action", "auto", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let out = intune_reset()
        .current_dir(dir.path())
        .args(["status", "r.csv", "--simulate"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Right after the rehearsal each reset is pending in its own tenant; read in the
    // other, a shared id shows no reset (not_found_in_results) and F1 is not there.
    let read: BTreeMap<String, String> = read_report(&dir.path().join("r.status.csv"))
        .into_iter()
        .map(|r| (r["device_id"].clone(), r["action_state"].clone()))
        .collect();
    assert_eq!(read.len(), 4, "{stderr}");
    for (device, state) in &read {
        assert!(
            state != "not_found_in_results" && state != "device_not_found",
            "{device} read in the wrong tenant: {state}\n{stderr}"
        );
    }
    assert!(stderr.contains("tenants (2):"), "{stderr}");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
}
