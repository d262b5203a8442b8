//! The production backend: glommio DMA files, so every segment write is an
//! `O_DIRECT` io_uring request on the owning shard's ring and never touches
//! the page cache (no double buffering, no write-back storms stealing the
//! core).
//!
//! ## The IOPOLL probe workaround
//!
//! glommio 0.9 decides per device, once per thread, whether reads may go to
//! its IOPOLL ring, by reading offset 0 of the first file opened there. When
//! that file is new and empty the kernel answers the read without reaching
//! the poll path, glommio caches "IOPOLL works", and every later read on
//! that device fails with EOPNOTSUPP (seen on virtio disks). So before the
//! first open on a device, [`DmaStorage`] opens a one-block probe file it
//! wrote itself; glommio's probe then does a real read and caches the true
//! answer.

use super::{check_aligned, IoBuf, OpenMode, Storage, StorageFile, BLOCK_BYTES};
use glommio::io::{DmaBuffer, DmaFile, OpenOptions, ReadResult};
use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

thread_local! {
    /// Devices (st_dev) whose IOPOLL support this thread has probed.
    static PROBED_DEVICES: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
}

const PROBE_FILE_NAME: &str = ".ringlog-iopoll-probe";

/// Makes glommio probe IOPOLL support of `dir`'s device with a real read.
async fn probe_device(dir: &Path) -> io::Result<()> {
    let device = std::fs::metadata(dir)?.dev();
    if PROBED_DEVICES.with(|d| d.borrow().contains(&device)) {
        return Ok(());
    }
    let probe = dir.join(format!(
        "{PROBE_FILE_NAME}-{:?}",
        std::thread::current().id()
    ));
    std::fs::write(&probe, [0xA5u8; BLOCK_BYTES])?;
    let opened = DmaFile::open(&probe).await.map_err(to_io);
    let closed = match opened {
        Ok(file) => file.close().await.map_err(to_io),
        Err(e) => Err(e),
    };
    std::fs::remove_file(&probe)?;
    closed?;
    PROBED_DEVICES.with(|d| d.borrow_mut().insert(device));
    Ok(())
}

/// glommio DMA files. Must be used from inside a glommio executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct DmaStorage;

/// An open `O_DIRECT` file.
pub struct DmaStorageFile {
    file: DmaFile,
}

fn to_io(err: glommio::GlommioError<()>) -> io::Error {
    err.into()
}

impl IoBuf for DmaBuffer {
    fn as_slice(&self) -> &[u8] {
        self.as_bytes()
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }
    fn trim(&mut self, len_bytes: usize) {
        assert!(len_bytes <= self.len());
        self.trim_to_size(len_bytes);
    }
}

impl Storage for DmaStorage {
    type File = DmaStorageFile;

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<DmaStorageFile> {
        probe_device(path.parent().unwrap_or(Path::new("."))).await?;
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if mode == OpenMode::CreateNew {
            options.create_new(true);
        }
        let file = options.dma_open(path).await.map_err(to_io)?;
        Ok(DmaStorageFile { file })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        probe_device(dir).await?;
        let dir = glommio::io::Directory::open(dir).await.map_err(to_io)?;
        dir.sync().await.map_err(to_io)?;
        dir.close().await.map_err(to_io)
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

impl StorageFile for DmaStorageFile {
    type Buf = DmaBuffer;
    type Read = ReadResult;

    fn alloc(&self, len_bytes: usize) -> DmaBuffer {
        self.file.alloc_dma_buffer(len_bytes)
    }

    async fn write_at(&self, buf: DmaBuffer, pos: u64) -> io::Result<()> {
        check_aligned(pos, buf.len())?;
        let len_bytes = buf.len();
        let written = self.file.write_at(buf, pos).await.map_err(to_io)?;
        if written != len_bytes {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short direct write: {written} of {len_bytes} bytes at {pos}"),
            ));
        }
        Ok(())
    }

    async fn read_at(&self, pos: u64, len_bytes: usize) -> io::Result<ReadResult> {
        self.file.read_at(pos, len_bytes).await.map_err(to_io)
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(to_io)
    }

    async fn truncate(&self, len_bytes: u64) -> io::Result<()> {
        self.file.truncate(len_bytes).await.map_err(to_io)
    }

    async fn size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(to_io)
    }

    async fn close(self) -> io::Result<()> {
        self.file.close().await.map_err(to_io)
    }
}
