//! What reading a job may do to the machine and what it may pass over (issue 17 point
//! 11): a ZIP inside a ZIP refuses the job, and a ZIP unpacking past the cap is
//! refused before it fills the disk, with nothing sent and nothing left behind.

use std::io::{Cursor, Write};
use std::path::Path;

use tempfile::TempDir;

use crate::common::{intune_reset, read_report};

const IOS_A: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const IOS_B: &str = "11111111-2222-3333-4444-555555555555";

fn zip_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in members {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn csv_of(id: &str) -> Vec<u8> {
    format!("id,operatingSystem,osVersion\n{id},iOS,17.5\n").into_bytes()
}

/// `run --simulate` of `job` with the child's temporary folder in `tmp`, so that what
/// it leaves there can be seen: exit code, stderr, the report's rows.
fn run_simulated(dir: &Path, job: &Path, tmp: &Path) -> (i32, String, usize) {
    let report = dir.join("report.csv");
    let out = intune_reset()
        .args(["run", "--simulate", "--yes", "--action", "auto"])
        .arg(job)
        .arg("--report")
        .arg(&report)
        .env("TMPDIR", tmp)
        .env("TMP", tmp)
        .env("TEMP", tmp)
        .output()
        .unwrap();
    let rows = if report.exists() {
        read_report(&report).len()
    } else {
        0
    };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        rows,
    )
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn regression_17_11_a_zip_inside_a_zip_beside_a_csv_is_not_passed_over() {
    let dir = TempDir::new().unwrap();
    let tmp = TempDir::new().unwrap();
    let inner = zip_bytes(&[("second.csv", &csv_of(IOS_B))]);
    let job = dir.path().join("incident.zip");
    std::fs::write(
        &job,
        zip_bytes(&[("first.csv", &csv_of(IOS_A)), ("more/second.zip", &inner)]),
    )
    .unwrap();
    let (code, stderr, rows) = run_simulated(dir.path(), &job, tmp.path());
    assert_eq!(code, 2, "refused as a usage error, nothing sent: {stderr}");
    assert!(stderr.contains("incident.zip"), "{stderr}");
    assert!(
        stderr.contains("more/second.zip"),
        "the inner ZIP is named: {stderr}"
    );
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert_eq!(rows, 0, "not even the CSV beside it ran");
    assert!(is_empty(tmp.path()), "nothing left in the temporary folder");
}

#[test]
fn a_file_of_another_format_in_a_zip_is_named_in_a_warning() {
    let dir = TempDir::new().unwrap();
    let job = dir.path().join("export.zip");
    std::fs::write(
        &job,
        zip_bytes(&[
            ("devices.csv", &csv_of(IOS_A)),
            ("readme.pdf", b"%PDF-1.7"),
            ("__MACOSX/._devices.csv", b"\0\x05\x16\x07"),
        ]),
    )
    .unwrap();
    let report = dir.path().join("plan.csv");
    let out = intune_reset()
        .arg("plan")
        .arg(&job)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(read_report(&report).len(), 1);
    assert!(
        stderr.contains("passed over 1 entry") && stderr.contains("readme.pdf"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("__MACOSX"),
        "macOS packaging is not news: {stderr}"
    );
}

/// A ZIP of 1,100 members of 1 MiB of zeros each (about 1 MB on disk, 1.1 GiB
/// unpacked, past the 1 GiB cap): one member deflated once, its packed bytes copied
/// under each name.
fn bomb(path: &Path) {
    let one = zip_bytes(&[("part.csv", &vec![0u8; 1 << 20])]);
    let mut source = zip::ZipArchive::new(Cursor::new(one)).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..1100 {
        let member = source.by_index_raw(0).unwrap();
        zip.raw_copy_file_rename(member, format!("part{i:04}.csv"))
            .unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn regression_17_11_a_zip_that_unpacks_past_the_cap_is_refused() {
    let dir = TempDir::new().unwrap();
    let tmp = TempDir::new().unwrap();
    let job = dir.path().join("devices.zip");
    bomb(&job);
    assert!(std::fs::metadata(&job).unwrap().len() < 4 << 20);
    let (code, stderr, rows) = run_simulated(dir.path(), &job, tmp.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("devices.zip") && stderr.contains("more than 1 GiB"),
        "the file and the cap are named: {stderr}"
    );
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert_eq!(rows, 0);
    assert!(is_empty(tmp.path()), "the partial unpacking is deleted");
}
