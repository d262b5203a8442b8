//! An in-memory file system with a crash model and fault injection, for
//! tests that must prove what survives a crash.
//!
//! Each file keeps two images: `current` (what reads see) and `durable`
//! (what `fdatasync` made stable), plus the ordered list of operations
//! (writes, truncations) issued since the last sync. [`MemStorage::crash`]
//! builds the file system a machine would find after power loss: every
//! file starts from its durable image and replays a *prefix* of its unsynced
//! operations, the last of which may be torn at any byte. Directory
//! operations (create, remove, rename) are durable at once; the log makes
//! them durable with `sync_dir` on the real backend anyway.
//!
//! The model assumes a file's unsynced writes reach the medium in issue
//! order. Real disks may reorder them, but only among writes that were
//! never covered by a completed fdatasync, and the log acknowledges
//! nothing until the fdatasync covering it returns — so reordering can only
//! change *which* unacknowledged bytes survive, which the recovery scan
//! treats the same way as a torn tail.
//!
//! Faults:
//! * [`Fault::Eio`] — the n-th operation of a kind fails with EIO;
//! * [`MemStorage::set_capacity_bytes`] — writes that would grow the total
//!   size past the capacity fail with ENOSPC;
//! * [`MemStorage::flip_bit`] — flips one bit in both images (bit rot);
//! * [`MemStorage::set_file_bytes`] — replaces a file's bytes outright
//!   (hand-made corruption cases).
//!
//! [`MemStorage::record_crash_images`] goes further than one random crash:
//! it captures the crash image before *every* mutating operation, so a test
//! can reopen the log at each step of a multi-step update (temp file,
//! fdatasync, rename, ...) and prove that every crash point recovers.

use super::{check_aligned, IoBuf, OpenMode, Storage, StorageFile};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Which operation an injected fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// `write_at`
    Write,
    /// `fdatasync`
    Sync,
    /// `read_at`
    Read,
}

/// A fault to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The operation of kind `op` issued after `after` more such operations
    /// fails with EIO (0 = the very next one). One-shot.
    Eio {
        /// Operation kind.
        op: OpKind,
        /// How many operations of that kind succeed first.
        after: u64,
    },
}

#[derive(Clone, Debug)]
enum PendingOp {
    Write { pos: u64, data: Vec<u8> },
    Truncate { len_bytes: u64 },
}

#[derive(Clone, Debug, Default)]
struct FileState {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<PendingOp>,
}

#[derive(Debug, Default)]
struct Fs {
    files: BTreeMap<PathBuf, FileState>,
    dirs: BTreeSet<PathBuf>,
    faults: Vec<(Fault, u64)>,
    capacity_bytes: Option<u64>,
    syncs: u64,
    recording: Option<Recording>,
    /// Times each write, read and fdatasync yields to other tasks before
    /// it completes (see [`MemStorage::set_io_yields`]).
    io_yields: u32,
}

/// Crash images captured before mutating operations.
#[derive(Debug)]
struct Recording {
    seed: u64,
    images: Vec<MemStorage>,
}

/// Yields to the executor as [`MemStorage::set_io_yields`] says.
async fn io_pause(fs: &Rc<RefCell<Fs>>) {
    let yields = fs.borrow().io_yields;
    for _ in 0..yields {
        futures_lite::future::yield_now().await;
    }
}

/// Captures the crash image of this moment if recording is on. Called
/// before an operation changes a file or the directory tree, with no
/// borrow of `fs` held.
fn record_crash_point(fs: &Rc<RefCell<Fs>>) {
    let seed = match &fs.borrow().recording {
        Some(r) => r.seed.wrapping_add(r.images.len() as u64),
        None => return,
    };
    let image = crash_image(&fs.borrow(), seed);
    fs.borrow_mut()
        .recording
        .as_mut()
        .expect("still recording")
        .images
        .push(image);
}

/// The file system a power loss would leave now; see [`MemStorage::crash`].
fn crash_image(fs: &Fs, seed: u64) -> MemStorage {
    let mut rng = SplitMix(seed);
    let mut files = BTreeMap::new();
    for (path, state) in &fs.files {
        let mut image = state.durable.clone();
        let applied = rng.below(state.pending.len() as u64 + 1) as usize;
        for (index, op) in state.pending.iter().take(applied).enumerate() {
            let keep_bytes = match op {
                PendingOp::Write { data, .. } if index + 1 == applied => {
                    rng.below(data.len() as u64 + 1) as usize
                }
                PendingOp::Write { data, .. } => data.len(),
                PendingOp::Truncate { .. } => 0,
            };
            apply(&mut image, op, keep_bytes);
        }
        files.insert(
            path.clone(),
            FileState {
                current: image.clone(),
                durable: image,
                pending: Vec::new(),
            },
        );
    }
    MemStorage {
        fs: Rc::new(RefCell::new(Fs {
            files,
            dirs: fs.dirs.clone(),
            ..Fs::default()
        })),
    }
}

impl Fs {
    fn total_bytes(&self) -> u64 {
        self.files.values().map(|f| f.current.len() as u64).sum()
    }

    /// Counts an operation against the armed faults; true = fail it.
    fn trip(&mut self, kind: OpKind) -> bool {
        let mut fired = None;
        for (index, (fault, seen)) in self.faults.iter_mut().enumerate() {
            let Fault::Eio { op, after } = *fault;
            if op == kind {
                if *seen == after {
                    fired = Some(index);
                    break;
                }
                *seen += 1;
            }
        }
        if let Some(index) = fired {
            self.faults.remove(index);
            return true;
        }
        false
    }
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("injected EIO on {what}"))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no such file: {}", path.display()),
    )
}

/// The in-memory file system. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    fs: Rc<RefCell<Fs>>,
}

/// A tiny deterministic generator (SplitMix64) so crash points — and the
/// workloads of tests and benchmarks — are reproducible from a seed without
/// pulling a RNG crate into the engine.
///
/// ```
/// use ringlog_engine::io::mem::SplitMix;
/// let (mut a, mut b) = (SplitMix(7), SplitMix(7));
/// assert_eq!(a.next(), b.next());
/// assert!(a.below(10) < 10);
/// ```
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)] // not an iterator: it never ends
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A value in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next() % bound
        }
    }
}

fn apply(image: &mut Vec<u8>, op: &PendingOp, keep_bytes: usize) {
    match op {
        PendingOp::Write { pos, data } => {
            let keep = &data[..keep_bytes.min(data.len())];
            let end = *pos as usize + keep.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[*pos as usize..end].copy_from_slice(keep);
        }
        PendingOp::Truncate { len_bytes } => image.resize(*len_bytes as usize, 0),
    }
}

impl MemStorage {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms a one-shot fault.
    pub fn inject(&self, fault: Fault) {
        self.fs.borrow_mut().faults.push((fault, 0));
    }

    /// Makes every write, read and fdatasync yield `yields` times to the
    /// executor before completing, as real I/O does while the ring works:
    /// other tasks then run in the middle of the log's I/O steps, so tests
    /// of concurrent appenders and readers see the interleavings a disk
    /// causes (0, the default, completes at once).
    pub fn set_io_yields(&self, yields: u32) {
        self.fs.borrow_mut().io_yields = yields;
    }

    /// Writes that would grow the total size of all files past
    /// `capacity_bytes` fail with ENOSPC. `None` removes the limit.
    pub fn set_capacity_bytes(&self, capacity_bytes: Option<u64>) {
        self.fs.borrow_mut().capacity_bytes = capacity_bytes;
    }

    /// Flips bit `bit` (0-7) of byte `offset` in `path`, in both the current
    /// and the durable image.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) {
        assert!(bit < 8);
        let mut fs = self.fs.borrow_mut();
        let file = fs.files.get_mut(path).expect("flip_bit: no such file");
        file.current[offset as usize] ^= 1 << bit;
        if let Some(byte) = file.durable.get_mut(offset as usize) {
            *byte ^= 1 << bit;
        }
    }

    /// A file's current bytes (what a read sees), if it exists.
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        self.fs.borrow().files.get(path).map(|f| f.current.clone())
    }

    /// Replaces a file's bytes (current and durable), creating it if needed.
    pub fn set_file_bytes(&self, path: &Path, bytes: Vec<u8>) {
        let mut fs = self.fs.borrow_mut();
        if let Some(parent) = path.parent() {
            fs.dirs.insert(parent.to_path_buf());
        }
        fs.files.insert(
            path.to_path_buf(),
            FileState {
                current: bytes.clone(),
                durable: bytes,
                pending: Vec::new(),
            },
        );
    }

    /// Paths of every file, sorted.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.fs.borrow().files.keys().cloned().collect()
    }

    /// Number of completed `fdatasync` calls since creation.
    pub fn sync_count(&self) -> u64 {
        self.fs.borrow().syncs
    }

    /// The file system after a power loss now: each file is its durable
    /// image plus a seeded-random prefix of its unsynced operations, the
    /// last one torn at a random byte. Faults and capacity are not carried
    /// over.
    pub fn crash(&self, seed: u64) -> MemStorage {
        crash_image(&self.fs.borrow(), seed)
    }

    /// Starts recording crash images: before every operation that changes
    /// a file or the directory tree (create, write, truncate, fdatasync,
    /// remove, rename), the file system a crash at that moment would leave,
    /// built as [`MemStorage::crash`] does with a seed derived from `seed`
    /// and the operation's index. Restarts an ongoing recording.
    pub fn record_crash_images(&self, seed: u64) {
        self.fs.borrow_mut().recording = Some(Recording {
            seed,
            images: Vec::new(),
        });
    }

    /// Stops recording and returns the crash images, oldest first (empty if
    /// nothing was recorded).
    pub fn take_crash_images(&self) -> Vec<MemStorage> {
        self.fs
            .borrow_mut()
            .recording
            .take()
            .map_or_else(Vec::new, |r| r.images)
    }
}

/// A file handle into [`MemStorage`].
pub struct MemFile {
    fs: Rc<RefCell<Fs>>,
    path: PathBuf,
}

/// A heap buffer standing in for an aligned DMA buffer.
#[derive(Debug)]
pub struct MemBuf(Vec<u8>);

impl IoBuf for MemBuf {
    fn as_slice(&self) -> &[u8] {
        &self.0
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn trim(&mut self, len_bytes: usize) {
        assert!(len_bytes <= self.0.len());
        self.0.truncate(len_bytes);
    }
}

impl Storage for MemStorage {
    type File = MemFile;

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        for ancestor in path.ancestors() {
            fs.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<MemFile> {
        if mode == OpenMode::CreateNew {
            record_crash_point(&self.fs);
        }
        let mut fs = self.fs.borrow_mut();
        let parent = path.parent().unwrap_or(Path::new(""));
        if !fs.dirs.contains(parent) {
            return Err(not_found(parent));
        }
        let exists = fs.files.contains_key(path);
        match mode {
            OpenMode::CreateNew if exists => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("file exists: {}", path.display()),
                ))
            }
            OpenMode::CreateNew => {
                fs.files.insert(path.to_path_buf(), FileState::default());
            }
            OpenMode::Existing if !exists => return Err(not_found(path)),
            OpenMode::Existing => {}
        }
        Ok(MemFile {
            fs: self.fs.clone(),
            path: path.to_path_buf(),
        })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        record_crash_point(&self.fs);
        match self.fs.borrow_mut().files.remove(path) {
            Some(_) => Ok(()),
            None => Err(not_found(path)),
        }
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        record_crash_point(&self.fs);
        let mut fs = self.fs.borrow_mut();
        let state = fs.files.remove(from).ok_or_else(|| not_found(from))?;
        fs.files.insert(to.to_path_buf(), state);
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.fs.borrow().dirs.contains(dir) {
            Ok(())
        } else {
            Err(not_found(dir))
        }
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let fs = self.fs.borrow();
        if !fs.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let mut names: Vec<String> = fs
            .files
            .keys()
            .chain(fs.dirs.iter())
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

impl MemFile {
    fn with_state<T>(&self, f: impl FnOnce(&mut FileState) -> T) -> io::Result<T> {
        let mut fs = self.fs.borrow_mut();
        let state = fs
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        Ok(f(state))
    }
}

impl StorageFile for MemFile {
    type Buf = MemBuf;
    type Read = Vec<u8>;

    fn alloc(&self, len_bytes: usize) -> MemBuf {
        MemBuf(vec![0; len_bytes])
    }

    async fn write_at(&self, buf: MemBuf, pos: u64) -> io::Result<()> {
        check_aligned(pos, buf.0.len())?;
        io_pause(&self.fs).await;
        record_crash_point(&self.fs);
        {
            let mut fs = self.fs.borrow_mut();
            if fs.trip(OpKind::Write) {
                return Err(eio("write"));
            }
            if let Some(capacity_bytes) = fs.capacity_bytes {
                let current = fs
                    .files
                    .get(&self.path)
                    .map_or(0, |f| f.current.len() as u64);
                let growth = (pos + buf.0.len() as u64).saturating_sub(current);
                if fs.total_bytes() + growth > capacity_bytes {
                    return Err(io::Error::from_raw_os_error(libc::ENOSPC));
                }
            }
        }
        self.with_state(|state| {
            let op = PendingOp::Write { pos, data: buf.0 };
            apply(&mut state.current, &op, usize::MAX);
            state.pending.push(op);
        })
    }

    async fn read_at(&self, pos: u64, len_bytes: usize) -> io::Result<Vec<u8>> {
        io_pause(&self.fs).await;
        if self.fs.borrow_mut().trip(OpKind::Read) {
            return Err(eio("read"));
        }
        self.with_state(|state| {
            let start = (pos as usize).min(state.current.len());
            let end = (start + len_bytes).min(state.current.len());
            state.current[start..end].to_vec()
        })
    }

    async fn fdatasync(&self) -> io::Result<()> {
        io_pause(&self.fs).await;
        record_crash_point(&self.fs);
        if self.fs.borrow_mut().trip(OpKind::Sync) {
            return Err(eio("fdatasync"));
        }
        self.with_state(|state| {
            state.durable = state.current.clone();
            state.pending.clear();
        })?;
        self.fs.borrow_mut().syncs += 1;
        Ok(())
    }

    async fn truncate(&self, len_bytes: u64) -> io::Result<()> {
        record_crash_point(&self.fs);
        self.with_state(|state| {
            let op = PendingOp::Truncate { len_bytes };
            apply(&mut state.current, &op, 0);
            state.pending.push(op);
        })
    }

    async fn size(&self) -> io::Result<u64> {
        self.with_state(|state| state.current.len() as u64)
    }

    async fn close(self) -> io::Result<()> {
        Ok(())
    }
}
