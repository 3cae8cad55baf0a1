//! A device as a rehearsal's saved tenant (`<report>.sim.json`) writes it: every
//! property the simulator answers with, so a reloaded tenant answers as before.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::generate::FactsPool;
use super::{Device, Inventory};

/// One managed device, as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedDevice {
    pub id: String,
    #[serde(rename = "azureADDeviceId")]
    pub azure_ad_device_id: String,
    pub device_name: String,
    pub serial_number: String,
    pub user_principal_name: String,
    pub imei: String,
    pub enrolled_days_ago: u16,
    pub operating_system: String,
    pub os_version: String,
    pub device_type: String,
    pub device_enrollment_type: String,
    pub management_agent: String,
    pub managed_device_owner_type: String,
    pub manufacturer: String,
    pub model: String,
}

impl SavedDevice {
    pub fn of(device: &Device) -> SavedDevice {
        let f = &device.facts;
        SavedDevice {
            id: device.id.to_string(),
            azure_ad_device_id: device.azure_ad_device_id.to_string(),
            device_name: device.device_name.to_string(),
            serial_number: device.serial_number.to_string(),
            user_principal_name: device.user_principal_name.to_string(),
            imei: device.imei.to_string(),
            enrolled_days_ago: device.enrolled_days_ago,
            operating_system: f.operating_system.to_string(),
            os_version: f.os_version.to_string(),
            device_type: f.device_type.to_string(),
            device_enrollment_type: f.enrollment_type.to_string(),
            management_agent: f.management_agent.to_string(),
            managed_device_owner_type: f.owner_type.to_string(),
            manufacturer: f.manufacturer.to_string(),
            model: f.model.to_string(),
        }
    }
}

impl Inventory {
    /// The devices a saved tenant lists, in its order; support is decided again by the
    /// rules, as for any inventory. A device whose ids are not GUIDs is an error
    /// naming it (the file was edited).
    pub fn from_saved(saved: &[SavedDevice]) -> Result<Inventory, String> {
        let mut pool = FactsPool::default();
        let guid = |text: &str| {
            Uuid::parse_str(text).map_err(|_| format!("'{text}' is not a device id (a GUID)"))
        };
        let devices = saved
            .iter()
            .map(|d| -> Result<Device, String> {
                Ok(Device {
                    id: guid(&d.id)?,
                    azure_ad_device_id: guid(&d.azure_ad_device_id)?,
                    device_name: d.device_name.as_str().into(),
                    serial_number: d.serial_number.as_str().into(),
                    user_principal_name: d.user_principal_name.as_str().into(),
                    imei: d.imei.as_str().into(),
                    enrolled_days_ago: d.enrolled_days_ago,
                    facts: pool.get([
                        &d.operating_system,
                        &d.os_version,
                        &d.device_type,
                        &d.device_enrollment_type,
                        &d.management_agent,
                        &d.managed_device_owner_type,
                        &d.manufacturer,
                        &d.model,
                    ]),
                })
            })
            .collect::<Result<Vec<Device>, String>>()?;
        Ok(Inventory::from_devices(devices))
    }

    /// Every device, as saved.
    pub fn saved(&self) -> Vec<SavedDevice> {
        self.devices().iter().map(SavedDevice::of).collect()
    }
}
