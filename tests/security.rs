//! Secrets stay secret: the real binary runs against an `intune-reset simulate` child on
//! 127.0.0.1, and everything it leaves behind (stdout, stderr at `-v` and `-vv`, text
//! and JSON logs, the report, the summary JSON, the simulator's request log) is searched
//! for the client secret, the access token and the passcodes the simulator generated.
//! Also: no flag takes a secret, plain `http://` to another host is refused before any
//! connection, and a private key file others can read is warned about.

use std::path::{Path, PathBuf};

use intune_reset::sim::DEFAULT_TENANT_ID;
use serde_json::Value;
use tempfile::TempDir;

#[cfg(unix)]
use crate::common::repo;
use crate::common::tenant::Tenant;
use crate::common::{count, intune_reset, read_report, write};

const CLIENT_ID: &str = "5e7d1c3b-2a4f-4b6e-8d9c-1f2e3d4c5b6a";
/// Distinctive enough that finding it anywhere can only mean a leak.
const CLIENT_SECRET: &str = "Zq8~sEcReT.only-in-the-environment_7f3a9c";

/// Six Android work-profile devices (the simulator generates a passcode for each reset
/// that succeeds) and an iPhone (passcode removed, none generated).
fn write_job(dir: &Path) -> PathBuf {
    let mut csv = String::from("id,deviceName,serialNumber,operatingSystem,osVersion,deviceType\n");
    for i in 1..=6 {
        csv.push_str(&format!(
            "a1000000-0000-4000-8000-00000000000{i},Work profile {i},SNW{i},Android,14,androidForWork\n"
        ));
    }
    csv.push_str("b1000000-0000-4000-8000-000000000001,iPhone 1,SNI1,iOS,17.5,iPhone\n");
    write(dir, "job.csv", csv)
}

fn device_ids(job: &Path) -> Vec<String> {
    std::fs::read_to_string(job)
        .expect("job")
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_owned))
        .collect()
}

/// An `intune-reset simulate` child serving the job's devices on 127.0.0.1:0, with
/// resets final at once (the shared harness, `tests/common/tenant.rs`).
struct Simulator;

impl Simulator {
    fn start(dir: &Path, job: &Path, extra: &[&str]) -> Tenant {
        let args = [
            &["--no-limits", "--action-delay", "0", "--seed", "3"][..],
            extra,
        ]
        .concat();
        let tenant = Tenant::start(&[job], &dir.join("sim-requests.jsonl"), &args);
        assert!(
            tenant.url.starts_with("http://127.0.0.1:"),
            "{}",
            tenant.url
        );
        tenant
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A token from the simulator's token endpoint, as any client would get one.
fn fetch_token(sim: &Tenant) -> String {
    let url = format!("{}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token", sim.url);
    let answer: Value = block_on(async {
        crate::sim::client()
            .post(url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", "another-secret-for-the-test-itself"),
                ("scope", crate::sim::SCOPE),
            ])
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token answer")
    });
    answer["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// The passcodes the simulator generated for these devices (their latest resets).
fn passcodes(sim: &Tenant, ids: &[String]) -> Vec<String> {
    let token = fetch_token(sim);
    block_on(async {
        let mut found = Vec::new();
        for id in ids {
            let url = format!("{}/beta/deviceManagement/managedDevices/{id}", sim.url);
            // The simulator's faults meet these reads too: ask again.
            let mut device = Value::Null;
            for _ in 0..20 {
                let answer = crate::sim::client()
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await;
                if let Ok(answer) = answer
                    && answer.status().is_success()
                    && let Ok(body) = answer.json::<Value>().await
                {
                    device = body;
                    break;
                }
            }
            assert!(device.is_object(), "{url} answered");
            let results = device["deviceActionResults"].as_array().cloned();
            for result in results.unwrap_or_default() {
                if let Some(p) = result["passcode"].as_str() {
                    found.push(p.to_owned());
                }
            }
        }
        found
    })
}

/// What a run left behind, each piece named for the failure message.
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn assert_free_of(&self, what: &str, needle: &str) {
        assert!(needle.len() >= 6, "{what} is too short to search for");
        for (name, text) in &self.0 {
            assert!(!text.contains(needle), "{what} appears in {name}");
        }
    }

    fn assert_no_token_shapes(&self) {
        for (name, text) in &self.0 {
            for shape in ["Bearer ", "bearer ", "eyJ", "access_token"] {
                assert!(
                    !text.contains(shape),
                    "'{shape}' appears in {name}:\n{text}"
                );
            }
        }
    }
}

/// `intune-reset run` against the simulator with `env`; returns exit code and outputs.
fn run(
    sim: &Tenant,
    dir: &Path,
    job: &Path,
    env: &[(&str, &str)],
    log_args: &[&str],
) -> (i32, Outputs) {
    let report = dir.join("report.csv");
    let ledger = dir.join("report.csv.ledger");
    // Each run is a new run: `run` never overwrites an earlier run's record.
    let _ = std::fs::remove_file(&report);
    let _ = std::fs::remove_file(&ledger);
    let summary = dir.join("summary.json");
    let mut cmd = intune_reset();
    cmd.arg("run")
        .arg(job)
        .args(["--action", "auto", "--yes"])
        // A lost answer settles after twice the timeout: keep that short on loopback.
        .args(["--timeout", "2s"])
        // Each sign-in resets the same devices of one simulated tenant on purpose.
        .arg("--reset-again")
        .args(["--graph-url", &sim.url, "--authority-url", &sim.url])
        .arg("--report")
        .arg(&report)
        .arg("--summary-json")
        .arg(&summary)
        .args(log_args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the binary runs");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let outputs = Outputs(vec![
        ("stdout".into(), String::from_utf8_lossy(&out.stdout).into()),
        ("stderr".into(), String::from_utf8_lossy(&out.stderr).into()),
        ("the report".into(), read(&report)),
        ("the run's ledger".into(), read(&ledger)),
        ("the summary JSON".into(), read(&summary)),
    ]);
    let code = out.status.code().unwrap_or(-1);
    if code == 0 {
        let rows = read_report(&report);
        assert_eq!(rows.len(), 7, "one report row per device");
        assert_eq!(count(&rows, "succeeded"), rows.len(), "{}", outputs.0[1].1);
    }
    (code, outputs)
}

const SECRET_ENV: [(&str, &str); 3] = [
    ("AZURE_TENANT_ID", DEFAULT_TENANT_ID),
    ("AZURE_CLIENT_ID", CLIENT_ID),
    ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
];

#[test]
fn a_run_leaks_neither_its_client_secret_nor_tokens_nor_passcodes() {
    let dir = TempDir::new().unwrap();
    let job = write_job(dir.path());
    // Answers lost after the reset took effect make the runner read the devices'
    // deviceActionResults, passcodes included: the path where a passcode could leak.
    let sim = Simulator::start(dir.path(), &job, &["--fault", "drop-after=0.15"]);
    let ids = device_ids(&job);
    let mut runs = Vec::new();
    let mut generated = Vec::new();
    let mut verified = 0;
    for log_args in [&["-v"][..], &["-vv", "--log-format", "json"][..]] {
        let (code, outputs) = run(&sim, dir.path(), &job, &SECRET_ENV, log_args);
        assert_eq!(code, 0, "{log_args:?}: {}", outputs.0[1].1);
        // The verbose log really is verbose: every request is in it.
        assert!(
            outputs.0[1].1.contains("resetPasscode"),
            "{}",
            outputs.0[1].1
        );
        generated.extend(passcodes(&sim, &ids));
        let summary: Value = serde_json::from_str(&outputs.0[4].1).expect("summary JSON");
        verified += summary["run"]["confirmed_by_action_results"]
            .as_u64()
            .expect("a count");
        runs.push(outputs);
    }
    assert!(
        verified >= 1,
        "some resets were confirmed from deviceActionResults"
    );
    assert!(
        generated.len() >= 4,
        "the simulator generated passcodes for the work-profile devices: {}",
        generated.len()
    );
    let token = fetch_token(&sim);
    let (log, sim_stderr) = sim.stop();
    assert!(
        log.lines().count() >= 14,
        "the request log has the runs' requests"
    );
    for outputs in &runs {
        outputs.assert_free_of("the client secret", CLIENT_SECRET);
        outputs.assert_no_token_shapes();
        for passcode in &generated {
            outputs.assert_free_of("a generated passcode", passcode);
        }
    }
    let simulator = Outputs(vec![
        ("the simulator's request log".into(), log),
        ("the simulator's stderr".into(), sim_stderr),
    ]);
    simulator.assert_free_of("the client secret", CLIENT_SECRET);
    simulator.assert_free_of("an access token", &token);
    simulator.assert_no_token_shapes();
}

#[test]
fn a_ready_access_token_never_appears_in_any_output() {
    let dir = TempDir::new().unwrap();
    let job = write_job(dir.path());
    let sim = Simulator::start(dir.path(), &job, &[]);
    let token = fetch_token(&sim);
    let bearer = format!("Bearer {token}");
    for (value, log_args) in [
        (token.as_str(), &["-vv"][..]),
        (bearer.as_str(), &["-vv", "--log-format", "json"][..]),
    ] {
        let (code, outputs) = run(
            &sim,
            dir.path(),
            &job,
            &[("INTUNE_RESET_ACCESS_TOKEN", value)],
            log_args,
        );
        assert_eq!(code, 0, "{}", outputs.0[1].1);
        outputs.assert_free_of("the access token", &token);
        outputs.assert_no_token_shapes();
    }
    let (log, sim_stderr) = sim.stop();
    assert!(!log.is_empty());
    let simulator = Outputs(vec![
        ("the simulator's request log".into(), log),
        ("the simulator's stderr".into(), sim_stderr),
    ]);
    simulator.assert_free_of("the access token", &token);
}

#[test]
fn regression_17_9_a_token_echoed_in_a_400_never_reaches_the_report() {
    let dir = TempDir::new().unwrap();
    let job = write_job(dir.path());
    // Every Graph request meets a front end whose 400 page quotes the Authorization
    // header it was sent.
    let sim = Simulator::start(dir.path(), &job, &["--fault", "echo-authorization=1"]);
    let token = fetch_token(&sim);
    let (code, outputs) = run(
        &sim,
        dir.path(),
        &job,
        &[("INTUNE_RESET_ACCESS_TOKEN", token.as_str())],
        &["-vv"],
    );
    assert_eq!(code, 1, "every device failed: {}", outputs.0[1].1);
    let report = &outputs.0[2].1;
    assert!(
        report.contains("Authorization: Bearer [redacted]"),
        "the front end's answer is in the report, without its token:\n{report}"
    );
    outputs.assert_free_of("the access token", &token);
    for part in token.split('.') {
        outputs.assert_free_of("a part of the access token", part);
    }
    assert!(
        outputs.0.iter().all(|(_, text)| !text.contains("eyJ")),
        "no JWT-shaped text anywhere"
    );
    let (log, _) = sim.stop();
    assert!(
        log.contains("echo-authorization"),
        "the fault was met: {log}"
    );
}

#[test]
fn regression_17_11_a_token_with_a_line_break_is_a_sign_in_error_not_a_lost_answer() {
    let dir = TempDir::new().unwrap();
    let job = write_job(dir.path());
    let sim = Simulator::start(dir.path(), &job, &[]);
    let token = fetch_token(&sim);
    let (head, tail) = token.split_at(token.len() / 2);
    let broken = format!("{head}\n{tail}");
    let (code, outputs) = run(
        &sim,
        dir.path(),
        &job,
        &[("INTUNE_RESET_ACCESS_TOKEN", broken.as_str())],
        &["-v"],
    );
    let stderr = &outputs.0[1].1;
    assert_eq!(code, 3, "a sign-in error: {stderr}");
    assert!(
        stderr.contains("INTUNE_RESET_ACCESS_TOKEN holds a line break"),
        "{stderr}"
    );
    let report = &outputs.0[2].1;
    for unsettled in ["outcome_unknown", "fate_unknown", "answer was lost"] {
        assert!(!report.contains(unsettled), "{report}");
    }
    outputs.assert_free_of("the access token", tail);
    let (log, _) = sim.stop();
    // The test's own token request is all the simulator saw: no Graph request at all.
    assert!(!log.contains("\"resetPasscode\""), "{log}");
    assert!(!log.contains("\"kind\":\"get\""), "{log}");
}

#[test]
fn no_flag_takes_a_secret() {
    let help = intune_reset().args(["run", "--help"]).output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout).to_lowercase();
    assert!(help.contains("--tenant"), "{help}");
    for flag in help
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches([',', '.']))
    {
        for word in ["secret", "token", "password", "key"] {
            assert!(!flag.contains(word), "run --help offers {flag}");
        }
    }
    for flag in [
        "--client-secret",
        "--secret",
        "--access-token",
        "--password",
    ] {
        let out = intune_reset()
            .args(["run", "samples/graph-export.json", "--yes", flag, "x"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unexpected argument"), "{flag}: {stderr}");
    }
}

/// The check runs in `run` before the job is read and before any client exists
/// (`Endpoints::new` in `run::run`), so no name is resolved and nothing is sent: the
/// hosts are in `.invalid`, which never resolves (RFC 2606).
#[test]
fn plain_http_to_another_host_is_refused_before_any_connection() {
    let dir = TempDir::new().unwrap();
    let job = write_job(dir.path());
    for (flag, url) in [
        ("--graph-url", "http://graph.example.invalid"),
        ("--authority-url", "http://login.example.invalid/"),
        ("--graph-url", "http://10.0.0.1:8080"),
    ] {
        let report = dir.path().join("report.csv");
        let out = intune_reset()
            .arg("run")
            .arg(&job)
            .args(["--action", "auto", "--yes", flag, url])
            .arg("--report")
            .arg(&report)
            .envs(SECRET_ENV)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {url}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("unencrypted"),
            "{stderr}"
        );
        assert!(!report.exists(), "nothing was planned or sent");
    }
}

#[cfg(unix)]
fn run_with_certificate(mode: u32) -> (i32, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let job = write_job(dir.path());
    let key = dir.path().join("app.pem");
    std::fs::copy(
        repo().join("tests/fixtures/graph/cert-and-pkcs8-key.pem"),
        &key,
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
    let sim = Simulator::start(dir.path(), &job, &[]);
    let key_path = key.to_string_lossy().into_owned();
    let (code, outputs) = run(
        &sim,
        dir.path(),
        &job,
        &[
            ("AZURE_TENANT_ID", DEFAULT_TENANT_ID),
            ("AZURE_CLIENT_ID", CLIENT_ID),
            ("AZURE_CLIENT_CERTIFICATE_PATH", &key_path),
        ],
        &[],
    );
    let pem = std::fs::read_to_string(&key).unwrap();
    let key_body = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)
        .and_then(|rest| rest.lines().nth(1))
        .expect("a key line")
        .to_owned();
    outputs.assert_free_of("the private key", &key_body);
    let stderr = outputs.0[1].1.clone();
    drop(sim);
    (code, stderr)
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_warned_about() {
    for mode in [0o644, 0o640] {
        let (code, stderr) = run_with_certificate(mode);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains(&format!("can be read by other users (mode {mode:o})"))
                && stderr.contains("chmod 600"),
            "{stderr}"
        );
    }
    let (code, stderr) = run_with_certificate(0o600);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("can be read by other users"), "{stderr}");
}
