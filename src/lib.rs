//! intune-reset: reset or remove the passcodes of Microsoft Intune devices in bulk
//! through Microsoft Graph, at the documented throttling limit, losing nothing.
//!
//! # Layout
//! Commands over a shared core; imports point down and the module graph has no cycle
//! (`tests/layers.rs` checks both, and that only `cli` ends the process or reads the
//! environment).
//!
//! On top:
//! - [`cli`]: clap arguments become one validated config per command; exit codes,
//!   signals (the one shutdown source), the `--simulate` bootstrap and the terminal's
//!   confirmation. The only module that knows the process. `main.rs` calls [`cli::main`].
//!
//! The commands, each taking its config and the outside world (the Graph API, the job,
//! a shutdown signal) as arguments; no command imports another:
//! - [`plan`]: judge every row, write the plan report. No network.
//! - [`run`]: read the job once, keep the ledger (the durable record), reset every
//!   eligible device, never twice.
//! - [`status`]: a run's resets as `deviceActionResults` show them.
//! - [`audit`]: a run against Intune's own audit trail (`auditEvents`,
//!   `remoteActionAudits`): each reset confirmed, missing, twice, or not the run's.
//! - [`evidence`]: the evidence pack of a run, and its `summary.html`: who ran it,
//!   when, in which tenant, its counts, timeline, failures and audit verdicts on one
//!   page that needs no network.
//! - [`rules_command`]: the rules table, as text or JSON.
//! - [`sim`]: the local Graph simulator (`intune-reset simulate`, `run --simulate`).
//!
//! The core, which never imports a command:
//! - [`planner`]: rows to verdicts (identity, rules, duplicates), shared by `plan` and
//!   `run`.
//! - [`pacing`]: limiters, the shared pause, the retry policy, settings: the [`pacing::Pacer`]
//!   every request of `run` and `status` goes through.
//! - [`graph`]: Microsoft Graph and Entra ID: clouds, credentials, sign-in, tokens, one
//!   request per call, which `deviceActionResults` entry is a reset's.
//! - [`report`]: report rows, the writer, the one reader, the summary.
//! - [`rules`]: platform classification and the eligibility table, as data.
//! - [`ledger`]: a run's durable record (claims, sends, settlements, sessions), written by
//!   `run`, read back by `run --resume` and by the commands that prove a run afterwards.
//! - [`job`]: job files (CSV in any Excel dialect, JSON shapes) streamed as rows.
//! - [`tenants`]: how a tenant is named (id or domain) and the `--tenants FILE` list of
//!   the tenants a run spans.
//! - [`device`]: the device domain: columns, fields, ids. Imports nothing of the crate.
//! - [`error`]: the exit-code contract and the error commands return.
//! - [`own_file`]: files that must be the runner's own (passcodes, locks): never
//!   written through a link or into another user's file.
//! - [`paths`]: the files a command names never name the same file.
//! - [`spill`]: the per-device indexes (duplicates, claims, the report's order) that
//!   keep a few thousand entries in memory and the rest in a temporary file.
//! - [`until`]: how a wait is told: until when (UTC) and how long is left.
//! - [`version`]: OS version parsing.

pub mod audit;
pub mod cli;
pub mod device;
pub mod error;
pub mod evidence;
pub mod graph;
pub mod job;
pub mod ledger;
pub mod own_file;
pub mod pacing;
pub mod paths;
pub mod plan;
pub mod planner;
pub mod report;
pub mod rules;
pub mod rules_command;
pub mod run;
pub mod sim;
pub mod spill;
pub mod status;
pub mod tenants;
pub mod until;
pub mod version;
