//! The timeline: resets per minute as bars of an inline SVG, the minutes a 429 pause held
//! every worker shaded amber, the time the run was stopped shaded grey with a red line
//! where it resumed (numbered as the sessions table numbers the resume), and the same
//! facts in words above it, so the page says them on paper in black and white too.

use std::time::{Duration, SystemTime};

use super::{esc, plural, utc, when};
use crate::evidence::facts::{Facts, Timeline};

/// The fills, also used by the browser test to find the marks in a screenshot.
pub const BAR: &str = "#1d4ed8";
pub const PAUSED: &str = "#fbbf24";
pub const STOPPED: &str = "#cbd5e1";
pub const RESUMED: &str = "#dc2626";

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 250.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 206.0;

pub fn section(page: &mut String, facts: &Facts) {
    let t = &facts.timeline;
    let unit = match t.bucket_minutes {
        1 => "minute".to_owned(),
        60 => "hour".to_owned(),
        1440 => "day".to_owned(),
        m if m % 1440 == 0 => format!("{} days", m / 1440),
        m if m % 60 == 0 => format!("{} hours", m / 60),
        m => format!("{m} minutes"),
    };
    page.push_str(&format!(
        "<section id=\"timeline\" class=\"keep\">\n<h2>Resets per {unit}</h2>\n"
    ));
    let mut said = vec![match facts.sends {
        0 => "No reset request left during this run.".to_owned(),
        n => format!(
            "{n} reset request{} left between {} and {}; at most {} in one minute.",
            plural(n),
            when(&facts.started_at),
            when(&facts.last_activity_at),
            t.peak_per_minute
        ),
    }];
    said.push(match t.pauses {
        0 => "Intune never throttled the run (no HTTP 429).".to_owned(),
        n => format!(
            "Intune throttled the run {n} time{} (HTTP 429): every worker paused, for about {} minute{} in all.",
            plural(n),
            t.paused_minutes,
            plural(t.paused_minutes)
        ),
    });
    said.push(match t.interruptions.len() {
        0 => "The run was never interrupted.".to_owned(),
        n => format!(
            "The run was interrupted {n} time{} and resumed:",
            plural(n as u64)
        ),
    });
    page.push_str(&format!("<p>{}</p>\n", said.join(" ")));
    if !t.interruptions.is_empty() {
        page.push_str("<ul>\n");
        for (i, s) in t.interruptions.iter().enumerate() {
            page.push_str(&format!(
                "<li>resume {}: stopped after {}, resumed at {}</li>\n",
                i + 2,
                when(&s.stopped_at),
                when(&s.resumed_at)
            ));
        }
        page.push_str("</ul>\n");
    }
    page.push_str(&svg(t, &unit));
    page.push_str(&format!(
        "<p class=\"legend\">{}{}{}{}</p>\n</section>\n",
        swatch(BAR, &format!("resets sent per {unit}")),
        swatch(PAUSED, "a 429 pause held every worker"),
        swatch(STOPPED, "the run was not running (interrupted)"),
        swatch(RESUMED, "resumed (numbered as the sessions)"),
    ));
}

fn swatch(fill: &str, label: &str) -> String {
    format!(
        "<span><svg width=\"14\" height=\"14\" aria-hidden=\"true\"><rect width=\"14\" height=\"14\" fill=\"{fill}\"/></svg>{label}</span>"
    )
}

/// The start of bucket `i`, for titles.
fn bucket_start(t: &Timeline, i: usize) -> String {
    match start_of(t, i).and_then(utc) {
        Some(at) => when(&at),
        None => esc(&t.start),
    }
}

fn start_of(t: &Timeline, i: usize) -> Option<SystemTime> {
    let since = Duration::from_secs(
        (i as u64)
            .saturating_mul(t.bucket_minutes)
            .saturating_mul(60),
    );
    crate::graph::verify::parse_timestamp(&t.start).and_then(|start| start.checked_add(since))
}

/// The axis label of bucket `i`: `2026-11-22 10:00` for the first, then `10:07`, or
/// `11-23 09:00` on another day.
fn tick(t: &Timeline, i: usize) -> String {
    let minute = |i| {
        start_of(t, i)
            .and_then(utc)
            .map(|at| at[..16].replace('T', " "))
    };
    match (minute(0), minute(i)) {
        (Some(first), Some(here)) if i > 0 && first[..10] == here[..10] => here[11..].to_owned(),
        (Some(_), Some(here)) if i > 0 => here[5..].to_owned(),
        (_, Some(here)) => here,
        (_, None) => esc(&t.start),
    }
}

/// `a..=b` buckets runs where `mark` holds, as (first, last).
fn runs(t: &Timeline, mark: impl Fn(usize) -> bool) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for i in (0..t.buckets.len()).filter(|i| mark(*i)) {
        match out.last_mut() {
            Some(last) if last.1 + 1 == i => last.1 = i,
            _ => out.push((i, i)),
        }
    }
    out
}

fn svg(t: &Timeline, unit: &str) -> String {
    let n = t.buckets.len().max(1);
    let step = (WIDTH - LEFT - RIGHT) / n as f64;
    let x = |i: usize| LEFT + i as f64 * step;
    let high = t.buckets.iter().map(|b| b.sends).max().unwrap_or(0).max(1);
    let plot = BOTTOM - TOP;
    let mut out = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"timeline-title\">\n<title id=\"timeline-title\">Resets per {unit}, with throttling pauses and interruptions</title>\n"
    );
    for (a, b) in runs(t, |i| t.buckets[i].stopped) {
        out.push_str(&format!(
            "<rect class=\"stopped\" x=\"{:.2}\" y=\"{TOP}\" width=\"{:.2}\" height=\"{plot}\" fill=\"{STOPPED}\"><title>not running</title></rect>\n",
            x(a),
            step * (b - a + 1) as f64
        ));
    }
    for (a, b) in runs(t, |i| t.buckets[i].paused) {
        out.push_str(&format!(
            "<rect class=\"paused\" x=\"{:.2}\" y=\"{TOP}\" width=\"{:.2}\" height=\"{plot}\" fill=\"{PAUSED}\"><title>paused by a 429 from {}</title></rect>\n",
            x(a),
            step * (b - a + 1) as f64,
            bucket_start(t, a)
        ));
    }
    // Gridlines at the highest bar and half of it.
    let mut grid = vec![(high, TOP)];
    if high >= 2 {
        grid.push((high / 2, BOTTOM - (high / 2) as f64 / high as f64 * plot));
    }
    for (value, y) in grid {
        out.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{y:.2}\" x2=\"{}\" y2=\"{y:.2}\" stroke=\"#e5e7eb\"/>\n<text x=\"{}\" y=\"{:.2}\" font-size=\"11\" text-anchor=\"end\" fill=\"#374151\">{value}</text>\n",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        ));
    }
    for (i, b) in t.buckets.iter().enumerate().filter(|(_, b)| b.sends > 0) {
        let h = (b.sends as f64 / high as f64 * plot).max(1.0);
        out.push_str(&format!(
            "<rect class=\"bar\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{h:.2}\" fill=\"{BAR}\"><title>{}: {} reset{}</title></rect>\n",
            x(i) + step * 0.1,
            BOTTOM - h,
            step * 0.8,
            bucket_start(t, i),
            b.sends,
            plural(b.sends)
        ));
    }
    for (k, s) in t.interruptions.iter().enumerate() {
        let at = x(s.to);
        out.push_str(&format!(
            "<line class=\"resumed\" x1=\"{at:.2}\" y1=\"{}\" x2=\"{at:.2}\" y2=\"{BOTTOM}\" stroke=\"{RESUMED}\" stroke-width=\"3\"><title>resumed at {}</title></line>\n<text x=\"{at:.2}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"{RESUMED}\">resume {}</text>\n",
            TOP - 2.0,
            when(&s.resumed_at),
            TOP - 6.0,
            k + 2
        ));
    }
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{BOTTOM}\" x2=\"{}\" y2=\"{BOTTOM}\" stroke=\"#111827\"/>\n<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#374151\">0</text>\n",
        WIDTH - RIGHT,
        LEFT - 6.0,
        BOTTOM + 4.0
    ));
    // Time labels: the first bucket, the last, and up to three between.
    let last = t.buckets.len().saturating_sub(1);
    let mut ticks: Vec<usize> = (0..=4).map(|k| last * k / 4).collect();
    ticks.dedup();
    for (k, i) in ticks.iter().enumerate() {
        let anchor = match k {
            0 => "start",
            _ if *i == last => "end",
            _ => "middle",
        };
        let tx = if anchor == "end" { x(i + 1) } else { x(*i) };
        out.push_str(&format!(
            "<text x=\"{tx:.2}\" y=\"{}\" font-size=\"11\" text-anchor=\"{anchor}\" fill=\"#374151\">{}</text>\n",
            BOTTOM + 18.0,
            tick(t, *i)
        ));
    }
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#374151\">UTC, one bar per {unit}</text>\n</svg>\n",
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        BOTTOM + 36.0
    ));
    out
}
