//! The remote lock and the BitLocker key rotation as a client meets them: sent through
//! the Graph pipeline (token, throttle, faults) or straight to the handler, read back
//! in `deviceActionResults`, the counts and the audit lists. The clock is a manual one:
//! an action's state changes when the test advances it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::Method;
use serde_json::Value;
use uuid::Uuid;

use super::graph::{self, Caller, Target, dispatch};
use super::inventory::{Device, Inventory, PlatformFacts};
use super::render::ApiVersion;
use super::reply::Ctx;
use super::server::Shared;
use super::{FaultKind, Limits, SimClock, SimConfig};
use crate::rules::Family;

const IPHONE: usize = 0;
const WINDOWS_22H2: usize = 1;
const WINDOWS_1809: usize = 2;
const MAC: usize = 3;

/// An iPhone, a Windows 10 22H2 PC (build 19045), a Windows 10 1809 PC (build 17763)
/// and a Mac.
fn inventory() -> Inventory {
    let device = |n: u128, facts: [&str; 8]| Device {
        id: Uuid::from_u128(0x0b9a_6a2c_1d3e_4f50_8a6b_7c8d_9e0f_1a00 + n),
        azure_ad_device_id: Uuid::from_u128(0x5d1c_0000_0000_4000_8000_0000_0000_0000 + n),
        device_name: format!("device-{n}").into(),
        serial_number: format!("SERIAL{n}").into(),
        user_principal_name: "anna.smith@contoso.onmicrosoft.com".into(),
        imei: "".into(),
        enrolled_days_ago: 100,
        facts: Arc::new(PlatformFacts::new(facts)),
    };
    let pc = |version| {
        [
            "Windows",
            version,
            "windowsRT",
            "windowsAzureADJoin",
            "mdm",
            "company",
            "Dell Inc.",
            "Latitude 5440",
        ]
    };
    Inventory::from_devices(vec![
        device(
            0,
            [
                "iOS",
                "17.6.1",
                "iPhone",
                "appleBulkWithUser",
                "mdm",
                "company",
                "Apple",
                "iPhone 14",
            ],
        ),
        device(1, pc("10.0.19045.5011")),
        device(2, pc("10.0.17763.6414")),
        device(
            3,
            [
                "macOS",
                "15.1",
                "macMDM",
                "appleBulkWithoutUser",
                "mdm",
                "company",
                "Apple",
                "MacBookPro18,1",
            ],
        ),
    ])
}

const DELAY: Duration = Duration::from_secs(10);

fn config() -> SimConfig {
    SimConfig {
        inventory: inventory(),
        clock: SimClock::manual(),
        action_delay: DELAY,
        ..SimConfig::default()
    }
}

fn shared(config: SimConfig) -> Shared {
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    Shared::new(config, addr).unwrap_or_else(|e| panic!("{e}"))
}

fn ctx() -> Ctx {
    Ctx {
        request_id: "r-1".into(),
        client_request_id: Some("0f8fad5b-d9cb-469f-a165-70867728950e".into()),
        date: SystemTime::UNIX_EPOCH,
        base_url: "http://127.0.0.1:1".into(),
    }
}

/// App-only, in the simulator's first tenant.
fn caller(sim: &Shared) -> Caller<'_> {
    Caller {
        app: "app-1",
        tenant: sim.first(),
        user: None,
        client_request_id: Some("0f8fad5b-d9cb-469f-a165-70867728950e"),
    }
}

fn id(sim: &Shared, n: usize) -> String {
    sim.config.inventory.devices()[n].id.to_string()
}

/// A request handled as `dispatch` handles it once past the token, throttle and faults:
/// its status and JSON body (`Null` when it has none).
fn send(
    sim: &Shared,
    method: Method,
    version: ApiVersion,
    path: &str,
    query: &str,
) -> (u16, Value) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let target = Target::parse(&segments);
    let reply = dispatch(sim, &ctx(), &method, version, &target, query, &caller(sim));
    (reply.status, reply.body_value().unwrap_or(Value::Null))
}

fn post(sim: &Shared, version: ApiVersion, n: usize, action: &str) -> (u16, Value) {
    let path = format!("deviceManagement/managedDevices/{}/{action}", id(sim, n));
    send(sim, Method::POST, version, &path, "")
}

/// The device's `deviceActionResults`, read as the client reads them (beta, `$select`).
fn results(sim: &Shared, n: usize) -> Vec<Value> {
    let path = format!("deviceManagement/managedDevices/{}", id(sim, n));
    let (status, body) = send(
        sim,
        Method::GET,
        ApiVersion::Beta,
        &path,
        "$select=id,userPrincipalName,deviceActionResults",
    );
    assert_eq!(status, 200, "{body}");
    body["deviceActionResults"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The device's entry for `action`, if it has one.
fn entry(sim: &Shared, n: usize, action: &str) -> Option<Value> {
    results(sim, n)
        .into_iter()
        .find(|e| e["actionName"] == action)
}

/// Intune's nested message inside Graph's error envelope.
fn intune_message(body: &Value) -> String {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let nested: Value = serde_json::from_str(message).unwrap_or_default();
    nested["Message"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn a_lock_on_an_iphone_is_queued_pending_then_done() {
    let sim = shared(config());
    let (status, body) = post(&sim, ApiVersion::V1, IPHONE, "remoteLock");
    assert_eq!((status, &body), (204, &Value::Null));
    let pending = entry(&sim, IPHONE, "remoteLock").unwrap_or_default();
    assert_eq!(
        pending["@odata.type"],
        "#microsoft.graph.remoteLockActionResult"
    );
    assert_eq!(pending["actionState"], "pending");
    assert_eq!(pending["startDateTime"], pending["lastUpdatedDateTime"]);
    assert_eq!(pending["unlockPin"], Value::Null, "an iPhone gets no PIN");
    sim.config.clock.advance(DELAY - Duration::from_millis(1));
    assert_eq!(
        entry(&sim, IPHONE, "remoteLock").unwrap_or_default()["actionState"],
        "pending"
    );
    sim.config.clock.advance(Duration::from_millis(1));
    let done = entry(&sim, IPHONE, "remoteLock").unwrap_or_default();
    assert_eq!(done["actionState"], "done");
    assert_eq!(done["startDateTime"], pending["startDateTime"]);
    assert_ne!(done["lastUpdatedDateTime"], done["startDateTime"]);
    // The qualified name is the same action.
    let (status, _) = post(&sim, ApiVersion::Beta, IPHONE, "microsoft.graph.remoteLock");
    assert_eq!(status, 204);
    assert_eq!(
        sim.stats().locks_per_device.get(&id(&sim, IPHONE)),
        Some(&2)
    );
}

#[test]
fn a_lock_on_a_windows_pc_is_refused_as_unsupported_and_records_nothing() {
    let sim = shared(config());
    let (status, body) = post(&sim, ApiVersion::V1, WINDOWS_22H2, "remoteLock");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
    let message = intune_message(&body);
    assert!(
        message.starts_with(
            "Device is not supported for this action: Windows desktops do not support remote lock - "
        ),
        "{message}"
    );
    assert!(
        message.contains("microsoft.management.services.api.remoteLock"),
        "{message}"
    );
    assert!(results(&sim, WINDOWS_22H2).is_empty());
    let stats = sim.stats();
    assert!(stats.locks_per_device.is_empty(), "{stats:?}");
    assert!(sim.first().audit.saved(&sim.config.inventory).is_empty());
}

#[test]
fn a_lock_is_refused_exactly_as_a_reset_its_platform_does_not_support() {
    let sim = shared(config());
    // A Windows desktop supports no passcode reset either: the same 400, the same
    // Intune message, its own action named in the URL.
    let (reset_status, reset) = post(&sim, ApiVersion::V1, WINDOWS_22H2, "resetPasscode");
    let (lock_status, lock) = post(&sim, ApiVersion::V1, WINDOWS_22H2, "remoteLock");
    assert_eq!((reset_status, lock_status), (400, 400));
    assert_eq!(reset["error"]["code"], lock["error"]["code"]);
    let shape = |m: String, action: &str| m.replace(action, "ACTION");
    let reset = intune_message(&reset);
    let lock = intune_message(&lock);
    let (reset_words, lock_words) = (
        reset.split(": ").next().unwrap_or_default(),
        lock.split(": ").next().unwrap_or_default(),
    );
    assert_eq!(reset_words, lock_words);
    let tail = |m: &str| m.split(" - ").skip(1).collect::<Vec<_>>().join(" - ");
    assert_eq!(
        shape(tail(&reset), "resetPasscode"),
        shape(tail(&lock), "remoteLock")
    );
}

#[test]
fn a_rotation_on_windows_10_build_19045_is_queued_and_on_build_17763_refused() {
    let sim = shared(config());
    let (status, _) = post(&sim, ApiVersion::Beta, WINDOWS_22H2, "rotateBitLockerKeys");
    assert_eq!(status, 204);
    let pending = entry(&sim, WINDOWS_22H2, "rotateBitLockerKeys").unwrap_or_default();
    assert_eq!(
        pending["@odata.type"],
        "#microsoft.graph.rotateBitLockerKeysDeviceActionResult"
    );
    assert_eq!(pending["actionState"], "pending");
    assert_eq!(pending["errorCode"], 0);
    assert_eq!(sim.stats().rotations_per_device.len(), 1);

    let (status, body) = post(&sim, ApiVersion::Beta, WINDOWS_1809, "rotateBitLockerKeys");
    assert_eq!(status, 400, "{body}");
    let message = intune_message(&body);
    assert!(
        message.starts_with("Device is not supported for this action: BitLocker key rotation needs Windows 10 version 1909 (build 18363) or later - "),
        "{message}"
    );
    assert!(results(&sim, WINDOWS_1809).is_empty());
    assert_eq!(sim.stats().rotations_per_device.len(), 1);
    // A Mac has no BitLocker.
    assert_eq!(
        post(&sim, ApiVersion::Beta, MAC, "rotateBitLockerKeys").0,
        400
    );
}

#[test]
fn a_rotation_on_v1_is_a_segment_graph_does_not_know() {
    let sim = shared(config());
    let (status, body) = post(&sim, ApiVersion::V1, WINDOWS_22H2, "rotateBitLockerKeys");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
    assert_eq!(
        body["error"]["message"],
        "Resource not found for the segment 'rotateBitLockerKeys'."
    );
    // As v1.0's answer for remoteActionAudits, which it lacks too.
    let (_, audits) = send(
        &sim,
        Method::GET,
        ApiVersion::V1,
        "deviceManagement/remoteActionAudits",
        "",
    );
    assert_eq!(audits["error"]["code"], body["error"]["code"]);
    assert!(results(&sim, WINDOWS_22H2).is_empty());
    assert!(sim.stats().rotations_per_device.is_empty());
    // Nothing to hold for a late effect, and no role to check: it is no action there.
    let segments = [
        "deviceManagement",
        "managedDevices",
        "x",
        "rotateBitLockerKeys",
    ];
    let target = Target::parse(&segments);
    assert_eq!(
        graph::action_of(&target, &Method::POST, ApiVersion::V1),
        None
    );
    assert_eq!(
        graph::action_of(&target, &Method::POST, ApiVersion::Beta),
        Some((Family::BitLocker, "x"))
    );
}

#[test]
fn a_device_locked_twice_is_counted_twice_for_locks_and_not_for_resets() {
    let sim = shared(config());
    let iphone = id(&sim, IPHONE);
    assert_eq!(post(&sim, ApiVersion::V1, IPHONE, "resetPasscode").0, 204);
    assert_eq!(post(&sim, ApiVersion::V1, IPHONE, "remoteLock").0, 204);
    // A lock and a reset on one device: once each, nobody acted on twice.
    let stats = sim.stats();
    assert_eq!(stats.resets_per_device.get(&iphone), Some(&1));
    assert_eq!(stats.locks_per_device.get(&iphone), Some(&1));
    assert!(stats.devices_reset_more_than_once().is_empty());
    assert!(stats.devices_locked_more_than_once().is_empty());
    assert!(stats.locks_over_standing.is_empty());
    // A second lock while the first is pending: the device is locked twice.
    sim.config.clock.advance(Duration::from_secs(1));
    assert_eq!(post(&sim, ApiVersion::V1, IPHONE, "remoteLock").0, 204);
    let stats = sim.stats();
    assert_eq!(stats.locks_per_device.get(&iphone), Some(&2));
    assert_eq!(stats.devices_locked_more_than_once(), vec![iphone.as_str()]);
    assert_eq!(stats.locks_over_standing.get(&iphone), Some(&1));
    assert_eq!(stats.resets_per_device.get(&iphone), Some(&1));
    assert!(stats.devices_reset_more_than_once().is_empty());
    assert!(stats.resets_over_standing.is_empty());
    assert!(stats.rotations_per_device.is_empty());
    let text = stats.render();
    assert!(text.contains("resets:           1 on 1 devices"), "{text}");
    assert!(text.contains("remote locks:     2 on 1 devices"), "{text}");
    assert!(
        text.contains(&format!(
            "locked again while the last lock was pending or done (a Mac gets a second unlock PIN): 1: {iphone} (2)\n"
        )),
        "{text}"
    );
    assert!(!text.contains("key rotations"), "{text}");
    // One entry per action: the second lock replaced the lock's, not the reset's.
    let entries = results(&sim, IPHONE);
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["actionName"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["resetPasscode", "remoteLock"]);
    assert_ne!(entries[0]["startDateTime"], entries[1]["startDateTime"]);
}

#[test]
fn a_macs_lock_carries_its_seeded_unlock_pin_and_a_saved_tenant_shows_it_again() {
    let sim = shared(config());
    assert_eq!(post(&sim, ApiVersion::V1, MAC, "remoteLock").0, 204);
    let lock = entry(&sim, MAC, "remoteLock").unwrap_or_default();
    let pin = lock["unlockPin"].as_str().unwrap_or_default().to_owned();
    assert!(
        pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{lock}"
    );
    sim.config.clock.advance(DELAY);
    let later = entry(&sim, MAC, "remoteLock").unwrap_or_default();
    assert_eq!(later["unlockPin"], lock["unlockPin"]);
    // The same seed draws the same PIN; another seed, another.
    let again = shared(config());
    assert_eq!(post(&again, ApiVersion::V1, MAC, "remoteLock").0, 204);
    assert_eq!(entry(&again, MAC, "remoteLock"), Some(lock.clone()));
    let other = shared(SimConfig {
        seed: 2,
        ..config()
    });
    assert_eq!(post(&other, ApiVersion::V1, MAC, "remoteLock").0, 204);
    assert_ne!(
        entry(&other, MAC, "remoteLock").unwrap_or_default()["unlockPin"],
        lock["unlockPin"]
    );
    // A saved tenant keeps the lock, never the PIN, and shows the PIN again reloaded.
    let saved = sim.first().actions.saved(Family::Lock);
    assert_eq!(saved.len(), 1);
    let reloaded = shared(SimConfig {
        restored_locks: vec![(id(&sim, MAC), saved[0].1)],
        clock: sim.config.clock.clone(),
        ..config()
    });
    assert_eq!(entry(&reloaded, MAC, "remoteLock"), Some(later));
    assert!(entry(&reloaded, MAC, "resetPasscode").is_none());
    assert_eq!(reloaded.stats().locks_per_device.len(), 1);
    assert!(reloaded.stats().resets_per_device.is_empty());
}

#[test]
fn the_audit_lists_each_action_under_its_own_name_and_filters_by_it() {
    let sim = shared(config());
    assert_eq!(post(&sim, ApiVersion::V1, IPHONE, "resetPasscode").0, 204);
    assert_eq!(post(&sim, ApiVersion::V1, IPHONE, "remoteLock").0, 204);
    assert_eq!(post(&sim, ApiVersion::V1, MAC, "remoteLock").0, 204);
    assert_eq!(
        post(&sim, ApiVersion::Beta, WINDOWS_22H2, "rotateBitLockerKeys").0,
        204
    );
    let list = |version, path: &str, filter: &str| -> Vec<Value> {
        let query = format!(
            "$filter={}",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let (status, body) = send(&sim, Method::GET, version, path, &query);
        assert_eq!(status, 200, "{body}");
        body["value"].as_array().cloned().unwrap_or_default()
    };
    let audits = "deviceManagement/remoteActionAudits";
    let locks = list(ApiVersion::Beta, audits, "action eq 'remoteLock'");
    let devices: Vec<&str> = locks
        .iter()
        .map(|r| r["managedDeviceId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(devices, [id(&sim, IPHONE), id(&sim, MAC)]);
    assert!(locks.iter().all(|r| r["action"] == "remoteLock"));
    assert!(locks.iter().all(|r| r["actionState"] == "pending"));
    let rotations = list(ApiVersion::Beta, audits, "action eq 'rotateBitLockerKeys'");
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0]["managedDeviceId"], id(&sim, WINDOWS_22H2));
    let resets = list(ApiVersion::Beta, audits, "action eq 'resetPasscode'");
    assert_eq!(resets.len(), 1);
    // auditEvents names each action as it names a reset, from the Graph name.
    let events = "deviceManagement/auditEvents";
    let locked = list(
        ApiVersion::V1,
        events,
        "activityType eq 'RemoteLock ManagedDevice'",
    );
    assert_eq!(locked.len(), 2);
    assert!(locked.iter().all(|e| e["activity"] == "Remote lock"));
    let rotated = list(
        ApiVersion::V1,
        events,
        "activityType eq 'RotateBitLockerKeys ManagedDevice'",
    );
    assert_eq!(rotated.len(), 1);
    assert_eq!(
        rotated[0]["resources"][0]["resourceId"],
        id(&sim, WINDOWS_22H2)
    );
    // A saved audit record keeps its action.
    let saved = sim.first().audit.saved(&sim.config.inventory);
    let actions: Vec<&str> = saved.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "resetPasscode",
            "remoteLock",
            "remoteLock",
            "rotateBitLockerKeys"
        ]
    );
}

/// A token for app `app`, valid for an hour of the simulator's clock.
fn bearer(sim: &Shared, app: &str) -> String {
    let token = sim.tokens.issue_for(
        app,
        sim.config.clock.now() + Duration::from_secs(3600),
        None,
        &sim.config.tenant_id,
    );
    format!("Bearer {token}")
}

/// What a client and the log see of a request.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    dropped: bool,
    effect: bool,
    kind: &'static str,
}

/// A POST through the whole Graph pipeline: token, fault roll, throttle, handler.
async fn serve(sim: &Shared, version: ApiVersion, path: &str, auth: &str) -> Seen {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let outcome = graph::serve(
        sim,
        &ctx(),
        &Method::POST,
        version,
        &segments,
        "",
        Some(auth),
        b"",
    )
    .await;
    Seen {
        status: outcome.reply.status,
        dropped: outcome.dropped,
        effect: outcome.reply.effect,
        kind: outcome.reply.kind.as_str(),
    }
}

#[tokio::test]
async fn locks_and_rotations_are_intune_writes_under_the_same_budget_as_resets() {
    let sim = shared(SimConfig {
        limits: Some(Limits {
            app_writes: 3,
            ..Limits::default()
        }),
        ..config()
    });
    let auth = bearer(&sim, "app-1");
    let path = |n: usize, action: &str| {
        format!("deviceManagement/managedDevices/{}/{action}", id(&sim, n))
    };
    let reset = serve(&sim, ApiVersion::V1, &path(IPHONE, "resetPasscode"), &auth).await;
    let lock = serve(&sim, ApiVersion::V1, &path(IPHONE, "remoteLock"), &auth).await;
    let rotation = serve(
        &sim,
        ApiVersion::Beta,
        &path(WINDOWS_22H2, "rotateBitLockerKeys"),
        &auth,
    )
    .await;
    assert_eq!(
        [reset.status, lock.status, rotation.status],
        [204, 204, 204]
    );
    assert_eq!(
        [reset.kind, lock.kind, rotation.kind],
        ["resetPasscode", "remoteLock", "rotateBitLockerKeys"]
    );
    assert!(lock.effect && rotation.effect);
    // The budget of 3 writes is spent: the next lock is throttled and takes no effect.
    let fourth = serve(&sim, ApiVersion::V1, &path(MAC, "remoteLock"), &auth).await;
    assert_eq!((fourth.status, fourth.effect), (429, false));
    assert!(entry(&sim, MAC, "remoteLock").is_none());
    assert_eq!(
        sim.first().throttle.max_writes_in_any_window().get("app-1"),
        Some(&4)
    );
}

#[tokio::test]
async fn a_lock_meets_the_faults_a_reset_meets() {
    let faulted = |kind| {
        shared(SimConfig {
            faults: vec![(kind, 1.0)],
            ..config()
        })
    };
    let path = |sim: &Shared, action: &str| {
        format!(
            "deviceManagement/managedDevices/{}/{action}",
            id(sim, IPHONE)
        )
    };
    // The answer lost after the lock took effect: the lock is there.
    let sim = faulted(FaultKind::DropAfterEffect);
    let auth = bearer(&sim, "app-1");
    let seen = serve(&sim, ApiVersion::V1, &path(&sim, "remoteLock"), &auth).await;
    assert_eq!((seen.dropped, seen.effect), (true, true));
    assert_eq!(
        entry(&sim, IPHONE, "remoteLock").unwrap_or_default()["actionState"],
        "pending"
    );
    // Lost before it took effect: nothing happened.
    let sim = faulted(FaultKind::DropBeforeEffect);
    let auth = bearer(&sim, "app-1");
    let seen = serve(&sim, ApiVersion::V1, &path(&sim, "remoteLock"), &auth).await;
    assert_eq!((seen.dropped, seen.effect), (true, false));
    assert!(results(&sim, IPHONE).is_empty());
    // A 503 before it reached Intune: nothing happened either.
    let sim = faulted(FaultKind::ServiceUnavailable);
    let auth = bearer(&sim, "app-1");
    let seen = serve(
        &sim,
        ApiVersion::Beta,
        &path(&sim, "rotateBitLockerKeys"),
        &auth,
    )
    .await;
    assert_eq!((seen.status, seen.effect), (503, false));
    assert!(sim.stats().rotations_per_device.is_empty());
}

#[test]
fn an_app_without_the_permission_is_refused_every_action_naming_it() {
    let sim = shared(SimConfig {
        deny_apps: vec!["app-1".into()],
        ..config()
    });
    for (version, n, action) in [
        (ApiVersion::V1, IPHONE, "remoteLock"),
        (ApiVersion::Beta, WINDOWS_22H2, "rotateBitLockerKeys"),
    ] {
        let (status, body) = post(&sim, version, n, action);
        assert_eq!(status, 403, "{body}");
        assert!(
            intune_message(&body).contains(super::devices::PRIVILEGED_OPERATIONS),
            "{body}"
        );
    }
    assert!(sim.stats().locks_per_device.is_empty());
}
