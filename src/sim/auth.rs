//! Entra ID's v2.0 token endpoint (client credentials) and the bearer tokens it issues.
//!
//! `POST /{tenant}/oauth2/v2.0/token`, form-encoded, with a client secret or a client
//! assertion (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>).
//! Errors have Entra's shape: `error`, `error_description` starting with the AADSTS
//! code, `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
//! Tokens are opaque random strings remembered with their expiry; they are never
//! logged.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::SimConfig;
use super::assertion::{self, Expected};
use super::reply::{Ctx, Kind, Reply, graph_error};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An issued token.
#[derive(Debug, Clone)]
struct Issued {
    /// The client id it was issued to: throttling counts per app.
    app: Arc<str>,
    /// The tenant it was issued for (its `tid`): Graph serves its requests from it.
    tenant: Arc<str>,
    /// Simulator time after which it is refused.
    expires: Duration,
    /// The signed-in user of a delegated token.
    user: Option<User>,
    /// That user's UPN, shared with every request the token sends (audit records name it).
    upn: Option<Arc<str>>,
}

/// A simulated user who signs in (delegated tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub upn: String,
    /// Holds an Intune role allowing "Reset passcode".
    pub intune_role: bool,
}

/// What a request's `Authorization` header amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    /// `may_reset` is false for a user without an Intune role allowing the reset;
    /// `user` is the signed-in user's UPN of a delegated token, `None` for app-only;
    /// `tenant` is the token's `tid`, the tenant its requests are served from.
    Valid {
        app: Arc<str>,
        tenant: Arc<str>,
        token: String,
        may_reset: bool,
        user: Option<Arc<str>>,
    },
    Missing,
    Unknown,
    Expired,
}

#[derive(Debug, Default)]
pub struct TokenStore {
    /// Issued tokens; read on every Graph request, written only by the token endpoint.
    tokens: RwLock<HashMap<String, Issued>>,
}

impl TokenStore {
    /// A JWT-shaped token, as Entra's are: its claims name the tenant, the app and
    /// the user (unsigned: the simulator looks tokens up, it does not verify them).
    pub fn issue_for(
        &self,
        app: &str,
        expires: Duration,
        user: Option<User>,
        tenant: &str,
    ) -> String {
        use base64::Engine as _;
        let b = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let mut claims = json!({"aud": "https://graph.microsoft.com", "tid": tenant, "appid": app});
        if let Some(u) = &user {
            claims["upn"] = json!(u.upn);
        }
        let token = format!(
            "{}.{}.sim{}{}",
            b(&json!({"typ": "JWT", "alg": "none"})),
            b(&claims),
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        // Forget long-expired tokens now and then, so a long rehearsal does not grow.
        if tokens.len() > 10_000 {
            tokens.retain(|_, t| t.expires + Duration::from_secs(3600) > expires);
        }
        tokens.insert(
            token.clone(),
            Issued {
                app: app.into(),
                tenant: tenant.into(),
                expires,
                upn: user.as_ref().map(|u| Arc::from(u.upn.as_str())),
                user,
            },
        );
        token
    }

    pub fn check(&self, authorization: Option<&str>, now: Duration) -> Bearer {
        let Some(token) = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Bearer::Missing;
        };
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        match tokens.get(token) {
            None => Bearer::Unknown,
            Some(issued) if issued.expires <= now => Bearer::Expired,
            Some(issued) => Bearer::Valid {
                app: issued.app.clone(),
                tenant: issued.tenant.clone(),
                token: token.to_owned(),
                may_reset: issued.user.as_ref().is_none_or(|u| u.intune_role),
                user: issued.upn.clone(),
            },
        }
    }

    /// Makes a token expire now (the `expired-token` fault).
    pub fn expire(&self, token: &str, now: Duration) {
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        if let Some(issued) = tokens.get_mut(token) {
            issued.expires = now;
        }
    }
}

/// Graph's 401 for a request without a usable token.
pub fn unauthorized(ctx: &Ctx, kind: Kind, bearer: &Bearer) -> Reply {
    let message = match bearer {
        Bearer::Missing => "Access token is empty.",
        Bearer::Expired => "Lifetime validation failed, the token is expired.",
        Bearer::Unknown | Bearer::Valid { .. } => {
            "CompactToken parsing failed with error code: 80049217"
        }
    };
    graph_error(ctx, kind, 401, "InvalidAuthenticationToken", message).header(
        "WWW-Authenticate",
        "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\"".into(),
    )
}

/// An Entra error answer.
pub(super) fn entra_error(ctx: &Ctx, status: u16, error: &str, code: u32, message: &str) -> Reply {
    let timestamp = super::clock::rfc3339(ctx.date).replace('T', " ");
    let correlation = ctx
        .client_request_id
        .clone()
        .unwrap_or_else(|| ctx.request_id.clone());
    let description = format!(
        "AADSTS{code}: {message}\r\nTrace ID: {}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}",
        ctx.request_id
    );
    let body = json!({
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": ctx.request_id,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    Reply::new(status, Kind::Token, Some(body))
}

/// Entra's answer when it is briefly unavailable or throttling (the `429` and `503`
/// token faults; the body is unconfirmed, see [`super::token_faults`]).
pub fn transient(ctx: &Ctx, status: u16) -> Reply {
    entra_error(
        ctx,
        status,
        "temporarily_unavailable",
        90033,
        "A transient error has occurred. Please try again.",
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub fn token(
    config: &SimConfig,
    store: &TokenStore,
    sign_ins: &super::signin::SignIns,
    ctx: &Ctx,
    tenant: &str,
    body: &[u8],
    now: Duration,
) -> Reply {
    // Any tenant the simulator holds, by id or domain; `organizations` and `common`
    // sign a work account in to its home tenant: the first.
    let Some(tid) = config.tenant_for_authority(tenant) else {
        let message = format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        );
        return entra_error(ctx, 400, "invalid_request", 90002, &message);
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let missing = |name: &str| {
        let message = format!("The request body must contain the following parameter: '{name}'.");
        entra_error(ctx, 400, "invalid_request", 900144, &message)
    };
    let Some(grant_type) = field("grant_type") else {
        return missing("grant_type");
    };
    if let Some(reply) =
        super::signin::delegated_token(config, store, sign_ins, ctx, tid, grant_type, body, now)
    {
        return reply;
    }
    if grant_type != "client_credentials" {
        let message = format!("The app requested an unsupported grant type '{grant_type}'.");
        return entra_error(ctx, 400, "unsupported_grant_type", 70003, &message);
    }
    let Some(scope) = field("scope") else {
        return missing("scope");
    };
    if !scope.split(' ').all(|s| s.ends_with("/.default")) {
        let message = format!(
            "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
        );
        return entra_error(ctx, 400, "invalid_scope", 1002012, &message);
    }
    let app = if let Some(assertion) = field("client_assertion") {
        if field("client_assertion_type") != Some(ASSERTION_TYPE) {
            let message = format!(
                "The request body must contain the following parameter: 'client_assertion_type' with the value '{ASSERTION_TYPE}'."
            );
            return entra_error(ctx, 400, "invalid_request", 900144, &message);
        }
        let now_unix = ctx
            .date
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let federated = super::signin::federated(assertion, now_unix);
        if let Some(Err((code, message))) = federated {
            return entra_error(ctx, 400, "invalid_client", code, &message);
        }
        let expected = Expected {
            client_id: field("client_id"),
            tenant_path: tenant,
            thumbprint: config.certificate_thumbprint.as_deref(),
            now_unix,
        };
        match federated {
            Some(Ok(())) => match field("client_id") {
                Some(id) => id.to_owned(),
                None => return missing("client_id"),
            },
            _ => match assertion::check(assertion, &expected) {
                Ok(asserted) => asserted.client_id,
                Err(r) => {
                    let status = if r.error == "invalid_client" {
                        401
                    } else {
                        400
                    };
                    return entra_error(ctx, status, r.error, r.code, &r.message);
                }
            },
        }
    } else {
        let Some(client_id) = field("client_id") else {
            return missing("client_id");
        };
        let Some(secret) = field("client_secret") else {
            let message = "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.";
            return entra_error(ctx, 401, "invalid_client", 7000218, message);
        };
        if config
            .client_secret
            .as_ref()
            .is_some_and(|expected| expected.expose() != secret)
        {
            let message = format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            );
            return entra_error(ctx, 401, "invalid_client", 7000215, &message);
        }
        client_id.to_owned()
    };
    let lifetime = config.token_lifetime;
    let access_token = store.issue_for(&app, now + lifetime, None, tid);
    let body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": access_token,
    });
    Reply::new(200, Kind::Token, Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn ctx() -> Ctx {
        Ctx {
            request_id: "r".into(),
            client_request_id: None,
            date: SystemTime::now(),
            base_url: "http://127.0.0.1:1".into(),
        }
    }

    fn code(reply: &Reply) -> u64 {
        reply
            .body
            .as_ref()
            .and_then(|b| b["error_codes"][0].as_u64())
            .unwrap_or(0)
    }

    #[test]
    fn tokens_expire_at_their_lifetime() {
        let config = SimConfig {
            token_lifetime: Duration::from_secs(60),
            ..SimConfig::default()
        };
        let store = TokenStore::default();
        let form = b"grant_type=client_credentials&client_id=app&client_secret=s&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";
        let reply = token(
            &config,
            &store,
            &Default::default(),
            &ctx(),
            &config.tenant_domain,
            form,
            Duration::from_secs(100),
        );
        assert_eq!(reply.status, 200);
        let body = reply.body.unwrap_or_default();
        assert_eq!(body["expires_in"], 60);
        let header = format!(
            "Bearer {}",
            body["access_token"].as_str().unwrap_or_default()
        );
        assert!(
            matches!(store.check(Some(&header), Duration::from_secs(159)), Bearer::Valid { ref app, .. } if &**app == "app")
        );
        assert_eq!(
            store.check(Some(&header), Duration::from_secs(160)),
            Bearer::Expired
        );
        assert_eq!(
            store.check(Some("Bearer nope"), Duration::ZERO),
            Bearer::Unknown
        );
        assert_eq!(store.check(None, Duration::ZERO), Bearer::Missing);
    }

    #[test]
    fn entra_errors_name_their_aadsts_code() {
        let config = SimConfig {
            client_secret: Some("right".into()),
            ..SimConfig::default()
        };
        assert!(
            !format!("{config:?}").contains("right"),
            "Debug must hide the secret"
        );
        let store = TokenStore::default();
        let t = config.tenant_id.clone();
        let call = |tenant: &str, form: &str| {
            token(
                &config,
                &store,
                &Default::default(),
                &ctx(),
                tenant,
                form.as_bytes(),
                Duration::ZERO,
            )
        };
        let scope = "scope=https://graph.microsoft.com/.default";
        assert_eq!(code(&call("other-tenant", "")), 90002);
        assert_eq!(code(&call(&t, scope)), 900144);
        assert_eq!(
            code(&call(&t, &format!("grant_type=password&{scope}"))),
            70003
        );
        assert_eq!(
            code(&call(
                &t,
                "grant_type=client_credentials&client_id=a&client_secret=right&scope=User.Read"
            )),
            1002012
        );
        let wrong = call(
            &t,
            &format!("grant_type=client_credentials&client_id=a&client_secret=wrong&{scope}"),
        );
        assert_eq!((wrong.status, code(&wrong)), (401, 7000215));
        let description = wrong.body.unwrap_or_default()["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(description.starts_with("AADSTS7000215: "));
        assert!(
            !description.contains("wrong"),
            "the secret must not be echoed"
        );
        assert_eq!(
            code(&call(
                &t,
                &format!("grant_type=client_credentials&client_id=a&{scope}")
            )),
            7000218
        );
        assert_eq!(
            call(
                &t,
                &format!("grant_type=client_credentials&client_id=a&client_secret=right&{scope}")
            )
            .status,
            200
        );
    }
}
