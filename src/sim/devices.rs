//! `managedDevices`: the list with `$filter`/`$select`/`$top` and `@odata.nextLink`, one
//! device (`managedDevices/{id}` and `managedDevices('{id}')`), and the device actions
//! `resetPasscode`, `remoteLock` and `rotateBitLockerKeys`.
//!
//! An action answers 204 with no body when Intune queues it
//! (<https://learn.microsoft.com/en-us/graph/api/intune-devices-manageddevice-resetpasscode?view=graph-rest-1.0>,
//! <https://learn.microsoft.com/en-us/graph/api/intune-devices-manageddevice-remotelock?view=graph-rest-1.0>,
//! <https://learn.microsoft.com/en-us/graph/api/intune-devices-manageddevice-rotatebitlockerkeys?view=graph-rest-beta>),
//! 404 `ResourceNotFound` for an unknown id, 403 naming the missing permission for an
//! app without it (all three need the same one), and 400 with Intune's nested message
//! for a device the action's rules refuse (see [`super::inventory::Support`]): a lock on
//! a Windows desktop is answered as a reset on a Mac is.

use super::graph::Caller;
use super::inventory::{Device, Support};
use super::odata::{self, Filter};
use super::render::{ApiVersion, resolve_select, write_device};
use super::reply::{Ctx, Kind, Reply, graph_error, intune_error};
use super::server::Shared;
use super::tenants::Tenant;
use crate::rules::Family;

/// The permission the device actions need (docs/graph.md, "The action"; Microsoft's
/// `remoteLock` and `rotateBitLockerKeys` pages name the same).
pub const PRIVILEGED_OPERATIONS: &str = "DeviceManagementManagedDevices.PrivilegedOperations.All";

fn context_url(ctx: &Ctx, version: ApiVersion, what: &str) -> String {
    format!("{}/{}/$metadata#{what}", ctx.base_url, version.as_str())
}

/// The query options and the canonical `$select` names, or the message of Graph's 400.
fn parse_query(
    version: ApiVersion,
    query: &str,
) -> Result<(odata::Query, Option<Vec<&'static str>>), String> {
    let query = odata::parse(query).map_err(|e| e.0)?;
    let select = match query.select.as_deref() {
        Some(names) => Some(resolve_select(names, version)?),
        None => None,
    };
    Ok((query, select))
}

/// `GET /deviceManagement/managedDevices`.
/// `GET /users/{UPN}/managedDevices`: the devices whose primary user has this UPN (the
/// simulator's users are the UPNs its devices name); an unknown user is Entra's 404.
pub fn user_devices(
    sim: &Shared,
    tenant: &Tenant,
    ctx: &Ctx,
    version: ApiVersion,
    user: &str,
    query: &str,
) -> Reply {
    use super::inventory::Lookup;
    if tenant
        .inventory
        .find(Lookup::UserPrincipalName, user)
        .is_empty()
    {
        return graph_error(
            ctx,
            Kind::List,
            404,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{user}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    }
    let filter = format!(
        "$filter={}",
        url::form_urlencoded::byte_serialize(
            format!("userPrincipalName eq '{}'", user.replace('\'', "''")).as_bytes()
        )
        .collect::<String>()
    );
    let query = if query.is_empty() {
        filter
    } else {
        format!("{query}&{filter}")
    };
    list(sim, tenant, ctx, version, &query)
}

pub fn list(sim: &Shared, tenant: &Tenant, ctx: &Ctx, version: ApiVersion, query: &str) -> Reply {
    let kind = Kind::List;
    let (query, select) = match parse_query(version, query) {
        Ok(parsed) => parsed,
        Err(message) => return graph_error(ctx, kind, 400, "BadRequest", &message),
    };
    let inventory = &tenant.inventory;
    let page_size = query
        .top
        .unwrap_or(sim.config.page_size)
        .min(sim.config.page_size)
        .max(1);
    let page = |total: usize| {
        let start = query.skip.min(total);
        (start, (start + page_size).min(total))
    };
    // Without a filter the page is a range of the inventory: no list of every index.
    let (total, end, indexes): (usize, usize, Vec<u32>) = match &query.filter {
        Filter::Eq(lookup, value) => {
            let found = inventory.find(*lookup, value);
            let (start, end) = page(found.len());
            (found.len(), end, found[start..end].to_vec())
        }
        Filter::All => {
            let (start, end) = page(inventory.len());
            (inventory.len(), end, (start as u32..end as u32).collect())
        }
    };
    let now = sim.config.clock.now();
    let what = match &select {
        Some(names) => format!("deviceManagement/managedDevices({})", names.join(",")),
        None => "deviceManagement/managedDevices".into(),
    };
    let mut out = Vec::with_capacity(64 + indexes.len() * 1400);
    out.extend_from_slice(b"{\"@odata.context\":");
    write_str(&mut out, &context_url(ctx, version, &what));
    out.extend_from_slice(b",\"value\":[");
    let mut first = true;
    for index in &indexes {
        if let Some(device) = inventory.device(*index) {
            if !first {
                out.push(b',');
            }
            first = false;
            render(
                sim,
                tenant,
                &mut out,
                device,
                *index,
                version,
                select.as_deref(),
                now,
                None,
            );
        }
    }
    out.push(b']');
    if end < total {
        let next = format!(
            "{}/{}/deviceManagement/managedDevices?{}",
            ctx.base_url,
            version.as_str(),
            odata::next_page_query(&query.carried, end)
        );
        out.extend_from_slice(b",\"@odata.nextLink\":");
        write_str(&mut out, &next);
    }
    out.push(b'}');
    let mut reply = Reply::raw(200, kind, out);
    if let Filter::Eq(_, value) = &query.filter {
        reply.device = Some(value.clone());
    }
    reply
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(out, text);
}

/// `GET /deviceManagement/managedDevices/{id}`.
pub fn get(
    sim: &Shared,
    tenant: &Tenant,
    ctx: &Ctx,
    version: ApiVersion,
    id: &str,
    query: &str,
) -> Reply {
    let kind = Kind::Get;
    let Some(index) = tenant.inventory.find_id(id) else {
        return not_found(ctx, kind, id);
    };
    let Some(device) = tenant.inventory.device(index) else {
        return not_found(ctx, kind, id);
    };
    let select = match parse_query(version, query) {
        Ok((_, select)) => select,
        Err(message) => return graph_error(ctx, kind, 400, "BadRequest", &message),
    };
    let now = sim.config.clock.now();
    let what = match &select {
        Some(names) => format!(
            "deviceManagement/managedDevices({})/$entity",
            names.join(",")
        ),
        None => "deviceManagement/managedDevices/$entity".into(),
    };
    let context = context_url(ctx, version, &what);
    let mut out = Vec::with_capacity(1600);
    render(
        sim,
        tenant,
        &mut out,
        device,
        index,
        version,
        select.as_deref(),
        now,
        Some(&context),
    );
    let mut reply = Reply::raw(200, kind, out);
    reply.device = Some(device.id.to_string());
    reply
}

/// `POST /deviceManagement/managedDevices/{id}/resetPasscode` (or `remoteLock`, or
/// beta's `rotateBitLockerKeys`: `family` says which), in the caller's tenant.
pub fn act(sim: &Shared, ctx: &Ctx, family: Family, id: &str, caller: &Caller) -> Reply {
    let kind = Kind::of(family);
    let tenant = caller.tenant;
    let resource = format!(
        "deviceManagement/managedDevices('{id}')/microsoft.management.services.api.{}",
        family.graph_name()
    );
    if tenant
        .deny
        .apps
        .iter()
        .any(|d| d.eq_ignore_ascii_case(caller.app))
    {
        let text = format!(
            "Application is not authorized to perform this operation. Application must have one of the following scopes: {PRIVILEGED_OPERATIONS}"
        );
        let mut reply = intune_error(ctx, kind, 403, "Forbidden", &text, &resource);
        reply.device = Some(id.to_owned());
        return reply;
    }
    let Some((index, device)) = tenant
        .inventory
        .find_id(id)
        .and_then(|i| tenant.inventory.device(i).map(|d| (i, d)))
    else {
        return not_found(ctx, kind, id);
    };
    let mut reply = match device.facts.support_for(family) {
        Support::Refused { detail } => {
            let text = format!("Device is not supported for this action: {detail}");
            intune_error(ctx, kind, 400, "BadRequest", &text, &resource)
        }
        Support::Supported { .. } | Support::NotSupportedByDevice { .. } => {
            // Intune records the action it carried out in its audit trail, at the time
            // deviceActionResults gives it.
            tenant
                .audit
                .record(index, family, &sim.config.clock, caller, |at| {
                    tenant.actions.record(family, index, device, at)
                });
            let mut queued = Reply::new(204, kind, None);
            queued.effect = true;
            queued
        }
    };
    reply.device = Some(device.id.to_string());
    reply
}

fn not_found(ctx: &Ctx, kind: Kind, id: &str) -> Reply {
    let resource = format!("deviceManagement/managedDevices('{id}')");
    let mut reply = intune_error(
        ctx,
        kind,
        404,
        "ResourceNotFound",
        "An error has occurred: the device was not found",
        &resource,
    );
    reply.device = Some(id.to_owned());
    reply
}

#[allow(clippy::too_many_arguments)]
fn render(
    sim: &Shared,
    tenant: &Tenant,
    out: &mut Vec<u8>,
    device: &Device,
    index: u32,
    version: ApiVersion,
    select: Option<&[&'static str]>,
    now: std::time::Duration,
    context: Option<&str>,
) {
    let clock = &sim.config.clock;
    let results = || tenant.actions.action_results(index, now, clock);
    write_device(out, device, version, select, clock, &results, context);
}
