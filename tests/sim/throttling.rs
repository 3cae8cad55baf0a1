//! Intune's limits over HTTP: per app and per tenant, throttled requests counting, and
//! `Retry-After` at the window's edge. The simulator's clock is a manual one the test
//! advances: no real time passes for the windows, so the edges hold on a loaded machine.

use std::time::Duration;

use intune_reset::sim::{Inventory, Limits, SimClock, SimConfig};

use super::{get, post, reset_path, start, token};

#[tokio::test]
async fn writes_over_the_limit_get_429_with_graphs_body_until_the_window_frees_a_slot() {
    let sim = start(SimConfig {
        inventory: Inventory::generate(20, 2),
        limits: Some(Limits {
            app_writes: 3,
            ..Limits::default()
        }),
        clock: SimClock::manual(),
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim, "app").await;
    let id = sim.config().inventory.devices()[0].id.to_string();
    for _ in 0..3 {
        assert_ne!(post(&sim, &reset_path(&id), &token).await.0, 429);
    }
    let (status, headers, body) = post(&sim, &reset_path(&id), &token).await;
    assert_eq!(status, 429);
    assert_eq!(headers.get("Retry-After").unwrap(), "20");
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    // Reads have their own budget.
    assert_eq!(
        get(&sim, "/v1.0/deviceManagement/managedDevices?$top=1", &token)
            .await
            .0,
        200
    );

    // Just before the first three age out: still throttled, and the wait shrinks.
    sim.config().clock.advance(Duration::from_millis(19_500));
    let (status, headers, _) = post(&sim, &reset_path(&id), &token).await;
    assert_eq!(status, 429);
    assert_eq!(headers.get("Retry-After").unwrap(), "1");
    // At the edge the first four (three accepted, one throttled) are gone; the throttled
    // one at 19.5 s still counts, so two more fit, not three.
    sim.config().clock.advance(Duration::from_millis(600));
    assert_ne!(post(&sim, &reset_path(&id), &token).await.0, 429);
    assert_ne!(post(&sim, &reset_path(&id), &token).await.0, 429);
    assert_eq!(post(&sim, &reset_path(&id), &token).await.0, 429);

    let stats = sim.shutdown().await;
    assert_eq!(stats.throttled, 3);
    assert_eq!(stats.too_many_requests, 3);
    assert_eq!(stats.resets_per_device.get(&id), Some(&5));
    assert_eq!(stats.devices_reset_more_than_once(), vec![id.as_str()]);
}

#[tokio::test]
async fn apps_share_the_tenant_limit() {
    let sim = start(SimConfig {
        inventory: Inventory::generate(5, 2),
        limits: Some(Limits {
            app_any: 4,
            tenant_any: 6,
            ..Limits::default()
        }),
        // All eight requests fall in one window however long they take.
        clock: SimClock::manual(),
        ..SimConfig::default()
    })
    .await;
    let (a, b) = (token(&sim, "app-a").await, token(&sim, "app-b").await);
    let list = "/v1.0/deviceManagement/managedDevices?$top=1";
    let mut statuses = Vec::new();
    for t in [&a, &a, &a, &a, &a, &b, &b, &b] {
        statuses.push(get(&sim, list, t).await.0);
    }
    // a: 4 pass, the 5th is over a's own limit; b: 1 passes, then the tenant's 6 are used.
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 200, 429, 429]);
    sim.shutdown().await;
}

#[tokio::test]
async fn without_limits_nothing_is_throttled() {
    let sim = start(SimConfig {
        inventory: Inventory::generate(5, 2),
        limits: None,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim, "app").await;
    let id = sim.config().inventory.devices()[0].id.to_string();
    for _ in 0..250 {
        assert_ne!(post(&sim, &reset_path(&id), &token).await.0, 429);
    }
    let stats = sim.shutdown().await;
    // Every write was served (none 429), whatever the machine's speed: how many fell in
    // one 20 s window depends on how fast this machine sent them, so that is not asserted.
    assert_eq!(stats.too_many_requests, 0);
    assert_eq!(stats.resets_per_device.get(&id), Some(&250));
}
