//! Aligned write-behind for one append-only file.
//!
//! Direct I/O writes whole 4 KiB blocks at block-aligned positions, but the
//! log appends frames of any length. The appender keeps the file's tail in
//! an aligned buffer: appends copy into it, and a flush hands the filled
//! part to the disk, rounded *up* to whole blocks (the tail of the last
//! block is zero padding, which readers treat as end-of-data).
//!
//! Worked example, `BLOCK_BYTES` = 4096, buffer starts at file position
//! 8192 holding 5000 bytes (logical end 13192):
//!
//! ```text
//! flush writes buffer[0..8192]  -> file[8192..16384]   (align_up(5000) = 8192)
//! keeps   buffer[4096..5000]    -> new buffer[0..904], new start 12288
//!                                  (align_down(5000) = 4096; 8192+4096 = 12288)
//! ```
//!
//! The next flush rewrites block 12288..16384 with the old 904 bytes plus
//! whatever was appended since. Rewriting bytes that are already durable is
//! safe even if that write is torn: every sector of the block holds either
//! the old or the new image, and both carry the same durable prefix.

use crate::io::{align_down, align_up, IoBuf, StorageFile, BLOCK_BYTES};

/// The tail buffer of one file.
pub(crate) struct Appender<F: StorageFile> {
    buf: F::Buf,
    /// File position of `buf[0]`; always block-aligned.
    buf_pos: u64,
    /// Valid bytes in `buf`.
    buf_len: usize,
    /// Bytes of `buf` already handed to a write.
    flushed_len: usize,
    capacity_bytes: usize,
}

/// One write the caller must perform, in order with other writes of the
/// same file.
pub(crate) struct PendingWrite<B> {
    pub buf: B,
    pub pos: u64,
}

impl<F: StorageFile> Appender<F> {
    /// An appender whose logical end is `end_bytes`; `tail` holds the file
    /// bytes from `align_down(end_bytes)` to `end_bytes` (the partial block
    /// that the next write rewrites).
    pub fn new(file: &F, capacity_bytes: usize, end_bytes: u64, tail: &[u8]) -> Self {
        assert!(capacity_bytes >= 2 * BLOCK_BYTES && capacity_bytes.is_multiple_of(BLOCK_BYTES));
        let buf_pos = align_down(end_bytes);
        assert_eq!(tail.len() as u64, end_bytes - buf_pos);
        let mut buf = file.alloc(capacity_bytes);
        buf.as_mut_slice()[..tail.len()].copy_from_slice(tail);
        Appender {
            buf,
            buf_pos,
            buf_len: tail.len(),
            flushed_len: tail.len(),
            capacity_bytes,
        }
    }

    /// Logical end of the file (written or buffered).
    pub fn end_bytes(&self) -> u64 {
        self.buf_pos + self.buf_len as u64
    }

    /// Bytes that can be appended before a flush is needed.
    pub fn room_bytes(&self) -> usize {
        self.capacity_bytes - self.buf_len
    }

    /// Whether bytes were appended since the last flush.
    pub fn dirty(&self) -> bool {
        self.buf_len > self.flushed_len
    }

    /// Reserves `len` bytes at the end and returns them for the caller to
    /// fill. Panics if there is no room: callers check `room_bytes` first.
    pub fn reserve(&mut self, len: usize) -> &mut [u8] {
        assert!(len <= self.room_bytes(), "appender overflow");
        let start = self.buf_len;
        self.buf_len += len;
        &mut self.buf.as_mut_slice()[start..start + len]
    }

    /// Takes everything appended so far as one block-aligned write and
    /// starts a new buffer holding the partial last block. With
    /// `whole_blocks_only`, a partial last block stays buffered instead
    /// (index files, which need not be on disk before the segment seals).
    pub fn take_write(
        &mut self,
        file: &F,
        whole_blocks_only: bool,
    ) -> Option<PendingWrite<F::Buf>> {
        let write_len = if whole_blocks_only {
            align_down(self.buf_len as u64) as usize
        } else {
            align_up(self.buf_len as u64) as usize
        };
        if write_len == 0 || !self.dirty() {
            return None;
        }
        // Padding past the data must be zeros: readers take a zero frame
        // header as the end of data, and buffers come unzeroed.
        self.buf.as_mut_slice()[self.buf_len..write_len.max(self.buf_len)].fill(0);
        let keep_from = align_down(self.buf_len as u64) as usize;
        let keep_len = self.buf_len - keep_from;
        let mut next = file.alloc(self.capacity_bytes);
        next.as_mut_slice()[..keep_len]
            .copy_from_slice(&self.buf.as_slice()[keep_from..self.buf_len]);
        let mut full = std::mem::replace(&mut self.buf, next);
        full.trim(write_len);
        let pos = self.buf_pos;
        self.buf_pos += keep_from as u64;
        self.buf_len = keep_len;
        self.flushed_len = if whole_blocks_only { 0 } else { keep_len };
        debug_assert_eq!(self.buf_pos % BLOCK_BYTES as u64, 0);
        Some(PendingWrite { buf: full, pos })
    }
}
