//! The bytes of each JSON value in an array or object, found without parsing them, so
//! that each element can be parsed on its own and one that serde_json rejects (nesting
//! deeper than its limit of 128, a number such as `1e999999`, a syntax error inside the
//! element) costs that element only.
//!
//! A streaming serde parse cannot do this: its first error ends the whole document and
//! every device after it is lost. The scanner here knows only what it needs to find the
//! comma or bracket that ends a value: strings (with their escapes, so a `"`, `,` or
//! `]` inside a string is text) and the nesting of `[` and `{`. When even that is broken
//! (a `]` where a `}` belongs, the file ending inside a value) the next element cannot
//! be found, and the caller stops with a [`Damage`].

use std::fmt;
use std::io::BufRead;

/// More than any device object has; beyond it a value is scanned but not kept, so a
/// file with a missing quote or bracket cannot make memory grow with the file.
pub const MAX_VALUE_BYTES: usize = 64 << 20;

/// Deeper than this is no device export but a hostile file: the closers due are kept
/// one byte per level, and this bounds them.
const MAX_DEPTH: usize = 1 << 20;

/// Where and how the structure is broken beyond finding the next element.
#[derive(Debug)]
pub struct Damage {
    pub line: u64,
    pub what: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "on line {}: {}", self.line, self.what)
    }
}

/// What ended a value: a comma (another value follows) or its container's closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Comma,
    Close,
}

/// One value as scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    pub end: End,
    /// The line its first byte is on.
    pub line: u64,
    /// Longer than [`MAX_VALUE_BYTES`]: the bytes were not kept.
    pub too_long: bool,
}

pub struct JsonScanner {
    reader: Box<dyn BufRead + Send>,
    /// The line of the next unread byte, for messages.
    line: u64,
}

fn shown(byte: Option<u8>) -> String {
    match byte {
        Some(b) if b.is_ascii_graphic() => format!("'{}'", b as char),
        Some(b) => format!("byte 0x{b:02x}"),
        None => "the end of the file".into(),
    }
}

impl JsonScanner {
    pub fn new(reader: Box<dyn BufRead + Send>) -> Self {
        JsonScanner { reader, line: 1 }
    }

    fn damage(&self, what: String) -> Damage {
        Damage {
            line: self.line,
            what,
        }
    }

    fn fill(&mut self) -> Result<&[u8], Damage> {
        let line = self.line;
        self.reader.fill_buf().map_err(|e| Damage {
            line,
            what: format!("reading stopped: {e}"),
        })
    }

    /// Skips whitespace and returns the next byte without taking it; `None` at the end.
    pub fn peek(&mut self) -> Result<Option<u8>, Damage> {
        loop {
            let chunk = self.fill()?;
            let Some(&first) = chunk.first() else {
                return Ok(None);
            };
            let blank = chunk
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(chunk.len());
            let lines = chunk[..blank].iter().filter(|b| **b == b'\n').count() as u64;
            self.reader.consume(blank);
            self.line += lines;
            if blank == 0 {
                return Ok(Some(first));
            }
        }
    }

    /// Takes `byte`, after any whitespace, or fails naming what came instead.
    pub fn expect(&mut self, byte: u8, context: &str) -> Result<(), Damage> {
        match self.peek()? {
            Some(b) if b == byte => {
                self.reader.consume(1);
                Ok(())
            }
            other => Err(self.damage(format!(
                "expected '{}' {context}, found {}",
                byte as char,
                shown(other)
            ))),
        }
    }

    /// Takes the `,` or `closer` that follows a value, after any whitespace.
    pub fn separator(&mut self, closer: u8, context: &str) -> Result<End, Damage> {
        match self.peek()? {
            Some(b',') => {
                self.take();
                Ok(End::Comma)
            }
            Some(b) if b == closer => {
                self.take();
                Ok(End::Close)
            }
            other => Err(self.damage(format!(
                "expected ',' or '{}' {context}, found {}",
                closer as char,
                shown(other)
            ))),
        }
    }

    /// Takes the byte [`JsonScanner::peek`] returned.
    pub fn take(&mut self) {
        self.reader.consume(1);
    }

    /// Reads an object member's name and its `:`.
    pub fn key(&mut self, out: &mut Vec<u8>) -> Result<String, Damage> {
        self.expect(b'"', "to start a property name")?;
        out.clear();
        out.push(b'"');
        let mut escaped = false;
        loop {
            let chunk = self.fill()?;
            if chunk.is_empty() {
                return Err(self.damage("the file ends inside a property name".into()));
            }
            let mut end = None;
            for (i, b) in chunk.iter().enumerate() {
                if escaped {
                    escaped = false;
                } else if *b == b'\\' {
                    escaped = true;
                } else if *b == b'"' {
                    end = Some(i);
                    break;
                }
            }
            let used = end.map_or(chunk.len(), |i| i + 1);
            out.extend_from_slice(&chunk[..used]);
            self.line += chunk[..used].iter().filter(|b| **b == b'\n').count() as u64;
            self.reader.consume(used);
            if end.is_some() {
                break;
            }
        }
        let key = serde_json::from_slice::<String>(out)
            .map_err(|e| self.damage(format!("a property name is not valid JSON ({e})")))?;
        self.expect(b':', "after a property name")?;
        Ok(key)
    }

    /// Reads one value of the container that `closer` ends into `out`: every byte up to
    /// the comma or `closer` that ends it at the container's own depth (that byte is
    /// taken, not kept). The value itself is not checked.
    pub fn value(&mut self, closer: u8, out: &mut Vec<u8>) -> Result<Scanned, Damage> {
        out.clear();
        self.peek()?;
        let line = self.line;
        let mut too_long = false;
        // Closers due, innermost last.
        let mut open: Vec<u8> = Vec::new();
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let chunk = self.fill()?;
            if chunk.is_empty() {
                return Err(self.damage(format!(
                    "the file ends inside the value that starts on line {line}"
                )));
            }
            let mut end = None;
            let mut broken = None;
            for (i, &b) in chunk.iter().enumerate() {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'[' => open.push(b']'),
                    b'{' => open.push(b'}'),
                    b']' | b'}' => match open.last() {
                        Some(due) if *due == b => {
                            open.pop();
                        }
                        Some(due) => {
                            broken = Some((i, *due));
                            break;
                        }
                        None if b == closer => {
                            end = Some((i, End::Close));
                            break;
                        }
                        None => {
                            broken = Some((i, closer));
                            break;
                        }
                    },
                    b',' if open.is_empty() => {
                        end = Some((i, End::Comma));
                        break;
                    }
                    _ => {}
                }
            }
            if open.len() > MAX_DEPTH {
                return Err(self.damage(format!(
                    "the value that starts on line {line} is nested more than {MAX_DEPTH} deep"
                )));
            }
            let used = match (end, broken) {
                (Some((i, _)), _) | (_, Some((i, _))) => i,
                _ => chunk.len(),
            };
            if !too_long && out.len() + used <= MAX_VALUE_BYTES {
                out.extend_from_slice(&chunk[..used]);
            } else {
                too_long = true;
                out.clear();
            }
            let lines = chunk[..used].iter().filter(|b| **b == b'\n').count() as u64;
            if let Some((i, due)) = broken {
                let found = chunk[i];
                self.line += lines;
                return Err(self.damage(format!(
                    "a '{}' where '{}' belongs",
                    found as char, due as char
                )));
            }
            self.line += lines;
            match end {
                Some((_, end)) => {
                    self.reader.consume(used + 1);
                    return Ok(Scanned {
                        end,
                        line,
                        too_long,
                    });
                }
                None => self.reader.consume(used),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scanner(text: &str, chunk: usize) -> JsonScanner {
        let bytes = text.as_bytes().to_vec();
        JsonScanner::new(Box::new(std::io::BufReader::with_capacity(
            chunk,
            std::io::Cursor::new(bytes),
        )))
    }

    /// The elements of the array `text` as the scanner splits them, or the damage.
    fn elements(text: &str, chunk: usize) -> Result<Vec<String>, String> {
        let mut s = scanner(text, chunk);
        s.expect(b'[', "").map_err(|d| d.to_string())?;
        let mut out = vec![];
        if s.peek().map_err(|d| d.to_string())? == Some(b']') {
            return Ok(out);
        }
        let mut buf = vec![];
        loop {
            let scanned = s.value(b']', &mut buf).map_err(|d| d.to_string())?;
            out.push(String::from_utf8_lossy(&buf).trim().to_string());
            if scanned.end == End::Close {
                return Ok(out);
            }
        }
    }

    #[test]
    fn strings_escapes_and_nesting_do_not_end_an_element() {
        let text = r#"[ {"a":"x,]}\"y"}, [1,[2,{}]], "s\\", 1e999999 , {"b": tru} ]"#;
        let want = [
            r#"{"a":"x,]}\"y"}"#,
            "[1,[2,{}]]",
            r#""s\\""#,
            "1e999999",
            r#"{"b": tru}"#,
        ];
        for chunk in [1, 3, 4096] {
            assert_eq!(elements(text, chunk).unwrap(), want, "chunk {chunk}");
        }
    }

    #[test]
    fn a_wrong_closer_or_the_end_of_the_file_is_damage() {
        assert_eq!(
            elements("[{\"id\": 1 ,, ]", 64).unwrap_err(),
            "on line 1: a ']' where '}' belongs"
        );
        assert_eq!(
            elements("[1,\n{\"a\": [2}]", 64).unwrap_err(),
            "on line 2: a '}' where ']' belongs"
        );
        assert_eq!(
            elements("[1,\n2", 64).unwrap_err(),
            "on line 2: the file ends inside the value that starts on line 2"
        );
    }

    #[test]
    fn deep_nesting_is_scanned_without_recursion() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let got = elements(&format!("[{deep}, 1]"), 4096).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], "1");
    }

    #[test]
    fn keys_are_unescaped() {
        let mut s = scanner(r#"  "dev\u0069ces" : [1]"#, 2);
        assert_eq!(s.key(&mut vec![]).unwrap(), "devices");
        assert_eq!(s.peek().unwrap(), Some(b'['));
    }

    proptest! {
        /// Whatever valid JSON the elements are, the scanner finds each one whole.
        #[test]
        fn any_array_of_json_values_splits_into_its_elements(
            values in proptest::collection::vec(any_json(), 0..12),
            chunk in 1usize..64,
        ) {
            let text = serde_json::to_string_pretty(&values).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let got = elements(&text, chunk).map_err(TestCaseError::fail)?;
            let parsed: Vec<serde_json::Value> = got
                .iter()
                .map(|e| serde_json::from_str(e))
                .collect::<Result<_, _>>()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed, values);
        }
    }

    fn any_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z,\\[\\]{}\"\\\\:é]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z\"]{0,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
