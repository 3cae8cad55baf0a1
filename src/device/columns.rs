//! Column matching: which job-file header (or JSON key) feeds which device fact.
//!
//! Headers are compared after lower-casing and dropping spaces, `_` and `-`, so
//! `Serial number`, `serial_number` and `SerialNumber` are one column. Canonical names
//! are Graph's property names; the Intune admin center's `DevicesWithInventory` export
//! headers are aliases (docs/graph.md, "The admin center export").

use serde::Serialize;

/// A device fact the tool understands. Everything else in a job file is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Column {
    /// Intune managed device id (a GUID). Admin center export: `Device ID`.
    Id,
    DeviceName,
    SerialNumber,
    /// Entra ID *deviceId* (not the Entra object id). Export: `Azure AD Device ID`,
    /// newer exports `Microsoft Entra Device ID`.
    AzureAdDeviceId,
    UserPrincipalName,
    Imei,
    OperatingSystem,
    OsVersion,
    /// Graph beta `deviceType` (`android`, `androidForWork`, `iPhone`, ...).
    DeviceType,
    /// The admin center export's `OS` column: it is derived from the device type, so it
    /// carries values such as `AndroidForWork` or `iPhone`, not `operatingSystem` text.
    ExportOs,
    DeviceEnrollmentType,
    ManagementAgent,
    OwnerType,
    Action,
    /// An Entra group (display name or object id): a row naming one stands for its
    /// members' devices.
    Group,
    /// An OData filter (`--where`), or `*` (`--all-devices`): the tenant's matching
    /// devices.
    Where,
    /// The tool's own platform key (`android_work_profile`, `ios`, ...), as a run
    /// report writes it: a report read as a job keeps the platform it was judged with.
    Platform,
    /// A run report's `outcome`, `reason` and (status report) `action_state`: what the
    /// tool already did to the row's device, so that a report read as a job does not
    /// reset a device again by accident.
    Outcome,
    Reason,
    ActionState,
    /// A run report's `detail` and `finished_at`: carried over (with the row's history)
    /// when a report read as a job says its device was, or may have been, reset, so
    /// that a report of a report still says when and by which run.
    Detail,
    FinishedAt,
    /// The customer tenant a row is meant for (a tenant id or a verified domain), as a
    /// managed service provider's export or list carries it: a row is acted on only in
    /// the tenant it names.
    Tenant,
}

impl Column {
    pub const ALL: [Column; 23] = [
        Column::Id,
        Column::DeviceName,
        Column::SerialNumber,
        Column::AzureAdDeviceId,
        Column::UserPrincipalName,
        Column::Imei,
        Column::OperatingSystem,
        Column::OsVersion,
        Column::DeviceType,
        Column::ExportOs,
        Column::DeviceEnrollmentType,
        Column::ManagementAgent,
        Column::OwnerType,
        Column::Action,
        Column::Group,
        Column::Where,
        Column::Platform,
        Column::Outcome,
        Column::Reason,
        Column::ActionState,
        Column::Detail,
        Column::FinishedAt,
        Column::Tenant,
    ];

    /// The canonical (Graph) name, used in messages when the file's own header is unknown.
    pub fn canonical(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::DeviceName => "deviceName",
            Column::SerialNumber => "serialNumber",
            Column::AzureAdDeviceId => "azureADDeviceId",
            Column::UserPrincipalName => "userPrincipalName",
            Column::Imei => "imei",
            Column::OperatingSystem => "operatingSystem",
            Column::OsVersion => "osVersion",
            Column::DeviceType => "deviceType",
            Column::ExportOs => "OS",
            Column::DeviceEnrollmentType => "deviceEnrollmentType",
            Column::ManagementAgent => "managementAgent",
            Column::OwnerType => "ownerType",
            Column::Action => "action",
            Column::Group => "group",
            Column::Where => "where",
            Column::Platform => "platform",
            Column::Outcome => "outcome",
            Column::Reason => "reason",
            Column::ActionState => "action_state",
            Column::Detail => "detail",
            Column::FinishedAt => "finished_at",
            Column::Tenant => "tenant",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Match a header or JSON key. `None` for columns the tool does not use.
    pub fn match_header(header: &str) -> Option<Column> {
        let key = normalize(header);
        let column = match key.as_str() {
            "id" | "deviceid" | "manageddeviceid" | "intunedeviceid" => Column::Id,
            "devicename" | "manageddevicename" => Column::DeviceName,
            "serialnumber" | "serial" | "serialno" => Column::SerialNumber,
            "azureaddeviceid" | "microsoftentradeviceid" | "entradeviceid" | "aaddeviceid" => {
                Column::AzureAdDeviceId
            }
            "userprincipalname" | "primaryuserupn" | "upn" => Column::UserPrincipalName,
            "imei" => Column::Imei,
            "operatingsystem" => Column::OperatingSystem,
            "osversion" => Column::OsVersion,
            "devicetype" => Column::DeviceType,
            "os" => Column::ExportOs,
            "deviceenrollmenttype" | "enrollmenttype" => Column::DeviceEnrollmentType,
            "managementagent" | "managedby" => Column::ManagementAgent,
            "ownertype" | "manageddeviceownertype" | "ownership" => Column::OwnerType,
            "action" => Column::Action,
            "group" | "groupname" | "groupid" | "entragroup" => Column::Group,
            "where" => Column::Where,
            "platform" => Column::Platform,
            "outcome" => Column::Outcome,
            "reason" => Column::Reason,
            "actionstate" => Column::ActionState,
            "detail" => Column::Detail,
            "finishedat" => Column::FinishedAt,
            "tenant" | "tenantid" | "tenantdomain" | "tenantname" | "customertenant"
            | "customertenantid" | "defaultdomainname" => Column::Tenant,
            _ => return None,
        };
        Some(column)
    }
}

/// Headers only the Entra admin center's "Download devices" file (and Graph's
/// `/devices`) carries: there `deviceId` is the *Entra* device id (a managed device's
/// `azureADDeviceId`) and `id`/`objectId` the Entra object id, never an Intune id.
const ENTRA_MARKERS: &[&str] = &[
    "objectid",
    "registeredowners",
    "mdmdisplayname",
    "ismanaged",
    "iscompliant",
    "trusttype",
    "approximatelastsignindatetime",
    "physicalids",
    "usernames",
];

/// Whether a header row (or a JSON object's keys) has the Entra device list's shape:
/// `deviceId` beside at least one header only that file has.
pub fn is_entra_device_list<'a>(headers: impl IntoIterator<Item = &'a str>) -> bool {
    let keys: Vec<String> = headers.into_iter().map(normalize).collect();
    keys.iter().any(|k| k == "deviceid") && keys.iter().any(|k| ENTRA_MARKERS.contains(&k.as_str()))
}

/// [`Column::match_header`] for a file of the Entra device list's shape: `deviceId` is
/// the Entra device id, `displayName` the device name, `operatingSystemVersion` the
/// version; `id` and `objectId` (Entra object ids) are not read.
pub fn match_entra_header(header: &str) -> Option<Column> {
    match normalize(header).as_str() {
        "deviceid" => Some(Column::AzureAdDeviceId),
        "displayname" => Some(Column::DeviceName),
        "operatingsystemversion" => Some(Column::OsVersion),
        "id" | "objectid" => None,
        _ => Column::match_header(header),
    }
}

/// Lower-case and drop spaces, `_`, `-` (and a stray BOM or NBSP Excel leaves behind).
pub fn normalize(header: &str) -> String {
    let skip = |c: char| matches!(c, ' ' | '_' | '-' | '\u{feff}' | '\u{a0}' | '\t' | '"');
    if header.is_ascii() {
        // The common case, called for several values of every row: no char decoding.
        let mut out = String::with_capacity(header.len());
        out.extend(
            header
                .bytes()
                .filter(|b| !skip(char::from(*b)))
                .map(|b| char::from(b.to_ascii_lowercase())),
        );
        return out;
    }
    header
        .chars()
        .filter(|c| !skip(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn admin_center_export_headers_are_aliases() {
        assert_eq!(Column::match_header("Device ID"), Some(Column::Id));
        assert_eq!(
            Column::match_header("Device name"),
            Some(Column::DeviceName)
        );
        assert_eq!(
            Column::match_header("Serial number"),
            Some(Column::SerialNumber)
        );
        assert_eq!(
            Column::match_header("Azure AD Device ID"),
            Some(Column::AzureAdDeviceId)
        );
        assert_eq!(
            Column::match_header("Microsoft Entra Device ID"),
            Some(Column::AzureAdDeviceId)
        );
        assert_eq!(Column::match_header("OS"), Some(Column::ExportOs));
        assert_eq!(Column::match_header("OS version"), Some(Column::OsVersion));
        assert_eq!(
            Column::match_header("Managed by"),
            Some(Column::ManagementAgent)
        );
        assert_eq!(Column::match_header("Ownership"), Some(Column::OwnerType));
        assert_eq!(
            Column::match_header("EnrollmentType"),
            Some(Column::DeviceEnrollmentType)
        );
        assert_eq!(
            Column::match_header("Primary user UPN"),
            Some(Column::UserPrincipalName)
        );
        assert_eq!(Column::match_header("IMEI"), Some(Column::Imei));
    }

    /// `Get-MgDeviceManagementManagedDevice | Export-Csv` writes the SDK's PascalCase
    /// property names; normalising already makes them the Graph names, no alias needed.
    #[test]
    fn powershell_pascal_case_property_names_match_without_aliases() {
        let want = [
            ("Id", Column::Id),
            ("DeviceName", Column::DeviceName),
            ("SerialNumber", Column::SerialNumber),
            ("OperatingSystem", Column::OperatingSystem),
            ("OSVersion", Column::OsVersion),
            ("AzureAdDeviceId", Column::AzureAdDeviceId),
            ("Imei", Column::Imei),
            ("UserPrincipalName", Column::UserPrincipalName),
            ("ManagedDeviceOwnerType", Column::OwnerType),
            ("ManagementAgent", Column::ManagementAgent),
            ("DeviceEnrollmentType", Column::DeviceEnrollmentType),
            ("DeviceType", Column::DeviceType),
        ];
        for (header, column) in want {
            assert_eq!(Column::match_header(header), Some(column), "{header}");
        }
    }

    #[test]
    fn the_entra_device_download_reads_device_id_as_the_entra_id() {
        let entra = [
            "deviceId",
            "displayName",
            "operatingSystem",
            "operatingSystemVersion",
            "objectId",
            "registeredOwners",
        ];
        assert!(is_entra_device_list(entra));
        assert_eq!(
            match_entra_header("deviceId"),
            Some(Column::AzureAdDeviceId)
        );
        assert_eq!(match_entra_header("displayName"), Some(Column::DeviceName));
        assert_eq!(
            match_entra_header("operatingSystemVersion"),
            Some(Column::OsVersion)
        );
        assert_eq!(match_entra_header("objectId"), None);
        assert_eq!(match_entra_header("id"), None);
        // The Intune export's "Device ID" stays Intune's.
        assert!(!is_entra_device_list([
            "Device ID",
            "Device name",
            "Serial number"
        ]));
        assert_eq!(Column::match_header("Device ID"), Some(Column::Id));
    }

    #[test]
    fn unknown_columns_are_ignored() {
        assert_eq!(Column::match_header("Manufacturer"), None);
        assert_eq!(Column::match_header("Last check-in"), None);
        assert_eq!(Column::match_header(""), None);
    }

    #[test]
    fn canonical_names_round_trip() {
        for column in Column::ALL {
            assert_eq!(Column::match_header(column.canonical()), Some(column));
        }
    }

    proptest! {
        #[test]
        fn case_spaces_underscores_and_dashes_do_not_matter(
            column in proptest::sample::select(Column::ALL.to_vec()),
            seps in proptest::collection::vec(proptest::sample::select(vec!["", " ", "_", "-"]), 40),
            upper in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let mut spelled = String::new();
            for (i, c) in column.canonical().chars().enumerate() {
                spelled.push_str(seps[i % seps.len()]);
                if upper[i % upper.len()] { spelled.extend(c.to_uppercase()) } else { spelled.extend(c.to_lowercase()) }
            }
            prop_assert_eq!(Column::match_header(&spelled), Some(column));
        }
    }
}
