//! The real binaries as a user runs them: a `simulate` process as the tenant, `run`
//! processes started, killed at a moment an observable event chooses (the n-th send in
//! the run's ledger), and resumed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TENANT: &str = intune_reset::sim::DEFAULT_TENANT_ID;
pub const CLIENT: &str = "3e5c7a9b-1d2f-4a6b-8c0d-2e4f6a8b0c1d";

pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("intune-reset")
}

/// A `simulate` process serving `inventory`, its stderr kept beside its request log;
/// killed when dropped, or stopped with [`Tenant::stop`] to read what it said.
pub struct Tenant {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

/// Where a tenant's stderr goes: beside its log.
fn stderr_of(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".stderr");
    PathBuf::from(name)
}

impl Tenant {
    pub fn start(inventory: &[&Path], log: &Path, extra: &[&str]) -> Tenant {
        let mut cmd = Command::new(bin());
        cmd.arg("simulate");
        for file in inventory {
            cmd.arg("--inventory").arg(file);
        }
        Tenant::spawn(cmd.arg("--log").arg(log).args(extra), log)
    }

    /// Starts `cmd` (a `simulate` command) and reads the address it listens on.
    pub fn spawn(cmd: &mut Command, log: &Path) -> Tenant {
        let stderr = std::fs::File::create(stderr_of(log)).expect("the simulator's stderr file");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the simulator starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut first)
            .expect("the simulator says where it listens");
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .expect("`listening on URL`")
            .to_owned();
        Tenant {
            child,
            url,
            log: log.to_owned(),
        }
    }

    /// Resets that took effect per device, from the simulator's request log: a reset
    /// whose answer was dropped after it took effect counts too.
    pub fn resets(&self) -> BTreeMap<String, u32> {
        self.effects("resetPasscode")
    }

    /// The POSTs of one kind (`resetPasscode`, `remoteLock`, `rotateBitLockerKeys`)
    /// that took effect, per device.
    pub fn effects(&self, kind: &str) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        for line in text.lines() {
            let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let took_effect = match e.get("effect").and_then(|v| v.as_bool()) {
                Some(effect) => effect,
                None => e["status"] == 204,
            };
            if e["kind"] == kind && took_effect {
                *out.entry(e["device"].as_str().unwrap_or("?").to_owned())
                    .or_default() += 1;
            }
        }
        out
    }
}

impl Tenant {
    /// Stops the simulator as Ctrl-C would (it writes out its log and summary) and
    /// returns its request log and its stderr.
    pub fn stop(mut self) -> (String, String) {
        #[cfg(unix)]
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        // Without SIGTERM the log is whatever the simulator had flushed (it flushes
        // whenever it is idle).
        #[cfg(not(unix))]
        let _ = self.child.kill();
        let _ = self.child.wait();
        (
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(stderr_of(&self.log)).unwrap_or_default(),
        )
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `intune-reset run JOB... --yes --action auto` against `tenant`, signed in with a
/// client secret, stderr piped.
pub fn run_cmd(tenant: &Tenant, jobs: &[&Path], report: &Path, extra: &[&str]) -> Command {
    run_action_cmd(tenant, jobs, report, "auto", extra)
}

/// [`run_cmd`] with another `--action`.
pub fn run_action_cmd(
    tenant: &Tenant,
    jobs: &[&Path],
    report: &Path,
    action: &str,
    extra: &[&str],
) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("run");
    for job in jobs {
        cmd.arg(job);
    }
    cmd.args([
        "--yes",
        "--action",
        action,
        "--graph-url",
        &tenant.url,
        "--authority-url",
        &tenant.url,
    ])
    .arg("--report")
    .arg(report)
    .args(extra)
    .env("AZURE_TENANT_ID", TENANT)
    .env("AZURE_CLIENT_ID", CLIENT)
    .env("AZURE_CLIENT_SECRET", "crash-test-secret")
    // The tenant locks of the tests, not the user's: each test's simulator has its own
    // address, so only runs of one simulator share a lock.
    .env("INTUNE_RESET_LOCK_DIR", lock_dir())
    .env_remove("INTUNE_RESET_ACCESS_TOKEN")
    .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

/// Where the tests' runs keep their tenant locks.
pub fn lock_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tenant-locks")
}

/// `n` iOS devices with Intune ids (`job.csv`), plus two macOS ones (never touched).
pub fn ios_job(dir: &Path, n: usize) -> PathBuf {
    let mut csv = String::from("id,deviceName,serialNumber,operatingSystem,osVersion\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{},iPhone {i},{},iOS,17.5\n",
            ios_id(i),
            ios_serial(i)
        ));
    }
    csv.push_str("00000001-bbbb-4000-8000-000000000001,Mac 1,MAC1,macOS,15.1\n");
    csv.push_str("00000002-bbbb-4000-8000-000000000002,Mac 2,MAC2,macOS,15.1\n");
    let path = dir.join("job.csv");
    std::fs::write(&path, csv).expect("write the job");
    path
}

pub fn ios_id(i: usize) -> String {
    format!("{:08x}-aaaa-4000-8000-{:012x}", i + 1, i + 1)
}

pub fn ios_serial(i: usize) -> String {
    format!("SNIOS{i:05}")
}

/// Waits for the run to end (a hang guard, not a pacing: it polls an exit). Its stderr
/// is read while it runs (from its start when [`reached`] watched it first), so a chatty
/// child never blocks on a full pipe.
pub fn wait_for(child: &mut Child, limit: Duration) -> std::process::Output {
    let reader = drain_stderr(child);
    let start = Instant::now();
    while child
        .try_wait()
        .expect("the child can be waited on")
        .is_none()
    {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the run did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stderr = reader
        .map(|r| r.join().expect("the stderr reader ends"))
        .unwrap_or_default();
    std::process::Output {
        status: child.wait().expect("exit status"),
        stdout: vec![],
        stderr,
    }
}

type StderrReader = std::thread::JoinHandle<Vec<u8>>;

/// Readers of children's piped stderr, by process id, started by [`reached`] and taken
/// by [`wait_for`]: a child watched through its ledger keeps writing its progress, and a
/// pipe nobody reads fills (a few kilobytes on Windows, 64 KiB on Linux) and blocks it
/// before the ledger line the test waits for (issue 18).
static STDERR_READERS: std::sync::Mutex<BTreeMap<u32, StderrReader>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Starts reading the child's piped stderr on a thread (once per child) and returns the
/// reader, or `None` when its stderr is not piped.
fn drain_stderr(child: &mut Child) -> Option<StderrReader> {
    let mut readers = STDERR_READERS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut pipe) = child.stderr.take() else {
        // Taken already: by an earlier call for this child, whose reader is kept here.
        return readers.remove(&child.id());
    };
    // A reader kept under this id belongs to an earlier child whose id was reused.
    readers.remove(&child.id());
    Some(std::thread::spawn(move || {
        use std::io::Read;
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    }))
}

/// Keeps the child's stderr read from now on, for [`wait_for`] to collect.
fn keep_draining(child: &mut Child) {
    if let Some(reader) = drain_stderr(child) {
        STDERR_READERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(child.id(), reader);
    }
}

/// Sends `sig` (`-KILL` or `-TERM`) to the child. SIGKILL is `Child::kill` everywhere
/// (TerminateProcess on Windows); SIGTERM exists on Unix only.
pub fn signal(child: &mut Child, sig: &str) {
    if sig == "-KILL" {
        child.kill().expect("the child can be killed");
        return;
    }
    #[cfg(unix)]
    {
        let status = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
    #[cfg(not(unix))]
    panic!("{sig} has no counterpart on this platform");
}

/// Lines of the ledger that record `event`.
pub fn ledger_events(ledger: &Path, event: &str) -> usize {
    let needle = format!("\"event\":\"{event}\"");
    std::fs::read(ledger)
        .map(|bytes| {
            bytes
                .split(|b| *b == b'\n')
                .filter(|l| l.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .count()
        })
        .unwrap_or(0)
}

/// Returns once the ledger holds `n` lines of `event` (the observable moment a test
/// kills at), or panics when the run ended or `limit` passed first.
pub fn wait_for_ledger(child: &mut Child, ledger: &Path, event: &str, n: usize, limit: Duration) {
    assert!(
        reached(child, ledger, event, n, limit),
        "the run ended before its ledger had {n} {event} lines"
    );
}

/// `true` once the ledger holds `n` lines of `event`; `false` when the run ended first.
pub fn reached(child: &mut Child, ledger: &Path, event: &str, n: usize, limit: Duration) -> bool {
    keep_draining(child);
    let start = Instant::now();
    while ledger_events(ledger, event) < n {
        if child
            .try_wait()
            .expect("the child can be waited on")
            .is_some()
        {
            return false;
        }
        assert!(
            start.elapsed() < limit,
            "the ledger did not reach {n} {event} lines in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// `<report>.ledger`.
pub fn ledger_of(report: &Path) -> PathBuf {
    let mut name = report.as_os_str().to_owned();
    name.push(".ledger");
    PathBuf::from(name)
}

/// One report row per job row, each exactly once: each `(source, row)` pair appears
/// `namings` times (the times its file was named on the command line).
pub fn assert_complete(rows: &[crate::common::Row], job_rows: usize, namings: usize) {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in rows {
        *seen
            .entry((r["source"].clone(), r["row"].clone()))
            .or_default() += 1;
    }
    assert_eq!(rows.len(), job_rows, "every job row appears");
    for (key, n) in seen {
        assert_eq!(n, namings, "row {key:?} appears {n} times");
    }
}

/// Reads the child's stderr until a line holds `line`, sends `sig`, and returns the
/// exit code and all of stderr: an interrupt at an observable point, not after a sleep.
#[cfg(unix)]
pub fn signal_at_line(mut child: Child, line: &str, sig: &str) -> (Option<i32>, String) {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let mut seen = String::new();
    for l in lines.by_ref() {
        let l = l.expect("stderr reads");
        seen.push_str(&l);
        seen.push('\n');
        if l.contains(line) {
            break;
        }
    }
    signal(&mut child, sig);
    for l in lines {
        seen.push_str(&l.expect("stderr reads"));
        seen.push('\n');
    }
    (child.wait().expect("the child ends").code(), seen)
}
