//! `summary.html`: one page a security lead reads without the tool, drawn from
//! [`Facts`] alone. Self-contained: inline CSS, the timeline an inline SVG, no script,
//! no font, no image, no link to load; its Content-Security-Policy forbids loading
//! anything at all, so even a browser that would fetch something fetches nothing.
//!
//! Every value that comes from a file (device names, details, ids, the tenant) goes
//! through [`esc`]: a device named `<script>` shows as that text. Readable when printed:
//! the colours of the timeline are SVG fills (printed, unlike CSS backgrounds), and the
//! marks also have words in the legend and the text above the chart.

mod chart;
#[cfg(test)]
mod tests;
mod words;

use super::facts::{Count, Example, Facts, Session};

/// The timeline's fills: bars, 429 pauses, the time the run was stopped, a resume (the
/// browser test finds them in a screenshot).
pub use chart::{BAR, PAUSED, RESUMED, STOPPED};

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-11-22 10:00:03 UTC` from the files' RFC 3339; a time that cannot be read is
/// shown as written.
fn when(rfc3339: &str) -> String {
    match crate::graph::verify::parse_timestamp(rfc3339).and_then(utc) {
        Some(t) => format!("{} {} UTC", &t[..10], &t[11..19]),
        None if rfc3339.is_empty() => "not recorded".into(),
        None => esc(rfc3339),
    }
}

/// `2026-11-22T10:00:03Z`; `None` past the year 9999, which humantime cannot write (its
/// `Display` fails there, and `to_string` would panic).
fn utc(t: std::time::SystemTime) -> Option<String> {
    use std::fmt::Write;
    let mut out = String::new();
    write!(out, "{}", humantime::format_rfc3339_seconds(t)).ok()?;
    Some(out)
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #111827; background: #fff; margin: 0 auto; max-width: 1040px; padding: 24px; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.2em; border-bottom: 2px solid #e5e7eb; padding-bottom: .2em; margin: 1.6em 0 .5em; }
h3 { font-size: 1em; margin: 1em 0 .3em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #d1d5db; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
.n { text-align: right; font-variant-numeric: tabular-nums; }
td > code { white-space: nowrap; }
.id, code { font-family: ui-monospace, "Cascadia Mono", Consolas, Menlo, monospace; font-size: .88em;
  overflow-wrap: anywhere; }
.rehearsal { border: 3px solid #b45309; background: #fffbeb; padding: 8px 12px; font-weight: 600; }
.attention { color: #991b1b; font-weight: 600; }
.quiet { color: #4b5563; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 18px; margin: .5em 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
svg.timeline { width: 100%; height: auto; display: block; }
.legend { margin: .4em 0 1em; }
.legend span { margin-right: 18px; white-space: nowrap; }
.legend svg { vertical-align: middle; margin-right: 4px; }
footer { margin-top: 2.5em; border-top: 1px solid #d1d5db; padding-top: .5em; font-size: .9em; color: #374151; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  * { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  .keep { break-inside: avoid-page; }
  h2, h3 { break-after: avoid-page; }
  tr { break-inside: avoid; }
}
"#;

/// The whole page.
pub fn render(facts: &Facts) -> String {
    let started = when(&facts.started_at);
    let mut page = String::with_capacity(64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // Nothing may be loaded: no script, no font, no image, no frame, no fetch.
    page.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    page.push_str(&format!(
        "<title>Passcode reset run of {started}: evidence summary</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    ));
    page.push_str("<header>\n<h1>Passcode reset run: evidence summary</h1>\n");
    page.push_str("<p class=\"quiet\">What intune-reset did to every device of one run, drawn from the files of this evidence pack (named at the end of this page).</p>\n");
    if facts.simulated {
        page.push_str("<p class=\"rehearsal\" id=\"rehearsal\">A rehearsal: this run went to intune-reset's built-in simulator, not to a real tenant. No real device was reset.</p>\n");
    }
    page.push_str("</header>\n");
    who_and_when(&mut page, facts);
    outcomes(&mut page, facts);
    chart::section(&mut page, facts);
    failures(&mut page, facts);
    if let Some(status) = &facts.status {
        page.push_str(
            "<section id=\"status\">\n<h2>What the devices did: the status report</h2>\n",
        );
        page.push_str(&format!(
            "<p>Each reset as Intune's <code>deviceActionResults</code> showed it when the status report was written ({} rows).</p>\n",
            status.rows
        ));
        counts_table(&mut page, "State", &status.states, words::state);
        examples(
            &mut page,
            "Devices whose reset needs a look",
            &status.examples,
            status.flagged,
            "State",
        );
        page.push_str("</section>\n");
    }
    if let Some(audit) = &facts.audit {
        page.push_str("<section id=\"audit\">\n<h2>What Intune recorded: the audit report</h2>\n");
        page.push_str(&format!(
            "<p>Each row against Intune's own audit trail (<code>auditEvents</code>, <code>remoteActionAudits</code>) over the run's span ({} rows). An audit record says Intune accepted the action from that identity at that time, not that the device carried it out (the status report says that); <code>remoteActionAudits</code> records can be edited through Graph, so they are evidence only beside the run's own ledger.</p>\n",
            audit.rows
        ));
        counts_table(&mut page, "Verdict", &audit.verdicts, words::verdict);
        examples(
            &mut page,
            "Devices whose audit verdict needs a look",
            &audit.examples,
            audit.flagged,
            "Verdict",
        );
        page.push_str("</section>\n");
    }
    footer(&mut page, facts);
    page.push_str("</body>\n</html>\n");
    page
}

fn who_and_when(page: &mut String, facts: &Facts) {
    page.push_str("<section id=\"who\" class=\"keep\">\n<h2>Who ran it, when, against which tenant</h2>\n<dl class=\"facts\">\n");
    let tenant = match &facts.tenant {
        Some(t) if facts.simulated => format!("<span class=\"id\">{}</span> (simulated)", esc(t)),
        Some(t) => format!("<span class=\"id\">{}</span>", esc(t)),
        None => "not recorded (a ledger written before the tenant was)".into(),
    };
    let first = facts.sessions.first();
    let who = first
        .map(session_who)
        .unwrap_or_else(|| "not recorded".into());
    let resumes = facts.sessions.len().saturating_sub(1);
    for (term, value) in [
        ("Tenant", tenant),
        ("Started by", who),
        ("Started", when(&facts.started_at)),
        ("Last activity", when(&facts.last_activity_at)),
        (
            "Sessions",
            match resumes {
                0 => "one: the run was never interrupted and resumed".into(),
                n => format!("{}: the start and {n} resume{}", n + 1, plural(n as u64)),
            },
        ),
        ("Job rows", facts.rows.to_string()),
        ("Reset requests sent", facts.sends.to_string()),
    ] {
        page.push_str(&format!("<dt>{term}</dt><dd>{value}</dd>\n"));
    }
    page.push_str("</dl>\n");
    page.push_str("<table id=\"sessions\">\n<tr><th>#</th><th>Began (UTC)</th><th>Signed in as</th><th>Before it</th></tr>\n");
    for (i, s) in facts.sessions.iter().enumerate() {
        let before = match (&s.interrupted_at, i) {
            (_, 0) => "the run's start".to_owned(),
            (Some(at), _) => format!("interrupted after {}", when(at)),
            (None, _) => "interrupted".to_owned(),
        };
        page.push_str(&format!(
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{before}</td></tr>\n",
            i + 1,
            when(&s.started_at),
            session_who(s)
        ));
    }
    page.push_str("</table>\n</section>\n");
}

/// `ada@contoso.com` (browser sign-in), with the tenant when it differs from the run's.
fn session_who(session: &Session) -> String {
    match &session.who {
        Some(w) => {
            let name = w
                .user
                .as_deref()
                .map(|u| format!("<span class=\"id\">{}</span>", esc(u)))
                .or_else(|| {
                    w.client_id
                        .as_deref()
                        .map(|c| format!("the app <span class=\"id\">{}</span>", esc(c)))
                })
                .unwrap_or_else(|| "an unnamed identity".into());
            format!(
                "{name} ({} sign-in{})",
                esc(&w.method),
                if w.simulated { ", simulated" } else { "" }
            )
        }
        None => "not recorded (a ledger written before identities were)".into(),
    }
}

fn outcomes(page: &mut String, facts: &Facts) {
    page.push_str("<section id=\"outcomes\" class=\"keep\">\n<h2>Devices by outcome</h2>\n");
    page.push_str(&format!(
        "<p>{} job rows, each in the run report exactly once. {}</p>\n",
        facts.rows,
        match facts.needs_attention {
            0 => "None needs attention.".to_owned(),
            n => format!(
                "<span class=\"attention\">{n} need{} attention</span> (grouped by meaning below).",
                if n == 1 { "s" } else { "" }
            ),
        }
    ));
    counts_table(page, "Outcome", &facts.outcomes, words::outcome);
    page.push_str("<h3>By platform</h3>\n<table id=\"platforms\">\n<tr><th>Platform</th><th class=\"n\">Rows</th>");
    for o in &facts.outcomes {
        page.push_str(&format!("<th class=\"n\">{}</th>", esc(&o.name)));
    }
    page.push_str("</tr>\n");
    for p in &facts.platforms {
        let name = if p.platform.is_empty() {
            "(not known)".to_owned()
        } else {
            esc(&p.platform)
        };
        page.push_str(&format!(
            "<tr><td>{name}</td><td class=\"n\">{}</td>",
            p.rows
        ));
        for o in &facts.outcomes {
            let n = p
                .outcomes
                .iter()
                .find(|c| c.name == o.name)
                .map_or(0, |c| c.count);
            page.push_str(&format!("<td class=\"n\">{n}</td>"));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n</section>\n");
}

/// A table of counts with what each name means.
fn counts_table(page: &mut String, what: &str, counts: &[Count], meaning: fn(&str) -> String) {
    page.push_str(&format!(
        "<table>\n<tr><th>{what}</th><th class=\"n\">Rows</th><th>Meaning</th></tr>\n"
    ));
    for c in counts {
        let name = if c.name.is_empty() {
            "(empty)".to_owned()
        } else {
            format!("<code>{}</code>", esc(&c.name))
        };
        page.push_str(&format!(
            "<tr><td>{name}</td><td class=\"n\">{}</td><td>{}</td></tr>\n",
            c.count,
            esc(&meaning(&c.name))
        ));
    }
    page.push_str("</table>\n");
}

fn failures(page: &mut String, facts: &Facts) {
    page.push_str("<section id=\"failures\">\n<h2>Needs attention, grouped by meaning</h2>\n");
    if facts.failures.is_empty() {
        page.push_str("<p>No row needs attention: every device was reset, or deliberately left alone (ineligible, a duplicate).</p>\n</section>\n");
        return;
    }
    for g in &facts.failures {
        let outcomes: Vec<String> = g
            .outcomes
            .iter()
            .map(|o| format!("{} {}", esc(&o.name), o.count))
            .collect();
        page.push_str(&format!(
            "<h3><code>{}</code>: {} row{} ({})</h3>\n<p>{}</p>\n",
            esc(&g.reason),
            g.count,
            plural(g.count),
            outcomes.join(", "),
            esc(&g.meaning)
        ));
        examples(page, "", &g.examples, g.count, "Outcome");
    }
    page.push_str("</section>\n");
}

/// Example rows, with how many there are in all.
fn examples(page: &mut String, title: &str, rows: &[Example], total: u64, label: &str) {
    if rows.is_empty() {
        return;
    }
    if !title.is_empty() {
        page.push_str(&format!("<h3>{title}</h3>\n"));
    }
    page.push_str(&format!(
        "<table class=\"examples\">\n<tr><th>Device</th><th>Intune id</th><th>Job row</th><th>{label}</th><th>Detail</th></tr>\n"
    ));
    for e in rows {
        page.push_str(&format!(
            "<tr><td>{}</td><td class=\"id\">{}</td><td>{} {}</td><td><code>{}</code></td><td>{}</td></tr>\n",
            esc(&e.device_name),
            esc(&e.device_id),
            esc(&e.source),
            esc(&e.row),
            esc(&e.label),
            esc(&e.detail)
        ));
    }
    page.push_str("</table>\n");
    let shown = rows.len() as u64;
    if total > shown {
        page.push_str(&format!(
            "<p class=\"quiet\">{shown} of {total} shown; the report lists every one.</p>\n"
        ));
    }
}

fn footer(page: &mut String, facts: &Facts) {
    let f = &facts.files;
    page.push_str("<footer id=\"files\">\n<p>This page summarises these files of the evidence pack:</p>\n<ul>\n");
    let files = [
        ("the run report", Some(&f.run_report)),
        (
            "the run's ledger (its own record: sign-ins, sessions, each reset's send)",
            Some(&f.ledger),
        ),
        ("the status report", f.status_report.as_ref()),
        ("the audit report", f.audit_report.as_ref()),
    ];
    for (what, name) in files {
        if let Some(name) = name {
            page.push_str(&format!("<li><code>{}</code>: {what}</li>\n", esc(name)));
        }
    }
    for j in &facts.job_files {
        page.push_str(&format!(
            "<li>job file <code>{}</code> as the run read it: {} bytes, SHA-256 <span class=\"id\">{}</span></li>\n",
            esc(&j.source),
            j.bytes,
            esc(&j.sha256)
        ));
    }
    page.push_str("</ul>\n<p><code>manifest.json</code> beside this page holds the SHA-256 of every file of the pack; <code>intune-reset evidence --verify</code> checks them and the ledger's chain. Times are UTC, by the clock of the machine that ran the run.</p>\n</footer>\n");
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
