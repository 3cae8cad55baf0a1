//! `osVersion` is free text in Graph (`15.5`, `15.5.0`, `14`, `10.0.19045.6036`) and in
//! exports (`6,0` from a European Excel). Only the leading dotted numbers matter.
//!
//! Core module: it imports nothing of the crate.

use std::fmt;

/// The leading `major.minor` of an OS version; further parts are ignored by the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OsVersion {
    pub major: u32,
    pub minor: u32,
}

impl OsVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        OsVersion { major, minor }
    }

    /// Parses the leading numbers, separated by `.` or `,`. `None` if the text does not
    /// start with a number (after blanks and an optional `v`), or a number overflows.
    pub fn parse(text: &str) -> Option<OsVersion> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let mut parts = text.split(['.', ',']);
        let major = leading_number(parts.next()?)?;
        let minor = match parts.next() {
            // `6.x`: the minor part is not a number; the major still is.
            Some(p) if !p.is_empty() => leading_number(p).unwrap_or_default(),
            _ => 0,
        };
        Some(OsVersion { major, minor })
    }

    /// The third number of a dotted version, Windows' build (`10.0.19045.6036` →
    /// 19045). `None` when the text has no such number (`10.0`, `10,0`, `abc`).
    pub fn build(text: &str) -> Option<u32> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let mut parts = text.split(['.', ',']);
        leading_number(parts.next()?)?;
        parts.next()?;
        leading_number(parts.next()?)
    }
}

/// The digits at the start of `part`; the part must start with one.
fn leading_number(part: &str) -> Option<u32> {
    let digits: &str = &part[..part
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(part.len())];
    if digits.is_empty() {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for OsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn graph_and_export_spellings() {
        assert_eq!(OsVersion::parse("15.5"), Some(OsVersion::new(15, 5)));
        assert_eq!(OsVersion::parse("15.5.0"), Some(OsVersion::new(15, 5)));
        assert_eq!(OsVersion::parse("14"), Some(OsVersion::new(14, 0)));
        assert_eq!(
            OsVersion::parse("10.0.19045.6036"),
            Some(OsVersion::new(10, 0))
        );
        assert_eq!(OsVersion::parse("6,0"), Some(OsVersion::new(6, 0)));
        assert_eq!(OsVersion::parse("6,0,1"), Some(OsVersion::new(6, 0)));
        assert_eq!(OsVersion::parse(" 7.1.2 "), Some(OsVersion::new(7, 1)));
        assert_eq!(OsVersion::parse("6.x"), Some(OsVersion::new(6, 0)));
        assert_eq!(
            OsVersion::parse("17.2 (21C62)"),
            Some(OsVersion::new(17, 2))
        );
        assert_eq!(OsVersion::parse("v1.1"), Some(OsVersion::new(1, 1)));
    }

    #[test]
    fn unreadable_versions() {
        for text in ["", "abc", "unknown", ".5", "x.1", "99999999999999999999"] {
            assert_eq!(OsVersion::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_build_is_the_third_number() {
        assert_eq!(OsVersion::build("10.0.19045.6036"), Some(19045));
        assert_eq!(OsVersion::build("10.0.15254"), Some(15254));
        assert_eq!(OsVersion::build(" 10,0,22631 "), Some(22631));
        for text in [
            "",
            "10",
            "10.0",
            "10,0",
            "abc",
            "10.0.x",
            "x.0.19045",
            "10.0.",
        ] {
            assert_eq!(OsVersion::build(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_android_boundary_orders_correctly() {
        let seven = OsVersion::new(7, 0);
        assert!(OsVersion::parse("6.0.1").unwrap() < seven);
        assert!(OsVersion::parse("6,9").unwrap() < seven);
        assert!(OsVersion::parse("7").unwrap() >= seven);
        assert!(OsVersion::parse("7.0").unwrap() >= seven);
    }

    proptest! {
        #[test]
        fn dotted_and_comma_versions_parse_to_their_first_two_numbers(
            major in 0u32..100_000, minor in 0u32..100_000, rest in proptest::collection::vec(0u32..100_000, 0..3),
            comma in any::<bool>(),
        ) {
            let sep = if comma { "," } else { "." };
            let mut text = format!("{major}{sep}{minor}");
            for r in rest { text.push_str(&format!("{sep}{r}")); }
            prop_assert_eq!(OsVersion::parse(&text), Some(OsVersion::new(major, minor)));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = OsVersion::parse(&text);
        }
    }
}
