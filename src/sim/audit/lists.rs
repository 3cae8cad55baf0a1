//! `GET /deviceManagement/auditEvents` and `GET /beta/deviceManagement/remoteActionAudits`:
//! the audit trail as Graph lists it, a page at a time with an `@odata.nextLink`.
//!
//! Fields Microsoft documents with no value for this action are filled as an Intune
//! administrator would expect them, and marked unconfirmed below.

use serde_json::{Value, json};

use super::query::{self, AuditQuery, Clause, List};
use super::{AuditRecord, Visibility, timestamp};
use crate::rules::Family;
use crate::sim::render::{ApiVersion, user_id};
use crate::sim::reply::{Ctx, Kind, Reply, graph_error, intune_error};
use crate::sim::server::Shared;
use crate::sim::tenants::Tenant;

/// How the audit names an action's `activityType`: a passcode reset is seen in tenants'
/// audit logs as `ResetPasscode ManagedDevice` (docs/graph.md, "Audit"); the other actions
/// are named the same way from their Graph name (unconfirmed).
pub fn activity_type(action: Family) -> &'static str {
    match action {
        Family::Passcode => "ResetPasscode ManagedDevice",
        Family::Lock => "RemoteLock ManagedDevice",
        Family::BitLocker => "RotateBitLockerKeys ManagedDevice",
        Family::Sessions => "RevokeSignInSessions User",
    }
}

/// The `displayName` and `activity` of an action's record: the admin center's name of
/// the action (unconfirmed for the audit).
fn activity(action: Family) -> &'static str {
    match action {
        Family::Passcode => "Reset passcode",
        Family::Lock => "Remote lock",
        Family::BitLocker => "BitLocker key rotation",
        Family::Sessions => "Revoke sessions",
    }
}
/// `componentName` of a device action: Microsoft documents no values; unconfirmed.
const COMPONENT: &str = "Devices";
/// The app's display name: the simulator knows only client ids, so it names every app
/// as the README has administrators name the registration.
const APP_DISPLAY_NAME: &str = "intune-reset";

/// The permissions each list needs, as Microsoft's pages list them (least privileged
/// first): <https://learn.microsoft.com/graph/api/intune-auditing-auditevent-list>
/// (v1.0 and beta name only the DeviceManagementApps ones) and
/// <https://learn.microsoft.com/graph/api/intune-devices-remoteactionaudit-list?view=graph-rest-beta>.
const EVENTS_SCOPES: &str = "DeviceManagementApps.Read.All, DeviceManagementApps.ReadWrite.All";
const REMOTE_ACTIONS_SCOPES: &str =
    "DeviceManagementManagedDevices.Read.All, DeviceManagementManagedDevices.ReadWrite.All";

/// `GET /deviceManagement/auditEvents` (v1.0 and beta).
pub fn events(sim: &Shared, tenant: &Tenant, ctx: &Ctx, version: ApiVersion, query: &str) -> Reply {
    let path = "deviceManagement/auditEvents";
    let render = |record: &AuditRecord| event(tenant, record);
    list(
        sim,
        tenant,
        ctx,
        (version, query),
        List::Events,
        path,
        render,
    )
}

/// `GET /beta/deviceManagement/remoteActionAudits`.
pub fn remote_actions(sim: &Shared, tenant: &Tenant, ctx: &Ctx, query: &str) -> Reply {
    let path = "deviceManagement/remoteActionAudits";
    let now = sim.config.clock.wall();
    let render = |record: &AuditRecord| remote_action(tenant, record, now);
    list(
        sim,
        tenant,
        ctx,
        (ApiVersion::Beta, query),
        List::RemoteActions,
        path,
        render,
    )
}

/// One of the tenant's audit lists, `request` its version and query.
fn list(
    sim: &Shared,
    tenant: &Tenant,
    ctx: &Ctx,
    request: (ApiVersion, &str),
    which: List,
    path: &str,
    render: impl Fn(&AuditRecord) -> Option<Value>,
) -> Reply {
    let (version, query) = request;
    if tenant.deny.audit_read {
        return denied(ctx, which, path);
    }
    let query = match query::parse(which, query) {
        Ok(query) => query,
        Err(bad) => return graph_error(ctx, Kind::List, 400, "BadRequest", &bad.0),
    };
    let visible = Visibility {
        now: sim.config.clock.wall(),
        delay: sim.config.audit_delay,
    };
    let (records, next) = tenant
        .audit
        .page(query.from, query.top, visible, |r| holds(&query, r));
    let value: Vec<Value> = records.iter().filter_map(render).collect();
    let mut body = json!({
        "@odata.context": format!("{}/{}/$metadata#{path}", ctx.base_url, version.as_str()),
        "value": value,
    });
    if let Some(from) = next {
        body["@odata.nextLink"] = json!(format!(
            "{}/{}/{path}?{}",
            ctx.base_url,
            version.as_str(),
            query::next_page(&query.carried, from)
        ));
    }
    Reply::new(200, Kind::List, Some(body))
}

/// Intune's 403 for an app without the permission: the message names the scopes, so
/// a client can tell the administrator which one to grant (the same shape as its
/// `resetPasscode` refusal, see `devices::reset`).
fn denied(ctx: &Ctx, which: List, path: &str) -> Reply {
    let scopes = match which {
        List::Events => EVENTS_SCOPES,
        List::RemoteActions => REMOTE_ACTIONS_SCOPES,
    };
    let text = format!(
        "Application is not authorized to perform this operation. Application must have one of the following scopes: {scopes}"
    );
    intune_error(ctx, Kind::List, 403, "Forbidden", &text, path)
}

fn holds(query: &AuditQuery, record: &AuditRecord) -> bool {
    query.clauses.iter().all(|clause| match clause {
        Clause::AtOrAfter(at) => record.at >= *at,
        Clause::AtOrBefore(at) => record.at <= *at,
        Clause::ActivityType(text) => text == activity_type(record.action),
        // `remoteActionAudit.action` is the `remoteAction` enum: the action's Graph name.
        Clause::Action(text) => text == record.action.graph_name(),
    })
}

/// An `auditEvent`
/// (<https://learn.microsoft.com/graph/api/resources/intune-auditing-auditevent>).
fn event(tenant: &Tenant, record: &AuditRecord) -> Option<Value> {
    let device = tenant.inventory.device(record.device)?;
    let upn = record.user.as_deref();
    // A delegated token's action is an administrator's ("ItPro"); an app-only one's is
    // the application's. The service principal is named for app-only actions only.
    let actor_type = if upn.is_some() {
        "ItPro"
    } else {
        "Application"
    };
    Some(json!({
        "id": record.id.to_string(),
        "displayName": activity(record.action),
        "componentName": COMPONENT,
        "actor": {
            "type": actor_type,
            "auditActorType": actor_type,
            "userPermissions": [],
            "applicationId": &*record.app,
            "applicationDisplayName": APP_DISPLAY_NAME,
            "userPrincipalName": upn,
            "servicePrincipalName": upn.is_none().then_some(APP_DISPLAY_NAME),
            "ipAddress": null,
            "userId": upn.map(user_id),
        },
        "activity": activity(record.action),
        "activityDateTime": timestamp(record.at),
        "activityType": activity_type(record.action),
        "activityOperationType": "Action",
        "activityResult": "Success",
        "correlationId": record.correlation_id.to_string(),
        "resources": [{
            "displayName": &*device.device_name,
            "modifiedProperties": [],
            "type": "ManagedDevice",
            "resourceId": device.id.to_string(),
            "auditResourceType": "ManagedDevice",
        }],
        "category": "Device",
    }))
}

/// A `remoteActionAudit`
/// (<https://learn.microsoft.com/graph/api/resources/intune-devices-remoteactionaudit?view=graph-rest-beta>),
/// its `actionState` as the action stands at the time of the read.
fn remote_action(
    tenant: &Tenant,
    record: &AuditRecord,
    now: std::time::SystemTime,
) -> Option<Value> {
    let device = tenant.inventory.device(record.device)?;
    // Documented as the UPN of the user who initiated the action. An app-only action
    // has no user: Microsoft says nothing of what Intune writes then, and no tenant
    // has shown it; the simulator writes the empty string, which no client can take
    // for a user (an app's display name could be).
    let initiated_by = record.user.as_deref().unwrap_or("");
    let state = tenant
        .actions
        .state_of(record.action, device, record.nth, record.at, now);
    Some(json!({
        "id": record.remote_id().to_string(),
        "deviceDisplayName": &*device.device_name,
        "userName": initiated_by,
        "initiatedByUserPrincipalName": initiated_by,
        "action": record.action.graph_name(),
        "requestDateTime": timestamp(record.at),
        "deviceOwnerUserPrincipalName": &*device.user_principal_name,
        "deviceIMEI": &*device.imei,
        "actionState": state,
        "managedDeviceId": device.id.to_string(),
        "deviceActionCategory": "single",
        "bulkDeviceActionId": "",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            request_id: "r-1".into(),
            client_request_id: Some("c-1".into()),
            date: std::time::SystemTime::UNIX_EPOCH,
            base_url: "http://127.0.0.1:1".into(),
        }
    }

    #[test]
    fn a_denied_read_is_intunes_403_naming_the_permissions_each_list_needs() {
        for (which, scopes) in [
            (List::Events, "DeviceManagementApps.Read.All"),
            (
                List::RemoteActions,
                "DeviceManagementManagedDevices.Read.All",
            ),
        ] {
            let reply = denied(&ctx(), which, "deviceManagement/x");
            assert_eq!(reply.status, 403);
            let body = reply.body_value().unwrap_or_default();
            assert_eq!(body["error"]["code"], "Forbidden");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            let nested: Value = serde_json::from_str(message).unwrap_or_default();
            let text = nested["Message"].as_str().unwrap_or_default();
            assert!(
                text.starts_with(&format!(
                    "Application is not authorized to perform this operation. Application must have one of the following scopes: {scopes}"
                )),
                "{text}"
            );
        }
    }
}
