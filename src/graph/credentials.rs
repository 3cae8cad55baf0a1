//! Who the tool signs in as, from `--tenant`/`--client-id` and the environment.
//!
//! Secrets come only from the environment (or a file it names), never from a flag: a
//! flag value sits in shell history and in every process listing. The variable names are
//! the ones every Azure SDK reads (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`, `AZURE_CLIENT_CERTIFICATE_PATH`), so a CI job set up for one
//! Azure tool works with this one; `INTUNE_RESET_ACCESS_TOKEN` hands over a token
//! obtained elsewhere (delegated sign-in, a managed identity).
//!
//! The environment is read through a lookup function, so tests pass a map instead of
//! changing the process environment (which is shared by every test thread).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::secret::Secret;

pub const ENV_ACCESS_TOKEN: &str = "INTUNE_RESET_ACCESS_TOKEN";
pub const ENV_CERTIFICATE_PATH: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
pub const ENV_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
pub const ENV_TENANT_ID: &str = "AZURE_TENANT_ID";
pub const ENV_CLIENT_ID: &str = "AZURE_CLIENT_ID";

/// The identity flags, as the command line gave them.
#[derive(Debug, Clone, Default)]
pub struct IdentityFlags {
    /// `--tenant`: a tenant id (GUID) or a verified domain (`contoso.onmicrosoft.com`).
    pub tenant: Option<String>,
    /// `--client-id`: the app registration's application (client) id.
    pub client_id: Option<String>,
}

/// How to obtain access tokens.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A ready token from `INTUNE_RESET_ACCESS_TOKEN`; never renewed.
    AccessToken(Secret),
    /// An app registration signing in with the client credentials grant.
    App {
        /// A tenant id (GUID) or verified domain; checked to be nothing else.
        tenant: String,
        /// The app registration's application (client) id.
        client_id: String,
        credential: AppCredential,
    },
}

impl Identity {
    /// As whom requests are made, `(what, value)`, for a report: never the secret.
    pub fn describe(&self) -> Vec<(String, String)> {
        match self {
            Identity::AccessToken(_) => vec![(
                "sign-in".into(),
                format!("a ready access token ({ENV_ACCESS_TOKEN})"),
            )],
            Identity::App {
                tenant,
                client_id,
                credential,
            } => vec![
                ("tenant".into(), tenant.clone()),
                ("client id".into(), client_id.clone()),
                (
                    "credential".into(),
                    match credential {
                        AppCredential::Secret(_) => "client secret".into(),
                        AppCredential::Certificate(c) => {
                            format!("certificate {}", c.path.display())
                        }
                    },
                ),
            ],
        }
    }
}

/// What proves the app's identity to Entra ID.
#[derive(Debug, Clone)]
pub enum AppCredential {
    /// `AZURE_CLIENT_SECRET`.
    Secret(Secret),
    /// `AZURE_CLIENT_CERTIFICATE_PATH`: signs client assertions.
    Certificate(Certificate),
}

/// A certificate and its RSA private key, read from one PEM file.
#[derive(Clone)]
pub struct Certificate {
    /// Where it was read from, for messages.
    pub path: PathBuf,
    /// base64url SHA-256 of the certificate's DER: the `x5t#S256` header by which Entra
    /// finds the certificate registered on the app.
    pub thumbprint_s256: String,
    /// The private key; `Arc` because `RsaKeyPair` cannot be cloned and every clone of a
    /// `TokenSource` shares it.
    pub(crate) key: Arc<RsaKeyPair>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("path", &self.path)
            .field("thumbprint_s256", &self.thumbprint_s256)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The identity and what the caller should warn about.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub identity: Identity,
    /// Sentences to log as warnings (an over-readable key file, ignored variables).
    pub warnings: Vec<String>,
}

/// Why the tool cannot sign in; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot sign in: missing {}", .0.join("; "))]
    Missing(Vec<String>),
    #[error(
        "the tenant '{0}' is neither a tenant id (GUID) nor a domain name such as \
         contoso.onmicrosoft.com"
    )]
    InvalidTenant(String),
    #[error("cannot read the certificate file {path} (from {ENV_CERTIFICATE_PATH}): {why}")]
    CertificateUnreadable { path: String, why: String },
    #[error(
        "the certificate file {path} (from {ENV_CERTIFICATE_PATH}) holds no {what}; it must \
         be one PEM file with both the certificate and its private key"
    )]
    CertificateIncomplete { path: String, what: &'static str },
    #[error(
        "the private key in {path} cannot be used: {why}; an RSA key in PKCS#8 \
         (BEGIN PRIVATE KEY) or PKCS#1 (BEGIN RSA PRIVATE KEY) form is needed, unencrypted"
    )]
    KeyUnusable { path: String, why: String },
    #[error(
        "the certificate and the private key in {path} do not belong together (the key's \
         public part is not the certificate's)"
    )]
    KeyMismatch { path: String },
}

/// Resolves the identity: `INTUNE_RESET_ACCESS_TOKEN`, else a certificate from
/// `AZURE_CLIENT_CERTIFICATE_PATH`, else `AZURE_CLIENT_SECRET`. Flags win over
/// `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`. Empty values count as unset.
pub fn resolve(
    flags: &IdentityFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, CredentialError> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let token = get(ENV_ACCESS_TOKEN);
    let cert_path = get(ENV_CERTIFICATE_PATH);
    let secret = get(ENV_CLIENT_SECRET);
    let mut warnings = Vec::new();

    if let Some(token) = token {
        for (name, set) in [
            (ENV_CERTIFICATE_PATH, cert_path.is_some()),
            (ENV_CLIENT_SECRET, secret.is_some()),
        ] {
            if set {
                warnings.push(format!(
                    "{ENV_ACCESS_TOKEN} is set, so {name} is ignored; the ready token is used \
                     as it is and not renewed"
                ));
            }
        }
        return Ok(Resolved {
            identity: Identity::AccessToken(Secret::new(without_bearer(&token))),
            warnings,
        });
    }

    // The certificate wins: it cannot leak the way a secret can.
    let source = match (cert_path, secret) {
        (Some(path), secret) => {
            if secret.is_some() {
                warnings.push(format!(
                    "{ENV_CERTIFICATE_PATH} is set, so {ENV_CLIENT_SECRET} is ignored"
                ));
            }
            Some(Source::Certificate(PathBuf::from(path.trim())))
        }
        (None, Some(secret)) => Some(Source::Secret(Secret::new(secret))),
        (None, None) => None,
    };
    let tenant = flag_or_env(flags.tenant.as_deref(), &get, ENV_TENANT_ID);
    let client_id = flag_or_env(flags.client_id.as_deref(), &get, ENV_CLIENT_ID);
    let mut missing = Vec::new();
    if tenant.is_none() {
        missing.push(format!("the tenant (pass --tenant or set {ENV_TENANT_ID})"));
    }
    if client_id.is_none() {
        missing.push(format!(
            "the client id (pass --client-id or set {ENV_CLIENT_ID})"
        ));
    }
    if source.is_none() {
        missing.push(format!(
            "a credential (set {ENV_CERTIFICATE_PATH} to a PEM file with certificate and \
             private key, or {ENV_CLIENT_SECRET}, or {ENV_ACCESS_TOKEN} to a ready token)"
        ));
    }
    let (Some(tenant), Some(client_id), Some(source)) = (tenant, client_id, source) else {
        return Err(CredentialError::Missing(missing));
    };
    if !is_tenant(&tenant) {
        return Err(CredentialError::InvalidTenant(tenant));
    }
    let credential = match source {
        Source::Certificate(path) => {
            if let Some(w) = readable_by_others(&path) {
                warnings.push(w);
            }
            AppCredential::Certificate(load_certificate(&path)?)
        }
        Source::Secret(secret) => AppCredential::Secret(secret),
    };
    Ok(Resolved {
        identity: Identity::App {
            tenant,
            client_id,
            credential,
        },
        warnings,
    })
}

/// Where the app's credential will come from, before the file is read.
enum Source {
    Certificate(PathBuf),
    Secret(Secret),
}

fn flag_or_env(
    flag: Option<&str>,
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Option<String> {
    flag.map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .or_else(|| get(name).map(|v| v.trim().to_owned()))
}

/// The token itself, when it was pasted with its `Bearer ` prefix.
fn without_bearer(token: &str) -> &str {
    let token = token.trim();
    match token.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
        _ => token,
    }
}

/// A GUID or a domain name: it goes into the token URL's path, so nothing else passes.
fn is_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 253
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !t.starts_with('.')
        && !t.contains("..")
}

/// A warning when group or others may read the key file (unix mode & 0o077).
#[cfg(unix)]
fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "the private key file {} can be read by other users (mode {:03o}); restrict it \
             with chmod 600",
            path.display(),
            mode & 0o777
        )
    })
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> Option<String> {
    None
}

/// Reads a PEM file holding a certificate and its RSA private key (PKCS#8 or PKCS#1).
pub fn load_certificate(path: &Path) -> Result<Certificate, CredentialError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|e| CredentialError::CertificateUnreadable {
        path: shown.clone(),
        why: e.to_string(),
    })?;
    let cert = CertificateDer::pem_slice_iter(&pem)
        .next()
        .and_then(Result::ok)
        .ok_or(CredentialError::CertificateIncomplete {
            path: shown.clone(),
            what: "certificate (BEGIN CERTIFICATE)",
        })?;
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    if contains(b"ENCRYPTED PRIVATE KEY--") || contains(b"Proc-Type: 4,ENCRYPTED") {
        return Err(CredentialError::KeyUnusable {
            path: shown,
            why: "it is protected by a password (write it out unencrypted, for example \
                  with `openssl pkey -in FILE -out KEY.pem`, and keep that file mode 600)"
                .into(),
        });
    }
    // The PEM error could quote the file; say only what kind of problem it is.
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        CredentialError::CertificateIncomplete {
            path: shown.clone(),
            what: "private key",
        }
    })?;
    let unusable = |why: String| CredentialError::KeyUnusable {
        path: shown.clone(),
        why,
    };
    let key = match &key {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(_) => return Err(unusable("it is an elliptic-curve key".into())),
        _ => return Err(unusable("its format is not supported".into())),
    }
    .map_err(|e| unusable(e.to_string()))?;
    // The certificate's SubjectPublicKeyInfo wraps the RSAPublicKey DER verbatim, so a
    // byte search tells whether key and certificate belong together.
    let public = key.public().as_ref();
    if !cert.windows(public.len()).any(|w| w == public) {
        return Err(CredentialError::KeyMismatch { path: shown });
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    Ok(Certificate {
        path: path.to_owned(),
        thumbprint_s256: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        key: Arc::new(key),
    })
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
pub(crate) mod tests;
