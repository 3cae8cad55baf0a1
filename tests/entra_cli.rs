//! An Entra admin center download judged by the tenant (issue 19): its `Windows` rows
//! cannot tell a desktop from Windows 10 Mobile, so `plan` says the tenant decides,
//! and `plan --live` and `run` find each device by its Entra device id and judge it by
//! Intune's facts. A row whose own facts decide is not read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::common::tenant::{CLIENT, TENANT, Tenant, bin, run_cmd, wait_for};
use crate::common::{Row, read_report, write};

const LIMIT: Duration = Duration::from_secs(120);

const LUMIA_ID: &str = "19191919-0001-4000-8000-000000000001";
const LUMIA_ENTRA: &str = "e19e19e1-0001-4000-8000-000000000001";
const OLD_DESKTOP_ID: &str = "19191919-0002-4000-8000-000000000002";
const OLD_DESKTOP_ENTRA: &str = "e19e19e1-0002-4000-8000-000000000002";
const NEW_DESKTOP_ID: &str = "19191919-0003-4000-8000-000000000003";
const NEW_DESKTOP_ENTRA: &str = "e19e19e1-0003-4000-8000-000000000003";

/// The tenant as Intune knows it: a Lumia on Windows 10 Mobile 1709, a desktop still on
/// Windows 10 1703 (build 15063, a Windows 10 Mobile build too), a Windows 11 desktop.
fn inventory(dir: &Path) -> PathBuf {
    write(
        dir,
        "tenant.csv",
        format!(
            "id,deviceName,serialNumber,operatingSystem,osVersion,deviceType,azureADDeviceId\n\
             {LUMIA_ID},Lumia-Ana,LUMIA0001,Windows,10.0.15254.603,windowsPhone,{LUMIA_ENTRA}\n\
             {OLD_DESKTOP_ID},DESKTOP-OLD,PF0OLD001,Windows,10.0.15063.2679,desktop,{OLD_DESKTOP_ENTRA}\n\
             {NEW_DESKTOP_ID},DESKTOP-NEW,PF0NEW001,Windows,10.0.22631.4460,desktop,{NEW_DESKTOP_ENTRA}\n"
        ),
    )
}

/// The Entra admin center's "Download devices" file naming the three: no device type,
/// `deviceId` the Entra device id, `objectId` Entra's own object id.
fn entra_download(dir: &Path) -> PathBuf {
    write(
        dir,
        "exportDevice.csv",
        format!(
            "deviceId,displayName,operatingSystem,operatingSystemVersion,objectId,registeredOwners,isManaged\n\
             {LUMIA_ENTRA},Lumia-Ana,Windows,10.0.15254.603,0f000000-0000-4000-8000-000000000001,ana@contoso.com,True\n\
             {OLD_DESKTOP_ENTRA},DESKTOP-OLD,Windows,10.0.15063.2679,0f000000-0000-4000-8000-000000000002,ben@contoso.com,True\n\
             {NEW_DESKTOP_ENTRA},DESKTOP-NEW,Windows,10.0.22631.4460,0f000000-0000-4000-8000-000000000003,cleo@contoso.com,True\n"
        ),
    )
}

/// `intune-reset ARGS --report REPORT` against `tenant`, signed in with a client
/// secret: the exit code and stderr.
fn intune(tenant: &Tenant, args: &[&str], report: &Path) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(bin())
        .args(args)
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .arg("--report")
        .arg(report)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", "entra-test-secret")
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The report's row for the device named `name`.
fn row_of<'a>(rows: &'a [Row], name: &str) -> &'a Row {
    let of: Vec<&Row> = rows.iter().filter(|r| r["device_name"] == name).collect();
    assert_eq!(of.len(), 1, "one row for {name}: {rows:?}");
    of[0]
}

#[test]
fn regression_19_plan_says_the_tenant_judges_an_entra_download_windows_rows() {
    let dir = TempDir::new().unwrap();
    let job = entra_download(dir.path());
    let report = dir.path().join("plan.csv");
    let out = crate::common::intune_reset()
        .args(["plan", "--action", "auto"])
        .arg(&job)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_report(&report);
    for name in ["Lumia-Ana", "DESKTOP-OLD"] {
        let r = row_of(&rows, name);
        assert_eq!(
            (r["outcome"].as_str(), r["reason"].as_str()),
            ("planned", "lookup_required"),
            "{r:?}"
        );
        assert_eq!(
            r["platform"], "",
            "no platform before the tenant says: {r:?}"
        );
        assert!(
            r["detail"].contains("a Windows desktop or Windows 10 Mobile"),
            "{r:?}"
        );
    }
    // Windows 11's build is past Windows 10 Mobile's last: the file decides.
    let new = row_of(&rows, "DESKTOP-NEW");
    assert_eq!(
        (new["outcome"].as_str(), new["reason"].as_str()),
        ("ineligible", "windows_not_supported"),
        "{new:?}"
    );
}

#[test]
fn regression_19_plan_live_judges_an_entra_download_windows_rows_by_the_tenant() {
    let dir = TempDir::new().unwrap();
    let tenant = Tenant::start(
        &[&inventory(dir.path())],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let job = entra_download(dir.path()).to_string_lossy().into_owned();
    let report = dir.path().join("plan.csv");
    let (code, stderr) = intune(
        &tenant,
        &["plan", "--live", "--action", "auto", &job],
        &report,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    let lumia = row_of(&rows, "Lumia-Ana");
    assert_eq!(lumia["outcome"], "planned", "{lumia:?}");
    assert_eq!(lumia["device_id"], LUMIA_ID, "{lumia:?}");
    assert_eq!(lumia["platform"], "windows_mobile", "{lumia:?}");
    assert_eq!(lumia["action"], "reset-pin", "{lumia:?}");
    let old = row_of(&rows, "DESKTOP-OLD");
    assert_eq!(
        (old["outcome"].as_str(), old["reason"].as_str()),
        ("ineligible", "windows_not_supported"),
        "{old:?}"
    );
    assert_eq!(old["device_id"], OLD_DESKTOP_ID, "{old:?}");
    let (log, _) = tenant.stop();
    assert!(
        !log.lines()
            .any(|l| l.contains("\"kind\":\"resetPasscode\"")),
        "plan --live sent a reset"
    );
    let log = log.to_lowercase();
    assert!(
        log.contains(OLD_DESKTOP_ENTRA),
        "looked up by its Entra device id"
    );
    assert!(
        !log.contains(NEW_DESKTOP_ENTRA),
        "a row its file decides is not read"
    );
}

#[test]
fn regression_19_run_resets_the_windows_10_mobile_device_of_an_entra_download_once() {
    let dir = TempDir::new().unwrap();
    let tenant = Tenant::start(
        &[&inventory(dir.path())],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let job = entra_download(dir.path());
    let report = dir.path().join("run.csv");
    let mut child = run_cmd(&tenant, &[&job], &report, &[]).spawn().unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 3, "every job row once: {rows:?}");

    let lumia = row_of(&rows, "Lumia-Ana");
    assert_eq!(lumia["outcome"], "succeeded", "{lumia:?}");
    assert_eq!(lumia["device_id"], LUMIA_ID, "{lumia:?}");
    assert_eq!(lumia["platform"], "windows_mobile", "{lumia:?}");
    assert_eq!(lumia["action"], "reset-pin", "{lumia:?}");

    // Ineligible by Intune's facts, and the row says which Intune device that is.
    let old = row_of(&rows, "DESKTOP-OLD");
    assert_eq!(
        (old["outcome"].as_str(), old["reason"].as_str()),
        ("ineligible", "windows_not_supported"),
        "{old:?}"
    );
    assert_eq!(old["device_id"], OLD_DESKTOP_ID, "{old:?}");
    assert_eq!(old["platform"], "windows", "{old:?}");
    assert!(old["detail"].contains("by its live facts"), "{old:?}");

    let new = row_of(&rows, "DESKTOP-NEW");
    assert_eq!(new["reason"], "windows_not_supported", "{new:?}");

    let resets = tenant.resets();
    assert_eq!(
        resets.into_iter().collect::<Vec<_>>(),
        [(LUMIA_ID.to_owned(), 1)],
        "the Lumia alone, once"
    );
    let (log, _) = tenant.stop();
    let log = log.to_lowercase();
    assert!(
        log.contains(OLD_DESKTOP_ENTRA),
        "looked up by its Entra device id"
    );
    assert!(
        !log.contains(NEW_DESKTOP_ENTRA),
        "a row its file decides is not read"
    );
}
