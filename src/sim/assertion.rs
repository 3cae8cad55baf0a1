//! Client assertions: the JWT a client signs with its certificate's key instead of
//! sending a secret (<https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials>).
//!
//! The simulator checks what Entra checks before the signature: the header names the
//! certificate (`x5t#S256`, current docs, or `x5t`, older ones), `aud` is the token URL,
//! `iss` and `sub` are the client id, and `exp` is in the future. It does not verify the
//! RSA signature: that needs the certificate's public key and an X.509 parser, and
//! what the runner gets wrong in practice is the claims, not the maths.

use serde_json::Value;

/// Why Entra refuses an assertion, with the AADSTS code it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The AADSTS number, the part clients and people search for.
    pub code: u32,
    /// The OAuth `error` (`invalid_client`, `invalid_request`).
    pub error: &'static str,
    /// Entra's sentence after the code.
    pub message: String,
}

fn refuse(code: u32, error: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        error,
        message: message.into(),
    }
}

/// What the assertion proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asserted {
    /// The app the token is for (the assertion's `iss`).
    pub client_id: String,
}

/// What the assertion is checked against.
pub struct Expected<'a> {
    /// `client_id` from the form, if the client sent one.
    pub client_id: Option<&'a str>,
    /// The tenant segment of the token URL the client called.
    pub tenant_path: &'a str,
    /// A registered certificate thumbprint, if the simulator has one.
    pub thumbprint: Option<&'a str>,
    /// Now, in seconds since the Unix epoch.
    pub now_unix: u64,
}

pub fn check(assertion: &str, expected: &Expected<'_>) -> Result<Asserted, Refusal> {
    let malformed = || {
        refuse(
            50027,
            "invalid_request",
            "JWT token is invalid or malformed.",
        )
    };
    let mut parts = assertion.split('.');
    let (Some(header), Some(claims), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let header = decode_json(header).ok_or_else(malformed)?;
    let claims = decode_json(claims).ok_or_else(malformed)?;
    let thumbprint = header
        .get("x5t#S256")
        .or_else(|| header.get("x5t"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            refuse(
                700027,
                "invalid_client",
                "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '']",
            )
        })?;
    if let Some(registered) = expected.thumbprint
        && thumbprint != registered
    {
        return Err(refuse(
            700027,
            "invalid_client",
            format!(
                "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}']"
            ),
        ));
    }
    let claim = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("");
    let (iss, sub) = (claim("iss"), claim("sub"));
    if iss.is_empty() || iss != sub || expected.client_id.is_some_and(|c| c != iss) {
        return Err(refuse(
            700021,
            "invalid_client",
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let audience_path = format!("/{}/oauth2/v2.0/token", expected.tenant_path);
    if !claim("aud").ends_with(&audience_path) {
        return Err(refuse(
            50013,
            "invalid_client",
            format!(
                "Assertion audience claim does not match the required value. The audience in the assertion was '{}' and the expected audience ends with '{audience_path}'.",
                claim("aud")
            ),
        ));
    }
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    if exp <= expected.now_unix {
        return Err(refuse(
            700024,
            "invalid_client",
            "Client assertion is not within its valid time range.",
        ));
    }
    Ok(Asserted {
        client_id: iss.to_owned(),
    })
}

fn decode_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&base64url(part)?).ok()
}

/// Base64url without padding, as JWTs use (RFC 7515, section 2); padding is tolerated.
pub fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Base64url-encodes, for building test assertions.
    pub fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    pub fn jwt(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.c2ln",
            encode(header.to_string().as_bytes()),
            encode(claims.to_string().as_bytes())
        )
    }

    fn expected(thumbprint: Option<&str>) -> Expected<'_> {
        Expected {
            client_id: Some("app"),
            tenant_path: "t1",
            thumbprint,
            now_unix: 1000,
        }
    }

    #[test]
    fn base64url_round_trips() {
        for text in ["", "a", "ab", "abc", "abcd", "{\"x5t#S256\":\"?>\"}"] {
            assert_eq!(
                base64url(&encode(text.as_bytes())).as_deref(),
                Some(text.as_bytes())
            );
        }
        assert_eq!(base64url("a+b"), None);
    }

    #[test]
    fn a_well_formed_assertion_is_accepted_and_each_defect_has_its_code() {
        let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": "thumb"});
        let good = serde_json::json!({"aud": "http://127.0.0.1:9/t1/oauth2/v2.0/token", "iss": "app", "sub": "app", "exp": 2000, "jti": "1"});
        assert_eq!(
            check(&jwt(&header, &good), &expected(Some("thumb"))),
            Ok(Asserted {
                client_id: "app".into()
            })
        );
        let code = |h: &Value, c: &Value, t: Option<&str>| {
            check(&jwt(h, c), &expected(t)).map_err(|r| r.code).err()
        };
        assert_eq!(code(&header, &good, Some("other")), Some(700027));
        assert_eq!(
            code(&serde_json::json!({"alg": "RS256"}), &good, None),
            Some(700027)
        );
        let mut c = good.clone();
        c["exp"] = 999.into();
        assert_eq!(code(&header, &c, None), Some(700024));
        let mut c = good.clone();
        c["sub"] = "other".into();
        assert_eq!(code(&header, &c, None), Some(700021));
        let mut c = good.clone();
        c["aud"] = "https://login.microsoftonline.com/t2/oauth2/v2.0/token".into();
        assert_eq!(code(&header, &c, None), Some(50013));
        assert_eq!(
            check("not.a-jwt", &expected(None))
                .map_err(|r| r.code)
                .err(),
            Some(50027)
        );
    }
}
