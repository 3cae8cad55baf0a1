//! Signing in before anything is sent: the client is built and a first token fetched,
//! so a wrong secret or a missing consent stops a command before any device is touched.

use std::time::Duration;

use super::claims::token_claim;
use super::{
    AppCredential, Cloud, Endpoints, GraphClient, Identity, IdentityFlags, Secret, SignInUi,
};

/// A real tenant: who signs in (flags and environment), and where. The default is the
/// global cloud with everything else from the environment.
#[derive(Debug, Clone, Default)]
pub struct Tenant {
    pub identity: IdentityFlags,
    pub cloud: Cloud,
    /// `--graph-url`: another Graph host (tests, proxies); http only to loopback.
    pub graph_url: Option<String>,
    /// `--authority-url`: another Entra ID host; http only to loopback.
    pub authority_url: Option<String>,
}

impl Tenant {
    pub fn endpoints(&self) -> Result<Endpoints, super::EndpointError> {
        Endpoints::new(
            self.cloud,
            self.graph_url.as_deref(),
            self.authority_url.as_deref(),
        )
    }
}

/// Who signed in, as the confirmation, the summary and `--summary-json` name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignedIn {
    /// `--auth`'s name of the credential: `secret`, `browser`, `managed-identity`...
    pub method: &'static str,
    /// The tenant id the token was issued in, else the tenant as configured.
    pub tenant: String,
    /// The user's UPN (delegated sign-ins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The app's (or managed identity's) client id (app-only sign-ins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The built-in simulator, not a real tenant.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub simulated: bool,
}

impl SignedIn {
    /// `(what, value)` pairs for a report's Summary sheet: never a secret.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("signed in as".to_owned(), self.describe()),
            ("sign-in".to_owned(), self.method.to_owned()),
            ("tenant".to_owned(), self.tenant.clone()),
        ];
        if let Some(user) = &self.user {
            out.push(("user".into(), user.clone()));
        }
        if let Some(id) = &self.client_id {
            out.push(("client id".into(), id.clone()));
        }
        out
    }

    /// `ada@contoso.com (browser sign-in) in tenant 72f9...`, for people.
    pub fn describe(&self) -> String {
        let who = match (&self.user, &self.client_id) {
            (Some(user), _) => format!("{user} ({} sign-in)", self.method),
            (None, Some(app)) if self.method == "managed-identity" => {
                format!("managed identity {app}")
            }
            (None, Some(app)) if self.method == "token" => format!("a ready token of app {app}"),
            (None, Some(app)) => format!("app {app} ({})", self.method),
            (None, None) if self.method == "managed-identity" => {
                "the system-assigned managed identity".to_owned()
            }
            (None, None) => format!("a ready token ({})", self.method),
        };
        let tenant = if self.simulated {
            format!("the SIMULATED tenant {}", self.tenant)
        } else {
            format!("tenant {}", self.tenant)
        };
        format!("{who} in {tenant}")
    }
}

/// The identity the flags and `env` configure, or the sentence saying what is missing:
/// checked before any file is read or any request sent (exit 2).
pub fn resolve_identity(
    tenant: &Tenant,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<super::Resolved, String> {
    tenant.endpoints().map_err(|e| e.to_string())?;
    super::credentials::resolve(&tenant.identity, env).map_err(|e| e.to_string())
}

/// Signs in to `tenant` as `identity` (interactively for a delegated one, through
/// `ui`). The error is the sentence to show.
pub async fn sign_in(
    tenant: &Tenant,
    identity: Identity,
    timeout: Duration,
    ui: &SignInUi,
) -> Result<(GraphClient, SignedIn), String> {
    let endpoints = tenant.endpoints().map_err(|e| e.to_string())?;
    first_token(endpoints, identity, timeout, ui, None).await
}

/// [`sign_in`] to one more tenant of a run across several: a delegated sign-in first
/// redeems `earlier`'s refresh token at this tenant's authority, and asks only where
/// Entra does not allow it.
pub async fn sign_in_reusing(
    tenant: &Tenant,
    identity: Identity,
    timeout: Duration,
    ui: &SignInUi,
    earlier: Option<&GraphClient>,
) -> Result<(GraphClient, SignedIn), String> {
    let endpoints = tenant.endpoints().map_err(|e| e.to_string())?;
    first_token(endpoints, identity, timeout, ui, earlier).await
}

/// A client signed in to a simulator at `base_url` (its token endpoint and Graph) as
/// app `client_id` of `tenant_id`; the simulator accepts any secret unless told
/// otherwise.
pub async fn sign_in_to_simulator(
    base_url: &str,
    tenant_id: &str,
    client_id: &str,
    timeout: Duration,
) -> Result<(GraphClient, SignedIn), String> {
    let endpoints =
        Endpoints::new(Cloud::Global, Some(base_url), Some(base_url)).map_err(|e| e.to_string())?;
    let identity = Identity::App {
        tenant: tenant_id.to_owned(),
        client_id: client_id.into(),
        credential: AppCredential::Secret(Secret::new("simulated-secret")),
    };
    let (client, mut signed_in) =
        first_token(endpoints, identity, timeout, &SignInUi::silent(), None).await?;
    signed_in.simulated = true;
    Ok((client, signed_in))
}

/// Builds the client, fetches a first token (signing in interactively when the
/// identity is delegated), and says who signed in.
async fn first_token(
    endpoints: Endpoints,
    identity: Identity,
    timeout: Duration,
    ui: &SignInUi,
    earlier: Option<&GraphClient>,
) -> Result<(GraphClient, SignedIn), String> {
    let method = identity.method();
    let (configured_tenant, configured_client) = match &identity {
        Identity::AccessToken(_) => (None, None),
        Identity::App {
            tenant, client_id, ..
        }
        | Identity::Delegated {
            tenant, client_id, ..
        } => (Some(tenant.clone()), Some(client_id.clone())),
        Identity::Managed(m) => (None, m.client_id.clone()),
    };
    let client = GraphClient::sign_in(endpoints, identity, timeout).map_err(|e| e.to_string())?;
    if let (Some(now), Some(refresh)) = (
        client.tokens().delegated(),
        earlier
            .and_then(|c| c.tokens().delegated())
            .and_then(|d| d.refresh_token()),
    ) {
        now.reuse(refresh);
    }
    let token = match client.tokens().delegated() {
        Some(_) => client
            .tokens()
            .sign_in_interactively(ui)
            .await
            .map_err(|e| e.to_string())?,
        None => client.tokens().token().await.map_err(|e| e.to_string())?,
    };
    let claim = |name: &str| token_claim(token.expose(), name);
    let user = client.tokens().delegated().and_then(|d| d.user());
    let tenant = user
        .as_ref()
        .and_then(|u| u.tenant_id.clone())
        .or_else(|| claim("tid"))
        .or(configured_tenant)
        .unwrap_or_else(|| "(named by the token)".to_owned());
    let signed_in = if method.is_delegated() {
        SignedIn {
            method: method.as_str(),
            tenant,
            user: user
                .and_then(|u| u.upn)
                .or_else(|| claim("upn"))
                .or_else(|| Some("(the signed-in user)".to_owned())),
            client_id: None,
            simulated: false,
        }
    } else {
        SignedIn {
            method: method.as_str(),
            tenant,
            user: (method == super::AuthMethod::Token)
                .then(|| claim("upn"))
                .flatten(),
            client_id: claim("appid")
                .or_else(|| claim("azp"))
                .or(configured_client),
            simulated: false,
        }
    };
    Ok((client, signed_in))
}
