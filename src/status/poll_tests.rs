//! The passes of `status` against a scripted Graph (no sockets): which devices are read
//! again, and how a 429 or a missing device ends up in the states.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::graph::{
    ActionResult, CallError, CallErrorKind, Connection, DeviceActions, DevicePage, GraphApi,
    ManagedDevice, PageRequest, Reply,
};
use crate::pacing::cooldown::Backoff;
use crate::pacing::{Pacer, Settings};

use super::passes::poll;
use super::{Query, StatusConfig, state};

/// Per device, the answers of successive reads; the last one repeats.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<HashMap<String, Vec<Answer>>>,
    reads: Arc<Mutex<HashMap<String, usize>>>,
}

#[derive(Clone)]
enum Answer {
    State(&'static str),
    Throttled,
    Missing,
}

impl Scripted {
    fn new(script: &[(&str, Vec<Answer>)]) -> Scripted {
        Scripted {
            answers: Arc::new(
                script
                    .iter()
                    .map(|(d, a)| (d.to_string(), a.clone()))
                    .collect(),
            ),
            reads: Arc::default(),
        }
    }

    fn reads(&self, id: &str) -> usize {
        self.reads.lock().unwrap().get(id).copied().unwrap_or(0)
    }
}

fn error(kind: CallErrorKind, status: u16) -> CallError {
    CallError {
        kind,
        status: Some(status),
        message: "scripted".into(),
        code: None,
        request_id: None,
        client_request_id: "c".into(),
        retry_after: Some(Duration::from_millis(30)),
    }
}

impl GraphApi for Scripted {
    async fn get_device(
        &self,
        _: &str,
        _: &[&str],
        _: Connection,
    ) -> Result<Reply<ManagedDevice>, CallError> {
        unreachable!("status reads only deviceActionResults")
    }

    async fn list_devices_page(
        &self,
        _: PageRequest,
        _: Connection,
    ) -> Result<Reply<DevicePage>, CallError> {
        unreachable!("status reads only deviceActionResults")
    }

    async fn device_action(
        &self,
        _: &str,
        _: crate::rules::Family,
        _: Connection,
    ) -> Result<Reply<()>, CallError> {
        unreachable!("status never writes")
    }

    async fn action_results(
        &self,
        id: &str,
        _: Connection,
    ) -> Result<Reply<DeviceActions>, CallError> {
        let n = {
            let mut reads = self.reads.lock().unwrap();
            let n = reads.entry(id.to_owned()).or_default();
            *n += 1;
            *n
        };
        let script = &self.answers[id];
        let answer = script[(n - 1).min(script.len() - 1)].clone();
        let state = match answer {
            Answer::State(s) => s,
            Answer::Throttled => return Err(error(CallErrorKind::Throttled, 429)),
            Answer::Missing => return Err(error(CallErrorKind::NotFound, 404)),
        };
        Ok(Reply {
            value: vec![ActionResult {
                action_name: Some("resetPasscode".into()),
                action_state: Some(state.into()),
                start_date_time: Some("2026-11-22T02:00:00Z".into()),
                last_updated_date_time: Some("2026-11-22T02:00:05Z".into()),
                ..ActionResult::default()
            }]
            .into(),
            status: 200,
            request_id: None,
            client_request_id: "c".into(),
        })
    }
}

fn config(wait: Duration) -> StatusConfig {
    StatusConfig {
        tenant: Default::default(),
        into_run_report: false,
        run_sheet: None,
        run_report: "run.csv".into(),
        report: None,
        passcodes: None,
        summary_json: None,
        bom: true,
        wait: Some(wait),
        poll_interval: Duration::from_millis(5),
        settings: Settings {
            backoff: Backoff {
                base: Duration::from_millis(5),
                cap: Duration::from_millis(20),
            },
            request_timeout: Duration::from_secs(1),
            ..Settings::default()
        }
        .unlimited(),
    }
}

/// A stop that never comes.
fn never() -> tokio::sync::watch::Receiver<bool> {
    tokio::sync::watch::channel(false).1
}

fn queries(ids: &[&str]) -> Vec<Query> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| Query {
            ordinal: i as u64,
            device_id: id.to_string(),
            device_name: String::new(),
            platform: "ios".into(),
            sent_at: state::sent_at("2026-11-22T02:00:00.500Z"),
            action: crate::rules::Family::Passcode,
            tenant: String::new(),
        })
        .collect()
}

#[tokio::test]
async fn only_open_devices_are_read_again() {
    use Answer::*;
    let graph = Scripted::new(&[
        ("a", vec![State("done")]),
        ("b", vec![State("pending"), State("active"), State("done")]),
        ("c", vec![State("pending"), State("failed")]),
        ("d", vec![Missing]),
    ]);
    let pacer = Arc::new(Pacer::new(graph.clone(), config(Duration::ZERO).settings));
    let (found, passes) = poll(
        &config(Duration::from_secs(10)),
        &pacer,
        &queries(&["a", "b", "c", "d"]),
        HashMap::new(),
        never(),
    )
    .await;
    assert_eq!(passes, 3);
    assert_eq!(
        [
            graph.reads("a"),
            graph.reads("b"),
            graph.reads("c"),
            graph.reads("d")
        ],
        [1, 3, 2, 1]
    );
    let states: Vec<&str> = (0..4).map(|i| found[&i].state.as_str()).collect();
    assert_eq!(states, ["done", "done", "failed", state::DEVICE_NOT_FOUND]);
}

#[tokio::test]
async fn without_wait_there_is_one_pass_and_pending_stays_pending() {
    let graph = Scripted::new(&[("a", vec![Answer::State("pending"), Answer::State("done")])]);
    let mut config = config(Duration::ZERO);
    config.wait = None;
    let pacer = Arc::new(Pacer::new(graph.clone(), config.settings.clone()));
    let (found, passes) = poll(&config, &pacer, &queries(&["a"]), HashMap::new(), never()).await;
    assert_eq!((passes, graph.reads("a")), (1, 1));
    assert_eq!(found[&0].state, "pending");
}

#[tokio::test]
async fn a_429_pauses_and_the_read_is_retried() {
    let graph = Scripted::new(&[("a", vec![Answer::Throttled, Answer::State("done")])]);
    let config = config(Duration::ZERO);
    let pacer = Arc::new(Pacer::new(graph.clone(), config.settings.clone()));
    let (found, _) = poll(&config, &pacer, &queries(&["a"]), HashMap::new(), never()).await;
    assert_eq!(found[&0].state, "done");
    assert_eq!(graph.reads("a"), 2);
    assert_eq!(
        pacer
            .counters
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn regression_19_a_reset_that_ended_while_the_run_sent_is_not_read_again() {
    let graph = Scripted::new(&[
        ("a", vec![Answer::State("pending")]),
        ("b", vec![Answer::State("done")]),
    ]);
    let config = config(Duration::ZERO);
    let pacer = Arc::new(Pacer::new(graph.clone(), config.settings.clone()));
    let ended = HashMap::from([(0, state::Found::own("done", ""))]);
    let (found, passes) = poll(&config, &pacer, &queries(&["a", "b"]), ended, never()).await;
    assert_eq!((graph.reads("a"), graph.reads("b")), (0, 1));
    assert_eq!(
        (found[&0].state.as_str(), found[&1].state.as_str()),
        ("done", "done")
    );
    assert_eq!(passes, 1);
}

#[test]
fn regression_19_passes_come_after_a_second_then_less_often_up_to_the_interval() {
    use super::passes::pause_after;
    let interval = Duration::from_secs(15);
    let pauses: Vec<u64> = (1..=7)
        .map(|p| pause_after(p, interval).as_secs())
        .collect();
    assert_eq!(pauses, [1, 2, 4, 8, 15, 15, 15]);
}

/// A run's succeeded row for `device`, sent when the scripted entries started.
fn sent_row(device: &str) -> crate::report::ReportRow {
    let mut row = super::tests::row(crate::report::Outcome::Succeeded, "", device);
    row.started_at = "2026-11-22T02:00:00.500Z".into();
    row
}

#[tokio::test(start_paused = true)]
async fn regression_19_the_follower_keeps_what_ended_and_reads_open_resets_less_often() {
    use super::follow::Follower;
    let graph = Scripted::new(&[
        (
            "done-later",
            vec![Answer::State("pending"), Answer::State("done")],
        ),
        ("failed", vec![Answer::State("failed")]),
        ("open", vec![Answer::State("pending")]),
    ]);
    let pacer = Arc::new(Pacer::new(graph.clone(), config(Duration::ZERO).settings));
    let follower = Follower::start(pacer.clone());
    let tracker = follower.tracker();
    for device in ["done-later", "failed", "open"] {
        tracker.finished(&sent_row(device));
    }
    // A row without a reset sent is not followed.
    tracker.finished(&super::tests::row(
        crate::report::Outcome::Ineligible,
        "x",
        "never",
    ));
    // A minute of virtual time: reads at 2, 6, 14, 29, 44 and 59 s for the open one.
    let start = tokio::time::Instant::now();
    while tokio::time::Instant::now() - start < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut known = follower.finish().await;
    assert_eq!(
        graph.reads("done-later"),
        2,
        "read until it ended, then no more"
    );
    assert_eq!(graph.reads("failed"), 1);
    assert_eq!(graph.reads("open"), 6, "2 s, then doubling up to 15 s");
    let sent = state::sent_at("2026-11-22T02:00:00.500Z");
    assert_eq!(known.len(), 2);
    assert_eq!(
        known
            .take("DONE-LATER", crate::rules::Family::Passcode, sent)
            .map(|f| f.state),
        Some("done".into())
    );
    assert_eq!(
        known
            .take("failed", crate::rules::Family::Passcode, sent)
            .map(|f| f.state),
        Some("failed".into())
    );
    assert!(
        known
            .take("open", crate::rules::Family::Passcode, sent)
            .is_none(),
        "an open reset is left to status"
    );
    assert_eq!(known.reads, 9);
}

/// Issue 22: across tenants each row's device is read through the pacer of the tenant
/// it names (one id, two devices, two states), a tenant that could not be signed in to
/// leaves its rows `not_checked` naming why, and the command is aborted in its name.
#[tokio::test]
async fn regression_22_each_row_is_read_in_the_tenant_it_names() {
    use Answer::*;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run_report = dir.path().join("run.csv");
    // The run report's columns, each row's cells by name (the others empty).
    let line = |cells: &[(&str, &str)]| {
        let mut line: Vec<&str> = crate::report::COLUMNS
            .iter()
            .map(|c| cells.iter().find(|(k, _)| k == c).map_or("", |(_, v)| *v))
            .collect();
        line.push("\n");
        line.join(",").replace(",\n", "\n")
    };
    let mut text = crate::report::COLUMNS.join(",") + "\n";
    for (row, device, outcome, tenant) in [
        ("2", "shared", "succeeded", "contoso.com"),
        ("3", "shared", "succeeded", "2b7e0c1d"),
        ("4", "lost", "succeeded", "northwind.com"),
        ("5", "other", "ineligible", "northwind.com"),
    ] {
        text.push_str(&line(&[
            ("source", "job.csv"),
            ("row", row),
            ("device_id", device),
            ("outcome", outcome),
            ("attempts", "1"),
            ("tenant", tenant),
        ]));
    }
    std::fs::write(&run_report, text).expect("written");
    let config = StatusConfig {
        run_report: run_report.clone(),
        wait: None,
        ..config(Duration::ZERO)
    };
    let prepared = super::prepare(&config).expect("prepared");
    assert_eq!(
        prepared.tenants().expect("read"),
        ["contoso.com", "2b7e0c1d", "northwind.com"]
    );
    let contoso = Scripted::new(&[("shared", vec![State("done")])]);
    let fabrikam = Scripted::new(&[("shared", vec![State("failed")])]);
    let pacer = |g: &Scripted| {
        Ok((
            Arc::new(Pacer::new(g.clone(), config.settings.clone())),
            None,
        ))
    };
    let tenants = vec![
        super::TenantReads {
            label: "contoso.com".into(),
            names: vec!["contoso.com".into()],
            ready: pacer(&contoso),
            known: Default::default(),
        },
        super::TenantReads {
            label: "fabrikam.com".into(),
            names: vec!["fabrikam.com".into(), "2B7E0C1D".into()],
            ready: pacer(&fabrikam),
            known: Default::default(),
        },
        super::TenantReads {
            label: "northwind.com".into(),
            names: vec!["northwind.com".into()],
            ready: Err("no consent".into()),
            known: Default::default(),
        },
    ];
    let outcome =
        super::execute_tenants(&config, prepared, tenants, Box::pin(std::future::pending()))
            .await
            .expect("read");
    assert_eq!([contoso.reads("shared"), fabrikam.reads("shared")], [1, 1]);
    let written = std::fs::read_to_string(dir.path().join("run.status.csv")).expect("a report");
    let states: Vec<&str> = written
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(20).unwrap_or_default())
        .collect();
    assert_eq!(
        states,
        ["done", "failed", state::NOT_CHECKED, ""],
        "{written}"
    );
    let summary = &outcome.summary;
    assert_eq!(summary.tenants["contoso.com"].states["done"], 1);
    assert_eq!(summary.tenants["fabrikam.com"].states["failed"], 1);
    assert_eq!(
        summary.tenants["northwind.com"].states[state::NOT_CHECKED],
        1
    );
    assert_eq!(
        summary.tenants["northwind.com"].aborted.as_deref(),
        Some("no consent")
    );
    assert!(
        summary.unresolved[0]
            .detail
            .contains("tenant northwind.com could not be read: no consent"),
        "{:?}",
        summary.unresolved
    );
    assert_eq!(
        outcome.aborted.map(|a| a.sentence()).as_deref(),
        Some("in tenant northwind.com: authentication failed: no consent")
    );
}
