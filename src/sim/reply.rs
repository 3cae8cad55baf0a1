//! The answer every handler returns, and Graph's error envelope.
//!
//! Graph errors are `{"error":{"code","message","innerError":{"request-id",
//! "client-request-id","date"}}}` (<https://learn.microsoft.com/en-us/graph/errors>).
//! Intune puts a second JSON document in `message`, as a *string*, with `_version`,
//! `Message`, `CustomApiErrorPhrase`, `RetryAfter`, `ErrorSourceService` and
//! `HttpHeaders` (docs/graph.md, "Errors"); clients must parse it, so the simulator writes it.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::faults::FaultKind;
use super::token_faults::TokenFault;
use crate::rules::Family;

/// What the request was, for the log and the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Token,
    List,
    Get,
    ResetPasscode,
    RemoteLock,
    RotateBitLockerKeys,
    RevokeSessions,
    /// `GET /users/{id or UPN}`: a directory user read.
    User,
    Batch,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::List => "list",
            Kind::Get => "get",
            Kind::ResetPasscode => "resetPasscode",
            Kind::RemoteLock => "remoteLock",
            Kind::RotateBitLockerKeys => "rotateBitLockerKeys",
            Kind::RevokeSessions => "revokeSignInSessions",
            Kind::User => "user",
            Kind::Batch => "batch",
            Kind::Other => "other",
        }
    }

    /// The kind of an action's POST: its Graph name.
    pub fn of(family: Family) -> Kind {
        match family {
            Family::Passcode => Kind::ResetPasscode,
            Family::Lock => Kind::RemoteLock,
            Family::BitLocker => Kind::RotateBitLockerKeys,
            Family::Sessions => Kind::RevokeSessions,
        }
    }
}

/// Facts about the request that every answer echoes.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Graph's own id for the request (`request-id` header and `innerError`).
    pub request_id: String,
    /// The client's `client-request-id`, echoed back.
    pub client_request_id: Option<String>,
    /// When the request arrived, for `innerError.date`.
    pub date: SystemTime,
    /// `http://host:port` as the client addressed us, for `@odata.nextLink`.
    pub base_url: String,
}

/// An answer, before it becomes HTTP (or a `$batch` entry).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Extra headers (`Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body; `None` for 204.
    pub body: Option<Value>,
    /// A body already written as JSON (device reads, the hot path); wins over `body`.
    pub raw: Option<Vec<u8>>,
    /// What the request was.
    pub kind: Kind,
    /// The device the request was about, for the log.
    pub device: Option<String>,
    /// The directory user the request was about (their UPN, or the name the path gave
    /// when Entra has no such user), for the log.
    pub user: Option<String>,
    /// The fault injected into this answer, if any.
    pub fault: Option<FaultKind>,
    /// The limit that refused the request, if it was throttled.
    pub throttled: Option<&'static str>,
    /// This request queued an action on the device (a reset, a lock or a key rotation)
    /// or revoked a user's sessions, even when its answer is then dropped: the log's
    /// `effect`, which tests count real actions by, with `kind` telling which.
    pub effect: bool,
    /// The token-endpoint fault injected into this answer, if any.
    pub token_fault: Option<TokenFault>,
}

impl Reply {
    pub fn new(status: u16, kind: Kind, body: Option<Value>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
            raw: None,
            kind,
            device: None,
            user: None,
            fault: None,
            throttled: None,
            effect: false,
            token_fault: None,
        }
    }

    /// An answer whose JSON body is already written.
    pub fn raw(status: u16, kind: Kind, json: Vec<u8>) -> Reply {
        Reply {
            raw: Some(json),
            ..Reply::new(status, kind, None)
        }
    }

    pub fn has_body(&self) -> bool {
        self.raw.is_some() || self.body.is_some()
    }

    /// The body as bytes to send.
    pub fn body_bytes(self) -> Vec<u8> {
        match (self.raw, self.body) {
            (Some(raw), _) => raw,
            (None, Some(value)) => serde_json::to_vec(&value).unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }

    /// The body as a JSON value, for a `$batch` entry.
    pub fn body_value(&self) -> Option<Value> {
        match (&self.raw, &self.body) {
            (Some(raw), _) => serde_json::from_slice(raw).ok(),
            (None, body) => body.clone(),
        }
    }

    pub fn header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    pub fn retry_after(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Retry-After"))
            .map(|(_, v)| v.as_str())
    }
}

/// Graph's `innerError.date`: UTC without the zone letter, as Graph writes it.
fn inner_date(at: SystemTime) -> String {
    let text = super::clock::rfc3339(at);
    text.trim_end_matches('Z').to_owned()
}

fn inner_error(ctx: &Ctx) -> serde_json::Map<String, Value> {
    let mut inner = serde_json::Map::new();
    inner.insert("date".into(), inner_date(ctx.date).into());
    inner.insert("request-id".into(), ctx.request_id.clone().into());
    inner.insert(
        "client-request-id".into(),
        ctx.client_request_id
            .clone()
            .unwrap_or_else(|| ctx.request_id.clone())
            .into(),
    );
    inner
}

/// A Graph error with a plain message.
pub fn graph_error(ctx: &Ctx, kind: Kind, status: u16, code: &str, message: &str) -> Reply {
    let body = json!({"error": {"code": code, "message": message, "innerError": inner_error(ctx)}});
    Reply::new(status, kind, Some(body))
}

/// Graph's 429 body (<https://learn.microsoft.com/en-us/graph/throttling>).
pub fn too_many_requests(ctx: &Ctx, kind: Kind) -> Reply {
    let mut inner = inner_error(ctx);
    inner.insert("code".into(), "429".into());
    inner.insert("message".into(), "Please retry after".into());
    inner.insert("status".into(), "429".into());
    let body = json!({"error": {"code": "TooManyRequests", "message": "Please retry again later.", "innerError": inner}});
    Reply::new(429, kind, Some(body))
}

/// An Intune error: Graph's envelope with Intune's JSON document as the message.
pub fn intune_error(
    ctx: &Ctx,
    kind: Kind,
    status: u16,
    code: &str,
    text: &str,
    resource: &str,
) -> Reply {
    let activity = ctx
        .client_request_id
        .clone()
        .unwrap_or_else(|| ctx.request_id.clone());
    let message = format!(
        "{text} - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - \
         Activity ID: {activity} - Url: https://fef.msua06.manage.microsoft.com/\
         DeviceFE/StatelessDeviceFEService/{resource}?api-version=2025-01-14 - \
         CustomApiErrorPhrase: "
    );
    let nested = json!({
        "_version": 3,
        "Message": message,
        "CustomApiErrorPhrase": "",
        "RetryAfter": null,
        "ErrorSourceService": "",
        "HttpHeaders": "{}",
    });
    graph_error(ctx, kind, status, code, &nested.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            request_id: "r-1".into(),
            client_request_id: Some("c-1".into()),
            date: SystemTime::UNIX_EPOCH,
            base_url: "http://127.0.0.1:1".into(),
        }
    }

    #[test]
    fn intune_errors_carry_a_json_document_as_their_message() {
        let reply = intune_error(&ctx(), Kind::ResetPasscode, 400, "BadRequest", "Nope", "x");
        let body = reply.body.unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        let nested: Value = serde_json::from_str(message).unwrap_or_default();
        assert_eq!(nested["_version"], 3);
        assert!(
            nested["Message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Nope - ")
        );
        assert_eq!(body["error"]["innerError"]["client-request-id"], "c-1");
        assert_eq!(body["error"]["innerError"]["request-id"], "r-1");
        assert_eq!(body["error"]["innerError"]["date"], "1970-01-01T00:00:00");
    }
}
