//! Finding a device in Graph and judging it by its live facts.

use crate::device::Column;
use crate::graph::paging::{self, Cause, ListingCut, Paging};
use crate::graph::{
    DevicePage, FilterProperty, GraphApi, ManagedDevice, PageRequest, RULE_FIELDS, Reply,
};
use crate::planner::{Identity, Work};
use crate::report::{Outcome, ReportRow};
use crate::rules::{Action, Judgement, Platform, verdict};

use super::{End, Engine};
use crate::pacing::Failure;
use crate::pacing::workers::{Lost, in_order};

/// What Graph's live facts said of a looked-up device, for the report.
pub(in crate::run) struct Live {
    pub device: ManagedDevice,
    pub platform: Option<Platform>,
    pub action: Option<Action>,
}

/// The device to act on.
pub(super) struct Found {
    pub id: String,
    pub action: Action,
    /// `None` when the file's facts decided and Graph was not asked.
    pub live: Option<Box<Live>>,
}

impl<G: GraphApi> Engine<G> {
    /// The device's Intune id and the action to send, looking it up when needed and
    /// judging its live facts by the same verdict the planner gives the file's.
    pub(super) async fn resolve(&self, work: &Work) -> Result<Found, End> {
        if !work.lookup
            && let (Identity::Id(id), Some(action)) = (&work.identity, work.action)
        {
            return Ok(Found {
                id: id.clone(),
                action,
                live: None,
            });
        }
        let listed = |column: Column, value: &str| {
            self.inventory
                .get()
                .map(|index| index.matches(column, value))
                .unwrap_or_default()
        };
        let device = match &work.identity {
            Identity::Id(id) if listed(Column::Id, id).len() == 1 => {
                listed(Column::Id, id)[0].clone()
            }
            Identity::Id(id) if let Some(device) = self.take_listed(id) => device,
            Identity::Id(id) => {
                let reply = self
                    .pacer
                    .read_device(|c| Box::pin(self.pacer.graph.get_device(id, RULE_FIELDS, c)))
                    .await?;
                reply.value
            }
            Identity::Lookup { column, value } => self.find(*column, value).await?,
            // The run expands a user row into its devices before anything is resolved.
            Identity::User(user) | Identity::Group(user) | Identity::Filter(user) => {
                return Err(End::new(
                    Outcome::Failed,
                    "internal_error",
                    format!(
                        "the user row '{user}' was not expanded into its devices; nothing was sent"
                    ),
                ));
            }
        };
        let judged = verdict(&device.to_fields(), work.choice);
        let mut live = Box::new(Live {
            device,
            platform: None,
            action: None,
        });
        let end = match judged {
            Judgement::Eligible {
                platform, action, ..
            } => {
                live.platform = Some(platform);
                live.action = Some(action);
                return Ok(Found {
                    id: live.device.id.clone(),
                    action,
                    live: Some(live),
                });
            }
            Judgement::Ineligible {
                platform,
                reason,
                detail,
            } => {
                live.platform = Some(platform);
                End::new(
                    Outcome::Ineligible,
                    reason,
                    format!("by its live facts in Graph: {detail}"),
                )
            }
            Judgement::Missing {
                column: Column::OsVersion,
                platform: Some(platform),
            }
            | Judgement::UnreadableVersion { platform } => {
                live.platform = Some(platform);
                End::new(
                    Outcome::Ineligible,
                    "platform_unknown",
                    format!(
                        "Graph gives no readable osVersion ('{}') for a platform whose rule depends on it; nothing was sent",
                        live.device.os_version.as_deref().unwrap_or("")
                    ),
                )
            }
            Judgement::Missing { column, .. } => End::new(
                Outcome::Ineligible,
                "platform_unknown",
                format!(
                    "Graph does not say the device's {}, so its platform cannot be judged; nothing was sent",
                    column.canonical()
                ),
            ),
            Judgement::Unrecognised { column, value } => End::new(
                Outcome::Ineligible,
                "platform_unknown",
                format!(
                    "Graph gives {} '{value}', a platform this tool does not know; nothing was sent",
                    column.canonical()
                ),
            ),
        };
        Err(End {
            live: Some(live),
            ..end
        })
    }

    /// Resolves a serial number, Entra device id, IMEI or name with `$filter`, then
    /// re-checks every returned device: Graph silently ignores filters it does not
    /// support and returns everything.
    async fn find(&self, column: Column, value: &str) -> Result<ManagedDevice, End> {
        if let Some(index) = self.inventory.get() {
            let listed: Vec<ManagedDevice> = index
                .matches(column, value)
                .into_iter()
                .filter(|d| same_value(column, d, value))
                .cloned()
                .collect();
            // A listing can miss devices in large tenants: no match is asked again by
            // filter before it counts as not found.
            if !listed.is_empty() {
                return one_match(column, value, listed);
            }
        }
        let property = match column {
            Column::SerialNumber => FilterProperty::SerialNumber,
            Column::AzureAdDeviceId => FilterProperty::AzureAdDeviceId,
            Column::Imei => FilterProperty::Imei,
            _ => FilterProperty::DeviceName,
        };
        let mut request = PageRequest::Filter {
            property,
            value: value.to_owned(),
            select: RULE_FIELDS.iter().map(|s| s.to_string()).collect(),
        };
        let mut matches: Vec<ManagedDevice> = Vec::new();
        let mut paging = Paging::new(
            format!("the devices with {} '{value}'", column.canonical()),
            paging::lookup_pages(self.pacer.settings.max_lookup_pages),
        );
        loop {
            let page: Reply<DevicePage> = self
                .pacer
                .read(|c| Box::pin(self.pacer.graph.list_devices_page(request.clone(), c)))
                .await?;
            matches.extend(
                page.value
                    .devices
                    .into_iter()
                    .filter(|d| same_value(column, d, value)),
            );
            match paging.after_page(page.value.next_link) {
                Ok(Some(next)) => request = PageRequest::Next(next),
                Ok(None) => return one_match(column, value, matches),
                Err(cut) if matches!(cut.cause, Cause::TooLong(_)) => {
                    return Err(End::new(
                        Outcome::Failed,
                        "lookup_too_broad",
                        format!(
                            "looking up {} '{value}' returned more than {} pages of devices (Graph may have ignored the filter); nothing was sent",
                            column.canonical(),
                            cut.pages
                        ),
                    ));
                }
                Err(cut) => return Err(End::from(incomplete(&cut))),
            }
        }
    }
}

impl<G: GraphApi> Engine<G> {
    /// Reads `first` and every page its `@odata.nextLink`s name, through the pacer and
    /// `paging`, handing each device to `each`; the number of pages read. A listing
    /// `paging` stops fails whole: its caller acts on none of what it handed.
    pub(in crate::run) async fn each_listed_device(
        &self,
        first: PageRequest,
        mut paging: Paging,
        mut each: impl FnMut(ManagedDevice),
    ) -> Result<u64, Failure> {
        let mut request = first;
        loop {
            let page: Reply<DevicePage> = self
                .pacer
                .read(|c| Box::pin(self.pacer.graph.list_devices_page(request.clone(), c)))
                .await?;
            page.value.devices.into_iter().for_each(&mut each);
            match paging.after_page(page.value.next_link) {
                Ok(Some(next)) => request = PageRequest::Next(next),
                Ok(None) => return Ok(u64::from(paging.pages())),
                Err(cut) => return Err(incomplete(&cut)),
            }
        }
    }

    /// A user's managed devices with the facts the rules need, every page, in Graph's
    /// order: the question judges them before asking, and the run by them when it
    /// sends. A user Graph does not know, or one without a device, is `not_found`.
    pub(in crate::run) async fn user_listing(
        &self,
        user: &str,
    ) -> Result<Vec<ManagedDevice>, Failure> {
        let request = PageRequest::User {
            user: user.to_owned(),
            select: RULE_FIELDS.iter().map(|s| s.to_string()).collect(),
        };
        let mut ids: Vec<ManagedDevice> = Vec::new();
        let paging = Paging::new(format!("the devices of user {user}"), paging::USER_PAGES);
        let listed = self
            .each_listed_device(request, paging, |d| add_device(&mut ids, d))
            .await;
        match listed {
            Err(f) if f.outcome == Outcome::NotFound => {
                return Err(Failure::new(
                    Outcome::NotFound,
                    "user_not_found",
                    format!("Entra ID has no user '{user}'"),
                ));
            }
            Err(f) => return Err(f),
            Ok(_) => {}
        }
        if ids.is_empty() {
            return Err(Failure::new(
                Outcome::NotFound,
                "user_has_no_device",
                format!("the user '{user}' is the primary user of no Intune device"),
            ));
        }
        Ok(ids)
    }
}

impl<G: GraphApi> Engine<G> {
    /// The tenant's devices `filter` matches (`*`: all), with their facts, each checked
    /// against the expression here as well: Graph ignores filters it does not support.
    pub(in crate::run) async fn filter_listing(
        &self,
        filter: &str,
    ) -> Result<Vec<ManagedDevice>, Failure> {
        let parsed = match filter {
            "*" => None,
            text => Some(
                crate::graph::filter::parse(text)
                    .map_err(|why| Failure::new(Outcome::Invalid, "unsupported_filter", why))?,
            ),
        };
        let request = PageRequest::Where {
            filter: parsed.as_ref().map(|f| f.text.clone()),
            select: RULE_FIELDS.iter().map(|s| s.to_string()).collect(),
        };
        let what = match filter {
            "*" => "all devices".to_owned(),
            f => format!("the devices where {f}"),
        };
        let mut ids = Vec::new();
        let mut seen = 0usize;
        self.each_listed_device(request, Paging::new(what, paging::TENANT_PAGES), |d| {
            seen += 1;
            if parsed.as_ref().is_none_or(|f| f.expr.matches(&d)) {
                // One listing of the tenant names each device once.
                let mut d = d;
                d.id = d.id.to_ascii_lowercase();
                ids.push(d);
            }
        })
        .await?;
        if ids.is_empty() {
            return Err(Failure::new(
                Outcome::NotFound,
                "no_device_matches",
                format!("none of the {seen} devices Graph returned matches '{filter}'"),
            ));
        }
        Ok(ids)
    }

    /// The devices of a group's transitive members, with their facts: its users'
    /// devices, and its member devices found by their Entra device id. A group Graph
    /// does not know, a name two groups share, or a group without a device, is said so.
    pub(in crate::run) async fn group_listing(
        self: &std::sync::Arc<Self>,
        group: &str,
    ) -> Result<Vec<ManagedDevice>, Failure> {
        let (users, devices) = self.group_members(group).await?;
        self.members_devices(group, users, devices).await
    }

    /// The users among a group's transitive members (UPN, else object id), in the
    /// order Graph lists them, each once: whose sessions `revoke-sessions` revokes.
    pub(in crate::run) async fn group_users(
        self: &std::sync::Arc<Self>,
        group: &str,
    ) -> Result<Vec<String>, Failure> {
        let (users, devices) = self.group_members(group).await?;
        let mut seen = std::collections::HashSet::new();
        let users: Vec<String> = users
            .into_iter()
            .filter(|u| seen.insert(u.to_ascii_lowercase()))
            .collect();
        if users.is_empty() {
            return Err(Failure::new(
                Outcome::NotFound,
                "group_has_no_user",
                format!(
                    "the group '{group}' has no user among its members ({} device members)",
                    devices.len()
                ),
            ));
        }
        Ok(users)
    }

    /// A group's transitive members: its users (UPN, else object id) and its devices'
    /// Entra device ids.
    async fn group_members(
        self: &std::sync::Arc<Self>,
        group: &str,
    ) -> Result<(Vec<String>, Vec<String>), Failure> {
        let graph = &self.pacer.graph;
        let id = match crate::device::parse_guid(group) {
            Some(id) => id,
            None => {
                let found = match self
                    .pacer
                    .read(|c| Box::pin(graph.find_groups(group, c)))
                    .await
                {
                    Ok(found) => found.value,
                    Err(f) => return Err(f),
                };
                match found.as_slice() {
                    [] => {
                        return Err(Failure::new(
                            Outcome::NotFound,
                            "group_not_found",
                            format!("Entra ID has no group named '{group}'"),
                        ));
                    }
                    [one] => one.id.clone(),
                    many => {
                        let ids: Vec<&str> = many.iter().take(5).map(|g| g.id.as_str()).collect();
                        return Err(Failure::new(
                            Outcome::Ambiguous,
                            "ambiguous_group",
                            format!(
                                "{} groups are named '{group}' ({}); none was used. Give the group's object id",
                                many.len(),
                                ids.join(", ")
                            ),
                        ));
                    }
                }
            }
        };
        let mut users: Vec<String> = Vec::new();
        let mut devices: Vec<String> = Vec::new();
        let mut next: Option<String> = None;
        let mut paging = Paging::new(format!("the members of group {group}"), paging::GROUP_PAGES);
        loop {
            let page = match self
                .pacer
                .read(|c| Box::pin(graph.group_members_page(&id, next.as_deref(), c)))
                .await
            {
                Ok(page) => page.value,
                Err(f) if f.outcome == Outcome::NotFound => {
                    return Err(Failure::new(
                        Outcome::NotFound,
                        "group_not_found",
                        format!("Entra ID has no group '{group}'"),
                    ));
                }
                Err(f) => return Err(f),
            };
            for m in page.members {
                match m {
                    crate::graph::groups::Member::User { id, upn } => users.push(upn.unwrap_or(id)),
                    crate::graph::groups::Member::Device { device_id: Some(d) } => devices.push(d),
                    _ => {}
                }
            }
            match paging.after_page(page.next_link) {
                Ok(Some(link)) => next = Some(link),
                Ok(None) => break,
                Err(cut) => return Err(incomplete(&cut)),
            }
        }
        Ok((users, devices))
    }

    /// The devices of a group's members (see [`Self::group_listing`]).
    async fn members_devices(
        self: &std::sync::Arc<Self>,
        group: &str,
        users: Vec<String>,
        devices: Vec<String>,
    ) -> Result<Vec<ManagedDevice>, Failure> {
        // Each member's devices, read side by side through the one dispatcher (issue 19:
        // a group of 1,000 users was 1,000 round trips one after another), then joined
        // in the members' order.
        let mut members: Vec<(String, bool)> = users.iter().map(|u| (u.clone(), true)).collect();
        members.extend(devices.iter().map(|d| (d.clone(), false)));
        let read = |(member, is_user): (String, bool)| {
            let engine = self.clone();
            async move {
                match is_user {
                    true => engine.user_listing(&member).await,
                    false => engine
                        .find(Column::AzureAdDeviceId, &member)
                        .await
                        .map(|d| vec![d])
                        .map_err(|end| end.failure),
                }
            }
        };
        let found = in_order(members, self.pacer.settings.concurrency, read, |how| {
            Err(lost_listing(how, "a member's devices"))
        })
        .await;
        let mut ids: Vec<ManagedDevice> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for listed in found {
            match listed {
                Ok(listed) => {
                    for mut d in listed {
                        d.id = d.id.to_ascii_lowercase();
                        if seen.insert(d.id.clone()) {
                            ids.push(d);
                        }
                    }
                }
                Err(f) if f.outcome == Outcome::NotFound => {}
                Err(f) => return Err(f),
            }
        }
        if ids.is_empty() {
            return Err(Failure::new(
                Outcome::NotFound,
                "group_has_no_device",
                format!(
                    "the group '{group}' has {} user and {} device members, and none of them has an Intune device",
                    users.len(),
                    devices.len()
                ),
            ));
        }
        Ok(ids)
    }
}

impl<G: GraphApi> Engine<G> {
    /// The devices of each user, group or filter in `targets`, listed side by side
    /// through the one dispatcher at the read budget (issue 19: 500 users were 500
    /// round trips one after another), in the targets' order. Once the reads stop (a
    /// missing permission), the targets not yet listed are `not_attempted`.
    /// A target marked `true` is a group whose users an action on users
    /// (`revoke-sessions`) acts on: its users are listed, not devices.
    pub(in crate::run) async fn list_for(
        self: &std::sync::Arc<Self>,
        targets: Vec<(Identity, bool)>,
    ) -> Vec<Result<Listing, Failure>> {
        let list = |(target, users): (Identity, bool)| {
            let engine = self.clone();
            async move {
                if engine.is_aborted() {
                    return Err(Failure::new(
                        Outcome::NotAttempted,
                        "run_aborted",
                        "not listed: the reads stopped",
                    ));
                }
                match &target {
                    Identity::Group(group) if users => {
                        engine.group_users(group).await.map(Listing::Users)
                    }
                    Identity::Group(group) => {
                        engine.group_listing(group).await.map(Listing::Devices)
                    }
                    Identity::Filter(f) => engine.filter_listing(f).await.map(Listing::Devices),
                    Identity::User(user) => engine.user_listing(user).await.map(Listing::Devices),
                    _ => Ok(Listing::Devices(Vec::new())),
                }
            }
        };
        in_order(targets, self.pacer.settings.concurrency, list, |how| {
            Err(lost_listing(how, "these devices"))
        })
        .await
    }
}

/// What a user, group or filter stands for.
pub(in crate::run) enum Listing {
    /// The devices, with the facts their listing gave.
    Devices(Vec<ManagedDevice>),
    /// The users (UPN, else object id): a group's, for an action on users.
    Users(Vec<String>),
}

/// A listing whose task failed (a bug): its row's failure; nothing it would have
/// listed is acted on.
fn lost_listing(how: Lost, what: &str) -> Failure {
    Failure::new(
        Outcome::Failed,
        "internal_error",
        format!(
            "intune-reset failed while listing {what} ({}); nothing was sent for them",
            how.as_str()
        ),
    )
}

/// Adds a listed device once, by its Intune id in lower case.
fn add_device(devices: &mut Vec<ManagedDevice>, mut device: ManagedDevice) {
    device.id = device.id.to_ascii_lowercase();
    if !devices.iter().any(|d| d.id == device.id) {
        devices.push(device);
    }
}

/// A listing that could not be read whole, as its row's failure: nothing it listed is
/// acted on, so the sentence says so.
fn incomplete(cut: &ListingCut) -> Failure {
    Failure::new(
        Outcome::Failed,
        "listing_incomplete",
        format!("{cut}; nothing was sent on what it had listed"),
    )
}

/// Whether a device Graph returned really has `value` in `column` (case and blanks
/// aside): a filter Graph ignored returns every device.
fn same_value(column: Column, device: &ManagedDevice, value: &str) -> bool {
    let live = match column {
        Column::SerialNumber => &device.serial_number,
        Column::AzureAdDeviceId => &device.azure_ad_device_id,
        Column::Imei => &device.imei,
        _ => &device.device_name,
    };
    let squash = |s: &str| -> String { s.chars().filter(|c| !c.is_whitespace()).collect() };
    live.as_deref()
        .is_some_and(|live| squash(live).eq_ignore_ascii_case(&squash(value)))
}

fn one_match(
    column: Column,
    value: &str,
    mut matches: Vec<ManagedDevice>,
) -> Result<ManagedDevice, End> {
    match matches.len() {
        0 => Err(End::new(
            Outcome::NotFound,
            "not_found",
            format!("no Intune device has {} '{value}'", column.canonical()),
        )),
        1 => Ok(matches.remove(0)),
        n => {
            let ids: Vec<&str> = matches.iter().take(5).map(|d| d.id.as_str()).collect();
            Err(End::new(
                Outcome::Ambiguous,
                "ambiguous",
                format!(
                    "{n} Intune devices have {} '{value}' ({}{}); nothing was sent. Give the row an id",
                    column.canonical(),
                    ids.join(", "),
                    if n > 5 { ", ..." } else { "" }
                ),
            ))
        }
    }
}

/// Copies the live facts into the row where the file left them empty.
pub(super) fn fill_from_live(row: &mut ReportRow, device: &ManagedDevice) {
    row.device_id = device.id.clone();
    let fill = |slot: &mut String, value: &Option<String>| {
        if slot.is_empty()
            && let Some(v) = value
        {
            *slot = v.clone();
        }
    };
    fill(&mut row.device_name, &device.device_name);
    fill(&mut row.serial_number, &device.serial_number);
    fill(&mut row.user_principal_name, &device.user_principal_name);
    fill(&mut row.operating_system, &device.operating_system);
    fill(&mut row.os_version, &device.os_version);
}
