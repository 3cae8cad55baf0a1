//! A device row's values by [`Column`]: what a job file or Graph says of one device.

use super::Column;

/// One device row as the file gave it: values by [`Column`], trimmed, empty as `None`.
///
/// All values of a row live in one buffer (a row is read, judged and dropped a million
/// times in a big job: one allocation instead of one per column).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFields {
    text: String,
    /// `(start, end)` of each column's value in `text`; `start == end` is absent.
    spans: [(u32, u32); Column::ALL.len()],
}

impl DeviceFields {
    /// Room for `bytes` of values, so filling a row allocates once.
    pub fn with_capacity(bytes: usize) -> Self {
        DeviceFields {
            text: String::with_capacity(bytes),
            spans: Default::default(),
        }
    }

    pub fn get(&self, column: Column) -> Option<&str> {
        let (start, end) = self.spans[column.index()];
        (start != end).then(|| &self.text[start as usize..end as usize])
    }

    /// Keeps the first non-empty value when a file has two headers for one column
    /// (an export with both `Azure AD Device ID` and `Microsoft Entra Device ID`).
    pub fn set(&mut self, column: Column, value: &str) {
        let value = clean_value(value);
        let span = &mut self.spans[column.index()];
        // Values beyond 4 GiB per row cannot come from a file the readers accept.
        if span.0 == span.1
            && !value.is_empty()
            && self.text.len() + value.len() < u32::MAX as usize
        {
            let start = self.text.len() as u32;
            self.text.push_str(value);
            *span = (start, self.text.len() as u32);
        }
    }

    pub fn with(mut self, column: Column, value: &str) -> Self {
        self.set(column, value);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.spans.iter().all(|(s, e)| s == e)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Column, &str)> {
        Column::ALL
            .iter()
            .filter_map(|c| self.get(*c).map(|v| (*c, v)))
    }
}

/// Trims blanks and Excel's text-forcing formula `="0123"`.
fn clean_value(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix("=\"")
        .and_then(|v| v.strip_suffix('"'))
        .map(str::trim)
        .unwrap_or(value)
}
