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
    finish(&mut run_cmd(tenant, &[job], report, extra))
}

/// Runs `cmd` to its end: the exit code and stderr.
fn finish(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    let mut child = cmd.spawn().unwrap();
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `intune-reset ARGS --graph-url .. --authority-url .. --report REPORT` against
/// `tenant`, signed in with a client secret: the exit code and stderr.
fn intune(tenant: &Tenant, args: &[&str], report: &Path) -> (Option<i32>, String) {
    finish(
        std::process::Command::new(crate::common::tenant::bin())
            .args(args)
            .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
            .arg("--report")
            .arg(report)
            .env("AZURE_TENANT_ID", crate::common::tenant::TENANT)
            .env("AZURE_CLIENT_ID", crate::common::tenant::CLIENT)
            .env("AZURE_CLIENT_SECRET", "lookup-test-secret")
            .env_remove("INTUNE_RESET_ACCESS_TOKEN")
            .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
            .env_remove("AZURE_FEDERATED_TOKEN_FILE")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    )
}

/// `run --yes --action auto ARGS` through [`intune`].
fn where_run(tenant: &Tenant, report: &Path, args: &[&str]) -> (Option<i32>, String) {
    let all = [&["run", "--yes", "--action", "auto"][..], args].concat();
    intune(tenant, &all, report)
}

/// `run` of `--group` arguments.
fn group_run(tenant: &Tenant, report: &Path, groups: &[&str]) -> (Option<i32>, String) {
    let args: Vec<&str> = groups.iter().flat_map(|g| ["--group", g]).collect();
    where_run(tenant, report, &args)
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

#[test]
fn plan_live_judges_every_row_by_reads_and_sends_no_post() {
    let dir = TempDir::new().unwrap();
    let inventory = ios_job(dir.path(), 6);
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    // Two rows by id, the same device again by serial, an unknown serial, a Mac.
    let job = write(
        dir.path(),
        "mixed.csv",
        format!(
            "id,serialNumber\n{},\n{},\n,{}\n,NOSUCH\n00000001-bbbb-4000-8000-000000000001,\n",
            crate::common::tenant::ios_id(0),
            crate::common::tenant::ios_id(1),
            ios_serial(1),
        ),
    );
    let report = dir.path().join("plan.csv");
    let job_arg = job.to_string_lossy().into_owned();
    let (code, stderr) = intune(
        &tenant,
        &["plan", "--live", "--action", "auto", &job_arg],
        &report,
    );
    assert_eq!(
        code,
        Some(1),
        "the unknown serial needs attention: {stderr}"
    );
    assert!(stderr.contains("0 resetPasscode POSTs"), "{stderr}");
    let rows = read_report(&report);
    let outcomes: Vec<&str> = rows.iter().map(|r| r["outcome"].as_str()).collect();
    // Rows 3 and 4 name one device: whichever resolves first is planned, the other
    // is its duplicate (as in `run`).
    let mut same_device = outcomes[1..3].to_vec();
    same_device.sort();
    assert_eq!(outcomes[0], "planned", "{rows:?}");
    assert_eq!(same_device, ["duplicate", "planned"], "{rows:?}");
    assert_eq!(outcomes[3..], ["not_found", "ineligible"], "{rows:?}");
    assert!(
        rows[0]["detail"].contains("by its live facts"),
        "{:?}",
        rows[0]
    );
    let (log, _) = tenant.stop();
    // The token request is the only POST; no reset, no $batch.
    let posts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"POST\"") && !l.contains("\"kind\":\"token\""))
        .collect();
    assert!(posts.is_empty(), "plan --live sent a POST: {posts:?}");
    assert!(log.contains("\"GET\""), "it read the tenant");
}

#[test]
fn plan_live_takes_the_target_flags_run_takes() {
    let dir = TempDir::new().unwrap();
    let inventory = ios_job(dir.path(), 6);
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let report = dir.path().join("where.csv");
    let (code, stderr) = intune(
        &tenant,
        &["plan", "--live", "--where", "operatingSystem eq 'iOS'"],
        &report,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 6, "one row per matching device: {rows:?}");
    assert!(rows.iter().all(|r| r["source"] == "(--where)"), "{rows:?}");
    assert_eq!(count(&rows, "planned"), 6);
    // Every device of the tenant: the Macs too, judged ineligible.
    let report = dir.path().join("all.csv");
    let (code, stderr) = intune(&tenant, &["plan", "--live", "--all-devices"], &report);
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 8, "{rows:?}");
    assert_eq!(count(&rows, "ineligible"), 2);
    // Without --live they are refused: a plan offline cannot expand them.
    let report = dir.path().join("offline.csv");
    let (code, stderr) = intune(&tenant, &["plan", "--all-devices"], &report);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--live"), "{stderr}");
    let (log, _) = tenant.stop();
    assert!(
        !log.lines()
            .any(|l| l.contains("\"POST\"") && !l.contains("\"kind\":\"token\"")),
        "plan --live sent a POST"
    );
}

#[test]
fn the_entra_device_download_is_read_by_its_entra_device_id() {
    let dir = TempDir::new().unwrap();
    // The Entra admin center's "Download devices" headers (docs/graph.md, "The admin
    // center export").
    let job = write(
        dir.path(),
        "exportDevice.csv",
        "deviceId,displayName,operatingSystem,operatingSystemVersion,objectId,registeredOwners,isManaged\n\
         7c2d9e41-3b5a-4f6e-8d1c-2a9b8c7d6e5f,Ada iPhone,iOS,17.5,0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0,ada@contoso.com,True\n",
    );
    let report = dir.path().join("plan.csv");
    let out = crate::common::intune_reset()
        .args(["plan", "--action", "auto"])
        .arg(&job)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Entra admin center's device list"),
        "{stderr}"
    );
    let rows = read_report(&report);
    assert_eq!(rows[0]["outcome"], "planned", "{rows:?}");
    assert_eq!(rows[0]["reason"], "lookup_required", "{rows:?}");
    // Not taken for an Intune id: the device is looked up by its Entra device id.
    assert_eq!(rows[0]["device_id"], "", "{rows:?}");
    assert!(
        rows[0]["detail"].contains("found by deviceId '7c2d9e41"),
        "{rows:?}"
    );
    assert_eq!(rows[0]["device_name"], "Ada iPhone");
}

/// A tenant where ada has three iPhones and bob one, with their UPNs.
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
            crate::common::tenant::ios_id(i),
            ios_serial(i)
        ));
    }
    write(dir, "tenant.csv", csv)
}

#[test]
fn a_row_naming_a_user_stands_for_each_of_the_users_devices() {
    let dir = TempDir::new().unwrap();
    let inventory = users_tenant(dir.path());
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    // Compromised users as a responder is handed them, and one of ada's phones again.
    let job = write(
        dir.path(),
        "users.csv",
        format!(
            "userPrincipalName,serialNumber\nAda@Contoso.com,\nbob@contoso.com,\nnobody@contoso.com,\n,{}\n",
            ios_serial(1)
        ),
    );
    let report = dir.path().join("report.csv");
    let (code, stderr) = run(&tenant, &job, &report, &[]);
    assert_eq!(code, Some(1), "the unknown user needs attention: {stderr}");
    assert!(
        stderr.contains("user ada@contoso.com → 3 devices"),
        "{stderr}"
    );
    let rows = read_report(&report);
    // ada's three devices keep her row (2), bob's his (3).
    let of_row = |n: &str| rows.iter().filter(|r| r["row"] == n).collect::<Vec<_>>();
    assert_eq!(of_row("2").len(), 3, "{rows:?}");
    assert!(
        of_row("2")
            .iter()
            .all(|r| r["user_principal_name"].eq_ignore_ascii_case("ada@contoso.com"))
    );
    assert_eq!(of_row("3").len(), 1);
    assert_eq!(of_row("4")[0]["outcome"], "not_found");
    assert_eq!(of_row("4")[0]["reason"], "user_not_found");
    // The serial row names a device ada's row already covers: one of the two is a
    // duplicate, and the device is reset once.
    assert_eq!(count(&rows, "succeeded"), 4, "{rows:?}");
    assert_eq!(count(&rows, "duplicate"), 1, "{rows:?}");
    // A succeeded row keeps the platform's caveat from the plan.
    assert!(
        rows.iter()
            .filter(|r| r["outcome"] == "succeeded")
            .all(|r| r["detail"]
                .contains("on this platform the passcode is removed; a passcode policy")),
        "{rows:?}"
    );
    let resets = tenant.resets();
    assert_eq!(resets.len(), 4);
    assert!(resets.values().all(|n| *n == 1), "{resets:?}");
}

#[test]
fn a_killed_user_run_resumes_on_the_devices_it_recorded() {
    let dir = TempDir::new().unwrap();
    let inventory = users_tenant(dir.path());
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--action-delay", "0"],
    );
    let job = write(
        dir.path(),
        "users.csv",
        "userPrincipalName\nada@contoso.com\nbob@contoso.com\n",
    );
    let report = dir.path().join("report.csv");
    let args = ["--write-rate", "1", "--timeout", "2s"];
    let mut child = run_cmd(&tenant, &[&job], &report, &args).spawn().unwrap();
    crate::common::tenant::wait_for_ledger(
        &mut child,
        &crate::common::tenant::ledger_of(&report),
        "send",
        2,
        LIMIT,
    );
    crate::common::tenant::signal(&mut child, "-KILL");
    let _ = child.wait();
    let ledger = std::fs::read_to_string(crate::common::tenant::ledger_of(&report)).unwrap();
    assert_eq!(
        ledger.matches("\"event\":\"expand\"").count(),
        2,
        "{ledger}"
    );
    let resume = [&args[..], &["--resume"]].concat();
    let (code, stderr) = run(&tenant, &job, &report, &resume);
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 4, "one row per device: {rows:?}");
    assert_eq!(count(&rows, "succeeded"), 4);
    let resets = tenant.resets();
    assert_eq!(resets.len(), 4);
    assert!(
        resets.values().all(|n| *n == 1),
        "each device once: {resets:?}"
    );
}

#[test]
fn users_given_on_the_command_line_and_in_a_file_are_expanded() {
    let dir = TempDir::new().unwrap();
    let inventory = users_tenant(dir.path());
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    // A list of UPNs without a header, as a responder pastes it.
    let list = write(dir.path(), "compromised.txt", "bob@contoso.com\n");
    let report = dir.path().join("report.csv");
    let list_arg = list.to_string_lossy().into_owned();
    let (code, stderr) = where_run(
        &tenant,
        &report,
        &["--user", "ada@contoso.com", "--users", &list_arg],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(count(&rows, "succeeded"), 4, "{rows:?}");
    assert_eq!(
        rows.iter().filter(|r| r["source"] == "(--user)").count(),
        3,
        "{rows:?}"
    );
    assert_eq!(tenant.resets().len(), 4);
}

/// ada's three iPhones, bob's one; bob's carries an Entra device id.
fn groups_tenant(dir: &Path) -> std::path::PathBuf {
    let mut csv = String::from(
        "id,deviceName,serialNumber,operatingSystem,osVersion,userPrincipalName,azureADDeviceId\n",
    );
    for i in 0..4 {
        let user = if i < 3 {
            "ada@contoso.com"
        } else {
            "bob@contoso.com"
        };
        csv.push_str(&format!(
            "{},iPhone {i},{},iOS,17.5,{user},{:08x}-eeee-4000-8000-{:012x}\n",
            crate::common::tenant::ios_id(i),
            ios_serial(i),
            i + 1,
            i + 1
        ));
    }
    write(dir, "tenant.csv", csv)
}

#[test]
fn a_group_stands_for_its_users_devices_and_its_member_devices() {
    let dir = TempDir::new().unwrap();
    let inventory = groups_tenant(dir.path());
    // Sales: ada (three iPhones) and bob's iPhone as a device member.
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &[
            "--no-limits",
            "--action-delay",
            "0",
            "--group",
            "Sales=ada@contoso.com,00000004-eeee-4000-8000-000000000004",
        ],
    );
    let report = dir.path().join("report.csv");
    let (code, stderr) = group_run(&tenant, &report, &["Sales", "Nobody here"]);
    assert_eq!(code, Some(1), "the unknown group needs attention: {stderr}");
    assert!(stderr.contains("group Sales → 4 devices"), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(count(&rows, "succeeded"), 4, "{rows:?}");
    assert!(
        rows.iter().any(|r| r["reason"] == "group_not_found"),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r["source"] == "(--group)"), "{rows:?}");
    let resets = tenant.resets();
    assert_eq!(resets.len(), 4);
    assert!(resets.values().all(|n| *n == 1));
}

#[test]
fn without_group_member_read_the_run_stops_naming_the_permission() {
    let dir = TempDir::new().unwrap();
    let inventory = groups_tenant(dir.path());
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &[
            "--no-limits",
            "--group",
            "Sales=ada@contoso.com",
            "--deny-group-read",
        ],
    );
    let report = dir.path().join("report.csv");
    let (code, stderr) = group_run(&tenant, &report, &["Sales"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("GroupMember.Read.All"), "{stderr}");
    assert!(tenant.resets().is_empty());
}

#[test]
fn a_filter_graph_ignores_is_still_checked_on_every_device() {
    let dir = TempDir::new().unwrap();
    // Six iPhones and two Macs.
    let inventory = ios_job(dir.path(), 6);
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let report = dir.path().join("report.csv");
    // A compound filter the simulator, like Graph for some filters, ignores: it
    // returns every device, and the client-side check keeps two.
    let filter = "operatingSystem eq 'iOS' and (deviceName eq 'iPhone 1' or startswith(deviceName,'iPhone 4'))";
    let (code, stderr) = where_run(&tenant, &report, &["--where", filter]);
    assert_eq!(code, Some(2), "a filter run needs --max-devices: {stderr}");
    assert!(stderr.contains("--max-devices"), "{stderr}");
    assert!(tenant.resets().is_empty());
    let (code, stderr) = where_run(
        &tenant,
        &report,
        &["--where", filter, "--max-devices", "10"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("→ 2 devices"), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(count(&rows, "succeeded"), 2, "{rows:?}");
    let names: Vec<&str> = rows.iter().map(|r| r["device_name"].as_str()).collect();
    assert!(
        names.contains(&"iPhone 1") && names.contains(&"iPhone 4"),
        "{names:?}"
    );
    assert_eq!(tenant.resets().len(), 2);
}

#[test]
fn all_devices_is_bounded_by_max_devices_and_an_uncheckable_filter_is_refused() {
    let dir = TempDir::new().unwrap();
    let inventory = ios_job(dir.path(), 6);
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let report = dir.path().join("report.csv");
    let (code, stderr) = where_run(&tenant, &report, &["--all-devices", "--max-devices", "5"]);
    assert_eq!(code, Some(2), "8 devices are more than 5: {stderr}");
    assert!(stderr.contains("more than --max-devices 5"), "{stderr}");
    let (code, stderr) = where_run(
        &tenant,
        &report,
        &[
            "--where",
            "complianceState eq 'noncompliant'",
            "--max-devices",
            "5",
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("not a property this tool can check"),
        "{stderr}"
    );
    assert!(tenant.resets().is_empty(), "nothing was sent");
    let (code, stderr) = where_run(&tenant, &report, &["--all-devices", "--max-devices", "8"]);
    assert_eq!(
        code,
        Some(0),
        "the two Macs are ineligible, not failed: {stderr}"
    );
    let rows = read_report(&report);
    assert_eq!(
        (count(&rows, "succeeded"), count(&rows, "ineligible")),
        (6, 2),
        "{rows:?}"
    );
}

#[test]
fn an_intune_id_graph_does_not_know_names_the_column_it_was_read_from() {
    let dir = TempDir::new().unwrap();
    let inventory = ios_job(dir.path(), 2);
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let job = write(
        dir.path(),
        "ids.csv",
        "Device ID,OS,OS version\n7c2d9e41-3b5a-4f6e-8d1c-2a9b8c7d6e5f,iPhone,17.5\n",
    );
    let report = dir.path().join("report.csv");
    let (code, stderr) = run(&tenant, &job, &report, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(rows[0]["outcome"], "not_found", "{rows:?}");
    assert!(
        rows[0]["detail"].contains("read from the column 'Device ID'"),
        "{rows:?}"
    );
    assert!(tenant.resets().is_empty());
}

#[test]
fn a_group_of_many_members_is_read_page_by_page() {
    let dir = TempDir::new().unwrap();
    // 150 users with one iPhone each: two pages of transitive members.
    let mut csv =
        String::from("id,deviceName,serialNumber,operatingSystem,osVersion,userPrincipalName\n");
    let mut members = Vec::new();
    for i in 0..150 {
        let user = format!("user{i}@contoso.com");
        csv.push_str(&format!(
            "{},iPhone {i},{},iOS,17.5,{user}\n",
            crate::common::tenant::ios_id(i),
            ios_serial(i)
        ));
        members.push(user);
    }
    let inventory = write(dir.path(), "tenant.csv", csv);
    let group = format!("Everyone={}", members.join(","));
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0", "--group", &group],
    );
    let report = dir.path().join("report.csv");
    let (code, stderr) = group_run(&tenant, &report, &["Everyone"]);
    // 150 devices from one row: more than ten per row, so --max-devices is needed.
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--max-devices"), "{stderr}");
    let mut cmd_args = vec![
        "--group",
        "Everyone",
        "--max-devices",
        "150",
        "--unthrottled",
    ];
    let (code, stderr) = where_run(&tenant, &report, &cmd_args.split_off(0));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("group Everyone → 150 devices"), "{stderr}");
    let (log, _) = tenant.stop();
    let member_pages = log
        .lines()
        .filter(|l| l.contains("transitiveMembers"))
        .count();
    assert_eq!(member_pages, 4, "two pages, read by each of the two runs");
}

#[test]
fn regression_18_a_device_named_by_a_user_and_a_group_is_one_ineligible_row_and_a_duplicate() {
    let dir = TempDir::new().unwrap();
    let inventory = write(
        dir.path(),
        "inventory.csv",
        "id,deviceName,operatingSystem,osVersion,userPrincipalName\n\
         a1000001-0000-4000-8000-000000000001,Mac 1,macOS,14.1,ada@contoso.com\n",
    );
    let tenant = Tenant::start(
        &[&inventory],
        &dir.path().join("sim.jsonl"),
        &["--group", "Responders=ada@contoso.com"],
    );
    let report = dir.path().join("report.csv");
    let args = ["--user", "ada@contoso.com", "--group", "Responders"];
    let mut child = run_cmd(&tenant, &[], &report, &args).spawn().unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);

    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(count(&rows, "ineligible"), 1, "{rows:?}");
    assert_eq!(count(&rows, "duplicate"), 1, "{rows:?}");
}

/// The simulator's GETs of one device by its id: `(reads of its facts, reads of its
/// deviceActionResults)`.
fn device_reads(tenant: &Tenant) -> (usize, usize) {
    let text = std::fs::read_to_string(&tenant.log).unwrap_or_default();
    let mut facts = 0;
    let mut results = 0;
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let path = e["path"].as_str().unwrap_or("");
        let Some(tail) = path.split("/managedDevices/").nth(1) else {
            continue;
        };
        if e["method"] != "GET" || tail.starts_with('?') {
            continue;
        }
        if path.contains("deviceActionResults") {
            results += 1;
        } else {
            facts += 1;
        }
    }
    (facts, results)
}

#[test]
fn regression_19_listed_devices_are_judged_by_their_listing_not_read_again() {
    let dir = TempDir::new().unwrap();
    let inventory = write(
        dir.path(),
        "inventory.csv",
        "id,deviceName,operatingSystem,osVersion,userPrincipalName\n\
         a1000001-0000-4000-8000-000000000001,iPhone 1,iOS,17.5,ada@contoso.com\n\
         a1000002-0000-4000-8000-000000000002,iPhone 2,iOS,17.5,ada@contoso.com\n\
         a1000003-0000-4000-8000-000000000003,Mac 3,macOS,14.1,ada@contoso.com\n",
    );
    let tenant = Tenant::start(&[&inventory], &dir.path().join("sim.jsonl"), &[]);

    // plan --live --all-devices: a request per page, none per device.
    let plan = dir.path().join("plan.csv");
    let out = std::process::Command::new(crate::common::tenant::bin())
        .args(["plan", "--live", "--all-devices", "--action", "auto"])
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .arg("--report")
        .arg(&plan)
        .env("AZURE_TENANT_ID", crate::common::tenant::TENANT)
        .env("AZURE_CLIENT_ID", crate::common::tenant::CLIENT)
        .env("AZURE_CLIENT_SECRET", "crash-test-secret")
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert_eq!(read_report(&plan).len(), 3, "{stderr}");
    assert_eq!(
        device_reads(&tenant),
        (0, 0),
        "plan --live read devices one by one"
    );

    // run --user: Intune's record is read before each reset, the facts are not.
    let report = dir.path().join("report.csv");
    let args = ["--user", "ada@contoso.com"];
    let mut child = run_cmd(&tenant, &[], &report, &args).spawn().unwrap();
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(count(&rows, "succeeded"), 2, "{rows:?}");
    assert_eq!(count(&rows, "ineligible"), 1, "{rows:?}");
    assert_eq!(
        device_reads(&tenant),
        (0, 2),
        "one read of Intune's record per reset"
    );
}
