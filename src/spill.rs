//! What grows with a job, kept flat: the per-device indexes of a run (which row claimed
//! each device, where each report row lies) hold a few thousand entries in memory and
//! the rest in a temporary file, so a run's memory does not grow with its devices
//! (docs/performance.md: 100,000 devices by id).
//!
//! - [`SpillMap`]: a set of 64-bit keys (already hashes), each with the row that
//!   claimed it. In memory up to [`IN_MEMORY`] keys, then an open-addressing table in
//!   an anonymous temporary file, read and written in place (a probe is one positioned
//!   read of 32 bytes, which the operating system's cache serves).
//! - [`SpillSort`]: fixed-size records pushed in any order and read back sorted: sorted
//!   chunks of [`IN_MEMORY`] records written to a temporary file, merged at the end.
//!
//! A temporary file that cannot be created or written (no temporary folder, a full
//! disk) is not an error: the index stays in memory, as it was before it spilled, and
//! says so once in the log. Only a temporary file that can no longer be read back loses
//! the index; that is an error for the caller, which sends nothing it cannot check.

use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};

/// Entries held in memory before an index moves to its temporary file: about 100 KB
/// for a [`SpillMap`], 200 KB for a [`SpillSort`] of report places.
pub const IN_MEMORY: usize = 8192;

/// The row that claimed a key: the job file (its position among the run's files), its
/// row, and which of the row's devices (0 for the row itself; `n` for the n-th device a
/// user row expanded to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    pub file: u32,
    pub row: u64,
    pub sub: u32,
}

/// The keys are already hashes: used as they are.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type MemMap = HashMap<u64, Holder, BuildHasherDefault<PassThrough>>;

/// Keys and the row that claimed each, flat in memory however many there are.
pub struct SpillMap {
    mem: MemMap,
    disk: Option<DiskTable>,
    /// Keys held in memory before spilling; `usize::MAX` once spilling failed.
    limit: usize,
    /// The temporary file could not be read back: the index is lost, and every claim
    /// from then on is an error (an answer without the lost keys could be wrong).
    lost: bool,
}

impl Default for SpillMap {
    fn default() -> Self {
        SpillMap::with_limit(IN_MEMORY)
    }
}

impl SpillMap {
    /// Spills once more than `limit` keys are held (tests use a small one).
    pub fn with_limit(limit: usize) -> SpillMap {
        SpillMap {
            mem: MemMap::default(),
            disk: None,
            limit: limit.max(1),
            lost: false,
        }
    }

    /// The earlier holder of `key`, or `None` after recording `here` for it.
    pub fn claim(&mut self, key: u64, here: Holder) -> io::Result<Option<Holder>> {
        if self.lost {
            return Err(io::Error::other(
                "the temporary index of devices could not be read back",
            ));
        }
        let claimed = self.claim_inner(key, here);
        self.lost = claimed.is_err();
        claimed
    }

    fn claim_inner(&mut self, key: u64, here: Holder) -> io::Result<Option<Holder>> {
        if let Some(disk) = &mut self.disk {
            match disk.claim(key, here) {
                Ok(found) => return Ok(found),
                Err(e) => {
                    // Back to memory with what the file holds. The failed claim may
                    // have written `here` before failing (a growth that failed): it
                    // is then this claim's own, not an earlier holder.
                    self.mem = disk.entries()?.into_iter().collect();
                    self.disk = None;
                    self.limit = usize::MAX;
                    tracing::warn!(
                        "the temporary index of devices could not be written ({e}); it is kept in memory from here on"
                    );
                    if self.mem.get(&key) == Some(&here) {
                        return Ok(None);
                    }
                }
            }
        }
        if let Some(earlier) = self.mem.get(&key) {
            return Ok(Some(*earlier));
        }
        if self.mem.len() >= self.limit {
            match self.spill() {
                Ok(()) => return self.claim_inner(key, here),
                Err(e) => {
                    self.limit = usize::MAX;
                    tracing::warn!(
                        "no temporary file for the index of devices ({e}); it is kept in memory"
                    );
                }
            }
        }
        self.mem.insert(key, here);
        Ok(None)
    }

    /// The keys held, in no order (tests).
    pub fn len(&self) -> usize {
        match &self.disk {
            Some(disk) => disk.len as usize,
            None => self.mem.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the index lives in its temporary file (tests).
    pub fn spilled(&self) -> bool {
        self.disk.is_some()
    }

    fn spill(&mut self) -> io::Result<()> {
        let buckets = (self.mem.len() * 4).next_power_of_two();
        let mut disk = DiskTable::create(buckets.trailing_zeros(), PROBE_WINDOW, false)?;
        for (key, holder) in &self.mem {
            disk.claim(*key, *holder)?;
        }
        self.disk = Some(disk);
        // A new map, not `clear()`: the old one's buckets go back to the allocator.
        self.mem = MemMap::default();
        Ok(())
    }
}

/// Bytes of one bucket: key (8), file (4), sub (4), row (8), 1 when used (8),
/// little-endian.
const BUCKET: usize = 32;

/// An open-addressing table (linear probing, at most half full) in a temporary file.
/// A key's home bucket is its top bits, so doubling the table sends the entries of a
/// stretch of the old table to one stretch of the new one: the growth reads the old
/// table and writes the new one nearly in order, through a window of buckets held in
/// memory.
struct DiskTable {
    file: File,
    /// The table holds `1 << bits` buckets.
    bits: u32,
    len: u64,
    window: Window,
}

/// Buckets read at once by a claim (one read covers most probe sequences).
const PROBE_WINDOW: u64 = 4;
/// Buckets held at once while a growth fills the new table (128 KB).
const GROW_WINDOW: u64 = 4096;

/// The buckets `start..start + loaded` as the file holds them (plus writes not yet
/// written when `write_back`).
struct Window {
    start: u64,
    loaded: u64,
    buf: Vec<u8>,
    size: u64,
    /// Writes stay in `buf` until the window moves (a growth); otherwise each write
    /// goes to the file at once too.
    write_back: bool,
    dirty: bool,
}

impl DiskTable {
    /// `1 << bits` empty buckets, written out in full so the disk space is taken now,
    /// not at a later write.
    fn create(bits: u32, window: u64, write_back: bool) -> io::Result<DiskTable> {
        let bits = bits.max(6);
        let mut file = tempfile::tempfile()?;
        let zeros = vec![0u8; 64 * 1024];
        let mut left = (1usize << bits) * BUCKET;
        while left > 0 {
            let n = left.min(zeros.len());
            file.write_all(&zeros[..n])?;
            left -= n;
        }
        Ok(DiskTable {
            file,
            bits,
            len: 0,
            window: Window {
                start: 0,
                loaded: 0,
                buf: vec![0u8; window as usize * BUCKET],
                size: window,
                write_back,
                dirty: false,
            },
        })
    }

    fn buckets(&self) -> u64 {
        1 << self.bits
    }

    fn claim(&mut self, key: u64, here: Holder) -> io::Result<Option<Holder>> {
        let mut at = key >> (64 - self.bits);
        loop {
            match self.bucket(at)? {
                Some((k, holder)) if k == key => return Ok(Some(holder)),
                Some(_) => at = (at + 1) & (self.buckets() - 1),
                None => {
                    self.put(at, &encode_bucket(key, here))?;
                    self.len += 1;
                    if self.len * 2 > self.buckets() {
                        self.grow()?;
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Bucket `at`, read through the window.
    fn bucket(&mut self, at: u64) -> io::Result<Option<(u64, Holder)>> {
        self.cover(at)?;
        let i = (at - self.window.start) as usize * BUCKET;
        Ok(decode_bucket(&self.window.buf[i..i + BUCKET]))
    }

    fn put(&mut self, at: u64, bucket: &[u8; BUCKET]) -> io::Result<()> {
        self.cover(at)?;
        let i = (at - self.window.start) as usize * BUCKET;
        self.window.buf[i..i + BUCKET].copy_from_slice(bucket);
        if self.window.write_back {
            self.window.dirty = true;
            Ok(())
        } else {
            write_at(&self.file, bucket, at * BUCKET as u64)
        }
    }

    /// Moves the window over bucket `at` (a little before it when it is wide, for the
    /// growth's entries that come slightly out of order).
    fn cover(&mut self, at: u64) -> io::Result<()> {
        let w = &self.window;
        if at >= w.start && at < w.start + w.loaded {
            return Ok(());
        }
        self.flush()?;
        let back = if self.window.size > PROBE_WINDOW {
            64
        } else {
            0
        };
        let start = at.saturating_sub(back);
        let loaded = self.window.size.min(self.buckets() - start);
        let bytes = loaded as usize * BUCKET;
        read_at(
            &self.file,
            &mut self.window.buf[..bytes],
            start * BUCKET as u64,
        )?;
        self.window.start = start;
        self.window.loaded = loaded;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let w = &mut self.window;
        if w.dirty {
            let bytes = w.loaded as usize * BUCKET;
            write_at(&self.file, &w.buf[..bytes], w.start * BUCKET as u64)?;
            w.dirty = false;
        }
        Ok(())
    }

    /// Moves every entry to a table twice the size, read in one pass; the new table
    /// is written nearly in order, through its window.
    fn grow(&mut self) -> io::Result<()> {
        let mut bigger = DiskTable::create(self.bits + 1, GROW_WINDOW, true)?;
        self.each_entry(&mut |key, holder| bigger.claim(key, holder).map(drop))?;
        bigger.flush()?;
        bigger.window = Window {
            start: 0,
            loaded: 0,
            buf: vec![0u8; PROBE_WINDOW as usize * BUCKET],
            size: PROBE_WINDOW,
            write_back: false,
            dirty: false,
        };
        *self = bigger;
        Ok(())
    }

    /// Every entry (to fall back to memory).
    fn entries(&mut self) -> io::Result<Vec<(u64, Holder)>> {
        self.flush()?;
        let mut out = Vec::with_capacity(self.len as usize);
        self.each_entry(&mut |key, holder| {
            out.push((key, holder));
            Ok(())
        })?;
        Ok(out)
    }

    /// Every entry, in the file's order (the window holds no unwritten bucket outside
    /// a growth, and a growth reads the table it leaves).
    fn each_entry(&self, each: &mut dyn FnMut(u64, Holder) -> io::Result<()>) -> io::Result<()> {
        let mut chunk = vec![0u8; 2048 * BUCKET];
        let total = self.buckets() * BUCKET as u64;
        let mut offset = 0u64;
        while offset < total {
            let n = (total - offset).min(chunk.len() as u64) as usize;
            read_at(&self.file, &mut chunk[..n], offset)?;
            for (key, holder) in chunk[..n].chunks_exact(BUCKET).filter_map(decode_bucket) {
                each(key, holder)?;
            }
            offset += n as u64;
        }
        Ok(())
    }
}

fn encode_bucket(key: u64, holder: Holder) -> [u8; BUCKET] {
    let mut b = [0u8; BUCKET];
    b[0..8].copy_from_slice(&key.to_le_bytes());
    b[8..12].copy_from_slice(&holder.file.to_le_bytes());
    b[12..16].copy_from_slice(&holder.sub.to_le_bytes());
    b[16..24].copy_from_slice(&holder.row.to_le_bytes());
    b[24..32].copy_from_slice(&1u64.to_le_bytes());
    b
}

fn decode_bucket(b: &[u8]) -> Option<(u64, Holder)> {
    let word = |r: std::ops::Range<usize>| {
        let mut x = [0u8; 8];
        x[..r.len()].copy_from_slice(&b[r]);
        u64::from_le_bytes(x)
    };
    (word(24..32) == 1).then(|| {
        (
            word(0..8),
            Holder {
                file: word(8..12) as u32,
                sub: word(12..16) as u32,
                row: word(16..24),
            },
        )
    })
}

/// A record [`SpillSort`] keeps: fixed size, ordered as it must be read back.
pub trait Record: Copy + Ord {
    const SIZE: usize;
    fn put(&self, out: &mut [u8]);
    fn get(bytes: &[u8]) -> Self;
}

/// Records pushed in any order, read back sorted, with at most [`IN_MEMORY`] of them
/// (and a small buffer per [`IN_MEMORY`] records pushed) in memory.
pub struct SpillSort<R> {
    chunk: Vec<R>,
    file: Option<File>,
    /// Records in each sorted run written to `file`, in order.
    runs: Vec<u64>,
    written: u64,
    limit: usize,
}

impl<R: Record> Default for SpillSort<R> {
    fn default() -> Self {
        SpillSort::with_limit(IN_MEMORY)
    }
}

impl<R: Record> SpillSort<R> {
    pub fn with_limit(limit: usize) -> SpillSort<R> {
        SpillSort {
            chunk: Vec::new(),
            file: None,
            runs: Vec::new(),
            written: 0,
            limit: limit.max(1),
        }
    }

    pub fn push(&mut self, record: R) {
        self.chunk.push(record);
        if self.chunk.len() >= self.limit
            && let Err(e) = self.write_run()
        {
            self.limit = usize::MAX;
            tracing::warn!(
                "no temporary file for the report's row order ({e}); it is kept in memory"
            );
        }
    }

    /// Whether some records went to the temporary file (tests).
    pub fn spilled(&self) -> bool {
        !self.runs.is_empty()
    }

    fn write_run(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(tempfile::tempfile()?);
        }
        let Some(file) = &self.file else {
            return Ok(());
        };
        self.chunk.sort_unstable();
        let mut bytes = vec![0u8; self.chunk.len() * R::SIZE];
        for (record, out) in self.chunk.iter().zip(bytes.chunks_exact_mut(R::SIZE)) {
            record.put(out);
        }
        write_at(file, &bytes, self.written)?;
        self.written += bytes.len() as u64;
        self.runs.push(self.chunk.len() as u64);
        self.chunk = Vec::new();
        Ok(())
    }

    /// Every record pushed, in order.
    pub fn into_sorted(mut self) -> io::Result<Sorted<R>> {
        if self.runs.is_empty() {
            self.chunk.sort_unstable();
            return Ok(Sorted::Memory(self.chunk.into_iter()));
        }
        if !self.chunk.is_empty() {
            // In memory if this last run cannot be written: merged with the others.
            let _ = self.write_run();
        }
        let Some(file) = self.file else {
            unreachable!("runs were written to the file");
        };
        let mut readers = Vec::with_capacity(self.runs.len());
        let mut start = 0u64;
        for count in self.runs {
            readers.push(RunReader {
                next: start,
                left: count,
                buffer: Vec::new(),
            });
            start += count * R::SIZE as u64;
        }
        let mut merge = Merge {
            file,
            readers,
            heap: BinaryHeap::new(),
            rest: std::mem::take(&mut self.chunk),
        };
        merge.rest.sort_unstable();
        merge.rest.reverse();
        for i in 0..merge.readers.len() {
            merge.refill(i)?;
        }
        if let Some(r) = merge.rest.last() {
            merge.heap.push(std::cmp::Reverse((*r, usize::MAX)));
        }
        Ok(Sorted::Merged(merge))
    }
}

/// The records of a [`SpillSort`], in order.
pub enum Sorted<R> {
    Memory(std::vec::IntoIter<R>),
    Merged(Merge<R>),
}

impl<R: Record> Iterator for Sorted<R> {
    type Item = io::Result<R>;
    fn next(&mut self) -> Option<io::Result<R>> {
        match self {
            Sorted::Memory(it) => it.next().map(Ok),
            Sorted::Merged(m) => m.next(),
        }
    }
}

/// A k-way merge of the sorted runs (and of records kept in memory).
pub struct Merge<R> {
    file: File,
    readers: Vec<RunReader<R>>,
    heap: BinaryHeap<std::cmp::Reverse<(R, usize)>>,
    /// Records that could not be written, sorted, smallest last.
    rest: Vec<R>,
}

struct RunReader<R> {
    next: u64,
    left: u64,
    /// Read ahead, smallest last.
    buffer: Vec<R>,
}

/// Records read from a run at a time.
const READ_AHEAD: u64 = 128;

impl<R: Record> Merge<R> {
    /// Puts run `i`'s next record on the heap, reading ahead when its buffer is empty.
    fn refill(&mut self, i: usize) -> io::Result<()> {
        let reader = &mut self.readers[i];
        if reader.buffer.is_empty() && reader.left > 0 {
            let n = reader.left.min(READ_AHEAD);
            let mut bytes = vec![0u8; n as usize * R::SIZE];
            read_at(&self.file, &mut bytes, reader.next)?;
            reader.next += bytes.len() as u64;
            reader.left -= n;
            reader.buffer = bytes.chunks_exact(R::SIZE).rev().map(R::get).collect();
        }
        if let Some(r) = reader.buffer.pop() {
            self.heap.push(std::cmp::Reverse((r, i)));
        }
        Ok(())
    }

    fn next(&mut self) -> Option<io::Result<R>> {
        let std::cmp::Reverse((record, from)) = self.heap.pop()?;
        let refilled = if from == usize::MAX {
            self.rest.pop();
            if let Some(r) = self.rest.last() {
                self.heap.push(std::cmp::Reverse((*r, usize::MAX)));
            }
            Ok(())
        } else {
            self.refill(from)
        };
        Some(refilled.map(|()| record))
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(windows)]
fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn holder(file: u32, row: u64) -> Holder {
        Holder { file, row, sub: 0 }
    }

    #[test]
    fn a_spilled_map_answers_as_the_memory_one_did() {
        let mut map = SpillMap::with_limit(16);
        for k in 0..1000u64 {
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert_eq!(map.claim(key, holder(1, k)).unwrap(), None, "key {k}");
        }
        assert!(map.spilled());
        assert_eq!(map.len(), 1000);
        for k in 0..1000u64 {
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert_eq!(map.claim(key, holder(2, 0)).unwrap(), Some(holder(1, k)));
        }
        assert_eq!(map.len(), 1000, "a key claimed again is not added");
    }

    #[test]
    fn keys_that_share_a_bucket_are_kept_apart() {
        // Equal low bits: one probe chain, across the table's growths.
        let mut map = SpillMap::with_limit(1);
        for k in 0..300u64 {
            assert_eq!(map.claim(k << 40, holder(0, k)).unwrap(), None);
        }
        for k in 0..300u64 {
            assert_eq!(
                map.claim(k << 40, holder(9, 9)).unwrap(),
                Some(holder(0, k))
            );
        }
    }

    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct Pair(u64, u32);

    impl Record for Pair {
        const SIZE: usize = 12;
        fn put(&self, out: &mut [u8]) {
            out[..8].copy_from_slice(&self.0.to_le_bytes());
            out[8..].copy_from_slice(&self.1.to_le_bytes());
        }
        fn get(b: &[u8]) -> Self {
            Pair(
                u64::from_le_bytes(b[..8].try_into().unwrap()),
                u32::from_le_bytes(b[8..12].try_into().unwrap()),
            )
        }
    }

    proptest! {
        #[test]
        fn the_map_remembers_the_first_holder_of_every_key(
            keys in proptest::collection::vec(0u64..64, 0..300),
            limit in 1usize..40,
        ) {
            let mut map = SpillMap::with_limit(limit);
            let mut model = std::collections::HashMap::new();
            for (i, key) in keys.iter().enumerate() {
                // Low bits collide often: keys are spread over 64 values times a shift.
                let key = key << 33 | key;
                let expected = model.get(&key).copied();
                let got = map.claim(key, holder(0, i as u64)).unwrap();
                prop_assert_eq!(got, expected);
                model.entry(key).or_insert(holder(0, i as u64));
            }
            prop_assert_eq!(map.len(), model.len());
        }

        #[test]
        fn records_come_back_sorted_whatever_the_runs(
            records in proptest::collection::vec((0u64..50, any::<u32>()), 0..500),
            limit in 1usize..60,
        ) {
            let mut sort = SpillSort::with_limit(limit);
            for (a, b) in &records {
                sort.push(Pair(*a, *b));
            }
            let back: Vec<Pair> = sort.into_sorted().unwrap().map(Result::unwrap).collect();
            let mut expected: Vec<Pair> = records.iter().map(|(a, b)| Pair(*a, *b)).collect();
            expected.sort();
            prop_assert_eq!(back, expected);
        }
    }
}
