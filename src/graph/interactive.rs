//! Delegated sign-in: an administrator signs in with their own account through their
//! own public client app registration, and the tokens carry their Intune role.
//!
//! - `device-code` (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>):
//!   the instruction goes to stderr, so it works without a terminal or a browser on
//!   this machine; the token endpoint is polled at the interval Entra gives.
//! - `browser` (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow>):
//!   the authorization code flow with PKCE (S256), answered to a listener on
//!   `127.0.0.1` with a random port; the redirect URI is `http://localhost:{port}`,
//!   which matches an app registration's `http://localhost` whatever the port.
//!
//! Scopes include `offline_access`, so a refresh token renews the access token before
//! it expires and after a 401, and a run can last hours. The refresh token lives in
//! this process's memory only; nothing here is ever written to disk or logged.

use std::net::Ipv4Addr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use rand::Rng;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;
use url::Url;

use super::auth::{
    AuthError, EntraError, Fetched, Try, Who, parse_answer, post_form, post_token, refusal,
};
use super::claims::{SignedInUser, jwt_claims};
use super::cloud::{EndpointError, Endpoints};
use super::credentials::Interactive;
use super::secret::Secret;
use super::token_retry::{Attempt, Failed, TokenRetry, retrying};

/// Opens the system browser at a URL; true when an opener started.
pub type BrowserOpener = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// What the person signing in sees and uses, given by the command line.
pub struct SignInUi {
    /// Writes a line for the person signing in (stderr, whatever the log settings).
    pub say: Box<dyn Fn(&str) + Send + Sync>,
    /// Opens the system browser at a URL; `None` when there is nobody to open it for.
    pub open_browser: Option<BrowserOpener>,
    /// How long the browser sign-in waits for its answer.
    pub browser_wait: Duration,
}

impl SignInUi {
    /// Says nothing and opens nothing: for app-only sign-ins and tests.
    pub fn silent() -> SignInUi {
        SignInUi {
            say: Box::new(|_| {}),
            open_browser: None,
            browser_wait: Duration::from_secs(300),
        }
    }
}

/// A delegated identity's state: where to ask, and the refresh token once signed in.
pub struct Delegated {
    tenant: String,
    client_id: String,
    flow: Interactive,
    /// `{authority}` base, for the device code and authorize endpoints.
    authority: Url,
    token_url: Url,
    /// Space-separated: `openid profile offline_access` and the two Graph permissions.
    scopes: String,
    http: reqwest::Client,
    refresh: Mutex<Option<Secret>>,
    user: Mutex<Option<SignedInUser>>,
}

/// The delegated permissions a run needs (reads to find devices, the reset itself).
pub const DELEGATED_PERMISSIONS: [&str; 2] = [
    "DeviceManagementManagedDevices.PrivilegedOperations.All",
    "DeviceManagementManagedDevices.Read.All",
];

impl Delegated {
    pub fn new(
        endpoints: &Endpoints,
        tenant: String,
        client_id: String,
        flow: Interactive,
        http: reqwest::Client,
    ) -> Result<Delegated, EndpointError> {
        let origin = endpoints.graph_origin();
        let mut scopes = vec![
            "openid".to_owned(),
            "profile".into(),
            "offline_access".into(),
        ];
        scopes.extend(
            DELEGATED_PERMISSIONS
                .iter()
                .map(|p| format!("{origin}/{p}")),
        );
        Ok(Delegated {
            token_url: endpoints.token_url(&tenant)?,
            authority: endpoints.authority.clone(),
            tenant,
            client_id,
            flow,
            scopes: scopes.join(" "),
            http,
            refresh: Mutex::new(None),
            user: Mutex::new(None),
        })
    }

    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    pub fn flow(&self) -> Interactive {
        self.flow
    }

    /// The refresh token of this sign-in, to reuse at another tenant's authority.
    pub fn refresh_token(&self) -> Option<Secret> {
        self.refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Starts from `refresh`, an earlier sign-in's refresh token of the same app and
    /// account: [`Self::sign_in`] redeems it before asking.
    pub fn reuse(&self, refresh: Secret) {
        *self.refresh.lock().unwrap_or_else(PoisonError::into_inner) = Some(refresh);
    }

    fn has_refresh_token(&self) -> bool {
        self.refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Who signed in, from the ID token.
    pub fn user(&self) -> Option<SignedInUser> {
        self.user
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn who(&self) -> Who<'_> {
        Who {
            tenant: &self.tenant,
            client_id: &self.client_id,
            credential: "your sign-in".into(),
            delegated: true,
        }
    }

    fn endpoint(&self, name: &str) -> Result<Url, AuthError> {
        self.authority
            .join(&format!("{}/oauth2/v2.0/{name}", self.tenant))
            .map_err(|e| {
                AuthError::Endpoint(EndpointError::NotAUrl {
                    flag: "--tenant",
                    value: self.tenant.clone(),
                    why: e.to_string(),
                })
            })
    }

    /// A new access token from the refresh token; a rotated refresh token replaces
    /// the old one.
    pub(super) async fn refresh(&self) -> Result<(Secret, Duration), Try> {
        let current = self
            .refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(refresh) = current else {
            return Err(Try::Final(AuthError::NotSignedIn(
                "the access token expired and Entra ID issued no refresh token to renew it \
                 (is offline_access allowed for the app?): run the command again to sign in"
                    .into(),
            )));
        };
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("client_id", self.client_id.clone()),
            ("refresh_token", refresh.expose().to_owned()),
            ("scope", self.scopes.clone()),
        ];
        let fetched = post_token(&self.http, &self.token_url, form, &self.who()).await?;
        self.keep(&fetched);
        Ok((fetched.token, fetched.lifetime))
    }

    /// Keeps what a token answer brought besides the access token.
    fn keep(&self, fetched: &Fetched) {
        if let Some(refresh) = &fetched.refresh {
            *self.refresh.lock().unwrap_or_else(PoisonError::into_inner) = Some(refresh.clone());
        }
        if let Some(claims) = fetched
            .id_token
            .as_ref()
            .and_then(|t| jwt_claims(t.expose()))
        {
            *self.user.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(SignedInUser::from_claims(&claims));
        }
    }

    /// The interactive sign-in; its first token is returned, the refresh token and
    /// the user are kept.
    pub(super) async fn sign_in(&self, ui: &SignInUi) -> Result<(Secret, Duration), AuthError> {
        // An earlier sign-in's refresh token, at this tenant's authority (a run across
        // several tenants): Entra redeems it where the account may act, and the
        // technician is not asked again. Where it does not, the sign-in asks.
        if self.has_refresh_token() {
            match self.refresh().await {
                Ok(fetched) => return Ok(fetched),
                Err(failed) => {
                    let why = match failed {
                        Try::Final(e) => e.to_string(),
                        Try::Again(_) => "Entra ID did not answer in time".to_owned(),
                    };
                    tracing::info!(
                        "the earlier sign-in does not reach tenant {} ({why}); signing in there",
                        self.tenant
                    );
                    *self.refresh.lock().unwrap_or_else(PoisonError::into_inner) = None;
                }
            }
        }
        let fetched = match self.flow {
            Interactive::DeviceCode => self.device_code(ui).await?,
            Interactive::Browser => self.browser(ui).await?,
        };
        self.keep(&fetched);
        Ok((fetched.token, fetched.lifetime))
    }

    async fn device_code(&self, ui: &SignInUi) -> Result<Fetched, AuthError> {
        let url = self.endpoint("devicecode")?;
        let form = || {
            vec![
                ("client_id", self.client_id.clone()),
                ("scope", self.scopes.clone()),
            ]
        };
        let (status, body) = with_retries(&url, || post_form(&self.http, &url, form())).await?;
        if !(200..300).contains(&status) {
            return Err(refusal(status, &body, url.as_str(), &self.who()));
        }
        let mut grant: DeviceCodeGrant =
            serde_json::from_str(&body).map_err(|_| AuthError::BadAnswer {
                url: url.to_string(),
                status,
                why: "the answer is not a device code grant".into(),
            })?;
        let device_code = Secret::new(std::mem::take(&mut grant.device_code));
        let instruction = grant.message.clone().unwrap_or_else(|| {
            format!(
                "To sign in, open {} in a browser on any device and enter the code {}",
                grant.verification_uri, grant.user_code
            )
        });
        (ui.say)(&instruction);
        let lifetime = Duration::from_secs(grant.expires_in.unwrap_or(900).max(1));
        let deadline = Instant::now() + lifetime;
        let now = std::time::SystemTime::now();
        tracing::info!(
            "waiting for the sign-in {}",
            crate::until::until_text(now + lifetime, now)
        );
        let mut interval = Duration::from_secs(grant.interval.unwrap_or(5).max(1));
        let expired = || {
            AuthError::NotSignedIn(format!(
                "the code expired before the sign-in was completed (it is valid for {}): run \
                 the command again and finish signing in within that time",
                minutes(lifetime)
            ))
        };
        loop {
            tokio::time::sleep(interval).await;
            if Instant::now() >= deadline {
                return Err(expired());
            }
            let form = vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:device_code".to_owned(),
                ),
                ("client_id", self.client_id.clone()),
                ("device_code", device_code.expose().to_owned()),
            ];
            let (status, body) = match post_form(&self.http, &self.token_url, form).await {
                Ok(answer) => answer,
                // A lost poll is simply made again at the next interval.
                Err(Try::Again(_)) => continue,
                Err(Try::Final(e)) => return Err(e),
            };
            if (200..300).contains(&status) {
                return parse_answer(self.token_url.as_str(), status, &body);
            }
            let entra = serde_json::from_str::<EntraError>(&body).unwrap_or_default();
            // Conditional Access, MFA and consent may come as access_denied too: their
            // AADSTS number gets its own sentence.
            let policy = entra
                .error_codes
                .iter()
                .any(|c| matches!(c, 53000..=53004 | 50076 | 50079 | 50158 | 65001));
            let error = entra.error.unwrap_or_default();
            match error.as_str() {
                "authorization_pending" => {}
                "slow_down" => {
                    interval += Duration::from_secs(5);
                    (ui.say)(&format!(
                        "Entra ID asked to be polled more slowly: checking every {} s",
                        interval.as_secs()
                    ));
                }
                "expired_token" => return Err(expired()),
                "authorization_declined" | "access_denied" if !policy => {
                    return Err(AuthError::NotSignedIn(
                        "the sign-in was declined on the verification page: nothing was \
                         sent; run the command again and accept the sign-in if it was yours"
                            .into(),
                    ));
                }
                "bad_verification_code" => {
                    return Err(AuthError::NotSignedIn(
                        "Entra ID did not recognise this sign-in's device code: run the \
                         command again"
                            .into(),
                    ));
                }
                _ => return Err(refusal(status, &body, self.token_url.as_str(), &self.who())),
            }
        }
    }

    async fn browser(&self, ui: &SignInUi) -> Result<Fetched, AuthError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| {
                AuthError::NotSignedIn(format!(
                    "cannot listen on 127.0.0.1 for the browser's answer ({e}); use --auth \
                     device-code"
                ))
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| AuthError::NotSignedIn(format!("cannot listen on 127.0.0.1: {e}")))?
            .port();
        let redirect_uri = format!("http://localhost:{port}");
        let verifier = Secret::new(random_text(64));
        let challenge = pkce_challenge(verifier.expose());
        let state = random_text(32);
        let mut url = self.endpoint("authorize")?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", &self.scopes)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("prompt", "select_account");
        let opened = ui
            .open_browser
            .as_ref()
            .is_some_and(|open| open(url.as_str()));
        (ui.say)(&if opened {
            format!(
                "Sign in in the browser window that opened. If none did, open this address:\n  {url}"
            )
        } else {
            format!("To sign in, open this address in a browser on this machine:\n  {url}")
        });
        let now = std::time::SystemTime::now();
        tracing::info!(
            "waiting for the sign-in {}",
            crate::until::until_text(now + ui.browser_wait, now)
        );
        let answer = tokio::time::timeout(ui.browser_wait, receive(&listener, &state))
            .await
            .map_err(|_| {
                AuthError::NotSignedIn(format!(
                    "no sign-in arrived within {}: run the command again, or use --auth \
                     device-code when no browser on this machine can be used",
                    minutes(ui.browser_wait)
                ))
            })??;
        // `receive` hands over only an answer with this state; checked again where the
        // answer is used.
        if answer.state.as_deref() != Some(state.as_str()) {
            return Err(AuthError::NotSignedIn(
                "the browser's answer did not carry this sign-in's state, so it did not come \
                 from this sign-in and was not used: run the command again"
                    .into(),
            ));
        }
        if let Some(error) = answer.error {
            let description = answer.error_description.unwrap_or_default();
            if error == "access_denied" && !description.contains("AADSTS") {
                return Err(AuthError::NotSignedIn(
                    "the sign-in was cancelled or consent was declined in the browser: \
                     nothing was sent"
                        .into(),
                ));
            }
            let body =
                serde_json::json!({"error": error, "error_description": description}).to_string();
            return Err(refusal(400, &body, url.as_str(), &self.who()));
        }
        let Some(code) = answer.code else {
            return Err(AuthError::NotSignedIn(
                "the browser's answer carried no authorization code: run the command again".into(),
            ));
        };
        let form = || {
            vec![
                ("grant_type", "authorization_code".to_owned()),
                ("client_id", self.client_id.clone()),
                ("code", code.expose().to_owned()),
                ("redirect_uri", redirect_uri.clone()),
                ("code_verifier", verifier.expose().to_owned()),
                ("scope", self.scopes.clone()),
            ]
        };
        let token_url = &self.token_url;
        let who = self.who();
        match retrying(&TokenRetry::default(), || async {
            match post_token(&self.http, token_url, form(), &who).await {
                Ok(f) => Attempt::Done(f),
                Err(Try::Final(e)) => Attempt::Final(e),
                Err(Try::Again(t)) => Attempt::Again(t),
            }
        })
        .await
        {
            Ok(f) => Ok(f),
            Err(Failed::Final(e)) => Err(e),
            Err(Failed::GaveUp(gave_up)) => Err(AuthError::Outage {
                url: token_url.to_string(),
                gave_up,
            }),
        }
    }
}

/// A form request, asked again after answers that may pass.
async fn with_retries<F, Fut>(url: &Url, mut call: F) -> Result<(u16, String), AuthError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(u16, String), Try>>,
{
    match retrying(&TokenRetry::default(), || {
        let fut = call();
        async move {
            match fut.await {
                Ok(a) => Attempt::Done(a),
                Err(Try::Final(e)) => Attempt::Final(e),
                Err(Try::Again(t)) => Attempt::Again(t),
            }
        }
    })
    .await
    {
        Ok(a) => Ok(a),
        Err(Failed::Final(e)) => Err(e),
        Err(Failed::GaveUp(gave_up)) => Err(AuthError::Outage {
            url: url.to_string(),
            gave_up,
        }),
    }
}

#[derive(Deserialize)]
struct DeviceCodeGrant {
    /// Secret-like: whoever holds it while the user signs in gets the tokens.
    device_code: String,
    user_code: String,
    verification_uri: String,
    expires_in: Option<u64>,
    interval: Option<u64>,
    message: Option<String>,
}

/// What the browser brought back to the loopback listener.
struct Answer {
    code: Option<Secret>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// How long one connection to the loopback listener may take to send its request. A
/// browser sends it at once; a connection that stays silent (a port scanner, a stuck
/// tab) is dropped after this, and never holds up the others (issue 17, point 11).
const REQUEST_READ_LIMIT: Duration = Duration::from_secs(10);

/// Waits for the redirect to `/` that carries this sign-in's `state`. Each connection
/// is served on its own task, so one that sends nothing, a favicon request (404) or an
/// answer with another state (400, not used) never keeps the real redirect waiting.
/// The connections still open when it arrives are dropped with the set.
async fn receive(listener: &TcpListener, state: &str) -> Result<Answer, AuthError> {
    let (found, mut arrived) = tokio::sync::mpsc::channel::<Answer>(1);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve_one(stream, state.to_owned(), found.clone()));
                }
            }
            Some(answer) = arrived.recv() => return Ok(answer),
            // Finished connections are reaped so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One connection to the loopback listener: its request read within
/// [`REQUEST_READ_LIMIT`], answered, and the sign-in's answer handed to `found` when it
/// is the redirect with this sign-in's `state`.
async fn serve_one(
    mut stream: tokio::net::TcpStream,
    state: String,
    found: tokio::sync::mpsc::Sender<Answer>,
) {
    let Ok(head) = tokio::time::timeout(REQUEST_READ_LIMIT, read_head(&mut stream)).await else {
        return;
    };
    let text = String::from_utf8_lossy(&head);
    let target = text
        .lines()
        .next()
        .and_then(|line| {
            let mut parts = line.split(' ');
            (parts.next() == Some("GET"))
                .then(|| parts.next())
                .flatten()
        })
        .unwrap_or("")
        .to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != "/" {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
    let answer = parse_redirect(query);
    let (status, page) = if answer.state.as_deref() != Some(state.as_str()) {
        (
            "400 Bad Request",
            "<h1>Not this sign-in</h1><p>This answer did not carry the state of the sign-in in progress, so it was not used.</p>",
        )
    } else if answer.code.is_some() {
        (
            "200 OK",
            "<h1>Signed in</h1><p>intune-reset has your sign-in. You can close this window and return to the terminal.</p>",
        )
    } else {
        (
            "200 OK",
            "<h1>Sign-in not completed</h1><p>Return to the terminal for what happened.</p>",
        )
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>intune-reset</title></head><body>{page}</body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{html}",
        html.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    if answer.state.as_deref() == Some(state.as_str()) {
        // Only the first of two such answers is taken; the channel holds one.
        let _ = found.try_send(answer);
    }
}

/// The request line and headers, up to 16 KiB.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// The redirect's query: the code, or Entra's error, and the state.
fn parse_redirect(query: &str) -> Answer {
    let mut answer = Answer {
        code: None,
        state: None,
        error: None,
        error_description: None,
    };
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "code" => answer.code = Some(Secret::new(v.into_owned())),
            "state" => answer.state = Some(v.into_owned()),
            "error" => answer.error = Some(v.into_owned()),
            "error_description" => answer.error_description = Some(v.into_owned()),
            _ => {}
        }
    }
    answer
}

/// `1 minute`, `15 minutes`.
fn minutes(d: Duration) -> String {
    match d.as_secs().div_ceil(60) {
        1 => "1 minute".to_owned(),
        n => format!("{n} minutes"),
    }
}

/// Letters, digits and `-._~`: what a PKCE verifier and a `state` may hold.
fn random_text(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `BASE64URL(SHA256(verifier))`, RFC 7636 section 4.2.
pub fn pkce_challenge(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_long_and_unreserved() {
        let v = random_text(64);
        assert_eq!(v.len(), 64);
        assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        );
        assert_ne!(v, random_text(64));
    }
}
