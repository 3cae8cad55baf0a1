//! Issue 20, point 5: a `run` against a `simulate` process that loses some answers
//! after the reset took effect, then Intune's two audit lists read from that process:
//! one record per reset carried out, with the run's `client-request-id`s as
//! `correlationId`s, or, with `--audit-correlation mismatch`, none of them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::common::read_report;
use crate::common::tenant::{CLIENT, TENANT, Tenant, ios_job, run_cmd, wait_for};

const LIMIT: Duration = Duration::from_secs(120);

/// Every record of the list at `path`, following `@odata.nextLink`; a read whose
/// connection the simulator drops (the `drop-after` fault meets reads too) is read again.
async fn read_all(base: &str, token: &str, path: &str) -> Vec<Value> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let mut records = Vec::new();
    let mut next = Some(format!("{base}{path}"));
    while let Some(url) = next.take() {
        let mut page = None;
        for _ in 0..50 {
            if let Ok(response) = client.get(&url).bearer_auth(token).send().await {
                assert_eq!(response.status().as_u16(), 200, "{url}");
                page = Some(response.json::<Value>().await.expect("a JSON page"));
                break;
            }
        }
        let page = page.expect("a read answered within 50 tries");
        records.extend(page["value"].as_array().cloned().unwrap_or_default());
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    records
}

/// Both lists of `tenant`, read as an app.
fn audit_lists(tenant: &Tenant) -> (Vec<Value>, Vec<Value>) {
    crate::sim::install_crypto();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", tenant.url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", "audit-reader"),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .expect("the token endpoint answers")
            .json()
            .await
            .expect("a token answer");
        let token = answer["access_token"].as_str().expect("a token").to_owned();
        (
            read_all(
                &tenant.url,
                &token,
                "/v1.0/deviceManagement/auditEvents?$top=3",
            )
            .await,
            read_all(
                &tenant.url,
                &token,
                "/beta/deviceManagement/remoteActionAudits",
            )
            .await,
        )
    })
}

/// Resets whose answer the simulator dropped after they took effect, from its log.
fn lost_after_effect(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "resetPasscode" && e["effect"] == true && e["status"].is_null())
        .count()
}

fn pointer(records: &[Value], at: &str) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            r.pointer(at)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

/// Runs the 10-device job against a lossy `simulate --audit-correlation MODE` and
/// returns the run report's client-request-id per device, the resets the simulator
/// carried out per device, and the two audit lists.
#[allow(clippy::type_complexity)]
fn run_and_read(
    dir: &std::path::Path,
    mode: &str,
) -> (
    BTreeMap<String, String>,
    BTreeMap<String, u32>,
    Vec<Value>,
    Vec<Value>,
) {
    let job = ios_job(dir, 10);
    let log = dir.join(format!("{mode}.jsonl"));
    // Some answers are lost after the reset took effect: the seed fixes which.
    let tenant = Tenant::start(
        &[&job],
        &log,
        &[
            "--no-limits",
            "--fault",
            "drop-after=0.3",
            "--seed",
            "1",
            "--audit-correlation",
            mode,
        ],
    );
    let report = dir.join(format!("{mode}.csv"));
    let mut child = run_cmd(&tenant, &[&job], &report, &["--timeout", "1s"])
        .spawn()
        .expect("the run starts");
    let out = wait_for(&mut child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        lost_after_effect(&log) >= 1,
        "the seed loses an answer after its effect"
    );
    let sent: BTreeMap<String, String> = read_report(&report)
        .into_iter()
        .filter(|r| !r["client_request_id"].is_empty())
        .map(|r| (r["device_id"].clone(), r["client_request_id"].clone()))
        .collect();
    let carried_out = tenant.resets();
    let (events, remote) = audit_lists(&tenant);
    (sent, carried_out, events, remote)
}

#[test]
fn regression_20_5_the_audit_lists_hold_one_record_per_reset_carried_out_with_the_runs_client_request_ids()
 {
    let dir = TempDir::new().expect("a temporary folder");
    let (sent, carried_out, events, remote) = run_and_read(dir.path(), "match");
    assert_eq!(carried_out.len(), 10, "{carried_out:?}");
    // One record per reset carried out, lost answers included, in both lists.
    let mut audited: BTreeMap<String, u32> = BTreeMap::new();
    for device in pointer(&events, "/resources/0/resourceId") {
        *audited.entry(device).or_default() += 1;
    }
    assert_eq!(audited, carried_out);
    let mut reported: BTreeMap<String, u32> = BTreeMap::new();
    for device in pointer(&remote, "/managedDeviceId") {
        *reported.entry(device).or_default() += 1;
    }
    assert_eq!(reported, carried_out);
    assert!(
        events
            .iter()
            .all(|e| e["activityType"] == "ResetPasscode ManagedDevice"
                && e["actor"]["applicationId"] == CLIENT)
    );
    // Each row's client-request-id is its device's record's correlationId.
    for (device, correlation) in pointer(&events, "/resources/0/resourceId")
        .into_iter()
        .zip(pointer(&events, "/correlationId"))
    {
        assert_eq!(sent.get(&device), Some(&correlation), "{device}");
    }
}

#[test]
fn regression_20_5_with_audit_correlation_mismatch_no_correlation_id_is_a_client_request_id_sent() {
    let dir = TempDir::new().expect("a temporary folder");
    let (sent, carried_out, events, _) = run_and_read(dir.path(), "mismatch");
    assert_eq!(
        events.len(),
        carried_out.values().sum::<u32>() as usize,
        "the records are all there"
    );
    let correlations = pointer(&events, "/correlationId");
    assert!(
        correlations
            .iter()
            .all(|c| uuid::Uuid::parse_str(c).is_ok() && !sent.values().any(|s| s == c)),
        "{correlations:?} {sent:?}"
    );
}
