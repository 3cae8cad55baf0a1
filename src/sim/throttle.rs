//! Intune's throttling limits, as a sliding window per app per tenant and per tenant;
//! Entra's directory limits for users' requests, a budget of their own
//! ([`DirectoryThrottle`]); and Graph's own limit per app across every tenant
//! ([`GraphThrottle`]). A simulator serving several tenants gives each its own
//! [`Throttle`] and [`DirectoryThrottle`]: one tenant's traffic never throttles another's.
//!
//! Microsoft's table for the Intune devices service
//! (<https://learn.microsoft.com/en-us/graph/throttling-limits>, docs/graph.md "Throttling"):
//! 200 writes and 2000 requests of any kind per 20 seconds per app per tenant, 400 and
//! 4000 per tenant across apps. Every request counts, throttled ones too
//! (<https://learn.microsoft.com/en-us/graph/throttling>), so a client that keeps sending
//! while throttled stays throttled. A 429's `Retry-After` is the time until enough of
//! the window's requests have aged out for one more to fit.
//!
//! Time is passed in (`now`, from the simulator's clock), so tests check the arithmetic
//! at the exact window edges without waiting.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// The limits to enforce. Defaults are Microsoft's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// POST, PUT, PATCH, DELETE per app per tenant per window.
    pub app_writes: u32,
    /// Requests of any kind per app per tenant per window.
    pub app_any: u32,
    /// Writes per tenant, all apps together, per window.
    pub tenant_writes: u32,
    /// Requests of any kind per tenant, all apps together, per window.
    pub tenant_any: u32,
    /// The window's length.
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            app_writes: 200,
            app_any: 2000,
            tenant_writes: 400,
            tenant_any: 4000,
            window: Duration::from_secs(20),
        }
    }
}

/// The answer to "may this request go through?".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    Allowed,
    /// Over a limit: how long until a request of the same kind would fit, and which
    /// limit it was (for the log).
    Throttled {
        retry_after: Duration,
        limit: &'static str,
    },
}

/// Timestamps of the requests inside the window, oldest first.
#[derive(Debug, Default)]
struct Window {
    /// Simulator times of the requests, oldest first.
    times: VecDeque<Duration>,
}

impl Window {
    /// Forgets requests that left the window: a request made at `t` counts while
    /// `now - t < window`.
    fn prune(&mut self, now: Duration, window: Duration) {
        while let Some(&t) = self.times.front() {
            if now.saturating_sub(t) >= window {
                self.times.pop_front();
            } else {
                break;
            }
        }
    }

    /// `None` if one more request fits under `limit`, else how long until one does.
    fn wait(&self, limit: u32, now: Duration, window: Duration) -> Option<Duration> {
        let count = self.times.len();
        let limit = limit as usize;
        if count < limit {
            return None;
        }
        // `count - limit + 1` requests must age out; the last of them is this one.
        let oldest_to_go = self.times.get(count - limit).copied().unwrap_or(now);
        Some((oldest_to_go + window).saturating_sub(now))
    }
}

#[derive(Debug, Default)]
struct AppWindows {
    /// The app's POST/PUT/PATCH/DELETE.
    writes: Window,
    /// All of the app's requests.
    any: Window,
    /// The most writes this app had inside one window, for the summary.
    max_writes: u32,
}

#[derive(Debug, Default)]
struct State {
    /// Writes of every app.
    tenant_writes: Window,
    /// Requests of every app.
    tenant_any: Window,
    /// By client id.
    apps: HashMap<String, AppWindows>,
}

/// The limiter one simulator shares between all connections.
#[derive(Debug)]
pub struct Throttle {
    /// `None`: nothing is refused, but writes are still counted for the summary.
    limits: Option<Limits>,
    /// The window used for counting, also when limits are off.
    window: Duration,
    /// One lock: a request checks app and tenant windows together.
    state: Mutex<State>,
}

impl Throttle {
    pub fn new(limits: Option<Limits>) -> Throttle {
        Throttle {
            limits,
            window: limits.map_or(Limits::default().window, |l| l.window),
            state: Mutex::new(State::default()),
        }
    }

    /// Decides on one request by `app` at `now` and counts it, whatever the decision.
    pub fn admit(&self, app: &str, write: bool, now: Duration) -> Admission {
        if self.limits.is_none() && !write {
            // Nothing to refuse and nothing to count: reads skip the lock.
            return Admission::Allowed;
        }
        let window = self.window;
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        if !state.apps.contains_key(app) {
            state.apps.insert(app.to_owned(), AppWindows::default());
        }
        let Some(app_windows) = state.apps.get_mut(app) else {
            return Admission::Allowed;
        };
        let mut verdict = Admission::Allowed;
        if let Some(limits) = self.limits {
            let mut checks: Vec<(&mut Window, u32, &'static str)> = Vec::with_capacity(4);
            checks.push((&mut app_windows.any, limits.app_any, "app_any"));
            checks.push((&mut state.tenant_any, limits.tenant_any, "tenant_any"));
            if write {
                checks.push((&mut app_windows.writes, limits.app_writes, "app_writes"));
                checks.push((
                    &mut state.tenant_writes,
                    limits.tenant_writes,
                    "tenant_writes",
                ));
            }
            verdict = count_in(
                checks
                    .into_iter()
                    .map(|(w, limit, name)| (w, limit, window, name)),
                now,
            );
        } else if write {
            app_windows.writes.prune(now, window);
            app_windows.writes.times.push_back(now);
        }
        if write {
            let in_window = u32::try_from(app_windows.writes.times.len()).unwrap_or(u32::MAX);
            app_windows.max_writes = app_windows.max_writes.max(in_window);
        }
        verdict
    }

    /// Per app, the most writes seen inside one window (throttled ones included).
    pub fn max_writes_in_any_window(&self) -> BTreeMap<String, u32> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .apps
            .iter()
            .filter(|(_, w)| w.max_writes > 0)
            .map(|(app, w)| (app.clone(), w.max_writes))
            .collect()
    }
}

/// Entra's directory limits for users' requests (GET `users/{id}`, `revokeSignInSessions`):
/// Microsoft's "identity and access" table
/// (<https://learn.microsoft.com/graph/throttling-limits>), per app per tenant, for the
/// smallest tenants. Its resource units are counted one a request (a user read or a
/// revocation costs 1; `$select` does not make it cheaper here). Defaults are
/// Microsoft's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryLimits {
    /// Writes (`revokeSignInSessions`) per app per tenant per `write_window`.
    pub writes: u32,
    /// The write window: 2 minutes 30 seconds.
    pub write_window: Duration,
    /// Resource units (reads and writes, one each) per app per tenant per
    /// `unit_window`.
    pub units: u32,
    /// The resource-unit window: 10 seconds.
    pub unit_window: Duration,
}

impl Default for DirectoryLimits {
    fn default() -> Self {
        DirectoryLimits {
            writes: 3000,
            write_window: Duration::from_secs(150),
            units: 3500,
            unit_window: Duration::from_secs(10),
        }
    }
}

/// One app's directory windows.
#[derive(Debug, Default)]
struct DirectoryApp {
    /// The app's user writes, in the write window.
    writes: Window,
    /// All of the app's user requests, in the resource-unit window.
    units: Window,
}

/// Entra's directory budget, apart from Intune's: users' requests are counted here and
/// never in [`Throttle`], and Intune's requests never here. Every request counts,
/// throttled ones too, as for Intune.
#[derive(Debug)]
pub struct DirectoryThrottle {
    /// `None`: nothing is refused (and nothing counted).
    limits: Option<DirectoryLimits>,
    /// By client id.
    apps: Mutex<HashMap<String, DirectoryApp>>,
}

impl DirectoryThrottle {
    pub fn new(limits: Option<DirectoryLimits>) -> DirectoryThrottle {
        DirectoryThrottle {
            limits,
            apps: Mutex::new(HashMap::new()),
        }
    }

    /// Decides on one user request by `app` at `now` and counts it, whatever the
    /// decision. The limit names are `directory_writes` and `directory_units`.
    pub fn admit(&self, app: &str, write: bool, now: Duration) -> Admission {
        let Some(limits) = self.limits else {
            return Admission::Allowed;
        };
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        if !apps.contains_key(app) {
            apps.insert(app.to_owned(), DirectoryApp::default());
        }
        let Some(windows) = apps.get_mut(app) else {
            return Admission::Allowed;
        };
        let mut checks: Vec<(&mut Window, u32, Duration, &'static str)> = Vec::with_capacity(2);
        checks.push((
            &mut windows.units,
            limits.units,
            limits.unit_window,
            "directory_units",
        ));
        if write {
            checks.push((
                &mut windows.writes,
                limits.writes,
                limits.write_window,
                "directory_writes",
            ));
        }
        count_in(checks, now)
    }
}

/// Graph's global limit, per app across all tenants: 130,000 requests per 10 seconds
/// (<https://learn.microsoft.com/graph/throttling-limits>, "Microsoft Graph global
/// limits"). It binds only an app driving many tenants at once far past Intune's pace;
/// the simulator counts it all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphLimits {
    /// Requests of any kind per app, all tenants together, per `window`.
    pub requests: u32,
    /// The window: 10 seconds.
    pub window: Duration,
}

impl Default for GraphLimits {
    fn default() -> Self {
        GraphLimits {
            requests: 130_000,
            window: Duration::from_secs(10),
        }
    }
}

/// One app's requests across tenants.
#[derive(Debug, Default)]
struct GraphApp {
    /// Every request of the app, any tenant, in the window.
    any: Window,
    /// The most requests this app had inside one window, for the summary.
    max: u32,
}

/// Graph's limit per app across tenants: every Graph request past the token counts
/// here as well as in its tenant's budget (Intune's or the directory's).
#[derive(Debug)]
pub struct GraphThrottle {
    /// `None`: nothing is refused and nothing counted (`simulate --no-limits`).
    limits: Option<GraphLimits>,
    /// By client id.
    apps: Mutex<HashMap<String, GraphApp>>,
}

impl GraphThrottle {
    pub fn new(limits: Option<GraphLimits>) -> GraphThrottle {
        GraphThrottle {
            limits,
            apps: Mutex::new(HashMap::new()),
        }
    }

    /// Decides on one request by `app` at `now`, whichever tenant it is for, and counts
    /// it whatever the decision. The limit's name is `graph_app_any`.
    pub fn admit(&self, app: &str, now: Duration) -> Admission {
        let Some(limits) = self.limits else {
            return Admission::Allowed;
        };
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        if !apps.contains_key(app) {
            apps.insert(app.to_owned(), GraphApp::default());
        }
        let Some(windows) = apps.get_mut(app) else {
            return Admission::Allowed;
        };
        let verdict = count_in(
            [(
                &mut windows.any,
                limits.requests,
                limits.window,
                "graph_app_any",
            )],
            now,
        );
        let in_window = u32::try_from(windows.any.times.len()).unwrap_or(u32::MAX);
        windows.max = windows.max.max(in_window);
        verdict
    }

    /// Per app, the most requests seen inside one window across tenants (throttled
    /// ones included).
    pub fn max_requests_in_any_window(&self) -> BTreeMap<String, u32> {
        let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.iter()
            .filter(|(_, w)| w.max > 0)
            .map(|(app, w)| (app.clone(), w.max))
            .collect()
    }
}

/// `Retry-After` as Graph writes it: whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> String {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1).to_string()
}

/// `Retry-After` with milliseconds, as in Microsoft's sample `2.128`.
pub fn retry_after_fractional(wait: Duration) -> String {
    let millis = wait.as_millis().max(1);
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

/// Counts a request at `now` in each window, whatever the decision (throttled requests
/// count too, as Graph counts them), and decides: throttled by the limit that makes it
/// wait longest, else allowed.
fn count_in<'a>(
    checks: impl IntoIterator<Item = (&'a mut Window, u32, Duration, &'static str)>,
    now: Duration,
) -> Admission {
    let mut verdict = Admission::Allowed;
    for (w, limit, window, name) in checks {
        w.prune(now, window);
        if let Some(wait) = w.wait(limit, now, window) {
            let longer = match verdict {
                Admission::Throttled { retry_after, .. } => wait > retry_after,
                Admission::Allowed => true,
            };
            if longer {
                verdict = Admission::Throttled {
                    retry_after: wait,
                    limit: name,
                };
            }
        }
        w.times.push_back(now);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn small(app_writes: u32, app_any: u32) -> Throttle {
        Throttle::new(Some(Limits {
            app_writes,
            app_any,
            tenant_writes: 1000,
            tenant_any: 1000,
            window: s(20.0),
        }))
    }

    #[test]
    fn the_limit_plus_one_is_refused_until_the_oldest_leaves_the_window() {
        let t = small(3, 100);
        assert_eq!(t.admit("a", true, s(0.0)), Admission::Allowed);
        assert_eq!(t.admit("a", true, s(5.0)), Admission::Allowed);
        assert_eq!(t.admit("a", true, s(10.0)), Admission::Allowed);
        // The oldest (t=0) leaves at exactly t=20.
        assert_eq!(
            t.admit("a", true, s(12.0)),
            Admission::Throttled {
                retry_after: s(8.0),
                limit: "app_writes"
            }
        );
        // Window now holds 0, 5, 10, 12: two must leave, the second at 25.
        assert_eq!(
            t.admit("a", true, s(19.999)),
            Admission::Throttled {
                retry_after: s(25.0) - s(19.999),
                limit: "app_writes"
            }
        );
        // At 25.0: 0 and 5 are gone (exactly 20 s old counts as gone); 10, 12, 19.999 stay.
        assert!(matches!(
            t.admit("a", true, s(25.0)),
            Admission::Throttled { .. }
        ));
        // Throttled requests counted: at 30.0 the window is 12, 19.999, 25 -> still full.
        assert!(matches!(
            t.admit("a", true, s(30.0)),
            Admission::Throttled { .. }
        ));
        // A client that waits a whole window gets through.
        assert_eq!(t.admit("a", true, s(50.0)), Admission::Allowed);
    }

    #[test]
    fn a_request_exactly_one_window_old_no_longer_counts() {
        let t = small(1, 100);
        assert_eq!(t.admit("a", true, s(0.0)), Admission::Allowed);
        assert!(matches!(
            t.admit("a", true, s(19.999_999)),
            Admission::Throttled { .. }
        ));
        // The throttled request at 19.999999 still counts until 39.999999.
        assert!(matches!(
            t.admit("a", true, s(20.0)),
            Admission::Throttled { .. }
        ));
        assert_eq!(t.admit("a", true, s(41.0)), Admission::Allowed);
    }

    #[test]
    fn reads_do_not_use_the_write_budget_but_writes_use_the_any_budget() {
        let t = small(2, 3);
        assert_eq!(t.admit("a", false, s(0.0)), Admission::Allowed);
        assert_eq!(t.admit("a", true, s(0.0)), Admission::Allowed);
        assert_eq!(t.admit("a", true, s(0.0)), Admission::Allowed);
        assert_eq!(
            t.admit("a", false, s(1.0)),
            Admission::Throttled {
                retry_after: s(19.0),
                limit: "app_any"
            }
        );
    }

    #[test]
    fn apps_have_their_own_budget_and_share_the_tenants() {
        let t = Throttle::new(Some(Limits {
            app_writes: 2,
            app_any: 100,
            tenant_writes: 3,
            tenant_any: 100,
            window: s(20.0),
        }));
        assert_eq!(t.admit("a", true, s(0.0)), Admission::Allowed);
        assert_eq!(t.admit("a", true, s(0.0)), Admission::Allowed);
        assert!(matches!(
            t.admit("a", true, s(0.0)),
            Admission::Throttled {
                limit: "app_writes",
                ..
            }
        ));
        // App b has its own 2, but the tenant's 3 are used up (a's throttled one counts).
        assert!(matches!(
            t.admit("b", true, s(1.0)),
            Admission::Throttled {
                limit: "tenant_writes",
                ..
            }
        ));
        assert_eq!(t.max_writes_in_any_window().get("a"), Some(&3));
    }

    #[test]
    fn without_limits_everything_passes_and_writes_are_still_counted() {
        let t = Throttle::new(None);
        for i in 0..500 {
            assert_eq!(
                t.admit("a", true, s(f64::from(i) * 0.01)),
                Admission::Allowed
            );
        }
        assert_eq!(t.max_writes_in_any_window().get("a"), Some(&500));
    }

    #[test]
    fn the_directory_counts_writes_over_150_seconds_and_every_request_over_10() {
        let t = DirectoryThrottle::new(Some(DirectoryLimits {
            writes: 2,
            units: 4,
            ..DirectoryLimits::default()
        }));
        assert_eq!(t.admit("a", true, s(0.0)), Admission::Allowed);
        assert_eq!(t.admit("a", true, s(1.0)), Admission::Allowed);
        // The third write waits for the first to leave the 150 s window.
        assert_eq!(
            t.admit("a", true, s(2.0)),
            Admission::Throttled {
                retry_after: s(148.0),
                limit: "directory_writes"
            }
        );
        // Reads use the 10 s unit window only: 3 units spent, one read fits.
        assert_eq!(t.admit("a", false, s(3.0)), Admission::Allowed);
        assert_eq!(
            t.admit("a", false, s(4.0)),
            Admission::Throttled {
                retry_after: s(6.0),
                limit: "directory_units"
            }
        );
        // Another app has its own budget.
        assert_eq!(t.admit("b", true, s(4.0)), Admission::Allowed);
        // Ten seconds on, the units are free again and reads pass; writes still wait.
        assert_eq!(t.admit("a", false, s(14.0)), Admission::Allowed);
        assert!(matches!(
            t.admit("a", true, s(14.0)),
            Admission::Throttled {
                limit: "directory_writes",
                ..
            }
        ));
        let off = DirectoryThrottle::new(None);
        for i in 0..5000 {
            assert_eq!(
                off.admit("a", true, s(f64::from(i) * 0.001)),
                Admission::Allowed
            );
        }
    }

    #[test]
    fn graphs_limit_counts_an_apps_requests_across_tenants_and_is_off_without_limits() {
        let t = GraphThrottle::new(Some(GraphLimits {
            requests: 3,
            window: s(10.0),
        }));
        for at in [0.0, 1.0, 2.0] {
            assert_eq!(t.admit("a", s(at)), Admission::Allowed);
        }
        assert_eq!(
            t.admit("a", s(3.0)),
            Admission::Throttled {
                retry_after: s(7.0),
                limit: "graph_app_any"
            }
        );
        // Another app has its own budget; ten seconds on, the first is free again.
        assert_eq!(t.admit("b", s(3.0)), Admission::Allowed);
        assert_eq!(t.admit("a", s(13.5)), Admission::Allowed);
        assert_eq!(t.max_requests_in_any_window().get("a"), Some(&4));
        assert_eq!(GraphLimits::default().requests, 130_000);
        let off = GraphThrottle::new(None);
        for i in 0..1000 {
            assert_eq!(off.admit("a", s(f64::from(i) * 0.001)), Admission::Allowed);
        }
        assert!(off.max_requests_in_any_window().is_empty());
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(retry_after_seconds(s(8.0)), "8");
        assert_eq!(retry_after_seconds(s(7.001)), "8");
        assert_eq!(retry_after_seconds(Duration::ZERO), "1");
        assert_eq!(retry_after_fractional(s(2.128)), "2.128");
        assert_eq!(retry_after_fractional(Duration::ZERO), "0.001");
    }
}
