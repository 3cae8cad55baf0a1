//! An xlsx report read back for the tests: the workbook's zip, its sheet XML and shared
//! strings, as little XML as our own workbooks hold (rust_xlsxwriter cannot read).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// What a cell holds, as the sheet XML says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// A text cell (a shared or inline string): shown as written, never evaluated.
    Text(String),
    /// A number.
    Number(String),
    /// A formula (with its cached value, if any): what a report must never hold.
    Formula(String),
}

impl Cell {
    pub fn text(&self) -> &str {
        match self {
            Cell::Text(t) | Cell::Number(t) | Cell::Formula(t) => t,
        }
    }
}

/// One sheet: its cells by (row, column), 0-based, and its raw XML.
pub struct Sheet {
    pub name: String,
    pub cells: BTreeMap<(u32, u32), Cell>,
    pub xml: String,
}

impl Sheet {
    /// The sheet as rows of text, empty cells as "".
    pub fn rows(&self) -> Vec<Vec<String>> {
        let height = self.cells.keys().map(|(r, _)| r + 1).max().unwrap_or(0);
        let mut rows = vec![Vec::new(); height as usize];
        for ((r, c), cell) in &self.cells {
            let row = &mut rows[*r as usize];
            if row.len() <= *c as usize {
                row.resize(*c as usize + 1, String::new());
            }
            row[*c as usize] = cell.text().to_owned();
        }
        rows
    }

    /// The sheet's rows below its header as (header -> text) maps, as
    /// [`super::read_report`] gives a CSV report.
    pub fn records(&self) -> Vec<super::Row> {
        let rows = self.rows();
        let Some((header, body)) = rows.split_first() else {
            return Vec::new();
        };
        body.iter()
            .map(|r| {
                header
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (h.clone(), r.get(i).cloned().unwrap_or_default()))
                    .collect()
            })
            .collect()
    }
}

/// Every sheet of the workbook at `path`, in workbook order.
pub fn read_workbook(path: &Path) -> Vec<Sheet> {
    let file = std::fs::File::open(path).expect("the workbook exists");
    let mut zip = zip::ZipArchive::new(file).expect("an xlsx is a zip");
    let mut part = |name: &str| -> Option<String> {
        let mut entry = zip.by_name(name).ok()?;
        let mut text = String::new();
        entry.read_to_string(&mut text).expect("a UTF-8 part");
        Some(text)
    };
    let shared: Vec<String> = part("xl/sharedStrings.xml")
        .map(|xml| {
            elements(&xml, "si")
                .map(|si| elements(si, "t").map(|t| unescape(inner(t))).collect())
                .collect()
        })
        .unwrap_or_default();
    let workbook = part("xl/workbook.xml").expect("xl/workbook.xml");
    let names: Vec<String> = elements(&workbook, "sheet")
        .map(|s| unescape(attr(s, "name").expect("a sheet has a name")))
        .collect();
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let xml = part(&format!("xl/worksheets/sheet{}.xml", i + 1)).expect("the sheet's XML");
            let cells = elements(&xml, "c")
                .map(|c| {
                    let at = position(attr(c, "r").expect("a cell has a reference"));
                    let value = elements(c, "v").next().map(|v| unescape(inner(v)));
                    let cell = if elements(c, "f").next().is_some() {
                        Cell::Formula(value.unwrap_or_default())
                    } else {
                        match attr(c, "t") {
                            Some("s") => {
                                let i: usize =
                                    value.expect("a shared string index").parse().unwrap();
                                Cell::Text(shared[i].clone())
                            }
                            Some("inlineStr") => {
                                Cell::Text(elements(c, "t").map(|t| unescape(inner(t))).collect())
                            }
                            Some("str") => Cell::Formula(value.unwrap_or_default()),
                            _ => Cell::Number(value.unwrap_or_default()),
                        }
                    };
                    (at, cell)
                })
                .collect();
            Sheet { name, cells, xml }
        })
        .collect()
}

/// The sheet named `name`.
pub fn sheet(path: &Path, name: &str) -> Sheet {
    read_workbook(path)
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{} has no sheet {name}", path.display()))
}

/// Each `<tag ...>...</tag>` or `<tag .../>` element in `xml`, whole.
fn elements<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        loop {
            let start = rest.find(&open)?;
            let after = &rest[start + open.len()..];
            // `<c` must not match `<cols`.
            if !after.starts_with([' ', '>', '/']) {
                rest = after;
                continue;
            }
            let head_end = after.find('>')? + 1;
            let end = if after[..head_end].ends_with("/>") {
                start + open.len() + head_end
            } else {
                start + open.len() + after.find(&close)? + close.len()
            };
            let element = &rest[start..end];
            rest = &rest[end..];
            return Some(element);
        }
    })
}

/// The text between an element's start and end tags.
fn inner(element: &str) -> &str {
    let start = element.find('>').map_or(0, |i| i + 1);
    let end = element.rfind("</").unwrap_or(element.len());
    if start > end {
        ""
    } else {
        &element[start..end]
    }
}

/// An attribute of an element's start tag.
fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let head = &element[..element.find('>')?];
    let key = format!(" {name}=\"");
    let start = head.find(&key)? + key.len();
    let len = head[start..].find('"')?;
    Some(&head[start..start + len])
}

/// `C12` -> (11, 2).
fn position(reference: &str) -> (u32, u32) {
    let letters: String = reference
        .chars()
        .take_while(char::is_ascii_uppercase)
        .collect();
    let col = letters
        .chars()
        .fold(0u32, |n, c| n * 26 + (c as u32 - 'A' as u32 + 1))
        - 1;
    let row: u32 = reference[letters.len()..].parse().expect("a row number");
    (row - 1, col)
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}
