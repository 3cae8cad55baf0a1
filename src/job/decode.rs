//! Turning a job file's bytes into text, the way Excel and MDM tools really write it.
//!
//! - A byte-order mark decides: UTF-8, UTF-16 LE or UTF-16 BE (Excel's "Unicode text",
//!   Windows PowerShell 5.1's `Out-File`).
//! - Without a mark, UTF-16 is recognised by its zero bytes; text that is valid UTF-8 is
//!   UTF-8. Anything else is in a legacy code page, guessed from its bytes
//!   ([`super::legacy`]): Windows-1252, 1250, 1251, GBK, Shift_JIS, ... or the OEM pages
//!   850 and 437 of Excel's "CSV (MS-DOS)". `--encoding` overrides the guess.
//! - Every reader hands out UTF-8: UTF-16 and legacy pages are transcoded as they are
//!   read, so the CSV and JSON readers only ever see UTF-8. A UTF-8 file whose head was
//!   valid but that holds a stray non-UTF-8 byte further on falls back to
//!   Windows-1252 per field (see [`field_text`]), so one stray byte mid-file spoils one
//!   value, not the file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};
use std::path::Path;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::JobError;
use super::legacy::{self, Guess, OemPage, OemReader};

/// How much of a file is read up front to recognise its encoding and dialect.
pub const SNIFF_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8, with or without a BOM; invalid bytes fall back to Windows-1252 per field.
    Utf8,
    Utf16Le,
    Utf16Be,
    /// A legacy code page encoding_rs decodes: Windows-125x, GBK, Shift_JIS, ...
    Legacy(&'static Encoding),
    /// An OEM (MS-DOS) code page: Excel's "CSV (MS-DOS)".
    Oem(OemPage),
}

impl TextEncoding {
    pub const WINDOWS_1252: TextEncoding = TextEncoding::Legacy(WINDOWS_1252);

    pub fn label(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Utf16Le => "UTF-16 LE",
            TextEncoding::Utf16Be => "UTF-16 BE",
            TextEncoding::Oem(OemPage::Cp437) => "OEM 437 (MS-DOS, US)",
            TextEncoding::Oem(OemPage::Cp850) => "OEM 850 (MS-DOS, Western Europe)",
            TextEncoding::Legacy(e) => match e.name() {
                "windows-874" => "Windows-874 (Thai)",
                "windows-1250" => "Windows-1250 (Central Europe)",
                "windows-1251" => "Windows-1251 (Cyrillic)",
                "windows-1252" => "Windows-1252 (Western Europe)",
                "windows-1253" => "Windows-1253 (Greek)",
                "windows-1254" => "Windows-1254 (Turkish)",
                "windows-1255" => "Windows-1255 (Hebrew)",
                "windows-1256" => "Windows-1256 (Arabic)",
                "windows-1257" => "Windows-1257 (Baltic)",
                "windows-1258" => "Windows-1258 (Vietnamese)",
                "GBK" => "GBK (GB18030, Simplified Chinese)",
                "gb18030" => "GB18030 (Simplified Chinese)",
                "Shift_JIS" => "Shift_JIS (Japanese)",
                "Big5" => "Big5 (Traditional Chinese)",
                "EUC-KR" => "EUC-KR (Korean)",
                other => other,
            },
        }
    }

    /// Is the text read without a guess: Unicode, which every character survives?
    pub fn is_unicode(self) -> bool {
        matches!(
            self,
            TextEncoding::Utf8 | TextEncoding::Utf16Le | TextEncoding::Utf16Be
        )
    }

    /// `--encoding NAME`: a WHATWG label (`windows-1250`, `shift_jis`, `gbk`, `latin1`,
    /// ...), a Windows code page number (`1251`, `cp1251`, `cp932`) or an OEM page
    /// (`437`, `cp850`, `ibm850`, `oem850`).
    pub fn from_name(name: &str) -> Option<TextEncoding> {
        let key: String = name
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| !matches!(c, ' ' | '_'))
            .collect();
        let number = key
            .strip_prefix("cp")
            .or_else(|| key.strip_prefix("ibm"))
            .or_else(|| key.strip_prefix("oem"))
            .or_else(|| key.strip_prefix("dos"))
            .or_else(|| key.strip_prefix("windows-"))
            .or_else(|| key.strip_prefix("windows"))
            .unwrap_or(&key)
            .trim_start_matches('-');
        let by_number = match number {
            "437" => Some(TextEncoding::Oem(OemPage::Cp437)),
            "850" => Some(TextEncoding::Oem(OemPage::Cp850)),
            "65001" => Some(TextEncoding::Utf8),
            "1200" => Some(TextEncoding::Utf16Le),
            "1201" => Some(TextEncoding::Utf16Be),
            "932" => Encoding::for_label(b"shift_jis").map(TextEncoding::Legacy),
            "936" => Encoding::for_label(b"gbk").map(TextEncoding::Legacy),
            "949" => Encoding::for_label(b"euc-kr").map(TextEncoding::Legacy),
            "950" => Encoding::for_label(b"big5").map(TextEncoding::Legacy),
            "54936" => Encoding::for_label(b"gb18030").map(TextEncoding::Legacy),
            n if n.len() >= 3 && n.bytes().all(|b| b.is_ascii_digit()) => {
                Encoding::for_label(format!("windows-{n}").as_bytes()).map(TextEncoding::Legacy)
            }
            _ => None,
        };
        if by_number.is_some() {
            return by_number;
        }
        let encoding = match key.as_str() {
            "utf16" | "unicode" => return Some(TextEncoding::Utf16Le),
            "sjis" | "shiftjis" => SHIFT_JIS_LABEL,
            other => other,
        };
        let found = Encoding::for_label(name.trim().as_bytes())
            .or_else(|| Encoding::for_label(encoding.as_bytes()))?;
        match found {
            e if e == UTF_8 => Some(TextEncoding::Utf8),
            e if e == UTF_16LE => Some(TextEncoding::Utf16Le),
            e if e == UTF_16BE => Some(TextEncoding::Utf16Be),
            e if e.name() == "replacement" || e.name() == "x-user-defined" => None,
            e => Some(TextEncoding::Legacy(e)),
        }
    }
}

const SHIFT_JIS_LABEL: &str = "shift_jis";

/// What `--encoding` accepts, for its error message.
pub const ENCODING_NAMES: &str = "utf-8, utf-16le, utf-16be, windows-1250 to windows-1258 \
     (or 1250, cp1252, ...), 437 or 850 (OEM, \"CSV (MS-DOS)\"), gbk, gb18030, shift_jis, \
     big5, euc-kr, or another WHATWG encoding label";

/// An opened job file: its encoding, a UTF-8 view of the first bytes for sniffing, and
/// a reader of the whole file as UTF-8 (see [`TextEncoding::Utf8`] for the one
/// exception).
pub struct TextSource {
    pub encoding: TextEncoding,
    /// The encoding was guessed from bytes that are not ASCII (not given by a BOM or
    /// `--encoding`): worth telling the user.
    pub guessed: bool,
    /// The file holds bytes outside ASCII (in its head).
    pub non_ascii: bool,
    /// The start of the file as text (lossy), for format and delimiter detection.
    pub head: String,
    /// The head is the whole file (it is shorter than [`SNIFF_BYTES`]), so its last line
    /// is not cut.
    pub head_is_whole: bool,
    /// The whole file as UTF-8, the BOM removed.
    pub reader: Box<dyn BufRead + Send>,
}

type Replay = Chain<Cursor<Vec<u8>>, File>;

/// Opens `path` as text; `name` is how messages name it, `forced` is `--encoding`.
pub fn open_text(
    path: &Path,
    name: &str,
    forced: Option<TextEncoding>,
) -> Result<TextSource, JobError> {
    let io_err = |e: io::Error| JobError::Io {
        path: name.to_owned(),
        message: e.to_string(),
    };
    let mut file = File::open(path).map_err(io_err)?;
    if file.metadata().map_err(io_err)?.is_dir() {
        return Err(JobError::Unreadable {
            path: name.to_owned(),
            why: "it is a directory, not a job file".into(),
        });
    }
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    (&mut file)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(io_err)?;
    let unreadable = |why: &str| JobError::Unreadable {
        path: name.to_owned(),
        why: why.to_string(),
    };
    let head_is_whole = prefix.len() < SNIFF_BYTES;
    let non_ascii = !prefix.is_ascii();
    let (encoding, bom_len, guessed) = match forced {
        // A byte-order mark is no guess: it wins over `--encoding`, with a word.
        Some(encoding) => match bom(&prefix) {
            Some((marked, len)) if marked != encoding => {
                super::notice::warn(format!(
                    "{name}: the file starts with a {} byte-order mark, so it is read as {}, \
                     not as --encoding {}",
                    marked.label(),
                    marked.label(),
                    encoding.label()
                ));
                (marked, len, false)
            }
            Some((marked, len)) => (marked, len, false),
            None => (encoding, 0, false),
        },
        None => {
            let (encoding, bom_len) = detect_encoding(&prefix, head_is_whole);
            (encoding, bom_len, !encoding.is_unicode())
        }
    };
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
    let replay: Replay = Cursor::new(prefix).chain(file);
    let mut reader = BufReader::with_capacity(64 * 1024, replay);
    if bom_len > 0 {
        // `consume` only skips bytes already buffered: on a fresh reader it would skip
        // nothing and the JSON parser would meet the BOM.
        reader.fill_buf().map_err(io_err)?;
        reader.consume(bom_len);
    }
    let transcoded = |enc: &'static Encoding, reader| -> Box<dyn BufRead + Send> {
        Box::new(BufReader::with_capacity(
            64 * 1024,
            DecodeReaderBytesBuilder::new()
                .encoding(Some(enc))
                .bom_sniffing(false)
                .build(reader),
        ))
    };
    let reader: Box<dyn BufRead + Send> = match encoding {
        TextEncoding::Utf8 => Box::new(reader),
        TextEncoding::Oem(page) => Box::new(BufReader::with_capacity(
            64 * 1024,
            OemReader::new(reader, page),
        )),
        TextEncoding::Utf16Le => transcoded(UTF_16LE, reader),
        TextEncoding::Utf16Be => transcoded(UTF_16BE, reader),
        TextEncoding::Legacy(e) => transcoded(e, reader),
    };
    Ok(TextSource {
        encoding,
        guessed: guessed && non_ascii,
        non_ascii,
        head,
        head_is_whole,
        reader,
    })
}

fn bom(prefix: &[u8]) -> Option<(TextEncoding, usize)> {
    if prefix.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Some((TextEncoding::Utf8, 3))
    } else if prefix.starts_with(&[0xFF, 0xFE]) {
        Some((TextEncoding::Utf16Le, 2))
    } else if prefix.starts_with(&[0xFE, 0xFF]) {
        Some((TextEncoding::Utf16Be, 2))
    } else {
        None
    }
}

/// Returns the encoding and the length of its byte-order mark. `whole` is false when
/// `prefix` is only the start of the file.
pub fn detect_encoding(prefix: &[u8], whole: bool) -> (TextEncoding, usize) {
    if let Some(found) = bom(prefix) {
        return found;
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
        Err(e) if e.error_len().is_none() && !whole => (TextEncoding::Utf8, 0),
        Err(_) => match legacy::guess(prefix, whole) {
            Guess::Rs(e) => (TextEncoding::Legacy(e), 0),
            Guess::Oem(page) => (TextEncoding::Oem(page), 0),
        },
    }
}

/// `bytes` as text in `encoding` (lossy), without BOM handling.
pub fn decode_head(bytes: &[u8], encoding: TextEncoding) -> String {
    match encoding {
        TextEncoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        TextEncoding::Legacy(e) => e.decode_without_bom_handling(bytes).0.into_owned(),
        TextEncoding::Oem(page) => page.decode(bytes),
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
            detect_encoding(b"\xEF\xBB\xBFid,os", true),
            (TextEncoding::Utf8, 3)
        );
        assert_eq!(
            detect_encoding(&utf16le("id", true), true),
            (TextEncoding::Utf16Le, 2)
        );
        assert_eq!(
            detect_encoding(&utf16be("id"), true),
            (TextEncoding::Utf16Be, 2)
        );
    }

    #[test]
    fn utf16_without_bom_is_recognised_by_its_zero_bytes() {
        assert_eq!(
            detect_encoding(&utf16le("serialNumber;OS\r\nABC;iPhone\r\n", false), true),
            (TextEncoding::Utf16Le, 0)
        );
    }

    #[test]
    fn invalid_utf8_prefix_means_windows_1252() {
        assert_eq!(
            detect_encoding(b"deviceName\nJos\xe9's iPhone\n", true),
            (TextEncoding::WINDOWS_1252, 0)
        );
    }

    #[test]
    fn a_character_cut_at_the_end_of_the_sniffed_block_is_still_utf8() {
        let mut bytes = b"deviceName\nJos".to_vec();
        bytes.push(0xC3); // first half of "é"
        assert_eq!(detect_encoding(&bytes, false), (TextEncoding::Utf8, 0));
    }

    #[test]
    fn field_text_falls_back_to_windows_1252() {
        assert_eq!(field_text(b"Jos\xe9"), "José");
        assert_eq!(field_text("José".as_bytes()), "José");
        assert_eq!(field_text(b"\x80"), "€");
    }

    #[test]
    fn encoding_names_as_administrators_write_them() {
        let name = |n: &str| TextEncoding::from_name(n).map(TextEncoding::label);
        assert_eq!(name("UTF-8"), Some("UTF-8"));
        assert_eq!(name("utf-16le"), Some("UTF-16 LE"));
        assert_eq!(name("unicode"), Some("UTF-16 LE"));
        for n in ["1252", "cp1252", "Windows-1252", "windows1252", "latin1"] {
            assert_eq!(name(n), Some("Windows-1252 (Western Europe)"), "{n}");
        }
        assert_eq!(name("1250"), Some("Windows-1250 (Central Europe)"));
        assert_eq!(name("cp1251"), Some("Windows-1251 (Cyrillic)"));
        for n in ["850", "cp850", "IBM850", "oem850"] {
            assert_eq!(name(n), Some("OEM 850 (MS-DOS, Western Europe)"), "{n}");
        }
        assert_eq!(name("437"), Some("OEM 437 (MS-DOS, US)"));
        assert_eq!(name("gbk"), Some("GBK (GB18030, Simplified Chinese)"));
        assert_eq!(name("cp936"), Some("GBK (GB18030, Simplified Chinese)"));
        assert_eq!(name("GB18030"), Some("GB18030 (Simplified Chinese)"));
        for n in ["shift_jis", "Shift-JIS", "sjis", "cp932"] {
            assert_eq!(name(n), Some("Shift_JIS (Japanese)"), "{n}");
        }
        assert_eq!(name("klingon"), None);
        assert_eq!(name("replacement"), None);
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
            let (enc, bom) = detect_encoding(&le, true);
            prop_assert_eq!(enc, TextEncoding::Utf16Le);
            prop_assert_eq!(decode_head(&le[bom..], enc), s.clone());
            let be = utf16be(&s);
            let (enc, bom) = detect_encoding(&be, true);
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
