//! The tenant's managed devices: generated with a realistic platform mix
//! ([`Inventory::generate`]) or read from job files ([`Inventory::from_job_files`]).
//!
//! Stored compactly so that a 100,000-device tenant is cheap: the per-device strings are
//! boxed, and the platform facts (OS, version, device type, enrollment type, agent,
//! owner, model), of which a tenant has few distinct combinations, are shared through
//! one [`PlatformFacts`] per combination. Whether the device supports `resetPasscode`,
//! `remoteLock` and `rotateBitLockerKeys` is decided once per combination with
//! [`crate::rules`], so the simulator and the client always agree.
//!
//! `$filter` lookups use sorted `(hash, index)` lists per property rather than a map of
//! strings: 12 bytes a device a property, with a re-check of the real value.

mod from_jobs;
mod generate;
mod saved;

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::device::{Column, DeviceFields};
use crate::rules::{
    Action, ActionChoice, Classified, Family, Platform, RULES, Verdict, classify, judge,
};

use super::dice::hash_text;

pub use from_jobs::{InventoryError, JobTargets};
pub use saved::SavedDevice;

/// One managed device.
#[derive(Debug, Clone)]
pub struct Device {
    /// Intune's managed device id.
    pub id: Uuid,
    /// Entra's *deviceId*; nil for a device Entra does not know (EAS only).
    pub azure_ad_device_id: Uuid,
    /// Not unique: several devices may share a name (`Anna's iPhone`).
    pub device_name: Box<str>,
    /// How migrations usually identify a device.
    pub serial_number: Box<str>,
    /// The primary user, also `emailAddress` and `userDisplayName`.
    pub user_principal_name: Box<str>,
    /// Empty for devices without a cellular modem, as Graph answers.
    pub imei: Box<str>,
    /// Days between enrollment and the simulator's start, for `enrolledDateTime`.
    pub enrolled_days_ago: u16,
    /// Facts shared with every device of the same platform, version and model.
    pub facts: Arc<PlatformFacts>,
}

/// The platform facts of a device, shared between devices that have the same ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFacts {
    /// `operatingSystem`, free text in Graph.
    pub operating_system: Box<str>,
    /// `osVersion`, free text; the rules read its leading numbers.
    pub os_version: Box<str>,
    /// Graph beta's `deviceType`; absent from v1.0 answers.
    pub device_type: Box<str>,
    /// Graph beta's `deviceEnrollmentType` (v1.0 lacks the Android Enterprise values).
    pub enrollment_type: Box<str>,
    /// `managementAgent`; `eas` alone means not MDM-managed.
    pub management_agent: Box<str>,
    /// `managedDeviceOwnerType`: `company`, `personal` or `unknown`.
    pub owner_type: Box<str>,
    /// For realistic answers only.
    pub manufacturer: Box<str>,
    /// For realistic answers only.
    pub model: Box<str>,
    /// What `resetPasscode` does on this platform, decided by [`crate::rules`].
    pub support: Support,
    /// What `remoteLock` does on this platform and version ([`crate::rules::LOCK_RULES`]).
    pub lock_support: Support,
    /// What `rotateBitLockerKeys` does on this platform and version
    /// ([`crate::rules::BITLOCKER_RULES`]).
    pub rotation_support: Support,
}

/// What Intune does with a device action for a platform.
/// What a device "supports" of an action on users: none, it is no device action.
static USERS_NOT_DEVICES: Support = Support::Refused {
    detail: String::new(),
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Accepted (204) and carried out.
    Supported { platform: Platform, action: Action },
    /// Accepted (204) because the platform supports the action on other OS versions, then
    /// reported `notSupported` by the device (e.g. Android device administrator 7.0+).
    NotSupportedByDevice { platform: Platform },
    /// Refused with 400 by the service: the platform never supports it.
    Refused { detail: String },
}

impl PlatformFacts {
    /// Builds the facts from `[operatingSystem, osVersion, deviceType,
    /// deviceEnrollmentType, managementAgent, ownerType, manufacturer, model]` and decides
    /// support with the same rules the client uses.
    pub fn new(values: [&str; 8]) -> PlatformFacts {
        let [
            os,
            version,
            device_type,
            enrollment,
            agent,
            owner,
            maker,
            model,
        ] = values;
        let mut facts = PlatformFacts {
            operating_system: os.into(),
            os_version: version.into(),
            device_type: device_type.into(),
            enrollment_type: enrollment.into(),
            management_agent: agent.into(),
            owner_type: owner.into(),
            manufacturer: maker.into(),
            model: model.into(),
            support: Support::Refused {
                detail: String::new(),
            },
            lock_support: Support::Refused {
                detail: String::new(),
            },
            rotation_support: Support::Refused {
                detail: String::new(),
            },
        };
        let fields = facts.fields();
        facts.support = support_of(&fields);
        facts.lock_support = support_of_only(&fields, Action::RemoteLock);
        facts.rotation_support = support_of_only(&fields, Action::RotateBitLockerKeys);
        facts
    }

    /// What the action of `family` does on this platform.
    pub fn support_for(&self, family: Family) -> &Support {
        match family {
            Family::Passcode => &self.support,
            Family::Lock => &self.lock_support,
            Family::BitLocker => &self.rotation_support,
            Family::Sessions => &USERS_NOT_DEVICES,
        }
    }

    /// The facts as a job row would carry them, for [`crate::rules::classify`].
    pub fn fields(&self) -> DeviceFields {
        DeviceFields::default()
            .with(Column::OperatingSystem, &self.operating_system)
            .with(Column::OsVersion, &self.os_version)
            .with(Column::DeviceType, &self.device_type)
            .with(Column::DeviceEnrollmentType, &self.enrollment_type)
            .with(Column::ManagementAgent, &self.management_agent)
            .with(Column::OwnerType, &self.owner_type)
    }
}

fn support_of(fields: &DeviceFields) -> Support {
    let platform = match classify(fields) {
        Classified::Platform(p) => p,
        Classified::Missing(_) | Classified::Unrecognised(..) => {
            return Support::Refused {
                detail: "Device is not supported for this action".into(),
            };
        }
    };
    let some_version_supports = RULES
        .iter()
        .any(|r| r.platform == platform && r.action.is_some());
    match judge(platform, fields.get(Column::OsVersion), ActionChoice::Auto) {
        Verdict::Eligible { action, .. } => Support::Supported { platform, action },
        _ if some_version_supports => Support::NotSupportedByDevice { platform },
        Verdict::Ineligible { detail, .. } => Support::Refused { detail },
        Verdict::MissingVersion | Verdict::UnreadableVersion => Support::Refused {
            detail: "Device is not supported for this action".into(),
        },
    }
}

/// Support of an action other than the passcode reset: accepted where the rules make the
/// device eligible, else refused with the rule's words. No device accepts it and then
/// reports `notSupported`: the rules of these actions draw no line a device could be on
/// the wrong side of once Intune accepted the action (a Windows build before 18363 is
/// refused, as a Windows desktop is refused a lock).
fn support_of_only(fields: &DeviceFields, action: Action) -> Support {
    let platform = match classify(fields) {
        Classified::Platform(p) => p,
        Classified::Missing(_) | Classified::Unrecognised(..) => {
            return Support::Refused {
                detail: "Device is not supported for this action".into(),
            };
        }
    };
    match judge(
        platform,
        fields.get(Column::OsVersion),
        ActionChoice::Only(action),
    ) {
        Verdict::Eligible { action, .. } => Support::Supported { platform, action },
        Verdict::Ineligible { detail, .. } => Support::Refused { detail },
        Verdict::MissingVersion | Verdict::UnreadableVersion => Support::Refused {
            detail: "Device is not supported for this action".into(),
        },
    }
}

/// The properties Graph's managedDevices `$filter` supports with `eq` (docs/graph.md,
/// "Finding devices").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    SerialNumber,
    DeviceName,
    AzureAdDeviceId,
    UserPrincipalName,
    Imei,
}

impl Lookup {
    pub const ALL: [Lookup; 5] = [
        Lookup::SerialNumber,
        Lookup::DeviceName,
        Lookup::AzureAdDeviceId,
        Lookup::UserPrincipalName,
        Lookup::Imei,
    ];

    /// The Graph property name, as `$filter` spells it.
    pub fn property(self) -> &'static str {
        match self {
            Lookup::SerialNumber => "serialNumber",
            Lookup::DeviceName => "deviceName",
            Lookup::AzureAdDeviceId => "azureADDeviceId",
            Lookup::UserPrincipalName => "userPrincipalName",
            Lookup::Imei => "imei",
        }
    }

    pub fn from_property(name: &str) -> Option<Lookup> {
        Lookup::ALL
            .into_iter()
            .find(|l| l.property().eq_ignore_ascii_case(name))
    }

    /// The device's value, owned only for the GUID.
    fn value(self, device: &Device) -> std::borrow::Cow<'_, str> {
        match self {
            Lookup::SerialNumber => (&*device.serial_number).into(),
            Lookup::DeviceName => (&*device.device_name).into(),
            Lookup::AzureAdDeviceId => device.azure_ad_device_id.to_string().into(),
            Lookup::UserPrincipalName => (&*device.user_principal_name).into(),
            Lookup::Imei => (&*device.imei).into(),
        }
    }
}

/// Graph compares these values without regard to case.
fn lookup_key(value: &str) -> u64 {
    hash_text(&value.to_lowercase())
}

/// The devices and their indexes; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Shared, so cloning a config does not copy 100,000 devices.
    inner: Arc<Indexed>,
}

#[derive(Debug, Default)]
struct Indexed {
    /// In the order they were generated or read: the list order.
    devices: Vec<Device>,
    /// Intune id to index, for the single-device endpoints.
    by_id: HashMap<Uuid, u32>,
    /// Per [`Lookup`], `(hash of the lower-cased value, device index)`, sorted.
    lookups: [Vec<(u64, u32)>; 5],
}

impl Inventory {
    /// Indexes `devices`; a device whose id repeats an earlier one is dropped.
    pub fn from_devices(devices: Vec<Device>) -> Inventory {
        let mut by_id = HashMap::with_capacity(devices.len());
        let mut kept = Vec::with_capacity(devices.len());
        for device in devices {
            let index = u32::try_from(kept.len()).unwrap_or(u32::MAX);
            if let std::collections::hash_map::Entry::Vacant(slot) = by_id.entry(device.id) {
                slot.insert(index);
                kept.push(device);
            }
        }
        let lookups = Lookup::ALL.map(|lookup| {
            let mut list: Vec<(u64, u32)> = kept
                .iter()
                .enumerate()
                .filter_map(|(i, d)| {
                    let value = lookup.value(d);
                    (!value.is_empty()).then(|| (lookup_key(&value), i as u32))
                })
                .collect();
            list.sort_unstable();
            list
        });
        Inventory {
            inner: Arc::new(Indexed {
                devices: kept,
                by_id,
                lookups,
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.inner.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.devices.is_empty()
    }

    pub fn devices(&self) -> &[Device] {
        &self.inner.devices
    }

    pub fn device(&self, index: u32) -> Option<&Device> {
        self.inner.devices.get(index as usize)
    }

    /// The device with this Intune id (any case, braces allowed).
    pub fn find_id(&self, id: &str) -> Option<u32> {
        let id = crate::device::parse_guid(id)?;
        let uuid = Uuid::parse_str(&id).ok()?;
        self.inner.by_id.get(&uuid).copied()
    }

    /// Indexes of the devices whose `lookup` property equals `value`, ignoring case, in
    /// inventory order.
    pub fn find(&self, lookup: Lookup, value: &str) -> Vec<u32> {
        let list = &self.inner.lookups[lookup as usize];
        let wanted = value.to_lowercase();
        let key = hash_text(&wanted);
        let start = list.partition_point(|(k, _)| *k < key);
        let mut found: Vec<u32> = list[start..]
            .iter()
            .take_while(|(k, _)| *k == key)
            .map(|(_, i)| *i)
            .filter(|i| {
                self.device(*i)
                    .is_some_and(|d| lookup.value(d).to_lowercase() == wanted)
            })
            .collect();
        found.sort_unstable();
        found
    }
}

#[cfg(test)]
mod tests;
