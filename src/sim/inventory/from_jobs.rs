//! An inventory from job files, so a rehearsal runs against the very devices of the
//! real job. The files are read with [`crate::job`], the same readers `plan` and `run`
//! use. Rows without an Intune id get a GUID derived from the seed and the row's
//! identity (serial number, Entra device id, IMEI, name or UPN), so the same file gives
//! the same ids every time. Facts a row lacks are filled from the realistic mix,
//! consistently with the facts it has, again derived from the seed and the identity.

use std::path::PathBuf;

use uuid::Uuid;

use super::generate::{
    FactsPool, TEMPLATES, Template, guid, imei, name, pick_template, serial, user,
};
use super::{Device, Inventory};
use crate::device::parse_guid;
use crate::device::{Column, DeviceFields};
use crate::job::{self, JobError, ReadOptions};
use crate::rules::{Classified, classify};
use crate::sim::dice::{Dice, combine, hash_text};
use crate::sim::tenants::Tenancy;

/// The inventory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("{0}: no row names a device (id, serial number, Entra device id, IMEI, name or UPN)")]
    Empty(String),
}

/// Columns that identify a device, in the order the identity is taken from.
const IDENTITY: [Column; 6] = [
    Column::Id,
    Column::SerialNumber,
    Column::AzureAdDeviceId,
    Column::Imei,
    Column::DeviceName,
    Column::UserPrincipalName,
];

impl Inventory {
    /// Reads every row of every file (`read`: `--sheet`, `--encoding`); a row repeating
    /// an earlier device's id is dropped.
    pub fn from_job_files(
        paths: &[PathBuf],
        seed: u64,
        read: &ReadOptions,
    ) -> Result<Inventory, InventoryError> {
        let named: Vec<(PathBuf, String)> = paths
            .iter()
            .map(|p| (p.clone(), p.display().to_string()))
            .collect();
        Inventory::from_named_job_files(&named, seed, read)
    }

    /// [`Inventory::from_job_files`] for files that messages name otherwise (a run's
    /// private copies, named as the originals).
    pub fn from_named_job_files(
        files: &[(PathBuf, String)],
        seed: u64,
        read: &ReadOptions,
    ) -> Result<Inventory, InventoryError> {
        read_named(files, seed, read, false).map(|(inventory, _)| inventory)
    }

    /// A rehearsal's tenant from its job (`run --simulate`): the devices the rows name,
    /// and apart, the rows that name only a user, a group or a filter. Those seed no
    /// device: a rehearsal cannot know a user's devices (a mistyped UPN would get one),
    /// so the caller needs an inventory for them.
    pub fn from_job_with_targets(
        files: &[(PathBuf, String)],
        seed: u64,
        read: &ReadOptions,
    ) -> Result<(Inventory, JobTargets), InventoryError> {
        read_named(files, seed, read, true)
    }
}

/// Rows of a job that name no device but a user, a group or a filter, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobTargets {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub filters: Vec<String>,
}

impl JobTargets {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.filters.is_empty()
    }

    /// Files the row in `targets` if it names no device (only with `apart`).
    fn take(&mut self, fields: &DeviceFields) -> bool {
        if DEVICE_IDENTITY.iter().any(|c| fields.get(*c).is_some()) {
            return false;
        }
        let kinds = [
            (Column::Group, &mut self.groups),
            (Column::Where, &mut self.filters),
            (Column::UserPrincipalName, &mut self.users),
        ];
        for (column, list) in kinds {
            if let Some(value) = fields.get(column) {
                list.push(value.to_owned());
                return true;
            }
        }
        false
    }
}

/// Columns that name a device itself (the identity without the user).
const DEVICE_IDENTITY: [Column; 5] = [
    Column::Id,
    Column::SerialNumber,
    Column::AzureAdDeviceId,
    Column::Imei,
    Column::DeviceName,
];

/// Every row of every file; `apart`: rows naming only a user, a group or a filter go
/// to the targets instead of becoming devices. A file with neither is refused.
fn read_named(
    files: &[(PathBuf, String)],
    seed: u64,
    read: &ReadOptions,
    apart: bool,
) -> Result<(Inventory, JobTargets), InventoryError> {
    let mut slots = read_slotted(files, seed, read, apart, None)?;
    Ok(slots.swap_remove(0))
}

impl Inventory {
    /// [`Inventory::from_job_with_targets`] (`apart`) or
    /// [`Inventory::from_named_job_files`] (not `apart`) for a job whose rows may name
    /// their tenant (a `tenant` column): one inventory and its targets per tenant of
    /// `tenancy` (which learns the tenants named, in order of first appearance), a row
    /// naming none in the first. Each tenant's devices draw their missing ids and facts
    /// from its own seed ([`Tenancy::seed`]): the first tenant's are the very devices
    /// the job would give without tenants. Never empty.
    pub fn by_tenant(
        files: &[(PathBuf, String)],
        tenancy: &mut Tenancy,
        read: &ReadOptions,
        apart: bool,
    ) -> Result<Vec<(Inventory, JobTargets)>, InventoryError> {
        let seed = tenancy.seed(0);
        read_slotted(files, seed, read, apart, Some(tenancy))
    }
}

/// Every row of every file, in the slot of the tenant it names (with `tenancy`; else
/// every row in the first); at least one slot, one per tenant of `tenancy`.
fn read_slotted(
    files: &[(PathBuf, String)],
    seed: u64,
    read: &ReadOptions,
    apart: bool,
    mut tenancy: Option<&mut Tenancy>,
) -> Result<Vec<(Inventory, JobTargets)>, InventoryError> {
    let mut pool = FactsPool::default();
    let mut devices: Vec<Vec<Device>> = vec![Vec::new()];
    let mut targets: Vec<JobTargets> = vec![JobTargets::default()];
    let read = read.one_reading();
    let counts = |devices: &[Vec<Device>], targets: &[JobTargets]| {
        let devices: usize = devices.iter().map(Vec::len).sum();
        let targets: usize = targets
            .iter()
            .map(|t| t.users.len() + t.groups.len() + t.filters.len())
            .sum();
        (devices, targets)
    };
    for file in files
        .iter()
        .map(|(path, name)| job::open_all_named(path, name, &read))
    {
        for file in file? {
            let source = file.source.clone();
            let before = counts(&devices, &targets);
            file.read_rows(&mut |row| {
                if row.defect.is_some() {
                    return;
                }
                let (slot, seed) = match tenancy.as_deref_mut() {
                    Some(tenancy) => {
                        let slot = tenancy.slot(row.fields.get(Column::Tenant));
                        (slot, tenancy.seed(slot))
                    }
                    None => (0, seed),
                };
                if devices.len() <= slot {
                    devices.resize_with(slot + 1, Vec::new);
                    targets.resize_with(slot + 1, JobTargets::default);
                }
                if apart && targets[slot].take(&row.fields) {
                    return;
                }
                if let Some(device) = device_from_row(&row.fields, seed, &mut pool) {
                    devices[slot].push(device);
                }
            })?;
            if counts(&devices, &targets) == before {
                return Err(InventoryError::Empty(source));
            }
        }
    }
    let slots = tenancy.map_or(1, |t| t.len().max(1));
    devices.resize_with(slots.max(devices.len()), Vec::new);
    targets.resize_with(slots.max(targets.len()), JobTargets::default);
    Ok(devices
        .into_iter()
        .map(Inventory::from_devices)
        .zip(targets)
        .collect())
}

impl Inventory {
    /// The devices that rows already read describe (an embedded demo job, a test's
    /// rows), with missing ids and facts filled as [`Inventory::from_job_files`] does.
    pub fn from_fields(rows: impl IntoIterator<Item = DeviceFields>, seed: u64) -> Inventory {
        let mut pool = FactsPool::default();
        let devices = rows
            .into_iter()
            .filter_map(|fields| device_from_row(&fields, seed, &mut pool))
            .collect();
        Inventory::from_devices(devices)
    }
}

/// The device a row describes, or `None` if the row names no device at all.
fn device_from_row(fields: &DeviceFields, seed: u64, pool: &mut FactsPool) -> Option<Device> {
    let (column, value) = IDENTITY
        .iter()
        .find_map(|c| fields.get(*c).map(|v| (*c, v)))?;
    let mut dice = Dice::new(combine(&[
        seed,
        column as u64,
        hash_text(&value.to_lowercase()),
    ]));
    let template = template_for(fields, &mut dice);
    let id = fields
        .get(Column::Id)
        .and_then(parse_guid)
        .and_then(|g| Uuid::parse_str(&g).ok())
        .unwrap_or_else(|| guid(&mut dice));
    let (generated_upn, first) = user(dice.below(10_000), crate::sim::DEFAULT_TENANT_DOMAIN);
    let upn = fields
        .get(Column::UserPrincipalName)
        .map_or(generated_upn, str::to_owned);
    let serial = fields
        .get(Column::SerialNumber)
        .map_or_else(|| serial(&mut dice, template), str::to_owned);
    let device_name = fields.get(Column::DeviceName).map_or_else(
        || name(&mut dice, template, &upn, first, &serial),
        str::to_owned,
    );
    let azure_ad_device_id = fields
        .get(Column::AzureAdDeviceId)
        .and_then(parse_guid)
        .and_then(|g| Uuid::parse_str(&g).ok())
        .unwrap_or_else(|| {
            if template.in_entra {
                guid(&mut dice)
            } else {
                Uuid::nil()
            }
        });
    let imei = match fields.get(Column::Imei) {
        Some(v) => v.to_owned(),
        None if template.has_imei => imei(&mut dice),
        None => String::new(),
    };
    let (maker, model) = *dice.pick(template.models);
    let given = |c: Column, default: &'static str| fields.get(c).unwrap_or(default);
    let version = *dice.pick(template.versions);
    // The export's `OS` column carries deviceType values (`AndroidForWork`).
    let device_type = fields
        .get(Column::DeviceType)
        .or(fields.get(Column::ExportOs))
        .unwrap_or(template.device_type);
    let facts = pool.get([
        given(Column::OperatingSystem, template.os),
        given(Column::OsVersion, version),
        device_type,
        given(Column::DeviceEnrollmentType, template.enrollment),
        given(Column::ManagementAgent, template.agent),
        given(Column::OwnerType, template.owner),
        maker,
        model,
    ]);
    Some(Device {
        id,
        azure_ad_device_id,
        device_name: device_name.into(),
        serial_number: serial.into(),
        user_principal_name: upn.into(),
        imei: imei.into(),
        enrolled_days_ago: dice.below(1000) as u16,
        facts,
    })
}

/// A template agreeing with the facts the row has: the same platform when the row's
/// facts name one, else the same operating system, else any, by the usual mix.
fn template_for(fields: &DeviceFields, dice: &mut Dice) -> &'static Template {
    let all: Vec<&'static Template> = TEMPLATES.iter().collect();
    let platform_of = |t: &Template| {
        let mut f = fields.clone();
        for (c, v) in [
            (Column::OperatingSystem, t.os),
            (Column::DeviceType, t.device_type),
            (Column::DeviceEnrollmentType, t.enrollment),
            (Column::ManagementAgent, t.agent),
        ] {
            f.set(c, v);
        }
        classify(&f)
    };
    let candidates: Vec<&'static Template> = match classify(fields) {
        Classified::Platform(p) => all
            .iter()
            .copied()
            .filter(|t| platform_of(t) == Classified::Platform(p))
            .collect(),
        _ => match fields.get(Column::OperatingSystem) {
            Some(os) => all
                .iter()
                .copied()
                .filter(|t| t.os.eq_ignore_ascii_case(os))
                .collect(),
            None => Vec::new(),
        },
    };
    let among = if candidates.is_empty() {
        &all
    } else {
        &candidates
    };
    pick_template(dice, among)
}
