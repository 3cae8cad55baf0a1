//! The rules table's unit and property tests.

use super::*;
use proptest::prelude::*;

fn fields(pairs: &[(Column, &str)]) -> DeviceFields {
    pairs
        .iter()
        .fold(DeviceFields::default(), |f, (c, v)| f.with(*c, v))
}

fn platform_of(pairs: &[(Column, &str)]) -> Classified {
    classify(&fields(pairs))
}

fn eligible(platform: Platform, version: &str) -> bool {
    matches!(
        judge(platform, Some(version), ActionChoice::Auto),
        Verdict::Eligible { .. }
    )
}

fn reason(platform: Platform, version: Option<&str>, choice: ActionChoice) -> &'static str {
    match judge(platform, version, choice) {
        Verdict::Ineligible { reason, .. } => reason,
        other => panic!("expected ineligible, got {other:?}"),
    }
}

#[test]
fn ios_and_ipados_remove_the_passcode() {
    for (column, value) in [
        (Column::OperatingSystem, "iOS"),
        (Column::OperatingSystem, "iPadOS"),
        (Column::DeviceType, "iPhone"),
        (Column::ExportOs, "iPad"),
    ] {
        assert_eq!(
            platform_of(&[(column, value)]),
            Classified::Platform(Platform::Ios)
        );
    }
    assert!(matches!(
        judge(
            Platform::Ios,
            Some("17.5"),
            ActionChoice::Only(Action::RemovePasscode)
        ),
        Verdict::Eligible {
            action: Action::RemovePasscode,
            ..
        }
    ));
    // iOS does not need a version.
    assert!(matches!(
        judge(Platform::Ios, None, ActionChoice::Auto),
        Verdict::Eligible { .. }
    ));
}

#[test]
fn apple_user_enrollment_is_ineligible() {
    for et in [
        "appleUserEnrollment",
        "appleUserEnrollmentWithServiceAccount",
        "appleAccountDrivenUserEnrollment",
    ] {
        assert_eq!(
            platform_of(&[
                (Column::OperatingSystem, "iOS"),
                (Column::DeviceEnrollmentType, et)
            ]),
            Classified::Platform(Platform::IosUserEnrollment)
        );
    }
    assert_eq!(
        reason(
            Platform::IosUserEnrollment,
            Some("17.0"),
            ActionChoice::Auto
        ),
        "apple_user_enrollment"
    );
}

#[test]
fn android_device_admin_boundary_is_7_0() {
    assert_eq!(
        platform_of(&[
            (Column::OperatingSystem, "Android"),
            (Column::DeviceType, "android")
        ]),
        Classified::Platform(Platform::AndroidDeviceAdmin)
    );
    assert_eq!(
        platform_of(&[(Column::ExportOs, "Android")]),
        Classified::Platform(Platform::AndroidDeviceAdmin)
    );
    for v in ["4.4", "5.1.1", "6.0", "6.0.1", "6,0", "6.9"] {
        assert!(eligible(Platform::AndroidDeviceAdmin, v), "{v}");
    }
    for v in ["7.0", "7", "7,0", "7.1.2", "14"] {
        assert_eq!(
            reason(Platform::AndroidDeviceAdmin, Some(v), ActionChoice::Auto),
            "android_device_admin_7_or_later",
            "{v}"
        );
    }
}

#[test]
fn android_work_profile_boundary_is_7_0() {
    assert_eq!(
        platform_of(&[(Column::DeviceType, "androidForWork")]),
        Classified::Platform(Platform::AndroidWorkProfile)
    );
    assert_eq!(
        platform_of(&[
            (Column::ExportOs, "AndroidForWork"),
            (Column::OperatingSystem, "Android")
        ]),
        Classified::Platform(Platform::AndroidWorkProfile)
    );
    for v in ["7.0", "7", "8.1", "14"] {
        assert!(eligible(Platform::AndroidWorkProfile, v), "{v}");
    }
    for v in ["6.0", "6.0.1", "6,0", "5.0"] {
        assert_eq!(
            reason(Platform::AndroidWorkProfile, Some(v), ActionChoice::Auto),
            "android_work_profile_before_7",
            "{v}"
        );
    }
}

#[test]
fn android_enterprise_flavours_come_from_the_enrollment_type() {
    for (et, p) in [
        (
            "androidEnterpriseCorporateWorkProfile",
            Platform::AndroidCorporateWorkProfile,
        ),
        (
            "androidEnterpriseFullyManaged",
            Platform::AndroidFullyManaged,
        ),
        (
            "androidEnterpriseDedicatedDevice",
            Platform::AndroidDedicated,
        ),
        (
            "androidAOSPUserOwnedDeviceEnrollment",
            Platform::AndroidAosp,
        ),
        ("androidAOSPUserlessDeviceEnrollment", Platform::AndroidAosp),
    ] {
        assert_eq!(
            platform_of(&[
                (Column::DeviceType, "androidEnterprise"),
                (Column::DeviceEnrollmentType, et)
            ]),
            Classified::Platform(p)
        );
        // Later docs: eligible whatever the version, and the version is not needed.
        assert!(matches!(
            judge(p, None, ActionChoice::Auto),
            Verdict::Eligible { .. }
        ));
        let rule = RULES.iter().find(|r| r.platform == p).unwrap();
        assert_eq!(rule.source, Source::LaterDocs);
    }
    assert_eq!(
        platform_of(&[(Column::DeviceType, "androidnGMS")]),
        Classified::Platform(Platform::AndroidAosp)
    );
}

#[test]
fn android_enterprise_without_enrollment_type_is_missing_that_fact() {
    assert_eq!(
        platform_of(&[(Column::DeviceType, "androidEnterprise")]),
        Classified::Missing(Column::DeviceEnrollmentType)
    );
}

#[test]
fn android_operating_system_alone_does_not_tell_the_flavour() {
    assert_eq!(
        platform_of(&[
            (Column::OperatingSystem, "Android"),
            (Column::OsVersion, "6.0")
        ]),
        Classified::Missing(Column::DeviceType)
    );
}

#[test]
fn macos_and_windows_are_ineligible() {
    assert_eq!(
        platform_of(&[(Column::OperatingSystem, "macOS")]),
        Classified::Platform(Platform::Macos)
    );
    assert_eq!(
        platform_of(&[(Column::ExportOs, "MacMDM")]),
        Classified::Platform(Platform::Macos)
    );
    assert_eq!(
        reason(Platform::Macos, None, ActionChoice::Auto),
        "macos_not_supported"
    );
    assert_eq!(
        platform_of(&[
            (Column::OperatingSystem, "Windows"),
            (Column::OsVersion, "10.0.19045.6036")
        ]),
        Classified::Platform(Platform::Windows)
    );
    assert_eq!(
        reason(Platform::Windows, None, ActionChoice::Auto),
        "windows_not_supported"
    );
}

#[test]
fn regression_19_operating_system_windows_alone_is_a_desktop_or_windows_10_mobile() {
    // What an Entra admin center download gives: no device type, the OS and its version.
    for version in [
        None,
        Some("10.0.15254.603"),
        Some("10.0.15063.2679"),
        Some("10.0"),
    ] {
        let mut facts = vec![(Column::OperatingSystem, "Windows")];
        facts.extend(version.map(|v| (Column::OsVersion, v)));
        assert_eq!(
            platform_of(&facts),
            Classified::Missing(Column::DeviceType),
            "{version:?}"
        );
    }
    // A build after Windows 10 Mobile's last is a desktop (Windows 10 1709 on, 11).
    for version in ["10.0.16299.15", "10.0.22631.4460", "10.0.26100.2605"] {
        assert_eq!(
            platform_of(&[
                (Column::OperatingSystem, "Windows"),
                (Column::OsVersion, version)
            ]),
            Classified::Platform(Platform::Windows),
            "{version}"
        );
    }
    // The device type decides whatever the version, and the export's OS column is one.
    assert_eq!(
        platform_of(&[
            (Column::OperatingSystem, "Windows"),
            (Column::DeviceType, "desktop"),
            (Column::OsVersion, "10.0.15063.2679")
        ]),
        Classified::Platform(Platform::Windows)
    );
    assert_eq!(
        platform_of(&[(Column::ExportOs, "Windows"), (Column::OsVersion, "10,0")]),
        Classified::Platform(Platform::Windows)
    );
    // A report's platform key decides; one from another family contradicts the OS.
    assert_eq!(
        platform_of(&[
            (Column::OperatingSystem, "Windows"),
            (Column::Platform, "windows_mobile")
        ]),
        Classified::Platform(Platform::WindowsMobile)
    );
    assert_eq!(
        platform_of(&[
            (Column::OperatingSystem, "Windows"),
            (Column::Platform, "ios")
        ]),
        Classified::Missing(Column::Platform)
    );
    assert_eq!(
        open_platforms("Windows"),
        Some("a Windows desktop or Windows 10 Mobile")
    );
    assert!(open_platforms("android").is_some());
    assert_eq!(open_platforms("iOS"), None);
    assert_eq!(open_platforms("Windows Phone"), None);
}

#[test]
fn windows_10_mobile_gets_a_new_pin() {
    assert_eq!(
        platform_of(&[
            (Column::OperatingSystem, "Windows"),
            (Column::DeviceType, "windowsPhone")
        ]),
        Classified::Platform(Platform::WindowsMobile)
    );
    assert_eq!(
        platform_of(&[(Column::DeviceType, "winMO6")]),
        Classified::Platform(Platform::WindowsMobile)
    );
    assert!(matches!(
        judge(Platform::WindowsMobile, None, ActionChoice::Auto),
        Verdict::Eligible {
            action: Action::ResetPin,
            ..
        }
    ));
    assert_eq!(
        reason(
            Platform::WindowsMobile,
            None,
            ActionChoice::Only(Action::RemovePasscode)
        ),
        "action_not_supported"
    );
    assert_eq!(
        reason(Platform::Ios, None, ActionChoice::Only(Action::ResetPin)),
        "action_not_supported"
    );
}

#[test]
fn visionos_from_1_1() {
    assert!(eligible(Platform::Visionos, "1.1"));
    assert!(eligible(Platform::Visionos, "2.0"));
    assert_eq!(
        reason(Platform::Visionos, Some("1.0"), ActionChoice::Auto),
        "visionos_before_1_1"
    );
}

#[test]
fn exchange_activesync_only_devices_are_not_mdm_managed() {
    assert_eq!(
        platform_of(&[
            (Column::OperatingSystem, "iOS"),
            (Column::ManagementAgent, "eas")
        ]),
        Classified::Platform(Platform::NotMdmManaged)
    );
    assert_eq!(
        reason(Platform::NotMdmManaged, None, ActionChoice::Auto),
        "not_mdm_managed"
    );
    // easMdm is MDM-managed.
    assert_eq!(
        platform_of(&[
            (Column::OperatingSystem, "iOS"),
            (Column::ManagementAgent, "easMdm")
        ]),
        Classified::Platform(Platform::Ios)
    );
}

#[test]
fn other_platforms_are_ineligible() {
    assert_eq!(
        platform_of(&[(Column::OperatingSystem, "Linux")]),
        Classified::Platform(Platform::Other)
    );
    assert_eq!(
        platform_of(&[(Column::DeviceType, "chromeOS")]),
        Classified::Platform(Platform::Other)
    );
    assert_eq!(
        reason(Platform::Other, None, ActionChoice::Auto),
        "platform_not_supported"
    );
}

#[test]
fn unknown_text_is_unrecognised_and_absent_facts_are_missing() {
    assert_eq!(
        platform_of(&[(Column::OperatingSystem, "Symbian")]),
        Classified::Unrecognised(Column::OperatingSystem, "Symbian".into())
    );
    assert_eq!(
        platform_of(&[(Column::SerialNumber, "X")]),
        Classified::Missing(Column::OperatingSystem)
    );
}

#[test]
fn versioned_rules_need_a_readable_version() {
    assert_eq!(
        judge(Platform::AndroidDeviceAdmin, None, ActionChoice::Auto),
        Verdict::MissingVersion
    );
    assert_eq!(
        judge(Platform::AndroidWorkProfile, Some("  "), ActionChoice::Auto),
        Verdict::MissingVersion
    );
    assert_eq!(
        judge(
            Platform::AndroidDeviceAdmin,
            Some("Marshmallow"),
            ActionChoice::Auto
        ),
        Verdict::UnreadableVersion
    );
}

#[test]
fn every_rule_has_a_source_and_ineligible_rules_have_a_reason() {
    for rule in RULES {
        assert!(
            rule.link.starts_with("https://learn.microsoft.com/"),
            "{rule:?}"
        );
        assert_eq!(rule.action.is_none(), !rule.reason.is_empty(), "{rule:?}");
        assert!(!rule.detail.is_empty());
    }
}

#[test]
fn action_spellings() {
    assert_eq!(
        ActionChoice::parse("remove-passcode"),
        Some(ActionChoice::Only(Action::RemovePasscode))
    );
    assert_eq!(
        ActionChoice::parse("Remove passcode"),
        Some(ActionChoice::Only(Action::RemovePasscode))
    );
    assert_eq!(
        ActionChoice::parse("reset_pin"),
        Some(ActionChoice::Only(Action::ResetPin))
    );
    assert_eq!(
        ActionChoice::parse("resetPasscode"),
        Some(ActionChoice::Auto)
    );
    assert_eq!(ActionChoice::parse("AUTO"), Some(ActionChoice::Auto));
    assert_eq!(ActionChoice::parse("wipe"), None);
}

proptest! {
    /// Every platform gets exactly one verdict for every version, and the Android
    /// kinds flip exactly at 7.0.
    #[test]
    fn android_verdicts_flip_exactly_at_7_0(major in 0u32..30, minor in 0u32..20) {
        let v = format!("{major}.{minor}");
        let below_7 = major < 7;
        prop_assert_eq!(eligible(Platform::AndroidDeviceAdmin, &v), below_7);
        prop_assert_eq!(eligible(Platform::AndroidWorkProfile, &v), !below_7);
    }

    #[test]
    fn classification_never_panics(os in "\\PC{0,12}", dt in "\\PC{0,12}", et in "\\PC{0,12}") {
        let _ = classify(&fields(&[(Column::OperatingSystem, &os), (Column::DeviceType, &dt), (Column::DeviceEnrollmentType, &et)]));
    }
}

#[test]
fn the_report_names_what_the_action_does_on_each_platform() {
    assert_eq!(
        Action::RemovePasscode.effect(Platform::Ios),
        "remove-passcode"
    );
    assert_eq!(
        Action::RemovePasscode.effect(Platform::AndroidWorkProfile),
        "reset-passcode"
    );
    assert_eq!(
        Action::RemovePasscode.effect(Platform::AndroidDeviceAdmin),
        "reset-passcode"
    );
    assert_eq!(
        Action::ResetPin.effect(Platform::WindowsMobile),
        "reset-pin"
    );
    // A report fed back as a job reads its own words.
    assert_eq!(
        ActionChoice::parse("reset-passcode"),
        Some(ActionChoice::Auto)
    );
    assert_eq!(
        ActionChoice::parse("remove-passcode"),
        Some(ActionChoice::Only(Action::RemovePasscode))
    );
}

#[test]
fn a_succeeded_row_finds_its_platforms_caveat() {
    assert!(
        eligible_detail("android_work_profile", "reset-passcode")
            .is_some_and(|d| d.contains("reset token"))
    );
    assert!(eligible_detail("macos", "remove-passcode").is_none());
    assert!(eligible_detail("", "auto").is_none());
}

#[test]
fn every_platform_key_reads_back_as_headers_are_spelled() {
    for p in Platform::ALL {
        assert_eq!(Platform::from_key(p.as_str()), Some(p), "{p:?}");
    }
    assert_eq!(
        Platform::from_key("Android Work-Profile"),
        Some(Platform::AndroidWorkProfile)
    );
    assert_eq!(Platform::from_key("Android"), None);
    assert_eq!(Platform::from_key("unknown"), None);
}

/// Issue 21: every device action's table judges every platform and every version of
/// it exactly once (no platform left to a default, no version two rules claim), and
/// each row names its Microsoft (or Apple) page and, when ineligible, its reason.
#[test]
fn regression_21_every_actions_table_covers_every_platform_and_version_once() {
    let versions = [
        "0.9",
        "1.0",
        "1.1",
        "2.0",
        "6.0",
        "7.0",
        "13",
        "17.5",
        "10.0.17763.1",
        "10.0.18362.1",
        "10.0.18363.418",
        "10.0.26100.2314",
    ];
    for family in Family::ALL.into_iter().filter(|f| !f.on_users()) {
        let table = family.rules();
        for platform in Platform::ALL {
            let rows: Vec<&Rule> = table.iter().filter(|r| r.platform == platform).collect();
            assert!(!rows.is_empty(), "{family:?} has no row for {platform:?}");
            for v in versions {
                let holding = rows
                    .iter()
                    .filter(|r| r.versions.holds(v) == Some(true))
                    .count();
                let readable = rows.iter().all(|r| r.versions.holds(v).is_some());
                if readable {
                    assert_eq!(holding, 1, "{family:?} {platform:?} {v}");
                }
            }
        }
        for rule in table {
            assert!(rule.link.starts_with("https://"), "{rule:?}");
            assert_eq!(rule.action.is_none(), !rule.reason.is_empty(), "{rule:?}");
            if let Some(action) = rule.action {
                assert_eq!(action.family(), family, "{rule:?}");
            }
        }
    }
}

/// Issue 21: remote lock and key rotation as Microsoft's pages list them.
#[test]
fn regression_21_lock_and_rotation_follow_microsofts_pages() {
    let lock = ActionChoice::Only(Action::RemoteLock);
    let rotate = ActionChoice::Only(Action::RotateBitLockerKeys);
    for p in [
        Platform::Ios,
        Platform::Macos,
        Platform::AndroidFullyManaged,
        Platform::AndroidDedicated,
        Platform::AndroidCorporateWorkProfile,
        Platform::AndroidAosp,
    ] {
        assert!(
            matches!(judge(p, None, lock), Verdict::Eligible { .. }),
            "{p:?}"
        );
    }
    assert!(matches!(
        judge(Platform::Visionos, Some("2.0"), lock),
        Verdict::Eligible { .. }
    ));
    assert_eq!(
        reason(Platform::Visionos, Some("1.2"), lock),
        "lock_visionos_before_2"
    );
    assert_eq!(
        reason(Platform::Windows, None, lock),
        "lock_windows_not_supported"
    );
    assert_eq!(
        reason(Platform::AndroidWorkProfile, None, lock),
        "lock_personal_work_profile"
    );
    assert_eq!(
        reason(Platform::IosUserEnrollment, None, lock),
        "lock_user_enrollment"
    );
    assert!(matches!(
        judge(Platform::Windows, Some("10.0.18363.418"), rotate),
        Verdict::Eligible { .. }
    ));
    assert_eq!(
        reason(Platform::Windows, Some("10.0.18362.1"), rotate),
        "bitlocker_windows_before_1909"
    );
    // A Windows version without its build cannot be judged: the tenant's facts will.
    assert_eq!(
        judge(Platform::Windows, Some("10.0"), rotate),
        Verdict::UnreadableVersion
    );
    assert_eq!(
        judge(Platform::Windows, None, rotate),
        Verdict::MissingVersion
    );
    assert_eq!(
        reason(Platform::Ios, None, rotate),
        "bitlocker_windows_only"
    );
}

proptest! {
    /// Issue 21: a list of actions reads the same in any order and with repeats: one
    /// per kind, in the kinds' order (the user action first).
    #[test]
    fn regression_21_an_action_list_is_its_kinds_in_order(
        picks in proptest::collection::vec(0usize..5, 1..8),
        sep in prop::sample::select(vec![",", ";", " , ", "+", "|"]),
    ) {
        let names = ["revoke-sessions", "remote-lock", "rotate-bitlocker-keys", "remove-passcode", "auto"];
        let text: Vec<&str> = picks.iter().map(|i| names[*i]).collect();
        match Actions::parse(&text.join(sep)) {
            Ok(actions) => {
                let kinds: Vec<Family> = actions.iter().map(|c| c.family()).collect();
                let mut sorted = kinds.clone();
                sorted.sort();
                sorted.dedup();
                prop_assert_eq!(&kinds, &sorted);
                // Reading its own text back gives the same list.
                prop_assert_eq!(Actions::parse(&actions.as_text()).unwrap(), actions);
            }
            // Only two different passcode choices in one list are refused.
            Err(why) => {
                prop_assert!(picks.contains(&3) && picks.contains(&4), "{}", why);
                prop_assert!(why.contains("are both a passcode reset"), "{}", why);
            }
        }
    }
}
