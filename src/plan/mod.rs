//! `intune-reset plan`: read job files, judge every row, write the report. No network.
//!
//! Rows are judged, and written, in input order (job file, then row).
//!
//! A command: it may use the whole core (planner, job, report), never another command.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use crate::error::CommandError;
use crate::job::ReadOptions;
use crate::planner::{PlanOptions, Planner, assess_all, open_jobs};
use crate::report::xlsx::{SheetFacts, XlsxReport};
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
    /// A CSV report starts with a UTF-8 byte-order mark (`--no-bom`: without).
    pub bom: bool,
}

/// Where `plan`'s rows go: a line report written as they come, or a workbook saved
/// at the end.
enum Sink {
    Lines(ReportWriter),
    Workbook(Box<XlsxReport>),
}

pub fn run(config: &PlanConfig) -> Result<Summary, CommandError> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let jobs = open_jobs(&config.files, &config.read)?;
    let path = report_path(&config.report, &config.files, config.format);
    let write_err = |source| CommandError::Write {
        what: "the report",
        path: path.clone(),
        source,
    };
    let mut sink = match config.format {
        ReportFormat::Xlsx => Sink::Workbook(Box::default()),
        format => Sink::Lines(ReportWriter::create(&path, format, config.bom).map_err(write_err)?),
    };
    let mut planner = Planner::new(config.options.clone());
    let mut summary = Summary::new("plan");
    let mut failed_write = None;
    summary.files = assess_all(jobs, &mut planner, &mut |_, assessment| {
        summary.count(&assessment.row);
        if failed_write.is_none() {
            let written = match &mut sink {
                Sink::Lines(w) => w.write(&assessment.row),
                Sink::Workbook(w) => w.push(&assessment.row),
            };
            if let Err(e) = written {
                failed_write = Some(e);
            }
        }
    })?;
    if let Some(e) = failed_write {
        return Err(write_err(e));
    }
    summary.report = Some(path.clone());
    let summary = summary.with_elapsed(started.elapsed());
    match sink {
        Sink::Lines(mut w) => w.flush().map_err(write_err)?,
        Sink::Workbook(w) => {
            let facts = SheetFacts {
                started: started_at,
                ended: SystemTime::now(),
                identity: Vec::new(),
            };
            w.save(&path, &summary, &facts).map_err(write_err)?
        }
    }
    if let Some(json_path) = &config.summary_json {
        write_summary_json(json_path, &summary)?;
    }
    Ok(summary)
}
