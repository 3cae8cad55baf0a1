//! Issue 20, point 4: `summary.html` in a real browser. Headless Chromium (Debian's
//! `chromium` package; CI's `.ci/run` installs it) opens the page from a file and
//! 1. dumps the DOM it built: the tenant, the counts, the sessions are there, and the
//!    device named `<script>alert(1)</script>` is a text node, not an element;
//! 2. takes a screenshot: the PNG, decoded here, holds the timeline's bars, the amber of a
//!    429 pause, the grey of an interruption and the red of its resume, so the page is
//!    drawn, not blank.
//!
//! Every host name resolves to nothing for the browser (`--host-resolver-rules`), its
//! profile is a fresh temporary folder, and it opens no port. The browser is found at
//! `INTUNE_RESET_CHROMIUM`, else `/usr/bin/chromium` (on Windows and macOS: Edge or
//! Chrome where they install); without one the test fails saying how to install it
//! (never a silent skip).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use intune_reset::evidence::facts::{
    AuditFacts, Bucket, Count, Example, Facts, FailureGroup, Interruption, JobFile, PackFiles,
    PlatformCounts, Session, StatusFacts, Timeline, Who,
};
use intune_reset::evidence::html;

use crate::common::tenant::wait_for;

const HOSTILE: &str = "<script>alert(1)</script>";
const TENANT: &str = "6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10";
/// A hang guard for a browser on a loaded machine, not a budget.
const LIMIT: Duration = Duration::from_secs(300);

/// Where a Chromium-based browser is looked for when `INTUNE_RESET_CHROMIUM` is not set:
/// the distribution's package on Linux (CI's), the usual install folders elsewhere.
#[cfg(target_os = "linux")]
const BROWSERS: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
#[cfg(windows)]
const BROWSERS: &[&str] = &[
    r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
    r"C:\Program Files\Microsoft\Edge\Application\msedge.exe",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
];
#[cfg(target_os = "macos")]
const BROWSERS: &[&str] = &[
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
];
#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
const BROWSERS: &[&str] = &[];

/// The browser, or `None` on a machine without one where none is required: CI sets
/// `INTUNE_RESET_REQUIRE_BROWSER=1` (and installs Chromium), so there a missing browser
/// fails the test; a newcomer's `cargo test` on a fresh machine says what it did not
/// check instead of failing.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("INTUNE_RESET_CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "INTUNE_RESET_CHROMIUM names {}, which is not a file: point it at a Chromium, Chrome or Edge binary",
            path.display()
        );
        return Some(path);
    }
    let found = BROWSERS.iter().map(PathBuf::from).find(|p| p.is_file());
    if found.is_none() {
        let how = format!(
            "the summary.html test needs headless Chromium and found none at {}: install it (Debian, Ubuntu: `apt-get install -y --no-install-recommends chromium`; .ci/run does), or set INTUNE_RESET_CHROMIUM to a Chromium, Chrome or Edge binary",
            BROWSERS.join(", ")
        );
        if std::env::var_os("INTUNE_RESET_REQUIRE_BROWSER").is_some_and(|v| v == "1") {
            panic!("{how}");
        }
        eprintln!("NOT CHECKED: {how}");
    }
    found
}

fn count(name: &str, count: u64) -> Count {
    Count {
        name: name.into(),
        count,
    }
}

fn who(user: Option<&str>, method: &str) -> Who {
    Who {
        tenant: TENANT.into(),
        method: method.into(),
        user: user.map(str::to_owned),
        client_id: Some("5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into()),
        simulated: false,
        described: String::new(),
    }
}

/// 260 rows; resets over 30 minutes, a 429 pause in minutes 4 to 6, stopped from minute
/// 12 to 20, resumed by a colleague.
fn facts() -> Facts {
    let mut buckets = vec![Bucket::default(); 30];
    for (i, b) in buckets.iter_mut().enumerate() {
        b.sends = if (12..20).contains(&i) {
            0
        } else {
            6 + i as u64 % 5
        };
        b.paused = (4..=6).contains(&i);
        b.stopped = (12..=20).contains(&i);
    }
    let hostile = Example {
        device_name: HOSTILE.into(),
        device_id: "00000000-0000-4000-8000-000000000007".into(),
        source: "incident.csv".into(),
        row: "7".into(),
        label: "not_found".into(),
        detail: "Graph answered 404".into(),
    };
    Facts {
        files: PackFiles {
            run_report: "incident.csv".into(),
            ledger: "incident.csv.ledger".into(),
            status_report: Some("incident.status.csv".into()),
            audit_report: Some("incident.audit.csv".into()),
        },
        job_files: vec![JobFile {
            source: "incident.csv".into(),
            bytes: 20_480,
            sha256: "ab".repeat(32),
        }],
        tenant: Some(TENANT.into()),
        simulated: false,
        sessions: vec![
            Session {
                started_at: "2026-11-22T10:00:30.000Z".into(),
                who: Some(who(None, "secret")),
                interrupted_at: None,
            },
            Session {
                started_at: "2026-11-22T10:20:10.000Z".into(),
                who: Some(who(Some("ada@contoso.com"), "browser")),
                interrupted_at: Some("2026-11-22T10:12:05.000Z".into()),
            },
        ],
        started_at: "2026-11-22T10:00:30.000Z".into(),
        last_activity_at: "2026-11-22T10:29:40.000Z".into(),
        rows: 260,
        outcomes: vec![
            count("succeeded", 244),
            count("ineligible", 12),
            count("not_found", 3),
            count("failed", 1),
        ],
        platforms: vec![
            PlatformCounts {
                platform: "ios".into(),
                rows: 200,
                outcomes: vec![count("succeeded", 197), count("not_found", 3)],
            },
            PlatformCounts {
                platform: "android_work_profile".into(),
                rows: 60,
                outcomes: vec![
                    count("succeeded", 47),
                    count("ineligible", 12),
                    count("failed", 1),
                ],
            },
        ],
        sends: 245,
        timeline: Timeline {
            start: "2026-11-22T10:00:00.000Z".into(),
            bucket_minutes: 1,
            buckets,
            peak_per_minute: 10,
            pauses: 2,
            paused_minutes: 3,
            interruptions: vec![Interruption {
                stopped_at: "2026-11-22T10:12:05.000Z".into(),
                resumed_at: "2026-11-22T10:20:10.000Z".into(),
                from: 12,
                to: 20,
            }],
        },
        needs_attention: 4,
        failures: vec![FailureGroup {
            reason: "not_found".into(),
            meaning: "Intune has no device with this id.".into(),
            count: 3,
            outcomes: vec![count("not_found", 3)],
            examples: vec![hostile.clone()],
        }],
        status: Some(StatusFacts {
            rows: 260,
            states: vec![count("done", 240), count("pending", 4), count("", 16)],
            examples: vec![],
            flagged: 0,
        }),
        audit: Some(AuditFacts {
            rows: 260,
            verdicts: vec![
                count("confirmed", 244),
                count("missing", 1),
                count("none", 15),
            ],
            examples: vec![Example {
                label: "missing".into(),
                ..hostile
            }],
            flagged: 1,
        }),
    }
}

/// Runs Chromium headless on `page` with `args`, stdout to `out`; fails on a non-zero
/// exit with its stderr.
fn browse(browser: &Path, dir: &Path, page: &Path, args: &[String], out: &Path) {
    let url = url::Url::from_file_path(page).expect("an absolute path");
    let profile = tempfile::tempdir_in(dir).expect("a profile folder");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            // No host name resolves: the browser reaches nothing beyond this machine.
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url.as_str())
        .stdin(Stdio::null())
        .stdout(File::create(out).expect("the output file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let output = wait_for(&mut child, LIMIT);
    assert!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn written(dir: &Path) -> PathBuf {
    let page = dir.join("summary.html");
    std::fs::write(&page, html::render(&facts())).expect("the page is written");
    page
}

#[test]
fn summary_html_in_a_real_browser_shows_the_run_and_a_hostile_name_as_text() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let page = written(dir.path());
    let dump = dir.path().join("dom.html");
    browse(&browser, dir.path(), &page, &["--dump-dom".into()], &dump);
    let dom = std::fs::read_to_string(&dump).expect("the DOM dump");
    for shown in [
        TENANT,
        "Passcode reset run: evidence summary",
        "<code>succeeded</code></td><td class=\"n\">244</td>",
        "<td>ios</td><td class=\"n\">200</td>",
        "ada@contoso.com",
        "2026-11-22 10:00:30 UTC",
        "resume 2: stopped after 2026-11-22 10:12:05 UTC",
        "Intune throttled the run 2 times (HTTP 429)",
        "<code>missing</code></td><td class=\"n\">1</td>",
        "incident.csv.ledger",
    ] {
        assert!(
            dom.contains(shown),
            "the browser's DOM lacks {shown}:\n{dom}"
        );
    }
    // The name is a text node (serialized escaped), twice (failures, audit); no element
    // came of it.
    assert_eq!(
        dom.matches("&lt;script&gt;alert(1)&lt;/script&gt;").count(),
        2,
        "{dom}"
    );
    assert!(!dom.to_ascii_lowercase().contains("<script"), "{dom}");
}

#[test]
fn summary_html_in_a_real_browser_draws_the_timeline_with_its_marks() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let page = written(dir.path());
    let shot = dir.path().join("summary.png");
    let args = [
        format!("--screenshot={}", shot.display()),
        "--window-size=1100,3000".into(),
    ];
    browse(
        &browser,
        dir.path(),
        &page,
        &args,
        &dir.path().join("stdout.txt"),
    );
    let image = png::decode(&shot);
    let colours: std::collections::HashSet<[u8; 3]> = image.pixels.iter().copied().collect();
    assert!(
        colours.len() > 20,
        "a blank page: {} colours",
        colours.len()
    );
    for (what, hex, least) in [
        ("bars", html::BAR, 500),
        ("the 429 pause", html::PAUSED, 500),
        ("the interruption", html::STOPPED, 500),
        ("the resume line", html::RESUMED, 400),
    ] {
        let rgb = rgb(hex);
        let n = image.pixels.iter().filter(|p| near(**p, rgb)).count();
        assert!(
            n >= least,
            "the screenshot shows {n} pixels of {what} ({hex}), fewer than {least}"
        );
    }
}

fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).expect("a colour");
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// Within a few levels per channel (colour management may round).
fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 4)
}

/// Just enough PNG (8-bit RGB or RGBA, not interlaced: what Chromium writes) to read a
/// screenshot's pixels.
mod png {
    use super::*;

    pub struct Image {
        pub pixels: Vec<[u8; 3]>,
    }

    pub fn decode(path: &Path) -> Image {
        let bytes = std::fs::read(path).expect("the screenshot");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
        let mut data = Vec::new();
        let mut at = 8;
        while at + 8 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let kind = &bytes[at + 4..at + 8];
            let body = &bytes[at + 8..at + 8 + len];
            match kind {
                b"IHDR" => {
                    width = u32::from_be_bytes(body[0..4].try_into().expect("4 bytes")) as usize;
                    height = u32::from_be_bytes(body[4..8].try_into().expect("4 bytes")) as usize;
                    assert_eq!(body[8], 8, "8 bits a channel");
                    assert_eq!(body[12], 0, "not interlaced");
                    channels = match body[9] {
                        2 => 3,
                        6 => 4,
                        other => panic!("colour type {other}"),
                    };
                }
                b"IDAT" => data.extend_from_slice(body),
                _ => {}
            }
            at += 12 + len;
        }
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&data[..])
            .read_to_end(&mut raw)
            .expect("the image data inflates");
        let stride = width * channels;
        assert_eq!(raw.len(), height * (stride + 1), "{width}x{height}");
        let mut pixels = Vec::with_capacity(width * height);
        let mut prior = vec![0u8; stride];
        for line in raw.chunks(stride + 1) {
            let mut cur = line[1..].to_vec();
            unfilter(line[0], &mut cur, &prior, channels);
            pixels.extend(cur.chunks(channels).map(|p| [p[0], p[1], p[2]]));
            prior = cur;
        }
        Image { pixels }
    }

    /// The five PNG filters (<https://www.w3.org/TR/png/#9Filter-types>).
    fn unfilter(filter: u8, cur: &mut [u8], prior: &[u8], bpp: usize) {
        for i in 0..cur.len() {
            let a = if i >= bpp { cur[i - bpp] } else { 0 };
            let b = prior[i];
            let c = if i >= bpp { prior[i - bpp] } else { 0 };
            let add = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => {
                    let p = a as i16 + b as i16 - c as i16;
                    let (pa, pb, pc) = (
                        (p - a as i16).abs(),
                        (p - b as i16).abs(),
                        (p - c as i16).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("filter {other}"),
            };
            cur[i] = cur[i].wrapping_add(add);
        }
    }
}
