//! `intune-reset plan`: read job files, judge every row, write the report. No network.

mod planner;

pub use planner::{Assessment, Identity, LookupMode, MAX_VALUE_LEN, PlanOptions, Planner, Work};

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::error::CommandError;
use crate::job::{self, JobError, JobFile};
use crate::report::{FileSummary, ReportFormat, ReportWriter, Summary, default_path};
use crate::rules::ActionChoice;

/// Everything `plan` needs, validated; nothing here knows about clap.
#[derive(Debug, Clone)]
pub struct PlanConfig {
    pub files: Vec<PathBuf>,
    pub options: PlanOptions,
    pub report: Option<PathBuf>,
    pub format: ReportFormat,
    pub summary_json: Option<PathBuf>,
}

/// A job file, opened and checked, with the action its document sets.
pub struct OpenedJob {
    pub file: JobFile,
    pub action: Option<ActionChoice>,
}

/// Opens every job file before anything is written: one unusable file stops the
/// command (exit 2) and nothing else happens.
pub fn open_jobs(paths: &[PathBuf]) -> Result<Vec<OpenedJob>, JobError> {
    paths
        .iter()
        .map(|path| {
            let file = job::open(path)?;
            let action =
                match file.settings.action.as_deref() {
                    None => None,
                    Some(text) => Some(ActionChoice::parse(text).ok_or_else(|| {
                        JobError::Unreadable {
                            path: path.display().to_string(),
                            why: format!(
                                "its \"action\" is '{text}', not remove-passcode, reset-pin or auto"
                            ),
                        }
                    })?),
                };
            Ok(OpenedJob { file, action })
        })
        .collect()
}

pub fn report_path(explicit: &Option<PathBuf>, files: &[PathBuf], format: ReportFormat) -> PathBuf {
    explicit.clone().unwrap_or_else(|| {
        let path = default_path(
            files
                .first()
                .map(PathBuf::as_path)
                .unwrap_or(Path::new("job")),
            format,
            SystemTime::now(),
        );
        unused_name(path)
    })
}

/// `path`, or `<stem>-2.<ext>`, `-3`, ... when two commands start in the same second:
/// a default report never replaces another.
fn unused_name(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (2..)
        .map(|n| path.with_file_name(format!("{stem}-{n}{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(path)
}

pub fn run(config: &PlanConfig) -> Result<Summary, CommandError> {
    let started = Instant::now();
    let jobs = open_jobs(&config.files)?;
    let path = report_path(&config.report, &config.files, config.format);
    let write_err = |source| CommandError::Write {
        what: "the report",
        path: path.clone(),
        source,
    };
    let mut writer = ReportWriter::create(&path, config.format).map_err(write_err)?;
    let mut planner = Planner::new(config.options);
    let mut summary = Summary::new("plan");
    let mut failed_write = None;
    summary.files = assess_all(jobs, &mut planner, &mut |_, assessment| {
        summary.count(&assessment.row);
        if failed_write.is_none()
            && let Err(e) = writer.write(&assessment.row)
        {
            failed_write = Some(e);
        }
    })?;
    if let Some(e) = failed_write {
        return Err(write_err(e));
    }
    writer.flush().map_err(write_err)?;
    summary.report = Some(path.clone());
    let summary = summary.with_elapsed(started.elapsed());
    if let Some(json_path) = &config.summary_json {
        write_summary_json(json_path, &summary)?;
    }
    Ok(summary)
}

/// Reads every job file in order and hands each row's assessment to `each`, with the
/// file's position among `jobs`: the one loop `plan` and `run` share, so a run acts on
/// exactly what its plan says.
pub fn assess_all(
    jobs: Vec<OpenedJob>,
    planner: &mut Planner,
    each: &mut dyn FnMut(usize, Assessment),
) -> Result<Vec<FileSummary>, JobError> {
    let mut files = Vec::with_capacity(jobs.len());
    for OpenedJob { file, action } in jobs {
        let index = planner.add_source(&file.source);
        let names = file.columns.clone();
        let mut summary = FileSummary {
            source: file.source.clone(),
            format: file.format.describe(),
            encoding: file.encoding.label().to_owned(),
            rows: 0,
            blank_lines: 0,
        };
        let stats = file.read_rows(&mut |job_row| {
            let assessment = planner.assess(index, &names, action, job_row);
            each(index, assessment)
        })?;
        summary.rows = stats.rows;
        summary.blank_lines = stats.blank_lines;
        files.push(summary);
    }
    Ok(files)
}

pub fn write_summary_json(
    path: &Path,
    summary: &impl serde::Serialize,
) -> Result<(), CommandError> {
    let err = |source| CommandError::Write {
        what: "the summary",
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let text = serde_json::to_string_pretty(summary).map_err(|e| err(e.into()))?;
    std::fs::write(path, text + "\n").map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reports_never_replace_each_other() {
        let dir = tempfile::TempDir::new().unwrap();
        let first = dir.path().join("job-20261122T010203Z.csv");
        assert_eq!(unused_name(first.clone()), first);
        std::fs::write(&first, "").unwrap();
        let second = unused_name(first.clone());
        assert_eq!(second, dir.path().join("job-20261122T010203Z-2.csv"));
        std::fs::write(&second, "").unwrap();
        assert_eq!(
            unused_name(first),
            dir.path().join("job-20261122T010203Z-3.csv")
        );
    }
}
