//! The tenants a run spans (issue 22): how a tenant is named (its id or a verified
//! domain), and the list `--tenants FILE` reads (one tenant a line, optionally with its
//! own client id).
//!
//! Core module: it imports only the device domain (GUIDs), and knows nothing of the
//! process.

use std::io::Read;
use std::path::Path;

use crate::device::parse_guid;

/// One tenant a run signs in to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantEntry {
    /// The tenant's id (a GUID) or a domain (`contoso.onmicrosoft.com`): trimmed, lower
    /// case, as [`tenant_name`] gives it.
    pub name: String,
    /// The app registration's client id in that tenant, when it has its own (lower
    /// case); `None`: the run's (`--client-id`, AZURE_CLIENT_ID).
    pub client_id: Option<String>,
}

impl TenantEntry {
    /// A tenant without its own client id.
    pub fn named(name: String) -> TenantEntry {
        TenantEntry {
            name,
            client_id: None,
        }
    }
}

/// A tenant as a row, a flag or a list names it: its id (a GUID, lower case, braces
/// removed) or a domain (lower case); `None` for anything else.
pub fn tenant_name(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some(id) = parse_guid(text) {
        return Some(id);
    }
    let domain = text.to_ascii_lowercase();
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    (domain.contains('.') && labels_ok).then_some(domain)
}

/// A client (application) id: a GUID, lower case.
pub fn client_id(text: &str) -> Option<String> {
    parse_guid(text)
}

/// A tenants list that cannot be used: nothing is read or sent.
#[derive(Debug, thiserror::Error)]
pub enum TenantsError {
    #[error("cannot read the tenants file {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    /// The file is not text in UTF-8 (with or without a byte-order mark) or UTF-16
    /// with one, or is larger than any list of tenants.
    #[error("cannot use the tenants file {file}: {why}")]
    Unreadable { file: String, why: String },
    /// A line that names no tenant, a client id that is not a GUID, a third value.
    #[error("{file}, line {line}: {what}")]
    Line {
        file: String,
        line: u64,
        what: String,
    },
    /// One tenant named twice (`first` and `again` say where: `FILE, line N` or
    /// `--tenant`).
    #[error("{tenant} is listed twice ({first}, and {again}): list each tenant once")]
    Twice {
        tenant: String,
        first: String,
        again: String,
    },
    #[error("the tenants file {file} lists no tenant (one tenant id or domain a line)")]
    Empty { file: String },
}

/// A tenants file is a list, not a job: a larger one is refused before it is read.
pub const MAX_TENANTS_FILE_BYTES: u64 = 4 << 20;

/// Reads a tenants file: one tenant (id or domain) a line, optionally followed by its
/// own client id (after a comma, semicolon, tab or spaces); `#` starts a comment; blank
/// lines are skipped, and so is a first line that is a header (`tenant`, `tenantId`,
/// `tenant,clientId`...). UTF-8 with or without a byte-order mark, or UTF-16 with one.
/// Errors name the file and the line; a tenant listed twice and an empty list are
/// errors.
pub fn read_tenants_file(path: &Path) -> Result<Vec<TenantEntry>, TenantsError> {
    let file = path.display().to_string();
    let io = |source| TenantsError::Io {
        file: file.clone(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_TENANTS_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_TENANTS_FILE_BYTES {
        return Err(TenantsError::Unreadable {
            file,
            why: format!(
                "it is larger than {} MiB, more than any list of tenants",
                MAX_TENANTS_FILE_BYTES >> 20
            ),
        });
    }
    let text = decode(&bytes).map_err(|why| TenantsError::Unreadable {
        file: file.clone(),
        why,
    })?;
    parse_tenants(&file, &text)
}

/// The text of a tenants file: UTF-8 (a byte-order mark removed), or UTF-16 with one.
fn decode(bytes: &[u8]) -> Result<String, String> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        return encoding
            .decode_without_bom_handling_and_without_replacement(&bytes[bom..])
            .map(|text| text.into_owned())
            .ok_or_else(|| {
                format!(
                    "it starts with a {} byte-order mark but is not {0} text",
                    encoding.name()
                )
            });
    }
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|e| {
        format!(
            "it is not UTF-8 text (byte {} is not); save it as UTF-8, or as UTF-16 with a byte-order mark",
            e.valid_up_to() + 1
        )
    })
}

/// Parses the text of a tenants file named `file` in messages.
pub fn parse_tenants(file: &str, text: &str) -> Result<Vec<TenantEntry>, TenantsError> {
    let mut entries: Vec<TenantEntry> = Vec::new();
    let mut lines_of: Vec<u64> = Vec::new();
    let mut first = true;
    for (at, line) in text.lines().enumerate() {
        let line_no = at as u64 + 1;
        let content = line.split('#').next().unwrap_or("");
        let fields: Vec<&str> = content
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .map(|f| f.trim_matches(|c: char| c == '"' || c == '\'' || c == '\u{feff}'))
            .filter(|f| !f.is_empty())
            .collect();
        if fields.is_empty() {
            continue;
        }
        let was_first = std::mem::replace(&mut first, false);
        if was_first && tenant_name(fields[0]).is_none() && is_header(&fields) {
            continue;
        }
        let what = |what: String| TenantsError::Line {
            file: file.to_owned(),
            line: line_no,
            what,
        };
        let Some(name) = tenant_name(fields[0]) else {
            return Err(what(format!(
                "'{}' is neither a tenant id (a GUID) nor a domain (contoso.onmicrosoft.com)",
                shown(fields[0])
            )));
        };
        let client = match fields.get(1) {
            None => None,
            Some(text) => Some(client_id(text).ok_or_else(|| {
                what(format!(
                    "the client id '{}' of {name} is not a GUID (an application (client) id)",
                    shown(text)
                ))
            })?),
        };
        if fields.len() > 2 {
            return Err(what(format!(
                "'{}' after {name}'s client id: a line names one tenant and, optionally, its client id",
                shown(fields[2])
            )));
        }
        if let Some(i) = entries.iter().position(|e| e.name == name) {
            return Err(TenantsError::Twice {
                tenant: name,
                first: format!("{file}, line {}", lines_of[i]),
                again: format!("line {line_no}"),
            });
        }
        entries.push(TenantEntry {
            name,
            client_id: client,
        });
        lines_of.push(line_no);
    }
    if entries.is_empty() {
        return Err(TenantsError::Empty {
            file: file.to_owned(),
        });
    }
    Ok(entries)
}

/// A first line naming the columns: `tenant`, `tenantId`, `Tenant ID, Client ID`...
fn is_header(fields: &[&str]) -> bool {
    let word = |f: &str| -> String {
        f.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    // `Tenant ID` splits into two fields at the space: join the words back.
    let joined = word(&fields.concat());
    const TENANT: [&str; 7] = [
        "tenant",
        "tenants",
        "tenantid",
        "tenantdomain",
        "tenantname",
        "domain",
        "directoryid",
    ];
    const CLIENT: [&str; 6] = [
        "clientid",
        "client",
        "appid",
        "applicationid",
        "applicationclientid",
        "app",
    ];
    TENANT.iter().any(|t| {
        joined == *t
            || CLIENT
                .iter()
                .any(|c| joined.strip_prefix(t).is_some_and(|rest| rest == *c))
    })
}

/// A value as a message shows it: at most 80 characters.
fn shown(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Adds `more` (found at `where_`, e.g. `--tenant`) to `list`, refusing a tenant
/// already in it (`list_where` says where the list's own came from).
pub fn add_tenant(
    list: &mut Vec<TenantEntry>,
    entry: TenantEntry,
    list_where: &str,
    entry_where: &str,
) -> Result<(), TenantsError> {
    if list.iter().any(|e| e.name == entry.name) {
        return Err(TenantsError::Twice {
            tenant: entry.name,
            first: list_where.to_owned(),
            again: entry_where.to_owned(),
        });
    }
    list.push(entry);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    const APP: &str = "11111111-2222-3333-4444-555555555555";

    fn entry(name: &str, client: Option<&str>) -> TenantEntry {
        TenantEntry {
            name: name.to_owned(),
            client_id: client.map(str::to_owned),
        }
    }

    fn parsed(text: &str) -> Vec<TenantEntry> {
        parse_tenants("t.txt", text).unwrap()
    }

    fn refused(text: &str) -> String {
        parse_tenants("t.txt", text).unwrap_err().to_string()
    }

    #[test]
    fn a_tenant_is_an_id_or_a_domain_in_lower_case() {
        assert_eq!(
            tenant_name(&format!(" {{{}}} ", ID.to_uppercase())),
            Some(ID.into())
        );
        assert_eq!(
            tenant_name(" Contoso.OnMicrosoft.com "),
            Some("contoso.onmicrosoft.com".into())
        );
        for no in [
            "",
            "contoso",
            "con toso.com",
            "contoso..com",
            ".com",
            "a_b.com",
            "organizations",
        ] {
            assert_eq!(tenant_name(no), None, "{no}");
        }
    }

    #[test]
    fn one_tenant_a_line_with_comments_blank_lines_and_client_ids() {
        let text = format!(
            "# customers of the incident\n\ncontoso.onmicrosoft.com\n  {ID} , {APP}  # own app\r\nfabrikam.com;{}\nadatum.com\t{APP}\nwoodgrove.com   {APP}\n\n",
            APP.to_uppercase()
        );
        assert_eq!(
            parsed(&text),
            vec![
                entry("contoso.onmicrosoft.com", None),
                entry(ID, Some(APP)),
                entry("fabrikam.com", Some(APP)),
                entry("adatum.com", Some(APP)),
                entry("woodgrove.com", Some(APP)),
            ]
        );
    }

    #[test]
    fn a_first_line_that_is_a_header_is_skipped() {
        for header in [
            "tenant",
            "tenantId",
            "Tenant ID",
            "tenant,clientId",
            "\"Tenant ID\";\"Client ID\"",
            "tenant\tapp id",
            "domain",
        ] {
            assert_eq!(
                parsed(&format!("# list\n{header}\ncontoso.com\n")),
                vec![entry("contoso.com", None)],
                "{header}"
            );
        }
        // Only the first line: a header further down is a line naming no tenant.
        let e = refused("contoso.com\ntenant\n");
        assert!(
            e.contains("t.txt, line 2: 'tenant' is neither a tenant id"),
            "{e}"
        );
        // A first line naming a tenant is a tenant, whatever it looks like.
        assert_eq!(parsed("tenant.app\n"), vec![entry("tenant.app", None)]);
    }

    #[test]
    fn errors_name_the_file_the_line_and_what_is_wrong() {
        let e = refused("contoso.com\n\n# x\ncontoso\n");
        assert_eq!(
            e,
            "t.txt, line 4: 'contoso' is neither a tenant id (a GUID) nor a domain (contoso.onmicrosoft.com)"
        );
        let e = refused("contoso.com, my-app\n");
        assert_eq!(
            e,
            "t.txt, line 1: the client id 'my-app' of contoso.com is not a GUID (an application (client) id)"
        );
        let e = refused(&format!("contoso.com {APP} extra\n"));
        assert!(
            e.starts_with("t.txt, line 1: 'extra' after contoso.com's client id"),
            "{e}"
        );
    }

    #[test]
    fn a_tenant_listed_twice_is_refused_naming_both_lines() {
        let e = refused(&format!("Contoso.com\nfabrikam.com\ncontoso.COM, {APP}\n"));
        assert_eq!(
            e,
            "contoso.com is listed twice (t.txt, line 1, and line 3): list each tenant once"
        );
    }

    #[test]
    fn an_empty_list_is_an_error() {
        for text in ["", "\n\n", "# nothing yet\n", "tenant,clientId\n# none\n"] {
            assert_eq!(
                refused(text),
                "the tenants file t.txt lists no tenant (one tenant id or domain a line)",
                "{text:?}"
            );
        }
    }

    #[test]
    fn files_in_utf8_with_or_without_a_bom_and_utf16_with_one_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("tenant,clientId\r\ncontoso.com,{APP}\r\n{ID}\r\n");
        let want = vec![entry("contoso.com", Some(APP)), entry(ID, None)];
        let utf16 = |be: bool| {
            let mut bytes = if be {
                vec![0xFE, 0xFF]
            } else {
                vec![0xFF, 0xFE]
            };
            for unit in text.encode_utf16() {
                bytes.extend(if be {
                    unit.to_be_bytes()
                } else {
                    unit.to_le_bytes()
                });
            }
            bytes
        };
        let files: [(&str, Vec<u8>); 4] = [
            ("plain.txt", text.clone().into_bytes()),
            (
                "bom.txt",
                [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
            ),
            ("le.txt", utf16(false)),
            ("be.txt", utf16(true)),
        ];
        for (name, bytes) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            assert_eq!(read_tenants_file(&path).unwrap(), want, "{name}");
        }
        let latin1 = dir.path().join("latin1.txt");
        std::fs::write(&latin1, b"caf\xE9.com\n").unwrap();
        let e = read_tenants_file(&latin1).unwrap_err().to_string();
        assert!(
            e.contains("latin1.txt: it is not UTF-8 text (byte 4 is not)"),
            "{e}"
        );
        let missing = dir.path().join("missing.txt");
        let e = read_tenants_file(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with("cannot read the tenants file ") && e.contains("missing.txt"),
            "{e}"
        );
    }

    #[test]
    fn adding_a_tenant_already_listed_names_both_places() {
        let mut list = vec![entry("contoso.com", None)];
        add_tenant(&mut list, entry(ID, None), "--tenant", "t.txt").unwrap();
        let e = add_tenant(
            &mut list,
            entry("contoso.com", Some(APP)),
            "--tenant",
            "t.txt",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "contoso.com is listed twice (--tenant, and t.txt): list each tenant once"
        );
        assert_eq!(list.len(), 2);
    }
}
