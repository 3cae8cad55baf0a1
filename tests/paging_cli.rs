//! Bounded listings (issue 17, point 7): a listing whose `@odata.nextLink` names a page
//! it already read stops, with a sentence naming the listing, and nothing it listed is
//! acted on. The simulator's `next-link-loop` fault makes every page name itself as the
//! next one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::common::tenant::{CLIENT, TENANT, Tenant, bin, ios_id, ios_serial, wait_for};
use crate::common::{read_report, write};

const LIMIT: Duration = Duration::from_secs(120);

/// ada has three iPhones, bob one.
fn users_tenant(dir: &Path) -> std::path::PathBuf {
    let mut csv =
        String::from("id,deviceName,serialNumber,operatingSystem,osVersion,userPrincipalName\n");
    for i in 0..4 {
        let user = if i < 3 {
            "ada@contoso.com"
        } else {
            "bob@contoso.com"
        };
        csv.push_str(&format!(
            "{},iPhone {i},{},iOS,17.5,{user}\n",
            ios_id(i),
            ios_serial(i)
        ));
    }
    write(dir, "tenant.csv", csv)
}

/// `intune-reset run --yes --action auto ARGS` against `tenant`: the exit code and stderr.
fn run(tenant: &Tenant, report: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(bin())
        .args(["run", "--yes", "--action", "auto"])
        .args(args)
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .arg("--report")
        .arg(report)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", "paging-test-secret")
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn regression_17_7_a_next_link_seen_before_stops_the_listing() {
    let dir = TempDir::new().unwrap();
    let inventory = users_tenant(dir.path());
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &[
            "--no-limits",
            "--action-delay",
            "0",
            "--fault",
            "next-link-loop=1",
        ],
    );
    // A user's devices, and bob's phone by serial number (one `$filter` lookup).
    let job = write(
        dir.path(),
        "job.csv",
        format!(
            "userPrincipalName,serialNumber\nada@contoso.com,\n,{}\n",
            ios_serial(3)
        ),
    );
    let job = job.to_string_lossy().into_owned();
    let report = dir.path().join("report.csv");
    let (code, stderr) = run(&tenant, &report, &[&job, "--lookup-via", "filter"]);
    assert_eq!(code, Some(1), "each listing failed its row: {stderr}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["outcome"], "failed", "{row:?}");
        assert_eq!(row["reason"], "listing_incomplete", "{row:?}");
        assert!(row["detail"].contains("goes in a circle"), "{row:?}");
    }
    let detail = |n: &str| &rows.iter().find(|r| r["row"] == n).unwrap()["detail"];
    assert!(
        detail("2").contains("the devices of user ada@contoso.com"),
        "{rows:?}"
    );
    assert!(
        detail("3").contains(&format!("serialNumber '{}'", ios_serial(3))),
        "{rows:?}"
    );

    // The whole tenant (`--where`) is read the same way.
    let report = dir.path().join("where.csv");
    let (code, stderr) = run(
        &tenant,
        &report,
        &["--where", "operatingSystem eq 'iOS'", "--max-devices", "10"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["reason"], "listing_incomplete", "{rows:?}");
    assert!(
        rows[0]["detail"].contains("the devices where operatingSystem eq 'iOS'"),
        "{rows:?}"
    );

    let (log, _) = tenant.stop();
    assert!(
        !log.contains("\"resetPasscode\""),
        "nothing is sent on a half-read listing: {log}"
    );
    // Each listing stops at its second page, the one its link named again: three
    // listings, a handful of GETs, never hundreds.
    let lists = log
        .lines()
        .filter(|l| l.contains("\"kind\":\"list\""))
        .count();
    assert!((3..=9).contains(&lists), "{lists} list requests: {log}");
}
