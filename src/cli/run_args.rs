//! `run` arguments: clap types turned into one [`RunConfig`].

use std::path::{Path, PathBuf};

use crate::error::CommandError;
use crate::planner::{PlanOptions, TenantScope};
use crate::run::{LookupVia, RunConfig, Settings};
use crate::tenants::{TenantEntry, add_tenant, read_tenants_file, tenant_name};

use super::run_cmd::Target;

use super::{InputArgs, LookupArg, ReportArgs, TenantArgs, parse_duration};
use crate::rules::Actions;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum LookupViaArg {
    Auto,
    Inventory,
    Filter,
}

impl From<LookupViaArg> for LookupVia {
    fn from(a: LookupViaArg) -> LookupVia {
        match a {
            LookupViaArg::Auto => LookupVia::Auto,
            LookupViaArg::Inventory => LookupVia::Inventory,
            LookupViaArg::Filter => LookupVia::Filter,
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(mut_arg("tenant", super::several_tenants))]
pub(super) struct RunArgs {
    /// Job files, as for `plan`.
    #[arg(required_unless_present_any = ["user", "users", "group", "where_", "all_devices"], value_name = "FILE")]
    files: Vec<PathBuf>,
    /// A user (UPN or object id) whose Intune devices the run acts on, each judged by
    /// its live facts; repeatable. Reported under the source `(--user)`.
    #[arg(long, value_name = "UPN")]
    user: Vec<String>,
    /// A file of users (a userPrincipalName column, or a list of UPNs without a
    /// header), read like any job file; repeatable.
    #[arg(long, value_name = "FILE")]
    users: Vec<PathBuf>,
    /// An Entra group (display name or object id): the devices of its transitive
    /// members (users' devices, member devices); repeatable. Needs GroupMember.Read.All.
    #[arg(long, value_name = "NAME_OR_ID")]
    group: Vec<String>,
    /// The tenant's devices an OData filter matches, e.g. "operatingSystem eq 'iOS' and
    /// managedDeviceOwnerType eq 'company'"; every returned device is checked against
    /// it again (Graph ignores filters it does not support). Needs --max-devices or a
    /// confirmation at a terminal.
    #[arg(long = "where", value_name = "ODATA", conflicts_with = "all_devices")]
    where_: Option<String>,
    /// Every managed device of the tenant, each judged by the rules. Needs
    /// --max-devices or a confirmation at a terminal.
    #[arg(long)]
    all_devices: bool,
    /// The action: remove-passcode, reset-passcode, reset-pin or auto, remote-lock or
    /// rotate-bitlocker-keys; several with commas (remote-lock,rotate-bitlocker-keys),
    /// each sent once per device. Required unless every job file names one (a job
    /// document's "action", or an `action` column); a row's own value wins. Rows left
    /// without any are invalid, never defaulted. Wipe, retire and delete are not offered
    /// (it says why).
    #[arg(long, value_parser = super::parse_action)]
    action: Option<Actions>,
    /// When to read a device's facts from Graph first.
    #[arg(long, value_enum, default_value_t = LookupArg::Auto)]
    lookup: LookupArg,
    /// How rows that need a lookup find their device: `inventory` reads the tenant's
    /// managed devices once (1000 per request) and joins locally; `filter` sends one
    /// $filter per row; `auto` reads the inventory from 100 lookups on.
    #[arg(long, value_enum, default_value_t = LookupViaArg::Auto)]
    lookup_via: LookupViaArg,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: ReportArgs,
    /// After the last POST, follow the resets through deviceActionResults until none is
    /// pending or this time is up (e.g. 10m), as `status --wait` does; the run report is
    /// rewritten with each device's action state; the exit code is then status's.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    follow: Option<std::time::Duration>,
    /// With --follow: write generated passcodes to this new file (mode 0600; refused if
    /// it exists, before anything is sent). They are written nowhere else.
    #[arg(long, value_name = "FILE", requires = "follow")]
    passcodes: Option<PathBuf>,
    /// With --follow: then reconcile the run with Intune's audit trail (`audit
    /// REPORT`), writing the audit report beside the run report.
    #[arg(long, requires = "follow")]
    audit: bool,
    /// Act without asking (required when there is no terminal, as under cron).
    #[arg(long)]
    yes: bool,
    /// Refuse to act on more than N devices.
    #[arg(long, value_name = "N")]
    max_devices: Option<u64>,
    #[command(flatten)]
    tenant: TenantArgs,
    /// A file of the tenants to act in: one tenant id or domain a line, optionally
    /// followed by its own client id (after a comma, semicolon, tab or spaces); `#`
    /// comments. Several tenants: the run signs in to each (see README, 'Several
    /// tenants'); every row must then name its tenant.
    #[arg(long, value_name = "FILE")]
    tenants: Option<PathBuf>,
    /// resetPasscode calls per second at most [default: 9.9; with the 200-per-20-s
    /// window this sustains about 9.75/s]
    #[arg(long, value_name = "PER_SECOND")]
    write_rate: Option<f64>,
    /// Reads (lookups, verifications) per second at most [default: 100]
    #[arg(long, value_name = "PER_SECOND")]
    read_rate: Option<f64>,
    /// Devices in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Requests per device call before giving up (429s count).
    #[arg(long, default_value_t = 10)]
    max_attempts: u32,
    /// Per-request timeout, e.g. 30s, 500ms. A reset whose answer is lost is settled
    /// through deviceActionResults no sooner than twice this after it was sent
    /// [default: 30s; 5s with --simulate, whose tenant answers within 120 ms]
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Rehearse against an in-process simulated tenant holding the job's devices
    /// (Intune's limits, realistic latency); no real tenant is touched.
    #[arg(long, conflicts_with_all = ["auth", "tenant", "client_id", "managed_identity_client_id", "graph_url", "authority_url"])]
    simulate: bool,
    /// Lift the client-side pacing (the limiters stay off): for benchmarks against a
    /// local simulator only. Refused unless --graph-url is a loopback address.
    #[arg(long, requires = "graph_url")]
    unthrottled: bool,
    /// Continue the run recorded in --report: final rows are kept, rows in flight when
    /// it stopped are checked in Graph before anything is sent again.
    #[arg(long, requires = "report")]
    resume: bool,
    /// Lock file that keeps two runs of the same job apart
    /// [default: <report folder>/<first job file name>.lock]
    #[arg(long, value_name = "PATH")]
    lock: Option<PathBuf>,
    /// When another run holds this job's lock, or runs on the same tenant as the same
    /// app on this machine, wait for it to finish instead of exiting 2
    #[arg(long)]
    wait_for_lock: bool,
    /// Reset devices whose last reset Intune shows done within the last 24 hours too
    /// (without it they are skipped as reset_recently_done). A reset still pending or
    /// active in Intune is never sent again, with or without this flag, and neither is a
    /// row a report read as a job says was reset (clear its outcome cell to reset it).
    #[arg(long)]
    reset_again: bool,
    /// With --simulate: the rehearsal's tenant holds these files' devices (an export of
    /// the tenant's devices, with their primary users) instead of the job's. Needed to
    /// rehearse --user, --users, --group, --where: a user it does not name is
    /// user_not_found, as in the tenant; each group stands for all of its devices.
    #[arg(long, value_name = "FILE", requires = "simulate")]
    simulate_inventory: Vec<PathBuf>,
    /// Seed of the simulated tenant (with --simulate).
    #[arg(long, default_value_t = 1, requires = "simulate")]
    simulate_seed: u64,
}

/// Graph answers within seconds; a request still open after this is given up.
const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The simulated tenant answers within 120 ms, so a rehearsal settles a lost answer in
/// 10 s rather than a minute.
const SIMULATED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl RunArgs {
    /// The words of this invocation that its follow-ups repeat: everything `--resume`
    /// checks against the ledger (the job files and target flags in their order,
    /// `--action`, `--lookup`, `--sheet`, `--encoding`), the sign-in, and the pacing
    /// and guards given. Not `--report` (the next steps name the run's own), nor
    /// `--follow`/`--passcodes` (the passcodes file exists by then) or `--summary-json`.
    pub(super) fn rerun(&self) -> crate::report::Rerun {
        let mut w: Vec<String> = Vec::new();
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        w.extend(self.files.iter().map(path));
        for file in &self.users {
            w.extend(["--users".into(), path(file)]);
        }
        for (flag, values) in [("--user", &self.user), ("--group", &self.group)] {
            for v in values {
                w.extend([flag.to_owned(), v.clone()]);
            }
        }
        if let Some(expr) = &self.where_ {
            w.extend(["--where".into(), expr.clone()]);
        }
        let mut flag = |on: bool, name: &str| {
            if on {
                w.push(name.to_owned());
            }
        };
        flag(self.all_devices, "--all-devices");
        flag(self.yes, "--yes");
        flag(self.output.no_bom, "--no-bom");
        flag(self.reset_again, "--reset-again");
        flag(self.simulate, "--simulate");
        let mut valued = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                w.extend([name.to_owned(), value]);
            }
        };
        valued("--action", self.action.as_ref().map(Actions::as_text));
        valued(
            "--lookup",
            Some(super::value_name(self.lookup)).filter(|v| v != "auto"),
        );
        valued(
            "--lookup-via",
            Some(super::value_name(self.lookup_via)).filter(|v| v != "auto"),
        );
        valued("--sheet", self.input.sheet.clone());
        valued(
            "--encoding",
            self.input.encoding.map(|e| e.label().to_owned()),
        );
        valued("--format", self.output.format.map(super::value_name));
        valued("--max-devices", self.max_devices.map(|n| n.to_string()));
        valued("--write-rate", self.write_rate.map(|r| r.to_string()));
        valued("--read-rate", self.read_rate.map(|r| r.to_string()));
        valued(
            "--concurrency",
            Some(self.concurrency)
                .filter(|n| *n != 16)
                .map(|n| n.to_string()),
        );
        valued(
            "--max-attempts",
            Some(self.max_attempts)
                .filter(|n| *n != 10)
                .map(|n| n.to_string()),
        );
        valued(
            "--timeout",
            self.timeout
                .map(|t| humantime::format_duration(t).to_string()),
        );
        valued("--lock", self.lock.as_ref().map(path));
        valued(
            "--simulate-seed",
            Some(self.simulate_seed)
                .filter(|s| self.simulate && *s != 1)
                .map(|s| s.to_string()),
        );
        let mut sign_in = self.tenant.words();
        if let Some(file) = &self.tenants {
            sign_in.extend(["--tenants".into(), path(file)]);
        }
        w.extend(sign_in.iter().cloned());
        crate::report::Rerun {
            run: w,
            sign_in,
            simulated: self.simulate,
        }
    }

    /// `--follow`, `--passcodes` and `--audit`.
    pub(super) fn follow(&self) -> Option<super::run_cmd::Follow> {
        self.follow.map(|wait| super::run_cmd::Follow {
            wait,
            passcodes: self.passcodes.clone(),
            audit: self.audit,
        })
    }

    pub(super) fn into_config(
        self,
        interactive: bool,
    ) -> Result<(RunConfig, Target), CommandError> {
        for (flag, rate) in [
            ("--write-rate", self.write_rate),
            ("--read-rate", self.read_rate),
        ] {
            if let Some(r) = rate
                && !(r > 0.0 && r.is_finite())
            {
                return Err(CommandError::Usage(format!(
                    "{flag} must be a positive number"
                )));
            }
        }
        let mut settings = Settings {
            concurrency: self.concurrency.max(1),
            max_attempts: self.max_attempts.max(1),
            request_timeout: self.timeout.unwrap_or(if self.simulate {
                SIMULATED_TIMEOUT
            } else {
                DEFAULT_TIMEOUT
            }),
            ..Settings::default()
        };
        if let Some(r) = self.write_rate {
            settings.write_rate = r;
        }
        if let Some(r) = self.read_rate {
            settings.read_rate = r;
        }
        if self.unthrottled {
            let loopback = self
                .tenant
                .graph_url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .is_some_and(|u| crate::graph::cloud::is_loopback(&u));
            if !loopback {
                return Err(CommandError::Usage(
                    "--unthrottled is for a local simulator only: --graph-url must be a loopback address".into(),
                ));
            }
            settings = settings.unlimited();
        }
        let tenants = tenant_list(&self.tenant.tenant, self.tenants.as_deref())?;
        let target = if self.simulate {
            Target::Simulate {
                seed: self.simulate_seed,
                inventory: self.simulate_inventory.clone(),
            }
        } else {
            Target::Tenant(self.tenant.tenant())
        };
        let mut files = self.files;
        files.extend(self.users);
        let config = RunConfig {
            files,
            users: self.user,
            groups: self.group,
            filter: target_filter(self.where_.as_deref(), self.all_devices)?,
            options: PlanOptions {
                action: self.action.clone(),
                lookup: self.lookup.into(),
                tenants: TenantScope::of(&tenants),
            },
            tenants,
            read: self.input.read_options(),
            format: self.output.format(),
            bom: !self.output.no_bom,
            report: self.output.report,
            summary_json: self.output.summary_json,
            // Filled by `run_cmd` once the target is known.
            yes: self.yes,
            max_devices: self.max_devices,
            settings,
            interactive,
            resume: self.resume,
            lock: self.lock,
            wait_for_lock: self.wait_for_lock,
            passcodes: self.passcodes,
            lookup_via: self.lookup_via.into(),
            reset_again: self.reset_again,
        };
        Ok((config, target))
    }
}

/// The tenants a run spans: every `--tenant`, then `--tenants FILE`'s, each once. Empty
/// for at most one `--tenant` and no file: that tenant is the sign-in's, as ever.
pub(super) fn tenant_list(
    flags: &[String],
    file: Option<&Path>,
) -> Result<Vec<TenantEntry>, CommandError> {
    if file.is_none() && flags.len() <= 1 {
        return Ok(Vec::new());
    }
    let refused = |e| CommandError::Refused(Box::new(e));
    let mut list = Vec::new();
    for flag in flags {
        let Some(name) = tenant_name(flag) else {
            return Err(CommandError::Usage(format!(
                "--tenant '{flag}' is neither a tenant id (a GUID) nor a domain \
                 (contoso.onmicrosoft.com): a run across several tenants names each"
            )));
        };
        add_tenant(&mut list, TenantEntry::named(name), "--tenant", "--tenant").map_err(refused)?;
    }
    if let Some(file) = file {
        let shown = file.display().to_string();
        for entry in read_tenants_file(file).map_err(refused)? {
            add_tenant(&mut list, entry, "--tenant", &shown).map_err(refused)?;
        }
    }
    Ok(list)
}

/// `--where ODATA` or `--all-devices` (`*`), as a filter row; an expression the tool
/// cannot check is refused now, before anything is read.
pub(super) fn target_filter(
    where_: Option<&str>,
    all_devices: bool,
) -> Result<Option<String>, CommandError> {
    match (where_, all_devices) {
        (Some(expr), _) => {
            crate::graph::filter::parse(expr).map_err(CommandError::Usage)?;
            Ok(Some(expr.to_owned()))
        }
        (None, true) => Ok(Some("*".to_owned())),
        (None, false) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    const GUID: &str = "6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10";
    const APP: &str = "22222222-3333-4444-5555-666666666666";

    fn run_args(args: &[&str]) -> Result<RunArgs, String> {
        let words = ["intune-reset", "run", "job.csv", "--action", "auto"];
        let cli = super::super::Cli::try_parse_from(words.iter().chain(args))
            .map_err(|e| e.to_string())?;
        match cli.command {
            super::super::Command::Run(args) => Ok(*args),
            _ => unreachable!("a run"),
        }
    }

    fn config(args: &[&str]) -> Result<RunConfig, String> {
        let (config, _) = run_args(args)?
            .into_config(false)
            .map_err(|e| e.to_string())?;
        Ok(config)
    }

    fn names(config: &RunConfig) -> Vec<&str> {
        config.tenants.iter().map(|t| t.name.as_str()).collect()
    }

    /// Issue 22: `run --tenant A --tenant B` and `--tenants FILE` give the run's list
    /// of tenants (flags first, each once), and the planner then wants a tenant on
    /// every row; one `--tenant` stays the sign-in tenant, as before.
    #[test]
    fn regression_22_several_tenants_and_a_tenants_file_make_the_runs_list() {
        let one = config(&["--tenant", "Contoso.com"]).unwrap();
        assert!(one.tenants.is_empty());
        assert_eq!(one.options.tenants, TenantScope::One);

        let args =
            run_args(&["--tenant", "Contoso.com", "--tenant", &GUID.to_uppercase()]).unwrap();
        let rerun = args.rerun();
        let sign_in = ["--tenant", "Contoso.com", "--tenant", &GUID.to_uppercase()];
        assert_eq!(rerun.sign_in, sign_in);
        let (two, target) = args.into_config(false).unwrap();
        assert_eq!(names(&two), ["contoso.com", GUID]);
        assert!(two.tenants.iter().all(|t| t.client_id.is_none()));
        assert_eq!(two.options.tenants, TenantScope::Many);
        let super::super::run_cmd::Target::Tenant(tenant) = target else {
            panic!("a tenant");
        };
        assert_eq!(tenant.identity.tenant.as_deref(), Some("Contoso.com"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenants.txt");
        std::fs::write(
            &file,
            format!("tenant,clientId\nfabrikam.com,{APP}\nadatum.com\n"),
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let listed = config(&["--tenant", "contoso.com", "--tenants", file]).unwrap();
        assert_eq!(
            names(&listed),
            ["contoso.com", "fabrikam.com", "adatum.com"]
        );
        assert_eq!(listed.tenants[1].client_id.as_deref(), Some(APP));
        assert_eq!(listed.options.tenants, TenantScope::Many);
        let rerun = run_args(&["--tenants", file]).unwrap().rerun();
        assert_eq!(rerun.sign_in, ["--tenants", file]);
        assert!(
            rerun
                .run
                .ends_with(&["--tenants".to_owned(), file.to_owned()])
        );
        // A rehearsal spans them too.
        let simulated = config(&["--simulate", "--tenants", file]).unwrap();
        assert_eq!(names(&simulated), ["fabrikam.com", "adatum.com"]);
        assert!(config(&["--simulate", "--tenant", "contoso.com"]).is_err());
    }

    #[test]
    fn regression_22_a_tenant_named_twice_or_not_a_tenant_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenants.txt");
        std::fs::write(&file, "fabrikam.com\ncontoso.com\n").unwrap();
        let file = file.to_str().unwrap();
        let e = config(&["--tenant", "Contoso.com", "--tenants", file]).unwrap_err();
        assert!(
            e.starts_with("contoso.com is listed twice (--tenant, and "),
            "{e}"
        );
        let e = config(&["--tenant", "a.com", "--tenant", "A.com"]).unwrap_err();
        assert!(
            e.starts_with("a.com is listed twice (--tenant, and --tenant)"),
            "{e}"
        );
        let e = config(&["--tenant", "organizations", "--tenant", "a.com"]).unwrap_err();
        assert!(
            e.starts_with("--tenant 'organizations' is neither a tenant id"),
            "{e}"
        );
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "a.com\nb\n").unwrap();
        let e = config(&["--tenants", bad.to_str().unwrap()]).unwrap_err();
        assert!(e.ends_with("bad.txt, line 2: 'b' is neither a tenant id (a GUID) nor a domain (contoso.onmicrosoft.com)"), "{e}");
        // Other commands keep one tenant.
        for command in ["plan", "status"] {
            let words = [
                "intune-reset",
                command,
                "x.csv",
                "--tenant",
                "a.com",
                "--tenant",
                "b.com",
            ];
            let e = super::super::Cli::try_parse_from(words)
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains("'--tenant <TENANT>' cannot be used multiple times"),
                "{e}"
            );
        }
    }
}
