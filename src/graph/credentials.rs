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
pub const ENV_CERTIFICATE_PASSWORD: &str = "AZURE_CLIENT_CERTIFICATE_PASSWORD";
pub const ENV_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
pub const ENV_TENANT_ID: &str = "AZURE_TENANT_ID";
pub const ENV_CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub const ENV_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// App Service, Functions and Container Apps: the managed identity endpoint and the
/// header value that proves the caller runs there.
pub const ENV_IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
pub const ENV_IDENTITY_HEADER: &str = "IDENTITY_HEADER";
/// Azure Identity's override of the instance metadata endpoint's host (AKS pod
/// identity); also how tests point `managed-identity` at a simulator.
pub const ENV_IMDS_HOST: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
/// The instance metadata service of Azure VMs and scale sets.
pub const IMDS_BASE: &str = "http://169.254.169.254/";

/// `--auth`: which credential signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Secret,
    Certificate,
    DeviceCode,
    Browser,
    ManagedIdentity,
    WorkloadIdentity,
    Token,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 7] = [
        AuthMethod::Secret,
        AuthMethod::Certificate,
        AuthMethod::DeviceCode,
        AuthMethod::Browser,
        AuthMethod::ManagedIdentity,
        AuthMethod::WorkloadIdentity,
        AuthMethod::Token,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Secret => "secret",
            AuthMethod::Certificate => "certificate",
            AuthMethod::DeviceCode => "device-code",
            AuthMethod::Browser => "browser",
            AuthMethod::ManagedIdentity => "managed-identity",
            AuthMethod::WorkloadIdentity => "workload-identity",
            AuthMethod::Token => "token",
        }
    }

    /// A user signs in (the token acts with the user's Intune role), not an app.
    pub fn is_delegated(self) -> bool {
        matches!(self, AuthMethod::DeviceCode | AuthMethod::Browser)
    }
}

/// The identity flags, as the command line gave them.
#[derive(Debug, Clone, Default)]
pub struct IdentityFlags {
    /// `--tenant`: a tenant id (GUID) or a verified domain (`contoso.onmicrosoft.com`).
    pub tenant: Option<String>,
    /// `--client-id`: the app registration's application (client) id.
    pub client_id: Option<String>,
    /// `--auth`; `None` picks the first credential the environment configures.
    pub auth: Option<AuthMethod>,
    /// `--managed-identity-client-id`: a user-assigned managed identity.
    pub managed_identity_client_id: Option<String>,
    /// Someone is at a terminal: without `--auth` and any configured credential, the
    /// browser sign-in is the default.
    pub terminal: bool,
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
    /// An administrator signing in through their own public client app registration;
    /// the tokens carry the user's Intune role.
    Delegated {
        /// A tenant id, a domain, or `organizations` (any work account's home tenant).
        tenant: String,
        client_id: String,
        flow: Interactive,
    },
    /// The managed identity of the Azure resource the tool runs on.
    Managed(ManagedIdentity),
}

impl Identity {
    pub fn method(&self) -> AuthMethod {
        match self {
            Identity::AccessToken(_) => AuthMethod::Token,
            Identity::App { credential, .. } => match credential {
                AppCredential::Secret(_) => AuthMethod::Secret,
                AppCredential::Certificate(_) => AuthMethod::Certificate,
                AppCredential::Federated(_) => AuthMethod::WorkloadIdentity,
            },
            Identity::Delegated { flow, .. } => match flow {
                Interactive::DeviceCode => AuthMethod::DeviceCode,
                Interactive::Browser => AuthMethod::Browser,
            },
            Identity::Managed(_) => AuthMethod::ManagedIdentity,
        }
    }
}

/// The interactive sign-ins of a delegated identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interactive {
    /// The code is typed at `microsoft.com/devicelogin` on any device.
    DeviceCode,
    /// Authorization code with PKCE, answered to a loopback listener.
    Browser,
}

/// Where a managed identity's tokens come from.
#[derive(Debug, Clone)]
pub struct ManagedIdentity {
    pub endpoint: ManagedEndpoint,
    /// A user-assigned identity's client id; `None` for the system-assigned one.
    pub client_id: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ManagedEndpoint {
    /// Azure VMs and scale sets: `{base}metadata/identity/oauth2/token`, header
    /// `Metadata: true`.
    Imds(url::Url),
    /// App Service, Functions, Container Apps: `IDENTITY_ENDPOINT`, header
    /// `X-IDENTITY-HEADER`.
    AppService { url: url::Url, header: Secret },
}

/// What proves the app's identity to Entra ID.
#[derive(Debug, Clone)]
pub enum AppCredential {
    /// `AZURE_CLIENT_SECRET`.
    Secret(Secret),
    /// `AZURE_CLIENT_CERTIFICATE_PATH`: signs client assertions.
    Certificate(Certificate),
    /// `AZURE_FEDERATED_TOKEN_FILE`: a token from another identity provider (GitHub
    /// Actions, Kubernetes), read again at every request because it rotates.
    Federated(PathBuf),
}

/// A certificate and its RSA private key, read from one PEM or PKCS#12 file.
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
    #[error("cannot sign in with --auth {}: missing {}", .0.as_str(), .1.join("; "))]
    Missing(AuthMethod, Vec<String>),
    #[error(
        "cannot sign in: no credential is configured and there is no terminal for a browser \
         sign-in. Choose one with --auth: {ENV_ACCESS_TOKEN} (token), \
         {ENV_FEDERATED_TOKEN_FILE} (workload-identity), {ENV_CERTIFICATE_PATH} \
         (certificate) or {ENV_CLIENT_SECRET} (secret) with --tenant and --client-id; \
         --auth device-code or --auth browser with your own public client app \
         (--client-id); or --auth managed-identity on an Azure resource"
    )]
    NothingConfigured,
    #[error(
        "the tenant '{0}' is neither a tenant id (GUID) nor a domain name such as \
         contoso.onmicrosoft.com"
    )]
    InvalidTenant(String),
    #[error("cannot read the certificate file {path} (from {ENV_CERTIFICATE_PATH}): {why}")]
    CertificateUnreadable { path: String, why: String },
    #[error(
        "the certificate file {path} (from {ENV_CERTIFICATE_PATH}) holds no {what}; it must \
         be one PEM file with both the certificate and its private key, or a PKCS#12 \
         (.pfx, .p12) file"
    )]
    CertificateIncomplete { path: String, what: &'static str },
    #[error(
        "the private key in {path} cannot be used: {why}; an RSA key in PKCS#8 \
         (BEGIN PRIVATE KEY) or PKCS#1 (BEGIN RSA PRIVATE KEY) form is needed, unencrypted, \
         or a PKCS#12 (.pfx, .p12) file"
    )]
    KeyUnusable { path: String, why: String },
    #[error(
        "the certificate and the private key in {path} do not belong together (the key's \
         public part is not the certificate's)"
    )]
    KeyMismatch { path: String },
    #[error("the PKCS#12 file {path} (from {ENV_CERTIFICATE_PATH}) cannot be opened: {why}")]
    Pkcs12 { path: String, why: String },
    #[error("cannot read the federated token file {path} (from {ENV_FEDERATED_TOKEN_FILE}): {why}")]
    FederatedTokenUnreadable { path: String, why: String },
    #[error("{what} '{value}' is not usable: {why}")]
    BadEndpoint {
        what: &'static str,
        value: String,
        why: String,
    },
}

/// Resolves the identity. `--auth` names the credential; without it, the first one the
/// environment configures wins: `INTUNE_RESET_ACCESS_TOKEN`, `AZURE_FEDERATED_TOKEN_FILE`,
/// `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_CLIENT_SECRET`, then, on a terminal, the
/// browser. A managed identity only when asked for: probing the metadata endpoint from
/// a laptop is slow and wrong. Flags win over `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`.
/// Empty values count as unset.
pub fn resolve(
    flags: &IdentityFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, CredentialError> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let mut warnings = Vec::new();
    let chain = [
        (ENV_ACCESS_TOKEN, AuthMethod::Token),
        (ENV_FEDERATED_TOKEN_FILE, AuthMethod::WorkloadIdentity),
        (ENV_CERTIFICATE_PATH, AuthMethod::Certificate),
        (ENV_CLIENT_SECRET, AuthMethod::Secret),
    ];
    let method = match flags.auth {
        Some(m) => {
            for (name, _) in chain.iter().filter(|(_, by)| *by != m) {
                if get(name).is_some() {
                    warnings.push(format!(
                        "{name} is set, but --auth {} signs in, so it is ignored",
                        m.as_str()
                    ));
                }
            }
            m
        }
        None => {
            let set: Vec<(&str, AuthMethod)> = chain
                .iter()
                .copied()
                .filter(|(name, _)| get(name).is_some())
                .collect();
            match set.split_first() {
                Some((&(winner, method), rest)) => {
                    for (name, _) in rest {
                        warnings.push(format!(
                            "{winner} is set, so {name} is ignored (choose another with --auth)"
                        ));
                    }
                    method
                }
                None if flags.terminal => AuthMethod::Browser,
                None => return Err(CredentialError::NothingConfigured),
            }
        }
    };
    let mut missing = Vec::new();
    let need = |missing: &mut Vec<String>, name: &str, what: &str| {
        let value = get(name);
        if value.is_none() {
            missing.push(format!("{what} (set {name})"));
        }
        value
    };
    let tenant_flag = flag_or_env(flags.tenant.as_deref(), &get, ENV_TENANT_ID);
    let client_flag = flag_or_env(flags.client_id.as_deref(), &get, ENV_CLIENT_ID);
    let identity = match method {
        AuthMethod::Token => {
            let Some(token) = need(&mut missing, ENV_ACCESS_TOKEN, "a ready access token") else {
                return Err(CredentialError::Missing(method, missing));
            };
            if flags.auth.is_none() {
                warnings.retain(|_| false);
                for name in [
                    ENV_CERTIFICATE_PATH,
                    ENV_CLIENT_SECRET,
                    ENV_FEDERATED_TOKEN_FILE,
                ] {
                    if get(name).is_some() {
                        warnings.push(format!(
                            "{ENV_ACCESS_TOKEN} is set, so {name} is ignored; the ready token \
                             is used as it is and not renewed"
                        ));
                    }
                }
            }
            Identity::AccessToken(Secret::new(without_bearer(&token)))
        }
        AuthMethod::ManagedIdentity => {
            let client_id = flags
                .managed_identity_client_id
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .or_else(|| get(ENV_CLIENT_ID).map(|v| v.trim().to_owned()));
            let endpoint = match (get(ENV_IDENTITY_ENDPOINT), get(ENV_IDENTITY_HEADER)) {
                (Some(url), Some(header)) => ManagedEndpoint::AppService {
                    url: managed_url(ENV_IDENTITY_ENDPOINT, url.trim())?,
                    header: Secret::new(header.trim()),
                },
                _ => {
                    let base = get(ENV_IMDS_HOST).unwrap_or_else(|| IMDS_BASE.to_owned());
                    let mut url = managed_url(ENV_IMDS_HOST, base.trim())?;
                    if !url.path().ends_with('/') {
                        let path = format!("{}/", url.path());
                        url.set_path(&path);
                    }
                    let url = url.join("metadata/identity/oauth2/token").map_err(|e| {
                        CredentialError::BadEndpoint {
                            what: ENV_IMDS_HOST,
                            value: base.clone(),
                            why: e.to_string(),
                        }
                    })?;
                    ManagedEndpoint::Imds(url)
                }
            };
            Identity::Managed(ManagedIdentity {
                endpoint,
                client_id,
            })
        }
        AuthMethod::DeviceCode | AuthMethod::Browser => {
            if client_flag.is_none() {
                missing.push(format!(
                    "the client id of your own public client app registration (pass \
                     --client-id or set {ENV_CLIENT_ID}; the README says how to create it)"
                ));
                return Err(CredentialError::Missing(method, missing));
            }
            let tenant = tenant_flag.unwrap_or_else(|| "organizations".to_owned());
            if !is_tenant(&tenant) {
                return Err(CredentialError::InvalidTenant(tenant));
            }
            Identity::Delegated {
                tenant,
                client_id: client_flag.unwrap_or_default(),
                flow: if method == AuthMethod::DeviceCode {
                    Interactive::DeviceCode
                } else {
                    Interactive::Browser
                },
            }
        }
        AuthMethod::Secret | AuthMethod::Certificate | AuthMethod::WorkloadIdentity => {
            if tenant_flag.is_none() {
                missing.push(format!("the tenant (pass --tenant or set {ENV_TENANT_ID})"));
            }
            if client_flag.is_none() {
                missing.push(format!(
                    "the client id (pass --client-id or set {ENV_CLIENT_ID})"
                ));
            }
            let source = match method {
                AuthMethod::Secret => need(&mut missing, ENV_CLIENT_SECRET, "the client secret")
                    .map(|s| Source::Secret(Secret::new(s))),
                AuthMethod::Certificate => need(
                    &mut missing,
                    ENV_CERTIFICATE_PATH,
                    "the certificate (a PEM file with certificate and private key, or a .pfx/.p12)",
                )
                .map(|p| Source::Certificate(PathBuf::from(p.trim()))),
                _ => need(
                    &mut missing,
                    ENV_FEDERATED_TOKEN_FILE,
                    "the federated token file",
                )
                .map(|p| Source::Federated(PathBuf::from(p.trim()))),
            };
            let (Some(tenant), Some(client_id), Some(source)) = (tenant_flag, client_flag, source)
            else {
                return Err(CredentialError::Missing(method, missing));
            };
            if !is_tenant(&tenant) {
                return Err(CredentialError::InvalidTenant(tenant));
            }
            let credential = match source {
                Source::Certificate(path) => {
                    if let Some(w) = readable_by_others(&path) {
                        warnings.push(w);
                    }
                    let password = get(ENV_CERTIFICATE_PASSWORD).map(Secret::new);
                    AppCredential::Certificate(load_any_certificate(&path, password.as_ref())?)
                }
                Source::Secret(secret) => AppCredential::Secret(secret),
                Source::Federated(path) => {
                    read_federated_token(&path)?;
                    AppCredential::Federated(path)
                }
            };
            Identity::App {
                tenant,
                client_id,
                credential,
            }
        }
    };
    Ok(Resolved { identity, warnings })
}

/// A managed identity endpoint: https, or http to loopback (App Service's local
/// endpoint) or to the metadata service's fixed link-local address.
fn managed_url(what: &'static str, value: &str) -> Result<url::Url, CredentialError> {
    let bad = |why: String| CredentialError::BadEndpoint {
        what,
        value: value.to_owned(),
        why,
    };
    let url = url::Url::parse(value).map_err(|e| bad(e.to_string()))?;
    let imds = url.host_str() == Some("169.254.169.254");
    match url.scheme() {
        "https" => Ok(url),
        "http" if imds || super::cloud::is_loopback(&url) => Ok(url),
        "http" => Err(bad(
            "plain http is allowed only to this machine or to the metadata service \
             169.254.169.254"
                .into(),
        )),
        other => Err(bad(format!("the scheme {other} is not http or https"))),
    }
}

/// The federated token, read afresh: the file rotates (GitHub Actions, Kubernetes).
pub fn read_federated_token(path: &Path) -> Result<Secret, CredentialError> {
    let unreadable = |why: String| CredentialError::FederatedTokenUnreadable {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(unreadable("it is empty".into()));
    }
    Ok(Secret::new(token))
}

/// Where the app's credential will come from, before the file is read.
enum Source {
    Certificate(PathBuf),
    Secret(Secret),
    Federated(PathBuf),
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

/// A certificate file as Azure SDK users hold it: PEM (certificate and key), or
/// PKCS#12 (`.pfx`, `.p12`) with the password from `AZURE_CLIENT_CERTIFICATE_PASSWORD`.
/// The content decides, not the extension: a PEM file is text with `-----BEGIN`.
pub fn load_any_certificate(
    path: &Path,
    password: Option<&Secret>,
) -> Result<Certificate, CredentialError> {
    let bytes = std::fs::read(path).map_err(|e| CredentialError::CertificateUnreadable {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    let is_pem = bytes.windows(10).any(|w| w == b"-----BEGIN");
    if is_pem {
        load_certificate(path)
    } else {
        load_pkcs12(path, &bytes, password)
    }
}

/// Reads a PKCS#12 file: its first private key and the certificate that goes with it.
fn load_pkcs12(
    path: &Path,
    bytes: &[u8],
    password: Option<&Secret>,
) -> Result<Certificate, CredentialError> {
    let shown = path.display().to_string();
    let fail = |why: String| CredentialError::Pkcs12 {
        path: shown.clone(),
        why,
    };
    let pass = password.map(Secret::expose).unwrap_or("");
    let store = p12_keystore::KeyStore::from_pkcs12(
        bytes,
        pass,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| {
        // The library's message names no secret; it says which step failed.
        let detail = e.to_string();
        let lower = detail.to_ascii_lowercase();
        if lower.contains("mac") || lower.contains("decrypt") || lower.contains("password") {
            fail(if password.is_some() {
                format!(
                    "the password in {ENV_CERTIFICATE_PASSWORD} does not open it ({detail}); \
                     set the password the file was exported with"
                )
            } else {
                format!("it is protected by a password: set {ENV_CERTIFICATE_PASSWORD} ({detail})")
            })
        } else {
            fail(format!(
                "it is not a PKCS#12 file this tool can read ({detail}); export it again as \
                 .pfx with AES-256 encryption, or as one PEM file with certificate and key"
            ))
        }
    })?;
    let Some((_, chain)) = store.private_key_chain() else {
        return Err(CredentialError::CertificateIncomplete {
            path: shown,
            what: "private key",
        });
    };
    let key =
        RsaKeyPair::from_pkcs8(chain.key().as_der()).map_err(|e| CredentialError::KeyUnusable {
            path: shown.clone(),
            why: format!("it is not an RSA key ({e})"),
        })?;
    let public = key.public().as_ref();
    let cert = chain
        .certs()
        .iter()
        .map(|c| c.as_der())
        .find(|der| der.windows(public.len()).any(|w| w == public))
        .ok_or(CredentialError::KeyMismatch { path: shown })?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert);
    Ok(Certificate {
        path: path.to_owned(),
        thumbprint_s256: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        key: Arc::new(key),
    })
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
