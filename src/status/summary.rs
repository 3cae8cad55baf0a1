//! The summary `status` ends with: devices grouped by action state, the ones still
//! pending, the ones that failed with their error codes, and where the passcodes are.
//!
//! It never holds a passcode: only how many were generated and where they were written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::state::{Found, is_done, is_failure, is_open};
use crate::report::shown_path as shown;

/// The most devices a list in the text shows; the JSON and the report have all.
const SHOWN: usize = 20;

/// One device in a list of the summary.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeviceState {
    /// The Intune id.
    pub device_id: String,
    /// As the run report names it, so a person recognises the device.
    pub device_name: String,
    /// Graph's `actionState` or one of `status`'s own words.
    pub action_state: String,
    /// Graph's `errorCode`, when not 0.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error_code: String,
    /// Why it could not be read, for `read_failed` and `device_not_found`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// What a bad ending means and what to do ([`super::codes::explain`]).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub meaning: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusSummary {
    /// `status`, as the other commands' summaries name themselves.
    pub command: String,
    /// The run report read.
    pub run_report: PathBuf,
    /// Rows in the run report (and in the status report).
    pub rows: u64,
    /// Rows whose device was read (succeeded resets, and lost answers).
    pub queried: u64,
    /// Some row read is another action than a passcode reset (issue 21): the summary
    /// speaks of actions, not resets.
    #[serde(skip)]
    pub other_actions: bool,
    /// Queried devices by action state.
    pub states: BTreeMap<String, u64>,
    /// Devices still `pending`, `active` or `none` at the end.
    pub pending: Vec<DeviceState>,
    /// Devices whose reset failed, was not supported or was canceled.
    pub failed: Vec<DeviceState>,
    /// Devices with no reset to show: not found, unreadable, not checked, unknown.
    pub unresolved: Vec<DeviceState>,
    /// Passcodes Graph generated for these resets.
    pub passcodes_generated: u64,
    /// Where they were written (`--passcodes`), if anywhere.
    pub passcodes_file: Option<PathBuf>,
    /// Pending devices whose reset will generate a passcode (Android, Windows 10
    /// Mobile): `status --wait` with `--passcodes` collects them.
    pub pending_generating: u64,
    /// Until when Graph shows the generated passcodes: 7 days after the first of these
    /// resets was sent (RFC 3339), when the report says when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passcodes_until: Option<String>,
    /// Rounds of reads (more than one with `--wait`).
    pub passes: u32,
    /// Requests sent to Graph, retries included.
    pub requests: u64,
    /// 429s met (each paused every worker).
    pub throttled: u64,
    /// The status report written, if it was.
    pub report: Option<PathBuf>,
    pub elapsed_seconds: f64,
    /// Why the command stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// The sign-in flags the command was given, repeated by the commands its next
    /// steps print (set by `cli`).
    #[serde(skip)]
    pub sign_in: Vec<String>,
    /// A rehearsal's (`--simulate`): the next steps go on in its saved tenant.
    #[serde(skip)]
    pub simulated: bool,
    /// A report across several tenants (issue 22): each tenant's sign-in and states,
    /// by the name the rows give it; empty (and absent from the JSON) otherwise.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tenants: BTreeMap<String, TenantStatus>,
}

/// One tenant of a `status` across several.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TenantStatus {
    /// Who signed in there (absent: it could not be signed in to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_in: Option<crate::graph::SignedIn>,
    /// Its rows whose device was to be read, and their states.
    pub queried: u64,
    pub states: BTreeMap<String, u64>,
    /// Requests sent to it, and 429s it answered.
    pub requests: u64,
    pub throttled: u64,
    /// Why its reads stopped, or could not start (its rows are `not_checked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
}

impl StatusSummary {
    pub fn new(run_report: PathBuf) -> StatusSummary {
        StatusSummary {
            command: "status".into(),
            run_report,
            ..StatusSummary::default()
        }
    }

    /// Counts one queried device by its final state.
    pub fn count(
        &mut self,
        device_id: &str,
        device_name: &str,
        platform: &str,
        action: crate::rules::Family,
        found: &Found,
    ) {
        self.queried += 1;
        if action != crate::rules::Family::Passcode {
            self.other_actions = true;
        }
        *self.states.entry(found.state.clone()).or_default() += 1;
        if found.passcode.is_some() {
            self.passcodes_generated += 1;
        }
        let device = || DeviceState {
            device_id: device_id.to_owned(),
            device_name: device_name.to_owned(),
            action_state: found.state.clone(),
            error_code: found.error_code.clone(),
            detail: found.detail.clone(),
            meaning: found.meaning.clone(),
        };
        if is_open(&found.state) {
            // Only a passcode reset generates one (a lock or a rotation never does).
            if action == crate::rules::Family::Passcode
                && crate::report::generates_passcode(platform)
            {
                self.pending_generating += 1;
            }
            self.pending.push(device());
        } else if is_failure(&found.state) {
            self.failed.push(device());
        } else if !is_done(&found.state) {
            self.unresolved.push(device());
        }
    }

    /// What the summary calls what it read: `reset`, or `action` once a row of another
    /// action was read.
    fn noun(&self) -> &'static str {
        if self.other_actions {
            "action"
        } else {
            "reset"
        }
    }

    /// Every queried device is `done` (and the command was not stopped).
    pub fn all_done(&self) -> bool {
        self.aborted.is_none() && self.states.iter().all(|(s, n)| *n == 0 || is_done(s))
    }

    /// The text people read.
    pub fn render(&self) -> String {
        if let (0, Some(why)) = (self.passes, &self.aborted) {
            let mut out = format!(
                "status: nothing was read from Graph for {}\nABORTED: {why}\n",
                self.run_report.display()
            );
            self.render_tenants(&mut out);
            return out;
        }
        let mut out = format!(
            "status: {} row{} in {}; {} {}{} checked in {} pass{} ({} requests, {} throttled)\n",
            self.rows,
            plural(self.rows),
            self.run_report.display(),
            self.queried,
            self.noun(),
            plural(self.queried),
            self.passes,
            if self.passes == 1 { "" } else { "es" },
            self.requests,
            self.throttled,
        );
        if self.queried == 0 {
            out.push_str(
                "  no row of the run report holds an action with a state to follow that was sent: nothing to check\n",
            );
        }
        if !self.states.is_empty() {
            out.push_str("action states:\n");
            let width = self.states.keys().map(String::len).max().unwrap_or(0);
            for (state, n) in &self.states {
                out.push_str(&format!("  {state:<width$}  {n:>7}\n"));
            }
        }
        list(&mut out, "still pending", &self.pending);
        failures(&mut out, &self.failed);
        list(
            &mut out,
            &format!("no {} to show", self.noun()),
            &self.unresolved,
        );
        match (&self.passcodes_file, self.passcodes_generated) {
            (Some(path), n) => out.push_str(&format!(
                "generated passcodes: {n}, written to {} (mode 0600)\n",
                path.display()
            )),
            (None, 0) => {}
            (None, n) => out.push_str(&format!("generated passcodes: {n}, not written anywhere\n")),
        }
        self.render_tenants(&mut out);
        if let Some(report) = &self.report {
            out.push_str(&format!("report: {}\n", report.display()));
        }
        out.push_str(&format!("elapsed: {:.1} s\n", self.elapsed_seconds));
        if let Some(why) = &self.aborted {
            out.push_str(&format!("ABORTED: {why}\n"));
        }
        out.push_str(&self.next_steps());
        out
    }

    /// The `tenants` section of a report across several: each tenant's states, its
    /// requests, and who signed in there or why it was not read.
    fn render_tenants(&self, out: &mut String) {
        if self.tenants.is_empty() {
            return;
        }
        out.push_str(&format!("tenants ({}):\n", self.tenants.len()));
        for (name, t) in &self.tenants {
            let states: Vec<String> = t.states.iter().map(|(s, n)| format!("{s} {n}")).collect();
            let who = match (&t.signed_in, &t.aborted) {
                (None, Some(why)) => format!("NOT READ: {why}"),
                (_, Some(why)) => format!("stopped: {why}"),
                (Some(who), None) => format!("as {}", who.describe()),
                (None, None) => String::new(),
            };
            out.push_str(&format!(
                "  {name}: {}; {} requests, {} throttled; {who}\n",
                if states.is_empty() {
                    "nothing to read".to_owned()
                } else {
                    states.join(", ")
                },
                t.requests,
                t.throttled
            ));
        }
    }

    /// What to do next, with the commands: hand out the passcodes (or collect them
    /// while Graph shows them), follow the pending resets, retry the ones that failed.
    pub fn next_steps(&self) -> String {
        let run_report = shown(&self.run_report);
        let sign_in: String = self
            .sign_in
            .iter()
            .map(|w| format!(" {}", crate::report::shell_word(w)))
            .collect();
        let fresh = crate::report::fresh_passcodes_file();
        let until = self
            .passcodes_until
            .as_deref()
            .map(|t| format!(" (Graph shows them until about {t})"))
            .unwrap_or_default();
        let sim = if self.simulated { " --simulate" } else { "" };
        let mut steps = Vec::new();
        let pending = self.pending.len() as u64;
        // Unwritten passcodes and pending resets: one `status --wait --passcodes`
        // collects both.
        let unwritten = match (&self.passcodes_file, self.passcodes_generated) {
            (None, n) if n > 0 => n,
            _ => 0,
        };
        match (&self.passcodes_file, self.passcodes_generated) {
            (_, 0) => {}
            (None, _) if pending > 0 => {}
            (Some(path), n) => steps.push(format!(
                "give each of the {n} passcode{} in {} to its device's user, then delete the file",
                plural(n),
                shown(path)
            )),
            (None, n) => steps.push(format!(
                "{n} generated passcode{} {} not written anywhere: collect them{until}, into a new file only you can read, with\n      intune-reset status {run_report}{sign_in} --passcodes {fresh}{sim}",
                plural(n),
                if n == 1 { "is" } else { "are" },
            )),
        }
        if pending > 0 {
            let passcodes = if self.pending_generating > 0 || unwritten > 0 {
                format!(" --passcodes {fresh}")
            } else {
                String::new()
            };
            let mut generate = match (pending, self.pending_generating) {
                (_, 0) => String::new(),
                (1, _) => format!("; it will generate a passcode{until}"),
                (_, n) => format!("; {n} of them will generate a passcode{until}"),
            };
            if unwritten > 0 {
                generate.push_str(&format!(
                    "; the {unwritten} passcode{} already generated {} not written anywhere, and this collects {} too",
                    plural(unwritten),
                    if unwritten == 1 { "is" } else { "are" },
                    if unwritten == 1 { "it" } else { "them" },
                ));
            }
            steps.push(format!(
                "{pending} {}{} still pending: each device acts on it at its next check-in{generate}. Follow {} with\n      intune-reset status {run_report}{sign_in} --wait 30m{passcodes}{sim}",
                self.noun(),
                if pending == 1 { " is" } else { "s are" },
                if pending == 1 { "it" } else { "them" },
            ));
        }
        let failed = self.failed.len() as u64;
        if failed > 0 {
            let job = self
                .report
                .as_deref()
                .map(shown)
                .unwrap_or_else(|| "STATUS_REPORT".into());
            steps.push(format!(
                "{failed} {}{} ended badly on the device (why, above). Once the cause is fixed, retry only those: this report read as a job {} (see them first with `intune-reset plan {job}`)\n      intune-reset run {job}{sign_in}{sim}",
                self.noun(),
                plural(failed),
                if self.other_actions {
                    "sends again only the actions that failed"
                } else {
                    "resets again only the devices whose reset failed"
                },
            ));
        }
        crate::report::next_steps_text(&steps)
    }
}

/// The failed devices grouped by what their ending means: each sentence once, then
/// its devices.
fn failures(out: &mut String, devices: &[DeviceState]) {
    if devices.is_empty() {
        return;
    }
    out.push_str(&format!("failed ({}):\n", devices.len()));
    let mut groups: Vec<(&str, &str, Vec<&DeviceState>)> = Vec::new();
    for d in devices {
        match groups
            .iter_mut()
            .find(|(state, meaning, _)| *state == d.action_state && *meaning == d.meaning)
        {
            Some((_, _, members)) => members.push(d),
            None => groups.push((&d.action_state, &d.meaning, vec![d])),
        }
    }
    for (state, meaning, members) in groups {
        out.push_str(&format!("  {} {state}: {meaning}\n", members.len()));
        for d in members.iter().take(SHOWN) {
            let name = if d.device_name.is_empty() {
                String::new()
            } else {
                format!(" ({})", d.device_name)
            };
            out.push_str(&format!("    {}{name}\n", d.device_id));
        }
        if members.len() > SHOWN {
            out.push_str(&format!(
                "    ... and {} more: see the report\n",
                members.len() - SHOWN
            ));
        }
    }
}

fn list(out: &mut String, title: &str, devices: &[DeviceState]) {
    if devices.is_empty() {
        return;
    }
    out.push_str(&format!("{title} ({}):\n", devices.len()));
    for d in devices.iter().take(SHOWN) {
        let name = if d.device_name.is_empty() {
            String::new()
        } else {
            format!(" ({})", d.device_name)
        };
        let code = if d.error_code.is_empty() {
            String::new()
        } else {
            format!(", error code {}", d.error_code)
        };
        let detail = if d.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", d.detail)
        };
        out.push_str(&format!(
            "  {}{name}: {}{code}{detail}\n",
            d.device_id, d.action_state
        ));
    }
    if devices.len() > SHOWN {
        out.push_str(&format!(
            "  ... and {} more: see the report\n",
            devices.len() - SHOWN
        ));
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Secret;
    use crate::status::state::{DEVICE_NOT_FOUND, NOT_FOUND_IN_RESULTS};

    fn found(state: &str, code: &str, passcode: Option<&str>) -> Found {
        Found {
            state: state.into(),
            updated_at: "2026-11-22T02:00:10Z".into(),
            error_code: code.into(),
            passcode: passcode.map(Secret::new),
            detail: String::new(),
            user: None,
            meaning: String::new(),
        }
    }

    /// Counts `found` as `status` does: its meaning read from its state and platform,
    /// as the read pass sets it.
    fn count(s: &mut StatusSummary, id: &str, name: &str, platform: &str, found: &Found) {
        let mut found = found.clone();
        found.meaning = crate::status::codes::explain(&found.state, &found.error_code, platform);
        s.count(id, name, platform, crate::rules::Family::Passcode, &found);
    }

    fn sample(passcodes_file: Option<PathBuf>) -> StatusSummary {
        let mut s = StatusSummary::new(PathBuf::from("reports/job-20261122T020000Z.csv"));
        s.rows = 9;
        s.passes = 3;
        s.requests = 11;
        s.throttled = 1;
        s.elapsed_seconds = 31.24;
        s.passcodes_file = passcodes_file;
        s.report = Some(PathBuf::from("reports/job-20261122T020000Z.status.csv"));
        let wp = "android_work_profile";
        count(
            &mut s,
            "a1",
            "Pixel 7",
            wp,
            &found("done", "", Some("48151623")),
        );
        count(
            &mut s,
            "a2",
            "Galaxy Tab",
            wp,
            &found("done", "", Some("42424242")),
        );
        count(&mut s, "a3", "iPhone 15", "ios", &found("done", "", None));
        count(
            &mut s,
            "a4",
            "Pixel 8",
            wp,
            &found("notSupported", "", None),
        );
        count(
            &mut s,
            "a8",
            "iPhone 12",
            "ios",
            &found("failed", "-2016331099", None),
        );
        count(
            &mut s,
            "a9",
            "Zebra",
            "android_dedicated",
            &found("failed", "1001", None),
        );
        count(&mut s, "a5", "", wp, &found("pending", "", None));
        count(
            &mut s,
            "a6",
            "Kiosk",
            wp,
            &Found::own(NOT_FOUND_IN_RESULTS, ""),
        );
        count(
            &mut s,
            "a7",
            "Old",
            "ios",
            &Found::own(DEVICE_NOT_FOUND, "Graph: ResourceNotFound (404)"),
        );
        s
    }

    #[test]
    fn the_summary_text_without_a_passcodes_file() {
        let s = sample(None);
        assert!(!s.all_done());
        insta::assert_snapshot!(s.render());
    }

    #[test]
    fn the_summary_text_with_a_passcodes_file() {
        let s = sample(Some(PathBuf::from("passcodes.csv")));
        insta::assert_snapshot!(s.render());
    }

    #[test]
    fn the_summary_never_holds_a_passcode() {
        let s = sample(None);
        let json = serde_json::to_string(&s).unwrap();
        for text in [s.render(), json, format!("{s:?}")] {
            assert!(
                !text.contains("48151623") && !text.contains("42424242"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_sign_in_that_fails_says_nothing_was_read() {
        let mut s = StatusSummary::new(PathBuf::from("run.csv"));
        s.aborted = Some("authentication failed: AADSTS7000215".into());
        insta::assert_snapshot!(s.render());
    }

    #[test]
    fn only_all_done_is_all_done() {
        let mut s = StatusSummary::new(PathBuf::from("r.csv"));
        assert!(s.all_done(), "nothing to check is not a failure");
        count(&mut s, "a", "", "ios", &found("done", "", None));
        assert!(s.all_done());
        s.aborted = Some("stopped".into());
        assert!(!s.all_done());
    }
}
