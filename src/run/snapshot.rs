//! The job, read once: each job file is copied into a private folder while its
//! fingerprint is taken, and everything after (the count for the confirmation,
//! `--max-devices`, the sending, the simulator's inventory) reads that copy.
//!
//! So a file replaced or rewritten while the run signs in or asks for confirmation
//! cannot change what is sent, and pipes (`run <(cat job.csv)`) and FIFOs work: they
//! are read exactly once. The copy keeps the file's name, so its extension still tells
//! its format (workbooks and ZIP archives are recognised by their bytes anyway; a ZIP's
//! members are unpacked from the copy). The folder is removed when the run ends (it is
//! created readable by its owner only, as the job may name users). The copies together
//! are capped at the job's [`Limits`](crate::job::Limits) (2 GiB): an endless pipe
//! (`run <(yes)`) stops with a sentence before the disk fills, and nothing is sent.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::job::limits::{self, CopyError, Limits};
use crate::job::{JobError, ReadOptions};
use crate::planner::{OpenedJob, open_job};

use super::ledger::Fingerprint;

pub struct JobSnapshot {
    /// Removed on drop.
    _dir: tempfile::TempDir,
    files: Vec<SnapshotFile>,
    read: ReadOptions,
    /// What the copies have written, against the cap (apart from the readings).
    copying: Limits,
}

struct SnapshotFile {
    copy: PathBuf,
    fingerprint: Fingerprint,
}

impl JobSnapshot {
    /// Reads every job file once, in order; `read` is how they are read later.
    pub fn take(paths: &[PathBuf], read: ReadOptions) -> Result<JobSnapshot, JobError> {
        let dir = tempfile::Builder::new()
            .prefix("intune-reset-job-")
            .tempdir()
            .map_err(|e| JobError::Io {
                path: "a temporary folder for the job's copy".into(),
                message: e.to_string(),
            })?;
        let mut files = Vec::with_capacity(paths.len());
        let copying = read.limits.fresh();
        for (i, path) in paths.iter().enumerate() {
            let source = path.display().to_string();
            let io_err = |e: io::Error| JobError::Io {
                path: source.clone(),
                message: e.to_string(),
            };
            let name = path
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_else(|| "job".into());
            let folder = dir.path().join(i.to_string());
            std::fs::create_dir(&folder).map_err(io_err)?;
            let copy = folder.join(name);
            let (bytes, sha256) = copy_hashing(path, &copy, &copying)
                .map_err(|e| copy_error(e, &source, path, &copying))?;
            files.push(SnapshotFile {
                copy,
                fingerprint: Fingerprint {
                    source,
                    bytes,
                    sha256,
                },
            });
        }
        Ok(JobSnapshot {
            _dir: dir,
            files,
            read,
            copying,
        })
    }

    /// Adds a job file the command line itself gave (`--user UPN`): `text` is written
    /// into the private folder as `name` and reported under `source`.
    pub fn with_text(
        mut self,
        source: &str,
        name: &str,
        text: &str,
    ) -> Result<JobSnapshot, JobError> {
        let io_err = |e: io::Error| JobError::Io {
            path: source.to_owned(),
            message: e.to_string(),
        };
        let folder = self._dir.path().join(self.files.len().to_string());
        std::fs::create_dir(&folder).map_err(io_err)?;
        let written = folder.join(format!("{name}.source"));
        std::fs::write(&written, text).map_err(io_err)?;
        let copy = folder.join(name);
        let (bytes, sha256) = copy_hashing(&written, &copy, &self.copying)
            .map_err(|e| copy_error(e, source, &written, &self.copying))?;
        let _ = std::fs::remove_file(&written);
        self.files.push(SnapshotFile {
            copy,
            fingerprint: Fingerprint {
                source: source.to_owned(),
                bytes,
                sha256,
            },
        });
        Ok(self)
    }

    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        self.files.iter().map(|f| f.fingerprint.clone()).collect()
    }

    /// The copies, for readers that take paths (the simulator's inventory).
    pub fn copies(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.copy.clone()).collect()
    }

    pub fn read_options(&self) -> &ReadOptions {
        &self.read
    }

    /// Opens every copy as a job file (a ZIP of several as several), named as the
    /// command line named the original (`original.zip!member.csv`).
    pub fn open(&self) -> Result<Vec<OpenedJob>, JobError> {
        let mut jobs = Vec::with_capacity(self.files.len());
        let read = self.read.one_reading();
        for file in &self.files {
            let opened = open_job(&file.copy, &file.fingerprint.source, &read)
                .map_err(|e| self.renamed(e))?;
            jobs.extend(opened);
        }
        Ok(jobs)
    }

    /// The copies with the names the command line gave the originals.
    pub fn named_copies(&self) -> Vec<(PathBuf, String)> {
        self.files
            .iter()
            .map(|f| (f.copy.clone(), f.fingerprint.source.clone()))
            .collect()
    }

    /// An error about a copy (should one name it), told of the original.
    fn renamed(&self, e: JobError) -> JobError {
        let original = |path: String| {
            self.files
                .iter()
                .find_map(|f| {
                    let copy = f.copy.display().to_string();
                    path.strip_prefix(&copy)
                        .map(|rest| format!("{}{rest}", f.fingerprint.source))
                })
                .unwrap_or(path)
        };
        match e {
            JobError::Io { path, message } => JobError::Io {
                path: original(path),
                message,
            },
            JobError::Unreadable { path, why } => JobError::Unreadable {
                path: original(path),
                why,
            },
            JobError::Index(why) => JobError::Index(why),
        }
    }
}

/// Copies `from` to `to`, counted against `limits`, returning its size and SHA-256
/// (lower-case hex). Past the cap the partial copy is deleted at once (the folder goes
/// too, when the refused snapshot is dropped).
fn copy_hashing(from: &Path, to: &Path, limits: &Limits) -> Result<(u64, String), CopyError> {
    let mut input = File::open(from)?;
    let mut output = File::create(to)?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let copied = limits::copy_capped(&mut input, &mut output, limits, None, &mut |chunk| {
        digest.update(chunk)
    });
    drop(output);
    let total = match copied {
        Ok(total) => total,
        Err(e) => {
            let _ = std::fs::remove_file(to);
            return Err(e);
        }
    };
    Ok((total, crate::ledger::hex(digest.finish().as_ref())))
}

/// The error of a copy that failed or went past the cap, naming the job file.
fn copy_error(e: CopyError, source: &str, from: &Path, limits: &Limits) -> JobError {
    match e {
        CopyError::Io(e) => JobError::Io {
            path: source.to_owned(),
            message: e.to_string(),
        },
        CopyError::OverCap | CopyError::OverRatio { .. } => JobError::Unreadable {
            path: source.to_owned(),
            why: limits::over_cap(limits.total_bytes, !from.is_file()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_what_the_file_held_when_it_was_read() {
        let dir = tempfile::TempDir::new().unwrap();
        let job = dir.path().join("job.csv");
        std::fs::write(&job, "id,operatingSystem\n").unwrap();
        let snap = JobSnapshot::take(std::slice::from_ref(&job), ReadOptions::default()).unwrap();
        std::fs::write(&job, "replaced").unwrap();
        let copy = &snap.copies()[0];
        assert_eq!(
            std::fs::read_to_string(copy).unwrap(),
            "id,operatingSystem\n"
        );
        assert!(copy.ends_with("job.csv"));
        let f = &snap.fingerprints()[0];
        assert_eq!(f.bytes, 19);
        assert_eq!(f.source, job.display().to_string());
        assert_eq!(f.sha256.len(), 64);
    }

    #[test]
    fn the_same_file_named_twice_is_two_copies() {
        let dir = tempfile::TempDir::new().unwrap();
        let job = dir.path().join("job.csv");
        std::fs::write(&job, "id\n").unwrap();
        let snap = JobSnapshot::take(&[job.clone(), job], ReadOptions::default()).unwrap();
        let copies = snap.copies();
        assert_ne!(copies[0], copies[1]);
        assert_eq!(snap.fingerprints()[0], snap.fingerprints()[1]);
    }

    #[test]
    fn a_job_past_the_cap_is_refused_naming_it_and_its_partial_copy_is_deleted() {
        let dir = tempfile::TempDir::new().unwrap();
        let job = dir.path().join("big.csv");
        std::fs::write(&job, vec![b'x'; 4096]).unwrap();
        let read = ReadOptions {
            limits: Limits::with_total(1024),
            ..ReadOptions::default()
        };
        let Err(e) = JobSnapshot::take(std::slice::from_ref(&job), read) else {
            panic!("a job past the cap is refused")
        };
        let text = e.to_string();
        assert!(text.contains(&job.display().to_string()), "{text}");
        assert!(text.contains("larger than 1 KiB"), "{text}");

        let copy = dir.path().join("copy.csv");
        let limits = Limits::with_total(1024);
        assert!(copy_hashing(&job, &copy, &limits).is_err());
        assert!(!copy.exists(), "the partial copy is deleted");
        assert!(limits.written() <= 1024);
    }

    #[test]
    fn errors_name_the_original_file() {
        let dir = tempfile::TempDir::new().unwrap();
        let job = dir.path().join("empty.csv");
        std::fs::write(&job, "").unwrap();
        let snap = JobSnapshot::take(std::slice::from_ref(&job), ReadOptions::default()).unwrap();
        let Err(e) = snap.open() else {
            panic!("an empty file is refused")
        };
        let text = e.to_string();
        assert!(text.contains(&job.display().to_string()), "{text}");
    }
}
