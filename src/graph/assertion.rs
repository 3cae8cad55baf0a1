//! The client assertion: a JWT signed with the app's certificate key, sent instead of a
//! client secret.
//!
//! Format from <https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials>:
//! header `alg` `PS256` with `x5t#S256` (base64url SHA-256 of the certificate DER: how
//! Entra finds the registered certificate), claims `aud` = the token URL, `iss` = `sub` =
//! the client id, a unique `jti`, `nbf`/`iat` = now and `exp` = now + 10 minutes. Older
//! documentation shows `RS256` with a SHA-1 `x5t`; PS256 is what Microsoft recommends now.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::RSA_PSS_SHA256;

use super::credentials::Certificate;
use super::secret::Secret;

/// How long an assertion is valid; Entra accepts up to 10 minutes' worth of use here.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

/// The signature could not be made (the key is unusable for RSA-PSS).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot sign the client assertion with the private key from {path}; check that it is \
     an RSA key of at least 2048 bits"
)]
pub struct SigningError {
    pub path: String,
}

/// Builds and signs the assertion for one token request.
pub fn client_assertion(
    cert: &Certificate,
    client_id: &str,
    token_url: &str,
    now: SystemTime,
) -> Result<Secret, SigningError> {
    let signing_failed = || SigningError {
        path: cert.path.display().to_string(),
    };
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| signing_failed())?
        .as_secs();
    let header = serde_json::json!({
        "alg": "PS256",
        "typ": "JWT",
        "x5t#S256": cert.thumbprint_s256,
    });
    let claims = serde_json::json!({
        "aud": token_url,
        "iss": client_id,
        "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME.as_secs(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; cert.key.public().modulus_len()];
    cert.key
        .sign(
            &RSA_PSS_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| signing_failed())?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::credentials::load_certificate;
    use crate::graph::credentials::tests::fixture;
    use ring::signature::{RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn assertion_has_entra_header_claims_and_a_valid_ps256_signature() {
        for file in ["cert-and-pkcs8-key.pem", "cert-and-pkcs1-key.pem"] {
            let cert = load_certificate(&fixture(file)).unwrap();
            let url = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
            let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            let jwt = client_assertion(&cert, "app-id", url, now).unwrap();
            let parts: Vec<&str> = jwt.expose().split('.').collect();
            assert_eq!(parts.len(), 3);

            let header = decode(parts[0]);
            assert_eq!(header["alg"], "PS256");
            assert_eq!(header["typ"], "JWT");
            assert_eq!(header["x5t#S256"], cert.thumbprint_s256.as_str());

            let claims = decode(parts[1]);
            assert_eq!(claims["aud"], url);
            assert_eq!(claims["iss"], "app-id");
            assert_eq!(claims["sub"], "app-id");
            assert_eq!(claims["nbf"], 1_800_000_000u64);
            assert_eq!(claims["iat"], 1_800_000_000u64);
            assert_eq!(claims["exp"], 1_800_000_600u64);
            let jti = claims["jti"].as_str().unwrap();
            assert!(uuid::Uuid::parse_str(jti).is_ok(), "{jti}");

            let public = UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, cert.key.public());
            let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
            let signed = format!("{}.{}", parts[0], parts[1]);
            public.verify(signed.as_bytes(), &signature).unwrap();
            // A changed claim no longer verifies.
            let forged = format!("{}.{}x", parts[0], parts[1]);
            assert!(public.verify(forged.as_bytes(), &signature).is_err());

            // Each assertion is unique.
            let again = client_assertion(&cert, "app-id", url, now).unwrap();
            assert_ne!(
                decode(again.expose().split('.').nth(1).unwrap())["jti"],
                jti
            );
        }
    }
}
