//! A managed device as Graph writes it, in v1.0 or beta, honouring `$select`.
//!
//! v1.0 has no `deviceType` and lacks the Android Enterprise and AOSP enrollment types;
//! beta has both (GRAPH.md, "Telling platforms apart"). The simulator answers v1.0 with
//! `unknown` for an enrollment type v1.0 does not define. Selecting a property the
//! version does not have is a 400, as for Graph.

use std::time::Duration;

use serde_json::{Map, Value};

use super::clock::{SimClock, rfc3339};
use super::dice::hash_text;
use super::inventory::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    Beta,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

/// Properties in the order Graph writes them; the flag says whether v1.0 has it.
const PROPERTIES: &[(&str, bool)] = &[
    ("id", true),
    ("userId", true),
    ("deviceName", true),
    ("ownerType", false),
    ("managedDeviceOwnerType", true),
    ("enrolledDateTime", true),
    ("lastSyncDateTime", true),
    ("operatingSystem", true),
    ("deviceType", false),
    ("complianceState", true),
    ("jailBroken", true),
    ("managementAgent", true),
    ("osVersion", true),
    ("easActivated", true),
    ("azureADRegistered", true),
    ("deviceEnrollmentType", true),
    ("emailAddress", true),
    ("azureADDeviceId", true),
    ("deviceRegistrationState", true),
    ("isSupervised", true),
    ("isEncrypted", true),
    ("userPrincipalName", true),
    ("model", true),
    ("manufacturer", true),
    ("imei", true),
    ("serialNumber", true),
    ("phoneNumber", true),
    ("userDisplayName", true),
    ("managedDeviceName", true),
    ("deviceActionResults", true),
];

/// Enrollment types v1.0 defines; others read `unknown` there.
const V1_ENROLLMENT_TYPES: &[&str] = &[
    "unknown",
    "userEnrollment",
    "deviceEnrollmentManager",
    "appleBulkWithUser",
    "appleBulkWithoutUser",
    "windowsAzureADJoin",
    "windowsBulkUserless",
    "windowsAutoEnrollment",
    "windowsBulkAzureDomainJoin",
    "windowsCoManagement",
    "windowsAzureADJoinUsingDeviceAuth",
    "appleUserEnrollment",
    "appleUserEnrollmentWithServiceAccount",
];

/// The canonical names of a `$select` list, or Graph's message for the first name the
/// version lacks.
pub fn resolve_select(select: &[String], version: ApiVersion) -> Result<Vec<&'static str>, String> {
    select
        .iter()
        .map(|wanted| {
            PROPERTIES
                .iter()
                .find(|(name, v1)| {
                    name.eq_ignore_ascii_case(wanted) && (*v1 || version == ApiVersion::Beta)
                })
                .map(|(name, _)| *name)
                .ok_or_else(|| {
                    format!(
                        "Could not find a property named '{wanted}' on type 'microsoft.graph.managedDevice'."
                    )
                })
        })
        .collect()
}

/// The device as JSON. `action_results` is called only when that property is written.
pub fn device_json(
    device: &Device,
    version: ApiVersion,
    select: Option<&[&'static str]>,
    clock: &SimClock,
    action_results: &dyn Fn() -> Vec<Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |name: &'static str| {
        out.insert(
            name.to_owned(),
            property(device, name, version, clock, action_results),
        );
    };
    match select {
        Some(names) => names.iter().for_each(|n| put(n)),
        None => PROPERTIES
            .iter()
            .filter(|(_, v1)| *v1 || version == ApiVersion::Beta)
            .for_each(|(n, _)| put(n)),
    }
    out
}

fn property(
    d: &Device,
    name: &str,
    version: ApiVersion,
    clock: &SimClock,
    action_results: &dyn Fn() -> Vec<Value>,
) -> Value {
    let f = &d.facts;
    let os = &*f.operating_system;
    let upn = &*d.user_principal_name;
    let start = clock.wall_at(Duration::ZERO);
    let days = u64::from(d.enrolled_days_ago);
    match name {
        "id" => d.id.to_string().into(),
        "userId" => user_id(upn).into(),
        "deviceName" | "managedDeviceName" => (*d.device_name).into(),
        "ownerType" | "managedDeviceOwnerType" => (*f.owner_type).into(),
        "enrolledDateTime" => rfc3339(start - Duration::from_secs(days * 86_400)).into(),
        // Devices check in within the last day, spread by their enrollment age.
        "lastSyncDateTime" => rfc3339(start - Duration::from_secs(600 + days * 80)).into(),
        "operatingSystem" => os.into(),
        "deviceType" => (*f.device_type).into(),
        "complianceState" => "compliant".into(),
        "jailBroken" => match os {
            "iOS" | "iPadOS" | "Android" => "False",
            _ => "Unknown",
        }
        .into(),
        "managementAgent" => (*f.management_agent).into(),
        "osVersion" => (*f.os_version).into(),
        "easActivated" => (&*f.management_agent == "eas").into(),
        "azureADRegistered" => (!d.azure_ad_device_id.is_nil()).into(),
        "deviceEnrollmentType" => match version {
            ApiVersion::V1 if !V1_ENROLLMENT_TYPES.contains(&&*f.enrollment_type) => {
                "unknown".into()
            }
            _ => (*f.enrollment_type).into(),
        },
        "emailAddress" | "userPrincipalName" => upn.into(),
        "azureADDeviceId" => d.azure_ad_device_id.to_string().into(),
        "deviceRegistrationState" => "registered".into(),
        "isSupervised" => (matches!(os, "iOS" | "iPadOS") && &*f.owner_type == "company").into(),
        "isEncrypted" => true.into(),
        "model" => (*f.model).into(),
        "manufacturer" => (*f.manufacturer).into(),
        "imei" => (*d.imei).into(),
        "serialNumber" => (*d.serial_number).into(),
        "phoneNumber" => "".into(),
        "userDisplayName" => display_name(upn).into(),
        "deviceActionResults" => Value::Array(action_results()),
        _ => Value::Null,
    }
}

/// A stable Entra user object id for a UPN.
fn user_id(upn: &str) -> String {
    if upn.is_empty() {
        return String::new();
    }
    let bytes = (u128::from(hash_text(upn)) << 64 | u128::from(hash_text(&format!("user:{upn}"))))
        .to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `anna.smith@contoso...` -> `Anna Smith`.
fn display_name(upn: &str) -> String {
    let local = upn.split('@').next().unwrap_or(upn);
    local
        .split('.')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Inventory;

    #[test]
    fn beta_has_device_type_and_enrollment_types_that_v1_lacks() {
        let inv = Inventory::generate(200, 2);
        let clock = SimClock::new();
        let d = inv
            .devices()
            .iter()
            .find(|d| &*d.facts.enrollment_type == "androidEnterpriseFullyManaged");
        let Some(d) = d else {
            panic!("no fully managed device in 200")
        };
        let none = || Vec::new();
        let v1 = device_json(d, ApiVersion::V1, None, &clock, &none);
        let beta = device_json(d, ApiVersion::Beta, None, &clock, &none);
        assert!(!v1.contains_key("deviceType"));
        assert_eq!(beta["deviceType"], "androidEnterprise");
        assert_eq!(
            beta["deviceEnrollmentType"],
            "androidEnterpriseFullyManaged"
        );
        assert_eq!(v1["deviceEnrollmentType"], "unknown");
        assert!(resolve_select(&["deviceType".into()], ApiVersion::V1).is_err());
        let select = resolve_select(&["ID".into(), "serialnumber".into()], ApiVersion::V1)
            .unwrap_or_default();
        let selected = device_json(d, ApiVersion::V1, Some(&select), &clock, &none);
        assert_eq!(selected.keys().collect::<Vec<_>>(), ["id", "serialNumber"]);
    }

    #[test]
    fn display_names_come_from_the_upn() {
        assert_eq!(display_name("anna.smith2@contoso.com"), "Anna Smith2");
    }
}
