//! Intune's own records of remote actions, for `audit` (issue 20): its audit log
//! (`auditEvents`) and its remote action audits (`remoteActionAudits`, beta). Both are
//! read whole over the run's span and filtered here: neither documents which `$filter`
//! clauses it honours (docs/graph.md, "Audit").
//!
//! - `GET /v1.0/deviceManagement/auditEvents`: two years of Intune's audit log; a reset
//!   is `activityType` `ResetPasscode ManagedDevice`, its device the `resources[]`
//!   entry's `resourceId`, `correlationId` documented as the client request id.
//!   Needs `DeviceManagementApps.Read.All`
//!   (<https://learn.microsoft.com/graph/api/intune-auditing-auditevent-list>).
//! - `GET /beta/deviceManagement/remoteActionAudits`: `action` `resetPasscode`,
//!   `managedDeviceId`, `requestDateTime`, `initiatedByUserPrincipalName`, `actionState`.
//!   Needs `DeviceManagementManagedDevices.Read.All`
//!   (<https://learn.microsoft.com/graph/api/intune-devices-remoteactionaudit-list?view=graph-rest-beta>).
//!   These records can be created, edited and deleted through the API: evidence only
//!   beside the run's own record.

use std::time::SystemTime;

use serde::Deserialize;

/// The permission `auditEvents` needs; a 403 names it.
pub const AUDIT_EVENTS_PERMISSION: &str = "DeviceManagementApps.Read.All";
/// The permission `remoteActionAudits` needs.
pub const REMOTE_ACTION_AUDITS_PERMISSION: &str = "DeviceManagementManagedDevices.Read.All";

/// The `activityType` of a passcode reset in Intune's audit log.
pub const RESET_ACTIVITY: &str = "ResetPasscode ManagedDevice";
/// The `action` of a passcode reset in the remote action audits.
pub const RESET_ACTION: &str = "resetPasscode";

/// Which of Intune's two lists a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuditList {
    /// `auditEvents`.
    Events,
    /// `remoteActionAudits`.
    RemoteActions,
}

impl AuditList {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditList::Events => "auditEvents",
            AuditList::RemoteActions => "remoteActionAudits",
        }
    }

    pub fn permission(self) -> &'static str {
        match self {
            AuditList::Events => AUDIT_EVENTS_PERMISSION,
            AuditList::RemoteActions => REMOTE_ACTION_AUDITS_PERMISSION,
        }
    }
}

/// One record of a passcode reset, from either list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub list: AuditList,
    pub id: String,
    /// The managed device's Intune id, lower case.
    pub device_id: String,
    /// When Intune says the action was taken, as it wrote it, and read.
    pub at_text: String,
    pub at: Option<SystemTime>,
    /// The user who acted (delegated sign-ins), as Intune names them.
    pub user: Option<String>,
    /// The app that acted (`auditEvents` only).
    pub app: Option<String>,
    /// `auditEvents`' `correlationId`, lower case.
    pub correlation_id: Option<String>,
    /// `remoteActionAudits`' `actionState` at the time of the read.
    pub action_state: Option<String>,
}

/// A page of records (only passcode resets; others are left out), and the next page.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    pub next_link: Option<String>,
}

fn text(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventBody {
    #[serde(default)]
    id: String,
    activity_type: Option<String>,
    activity_date_time: Option<String>,
    correlation_id: Option<String>,
    actor: Option<ActorBody>,
    #[serde(default)]
    resources: Vec<ResourceBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActorBody {
    user_principal_name: Option<String>,
    application_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceBody {
    resource_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// An `auditEvents` page: its passcode resets, one record per managed device a reset
/// names (an event normally names one).
pub(crate) fn parse_events(body: &str) -> Option<AuditPage> {
    let page: Page<EventBody> = serde_json::from_str(body).ok()?;
    let mut records = Vec::new();
    for event in page.value {
        let is_reset = event
            .activity_type
            .as_deref()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(RESET_ACTIVITY));
        if !is_reset {
            continue;
        }
        let at_text = event.activity_date_time.unwrap_or_default();
        let (user, app) = match event.actor {
            Some(a) => (text(a.user_principal_name), text(a.application_id)),
            None => (None, None),
        };
        for resource in event.resources {
            let managed = resource
                .kind
                .as_deref()
                .is_none_or(|k| k.to_ascii_lowercase().contains("manageddevice"));
            let Some(device) = text(resource.resource_id).filter(|_| managed) else {
                continue;
            };
            records.push(AuditRecord {
                list: AuditList::Events,
                id: event.id.clone(),
                device_id: device.to_ascii_lowercase(),
                at: super::verify::parse_timestamp(&at_text),
                at_text: at_text.clone(),
                user: user.clone(),
                app: app.clone(),
                correlation_id: text(event.correlation_id.clone()).map(|c| c.to_ascii_lowercase()),
                action_state: None,
            });
        }
    }
    Some(AuditPage {
        records,
        next_link: page.next_link,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoteBody {
    #[serde(default)]
    id: String,
    action: Option<String>,
    managed_device_id: Option<String>,
    request_date_time: Option<String>,
    initiated_by_user_principal_name: Option<String>,
    action_state: Option<String>,
}

/// A `remoteActionAudits` page: its passcode resets.
pub(crate) fn parse_remote_actions(body: &str) -> Option<AuditPage> {
    let page: Page<RemoteBody> = serde_json::from_str(body).ok()?;
    let records = page
        .value
        .into_iter()
        .filter(|r| {
            r.action
                .as_deref()
                .is_some_and(|a| a.trim().eq_ignore_ascii_case(RESET_ACTION))
        })
        .filter_map(|r| {
            let device = text(r.managed_device_id)?;
            let at_text = r.request_date_time.unwrap_or_default();
            Some(AuditRecord {
                list: AuditList::RemoteActions,
                id: r.id,
                device_id: device.to_ascii_lowercase(),
                at: super::verify::parse_timestamp(&at_text),
                at_text,
                user: text(r.initiated_by_user_principal_name),
                app: None,
                correlation_id: None,
                action_state: text(r.action_state),
            })
        })
        .collect();
    Some(AuditPage {
        records,
        next_link: page.next_link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_event_of_a_reset_names_its_device_actor_and_correlation() {
        let body = r#"{"value":[
          {"id":"e1","activityType":"ResetPasscode ManagedDevice","activityDateTime":"2026-12-07T10:00:01.5Z",
           "correlationId":"AB12-CD","actor":{"applicationId":"app-1","userPrincipalName":null},
           "resources":[{"resourceId":"DEV-1","type":"ManagedDevice"}]},
          {"id":"e2","activityType":"Wipe ManagedDevice","activityDateTime":"2026-12-07T10:00:02Z",
           "resources":[{"resourceId":"dev-2","type":"ManagedDevice"}]}
        ],"@odata.nextLink":"https://graph/next"}"#;
        let page = parse_events(body).unwrap();
        assert_eq!(page.next_link.as_deref(), Some("https://graph/next"));
        assert_eq!(page.records.len(), 1, "only passcode resets");
        let r = &page.records[0];
        assert_eq!(r.device_id, "dev-1");
        assert_eq!(r.app.as_deref(), Some("app-1"));
        assert_eq!(r.user, None);
        assert_eq!(r.correlation_id.as_deref(), Some("ab12-cd"));
        assert!(r.at.is_some());
    }

    #[test]
    fn a_remote_action_audit_of_a_reset_keeps_its_state() {
        let body = r#"{"value":[
          {"id":"r1","action":"resetPasscode","managedDeviceId":"Dev-1","requestDateTime":"2026-12-07T10:00:01Z",
           "initiatedByUserPrincipalName":"ada@contoso.com","actionState":"done"},
          {"id":"r2","action":"remoteLock","managedDeviceId":"dev-2"}
        ]}"#;
        let page = parse_remote_actions(body).unwrap();
        assert_eq!(page.records.len(), 1);
        let r = &page.records[0];
        assert_eq!(r.device_id, "dev-1");
        assert_eq!(r.user.as_deref(), Some("ada@contoso.com"));
        assert_eq!(r.action_state.as_deref(), Some("done"));
        assert_eq!(page.next_link, None);
    }

    #[test]
    fn a_page_that_is_not_json_is_no_page() {
        assert!(parse_events("<html>").is_none());
        assert!(parse_remote_actions("[]").is_none());
    }
}
