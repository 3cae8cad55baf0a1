//! managedDevices: paging, filters, single reads, resetPasscode and deviceActionResults.

use std::collections::HashSet;
use std::time::Duration;

use intune_reset::sim::{Inventory, SimClock, SimConfig, Support};
use serde_json::{Value, json};

use super::{client, device_ids, get, nested_message, post, reset_path, start, token};

fn config(devices: usize) -> SimConfig {
    SimConfig {
        inventory: Inventory::generate(devices, 7),
        page_size: 10,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn paging_follows_next_links_to_every_device_once() {
    let sim = start(config(25)).await;
    let token = token(&sim, "app").await;
    let mut next = Some("/v1.0/deviceManagement/managedDevices?$select=id,serialNumber".to_owned());
    let mut pages = Vec::new();
    let mut ids = Vec::new();
    while let Some(url) = next {
        let (status, body) = get(&sim, &url, &token).await;
        assert_eq!(status, 200, "{body}");
        let value = body["value"].as_array().unwrap();
        pages.push(value.len());
        for device in value {
            assert_eq!(device.as_object().unwrap().len(), 2, "{device}");
            ids.push(device["id"].as_str().unwrap().to_owned());
        }
        next = body["@odata.nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(pages, vec![10, 10, 5]);
    let expected: Vec<String> = device_ids(&sim);
    assert_eq!(ids, expected);

    let (_, body) = get(&sim, "/v1.0/deviceManagement/managedDevices?$top=7", &token).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 7);
    let next = body["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.contains("$top=7") && next.contains("$skiptoken="),
        "{next}"
    );
    let (_, body) = get(&sim, next, &token).await;
    assert_eq!(body["value"][0]["id"], expected[7].as_str());
    sim.shutdown().await;
}

#[tokio::test]
async fn filters_match_ignoring_case_and_unsupported_ones_are_silently_ignored() {
    let sim = start(config(400)).await;
    let token = token(&sim, "app").await;
    let inventory = &sim.config().inventory;
    let device = &inventory.devices()[3];
    let list = |filter: String| {
        format!(
            "/v1.0/deviceManagement/managedDevices?$filter={}",
            urlencode(&filter)
        )
    };
    let (status, body) = get(
        &sim,
        &list(format!(
            "serialNumber eq '{}'",
            device.serial_number.to_lowercase()
        )),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["id"], device.id.to_string());

    let (_, body) = get(
        &sim,
        &list(format!(
            "azureADDeviceId eq '{}'",
            device.azure_ad_device_id
        )),
        &token,
    )
    .await;
    assert_eq!(body["value"][0]["id"], device.id.to_string());
    let (_, body) = get(
        &sim,
        &list("serialNumber eq 'NO-SUCH-SERIAL'".into()),
        &token,
    )
    .await;
    assert_eq!(body["value"], json!([]));

    // Several devices share a name: every one comes back (the client must not reset them all).
    let shared = inventory
        .devices()
        .iter()
        .map(|d| d.device_name.to_string())
        .find(|n| {
            inventory
                .devices()
                .iter()
                .filter(|d| &*d.device_name == n)
                .count()
                > 1
        })
        .unwrap();
    let (_, body) = get(
        &sim,
        &list(format!("deviceName eq '{}'", shared.replace('\'', "''"))),
        &token,
    )
    .await;
    assert!(body["value"].as_array().unwrap().len() > 1, "{shared}");

    // Graph ignores what it does not support and returns everything: a full first page.
    for ignored in [
        "osVersion eq '17.1'",
        "startswith(deviceName,'A')",
        "serialNumber ne 'X'",
    ] {
        let (status, body) = get(&sim, &list(ignored.into()), &token).await;
        assert_eq!(status, 200);
        assert_eq!(body["value"].as_array().unwrap().len(), 10, "{ignored}");
        assert!(body["@odata.nextLink"].is_string());
    }
    let (status, body) = get(&sim, &list("serialNumber eq 'open".into()), &token).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("BadRequest"))
    );
    sim.shutdown().await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn one_device_in_both_key_forms_with_select_and_beta_fields() {
    let sim = start(config(50)).await;
    let token = token(&sim, "app").await;
    let device = &sim.config().inventory.devices()[0];
    let id = device.id.to_string();
    let (status, plain) = get(
        &sim,
        &format!("/v1.0/deviceManagement/managedDevices/{id}"),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    let (_, keyed) = get(
        &sim,
        &format!("/v1.0/deviceManagement/managedDevices('{id}')"),
        &token,
    )
    .await;
    assert_eq!(plain["serialNumber"], keyed["serialNumber"]);
    assert!(plain.get("deviceType").is_none());
    let (_, beta) = get(
        &sim,
        &format!(
            "/beta/deviceManagement/managedDevices/{id}?$select=id,deviceType,deviceEnrollmentType"
        ),
        &token,
    )
    .await;
    assert_eq!(beta["deviceType"], json!(&*device.facts.device_type));
    assert_eq!(
        beta.as_object()
            .unwrap()
            .keys()
            .filter(|k| !k.starts_with('@'))
            .count(),
        3
    );
    let (status, body) = get(
        &sim,
        &format!("/v1.0/deviceManagement/managedDevices/{id}?$select=deviceType"),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("BadRequest"))
    );

    let unknown = "0b9a6a2c-1d3e-4f50-8a6b-7c8d9e0f1a2b";
    let (status, body) = get(
        &sim,
        &format!("/v1.0/deviceManagement/managedDevices/{unknown}"),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    assert_eq!(nested_message(&body)["_version"], 3);
    let (status, _, body) = post(&sim, &reset_path(unknown), &token).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn resets_are_queued_refused_or_forbidden_and_show_in_device_action_results() {
    let sim = start(SimConfig {
        deny_apps: vec!["denied-app".into()],
        action_delay: Duration::from_secs(30),
        // `pending` until the test advances the clock, however slow the requests.
        clock: SimClock::manual(),
        ..config(300)
    })
    .await;
    let token = token(&sim, "app").await;
    let inventory = sim.config().inventory.clone();
    let devices = inventory.devices();
    let supported = devices
        .iter()
        .find(|d| {
            matches!(d.facts.support, Support::Supported { .. })
                && &*d.facts.operating_system == "Android"
        })
        .unwrap();
    let refused = devices
        .iter()
        .find(|d| &*d.facts.operating_system == "macOS")
        .unwrap();

    let (status, headers, body) = post(&sim, &reset_path(&supported.id.to_string()), &token).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(
        headers.get("client-request-id").unwrap(),
        "00000000-1111-2222-3333-444444444444"
    );

    let (status, _, body) = post(&sim, &reset_path(&refused.id.to_string()), &token).await;
    assert_eq!(status, 400);
    let nested = nested_message(&body);
    assert!(
        nested["Message"]
            .as_str()
            .unwrap()
            .contains("not supported"),
        "{nested}"
    );
    assert_eq!(nested["HttpHeaders"], "{}");

    let denied = super::token(&sim, "denied-app").await;
    let (status, _, body) = post(&sim, &reset_path(&supported.id.to_string()), &denied).await;
    assert_eq!(status, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DeviceManagementManagedDevices.PrivilegedOperations.All")
    );

    let results = format!(
        "/v1.0/deviceManagement/managedDevices/{}?$select=id,deviceActionResults",
        supported.id
    );
    let (_, body) = get(&sim, &results, &token).await;
    let entry = &body["deviceActionResults"][0];
    assert_eq!(
        entry["@odata.type"],
        "#microsoft.graph.resetPasscodeActionResult"
    );
    assert_eq!(entry["actionName"], "resetPasscode");
    assert_eq!(entry["actionState"], "pending");
    sim.config().clock.advance(Duration::from_secs(30));
    let (_, body) = get(&sim, &results, &token).await;
    let entry = &body["deviceActionResults"][0];
    let state = entry["actionState"].as_str().unwrap();
    assert!(state == "done" || state == "failed", "{entry}");
    if state == "done" {
        assert!(
            entry["passcode"].as_str().is_some_and(|p| !p.is_empty()),
            "Android generates a passcode"
        );
    } else {
        assert_ne!(entry["errorCode"], 0);
    }
    let stats = sim.shutdown().await;
    assert_eq!(stats.resets_per_device.len(), 1);
    assert_eq!(
        stats.resets_per_device.get(&supported.id.to_string()),
        Some(&1)
    );
}

#[tokio::test]
async fn a_batch_runs_up_to_twenty_requests_each_with_its_own_status() {
    let sim = start(SimConfig {
        limits: Some(intune_reset::sim::Limits {
            app_writes: 5,
            ..Default::default()
        }),
        ..config(100)
    })
    .await;
    let token = token(&sim, "app").await;
    let supported: Vec<String> = sim
        .config()
        .inventory
        .devices()
        .iter()
        .filter(|d| matches!(d.facts.support, Support::Supported { .. }))
        .take(20)
        .map(|d| d.id.to_string())
        .collect();
    let requests: Vec<Value> = supported
        .iter()
        .enumerate()
        .map(|(i, id)| json!({"id": i.to_string(), "method": "POST", "url": format!("/deviceManagement/managedDevices/{id}/resetPasscode")}))
        .collect();
    let url = format!("{}/v1.0/$batch", sim.base_url());
    let response = client()
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    let responses = body["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 20);
    let statuses: Vec<u64> = responses
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 5);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15);
    let throttled = responses.iter().find(|r| r["status"] == 429).unwrap();
    assert_eq!(throttled["headers"]["Retry-After"], "20");
    assert_eq!(throttled["body"]["error"]["code"], "TooManyRequests");
    let ids: HashSet<&str> = responses
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 20);

    let reads = json!({"requests": [
        {"id": "a", "method": "GET", "url": format!("/deviceManagement/managedDevices/{}?$select=id,serialNumber", supported[0]),
         "headers": {"client-request-id": "inner-1"}},
        {"id": "b", "method": "GET", "url": "/deviceManagement/managedDevices/0b9a6a2c-1d3e-4f50-8a6b-7c8d9e0f1a2b"},
    ]});
    let response = client()
        .post(&url)
        .bearer_auth(&token)
        .json(&reads)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let a = &body["responses"][0];
    assert_eq!(
        (a["id"].as_str(), a["status"].as_u64()),
        (Some("a"), Some(200))
    );
    assert_eq!(a["body"]["id"], supported[0].as_str());
    assert_eq!(a["headers"]["client-request-id"], "inner-1");
    let b = &body["responses"][1];
    assert_eq!(b["status"], 404);
    assert_eq!(b["body"]["error"]["code"], "ResourceNotFound");

    let too_many: Vec<Value> = (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/deviceManagement/managedDevices"})).collect();
    let response = client()
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({ "requests": too_many }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let stats = sim.shutdown().await;
    assert_eq!(stats.resets_per_device.len(), 5);
    assert_eq!(stats.requests_by_kind.get("resetPasscode"), Some(&20));
    assert_eq!(stats.requests_by_kind.get("get"), Some(&2));
    assert_eq!(stats.throttled, 15);
    assert_eq!(stats.max_writes_in_any_window.get("app"), Some(&20));
}

#[tokio::test]
async fn users_groups_and_entra_devices_are_served_for_targets() {
    let mut cfg = config(250);
    let devices = cfg.inventory.devices().to_vec();
    let upn = devices[0].user_principal_name.to_string();
    let entra = devices[1].azure_ad_device_id.to_string();
    cfg.groups = vec![intune_reset::sim::groups::SimGroup {
        name: "Sales".into(),
        users: vec![upn.clone()],
        devices: vec![entra.clone()],
    }];
    let sim = start(cfg).await;
    let token = token(&sim, "app").await;
    // A user's managed devices.
    let (status, mine) = get(
        &sim,
        &format!("/beta/users/{upn}/managedDevices?$select=id"),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert!(!mine["value"].as_array().unwrap().is_empty());
    let (status, _) = get(
        &sim,
        "/beta/users/nobody@nowhere.example/managedDevices",
        &token,
    )
    .await;
    assert_eq!(status, 404);
    // A group by name, then its transitive members.
    let (status, groups) = get(
        &sim,
        "/v1.0/groups?$filter=displayName%20eq%20'Sales'",
        &token,
    )
    .await;
    assert_eq!(status, 200);
    let id = groups["value"][0]["id"].as_str().unwrap().to_owned();
    let (_, members) = get(
        &sim,
        &format!("/v1.0/groups/{id}/transitiveMembers"),
        &token,
    )
    .await;
    let types: Vec<&str> = members["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["@odata.type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["#microsoft.graph.user", "#microsoft.graph.device"]);
    // Entra device objects: paged, and found by deviceId; the object id is not it.
    let (_, page) = get(&sim, "/v1.0/devices", &token).await;
    assert_eq!(page["value"].as_array().unwrap().len(), 100);
    assert!(page["@odata.nextLink"].as_str().is_some());
    let (_, one) = get(
        &sim,
        &format!("/v1.0/devices?$filter=deviceId%20eq%20'{entra}'"),
        &token,
    )
    .await;
    assert_eq!(one["value"][0]["deviceId"], entra.as_str());
    assert_ne!(one["value"][0]["id"], entra.as_str());
    sim.shutdown().await;
}
