//! Access tokens for Graph, fetched before they expire and shared by every worker:
//! app-only (client credentials), delegated (renewed with the refresh token of an
//! interactive sign-in, see [`super::interactive`]) and managed identities (see
//! [`super::managed`]).
//!
//! Client credentials grant
//! (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>):
//! no refresh token, so the tool simply asks again. A token is renewed when it has less
//! than [`renewal_margin`] left, so a request never leaves with a token about to expire.
//! One fetch at a time: when a token runs out under a thousand workers, one of them
//! fetches and the others wait for its result instead of stampeding the authority.
//!
//! Entra's refusals carry an `AADSTS` code; [`AuthError::Refused`] turns the common ones
//! into what the administrator has to change. Answers that usually pass (429, 5xx, a
//! dropped connection) are asked again ([`super::token_retry`]) and, when they outlast
//! the retries, end as [`AuthError::Outage`], which names the outage, not the secret.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use serde::Deserialize;
use url::Url;

use super::assertion::{SigningError, client_assertion};
use super::cloud::{EndpointError, Endpoints};
use super::credentials::{AppCredential, ENV_ACCESS_TOKEN, Identity, read_federated_token};
use super::exchange::transport_message;
use super::interactive::SignInUi;
use super::secret::Secret;
use super::token_retry::{
    Attempt, Failed, GaveUp, Passing, TokenRetry, Transient, human, retrying,
};

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
    /// The token endpoint kept answering 429 or 5xx, or kept giving no answer, until
    /// the retries ran out.
    #[error("{}", outage_sentence(url, gave_up))]
    Outage { url: String, gave_up: GaveUp },
    /// Graph answered 401 to the token from `INTUNE_RESET_ACCESS_TOKEN`, which cannot be
    /// renewed.
    #[error(
        "Microsoft Graph refused the token given in {ENV_ACCESS_TOKEN} ({said}): it has \
         expired or was issued for another tenant or audience; get a new one for {audience} \
         (e.g. `az account get-access-token --resource {audience} --query accessToken -o tsv`) \
         and set {ENV_ACCESS_TOKEN} again, or sign in with a client secret or certificate, \
         whose tokens are renewed"
    )]
    ReadyTokenRefused {
        /// The Graph origin the token must be for.
        audience: String,
        /// Graph's message.
        said: String,
    },
    #[error("the sign-in endpoint {url} answered HTTP {status} without a usable token: {why}")]
    BadAnswer {
        url: String,
        status: u16,
        why: String,
    },
    /// The interactive sign-in did not complete: declined, expired, or its answer
    /// could not be trusted.
    #[error("sign-in not completed: {0}")]
    NotSignedIn(String),
    /// A credential file could not be read when a token was asked for.
    #[error("{0}")]
    Credential(String),
    /// The managed identity endpoint did not give a token.
    #[error("{0}")]
    Managed(String),
    /// The token holds a character an HTTP header cannot carry (a line break): it is
    /// refused before any request is sent with it.
    #[error("{0}")]
    UnusableToken(String),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

impl AuthError {
    /// True when asking again later may succeed (network trouble, Entra 5xx or 429);
    /// false when configuration must change first. [`TokenSource::token`] has already
    /// asked again for about a minute before returning a transient error.
    pub fn is_transient(&self) -> bool {
        match self {
            AuthError::Outage { .. } => true,
            AuthError::Refused { status, .. } | AuthError::BadAnswer { status, .. } => {
                Passing::from_status(*status).is_some()
            }
            AuthError::ReadyTokenRefused { .. }
            | AuthError::NotSignedIn(_)
            | AuthError::Credential(_)
            | AuthError::Managed(_)
            | AuthError::UnusableToken(_)
            | AuthError::Signing(_)
            | AuthError::Endpoint(_) => false,
        }
    }
}

/// One sentence naming the outage and what to do, never the credentials: they were not
/// the problem.
fn outage_sentence(url: &str, g: &GaveUp) -> String {
    let times = match g.attempts {
        1 => "once".to_owned(),
        2 => "twice".to_owned(),
        n => format!("{n} times"),
    };
    let over = human(g.over);
    let what = g.last.describe();
    let story = match (&g.last, g.all_alike) {
        (Passing::Network { .. }, true) => {
            format!("the token endpoint {url} gave {what} {times} over {over}")
        }
        (_, true) => format!("the token endpoint {url} answered {what} {times} over {over}"),
        (_, false) => format!(
            "the token endpoint {url} failed {times} over {over}, the last time with {what}"
        ),
    };
    let asked = match g.asked_to_wait {
        Some(w) => format!(" and asked to wait {} more", human(w)),
        None => String::new(),
    };
    let advice = match &g.last {
        Passing::Throttled => {
            "Entra ID is throttling this app's sign-ins: wait a few minutes and try again"
        }
        Passing::Unavailable(_) => "Entra ID may be having an outage: try again later",
        Passing::Network { .. } => {
            "check this machine's network, proxy (HTTPS_PROXY) and --authority-url, or try \
             again later if Entra ID is having an outage"
        }
    };
    format!("{story}{asked}; {advice}")
}

/// A source of access tokens; clones share one cache.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.inner.mode {
            Mode::Ready { .. } => "ready token",
            Mode::App(_) => "client credentials",
            Mode::Delegated(_) => "delegated",
            Mode::Managed(_) => "managed identity",
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
    /// How often and how long to ask again after an answer that may pass.
    retry: TokenRetry,
}

enum Mode {
    Ready {
        token: Secret,
        /// The Graph origin, for the message when Graph refuses the token.
        audience: String,
    },
    App(App),
    Delegated(super::interactive::Delegated),
    Managed(super::managed::Managed),
}

pub(super) struct App {
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
    /// When it stops working: until then it serves while a renewal is under way or
    /// after a renewal failed.
    expires_at: Instant,
}

/// How long before expiry a token is renewed: 5 minutes, or a tenth of its lifetime
/// when that is shorter (short-lived tokens from the simulator and tests).
pub fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

#[derive(Deserialize)]
pub(super) struct TokenAnswer {
    access_token: Option<String>,
    /// A number from the v2.0 endpoint; some proxies and the v1 endpoint send a string.
    expires_in: Option<serde_json::Value>,
    /// Managed identity endpoints: the expiry as Unix seconds, a string.
    expires_on: Option<serde_json::Value>,
    /// Delegated sign-ins with `offline_access`.
    refresh_token: Option<String>,
    /// Delegated sign-ins with `openid`: who signed in.
    id_token: Option<String>,
}

/// A token as the endpoint gave it.
pub(super) struct Fetched {
    pub token: Secret,
    pub lifetime: Duration,
    /// A new refresh token (delegated); it replaces the old one.
    pub refresh: Option<Secret>,
    /// The ID token's claims (delegated), for naming who signed in.
    pub id_token: Option<Secret>,
}

#[derive(Deserialize, Default)]
pub(super) struct EntraError {
    pub(super) error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    pub(super) error_codes: Vec<u64>,
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
            Identity::AccessToken(token) => Mode::Ready {
                token,
                audience: endpoints.graph_origin().to_string(),
            },
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
            Identity::Delegated {
                tenant,
                client_id,
                flow,
            } => Mode::Delegated(super::interactive::Delegated::new(
                endpoints, tenant, client_id, flow, http,
            )?),
            Identity::Managed(managed) => Mode::Managed(super::managed::Managed::new(
                managed,
                endpoints.graph_origin(),
                endpoints.graph.clone(),
            )?),
        };
        Ok(TokenSource {
            inner: Arc::new(Inner {
                mode,
                cache: Mutex::new(None),
                fetching: tokio::sync::Mutex::new(()),
                retry: TokenRetry::default(),
            }),
        })
    }

    /// For a 401 from Graph: the error that ends the run when the refused token was a
    /// ready one (nothing new can be fetched), or `None` when a renewal may help.
    /// `said` is Graph's message.
    pub fn refused_ready_token(&self, said: &str) -> Option<AuthError> {
        match &self.inner.mode {
            Mode::Ready { audience, .. } => Some(AuthError::ReadyTokenRefused {
                audience: audience.clone(),
                said: said.to_owned(),
            }),
            _ => None,
        }
    }

    /// The delegated sign-in's state (its refresh token, who signed in), when this is a
    /// delegated identity.
    pub(super) fn delegated(&self) -> Option<&super::interactive::Delegated> {
        match &self.inner.mode {
            Mode::Delegated(d) => Some(d),
            _ => None,
        }
    }

    /// A user signed in, not an app: a 403 that names no permission means the user's
    /// Intune role does not allow the action.
    pub fn is_delegated(&self) -> bool {
        matches!(self.inner.mode, Mode::Delegated(_))
    }

    /// The interactive sign-in of a delegated identity: its first token goes in the
    /// cache; renewals use its refresh token. Other identities just fetch a token.
    pub async fn sign_in_interactively(&self, ui: &SignInUi) -> Result<Secret, AuthError> {
        let Mode::Delegated(delegated) = &self.inner.mode else {
            return self.token().await;
        };
        let _turn = self.inner.fetching.lock().await;
        let asked_at = Instant::now();
        let (token, lifetime) = delegated.sign_in(ui).await?;
        let expires_at = asked_at + lifetime;
        *self.lock_cache() = Some(Cached {
            token: token.clone(),
            renew_at: expires_at - renewal_margin(lifetime),
            expires_at,
        });
        Ok(token)
    }

    /// A token valid for at least the renewal margin, from the cache or fetched now
    /// (asking again after answers that may pass; see [`super::token_retry`]).
    pub async fn token(&self) -> Result<Secret, AuthError> {
        if let Mode::Ready { token, .. } = &self.inner.mode {
            return self.authorization(token).map(|_| token.clone());
        }
        if let Some(token) = self.cached(|c| c.renew_at) {
            return Ok(token);
        }
        let _turn = match self.inner.fetching.try_lock() {
            Ok(turn) => turn,
            Err(_) => {
                // Another worker is renewing, perhaps through a minute of retries: the
                // old token serves until it expires.
                if let Some(token) = self.cached(|c| c.expires_at) {
                    return Ok(token);
                }
                self.inner.fetching.lock().await
            }
        };
        // Whoever held the lock before us may have fetched one.
        if let Some(token) = self.cached(|c| c.renew_at) {
            return Ok(token);
        }
        let asked_at = Instant::now();
        let (token, lifetime) = match fetch(&self.inner.mode, &self.inner.retry).await {
            Ok(fetched) => fetched,
            Err(e) => {
                if let Some(token) = self.cached(|c| c.expires_at) {
                    tracing::warn!(
                        "renewing the access token failed; the current one still serves until it expires: {e}"
                    );
                    return Ok(token);
                }
                return Err(e);
            }
        };
        self.authorization(&token)?;
        // Counted from the moment of asking: the token cannot outlive that.
        let expires_at = asked_at + lifetime;
        *self.lock_cache() = Some(Cached {
            token: token.clone(),
            renew_at: expires_at - renewal_margin(lifetime),
            expires_at,
        });
        Ok(token)
    }

    /// `Authorization: Bearer <token>`'s value, or the sign-in error for a token a
    /// header cannot carry: a line break, or another control character (RFC 9110,
    /// section 5.5). Checked here, before a request is built: reqwest's `bearer_auth`
    /// defers the failure to `send`, where it reads like a connection lost after the
    /// request went out, and a reset would wait to be settled that was never sent.
    pub(super) fn authorization(
        &self,
        token: &Secret,
    ) -> Result<reqwest::header::HeaderValue, AuthError> {
        let mut value =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(
                |_| {
                    AuthError::UnusableToken(match &self.inner.mode {
                        Mode::Ready { .. } => format!(
                            "the token given in {ENV_ACCESS_TOKEN} holds a line break or another \
                             character an HTTP header cannot carry: set it again to the token \
                             alone, on one line; nothing was sent"
                        ),
                        _ => "the access token the sign-in gave holds a line break or another \
                              character an HTTP header cannot carry; nothing was sent with it"
                            .to_owned(),
                    })
                },
            )?;
        // Kept out of reqwest's and hyper's debug output.
        value.set_sensitive(true);
        Ok(value)
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

    /// The cached token while `now` is before the instant `until` picks.
    fn cached(&self, until: impl Fn(&Cached) -> Instant) -> Option<Secret> {
        self.lock_cache()
            .as_ref()
            .filter(|c| Instant::now() < until(c))
            .map(|c| c.token.clone())
    }
}

/// A token, asking again after answers that may pass.
async fn fetch(mode: &Mode, retry: &TokenRetry) -> Result<(Secret, Duration), AuthError> {
    let url = match mode {
        Mode::Ready { token, .. } => return Ok((token.clone(), Duration::from_secs(3600))),
        Mode::App(app) => app.token_url.to_string(),
        Mode::Delegated(d) => d.token_url().to_string(),
        Mode::Managed(m) => m.url().to_string(),
    };
    let attempt = || async {
        let result = match mode {
            Mode::App(app) => request_token(app).await,
            Mode::Delegated(d) => d.refresh().await,
            Mode::Managed(m) => m.request().await,
            Mode::Ready { token, .. } => Ok((token.clone(), Duration::from_secs(3600))),
        };
        match result {
            Ok(fetched) => Attempt::Done(fetched),
            Err(Try::Final(e)) => Attempt::Final(e),
            Err(Try::Again(t)) => Attempt::Again(t),
        }
    };
    match retrying(retry, attempt).await {
        Ok(fetched) => Ok(fetched),
        Err(Failed::Final(e)) => Err(e),
        Err(Failed::GaveUp(gave_up)) => Err(AuthError::Outage { url, gave_up }),
    }
}

/// How one request failed.
pub(super) enum Try {
    Final(AuthError),
    Again(Transient),
}

impl From<AuthError> for Try {
    fn from(e: AuthError) -> Try {
        Try::Final(e)
    }
}

pub(super) fn network(e: &reqwest::Error) -> Try {
    Try::Again(Transient {
        cause: Passing::Network {
            why: transport_message(e),
        },
        retry_after: None,
    })
}

async fn request_token(app: &App) -> Result<(Secret, Duration), Try> {
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
    let credential_name = match credential {
        AppCredential::Secret(s) => {
            form.push(("client_secret", s.expose().to_owned()));
            "AZURE_CLIENT_SECRET".to_owned()
        }
        AppCredential::Certificate(cert) => {
            let jwt = client_assertion(cert, client_id, token_url.as_str(), SystemTime::now())
                .map_err(AuthError::from)?;
            form.push(("client_assertion_type", JWT_BEARER.into()));
            form.push(("client_assertion", jwt.expose().to_owned()));
            format!("the certificate {}", cert.path.display())
        }
        AppCredential::Federated(path) => {
            // Read afresh each time: the file is rotated by the platform that writes it.
            let token =
                read_federated_token(path).map_err(|e| AuthError::Credential(e.to_string()))?;
            form.push(("client_assertion_type", JWT_BEARER.into()));
            form.push(("client_assertion", token.expose().to_owned()));
            format!("the federated token in {}", path.display())
        }
    };
    let who = Who {
        tenant,
        client_id,
        credential: credential_name,
        delegated: false,
    };
    let fetched = post_token(http, token_url, form, &who).await?;
    Ok((fetched.token, fetched.lifetime))
}

/// `client_assertion_type` of a signed JWT or a federated token.
pub(super) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Who asked, for a refusal's sentence.
pub(super) struct Who<'a> {
    pub tenant: &'a str,
    pub client_id: &'a str,
    /// What proved the identity, as the administrator knows it.
    pub credential: String,
    /// A user's sign-in through a public client, not an app's.
    pub delegated: bool,
}

/// One POST to a token endpoint, its answer sorted: a token, an answer worth asking
/// again, or Entra's refusal as a sentence. The form is dropped as soon as it is sent.
pub(super) async fn post_token(
    http: &reqwest::Client,
    token_url: &Url,
    form: Vec<(&str, String)>,
    who: &Who<'_>,
) -> Result<Fetched, Try> {
    let url = token_url.to_string();
    let (status, body) = post_form(http, token_url, form).await?;
    if !(200..300).contains(&status) {
        return Err(refusal(status, &body, &url, who).into());
    }
    parse_answer(&url, status, &body).map_err(Try::Final)
}

/// A form POSTed to an Entra endpoint: the status and body of an answer that did not
/// say "ask again" (429, 5xx and transport failures are [`Try::Again`]).
pub(super) async fn post_form(
    http: &reqwest::Client,
    url: &Url,
    form: Vec<(&str, String)>,
) -> Result<(u16, String), Try> {
    // Tests on tokio's paused clock answer here, without a socket (issue 18).
    #[cfg(test)]
    if let Some(answered) = super::test_server::answer_in_memory(url, &form).await {
        let (status, headers, body) = answered.map_err(|why| {
            Try::Again(Transient {
                cause: Passing::Network { why },
                retry_after: None,
            })
        })?;
        let retry_after = headers
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
            .map(|(_, value)| value);
        return sorted(status, retry_after, body);
    }
    let started = Instant::now();
    // A connection that could not be opened, broke, or timed out: nothing changes in
    // the tenant when a token request is repeated, so all of them are asked again.
    let answer = http
        .post(url.clone())
        .form(&form)
        .send()
        .await
        .map_err(|e| network(&e))?;
    drop(form);
    let status = answer.status().as_u16();
    let retry_after = answer
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = answer.text().await.map_err(|e| network(&e))?;
    tracing::debug!(
        method = "POST",
        url = %url,
        status,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "token request"
    );
    sorted(status, retry_after, body)
}

/// An answer that says "ask again" (429, 5xx) as [`Try::Again`]; any other as it came.
fn sorted(status: u16, retry_after: Option<String>, body: String) -> Result<(u16, String), Try> {
    if let Some(cause) = Passing::from_status(status) {
        // Whatever the body says (Entra may add an AADSTS code), the status says the
        // service, not the request, failed.
        return Err(Try::Again(Transient::answered(
            cause,
            retry_after.as_deref(),
        )));
    }
    Ok((status, body))
}

/// A 2xx token answer: the token, its lifetime (`expires_in`, or `expires_on` from a
/// managed identity endpoint), and the refresh and ID tokens of a delegated sign-in.
pub(super) fn parse_answer(url: &str, status: u16, body: &str) -> Result<Fetched, AuthError> {
    let bad = |why: &str| AuthError::BadAnswer {
        url: url.to_owned(),
        status,
        why: why.to_owned(),
    };
    let answer: TokenAnswer =
        serde_json::from_str(body).map_err(|_| bad("the answer is not JSON"))?;
    let token = answer
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no access_token in the answer"))?;
    let number = |v: &Option<serde_json::Value>| match v {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let seconds = number(&answer.expires_in)
        .or_else(|| {
            let on = number(&answer.expires_on)?;
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?
                .as_secs();
            on.checked_sub(now)
        })
        .filter(|s| *s > 0)
        .ok_or_else(|| bad("no usable expires_in in the answer"))?;
    Ok(Fetched {
        token: Secret::new(token),
        lifetime: Duration::from_secs(seconds),
        refresh: answer
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        id_token: answer.id_token.filter(|t| !t.is_empty()).map(Secret::new),
    })
}

/// Turns Entra's error answer into a sentence naming what to fix.
pub(super) fn refusal(status: u16, body: &str, url: &str, who: &Who<'_>) -> AuthError {
    let Who {
        tenant,
        client_id,
        credential: credential_name,
        delegated,
    } = who;
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
        (None, Some(err)) => super::scrub::scrub(err),
        (None, None) => "no error code".into(),
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
        Some(65001) if *delegated => format!(
            "application '{client_id}' has no consent for its delegated permissions in this \
             tenant: an administrator grants admin consent (Entra admin center > App \
             registrations > API permissions) for the Microsoft Graph delegated permissions \
             DeviceManagementManagedDevices.PrivilegedOperations.All and \
             DeviceManagementManagedDevices.Read.All"
        ),
        Some(65001) => format!(
            "application '{client_id}' has no admin consent in tenant '{tenant}': grant admin \
             consent for its Microsoft Graph application permissions"
        ),
        Some(53003) => "Conditional Access blocked this sign-in: sign in from a device, \
             location and app your organisation's policies allow (ask your Entra \
             administrator which policy applies; the sign-in logs name it), or, if device \
             code sign-in is blocked, use --auth browser"
            .to_owned(),
        Some(50076) | Some(50079) if *delegated => "multi-factor authentication is required \
             and this sign-in did not complete it: sign in again and complete it when asked \
             (an earlier sign-in no longer satisfies your organisation's policy); if the \
             device code page cannot offer your verification method, use --auth browser"
            .to_owned(),
        Some(50076) | Some(50079) => "multi-factor authentication is required: sign in \
             interactively (--auth browser or --auth device-code) and complete MFA; an \
             app-only sign-in is not subject to it"
            .to_owned(),
        Some(7000218) if *delegated => format!(
            "application '{client_id}' is not a public client: turn on \"Allow public client \
             flows\" under its Authentication settings in the Entra admin center"
        ),
        Some(50011) | Some(500113) => format!(
            "the redirect URI is not registered on application '{client_id}': add \
             http://localhost under Authentication > Mobile and desktop applications"
        ),
        Some(70008) | Some(700082) | Some(700084) | Some(50173) => "the sign-in has \
             expired or was revoked: run the command again to sign in again"
            .to_owned(),
        Some(500011) => "Microsoft Graph is not known as a resource in this tenant or cloud: \
             check --cloud and --graph-url, and that the app has Microsoft Graph permissions \
             with admin consent"
            .to_owned(),
        Some(7000112) => {
            format!("application '{client_id}' is disabled in tenant '{tenant}'")
        }
        _ => format!(
            "check the tenant, client id and {credential_name} (Entra error '{}')",
            super::scrub::scrub(e.error.as_deref().unwrap_or("unknown"))
        ),
    };
    // Entra's description may quote what it was sent (a code, an assertion).
    let said = super::scrub::scrub(description.lines().next().unwrap_or("").trim());
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
