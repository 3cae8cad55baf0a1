//! The progress bar: on a terminal only (cron logs stay clean), done/total, resets per
//! second, failures so far (failed, not found, ambiguous, outcome unknown), ETA and the
//! 429s so far.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{Outcome, ReportRow};

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
}

impl Progress {
    pub fn new(enabled: bool, devices: u64) -> Progress {
        if !enabled {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(devices), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} devices  {msg}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message("0.0 resets/s, 0 failed, 0 throttled (429)");
        Progress {
            bar: Some(Arc::new(Bar {
                bar,
                started: Instant::now(),
                succeeded: AtomicU64::new(0),
                failures: AtomicU64::new(0),
            })),
        }
    }

    pub fn device_done(&self, row: &ReportRow, throttled: u64) {
        let Some(b) = &self.bar else { return };
        let succeeded = if row.outcome == Outcome::Succeeded {
            b.succeeded.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            b.succeeded.load(Ordering::Relaxed)
        };
        let failures = if failure(row.outcome) {
            b.failures.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            b.failures.load(Ordering::Relaxed)
        };
        let rate = succeeded as f64 / b.started.elapsed().as_secs_f64().max(1e-3);
        b.bar
            .set_message(progress_message(rate, failures, throttled));
        b.bar.inc(1);
    }

    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.bar.finish_and_clear();
        }
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

/// The bar's message.
fn progress_message(rate: f64, failures: u64, throttled: u64) -> String {
    format!("{rate:.1} resets/s, {failures} failed, {throttled} throttled (429)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_counts_failures_beside_the_rate() {
        assert!(failure(Outcome::Failed) && failure(Outcome::NotFound));
        assert!(!failure(Outcome::Succeeded) && !failure(Outcome::Ineligible));
        assert_eq!(
            progress_message(9.75, 3, 1),
            "9.8 resets/s, 3 failed, 1 throttled (429)"
        );
    }
}
