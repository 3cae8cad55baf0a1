//! The verdict on one device: what the run says it sent, against what Intune recorded.
//! Pure: the records are read before, the report written after.

use std::time::{Duration, SystemTime};

use crate::graph::audit::{AuditList, AuditRecord};
use crate::report::Outcome;

/// Clocks differ: ours (the ledger's times) and Intune's (its records' times). A record
/// this far before the run's first send or after its last still counts as the run's.
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// What the audit concludes for a run row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// One record of a reset this run sent.
    Confirmed,
    /// The run sent it (Graph accepted it, or its answer was lost); Intune has no record.
    Missing,
    /// Intune records a reset of this device in the run's span that this run did not send.
    NotSentByThisRun,
    /// More than one record for this device in the run's span.
    Twice,
    /// Nothing sent, nothing recorded: nothing to prove.
    None,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Missing => "missing",
            Verdict::NotSentByThisRun => "not_sent_by_this_run",
            Verdict::Twice => "twice",
            Verdict::None => "none",
        }
    }

    pub const ALL: [Verdict; 5] = [
        Verdict::Confirmed,
        Verdict::Missing,
        Verdict::NotSentByThisRun,
        Verdict::Twice,
        Verdict::None,
    ];
}

/// Who the run signed in as: the identity Intune's records should name.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub client_id: Option<String>,
    pub user: Option<String>,
}

impl Identity {
    /// The record names this identity.
    fn names(&self, r: &AuditRecord) -> bool {
        let same = |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
        match (&r.user, &self.user) {
            (Some(_), Some(_)) => same(&r.user, &self.user),
            (Some(_), None) => false,
            _ => same(&r.app, &self.client_id),
        }
    }

    /// The record names someone: a user or an app.
    fn named(r: &AuditRecord) -> bool {
        r.user.is_some() || r.app.is_some()
    }
}

/// The run's sends to one device, from its ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub sends: u32,
    pub first: SystemTime,
    pub last: SystemTime,
}

/// What the run says of one row whose device this audit judges.
#[derive(Debug, Clone)]
pub struct RowFacts {
    pub outcome: Outcome,
    pub reason: String,
    /// The last POST's `client-request-id`, lower case.
    pub client_request_id: String,
    pub sent: Option<Sent>,
}

impl RowFacts {
    /// The run believes a reset reached Intune, or may have.
    fn expected(&self) -> bool {
        self.outcome == Outcome::Succeeded || self.reason == "outcome_unknown"
    }
}

/// The verdict on a row, the records it rests on, and why, in a sentence.
#[derive(Debug, Clone)]
pub struct Judged {
    pub verdict: Verdict,
    /// How the record was tied to the run's send: `correlation_id`, `device_and_time`.
    pub matched_by: &'static str,
    /// How many resets Intune records (one reset is in both lists: counted once).
    pub count: usize,
    pub records: Vec<AuditRecord>,
    pub detail: String,
}

impl Judged {
    /// The records people read: the audit log's when it has any, else the remote
    /// action audits'.
    pub fn shown(&self) -> impl Iterator<Item = &AuditRecord> {
        let list = primary(&self.records);
        self.records.iter().filter(move |r| r.list == list)
    }
}

/// Judges one device: `records` are Intune's records of resets of it, from both lists,
/// already limited to the run's span; `settle` is how long after a send Graph may still
/// carry it out.
pub fn judge(row: &RowFacts, records: &[AuditRecord], who: &Identity, settle: Duration) -> Judged {
    let mut records = records.to_vec();
    records.sort_by(|a, b| a.at.cmp(&b.at).then(a.list.cmp(&b.list)));
    let count = |list| records.iter().filter(|r| r.list == list).count();
    // The same reset is in both lists: the larger count is how many there were.
    let n = count(AuditList::Events).max(count(AuditList::RemoteActions));
    let judged = |verdict, matched_by, detail: String| Judged {
        verdict,
        matched_by,
        count: n,
        records: records.clone(),
        detail,
    };
    if n == 0 {
        return match (row.expected(), row.outcome) {
            (false, _) => judged(Verdict::None, "", String::new()),
            (true, Outcome::Succeeded) => judged(
                Verdict::Missing,
                "",
                "Graph accepted this reset, and Intune's audit has no record of it".into(),
            ),
            (true, _) => judged(
                Verdict::Missing,
                "",
                "the run's answer was lost, and Intune's audit has no record: the reset most likely never reached Intune (`run --resume` settles it through deviceActionResults before anything is sent)".into(),
            ),
        };
    }
    if n > 1 {
        let times: Vec<&str> = records
            .iter()
            .filter(|r| r.list == primary(&records))
            .map(|r| r.at_text.as_str())
            .collect();
        return judged(
            Verdict::Twice,
            "",
            format!(
                "Intune records {n} passcode resets of this device in the run's span ({})",
                times.join(", ")
            ),
        );
    }
    let record = records
        .iter()
        .find(|r| r.list == primary(&records))
        .unwrap_or(&records[0])
        .clone();
    let by = actor(&record);
    let at = &record.at_text;
    let Some(sent) = row.sent.filter(|s| s.sends > 0) else {
        return judged(
            Verdict::NotSentByThisRun,
            "",
            format!(
                "Intune records a passcode reset of this device by {by} at {at}; this run sent none"
            ),
        );
    };
    let correlated = !row.client_request_id.is_empty()
        && records
            .iter()
            .any(|r| r.correlation_id.as_deref() == Some(row.client_request_id.as_str()));
    let in_time = record
        .at
        .is_some_and(|t| t + CLOCK_SKEW >= sent.first && t <= sent.last + settle + CLOCK_SKEW);
    let foreign = Identity::named(&record) && !who.names(&record);
    let matched_by = if correlated {
        "correlation_id"
    } else if in_time && !foreign {
        "device_and_time"
    } else {
        let own = if row.expected() {
            "; this run's own reset has no record"
        } else {
            ""
        };
        let why = if foreign {
            "another identity"
        } else {
            "a time none of this run's sends explains"
        };
        return judged(
            Verdict::NotSentByThisRun,
            "",
            format!("Intune records a passcode reset of this device by {by} at {at} ({why}){own}"),
        );
    };
    let detail = match (row.outcome, row.reason.as_str()) {
        (Outcome::Succeeded, _) => format!("Intune records this run's reset at {at} ({by})"),
        (_, "outcome_unknown") => format!(
            "the run's answer was lost; Intune's audit shows the reset landed at {at} ({by})"
        ),
        (outcome, reason) => format!(
            "the run reported {} ({reason}), yet Intune records the reset at {at} ({by})",
            outcome.as_str()
        ),
    };
    judged(Verdict::Confirmed, matched_by, detail)
}

/// The list a device's records are told from: the audit log when it has any.
fn primary(records: &[AuditRecord]) -> AuditList {
    if records.iter().any(|r| r.list == AuditList::Events) {
        AuditList::Events
    } else {
        AuditList::RemoteActions
    }
}

/// Who a record says acted, for people.
pub fn actor(r: &AuditRecord) -> String {
    match (&r.user, &r.app) {
        (Some(user), _) => user.clone(),
        (None, Some(app)) => format!("app {app}"),
        (None, None) => "an unnamed identity".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_secs(60);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn record(list: AuditList, secs: u64, app: Option<&str>, corr: Option<&str>) -> AuditRecord {
        AuditRecord {
            list,
            id: format!("r{secs}"),
            device_id: "dev".into(),
            at_text: format!("t+{secs}"),
            at: Some(at(secs)),
            user: None,
            app: app.map(str::to_owned),
            correlation_id: corr.map(str::to_owned),
            action_state: None,
        }
    }

    fn us() -> Identity {
        Identity {
            client_id: Some("app-us".into()),
            user: None,
        }
    }

    fn sent_row(outcome: Outcome, reason: &str) -> RowFacts {
        RowFacts {
            outcome,
            reason: reason.into(),
            client_request_id: "c-1".into(),
            sent: Some(Sent {
                sends: 1,
                first: at(100),
                last: at(100),
            }),
        }
    }

    #[test]
    fn one_record_of_the_runs_reset_is_confirmed_by_its_correlation_id() {
        let row = sent_row(Outcome::Succeeded, "");
        let j = judge(
            &row,
            &[record(AuditList::Events, 101, Some("app-us"), Some("c-1"))],
            &us(),
            SETTLE,
        );
        assert_eq!(j.verdict, Verdict::Confirmed);
        assert_eq!(j.matched_by, "correlation_id");
    }

    #[test]
    fn without_a_matching_correlation_id_device_actor_and_time_confirm_it() {
        let row = sent_row(Outcome::Succeeded, "");
        let both = [
            record(AuditList::Events, 101, Some("app-us"), Some("other")),
            record(AuditList::RemoteActions, 101, None, None),
        ];
        let j = judge(&row, &both, &us(), SETTLE);
        assert_eq!(
            j.verdict,
            Verdict::Confirmed,
            "one reset, seen in both lists"
        );
        assert_eq!(j.matched_by, "device_and_time");
    }

    #[test]
    fn a_lost_answer_with_a_record_landed_and_without_one_is_missing() {
        let row = sent_row(Outcome::Failed, "outcome_unknown");
        let j = judge(
            &row,
            &[record(AuditList::Events, 130, Some("app-us"), None)],
            &us(),
            SETTLE,
        );
        assert_eq!(j.verdict, Verdict::Confirmed);
        assert!(j.detail.contains("landed"), "{}", j.detail);
        let j = judge(&row, &[], &us(), SETTLE);
        assert_eq!(j.verdict, Verdict::Missing);
        assert!(j.detail.contains("never reached Intune"), "{}", j.detail);
    }

    #[test]
    fn an_accepted_reset_without_a_record_is_missing() {
        let j = judge(&sent_row(Outcome::Succeeded, ""), &[], &us(), SETTLE);
        assert_eq!(j.verdict, Verdict::Missing);
    }

    #[test]
    fn two_records_are_twice_whoever_sent_them() {
        let row = sent_row(Outcome::Succeeded, "");
        let two = [
            record(AuditList::Events, 101, Some("app-us"), Some("c-1")),
            record(AuditList::Events, 900, Some("app-other"), None),
        ];
        let j = judge(&row, &two, &us(), SETTLE);
        assert_eq!(j.verdict, Verdict::Twice);
        assert!(
            j.detail.starts_with("Intune records 2 passcode resets"),
            "{}",
            j.detail
        );
    }

    #[test]
    fn a_record_of_a_device_the_run_did_not_send_is_not_the_runs() {
        let row = RowFacts {
            outcome: Outcome::Ineligible,
            reason: "reset_recently_done".into(),
            client_request_id: String::new(),
            sent: None,
        };
        let j = judge(
            &row,
            &[record(AuditList::Events, 101, Some("app-other"), None)],
            &us(),
            SETTLE,
        );
        assert_eq!(j.verdict, Verdict::NotSentByThisRun);
        assert!(j.detail.contains("this run sent none"), "{}", j.detail);
        assert_eq!(judge(&row, &[], &us(), SETTLE).verdict, Verdict::None);
    }

    #[test]
    fn another_identitys_record_is_not_taken_for_the_runs_own() {
        let row = sent_row(Outcome::Succeeded, "");
        let j = judge(
            &row,
            &[record(AuditList::Events, 101, Some("app-other"), None)],
            &us(),
            SETTLE,
        );
        assert_eq!(j.verdict, Verdict::NotSentByThisRun);
        assert!(j.detail.contains("own reset has no record"), "{}", j.detail);
    }

    #[test]
    fn a_record_long_after_the_runs_send_is_not_its_own() {
        let row = sent_row(Outcome::Succeeded, "");
        let late = 100 + SETTLE.as_secs() + CLOCK_SKEW.as_secs() + 1;
        let j = judge(
            &row,
            &[record(AuditList::Events, late, Some("app-us"), None)],
            &us(),
            SETTLE,
        );
        assert_eq!(j.verdict, Verdict::NotSentByThisRun);
    }

    #[test]
    fn a_refused_send_that_intune_carried_out_is_confirmed_and_says_so() {
        let row = sent_row(Outcome::Failed, "gave_up");
        let j = judge(
            &row,
            &[record(AuditList::Events, 101, Some("app-us"), Some("c-1"))],
            &us(),
            SETTLE,
        );
        assert_eq!(j.verdict, Verdict::Confirmed);
        assert!(j.detail.contains("yet Intune records"), "{}", j.detail);
    }

    #[test]
    fn a_delegated_run_is_named_by_its_user() {
        let who = Identity {
            client_id: Some("public-app".into()),
            user: Some("Ada@Contoso.com".into()),
        };
        let mut r = record(AuditList::Events, 101, Some("public-app"), None);
        r.user = Some("ada@contoso.com".into());
        let row = sent_row(Outcome::Succeeded, "");
        assert_eq!(
            judge(&row, &[r.clone()], &who, SETTLE).verdict,
            Verdict::Confirmed
        );
        r.user = Some("eve@contoso.com".into());
        assert_eq!(
            judge(&row, &[r], &who, SETTLE).verdict,
            Verdict::NotSentByThisRun,
            "another admin through the same app"
        );
    }
}
