//! The planner's unit tests: identity, verdicts, duplicates.

use super::*;
use crate::device::DeviceFields;
use crate::rules::Action;

const ID_A: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const ID_B: &str = "11111111-2222-3333-4444-555555555555";

fn planner(lookup: LookupMode) -> Planner {
    let mut p = Planner::new(PlanOptions {
        action: Some(crate::rules::Actions::one(ActionChoice::Auto)),
        lookup,
        tenants: TenantScope::One,
    });
    p.add_source("a.csv");
    p.add_source("b.csv");
    p
}

fn row(n: u64, pairs: &[(Column, &str)]) -> JobRow {
    JobRow {
        row: n,
        fields: pairs
            .iter()
            .fold(DeviceFields::default(), |f, (c, v)| f.with(*c, v)),
        defect: None,
    }
}

fn assess(p: &mut Planner, file: usize, r: JobRow) -> Assessment {
    p.assess_one(file, &ColumnNames::default(), None, r)
}

fn ios(id: &str) -> Vec<(Column, &str)> {
    vec![
        (Column::Id, id),
        (Column::OperatingSystem, "iOS"),
        (Column::OsVersion, "17.5"),
    ]
}

#[test]
fn an_ios_device_with_an_id_is_planned_without_lookup() {
    let mut p = planner(LookupMode::Auto);
    let a = assess(&mut p, 0, row(2, &ios(ID_A)));
    assert_eq!(a.row.outcome, Outcome::Planned);
    assert_eq!(a.row.platform, "ios");
    assert_eq!(a.row.action, "remove-passcode");
    assert_eq!(a.row.reason, "");
    let work = a.work.unwrap();
    assert_eq!(work.identity, Identity::Id(ID_A.into()));
    assert_eq!(work.action, Some(Action::RemovePasscode));
    assert!(!work.lookup);
}

#[test]
fn ids_are_normalised_to_lower_case_without_braces() {
    let mut p = planner(LookupMode::Auto);
    let upper = format!("{{{}}}", ID_A.to_uppercase());
    let a = assess(&mut p, 0, row(2, &ios(&upper)));
    assert_eq!(a.row.device_id, ID_A);
}

#[test]
fn a_malformed_guid_is_invalid_and_names_the_column() {
    let mut p = planner(LookupMode::Auto);
    for bad in [
        "1234",
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fZ",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let a = assess(
            &mut p,
            0,
            row(2, &[(Column::Id, bad), (Column::OperatingSystem, "iOS")]),
        );
        assert_eq!(a.row.outcome, Outcome::Invalid);
        assert_eq!(a.row.reason, "malformed_id");
        assert!(a.row.detail.contains("column 'id'"), "{}", a.row.detail);
    }
}

#[test]
fn the_later_row_of_the_same_device_is_a_duplicate_naming_the_earlier_row() {
    let mut p = planner(LookupMode::Auto);
    assert_eq!(
        assess(&mut p, 0, row(2, &ios(ID_A))).row.outcome,
        Outcome::Planned
    );
    assert_eq!(
        assess(&mut p, 0, row(3, &ios(ID_B))).row.outcome,
        Outcome::Planned
    );
    let dup = assess(&mut p, 0, row(7, &ios(&ID_A.to_uppercase())));
    assert_eq!(dup.row.outcome, Outcome::Duplicate);
    assert_eq!(dup.row.reason, "duplicate_device");
    assert!(dup.row.detail.contains("row 2"), "{}", dup.row.detail);
    assert!(dup.work.is_none());
    let across = assess(&mut p, 1, row(4, &ios(ID_B)));
    assert_eq!(across.row.outcome, Outcome::Duplicate);
    assert!(
        across.row.detail.contains("row 3 of a.csv"),
        "{}",
        across.row.detail
    );
}

#[test]
fn a_duplicate_is_found_after_the_index_moved_to_its_temporary_file() {
    let mut p = planner(LookupMode::Auto);
    let n = crate::spill::IN_MEMORY as u64 * 3;
    let id = |i: u64| format!("{i:08x}-0000-4000-8000-{i:012x}");
    for i in 0..n {
        let a = assess(&mut p, 0, row(i + 2, &ios(&id(i))));
        assert_eq!(a.row.outcome, Outcome::Planned, "row {}", i + 2);
    }
    assert!(p.seen.spilled(), "the test must reach the disk");
    let dup = assess(&mut p, 1, row(7, &ios(&id(5))));
    assert_eq!(dup.row.outcome, Outcome::Duplicate);
    assert_eq!(
        dup.row.detail,
        "the same device as row 7 of a.csv, which is handled there"
    );
    assert!(p.broken.is_none());
}

#[test]
fn serial_numbers_deduplicate_case_insensitively_when_there_is_no_id() {
    let mut p = planner(LookupMode::Auto);
    let first = assess(
        &mut p,
        0,
        row(
            2,
            &[
                (Column::SerialNumber, "dmpx12"),
                (Column::OperatingSystem, "iOS"),
            ],
        ),
    );
    assert_eq!(first.row.outcome, Outcome::Planned);
    assert_eq!(first.row.reason, "lookup_required");
    let again = assess(&mut p, 0, row(3, &[(Column::SerialNumber, "DMPX12")]));
    assert_eq!(again.row.outcome, Outcome::Duplicate);
}

#[test]
fn two_intune_records_sharing_a_serial_are_both_kept() {
    // A re-enrolled device: two Intune ids, one serial number. Both are real records.
    let mut p = planner(LookupMode::Auto);
    let mut a = ios(ID_A);
    a.push((Column::SerialNumber, "SAME"));
    let mut b = ios(ID_B);
    b.push((Column::SerialNumber, "SAME"));
    assert_eq!(assess(&mut p, 0, row(2, &a)).row.outcome, Outcome::Planned);
    assert_eq!(assess(&mut p, 0, row(3, &b)).row.outcome, Outcome::Planned);
}

#[test]
fn an_invalid_row_does_not_claim_the_device() {
    // With --lookup never an unreadable version is invalid (else Graph's facts judge it).
    let mut p = planner(LookupMode::Never);
    let broken = assess(
        &mut p,
        0,
        row(
            2,
            &[
                (Column::Id, ID_A),
                (Column::DeviceType, "android"),
                (Column::OsVersion, "six"),
            ],
        ),
    );
    assert_eq!(broken.row.outcome, Outcome::Invalid);
    assert_eq!(broken.row.reason, "unreadable_os_version");
    assert_eq!(
        assess(&mut p, 0, row(3, &ios(ID_A))).row.outcome,
        Outcome::Planned
    );
}

#[test]
fn regression_19_facts_the_rules_cannot_read_are_judged_by_the_tenant_or_invalid_with_lookup_never()
{
    for (facts, reason, named) in [
        (
            vec![
                (Column::Id, ID_A),
                (Column::OperatingSystem, "MacMDM"),
                (Column::OsVersion, "15.1"),
            ],
            "unrecognised_platform",
            "column 'operatingSystem': 'MacMDM' is not a platform this tool knows",
        ),
        (
            vec![
                (Column::Id, ID_A),
                (Column::DeviceType, "android"),
                (Column::OsVersion, "seven"),
            ],
            "unreadable_os_version",
            "column 'osVersion': 'seven' is not a version number",
        ),
    ] {
        let mut auto = planner(LookupMode::Auto);
        let a = assess(&mut auto, 0, row(2, &facts));
        assert_eq!(a.row.outcome, Outcome::Planned, "{named}");
        assert_eq!(a.row.reason, "lookup_required");
        assert!(a.row.detail.starts_with(named), "{}", a.row.detail);
        assert!(a.row.detail.contains("read from Graph"), "{}", a.row.detail);
        let work = a.work.unwrap();
        assert!(work.lookup);
        assert_eq!(work.identity, Identity::Id(ID_A.into()));
        let dup = assess(&mut auto, 0, row(3, &ios(ID_A)));
        assert_eq!(
            dup.row.outcome,
            Outcome::Duplicate,
            "the looked-up row claims its device"
        );

        let mut never = planner(LookupMode::Never);
        let n = assess(&mut never, 0, row(2, &facts));
        assert_eq!(n.row.outcome, Outcome::Invalid);
        assert_eq!(n.row.reason, reason);
        assert!(n.row.detail.starts_with(named), "{}", n.row.detail);
        assert!(n.work.is_none());
    }
}

#[test]
fn missing_platform_facts_are_looked_up_or_invalid_with_lookup_never() {
    let facts = [
        (Column::Id, ID_A),
        (Column::OperatingSystem, "Android"),
        (Column::OsVersion, "6.0"),
    ];
    let mut auto = planner(LookupMode::Auto);
    let a = assess(&mut auto, 0, row(2, &facts));
    assert_eq!(a.row.outcome, Outcome::Planned);
    assert_eq!(a.row.reason, "lookup_required");
    assert!(a.work.unwrap().lookup);
    let mut never = planner(LookupMode::Never);
    let n = assess(&mut never, 0, row(2, &facts));
    assert_eq!(n.row.outcome, Outcome::Invalid);
    assert_eq!(n.row.reason, "missing_device_type");
    // The file has no deviceType column: the detail says so, and names no column the
    // file does not have as if it were there.
    assert!(
        n.row.detail.contains("the file has no deviceType column"),
        "{}",
        n.row.detail
    );
    assert!(!n.row.detail.contains("column 'deviceType'"));
}

/// The columns of the Entra admin center's "Download devices" file as the reader names
/// them: its `deviceId` is the Entra device id.
fn entra_names() -> ColumnNames {
    let mut names = ColumnNames::default();
    names.note(Column::AzureAdDeviceId, "deviceId");
    names.note(Column::DeviceName, "displayName");
    names.note(Column::OperatingSystem, "operatingSystem");
    names.note(Column::OsVersion, "operatingSystemVersion");
    names
}

const ENTRA_ID: &str = "7c2d9e41-3b5a-4f6e-8d1c-2a9b8c7d6e5f";

#[test]
fn regression_19_an_entra_download_windows_row_is_looked_up_by_its_entra_device_id() {
    // A Lumia and an old desktop both read `Windows` 10.0.15063 in that file.
    let facts = [
        (Column::AzureAdDeviceId, ENTRA_ID),
        (Column::DeviceName, "Lumia-Ana"),
        (Column::OperatingSystem, "Windows"),
        (Column::OsVersion, "10.0.15063.2679"),
    ];
    let mut p = planner(LookupMode::Auto);
    let a = p.assess_one(0, &entra_names(), None, row(2, &facts));
    assert_eq!(a.row.outcome, Outcome::Planned, "{:?}", a.row);
    assert_eq!(a.row.reason, "lookup_required");
    // Neither platform is claimed before the tenant says which.
    assert_eq!(a.row.platform, "");
    assert!(
        a.row
            .detail
            .contains(&format!("found by deviceId '{ENTRA_ID}'")),
        "{}",
        a.row.detail
    );
    assert!(
        a.row
            .detail
            .contains("a Windows desktop or Windows 10 Mobile"),
        "{}",
        a.row.detail
    );
    let work = a.work.unwrap();
    assert!(work.lookup);
    assert_eq!(
        work.identity,
        Identity::Lookup {
            column: Column::AzureAdDeviceId,
            value: ENTRA_ID.into()
        }
    );
    assert_eq!((work.platform, work.action), (None, None));
    // `--lookup never`: the file alone cannot judge it, so it is not judged a desktop.
    let mut never = planner(LookupMode::Never);
    let facts = [(Column::Id, ID_A), (Column::OperatingSystem, "Windows")];
    let n = never.assess_one(0, &entra_names(), None, row(2, &facts));
    assert_eq!(n.row.outcome, Outcome::Invalid);
    assert_eq!(n.row.reason, "missing_device_type");
}

#[test]
fn regression_19_a_windows_row_with_a_clear_desktop_fact_stays_offline() {
    let mut p = planner(LookupMode::Auto);
    let cases: [&[(Column, &str)]; 3] = [
        // Graph's device type.
        &[
            (Column::Id, ID_A),
            (Column::OperatingSystem, "Windows"),
            (Column::DeviceType, "desktop"),
        ],
        // The admin center export's OS column, a device type too.
        &[
            (Column::SerialNumber, "PF0ABC12"),
            (Column::ExportOs, "Windows"),
        ],
        // An Entra row whose build is after Windows 10 Mobile's last.
        &[
            (Column::AzureAdDeviceId, ENTRA_ID),
            (Column::OperatingSystem, "Windows"),
            (Column::OsVersion, "10.0.22631.4460"),
        ],
    ];
    for (n, facts) in cases.into_iter().enumerate() {
        let a = p.assess_one(0, &entra_names(), None, row(2 + n as u64, facts));
        assert_eq!(a.row.outcome, Outcome::Ineligible, "{facts:?}");
        assert_eq!(a.row.reason, "windows_not_supported", "{facts:?}");
        assert_eq!(a.row.platform, "windows");
        // No read: the file's facts decide.
        assert!(a.work.is_none(), "{facts:?}");
    }
}

#[test]
fn an_empty_cell_of_a_column_the_file_has_is_named_by_its_header() {
    let mut names = ColumnNames::default();
    names.note(Column::Id, "Device ID");
    names.note(Column::OperatingSystem, "OS name");
    names.note(Column::DeviceType, "Device type");
    let facts = [(Column::Id, ID_A), (Column::OperatingSystem, "Android")];
    let mut never = planner(LookupMode::Never);
    let n = never.assess_one(0, &names, None, row(2, &facts));
    assert_eq!(n.row.reason, "missing_device_type");
    assert!(
        n.row.detail.starts_with("column 'Device type' is empty"),
        "{}",
        n.row.detail
    );
}

#[test]
fn no_action_column_is_said_to_be_absent_not_empty() {
    let mut p = Planner::new(PlanOptions {
        action: None,
        lookup: LookupMode::Auto,
        tenants: TenantScope::One,
    });
    p.add_source("a.csv");
    let a = assess(&mut p, 0, row(2, &ios(ID_A)));
    assert_eq!(a.row.reason, "no_action");
    assert!(
        a.row.detail.contains("the file has no action column"),
        "{}",
        a.row.detail
    );
}

/// A row as a run report writes it: the tool's own platform key beside the
/// operatingSystem text that cannot tell Android flavours apart.
fn report_row<'a>(outcome: &'a str, reason: &'a str, state: &'a str) -> Vec<(Column, &'a str)> {
    let mut facts = vec![
        (Column::Id, ID_A),
        (Column::OperatingSystem, "Android"),
        (Column::OsVersion, "14"),
        (Column::Platform, "android_work_profile"),
        (Column::Action, "reset-passcode"),
        (Column::Outcome, outcome),
    ];
    if !reason.is_empty() {
        facts.push((Column::Reason, reason));
    }
    if !state.is_empty() {
        facts.push((Column::ActionState, state));
    }
    facts
}

#[test]
fn a_report_row_is_judged_by_the_platform_the_report_names() {
    let mut p = planner(LookupMode::Auto);
    let a = assess(&mut p, 0, row(2, &report_row("failed", "gave_up", "")));
    assert_eq!(a.row.outcome, Outcome::Planned, "{}", a.row.detail);
    assert_eq!(a.row.platform, "android_work_profile");
    assert_eq!(a.row.action, "reset-passcode");
    assert!(!a.work.unwrap().lookup, "the report's facts are enough");
    // The user-enrollment key is more specific than the operatingSystem iOS beside it.
    let ue = [
        (Column::Id, ID_B),
        (Column::OperatingSystem, "iOS"),
        (Column::OsVersion, "17.5"),
        (Column::Platform, "ios_user_enrollment"),
    ];
    let b = assess(&mut p, 0, row(3, &ue));
    assert_eq!(b.row.outcome, Outcome::Ineligible);
    assert_eq!(b.row.platform, "ios_user_enrollment");
}

#[test]
fn a_platform_key_that_contradicts_the_operating_system_is_not_a_fact() {
    let mut p = planner(LookupMode::Auto);
    let facts = [
        (Column::Id, ID_A),
        (Column::OperatingSystem, "Android"),
        (Column::OsVersion, "14"),
        (Column::Platform, "ios"),
    ];
    let a = assess(&mut p, 0, row(2, &facts));
    assert_ne!(a.row.platform, "ios", "{:?}", a.row);
    assert_eq!(a.row.reason, "lookup_required", "the live facts decide");
    // The other way round too: the OS alone would make it an eligible iPhone.
    let facts = [
        (Column::Id, ID_B),
        (Column::OperatingSystem, "iOS"),
        (Column::OsVersion, "17.5"),
        (Column::Platform, "android_work_profile"),
    ];
    let b = assess(&mut p, 0, row(3, &facts));
    assert_eq!(b.row.reason, "lookup_required", "{:?}", b.row);
    assert!(b.work.unwrap().lookup);
    assert!(
        b.row.detail.contains("column 'platform' contradicts"),
        "{}",
        b.row.detail
    );
}

#[test]
fn a_report_row_not_managed_by_mdm_stays_ineligible_whatever_its_os() {
    // A report's EAS-only iPhone: the report has no managementAgent column.
    let mut p = planner(LookupMode::Auto);
    let facts = [
        (Column::Id, ID_A),
        (Column::OperatingSystem, "iOS"),
        (Column::OsVersion, "17.2"),
        (Column::Platform, "not_mdm_managed"),
    ];
    let a = assess(&mut p, 0, row(2, &facts));
    assert_eq!(a.row.outcome, Outcome::Ineligible, "{:?}", a.row);
    assert_eq!(a.row.platform, "not_mdm_managed");
}

#[test]
fn a_platform_value_that_is_no_key_is_not_a_fact() {
    let mut p = planner(LookupMode::Auto);
    let facts = [
        (Column::Id, ID_A),
        (Column::OperatingSystem, "iOS"),
        (Column::OsVersion, "17.5"),
        (Column::Platform, "unknown"),
    ];
    let a = assess(&mut p, 0, row(2, &facts));
    assert_eq!(a.row.platform, "ios");
    assert_eq!(a.row.outcome, Outcome::Planned);
}

#[test]
fn a_report_read_as_a_job_never_resets_a_device_it_already_reset() {
    let mut p = planner(LookupMode::Auto);
    let done = assess(&mut p, 0, row(2, &report_row("succeeded", "", "")));
    assert_eq!(done.row.outcome, Outcome::Ineligible);
    assert_eq!(done.row.reason, "already_reset");
    assert!(done.work.is_none());
    assert!(done.row.detail.contains("a.csv"), "{}", done.row.detail);
    let mut p = planner(LookupMode::Auto);
    let lost = assess(
        &mut p,
        0,
        row(2, &report_row("failed", "outcome_unknown", "")),
    );
    assert_eq!(lost.row.reason, "fate_unknown");
    assert!(lost.work.is_none());
    assert!(
        lost.row.detail.contains("intune-reset status a.csv"),
        "{}",
        lost.row.detail
    );
}

#[test]
fn a_status_report_retries_only_the_resets_that_failed_on_the_device() {
    for (state, retried) in [
        ("failed", true),
        ("notSupported", true),
        ("canceled", true),
        ("done", false),
        ("pending", false),
        ("active", false),
    ] {
        let mut p = planner(LookupMode::Auto);
        let a = assess(&mut p, 0, row(2, &report_row("succeeded", "", state)));
        assert_eq!(a.work.is_some(), retried, "{state}: {}", a.row.detail);
        if !retried {
            assert_eq!(a.row.reason, "already_reset", "{state}");
        }
    }
    // A lost answer `status` settled as failed is retried; one it could not find is not.
    let mut p = planner(LookupMode::Auto);
    let settled = assess(
        &mut p,
        0,
        row(2, &report_row("failed", "outcome_unknown", "failed")),
    );
    assert!(settled.work.is_some());
    let mut p = planner(LookupMode::Auto);
    let unsettled = assess(
        &mut p,
        0,
        row(
            3,
            &report_row("failed", "outcome_unknown", "not_found_in_results"),
        ),
    );
    assert_eq!(unsettled.row.reason, "fate_unknown");
}

#[test]
fn a_missing_version_names_the_file_own_header() {
    let mut names = ColumnNames::default();
    names.note(Column::OsVersion, "OS version");
    let mut p = planner(LookupMode::Never);
    let a = p.assess_one(
        0,
        &names,
        None,
        row(
            5,
            &[(Column::Id, ID_A), (Column::ExportOs, "AndroidForWork")],
        ),
    );
    assert_eq!(a.row.reason, "missing_os_version");
    assert!(
        a.row.detail.contains("column 'OS version'"),
        "{}",
        a.row.detail
    );
}

#[test]
fn rows_without_an_id_need_a_lookup_or_are_invalid_with_lookup_never() {
    let mut never = planner(LookupMode::Never);
    let a = assess(
        &mut never,
        0,
        row(
            2,
            &[
                (Column::SerialNumber, "X1"),
                (Column::OperatingSystem, "iOS"),
            ],
        ),
    );
    assert_eq!(a.row.outcome, Outcome::Invalid);
    assert_eq!(a.row.reason, "lookup_disabled");
    let b = assess(&mut never, 0, row(3, &[(Column::OperatingSystem, "iOS")]));
    assert_eq!(b.row.reason, "no_identity");
}

#[test]
fn ineligible_devices_are_not_work() {
    let mut p = planner(LookupMode::Always);
    let a = assess(
        &mut p,
        0,
        row(2, &[(Column::Id, ID_A), (Column::OperatingSystem, "macOS")]),
    );
    assert_eq!(a.row.outcome, Outcome::Ineligible);
    assert_eq!(a.row.reason, "macos_not_supported");
    assert!(a.work.is_none());
}

#[test]
fn lookup_always_reads_live_facts_for_eligible_rows() {
    let mut p = planner(LookupMode::Always);
    let a = assess(&mut p, 0, row(2, &ios(ID_A)));
    assert_eq!(a.row.outcome, Outcome::Planned);
    assert_eq!(a.row.reason, "lookup_required");
    assert!(a.work.unwrap().lookup);
}

#[test]
fn the_row_action_wins_over_the_job_and_the_command_line() {
    let mut p = Planner::new(PlanOptions {
        action: Some(crate::rules::Actions::one(ActionChoice::Only(
            Action::ResetPin,
        ))),
        lookup: LookupMode::Auto,
        tenants: TenantScope::One,
    });
    p.add_source("job.json");
    let names = ColumnNames::default();
    // Command line says reset-pin: an iOS row is ineligible...
    let a = p.assess_one(0, &names, None, row(1, &ios(ID_A)));
    assert_eq!(a.row.reason, "action_not_supported");
    // ...unless the job document or the row says otherwise.
    let b = p.assess_one(
        0,
        &names,
        Some(&crate::rules::Actions::one(ActionChoice::Auto)),
        row(2, &ios(ID_B)),
    );
    assert_eq!(b.row.outcome, Outcome::Planned);
    let mut with_action = ios("22222222-2222-3333-4444-555555555555");
    with_action.push((Column::Action, "remove passcode"));
    let c = p.assess_one(0, &names, None, row(3, &with_action));
    assert_eq!(c.row.outcome, Outcome::Planned);
    let mut bad = ios("33333333-2222-3333-4444-555555555555");
    bad.push((Column::Action, "frobnicate"));
    let d = p.assess_one(0, &names, None, row(4, &bad));
    assert_eq!(d.row.reason, "unknown_action");
}

#[test]
fn control_characters_and_huge_values_are_invalid() {
    let mut p = planner(LookupMode::Auto);
    let nul = assess(
        &mut p,
        0,
        row(
            2,
            &[
                (Column::SerialNumber, "AB\0C"),
                (Column::OperatingSystem, "iOS"),
            ],
        ),
    );
    assert_eq!(nul.row.reason, "control_characters");
    let huge = "X".repeat(MAX_VALUE_LEN + 1);
    let long = assess(
        &mut p,
        0,
        row(
            3,
            &[
                (Column::DeviceName, &huge),
                (Column::OperatingSystem, "iOS"),
            ],
        ),
    );
    assert_eq!(long.row.reason, "value_too_long");
    assert!(
        long.row.device_name.chars().count() <= 257,
        "the report echoes a shortened value"
    );
}

#[test]
fn defects_from_the_reader_become_invalid_rows() {
    let mut p = planner(LookupMode::Auto);
    let r = JobRow {
        row: 9,
        fields: DeviceFields::default(),
        defect: Some(crate::job::RowDefect {
            reason: "invalid_json",
            detail: "bad".into(),
        }),
    };
    let a = assess(&mut p, 0, r);
    assert_eq!(
        (a.row.outcome, a.row.reason.as_ref(), a.row.row),
        (Outcome::Invalid, "invalid_json", 9)
    );
}

#[test]
fn guid_parsing() {
    assert_eq!(parse_guid(ID_A).as_deref(), Some(ID_A));
    assert_eq!(
        parse_guid(" {0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0} ").as_deref(),
        Some(ID_A)
    );
    assert_eq!(parse_guid("0f1e2d3c4b5a69788796a5b4c3d2e1f0"), None);
    assert_eq!(parse_guid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-"), None);
}

proptest::proptest! {
    #[test]
    fn any_guid_round_trips(bytes in proptest::array::uniform16(proptest::prelude::any::<u8>())) {
        let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        let guid = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
        proptest::prop_assert_eq!(parse_guid(&guid), Some(guid.to_ascii_lowercase()));
    }
}

#[test]
fn values_a_decoder_could_not_read_are_invalid_not_looked_up() {
    let mut p = planner(LookupMode::Auto);
    // The last line of a UTF-16 file cut at an odd byte decodes to a lone U+FFFD.
    let cut = assess(&mut p, 0, row(4, &[(Column::SerialNumber, "\u{FFFD}")]));
    assert_eq!(cut.row.outcome, Outcome::Invalid);
    assert_eq!(cut.row.reason, "undecodable_characters");
    assert!(cut.work.is_none());
}

#[test]
fn a_row_with_a_valid_id_is_not_invalid_for_a_badly_decoded_name() {
    let mut p = planner(LookupMode::Auto);
    let mut fields = ios(ID_A);
    fields.push((Column::DeviceName, "M\u{81}ller\u{1}s iPad \u{FFFD}"));
    let a = assess(&mut p, 0, row(2, &fields));
    assert_eq!(a.row.outcome, Outcome::Planned, "{}", a.row.detail);
    assert_eq!(
        a.row.device_name, "M\u{81}ller\u{1}s iPad \u{FFFD}",
        "the name is reported as read"
    );
    // Without an id the name is what the device is looked up by: still invalid.
    let by_name = assess(
        &mut p,
        0,
        row(
            3,
            &[
                (Column::DeviceName, "M\u{81}ller\u{1}s iPad"),
                (Column::OperatingSystem, "iOS"),
            ],
        ),
    );
    assert_eq!(by_name.row.reason, "control_characters");
    // A malformed id decides nothing: the row is invalid for its id.
    let mut broken = ios("not-a-guid");
    broken.push((Column::DeviceName, "ab\u{1}"));
    let b = assess(&mut p, 0, row(4, &broken));
    assert_eq!(b.row.reason, "control_characters");
}

#[test]
fn regression_21_a_destructive_action_in_a_row_is_invalid_saying_why_and_others_list_what_is_offered()
 {
    let mut p = planner(LookupMode::Auto);
    for (word, reason, says) in [
        ("wipe", "action_not_offered", "'wipe' is not offered"),
        ("Retire", "action_not_offered", "'Retire' is not offered"),
        (
            "factory reset",
            "action_not_offered",
            "is not offered: wipe destroys",
        ),
        (
            "lost mode",
            "unknown_action",
            "'lost mode' is not an action this tool offers: remove-passcode, reset-passcode, reset-pin, auto, remote-lock, rotate-bitlocker-keys or revoke-sessions",
        ),
        (
            "remote-lock,wipe",
            "action_not_offered",
            "'wipe' is not offered",
        ),
    ] {
        let mut fields = ios(ID_A);
        fields.push((Column::Action, word));
        let a = assess(&mut p, 0, row(2, &fields));
        assert_eq!(a.row.outcome, Outcome::Invalid, "{word}");
        assert_eq!(a.row.reason, reason, "{word}");
        assert!(a.row.detail.contains(says), "{}", a.row.detail);
        assert!(a.work.is_none(), "never sent");
    }
}

/// Issue 21: a row asking for several actions gives one assessment per action, in
/// the families' order whatever order it names them in, each judged by its own rules
/// table; the duplicate rule is per device and action.
#[test]
fn regression_21_a_row_with_several_actions_is_one_row_per_action_each_judged_by_its_rules() {
    let mut p = Planner::new(PlanOptions {
        action: Some(Actions::parse("rotate-bitlocker-keys, remote-lock").unwrap()),
        lookup: LookupMode::Auto,
        tenants: TenantScope::One,
    });
    p.add_source("a.csv");
    let names = ColumnNames::default();
    let windows = [
        (Column::Id, ID_A),
        (Column::DeviceType, "desktop"),
        (Column::OsVersion, "10.0.22631.4460"),
    ];
    let all = p.assess(0, &names, None, row(2, &windows));
    let seen: Vec<_> = all
        .iter()
        .map(|a| {
            (
                a.step,
                a.row.action.as_ref(),
                a.row.outcome,
                a.row.reason.as_ref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                0,
                "remote-lock",
                Outcome::Ineligible,
                "lock_windows_not_supported"
            ),
            (1, "rotate-bitlocker-keys", Outcome::Planned, ""),
        ]
    );
    assert_eq!(
        all[1].work.as_ref().unwrap().action,
        Some(Action::RotateBitLockerKeys)
    );
    // An old Windows build: no rotation; an iPhone: a lock, no rotation.
    let old = [
        (Column::Id, ID_B),
        (Column::DeviceType, "desktop"),
        (Column::OsVersion, "10.0.17763.1"),
    ];
    let all = p.assess(0, &names, None, row(3, &old));
    assert_eq!(all[1].row.reason, "bitlocker_windows_before_1909");
    let iphone = "22222222-2222-3333-4444-555555555555";
    let all = p.assess(0, &names, None, row(4, &ios(iphone)));
    assert_eq!(all[0].row.outcome, Outcome::Planned);
    assert_eq!(all[1].row.reason, "bitlocker_windows_only");
    // The same device again: a duplicate for each action, and a passcode reset of it
    // (another action) is no duplicate.
    let again = p.assess(0, &names, None, row(5, &windows));
    assert_eq!(again[1].row.outcome, Outcome::Duplicate);
    let mut reset = windows.to_vec();
    reset.push((Column::Action, "auto"));
    let reset = p.assess_one(0, &names, None, row(6, &reset));
    assert_eq!(
        reset.row.reason, "windows_not_supported",
        "judged, not a duplicate"
    );
}

/// Issue 21: a row naming two actions of one family (two passcode actions) is invalid
/// saying so; an action list with a destructive action is refused naming it.
#[test]
fn regression_21_two_actions_of_one_family_in_a_row_are_invalid() {
    let mut p = planner(LookupMode::Auto);
    let mut fields = ios(ID_A);
    fields.push((Column::Action, "remove-passcode,auto"));
    let a = assess(&mut p, 0, row(2, &fields));
    assert_eq!(a.row.reason, "conflicting_actions");
    assert!(
        a.row.detail.contains("are both a passcode reset"),
        "{}",
        a.row.detail
    );
}

/// Issue 21: `revoke-sessions` acts on the row's user: a device row with a
/// `userPrincipalName` names its user, each user once however many of their devices the
/// job holds; a row naming only a device is invalid saying why; a group row stands for
/// its users; the device action of the same rows is judged as ever.
#[test]
fn regression_21_revoke_sessions_acts_on_each_rows_user_once() {
    let mut p = Planner::new(PlanOptions {
        action: Some(Actions::parse("remote-lock,revoke-sessions").unwrap()),
        lookup: LookupMode::Auto,
        tenants: TenantScope::One,
    });
    p.add_source("a.csv");
    let names = ColumnNames::default();
    let mut first = ios(ID_A);
    first.push((Column::UserPrincipalName, "Ada@Contoso.com"));
    let mut second = ios(ID_B);
    second.push((Column::UserPrincipalName, "ada@contoso.com"));
    let a = p.assess(0, &names, None, row(2, &first));
    let b = p.assess(0, &names, None, row(3, &second));
    let c = p.assess(
        0,
        &names,
        None,
        row(4, &ios("22222222-2222-3333-4444-555555555555")),
    );
    let g = p.assess(0, &names, None, row(5, &[(Column::Group, "Sales")]));
    // The user's action first (step 0), then the device's.
    assert_eq!(a[0].row.action, "revoke-sessions");
    assert_eq!(a[0].row.outcome, Outcome::Planned);
    assert_eq!(
        a[0].work.as_ref().unwrap().identity,
        Identity::User("ada@contoso.com".into())
    );
    assert_eq!(a[1].row.action, "remote-lock");
    assert_eq!(a[1].row.outcome, Outcome::Planned);
    assert_eq!(
        (b[0].row.outcome, b[0].row.reason.as_ref()),
        (Outcome::Duplicate, "duplicate_user")
    );
    assert!(
        b[0].row.detail.contains("the same user as row 2"),
        "{}",
        b[0].row.detail
    );
    assert_eq!(b[1].row.outcome, Outcome::Planned, "another device: locked");
    assert_eq!(c[0].row.reason, "no_user");
    assert!(
        c[0].row.detail.contains("acts on a user"),
        "{}",
        c[0].row.detail
    );
    assert_eq!(c[1].row.outcome, Outcome::Planned);
    assert_eq!(
        g[0].work.as_ref().unwrap().identity,
        Identity::Group("Sales".into())
    );
}

/// Issue 21: a run's two passes plan exactly what one pass plans: the users' actions in
/// the first, everything else (and rows judged before their actions) in the second.
#[test]
fn regression_21_the_two_passes_of_a_run_with_user_actions_plan_what_one_pass_plans() {
    let names = ColumnNames::default();
    let rows = |p: &mut Planner| -> Vec<(u64, u8, String, Outcome)> {
        let mut out = Vec::new();
        let mut bad = ios("not-a-guid");
        bad.push((Column::UserPrincipalName, "ada@contoso.com"));
        let mut good = ios(ID_A);
        good.push((Column::UserPrincipalName, "ada@contoso.com"));
        let mut again = ios(ID_B);
        again.push((Column::UserPrincipalName, "ADA@contoso.com"));
        for (n, fields) in [(2, good), (3, again), (4, bad)] {
            for a in p.assess(0, &names, None, row(n, &fields)) {
                out.push((a.row.row, a.step, a.row.action.to_string(), a.row.outcome));
            }
        }
        out
    };
    let options = PlanOptions {
        action: Some(Actions::parse("revoke-sessions,remote-lock").unwrap()),
        lookup: LookupMode::Auto,
        tenants: TenantScope::One,
    };
    let planner = |phase| {
        let mut p = Planner::new(options.clone()).users_first(phase);
        p.add_source("a.csv");
        p
    };
    let mut one = rows(&mut planner(None));
    let mut two = rows(&mut planner(Some(true)));
    two.extend(rows(&mut planner(Some(false))));
    one.sort_by_key(|r| (r.0, r.1));
    two.sort_by_key(|r| (r.0, r.1));
    assert_eq!(one, two);
    assert_eq!(one.len(), 6);
}

/// Issue 22, first piece: a row's `tenant` (an id or a domain) goes with its work, a
/// value that is neither is invalid naming the column, and the same serial number in
/// two tenants is two devices, not a duplicate.
#[test]
fn regression_22_a_rows_tenant_goes_with_it_and_keys_its_device() {
    let mut p = planner(LookupMode::Auto);
    let names = ColumnNames::default();
    let serial = |n: u64, tenant: &str| {
        row(
            n,
            &[
                (Column::SerialNumber, "F2LXK0ABCD"),
                (Column::OperatingSystem, "iOS"),
                (Column::Tenant, tenant),
            ],
        )
    };
    let a = p.assess_one(0, &names, None, serial(2, "Contoso.onmicrosoft.com"));
    let b = p.assess_one(
        0,
        &names,
        None,
        serial(3, "{6F1C2A4E-0B7D-4C1A-9E3F-5A8B2D7C4E10}"),
    );
    let c = p.assess_one(0, &names, None, serial(4, "contoso.onmicrosoft.com"));
    let bad = p.assess_one(0, &names, None, serial(5, "not a tenant"));
    assert_eq!(
        a.work.as_ref().unwrap().tenant.as_deref(),
        Some("contoso.onmicrosoft.com")
    );
    assert_eq!(
        b.work.as_ref().unwrap().tenant.as_deref(),
        Some("6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10")
    );
    assert_eq!(
        b.row.outcome,
        Outcome::Planned,
        "another tenant: no duplicate"
    );
    assert_eq!(c.row.outcome, Outcome::Duplicate, "the same tenant twice");
    assert_eq!(bad.row.reason, "malformed_tenant");
    assert!(
        bad.row.detail.contains("column 'tenant'"),
        "{}",
        bad.row.detail
    );
}

/// Issue 22: in a job that spans tenants, a row naming no tenant is `invalid`
/// (`no_tenant`), its detail naming the column to fill (or saying the file has none),
/// never guessed into a tenant; with one tenant such a row is the signed-in tenant's.
#[test]
fn regression_22_a_multi_tenant_job_refuses_rows_naming_no_tenant() {
    let options = |tenants| PlanOptions {
        action: Some(crate::rules::Actions::one(ActionChoice::Auto)),
        lookup: LookupMode::Auto,
        tenants,
    };
    let mut many = Planner::new(options(TenantScope::Many));
    many.add_source("a.csv");
    let mut with_column = ColumnNames::default();
    with_column.note(Column::Tenant, "Customer tenant");
    let without_column = ColumnNames::default();
    let device = |n: u64, id: &str, tenant: Option<&str>| {
        let mut pairs = ios(id);
        pairs.extend(tenant.map(|t| (Column::Tenant, t)));
        row(n, &pairs)
    };

    let empty = many.assess_one(0, &with_column, None, device(2, ID_A, None));
    assert_eq!(empty.row.outcome, Outcome::Invalid);
    assert_eq!(empty.row.reason, "no_tenant");
    assert!(empty.work.is_none());
    for needle in ["column 'Customer tenant' is empty", "never guessed"] {
        assert!(empty.row.detail.contains(needle), "{}", empty.row.detail);
    }
    let absent = many.assess_one(0, &without_column, None, device(3, ID_B, None));
    assert_eq!(absent.row.reason, "no_tenant");
    assert!(
        absent.row.detail.contains("the file has no tenant column"),
        "{}",
        absent.row.detail
    );
    // A row naming its tenant is planned there; one outside the run's tenants is the
    // run's to end (`other_tenant`), not the planner's.
    let named = many.assess_one(0, &with_column, None, device(4, ID_A, Some("Fabrikam.com")));
    assert_eq!(named.row.outcome, Outcome::Planned);
    assert_eq!(named.work.unwrap().tenant.as_deref(), Some("fabrikam.com"));
    // A malformed tenant is still `malformed_tenant`.
    let bad = many.assess_one(0, &with_column, None, device(5, ID_B, Some("fabrikam")));
    assert_eq!(bad.row.reason, "malformed_tenant");

    // One tenant: unchanged.
    let mut one = Planner::new(options(TenantScope::One));
    one.add_source("a.csv");
    let a = one.assess_one(0, &without_column, None, device(2, ID_A, None));
    assert_eq!(a.row.outcome, Outcome::Planned);
    assert_eq!(a.work.unwrap().tenant, None);
    assert_eq!(TenantScope::default(), TenantScope::One);
    assert_eq!(TenantScope::of(&[]), TenantScope::One);
    let listed = [crate::tenants::TenantEntry::named("contoso.com".into())];
    assert_eq!(TenantScope::of(&listed), TenantScope::Many);
}

/// Issue 22: the tenants the job's documents list, for the run: in order, one tenant
/// listed by two documents once, two client ids for one tenant refused.
#[test]
fn regression_22_the_documents_tenants_are_merged_in_order() {
    use crate::tenants::TenantEntry;
    let dir = tempfile::tempdir().unwrap();
    let app = "22222222-3333-4444-5555-666666666666";
    let doc = |name: &str, tenants: &str| {
        let path = dir.path().join(name);
        let body = format!(r#"{{"tenants": {tenants}, "devices": [{{"id": "{ID_A}"}}]}}"#);
        std::fs::write(&path, body).unwrap();
        path
    };
    let a = doc("a.json", r#"["contoso.com", "fabrikam.com"]"#);
    let b = doc("b.json", r#"["fabrikam.com", "adatum.com"]"#);
    let c = doc(
        "c.json",
        &format!(r#"[{{"tenant": "contoso.com", "clientId": "{app}"}}]"#),
    );
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, format!("id\n{ID_B}\n")).unwrap();
    let read = ReadOptions::default();
    let jobs = open_jobs(&[a.clone(), plain, b], &read).unwrap();
    let names: Vec<String> = job_tenants(&jobs)
        .unwrap()
        .into_iter()
        .map(|e: TenantEntry| e.name)
        .collect();
    assert_eq!(names, ["contoso.com", "fabrikam.com", "adatum.com"]);
    let jobs = open_jobs(&[a, c], &read).unwrap();
    let Err(e) = job_tenants(&jobs) else {
        panic!("two client ids for one tenant were accepted");
    };
    let e = e.to_string();
    assert!(
        e.contains("c.json") && e.contains(&format!("contoso.com the client id {app}")),
        "{e}"
    );
    assert!(e.contains("a.json gives it no client id of its own"), "{e}");
}
