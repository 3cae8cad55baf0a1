//! JSON job files: an array of devices, a Graph list response `{"value": [...]}`, a job
//! document `{"action": ..., "devices": [...]}`, or JSON Lines.
//!
//! Arrays are streamed with a serde visitor that hands each element to the callback as
//! soon as it is parsed, so a million-device export never sits in memory. A job
//! document is read twice: once for the settings beside `devices` (which may come after
//! the array), once for the devices.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::decode::{TextEncoding, TextSource, field_text, transcode_1252};
use super::utf8_repair::Utf8Repair;
use super::{Column, DeviceFields, Format, JobError, JobRow, JobSettings, ReadStats, RowDefect};

/// `None` for CSV; otherwise which JSON shape the file has.
pub fn sniff(path: &Path, head: &str) -> Result<Option<Format>, JobError> {
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
            path: path.display().to_string(),
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

/// UTF-8 text for the JSON parser: UTF-16 is transcoded already, Windows-1252 is
/// transcoded here, and a stray non-UTF-8 byte later in a UTF-8 file is repaired rather
/// than stopping the parse (see [`Utf8Repair`]).
fn reader_for(text: TextSource) -> Box<dyn BufRead + Send> {
    match text.encoding {
        TextEncoding::Windows1252 => transcode_1252(text.reader),
        TextEncoding::Utf8 => Box::new(BufReader::new(Utf8Repair::new(text.reader))),
        TextEncoding::Utf16Le | TextEncoding::Utf16Be => text.reader,
    }
}

/// For a job document, reads the settings beside `devices`; checks the file parses.
pub fn prescan(path: &Path, text: TextSource, format: Format) -> Result<JobSettings, JobError> {
    if format != Format::JsonDocument {
        return Ok(JobSettings::default());
    }
    let mut de = serde_json::Deserializer::from_reader(reader_for(text));
    let scan = de
        .deserialize_map(PrescanVisitor)
        .map_err(|e| JobError::Unreadable {
            path: path.display().to_string(),
            why: format!("it is not a valid JSON document: {e}"),
        })?;
    let mut settings = JobSettings::default();
    if !scan.has_devices
        && !scan
            .settings
            .keys()
            .any(|k| Column::match_header(k).is_some())
    {
        return Err(JobError::Unreadable {
            path: path.display().to_string(),
            why: "the JSON object has no \"devices\" or \"value\" array".into(),
        });
    }
    if scan.has_devices {
        settings.action = scan
            .settings
            .get("action")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    Ok(settings)
}

struct Prescan {
    has_devices: bool,
    settings: serde_json::Map<String, Value>,
}

struct PrescanVisitor;

impl<'de> Visitor<'de> for PrescanVisitor {
    type Value = Prescan;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Prescan, A::Error> {
        let mut scan = Prescan {
            has_devices: false,
            settings: serde_json::Map::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            if is_devices_key(&key) {
                map.next_value::<IgnoredAny>()?;
                scan.has_devices = true;
            } else {
                let value = map.next_value::<Value>()?;
                scan.settings.insert(key, value);
            }
        }
        Ok(scan)
    }
}

pub fn read_rows(text: TextSource, format: Format, emit: &mut dyn FnMut(JobRow)) -> ReadStats {
    let mut sink = Sink {
        emit,
        stats: ReadStats::default(),
    };
    match format {
        Format::JsonLines => read_lines(reader_for(text), &mut sink),
        Format::JsonArray | Format::JsonDocument => {
            let mut de = serde_json::Deserializer::from_reader(reader_for(text));
            let result = if format == Format::JsonArray {
                de.deserialize_seq(ArrayVisitor { sink: &mut sink })
            } else {
                de.deserialize_map(DocumentVisitor { sink: &mut sink })
            };
            if let Err(e) = result {
                let row = sink.stats.rows + 1;
                sink.defect(
                    row,
                    "unreadable_rest_of_file",
                    format!(
                        "the JSON is broken here ({e}); this device and any after it could not be read"
                    ),
                );
            }
        }
        Format::Csv { .. } => unreachable!("CSV files are read by csv_reader"),
    }
    sink.stats
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
            let kind = match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            };
            return self.defect(
                row,
                "not_an_object",
                format!("the element is {kind}, not a device object"),
            );
        };
        let mut fields = DeviceFields::default();
        for (key, value) in &object {
            let Some(column) = Column::match_header(key) else {
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

struct ArrayVisitor<'s, 'a> {
    sink: &'s mut Sink<'a>,
}

impl<'de> Visitor<'de> for ArrayVisitor<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of device objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut position = 0u64;
        while let Some(value) = seq.next_element::<Value>()? {
            position += 1;
            self.sink.device(position, value);
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ArrayVisitor<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

struct DocumentVisitor<'s, 'a> {
    sink: &'s mut Sink<'a>,
}

impl<'de> Visitor<'de> for DocumentVisitor<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with a \"devices\" or \"value\" array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut single = serde_json::Map::new();
        let mut had_devices = false;
        while let Some(key) = map.next_key::<String>()? {
            if is_devices_key(&key) && !had_devices {
                had_devices = true;
                map.next_value_seed(ArrayVisitor {
                    sink: &mut *self.sink,
                })?;
            } else if had_devices {
                map.next_value::<IgnoredAny>()?;
            } else {
                single.insert(key, map.next_value::<Value>()?);
            }
        }
        if !had_devices {
            // A single device object saved on its own (a Graph GET response).
            self.sink.device(1, Value::Object(single));
        }
        Ok(())
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
