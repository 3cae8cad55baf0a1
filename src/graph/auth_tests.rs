//! Sign-in against a loopback token endpoint, or, in the tests on tokio's paused clock,
//! against one served in memory ([`serve_in_memory`]): paused time and real sockets do
//! not mix (issue 18).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::graph::cloud::Cloud;
use crate::graph::credentials::{load_certificate, tests::fixture};
use crate::graph::test_server::{
    Answer, MemoryServer, Seen, TestServer, refused_addr, serve, serve_in_memory,
};

const SECRET: &str = "very-secret-value";

/// A token endpoint that hands out `tok-1`, `tok-2`, ... valid for `lifetime` seconds.
async fn token_server(lifetime: u64, pause: Duration) -> (TestServer, Arc<AtomicUsize>) {
    let (handler, count) = tokens_handed_out(lifetime, pause);
    (serve(handler).await, count)
}

/// [`token_server`] in memory, for a test on tokio's paused clock.
fn token_server_in_memory(lifetime: u64) -> (MemoryServer, Arc<AtomicUsize>) {
    let (handler, count) = tokens_handed_out(lifetime, Duration::ZERO);
    (serve_in_memory(handler), count)
}

fn tokens_handed_out(
    lifetime: u64,
    pause: Duration,
) -> (
    impl Fn(&Seen) -> Answer + Send + Sync + 'static,
    Arc<AtomicUsize>,
) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let handler = move |_: &Seen| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = Answer::json(
            200,
            serde_json::json!({
                "token_type": "Bearer", "expires_in": lifetime, "access_token": format!("tok-{n}")
            }),
        );
        Answer::Late(pause, Box::new(answer))
    };
    (handler, count)
}

fn endpoints(authority: &str) -> Endpoints {
    Endpoints::new(Cloud::Global, Some("http://127.0.0.1:1"), Some(authority)).unwrap()
}

fn secret_identity() -> Identity {
    Identity::App {
        tenant: "contoso.example".into(),
        client_id: "app-1".into(),
        credential: AppCredential::Secret(Secret::new(SECRET)),
    }
}

fn source(identity: Identity, authority: &str) -> TokenSource {
    source_with_timeout(identity, authority, Duration::from_secs(5))
}

fn source_with_timeout(identity: Identity, authority: &str, timeout: Duration) -> TokenSource {
    let e = endpoints(authority);
    let http = crate::graph::client::http_client(&e, timeout, false).unwrap();
    TokenSource::new(identity, &e, http).unwrap()
}

#[tokio::test]
async fn fetches_once_and_caches() {
    let (server, count) = token_server(3600, Duration::ZERO).await;
    let tokens = source(secret_identity(), &server.url());
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-1");
    assert_eq!(tokens.clone().token().await.unwrap().expose(), "tok-1");
    assert_eq!(count.load(Ordering::SeqCst), 1);

    let seen = &server.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/contoso.example/oauth2/v2.0/token");
    assert_eq!(
        seen.form("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(seen.form("client_id").as_deref(), Some("app-1"));
    assert_eq!(
        seen.form("scope").as_deref(),
        Some("http://127.0.0.1:1/.default")
    );
    assert_eq!(seen.form("client_secret").as_deref(), Some(SECRET));
    assert_eq!(seen.form("client_assertion"), None);
    assert!(tokens.refused_ready_token("").is_none());
}

#[tokio::test(start_paused = true)]
async fn renews_before_expiry() {
    // 2 s lifetime: renewed after 1.8 s (a tenth of the lifetime as margin).
    let (server, count) = token_server_in_memory(2);
    let tokens = source(secret_identity(), &server.url());
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-1");
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-1");
    tokio::time::sleep(Duration::from_millis(1900)).await;
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-2");
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn renewal_margin_is_five_minutes_or_a_tenth() {
    assert_eq!(
        renewal_margin(Duration::from_secs(3599)),
        Duration::from_secs(300)
    );
    assert_eq!(
        renewal_margin(Duration::from_secs(60)),
        Duration::from_secs(6)
    );
    assert_eq!(
        renewal_margin(Duration::from_secs(1)),
        Duration::from_millis(100)
    );
}

#[tokio::test]
async fn one_fetch_in_flight_for_many_callers() {
    let (server, count) = token_server(3600, Duration::from_millis(200)).await;
    let tokens = source(secret_identity(), &server.url());
    let tasks: Vec<_> = (0..25)
        .map(|_| {
            let t = tokens.clone();
            tokio::spawn(async move { t.token().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().expose(), "tok-1");
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn invalidate_drops_only_the_refused_token() {
    let (server, count) = token_server(3600, Duration::ZERO).await;
    let tokens = source(secret_identity(), &server.url());
    let first = tokens.token().await.unwrap();
    tokens.invalidate(&first);
    let second = tokens.token().await.unwrap();
    assert_eq!(second.expose(), "tok-2");
    // A late 401 for the old token must not throw away the new one.
    tokens.invalidate(&first);
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-2");
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_ready_token_is_never_fetched_or_dropped() {
    let addr = refused_addr().await;
    let tokens = source(
        Identity::AccessToken(Secret::new("ready")),
        &format!("http://{addr}"),
    );
    let t = tokens.token().await.unwrap();
    tokens.invalidate(&t);
    assert_eq!(tokens.token().await.unwrap().expose(), "ready");
    assert!(tokens.refused_ready_token("").is_some());
}

#[tokio::test]
async fn a_certificate_sends_an_assertion_not_a_secret() {
    let (server, _) = token_server(3600, Duration::ZERO).await;
    let cert = load_certificate(&fixture("cert-and-pkcs8-key.pem")).unwrap();
    let identity = Identity::App {
        tenant: "t".into(),
        client_id: "app-2".into(),
        credential: AppCredential::Certificate(cert),
    };
    let tokens = source(identity, &server.url());
    tokens.token().await.unwrap();
    let seen = &server.requests()[0];
    assert_eq!(seen.form("client_secret"), None);
    assert_eq!(
        seen.form("client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    let jwt = seen.form("client_assertion").unwrap();
    assert_eq!(jwt.split('.').count(), 3);
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["aud"],
        format!("{}/t/oauth2/v2.0/token", server.url())
    );
}

fn entra_error(code: u64, error: &str, description: &str) -> Answer {
    Answer::json(
        401,
        serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: abc\r\nCorrelation ID: def"),
            "error_codes": [code],
            "trace_id": "trace-1",
            "correlation_id": "corr-1"
        }),
    )
}

#[tokio::test]
async fn entra_refusals_become_sentences_without_the_secret() {
    let cases: &[(u64, &str)] = &[
        (7000215, "Value (not its Secret ID)"),
        (7000222, "has expired"),
        (90002, "does not exist in this cloud"),
        (900023, "--tenant"),
        (700016, "was not found in tenant 'contoso.example'"),
        (700027, "upload that certificate"),
        (65001, "admin consent"),
        (500011, "--cloud"),
        (12345, "check the tenant, client id and AZURE_CLIENT_SECRET"),
    ];
    for &(code, expected) in cases {
        let server = serve(move |_| entra_error(code, "invalid_client", "Something.")).await;
        let err = source(secret_identity(), &server.url())
            .token()
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("AADSTS{code}")), "{text}");
        assert!(text.contains(expected), "{code}: {text}");
        assert!(
            text.contains("trace id trace-1") && text.contains("Something."),
            "{text}"
        );
        assert!(!text.contains(SECRET) && !format!("{err:?}").contains(SECRET));
        assert!(!err.is_transient());
    }
}

fn app_who() -> Who<'static> {
    Who {
        tenant: "x",
        client_id: "app",
        credential: "AZURE_CLIENT_SECRET".into(),
        delegated: false,
    }
}

#[test]
fn delegated_refusals_name_what_the_administrator_changes() {
    let who = Who {
        delegated: true,
        credential: "your sign-in".into(),
        ..app_who()
    };
    let answer = |code: u64| {
        format!(
            r#"{{"error":"invalid_grant","error_description":"AADSTS{code}: x","error_codes":[{code}]}}"#
        )
    };
    for (code, phrase) in [
        (53003, "Conditional Access"),
        (50076, "multi-factor"),
        (65001, "DeviceManagementManagedDevices.Read.All"),
        (7000218, "Allow public client"),
        (50011, "http://localhost"),
        (700082, "sign in again"),
    ] {
        let text = refusal(400, &answer(code), "u", &who).to_string();
        assert!(text.contains(phrase), "{code}: {text}");
    }
    // App-only consent is a different fix.
    let text = refusal(400, &answer(65001), "u", &app_who()).to_string();
    assert!(text.contains("application permissions"), "{text}");
    // A delegated sign-in (device code among them) is not told to use device code.
    let text = refusal(400, &answer(50076), "u", &who).to_string();
    assert!(!text.contains("--auth device-code"), "{text}");
    assert!(text.contains("--auth browser"), "{text}");
}

#[test]
fn aadsts_code_from_the_description_when_codes_are_absent() {
    let err = refusal(
        400,
        r#"{"error":"invalid_request","error_description":"AADSTS900023: Specified tenant identifier 'x' is neither a valid DNS name, nor a valid external domain."}"#,
        "u",
        &app_who(),
    );
    let text = err.to_string();
    assert!(
        text.contains("AADSTS900023") && text.contains("tenant 'x'"),
        "{text}"
    );
    let err = refusal(502, "<html>gateway</html>", "u", &app_who());
    assert!(matches!(err, AuthError::BadAnswer { status: 502, .. }));
    assert!(err.is_transient());
}

// Real time (a refused connection is a real socket's): four backoffs, at most 15 s.
#[tokio::test]
async fn an_unreachable_authority_is_asked_again_then_named() {
    let addr = refused_addr().await;
    let err = source(secret_identity(), &format!("http://{addr}"))
        .token()
        .await
        .unwrap_err();
    let AuthError::Outage { gave_up, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(gave_up.attempts, 5);
    assert!(err.is_transient());
    let text = err.to_string();
    // The cause is kept: "connection refused" tells the administrator what happened.
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(
        text.contains("5 times") && text.contains("HTTPS_PROXY"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
}

type Scripted = Vec<Box<dyn Fn() -> Answer + Send + Sync>>;

/// Answers the token requests in turn with `answers`, then with `tok-N`.
async fn flaky_server(answers: Scripted) -> (TestServer, Arc<AtomicUsize>) {
    let (handler, count) = flaky(answers);
    (serve(handler).await, count)
}

/// [`flaky_server`] in memory, for a test on tokio's paused clock.
fn flaky_server_in_memory(answers: Scripted) -> (MemoryServer, Arc<AtomicUsize>) {
    let (handler, count) = flaky(answers);
    (serve_in_memory(handler), count)
}

fn flaky(
    answers: Scripted,
) -> (
    impl Fn(&Seen) -> Answer + Send + Sync + 'static,
    Arc<AtomicUsize>,
) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let handler = move |_: &Seen| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        match answers.get(n) {
            Some(answer) => answer(),
            None => Answer::json(
                200,
                serde_json::json!({"token_type": "Bearer", "expires_in": 3600, "access_token": format!("tok-{}", n + 1)}),
            ),
        }
    };
    (handler, count)
}

fn status_with(status: u16, retry_after: Option<String>) -> Answer {
    let headers = retry_after
        .map(|v| vec![("retry-after", v)])
        .unwrap_or_default();
    Answer::Status(status, headers, String::new())
}

/// An Entra-shaped 5xx with an AADSTS code the tool has no sentence for: it used to end
/// in "check the tenant, client id and AZURE_CLIENT_SECRET".
fn entra_503() -> Answer {
    let mut answer = entra_error(
        90033,
        "temporarily_unavailable",
        "A transient error has occurred.",
    );
    if let Answer::Status(status, _, _) = &mut answer {
        *status = 503;
    }
    answer
}

// Issue 8, point 13: a transient failure of the first token request aborted the run.
// Real time: the point is the client's own timeout on a real connection (about 20 s of
// waiting, on an idle machine or a loaded one alike).
#[tokio::test]
async fn a_transient_failure_of_the_first_token_request_is_retried() {
    let in_three_seconds =
        || httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3));
    let (server, count) = flaky_server(vec![
        Box::new(|| status_with(429, Some("2".into()))),
        Box::new(move || status_with(503, Some(in_three_seconds()))),
        Box::new(|| Answer::Drop),
        // Longer than the client's 10 s timeout: only the timeout ends this request (a
        // 200 without a token would fail the sign-in).
        Box::new(|| Answer::Late(Duration::from_secs(600), Box::new(status_with(200, None)))),
    ])
    .await;
    let started = tokio::time::Instant::now();
    // 10 s: long enough that a loaded machine's quick answers are never lost to it.
    let tokens = source_with_timeout(secret_identity(), &server.url(), Duration::from_secs(10));
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-5");
    assert_eq!(count.load(Ordering::SeqCst), 5);
    // 2 s asked, 10 s of timeout: lower bounds only, which load cannot break.
    assert!(
        started.elapsed() >= Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn statuses_that_may_pass_are_asked_again() {
    // 500, 502 and 504, and an Entra error document in a 503, are asked again.
    let (server, count) = flaky_server_in_memory(vec![
        Box::new(|| status_with(500, None)),
        Box::new(|| status_with(502, None)),
        Box::new(|| status_with(504, Some("0.25".into()))),
        Box::new(entra_503),
    ]);
    let tokens = source(secret_identity(), &server.url());
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-5");
    assert_eq!(count.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn a_token_endpoint_that_keeps_failing_names_the_outage_not_the_secret() {
    let server = serve_in_memory(|_| entra_503());
    let started = tokio::time::Instant::now();
    let err = source(secret_identity(), &server.url())
        .token()
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 5);
    assert!(started.elapsed() <= Duration::from_secs(60));
    let text = err.to_string();
    assert!(
        text.contains("answered 503 Service Unavailable 5 times over")
            && text.ends_with("Entra ID may be having an outage: try again later"),
        "{text}"
    );
    for wrong in ["secret", "check the tenant", "client id", SECRET] {
        assert!(!text.contains(wrong), "{wrong}: {text}");
    }
    assert!(!format!("{err:?}").contains(SECRET));
    assert!(err.is_transient());

    // A 429 that asks for longer than the retries may take is not waited out.
    let server = serve_in_memory(|_| status_with(429, Some("600".into())));
    let err = source(secret_identity(), &server.url())
        .token()
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    let text = err.to_string();
    assert!(
        text.contains("answered 429 Too Many Requests once")
            && text.contains("asked to wait 600 s")
            && text.contains("throttling"),
        "{text}"
    );

    // Mixed failures say so.
    let (server, _) = flaky_server_in_memory(
        (0..5)
            .map(|i| -> Box<dyn Fn() -> Answer + Send + Sync> {
                if i % 2 == 0 {
                    Box::new(|| Answer::Drop)
                } else {
                    Box::new(|| status_with(502, None))
                }
            })
            .collect(),
    );
    let text = source(secret_identity(), &server.url())
        .token()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("failed 5 times over") && text.contains("the last time with no answer"),
        "{text}"
    );
}

#[tokio::test]
async fn a_definitive_refusal_is_not_asked_again() {
    let server =
        serve(|_| entra_error(7000215, "invalid_client", "Invalid client secret provided.")).await;
    let err = source(secret_identity(), &server.url())
        .token()
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_renewal_is_retried_and_a_failed_one_keeps_the_old_token_until_it_expires() {
    // 1000 s tokens, renewed after 900 s.
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let server = serve_in_memory(move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        match n {
            // The renewal meets one 503, then succeeds.
            2 => status_with(503, Some("1".into())),
            // The next renewal finds Entra down for good.
            n if n >= 4 => status_with(503, None),
            n => Answer::json(
                200,
                serde_json::json!({"expires_in": 1000, "access_token": format!("tok-{n}")}),
            ),
        }
    });
    let tokens = source(secret_identity(), &server.url());
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-1");
    tokio::time::sleep(Duration::from_secs(901)).await;
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-3");
    // Past tok-3's renewal time but before its expiry: the renewal fails, tok-3 serves.
    tokio::time::sleep(Duration::from_secs(901)).await;
    assert_eq!(tokens.token().await.unwrap().expose(), "tok-3");
    // After its expiry the outage is reported.
    tokio::time::sleep(Duration::from_secs(100)).await;
    let err = tokens.token().await.unwrap_err();
    assert!(matches!(err, AuthError::Outage { .. }), "{err:?}");
}

#[tokio::test]
async fn answers_without_a_token_are_bad_answers() {
    for body in [
        serde_json::json!({"token_type": "Bearer", "expires_in": 3600}),
        serde_json::json!({"access_token": "x"}),
        serde_json::json!({"access_token": "x", "expires_in": "soon"}),
    ] {
        let server = serve(move |_| Answer::json(200, body.clone())).await;
        let err = source(secret_identity(), &server.url())
            .token()
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::BadAnswer { .. }), "{err:?}");
    }
    // expires_in as a string is accepted.
    let server = serve(|_| {
        Answer::json(
            200,
            serde_json::json!({"access_token": "x", "expires_in": "3599"}),
        )
    })
    .await;
    assert_eq!(
        source(secret_identity(), &server.url())
            .token()
            .await
            .unwrap()
            .expose(),
        "x"
    );
}

#[tokio::test]
async fn a_federated_token_file_is_read_again_at_every_renewal() {
    let (server, _) = token_server(1, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("federated");
    std::fs::write(&file, "first-assertion").unwrap();
    let identity = Identity::App {
        tenant: "contoso.example".into(),
        client_id: "app-1".into(),
        credential: AppCredential::Federated(file.clone()),
    };
    let tokens = source(identity, &server.url());
    let first = tokens.token().await.unwrap();
    // The platform rotates the file; the next renewal sends the new assertion.
    std::fs::write(&file, "second-assertion\n").unwrap();
    tokens.invalidate(&first);
    tokens.token().await.unwrap();
    let sent: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.form("client_assertion"))
        .collect();
    assert_eq!(
        sent,
        [
            Some("first-assertion".into()),
            Some("second-assertion".into())
        ]
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.form("client_assertion_type").as_deref()
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                && r.form("client_secret").is_none())
    );
}

/// A delegated token source against `server`, signed in by device code.
fn device_code_source(authority: &str) -> TokenSource {
    source(
        Identity::Delegated {
            tenant: "organizations".into(),
            client_id: "public-app".into(),
            flow: crate::graph::credentials::Interactive::DeviceCode,
        },
        authority,
    )
}

/// Says each line into a shared list.
fn recording_ui() -> (SignInUi, Arc<std::sync::Mutex<Vec<String>>>) {
    let said = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = said.clone();
    let ui = SignInUi {
        say: Box::new(move |line| s.lock().unwrap().push(line.to_owned())),
        open_browser: None,
        browser_wait: Duration::from_secs(60),
    };
    (ui, said)
}

fn device_grant() -> Answer {
    Answer::json(
        200,
        serde_json::json!({
            "device_code": "dev-code-secret", "user_code": "ABCD1234",
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": 30, "interval": 5,
        }),
    )
}

#[tokio::test(start_paused = true)]
async fn device_code_polls_through_pending_slows_down_and_renews_by_refresh_token() {
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let server = serve_in_memory(move |seen| {
        if seen.target.ends_with("/devicecode") {
            return device_grant();
        }
        match seen.form("grant_type").as_deref() {
            Some("refresh_token") => Answer::json(
                200,
                serde_json::json!({
                    "access_token": "renewed", "expires_in": 3600,
                    "refresh_token": format!("rotated-after-{}", seen.form("refresh_token").unwrap_or_default()),
                }),
            ),
            _ => match p.fetch_add(1, Ordering::SeqCst) {
                0 => entra_error(70016, "authorization_pending", "AADSTS70016: pending"),
                1 => entra_error(70016, "slow_down", "slow down"),
                _ => Answer::json(
                    200,
                    serde_json::json!({
                        "access_token": "first", "expires_in": 3600, "refresh_token": "rt-1",
                    }),
                ),
            },
        }
    });
    let tokens = device_code_source(&server.url());
    let (ui, said) = recording_ui();
    let started = tokio::time::Instant::now();
    let token = tokens.sign_in_interactively(&ui).await.unwrap();
    assert_eq!(token.expose(), "first");
    // 5 s, 5 s, then 10 s after slow_down.
    assert_eq!(started.elapsed(), Duration::from_secs(20));
    let said = said.lock().unwrap().clone();
    assert!(
        said[0].contains("ABCD1234") && said[0].contains("devicelogin"),
        "{said:?}"
    );
    assert!(said.iter().any(|l| l.contains("every 10 s")), "{said:?}");
    assert!(
        said.iter().all(|l| !l.contains("dev-code-secret")),
        "{said:?}"
    );
    // A 401 drops the token; the renewal goes through the refresh token, which rotates.
    tokens.invalidate(&token);
    assert_eq!(tokens.token().await.unwrap().expose(), "renewed");
    tokens.invalidate(&Secret::new("renewed"));
    tokens.token().await.unwrap();
    let refreshes: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.form("refresh_token"))
        .collect();
    assert_eq!(refreshes, ["rt-1", "rotated-after-rt-1"]);
    let scopes = server.requests()[0].form("scope").unwrap_or_default();
    assert!(
        scopes.contains("offline_access") && scopes.contains("PrivilegedOperations.All"),
        "{scopes}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_device_code_says_how_long_it_was_valid() {
    let server = serve_in_memory(|seen| {
        if seen.target.ends_with("/devicecode") {
            return device_grant();
        }
        entra_error(70016, "authorization_pending", "pending")
    });
    let tokens = device_code_source(&server.url());
    let err = tokens
        .sign_in_interactively(&SignInUi::silent())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the code expired") && err.contains("valid for 1 minute)"),
        "{err}"
    );
}

/// Issue 22: the next tenant of a run across several first redeems the earlier
/// sign-in's refresh token at its own authority: no device code is asked for. Where
/// Entra refuses it (the account may not act there), the sign-in asks as usual.
#[tokio::test(start_paused = true)]
async fn regression_22_a_technicians_sign_in_is_reused_at_the_next_tenant_where_entra_allows() {
    let server = serve_in_memory(move |seen| {
        if seen.target.ends_with("/devicecode") {
            return device_grant();
        }
        match seen.form("grant_type").as_deref() {
            Some("refresh_token") if seen.form("refresh_token").as_deref() == Some("rt-a") => {
                Answer::json(
                    200,
                    serde_json::json!({
                        "access_token": "at-b", "expires_in": 3600, "refresh_token": "rt-b",
                    }),
                )
            }
            Some("refresh_token") => entra_error(
                50020,
                "invalid_grant",
                "AADSTS50020: User account does not exist in tenant",
            ),
            _ => Answer::json(
                200,
                serde_json::json!({
                    "access_token": "asked", "expires_in": 3600, "refresh_token": "rt-c",
                }),
            ),
        }
    });
    let reused = device_code_source(&server.url());
    reused.delegated().unwrap().reuse(Secret::new("rt-a"));
    let (ui, said) = recording_ui();
    assert_eq!(
        reused.sign_in_interactively(&ui).await.unwrap().expose(),
        "at-b"
    );
    assert!(said.lock().unwrap().is_empty(), "nothing asked");
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.target.ends_with("/devicecode")),
        "no device code"
    );
    assert_eq!(
        reused
            .delegated()
            .unwrap()
            .refresh_token()
            .unwrap()
            .expose(),
        "rt-b"
    );

    let refused = device_code_source(&server.url());
    refused
        .delegated()
        .unwrap()
        .reuse(Secret::new("rt-elsewhere"));
    let (ui, said) = recording_ui();
    assert_eq!(
        refused.sign_in_interactively(&ui).await.unwrap().expose(),
        "asked"
    );
    assert!(
        said.lock().unwrap()[0].contains("ABCD1234"),
        "the device code is asked for"
    );
}
