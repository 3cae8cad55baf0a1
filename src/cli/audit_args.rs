//! `audit` arguments: clap types turned into one [`AuditConfig`].

use std::path::PathBuf;

use crate::audit::{self, AuditConfig};
use crate::error::CommandError;
use crate::run::Settings;

use super::{TenantArgs, parse_duration};

pub(super) const AUDIT_HELP: &str = "\
Reads Intune's audit log (auditEvents, DeviceManagementApps.Read.All) and its remote action
audits (remoteActionAudits, beta, DeviceManagementManagedDevices.Read.All) over the span of
the run recorded in REPORT and its ledger (REPORT.ledger, beside it), and writes an audit
report: every run row once, with a verdict on its device:
  confirmed             one record of a reset this run sent (a lost answer's reset landed)
  missing               the run sent it (accepted, or its answer lost); Intune has no record
  not_sent_by_this_run  Intune records a reset of a job device in the run's span that this
                        run did not send (another admin, another tool)
  twice                 more than one record for the device in the run's span
  none                  nothing sent, nothing recorded

Exit codes:
  0  every reset the run sent is confirmed and nothing else was found
  1  some are missing, twice, or not this run's
  2  bad usage, an unreadable run report, no ledger, another run's ledger (nothing read)
  3  aborted (authentication, a missing permission, a list that never ends, interrupted)";

#[derive(Debug, clap::Args)]
pub(super) struct AuditArgs {
    /// The report `run` wrote; its ledger must be beside it.
    #[arg(value_name = "REPORT")]
    run_report: PathBuf,
    /// Read the lists again while a reset the run sent has no record yet, until this
    /// time is up, e.g. 30m (Intune records actions late).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    wait: Option<std::time::Duration>,
    /// Where to write the audit report [default: beside REPORT, <stem>.audit.csv]
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Also write the summary as JSON to this path.
    #[arg(long, value_name = "PATH")]
    summary_json: Option<PathBuf>,
    /// The audit report without the UTF-8 byte-order mark.
    #[arg(long)]
    no_bom: bool,
    #[command(flatten)]
    tenant: TenantArgs,
    /// Audit a rehearsal (`run --simulate`) in the simulated tenant it saved beside
    /// REPORT (REPORT.sim.json); no real tenant is touched.
    #[arg(long, conflicts_with_all = ["auth", "tenant", "client_id", "managed_identity_client_id", "graph_url", "authority_url"])]
    simulate: bool,
    /// Reads per second at most [default: 100]
    #[arg(long, value_name = "PER_SECOND")]
    read_rate: Option<f64>,
    /// Per-request timeout, e.g. 30s, 500ms.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: std::time::Duration,
}

impl AuditArgs {
    /// The sign-in flags, for the commands the summary's next steps print.
    pub(super) fn sign_in_words(&self) -> Vec<String> {
        self.tenant.words()
    }

    /// The configuration, and whether it audits a rehearsal (`--simulate`).
    pub(super) fn into_config(self) -> Result<(AuditConfig, bool), CommandError> {
        let mut settings = Settings {
            concurrency: 1,
            request_timeout: self.timeout,
            ..Settings::default()
        };
        if let Some(r) = super::checked_read_rate(self.read_rate)? {
            settings.read_rate = r;
        }
        if let Some(path) = &self.summary_json {
            crate::report::check_summary_path(path)?;
        }
        let simulate = self.simulate;
        Ok((
            AuditConfig {
                run_report: self.run_report,
                report: self.report,
                summary_json: self.summary_json,
                bom: !self.no_bom,
                wait: self.wait,
                poll_interval: audit::POLL_INTERVAL,
                settings,
                tenant: self.tenant.tenant(),
            },
            simulate,
        ))
    }
}
