//! A one-column list without a header: what administrators paste from a ticket or a
//! spreadsheet column (`serials.txt`, one serial number a line).
//!
//! The column is guessed from a sample of the file's first lines, and only when every
//! sampled value is of one kind, so a real header that the tool does not know (a typo
//! such as `Serail`) is still refused with a message naming the header to add. The kinds
//! are tried from the most to the least specific: a GUID is an Intune id (the Entra
//! device id is a GUID too, but a list of them is rarer than a list copied from the
//! Intune admin center's `Device ID`), 14–16 digits an IMEI, `user@domain` a UPN, and
//! anything else of letters, digits and `-` a serial number.

use crate::device::Column;

/// How many lines of the head are looked at: enough to see a mixed list, few enough to
/// decide in microseconds.
const SAMPLE_LINES: usize = 200;

/// The column a headerless one-column list holds, judged from the file's decoded head
/// (`truncated` when the head is only the start of a longer file: its last line may be
/// cut in two and is left out). `None` when some value fits no kind, or the file has
/// more than one column.
pub fn guess_column(head: &str, truncated: bool) -> Option<Column> {
    let mut lines: Vec<&str> = head.split(['\r', '\n']).collect();
    if truncated && lines.len() > 1 {
        lines.pop();
    }
    let values: Vec<&str> = lines
        .into_iter()
        .map(|l| l.trim_start_matches('\u{feff}').trim())
        .filter(|l| !l.is_empty() && !is_preamble(l))
        .take(SAMPLE_LINES)
        .map(|l| {
            l.strip_prefix('"')
                .and_then(|l| l.strip_suffix('"'))
                .unwrap_or(l)
                .trim()
        })
        .collect();
    let kind = kind_of_all(&values)?;
    // `IMEI1` above a list of IMEIs is a plausible serial number, and so is every IMEI:
    // the first line is a header the tool does not know when the lines after it are of
    // a narrower kind than it is.
    match values.get(1..) {
        Some(rest) if !rest.is_empty() && kind_of_all(rest) != Some(kind) => None,
        _ => Some(kind),
    }
}

/// The narrowest kind every value is of.
fn kind_of_all(values: &[&str]) -> Option<Column> {
    let first = values.first()?;
    let all = |test: fn(&str) -> bool| values.iter().all(|v| test(v));
    if all(is_guid) {
        Some(Column::Id)
    } else if all(is_imei) {
        Some(Column::Imei)
    } else if all(is_upn) {
        Some(Column::UserPrincipalName)
    } else if all(is_serial) && first.bytes().any(|b| b.is_ascii_digit()) {
        Some(Column::SerialNumber)
    } else {
        None
    }
}

/// Lines above a header that are not part of the table: Excel's `sep=;` and Windows
/// PowerShell 5.1's `#TYPE` line.
pub fn is_preamble(line: &str) -> bool {
    let line = line.trim_start_matches('\u{feff}').trim_start();
    is_type_line(line) || (line.starts_with("sep=") && line.len() == 5)
}

/// Windows PowerShell 5.1's `Export-Csv` writes `#TYPE <type name>` above the header
/// unless `-NoTypeInformation` is given (PowerShell 6 and later no longer do).
/// https://learn.microsoft.com/en-us/powershell/module/microsoft.powershell.utility/export-csv?view=powershell-5.1
pub fn is_type_line(line: &str) -> bool {
    let line = line.trim_start_matches('\u{feff}').trim_start();
    line.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("#TYPE "))
}

fn is_guid(v: &str) -> bool {
    let v = v
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(v);
    v.len() == 36
        && v.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn is_imei(v: &str) -> bool {
    (14..=16).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
}

fn is_upn(v: &str) -> bool {
    match v.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !v.contains(|c: char| c.is_whitespace() || c == ',' || c == ';')
                && !domain.contains('@')
        }
        None => false,
    }
}

fn is_serial(v: &str) -> bool {
    (5..=30).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_guids_is_ids() {
        let head =
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\r\n11111111-2222-3333-4444-555555555555\r\n";
        assert_eq!(guess_column(head, false), Some(Column::Id));
    }

    #[test]
    fn a_list_of_14_to_16_digit_numbers_is_imeis() {
        assert_eq!(
            guess_column("357123456789012\n35712345678901\n", false),
            Some(Column::Imei)
        );
    }

    #[test]
    fn a_list_of_addresses_is_upns() {
        assert_eq!(
            guess_column("ana@contoso.com\nbo.li@contoso.onmicrosoft.com\n", false),
            Some(Column::UserPrincipalName)
        );
    }

    #[test]
    fn a_list_of_plausible_serials_is_serial_numbers() {
        assert_eq!(
            guess_column("\u{feff}F2LXK1ABCDEF\nR58M12ABCDE\nPF-3XYZ12\n", false),
            Some(Column::SerialNumber)
        );
    }

    #[test]
    fn a_mixed_or_unknown_list_is_not_guessed() {
        assert_eq!(guess_column("Serail\nF2LXK1ABCDEF\n", false), None);
        assert_eq!(guess_column("Device name\nKiosk 1\n", false), None);
        assert_eq!(guess_column("id,os\nx,y\n", false), None);
        assert_eq!(guess_column("3,57123E+14\n", false), None);
    }

    #[test]
    fn a_first_line_of_a_wider_kind_than_the_rest_is_an_unknown_header() {
        assert_eq!(
            guess_column("IMEI1\n357123456789012\n35712345678901\n", false),
            None
        );
        assert_eq!(
            guess_column("357123456789012\nF2LXK1ABCDEF\n", false),
            Some(Column::SerialNumber),
            "a list mixing IMEIs and serial numbers is serial numbers"
        );
    }

    #[test]
    fn the_cut_last_line_of_a_truncated_head_is_left_out() {
        assert_eq!(
            guess_column("F2LXK1ABCDEF\nR58M12ABCDE\nR5", true),
            Some(Column::SerialNumber)
        );
    }

    #[test]
    fn type_lines_are_recognised() {
        assert!(is_type_line(
            "#TYPE Microsoft.Graph.PowerShell.Models.MicrosoftGraphManagedDevice"
        ));
        assert!(is_type_line(
            "\u{feff}#TYPE System.Management.Automation.PSCustomObject"
        ));
        assert!(!is_type_line("#id"));
    }
}
