//! Turning a job file's bytes into text, the way Excel and MDM tools really write it.
//!
//! - A byte-order mark decides: UTF-8, UTF-16 LE or UTF-16 BE (Excel's "Unicode text",
//!   Windows PowerShell 5.1's `Out-File`).
//! - Without a mark, UTF-16 is recognised by its zero bytes, otherwise the text is UTF-8
//!   where it is valid and Windows-1252 where it is not. That last choice is made per
//!   field (see [`field_text`]), so one stray byte mid-file spoils one value, not the file.
//! - Workbooks (`.xlsx`, `.xls`) and binary files are refused with a sentence saying so.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};
use std::path::Path;

use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::JobError;

/// How much of a file is read up front to recognise its encoding and dialect.
pub const SNIFF_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8, with or without a BOM; invalid bytes fall back to Windows-1252 per field.
    Utf8,
    /// The first 64 KiB were not UTF-8: an ANSI export from a Western-European Windows.
    Windows1252,
    Utf16Le,
    Utf16Be,
}

impl TextEncoding {
    pub fn label(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Windows1252 => "Windows-1252",
            TextEncoding::Utf16Le => "UTF-16 LE",
            TextEncoding::Utf16Be => "UTF-16 BE",
        }
    }
}

/// An opened job file: its encoding, a UTF-8 (or raw, see [`TextEncoding::Utf8`]) view of
/// the first bytes for sniffing, and a reader that starts again at the beginning.
pub struct TextSource {
    pub encoding: TextEncoding,
    /// The start of the file as text (lossy), for format and delimiter detection.
    pub head: String,
    /// The head is the whole file (it is shorter than [`SNIFF_BYTES`]), so its last line
    /// is not cut.
    pub head_is_whole: bool,
    /// The whole file; UTF-16 is transcoded to UTF-8, the BOM is removed.
    pub reader: Box<dyn BufRead + Send>,
}

type Replay = Chain<Cursor<Vec<u8>>, File>;

pub fn open_text(path: &Path) -> Result<TextSource, JobError> {
    let io_err = |e: io::Error| JobError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut file = File::open(path).map_err(io_err)?;
    if file.metadata().map_err(io_err)?.is_dir() {
        return Err(JobError::Unreadable {
            path: path.display().to_string(),
            why: "it is a directory, not a job file".into(),
        });
    }
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    (&mut file)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(io_err)?;
    let unreadable = |why: &str| JobError::Unreadable {
        path: path.display().to_string(),
        why: why.to_string(),
    };
    if let Some(why) = workbook_signature(&prefix) {
        return Err(unreadable(why));
    }
    let (encoding, bom_len) = detect_encoding(&prefix);
    let head = decode_head(&prefix[bom_len..], encoding);
    if head
        .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .is_empty()
    {
        return Err(unreadable("the file is empty"));
    }
    if looks_binary(&head) {
        return Err(unreadable(
            "it looks like a binary file, not CSV or JSON text",
        ));
    }
    let head_is_whole = prefix.len() < SNIFF_BYTES;
    let replay: Replay = Cursor::new(prefix).chain(file);
    let reader: Box<dyn BufRead + Send> = match encoding {
        TextEncoding::Utf16Le | TextEncoding::Utf16Be => {
            let enc = if encoding == TextEncoding::Utf16Le {
                UTF_16LE
            } else {
                UTF_16BE
            };
            Box::new(BufReader::with_capacity(
                64 * 1024,
                DecodeReaderBytesBuilder::new()
                    .encoding(Some(enc))
                    .bom_override(true)
                    .build(replay),
            ))
        }
        TextEncoding::Utf8 | TextEncoding::Windows1252 => {
            let mut reader = BufReader::with_capacity(64 * 1024, replay);
            if bom_len > 0 {
                // `consume` only skips bytes already buffered: on a fresh reader it
                // would skip nothing and the JSON parser would meet the BOM.
                reader.fill_buf().map_err(io_err)?;
                reader.consume(bom_len);
            }
            Box::new(reader)
        }
    };
    Ok(TextSource {
        encoding,
        head,
        head_is_whole,
        reader,
    })
}

/// Spreadsheets saved in their native format instead of CSV: the most common mistake.
fn workbook_signature(prefix: &[u8]) -> Option<&'static str> {
    if prefix.starts_with(b"PK\x03\x04") {
        Some(
            "it is a ZIP archive, most likely an Excel workbook (.xlsx): save it as CSV UTF-8 and try again",
        )
    } else if prefix.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        Some("it is an old Excel workbook (.xls): save it as CSV UTF-8 and try again")
    } else {
        None
    }
}

/// Returns the encoding and the length of its byte-order mark.
pub fn detect_encoding(prefix: &[u8]) -> (TextEncoding, usize) {
    if prefix.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return (TextEncoding::Utf8, 3);
    }
    if prefix.starts_with(&[0xFF, 0xFE]) {
        return (TextEncoding::Utf16Le, 2);
    }
    if prefix.starts_with(&[0xFE, 0xFF]) {
        return (TextEncoding::Utf16Be, 2);
    }
    // UTF-16 without a mark: ASCII-heavy text has a zero in every other byte.
    let sample = &prefix[..prefix.len().min(2048) & !1];
    if sample.len() >= 4 {
        let pairs = sample.len() / 2;
        let zero_odd = sample
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|b| **b == 0)
            .count();
        let zero_even = sample.iter().step_by(2).filter(|b| **b == 0).count();
        if zero_odd * 10 >= pairs * 7 && zero_even * 10 < pairs {
            return (TextEncoding::Utf16Le, 0);
        }
        if zero_even * 10 >= pairs * 7 && zero_odd * 10 < pairs {
            return (TextEncoding::Utf16Be, 0);
        }
    }
    match std::str::from_utf8(prefix) {
        Ok(_) => (TextEncoding::Utf8, 0),
        // Cut mid-character at the end of the sniffed block: still UTF-8.
        Err(e) if e.error_len().is_none() => (TextEncoding::Utf8, 0),
        Err(_) => (TextEncoding::Windows1252, 0),
    }
}

fn decode_head(bytes: &[u8], encoding: TextEncoding) -> String {
    match encoding {
        TextEncoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        TextEncoding::Windows1252 => WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
        TextEncoding::Utf16Le => UTF_16LE.decode_without_bom_handling(bytes).0.into_owned(),
        TextEncoding::Utf16Be => UTF_16BE.decode_without_bom_handling(bytes).0.into_owned(),
    }
}

/// Text has few control characters; a header line never holds a NUL.
///
/// A handful of stray control characters (a NUL pasted into one device name) is a
/// broken *row*, reported as `control_characters`, not a broken file: below
/// [`STRAY_CONTROLS`] the share rule does not apply, else a three-row file with one NUL
/// would be refused whole.
fn looks_binary(head: &str) -> bool {
    let first_line = head.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first_line.contains('\0') {
        return true;
    }
    let total = head.chars().count().max(1);
    let control = head
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n' | '\x0c'))
        .count();
    control > STRAY_CONTROLS && control * 100 > total
}

/// How many control characters a text file may hold before its share decides.
const STRAY_CONTROLS: usize = 8;

/// A field's text: UTF-8 where valid, otherwise Windows-1252 (which maps every byte).
pub fn field_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.into(),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

/// A CSV field of a file in `encoding`: a file whose head already showed it is
/// Windows-1252 is that throughout, even where two of its bytes happen to form valid
/// UTF-8 (`ß€` is `DF 80`, which UTF-8 reads as `߀`); otherwise [`field_text`].
pub fn field_text_in(bytes: &[u8], encoding: TextEncoding) -> std::borrow::Cow<'_, str> {
    match encoding {
        TextEncoding::Windows1252 => WINDOWS_1252.decode_without_bom_handling(bytes).0,
        _ => field_text(bytes),
    }
}

/// A whole line or document in a file whose prefix was Windows-1252.
pub fn transcode_1252(reader: Box<dyn BufRead + Send>) -> Box<dyn BufRead + Send> {
    Box::new(BufReader::new(
        DecodeReaderBytesBuilder::new()
            .encoding(Some(WINDOWS_1252))
            .build(reader),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utf16le(s: &str, bom: bool) -> Vec<u8> {
        let mut out = if bom { vec![0xFF, 0xFE] } else { vec![] };
        for unit in s.encode_utf16() {
            out.extend_from_slice(&unit.to_le_bytes());
        }
        out
    }

    fn utf16be(s: &str) -> Vec<u8> {
        let mut out = vec![0xFE, 0xFF];
        for unit in s.encode_utf16() {
            out.extend_from_slice(&unit.to_be_bytes());
        }
        out
    }

    #[test]
    fn boms_decide_the_encoding() {
        assert_eq!(
            detect_encoding(b"\xEF\xBB\xBFid,os"),
            (TextEncoding::Utf8, 3)
        );
        assert_eq!(
            detect_encoding(&utf16le("id", true)),
            (TextEncoding::Utf16Le, 2)
        );
        assert_eq!(detect_encoding(&utf16be("id")), (TextEncoding::Utf16Be, 2));
    }

    #[test]
    fn utf16_without_bom_is_recognised_by_its_zero_bytes() {
        assert_eq!(
            detect_encoding(&utf16le("serialNumber;OS\r\nABC;iPhone\r\n", false)),
            (TextEncoding::Utf16Le, 0)
        );
    }

    #[test]
    fn invalid_utf8_prefix_means_windows_1252() {
        assert_eq!(
            detect_encoding(b"deviceName\nJos\xe9's iPhone\n"),
            (TextEncoding::Windows1252, 0)
        );
    }

    #[test]
    fn a_character_cut_at_the_end_of_the_sniffed_block_is_still_utf8() {
        let mut bytes = b"deviceName\nJos".to_vec();
        bytes.push(0xC3); // first half of "é"
        assert_eq!(detect_encoding(&bytes), (TextEncoding::Utf8, 0));
    }

    #[test]
    fn field_text_falls_back_to_windows_1252() {
        assert_eq!(field_text(b"Jos\xe9"), "José");
        assert_eq!(field_text("José".as_bytes()), "José");
        assert_eq!(field_text(b"\x80"), "€");
    }

    #[test]
    fn a_windows_1252_file_decodes_bytes_that_look_like_utf8_as_windows_1252() {
        assert_eq!(field_text_in(b"\xdf\x80", TextEncoding::Windows1252), "ß€");
        assert_eq!(field_text_in(b"\xdf\x80", TextEncoding::Utf8), "߀");
        assert_eq!(field_text_in(b"Jos\xe9", TextEncoding::Utf8), "José");
    }

    #[test]
    fn binary_heads_are_recognised() {
        assert!(looks_binary("\0\0\0\u{1}\u{2}abc"));
        assert!(!looks_binary("id,serialNumber\r\n1,2\r\n"));
        let garbage: String = (0..200).map(|i| char::from((i % 7) as u8)).collect();
        assert!(looks_binary(&format!("id\n{garbage}")));
    }

    #[test]
    fn a_nul_in_one_field_of_a_small_file_is_a_row_problem_not_a_binary_file() {
        assert!(!looks_binary("id,deviceName\n1,ab\0cd\n2,ef\n"));
    }

    proptest! {
        #[test]
        fn utf16_round_trips_any_text(s in "[a-zA-Z0-9,;éüß€ \\r\\n]{1,200}") {
            let le = utf16le(&s, true);
            let (enc, bom) = detect_encoding(&le);
            prop_assert_eq!(enc, TextEncoding::Utf16Le);
            prop_assert_eq!(decode_head(&le[bom..], enc), s.clone());
            let be = utf16be(&s);
            let (enc, bom) = detect_encoding(&be);
            prop_assert_eq!(enc, TextEncoding::Utf16Be);
            prop_assert_eq!(decode_head(&be[bom..], enc), s);
        }

        #[test]
        fn field_text_never_panics_and_keeps_valid_utf8(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = field_text(&bytes);
            if let Ok(s) = std::str::from_utf8(&bytes) {
                prop_assert_eq!(text, s);
            }
        }
    }
}
