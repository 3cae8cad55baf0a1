//! The engine against a fake Graph, under tokio's paused time: the no-double-reset
//! policy (issue 9, point 5), pinned without sockets or real sleeps.
//!
//! [`FakeGraph`] answers `resetPasscode` from a per-device script, and keeps the resets
//! that reached Graph with the virtual instant each *lands* (a timed-out request may
//! still be carried out later); `deviceActionResults` shows only those landed by now.
//! Every call is recorded with its virtual instant, so a test can say when the engine
//! read and how many of its POSTs had an effect.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::graph::{
    ActionResult, CallError, CallErrorKind, Connection, DeviceActions, DevicePage, GraphApi,
    ManagedDevice, PageRequest, Reply,
};
use crate::pacing::cooldown::Backoff;
use crate::pacing::{AbortReason, MAX_TOKEN_RENEWALS, Settings};
use crate::planner::{Identity, Work};
use crate::report::{Outcome, ReportRow};
use crate::rules::{Action, ActionChoice, Family, Platform};
use crate::run::ledger::{Begin, Claim, Fate, Ledger, OpenSends, RowKey};

use super::{Done, Engine, Prior, timestamp};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an answered call takes on the fake's wire.
const LATENCY: Duration = Duration::from_millis(20);
const PERMISSION: &str = "DeviceManagementManagedDevices.PrivilegedOperations.All";

fn settings() -> Settings {
    Settings {
        request_timeout: REQUEST_TIMEOUT,
        verify_delay: Duration::from_millis(100),
        backoff: Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
        },
        ..Settings::default()
    }
    .unlimited()
}

/// One scripted answer to a `resetPasscode`.
#[derive(Debug, Clone)]
struct Post {
    /// When the reset lands in Graph, counted from the POST; `None`: it never does.
    lands: Option<Duration>,
    /// How long the call takes before it returns.
    takes: Duration,
    /// `None`: 204. Else the kind, the HTTP status and `Retry-After`.
    error: Option<(CallErrorKind, Option<u16>, Option<Duration>)>,
}

impl Post {
    fn accepted() -> Post {
        Post {
            lands: Some(Duration::ZERO),
            takes: LATENCY,
            error: None,
        }
    }

    fn failing(kind: CallErrorKind, status: Option<u16>, lands: Option<Duration>) -> Post {
        Post {
            lands,
            takes: LATENCY,
            error: Some((kind, status, None)),
        }
    }

    /// No answer within the request timeout; the reset lands `lands` after the POST.
    fn timeout(lands: Option<Duration>) -> Post {
        Post {
            takes: REQUEST_TIMEOUT,
            ..Post::failing(CallErrorKind::Timeout, None, lands)
        }
    }

    /// The request went out and was carried out; the connection broke before the answer.
    fn connection_lost() -> Post {
        Post::failing(CallErrorKind::ConnectionLost, None, Some(Duration::ZERO))
    }

    /// No connection: not one byte left.
    fn connect_failed() -> Post {
        Post::failing(CallErrorKind::ConnectFailed, None, None)
    }

    fn unavailable(lands: Option<Duration>) -> Post {
        Post::failing(CallErrorKind::Unavailable, Some(503), lands)
    }

    /// Refused before it was processed: nothing lands.
    fn throttled(retry_after: Duration) -> Post {
        Post {
            lands: None,
            takes: LATENCY,
            error: Some((CallErrorKind::Throttled, Some(429), Some(retry_after))),
        }
    }

    fn unauthorized() -> Post {
        Post::failing(CallErrorKind::Unauthorized, Some(401), None)
    }

    fn forbidden(permission: &str) -> Post {
        let kind = CallErrorKind::Forbidden {
            permission: Some(permission.to_owned()),
        };
        Post::failing(kind, Some(403), None)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Post,
    /// A read of `deviceActionResults` after this run sent (or, resuming, had sent) a
    /// reset: settling a send.
    Read,
    /// The read before a device's first POST: asking Intune whether a reset is already
    /// under way or recently done.
    Check,
    Lookup,
}

/// One call the engine made.
#[derive(Debug, Clone)]
struct Call {
    at: Instant,
    device: String,
    kind: CallKind,
    connection: Connection,
    /// For a POST while a ledger is watched: the `send` lines for this device on disk
    /// when the POST reached the fake.
    sends_on_record: Option<usize>,
}

/// A reset that reached Graph.
#[derive(Debug, Clone)]
struct Landed {
    device: String,
    /// Which action: its entry's `actionName`.
    action: Family,
    /// When it shows in `deviceActionResults` (virtual time).
    at: Instant,
    /// Its `startDateTime`: our wall clock at the POST.
    started: SystemTime,
    /// Sent by this run (not seeded as an earlier run's).
    by_this_run: bool,
}

#[derive(Default)]
struct State {
    /// Answers to `resetPasscode`, per device; [`Post::accepted`] once used up.
    posts: HashMap<String, VecDeque<Post>>,
    /// Reads of `deviceActionResults` still to answer 503, per device.
    failing_reads: HashMap<String, u32>,
    /// Devices whose reads answer 403 naming this missing permission.
    forbidden_reads: HashMap<String, String>,
    resets: Vec<Landed>,
    calls: Vec<Call>,
    /// A ledger whose `send` lines are counted at each POST.
    ledger: Option<PathBuf>,
    /// Devices an interrupted run had sent to: their reads settle, they never check.
    resumed: std::collections::HashSet<String>,
    /// Devices whose check answers this way instead of showing the landed resets.
    checks: HashMap<String, Result<Vec<ActionResult>, CallErrorKind>>,
}

#[derive(Clone, Default)]
struct FakeGraph {
    state: Arc<Mutex<State>>,
}

impl FakeGraph {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn script(&self, device: &str, posts: impl IntoIterator<Item = Post>) -> &Self {
        self.state()
            .posts
            .insert(device.to_owned(), posts.into_iter().collect());
        self
    }

    fn fail_reads(&self, device: &str, reads: u32) -> &Self {
        self.state().failing_reads.insert(device.to_owned(), reads);
        self
    }

    /// `device` is resumed from a ledger with a send whose fate is open.
    fn resuming(&self, device: &str) -> &Self {
        self.state().resumed.insert(device.to_owned());
        self
    }

    /// The pre-POST check of `device` shows these entries (or fails this way).
    fn check_shows(&self, device: &str, answer: Result<Vec<ActionResult>, CallErrorKind>) -> &Self {
        self.state().checks.insert(device.to_owned(), answer);
        self
    }

    fn forbid_reads(&self, device: &str, permission: &str) -> &Self {
        self.state()
            .forbidden_reads
            .insert(device.to_owned(), permission.to_owned());
        self
    }

    /// A reset an earlier run sent, already in Graph.
    fn landed_earlier(&self, device: &str, started: SystemTime) -> &Self {
        self.state().resets.push(Landed {
            device: device.to_owned(),
            action: Family::Passcode,
            at: Instant::now(),
            started,
            by_this_run: false,
        });
        self
    }

    fn watch_ledger(&self, path: PathBuf) -> &Self {
        self.state().ledger = Some(path);
        self
    }

    fn calls(&self, device: &str, kind: CallKind) -> Vec<Call> {
        self.state()
            .calls
            .iter()
            .filter(|c| c.device == device && c.kind == kind)
            .cloned()
            .collect()
    }

    fn all_calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// This run's POSTs that reached Graph and were (or will be) carried out: the
    /// passcodes it made.
    fn effects(&self, device: &str) -> usize {
        self.effects_of(device, Family::Passcode)
    }

    /// This run's carried-out POSTs of one action to `device`.
    fn effects_of(&self, device: &str, action: Family) -> usize {
        self.state()
            .resets
            .iter()
            .filter(|r| r.device == device && r.by_this_run && r.action == action)
            .count()
    }

    fn record(&self, device: &str, kind: CallKind, connection: Connection) {
        let sends_on_record = match (&self.state().ledger, kind) {
            (Some(path), CallKind::Post) => Some(sends_in_ledger(path, device)),
            _ => None,
        };
        self.state().calls.push(Call {
            at: Instant::now(),
            device: device.to_owned(),
            kind,
            connection,
            sends_on_record,
        });
    }
}

/// The `send` lines for `device` in the ledger file, as they are on disk now.
fn sends_in_ledger(path: &std::path::Path, device: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "send" && v["device"] == device)
        .count()
}

fn call_error(
    kind: CallErrorKind,
    status: Option<u16>,
    retry_after: Option<Duration>,
) -> CallError {
    CallError {
        message: format!("the fake answered {kind:?}"),
        kind,
        status,
        code: None,
        request_id: Some("fake-request".into()),
        client_request_id: "fake-client-request".into(),
        retry_after,
    }
}

fn reply<T>(value: T, status: u16) -> Reply<T> {
    Reply {
        value,
        status,
        request_id: Some("fake-request".into()),
        client_request_id: "fake-client-request".into(),
    }
}

/// What `deviceActionResults` shows for `id` now: an earlier campaign's old reset, and
/// every reset that has landed, still `pending`.
fn landed_by_now(resets: &[Landed], id: &str) -> Vec<ActionResult> {
    let now = Instant::now();
    let mut results = vec![old_reset()];
    results.extend(
        resets
            .iter()
            .filter(|r| r.device == id && r.at <= now)
            .map(|r| ActionResult {
                action_name: Some(r.action.graph_name().into()),
                action_state: Some("pending".into()),
                start_date_time: Some(timestamp(r.started)),
                ..ActionResult::default()
            }),
    );
    results
}

/// A reset a week old on every device: an earlier campaign's, never ours.
fn old_reset() -> ActionResult {
    ActionResult {
        action_name: Some("resetPasscode".into()),
        action_state: Some("done".into()),
        start_date_time: Some(timestamp(
            SystemTime::now() - Duration::from_secs(7 * 24 * 3600),
        )),
        ..ActionResult::default()
    }
}

impl GraphApi for FakeGraph {
    fn get_device(
        &self,
        id: &str,
        _select: &[&str],
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<ManagedDevice>, CallError>> + Send {
        self.record(id, CallKind::Lookup, connection);
        async { Err(call_error(CallErrorKind::Rejected, Some(400), None)) }
    }

    fn list_devices_page(
        &self,
        _request: PageRequest,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<DevicePage>, CallError>> + Send {
        self.record("", CallKind::Lookup, connection);
        async { Err(call_error(CallErrorKind::Rejected, Some(400), None)) }
    }

    /// Users are found by their object id or their UPN ([`USERS`]); their sessions'
    /// valid-from time is the newest revocation landed by now.
    fn get_user(
        &self,
        user: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<crate::graph::DirectoryUser>, CallError>> + Send {
        self.record(user, CallKind::Lookup, connection);
        let found = USERS
            .iter()
            .find(|(id, upn)| user.eq_ignore_ascii_case(id) || user.eq_ignore_ascii_case(upn))
            .map(|(id, upn)| {
                let now = Instant::now();
                let revoked = self
                    .state()
                    .resets
                    .iter()
                    .filter(|r| r.device == *id && r.action == Family::Sessions && r.at <= now)
                    .map(|r| r.started)
                    .max();
                crate::graph::DirectoryUser {
                    id: id.to_string(),
                    user_principal_name: Some(upn.to_string()),
                    sign_in_sessions_valid_from_date_time: Some(timestamp(
                        revoked.unwrap_or(SystemTime::now() - Duration::from_secs(30 * 24 * 3600)),
                    )),
                }
            });
        async move {
            tokio::time::sleep(LATENCY).await;
            match found {
                Some(user) => Ok(reply(user, 200)),
                None => Err(call_error(CallErrorKind::NotFound, Some(404), None)),
            }
        }
    }

    fn device_action(
        &self,
        id: &str,
        action: Family,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<()>, CallError>> + Send {
        self.record(id, CallKind::Post, connection);
        let post = {
            let mut state = self.state();
            let post = state
                .posts
                .get_mut(id)
                .and_then(VecDeque::pop_front)
                .unwrap_or_else(Post::accepted);
            if let Some(lands) = post.lands {
                state.resets.push(Landed {
                    device: id.to_owned(),
                    action,
                    at: Instant::now() + lands,
                    started: SystemTime::now(),
                    by_this_run: true,
                });
            }
            post
        };
        async move {
            tokio::time::sleep(post.takes).await;
            match post.error {
                None => Ok(reply((), 204)),
                Some((kind, status, retry_after)) => Err(call_error(kind, status, retry_after)),
            }
        }
    }

    fn action_results(
        &self,
        id: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<DeviceActions>, CallError>> + Send {
        let kind = {
            let state = self.state();
            let posted = state
                .calls
                .iter()
                .any(|c| c.device == id && c.kind == CallKind::Post);
            if posted || state.resumed.contains(id) {
                CallKind::Read
            } else {
                CallKind::Check
            }
        };
        self.record(id, kind, connection);
        let answer = {
            let mut state = self.state();
            let forbidden = state.forbidden_reads.get(id).cloned();
            let check = match kind {
                CallKind::Check => Some(state.checks.get(id).cloned()),
                _ => None,
            };
            match (check, state.failing_reads.get_mut(id)) {
                (Some(Some(Ok(results))), _) => Ok(reply(DeviceActions::from(results), 200)),
                (Some(Some(Err(kind))), _) => Err(call_error(kind, Some(503), None)),
                (Some(None), _) => Ok(reply(
                    DeviceActions::from(landed_by_now(&state.resets, id)),
                    200,
                )),
                _ if forbidden.is_some() => {
                    let permission = forbidden;
                    Err(call_error(
                        CallErrorKind::Forbidden { permission },
                        Some(403),
                        None,
                    ))
                }
                (None, Some(left)) if *left > 0 => {
                    *left -= 1;
                    Err(call_error(CallErrorKind::Unavailable, Some(503), None))
                }
                _ => Ok(reply(
                    DeviceActions::from(landed_by_now(&state.resets, id)),
                    200,
                )),
            }
        };
        async move {
            tokio::time::sleep(LATENCY).await;
            answer
        }
    }
}

/// The fake directory's users: object id and UPN.
const USERS: [(&str, &str); 2] = [
    ("aaaaaaaa-1111-2222-3333-444444444444", "ada@contoso.com"),
    ("bbbbbbbb-1111-2222-3333-444444444444", "bo@contoso.com"),
];

fn device(n: u64) -> String {
    format!("0000000{n}-1111-2222-3333-444444444444")
}

/// A planned iOS device, named by its Intune id, whose action the file decided.
fn planned(n: u64) -> (RowKey, ReportRow, Work) {
    let id = device(n);
    let row = ReportRow {
        source: "job.csv".into(),
        row: n,
        device_id: id.clone(),
        device_name: format!("iPhone {n}"),
        serial_number: format!("SN{n}"),
        user_principal_name: String::new(),
        operating_system: "iOS".into(),
        os_version: "17.5".into(),
        platform: Platform::Ios.as_str().into(),
        action: Action::RemovePasscode.as_str().into(),
        outcome: Outcome::Planned,
        reason: "".into(),
        detail: "".into(),
        http_status: None,
        attempts: 0,
        request_id: String::new(),
        client_request_id: String::new(),
        started_at: String::new(),
        finished_at: String::new(),
        tenant: String::new(),
    };
    let work = Work {
        identity: Identity::Id(id),
        choice: ActionChoice::Auto,
        action: Some(Action::RemovePasscode),
        platform: Some(Platform::Ios),
        lookup: false,
        id_header: None,
        tenant: None,
    };
    (RowKey::new(0, n), row, work)
}

async fn run(engine: &Engine<FakeGraph>, n: u64) -> Done {
    let (key, row, work) = planned(n);
    engine.process(key, row, work, Prior::default()).await
}

/// What an interrupted run's ledger knew of row `n`: its claim, and one send at `sent`.
fn resumed(n: u64, sent: SystemTime) -> Prior {
    let (_, row, _) = planned(n);
    Prior {
        claim: Some(Claim {
            device: device(n),
            action: Action::RemovePasscode.as_str().into(),
            report: row,
        }),
        open: Some(OpenSends::at(sent, None)),
        sends: 1,
    }
}

fn assert_outcome(done: &Done, outcome: Outcome, reason: &str, fate: Fate) {
    assert_eq!(
        (done.row.outcome, done.row.reason.as_ref(), done.fate),
        (outcome, reason, fate),
        "detail: {}",
        done.row.detail
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_whose_reset_landed_is_confirmed_and_not_sent_again() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::timeout(Some(Duration::from_secs(1)))]);
    let engine = Engine::new(graph.clone(), settings());

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    assert!(
        done.row.detail.contains("confirmed, not sent again"),
        "{}",
        done.row.detail
    );
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
    assert_eq!(graph.effects(&device(1)), 1);
    assert_eq!(done.row.attempts, 1);
    assert_eq!(
        engine
            .counters()
            .confirmed_by_results
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_whose_reset_did_not_land_is_sent_again_exactly_once() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::timeout(None), Post::accepted()]);
    let engine = Engine::new(graph.clone(), settings());

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    let posts = graph.calls(&device(1), CallKind::Post);
    assert_eq!(posts.len(), 2);
    assert_eq!(graph.effects(&device(1)), 1);
    assert_eq!(done.row.attempts, 2);
    // Only after the settle policy's two reads said "no reset", and on a new connection.
    let reads = graph.calls(&device(1), CallKind::Read);
    assert_eq!(reads.len(), 2);
    assert!(reads.iter().all(|r| r.at < posts[1].at));
    assert_eq!(posts[1].connection, Connection::Fresh);
    assert!(
        done.row.detail.contains("on attempt 2"),
        "{}",
        done.row.detail
    );
}

// The engine measures the settle window on the wall clock (the ledger's send times are
// wall-clock times), which paused tokio time does not move: a call that takes virtual
// time (a timeout) lengthens the window seen here. So each of the next two tests also
// drives a fast answer (a 503), where the window is seen as it is in a real run.

#[tokio::test(start_paused = true)]
async fn no_read_happens_before_the_settle_window_after_the_send_has_passed() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::timeout(None)]);
    graph.script(&device(2), [Post::unavailable(None)]);
    let settings = settings();
    let window = settings.settle_window();
    assert_eq!(window, 2 * REQUEST_TIMEOUT);
    let engine = Engine::new(graph.clone(), settings);

    for n in [1, 2] {
        run(&engine, n).await;

        let posts = graph.calls(&device(n), CallKind::Post);
        let reads = graph.calls(&device(n), CallKind::Read);
        assert_eq!(reads.len(), 2, "device {n}");
        assert!(
            reads[0].at >= posts[0].at + window,
            "device {n}: first read {:?} after the send, the window is {window:?}",
            reads[0].at - posts[0].at
        );
        assert!(
            reads[1].at - reads[0].at >= Duration::from_millis(100),
            "device {n}: the reads are verify_delay apart"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_reset_landing_late_but_inside_the_settle_window_is_not_sent_twice() {
    let graph = FakeGraph::default();
    // Carried out after the client gave up, just before the window closes.
    let late = 2 * REQUEST_TIMEOUT - Duration::from_millis(100);
    graph.script(&device(1), [Post::timeout(Some(late))]);
    graph.script(&device(2), [Post::unavailable(Some(late))]);
    let engine = Engine::new(graph.clone(), settings());

    for n in [1, 2] {
        let done = run(&engine, n).await;

        assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
        assert_eq!(
            graph.calls(&device(n), CallKind::Post).len(),
            1,
            "device {n}"
        );
        assert_eq!(graph.effects(&device(n)), 1, "device {n}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_never_opened_is_sent_again_without_a_read() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::connect_failed(), Post::accepted()]);
    let engine = Engine::new(graph.clone(), settings());

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    let posts = graph.calls(&device(1), CallKind::Post);
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].connection, Connection::Fresh);
    assert!(graph.calls(&device(1), CallKind::Read).is_empty());
    assert_eq!(graph.effects(&device(1)), 1);
    // Only a backoff between them, no settle window.
    assert!(posts[1].at - posts[0].at < REQUEST_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_connection_dropped_after_the_effect_is_confirmed_not_sent_again() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::connection_lost()]);
    let engine = Engine::new(graph.clone(), settings());

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
    assert_eq!(graph.effects(&device(1)), 1);
    assert!(!graph.calls(&device(1), CallKind::Read).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_503_with_or_without_effect_is_settled_and_never_doubled() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::unavailable(Some(Duration::ZERO))]);
    graph.script(&device(2), [Post::unavailable(None), Post::accepted()]);
    let engine = Engine::new(graph.clone(), settings());

    let with_effect = run(&engine, 1).await;
    let without = run(&engine, 2).await;

    assert_outcome(&with_effect, Outcome::Succeeded, "", Fate::Final);
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
    assert_eq!(graph.effects(&device(1)), 1);

    assert_outcome(&without, Outcome::Succeeded, "", Fate::Final);
    let posts = graph.calls(&device(2), CallKind::Post);
    assert_eq!(posts.len(), 2);
    assert_eq!(graph.effects(&device(2)), 1);
    let reads = graph.calls(&device(2), CallKind::Read);
    assert_eq!(reads.len(), 2, "settled before the second send");
    assert!(reads[0].at >= posts[0].at + 2 * REQUEST_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn an_abort_while_a_lost_answer_settles_lets_the_reads_finish_and_sends_nothing_more() {
    let graph = FakeGraph::default();
    // Device 1's reset landed; device 2's did not.
    graph.script(&device(1), [Post::timeout(Some(Duration::from_secs(1)))]);
    graph.script(&device(2), [Post::timeout(None)]);
    let engine = Arc::new(Engine::new(graph.clone(), settings()));
    let mut running = JoinSet::new();
    for n in [1, 2] {
        let engine = engine.clone();
        running.spawn(async move { (n, run(&engine, n).await) });
    }

    // Both timed out (2 s) and are waiting out the settle window (4 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let aborted_at = Instant::now();
    engine.abort(AbortReason::Interrupted);
    let mut done: HashMap<u64, Done> = HashMap::new();
    while let Some(joined) = running.join_next().await {
        let (n, d) = joined.expect("a device task panicked");
        done.insert(n, d);
    }
    let not_started = run(&engine, 3).await;

    for n in [1, 2] {
        let reads = graph.calls(&device(n), CallKind::Read);
        assert!(!reads.is_empty(), "device {n} is settled");
        assert!(
            reads.iter().all(|r| r.at > aborted_at),
            "device {n}: its reads go on after the abort"
        );
        assert_eq!(
            graph.calls(&device(n), CallKind::Post).len(),
            1,
            "device {n}"
        );
    }
    assert_eq!(graph.calls(&device(1), CallKind::Read).len(), 1);
    assert_outcome(&done[&1], Outcome::Succeeded, "", Fate::Final);
    assert_eq!(graph.effects(&device(1)), 1);
    // Settled as "no reset": certainly unchanged, and the abort stops the second send.
    assert_eq!(graph.calls(&device(2), CallKind::Read).len(), 2);
    assert_outcome(
        &done[&2],
        Outcome::NotAttempted,
        "run_aborted",
        Fate::Unchanged,
    );
    assert_eq!(graph.effects(&device(2)), 0);

    assert_outcome(
        &not_started,
        Outcome::NotAttempted,
        "run_aborted",
        Fate::Unchanged,
    );
    assert!(graph.calls(&device(3), CallKind::Post).is_empty());
    assert_eq!(engine.abort_reason(), Some(AbortReason::Interrupted));
}

#[tokio::test(start_paused = true)]
async fn resume_confirms_a_reset_that_landed_without_sending() {
    let graph = FakeGraph::default();
    let sent = SystemTime::now() - Duration::from_secs(600);
    graph.landed_earlier(&device(1), sent + Duration::from_secs(1));
    let engine = Engine::new(graph.clone(), settings());
    let (key, row, work) = planned(1);

    graph.resuming(&device(1));
    let done = engine.process(key, row, work, resumed(1, sent)).await;

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    assert!(
        done.row.detail.starts_with("confirmed on resume"),
        "{}",
        done.row.detail
    );
    assert!(graph.calls(&device(1), CallKind::Post).is_empty());
    assert!(graph.calls(&device(1), CallKind::Lookup).is_empty());
}

#[tokio::test(start_paused = true)]
async fn resume_sends_once_when_the_earlier_reset_did_not_land() {
    let graph = FakeGraph::default();
    let sent = SystemTime::now() - Duration::from_secs(600);
    let engine = Engine::new(graph.clone(), settings());
    let (key, row, work) = planned(1);

    graph.resuming(&device(1));
    let done = engine.process(key, row, work, resumed(1, sent)).await;

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    let posts = graph.calls(&device(1), CallKind::Post);
    assert_eq!(posts.len(), 1);
    assert_eq!(graph.effects(&device(1)), 1);
    let reads = graph.calls(&device(1), CallKind::Read);
    assert_eq!(reads.len(), 2);
    assert!(reads.iter().all(|r| r.at < posts[0].at));
    assert_eq!(done.row.attempts, 2, "one send in the earlier run, one now");
}

#[tokio::test(start_paused = true)]
async fn a_429_pauses_every_worker_until_retry_after_has_passed() {
    let graph = FakeGraph::default();
    let retry_after = Duration::from_secs(5);
    graph.script(&device(0), [Post::throttled(retry_after), Post::accepted()]);
    let engine = Arc::new(Engine::new(graph.clone(), settings()));
    let start = Instant::now();
    let mut running = JoinSet::new();
    // Device 0 is throttled at once; the others start during the pause.
    for n in 0..5u64 {
        let engine = engine.clone();
        running.spawn(async move {
            tokio::time::sleep(Duration::from_secs(n)).await;
            run(&engine, n).await
        });
    }
    while let Some(joined) = running.join_next().await {
        let done = joined.expect("a device task panicked");
        assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    }

    let calls = graph.all_calls();
    let first_post = calls
        .iter()
        .position(|c| c.kind == CallKind::Post)
        .expect("a POST was made");
    let throttled = &calls[first_post];
    assert_eq!(throttled.device, device(0));
    assert_eq!(
        calls[..first_post]
            .iter()
            .map(|c| c.kind)
            .collect::<Vec<_>>(),
        [CallKind::Check],
        "only device 0's check came before its POST"
    );
    let rest = &calls[first_post + 1..];
    for call in rest {
        assert!(
            call.at >= throttled.at + retry_after,
            "{} called {:?} after the 429, inside the pause",
            call.device,
            call.at - start
        );
    }
    let kinds = |kind| rest.iter().filter(|c| c.kind == kind).count();
    assert_eq!(
        (
            kinds(CallKind::Post),
            kinds(CallKind::Check),
            kinds(CallKind::Read)
        ),
        (5, 4, 0),
        "one more POST each, the others' checks after the pause, no settle reads"
    );
    for n in 0..5 {
        assert_eq!(graph.effects(&device(n)), 1);
    }
    assert_eq!(
        engine
            .counters()
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_401_renews_the_token_and_sends_once() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::unauthorized(), Post::accepted()]);
    let engine = Engine::new(graph.clone(), settings());

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 2);
    assert_eq!(graph.effects(&device(1)), 1);
    assert!(graph.calls(&device(1), CallKind::Read).is_empty());
    assert!(!engine.is_aborted());
}

#[tokio::test(start_paused = true)]
async fn refused_renewed_tokens_abort_the_run() {
    let graph = FakeGraph::default();
    graph.script(&device(1), std::iter::repeat_n(Post::unauthorized(), 10));
    let engine = Engine::new(graph.clone(), settings());

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Failed, "unauthorized", Fate::Unchanged);
    assert!(matches!(
        engine.abort_reason(),
        Some(AbortReason::Authentication(_))
    ));
    // The token the call began with, then MAX_TOKEN_RENEWALS (3) new ones: all refused.
    assert_eq!(
        graph.calls(&device(1), CallKind::Post).len(),
        1 + MAX_TOKEN_RENEWALS as usize
    );
    assert_eq!(graph.effects(&device(1)), 0);
    let next = run(&engine, 2).await;
    assert_outcome(&next, Outcome::NotAttempted, "run_aborted", Fate::Unchanged);
    assert!(graph.calls(&device(2), CallKind::Post).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_403_naming_the_missing_permission_aborts_the_run() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::forbidden(PERMISSION)]);
    let engine = Engine::new(graph.clone(), settings());

    let done = run(&engine, 1).await;
    let next = run(&engine, 2).await;

    assert_outcome(
        &done,
        Outcome::Failed,
        "missing_permission",
        Fate::Unchanged,
    );
    assert_eq!(done.row.http_status, Some(403));
    assert_eq!(
        engine.abort_reason(),
        Some(AbortReason::MissingPermission(PERMISSION.into()))
    );
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
    assert_outcome(&next, Outcome::NotAttempted, "run_aborted", Fate::Unchanged);
    assert!(graph.calls(&device(2), CallKind::Post).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_whose_results_cannot_be_read_stays_unknown_and_is_not_sent_again() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::timeout(Some(Duration::from_secs(1)))]);
    graph.fail_reads(&device(1), u32::MAX);
    let settings = settings();
    let max_attempts = settings.max_attempts as usize;
    let engine = Engine::new(graph.clone(), settings);

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Failed, "outcome_unknown", Fate::Unknown);
    assert!(
        done.row.detail.contains("not sent again"),
        "{}",
        done.row.detail
    );
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
    assert_eq!(graph.effects(&device(1)), 1);
    assert_eq!(graph.calls(&device(1), CallKind::Read).len(), max_attempts);
    assert!(
        !engine.is_aborted(),
        "one device's unknown fate stops no run"
    );
}

#[tokio::test(start_paused = true)]
async fn max_attempts_used_up_by_429s_gives_up_unchanged() {
    let graph = FakeGraph::default();
    graph.script(
        &device(1),
        std::iter::repeat_n(Post::throttled(Duration::from_secs(1)), 20),
    );
    let settings = Settings {
        max_attempts: 4,
        ..settings()
    };
    let engine = Engine::new(graph.clone(), settings);

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Failed, "gave_up", Fate::Unchanged);
    assert_eq!(done.row.http_status, Some(429));
    assert_eq!(done.row.attempts, 4);
    let posts = graph.calls(&device(1), CallKind::Post);
    assert_eq!(posts.len(), 4);
    for pair in posts.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_secs(1),
            "Retry-After kept"
        );
    }
    assert_eq!(graph.effects(&device(1)), 0);
    assert!(graph.calls(&device(1), CallKind::Read).is_empty());
}

#[tokio::test(start_paused = true)]
async fn every_send_is_on_record_in_the_ledger_before_the_post_leaves() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("report.csv.ledger");
    let begin = Begin {
        tenants: Vec::new(),
        files: Vec::new(),
        action: None,
        lookup: "never".into(),
        sheet: None,
        encoding: None,
        origin: None,
    };
    let ledger = Ledger::create(&path, &begin).expect("the ledger is created");
    let graph = FakeGraph::default();
    graph
        .script(&device(1), [Post::timeout(None), Post::accepted()])
        .watch_ledger(path.clone());
    let engine = Engine::new(graph.clone(), settings()).with_ledger(Arc::new(ledger));

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    let posts = graph.calls(&device(1), CallKind::Post);
    assert_eq!(posts.len(), 2);
    for (i, post) in posts.iter().enumerate() {
        assert_eq!(post.sends_on_record, Some(i + 1), "POST {}", i + 1);
    }
    let text = std::fs::read_to_string(&path).expect("the ledger reads back");
    let claim = text.find("\"event\":\"claim\"").expect("a claim line");
    let send = text.find("\"event\":\"send\"").expect("a send line");
    assert!(claim < send, "the claim is written before the first send");
}

#[tokio::test(start_paused = true)]
async fn lost_answers_in_a_row_are_each_settled_before_the_next_send() {
    let graph = FakeGraph::default();
    graph.script(
        &device(1),
        [
            Post::timeout(None),
            Post::unavailable(None),
            Post::accepted(),
        ],
    );
    let engine = Engine::new(graph.clone(), settings());

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    let posts = graph.calls(&device(1), CallKind::Post);
    assert_eq!(posts.len(), 3);
    assert_eq!(graph.effects(&device(1)), 1);
    let reads = graph.calls(&device(1), CallKind::Read);
    for pair in posts.windows(2) {
        let between = reads
            .iter()
            .filter(|r| r.at > pair[0].at && r.at < pair[1].at)
            .count();
        assert_eq!(between, 2, "two reads settle each lost answer");
    }
}

#[tokio::test(start_paused = true)]
async fn attempts_used_up_by_lost_answers_give_up_only_after_the_last_one_settled() {
    let graph = FakeGraph::default();
    graph.script(&device(1), std::iter::repeat_n(Post::timeout(None), 5));
    let settings = Settings {
        max_attempts: 3,
        ..settings()
    };
    let engine = Engine::new(graph.clone(), settings);

    let done = run(&engine, 1).await;

    // Unchanged is true only because the last send, too, was read as "no reset".
    assert_outcome(&done, Outcome::Failed, "gave_up", Fate::Unchanged);
    let posts = graph.calls(&device(1), CallKind::Post);
    assert_eq!(posts.len(), 3);
    let reads = graph.calls(&device(1), CallKind::Read);
    assert_eq!(reads.len(), 6);
    assert_eq!(reads.iter().filter(|r| r.at > posts[2].at).count(), 2);
    assert_eq!(graph.effects(&device(1)), 0);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_whose_reset_lands_late_after_a_resume_is_not_sent_again() {
    let graph = FakeGraph::default();
    graph.script(
        &device(1),
        [Post::unavailable(Some(Duration::from_secs(1)))],
    );
    let sent = SystemTime::now() - Duration::from_secs(600);
    let engine = Engine::new(graph.clone(), settings());
    let (key, row, work) = planned(1);

    graph.resuming(&device(1));
    let done = engine.process(key, row, work, resumed(1, sent)).await;

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
    assert_eq!(graph.effects(&device(1)), 1);
    // Two reads settle the resumed send; one finds this run's reset.
    assert_eq!(graph.calls(&device(1), CallKind::Read).len(), 2 + 1);
}

#[tokio::test(start_paused = true)]
async fn two_rows_for_one_device_send_one_reset() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::timeout(Some(Duration::ZERO))]);
    let engine = Arc::new(Engine::new(graph.clone(), settings()));
    let mut running = JoinSet::new();
    for row in [1, 2] {
        let engine = engine.clone();
        running.spawn(async move {
            let (_, report, work) = planned(1);
            let key = RowKey::new(0, row);
            engine.process(key, report, work, Prior::default()).await
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = running.join_next().await {
        outcomes.push(joined.expect("a device task panicked").row.outcome);
    }
    outcomes.sort();

    assert_eq!(outcomes, [Outcome::Succeeded, Outcome::Duplicate]);
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
    assert_eq!(graph.effects(&device(1)), 1);
}

#[tokio::test(start_paused = true)]
async fn a_429_on_a_settle_read_pauses_and_the_reset_is_still_confirmed() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::connection_lost()]);
    let engine = Engine::new(graph.clone(), settings());
    // Another device's 429 just before the reads would start.
    let pause = Duration::from_secs(10);
    let task = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        engine.pacer.cooldown.throttled(Some(pause));
        Instant::now() + pause
    };
    let (done, pause_ends) = tokio::join!(run(&engine, 1), task);

    assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
    let reads = graph.calls(&device(1), CallKind::Read);
    assert!(reads.iter().all(|r| r.at >= pause_ends));
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_whose_read_lacks_a_permission_stays_unknown() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::timeout(Some(Duration::ZERO))]);
    graph.forbid_reads(&device(1), "DeviceManagementManagedDevices.Read.All");
    let engine = Engine::new(graph.clone(), settings());

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Failed, "outcome_unknown", Fate::Unknown);
    assert!(matches!(
        engine.abort_reason(),
        Some(AbortReason::MissingPermission(_))
    ));
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
}

/// A reset entry in `state`, started `ago` before now.
fn reset_entry(state: &str, ago: Duration) -> ActionResult {
    ActionResult {
        action_name: Some("resetPasscode".into()),
        action_state: Some(state.into()),
        start_date_time: Some(timestamp(SystemTime::now() - ago)),
        ..ActionResult::default()
    }
}

#[tokio::test(start_paused = true)]
async fn regression_17_a_reset_intune_shows_pending_or_active_is_never_sent() {
    let graph = FakeGraph::default();
    let hour = Duration::from_secs(3600);
    graph.check_shows(
        &device(1),
        Ok(vec![old_reset(), reset_entry("pending", hour)]),
    );
    graph.check_shows(&device(2), Ok(vec![reset_entry("active", 30 * hour)]));
    let engine = Engine::new(graph.clone(), settings()).reset_again(true);

    for n in [1, 2] {
        let done = run(&engine, n).await;

        assert_outcome(&done, Outcome::Ineligible, "reset_in_progress", Fate::Final);
        assert!(graph.calls(&device(n), CallKind::Post).is_empty());
        assert_eq!(graph.calls(&device(n), CallKind::Check).len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn regression_17_a_reset_done_within_a_day_is_skipped_unless_reset_again() {
    let graph = FakeGraph::default();
    let done_lately = vec![reset_entry("done", Duration::from_secs(2 * 3600))];
    graph.check_shows(&device(1), Ok(done_lately.clone()));
    graph.check_shows(&device(2), Ok(done_lately));
    let engine = Engine::new(graph.clone(), settings());

    let skipped = run(&engine, 1).await;

    assert_outcome(
        &skipped,
        Outcome::Ineligible,
        "reset_recently_done",
        Fate::Final,
    );
    assert!(
        skipped.row.detail.contains("--reset-again"),
        "{}",
        skipped.row.detail
    );
    assert!(graph.calls(&device(1), CallKind::Post).is_empty());

    let again = Engine::new(graph.clone(), settings()).reset_again(true);
    let sent = run(&again, 2).await;

    assert_outcome(&sent, Outcome::Succeeded, "", Fate::Final);
    assert_eq!(graph.effects(&device(2)), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reset_that_failed_or_was_canceled_does_not_stop_a_new_one() {
    let graph = FakeGraph::default();
    let minute = Duration::from_secs(60);
    graph.check_shows(&device(1), Ok(vec![reset_entry("failed", minute)]));
    graph.check_shows(&device(2), Ok(vec![reset_entry("canceled", minute)]));
    let engine = Engine::new(graph.clone(), settings());

    for n in [1, 2] {
        let done = run(&engine, n).await;

        assert_outcome(&done, Outcome::Succeeded, "", Fate::Final);
        assert_eq!(graph.effects(&device(n)), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_device_whose_record_cannot_be_read_is_not_sent() {
    let graph = FakeGraph::default();
    graph.check_shows(&device(1), Err(CallErrorKind::Unavailable));
    let engine = Engine::new(graph.clone(), settings());

    let done = run(&engine, 1).await;

    assert_outcome(&done, Outcome::Failed, "state_unread", Fate::Unchanged);
    assert!(graph.calls(&device(1), CallKind::Post).is_empty());
}

#[tokio::test(start_paused = true)]
async fn regression_17_11_a_device_waiting_for_its_write_slot_when_the_run_stops_is_not_sent() {
    let graph = FakeGraph::default();
    let one_write_per_window = Settings {
        write_limit: 1,
        ..settings()
    };
    let engine = Arc::new(Engine::new(graph.clone(), one_write_per_window));
    let first = run(&engine, 1).await;
    assert_outcome(&first, Outcome::Succeeded, "", Fate::Final);

    let waiting = tokio::spawn({
        let engine = engine.clone();
        async move { run(&engine, 2).await }
    });
    // Device 2 has checked Intune and waits for the window to free a write slot.
    while graph.calls(&device(2), CallKind::Check).is_empty() {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    engine.abort(AbortReason::Interrupted);
    let done = waiting.await.expect("the device task panicked");

    assert_eq!(
        done.row.outcome,
        Outcome::NotAttempted,
        "{}",
        done.row.detail
    );
    assert!(graph.calls(&device(2), CallKind::Post).is_empty());
}

#[tokio::test(start_paused = true)]
async fn regression_19_a_lost_answer_settles_parked_and_holds_no_worker() {
    // One worker. Device 1's answer is lost (503, the reset landed): while its settle
    // window runs, devices 2..=6 are each sent on the one worker; then device 1 is
    // confirmed from Graph's record and never sent again.
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::unavailable(Some(Duration::ZERO))]);
    let engine = Arc::new(Engine::new(graph.clone(), settings()));
    let mut workers = crate::pacing::workers::Workers::new(1);
    let mut done = Vec::new();
    for n in 1..=6 {
        let engine = engine.clone();
        let device = async move { (n, run(&engine, n).await) };
        done.extend(
            workers
                .spawn(device, |_| unreachable!("no task fails"))
                .await,
        );
    }
    done.extend(workers.finish().await);
    done.sort_by_key(|(n, _)| *n);
    assert_outcome(&done[0].1, Outcome::Succeeded, "", Fate::Final);
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
    assert_eq!(graph.effects(&device(1)), 1);
    let settled = graph.calls(&device(1), CallKind::Read)[0].at;
    for n in 2..=6 {
        assert_outcome(&done[n as usize - 1].1, Outcome::Succeeded, "", Fate::Final);
        let post = graph.calls(&device(n), CallKind::Post);
        assert!(
            post[0].at < settled,
            "device {n} waited for device 1's window"
        );
    }
}

/// Row `n` asking `action` of a `platform` device named by its Intune id (`device(id)`),
/// as the `step`-th action of its row.
fn planned_action(
    n: u64,
    id: u64,
    step: u8,
    action: Action,
    platform: Platform,
) -> (RowKey, ReportRow, Work) {
    let (_, mut row, mut work) = planned(n);
    row.device_id = device(id);
    row.platform = platform.as_str().into();
    row.action = action.effect(platform).into();
    work.identity = Identity::Id(device(id));
    work.choice = ActionChoice::Only(action);
    work.action = Some(action);
    work.platform = Some(platform);
    (RowKey::at(0, n, step), row, work)
}

async fn run_action(engine: &Engine<FakeGraph>, n: u64, id: u64, step: u8, action: Action) -> Done {
    let platform = match action {
        Action::RotateBitLockerKeys => Platform::Windows,
        _ => Platform::Ios,
    };
    let (key, row, work) = planned_action(n, id, step, action, platform);
    engine.process(key, row, work, Prior::default()).await
}

fn entry(name: &str, state: &str, ago: Duration) -> ActionResult {
    let at = timestamp(SystemTime::now() - ago);
    ActionResult {
        action_name: Some(name.into()),
        action_state: Some(state.into()),
        start_date_time: Some(at.clone()),
        last_updated_date_time: Some(at),
        ..ActionResult::default()
    }
}

/// Issue 21: a device takes each action once. A lock and a rotation of one device are
/// two actions, each sent once, to its own endpoint; a second row locking the same
/// device is its duplicate, never a second lock.
#[tokio::test(start_paused = true)]
async fn regression_21_a_device_takes_each_action_once() {
    let graph = FakeGraph::default();
    let engine = Engine::new(graph.clone(), settings());
    let lock = run_action(&engine, 2, 1, 0, Action::RemoteLock).await;
    let rotate = run_action(&engine, 2, 1, 1, Action::RotateBitLockerKeys).await;
    let again = run_action(&engine, 3, 1, 0, Action::RemoteLock).await;
    assert_outcome(&lock, Outcome::Succeeded, "", Fate::Final);
    assert_outcome(&rotate, Outcome::Succeeded, "", Fate::Final);
    assert_outcome(&again, Outcome::Duplicate, "duplicate_device", Fate::Final);
    assert_eq!(graph.effects_of(&device(1), Family::Lock), 1);
    assert_eq!(graph.effects_of(&device(1), Family::BitLocker), 1);
    assert_eq!(graph.effects(&device(1)), 0, "no passcode reset was asked");
    assert_eq!(lock.row.action, "remote-lock");
    assert!(
        lock.row.detail.contains("the device locks"),
        "{}",
        lock.row.detail
    );
}

/// Issue 21: Intune's record is read per action. A lock still pending keeps the device
/// from a second lock (not from a reset); a reset pending does not keep it from a lock.
#[tokio::test(start_paused = true)]
async fn regression_21_intunes_record_is_read_for_the_action_asked() {
    let graph = FakeGraph::default();
    graph.check_shows(
        &device(1),
        Ok(vec![entry(
            "remoteLock",
            "pending",
            Duration::from_secs(60),
        )]),
    );
    graph.check_shows(
        &device(2),
        Ok(vec![entry(
            "resetPasscode",
            "pending",
            Duration::from_secs(60),
        )]),
    );
    let engine = Engine::new(graph.clone(), settings());
    let blocked = run_action(&engine, 2, 1, 0, Action::RemoteLock).await;
    let sent = run_action(&engine, 3, 2, 0, Action::RemoteLock).await;
    assert_outcome(
        &blocked,
        Outcome::Ineligible,
        "lock_in_progress",
        Fate::Final,
    );
    assert!(
        blocked.row.detail.contains("remote lock"),
        "{}",
        blocked.row.detail
    );
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 0);
    assert_outcome(&sent, Outcome::Succeeded, "", Fate::Final);
    assert_eq!(graph.effects_of(&device(2), Family::Lock), 1);
}

/// Issue 21: a lock whose answer was lost is settled by the device's lock entry, never
/// re-sent blindly; a reset entry of the same device is no proof of the lock.
#[tokio::test(start_paused = true)]
async fn regression_21_a_lost_lock_is_settled_by_its_own_entry() {
    let graph = FakeGraph::default();
    graph.script(&device(1), [Post::timeout(Some(Duration::from_secs(1)))]);
    // Device 2: the lock never landed; a reset of the device did, at the same time.
    graph.script(&device(2), [Post::timeout(None)]);
    let engine = Engine::new(graph.clone(), settings());
    let landed = run_action(&engine, 2, 1, 0, Action::RemoteLock).await;
    assert_outcome(&landed, Outcome::Succeeded, "", Fate::Final);
    assert!(
        landed
            .row
            .detail
            .contains("deviceActionResults shows the remote lock"),
        "{}",
        landed.row.detail
    );
    assert_eq!(graph.calls(&device(1), CallKind::Post).len(), 1);
    assert_eq!(graph.effects_of(&device(1), Family::Lock), 1);

    graph.landed_earlier(&device(2), SystemTime::now());
    let resent = run_action(&engine, 3, 2, 0, Action::RemoteLock).await;
    assert_outcome(&resent, Outcome::Succeeded, "", Fate::Final);
    assert_eq!(
        graph.calls(&device(2), CallKind::Post).len(),
        2,
        "the reset entry is not the lock's: no lock landed, so it was sent again"
    );
    assert_eq!(graph.effects_of(&device(2), Family::Lock), 1);
}

/// Row `n` revoking the sessions of `user` (a UPN or an object id).
fn revoke(n: u64, user: &str) -> (RowKey, ReportRow, Work) {
    let (_, mut row, mut work) = planned(n);
    row.device_id = String::new();
    row.platform = "".into();
    row.action = Action::RevokeSessions.as_str().into();
    row.user_principal_name = user.into();
    work.identity = Identity::User(user.into());
    work.choice = ActionChoice::Only(Action::RevokeSessions);
    work.action = Some(Action::RevokeSessions);
    work.platform = None;
    (RowKey::new(0, n), row, work)
}

/// Issue 21: a user is revoked once however the rows name them: the user is read
/// first and claimed by object id, so a UPN and an id naming one user make one POST;
/// a user Entra does not know is `not_found`, nothing sent.
#[tokio::test(start_paused = true)]
async fn regression_21_a_user_named_by_upn_and_by_id_is_revoked_once() {
    let graph = FakeGraph::default();
    let engine = Engine::new(graph.clone(), settings());
    let (ada, ada_id) = (USERS[0].1, USERS[0].0);
    let (key, row, work) = revoke(2, ada);
    let first = engine.process(key, row, work, Prior::default()).await;
    let (key, row, work) = revoke(3, &ada_id.to_uppercase());
    let second = engine.process(key, row, work, Prior::default()).await;
    let (key, row, work) = revoke(4, "nobody@contoso.com");
    let unknown = engine.process(key, row, work, Prior::default()).await;
    assert_outcome(&first, Outcome::Succeeded, "", Fate::Final);
    assert!(
        first.row.detail.contains("Entra keeps no action state"),
        "{}",
        first.row.detail
    );
    assert_outcome(&second, Outcome::Duplicate, "duplicate_user", Fate::Final);
    assert_outcome(&unknown, Outcome::NotFound, "user_not_found", Fate::Final);
    assert_eq!(graph.calls(ada_id, CallKind::Post).len(), 1);
    assert_eq!(graph.effects_of(ada_id, Family::Sessions), 1);
    assert!(graph.calls("nobody@contoso.com", CallKind::Post).is_empty());
}

/// Issue 21: a revocation whose answer was lost is never re-sent blindly: the user's
/// `signInSessionsValidFromDateTime` at or after the send proves it landed; one that
/// stayed before it proves it did not, and then it is sent again.
#[tokio::test(start_paused = true)]
async fn regression_21_a_lost_revocation_is_settled_by_the_users_sessions_time() {
    let graph = FakeGraph::default();
    let (ada_id, bo_id) = (USERS[0].0, USERS[1].0);
    graph.script(ada_id, [Post::timeout(Some(Duration::from_secs(1)))]);
    graph.script(bo_id, [Post::timeout(None)]);
    let engine = Engine::new(graph.clone(), settings());
    let (key, row, work) = revoke(2, USERS[0].1);
    let landed = engine.process(key, row, work, Prior::default()).await;
    assert_outcome(&landed, Outcome::Succeeded, "", Fate::Final);
    assert!(
        landed
            .row
            .detail
            .contains("Entra shows the user's sessions revoked at"),
        "{}",
        landed.row.detail
    );
    assert_eq!(
        graph.calls(ada_id, CallKind::Post).len(),
        1,
        "confirmed, not re-sent"
    );

    let (key, row, work) = revoke(3, USERS[1].1);
    let resent = engine.process(key, row, work, Prior::default()).await;
    assert_outcome(&resent, Outcome::Succeeded, "", Fate::Final);
    assert_eq!(
        graph.calls(bo_id, CallKind::Post).len(),
        2,
        "proved not landed, then sent"
    );
    assert_eq!(graph.effects_of(bo_id, Family::Sessions), 1);
}
