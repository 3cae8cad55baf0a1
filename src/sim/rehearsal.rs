//! A rehearsal's tenant between commands. `run --simulate` seeds an in-process tenant
//! and, when it ends, saves it beside its report (`<report>.sim.json`): the devices,
//! the groups, each device's resets, remote locks and key rotations with the time
//! of the latest of each, and each user's sign-in session revocations with their
//! `signInSessionsValidFromDateTime`. The
//! follow-ups the run prints (`status REPORT --simulate`, `run REPORT --simulate`,
//! `--resume --simulate`) load it and go on in the same tenant, so a reset queued 5
//! minutes ago reads `done` now, as in Intune.
//!
//! A rehearsal whose job names tenants (a `tenant` column) acts in one simulated
//! tenant per tenant named ([`rehearsal_tenants`]); its saved file keeps every one of
//! them (the first at the top, as a single tenant's file has it, the others in
//! `more_tenants`), and a file saved before holds the first alone, as it did.
//!
//! No secret is saved: no token, no passcode, no Mac's unlock PIN. An action's ending
//! (and the passcode or PIN it generates) is drawn from the seed, the device, the
//! action and its number, so it is drawn again, the same, when the tenant is loaded.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::groups::SimGroup;
use super::inventory::{InventoryError, JobTargets, SavedDevice};
use super::tenants::{Restored, Tenancy, TenantConfig};
use super::{
    DEFAULT_TENANT_DOMAIN, FaultKind, Inventory, Latency, RestoredReset, RestoredUser, SavedAudit,
    SimConfig, SimHandle,
};

/// What the first key of the file says, so that another JSON file is not taken for one.
const KIND: &str = "intune-reset rehearsal tenant";

/// The file beside `report`: `reports/job-....csv.sim.json`.
pub fn path_beside(report: &Path) -> PathBuf {
    let mut name = report.as_os_str().to_owned();
    name.push(".sim.json");
    PathBuf::from(name)
}

/// A rehearsal's tenants as saved: the simulator's first tenant (the one `SimConfig`'s
/// own fields configure) in these fields, each further one (`SimConfig::more_tenants`)
/// in `more_tenants`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedTenant {
    /// Always [`KIND`].
    pub kind: String,
    /// Seeds the faults and the endings (and passcodes) of resets.
    pub seed: u64,
    pub tenant_id: String,
    /// The first tenant's domain, when it is not [`DEFAULT_TENANT_DOMAIN`] (absent from
    /// tenants saved before a rehearsal served several: theirs is the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_domain: Option<String>,
    pub devices: Vec<SavedDevice>,
    pub groups: Vec<SavedGroup>,
    pub resets: Vec<SavedReset>,
    /// Each locked device's remote locks, as `resets` (absent from tenants saved
    /// before the simulator served locks).
    #[serde(default)]
    pub locks: Vec<SavedReset>,
    /// Each device's BitLocker key rotations, as `resets` (absent from tenants saved
    /// before the simulator served rotations).
    #[serde(default)]
    pub rotations: Vec<SavedReset>,
    /// The audit records of the actions carried out (absent from tenants saved before
    /// the simulator kept an audit).
    #[serde(default)]
    pub audit: Vec<SavedAudit>,
    /// Each user whose sessions were revoked (absent from tenants saved before the
    /// simulator served users).
    #[serde(default)]
    pub users: Vec<SavedUser>,
    /// RFC 3339: the moment the users never revoked have their sessions valid from days
    /// before, so they read the same reloaded (absent: the reloaded simulator's start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_epoch: Option<String>,
    /// The further tenants of a rehearsal whose job named several, in the simulator's
    /// order (absent when there are none, and from tenants saved before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_tenants: Vec<SavedMoreTenant>,
}

/// A further tenant of a rehearsal, as saved: what [`SavedTenant`] keeps of the first,
/// with its own id and domain. The seed and the users' epoch are the first's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedMoreTenant {
    pub tenant_id: String,
    pub tenant_domain: String,
    #[serde(default)]
    pub devices: Vec<SavedDevice>,
    #[serde(default)]
    pub groups: Vec<SavedGroup>,
    #[serde(default)]
    pub resets: Vec<SavedReset>,
    #[serde(default)]
    pub locks: Vec<SavedReset>,
    #[serde(default)]
    pub rotations: Vec<SavedReset>,
    #[serde(default)]
    pub audit: Vec<SavedAudit>,
    #[serde(default)]
    pub users: Vec<SavedUser>,
}

impl SavedMoreTenant {
    fn of(tenant: &TenantConfig, state: Restored) -> SavedMoreTenant {
        SavedMoreTenant {
            tenant_id: tenant.id.clone(),
            tenant_domain: tenant.domain.clone(),
            devices: tenant.inventory.saved(),
            groups: tenant.groups.iter().map(SavedGroup::of).collect(),
            resets: state.resets.into_iter().map(SavedReset::of).collect(),
            locks: state.locks.into_iter().map(SavedReset::of).collect(),
            rotations: state.rotations.into_iter().map(SavedReset::of).collect(),
            audit: state.audit,
            users: state.users.into_iter().map(SavedUser::of).collect(),
        }
    }

    /// The tenant's configuration, as a rehearsal runs it.
    fn config(&self) -> Result<TenantConfig, String> {
        Ok(TenantConfig {
            id: self.tenant_id.clone(),
            domain: self.tenant_domain.clone(),
            inventory: Inventory::from_saved(&self.devices)?,
            groups: self.groups.iter().map(SavedGroup::group).collect(),
            faults: rehearsal_faults(),
            restored: Restored {
                resets: restored(&self.resets)?,
                locks: restored(&self.locks)?,
                rotations: restored(&self.rotations)?,
                audit: self.audit.clone(),
                users: self
                    .users
                    .iter()
                    .map(SavedUser::restored)
                    .collect::<Result<Vec<_>, String>>()?,
            },
        })
    }
}

/// Saved actions as the simulator restores them.
fn restored(saved: &[SavedReset]) -> Result<Vec<(String, RestoredReset)>, String> {
    saved.iter().map(SavedReset::restored).collect()
}

/// A user whose sign-in sessions were revoked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedUser {
    /// The user's UPN.
    pub user: String,
    /// The user's object id, for whoever reads the file (the UPN is what is matched).
    pub id: String,
    /// Revocations Entra accepted for the user.
    pub revocations: u32,
    /// RFC 3339: `signInSessionsValidFromDateTime`, when the latest took effect.
    pub sessions_valid_from: String,
}

impl SavedUser {
    fn of(user: RestoredUser) -> SavedUser {
        SavedUser {
            id: super::users::object_id(&user.user_principal_name).to_string(),
            user: user.user_principal_name,
            revocations: user.revocations,
            sessions_valid_from: humantime::format_rfc3339_nanos(user.valid_from).to_string(),
        }
    }

    fn restored(&self) -> Result<RestoredUser, String> {
        let valid_from = humantime::parse_rfc3339(&self.sessions_valid_from).map_err(|e| {
            format!(
                "the sessions time '{}' of {} cannot be read: {e}",
                self.sessions_valid_from, self.user
            )
        })?;
        Ok(RestoredUser {
            user_principal_name: self.user.clone(),
            valid_from,
            revocations: self.revocations,
        })
    }
}

/// An Entra group of the rehearsal: members as UPNs and Entra device ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedGroup {
    pub name: String,
    pub users: Vec<String>,
    pub devices: Vec<String>,
}

impl SavedGroup {
    fn of(g: &SimGroup) -> SavedGroup {
        SavedGroup {
            name: g.name.clone(),
            users: g.users.clone(),
            devices: g.devices.clone(),
        }
    }

    fn group(&self) -> SimGroup {
        SimGroup {
            name: self.name.clone(),
            users: self.users.clone(),
            devices: self.devices.clone(),
        }
    }
}

/// A device's actions of one kind: its resets (or locks, or rotations).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedReset {
    /// The Intune managed device id.
    pub device: String,
    pub count: u32,
    /// Actions sent while the one before was pending or done.
    pub over_standing: u32,
    /// RFC 3339, when the latest was sent.
    pub last_sent: String,
}

impl SavedReset {
    fn of((device, r): (String, RestoredReset)) -> SavedReset {
        SavedReset {
            device,
            count: r.count,
            over_standing: r.over_standing,
            last_sent: humantime::format_rfc3339_nanos(r.started).to_string(),
        }
    }

    fn restored(&self) -> Result<(String, RestoredReset), String> {
        let started = humantime::parse_rfc3339(&self.last_sent)
            .map_err(|e| format!("the action time '{}' cannot be read: {e}", self.last_sent))?;
        Ok((
            self.device.clone(),
            RestoredReset {
                count: self.count,
                over_standing: self.over_standing,
                started,
            },
        ))
    }
}

impl SavedTenant {
    /// Every tenant `sim` holds, as it is now.
    pub fn of(sim: &SimHandle) -> SavedTenant {
        let config = sim.config();
        SavedTenant {
            kind: KIND.to_owned(),
            seed: config.seed,
            tenant_id: config.tenant_id.clone(),
            tenant_domain: (config.tenant_domain != DEFAULT_TENANT_DOMAIN)
                .then(|| config.tenant_domain.clone()),
            devices: config.inventory.saved(),
            groups: config.groups.iter().map(SavedGroup::of).collect(),
            resets: sim.saved_resets().into_iter().map(SavedReset::of).collect(),
            locks: sim.saved_locks().into_iter().map(SavedReset::of).collect(),
            rotations: sim
                .saved_rotations()
                .into_iter()
                .map(SavedReset::of)
                .collect(),
            audit: sim.saved_audit(),
            users: sim.saved_users().into_iter().map(SavedUser::of).collect(),
            users_epoch: Some(humantime::format_rfc3339_nanos(sim.directory_epoch()).to_string()),
            more_tenants: config
                .more_tenants
                .iter()
                .enumerate()
                .map(|(i, t)| SavedMoreTenant::of(t, sim.restorable(i + 1).unwrap_or_default()))
                .collect(),
        }
    }

    /// Reads the tenant saved at `path`; the error says what is wrong in a sentence.
    pub fn load(path: &Path) -> Result<SavedTenant, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the rehearsal's tenant {}: {e}", path.display()))?;
        let saved: SavedTenant = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a rehearsal's tenant as intune-reset saves it: {e}",
                path.display()
            )
        })?;
        if saved.kind != KIND {
            return Err(format!(
                "{} is not a rehearsal's tenant as intune-reset saves it",
                path.display()
            ));
        }
        Ok(saved)
    }

    /// Writes the tenant to `path` through a temporary file renamed over it, so a
    /// crash leaves the old tenant or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let fail = |e: &dyn std::fmt::Display| {
            format!(
                "cannot save the rehearsal's tenant to {}: {e}",
                path.display()
            )
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| fail(&e))?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail(&e))?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| fail(&e))?;
        file.persist(path).map_err(|e| fail(&e.error))?;
        Ok(())
    }

    /// The simulator's configuration for these tenants, as a rehearsal runs it.
    pub fn config(&self) -> Result<SimConfig, String> {
        let inventory = Inventory::from_saved(&self.devices)?;
        let mut config = rehearsal_config(inventory, self.seed);
        config.tenant_id = self.tenant_id.clone();
        if let Some(domain) = &self.tenant_domain {
            config.tenant_domain = domain.clone();
        }
        config.groups = self.groups.iter().map(SavedGroup::group).collect();
        config.more_tenants = self
            .more_tenants
            .iter()
            .map(SavedMoreTenant::config)
            .collect::<Result<Vec<_>, String>>()?;
        config.restored_resets = restored(&self.resets)?;
        config.restored_locks = restored(&self.locks)?;
        config.restored_rotations = restored(&self.rotations)?;
        config.restored_audit = self.audit.clone();
        config.restored_users = self
            .users
            .iter()
            .map(SavedUser::restored)
            .collect::<Result<Vec<_>, String>>()?;
        config.directory_epoch = match &self.users_epoch {
            Some(text) => Some(
                humantime::parse_rfc3339(text)
                    .map_err(|e| format!("the users' time '{text}' cannot be read: {e}"))?,
            ),
            None => None,
        };
        Ok(config)
    }

    /// When the latest reset was sent in any of its tenants, for messages ("the
    /// rehearsal of ...").
    pub fn last_reset(&self) -> Option<SystemTime> {
        self.resets
            .iter()
            .chain(self.more_tenants.iter().flat_map(|t| &t.resets))
            .filter_map(|r| humantime::parse_rfc3339(&r.last_sent).ok())
            .max()
    }
}

/// A rehearsal's simulator: `inventory`, Intune's limits, 40-120 ms answers, and the
/// occasional 503 and lost answer real networks have, so verification shows too.
pub fn rehearsal_config(inventory: Inventory, seed: u64) -> SimConfig {
    SimConfig {
        inventory,
        seed,
        latency: Latency {
            base: Duration::from_millis(40),
            jitter: Duration::from_millis(80),
        },
        faults: rehearsal_faults(),
        action_delay: Duration::from_secs(5),
        ..SimConfig::default()
    }
}

/// The faults each tenant of a rehearsal meets: the occasional 503 and lost answer.
fn rehearsal_faults() -> Vec<(FaultKind, f64)> {
    vec![
        (FaultKind::ServiceUnavailable, 0.005),
        (FaultKind::DropAfterEffect, 0.005),
    ]
}

/// A rehearsal's simulator seeded from its job (`run --simulate`), with the job's rows
/// that name only a user, a group or a filter (the caller refuses those without an
/// inventory). `job`: the job's files, as messages name them; `inventory`:
/// `--simulate-inventory`'s files.
///
/// - Without `inventory`, a tenant holds the devices the job's rows name; with it,
///   the devices its files' rows name, and each group the job names stands for all of
///   them ([`group_of_inventory`]).
/// - When rows (the job's, then the inventory's) name tenants (a `tenant` column),
///   each tenant named is a tenant of its own ([`Tenancy`]): the first named is the
///   simulator's first, the others `more_tenants` in order of first appearance; it
///   holds the devices of the rows naming it, and the groups of the job's rows naming
///   it stand for its devices alone. A row naming no tenant is the first's. The same
///   device id or serial number in two tenants is two devices.
/// - When no row names a tenant, the configuration is the one a rehearsal always had.
pub fn rehearsal_tenants(
    job: &[(PathBuf, String)],
    inventory: &[PathBuf],
    seed: u64,
    read: &crate::job::ReadOptions,
) -> Result<(SimConfig, JobTargets), InventoryError> {
    let mut tenancy = Tenancy::new(seed);
    let from_job = Inventory::by_tenant(job, &mut tenancy, read, true)?;
    let slots: Vec<(Inventory, Vec<SimGroup>)> = if inventory.is_empty() {
        from_job
            .iter()
            .map(|(devices, _)| (devices.clone(), Vec::new()))
            .collect()
    } else {
        let named: Vec<(PathBuf, String)> = inventory
            .iter()
            .map(|p| (p.clone(), p.display().to_string()))
            .collect();
        let mut devices = Inventory::by_tenant(&named, &mut tenancy, read, false)?;
        devices.resize_with(devices.len().max(from_job.len()), Default::default);
        devices
            .into_iter()
            .enumerate()
            .map(|(slot, (devices, _))| {
                let groups = from_job
                    .get(slot)
                    .map(|(_, targets)| {
                        targets
                            .groups
                            .iter()
                            .map(|g| group_of_inventory(g, &devices))
                            .collect()
                    })
                    .unwrap_or_default();
                (devices, groups)
            })
            .collect()
    };
    let mut targets = JobTargets::default();
    for (_, t) in from_job {
        targets.users.extend(t.users);
        targets.groups.extend(t.groups);
        targets.filters.extend(t.filters);
    }
    let mut slots = slots.into_iter();
    let (first, groups) = slots.next().unwrap_or_default();
    let mut config = rehearsal_config(first, seed);
    config.groups = groups;
    if let Some(((id, domain), more)) = tenancy.tenants().split_first() {
        config.tenant_id.clone_from(id);
        config.tenant_domain.clone_from(domain);
        config.more_tenants = more
            .iter()
            .zip(slots)
            .map(|((id, domain), (inventory, groups))| TenantConfig {
                id: id.clone(),
                domain: domain.clone(),
                inventory,
                groups,
                faults: rehearsal_faults(),
                restored: Restored::default(),
            })
            .collect();
    }
    Ok((config, targets))
}

/// The group a rehearsal of `--group NAME` acts on: a rehearsal cannot know a group's
/// members, so the inventory it was given stands for them. Its users are members,
/// and its devices without a user but known to Entra are device members.
pub fn group_of_inventory(name: &str, inventory: &Inventory) -> SimGroup {
    let mut users: Vec<String> = Vec::new();
    let mut devices = Vec::new();
    for d in inventory.devices() {
        if !d.user_principal_name.is_empty() {
            let upn = d.user_principal_name.to_lowercase();
            if !users.contains(&upn) {
                users.push(upn);
            }
        } else if !d.azure_ad_device_id.is_nil() {
            devices.push(d.azure_ad_device_id.to_string());
        }
    }
    SimGroup {
        name: name.to_owned(),
        users,
        devices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_file_is_named_after_the_whole_report_name() {
        assert_eq!(
            path_beside(Path::new("reports/job.xlsx")),
            PathBuf::from("reports/job.xlsx.sim.json")
        );
    }

    #[test]
    fn a_group_of_an_inventory_holds_its_users_once_and_its_userless_entra_devices() {
        let inventory = Inventory::generate(200, 3);
        let group = group_of_inventory("Sales", &inventory);
        let mut users = group.users.clone();
        users.dedup();
        assert_eq!(users.len(), group.users.len());
        for d in inventory.devices() {
            let member = group.users.contains(&d.user_principal_name.to_lowercase())
                || group.devices.contains(&d.azure_ad_device_id.to_string());
            assert!(
                member || (d.user_principal_name.is_empty() && d.azure_ad_device_id.is_nil()),
                "{d:?}"
            );
        }
    }

    #[test]
    fn a_saved_tenant_keeps_its_users_revocations_and_an_older_one_has_none() {
        let inventory = Inventory::generate(10, 5);
        let upn = "Anna.Smith@contoso.onmicrosoft.com";
        let saved = SavedTenant {
            kind: KIND.to_owned(),
            seed: 5,
            tenant_id: "t".into(),
            tenant_domain: None,
            more_tenants: vec![],
            devices: inventory.saved(),
            groups: vec![SavedGroup {
                name: "Responders".into(),
                users: vec![upn.into()],
                devices: vec![],
            }],
            resets: vec![],
            locks: vec![],
            rotations: vec![],
            audit: vec![],
            users: vec![SavedUser::of(RestoredUser {
                user_principal_name: upn.into(),
                valid_from: humantime::parse_rfc3339("2026-12-01T10:00:00.25Z").expect("a time"),
                revocations: 2,
            })],
            users_epoch: Some("2026-12-01T09:00:00Z".into()),
        };
        assert_eq!(
            saved.users[0].id,
            super::super::users::object_id(&upn.to_lowercase()).to_string()
        );
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("r.csv.sim.json");
        saved.save(&path).expect("saved");
        let config = SavedTenant::load(&path)
            .expect("loaded")
            .config()
            .expect("a configuration");
        assert_eq!(
            config.restored_users,
            [RestoredUser {
                user_principal_name: upn.into(),
                valid_from: humantime::parse_rfc3339("2026-12-01T10:00:00.25Z").expect("a time"),
                revocations: 2,
            }]
        );
        assert_eq!(
            config.directory_epoch,
            humantime::parse_rfc3339("2026-12-01T09:00:00Z").ok()
        );
        // A tenant saved before the simulator served users reads as one without any.
        let mut old: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        if let Some(tenant) = old.as_object_mut() {
            tenant.remove("users");
            tenant.remove("users_epoch");
        }
        std::fs::write(&path, old.to_string()).expect("written");
        let config = SavedTenant::load(&path)
            .expect("loaded")
            .config()
            .expect("a configuration");
        assert!(config.restored_users.is_empty());
        assert_eq!(config.directory_epoch, None);
    }

    #[test]
    fn a_saved_tenant_reads_back_as_it_was_its_locks_included() {
        let inventory = Inventory::generate(30, 5);
        let saved = SavedTenant {
            kind: KIND.to_owned(),
            seed: 5,
            tenant_id: "t".into(),
            tenant_domain: None,
            more_tenants: vec![],
            devices: inventory.saved(),
            groups: vec![],
            resets: vec![SavedReset {
                device: inventory.devices()[0].id.to_string(),
                count: 2,
                over_standing: 0,
                last_sent: "2026-12-01T10:00:00.5Z".into(),
            }],
            locks: vec![SavedReset {
                device: inventory.devices()[1].id.to_string(),
                count: 3,
                over_standing: 1,
                last_sent: "2026-12-01T10:05:00Z".into(),
            }],
            rotations: vec![],
            audit: vec![],
            users: vec![],
            users_epoch: None,
        };
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("r.csv.sim.json");
        saved.save(&path).expect("saved");
        let back = SavedTenant::load(&path).expect("loaded");
        let config = back.config().expect("a configuration");
        assert_eq!(config.inventory.saved(), inventory.saved());
        assert_eq!(config.restored_resets.len(), 1);
        assert_eq!(config.restored_resets[0].1.count, 2);
        assert_eq!(
            config.restored_locks,
            [(
                inventory.devices()[1].id.to_string(),
                RestoredReset {
                    count: 3,
                    over_standing: 1,
                    started: humantime::parse_rfc3339("2026-12-01T10:05:00Z").expect("a time"),
                }
            )]
        );
        assert!(config.restored_rotations.is_empty());
        // A tenant saved before the simulator served locks reads as one without any.
        let mut old: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        if let Some(tenant) = old.as_object_mut() {
            tenant.remove("locks");
            tenant.remove("rotations");
        }
        std::fs::write(&path, old.to_string()).expect("written");
        let old = SavedTenant::load(&path).expect("loaded");
        assert!(old.locks.is_empty() && old.rotations.is_empty());
        assert_eq!(old.resets.len(), 1);
        std::fs::write(&path, "{\"kind\":\"other\"}").expect("written");
        assert!(SavedTenant::load(&path).is_err());
    }
}
