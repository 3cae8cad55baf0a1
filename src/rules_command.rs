//! `intune-reset rules`: the platform rules table, for people or machines.
//!
//! A command: it imports only the rules.

use serde::Serialize;

use crate::rules::{RULES, Rule};

/// One rules-table row for machines: the [`Rule`] serialized once, plus its verdict.
///
/// The row's own fields are the only source of `platform`, `versions` and `action`;
/// adding them here again by hand wrote each key twice (issue 9).
#[derive(Serialize)]
struct RuleJson<'a> {
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
    let rows: Vec<RuleJson> = RULES
        .iter()
        .map(|rule| RuleJson {
            rule,
            verdict: verdict(rule),
        })
        .collect();
    // The table is static data of strings and unit enums: serializing it cannot fail.
    serde_json::to_string_pretty(&rows).expect("the rules table serializes") + "\n"
}

pub fn render_table() -> String {
    let header = ["PLATFORM", "VERSIONS", "ACTION", "VERDICT", "SOURCE"];
    let rows: Vec<[String; 5]> = RULES
        .iter()
        .map(|r| {
            [
                r.platform.as_str().to_owned(),
                r.versions.describe(),
                r.action.map(|a| a.as_str()).unwrap_or("-").to_owned(),
                verdict(r).to_owned(),
                r.source.as_str().to_owned(),
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
    out.push_str("\nHow each platform is recognised, and what the device experiences:\n");
    for r in RULES {
        out.push_str(&format!(
            "- {} ({}): {}. Recognised by {}. Source: {}\n",
            r.platform.as_str(),
            r.versions.describe(),
            r.detail,
            r.recognised_by,
            r.link
        ));
    }
    out.push_str(
        "\nAndroid Enterprise fully managed, dedicated, corporate-owned work profile and AOSP \
         devices are not in the seed rules. Microsoft's current documentation supports them, \
         so they are eligible and reported under their own platform names (source \"later docs\").\n\
         A device whose platform facts are missing is looked up in Graph first (--lookup auto) \
         or reported invalid (--lookup never); an unrecognised platform is never reset.\n",
    );
    out
}
