//! Facts from small hand-made runs: the ledger pass on events of chosen times, and
//! `gather` on a report, ledger, status and audit report written to a temporary folder.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::timeline::Pass;
use super::*;
use crate::graph::verify::parse_timestamp;
use crate::ledger::{Begin, Claim, Event, Fate, Fingerprint, Ledger, Origin, RowKey};
use crate::report::{COLUMNS, ReportFormat, ReportWriter};

const TENANT: &str = "6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10";
const APP: &str = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const HOSTILE: &str = "<script>alert(1)</script>";

fn origin(user: Option<&str>) -> Origin {
    Origin {
        tenant: TENANT.into(),
        method: if user.is_some() { "browser" } else { "secret" }.into(),
        user: user.map(str::to_owned),
        client_id: Some(APP.into()),
        simulated: false,
        settle_window_ms: 60_000,
    }
}

fn t(hms: &str) -> String {
    format!("2026-11-22T{hms}.000Z")
}

fn row(n: u64, platform: &str, outcome: Outcome, reason: &str) -> ReportRow {
    ReportRow {
        source: "job.csv".into(),
        row: n,
        device_id: format!("00000000-0000-4000-8000-{n:012}"),
        device_name: format!("Phone {n}"),
        serial_number: String::new(),
        user_principal_name: String::new(),
        operating_system: String::new(),
        os_version: String::new(),
        platform: Cow::Owned(platform.to_owned()),
        action: Cow::Borrowed("remove-passcode"),
        outcome,
        reason: Cow::Owned(reason.to_owned()),
        detail: Cow::Borrowed("a detail"),
        http_status: None,
        attempts: 0,
        request_id: String::new(),
        client_request_id: String::new(),
        started_at: t("10:00:40"),
        finished_at: t("10:03:00"),
        tenant: String::new(),
    }
}

fn begin(at: &str) -> Event {
    Event::Begin {
        tenants: Vec::new(),
        version: 1,
        started_at: at.into(),
        files: vec![Fingerprint {
            source: "job.csv".into(),
            bytes: 10,
            sha256: "ab".repeat(32),
        }],
        action: None,
        lookup: "auto".into(),
        sheet: None,
        encoding: None,
        origin: Some(origin(None)),
    }
}

fn send(at: &str) -> Event {
    Event::Send {
        file: 0,
        row: 2,
        step: 0,
        sub: 0,
        device: "d".into(),
        at: at.into(),
    }
}

fn pass_of(events: &[Event]) -> Result<super::timeline::LedgerFacts, String> {
    let mut pass = Pass::default();
    for e in events {
        pass.event(e);
    }
    pass.finish(Path::new("run.csv.ledger"))
}

#[test]
fn the_ledger_pass_counts_resets_per_minute_and_marks_pauses_and_interruptions() {
    let mut events = vec![begin(&t("10:00:30"))];
    events.extend((0..3).map(|_| send(&t("10:00:40"))));
    events.extend((0..2).map(|_| send(&t("10:01:10"))));
    // A 429 at 10:01:10: every worker waits until 10:02:30.
    events.push(Event::Pause {
        until: t("10:02:30"),
    });
    events.push(send(&t("10:02:45")));
    events.push(Event::Settled {
        file: 0,
        row: 2,
        step: 0,
        sub: 0,
        fate: Fate::Final,
        report: Box::new(row(2, "ios", Outcome::Succeeded, "")),
    });
    // Killed after 10:03:00; a colleague resumes at 10:20.
    events.push(Event::Session {
        tenants: Vec::new(),
        started_at: t("10:20:00"),
        origin: origin(Some("ada@contoso.com")),
    });
    events.extend((0..4).map(|_| send(&t("10:20:05"))));
    let facts = pass_of(&events).unwrap();

    assert_eq!(facts.sends, 10);
    assert_eq!(facts.started_at, t("10:00:30"));
    assert_eq!(facts.last_activity_at, t("10:20:05"));
    let tl = &facts.timeline;
    assert_eq!(tl.start, t("10:00:00"));
    assert_eq!(tl.bucket_minutes, 1);
    assert_eq!(tl.buckets.len(), 21, "10:00 to 10:20, one bar a minute");
    let sends: Vec<u64> = tl.buckets.iter().map(|b| b.sends).collect();
    assert_eq!(&sends[..4], &[3, 2, 1, 0]);
    assert_eq!(sends[20], 4);
    assert_eq!(sends.iter().sum::<u64>(), 10);
    assert_eq!(tl.peak_per_minute, 4);
    let paused: Vec<usize> = (0..21).filter(|i| tl.buckets[*i].paused).collect();
    assert_eq!(paused, [1, 2], "from the 429 at 10:01:10 until 10:02:30");
    assert_eq!((tl.pauses, tl.paused_minutes), (1, 2));
    let stopped: Vec<usize> = (0..21).filter(|i| tl.buckets[*i].stopped).collect();
    assert_eq!(stopped, (3..=20).collect::<Vec<_>>());
    assert_eq!(
        tl.interruptions,
        [Interruption {
            stopped_at: t("10:03:00"),
            resumed_at: t("10:20:00"),
            from: 3,
            to: 20,
        }]
    );
    assert_eq!(facts.sessions.len(), 2);
    assert_eq!(facts.sessions[0].interrupted_at, None);
    assert_eq!(
        facts.sessions[1].interrupted_at.as_deref(),
        Some(&*t("10:03:00"))
    );
    let colleague = facts.sessions[1].who.as_ref().unwrap();
    assert_eq!(colleague.user.as_deref(), Some("ada@contoso.com"));
    assert!(colleague.described.contains("browser"), "{colleague:?}");
    assert_eq!(facts.tenant.as_deref(), Some(TENANT));
    assert!(!facts.simulated);
}

#[test]
fn a_run_over_days_is_drawn_in_wider_bars_never_more_than_720() {
    let events = [
        begin("2026-11-20T09:00:00.000Z"),
        send("2026-11-20T09:00:10.000Z"),
        Event::Session {
            tenants: Vec::new(),
            started_at: "2026-11-23T09:00:00.000Z".into(),
            origin: origin(None),
        },
        send("2026-11-23T09:00:10.000Z"),
    ];
    let tl = pass_of(&events).unwrap().timeline;
    // Three days and a minute: 4321 minutes, 10 a bar.
    assert_eq!(tl.bucket_minutes, 10);
    assert_eq!(tl.buckets.len(), 433);
    assert_eq!(tl.buckets[0].sends, 1);
    assert_eq!(tl.buckets[432].sends, 1);
    assert!(tl.buckets[1..432].iter().all(|b| b.stopped && b.sends == 0));
}

#[test]
fn a_ledger_that_does_not_begin_or_begins_twice_is_refused() {
    let no_begin = pass_of(&[send(&t("10:00:00"))]).err().unwrap();
    assert!(
        no_begin.contains("run.csv.ledger") && no_begin.contains("begin"),
        "{no_begin}"
    );
    let empty = pass_of(&[]).err().unwrap();
    assert!(empty.contains("records no run"), "{empty}");
    let twice = pass_of(&[begin(&t("10:00:00")), begin(&t("10:01:00"))])
        .err()
        .unwrap();
    assert!(twice.contains("second begin"), "{twice}");
}

#[test]
fn groups_and_examples_stay_bounded_however_many_reasons_a_report_holds() {
    let mut counts = ReportCounts::default();
    for n in 0..10_000u64 {
        let reason = format!("reason_{}", n % 100);
        counts.add(&row(n, "ios", Outcome::Failed, &reason));
    }
    let groups = counts.failures();
    assert_eq!(groups.len(), GROUPS + 1, "the rest counted as one");
    assert!(groups.iter().all(|g| g.examples.len() <= EXAMPLES));
    assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), 10_000);
    assert!(groups.iter().any(|g| g.reason == OTHERS));
}

#[test]
fn a_shown_cell_loses_the_formula_guard_and_is_cut() {
    assert_eq!(shown("'=HYPERLINK(1)"), "=HYPERLINK(1)");
    assert_eq!(shown("'quoted"), "'quoted");
    let long = shown(&"é".repeat(1000));
    assert_eq!(long.chars().count(), CELL + 1);
}

/// A run of 8 rows on disk: report, ledger (a pause, a colleague's resume), status and
/// audit reports (each with a byte-order mark, as the tool writes them).
fn run_on_disk(dir: &Path) -> PathBuf {
    let report = dir.join("run.csv");
    let mut hostile = row(7, "android_work_profile", Outcome::NotFound, "not_found");
    hostile.device_name = HOSTILE.into();
    let rows = vec![
        row(2, "ios", Outcome::Succeeded, ""),
        row(3, "ios", Outcome::Succeeded, ""),
        row(4, "ios", Outcome::Succeeded, ""),
        row(
            5,
            "android_work_profile",
            Outcome::Failed,
            "outcome_unknown",
        ),
        row(6, "android_work_profile", Outcome::NotFound, "not_found"),
        hostile,
        row(8, "macos", Outcome::Ineligible, "macos_not_supported"),
        row(9, "ios", Outcome::NotAttempted, "run_aborted"),
    ];
    let mut w = ReportWriter::create(&report, ReportFormat::Csv, true).unwrap();
    for r in &rows {
        w.write(r).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let begin = Begin {
        tenants: Vec::new(),
        files: vec![Fingerprint {
            source: "job.csv".into(),
            bytes: 10,
            sha256: "ab".repeat(32),
        }],
        action: None,
        lookup: "auto".into(),
        sheet: None,
        encoding: None,
        origin: Some(origin(None)),
    };
    let ledger = Ledger::create(&crate::ledger::ledger_path(&report), &begin).unwrap();
    let now = SystemTime::now();
    for r in &rows[..4] {
        let key = RowKey::new(0, r.row);
        let claim = Claim {
            device: r.device_id.clone(),
            action: "remove-passcode".into(),
            report: r.clone(),
        };
        ledger.claim(key, &claim).unwrap();
        ledger.send(key, &r.device_id, now).unwrap();
        ledger.settled(key, Fate::Final, r).unwrap();
    }
    ledger.pause(now).unwrap();
    ledger
        .session(&origin(Some("ada@contoso.com")), &[])
        .unwrap();
    drop(ledger);

    let mut status = String::from("\u{feff}");
    status.push_str(&COLUMNS.join(","));
    status.push_str(",action_state,action_updated_at,error_code\n");
    for (r, state, code) in [
        (&rows[0], "done", ""),
        (&rows[1], "done", ""),
        (&rows[2], "failed", "1001"),
        (&rows[3], "pending", ""),
        (&rows[4], "", ""),
    ] {
        let mut cells: Vec<String> = COLUMNS.iter().map(|_| String::new()).collect();
        cells[2] = r.device_id.clone();
        cells[3] = r.device_name.clone();
        cells[10] = r.outcome.as_str().into();
        status.push_str(&format!("{},{state},,{code}\n", cells.join(",")));
    }
    std::fs::write(dir.join("run.status.csv"), status).unwrap();
    let audit = format!(
        "\u{feff}device_id,source,row,device_name,verdict,records,recorded_at,recorded_by,audit_detail\n\
         {},job.csv,2,Phone 2,confirmed,1,{},{APP},\n\
         {},job.csv,5,Phone 5,missing,0,,,no record after --wait\n\
         {},job.csv,6,Phone 6,not_sent_by_this_run,1,{},other@contoso.com,\n\
         {},job.csv,8,Phone 8,none,,,,\n",
        rows[0].device_id,
        t("10:00:41"),
        rows[3].device_id,
        rows[4].device_id,
        t("10:00:50"),
        rows[6].device_id,
    );
    std::fs::write(dir.join("run.audit.csv"), audit).unwrap();
    report
}

#[test]
fn gather_counts_a_run_from_its_report_ledger_status_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_on_disk(dir.path());
    let facts = gather(
        &report,
        Some(&dir.path().join("run.status.csv")),
        Some(&dir.path().join("run.audit.csv")),
    )
    .unwrap();

    assert_eq!(facts.files.run_report, "run.csv");
    assert_eq!(facts.files.ledger, "run.csv.ledger");
    assert_eq!(facts.files.status_report.as_deref(), Some("run.status.csv"));
    assert_eq!(facts.job_files[0].source, "job.csv");
    assert_eq!(facts.tenant.as_deref(), Some(TENANT));
    assert_eq!(
        facts.sessions.len(),
        2,
        "the start and the colleague's resume"
    );
    assert_eq!(facts.timeline.interruptions.len(), 1);
    assert_eq!(facts.timeline.pauses, 1);
    assert_eq!(facts.sends, 4);
    assert_eq!(
        facts.timeline.buckets.iter().map(|b| b.sends).sum::<u64>(),
        4
    );
    assert!(parse_timestamp(&facts.last_activity_at).is_some());

    assert_eq!(facts.rows, 8);
    let outcomes: Vec<(&str, u64)> = facts.outcomes.iter().map(|c| (&*c.name, c.count)).collect();
    assert_eq!(
        outcomes,
        [
            ("succeeded", 3),
            ("ineligible", 1),
            ("not_found", 2),
            ("failed", 1),
            ("not_attempted", 1)
        ]
    );
    assert_eq!(facts.platforms[0].platform, "ios");
    assert_eq!(facts.platforms[0].rows, 4);
    assert_eq!(facts.platforms[1].platform, "android_work_profile");
    assert_eq!(
        facts.platforms[1].outcomes,
        [
            Count {
                name: "not_found".into(),
                count: 2
            },
            Count {
                name: "failed".into(),
                count: 1
            },
        ]
    );

    assert_eq!(facts.needs_attention, 4);
    let groups: Vec<(&str, u64)> = facts
        .failures
        .iter()
        .map(|g| (&*g.reason, g.count))
        .collect();
    assert_eq!(
        groups,
        [("not_found", 2), ("outcome_unknown", 1), ("run_aborted", 1)]
    );
    assert!(facts.failures[0].meaning.contains("Intune has no device"));
    assert_eq!(facts.failures[0].examples[1].device_name, HOSTILE);
    assert!(facts.failures[1].meaning.contains("answer was lost"));

    let status = facts.status.unwrap();
    assert_eq!(status.rows, 5);
    let states: Vec<(&str, u64)> = status.states.iter().map(|c| (&*c.name, c.count)).collect();
    assert_eq!(
        states,
        [("", 1), ("done", 2), ("failed", 1), ("pending", 1)]
    );
    assert_eq!(status.flagged, 1);
    assert_eq!(status.examples[0].device_name, "Phone 4");
    assert_eq!(status.examples[0].detail, "error code 1001");

    let audit = facts.audit.unwrap();
    let verdicts: Vec<(&str, u64)> = audit.verdicts.iter().map(|c| (&*c.name, c.count)).collect();
    assert_eq!(
        verdicts,
        [
            ("confirmed", 1),
            ("missing", 1),
            ("not_sent_by_this_run", 1),
            ("none", 1)
        ]
    );
    assert_eq!(audit.flagged, 2);
    assert_eq!(audit.examples[1].label, "not_sent_by_this_run");
    assert!(
        audit.examples[1].detail.contains("other@contoso.com"),
        "{:?}",
        audit.examples
    );
}

#[test]
fn a_report_without_its_ledger_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_on_disk(dir.path());
    std::fs::remove_file(crate::ledger::ledger_path(&report)).unwrap();
    let e = gather(&report, None, None).unwrap_err();
    assert!(
        e.contains("run.csv has no ledger") && e.contains("run.csv.ledger is missing"),
        "{e}"
    );
}

#[test]
fn a_status_report_without_action_state_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_on_disk(dir.path());
    let wrong = dir.path().join("plain.csv");
    std::fs::write(&wrong, "device_id,device_name\nx,y\n").unwrap();
    let e = gather(&report, Some(&wrong), None).unwrap_err();
    assert!(
        e.contains("plain.csv is not a status report") && e.contains("action_state"),
        "{e}"
    );
    let e = gather(&report, None, Some(&wrong)).unwrap_err();
    assert!(e.contains("plain.csv is not an audit report"), "{e}");
}

#[test]
fn a_json_lines_status_report_is_counted_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_on_disk(dir.path());
    let status = dir.path().join("run.status.jsonl");
    std::fs::write(
        &status,
        "{\"device_id\":\"a\",\"device_name\":\"A\",\"row\":2,\"action_state\":\"done\"}\n\
         {\"device_id\":\"b\",\"device_name\":\"B\",\"row\":3,\"action_state\":\"canceled\",\"error_code\":\"\"}\n",
    )
    .unwrap();
    let facts = gather(&report, Some(&status), None)
        .unwrap()
        .status
        .unwrap();
    assert_eq!(facts.rows, 2);
    assert_eq!(facts.flagged, 1);
    assert_eq!(facts.examples[0].row, "3");
    assert_eq!(facts.examples[0].label, "canceled");
}
