//! `evidence` arguments: clap types turned into one [`EvidenceConfig`].

use std::path::PathBuf;

use crate::error::CommandError;
use crate::evidence::pack::EvidenceConfig;

pub(super) const EVIDENCE_HELP: &str = "\
Writes the evidence pack of the run recorded in REPORT: the job files as the run read them
(checked against the SHA-256 its ledger recorded), the ledger, the run report, the newest
status and audit reports beside it (or --status, --audit), summary.html (one page a
security lead reads without the tool, no network) and manifest.json (the SHA-256 and size
of every file, the ledger's line count and last chain hash). DIR must be new or empty.

--verify DIR re-checks a pack: every file against the manifest, the ledger's chain and
its head, the job files against the ledger; it says exactly what changed.

Exit codes:
  0  the pack was written; with --verify, everything holds
  1  with --verify: something changed, is missing or was added
  2  bad usage, no ledger, a job file changed since the run, DIR not empty, no manifest";

#[derive(Debug, clap::Args)]
pub(super) struct EvidenceArgs {
    /// The report `run` wrote; its ledger must be beside it.
    #[arg(
        value_name = "REPORT",
        required_unless_present = "verify",
        conflicts_with = "verify"
    )]
    run_report: Option<PathBuf>,
    /// The new folder the pack is written to.
    #[arg(long, value_name = "DIR", required_unless_present = "verify")]
    out: Option<PathBuf>,
    /// The status report to include [default: the newest beside REPORT].
    #[arg(long, value_name = "PATH")]
    status: Option<PathBuf>,
    /// The audit report to include [default: the newest beside REPORT].
    #[arg(long, value_name = "PATH")]
    audit: Option<PathBuf>,
    /// Check the pack in DIR instead of writing one.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "status", "audit"])]
    verify: Option<PathBuf>,
}

impl EvidenceArgs {
    pub(super) fn into_config(self) -> Result<EvidenceConfig, CommandError> {
        match (self.verify, self.run_report, self.out) {
            (Some(dir), _, _) => Ok(EvidenceConfig::Verify { dir }),
            (None, Some(run_report), Some(out)) => Ok(EvidenceConfig::Pack {
                run_report,
                out,
                status: self.status,
                audit: self.audit,
            }),
            _ => Err(CommandError::Usage(
                "evidence needs REPORT and --out DIR, or --verify DIR".into(),
            )),
        }
    }
}
