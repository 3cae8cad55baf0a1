//! The two reports written after a run, counted: the status report (each reset's
//! `action_state` as `deviceActionResults` showed it) and the audit report (each row's
//! verdict against Intune's audit trail).
//!
//! Read by column name, as their headers give them (`status` adds `action_state`,
//! `action_updated_at`, `error_code` to the run's columns; `audit` writes the run's
//! identifying columns, then `verdict`, `records`, `recorded_at`, `recorded_by`, ...,
//! `audit_detail`): this module does not import those commands. A status report of a
//! JSON Lines run is JSON Lines with the same keys.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{AuditFacts, Count, Example, OTHERS, StatusFacts, shown};

/// Devices listed under the status states that need a look, at most.
const STATUS_LISTED: usize = 50;
/// Devices listed under the audit verdicts that need a look, at most.
const AUDIT_LISTED: usize = 200;
/// Distinct states or verdicts kept; more are counted together (a hostile file).
const NAMES: usize = 32;

/// The audit's verdicts, in its order.
pub const VERDICTS: [&str; 5] = [
    "confirmed",
    "missing",
    "not_sent_by_this_run",
    "twice",
    "none",
];
/// States that need no look: the reset is done or on its way, or the row sent nothing.
const FINE_STATES: [&str; 4] = ["done", "pending", "active", ""];

/// One row of either report: its cells by column name.
type Cells<'a> = &'a dyn Fn(&str) -> String;

pub fn read_status(path: &Path) -> Result<StatusFacts, String> {
    let mut facts = StatusFacts {
        rows: 0,
        states: Vec::new(),
        examples: Vec::new(),
        flagged: 0,
    };
    let mut states = Tally::default();
    each_row(
        path,
        "status",
        &["device_id", "action_state"],
        &mut |cell| {
            let state = shown(&cell("action_state"));
            facts.rows += 1;
            if !FINE_STATES.contains(&state.as_str()) {
                facts.flagged += 1;
                if facts.examples.len() < STATUS_LISTED {
                    let detail = match shown(&cell("error_code")) {
                        code if code.is_empty() => shown(&cell("detail")),
                        code => format!("error code {code}"),
                    };
                    facts.examples.push(example(cell, &state, detail));
                }
            }
            states.add(state);
        },
    )?;
    facts.states = states.counts(&[]);
    Ok(facts)
}

pub fn read_audit(path: &Path) -> Result<AuditFacts, String> {
    let mut facts = AuditFacts {
        rows: 0,
        verdicts: Vec::new(),
        examples: Vec::new(),
        flagged: 0,
    };
    let mut verdicts = Tally::default();
    each_row(path, "audit", &["device_id", "verdict"], &mut |cell| {
        let verdict = shown(&cell("verdict"));
        facts.rows += 1;
        if !matches!(verdict.as_str(), "confirmed" | "none" | "") {
            facts.flagged += 1;
            if facts.examples.len() < AUDIT_LISTED {
                let mut said = Vec::new();
                for (column, label) in [
                    ("records", "records"),
                    ("recorded_at", "at"),
                    ("recorded_by", "by"),
                ] {
                    let value = shown(&cell(column));
                    if !value.is_empty() {
                        said.push(format!("{label} {value}"));
                    }
                }
                let detail = shown(&cell("audit_detail"));
                if !detail.is_empty() {
                    said.push(detail);
                }
                facts
                    .examples
                    .push(example(cell, &verdict, said.join("; ")));
            }
        }
        verdicts.add(verdict);
    })?;
    facts.verdicts = verdicts.counts(&VERDICTS);
    Ok(facts)
}

fn example(cell: Cells, label: &str, detail: String) -> Example {
    Example {
        device_name: shown(&cell("device_name")),
        device_id: shown(&cell("device_id")),
        source: shown(&cell("source")),
        row: shown(&cell("row")),
        label: label.to_owned(),
        detail: shown(&detail),
    }
}

/// Counts of names, at most [`NAMES`] of them.
#[derive(Default)]
struct Tally(BTreeMap<String, u64>);

impl Tally {
    fn add(&mut self, name: String) {
        let known = self.0.len() < NAMES || self.0.contains_key(&name);
        *self
            .0
            .entry(if known { name } else { OTHERS.to_owned() })
            .or_default() += 1;
    }

    /// `first` in their order (those with rows), then the rest by name.
    fn counts(mut self, first: &[&str]) -> Vec<Count> {
        let mut out = Vec::new();
        for name in first {
            if let Some(count) = self.0.remove(*name) {
                out.push(Count {
                    name: (*name).to_owned(),
                    count,
                });
            }
        }
        out.extend(
            self.0
                .into_iter()
                .map(|(name, count)| Count { name, count }),
        );
        out
    }
}

/// Calls `each` with every row of the `kind` report at `path` (CSV, else JSON Lines when
/// its name says so), its cells looked up by column name; `required` columns must be in
/// its header.
fn each_row(
    path: &Path,
    kind: &str,
    required: &[&str],
    each: &mut dyn FnMut(Cells),
) -> Result<(), String> {
    let cannot = |e: &dyn std::fmt::Display| {
        format!("cannot read the {kind} report {}: {e}", path.display())
    };
    let mut file = BufReader::new(File::open(path).map_err(|e| cannot(&e))?);
    // Past a UTF-8 byte-order mark: the tool writes one, and Excel keeps it.
    if file
        .fill_buf()
        .map_err(|e| cannot(&e))?
        .starts_with(crate::report::BOM)
    {
        file.consume(crate::report::BOM.len());
    }
    let jsonl = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
    if jsonl {
        return each_json_line(path, kind, file, required, each);
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let headers = reader.headers().map_err(|e| cannot(&e))?.clone();
    let missing: Vec<&str> = required
        .iter()
        .filter(|c| !headers.iter().any(|h| h == **c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} is not {} report: its header lacks {}",
            path.display(),
            a(kind),
            missing.join(", ")
        ));
    }
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|e| cannot(&e))? {
        let cell = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .unwrap_or_default()
                .to_owned()
        };
        each(&cell);
    }
    Ok(())
}

/// `a status`, `an audit`.
fn a(kind: &str) -> String {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {kind}")
    } else {
        format!("a {kind}")
    }
}

fn each_json_line(
    path: &Path,
    kind: &str,
    file: impl Read,
    required: &[&str],
    each: &mut dyn FnMut(Cells),
) -> Result<(), String> {
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line =
            line.map_err(|e| format!("cannot read the {kind} report {}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| {
            format!(
                "{} is not {} report: line {} {why}",
                path.display(),
                a(kind),
                n + 1
            )
        };
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(format!("is not JSON ({e})")))?;
        let Some(object) = value.as_object() else {
            return Err(bad("is not a JSON object".into()));
        };
        if let Some(key) = required.iter().find(|k| !object.contains_key(**k)) {
            return Err(bad(format!("lacks the key {key}")));
        }
        let cell = |name: &str| match object.get(name) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        each(&cell);
    }
    Ok(())
}
