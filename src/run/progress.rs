//! The progress bar: on a terminal only (cron logs stay clean), done/total, resets per
//! second, ETA and the 429s so far.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{Outcome, ReportRow};

#[derive(Clone)]
pub struct Progress {
    bar: Option<Arc<ProgressBar>>,
}

impl Progress {
    pub fn new(enabled: bool, devices: u64) -> Progress {
        if !enabled {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(devices), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} devices  {per_sec}  ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Progress {
            bar: Some(Arc::new(bar)),
        }
    }

    pub fn device_done(&self, row: &ReportRow, throttled: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if throttled > 0 || row.outcome == Outcome::Failed {
                bar.set_message(format!("{throttled} throttled (429)"));
            }
        }
    }

    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
