//! A read-only tantivy [`Directory`] over one segment index blob
//! ([`super::segment`]): the index's files are slices of the blob's data,
//! served from the head's hot ranges when a read falls inside one, and
//! otherwise from the data, in RAM or read on demand.
//!
//! **Why blocks on demand.** An archived index is read through ranged
//! reads of its archive (a GET each on S3). Opening and warming it reads
//! only the hot ranges, which came with the head; a query then reads a
//! term's postings and a few doc store blocks. A read outside the hot
//! ranges is widened to whole [`DATA_BLOCK_BYTES`] blocks, read in one
//! ranged read, each block checked against its crc32c in the head, and
//! kept in a small cache ([`BLOCK_CACHE_BYTES_MAX`] per index, least
//! recently used dropped first), so the next query of the same term reads
//! nothing.
//!
//! **Why it is read-only and lock-free.** Search never writes a sealed
//! segment's index; writes fail, and the reader's lock (tantivy takes
//! one while loading segment metadata) is a no-op, since nothing else can
//! change the files.
//!
//! **Recording.** The builder opens each new index once through a
//! recording directory, which logs every read; those reads become the
//! hot ranges ([`BlobDirectory::recording`]).

use super::segment::{Head, DATA_BLOCK_BYTES};
use super::Corruption;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, WatchCallback, WatchHandle, WritePtr,
};
use tantivy::HasLen;

/// Data blocks one index keeps after reading them on demand.
pub const BLOCK_CACHE_BYTES_MAX: u64 = 8 << 20;
const _: () = assert!(BLOCK_CACHE_BYTES_MAX >= 4 * DATA_BLOCK_BYTES);

/// The most reads one recording keeps (opening and warming an index
/// reads a few ranges per file).
const RECORDED_READS_MAX: usize = 1 << 16;

/// A lock that a panic elsewhere does not poison for good: the guarded
/// caches and logs stay consistent at every await-free step.
trait LockAnyway<T> {
    fn lock_anyway(&self) -> MutexGuard<'_, T>;
}

impl<T> LockAnyway<T> for Mutex<T> {
    fn lock_anyway(&self) -> MutexGuard<'_, T> {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reads of an index's files: (file, byte range), in the order made.
pub(super) type Reads = Vec<(u32, Range<u64>)>;

/// Reads byte ranges of a blob's data (an archive member's, past its
/// head). Called from the searching thread, which may block.
pub trait RangeSource: Send + Sync + 'static {
    /// The bytes of `range` of the data; exactly that many.
    ///
    /// # Errors
    ///
    /// The read failed; the message names what was read.
    fn read(&self, range: Range<u64>) -> io::Result<Vec<u8>>;
}

/// Where the blob's data is.
pub enum Data {
    /// All of it, in RAM, every block already checked.
    Memory(OwnedBytes),
    /// Read on demand, a block at a time.
    Ranged(Arc<dyn RangeSource>),
}

/// Blocks read on demand, least recently used dropped first.
#[derive(Default)]
struct BlockCache {
    blocks: HashMap<u64, (u64, OwnedBytes)>,
    bytes: u64,
    clock: u64,
}

impl BlockCache {
    fn get(&mut self, block: u64) -> Option<OwnedBytes> {
        self.clock += 1;
        let clock = self.clock;
        self.blocks.get_mut(&block).map(|(used, bytes)| {
            *used = clock;
            bytes.clone()
        })
    }

    fn insert(&mut self, block: u64, bytes: OwnedBytes) {
        self.clock += 1;
        let len = bytes.len() as u64;
        if let Some((_, old)) = self.blocks.remove(&block) {
            self.bytes -= old.len() as u64;
        }
        // Bounded: each round removes an entry.
        while self.bytes + len > BLOCK_CACHE_BYTES_MAX && !self.blocks.is_empty() {
            let oldest = self
                .blocks
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(block, _)| *block);
            if let Some((_, gone)) = oldest.and_then(|b| self.blocks.remove(&b)) {
                self.bytes -= gone.len() as u64;
            }
        }
        self.blocks.insert(block, (self.clock, bytes));
        self.bytes += len;
    }
}

struct Shared {
    head: Head,
    data: Data,
    cache: Mutex<BlockCache>,
    /// Every read (file, range), when recording.
    recorded: Option<Mutex<Reads>>,
}

impl Shared {
    /// Bytes `range` of file `file`.
    fn read(&self, file: u32, range: Range<u64>) -> io::Result<OwnedBytes> {
        let entry = &self.head.files[file as usize];
        if range.start > range.end || range.end > entry.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "bytes {range:?} of {} ({} bytes)",
                    entry.name.display(),
                    entry.len
                ),
            ));
        }
        if let Some(recorded) = &self.recorded {
            let mut recorded = recorded.lock_anyway();
            if recorded.len() < RECORDED_READS_MAX {
                recorded.push((file, range.clone()));
            }
        }
        if range.is_empty() {
            return Ok(OwnedBytes::empty());
        }
        if let Some(hot) = self.hot(file, &range) {
            return Ok(hot);
        }
        let at = entry.start + range.start..entry.start + range.end;
        match &self.data {
            Data::Memory(data) => Ok(data.slice(at.start as usize..at.end as usize)),
            Data::Ranged(source) => self.read_blocks(source.as_ref(), at),
        }
    }

    /// The bytes of `range` of `file` if one hot range holds them all.
    fn hot(&self, file: u32, range: &Range<u64>) -> Option<OwnedBytes> {
        let hot = &self.head.hot;
        // The last hot range starting at or before the read.
        let after = hot.partition_point(|h| (h.file, h.range.start) <= (file, range.start));
        let candidate = hot[..after].last()?;
        (candidate.file == file && candidate.range.end >= range.end).then(|| {
            let from = candidate.at + (range.start - candidate.range.start) as usize;
            self.head
                .hot_bytes
                .slice(from..from + (range.end - range.start) as usize)
        })
    }

    /// Bytes `at` of the data, through whole blocks: cached ones as they
    /// are, the missing ones in one read from the first missing to the
    /// last, each checked against its crc32c.
    fn read_blocks(&self, source: &dyn RangeSource, at: Range<u64>) -> io::Result<OwnedBytes> {
        // Worked example: at = 70_000..140_000 with 64 KiB blocks touches
        // blocks 1 (65_536..131_072) and 2 (131_072..196_608), and the
        // answer starts 70_000 - 65_536 = 4_464 bytes into block 1.
        let first = at.start / DATA_BLOCK_BYTES;
        let last = (at.end - 1) / DATA_BLOCK_BYTES;
        let mut blocks: Vec<Option<OwnedBytes>> = {
            let mut cache = self.cache.lock_anyway();
            (first..=last).map(|b| cache.get(b)).collect()
        };
        let missing: Vec<u64> = (first..=last)
            .filter(|b| blocks[(b - first) as usize].is_none())
            .collect();
        if let (Some(&from), Some(&to)) = (missing.first(), missing.last()) {
            let span =
                from * DATA_BLOCK_BYTES..((to + 1) * DATA_BLOCK_BYTES).min(self.head.data_bytes);
            let bytes = source.read(span.clone())?;
            if bytes.len() as u64 != span.end - span.start {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "search index bytes {span:?}: {} bytes came back",
                        bytes.len()
                    ),
                ));
            }
            let bytes = OwnedBytes::new(bytes);
            let mut cache = self.cache.lock_anyway();
            for block in from..=to {
                let start = ((block - from) * DATA_BLOCK_BYTES) as usize;
                let end = (start + DATA_BLOCK_BYTES as usize).min(bytes.len());
                let one = bytes.slice(start..end);
                let stored = self.head.block_crcs[block as usize];
                let computed = crc32c::crc32c(one.as_slice());
                if computed != stored {
                    let damage = Corruption::DataBlock {
                        block,
                        stored,
                        computed,
                    };
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("corrupt search index: {damage}"),
                    ));
                }
                // A block of a longer read is cached as its own copy: a
                // slice would keep the whole read's buffer alive behind
                // the cache's byte count.
                let cached = if from == to {
                    one.clone()
                } else {
                    OwnedBytes::new(one.as_slice().to_vec())
                };
                cache.insert(block, cached);
                blocks[(block - first) as usize] = Some(one);
            }
        }
        let skip = (at.start - first * DATA_BLOCK_BYTES) as usize;
        let len = (at.end - at.start) as usize;
        if first == last {
            let block = blocks.pop().flatten().expect("every block read");
            return Ok(block.slice(skip..skip + len));
        }
        let mut joined = Vec::with_capacity(len);
        for block in blocks.into_iter().flatten() {
            joined.extend_from_slice(block.as_slice());
        }
        Ok(OwnedBytes::new(joined).slice(skip..skip + len))
    }
}

/// The directory of one segment index blob; cheap to clone.
#[derive(Clone)]
pub struct BlobDirectory {
    shared: Arc<Shared>,
}

impl fmt::Debug for BlobDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobDirectory")
            .field("files", &self.shared.head.files.len())
            .field("hot_ranges", &self.shared.head.hot.len())
            .finish()
    }
}

impl BlobDirectory {
    /// The index of `head`, its data in `data`.
    pub(super) fn new(head: Head, data: Data) -> Self {
        Self::with(head, data, None)
    }

    /// Like [`Self::new`], logging every read for [`Self::recorded`].
    pub(super) fn recording(head: Head, data: Data) -> Self {
        Self::with(head, data, Some(Mutex::new(Vec::new())))
    }

    fn with(head: Head, data: Data, recorded: Option<Mutex<Reads>>) -> Self {
        assert_eq!(
            head.block_crcs.len() as u64,
            head.data_bytes.div_ceil(DATA_BLOCK_BYTES)
        );
        BlobDirectory {
            shared: Arc::new(Shared {
                head,
                data,
                cache: Mutex::new(BlockCache::default()),
                recorded,
            }),
        }
    }

    /// The reads made so far (file, range), if recording.
    pub(super) fn recorded(&self) -> Reads {
        self.shared
            .recorded
            .as_ref()
            .map(|r| r.lock_anyway().clone())
            .unwrap_or_default()
    }

    /// The most bytes its block cache holds.
    pub(super) fn cache_bytes_max(&self) -> u64 {
        match self.shared.data {
            Data::Memory(_) => 0,
            Data::Ranged(_) => BLOCK_CACHE_BYTES_MAX,
        }
    }

    fn file(&self, path: &Path) -> Option<u32> {
        self.shared
            .head
            .files
            .iter()
            .position(|f| f.name == path)
            .map(|i| i as u32)
    }
}

/// One file of the blob.
struct BlobFile {
    shared: Arc<Shared>,
    file: u32,
}

impl fmt::Debug for BlobFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = &self.shared.head.files[self.file as usize];
        write!(f, "BlobFile({})", entry.name.display())
    }
}

impl HasLen for BlobFile {
    fn len(&self) -> usize {
        self.shared.head.files[self.file as usize].len as usize
    }
}

impl FileHandle for BlobFile {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        self.shared
            .read(self.file, range.start as u64..range.end as u64)
    }
}

fn read_only(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{}: a sealed segment's index is read-only", path.display()),
    )
}

impl Directory for BlobDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        let file = self
            .file(path)
            .ok_or_else(|| OpenReadError::FileDoesNotExist(path.to_path_buf()))?;
        Ok(Arc::new(BlobFile {
            shared: self.shared.clone(),
            file,
        }))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        Err(DeleteError::IoError {
            io_error: Arc::new(read_only(path)),
            filepath: path.to_path_buf(),
        })
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        Ok(self.file(path).is_some())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        Err(OpenWriteError::IoError {
            io_error: Arc::new(read_only(path)),
            filepath: path.to_path_buf(),
        })
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let file = self
            .file(path)
            .ok_or_else(|| OpenReadError::FileDoesNotExist(path.to_path_buf()))?;
        let len = self.shared.head.files[file as usize].len;
        self.shared
            .read(file, 0..len)
            .map(|bytes| bytes.as_slice().to_vec())
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_path_buf()))
    }

    fn atomic_write(&self, path: &Path, _data: &[u8]) -> io::Result<()> {
        Err(read_only(path))
    }

    fn sync_directory(&self) -> io::Result<()> {
        Ok(())
    }

    fn acquire_lock(&self, _lock: &Lock) -> Result<DirectoryLock, LockError> {
        Ok(DirectoryLock::from(Box::new(())))
    }

    fn watch(&self, _callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(WatchHandle::empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_cache_holds_its_bytes_at_most_and_drops_the_least_recently_used() {
        let mut cache = BlockCache::default();
        let block = |n: u64| OwnedBytes::new(vec![n as u8; DATA_BLOCK_BYTES as usize]);
        let fit = BLOCK_CACHE_BYTES_MAX / DATA_BLOCK_BYTES;
        for b in 0..fit {
            cache.insert(b, block(b));
        }
        assert_eq!(cache.bytes, BLOCK_CACHE_BYTES_MAX);
        // Block 0 used again: block 1 is now the least recently used.
        assert!(cache.get(0).is_some());
        cache.insert(fit, block(fit));
        assert_eq!(cache.bytes, BLOCK_CACHE_BYTES_MAX);
        assert!(cache.get(1).is_none());
        assert!(cache.get(0).is_some() && cache.get(fit).is_some());
        // The same block again replaces, never counts twice.
        cache.insert(fit, block(fit));
        assert_eq!(cache.bytes, BLOCK_CACHE_BYTES_MAX);
        assert_eq!(cache.blocks.len() as u64, fit);
    }
}
