//! Entra's directory users, as `revoke-sessions` meets them: `GET /users/{id or UPN}`
//! and `POST /users/{id or UPN}/revokeSignInSessions`
//! (<https://learn.microsoft.com/graph/api/user-revokesigninsessions>), on v1.0 and beta.
//!
//! The directory holds every UPN the inventory's devices name and every user member of
//! the groups, once each whatever its case. A user's object id is derived from the
//! lower-cased UPN ([`object_id`]), so it is the same in every answer (a device's
//! `userId`, `transitiveMembers`, the user read), across calls and restarts. A user's
//! `signInSessionsValidFromDateTime` starts at a seeded moment days before the
//! directory was first served and moves to the simulator's "now" when a revocation
//! takes effect; Graph returns it only when `$select` names it, as for Entra.
//!
//! Reads need `User.Read.All`, which the simulator does not check; a revocation needs
//! `User.RevokeSessions.All`: `SimConfig::deny_revoke_sessions` answers 403
//! `Authorization_RequestDenied` as Entra does without it. Users' requests count against
//! Entra's directory budget, never Intune's (see [`super::throttle::DirectoryThrottle`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::clock::rfc3339;
use super::dice::{combine, hash_text};
use super::groups::SimGroup;
use super::inventory::Inventory;
use super::render::{ApiVersion, display_name};
use super::reply::{Ctx, Kind, Reply, graph_error};
use super::server::Shared;
use super::tenants::Tenant;

/// A directory user's stable object id: a v4-looking GUID hashed from the lower-cased
/// UPN, the same for every spelling of the UPN, in every simulator.
pub fn object_id(upn: &str) -> Uuid {
    let upn = upn.trim().to_lowercase();
    let bytes = (u128::from(hash_text(&upn)) << 64 | u128::from(hash_text(&format!("user:{upn}"))))
        .to_be_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// One user of the directory.
#[derive(Debug)]
struct User {
    id: Uuid,
    /// As first named (a device's UPN before a group's).
    upn: Box<str>,
}

/// What revocations did to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Revoked {
    /// `signInSessionsValidFromDateTime`: when the latest revocation took effect.
    valid_from: SystemTime,
    /// Revocations Entra accepted for the user in the simulator's life (a saved
    /// tenant's included).
    count: u32,
}

/// A user's revocations as a rehearsal's saved tenant keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredUser {
    /// The user's UPN (any case).
    pub user_principal_name: String,
    /// Their `signInSessionsValidFromDateTime`.
    pub valid_from: SystemTime,
    /// Revocations Entra accepted for them.
    pub revocations: u32,
}

/// The directory: its users, and what revocations did to them.
#[derive(Debug)]
pub struct Directory {
    users: Vec<User>,
    /// Lower-cased UPN to index.
    by_upn: HashMap<Box<str>, u32>,
    /// Object id to index.
    by_id: HashMap<Uuid, u32>,
    /// Seeds the users' first valid-from times.
    seed: u64,
    /// The moment the first valid-from times count back from.
    epoch: SystemTime,
    /// Only users revoked at least once have an entry.
    revoked: Mutex<HashMap<u32, Revoked>>,
}

impl Directory {
    /// Every UPN `inventory` names and every user member of `groups`, once each; users
    /// never revoked have sessions valid from a seeded moment days before `epoch`.
    pub fn new(inventory: &Inventory, groups: &[SimGroup], seed: u64, epoch: SystemTime) -> Self {
        let mut directory = Directory {
            users: Vec::new(),
            by_upn: HashMap::new(),
            by_id: HashMap::new(),
            seed,
            epoch,
            revoked: Mutex::new(HashMap::new()),
        };
        let devices = inventory.devices().iter().map(|d| &*d.user_principal_name);
        let members = groups
            .iter()
            .flat_map(|g| g.users.iter().map(String::as_str));
        for upn in devices.chain(members) {
            directory.add(upn);
        }
        directory
    }

    fn add(&mut self, upn: &str) {
        let upn = upn.trim();
        if upn.is_empty() {
            return;
        }
        let key: Box<str> = upn.to_lowercase().into();
        if self.by_upn.contains_key(&key) {
            return;
        }
        let Ok(index) = u32::try_from(self.users.len()) else {
            return;
        };
        let id = object_id(upn);
        self.by_upn.insert(key, index);
        self.by_id.insert(id, index);
        self.users.push(User {
            id,
            upn: upn.into(),
        });
    }

    /// The user a path names: an object id (with or without braces, any case) or a
    /// UPN (any case).
    pub fn find(&self, named: &str) -> Option<u32> {
        match crate::device::parse_guid(named) {
            Some(id) => Uuid::parse_str(&id)
                .ok()
                .and_then(|id| self.by_id.get(&id).copied()),
            None => self
                .by_upn
                .get(named.trim().to_lowercase().as_str())
                .copied(),
        }
    }

    pub fn id(&self, index: u32) -> Option<Uuid> {
        self.users.get(index as usize).map(|u| u.id)
    }

    pub fn upn(&self, index: u32) -> Option<&str> {
        self.users.get(index as usize).map(|u| &*u.upn)
    }

    /// The user's first `signInSessionsValidFromDateTime`: 1 to 60 days and some
    /// seconds before the epoch, seeded, whole seconds (as Entra writes it).
    fn first_valid_from(&self, index: u32) -> SystemTime {
        let key = self
            .users
            .get(index as usize)
            .map_or(0, |u| u.id.as_u128() as u64);
        let roll = combine(&[self.seed, key, 0x5e55_1015]);
        let seconds = 86_400 + roll % (59 * 86_400);
        let epoch = self
            .epoch
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        SystemTime::UNIX_EPOCH + Duration::from_secs(epoch.saturating_sub(seconds))
    }

    /// When the user's sessions are valid from now.
    pub fn valid_from(&self, index: u32) -> SystemTime {
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        match revoked.get(&index) {
            Some(r) => r.valid_from,
            None => self.first_valid_from(index),
        }
    }

    /// A revocation of user `index` taking effect at `now`: their sessions are valid
    /// from then. Returns which of the user's revocations it is (1 for the first).
    pub fn revoke(&self, index: u32, now: SystemTime) -> u32 {
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        let entry = revoked.entry(index).or_insert(Revoked {
            valid_from: now,
            count: 0,
        });
        entry.valid_from = now;
        entry.count += 1;
        entry.count
    }

    /// Puts back what a saved tenant recorded; a user the directory no longer holds is
    /// left out.
    pub fn restore(&self, saved: &[RestoredUser]) {
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        for user in saved {
            if let Some(index) = self.find(&user.user_principal_name) {
                revoked.insert(
                    index,
                    Revoked {
                        valid_from: user.valid_from,
                        count: user.revocations,
                    },
                );
            }
        }
    }

    /// Every user revoked at least once, in the directory's order, for a saved tenant.
    pub fn saved(&self) -> Vec<RestoredUser> {
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        let mut saved: Vec<(u32, RestoredUser)> = revoked
            .iter()
            .filter_map(|(index, r)| {
                Some((
                    *index,
                    RestoredUser {
                        user_principal_name: self.upn(*index)?.to_owned(),
                        valid_from: r.valid_from,
                        revocations: r.count,
                    },
                ))
            })
            .collect();
        saved.sort_unstable_by_key(|(i, _)| *i);
        saved.into_iter().map(|(_, u)| u).collect()
    }

    /// The moment unrevoked users' valid-from times count back from.
    pub fn epoch(&self) -> SystemTime {
        self.epoch
    }

    /// Revocations per user, by UPN, for the summary.
    pub fn per_user(&self) -> BTreeMap<String, u32> {
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        revoked
            .iter()
            .filter(|(_, r)| r.count > 0)
            .filter_map(|(index, r)| Some((self.upn(*index)?.to_owned(), r.count)))
            .collect()
    }
}

/// The user properties the simulator writes, in the order Graph lists them.
const PROPERTIES: &[&str] = &[
    "id",
    "accountEnabled",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "signInSessionsValidFromDateTime",
    "surname",
    "userPrincipalName",
];

/// What Graph returns without `$select`: not `signInSessionsValidFromDateTime`, which
/// is "returned only on `$select`".
const DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

fn not_found(ctx: &Ctx, kind: Kind, named: &str) -> Reply {
    let mut reply = graph_error(
        ctx,
        kind,
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{named}' does not exist or one of its queried reference-property objects are not present."
        ),
    );
    reply.user = Some(named.to_owned());
    reply
}

/// The canonical names `$select` asks for (any case, each once), all the defaults
/// without one, or Entra's message for a name the user type lacks.
fn selected(query: &str) -> Result<Option<Vec<&'static str>>, String> {
    let Some(select) = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "$select")
        .map(|(_, v)| v.into_owned())
    else {
        return Ok(None);
    };
    let mut names: Vec<&'static str> = Vec::new();
    for wanted in select.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let name = PROPERTIES
            .iter()
            .find(|p| p.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                format!(
                    "Could not find a property named '{wanted}' on type 'Microsoft.DirectoryServices.User'."
                )
            })?;
        if !names.contains(name) {
            names.push(name);
        }
    }
    Ok(Some(names))
}

/// `GET /users/{id or UPN}`, honouring `$select`.
pub fn get(tenant: &Tenant, ctx: &Ctx, version: ApiVersion, named: &str, query: &str) -> Reply {
    let kind = Kind::User;
    let directory = &tenant.directory;
    let Some(index) = directory.find(named) else {
        return not_found(ctx, kind, named);
    };
    let select = match selected(query) {
        Ok(select) => select,
        Err(message) => {
            let mut reply = graph_error(ctx, kind, 400, "Request_BadRequest", &message);
            reply.user = Some(named.to_owned());
            return reply;
        }
    };
    let upn = directory.upn(index).unwrap_or_default();
    let id = directory.id(index).unwrap_or_default();
    let what = match &select {
        Some(names) => format!("users({})/$entity", names.join(",")),
        None => "users/$entity".to_owned(),
    };
    let name = display_name(upn);
    let (given, surname) = match name.split_once(' ') {
        Some((given, surname)) => (given.to_owned(), surname.to_owned()),
        None => (name.clone(), String::new()),
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        format!("{}/{}/$metadata#{what}", ctx.base_url, version.as_str()).into(),
    );
    for property in select.as_deref().unwrap_or(DEFAULT_PROPERTIES) {
        let value = match *property {
            "id" => id.to_string().into(),
            "accountEnabled" => true.into(),
            "businessPhones" => json!([]),
            "displayName" => name.clone().into(),
            // A name Entra does not know is null, not empty.
            "givenName" if !given.is_empty() => given.clone().into(),
            "surname" if !surname.is_empty() => surname.clone().into(),
            "mail" | "userPrincipalName" => upn.into(),
            "signInSessionsValidFromDateTime" => rfc3339(directory.valid_from(index)).into(),
            _ => Value::Null,
        };
        body.insert((*property).to_owned(), value);
    }
    let mut reply = Reply::new(200, kind, Some(Value::Object(body)));
    reply.user = Some(upn.to_owned());
    reply
}

/// `POST /users/{id or UPN}/revokeSignInSessions`: the user's sessions are valid from
/// now (the simulator's clock, once the request takes effect); 200 with Graph's
/// `Edm.Boolean` `true`.
pub fn revoke(sim: &Shared, tenant: &Tenant, ctx: &Ctx, version: ApiVersion, named: &str) -> Reply {
    let kind = Kind::RevokeSessions;
    if tenant.deny.revoke_sessions {
        let mut reply = graph_error(
            ctx,
            kind,
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
        reply.user = Some(named.to_owned());
        return reply;
    }
    let directory = &tenant.directory;
    let Some(index) = directory.find(named) else {
        return not_found(ctx, kind, named);
    };
    directory.revoke(index, sim.config.clock.wall());
    let body = json!({
        "@odata.context": format!("{}/{}/$metadata#Edm.Boolean", ctx.base_url, version.as_str()),
        "value": true,
    });
    let mut reply = Reply::new(200, kind, Some(body));
    reply.effect = true;
    reply.user = directory.upn(index).map(str::to_owned);
    reply
}
