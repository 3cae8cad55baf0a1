//! The token endpoint and bearer tokens.

use std::time::Duration;

use intune_reset::sim::{Inventory, SimClock, SimConfig};
use serde_json::{Value, json};

use super::{SCOPE, client, get, start, token};

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

async fn token_call(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client().post(url).form(form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn secrets_assertions_and_entra_errors() {
    let sim = start(SimConfig {
        client_secret: Some("right".into()),
        certificate_thumbprint: Some("thumb".into()),
        ..SimConfig::default()
    })
    .await;
    let base = sim.base_url();
    let url = format!("{base}/{}/oauth2/v2.0/token", sim.config().tenant_domain);
    let secret = |s: &'static str| {
        [
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", s),
            ("scope", SCOPE),
        ]
    };
    let (status, body) = token_call(&url, &secret("right")).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);

    let (status, body) = token_call(&url, &secret("wrong")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215:")
    );
    assert_eq!(body["error_codes"], json!([7000215]));

    let (status, body) = token_call(
        &format!("{base}/another-tenant/oauth2/v2.0/token"),
        &secret("right"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS90002:")
    );

    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let assertion = |thumb: &str| {
        let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": thumb});
        let claims = json!({"aud": url, "iss": "app", "sub": "app", "exp": exp, "nbf": exp - 700, "jti": "j"});
        format!(
            "{}.{}.c2ln",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        )
    };
    let with = |a: String| {
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", "app".to_owned()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion", a),
            ("scope", SCOPE.to_owned()),
        ]
    };
    let form = with(assertion("thumb"));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(token_call(&url, &form).await.0, 200);
    let form = with(assertion("other"));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = token_call(&url, &form).await;
    assert_eq!(status, 401);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS700027:")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_unknown_and_expired_tokens_are_401_invalid_authentication_token() {
    let sim = start(SimConfig {
        token_lifetime: Duration::from_secs(60),
        inventory: Inventory::generate(3, 1),
        // The token's last valid moment is checked exactly: no real time may count.
        clock: SimClock::manual(),
        ..SimConfig::default()
    })
    .await;
    let list = "/v1.0/deviceManagement/managedDevices";
    let response = client()
        .get(format!("{}{list}", sim.base_url()))
        .header("client-request-id", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers().get("request-id").is_some());
    assert_eq!(response.headers().get("client-request-id").unwrap(), "abc");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(body["error"]["innerError"]["client-request-id"], "abc");
    assert!(body["error"]["innerError"]["date"].is_string());

    let (status, body) = get(&sim, list, "sim.not-issued").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("InvalidAuthenticationToken"))
    );

    let token = token(&sim, "app").await;
    assert_eq!(get(&sim, list, &token).await.0, 200);
    sim.config().clock.advance(Duration::from_secs(59));
    assert_eq!(get(&sim, list, &token).await.0, 200);
    sim.config().clock.advance(Duration::from_secs(1));
    let (status, body) = get(&sim, list, &token).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_first_token_requests_meet_the_token_faults_in_order() {
    use intune_reset::sim::TokenFault;
    let sim = start(SimConfig {
        token_faults: vec![
            TokenFault::TooManyRequests,
            TokenFault::ServiceUnavailable,
            TokenFault::Drop,
        ],
        ..SimConfig::default()
    })
    .await;
    let url = sim.token_url();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "app"),
        ("client_secret", "s"),
        ("scope", SCOPE),
    ];
    let response = client().post(&url).form(&form).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let (status, _) = token_call(&url, &form).await;
    assert_eq!(status, 503);
    assert!(client().post(&url).form(&form).send().await.is_err());
    let (status, body) = token_call(&url, &form).await;
    assert_eq!(status, 200);
    assert!(body["access_token"].is_string());
    let stats = sim.shutdown().await;
    assert_eq!(stats.dropped, 1);
}
