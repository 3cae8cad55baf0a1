//! The client against a loopback Graph stand-in that also serves the token endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::graph::cloud::Cloud;
use crate::graph::credentials::AppCredential;
use crate::graph::errors::CallErrorKind as K;
use crate::graph::secret::Secret;
use crate::graph::test_server::{Answer, Seen, TestServer, refused_addr, serve};

const CLIENT_SECRET: &str = "client-secret-value-42";
const TOKEN_PREFIX: &str = "SECRET-TOKEN-";
const ID: &str = "5b1c3d6e-0000-0000-0000-000000000001";

/// Serves tokens (`SECRET-TOKEN-1`, `-2`, ...) on `/t/oauth2/v2.0/token` and hands
/// every other request to `graph`.
async fn graph_server(
    graph: impl Fn(&Seen) -> Answer + Send + Sync + 'static,
) -> (TestServer, Arc<AtomicUsize>) {
    let tokens = Arc::new(AtomicUsize::new(0));
    let t = tokens.clone();
    let server = serve(move |seen| {
        if seen.target == "/t/oauth2/v2.0/token" {
            let n = t.fetch_add(1, Ordering::SeqCst) + 1;
            return Answer::json(
                200,
                serde_json::json!({"access_token": format!("{TOKEN_PREFIX}{n}"), "expires_in": 3600}),
            );
        }
        graph(seen)
    })
    .await;
    (server, tokens)
}

fn client_for(url: &str, timeout: Duration) -> GraphClient {
    let endpoints = Endpoints::new(Cloud::Global, Some(url), Some(url)).unwrap();
    let identity = Identity::App {
        tenant: "t".into(),
        client_id: "app".into(),
        credential: AppCredential::Secret(Secret::new(CLIENT_SECRET)),
    };
    GraphClient::sign_in(endpoints, identity, timeout).unwrap()
}

fn client(server: &TestServer) -> GraphClient {
    client_for(&server.url(), Duration::from_secs(5))
}

fn graph_requests(server: &TestServer) -> Vec<Seen> {
    server
        .requests()
        .into_iter()
        .filter(|s| !s.target.contains("/oauth2/"))
        .collect()
}

/// No error may show a token or the client secret, in Display or Debug.
fn assert_no_secrets(e: &CallError) {
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(TOKEN_PREFIX), "{text}");
        assert!(!text.contains(CLIENT_SECRET), "{text}");
    }
}

#[tokio::test]
async fn get_device_reads_beta_with_the_right_headers() {
    let (server, _) = graph_server(|_| {
        Answer::Status(
            200,
            vec![("request-id", "rid-9".into())],
            serde_json::json!({"id": ID, "deviceType": "iPad", "operatingSystem": "iPadOS"})
                .to_string(),
        )
    })
    .await;
    let reply = client(&server)
        .get_device(ID, &["id", "deviceType"], Connection::Pooled)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.value.device_type.as_deref(), Some("iPad"));
    assert_eq!(reply.request_id.as_deref(), Some("rid-9"));

    let seen = &graph_requests(&server)[0];
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.target,
        format!("/beta/deviceManagement/managedDevices/{ID}?$select=id,deviceType")
    );
    assert_eq!(
        seen.header("authorization"),
        Some(&*format!("Bearer {TOKEN_PREFIX}1"))
    );
    assert_eq!(
        seen.header("client-request-id"),
        Some(reply.client_request_id.as_str())
    );
    assert!(uuid::Uuid::parse_str(&reply.client_request_id).is_ok());
    assert_eq!(seen.header("return-client-request-id"), Some("true"));
    assert!(
        seen.header("user-agent")
            .unwrap()
            .starts_with("intune-reset/")
    );
}

#[tokio::test]
async fn every_request_gets_its_own_client_request_id_and_ids_stay_one_segment() {
    let (server, _) = graph_server(|_| Answer::json(200, serde_json::json!({"id": "x"}))).await;
    let c = client(&server);
    let a = c
        .get_device("a/../b?c", &["id"], Connection::Pooled)
        .await
        .unwrap();
    let b = c.get_device(ID, &[], Connection::Pooled).await.unwrap();
    assert_ne!(a.client_request_id, b.client_request_id);
    assert_eq!(
        graph_requests(&server)[0].target,
        "/beta/deviceManagement/managedDevices/a%2F..%2Fb%3Fc?$select=id"
    );
    assert_eq!(
        graph_requests(&server)[1].target,
        format!("/beta/deviceManagement/managedDevices/{ID}"),
        "no empty $select"
    );
}

#[tokio::test]
async fn filtered_list_and_next_link() {
    let (server, _) = graph_server(|seen| {
        let next = format!("http://{}/beta/deviceManagement/managedDevices?$skiptoken=X%3D", seen.header("host").unwrap_or(""));
        if seen.target.contains("skiptoken") {
            Answer::json(200, serde_json::json!({"value": [{"id": "2"}]}))
        } else {
            Answer::json(200, serde_json::json!({"value": [{"id": "1", "serialNumber": "O'B 1"}], "@odata.nextLink": next}))
        }
    })
    .await;
    let c = client(&server);
    let page = c
        .list_devices_page(
            PageRequest::Filter {
                property: FilterProperty::SerialNumber,
                value: "O'B 1".into(),
                select: vec!["id".into(), "serialNumber".into()],
            },
            Connection::Pooled,
        )
        .await
        .unwrap()
        .value;
    assert_eq!(
        graph_requests(&server)[0].target,
        "/beta/deviceManagement/managedDevices?$filter=serialNumber%20eq%20%27O%27%27B%201%27&$select=id,serialNumber"
    );
    assert_eq!(page.devices[0].serial_number.as_deref(), Some("O'B 1"));
    let next = page.next_link.unwrap();
    let page = c
        .list_devices_page(PageRequest::Next(next), Connection::Pooled)
        .await
        .unwrap()
        .value;
    assert_eq!(page.devices[0].id, "2");
    assert_eq!(page.next_link, None);
    assert_eq!(
        graph_requests(&server)[1].target,
        "/beta/deviceManagement/managedDevices?$skiptoken=X%3D"
    );
}

#[tokio::test]
async fn next_link_to_another_origin_is_not_followed() {
    let (server, _) = graph_server(|_| Answer::json(200, serde_json::json!({"value": []}))).await;
    let c = client(&server);
    let other_port = format!("http://127.0.0.1:{}/beta/x", server.addr.port() ^ 1);
    for link in [
        "https://evil.example/beta/deviceManagement/managedDevices?$skiptoken=1".to_owned(),
        other_port,
        format!("https://{}/beta/x", server.addr),
        "not a url".to_owned(),
    ] {
        let err = c
            .list_devices_page(PageRequest::Next(link.clone()), Connection::Pooled)
            .await
            .unwrap_err();
        assert_eq!(err.kind, K::UnsafeLink, "{link}");
        assert!(!err.outcome_unknown());
        assert_no_secrets(&err);
    }
    assert!(
        server.requests().is_empty(),
        "nothing may be sent, not even a token request"
    );
}

#[tokio::test]
async fn reset_passcode_posts_an_empty_body_and_takes_204() {
    let (server, _) = graph_server(|_| Answer::Status(204, vec![], String::new())).await;
    let reply = client(&server)
        .device_action(ID, crate::rules::Family::Passcode, Connection::Pooled)
        .await
        .unwrap();
    assert_eq!(reply.status, 204);
    let seen = &graph_requests(&server)[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.target,
        format!("/v1.0/deviceManagement/managedDevices/{ID}/resetPasscode")
    );
    assert_eq!(seen.header("content-length"), Some("0"));
    assert_eq!(seen.body, "");
}

#[tokio::test]
async fn action_results_are_read() {
    let (server, _) = graph_server(|_| {
        Answer::json(200, serde_json::json!({"id": ID, "userPrincipalName": "ada@contoso.com", "deviceActionResults": [
            {"@odata.type": "#microsoft.graph.resetPasscodeActionResult", "actionName": "resetPasscode",
             "actionState": "pending", "startDateTime": "2026-11-22T01:00:00Z"}
        ]}))
    })
    .await;
    let reply = client(&server)
        .action_results(ID, Connection::Pooled)
        .await
        .unwrap();
    assert_eq!(reply.value.results.len(), 1);
    assert_eq!(
        reply.value.results[0].action_state.as_deref(),
        Some("pending")
    );
    // The user comes in the same request: whose device a generated passcode is for.
    assert_eq!(
        reply.value.user_principal_name.as_deref(),
        Some("ada@contoso.com")
    );
    assert_eq!(
        graph_requests(&server)[0].target,
        format!(
            "/beta/deviceManagement/managedDevices/{ID}?$select=id,userPrincipalName,deviceActionResults"
        )
    );
}

#[tokio::test]
async fn throttling_carries_the_wait() {
    let (server, _) = graph_server(|seen| {
        if seen.method == "POST" {
            Answer::Status(429, vec![("retry-after", "2.5".into())], "{}".into())
        } else {
            // No header, Intune's nested RetryAfter only.
            let inner = serde_json::json!({"_version": 3, "Message": "Too many", "RetryAfter": 4});
            Answer::json(429, serde_json::json!({"error": {"code": "TooManyRequests", "message": inner.to_string()}}))
        }
    })
    .await;
    let c = client(&server);
    let err = c
        .device_action(ID, crate::rules::Family::Passcode, Connection::Pooled)
        .await
        .unwrap_err();
    assert_eq!(err.kind, K::Throttled);
    assert_eq!(err.status, Some(429));
    assert_eq!(err.retry_after, Some(Duration::from_millis(2500)));
    assert!(!err.outcome_unknown());
    assert_no_secrets(&err);
    let err = c
        .get_device(ID, &["id"], Connection::Pooled)
        .await
        .unwrap_err();
    assert_eq!(err.retry_after, Some(Duration::from_secs(4)));
    assert_eq!(err.message, "Too many");
}

#[tokio::test]
async fn status_codes_map_to_kinds() {
    let (server, _) = graph_server(|seen| {
        let status: u16 = seen.target.rsplit('/').next().and_then(|s| s.split('?').next()).and_then(|s| s.parse().ok()).unwrap_or(500);
        match status {
            403 => Answer::json(403, serde_json::json!({"error": {"code": "Forbidden",
                "message": "Application is not authorized to perform this operation. Application must have one of the following scopes: DeviceManagementManagedDevices.PrivilegedOperations.All",
                "innerError": {"request-id": "env-rid"}}})),
            400 => Answer::json(400, serde_json::json!({"error": {"code": "BadRequest",
                "message": serde_json::json!({"_version": 3, "Message": "Not supported on this platform.", "RetryAfter": null}).to_string()}})),
            599 => Answer::Status(200, vec![], "<html>not json</html>".into()),
            s => Answer::Status(s, vec![], "<html>gateway</html>".into()),
        }
    })
    .await;
    let c = client(&server);
    let cases = [
        ("503", K::Unavailable, true),
        ("502", K::Unavailable, true),
        ("504", K::Unavailable, true),
        ("500", K::ServerError, true),
        ("404", K::NotFound, false),
        ("409", K::Rejected, false),
        ("400", K::Rejected, false),
        ("599", K::InvalidResponse, true),
        ("302", K::InvalidResponse, true),
        (
            "403",
            K::Forbidden {
                permission: Some("DeviceManagementManagedDevices.PrivilegedOperations.All".into()),
            },
            false,
        ),
    ];
    for (id, kind, unknown) in cases {
        let err = c
            .get_device(id, &["id"], Connection::Pooled)
            .await
            .unwrap_err();
        assert_eq!(err.kind, kind, "{id}");
        assert_eq!(err.outcome_unknown(), unknown, "{id}");
        assert_no_secrets(&err);
        match id {
            "400" => {
                assert_eq!(err.message, "Not supported on this platform.");
                assert_eq!(err.code.as_deref(), Some("BadRequest"));
            }
            "403" => assert_eq!(err.request_id.as_deref(), Some("env-rid")),
            "503" => assert!(err.message.contains("gateway"), "{}", err.message),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_401_drops_the_token_so_the_next_call_signs_in_again() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let (server, tokens) = graph_server(move |_| {
        if c2.fetch_add(1, Ordering::SeqCst) == 0 {
            Answer::json(401, serde_json::json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired."}}))
        } else {
            Answer::json(200, serde_json::json!({"id": ID}))
        }
    })
    .await;
    let c = client(&server);
    let err = c
        .get_device(ID, &["id"], Connection::Pooled)
        .await
        .unwrap_err();
    assert_eq!(err.kind, K::Unauthorized);
    assert!(!err.outcome_unknown());
    assert_no_secrets(&err);
    c.get_device(ID, &["id"], Connection::Pooled).await.unwrap();
    assert_eq!(tokens.load(Ordering::SeqCst), 2);
    let auth: Vec<_> = graph_requests(&server)
        .iter()
        .map(|s| s.header("authorization").unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        auth,
        [
            format!("Bearer {TOKEN_PREFIX}1"),
            format!("Bearer {TOKEN_PREFIX}2")
        ]
    );
}

#[tokio::test]
async fn a_dropped_connection_after_a_post_is_an_unknown_outcome() {
    let (server, _) = graph_server(|_| Answer::Drop).await;
    let err = client(&server)
        .device_action(ID, crate::rules::Family::Passcode, Connection::Fresh)
        .await
        .unwrap_err();
    assert_eq!(err.kind, K::ConnectionLost, "{err:?}");
    assert!(err.outcome_unknown());
    assert_eq!(err.status, None);
    assert_no_secrets(&err);
    assert_eq!(graph_requests(&server).len(), 1, "exactly one attempt");
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let (server, _) = graph_server(|_| {
        Answer::Late(
            Duration::from_secs(3),
            Box::new(Answer::Status(204, vec![], String::new())),
        )
    })
    .await;
    let c = client_for(&server.url(), Duration::from_millis(300));
    let err = c
        .device_action(ID, crate::rules::Family::Passcode, Connection::Pooled)
        .await
        .unwrap_err();
    assert_eq!(err.kind, K::Timeout, "{err:?}");
    assert!(err.outcome_unknown());
    assert_no_secrets(&err);
}

#[tokio::test]
async fn a_refused_connection_certainly_sent_nothing() {
    let addr = refused_addr().await;
    let url = format!("http://{addr}");
    let endpoints = Endpoints::new(Cloud::Global, Some(&url), Some(&url)).unwrap();
    let c = GraphClient::sign_in(
        endpoints,
        Identity::AccessToken(Secret::new(format!("{TOKEN_PREFIX}ready"))),
        Duration::from_secs(5),
    )
    .unwrap();
    for connection in [Connection::Pooled, Connection::Fresh] {
        let err = c
            .device_action(ID, crate::rules::Family::Passcode, connection)
            .await
            .unwrap_err();
        assert_eq!(err.kind, K::ConnectFailed, "{err:?}");
        assert!(!err.outcome_unknown());
        assert_no_secrets(&err);
    }
}

#[tokio::test]
async fn a_failed_sign_in_sends_nothing_to_graph() {
    let server = serve(|seen| {
        if seen.target.contains("/oauth2/") {
            Answer::json(401, serde_json::json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]}))
        } else {
            Answer::Status(204, vec![], String::new())
        }
    })
    .await;
    let err = client(&server)
        .device_action(ID, crate::rules::Family::Passcode, Connection::Pooled)
        .await
        .unwrap_err();
    assert!(matches!(err.kind, K::SignIn(_)), "{err:?}");
    assert!(!err.outcome_unknown());
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
    assert_no_secrets(&err);
    assert!(graph_requests(&server).is_empty());
}

#[tokio::test]
async fn fresh_connections_are_not_reused_and_pooled_ones_are() {
    let (server, _) = graph_server(|_| Answer::json(200, serde_json::json!({"id": ID}))).await;
    let c = client(&server);
    let peers = || -> Vec<_> { graph_requests(&server).iter().map(|s| s.peer).collect() };
    // Pooled: a later request reuses an earlier connection once hyper has put it back
    // in the pool, which it does on its own time after the answer: asked again until
    // it happens, with no deadline a loaded machine could miss.
    let mut reused = false;
    for _ in 0..1000 {
        c.get_device(ID, &["id"], Connection::Pooled).await.unwrap();
        let seen = peers();
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        if distinct.len() < seen.len() {
            reused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(reused, "pooled requests share a connection");
    // Fresh: each opens its own, never one an earlier request used.
    let before: std::collections::HashSet<_> = peers().into_iter().collect();
    for _ in 0..2 {
        c.get_device(ID, &["id"], Connection::Fresh).await.unwrap();
    }
    let all = peers();
    let fresh = &all[all.len() - 2..];
    assert_ne!(fresh[0], fresh[1], "fresh requests open their own");
    assert!(
        fresh.iter().all(|p| !before.contains(p)),
        "a fresh request never takes a pooled connection"
    );
}

#[test]
fn query_values_are_percent_encoded_without_plus() {
    assert_eq!(encode("a b'c+&=é"), "a%20b%27c%2B%26%3D%C3%A9");
    assert_eq!(encode("id,deviceType"), "id,deviceType");
}

proptest::proptest! {
    #[test]
    fn any_filter_value_survives_the_query(value in "\\PC{0,40}") {
        let mut url = Url::parse("https://graph.microsoft.com/beta/x").unwrap();
        let filter = FilterProperty::SerialNumber.filter(&value);
        set_query(&mut url, &[("$filter", &filter), ("$select", "id")]);
        let query = url.query().unwrap_or("");
        proptest::prop_assert!(
            query.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~,%$=&".contains(&b)),
            "{query}"
        );
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        proptest::prop_assert_eq!(
            pairs,
            vec![("$filter".to_owned(), filter), ("$select".to_owned(), "id".to_owned())]
        );
    }
}

#[tokio::test]
async fn the_trait_drives_the_client_from_spawned_tasks() {
    use crate::graph::GraphApi;
    async fn reset_in_task<G: GraphApi>(graph: G) -> Result<Reply<()>, CallError> {
        tokio::spawn(async move {
            graph
                .device_action(ID, crate::rules::Family::Passcode, Connection::Pooled)
                .await
        })
        .await
        .unwrap()
    }
    let (server, _) = graph_server(|_| Answer::Status(204, vec![], String::new())).await;
    assert_eq!(reset_in_task(client(&server)).await.unwrap().status, 204);
    assert_eq!(graph_requests(&server).len(), 1);
}

// Issue 8, point 13: a refused ready token was reported as Graph having "refused 3 newly
// fetched tokens in a row".
#[tokio::test]
async fn a_refused_ready_token_says_the_given_token_was_refused() {
    let (server, tokens) = graph_server(|_| {
        Answer::json(
            401,
            serde_json::json!({"error": {"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed, the token is expired."}}),
        )
    })
    .await;
    let url = server.url();
    let endpoints = Endpoints::new(Cloud::Global, Some(&url), Some(&url)).unwrap();
    let ready = Identity::AccessToken(Secret::new(format!("{TOKEN_PREFIX}ready")));
    let c = GraphClient::sign_in(endpoints, ready, Duration::from_secs(5)).unwrap();
    let err = c
        .get_device(ID, &["id"], Connection::Pooled)
        .await
        .unwrap_err();
    let K::SignIn(auth) = &err.kind else {
        panic!("{err:?}")
    };
    assert!(!auth.is_transient());
    let text = auth.to_string();
    assert!(
        text.contains("refused the token given in INTUNE_RESET_ACCESS_TOKEN")
            && text.contains("the token is expired")
            && text.contains("another tenant or audience")
            && text.contains(&format!("az account get-access-token --resource {url}")),
        "{text}"
    );
    assert!(!text.contains("newly fetched"), "{text}");
    assert!(!text.contains(TOKEN_PREFIX), "{text}");
    assert_no_secrets(&err);
    assert!(!err.outcome_unknown());
    // Nothing was fetched: a ready token has nowhere to come from.
    assert_eq!(tokens.load(Ordering::SeqCst), 0);
}
