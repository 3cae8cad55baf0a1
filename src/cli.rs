//! Command-line arguments: clap types turned into one validated config per command.
//! Nothing below this module sees clap. Exit codes are a contract (see `--help`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::plan::{self, CommandError, LookupMode, PlanConfig, PlanOptions};
use crate::report::ReportFormat;
use crate::rules::{Action, ActionChoice};
use crate::rules_command;

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read job files and write the outcome each row would get. No network.
    Plan(PlanArgs),
    /// Print the platform rules table.
    Rules(RulesArgs),
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

#[derive(Debug, clap::Args)]
struct RulesArgs {
    #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
    format: RulesFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
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
                action: self.action.into(),
                lookup: self.lookup.into(),
            },
            report: self.report,
            format: self.format.into(),
            summary_json: self.summary_json,
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
            CommandError::Job(_) | CommandError::Usage(_) | CommandError::Write { .. } => {
                EXIT_USAGE
            }
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

fn dispatch(cli: Cli) -> u8 {
    match cli.command {
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
