//! The query options of the audit lists: `$top`, `$skiptoken` (from our own
//! `@odata.nextLink`) and `$filter`.
//!
//! Microsoft documents no query parameters for either list. Clients filter
//! `auditEvents` on `activityDateTime ge ...` and `activityType eq '...'` (docs/graph.md,
//! "Audit"), and `remoteActionAudits` on `action eq '...'`: the simulator supports
//! those, `activityDateTime le ...` too, joined with `and`, and answers any other
//! clause 400, as Graph answers a `$filter` it cannot evaluate, so a client that
//! counts on another clause learns it in rehearsal. Other options (`$orderby`,
//! `$select`) are ignored and carried into the next page's link: records come in time
//! order, oldest first.

use std::time::{Duration, SystemTime};

use super::super::odata::{BadQuery, page_query};

/// Records per page when `$top` asks for none: unconfirmed for Intune's audit lists
/// (managedDevices pages 1000); 50 keeps a rehearsal's paging visible.
pub const DEFAULT_PAGE: usize = 50;
/// The largest page: a larger `$top` gets this many, as many Graph lists cap `$top` at
/// 999 (<https://learn.microsoft.com/graph/paging>). Unconfirmed for these two lists.
pub const MAX_PAGE: usize = 999;

const SKIPTOKEN_PREFIX: &str = "LastAuditIndex=";

/// Which list a query is for: each has its own filter properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Events,
    RemoteActions,
}

/// One `$filter` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// `activityDateTime ge X`.
    AtOrAfter(SystemTime),
    /// `activityDateTime le X`.
    AtOrBefore(SystemTime),
    /// `activityType eq '...'`.
    ActivityType(String),
    /// `action eq '...'`.
    Action(String),
}

/// The parsed query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// The page size.
    pub top: usize,
    /// Where this page starts in the trail.
    pub from: usize,
    /// Every clause must hold.
    pub clauses: Vec<Clause>,
    /// Every option but `$skiptoken`, to carry into `@odata.nextLink`.
    pub carried: Vec<(String, String)>,
}

pub fn parse(list: List, query: &str) -> Result<AuditQuery, BadQuery> {
    let mut parsed = AuditQuery {
        top: DEFAULT_PAGE,
        from: 0,
        clauses: Vec::new(),
        carried: Vec::new(),
    };
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "$filter" => parsed.clauses = parse_filter(list, &value)?,
            "$top" => {
                let top: usize = value.trim().parse().map_err(|_| {
                    BadQuery(format!(
                        "Invalid value '{value}' for $top query option found."
                    ))
                })?;
                parsed.top = top.clamp(1, MAX_PAGE);
            }
            "$skiptoken" => {
                parsed.from = value
                    .strip_prefix(SKIPTOKEN_PREFIX)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| BadQuery("The skip token is not valid.".into()))?;
                continue;
            }
            _ => {}
        }
        parsed.carried.push((name.into_owned(), value.into_owned()));
    }
    Ok(parsed)
}

/// The query string of the page that starts at position `from` of the trail.
pub fn next_page(carried: &[(String, String)], from: usize) -> String {
    page_query(carried, &format!("{SKIPTOKEN_PREFIX}{from}"))
}

/// `clause and clause and ...`; an empty filter is no filter.
pub fn parse_filter(list: List, text: &str) -> Result<Vec<Clause>, BadQuery> {
    let words = words(text)?;
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let mut clauses = Vec::new();
    let mut rest = words.as_slice();
    loop {
        let [property, operator, value, after @ ..] = rest else {
            return Err(unsupported(list, text));
        };
        clauses
            .push(clause(list, property, operator, value).ok_or_else(|| unsupported(list, text))?);
        match after {
            [] => return Ok(clauses),
            [and, more @ ..] if and.eq_ignore_ascii_case("and") => rest = more,
            _ => return Err(unsupported(list, text)),
        }
    }
}

fn clause(list: List, property: &str, operator: &str, value: &str) -> Option<Clause> {
    let operator = operator.to_ascii_lowercase();
    match (list, operator.as_str()) {
        (List::Events, "ge") if property.eq_ignore_ascii_case("activityDateTime") => {
            time(value).map(Clause::AtOrAfter)
        }
        (List::Events, "le") if property.eq_ignore_ascii_case("activityDateTime") => {
            time(value).map(Clause::AtOrBefore)
        }
        (List::Events, "eq") if property.eq_ignore_ascii_case("activityType") => {
            literal(value).map(Clause::ActivityType)
        }
        (List::RemoteActions, "eq") if property.eq_ignore_ascii_case("action") => {
            literal(value).map(Clause::Action)
        }
        _ => None,
    }
}

/// Graph's 400 for a filter the list cannot evaluate, naming what it can.
fn unsupported(list: List, text: &str) -> BadQuery {
    let supported = match list {
        List::Events => {
            "activityDateTime ge <time>, activityDateTime le <time> and activityType eq '<text>', joined with 'and'"
        }
        List::RemoteActions => "action eq '<text>'",
    };
    BadQuery(format!(
        "Invalid filter clause: '{text}' is not supported; supported: {supported}."
    ))
}

/// The filter's words: names, operators, and literals with their quotes (a quote
/// inside a literal is written twice), so `'ResetPasscode ManagedDevice'` is one word.
fn words(text: &str) -> Result<Vec<String>, BadQuery> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '\'' {
            word.push(chars.next().unwrap_or('\''));
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        word.push_str("''");
                    }
                    Some('\'') => {
                        word.push('\'');
                        break;
                    }
                    Some(other) => word.push(other),
                    None => {
                        return Err(BadQuery(format!(
                            "Invalid filter clause: unterminated string literal in '{text}'."
                        )));
                    }
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// `'text'` -> `text`, a doubled quote read as one.
fn literal(word: &str) -> Option<String> {
    let inner = word.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

/// An RFC 3339 timestamp, unquoted as OData writes a `DateTimeOffset`, or quoted:
/// `2026-12-01T10:00:00Z`, with a fraction, or with an offset (`+01:00`).
pub fn time(word: &str) -> Option<SystemTime> {
    let text = literal(word).unwrap_or_else(|| word.to_owned());
    let text = text.trim();
    if let Some(utc) = text.strip_suffix(['Z', 'z']) {
        return humantime::parse_rfc3339(&format!("{utc}Z")).ok();
    }
    // `...+HH:MM` or `...-HH:MM` after the time of day.
    let cut = text.len().checked_sub(6)?;
    let (local, offset) = (text.get(..cut)?, text.get(cut..)?);
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset[1..].split_once(':')?;
    let (hours, minutes): (u64, u64) = (hours.parse().ok()?, minutes.parse().ok()?);
    if !local.contains('T') || hours > 23 || minutes > 59 {
        return None;
    }
    let shift = Duration::from_secs(hours * 3600 + minutes * 60);
    let as_utc = humantime::parse_rfc3339(&format!("{local}Z")).ok()?;
    // Local time = UTC + offset, so UTC = local - offset.
    if sign > 0 {
        as_utc.checked_sub(shift)
    } else {
        as_utc.checked_add(shift)
    }
}
