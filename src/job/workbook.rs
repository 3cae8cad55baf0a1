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
//! An `.xlsx`/`.xlsm` sheet with a header is streamed, cell by cell, in two passes (one
//! to find the header, one for the rows), so memory holds the workbook's shared strings
//! but not its cells. The other formats, and a sheet without a header row, are read
//! whole into calamine's `Range` (docs/performance.md).

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use calamine::{
    Data, DataRef, Ods, Range, Reader, SheetType, SheetVisible, Sheets, Xls, Xlsb, Xlsx,
};

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

pub enum SheetBody {
    Range(RangeBody),
    Stream(StreamBody),
}

/// An `.xlsx` sheet read again, cell by cell, for its rows.
pub struct StreamBody {
    path: PathBuf,
    /// How messages name the file.
    name: String,
    sheet: String,
    /// Excel's 0-based row of the header.
    header_row: u32,
    /// For each (absolute, 0-based) column, the column it feeds.
    map: Vec<Option<Column>>,
}

pub struct RangeBody {
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
    open_with(path, name, kind, wanted, true)
}

/// [`open`]; `stream: false` reads an `.xlsx` whole, as the other formats are (for
/// the test that both ways give the same rows).
fn open_with(
    path: &Path,
    name: &str,
    kind: WorkbookKind,
    wanted: Option<&str>,
    stream: bool,
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
    if let (Sheets::Xlsx(xlsx), true) = (&mut book, stream) {
        let found = find_header_streamed(xlsx, &sheet)
            .map_err(|e| unreadable(format!("its sheet '{sheet}' cannot be read: {e}")))?;
        if let Some((header_row, texts)) = found {
            let (map, names) = columns_of(&texts);
            if header_row > 0 {
                tell_title_rows(name, &sheet, u64::from(header_row) + 1);
            }
            let body = StreamBody {
                path: path.to_owned(),
                name: name.to_owned(),
                sheet: sheet.clone(),
                header_row,
                map,
            };
            return Ok((SheetBody::Stream(body), names, sheet));
        }
    }
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
    let Some((header_index, texts)) = header else {
        return headerless(range, first_row, name, &sheet)
            .map(|body| (SheetBody::Range(body), ColumnNames::default(), sheet));
    };
    let (map, names) = columns_of(&texts);
    if excel_row(header_index) > 1 {
        tell_title_rows(name, &sheet, excel_row(header_index));
    }
    let body = RangeBody {
        range,
        first_row,
        body_start: header_index + 1,
        map,
    };
    Ok((SheetBody::Range(body), names, sheet))
}

fn tell_title_rows(name: &str, sheet: &str, header_row: u64) {
    super::notice::info(format!(
        "{name}: sheet '{sheet}': the header is row {header_row}; the rows above it are \
         taken as titles and skipped"
    ));
}

fn columns_of(header: &[String]) -> (Vec<Option<Column>>, ColumnNames) {
    let map = header_map(header);
    let mut names = ColumnNames::default();
    for (h, column) in header.iter().zip(&map) {
        if let Some(c) = column {
            names.note(*c, h);
        }
    }
    (map, names)
}

type XlsxBook = Xlsx<BufReader<File>>;

/// The header row of an `.xlsx` sheet (Excel's 0-based row) and its cells' text by
/// absolute column, read cell by cell; `None` when none of the first
/// [`HEADER_SEARCH_ROWS`] rows names a known column.
fn find_header_streamed(
    xlsx: &mut XlsxBook,
    sheet: &str,
) -> Result<Option<(u32, Vec<String>)>, calamine::XlsxError> {
    let mut reader = xlsx.worksheet_cells_reader(sheet)?;
    let mut row: Option<u32> = None;
    let mut cells: Vec<String> = Vec::new();
    let mut rows_seen = 0;
    loop {
        let next = reader.next_cell()?;
        let next_row = next.as_ref().map(|c| c.get_position().0);
        if next_row != row {
            if let Some(r) = row {
                if cells.iter().any(|t| Column::match_header(t).is_some()) {
                    return Ok(Some((r, cells)));
                }
                rows_seen += 1;
                if rows_seen >= HEADER_SEARCH_ROWS {
                    return Ok(None);
                }
            }
            cells.clear();
            row = next_row;
        }
        let Some(cell) = next else {
            return Ok(None);
        };
        let column = cell.get_position().1 as usize;
        if let Some(text) = ref_text(cell.get_value()) {
            if cells.len() <= column {
                cells.resize(column + 1, String::new());
            }
            cells[column] = text.trim().to_owned();
        }
    }
}

/// A sheet with no header row: a one-column list of identifiers, or a refusal naming
/// the header to add.
fn headerless(
    range: Range<Data>,
    first_row: u32,
    name: &str,
    sheet: &str,
) -> Result<RangeBody, JobError> {
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
    super::notice::warn(format!(
        "{name}: sheet '{sheet}' has no header row; every value looks like {}, so it is read \
         as one \"{}\" column from its first row; add a first row \"{}\" to say so",
        kind_of(column),
        column.canonical(),
        column.canonical(),
    ));
    Ok(RangeBody {
        range,
        first_row,
        body_start: 0,
        map: vec![Some(column)],
    })
}

impl SheetBody {
    pub fn read_rows(self, emit: &mut dyn FnMut(JobRow)) -> ReadStats {
        match self {
            SheetBody::Range(body) => body.read_rows(emit),
            SheetBody::Stream(body) => body.read_rows(emit),
        }
    }
}

/// Collects one sheet row's values and emits it as a device row.
struct RowBuilder {
    fields: DeviceFields,
    blank: bool,
}

impl RowBuilder {
    fn new() -> Self {
        RowBuilder {
            fields: DeviceFields::default(),
            blank: true,
        }
    }

    fn cell(&mut self, text: &str, column: Option<Column>) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        self.blank = false;
        if let Some(column) = column {
            self.fields.set(column, text);
        }
    }

    fn finish(self, row: u64, stats: &mut ReadStats, emit: &mut dyn FnMut(JobRow)) {
        if self.blank {
            stats.blank_lines += 1;
            return;
        }
        stats.rows += 1;
        let defect = self.fields.is_empty().then(|| RowDefect {
            reason: "no_known_values",
            detail: "the row has values only in columns this tool does not use".into(),
        });
        emit(JobRow {
            row,
            fields: self.fields,
            defect,
        });
    }
}

impl StreamBody {
    fn read_rows(self, emit: &mut dyn FnMut(JobRow)) -> ReadStats {
        let mut stats = ReadStats::default();
        // Rows are numbered as Excel numbers them: 1-based.
        let mut last = u64::from(self.header_row) + 1;
        let stopped = |stats: &mut ReadStats, emit: &mut dyn FnMut(JobRow), row, why: String| {
            stats.rows += 1;
            emit(JobRow {
                row,
                fields: DeviceFields::default(),
                defect: Some(RowDefect {
                    reason: "unreadable_rest_of_file",
                    detail: format!(
                        "reading sheet '{}' of {} stopped here: {why}; rows after this point \
                         were not read",
                        self.sheet, self.name
                    ),
                }),
            });
        };
        let mut xlsx: XlsxBook = match calamine::open_workbook(&self.path) {
            Ok(x) => x,
            Err(e) => {
                stopped(&mut stats, emit, last + 1, e.to_string());
                return stats;
            }
        };
        let mut reader = match xlsx.worksheet_cells_reader(&self.sheet) {
            Ok(r) => r,
            Err(e) => {
                stopped(&mut stats, emit, last + 1, e.to_string());
                return stats;
            }
        };
        let mut current: Option<(u64, RowBuilder)> = None;
        loop {
            let next = match reader.next_cell() {
                Ok(next) => next,
                Err(e) => {
                    if let Some((row, builder)) = current.take() {
                        builder.finish(row, &mut stats, emit);
                        last = row;
                    }
                    stopped(&mut stats, emit, last + 1, e.to_string());
                    return stats;
                }
            };
            let Some(cell) = next else { break };
            let (row0, column) = cell.get_position();
            if row0 <= self.header_row {
                continue;
            }
            let row = u64::from(row0) + 1;
            if current.as_ref().is_none_or(|(r, _)| *r != row) {
                if let Some((done, builder)) = current.take() {
                    builder.finish(done, &mut stats, emit);
                    last = done;
                }
                // Rows the sheet does not hold at all are blank rows too.
                stats.blank_lines += row.saturating_sub(last + 1);
                current = Some((row, RowBuilder::new()));
            }
            if let (Some((_, builder)), Some(text)) = (current.as_mut(), ref_text(cell.get_value()))
            {
                builder.cell(&text, self.map.get(column as usize).copied().flatten());
            }
        }
        if let Some((row, builder)) = current.take() {
            builder.finish(row, &mut stats, emit);
        }
        stats
    }
}

impl RangeBody {
    fn read_rows(self, emit: &mut dyn FnMut(JobRow)) -> ReadStats {
        let mut stats = ReadStats::default();
        for (i, cells) in self.range.rows().enumerate().skip(self.body_start) {
            let row = u64::from(self.first_row) + i as u64 + 1;
            let mut builder = RowBuilder::new();
            for (i, cell) in cells.iter().enumerate() {
                if let Some(text) = cell_text(cell) {
                    builder.cell(&text, self.map.get(i).copied().flatten());
                }
            }
            builder.finish(row, &mut stats, emit);
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

/// [`cell_text`] for a cell the streaming reader hands out.
fn ref_text<'a>(cell: &'a DataRef<'a>) -> Option<Cow<'a, str>> {
    Some(match cell {
        DataRef::Empty => return None,
        DataRef::SharedString(s) => Cow::Borrowed(*s),
        DataRef::String(s) => Cow::Borrowed(s.as_str()),
        DataRef::Int(i) => return cell_text(&Data::Int(*i)).map(|t| Cow::Owned(t.into_owned())),
        DataRef::Float(f) => Cow::Owned(number_text(*f)),
        DataRef::Bool(b) => Cow::Borrowed(if *b { "TRUE" } else { "FALSE" }),
        DataRef::DateTime(d) => {
            return cell_text(&Data::DateTime(*d)).map(|t| Cow::Owned(t.into_owned()));
        }
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cow::Borrowed(s.as_str()),
        DataRef::Error(e) => Cow::Owned(e.to_string()),
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

    fn read(path: &Path, stream: bool) -> (Vec<JobRow>, ReadStats, String) {
        let (body, names, sheet) =
            open_with(path, "book.xlsx", WorkbookKind::Xlsx, None, stream).expect("opens");
        assert!(matches!(body, SheetBody::Stream(_)) == stream);
        let mut rows = vec![];
        let stats = body.read_rows(&mut |r| rows.push(r));
        (rows, stats, format!("{sheet} {}", names.name(Column::Id)))
    }

    #[test]
    fn streaming_an_xlsx_gives_the_rows_reading_it_whole_gives() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("book.xlsx");
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        // The used range starts at C2: a title, a blank row, the header on row 4.
        sheet.write(1, 2, "Export").unwrap();
        for (c, h) in ["Device ID", "Notes", "OS version", "IMEI"]
            .iter()
            .enumerate()
        {
            sheet.write(3, 2 + c as u16, *h).unwrap();
        }
        sheet
            .write(4, 2, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
            .unwrap();
        sheet.write(4, 4, 17.5).unwrap();
        sheet.write(4, 5, 357123456789012.0).unwrap();
        sheet.write(6, 3, "only a note").unwrap();
        sheet.write(8, 4, true).unwrap();
        sheet.write(9, 2, "   ").unwrap();
        sheet.write(10, 2, "last").unwrap();
        book.save(&path).unwrap();
        let streamed = read(&path, true);
        let whole = read(&path, false);
        assert_eq!(streamed, whole);
        let (rows, stats, names) = streamed;
        assert_eq!(names, "Sheet1 Device ID");
        assert_eq!(
            rows.iter().map(|r| r.row).collect::<Vec<_>>(),
            [5, 7, 9, 11]
        );
        assert_eq!(rows[0].fields.get(Column::OsVersion), Some("17.5"));
        assert_eq!(rows[0].fields.get(Column::Imei), Some("357123456789012"));
        assert_eq!(
            rows[1].defect.as_ref().map(|d| d.reason),
            Some("no_known_values")
        );
        assert_eq!(rows[2].fields.get(Column::OsVersion), Some("TRUE"));
        assert_eq!(stats.blank_lines, 3, "rows 6, 8 and 10");
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
