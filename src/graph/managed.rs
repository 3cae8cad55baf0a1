//! Tokens from the managed identity of the Azure resource the tool runs on
//! (<https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>).
//!
//! - Azure VMs and scale sets: the instance metadata service,
//!   `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=...`
//!   with `Metadata: true`.
//! - App Service, Functions, Container Apps: `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=...`
//!   with `X-IDENTITY-HEADER: $IDENTITY_HEADER`.
//!
//! A user-assigned identity is chosen with `client_id`. The endpoints are on this
//! machine or its host, so no proxy is used. As Azure Identity does, an endpoint that
//! cannot be reached at all means there is no managed identity here: that ends the
//! sign-in at once, while 429, 5xx and 404/410 (the metadata service starting up) are
//! asked again.

use std::time::Duration;

use url::Url;

use super::auth::{AuthError, Try, network, parse_answer};
use super::credentials::{ManagedEndpoint, ManagedIdentity};
use super::secret::Secret;
use super::token_retry::{Passing, Transient};

pub struct Managed {
    identity: ManagedIdentity,
    /// The endpoint with its query (api-version, resource, client_id).
    url: Url,
    http: reqwest::Client,
}

impl Managed {
    /// `resource` is Graph's origin, the audience of the token.
    pub fn new(
        identity: ManagedIdentity,
        resource: String,
        _graph: Url,
    ) -> Result<Managed, AuthError> {
        let (mut url, version) = match &identity.endpoint {
            ManagedEndpoint::Imds(url) => (url.clone(), "2018-02-01"),
            ManagedEndpoint::AppService { url, .. } => (url.clone(), "2019-08-01"),
        };
        url.query_pairs_mut()
            .append_pair("api-version", version)
            .append_pair("resource", &resource);
        if let Some(id) = &identity.client_id {
            url.query_pairs_mut().append_pair("client_id", id);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("intune-reset/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| AuthError::Managed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Managed {
            identity,
            url,
            http,
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// "the system-assigned managed identity" or "the user-assigned managed identity X".
    pub fn describe(&self) -> String {
        match &self.identity.client_id {
            Some(id) => format!("the user-assigned managed identity {id}"),
            None => "the system-assigned managed identity".into(),
        }
    }

    /// One token request.
    pub(super) async fn request(&self) -> Result<(Secret, Duration), Try> {
        let mut request = self.http.get(self.url.clone());
        request = match &self.identity.endpoint {
            ManagedEndpoint::Imds(_) => request.header("Metadata", "true"),
            ManagedEndpoint::AppService { header, .. } => {
                request.header("X-IDENTITY-HEADER", header.expose())
            }
        };
        let shown = self.shown_url();
        let answer = match request.send().await {
            Ok(a) => a,
            Err(e) if e.is_connect() => {
                return Err(Try::Final(AuthError::Managed(format!(
                    "no managed identity endpoint answered at {shown} ({}): --auth \
                     managed-identity works only on an Azure resource with a managed identity \
                     (a VM or scale set, App Service, Functions, Container Apps)",
                    super::exchange::transport_message(&e)
                ))));
            }
            Err(e) => return Err(network(&e)),
        };
        let status = answer.status().as_u16();
        let body = answer.text().await.map_err(|e| network(&e))?;
        tracing::debug!(method = "GET", url = %shown, status, "managed identity token request");
        if let Some(cause) = Passing::from_status(status) {
            return Err(Try::Again(Transient::answered(cause, None)));
        }
        if matches!(status, 404 | 410) {
            // The metadata service answers these while it starts or upgrades.
            return Err(Try::Again(Transient::answered(
                Passing::Unavailable(status),
                None,
            )));
        }
        if !(200..300).contains(&status) {
            let said = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v["error_description"]
                        .as_str()
                        .or(v["message"].as_str())
                        .or(v["error"].as_str())
                        .map(super::scrub::scrub)
                })
                .unwrap_or_else(|| format!("HTTP {status}"));
            let which = match &self.identity.client_id {
                Some(id) => format!(
                    "{id} is not a user-assigned identity of this resource: check \
                     --managed-identity-client-id (or AZURE_CLIENT_ID)"
                ),
                None => "this resource has no system-assigned identity: turn it on, or name a \
                         user-assigned one with --managed-identity-client-id"
                    .to_owned(),
            };
            return Err(Try::Final(AuthError::Managed(format!(
                "the managed identity endpoint {shown} refused (HTTP {status}: {said}); {which}"
            ))));
        }
        let fetched = parse_answer(&shown, status, &body).map_err(Try::Final)?;
        Ok((fetched.token, fetched.lifetime))
    }

    /// The endpoint without its query, for messages.
    fn shown_url(&self) -> String {
        let mut url = self.url.clone();
        url.set_query(None);
        url.to_string()
    }
}
