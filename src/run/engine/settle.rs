//! Did a reset land? Settling the fate of a reset whose answer was lost, or that an
//! interrupted run sent, by reading the device's `deviceActionResults` (see
//! [`crate::run::verify`]) before anything is sent again.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::graph::{ActionResult, CallError, CallErrorKind, GraphApi};
use crate::report::Outcome;
use crate::rules::Action;

use super::super::journal::Sending;
use super::super::verify::reset_since;
use super::{End, Engine, effect};

impl<G: GraphApi> Engine<G> {
    /// A reset the interrupted run may have sent: `Some` final outcome when Graph shows
    /// it, `None` when Graph has no reset since, so it may be sent now.
    pub(super) async fn settle_prior(&self, prior: &Sending) -> Result<Option<End>, End> {
        let Some(sent_at) = prior.sent_at() else {
            return Ok(None);
        };
        // A request the killed process sent may still be in Graph's hands: give it as
        // long as a request may take before reading.
        if let Ok(age) = SystemTime::now().duration_since(sent_at)
            && age < self.settings.request_timeout
        {
            tokio::time::sleep(self.settings.request_timeout - age).await;
        }
        let reply = self
            .read(|c| Box::pin(self.graph.action_results(&prior.device_id, c)))
            .await
            .map_err(|read_failure| {
                End::new(
                    Outcome::Failed,
                    "outcome_unknown",
                    format!(
                        "the interrupted run sent a reset at {} and deviceActionResults could not be read ({}); not sent again. Check it with `intune-reset status`",
                        prior.sent_at, read_failure.detail
                    ),
                )
            })?;
        Ok(reset_since(&reply.value, sent_at).map(|entry| {
            let mut end = End::new(
                Outcome::Succeeded,
                "",
                format!(
                    "confirmed on resume: the interrupted run sent a reset at {} and deviceActionResults shows it (state {}); not sent again",
                    prior.sent_at,
                    entry.action_state.as_deref().unwrap_or("unknown")
                ),
            );
            end.status = Some(reply.status);
            end.request_id = reply.request_id.clone();
            end.client_request_id = Some(reply.client_request_id.clone());
            end
        }))
    }

    /// After a lost answer: `Some` final outcome when `deviceActionResults` shows the
    /// reset (or cannot be read, and then nothing is sent again); `None` when Graph
    /// shows no reset from it, so it may be sent again.
    pub(super) async fn settle_lost_answer(
        &self,
        id: &str,
        sent_at: SystemTime,
        error: &CallError,
        action: Action,
    ) -> Option<End> {
        match self.verify(id, sent_at, error).await {
            Ok(Some(entry)) => {
                self.counters
                    .confirmed_by_results
                    .fetch_add(1, Ordering::Relaxed);
                let mut end = End::from_error(Outcome::Succeeded, "", error);
                end.detail = format!(
                    "the answer was lost ({}), but deviceActionResults shows the reset (state {}, started {}): confirmed, not sent again; {}",
                    error.message,
                    entry.action_state.as_deref().unwrap_or("unknown"),
                    entry.start_date_time.as_deref().unwrap_or("?"),
                    effect(action)
                );
                Some(end)
            }
            Ok(None) => None,
            Err(read_failure) => {
                let mut end = End::from_error(Outcome::Failed, "outcome_unknown", error);
                end.detail = format!(
                    "the answer was lost ({}) and deviceActionResults could not be read ({}); not sent again, to avoid a second passcode. Check it with `intune-reset status`",
                    error.message, read_failure.detail
                );
                Some(end)
            }
        }
    }

    /// Reads the device's `deviceActionResults` for a reset sent at `sent_at`.
    ///
    /// After a timeout the request may still be in Graph's hands: a request abandoned
    /// by the client can be processed after it gave up. So the first read waits as long
    /// again as the timeout, and a second read follows before the answer "it did not
    /// land" is trusted. A dropped connection or a 5xx is over on Graph's side: one read
    /// after a short delay.
    async fn verify(
        &self,
        id: &str,
        sent_at: SystemTime,
        error: &CallError,
    ) -> Result<Option<ActionResult>, End> {
        let reads = if error.kind == CallErrorKind::Timeout {
            tokio::time::sleep(self.settings.request_timeout).await;
            2
        } else {
            1
        };
        for _ in 0..reads {
            tokio::time::sleep(self.settings.verify_delay).await;
            let reply = self
                .read(|c| Box::pin(self.graph.action_results(id, c)))
                .await?;
            if let Some(found) = reset_since(&reply.value, sent_at) {
                return Ok(Some(found.clone()));
            }
        }
        Ok(None)
    }
}
