//! Issue 20, point 3: `intune-reset evidence REPORT --out DIR` and `evidence --verify
//! DIR`, the real binary, after a real `run` and `audit` against `simulate`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::common::tenant::{CLIENT, TENANT, Tenant, bin, ios_job, lock_dir, run_cmd, wait_for};

const LIMIT: Duration = Duration::from_secs(120);

fn signed_in(cmd: &mut Command, tenant: &Tenant) {
    cmd.args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", "evidence-test-secret")
        .env("INTUNE_RESET_LOCK_DIR", lock_dir())
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH");
}

fn finish(cmd: &mut Command, dir: &Path) -> (Option<i32>, String) {
    let mut child = cmd
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A run of 4 iPhones (and the job's 2 Macs), then its audit, in `dir` (paths relative
/// to it, as an administrator's would be): the report's path.
fn audited_run(dir: &Path) -> (Tenant, PathBuf) {
    let job = ios_job(dir, 4);
    let tenant = Tenant::start(&[&job], &dir.join("sim.jsonl"), &["--no-limits"]);
    let mut run = run_cmd(
        &tenant,
        &[Path::new("job.csv")],
        Path::new("reports/run.csv"),
        &[],
    );
    let (code, stderr) = finish(&mut run, dir);
    assert_eq!(code, Some(0), "{stderr}");
    let mut audit = Command::new(bin());
    audit.args(["audit", "reports/run.csv"]);
    signed_in(&mut audit, &tenant);
    let (code, stderr) = finish(&mut audit, dir);
    assert_eq!(code, Some(0), "{stderr}");
    (tenant, dir.join("reports/run.csv"))
}

fn evidence(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin());
    cmd.arg("evidence").args(args);
    finish(&mut cmd, dir)
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("the file reads");
    ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn regression_20_3_a_pack_holds_every_file_by_its_hash_and_verifies() {
    let dir = TempDir::new().expect("a temporary folder");
    let (_tenant, _) = audited_run(dir.path());
    let (code, stderr) = evidence(dir.path(), &["reports/run.csv", "--out", "pack"]);
    assert_eq!(code, Some(0), "{stderr}");
    let pack = dir.path().join("pack");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(pack.join("manifest.json")).expect("a manifest"),
    )
    .expect("JSON");
    let files = manifest["files"].as_array().expect("files");
    let roles: Vec<&str> = files.iter().map(|f| f["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["job", "ledger", "run_report", "audit_report", "summary"],
        "{manifest}"
    );
    for f in files {
        let path = pack.join(f["path"].as_str().unwrap());
        assert_eq!(f["sha256"].as_str().unwrap(), sha256(&path), "{path:?}");
    }
    // The job file as the run read it, by the SHA-256 its ledger recorded.
    assert_eq!(files[0]["source"], "job.csv");
    assert_eq!(
        files[0]["sha256"].as_str().unwrap(),
        sha256(&dir.path().join("job.csv"))
    );
    assert!(
        manifest["ledger"]["head"]
            .as_str()
            .is_some_and(|h| h.len() == 64),
        "a chained ledger's head: {manifest}"
    );
    assert_eq!(
        manifest["ledger"]["ended"], true,
        "the run closed its record: {manifest}"
    );
    let page = std::fs::read_to_string(pack.join("summary.html")).expect("the page");
    assert!(page.contains(TENANT), "the page names the tenant");
    assert!(stderr.contains("manifest.json SHA-256 "), "{stderr}");
    let (code, stderr) = evidence(dir.path(), &["--verify", "pack"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("holds"), "{stderr}");
}

#[test]
fn regression_20_3_verify_says_exactly_what_changed_in_a_pack() {
    let dir = TempDir::new().expect("a temporary folder");
    let (_tenant, _) = audited_run(dir.path());
    let (code, stderr) = evidence(dir.path(), &["reports/run.csv", "--out", "pack"]);
    assert_eq!(code, Some(0), "{stderr}");
    let pack = dir.path().join("pack");
    let ledger = pack.join("run.csv.ledger");
    let text = std::fs::read_to_string(&ledger).expect("the ledger");
    let mut lines: Vec<&str> = text.lines().collect();
    // An edit in the middle (still valid JSON), and a cut at the end.
    let edited = lines[2].replacen("\"row\":", "\"row\":9", 1);
    lines[2] = &edited;
    lines.pop();
    std::fs::write(&ledger, lines.join("\n") + "\n").expect("the ledger is edited");
    std::fs::write(pack.join("run.csv"), "source,row\n").expect("the report is replaced");
    std::fs::write(pack.join("notes.txt"), "added later").expect("a file is added");
    std::fs::remove_file(pack.join("summary.html")).expect("the page is removed");
    let (code, stderr) = evidence(dir.path(), &["--verify", "pack"]);
    assert_eq!(code, Some(1), "{stderr}");
    for finding in [
        "run.csv.ledger: changed",
        "line 3 does not follow from the line before it",
        "run.csv: changed",
        "notes.txt: not in the manifest",
        "summary.html: missing",
    ] {
        assert!(stderr.contains(finding), "{finding}:\n{stderr}");
    }

    // A ledger only cut short keeps its chain: the manifest's line count catches it.
    let (code, stderr) = evidence(dir.path(), &["reports/run.csv", "--out", "pack2"]);
    assert_eq!(code, Some(0), "{stderr}");
    let ledger = dir.path().join("pack2/run.csv.ledger");
    let text = std::fs::read_to_string(&ledger).expect("the ledger");
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&ledger, kept[..kept.len() - 1].join("\n") + "\n").expect("cut");
    let (code, stderr) = evidence(dir.path(), &["--verify", "pack2"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("lines were cut off its end"), "{stderr}");
}

#[test]
fn regression_20_3_a_pack_is_refused_for_a_changed_job_a_used_folder_or_no_ledger() {
    let dir = TempDir::new().expect("a temporary folder");
    let (_tenant, _) = audited_run(dir.path());
    std::fs::create_dir(dir.path().join("used")).expect("a folder");
    std::fs::write(dir.path().join("used/keep.txt"), "mine").expect("a file");
    let (code, stderr) = evidence(dir.path(), &["reports/run.csv", "--out", "used"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("used/keep.txt")).unwrap(),
        "mine",
        "nothing is overwritten"
    );

    let job = dir.path().join("job.csv");
    let original = std::fs::read_to_string(&job).expect("the job");
    std::fs::write(&job, original.replace("iPhone 0", "iPhone zero")).expect("edited");
    let (code, stderr) = evidence(dir.path(), &["reports/run.csv", "--out", "pack"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the job file job.csv changed since the run read it"),
        "{stderr}"
    );
    assert!(!dir.path().join("pack").exists(), "nothing was written");
    std::fs::write(&job, original).expect("restored");

    std::fs::rename(
        dir.path().join("reports/run.csv.ledger"),
        dir.path().join("kept.ledger"),
    )
    .expect("the ledger moves");
    let (code, stderr) = evidence(dir.path(), &["reports/run.csv", "--out", "pack"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("has no ledger beside it"), "{stderr}");

    let (code, stderr) = evidence(dir.path(), &["--verify", "reports"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is no evidence pack"), "{stderr}");
}

#[test]
fn regression_20_4_a_followed_runs_pack_shows_the_action_states_its_report_holds() {
    let dir = TempDir::new().expect("a temporary folder");
    let job = ios_job(dir.path(), 3);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    let mut run = run_cmd(
        &tenant,
        &[Path::new("job.csv")],
        Path::new("reports/run.csv"),
        &["--follow", "1m"],
    );
    let (code, stderr) = finish(&mut run, dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = evidence(dir.path(), &["reports/run.csv", "--out", "pack"]);
    assert_eq!(code, Some(0), "{stderr}");
    let page = std::fs::read_to_string(dir.path().join("pack/summary.html")).expect("the page");
    assert!(
        page.contains("What the devices did: the status report"),
        "the run report's action states, with no status report beside it"
    );
}
