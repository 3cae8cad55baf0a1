//! The simulated Entra ID's other ways in: delegated sign-in (device code, and the
//! authorization code flow with PKCE), refresh tokens, federated assertions, and the
//! managed identity endpoints.
//!
//! A simulated user approves every sign-in at once (the device code after one
//! `authorization_pending`), or declines when `SimConfig::sign_in.user_declines` is set.
//! The user holds an Intune role allowing "Reset passcode" unless `user_without_role`
//! is set; then Graph answers that user's resets 403, naming no permission, as Intune
//! does. `entra_error` makes every delegated token request meet Entra's answer for
//! Conditional Access (53003), MFA (50076) or missing consent (65001).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use super::SimConfig;
use super::auth::{TokenStore, User, entra_error};
use super::reply::{Ctx, Kind, Reply};

/// The sign-in behaviour a test or a rehearsal asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInConfig {
    /// The simulated user declines the sign-in.
    pub user_declines: bool,
    /// The simulated user has no Intune role allowing "Reset passcode".
    pub user_without_role: bool,
    /// Entra's refusal every delegated token request meets: 53003, 50076 or 65001.
    pub entra_error: Option<u32>,
    /// The `interval` the device code grant asks clients to poll at (Entra: 5 s).
    pub poll_interval: Duration,
}

/// The header value App Service's endpoint requires (`IDENTITY_HEADER`).
pub const IDENTITY_HEADER: &str = "sim-identity-header";
/// The client id of the simulated resource's system-assigned identity.
pub const SYSTEM_IDENTITY: &str = "5e1f0c3a-7d2b-4a9e-8f6c-1b2d3e4f5a6b";
/// The one user-assigned identity the simulated resource holds.
pub const USER_ASSIGNED_IDENTITY: &str = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d";
/// The audience of federated assertions (workload identity federation).
const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

#[derive(Debug)]
struct DeviceGrant {
    client_id: String,
    polls: u32,
    expires: Duration,
}

#[derive(Debug)]
struct AuthCode {
    client_id: String,
    challenge: String,
    redirect_uri: String,
    expires: Duration,
}

/// Codes and refresh tokens in flight; none is ever logged.
#[derive(Debug, Default)]
pub struct SignIns {
    device_codes: Mutex<HashMap<String, DeviceGrant>>,
    codes: Mutex<HashMap<String, AuthCode>>,
    /// refresh token → client id; each is used once (rotation).
    refresh: Mutex<HashMap<String, String>>,
}

fn random(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The simulated user who signs in.
pub fn user(config: &SimConfig) -> User {
    let name = if config.sign_in.user_without_role {
        "reader"
    } else {
        "admin"
    };
    User {
        upn: format!("{name}@{}", config.tenant_domain),
        intune_role: !config.sign_in.user_without_role,
    }
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub fn device_code(
    config: &SimConfig,
    sign_ins: &SignIns,
    ctx: &Ctx,
    body: &[u8],
    now: Duration,
) -> Reply {
    let form = form(body);
    let Some(client_id) = form.get("client_id").filter(|c| !c.is_empty()) else {
        return entra_error(
            ctx,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let device_code = random("dc.");
    let user_code: String = uuid::Uuid::new_v4().simple().to_string()[..9].to_uppercase();
    lock(&sign_ins.device_codes).insert(
        device_code.clone(),
        DeviceGrant {
            client_id: client_id.clone(),
            polls: 0,
            expires: now + Duration::from_secs(900),
        },
    );
    let uri = format!("{}/devicelogin", ctx.base_url);
    Reply::new(
        200,
        Kind::Token,
        Some(json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": uri,
            "expires_in": 900,
            "interval": config.sign_in.poll_interval.as_secs().max(1),
            "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."),
        })),
    )
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the simulated user signs in and the browser
/// is sent back to the redirect URI with a code (or `error=access_denied`).
pub fn authorize(config: &SimConfig, sign_ins: &SignIns, query: &str, now: Duration) -> Reply {
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let field = |n: &str| q.get(n).map(String::as_str).filter(|v| !v.is_empty());
    let page = |text: &str| {
        Reply::new(
            400,
            Kind::Token,
            Some(json!({"error": "invalid_request", "error_description": text})),
        )
    };
    let Some(client_id) = field("client_id") else {
        return page(
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(redirect) = field("redirect_uri") else {
        return page(
            "AADSTS900144: The request body must contain the following parameter: 'redirect_uri'.",
        );
    };
    let loopback = url::Url::parse(redirect).ok().is_some_and(|u| {
        u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
    });
    if !loopback {
        return page(
            "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.",
        );
    }
    if field("response_type") != Some("code") {
        return page("AADSTS900144: response_type must be 'code'.");
    }
    let (Some(challenge), Some("S256")) = (field("code_challenge"), field("code_challenge_method"))
    else {
        return page(
            "AADSTS9002325: Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
        );
    };
    let state = field("state").unwrap_or("");
    let mut back = url::Url::parse(redirect).expect("checked above");
    if config.sign_in.user_declines {
        back.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair(
                "error_description",
                "The user has denied access to the scope requested by the client application.",
            )
            .append_pair("state", state);
    } else {
        let code = random("code.");
        lock(&sign_ins.codes).insert(
            code.clone(),
            AuthCode {
                client_id: client_id.to_owned(),
                challenge: challenge.to_owned(),
                redirect_uri: redirect.to_owned(),
                expires: now + Duration::from_secs(600),
            },
        );
        back.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", state);
    }
    Reply::new(302, Kind::Token, None).header("Location", back.to_string())
}

/// The token endpoint's delegated grants (`device_code`, `authorization_code`,
/// `refresh_token`) for the tenant `tid` the token URL names (the same simulated user
/// signs in to any of the simulator's tenants); `None` for other grant types.
#[allow(clippy::too_many_arguments)]
pub fn delegated_token(
    config: &SimConfig,
    store: &TokenStore,
    sign_ins: &SignIns,
    ctx: &Ctx,
    tid: &str,
    grant_type: &str,
    body: &[u8],
    now: Duration,
) -> Option<Reply> {
    let form = form(body);
    let field = |n: &str| form.get(n).map(String::as_str).filter(|v| !v.is_empty());
    let client_id = field("client_id").unwrap_or("").to_owned();
    let grant =
        |status, error: &str, code, text: &str| Some(entra_error(ctx, status, error, code, text));
    match grant_type {
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let mut grants = lock(&sign_ins.device_codes);
            let Some(dc) = field("device_code").and_then(|d| grants.get_mut(d)) else {
                return grant(
                    400,
                    "bad_verification_code",
                    70019,
                    "Verification code was not found.",
                );
            };
            if dc.client_id != client_id {
                return grant(
                    400,
                    "invalid_grant",
                    70000,
                    "The device code was issued to another application.",
                );
            }
            if dc.expires <= now {
                return grant(
                    400,
                    "expired_token",
                    70020,
                    "The provided authorization code or refresh token has expired due to inactivity.",
                );
            }
            dc.polls += 1;
            if dc.polls == 1 {
                return grant(
                    400,
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                );
            }
            if config.sign_in.user_declines {
                return grant(
                    400,
                    "authorization_declined",
                    70002,
                    "The end user denied the authorization request.",
                );
            }
            if let Some(d) = field("device_code") {
                grants.remove(d);
            }
        }
        "authorization_code" => {
            let Some(code) = field("code").and_then(|c| lock(&sign_ins.codes).remove(c)) else {
                return grant(
                    400,
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired due to inactivity.",
                );
            };
            let verifier = field("code_verifier").unwrap_or("");
            let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            if computed != code.challenge {
                return grant(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                );
            }
            if field("redirect_uri") != Some(code.redirect_uri.as_str())
                || code.client_id != client_id
            {
                return grant(
                    400,
                    "invalid_grant",
                    50011,
                    "The redirect URI specified in the request does not match the redirect URI of the authorization request.",
                );
            }
            if code.expires <= now {
                return grant(
                    400,
                    "invalid_grant",
                    70008,
                    "The provided authorization code has expired.",
                );
            }
        }
        "refresh_token" => {
            let known = field("refresh_token").and_then(|r| lock(&sign_ins.refresh).remove(r));
            if known.as_deref() != Some(client_id.as_str()) {
                return grant(
                    400,
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity.",
                );
            }
        }
        _ => return None,
    }
    if let Some(code) = config.sign_in.entra_error {
        let (error, text) = match code {
            53003 => (
                "access_denied",
                "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
            ),
            50076 => (
                "invalid_grant",
                "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.",
            ),
            _ => (
                "invalid_grant",
                "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.",
            ),
        };
        return grant(400, error, code, text);
    }
    let user = user(config);
    let lifetime = config.token_lifetime;
    let access_token = store.issue_for(&client_id, now + lifetime, Some(user.clone()), tid);
    let refresh = random("rt.");
    lock(&sign_ins.refresh).insert(refresh.clone(), client_id.clone());
    let claims = json!({
        "aud": client_id,
        "tid": tid,
        "preferred_username": user.upn,
        "name": "Simulated administrator",
    });
    let b = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let id_token = format!(
        "{}.{}.sim",
        b(&json!({"typ": "JWT", "alg": "none"})),
        b(&claims)
    );
    Some(Reply::new(
        200,
        Kind::Token,
        Some(json!({
            "token_type": "Bearer",
            "scope": form.get("scope").cloned().unwrap_or_default(),
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": access_token,
            "refresh_token": refresh,
            "id_token": id_token,
        })),
    ))
}

/// A federated assertion (workload identity): a JWT for `api://AzureADTokenExchange`
/// that has not expired. `Some(Err)` is the refusal; `None`: not a federated assertion.
pub fn federated(assertion: &str, now_unix: u64) -> Option<Result<(), (u32, String)>> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let aud = &claims["aud"];
    let for_exchange = aud.as_str() == Some(FEDERATED_AUDIENCE)
        || aud
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(FEDERATED_AUDIENCE)));
    if !for_exchange {
        return None;
    }
    if claims["exp"].as_u64().is_none_or(|exp| exp <= now_unix) {
        return Some(Err((
            700024,
            "Client assertion is not within its valid time range.".into(),
        )));
    }
    Some(Ok(()))
}

/// `GET /metadata/identity/oauth2/token` (the VM metadata service) and `GET
/// /msi/token` (App Service): a token for the resource's managed identity.
pub fn managed_identity(
    config: &SimConfig,
    store: &TokenStore,
    ctx: &Ctx,
    app_service: bool,
    header: Option<&str>,
    query: &str,
    now: Duration,
) -> Reply {
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let bad = |status: u16, error: &str, text: &str| {
        Reply::new(
            status,
            Kind::Token,
            Some(json!({"error": error, "error_description": text})),
        )
    };
    let expected = if app_service {
        Some(IDENTITY_HEADER)
    } else {
        Some("true")
    };
    if header != expected {
        return bad(
            400,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if q.get("resource").is_none_or(|r| r.is_empty()) {
        return bad(
            400,
            "invalid_request",
            "Required audience parameter not specified",
        );
    }
    let client_id = match q.get("client_id").map(String::as_str) {
        None => SYSTEM_IDENTITY,
        Some(id) if id.eq_ignore_ascii_case(USER_ASSIGNED_IDENTITY) => USER_ASSIGNED_IDENTITY,
        Some(_) => return bad(400, "invalid_request", "Identity not found"),
    };
    let lifetime = config.token_lifetime;
    let token = store.issue_for(client_id, now + lifetime, None, &config.tenant_id);
    let expires_on = ctx
        .date
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + lifetime.as_secs();
    let mut body = json!({
        "access_token": token,
        "expires_on": expires_on.to_string(),
        "resource": q.get("resource"),
        "token_type": "Bearer",
        "client_id": client_id,
    });
    if !app_service {
        body["expires_in"] = json!(lifetime.as_secs().to_string());
    }
    Reply::new(200, Kind::Token, Some(body))
}
