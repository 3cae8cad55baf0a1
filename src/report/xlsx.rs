//! The report as an Excel workbook (`--format xlsx`, or a `--report` ending in `.xlsx`).
//!
//! Sheet `Report`: the report's columns as a header, an autofilter over every row and the
//! first row frozen; every cell is a text cell, so nothing a device's user typed (a name
//! `=cmd|' /C calc'!A0`) ever runs as a formula, and ids and versions stay as written
//! (`17.10`, `0123`). Sheet `Summary`: outcomes × platforms, reasons, traffic, identity
//! and time, from the rows and the command's [`Summary`].
//!
//! A workbook is written whole, once, from the final rows in input order: `run` keeps its
//! crash-safe CSV beside it ([`super::companion_csv`]) while outcomes arrive. It is saved
//! to a temporary file in the report's folder and renamed into place.
//!
//! The Report sheet is in rust_xlsxwriter's "constant memory" mode: each row goes to a
//! temporary file (in the system's temporary folder, created unnamed and deleted on
//! close by the tempfile crate) as soon as the next one starts, with its strings inline
//! instead of in a shared table, so memory stays flat whatever the rows (a 1,000,000-row
//! report held in memory peaked at 3.56 GB). Rows must then come in row order, which
//! [`XlsxReport::push`] keeps. See
//! <https://docs.rs/rust_xlsxwriter/0.102.0/rust_xlsxwriter/performance/index.html>.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::{COLUMNS, Outcome, ReportRow, Summary};

/// Excel's rows per sheet, the header included.
const EXCEL_ROWS: u32 = 1_048_576;
/// Excel's characters (UTF-16 units) per cell.
const EXCEL_CELL_CHARS: usize = 32_767;

/// What the Summary sheet says beyond the [`Summary`]: when, and as whom.
#[derive(Debug, Clone)]
pub struct SheetFacts {
    pub started: SystemTime,
    pub ended: SystemTime,
    /// `(what, value)`: tenant, client id, user, as the command signed in.
    pub identity: Vec<(String, String)>,
}

/// A workbook being filled, row by row, in the order the rows are pushed.
pub struct XlsxReport {
    /// The workbook the Report sheet streams through (its formats are the workbook's).
    workbook: Workbook,
    sheet: Worksheet,
    /// Why the streamed sheet could not be set up (no temporary file): said at the
    /// first push, as the constructors cannot fail.
    broken: Option<String>,
    /// Rows written below the header.
    rows: u32,
    /// Columns after the report's own (`status` adds its three).
    extra: &'static [&'static str],
}

impl Default for XlsxReport {
    fn default() -> Self {
        XlsxReport::new()
    }
}

impl XlsxReport {
    pub fn new() -> XlsxReport {
        XlsxReport::with_extra(&[])
    }

    /// A workbook whose rows carry `extra` columns after the report's own.
    pub fn with_extra(extra: &'static [&'static str]) -> XlsxReport {
        let mut workbook = Workbook::new();
        let (mut sheet, broken) = match workbook.new_worksheet_with_constant_memory() {
            Ok(sheet) => (sheet, None),
            Err(e) => (Worksheet::new(), Some(xlsx_error(e).to_string())),
        };
        let bold = Format::new().set_bold();
        // The name is valid and the cells are in range: these cannot fail.
        let _ = sheet.set_name("Report");
        for (col, name) in COLUMNS.iter().chain(extra).enumerate() {
            let _ = sheet.write_string_with_format(0, col as u16, *name, &bold);
        }
        let _ = sheet.set_freeze_panes(1, 0);
        for (col, name) in COLUMNS.iter().chain(extra).enumerate() {
            let width = match *name {
                "detail" => 60.0,
                "device_id" | "request_id" | "client_request_id" => 38.0,
                "device_name" | "user_principal_name" | "source" => 28.0,
                "started_at" | "finished_at" | "reason" => 24.0,
                _ => 14.0,
            };
            let _ = sheet.set_column_width(col as u16, width);
        }
        XlsxReport {
            workbook,
            sheet,
            broken,
            rows: 0,
            extra,
        }
    }

    /// Appends a row, every cell as text. Fails past Excel's 1,048,575 rows.
    pub fn push(&mut self, row: &ReportRow) -> io::Result<()> {
        self.push_with(row, &[])
    }

    /// Appends a row and the cells of the extra columns.
    pub fn push_with(&mut self, row: &ReportRow, extra: &[&str]) -> io::Result<()> {
        if let Some(why) = &self.broken {
            return Err(io::Error::other(format!(
                "no temporary file for the workbook's rows: {why}"
            )));
        }
        if self.rows + 1 >= EXCEL_ROWS {
            return Err(io::Error::other(format!(
                "more than {} rows do not fit in an Excel sheet: write the report as CSV (--format csv)",
                EXCEL_ROWS - 1
            )));
        }
        self.rows += 1;
        let cells = row.cells();
        let cells = cells
            .iter()
            .map(|c| c.as_ref())
            .chain(extra.iter().copied());
        for (col, cell) in cells.enumerate() {
            if !cell.is_empty() {
                self.sheet
                    .write_string(self.rows, col as u16, fit(cell))
                    .map_err(xlsx_error)?;
            }
        }
        Ok(())
    }

    /// Adds the autofilter and the Summary sheet and saves the workbook to `path`,
    /// through a temporary file in its folder renamed over it.
    pub fn save(mut self, path: &Path, summary: &Summary, facts: &SheetFacts) -> io::Result<()> {
        self.sheet
            .autofilter(
                0,
                0,
                self.rows,
                (COLUMNS.len() + self.extra.len()) as u16 - 1,
            )
            .map_err(xlsx_error)?;
        if let Some(why) = &self.broken {
            return Err(io::Error::other(format!(
                "no temporary file for the workbook's rows: {why}"
            )));
        }
        let summary_sheet = self.summary_sheet(summary, facts).map_err(xlsx_error)?;
        let mut workbook = self.workbook;
        workbook.push_worksheet(self.sheet);
        workbook.push_worksheet(summary_sheet);
        super::create_parent(path)?;
        super::replace_atomically(path, None, |out| {
            workbook.save_to_writer(out).map_err(xlsx_error)
        })
    }

    fn summary_sheet(&self, summary: &Summary, facts: &SheetFacts) -> Result<Worksheet, XlsxError> {
        let mut ws = Worksheet::new();
        ws.set_name("Summary")?;
        ws.set_column_width(0, 40.0)?;
        let bold = Format::new().set_bold();
        let mut r: u32 = 0;
        let title = |ws: &mut Worksheet, r: &mut u32, text: &str| -> Result<(), XlsxError> {
            ws.write_string_with_format(*r, 0, text, &bold)?;
            *r += 1;
            Ok(())
        };
        let pair = |ws: &mut Worksheet, r: &mut u32, key: &str, value: Cell| {
            ws.write_string(*r, 0, fit(key))?;
            value.write(ws, *r, 1)?;
            *r += 1;
            Ok::<(), XlsxError>(())
        };

        title(
            &mut ws,
            &mut r,
            &format!("intune-reset {}: {} rows", summary.command, summary.rows),
        )?;
        r += 1;

        // Outcomes × platforms, with totals.
        let platforms: Vec<&String> = summary.platform_outcomes.keys().collect();
        let outcomes: BTreeSet<Outcome> = summary
            .platform_outcomes
            .values()
            .flat_map(|m| m.keys().copied())
            .collect();
        ws.write_string_with_format(r, 0, "outcome \\ platform", &bold)?;
        for (i, p) in platforms.iter().enumerate() {
            ws.write_string_with_format(r, 1 + i as u16, fit(p), &bold)?;
        }
        let total_col = 1 + platforms.len() as u16;
        ws.write_string_with_format(r, total_col, "total", &bold)?;
        r += 1;
        for outcome in &outcomes {
            ws.write_string(r, 0, outcome.as_str())?;
            let mut total = 0;
            for (i, p) in platforms.iter().enumerate() {
                let n = summary.platform_outcomes[*p]
                    .get(outcome)
                    .copied()
                    .unwrap_or(0);
                total += n;
                ws.write_number(r, 1 + i as u16, n as f64)?;
            }
            ws.write_number(r, total_col, total as f64)?;
            r += 1;
        }
        ws.write_string_with_format(r, 0, "total", &bold)?;
        let mut all = 0;
        for (i, p) in platforms.iter().enumerate() {
            let n: u64 = summary.platform_outcomes[*p].values().sum();
            all += n;
            ws.write_number(r, 1 + i as u16, n as f64)?;
        }
        ws.write_number(r, total_col, all as f64)?;
        r += 2;

        if !summary.reasons.is_empty() {
            title(&mut ws, &mut r, "reasons")?;
            for (reason, n) in &summary.reasons {
                pair(&mut ws, &mut r, reason, Cell::Count(*n))?;
            }
            r += 1;
        }

        if let Some(run) = &summary.run {
            title(&mut ws, &mut r, "traffic")?;
            pair(&mut ws, &mut r, "requests", Cell::Count(run.requests))?;
            pair(
                &mut ws,
                &mut r,
                "resetPasscode POSTs",
                Cell::Count(run.posts),
            )?;
            pair(
                &mut ws,
                &mut r,
                "throttled (429)",
                Cell::Count(run.throttled),
            )?;
            pair(
                &mut ws,
                &mut r,
                "confirmed through deviceActionResults",
                Cell::Count(run.confirmed_by_action_results),
            )?;
            pair(
                &mut ws,
                &mut r,
                "resets per second",
                Cell::Text(format!("{:.2}", run.resets_per_second)),
            )?;
            if let Some(why) = &run.aborted {
                pair(&mut ws, &mut r, "aborted", Cell::Text(why.clone()))?;
            }
            r += 1;
        }

        if !facts.identity.is_empty() {
            title(&mut ws, &mut r, "identity")?;
            for (what, value) in &facts.identity {
                pair(&mut ws, &mut r, what, Cell::Text(value.clone()))?;
            }
            r += 1;
        }

        title(&mut ws, &mut r, "time")?;
        let stamp = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
        pair(&mut ws, &mut r, "started", Cell::Text(stamp(facts.started)))?;
        pair(&mut ws, &mut r, "ended", Cell::Text(stamp(facts.ended)))?;
        pair(
            &mut ws,
            &mut r,
            "duration",
            Cell::Text(format!("{:.1} s", summary.elapsed_seconds)),
        )?;
        r += 1;

        if !summary.files.is_empty() {
            title(&mut ws, &mut r, "job files")?;
            for f in &summary.files {
                pair(
                    &mut ws,
                    &mut r,
                    &f.source,
                    Cell::Text(format!("{} rows ({}, {})", f.rows, f.format, f.encoding)),
                )?;
            }
        }
        Ok(ws)
    }
}

/// A Summary-sheet value: counts are numbers (they add up in Excel), the rest text.
enum Cell {
    Count(u64),
    Text(String),
}

impl Cell {
    fn write(self, ws: &mut Worksheet, row: u32, col: u16) -> Result<(), XlsxError> {
        match self {
            Cell::Count(n) => ws.write_number(row, col, n as f64).map(drop),
            Cell::Text(t) => ws.write_string(row, col, fit(&t)).map(drop),
        }
    }
}

/// A cell's text within Excel's 32,767 characters, cut with `…` past them.
fn fit(text: &str) -> String {
    if text.len() <= EXCEL_CELL_CHARS {
        return text.to_owned();
    }
    let mut units = 0;
    let mut out = String::new();
    for c in text.chars() {
        units += c.len_utf16();
        if units > EXCEL_CELL_CHARS - 1 {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

fn xlsx_error(e: XlsxError) -> io::Error {
    match e {
        XlsxError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_longer_than_excel_allows_is_cut() {
        let long = "é".repeat(40_000);
        let cut = fit(&long);
        assert_eq!(cut.encode_utf16().count(), EXCEL_CELL_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(fit("Pixel 7"), "Pixel 7");
    }
}
