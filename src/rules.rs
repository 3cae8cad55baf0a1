//! Which devices support `resetPasscode`: platform classification and the rules table.
//!
//! The table is data ([`RULES`]): one row per platform (and version range), each with the
//! document it comes from, printed by `intune-reset rules`. Classification reads
//! `operatingSystem`, `osVersion`, `deviceType`, `deviceEnrollmentType`,
//! `managementAgent` and the admin center export's `OS`, `Managed by` and
//! `EnrollmentType` columns (docs/graph.md, "Telling platforms apart").
//!
//! Android Enterprise fully managed, dedicated, corporate-owned work profile and AOSP are
//! not covered by the seed documents. Microsoft's current page
//! (<https://learn.microsoft.com/en-us/mem/intune/remote-actions/device-passcode-reset>)
//! lists device-owner (fully managed, dedicated) and AOSP devices as supported for a
//! device-level reset and corporate work profiles for a work-profile reset, so they are
//! eligible here, each reported under its own platform name and marked "later docs" so
//! an administrator can tell them apart from the seed rules.
//!
//! Core module: it imports only the device domain and version parsing.

use serde::Serialize;

use crate::device::normalize;
use crate::device::{Column, DeviceFields};
use crate::version::OsVersion;

/// An action this tool sends. The passcode actions are one Graph action,
/// `resetPasscode`, named as the admin center names it per platform; the others are the
/// responder's next moves (issue 21): revoke the user's sign-in sessions, lock the device,
/// rotate its BitLocker recovery key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// "Remove passcode" (iOS/iPadOS) and "Reset passcode" (Android).
    RemovePasscode,
    /// "New PIN" on Windows 10 Mobile.
    ResetPin,
    /// "Remote lock": `POST .../managedDevices/{id}/remoteLock`.
    RemoteLock,
    /// "BitLocker key rotation": `POST /beta/.../managedDevices/{id}/rotateBitLockerKeys`.
    RotateBitLockerKeys,
    /// Entra's "Revoke sessions": `POST /users/{id}/revokeSignInSessions`, an action on
    /// users, not devices.
    RevokeSessions,
}

/// The families of actions: each has its own rules table and its own duplicate rule
/// (a device, or a user, takes each family once in a run), in the order they run: the
/// user action before the device actions, as the runbooks for a compromised user do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Sessions,
    Passcode,
    Lock,
    BitLocker,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Sessions,
        Family::Passcode,
        Family::Lock,
        Family::BitLocker,
    ];

    /// The rules table that judges the family's devices (none for users' sessions: a
    /// user has no platform).
    pub fn rules(self) -> &'static [Rule] {
        match self {
            Family::Passcode => RULES,
            Family::Lock => LOCK_RULES,
            Family::BitLocker => BITLOCKER_RULES,
            Family::Sessions => &[],
        }
    }

    /// An action on users (Entra's directory), not on Intune's devices.
    pub fn on_users(self) -> bool {
        self == Family::Sessions
    }

    /// The action's name as the report and the ledger's keys know it.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Sessions => "revoke-sessions",
            Family::Passcode => "passcode",
            Family::Lock => "remote-lock",
            Family::BitLocker => "rotate-bitlocker-keys",
        }
    }

    /// The name Graph gives the action: its POST's last segment, `actionName` in
    /// `deviceActionResults` and `action` in the audit.
    pub fn graph_name(self) -> &'static str {
        match self {
            Family::Sessions => "revokeSignInSessions",
            Family::Passcode => "resetPasscode",
            Family::Lock => "remoteLock",
            Family::BitLocker => "rotateBitLockerKeys",
        }
    }

    /// What the action is, in a sentence's words ("a remote lock").
    pub fn noun(self) -> &'static str {
        match self {
            Family::Passcode => "passcode reset",
            Family::Lock => "remote lock",
            Family::BitLocker => "BitLocker key rotation",
            Family::Sessions => "sign-in session revocation",
        }
    }

    /// The Graph permission its POST needs, named when Graph refuses it.
    pub fn permission(self) -> &'static str {
        match self {
            Family::Sessions => "User.RevokeSessions.All",
            _ => "DeviceManagementManagedDevices.PrivilegedOperations.All",
        }
    }
}

impl Family {
    /// The family of a report's `action` cell (`remove-passcode`, `reset-passcode`,
    /// `remote-lock`, ...); a cell naming none is a passcode row (reports written before
    /// issue 21 hold only those).
    pub fn of_report(action: &str) -> Family {
        ActionChoice::parse(action).map_or(Family::Passcode, ActionChoice::family)
    }
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::RemovePasscode,
        Action::ResetPin,
        Action::RemoteLock,
        Action::RotateBitLockerKeys,
        Action::RevokeSessions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::RemovePasscode => "remove-passcode",
            Action::ResetPin => "reset-pin",
            Action::RemoteLock => "remote-lock",
            Action::RotateBitLockerKeys => "rotate-bitlocker-keys",
            Action::RevokeSessions => "revoke-sessions",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Action::RemovePasscode | Action::ResetPin => Family::Passcode,
            Action::RemoteLock => Family::Lock,
            Action::RotateBitLockerKeys => Family::BitLocker,
            Action::RevokeSessions => Family::Sessions,
        }
    }

    /// What the action does on `platform`, as the report names it: iOS/iPadOS lose
    /// their passcode (`remove-passcode`), Android gets a new one (`reset-passcode`),
    /// Windows 10 Mobile a new PIN (`reset-pin`). One Graph call for the first two.
    /// Every other action is its own name.
    pub fn effect(self, platform: Platform) -> &'static str {
        match self {
            Action::RemovePasscode if platform.as_str().starts_with("android") => "reset-passcode",
            other => other.as_str(),
        }
    }

    /// The inverse of [`Action::as_str`] (the run's ledger stores the action so).
    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// What the user asked for: one action, or the passcode action each platform supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionChoice {
    Auto,
    Only(Action),
}

impl ActionChoice {
    /// Accepts the CLI spellings, the admin center's words and Graph's action name.
    pub fn parse(text: &str) -> Option<ActionChoice> {
        Some(match normalize(text).as_str() {
            "auto" | "resetpasscode" => ActionChoice::Auto,
            "removepasscode" => ActionChoice::Only(Action::RemovePasscode),
            "resetpin" | "newpin" | "pinreset" => ActionChoice::Only(Action::ResetPin),
            "remotelock" | "lock" => ActionChoice::Only(Action::RemoteLock),
            "rotatebitlockerkeys"
            | "rotatebitlockerkey"
            | "bitlockerkeyrotation"
            | "rotatebitlocker" => ActionChoice::Only(Action::RotateBitLockerKeys),
            "revokesessions" | "revokesigninsessions" | "revokesession" => {
                ActionChoice::Only(Action::RevokeSessions)
            }
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionChoice::Auto => "auto",
            ActionChoice::Only(a) => a.as_str(),
        }
    }

    pub fn family(self) -> Family {
        match self {
            ActionChoice::Auto => Family::Passcode,
            ActionChoice::Only(a) => a.family(),
        }
    }
}

/// The actions one run or one row asks for, in [`Family`]'s order (the user action
/// first). At most one per family: a device takes each action once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actions(Vec<ActionChoice>);

impl Actions {
    pub fn one(choice: ActionChoice) -> Actions {
        Actions(vec![choice])
    }

    /// `revoke-sessions,remote-lock` (also `;`, `+` or `|` between names):
    /// every name known and at most one per family, else a sentence saying why.
    pub fn parse(text: &str) -> Result<Actions, String> {
        let mut list: Vec<ActionChoice> = Vec::new();
        for word in text
            .split([',', ';', '+', '|'])
            .map(str::trim)
            .filter(|w| !w.is_empty())
        {
            let Some(choice) = ActionChoice::parse(word) else {
                return Err(not_offered(word).unwrap_or_else(|| {
                    format!("'{word}' is not an action this tool offers: {OFFERED}")
                }));
            };
            if let Some(other) = list.iter().find(|c| c.family() == choice.family()) {
                if *other == choice {
                    continue;
                }
                return Err(format!(
                    "'{}' and '{}' are both a {}: a device takes one per run",
                    other.as_str(),
                    choice.as_str(),
                    choice.family().noun()
                ));
            }
            list.push(choice);
        }
        if list.is_empty() {
            return Err(format!("no action named: {OFFERED}"));
        }
        list.sort_by_key(|c| c.family());
        Ok(Actions(list))
    }

    pub fn iter(&self) -> impl Iterator<Item = ActionChoice> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `revoke-sessions,remote-lock`: what the ledger records and `--resume` compares.
    pub fn as_text(&self) -> String {
        self.0
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The actions this tool offers, as a sentence lists them.
pub const OFFERED: &str = "remove-passcode, reset-passcode, reset-pin, auto, remote-lock, rotate-bitlocker-keys or revoke-sessions (several with commas: revoke-sessions,remote-lock)";

/// Why a destructive action is not offered, when `text` names one (`wipe`, `retire`,
/// `delete`, their admin-center and Graph spellings): since 2026 Intune caps them per
/// tenant per day (wipe 500, retire and delete 1,000) and Multi Admin Approval can hold
/// them (docs/graph.md, "Other actions"); a bulk tool that destroys data by mistake cannot
/// undo it.
/// <https://learn.microsoft.com/intune/device-management/actions/>
pub fn not_offered(text: &str) -> Option<String> {
    let word = match normalize(text).as_str() {
        "wipe" | "factoryreset" | "fullwipe" | "freshstart" => "wipe",
        "retire" | "selectivewipe" => "retire",
        "delete" | "remove" | "deletedevice" => "delete",
        _ => return None,
    };
    Some(format!(
        "'{}' is not offered: {word} destroys what is on the device or its management and cannot be undone, Intune caps wipe (500), retire and delete (1,000) per tenant per day, and Multi Admin Approval may hold them; do it in the Intune admin center, where those controls apply. This tool offers {OFFERED}",
        text.trim()
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Ios,
    IosUserEnrollment,
    Visionos,
    AndroidDeviceAdmin,
    AndroidWorkProfile,
    AndroidCorporateWorkProfile,
    AndroidFullyManaged,
    AndroidDedicated,
    AndroidAosp,
    Macos,
    Windows,
    WindowsMobile,
    /// Linux, ChromeOS and other platforms Intune lists but cannot reset.
    Other,
    /// Enrolled in Exchange ActiveSync only: Intune MDM cannot act on it.
    NotMdmManaged,
}

impl Platform {
    pub const ALL: [Platform; 14] = [
        Platform::Ios,
        Platform::IosUserEnrollment,
        Platform::Visionos,
        Platform::AndroidDeviceAdmin,
        Platform::AndroidWorkProfile,
        Platform::AndroidCorporateWorkProfile,
        Platform::AndroidFullyManaged,
        Platform::AndroidDedicated,
        Platform::AndroidAosp,
        Platform::Macos,
        Platform::Windows,
        Platform::WindowsMobile,
        Platform::Other,
        Platform::NotMdmManaged,
    ];

    /// The inverse of [`Platform::as_str`], spelled as headers are (case, `_`, `-` and
    /// spaces ignored): the `platform` column of a report read as a job.
    pub fn from_key(text: &str) -> Option<Platform> {
        let key = normalize(text);
        // Keys are lower case with `_` alone: compared without allocating one each.
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str().chars().filter(|c| *c != '_').eq(key.chars()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::IosUserEnrollment => "ios_user_enrollment",
            Platform::Visionos => "visionos",
            Platform::AndroidDeviceAdmin => "android_device_admin",
            Platform::AndroidWorkProfile => "android_work_profile",
            Platform::AndroidCorporateWorkProfile => "android_corporate_work_profile",
            Platform::AndroidFullyManaged => "android_fully_managed",
            Platform::AndroidDedicated => "android_dedicated",
            Platform::AndroidAosp => "android_aosp",
            Platform::Macos => "macos",
            Platform::Windows => "windows",
            Platform::WindowsMobile => "windows_mobile",
            Platform::Other => "other",
            Platform::NotMdmManaged => "not_mdm_managed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Versions {
    Any,
    /// Below this version (`6.x or earlier` is `Below(7.0)`).
    Below {
        major: u32,
        minor: u32,
    },
    AtLeast {
        major: u32,
        minor: u32,
    },
    /// Windows builds before this one (the third number of `10.0.18363.418`).
    BuildBelow {
        build: u32,
    },
    /// Windows builds from this one on.
    BuildAtLeast {
        build: u32,
    },
}

impl Versions {
    pub fn contains(self, v: OsVersion) -> bool {
        match self {
            Versions::Any => true,
            Versions::Below { major, minor } => v < OsVersion::new(major, minor),
            Versions::AtLeast { major, minor } => v >= OsVersion::new(major, minor),
            // A major.minor alone tells no build: never inside a build range.
            Versions::BuildBelow { .. } | Versions::BuildAtLeast { .. } => false,
        }
    }

    /// Whether the version written `text` is in the range; `None` when the text lacks
    /// what the range needs (no number, or no build for a build range).
    pub fn holds(self, text: &str) -> Option<bool> {
        match self {
            Versions::Any => Some(true),
            Versions::Below { .. } | Versions::AtLeast { .. } => {
                OsVersion::parse(text).map(|v| self.contains(v))
            }
            Versions::BuildBelow { build } => OsVersion::build(text).map(|b| b < build),
            Versions::BuildAtLeast { build } => OsVersion::build(text).map(|b| b >= build),
        }
    }

    pub fn describe(self) -> String {
        match self {
            Versions::Any => "any".into(),
            Versions::Below { major, minor: 0 } => format!("{}.x or earlier", major - 1),
            Versions::Below { major, minor } => format!("before {major}.{minor}"),
            Versions::AtLeast { major, minor } => format!("{major}.{minor} or later"),
            Versions::BuildBelow { build } => format!("builds before {build}"),
            Versions::BuildAtLeast { build } => format!("build {build} or later"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The 2018–2020 documents the product was specified from.
    Seeds,
    /// Microsoft's documentation from 2020 on.
    LaterDocs,
    /// `managementAgent` `eas` alone means not MDM-managed (docs/graph.md, "Telling
    /// platforms apart").
    GraphDocs,
    /// No Microsoft page lists the platform as supported.
    NotListed,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Seeds => "seeds",
            Source::LaterDocs => "later docs",
            Source::GraphDocs => "graph docs",
            Source::NotListed => "not listed",
        }
    }
}

/// One row of the rules table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub platform: Platform,
    /// How the platform is recognised, in an administrator's words.
    pub recognised_by: &'static str,
    pub versions: Versions,
    /// `None`: the platform does not support the action.
    pub action: Option<Action>,
    /// Stable code for ineligible rows; empty for eligible ones.
    pub reason: &'static str,
    /// For eligible rows, what the device will experience; otherwise why not.
    pub detail: &'static str,
    pub source: Source,
    pub link: &'static str,
}

const PASSCODE_RESET_DOC: &str =
    "https://learn.microsoft.com/en-us/mem/intune/remote-actions/device-passcode-reset";
const REMOVE_PASSCODE_DOC: &str =
    "https://learn.microsoft.com/en-us/intune/device-management/actions/remove-passcode";
const PIN_RESET_DOC: &str =
    "https://learn.microsoft.com/en-us/mem/intune/remote-actions/device-windows-pin-reset";
const DEVICE_TYPE_DOC: &str = "https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-manageddevice?view=graph-rest-beta";

pub static RULES: &[Rule] = &[
    Rule {
        platform: Platform::Ios,
        recognised_by: "operatingSystem iOS/iPadOS, or deviceType iPhone/iPad/iPod",
        versions: Versions::Any,
        action: Some(Action::RemovePasscode),
        reason: "",
        detail: "the passcode is removed; a passcode policy then asks the user to set a new one",
        source: Source::Seeds,
        link: REMOVE_PASSCODE_DOC,
    },
    Rule {
        platform: Platform::IosUserEnrollment,
        recognised_by: "iOS/iPadOS with deviceEnrollmentType appleUserEnrollment, appleUserEnrollmentWithServiceAccount or appleAccountDrivenUserEnrollment",
        versions: Versions::Any,
        action: None,
        reason: "apple_user_enrollment",
        detail: "devices enrolled with Apple User Enrollment do not support passcode removal",
        source: Source::LaterDocs,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::Visionos,
        recognised_by: "operatingSystem or deviceType visionOS",
        versions: Versions::AtLeast { major: 1, minor: 1 },
        action: Some(Action::RemovePasscode),
        reason: "",
        detail: "the passcode is removed",
        source: Source::LaterDocs,
        link: REMOVE_PASSCODE_DOC,
    },
    Rule {
        platform: Platform::Visionos,
        recognised_by: "operatingSystem or deviceType visionOS",
        versions: Versions::Below { major: 1, minor: 1 },
        action: None,
        reason: "visionos_before_1_1",
        detail: "visionOS supports passcode removal from version 1.1 on",
        source: Source::LaterDocs,
        link: REMOVE_PASSCODE_DOC,
    },
    Rule {
        platform: Platform::AndroidDeviceAdmin,
        recognised_by: "deviceType android (or the export's OS column Android)",
        versions: Versions::Below { major: 7, minor: 0 },
        action: Some(Action::RemovePasscode),
        reason: "",
        detail: "the device passcode is reset: a new passcode is generated",
        source: Source::Seeds,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::AndroidDeviceAdmin,
        recognised_by: "deviceType android (or the export's OS column Android)",
        versions: Versions::AtLeast { major: 7, minor: 0 },
        action: None,
        reason: "android_device_admin_7_or_later",
        detail: "Android 7.0 and later do not let a device administrator reset the passcode (Google removed it for every MDM)",
        source: Source::Seeds,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::AndroidWorkProfile,
        recognised_by: "deviceType androidForWork (personally-owned work profile)",
        versions: Versions::AtLeast { major: 7, minor: 0 },
        action: Some(Action::RemovePasscode),
        reason: "",
        detail: "the work-profile passcode is reset: a new one is generated; the user must have activated the reset token (Microsoft's current page says 8.0 or later)",
        source: Source::Seeds,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::AndroidWorkProfile,
        recognised_by: "deviceType androidForWork (personally-owned work profile)",
        versions: Versions::Below { major: 7, minor: 0 },
        action: None,
        reason: "android_work_profile_before_7",
        detail: "a work-profile passcode can be reset only on Android 7.0 or later",
        source: Source::Seeds,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::AndroidCorporateWorkProfile,
        recognised_by: "deviceEnrollmentType androidEnterpriseCorporateWorkProfile",
        versions: Versions::Any,
        action: Some(Action::RemovePasscode),
        reason: "",
        detail: "the work-profile passcode is reset (on Microsoft's current page, not on its 2018-2020 version); it fails unless a work-profile passcode policy is enforced",
        source: Source::LaterDocs,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::AndroidFullyManaged,
        recognised_by: "deviceEnrollmentType androidEnterpriseFullyManaged (device owner)",
        versions: Versions::Any,
        action: Some(Action::RemovePasscode),
        reason: "",
        detail: "the device passcode is reset (on Microsoft's current page, not on its 2018-2020 version); it fails unless a passcode policy is enforced",
        source: Source::LaterDocs,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::AndroidDedicated,
        recognised_by: "deviceEnrollmentType androidEnterpriseDedicatedDevice (kiosk, device owner)",
        versions: Versions::Any,
        action: Some(Action::RemovePasscode),
        reason: "",
        detail: "the device passcode is reset (on Microsoft's current page, not on its 2018-2020 version)",
        source: Source::LaterDocs,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::AndroidAosp,
        recognised_by: "deviceType androidnGMS, or deviceEnrollmentType androidAOSPUserOwnedDeviceEnrollment / androidAOSPUserlessDeviceEnrollment",
        versions: Versions::Any,
        action: Some(Action::RemovePasscode),
        reason: "",
        detail: "the device passcode is reset (on Microsoft's current page, not on its 2018-2020 version)",
        source: Source::LaterDocs,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::Macos,
        recognised_by: "operatingSystem macOS, or deviceType mac/macMDM",
        versions: Versions::Any,
        action: None,
        reason: "macos_not_supported",
        detail: "macOS does not support passcode reset or removal",
        source: Source::Seeds,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::Windows,
        recognised_by: "deviceType desktop/windowsRT/holoLens/surfaceHub/cloudPC (or the export's OS column Windows), or operatingSystem Windows with a build after 10.0.15254, Windows 10 Mobile's last",
        versions: Versions::Any,
        action: None,
        reason: "windows_not_supported",
        detail: "Windows desktops do not support passcode reset (only Windows 10 Mobile had a PIN reset)",
        source: Source::Seeds,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::WindowsMobile,
        recognised_by: "deviceType windowsPhone/winMO6, or operatingSystem Windows Phone / Windows 10 Mobile",
        versions: Versions::Any,
        action: Some(Action::ResetPin),
        reason: "",
        detail: "a new PIN is generated",
        source: Source::Seeds,
        link: PIN_RESET_DOC,
    },
    Rule {
        platform: Platform::Other,
        recognised_by: "Linux, ChromeOS and other platforms",
        versions: Versions::Any,
        action: None,
        reason: "platform_not_supported",
        detail: "Intune offers no passcode reset on this platform",
        source: Source::NotListed,
        link: PASSCODE_RESET_DOC,
    },
    Rule {
        platform: Platform::NotMdmManaged,
        recognised_by: "managementAgent eas (Exchange ActiveSync only)",
        versions: Versions::Any,
        action: None,
        reason: "not_mdm_managed",
        detail: "the device is known to Intune through Exchange ActiveSync only, not enrolled in MDM, so Intune cannot act on it",
        source: Source::GraphDocs,
        link: DEVICE_TYPE_DOC,
    },
];

const REMOTE_LOCK_DOC: &str =
    "https://learn.microsoft.com/en-us/intune/device-management/actions/remote-lock";
const BITLOCKER_ROTATION_DOC: &str =
    "https://learn.microsoft.com/en-us/intune/device-management/actions/rotate-bitlocker-keys";
/// Windows 10 version 1909 or later: the prerequisite of key rotation.
const BITLOCKER_VERSION_DOC: &str = "https://learn.microsoft.com/en-us/intune/intune-service/protect/encrypt-devices#rotate-bitlocker-recovery-keys";
const DEVICE_LOCK_APPLE_DOC: &str =
    "https://developer.apple.com/documentation/devicemanagement/device-lock-command";

/// Windows 10 version 1909's build: key rotation needs it or later.
pub const BITLOCKER_ROTATION_BUILD: u32 = 18363;

/// Remote lock (`remoteLock`), by Microsoft's action page (2025-10-27): Android
/// Enterprise dedicated, fully managed and corporate-owned work profile, AOSP,
/// iOS/iPadOS, macOS, visionOS 2.0 and later; nothing else is listed.
pub static LOCK_RULES: &[Rule] = &[
    Rule {
        platform: Platform::Ios,
        recognised_by: "operatingSystem iOS/iPadOS, or deviceType iPhone/iPad/iPod",
        versions: Versions::Any,
        action: Some(Action::RemoteLock),
        reason: "",
        detail: "the device locks; the user unlocks it with the existing passcode (a device without one only turns its screen off)",
        source: Source::LaterDocs,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::IosUserEnrollment,
        recognised_by: "iOS/iPadOS with deviceEnrollmentType appleUserEnrollment, appleUserEnrollmentWithServiceAccount or appleAccountDrivenUserEnrollment",
        versions: Versions::Any,
        action: None,
        reason: "lock_user_enrollment",
        detail: "a personal device enrolled with Apple User Enrollment: Apple keeps device-wide commands such as Device Lock from its MDM, and Microsoft's page does not list it, so no lock is sent",
        source: Source::NotListed,
        link: DEVICE_LOCK_APPLE_DOC,
    },
    Rule {
        platform: Platform::Visionos,
        recognised_by: "operatingSystem or deviceType visionOS",
        versions: Versions::AtLeast { major: 2, minor: 0 },
        action: Some(Action::RemoteLock),
        reason: "",
        detail: "the device locks",
        source: Source::LaterDocs,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::Visionos,
        recognised_by: "operatingSystem or deviceType visionOS",
        versions: Versions::Below { major: 2, minor: 0 },
        action: None,
        reason: "lock_visionos_before_2",
        detail: "visionOS supports remote lock from version 2.0 on",
        source: Source::LaterDocs,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::AndroidDeviceAdmin,
        recognised_by: "deviceType android (or the export's OS column Android)",
        versions: Versions::Any,
        action: None,
        reason: "lock_android_device_admin",
        detail: "Microsoft's page lists remote lock for Android Enterprise and AOSP only, not for device administrator enrolment",
        source: Source::NotListed,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::AndroidWorkProfile,
        recognised_by: "deviceType androidForWork (personally-owned work profile)",
        versions: Versions::Any,
        action: None,
        reason: "lock_personal_work_profile",
        detail: "a personally-owned work profile cannot be remote locked (the device is the user's)",
        source: Source::NotListed,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::AndroidCorporateWorkProfile,
        recognised_by: "deviceEnrollmentType androidEnterpriseCorporateWorkProfile",
        versions: Versions::Any,
        action: Some(Action::RemoteLock),
        reason: "",
        detail: "the device locks; the user unlocks it with the existing passcode",
        source: Source::LaterDocs,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::AndroidFullyManaged,
        recognised_by: "deviceEnrollmentType androidEnterpriseFullyManaged (device owner)",
        versions: Versions::Any,
        action: Some(Action::RemoteLock),
        reason: "",
        detail: "the device locks; the user unlocks it with the existing passcode",
        source: Source::LaterDocs,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::AndroidDedicated,
        recognised_by: "deviceEnrollmentType androidEnterpriseDedicatedDevice (kiosk, device owner)",
        versions: Versions::Any,
        action: Some(Action::RemoteLock),
        reason: "",
        detail: "the device locks",
        source: Source::LaterDocs,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::AndroidAosp,
        recognised_by: "deviceType androidnGMS, or deviceEnrollmentType androidAOSPUserOwnedDeviceEnrollment / androidAOSPUserlessDeviceEnrollment",
        versions: Versions::Any,
        action: Some(Action::RemoteLock),
        reason: "",
        detail: "the device locks",
        source: Source::LaterDocs,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::Macos,
        recognised_by: "operatingSystem macOS, or deviceType mac/macMDM",
        versions: Versions::Any,
        action: Some(Action::RemoteLock),
        reason: "",
        detail: "the Mac locks behind a 6-digit recovery PIN that the admin center shows on the device's overview for up to 30 days (this tool never reads it); do not lock it again before the PIN is used",
        source: Source::LaterDocs,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::Windows,
        recognised_by: "deviceType desktop/windowsRT/holoLens/surfaceHub/cloudPC (or the export's OS column Windows), or operatingSystem Windows with a build after 10.0.15254",
        versions: Versions::Any,
        action: None,
        reason: "lock_windows_not_supported",
        detail: "Windows desktops do not support remote lock",
        source: Source::NotListed,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::WindowsMobile,
        recognised_by: "deviceType windowsPhone/winMO6, or operatingSystem Windows Phone / Windows 10 Mobile",
        versions: Versions::Any,
        action: None,
        reason: "lock_windows_mobile",
        detail: "Windows 10 Mobile is not on Microsoft's remote lock page (it left support in January 2020)",
        source: Source::NotListed,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::Other,
        recognised_by: "Linux, ChromeOS and other platforms",
        versions: Versions::Any,
        action: None,
        reason: "lock_platform_not_supported",
        detail: "Intune offers no remote lock on this platform",
        source: Source::NotListed,
        link: REMOTE_LOCK_DOC,
    },
    Rule {
        platform: Platform::NotMdmManaged,
        recognised_by: "managementAgent eas (Exchange ActiveSync only)",
        versions: Versions::Any,
        action: None,
        reason: "not_mdm_managed",
        detail: "the device is known to Intune through Exchange ActiveSync only, not enrolled in MDM, so Intune cannot act on it",
        source: Source::GraphDocs,
        link: DEVICE_TYPE_DOC,
    },
];

/// BitLocker key rotation (`rotateBitLockerKeys`, beta): Windows only, Windows 10
/// version 1909 (build 18363) or later; the device's BitLocker policy must allow
/// client-driven recovery password rotation (Intune cannot tell from the device's
/// record, so a device without it ends `failed` in Intune's record, seen by `status`).
pub static BITLOCKER_RULES: &[Rule] = &[
    Rule {
        platform: Platform::Windows,
        recognised_by: "Windows desktops (deviceType desktop/windowsRT/holoLens/surfaceHub/cloudPC, or operatingSystem Windows with a build after 10.0.15254)",
        versions: Versions::BuildAtLeast {
            build: BITLOCKER_ROTATION_BUILD,
        },
        action: Some(Action::RotateBitLockerKeys),
        reason: "",
        detail: "the operating system drive gets a new BitLocker recovery password, escrowed to Entra ID; the old one stops working. Needs the BitLocker policy's client-driven recovery password rotation",
        source: Source::LaterDocs,
        link: BITLOCKER_ROTATION_DOC,
    },
    Rule {
        platform: Platform::Windows,
        recognised_by: "Windows desktops (deviceType desktop/windowsRT/holoLens/surfaceHub/cloudPC, or operatingSystem Windows with a build after 10.0.15254)",
        versions: Versions::BuildBelow {
            build: BITLOCKER_ROTATION_BUILD,
        },
        action: None,
        reason: "bitlocker_windows_before_1909",
        detail: "BitLocker key rotation needs Windows 10 version 1909 (build 18363) or later",
        source: Source::LaterDocs,
        link: BITLOCKER_VERSION_DOC,
    },
    not_windows(Platform::Ios, "iOS/iPadOS"),
    not_windows(
        Platform::IosUserEnrollment,
        "iOS/iPadOS with Apple User Enrollment",
    ),
    not_windows(Platform::Visionos, "visionOS"),
    not_windows(Platform::AndroidDeviceAdmin, "Android device administrator"),
    not_windows(
        Platform::AndroidWorkProfile,
        "Android personally-owned work profile",
    ),
    not_windows(
        Platform::AndroidCorporateWorkProfile,
        "Android corporate-owned work profile",
    ),
    not_windows(Platform::AndroidFullyManaged, "Android fully managed"),
    not_windows(Platform::AndroidDedicated, "Android dedicated"),
    not_windows(Platform::AndroidAosp, "Android AOSP"),
    not_windows(Platform::Macos, "macOS (FileVault, not BitLocker)"),
    not_windows(Platform::Other, "Linux, ChromeOS and other platforms"),
    Rule {
        platform: Platform::WindowsMobile,
        recognised_by: "deviceType windowsPhone/winMO6, or operatingSystem Windows Phone / Windows 10 Mobile",
        versions: Versions::Any,
        action: None,
        reason: "bitlocker_windows_only",
        detail: "BitLocker key rotation is for Windows desktops only",
        source: Source::LaterDocs,
        link: BITLOCKER_ROTATION_DOC,
    },
    Rule {
        platform: Platform::NotMdmManaged,
        recognised_by: "managementAgent eas (Exchange ActiveSync only)",
        versions: Versions::Any,
        action: None,
        reason: "not_mdm_managed",
        detail: "the device is known to Intune through Exchange ActiveSync only, not enrolled in MDM, so Intune cannot act on it",
        source: Source::GraphDocs,
        link: DEVICE_TYPE_DOC,
    },
];

/// A platform that is not a Windows desktop, in the BitLocker table.
const fn not_windows(platform: Platform, recognised_by: &'static str) -> Rule {
    Rule {
        platform,
        recognised_by,
        versions: Versions::Any,
        action: None,
        reason: "bitlocker_windows_only",
        detail: "BitLocker key rotation is for Windows desktops only",
        source: Source::LaterDocs,
        link: BITLOCKER_ROTATION_DOC,
    }
}

/// Every rules table, the passcode one first: what `rules` prints.
pub static ALL_RULES: [&[Rule]; 3] = [RULES, LOCK_RULES, BITLOCKER_RULES];

/// Windows 10 Mobile's last build. Its last release, version 1709 (October 2017), left
/// support on 14 January 2020
/// (<https://learn.microsoft.com/en-us/lifecycle/announcements/windows-10-mobile-end-of-support>);
/// its builds are 10.0.15254.x, the final update being 10.0.15254.603 (KB4535289,
/// Microsoft's "Windows 10 Mobile update history"). Windows desktops have built past it
/// since their own version 1709, OS build 16299
/// (<https://learn.microsoft.com/en-us/windows/release-health/release-information>), so
/// `operatingSystem` Windows with a later build is a desktop whatever else the file lacks,
/// and one with an earlier build (1703 is 15063 on both) or none may be either.
pub const LAST_WINDOWS_MOBILE_BUILD: u32 = 15254;

/// The platforms an `operatingSystem` value names when it alone cannot tell them apart,
/// in an administrator's words; `None` when it names one platform, or none this tool
/// knows. A report says so beside the row it sends to Graph for the device's facts.
pub fn open_platforms(operating_system: &str) -> Option<&'static str> {
    match os_kind(&normalize(operating_system)) {
        Kind::AndroidUnknownFlavour => Some("an Android device administrator or work profile"),
        Kind::WindowsUnknownFlavour => Some("a Windows desktop or Windows 10 Mobile"),
        _ => None,
    }
}

/// What classification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    Platform(Platform),
    /// A fact needed to tell the platform apart is absent (look it up, or `invalid`).
    Missing(Column),
    /// The column holds a value no rule knows.
    Unrecognised(Column, String),
}

/// Recognises the platform from the row's facts. Enrollment type is the most specific
/// fact, then device type (Graph's `deviceType` or the export's `OS`), then
/// `operatingSystem`.
/// What the device will experience, from the rule that lets `action` run on the
/// platform (`platform` and `action` as the report names them): a succeeded row keeps
/// it. `None` when no rule of that platform allows it.
pub fn eligible_detail(platform: &str, action: &str) -> Option<&'static str> {
    ALL_RULES
        .iter()
        .flat_map(|t| t.iter())
        .find(|r| {
            r.platform.as_str() == platform
                && r.action.is_some_and(|a| a.effect(r.platform) == action)
        })
        .map(|r| r.detail)
}

pub fn classify(fields: &DeviceFields) -> Classified {
    let get = |c: Column| fields.get(c).map(normalize).filter(|v| !v.is_empty());
    if let Some(agent) = get(Column::ManagementAgent)
        && (agent == "eas" || agent == "exchangeactivesync")
    {
        return Classified::Platform(Platform::NotMdmManaged);
    }
    let enrollment = get(Column::DeviceEnrollmentType);
    // The tool's own platform key (a report read as a job) is more specific than any
    // fact but the enrollment type; a value that is no key (`unknown`, another MDM's
    // `Android`) is not a fact.
    let keyed = fields.get(Column::Platform).and_then(Platform::from_key);
    // `not_mdm_managed` is the management agent, not an operating system: it stands
    // whatever the OS column says, as an `eas` agent does.
    if keyed == Some(Platform::NotMdmManaged) {
        return Classified::Platform(Platform::NotMdmManaged);
    }
    let device_type = get(Column::DeviceType).filter(|t| t != "unknown");
    let export_os = get(Column::ExportOs);
    let os = get(Column::OperatingSystem);

    let from_enrollment = enrollment.as_deref().and_then(|e| match e {
        "appleuserenrollment"
        | "appleuserenrollmentwithserviceaccount"
        | "appleaccountdrivenuserenrollment" => Some(Platform::IosUserEnrollment),
        "androidenterprisededicateddevice" => Some(Platform::AndroidDedicated),
        "androidenterprisefullymanaged" => Some(Platform::AndroidFullyManaged),
        "androidenterprisecorporateworkprofile" => Some(Platform::AndroidCorporateWorkProfile),
        "androidaospuserowneddeviceenrollment" | "androidaospuserlessdeviceenrollment" => {
            Some(Platform::AndroidAosp)
        }
        _ => None,
    });
    let kind = device_type
        .as_deref()
        .or(export_os.as_deref())
        .map(device_kind)
        .or_else(|| os.as_deref().map(os_kind))
        .map(|kind| match kind {
            Kind::WindowsUnknownFlavour
                if fields
                    .get(Column::OsVersion)
                    .and_then(OsVersion::build)
                    .is_some_and(|build| build > LAST_WINDOWS_MOBILE_BUILD) =>
            {
                Kind::Known(Platform::Windows)
            }
            kind => kind,
        });
    // A platform key that contradicts the row's own operating system (an `ios` row of
    // an Android device, edited by hand) leaves the platform unknown: the device's live
    // facts decide, never the file's OS alone (it may say less than the key did).
    let contradicted = keyed.is_some_and(|p| match &kind {
        Some(Kind::Known(k)) => family(*k) != family(p),
        Some(Kind::AndroidEnterprise | Kind::AndroidUnknownFlavour) => family(p) != "android",
        Some(Kind::WindowsUnknownFlavour) => family(p) != "windows",
        _ => false,
    });
    if contradicted && from_enrollment.is_none() {
        return Classified::Missing(Column::Platform);
    }

    match (from_enrollment.or(keyed), kind) {
        // Apple User Enrollment is reported on macOS too; macOS is ineligible anyway.
        (Some(Platform::IosUserEnrollment), Some(Kind::Known(Platform::Macos))) => {
            Classified::Platform(Platform::Macos)
        }
        (Some(p), _) => Classified::Platform(p),
        (None, Some(Kind::Known(p))) => Classified::Platform(p),
        (None, Some(Kind::AndroidEnterprise)) => Classified::Missing(Column::DeviceEnrollmentType),
        (None, Some(Kind::AndroidUnknownFlavour | Kind::WindowsUnknownFlavour)) => {
            Classified::Missing(Column::DeviceType)
        }
        (None, Some(Kind::Unrecognised)) => {
            let (column, value) = if let Some(v) = fields.get(Column::DeviceType) {
                (Column::DeviceType, v)
            } else if let Some(v) = fields.get(Column::ExportOs) {
                (Column::ExportOs, v)
            } else {
                (
                    Column::OperatingSystem,
                    fields.get(Column::OperatingSystem).unwrap_or(""),
                )
            };
            Classified::Unrecognised(column, value.to_owned())
        }
        (None, None) => Classified::Missing(Column::OperatingSystem),
    }
}

/// The operating system a platform runs: what a platform key must agree with.
fn family(platform: Platform) -> &'static str {
    match platform {
        Platform::Ios | Platform::IosUserEnrollment | Platform::Visionos => "apple_mobile",
        Platform::Macos => "macos",
        Platform::AndroidDeviceAdmin
        | Platform::AndroidWorkProfile
        | Platform::AndroidCorporateWorkProfile
        | Platform::AndroidFullyManaged
        | Platform::AndroidDedicated
        | Platform::AndroidAosp => "android",
        Platform::Windows | Platform::WindowsMobile => "windows",
        Platform::Other => "other",
        // Any: it is the management agent, not an operating system.
        Platform::NotMdmManaged => "any",
    }
}

enum Kind {
    Known(Platform),
    /// `androidEnterprise`: corporate-owned, flavour in `deviceEnrollmentType`.
    AndroidEnterprise,
    /// `operatingSystem` Android: device administrator or work profile, cannot tell.
    AndroidUnknownFlavour,
    /// `operatingSystem` Windows: a desktop or Windows 10 Mobile, cannot tell. Intune
    /// gives both `Windows` (their `deviceType` differs), and so does the Entra admin
    /// center's device download, which has no device type at all.
    WindowsUnknownFlavour,
    Unrecognised,
}

/// Graph beta `deviceType` values, which the admin center export's `OS` column carries.
/// The Android mapping follows community scripts (unconfirmed by Microsoft: docs/graph.md,
/// "Telling platforms apart").
fn device_kind(value: &str) -> Kind {
    match value {
        "iphone" | "ipad" | "ipod" | "ios" | "ipados" | "iosipados" => Kind::Known(Platform::Ios),
        "visionos" => Kind::Known(Platform::Visionos),
        "android" => Kind::Known(Platform::AndroidDeviceAdmin),
        "androidforwork" => Kind::Known(Platform::AndroidWorkProfile),
        "androidenterprise" => Kind::AndroidEnterprise,
        "androidngms" | "androidaosp" | "aosp" => Kind::Known(Platform::AndroidAosp),
        "windowsphone" | "winmo6" | "windowsmobile" | "windows10mobile" => {
            Kind::Known(Platform::WindowsMobile)
        }
        "mac" | "macmdm" | "macos" | "macosx" | "osx" => Kind::Known(Platform::Macos),
        "desktop" | "windows" | "windowsrt" | "winembedded" | "windows10x" | "hololens"
        | "surfacehub" | "cloudpc" | "wince" => Kind::Known(Platform::Windows),
        "linux" | "unix" | "chromeos" | "blackberry" | "palm" | "nokia" | "isocconsumer" => {
            Kind::Known(Platform::Other)
        }
        _ => Kind::Unrecognised,
    }
}

/// Graph's `operatingSystem` free text.
fn os_kind(value: &str) -> Kind {
    match value {
        "ios" | "ipados" | "iosipados" => Kind::Known(Platform::Ios),
        "visionos" => Kind::Known(Platform::Visionos),
        "android" => Kind::AndroidUnknownFlavour,
        "androidaosp" | "aosp" => Kind::Known(Platform::AndroidAosp),
        "macos" | "macosx" | "osx" | "mac" => Kind::Known(Platform::Macos),
        // A desktop or Windows 10 Mobile: the device type tells, or a build after
        // Windows 10 Mobile's last (see `classify`).
        "windows" => Kind::WindowsUnknownFlavour,
        "windowsphone" | "windowsmobile" | "windows10mobile" => {
            Kind::Known(Platform::WindowsMobile)
        }
        "linux" | "ubuntu" | "redhat" | "chromeos" | "unix" => Kind::Known(Platform::Other),
        _ => Kind::Unrecognised,
    }
}

/// The verdict for a recognised platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Eligible {
        action: Action,
        rule: &'static Rule,
    },
    Ineligible {
        reason: &'static str,
        detail: String,
    },
    /// `osVersion` is needed and absent.
    MissingVersion,
    /// `osVersion` is needed and not a version.
    UnreadableVersion,
}

pub fn judge(platform: Platform, os_version: Option<&str>, choice: ActionChoice) -> Verdict {
    let table = choice.family().rules();
    let rows = || table.iter().filter(|r| r.platform == platform);
    let text = if rows().any(|r| r.versions != Versions::Any) {
        match os_version.map(str::trim).filter(|v| !v.is_empty()) {
            None => return Verdict::MissingVersion,
            Some(text) => Some(text),
        }
    } else {
        None
    };
    let mut found = None;
    for rule in rows() {
        match text.map_or(Some(true), |t| rule.versions.holds(t)) {
            Some(true) => {
                found = Some(rule);
                break;
            }
            Some(false) => {}
            None => return Verdict::UnreadableVersion,
        }
    }
    let Some(rule) = found else {
        // Every platform has rows covering all versions; keep the device safe regardless.
        return Verdict::Ineligible {
            reason: "platform_not_supported",
            detail: format!("no rule of {} covers this platform", choice.family().noun()),
        };
    };
    match (rule.action, choice) {
        (None, _) => Verdict::Ineligible {
            reason: rule.reason,
            detail: rule.detail.to_owned(),
        },
        (Some(action), ActionChoice::Auto) => Verdict::Eligible { action, rule },
        (Some(action), ActionChoice::Only(asked)) if asked == action => {
            Verdict::Eligible { action, rule }
        }
        (Some(action), ActionChoice::Only(asked)) => Verdict::Ineligible {
            reason: "action_not_supported",
            detail: format!(
                "{} was asked, but this platform supports {} only",
                asked.as_str(),
                action.as_str()
            ),
        },
    }
}

/// A device judged by its facts: the one verdict the planner (file facts) and the run
/// (live facts from Graph) both give, so a row is never judged two ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    Eligible {
        platform: Platform,
        action: Action,
        rule: &'static Rule,
    },
    Ineligible {
        platform: Platform,
        reason: &'static str,
        detail: String,
    },
    /// A fact the verdict needs is absent (`platform` once it is known).
    Missing {
        column: Column,
        platform: Option<Platform>,
    },
    /// The column holds a value no rule knows.
    Unrecognised { column: Column, value: String },
    /// `osVersion` is needed and not a version.
    UnreadableVersion { platform: Platform },
}

/// The verdict on a device's facts for the action asked.
pub fn verdict(fields: &DeviceFields, choice: ActionChoice) -> Judgement {
    let platform = match classify(fields) {
        Classified::Platform(p) => p,
        Classified::Missing(column) => {
            return Judgement::Missing {
                column,
                platform: None,
            };
        }
        Classified::Unrecognised(column, value) => {
            return Judgement::Unrecognised { column, value };
        }
    };
    match judge(platform, fields.get(Column::OsVersion), choice) {
        Verdict::Eligible { action, rule } => Judgement::Eligible {
            platform,
            action,
            rule,
        },
        Verdict::Ineligible { reason, detail } => Judgement::Ineligible {
            platform,
            reason,
            detail,
        },
        Verdict::MissingVersion => Judgement::Missing {
            column: Column::OsVersion,
            platform: Some(platform),
        },
        Verdict::UnreadableVersion => Judgement::UnreadableVersion { platform },
    }
}

#[cfg(test)]
mod tests;
