//! intune-reset: reset or remove the passcodes of Microsoft Intune devices in bulk
//! through Microsoft Graph, at the documented throttling limit, losing nothing.
//!
//! # Layout
//! - [`cli`]: clap arguments become one validated config per command; nothing below
//!   sees clap. `main.rs` only calls [`cli::main`].
//! - [`job`]: job files (CSV in any Excel dialect, JSON shapes) streamed as rows.
//! - [`graph`]: Microsoft Graph and Entra ID: clouds, credentials, tokens, one request per call.
//! - [`rules`]: platform classification and the eligibility table, as data.
//! - [`plan`]: rows to verdicts (identity, rules, duplicates) and the `plan` command.
//! - [`report`]: report rows, the writer, the summary.
//! - [`run`]: the `run` command: limiters, the shared pause, retries, verification, workers.
//! - [`status`]: the `status` command: a run's resets as `deviceActionResults` show them.
//! - [`sim`]: the local Microsoft Graph simulator (`intune-reset simulate`).
//! - [`version`]: OS version parsing.

pub mod cli;
pub mod device;
pub mod error;
pub mod graph;
pub mod job;
pub mod pacing;
pub mod plan;
pub mod planner;
pub mod report;
pub mod rules;
pub mod rules_command;
pub mod run;
pub mod sim;
pub mod status;
pub mod version;
