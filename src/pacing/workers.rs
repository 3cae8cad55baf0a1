//! The one dispatcher of Graph work: `run`, `plan --live` and `status` hand it their
//! devices, it runs at most `--concurrency` of them at once, and every task ends in a
//! result, also one that panics or is cancelled (the caller's fallback, never a
//! dropped row).
//!
//! The budgets (writes, any request, the shared 429 pause) are the [`Pacer`](super::Pacer)'s;
//! the dispatcher only bounds how many devices are *worked on* at once. A device that
//! waits for something other than Graph (a lost answer's settle window) is *parked*
//! ([`parked`]): it gives its worker back for the wait, so a few lost answers cannot
//! starve the pipeline, and takes one again before its next request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{Id, JoinSet};

/// How a task ended without its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    Panicked,
    Cancelled,
}

impl Lost {
    pub fn as_str(self) -> &'static str {
        match self {
            Lost::Panicked => "a panic",
            Lost::Cancelled => "cancelled",
        }
    }
}

type Fallback<T> = Box<dyn FnOnce(Lost) -> T + Send>;

/// The worker a task holds, which [`parked`] gives back while the task waits.
struct Slot {
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    slots: Arc<Semaphore>,
}

tokio::task_local! {
    static SLOT: Arc<Slot>;
}

pub struct Workers<T> {
    slots: Arc<Semaphore>,
    tasks: JoinSet<T>,
    fallbacks: HashMap<Id, Fallback<T>>,
}

impl<T: Send + 'static> Workers<T> {
    pub fn new(concurrency: usize) -> Workers<T> {
        Workers {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            tasks: JoinSet::new(),
            fallbacks: HashMap::new(),
        }
    }

    /// Waits for a free worker, then starts `work` on it. `fallback` gives the result
    /// of a task that panics or is cancelled. Returns the results finished so far.
    pub async fn spawn<F>(
        &mut self,
        work: F,
        fallback: impl FnOnce(Lost) -> T + Send + 'static,
    ) -> Vec<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut done = Vec::new();
        // Results are gathered while waiting, so that a caller that handles them (a
        // report writer) never waits behind the slot.
        let permit = loop {
            tokio::select! {
                permit = self.slots.clone().acquire_owned() => break permit,
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    done.push(self.result(joined));
                }
            }
        };
        let Ok(permit) = permit else {
            // The semaphore is never closed; should it be, the work still runs.
            let id = self.tasks.spawn(work).id();
            self.fallbacks.insert(id, Box::new(fallback));
            return done;
        };
        let slot = Arc::new(Slot {
            permit: Mutex::new(Some(permit)),
            slots: self.slots.clone(),
        });
        let id = self.tasks.spawn(SLOT.scope(slot, work)).id();
        self.fallbacks.insert(id, Box::new(fallback));
        done.extend(self.ready());
        done
    }

    /// The results finished so far, without waiting.
    pub fn ready(&mut self) -> Vec<T> {
        let mut done = Vec::new();
        while let Some(joined) = self.tasks.try_join_next_with_id() {
            done.push(self.result(joined));
        }
        done
    }

    /// The next result, or `None` when every task has ended.
    pub async fn next(&mut self) -> Option<T> {
        let joined = self.tasks.join_next_with_id().await?;
        Some(self.result(joined))
    }

    /// Waits for every task; their results.
    pub async fn finish(mut self) -> Vec<T> {
        let mut done = Vec::new();
        while let Some(result) = self.next().await {
            done.push(result);
        }
        done
    }

    fn result(&mut self, joined: Result<(Id, T), tokio::task::JoinError>) -> T {
        match joined {
            Ok((id, value)) => {
                self.fallbacks.remove(&id);
                value
            }
            Err(e) => {
                let lost = if e.is_panic() {
                    Lost::Panicked
                } else {
                    Lost::Cancelled
                };
                match self.fallbacks.remove(&e.id()) {
                    Some(fallback) => fallback(lost),
                    // Every task is spawned with its fallback.
                    None => unreachable!("a task without a fallback"),
                }
            }
        }
    }
}

/// Runs `work` on every item, at most `concurrency` at once through [`Workers`], and
/// gives the results in the items' order; an item whose task panics or is cancelled
/// gives `lost(how)`.
pub async fn in_order<I, T, Fut>(
    items: impl IntoIterator<Item = I>,
    concurrency: usize,
    work: impl Fn(I) -> Fut,
    lost: impl Fn(Lost) -> T + Clone + Send + 'static,
) -> Vec<T>
where
    T: Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut workers: Workers<(usize, T)> = Workers::new(concurrency);
    let mut done = Vec::new();
    for (at, item) in items.into_iter().enumerate() {
        let task = work(item);
        let lost = lost.clone();
        let fallback = move |how| (at, lost(how));
        done.extend(
            workers
                .spawn(async move { (at, task.await) }, fallback)
                .await,
        );
    }
    done.extend(workers.finish().await);
    done.sort_by_key(|(at, _)| *at);
    done.into_iter().map(|(_, result)| result).collect()
}

/// Runs `wait` without holding this task's worker (a lost answer's settle window): the
/// worker goes to the next device, and this task takes one again when `wait` is over.
/// Outside [`Workers`] it simply runs `wait`.
pub async fn parked<F: Future>(wait: F) -> F::Output {
    let slot = SLOT.try_with(|slot| slot.clone()).ok();
    if let Some(slot) = &slot {
        slot.permit.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
    let out = wait.await;
    if let Some(slot) = slot
        && let Ok(permit) = slot.slots.clone().acquire_owned().await
    {
        *slot.permit.lock().unwrap_or_else(|e| e.into_inner()) = Some(permit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn a_task_that_panics_ends_in_its_fallback_not_a_lost_result() {
        let mut workers = Workers::new(2);
        let mut results = Vec::new();
        for i in 0..5u32 {
            results.extend(
                workers
                    .spawn(
                        async move {
                            if i == 2 {
                                panic!("a bug");
                            }
                            (i, "done")
                        },
                        move |lost| {
                            assert_eq!(lost, Lost::Panicked);
                            (i, "fallback")
                        },
                    )
                    .await,
            );
        }
        results.extend(workers.finish().await);
        results.sort();
        assert_eq!(
            results,
            vec![
                (0, "done"),
                (1, "done"),
                (2, "fallback"),
                (3, "done"),
                (4, "done")
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_order_gives_the_items_results_in_their_order_whatever_ends_first() {
        let work = |n: u64| async move {
            // Later items end first.
            tokio::time::sleep(Duration::from_millis(100 - n * 10)).await;
            if n == 3 {
                panic!("a bug");
            }
            Ok(n * 2)
        };
        let results = in_order(0..6u64, 4, work, Err).await;
        assert_eq!(
            results,
            vec![Ok(0), Ok(2), Ok(4), Err(Lost::Panicked), Ok(8), Ok(10)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_concurrency_tasks_work_at_once() {
        let mut workers = Workers::new(3);
        let busy = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        for _ in 0..20 {
            let (busy, most) = (busy.clone(), most.clone());
            workers
                .spawn(
                    async move {
                        let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        busy.fetch_sub(1, Ordering::SeqCst);
                    },
                    |_| (),
                )
                .await;
        }
        workers.finish().await;
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_parked_task_gives_its_worker_to_the_next_device() {
        // One worker; the first task parks for a minute. The other nine work meanwhile:
        // they all end before the parked one, which then finishes on a worker again.
        let mut workers = Workers::new(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let busy = Arc::new(AtomicUsize::new(0));
        for i in 0..10u32 {
            let (order, busy) = (order.clone(), busy.clone());
            workers
                .spawn(
                    async move {
                        assert_eq!(busy.fetch_add(1, Ordering::SeqCst), 0, "two at work");
                        if i == 0 {
                            busy.fetch_sub(1, Ordering::SeqCst);
                            parked(tokio::time::sleep(Duration::from_secs(60))).await;
                            assert_eq!(busy.fetch_add(1, Ordering::SeqCst), 0, "two at work");
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        order.lock().unwrap().push(i);
                        busy.fetch_sub(1, Ordering::SeqCst);
                    },
                    |_| (),
                )
                .await;
        }
        workers.finish().await;
        assert_eq!(*order.lock().unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
    }
}
