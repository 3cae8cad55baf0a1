//! Which row acted on each Intune device in this run.

use std::collections::HashMap;

/// Which row acted on each device: about 24 bytes a device, so a run's memory stays
/// nearly flat however many devices it holds.
#[derive(Default)]
pub(super) struct Claims {
    by_device: HashMap<u64, (u32, u64)>,
    sources: Vec<String>,
}

impl Claims {
    /// `None` after recording `(source, row)` for `id`; the earlier row if `id` was
    /// claimed before.
    pub(super) fn claim(&mut self, id: &str, source: &str, row: u64) -> Option<String> {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        id.hash(&mut h);
        let key = h.finish();
        if let Some((file, earlier)) = self.by_device.get(&key) {
            let name = self
                .sources
                .get(*file as usize)
                .map(String::as_str)
                .unwrap_or("?");
            return Some(format!("row {earlier} of {name}"));
        }
        let file = match self.sources.iter().position(|s| s == source) {
            Some(i) => i,
            None => {
                self.sources.push(source.to_owned());
                self.sources.len() - 1
            }
        };
        self.by_device.insert(key, (file as u32, row));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_row_for_a_device_names_the_first() {
        let mut claims = Claims::default();
        assert_eq!(claims.claim("0f1e-a", "a.csv", 2), None);
        assert_eq!(claims.claim("0f1e-b", "b.csv", 3), None);
        assert_eq!(
            claims.claim("0f1e-a", "b.csv", 9).as_deref(),
            Some("row 2 of a.csv")
        );
        assert_eq!(
            claims.claim("0f1e-b", "a.csv", 4).as_deref(),
            Some("row 3 of b.csv")
        );
    }
}
