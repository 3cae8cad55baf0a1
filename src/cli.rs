//! Command-line arguments: clap types turned into one validated config per command.
//! Nothing below this module sees clap. Exit codes are a contract (see `--help`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::graph::{Cloud, IdentityFlags};
use crate::plan::{self, CommandError, LookupMode, PlanConfig, PlanOptions};
use crate::report::ReportFormat;
use crate::rules::{Action, ActionChoice};
use crate::rules_command;
use crate::run::{self, RunConfig, Settings, Target};
use crate::sim;

mod status_args;
use crate::status;

const EXIT_CODES: &str = "\
Exit codes:
  0  every actionable row succeeded (ineligible and duplicate rows are expected)
  1  some rows failed, were not found, ambiguous, invalid or not attempted
  2  bad usage or an unreadable job file (nothing was sent)
  3  the run was aborted (authentication, missing permission, interrupted)";

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
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors on stderr (the summary still prints).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
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
    Plan(PlanArgs),
    /// Plan, confirm, then reset the passcodes of every eligible device through Graph.
    Run(Box<RunArgs>),
    /// Read the action state of a run report's succeeded resets; write a status report.
    #[command(after_help = status_args::STATUS_HELP)]
    Status(Box<status_args::StatusArgs>),
    /// Print the platform rules table.
    Rules(RulesArgs),
    /// Serve a local Microsoft Graph stand-in (token endpoint, managedDevices,
    /// resetPasscode, $batch) for rehearsals and tests. Runs until interrupted.
    Simulate(Box<SimulateArgs>),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Job files, as for `plan`.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The action. Required unless every job file names one (a job document's
    /// "action", or an `action` column); a row's own value wins. Rows left without
    /// any are invalid, never defaulted.
    #[arg(long, value_enum)]
    action: Option<ActionArg>,
    /// When to read a device's facts from Graph first.
    #[arg(long, value_enum, default_value_t = LookupArg::Auto)]
    lookup: LookupArg,
    #[command(flatten)]
    output: ReportArgs,
    /// Act without asking (required when there is no terminal, as under cron).
    #[arg(long)]
    yes: bool,
    /// Refuse to act on more than N devices.
    #[arg(long, value_name = "N")]
    max_devices: Option<u64>,
    #[command(flatten)]
    tenant: TenantArgs,
    /// resetPasscode calls per second at most [default: 9.9; with the 200-per-20-s
    /// window this sustains about 9.75/s]
    #[arg(long, value_name = "PER_SECOND")]
    write_rate: Option<f64>,
    /// Reads (lookups, verifications) per second at most [default: 50]
    #[arg(long, value_name = "PER_SECOND")]
    read_rate: Option<f64>,
    /// Devices in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Requests per device call before giving up (429s count).
    #[arg(long, default_value_t = 10)]
    max_attempts: u32,
    /// Per-request timeout, e.g. 30s, 500ms.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: std::time::Duration,
    /// Rehearse against an in-process simulated tenant holding the job's devices
    /// (Intune's limits, realistic latency); no real tenant is touched.
    #[arg(long, conflicts_with_all = ["tenant", "client_id", "graph_url", "authority_url"])]
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
    /// Seed of the simulated tenant (with --simulate).
    #[arg(long, default_value_t = 1, requires = "simulate")]
    simulate_seed: u64,
}

/// Who signs in, and where: shared by `run` and `status`.
#[derive(Debug, clap::Args)]
pub(crate) struct TenantArgs {
    /// Tenant id or domain [env: AZURE_TENANT_ID]
    #[arg(long)]
    tenant: Option<String>,
    /// App registration's application (client) id [env: AZURE_CLIENT_ID]
    #[arg(long)]
    client_id: Option<String>,
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
    pub(crate) fn target(self) -> Target {
        Target::Tenant {
            identity: IdentityFlags {
                tenant: self.tenant,
                client_id: self.client_id,
            },
            cloud: self.cloud.into(),
            graph_url: self.graph_url,
            authority_url: self.authority_url,
        }
    }
}

/// Where the report goes: shared by `plan` and `run`.
#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Where to write the report [default: reports/<job>-<UTC timestamp>.csv]
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
    format: FormatArg,
    /// Also write the summary as JSON to this path.
    #[arg(long, value_name = "PATH")]
    summary_json: Option<PathBuf>,
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

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 30s, 500ms, 2m)"))
}

impl RunArgs {
    fn into_config(self, interactive: bool) -> Result<RunConfig, CommandError> {
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
            request_timeout: self.timeout,
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
        Ok(RunConfig {
            files: self.files,
            options: PlanOptions {
                action: self.action.map(Into::into),
                lookup: self.lookup.into(),
            },
            report: self.output.report,
            format: self.output.format.into(),
            summary_json: self.output.summary_json,
            yes: self.yes,
            max_devices: self.max_devices,
            settings,
            timeout: self.timeout,
            target: if self.simulate {
                Target::Simulate {
                    seed: self.simulate_seed,
                }
            } else {
                self.tenant.target()
            },
            interactive,
            resume: self.resume,
            lock: self.lock,
        })
    }
}

#[derive(Debug, clap::Args)]
struct PlanArgs {
    /// Job files: CSV (any Excel dialect), JSON array, Graph {"value": [...]}, a job
    /// document {"action": ..., "devices": [...]}, or JSON Lines.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Which action to plan. A job file's own `action` column or field wins over this.
    #[arg(long, value_enum, default_value_t = ActionArg::Auto)]
    action: ActionArg,
    /// When a device's facts must be read from Graph: auto (rows lacking an id or
    /// platform facts), always, or never (such rows are invalid).
    #[arg(long, value_enum, default_value_t = LookupArg::Auto)]
    lookup: LookupArg,
    #[command(flatten)]
    output: ReportArgs,
}

#[derive(Debug, clap::Args)]
struct RulesArgs {
    #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
    format: RulesFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ActionArg {
    RemovePasscode,
    ResetPin,
    Auto,
}

impl From<ActionArg> for ActionChoice {
    fn from(a: ActionArg) -> Self {
        match a {
            ActionArg::RemovePasscode => ActionChoice::Only(Action::RemovePasscode),
            ActionArg::ResetPin => ActionChoice::Only(Action::ResetPin),
            ActionArg::Auto => ActionChoice::Auto,
        }
    }
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
}

impl From<FormatArg> for ReportFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Csv => ReportFormat::Csv,
            FormatArg::Jsonl => ReportFormat::Jsonl,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RulesFormat {
    Table,
    Json,
}

impl PlanArgs {
    fn into_config(self) -> PlanConfig {
        PlanConfig {
            files: self.files,
            options: PlanOptions {
                action: Some(self.action.into()),
                lookup: self.lookup.into(),
            },
            report: self.output.report,
            format: self.output.format.into(),
            summary_json: self.output.summary_json,
        }
    }
}

pub const EXIT_OK: u8 = 0;
pub const EXIT_ROWS_NEED_ATTENTION: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_ABORTED: u8 = 3;

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Job(_)
            | CommandError::Usage(_)
            | CommandError::Write { .. }
            | CommandError::Status(_) => EXIT_USAGE,
        }
    }
}

/// Parses the arguments, runs the command, maps the result to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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

fn dispatch(cli: Cli) -> u8 {
    init_logging(cli.verbose, cli.quiet, cli.log_format);
    match cli.command {
        Command::Run(args) => {
            use std::io::IsTerminal;
            let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
            let outcome = args
                .into_config(interactive)
                .and_then(|config| run::run(config, &|name| std::env::var(name).ok()));
            match outcome {
                Ok(outcome) => {
                    // A run stopped before it began (sign-in, no confirmation) has no
                    // rows to count.
                    if outcome.summary.rows > 0 || outcome.aborted.is_none() {
                        eprint!("{}", outcome.summary.render());
                    }
                    if let Some(reason) = &outcome.aborted {
                        eprintln!("intune-reset: {}", reason.sentence());
                        EXIT_ABORTED
                    } else if outcome.summary.needs_attention() {
                        EXIT_ROWS_NEED_ATTENTION
                    } else {
                        EXIT_OK
                    }
                }
                Err(e) => {
                    eprintln!("intune-reset: {e:#}");
                    e.exit_code()
                }
            }
        }
        Command::Simulate(args) => simulate(*args),
        Command::Status(args) => {
            let outcome = args
                .into_config()
                .and_then(|config| status::run(config, &|name| std::env::var(name).ok()));
            match outcome {
                Ok(outcome) => {
                    eprint!("{}", outcome.summary.render());
                    if outcome.aborted.is_some() {
                        EXIT_ABORTED
                    } else if outcome.summary.all_done() {
                        EXIT_OK
                    } else {
                        EXIT_ROWS_NEED_ATTENTION
                    }
                }
                Err(e) => {
                    eprintln!("intune-reset: {e:#}");
                    e.exit_code()
                }
            }
        }
        Command::Rules(args) => {
            let text = match args.format {
                RulesFormat::Table => rules_command::render_table(),
                RulesFormat::Json => rules_command::render_json(),
            };
            print_stdout(&text)
        }
        Command::Plan(args) => {
            let config = args.into_config();
            match plan::run(&config) {
                Ok(summary) => {
                    eprint!("{}", summary.render());
                    if summary.needs_attention() {
                        EXIT_ROWS_NEED_ATTENTION
                    } else {
                        EXIT_OK
                    }
                }
                Err(e) => {
                    eprintln!("intune-reset: {e:#}");
                    e.exit_code()
                }
            }
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends the command quietly, as ripgrep does.
fn print_stdout(text: &str) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("intune-reset: cannot write to stdout: {e}");
            EXIT_USAGE
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Faults: 429-no-retry-after, fractional-retry-after, 503, 503-no-retry-after, 504, \
drop-before, drop-after, slow, expired-token (e.g. --fault drop-after=0.02 --fault 429-no-retry-after=0.05).\n\
The first line on stdout is `listening on http://ADDRESS`; the summary goes to stderr on exit."
)]
struct SimulateArgs {
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDRESS")]
    bind: std::net::SocketAddr,
    /// Allow listening on an address other than loopback.
    #[arg(long)]
    allow_remote: bool,
    /// Serve the devices of these job files (CSV or JSON, as `plan` reads them).
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    inventory: Vec<PathBuf>,
    /// Serve this many generated devices with a realistic platform mix.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    generate: usize,
    /// Seed for the generated devices, faults, reset outcomes and passcodes.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Tenant id accepted in the token URL.
    #[arg(long, value_name = "GUID", default_value = sim::DEFAULT_TENANT_ID)]
    tenant: String,
    /// Tenant domain accepted in the token URL in place of the id.
    #[arg(long, value_name = "DOMAIN", default_value = sim::DEFAULT_TENANT_DOMAIN)]
    tenant_domain: String,
    /// Require this client secret, read from the named environment variable
    /// (otherwise any non-empty secret is accepted).
    #[arg(long, value_name = "VAR")]
    client_secret_env: Option<String>,
    /// Require client assertions to name this certificate thumbprint (x5t#S256 or x5t).
    #[arg(long, value_name = "THUMBPRINT")]
    certificate_thumbprint: Option<String>,
    /// Answer this app's resetPasscode calls with 403 (missing permission). Repeatable.
    #[arg(long, value_name = "CLIENT_ID")]
    deny_app: Vec<String>,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3599)]
    token_lifetime: u64,
    /// Writes per app per tenant per window (Intune: 200).
    #[arg(long, value_name = "N", default_value_t = 200)]
    write_limit: u32,
    /// Requests of any kind per app per tenant per window (Intune: 2000).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    read_limit: u32,
    /// Writes per tenant, all apps, per window (Intune: 400).
    #[arg(long, value_name = "N", default_value_t = 400)]
    tenant_write_limit: u32,
    /// Requests of any kind per tenant, all apps, per window (Intune: 4000).
    #[arg(long, value_name = "N", default_value_t = 4000)]
    tenant_read_limit: u32,
    /// Length of the throttling window, in seconds (Intune: 20).
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0)]
    window: f64,
    /// Do not throttle at all (benchmarks).
    #[arg(long)]
    no_limits: bool,
    /// Inject a fault into this share of requests, e.g. drop-after=0.05. Repeatable.
    #[arg(long, value_name = "KIND=PROBABILITY", value_parser = sim::parse_fault)]
    fault: Vec<(sim::FaultKind, f64)>,
    /// Delay added to every answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// Up to this much random extra delay, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    jitter_ms: u64,
    /// How long a `slow` fault holds its answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    slow_ms: u64,
    /// How long a reset stays pending in deviceActionResults, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    action_delay: f64,
    /// Write a JSON Lines request log here.
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,
}

/// Seconds from the command line as a duration; negative or absurd values are usage errors.
fn seconds(flag: &str, value: f64) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(value)
        .map_err(|_| format!("--{flag} {value} is not a number of seconds"))
}

impl SimulateArgs {
    fn into_config(self) -> Result<(sim::SimConfig, std::net::SocketAddr), String> {
        if !self.bind.ip().is_loopback() && !self.allow_remote {
            return Err(format!(
                "refusing to listen on {}: not a loopback address (add --allow-remote to mean it)",
                self.bind
            ));
        }
        let client_secret = match &self.client_secret_env {
            None => None,
            Some(var) => Some(
                std::env::var(var)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(sim::Secret::new)
                    .ok_or_else(|| format!("--client-secret-env {var}: the variable is not set"))?,
            ),
        };
        let window = seconds("window", self.window)?;
        if window.is_zero() {
            return Err("--window must be more than 0 seconds".into());
        }
        let inventory = if self.inventory.is_empty() {
            sim::Inventory::generate_for(self.generate, self.seed, &self.tenant_domain)
        } else {
            sim::Inventory::from_job_files(&self.inventory, self.seed).map_err(|e| e.to_string())?
        };
        let config = sim::SimConfig {
            tenant_id: self.tenant,
            tenant_domain: self.tenant_domain,
            client_secret,
            certificate_thumbprint: self.certificate_thumbprint,
            deny_apps: self.deny_app,
            token_lifetime: std::time::Duration::from_secs(self.token_lifetime),
            limits: (!self.no_limits).then_some(sim::Limits {
                app_writes: self.write_limit,
                app_any: self.read_limit,
                tenant_writes: self.tenant_write_limit,
                tenant_any: self.tenant_read_limit,
                window,
            }),
            latency: sim::Latency {
                base: std::time::Duration::from_millis(self.latency_ms),
                jitter: std::time::Duration::from_millis(self.jitter_ms),
            },
            faults: self.fault,
            slow: std::time::Duration::from_millis(self.slow_ms),
            seed: self.seed,
            action_delay: seconds("action-delay", self.action_delay)?,
            log_path: self.log,
            inventory,
            ..sim::SimConfig::default()
        };
        Ok((config, self.bind))
    }
}

fn simulate(args: SimulateArgs) -> u8 {
    let (config, bind) = match args.into_config() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("intune-reset: {message}");
            return EXIT_USAGE;
        }
    };
    match sim::serve_until_interrupted(config, bind) {
        Ok(stats) => {
            eprint!("{}", stats.render());
            EXIT_OK
        }
        Err(e) => {
            eprintln!("intune-reset: {e:#}");
            EXIT_USAGE
        }
    }
}
