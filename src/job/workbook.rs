//! Workbooks (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`), read with calamine.
//!
//! - The first visible worksheet, or the one `--sheet` names (exactly, else ignoring
//!   case, as Excel compares sheet names). A name the workbook lacks is an error that
//!   lists its sheets.
//! - Title rows above the table are skipped: the header is the first row with a cell
//!   that names a known column. A sheet with one column and no such row is a headerless
//!   list, guessed as for CSV ([`super::headerless`]).
//! - Cells read as Excel shows them in a General cell ([`cell_text`]): numbers with at
//!   most 15 significant digits (`17.5`, never `17.499999999999998`), whole numbers as
//!   digits (an IMEI or id typed as a number never becomes `3.57123E+14`), dates as ISO
//!   8601, booleans as `TRUE`/`FALSE`, errors as `#N/A`.
//! - A row's number is its row in Excel (1-based, counting the title rows and blank
//!   rows above it), whatever cell the used range starts at.
//!
//! The sheet is held in memory as calamine reads it (a `Range` of cells): about 50 MB
//! for 100,000 rows of a full Intune export (README, Performance).

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{Data, Ods, Range, Reader, SheetType, SheetVisible, Sheets, Xls, Xlsb, Xlsx};

use super::csv_reader::{header_map, kind_of, no_known_column};
use super::headerless::guess_column;
use super::{ColumnNames, JobError, JobRow, ReadStats, RowDefect};
use crate::device::{Column, DeviceFields};

/// Which workbook format a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkbookKind {
    Xlsx,
    Xlsm,
    Xlsb,
    Xls,
    Ods,
}

impl WorkbookKind {
    pub fn describe(self) -> &'static str {
        match self {
            WorkbookKind::Xlsx => "Excel workbook (.xlsx)",
            WorkbookKind::Xlsm => "Excel macro-enabled workbook (.xlsm)",
            WorkbookKind::Xlsb => "Excel binary workbook (.xlsb)",
            WorkbookKind::Xls => "Excel 97-2003 workbook (.xls)",
            WorkbookKind::Ods => "OpenDocument spreadsheet (.ods)",
        }
    }

    /// The workbook a ZIP container holds, from its entry names.
    pub fn of_zip_entries<'a>(names: impl Iterator<Item = &'a str>) -> Option<WorkbookKind> {
        let (mut xml, mut bin, mut macros, mut content, mut mimetype) =
            (false, false, false, false, false);
        for name in names {
            match name {
                "xl/workbook.xml" => xml = true,
                "xl/workbook.bin" => bin = true,
                "xl/vbaProject.bin" => macros = true,
                "content.xml" => content = true,
                "mimetype" => mimetype = true,
                _ => {}
            }
        }
        match () {
            _ if bin => Some(WorkbookKind::Xlsb),
            _ if xml && macros => Some(WorkbookKind::Xlsm),
            _ if xml => Some(WorkbookKind::Xlsx),
            _ if content && mimetype => Some(WorkbookKind::Ods),
            _ => None,
        }
    }
}

/// How many rows are searched for the header before the sheet is refused.
const HEADER_SEARCH_ROWS: usize = 100;

pub struct SheetBody {
    range: Range<Data>,
    /// Excel's 0-based row of the range's first row.
    first_row: u32,
    /// Index (in the range) of the first row after the header; 0 for a headerless list.
    body_start: usize,
    map: Vec<Option<Column>>,
}

type Book = Sheets<BufReader<File>>;

fn open_book(path: &Path, kind: WorkbookKind) -> Result<Book, calamine::Error> {
    Ok(match kind {
        WorkbookKind::Xlsx | WorkbookKind::Xlsm => {
            Sheets::Xlsx(calamine::open_workbook::<Xlsx<_>, _>(path)?)
        }
        WorkbookKind::Xlsb => Sheets::Xlsb(calamine::open_workbook::<Xlsb<_>, _>(path)?),
        WorkbookKind::Xls => Sheets::Xls(calamine::open_workbook::<Xls<_>, _>(path)?),
        WorkbookKind::Ods => Sheets::Ods(calamine::open_workbook::<Ods<_>, _>(path)?),
    })
}

/// The sheet to read: `wanted`, or the first visible worksheet.
fn pick_sheet(book: &Book, wanted: Option<&str>) -> Result<String, String> {
    let names = book.sheet_names();
    let listed = || {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(wanted) => names
            .iter()
            .find(|n| *n == wanted)
            .or_else(|| {
                names
                    .iter()
                    .find(|n| n.to_lowercase() == wanted.to_lowercase())
            })
            .cloned()
            .ok_or_else(|| {
                format!(
                    "it has no sheet named '{wanted}' (--sheet); its sheets are {}",
                    listed()
                )
            }),
        None => {
            let sheets = book.sheets_metadata();
            sheets
                .iter()
                .find(|s| s.typ == SheetType::WorkSheet && s.visible == SheetVisible::Visible)
                .or_else(|| sheets.iter().find(|s| s.typ == SheetType::WorkSheet))
                .map(|s| s.name.clone())
                .ok_or_else(|| "it has no worksheet (only charts or macros)".to_string())
        }
    }
}

/// Opens the sheet, finds the header and matches its columns. Returns the body, the
/// column names as the sheet spells them, and the sheet's name.
pub fn open(
    path: &Path,
    name: &str,
    kind: WorkbookKind,
    wanted: Option<&str>,
) -> Result<(SheetBody, ColumnNames, String), JobError> {
    let unreadable = |why: String| JobError::Unreadable {
        path: name.to_owned(),
        why,
    };
    let mut book = open_book(path, kind).map_err(|e| {
        let hint = if kind == WorkbookKind::Xls {
            " (a workbook saved with a password is stored this way: save it without one)"
        } else {
            ""
        };
        unreadable(format!(
            "it cannot be read as an {}: {e}{hint}",
            kind.describe()
        ))
    })?;
    let sheet = pick_sheet(&book, wanted).map_err(unreadable)?;
    let range = book
        .worksheet_range(&sheet)
        .map_err(|e| unreadable(format!("its sheet '{sheet}' cannot be read: {e}")))?;
    let first_row = range.start().map_or(0, |(row, _)| row);
    let excel_row = |i: usize| u64::from(first_row) + i as u64 + 1;
    let mut header = None;
    for (i, cells) in range.rows().take(HEADER_SEARCH_ROWS).enumerate() {
        let texts: Vec<String> = cells
            .iter()
            .map(|c| {
                cell_text(c)
                    .map(|t| t.trim().to_owned())
                    .unwrap_or_default()
            })
            .collect();
        if texts.iter().any(|t| Column::match_header(t).is_some()) {
            header = Some((i, texts));
            break;
        }
    }
    let mut names = ColumnNames::default();
    let Some((header_index, texts)) = header else {
        return headerless(range, first_row, name, &sheet).map(|body| (body, names, sheet));
    };
    let map = header_map(&texts);
    for (h, column) in texts.iter().zip(&map) {
        if let Some(c) = column {
            names.note(*c, h);
        }
    }
    if header_index > 0 {
        tracing::info!(
            "{name}: sheet '{sheet}': the header is row {}; the rows above it are taken as \
             titles and skipped",
            excel_row(header_index)
        );
    }
    Ok((
        SheetBody {
            range,
            first_row,
            body_start: header_index + 1,
            map,
        },
        names,
        sheet,
    ))
}

/// A sheet with no header row: a one-column list of identifiers, or a refusal naming
/// the header to add.
fn headerless(
    range: Range<Data>,
    first_row: u32,
    name: &str,
    sheet: &str,
) -> Result<SheetBody, JobError> {
    let unreadable = |why: String| JobError::Unreadable {
        path: name.to_owned(),
        why,
    };
    let first: Vec<String> = range
        .rows()
        .find(|cells| cells.iter().any(|c| cell_text(c).is_some()))
        .map(|cells| {
            cells
                .iter()
                .map(|c| cell_text(c).map(Cow::into_owned).unwrap_or_default())
                .collect()
        })
        .ok_or_else(|| unreadable(format!("its sheet '{sheet}' is empty")))?;
    let column = if range.width() == 1 {
        let head: String = range
            .rows()
            .take(200)
            .filter_map(|cells| cell_text(&cells[0]))
            .map(|t| format!("{t}\n"))
            .collect();
        guess_column(&head, false)
    } else {
        None
    };
    let Some(column) = column else {
        return Err(unreadable(format!(
            "in sheet '{sheet}', {}",
            no_known_column(&first).replacen("its first row", "no row", 1)
        )));
    };
    tracing::warn!(
        "{name}: sheet '{sheet}' has no header row; every value looks like {}, so it is read \
         as one \"{}\" column from its first row; add a first row \"{}\" to say so",
        kind_of(column),
        column.canonical(),
        column.canonical(),
    );
    Ok(SheetBody {
        range,
        first_row,
        body_start: 0,
        map: vec![Some(column)],
    })
}

impl SheetBody {
    pub fn read_rows(self, emit: &mut dyn FnMut(JobRow)) -> ReadStats {
        let mut stats = ReadStats::default();
        for (i, cells) in self.range.rows().enumerate().skip(self.body_start) {
            let row = u64::from(self.first_row) + i as u64 + 1;
            let mut fields = DeviceFields::default();
            let mut blank = true;
            for (cell, column) in cells.iter().zip(&self.map) {
                let Some(text) = cell_text(cell) else {
                    continue;
                };
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                blank = false;
                if let Some(column) = column {
                    fields.set(*column, text);
                }
            }
            if blank {
                stats.blank_lines += 1;
                continue;
            }
            stats.rows += 1;
            let defect = fields.is_empty().then(|| RowDefect {
                reason: "no_known_values",
                detail: "the row has values only in columns this tool does not use".into(),
            });
            emit(JobRow {
                row,
                fields,
                defect,
            });
        }
        stats
    }
}

/// A cell as Excel shows it in a General-formatted cell; `None` for an empty cell.
pub fn cell_text(cell: &Data) -> Option<Cow<'_, str>> {
    Some(match cell {
        Data::Empty => return None,
        Data::String(s) => Cow::Borrowed(s.as_str()),
        Data::Int(i) => Cow::Owned(i.to_string()),
        Data::Float(f) => Cow::Owned(number_text(*f)),
        Data::Bool(b) => Cow::Borrowed(if *b { "TRUE" } else { "FALSE" }),
        Data::DateTime(d) => {
            if d.is_duration() {
                Cow::Owned(number_text(d.as_f64()))
            } else {
                let (y, mo, day, h, mi, s, _) = d.to_ymd_hms_milli();
                Cow::Owned(if (h, mi, s) == (0, 0, 0) {
                    format!("{y:04}-{mo:02}-{day:02}")
                } else {
                    format!("{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}")
                })
            }
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => Cow::Borrowed(s.as_str()),
        Data::Error(e) => Cow::Owned(e.to_string()),
    })
}

/// A number as Excel's General format shows it, but never in scientific notation:
/// whole numbers as all their digits, others rounded to Excel's 15 significant digits
/// and written in the shortest form that reads back the same.
pub fn number_text(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{f:.0}");
    }
    // `{:e}` with 14 decimals is 15 significant digits; parsing it back and printing
    // with `{}` drops the trailing zeros and never uses an exponent.
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    format!("{rounded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_excel_shows_them() {
        assert_eq!(number_text(17.5), "17.5");
        assert_eq!(number_text(17.0), "17");
        assert_eq!(number_text(0.1 + 0.2), "0.3");
        assert_eq!(number_text(357123456789012.0), "357123456789012");
        assert_eq!(number_text(1.2e15), "1200000000000000");
        assert_eq!(number_text(-3.25), "-3.25");
        assert_eq!(number_text(16.400000000000002), "16.4");
        assert_eq!(number_text(16.4000000000001), "16.4000000000001");
    }

    #[test]
    fn cells_of_each_type_become_text() {
        use calamine::{CellErrorType, ExcelDateTime, ExcelDateTimeType};
        assert_eq!(cell_text(&Data::Empty), None);
        assert_eq!(cell_text(&Data::Int(42)).as_deref(), Some("42"));
        assert_eq!(cell_text(&Data::Bool(true)).as_deref(), Some("TRUE"));
        assert_eq!(
            cell_text(&Data::Error(CellErrorType::NA)).as_deref(),
            Some("#N/A")
        );
        let date = ExcelDateTime::new(45943.0, ExcelDateTimeType::DateTime, false);
        assert_eq!(
            cell_text(&Data::DateTime(date)).as_deref(),
            Some("2025-10-13")
        );
        let noon = ExcelDateTime::new(45943.5, ExcelDateTimeType::DateTime, false);
        assert_eq!(
            cell_text(&Data::DateTime(noon)).as_deref(),
            Some("2025-10-13T12:00:00")
        );
    }

    #[test]
    fn the_kind_of_a_zip_container_comes_from_its_entries() {
        let kind = |names: &[&str]| WorkbookKind::of_zip_entries(names.iter().copied());
        assert_eq!(
            kind(&["[Content_Types].xml", "xl/workbook.xml"]),
            Some(WorkbookKind::Xlsx)
        );
        assert_eq!(
            kind(&["xl/workbook.xml", "xl/vbaProject.bin"]),
            Some(WorkbookKind::Xlsm)
        );
        assert_eq!(kind(&["xl/workbook.bin"]), Some(WorkbookKind::Xlsb));
        assert_eq!(kind(&["mimetype", "content.xml"]), Some(WorkbookKind::Ods));
        assert_eq!(kind(&["export.csv"]), None);
    }
}
