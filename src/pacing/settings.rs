//! Pacing and retry settings, with Intune's documented numbers as defaults.

use std::time::Duration;

use super::cooldown::Backoff;
use super::limiter::{
    ANY_LIMIT, DEFAULT_READ_RATE, DEFAULT_WRITE_RATE, UNLIMITED, WINDOW, WINDOW_MARGIN, WRITE_LIMIT,
};

/// Pacing and retry settings (`--write-rate`, `--read-rate`, `--concurrency`,
/// `--max-attempts`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Devices in flight at once.
    pub concurrency: usize,
    /// Requests per device call before giving up (every 429 and retry counts).
    pub max_attempts: u32,
    /// Writes per second, at most.
    pub write_rate: f64,
    /// Reads per second, at most.
    pub read_rate: f64,
    /// Writes per `window` (Intune: 200 per 20 s per app).
    pub write_limit: usize,
    /// Requests of any kind per `window` (Intune: 2000 per 20 s per app).
    pub any_limit: usize,
    /// The throttling window, with a margin for network jitter.
    pub window: Duration,
    /// The pause before each read of `deviceActionResults` when settling a send.
    pub verify_delay: Duration,
    /// The per-request timeout the client uses. After a timeout Graph may still be
    /// working on the request, so verification first waits this long again.
    pub request_timeout: Duration,
    /// The most pages a `$filter` lookup follows before calling the match too broad.
    pub max_lookup_pages: usize,
    /// Backoff when Graph gives no `Retry-After` (429, 503) or a connection fails.
    pub backoff: Backoff,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 16,
            max_attempts: 10,
            write_rate: DEFAULT_WRITE_RATE,
            read_rate: DEFAULT_READ_RATE,
            write_limit: WRITE_LIMIT,
            any_limit: ANY_LIMIT,
            window: WINDOW + WINDOW_MARGIN,
            verify_delay: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            max_lookup_pages: 5,
            backoff: Backoff::default(),
        }
    }
}

impl Settings {
    /// How long after a send Graph may still carry it out: Graph's state is read no
    /// sooner (see the run engine's settle policy). Twice the request timeout: the
    /// request may reach Graph as late as the timeout, and take as long again there.
    pub fn settle_window(&self) -> Duration {
        self.request_timeout.saturating_mul(2)
    }

    /// No pacing at all: for benchmarks against a simulator with limits off.
    pub fn unlimited(mut self) -> Self {
        self.write_rate = 0.0;
        self.read_rate = 0.0;
        self.write_limit = UNLIMITED;
        self.any_limit = UNLIMITED;
        self
    }
}
