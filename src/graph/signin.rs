//! Signing in before anything is sent: the client is built and a first token fetched,
//! so a wrong secret or a missing consent stops a command before any device is touched.

use std::time::Duration;

use super::{AppCredential, Cloud, Endpoints, GraphClient, Identity, IdentityFlags, Secret};

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

/// Signs in to `tenant` with the credential the flags and `env` give. The error is the
/// sentence to show.
pub async fn sign_in(
    tenant: &Tenant,
    timeout: Duration,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GraphClient, String> {
    let endpoints = tenant.endpoints().map_err(|e| e.to_string())?;
    let resolved = super::credentials::resolve(&tenant.identity, env).map_err(|e| e.to_string())?;
    for warning in &resolved.warnings {
        tracing::warn!("{warning}");
    }
    first_token(endpoints, resolved.identity, timeout).await
}

/// A client signed in to a simulator at `base_url` (its token endpoint and Graph) as
/// app `client_id` of `tenant_id`; the simulator accepts any secret unless told
/// otherwise.
pub async fn sign_in_to_simulator(
    base_url: &str,
    tenant_id: &str,
    client_id: &str,
    timeout: Duration,
) -> Result<GraphClient, String> {
    let endpoints =
        Endpoints::new(Cloud::Global, Some(base_url), Some(base_url)).map_err(|e| e.to_string())?;
    let identity = Identity::App {
        tenant: tenant_id.to_owned(),
        client_id: client_id.into(),
        credential: AppCredential::Secret(Secret::new("simulated-secret")),
    };
    first_token(endpoints, identity, timeout).await
}

/// Builds the client and fetches a first token.
async fn first_token(
    endpoints: Endpoints,
    identity: Identity,
    timeout: Duration,
) -> Result<GraphClient, String> {
    let client = GraphClient::sign_in(endpoints, identity, timeout).map_err(|e| e.to_string())?;
    client.tokens().token().await.map_err(|e| e.to_string())?;
    Ok(client)
}
