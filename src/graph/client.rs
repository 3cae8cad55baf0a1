//! [`GraphClient`]: the calls the runner makes, one HTTP request each.
//!
//! This file knows the URLs and what each answer holds; `exchange` sends the
//! request and sorts the answer. Failures become [`CallError`]s whose kind drives the
//! runner's retry policy.

use std::time::Duration;

pub use super::exchange::http_client;

use reqwest::Method;
use url::Url;

use super::auth::{AuthError, TokenSource};
use super::cloud::Endpoints;
use super::credentials::Identity;
use super::device::{
    ActionResultsBody, DeviceActions, DevicePage, DevicePageBody, DirectoryUser, FilterProperty,
    ManagedDevice,
};
use super::errors::{CallError, CallErrorKind};
use super::exchange::{bare_error, exchange};
use crate::rules::Family;

/// What reading a user (and when their sessions were last revoked) needs.
const USER_READ_PERMISSION: &str = "User.Read.All";
/// What reading managed devices needs.
const READ_PERMISSION: &str = "DeviceManagementManagedDevices.Read.All";

/// Which connection a request goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// A kept-alive connection when one is idle.
    Pooled,
    /// A new connection, closed afterwards: the retry after a 503/504 or a broken
    /// connection, so it does not land on the same bad backend or dead socket.
    Fresh,
}

/// A successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    pub value: T,
    pub status: u16,
    /// Graph's `request-id` header, for support cases.
    pub request_id: Option<String>,
    /// The `client-request-id` we sent.
    pub client_request_id: String,
}

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// The first page of devices whose `property` equals `value`.
    Filter {
        property: FilterProperty,
        value: String,
        select: Vec<String>,
    },
    /// The first page of every managed device, up to 1000 per page: the tenant's
    /// inventory, read once to join many rows locally.
    All { select: Vec<String> },
    /// The first page of a user's managed devices (`/users/{id or UPN}/managedDevices`).
    User { user: String, select: Vec<String> },
    /// The first page of the devices a `$filter` matches (`None`: every device), 1000 a
    /// page; the caller checks each returned device against the filter again.
    Where {
        filter: Option<String>,
        select: Vec<String>,
    },
    /// An `@odata.nextLink`, followed verbatim.
    Next(String),
}

/// The HTTP clients could not be built (TLS setup): nothing can be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// The Graph calls; clones share connections and the token cache.
#[derive(Debug, Clone)]
pub struct GraphClient {
    /// Kept-alive connections for ordinary requests.
    pooled: reqwest::Client,
    /// No idle connections: for [`Connection::Fresh`].
    fresh: reqwest::Client,
    /// Where Graph is; nextLinks must stay on its origin.
    endpoints: Endpoints,
    /// Shared by every clone, so one renewal serves all workers.
    tokens: TokenSource,
}

impl GraphClient {
    /// A client and its token source from a resolved identity; token requests share
    /// the pooled connections.
    pub fn sign_in(
        endpoints: Endpoints,
        identity: Identity,
        timeout: Duration,
    ) -> Result<GraphClient, SetupError> {
        let pooled = http_client(&endpoints, timeout, false)?;
        let tokens = TokenSource::new(identity, &endpoints, pooled.clone())?;
        Ok(GraphClient {
            fresh: http_client(&endpoints, timeout, true)?,
            pooled,
            endpoints,
            tokens,
        })
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// `GET /beta/deviceManagement/managedDevices/{id}?$select=...`
    pub async fn get_device(
        &self,
        id: &str,
        select: &[&str],
        connection: Connection,
    ) -> Result<Reply<ManagedDevice>, CallError> {
        let mut url = self.device_url("beta", id);
        let select = select.join(",");
        set_query(&mut url, &[("$select", &select)]);
        self.send(Method::GET, url, connection, READ_PERMISSION, |body| {
            serde_json::from_str(body).ok()
        })
        .await
    }

    /// One page of `GET /beta/deviceManagement/managedDevices`.
    pub async fn list_devices_page(
        &self,
        request: PageRequest,
        connection: Connection,
    ) -> Result<Reply<DevicePage>, CallError> {
        let url = match request {
            PageRequest::Filter {
                property,
                value,
                select,
            } => {
                let mut url = self.collection_url("beta");
                let select = select.join(",");
                set_query(
                    &mut url,
                    &[("$filter", &property.filter(&value)), ("$select", &select)],
                );
                url
            }
            PageRequest::All { select } => {
                let mut url = self.collection_url("beta");
                let select = select.join(",");
                set_query(&mut url, &[("$select", &select), ("$top", "1000")]);
                url
            }
            PageRequest::Where { filter, select } => {
                let mut url = self.collection_url("beta");
                let select = select.join(",");
                match &filter {
                    Some(f) => set_query(
                        &mut url,
                        &[("$filter", f), ("$select", &select), ("$top", "1000")],
                    ),
                    None => set_query(&mut url, &[("$select", &select), ("$top", "1000")]),
                }
                url
            }
            PageRequest::User { user, select } => {
                let mut url = self.endpoints.graph.clone();
                if let Ok(mut segments) = url.path_segments_mut() {
                    // Pushed as one segment: whatever the UPN holds cannot change the path.
                    segments.pop_if_empty().extend([
                        "beta",
                        "users",
                        user.as_str(),
                        "managedDevices",
                    ]);
                }
                let select = select.join(",");
                set_query(&mut url, &[("$select", &select)]);
                url
            }
            PageRequest::Next(link) => self.checked_next_link(&link).map_err(|why| {
                // Nothing is sent, so there is no client-request-id to report.
                bare_error(CallErrorKind::UnsafeLink, None, why, "")
            })?,
        };
        self.send(Method::GET, url, connection, READ_PERMISSION, |body| {
            let page: DevicePageBody = serde_json::from_str(body).ok()?;
            Some(DevicePage {
                devices: page.value,
                next_link: page.next_link,
            })
        })
        .await
    }

    /// `GET /v1.0/groups?$filter=displayName eq '...'`: the groups of that name.
    pub async fn find_groups(
        &self,
        name: &str,
        connection: Connection,
    ) -> Result<Reply<Vec<super::groups::GroupRef>>, CallError> {
        let mut url = self.endpoints.graph.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["v1.0", "groups"]);
        }
        set_query(
            &mut url,
            &[
                ("$filter", &super::groups::name_filter(name)),
                ("$select", "id,displayName"),
            ],
        );
        self.send(
            Method::GET,
            url,
            connection,
            super::groups::GROUP_PERMISSION,
            |body| {
                serde_json::from_str::<super::groups::GroupsBody>(body)
                    .ok()
                    .map(|b| b.value)
            },
        )
        .await
    }

    /// A page of a group's transitive members: the first (`group` an id) or the one an
    /// `@odata.nextLink` names.
    pub async fn group_members_page(
        &self,
        group: &str,
        next: Option<&str>,
        connection: Connection,
    ) -> Result<Reply<super::groups::MembersPage>, CallError> {
        let url = match next {
            Some(link) => self
                .checked_next_link(link)
                .map_err(|why| bare_error(CallErrorKind::UnsafeLink, None, why, ""))?,
            None => {
                let mut url = self.endpoints.graph.clone();
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments
                        .pop_if_empty()
                        .extend(["v1.0", "groups", group, "transitiveMembers"]);
                }
                set_query(&mut url, &[("$select", "id,userPrincipalName,deviceId")]);
                url
            }
        };
        self.send(
            Method::GET,
            url,
            connection,
            super::groups::GROUP_PERMISSION,
            super::groups::parse_members,
        )
        .await
    }

    /// A page of Intune's records of passcode resets since `since` (RFC 3339): the first
    /// page asks for them, a later one follows the previous page's `@odata.nextLink`
    /// (checked to stay on this Graph endpoint). `auditEvents` is asked for the events
    /// since `since` (`activityDateTime ge`, a filter seen to work); `remoteActionAudits`
    /// for its passcode resets (`action eq`, as community scripts ask it). Both answers
    /// are filtered again here: neither list documents its filters.
    pub async fn audit_page(
        &self,
        list: super::audit::AuditList,
        since: &str,
        next: Option<&str>,
        connection: Connection,
    ) -> Result<Reply<super::audit::AuditPage>, CallError> {
        use super::audit::AuditList;
        let url = match next {
            Some(link) => self
                .checked_next_link(link)
                .map_err(|why| bare_error(CallErrorKind::UnsafeLink, None, why, ""))?,
            None => {
                let mut url = self.endpoints.graph.clone();
                let (version, collection) = match list {
                    AuditList::Events => ("v1.0", "auditEvents"),
                    AuditList::RemoteActions => ("beta", "remoteActionAudits"),
                };
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments
                        .pop_if_empty()
                        .extend([version, "deviceManagement", collection]);
                }
                let filter = match list {
                    AuditList::Events => format!("activityDateTime ge {since}"),
                    AuditList::RemoteActions => {
                        format!("action eq '{}'", super::audit::RESET_ACTION)
                    }
                };
                set_query(&mut url, &[("$filter", &filter)]);
                url
            }
        };
        let parse = match list {
            AuditList::Events => super::audit::parse_events,
            AuditList::RemoteActions => super::audit::parse_remote_actions,
        };
        self.send(Method::GET, url, connection, list.permission(), parse)
            .await
    }

    /// The action's POST, no body: to a device,
    /// `/{version}/deviceManagement/managedDevices/{id}/{action}` (v1.0 `resetPasscode`
    /// and `remoteLock`, beta `rotateBitLockerKeys`, which Graph has in beta only); to a
    /// user, `/v1.0/users/{id}/revokeSignInSessions` (200 `{"value": true}`). Any 2xx is
    /// taken as accepted.
    pub async fn device_action(
        &self,
        id: &str,
        action: Family,
        connection: Connection,
    ) -> Result<Reply<()>, CallError> {
        let mut url = match action {
            Family::BitLocker => self.device_url("beta", id),
            Family::Passcode | Family::Lock => self.device_url("v1.0", id),
            Family::Sessions => self.user_url(id),
        };
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(action.graph_name());
        }
        self.send(Method::POST, url, connection, action.permission(), |_| {
            Some(())
        })
        .await
    }

    /// `GET /v1.0/users/{id or UPN}?$select=id,userPrincipalName,signInSessionsValidFromDateTime`:
    /// the user a `revoke-sessions` row names, and when their sessions were last revoked.
    pub async fn get_user(
        &self,
        user: &str,
        connection: Connection,
    ) -> Result<Reply<DirectoryUser>, CallError> {
        let mut url = self.user_url(user);
        set_query(
            &mut url,
            &[(
                "$select",
                "id,userPrincipalName,signInSessionsValidFromDateTime",
            )],
        );
        self.send(Method::GET, url, connection, USER_READ_PERMISSION, |body| {
            serde_json::from_str(body).ok()
        })
        .await
    }

    /// `GET /beta/deviceManagement/managedDevices/{id}?$select=id,userPrincipalName,deviceActionResults`
    pub async fn action_results(
        &self,
        id: &str,
        connection: Connection,
    ) -> Result<Reply<DeviceActions>, CallError> {
        let mut url = self.device_url("beta", id);
        set_query(
            &mut url,
            &[("$select", "id,userPrincipalName,deviceActionResults")],
        );
        self.send(Method::GET, url, connection, READ_PERMISSION, |body| {
            let body: ActionResultsBody = serde_json::from_str(body).ok()?;
            Some(DeviceActions {
                results: body.results.unwrap_or_default(),
                user_principal_name: body
                    .user_principal_name
                    .map(|u| u.trim().to_owned())
                    .filter(|u| !u.is_empty()),
            })
        })
        .await
    }

    fn collection_url(&self, version: &str) -> Url {
        let mut url = self.endpoints.graph.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend([version, "deviceManagement", "managedDevices"]);
        }
        url
    }

    /// `/v1.0/users/{id or UPN}`, the user pushed as one path segment.
    fn user_url(&self, user: &str) -> Url {
        let mut url = self.endpoints.graph.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["v1.0", "users", user]);
        }
        url
    }

    /// The id is pushed as one path segment, so whatever it holds cannot change the path.
    fn device_url(&self, version: &str, id: &str) -> Url {
        let mut url = self.collection_url(version);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(id);
        }
        url
    }

    /// A nextLink is followed only to Graph's own origin: the token goes with it.
    fn checked_next_link(&self, link: &str) -> Result<Url, String> {
        let url = Url::parse(link).map_err(|e| format!("the @odata.nextLink is not a URL: {e}"))?;
        let graph = self.endpoints.graph.origin();
        if url.origin() != graph {
            return Err(format!(
                "the @odata.nextLink points at {}, not at {}; the access token is only \
                 sent to Graph",
                url.origin().ascii_serialization(),
                graph.ascii_serialization()
            ));
        }
        Ok(url)
    }

    /// Sends one request on the chosen connection.
    async fn send<T>(
        &self,
        method: Method,
        url: Url,
        connection: Connection,
        permission: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Reply<T>, CallError> {
        let http = match connection {
            Connection::Pooled => &self.pooled,
            Connection::Fresh => &self.fresh,
        };
        exchange(http, &self.tokens, method, url, permission, parse).await
    }
}

/// Sets the query to `key=value` pairs, values percent-encoded as RFC 3986 unreserved
/// characters only: spaces become `%20`, never `+`, which OData would not read as a space.
/// Pairs with an empty value are left out (an empty `$select` is an error to Graph).
fn set_query(url: &mut Url, pairs: &[(&str, &str)]) {
    let query = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    url.set_query((!query.is_empty()).then_some(query.as_str()));
}

fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b',') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
