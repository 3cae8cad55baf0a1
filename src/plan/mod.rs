//! `intune-reset plan`: read job files, judge every row, write the report. No network.
//!
//! A command: it may use the whole core (planner, job, report), never another command.

use std::path::PathBuf;
use std::time::Instant;

use crate::error::CommandError;
use crate::job::ReadOptions;
use crate::planner::{PlanOptions, Planner, assess_all, open_jobs};
use crate::report::{ReportFormat, ReportWriter, Summary, report_path, write_summary_json};

/// Everything `plan` needs, validated; nothing here knows about clap.
#[derive(Debug, Clone)]
pub struct PlanConfig {
    pub files: Vec<PathBuf>,
    pub options: PlanOptions,
    /// `--sheet`, `--encoding`.
    pub read: ReadOptions,
    pub report: Option<PathBuf>,
    pub format: ReportFormat,
    pub summary_json: Option<PathBuf>,
}

pub fn run(config: &PlanConfig) -> Result<Summary, CommandError> {
    let started = Instant::now();
    let jobs = open_jobs(&config.files, &config.read)?;
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
