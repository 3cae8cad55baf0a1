//! A generated tenant with the platform mix an Intune administrator meets: mostly iOS,
//! Android work profiles on 7.0+, some Android device administrator on both sides of
//! 7.0, fully managed and dedicated Android, AOSP, macOS, Windows, a few Windows 10
//! Mobile, a few Apple User Enrollment, a few EAS-only devices, and some devices that
//! share a name ("Anna's iPhone"), as the admin center shows them.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::{Device, Inventory, PlatformFacts};
use crate::sim::dice::Dice;

/// How a template names its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Naming {
    /// `{user}_{tag}_{date}_{time}`, Intune's name for user-enrolled devices; a share
    /// keep the owner's own name (`Anna's iPhone`), which others share.
    Enrolled(&'static str),
    /// `KIOSK-{serial}` for dedicated devices.
    Kiosk,
    /// `DESKTOP-XXXXXXX`, Windows' default.
    Desktop,
    /// `{first}'s MacBook Pro`, shared like phone names.
    Mac,
}

/// One kind of device in the mix.
#[derive(Debug, Clone, Copy)]
pub(super) struct Template {
    /// Devices per thousand.
    pub weight: u32,
    /// `operatingSystem` as Graph writes it.
    pub os: &'static str,
    /// `osVersion` values to draw from; they decide version-dependent rules.
    pub versions: &'static [&'static str],
    /// Graph beta `deviceType`.
    pub device_type: &'static str,
    /// Graph beta `deviceEnrollmentType`.
    pub enrollment: &'static str,
    /// `managementAgent`: `eas` alone means not MDM-managed.
    pub agent: &'static str,
    /// `managedDeviceOwnerType`.
    pub owner: &'static str,
    /// (manufacturer, model) pairs seen on this platform.
    pub models: &'static [(&'static str, &'static str)],
    /// How the admin center would name such a device.
    pub naming: Naming,
    /// Serial numbers look like the vendor's (`R5C...` Samsung, `C02...` Mac).
    pub serial_prefix: &'static str,
    /// Characters after the prefix.
    pub serial_len: usize,
    /// Phones have an IMEI; tablets, desktops and kiosks usually do not.
    pub has_imei: bool,
    /// EAS-only devices have no Entra device id.
    pub in_entra: bool,
}

const IPHONES: &[(&str, &str)] = &[
    ("Apple", "iPhone 13"),
    ("Apple", "iPhone 14"),
    ("Apple", "iPhone 15 Pro"),
    ("Apple", "iPhone SE (3rd generation)"),
];
const IPADS: &[(&str, &str)] = &[
    ("Apple", "iPad (9th generation)"),
    ("Apple", "iPad Air (5th generation)"),
];
const PHONES: &[(&str, &str)] = &[
    ("samsung", "SM-G991B"),
    ("samsung", "SM-A546B"),
    ("Google", "Pixel 7"),
    ("motorola", "moto g54 5G"),
];
const OLD_PHONES: &[(&str, &str)] = &[("samsung", "SM-G920F"), ("LGE", "LG-H815")];
const RUGGED: &[(&str, &str)] = &[("Zebra Technologies", "TC52"), ("Honeywell", "CT40")];
const AOSP: &[(&str, &str)] = &[("RealWear", "HMT-1"), ("Zebra Technologies", "WT6300")];
const MACS: &[(&str, &str)] = &[("Apple", "MacBookPro18,1"), ("Apple", "MacBookAir10,1")];
const PCS: &[(&str, &str)] = &[
    ("Dell Inc.", "Latitude 5440"),
    ("LENOVO", "20XW004GUS"),
    ("Microsoft Corporation", "Surface Laptop 5"),
];
const LUMIAS: &[(&str, &str)] = &[("Microsoft", "Lumia 950"), ("HP", "Elite x3")];

#[allow(clippy::too_many_arguments)]
const fn t(
    weight: u32,
    os: &'static str,
    versions: &'static [&'static str],
    device_type: &'static str,
    enrollment: &'static str,
    agent: &'static str,
    owner: &'static str,
    models: &'static [(&'static str, &'static str)],
    naming: Naming,
    serial: (&'static str, usize),
    has_imei: bool,
) -> Template {
    Template {
        weight,
        os,
        versions,
        device_type,
        enrollment,
        agent,
        owner,
        models,
        naming,
        serial_prefix: serial.0,
        serial_len: serial.1,
        has_imei,
        in_entra: !matches!(agent.as_bytes(), b"eas"),
    }
}

const AE: &str = "googleCloudDevicePolicyController";

/// The mix, in devices per thousand (the weights add up to 1000). One row a template,
/// kept as a table.
#[rustfmt::skip]
pub(super) const TEMPLATES: &[Template] = &[
    t(380, "iOS", &["16.7.10", "17.6.1", "18.1.1", "18.3.2"], "iPhone", "appleBulkWithUser", "mdm", "company", IPHONES, Naming::Enrolled("iPhone"), ("", 10), true),
    t(60, "iPadOS", &["17.7", "18.2"], "iPad", "appleBulkWithoutUser", "mdm", "company", IPADS, Naming::Enrolled("iPad"), ("", 10), false),
    t(20, "iOS", &["17.5.1", "18.1"], "iPhone", "appleUserEnrollment", "mdm", "personal", IPHONES, Naming::Enrolled("iPhone"), ("", 10), true),
    t(180, "Android", &["10", "11", "12", "13", "14"], "androidForWork", "userEnrollment", AE, "personal", PHONES, Naming::Enrolled("AndroidForWork"), ("R5C", 8), true),
    t(5, "Android", &["6.0.1"], "androidForWork", "userEnrollment", AE, "personal", OLD_PHONES, Naming::Enrolled("AndroidForWork"), ("0", 10), true),
    t(25, "Android", &["5.1.1", "6.0", "6.0.1"], "android", "userEnrollment", "mdm", "personal", OLD_PHONES, Naming::Enrolled("Android"), ("0", 10), true),
    t(35, "Android", &["7.1.2", "8.1.0", "9", "10"], "android", "userEnrollment", "mdm", "personal", PHONES, Naming::Enrolled("Android"), ("R58", 8), true),
    t(30, "Android", &["12", "13", "14"], "androidEnterprise", "androidEnterpriseCorporateWorkProfile", AE, "company", PHONES, Naming::Enrolled("AndroidEnterprise"), ("R5C", 8), true),
    t(50, "Android", &["11", "12", "13", "14"], "androidEnterprise", "androidEnterpriseFullyManaged", AE, "company", PHONES, Naming::Enrolled("AndroidEnterprise"), ("R5C", 8), true),
    t(30, "Android", &["10", "11", "13"], "androidEnterprise", "androidEnterpriseDedicatedDevice", AE, "company", RUGGED, Naming::Kiosk, ("2", 13), false),
    t(10, "Android", &["10", "12"], "androidnGMS", "androidAOSPUserlessDeviceEnrollment", "intuneAosp", "company", AOSP, Naming::Kiosk, ("0", 12), false),
    t(50, "macOS", &["14.6.1", "15.1", "15.3"], "macMDM", "appleBulkWithoutUser", "mdm", "company", MACS, Naming::Mac, ("C02", 9), false),
    t(107, "Windows", &["10.0.19045.5011", "10.0.22631.4460", "10.0.26100.2605"], "windowsRT", "windowsAzureADJoin", "mdm", "company", PCS, Naming::Desktop, ("PF", 6), false),
    t(8, "Windows", &["10.0.15063.2679", "10.0.15254.603"], "windowsPhone", "userEnrollment", "mdm", "company", LUMIAS, Naming::Enrolled("WindowsPhone"), ("", 12), true),
    t(10, "iOS", &["16.1", "17.2"], "iPhone", "unknown", "eas", "personal", IPHONES, Naming::Enrolled("iPhone"), ("", 10), true),
];

const FIRST: &[&str] = &[
    "Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Keiko",
    "Liam", "Maria", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Victor",
    "Wen", "Yusuf", "Zoe",
];
const LAST: &[&str] = &[
    "Smith", "Garcia", "Muller", "Rossi", "Kowalski", "Nguyen", "Okafor", "Larsen", "Silva",
    "Tanaka", "Dubois", "Novak", "Haddad", "Jensen", "Moreau", "Ivanova",
];
const SERIAL: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";

/// The user who owns device number `user`: a stable UPN and first name.
pub(super) fn user(user: u64, domain: &str) -> (String, &'static str) {
    let n = FIRST.len() as u64;
    let m = LAST.len() as u64;
    let first = FIRST[(user % n) as usize];
    let last = LAST[((user / n) % m) as usize];
    let suffix = match user / (n * m) {
        0 => String::new(),
        k => k.to_string(),
    };
    let upn = format!("{first}.{last}{suffix}@{domain}").to_lowercase();
    (upn, first)
}

/// A version-4 GUID from the dice, so ids are stable for a seed.
pub(super) fn guid(dice: &mut Dice) -> Uuid {
    let bytes = (u128::from(dice.next_u64()) << 64 | u128::from(dice.next_u64())).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// A 15-digit IMEI whose last digit is the Luhn check digit, as real IMEIs have.
pub(super) fn imei(dice: &mut Dice) -> String {
    let body = format!("35{}", dice.text(DIGITS, 12));
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

pub(super) fn serial(dice: &mut Dice, template: &Template) -> String {
    format!(
        "{}{}",
        template.serial_prefix,
        dice.text(SERIAL, template.serial_len)
    )
}

pub(super) fn name(
    dice: &mut Dice,
    template: &Template,
    upn: &str,
    first: &str,
    serial: &str,
) -> String {
    let user = upn.split('@').next().unwrap_or(upn).replace('.', "");
    match template.naming {
        Naming::Enrolled(tag) if tag.starts_with('i') && dice.chance(0.15) => {
            format!("{first}'s {tag}")
        }
        Naming::Enrolled(tag) => {
            let (month, day, year) = (1 + dice.below(12), 1 + dice.below(28), 2022 + dice.below(4));
            let (hour, minute) = (1 + dice.below(12), dice.below(60));
            let half = if dice.chance(0.5) { "AM" } else { "PM" };
            format!("{user}_{tag}_{month}/{day}/{year}_{hour}:{minute:02} {half}")
        }
        Naming::Kiosk => format!("KIOSK-{serial}"),
        Naming::Desktop => format!("DESKTOP-{}", dice.text(SERIAL, 7)),
        Naming::Mac => format!("{first}'s MacBook Pro"),
    }
}

/// Shares one [`PlatformFacts`] between the devices that have the same facts.
#[derive(Default)]
pub(super) struct FactsPool {
    /// By the eight fact values.
    pool: HashMap<[Box<str>; 8], Arc<PlatformFacts>>,
}

impl FactsPool {
    /// The shared facts for `values` (in [`PlatformFacts::new`]'s order).
    pub fn get(&mut self, values: [&str; 8]) -> Arc<PlatformFacts> {
        self.pool
            .entry(values.map(Box::<str>::from))
            .or_insert_with(|| Arc::new(PlatformFacts::new(values)))
            .clone()
    }
}

pub(super) fn pick_template<'a>(dice: &mut Dice, among: &[&'a Template]) -> &'a Template {
    let total: u32 = among.iter().map(|t| t.weight).sum();
    let mut roll = dice.below(u64::from(total.max(1))) as u32;
    for template in among {
        if roll < template.weight {
            return template;
        }
        roll -= template.weight;
    }
    among.first().copied().unwrap_or(&TEMPLATES[0])
}

impl Inventory {
    /// `n` devices with the realistic mix (see this module), the same for the same seed.
    pub fn generate(n: usize, seed: u64) -> Inventory {
        Inventory::generate_for(n, seed, super::super::DEFAULT_TENANT_DOMAIN)
    }

    /// As [`Inventory::generate`], with users in `domain`.
    pub fn generate_for(n: usize, seed: u64, domain: &str) -> Inventory {
        let mut dice = Dice::new(seed);
        let mut pool = FactsPool::default();
        let all: Vec<&Template> = TEMPLATES.iter().collect();
        let users = (n as u64 * 2 / 3).max(1);
        let devices = (0..n)
            .map(|_| {
                let template = pick_template(&mut dice, &all);
                let (upn, first) = user(dice.below(users), domain);
                let serial = serial(&mut dice, template);
                let (maker, model) = *dice.pick(template.models);
                let version = *dice.pick(template.versions);
                Device {
                    id: guid(&mut dice),
                    azure_ad_device_id: if template.in_entra {
                        guid(&mut dice)
                    } else {
                        Uuid::nil()
                    },
                    device_name: name(&mut dice, template, &upn, first, &serial).into(),
                    imei: if template.has_imei {
                        imei(&mut dice).into()
                    } else {
                        "".into()
                    },
                    serial_number: serial.into(),
                    user_principal_name: upn.into(),
                    enrolled_days_ago: dice.below(1000) as u16,
                    facts: pool.get([
                        template.os,
                        version,
                        template.device_type,
                        template.enrollment,
                        template.agent,
                        template.owner,
                        maker,
                        model,
                    ]),
                }
            })
            .collect();
        Inventory::from_devices(devices)
    }
}
