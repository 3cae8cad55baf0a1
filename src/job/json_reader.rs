//! JSON job files: an array of devices, a Graph list response `{"value": [...]}`, a job
//! document `{"action": ..., "devices": [...]}`, or JSON Lines.
//!
//! Arrays are streamed: [`JsonScanner`] finds where each element ends and each is parsed
//! on its own as soon as it is complete, so a million-device export never sits in memory
//! and an element serde_json rejects is one `invalid_json` row, not the end of the file.
//! A job document is read twice: once for the settings beside `devices` (which may come
//! after the array), once for the devices. Every `devices` or `value` array of a
//! document is read, in order, numbered on from the one before, so no device is skipped.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::decode::{TextEncoding, TextSource, field_text};
use super::json_split::{Damage, End, JsonScanner, MAX_VALUE_BYTES, Scanned};
use super::utf8_repair::Utf8Repair;
use super::{Format, JobError, JobRow, JobSettings, ReadStats, RowDefect};
use crate::device::{Column, DeviceFields};
use crate::tenants::TenantEntry;

/// `None` for CSV; otherwise which JSON shape the file has.
pub fn sniff(path: &Path, name: &str, head: &str) -> Result<Option<Format>, JobError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let start = head.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    match ext.as_str() {
        "jsonl" | "ndjson" => return Ok(Some(Format::JsonLines)),
        "csv" | "tsv" | "txt" => return Ok(None),
        _ => {}
    }
    let shape = if start.starts_with('[') {
        Format::JsonArray
    } else if start.starts_with('{') {
        // One complete object on the first line is JSON Lines, unless it is a one-line
        // job document or list response.
        let first_line = start.lines().next().unwrap_or("");
        match serde_json::from_str::<serde_json::Map<String, Value>>(first_line) {
            Ok(map) if devices_key(&map).is_none() => Format::JsonLines,
            _ => Format::JsonDocument,
        }
    } else if ext == "json" {
        return Err(JobError::Unreadable {
            path: name.to_owned(),
            why: "it is named .json but does not start with '[' or '{'".into(),
        });
    } else {
        return Ok(None);
    };
    Ok(Some(shape))
}

fn is_devices_key(key: &str) -> bool {
    matches!(key, "devices" | "value")
}

fn devices_key(map: &serde_json::Map<String, Value>) -> Option<&str> {
    map.keys().map(String::as_str).find(|k| is_devices_key(k))
}

/// UTF-8 text for the JSON parser: UTF-16 and legacy code pages are transcoded
/// already, and a stray non-UTF-8 byte later in a UTF-8 file is repaired rather than
/// stopping the parse (see [`Utf8Repair`]).
fn reader_for(text: TextSource) -> Box<dyn BufRead + Send> {
    match text.encoding {
        TextEncoding::Utf8 => Box::new(BufReader::new(Utf8Repair::new(text.reader))),
        _ => text.reader,
    }
}

/// For a job document, reads the settings beside `devices`; checks that the document's
/// structure can be followed (its elements are parsed only when the rows are read).
pub fn prescan(name: &str, text: TextSource, format: Format) -> Result<JobSettings, JobError> {
    if format != Format::JsonDocument {
        return Ok(JobSettings::default());
    }
    let mut scanner = JsonScanner::new(reader_for(text));
    let scan = read_document(&mut scanner, None, &mut 0).map_err(|d| JobError::Unreadable {
        path: name.to_owned(),
        why: format!("it is not a valid JSON document ({d})"),
    })?;
    let mut settings = JobSettings::default();
    if !scan.has_devices
        && !scan
            .settings
            .keys()
            .any(|k| Column::match_header(k).is_some())
    {
        return Err(JobError::Unreadable {
            path: name.to_owned(),
            why: "the JSON object has no \"devices\" or \"value\" array".into(),
        });
    }
    if let Some(next) = scan.settings.get("@odata.nextLink") {
        // Graph pages a list (at most 1000 managed devices a page): a saved response with
        // a nextLink is the first page only. The devices of the page are still read.
        // https://learn.microsoft.com/en-us/graph/paging
        let next = next.as_str().unwrap_or_default();
        super::notice::warn(format!(
            "{}: the file holds one page of a longer list (it has an \"@odata.nextLink\"{}); \
             only the devices on this page are read. To get them all, follow the nextLink \
             until there is none, or export with `Get-MgDeviceManagementManagedDevice -All`",
            name,
            if next.is_empty() {
                String::new()
            } else {
                format!(" to {}", shorten(next))
            },
        ));
    }
    if scan.has_devices {
        settings.action = scan
            .settings
            .get("action")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(list) = scan.settings.get("tenants") {
            settings.tenants = document_tenants(list).map_err(|why| JobError::Unreadable {
                path: name.to_owned(),
                why: format!("its \"tenants\": {why}"),
            })?;
        }
    }
    Ok(settings)
}

/// A job document's `"tenants"`: an array of tenant ids or domains, or of objects
/// `{"tenant": ..., "clientId": ...}` (a tenant with its own client id); each tenant
/// once, and at least one. The error names the entry and what is wrong with it.
fn document_tenants(list: &Value) -> Result<Vec<TenantEntry>, String> {
    let Value::Array(items) = list else {
        return Err(format!(
            "it is {}, not an array of tenants (\"contoso.onmicrosoft.com\" or {{\"tenant\": ..., \"clientId\": ...}})",
            kind_of(list)
        ));
    };
    let mut entries: Vec<TenantEntry> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |what: String| format!("entry {} ({}) {what}", i + 1, shown_entry(item));
        let (tenant, client) = match item {
            Value::String(text) => (text.as_str(), None),
            Value::Object(map) => {
                if let Some(key) = map
                    .keys()
                    .find(|k| !matches!(k.as_str(), "tenant" | "tenantId" | "clientId"))
                {
                    return Err(at(format!(
                        "has \"{key}\": an entry has \"tenant\" and, optionally, \"clientId\""
                    )));
                }
                let tenant = match (map.get("tenant"), map.get("tenantId")) {
                    (Some(_), Some(_)) => {
                        return Err(at("has both \"tenant\" and \"tenantId\"".into()));
                    }
                    (Some(Value::String(t)), None) | (None, Some(Value::String(t))) => t.as_str(),
                    (None, None) => return Err(at("has no \"tenant\"".into())),
                    (Some(v), None) | (None, Some(v)) => {
                        return Err(at(format!(
                            "has a \"tenant\" that is {}, not text",
                            kind_of(v)
                        )));
                    }
                };
                let client = match map.get("clientId") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(c)) => Some(c.as_str()),
                    Some(v) => {
                        return Err(at(format!(
                            "has a \"clientId\" that is {}, not text",
                            kind_of(v)
                        )));
                    }
                };
                (tenant, client)
            }
            other => {
                return Err(at(format!(
                    "is {}, not a tenant id or domain, nor {{\"tenant\": ..., \"clientId\": ...}}",
                    kind_of(other)
                )));
            }
        };
        let Some(name) = crate::tenants::tenant_name(tenant) else {
            return Err(at(
                "is neither a tenant id (a GUID) nor a domain (contoso.onmicrosoft.com)".into(),
            ));
        };
        let client_id = match client {
            None => None,
            Some(c) => Some(
                crate::tenants::client_id(c)
                    .ok_or_else(|| at("has a \"clientId\" that is not a GUID".into()))?,
            ),
        };
        if let Some(first) = entries.iter().position(|e| e.name == name) {
            return Err(at(format!(
                "names {name} again (entry {}): list each tenant once",
                first + 1
            )));
        }
        entries.push(TenantEntry { name, client_id });
    }
    if entries.is_empty() {
        return Err(
            "the list is empty: name each tenant the run signs in to, or leave \"tenants\" out"
                .into(),
        );
    }
    Ok(entries)
}

/// A tenants entry for a message: its JSON, at most 100 characters.
fn shown_entry(item: &Value) -> String {
    let text = item.to_string();
    match text.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// A nextLink for a message: its `$skiptoken` alone runs to hundreds of characters.
fn shorten(link: &str) -> String {
    match link.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &link[..at]),
        None => link.to_owned(),
    }
}

/// What a job document holds besides its devices.
struct DocumentScan {
    has_devices: bool,
    settings: serde_json::Map<String, Value>,
}

pub fn read_rows(text: TextSource, format: Format, emit: &mut dyn FnMut(JobRow)) -> ReadStats {
    let mut sink = Sink {
        emit,
        stats: ReadStats::default(),
    };
    match format {
        Format::JsonLines => read_lines(reader_for(text), &mut sink),
        Format::JsonArray | Format::JsonDocument => {
            let mut scanner = JsonScanner::new(reader_for(text));
            let mut position = 0;
            let result = if format == Format::JsonArray {
                scanner
                    .expect(b'[', "to start the array")
                    .and_then(|()| read_elements(&mut scanner, Some(&mut sink), &mut position))
            } else {
                read_document(&mut scanner, Some(&mut sink), &mut position).map(|_| ())
            };
            if let Err(damage) = result {
                sink.defect(
                    position + 1,
                    "unreadable_rest_of_file",
                    format!(
                        "the JSON is broken {damage}; this device and any after it could not be read"
                    ),
                );
            }
        }
        Format::Csv { .. } | Format::Workbook(_) => {
            unreachable!("CSV files and workbooks have readers of their own")
        }
    }
    sink.stats
}

/// Walks a job document `{...}`: its settings are kept, its device arrays read into
/// `sink` (or only followed, without one), `position` counting devices across them.
fn read_document(
    scanner: &mut JsonScanner,
    mut sink: Option<&mut Sink>,
    position: &mut u64,
) -> Result<DocumentScan, Damage> {
    let mut scan = DocumentScan {
        has_devices: false,
        settings: serde_json::Map::new(),
    };
    scanner.expect(b'{', "to start the document")?;
    if scanner.peek()? == Some(b'}') {
        scanner.take();
        return Ok(scan);
    }
    let mut buf = Vec::new();
    loop {
        let key = scanner.key(&mut buf)?;
        let devices = is_devices_key(&key);
        scan.has_devices |= devices;
        let end = if devices && scanner.peek()? == Some(b'[') {
            scanner.take();
            read_elements(scanner, sink.as_deref_mut(), position)?;
            scanner.separator(b'}', &format!("after the \"{key}\" array"))?
        } else {
            let scanned = scanner.value(b'}', &mut buf)?;
            let value = parse(&buf, scanned);
            if devices {
                // `"devices": null` and the like: one row says so.
                *position += 1;
                if let Some(sink) = sink.as_deref_mut() {
                    let kind = value.as_ref().map_or("not valid JSON", kind_of);
                    sink.defect(
                        *position,
                        "not_an_array",
                        format!("the \"{key}\" value is {kind}, not an array of devices"),
                    );
                }
            } else {
                let value = value.map_err(|e| Damage {
                    line: scanned.line,
                    what: format!("the \"{key}\" value is not valid JSON ({e})"),
                })?;
                scan.settings.insert(key, value);
            }
            scanned.end
        };
        if end == End::Close {
            break;
        }
    }
    if !scan.has_devices
        && let Some(sink) = sink
    {
        // A single device object saved on its own (a Graph GET response).
        sink.device(1, Value::Object(scan.settings.clone()));
    }
    Ok(scan)
}

/// Reads the elements of an array whose `[` is taken, up to and including its `]`.
fn read_elements(
    scanner: &mut JsonScanner,
    mut sink: Option<&mut Sink>,
    position: &mut u64,
) -> Result<(), Damage> {
    if scanner.peek()? == Some(b']') {
        scanner.take();
        return Ok(());
    }
    let mut buf = Vec::new();
    loop {
        let scanned = scanner.value(b']', &mut buf)?;
        *position += 1;
        if let Some(sink) = sink.as_deref_mut() {
            match parse(&buf, scanned) {
                Ok(value) => sink.device(*position, value),
                Err(why) => sink.defect(
                    *position,
                    "invalid_json",
                    format!(
                        "the device on line {} is not valid JSON: {why}",
                        scanned.line
                    ),
                ),
            }
        }
        if scanned.end == End::Close {
            return Ok(());
        }
    }
}

/// One scanned value parsed on its own; the error says what is wrong with it.
fn parse(bytes: &[u8], scanned: Scanned) -> Result<Value, String> {
    if scanned.too_long {
        return Err(format!("it is longer than {} MiB", MAX_VALUE_BYTES >> 20));
    }
    let text = bytes.trim_ascii();
    if text.is_empty() {
        return Err("there is nothing between two commas, or before the closing bracket".into());
    }
    serde_json::from_slice(text).map_err(|e| {
        // serde_json ends its message with a position inside the element alone, which
        // would mislead: the caller names the file's line instead.
        let message = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        message
            .strip_suffix(&position)
            .unwrap_or(&message)
            .to_owned()
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Sink<'a> {
    emit: &'a mut dyn FnMut(JobRow),
    stats: ReadStats,
}

impl Sink<'_> {
    fn defect(&mut self, row: u64, reason: &'static str, detail: String) {
        self.stats.rows += 1;
        (self.emit)(JobRow {
            row,
            fields: DeviceFields::default(),
            defect: Some(RowDefect { reason, detail }),
        });
    }

    fn device(&mut self, row: u64, value: Value) {
        let Value::Object(object) = value else {
            return self.defect(
                row,
                "not_an_object",
                format!("the element is {}, not a device object", kind_of(&value)),
            );
        };
        let mut fields = DeviceFields::default();
        // Graph's `/devices` (Entra device objects): `id` is the object id and
        // `deviceId` the Entra device id.
        let entra = crate::device::is_entra_device_list(object.keys().map(String::as_str))
            || object
                .get("@odata.type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("#microsoft.graph.device"));
        for (key, value) in &object {
            let column = if entra {
                crate::device::match_entra_header(key)
            } else {
                Column::match_header(key)
            };
            let Some(column) = column else {
                continue;
            };
            match value {
                Value::String(s) => fields.set(column, s),
                Value::Number(n) => fields.set(column, &n.to_string()),
                Value::Bool(b) => fields.set(column, &b.to_string()),
                _ => {}
            }
        }
        self.stats.rows += 1;
        let defect = fields.is_empty().then(|| RowDefect {
            reason: "no_known_values",
            detail:
                "the object has no property this tool uses (id, serialNumber, operatingSystem, ...)"
                    .into(),
        });
        (self.emit)(JobRow {
            row,
            fields,
            defect,
        });
    }
}

fn read_lines(mut reader: Box<dyn BufRead + Send>, sink: &mut Sink) {
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                sink.defect(
                    line_no + 1,
                    "unreadable_rest_of_file",
                    format!("reading stopped here: {e}; lines after this point were not read"),
                );
                break;
            }
        }
        for line in split_lone_cr(&buf) {
            line_no += 1;
            read_line(line, line_no, sink);
        }
    }
}

/// A line read up to `\n`, split at each `\r` not followed by `\n`: files saved with
/// the classic Mac OS line end have nothing else. JSON never holds a raw CR inside a
/// string (it must be escaped), so the split cannot cut a value in two. A lone CR at
/// the very end ends the last line; it does not start another.
fn split_lone_cr(buf: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::with_capacity(1);
    let mut start = 0;
    for (i, b) in buf.iter().enumerate() {
        if *b == b'\r' && buf.get(i + 1) != Some(&b'\n') {
            lines.push(&buf[start..i]);
            start = i + 1;
        }
    }
    if start < buf.len() {
        lines.push(&buf[start..]);
    }
    lines
}

fn read_line(line: &[u8], line_no: u64, sink: &mut Sink) {
    let text = field_text(line);
    let text: &str = &text;
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if text.is_empty() {
        sink.stats.blank_lines += 1;
        return;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) => sink.device(line_no, value),
        Err(e) => sink.defect(
            line_no,
            "invalid_json",
            format!("the line is not valid JSON: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::split_lone_cr;

    #[test]
    fn lines_end_at_lf_crlf_or_a_lone_cr() {
        let lines = |b: &'static [u8]| split_lone_cr(b);
        assert_eq!(lines(b"{}\n"), [b"{}\n" as &[u8]]);
        assert_eq!(lines(b"{}\r\n"), [b"{}\r\n" as &[u8]]);
        assert_eq!(lines(b"{}\r\r{}\r"), [b"{}" as &[u8], b"", b"{}"]);
        assert_eq!(lines(b"{}\r{}\r\n"), [b"{}" as &[u8], b"{}\r\n"]);
        assert_eq!(lines(b"\r"), [b"" as &[u8]]);
    }
}
