//! The two files `status` writes: the status report and the passcodes file.
//!
//! The status report is written once, after the last pass, to a `.partial` file renamed
//! into place: a report never holds a device twice and a killed command leaves no
//! half-written report under the real name. The passcodes file is the only place a
//! generated passcode is ever written: created with `create_new` (never overwritten,
//! never appended to, never through a link) and mode 0600 before any request, so a
//! name that already exists stops the command with nothing read from Graph.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
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

/// Why `--passcodes path` would be refused before anything is sent, if it would: the
/// name is not the runner's own file ([`crate::own_file`]: a link, a hard link, another
/// user's file, a folder, a FIFO), or it holds more than a bare passcodes header.
pub fn passcodes_refusal(path: &Path) -> Option<String> {
    match crate::own_file::inspect(path) {
        Ok(None) => None,
        Ok(Some(Err(why))) => Some(format!(
            "the passcodes file {} is refused: {why}; name a new file (nothing was sent)",
            path.display()
        )),
        Err(e) => Some(format!(
            "the passcodes file {} cannot be checked: {e} (nothing was sent)",
            path.display()
        )),
        Ok(Some(Ok(()))) => {
            let header_only = crate::own_file::open_existing(path)
                .and_then(|mut file| holds_only_the_header(&mut file))
                .unwrap_or(false);
            (!header_only).then(|| format!(
                "the passcodes file {} already exists; passcodes are never overwritten or appended: move it away or name a new file (nothing was sent)",
                path.display()
            ))
        }
    }
}

/// Whether the opened file is a passcodes file with no passcode in it: the header alone
/// (with or without a byte-order mark), or nothing at all, as a killed command leaves
/// it.
fn holds_only_the_header(file: &mut File) -> io::Result<bool> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    Read::take(&mut *file, 257).read_to_end(&mut bytes)?;
    // Empty: killed between creating the file and writing its header.
    if bytes.is_empty() {
        return Ok(true);
    }
    let text = bytes.strip_prefix(BOM).unwrap_or(&bytes);
    let header = PASSCODE_COLUMNS.join(",");
    Ok(text == format!("{header}\n").as_bytes() || text == format!("{header}\r\n").as_bytes())
}

/// Opens the passcodes file: created new, or a header-only file of the runner's own
/// taken again, emptied and private again on Unix.
fn open_passcodes(path: &Path) -> Result<File, StatusError> {
    let failed = |source| StatusError::PasscodesFile {
        path: path.to_owned(),
        source,
    };
    match crate::own_file::create_new(path) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Not followed, and the runner's own with one link, or refused.
            let mut file = crate::own_file::open_existing(path).map_err(failed)?;
            if !holds_only_the_header(&mut file).map_err(failed)? {
                return Err(StatusError::PasscodesFileExists {
                    path: path.to_owned(),
                });
            }
            tracing::info!(
                "{} holds no passcode (a command stopped before writing one): it is written again",
                path.display()
            );
            file.set_len(0).map_err(failed)?;
            file.seek(SeekFrom::Start(0)).map_err(failed)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(failed)?;
            }
            Ok(file)
        }
        Err(e) => Err(failed(e)),
    }
}

/// Where passcode lines go: a file, which can be cut back to its last whole line.
pub trait Sink: Write {
    fn truncate_to(&mut self, len: u64) -> io::Result<()>;
}

impl Sink for File {
    fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        self.seek(SeekFrom::Start(len)).map(drop)
    }
}

/// The `--passcodes` file: created before any request, filled after the last pass.
pub struct PasscodeFile<S: Sink = File> {
    /// Named in errors and in the summary.
    pub path: PathBuf,
    out: S,
    /// Bytes of whole lines on disk: a failed write is cut back to this.
    whole: u64,
    /// Passcodes written so far.
    pub written: u64,
}

impl PasscodeFile {
    /// Creates the file, refusing one that exists. It is created new (`O_EXCL`, never
    /// through a link) and, on Unix, mode 0600 from the start (no moment when another
    /// user could open it). Windows: std passes no security attributes to
    /// `CreateFileW`, so the file inherits its folder's ACL
    /// (<https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-createfilew>,
    /// `lpSecurityAttributes`); the README says where to write it.
    /// It starts with a UTF-8 byte-order mark when `bom` (Excel then reads names and
    /// users with accents right).
    ///
    /// A file that holds nothing but this file's header is what a command killed
    /// before it wrote a passcode leaves behind (no passcode is lost by writing over it):
    /// it is taken again, so the same `--passcodes` name works on the next try, but
    /// only if it is the runner's own regular file with one link ([`crate::own_file`]):
    /// run as root, a header-only file of another user (or a hard link to one) would
    /// hand that user the passcodes.
    pub fn create_new(path: &Path, bom: bool) -> Result<PasscodeFile, StatusError> {
        let mut file = open_passcodes(path)?;
        let mut head = if bom { BOM.to_vec() } else { Vec::new() };
        // The header on disk at once: a command killed before its first passcode leaves
        // a file this function recognises and takes again.
        write_csv_line(&mut head, PASSCODE_COLUMNS)
            .and_then(|()| file.write_all(&head))
            .map_err(|source| StatusError::PasscodesFile {
                path: path.to_owned(),
                source,
            })?;
        Ok(PasscodeFile {
            path: path.to_owned(),
            out: file,
            whole: head.len() as u64,
            written: 0,
        })
    }

    pub fn finish(self) -> io::Result<()> {
        self.out.sync_all()
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

impl<S: Sink> PasscodeFile<S> {
    /// One device's generated passcode; `generated_at` is when Graph last updated the
    /// entry (the moment it turned `done`). The line is built whole and written with
    /// one `write_all`; if that fails (a full disk), the file is cut back to its last
    /// whole line, so no line is ever torn.
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
        let mut line = Vec::with_capacity(128);
        write_csv_line(&mut line, cells)?;
        if let Err(e) = self.out.write_all(&line).and_then(|()| self.out.flush()) {
            // The error is what the caller hears; a failed cut is said beside it.
            if let Err(cut) = self.out.truncate_to(self.whole) {
                tracing::error!(
                    "the passcodes file {} could not be cut back to its last whole line ({cut}): its last line may be torn",
                    self.path.display()
                );
            }
            return Err(e);
        }
        self.whole += line.len() as u64;
        self.written += 1;
        Ok(())
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
            assert!(passcodes_refusal(&path).is_some(), "{text:?}");
        }
        let bare = dir.path().join("bare.csv");
        std::fs::write(&bare, format!("\u{feff}{}\r\n", PASSCODE_COLUMNS.join(","))).unwrap();
        assert_eq!(passcodes_refusal(&bare), None);
        assert_eq!(passcodes_refusal(&dir.path().join("absent.csv")), None);
        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(
            passcodes_refusal(&empty),
            None,
            "an empty file holds no passcode"
        );
    }

    /// A disk that takes `room` more bytes, then fails (a full disk takes part of a
    /// write, then says `StorageFull`).
    struct FullDisk {
        data: Vec<u8>,
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.data.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for FullDisk {
        fn truncate_to(&mut self, len: u64) -> io::Result<()> {
            self.data.truncate(len as usize);
            Ok(())
        }
    }

    #[test]
    fn regression_17_10_a_full_disk_never_leaves_a_torn_passcode_line() {
        let mut head = Vec::new();
        write_csv_line(&mut head, PASSCODE_COLUMNS).unwrap();
        let mut file = PasscodeFile {
            path: PathBuf::from("p.csv"),
            out: FullDisk {
                data: head.clone(),
                // The first line fits, the second only in part.
                room: 60,
            },
            whole: head.len() as u64,
            written: 0,
        };
        let row = crate::status::tests::row(crate::report::Outcome::Succeeded, "", "d1");
        file.write(&row, &Secret::new("48151623"), "2026-12-01T00:00:00Z")
            .unwrap();
        let after_first = file.out.data.clone();
        let e = file
            .write(&row, &Secret::new("42424242"), "2026-12-01T00:00:01Z")
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(file.written, 1);
        assert_eq!(
            file.out.data, after_first,
            "cut back to the last whole line"
        );
        let text = String::from_utf8(file.out.data).unwrap();
        assert!(text.ends_with("2026-12-01T00:00:00Z\n"), "{text}");
        assert!(!text.contains("42424242"));
    }

    #[cfg(unix)]
    #[test]
    fn regression_17_8_a_header_only_passcodes_file_reached_by_a_link_is_never_taken() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs.csv");
        let header = format!("{}\n", PASSCODE_COLUMNS.join(","));
        std::fs::write(&theirs, &header).unwrap();
        let hard = dir.path().join("hard.csv");
        std::fs::hard_link(&theirs, &hard).unwrap();
        let soft = dir.path().join("soft.csv");
        std::os::unix::fs::symlink(&theirs, &soft).unwrap();
        let folder = dir.path().join("folder.csv");
        std::fs::create_dir(&folder).unwrap();
        for (path, why) in [
            (&hard, "hard links"),
            (&soft, "symbolic link"),
            (&folder, "not a regular file"),
        ] {
            let refusal = passcodes_refusal(path).expect("refused");
            assert!(refusal.contains(why), "{refusal}");
            match PasscodeFile::create_new(path, false) {
                Err(e @ StatusError::PasscodesFile { .. }) => {
                    assert!(e.to_string().contains(why), "{e}")
                }
                Err(other) => panic!("{path:?}: {other}"),
                Ok(_) => panic!("{path:?} was taken"),
            }
        }
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), header);
        // The same header-only file, one's own with one link: taken again.
        std::fs::remove_file(&hard).unwrap();
        assert_eq!(passcodes_refusal(&theirs), None);
        assert!(PasscodeFile::create_new(&theirs, false).is_ok());
    }
}
