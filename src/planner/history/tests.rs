//! A report read as a job carries its history: every outcome a report can write, read
//! back for what it means, through any number of rounds and any spreadsheet filter.

use std::path::Path;

use proptest::prelude::*;

use super::super::*;
use super::{CARRIED_REASONS, EARLIER};
use crate::device::DeviceFields;
use crate::report::{ReportFormat, ReportWriter};

const ID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const OTHER: &str = "11111111-2222-3333-4444-555555555555";
const AT: &str = "2026-11-22T02:00:00.123Z";

/// Every reason the tool writes in a report, by the outcome it writes it with (the
/// platform rules' reasons come from the rules table itself).
fn written() -> Vec<(&'static str, &'static str)> {
    let mut pairs = vec![
        ("planned", ""),
        ("planned", "lookup_required"),
        ("succeeded", ""),
        ("duplicate", "duplicate_device"),
        ("duplicate", "duplicate_user"),
        ("not_attempted", "run_aborted"),
        ("ambiguous", "ambiguous"),
        ("ambiguous", "ambiguous_group"),
    ];
    for reason in CARRIED_REASONS {
        pairs.push(("ineligible", reason));
    }
    for reason in [
        "platform_not_supported",
        "platform_unknown",
        "action_not_supported",
        "other_tenant",
    ]
    .into_iter()
    .chain(
        crate::rules::ALL_RULES
            .iter()
            .flat_map(|t| t.iter())
            .map(|r| r.reason),
    )
    .filter(|r| !r.is_empty())
    {
        pairs.push(("ineligible", reason));
    }
    for reason in [
        "outcome_unknown",
        "gave_up",
        "forbidden",
        "rejected",
        "unsafe_next_link",
        "unauthorized",
        "missing_permission",
        "missing_intune_role",
        "authentication_failed",
        "state_unread",
        "ledger_unwritable",
        "lookup_too_broad",
        "internal_error",
    ] {
        pairs.push(("failed", reason));
    }
    for reason in [
        "not_found",
        "user_not_found",
        "group_not_found",
        "no_device_matches",
        "user_has_no_device",
        "group_has_no_device",
    ] {
        pairs.push(("not_found", reason));
    }
    for reason in [
        "malformed_id",
        "no_action",
        "unknown_action",
        "conflicting_actions",
        "no_user",
        "malformed_user",
        "malformed_tenant",
        "no_tenant",
        "control_characters",
        "value_too_long",
        "scientific_notation",
        "action_not_offered",
        "lookup_disabled",
        "no_identity",
        "unsupported_filter",
        "unrecognised_platform",
        "unreadable_os_version",
        "missing_os_version",
        "contradictory_platform",
    ] {
        pairs.push(("invalid", reason));
    }
    pairs
}

/// Whether a report row says its device was reset, or may have been: what reading it
/// back must never send again. Written from the report's meaning, not from the code.
fn says_reset_or_may_have(outcome: &str, reason: &str, state: &str) -> bool {
    if outcome.is_empty() {
        return false;
    }
    if outcome == "duplicate" {
        return true;
    }
    match state {
        "done" | "pending" | "active" | "none" => return true,
        "failed" | "notSupported" | "canceled" => return false,
        _ => {}
    }
    outcome == "succeeded" || CARRIED_REASONS.contains(&reason) || reason == "outcome_unknown"
}

/// An eligible iPhone named by its Intune id, as a report row with this history.
fn report_row(outcome: &str, reason: &str, state: &str, detail: &str) -> JobRow {
    let mut fields = DeviceFields::default()
        .with(Column::Id, ID)
        .with(Column::OperatingSystem, "iOS")
        .with(Column::OsVersion, "17.5")
        .with(Column::Platform, "ios")
        .with(Column::Action, "remove-passcode")
        .with(Column::Outcome, outcome)
        .with(Column::Reason, reason)
        .with(Column::ActionState, state)
        .with(Column::Detail, detail);
    if outcome == "succeeded" {
        fields.set(Column::FinishedAt, AT);
    }
    JobRow {
        row: 2,
        fields,
        defect: None,
    }
}

fn read_back(outcome: &str, reason: &str, state: &str, detail: &str) -> Assessment {
    let mut p = Planner::new(PlanOptions {
        action: Some(crate::rules::Actions::one(ActionChoice::Auto)),
        lookup: LookupMode::Auto,
        tenants: TenantScope::One,
    });
    p.add_source("report.csv");
    p.assess_one(
        0,
        &ColumnNames::default(),
        None,
        report_row(outcome, reason, state, detail),
    )
}

#[test]
fn every_outcome_a_report_writes_is_read_back_for_what_it_means() {
    for (outcome, reason) in written() {
        let a = read_back(outcome, reason, "", "what the run said");
        let expected = match (outcome, reason) {
            ("succeeded", _) => Some((Outcome::Ineligible, "already_reset")),
            (_, "outcome_unknown") => Some((Outcome::Ineligible, "fate_unknown")),
            ("duplicate", _) => Some((Outcome::Duplicate, "duplicate_device")),
            (_, r) if CARRIED_REASONS.contains(&r) => Some((Outcome::Ineligible, r)),
            _ => None,
        };
        match expected {
            Some((outcome_now, reason_now)) => {
                assert!(a.work.is_none(), "{outcome}/{reason} is not sent again");
                assert_eq!(a.row.outcome, outcome_now, "{outcome}/{reason}");
                assert_eq!(a.row.reason, reason_now, "{outcome}/{reason}");
                assert!(
                    a.row.detail.contains("what the run said"),
                    "{outcome}/{reason} keeps the run's words: {}",
                    a.row.detail
                );
            }
            // Nothing reached the device (or it was never judged eligible): judged again
            // as any job row, and this eligible iPhone is planned.
            None => {
                assert_eq!(a.row.outcome, Outcome::Planned, "{outcome}/{reason}");
                assert!(a.work.is_some(), "{outcome}/{reason} is retried");
            }
        }
    }
}

#[test]
fn a_reset_says_when_and_how_to_reset_it_again_on_purpose() {
    let a = read_back("succeeded", "", "", "Graph accepted the action (204)");
    assert!(a.row.detail.contains(AT), "{}", a.row.detail);
    assert!(a.row.detail.contains("report.csv"), "{}", a.row.detail);
    assert!(
        a.row.detail.contains("clear the row's 'outcome' cell"),
        "{}",
        a.row.detail
    );
    // Cleared on purpose: no history, judged as any job row.
    let again = read_back("", "already_reset", "done", "");
    assert!(again.work.is_some(), "{}", again.row.detail);
}

#[test]
fn a_reset_intune_showed_stays_unsent_whatever_its_platform_is_judged_now() {
    // A platform key the rules now judge ineligible does not bury the history.
    let mut p = Planner::new(PlanOptions {
        action: Some(crate::rules::Actions::one(ActionChoice::Auto)),
        lookup: LookupMode::Auto,
        tenants: TenantScope::One,
    });
    p.add_source("report.csv");
    let mut r = report_row(
        "ineligible",
        "reset_recently_done",
        "",
        "Intune shows 'done'",
    );
    r.fields = DeviceFields::default()
        .with(Column::Id, ID)
        .with(Column::OperatingSystem, "macOS")
        .with(Column::OsVersion, "15.1")
        .with(Column::Outcome, "ineligible")
        .with(Column::Reason, "reset_recently_done")
        .with(Column::Detail, "Intune shows 'done'");
    let a = p.assess_one(0, &ColumnNames::default(), None, r);
    assert_eq!(a.row.reason, "reset_recently_done");
    assert!(a.row.detail.contains("whatever --reset-again says"));
}

#[test]
fn a_duplicate_row_read_back_alone_is_never_sent_and_says_which_row_to_keep() {
    let a = read_back(
        "duplicate",
        "duplicate_device",
        "",
        "the same Intune device (x) as row 2 of export.csv, which is handled there",
    );
    assert!(a.work.is_none());
    assert_eq!(a.row.outcome, Outcome::Duplicate);
    assert!(
        a.row.detail.contains("row 2 of export.csv"),
        "{}",
        a.row.detail
    );
    assert!(a.row.detail.contains("retry it"), "{}", a.row.detail);
    // A state beside a duplicate is no word on it: status never reads one.
    let b = read_back("duplicate", "duplicate_device", "failed", "");
    assert!(b.work.is_none());
}

#[test]
fn a_duplicate_row_claims_no_device_and_a_reset_row_keeps_its_words() {
    let mut p = Planner::new(PlanOptions {
        action: Some(crate::rules::Actions::one(ActionChoice::Auto)),
        lookup: LookupMode::Auto,
        tenants: TenantScope::One,
    });
    p.add_source("report.csv");
    let names = ColumnNames::default();
    // In its run the serial-number row lost the race for the device to a row below it
    // (the run filled in its Intune id from the lookup); that row failed, sending nothing.
    let dup = p.assess_one(
        0,
        &names,
        None,
        report_row("duplicate", "duplicate_device", "", ""),
    );
    assert_eq!(dup.row.outcome, Outcome::Duplicate);
    let mut failed = report_row("failed", "forbidden", "", "Graph said 403");
    failed.row = 3;
    let failed = p.assess_one(0, &names, None, failed);
    assert!(
        failed.work.is_some(),
        "the row that handles the device is retried"
    );
    // Had it been reset, it says so, not "a duplicate of row 2".
    let mut p = Planner::new(PlanOptions {
        action: Some(crate::rules::Actions::one(ActionChoice::Auto)),
        lookup: LookupMode::Auto,
        tenants: TenantScope::One,
    });
    p.add_source("report.csv");
    p.assess_one(
        0,
        &names,
        None,
        report_row("duplicate", "duplicate_device", "", ""),
    );
    let mut reset = report_row("succeeded", "", "", "");
    reset.row = 3;
    let reset = p.assess_one(0, &names, None, reset);
    assert_eq!(reset.row.reason, "already_reset");
    // And a later row for a device reset is a duplicate of it.
    let mut fresh = report_row("", "", "", "");
    fresh.row = 4;
    let fresh = p.assess_one(0, &names, None, fresh);
    assert_eq!(fresh.row.outcome, Outcome::Duplicate);
    assert!(fresh.row.detail.contains("row 3"), "{}", fresh.row.detail);
}

#[test]
fn a_detail_with_a_line_break_or_of_any_length_is_no_defect_of_the_row() {
    let long = "Graph said no. ".repeat(200);
    for detail in ["first line\nsecond line", long.as_str()] {
        let a = read_back("failed", "gave_up", "", detail);
        assert!(a.work.is_some(), "{:?}", a.row);
        let b = read_back("succeeded", "", "", detail);
        assert_eq!(b.row.reason, "already_reset");
        assert!(b.row.detail.chars().count() < 2 * super::CARRIED_LEN);
    }
}

/// Writes `rows` as a report (CSV or JSON Lines, by `name`) and reads it back as a job,
/// as `run REPORT` does.
fn round(dir: &Path, name: &str, rows: &[crate::report::ReportRow]) -> Vec<Assessment> {
    let path = dir.join(name);
    let format = ReportFormat::from_name(&path).unwrap();
    let mut w = ReportWriter::create(&path, format, true).unwrap();
    for r in rows {
        w.write(r).unwrap();
    }
    w.flush().unwrap();
    let jobs = open_job(&path, name, &crate::job::ReadOptions::default()).unwrap();
    let mut planner = Planner::new(PlanOptions {
        action: None,
        lookup: LookupMode::Auto,
        tenants: TenantScope::One,
    });
    let mut out = Vec::new();
    assess_all(jobs, &mut planner, &mut |_, a| out.push(a)).unwrap();
    out
}

fn run_row(n: u64, id: &str, outcome: Outcome, reason: &str, detail: &str) -> ReportRow {
    ReportRow {
        source: "export.csv".into(),
        row: n,
        device_id: id.into(),
        device_name: format!("iPhone {n}"),
        serial_number: String::new(),
        user_principal_name: String::new(),
        operating_system: "iOS".into(),
        os_version: "17.5".into(),
        platform: "ios".into(),
        action: "remove-passcode".into(),
        outcome,
        reason: reason.to_owned().into(),
        detail: detail.to_owned().into(),
        http_status: (outcome == Outcome::Succeeded).then_some(204),
        attempts: 1,
        request_id: "r".into(),
        client_request_id: "c".into(),
        started_at: AT.into(),
        finished_at: AT.into(),
        tenant: String::new(),
    }
}

#[test]
fn a_report_of_a_report_of_a_report_still_says_the_device_was_reset_and_when() {
    let dir = tempfile::tempdir().unwrap();
    let first = vec![
        run_row(
            2,
            ID,
            Outcome::Succeeded,
            "",
            "Graph accepted the action (204)",
        ),
        run_row(
            3,
            ID,
            Outcome::Duplicate,
            "duplicate_device",
            "the same device as row 2",
        ),
        run_row(
            4,
            OTHER,
            Outcome::Failed,
            "outcome_unknown",
            "the answer was lost",
        ),
    ];
    let mut rows = first;
    let mut details = Vec::new();
    // CSV and JSON Lines by turns: the history reads back from either.
    for (n, ext) in [(1, "csv"), (2, "jsonl"), (3, "csv"), (4, "jsonl")] {
        let read = round(dir.path(), &format!("round{n}.{ext}"), &rows);
        assert_eq!(read.len(), 3);
        assert!(read.iter().all(|a| a.work.is_none()), "round {n}");
        let what: Vec<_> = read
            .iter()
            .map(|a| (a.row.outcome, a.row.reason.to_string()))
            .collect();
        assert_eq!(
            what,
            [
                (Outcome::Ineligible, "already_reset".to_string()),
                (Outcome::Duplicate, "duplicate_device".to_string()),
                (Outcome::Ineligible, "fate_unknown".to_string()),
            ],
            "round {n}"
        );
        let reset = &read[0].row.detail;
        assert!(reset.contains(AT), "round {n}: {reset}");
        assert!(
            reset.contains("round1.csv"),
            "round {n} names the first report: {reset}"
        );
        assert!(
            read[2]
                .row
                .detail
                .contains("intune-reset status round1.csv"),
            "round {n}: {}",
            read[2].row.detail
        );
        // The words settle after the first read-back: nothing piles up round on round.
        details.push(
            read.iter()
                .map(|a| a.row.detail.to_string())
                .collect::<Vec<_>>(),
        );
        rows = read.into_iter().map(|a| a.row).collect();
    }
    assert!(details.windows(2).skip(1).all(|w| w[0] == w[1]));
    assert!(details[0][1].contains(EARLIER));
}

proptest! {
    /// Whatever a report row says (any outcome, any reason the tool writes or any other
    /// text, any status state, any detail), reading it back never plans a send for a
    /// device the row says was reset or may have been; and a row that says nothing
    /// reached the device is retried.
    #[test]
    fn reading_a_report_row_back_never_sends_a_device_it_says_was_or_may_have_been_reset(
        pair in proptest::sample::select(written()),
        other_reason in "[a-z_]{0,24}",
        use_other in proptest::bool::weighted(0.2),
        state in proptest::sample::select(vec![
            "", "done", "pending", "active", "none", "failed", "notSupported", "canceled",
            "not_found_in_results", "device_not_found", "read_failed", "not_checked", "unknown",
        ]),
        detail in proptest::option::of("[ -~\n]{0,80}"),
        cleared in proptest::bool::weighted(0.1),
    ) {
        let (outcome, reason) = pair;
        let reason = if use_other { other_reason.as_str() } else { reason };
        let outcome = if cleared { "" } else { outcome };
        let detail = detail.unwrap_or_default();
        let a = read_back(outcome, reason, state, &detail);
        if says_reset_or_may_have(outcome, reason, state) {
            prop_assert!(a.work.is_none(), "{outcome}/{reason}/{state}: {:?}", a.row);
            prop_assert!(
                matches!(a.row.outcome, Outcome::Ineligible | Outcome::Duplicate),
                "{outcome}/{reason}/{state}: {:?}", a.row
            );
        } else {
            prop_assert!(a.work.is_some(), "{outcome}/{reason}/{state}: {:?}", a.row);
        }
    }
}
