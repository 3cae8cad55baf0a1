//! A rehearsal across several tenants (issue 22): one simulated tenant per tenant the
//! job's rows name, each with the devices of its rows, saved and reloaded whole; a job
//! naming no tenant seeds the very tenant it always did.

use std::path::{Path, PathBuf};

use super::Inventory;
use super::rehearsal::{
    SavedTenant, group_of_inventory, path_beside, rehearsal_config, rehearsal_tenants,
};
use super::tenants::{Restored, Tenancy, default_domain, id_for_domain, seed_of};
use super::{DEFAULT_TENANT_DOMAIN, RestoredReset, SimClock, SimConfig, Simulator};
use crate::job::ReadOptions;

const FABRIKAM: &str = "2b7e0c1d-4f3a-4e6b-9c8d-7a6b5c4d3e2f";
const SEED: u64 = 11;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    path
}

/// A job's files as `run` names them.
fn named(paths: &[PathBuf]) -> Vec<(PathBuf, String)> {
    paths
        .iter()
        .map(|p| (p.clone(), p.display().to_string()))
        .collect()
}

fn serials(inventory: &Inventory) -> Vec<String> {
    inventory
        .devices()
        .iter()
        .map(|d| d.serial_number.to_string())
        .collect()
}

/// Seeds the rehearsal of `job` (and `inventory`), failing the test on an error.
fn seeded(job: &[PathBuf], inventory: &[PathBuf], seed: u64) -> SimConfig {
    rehearsal_tenants(&named(job), inventory, seed, &ReadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

/// Two tenants: Contoso by its domain (first named), Fabrikam by its id; a row naming
/// none; the serial `SHARED1` in both.
const TWO_TENANTS: &str = "serialNumber,operatingSystem,tenant\n\
    C1,iOS,Contoso.com\n\
    SHARED1,iOS, contoso.com \n\
    F1,Android,2B7E0C1D-4F3A-4E6B-9C8D-7A6B5C4D3E2F\n\
    N1,iOS,\n\
    SHARED1,Windows,{2b7e0c1d-4f3a-4e6b-9c8d-7a6b5c4d3e2f}\n";

#[test]
fn a_job_naming_two_tenants_seeds_one_simulated_tenant_each_with_the_devices_of_its_rows() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let job = write(dir.path(), "job.csv", TWO_TENANTS);
    let config = seeded(std::slice::from_ref(&job), &[], SEED);
    // The first tenant named is the first tenant, named by its domain: an id drawn from
    // the seed and the domain. A row naming no tenant is the first's.
    assert_eq!(config.tenant_domain, "contoso.com");
    assert_eq!(config.tenant_id, id_for_domain(SEED, "contoso.com"));
    assert!(uuid::Uuid::parse_str(&config.tenant_id).is_ok());
    assert_eq!(serials(&config.inventory), ["C1", "SHARED1", "N1"]);
    // The second, named by its id (any case, braces or not): a domain made from it.
    assert_eq!(config.more_tenants.len(), 1);
    let fabrikam = &config.more_tenants[0];
    assert_eq!(fabrikam.id, FABRIKAM);
    assert_eq!(fabrikam.domain, default_domain(FABRIKAM));
    assert_eq!(serials(&fabrikam.inventory), ["F1", "SHARED1"]);
    // Each tenant meets a rehearsal's faults.
    assert_eq!(fabrikam.faults, config.faults);
    assert_eq!(
        config.tenant_ids(),
        [
            (config.tenant_id.clone(), "contoso.com".to_owned()),
            (FABRIKAM.to_owned(), default_domain(FABRIKAM)),
        ]
    );
    // The same job and seed: the same ids; another seed: another id for the domain.
    let again = seeded(std::slice::from_ref(&job), &[], SEED);
    assert_eq!(again.tenant_ids(), config.tenant_ids());
    let other = seeded(std::slice::from_ref(&job), &[], SEED + 1);
    assert_ne!(other.tenant_id, config.tenant_id);
    assert_eq!(other.more_tenants[0].id, FABRIKAM);
}

#[test]
fn the_same_serial_in_two_tenants_is_two_devices_one_in_each() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let job = write(dir.path(), "job.csv", TWO_TENANTS);
    let config = seeded(&[job], &[], SEED);
    let find = |inventory: &Inventory| {
        let found = inventory.find(super::Lookup::SerialNumber, "shared1");
        assert_eq!(found.len(), 1, "one device with the serial in each tenant");
        inventory.device(found[0]).expect("the device").clone()
    };
    let in_contoso = find(&config.inventory);
    let in_fabrikam = find(&config.more_tenants[0].inventory);
    // Two devices: each its own Intune id and the facts of its own row.
    assert_ne!(in_contoso.id, in_fabrikam.id);
    assert_eq!(&*in_contoso.facts.operating_system, "iOS");
    assert_eq!(&*in_fabrikam.facts.operating_system, "Windows");
}

#[test]
fn a_job_without_a_tenant_column_gives_the_same_config_as_before() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let job = write(
        dir.path(),
        "job.csv",
        "serialNumber,userPrincipalName,group\nS1,,\nS2,anna@contoso.com,\n,,Sales\n",
    );
    let read = ReadOptions::default();
    let same = |new: SimConfig, mut old: SimConfig| {
        assert_eq!(new.inventory.saved(), old.inventory.saved());
        // The inventory's index is a HashMap, whose Debug order is its own: compared
        // above, device by device. The clock is the instant each was made.
        old.inventory = new.inventory.clone();
        old.clock = new.clock.clone();
        assert_eq!(format!("{new:?}"), format!("{old:?}"));
    };
    // From the job's rows, as `tenant_for_run` made it before.
    let (new, targets) =
        rehearsal_tenants(&named(std::slice::from_ref(&job)), &[], SEED, &read).expect("seeded");
    let (from_job, old_targets) =
        Inventory::from_job_with_targets(&named(std::slice::from_ref(&job)), SEED, &read)
            .expect("read");
    assert_eq!(targets, old_targets);
    assert_eq!(targets.groups, ["Sales"]);
    assert_eq!(new.tenant_id, super::DEFAULT_TENANT_ID);
    assert_eq!(new.tenant_domain, DEFAULT_TENANT_DOMAIN);
    assert!(new.more_tenants.is_empty());
    same(new, rehearsal_config(from_job, SEED));
    // With `--simulate-inventory`: its devices, and the job's group standing for them.
    let export = write(
        dir.path(),
        "export.csv",
        "Serial number,Primary user UPN\nE1,bob@contoso.com\nE2,carol@contoso.com\n",
    );
    let (new, _) = rehearsal_tenants(
        &named(std::slice::from_ref(&job)),
        std::slice::from_ref(&export),
        SEED,
        &read,
    )
    .expect("seeded");
    let mut old = rehearsal_config(
        Inventory::from_job_files(std::slice::from_ref(&export), SEED, &read).expect("read"),
        SEED,
    );
    old.groups = vec![group_of_inventory("Sales", &old.inventory)];
    assert_eq!(new.groups.len(), 1);
    same(new, old);
}

#[test]
fn an_inventory_naming_tenants_seeds_them_and_a_group_row_stands_for_its_own_tenants_devices() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let job = write(
        dir.path(),
        "job.csv",
        &format!("group,tenant\nSales,{FABRIKAM}\nSales,contoso.com\n"),
    );
    let export = write(
        dir.path(),
        "export.csv",
        &format!(
            "Serial number,Primary user UPN,Tenant ID\n\
             C1,anna@contoso.com,contoso.com\n\
             F1,bob@fabrikam.com,{FABRIKAM}\n\
             F2,carol@fabrikam.com,{FABRIKAM}\n"
        ),
    );
    let (config, targets) =
        rehearsal_tenants(&named(&[job]), &[export], SEED, &ReadOptions::default())
            .expect("seeded");
    assert_eq!(targets.groups, ["Sales", "Sales"]);
    // The job named Fabrikam first.
    assert_eq!(config.tenant_id, FABRIKAM);
    assert_eq!(serials(&config.inventory), ["F1", "F2"]);
    assert_eq!(config.groups.len(), 1);
    assert_eq!(
        config.groups[0].users,
        ["bob@fabrikam.com", "carol@fabrikam.com"]
    );
    let contoso = &config.more_tenants[0];
    assert_eq!(contoso.domain, "contoso.com");
    assert_eq!(serials(&contoso.inventory), ["C1"]);
    assert_eq!(contoso.groups.len(), 1);
    assert_eq!(contoso.groups[0].users, ["anna@contoso.com"]);
}

#[test]
fn a_tenancy_knows_a_tenant_by_its_id_or_its_domain_and_ignores_a_value_that_is_neither() {
    let mut tenancy = Tenancy::new(SEED);
    assert_eq!(tenancy.slot(None), 0);
    assert_eq!(tenancy.slot(Some("not a tenant")), 0);
    assert!(tenancy.is_empty());
    assert_eq!(tenancy.slot(Some(FABRIKAM)), 0);
    assert_eq!(tenancy.slot(Some("Fabrikam.COM")), 1);
    assert_eq!(tenancy.slot(Some(&default_domain(FABRIKAM))), 0);
    assert_eq!(tenancy.slot(Some(&id_for_domain(SEED, "fabrikam.com"))), 1);
    assert_eq!(tenancy.len(), 2);
    assert_eq!(tenancy.seed(0), SEED);
    assert_eq!(
        tenancy.seed(1),
        seed_of(SEED, &id_for_domain(SEED, "fabrikam.com"))
    );
}

#[tokio::test]
async fn a_saved_two_tenant_rehearsal_reloads_both_tenants_with_their_actions() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let job = write(dir.path(), "job.csv", TWO_TENANTS);
    let mut config = seeded(&[job], &[], SEED);
    config.clock = SimClock::manual();
    let sent = humantime::parse_rfc3339("2026-12-01T10:00:00Z").expect("a time");
    let reset = |count| RestoredReset {
        count,
        over_standing: 0,
        started: sent,
    };
    let contoso_device = config.inventory.devices()[0].id.to_string();
    let fabrikam_device = config.more_tenants[0].inventory.devices()[1].id.to_string();
    config.restored_resets = vec![(contoso_device.clone(), reset(1))];
    config.more_tenants[0].restored = Restored {
        resets: vec![(fabrikam_device.clone(), reset(2))],
        locks: vec![(fabrikam_device.clone(), reset(1))],
        ..Restored::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback");
    let sim = Simulator::start(config.clone(), listener).expect("started");
    assert_eq!(sim.tenant_ids(), config.tenant_ids());
    assert_eq!(
        sim.restorable(1).expect("the second tenant").resets,
        [(fabrikam_device.clone(), reset(2))]
    );
    assert!(sim.restorable(2).is_none());
    let (_, saved) = sim.shutdown_saving().await;
    let path = path_beside(&dir.path().join("report.csv"));
    saved.save(&path).expect("saved");

    let back = SavedTenant::load(&path).expect("loaded");
    assert_eq!(back.tenant_domain.as_deref(), Some("contoso.com"));
    assert_eq!(back.more_tenants.len(), 1);
    let reloaded = back.config().expect("a configuration");
    assert_eq!(reloaded.tenant_ids(), config.tenant_ids());
    assert_eq!(reloaded.inventory.saved(), config.inventory.saved());
    assert_eq!(reloaded.restored_resets, [(contoso_device, reset(1))]);
    let fabrikam = &reloaded.more_tenants[0];
    assert_eq!(
        fabrikam.inventory.saved(),
        config.more_tenants[0].inventory.saved()
    );
    assert_eq!(
        fabrikam.restored.resets,
        [(fabrikam_device.clone(), reset(2))]
    );
    assert_eq!(fabrikam.restored.locks, [(fabrikam_device, reset(1))]);
    assert_eq!(back.last_reset(), Some(sent));

    // A file saved before a rehearsal served several tenants: the first alone, its
    // domain the default, as before.
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    if let Some(tenant) = old.as_object_mut() {
        tenant.remove("more_tenants");
        tenant.remove("tenant_domain");
    }
    std::fs::write(&path, old.to_string()).expect("written");
    let old = SavedTenant::load(&path)
        .expect("loaded")
        .config()
        .expect("a configuration");
    assert!(old.more_tenants.is_empty());
    assert_eq!(old.tenant_domain, DEFAULT_TENANT_DOMAIN);
    assert_eq!(old.tenant_id, config.tenant_id);
}

#[tokio::test]
async fn a_single_tenant_rehearsal_saves_no_domain_and_no_further_tenants() {
    let mut config = rehearsal_config(Inventory::generate(3, SEED), SEED);
    config.clock = SimClock::manual();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback");
    let sim = Simulator::start(config, listener).expect("started");
    let (_, saved) = sim.shutdown_saving().await;
    let text = serde_json::to_value(&saved).expect("JSON");
    let keys = text.as_object().expect("an object");
    assert!(!keys.contains_key("more_tenants") && !keys.contains_key("tenant_domain"));
}
