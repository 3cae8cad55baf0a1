//! The OData query options the managedDevices endpoints honour: `$filter` (`eq` on the
//! properties Intune supports), `$select`, `$top` and `$skiptoken` for paging.
//!
//! Graph silently ignores a filter it does not support and returns every device
//! (<https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/235>): the
//! simulator does the same, so a client that forgets to re-check its matches fails in
//! rehearsal instead of in production. A filter that is not even well-formed (an
//! unclosed quote) is a 400, as it is for Graph.

use super::inventory::Lookup;

/// The parsed query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `$filter`, or `All` when absent or ignored.
    pub filter: Filter,
    /// Property names in `$select`, as the client spelled them.
    pub select: Option<Vec<String>>,
    /// `$top`: the page size the client asked for.
    pub top: Option<usize>,
    /// Where the next page starts, from our own `@odata.nextLink`.
    pub skip: usize,
    /// Every option but `$skiptoken`, raw, to carry into `@odata.nextLink`.
    pub carried: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Filter {
    /// No `$filter`, or one Graph would ignore.
    #[default]
    All,
    Eq(Lookup, String),
}

/// A query option Graph would refuse with 400, and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadQuery(pub String);

const SKIPTOKEN_PREFIX: &str = "LastDeviceIndex=";

pub fn parse(query: &str) -> Result<Query, BadQuery> {
    let mut parsed = Query::default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "$filter" => parsed.filter = parse_filter(&value)?,
            "$select" => {
                parsed.select = Some(
                    value
                        .split(',')
                        .map(|p| p.trim().to_owned())
                        .filter(|p| !p.is_empty())
                        .collect(),
                )
            }
            "$top" => {
                let top: usize = value.trim().parse().map_err(|_| {
                    BadQuery(format!(
                        "Invalid value '{value}' for $top query option found."
                    ))
                })?;
                parsed.top = Some(top.max(1));
            }
            "$skiptoken" => {
                parsed.skip = value
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

/// The query string of the page that starts at `skip`. Option names keep their `$`,
/// as in Graph's own links; values are encoded.
pub fn next_page_query(carried: &[(String, String)], skip: usize) -> String {
    page_query(carried, &format!("{SKIPTOKEN_PREFIX}{skip}"))
}

/// The query string of a page: the `carried` options, then `$skiptoken=token`.
pub fn page_query(carried: &[(String, String)], token: &str) -> String {
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    carried
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .chain(std::iter::once(("$skiptoken", token)))
        .map(|(name, value)| {
            let name = match name.strip_prefix('$') {
                Some(rest) => format!("${}", encode(rest)),
                None => encode(name),
            };
            format!("{name}={}", encode(value))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `property eq 'value'` on a supported property; anything else well-formed is ignored.
pub fn parse_filter(text: &str) -> Result<Filter, BadQuery> {
    let text = text.trim();
    if text.matches('\'').count() % 2 == 1 {
        return Err(BadQuery(format!(
            "Invalid filter clause: unterminated string literal in '{text}'."
        )));
    }
    let Some((property, rest)) = text.split_once(char::is_whitespace) else {
        return Ok(Filter::All);
    };
    let rest = rest.trim_start();
    let Some(rest) = rest
        .get(..2)
        .filter(|op| op.eq_ignore_ascii_case("eq"))
        .map(|_| rest[2..].trim_start())
    else {
        return Ok(Filter::All);
    };
    let Some(literal) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) else {
        return Ok(Filter::All);
    };
    // Inside the literal a quote is written twice; a lone one ends the literal early,
    // which means more follows (`... and ...`): a filter we do not support.
    if literal.replace("''", "").contains('\'') {
        return Ok(Filter::All);
    }
    match Lookup::from_property(property) {
        Some(lookup) => Ok(Filter::Eq(lookup, literal.replace("''", "'"))),
        None => Ok(Filter::All),
    }
}

/// Decodes `%XX` in a URL path (`managedDevices('...')` is often sent as `%27`).
pub fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_eq_filters_are_understood() {
        assert_eq!(
            parse_filter("serialNumber eq 'F17XK2'"),
            Ok(Filter::Eq(Lookup::SerialNumber, "F17XK2".into()))
        );
        assert_eq!(
            parse_filter("deviceName  EQ  'Anna''s iPhone'"),
            Ok(Filter::Eq(Lookup::DeviceName, "Anna's iPhone".into()))
        );
        for p in ["azureADDeviceId", "userPrincipalName", "imei"] {
            assert!(matches!(
                parse_filter(&format!("{p} eq 'x'")),
                Ok(Filter::Eq(..))
            ));
        }
    }

    #[test]
    fn unsupported_filters_are_silently_ignored() {
        for f in [
            "osVersion eq '17.1'",
            "startswith(deviceName,'A')",
            "serialNumber ne 'X'",
            "serialNumber eq 'X' and deviceName eq 'Y'",
            "serialNumber eq X",
            "",
        ] {
            assert_eq!(parse_filter(f), Ok(Filter::All), "{f}");
        }
    }

    #[test]
    fn a_malformed_filter_is_a_bad_request() {
        assert!(parse_filter("serialNumber eq 'X").is_err());
    }

    #[test]
    fn paging_carries_every_option_but_the_skiptoken() {
        let q =
            parse("$top=5&$select=id,deviceName&$filter=deviceName%20eq%20'a'").unwrap_or_default();
        assert_eq!(q.top, Some(5));
        assert_eq!(
            q.select,
            Some(vec!["id".to_string(), "deviceName".to_string()])
        );
        let next = next_page_query(&q.carried, 5);
        assert!(
            next.starts_with("$top=5&$select=id%2CdeviceName&$filter="),
            "{next}"
        );
        let again = parse(&next).unwrap_or_default();
        assert_eq!(again.skip, 5);
        assert_eq!(again.filter, q.filter);
        assert_eq!(again.carried, q.carried);
        assert!(parse("$skiptoken=garbage").is_err());
        assert!(parse("$top=many").is_err());
    }

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(
            percent_decode("managedDevices(%27ab%27)"),
            "managedDevices('ab')"
        );
        assert_eq!(percent_decode("%24batch%2"), "$batch%2");
    }
}
