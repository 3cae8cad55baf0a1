//! The [`Pacer`]: every request `run` and `status` send goes through it. It owns the
//! limiters, the shared pause, the abort flag and the traffic counters, and applies the
//! retry policy ([`super::reaction`]) to each failed call.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::graph::{CallError, CallErrorKind, Connection, DeviceActions, GraphApi, Reply};
use crate::report::Outcome;

use super::cooldown::Cooldown;
use super::limiter::{WindowLimiter, acquire, read_share};
use super::reaction::{AbortReason, Reaction, reaction};
use super::settings::Settings;

/// What the command sent, for the summary.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub posts: AtomicU64,
    pub throttled: AtomicU64,
    /// Resets whose answer was lost and that `deviceActionResults` proved done.
    pub confirmed_by_results: AtomicU64,
    /// Reads sent a second time beside a slow first answer ([`Pacer::read_device`]).
    pub hedged: AtomicU64,
}

/// Why a request sequence ended without an answer: data for a report row.
#[derive(Debug, Clone)]
pub struct Failure {
    pub outcome: Outcome,
    /// Stable snake_case code for the report's `reason`.
    pub reason: &'static str,
    /// For people: Graph's message or the retries' story.
    pub detail: String,
    pub status: Option<u16>,
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
}

impl Failure {
    pub fn new(outcome: Outcome, reason: &'static str, detail: impl Into<String>) -> Failure {
        Failure {
            outcome,
            reason,
            detail: detail.into(),
            status: None,
            request_id: None,
            client_request_id: None,
        }
    }

    pub fn from_error(outcome: Outcome, reason: &'static str, e: &CallError) -> Failure {
        Failure {
            status: e.status,
            request_id: e.request_id.clone(),
            client_request_id: Some(e.client_request_id.clone()),
            ..Failure::new(outcome, reason, e.to_string())
        }
    }
}

/// Why [`Pacer::action_results`] could not read a device.
#[derive(Debug, Clone)]
pub struct ReadFailure {
    /// `NotFound`: Graph has no such device (404); `NotAttempted`: the command stopped
    /// before the read; `Failed`: anything else, after the retries.
    pub outcome: Outcome,
    /// For people: Graph's message or the retries' story.
    pub detail: String,
}

/// What a caller does after a failed call.
pub enum Step {
    /// Try again: on a fresh connection, after a wait.
    Again(bool, Option<Duration>),
    /// A write whose effect is unknown: settle it before anything else.
    Verify,
    Stop(Failure),
}

/// How long a device read may take before a second one goes beside it: Graph answers
/// one device's record in well under a second.
pub const HEDGE_AFTER: Duration = Duration::from_secs(2);

/// Newly fetched tokens one call may have refused before the command stops.
pub const MAX_TOKEN_RENEWALS: u32 = 3;

pub type CallFuture<'a, T> = Pin<Box<dyn Future<Output = Result<Reply<T>, CallError>> + Send + 'a>>;

/// Told when every worker pauses after a 429, and until when (the wall clock): the run
/// records it, so that a resume started during the pause waits it out.
pub type PauseHook = Box<dyn Fn(SystemTime) + Send + Sync>;

/// Which service's limits a request counts against: Intune's (managed devices and
/// their actions) or Entra's directory (users, and their `revokeSignInSessions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Intune,
    Directory,
}

/// One service's limiters and its pause: a 429 from a service pauses every request to
/// that service, and only those.
struct Lane {
    writes: WindowLimiter,
    reads: WindowLimiter,
    any: WindowLimiter,
}

impl Lane {
    fn new(write_limit: usize, any_limit: usize, window: Duration, settings: &Settings) -> Lane {
        Lane {
            writes: WindowLimiter::new(write_limit, window, settings.write_rate),
            reads: WindowLimiter::new(
                read_share(any_limit, write_limit),
                window,
                settings.read_rate,
            ),
            any: WindowLimiter::new(any_limit, window, 0.0),
        }
    }

    /// Entra's directory budget, scaled as `settings` scale Intune's (none when it has
    /// none: `--unthrottled`, tests).
    fn directory(settings: &Settings) -> Lane {
        use super::limiter::{
            DIRECTORY_ANY_LIMIT, DIRECTORY_WINDOW, DIRECTORY_WRITE_LIMIT, DIRECTORY_WRITE_RATE,
            UNLIMITED, WINDOW_MARGIN,
        };
        if settings.write_limit >= UNLIMITED {
            return Lane::new(UNLIMITED, UNLIMITED, settings.window, settings);
        }
        let own = Settings {
            write_rate: DIRECTORY_WRITE_RATE,
            ..settings.clone()
        };
        Lane::new(
            DIRECTORY_WRITE_LIMIT,
            DIRECTORY_ANY_LIMIT,
            DIRECTORY_WINDOW + WINDOW_MARGIN,
            &own,
        )
    }
}

pub struct Pacer<G> {
    pub graph: G,
    pub settings: Settings,
    /// Intune's budget: every managed-device request.
    intune: Lane,
    /// Entra's directory budget: users' reads and actions.
    directory: Lane,
    /// Intune's pause: one 429 from Intune pauses every Intune request.
    pub cooldown: Cooldown,
    /// The directory's pause: one 429 from Entra pauses every directory request.
    directory_cooldown: Cooldown,
    aborted: AtomicBool,
    /// Wakes every request waiting for the pause or a slot when the command stops:
    /// after Ctrl-C or SIGTERM nothing that was still waiting is sent.
    stopped: tokio::sync::watch::Sender<bool>,
    abort_reason: Mutex<Option<AbortReason>>,
    pause_hook: OnceLock<PauseHook>,
    /// Graph has answered a request with anything but a refusal of the token: from then
    /// on reads go out side by side. Until then one read at a time asks ([`Self::read`]),
    /// so a token Graph refuses (a ready one cannot be renewed) costs one 401, not one
    /// per worker.
    token_accepted: AtomicBool,
    first_light: tokio::sync::Mutex<()>,
    pub counters: Counters,
}

impl<G: GraphApi> Pacer<G> {
    pub fn new(graph: G, settings: Settings) -> Pacer<G> {
        Pacer {
            intune: Lane::new(
                settings.write_limit,
                settings.any_limit,
                settings.window,
                &settings,
            ),
            directory: Lane::directory(&settings),
            cooldown: Cooldown::new(settings.backoff),
            directory_cooldown: Cooldown::new(settings.backoff),
            graph,
            settings,
            aborted: AtomicBool::new(false),
            stopped: tokio::sync::watch::Sender::new(false),
            abort_reason: Mutex::new(None),
            pause_hook: OnceLock::new(),
            token_accepted: AtomicBool::new(false),
            first_light: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
        }
    }

    /// Calls `hook` with the end of every 429 pause from now on (set once).
    pub fn on_pause(&self, hook: PauseHook) {
        let _ = self.pause_hook.set(hook);
    }

    /// Every worker waits until `until` (wall clock) before its next request: a pause
    /// an interrupted run of the same job was honouring when it stopped.
    pub fn hold_until(&self, until: SystemTime) {
        let now = SystemTime::now();
        if let Ok(left) = until.duration_since(now) {
            tracing::info!(
                "the interrupted run was paused by Graph (429): waiting {}",
                crate::until::until_text(until, now)
            );
            self.cooldown.hold(left);
        }
    }

    /// Counts writes an earlier process sent at `times` (wall clock, oldest first)
    /// against the write and any-request windows, so that a resume started at once
    /// keeps no 20-second span over the limits.
    pub fn prime_writes(&self, times: &[SystemTime]) {
        let now = SystemTime::now();
        let instants: Vec<tokio::time::Instant> = times
            .iter()
            .filter_map(|t| now.duration_since(*t).ok())
            .filter(|ago| *ago < self.settings.window)
            .filter_map(|ago| tokio::time::Instant::now().checked_sub(ago))
            .collect();
        self.intune.writes.prime(&instants);
        self.intune.any.prime(&instants);
    }

    /// Stops the command; the first reason given is the one reported.
    pub fn abort(&self, reason: AbortReason) {
        let mut slot = self.abort_reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.aborted.store(true, Ordering::SeqCst);
        self.stopped.send_replace(true);
    }

    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    pub fn abort_reason(&self) -> Option<AbortReason> {
        self.abort_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for the shared pause and a slot in the limiters. `after_abort`: this request
    /// finishes a device already in flight (settling a lost answer), so an abort does not
    /// stop it.
    /// Returns the instant the slot was taken: a write that leaves later gives it to
    /// [`Self::departed`].
    pub async fn gate(&self, write: bool, after_abort: bool) -> Result<Instant, Failure> {
        self.gate_in(Budget::Intune, write, after_abort).await
    }

    fn lane(&self, budget: Budget) -> (&Lane, &Cooldown) {
        match budget {
            Budget::Intune => (&self.intune, &self.cooldown),
            Budget::Directory => (&self.directory, &self.directory_cooldown),
        }
    }

    /// [`Self::gate`] for `budget`'s limiters and pause.
    pub async fn gate_in(
        &self,
        budget: Budget,
        write: bool,
        after_abort: bool,
    ) -> Result<Instant, Failure> {
        let (lane, cooldown) = self.lane(budget);
        let stopped = || {
            Failure::new(
                Outcome::NotAttempted,
                "run_aborted",
                "the run stopped while this request waited for its turn",
            )
        };
        loop {
            if self.is_aborted() && !after_abort {
                return Err(stopped());
            }
            let waited = async {
                cooldown.wait().await;
                if write {
                    acquire(&[&lane.writes, &lane.any]).await
                } else {
                    acquire(&[&lane.reads, &lane.any]).await
                }
            };
            let slot = if after_abort {
                waited.await
            } else {
                // A slot is taken only when `acquire` returns, so dropping the wait
                // takes none: a request waiting for the pause or its slot when the
                // command stops is never sent.
                let mut stop = self.stopped.subscribe();
                let slot = tokio::select! {
                    slot = waited => slot,
                    _ = stop.wait_for(|s| *s) => return Err(stopped()),
                };
                if self.is_aborted() {
                    return Err(stopped());
                }
                slot
            };
            // A 429 may have arrived while this worker waited for its slot.
            if cooldown.until().is_none() {
                self.counters.requests.fetch_add(1, Ordering::Relaxed);
                return Ok(slot);
            }
        }
    }

    /// Right before a write leaves (after the ledger's sync, which may take a while):
    /// a 429 that came meanwhile pauses it too, and a stop means it never leaves.
    pub async fn before_departure(&self) -> Result<(), Failure> {
        self.before_departure_in(Budget::Intune).await
    }

    /// [`Self::before_departure`] for `budget`'s pause.
    pub async fn before_departure_in(&self, budget: Budget) -> Result<(), Failure> {
        let (_, cooldown) = self.lane(budget);
        let mut stop = self.stopped.subscribe();
        while cooldown.until().is_some() {
            tokio::select! {
                _ = cooldown.wait() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            if self.is_aborted() {
                return Err(Failure::new(
                    Outcome::NotAttempted,
                    "run_aborted",
                    "the run stopped while this reset waited out Graph's pause; it was not sent",
                ));
            }
        }
        Ok(())
    }

    /// The write let through at `slot` leaves now: the write and any-request windows
    /// count it from now.
    pub fn departed(&self, slot: Instant) {
        self.departed_in(Budget::Intune, slot);
    }

    /// [`Self::departed`] for `budget`'s windows.
    pub fn departed_in(&self, budget: Budget, slot: Instant) {
        let (lane, _) = self.lane(budget);
        let now = Instant::now();
        lane.writes.restamp(slot, now);
        lane.any.restamp(slot, now);
    }

    /// A request to `budget`'s service was answered: its pause may end early.
    pub fn succeeded_in(&self, budget: Budget) {
        self.lane(budget).1.succeeded();
    }

    /// A read, retried (reads are idempotent) until it succeeds or fails for good.
    pub async fn read<'a, T>(
        &'a self,
        call: impl Fn(Connection) -> CallFuture<'a, T>,
    ) -> Result<Reply<T>, Failure> {
        self.read_hedged(Budget::Intune, call, None).await
    }

    /// [`Self::read`] of the directory (a user), within its budget.
    pub async fn read_directory<'a, T>(
        &'a self,
        call: impl Fn(Connection) -> CallFuture<'a, T>,
    ) -> Result<Reply<T>, Failure> {
        self.read_hedged(Budget::Directory, call, None).await
    }

    /// One device's record read ([`Self::read`]), hedged: an answer that has not come
    /// after [`HEDGE_AFTER`] gets a second, identical read beside it on a fresh
    /// connection, and whichever answers first is taken (a read changes nothing, so two
    /// cost only a request from the budget). One slow answer then holds its device for
    /// two seconds, not for the whole `--timeout` (issue 19: a few slow answers left
    /// devices waiting 30 s each).
    pub async fn read_device<'a, T>(
        &'a self,
        call: impl Fn(Connection) -> CallFuture<'a, T>,
    ) -> Result<Reply<T>, Failure> {
        self.read_hedged(Budget::Intune, call, Some(HEDGE_AFTER))
            .await
    }

    async fn read_hedged<'a, T>(
        &'a self,
        budget: Budget,
        call: impl Fn(Connection) -> CallFuture<'a, T>,
        hedge: Option<Duration>,
    ) -> Result<Reply<T>, Failure> {
        let mut connection = Connection::Pooled;
        let mut renewals = 0;
        for attempt in 1..=self.settings.max_attempts {
            // Until Graph has accepted the token once, one read at a time asks.
            let _first_light = match self.token_accepted.load(Ordering::Acquire) {
                true => None,
                false => Some(self.first_light.lock().await),
            };
            // The one read before it ended the run (the token was refused): this one
            // would only meet the same refusal.
            if self.is_aborted() && !self.token_accepted.load(Ordering::Acquire) {
                return Err(Failure::new(
                    Outcome::NotAttempted,
                    "run_aborted",
                    "not read: the command stopped",
                ));
            }
            self.gate_in(budget, false, true).await?;
            let answer = match hedge {
                Some(after) if after < self.settings.request_timeout => {
                    let mut first = call(connection);
                    tokio::select! {
                        answer = &mut first => answer,
                        _ = tokio::time::sleep(after) => {
                            // The first answer may still come while the second read
                            // waits for its slot (or a pause): then none is sent.
                            tokio::select! {
                                answer = &mut first => answer,
                                slot = self.gate_in(budget, false, true) => {
                                    slot?;
                                    self.counters.hedged.fetch_add(1, Ordering::Relaxed);
                                    tokio::select! {
                                        answer = &mut first => answer,
                                        answer = call(Connection::Fresh) => answer,
                                    }
                                }
                            }
                        }
                    }
                }
                _ => call(connection).await,
            };
            let refused = matches!(
                &answer,
                Err(e) if matches!(e.kind, CallErrorKind::Unauthorized | CallErrorKind::SignIn(_))
            );
            let reached = !matches!(
                &answer,
                Err(e) if matches!(e.kind, CallErrorKind::ConnectFailed | CallErrorKind::ConnectionLost | CallErrorKind::Timeout)
            );
            if !refused && reached {
                self.token_accepted.store(true, Ordering::Release);
            }
            let error = match answer {
                Ok(reply) => {
                    self.succeeded_in(budget);
                    return Ok(reply);
                }
                Err(e) => e,
            };
            match self.react_in(budget, &error, false, &mut renewals) {
                Step::Again(fresh, wait) => {
                    connection = if fresh { Connection::Fresh } else { connection };
                    if let Some(wait) = wait {
                        tokio::time::sleep(wait).await;
                    } else if fresh {
                        let wait = self
                            .settings
                            .backoff
                            .full_jitter(attempt.min(4), &mut rand::rng());
                        tokio::time::sleep(wait).await;
                    }
                }
                Step::Stop(failure) => return Err(failure),
                // The policy verifies writes only; a read would simply be asked again.
                Step::Verify => {}
            }
        }
        Err(Failure::new(
            Outcome::Failed,
            "gave_up",
            format!(
                "reading the device failed {} times in a row; nothing was sent",
                self.settings.max_attempts
            ),
        ))
    }

    /// One device's `deviceActionResults`, read with the limiters, the shared pause and
    /// the retry policy. Graph's passcodes stay inside the `ActionResult`s' `Secret`s.
    pub async fn action_results(&self, id: &str) -> Result<DeviceActions, ReadFailure> {
        if self.is_aborted() {
            return Err(ReadFailure {
                outcome: Outcome::NotAttempted,
                detail: "not read: the command stopped".into(),
            });
        }
        self.read_device(|c| Box::pin(self.graph.action_results(id, c)))
            .await
            .map(|reply| reply.value)
            .map_err(|f| ReadFailure {
                outcome: f.outcome,
                detail: f.detail,
            })
    }

    /// Applies the retry policy's side effects; tells the caller what to do next.
    pub fn react(&self, error: &CallError, write: bool, renewals: &mut u32) -> Step {
        self.react_in(Budget::Intune, error, write, renewals)
    }

    /// [`Self::react`] for a request to `budget`'s service: a 429 pauses that
    /// service's requests.
    pub fn react_in(
        &self,
        budget: Budget,
        error: &CallError,
        write: bool,
        renewals: &mut u32,
    ) -> Step {
        match reaction(error, write) {
            Reaction::PauseAll(retry_after) => {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                let pause = self.lane(budget).1.throttled(retry_after);
                if let Some(hook) = self.pause_hook.get() {
                    hook(SystemTime::now() + pause);
                }
                let now = SystemTime::now();
                tracing::info!(
                    pause_ms = pause.as_millis() as u64,
                    retry_after = retry_after.is_some(),
                    "throttled (429): every worker pauses: paused by Graph {}",
                    crate::until::until_text(now + pause, now)
                );
                Step::Again(false, None)
            }
            Reaction::Retry { fresh, wait } => Step::Again(fresh, wait),
            Reaction::Verify => Step::Verify,
            // The client has already dropped the refused token; the retry fetches anew.
            // A few refusals in a row can be bad luck (a token revoked mid-run, a
            // replica that has not seen the new one); more mean sign-in is broken.
            Reaction::RenewToken if *renewals < MAX_TOKEN_RENEWALS => {
                *renewals += 1;
                Step::Again(false, None)
            }
            Reaction::RenewToken => {
                let reason = AbortReason::Authentication(format!(
                    "Graph refused {MAX_TOKEN_RENEWALS} newly fetched tokens in a row ({})",
                    error.message
                ));
                self.abort(reason.clone());
                Step::Stop(Failure::from_error(Outcome::Failed, "unauthorized", error))
            }
            Reaction::Abort(reason) => {
                let code = match reason {
                    AbortReason::MissingPermission(_) => "missing_permission",
                    AbortReason::MissingRole => "missing_intune_role",
                    _ => "authentication_failed",
                };
                self.abort(reason);
                Step::Stop(Failure::from_error(Outcome::Failed, code, error))
            }
            Reaction::NotFound => {
                Step::Stop(Failure::from_error(Outcome::NotFound, "not_found", error))
            }
            Reaction::Fail { reason } => {
                Step::Stop(Failure::from_error(Outcome::Failed, reason, error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::graph::{DevicePage, ManagedDevice, PageRequest};

    /// A Graph whose first `hang` reads of a device never answer; later ones answer
    /// at once.
    #[derive(Clone)]
    struct Hanging {
        hang: usize,
        reads: Arc<AtomicUsize>,
    }

    impl GraphApi for Hanging {
        async fn get_device(
            &self,
            _: &str,
            _: &[&str],
            _: Connection,
        ) -> Result<Reply<ManagedDevice>, CallError> {
            Err(CallError::not_in_fake())
        }
        async fn list_devices_page(
            &self,
            _: PageRequest,
            _: Connection,
        ) -> Result<Reply<DevicePage>, CallError> {
            Err(CallError::not_in_fake())
        }
        async fn device_action(
            &self,
            _: &str,
            _: crate::rules::Family,
            _: Connection,
        ) -> Result<Reply<()>, CallError> {
            Err(CallError::not_in_fake())
        }
        async fn action_results(
            &self,
            _: &str,
            _: Connection,
        ) -> Result<Reply<DeviceActions>, CallError> {
            if self.reads.fetch_add(1, Ordering::SeqCst) < self.hang {
                std::future::pending::<()>().await;
            }
            Ok(Reply {
                value: DeviceActions::default(),
                status: 200,
                request_id: None,
                client_request_id: "fake".into(),
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn regression_19_a_slow_device_read_gets_a_second_one_beside_it() {
        let graph = Hanging {
            hang: 1,
            reads: Arc::default(),
        };
        let pacer = Pacer::new(graph.clone(), Settings::default().unlimited());
        let start = Instant::now();
        pacer.action_results("a").await.expect("read");
        // Answered by the second read, sent HEDGE_AFTER after the first, not after the
        // 30-second timeout.
        assert_eq!(Instant::now() - start, HEDGE_AFTER);
        assert_eq!(graph.reads.load(Ordering::SeqCst), 2);
        assert_eq!(pacer.counters.hedged.load(Ordering::SeqCst), 1);
        assert_eq!(pacer.counters.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_past_its_gate_waits_out_a_pause_that_began_before_it_left() {
        let graph = Hanging {
            hang: 0,
            reads: Arc::default(),
        };
        let pacer = Pacer::new(graph, Settings::default().unlimited());
        pacer.gate(true, false).await.expect("a slot");
        // A 429 with Retry-After: 3 reaches another worker while this one syncs its
        // ledger line.
        pacer.cooldown.throttled(Some(Duration::from_secs(3)));
        let start = Instant::now();
        pacer.before_departure().await.expect("not stopped");
        assert!(Instant::now() - start >= Duration::from_secs(3));
        // A stop during the pause: the write never leaves.
        pacer.cooldown.throttled(Some(Duration::from_secs(3)));
        let stopping = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            pacer.abort(AbortReason::Interrupted);
        };
        let (left, ()) = tokio::join!(pacer.before_departure(), stopping);
        assert_eq!(left.map_err(|f| f.outcome), Err(Outcome::NotAttempted));
    }

    /// Issue 21: a 429 from Entra pauses every request of the directory's budget (the
    /// revocations), not Intune's; one from Intune pauses Intune's, not the directory's.
    /// And the directory's writes keep their own window: 200 per 10 s.
    #[tokio::test(start_paused = true)]
    async fn regression_21_each_budget_has_its_own_pause_and_window() {
        let graph = Hanging {
            hang: 0,
            reads: Arc::default(),
        };
        let pacer = Pacer::new(graph, Settings::default());
        let throttled = CallError {
            message: "429".into(),
            kind: CallErrorKind::Throttled,
            status: Some(429),
            code: None,
            request_id: None,
            client_request_id: "fake".into(),
            retry_after: Some(Duration::from_secs(5)),
        };
        let mut renewals = 0;
        pacer.react_in(Budget::Directory, &throttled, true, &mut renewals);
        assert!(pacer.cooldown.until().is_none(), "Intune is not paused");
        let start = Instant::now();
        pacer.gate(true, false).await.expect("an Intune slot");
        assert_eq!(Instant::now(), start, "Intune's write left at once");
        pacer
            .gate_in(Budget::Directory, true, false)
            .await
            .expect("a directory slot");
        assert!(Instant::now() - start >= Duration::from_secs(5), "paused");

        // 200 directory writes go within a window; the 201st waits for the window.
        let from = Instant::now();
        for _ in 1..200 {
            let slot = pacer.gate_in(Budget::Directory, true, false).await.unwrap();
            pacer.departed_in(Budget::Directory, slot);
        }
        assert!(Instant::now() - from < Duration::from_secs(11));
        let slot = pacer.gate_in(Budget::Directory, true, false).await.unwrap();
        assert!(
            Instant::now() - from >= Duration::from_secs(10),
            "the 10 s window binds"
        );
        pacer.departed_in(Budget::Directory, slot);
    }

    #[tokio::test(start_paused = true)]
    async fn a_prompt_device_read_is_sent_once() {
        let graph = Hanging {
            hang: 0,
            reads: Arc::default(),
        };
        let pacer = Pacer::new(graph.clone(), Settings::default().unlimited());
        pacer.action_results("a").await.expect("read");
        assert_eq!(graph.reads.load(Ordering::SeqCst), 1);
        assert_eq!(pacer.counters.hedged.load(Ordering::SeqCst), 0);
    }
}
