//! [`GraphClient`]: the calls the runner makes, one HTTP request each.
//!
//! Every request carries a fresh `client-request-id` and asks Graph to echo it
//! (`return-client-request-id`), so each report row can be matched to Graph's logs
//! (<https://learn.microsoft.com/en-us/graph/best-practices-concept>). Redirects are not
//! followed: Graph does not send them for these calls, and following one would resend a
//! POST or carry the token somewhere unplanned. Failures become [`CallError`]s whose kind
//! drives the runner's retry policy.

use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use url::Url;

use super::auth::{AuthError, TokenSource};
use super::cloud::{Endpoints, is_loopback};
use super::credentials::Identity;
use super::device::{
    ActionResult, ActionResultsBody, DevicePage, DevicePageBody, FilterProperty, ManagedDevice,
};
use super::errors::{CallError, CallErrorKind, missing_permission, parse_error_body};
use super::retry_after::parse_retry_after;

const USER_AGENT: &str = concat!("intune-reset/", env!("CARGO_PKG_VERSION"));
/// What `resetPasscode` needs (GRAPH.md, "The action").
const WRITE_PERMISSION: &str = "DeviceManagementManagedDevices.PrivilegedOperations.All";
/// What reading managed devices needs.
const READ_PERMISSION: &str = "DeviceManagementManagedDevices.Read.All";

/// Which connection a request goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// A kept-alive connection when one is idle.
    Pooled,
    /// A new connection, closed afterwards: the retry after a 503/504 or a broken
    /// connection, so it does not land on the same bad backend or dead socket.
    Fresh,
}

/// A successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    pub value: T,
    pub status: u16,
    /// Graph's `request-id` header, for support cases.
    pub request_id: Option<String>,
    /// The `client-request-id` we sent.
    pub client_request_id: String,
}

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// The first page of devices whose `property` equals `value`.
    Filter {
        property: FilterProperty,
        value: String,
        select: Vec<String>,
    },
    /// An `@odata.nextLink`, followed verbatim.
    Next(String),
}

/// The HTTP clients could not be built (TLS setup): nothing can be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// A reqwest client as every Graph and sign-in request needs it: rustls with ring, no
/// redirects, the per-request `timeout`, our User-Agent. `fresh` keeps no idle
/// connection, so each request opens its own.
pub fn http_client(
    endpoints: &Endpoints,
    timeout: Duration,
    fresh: bool,
) -> Result<reqwest::Client, SetupError> {
    // Fails only when a provider is already installed, which is what we want anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout);
    if fresh {
        builder = builder.pool_max_idle_per_host(0);
    }
    // A proxy from HTTPS_PROXY is for the way out; the simulator on loopback must be
    // reached directly.
    if is_loopback(&endpoints.graph) && is_loopback(&endpoints.authority) {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| SetupError::Http(e.to_string()))
}

/// The Graph calls; clones share connections and the token cache.
#[derive(Debug, Clone)]
pub struct GraphClient {
    /// Kept-alive connections for ordinary requests.
    pooled: reqwest::Client,
    /// No idle connections: for [`Connection::Fresh`].
    fresh: reqwest::Client,
    endpoints: Endpoints,
    tokens: TokenSource,
}

impl GraphClient {
    pub fn new(
        endpoints: Endpoints,
        tokens: TokenSource,
        timeout: Duration,
    ) -> Result<GraphClient, SetupError> {
        Ok(GraphClient {
            pooled: http_client(&endpoints, timeout, false)?,
            fresh: http_client(&endpoints, timeout, true)?,
            endpoints,
            tokens,
        })
    }

    /// A client and its token source from a resolved identity; token requests share
    /// the pooled connections.
    pub fn sign_in(
        endpoints: Endpoints,
        identity: Identity,
        timeout: Duration,
    ) -> Result<GraphClient, SetupError> {
        let pooled = http_client(&endpoints, timeout, false)?;
        let tokens = TokenSource::new(identity, &endpoints, pooled.clone())?;
        Ok(GraphClient {
            fresh: http_client(&endpoints, timeout, true)?,
            pooled,
            endpoints,
            tokens,
        })
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// `GET /beta/deviceManagement/managedDevices/{id}?$select=...`
    pub async fn get_device(
        &self,
        id: &str,
        select: &[&str],
        connection: Connection,
    ) -> Result<Reply<ManagedDevice>, CallError> {
        let mut url = self.device_url("beta", id);
        set_query(&mut url, &[("$select", &select.join(","))]);
        self.send(Method::GET, url, connection, READ_PERMISSION, |body| {
            serde_json::from_str(body).ok()
        })
        .await
    }

    /// One page of `GET /beta/deviceManagement/managedDevices`.
    pub async fn list_devices_page(
        &self,
        request: PageRequest,
        connection: Connection,
    ) -> Result<Reply<DevicePage>, CallError> {
        let url = match request {
            PageRequest::Filter {
                property,
                value,
                select,
            } => {
                let mut url = self.collection_url("beta");
                set_query(
                    &mut url,
                    &[
                        ("$filter", &property.filter(&value)),
                        ("$select", &select.join(",")),
                    ],
                );
                url
            }
            PageRequest::Next(link) => self.checked_next_link(&link).map_err(|why| {
                // Nothing is sent, so there is no client-request-id to report.
                bare_error(CallErrorKind::UnsafeLink, None, why, "")
            })?,
        };
        self.send(Method::GET, url, connection, READ_PERMISSION, |body| {
            let page: DevicePageBody = serde_json::from_str(body).ok()?;
            Some(DevicePage {
                devices: page.value,
                next_link: page.next_link,
            })
        })
        .await
    }

    /// `POST /v1.0/deviceManagement/managedDevices/{id}/resetPasscode`, no body; Graph
    /// answers 204 when it has queued the action (any 2xx is taken as accepted).
    pub async fn reset_passcode(
        &self,
        id: &str,
        connection: Connection,
    ) -> Result<Reply<()>, CallError> {
        let mut url = self.device_url("v1.0", id);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("resetPasscode");
        }
        self.send(
            Method::POST,
            url,
            connection,
            WRITE_PERMISSION,
            |_| Some(()),
        )
        .await
    }

    /// `GET /beta/deviceManagement/managedDevices/{id}?$select=id,deviceActionResults`
    pub async fn action_results(
        &self,
        id: &str,
        connection: Connection,
    ) -> Result<Reply<Vec<ActionResult>>, CallError> {
        let mut url = self.device_url("beta", id);
        set_query(&mut url, &[("$select", "id,deviceActionResults")]);
        self.send(Method::GET, url, connection, READ_PERMISSION, |body| {
            let body: ActionResultsBody = serde_json::from_str(body).ok()?;
            Some(body.results.unwrap_or_default())
        })
        .await
    }

    fn collection_url(&self, version: &str) -> Url {
        let mut url = self.endpoints.graph.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend([version, "deviceManagement", "managedDevices"]);
        }
        url
    }

    /// The id is pushed as one path segment, so whatever it holds cannot change the path.
    fn device_url(&self, version: &str, id: &str) -> Url {
        let mut url = self.collection_url(version);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(id);
        }
        url
    }

    /// A nextLink is followed only to Graph's own origin: the token goes with it.
    fn checked_next_link(&self, link: &str) -> Result<Url, String> {
        let url = Url::parse(link).map_err(|e| format!("the @odata.nextLink is not a URL: {e}"))?;
        let graph = self.endpoints.graph.origin();
        if url.origin() != graph {
            return Err(format!(
                "the @odata.nextLink points at {}, not at {}; the access token is only \
                 sent to Graph",
                url.origin().ascii_serialization(),
                graph.ascii_serialization()
            ));
        }
        Ok(url)
    }

    /// Sends one request and turns the answer into a [`Reply`] or a [`CallError`].
    async fn send<T>(
        &self,
        method: Method,
        url: Url,
        connection: Connection,
        permission: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Reply<T>, CallError> {
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let fail = |kind, status, message| bare_error(kind, status, message, &client_request_id);
        let token = match self.tokens.token().await {
            Ok(t) => t,
            Err(e) => {
                let message = e.to_string();
                return Err(fail(CallErrorKind::SignIn(Box::new(e)), None, message));
            }
        };
        let http = match connection {
            Connection::Pooled => &self.pooled,
            Connection::Fresh => &self.fresh,
        };
        let mut request = http
            .request(method.clone(), url.clone())
            .bearer_auth(token.expose())
            .header("client-request-id", &client_request_id)
            .header("return-client-request-id", "true")
            .header(reqwest::header::ACCEPT, "application/json");
        if method == Method::POST {
            // hyper sends no length for an empty body, and a server or proxy may answer
            // 411 Length Required to a POST without one (RFC 9110, section 8.6).
            request = request
                .header(reqwest::header::CONTENT_LENGTH, "0")
                .body(Vec::new());
        }
        let started = Instant::now();
        let log = |status: Option<u16>, request_id: Option<&str>| {
            tracing::debug!(
                method = %method,
                path = url.path(),
                status,
                client_request_id = %client_request_id,
                request_id,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "graph request"
            );
        };
        let answer = match request.send().await {
            Ok(a) => a,
            Err(e) => {
                log(None, None);
                let kind = transport_kind(&e);
                return Err(fail(kind, None, transport_message(&e)));
            }
        };
        let status = answer.status().as_u16();
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let request_id = header("request-id");
        let retry_after_header = header("retry-after");
        let body = answer.text().await;
        log(Some(status), request_id.as_deref());
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                let kind = if e.is_timeout() {
                    CallErrorKind::Timeout
                } else {
                    CallErrorKind::ConnectionLost
                };
                let mut err = fail(kind, Some(status), transport_message(&e));
                err.request_id = request_id;
                return Err(err);
            }
        };
        if (200..300).contains(&status) {
            return match parse(&body) {
                Some(value) => Ok(Reply {
                    value,
                    status,
                    request_id,
                    client_request_id,
                }),
                None => {
                    let mut err = fail(
                        CallErrorKind::InvalidResponse,
                        Some(status),
                        "the answer is not the JSON Graph sends for this call".into(),
                    );
                    err.request_id = request_id;
                    Err(err)
                }
            };
        }
        if status == 401 {
            // This token was refused; the next call fetches a new one. Only this exact
            // token is dropped, so a burst of 401s costs one renewal.
            self.tokens.invalidate(&token);
        }
        let envelope = parse_error_body(&body).unwrap_or_default();
        let message = envelope
            .message
            .clone()
            .unwrap_or_else(|| default_message(status, &body));
        let permission = (status == 403)
            .then(|| missing_permission(&message, permission))
            .flatten();
        let retry_after = retry_after_header
            .as_deref()
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
            .or(envelope.nested_retry_after);
        Err(CallError {
            kind: CallErrorKind::from_status(status, permission),
            status: Some(status),
            message,
            code: envelope.code,
            request_id: request_id.or(envelope.request_id),
            client_request_id,
            retry_after,
        })
    }
}

fn bare_error(
    kind: CallErrorKind,
    status: Option<u16>,
    message: String,
    client_request_id: &str,
) -> CallError {
    CallError {
        kind,
        status,
        message,
        code: None,
        request_id: None,
        client_request_id: client_request_id.to_owned(),
        retry_after: None,
    }
}

/// `Timeout` before `ConnectionLost`, `ConnectFailed` before both: a connect timeout is
/// both `is_connect()` and `is_timeout()`, and nothing was sent on it.
fn transport_kind(e: &reqwest::Error) -> CallErrorKind {
    if e.is_connect() {
        CallErrorKind::ConnectFailed
    } else if e.is_timeout() {
        CallErrorKind::Timeout
    } else {
        CallErrorKind::ConnectionLost
    }
}

/// The error and its causes, without the URL (which may carry a filter value).
fn transport_message(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    match e.url() {
        Some(u) => text.replace(u.as_str(), u.path()),
        None => text,
    }
}

/// A message for an error answer without Graph's envelope (a proxy's page).
fn default_message(status: u16, body: &str) -> String {
    let snippet: String = body.trim().chars().take(200).collect();
    if snippet.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        format!("HTTP {status}: {snippet}")
    }
}

/// Sets the query to `key=value` pairs, values percent-encoded as RFC 3986 unreserved
/// characters only: spaces become `%20`, never `+`, which OData would not read as a space.
fn set_query(url: &mut Url, pairs: &[(&str, &str)]) {
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    url.set_query(Some(&query));
}

fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b',') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
