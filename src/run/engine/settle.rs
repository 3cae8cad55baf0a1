//! Did a reset land? The one policy for settling sends whose fate is unknown, the same
//! in the run (a timeout, a lost connection, a 5xx), after an interrupt (a device in
//! flight finishes settling) and on resume (the ledger's open sends): the same waits
//! and the same reads.
//!
//! A request abandoned by its client can still be carried out by Graph after the client
//! gave up. So Graph's state is read only once the *settle window* has passed since the
//! last send left (on the monotonic clock for this process's sends, on the wall clock
//! for an earlier process's) ([`Settings::settle_window`]: twice the request timeout, 60 s by default),
//! and it is read twice, `verify_delay` apart, before "no reset landed" is trusted. Any
//! reset entry that started since the first of the sends (less the clock-skew allowance
//! of [`crate::run::verify`]) is taken as theirs.
//!
//! While it waits, the device is parked ([`parked`]): it holds no worker.

use std::sync::Mutex;
use std::time::SystemTime;

use crate::graph::{ActionResult, GraphApi};

use super::super::ledger::OpenSends;
use super::Engine;
use crate::graph::verify::entry_since;
use crate::pacing::ReadFailure;
use crate::pacing::workers::parked;
use crate::rules::Family;

/// Reads of `deviceActionResults` before "no reset landed" is trusted.
pub const SETTLE_READS: u32 = 2;

impl<G: GraphApi> Engine<G> {
    /// `Ok(Some(entry))`: a reset from `sent` landed; `Ok(None)`: none did, so one may be
    /// sent; `Err`: Graph's state could not be read.
    pub async fn settle(
        &self,
        id: &str,
        action: Family,
        sent: OpenSends,
    ) -> Result<Option<ActionResult>, ReadFailure> {
        // The longer of this run's window and the one the sends were made under: a
        // resume with a shorter --timeout must not settle an earlier run's sends early.
        let window = self
            .pacer
            .settings
            .settle_window()
            .max(sent.window.unwrap_or_default());
        let wait = match sent.left {
            Some(left) => (left + window).saturating_duration_since(tokio::time::Instant::now()),
            None => (sent.last + window)
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
        };
        let until = SystemTime::now() + wait;
        let _settling = self.settling.start(until);
        if !wait.is_zero() {
            tracing::info!(
                device = id,
                wait_ms = wait.as_millis() as u64,
                "settling a lost answer {}: Graph's record is read before anything is sent again",
                crate::until::until_text(until, SystemTime::now())
            );
            // Parked: the device gives its worker to the next one for the window, so
            // a few lost answers do not hold the pipeline (issue 19).
            parked(tokio::time::sleep(wait)).await;
        }
        for _ in 0..SETTLE_READS {
            parked(tokio::time::sleep(self.pacer.settings.verify_delay)).await;
            if action.on_users() {
                if let Some(found) = self.revoked_since(id, sent.first).await? {
                    return Ok(Some(found));
                }
                continue;
            }
            let reply = self
                .pacer
                .read_device(|c| Box::pin(self.pacer.graph.action_results(id, c)))
                .await
                .map_err(|failure| ReadFailure {
                    outcome: failure.outcome,
                    detail: failure.detail,
                })?;
            if let Some(found) = entry_since(&reply.value.results, action, sent.first) {
                return Ok(Some(found.clone()));
            }
        }
        Ok(None)
    }
}

/// The lost answers being settled, and when each one's window ends.
#[derive(Default)]
pub(super) struct Settling {
    windows: Mutex<Vec<SystemTime>>,
}

/// One settle in progress; it ends when dropped.
pub(super) struct SettleGuard<'a> {
    of: &'a Settling,
    until: SystemTime,
}

impl Settling {
    pub(super) fn start(&self, until: SystemTime) -> SettleGuard<'_> {
        self.lock().push(until);
        SettleGuard { of: self, until }
    }

    /// How many are being settled, and when the last window ends.
    pub(super) fn now(&self) -> (u64, Option<SystemTime>) {
        let windows = self.lock();
        (windows.len() as u64, windows.iter().max().copied())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SystemTime>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SettleGuard<'_> {
    fn drop(&mut self) {
        let mut windows = self.of.lock();
        if let Some(at) = windows.iter().position(|u| *u == self.until) {
            windows.swap_remove(at);
        }
    }
}
