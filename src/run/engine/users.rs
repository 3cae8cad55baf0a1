//! Actions on users (`revoke-sessions`, issue 21): the user is read first (their object
//! id is what the run claims, so a UPN and an id naming one user revoke once), then
//! `revokeSignInSessions` goes out within Entra's directory budget, never Intune's
//! ([`crate::pacing::Budget::Directory`]). Entra keeps no action state to follow; it
//! keeps when the user's sessions were last revoked (`signInSessionsValidFromDateTime`),
//! which settles a send whose answer was lost: a time at or after the send (less the
//! clock-skew allowance) means it landed.

use std::time::SystemTime;

use crate::graph::verify::{CLOCK_SKEW_ALLOWANCE, parse_timestamp};
use crate::graph::{ActionResult, DirectoryUser, GraphApi};
use crate::pacing::{Failure, ReadFailure};
use crate::planner::{Identity, Work};
use crate::report::{Outcome, ReportRow};
use crate::rules::{Action, Family};

use super::super::ledger::{Claim, RowKey};
use super::{End, Engine};

impl<G: GraphApi> Engine<G> {
    /// Reads the user a row names, within the directory budget.
    async fn read_user(&self, user: &str) -> Result<DirectoryUser, Failure> {
        self.pacer
            .read_directory(|c| Box::pin(self.pacer.graph.get_user(user, c)))
            .await
            .map(|reply| reply.value)
    }

    /// One user's revocation: read, claim, record, send.
    pub(super) async fn act_on_user(&self, key: RowKey, row: &ReportRow, work: &Work) -> End {
        let Identity::User(user) = &work.identity else {
            return End::new(
                Outcome::Failed,
                "internal_error",
                "a user action reached the engine without its user; nothing was sent",
            );
        };
        if self.is_aborted() {
            return End::new(Outcome::NotAttempted, "run_aborted", "");
        }
        let found = match self.read_user(user).await {
            Ok(found) if !found.id.trim().is_empty() => found,
            Ok(_) => {
                return End::new(
                    Outcome::Failed,
                    "rejected",
                    format!(
                        "Entra answered for the user '{user}' without an object id; nothing was sent"
                    ),
                );
            }
            Err(failure) => {
                return match failure.outcome {
                    Outcome::NotFound => End::new(
                        Outcome::NotFound,
                        "user_not_found",
                        format!("Entra has no user '{user}'; nothing was sent"),
                    ),
                    _ => failure.into(),
                };
            }
        };
        let id = found.id.trim().to_ascii_lowercase();
        let named = found
            .user_principal_name
            .clone()
            .unwrap_or_else(|| user.clone());
        let earlier = match self.claim(&id, Family::Sessions, key, row) {
            Ok(earlier) => earlier,
            Err(lost) => return lost,
        };
        if let Some(earlier) = earlier {
            return End::new(
                Outcome::Duplicate,
                "duplicate_user",
                format!(
                    "the same user ({named}, {id}) as {earlier}, whose sessions are revoked there"
                ),
            );
        }
        if self.dry {
            return End::new(
                Outcome::Planned,
                "",
                format!(
                    "would revoke the sign-in sessions of {named} (object id {id}); plan --live sends nothing"
                ),
            );
        }
        if let Some(ledger) = &self.ledger {
            let mut report = row.clone();
            report.user_principal_name = named;
            let claim = Claim {
                device: id.clone(),
                action: Action::RevokeSessions.as_str().to_owned(),
                report,
            };
            if let Err(e) = ledger.claim(key, &claim) {
                return self.unrecorded(ledger, e);
            }
        }
        self.reset(key, &id, Action::RevokeSessions, None, 0).await
    }

    /// Whether Entra shows the user's sessions revoked at or after `sent` (less the
    /// clock-skew allowance): as an entry [`super::confirmed`] can word.
    pub(super) async fn revoked_since(
        &self,
        id: &str,
        sent: SystemTime,
    ) -> Result<Option<ActionResult>, ReadFailure> {
        let user = self.read_user(id).await.map_err(|f| ReadFailure {
            outcome: f.outcome,
            detail: f.detail,
        })?;
        let earliest = sent
            .checked_sub(CLOCK_SKEW_ALLOWANCE)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let valid_from = user.sign_in_sessions_valid_from_date_time;
        let revoked = valid_from
            .as_deref()
            .and_then(parse_timestamp)
            .is_some_and(|t| t >= earliest);
        Ok(revoked.then(|| ActionResult {
            action_name: Some(Family::Sessions.graph_name().into()),
            start_date_time: valid_from,
            ..ActionResult::default()
        }))
    }
}
