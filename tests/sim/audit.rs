//! Intune's audit lists over HTTP: one record per reset carried out (its answer sent
//! or dropped after the effect), none for a refused one; the `client-request-id` as
//! `correlationId`; paging, filters, the audit delay on a manual clock, the 403, the
//! read budget and the next-link loop; and the records kept with a saved tenant.

use std::time::Duration;

use intune_reset::sim::{
    FaultKind, Inventory, Limits, SavedTenant, SimClock, SimConfig, SimHandle, Support,
};
use serde_json::{Value, json};

use super::{SCOPE, client, get, start, token};

const EVENTS: &str = "/v1.0/deviceManagement/auditEvents";
const REMOTE: &str = "/beta/deviceManagement/remoteActionAudits";

fn supported(config: &SimConfig) -> Vec<String> {
    config
        .inventory
        .devices()
        .iter()
        .filter(|d| matches!(d.facts.support, Support::Supported { .. }))
        .map(|d| d.id.to_string())
        .collect()
}

fn config() -> SimConfig {
    SimConfig {
        inventory: Inventory::generate(30, 3),
        limits: None,
        clock: SimClock::manual(),
        ..SimConfig::default()
    }
}

fn cid(n: u32) -> String {
    format!("{n:08x}-c1d0-4e0e-8000-00000000cafe")
}

/// POST a reset with `client_request_id` as its header (none when `None`); the status,
/// or `None` when the connection closed unanswered.
async fn reset(
    sim: &SimHandle,
    token: &str,
    id: &str,
    client_request_id: Option<&str>,
) -> Option<u16> {
    let url = format!(
        "{}/v1.0/deviceManagement/managedDevices/{id}/resetPasscode",
        sim.base_url()
    );
    let mut request = client().post(url).bearer_auth(token);
    if let Some(c) = client_request_id {
        request = request.header("client-request-id", c);
    }
    request.send().await.ok().map(|r| r.status().as_u16())
}

/// Every record of a list, following `@odata.nextLink` to the end.
async fn all(sim: &SimHandle, path: &str, token: &str) -> Vec<Value> {
    let mut records = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(url) = next.take() {
        let (status, page) = get(sim, &url, token).await;
        assert_eq!(status, 200, "{url}: {page}");
        records.extend(page["value"].as_array().cloned().unwrap_or_default());
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
        assert!(records.len() <= 1000, "paging never ends");
    }
    records
}

fn field(records: &[Value], pointer: &str) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            r.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn each_reset_carried_out_is_audited_once_with_its_client_request_id_and_a_refused_one_is_not()
 {
    let sim = start(SimConfig {
        limits: Some(Limits {
            app_writes: 5,
            ..Limits::default()
        }),
        ..config()
    })
    .await;
    let token = token(&sim, "app-1").await;
    let ids = supported(sim.config());
    let clock = sim.config().clock.clone();
    assert_eq!(reset(&sim, &token, &ids[0], Some(&cid(1))).await, Some(204));
    clock.advance(Duration::from_secs(1));
    assert_eq!(reset(&sim, &token, &ids[1], Some(&cid(2))).await, Some(204));
    let unknown = "00000000-0000-4000-8000-0000000000ff";
    assert_eq!(reset(&sim, &token, unknown, Some(&cid(3))).await, Some(404));
    // A batch: the first inner request has its own header, the second has none (the
    // batch's own is not the inner request's).
    clock.advance(Duration::from_secs(1));
    let inner = |n: usize, headers: Value| {
        json!({"id": n.to_string(), "method": "POST", "headers": headers,
               "url": format!("/deviceManagement/managedDevices/{}/resetPasscode", ids[n])})
    };
    let batch: Value = client()
        .post(format!("{}/v1.0/$batch", sim.base_url()))
        .bearer_auth(&token)
        .header("client-request-id", cid(5))
        .json(&json!({"requests": [inner(2, json!({"client-request-id": cid(4)})), inner(3, json!({}))]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(batch["responses"][0]["status"], 204);
    assert_eq!(batch["responses"][1]["status"], 204);
    // Over the write limit: refused before it took effect.
    assert_eq!(reset(&sim, &token, &ids[4], Some(&cid(6))).await, Some(429));

    let events = all(&sim, EVENTS, &token).await;
    assert_eq!(field(&events, "/resources/0/resourceId"), ids[..4]);
    let correlations = field(&events, "/correlationId");
    assert_eq!(correlations[..3], [cid(1), cid(2), cid(4)]);
    assert!(
        ![cid(3), cid(5), cid(6)].contains(&correlations[3]),
        "{correlations:?}"
    );
    assert!(uuid::Uuid::parse_str(&correlations[3]).is_ok());
    let first = &events[0];
    for (key, value) in [
        ("activityType", "ResetPasscode ManagedDevice"),
        ("activityOperationType", "Action"),
        ("activityResult", "Success"),
        ("category", "Device"),
    ] {
        assert_eq!(first[key], value, "{key}");
    }
    assert_eq!(first["actor"]["applicationId"], "app-1");
    assert_eq!(first["actor"]["type"], "Application");
    assert_eq!(first["actor"]["userPrincipalName"], Value::Null);
    assert_eq!(first["resources"][0]["type"], "ManagedDevice");
    let inventory = &sim.config().inventory;
    let device = inventory
        .find_id(&ids[0])
        .and_then(|i| inventory.device(i))
        .unwrap();
    assert_eq!(first["resources"][0]["displayName"], &*device.device_name);
    // The time of the action (the clock had not moved), to Graph's 100 ns.
    let at = humantime::parse_rfc3339(first["activityDateTime"].as_str().unwrap()).unwrap();
    let start = clock.wall_at(Duration::ZERO);
    assert!(start.duration_since(at).unwrap() < Duration::from_nanos(100));
    // The same under beta; and the report of remote actions, in the same order.
    assert_eq!(
        all(&sim, "/beta/deviceManagement/auditEvents", &token).await,
        events
    );
    let remote = all(&sim, REMOTE, &token).await;
    assert_eq!(field(&remote, "/managedDeviceId"), ids[..4]);
    assert!(remote.iter().all(|r| r["action"] == "resetPasscode"
        && r["deviceActionCategory"] == "single"
        && r["initiatedByUserPrincipalName"] == ""));
    assert_eq!(sim.shutdown().await.resets_per_device.len(), 4);
}

#[tokio::test]
async fn a_reset_whose_answer_was_dropped_after_it_took_effect_is_audited_and_kept_with_the_saved_tenant()
 {
    let lossy = start(SimConfig {
        faults: vec![(FaultKind::DropAfterEffect, 1.0)],
        ..config()
    })
    .await;
    let token_a = token(&lossy, "app-1").await;
    let ids = supported(lossy.config());
    assert_eq!(reset(&lossy, &token_a, &ids[0], Some(&cid(1))).await, None);
    let (_, saved) = lossy.shutdown_saving().await;
    assert_eq!(saved.audit.len(), 1);

    // Nothing dropped before the effect is audited.
    let before = start(SimConfig {
        faults: vec![(FaultKind::DropBeforeEffect, 1.0)],
        ..config()
    })
    .await;
    let token_b = token(&before, "app-1").await;
    assert_eq!(reset(&before, &token_b, &ids[0], Some(&cid(2))).await, None);
    assert!(before.shutdown_saving().await.1.audit.is_empty());

    // The saved tenant, written and read back, goes on with its audit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv.sim.json");
    saved.save(&path).unwrap();
    let mut again = SavedTenant::load(&path).unwrap().config().unwrap();
    again.faults.clear();
    again.latency = Default::default();
    let sim = start(again).await;
    let token = token(&sim, "app-1").await;
    assert_eq!(reset(&sim, &token, &ids[1], Some(&cid(3))).await, Some(204));
    let events = all(&sim, EVENTS, &token).await;
    assert_eq!(field(&events, "/resources/0/resourceId"), ids[..2]);
    assert_eq!(field(&events, "/correlationId"), [cid(1), cid(3)]);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_record_shows_once_the_audit_delay_has_passed_and_its_state_is_the_resets_at_the_read() {
    let sim = start(SimConfig {
        audit_delay: Duration::from_secs(5),
        action_delay: Duration::from_secs(10),
        ..config()
    })
    .await;
    let token = token(&sim, "app-1").await;
    let id = supported(sim.config())[0].clone();
    let clock = sim.config().clock.clone();
    assert_eq!(reset(&sim, &token, &id, Some(&cid(1))).await, Some(204));
    clock.advance(Duration::from_millis(4_999));
    assert!(all(&sim, EVENTS, &token).await.is_empty());
    assert!(all(&sim, REMOTE, &token).await.is_empty());
    clock.advance(Duration::from_millis(1));
    assert_eq!(all(&sim, EVENTS, &token).await.len(), 1);
    let remote = all(&sim, REMOTE, &token).await;
    assert_eq!(field(&remote, "/actionState"), ["pending"]);
    clock.advance(Duration::from_secs(5));
    let (_, device) = get(
        &sim,
        &format!("/beta/deviceManagement/managedDevices/{id}"),
        &token,
    )
    .await;
    let shown = device["deviceActionResults"][0]["actionState"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(shown, "pending");
    assert_eq!(
        field(&all(&sim, REMOTE, &token).await, "/actionState"),
        [shown]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_lists_page_through_next_links_filter_on_time_type_and_action_and_refuse_other_filters()
{
    let sim = start(config()).await;
    let token = token(&sim, "app-1").await;
    let ids = supported(sim.config());
    let clock = sim.config().clock.clone();
    for (n, id) in ids.iter().take(7).enumerate() {
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            reset(&sim, &token, id, Some(&cid(n as u32))).await,
            Some(204)
        );
    }
    let (_, page) = get(&sim, &format!("{EVENTS}?$top=3"), &token).await;
    assert_eq!(page["value"].as_array().map(Vec::len), Some(3));
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{}{EVENTS}?$top=3&$skiptoken=", sim.base_url())),
        "{next}"
    );
    let events = all(&sim, &format!("{EVENTS}?$top=3"), &token).await;
    assert_eq!(field(&events, "/resources/0/resourceId"), ids[..7]);
    let times = field(&events, "/activityDateTime");
    // From the fourth on, unquoted and quoted; up to the fifth; of the one type.
    let from = format!("activityDateTime ge {}", times[3]);
    let quoted = format!("activityDateTime ge '{}'", times[3]);
    let window = format!(
        "{from} and activityDateTime le {} and activityType eq 'ResetPasscode ManagedDevice'",
        times[4]
    );
    for (filter, expected) in [(&from, 4), (&quoted, 4), (&window, 2)] {
        let url = format!("{EVENTS}?$top=2&$filter={}", urlencode(filter));
        assert_eq!(all(&sim, &url, &token).await.len(), expected, "{filter}");
    }
    let other_type = format!(
        "{EVENTS}?$filter={}",
        urlencode("activityType eq 'RemoteLock ManagedDevice'")
    );
    assert!(all(&sim, &other_type, &token).await.is_empty());
    let action = |a: &str| {
        format!(
            "{REMOTE}?$filter={}",
            urlencode(&format!("action eq '{a}'"))
        )
    };
    assert_eq!(all(&sim, &action("resetPasscode"), &token).await.len(), 7);
    assert!(all(&sim, &action("remoteLock"), &token).await.is_empty());
    for bad in [
        format!(
            "{EVENTS}?$filter={}",
            urlencode("componentName eq 'Devices'")
        ),
        format!("{REMOTE}?$filter={}", urlencode("managedDeviceId eq 'x'")),
        format!("{EVENTS}?$top=none"),
    ] {
        let (status, body) = get(&sim, &bad, &token).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("BadRequest")),
            "{bad}"
        );
    }
    // remoteActionAudits is beta only: v1.0 knows no such segment.
    let (status, body) = get(&sim, "/v1.0/deviceManagement/remoteActionAudits", &token).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "Resource not found for the segment 'remoteActionAudits'."
    );
    sim.shutdown().await;
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn denied_audit_reads_answer_403_naming_the_permission_each_list_needs() {
    let sim = start(SimConfig {
        deny_audit_read: true,
        ..config()
    })
    .await;
    let token = token(&sim, "app-1").await;
    for (path, scope) in [
        (EVENTS, "DeviceManagementApps.Read.All"),
        (
            "/beta/deviceManagement/auditEvents",
            "DeviceManagementApps.Read.All",
        ),
        (REMOTE, "DeviceManagementManagedDevices.Read.All"),
    ] {
        let (status, body) = get(&sim, path, &token).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (403, &json!("Forbidden")),
            "{path}"
        );
        let nested = super::nested_message(&body);
        let message = nested["Message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "Application must have one of the following scopes: {scope}"
            )),
            "{message}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn audit_reads_count_against_the_read_budget_and_meet_the_next_link_loop() {
    let sim = start(SimConfig {
        limits: Some(Limits {
            app_any: 2,
            ..Limits::default()
        }),
        ..config()
    })
    .await;
    let app = token(&sim, "app-1").await;
    assert_eq!(get(&sim, EVENTS, &app).await.0, 200);
    assert_eq!(get(&sim, REMOTE, &app).await.0, 200);
    let (status, body) = get(&sim, EVENTS, &app).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &json!("TooManyRequests"))
    );
    sim.shutdown().await;

    let sim = start(SimConfig {
        faults: vec![(FaultKind::NextLinkLoop, 1.0)],
        ..config()
    })
    .await;
    let token = token(&sim, "app-1").await;
    for path in [EVENTS, REMOTE] {
        let url = format!("{path}?$top=5");
        let (status, page) = get(&sim, &url, &token).await;
        assert_eq!(status, 200);
        assert_eq!(
            page["@odata.nextLink"],
            format!("{}{url}", sim.base_url()),
            "{path}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_delegated_reset_names_the_signed_in_user_in_both_lists() {
    let sim = start(config()).await;
    let base = format!("{}/{}/oauth2/v2.0", sim.base_url(), sim.config().tenant_id);
    let form = [("client_id", "public-app"), ("scope", SCOPE)];
    let code: Value = client()
        .post(format!("{base}/devicecode"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", "public-app"),
        ("device_code", code["device_code"].as_str().unwrap()),
    ];
    let mut answer = Value::Null;
    // The simulated user approves at once: the first poll is pending, a later one signed in.
    for _ in 0..5 {
        answer = client()
            .post(format!("{base}/token"))
            .form(&poll)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if answer["access_token"].is_string() {
            break;
        }
    }
    let token = answer["access_token"].as_str().unwrap().to_owned();
    let id = supported(sim.config())[0].clone();
    assert_eq!(reset(&sim, &token, &id, Some(&cid(1))).await, Some(204));
    let upn = format!("admin@{}", sim.config().tenant_domain);
    let events = all(&sim, EVENTS, &token).await;
    assert_eq!(events[0]["actor"]["userPrincipalName"], upn);
    assert_eq!(events[0]["actor"]["type"], "ItPro");
    assert_eq!(events[0]["actor"]["applicationId"], "public-app");
    assert!(events[0]["actor"]["userId"].is_string());
    let remote = all(&sim, REMOTE, &token).await;
    assert_eq!(remote[0]["initiatedByUserPrincipalName"], upn);
    sim.shutdown().await;
}
