//! A reader that turns "UTF-8 with a stray Windows-1252 byte" into valid UTF-8.
//!
//! CSV fields fall back to Windows-1252 one at a time ([`super::decode::field_text`]),
//! but a JSON parser reads the whole document: serde_json stops at the first byte that
//! is not UTF-8, and every device after it would be lost to one `unreadable_rest_of_file`
//! row. Files beyond the 64 KiB sniffed head are where this happens (an export edited
//! in an ANSI editor, one name pasted from elsewhere). This adapter keeps valid UTF-8 as
//! it is and decodes each invalid byte as Windows-1252 (which maps every byte), so the
//! value reads as its author meant (`Jos\xe9` is `José`) and the other devices stay.

use std::io::{self, BufRead, Read};

use encoding_rs::WINDOWS_1252;

pub struct Utf8Repair<R> {
    inner: R,
    /// Repaired text not yet handed out.
    out: Vec<u8>,
    pos: usize,
    /// The start of a character cut by the end of the inner buffer.
    carry: Vec<u8>,
}

impl<R: BufRead> Utf8Repair<R> {
    pub fn new(inner: R) -> Self {
        Utf8Repair {
            inner,
            out: Vec::new(),
            pos: 0,
            carry: Vec::new(),
        }
    }

    /// Refills `out` from the inner reader; `false` at the end of the input.
    fn refill(&mut self) -> io::Result<bool> {
        self.out.clear();
        self.pos = 0;
        let chunk = self.inner.fill_buf()?;
        if chunk.is_empty() {
            // A character cut by the end of the file is not UTF-8 after all.
            let rest = std::mem::take(&mut self.carry);
            push_1252(&mut self.out, &rest);
            return Ok(!self.out.is_empty());
        }
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(chunk);
        let consumed = chunk.len();
        self.inner.consume(consumed);
        let mut rest = &data[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    self.out.extend_from_slice(valid.as_bytes());
                    break;
                }
                Err(e) => {
                    let (valid, tail) = rest.split_at(e.valid_up_to());
                    self.out.extend_from_slice(valid);
                    match e.error_len() {
                        Some(bad) => {
                            push_1252(&mut self.out, &tail[..bad]);
                            rest = &tail[bad..];
                        }
                        None => {
                            self.carry = tail.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        Ok(true)
    }
}

fn push_1252(out: &mut Vec<u8>, bytes: &[u8]) {
    let text = WINDOWS_1252.decode_without_bom_handling(bytes).0;
    out.extend_from_slice(text.as_bytes());
}

impl<R: BufRead> Read for Utf8Repair<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::BufReader;

    /// Repairs `bytes` read through an inner buffer of `chunk` bytes.
    fn repaired(bytes: &[u8], chunk: usize) -> String {
        let inner = BufReader::with_capacity(chunk.max(1), bytes);
        let mut out = String::new();
        Utf8Repair::new(inner)
            .read_to_string(&mut out)
            .expect("repaired text is UTF-8");
        out
    }

    #[test]
    fn stray_windows_1252_bytes_become_their_characters() {
        assert_eq!(
            repaired(b"[\"Jos\xe9\", \"\x80\"]", 64),
            "[\"José\", \"€\"]"
        );
        assert_eq!(repaired("Köln \u{1F600}".as_bytes(), 64), "Köln \u{1F600}");
    }

    #[test]
    fn characters_cut_by_the_buffer_stay_whole() {
        let text = "ßéü€\u{1F600}".repeat(10);
        for chunk in 1..9 {
            assert_eq!(repaired(text.as_bytes(), chunk), text, "chunk {chunk}");
        }
    }

    #[test]
    fn a_character_cut_by_the_end_of_the_file_is_windows_1252() {
        assert_eq!(repaired(b"ab\xc3", 2), "abÃ");
    }

    proptest! {
        #[test]
        fn valid_utf8_passes_unchanged_in_any_chunking(s in "\\PC{0,80}", chunk in 1usize..16) {
            prop_assert_eq!(repaired(s.as_bytes(), chunk), s);
        }

        #[test]
        fn any_bytes_come_out_the_same_in_any_chunking(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            chunk in 1usize..16,
        ) {
            prop_assert_eq!(repaired(&bytes, chunk), repaired(&bytes, 4096));
        }
    }
}
