//! One run of a job at a time: an OS file lock on `<report folder>/<job>.lock`.
//!
//! Cron does not know that yesterday's run is still going. The lock is taken with
//! `File::try_lock` (an exclusive `flock` on Unix, `LockFileEx` on Windows) and held for
//! the whole run; the operating system releases it when the process ends, however it
//! ends (`kill -9`, a crash, a reboot). There is no stale lock to take over, so no race
//! between two runs taking one over. The file itself is never removed: removing it
//! while another process has it open would let a third lock a new file of the same name
//! beside the second. It holds the owner's process id, for the message only.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another run of this job is in progress ({holder}, lock file {path}); wait for it to finish"
    )]
    Held { holder: String, path: PathBuf },
    #[error("cannot lock {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Held while the run lasts; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

pub fn acquire(path: &Path) -> Result<RunLock, LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            // On Windows a locked file cannot be read by another process: the holder
            // is then unnamed.
            let mut text = String::new();
            let holder = match file.read_to_string(&mut text) {
                Ok(_) if text.trim().parse::<u32>().is_ok() => format!("process {}", text.trim()),
                _ => "another process".to_owned(),
            };
            return Err(LockError::Held {
                holder,
                path: path.to_owned(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io_err(e)),
    }
    file.set_len(0).map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    writeln!(file, "{}", std::process::id()).map_err(io_err)?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_released_lock_can_be_taken() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("job.lock");
        let held = acquire(&path).unwrap();
        match acquire(&path) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder, format!("process {}", std::process::id()))
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        assert!(acquire(&path).is_ok());
    }

    #[test]
    fn regression_8_4_an_empty_or_stale_lock_file_is_no_lock_at_all() {
        // A file caught empty between creation and the pid write, or left by a dead
        // process, holds no OS lock: it is simply taken, never "taken over".
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("job.lock");
        std::fs::write(&path, "").unwrap();
        let first = acquire(&path).unwrap();
        assert!(matches!(acquire(&path), Err(LockError::Held { .. })));
        drop(first);
        std::fs::write(&path, "4294967\n").unwrap();
        let _second = acquire(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
    }
}
