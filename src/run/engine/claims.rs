//! Which row acted on each Intune device in this run (and, resumed, in the runs before).

use std::collections::HashMap;

use super::super::ledger::RowKey;
use crate::spill::{Holder, SpillMap};

/// Which row acted on each device, by a 64-bit hash of its Intune id: a few thousand in
/// memory, the rest in a temporary file ([`SpillMap`]), so a run's memory stays flat
/// however many devices it holds.
#[derive(Default)]
pub(super) struct Claims {
    by_device: SpillMap,
    /// The file names, by [`RowKey::file`], for the message.
    sources: HashMap<u32, String>,
}

impl Claims {
    /// `None` after recording `key` for `id`; the earlier row if another row claimed
    /// `id` before. A row claiming again what it holds is no duplicate of itself. An
    /// error when the index's temporary file can no longer be read: the caller sends
    /// nothing it cannot check.
    pub(super) fn claim(
        &mut self,
        id: &str,
        key: RowKey,
        source: &str,
    ) -> std::io::Result<Option<String>> {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        id.hash(&mut h);
        let device = h.finish();
        self.sources
            .entry(key.file)
            .or_insert_with(|| source.to_owned());
        let here = Holder {
            file: key.file,
            row: key.row,
            sub: key.sub,
        };
        Ok(match self.by_device.claim(device, here)? {
            None => None,
            Some(earlier) if earlier == here => None,
            Some(earlier) => {
                let name = self
                    .sources
                    .get(&earlier.file)
                    .map(String::as_str)
                    .unwrap_or("?");
                Some(format!("row {} of {name}", earlier.row))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(claims: &mut Claims, id: &str, file: u32, row: u64, source: &str) -> Option<String> {
        claims.claim(id, RowKey::new(file, row), source).unwrap()
    }

    #[test]
    fn the_second_row_for_a_device_names_the_first() {
        let mut claims = Claims::default();
        assert_eq!(claim(&mut claims, "0f1e-a", 0, 2, "a.csv"), None);
        assert_eq!(claim(&mut claims, "0f1e-b", 1, 3, "b.csv"), None);
        assert_eq!(
            claim(&mut claims, "0f1e-a", 1, 9, "b.csv").as_deref(),
            Some("row 2 of a.csv")
        );
        assert_eq!(
            claim(&mut claims, "0f1e-b", 0, 4, "a.csv").as_deref(),
            Some("row 3 of b.csv")
        );
    }

    #[test]
    fn the_same_file_named_twice_keeps_its_rows_apart() {
        let mut claims = Claims::default();
        assert_eq!(claim(&mut claims, "d", 0, 2, "a.csv"), None);
        assert_eq!(
            claim(&mut claims, "d", 1, 2, "a.csv").as_deref(),
            Some("row 2 of a.csv")
        );
        assert_eq!(
            claim(&mut claims, "d", 0, 2, "a.csv"),
            None,
            "its own claim"
        );
    }

    #[test]
    fn claims_past_the_memory_limit_still_find_their_earlier_rows() {
        let mut claims = Claims {
            by_device: SpillMap::with_limit(8),
            sources: HashMap::new(),
        };
        for n in 0..100u64 {
            assert_eq!(
                claim(&mut claims, &format!("dev-{n}"), 0, n + 2, "a.csv"),
                None
            );
        }
        assert!(claims.by_device.spilled());
        assert_eq!(
            claim(&mut claims, "dev-40", 1, 7, "b.csv").as_deref(),
            Some("row 42 of a.csv")
        );
        assert_eq!(
            claim(&mut claims, "dev-40", 0, 42, "a.csv"),
            None,
            "its own claim"
        );
    }
}
