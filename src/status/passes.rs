//! The passes of `status`: every device read once, then (with `--wait`) the devices
//! whose reset is still open read again, until none is or the time is up.
//!
//! A pass reads at most `--concurrency` devices at once through the shared [`Pacer`](crate::pacing::Pacer),
//! so the limiters, the shared 429 pause and the retries apply to every read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::graph::GraphApi;
use crate::pacing::Pacer;
use crate::pacing::workers::Workers;
use crate::report::Outcome;

use super::{Found, Query, StatusConfig, state};

/// Reads every device once, then (with `--wait`) the open ones again until none is
/// open or the time is up. Returns the last state of each row, by ordinal, and the
/// number of passes.
pub(super) async fn poll<G: GraphApi>(
    config: &StatusConfig,
    pacer: &Arc<Pacer<G>>,
    queries: &[Query],
    ended: HashMap<u64, Found>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (HashMap<u64, Found>, u32) {
    let deadline = config.wait.map(|w| Instant::now() + w);
    let mut todo: Vec<&Query> = queries
        .iter()
        .filter(|q| !ended.contains_key(&q.ordinal))
        .collect();
    let mut found = ended;
    let mut passes = 0;
    while !todo.is_empty() {
        passes += 1;
        for (ordinal, f) in read_pass(pacer, &todo, config.settings.concurrency).await {
            found.insert(ordinal, f);
        }
        todo.retain(|q| {
            found
                .get(&q.ordinal)
                .is_some_and(|f| state::is_open(&f.state))
        });
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match remaining {
            _ if todo.is_empty() || pacer.is_aborted() => break,
            None => break,
            Some(left) if left.is_zero() => break,
            Some(left) => {
                let pause = pause_after(passes, config.poll_interval).min(left);
                let now = std::time::SystemTime::now();
                tracing::info!(
                    "{} device{} still pending; reading again in {:.0} s: next pass at {} UTC",
                    todo.len(),
                    if todo.len() == 1 { "" } else { "s" },
                    pause.as_secs_f64(),
                    crate::until::clock(now + pause)
                );
                // An interrupt while waiting: stop waiting, write what is known.
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    // (A stop that can no longer come, its sender gone, disables this.)
                    Ok(_) = stop.wait_for(|stopped| *stopped) => break,
                }
            }
        }
    }
    // A read task that panicked left no state: say so rather than leave the row blank.
    for q in queries {
        found
            .entry(q.ordinal)
            .or_insert_with(|| Found::own(state::NOT_CHECKED, "the read stopped unexpectedly"));
    }
    (found, passes)
}

/// One device's state now: the run's reset among its `deviceActionResults` (sent at
/// `sent_at`), with its user and what a bad ending means on `platform`; a read that
/// failed is a state of this module's own. `status`'s passes and `run --follow`'s reads
/// while the run sends both read through it.
pub(super) async fn read_state<G: GraphApi>(
    pacer: &Pacer<G>,
    id: &str,
    action: crate::rules::Family,
    sent_at: Option<std::time::SystemTime>,
    platform: &str,
) -> Found {
    let mut found = match pacer.action_results(id).await {
        Ok(actions) => {
            let mut found = state::select(&actions.results, action, sent_at);
            found.user = actions.user_principal_name;
            found
        }
        Err(failure) => {
            let word = match failure.outcome {
                Outcome::NotFound => state::DEVICE_NOT_FOUND,
                Outcome::NotAttempted => state::NOT_CHECKED,
                _ => state::READ_FAILED,
            };
            Found::own(word, failure.detail)
        }
    };
    found.meaning = super::codes::explain(&found.state, &found.error_code, platform);
    found
}

/// The pause after pass `passes` (1, 2, ...): a second, doubling up to `interval`. A
/// reset Graph carries out at once is seen soon after; one that waits for its device
/// to check in is read every `interval` after the first few passes.
pub(super) fn pause_after(passes: u32, interval: Duration) -> Duration {
    Duration::from_secs(1)
        .saturating_mul(1 << passes.saturating_sub(1).min(8))
        .min(interval)
}

/// One round of reads, at most `concurrency` at once.
async fn read_pass<G: GraphApi>(
    pacer: &Arc<Pacer<G>>,
    todo: &[&Query],
    concurrency: usize,
) -> Vec<(u64, Found)> {
    let mut workers = Workers::new(concurrency);
    let mut out = Vec::with_capacity(todo.len());
    for q in todo {
        let pacer = pacer.clone();
        let (ordinal, id, sent_at, action) = (q.ordinal, q.device_id.clone(), q.sent_at, q.action);
        let platform = q.platform.clone();
        let read = async move {
            (
                ordinal,
                read_state(&pacer, &id, action, sent_at, &platform).await,
            )
        };
        // A read task that panics (a bug) leaves its row a state that says so.
        let lost = move |how: crate::pacing::workers::Lost| {
            (
                ordinal,
                Found::own(
                    state::NOT_CHECKED,
                    format!("the read stopped unexpectedly ({})", how.as_str()),
                ),
            )
        };
        out.extend(workers.spawn(read, lost).await);
    }
    out.extend(workers.finish().await);
    out
}
