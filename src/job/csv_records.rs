//! CSV records assembled from physical lines: the one place that decides where a record
//! ends, so that one broken quote costs one row and not the rest of the file.
//!
//! A record is usually one line. It runs on over the next line only while a quoted field
//! is open (a notes column with a line break in it). A parser that simply follows the
//! quote, as the csv crate does, lets one field that opens a quote and never closes it
//! swallow every row after it. Here each line the open field runs over is first read on
//! its own: when that line is a clean row of its own (as many fields as the header, no
//! stray quote, its quotes closed), the quote is declared unclosed, the record's first
//! line becomes one [`Next::Unclosed`], and reading starts again at the line after it,
//! with the lines already read fed in again.
//!
//! Why the test does not misfire on the line that closes a legitimate multi-line field:
//! that line holds an odd number of quote characters (pairs of escaped `""` plus the
//! closing one), while a clean row read on its own has an even number (each quoted field
//! opens and closes, escapes come in pairs). Only an *inner* line of a multi-line value
//! that itself splits into the header's number of fields is mistaken for a row; a file
//! cannot tell the two apart, and a swallowed row is worse than one refused value.
//!
//! The field grammar is csv-core's (the csv crate's parser), with its defaults: `"`
//! quotes, `""` escapes a quote inside quotes, a quote inside an unquoted field is text,
//! text after a closing quote joins the field, lines end at `\n`, `\r\n` or a lone `\r`
//! and empty lines are skipped. See `NfaState` in csv-core's `src/reader.rs`.

use std::collections::VecDeque;
use std::io::{self, BufRead};

/// How far an open quote may run over following lines before it is declared unclosed
/// even though none of them looked like a row: bounds what is held for re-reading.
const MAX_CONTINUATION_LINES: usize = 1000;
const MAX_CONTINUATION_BYTES: usize = 1 << 20;

/// One record's fields, as bytes: the values of a [`csv::ByteRecord`] without its
/// positions.
#[derive(Debug, Default)]
pub struct Fields {
    bytes: Vec<u8>,
    /// End of each field in `bytes`.
    ends: Vec<usize>,
}

impl Fields {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn end_field(&mut self) {
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// All values together, for sizing a row's buffer.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }

    /// Nothing but separators and blanks: not a device.
    pub fn is_blank(&self) -> bool {
        self.iter().all(|f| f.trim_ascii().is_empty())
    }
}

/// Why an open quote was declared unclosed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unclosed {
    /// The next line it would have swallowed is a row of its own.
    NextRow,
    EndOfFile,
    /// It ran over more lines or bytes than any real value has.
    TooLong,
}

#[derive(Debug)]
pub enum Next {
    /// A record starting on `line`; its fields are in the [`Fields`] passed in.
    Record {
        line: u64,
    },
    /// The record starting on `line` opens a quote in field `field` (0-based) that is
    /// never closed; reading goes on at the line after `line`.
    Unclosed {
        line: u64,
        field: usize,
        why: Unclosed,
    },
    /// The file could not be read further at `line`.
    Error {
        line: u64,
        error: io::Error,
    },
    End,
}

/// A physical line: its bytes with their line end, as read.
struct Line {
    number: u64,
    bytes: Vec<u8>,
    /// Length without the line end.
    content: usize,
}

impl Line {
    fn content(&self) -> &[u8] {
        &self.bytes[..self.content]
    }

    fn end(&self) -> &[u8] {
        &self.bytes[self.content..]
    }
}

pub struct Records {
    reader: Box<dyn BufRead + Send>,
    delimiter: u8,
    /// Fields a line needs, on its own, to be a row of its own: the header's count.
    /// `None` while the header itself is read.
    row_width: Option<usize>,
    /// Lines read ahead and to be read again after an unclosed quote.
    replay: VecDeque<Line>,
    /// A read error met while reading ahead, returned once `replay` is empty.
    error: Option<io::Error>,
    /// Number of the next line taken from `reader`.
    next_number: u64,
    /// Buffers of finished lines, reused so a million lines cost few allocations.
    spare: Vec<Vec<u8>>,
    /// Scratch for reading a continuation line on its own.
    alone: Fields,
}

impl Records {
    pub fn new(reader: Box<dyn BufRead + Send>, delimiter: u8) -> Self {
        Records {
            reader,
            delimiter,
            row_width: None,
            replay: VecDeque::new(),
            error: None,
            next_number: 1,
            spare: Vec::new(),
            alone: Fields::default(),
        }
    }

    /// From now on a line is a row of its own with `fields` fields (the header's).
    pub fn set_row_width(&mut self, fields: usize) {
        self.row_width = Some(fields);
    }

    /// The next record into `fields`, skipping empty lines.
    pub fn next_record(&mut self, fields: &mut Fields) -> Next {
        fields.clear();
        let first = loop {
            match self.next_line() {
                Ok(Some(line)) if line.content == 0 => self.recycle(line),
                Ok(Some(line)) => break line,
                Ok(None) => return Next::End,
                Err(error) => {
                    return Next::Error {
                        line: self.next_number,
                        error,
                    };
                }
            }
        };
        let line = first.number;
        let mut scan = Scan::default();
        if !scan.feed(&first, self.delimiter, fields) {
            self.recycle(first);
            return Next::Record { line };
        }
        let field = fields.len();
        let mut held = Vec::new();
        let mut held_bytes = 0;
        let why = loop {
            let next = match self.next_line() {
                Ok(Some(next)) => next,
                Ok(None) => break Unclosed::EndOfFile,
                Err(error) => {
                    // Re-read what was held first; the error comes after it.
                    self.error = Some(error);
                    break Unclosed::EndOfFile;
                }
            };
            held_bytes += next.bytes.len();
            let too_long =
                held.len() >= MAX_CONTINUATION_LINES || held_bytes > MAX_CONTINUATION_BYTES;
            let own_row = self.is_row_of_its_own(&next);
            if too_long || own_row {
                held.push(next);
                break if own_row {
                    Unclosed::NextRow
                } else {
                    Unclosed::TooLong
                };
            }
            let open = scan.feed(&next, self.delimiter, fields);
            held.push(next);
            if !open {
                self.recycle(first);
                for l in held {
                    self.recycle(l);
                }
                return Next::Record { line };
            }
        };
        fields.clear();
        self.recycle(first);
        for l in held.into_iter().rev() {
            self.replay.push_front(l);
        }
        Next::Unclosed { line, field, why }
    }

    /// Would `line`, read from its start, be a complete row of the file's width?
    fn is_row_of_its_own(&mut self, line: &Line) -> bool {
        let Some(width) = self.row_width else {
            // The header: nothing to compare with; only the bounds apply.
            return false;
        };
        if width < 2 {
            // A one-column list of identifiers has no multi-line values.
            return true;
        }
        self.alone.clear();
        let mut scan = Scan::default();
        let open = scan.feed(line, self.delimiter, &mut self.alone);
        !open && !scan.stray_quote && self.alone.len() >= width
    }

    fn recycle(&mut self, line: Line) {
        // A few spares are enough: lines are finished in the order they are read.
        if self.spare.len() < 8 {
            self.spare.push(line.bytes);
        }
    }

    fn next_line(&mut self) -> io::Result<Option<Line>> {
        if let Some(line) = self.replay.pop_front() {
            return Ok(Some(line));
        }
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        let content = read_line(&mut *self.reader, &mut bytes)?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let number = self.next_number;
        self.next_number += 1;
        Ok(Some(Line {
            number,
            bytes,
            content,
        }))
    }
}

/// Appends one physical line to `bytes`, line end included, and returns the length
/// without it. A line ends at `\n`, `\r\n` or a lone `\r` (Excel's "CSV (Macintosh)").
fn read_line(reader: &mut dyn BufRead, bytes: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(bytes.len());
        }
        match chunk.iter().position(|b| matches!(b, b'\n' | b'\r')) {
            Some(i) => {
                let end = chunk[i];
                bytes.extend_from_slice(&chunk[..=i]);
                reader.consume(i + 1);
                let content = bytes.len() - 1;
                if end == b'\r' && reader.fill_buf()?.first() == Some(&b'\n') {
                    bytes.push(b'\n');
                    reader.consume(1);
                }
                return Ok(content);
            }
            None => {
                let n = chunk.len();
                bytes.extend_from_slice(chunk);
                reader.consume(n);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted field: it closes the field, or escapes a second one.
    QuoteInQuoted,
}

/// The field parser's state across the lines of one record.
#[derive(Debug, Default)]
struct Scan {
    state: State,
    /// A quote that neither opened nor closed a quoted field: text, as csv-core reads
    /// it, but a sign that the line is the tail of a value and not a row of its own.
    stray_quote: bool,
}

impl Scan {
    /// Reads one line's fields into `fields`; `true` when the line ends inside a quoted
    /// field, so the record goes on over the next line (the line end is then text).
    fn feed(&mut self, line: &Line, delimiter: u8, fields: &mut Fields) -> bool {
        let text = line.content();
        let mut i = 0;
        while i < text.len() {
            let rest = &text[i..];
            match self.state {
                // The order of the tests is csv-core's, which matters when the
                // delimiter is itself a quote (`sep="`).
                State::StartField => {
                    if rest[0] == b'"' {
                        self.state = State::InQuoted;
                        i += 1;
                    } else if rest[0] == delimiter {
                        fields.end_field();
                        i += 1;
                    } else {
                        self.state = State::InField;
                    }
                }
                State::InField => {
                    let run = rest.iter().position(|b| *b == delimiter);
                    let value = &rest[..run.unwrap_or(rest.len())];
                    self.stray_quote |= value.contains(&b'"');
                    fields.bytes.extend_from_slice(value);
                    i += value.len();
                    if run.is_some() {
                        fields.end_field();
                        self.state = State::StartField;
                        i += 1;
                    }
                }
                State::InQuoted => {
                    let run = rest.iter().position(|b| *b == b'"');
                    let value = &rest[..run.unwrap_or(rest.len())];
                    fields.bytes.extend_from_slice(value);
                    i += value.len();
                    if run.is_some() {
                        self.state = State::QuoteInQuoted;
                        i += 1;
                    }
                }
                State::QuoteInQuoted => {
                    if rest[0] == b'"' {
                        fields.bytes.push(b'"');
                        self.state = State::InQuoted;
                        i += 1;
                    } else if rest[0] == delimiter {
                        fields.end_field();
                        self.state = State::StartField;
                        i += 1;
                    } else {
                        // `"ab"cd`: the text after the closing quote joins the field.
                        self.stray_quote = true;
                        self.state = State::InField;
                    }
                }
            }
        }
        if self.state == State::InQuoted {
            fields.bytes.extend_from_slice(line.end());
            return true;
        }
        fields.end_field();
        self.state = State::StartField;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every outcome of reading `data` with `width` as the header's field count:
    /// `(line, fields)` for records, `(line, ["unclosed <field>"])` for a broken one.
    fn read(data: &str, width: usize) -> Vec<(u64, Vec<String>)> {
        let reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(data.as_bytes().to_vec()));
        let mut records = Records::new(reader, b',');
        records.set_row_width(width);
        let mut fields = Fields::default();
        let mut out = vec![];
        loop {
            match records.next_record(&mut fields) {
                Next::Record { line } => out.push((
                    line,
                    fields
                        .iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect(),
                )),
                Next::Unclosed { line, field, .. } => {
                    out.push((line, vec![format!("unclosed {field}")]))
                }
                Next::Error { error, .. } => panic!("{error}"),
                Next::End => return out,
            }
        }
    }

    fn rows(want: &[(u64, &[&str])]) -> Vec<(u64, Vec<String>)> {
        want.iter()
            .map(|(l, f)| (*l, f.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn fields_follow_the_csv_crate_grammar() {
        let got = read("a,\"b,c\",\"d\"\"e\",f\"g,\"h\"i,,\n", 2);
        let want = rows(&[(1, &["a", "b,c", "d\"e", "f\"g", "hi", "", ""])]);
        assert_eq!(got, want);
    }

    #[test]
    fn a_multi_line_notes_field_is_still_one_row() {
        for eol in ["\n", "\r\n", "\r"] {
            let data = format!("SN1,\"one{eol}two, three{eol}four\",iOS{eol}SN2,x,iOS{eol}");
            let got = read(&data, 3);
            let notes = format!("one{eol}two, three{eol}four");
            assert_eq!(
                got,
                rows(&[(1, &["SN1", &notes, "iOS"]), (4, &["SN2", "x", "iOS"])]),
                "{eol:?}"
            );
        }
    }

    #[test]
    fn a_multi_line_first_column_is_one_row() {
        // The closing line `b",SN1,iOS` splits into three fields on its own, but its
        // quote is stray: it is the tail of a value.
        let got = read("\"a\nb\",SN1,iOS\nc,SN2,iOS\n", 3);
        assert_eq!(
            got,
            rows(&[(1, &["a\nb", "SN1", "iOS"]), (3, &["c", "SN2", "iOS"])])
        );
    }

    #[test]
    fn an_unclosed_quote_costs_its_own_line_only() {
        let got = read("SN1,\"Kasse,iOS\nSN2,b,iOS\nSN3,\"c, d\",iOS\n", 3);
        assert_eq!(
            got,
            rows(&[
                (1, &["unclosed 1"]),
                (2, &["SN2", "b", "iOS"]),
                (3, &["SN3", "c, d", "iOS"])
            ])
        );
    }

    #[test]
    fn a_quote_closed_many_lines_later_swallows_no_rows() {
        let mut data = String::from("SN0,\"open,iOS\n");
        for i in 1..20 {
            data.push_str(&format!("SN{i},n{i},iOS\n"));
        }
        data.push_str("SN20,close\",iOS\n");
        let got = read(&data, 3);
        assert_eq!(got.len(), 21);
        assert_eq!(got[0], (1, vec!["unclosed 1".to_string()]));
        assert_eq!(got[19].1[0], "SN19");
        // The line with the stray closing quote is read as the row it is.
        assert_eq!(
            got[20],
            (21, vec!["SN20".into(), "close\"".into(), "iOS".into()])
        );
    }

    #[test]
    fn a_quote_never_closed_before_the_end_of_the_file_is_unclosed() {
        assert_eq!(
            read("SN1,a,iOS\nSN2,\"b", 3),
            rows(&[(1, &["SN1", "a", "iOS"]), (2, &["unclosed 1"])])
        );
        // Lines too short to be rows are held, and read again after the verdict.
        assert_eq!(
            read("SN1,\"b\nx\n\ny", 3),
            rows(&[(1, &["unclosed 1"]), (2, &["x"]), (4, &["y"])])
        );
    }

    #[test]
    fn in_a_one_column_file_any_continuation_is_an_unclosed_quote() {
        assert_eq!(
            read("\"SN1\nSN2\nSN3\n", 1),
            rows(&[(1, &["unclosed 0"]), (2, &["SN2"]), (3, &["SN3"])])
        );
    }

    #[test]
    fn a_quote_running_over_a_thousand_short_lines_is_unclosed() {
        let mut data = String::from("SN0,\"open\n");
        for _ in 0..1500 {
            data.push_str("x\n");
        }
        let got = read(&data, 3);
        assert_eq!(got.len(), 1501);
        assert_eq!(got[0].1, ["unclosed 1"]);
        assert!(got[1..].iter().all(|(_, f)| f == &["x"]));
    }

    #[test]
    fn empty_lines_are_skipped_and_counted_as_lines() {
        assert_eq!(
            read("a\n\n\r\n\rb\r\n", 1),
            rows(&[(1, &["a"]), (5, &["b"])])
        );
    }

    proptest! {
        /// With no unclosed quote the records are the csv crate's, line for line.
        #[test]
        fn records_match_the_csv_crate(
            values in proptest::collection::vec("[a-c,\" \r\n]{0,6}", 1..40),
            quote_all in any::<bool>(),
        ) {
            let mut data = String::new();
            for (i, v) in values.iter().enumerate() {
                // A quote inside an unquoted value is text, as in the csv crate.
                let quoted = quote_all || v.contains([',', '\r', '\n']) || v.starts_with('"');
                if quoted {
                    data.push_str(&format!("\"{}\"", v.replace('"', "\"\"")));
                } else {
                    data.push_str(v);
                }
                data.push_str(if i % 3 == 2 { "\n" } else { "," });
            }
            let mut csv = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(data.as_bytes());
            let want: Vec<Vec<String>> = csv
                .byte_records()
                .map(|r| r.map(|r| r.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect()))
                .collect::<Result<_, _>>()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            // Width 1000: no line is ever a row of its own, so quotes are followed
            // exactly as the csv crate follows them.
            let got: Vec<Vec<String>> = read(&data, 1000).into_iter().map(|(_, f)| f).collect();
            prop_assert_eq!(got, want);
        }
    }
}
