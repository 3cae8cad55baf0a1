//! Command-line arguments: clap types turned into one validated config per command.
//! Nothing below this module sees clap. Exit codes are a contract (see `--help`).
//!
//! On top of the house: the only module that knows clap, exit codes, signals and the
//! process.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{CommandError, EXIT_ABORTED, EXIT_OK, EXIT_USAGE, exit_code};
use crate::graph::{AuthMethod, Cloud, IdentityFlags};
use crate::job::ReadOptions;
use crate::job::decode::{ENCODING_NAMES, TextEncoding};
use crate::plan::{self, PlanConfig};
use crate::planner::{LookupMode, PlanOptions, TenantScope};
use crate::report::ReportFormat;
use crate::rules::Actions;
use crate::rules_command;
use std::io::IsTerminal;

mod audit_args;
mod browser;
mod completions;
mod evidence_args;
mod output;
mod rehearsal;
mod run_args;
pub mod run_cmd;
mod signals;
mod simulate_args;
mod status_args;

use run_args::RunArgs;
use simulate_args::{SimulateArgs, simulate};

const EXIT_CODES: &str = "\
Exit codes:
  0  every actionable row succeeded (ineligible and duplicate rows are expected)
  1  some rows failed, were not found, ambiguous, invalid or not attempted
  2  bad usage or an unreadable job file (nothing was sent)
  3  the run was aborted (authentication, missing permission, interrupted, an unwritable
     record); once anything was sent, the code is never 2";

#[derive(Debug, Parser)]
#[command(
    name = "intune-reset",
    version,
    about = "Reset or remove the passcodes of Microsoft Intune devices in bulk through Microsoft Graph.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log detail: -v logs every request with its client-request-id.
    // The global flags come last in every command's help, whatever the command's own
    // flags (clap numbers them otherwise in the order commands are declared).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, display_order = 900)]
    verbose: u8,
    /// Only warnings and errors on stderr (the summary still prints).
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        display_order = 901
    )]
    quiet: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, display_order = 902)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read job files and write the outcome each row would get. No network.
    Plan(Box<PlanArgs>),
    /// Plan, confirm, then reset the passcodes of every eligible device through Graph.
    Run(Box<RunArgs>),
    /// Read the action state of a run report's succeeded resets; write a status report.
    #[command(after_help = status_args::STATUS_HELP)]
    Status(Box<status_args::StatusArgs>),
    /// Reconcile a run with Intune's own audit trail; write an audit report.
    #[command(after_help = audit_args::AUDIT_HELP)]
    Audit(Box<audit_args::AuditArgs>),
    /// Write a run's evidence pack (job files, ledger, reports, summary.html,
    /// manifest.json), or check one with --verify.
    #[command(after_help = evidence_args::EVIDENCE_HELP)]
    Evidence(Box<evidence_args::EvidenceArgs>),
    /// Print the platform rules table.
    Rules(RulesArgs),
    /// Serve a local Microsoft Graph stand-in (token endpoint, managedDevices,
    /// resetPasscode, $batch) for rehearsals and tests. Runs until interrupted.
    Simulate(Box<SimulateArgs>),
    /// Print the completion script of a shell (bash, zsh, fish, powershell, elvish).
    #[command(after_help = completions::COMPLETIONS_HELP)]
    Completions(completions::CompletionsArgs),
    /// Write the man pages (the tool's and one per command), generated from --help.
    #[command(after_help = completions::MAN_HELP)]
    Man(completions::ManArgs),
}

/// `--auth`: the credential that signs in.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuthArg {
    /// App registration with AZURE_CLIENT_SECRET.
    Secret,
    /// App registration with AZURE_CLIENT_CERTIFICATE_PATH (PEM, .pfx or .p12;
    /// password in AZURE_CLIENT_CERTIFICATE_PASSWORD).
    Certificate,
    /// You sign in with a code at microsoft.com/devicelogin, on any device.
    DeviceCode,
    /// You sign in in the browser on this machine (authorization code with PKCE).
    Browser,
    /// The Azure resource's managed identity (VM, App Service, Functions, Container Apps).
    ManagedIdentity,
    /// A federated token from AZURE_FEDERATED_TOKEN_FILE (GitHub Actions, Kubernetes).
    WorkloadIdentity,
    /// A ready access token from INTUNE_RESET_ACCESS_TOKEN (not renewed).
    Token,
}

impl From<AuthArg> for AuthMethod {
    fn from(a: AuthArg) -> AuthMethod {
        match a {
            AuthArg::Secret => AuthMethod::Secret,
            AuthArg::Certificate => AuthMethod::Certificate,
            AuthArg::DeviceCode => AuthMethod::DeviceCode,
            AuthArg::Browser => AuthMethod::Browser,
            AuthArg::ManagedIdentity => AuthMethod::ManagedIdentity,
            AuthArg::WorkloadIdentity => AuthMethod::WorkloadIdentity,
            AuthArg::Token => AuthMethod::Token,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct TenantArgs {
    /// How to sign in [default: the first credential the environment configures:
    /// INTUNE_RESET_ACCESS_TOKEN (token), AZURE_FEDERATED_TOKEN_FILE (workload-identity),
    /// AZURE_CLIENT_CERTIFICATE_PATH (certificate), AZURE_CLIENT_SECRET (secret); else,
    /// on a terminal, browser]. managed-identity is used only when named.
    #[arg(long, value_enum, value_name = "METHOD")]
    auth: Option<AuthArg>,
    /// Tenant id or domain [env: AZURE_TENANT_ID; browser and device-code default to
    /// organizations, your account's home tenant]
    // One for every command; `run` takes it several times ([`several_tenants`]).
    #[arg(long, action = clap::ArgAction::Set)]
    tenant: Vec<String>,
    /// App registration's application (client) id; for browser and device-code, your
    /// own public client app [env: AZURE_CLIENT_ID]
    #[arg(long)]
    client_id: Option<String>,
    /// Client id of a user-assigned managed identity (with --auth managed-identity)
    /// [env: AZURE_CLIENT_ID; default: the system-assigned identity]
    #[arg(long, value_name = "CLIENT_ID")]
    managed_identity_client_id: Option<String>,
    /// National cloud.
    #[arg(long, value_enum, default_value_t = CloudArg::Global)]
    cloud: CloudArg,
    /// Override the Graph host (tests, proxies); http:// only to loopback.
    #[arg(long, value_name = "URL")]
    graph_url: Option<String>,
    /// Override the Entra ID authority host; http:// only to loopback.
    #[arg(long, value_name = "URL")]
    authority_url: Option<String>,
}

impl TenantArgs {
    /// The sign-in flags as given, as words a follow-up command repeats (the
    /// environment's variables carry over by themselves).
    pub(crate) fn words(&self) -> Vec<String> {
        let mut words = Vec::new();
        if let Some(auth) = self.auth {
            words.extend(["--auth".into(), value_name(auth)]);
        }
        for tenant in &self.tenant {
            words.extend(["--tenant".into(), tenant.clone()]);
        }
        for (flag, value) in [
            ("--client-id", &self.client_id),
            (
                "--managed-identity-client-id",
                &self.managed_identity_client_id,
            ),
        ] {
            if let Some(value) = value {
                words.extend([flag.to_owned(), value.clone()]);
            }
        }
        if !matches!(self.cloud, CloudArg::Global) {
            words.extend(["--cloud".into(), value_name(self.cloud)]);
        }
        for (flag, value) in [
            ("--graph-url", &self.graph_url),
            ("--authority-url", &self.authority_url),
        ] {
            if let Some(value) = value {
                words.extend([flag.to_owned(), value.clone()]);
            }
        }
        words
    }

    pub(crate) fn tenant(self) -> crate::graph::Tenant {
        crate::graph::Tenant {
            identity: IdentityFlags {
                // `run --tenant A --tenant B`: the first; the run's list of tenants is
                // `RunConfig::tenants`.
                tenant: self.tenant.into_iter().next(),
                client_id: self.client_id,
                auth: self.auth.map(Into::into),
                managed_identity_client_id: self.managed_identity_client_id,
                terminal: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            },
            cloud: self.cloud.into(),
            graph_url: self.graph_url,
            authority_url: self.authority_url,
        }
    }
}

/// `run`'s `--tenant`: given several times, the run spans those tenants.
fn several_tenants(arg: clap::Arg) -> clap::Arg {
    arg.action(clap::ArgAction::Append).help(
        "Tenant id or domain [env: AZURE_TENANT_ID; browser and device-code default to \
         organizations, your account's home tenant]; repeatable: several tenants: the run \
         signs in to each (see README, 'Several tenants')",
    )
}

/// Where the report goes: shared by `plan` and `run`.
#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Where to write the report [default: reports/<job>-<UTC timestamp>.csv]
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Report format [default: jsonl for a --report ending in .jsonl or .ndjson, xlsx
    /// for .xlsx, else csv]. An xlsx run report keeps its crash-safe CSV beside it
    /// (<report>.csv)
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// CSV without the UTF-8 byte-order mark that Windows Excel needs to read accents
    /// right (for tools that mind it).
    #[arg(long)]
    no_bom: bool,
    /// Also write the summary as JSON to this path.
    #[arg(long, value_name = "PATH")]
    summary_json: Option<PathBuf>,
}

impl ReportArgs {
    /// The format asked for, else the one the report's name says (`--resume` reads an
    /// existing report in its own format).
    fn format(&self) -> ReportFormat {
        self.format
            .map(Into::into)
            .or_else(|| self.report.as_deref().and_then(ReportFormat::from_name))
            .unwrap_or(ReportFormat::Csv)
    }
}

/// How job files are read: shared by `plan` and `run`.
#[derive(Debug, clap::Args)]
struct InputArgs {
    /// The worksheet to read in workbook job files (.xlsx, .xlsm, .xlsb, .xls, .ods)
    /// [default: the first visible one]
    #[arg(long, value_name = "NAME")]
    sheet: Option<String>,
    /// The encoding of text job files, instead of the detected one: utf-8, 1252, 1250,
    /// 1251, 850 or 437 (Excel's "CSV (MS-DOS)"), gbk, shift_jis, ...
    #[arg(long, value_name = "NAME", value_parser = parse_encoding)]
    encoding: Option<TextEncoding>,
}

impl InputArgs {
    fn read_options(self) -> ReadOptions {
        ReadOptions {
            sheet: self.sheet,
            encoding: self.encoding,
            limits: crate::job::Limits::default(),
        }
    }
}

/// A value as its flag takes it (`remove-passcode`, `device-code`).
fn value_name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

fn parse_encoding(name: &str) -> Result<TextEncoding, String> {
    TextEncoding::from_name(name)
        .ok_or_else(|| format!("'{name}' is not an encoding this tool knows; use {ENCODING_NAMES}"))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CloudArg {
    Global,
    Usgov,
    UsgovDod,
    China,
}

impl From<CloudArg> for Cloud {
    fn from(c: CloudArg) -> Self {
        match c {
            CloudArg::Global => Cloud::Global,
            CloudArg::Usgov => Cloud::UsGov,
            CloudArg::UsgovDod => Cloud::UsGovDod,
            CloudArg::China => Cloud::China,
        }
    }
}

/// `--read-rate`, when given, is a positive number (`plan --live`, `status`, `audit`).
fn checked_read_rate(rate: Option<f64>) -> Result<Option<f64>, CommandError> {
    match rate {
        Some(r) if !(r > 0.0 && r.is_finite()) => Err(CommandError::Usage(
            "--read-rate must be a positive number".into(),
        )),
        _ => Ok(rate),
    }
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 30s, 500ms, 2m)"))
}

#[derive(Debug, clap::Args)]
struct PlanArgs {
    /// Job files: CSV (any Excel dialect, any encoding), a workbook (.xlsx, .xlsm,
    /// .xlsb, .xls, .ods), JSON array, Graph {"value": [...]}, a job document
    /// {"action": ..., "devices": [...]}, JSON Lines, or a .zip of any of these.
    #[arg(required_unless_present_any = ["user", "users", "group", "where_", "all_devices"], value_name = "FILE")]
    files: Vec<PathBuf>,
    /// With --live: a user (UPN or object id) whose Intune devices are planned, each
    /// judged by its live facts; repeatable. Reported under the source `(--user)`.
    #[arg(long, value_name = "UPN", requires = "live")]
    user: Vec<String>,
    /// A file of users (a userPrincipalName column, or a list of UPNs without a
    /// header), read like any job file; repeatable.
    #[arg(long, value_name = "FILE")]
    users: Vec<PathBuf>,
    /// With --live: an Entra group (display name or object id) whose transitive
    /// members' devices are planned; repeatable. Needs GroupMember.Read.All.
    #[arg(long, value_name = "NAME_OR_ID", requires = "live")]
    group: Vec<String>,
    /// With --live: the tenant's devices an OData filter matches (see `run --help`).
    #[arg(
        long = "where",
        value_name = "ODATA",
        conflicts_with = "all_devices",
        requires = "live"
    )]
    where_: Option<String>,
    /// With --live: every managed device of the tenant, each judged by the rules.
    #[arg(long, requires = "live")]
    all_devices: bool,
    /// Which action to plan: remove-passcode, reset-passcode, reset-pin or auto, or
    /// remote-lock or rotate-bitlocker-keys; several with commas
    /// (remote-lock,rotate-bitlocker-keys). A job file's own `action` column or field
    /// wins over this.
    #[arg(long, value_parser = parse_action, default_value = "auto")]
    action: Actions,
    /// When a device's facts must be read from Graph: auto (rows lacking an id or
    /// platform facts), always, or never (such rows are invalid).
    #[arg(long, value_enum, default_value_t = LookupArg::Auto)]
    lookup: LookupArg,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: ReportArgs,
    /// Resolve and judge every row against the tenant by its live facts, with reads
    /// only: not one POST. Signs in as `run` does (the sign-in flags below).
    #[arg(long)]
    live: bool,
    /// With --live: how lookups find devices (see `run --help`).
    #[arg(long, value_enum, default_value_t = run_args::LookupViaArg::Auto, requires = "live")]
    lookup_via: run_args::LookupViaArg,
    /// With --live: reads per second at most [default: 100]
    #[arg(long, value_name = "PER_SECOND", requires = "live")]
    read_rate: Option<f64>,
    /// With --live: devices read at once.
    #[arg(long, default_value_t = 16, requires = "live")]
    concurrency: usize,
    /// With --live: per-request timeout [default: 30s]
    #[arg(long, value_parser = parse_duration, requires = "live")]
    timeout: Option<std::time::Duration>,
    #[command(flatten)]
    tenant: TenantArgs,
}

#[derive(Debug, clap::Args)]
struct RulesArgs {
    #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
    format: RulesFormat,
}

/// `--action`: one action or several with commas (`remote-lock,rotate-bitlocker-keys`),
/// or a sentence saying why not: a destructive action is not offered
/// ([`crate::rules::not_offered`]), and any other word lists the ones that are.
fn parse_action(text: &str) -> Result<Actions, String> {
    Actions::parse(text)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LookupArg {
    Auto,
    Always,
    Never,
}

impl From<LookupArg> for LookupMode {
    fn from(l: LookupArg) -> Self {
        match l {
            LookupArg::Auto => LookupMode::Auto,
            LookupArg::Always => LookupMode::Always,
            LookupArg::Never => LookupMode::Never,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Jsonl,
    Xlsx,
}

impl From<FormatArg> for ReportFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Csv => ReportFormat::Csv,
            FormatArg::Jsonl => ReportFormat::Jsonl,
            FormatArg::Xlsx => ReportFormat::Xlsx,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RulesFormat {
    Table,
    Json,
}

impl PlanArgs {
    /// `plan --live`: the plan's options, the reads' pacing, and the tenant.
    fn into_live(self) -> Result<(crate::run::LivePlanConfig, crate::graph::Tenant), CommandError> {
        checked_read_rate(self.read_rate)?;
        let mut settings = crate::run::Settings {
            concurrency: self.concurrency.max(1),
            request_timeout: self.timeout.unwrap_or(std::time::Duration::from_secs(30)),
            ..crate::run::Settings::default()
        };
        if let Some(r) = self.read_rate {
            settings.read_rate = r;
        }
        let filter = run_args::target_filter(self.where_.as_deref(), self.all_devices)?;
        let mut files = self.files;
        files.extend(self.users);
        let config = crate::run::LivePlanConfig {
            files,
            targets: crate::run::Targets {
                users: self.user,
                groups: self.group,
                filter,
            },
            options: PlanOptions {
                action: Some(self.action.clone()),
                lookup: self.lookup.into(),
                tenants: TenantScope::One,
            },
            format: self.output.format(),
            bom: !self.output.no_bom,
            report: self.output.report,
            summary_json: self.output.summary_json,
            settings,
            lookup_via: self.lookup_via.into(),
            read: self.input.read_options(),
        };
        Ok((config, self.tenant.tenant()))
    }

    fn into_config(self) -> PlanConfig {
        let mut files = self.files;
        files.extend(self.users);
        PlanConfig {
            files,
            options: PlanOptions {
                action: Some(self.action.clone()),
                lookup: self.lookup.into(),
                tenants: TenantScope::One,
            },
            read: self.input.read_options(),
            format: self.output.format(),
            bom: !self.output.no_bom,
            report: self.output.report,
            summary_json: self.output.summary_json,
        }
    }
}

/// Parses the arguments, runs the command, maps the result to an exit code.
pub fn main() -> ExitCode {
    output::set_json(output::asks_for_json(std::env::args_os()));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A usage error is one ERROR line in a JSON log; help and version go to stdout.
        Err(e) if e.use_stderr() && output::json() => {
            output::error(e.render().to_string().trim_end());
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    ExitCode::from(dispatch(cli))
}

/// Logs go to stderr, as text or JSON Lines. Secrets never reach them: tokens and
/// secrets are `Secret`s whose Debug and Display print `[redacted]`.
fn init_logging(verbose: u8, quiet: bool, format: LogFormat) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::new(format!("warn,intune_reset={level}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// What a delegated sign-in shows: its instructions on stderr (whatever the log
/// settings, so that `-q` and `--log-format json` still show the code), and the
/// system browser when someone is at a terminal.
fn sign_in_ui() -> crate::graph::SignInUi {
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    crate::graph::SignInUi {
        say: Box::new(output::say),
        open_browser: terminal
            .then(|| Box::new(browser::open) as crate::graph::interactive::BrowserOpener),
        browser_wait: std::time::Duration::from_secs(300),
    }
}

fn dispatch(cli: Cli) -> u8 {
    init_logging(cli.verbose, cli.quiet, cli.log_format);
    output::set_json(matches!(cli.log_format, LogFormat::Json));
    match cli.command {
        Command::Run(args) => {
            use std::io::IsTerminal;
            let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
            let follow = args.follow();
            let rerun = args.rerun();
            let outcome = args.into_config(interactive).and_then(|(config, target)| {
                run_cmd::run(
                    config,
                    target,
                    &|name| std::env::var(name).ok(),
                    &sign_in_ui(),
                    follow,
                )
            });
            finish(outcome, |mut ran| {
                ran.run.summary.followed = matches!(ran.followed, Some(Ok(_)));
                if let Some(Ok(status)) = &mut ran.followed {
                    status.summary.sign_in = rerun.sign_in.clone();
                }
                let sign_in_words = rerun.sign_in.clone();
                ran.run.summary.rerun = Some(rerun);
                let outcome = &ran.run;
                // A run stopped before it began (sign-in, no confirmation) has no rows
                // to count.
                if outcome.summary.rows > 0 || outcome.aborted.is_none() {
                    let summary = &outcome.summary;
                    output::summary("run", &summary.render(), summary, &summary.next_steps());
                }
                if let Some(reason) = &outcome.aborted {
                    output::error(&reason.sentence());
                }
                let run_code =
                    exit_code(outcome.aborted.is_some(), outcome.summary.needs_attention());
                let code = match &ran.followed {
                    // Once followed, the exit code is the one `status` gives.
                    Some(Ok(status)) => {
                        let summary = &status.summary;
                        let text = format!("followed:\n{}", summary.render());
                        output::summary("status", &text, summary, &summary.next_steps());
                        exit_code(status.aborted.is_some(), !status.summary.all_done())
                    }
                    // The resets were sent: never 2 ("nothing was sent") from here.
                    Some(Err(e)) => {
                        output::error(&format!("following the resets failed: {e}"));
                        EXIT_ABORTED
                    }
                    None => run_code,
                };
                // `--audit`: the audit's summary last, and the worse exit code.
                match ran.audited {
                    None => code,
                    Some(Ok(mut audit)) => {
                        audit.summary.sign_in = sign_in_words.clone();
                        let summary = &audit.summary;
                        output::summary("audit", &summary.render(), summary, &summary.next_steps());
                        worse(code, audit.exit_code())
                    }
                    Some(Err(e)) => {
                        output::error(&format!("the audit of the run failed: {e}"));
                        EXIT_ABORTED
                    }
                }
            })
        }
        Command::Simulate(args) => simulate(*args),
        Command::Status(args) => {
            let sign_in = args.sign_in_words();
            let outcome = args.into_config().and_then(|(config, simulate, audit)| {
                if simulate {
                    rehearsal::status(config, audit)
                } else {
                    run_cmd::status(
                        config,
                        audit,
                        &|name| std::env::var(name).ok(),
                        &sign_in_ui(),
                    )
                }
            });
            finish(outcome, |followed| {
                let run_cmd::Followed { mut status, audit } = followed;
                status.summary.sign_in = sign_in.clone();
                let summary = &status.summary;
                output::summary("status", &summary.render(), summary, &summary.next_steps());
                let code = exit_code(status.aborted.is_some(), !status.summary.all_done());
                // `--audit`: its summary after the status's; the worse exit code.
                let audit_code = match audit {
                    None => EXIT_OK,
                    Some(Ok(mut audit)) => {
                        audit.summary.sign_in = sign_in;
                        let summary = &audit.summary;
                        output::summary("audit", &summary.render(), summary, &summary.next_steps());
                        audit.exit_code()
                    }
                    Some(Err(e)) => {
                        output::error(&format!("{e:#}"));
                        // Status read Graph before: never "nothing was read" (2).
                        EXIT_ABORTED
                    }
                };
                worse(code, audit_code)
            })
        }
        Command::Audit(args) => {
            let sign_in = args.sign_in_words();
            let outcome = args.into_config().and_then(|(config, simulate)| {
                if simulate {
                    rehearsal::audit(config)
                } else {
                    run_cmd::audit(config, &|name| std::env::var(name).ok(), &sign_in_ui())
                }
            });
            finish(outcome, |mut outcome| {
                outcome.summary.sign_in = sign_in;
                let summary = &outcome.summary;
                output::summary("audit", &summary.render(), summary, &summary.next_steps());
                outcome.exit_code()
            })
        }
        Command::Evidence(args) => {
            let outcome = args
                .into_config()
                .and_then(|config| crate::evidence::pack::execute(&config));
            finish(outcome, |outcome| {
                output::text("evidence", &outcome.text);
                outcome.code
            })
        }
        Command::Rules(args) => {
            let text = match args.format {
                RulesFormat::Table => rules_command::render_table(),
                RulesFormat::Json => rules_command::render_json(),
            };
            print_stdout(text.as_bytes())
        }
        Command::Completions(args) => completions::completions(&args),
        Command::Man(args) => finish(completions::man(&args), |code| code),
        Command::Plan(args) if args.live => {
            let outcome = args.into_live().and_then(|(config, tenant)| {
                run_cmd::live_plan(
                    &config,
                    &tenant,
                    &|name| std::env::var(name).ok(),
                    &sign_in_ui(),
                )
            });
            finish(outcome, |summary| {
                output::summary("plan", &summary.render(), &summary, "");
                let aborted = summary.run.as_ref().is_some_and(|r| r.aborted.is_some());
                exit_code(aborted, summary.needs_attention())
            })
        }
        Command::Plan(args) => finish(plan::run(&args.into_config()), |summary| {
            output::summary("plan", &summary.render(), &summary, "");
            exit_code(false, summary.needs_attention())
        }),
    }
}

/// A command's error is printed with its cause chain and mapped to its exit code.
/// The worse of two exit codes: aborted (3), then rows needing attention (1), then 0.
fn worse(a: u8, b: u8) -> u8 {
    use crate::error::{EXIT_ROWS_NEED_ATTENTION, EXIT_USAGE};
    let rank = |c: u8| match c {
        EXIT_OK => 0,
        EXIT_ROWS_NEED_ATTENTION => 1,
        EXIT_USAGE => 2,
        _ => 3,
    };
    if rank(a) >= rank(b) { a } else { b }
}

fn finish<T>(result: Result<T, CommandError>, done: impl FnOnce(T) -> u8) -> u8 {
    match result {
        Ok(value) => done(value),
        Err(e) => {
            output::error(&format!("{e:#}"));
            e.exit_code()
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends the command quietly, as ripgrep does.
fn print_stdout(bytes: &[u8]) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            output::error(&format!("cannot write to stdout: {e}"));
            EXIT_USAGE
        }
    }
}
