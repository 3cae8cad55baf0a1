//! Rows to verdicts: identity, platform rules, duplicates. Pure and offline; `plan` and
//! `run` share it, so a run acts on exactly what its plan says.
//!
//! Core module: it imports the device domain, the job readers, the rules and the report
//! row, never a command.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::device::{Column, DeviceFields, NIL_GUID, parse_guid};
use crate::job::{self, ColumnNames, JobError, JobFile, JobRow, ReadOptions};
use crate::report::FileSummary;
use crate::report::{Outcome, ReportRow};
use crate::rules::{Action, ActionChoice, Actions, Judgement, Platform, open_platforms, verdict};
use crate::spill::{Holder, SpillMap};
use crate::tenants::{TenantEntry, tenant_name};

/// `--lookup`: when to ask Graph for a device's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupMode {
    /// Only rows lacking an Intune id or the facts their platform rule needs.
    Auto,
    /// Every eligible row: the live facts decide (rows the file already shows to be
    /// ineligible stay ineligible: the safer reading).
    Always,
    /// Never: such rows are `invalid`.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// The actions for rows whose file names none; `None` (`run` without `--action`):
    /// such rows are invalid rather than given a default.
    pub action: Option<Actions>,
    pub lookup: LookupMode,
    /// Whether the job spans tenants: then every row must name its own.
    pub tenants: TenantScope,
}

/// How many tenants a job spans (issue 22).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TenantScope {
    /// The tenant signed in to: a row naming no tenant is that tenant's.
    #[default]
    One,
    /// Several tenants: a row naming no tenant is `invalid` (`no_tenant`), never guessed
    /// into one. A row naming a tenant outside the run's list is not the planner's
    /// business (a domain and an id may name one tenant): the run ends it `other_tenant`.
    Many,
}

impl TenantScope {
    /// `Many` for a list of tenants (`run --tenant A --tenant B`, `--tenants FILE`, a
    /// job document's `tenants`), `One` without one.
    pub fn of(tenants: &[TenantEntry]) -> TenantScope {
        if tenants.is_empty() {
            TenantScope::One
        } else {
            TenantScope::Many
        }
    }
}

/// How the runner will find the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The Intune managed device id, lower-case.
    Id(String),
    /// A value to resolve with `$filter`, re-checked client-side.
    Lookup { column: Column, value: String },
    /// A user (UPN or object id): the row stands for every Intune device whose primary
    /// user it is, each judged by its own live facts.
    User(String),
    /// An Entra group (display name or object id): the devices of its transitive
    /// members (users' devices, and member devices by their Entra device id).
    Group(String),
    /// The tenant's devices an OData filter matches (checked client-side too); `*`:
    /// every device.
    Filter(String),
}

/// What the runner must do for a planned row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub identity: Identity,
    pub choice: ActionChoice,
    /// The action, when the file's facts already decide it.
    pub action: Option<Action>,
    pub platform: Option<Platform>,
    /// Read the device from Graph (and judge it by its live facts) before acting.
    pub lookup: bool,
    /// The file's header of the column read as the Intune id (shared by the file's
    /// rows), for a `not_found` that says where the id came from.
    pub id_header: Option<std::sync::Arc<str>>,
    /// The tenant the row names (`tenant` column: an id or a verified domain, lower
    /// case): it is acted on only in that tenant.
    pub tenant: Option<String>,
}

pub struct Assessment {
    pub row: ReportRow,
    pub work: Option<Work>,
    /// Which of the row's actions this is (0 for the first or only one): a row asking
    /// for several actions gives one assessment, and one report row, per action.
    pub step: u8,
}

/// Values longer than this are refused: no Graph property the tool reads comes close.
pub const MAX_VALUE_LEN: usize = 512;
/// How much of a value the report echoes.
const ECHO_LEN: usize = 256;

pub struct Planner {
    options: PlanOptions,
    sources: Vec<String>,
    /// Per file: its Intune id column's header, once a row needed it.
    id_headers: Vec<Option<std::sync::Arc<str>>>,
    /// Identities seen so far, by 64-bit hash, and the row that claimed each: the
    /// one structure that grows with the job, flat in memory ([`SpillMap`]). A false
    /// duplicate needs two identities with equal SipHash-1-3 values: about 3 in 10^8
    /// for a million devices.
    seen: SpillMap,
    /// The index's temporary file could not be read back: [`assess_all`] stops the
    /// command before anything is sent.
    broken: Option<std::io::Error>,
    /// `Some(true)`: only assessments of actions on users; `Some(false)`: every other
    /// one (a run's two passes over a job with user actions); `None`: all.
    users: Option<bool>,
}

impl Planner {
    pub fn new(options: PlanOptions) -> Planner {
        Planner {
            options,
            sources: Vec::new(),
            id_headers: Vec::new(),
            seen: SpillMap::default(),
            broken: None,
            users: None,
        }
    }

    /// One of a run's two passes ([`Planner::users`]): the users' actions, or the rest.
    pub fn users_first(mut self, phase: Option<bool>) -> Planner {
        self.users = phase;
        self
    }

    /// Registers a file; its index goes to [`Planner::assess`].
    pub fn add_source(&mut self, source: &str) -> usize {
        self.sources.push(source.to_owned());
        self.id_headers.push(None);
        self.sources.len() - 1
    }

    /// The row's assessments: one per action it asks for, in [`Actions`]' order (one
    /// when the row cannot name its actions).
    pub fn assess(
        &mut self,
        file: usize,
        names: &ColumnNames,
        job_action: Option<&Actions>,
        job_row: JobRow,
    ) -> Vec<Assessment> {
        let row = base_row(&self.sources[file], &job_row);
        if let Some(defect) = job_row.defect {
            return self.whole_row(invalid(row, defect.reason, defect.detail));
        }
        let fields = &job_row.fields;
        if let Err((reason, detail)) = check_values(fields, names) {
            return self.whole_row(invalid(row, reason, detail));
        }
        let own;
        let actions = match fields.get(Column::Action) {
            None => match job_action.or(self.options.action.as_ref()) {
                Some(actions) => actions,
                None => {
                    let detail = format!(
                        "no action: {} here, the job names none and --action was not given",
                        empty_column(names, Column::Action)
                    );
                    return self.whole_row(invalid(row, "no_action", detail));
                }
            },
            Some(text) => match Actions::parse(text) {
                Ok(actions) => {
                    own = actions;
                    &own
                }
                Err(why) => {
                    let detail = format!("column '{}': {}", names.name(Column::Action), echo(&why));
                    let words = || {
                        text.split([',', ';', '+', '|'])
                            .filter(|w| !w.trim().is_empty())
                    };
                    let reason = if crate::rules::not_offered(text).is_some()
                        || words().any(|w| crate::rules::not_offered(w).is_some())
                    {
                        "action_not_offered"
                    } else if words().all(|w| ActionChoice::parse(w).is_some()) {
                        // Every name is known: two of one family (a device takes one).
                        "conflicting_actions"
                    } else {
                        "unknown_action"
                    };
                    return self.whole_row(invalid(row, reason, detail));
                }
            },
        };
        let tenant = match fields.get(Column::Tenant).map(str::trim) {
            None => None,
            Some(t) => match tenant_name(t) {
                Some(t) => Some(t),
                None => {
                    let detail = format!(
                        "column '{}': '{}' is neither a tenant id (a GUID) nor a domain (contoso.onmicrosoft.com)",
                        names.name(Column::Tenant),
                        echo(t)
                    );
                    return self.whole_row(invalid(row, "malformed_tenant", detail));
                }
            },
        };
        if tenant.is_none() && self.options.tenants == TenantScope::Many {
            let detail = format!(
                "no tenant: {}, and the run spans several tenants; fill in the tenant id or domain of each row (a row is never guessed into a tenant)",
                empty_column(names, Column::Tenant)
            );
            return self.whole_row(invalid(row, "no_tenant", detail));
        }
        let choices: Vec<ActionChoice> = actions.iter().collect();
        let mut out = Vec::with_capacity(choices.len());
        for (step, choice) in choices.into_iter().enumerate() {
            if self
                .users
                .is_some_and(|users| users != choice.family().on_users())
            {
                continue;
            }
            let mut a =
                self.assess_action(file, names, fields, row.clone(), choice, tenant.as_deref());
            a.step = step as u8;
            if let Some(work) = &mut a.work {
                work.tenant = tenant.clone();
            }
            out.push(a);
        }
        out
    }

    /// A row judged before its actions are known: in the devices' pass (or the only
    /// one), so it is reported once.
    fn whole_row(&self, assessment: Assessment) -> Vec<Assessment> {
        if self.users == Some(true) {
            Vec::new()
        } else {
            vec![assessment]
        }
    }

    /// The one assessment of a row that asks for one action (tests).
    #[cfg(test)]
    pub fn assess_one(
        &mut self,
        file: usize,
        names: &ColumnNames,
        job_action: Option<&Actions>,
        job_row: JobRow,
    ) -> Assessment {
        let mut all = self.assess(file, names, job_action, job_row);
        assert_eq!(all.len(), 1, "one action, one assessment");
        all.remove(0)
    }

    /// One action of a row.
    fn assess_action(
        &mut self,
        file: usize,
        names: &ColumnNames,
        fields: &DeviceFields,
        mut row: ReportRow,
        choice: ActionChoice,
        tenant: Option<&str>,
    ) -> Assessment {
        row.action = choice.as_str().into();
        if choice.family().on_users() {
            return self.assess_user_action(file, names, fields, row, choice, tenant);
        }
        let identity = match identity(fields, names, self.options.lookup) {
            Ok(i) => i,
            Err((reason, detail)) => return invalid(row, reason, detail),
        };
        if let Identity::Id(id) = &identity {
            row.device_id = id.clone();
        }
        let key = identity_key(&identity, choice, tenant);
        let id_header = match &identity {
            Identity::Id(_) => Some(
                self.id_headers[file]
                    .get_or_insert_with(|| names.name(Column::Id).into())
                    .clone(),
            ),
            _ => None,
        };
        let mut assessment = self.judge_platform(row, fields, names, identity, choice, id_header);
        if assessment.row.outcome == Outcome::Invalid {
            return assessment;
        }
        self.with_history(file, names, fields, key, &mut assessment);
        assessment
    }

    /// A report read as a job: what it says happened to the device (or user) wins over
    /// any verdict but `invalid` (which sends nothing and claims nothing), so that the
    /// history survives a platform judged otherwise this time. Any other row is checked
    /// for a duplicate.
    fn with_history(
        &mut self,
        file: usize,
        names: &ColumnNames,
        fields: &DeviceFields,
        key: u64,
        assessment: &mut Assessment,
    ) {
        match history::carried(fields, names, &self.sources[file]) {
            None => self.dedupe(file, key, assessment),
            Some(carried) => {
                // A row whose device was (or may have been) reset claims it: a later row
                // for it is a duplicate. A duplicate row does not: in its run the row
                // that handled the device may come after it (rows claim devices as their
                // lookups end), and that row, retried, must not be taken for its
                // duplicate. Neither is ever overwritten: its words are the history.
                if carried.outcome != Outcome::Duplicate {
                    self.claim(key, file, assessment.row.row);
                }
                assessment.row.outcome = carried.outcome;
                assessment.row.reason = carried.reason.into();
                assessment.row.detail = carried.detail.into();
                assessment.work = None;
            }
        }
    }

    /// An action on the row's user (`revoke-sessions`): the user is the row's
    /// `userPrincipalName` (a UPN or an object id) whatever device the row also names,
    /// or each user member of the row's group. A row that names no user is invalid:
    /// the action has no device to fall back on.
    fn assess_user_action(
        &mut self,
        file: usize,
        names: &ColumnNames,
        fields: &DeviceFields,
        mut row: ReportRow,
        choice: ActionChoice,
        tenant: Option<&str>,
    ) -> Assessment {
        let noun = choice.family().noun();
        let user = fields.get(Column::UserPrincipalName).map(str::trim);
        let target = match (user, fields.get(Column::Group)) {
            (Some(user), _) => {
                if !is_user(user) {
                    let detail = format!(
                        "column '{}': '{}' is neither a user principal name (user@domain) nor a user object id (a GUID)",
                        names.name(Column::UserPrincipalName),
                        echo(user)
                    );
                    return invalid(row, "malformed_user", detail);
                }
                Identity::User(parse_guid(user).unwrap_or_else(|| user.to_lowercase()))
            }
            (None, Some(group)) => {
                if self.options.lookup == LookupMode::Never {
                    let detail = "the row names a group, and --lookup never forbids reading its members from Graph".to_string();
                    return invalid(row, "lookup_disabled", detail);
                }
                Identity::Group(parse_guid(group).unwrap_or_else(|| group.trim().to_owned()))
            }
            (None, None) => {
                let detail = format!(
                    "{} acts on a user, and the row names none: {} (a device alone does not say whose sessions to revoke)",
                    choice.as_str(),
                    empty_column(names, Column::UserPrincipalName)
                );
                return invalid(row, "no_user", detail);
            }
        };
        let key = identity_key(&target, choice, tenant);
        row.platform = "".into();
        row.outcome = Outcome::Planned;
        row.reason = "".into();
        row.detail = match &target {
            Identity::Group(group) => format!(
                "the {noun} of each user member of the group '{}': the members are read from Graph, each user on its own row",
                echo(group)
            ),
            _ => format!(
                "the user's sign-in sessions are revoked in Entra (a {noun}); the user is read first, so a user named twice is revoked once"
            ),
        }
        .into();
        if let Identity::User(user) = &target
            && row.user_principal_name.is_empty()
        {
            row.user_principal_name = user.clone();
        }
        let mut assessment = Assessment {
            row,
            work: Some(Work {
                identity: target,
                choice,
                action: Some(Action::RevokeSessions),
                platform: None,
                lookup: false,
                id_header: None,
                tenant: None,
            }),
            step: 0,
        };
        self.with_history(file, names, fields, key, &mut assessment);
        assessment
    }

    fn judge_platform(
        &self,
        mut row: ReportRow,
        fields: &DeviceFields,
        names: &ColumnNames,
        identity: Identity,
        choice: ActionChoice,
        id_header: Option<std::sync::Arc<str>>,
    ) -> Assessment {
        let lookup_allowed = self.options.lookup != LookupMode::Never;
        // The file's facts cannot judge the row (`fact` says why): the device's live
        // facts will, read from Graph, unless --lookup never forbids it.
        let to_graph = |mut row: ReportRow, fact: String, platform: Option<Platform>| {
            row.outcome = Outcome::Planned;
            row.reason = "lookup_required".into();
            row.detail = match &identity {
                    Identity::Lookup { column: by, value } => format!(
                        "the device is found by {} '{}'; its platform facts ({}) are read from Graph and judged before acting",
                        names.name(*by),
                        echo(value),
                        fact
                    ),
                    Identity::Id(_) => format!(
                        "{}: the device's facts are read from Graph and judged before acting",
                        fact
                    ),
                    Identity::User(user) => format!(
                        "the row names only the user '{}': each of the user's Intune devices is read from Graph, judged by its live facts and reported on its own row",
                        echo(user)
                    ),
                    Identity::Group(group) => format!(
                        "the row names the group '{}': the devices of its members are read from Graph, each judged by its live facts and reported on its own row",
                        echo(group)
                    ),
                    Identity::Filter(filter) => format!(
                        "the tenant's devices matching '{}' are read from Graph, each judged by its live facts and reported on its own row",
                        echo(filter)
                    ),
                }
                .into();
            let work = Work {
                identity: identity.clone(),
                choice,
                action: None,
                platform,
                lookup: true,
                id_header: id_header.clone(),
                tenant: None,
            };
            Assessment {
                row,
                work: Some(work),
                step: 0,
            }
        };
        let missing = |row: ReportRow, column: Column, platform: Option<Platform>| {
            if lookup_allowed {
                return to_graph(row, missing_fact(fields, names, column), platform);
            }
            let reason = match column {
                Column::OsVersion => "missing_os_version",
                Column::DeviceType => "missing_device_type",
                Column::DeviceEnrollmentType => "missing_enrollment_type",
                Column::Platform => "contradictory_platform",
                _ => "missing_operating_system",
            };
            let detail = format!(
                "{}, and --lookup never forbids reading it from Graph",
                missing_fact(fields, names, column)
            );
            invalid(row, reason, detail)
        };
        let (platform, action, rule) = match verdict(fields, choice) {
            Judgement::Missing { column, platform } => {
                if let Some(p) = platform {
                    row.platform = p.as_str().into();
                }
                return missing(row, column, platform);
            }
            // A word or a version the rules cannot read (an export's `MacMDM`, a
            // hybrid-joined `Windows 10 Enterprise`, a version such as `unknown`): the
            // tenant's facts judge the device, as for a missing fact (issue 19).
            Judgement::Unrecognised { column, value } => {
                let fact = format!(
                    "column '{}': '{}' is not a platform this tool knows (see `intune-reset rules`)",
                    names.name(column),
                    echo(&value)
                );
                if lookup_allowed {
                    return to_graph(row, fact, None);
                }
                return invalid(
                    row,
                    "unrecognised_platform",
                    format!(
                        "{fact}, and --lookup never forbids reading the device's own from Graph"
                    ),
                );
            }
            Judgement::UnreadableVersion { platform } => {
                row.platform = platform.as_str().into();
                let fact = format!(
                    "column '{}': '{}' is not a version number",
                    names.name(Column::OsVersion),
                    echo(fields.get(Column::OsVersion).unwrap_or(""))
                );
                if lookup_allowed {
                    return to_graph(row, fact, Some(platform));
                }
                return invalid(
                    row,
                    "unreadable_os_version",
                    format!(
                        "{fact}, and --lookup never forbids reading the device's own from Graph"
                    ),
                );
            }
            Judgement::Ineligible {
                platform,
                reason,
                detail,
            } => {
                row.platform = platform.as_str().into();
                row.outcome = Outcome::Ineligible;
                row.reason = reason.into();
                row.detail = detail.into();
                return Assessment {
                    row,
                    work: None,
                    step: 0,
                };
            }
            Judgement::Eligible {
                platform,
                action,
                rule,
            } => (platform, action, rule),
        };
        row.platform = platform.as_str().into();
        row.outcome = Outcome::Planned;
        row.action = action.effect(platform).into();
        let lookup = self.options.lookup == LookupMode::Always
            || matches!(
                identity,
                Identity::Lookup { .. }
                    | Identity::User(_)
                    | Identity::Group(_)
                    | Identity::Filter(_)
            );
        row.detail = rule.detail.into();
        if lookup {
            row.reason = "lookup_required".into();
            row.detail = match &identity {
                Identity::Lookup { column, value } => format!(
                    "{}; the device is first found by {} '{}'",
                    rule.detail,
                    names.name(*column),
                    echo(value)
                ),
                Identity::Id(_) => format!(
                    "{}; the device's live facts are read from Graph first (--lookup always)",
                    rule.detail
                ),
                Identity::User(user) => format!(
                    "{}; the row names the user '{}': each of the user's devices is read from Graph and judged by its live facts",
                    rule.detail,
                    echo(user)
                ),
                Identity::Group(group) => format!(
                    "{}; the row names the group '{}': its members' devices are read from Graph and judged by their live facts",
                    rule.detail,
                    echo(group)
                ),
                Identity::Filter(filter) => format!(
                    "{}; the devices matching '{}' are read from Graph and judged by their live facts",
                    rule.detail,
                    echo(filter)
                ),
            }
            .into();
        }
        let work = Work {
            identity,
            choice,
            action: Some(action),
            platform: Some(platform),
            lookup,
            id_header,
            tenant: None,
        };
        Assessment {
            row,
            work: Some(work),
            step: 0,
        }
    }

    /// The row that claimed `key` before, or `None` after recording this one.
    fn claim(&mut self, key: u64, file: usize, row: u64) -> Option<Holder> {
        let here = Holder {
            file: file as u32,
            row,
            sub: 0,
        };
        match self.seen.claim(key, here) {
            Ok(earlier) => earlier,
            Err(e) => {
                self.broken.get_or_insert(e);
                None
            }
        }
    }

    fn dedupe(&mut self, file: usize, key: u64, assessment: &mut Assessment) {
        if let Some(earlier) = self.claim(key, file, assessment.row.row) {
            let (earlier_file, earlier_row) = (earlier.file as usize, earlier.row);
            let whose = if earlier_file == file {
                format!("row {earlier_row}")
            } else {
                format!("row {earlier_row} of {}", self.sources[earlier_file])
            };
            let on_users = assessment
                .work
                .as_ref()
                .is_some_and(|w| w.choice.family().on_users());
            let row = &mut assessment.row;
            row.outcome = Outcome::Duplicate;
            if on_users {
                row.reason = "duplicate_user".into();
                row.detail =
                    format!("the same user as {whose}, whose sessions are revoked there").into();
            } else {
                row.reason = "duplicate_device".into();
                row.detail = format!("the same device as {whose}, which is handled there").into();
            }
            assessment.work = None;
        }
    }
}

fn base_row(source: &str, job_row: &JobRow) -> ReportRow {
    let f = &job_row.fields;
    let text = |c: Column| f.get(c).map(echo).unwrap_or_default();
    ReportRow {
        source: source.to_owned(),
        row: job_row.row,
        device_id: text(Column::Id),
        device_name: text(Column::DeviceName),
        serial_number: text(Column::SerialNumber),
        user_principal_name: text(Column::UserPrincipalName),
        operating_system: f
            .get(Column::OperatingSystem)
            .or(f.get(Column::ExportOs))
            .map(echo)
            .unwrap_or_default(),
        os_version: text(Column::OsVersion),
        platform: Cow::Borrowed(""),
        action: Cow::Borrowed(""),
        outcome: Outcome::Invalid,
        reason: Cow::Borrowed(""),
        detail: Cow::Borrowed(""),
        http_status: None,
        attempts: 0,
        request_id: String::new(),
        client_request_id: String::new(),
        started_at: String::new(),
        finished_at: String::new(),
        tenant: text(Column::Tenant).trim().to_ascii_lowercase(),
    }
}

fn invalid(mut row: ReportRow, reason: &str, detail: String) -> Assessment {
    row.outcome = Outcome::Invalid;
    row.reason = Cow::Owned(reason.to_owned());
    row.detail = detail.into();
    Assessment {
        row,
        work: None,
        step: 0,
    }
}

fn quoted_column(names: &ColumnNames, column: Column) -> String {
    format!("column '{}'", names.name(column))
}

/// `column 'X' is empty`, or, when the file has no such column, `the file has no X
/// column`: a detail never names a column the file does not have as if it had it. The
/// `platform` column is missing as a fact only when it contradicts the OS.
fn empty_column(names: &ColumnNames, column: Column) -> String {
    if column == Column::Platform {
        format!(
            "{} contradicts the row's operating system",
            quoted_column(names, column)
        )
    } else if names.has(column) {
        format!("{} is empty", quoted_column(names, column))
    } else {
        format!("the file has no {} column", column.canonical())
    }
}

/// What a row lacks for its verdict: the empty or absent column, and, when the operating
/// system alone names more than one platform (`Windows`: a desktop or Windows 10 Mobile,
/// as in every row of an Entra admin center download), which ones.
fn missing_fact(fields: &DeviceFields, names: &ColumnNames, column: Column) -> String {
    let empty = empty_column(names, column);
    let open = fields
        .get(Column::OperatingSystem)
        .filter(|_| column == Column::DeviceType)
        .and_then(|os| open_platforms(os).map(|open| (os, open)));
    match open {
        Some((os, open)) => format!(
            "{empty}, and {} says '{}', which may be {open}",
            quoted_column(names, Column::OperatingSystem),
            echo(os)
        ),
        None => empty,
    }
}

/// Shortens a value for the report; values come from files and users.
fn echo(value: &str) -> String {
    // A value of at most ECHO_LEN bytes has at most ECHO_LEN characters.
    if value.len() <= ECHO_LEN || value.chars().count() <= ECHO_LEN {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(ECHO_LEN).collect();
        s.push('…');
        s
    }
}

fn check_values(fields: &DeviceFields, names: &ColumnNames) -> Result<(), (&'static str, String)> {
    /// `3,57123E+14`, `3.57123E+14`, `1.2E+15`: what Excel shows, and saves to CSV, for
    /// a long number in a General-formatted cell. The digits after the sixth or so are
    /// gone, so no device can be found by it. Excel always writes the `+`, which no
    /// serial number holds (`12E4567` is a serial number).
    fn is_scientific(value: &str) -> bool {
        let Some((mantissa, exponent)) = value.split_once(['E', 'e']) else {
            return false;
        };
        let Some(exponent) = exponent.strip_prefix('+') else {
            return false;
        };
        let (whole, fraction) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        !whole.is_empty()
            && digits(whole)
            && digits(fraction)
            && !exponent.is_empty()
            && digits(exponent)
    }
    // A row with a valid Intune id is found by it: a display name that decoded badly
    // (a "CSV (MS-DOS)" file read in the wrong code page, a control character pasted
    // in) does not matter, and is reported as read.
    // Asked only of a value that holds such characters: rare, and parsing an id is not
    // free at a million rows.
    let found_by_id = || {
        fields
            .get(Column::Id)
            .and_then(parse_guid)
            .is_some_and(|id| id != NIL_GUID)
    };
    for (column, value) in fields.iter() {
        // A report's detail and time are prose carried over with a row's history, never
        // a device's identity: a Graph message with a line break, or a long one, is no
        // defect of the row.
        if matches!(column, Column::Detail | Column::FinishedAt) {
            continue;
        }
        let as_read =
            || matches!(column, Column::DeviceName | Column::UserPrincipalName) && found_by_id();
        let control = if value.is_ascii() {
            value.bytes().any(|b| b.is_ascii_control())
        } else {
            value.chars().any(char::is_control)
        };
        // U+FFFD is what a decoder leaves where the file's bytes were not text (a
        // UTF-16 file cut at an odd byte, an unpaired surrogate): the value is not what
        // the file's author wrote, so a lookup by it would hunt for a device that
        // does not exist.
        if !value.is_ascii() && value.contains(char::REPLACEMENT_CHARACTER) && !as_read() {
            return Err((
                "undecodable_characters",
                format!(
                    "column '{}' holds bytes that are not text in the file's encoding \
                     (decoded as U+FFFD); the file may be cut short or damaged here",
                    names.name(column)
                ),
            ));
        }
        if control && !as_read() {
            return Err((
                "control_characters",
                format!(
                    "column '{}' holds control characters (NUL, line breaks, ...)",
                    names.name(column)
                ),
            ));
        }
        if matches!(column, Column::Imei | Column::SerialNumber) && is_scientific(value) {
            return Err((
                "scientific_notation",
                format!(
                    "column '{}' holds {value}, a number Excel shortened to scientific \
                     notation (its last digits are lost); format the column as Text in \
                     Excel before saving, or export again",
                    names.name(column)
                ),
            ));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err((
                "value_too_long",
                format!(
                    "column '{}' holds {} bytes; no device property is longer than {MAX_VALUE_LEN}",
                    names.name(column),
                    value.len()
                ),
            ));
        }
    }
    Ok(())
}

/// The identity columns, strongest first.
const LOOKUP_COLUMNS: [Column; 4] = [
    Column::SerialNumber,
    Column::AzureAdDeviceId,
    Column::Imei,
    Column::DeviceName,
];

fn identity(
    fields: &DeviceFields,
    names: &ColumnNames,
    lookup: LookupMode,
) -> Result<Identity, (&'static str, String)> {
    if let Some(entra) = fields.get(Column::AzureAdDeviceId)
        && parse_guid(entra).is_none()
    {
        return Err((
            "malformed_azure_ad_device_id",
            format!(
                "column '{}': '{}' is not an Entra device id (a GUID)",
                names.name(Column::AzureAdDeviceId),
                echo(entra)
            ),
        ));
    }
    if let Some(id) = fields.get(Column::Id) {
        return match parse_guid(id) {
            Some(guid) if guid != NIL_GUID => Ok(Identity::Id(guid)),
            _ => Err((
                "malformed_id",
                format!(
                    "column '{}': '{}' is not an Intune device id (a GUID such as 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0)",
                    names.name(Column::Id),
                    echo(id)
                ),
            )),
        };
    }
    let Some((column, value)) = LOOKUP_COLUMNS
        .iter()
        .find_map(|c| fields.get(*c).map(|v| (*c, v)))
    else {
        if let Some(filter) = fields.get(Column::Where) {
            let filter = filter.trim();
            if filter != "*"
                && let Err(why) = crate::graph::filter::parse(filter)
            {
                return Err(("unsupported_filter", why));
            }
            if lookup == LookupMode::Never {
                return Err((
                    "lookup_disabled",
                    "the row names a filter, and --lookup never forbids reading devices from Graph"
                        .to_string(),
                ));
            }
            return Ok(Identity::Filter(filter.to_owned()));
        }
        if let Some(group) = fields.get(Column::Group) {
            if lookup == LookupMode::Never {
                return Err((
                    "lookup_disabled",
                    "the row names a group, and --lookup never forbids reading its members from Graph"
                        .to_string(),
                ));
            }
            return Ok(Identity::Group(
                parse_guid(group).unwrap_or_else(|| group.trim().to_owned()),
            ));
        }
        if let Some(user) = fields.get(Column::UserPrincipalName) {
            let user = user.trim();
            if !is_user(user) {
                return Err((
                    "malformed_user",
                    format!(
                        "column '{}': '{}' is neither a user principal name (user@domain) nor a user object id (a GUID)",
                        names.name(Column::UserPrincipalName),
                        echo(user)
                    ),
                ));
            }
            if lookup == LookupMode::Never {
                return Err((
                    "lookup_disabled",
                    "the row names only a user, and --lookup never forbids finding the user's devices in Graph"
                        .to_string(),
                ));
            }
            return Ok(Identity::User(
                parse_guid(user).unwrap_or_else(|| user.to_lowercase()),
            ));
        }
        return Err((
            "no_identity",
            "the row names no device: it needs an id, serialNumber, azureADDeviceId, imei, deviceName or userPrincipalName".into(),
        ));
    };
    if lookup == LookupMode::Never {
        return Err((
            "lookup_disabled",
            format!(
                "{}, and --lookup never forbids finding the device by {}",
                empty_column(names, Column::Id),
                names.name(column)
            ),
        ));
    }
    Ok(Identity::Lookup {
        column,
        value: value.to_owned(),
    })
}

/// A user principal name (`user@domain`) or a user object id (a GUID).
fn is_user(text: &str) -> bool {
    let upn = text.contains('@')
        && !text.starts_with('@')
        && !text.ends_with('@')
        && !text.contains(char::is_whitespace);
    upn || parse_guid(text).is_some()
}

/// The key duplicates are found by: the Intune id when the row has one (re-enrolled
/// devices share a serial number across two Intune records, both real), otherwise the
/// value the device will be looked up by.
/// One key per device (or target), action family and tenant: a device takes each action
/// once, a lock and a passcode reset of one device are no duplicates of each other, and
/// the same serial number or UPN in two tenants is two devices.
fn identity_key(identity: &Identity, choice: ActionChoice, tenant: Option<&str>) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    choice.family().hash(&mut hasher);
    tenant.hash(&mut hasher);
    match identity {
        // Already lower-case, braces removed.
        Identity::Id(id) => {
            Column::Id.hash(&mut hasher);
            id.hash(&mut hasher);
        }
        Identity::User(user) => {
            Column::UserPrincipalName.hash(&mut hasher);
            user.hash(&mut hasher);
        }
        Identity::Group(group) => {
            Column::Group.hash(&mut hasher);
            group.to_lowercase().hash(&mut hasher);
        }
        Identity::Filter(filter) => {
            Column::Where.hash(&mut hasher);
            filter.hash(&mut hasher);
        }
        Identity::Lookup { column, value } => {
            column.hash(&mut hasher);
            match column {
                Column::SerialNumber => value.to_uppercase().hash(&mut hasher),
                Column::Imei => value
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
                    .hash(&mut hasher),
                _ => value.to_lowercase().hash(&mut hasher),
            }
        }
    }
    hasher.finish()
}

/// A job file, opened and checked, with the action its document sets.
pub struct OpenedJob {
    pub file: JobFile,
    pub action: Option<Actions>,
}

/// Opens every job file before anything is written: one unusable file stops the
/// command (exit 2) and nothing else happens. A ZIP archive of several job files
/// gives one job per file it holds, in the archive's (sorted) order.
pub fn open_jobs(paths: &[PathBuf], read: &ReadOptions) -> Result<Vec<OpenedJob>, JobError> {
    let mut jobs = Vec::with_capacity(paths.len());
    let read = read.one_reading();
    for path in paths {
        jobs.extend(open_job(path, &path.display().to_string(), &read)?);
    }
    Ok(jobs)
}

/// Opens one job file (a ZIP of several as several), named `name` in messages.
pub fn open_job(path: &Path, name: &str, read: &ReadOptions) -> Result<Vec<OpenedJob>, JobError> {
    job::open_all_named(path, name, read)?
        .into_iter()
        .map(|file| {
            let action = match file.settings.action.as_deref() {
                None => None,
                Some(text) => Some(Actions::parse(text).map_err(|why| JobError::Unreadable {
                    path: file.source.clone(),
                    why: format!("its \"action\": {why}"),
                })?),
            };
            Ok(OpenedJob { file, action })
        })
        .collect()
}

/// The tenants the job's documents list (`"tenants"`), in the order of the files and
/// their lists, each once: one tenant listed by two documents is one entry, unless they
/// give it different client ids (refused, naming both files). Empty when no document
/// lists tenants.
pub fn job_tenants(jobs: &[OpenedJob]) -> Result<Vec<TenantEntry>, JobError> {
    let mut out: Vec<(TenantEntry, &str)> = Vec::new();
    for job in jobs {
        for entry in &job.file.settings.tenants {
            match out.iter().find(|(e, _)| e.name == entry.name) {
                None => out.push((entry.clone(), &job.file.source)),
                Some((e, _)) if e.client_id == entry.client_id => {}
                Some((e, first)) => {
                    let client = |c: &Option<String>| {
                        c.as_deref()
                            .map_or("no client id of its own".to_owned(), |c| {
                                format!("the client id {c}")
                            })
                    };
                    return Err(JobError::Unreadable {
                        path: job.file.source.clone(),
                        why: format!(
                            "its \"tenants\" gives {} {}, and {first} gives it {}: one tenant signs in with one app",
                            entry.name,
                            client(&entry.client_id),
                            client(&e.client_id)
                        ),
                    });
                }
            }
        }
    }
    Ok(out.into_iter().map(|(e, _)| e).collect())
}

/// Reads every job file in order and hands each row's assessment to `each`, with the
/// file's position among `jobs`: the one loop `plan` and `run` share, so a run acts on
/// exactly what its plan says.
pub fn assess_all(
    jobs: Vec<OpenedJob>,
    planner: &mut Planner,
    each: &mut dyn FnMut(usize, Assessment),
) -> Result<Vec<FileSummary>, JobError> {
    let mut files = Vec::with_capacity(jobs.len());
    for OpenedJob { file, action } in jobs {
        let index = planner.add_source(&file.source);
        let names = file.columns.clone();
        let mut summary = FileSummary {
            source: file.source.clone(),
            format: file.describe(),
            encoding: file.encoding_label().to_owned(),
            rows: 0,
            blank_lines: 0,
        };
        let stats = file.read_rows(&mut |job_row| {
            for assessment in planner.assess(index, &names, action.as_ref(), job_row) {
                each(index, assessment);
            }
        })?;
        if let Some(e) = planner.broken.take() {
            return Err(JobError::Index(e.to_string()));
        }
        summary.rows = stats.rows;
        summary.blank_lines = stats.blank_lines;
        files.push(summary);
    }
    Ok(files)
}

mod history;
#[cfg(test)]
mod tests;
