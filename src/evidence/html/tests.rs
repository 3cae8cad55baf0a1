//! The page from hand-made facts: what it says, that values from files are escaped, and
//! that it loads nothing.

use super::*;
use crate::evidence::facts::{
    AuditFacts, Bucket, FailureGroup, Interruption, JobFile, PackFiles, PlatformCounts,
    StatusFacts, Timeline, Who,
};

const HOSTILE: &str = "<script>alert(1)</script>";

fn count(name: &str, count: u64) -> Count {
    Count {
        name: name.into(),
        count,
    }
}

fn example(name: &str, label: &str) -> Example {
    Example {
        device_name: name.into(),
        device_id: "00000000-0000-4000-8000-000000000007".into(),
        source: "job.csv".into(),
        row: "7".into(),
        label: label.into(),
        detail: "Graph said \"no\" & <b>stopped</b>".into(),
    }
}

fn facts() -> Facts {
    let mut buckets = vec![Bucket::default(); 21];
    buckets[0].sends = 3;
    buckets[1].sends = 2;
    buckets[1].paused = true;
    buckets[2].paused = true;
    for b in &mut buckets[3..=20] {
        b.stopped = true;
    }
    buckets[20].sends = 4;
    Facts {
        files: PackFiles {
            run_report: "run.csv".into(),
            ledger: "run.csv.ledger".into(),
            status_report: None,
            audit_report: None,
        },
        job_files: vec![JobFile {
            source: "job&co.csv".into(),
            bytes: 10,
            sha256: "ab".repeat(32),
        }],
        tenant: Some("contoso'<tenant>".into()),
        simulated: false,
        sessions: vec![
            Session {
                started_at: "2026-11-22T10:00:30.000Z".into(),
                who: Some(Who {
                    tenant: "t".into(),
                    method: "secret".into(),
                    user: None,
                    client_id: Some("app-1".into()),
                    simulated: false,
                    described: "app-1 (secret sign-in) in tenant t".into(),
                }),
                interrupted_at: None,
            },
            Session {
                started_at: "2026-11-22T10:20:00.000Z".into(),
                who: Some(Who {
                    tenant: "t".into(),
                    method: "browser".into(),
                    user: Some("ada@contoso.com".into()),
                    client_id: None,
                    simulated: false,
                    described: "ada@contoso.com (browser sign-in) in tenant t".into(),
                }),
                interrupted_at: Some("2026-11-22T10:03:00.000Z".into()),
            },
        ],
        started_at: "2026-11-22T10:00:30.000Z".into(),
        last_activity_at: "2026-11-22T10:20:05.000Z".into(),
        rows: 12,
        outcomes: vec![count("succeeded", 9), count("not_found", 3)],
        platforms: vec![PlatformCounts {
            platform: "ios".into(),
            rows: 12,
            outcomes: vec![count("succeeded", 9), count("not_found", 3)],
        }],
        sends: 9,
        timeline: Timeline {
            start: "2026-11-22T10:00:00.000Z".into(),
            bucket_minutes: 1,
            buckets,
            peak_per_minute: 4,
            pauses: 1,
            paused_minutes: 2,
            interruptions: vec![Interruption {
                stopped_at: "2026-11-22T10:03:00.000Z".into(),
                resumed_at: "2026-11-22T10:20:00.000Z".into(),
                from: 3,
                to: 20,
            }],
        },
        needs_attention: 3,
        failures: vec![FailureGroup {
            reason: "not_found".into(),
            meaning: "Intune has no device with this id.".into(),
            count: 3,
            outcomes: vec![count("not_found", 3)],
            examples: vec![example(HOSTILE, "not_found")],
        }],
        status: None,
        audit: None,
    }
}

#[test]
fn the_page_says_who_when_where_and_the_counts() {
    let page = render(&facts());
    assert!(page.starts_with("<!DOCTYPE html>"));
    for said in [
        "contoso&#39;&lt;tenant&gt;",
        "the app <span class=\"id\">app-1</span> (secret sign-in)",
        "<span class=\"id\">ada@contoso.com</span> (browser sign-in)",
        "2026-11-22 10:00:30 UTC",
        "interrupted after 2026-11-22 10:03:00 UTC",
        "<code>succeeded</code></td><td class=\"n\">9</td>",
        "<span class=\"attention\">3 need attention</span>",
        "9 reset requests left",
        "at most 4 in one minute",
        "Intune throttled the run 1 time (HTTP 429)",
        "resume 2: stopped after 2026-11-22 10:03:00 UTC, resumed at 2026-11-22 10:20:00 UTC",
        "Intune has no device with this id.",
        "<code>run.csv.ledger</code>",
        "job file <code>job&amp;co.csv</code>",
    ] {
        assert!(page.contains(said), "the page lacks {said}:\n{page}");
    }
    assert!(!page.contains("rehearsal\""), "not a rehearsal");
    assert!(!page.contains("id=\"status\"") && !page.contains("id=\"audit\""));
}

#[test]
fn every_value_from_a_file_is_escaped() {
    let page = render(&facts());
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("Graph said &quot;no&quot; &amp; &lt;b&gt;stopped&lt;/b&gt;"));
    assert!(!page.to_ascii_lowercase().contains("<script"), "{page}");
    assert!(!page.contains("<b>"));
}

#[test]
fn the_page_loads_nothing_from_anywhere() {
    let mut f = facts();
    f.status = Some(StatusFacts {
        rows: 1,
        states: vec![count("failed", 1)],
        examples: vec![example("https://evil.example/x.png", "failed")],
        flagged: 1,
    });
    let page = render(&f).to_ascii_lowercase();
    // The one URL-looking text is the device name, shown as text.
    let page = page.replace("https://evil.example/x.png", "");
    for banned in [
        "http://", "https://", "<link", "src=", "href=", "url(", "@import", "<img", "<iframe",
        "<object", "<embed", "<script",
    ] {
        assert!(!page.contains(banned), "the page holds {banned}");
    }
    assert!(page.contains("content-security-policy\" content=\"default-src 'none'"));
}

#[test]
fn the_timeline_marks_pauses_interruptions_and_has_a_legend() {
    let page = render(&facts());
    assert_eq!(
        page.matches("class=\"bar\"").count(),
        3,
        "three minutes with sends"
    );
    assert_eq!(
        page.matches("class=\"paused\"").count(),
        1,
        "one span of paused minutes"
    );
    assert_eq!(page.matches("class=\"stopped\"").count(), 1);
    assert_eq!(page.matches("class=\"resumed\"").count(), 1);
    assert!(page.contains(">resume 2</text>"));
    for legend in [
        "resets sent per minute",
        "a 429 pause held every worker",
        "the run was not running (interrupted)",
    ] {
        assert!(page.contains(legend), "{legend}");
    }
    assert!(page.contains("<title>2026-11-22 10:20:00 UTC: 4 resets</title>"));
    for tick in [">2026-11-22 10:00</text>", ">10:05</text>", ">10:20</text>"] {
        assert!(page.contains(tick), "{tick}");
    }
}

#[test]
fn times_at_the_end_of_the_year_9999_render_without_a_panic() {
    let mut f = facts();
    f.timeline.start = "9999-12-31T23:58:00.000Z".into();
    f.timeline.bucket_minutes = 1440;
    f.last_activity_at = "9999-12-31T23:59:59.999Z".into();
    let page = render(&f);
    assert!(
        page.contains("9999-12-31 23:58</text>"),
        "the first bar's label"
    );
    assert!(page.contains("9999-12-31 23:59:59 UTC"));
}

#[test]
fn a_rehearsal_says_so_and_the_status_and_audit_show_when_given() {
    let mut f = facts();
    f.simulated = true;
    f.status = Some(StatusFacts {
        rows: 9,
        states: vec![count("done", 8), count("failed", 1)],
        examples: vec![example("Phone 4", "failed")],
        flagged: 1,
    });
    f.audit = Some(AuditFacts {
        rows: 12,
        verdicts: vec![count("confirmed", 8), count("missing", 1), count("none", 3)],
        examples: vec![example("Phone 5", "missing")],
        flagged: 1,
    });
    let page = render(&f);
    assert!(page.contains("A rehearsal: this run went to intune-reset's built-in simulator"));
    assert!(page.contains("(simulated)"));
    assert!(page.contains("id=\"status\""));
    assert!(page.contains(
        "<code>done</code></td><td class=\"n\">8</td><td>The device carried out the action.</td>"
    ));
    assert!(page.contains("id=\"audit\""));
    assert!(page.contains(
        "<code>missing</code></td><td class=\"n\">1</td><td>This run sent the reset and Intune has no record of it.</td>"
    ));
    assert!(
        page.contains("an audit record says Intune accepted the action")
            || page.contains("An audit record says Intune accepted the action")
    );
}

#[test]
fn a_run_that_sent_nothing_still_renders_its_timeline() {
    let mut f = facts();
    f.sends = 0;
    f.timeline.buckets = vec![Bucket::default()];
    f.timeline.interruptions.clear();
    f.timeline.pauses = 0;
    f.failures.clear();
    let page = render(&f);
    assert!(page.contains("No reset request left during this run."));
    assert!(page.contains("Intune never throttled the run"));
    assert!(page.contains("No row needs attention"));
    assert_eq!(page.matches("class=\"bar\"").count(), 0);
}
