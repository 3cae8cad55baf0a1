//! Faults over HTTP: drops before and after the effect, status faults, expired tokens,
//! the same faults for the same seed, and the request log.

use intune_reset::sim::{FaultKind, Inventory, SimConfig, Support};
use serde_json::Value;

use super::{client, device_ids, get, post, reset_path, start, token};

fn supported(config: &SimConfig) -> String {
    config
        .inventory
        .devices()
        .iter()
        .find(|d| matches!(d.facts.support, Support::Supported { .. }))
        .unwrap()
        .id
        .to_string()
}

fn with_fault(kind: FaultKind, p: f64) -> SimConfig {
    SimConfig {
        inventory: Inventory::generate(20, 3),
        faults: vec![(kind, p)],
        limits: None,
        ..SimConfig::default()
    }
}

async fn try_reset(
    sim: &intune_reset::sim::SimHandle,
    token: &str,
    id: &str,
) -> Result<u16, reqwest::Error> {
    let url = format!("{}{}", sim.base_url(), reset_path(id));
    client()
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().as_u16())
}

#[tokio::test]
async fn a_drop_after_the_effect_still_resets_and_a_drop_before_does_not() {
    for (kind, counted) in [
        (FaultKind::DropAfterEffect, Some(&1)),
        (FaultKind::DropBeforeEffect, None),
    ] {
        let sim = start(with_fault(kind, 1.0)).await;
        let token = token(&sim, "app").await;
        let id = supported(sim.config());
        assert!(
            try_reset(&sim, &token, &id).await.is_err(),
            "{kind}: the connection must close without an answer"
        );
        let stats = sim.shutdown().await;
        assert_eq!(stats.resets_per_device.get(&id), counted, "{kind}");
        assert_eq!(stats.dropped, 1);
        assert_eq!(stats.faults.get(kind.as_str()), Some(&1));
    }
}

#[tokio::test]
async fn status_faults_answer_graphs_errors() {
    let cases = [
        (FaultKind::TooManyRequestsWithoutRetryAfter, 429, false),
        (FaultKind::FractionalRetryAfter, 429, true),
        (FaultKind::ServiceUnavailable, 503, true),
        (FaultKind::ServiceUnavailableWithoutRetryAfter, 503, false),
        (FaultKind::GatewayTimeout, 504, false),
    ];
    for (kind, status, retry_after) in cases {
        let sim = start(with_fault(kind, 1.0)).await;
        let token = token(&sim, "app").await;
        let id = supported(sim.config());
        let (got, headers, body) = post(&sim, &reset_path(&id), &token).await;
        assert_eq!(got, status, "{kind}");
        assert_eq!(headers.get("Retry-After").is_some(), retry_after, "{kind}");
        assert!(body["error"]["innerError"]["request-id"].is_string());
        if kind == FaultKind::FractionalRetryAfter {
            let value = headers.get("Retry-After").unwrap().to_str().unwrap();
            assert!(
                value.contains('.') && value.parse::<f64>().unwrap() > 0.0,
                "{value}"
            );
        }
        let stats = sim.shutdown().await;
        assert!(
            stats.resets_per_device.is_empty(),
            "{kind}: a faulted request has no effect"
        );
    }
}

#[tokio::test]
async fn an_expired_token_fault_expires_the_token_for_good() {
    let sim = start(with_fault(FaultKind::ExpiredToken, 0.5)).await;
    let token = token(&sim, "app").await;
    let list = "/v1.0/deviceManagement/managedDevices?$top=1";
    let mut first_401 = None;
    for i in 0..40 {
        let (status, body) = get(&sim, list, &token).await;
        if status == 401 {
            assert_eq!(
                body["error"]["message"],
                "Lifetime validation failed, the token is expired."
            );
            first_401.get_or_insert(i);
        } else {
            assert!(
                first_401.is_none(),
                "a token that expired must stay expired"
            );
        }
    }
    assert!(first_401.is_some());
    let stats = sim.shutdown().await;
    assert_eq!(stats.faults.get("expired-token"), Some(&1));
}

async fn statuses(seed: u64) -> Vec<u16> {
    let sim = start(SimConfig {
        seed,
        faults: vec![
            (FaultKind::GatewayTimeout, 0.3),
            (FaultKind::TooManyRequestsWithoutRetryAfter, 0.2),
        ],
        ..with_fault(FaultKind::GatewayTimeout, 0.0)
    })
    .await;
    let token = token(&sim, "app").await;
    let ids: Vec<String> = device_ids(&sim);
    let mut out = Vec::new();
    for id in ids.iter().cycle().take(60) {
        out.push(
            get(
                &sim,
                &format!("/v1.0/deviceManagement/managedDevices/{id}?$select=id"),
                &token,
            )
            .await
            .0,
        );
    }
    sim.shutdown().await;
    out
}

#[tokio::test]
async fn the_same_seed_meets_the_same_faults() {
    let a = statuses(11).await;
    assert_eq!(a, statuses(11).await);
    assert_ne!(a, statuses(12).await);
    assert!(
        a.contains(&504) && a.contains(&429) && a.contains(&200),
        "{a:?}"
    );
}

#[tokio::test]
async fn the_request_log_has_a_line_per_request_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let sim = start(SimConfig {
        log_path: Some(path.clone()),
        ..with_fault(FaultKind::DropAfterEffect, 1.0)
    })
    .await;
    let token = token(&sim, "app").await;
    let id = supported(sim.config());
    assert!(try_reset(&sim, &token, &id).await.is_err());
    let stats = sim.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(&token), "tokens must never be logged");
    assert!(!text.contains("s3cret"), "secrets must never be logged");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, stats.total_requests());
    let reset = &lines[1];
    assert_eq!(reset["kind"], "resetPasscode");
    assert_eq!(reset["status"], Value::Null);
    assert_eq!(reset["fault"], "drop-after");
    assert_eq!(reset["device"], id.as_str());
    for key in ["time", "method", "path", "client_request_id", "retry_after"] {
        assert!(reset.get(key).is_some(), "{key}");
    }
}

#[tokio::test]
async fn slow_answers_and_latency_delay_the_answer() {
    let sim = start(SimConfig {
        slow: std::time::Duration::from_millis(300),
        latency: intune_reset::sim::Latency {
            base: std::time::Duration::from_millis(100),
            jitter: std::time::Duration::from_millis(50),
        },
        ..with_fault(FaultKind::Slow, 1.0)
    })
    .await;
    let token = token(&sim, "app").await;
    let id = supported(sim.config());
    let started = std::time::Instant::now();
    assert_eq!(post(&sim, &reset_path(&id), &token).await.0, 204);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= std::time::Duration::from_millis(400),
        "{elapsed:?}"
    );
    let stats = sim.shutdown().await;
    assert_eq!(stats.faults.get("slow"), Some(&1));
    assert_eq!(stats.resets_per_device.get(&id), Some(&1));
}
