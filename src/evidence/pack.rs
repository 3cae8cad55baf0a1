//! `evidence REPORT --out DIR` writes the pack; `evidence --verify DIR` checks it.
//!
//! The pack holds the job files as the run read them (checked against the SHA-256 its
//! ledger recorded), the ledger, the run report, the status and audit reports when
//! there are any, `summary.html`, and `manifest.json`: the SHA-256 and size of every
//! file, and the ledger's line count and last chain hash. `--verify` re-reads every file
//! against the manifest, follows the ledger's chain, checks its head against the
//! manifest's, and the job files against the ledger's own fingerprints, and says exactly
//! what changed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::CommandError;
use crate::ledger::{ChainHead, Ledger, ledger_path, verify_chain};

/// The manifest's name in a pack.
pub const MANIFEST: &str = "manifest.json";
/// The page a security lead reads.
pub const SUMMARY: &str = "summary.html";

/// What `evidence` is asked to do.
#[derive(Debug, Clone)]
pub enum EvidenceConfig {
    Pack {
        run_report: PathBuf,
        out: PathBuf,
        /// `--status`, else the newest status report beside the run report, if any.
        status: Option<PathBuf>,
        /// `--audit`, else the newest audit report beside the run report, if any.
        audit: Option<PathBuf>,
    },
    Verify {
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub version: String,
    pub created_at: String,
    /// Who ran the run, in which tenant, as its ledger records.
    pub run_by: String,
    pub run_started_at: String,
    pub ledger: LedgerFacts,
    pub files: Vec<PackedFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerFacts {
    /// The ledger's path in the pack.
    pub path: String,
    /// Its last session closed it in order (an `end` line); else killed, or cut.
    #[serde(default)]
    pub ended: bool,
    #[serde(flatten)]
    pub chain: ChainHead,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedFile {
    /// Relative to the pack, `/`-separated.
    pub path: String,
    /// `job`, `ledger`, `run_report`, `status_report`, `audit_report`, `summary`.
    pub role: String,
    pub bytes: u64,
    pub sha256: String,
    /// For a job file: the path the run named it by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// How `evidence` ended: the lines to print and the exit code.
pub struct EvidenceOutcome {
    pub text: String,
    pub code: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{0}")]
    Refused(String),
    #[error("cannot write the evidence pack in {dir}: {source}")]
    Write {
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl From<EvidenceError> for CommandError {
    fn from(e: EvidenceError) -> CommandError {
        CommandError::Refused(Box::new(e))
    }
}

fn refused(why: impl Into<String>) -> CommandError {
    EvidenceError::Refused(why.into()).into()
}

pub fn execute(config: &EvidenceConfig) -> Result<EvidenceOutcome, CommandError> {
    match config {
        EvidenceConfig::Pack {
            run_report,
            out,
            status,
            audit,
        } => pack(run_report, out, status.as_deref(), audit.as_deref()),
        EvidenceConfig::Verify { dir } => Ok(verify(dir)),
    }
}

/// SHA-256 (lower-case hex) and size of a file, read in chunks.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((crate::ledger::hex(digest.finish().as_ref()), bytes))
}

/// The newest file beside `run_report` named `<stem>.<kind>[-N].<ext>`.
fn newest_beside(run_report: &Path, kind: &str) -> Option<PathBuf> {
    let stem = run_report.file_stem()?.to_string_lossy().into_owned();
    let folder = match run_report.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_owned(),
        None => PathBuf::from("."),
    };
    let prefix = format!("{stem}.{kind}");
    std::fs::read_dir(&folder)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix)
                && (name.ends_with(".csv") || name.ends_with(".jsonl"))
                && !name.ends_with(".partial")
        })
        .max_by_key(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        })
        .map(|e| e.path())
}

/// A file's first line (its header), empty when it cannot be read.
fn first_line(path: &Path) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    if let Ok(file) = std::fs::File::open(path) {
        let _ = std::io::BufReader::new(file).read_line(&mut line);
    }
    line
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
}

fn pack(
    run_report: &Path,
    out: &Path,
    status: Option<&Path>,
    audit: Option<&Path>,
) -> Result<EvidenceOutcome, CommandError> {
    // Everything is checked before the folder is made.
    let input = crate::report::RunReport::open(run_report).map_err(|e| refused(e.to_string()))?;
    let ledger = ledger_path(run_report);
    if !ledger.exists() {
        return Err(refused(format!(
            "{} has no ledger beside it ({} is missing): the pack proves a run by its ledger. Pack the report in the folder where `run` wrote it",
            run_report.display(),
            ledger.display()
        )));
    }
    let chain = verify_chain(&ledger).map_err(|e| refused(e.to_string()))?;
    let history = Ledger::read(&ledger)
        .map_err(|e| refused(e.to_string()))?
        .ok_or_else(|| {
            refused(format!(
                "the ledger {} records no run: there is nothing to prove",
                ledger.display()
            ))
        })?;
    let status = status
        .map(Path::to_owned)
        .or_else(|| newest_beside(run_report, "status"));
    let audit = audit
        .map(Path::to_owned)
        .or_else(|| newest_beside(run_report, "audit"));
    for path in status.iter().chain(audit.iter()) {
        if !path.is_file() {
            return Err(refused(format!("{} is not a file", path.display())));
        }
    }
    crate::ledger::check_report(&input, &history)
    .map_err(|why| {
        refused(format!(
            "the ledger {} is not this report's: {why}. Pack a report with the ledger its run wrote",
            ledger.display()
        ))
    })?;
    // The job files as the run read them: each must still be what the ledger says.
    // `(--user)`, `(--group)`, `(--where)` are the command line's targets, not files:
    // the ledger's fingerprint of them is in the manifest through the ledger itself.
    let mut jobs = Vec::new();
    for (i, f) in history.begin.files.iter().enumerate() {
        if f.source.starts_with("(--") {
            continue;
        }
        let path = PathBuf::from(&f.source);
        let (sha256, bytes) = hash_file(&path).map_err(|e| {
            refused(format!(
                "cannot read the job file {} the run read ({e}); run `evidence` from the folder the run was started in",
                f.source
            ))
        })?;
        if sha256 != f.sha256 {
            return Err(refused(format!(
                "the job file {} changed since the run read it: its SHA-256 is {sha256}, the ledger recorded {} ({} bytes then, {bytes} now)",
                f.source, f.sha256, f.bytes
            )));
        }
        jobs.push((i, path, f.source.clone()));
    }
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(refused(format!(
            "{} already exists and is not empty: a pack is never written over; name a new folder",
            out.display()
        )));
    }
    // `run --follow` wrote the action states into the run report itself: without a
    // status report, the page reads them from there.
    let followed = status.is_none() && first_line(&input.path).contains("action_state");
    let states = status
        .as_deref()
        .or(followed.then_some(input.path.as_path()));
    let facts = super::facts::gather(run_report, states, audit.as_deref()).map_err(refused)?;
    let write_err = |source| EvidenceError::Write {
        dir: out.to_owned(),
        source,
    };
    std::fs::create_dir_all(out.join("jobs")).map_err(write_err)?;
    let mut files = Vec::new();
    let mut copy = |from: &Path, to: String, role: &str, source: Option<String>| {
        let dest = out.join(&to);
        std::fs::copy(from, &dest)?;
        let (sha256, bytes) = hash_file(&dest)?;
        files.push(PackedFile {
            path: to,
            role: role.into(),
            bytes,
            sha256,
            source,
        });
        Ok::<(), std::io::Error>(())
    };
    for (i, path, source) in &jobs {
        // Numbered: two job files of one name (from two folders) stay apart.
        copy(
            path,
            format!("jobs/{}-{}", i + 1, file_name(path)),
            "job",
            Some(source.clone()),
        )
        .map_err(write_err)?;
    }
    let report_name = file_name(run_report);
    let ledger_name = format!("{report_name}.ledger");
    copy(&ledger, ledger_name.clone(), "ledger", None).map_err(write_err)?;
    copy(run_report, report_name.clone(), "run_report", None).map_err(write_err)?;
    if let Some(csv) =
        Some(crate::report::companion_csv(run_report)).filter(|c| c != run_report && c.is_file())
    {
        copy(&csv, file_name(&csv), "run_report", None).map_err(write_err)?;
    }
    if let Some(path) = &status {
        copy(path, file_name(path), "status_report", None).map_err(write_err)?;
    }
    if let Some(path) = &audit {
        copy(path, file_name(path), "audit_report", None).map_err(write_err)?;
    }
    let html = super::html::render(&facts);
    std::fs::write(out.join(SUMMARY), html).map_err(write_err)?;
    let (sha256, bytes) = hash_file(&out.join(SUMMARY)).map_err(write_err)?;
    files.push(PackedFile {
        path: SUMMARY.into(),
        role: "summary".into(),
        bytes,
        sha256,
        source: None,
    });
    let manifest = Manifest {
        tool: "intune-reset".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        created_at: crate::ledger::timestamp(SystemTime::now()),
        run_by: history
            .begin
            .origin
            .as_ref()
            .map(|o| o.describe())
            .unwrap_or_else(|| "an identity its ledger does not record".into()),
        run_started_at: history.started_at.clone(),
        ledger: LedgerFacts {
            path: ledger_name,
            ended: history.ended,
            chain: chain.clone(),
        },
        files,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other);
    let text = text.map_err(write_err)?;
    std::fs::write(out.join(MANIFEST), &text).map_err(write_err)?;
    let (manifest_sha, _) = hash_file(&out.join(MANIFEST)).map_err(write_err)?;
    let mut lines = format!(
        "evidence pack: {}\n  {} files; the ledger: {} lines, {}\n  manifest.json SHA-256 {manifest_sha}\n",
        out.display(),
        manifest.files.len(),
        chain.lines,
        if chain.head.is_some() {
            "hash-chained"
        } else {
            "not hash-chained (written by a version before ledgers were chained): the manifest's hash of it still shows any later change"
        },
    );
    if !history.ended {
        lines.push_str("  note: the ledger has no end line after its last session: that session was killed (finish the run with `--resume` first), or lines were cut off its end\n");
    }
    lines.push_str(
        "keep the manifest's SHA-256 apart from the pack (in the incident ticket): `intune-reset evidence --verify DIR` checks every file against the manifest, and that hash checks the manifest\n",
    );
    Ok(EvidenceOutcome {
        text: lines,
        code: crate::error::EXIT_OK,
    })
}

/// Checks a pack: every file against the manifest, the ledger's chain and head, the job
/// files against the ledger's fingerprints, and no file the manifest does not name.
pub fn verify(dir: &Path) -> EvidenceOutcome {
    let fail = |text: String, code| EvidenceOutcome { text, code };
    let manifest: Manifest = match std::fs::read_to_string(dir.join(MANIFEST))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(m) => m,
        Err(why) => {
            return fail(
                format!(
                    "{} is no evidence pack: its {MANIFEST} cannot be read ({why})\n",
                    dir.display()
                ),
                crate::error::EXIT_USAGE,
            );
        }
    };
    let mut changed: Vec<String> = Vec::new();
    for f in &manifest.files {
        let path = dir.join(&f.path);
        match hash_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                changed.push(format!("{}: missing", f.path));
            }
            Err(e) => changed.push(format!("{}: cannot be read ({e})", f.path)),
            Ok((sha256, bytes)) if sha256 != f.sha256 => changed.push(format!(
                "{}: changed ({} bytes, SHA-256 {sha256}; the manifest recorded {} bytes, {})",
                f.path, bytes, f.bytes, f.sha256
            )),
            Ok(_) => {}
        }
    }
    for extra in unlisted(dir, &manifest) {
        changed.push(format!(
            "{extra}: not in the manifest (added after the pack was made)"
        ));
    }
    let ledger = dir.join(&manifest.ledger.path);
    match verify_chain(&ledger) {
        Err(e) => changed.push(format!("{}: {e}", manifest.ledger.path)),
        Ok(now) => {
            if now.lines != manifest.ledger.chain.lines {
                changed.push(format!(
                    "{}: {} whole lines, the manifest recorded {} ({})",
                    manifest.ledger.path,
                    now.lines,
                    manifest.ledger.chain.lines,
                    if now.lines < manifest.ledger.chain.lines {
                        "lines were cut off its end"
                    } else {
                        "lines were added"
                    }
                ));
            } else if now.head != manifest.ledger.chain.head {
                changed.push(format!(
                    "{}: its last chain hash is not the one the manifest recorded",
                    manifest.ledger.path
                ));
            }
            if let Ok(Some(history)) = Ledger::read(&ledger) {
                for f in manifest.files.iter().filter(|f| f.role == "job") {
                    let recorded = f
                        .source
                        .as_ref()
                        .and_then(|s| history.begin.files.iter().find(|b| &b.source == s));
                    match recorded {
                        Some(b) if b.sha256 == f.sha256 => {}
                        Some(b) => changed.push(format!(
                            "{}: not the job file the run read (the ledger recorded SHA-256 {})",
                            f.path, b.sha256
                        )),
                        None => changed.push(format!(
                            "{}: the ledger records no job file {}",
                            f.path,
                            f.source.as_deref().unwrap_or("?")
                        )),
                    }
                }
            }
        }
    }
    if changed.is_empty() {
        return EvidenceOutcome {
            text: format!(
                "the pack {} holds: {} files as the manifest recorded them, the ledger's {} lines{}, the job files as the run read them\n",
                dir.display(),
                manifest.files.len(),
                manifest.ledger.chain.lines,
                if manifest.ledger.chain.head.is_some() {
                    " chained up to the head the manifest recorded"
                } else {
                    " (not hash-chained)"
                }
            ),
            code: crate::error::EXIT_OK,
        };
    }
    let mut text = format!(
        "the pack {} does not hold ({} finding{}):\n",
        dir.display(),
        changed.len(),
        if changed.len() == 1 { "" } else { "s" }
    );
    for c in &changed {
        text.push_str(&format!("  - {c}\n"));
    }
    fail(text, crate::error::EXIT_ROWS_NEED_ATTENTION)
}

/// Files in the pack the manifest does not name (the manifest itself aside).
fn unlisted(dir: &Path, manifest: &Manifest) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((folder, prefix)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            if e.path().is_dir() {
                stack.push((e.path(), format!("{name}/")));
            } else if name != MANIFEST && !manifest.files.iter().any(|f| f.path == name) {
                found.push(name);
            }
        }
    }
    found.sort();
    found
}
