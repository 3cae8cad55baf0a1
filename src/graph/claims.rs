//! Reading who a token or an ID token names, for the confirmation and the summary.
//!
//! The claims are decoded, not verified: they are shown to the administrator and kept
//! in the audit record, never used to decide anything. The token itself was just
//! received from Entra ID over TLS.

use base64::Engine as _;
use serde_json::Value;

/// The payload of a JWT (`header.payload.signature`), when the text is one.
pub fn jwt_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.is_object().then_some(value)
}

/// The user of a delegated sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedInUser {
    /// `preferred_username` (the UPN of a work account), else `upn`.
    pub upn: Option<String>,
    /// `tid`: the tenant the user signed in to.
    pub tenant_id: Option<String>,
}

impl SignedInUser {
    pub fn from_claims(claims: &Value) -> SignedInUser {
        let text = |name: &str| {
            claims[name]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        SignedInUser {
            upn: text("preferred_username").or_else(|| text("upn")),
            tenant_id: text("tid"),
        }
    }
}

/// A claim of an access token, when it is a JWT (Entra's are; a proxy's may not be).
pub fn token_claim(token: &str, name: &str) -> Option<String> {
    jwt_claims(token)?[name]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b(r#"{"alg":"none"}"#), b(payload))
    }

    #[test]
    fn a_users_upn_and_tenant_come_from_the_id_token() {
        let claims = jwt_claims(&jwt(
            r#"{"preferred_username":"ada@contoso.com","tid":"t-1","name":"Ada"}"#,
        ))
        .unwrap();
        assert_eq!(
            SignedInUser::from_claims(&claims),
            SignedInUser {
                upn: Some("ada@contoso.com".into()),
                tenant_id: Some("t-1".into()),
            }
        );
        assert_eq!(
            token_claim(&jwt(r#"{"appid":"a"}"#), "appid").as_deref(),
            Some("a")
        );
    }

    #[test]
    fn opaque_tokens_name_nobody() {
        assert!(jwt_claims("sim.abcdef").is_none());
        assert!(jwt_claims("a.b.c").is_none());
        assert!(jwt_claims(&jwt("[1]")).is_none());
    }
}
