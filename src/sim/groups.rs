//! Entra groups for rehearsals: `GET /groups?$filter=displayName eq '...'` and
//! `GET /groups/{id}/transitiveMembers`, users (by the UPNs the devices name; each with
//! the directory's object id, see [`super::users`]) and Entra device objects (by the
//! devices' `azureADDeviceId`). Needs `GroupMember.Read.All`:
//! `deny_group_read` answers 403 as Graph does without it.

use std::hash::{Hash, Hasher};

use serde_json::json;

use super::reply::{Ctx, Kind, Reply, graph_error};
use super::tenants::Tenant;

/// A group: its name, and its members as UPNs and Entra device ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimGroup {
    pub name: String,
    pub users: Vec<String>,
    pub devices: Vec<String>,
}

impl SimGroup {
    /// `NAME=MEMBER,MEMBER,...`: a member with `@` is a user, any other an Entra device id.
    pub fn parse(text: &str) -> Result<SimGroup, String> {
        let (name, members) = text
            .split_once('=')
            .ok_or_else(|| format!("'{text}' is not NAME=MEMBER,MEMBER"))?;
        let mut group = SimGroup {
            name: name.trim().to_owned(),
            users: Vec::new(),
            devices: Vec::new(),
        };
        // NAME=@FILE: the members are in FILE, one per line or comma-separated (a
        // group of tens of thousands fits no command line, on Windows least of all).
        let from_file;
        let members = match members.trim().strip_prefix('@') {
            Some(path) => {
                from_file = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "cannot read the members of group '{}' from {path}: {e}",
                        name.trim()
                    )
                })?;
                from_file.as_str()
            }
            None => members,
        };
        for m in members
            .split([',', '\n', '\r'])
            .map(|m| m.trim().trim_start_matches('\u{feff}'))
            .filter(|m| !m.is_empty())
        {
            if m.contains('@') {
                group.users.push(m.to_owned());
            } else {
                group.devices.push(m.to_owned());
            }
        }
        Ok(group)
    }

    /// A stable object id from the name; a group named by an object id (a rehearsal
    /// of `--group <id>`) has that id.
    pub fn id(&self) -> String {
        if let Some(id) = crate::device::parse_guid(&self.name) {
            return id.to_lowercase();
        }
        let mut h = std::hash::DefaultHasher::new();
        self.name.to_lowercase().hash(&mut h);
        let n = h.finish();
        format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            (n >> 32) as u32,
            (n >> 16) as u16,
            n & 0xffff_ffff_ffff
        )
    }
}

fn denied(ctx: &Ctx) -> Reply {
    graph_error(
        ctx,
        Kind::Other,
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// `GET /groups?$filter=displayName eq 'NAME'`.
pub fn find(tenant: &Tenant, ctx: &Ctx, query: &str) -> Reply {
    if tenant.deny.group_read {
        return denied(ctx);
    }
    let filter = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "$filter")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let name = filter
        .strip_prefix("displayName eq '")
        .and_then(|r| r.strip_suffix('\''))
        .map(|n| n.replace("''", "'"));
    let Some(name) = name else {
        return graph_error(
            ctx,
            Kind::Other,
            400,
            "Request_UnsupportedQuery",
            "Unsupported query.",
        );
    };
    let value: Vec<_> = tenant
        .groups
        .iter()
        .filter(|g| g.name.eq_ignore_ascii_case(&name))
        .map(|g| json!({"id": g.id(), "displayName": g.name}))
        .collect();
    Reply::new(200, Kind::Other, Some(json!({"value": value})))
}

/// Members per page, as Graph pages `transitiveMembers` by default.
const MEMBERS_PAGE: usize = 100;

/// `GET /groups/{id}/transitiveMembers`: users, then Entra device objects, 100 a page
/// with an `@odata.nextLink` (`$skiptoken`) to the next.
pub fn members(tenant: &Tenant, ctx: &Ctx, id: &str, query: &str) -> Reply {
    if tenant.deny.group_read {
        return denied(ctx);
    }
    let Some(group) = tenant
        .groups
        .iter()
        .find(|g| g.id().eq_ignore_ascii_case(id))
    else {
        return graph_error(
            ctx,
            Kind::Other,
            404,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    // A user member is the directory's user, with the object id every other answer
    // gives them; a device member has the object id `/devices` gives it.
    let mut value: Vec<serde_json::Value> = group
        .users
        .iter()
        .map(|u| json!({"@odata.type": "#microsoft.graph.user", "id": super::users::object_id(u).to_string(), "userPrincipalName": u}))
        .collect();
    value.extend(group.devices.iter().map(|d| {
        json!({"@odata.type": "#microsoft.graph.device", "id": device_object_id(d), "deviceId": d})
    }));
    let skip: usize = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "$skiptoken")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let end = (skip + MEMBERS_PAGE).min(value.len());
    let page: Vec<_> = value[skip.min(end)..end].to_vec();
    let mut body = json!({"value": page});
    if end < value.len() {
        body["@odata.nextLink"] = json!(format!(
            "{}/v1.0/groups/{id}/transitiveMembers?$select=id,userPrincipalName,deviceId&$skiptoken={end}",
            ctx.base_url
        ));
    }
    Reply::new(200, Kind::Other, Some(body))
}

/// The object id of the Entra device whose `deviceId` is `device_id`: derived, stable,
/// not the device id (a member that is no GUID gets one hashed from its text).
fn device_object_id(device_id: &str) -> String {
    let device = match uuid::Uuid::parse_str(device_id.trim()) {
        Ok(id) => id,
        Err(_) => {
            let n = super::dice::hash_text(device_id);
            uuid::Uuid::from_u128(u128::from(n) << 64 | u128::from(super::dice::mix(n)))
        }
    };
    uuid::Uuid::from_u128(device.as_u128() ^ 0x5a5a_5a5a).to_string()
}

/// Entra device objects per page of `/devices`.
const DEVICES_PAGE: usize = 100;

/// `GET /devices`: the tenant's Entra device objects (every managed device Entra
/// knows: `id` the object id, `deviceId` the managed device's `azureADDeviceId`), 100 a
/// page. `$filter=deviceId eq '...'` finds one.
pub fn entra_devices(tenant: &Tenant, ctx: &Ctx, query: &str) -> Reply {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let wanted = get("$filter").and_then(|f| {
        f.strip_prefix("deviceId eq '")
            .and_then(|r| r.strip_suffix('\''))
            .map(str::to_lowercase)
    });
    let all: Vec<serde_json::Value> = tenant
        .inventory
        .devices()
        .iter()
        .filter(|d| !d.azure_ad_device_id.is_nil())
        .filter(|d| {
            wanted
                .as_deref()
                .is_none_or(|w| d.azure_ad_device_id.to_string() == w)
        })
        .map(|d| {
            // The object id is not the device id: derived, stable, different.
            json!({
                "id": device_object_id(&d.azure_ad_device_id.to_string()),
                "deviceId": d.azure_ad_device_id.to_string(),
                "displayName": &*d.device_name,
                "operatingSystem": &*d.facts.operating_system,
                "operatingSystemVersion": &*d.facts.os_version,
                "isManaged": true,
            })
        })
        .collect();
    let skip: usize = get("$skiptoken").and_then(|v| v.parse().ok()).unwrap_or(0);
    let end = (skip + DEVICES_PAGE).min(all.len());
    let mut body = json!({"value": all[skip.min(end)..end].to_vec()});
    if end < all.len() {
        body["@odata.nextLink"] = json!(format!("{}/v1.0/devices?$skiptoken={end}", ctx.base_url));
    }
    Reply::new(200, Kind::Other, Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_named_members_with_at_are_users() {
        let g =
            SimGroup::parse("Sales=ada@contoso.com, 7c2d9e41-3b5a-4f6e-8d1c-2a9b8c7d6e5f").unwrap();
        assert_eq!(g.name, "Sales");
        assert_eq!(g.users, ["ada@contoso.com"]);
        assert_eq!(g.devices, ["7c2d9e41-3b5a-4f6e-8d1c-2a9b8c7d6e5f"]);
        assert_eq!(
            g.id(),
            SimGroup::parse("sales=").unwrap().id(),
            "ids ignore case"
        );
        assert!(SimGroup::parse("no equals sign").is_err());
    }

    #[test]
    fn a_group_reads_its_members_from_a_file_named_with_at() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("members.txt");
        std::fs::write(
            &file,
            "\u{feff}ada@contoso.com\r\nbo@contoso.com, 7c2d9e41-3b5a-4f6e-8d1c-2a9b8c7d6e5f\n\n",
        )
        .unwrap();
        let g = SimGroup::parse(&format!("Big=@{}", file.display())).unwrap();
        assert_eq!(g.users, ["ada@contoso.com", "bo@contoso.com"]);
        assert_eq!(g.devices, ["7c2d9e41-3b5a-4f6e-8d1c-2a9b8c7d6e5f"]);
        let missing = dir.path().join("none.txt");
        let err = SimGroup::parse(&format!("Big=@{}", missing.display())).unwrap_err();
        assert!(
            err.starts_with("cannot read the members of group 'Big' from "),
            "{err}"
        );
    }
}
