//! Command-line arguments: clap types turned into one validated config per command.
//! Nothing below this module sees clap. Exit codes are a contract (see `--help`).
//!
//! On top of the house: the only module that knows clap, exit codes, signals and the
//! process.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{CommandError, EXIT_OK, EXIT_USAGE, exit_code};
use crate::graph::{Cloud, IdentityFlags};
use crate::job::ReadOptions;
use crate::job::decode::{ENCODING_NAMES, TextEncoding};
use crate::plan::{self, PlanConfig};
use crate::planner::{LookupMode, PlanOptions};
use crate::report::ReportFormat;
use crate::rules::{Action, ActionChoice};
use crate::rules_command;

mod run_args;
pub mod run_cmd;
mod signals;
mod simulate_args;
mod status_args;

use crate::status;
use run_args::RunArgs;
use simulate_args::{SimulateArgs, simulate};

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
    pub(crate) fn tenant(self) -> crate::graph::Tenant {
        crate::graph::Tenant {
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
    /// Report format [default: jsonl for a --report ending in .jsonl or .ndjson, else csv]
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
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
        }
    }
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

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 30s, 500ms, 2m)"))
}

#[derive(Debug, clap::Args)]
struct PlanArgs {
    /// Job files: CSV (any Excel dialect, any encoding), a workbook (.xlsx, .xlsm,
    /// .xlsb, .xls, .ods), JSON array, Graph {"value": [...]}, a job document
    /// {"action": ..., "devices": [...]}, JSON Lines, or a .zip of any of these.
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
    input: InputArgs,
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
            read: self.input.read_options(),
            format: self.output.format(),
            report: self.output.report,
            summary_json: self.output.summary_json,
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
            let outcome = args.into_config(interactive).and_then(|(config, target)| {
                run_cmd::run(config, target, &|name| std::env::var(name).ok())
            });
            finish(outcome, |outcome| {
                // A run stopped before it began (sign-in, no confirmation) has no rows
                // to count.
                if outcome.summary.rows > 0 || outcome.aborted.is_none() {
                    eprint!("{}", outcome.summary.render());
                }
                if let Some(reason) = &outcome.aborted {
                    eprintln!("intune-reset: {}", reason.sentence());
                }
                exit_code(outcome.aborted.is_some(), outcome.summary.needs_attention())
            })
        }
        Command::Simulate(args) => simulate(*args),
        Command::Status(args) => {
            let outcome = args
                .into_config()
                .and_then(|config| status::run(config, &|name| std::env::var(name).ok()));
            finish(outcome, |outcome| {
                eprint!("{}", outcome.summary.render());
                exit_code(outcome.aborted.is_some(), !outcome.summary.all_done())
            })
        }
        Command::Rules(args) => {
            let text = match args.format {
                RulesFormat::Table => rules_command::render_table(),
                RulesFormat::Json => rules_command::render_json(),
            };
            print_stdout(&text)
        }
        Command::Plan(args) => finish(plan::run(&args.into_config()), |summary| {
            eprint!("{}", summary.render());
            exit_code(false, summary.needs_attention())
        }),
    }
}

/// A command's error is printed with its cause chain and mapped to its exit code.
fn finish<T>(result: Result<T, CommandError>, done: impl FnOnce(T) -> u8) -> u8 {
    match result {
        Ok(value) => done(value),
        Err(e) => {
            eprintln!("intune-reset: {e:#}");
            e.exit_code()
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
