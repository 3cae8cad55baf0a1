//! One run of a job at a time: a lock file holding the owner's process id.
//!
//! Cron does not know that yesterday's run is still going. The lock is created with
//! `create_new` (atomic on local file systems); a second run finds it and exits 2
//! naming the holder. A lock whose process is gone (a crash, `kill -9`, a reboot) is
//! taken over with a warning: on Linux `/proc/<pid>` tells whether it still runs.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another run of this job is in progress (process {pid}, lock file {path}); \
         wait for it to finish, or remove the lock file if that process is not intune-reset"
    )]
    Held { pid: u32, path: PathBuf },
    #[error("cannot create the lock file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Held while the run lasts; the file is removed when this is dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes the lock, or takes over one left by a process that no longer runs (returning
/// a warning to log).
pub fn acquire(path: &Path) -> Result<(RunLock, Option<String>), LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err)?;
    }
    let mut warning = None;
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(mut file) => {
                writeln!(file, "{}", std::process::id()).map_err(io_err)?;
                return Ok((
                    RunLock {
                        path: path.to_owned(),
                    },
                    warning,
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let pid = text.trim().parse::<u32>().ok();
                match pid {
                    Some(pid) if is_running(pid) => {
                        return Err(LockError::Held {
                            pid,
                            path: path.to_owned(),
                        });
                    }
                    _ => {
                        warning = Some(format!(
                            "taking over the lock {} left by process {} which no longer runs",
                            path.display(),
                            pid.map(|p| p.to_string())
                                .unwrap_or_else(|| "(unreadable)".into())
                        ));
                        std::fs::remove_file(path).map_err(io_err)?;
                    }
                }
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    Err(io_err(io::Error::other("the lock file keeps reappearing")))
}

/// Whether process `pid` exists. Without `/proc`, assume it does: refusing to run is
/// the safe side.
fn is_running(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    pid == std::process::id() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("job.lock");
        let (held, warning) = acquire(&path).unwrap();
        assert!(warning.is_none());
        match acquire(&path) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        assert!(!path.exists(), "released on drop");
        assert!(acquire(&path).is_ok());
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_taken_over_with_a_warning() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("job.lock");
        // Process ids are below 2^22 on Linux: this one cannot exist.
        std::fs::write(&path, "4294967\n").unwrap();
        let (_held, warning) = acquire(&path).unwrap();
        assert!(warning.unwrap().contains("4294967"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
    }
}
