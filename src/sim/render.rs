//! A managed device as Graph writes it, in v1.0 or beta, honouring `$select`.
//!
//! v1.0 has no `deviceType` and lacks the Android Enterprise and AOSP enrollment types;
//! beta has both (docs/graph.md, "Telling platforms apart"). The simulator answers v1.0 with
//! `unknown` for an enrollment type v1.0 does not define. Selecting a property the
//! version does not have is a 400, as for Graph.

use std::time::Duration;

use std::borrow::Cow;

use serde_json::Value;

use super::clock::{SimClock, rfc3339};
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

/// A property's value before it is written.
enum Prop<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Array(Vec<Value>),
}

impl<'a> From<&'a str> for Prop<'a> {
    fn from(s: &'a str) -> Self {
        Prop::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Prop<'_> {
    fn from(s: String) -> Self {
        Prop::Str(Cow::Owned(s))
    }
}

impl From<bool> for Prop<'_> {
    fn from(b: bool) -> Self {
        Prop::Bool(b)
    }
}

/// Writes the device as a JSON object into `out`, with `@odata.context` first when
/// given. Written directly rather than through a `serde_json::Map`: a device read is the
/// simulator's hottest path, and the map's ~60 allocations halved its throughput.
/// `action_results` is called only when that property is written.
pub fn write_device(
    out: &mut Vec<u8>,
    device: &Device,
    version: ApiVersion,
    select: Option<&[&'static str]>,
    clock: &SimClock,
    action_results: &dyn Fn() -> Vec<Value>,
    context: Option<&str>,
) {
    out.push(b'{');
    let mut first = true;
    if let Some(context) = context {
        out.extend_from_slice(b"\"@odata.context\":");
        write_json(out, &context);
        first = false;
    }
    let mut put = |name: &'static str| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match property(device, name, version, clock, action_results) {
            Prop::Str(s) => write_json(out, &s),
            Prop::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Prop::Array(values) => write_json(out, &values),
        }
    };
    match select {
        Some(names) => names.iter().for_each(|n| put(n)),
        None => PROPERTIES
            .iter()
            .filter(|(_, v1)| *v1 || version == ApiVersion::Beta)
            .for_each(|(n, _)| put(n)),
    }
    out.push(b'}');
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing a str or a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

fn property<'a>(
    d: &'a Device,
    name: &str,
    version: ApiVersion,
    clock: &SimClock,
    action_results: &dyn Fn() -> Vec<Value>,
) -> Prop<'a> {
    let f = &*d.facts;
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
        "deviceActionResults" => Prop::Array(action_results()),
        _ => "".into(),
    }
}

/// A stable Entra user object id for a UPN: the directory user's
/// ([`super::users::object_id`]), whatever the UPN's case.
pub fn user_id(upn: &str) -> String {
    if upn.trim().is_empty() {
        return String::new();
    }
    super::users::object_id(upn).to_string()
}

/// `anna.smith@contoso...` -> `Anna Smith`.
pub fn display_name(upn: &str) -> String {
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
        let json = |version, select: Option<&[&'static str]>| {
            let mut out = Vec::new();
            write_device(&mut out, d, version, select, &clock, &none, Some("ctx"));
            let value: Value = serde_json::from_slice(&out).unwrap_or_default();
            value
        };
        let v1 = json(ApiVersion::V1, None);
        let beta = json(ApiVersion::Beta, None);
        assert_eq!(v1["@odata.context"], "ctx");
        assert_eq!(v1["id"], d.id.to_string());
        assert_eq!(v1["isEncrypted"], true);
        assert_eq!(v1["deviceActionResults"], serde_json::json!([]));
        assert!(v1.get("deviceType").is_none());
        assert_eq!(beta["deviceType"], "androidEnterprise");
        assert_eq!(
            beta["deviceEnrollmentType"],
            "androidEnterpriseFullyManaged"
        );
        assert_eq!(v1["deviceEnrollmentType"], "unknown");
        assert!(resolve_select(&["deviceType".into()], ApiVersion::V1).is_err());
        let select = resolve_select(&["ID".into(), "serialnumber".into()], ApiVersion::V1)
            .unwrap_or_default();
        let selected = json(ApiVersion::V1, Some(&select));
        let keys: Vec<&String> = selected
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["@odata.context", "id", "serialNumber"]);
    }

    #[test]
    fn display_names_come_from_the_upn() {
        assert_eq!(display_name("anna.smith2@contoso.com"), "Anna Smith2");
    }
}
