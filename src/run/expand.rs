//! Rows that name a user stand for the user's devices (issue 11). They are expanded
//! after sign-in and before the confirmation, with reads only, so that the question
//! lists each expansion and `--max-devices` applies to the total. The ledger records
//! each expansion before any of its devices is acted on, and a resume acts on exactly
//! the recorded devices: a user who enrolled a new phone since does not change what
//! the interrupted run meant.

use std::collections::HashMap;

use crate::error::CommandError;
use crate::graph::GraphApi;
use crate::pacing::{AbortReason, Failure};

use super::ledger::RowKey;
use super::{Engine, Prepared, RunConfig};
use crate::planner::Identity;

/// An expansion that yields more than this many devices per job row needs
/// `--max-devices` (or a person confirming at a terminal).
pub const EXPANSION_FACTOR: u64 = 10;

/// What a user row stands for.
#[derive(Debug, Clone)]
pub enum Expanded {
    /// The Intune ids, numbered 1, 2, ... in the report.
    Devices(Vec<String>),
    /// The user is unknown or has no device, or the read failed: one row says so.
    Unresolved(Failure),
}

#[derive(Debug, Clone)]
pub struct Expansion {
    /// `user ada@contoso.com`, `group Sales`.
    pub label: String,
    /// The user, for a user row: each device's `user_principal_name`.
    pub user: Option<String>,
    pub expanded: Expanded,
    /// Already in the ledger (a resume): not recorded again.
    pub recorded: bool,
}

/// Expands every user row of the plan; updates the counts the confirmation shows.
/// `Err(Ok(reason))`: the reads stopped the run (a missing permission, a refused
/// sign-in): nothing was sent. `Err(Err(usage))`: a guard refused the expansion.
pub async fn expand<G: GraphApi>(
    config: &RunConfig,
    graph: G,
    prepared: &mut Prepared,
) -> Result<(), Result<AbortReason, CommandError>> {
    if prepared.targets.is_empty() {
        return Ok(());
    }
    // A filter can reach the whole tenant: it needs a stated bound or a person.
    let asked = config.interactive && !config.yes;
    if config.max_devices.is_none()
        && !asked
        && prepared
            .targets
            .iter()
            .any(|(_, t)| matches!(t, Identity::Filter(_)))
    {
        return Err(Err(CommandError::Usage(
            "a --where or --all-devices run needs --max-devices N (the most devices it may act on), or a confirmation at a terminal without --yes; nothing was read or sent"
                .into(),
        )));
    }
    let engine = Engine::new(graph, config.settings.clone());
    let mut expansions: HashMap<RowKey, Expansion> = HashMap::new();
    for (key, target) in std::mem::take(&mut prepared.targets) {
        let (label, user) = match &target {
            Identity::Group(group) => (format!("group {group}"), None),
            Identity::Filter(f) if f == "*" => ("all devices".to_owned(), None),
            Identity::Filter(f) => (format!("devices where {f}"), None),
            Identity::User(user) => (format!("user {user}"), Some(user.clone())),
            _ => continue,
        };
        if let Some(devices) = prepared.recorded_expansions.remove(&key) {
            expansions.insert(
                key,
                Expansion {
                    label,
                    user,
                    expanded: Expanded::Devices(devices),
                    recorded: true,
                },
            );
            continue;
        }
        let found = match &target {
            Identity::Group(group) => engine.group_devices(group).await,
            Identity::Filter(f) => engine.filter_devices(f).await,
            _ => {
                engine
                    .user_devices(user.as_deref().unwrap_or_default())
                    .await
            }
        };
        let expanded = match found {
            Ok(ids) => Expanded::Devices(ids),
            Err(f) => Expanded::Unresolved(f),
        };
        if let Some(reason) = engine.abort_reason() {
            return Err(Ok(reason));
        }
        expansions.insert(
            key,
            Expansion {
                label,
                user,
                expanded,
                recorded: false,
            },
        );
    }
    let counts = &mut prepared.counts;
    let mut added = 0u64;
    let mut users = 0u64;
    for e in expansions.values() {
        users += 1;
        if let Expanded::Devices(ids) = &e.expanded {
            added += ids.len() as u64;
        }
        let n = match &e.expanded {
            Expanded::Devices(ids) => ids.len(),
            Expanded::Unresolved(_) => 0,
        };
        counts.expansions.push((e.label.clone(), n as u64));
    }
    counts.expansions.sort();
    counts.devices = counts.devices - users + added;
    // Each expanded device is read again and judged by its live facts: enough of them
    // and the inventory join pays (`--lookup-via auto`).
    counts.lookups = counts.lookups - users + added;
    if let Some(n) = counts.per_platform.get_mut(super::TO_BE_LOOKED_UP) {
        *n = n.saturating_sub(users);
    }
    counts.per_platform.retain(|_, n| *n > 0);
    if added > 0 {
        *counts
            .per_platform
            .entry("devices of users and groups (judged by their live facts)".into())
            .or_default() += added;
    }
    if let Some(max) = config.max_devices
        && counts.devices > max
    {
        return Err(Err(CommandError::Usage(format!(
            "the job's users and groups have {} devices in all, more than --max-devices {max}; nothing was sent",
            counts.devices
        ))));
    }
    if config.max_devices.is_none() && !asked && added > EXPANSION_FACTOR * counts.rows.max(1) {
        return Err(Err(CommandError::Usage(format!(
            "the job's {} rows expand to {added} devices of users and groups, more than {EXPANSION_FACTOR} per row: \
             pass --max-devices {} to confirm that many, or run it at a terminal without --yes; nothing was sent",
            counts.rows, counts.devices
        ))));
    }
    prepared.expansions = expansions;
    Ok(())
}
