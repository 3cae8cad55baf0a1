//! Device ids: Intune's managed device id and Entra's device id are GUIDs.

pub const NIL_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// A GUID in its usual 8-4-4-4-12 form, braces allowed; returned lower-case.
pub fn parse_guid(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let bytes = t.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    for (i, b) in bytes.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        };
        if !ok {
            return None;
        }
    }
    Some(t.to_ascii_lowercase())
}
