//! One exchange with Graph: a request with the headers every call carries, and its
//! answer sorted into a [`Reply`] or a [`CallError`].
//!
//! Every request carries a fresh `client-request-id` and asks Graph to echo it
//! (`return-client-request-id`), so each report row can be matched to Graph's logs
//! (<https://learn.microsoft.com/en-us/graph/best-practices-concept>). Redirects are not
//! followed: Graph does not send them for these calls, and following one would resend a
//! POST or carry the token somewhere unplanned.

use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use url::Url;

use super::auth::TokenSource;
use super::client::{Reply, SetupError};
use super::cloud::{Endpoints, is_loopback};
use super::errors::{CallError, CallErrorKind, missing_permission, parse_error_body};
use super::retry_after::parse_retry_after;
use super::scrub::scrub;

const USER_AGENT: &str = concat!("intune-reset/", env!("CARGO_PKG_VERSION"));

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

/// Sends one request and turns the answer into a [`Reply`] or a [`CallError`].
pub(super) async fn exchange<T>(
    http: &reqwest::Client,
    tokens: &TokenSource,
    method: Method,
    url: Url,
    permission: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Reply<T>, CallError> {
    let client_request_id = uuid::Uuid::new_v4().to_string();
    let fail = |kind, status, message| bare_error(kind, status, message, &client_request_id);
    let token = match tokens.token().await {
        Ok(t) => t,
        Err(e) => {
            let message = e.to_string();
            return Err(fail(CallErrorKind::SignIn(Box::new(e)), None, message));
        }
    };
    let authorization = match tokens.authorization(&token) {
        Ok(value) => value,
        Err(e) => {
            let message = e.to_string();
            return Err(fail(CallErrorKind::SignIn(Box::new(e)), None, message));
        }
    };
    let mut request = http
        .request(method.clone(), url.clone())
        .header(reqwest::header::AUTHORIZATION, authorization)
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
    let mut error = error_answer(
        status,
        &body,
        retry_after_header.as_deref(),
        request_id,
        client_request_id,
        permission,
    );
    if error.kind == (CallErrorKind::Forbidden { permission: None }) && tokens.is_delegated() {
        // A user's token with the permissions consented, refused anyway: the user's
        // Intune role does not allow this remote task.
        error.kind = CallErrorKind::MissingRole;
    }
    if status == 401 {
        match tokens.refused_ready_token(&error.message) {
            // A ready token cannot be renewed: no retry can help, and the person must
            // learn that the token *they gave* was refused.
            Some(refused) => error.kind = CallErrorKind::SignIn(Box::new(refused)),
            // This token was refused; the next call fetches a new one. Only this exact
            // token is dropped, so a burst of 401s costs one renewal.
            None => tokens.invalidate(&token),
        }
    }
    Err(error)
}

/// An answer outside 2xx as a [`CallError`]: Graph's envelope (or the start of whatever
/// else came), the wait it asked for, and for a 403 the permission it names.
/// `permission` is what the call needs, for a 403 that says one is missing without
/// naming it.
fn error_answer(
    status: u16,
    body: &str,
    retry_after: Option<&str>,
    request_id: Option<String>,
    client_request_id: String,
    permission: &str,
) -> CallError {
    let envelope = parse_error_body(body).unwrap_or_default();
    // The message goes into the report, the ledger and the logs: whatever Graph or a
    // front end echoed of the request (its Authorization header) is scrubbed first.
    let message = scrub(
        &envelope
            .message
            .clone()
            .unwrap_or_else(|| default_message(status, body)),
    );
    let permission = (status == 403)
        .then(|| missing_permission(&message, permission))
        .flatten();
    let retry_after = retry_after
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
        .or(envelope.nested_retry_after);
    CallError {
        kind: CallErrorKind::from_status(status, permission),
        status: Some(status),
        message,
        code: envelope.code.as_deref().map(scrub),
        request_id: request_id.or(envelope.request_id).map(|id| scrub(&id)),
        client_request_id,
        retry_after,
    }
}

pub(super) fn bare_error(
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
/// both `is_connect()` and `is_timeout()`, and nothing was sent on it. (hyper-util
/// itself re-sends a request only when a pooled connection closed before a byte of it
/// was written, so that never doubles an action.)
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
pub(super) fn transport_message(e: &reqwest::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_prefer_the_header_and_fall_back_to_the_envelope() {
        let body = r#"{"error":{"code":"Forbidden","message":"Missing permission.","innerError":{"request-id":"env"}}}"#;
        let e = error_answer(403, body, None, None, "c".into(), "Needed.All");
        assert_eq!(e.missing_permission(), Some("Needed.All"));
        assert_eq!(e.request_id.as_deref(), Some("env"));
        let e = error_answer(
            403,
            body,
            Some("x"),
            Some("hdr".into()),
            "c".into(),
            "N.All",
        );
        assert_eq!(e.request_id.as_deref(), Some("hdr"));
        assert_eq!(e.retry_after, None);
        // A 403 for another reason names no permission.
        let e = error_answer(403, "", None, None, "c".into(), "N.All");
        assert_eq!(e.kind, CallErrorKind::Forbidden { permission: None });
        assert_eq!(e.message, "HTTP 403 with an empty body");
        let e = error_answer(429, "", Some("10"), None, "c".into(), "N.All");
        assert_eq!(e.retry_after, Some(Duration::from_secs(10)));
        let long = "x".repeat(1000);
        assert_eq!(
            error_answer(500, &long, None, None, "c".into(), "N")
                .message
                .len(),
            210
        );
    }
}
