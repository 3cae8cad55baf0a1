//! The progress bar: on a terminal only (cron logs stay clean), done/total, resets per
//! second, failures so far (failed, not found, ambiguous, outcome unknown), the 429s so
//! far, and either the ETA or what the run is waiting for and until when (a run that
//! waits must not look hung). The bar's text is [`bar_message`], a pure function of a
//! [`BarState`]; without a terminal the waits are logged once when they start (by the
//! code that waits).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{Outcome, ReportRow};
use crate::until::{short, until_text};

/// What the run waits for right now (read by the bar once a second).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Waiting {
    /// Devices whose lost answer is being settled through `deviceActionResults`.
    pub settling: u64,
    /// When the last of those settle windows ends.
    pub settle_until: Option<SystemTime>,
    /// The end of the shared 429 pause in force.
    pub paused_until: Option<SystemTime>,
}

/// Reads what the run waits for.
pub type WaitingSource = Arc<dyn Fn() -> Waiting + Send + Sync>;

#[derive(Clone)]
pub struct Progress {
    bar: Option<Arc<Bar>>,
}

struct Bar {
    bar: ProgressBar,
    started: Instant,
    succeeded: AtomicU64,
    /// Rows that need attention (not a success, not a row the plan decided).
    failures: AtomicU64,
    throttled: AtomicU64,
    write_rate: f64,
    waiting: WaitingSource,
    /// Other actions than passcode resets: the rate is of actions.
    actions: bool,
}

/// Everything the bar's message is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BarState {
    pub done: u64,
    pub total: u64,
    pub succeeded: u64,
    pub failures: u64,
    pub throttled: u64,
    pub elapsed: Duration,
    /// `--write-rate`: one reset is one write, so the run cannot go faster.
    pub write_rate: f64,
    pub waiting: Waiting,
    /// The run sends other actions than passcode resets (issue 21).
    pub actions: bool,
}

impl Progress {
    pub fn new(
        enabled: bool,
        devices: u64,
        write_rate: f64,
        waiting: WaitingSource,
        actions: bool,
    ) -> Progress {
        if !enabled {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(devices), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} devices  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let b = Arc::new(Bar {
            bar,
            started: Instant::now(),
            succeeded: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            write_rate,
            waiting,
            actions,
        });
        b.redraw();
        // A wait moves no row: the message is redrawn every second, so its countdown
        // runs and the ETA follows the clock.
        let ticking = Arc::downgrade(&b);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                match ticking.upgrade() {
                    Some(b) if !b.bar.is_finished() => b.redraw(),
                    _ => return,
                }
            }
        });
        Progress { bar: Some(b) }
    }

    pub fn device_done(&self, row: &ReportRow, throttled: u64) {
        let Some(b) = &self.bar else { return };
        if row.outcome == Outcome::Succeeded {
            b.succeeded.fetch_add(1, Ordering::Relaxed);
        }
        if failure(row.outcome) {
            b.failures.fetch_add(1, Ordering::Relaxed);
        }
        b.throttled.store(throttled, Ordering::Relaxed);
        b.bar.inc(1);
        b.redraw();
    }

    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.bar.println(line),
            None => tracing::error!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.bar.finish_and_clear();
        }
    }
}

impl Bar {
    fn redraw(&self) {
        let state = BarState {
            done: self.bar.position(),
            total: self.bar.length().unwrap_or(0),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            elapsed: self.started.elapsed(),
            write_rate: self.write_rate,
            waiting: (self.waiting)(),
            actions: self.actions,
        };
        self.bar.set_message(bar_message(&state, SystemTime::now()));
    }
}

/// A row the responder must look at: the run did not reset the device, and the plan had
/// not already said why (ineligible and duplicate rows are counted in the summary).
fn failure(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Failed | Outcome::NotFound | Outcome::Ambiguous | Outcome::NotAttempted
    )
}

/// The bar's message: the rate and counts, then what the run waits for and until when,
/// else the ETA.
pub fn bar_message(s: &BarState, now: SystemTime) -> String {
    let seconds = s.elapsed.as_secs_f64().max(1e-3);
    let rate = s.succeeded as f64 / seconds;
    let per = if s.actions { "actions/s" } else { "resets/s" };
    let mut text = format!(
        "{rate:.1} {per}, {} failed, {} throttled (429)",
        s.failures, s.throttled
    );
    let mut waits = Vec::new();
    if let Some(until) = s.waiting.paused_until.filter(|u| *u > now) {
        waits.push(format!("paused by Graph (429) {}", until_text(until, now)));
    }
    if s.waiting.settling > 0 {
        let until = s
            .waiting
            .settle_until
            .filter(|u| *u > now)
            .map(|u| format!(" {}", until_text(u, now)))
            .unwrap_or_else(|| ": reading Graph's record".into());
        waits.push(format!(
            "settling {} lost answer{}{until}",
            s.waiting.settling,
            if s.waiting.settling == 1 { "" } else { "s" }
        ));
    }
    if waits.is_empty() {
        if let Some(eta) = eta(s) {
            text.push_str(&format!("  ETA {}", short(eta)));
        }
    } else {
        text.push_str(&format!("  waiting: {}", waits.join("; ")));
    }
    text
}

/// The time left at the effective pace: the slower of `--write-rate` and the pace seen
/// so far (a run held back by the rate limit shows the limit's pace, not a guess).
fn eta(s: &BarState) -> Option<Duration> {
    let left = s.total.saturating_sub(s.done);
    if left == 0 {
        return None;
    }
    let seen = (s.done > 0 && s.elapsed >= Duration::from_secs(1))
        .then(|| s.done as f64 / s.elapsed.as_secs_f64());
    let limit = (s.write_rate > 0.0 && s.write_rate.is_finite()).then_some(s.write_rate);
    let pace = match (seen, limit) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return None,
    };
    Some(Duration::from_secs_f64(left as f64 / pace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        // 2026-12-07T14:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_652_000 + s)
    }

    fn state() -> BarState {
        BarState {
            done: 40,
            total: 100,
            succeeded: 36,
            failures: 3,
            throttled: 1,
            elapsed: Duration::from_secs(20),
            write_rate: 5.0,
            waiting: Waiting::default(),
            actions: false,
        }
    }

    /// Issue 21: a run of other actions than passcode resets says so in its rate.
    #[test]
    fn a_run_of_other_actions_shows_a_rate_of_actions() {
        let actions = BarState {
            actions: true,
            ..state()
        };
        let text = bar_message(&actions, at(0));
        assert!(text.starts_with("1.8 actions/s, 3 failed"), "{text}");
    }

    #[test]
    fn the_bar_counts_failures_beside_the_rate() {
        assert!(failure(Outcome::Failed) && failure(Outcome::NotFound));
        assert!(!failure(Outcome::Succeeded) && !failure(Outcome::Ineligible));
        insta::assert_snapshot!(bar_message(&state(), at(0)), @"1.8 resets/s, 3 failed, 1 throttled (429)  ETA 30 s");
    }

    #[test]
    fn regression_18_the_eta_follows_the_write_rate_when_it_is_the_slower_pace() {
        let slow = BarState {
            write_rate: 3.0,
            elapsed: Duration::from_secs(2),
            ..state()
        };
        // 40 devices in 2 s is 20/s seen, but --write-rate 3 holds the rest to 3/s.
        insta::assert_snapshot!(bar_message(&slow, at(0)), @"18.0 resets/s, 3 failed, 1 throttled (429)  ETA 20 s");
        let later = BarState {
            done: 70,
            elapsed: Duration::from_secs(12),
            ..slow
        };
        insta::assert_snapshot!(bar_message(&later, at(0)), @"3.0 resets/s, 3 failed, 1 throttled (429)  ETA 10 s");
    }

    #[test]
    fn regression_18_the_bar_says_it_settles_lost_answers_and_until_when() {
        let s = BarState {
            waiting: Waiting {
                settling: 2,
                settle_until: Some(at(63)),
                paused_until: None,
            },
            ..state()
        };
        insta::assert_snapshot!(bar_message(&s, at(0)));
        let reading = BarState {
            waiting: Waiting {
                settling: 1,
                settle_until: Some(at(0)),
                paused_until: None,
            },
            ..state()
        };
        insta::assert_snapshot!(bar_message(&reading, at(5)));
    }

    #[test]
    fn regression_18_the_bar_says_graph_paused_the_run_and_until_when() {
        let s = BarState {
            waiting: Waiting {
                settling: 1,
                settle_until: Some(at(340)),
                paused_until: Some(at(30)),
            },
            ..state()
        };
        insta::assert_snapshot!(bar_message(&s, at(0)));
        // An ended pause is not shown: the ETA comes back.
        let ended = BarState {
            waiting: Waiting {
                paused_until: Some(at(30)),
                ..Waiting::default()
            },
            ..state()
        };
        assert!(bar_message(&ended, at(31)).ends_with("ETA 30 s"));
    }
}
