//! `run --follow` while the run still sends (issue 19): each reset Graph accepted is
//! read in `deviceActionResults` a little after it left, and again later while it is
//! open, beside the POSTs of the devices after it, through the run's own [`Pacer`] (one
//! budget, one 429 pause). What ends (`done`, `failed`, ...) is kept; when the run is
//! over, `status` reads only the devices still open, so following costs Graph's
//! completion time and one read after the last POST instead of a second pass over
//! every device.
//!
//! The follower reads at most [`FOLLOW_RATE`] a second, well inside what the reads'
//! share of the budget leaves beside the run's own reads (a check before each POST,
//! lookups): it never slows the resets.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::graph::GraphApi;
use crate::pacing::Pacer;
use crate::pacing::limiter::WindowLimiter;
use crate::report::ReportRow;
use crate::rules::Family;

use super::state::{self, Found};

/// The first read of a reset, after it left: Graph lists an action it took within a
/// second or two; the device carries it out when it checks in.
pub const FIRST_LOOK: Duration = Duration::from_secs(2);
/// Follow reads per second at most while the run sends.
pub const FOLLOW_RATE: f64 = 30.0;
/// Follow reads out at once.
const FOLLOW_READS: usize = 4;

/// A reset the run sent and Graph accepted.
#[derive(Debug, Clone)]
struct Sent {
    device_id: String,
    action: Family,
    sent_at: Option<SystemTime>,
    platform: String,
}

/// The follower's key of a device's action: one device may take several in a run.
fn ended_key(device_id: &str, action: Family) -> String {
    format!("{}:{}", action.as_str(), device_id.to_ascii_lowercase())
}

/// What the follower learnt while the run sent: each reset that ended, by device.
#[derive(Default)]
pub struct Known {
    /// By action and lower-case Intune id ([`ended_key`]): the row's send time, and the
    /// state it ended in.
    ended: HashMap<String, (Option<SystemTime>, Found)>,
    /// Reads made.
    pub reads: u64,
}

impl Known {
    /// The ended state of the reset `device_id` sent at `sent_at`, if the follower saw
    /// it end.
    pub(super) fn take(
        &mut self,
        device_id: &str,
        action: Family,
        sent_at: Option<SystemTime>,
    ) -> Option<Found> {
        let key = ended_key(device_id, action);
        match self.ended.get(&key) {
            Some((at, _)) if *at == sent_at => self.ended.remove(&key).map(|(_, f)| f),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.ended.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ended.is_empty()
    }
}

/// Tells the follower of a finished row; clone it into whatever sees rows finish.
#[derive(Clone)]
pub struct Tracker {
    sent: mpsc::UnboundedSender<Sent>,
}

impl Tracker {
    /// A row the run just finished: followed when it holds a reset sent.
    pub fn finished(&self, row: &ReportRow) {
        if super::is_queried(row) {
            let _ = self.sent.send(Sent {
                device_id: row.device_id.clone(),
                action: Family::of_report(&row.action),
                sent_at: state::sent_at(&row.started_at),
                platform: row.platform.to_string(),
            });
        }
    }
}

pub struct Follower {
    tracker: Tracker,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Known>,
}

impl Follower {
    /// Starts following on `pacer`, the run's.
    pub fn start<G: GraphApi>(pacer: Arc<Pacer<G>>) -> Follower {
        let (sent, rx) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(follow(pacer, rx, stopped));
        Follower {
            tracker: Tracker { sent },
            stop,
            task,
        }
    }

    pub fn tracker(&self) -> Tracker {
        self.tracker.clone()
    }

    /// Stops following (reads in flight are dropped: `status` reads those devices) and
    /// hands over what ended.
    pub async fn finish(self) -> Known {
        self.stop.send_replace(true);
        self.task.await.unwrap_or_default()
    }
}

/// `run --follow` across a run's tenants (issue 22): one [`Follower`] per tenant
/// signed in to, each on that tenant's pacer (its budget and 429 pause), and one
/// tracker that hands each finished row to the follower of the tenant it names.
pub struct Followers {
    routes: Arc<Vec<(Vec<String>, Tracker)>>,
    followers: Vec<Follower>,
}

/// Hands each finished row to its tenant's follower; clone it into whatever sees rows
/// finish.
#[derive(Clone)]
pub struct TenantTracker {
    /// Each tenant's names (lower case) and its follower's tracker.
    routes: Arc<Vec<(Vec<String>, Tracker)>>,
}

impl TenantTracker {
    /// A row the run just finished: followed in the tenant its `tenant` cell names,
    /// when it holds a reset sent. A row naming no tenant followed here is not
    /// followed (`status` reads it, or says why it cannot).
    pub fn finished(&self, row: &ReportRow) {
        let tenant = row.tenant.trim().to_ascii_lowercase();
        if let Some((_, tracker)) = self
            .routes
            .iter()
            .find(|(names, _)| names.contains(&tenant))
        {
            tracker.finished(row);
        }
    }
}

impl Followers {
    /// Starts one follower per tenant: its names (the label, its id; any case) and its
    /// pacer, the run's pacer for that tenant.
    pub fn start<G: GraphApi>(tenants: Vec<(Vec<String>, Arc<Pacer<G>>)>) -> Followers {
        let mut routes = Vec::new();
        let mut followers = Vec::new();
        for (names, pacer) in tenants {
            let follower = Follower::start(pacer);
            let names = names
                .iter()
                .map(|n| n.trim().to_ascii_lowercase())
                .collect();
            routes.push((names, follower.tracker()));
            followers.push(follower);
        }
        Followers {
            routes: Arc::new(routes),
            followers,
        }
    }

    pub fn tracker(&self) -> TenantTracker {
        TenantTracker {
            routes: self.routes.clone(),
        }
    }

    /// Stops every follower and hands over what each saw end, in the order of
    /// [`Followers::start`]'s tenants (each the `known` of its
    /// [`super::TenantReads`]).
    pub async fn finish(self) -> Vec<Known> {
        let mut known = Vec::with_capacity(self.followers.len());
        for follower in self.followers {
            known.push(follower.finish().await);
        }
        known
    }
}

/// One reset being followed.
struct Followed {
    sent: Sent,
    /// Reads so far.
    reads: u32,
}

async fn follow<G: GraphApi>(
    pacer: Arc<Pacer<G>>,
    mut rx: mpsc::UnboundedReceiver<Sent>,
    mut stopped: watch::Receiver<bool>,
) -> Known {
    let mut known = Known::default();
    let mut followed: HashMap<u64, Followed> = HashMap::new();
    let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut next_id = 0u64;
    let (read_tx, mut read_rx) = mpsc::unbounded_channel::<(u64, Found)>();
    let slots = Arc::new(Semaphore::new(FOLLOW_READS));
    let pace = Arc::new(WindowLimiter::new(
        crate::pacing::limiter::UNLIMITED,
        Duration::from_secs(1),
        FOLLOW_RATE,
    ));
    let mut reads = JoinSet::new();
    let mut senders_open = true;
    loop {
        let next = due.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            sent = rx.recv(), if senders_open => match sent {
                Some(sent) => {
                    next_id += 1;
                    followed.insert(next_id, Followed { sent, reads: 0 });
                    due.push(Reverse((Instant::now() + FIRST_LOOK, next_id)));
                }
                None => senders_open = false,
            },
            Some((id, found)) = read_rx.recv() => {
                known.reads += 1;
                let Some(f) = followed.get_mut(&id) else { continue };
                if state::is_done(&found.state) || state::is_failure(&found.state) {
                    if let Some(f) = followed.remove(&id) {
                        let key = ended_key(&f.sent.device_id, f.sent.action);
                        known.ended.insert(key, (f.sent.sent_at, found));
                    }
                } else {
                    // Open, not listed yet, or unreadable now: again later, less often.
                    f.reads += 1;
                    due.push(Reverse((Instant::now() + again_after(f.reads), id)));
                }
            }
            _ = sleep_until(next), if next.is_some() => {
                let Some(Reverse((_, id))) = due.pop() else { continue };
                let Some(f) = followed.get(&id) else { continue };
                let (pacer, pace, slots, done) = (pacer.clone(), pace.clone(), slots.clone(), read_tx.clone());
                let sent = f.sent.clone();
                reads.spawn(async move {
                    let Ok(_slot) = slots.acquire_owned().await else { return };
                    pace.acquire().await;
                    let found =
                        super::passes::read_state(
                            &pacer,
                            &sent.device_id,
                            sent.action,
                            sent.sent_at,
                            &sent.platform,
                        )
                            .await;
                    let _ = done.send((id, found));
                });
                while reads.try_join_next().is_some() {}
            }
        }
    }
    reads.abort_all();
    known
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// The wait before the next read of a reset still open after `reads` reads: doubling
/// from [`FIRST_LOOK`] up to `status`'s pause between passes.
fn again_after(reads: u32) -> Duration {
    FIRST_LOOK
        .saturating_mul(1 << reads.min(8))
        .min(super::POLL_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Outcome;

    /// Issue 22: each finished row goes to the follower of the tenant it names (by any
    /// of its names, any case); a row of no tenant followed, or with no reset sent, to
    /// none.
    #[test]
    fn regression_22_a_finished_row_is_followed_in_the_tenant_it_names() {
        let (contoso, mut to_contoso) = mpsc::unbounded_channel();
        let (fabrikam, mut to_fabrikam) = mpsc::unbounded_channel();
        let tracker = TenantTracker {
            routes: Arc::new(vec![
                (
                    vec!["contoso.com".into(), "6f1c2a4e".into()],
                    Tracker { sent: contoso },
                ),
                (vec!["fabrikam.com".into()], Tracker { sent: fabrikam }),
            ]),
        };
        let row = |device: &str, tenant: &str, outcome: Outcome| ReportRow {
            tenant: tenant.into(),
            ..crate::status::tests::row(outcome, "", device)
        };
        tracker.finished(&row("d1", "Fabrikam.COM", Outcome::Succeeded));
        tracker.finished(&row("d2", "6f1c2a4e", Outcome::Succeeded));
        tracker.finished(&row("d3", "northwind.com", Outcome::Succeeded));
        tracker.finished(&row("d4", "contoso.com", Outcome::Ineligible));
        tracker.finished(&row("d5", "", Outcome::Succeeded));
        let ids = |rx: &mut mpsc::UnboundedReceiver<Sent>| {
            let mut ids = Vec::new();
            while let Ok(sent) = rx.try_recv() {
                ids.push(sent.device_id);
            }
            ids
        };
        assert_eq!(ids(&mut to_fabrikam), ["d1"]);
        assert_eq!(ids(&mut to_contoso), ["d2"]);
    }
}
