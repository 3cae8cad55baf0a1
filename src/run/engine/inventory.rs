//! Lookups at the cost of pages: when a job needs many lookups, the tenant's managed
//! devices are read once (`$select` of the rule fields, 1000 per page, beta) and rows
//! are joined locally by serial number, IMEI, Entra device id, name or Intune id,
//! ignoring case and blanks as the per-row lookup does.
//!
//! Memory grows with the tenant (the listing), not with the job. A listing can miss
//! devices in large tenants (docs/graph.md, "Finding devices"), so a row the listing
//! does not match is looked up by `$filter` before it is `not_found`.

use std::collections::HashMap;

use crate::device::Column;
use crate::graph::ManagedDevice;

/// When `auto` reads the inventory: this many rows to look up cost at least as many
/// requests as the inventory of a 100,000-device tenant (100 pages).
pub const AUTO_THRESHOLD: u64 = 100;

/// The tenant's devices and their join keys.
#[derive(Default)]
pub struct TenantIndex {
    devices: Vec<ManagedDevice>,
    by: HashMap<(Column, String), Vec<u32>>,
    /// Pages read, for the summary.
    pub pages: u64,
}

/// The key a value is matched by: blanks removed, lower case.
pub fn join_key(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

impl TenantIndex {
    /// Builds the index from devices.
    pub fn from_devices(devices: Vec<ManagedDevice>, pages: u64) -> TenantIndex {
        let mut by: HashMap<(Column, String), Vec<u32>> = HashMap::new();
        for (i, d) in devices.iter().enumerate() {
            let keys = [
                (Column::Id, Some(&d.id)),
                (Column::SerialNumber, d.serial_number.as_ref()),
                (Column::Imei, d.imei.as_ref()),
                (Column::AzureAdDeviceId, d.azure_ad_device_id.as_ref()),
                (Column::DeviceName, d.device_name.as_ref()),
            ];
            for (column, value) in keys {
                if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
                    by.entry((column, join_key(v))).or_default().push(i as u32);
                }
            }
        }
        TenantIndex { devices, by, pages }
    }

    /// The devices whose `column` holds `value`.
    pub fn matches(&self, column: Column, value: &str) -> Vec<&ManagedDevice> {
        let column = match column {
            Column::Id | Column::SerialNumber | Column::Imei | Column::AzureAdDeviceId => column,
            _ => Column::DeviceName,
        };
        self.by
            .get(&(column, join_key(value)))
            .map(|ix| ix.iter().map(|&i| &self.devices[i as usize]).collect())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, serial: &str, name: &str) -> ManagedDevice {
        serde_json::from_value(serde_json::json!({
            "id": id, "serialNumber": serial, "deviceName": name,
        }))
        .unwrap()
    }

    #[test]
    fn rows_join_ignoring_case_and_blanks() {
        let index = TenantIndex::from_devices(
            vec![
                device("a", "C02 XY1", "Ada's iPhone"),
                device("b", "F17Q", "twin"),
                device("c", "G55", "twin"),
            ],
            1,
        );
        assert_eq!(index.matches(Column::SerialNumber, "c02xy1")[0].id, "a");
        assert_eq!(index.matches(Column::Id, "A").len(), 1);
        assert_eq!(index.matches(Column::DeviceName, "TWIN").len(), 2);
        assert!(index.matches(Column::SerialNumber, "nope").is_empty());
        assert_eq!(index.len(), 3);
    }
}
