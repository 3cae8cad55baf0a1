//! Several tenants in one simulator, as a managed service provider's client meets
//! them: a token from each tenant's own authority, every Graph request served from the
//! tenant its token names, each tenant with its own devices, state, throttling windows,
//! faults and counts. The clock is a manual one: time moves when the test advances it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hyper::Method;
use serde_json::Value;
use uuid::Uuid;

use super::auth;
use super::graph;
use super::inventory::{Device, Inventory, PlatformFacts};
use super::render::ApiVersion;
use super::reply::Ctx;
use super::server::{Outcome, Shared};
use super::tenants::{
    TenantConfig, TenantInventory, add_tenants, default_domain, parse_tenant_fault,
    parse_tenant_group, parse_tenant_inventory,
};
use super::{FaultKind, Limits, SimClock, SimConfig, Simulator};

/// The second tenant, Fabrikam (the first is the default, Contoso).
const FABRIKAM: &str = "2b7e0c1d-4f3a-4e6b-9c8d-7a6b5c4d3e2f";
const FABRIKAM_DOMAIN: &str = "fabrikam.onmicrosoft.com";
/// In both tenants.
const SHARED_DEVICE: u128 = 0;
/// In Contoso only.
const CONTOSO_ONLY: u128 = 1;
/// In Fabrikam only.
const FABRIKAM_ONLY: u128 = 2;
const DELAY: Duration = Duration::from_secs(10);
const FORM: &str = "grant_type=client_credentials&client_id=app-1&client_secret=s&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";

fn device_id(n: u128) -> Uuid {
    Uuid::from_u128(0x0b9a_6a2c_1d3e_4f50_8a6b_7c8d_9e0f_1a00 + n)
}

/// iPhones numbered `ns`, each with its user in `domain`.
fn iphones(ns: &[u128], domain: &str) -> Inventory {
    let device = |n: u128| Device {
        id: device_id(n),
        azure_ad_device_id: Uuid::from_u128(0x5d1c_0000_0000_4000_8000_0000_0000_0000 + n),
        device_name: format!("device-{n}").into(),
        serial_number: format!("SERIAL{n}").into(),
        user_principal_name: format!("user{n}@{domain}").into(),
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
    Inventory::from_devices(ns.iter().map(|n| device(*n)).collect())
}

fn fabrikam(faults: Vec<(FaultKind, f64)>) -> TenantConfig {
    TenantConfig {
        id: FABRIKAM.into(),
        domain: FABRIKAM_DOMAIN.into(),
        inventory: iphones(&[SHARED_DEVICE, FABRIKAM_ONLY], FABRIKAM_DOMAIN),
        groups: Vec::new(),
        faults,
        restored: Default::default(),
    }
}

/// Contoso (the first tenant) and Fabrikam.
fn config() -> SimConfig {
    let first = SimConfig::default();
    SimConfig {
        inventory: iphones(&[SHARED_DEVICE, CONTOSO_ONLY], &first.tenant_domain),
        more_tenants: vec![fabrikam(Vec::new())],
        clock: SimClock::manual(),
        action_delay: DELAY,
        ..first
    }
}

fn shared(config: SimConfig) -> Shared {
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    Shared::new(config, addr).unwrap_or_else(|e| panic!("{e}"))
}

fn ctx() -> Ctx {
    Ctx {
        request_id: "r-1".into(),
        client_request_id: None,
        date: SystemTime::UNIX_EPOCH,
        base_url: "http://127.0.0.1:1".into(),
    }
}

/// What the token endpoint answers a client-credentials request at `/{tenant}/...`.
fn token_reply(sim: &Shared, tenant: &str) -> (u16, Value) {
    let now = sim.config.clock.now();
    let reply = auth::token(
        &sim.config,
        &sim.tokens,
        &sim.sign_ins,
        &ctx(),
        tenant,
        FORM.as_bytes(),
        now,
    );
    (reply.status, reply.body.unwrap_or_default())
}

/// `Bearer <token>` from the authority of `tenant` (an id or a domain).
fn bearer(sim: &Shared, tenant: &str) -> String {
    let (status, body) = token_reply(sim, tenant);
    assert_eq!(status, 200, "{body}");
    format!(
        "Bearer {}",
        body["access_token"].as_str().unwrap_or_default()
    )
}

/// A token's `tid` claim.
fn tid(bearer: &str) -> String {
    let payload = bearer
        .trim_start_matches("Bearer ")
        .split('.')
        .nth(1)
        .unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    let claims: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    claims["tid"].as_str().unwrap_or_default().to_owned()
}

/// A request through the whole Graph pipeline: token, tenant, fault roll, throttle,
/// handler.
async fn through(
    sim: &Shared,
    method: Method,
    version: ApiVersion,
    path: &str,
    auth: &str,
    body: &[u8],
) -> Outcome {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    graph::serve(
        sim,
        &ctx(),
        &method,
        version,
        &segments,
        "",
        Some(auth),
        body,
    )
    .await
}

fn device_path(n: u128) -> String {
    format!("deviceManagement/managedDevices/{}", device_id(n))
}

async fn reset(sim: &Shared, n: u128, auth: &str) -> Outcome {
    let path = format!("{}/resetPasscode", device_path(n));
    through(sim, Method::POST, ApiVersion::V1, &path, auth, b"").await
}

/// The device's `deviceActionResults` as `auth`'s tenant gives them.
async fn results(sim: &Shared, n: u128, auth: &str) -> Vec<Value> {
    let o = through(
        sim,
        Method::GET,
        ApiVersion::Beta,
        &device_path(n),
        auth,
        b"",
    )
    .await;
    assert_eq!(o.reply.status, 200);
    o.reply.body_value().unwrap_or_default()["deviceActionResults"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_token_endpoint_issues_a_token_for_each_tenant_by_id_or_domain() {
    let sim = shared(config());
    let first = sim.config.tenant_id.clone();
    for (authority, expected) in [
        (FABRIKAM, FABRIKAM),
        (FABRIKAM_DOMAIN, FABRIKAM),
        ("FABRIKAM.onmicrosoft.com", FABRIKAM),
        (first.as_str(), first.as_str()),
        (sim.config.tenant_domain.as_str(), first.as_str()),
        ("organizations", first.as_str()),
    ] {
        assert_eq!(tid(&bearer(&sim, authority)), expected, "{authority}");
    }
}

#[test]
fn an_unknown_tenants_token_request_is_refused_as_with_one_tenant() {
    let sim = shared(config());
    let (status, body) = token_reply(&sim, "northwind.onmicrosoft.com");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_codes"][0], 90002);
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("AADSTS90002: Tenant 'northwind.onmicrosoft.com' not found."),
        "{description}"
    );
    // The client-credential checks are the same in every tenant.
    let form = "grant_type=client_credentials&client_id=app-1&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";
    let reply = auth::token(
        &sim.config,
        &sim.tokens,
        &sim.sign_ins,
        &ctx(),
        FABRIKAM,
        form.as_bytes(),
        Duration::ZERO,
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body.unwrap_or_default()["error_codes"][0], 7000218);
}

#[tokio::test]
async fn a_token_for_one_tenant_cannot_read_another_tenants_device() {
    let sim = shared(config());
    let contoso = bearer(&sim, &sim.config.tenant_id.clone());
    let fabrikam = bearer(&sim, FABRIKAM_DOMAIN);
    let get = |n, auth: &str| {
        let path = device_path(n);
        let auth = auth.to_owned();
        let sim = &sim;
        async move { through(sim, Method::GET, ApiVersion::V1, &path, &auth, b"").await }
    };
    assert_eq!(get(CONTOSO_ONLY, &contoso).await.reply.status, 200);
    let o = get(CONTOSO_ONLY, &fabrikam).await;
    assert_eq!(o.reply.status, 404);
    assert_eq!(o.tenant, Some(1));
    assert_eq!(get(FABRIKAM_ONLY, &fabrikam).await.reply.status, 200);
    assert_eq!(get(FABRIKAM_ONLY, &contoso).await.reply.status, 404);
    // Nor act on it: Fabrikam's token resets nothing in Contoso.
    assert_eq!(reset(&sim, CONTOSO_ONLY, &fabrikam).await.reply.status, 404);
    // The list is the token's tenant's: its devices, its users.
    let o = through(
        &sim,
        Method::GET,
        ApiVersion::V1,
        "deviceManagement/managedDevices",
        &fabrikam,
        b"",
    )
    .await;
    let body = o.reply.body_value().unwrap_or_default();
    let ids: Vec<&str> = body["value"]
        .as_array()
        .map(|v| v.iter().filter_map(|d| d["id"].as_str()).collect())
        .unwrap_or_default();
    let expected = [device_id(SHARED_DEVICE), device_id(FABRIKAM_ONLY)].map(|u| u.to_string());
    assert_eq!(ids, expected);
    let user = format!("users/user{FABRIKAM_ONLY}@{FABRIKAM_DOMAIN}");
    let o = through(&sim, Method::GET, ApiVersion::V1, &user, &fabrikam, b"").await;
    assert_eq!(o.reply.status, 200);
    let o = through(&sim, Method::GET, ApiVersion::V1, &user, &contoso, b"").await;
    assert_eq!(o.reply.status, 404);
}

#[tokio::test]
async fn the_same_device_id_in_two_tenants_has_its_own_device_action_results() {
    let sim = shared(config());
    let contoso = bearer(&sim, &sim.config.tenant_id.clone());
    let fabrikam = bearer(&sim, FABRIKAM);
    assert!(results(&sim, SHARED_DEVICE, &contoso).await.is_empty());
    assert_eq!(
        reset(&sim, SHARED_DEVICE, &fabrikam).await.reply.status,
        204
    );
    let theirs = results(&sim, SHARED_DEVICE, &fabrikam).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["actionName"], "resetPasscode");
    assert_eq!(theirs[0]["actionState"], "pending");
    // Contoso's device of the same id was never reset.
    assert!(results(&sim, SHARED_DEVICE, &contoso).await.is_empty());
    sim.config.clock.advance(DELAY);
    assert_eq!(reset(&sim, SHARED_DEVICE, &contoso).await.reply.status, 204);
    let ours = results(&sim, SHARED_DEVICE, &contoso).await;
    assert_eq!(ours[0]["actionState"], "pending");
    assert_ne!(
        results(&sim, SHARED_DEVICE, &fabrikam).await[0]["actionState"],
        "pending"
    );
    // Counted apart: one reset each, neither device reset twice.
    let stats = sim.stats();
    let id = device_id(SHARED_DEVICE).to_string();
    assert_eq!(stats.resets_per_device.get(&id), Some(&1));
    assert_eq!(stats.other_tenants.len(), 1);
    assert_eq!(stats.other_tenants[0].tenant, FABRIKAM);
    assert_eq!(stats.other_tenants[0].resets_per_device.get(&id), Some(&1));
    assert!(stats.devices_reset_more_than_once().is_empty());
}

#[tokio::test]
async fn one_tenants_429s_do_not_throttle_another_tenant() {
    let sim = shared(SimConfig {
        limits: Some(Limits {
            app_writes: 2,
            tenant_writes: 3,
            ..Limits::default()
        }),
        ..config()
    });
    let contoso = bearer(&sim, &sim.config.tenant_id.clone());
    let fabrikam = bearer(&sim, FABRIKAM);
    for _ in 0..2 {
        assert_eq!(
            reset(&sim, FABRIKAM_ONLY, &fabrikam).await.reply.status,
            204
        );
    }
    let o = reset(&sim, FABRIKAM_ONLY, &fabrikam).await;
    assert_eq!(
        (o.reply.status, o.reply.throttled),
        (429, Some("app_writes"))
    );
    // Fabrikam's tenant budget is spent too (its throttled write counts).
    let o = reset(&sim, FABRIKAM_ONLY, &fabrikam).await;
    assert_eq!(o.reply.status, 429);
    // The same app in Contoso, at the same moment: its own windows, all free.
    for _ in 0..2 {
        assert_eq!(reset(&sim, CONTOSO_ONLY, &contoso).await.reply.status, 204);
    }
    assert_eq!(
        reset(&sim, CONTOSO_ONLY, &contoso).await.reply.throttled,
        Some("app_writes")
    );
    // Each tenant's most writes in one window, and Graph's count across them.
    let stats = sim.stats();
    assert_eq!(stats.max_writes_in_any_window.get("app-1"), Some(&3));
    let theirs = &stats.other_tenants[0];
    assert_eq!(theirs.max_writes_in_any_window.get("app-1"), Some(&4));
    assert_eq!(
        stats.max_graph_requests_in_any_window.get("app-1"),
        Some(&7)
    );
}

#[tokio::test]
async fn a_tenants_fault_hits_only_that_tenant() {
    let sim = shared(SimConfig {
        more_tenants: vec![fabrikam(vec![(
            FaultKind::TooManyRequestsWithoutRetryAfter,
            1.0,
        )])],
        ..config()
    });
    let contoso = bearer(&sim, &sim.config.tenant_id.clone());
    let fabrikam = bearer(&sim, FABRIKAM);
    for _ in 0..5 {
        let o = reset(&sim, SHARED_DEVICE, &fabrikam).await;
        assert_eq!(o.reply.status, 429);
        assert_eq!(o.reply.retry_after(), None);
        assert_eq!(
            o.reply.fault,
            Some(FaultKind::TooManyRequestsWithoutRetryAfter)
        );
        sim.observe(&ctx(), "POST", "x", &o, None);
        let o = reset(&sim, SHARED_DEVICE, &contoso).await;
        assert_eq!((o.reply.status, o.reply.fault), (204, None));
        sim.observe(&ctx(), "POST", "x", &o, None);
    }
    // Inside a $batch too: the inner requests roll their tenant's faults.
    let batch = serde_json::json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/{}", device_path(SHARED_DEVICE))},
    ]})
    .to_string();
    for (auth, expected) in [(&fabrikam, 429), (&contoso, 200)] {
        let o = through(
            &sim,
            Method::POST,
            ApiVersion::V1,
            "$batch",
            auth,
            batch.as_bytes(),
        )
        .await;
        let body = o.reply.body_value().unwrap_or_default();
        assert_eq!(body["responses"][0]["status"], expected, "{body}");
    }
    let stats = sim.stats();
    assert!(stats.faults.is_empty(), "{:?}", stats.faults);
    assert_eq!(stats.too_many_requests, 0);
    let theirs = &stats.other_tenants[0];
    // Five resets and the batch's inner read.
    assert_eq!(theirs.faults.get("429-no-retry-after"), Some(&6));
    assert_eq!((theirs.too_many_requests, theirs.throttled), (6, 0));
    assert!(theirs.resets_per_device.is_empty());
    assert_eq!(stats.resets_per_device.len(), 1);
}

#[tokio::test]
async fn each_log_line_names_its_tenant_and_the_summary_heads_each_tenants_lines() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("log.jsonl");
    let config = SimConfig {
        log_path: Some(path.clone()),
        clock: SimClock::new(),
        ..config()
    };
    let first = config.tenant_id.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let sim = Simulator::start(config, listener).unwrap_or_else(|e| panic!("{e}"));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let token = |authority: &str| {
        let request = client
            .post(sim.token_url_for(authority))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(FORM);
        async move {
            let response = request.send().await.expect("an answer");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            (
                status,
                body["access_token"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    let (status, fabrikam) = token(FABRIKAM_DOMAIN).await;
    assert_eq!(status, 200);
    let (status, contoso) = token(&first).await;
    assert_eq!(status, 200);
    assert_eq!(token("northwind.onmicrosoft.com").await.0, 400);
    let reset = |n: u128, token: &str| {
        client
            .post(format!(
                "{}/v1.0/{}/resetPasscode",
                sim.base_url(),
                device_path(n)
            ))
            .bearer_auth(token)
            .send()
    };
    let status = |r: reqwest::Result<reqwest::Response>| r.map(|r| r.status().as_u16()).ok();
    assert_eq!(status(reset(FABRIKAM_ONLY, &fabrikam).await), Some(204));
    assert_eq!(status(reset(SHARED_DEVICE, &contoso).await), Some(204));
    assert_eq!(status(reset(SHARED_DEVICE, "nobody's").await), Some(401));
    let stats = sim.shutdown().await;
    let text = std::fs::read_to_string(&path).expect("the log");
    let tenants: Vec<(String, Value)> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .map(|l| {
            (
                l["kind"].as_str().unwrap_or_default().to_owned(),
                l["tenant"].clone(),
            )
        })
        .collect();
    assert_eq!(
        tenants,
        [
            ("token".into(), FABRIKAM.into()),
            ("token".into(), first.clone().into()),
            ("token".into(), Value::Null),
            ("resetPasscode".into(), FABRIKAM.into()),
            ("resetPasscode".into(), first.clone().into()),
            ("resetPasscode".into(), Value::Null),
        ]
    );
    // The first tenant's counts are the snapshot's own (requests no tenant served
    // among them, as with one tenant); Fabrikam's are apart.
    assert_eq!(stats.tenant, first);
    assert_eq!(stats.requests_by_kind.get("token"), Some(&2));
    assert_eq!(stats.requests_by_kind.get("resetPasscode"), Some(&2));
    let theirs = &stats.other_tenants[0];
    assert_eq!(theirs.requests_by_kind.get("token"), Some(&1));
    assert_eq!(theirs.requests_by_kind.get("resetPasscode"), Some(&1));
    let summary = stats.render();
    let contoso_at = summary.find(&format!("\ntenant {first}\n  requests:         4 "));
    let fabrikam_at = summary.find(&format!("\ntenant {FABRIKAM}\n  requests:         2 "));
    assert!(
        contoso_at.is_some() && fabrikam_at.is_some() && contoso_at < fabrikam_at,
        "{summary}"
    );
    assert!(
        summary.contains("across tenants\n  most Graph requests in one 10 s window by app-1, all tenants: 2 (Graph allows 130000)\n"),
        "{summary}"
    );
    // With one tenant the summary has no heading.
    let mut alone = stats.clone();
    alone.other_tenants.clear();
    assert!(alone.render().starts_with("simulator summary\n  requests:"));
}

#[test]
fn tenant_inventory_takes_an_id_or_an_id_and_domain_then_a_file() {
    assert_eq!(
        parse_tenant_inventory(&format!("{}=fabrikam.csv", FABRIKAM.to_uppercase())),
        Ok(TenantInventory {
            id: FABRIKAM.into(),
            domain: None,
            file: "fabrikam.csv".into(),
        })
    );
    assert_eq!(
        parse_tenant_inventory(&format!("{FABRIKAM},Fabrikam.onmicrosoft.com=jobs/a=b.csv")),
        Ok(TenantInventory {
            id: FABRIKAM.into(),
            domain: Some(FABRIKAM_DOMAIN.into()),
            file: "jobs/a=b.csv".into(),
        })
    );
    assert_eq!(
        parse_tenant_inventory("T2=t2.json").map(|t| t.id),
        Ok("T2".into())
    );
    assert_eq!(default_domain(FABRIKAM), "tenant-2b7e0c1d.onmicrosoft.com");
    assert_eq!(default_domain("T2"), "tenant-t2.onmicrosoft.com");
    for bad in [
        "fabrikam.csv",
        "=fabrikam.csv",
        "T2=",
        "T2,=a.csv",
        "T2,fabrikam=a.csv",
        "a tenant=a.csv",
    ] {
        assert!(parse_tenant_inventory(bad).is_err(), "{bad}");
    }
}

#[test]
fn tenant_groups_and_faults_name_their_tenant_before_a_colon() {
    let (tenant, group) =
        parse_tenant_group(&format!("{FABRIKAM_DOMAIN}:Sales=ada@{FABRIKAM_DOMAIN}"))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tenant, FABRIKAM_DOMAIN);
    assert_eq!(group.name, "Sales");
    assert_eq!(group.users, [format!("ada@{FABRIKAM_DOMAIN}")]);
    assert_eq!(
        parse_tenant_fault("T2:429-no-retry-after=0.2"),
        Ok((
            "T2".into(),
            (FaultKind::TooManyRequestsWithoutRetryAfter, 0.2)
        ))
    );
    assert!(parse_tenant_fault("429-no-retry-after=0.2").is_err());
    assert!(parse_tenant_fault("T2:flood=0.2").is_err());
    assert!(parse_tenant_group("Sales=ada@x.com").is_err());
}

#[test]
fn further_tenants_read_their_files_and_take_the_groups_and_faults_named_for_them() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = |name: &str, serials: &[&str]| {
        let path = dir.path().join(name);
        let rows: Vec<String> = serials.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(&path, format!("serialNumber\n{}", rows.concat())).expect("a job file");
        path
    };
    let a = file("a.csv", &["C02XK1AAJG5H", "C02XK1BBJG5H"]);
    let b = file("b.csv", &["C02XK1CCJG5H"]);
    let inventory = |id: &str, domain: Option<&str>, file: &std::path::Path| TenantInventory {
        id: id.into(),
        domain: domain.map(str::to_owned),
        file: file.to_owned(),
    };
    let mut config = SimConfig::default();
    let first = config.tenant_domain.clone();
    let group = |text: &str| parse_tenant_group(text).unwrap_or_else(|e| panic!("{e}"));
    let fault = |text: &str| parse_tenant_fault(text).unwrap_or_else(|e| panic!("{e}"));
    add_tenants(
        &mut config,
        &[
            inventory("T2", None, &a),
            inventory(FABRIKAM, Some(FABRIKAM_DOMAIN), &b),
            // A tenant named again reads that file too (its devices once each).
            inventory("t2", None, &b),
        ],
        vec![
            group(&format!("{FABRIKAM_DOMAIN}:Sales=ada@{FABRIKAM_DOMAIN}")),
            group(&format!("{first}:Responders=bo@{first}")),
        ],
        vec![fault("tenant-t2.onmicrosoft.com:504=0.5")],
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let more = &config.more_tenants;
    assert_eq!(more.len(), 2);
    assert_eq!(
        (
            more[0].id.as_str(),
            more[0].domain.as_str(),
            more[0].inventory.len()
        ),
        ("T2", "tenant-t2.onmicrosoft.com", 3)
    );
    assert_eq!(more[0].faults, [(FaultKind::GatewayTimeout, 0.5)]);
    assert_eq!(
        (more[1].domain.as_str(), more[1].inventory.len()),
        (FABRIKAM_DOMAIN, 1)
    );
    assert_eq!(more[1].groups.len(), 1);
    // The first tenant's own group went to it.
    assert_eq!(config.groups.len(), 1);
    assert!(config.faults.is_empty());
    // A tenant the flags do not hold, or one named twice, is refused in a sentence.
    let refused = |inventories: &[TenantInventory], groups| {
        add_tenants(
            &mut SimConfig::default(),
            inventories,
            groups,
            Vec::new(),
            &Default::default(),
        )
        .err()
        .unwrap_or_default()
    };
    let err = refused(
        &[inventory("T2", None, &a)],
        vec![group("T3:Sales=a@b.com")],
    );
    assert!(
        err.contains("--tenant-group T3:...: no such tenant"),
        "{err}"
    );
    let err = refused(&[inventory("T2", Some(&first), &a)], Vec::new());
    assert!(err.contains("names two tenants"), "{err}");
    let err = refused(
        &[
            inventory("T2", Some("a.onmicrosoft.com"), &a),
            inventory("T2", Some("b.onmicrosoft.com"), &b),
        ],
        Vec::new(),
    );
    assert!(err.contains("two domains"), "{err}");
}
