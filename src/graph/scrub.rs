//! What Graph, Entra ID or a front end before them answers is scrubbed of anything that
//! looks like a secret before it becomes a message (issue 17, point 9). Such text ends
//! up in the report, the ledger, the summary and the logs; a front end that refuses an
//! oversized request may echo the start of its `Authorization` header, and an Entra
//! error may quote the form it was sent.
//!
//! One function, [`scrub`], removes:
//! - what follows `Bearer ` (the token of an `Authorization` header);
//! - every word holding `eyJ` and a dot, or 10 characters long (the base64url of `{"`, how every JWT and so every
//!   Entra access token, ID token and client assertion starts;
//!   <https://datatracker.ietf.org/doc/html/rfc7519#section-3.1>);
//! - the value of `access_token`, `refresh_token`, `id_token`, `client_secret`,
//!   `client_assertion`, `assertion`, `code`, `code_verifier` and `password`, written
//!   `key=value` (a form or a query) or `"key": "value"` (JSON);
//! - long runs that look like key material: a word with a 16-character stretch of mixed
//!   case and digits (an Entra client secret, a base64 key), or 32 hex digits in a row.
//!
//! A GUID (a request id, a device id) is kept: its longest stretch is 12 hex digits.
//! Scrubbing errs on the side of removing: a word that only looks random is lost from a
//! message, which costs a little detail and never a secret.

/// What a removed secret reads as.
pub const REDACTED: &str = "[redacted]";

/// Keys whose value is a secret, in forms, queries and JSON (OAuth 2.0, RFC 6749
/// sections 4.1 and 5.1; client assertions, RFC 7521 section 4.2).
const SECRET_KEYS: [&str; 9] = [
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "client_assertion",
    "assertion",
    "code_verifier",
    "code",
    "password",
];

/// `text` without anything that looks like a bearer token, key or code.
pub fn scrub(text: &str) -> String {
    let text = redact_values(text);
    redact_words(&text)
}

/// Characters of a token, a key or base64: a "word" for [`redact_words`].
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '~' | '.' | '-')
}

/// Replaces each word that is, or holds, a secret.
fn redact_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let mut after_bearer = false;
    let flush = |word: &mut String, out: &mut String, after_bearer: &mut bool| {
        if word.is_empty() {
            return;
        }
        if *after_bearer || looks_secret(word) {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
        *after_bearer = word.eq_ignore_ascii_case("bearer");
        word.clear();
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_word_char(c) {
            word.push(c);
            continue;
        }
        let was_bearer = word.eq_ignore_ascii_case("bearer");
        flush(&mut word, &mut out, &mut after_bearer);
        out.push(c);
        // `Bearer <token>`: the next word is the token, whatever it looks like.
        after_bearer = was_bearer && c.is_whitespace();
        while after_bearer && chars.peek().is_some_and(|c| c.is_whitespace()) {
            out.extend(chars.next());
        }
    }
    flush(&mut word, &mut out, &mut after_bearer);
    out
}

/// A JWT, or a stretch of key material (see the module's comment).
fn looks_secret(word: &str) -> bool {
    // A JWT has dots between its parts; a front end's snippet may cut it before one.
    if word.contains("eyJ") && (word.contains('.') || word.len() >= 10) {
        return true;
    }
    word.split(['/', '.', '-', '~'])
        .any(|part| mixed_run(part) || hex_run(part) >= 32)
}

/// A stretch of 16 or more letters and digits holding a digit, a capital and a small
/// letter: how generated secrets look, and how words of English and identifiers in
/// Graph's messages (`Request_ResourceNotFound`, `deviceManagement`) do not.
fn mixed_run(part: &str) -> bool {
    part.split(['_', '+', '='])
        .filter(|run| run.len() >= 16)
        .any(|run| {
            run.chars().any(|c| c.is_ascii_digit())
                && run.chars().any(|c| c.is_ascii_uppercase())
                && run.chars().any(|c| c.is_ascii_lowercase())
        })
}

/// The longest run of hex digits in `part`.
fn hex_run(part: &str) -> usize {
    part.split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

/// Replaces the value after each secret key: `key=value`, `key: value`,
/// `"key":"value"`. The key must stand alone (`error_code` is not `code`).
fn redact_values(text: &str) -> String {
    // Lowering ASCII letters keeps every byte where it was.
    let lower = text.to_ascii_lowercase().into_bytes();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        let Some(key) = SECRET_KEYS
            .iter()
            .find(|k| lower[at..].starts_with(k.as_bytes()) && standalone(bytes, at, k.len()))
        else {
            at += 1;
            continue;
        };
        let mut i = at + key.len();
        // A closing quote of a JSON key, then blanks, then `=` or `:`.
        if bytes.get(i) == Some(&b'"') {
            i += 1;
        }
        while bytes.get(i).is_some_and(|b| *b == b' ') {
            i += 1;
        }
        if !matches!(bytes.get(i), Some(b'=' | b':')) {
            at += key.len();
            continue;
        }
        i += 1;
        while bytes.get(i).is_some_and(|b| *b == b' ') {
            i += 1;
        }
        let quoted = bytes.get(i) == Some(&b'"');
        if quoted {
            i += 1;
        }
        let start = i;
        while let Some(&b) = bytes.get(i) {
            let ends = if quoted {
                b == b'"'
            } else {
                b.is_ascii_whitespace() || matches!(b, b'&' | b',' | b';' | b'}' | b'"' | b'\'')
            };
            if ends {
                break;
            }
            // An escaped quote inside a JSON string is part of the value.
            i += if quoted && b == b'\\' { 2 } else { 1 };
        }
        let end = i.min(bytes.len());
        if end > start {
            // `start` and `end` sit next to ASCII bytes or the text's ends: char
            // boundaries.
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        at = end.max(at + 1);
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether the key at `at..at + len` is a word of its own, not part of a longer name.
fn standalone(bytes: &[u8], at: usize, len: usize) -> bool {
    let part_of_name = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let before = at.checked_sub(1).and_then(|i| bytes.get(i));
    !before.is_some_and(part_of_name) && !bytes.get(at + len).is_some_and(part_of_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const JWT: &str =
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2lnbmF0dXJlLXBhcnQ";

    #[test]
    fn a_bearer_token_and_a_jwt_are_removed() {
        let text = format!("400 Bad Request: header Authorization: Bearer {JWT} too large");
        let clean = scrub(&text);
        assert!(!clean.contains("eyJ"), "{clean}");
        assert!(
            clean.contains("Authorization: Bearer [redacted] too large"),
            "{clean}"
        );
        // An opaque token after Bearer goes too, whatever it looks like.
        assert_eq!(scrub("bearer  abc123"), "bearer  [redacted]");
        // A JWT cut short by a front end's snippet, without its dots.
        assert_eq!(scrub("echo: eyJ0eXAiOiJKV1Qi"), "echo: [redacted]");
    }

    #[test]
    fn secret_values_of_forms_and_json_are_removed() {
        let form = "grant_type=authorization_code&code=0.AXoA-secret&client_secret=abc~1.x&scope=y";
        assert_eq!(
            scrub(form),
            "grant_type=authorization_code&code=[redacted]&client_secret=[redacted]&scope=y"
        );
        let json = r#"{"refresh_token": "1.AbC \"q\" d", "error_code": "x", "Access_Token":"t"}"#;
        assert_eq!(
            scrub(json),
            r#"{"refresh_token": "[redacted]", "error_code": "x", "Access_Token":"[redacted]"}"#
        );
        assert_eq!(
            scrub("client_assertion: zz"),
            "client_assertion: [redacted]"
        );
    }

    #[test]
    fn key_material_goes_and_ids_and_words_stay() {
        let secret = "Xy8Q~aBcDeFgHiJkLmN0pQrStUvWxYz.12345678";
        assert_eq!(
            scrub(&format!("secret {secret} leaked")),
            "secret [redacted] leaked"
        );
        let hex = "0123456789abcdef0123456789abcdef";
        assert_eq!(scrub(hex), REDACTED);
        let kept = "Resource 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d' does not exist; \
                    Request_ResourceNotFound at /beta/deviceManagement/managedDevices \
                    (AADSTS7000215, 2026-01-02T03:04:05Z)";
        assert_eq!(scrub(kept), kept);
    }

    fn base64url(min: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[A-Za-z0-9_-]{{{min},40}}")).unwrap()
    }

    proptest! {
        #[test]
        fn the_scrubbed_text_never_holds_a_jwt_it_was_given(
            before in "\\PC{0,40}",
            after in "\\PC{0,40}",
            header in base64url(1),
            payload in base64url(1),
            signature in base64url(0),
            bearer in any::<bool>(),
        ) {
            let jwt = format!("eyJ{header}.{payload}.{signature}");
            let text = format!("{before}{}{jwt}{after}", if bearer { "Bearer " } else { "" });
            let clean = scrub(&text);
            prop_assert!(!clean.contains(&jwt), "{clean}");
        }

        #[test]
        fn scrubbing_never_panics_and_is_stable(text in "\\PC{0,200}") {
            let once = scrub(&text);
            prop_assert_eq!(scrub(&once), once.clone());
        }
    }
}
