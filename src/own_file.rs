//! Files that must be the runner's own: the passcodes file, lock files and their
//! holder notes.
//!
//! Run as root from cron, a command that opens `--passcodes p.csv` by name would write
//! through whatever `p.csv` is: a symbolic link to another user's file, a hard link to
//! it, or that user's own header-only file, which they can read. So such a file is
//! either created new (`O_EXCL`, which never follows a link, not even a dangling one)
//! or opened without following a final symbolic link (`O_NOFOLLOW`) and then checked
//! on the opened handle (`fstat`, so nothing can be swapped in between): a regular
//! file, owned by the effective user, with one link. Anything else is refused before
//! it is written, truncated or locked.
//!
//! Windows: a symbolic link or junction (a reparse point) is opened as itself
//! (`FILE_FLAG_OPEN_REPARSE_POINT`) and refused, as is anything but a regular file.
//! What cannot be checked there with the standard library: the file's owner (its
//! security descriptor) and its number of hard links (`number_of_links` is unstable,
//! `windows_by_handle`). Those two rest on the folder's ACL (docs/follow-up.md).
//!
//! Core module: imports nothing of the crate.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::path::Path;

/// Why an existing file is not the runner's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotOwn {
    #[error("it is a symbolic link (or another reparse point), which would be written through")]
    Link,
    #[error("it is not a regular file")]
    NotRegular,
    #[error("it belongs to another user (uid {owner}; this command runs as uid {me})")]
    OtherOwner { owner: u32, me: u32 },
    #[error("it has {links} hard links: another name of the same file may belong to someone else")]
    Links { links: u64 },
}

/// What [`check`] looks at: a file's metadata, as the OS gives it without following a
/// final link (a pure value, so the rule is tested without root or `chown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub link: bool,
    pub regular: bool,
    /// The owner's uid, where the platform has one (Unix).
    pub owner: Option<u32>,
    /// The number of hard links, where the standard library can read it (Unix).
    pub links: Option<u64>,
}

impl Facts {
    pub fn of(meta: &Metadata) -> Facts {
        #[cfg(unix)]
        let (owner, links) = {
            use std::os::unix::fs::MetadataExt;
            (Some(meta.uid()), Some(meta.nlink()))
        };
        #[cfg(not(unix))]
        let (owner, links) = (None, None);
        #[cfg(windows)]
        let link = {
            use std::os::windows::fs::MetadataExt;
            // FILE_ATTRIBUTE_REPARSE_POINT: symbolic links, junctions, mount points.
            meta.file_type().is_symlink() || meta.file_attributes() & 0x400 != 0
        };
        #[cfg(not(windows))]
        let link = meta.file_type().is_symlink();
        Facts {
            link,
            regular: meta.file_type().is_file(),
            owner,
            links,
        }
    }
}

/// The rule: a regular file, not a link, owned by `me` (the effective uid, where there
/// is one), with one link.
pub fn check(facts: Facts, me: Option<u32>) -> Result<(), NotOwn> {
    if facts.link {
        return Err(NotOwn::Link);
    }
    if !facts.regular {
        return Err(NotOwn::NotRegular);
    }
    if let (Some(owner), Some(me)) = (facts.owner, me)
        && owner != me
    {
        return Err(NotOwn::OtherOwner { owner, me });
    }
    match facts.links {
        Some(links) if links != 1 => Err(NotOwn::Links { links }),
        _ => Ok(()),
    }
}

/// The effective user of this process (Unix); `None` where files have no uid.
pub fn effective_user() -> Option<u32> {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail (POSIX).
        Some(unsafe { libc::geteuid() })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Whether the file at `path` (not followed) is the runner's own; `Ok(None)` when
/// nothing is there.
pub fn inspect(path: &Path) -> io::Result<Option<Result<(), NotOwn>>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(check(Facts::of(&meta), effective_user()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// An error saying why `path` is refused, as an `io::Error` for callers that report
/// I/O errors with their path.
fn refused(why: NotOwn) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, why)
}

/// Options that never follow a final symbolic link and never block on a FIFO.
fn no_follow(options: &mut OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    // FILE_FLAG_OPEN_REPARSE_POINT: the link itself is opened, then refused below.
    #[cfg(windows)]
    std::os::windows::fs::OpenOptionsExt::custom_flags(options, 0x0020_0000);
}

/// Checks an opened file by its handle: what was opened is what is checked.
fn checked(file: File) -> io::Result<File> {
    check(Facts::of(&file.metadata()?), effective_user()).map_err(refused)?;
    Ok(file)
}

/// Creates a new file (refusing any existing name, a link included), readable and
/// writable by its owner only on Unix.
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    no_follow(&mut options);
    checked(options.open(path)?)
}

/// Opens an existing file for reading and writing, without truncating it, if it is the
/// runner's own (else `PermissionDenied` naming why).
pub fn open_existing(path: &Path) -> io::Result<File> {
    // A FIFO or device is refused before it is opened, a link is not followed.
    if let Some(Err(why)) = inspect(path)? {
        return Err(refused(why));
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    no_follow(&mut options);
    checked(options.open(path).map_err(link_refused)?)
}

/// Opens the file, creating it if it is missing (a lock file): never truncated, never
/// through a link, only the runner's own.
pub fn open_or_create(path: &Path) -> io::Result<File> {
    match create_new(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => open_existing(path),
        other => other,
    }
}

/// `O_NOFOLLOW` on a link fails with `ELOOP` (Linux, macOS), which says nothing to a
/// person: it becomes the sentence.
fn link_refused(e: io::Error) -> io::Error {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return refused(NotOwn::Link);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINE: Facts = Facts {
        link: false,
        regular: true,
        owner: Some(1000),
        links: Some(1),
    };

    #[test]
    fn only_a_regular_file_of_ones_own_with_one_link_passes() {
        assert_eq!(check(MINE, Some(1000)), Ok(()));
        assert_eq!(
            check(Facts { link: true, ..MINE }, Some(1000)),
            Err(NotOwn::Link)
        );
        assert_eq!(
            check(
                Facts {
                    regular: false,
                    ..MINE
                },
                Some(1000)
            ),
            Err(NotOwn::NotRegular)
        );
        // Root from cron, the file another user's: refused, root or not.
        assert_eq!(
            check(MINE, Some(0)),
            Err(NotOwn::OtherOwner { owner: 1000, me: 0 })
        );
        assert_eq!(
            check(
                Facts {
                    links: Some(2),
                    ..MINE
                },
                Some(1000)
            ),
            Err(NotOwn::Links { links: 2 })
        );
        // Windows: no owner and no link count to read; the rest still holds.
        let windows = Facts {
            owner: None,
            links: None,
            ..MINE
        };
        assert_eq!(check(windows, None), Ok(()));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_or_a_hard_link_is_never_opened_and_its_target_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("theirs.csv");
        std::fs::write(&target, "their data\n").unwrap();
        let symlink = dir.path().join("symlink.csv");
        std::os::unix::fs::symlink(&target, &symlink).unwrap();
        let dangling = dir.path().join("dangling.csv");
        std::os::unix::fs::symlink(dir.path().join("absent"), &dangling).unwrap();
        let hard = dir.path().join("hard.csv");
        std::fs::hard_link(&target, &hard).unwrap();
        for (path, why) in [
            (&symlink, NotOwn::Link),
            (&dangling, NotOwn::Link),
            (&hard, NotOwn::Links { links: 2 }),
        ] {
            let e = open_or_create(path).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{path:?}: {e}");
            assert_eq!(e.to_string(), why.to_string());
            assert!(create_new(path).is_err());
        }
        assert!(!dir.path().join("absent").exists());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "their data\n");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_private_and_an_own_file_is_opened_untruncated() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.lock");
        drop(open_or_create(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, "kept\n").unwrap();
        drop(open_or_create(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept\n");
        // A FIFO is refused without blocking.
        let fifo = dir.path().join("fifo");
        let name = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(fifo.as_os_str()))
            .unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let e = open_existing(&fifo).unwrap_err();
        assert_eq!(e.to_string(), NotOwn::NotRegular.to_string());
    }
}
