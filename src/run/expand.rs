//! Rows that name a user stand for the user's devices (issue 11). They are expanded
//! after sign-in and before the confirmation, with reads only, so that the question
//! lists each expansion and `--max-devices` applies to the total. The ledger records
//! each expansion before any of its devices is acted on, and a resume acts on exactly
//! the recorded devices: a user who enrolled a new phone since does not change what
//! the interrupted run meant.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::error::CommandError;
use crate::graph::GraphApi;
use crate::pacing::{AbortReason, Failure};

use super::engine::Listing;
use super::ledger::{History, RowKey};
use super::{Engine, Prepared, RunConfig};
use crate::graph::ManagedDevice;
use crate::planner::Identity;
use crate::rules::{ActionChoice, Judgement, verdict};

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
    /// A group's users for an action on users (`revoke-sessions`), not devices.
    pub users: bool,
}

/// Expands every user row of the plan; updates the counts the confirmation shows.
/// `Err(Ok(reason))`: the reads stopped the run (a missing permission, a refused
/// sign-in): nothing was sent. `Err(Err(usage))`: a guard refused the expansion.
pub async fn expand<G: GraphApi>(
    config: &RunConfig,
    graph: G,
    prepared: &mut Prepared,
) -> Result<(), Result<AbortReason, CommandError>> {
    expand_in(config, graph, prepared, "").await
}

/// [`expand`] for the rows of one tenant of a run across several (issue 22): the rows
/// whose tenant is one of `names`, listed through `graph`, signed in to it. `tenant`
/// (its label) keeps its listings' facts apart from another tenant's.
pub async fn expand_tenant<G: GraphApi>(
    config: &RunConfig,
    graph: G,
    prepared: &mut Prepared,
    tenant: &str,
    names: &[String],
) -> Result<(), Result<AbortReason, CommandError>> {
    let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut prepared.targets)
        .into_iter()
        .partition(|(key, _, _)| {
            prepared
                .counts
                .target_tenants
                .get(key)
                .is_some_and(|t| names.contains(t))
        });
    prepared.targets = mine;
    let expanded = expand_in(config, graph, prepared, tenant).await;
    prepared.targets.extend(others);
    expanded
}

async fn expand_in<G: GraphApi>(
    config: &RunConfig,
    graph: G,
    prepared: &mut Prepared,
    tenant: &str,
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
            .any(|(_, t, _)| matches!(t, Identity::Filter(_)))
    {
        return Err(Err(CommandError::Usage(
            "a --where or --all-devices run needs --max-devices N (the most devices it may act on), or a confirmation at a terminal without --yes; nothing was read or sent"
                .into(),
        )));
    }
    let engine = Arc::new(Engine::new(graph, config.settings.clone()));
    let mut expansions: HashMap<RowKey, Expansion> = HashMap::new();
    let mut judged = Judged::default();
    let history = prepared.resumed.as_ref().and_then(|(_, h)| h.as_ref());
    let mut to_list = Vec::new();
    let mut targets = Vec::new();
    for (key, target, choice) in std::mem::take(&mut prepared.targets) {
        let Some((label, user)) = expansion_label(&target, choice) else {
            continue;
        };
        if let Some(devices) = prepared.recorded_expansions.remove(&key) {
            judged.recorded(key, &devices, history, &mut prepared.counts);
            expansions.insert(
                key,
                Expansion {
                    label,
                    user,
                    expanded: Expanded::Devices(devices),
                    recorded: true,
                    users: choice.family().on_users(),
                },
            );
            continue;
        }
        to_list.push((key, choice, label, user));
        targets.push((target, choice.family().on_users()));
    }
    // Every listing goes out at once (the one dispatcher, the read budget).
    let listed = engine.list_for(targets).await;
    if let Some(reason) = engine.abort_reason() {
        return Err(Ok(reason));
    }
    for ((key, choice, label, user), found) in to_list.into_iter().zip(listed) {
        let expanded = match found {
            Ok(Listing::Devices(devices)) => {
                judged.listed(&devices, choice);
                let ids = devices.iter().map(|d| d.id.clone()).collect();
                prepared.listed.push((tenant.to_owned(), devices));
                Expanded::Devices(ids)
            }
            // A group's users, for an action on users: each user is one row.
            Ok(Listing::Users(users)) => {
                judged.users(&users, choice);
                Expanded::Devices(users)
            }
            Err(f) => Expanded::Unresolved(f),
        };
        expansions.insert(
            key,
            Expansion {
                label,
                user,
                expanded,
                recorded: false,
                users: choice.family().on_users(),
            },
        );
    }
    let counts = &mut prepared.counts;
    let mut added = 0u64;
    let mut users = 0u64;
    // Group rows of an action on users: counted as one user each until listed.
    let mut user_groups = 0u64;
    // Devices whose facts only a read can give: those a resumed ledger recorded (a
    // listing made now gave its devices' facts with them).
    let mut to_read = 0u64;
    for e in expansions.values() {
        users += 1;
        if e.users {
            user_groups += 1;
        }
        if let Expanded::Devices(ids) = &e.expanded {
            added += ids.len() as u64;
            if e.recorded {
                to_read += ids.len() as u64;
            }
        }
        let n = match &e.expanded {
            Expanded::Devices(ids) => ids.len(),
            Expanded::Unresolved(_) => 0,
        };
        counts.expansions.push((e.label.clone(), n as u64));
    }
    counts.expansions.sort();
    counts.devices = counts.devices - users + added;
    // A device a listing gave is judged by the facts it came with; one a resumed
    // ledger recorded is read again: enough of those and the inventory join pays
    // (`--lookup-via auto`).
    counts.lookups = counts.lookups.saturating_sub(users - user_groups) + to_read;
    if let Some(n) = counts.per_platform.get_mut(super::TO_BE_LOOKED_UP) {
        *n = n.saturating_sub(users - user_groups);
    }
    if let Some(n) = counts.per_platform.get_mut("users (revoke-sessions)") {
        *n = n.saturating_sub(user_groups);
    }
    // The question counts what will be sent: each listed device judged by the facts
    // its listing gave (judged again by its live facts when it is sent).
    for (platform, n) in judged.to_send {
        *counts.per_platform.entry(platform).or_default() += n;
    }
    for (why, n) in judged.not_sent {
        *counts.not_sent.entry(why).or_default() += n;
    }
    counts.per_platform.retain(|_, n| *n > 0);
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
    prepared.expansions.extend(expansions);
    Ok(())
}

/// [`target_label`] for a row asking `choice`: a group's users, for an action on
/// users, are said so wherever they are named (`users of group Sales`).
pub(super) fn expansion_label(
    target: &Identity,
    choice: ActionChoice,
) -> Option<(String, Option<String>)> {
    let (label, user) = target_label(target)?;
    match choice.family().on_users() {
        true => Some((format!("{USERS_OF}{label}"), user)),
        false => Some((label, user)),
    }
}

/// How an expansion is logged: `group Sales → 60 devices`, `users of group Sales → 2 users`.
pub fn expansion_line(label: &str, n: u64) -> String {
    let noun = if label.starts_with(USERS_OF) {
        "user"
    } else {
        "device"
    };
    format!("{label} → {n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// The start of the label of a group's users ([`expansion_label`]).
const USERS_OF: &str = "users of ";

/// How a user, group or filter row is named in the question, the report and the
/// ledger (`user ada@contoso.com`, `group Sales`, `all devices`), and the user, for a
/// user row; `None` for a row that names a device.
pub(super) fn target_label(target: &Identity) -> Option<(String, Option<String>)> {
    match target {
        Identity::Group(group) => Some((format!("group {group}"), None)),
        Identity::Filter(f) if f == "*" => Some(("all devices".to_owned(), None)),
        Identity::Filter(f) => Some((format!("devices where {f}"), None)),
        Identity::User(user) => Some((format!("user {user}"), Some(user.clone()))),
        _ => None,
    }
}

/// The devices of users, groups and filters as the question counts them.
#[derive(Default)]
struct Judged {
    /// Every device listed so far (lower-case Intune id): a second naming is a
    /// `duplicate`, never a second reset.
    seen: HashSet<String>,
    to_send: BTreeMap<String, u64>,
    not_sent: BTreeMap<String, u64>,
}

impl Judged {
    /// Judges each listed device by its listed facts, as the engine will by its live
    /// ones.
    fn listed(&mut self, devices: &[ManagedDevice], choice: ActionChoice) {
        for d in devices {
            // One device takes each action once: a lock and a reset of it are two.
            if !self
                .seen
                .insert(format!("{}:{}", choice.family().as_str(), d.id))
            {
                *self.not_sent.entry("duplicate".into()).or_default() += 1;
                continue;
            }
            let (counts, key) = match verdict(&d.to_fields(), choice) {
                Judgement::Eligible {
                    platform, action, ..
                } => (
                    &mut self.to_send,
                    format!("{} ({})", platform.as_str(), action.effect(platform)),
                ),
                Judgement::Ineligible { reason, .. } => {
                    (&mut self.not_sent, format!("ineligible ({reason})"))
                }
                _ => (&mut self.not_sent, "ineligible (platform_unknown)".into()),
            };
            *counts.entry(key).or_default() += 1;
        }
    }

    /// A group's users, for an action on users: each once (a user named by two groups
    /// of one run is a duplicate).
    fn users(&mut self, users: &[String], choice: ActionChoice) {
        for user in users {
            let key = format!("{}:{}", choice.family().as_str(), user.to_ascii_lowercase());
            if !self.seen.insert(key) {
                *self.not_sent.entry("duplicate".into()).or_default() += 1;
                continue;
            }
            *self
                .to_send
                .entry(format!("users ({})", choice.as_str()))
                .or_default() += 1;
        }
    }

    /// A resumed run's recorded devices (numbered from 1 in `sub`): what its ledger
    /// says of each; the others are read and judged when they are sent.
    fn recorded(
        &mut self,
        key: RowKey,
        devices: &[String],
        history: Option<&History>,
        counts: &mut super::PlanCounts,
    ) {
        for (i, id) in devices.iter().enumerate() {
            self.seen.insert(id.clone());
            let sub = RowKey {
                sub: i as u32 + 1,
                ..key
            };
            let earlier = history.and_then(|h| h.rows.get(&sub));
            match (earlier, counts.resumed.as_mut()) {
                (Some(h), Some(r)) if h.done.is_some() => {
                    let outcome = h.done.as_ref().map(|d| d.outcome.as_str()).unwrap_or("");
                    *r.done.entry(outcome.to_owned()).or_default() += 1;
                    counts.done += 1;
                }
                (Some(h), Some(r)) if h.open.is_some() => r.settling += 1,
                _ => {
                    *self
                        .to_send
                        .entry(super::TO_BE_LOOKED_UP.into())
                        .or_default() += 1
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, os: &str, version: &str) -> ManagedDevice {
        ManagedDevice {
            id: id.into(),
            operating_system: Some(os.into()),
            os_version: Some(version.into()),
            ..ManagedDevice::default()
        }
    }

    #[test]
    fn regression_18_listed_devices_are_counted_as_they_will_be_sent() {
        let mut judged = Judged::default();
        // A user's iPhone and Mac; then a group naming the iPhone again.
        judged.listed(
            &[device("a", "iOS", "17.5"), device("b", "macOS", "14.1")],
            ActionChoice::Auto,
        );
        judged.listed(&[device("a", "iOS", "17.5")], ActionChoice::Auto);
        assert_eq!(
            judged.to_send,
            BTreeMap::from([("ios (remove-passcode)".to_string(), 1)])
        );
        assert_eq!(judged.not_sent.get("duplicate"), Some(&1));
        assert_eq!(
            judged.not_sent.values().sum::<u64>(),
            2,
            "the Mac is not sent: {:?}",
            judged.not_sent
        );
    }
}
