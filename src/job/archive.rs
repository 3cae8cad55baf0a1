//! A `.zip` of job files, such as the Intune admin center's export download (a ZIP
//! holding one CSV). Each CSV, JSON or workbook inside is a job file; other entries
//! (folders, macOS `__MACOSX/` resource forks, hidden files, a readme in another
//! format) are passed over.
//!
//! The members are extracted once into a private temporary folder (created readable
//! by its owner only, as the job may name users; removed when the last job file read
//! from it is dropped), each under its own name so that its extension still tells its
//! format. Reading then works on the copy as on any file: streamed, and a JSON document
//! can be read twice.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::JobError;

/// The extensions of the files a ZIP's job files may have.
const JOB_EXTENSIONS: [&str; 11] = [
    "csv", "tsv", "txt", "json", "jsonl", "ndjson", "xlsx", "xlsm", "xlsb", "xls", "ods",
];

/// A member unpacking to more than this is refused (a ZIP bomb would fill the disk).
const MAX_MEMBER_BYTES: u64 = 4 << 30;

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

fn is_job_member(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    if name.ends_with('/') || name.starts_with("__MACOSX/") || base.starts_with('.') {
        return false;
    }
    base.rsplit_once('.').is_some_and(|(_, ext)| {
        JOB_EXTENSIONS
            .iter()
            .any(|known| ext.eq_ignore_ascii_case(known))
    })
}

/// Extracts the job files of the archive at `path` (`name` in messages).
pub fn extract(mut archive: Archive, name: &str) -> Result<Extracted, JobError> {
    let unreadable = |why: String| JobError::Unreadable {
        path: name.to_owned(),
        why,
    };
    let io_err = |e: io::Error| JobError::Io {
        path: name.to_owned(),
        message: e.to_string(),
    };
    let all = entry_names(&archive);
    let mut wanted: Vec<String> = all.iter().filter(|n| is_job_member(n)).cloned().collect();
    wanted.sort();
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
    let dir = tempfile::Builder::new()
        .prefix("intune-reset-zip-")
        .tempdir()
        .map_err(io_err)?;
    let mut members = Vec::with_capacity(wanted.len());
    for (i, member) in wanted.into_iter().enumerate() {
        let mut entry = archive
            .by_name(&member)
            .map_err(|e| unreadable(format!("its member {member} cannot be read: {e}")))?;
        // Only the member's own name, made safe for every file system: a path inside
        // the archive (`../x`, `C:`) never decides where the copy goes.
        let base: String = member
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&member)
            .chars()
            .map(|c| match c {
                '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
                c if c.is_control() => '_',
                c => c,
            })
            .collect();
        let folder = dir.path().join(i.to_string());
        std::fs::create_dir(&folder).map_err(io_err)?;
        let path = folder.join(&base);
        let mut out = File::create(&path).map_err(io_err)?;
        let copied = io::copy(&mut (&mut entry).take(MAX_MEMBER_BYTES + 1), &mut out)
            .map_err(|e| unreadable(format!("its member {member} cannot be unpacked: {e}")))?;
        if copied > MAX_MEMBER_BYTES {
            return Err(unreadable(format!(
                "its member {member} unpacks to more than {} GiB, far more than any device \
                 list (a million devices are about 120 MB); unpack it yourself if it is one",
                MAX_MEMBER_BYTES >> 30
            )));
        }
        members.push(Member { name: member, path });
    }
    Ok(Extracted {
        dir: Arc::new(dir),
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_job_files_are_members() {
        assert!(is_job_member("DevicesWithInventory_1234.csv"));
        assert!(is_job_member("exports/Devices.XLSX"));
        assert!(!is_job_member("exports/"));
        assert!(!is_job_member("__MACOSX/._Devices.csv"));
        assert!(!is_job_member(".hidden.csv"));
        assert!(!is_job_member("readme.pdf"));
    }
}
