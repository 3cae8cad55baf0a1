//! Fixtures and helpers shared by the integration tests.

pub mod tenant;
pub mod xlsx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use intune_reset::graph::GraphClient;
use intune_reset::pacing::AbortReason;
use intune_reset::sim::SimHandle;

pub use intune_reset::cli::run_cmd::SIMULATED_CLIENT_ID;

/// A client signed in to the in-process simulator `sim` as app `client_id`.
pub async fn simulated_client(
    sim: &SimHandle,
    client_id: &str,
    timeout: std::time::Duration,
) -> Result<GraphClient, AbortReason> {
    intune_reset::graph::sign_in_to_simulator(
        &sim.base_url(),
        &sim.config().tenant_id,
        client_id,
        timeout,
    )
    .await
    .map(|(client, _)| client)
    .map_err(AbortReason::Authentication)
}

pub type Row = BTreeMap<String, String>;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary, run from the repository root so sample paths read as in the README.
pub fn intune_reset() -> Command {
    let mut cmd = Command::cargo_bin("intune-reset").expect("binary built by cargo");
    cmd.current_dir(repo());
    for var in [
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "INTUNE_RESET_ACCESS_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The UTF-8 byte-order mark CSV reports start with (unless `--no-bom`).
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A CSV report read back as (column name -> value) maps, in file order; its BOM, if
/// any, is not part of the first column's name.
pub fn read_report(path: &Path) -> Vec<Row> {
    let bytes = std::fs::read(path).expect("report exists");
    let text = bytes.strip_prefix(BOM).unwrap_or(&bytes);
    let mut reader = csv::Reader::from_reader(text);
    let headers = reader.headers().expect("report header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("report row");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

pub fn count(rows: &[Row], outcome: &str) -> usize {
    rows.iter().filter(|r| r["outcome"] == outcome).count()
}

pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    path
}

pub fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

pub fn utf16be_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFE, 0xFF];
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out
}

/// `intune-reset plan /dev/stdin ARGS --report REPORT` with `bytes` piped in: what a
/// pipe or `<(...)` hands the tool.
#[cfg(unix)]
pub fn plan_piped(bytes: &[u8], args: &[&str], report: &Path) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(tenant::bin())
        .args(["plan", "/dev/stdin"])
        .args(args)
        .arg("--report")
        .arg(report)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Written from a thread while stderr is read here: a child that writes before it
    // has read all of its input never blocks on a full pipe (issue 18).
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let bytes = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let out = child.wait_with_output().expect("the binary ends");
    writer
        .join()
        .expect("the writer ends")
        .expect("the pipe takes the job");
    out
}
