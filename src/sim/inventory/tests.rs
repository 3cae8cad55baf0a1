//! The inventory's unit tests: generated tenants and inventories read from job files.

use std::collections::HashMap;
use std::io::Write;

use super::*;
use crate::device::{Column, DeviceFields};
use crate::rules::Platform;

#[test]
fn template_weights_add_up_to_a_thousand() {
    let total: u32 = generate::TEMPLATES.iter().map(|t| t.weight).sum();
    assert_eq!(total, 1000);
}

#[test]
fn a_generated_tenant_is_reproducible_and_has_the_realistic_mix() {
    let a = Inventory::generate(5000, 9);
    let b = Inventory::generate(5000, 9);
    assert_eq!(a.len(), 5000);
    for (x, y) in a.devices().iter().zip(b.devices()) {
        assert_eq!(
            (x.id, &x.device_name, &x.facts),
            (y.id, &y.device_name, &y.facts)
        );
    }
    assert_ne!(
        a.devices()[0].id,
        Inventory::generate(1, 10).devices()[0].id
    );

    let mut platforms: HashMap<String, usize> = HashMap::new();
    let mut not_supported_by_device = 0;
    let mut refused = 0;
    for d in a.devices() {
        match &d.facts.support {
            Support::Supported { platform, .. } => {
                *platforms.entry(platform.as_str().to_owned()).or_default() += 1
            }
            Support::NotSupportedByDevice { platform } => {
                not_supported_by_device += 1;
                *platforms.entry(platform.as_str().to_owned()).or_default() += 1
            }
            Support::Refused { .. } => refused += 1,
        }
    }
    let share = |p: Platform| platforms.get(p.as_str()).copied().unwrap_or(0);
    assert!(share(Platform::Ios) > 2000, "{platforms:?}");
    assert!(share(Platform::AndroidWorkProfile) > 700, "{platforms:?}");
    for p in [
        Platform::AndroidDeviceAdmin,
        Platform::AndroidFullyManaged,
        Platform::AndroidDedicated,
        Platform::AndroidCorporateWorkProfile,
        Platform::AndroidAosp,
        Platform::WindowsMobile,
    ] {
        assert!(share(p) > 0, "{p:?} missing: {platforms:?}");
    }
    // Device administrator 7.0+ and work profile 6.x: accepted, then notSupported.
    assert!(not_supported_by_device > 100);
    // macOS, Windows, Apple User Enrollment and EAS-only are refused by the service.
    assert!(refused > 800, "{refused}");
    let mut names: HashMap<&str, usize> = HashMap::new();
    for d in a.devices() {
        *names.entry(&d.device_name).or_default() += 1;
    }
    assert!(names.values().any(|n| *n > 1), "no shared device names");
}

#[test]
fn lookups_ignore_case_and_find_every_device_with_a_shared_name() {
    let inv = Inventory::generate(2000, 3);
    let d = &inv.devices()[17];
    let serial = d.serial_number.to_lowercase();
    assert_eq!(inv.find(Lookup::SerialNumber, &serial), vec![17]);
    assert_eq!(inv.find_id(&d.id.to_string().to_uppercase()), Some(17));
    assert_eq!(
        inv.find(Lookup::AzureAdDeviceId, &d.azure_ad_device_id.to_string()),
        vec![17]
    );
    let shared = inv
        .devices()
        .iter()
        .find(|x| inv.find(Lookup::DeviceName, &x.device_name).len() > 1)
        .map(|x| x.device_name.to_string());
    let shared = shared.unwrap_or_default();
    let found = inv.find(Lookup::DeviceName, &shared.to_uppercase());
    assert!(found.len() > 1);
    assert!(found.windows(2).all(|w| w[0] < w[1]));
    assert!(inv.find(Lookup::Imei, "no such imei").is_empty());
    assert_eq!(inv.find_id("not-a-guid"), None);
}

#[test]
fn a_hundred_thousand_devices_are_cheap() {
    let inv = Inventory::generate(100_000, 1);
    assert_eq!(inv.len(), 100_000);
    let distinct_facts: std::collections::HashSet<*const PlatformFacts> = inv
        .devices()
        .iter()
        .map(|d| Arc::as_ptr(&d.facts))
        .collect();
    assert!(distinct_facts.len() < 1000, "{}", distinct_facts.len());
    assert!(std::mem::size_of::<Device>() <= 128);
}

#[test]
fn job_files_keep_their_ids_and_get_stable_ids_and_facts_where_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "Device ID,Serial number,OS,OS version,Device name").unwrap();
    writeln!(
        f,
        "{{0B9A6A2C-1D3E-4F50-8A6B-7C8D9E0F1A2B}},F17XK2,iPhone,17.1,Anna's iPhone"
    )
    .unwrap();
    writeln!(f, ",R5CT12345,AndroidForWork,13,").unwrap();
    writeln!(f, ",SERIALONLY,,,").unwrap();
    writeln!(f, ",,,,").unwrap();
    drop(f);

    let inv =
        Inventory::from_job_files(std::slice::from_ref(&path), 5, &Default::default()).unwrap();
    assert_eq!(inv.len(), 3);
    let first = &inv.devices()[0];
    assert_eq!(first.id.to_string(), "0b9a6a2c-1d3e-4f50-8a6b-7c8d9e0f1a2b");
    assert_eq!(&*first.facts.device_type, "iPhone");
    assert!(matches!(
        first.facts.support,
        Support::Supported {
            platform: Platform::Ios,
            ..
        }
    ));
    let second = &inv.devices()[1];
    assert!(matches!(
        second.facts.support,
        Support::Supported {
            platform: Platform::AndroidWorkProfile,
            ..
        }
    ));
    assert_eq!(&*second.facts.os_version, "13");
    // A serial number alone: a full, realistic device, the same every time.
    let third = &inv.devices()[2];
    assert!(!third.facts.operating_system.is_empty());
    let again =
        Inventory::from_job_files(std::slice::from_ref(&path), 5, &Default::default()).unwrap();
    assert_eq!(again.devices()[2].id, third.id);
    assert_eq!(again.devices()[2].facts, third.facts);
    let other_seed = Inventory::from_job_files(&[path], 6, &Default::default()).unwrap();
    assert_ne!(other_seed.devices()[1].id, second.id);
}

#[test]
fn rows_in_memory_give_the_same_devices_as_a_file() {
    let row = DeviceFields::default()
        .with(Column::SerialNumber, "R5CT12345")
        .with(Column::DeviceType, "androidForWork")
        .with(Column::OsVersion, "13");
    let a = Inventory::from_fields([row.clone(), DeviceFields::default()], 5);
    let b = Inventory::from_fields([row], 5);
    assert_eq!(a.len(), 1, "a row naming no device is not a device");
    assert_eq!(a.devices()[0].id, b.devices()[0].id);
    assert!(matches!(
        a.devices()[0].facts.support,
        Support::Supported {
            platform: Platform::AndroidWorkProfile,
            ..
        }
    ));
}
