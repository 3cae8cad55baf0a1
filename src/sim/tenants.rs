//! Several customer tenants in one simulator, as a managed service provider meets them
//! (issue 22): one multi-tenant app consented in each, a token from each tenant's own
//! authority, every Graph request served from the tenant its token names.
//!
//! The first tenant is the one every other `simulate` flag configures (`--tenant`,
//! `--tenant-domain`, `--inventory` or `--generate`, `--group`, `--fault`, the deny
//! flags); a rehearsal's saved tenant is that one. Further tenants come from
//! `--tenant-inventory TENANT=FILE` (`TENANT` is `ID` or `ID,DOMAIN`), with their own
//! groups (`--tenant-group TENANT:NAME=MEMBERS`) and faults
//! (`--tenant-fault TENANT:KIND=P`). Each tenant holds its own devices, users, groups,
//! actions and their `deviceActionResults`, audit trail, Intune windows (per app and
//! per tenant, the configured limits), directory budget, faults and counts: a device id
//! or UPN found in two tenants is two objects, and one tenant's 429s never come from
//! another's traffic. Across tenants only Graph's own limit per app applies
//! ([`super::throttle::GraphThrottle`]).
//!
//! What further tenants do not have: the deny flags (`--deny-app`,
//! `--deny-group-read`, `--deny-audit-read`, `--deny-revoke-sessions`) concern the first
//! tenant only, a further tenant grants every permission; its users' object ids are
//! derived from the UPN alone (see [`super::users::object_id`]), so a UPN found in two
//! tenants has the same object id in both (its state is its tenant's all the same).
//!
//! A rehearsal (`run --simulate`) whose job names tenants (a `tenant` column) seeds one
//! tenant per tenant named, and saves them all ([`super::rehearsal`]); each further
//! tenant's saved state comes back through [`TenantConfig::restored`].

use std::path::PathBuf;
use std::time::SystemTime;

use super::SimConfig;
use super::actions::{DeviceActions, RestoredReset};
use super::audit::{AuditTrail, SavedAudit};
use super::dice::{combine, hash_text};
use super::faults::{FaultKind, FaultPlan, parse_fault};
use super::groups::SimGroup;
use super::inventory::Inventory;
use super::stats::StatsCollector;
use super::throttle::{DirectoryThrottle, Throttle};
use super::users::{Directory, RestoredUser};
use crate::rules::Family;

/// A further tenant, as configured (`simulate --tenant-inventory`).
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// The tenant id: the token URL takes it, tokens carry it as `tid`.
    pub id: String,
    /// The tenant's domain, accepted in the token URL in place of the id.
    pub domain: String,
    /// Its managed devices.
    pub inventory: Inventory,
    /// Its Entra groups.
    pub groups: Vec<SimGroup>,
    /// Faults injected into its requests only, as `SimConfig::faults` for the first.
    pub faults: Vec<(FaultKind, f64)>,
    /// What a rehearsal's saved tenant recorded of it, put back when the simulator
    /// starts (as `SimConfig::restored_*` for the first tenant).
    pub restored: Restored,
}

/// A tenant's state as a rehearsal saved it: its actions, audit records and users'
/// revocations. Devices are named by their Intune id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Restored {
    /// Resets, by device id.
    pub resets: Vec<(String, RestoredReset)>,
    /// Remote locks, by device id.
    pub locks: Vec<(String, RestoredReset)>,
    /// BitLocker key rotations, by device id.
    pub rotations: Vec<(String, RestoredReset)>,
    /// The audit records of the actions carried out.
    pub audit: Vec<SavedAudit>,
    /// Users whose sessions were revoked.
    pub users: Vec<RestoredUser>,
}

impl Restored {
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.resets.is_empty()
            && self.locks.is_empty()
            && self.rotations.is_empty()
            && self.audit.is_empty()
            && self.users.is_empty()
    }
}

/// What Graph refuses a tenant's app for lack of a permission: the first tenant's come
/// from the deny flags, a further tenant refuses nothing.
#[derive(Debug, Clone, Default)]
pub struct Denials {
    /// `SimConfig::deny_apps`.
    pub apps: Vec<String>,
    /// `SimConfig::deny_group_read`.
    pub group_read: bool,
    /// `SimConfig::deny_audit_read`.
    pub audit_read: bool,
    /// `SimConfig::deny_revoke_sessions`.
    pub revoke_sessions: bool,
}

/// One tenant's state while the simulator runs.
#[derive(Debug)]
pub struct Tenant {
    /// The tenant id, as configured; tokens for this tenant carry it.
    pub id: String,
    /// The tenant's domain.
    pub domain: String,
    /// Its managed devices.
    pub inventory: Inventory,
    /// Its Entra groups.
    pub groups: Vec<SimGroup>,
    /// Permissions its app lacks.
    pub deny: Denials,
    /// Intune's limits, per app in this tenant and for the tenant.
    pub throttle: Throttle,
    /// Entra's directory limits, per app in this tenant.
    pub directory_throttle: DirectoryThrottle,
    /// Its directory's users and when their sessions were last revoked.
    pub directory: Directory,
    /// Faults to inject into its requests.
    pub faults: FaultPlan,
    /// Its queued resets, locks and key rotations.
    pub actions: DeviceActions,
    /// The audit record of every action carried out in it.
    pub audit: AuditTrail,
    /// Its counts for the summary.
    pub stats: StatsCollector,
}

impl Tenant {
    /// The state of the tenant `spec` describes, under `config`'s limits and delays.
    /// `seed` seeds its faults, its actions' endings and its users' sessions times.
    pub fn new(
        spec: TenantConfig,
        deny: Denials,
        config: &SimConfig,
        seed: u64,
        epoch: SystemTime,
    ) -> Tenant {
        let directory = Directory::new(&spec.inventory, &spec.groups, seed, epoch);
        Tenant {
            throttle: Throttle::new(config.limits),
            // `limits: None` (`simulate --no-limits`) switches every budget off.
            directory_throttle: DirectoryThrottle::new(config.limits.and(config.directory_limits)),
            directory,
            faults: FaultPlan::new(spec.faults, seed),
            actions: DeviceActions::new(seed, config.action_delay),
            audit: AuditTrail::new(config.audit_correlation),
            stats: StatsCollector::default(),
            id: spec.id,
            domain: spec.domain,
            inventory: spec.inventory,
            groups: spec.groups,
            deny,
        }
    }

    /// Puts back what a saved tenant recorded: its users' revocations, each action of a
    /// device it still holds (a device it no longer holds is passed over), its audit.
    pub fn restore(&self, restored: &Restored) {
        self.directory.restore(&restored.users);
        let families = [
            (Family::Passcode, &restored.resets),
            (Family::Lock, &restored.locks),
            (Family::BitLocker, &restored.rotations),
        ];
        let inventory = &self.inventory;
        for (family, saved) in families {
            for (id, saved) in saved {
                if let Some((index, device)) = inventory
                    .find_id(id)
                    .and_then(|i| inventory.device(i).map(|d| (i, d)))
                {
                    self.actions.restore(family, index, device, *saved);
                }
            }
        }
        self.audit.restore(inventory, &restored.audit);
    }

    /// Its state as a saved tenant keeps it (see [`Tenant::restore`]).
    pub fn restorable(&self) -> Restored {
        let inventory = &self.inventory;
        let actions = |family: Family| -> Vec<(String, RestoredReset)> {
            self.actions
                .saved(family)
                .into_iter()
                .filter_map(|(i, r)| inventory.device(i).map(|d| (d.id.to_string(), r)))
                .collect()
        };
        Restored {
            resets: actions(Family::Passcode),
            locks: actions(Family::Lock),
            rotations: actions(Family::BitLocker),
            audit: self.audit.saved(inventory),
            users: self.directory.saved(),
        }
    }

    /// A tenant with nothing in it, under the default configuration, for tests that
    /// need a caller's tenant but not its state.
    #[cfg(test)]
    pub fn empty() -> Tenant {
        let config = SimConfig::default();
        Tenant::new(
            TenantConfig {
                id: config.tenant_id.clone(),
                domain: config.tenant_domain.clone(),
                inventory: Inventory::default(),
                groups: Vec::new(),
                faults: Vec::new(),
                restored: Restored::default(),
            },
            Denials::default(),
            &config,
            config.seed,
            SystemTime::UNIX_EPOCH,
        )
    }

    /// Whether `name` (an id or a domain, any case) names this tenant.
    pub fn is_named(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(&self.id) || name.eq_ignore_ascii_case(&self.domain)
    }
}

/// The seed of a further tenant: the simulator's, mixed with the tenant id, so two
/// tenants' faults, endings and passcodes are drawn apart. The first tenant keeps the
/// simulator's seed as it is.
pub fn seed_of(seed: u64, tenant_id: &str) -> u64 {
    combine(&[seed, hash_text(&tenant_id.to_lowercase())])
}

/// The domain a further tenant gets when `--tenant-inventory` names none:
/// `tenant-<the id's first 8 letters or digits>.onmicrosoft.com`.
pub fn default_domain(id: &str) -> String {
    let head: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_lowercase();
    format!("tenant-{head}.onmicrosoft.com")
}

/// The tenant a job row's `tenant` value names, as a rehearsal compares them: a GUID
/// written lower-case without braces, or a domain trimmed and lower-cased. `None` for
/// a value that is neither (the run refuses that row as `malformed_tenant`).
pub fn tenant_key(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some(id) = crate::device::parse_guid(text) {
        return Some(id);
    }
    let domain = text.to_ascii_lowercase();
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    (domain.contains('.') && labels_ok).then_some(domain)
}

/// The tenant id a rehearsal gives a tenant a job names by its domain: a GUID drawn
/// from the seed and the domain, so the same job and seed give the same id every run.
pub fn id_for_domain(seed: u64, domain: &str) -> String {
    let mut dice = super::dice::Dice::new(combine(&[
        seed,
        hash_text("rehearsal tenant"),
        hash_text(&domain.to_lowercase()),
    ]));
    let bytes = (u128::from(dice.next_u64()) << 64 | u128::from(dice.next_u64())).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// The tenants a rehearsal's job names (its `tenant` column), in order of first
/// appearance: the first is the simulator's first tenant, the others its
/// `more_tenants`. A tenant named by a GUID has that id and a domain made from it
/// ([`default_domain`]); one named by a domain has that domain and an id drawn from
/// the seed and the domain ([`id_for_domain`]). Names are compared trimmed and
/// lower-cased ([`tenant_key`]); a value that is neither a GUID nor a domain names no
/// tenant.
#[derive(Debug, Clone)]
pub struct Tenancy {
    seed: u64,
    tenants: Vec<(String, String)>,
}

impl Tenancy {
    /// No tenant named yet.
    pub fn new(seed: u64) -> Tenancy {
        Tenancy {
            seed,
            tenants: Vec::new(),
        }
    }

    /// The slot of the tenant a row's `tenant` value names (its index in
    /// [`Tenancy::tenants`], a new one at the end for a tenant not named before); 0,
    /// the first tenant, for a row naming none.
    pub fn slot(&mut self, value: Option<&str>) -> usize {
        let Some(key) = value.and_then(tenant_key) else {
            return 0;
        };
        if let Some(slot) = self
            .tenants
            .iter()
            .position(|(id, domain)| *id == key || *domain == key)
        {
            return slot;
        }
        let tenant = if crate::device::parse_guid(&key).is_some() {
            (key.clone(), default_domain(&key))
        } else {
            (id_for_domain(self.seed, &key), key)
        };
        self.tenants.push(tenant);
        self.tenants.len() - 1
    }

    /// The seed the devices of the tenant at `slot` draw their missing ids and facts
    /// from, as the simulator seeds the tenant's faults and endings: the first
    /// tenant's is the rehearsal's seed, a further one's [`seed_of`] its id.
    pub fn seed(&self, slot: usize) -> u64 {
        match self.tenants.get(slot) {
            Some((id, _)) if slot > 0 => seed_of(self.seed, id),
            _ => self.seed,
        }
    }

    /// Each tenant named, as `(id, domain)`, in order of first appearance.
    pub fn tenants(&self) -> &[(String, String)] {
        &self.tenants
    }

    /// How many tenants were named.
    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    /// Whether no row named a tenant.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }
}

/// One `--tenant-inventory TENANT=FILE`: `TENANT` is `ID` or `ID,DOMAIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantInventory {
    /// The tenant id (a GUID is written lower-case, as Entra writes it).
    pub id: String,
    /// The domain, when given.
    pub domain: Option<String>,
    /// A job or export file, read as `--inventory` reads files.
    pub file: PathBuf,
}

/// Parses `--tenant-inventory`: `ID=FILE` or `ID,DOMAIN=FILE`. An id is a GUID or,
/// for a quick rehearsal, any word of letters, digits, `-` and `_`; a domain has a dot.
pub fn parse_tenant_inventory(text: &str) -> Result<TenantInventory, String> {
    let (tenant, file) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not TENANT=FILE (TENANT is ID or ID,DOMAIN)"))?;
    let file = file.trim();
    if file.is_empty() {
        return Err(format!("'{text}' names no file after '='"));
    }
    let (id, domain) = match tenant.split_once(',') {
        Some((id, domain)) => (id, Some(domain)),
        None => (tenant, None),
    };
    let id = tenant_id(id)?;
    let domain = match domain.map(str::trim) {
        None => None,
        Some(d)
            if d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !d.contains([',', ':', '/', '=', ' ']) =>
        {
            Some(d.to_lowercase())
        }
        Some(d) => {
            return Err(format!(
                "'{d}' is not a tenant domain (like fabrikam.onmicrosoft.com)"
            ));
        }
    };
    Ok(TenantInventory {
        id,
        domain,
        file: PathBuf::from(file),
    })
}

/// A tenant id as `--tenant-inventory` takes it.
fn tenant_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    if let Ok(guid) = uuid::Uuid::parse_str(text) {
        return Ok(guid.hyphenated().to_string());
    }
    let word = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !word {
        return Err(format!(
            "'{text}' is not a tenant id (a GUID, or a word of letters, digits, - and _)"
        ));
    }
    Ok(text.to_owned())
}

/// Splits `TENANT:REST` (`--tenant-group`, `--tenant-fault`): the tenant is named by
/// its id or domain, which hold no colon.
fn split_tenant<'a>(text: &'a str, rest: &str) -> Result<(String, &'a str), String> {
    match text.split_once(':') {
        Some((tenant, tail)) if !tenant.trim().is_empty() => Ok((tenant.trim().to_owned(), tail)),
        _ => Err(format!("'{text}' is not TENANT:{rest}")),
    }
}

/// Parses `--tenant-group TENANT:NAME=MEMBERS` (members as `--group` takes them).
pub fn parse_tenant_group(text: &str) -> Result<(String, SimGroup), String> {
    let (tenant, group) = split_tenant(text, "NAME=MEMBERS")?;
    Ok((tenant, SimGroup::parse(group)?))
}

/// Parses `--tenant-fault TENANT:KIND=P` (as `--fault` takes `KIND=P`).
pub fn parse_tenant_fault(text: &str) -> Result<(String, (FaultKind, f64)), String> {
    let (tenant, fault) = split_tenant(text, "KIND=PROBABILITY")?;
    Ok((tenant, parse_fault(fault)?))
}

/// Adds the further tenants to `config` (whose own fields are the first tenant's): one
/// per id of `inventories` (a tenant named twice reads both files), their devices read
/// with `config.seed` and `read` as `--inventory` reads files; then each group and
/// fault to the tenant it names by id or domain, the first tenant included. A tenant
/// named twice with two domains, an id or domain taken twice, or a group or fault for
/// no configured tenant is an error that says so.
pub fn add_tenants(
    config: &mut SimConfig,
    inventories: &[TenantInventory],
    groups: Vec<(String, SimGroup)>,
    faults: Vec<(String, (FaultKind, f64))>,
    read: &crate::job::ReadOptions,
) -> Result<(), String> {
    // By id: the domain given (on any of its files), the files.
    let mut named: Vec<(String, Option<String>, Vec<PathBuf>)> = Vec::new();
    for wanted in inventories {
        let Some(spec) = named
            .iter_mut()
            .find(|(id, _, _)| id.eq_ignore_ascii_case(&wanted.id))
        else {
            named.push((
                wanted.id.clone(),
                wanted.domain.clone(),
                vec![wanted.file.clone()],
            ));
            continue;
        };
        match (&spec.1, &wanted.domain) {
            (Some(known), Some(domain)) if !known.eq_ignore_ascii_case(domain) => {
                return Err(format!(
                    "--tenant-inventory names tenant {} with two domains, {known} and {domain}",
                    spec.0
                ));
            }
            (None, Some(domain)) => spec.1 = Some(domain.clone()),
            _ => {}
        }
        spec.2.push(wanted.file.clone());
    }
    let specs: Vec<(String, String, Vec<PathBuf>)> = named
        .into_iter()
        .map(|(id, domain, files)| {
            let domain = domain.unwrap_or_else(|| default_domain(&id));
            (id, domain, files)
        })
        .collect();
    let mut names: Vec<String> = vec![
        config.tenant_id.to_lowercase(),
        config.tenant_domain.to_lowercase(),
    ];
    for (id, domain, _) in &specs {
        for name in [id, domain] {
            if names.contains(&name.to_lowercase()) {
                return Err(format!(
                    "--tenant-inventory: '{name}' names two tenants (a tenant's id and domain must be its own)"
                ));
            }
            names.push(name.to_lowercase());
        }
    }
    for (id, domain, files) in specs {
        let inventory =
            Inventory::from_job_files(&files, config.seed, read).map_err(|e| e.to_string())?;
        config.more_tenants.push(TenantConfig {
            id,
            domain,
            inventory,
            groups: Vec::new(),
            faults: Vec::new(),
            restored: Restored::default(),
        });
    }
    enum Slot {
        First,
        More(usize),
    }
    let slot = |config: &SimConfig, name: &str, flag: &str| {
        if name.eq_ignore_ascii_case(&config.tenant_id)
            || name.eq_ignore_ascii_case(&config.tenant_domain)
        {
            return Ok(Slot::First);
        }
        config
            .more_tenants
            .iter()
            .position(|t| name.eq_ignore_ascii_case(&t.id) || name.eq_ignore_ascii_case(&t.domain))
            .map(Slot::More)
            .ok_or_else(|| {
                format!(
                    "{flag} {name}:...: no such tenant (name the first tenant or one given with --tenant-inventory, by id or domain)"
                )
            })
    };
    for (name, group) in groups {
        match slot(config, &name, "--tenant-group")? {
            Slot::First => config.groups.push(group),
            Slot::More(i) => {
                if let Some(t) = config.more_tenants.get_mut(i) {
                    t.groups.push(group);
                }
            }
        }
    }
    for (name, fault) in faults {
        match slot(config, &name, "--tenant-fault")? {
            Slot::First => config.faults.push(fault),
            Slot::More(i) => {
                if let Some(t) = config.more_tenants.get_mut(i) {
                    t.faults.push(fault);
                }
            }
        }
    }
    Ok(())
}
