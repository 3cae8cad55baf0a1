//! `audit` on a fake Graph (no sockets, paused time): a run's report and ledger written
//! by hand, Intune's lists served page by page.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use super::*;
use crate::graph::audit::AuditPage;
use crate::graph::device::{DeviceActions, DevicePage, ManagedDevice};
use crate::graph::{CallError, CallErrorKind, Connection, PageRequest, Reply, SignedIn};
use crate::ledger::{Begin, Claim, Fate, Fingerprint, Origin, RowKey};
use crate::report::{ReportFormat, ReportWriter};

const APP: &str = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const TENANT: &str = "6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10";
const DEV_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const DEV_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const DEV_C: &str = "cccccccc-0000-4000-8000-000000000003";

fn reply<T>(value: T) -> Reply<T> {
    Reply {
        value,
        status: 200,
        request_id: None,
        client_request_id: "fake".into(),
    }
}

/// Serves `events` and `remote` as one page each (or a page that links to itself, or a
/// 403), `visible_after` reads of the audit log later than the first.
#[derive(Clone, Default)]
struct Intune {
    events: Vec<AuditRecord>,
    remote: Vec<AuditRecord>,
    /// The audit log's records show from this read of it on (0: at once).
    visible_after: u32,
    reads: Arc<AtomicU32>,
    forbidden: bool,
    circle: bool,
}

impl GraphApi for Intune {
    async fn get_device(
        &self,
        _: &str,
        _: &[&str],
        _: Connection,
    ) -> Result<Reply<ManagedDevice>, CallError> {
        Err(CallError::not_in_fake())
    }
    async fn list_devices_page(
        &self,
        _: PageRequest,
        _: Connection,
    ) -> Result<Reply<DevicePage>, CallError> {
        Err(CallError::not_in_fake())
    }
    async fn device_action(
        &self,
        _: &str,
        _: crate::rules::Family,
        _: Connection,
    ) -> Result<Reply<()>, CallError> {
        Err(CallError::not_in_fake())
    }
    async fn action_results(
        &self,
        _: &str,
        _: Connection,
    ) -> Result<Reply<DeviceActions>, CallError> {
        Err(CallError::not_in_fake())
    }
    async fn audit_page(
        &self,
        list: AuditList,
        _: &str,
        _: Option<&str>,
        _: Connection,
    ) -> Result<Reply<AuditPage>, CallError> {
        if self.forbidden && list == AuditList::Events {
            return Err(CallError {
                kind: CallErrorKind::Forbidden {
                    permission: Some(list.permission().into()),
                },
                status: Some(403),
                message: "Application is not authorized to perform this operation".into(),
                code: Some("Forbidden".into()),
                request_id: None,
                client_request_id: "fake".into(),
                retry_after: None,
            });
        }
        let records = match list {
            AuditList::Events => {
                let read = self.reads.fetch_add(1, Ordering::SeqCst);
                if read >= self.visible_after {
                    self.events.clone()
                } else {
                    Vec::new()
                }
            }
            AuditList::RemoteActions => self.remote.clone(),
        };
        Ok(reply(AuditPage {
            records,
            next_link: self.circle.then(|| "https://graph/page-2".to_owned()),
        }))
    }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn record(list: AuditList, device: &str, secs: u64, app: &str, corr: &str) -> AuditRecord {
    AuditRecord {
        list,
        id: format!("{device}-{secs}"),
        device_id: device.into(),
        at_text: stamp(at(secs)),
        at: Some(at(secs)),
        user: None,
        app: Some(app.into()),
        correlation_id: (!corr.is_empty()).then(|| corr.into()),
        action_state: None,
    }
}

fn row(n: u64, device: &str, outcome: Outcome, reason: &'static str, corr: &str) -> ReportRow {
    ReportRow {
        source: "job.csv".into(),
        row: n,
        device_id: device.into(),
        device_name: format!("Phone {n}"),
        serial_number: String::new(),
        user_principal_name: String::new(),
        operating_system: "iOS".into(),
        os_version: "17.5".into(),
        platform: Cow::Borrowed("ios"),
        action: Cow::Borrowed("remove-passcode"),
        outcome,
        reason: Cow::Borrowed(reason),
        detail: Cow::Borrowed(""),
        http_status: None,
        attempts: u32::from(!corr.is_empty()),
        request_id: String::new(),
        client_request_id: corr.into(),
        started_at: stamp(at(100)),
        finished_at: stamp(at(101)),
        tenant: String::new(),
    }
}

/// A run of three devices: A succeeded (client-request-id `c-a`), B's answer lost, C
/// ineligible (nothing sent). Its report and ledger in `dir`.
fn three_device_run(dir: &Path) -> PathBuf {
    let report = dir.join("run.csv");
    let rows = [
        row(2, DEV_A, Outcome::Succeeded, "", "c-a"),
        row(3, DEV_B, Outcome::Failed, "outcome_unknown", "c-b"),
        row(4, DEV_C, Outcome::Ineligible, "reset_recently_done", ""),
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
            bytes: 1,
            sha256: "00".into(),
        }],
        action: Some("auto".into()),
        lookup: "auto".into(),
        sheet: None,
        encoding: None,
        origin: Some(Origin {
            tenant: TENANT.into(),
            method: "secret".into(),
            user: None,
            client_id: Some(APP.into()),
            simulated: false,
            settle_window_ms: 60_000,
        }),
    };
    // Written under another name, then copied: the ledger audited is a file no lock
    // was ever taken on (a process forked by another test while this one held the
    // lock would hold it on for a moment).
    let scratch = dir.join("scratch.ledger");
    let ledger = Ledger::create(&scratch, &begin).unwrap();
    for (i, r) in rows.iter().enumerate().take(2) {
        let key = RowKey::new(0, r.row);
        ledger
            .claim(
                key,
                &Claim {
                    device: r.device_id.clone(),
                    action: "remove-passcode".into(),
                    report: r.clone(),
                },
            )
            .unwrap();
        ledger.send(key, &r.device_id, at(100 + i as u64)).unwrap();
        let fate = if i == 0 { Fate::Final } else { Fate::Unknown };
        ledger.settled(key, fate, r).unwrap();
    }
    ledger.end(2).unwrap();
    drop(ledger);
    std::fs::copy(&scratch, ledger_path(&report)).unwrap();
    report
}

fn config(report: &Path) -> AuditConfig {
    AuditConfig {
        run_report: report.to_owned(),
        report: None,
        summary_json: None,
        bom: true,
        wait: None,
        poll_interval: POLL_INTERVAL,
        settings: Settings::default(),
        tenant: crate::graph::Tenant::default(),
    }
}

fn signed_in() -> SignedIn {
    SignedIn {
        method: "secret",
        tenant: TENANT.into(),
        user: None,
        client_id: Some(APP.into()),
        simulated: false,
    }
}

async fn audit(config: &AuditConfig, intune: Intune) -> Result<AuditOutcome, CommandError> {
    let prepared = prepare(config)?;
    let never: Shutdown = Box::pin(std::future::pending());
    execute_prepared(config, prepared, intune, &signed_in(), never).await
}

fn verdicts(path: &Path) -> Vec<(String, String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .unwrap()
    };
    let (d, v, m) = (col("device_id"), col("verdict"), col("matched_by"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[d].to_owned(), r[v].to_owned(), r[m].to_owned())
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn regression_20_1_each_row_gets_its_verdict_from_intunes_records() {
    let dir = tempfile::tempdir().unwrap();
    let report = three_device_run(dir.path());
    let intune = Intune {
        events: vec![
            record(AuditList::Events, DEV_A, 100, APP, "c-a"),
            // B's answer was lost: Intune's correlation id matches nothing we have, but
            // the device, our app and the time do.
            record(AuditList::Events, DEV_B, 102, APP, "other"),
            // Someone else reset C during the run.
            record(AuditList::Events, DEV_C, 150, "another-app", ""),
            // A device the job does not hold is none of the audit's business.
            record(
                AuditList::Events,
                "dddddddd-0000-4000-8000-000000000004",
                120,
                APP,
                "",
            ),
        ],
        remote: vec![record(AuditList::RemoteActions, DEV_A, 100, "", "")],
        ..Intune::default()
    };
    let outcome = audit(&config(&report), intune).await.unwrap();
    let written = outcome.summary.report.clone().unwrap();
    assert_eq!(written, dir.path().join("run.audit.csv"));
    assert_eq!(
        verdicts(&written),
        [
            (DEV_A.into(), "confirmed".into(), "correlation_id".into()),
            (DEV_B.into(), "confirmed".into(), "device_and_time".into()),
            (DEV_C.into(), "not_sent_by_this_run".into(), String::new()),
        ]
    );
    assert_eq!(
        outcome.summary.unknown_settled, 1,
        "B's lost answer is settled"
    );
    assert_eq!(outcome.exit_code(), 1, "someone else's reset needs a look");
    let text = outcome.summary.render();
    assert!(text.contains("not_sent_by_this_run: Phone 4"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn regression_20_1_every_reset_confirmed_exits_0_and_a_missing_one_1() {
    let dir = tempfile::tempdir().unwrap();
    let report = three_device_run(dir.path());
    let both = vec![
        record(AuditList::Events, DEV_A, 100, APP, "c-a"),
        record(AuditList::Events, DEV_B, 101, APP, "c-b"),
    ];
    let outcome = audit(
        &config(&report),
        Intune {
            events: both.clone(),
            ..Intune::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.exit_code(), 0, "{}", outcome.summary.render());
    let outcome = audit(
        &config(&report),
        Intune {
            events: both[..1].to_vec(),
            ..Intune::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(outcome.summary.verdicts["missing"], 1);
    assert!(
        outcome.summary.report.unwrap().ends_with("run.audit-2.csv"),
        "an earlier audit report is never overwritten"
    );
}

#[tokio::test(start_paused = true)]
async fn regression_20_1_wait_reads_again_until_the_records_appear() {
    let dir = tempfile::tempdir().unwrap();
    let report = three_device_run(dir.path());
    let intune = Intune {
        events: vec![
            record(AuditList::Events, DEV_A, 100, APP, "c-a"),
            record(AuditList::Events, DEV_B, 101, APP, "c-b"),
        ],
        visible_after: 2,
        ..Intune::default()
    };
    let reads = intune.reads.clone();
    let mut cfg = config(&report);
    cfg.wait = Some(Duration::from_secs(600));
    let outcome = audit(&cfg, intune).await.unwrap();
    assert_eq!(outcome.exit_code(), 0, "{}", outcome.summary.render());
    assert_eq!(reads.load(Ordering::SeqCst), 3, "read until they showed");
    assert_eq!(outcome.summary.reads, 3);
}

#[tokio::test(start_paused = true)]
async fn regression_20_a_list_answering_403_names_its_permission_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let report = three_device_run(dir.path());
    let outcome = audit(
        &config(&report),
        Intune {
            forbidden: true,
            ..Intune::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.exit_code(), 3);
    let why = outcome.aborted.unwrap();
    assert!(why.contains("DeviceManagementApps.Read.All"), "{why}");
    assert!(!dir.path().join("run.audit.csv").exists());
}

#[tokio::test(start_paused = true)]
async fn regression_20_a_list_that_pages_forever_stops_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let report = three_device_run(dir.path());
    let outcome = audit(
        &config(&report),
        Intune {
            circle: true,
            ..Intune::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.exit_code(), 3);
    let why = outcome.aborted.unwrap();
    assert!(
        why.contains("auditEvents") && why.contains("circle"),
        "{why}"
    );
}

#[test]
fn regression_20_a_report_without_its_ledger_or_with_another_runs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let report = three_device_run(dir.path());
    let ledger = ledger_path(&report);
    let moved = dir.path().join("elsewhere.ledger");
    std::fs::rename(&ledger, &moved).unwrap();
    let err = prepare(&config(&report)).err().unwrap().to_string();
    assert!(err.contains("has no ledger beside it"), "{err}");

    // Another run's ledger: it never sent to B, which the report shows a POST to.
    let other = dir.path().join("other.csv");
    std::fs::copy(&report, &other).unwrap();
    let begin = Begin {
        tenants: Vec::new(),
        files: vec![Fingerprint {
            source: "job.csv".into(),
            bytes: 1,
            sha256: "00".into(),
        }],
        action: None,
        lookup: "auto".into(),
        sheet: None,
        encoding: None,
        origin: None,
    };
    let scratch = dir.path().join("other-scratch.ledger");
    drop(Ledger::create(&scratch, &begin).unwrap());
    std::fs::copy(&scratch, ledger_path(&other)).unwrap();
    let err = prepare(&config(&other)).err().unwrap().to_string();
    assert!(err.contains("is not this report's"), "{err}");
    assert!(err.contains(DEV_A), "{err}");

    // A ledger without its begin line: the run sent nothing.
    let empty = dir.path().join("empty.csv");
    std::fs::copy(&report, &empty).unwrap();
    std::fs::write(ledger_path(&empty), "").unwrap();
    let err = prepare(&config(&empty)).err().unwrap().to_string();
    assert!(err.contains("records no run"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn regression_20_an_audit_in_another_tenant_is_refused_before_any_read() {
    let dir = tempfile::tempdir().unwrap();
    let report = three_device_run(dir.path());
    let cfg = config(&report);
    let prepared = prepare(&cfg).unwrap();
    let intune = Intune::default();
    let reads = intune.reads.clone();
    let mut elsewhere = signed_in();
    elsewhere.tenant = "11111111-2222-3333-4444-555555555555".into();
    let never: Shutdown = Box::pin(std::future::pending());
    let err = execute_prepared(&cfg, prepared, intune, &elsewhere, never)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("Sign in to that tenant"), "{err}");
    assert_eq!(reads.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn regression_20_an_audit_of_a_killed_run_notes_it_and_never_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let report = three_device_run(dir.path());
    // The end line gone: killed, or cut off.
    let ledger = ledger_path(&report);
    let text = std::fs::read_to_string(&ledger).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&ledger, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let both = vec![
        record(AuditList::Events, DEV_A, 100, APP, "c-a"),
        record(AuditList::Events, DEV_B, 101, APP, "c-b"),
    ];
    let outcome = audit(
        &config(&report),
        Intune {
            events: both,
            ..Intune::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.summary.verdicts["confirmed"], 2);
    assert_eq!(outcome.exit_code(), 1, "{}", outcome.summary.render());
    assert!(
        outcome.summary.render().contains("no end line"),
        "{}",
        outcome.summary.render()
    );
}
