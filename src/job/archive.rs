//! A `.zip` of job files, such as the Intune admin center's export download (a ZIP
//! holding one CSV). Each CSV, JSON or workbook inside is a job file. Other entries
//! (folders, macOS `__MACOSX/` resource forks, hidden files, a readme in another
//! format) are passed over, with a warning naming them; a ZIP inside the ZIP refuses
//! the whole job, as its rows would otherwise be lost without a word.
//!
//! The members are extracted once into a private temporary folder (created readable
//! by its owner only, as the job may name users; removed when the last job file read
//! from it is dropped), each under its own name so that its extension still tells its
//! format. Reading then works on the copy as on any file: streamed, and a JSON document
//! can be read twice. What is unpacked is capped ([`Limits`]): a ZIP bomb stops with a
//! sentence before the disk fills.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::JobError;
use super::limits::{self, CopyError, Limits};

/// The extensions of the files a ZIP's job files may have.
const JOB_EXTENSIONS: [&str; 11] = [
    "csv", "tsv", "txt", "json", "jsonl", "ndjson", "xlsx", "xlsm", "xlsb", "xls", "ods",
];

/// Passed-over entries named in the warning; more are counted.
const NAMED_PASSED_OVER: usize = 5;

pub struct Member {
    /// The entry's path inside the archive, as the report's `source` names it.
    pub name: String,
    /// The extracted copy.
    pub path: PathBuf,
}

pub struct Extracted {
    pub dir: Arc<tempfile::TempDir>,
    pub members: Vec<Member>,
}

pub type Archive = zip::ZipArchive<BufReader<File>>;

/// The names of the archive's entries (names that cannot be decoded are left out).
pub fn entry_names(archive: &Archive) -> Vec<String> {
    archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect()
}

pub fn open_archive(path: &Path) -> zip::result::ZipResult<Archive> {
    let file = File::open(path).map_err(zip::result::ZipError::Io)?;
    zip::ZipArchive::new(BufReader::new(file))
}

/// What an entry of the archive is to the job.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Job,
    /// A ZIP inside the ZIP: its rows cannot be read from here.
    Nested,
    /// A file of another format (a readme, a hidden file): named in a warning.
    PassedOver,
    /// A folder, or what macOS adds when it zips (`__MACOSX/` resource forks,
    /// `.DS_Store`): no content of the user's, passed over without a word.
    Packaging,
}

fn entry_kind(name: &str) -> Entry {
    let base = name.rsplit('/').next().unwrap_or(name);
    if name.ends_with('/') || name.starts_with("__MACOSX/") || base == ".DS_Store" {
        return Entry::Packaging;
    }
    if base.starts_with('.') {
        return Entry::PassedOver;
    }
    let Some((_, ext)) = base.rsplit_once('.') else {
        return Entry::PassedOver;
    };
    if ext.eq_ignore_ascii_case("zip") {
        Entry::Nested
    } else if JOB_EXTENSIONS
        .iter()
        .any(|known| ext.eq_ignore_ascii_case(known))
    {
        Entry::Job
    } else {
        Entry::PassedOver
    }
}

/// `a, b, c` or `a, b, c and 4 more`.
fn listed(names: &[String]) -> String {
    let shown: Vec<&str> = names
        .iter()
        .take(NAMED_PASSED_OVER)
        .map(String::as_str)
        .collect();
    let rest = names.len().saturating_sub(NAMED_PASSED_OVER);
    if rest == 0 {
        shown.join(", ")
    } else {
        format!("{} and {rest} more", shown.join(", "))
    }
}

/// Extracts the job files of the archive at `path` (`name` in messages), unpacking at
/// most `limits.total_bytes` in all.
pub fn extract(mut archive: Archive, name: &str, limits: &Limits) -> Result<Extracted, JobError> {
    let unreadable = |why: String| JobError::Unreadable {
        path: name.to_owned(),
        why,
    };
    let io_err = |e: std::io::Error| JobError::Io {
        path: name.to_owned(),
        message: e.to_string(),
    };
    let all = entry_names(&archive);
    let of_kind = |kind: Entry| -> Vec<String> {
        let mut names: Vec<String> = all
            .iter()
            .filter(|n| entry_kind(n) == kind)
            .cloned()
            .collect();
        names.sort();
        names
    };
    // Refused whole rather than run without it: whoever zipped two lists expects both
    // to run, and running half of an incident without a word is worse than asking
    // them to unzip (docs/decisions.md).
    let nested = of_kind(Entry::Nested);
    if !nested.is_empty() {
        return Err(unreadable(format!(
            "it holds a ZIP archive inside it ({}), whose rows would not be read; rather \
             than run only its other files, nothing was sent. Unpack {name} and give its \
             files, {} included, on the command line",
            listed(&nested),
            if nested.len() == 1 {
                "that ZIP"
            } else {
                "those ZIPs"
            }
        )));
    }
    let wanted = of_kind(Entry::Job);
    if wanted.is_empty() {
        let shown: Vec<&str> = all.iter().take(8).map(String::as_str).collect();
        return Err(unreadable(format!(
            "it is a ZIP archive holding no CSV, JSON or workbook file (it holds {})",
            if shown.is_empty() {
                "nothing".to_string()
            } else {
                shown.join(", ")
            }
        )));
    }
    let mut passed_over = of_kind(Entry::PassedOver);
    let undecodable = archive.len().saturating_sub(all.len());
    if undecodable > 0 {
        passed_over.push(format!(
            "{undecodable} whose {} cannot be read",
            if undecodable == 1 { "name" } else { "names" }
        ));
    }
    if !passed_over.is_empty() {
        super::notice::warn(format!(
            "{name}: passed over {} {} that {} not a CSV, JSON or workbook file: {}",
            passed_over.len(),
            if passed_over.len() == 1 {
                "entry"
            } else {
                "entries"
            },
            if passed_over.len() == 1 { "is" } else { "are" },
            listed(&passed_over)
        ));
    }
    let too_much = |member: &str| {
        unreadable(format!(
            "it unpacks to more than {} (at its member {member}), the cap on what a job \
             may unpack (a million devices at 1 KiB a row fit in it): it may be a ZIP \
             bomb. The unpacking was stopped and deleted, and nothing was sent; if it \
             really is a device list, unpack it yourself and give its files",
            limits::size(limits.total_bytes)
        ))
    };
    // The sizes the headers declare refuse a bomb before anything is written; what is
    // written is counted anyway, as a header can understate its member.
    let mut declared = 0u64;
    for member in &wanted {
        if let Ok(entry) = archive.by_name(member) {
            declared = declared.saturating_add(entry.size());
            if declared > limits.left() {
                return Err(too_much(member));
            }
        }
    }
    // On any error below, `dir` is dropped and removed with whatever was unpacked (each
    // member's file is closed first, being declared after it).
    let dir = tempfile::Builder::new()
        .prefix("intune-reset-zip-")
        .tempdir()
        .map_err(io_err)?;
    let mut members = Vec::with_capacity(wanted.len());
    for (i, member) in wanted.into_iter().enumerate() {
        let mut entry = archive
            .by_name(&member)
            .map_err(|e| unreadable(format!("its member {member} cannot be read: {e}")))?;
        let folder = dir.path().join(i.to_string());
        std::fs::create_dir(&folder).map_err(io_err)?;
        let path = folder.join(safe_base(&member));
        let mut out = File::create(&path).map_err(io_err)?;
        let compressed = entry.compressed_size();
        match limits::copy_capped(&mut entry, &mut out, limits, Some(compressed), &mut |_| {}) {
            Ok(_) => {}
            Err(CopyError::OverCap) => return Err(too_much(&member)),
            Err(CopyError::OverRatio { written }) => {
                return Err(unreadable(format!(
                    "its member {member} unpacks to more than {} times its packed size \
                     ({} from {}), which no device list does: it may be a ZIP bomb. The \
                     unpacking was stopped and deleted, and nothing was sent; if it really \
                     is a device list, unpack it yourself and give its files",
                    limits.member_ratio,
                    limits::size(written),
                    limits::size(compressed)
                )));
            }
            Err(CopyError::Io(e)) => {
                return Err(unreadable(format!(
                    "its member {member} cannot be unpacked: {e}"
                )));
            }
        }
        members.push(Member { name: member, path });
    }
    Ok(Extracted {
        dir: Arc::new(dir),
        members,
    })
}

/// Only the member's own name, made safe for every file system: a path inside the
/// archive (`../x`, `C:`) never decides where the copy goes.
fn safe_base(member: &str) -> String {
    member
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(member)
        .chars()
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_job_files_are_members() {
        assert_eq!(entry_kind("DevicesWithInventory_1234.csv"), Entry::Job);
        assert_eq!(entry_kind("exports/Devices.XLSX"), Entry::Job);
        assert_eq!(entry_kind("exports/"), Entry::Packaging);
        assert_eq!(entry_kind("__MACOSX/._Devices.csv"), Entry::Packaging);
        assert_eq!(entry_kind("exports/.DS_Store"), Entry::Packaging);
        assert_eq!(entry_kind(".hidden.csv"), Entry::PassedOver);
        assert_eq!(entry_kind("readme.pdf"), Entry::PassedOver);
        assert_eq!(entry_kind("README"), Entry::PassedOver);
        assert_eq!(entry_kind("older/Export.ZIP"), Entry::Nested);
    }

    /// A ZIP at `dir/name` holding `members`, deflated.
    fn zip_at(dir: &Path, name: &str, members: &[(&str, &[u8])]) -> PathBuf {
        use std::io::Write;
        let path = dir.join(name);
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        for (member, bytes) in members {
            zip.start_file(*member, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn refusal(path: &Path, limits: &Limits) -> String {
        match extract(open_archive(path).unwrap(), "job.zip", limits) {
            Err(JobError::Unreadable { why, .. }) => why,
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("{} was unpacked", path.display()),
        }
    }

    #[test]
    fn a_zip_inside_the_zip_refuses_the_whole_job_naming_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let inner = std::fs::read(zip_at(dir.path(), "inner.zip", &[("b.csv", b"id\n")])).unwrap();
        let outer = zip_at(
            dir.path(),
            "outer.zip",
            &[("a.csv", b"id\n"), ("lists/second.zip", &inner)],
        );
        let why = refusal(&outer, &Limits::default());
        assert!(why.contains("lists/second.zip"), "{why}");
        assert!(why.contains("nothing was sent"), "{why}");
    }

    #[test]
    fn a_member_whose_header_understates_it_is_stopped_before_the_cap() {
        let dir = tempfile::TempDir::new().unwrap();
        let body = "x".repeat(300 << 10);
        let path = zip_at(dir.path(), "job.zip", &[("devices.csv", body.as_bytes())]);
        // Both headers claim 10 bytes: the local header's uncompressed size is at
        // offset 22, the central directory's at 24 (APPNOTE.TXT 4.3.7, 4.3.12).
        let mut bytes = std::fs::read(&path).unwrap();
        let patch = |bytes: &mut Vec<u8>, signature: [u8; 4], at: usize| {
            let start = bytes.windows(4).position(|w| w == signature).unwrap();
            bytes[start + at..start + at + 4].copy_from_slice(&10u32.to_le_bytes());
        };
        patch(&mut bytes, [0x50, 0x4b, 0x03, 0x04], 22);
        patch(&mut bytes, [0x50, 0x4b, 0x01, 0x02], 24);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(open_archive(&path).unwrap().by_index(0).unwrap().size(), 10);

        // The zip crate stops a member at its declared size ("larger than its declared
        // uncompressed size"); were it not to, the count of what is written would.
        let limits = Limits::with_total(64 << 10);
        let why = refusal(&path, &limits);
        assert!(why.contains("devices.csv"), "{why}");
        assert!(limits.written() <= 64 << 10, "{} written", limits.written());
    }

    #[test]
    fn a_zip_declaring_more_than_the_cap_is_refused_before_anything_is_written() {
        let dir = tempfile::TempDir::new().unwrap();
        let body = vec![b'0'; 200 << 10];
        let path = zip_at(dir.path(), "job.zip", &[("a.csv", &body), ("b.csv", &body)]);
        let limits = Limits::with_total(300 << 10);
        let why = refusal(&path, &limits);
        assert!(why.contains("b.csv") && why.contains("ZIP bomb"), "{why}");
        assert_eq!(limits.written(), 0);
    }

    #[test]
    fn the_zips_of_one_job_share_its_cap() {
        let dir = tempfile::TempDir::new().unwrap();
        let body = vec![b'0'; 200 << 10];
        let first = zip_at(dir.path(), "first.zip", &[("a.csv", &body)]);
        let second = zip_at(dir.path(), "second.zip", &[("b.csv", &body)]);
        let limits = Limits::with_total(300 << 10);
        let unpacked = extract(open_archive(&first).unwrap(), "first.zip", &limits);
        assert!(unpacked.is_ok());
        let why = refusal(&second, &limits);
        assert!(why.contains("b.csv"), "{why}");
        let again = limits.fresh();
        assert!(extract(open_archive(&second).unwrap(), "second.zip", &again).is_ok());
    }

    #[test]
    fn a_member_far_beyond_its_packed_size_is_stopped_as_a_bomb() {
        let dir = tempfile::TempDir::new().unwrap();
        let body = vec![0u8; 4 << 20];
        let path = zip_at(dir.path(), "job.zip", &[("devices.csv", &body)]);
        let mut limits = Limits::default();
        limits.ratio_from_bytes = 1 << 20;
        let why = refusal(&path, &limits);
        assert!(why.contains("times its packed size"), "{why}");
        assert!(limits.written() < 4 << 20, "{} written", limits.written());
    }
}
