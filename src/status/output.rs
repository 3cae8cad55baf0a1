//! The two files `status` writes: the status report and the passcodes file.
//!
//! The status report is written once, after the last pass, to a `.partial` file renamed
//! into place: a report never holds a device twice and a killed command leaves no
//! half-written report under the real name. The passcodes file is the only place a
//! generated passcode is ever written: created with `create_new` (never overwritten,
//! never appended to) and mode 0600 before any request, so a name that already exists
//! stops the command with nothing read from Graph.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::graph::Secret;
use crate::report::{BOM, COLUMNS, ReportFormat, ReportRow, defuse, write_csv_line, write_csv_row};

use super::StatusError;
use super::state::Found;

/// The columns `status` adds to the run's.
pub const STATUS_COLUMNS: [&str; 3] = ["action_state", "action_updated_at", "error_code"];

/// The columns of the passcodes file.
pub const PASSCODE_COLUMNS: [&str; 6] = [
    "device_id",
    "device_name",
    "serial_number",
    "user_principal_name",
    "passcode",
    "generated_at",
];

/// `<run report stem>.status.<csv|jsonl>`, beside the run report, in its format.
pub fn default_path(run_report: &Path, format: ReportFormat) -> PathBuf {
    let stem = run_report
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    // Never over an earlier status report: `-2`, `-3`, ... as for run reports, so each
    // follow-up stays on record.
    crate::report::unused_name(
        run_report.with_file_name(format!("{stem}.status.{}", format.extension())),
    )
}

/// The cells of [`STATUS_COLUMNS`] for a row; empty for a row that was not queried.
pub fn status_cells(found: Option<&Found>) -> [&str; 3] {
    match found {
        Some(f) => [
            f.state.as_str(),
            f.updated_at.as_str(),
            f.error_code.as_str(),
        ],
        None => ["", "", ""],
    }
}

/// The status report, being written under a temporary name.
pub struct StatusWriter {
    /// Where the report goes once complete.
    path: PathBuf,
    /// Where it is written until then.
    partial: PathBuf,
    /// CSV or JSON Lines, as the run report.
    format: ReportFormat,
    out: BufWriter<File>,
}

/// A JSON Lines row: the run's keys, then the status keys.
#[derive(Serialize)]
struct JsonLine<'a> {
    #[serde(flatten)]
    row: &'a ReportRow,
    action_state: &'a str,
    action_updated_at: &'a str,
    error_code: &'a str,
}

impl StatusWriter {
    /// A CSV report starts with a UTF-8 byte-order mark when `bom`.
    pub fn create(path: &Path, format: ReportFormat, bom: bool) -> io::Result<StatusWriter> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let partial = path.with_file_name(name);
        let mut out = BufWriter::new(File::create(&partial)?);
        if format != ReportFormat::Jsonl {
            if bom {
                out.write_all(BOM)?;
            }
            write_csv_line(&mut out, COLUMNS.iter().chain(STATUS_COLUMNS.iter()))?;
        }
        Ok(StatusWriter {
            path: path.to_owned(),
            partial,
            format,
            out,
        })
    }

    /// One row; `found` is `None` for rows that were not queried (empty new columns).
    /// The passcode in `found` is never written here.
    pub fn write(&mut self, row: &ReportRow, found: Option<&Found>) -> io::Result<()> {
        let [state, updated, code] = status_cells(found);
        match self.format {
            ReportFormat::Csv | ReportFormat::Xlsx => {
                write_csv_row(&mut self.out, row, &[state, updated, code])
            }
            ReportFormat::Jsonl => {
                let line = JsonLine {
                    row,
                    action_state: state,
                    action_updated_at: updated,
                    error_code: code,
                };
                serde_json::to_writer(&mut self.out, &line)?;
                self.out.write_all(b"\n")
            }
        }
    }

    /// Flushes, syncs and renames the report into place.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        std::fs::rename(&self.partial, &self.path)?;
        Ok(self.path)
    }
}

/// Whether `--passcodes path` would be refused: something is there, and it is not a
/// passcodes file holding no passcode.
pub fn passcodes_name_taken(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok() && !holds_only_the_header(path)
}

/// Whether `path` is a passcodes file with no passcode in it: the header alone (with or
/// without a byte-order mark), or nothing at all, as a killed command leaves it.
fn holds_only_the_header(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.len() > 256 {
        return false;
    }
    // Empty: killed between creating the file and writing its header.
    if meta.len() == 0 {
        return true;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let text = bytes.strip_prefix(BOM).unwrap_or(&bytes);
    let header = PASSCODE_COLUMNS.join(",");
    text == format!("{header}\n").as_bytes() || text == format!("{header}\r\n").as_bytes()
}

/// Truncates a header-only passcodes file for writing, private again on Unix.
fn reopen_empty(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().write(true).truncate(true).open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// The `--passcodes` file: created before any request, filled after the last pass.
pub struct PasscodeFile {
    /// Named in errors and in the summary.
    pub path: PathBuf,
    out: BufWriter<File>,
    /// Passcodes written so far.
    pub written: u64,
}

impl PasscodeFile {
    /// Creates the file, refusing one that exists. Unix: mode 0600 from the start (no
    /// moment when another user could open it). Windows: std passes no security
    /// attributes to `CreateFileW`, so the file inherits its folder's ACL
    /// (<https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-createfilew>,
    /// `lpSecurityAttributes`); the README says where to write it.
    /// It starts with a UTF-8 byte-order mark when `bom` (Excel then reads names and
    /// users with accents right).
    ///
    /// A file that holds nothing but this file's header is what a command killed
    /// before it wrote a passcode leaves behind (no passcode is lost by writing over it):
    /// it is taken again, so the same `--passcodes` name works on the next try.
    pub fn create_new(path: &Path, bom: bool) -> Result<PasscodeFile, StatusError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let opened = match options.open(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && holds_only_the_header(path) => {
                tracing::info!(
                    "{} holds no passcode (a command stopped before writing one): it is written again",
                    path.display()
                );
                reopen_empty(path)
            }
            other => other,
        };
        let file = opened.map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                StatusError::PasscodesFileExists {
                    path: path.to_owned(),
                }
            } else {
                StatusError::PasscodesFile {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        let mut out = BufWriter::new(file);
        let head = if bom { BOM } else { b"" };
        // The header on disk at once: a command killed before its first passcode leaves
        // a file this function recognises and takes again.
        out.write_all(head)
            .and_then(|_| write_csv_line(&mut out, PASSCODE_COLUMNS))
            .and_then(|_| out.flush())
            .map_err(|source| StatusError::PasscodesFile {
                path: path.to_owned(),
                source,
            })?;
        Ok(PasscodeFile {
            path: path.to_owned(),
            out,
            written: 0,
        })
    }

    /// One device's generated passcode; `generated_at` is when Graph last updated the
    /// entry (the moment it turned `done`).
    pub fn write(
        &mut self,
        row: &ReportRow,
        passcode: &Secret,
        generated_at: &str,
    ) -> io::Result<()> {
        let cells = [
            defuse(&row.device_id),
            defuse(&row.device_name),
            defuse(&row.serial_number),
            defuse(&row.user_principal_name),
            // Passcodes are digits and capitals; defuse anyway, as every other cell.
            defuse(passcode.expose()),
            defuse(generated_at),
        ];
        write_csv_line(&mut self.out, cells)?;
        self.written += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }

    /// Removes a file this command created and wrote no passcode to (the command stopped
    /// before reading anything), so the same `--passcodes` name works on the next try.
    pub fn discard_if_empty(self) {
        if self.written == 0 {
            drop(self.out);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_report_sits_beside_the_run_report_in_its_format() {
        assert_eq!(
            default_path(
                Path::new("reports/job-20261122T020000Z.csv"),
                ReportFormat::Csv
            ),
            PathBuf::from("reports/job-20261122T020000Z.status.csv")
        );
        assert_eq!(
            default_path(Path::new("run.jsonl"), ReportFormat::Jsonl),
            PathBuf::from("run.status.jsonl")
        );
    }

    #[test]
    fn the_csv_files_of_status_start_with_a_bom_unless_told_not_to() {
        let dir = tempfile::tempdir().unwrap();
        for bom in [true, false] {
            let passcodes = dir.path().join(format!("passcodes-{bom}.csv"));
            PasscodeFile::create_new(&passcodes, bom)
                .unwrap()
                .finish()
                .unwrap();
            let report = dir.path().join(format!("status-{bom}.csv"));
            StatusWriter::create(&report, ReportFormat::Csv, bom)
                .unwrap()
                .finish()
                .unwrap();
            for path in [passcodes, report] {
                let bytes = std::fs::read(&path).unwrap();
                assert_eq!(bytes.starts_with(BOM), bom, "{}", path.display());
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_passcodes_file_is_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passcodes.csv");
        let file = PasscodeFile::create_new(&path, false).unwrap();
        file.finish().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Holding no passcode yet, it is taken again (a killed command left it).
        let mut again = PasscodeFile::create_new(&path, false).unwrap();
        let row = crate::status::tests::row(crate::report::Outcome::Succeeded, "", "d1");
        again
            .write(&row, &Secret::new("48151623"), "2026-12-01T00:00:00Z")
            .unwrap();
        again.finish().unwrap();
        // Once it holds a passcode, never again.
        let before = std::fs::read_to_string(&path).unwrap();
        assert!(before.contains("48151623"));
        let third = PasscodeFile::create_new(&path, true);
        assert!(matches!(
            third,
            Err(StatusError::PasscodesFileExists { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_file_that_is_not_a_bare_passcodes_header_is_never_taken() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "device_id,device_name,serial_number,user_principal_name,passcode,generated_at\nd1,,,,1234,\n",
            "notes about passcodes\n",
        ] {
            let path = dir.path().join("p.csv");
            std::fs::write(&path, text).unwrap();
            assert!(
                matches!(
                    PasscodeFile::create_new(&path, false),
                    Err(StatusError::PasscodesFileExists { .. })
                ),
                "{text:?}"
            );
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
            assert!(passcodes_name_taken(&path), "{text:?}");
        }
        let bare = dir.path().join("bare.csv");
        std::fs::write(&bare, format!("\u{feff}{}\r\n", PASSCODE_COLUMNS.join(","))).unwrap();
        assert!(!passcodes_name_taken(&bare));
        assert!(!passcodes_name_taken(&dir.path().join("absent.csv")));
        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, "").unwrap();
        assert!(
            !passcodes_name_taken(&empty),
            "an empty file holds no passcode"
        );
    }
}
