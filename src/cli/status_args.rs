//! `status` arguments: clap types turned into one [`StatusConfig`].

use std::path::PathBuf;

use crate::error::CommandError;
use crate::run::Settings;
use crate::status::{self, StatusConfig};

use super::{TenantArgs, parse_duration};

pub(super) const STATUS_HELP: &str = "\
Reads the devices of rows whose outcome is succeeded, and of failed rows whose reason is
outcome_unknown (an answer lost that the run could not verify); other rows are copied.
States: Graph's actionState as Graph spells it (pending, active, none, done, failed,
notSupported, canceled), or: not_found_in_results (no reset since the run's send),
device_not_found (404), read_failed, not_checked (the command stopped), unknown.

Exit codes:
  0  every succeeded reset is done
  1  some are pending, failed, notSupported, canceled or not found
  2  bad usage, an unreadable run report, or the --passcodes file exists (nothing read)
  3  aborted (authentication, missing permission)";

#[derive(Debug, clap::Args)]
pub(super) struct StatusArgs {
    /// The report `run` wrote (CSV or JSON Lines; for an xlsx report, the CSV `run`
    /// keeps beside it is read).
    #[arg(value_name = "REPORT")]
    run_report: PathBuf,
    /// Keep reading devices still pending until none is or this time is up, e.g. 10m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    wait: Option<std::time::Duration>,
    /// Write generated passcodes to this new file (mode 0600; refused if it exists).
    /// They are written nowhere else.
    #[arg(long, value_name = "FILE")]
    passcodes: Option<PathBuf>,
    /// Where to write the status report [default: beside REPORT, <stem>.status.csv or
    /// .jsonl, as REPORT]
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Also write the summary as JSON to this path.
    #[arg(long, value_name = "PATH")]
    summary_json: Option<PathBuf>,
    /// CSV (the status report, the passcodes file) without the UTF-8 byte-order mark.
    #[arg(long)]
    no_bom: bool,
    #[command(flatten)]
    tenant: TenantArgs,
    /// Follow up on a rehearsal (`run --simulate`): read its resets in the simulated
    /// tenant it saved beside REPORT (REPORT.sim.json); no real tenant is touched.
    #[arg(long, conflicts_with_all = ["auth", "tenant", "client_id", "managed_identity_client_id", "graph_url", "authority_url"])]
    simulate: bool,
    /// Reads per second at most [default: 100]
    #[arg(long, value_name = "PER_SECOND")]
    read_rate: Option<f64>,
    /// Devices read at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Per-request timeout, e.g. 30s, 500ms.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: std::time::Duration,
    /// Then reconcile the run with Intune's audit trail (`audit REPORT`, with --wait's
    /// time), writing the audit report beside REPORT.
    #[arg(long)]
    audit: bool,
}

impl StatusArgs {
    /// The sign-in flags, for the commands the summary's next steps print.
    pub(super) fn sign_in_words(&self) -> Vec<String> {
        self.tenant.words()
    }

    /// The configuration, whether it follows up on a rehearsal (`--simulate`), and the
    /// audit that follows it (`--audit`).
    pub(super) fn into_config(
        self,
    ) -> Result<(StatusConfig, bool, Option<crate::audit::AuditConfig>), CommandError> {
        let mut settings = Settings {
            concurrency: self.concurrency.max(1),
            request_timeout: self.timeout,
            ..Settings::default()
        };
        if let Some(r) = super::checked_read_rate(self.read_rate)? {
            settings.read_rate = r;
        }
        let simulate = self.simulate;
        let tenant = self.tenant.tenant();
        let audit = self.audit.then(|| crate::audit::AuditConfig {
            run_report: self.run_report.clone(),
            report: None,
            summary_json: None,
            bom: !self.no_bom,
            wait: self.wait,
            poll_interval: crate::audit::POLL_INTERVAL,
            settings: Settings {
                concurrency: 1,
                ..settings.clone()
            },
            tenant: tenant.clone(),
        });
        Ok((
            StatusConfig {
                run_report: self.run_report,
                report: self.report,
                passcodes: self.passcodes,
                summary_json: self.summary_json,
                bom: !self.no_bom,
                wait: self.wait,
                poll_interval: status::POLL_INTERVAL,
                settings,
                tenant,
                into_run_report: false,
                run_sheet: None,
            },
            simulate,
            audit,
        ))
    }
}
