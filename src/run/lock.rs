//! One run at a time: operating-system file locks, held for the whole run.
//!
//! Two locks, taken the same way:
//! - the job lock, `<report folder>/<job>.lock` (or `--lock`): two cron runs of one
//!   job exclude each other;
//! - the tenant lock, in the user's lock folder, named after a hash of the Graph host,
//!   the tenant and the app (or user) signed in as: two runs of one tenant and app on
//!   this machine exclude each other whatever their folder, report or job file name
//!   (they share one request budget, and one could reset what the other just did).
//!
//! A lock is taken with `File::try_lock` (an exclusive `flock` on Unix, `LockFileEx` on
//! Windows), or `File::lock` when the run is told to wait. The operating system
//! releases it when the process ends, however it ends (`kill -9`, a crash, a reboot):
//! there is no stale lock to take over, so no race between two runs taking one over.
//! The file itself is never removed: removing it while another process has it open
//! would let a third lock a new file of the same name beside the second.
//!
//! The file holds a note naming its holder (process id, report, start time), for the
//! sentence a second run is refused with. It is opened as a file of the runner's own
//! ([`crate::own_file`]): never through a symbolic link, never another user's file or a
//! hard link to one, so locking never truncates anything that is not a lock.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{what} is in progress ({holder}; lock file {path}); {advice} (nothing was sent)")]
    Held {
        /// "another run of this job", "another run of tenant T as app A on this machine"
        what: String,
        holder: String,
        path: PathBuf,
        advice: &'static str,
    },
    #[error("cannot lock {path}: {source} (nothing was sent)")]
    Io { path: PathBuf, source: io::Error },
}

/// Who holds a lock, as its file says.
#[derive(Debug, Clone)]
pub struct Holder {
    pub report: PathBuf,
    pub started: SystemTime,
}

impl Holder {
    /// The note written into the lock file: one line, read back by [`described`].
    fn note(&self) -> String {
        format!(
            "process {}, report {}, started {}\n",
            std::process::id(),
            self.report.display(),
            humantime::format_rfc3339_seconds(self.started)
        )
    }
}

/// What a lock is for, for the sentence a second run is refused with.
pub struct Purpose {
    pub what: String,
    pub advice: &'static str,
}

/// Held while the run lasts; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock at `path`, creating the file (and its folder) if needed. `wait`:
/// block until the holder ends instead of refusing.
pub fn acquire(
    path: &Path,
    holder: &Holder,
    purpose: &Purpose,
    wait: bool,
) -> Result<RunLock, LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(io_err)?;
    }
    let mut file = crate::own_file::open_or_create(path).map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = described(&mut file);
            if !wait {
                return Err(LockError::Held {
                    what: purpose.what.clone(),
                    holder,
                    path: path.to_owned(),
                    advice: purpose.advice,
                });
            }
            tracing::warn!(
                "{} is in progress ({holder}); waiting for it to finish (--wait-for-lock)",
                purpose.what
            );
            file.lock().map_err(io_err)?;
            tracing::info!("the lock {} is ours now", path.display());
        }
        Err(TryLockError::Error(e)) => return Err(io_err(e)),
    }
    file.set_len(0).map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    file.write_all(holder.note().as_bytes())
        .and_then(|()| file.flush())
        .map_err(io_err)?;
    Ok(RunLock { _file: file })
}

/// The holder as its note names it. On Windows a locked file cannot be read by another
/// process (`LockFileEx` locks every byte): the holder is then unnamed.
fn described(file: &mut File) -> String {
    let mut text = String::new();
    let read = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| Read::take(&mut *file, 1024).read_to_string(&mut text));
    let line = text.lines().next().unwrap_or("").trim();
    let clean: String = line.chars().filter(|c| !c.is_control()).collect();
    match read {
        // A lock written by an earlier version holds the process id alone.
        Ok(_) if clean.parse::<u32>().is_ok() => format!("process {clean}"),
        Ok(_) if clean.starts_with("process ") => clean,
        _ => "another process; its note cannot be read while it holds the lock".to_owned(),
    }
}

/// The folder of a lock, created readable by its owner only on Unix (a lock note
/// names reports and start times). An existing folder is left as it is.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Who a run acts as, for the tenant lock: the lock is shared by every run with the
/// same four values.
pub struct TenantKey<'a> {
    /// Graph's base URL: another cloud, or another simulator, is another tenant.
    pub graph: &'a str,
    pub tenant: &'a str,
    /// The app's client id, else the signed-in user.
    pub acting_as: &'a str,
    pub simulated: bool,
}

impl TenantKey<'_> {
    /// `<lock folder>/tenant-<hash>.lock`: a hash, so that the file name neither
    /// names the tenant nor depends on how its id is spelt.
    pub fn path(&self, dir: &Path) -> PathBuf {
        let text = format!(
            "graph={}\ntenant={}\nas={}\nsimulated={}\n",
            self.graph.trim_end_matches('/').to_ascii_lowercase(),
            self.tenant.trim().to_ascii_lowercase(),
            self.acting_as.trim().to_ascii_lowercase(),
            self.simulated
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        let hex: String = digest.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        dir.join(format!("tenant-{hex}.lock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(report: &str) -> Holder {
        Holder {
            report: PathBuf::from(report),
            started: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
        }
    }

    fn job() -> Purpose {
        Purpose {
            what: "another run of this job".into(),
            advice: "wait for it to finish",
        }
    }

    #[test]
    fn a_second_lock_names_the_holder_and_a_released_lock_can_be_taken() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("job.lock");
        let held = acquire(&path, &holder("first/r.csv"), &job(), false).unwrap();
        let err = acquire(&path, &holder("second/r.csv"), &job(), false).unwrap_err();
        match &err {
            LockError::Held { holder, .. } if cfg!(unix) => assert_eq!(
                holder,
                &format!(
                    "process {}, report first/r.csv, started 2027-01-15T08:00:00Z",
                    std::process::id()
                )
            ),
            LockError::Held { .. } => {}
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(err.to_string().contains("nothing was sent"), "{err}");
        drop(held);
        assert!(acquire(&path, &holder("second/r.csv"), &job(), false).is_ok());
    }

    #[test]
    fn regression_8_4_an_empty_or_stale_lock_file_is_no_lock_at_all() {
        // A file caught empty between creation and the note, or left by a dead
        // process, holds no OS lock: it is simply taken, never "taken over".
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("job.lock");
        std::fs::write(&path, "").unwrap();
        let first = acquire(&path, &holder("r.csv"), &job(), false).unwrap();
        assert!(matches!(
            acquire(&path, &holder("r.csv"), &job(), false),
            Err(LockError::Held { .. })
        ));
        drop(first);
        std::fs::write(&path, "4294967\n").unwrap();
        let _second = acquire(&path, &holder("r.csv"), &job(), false).unwrap();
        let note = std::fs::read_to_string(&path).unwrap();
        assert!(
            note.starts_with(&format!("process {}, ", std::process::id())),
            "{note}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn regression_17_11_a_symlinked_lock_path_is_refused_and_its_target_unchanged() {
        let dir = tempfile::TempDir::new().unwrap();
        let target = dir.path().join("precious.csv");
        std::fs::write(&target, "a ledger or a report\n").unwrap();
        let link = dir.path().join("job.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = acquire(&link, &holder("r.csv"), &job(), false).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let hard = dir.path().join("hard.lock");
        std::fs::hard_link(&target, &hard).unwrap();
        let err = acquire(&hard, &holder("r.csv"), &job(), false).unwrap_err();
        assert!(err.to_string().contains("hard links"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "a ledger or a report\n"
        );
    }

    #[test]
    fn the_tenant_lock_is_one_file_per_graph_tenant_and_app_however_spelt() {
        let dir = Path::new("locks");
        let key = |graph, tenant, simulated| TenantKey {
            graph,
            tenant,
            acting_as: "3E5C7A9B-1D2F-4A6B-8C0D-2E4F6A8B0C1D",
            simulated,
        };
        let one = key("https://graph.microsoft.com/", "ABC", false).path(dir);
        assert_eq!(
            one,
            key("https://graph.microsoft.com", "abc", false).path(dir)
        );
        assert_ne!(
            one,
            key("https://graph.microsoft.us/", "abc", false).path(dir)
        );
        assert_ne!(
            one,
            key("https://graph.microsoft.com/", "abd", false).path(dir)
        );
        // A rehearsal never blocks a real run.
        assert_ne!(
            one,
            key("https://graph.microsoft.com/", "abc", true).path(dir)
        );
        let name = one.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("tenant-") && !name.contains("abc"),
            "{name}"
        );
    }
}
