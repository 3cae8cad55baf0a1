//! [`super::open`] on files as administrators hold them, written by each test.

use std::path::PathBuf;

use tempfile::TempDir;

use super::{JobError, JobRow, open};
use crate::device::Column;

const IOS_A: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const IOS_B: &str = "11111111-2222-3333-4444-555555555555";

const TYPE_LINE: &str = "#TYPE Microsoft.Graph.PowerShell.Models.MicrosoftGraphManagedDevice";

fn file(dir: &TempDir, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    path
}

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

fn rows(path: &std::path::Path) -> Vec<JobRow> {
    let job = open(path).expect("the file opens");
    let mut out = vec![];
    job.read_rows(&mut |row| out.push(row)).expect("rows read");
    out
}

fn refusal(path: &std::path::Path) -> String {
    match open(path) {
        Err(JobError::Unreadable { why, .. }) => why,
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the file was accepted"),
    }
}

#[test]
fn a_powershell_type_line_above_the_header_is_skipped_in_utf8_with_bom_and_utf16() {
    let text = format!(
        "{TYPE_LINE}\r\n\"Id\",\"DeviceName\",\"OperatingSystem\"\r\n\"{IOS_A}\",\"Kiosk\",\"iOS\"\r\n\"{IOS_B}\",\"Desk\",\"iOS\"\r\n"
    );
    let dir = TempDir::new().unwrap();
    let shapes = [
        ("plain.csv", text.clone().into_bytes()),
        ("bom.csv", [&b"\xEF\xBB\xBF"[..], text.as_bytes()].concat()),
        ("unicode.csv", utf16le_with_bom(&text)),
        ("semicolon.csv", text.replace("\",\"", "\";\"").into_bytes()),
    ];
    for (name, bytes) in shapes {
        let got = rows(&file(&dir, name, bytes));
        assert_eq!(got.len(), 2, "{name}");
        assert_eq!(
            got.iter().map(|r| r.row).collect::<Vec<_>>(),
            [3, 4],
            "{name}: the type line is row 1, the header row 2, as Excel shows the file"
        );
        assert_eq!(got[0].fields.get(Column::Id), Some(IOS_A), "{name}");
        assert_eq!(
            got[1].fields.get(Column::DeviceName),
            Some("Desk"),
            "{name}"
        );
        assert!(got.iter().all(|r| r.defect.is_none()), "{name}");
    }
}

#[test]
fn powershell_pascal_case_property_names_are_the_graph_columns() {
    let dir = TempDir::new().unwrap();
    let header = "AzureAdDeviceId,DeviceEnrollmentType,DeviceName,DeviceType,Id,Imei,\
                  ManagedDeviceName,ManagedDeviceOwnerType,ManagementAgent,OperatingSystem,\
                  OSVersion,SerialNumber,UserPrincipalName";
    let row = format!(
        "{IOS_B},appleBulkWithUser,Kiosk,iPhone,{IOS_A},357123456789012,\
         ana_iPhone_1/2/2024,company,mdm,iOS,17.4,F2LXK1ABCDEF,ana@contoso.com"
    );
    let path = file(&dir, "ps.csv", format!("{TYPE_LINE}\n{header}\n{row}\n"));
    let got = rows(&path);
    assert_eq!(got.len(), 1);
    let f = &got[0].fields;
    let want = [
        (Column::AzureAdDeviceId, IOS_B),
        (Column::DeviceEnrollmentType, "appleBulkWithUser"),
        (Column::DeviceName, "Kiosk"),
        (Column::DeviceType, "iPhone"),
        (Column::Id, IOS_A),
        (Column::Imei, "357123456789012"),
        (Column::OwnerType, "company"),
        (Column::ManagementAgent, "mdm"),
        (Column::OperatingSystem, "iOS"),
        (Column::OsVersion, "17.4"),
        (Column::SerialNumber, "F2LXK1ABCDEF"),
        (Column::UserPrincipalName, "ana@contoso.com"),
    ];
    for (column, value) in want {
        assert_eq!(f.get(column), Some(value), "{column:?}");
    }
}

#[test]
fn managed_device_name_fills_the_device_name_only_when_there_is_no_device_name_column() {
    let dir = TempDir::new().unwrap();
    let both = file(
        &dir,
        "both.csv",
        format!("ManagedDeviceName,DeviceName,Id\nana_iPhone_1/2/2024,,{IOS_A}\n"),
    );
    assert_eq!(rows(&both)[0].fields.get(Column::DeviceName), None);
    let alone = file(
        &dir,
        "alone.csv",
        format!("ManagedDeviceName,Id\nana_iPhone,{IOS_A}\n"),
    );
    assert_eq!(
        rows(&alone)[0].fields.get(Column::DeviceName),
        Some("ana_iPhone")
    );
}

#[test]
fn a_headerless_one_column_list_is_read_as_its_column_from_row_1() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (
            "serials.txt",
            "F2LXK1ABCDEF\r\nR58M12ABCDE\r\n\r\nPF-3XYZ12\r\n",
            Column::SerialNumber,
        ),
        (
            "ids.csv",
            &*format!("{IOS_A}\n{IOS_B}\n{IOS_A}\n"),
            Column::Id,
        ),
        (
            "imeis.csv",
            "357123456789012\n35712345678901\n3571234567890123\n",
            Column::Imei,
        ),
        (
            "upns.csv",
            "ana@contoso.com\nbo@contoso.com\ncy@contoso.com\n",
            Column::UserPrincipalName,
        ),
    ];
    for (name, text, column) in cases {
        let got = rows(&file(&dir, name, text));
        let values: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(got.len(), values.len(), "{name}: every line is a device");
        assert_eq!(got[0].row, 1, "{name}: the first line is a device, row 1");
        for (row, value) in got.iter().zip(&values) {
            assert_eq!(row.fields.get(column), Some(*value), "{name}");
            assert!(row.defect.is_none(), "{name}");
        }
    }
    let utf16 = file(
        &dir,
        "u16.txt",
        utf16le_with_bom("F2LXK1ABCDEF\r\nR58M12ABCDE\r\n"),
    );
    let got = rows(&utf16);
    assert_eq!(got.iter().map(|r| r.row).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn a_one_column_file_that_is_not_a_list_names_the_header_line_to_add() {
    let dir = TempDir::new().unwrap();
    let why = refusal(&file(&dir, "typo.csv", "Serail\nF2LXK1ABCDEF\n"));
    assert!(
        why.contains("add a first line \"serialNumber\" (or id, imei, deviceName)"),
        "{why}"
    );
    let mixed = refusal(&file(&dir, "mixed.csv", "Kiosk 1\nF2LXK1ABCDEF\n"));
    assert!(mixed.contains("add a first line"), "{mixed}");
    let wide = refusal(&file(&dir, "wide.csv", "Serail,Nmae\nF2LXK1ABCDEF,x\n"));
    assert!(!wide.contains("add a first line"), "{wide}");
}

#[test]
fn a_graph_page_with_a_next_link_is_read_whole() {
    let dir = TempDir::new().unwrap();
    let page = format!(
        "{{\"@odata.context\":\"https://graph.microsoft.com/beta/$metadata#deviceManagement/managedDevices\",\
         \"value\":[{{\"id\":\"{IOS_A}\",\"operatingSystem\":\"iOS\"}},{{\"id\":\"{IOS_B}\",\"operatingSystem\":\"iOS\"}}],\
         \"@odata.nextLink\":\"https://graph.microsoft.com/beta/deviceManagement/managedDevices?$skiptoken=abc\"}}"
    );
    let got = rows(&file(&dir, "page.json", page));
    assert_eq!(got.iter().map(|r| r.row).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(got[1].fields.get(Column::Id), Some(IOS_B));
}

/// A pipe that never ends (`plan /dev/zero`) is stopped at the cap, with nothing kept.
/// Unix only: Windows has no endless device file to name (its named pipes need a
/// server; the cap's copy is the same code, tested in `limits`).
#[cfg(unix)]
#[test]
fn an_endless_pipe_is_stopped_at_the_cap_naming_the_file_and_the_cap() {
    let options = super::ReadOptions {
        limits: super::Limits::with_total(1 << 20),
        ..Default::default()
    };
    let Err(JobError::Unreadable { path, why }) =
        super::open_all(std::path::Path::new("/dev/zero"), &options)
    else {
        panic!("an endless pipe is refused")
    };
    assert_eq!(path, "/dev/zero");
    assert!(why.contains("goes on past 1 MiB"), "{why}");
    assert!(options.limits.written() <= 1 << 20);
}

/// Issue 22: a job document's `"tenants"` (ids or domains, or `{"tenant", "clientId"}`
/// with the tenant's own app), before or after its devices; its rows name their tenant.
#[test]
fn regression_22_a_job_documents_tenants_list_is_read() {
    use crate::tenants::TenantEntry;
    let dir = TempDir::new().unwrap();
    let app = "22222222-3333-4444-5555-666666666666";
    let doc = format!(
        r#"{{"action": "auto",
            "devices": [{{"id": "{IOS_A}", "tenant": "contoso.onmicrosoft.com"}}],
            "tenants": [" Contoso.onmicrosoft.com ",
                        {{"tenant": "{{{}}}", "clientId": "{}"}},
                        {{"tenantId": "fabrikam.com", "clientId": null}}]}}"#,
        IOS_B.to_uppercase(),
        app.to_uppercase()
    );
    let path = file(&dir, "job.json", doc);
    let job = open(&path).unwrap();
    assert_eq!(
        job.settings.tenants,
        vec![
            TenantEntry::named("contoso.onmicrosoft.com".into()),
            TenantEntry {
                name: IOS_B.into(),
                client_id: Some(app.into()),
            },
            TenantEntry::named("fabrikam.com".into()),
        ]
    );
    assert_eq!(job.settings.action.as_deref(), Some("auto"));
    let rows = rows(&path);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].fields.get(Column::Tenant),
        Some("contoso.onmicrosoft.com")
    );
    // Without the key: no list.
    let plain = file(
        &dir,
        "plain.json",
        format!(r#"{{"devices": [{{"id": "{IOS_A}"}}]}}"#),
    );
    assert!(open(&plain).unwrap().settings.tenants.is_empty());
}

#[test]
fn regression_22_a_malformed_tenants_entry_is_refused_naming_the_file_and_the_entry() {
    let dir = TempDir::new().unwrap();
    let device = format!(r#"[{{"id": "{IOS_A}"}}]"#);
    for (n, (tenants, says)) in [
        (r#""contoso""#, r#"it is a string, not an array of tenants"#),
        (r#"[]"#, "the list is empty"),
        (
            r#"["contoso.com", "contoso"]"#,
            r#"entry 2 ("contoso") is neither a tenant id (a GUID) nor a domain"#,
        ),
        (
            r#"[{"tenant": "contoso.com", "clientId": "my-app"}]"#,
            r#"entry 1 ({"clientId":"my-app","tenant":"contoso.com"}) has a "clientId" that is not a GUID"#,
        ),
        (r#"[{"clientId": "x"}]"#, r#"has no "tenant""#),
        (r#"[{"tenant": "a.com", "name": "A"}]"#, r#"has "name": an entry has "tenant""#),
        (r#"[42]"#, "entry 1 (42) is a number, not a tenant id or domain"),
        (
            r#"["a.com", "b.com", {"tenant": "A.com"}]"#,
            r#"entry 3 ({"tenant":"A.com"}) names a.com again (entry 1): list each tenant once"#,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("job{n}.json");
        let path = file(&dir, &name, format!(r#"{{"tenants": {tenants}, "devices": {device}}}"#));
        let Err(e) = open(&path) else {
            panic!("{tenants} was accepted");
        };
        let e = e.to_string();
        assert!(e.contains(&name) && e.contains(r#"its "tenants": "#), "{e}");
        assert!(e.contains(says), "{tenants}: {e}");
    }
}
