//! The Graph resources the runner reads: managed devices and their action results.
//!
//! Device lookups use **beta**: `deviceType` and the Android Enterprise values of
//! `deviceEnrollmentType` exist only there
//! (<https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-devicetype?view=graph-rest-beta>).
//! Every field is optional except `id`: Graph omits what `$select` did not ask for, and
//! a missing fact must reach the rules as "missing", not as a parse failure.

use serde::Deserialize;

use super::secret::Secret;
use crate::device::{Column, DeviceFields};

/// The `$select` names the runner asks for: what [`crate::rules::classify`] reads, plus
/// the identifiers used to re-check `$filter` matches (Graph silently ignores filters
/// it does not support) and to fill the report.
pub const RULE_FIELDS: &[&str] = &[
    "id",
    "deviceName",
    "serialNumber",
    "azureADDeviceId",
    "userPrincipalName",
    "imei",
    "operatingSystem",
    "osVersion",
    "deviceType",
    "deviceEnrollmentType",
    "managementAgent",
    "managedDeviceOwnerType",
];

/// A managed device as Graph (beta) describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedDevice {
    /// Intune's managed device id (not the Entra object id).
    pub id: String,
    /// The name shown in the admin center; a lookup key when a job file lacks ids.
    pub device_name: Option<String>,
    /// A lookup key; exported inventories often carry only this.
    pub serial_number: Option<String>,
    /// Entra's *deviceId*.
    #[serde(rename = "azureADDeviceId")]
    pub azure_ad_device_id: Option<String>,
    /// The primary user.
    pub user_principal_name: Option<String>,
    /// A lookup key for phones.
    pub imei: Option<String>,
    /// Free text (`iOS`, `iPadOS`, `Android`, `Windows`, `macOS`).
    pub operating_system: Option<String>,
    /// Free text (`15.5`, `10.0.19045.6036`); the rules read its leading numbers.
    pub os_version: Option<String>,
    /// Beta only: tells Android device administrator from work profile.
    pub device_type: Option<String>,
    /// Beta values tell Android Enterprise flavours and Apple User Enrollment apart.
    pub device_enrollment_type: Option<String>,
    /// `eas` alone means not MDM-managed.
    pub management_agent: Option<String>,
    /// `company`, `personal` or `unknown`; the report's ownership.
    pub managed_device_owner_type: Option<String>,
}

impl ManagedDevice {
    /// The device's live facts as job-file fields, for [`crate::rules::classify`].
    pub fn to_fields(&self) -> DeviceFields {
        let pairs = [
            (Column::Id, Some(&self.id)),
            (Column::DeviceName, self.device_name.as_ref()),
            (Column::SerialNumber, self.serial_number.as_ref()),
            (Column::AzureAdDeviceId, self.azure_ad_device_id.as_ref()),
            (Column::UserPrincipalName, self.user_principal_name.as_ref()),
            (Column::Imei, self.imei.as_ref()),
            (Column::OperatingSystem, self.operating_system.as_ref()),
            (Column::OsVersion, self.os_version.as_ref()),
            (Column::DeviceType, self.device_type.as_ref()),
            (
                Column::DeviceEnrollmentType,
                self.device_enrollment_type.as_ref(),
            ),
            (Column::ManagementAgent, self.management_agent.as_ref()),
            (Column::OwnerType, self.managed_device_owner_type.as_ref()),
        ];
        pairs.into_iter().fold(
            DeviceFields::default(),
            |fields, (column, value)| match value {
                Some(v) => fields.with(column, v),
                None => fields,
            },
        )
    }
}

/// One page of a device list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevicePage {
    /// The page's devices, unfiltered: re-check them, Graph ignores filters it does
    /// not support.
    pub devices: Vec<ManagedDevice>,
    /// `@odata.nextLink`: the next page, to be followed verbatim.
    pub next_link: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DevicePageBody {
    #[serde(default)]
    pub value: Vec<ManagedDevice>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

/// The device property a lookup filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterProperty {
    SerialNumber,
    AzureAdDeviceId,
    Imei,
    DeviceName,
}

impl FilterProperty {
    /// Graph's property name.
    pub fn graph_name(self) -> &'static str {
        match self {
            FilterProperty::SerialNumber => "serialNumber",
            FilterProperty::AzureAdDeviceId => "azureADDeviceId",
            FilterProperty::Imei => "imei",
            FilterProperty::DeviceName => "deviceName",
        }
    }

    /// `serialNumber eq 'value'`, with single quotes doubled as OData requires.
    pub fn filter(self, value: &str) -> String {
        format!("{} eq '{}'", self.graph_name(), value.replace('\'', "''"))
    }
}

/// One entry of a device's `deviceActionResults`
/// (<https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-resetpasscodeactionresult?view=graph-rest-1.0>).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    /// `#microsoft.graph.resetPasscodeActionResult` for a reset; other types are kept,
    /// so the runner can ignore them knowingly.
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    /// `resetPasscode` for our action.
    pub action_name: Option<String>,
    /// `none`, `pending`, `canceled`, `active`, `done`, `failed`, `notSupported`.
    pub action_state: Option<String>,
    /// When the action was queued: tells our reset from an older one.
    pub start_date_time: Option<String>,
    /// When the state last changed.
    pub last_updated_date_time: Option<String>,
    /// The passcode the platform generated, where it generates one.
    pub passcode: Option<Secret>,
    /// The platform's error code; documented as a number, kept as text if it is not.
    pub error_code: Option<ErrorCode>,
}

/// `errorCode` as Graph sent it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ErrorCode {
    Number(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionResultsBody {
    #[serde(default, rename = "deviceActionResults")]
    pub results: Option<Vec<ActionResult>>,
    #[serde(default, rename = "userPrincipalName")]
    pub user_principal_name: Option<String>,
}

/// A device's `deviceActionResults`, and its user (read in the same request, so that a
/// generated passcode says whose device it is for, even when the job did not).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceActions {
    pub results: Vec<ActionResult>,
    /// Graph's `userPrincipalName`; `None` when empty or absent (a userless device).
    pub user_principal_name: Option<String>,
}

impl From<Vec<ActionResult>> for DeviceActions {
    fn from(results: Vec<ActionResult>) -> DeviceActions {
        DeviceActions {
            results,
            user_principal_name: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Classified, classify};

    /// Issue 21: a Mac's remote lock entry carries the 6-digit PIN that unlocks it
    /// (`unlockPin`). The tool reads no such field: it is in no value it keeps, prints
    /// or writes.
    #[test]
    fn regression_21_a_locks_unlock_pin_is_never_read() {
        let body = r##"{"id":"d","deviceActionResults":[{
            "@odata.type":"#microsoft.graph.remoteLockActionResult","actionName":"remoteLock",
            "actionState":"done","startDateTime":"2026-12-07T10:00:00Z",
            "lastUpdatedDateTime":"2026-12-07T10:01:00Z","unlockPin":"482913"}]}"##;
        let read: ActionResultsBody = serde_json::from_str(body).unwrap();
        let kept = format!("{read:?}");
        assert!(kept.contains("remoteLock"), "{kept}");
        assert!(!kept.contains("482913"), "{kept}");
    }

    #[test]
    fn device_json_becomes_rule_fields() {
        let d: ManagedDevice = serde_json::from_value(serde_json::json!({
            "@odata.context": "x",
            "id": "5b1c3d6e-0000-0000-0000-000000000001",
            "deviceName": "Kiosk 7",
            "azureADDeviceId": "aad-1",
            "operatingSystem": "Android",
            "osVersion": "13",
            "deviceType": "androidEnterprise",
            "deviceEnrollmentType": "androidEnterpriseDedicatedDevice",
            "managementAgent": "mdm",
            "managedDeviceOwnerType": "company",
            "serialNumber": null,
            "somethingNew": 1
        }))
        .unwrap();
        let f = d.to_fields();
        assert_eq!(
            f.get(Column::Id),
            Some("5b1c3d6e-0000-0000-0000-000000000001")
        );
        assert_eq!(f.get(Column::AzureAdDeviceId), Some("aad-1"));
        assert_eq!(f.get(Column::OwnerType), Some("company"));
        assert_eq!(f.get(Column::SerialNumber), None);
        assert!(
            matches!(classify(&f), Classified::Platform(_)),
            "{:?}",
            classify(&f)
        );
        // Every RULE_FIELDS name is a field the struct reads.
        let all: serde_json::Map<String, serde_json::Value> = RULE_FIELDS
            .iter()
            .map(|n| (n.to_string(), serde_json::Value::String(format!("v-{n}"))))
            .collect();
        let d: ManagedDevice = serde_json::from_value(serde_json::Value::Object(all)).unwrap();
        assert_eq!(d.to_fields().iter().count(), RULE_FIELDS.len());
    }

    #[test]
    fn filters_double_single_quotes() {
        assert_eq!(
            FilterProperty::DeviceName.filter("O'Brien's iPad"),
            "deviceName eq 'O''Brien''s iPad'"
        );
        assert_eq!(
            FilterProperty::AzureAdDeviceId.filter("x"),
            "azureADDeviceId eq 'x'"
        );
    }

    #[test]
    fn action_results_tolerate_gaps_and_other_types() {
        let body: ActionResultsBody = serde_json::from_value(serde_json::json!({
            "id": "d",
            "deviceActionResults": [
                {"@odata.type": "#microsoft.graph.resetPasscodeActionResult",
                 "actionName": "resetPasscode", "actionState": "done",
                 "startDateTime": "2026-11-22T01:00:00Z", "lastUpdatedDateTime": "2026-11-22T01:01:00Z",
                 "passcode": "123456", "errorCode": 0},
                {"@odata.type": "#microsoft.graph.somethingElse", "actionName": "reboot"},
                {"actionName": "resetPasscode", "errorCode": "0x87D1FDE8"},
                {}
            ]
        }))
        .unwrap();
        let r = body.results.unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].passcode.as_ref().map(Secret::expose), Some("123456"));
        assert_eq!(r[0].error_code, Some(ErrorCode::Number(0)));
        assert_eq!(r[2].error_code, Some(ErrorCode::Text("0x87D1FDE8".into())));
        assert_eq!(
            r[1].odata_type.as_deref(),
            Some("#microsoft.graph.somethingElse")
        );
        assert_eq!(r[3], ActionResult::default());
        assert!(!format!("{r:?}").contains("123456"));
    }
}

/// A user of the directory, as `revoke-sessions` reads one: their object id (what a
/// run claims, so a UPN and an id naming one user revoke once), their UPN, and when
/// Entra last revoked their sessions (`signInSessionsValidFromDateTime`: tokens issued
/// before it no longer work), which settles a revocation whose answer was lost.
/// <https://learn.microsoft.com/graph/api/resources/user>
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    #[serde(default)]
    pub id: String,
    pub user_principal_name: Option<String>,
    pub sign_in_sessions_valid_from_date_time: Option<String>,
}
