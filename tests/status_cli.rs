//! `status` end to end: a real run against the simulator on 127.0.0.1:0, then `status`
//! on its report, in-process and as the real binary (for stderr and exit codes).
//!
//! The simulator's clock is moved forward instead of sleeping: resets stay `pending`
//! until the test advances it past `action_delay`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{SIMULATED_CLIENT_ID, simulated_client};
use intune_reset::error::CommandError;
use intune_reset::pacing::cooldown::Backoff;
use intune_reset::planner::{LookupMode, PlanOptions};
use intune_reset::report::ReportFormat;
use intune_reset::rules::ActionChoice;
use intune_reset::run::{RunConfig, Settings, execute, prepare};
use intune_reset::sim::{Inventory, SimClock, SimConfig, SimHandle, Simulator};
use intune_reset::status::{self, StatusConfig, StatusError, StatusOutcome};
use tempfile::TempDir;

use crate::common::{Row, intune_reset, read_report};

/// Shorter than a token's lifetime, so moving the clock past it expires no token.
const ACTION_DELAY: Duration = Duration::from_secs(600);

/// iOS devices (passcode removed, none generated), Android work profiles (a generated
/// passcode, or notSupported for some whose reset token was never activated), Android dedicated devices
/// (generated passcodes), and ineligible macOS rows that `status` must only copy.
fn write_job(dir: &Path) -> PathBuf {
    let mut csv = String::from(
        "id,deviceName,serialNumber,operatingSystem,osVersion,deviceType,deviceEnrollmentType\n",
    );
    for i in 0..4 {
        csv.push_str(&format!(
            "{:08x}-0000-4000-8000-{:012x},iPhone {i},SNI{i:05},iOS,17.5,iPhone,\n",
            i + 1,
            i + 1
        ));
    }
    for i in 0..16 {
        csv.push_str(&format!(
            "{:08x}-3333-4000-8000-{:012x},Pixel {i},SNP{i:05},Android,13,androidForWork,\n",
            i + 1,
            i + 1
        ));
    }
    for i in 0..3 {
        csv.push_str(&format!(
            "{:08x}-4444-4000-8000-{:012x},Kiosk {i},SNK{i:05},Android,14,androidEnterprise,androidEnterpriseDedicatedDevice\n",
            i + 1,
            i + 1
        ));
        csv.push_str(&format!(
            "{:08x}-1111-4000-8000-{:012x},=MacBook {i},SNM{i:05},macOS,15.1,macMDM,\n",
            i + 1,
            i + 1
        ));
    }
    let path = dir.join("job.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

const ELIGIBLE: usize = 4 + 16 + 3;
const ROWS: usize = ELIGIBLE + 3;

struct Tenant {
    sim: SimHandle,
    clock: SimClock,
    dir: TempDir,
    run_report: PathBuf,
}

fn settings() -> Settings {
    Settings {
        concurrency: 8,
        verify_delay: Duration::from_millis(20),
        request_timeout: Duration::from_secs(5),
        backoff: Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        },
        ..Settings::default()
    }
    .unlimited()
}

/// A simulator and a finished run against it, whose report is in `format`.
async fn ran(format: ReportFormat) -> Tenant {
    let dir = tempfile::tempdir().unwrap();
    let job = write_job(dir.path());
    let clock = SimClock::new();
    let config = SimConfig {
        inventory: Inventory::from_job_files(std::slice::from_ref(&job), 7, &Default::default())
            .unwrap(),
        seed: 7,
        limits: None,
        action_delay: ACTION_DELAY,
        clock: clock.clone(),
        client_secret: Some(intune_reset::sim::Secret::new("simulated-secret")),
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start(config, listener).unwrap();
    let run_report = dir.path().join(format!("run.{}", format.extension()));
    let run = RunConfig {
        files: vec![job],
        options: PlanOptions {
            action: Some(intune_reset::rules::Actions::one(ActionChoice::Auto)),
            lookup: LookupMode::Auto,
            tenants: Default::default(),
        },
        read: Default::default(),
        report: Some(run_report.clone()),
        format,
        bom: true,
        summary_json: None,
        yes: true,
        max_devices: None,
        settings: settings(),
        interactive: false,
        resume: false,
        lock: None,
        wait_for_lock: false,
        passcodes: None,
        lookup_via: Default::default(),
        reset_again: false,
        tenants: Vec::new(),
        users: Vec::new(),
        groups: Vec::new(),
        filter: None,
    };
    let client = simulated_client(&sim, SIMULATED_CLIENT_ID, run.settings.request_timeout)
        .await
        .unwrap();
    let prepared = prepare(&run).unwrap();
    let outcome = execute(&run, client, prepared, std::future::pending())
        .await
        .unwrap();
    assert!(outcome.aborted.is_none());
    Tenant {
        sim,
        clock,
        dir,
        run_report,
    }
}

impl Tenant {
    fn config(&self) -> StatusConfig {
        StatusConfig {
            tenant: Default::default(),
            into_run_report: false,
            run_sheet: None,
            run_report: self.run_report.clone(),
            report: None,
            passcodes: None,
            summary_json: None,
            bom: true,
            wait: None,
            poll_interval: Duration::from_millis(50),
            settings: settings(),
        }
    }

    async fn status(&self, config: &StatusConfig) -> Result<StatusOutcome, CommandError> {
        let client = simulated_client(
            &self.sim,
            SIMULATED_CLIENT_ID,
            config.settings.request_timeout,
        )
        .await
        .unwrap();
        status::execute(config, client, Box::pin(std::future::pending())).await
    }

    /// Every reset the simulator holds reaches its final state.
    fn devices_check_in(&self) {
        self.clock.advance(ACTION_DELAY);
    }

    fn action_result_reads(&self) -> u64 {
        let stats = self.sim.stats();
        stats.requests_by_kind.get("get").copied().unwrap_or(0)
    }

    /// `intune-reset status` on the run's report, as a process signed in to the simulator.
    fn command(&self) -> assert_cmd::Command {
        self.command_on(&self.run_report)
    }

    fn command_on(&self, run_report: &Path) -> assert_cmd::Command {
        let mut cmd = intune_reset();
        let url = self.sim.base_url();
        cmd.env("AZURE_CLIENT_SECRET", "simulated-secret")
            .arg("status")
            .arg(run_report)
            .args(["--tenant", &self.sim.config().tenant_id])
            .args(["--client-id", SIMULATED_CLIENT_ID])
            .args(["--graph-url", &url, "--authority-url", &url]);
        cmd
    }
}

fn states(rows: &[Row]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r["action_state"].clone()).or_default() += 1;
    }
    m
}

/// Every run row appears once, in order, with the run's cells unchanged (but the
/// detail of a reset that ended badly, which says what that means, and a user the run
/// did not know); only succeeded rows get a state.
fn assert_copies_the_run(run: &[Row], status: &[Row]) {
    assert_eq!(status.len(), run.len(), "one status row per run row");
    for (r, s) in run.iter().zip(status) {
        let ended_badly =
            ["failed", "notSupported", "canceled"].contains(&s["action_state"].as_str());
        for (column, value) in r {
            if column == "detail" && ended_badly {
                assert_ne!(&s[column], value, "row {}: the detail explains", r["row"]);
                continue;
            }
            // A user the run did not know is filled in from Graph for a row read.
            if column == "user_principal_name" && value.is_empty() && !s["action_state"].is_empty()
            {
                continue;
            }
            assert_eq!(&s[column], value, "{column} of row {}", r["row"]);
        }
        assert_eq!(
            s["action_state"].is_empty(),
            r["outcome"] != "succeeded",
            "row {}: {:?}",
            r["row"],
            s
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_after_a_run_every_reset_is_pending_and_other_rows_are_copied() {
    let t = ran(ReportFormat::Csv).await;
    let outcome = t.status(&t.config()).await.unwrap();
    let run = read_report(&t.run_report);
    let report = t.dir.path().join("run.status.csv");
    assert_eq!(outcome.summary.report.as_deref(), Some(report.as_path()));
    let status = read_report(&report);
    assert_copies_the_run(&run, &status);
    assert_eq!(states(&status)["pending"], ELIGIBLE);
    assert_eq!(states(&status)[""], ROWS - ELIGIBLE);
    assert_eq!(outcome.summary.pending.len(), ELIGIBLE);
    assert_eq!(outcome.summary.passes, 1);
    assert!(!outcome.summary.all_done());
    assert!(!t.dir.path().join("run.status.csv.partial").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_passcodes_file_is_left_while_no_passcode_exists_yet() {
    let t = ran(ReportFormat::Csv).await;
    let passcodes = t.dir.path().join("passcodes.csv");
    let config = StatusConfig {
        passcodes: Some(passcodes.clone()),
        ..t.config()
    };
    // Right after the run every reset is pending: no passcode yet, so no file.
    let outcome = t.status(&config).await.unwrap();
    assert!(outcome.summary.passcodes_file.is_none());
    assert!(
        !passcodes.exists(),
        "an empty passcodes file would block the next try"
    );
    // Once the devices check in, the same name works.
    t.devices_check_in();
    let outcome = t.status(&config).await.unwrap();
    assert_eq!(
        outcome.summary.passcodes_file.as_deref(),
        Some(passcodes.as_path())
    );
    assert!(passcodes.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_report_is_never_overwritten() {
    let t = ran(ReportFormat::Csv).await;
    let first = t.status(&t.config()).await.unwrap();
    let second = t.status(&t.config()).await.unwrap();
    assert_eq!(
        first.summary.report.as_deref(),
        Some(t.dir.path().join("run.status.csv").as_path())
    );
    assert_eq!(
        second.summary.report.as_deref(),
        Some(t.dir.path().join("run.status-2.csv").as_path()),
        "the second follow-up gets its own name"
    );
    let explicit = StatusConfig {
        report: Some(t.dir.path().join("run.status.csv")),
        ..t.config()
    };
    let refused = t.status(&explicit).await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("never overwritten")),
        "an explicit --report that exists is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_an_xlsx_run_report_reads_the_csv_beside_it() {
    let t = ran(ReportFormat::Xlsx).await;
    assert!(t.run_report.exists(), "the workbook was written");
    let companion = intune_reset::report::companion_csv(&t.run_report);
    let outcome = t.status(&t.config()).await.unwrap();
    let report = t.dir.path().join("run.status.csv");
    assert_eq!(outcome.summary.report.as_deref(), Some(report.as_path()));
    let status = read_report(&report);
    assert_copies_the_run(&read_report(&companion), &status);
    assert_eq!(states(&status)["pending"], ELIGIBLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_reads_pending_devices_again_until_they_are_final() {
    let t = ran(ReportFormat::Csv).await;
    let mut config = t.config();
    config.wait = Some(Duration::from_secs(20));
    // The devices check in once the first pass has read each of them (an observable
    // event: the simulator's count of reads), so a second pass must find them final.
    let devices = read_report(&t.run_report)
        .iter()
        .filter(|r| r["outcome"] == "succeeded")
        .count() as u64;
    let before = t.action_result_reads();
    let check_in = async {
        while t.action_result_reads() < before + devices {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        t.clock.advance(ACTION_DELAY);
    };
    let (outcome, ()) = tokio::join!(t.status(&config), check_in);
    let outcome = outcome.unwrap();
    let s = &outcome.summary;
    assert!(s.passes >= 2, "{} passes", s.passes);
    assert!(s.pending.is_empty(), "{:?}", s.pending);
    let status = read_report(&t.dir.path().join("run.status.csv"));
    assert_copies_the_run(&read_report(&t.run_report), &status);
    let by_state = states(&status);
    assert_eq!(by_state.get("pending"), None, "{by_state:?}");
    assert_eq!(
        ["done", "failed", "notSupported"]
            .iter()
            .map(|st| by_state.get(*st).copied().unwrap_or(0))
            .sum::<usize>(),
        ELIGIBLE
    );
    // Some work profiles never activated their reset token: Intune answers notSupported,
    // and the row's detail says what that means and what to do.
    let failed: Vec<&Row> = status
        .iter()
        .filter(|r| r["action_state"] == "notSupported")
        .collect();
    assert!(!failed.is_empty(), "{by_state:?}");
    for r in &failed {
        assert_eq!(r["error_code"], "", "{r:?}");
        assert_eq!(r["platform"], "android_work_profile");
        assert!(!r["action_updated_at"].is_empty());
        assert!(
            r["detail"].contains("reset token was never activated"),
            "{r:?}"
        );
    }
    assert_eq!(s.failed.len(), failed.len());
    assert!(
        s.failed
            .iter()
            .all(|d| d.meaning.contains("reset token was never activated"))
    );
    assert!(
        s.render().contains("reset token was never activated"),
        "{}",
        s.render()
    );
    assert!(!s.all_done());
    // iOS removes the passcode; Android generates one for every done reset.
    let generated = status
        .iter()
        .filter(|r| r["action_state"] == "done" && r["operating_system"] == "Android")
        .count() as u64;
    assert!(generated > 0);
    assert_eq!(s.passcodes_generated, generated);
    assert!(
        s.render().contains(&format!(
            "status {} --passcodes passcodes.csv",
            t.run_report.display()
        )),
        "{}",
        s.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_runs_out_leaves_pending_devices_pending() {
    let t = ran(ReportFormat::Csv).await;
    let mut config = t.config();
    config.wait = Some(Duration::from_millis(250));
    let outcome = t.status(&config).await.unwrap();
    assert!(outcome.summary.passes >= 2);
    assert_eq!(outcome.summary.pending.len(), ELIGIBLE);
    let status = read_report(&t.dir.path().join("run.status.csv"));
    assert_eq!(status.len(), ROWS, "written once, at the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_lines_run_report_gets_a_json_lines_status_report() {
    let t = ran(ReportFormat::Jsonl).await;
    t.devices_check_in();
    let outcome = t.status(&t.config()).await.unwrap();
    let path = t.dir.path().join("run.status.jsonl");
    assert_eq!(outcome.summary.report.as_deref(), Some(path.as_path()));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), ROWS);
    for l in &lines {
        let state = l["action_state"].as_str().unwrap();
        match l["outcome"].as_str().unwrap() {
            "succeeded" => assert!(["done", "failed", "notSupported"].contains(&state), "{l}"),
            _ => assert_eq!(state, "", "{l}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_passcodes_file_is_refused_before_any_request() {
    let t = ran(ReportFormat::Csv).await;
    t.devices_check_in();
    let path = t.dir.path().join("passcodes.csv");
    std::fs::write(&path, "precious\n").unwrap();
    let reads = t.action_result_reads();
    let mut config = t.config();
    config.passcodes = Some(path.clone());
    let err = t.status(&config).await.err().expect("refused");
    assert!(
        matches!(
            &err,
            CommandError::Refused(e)
                if matches!(e.downcast_ref(), Some(StatusError::PasscodesFileExists { .. }))
        ),
        "{err}"
    );
    assert_eq!(err.exit_code(), 2);
    assert_eq!(t.action_result_reads(), reads, "nothing was read");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
    assert!(!t.dir.path().join("run.status.csv").exists());

    // The binary: exit 2, and not even a token is asked for.
    let before = t.sim.stats().total_requests();
    let cmd = t.command();
    let output = tokio::task::spawn_blocking(move || {
        let mut cmd = cmd;
        cmd.arg("--passcodes").arg(&path).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(t.sim.stats().total_requests(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passcodes_go_to_the_0600_file_and_nowhere_else() {
    let t = ran(ReportFormat::Csv).await;
    t.devices_check_in();
    let passcodes = t.dir.path().join("out").join("passcodes.csv");
    std::fs::create_dir(t.dir.path().join("out")).unwrap();
    let summary_json = t.dir.path().join("summary.json");
    let status_report = t.dir.path().join("status.csv");
    let cmd = t.command();
    let (p, j, r) = (
        passcodes.clone(),
        summary_json.clone(),
        status_report.clone(),
    );
    let output = tokio::task::spawn_blocking(move || {
        let mut cmd = cmd;
        cmd.arg("-vv")
            .arg("--passcodes")
            .arg(&p)
            .arg("--summary-json")
            .arg(&j)
            .arg("--report")
            .arg(&r)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    // Some work profiles failed: exit 1.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("action states:"), "{stderr}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&passcodes).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let file = read_report(&passcodes);
    let status = read_report(&status_report);
    let done_android: Vec<&Row> = status
        .iter()
        .filter(|r| r["action_state"] == "done" && r["operating_system"] == "Android")
        .collect();
    assert!(!done_android.is_empty());
    assert_eq!(
        file.len(),
        done_android.len(),
        "one passcode per generated reset"
    );
    for (entry, row) in file.iter().zip(&done_android) {
        assert_eq!(entry["device_id"], row["device_id"]);
        assert_eq!(entry["device_name"], row["device_name"]);
        assert_eq!(entry["serial_number"], row["serial_number"]);
        assert_eq!(
            entry["user_principal_name"], row["user_principal_name"],
            "each passcode names the user to hand it to"
        );
        // The job named no users: Graph's, read with the action results, fill in.
        assert!(entry["user_principal_name"].contains('@'), "{entry:?}");
        assert_eq!(entry["generated_at"], row["action_updated_at"]);
        assert!(entry["passcode"].len() >= 6, "{entry:?}");
    }

    let others = [
        std::fs::read_to_string(&status_report).unwrap(),
        std::fs::read_to_string(&summary_json).unwrap(),
        stderr,
        stdout,
    ];
    for entry in &file {
        let passcode = &entry["passcode"];
        for (i, text) in others.iter().enumerate() {
            assert!(
                !text.contains(passcode.as_str()),
                "output {i} holds a passcode"
            );
        }
    }
    let summary: serde_json::Value = serde_json::from_str(&others[1]).unwrap();
    assert_eq!(summary["passcodes_generated"], file.len() as u64);
    assert_eq!(summary["command"], "status");
}

#[test]
fn status_help_names_the_states_and_exit_codes() {
    let output = intune_reset().args(["status", "--help"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
}

#[test]
fn a_job_file_given_as_the_run_report_is_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let job = write_job(dir.path());
    let passcodes = dir.path().join("passcodes.csv");
    let output = intune_reset()
        .arg("status")
        .arg(&job)
        .arg("--passcodes")
        .arg(&passcodes)
        .args(["--tenant", "t", "--client-id", "c"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a run report"), "{stderr}");
    assert!(!passcodes.exists(), "nothing is created for a bad report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_aborts_with_exit_3_and_leaves_no_passcodes_file() {
    let t = ran(ReportFormat::Csv).await;
    let passcodes = t.dir.path().join("passcodes.csv");
    let mut cmd = t.command();
    cmd.env("AZURE_CLIENT_SECRET", "wrong")
        .arg("--passcodes")
        .arg(&passcodes);
    let reads = t.action_result_reads();
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("ABORTED: authentication failed"),
        "{stderr}"
    );
    assert!(!passcodes.exists(), "an unused passcodes file is removed");
    assert!(!t.dir.path().join("run.status.csv").exists());
    assert_eq!(t.action_result_reads(), reads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reset_done_exits_0() {
    let t = ran(ReportFormat::Csv).await;
    t.devices_check_in();
    // The run report's iOS rows only: removed passcodes, no failures.
    let text = std::fs::read_to_string(&t.run_report).unwrap();
    let ios: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.contains(",iOS,"))
        .map(|(_, l)| l)
        .collect();
    assert_eq!(ios.len(), 5);
    let ios_report = t.dir.path().join("ios.csv");
    std::fs::write(&ios_report, ios.join("\n") + "\n").unwrap();
    let mut cmd = t.command_on(&ios_report);
    cmd.arg("--report").arg(t.dir.path().join("ios-status.csv"));
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let status = read_report(&t.dir.path().join("ios-status.csv"));
    assert_eq!(states(&status)["done"], 4);
    assert!(!stderr.contains("generated passcodes"), "{stderr}");
}

/// An interrupt (SIGTERM, as cron's or systemd's stop; Ctrl-C is the same path) while
/// `status --wait` waits: the report is written with the states read so far, no empty
/// passcodes file is left, and it exits 3.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_wait_writes_what_it_read_and_leaves_no_passcodes_file() {
    let t = ran(ReportFormat::Csv).await;
    let passcodes = t.dir.path().join("passcodes.csv");
    let url = t.sim.base_url();
    let mut cmd = std::process::Command::new(crate::common::tenant::bin());
    cmd.env("AZURE_CLIENT_SECRET", "simulated-secret")
        .arg("status")
        .arg(&t.run_report)
        .args(["--tenant", &t.sim.config().tenant_id])
        .args(["--client-id", SIMULATED_CLIENT_ID])
        .args(["--graph-url", &url, "--authority-url", &url])
        .args(["--wait", "10m", "--passcodes"])
        .arg(&passcodes)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let (code, stderr) = tokio::task::spawn_blocking(move || {
        crate::common::tenant::signal_at_line(
            cmd.spawn().unwrap(),
            "still pending; reading again",
            "-TERM",
        )
    })
    .await
    .unwrap();
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("ABORTED"), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let status = read_report(&t.dir.path().join("run.status.csv"));
    assert_copies_the_run(&read_report(&t.run_report), &status);
    assert!(
        status
            .iter()
            .filter(|r| r["outcome"] == "succeeded")
            .all(|r| r["action_state"] == "pending"),
        "the states read before the interrupt"
    );
    assert!(!passcodes.exists(), "no passcode was generated yet");
}
