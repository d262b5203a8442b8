//! The engine's only door to the disk: a small async trait with two
//! backends.
//!
//! * [`dma::DmaStorage`] — glommio DMA files (`O_DIRECT` through the
//!   shard's io_uring). This is what `ringlog serve` uses.
//! * [`mem::MemStorage`] — an in-memory file system that separates what
//!   was *written* from what is *durable* (fdatasync'ed) and can inject
//!   faults: a crash that keeps a torn prefix of the unsynced writes, EIO,
//!   ENOSPC and bit flips. The recovery tests and the property test run
//!   the real log code on it.
//!
//! Why a trait rather than `cfg(test)` mocks: the crash model has to run
//! the *same* append/recovery code that production runs, and the fault
//! injection has to be reachable from integration tests and benchmarks.
//!
//! The trait is deliberately `!Send` (`async fn` without `Send` bounds):
//! every file belongs to exactly one shard's executor, so futures never
//! cross threads.
//!
//! Alignment contract (what `O_DIRECT` demands, enforced on both backends so
//! a test cannot pass with an I/O pattern the disk would refuse): every
//! write starts at a multiple of [`BLOCK_BYTES`] and its length is a
//! multiple of [`BLOCK_BYTES`]. Reads may be unaligned.

pub mod dma;
pub mod mem;

use std::io;
use std::path::{Path, PathBuf};

/// The unit of direct I/O: positions and lengths of writes are multiples of
/// it. 4 KiB covers every device logical block size up to 4 KiB (512-byte
/// and 4Kn drives alike) and equals the page size, so a buffer allocated
/// page-aligned is also block-aligned.
pub const BLOCK_BYTES: usize = 4096;
const _: () = assert!(BLOCK_BYTES.is_power_of_two());

/// Rounds `value` down to a multiple of [`BLOCK_BYTES`].
///
/// ```
/// use ringlog_engine::io::{align_down, BLOCK_BYTES};
/// assert_eq!(align_down(5000), 4096);
/// assert_eq!(align_down(BLOCK_BYTES as u64), 4096);
/// ```
pub const fn align_down(value: u64) -> u64 {
    value & !(BLOCK_BYTES as u64 - 1)
}

/// Rounds `value` up to a multiple of [`BLOCK_BYTES`].
///
/// ```
/// use ringlog_engine::io::align_up;
/// assert_eq!(align_up(1), 4096);
/// assert_eq!(align_up(4096), 4096);
/// assert_eq!(align_up(0), 0);
/// ```
pub const fn align_up(value: u64) -> u64 {
    align_down(value + BLOCK_BYTES as u64 - 1)
}

/// A buffer that can be handed to [`StorageFile::write_at`]: block-aligned
/// in memory and owned by the backend's allocator.
pub trait IoBuf: 'static {
    /// The whole buffer.
    fn as_slice(&self) -> &[u8];
    /// The whole buffer, writable.
    fn as_mut_slice(&mut self) -> &mut [u8];
    /// Shrinks the buffer to its first `len_bytes` bytes (the length that
    /// will be written). `len_bytes` must not exceed the current length.
    fn trim(&mut self, len_bytes: usize);
}

/// How [`Storage::open`] treats an existing or missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a new empty file; fail if it exists.
    CreateNew,
    /// Open an existing file for reading and writing; fail if missing.
    Existing,
}

/// A directory tree of files. Cloning is cheap (shared handle).
#[allow(async_fn_in_trait)] // futures stay on the shard's thread by design
pub trait Storage: Clone + 'static {
    /// The file type of this backend.
    type File: StorageFile;

    /// Creates `path` and all missing parents.
    async fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Opens a file for direct I/O.
    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File>;
    /// Removes a file.
    async fn remove(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames a file (replacing `to`).
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes creations, removals and renames inside `dir` durable.
    async fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) directly inside `dir`, sorted. Missing `dir`
    /// is an error of kind `NotFound`.
    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
}

/// One open file.
#[allow(async_fn_in_trait)] // futures stay on the shard's thread by design
pub trait StorageFile: 'static {
    /// Aligned write buffer type.
    type Buf: IoBuf;
    /// Read result type.
    type Read: std::ops::Deref<Target = [u8]>;

    /// Allocates an aligned buffer of `len_bytes` (a multiple of
    /// [`BLOCK_BYTES`]). Its contents are unspecified: callers initialise
    /// every byte they write (zeroing a 2 MiB buffer per flush is measurable
    /// on the append path).
    fn alloc(&self, len_bytes: usize) -> Self::Buf;
    /// Writes the whole of `buf` at `pos`. Both `pos` and the buffer length
    /// are multiples of [`BLOCK_BYTES`]. Not durable until
    /// [`StorageFile::fdatasync`] returns.
    async fn write_at(&self, buf: Self::Buf, pos: u64) -> io::Result<()>;
    /// Reads up to `len_bytes` at `pos`; shorter at end of file.
    async fn read_at(&self, pos: u64, len_bytes: usize) -> io::Result<Self::Read>;
    /// Makes every completed write durable.
    async fn fdatasync(&self) -> io::Result<()>;
    /// Sets the file length.
    async fn truncate(&self, len_bytes: u64) -> io::Result<()>;
    /// Current file length in bytes.
    async fn size(&self) -> io::Result<u64>;
    /// Closes the file.
    async fn close(self) -> io::Result<()>;
}

pub(crate) fn check_aligned(pos: u64, len_bytes: usize) -> io::Result<()> {
    if !pos.is_multiple_of(BLOCK_BYTES as u64) || !len_bytes.is_multiple_of(BLOCK_BYTES) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unaligned direct write: pos {pos}, len {len_bytes} (block {BLOCK_BYTES})"),
        ));
    }
    Ok(())
}

/// Suffix of a file being written to replace another atomically (temp
/// file, fdatasync, rename); owners delete such leftovers when they open a
/// directory.
pub const TMP_SUFFIX: &str = ".tmp";
/// Largest single write of [`write_file_atomic`].
const WRITE_CHUNK_BYTES: usize = 4 << 20;
const _: () = assert!(align_up(WRITE_CHUNK_BYTES as u64) == WRITE_CHUNK_BYTES as u64);

/// Replaces `path` (inside `dir`) with `image` atomically: a `<path>.tmp`
/// file written with aligned direct writes, trimmed to its exact length,
/// fdatasync'ed, closed, renamed over `path`, and `dir` synced. A crash
/// leaves either the old file or the complete new one (plus perhaps a
/// `.tmp` leftover for the owner to delete); when this returns `Ok` the new
/// file is durable.
pub(crate) async fn write_file_atomic<S: Storage>(
    storage: &S,
    dir: &Path,
    path: &Path,
    image: &[u8],
) -> io::Result<()> {
    assert_eq!(path.parent(), Some(dir), "the file lies directly in dir");
    let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", path.display()));
    // A failed earlier attempt in this process may have left the temp file.
    match storage.remove(&tmp).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let file = storage.open(&tmp, OpenMode::CreateNew).await?;
    let written = async {
        let mut pos = 0usize;
        while pos < image.len() {
            let chunk = &image[pos..image.len().min(pos + WRITE_CHUNK_BYTES)];
            let mut buf = file.alloc(align_up(chunk.len() as u64) as usize);
            let bytes = buf.as_mut_slice();
            bytes[..chunk.len()].copy_from_slice(chunk);
            bytes[chunk.len()..].fill(0);
            file.write_at(buf, pos as u64).await?;
            pos += chunk.len();
        }
        file.truncate(image.len() as u64).await?;
        file.fdatasync().await
    }
    .await;
    let closed = file.close().await;
    written?;
    closed?;
    storage.rename(&tmp, path).await?;
    storage.sync_dir(dir).await
}

/// Reads a whole file through the storage trait.
pub(crate) async fn read_whole_file<S: Storage>(storage: &S, path: &Path) -> io::Result<Vec<u8>> {
    let file = storage.open(path, OpenMode::Existing).await?;
    let read = async {
        let size = file.size().await?;
        let bytes = file.read_at(0, size as usize).await?;
        if bytes.len() as u64 != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("short read: {} of {size} bytes", bytes.len()),
            ));
        }
        Ok(bytes.to_vec())
    }
    .await;
    let closed = file.close().await;
    let bytes = read?;
    closed?;
    Ok(bytes)
}
