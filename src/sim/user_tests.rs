//! Entra's directory users as a client meets them: read by UPN or by object id, their
//! sign-in sessions revoked through the Graph pipeline (token, directory budget, faults,
//! late effect) or straight through the handler, counted, and kept by a saved tenant.
//! The clock is a manual one: time moves when the test advances it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::Method;
use serde_json::Value;
use uuid::Uuid;

use super::clock::rfc3339;
use super::graph::{self, Caller, Target, dispatch};
use super::groups::SimGroup;
use super::inventory::{Device, Inventory, PlatformFacts};
use super::render::ApiVersion;
use super::reply::Ctx;
use super::server::{Outcome, Shared};
use super::{DirectoryLimits, FaultKind, Limits, SimClock, SimConfig};

const ANNA: &str = "anna.smith@contoso.onmicrosoft.com";
/// Spelled with capitals on its device.
const BO: &str = "Bo.Jansen@contoso.onmicrosoft.com";
/// A member of a group only: no device names them.
const CARL: &str = "carl.berg@contoso.onmicrosoft.com";

/// Anna's iPhone and Bo's iPhone.
fn inventory() -> Inventory {
    let device = |n: u128, upn: &str| Device {
        id: Uuid::from_u128(0x0b9a_6a2c_1d3e_4f50_8a6b_7c8d_9e0f_1a00 + n),
        azure_ad_device_id: Uuid::from_u128(0x5d1c_0000_0000_4000_8000_0000_0000_0000 + n),
        device_name: format!("device-{n}").into(),
        serial_number: format!("SERIAL{n}").into(),
        user_principal_name: upn.into(),
        imei: "".into(),
        enrolled_days_ago: 100,
        facts: Arc::new(PlatformFacts::new([
            "iOS",
            "17.6.1",
            "iPhone",
            "appleBulkWithUser",
            "mdm",
            "company",
            "Apple",
            "iPhone 14",
        ])),
    };
    Inventory::from_devices(vec![device(0, ANNA), device(1, BO)])
}

fn config() -> SimConfig {
    SimConfig {
        inventory: inventory(),
        groups: vec![SimGroup {
            name: "Responders".into(),
            // Anna again in capitals: one user, whatever the case.
            users: vec![ANNA.to_uppercase(), CARL.into()],
            devices: vec![],
        }],
        clock: SimClock::manual(),
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

/// A request as `dispatch` handles it once past the token, throttle and faults.
fn send(sim: &Shared, method: Method, path: &str, query: &str) -> (u16, Value) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let target = Target::parse(&segments);
    let reply = dispatch(
        sim,
        &ctx(),
        &method,
        ApiVersion::V1,
        &target,
        query,
        &caller(sim),
    );
    (reply.status, reply.body_value().unwrap_or(Value::Null))
}

/// What the client reads: `GET /users/{user}?$select=...` as `get_user` sends it.
fn read(sim: &Shared, user: &str) -> (u16, Value) {
    send(
        sim,
        Method::GET,
        &format!("users/{user}"),
        "$select=id,userPrincipalName,signInSessionsValidFromDateTime",
    )
}

fn revoke(sim: &Shared, user: &str) -> (u16, Value) {
    send(
        sim,
        Method::POST,
        &format!("users/{user}/revokeSignInSessions"),
        "",
    )
}

fn valid_from(sim: &Shared, user: &str) -> String {
    let (status, body) = read(sim, user);
    assert_eq!(status, 200, "{body}");
    body["signInSessionsValidFromDateTime"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn id_of(sim: &Shared, user: &str) -> String {
    read(sim, user).1["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The simulator's "now" as Graph writes it.
fn now(sim: &Shared) -> String {
    rfc3339(sim.config.clock.wall())
}

#[test]
fn a_user_read_by_upn_or_by_id_is_one_user_with_one_id() {
    let sim = shared(config());
    let (status, anna) = read(&sim, "Anna.Smith@CONTOSO.onmicrosoft.com");
    assert_eq!(status, 200, "{anna}");
    let id = anna["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        Uuid::parse_str(&id).is_ok_and(|u| u.get_version_num() == 4),
        "{id}"
    );
    assert_eq!(anna["userPrincipalName"], ANNA);
    assert_eq!(
        anna["@odata.context"],
        "http://127.0.0.1:1/v1.0/$metadata#users(id,userPrincipalName,signInSessionsValidFromDateTime)/$entity"
    );
    // By id, with or without braces, any case: the same user.
    assert_eq!(read(&sim, &id).1, anna);
    assert_eq!(read(&sim, &format!("{{{}}}", id.to_uppercase())).1, anna);
    // The same id in another simulator (a restart), and on Anna's device.
    assert_eq!(id_of(&shared(config()), ANNA), id);
    let (_, device) = send(
        &sim,
        Method::GET,
        &format!(
            "deviceManagement/managedDevices/{}",
            sim.config.inventory.devices()[0].id
        ),
        "$select=id,userId",
    );
    assert_eq!(device["userId"], id.as_str());
    // Bo's device spells him with capitals; he is read in any case and keeps that
    // spelling. Carl is a group's member only, and a user all the same.
    assert_eq!(read(&sim, &BO.to_lowercase()).1["userPrincipalName"], BO);
    assert_eq!(read(&sim, CARL).0, 200);
    assert_ne!(id_of(&sim, CARL), id);
    // Sessions valid from a moment days before the simulator started, whole seconds.
    let first = humantime::parse_rfc3339(&valid_from(&sim, ANNA)).unwrap_or(SystemTime::now());
    let start = sim.config.clock.wall();
    assert!(first + Duration::from_secs(86_400) <= start, "{first:?}");
    assert!(
        first + Duration::from_secs(61 * 86_400) > start,
        "{first:?}"
    );
    assert_eq!(valid_from(&shared(config()), ANNA), valid_from(&sim, ANNA));
}

#[test]
fn a_user_read_without_select_has_graphs_default_properties_and_no_sessions_time() {
    let sim = shared(config());
    let (status, body) = send(&sim, Method::GET, &format!("users/{ANNA}"), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["displayName"], "Anna Smith");
    assert_eq!(body["id"], id_of(&sim, ANNA).as_str());
    assert!(
        body.get("signInSessionsValidFromDateTime").is_none(),
        "{body}"
    );
    assert_eq!(
        body["@odata.context"],
        "http://127.0.0.1:1/v1.0/$metadata#users/$entity"
    );
    // $select in any case, each name once.
    let (_, picked) = send(
        &sim,
        Method::GET,
        &format!("users/{ANNA}"),
        "$select=SIGNINSESSIONSVALIDFROMDATETIME,id,id",
    );
    let mut keys: Vec<&String> = picked
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    keys.sort();
    assert_eq!(
        keys,
        ["@odata.context", "id", "signInSessionsValidFromDateTime"]
    );
    let (status, bad) = send(&sim, Method::GET, &format!("users/{ANNA}"), "$select=pin");
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["code"], "Request_BadRequest");
}

#[test]
fn an_unknown_user_is_entras_404_for_a_read_and_a_revocation() {
    let sim = shared(config());
    let nobody = "nobody@contoso.onmicrosoft.com";
    for (status, body) in [
        read(&sim, nobody),
        revoke(&sim, nobody),
        read(&sim, "0b9a6a2c-1d3e-4f50-8a6b-7c8d9e0f1a00"),
    ] {
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
        assert_eq!(body["error"]["innerError"]["request-id"], "r-1");
    }
    assert_eq!(
        revoke(&sim, nobody).1["error"]["message"],
        format!(
            "Resource '{nobody}' does not exist or one of its queried reference-property objects are not present."
        )
    );
    assert!(sim.stats().revocations_per_user.is_empty());
}

#[test]
fn a_revocation_moves_the_users_sessions_time_to_now() {
    let sim = shared(config());
    let before = valid_from(&sim, ANNA);
    sim.config.clock.advance(Duration::from_secs(90));
    let (status, body) = revoke(&sim, ANNA);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({
            "@odata.context": "http://127.0.0.1:1/v1.0/$metadata#Edm.Boolean",
            "value": true,
        })
    );
    let after = valid_from(&sim, ANNA);
    assert_ne!(after, before);
    assert_eq!(after, now(&sim));
    // Others are untouched; a later revocation by id (the qualified name, beta) moves
    // it again.
    assert_eq!(valid_from(&sim, BO), valid_from(&shared(config()), BO));
    sim.config.clock.advance(Duration::from_secs(60));
    let id = id_of(&sim, ANNA);
    let path = format!("users/{id}/microsoft.graph.revokeSignInSessions");
    let target = Target::parse(&path.split('/').collect::<Vec<_>>());
    let reply = dispatch(
        &sim,
        &ctx(),
        &Method::POST,
        ApiVersion::Beta,
        &target,
        "",
        &caller(&sim),
    );
    assert_eq!(reply.status, 200);
    assert!(reply.effect);
    assert_eq!(valid_from(&sim, ANNA), now(&sim));
}

#[test]
fn a_denied_revocation_is_entras_403_and_reads_still_work() {
    let sim = shared(SimConfig {
        deny_revoke_sessions: true,
        ..config()
    });
    let before = valid_from(&sim, ANNA);
    sim.config.clock.advance(Duration::from_secs(5));
    let (status, body) = revoke(&sim, ANNA);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    assert_eq!(valid_from(&sim, ANNA), before);
    assert!(sim.stats().revocations_per_user.is_empty());
}

#[test]
fn a_user_revoked_twice_is_counted_by_upn_and_named_in_the_summary() {
    let sim = shared(config());
    assert_eq!(revoke(&sim, ANNA).0, 200);
    assert_eq!(revoke(&sim, BO).0, 200);
    let stats = sim.stats();
    assert!(stats.users_revoked_more_than_once().is_empty());
    // The second by id: the same user.
    let id = id_of(&sim, ANNA);
    assert_eq!(revoke(&sim, &id).0, 200);
    let stats = sim.stats();
    assert_eq!(stats.revocations_per_user.get(ANNA), Some(&2));
    assert_eq!(stats.revocations_per_user.get(BO), Some(&1));
    assert_eq!(stats.users_revoked_more_than_once(), vec![ANNA]);
    assert!(stats.resets_per_device.is_empty() && stats.locks_per_device.is_empty());
    let text = stats.render();
    assert!(
        text.contains("revocations:      3 on 2 users (sign-in sessions)"),
        "{text}"
    );
    assert!(text.contains(&format!(": 1: {ANNA} (2)\n")), "{text}");
}

#[test]
fn transitive_members_give_users_the_ids_a_user_read_gives() {
    let sim = shared(config());
    let group = sim.config.groups[0].id();
    let members = || {
        let (status, body) = send(
            &sim,
            Method::GET,
            &format!("groups/{group}/transitiveMembers"),
            "",
        );
        assert_eq!(status, 200, "{body}");
        body["value"].as_array().cloned().unwrap_or_default()
    };
    let first = members();
    assert_eq!(first, members(), "the same ids on every call");
    let ids: Vec<&str> = first
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, [id_of(&sim, ANNA), id_of(&sim, CARL)]);
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

/// A request through the whole Graph pipeline: token, fault roll, throttle, handler.
async fn through(sim: &Shared, method: Method, path: &str, query: &str, auth: &str) -> Outcome {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    graph::serve(
        sim,
        &ctx(),
        &method,
        ApiVersion::V1,
        &segments,
        query,
        Some(auth),
        b"",
    )
    .await
}

#[tokio::test]
async fn the_directory_budget_throttles_users_while_intune_requests_still_pass() {
    let sim = shared(SimConfig {
        limits: Some(Limits {
            app_writes: 1,
            app_any: 3,
            ..Limits::default()
        }),
        directory_limits: Some(DirectoryLimits {
            writes: 2,
            units: 4,
            ..DirectoryLimits::default()
        }),
        ..config()
    });
    let auth = bearer(&sim, "app-1");
    let revocation = format!("users/{ANNA}/revokeSignInSessions");
    let user = format!("users/{ANNA}");
    let status = |o: &Outcome| o.reply.status;
    for _ in 0..2 {
        let o = through(&sim, Method::POST, &revocation, "", &auth).await;
        assert_eq!(status(&o), 200);
        assert_eq!(o.reply.kind.as_str(), "revokeSignInSessions");
    }
    // Two writes in 150 s: the third waits for the first to leave the window.
    let o = through(&sim, Method::POST, &revocation, "", &auth).await;
    assert_eq!(status(&o), 429);
    assert_eq!(o.reply.retry_after(), Some("150"));
    assert_eq!(o.reply.throttled, Some("directory_writes"));
    assert!(!o.reply.effect);
    let header = |o: &Outcome, name: &str| {
        o.reply
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header(&o, "x-ms-throttle-scope"),
        Some(format!(
            "Tenant_Application/Write/app-1/{}",
            sim.config.tenant_id
        ))
    );
    // Three units spent in 10 s (the throttled write too): one read fits, the next not.
    assert_eq!(
        status(&through(&sim, Method::GET, &user, "", &auth).await),
        200
    );
    let o = through(&sim, Method::GET, &user, "", &auth).await;
    assert_eq!(status(&o), 429);
    assert_eq!(o.reply.throttled, Some("directory_units"));
    assert_eq!(o.reply.retry_after(), Some("10"));
    // Intune's budget was not charged: its one write and three requests are all there.
    let device = sim.config.inventory.devices()[0].id.to_string();
    let reset = format!("deviceManagement/managedDevices/{device}/resetPasscode");
    let get = format!("deviceManagement/managedDevices/{device}");
    assert_eq!(
        status(&through(&sim, Method::POST, &reset, "", &auth).await),
        204
    );
    assert_eq!(
        status(&through(&sim, Method::GET, &get, "", &auth).await),
        200
    );
    assert_eq!(
        status(&through(&sim, Method::GET, &get, "", &auth).await),
        200
    );
    let o = through(&sim, Method::GET, &get, "", &auth).await;
    assert_eq!((status(&o), o.reply.throttled), (429, Some("app_any")));
    // And Intune's requests are not charged to the directory: ten seconds on, its
    // units are free again though Intune's window is full.
    sim.config.clock.advance(Duration::from_secs(10));
    assert_eq!(
        status(&through(&sim, Method::GET, &user, "", &auth).await),
        200
    );
    assert_eq!(sim.stats().revocations_per_user.get(ANNA), Some(&2));
}

#[tokio::test]
async fn without_limits_users_are_not_throttled_either() {
    let sim = shared(SimConfig {
        limits: None,
        directory_limits: Some(DirectoryLimits {
            writes: 1,
            units: 1,
            ..DirectoryLimits::default()
        }),
        ..config()
    });
    let auth = bearer(&sim, "app-1");
    let revocation = format!("users/{ANNA}/revokeSignInSessions");
    for _ in 0..5 {
        let o = through(&sim, Method::POST, &revocation, "", &auth).await;
        assert_eq!(o.reply.status, 200);
    }
    assert_eq!(sim.stats().revocations_per_user.get(ANNA), Some(&5));
}

#[tokio::test]
async fn a_revocation_meets_the_faults_a_device_action_meets() {
    let faulted = |kind| {
        shared(SimConfig {
            faults: vec![(kind, 1.0)],
            ..config()
        })
    };
    let revocation = format!("users/{ANNA}/revokeSignInSessions");
    // The answer lost after the revocation took effect: the sessions time moved.
    let sim = faulted(FaultKind::DropAfterEffect);
    let before = valid_from(&sim, ANNA);
    sim.config.clock.advance(Duration::from_secs(30));
    let auth = bearer(&sim, "app-1");
    let o = through(&sim, Method::POST, &revocation, "", &auth).await;
    assert_eq!((o.dropped, o.reply.effect), (true, true));
    assert_eq!(o.reply.fault, Some(FaultKind::DropAfterEffect));
    assert_ne!(valid_from(&sim, ANNA), before);
    assert_eq!(valid_from(&sim, ANNA), now(&sim));
    assert_eq!(sim.stats().revocations_per_user.get(ANNA), Some(&1));
    // Lost before it took effect, or a 503 or 504 on the way: nothing happened.
    for kind in [
        FaultKind::DropBeforeEffect,
        FaultKind::ServiceUnavailable,
        FaultKind::GatewayTimeout,
    ] {
        let sim = faulted(kind);
        let before = valid_from(&sim, ANNA);
        sim.config.clock.advance(Duration::from_secs(30));
        let auth = bearer(&sim, "app-1");
        let o = through(&sim, Method::POST, &revocation, "", &auth).await;
        assert!(!o.reply.effect, "{kind}");
        assert_eq!(o.reply.fault, Some(kind));
        assert_eq!(valid_from(&sim, ANNA), before, "{kind}");
        assert!(sim.stats().revocations_per_user.is_empty(), "{kind}");
    }
}

#[tokio::test]
async fn a_late_revocation_takes_effect_when_its_delay_has_passed() {
    let sim = Arc::new(shared(SimConfig {
        effect_delay: Duration::from_secs(5),
        ..config()
    }));
    let auth = bearer(&sim, "app-1");
    let before = valid_from(&sim, ANNA);
    let sent = tokio::spawn({
        let sim = sim.clone();
        async move {
            let path = format!("users/{ANNA}/revokeSignInSessions");
            through(&sim, Method::POST, &path, "", &auth)
                .await
                .reply
                .status
        }
    });
    // The request is held on the simulator's clock: nothing has happened yet.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!sent.is_finished());
    assert_eq!(valid_from(&sim, ANNA), before);
    sim.config.clock.advance(Duration::from_secs(5));
    assert_eq!(sent.await.ok(), Some(200));
    assert_eq!(valid_from(&sim, ANNA), now(&sim));
}

#[tokio::test]
async fn the_log_names_the_revocation_and_its_user() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("log.jsonl");
    let sim = shared(SimConfig {
        log_path: Some(path.clone()),
        ..config()
    });
    let auth = bearer(&sim, "app-1");
    let revocation = format!("users/{}/revokeSignInSessions", ANNA.to_uppercase());
    let o = through(&sim, Method::POST, &revocation, "", &auth).await;
    sim.observe(&ctx(), "POST", &revocation, &o, None);
    if let Some(log) = &sim.log {
        log.close().await;
    }
    let text = std::fs::read_to_string(&path).expect("the log");
    let line: Value = serde_json::from_str(text.trim()).expect("one JSON line");
    assert_eq!(line["kind"], "revokeSignInSessions");
    assert_eq!(line["user"], ANNA);
    assert_eq!(line["effect"], true);
    assert_eq!(line["device"], Value::Null);
    assert_eq!(
        sim.stats().requests_by_kind.get("revokeSignInSessions"),
        Some(&1)
    );
}

#[test]
fn a_reloaded_tenant_keeps_the_users_sessions_times_and_revocation_counts() {
    let sim = shared(config());
    sim.config.clock.advance(Duration::from_secs(42));
    assert_eq!(revoke(&sim, ANNA).0, 200);
    assert_eq!(revoke(&sim, ANNA).0, 200);
    let revoked = valid_from(&sim, ANNA);
    let untouched = valid_from(&sim, CARL);
    // Reloaded an hour later by a simulator whose clock started then.
    let later = SimClock::manual();
    later.advance(Duration::from_secs(3600));
    let reloaded = shared(SimConfig {
        restored_users: sim.first().directory.saved(),
        directory_epoch: Some(sim.first().directory.epoch()),
        clock: later,
        ..config()
    });
    assert_eq!(valid_from(&reloaded, ANNA), revoked);
    assert_eq!(valid_from(&reloaded, CARL), untouched);
    assert_eq!(reloaded.stats().revocations_per_user.get(ANNA), Some(&2));
    assert_eq!(reloaded.stats().users_revoked_more_than_once(), vec![ANNA]);
    // One more revocation goes on counting from the saved ones.
    assert_eq!(revoke(&reloaded, ANNA).0, 200);
    assert_eq!(reloaded.stats().revocations_per_user.get(ANNA), Some(&3));
    assert_eq!(valid_from(&reloaded, ANNA), now(&reloaded));
}
