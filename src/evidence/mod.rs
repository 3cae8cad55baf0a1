//! The evidence pack (issue 20): after an incident, everything that shows what a run did
//! to every device, in one folder a security lead can keep and read without the tool.
//!
//! The pack holds the job files as the run read them, the run's ledger (who signed in,
//! every session, each reset's send, hash-chained so an edit shows), the final report,
//! the status and audit reports when there are any, a `manifest.json` with the SHA-256
//! of every file, and `summary.html`: one self-contained page (no network) drawn from
//! those files.
//!
//! - [`facts`]: what the page shows, read from the files with bounded memory (counts and
//!   capped example lists, never every row), serializable for the manifest too.
//! - [`html`]: the page itself, from the facts alone.
//! - [`pack`]: the command: `evidence REPORT --out DIR` and `evidence --verify DIR`.
//!
//! A command: it uses the core (report, ledger, graph's timestamp reading), never
//! another command, so the names of `status` action states and `audit` verdicts are
//! read from their reports' columns, not imported.

pub mod facts;
pub mod html;
pub mod pack;
