//! `intune-reset rules`: the platform rules table, for people or machines.
//!
//! A command: it imports only the rules.

use serde::Serialize;

use crate::rules::{Family, Rule};

/// One rules-table row for machines: the [`Rule`] serialized once, plus its verdict.
///
/// The row's own fields are the only source of `platform`, `versions` and `action`;
/// adding them here again by hand wrote each key twice (issue 9).
#[derive(Serialize)]
struct RuleJson<'a> {
    /// The action the row judges: `passcode`, `remote-lock`, `rotate-bitlocker-keys`.
    #[serde(rename = "for")]
    family: &'static str,
    #[serde(flatten)]
    rule: &'a Rule,
    /// `eligible`, or the reason code of a platform that cannot be reset.
    verdict: &'static str,
}

fn verdict(rule: &Rule) -> &'static str {
    if rule.action.is_some() {
        "eligible"
    } else {
        rule.reason
    }
}

pub fn render_json() -> String {
    let rows: Vec<RuleJson> = device_families()
        .flat_map(|family| {
            family.rules().iter().map(move |rule| RuleJson {
                family: family.as_str(),
                rule,
                verdict: verdict(rule),
            })
        })
        .collect();
    // The table is static data of strings and unit enums: serializing it cannot fail.
    serde_json::to_string_pretty(&rows).expect("the rules table serializes") + "\n"
}

/// The Microsoft page a rule comes from, by the title a reader finds it under (the
/// full address is in the notes below the table).
fn page_title(link: &str) -> &'static str {
    let page = link.split(['?', '#']).next().unwrap_or(link);
    if page.ends_with("/device-passcode-reset") {
        "Intune: Reset or remove a device passcode"
    } else if page.ends_with("/remove-passcode") {
        "Intune: Remove passcode (iOS/iPadOS, visionOS)"
    } else if page.ends_with("/device-windows-pin-reset") {
        "Intune: Reset Windows 10 Mobile PIN"
    } else if page.ends_with("/remote-lock") {
        "Intune: Remote lock"
    } else if page.ends_with("/rotate-bitlocker-keys") {
        "Intune: BitLocker key rotation"
    } else if page.ends_with("/encrypt-devices") {
        "Intune: Encrypt Windows devices (BitLocker)"
    } else if page.ends_with("/device-lock-command") {
        "Apple: Device Lock command"
    } else if page.ends_with("/intune-devices-manageddevice") {
        "Graph: managedDevice resource"
    } else {
        "Microsoft Learn"
    }
}

/// The families with a rules table: every device action.
fn device_families() -> impl Iterator<Item = Family> {
    Family::ALL.into_iter().filter(|f| !f.on_users())
}

pub fn render_table() -> String {
    let mut out = String::new();
    for family in device_families() {
        let actions = match family {
            Family::Passcode => "--action remove-passcode, reset-passcode, reset-pin or auto",
            Family::Lock => "--action remote-lock",
            Family::BitLocker => "--action rotate-bitlocker-keys",
            Family::Sessions => "--action revoke-sessions",
        };
        let title = format!("{} ({actions})", capitalised(family.noun()));
        out.push_str(&format!("{title}\n{}\n", "=".repeat(title.len())));
        out.push_str(&table(family.rules()));
        out.push('\n');
    }
    out.push_str(
        "Sign-in session revocation (--action revoke-sessions)\n\
         =====================================================\n\
         An action on users, not devices: no platform rule applies. The user is the row's \
         userPrincipalName (a UPN or an object id), a --user/--users target, or each user \
         member of a --group; each user is revoked once however many of their devices the \
         job holds. Runs before the device actions of the same run. \
         Source: https://learn.microsoft.com/graph/api/user-revokesigninsessions\n",
    );
    for family in device_families() {
        out.push_str(&format!(
            "\nHow each platform is recognised, and what the device experiences ({}):\n",
            family.noun()
        ));
        for r in family.rules() {
            out.push_str(&format!(
                "- {} ({}): {}. Recognised by {}. Source: {}\n",
                r.platform.as_str(),
                r.versions.describe(),
                r.detail,
                r.recognised_by,
                r.link
            ));
        }
    }
    out.push_str(
        "\nAndroid Enterprise fully managed, dedicated, corporate-owned work profile and AOSP \
         devices were not on Microsoft's 2018-2020 pages this tool was first specified from. \
         The current page supports them, so they are eligible and reported under their own \
         platform names (`rules --format json`: source \"later_docs\").\n\
         A device whose platform facts are missing is looked up in Graph first (--lookup auto) \
         or reported invalid (--lookup never); an unrecognised platform is never reset. \
         operatingSystem Android alone may be a device administrator or a work profile, and \
         Windows alone (as in the Entra admin center's device download) a desktop or Windows \
         10 Mobile unless its build is after 10.0.15254: such devices are looked up too.\n",
    );
    out
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One rules table, aligned in columns.
fn table(rules: &[Rule]) -> String {
    let header = [
        "PLATFORM",
        "VERSIONS",
        "ACTION",
        "VERDICT",
        "MICROSOFT PAGE",
    ];
    let rows: Vec<[String; 5]> = rules
        .iter()
        .map(|r| {
            [
                r.platform.as_str().to_owned(),
                r.versions.describe(),
                r.action
                    .map(|a| a.effect(r.platform))
                    .unwrap_or("-")
                    .to_owned(),
                verdict(r).to_owned(),
                page_title(r.link).to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header);
    for row in &rows {
        out.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    out
}
