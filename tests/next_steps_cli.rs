//! Issue 18: every command a run prints in its next steps works as printed. Each kind of
//! run (job files, users and a group, a filter, a rehearsal) is interrupted at an
//! observable point or finished, its printed commands are split as a shell would and
//! run as they are, against the same simulated tenant.

// Most tests here run on Unix only (their interruptions are Unix signals): on Windows their helpers are unused.
#![cfg_attr(not(unix), allow(unused_imports, dead_code))]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::common::read_report;
use crate::common::tenant::{
    CLIENT, TENANT, Tenant, bin, ios_id, ledger_of, lock_dir, wait_for, wait_for_ledger,
};
use crate::common::write;

const LIMIT: Duration = Duration::from_secs(120);

/// Splits a printed command as PowerShell or a POSIX shell would: words apart by
/// spaces, single quotes literal (`'\''` inside them is a POSIX escaped quote).
fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The commands the output prints (lines starting `intune-reset `), as words.
fn printed(stderr: &str) -> Vec<Vec<String>> {
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("intune-reset ") && !l.starts_with("intune-reset: "))
        .map(split)
        .collect()
}

/// The printed command whose words start with `intune-reset <sub>` and hold `has`.
fn command(stderr: &str, sub: &str, has: &str) -> Vec<String> {
    printed(stderr)
        .into_iter()
        .find(|w| w.get(1).map(String::as_str) == Some(sub) && w.iter().any(|x| x == has))
        .unwrap_or_else(|| panic!("no printed `{sub} ... {has}` command in:\n{stderr}"))
}

/// Runs a printed command as it is, in `dir`, with the sign-in's environment.
fn run_printed(words: &[String], dir: &Path) -> (Option<i32>, String) {
    assert_eq!(words[0], "intune-reset");
    let mut child = Command::new(bin())
        .args(&words[1..])
        .current_dir(dir)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", "next-steps-secret")
        .env("INTUNE_RESET_LOCK_DIR", lock_dir())
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the printed command starts");
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `n` iPhones, the first three ada's, the rest bob's; bob's first one carries an Entra
/// device id (the group's device member).
fn inventory(dir: &Path, n: usize) -> PathBuf {
    let mut csv = String::from(
        "id,deviceName,serialNumber,operatingSystem,osVersion,userPrincipalName,azureADDeviceId\n",
    );
    for i in 0..n {
        let user = if i < 3 {
            "ada@contoso.com"
        } else {
            "bob@contoso.com"
        };
        csv.push_str(&format!(
            "{},iPhone {i},SN{i:06},iOS,17.5,{user},{:08x}-eeee-4000-8000-{:012x}\n",
            ios_id(i),
            i + 1,
            i + 1
        ));
    }
    write(dir, "tenant.csv", csv)
}

/// A tenant slow enough to interrupt (30 ms a request) with the group `Sales`: ada,
/// and bob's first iPhone as a device member.
fn tenant(dir: &Path, inventory: &Path) -> Tenant {
    Tenant::start(
        &[inventory],
        &dir.join("sim.jsonl"),
        &[
            "--latency-ms",
            "30",
            "--action-delay",
            "0",
            "--group",
            "Sales=ada@contoso.com,00000004-eeee-4000-8000-000000000004",
        ],
    )
}

/// Starts `run ARGS` in `dir` (a folder whose name holds a space), stops it with
/// SIGTERM once its ledger holds a send, and returns its stderr.
#[cfg(unix)]
fn interrupted(tenant: &Tenant, dir: &Path, args: &[&str], report: &Path) -> String {
    let mut child = Command::new(bin())
        .arg("run")
        .args(args)
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .arg("--report")
        .arg(report)
        .args(["--yes", "--write-rate", "2"])
        .current_dir(dir)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", "next-steps-secret")
        .env("INTUNE_RESET_LOCK_DIR", lock_dir())
        .env_remove("INTUNE_RESET_ACCESS_TOKEN")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the run starts");
    wait_for_ledger(&mut child, &ledger_of(report), "send", 1, LIMIT);
    crate::common::tenant::signal(&mut child, "-TERM");
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "interrupted: {stderr}");
    stderr
}

/// The printed `--resume` finishes an interrupted run: accepted (not 2), every device
/// reset exactly once.
#[cfg(unix)]
fn resume_as_printed(dir: &Path, tenant: &Tenant, stderr: &str, devices: usize) -> Vec<String> {
    let resume = command(stderr, "run", "--resume");
    let (code, after) = run_printed(&resume, dir);
    assert_eq!(code, Some(0), "{resume:?}:\n{after}");
    let resets = tenant.resets();
    assert_eq!(resets.len(), devices, "{resets:?}");
    assert!(resets.values().all(|n| *n == 1), "each once: {resets:?}");
    resume
}

#[cfg(unix)]
#[test]
fn regression_18_the_resume_printed_after_a_users_and_group_run_keeps_every_flag() {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("incident 7");
    std::fs::create_dir(&dir).unwrap();
    let inventory = inventory(&dir, 12);
    let tenant = tenant(&dir, &inventory);
    write(&dir, "compromised.txt", "bob@contoso.com\n");
    let report = dir.join("reports/it's run.csv");
    let stderr = interrupted(
        &tenant,
        &dir,
        &[
            "--users",
            "compromised.txt",
            "--group",
            "Sales",
            "--action",
            "remove-passcode",
        ],
        &report,
    );
    let resume = resume_as_printed(&dir, &tenant, &stderr, 12);
    for word in ["--users", "compromised.txt", "--group", "Sales", "--action"] {
        assert!(resume.iter().any(|w| w == word), "{word}: {resume:?}");
    }
    let rows = read_report(&report);
    assert!(
        rows.iter().all(|r| r["outcome"] != "not_attempted"),
        "{rows:?}"
    );
}

#[cfg(unix)]
#[test]
fn regression_18_the_resume_printed_after_a_job_file_run_works_as_printed() {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("job files");
    std::fs::create_dir(&dir).unwrap();
    let inventory = inventory(&dir, 10);
    let tenant = tenant(&dir, &inventory);
    let job = dir.join("my job.csv");
    std::fs::copy(&inventory, &job).unwrap();
    let report = dir.join("out.csv");
    let stderr = interrupted(
        &tenant,
        &dir,
        &["my job.csv", "--action", "auto", "--timeout", "5s"],
        &report,
    );
    resume_as_printed(&dir, &tenant, &stderr, 10);
}

#[cfg(unix)]
#[test]
fn regression_18_the_resume_printed_after_a_filter_run_works_as_printed() {
    let root = TempDir::new().unwrap();
    let dir = root.path().to_owned();
    let inventory = inventory(&dir, 10);
    let tenant = tenant(&dir, &inventory);
    let report = dir.join("where.csv");
    let stderr = interrupted(
        &tenant,
        &dir,
        &[
            "--where",
            "operatingSystem eq 'iOS'",
            "--max-devices",
            "50",
            "--action",
            "auto",
        ],
        &report,
    );
    let resume = resume_as_printed(&dir, &tenant, &stderr, 10);
    assert!(
        resume.iter().any(|w| w == "operatingSystem eq 'iOS'"),
        "{resume:?}"
    );
}

/// A finished run of Android work profiles: the printed `status` commands sign in as
/// the run did, and the passcodes file they name does not exist yet.
#[test]
fn regression_18_the_status_commands_printed_after_a_run_work_as_printed() {
    let dir = TempDir::new().unwrap();
    let mut csv = String::from("id,deviceName,operatingSystem,osVersion,deviceType\n");
    for i in 1..=3 {
        csv.push_str(&format!(
            "a1000000-0000-4000-8000-{i:012},Work profile {i},Android,14,androidForWork\n"
        ));
    }
    let job = write(dir.path(), "job.csv", csv);
    let tenant = Tenant::start(
        &[&job],
        &dir.path().join("sim.jsonl"),
        &["--no-limits", "--action-delay", "0"],
    );
    // The name the next steps would otherwise suggest is taken.
    write(dir.path(), "passcodes.csv", "an earlier run's file\n");
    let (code, stderr) = run_printed(
        &split(&format!(
            "intune-reset run job.csv --yes --action auto --graph-url {0} --authority-url {0} --report run.csv",
            tenant.url
        )),
        dir.path(),
    );
    assert!(matches!(code, Some(0 | 1)), "{stderr}");
    let collect = command(&stderr, "status", "--passcodes");
    assert!(
        collect.iter().any(|w| w == "passcodes-2.csv"),
        "a fresh name: {collect:?}"
    );
    let (code, after) = run_printed(&collect, dir.path());
    assert!(matches!(code, Some(0 | 1)), "{collect:?}:\n{after}");
    assert!(dir.path().join("passcodes-2.csv").exists(), "{after}");
    let follow = command(&stderr, "status", "--wait");
    let (code, after) = run_printed(&follow, dir.path());
    assert!(matches!(code, Some(0 | 1)), "{follow:?}:\n{after}");
}

/// A rehearsal is not resumed: what it prints for its unfinished devices is another
/// rehearsal, accepted as printed.
#[cfg(unix)]
#[test]
fn regression_18_an_interrupted_rehearsal_prints_a_rehearsal_that_runs() {
    let dir = TempDir::new().unwrap();
    let job = crate::common::tenant::ios_job(dir.path(), 400);
    let report = dir.path().join("rehearsal.csv");
    let mut child = Command::new(bin())
        .args(["run", "--simulate", "--yes", "--action", "auto"])
        .arg(&job)
        .arg("--report")
        .arg(&report)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_ledger(&mut child, &ledger_of(&report), "send", 1, LIMIT);
    crate::common::tenant::signal(&mut child, "-TERM");
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let again = command(&stderr, "run", "--simulate");
    assert!(!again.iter().any(|w| w == "--resume"), "{again:?}");
    assert!(!again.iter().any(|w| w == "--report"), "{again:?}");
    let (code, after) = run_printed(&again, dir.path());
    assert!(matches!(code, Some(0 | 1)), "{again:?}:\n{after}");
}

#[test]
fn the_splitter_reads_quotes_as_a_shell_does() {
    assert_eq!(
        split("intune-reset run 'a b.csv' --where 'x eq '\\''y'\\''' --yes"),
        [
            "intune-reset",
            "run",
            "a b.csv",
            "--where",
            "x eq 'y'",
            "--yes"
        ]
    );
}
