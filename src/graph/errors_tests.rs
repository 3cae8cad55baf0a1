//! Error envelopes, permission detection and failure kinds.

use super::*;
use proptest::prelude::*;

const INTUNE_400: &str = r#"{"error":{"code":"BadRequest","message":"{\r\n  \"_version\": 3,\r\n  \"Message\": \"Device is not supported for this action. - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000\",\r\n  \"CustomApiErrorPhrase\": \"\",\r\n  \"RetryAfter\": null,\r\n  \"ErrorSourceService\": \"\",\r\n  \"HttpHeaders\": \"{}\"\r\n}","innerError":{"date":"2026-11-22T01:00:00","request-id":"rid-1","client-request-id":"cid-1"}}}"#;

#[test]
fn intune_nested_message_becomes_its_sentence() {
    let b = parse_error_body(INTUNE_400).unwrap();
    assert_eq!(b.code.as_deref(), Some("BadRequest"));
    assert_eq!(
        b.message.as_deref(),
        Some(
            "Device is not supported for this action. - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000"
        )
    );
    assert_eq!(b.nested_retry_after, None);
    assert_eq!(b.request_id.as_deref(), Some("rid-1"));
    assert_eq!(b.client_request_id.as_deref(), Some("cid-1"));
    assert_eq!(b.date.as_deref(), Some("2026-11-22T01:00:00"));
}

#[test]
fn nested_phrase_and_retry_after_are_kept() {
    let inner = serde_json::json!({
        "_version": 3, "Message": "Too many requests", "CustomApiErrorPhrase": "Throttled",
        "RetryAfter": 7
    });
    let body =
        serde_json::json!({"error": {"code": "TooManyRequests", "message": inner.to_string()}});
    let b = parse_error_body(&body.to_string()).unwrap();
    assert_eq!(b.message.as_deref(), Some("Too many requests (Throttled)"));
    assert_eq!(b.nested_retry_after, Some(Duration::from_secs(7)));
}

#[test]
fn plain_messages_and_odd_bodies() {
    let b = parse_error_body(
        r#"{"error":{"code":"ResourceNotFound","message":"Resource not found","innererror":{"request-id":"r"}}}"#,
    )
    .unwrap();
    assert_eq!(b.message.as_deref(), Some("Resource not found"));
    assert_eq!(b.request_id.as_deref(), Some("r"));
    // A message that only looks like JSON stays as it is.
    let b = parse_error_body(r#"{"error":{"message":"{not json"}}"#).unwrap();
    assert_eq!(b.message.as_deref(), Some("{not json"));
    assert_eq!(b.code, None);
    assert_eq!(parse_error_body("<html>Bad gateway</html>"), None);
    assert_eq!(parse_error_body(""), None);
    assert_eq!(parse_error_body(r#"{"value":[]}"#), None);
}

#[test]
fn permission_named_in_the_message() {
    let m = "Application is not authorized to perform this operation. Application must \
             have one of the following scopes: DeviceManagementManagedDevices.PrivilegedOperations.All";
    assert_eq!(
        missing_permission(m, "X.All").as_deref(),
        Some("DeviceManagementManagedDevices.PrivilegedOperations.All")
    );
    let m = "Missing scopes: DeviceManagementManagedDevices.Read.All, DeviceManagementManagedDevices.ReadWrite.All.";
    assert_eq!(
        missing_permission(m, "X.All").as_deref(),
        Some(
            "DeviceManagementManagedDevices.Read.All or DeviceManagementManagedDevices.ReadWrite.All"
        )
    );
}

#[test]
fn permission_implied_by_the_message() {
    for m in [
        "Application is not authorized to perform this operation.",
        "Request failed: missing permission",
        "Insufficient privileges to complete the operation.",
    ] {
        assert_eq!(
            missing_permission(m, "Needed.All").as_deref(),
            Some("Needed.All"),
            "{m}"
        );
    }
    assert_eq!(
        missing_permission("Blocked by a scope tag. See v1.0 docs.", "Needed.All"),
        None
    );
    assert_eq!(missing_permission("", "Needed.All"), None);
}

#[test]
fn outcome_unknown_by_kind() {
    let e = |kind| CallError {
        kind,
        status: None,
        message: String::new(),
        code: None,
        request_id: None,
        client_request_id: "c".into(),
        retry_after: None,
    };
    for k in [
        CallErrorKind::Timeout,
        CallErrorKind::ConnectionLost,
        CallErrorKind::InvalidResponse,
        CallErrorKind::Unavailable,
        CallErrorKind::ServerError,
    ] {
        assert!(e(k.clone()).outcome_unknown(), "{k:?}");
    }
    for k in [
        CallErrorKind::ConnectFailed,
        CallErrorKind::Throttled,
        CallErrorKind::Unauthorized,
        CallErrorKind::Forbidden { permission: None },
        CallErrorKind::NotFound,
        CallErrorKind::Rejected,
        CallErrorKind::UnsafeLink,
        CallErrorKind::SignIn(Box::new(AuthError::BadAnswer {
            url: "u".into(),
            status: 503,
            why: "w".into(),
        })),
    ] {
        assert!(!e(k.clone()).outcome_unknown(), "{k:?}");
    }
}

#[test]
fn status_mapping() {
    assert_eq!(
        CallErrorKind::from_status(429, None),
        CallErrorKind::Throttled
    );
    for s in [502, 503, 504] {
        assert_eq!(
            CallErrorKind::from_status(s, None),
            CallErrorKind::Unavailable
        );
    }
    assert_eq!(
        CallErrorKind::from_status(500, None),
        CallErrorKind::ServerError
    );
    assert_eq!(
        CallErrorKind::from_status(400, None),
        CallErrorKind::Rejected
    );
    assert_eq!(
        CallErrorKind::from_status(409, None),
        CallErrorKind::Rejected
    );
    assert_eq!(
        CallErrorKind::from_status(404, None),
        CallErrorKind::NotFound
    );
    assert_eq!(
        CallErrorKind::from_status(401, None),
        CallErrorKind::Unauthorized
    );
    assert_eq!(
        CallErrorKind::from_status(302, None),
        CallErrorKind::InvalidResponse
    );
    assert_eq!(
        CallErrorKind::from_status(403, Some("P.All".into())),
        CallErrorKind::Forbidden {
            permission: Some("P.All".into())
        }
    );
}

#[test]
fn display_names_the_ids_and_the_permission() {
    let e = CallError {
        kind: CallErrorKind::Forbidden {
            permission: Some("P.All".into()),
        },
        status: Some(403),
        message: "Application is not authorized".into(),
        code: Some("Forbidden".into()),
        request_id: Some("rid".into()),
        client_request_id: "cid".into(),
        retry_after: None,
    };
    let s = e.to_string();
    for part in [
        "P.All",
        "admin consent",
        "HTTP 403",
        "request-id rid",
        "client-request-id cid",
    ] {
        assert!(s.contains(part), "{s}");
    }
}

proptest! {
    #[test]
    fn any_body_parses_without_panicking(body in "\\PC{0,200}") {
        let _ = parse_error_body(&body);
    }

    #[test]
    fn nested_message_round_trips(msg in "[A-Za-z0-9 .,:-]{1,80}") {
        prop_assume!(!msg.trim().is_empty());
        let inner = serde_json::json!({"_version": 3, "Message": msg, "CustomApiErrorPhrase": "", "RetryAfter": null});
        let body = serde_json::json!({"error": {"code": "BadRequest", "message": inner.to_string()}});
        let b = parse_error_body(&body.to_string()).unwrap();
        prop_assert_eq!(b.message.as_deref(), Some(msg.trim()));
    }
}
