//! The progress bar: on a terminal only (cron logs stay clean), done/total, resets per
//! second, ETA and the 429s so far.

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
        bar.set_message("0.0 resets/s, 0 throttled (429)");
        Progress {
            bar: Some(Arc::new(Bar {
                bar,
                started: Instant::now(),
                succeeded: AtomicU64::new(0),
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
        let rate = succeeded as f64 / b.started.elapsed().as_secs_f64().max(1e-3);
        b.bar
            .set_message(format!("{rate:.1} resets/s, {throttled} throttled (429)"));
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
