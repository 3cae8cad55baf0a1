//! Job files: everything that turns a file on disk into device rows.
//!
//! [`open_all`] is the one place that opens a job file (as xsv's one reader builder): it
//! tells a workbook ([`workbook`], calamine) or a ZIP archive of job files ([`archive`])
//! from text by the first bytes, decodes text ([`decode`], legacy code pages in
//! [`legacy`]), recognises CSV or one of the JSON shapes, detects the CSV delimiter,
//! matches the header ([`crate::device::Column::match_header`]) and fails early, naming
//! the file, when the file cannot be used at all. [`JobFile::read_rows`] then streams rows one at a time to
//! a callback, so memory does not depend on the number of rows. A row that is broken
//! (a JSON element that is not an object or not valid JSON, a line that is not JSON, a
//! CSV quote never closed) still comes out, with a [`RowDefect`], so that it is reported
//! rather than lost, and reading goes on at the next record.
//!
//! Core module: it imports only the device domain and how a tenant is named.

mod archive;
mod csv_reader;
mod csv_records;
pub mod decode;
mod headerless;
mod json_reader;
mod json_split;
mod legacy;
pub mod limits;
mod notice;
mod utf8_repair;
mod workbook;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::device::{Column, DeviceFields};
use crate::tenants::TenantEntry;
use decode::TextEncoding;
pub use limits::Limits;
pub use workbook::WorkbookKind;

/// How job files are read, from the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// `--sheet`: the worksheet of a workbook to read (default: the first).
    pub sheet: Option<String>,
    /// `--encoding`: the encoding of text files, instead of the detected one.
    pub encoding: Option<TextEncoding>,
    /// How much a ZIP may unpack and a pipe may copy into the private folder, and how
    /// much this reading has (shared by clones).
    pub limits: Limits,
}

impl ReadOptions {
    /// The same options for one more reading of the job, with nothing unpacked yet:
    /// every reading of every job file goes through one, so the cap is per job and a
    /// job read twice (`run` reads its copy to plan and to send) is not counted twice.
    pub fn one_reading(&self) -> ReadOptions {
        ReadOptions {
            limits: self.limits.fresh(),
            ..self.clone()
        }
    }
}

/// A job file that could not be used at all: nothing is planned or sent (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read job file {path}: {message}")]
    Io { path: String, message: String },
    #[error("cannot use job file {path}: {why}")]
    Unreadable { path: String, why: String },
    /// The planner's index of the devices seen (a temporary file) could not be read back.
    #[error("cannot read back the temporary index of the devices this job names: {0}")]
    Index(String),
}

/// Why a row could not even be read as a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDefect {
    /// Stable snake_case code for the report's `reason` column.
    pub reason: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Where the row is in its file: the line a CSV record starts on (the header is
    /// line 1, as Excel numbers rows), the line of a JSON Lines record, or the 1-based
    /// position of a device in a JSON array.
    pub row: u64,
    pub fields: DeviceFields,
    pub defect: Option<RowDefect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv {
        delimiter: u8,
    },
    JsonArray,
    /// `{"value": [...]}` (a Graph list response) or `{"devices": [...], ...}`.
    JsonDocument,
    JsonLines,
    Workbook(WorkbookKind),
}

impl Format {
    pub fn describe(self) -> String {
        match self {
            Format::Csv { delimiter } => {
                let name = match delimiter {
                    b'\t' => "tab".to_string(),
                    d => format!("'{}'", d as char),
                };
                format!("CSV, {name}-separated")
            }
            Format::JsonArray => "JSON array".into(),
            Format::JsonDocument => "JSON document".into(),
            Format::JsonLines => "JSON Lines".into(),
            Format::Workbook(kind) => kind.describe().into(),
        }
    }
}

/// Settings a JSON job document carries beside its devices.
#[derive(Debug, Clone, Default)]
pub struct JobSettings {
    /// `"action"` of a job document: the default for its rows.
    pub action: Option<String>,
    /// `"tenants"` of a job document: the tenants its run signs in to, each a tenant id
    /// or domain, or `{"tenant": ..., "clientId": ...}` with its own client id (empty
    /// without the key).
    pub tenants: Vec<TenantEntry>,
}

/// The header names as the file spelled them, for messages that name a column.
#[derive(Debug, Clone, Default)]
pub struct ColumnNames {
    names: [Option<String>; Column::ALL.len()],
}

impl ColumnNames {
    pub fn note(&mut self, column: Column, spelled: &str) {
        let slot = &mut self.names[column.index()];
        if slot.is_none() {
            *slot = Some(spelled.trim().trim_start_matches('\u{feff}').to_owned());
        }
    }

    /// The file's own header for `column`, or its canonical name.
    pub fn name(&self, column: Column) -> &str {
        self.names[column.index()]
            .as_deref()
            .unwrap_or(column.canonical())
    }

    pub fn has(&self, column: Column) -> bool {
        self.names[column.index()].is_some()
    }
}

/// Counts a reader keeps besides the rows themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub rows: u64,
    /// Lines with nothing but separators or blanks: not devices, not reported.
    pub blank_lines: u64,
}

pub struct JobFile {
    pub path: PathBuf,
    /// How the report's `source` column names this file: its path, or
    /// `archive.zip!member.csv` for one of several files in a ZIP.
    pub source: String,
    pub encoding: TextEncoding,
    pub format: Format,
    /// The worksheet read, for a workbook.
    pub sheet: Option<String>,
    pub settings: JobSettings,
    pub columns: ColumnNames,
    /// `--encoding`, for reading a JSON file again.
    forced: Option<TextEncoding>,
    body: Body,
    /// The folder a ZIP member was extracted to, kept while the file is read.
    _unpacked: Option<Arc<tempfile::TempDir>>,
}

enum Body {
    Csv(Box<csv_reader::CsvBody>),
    Json,
    Sheet(Box<workbook::SheetBody>),
}

/// What a file is, from its first bytes.
enum Container {
    /// A ZIP: a workbook of the given kind, or an archive of job files.
    Zip(Option<WorkbookKind>, Box<archive::Archive>),
    /// An OLE compound file: an Excel 97-2003 workbook (or an encrypted one).
    Compound,
    Text,
}

/// A pipe or FIFO (`plan <(cat book.xlsx)`, `/dev/stdin`), copied whole into a private
/// folder as `job`, counted against `limits` (`yes` or `/dev/zero` would never end);
/// `None` for a regular file or a folder (which the text reader refuses
/// with its own sentence).
fn spool_pipe(
    path: &Path,
    name: &str,
    limits: &Limits,
) -> Result<Option<tempfile::TempDir>, JobError> {
    let io_err = |e: std::io::Error| JobError::Io {
        path: name.to_owned(),
        message: e.to_string(),
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        // Said by the readers, as before.
        Err(_) => return Ok(None),
    };
    if meta.is_file() || meta.is_dir() {
        return Ok(None);
    }
    let dir = tempfile::Builder::new()
        .prefix("intune-reset-pipe-")
        .tempdir()
        .map_err(io_err)?;
    let mut input = std::fs::File::open(path).map_err(io_err)?;
    let mut copy = std::fs::File::create(dir.path().join("job")).map_err(io_err)?;
    // Past the cap `dir` is dropped, and the partial copy with it (closed first).
    match limits::copy_capped(&mut input, &mut copy, limits, None, &mut |_| {}) {
        Ok(_) => Ok(Some(dir)),
        Err(limits::CopyError::Io(e)) => Err(io_err(e)),
        Err(limits::CopyError::OverCap | limits::CopyError::OverRatio { .. }) => {
            Err(JobError::Unreadable {
                path: name.to_owned(),
                why: limits::over_cap(limits.total_bytes, true),
            })
        }
    }
}

fn container(path: &Path, name: &str) -> Result<Container, JobError> {
    let io_err = |e: std::io::Error| JobError::Io {
        path: name.to_owned(),
        message: e.to_string(),
    };
    let mut magic = Vec::with_capacity(8);
    match std::fs::File::open(path) {
        // A directory is refused by the text reader, with its own sentence. A pipe or a
        // FIFO (`plan <(cat job.csv)`) is read once, by the text reader: taking its first
        // bytes here would lose them. A workbook is a seekable file anyway.
        Ok(file) if !file.metadata().map_err(io_err)?.is_file() => return Ok(Container::Text),
        Ok(file) => {
            file.take(8).read_to_end(&mut magic).map_err(io_err)?;
        }
        Err(e) => return Err(io_err(e)),
    }
    if magic.starts_with(b"PK\x03\x04") || magic.starts_with(b"PK\x05\x06") {
        let archive = archive::open_archive(path).map_err(|e| JobError::Unreadable {
            path: name.to_owned(),
            why: format!("it starts like a ZIP archive (or .xlsx) but cannot be read: {e}"),
        })?;
        let kind =
            WorkbookKind::of_zip_entries(archive::entry_names(&archive).iter().map(String::as_str));
        return Ok(Container::Zip(kind, Box::new(archive)));
    }
    if magic.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Ok(Container::Compound);
    }
    Ok(Container::Text)
}

/// Opens a job file that is one job file (not a ZIP of several), with the default
/// options. See [`open_all`].
pub fn open(path: &Path) -> Result<JobFile, JobError> {
    let mut files = open_all(path, &ReadOptions::default())?;
    if files.len() == 1 {
        Ok(files.remove(0))
    } else {
        Err(JobError::Unreadable {
            path: path.display().to_string(),
            why: format!("it is a ZIP archive of {} job files", files.len()),
        })
    }
}

/// Opens a job file and checks that it can be used: readable, a recognised shape and
/// at least one known column. Reads the header (CSV, workbook) or, for a JSON document,
/// scans it once for the settings beside `devices`. A ZIP archive gives one job file
/// per CSV, JSON or workbook it holds.
pub fn open_all(path: &Path, options: &ReadOptions) -> Result<Vec<JobFile>, JobError> {
    open_all_named(path, &path.display().to_string(), options)
}

/// [`open_all`] for a file that messages and reports name `name` (the run's private
/// copy of a job file is named as the command line named the original).
pub fn open_all_named(
    path: &Path,
    name: &str,
    options: &ReadOptions,
) -> Result<Vec<JobFile>, JobError> {
    let name = name.to_owned();
    if let Some(spooled) = spool_pipe(path, &name, &options.limits)? {
        // A pipe or FIFO is read once, into a private folder, and then recognised by
        // its bytes as any file is: a workbook or a ZIP piped in is read as one.
        let dir = Arc::new(spooled);
        let copy = dir.path().join("job");
        let mut files = open_all_named(&copy, &name, options)?;
        for file in &mut files {
            file._unpacked.get_or_insert_with(|| dir.clone());
        }
        return Ok(files);
    }
    match container(path, &name)? {
        Container::Zip(None, zip) => {
            let unpacked = archive::extract(*zip, &name, &options.limits)?;
            let several = unpacked.members.len() > 1;
            unpacked
                .members
                .iter()
                .map(|member| {
                    let source = if several {
                        format!("{name}!{}", member.name)
                    } else {
                        name.clone()
                    };
                    let mut file = match container(&member.path, &source)? {
                        Container::Zip(Some(kind), _) => {
                            open_workbook(&member.path, source, kind, options)?
                        }
                        Container::Compound => {
                            open_workbook(&member.path, source, WorkbookKind::Xls, options)?
                        }
                        Container::Zip(None, _) => {
                            return Err(JobError::Unreadable {
                                path: source,
                                why: "it is a ZIP archive inside a ZIP archive: unpack the \
                                      outer one"
                                    .into(),
                            });
                        }
                        Container::Text => open_text_file(&member.path, source, options)?,
                    };
                    file._unpacked = Some(unpacked.dir.clone());
                    Ok(file)
                })
                .collect()
        }
        Container::Zip(Some(kind), _) => Ok(vec![open_workbook(path, name, kind, options)?]),
        Container::Compound => Ok(vec![open_workbook(path, name, WorkbookKind::Xls, options)?]),
        Container::Text => Ok(vec![open_text_file(path, name, options)?]),
    }
}

fn open_workbook(
    path: &Path,
    source: String,
    kind: WorkbookKind,
    options: &ReadOptions,
) -> Result<JobFile, JobError> {
    let (body, columns, sheet) = workbook::open(path, &source, kind, options.sheet.as_deref())?;
    Ok(JobFile {
        path: path.to_owned(),
        source,
        // Workbooks store Unicode text.
        encoding: TextEncoding::Utf8,
        format: Format::Workbook(kind),
        sheet: Some(sheet),
        settings: JobSettings::default(),
        columns,
        forced: None,
        body: Body::Sheet(Box::new(body)),
        _unpacked: None,
    })
}

fn open_text_file(path: &Path, source: String, options: &ReadOptions) -> Result<JobFile, JobError> {
    let text = decode::open_text(path, &source, options.encoding)?;
    if !text.encoding.is_unicode() && text.non_ascii {
        let how = if text.guessed {
            "its encoding was guessed from its bytes; if names look wrong, pass \
             --encoding NAME (e.g. --encoding 850 for \"CSV (MS-DOS)\", 1250, 1251, gbk, \
             shift_jis)"
        } else {
            "as --encoding said"
        };
        notice::warn(format!(
            "{source}: the file is not UTF-8; it is read as {} ({how}). To avoid guessing, \
             save it as CSV UTF-8 (Excel: File > Save As > \"CSV UTF-8 (Comma delimited)\")",
            text.encoding.label()
        ));
    }
    let format = json_reader::sniff(path, &source, &text.head)?;
    let mut file = JobFile {
        path: path.to_owned(),
        source,
        encoding: text.encoding,
        format: Format::JsonArray,
        sheet: None,
        settings: JobSettings::default(),
        columns: ColumnNames::default(),
        forced: options.encoding,
        body: Body::Json,
        _unpacked: None,
    };
    match format {
        None => {
            let (body, columns, delimiter) = csv_reader::open(&file.source, text)?;
            file.format = Format::Csv { delimiter };
            file.columns = columns;
            file.body = Body::Csv(Box::new(body));
        }
        Some(format) => {
            file.format = format;
            file.settings = json_reader::prescan(&file.source, text, format)?;
        }
    }
    Ok(file)
}

impl JobFile {
    /// The format for the summary: `CSV, ';'-separated`, or the workbook and its sheet.
    pub fn describe(&self) -> String {
        match &self.sheet {
            Some(sheet) => format!("{}, sheet '{sheet}'", self.format.describe()),
            None => self.format.describe(),
        }
    }

    /// The encoding for the summary.
    pub fn encoding_label(&self) -> &'static str {
        match self.format {
            Format::Workbook(_) => "Unicode",
            _ => self.encoding.label(),
        }
    }

    /// Streams every row to `emit`, in file order. Problems inside the file become rows
    /// with a [`RowDefect`]; only a file that cannot be reopened is an error.
    pub fn read_rows(self, emit: &mut dyn FnMut(JobRow)) -> Result<ReadStats, JobError> {
        match self.body {
            Body::Csv(body) => Ok(body.read_rows(emit)),
            Body::Sheet(body) => Ok(body.read_rows(emit)),
            Body::Json => {
                let text = decode::open_text(&self.path, &self.source, self.forced)?;
                Ok(json_reader::read_rows(text, self.format, emit))
            }
        }
    }
}

#[cfg(test)]
mod tests;
