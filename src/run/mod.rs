//! `intune-reset run`: read the job once, plan, confirm, then reset every eligible
//! device through Graph.
//!
//! The pipeline (docs/architecture.md, "The run as a pipeline"):
//! 1. [`prepare`]: the job files are read once into a private copy ([`snapshot`]) with
//!    their fingerprints; the job lock is taken; a resumed run reads its [`ledger`] back
//!    and refuses a changed job; the plan is counted for the confirmation and
//!    `--max-devices`.
//! 2. confirmation, sign-in and the shutdown signal: in `cli` (`cli::run_cmd`).
//! 3. [`execute`]: the summary path is checked, the ledger is begun, and the same copy is
//!    planned again, deterministically, for the sending: rows with a final outcome go
//!    straight to the report; planned devices go to at most `--concurrency` engine
//!    tasks; one writer task owns the report file, the summary and the progress bar.
//!
//! The ledger is the run's durable record; the report is a view of the plan and the
//! ledger, written anew by a resumed run. Rows are written (and flushed) as outcomes
//! arrive; when the run ends, finished or interrupted, the report is written again in
//! input order and renamed over the one written so far. An xlsx report's rows go to
//! its CSV companion (`<report>.csv`) that way, and the workbook is then written from
//! them.
//!
//! A command: it uses the core (planner, pacing, graph, job, report), never another
//! command, and never the process: signals and the simulator come from `cli`.

pub mod engine;
mod expand;
mod fleet;
/// The run's durable record lives in the core ([`crate::ledger`]): `audit` and `evidence`
/// read it too.
pub use crate::ledger;
pub mod live_plan;
mod lock;
mod progress;
pub mod snapshot;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use crate::device::Column;
use crate::error::CommandError;
use crate::graph::GraphApi;
use crate::job::ReadOptions;
use crate::pacing::workers::{Lost, Workers};
use crate::planner::{Assessment, LookupMode, PlanOptions, Planner, assess_all};
use crate::report::xlsx::{SheetFacts, XlsxReport};
use crate::report::{Outcome, ReportFormat, ReportRow, ReportWriter, RunStats, Summary};
use crate::report::{check_summary_path, report_path, write_summary_json};

pub use crate::pacing::{AbortReason, Settings};
pub use engine::{Done, Engine, Prior};
pub use expand::{EXPANSION_FACTOR, expand, expand_tenant, expansion_line};
pub use fleet::TenantRun;
use fleet::{Fleet, Route};
use ledger::{Begin, Fate, History, Ledger, Origin, RowKey};
pub use live_plan::{LivePlanConfig, live_plan};
use snapshot::JobSnapshot;

/// Everything `run` needs, validated; nothing here knows about clap.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub files: Vec<PathBuf>,
    pub options: PlanOptions,
    /// `--sheet`, `--encoding`.
    pub read: ReadOptions,
    pub report: Option<PathBuf>,
    pub format: ReportFormat,
    /// A CSV report starts with a UTF-8 byte-order mark (`--no-bom`: without).
    pub bom: bool,
    pub summary_json: Option<PathBuf>,
    /// `--yes`: no confirmation prompt (required without a terminal).
    pub yes: bool,
    pub max_devices: Option<u64>,
    /// Pacing and retries; `request_timeout` is also the HTTP client's timeout.
    pub settings: Settings,
    /// A person is at a terminal (stdin and stderr are TTYs): ask, show progress.
    pub interactive: bool,
    /// `--resume`: continue the run recorded in `report`.
    pub resume: bool,
    /// `--lock`: the lock file [default: `<report folder>/<job>.lock`].
    pub lock: Option<PathBuf>,
    /// `--wait-for-lock`: a held lock (the job's or the tenant's) is waited for, not
    /// refused.
    pub wait_for_lock: bool,
    /// `--passcodes` (with `--follow`): checked against the run's other files before
    /// anything is sent.
    pub passcodes: Option<PathBuf>,
    /// `--lookup-via`: one `$filter` per row, or the tenant's inventory read once.
    pub lookup_via: LookupVia,
    /// `--user UPN`: users whose devices the run acts on, as one more job file.
    pub users: Vec<String>,
    /// `--group NAME_OR_ID`: groups whose members' devices the run acts on.
    pub groups: Vec<String>,
    /// `--where EXPR` (or `*` for `--all-devices`): the tenant's matching devices.
    pub filter: Option<String>,
    /// `--reset-again`: a reset Intune shows `done` in the last 24 hours does not keep a
    /// device from another (one still pending or active always does).
    pub reset_again: bool,
    /// `--tenant` given several times, `--tenants FILE`: the tenants the run signs in
    /// to, flags first, each once (`options.tenants` is then `Many`). Empty for one
    /// tenant (`--tenant`, AZURE_TENANT_ID, the account's home tenant).
    pub tenants: Vec<crate::tenants::TenantEntry>,
}

/// How rows that need a lookup find their device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LookupVia {
    /// The inventory when at least [`INVENTORY_THRESHOLD`] rows need a lookup.
    #[default]
    Auto,
    /// Read the tenant's managed devices once and join locally.
    Inventory,
    /// One `$filter` request per row.
    Filter,
}

/// `--lookup-via auto` reads the inventory from this many lookups on: they would cost
/// as many requests as the inventory of a 100,000-device tenant (100 pages).
pub const INVENTORY_THRESHOLD: u64 = engine::inventory::AUTO_THRESHOLD;

impl RunConfig {
    /// The lock for this job: beside the report, named after the first job file, so
    /// two cron runs of one job (with timestamped reports) still exclude each other.
    pub fn lock_path(&self, report: &Path) -> PathBuf {
        self.lock.clone().unwrap_or_else(|| {
            let job = self
                .files
                .first()
                .and_then(|f| f.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "job".into());
            report
                .parent()
                .unwrap_or(Path::new("."))
                .join(format!("{job}.lock"))
        })
    }
}

/// The tenant lock ([`Prepared::lock_tenant`]), held until dropped.
pub struct TenantLock(#[allow(dead_code)] lock::RunLock);

/// How a run ended.
pub struct RunOutcome {
    pub summary: Summary,
    pub aborted: Option<AbortReason>,
}

/// Counts of a plan, for the confirmation and `--max-devices`.
#[derive(Debug, Default)]
pub struct PlanCounts {
    pub rows: u64,
    /// Devices this run will act on (resumed: those an earlier run did not finish).
    pub devices: u64,
    /// Devices an earlier run finished (`--resume`): not touched again.
    pub done: u64,
    /// Devices to act on by platform and action (or "to be looked up").
    pub per_platform: BTreeMap<String, u64>,
    /// Rows whose device is read from Graph before acting.
    pub lookups: u64,
    /// Assessments of an action on users (`revoke-sessions`): when there are any, the
    /// run sends them all before any device action.
    pub user_actions: u64,
    /// Rows naming a tenant, by tenant and `per_platform` key: counted as to send once
    /// sign-in says which tenant this run is in ([`PlanCounts::in_tenant`]).
    pub by_tenant: BTreeMap<String, BTreeMap<String, u64>>,
    /// The users, groups and filters of rows naming a tenant: listed only in it.
    pub target_tenants: std::collections::HashMap<RowKey, String>,
    /// Each user row and the number of devices it expanded to (after [`expand`]).
    pub expansions: Vec<(String, u64)>,
    /// Devices of users, groups and filters that will not be sent, judged by the facts
    /// their listing gave: `ineligible (reason)`, `duplicate` (named again).
    pub not_sent: BTreeMap<String, u64>,
    /// `--resume`: the run it continues.
    pub resumed: Option<Resumed>,
}

/// What an interrupted run left, for the question of the run that resumes it.
#[derive(Debug, Default)]
pub struct Resumed {
    /// When the run began (RFC 3339).
    pub started_at: String,
    pub ledger: PathBuf,
    /// Rows it finished, by outcome: not touched again.
    pub done: BTreeMap<String, u64>,
    /// Rows whose reset went out with its fate unknown: settled through
    /// `deviceActionResults` before anything is sent for them.
    pub settling: u64,
}

impl PlanCounts {
    /// What the question counts, by action: `ios (remove-passcode)` counts for
    /// `remove-passcode`; rows whose platform is learnt from Graph under their own key.
    pub fn per_action(&self) -> BTreeMap<&str, u64> {
        let mut per_action = BTreeMap::new();
        for (key, n) in &self.per_platform {
            let action = key
                .rsplit_once(" (")
                .map_or(key.as_str(), |(_, a)| a.trim_end_matches(')'));
            *per_action.entry(action).or_default() += n;
        }
        per_action
    }

    /// Every action counted is a passcode reset (rows still to be looked up are: no
    /// other action is in the question).
    pub fn passcodes_only(&self) -> bool {
        self.per_action()
            .keys()
            .all(|a| crate::rules::Family::of_report(a) == crate::rules::Family::Passcode)
    }

    /// The rows naming a tenant, once sign-in says this run is in `tenant` (its id):
    /// that tenant's are to send, any other's are not sent here (`other_tenant`).
    pub fn in_tenant(&mut self, tenant: &str) {
        let here = tenant.trim().to_ascii_lowercase();
        for (named, keys) in std::mem::take(&mut self.by_tenant) {
            let n: u64 = keys.values().sum();
            if named == here {
                for (key, k) in keys {
                    *self.per_platform.entry(key).or_default() += k;
                }
            } else {
                self.devices = self.devices.saturating_sub(n);
                *self
                    .not_sent
                    .entry(format!("ineligible (other_tenant: {named})"))
                    .or_default() += n;
            }
        }
    }

    /// A run across several tenants (issue 22), once each tenant's sign-in is known:
    /// `tenants` holds each tenant's label, every name rows may give it, and whether
    /// it signed in. A signed-in tenant's rows are to send; an unavailable one's are
    /// counted apart (`not_attempted`), as are rows naming a tenant the run does not
    /// span (`other_tenant`). Returns what each signed-in tenant will be sent, by label.
    pub fn in_tenants(&mut self, tenants: &[(String, Vec<String>, bool)]) -> BTreeMap<String, u64> {
        let mut per_tenant: BTreeMap<String, u64> = tenants
            .iter()
            .filter(|(_, _, ready)| *ready)
            .map(|(label, _, _)| (label.clone(), 0))
            .collect();
        // Rows naming no tenant (a run that takes its tenants from its rows plans them
        // as any other): never guessed into one.
        for (_, n) in std::mem::take(&mut self.per_platform) {
            self.devices = self.devices.saturating_sub(n);
            *self
                .not_sent
                .entry("invalid (no_tenant)".to_owned())
                .or_default() += n;
        }
        for (named, keys) in std::mem::take(&mut self.by_tenant) {
            let n: u64 = keys.values().sum();
            match tenants.iter().find(|(_, names, _)| names.contains(&named)) {
                Some((label, _, true)) => {
                    for (key, k) in keys {
                        *self.per_platform.entry(key).or_default() += k;
                    }
                    *per_tenant.entry(label.clone()).or_default() += n;
                }
                Some((label, _, false)) => {
                    self.devices = self.devices.saturating_sub(n);
                    *self
                        .not_sent
                        .entry(format!("not_attempted (tenant_unavailable: {label})"))
                        .or_default() += n;
                }
                None => {
                    self.devices = self.devices.saturating_sub(n);
                    *self
                        .not_sent
                        .entry(format!("ineligible (other_tenant: {named})"))
                        .or_default() += n;
                }
            }
        }
        per_tenant
    }

    /// The devices the question asks about: those a reset will be sent to, by
    /// platform and action, and those whose facts are read first.
    pub fn to_send(&self) -> u64 {
        self.per_platform.values().sum()
    }
}

/// A row naming a user, a group or a filter, and the action it asks for: expanded
/// into its devices before the question.
type Target = (RowKey, crate::planner::Identity, crate::rules::ActionChoice);

/// The `per_platform` key of rows whose platform is learnt from Graph.
pub const TO_BE_LOOKED_UP: &str = "to be looked up";

/// Everything [`prepare`] read and checked before sign-in.
pub struct Prepared {
    /// The job, read once.
    job: JobSnapshot,
    report: PathBuf,
    /// `--resume`: the ledger, locked, and what it holds (`None`: it recorded nothing).
    resumed: Option<(Ledger, Option<History>)>,
    pub counts: PlanCounts,
    /// Who signed in, set once sign-in succeeded: named in the summary.
    pub signed_in: Option<crate::graph::SignedIn>,
    /// Rows naming only a user or a group, to expand.
    targets: Vec<Target>,
    /// What a resumed run's ledger says each user row expanded to.
    recorded_expansions: HashMap<RowKey, Vec<String>>,
    /// Each user row's devices, once [`expand`]ed.
    expansions: HashMap<RowKey, expand::Expansion>,
    /// The facts the expansions' listings gave for their devices, by the tenant they
    /// were listed in: each is judged by them when it is sent instead of being read
    /// again (issue 19).
    listed: Vec<(String, Vec<crate::graph::ManagedDevice>)>,
    /// How the job is planned: `--action`'s and the lookup's options, and whether the
    /// run spans tenants (a job document's `tenants` makes it so).
    options: PlanOptions,
    /// A job document's `tenants` list (issue 22).
    document_tenants: Vec<crate::tenants::TenantEntry>,
    /// Held until the run ends.
    _lock: lock::RunLock,
    /// Named in the lock files: this run's report and start.
    holder: lock::Holder,
}

impl Prepared {
    /// Once sign-in says which tenant this run is in (its id): rows naming another
    /// tenant are not counted as sent, and their users, groups and filters are not
    /// listed here (the engine ends their rows `other_tenant`).
    pub fn in_tenant(&mut self, tenant: &str) {
        let here = tenant.trim().to_ascii_lowercase();
        self.counts.in_tenant(&here);
        let others = std::mem::take(&mut self.counts.target_tenants);
        self.targets
            .retain(|(key, _, _)| others.get(key).is_none_or(|t| *t == here));
    }

    /// A job document's `tenants` list (issue 22).
    pub fn document_tenants(&self) -> &[crate::tenants::TenantEntry] {
        &self.document_tenants
    }

    /// The tenants the job's rows name (lower case, in name order): a run with no
    /// tenant configured signs in to each (issue 22).
    pub fn named_tenants(&self) -> Vec<String> {
        let mut names: std::collections::BTreeSet<String> =
            self.counts.by_tenant.keys().cloned().collect();
        names.extend(self.counts.target_tenants.values().cloned());
        names.into_iter().collect()
    }

    /// A run across several tenants, once each tenant's sign-in is known: the users,
    /// groups and filters of tenants it did not sign in to are not listed.
    pub fn in_tenants(&mut self, tenants: &[(String, Vec<String>, bool)]) -> BTreeMap<String, u64> {
        let ready: Vec<&String> = tenants
            .iter()
            .filter(|(_, _, ready)| *ready)
            .flat_map(|(_, names, _)| names)
            .collect();
        let target_tenants = &self.counts.target_tenants;
        self.targets
            .retain(|(key, _, _)| target_tenants.get(key).is_some_and(|t| ready.contains(&t)));
        self.counts.in_tenants(tenants)
    }

    /// A resumed run continues only where it began: in the same tenant, and real or
    /// simulated as it began. Asked once sign-in says who and where this run is,
    /// before anything is read or sent.
    pub fn check_origin(
        &self,
        who: &crate::graph::SignedIn,
        settings: &Settings,
    ) -> Result<(), CommandError> {
        let Some((ledger, Some(history))) = &self.resumed else {
            return Ok(());
        };
        let Some(began) = &history.begin.origin else {
            tracing::warn!(
                "the ledger {} does not say which tenant its run began in (it was written by an older intune-reset); make sure this is that tenant",
                ledger.path().display()
            );
            return Ok(());
        };
        // A run across several tenants resumes across them: signed in to one, its
        // other tenants' rows would be left as another tenant's.
        if !history.tenants.is_empty() {
            let tenants: Vec<&str> = std::iter::once(began.tenant.as_str())
                .chain(history.tenants.iter().map(|o| o.tenant.as_str()))
                .collect();
            return Err(CommandError::Usage(format!(
                "cannot resume {}: its run spans several tenants ({}); resume it as it began, with no tenant configured (no --tenant, no AZURE_TENANT_ID) or the same --tenant list or --tenants file; nothing was sent",
                self.report.display(),
                tenants.join(", ")
            )));
        }
        match began.refuses(&Origin::new(who, settings.settle_window())) {
            Some(why) => Err(CommandError::Usage(format!(
                "cannot resume {}: {why}; nothing was sent",
                self.report.display()
            ))),
            None => Ok(()),
        }
    }

    /// [`Self::check_origin`] for a run across several tenants: each tenant signed in
    /// to must be one the run's ledger recorded with the same kind of tenant (real or
    /// simulated), or, in a ledger of several tenants, a tenant it could not sign in
    /// to before.
    pub fn check_origins(
        &self,
        whos: &[&crate::graph::SignedIn],
        settings: &Settings,
    ) -> Result<(), CommandError> {
        let Some((_, Some(history))) = &self.resumed else {
            return Ok(());
        };
        let Some(began) = &history.begin.origin else {
            return Ok(());
        };
        let recorded: Vec<&Origin> = std::iter::once(began)
            .chain(&history.tenants)
            .chain(&history.sessions)
            .collect();
        let several = !history.tenants.is_empty() || self.counts.by_tenant.len() > 1;
        for who in whos {
            let now = Origin::new(who, settings.settle_window());
            let same = recorded
                .iter()
                .find(|o| o.tenant.eq_ignore_ascii_case(&now.tenant));
            let refused = match same {
                Some(o) => o.refuses(&now),
                None if several => began.refuses(&Origin {
                    tenant: began.tenant.clone(),
                    ..now
                }),
                None => began.refuses(&now),
            };
            if let Some(why) = refused {
                return Err(CommandError::Usage(format!(
                    "cannot resume {}: {why}; nothing was sent",
                    self.report.display()
                )));
            }
        }
        Ok(())
    }

    /// Takes the tenant lock: one run per Graph host, tenant and app (or user) at a
    /// time on this machine, whatever the folder, the report or the job file's name.
    /// Taken once sign-in says who this run acts as, before any device is read or
    /// reset; held until the returned lock is dropped. `dir`: the user's lock folder.
    pub fn lock_tenant(
        &self,
        dir: &Path,
        graph: &str,
        who: &crate::graph::SignedIn,
        wait: bool,
    ) -> Result<TenantLock, CommandError> {
        let acting_as = who
            .client_id
            .as_deref()
            .or(who.user.as_deref())
            .unwrap_or("");
        let key = lock::TenantKey {
            graph,
            tenant: &who.tenant,
            acting_as,
            simulated: who.simulated,
        };
        let purpose = lock::Purpose {
            // `describe` names the identity and its tenant: "app A (secret) in tenant T".
            what: format!("another run as {} on this machine", who.describe()),
            advice: "two runs of one tenant and app share its request budget and could reset \
                     a device the other just reset. Wait for it to finish, or pass \
                     --wait-for-lock to start when it does",
        };
        lock::acquire(&key.path(dir), &self.holder, &purpose, wait)
            .map(TenantLock)
            .map_err(|e| CommandError::Usage(e.to_string()))
    }

    /// The private copies of the job files (the `--simulate` tenant is seeded from
    /// them, so it holds exactly the devices the run reads).
    pub fn job_copies(&self) -> Vec<(PathBuf, String)> {
        self.job.named_copies()
    }

    /// How the job files are read (`--sheet`, `--encoding`), for readers of the copies.
    pub fn read_options(&self) -> &ReadOptions {
        self.job.read_options()
    }
}

/// What the command line names besides job files: `--user`, `--group`, `--where` or
/// `--all-devices` (`*`).
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub filter: Option<String>,
}

impl RunConfig {
    fn targets(&self) -> Targets {
        Targets {
            users: self.users.clone(),
            groups: self.groups.clone(),
            filter: self.filter.clone(),
        }
    }
}

/// The job as read once: the files, then one synthetic file per kind of target flag
/// (`(--user)`, `(--group)`, `(--where)`), each row of which names a target.
pub fn take_job(
    files: &[PathBuf],
    read: &ReadOptions,
    targets: &Targets,
) -> Result<JobSnapshot, CommandError> {
    let mut job = JobSnapshot::take(files, read.clone())?;
    if !targets.users.is_empty() {
        job = job.with_text(
            "(--user)",
            "users.csv",
            &users_job("userPrincipalName", &targets.users),
        )?;
    }
    if !targets.groups.is_empty() {
        job = job.with_text(
            "(--group)",
            "groups.csv",
            &users_job("group", &targets.groups),
        )?;
    }
    if let Some(filter) = &targets.filter {
        let where_job = users_job("where", std::slice::from_ref(filter));
        job = job.with_text("(--where)", "where.csv", &where_job)?;
    }
    Ok(job)
}

/// Reads the job once, takes the job lock, reads a resumed run's ledger back (refusing a
/// changed job), and counts the plan. Nothing is sent; every refusal is exit 2.
pub fn prepare(config: &RunConfig) -> Result<Prepared, CommandError> {
    if config.resume && config.report.is_none() {
        return Err(CommandError::Usage(
            "--resume needs --report PATH: the report of the run to continue".into(),
        ));
    }
    let job = take_job(&config.files, &config.read, &config.targets())?;
    let jobs = job.open()?;
    if config.options.action.is_none()
        && let Some(job) = jobs
            .iter()
            .find(|j| j.action.is_none() && !j.file.columns.has(Column::Action))
    {
        return Err(CommandError::Usage(format!(
            "say which action to take: pass --action remove-passcode, reset-pin or auto \
             ({} names none: it has no action column and is not a job document with one)",
            job.file.source
        )));
    }
    let report = report_path(&config.report, &config.files, config.format);
    let ledger_file = ledger::ledger_path(&report);
    let lock_file = config.lock_path(&report);
    distinct_files(config, &report, &ledger_file, &lock_file)?;
    let holder = lock::Holder {
        report: std::path::absolute(&report).unwrap_or_else(|_| report.clone()),
        started: SystemTime::now(),
    };
    let purpose = lock::Purpose {
        what: "another run of this job".into(),
        advice: "wait for it to finish, or pass --wait-for-lock to start when it does",
    };
    let lock = lock::acquire(&lock_file, &holder, &purpose, config.wait_for_lock)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    let resumed = if config.resume {
        if !ledger_file.exists() {
            return Err(CommandError::Usage(format!(
                "cannot resume: {} has no ledger beside it ({}), so it is not the record of a run \
                 that reached Graph; nothing was sent. Choose another --report for a new run",
                report.display(),
                ledger_file.display()
            )));
        }
        let (ledger, history) =
            Ledger::resume(&ledger_file).map_err(|e| CommandError::Usage(e.to_string()))?;
        if let Some(history) = &history {
            same_job(history, &job, config.options.clone())?;
        }
        Some((ledger, history))
    } else {
        let companion = crate::report::companion_csv(&report);
        let mut records = vec![&report, &ledger_file];
        if config.format == ReportFormat::Xlsx {
            records.push(&companion);
        }
        if let Some(existing) = records.into_iter().find(|p| p.exists()) {
            return Err(CommandError::Usage(format!(
                "{} already exists: it is the record of an earlier run. Pass --resume to \
                 continue that run, or choose another --report",
                existing.display()
            )));
        }
        None
    };
    let history = resumed.as_ref().and_then(|(_, h)| h.as_ref());
    // A job document's `tenants` (issue 22): the run's tenants, unless the command
    // line lists its own.
    let document_tenants = crate::planner::job_tenants(&jobs)?;
    let mut options = config.options.clone();
    if config.tenants.is_empty() && !document_tenants.is_empty() {
        options.tenants = crate::planner::TenantScope::Many;
    }
    let (mut counts, targets) = count_plan(jobs, options.clone(), history)?;
    if let (Some((ledger, _)), Some(history)) = (&resumed, history) {
        let r = counts.resumed.get_or_insert_with(Resumed::default);
        r.started_at = history.started_at.clone();
        r.ledger = ledger.path().to_owned();
    }
    let recorded_expansions = history.map(|h| h.expansions.clone()).unwrap_or_default();
    if let Some(max) = config.max_devices
        && counts.devices > max
    {
        return Err(CommandError::Usage(format!(
            "the job has {} devices to act on, more than --max-devices {max}; nothing was sent",
            counts.devices
        )));
    }
    Ok(Prepared {
        job,
        report,
        resumed,
        counts,
        signed_in: None,
        targets,
        recorded_expansions,
        expansions: HashMap::new(),
        listed: Vec::new(),
        _lock: lock,
        holder,
        options,
        document_tenants,
    })
}

/// The files the run writes never name one another, nor a job file (`--lock` naming
/// the ledger would truncate it; `--summary-json` naming the report would replace its
/// rows): refused before the lock is taken or anything is sent.
fn distinct_files(
    config: &RunConfig,
    report: &Path,
    ledger_file: &Path,
    lock_file: &Path,
) -> Result<(), CommandError> {
    use crate::paths::Named;
    let mut files = vec![
        Named::written("--report", report),
        Named::written("the ledger (<report>.ledger)", ledger_file),
        Named::written(
            if config.lock.is_some() {
                "--lock"
            } else {
                "the job lock"
            },
            lock_file,
        ),
    ];
    if config.format == ReportFormat::Xlsx {
        files.push(Named::written(
            "the report's CSV companion (<report>.csv)",
            crate::report::companion_csv(report),
        ));
    }
    if let Some(json) = &config.summary_json {
        files.push(Named::written("--summary-json", json));
    }
    if let Some(passcodes) = &config.passcodes {
        files.push(Named::written("--passcodes", passcodes));
    }
    files.extend(config.files.iter().map(|f| Named::read("a job file", f)));
    crate::paths::distinct(&files).map_err(|e| CommandError::Usage(e.to_string()))
}

fn lookup_name(mode: LookupMode) -> &'static str {
    match mode {
        LookupMode::Auto => "auto",
        LookupMode::Always => "always",
        LookupMode::Never => "never",
    }
}

fn begin_of(job: &JobSnapshot, options: PlanOptions) -> Begin {
    use crate::rules::Actions;
    Begin {
        tenants: Vec::new(),
        files: job.fingerprints(),
        action: options.action.as_ref().map(Actions::as_text),
        lookup: lookup_name(options.lookup).to_owned(),
        sheet: job.read_options().sheet.clone(),
        encoding: job.read_options().encoding.map(|e| e.label().to_owned()),
        origin: None,
    }
}

/// A resume acts on exactly the job its ledger began with: the same files, byte for
/// byte, in the same order, planned with the same options. Anything else could send a
/// row twice or never.
fn same_job(
    history: &History,
    job: &JobSnapshot,
    options: PlanOptions,
) -> Result<(), CommandError> {
    let refuse = |why: String| {
        Err(CommandError::Usage(format!(
            "cannot resume: {why}; nothing was sent"
        )))
    };
    let was = &history.begin;
    let now = begin_of(job, options);
    let names = |files: &[ledger::Fingerprint]| {
        files
            .iter()
            .map(|f| f.source.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if was.files.len() != now.files.len() {
        return refuse(format!(
            "the run began with {} job file(s) ({}); {} are given now ({}). Resume with the same files, in the same order",
            was.files.len(),
            names(&was.files),
            now.files.len(),
            names(&now.files)
        ));
    }
    for (then, is) in was.files.iter().zip(&now.files) {
        if then.source != is.source {
            return refuse(format!(
                "the run began with the job file {} where {} is given now. Resume with the same files, named as the run named them",
                then.source, is.source
            ));
        }
        if then.bytes != is.bytes || then.sha256 != is.sha256 {
            return refuse(format!(
                "the job file {} has changed since the run began ({} bytes then, {} now; SHA-256 {} then, {} now). \
                 Resuming would send rows the run never planned, or skip some. Resume with the file as it was, or start a new run with another --report",
                is.source,
                then.bytes,
                is.bytes,
                &then.sha256[..then.sha256.len().min(12)],
                &is.sha256[..is.sha256.len().min(12)]
            ));
        }
    }
    let flag = |a: &Option<String>| a.clone().unwrap_or_else(|| "(none)".into());
    if was.action != now.action || was.lookup != now.lookup {
        return refuse(format!(
            "the run began with --action {} --lookup {}; this one has --action {} --lookup {}. Resume with the same flags",
            flag(&was.action),
            was.lookup,
            flag(&now.action),
            now.lookup
        ));
    }
    if was.sheet != now.sheet || was.encoding != now.encoding {
        let given = |sheet: &Option<String>, encoding: &Option<String>| {
            format!(
                "--sheet {} --encoding {}",
                sheet.as_deref().unwrap_or("(none)"),
                encoding.as_deref().unwrap_or("(detected)")
            )
        };
        return refuse(format!(
            "the run began with {}; this one has {}: the job files would be read as other \
             rows. Resume with the same flags",
            given(&was.sheet, &was.encoding),
            given(&now.sheet, &now.encoding)
        ));
    }
    Ok(())
}

/// Plans every row of the copy without writing, to count what the run will act on,
/// and collects the rows that name a user.
fn count_plan(
    jobs: Vec<crate::planner::OpenedJob>,
    options: PlanOptions,
    history: Option<&History>,
) -> Result<(PlanCounts, Vec<Target>), CommandError> {
    let mut targets = Vec::new();
    let mut planner = Planner::new(options);
    let mut counts = PlanCounts {
        resumed: history.map(|_| Resumed::default()),
        ..PlanCounts::default()
    };
    assess_all(jobs, &mut planner, &mut |file, a| {
        // A row asking for several actions is one row with several assessments.
        if a.step == 0 {
            counts.rows += 1;
        }
        let Some(work) = &a.work else {
            return;
        };
        let on_users = work.choice.family().on_users();
        if on_users {
            counts.user_actions += 1;
        }
        let key = RowKey::at(file as u32, a.row.row, a.step);
        let earlier = history.and_then(|h| h.rows.get(&key));
        if let (Some(done), Some(r)) = (earlier.and_then(|h| h.done.as_ref()), &mut counts.resumed)
        {
            counts.done += 1;
            *r.done.entry(done.outcome.as_str().to_owned()).or_default() += 1;
            return;
        }
        counts.devices += 1;
        if let (Some(_), Some(r)) = (earlier.and_then(|h| h.open), &mut counts.resumed) {
            r.settling += 1;
            return;
        }
        if a.work.as_ref().is_some_and(|w| w.lookup) {
            counts.lookups += 1;
        }
        // A user action's user is itself (not their devices); a group's users are
        // listed before the question.
        if let Some(
            identity @ (crate::planner::Identity::User(_)
            | crate::planner::Identity::Group(_)
            | crate::planner::Identity::Filter(_)),
        ) = a.work.as_ref().map(|w| &w.identity)
            && !(on_users && matches!(identity, crate::planner::Identity::User(_)))
        {
            targets.push((
                key,
                identity.clone(),
                a.work
                    .as_ref()
                    .map_or(crate::rules::ActionChoice::Auto, |w| w.choice),
            ));
            if let Some(tenant) = &work.tenant {
                counts.target_tenants.insert(key, tenant.clone());
            }
        }
        let platform = if on_users {
            format!("users ({})", a.row.action)
        } else if a.row.platform.is_empty() {
            TO_BE_LOOKED_UP.to_string()
        } else {
            format!("{} ({})", a.row.platform, a.row.action)
        };
        let place = match &work.tenant {
            Some(tenant) => counts.by_tenant.entry(tenant.clone()).or_default(),
            None => &mut counts.per_platform,
        };
        *place.entry(platform).or_default() += 1;
    })?;
    Ok((counts, targets))
}

/// What the job reader hands the dispatcher.
// One `Row` per assessment and one marker per run: boxing each row would allocate per
// row to save the marker's bytes.
#[allow(clippy::large_enum_variant)]
enum Planned {
    Row(usize, Assessment),
    /// Every assessment of an action on users has been handed over: the dispatcher
    /// waits for them all to end before the devices' actions.
    UsersDone,
}

/// A row on its way to the report.
struct Finished {
    /// Its place in input order.
    key: RowKey,
    row: ReportRow,
    /// This run acted on the device (not a row the plan or the ledger already decided).
    acted: bool,
    /// This run sent a reset for it (a reset an interrupted run sent and this one only
    /// confirmed is not this run's).
    sent_now: bool,
}

impl Finished {
    /// A row this run did not act on: decided by the plan or by an earlier run, or left
    /// when the run stopped.
    fn decided(key: RowKey, row: ReportRow) -> Finished {
        Finished {
            key,
            row,
            acted: false,
            sent_now: false,
        }
    }
}

/// Told of every row the run acted on as it finishes (`run --follow` reads its reset
/// while later devices are still sent).
pub type OnDone = Arc<dyn Fn(&ReportRow) + Send + Sync>;

/// The pipeline, on an already signed-in client.
pub async fn execute<G: GraphApi>(
    config: &RunConfig,
    graph: G,
    prepared: Prepared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunOutcome, CommandError> {
    let pacer = Arc::new(crate::pacing::Pacer::new(graph, config.settings.clone()));
    execute_on(config, pacer, prepared, shutdown, None).await
}

/// The pipeline on `pacer` (which whatever else reads the tenant meanwhile shares: one
/// budget, one 429 pause), telling `on_done` of each row it acted on.
pub async fn execute_on<G: GraphApi>(
    config: &RunConfig,
    pacer: Arc<crate::pacing::Pacer<G>>,
    prepared: Prepared,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_done: Option<OnDone>,
) -> Result<RunOutcome, CommandError> {
    let who = prepared.signed_in.clone();
    let label = who
        .as_ref()
        .map(|w| w.tenant.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let tenant = TenantRun {
        names: vec![label.clone()],
        label,
        ready: Ok((pacer, who)),
    };
    execute_tenants(config, vec![tenant], false, prepared, shutdown, on_done).await
}

/// The pipeline over the run's tenants (issue 22), each on its own pacer; `many`: the
/// run spans several tenants, and each row goes to the one it names.
pub async fn execute_tenants<G: GraphApi>(
    config: &RunConfig,
    tenants: Vec<TenantRun<G>>,
    many: bool,
    prepared: Prepared,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_done: Option<OnDone>,
) -> Result<RunOutcome, CommandError> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let Prepared {
        job,
        report: path,
        resumed,
        counts,
        signed_in,
        mut expansions,
        listed,
        _lock,
        options,
        ..
    } = prepared;
    // What can be checked before the first POST is checked before it: a summary that
    // cannot be written later would leave the run without its audit record.
    if let Some(json) = &config.summary_json {
        check_summary_path(json)?;
    }
    let ledger_err = |e: ledger::LedgerError| CommandError::Usage(e.to_string());
    let mut origins = tenants
        .iter()
        .filter_map(|t| t.ready.as_ref().ok().and_then(|(_, who)| who.as_ref()))
        .map(|who| Origin::new(who, config.settings.settle_window()));
    let origin = origins.next();
    let other_origins: Vec<Origin> = origins.collect();
    let begin = Begin {
        origin: origin.clone(),
        tenants: other_origins.clone(),
        ..begin_of(&job, options.clone())
    };
    let mut carried = (None, Vec::new());
    let mut whole_run = None;
    let (ledger, history) = match resumed {
        Some((ledger, Some(history))) => {
            // Each resume is on record: who continued the run, with which window.
            if let Some(origin) = &origin {
                ledger
                    .session(origin, &other_origins)
                    .map_err(|source| CommandError::Write {
                        what: "the run's ledger",
                        path: ledger.path().to_owned(),
                        source,
                    })?;
            }
            whole_run = Some(whole_run_of(&history, origin.as_ref()));
            carried = (history.paused_until, history.recent_sends.into());
            (ledger, history.rows)
        }
        Some((ledger, None)) => {
            ledger.begin(&begin).map_err(|source| CommandError::Write {
                what: "the run's ledger",
                path: ledger.path().to_owned(),
                source,
            })?;
            (ledger, Default::default())
        }
        None => (
            Ledger::create(&ledger::ledger_path(&path), &begin).map_err(ledger_err)?,
            Default::default(),
        ),
    };
    let ledger = Arc::new(ledger);
    // Each user row's devices, on record before any of them is acted on.
    let mut new_expansions: Vec<(&RowKey, &expand::Expansion)> =
        expansions.iter().filter(|(_, e)| !e.recorded).collect();
    new_expansions.sort_by_key(|(k, _)| **k);
    for (key, e) in new_expansions {
        if let expand::Expanded::Devices(ids) = &e.expanded {
            ledger
                .expand(*key, &e.label, ids)
                .map_err(|source| CommandError::Write {
                    what: "the run's ledger",
                    path: ledger.path().to_owned(),
                    source,
                })?;
        }
    }
    // The report is a view of the plan and the ledger: a resumed run writes it anew.
    // An xlsx report's rows go to its CSV companion as they arrive; the workbook is
    // written from them at the end.
    let lines = match config.format {
        ReportFormat::Xlsx => crate::report::companion_csv(&path),
        _ => path.clone(),
    };
    let writer = ReportWriter::create(&lines, config.format, config.bom).map_err(|source| {
        CommandError::Write {
            what: "the report",
            path: lines.clone(),
            source,
        }
    })?;
    let fleet = Arc::new(Fleet::new(tenants, many, |pacer, who| {
        Engine::on(pacer)
            .with_ledger(ledger.clone())
            .reset_again(config.reset_again)
            .in_tenant(who)
    }));
    // A pause the interrupted run was honouring, and its last sends, still hold: in
    // every tenant (the ledger keeps one record of them; waiting is the safe side).
    for engine in fleet.engines() {
        engine.carry_over(carried.0, &carried.1);
    }
    for (tenant, devices) in listed {
        if let Some(engine) = fleet.engine_of(&tenant) {
            engine.remember_listed(devices);
        }
    }
    for (key, h) in &history {
        if let Some(claim) = &h.claim
            && let Some(engine) = fleet.engine_of(&claim.report.tenant)
        {
            engine.restore_claim(&claim.device, &claim.action, *key, &claim.report.source);
        }
    }
    let inventory = match config.lookup_via {
        LookupVia::Auto => counts.lookups >= INVENTORY_THRESHOLD,
        LookupVia::Inventory => counts.lookups > 0,
        LookupVia::Filter => false,
    };
    if inventory {
        for member in &fleet.members {
            let Some(engine) = &member.engine else {
                continue;
            };
            let tenant = if many {
                format!(" {}", member.label)
            } else {
                String::new()
            };
            match engine.read_inventory().await {
                Ok((devices, pages)) => tracing::info!(
                    "read the tenant{tenant}'s {devices} managed devices in {pages} pages: lookups join locally",
                ),
                Err(why) => tracing::warn!(
                    "reading the tenant{tenant}'s managed devices failed ({why}); each row is looked up by filter"
                ),
            }
        }
    }
    let stop = fleet.clone();
    let signals = tokio::spawn(async move {
        shutdown.await;
        tracing::warn!(
            "interrupted: finishing the devices in flight (a lost answer is settled first); interrupt again to exit at once"
        );
        stop.abort_all(AbortReason::Interrupted);
    });

    let (row_tx, row_rx) = mpsc::channel::<Finished>(1024);
    let waits = fleet.clone();
    // A run of other actions than passcode resets shows a rate of actions.
    let actions = !counts.passcodes_only();
    let progress = progress::Progress::new(
        config.interactive,
        counts.devices,
        config.settings.write_rate * fleet.engines().count().max(1) as f64,
        Arc::new(move || waits.waiting()),
        actions,
    );
    // An xlsx report's rows wait for the workbook on disk, not in memory (a million
    // rows would take gigabytes): JSON Lines in a private temporary file, read back in
    // input order at the end. Not the CSV companion: it defuses formula-like cells with
    // a quote, and the workbook shows them as they are (as text).
    let spill = match config.format {
        ReportFormat::Xlsx => Some(RowSpill::create().map_err(|source| CommandError::Write {
            what: "the temporary rows of the xlsx report",
            path: std::env::temp_dir(),
            source,
        })?),
        _ => None,
    };
    let collector = tokio::spawn(collect(
        writer,
        row_rx,
        progress.clone(),
        fleet.clone(),
        lines.clone(),
        spill,
    ));

    // The second pass over the same copy: planning is a pure function of its bytes and
    // the options, so it yields exactly the rows the confirmation counted.
    // A job with actions on users is read twice: the users' actions first, then,
    // once every one of them has ended, the devices' (the runbook's order: revoke the
    // sessions, then lock or reset). Keys never meet across the two (they hold the
    // action's family), so two planners plan exactly what one would.
    let phases: Vec<Option<bool>> = if counts.user_actions > 0 {
        vec![Some(true), Some(false)]
    } else {
        vec![None]
    };
    // One lane per tenant (issue 22): its own reader over the job's copy, its own
    // dispatcher and workers, so that a tenant throttled or paused never holds up the
    // rows of another. Each lane plans every row (planning is a pure function of the
    // copy, so every lane plans the same) and acts on the rows of its own tenant; rows
    // that go to no tenant are the first lane's. A run of one tenant has one lane.
    let lanes = fleet.engines().count().max(1);
    let history = Arc::new(std::sync::Mutex::new(history));
    let expansions = Arc::new(std::sync::Mutex::new(std::mem::take(&mut expansions)));
    let mut readers = Vec::with_capacity(lanes);
    let mut dispatchers = tokio::task::JoinSet::new();
    for lane in 0..lanes {
        let mut jobs_by_phase = Vec::with_capacity(phases.len());
        for _ in &phases {
            jobs_by_phase.push(job.open()?);
        }
        let (plan_tx, plan_rx) = mpsc::channel::<Planned>(256);
        let (phases, options) = (phases.clone(), options.clone());
        readers.push(std::thread::spawn(move || {
            let mut files = Vec::new();
            for (phase, jobs) in phases.into_iter().zip(jobs_by_phase) {
                let mut planner = Planner::new(options.clone()).users_first(phase);
                files = assess_all(jobs, &mut planner, &mut |file, a| {
                    // The receiver only goes away when the run is over.
                    let _ = plan_tx.blocking_send(Planned::Row(file, a));
                })?;
                if phase == Some(true) {
                    let _ = plan_tx.blocking_send(Planned::UsersDone);
                }
            }
            Ok::<_, crate::job::JobError>(files)
        }));
        let lane = Lane {
            lane,
            fleet: fleet.clone(),
            ledger: ledger.clone(),
            rows: row_tx.clone(),
            on_done: on_done.clone(),
            history: history.clone(),
            expansions: expansions.clone(),
            concurrency: config.settings.concurrency,
        };
        dispatchers.spawn(dispatch(lane, plan_rx));
    }
    while let Some(ended) = dispatchers.join_next().await {
        if ended.is_err() {
            fleet.abort_all(AbortReason::Unrecorded(
                "a dispatcher stopped unexpectedly (the ledger holds every send)".into(),
            ));
        }
    }
    drop(row_tx);
    signals.abort();
    // Resets may have been sent by now: whatever fails here is an abort (exit 3, the
    // ledger holds every send for `--resume`), never a usage error (exit 2). Every lane
    // read the same files: the first's are the summary's.
    let mut read = readers.into_iter().map(|r| r.join()).collect::<Vec<_>>();
    let first = match read.iter().position(|r| !matches!(r, Ok(Ok(_)))) {
        Some(failed) => read.swap_remove(failed),
        None => read.swap_remove(0),
    };
    let files = match first {
        Ok(Ok(files)) => files,
        Ok(Err(e)) => {
            fleet.abort_all(AbortReason::Unrecorded(format!(
                "the job could not be read again from the run's copy ({e})"
            )));
            Vec::new()
        }
        Err(_) => {
            fleet.abort_all(AbortReason::Unrecorded(
                "the job reader stopped unexpectedly".into(),
            ));
            Vec::new()
        }
    };
    let collected = collector.await.unwrap_or_else(|_| {
        fleet.abort_all(AbortReason::Unrecorded(
            "the report writer stopped unexpectedly (the ledger holds every send)".into(),
        ));
        Collected {
            summary: Summary::new("run"),
            succeeded_now: 0,
            writer: None,
            spill: None,
            by_tenant: BTreeMap::new(),
        }
    });
    progress.finish();
    if let Err(e) = ledger.sync() {
        fleet.abort_all(ledger.unwritable(&e));
    }
    // The final report: in input order, renamed over the one written as outcomes
    // arrived (which stays whole until then). A report that could not be written
    // whole is left as it is: `--resume` writes it from the ledger.
    let mut ordered = None;
    if let Some(writer) = collected.writer {
        match writer.finish_in_order() {
            Ok(_) => ordered = collected.spill,
            Err(e) => fleet.abort_all(AbortReason::Unrecorded(format!(
                "the report {} cannot be written in input order ({e})",
                lines.display()
            ))),
        }
    }

    let mut summary = collected.summary;
    if many {
        summary.tenants = fleet.summaries(collected.by_tenant);
    }
    summary.whole_run = whole_run.map(|mut w: crate::report::WholeRun| {
        w.posts += fleet.sum(|c| &c.posts);
        w
    });
    summary.files = files;
    summary.signed_in = signed_in;
    summary.sign_in_refused = matches!(fleet.abort_reason(), Some(AbortReason::Authentication(_)));
    summary.expansions = counts.expansions.iter().cloned().collect();
    summary.report = Some(path.clone());
    let elapsed = started.elapsed();
    let mut stats = RunStats {
        requests: fleet.sum(|c| &c.requests),
        posts: fleet.sum(|c| &c.posts),
        throttled: fleet.sum(|c| &c.throttled),
        confirmed_by_action_results: fleet.sum(|c| &c.confirmed_by_results),
        // This run's resets over this run's time: a resumed run does not count the
        // resets of the run it continues.
        resets_per_second: collected.succeeded_now as f64 / elapsed.as_secs_f64().max(1e-9),
        aborted: None,
    };
    if let Some(spill) = ordered {
        stats.aborted = fleet.abort_reason().as_ref().map(AbortReason::sentence);
        summary.run = Some(stats.clone());
        let ready = summary.clone().with_elapsed(elapsed);
        let facts = SheetFacts {
            started: started_at,
            ended: SystemTime::now(),
            identity: summary
                .signed_in
                .as_ref()
                .map(crate::graph::SignedIn::pairs)
                .unwrap_or_default(),
        };
        if let Err(e) = spill.write_workbook(&path, &ready, &facts) {
            fleet.abort_all(AbortReason::Unrecorded(format!(
                "the report {} cannot be written ({e}); its rows are in {}",
                path.display(),
                lines.display()
            )));
        }
    }
    if let Some(json_path) = &config.summary_json {
        stats.aborted = fleet.abort_reason().as_ref().map(AbortReason::sentence);
        summary.run = Some(stats.clone());
        let ready = summary.clone().with_elapsed(elapsed);
        if let Err(e) = write_summary_json(json_path, &ready) {
            fleet.abort_all(AbortReason::Unrecorded(e.to_string()));
        }
    }
    // The record closes in order: a ledger without this line was killed, or cut. Then
    // the lock goes, whoever still holds the ledger (the follow's pause hook).
    if let Err(e) = ledger.end(stats.posts) {
        fleet.abort_all(ledger.unwritable(&e));
    }
    ledger.close();
    let aborted = fleet.abort_reason();
    stats.aborted = aborted.as_ref().map(AbortReason::sentence);
    summary.run = Some(stats);
    Ok(RunOutcome {
        summary: summary.with_elapsed(elapsed),
        aborted,
    })
}

/// What one lane's dispatcher shares with the run.
struct Lane<G> {
    /// Its index among the run's tenants signed in to: it acts on their rows.
    lane: usize,
    fleet: Arc<Fleet<G>>,
    ledger: Arc<Ledger>,
    rows: mpsc::Sender<Finished>,
    on_done: Option<OnDone>,
    /// What the ledger of a resumed run says of each row, taken by the lane that acts
    /// on it.
    history: Arc<std::sync::Mutex<HashMap<RowKey, ledger::RowHistory>>>,
    expansions: Arc<std::sync::Mutex<HashMap<RowKey, expand::Expansion>>>,
    concurrency: usize,
}

/// One lane's dispatcher: a device whose task panics (a bug) still ends in a report
/// row, `failed`, with its sends left open for `--resume` to settle.
async fn dispatch<G: GraphApi>(ctx: Lane<G>, mut plan_rx: mpsc::Receiver<Planned>) {
    let Lane {
        lane,
        fleet,
        ledger,
        rows: row_tx,
        on_done,
        history,
        expansions,
        concurrency,
    } = ctx;
    let mut workers: Workers<Option<(RowKey, Done)>> = Workers::new(concurrency);
    while let Some(planned) = plan_rx.recv().await {
        let (file, Assessment { row, work, step }) = match planned {
            Planned::Row(file, a) => (file, a),
            // Every user action has ended before the first device action leaves.
            Planned::UsersDone => {
                let ended = std::mem::replace(&mut workers, Workers::new(concurrency));
                for (key, done) in ended.finish().await.into_iter().flatten() {
                    finish_row(&fleet, &ledger, &row_tx, key, done, 0).await;
                }
                continue;
            }
        };
        // Another lane's row: that lane acts on it.
        let named = work.as_ref().and_then(|w| w.tenant.as_deref());
        if fleet.lane_of(named.unwrap_or(&row.tenant)) != lane {
            continue;
        }
        let key = RowKey::at(file as u32, row.row, step);
        let Some(work) = work else {
            let _ = row_tx.send(Finished::decided(key, row)).await;
            continue;
        };
        // The engine of the row's tenant, or the row's end.
        let engine = match fleet.route(&row, &work) {
            Route::Engine(engine) => engine.clone(),
            Route::Ended(ended) => {
                let _ = row_tx.send(Finished::decided(key, *ended)).await;
                continue;
            }
        };
        // A user row becomes one row per device of the user (or one row saying why
        // there is none); every other row is itself.
        let items = match &work.identity {
            // A user action's user is the row's own: nothing to expand.
            crate::planner::Identity::User(_) if work.choice.family().on_users() => {
                vec![(key, row, work)]
            }
            crate::planner::Identity::User(_)
            | crate::planner::Identity::Group(_)
            | crate::planner::Identity::Filter(_) => {
                let expansion = expansions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
                match expansion {
                    Some(e) => match e.expanded {
                        expand::Expanded::Devices(ids) => {
                            device_rows(key, &row, &work, &e.label, e.user.as_deref(), &ids)
                        }
                        expand::Expanded::Unresolved(failure) => {
                            let mut row = row;
                            row.outcome = failure.outcome;
                            row.reason = failure.reason.into();
                            row.detail = failure.detail.into();
                            if let Some(user) =
                                e.user.filter(|_| row.user_principal_name.is_empty())
                            {
                                row.user_principal_name = user;
                            }
                            let _ = row_tx.send(Finished::decided(key, row)).await;
                            continue;
                        }
                    },
                    // Not expanded (a caller that skipped `expand`): nothing is sent for it.
                    None => {
                        let row = engine.not_attempted(row);
                        let _ = row_tx.send(Finished::decided(key, row)).await;
                        continue;
                    }
                }
            }
            _ => vec![(key, row, work)],
        };
        for (key, row, work) in items {
            let before = history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            let prior = match before {
                Some(h) => match h.done {
                    Some(done) => {
                        let _ = row_tx.send(Finished::decided(key, done)).await;
                        continue;
                    }
                    None => Prior {
                        claim: h.claim,
                        open: h.open,
                        sends: h.sends,
                    },
                },
                None => Prior::default(),
            };
            if engine.is_aborted() {
                let row = engine.not_attempted(row);
                let _ = row_tx.send(Finished::decided(key, row)).await;
                continue;
            }
            let (task_engine, task_fleet, task_ledger, task_rows, task_done) = (
                engine.clone(),
                fleet.clone(),
                ledger.clone(),
                row_tx.clone(),
                on_done.clone(),
            );
            let fallback = row.clone();
            let device = async move {
                let (engine, ledger, row_tx) = (task_engine, task_ledger, task_rows);
                let earlier = prior.sends;
                let done = engine.process(key, row, work, prior).await;
                if let Some(told) = task_done.filter(|_| done.row.attempts > earlier) {
                    told(&done.row);
                }
                finish_row(&task_fleet, &ledger, &row_tx, key, done, earlier).await;
                None
            };
            let lost = workers
                .spawn(device, move |how| Some((key, lost_device(fallback, how))))
                .await;
            for (key, done) in lost.into_iter().flatten() {
                finish_row(&fleet, &ledger, &row_tx, key, done, 0).await;
            }
        }
    }
    for (key, done) in workers.finish().await.into_iter().flatten() {
        finish_row(&fleet, &ledger, &row_tx, key, done, 0).await;
    }
}

/// `--user` (or `--group`) values as a job file: one column named `header`, a value a
/// row.
pub fn users_job(header: &str, users: &[String]) -> String {
    let mut text = format!("{header}\n");
    for user in users {
        // A value with a quote or comma is quoted, so that it stays one value (and is
        // then refused as no UPN, naming it).
        if user.contains([',', '"', '\n', '\r']) {
            text.push_str(&format!("\"{}\"\n", user.replace('"', "\"\"")));
        } else {
            text.push_str(user.trim());
            text.push('\n');
        }
    }
    text
}

/// The rows a user row expands to: one per device, numbered from 1 in `sub`, each
/// keeping the user row's source and row number and naming the user.
pub(super) fn device_rows(
    key: RowKey,
    row: &ReportRow,
    work: &crate::planner::Work,
    label: &str,
    user: Option<&str>,
    ids: &[String],
) -> Vec<(RowKey, ReportRow, crate::planner::Work)> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let mut device = row.clone();
            device.device_id = id.clone();
            if let Some(user) = user.filter(|_| device.user_principal_name.is_empty()) {
                device.user_principal_name = user.to_owned();
            }
            let work = if work.choice.family().on_users() {
                // A group's user, for an action on users: the row names the user.
                device.device_id = String::new();
                device.user_principal_name = id.clone();
                device.detail = format!("user {} of {} of the {label}", i + 1, ids.len()).into();
                crate::planner::Work {
                    identity: crate::planner::Identity::User(id.clone()),
                    ..work.clone()
                }
            } else {
                device.detail = format!("device {} of {} of the {label}", i + 1, ids.len()).into();
                crate::planner::Work {
                    identity: crate::planner::Identity::Id(id.clone()),
                    choice: work.choice,
                    action: None,
                    platform: None,
                    lookup: true,
                    id_header: None,
                    tenant: work.tenant.clone(),
                }
            };
            let key = RowKey {
                sub: i as u32 + 1,
                ..key
            };
            (key, device, work)
        })
        .collect()
}

/// A device's row once it is done: settled in the ledger, then to the report.
/// `earlier`: the sends earlier runs made for it (a row sent now has more).
async fn finish_row<G: GraphApi>(
    fleet: &Fleet<G>,
    ledger: &Ledger,
    rows: &mpsc::Sender<Finished>,
    key: RowKey,
    done: Done,
    earlier: u32,
) {
    if let Err(e) = ledger.settled(key, done.fate, &done.row) {
        fleet.abort_all(ledger.unwritable(&e));
    }
    let _ = rows
        .send(Finished {
            key,
            sent_now: done.row.attempts > earlier,
            row: done.row,
            acted: true,
        })
        .await;
}

/// The row of a device whose task panicked or was cancelled (a bug): `failed`, and
/// its fate unknown, since a reset may have left, so `--resume` settles it through
/// deviceActionResults before anything is sent.
fn lost_device(mut row: ReportRow, how: Lost) -> Done {
    row.outcome = Outcome::Failed;
    row.reason = "internal_error".into();
    row.detail = format!(
        "intune-reset failed while handling this device ({}); a reset may have been sent: `--resume` settles it through deviceActionResults before anything is sent",
        how.as_str()
    )
    .into();
    Done {
        row,
        fate: Fate::Unknown,
    }
}

/// The rows of an xlsx report on their way to the workbook: JSON Lines in a private
/// temporary file (removed when dropped), keyed so they are read back in input order.
struct RowSpill {
    writer: ReportWriter,
    /// Deletes the file when the spill is dropped, whatever happened.
    file: tempfile::TempPath,
}

impl RowSpill {
    fn create() -> std::io::Result<RowSpill> {
        let file = tempfile::Builder::new()
            .prefix("intune-reset-rows-")
            .suffix(".jsonl")
            .tempfile()?
            .into_temp_path();
        let writer = ReportWriter::create(&file, ReportFormat::Jsonl, false)?;
        Ok(RowSpill { writer, file })
    }

    fn push(&mut self, key: RowKey, row: &ReportRow) -> std::io::Result<()> {
        self.writer.write_keyed(key.file, key.step, row)
    }

    /// The xlsx report, from the rows in input order, streamed.
    fn write_workbook(
        self,
        path: &Path,
        summary: &Summary,
        facts: &SheetFacts,
    ) -> std::io::Result<()> {
        let RowSpill { writer, file } = self;
        writer.finish_in_order()?;
        let rows = crate::report::RunReport {
            path: file.to_path_buf(),
            format: ReportFormat::Jsonl,
        };
        let mut workbook = XlsxReport::new();
        rows.each(&mut |row| -> Result<bool, SpillError> {
            workbook.push(&row)?;
            Ok(true)
        })
        .map_err(|e| match e {
            SpillError::Io(e) => e,
            SpillError::Read(e) => std::io::Error::other(e),
        })?;
        workbook.save(path, summary, facts)
    }
}

/// Reading the spilled rows back, or writing them into the workbook, failed.
#[derive(Debug, thiserror::Error)]
enum SpillError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Read(#[from] crate::report::ReportError),
}

/// What the report writer saw.
struct Collected {
    summary: Summary,
    /// Succeeded devices whose reset this run sent.
    succeeded_now: u64,
    /// The report, every row written (`None` when a write failed).
    writer: Option<ReportWriter>,
    /// The rows of an xlsx report, on their way to the workbook (`None` for other
    /// formats, or once a row could not be kept).
    spill: Option<RowSpill>,
    /// A run across several tenants: each tenant's rows, by outcome.
    by_tenant: BTreeMap<String, BTreeMap<Outcome, u64>>,
}

/// The one owner of the report file: writes and flushes each row as it arrives. A
/// failed write stops the run's sending (every row is still in the ledger, so a resume
/// writes the report whole).
async fn collect<G: GraphApi>(
    mut writer: ReportWriter,
    mut rows: mpsc::Receiver<Finished>,
    progress: progress::Progress,
    fleet: Arc<Fleet<G>>,
    path: PathBuf,
    mut spill: Option<RowSpill>,
) -> Collected {
    let mut collected = Collected {
        summary: Summary::new("run"),
        succeeded_now: 0,
        writer: None,
        spill: None,
        by_tenant: BTreeMap::new(),
    };
    let mut writable = true;
    while let Some(Finished {
        key,
        row,
        acted,
        sent_now,
    }) = rows.recv().await
    {
        collected.summary.count(&row);
        if let Some(label) = fleet.label_of(&row.tenant) {
            *collected
                .by_tenant
                .entry(label.to_owned())
                .or_default()
                .entry(row.outcome)
                .or_default() += 1;
        }
        if acted {
            progress.device_done(&row, fleet.sum(|c| &c.throttled));
        }
        if sent_now && row.outcome == Outcome::Succeeded {
            collected.succeeded_now += 1;
        }
        if writable
            && let Err(e) = writer
                .write_keyed(key.file, key.step, &row)
                .and_then(|_| writer.flush())
        {
            writable = false;
            progress.println(&format!("cannot write the report: {e}"));
            fleet.abort_all(AbortReason::Unrecorded(format!(
                "the report {} cannot be written ({e})",
                path.display()
            )));
        }
        if let Some(kept) = &mut spill
            && let Err(e) = kept.push(key, &row)
        {
            spill = None;
            progress.println(&format!("cannot keep the xlsx report's rows: {e}"));
            fleet.abort_all(AbortReason::Unrecorded(format!(
                "the xlsx report's rows cannot be kept in the temporary folder ({e}); they are in {}",
                path.display()
            )));
        }
    }
    if writable {
        collected.writer = Some(writer);
        collected.spill = spill;
    }
    collected
}

/// What a resumed run's ledger says of the run as a whole, this session's start
/// (`now`, who signed in) included; its POSTs are added when it ends.
fn whole_run_of(history: &History, now: Option<&Origin>) -> crate::report::WholeRun {
    let who = |o: Option<&Origin>| {
        o.map(Origin::describe)
            .unwrap_or_else(|| "an identity its ledger does not record".into())
    };
    let mut sessions = vec![format!(
        "{} by {}",
        history.started_at,
        who(history.begin.origin.as_ref())
    )];
    sessions.extend(
        history
            .session_starts
            .iter()
            .zip(&history.sessions)
            .map(|(at, o)| format!("{at} by {}", who(Some(o)))),
    );
    sessions.push(format!(
        "{} by {}",
        crate::ledger::timestamp(SystemTime::now()),
        who(now)
    ));
    crate::report::WholeRun {
        started_at: history.started_at.clone(),
        sessions,
        posts: history.rows.values().map(|h| u64::from(h.sends)).sum(),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::graph::{
        CallError, Connection, DeviceActions, DevicePage, ManagedDevice, PageRequest, Reply,
    };
    use crate::planner::{Identity, Work};
    use crate::rules::{Action, ActionChoice, Platform};

    /// A Graph whose every call is a bug in this process: it panics.
    #[derive(Clone)]
    struct Panicking;

    impl GraphApi for Panicking {
        async fn get_device(
            &self,
            _: &str,
            _: &[&str],
            _: Connection,
        ) -> Result<Reply<ManagedDevice>, CallError> {
            panic!("a bug while reading a device")
        }
        async fn list_devices_page(
            &self,
            _: PageRequest,
            _: Connection,
        ) -> Result<Reply<DevicePage>, CallError> {
            panic!("a bug while listing devices")
        }
        async fn device_action(
            &self,
            _: &str,
            _: crate::rules::Family,
            _: Connection,
        ) -> Result<Reply<()>, CallError> {
            panic!("a bug while sending a reset")
        }
        async fn action_results(
            &self,
            _: &str,
            _: Connection,
        ) -> Result<Reply<DeviceActions>, CallError> {
            panic!("a bug while reading deviceActionResults")
        }
    }

    #[tokio::test]
    async fn regression_9_a_device_task_that_panics_keeps_its_row_as_failed() {
        let engine = Arc::new(Engine::new(Panicking, Settings::default().unlimited()));
        let id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        let row = ReportRow {
            source: "job.csv".into(),
            row: 2,
            device_id: id.into(),
            device_name: "iPhone".into(),
            serial_number: String::new(),
            user_principal_name: String::new(),
            operating_system: "iOS".into(),
            os_version: "17.5".into(),
            platform: Cow::Borrowed("ios"),
            action: Cow::Borrowed("remove-passcode"),
            outcome: Outcome::Planned,
            reason: Cow::Borrowed(""),
            detail: Cow::Borrowed(""),
            http_status: None,
            attempts: 0,
            request_id: String::new(),
            client_request_id: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            tenant: String::new(),
        };
        let work = Work {
            identity: Identity::Id(id.into()),
            choice: ActionChoice::Auto,
            action: Some(Action::RemovePasscode),
            platform: Some(Platform::Ios),
            lookup: false,
            id_header: None,
            tenant: None,
        };
        let key = RowKey::new(0, 2);
        let mut workers = Workers::new(4);
        let fallback = row.clone();
        let mut done = workers
            .spawn(
                async move { engine.process(key, row, work, Prior::default()).await },
                move |how| lost_device(fallback, how),
            )
            .await;
        done.extend(workers.finish().await);
        let [done] = <[Done; 1]>::try_from(done).unwrap_or_else(|_| panic!("one row"));
        assert_eq!(done.row.outcome, Outcome::Failed);
        assert_eq!(done.row.reason, "internal_error");
        assert_eq!(done.row.row, 2, "the row keeps its place");
        assert_eq!(
            done.fate,
            Fate::Unknown,
            "a reset may have left: settled on resume"
        );
    }

    /// Issue 22, first piece: once sign-in says which tenant the run is in, the
    /// question counts that tenant's rows as to send and the others' as not sent here.
    #[test]
    fn regression_22_the_question_counts_only_the_signed_in_tenants_rows() {
        let mut counts = PlanCounts {
            devices: 5,
            per_platform: [("ios (remote-lock)".to_string(), 1)].into(),
            ..PlanCounts::default()
        };
        counts.by_tenant.insert(
            "aaaaaaaa-0000-4000-8000-000000000001".into(),
            [("ios (remote-lock)".to_string(), 3)].into(),
        );
        counts.by_tenant.insert(
            "fabrikam.onmicrosoft.com".into(),
            [(TO_BE_LOOKED_UP.to_string(), 1)].into(),
        );
        counts.in_tenant("AAAAAAAA-0000-4000-8000-000000000001");
        assert_eq!(counts.per_platform["ios (remote-lock)"], 4);
        assert_eq!(counts.devices, 4);
        assert_eq!(
            counts.not_sent["ineligible (other_tenant: fabrikam.onmicrosoft.com)"],
            1
        );
        assert!(counts.by_tenant.is_empty());
    }
}
