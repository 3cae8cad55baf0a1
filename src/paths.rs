//! The files one command names never name the same file.
//!
//! `--lock` naming the ledger would lock (once, truncate) the run's record;
//! `--summary-json` naming the report would replace its rows; a report naming a job
//! file would write over the job. So every file a command writes (report, its CSV
//! companion, ledger, lock, tenant lock, summary, passcodes) is compared with every
//! other file it names, before anything is sent, as the operating system would see
//! them: the same path once symbolic links and `..` are resolved, and for files that
//! exist the same file (same device and inode on Unix, so a hard link counts; on
//! Windows the standard library has no stable file index, so the canonical path).
//! Names of files that do not exist yet are compared ignoring case on Windows and
//! macOS, whose file systems usually do.
//!
//! Core module: imports nothing of the crate.

use std::path::{Component, Path, PathBuf};

/// A file a command names, and the flag (or role) that names it.
#[derive(Debug, Clone)]
pub struct Named {
    /// `--report`, `--lock`, `the ledger`, `a job file`, ...
    pub role: String,
    pub path: PathBuf,
    /// Written (or locked) by the command; two files only read may be the same.
    pub written: bool,
}

impl Named {
    pub fn written(role: impl Into<String>, path: impl Into<PathBuf>) -> Named {
        Named {
            role: role.into(),
            path: path.into(),
            written: true,
        }
    }

    pub fn read(role: impl Into<String>, path: impl Into<PathBuf>) -> Named {
        Named {
            role: role.into(),
            path: path.into(),
            written: false,
        }
    }
}

/// Two names of one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{first} and {second} name the same file ({path}); each needs a file of its own: choose another path (nothing was sent)"
)]
pub struct Collision {
    pub first: String,
    pub second: String,
    pub path: PathBuf,
}

/// The first pair of names, one of them written, that name one file.
pub fn distinct(files: &[Named]) -> Result<(), Collision> {
    let keys: Vec<Key> = files.iter().map(|f| Key::of(&f.path)).collect();
    for (i, a) in files.iter().enumerate() {
        for (j, b) in files.iter().enumerate().skip(i + 1) {
            if (a.written || b.written) && keys[i] == keys[j] {
                return Err(Collision {
                    first: a.role.clone(),
                    second: b.role.clone(),
                    path: b.path.clone(),
                });
            }
        }
    }
    Ok(())
}

/// How a name is compared.
#[derive(Debug, PartialEq, Eq)]
enum Key {
    /// An existing file on Unix: its device and inode.
    #[cfg(unix)]
    Inode(u64, u64),
    /// Otherwise: the path as the OS resolves it.
    Path(PathBuf),
}

impl Key {
    fn of(path: &Path) -> Key {
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            return Key::Inode(meta.dev(), meta.ino());
        }
        Key::Path(resolved(path))
    }
}

/// The path with symbolic links and `..` resolved as far as it exists, the rest
/// (a file or folders not yet created) normalized by its names.
pub fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    // Component by component: while the path exists the OS resolves it (links, and
    // `..` after a link, which names the link's parent folder); past the first name
    // that does not exist there is no link left, and the names alone decide.
    let mut out = PathBuf::new();
    let mut exists = true;
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if !exists => {
                out.pop();
            }
            other => {
                out.push(other);
                // Not the prefix or root alone: `C:` canonicalized is C:'s current
                // folder on Windows.
                if exists && matches!(other, Component::Normal(_) | Component::ParentDir) {
                    match out.canonicalize() {
                        Ok(real) => out = real,
                        Err(_) => exists = false,
                    }
                }
            }
        }
    }
    if cfg!(any(windows, target_os = "macos")) && !exists {
        PathBuf::from(out.to_string_lossy().to_lowercase())
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_spelt_two_ways_is_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("r.csv.ledger");
        let other = dir.path().join("sub").join("..").join("r.csv.ledger");
        let err = distinct(&[
            Named::written("the ledger", &ledger),
            Named::written("--lock", &other),
        ])
        .unwrap_err();
        assert_eq!(err.first, "the ledger");
        assert_eq!(err.second, "--lock");
        assert!(err.to_string().contains("nothing was sent"));
        // Two inputs may be one file; distinct outputs pass.
        assert!(
            distinct(&[
                Named::read("a job file", &ledger),
                Named::read("a job file", &other),
                Named::written("--report", dir.path().join("r.csv")),
            ])
            .is_ok()
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_or_a_hard_link_to_the_report_is_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.csv");
        std::fs::write(&report, "rows\n").unwrap();
        let hard = dir.path().join("hard.json");
        std::fs::hard_link(&report, &hard).unwrap();
        let soft = dir.path().join("soft.json");
        std::os::unix::fs::symlink(&report, &soft).unwrap();
        for alias in [&hard, &soft] {
            assert!(
                distinct(&[
                    Named::written("--report", &report),
                    Named::written("--summary-json", alias),
                ])
                .is_err(),
                "{alias:?}"
            );
        }
        // A folder reached through a link, the file not there yet.
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(
            distinct(&[
                Named::written("--passcodes", real.join("p.csv")),
                Named::written("--summary-json", link.join("p.csv")),
            ])
            .is_err()
        );
    }
}
