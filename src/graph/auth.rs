//! App-only access tokens for Graph, fetched before they expire and shared by every
//! worker.
//!
//! Client credentials grant
//! (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>):
//! no refresh token, so the tool simply asks again. A token is renewed when it has less
//! than [`renewal_margin`] left, so a request never leaves with a token about to expire.
//! One fetch at a time: when a token runs out under a thousand workers, one of them
//! fetches and the others wait for its result instead of stampeding the authority.
//!
//! Entra's refusals carry an `AADSTS` code; [`AuthError::Refused`] turns the common ones
//! into what the administrator has to change.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use url::Url;

use super::assertion::{SigningError, client_assertion};
use super::cloud::{EndpointError, Endpoints};
use super::credentials::{AppCredential, Identity};
use super::exchange::transport_message;
use super::secret::Secret;

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Entra answered and said no.
    #[error("sign-in refused: {sentence} ({code}, HTTP {status}{ids}); Entra ID said: {said}")]
    Refused {
        /// `AADSTS` and the number, or Entra's `error` value when there is no number.
        code: String,
        /// What to change, in the administrator's words.
        sentence: String,
        /// The first line of `error_description`.
        said: String,
        status: u16,
        /// `, trace id ..., correlation id ...` for a support case, or empty.
        ids: String,
    },
    #[error("cannot reach the sign-in endpoint {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("the sign-in endpoint {url} answered HTTP {status} without a usable token: {why}")]
    BadAnswer {
        url: String,
        status: u16,
        why: String,
    },
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

impl AuthError {
    /// True when asking again later may succeed (network trouble, Entra 5xx or 429);
    /// false when configuration must change first.
    pub fn is_transient(&self) -> bool {
        match self {
            AuthError::Unreachable { .. } => true,
            AuthError::Refused { status, .. } | AuthError::BadAnswer { status, .. } => {
                *status == 429 || *status >= 500
            }
            AuthError::Signing(_) | AuthError::Endpoint(_) => false,
        }
    }
}

/// A source of access tokens; clones share one cache.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.inner.mode {
            Mode::Ready(_) => "ready token",
            Mode::App(_) => "client credentials",
        };
        f.debug_struct("TokenSource").field("mode", &mode).finish()
    }
}

struct Inner {
    mode: Mode,
    /// The current token; a std mutex because it is held only to copy or replace it.
    cache: Mutex<Option<Cached>>,
    /// Held for the whole of a fetch, so only one is in flight; waiters then find the
    /// fresh token in `cache`.
    fetching: tokio::sync::Mutex<()>,
}

enum Mode {
    Ready(Secret),
    App(App),
}

struct App {
    /// For messages naming what to check.
    tenant: String,
    /// `client_id` of the form; also `iss`/`sub` of an assertion.
    client_id: String,
    credential: AppCredential,
    /// `{authority}{tenant}/oauth2/v2.0/token`; also an assertion's `aud`.
    token_url: Url,
    /// `{graph origin}/.default`: every application permission granted to the app.
    scope: String,
    /// Shared with the Graph calls' pooled connections.
    http: reqwest::Client,
}

struct Cached {
    token: Secret,
    /// When to fetch a new one: expiry minus [`renewal_margin`].
    renew_at: Instant,
}

/// How long before expiry a token is renewed: 5 minutes, or a tenth of its lifetime
/// when that is shorter (short-lived tokens from the simulator and tests).
pub fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    /// A number from the v2.0 endpoint; some proxies and the v1 endpoint send a string.
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct EntraError {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
    trace_id: Option<String>,
    correlation_id: Option<String>,
}

impl TokenSource {
    /// `http` is the client token requests go through (it should not follow redirects).
    pub fn new(
        identity: Identity,
        endpoints: &Endpoints,
        http: reqwest::Client,
    ) -> Result<TokenSource, AuthError> {
        let mode = match identity {
            Identity::AccessToken(token) => Mode::Ready(token),
            Identity::App {
                tenant,
                client_id,
                credential,
            } => Mode::App(App {
                token_url: endpoints.token_url(&tenant)?,
                scope: format!("{}/.default", endpoints.graph_origin()),
                tenant,
                client_id,
                credential,
                http,
            }),
        };
        Ok(TokenSource {
            inner: Arc::new(Inner {
                mode,
                cache: Mutex::new(None),
                fetching: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// False for a ready token: after a 401 there is nothing new to try.
    pub fn can_renew(&self) -> bool {
        matches!(self.inner.mode, Mode::App(_))
    }

    /// A token valid for at least the renewal margin, from the cache or fetched now.
    pub async fn token(&self) -> Result<Secret, AuthError> {
        let app = match &self.inner.mode {
            Mode::Ready(token) => return Ok(token.clone()),
            Mode::App(app) => app,
        };
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let _turn = self.inner.fetching.lock().await;
        // Whoever held the lock before us may have fetched one.
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let asked_at = Instant::now();
        let (token, lifetime) = fetch(app).await?;
        // Counted from the moment of asking: the token cannot outlive that.
        let renew_at = asked_at + lifetime - renewal_margin(lifetime);
        *self.lock_cache() = Some(Cached {
            token: token.clone(),
            renew_at,
        });
        Ok(token)
    }

    /// Forgets `token` (Graph answered 401 to it), so the next [`Self::token`] fetches.
    /// A token already replaced by another worker's renewal is left alone.
    pub fn invalidate(&self, token: &Secret) {
        let mut cache = self.lock_cache();
        if cache.as_ref().is_some_and(|c| &c.token == token) {
            *cache = None;
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        // The cache holds no invariant a panic could break half-way.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn cached(&self) -> Option<Secret> {
        self.lock_cache()
            .as_ref()
            .filter(|c| Instant::now() < c.renew_at)
            .map(|c| c.token.clone())
    }
}

/// One token request.
async fn fetch(app: &App) -> Result<(Secret, Duration), AuthError> {
    let App {
        tenant,
        client_id,
        credential,
        token_url,
        scope,
        http,
    } = app;
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", client_id.clone()),
        ("scope", scope.clone()),
    ];
    match credential {
        AppCredential::Secret(s) => form.push(("client_secret", s.expose().to_owned())),
        AppCredential::Certificate(cert) => {
            let jwt = client_assertion(cert, client_id, token_url.as_str(), SystemTime::now())?;
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ));
            form.push(("client_assertion", jwt.expose().to_owned()));
        }
    }
    let url = token_url.to_string();
    let started = Instant::now();
    let answer = http
        .post(token_url.clone())
        .form(&form)
        .send()
        .await
        .map_err(|e| AuthError::Unreachable {
            url: url.clone(),
            why: transport_message(&e),
        })?;
    drop(form);
    let status = answer.status().as_u16();
    let body = answer.text().await.map_err(|e| AuthError::Unreachable {
        url: url.clone(),
        why: transport_message(&e),
    })?;
    tracing::debug!(
        method = "POST",
        url = %url,
        status,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "token request"
    );
    if !(200..300).contains(&status) {
        return Err(refusal(status, &body, &url, tenant, client_id, credential));
    }
    let bad = |why: &str| AuthError::BadAnswer {
        url: url.clone(),
        status,
        why: why.to_owned(),
    };
    let answer: TokenAnswer =
        serde_json::from_str(&body).map_err(|_| bad("the answer is not JSON"))?;
    let token = answer
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no access_token in the answer"))?;
    let seconds = match answer.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|s| *s > 0)
    .ok_or_else(|| bad("no usable expires_in in the answer"))?;
    Ok((Secret::new(token), Duration::from_secs(seconds)))
}

/// Turns Entra's error answer into a sentence naming what to fix.
fn refusal(
    status: u16,
    body: &str,
    url: &str,
    tenant: &str,
    client_id: &str,
    credential: &AppCredential,
) -> AuthError {
    let Ok(e) = serde_json::from_str::<EntraError>(body) else {
        return AuthError::BadAnswer {
            url: url.to_owned(),
            status,
            why: "the answer is not an Entra ID error document".into(),
        };
    };
    let description = e.error_description.unwrap_or_default();
    let number = e
        .error_codes
        .first()
        .copied()
        .or_else(|| aadsts_in(&description));
    let code = match (number, &e.error) {
        (Some(n), _) => format!("AADSTS{n}"),
        (None, Some(err)) => err.clone(),
        (None, None) => "no error code".into(),
    };
    let credential_name = match credential {
        AppCredential::Secret(_) => "AZURE_CLIENT_SECRET".to_owned(),
        AppCredential::Certificate(c) => format!("the certificate {}", c.path.display()),
    };
    let sentence = match number {
        Some(7000215) => "the client secret is wrong: set AZURE_CLIENT_SECRET to the secret's \
             Value (not its Secret ID) from the app registration's Certificates & secrets"
            .to_owned(),
        Some(7000222) => "the client secret has expired: create a new one under the app \
             registration's Certificates & secrets and update AZURE_CLIENT_SECRET"
            .to_owned(),
        Some(90002) | Some(900023) => format!(
            "tenant '{tenant}' does not exist in this cloud: check --tenant / AZURE_TENANT_ID \
             and --cloud"
        ),
        Some(700016) => format!(
            "application '{client_id}' was not found in tenant '{tenant}': check --client-id / \
             AZURE_CLIENT_ID, and that the app is registered in (or consented to by) this tenant"
        ),
        Some(700027) => format!(
            "the client assertion signed with {credential_name} was not accepted: upload that \
             certificate (its public part) to the app registration's Certificates & secrets, \
             or point AZURE_CLIENT_CERTIFICATE_PATH at the certificate that is registered"
        ),
        Some(700024) => "the client assertion is outside its valid time: check this \
             machine's clock"
            .to_owned(),
        Some(65001) => format!(
            "application '{client_id}' has no admin consent in tenant '{tenant}': grant admin \
             consent for its Microsoft Graph application permissions"
        ),
        Some(500011) => "Microsoft Graph is not known as a resource in this tenant or cloud: \
             check --cloud and --graph-url, and that the app has Microsoft Graph permissions \
             with admin consent"
            .to_owned(),
        Some(7000112) => {
            format!("application '{client_id}' is disabled in tenant '{tenant}'")
        }
        _ => format!(
            "check the tenant, client id and {credential_name} (Entra error '{}')",
            e.error.as_deref().unwrap_or("unknown")
        ),
    };
    let said = description.lines().next().unwrap_or("").trim().to_owned();
    let mut ids = String::new();
    if let Some(t) = e.trace_id {
        ids.push_str(&format!(", trace id {t}"));
    }
    if let Some(c) = e.correlation_id {
        ids.push_str(&format!(", correlation id {c}"));
    }
    AuthError::Refused {
        code,
        sentence,
        said,
        status,
        ids,
    }
}

/// The number in the first `AADSTS<digits>` of a description.
fn aadsts_in(text: &str) -> Option<u64> {
    let at = text.find("AADSTS")? + "AADSTS".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
