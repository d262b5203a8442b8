//! Writing an archive into a local directory: the local-directory object
//! store's put of a sealed segment.
//!
//! Why not the object store crate's file write: it writes through the page
//! cache, and a profile of archiving at full ingest (issue 13) showed the
//! store threads spending most of their time copying into page-cache
//! pages, time taken from the shards on the same cores, while the
//! segments themselves are written with `O_DIRECT`. An archive is written
//! once and read rarely, so it gets the same treatment: [`DirectFile`]
//! stages bytes in one block-aligned buffer and writes whole blocks with
//! `O_DIRECT`, and [`write_archive_file`] streams the segment through it
//! ([`super::archive_segment`]), so a shard holds a few MiB per archive,
//! never the segment.
//!
//! Durability matches what the object store crate gave with fsync on: a
//! staging file beside the object, fsynced, renamed over the object's
//! name, and the directory fsynced, so an object under its name is always
//! whole. A crash leaves at most the staging file, which the next attempt
//! for the same key (the key is deterministic) truncates and rewrites; its
//! name ends in [`STAGING_SUFFIX`], which the object store's listing
//! skips, so it is never taken for an archive.

use super::writer::{archive_segment, Archived};
use super::{ArchiveMeta, NewMember};
use crate::aligned::AlignedBuf;
use crate::io::BLOCK_BYTES;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Bytes staged before a direct write: one write per 4 MiB.
const DIRECT_WRITE_BYTES: usize = 4 << 20;
const _: () = assert!(DIRECT_WRITE_BYTES.is_multiple_of(BLOCK_BYTES));

/// Suffix of an archive's staging file: `#` and digits, the form of the
/// object store crate's own staging files, which its local listing skips
/// (object names never hold `#`).
pub const STAGING_SUFFIX: &str = "#0";

/// A file written sequentially through one block-aligned buffer with
/// `O_DIRECT`; where the filesystem refuses `O_DIRECT` (tmpfs), through
/// the page cache instead, with the same bytes.
struct DirectFile {
    file: File,
    buf: AlignedBuf,
    /// Bytes staged in `buf`, not written yet.
    staged_bytes: usize,
    /// Bytes written to the file, a multiple of [`BLOCK_BYTES`].
    written_bytes: u64,
}

impl DirectFile {
    /// Creates (or truncates) `path`.
    fn create(path: &Path) -> io::Result<DirectFile> {
        let open = |flags| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(flags)
                .open(path)
        };
        let file = match open(libc::O_DIRECT) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => open(0)?,
            opened => opened?,
        };
        Ok(DirectFile {
            file,
            buf: AlignedBuf::zeroed(DIRECT_WRITE_BYTES),
            staged_bytes: 0,
            written_bytes: 0,
        })
    }

    /// Writes what is staged, pads it to a whole block (a direct write is
    /// whole blocks), cuts the file back to the bytes written, and fsyncs
    /// it. Returns the file's length.
    fn finish(mut self) -> io::Result<u64> {
        let len_bytes = self.written_bytes + self.staged_bytes as u64;
        if self.staged_bytes > 0 {
            // Round up to the next block: (staged + 4095) & !4095. For
            // example 10,000 staged bytes become 12,288 (three blocks), of
            // which the last 2,288 are zeros that `set_len` cuts off again.
            let padded_bytes = (self.staged_bytes + BLOCK_BYTES - 1) & !(BLOCK_BYTES - 1);
            self.buf.as_mut_slice()[self.staged_bytes..padded_bytes].fill(0);
            self.file
                .write_all_at(&self.buf.as_mut_slice()[..padded_bytes], self.written_bytes)?;
            self.file.set_len(len_bytes)?;
        }
        self.file.sync_all()?;
        Ok(len_bytes)
    }

    fn write_staged(&mut self) -> io::Result<()> {
        assert_eq!(self.staged_bytes, DIRECT_WRITE_BYTES, "only a full buffer");
        self.file
            .write_all_at(self.buf.as_mut_slice(), self.written_bytes)?;
        self.written_bytes += DIRECT_WRITE_BYTES as u64;
        self.staged_bytes = 0;
        Ok(())
    }
}

impl Write for DirectFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let taken = bytes.len().min(DIRECT_WRITE_BYTES - self.staged_bytes);
        self.buf.as_mut_slice()[self.staged_bytes..self.staged_bytes + taken]
            .copy_from_slice(&bytes[..taken]);
        self.staged_bytes += taken;
        if self.staged_bytes == DIRECT_WRITE_BYTES {
            self.write_staged()?;
        }
        Ok(taken)
    }

    /// Staged bytes wait for a whole buffer or [`DirectFile::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Archives the sealed segment at `segment` into the file `dest`
/// (creating its directories), durably: see the module docs. `object`
/// names the archive in errors; `members` are added after the records
/// ([`super::archive_segment`]).
pub fn write_archive_file(
    meta: ArchiveMeta,
    object: &str,
    segment: &Path,
    dest: &Path,
    members: Vec<NewMember>,
) -> crate::Result<Archived> {
    let source = File::open(segment).map_err(|e| crate::Error::io(segment, e))?;
    let segment_len_bytes = source
        .metadata()
        .map_err(|e| crate::Error::io(segment, e))?
        .len();
    let dir = dest
        .parent()
        .expect("an object's file lies in the store's directory");
    create_dir_all_durably(dir).map_err(|e| crate::Error::io(dir, e))?;
    let staging = PathBuf::from(format!("{}{STAGING_SUFFIX}", dest.display()));
    let mut out = DirectFile::create(&staging).map_err(|e| crate::Error::io(&staging, e))?;
    let archived = archive_segment(meta, object, source, segment_len_bytes, members, &mut out)?;
    let len_bytes = out.finish().map_err(|e| crate::Error::io(&staging, e))?;
    assert_eq!(len_bytes, archived.len_bytes);
    std::fs::rename(&staging, dest).map_err(|e| crate::Error::io(dest, e))?;
    sync_dir(dir).map_err(|e| crate::Error::io(dir, e))?;
    Ok(archived)
}

/// `create_dir_all`, with each directory it creates made durable (its
/// parent fsynced). Bounded by the depth of `dir`.
fn create_dir_all_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().expect("the store's directory exists");
    create_dir_all_durably(parent)?;
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        created => {
            created?;
            sync_dir(parent)
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh directory under the build's target directory: a real disk
    /// (direct I/O is the point), never tmpfs.
    fn scratch(name: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/tmp/archive-file")
            .join(format!("{name}-{}", N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_direct_file_holds_exactly_the_bytes_written_at_every_length() {
        let dir = scratch("lengths");
        let lengths = [
            0,
            1,
            BLOCK_BYTES - 1,
            BLOCK_BYTES,
            BLOCK_BYTES + 1,
            DIRECT_WRITE_BYTES,
            DIRECT_WRITE_BYTES + 4097,
            2 * DIRECT_WRITE_BYTES + 3,
        ];
        for len in lengths {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.join(format!("{len}"));
            let mut file = DirectFile::create(&path).unwrap();
            // Uneven writes, so staging fills across write calls.
            for chunk in bytes.chunks(100_003) {
                file.write_all(chunk).unwrap();
            }
            assert_eq!(file.finish().unwrap(), len as u64);
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "length {len}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_filesystem_without_direct_io_gets_the_same_bytes() {
        // /dev/shm is tmpfs on Linux, which refuses O_DIRECT; the file is
        // then written through the page cache.
        let path =
            Path::new("/dev/shm").join(format!("ringlog-archive-file-{}", std::process::id()));
        let bytes: Vec<u8> = (0..BLOCK_BYTES + 17).map(|i| i as u8).collect();
        let mut file = DirectFile::create(&path).unwrap();
        file.write_all(&bytes).unwrap();
        assert_eq!(file.finish().unwrap(), bytes.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_direct_file_truncates_what_was_there() {
        let dir = scratch("truncate");
        let path = dir.join("object");
        std::fs::write(&path, vec![7u8; 3 * BLOCK_BYTES]).unwrap();
        let mut file = DirectFile::create(&path).unwrap();
        file.write_all(b"short").unwrap();
        assert_eq!(file.finish().unwrap(), 5);
        assert_eq!(std::fs::read(&path).unwrap(), b"short");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_segment_that_does_not_archive_leaves_no_object() {
        let dir = scratch("refused");
        let segment = dir.join("00000000000000000000.log");
        // A file header and no frames: not sealed.
        std::fs::write(&segment, vec![0u8; 8192]).unwrap();
        let dest = dir.join("topics").join("t").join("0-9.rla");
        let meta = ArchiveMeta {
            topic_id: [1; 16],
            topic: "t".into(),
            partition: 0,
        };
        let refused = write_archive_file(meta, "topics/t/0-9.rla", &segment, &dest, Vec::new());
        assert!(
            matches!(refused, Err(crate::Error::Archive { ref object, .. }) if object == "topics/t/0-9.rla"),
            "{refused:?}"
        );
        assert!(!dest.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
