//! How much reading a job may put on disk: what a ZIP unpacks and what a pipe or FIFO
//! copies into the private temporary folder. A ZIP bomb (a few kilobytes unpacking to
//! gigabytes), a member whose header understates its size, or an endless pipe
//! (`plan /dev/stdin < /dev/zero`) would otherwise fill the disk before a row is read.
//!
//! The caps count the bytes actually written, never a size a header declares (a header
//! can lie); declared sizes are only used to refuse a bomb before anything is written.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The production cap on what one reading of a job may write into the private folder.
/// The largest realistic job is about a million devices (the largest Intune tenants),
/// and a row of the admin center's widest export (every inventory column) is well
/// under 1 KiB: 1,000,000 rows × 1 KiB is 1 GiB, so no real device list comes near it,
/// while a disk is rarely so full that 1 GiB more breaks it.
pub const DEFAULT_TOTAL_BYTES: u64 = 1 << 30;
/// A CSV of device ids compresses about 5:1, a workbook's XML about 10:1; only a run of
/// the same bytes compresses past a few hundred to one (deflate stops near 1,032:1).
pub const DEFAULT_MEMBER_RATIO: u64 = 250;
/// The ratio is judged only past this much of a member: a small file of repeated
/// lines (a header and blank rows) may compress very well and harms nothing.
pub const DEFAULT_RATIO_FROM_BYTES: u64 = 64 << 20;

/// What a reading of a job may write to disk, and what it has written so far.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The bytes one reading of a job may write in all: every member of every ZIP it
    /// unpacks and every pipe it copies (`run`'s own copy of its job files counts
    /// apart, against the same cap).
    pub total_bytes: u64,
    /// A ZIP member unpacking to more than this many times its compressed size is
    /// refused, once it has unpacked `ratio_from_bytes`.
    pub member_ratio: u64,
    /// See `member_ratio`.
    pub ratio_from_bytes: u64,
    /// The bytes written so far, shared by the clones of one reading ([`Limits::fresh`]
    /// starts another): a job of three ZIPs shares one cap, not three.
    written: Arc<AtomicU64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total_bytes: DEFAULT_TOTAL_BYTES,
            member_ratio: DEFAULT_MEMBER_RATIO,
            ratio_from_bytes: DEFAULT_RATIO_FROM_BYTES,
            written: Arc::default(),
        }
    }
}

/// Two limits are the same caps; what each has counted is not part of the setting.
impl PartialEq for Limits {
    fn eq(&self, other: &Self) -> bool {
        (self.total_bytes, self.member_ratio, self.ratio_from_bytes)
            == (
                other.total_bytes,
                other.member_ratio,
                other.ratio_from_bytes,
            )
    }
}

impl Eq for Limits {}

impl Limits {
    /// The production ratio check with a lower cap, so that a test stops a ZIP bomb or
    /// an endless pipe after a few kilobytes.
    #[cfg(test)]
    pub fn with_total(total_bytes: u64) -> Limits {
        Limits {
            total_bytes,
            ..Limits::default()
        }
    }

    /// The same caps with nothing counted yet: one more reading of the job (`run` reads
    /// its copy more than once, and each reading unpacks its ZIPs anew).
    pub fn fresh(&self) -> Limits {
        Limits {
            written: Arc::default(),
            ..self.clone()
        }
    }

    /// The bytes written so far against `total_bytes`.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// The bytes this reading may still write.
    pub fn left(&self) -> u64 {
        self.total_bytes.saturating_sub(self.written())
    }
}

/// `bytes` as people read it: `2 GiB`, `1.5 MiB`, `300 bytes`.
pub fn size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            let value = bytes as f64 / scale as f64;
            return if bytes.is_multiple_of(scale) {
                format!("{} {unit}", bytes / scale)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

/// Why a job file was refused at the cap, `piped` or not: the sentence after
/// "cannot use job file <name>:".
pub fn over_cap(total_bytes: u64, piped: bool) -> String {
    let what = if piped {
        "what comes through it goes on past"
    } else {
        "the job files together are larger than"
    };
    format!(
        "{what} {} (the cap on what a job may copy into its private temporary folder; \
         a million devices at 1 KiB a row fit in it). The copy was stopped and deleted, \
         and nothing was sent: check what feeds it, or give a file of the devices",
        size(total_bytes)
    )
}

/// Why a copy stopped.
#[derive(Debug)]
pub enum CopyError {
    Io(io::Error),
    /// More than the budget left would have been written.
    OverCap,
    /// The member unpacked to more than the ratio allows.
    OverRatio {
        written: u64,
    },
}

impl From<io::Error> for CopyError {
    fn from(e: io::Error) -> Self {
        CopyError::Io(e)
    }
}

/// Copies `input` to `output`, counting every byte written against `limits`: it stops
/// before the write that would pass `total_bytes` (a source that ends exactly there is
/// whole). `compressed` is a ZIP member's packed size, for the ratio guard. `each` sees
/// every chunk written (a hash). Returns the bytes written.
pub fn copy_capped(
    input: &mut dyn Read,
    output: &mut dyn Write,
    limits: &Limits,
    compressed: Option<u64>,
    each: &mut dyn FnMut(&[u8]),
) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut written = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Io(e)),
        };
        if n as u64 > limits.left() {
            return Err(CopyError::OverCap);
        }
        each(&buf[..n]);
        output.write_all(&buf[..n])?;
        written += n as u64;
        limits.written.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(compressed) = compressed
            && written > limits.ratio_from_bytes
            && written / compressed.max(1) > limits.member_ratio
        {
            return Err(CopyError::OverRatio { written });
        }
    }
    output.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_stops_at_its_budget_and_one_that_ends_there_is_whole() {
        let mut out = Vec::new();
        let limits = Limits::with_total(100);
        let whole = copy_capped(&mut &[7u8; 100][..], &mut out, &limits, None, &mut |_| {});
        assert_eq!(whole.ok(), Some(100));
        let mut out = Vec::new();
        let limits = Limits::with_total(1 << 20);
        let over = copy_capped(&mut io::repeat(0), &mut out, &limits, None, &mut |_| {});
        assert!(matches!(over, Err(CopyError::OverCap)));
        assert!(out.len() <= 1 << 20);
        assert_eq!(limits.written(), out.len() as u64);
    }

    #[test]
    fn the_copies_of_one_reading_share_its_cap_and_a_fresh_reading_starts_again() {
        let limits = Limits::with_total(150);
        let shared = limits.clone();
        let mut out = Vec::new();
        let first = copy_capped(&mut &[1u8; 100][..], &mut out, &limits, None, &mut |_| {});
        assert_eq!(first.ok(), Some(100));
        let second = copy_capped(&mut &[2u8; 100][..], &mut out, &shared, None, &mut |_| {});
        assert!(matches!(second, Err(CopyError::OverCap)));
        let again = limits.fresh();
        let third = copy_capped(&mut &[3u8; 100][..], &mut out, &again, None, &mut |_| {});
        assert_eq!(third.ok(), Some(100));
    }

    #[test]
    fn a_member_unpacking_far_beyond_its_compressed_size_is_stopped() {
        let limits = Limits {
            member_ratio: 100,
            ratio_from_bytes: 1 << 20,
            ..Limits::default()
        };
        let mut out = Vec::new();
        let stopped = copy_capped(
            &mut io::repeat(0).take(8 << 20),
            &mut out,
            &limits,
            Some(1024),
            &mut |_| {},
        );
        assert!(matches!(stopped, Err(CopyError::OverRatio { .. })));
        assert!(out.len() < 2 << 20);
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(size(DEFAULT_TOTAL_BYTES), "1 GiB");
        assert_eq!(size(3 << 19), "1.5 MiB");
        assert_eq!(size(300), "300 bytes");
    }
}
