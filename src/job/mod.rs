//! Job files: everything that turns a file on disk into device rows.
//!
//! [`open`] is the one place that opens a job file (as xsv's one reader builder): it
//! decodes ([`decode`]), recognises CSV or one of the JSON shapes, detects the CSV
//! delimiter, matches the header ([`crate::device::Column::match_header`]) and fails early, naming the file, when the
//! file cannot be used at all. [`JobFile::read_rows`] then streams rows one at a time to
//! a callback, so memory does not depend on the number of rows. A row that is broken
//! (a JSON element that is not an object or not valid JSON, a line that is not JSON, a
//! CSV quote never closed) still comes out, with a [`RowDefect`], so that it is reported
//! rather than lost, and reading goes on at the next record.
//!
//! Core module: it imports only the device domain.

mod csv_reader;
mod csv_records;
pub mod decode;
mod headerless;
mod json_reader;
mod json_split;
mod utf8_repair;

use std::path::{Path, PathBuf};

use crate::device::{Column, DeviceFields};
use decode::TextEncoding;

/// A job file that could not be used at all: nothing is planned or sent (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read job file {path}: {message}")]
    Io { path: String, message: String },
    #[error("cannot use job file {path}: {why}")]
    Unreadable { path: String, why: String },
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
        }
    }
}

/// Settings a JSON job document carries beside its devices.
#[derive(Debug, Clone, Default)]
pub struct JobSettings {
    /// `"action"` of a job document: the default for its rows.
    pub action: Option<String>,
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
    /// How the report's `source` column names this file.
    pub source: String,
    pub encoding: TextEncoding,
    pub format: Format,
    pub settings: JobSettings,
    pub columns: ColumnNames,
    body: Body,
}

enum Body {
    Csv(Box<csv_reader::CsvBody>),
    Json,
}

/// Opens a job file and checks that it can be used: readable, text, a recognised shape
/// and at least one known column. Reads the header (CSV) or, for a JSON document, scans
/// it once for the settings beside `devices`.
pub fn open(path: &Path) -> Result<JobFile, JobError> {
    let text = decode::open_text(path)?;
    let format = json_reader::sniff(path, &text.head)?;
    let source = path.display().to_string();
    match format {
        None => {
            let (body, columns, delimiter) = csv_reader::open(path, text)?;
            Ok(JobFile {
                path: path.to_owned(),
                source,
                encoding: body.encoding,
                format: Format::Csv { delimiter },
                settings: JobSettings::default(),
                columns,
                body: Body::Csv(Box::new(body)),
            })
        }
        Some(format) => {
            let encoding = text.encoding;
            let settings = json_reader::prescan(path, text, format)?;
            Ok(JobFile {
                path: path.to_owned(),
                source,
                encoding,
                format,
                settings,
                columns: ColumnNames::default(),
                body: Body::Json,
            })
        }
    }
}

impl JobFile {
    /// Streams every row to `emit`, in file order. Problems inside the file become rows
    /// with a [`RowDefect`]; only a file that cannot be reopened is an error.
    pub fn read_rows(self, emit: &mut dyn FnMut(JobRow)) -> Result<ReadStats, JobError> {
        match self.body {
            Body::Csv(body) => Ok(body.read_rows(emit)),
            Body::Json => {
                let text = decode::open_text(&self.path)?;
                Ok(json_reader::read_rows(text, self.format, emit))
            }
        }
    }
}

#[cfg(test)]
mod tests;
