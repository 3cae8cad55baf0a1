//! What a failed Graph call tells us, in a shape the runner can decide on.
//!
//! Graph answers errors with an envelope
//! `{"error":{"code","message","innerError":{"request-id","client-request-id","date"}}}`
//! (<https://learn.microsoft.com/en-us/graph/errors>). Intune often puts a *second* JSON
//! document, as a string, in `message` (`{"_version":3,"Message":"...",
//! "CustomApiErrorPhrase":"","RetryAfter":null,...}`); [`parse_error_body`] digs the
//! sentence out of it so reports show words, not escaped JSON.
//!
//! [`CallError`] is one failed attempt, and [`CallError::outcome_unknown`] answers the
//! question the no-double-reset policy (docs/architecture.md, "Crash safety") hangs
//! on: could this request have taken effect without us learning it?

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::auth::AuthError;

/// What Graph's error envelope said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphErrorBody {
    /// `error.code`, e.g. `BadRequest`, `ResourceNotFound`, `Forbidden`.
    pub code: Option<String>,
    /// The human sentence: `error.message`, or the `Message` of the JSON nested in it.
    pub message: Option<String>,
    /// `RetryAfter` of Intune's nested document, in seconds, when it gives one: Intune
    /// has been seen to throttle without a `Retry-After` header.
    pub nested_retry_after: Option<Duration>,
    /// `error.innerError.request-id`: Graph's id for support cases.
    pub request_id: Option<String>,
    /// `error.innerError.client-request-id`: ours, echoed back.
    pub client_request_id: Option<String>,
    /// `error.innerError.date`.
    pub date: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: Option<serde_json::Value>,
    message: Option<serde_json::Value>,
    #[serde(rename = "innerError", alias = "innererror")]
    inner_error: Option<InnerError>,
}

#[derive(Deserialize)]
struct InnerError {
    #[serde(rename = "request-id")]
    request_id: Option<String>,
    #[serde(rename = "client-request-id")]
    client_request_id: Option<String>,
    date: Option<String>,
}

/// Reads Graph's error envelope; `None` when the body is not one (an HTML page from a
/// proxy, an empty body).
pub fn parse_error_body(body: &str) -> Option<GraphErrorBody> {
    let envelope: Envelope = serde_json::from_str(body).ok()?;
    let error = envelope.error?;
    let mut out = GraphErrorBody {
        code: error.code.as_ref().and_then(value_text),
        ..GraphErrorBody::default()
    };
    if let Some(message) = error.message.as_ref().and_then(value_text) {
        let (sentence, retry) = nested_message(&message);
        out.message = Some(sentence);
        out.nested_retry_after = retry;
    }
    if let Some(inner) = error.inner_error {
        out.request_id = inner.request_id;
        out.client_request_id = inner.client_request_id;
        out.date = inner.date;
    }
    Some(out)
}

fn value_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        serde_json::Value::Null | serde_json::Value::String(_) => None,
        other => Some(other.to_string()),
    }
}

/// Intune's nested document: its `Message` (plus a non-empty `CustomApiErrorPhrase`
/// that the message does not already contain) and its `RetryAfter`. A message that is
/// not such a document is returned as it is.
fn nested_message(message: &str) -> (String, Option<Duration>) {
    let trimmed = message.trim();
    if !trimmed.starts_with('{') {
        return (trimmed.to_owned(), None);
    }
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_str::<serde_json::Value>(trimmed)
    else {
        return (trimmed.to_owned(), None);
    };
    let field = |name: &str| {
        doc.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let retry = field("RetryAfter").and_then(|v| match v {
        serde_json::Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
            .map(Duration::from_secs_f64),
        serde_json::Value::String(s) => {
            super::retry_after::parse_retry_after(s, std::time::SystemTime::now())
        }
        _ => None,
    });
    let Some(sentence) = field("Message").and_then(value_text) else {
        return (trimmed.to_owned(), retry);
    };
    let phrase = field("CustomApiErrorPhrase").and_then(value_text);
    let sentence = match phrase {
        Some(p) if !sentence.contains(&p) => format!("{sentence} ({p})"),
        _ => sentence,
    };
    (sentence, retry)
}

/// Phrases Graph and Intune use when the app lacks a permission without naming it.
const PERMISSION_PHRASES: &[&str] = &[
    "application is not authorized to perform this operation",
    "missing permission",
    "insufficient privileges",
    "does not have the required permission",
    "required scopes are missing",
];

/// For a 403: the permission the app lacks, when the message names one
/// (`DeviceManagementManagedDevices.PrivilegedOperations.All`; several joined with
/// " or "), else `required` (the permission this call needs) when the message says a
/// permission is missing without naming it, else `None` (a 403 for another reason,
/// such as a scope tag or a Conditional Access policy).
pub fn missing_permission(message: &str, required: &str) -> Option<String> {
    let mut named: Vec<&str> = Vec::new();
    for word in message.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.')) {
        let word = word.trim_matches('.');
        if is_permission_name(word) && !named.contains(&word) {
            named.push(word);
        }
    }
    if !named.is_empty() {
        return Some(named.join(" or "));
    }
    let lower = message.to_ascii_lowercase();
    PERMISSION_PHRASES
        .iter()
        .any(|p| lower.contains(p))
        .then(|| required.to_owned())
}

/// `Resource.Operation.All` shape: Graph's application permissions end in `.All`.
fn is_permission_name(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() >= 2
        && parts.last() == Some(&"All")
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && parts[0].starts_with(|c: char| c.is_ascii_uppercase())
}

/// What kind of failure a call met; the runner's retry policy keys on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallErrorKind {
    /// 429: over a throttling limit; wait `retry_after` (or back off) and try again.
    Throttled,
    /// 502, 503, 504: the service is briefly unavailable; retry on a fresh connection.
    Unavailable,
    /// 401: the token was refused (expired or revoked); fetch a new one once.
    Unauthorized,
    /// 403; `permission` is set when the answer says a permission is missing, which
    /// stops the run instead of failing every device.
    Forbidden { permission: Option<String> },
    /// 403 to a delegated sign-in, naming no permission: the signed-in user's Intune
    /// role does not allow the remote task; stops the run.
    MissingRole,
    /// 404: no such device.
    NotFound,
    /// Any other 4xx, e.g. 400 for an action the device's platform does not support.
    Rejected,
    /// Any other 5xx.
    ServerError,
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection broke after the request may have been sent.
    ConnectionLost,
    /// No connection could be made (refused, DNS, TLS handshake): nothing was sent.
    ConnectFailed,
    /// An answer arrived but was not what Graph sends (a body that is not the expected
    /// JSON, a redirect).
    InvalidResponse,
    /// No usable token: none could be had (after the token source's own retries), so
    /// nothing was sent to Graph, or Graph answered 401 to a ready token, which cannot
    /// be renewed. The [`AuthError`] says what to fix, and [`AuthError::is_transient`]
    /// whether waiting may help.
    SignIn(Box<AuthError>),
    /// An `@odata.nextLink` pointed away from the Graph endpoint; it was not followed,
    /// because the access token would have gone with it.
    UnsafeLink,
}

impl CallErrorKind {
    /// The kind an HTTP error status maps to.
    pub fn from_status(status: u16, permission: Option<String>) -> CallErrorKind {
        match status {
            429 => CallErrorKind::Throttled,
            502..=504 => CallErrorKind::Unavailable,
            401 => CallErrorKind::Unauthorized,
            403 => CallErrorKind::Forbidden { permission },
            404 => CallErrorKind::NotFound,
            400..=499 => CallErrorKind::Rejected,
            500..=599 => CallErrorKind::ServerError,
            _ => CallErrorKind::InvalidResponse,
        }
    }

    /// A short phrase for the start of a message.
    fn describe(&self) -> &'static str {
        match self {
            CallErrorKind::Throttled => "throttled by Microsoft Graph",
            CallErrorKind::Unavailable => "Microsoft Graph is temporarily unavailable",
            CallErrorKind::Unauthorized => "the access token was refused",
            CallErrorKind::Forbidden {
                permission: Some(_),
            } => "the app registration lacks a permission",
            CallErrorKind::Forbidden { permission: None } => "forbidden",
            CallErrorKind::MissingRole => "the signed-in account's Intune role does not allow this",
            CallErrorKind::NotFound => "not found",
            CallErrorKind::Rejected => "rejected by Microsoft Graph",
            CallErrorKind::ServerError => "Microsoft Graph failed",
            CallErrorKind::Timeout => "no answer within the timeout",
            CallErrorKind::ConnectionLost => "the connection broke before the answer",
            CallErrorKind::ConnectFailed => "could not connect",
            CallErrorKind::InvalidResponse => "unexpected answer",
            CallErrorKind::SignIn(_) => "cannot sign in",
            CallErrorKind::UnsafeLink => "refused to follow a link away from Microsoft Graph",
        }
    }
}

/// One failed call: safe to log and to put in a report (it never holds a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub kind: CallErrorKind,
    /// The HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// Graph's human message, or what went wrong on the wire.
    pub message: String,
    /// Graph's `error.code`.
    pub code: Option<String>,
    /// Graph's `request-id` (header, else the envelope), for support cases.
    pub request_id: Option<String>,
    /// The `client-request-id` we sent.
    pub client_request_id: String,
    /// How long Graph asked us to wait (`Retry-After`, or Intune's nested `RetryAfter`).
    pub retry_after: Option<Duration>,
}

#[cfg(test)]
impl CallError {
    /// A 400 a test fake answers to what it does not serve.
    pub(crate) fn not_in_fake() -> CallError {
        CallError {
            message: "not in this fake".into(),
            kind: CallErrorKind::Rejected,
            status: Some(400),
            code: None,
            request_id: None,
            client_request_id: "fake".into(),
            retry_after: None,
        }
    }
}

impl CallError {
    /// True when the request may have reached Graph and taken effect without us
    /// learning it; the runner then reads `deviceActionResults` before re-sending a
    /// reset, because a second reset generates a second passcode.
    ///
    /// - Timeout, ConnectionLost: the request may have been written completely and
    ///   processed; only the answer was lost.
    /// - InvalidResponse: something answered, but we cannot tell what it did.
    /// - 5xx, including 502/503/504: a gateway may have forwarded the request before
    ///   failing, and Intune may have queued the action before erroring.
    ///
    /// False when Graph certainly did not act:
    /// - ConnectFailed: no connection was established (reqwest's `is_connect()`), so not
    ///   one byte of the request left.
    /// - 429: throttled requests are refused before they are processed
    ///   (<https://learn.microsoft.com/en-us/graph/throttling>).
    /// - 4xx: Graph refused the request.
    /// - SignIn, UnsafeLink: the request was never sent.
    pub fn outcome_unknown(&self) -> bool {
        match self.kind {
            CallErrorKind::Timeout
            | CallErrorKind::ConnectionLost
            | CallErrorKind::InvalidResponse
            | CallErrorKind::Unavailable
            | CallErrorKind::ServerError => true,
            CallErrorKind::ConnectFailed
            | CallErrorKind::Throttled
            | CallErrorKind::Unauthorized
            | CallErrorKind::Forbidden { .. }
            | CallErrorKind::MissingRole
            | CallErrorKind::NotFound
            | CallErrorKind::Rejected
            | CallErrorKind::SignIn(_)
            | CallErrorKind::UnsafeLink => false,
        }
    }

    /// The missing permission, when this is a 403 that names one.
    pub fn missing_permission(&self) -> Option<&str> {
        match &self.kind {
            CallErrorKind::Forbidden { permission } => permission.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        if let Some(p) = self.missing_permission() {
            write!(
                f,
                " ({p}; grant it to the app registration and give admin consent)"
            )?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        let mut facts = Vec::new();
        if let Some(s) = self.status {
            facts.push(format!("HTTP {s}"));
        }
        if let Some(c) = &self.code {
            facts.push(format!("code {c}"));
        }
        if let Some(r) = self.retry_after {
            facts.push(format!("retry after {}", humantime::format_duration(r)));
        }
        if let Some(r) = &self.request_id {
            facts.push(format!("request-id {r}"));
        }
        if !self.client_request_id.is_empty() {
            facts.push(format!("client-request-id {}", self.client_request_id));
        }
        if facts.is_empty() {
            return Ok(());
        }
        write!(f, " [{}]", facts.join(", "))
    }
}

impl std::error::Error for CallError {}

#[cfg(test)]
#[path = "errors_tests.rs"]
mod tests;
