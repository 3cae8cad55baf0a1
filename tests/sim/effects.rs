//! When a reset takes effect: late (`effect_delay`), after its client gave up, and the
//! request log's `effect` field that tests count real resets by.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use intune_reset::sim::{FaultKind, Inventory, SimClock, SimConfig, SimHandle, Support};
use serde_json::{Value, json};

use super::{client, post, reset_path, start, token};

fn supported(config: &SimConfig) -> Vec<String> {
    config
        .inventory
        .devices()
        .iter()
        .filter(|d| matches!(d.facts.support, Support::Supported { .. }))
        .map(|d| d.id.to_string())
        .collect()
}

fn config(log: &Path) -> SimConfig {
    SimConfig {
        inventory: Inventory::generate(20, 3),
        limits: None,
        log_path: Some(log.to_owned()),
        ..SimConfig::default()
    }
}

fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Resets per device as the log's `effect` field counts them.
fn effects(lines: &[Value]) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for line in lines.iter().filter(|l| l["effect"] == true) {
        *out.entry(line["device"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    out
}

// The simulator's clock is a manual one in these tests: an effect lands when the test
// advances it, so the order "the client gave up, then the reset landed" is one the test
// makes, on any machine. Real sockets, so no paused tokio time (its auto-advance would
// fire timers while a loopback packet is still on its way): every wait here is on an
// event the simulator shows.
#[tokio::test]
async fn a_late_effect_lands_after_its_client_gave_up() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let sim = start(SimConfig {
        effect_delay: Duration::from_secs(60),
        clock: SimClock::manual(),
        ..config(&log)
    })
    .await;
    let token = token(&sim, "app").await;
    let id = supported(sim.config())[0].clone();
    let url = format!("{}{}", sim.base_url(), reset_path(&id));
    let send = tokio::spawn(async move { client().post(url).bearer_auth(token).send().await });
    sim.writes_held(1).await;
    // The client gives up, as on its timeout: its connection closes unanswered.
    send.abort();
    assert!(send.await.unwrap_err().is_cancelled());
    // The simulator still holds the request, and the reset has not landed...
    assert_eq!(sim.writes_in_flight(), 1);
    assert!(sim.stats().resets_per_device.is_empty());
    // ...nor a second before the effect's delay has passed...
    sim.config().clock.advance(Duration::from_secs(59));
    tokio::task::yield_now().await;
    assert_eq!(sim.writes_in_flight(), 1);
    assert!(sim.stats().resets_per_device.is_empty());
    // ...and lands when it has, all the same.
    sim.config().clock.advance(Duration::from_secs(1));
    sim.writes_settled().await;
    assert_eq!(sim.stats().resets_per_device.get(&id), Some(&1));
    sim.shutdown().await;
    let lines = log_lines(&log);
    let reset: Vec<&Value> = lines
        .iter()
        .filter(|l| l["kind"] == "resetPasscode")
        .collect();
    assert_eq!(reset.len(), 1);
    assert_eq!(
        (&reset[0]["status"], &reset[0]["effect"]),
        (&json!(204), &json!(true))
    );
}

#[tokio::test]
async fn shutdown_waits_for_a_late_effect() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let sim = start(SimConfig {
        effect_delay: Duration::from_secs(30),
        clock: SimClock::manual(),
        ..config(&log)
    })
    .await;
    let clock = sim.config().clock.clone();
    let token = token(&sim, "app").await;
    let id = supported(sim.config())[0].clone();
    let url = format!("{}{}", sim.base_url(), reset_path(&id));
    let send = tokio::spawn(async move { client().post(url).bearer_auth(token).send().await });
    // The request is in; its effect is not, yet (observed, not slept for).
    sim.writes_held(1).await;
    send.abort();
    let stopping = tokio::spawn(sim.shutdown());
    // Shutdown is under way and waits: the effect cannot land before the clock moves.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!stopping.is_finished());
    clock.advance(Duration::from_secs(30));
    let stats = stopping.await.unwrap();
    assert_eq!(stats.resets_per_device.get(&id), Some(&1));
    assert_eq!(effects(&log_lines(&log)).get(&id), Some(&1));
}

async fn batch(sim: &SimHandle, token: &str, ids: &[&str]) -> Value {
    let requests: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"id": i.to_string(), "method": "POST",
                   "url": format!("/deviceManagement/managedDevices/{id}/resetPasscode")})
        })
        .collect();
    client()
        .post(format!("{}/v1.0/$batch", sim.base_url()))
        .bearer_auth(token)
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_log_marks_each_request_that_queued_a_reset() {
    let dir = tempfile::tempdir().unwrap();

    // Answered requests: a reset, an unknown device, a read, and a batch of both.
    let log = dir.path().join("answered.jsonl");
    let sim = start(config(&log)).await;
    let token_a = token(&sim, "app").await;
    let ids = supported(sim.config());
    let unknown = "00000000-0000-4000-8000-0000000000ff";
    assert_eq!(post(&sim, &reset_path(&ids[0]), &token_a).await.0, 204);
    assert_eq!(post(&sim, &reset_path(unknown), &token_a).await.0, 404);
    let answered = batch(&sim, &token_a, &[&ids[1], unknown]).await;
    assert_eq!(answered["responses"][0]["status"], 204);
    let (status, _) = super::get(
        &sim,
        &format!("/v1.0/deviceManagement/managedDevices/{}", ids[0]),
        &token_a,
    )
    .await;
    assert_eq!(status, 200);
    let stats = sim.shutdown().await;
    let lines = log_lines(&log);
    for line in &lines {
        assert!(line["effect"].is_boolean(), "{line}");
        let queued = line["kind"] == "resetPasscode" && line["status"] == 204;
        assert_eq!(line["effect"] == true, queued, "{line}");
    }
    assert_eq!(effects(&lines), stats.resets_per_device);
    assert_eq!(effects(&lines).len(), 2);

    // Dropped answers: after the effect counts, before it does not.
    for (kind, landed) in [
        (FaultKind::DropAfterEffect, true),
        (FaultKind::DropBeforeEffect, false),
    ] {
        let log = dir.path().join(format!("{kind}.jsonl"));
        let sim = start(SimConfig {
            faults: vec![(kind, 1.0)],
            ..config(&log)
        })
        .await;
        let token = token(&sim, "app").await;
        let id = supported(sim.config())[0].clone();
        let url = format!("{}{}", sim.base_url(), reset_path(&id));
        assert!(client().post(url).bearer_auth(&token).send().await.is_err());
        let stats = sim.shutdown().await;
        let lines = log_lines(&log);
        let reset = lines.iter().find(|l| l["kind"] == "resetPasscode").unwrap();
        assert_eq!(reset["status"], Value::Null, "{kind}");
        assert_eq!(reset["effect"], json!(landed), "{kind}");
        assert_eq!(effects(&lines), stats.resets_per_device, "{kind}");
    }
}
