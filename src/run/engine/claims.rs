//! Which row acted on each Intune device in this run (and, resumed, in the runs before).

use std::collections::HashMap;

use super::super::ledger::RowKey;

/// Which row acted on each device: about 24 bytes a device, so a run's memory stays
/// nearly flat however many devices it holds.
#[derive(Default)]
pub(super) struct Claims {
    by_device: HashMap<u64, RowKey>,
    /// The file names, by [`RowKey::file`], for the message.
    sources: HashMap<u32, String>,
}

impl Claims {
    /// `None` after recording `key` for `id`; the earlier row if another row claimed
    /// `id` before. A row claiming again what it holds is no duplicate of itself.
    pub(super) fn claim(&mut self, id: &str, key: RowKey, source: &str) -> Option<String> {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        id.hash(&mut h);
        let device = h.finish();
        match self.by_device.get(&device) {
            Some(earlier) if *earlier == key => None,
            Some(earlier) => {
                let name = self
                    .sources
                    .get(&earlier.file)
                    .map(String::as_str)
                    .unwrap_or("?");
                Some(format!("row {} of {name}", earlier.row))
            }
            None => {
                self.sources
                    .entry(key.file)
                    .or_insert_with(|| source.to_owned());
                self.by_device.insert(device, key);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(file: u32, row: u64) -> RowKey {
        RowKey::new(file, row)
    }

    #[test]
    fn the_second_row_for_a_device_names_the_first() {
        let mut claims = Claims::default();
        assert_eq!(claims.claim("0f1e-a", key(0, 2), "a.csv"), None);
        assert_eq!(claims.claim("0f1e-b", key(1, 3), "b.csv"), None);
        assert_eq!(
            claims.claim("0f1e-a", key(1, 9), "b.csv").as_deref(),
            Some("row 2 of a.csv")
        );
        assert_eq!(
            claims.claim("0f1e-b", key(0, 4), "a.csv").as_deref(),
            Some("row 3 of b.csv")
        );
    }

    #[test]
    fn the_same_file_named_twice_keeps_its_rows_apart() {
        let mut claims = Claims::default();
        assert_eq!(claims.claim("d", key(0, 2), "a.csv"), None);
        assert_eq!(
            claims.claim("d", key(1, 2), "a.csv").as_deref(),
            Some("row 2 of a.csv")
        );
        assert_eq!(claims.claim("d", key(0, 2), "a.csv"), None, "its own claim");
    }
}
