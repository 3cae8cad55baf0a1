//! What `audit` tells a person (stderr) and a pipeline (`--summary-json`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;

use super::reconcile::{Judged, Verdict};
use crate::graph::audit::AuditList;
use crate::ledger::History;
use crate::report::ReportRow;

/// Devices named in the summary's lists, at most.
const LISTED: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct AuditSummary {
    pub run_report: PathBuf,
    /// The audit report, once written.
    pub report: Option<PathBuf>,
    /// Who ran it, in which tenant.
    pub run_by: String,
    pub run_started_at: String,
    /// The span of Intune's records the audit looked at (RFC 3339, UTC).
    pub span_from: String,
    pub span_to: String,
    /// Per list: pages read and passcode-reset records found (the last read).
    pub lists: BTreeMap<String, ListRead>,
    /// How many times the lists were read (`--wait` reads again).
    pub reads: u32,
    /// Run rows by verdict.
    pub verdicts: BTreeMap<String, u64>,
    /// Resets the run sent whose fate it did not know, which the audit settled.
    pub unknown_settled: u64,
    /// Devices by verdict, for the verdicts that need a look (at most 20 each).
    pub attention: BTreeMap<String, Vec<String>>,
    pub aborted: Option<String>,
    /// The ledger's last session closed it in order (an `end` line): else it was killed,
    /// or lines were cut off its end, and the audit covers only what it records.
    pub ledger_ended: bool,
    /// The sign-in flags the run used, for the commands the next steps print.
    #[serde(skip)]
    pub sign_in: Vec<String>,
    /// A rehearsal's audit (`--simulate`): the next steps say so too.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub simulated: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ListRead {
    pub pages: u32,
    pub records: usize,
}

impl AuditSummary {
    pub fn new(run_report: PathBuf) -> AuditSummary {
        AuditSummary {
            run_report,
            report: None,
            run_by: String::new(),
            run_started_at: String::new(),
            span_from: String::new(),
            span_to: String::new(),
            lists: BTreeMap::new(),
            reads: 0,
            verdicts: Verdict::ALL
                .iter()
                .map(|v| (v.as_str().to_owned(), 0))
                .collect(),
            unknown_settled: 0,
            attention: BTreeMap::new(),
            aborted: None,
            ledger_ended: true,
            sign_in: Vec::new(),
            simulated: false,
        }
    }

    pub(super) fn describe_run(&mut self, history: &History, from: SystemTime, to: SystemTime) {
        self.run_by = history
            .begin
            .origin
            .as_ref()
            .map(|o| o.describe())
            .unwrap_or_else(|| "an identity its ledger does not record".into());
        // A run across several tenants (issue 22): its other tenants, by id.
        if !history.tenants.is_empty() {
            let others: Vec<&str> = history.tenants.iter().map(|o| o.tenant.as_str()).collect();
            self.run_by
                .push_str(&format!(" and in tenants {}", others.join(", ")));
        }
        self.run_started_at = history.started_at.clone();
        // A ledger written before versions closed it with an end line (and chained its
        // lines) cannot say: it is not held against the run.
        self.ledger_ended = history.ended || history.chain.is_none();
        self.span_from = humantime::format_rfc3339_seconds(from).to_string();
        self.span_to = humantime::format_rfc3339_seconds(to).to_string();
    }

    pub(super) fn count_list(&mut self, list: AuditList, pages: u32, records: usize) {
        // A run across several tenants reads each list once per tenant: added up.
        let read = self
            .lists
            .entry(list.as_str().to_owned())
            .or_insert(ListRead {
                pages: 0,
                records: 0,
            });
        read.pages += pages;
        read.records += records;
    }

    pub(super) fn count(&mut self, row: &ReportRow, judged: Option<&Judged>) {
        let verdict = judged.map_or(Verdict::None, |j| j.verdict);
        *self
            .verdicts
            .entry(verdict.as_str().to_owned())
            .or_default() += 1;
        if verdict == Verdict::Confirmed && row.reason == "outcome_unknown" {
            self.unknown_settled += 1;
        }
        if !matches!(verdict, Verdict::Confirmed | Verdict::None) {
            let list = self
                .attention
                .entry(verdict.as_str().to_owned())
                .or_default();
            if list.len() < LISTED {
                let name = if row.device_name.is_empty() {
                    row.device_id.clone()
                } else {
                    format!("{} ({})", row.device_name, row.device_id)
                };
                list.push(name);
            }
        }
    }

    fn verdict(&self, v: Verdict) -> u64 {
        self.verdicts.get(v.as_str()).copied().unwrap_or(0)
    }

    /// Every reset the run sent is confirmed and nothing else was found. A ledger whose
    /// last session did not end in order (killed) may record sends whose rows its report
    /// does not hold yet: such an audit vouches for less than the whole run.
    pub fn all_confirmed(&self) -> bool {
        self.aborted.is_none()
            && self.ledger_ended
            && [Verdict::Missing, Verdict::NotSentByThisRun, Verdict::Twice]
                .iter()
                .all(|v| self.verdict(*v) == 0)
    }

    /// The text on stderr.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("audit of {}\n", self.run_report.display()));
        if !self.run_by.is_empty() {
            out.push_str(&format!(
                "  run by {}, started {}\n  Intune's records from {} to {}\n",
                self.run_by, self.run_started_at, self.span_from, self.span_to
            ));
        }
        if !self.ledger_ended {
            out.push_str("  note: the ledger has no end line after its last session: that session was killed, or lines were cut off the ledger's end. The audit covers the rows the report holds, not sends whose rows it does not hold yet (exit 1): finish the run with `--resume`, then audit it again\n");
        }
        for (list, read) in &self.lists {
            out.push_str(&format!(
                "  {list}: {} passcode reset record{} ({} page{})\n",
                read.records,
                if read.records == 1 { "" } else { "s" },
                read.pages,
                if read.pages == 1 { "" } else { "s" }
            ));
        }
        if let Some(why) = &self.aborted {
            out.push_str(&format!("aborted: {why}\n"));
            return out;
        }
        out.push_str("verdicts:\n");
        for v in Verdict::ALL {
            out.push_str(&format!("  {:<22}{:>6}\n", v.as_str(), self.verdict(v)));
        }
        if self.unknown_settled > 0 {
            out.push_str(&format!(
                "  {} reset{} whose answer was lost landed, by Intune's audit\n",
                self.unknown_settled,
                if self.unknown_settled == 1 { "" } else { "s" }
            ));
        }
        for (verdict, devices) in &self.attention {
            out.push_str(&format!("{verdict}: {}\n", devices.join(", ")));
        }
        if let Some(report) = &self.report {
            out.push_str(&format!("audit report: {}\n", report.display()));
        }
        out.push_str(&self.next_steps());
        out
    }

    /// What to do next, for the verdicts that need it (the CLI's "next steps" text).
    pub fn next_steps(&self) -> String {
        let report = crate::report::shown_path(&self.run_report);
        let sign_in: String = self
            .sign_in
            .iter()
            .map(|w| format!(" {}", crate::report::shell_word(w)))
            .collect();
        let sim = if self.simulated { " --simulate" } else { "" };
        let mut steps = Vec::new();
        if self.verdict(Verdict::Missing) > 0 {
            steps.push(format!(
                "missing: Intune may record an action minutes late. Read its audit again, waiting up to 30 minutes for the records, with\n      intune-reset audit {report}{sign_in} --wait 30m{sim}\n    A reset that stays missing was accepted by Graph but never recorded: look at the device in the admin center (Devices > the device > Device actions status)"
            ));
        }
        if self.verdict(Verdict::Twice) > 0 {
            steps.push("twice: these devices' passcodes were reset more than once in the run's span; the passcode that holds is the last one (`status` reads it)".into());
        }
        if self.verdict(Verdict::NotSentByThisRun) > 0 {
            steps.push("not_sent_by_this_run: someone else (another admin, another tool) reset these devices while the run went on; the audit report names who and when".into());
        }
        crate::report::next_steps_text(&steps)
    }
}
