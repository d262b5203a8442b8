//! A block-aligned heap buffer for code that drives `O_DIRECT` I/O itself,
//! outside a glommio executor: `ringlog bench disk` and the raw baseline
//! of the append benchmark submit to io_uring (or call `pwrite`) directly,
//! where glommio's `DmaBuffer` cannot be had. The kernel rejects a direct
//! write whose memory is not aligned with `EINVAL`, so both need the same
//! allocation; it is written, and its `unsafe` checked, once here.
//!
//! The partition log does not use it: its buffers come from the storage
//! backend ([`crate::io::StorageFile::alloc`]), which on the DMA backend
//! may be memory registered with io_uring.

use crate::io::BLOCK_BYTES;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

/// A zero-initialised heap buffer whose address and length are multiples
/// of [`BLOCK_BYTES`], as `O_DIRECT` writes need. Freed on drop.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len_bytes: usize,
}

impl AlignedBuf {
    /// Allocates `len_bytes` zeroed bytes at a [`BLOCK_BYTES`]-aligned
    /// address.
    ///
    /// # Panics
    ///
    /// If `len_bytes` is zero or not a multiple of [`BLOCK_BYTES`], or the
    /// allocation fails.
    pub fn zeroed(len_bytes: usize) -> AlignedBuf {
        assert!(
            len_bytes > 0 && len_bytes.is_multiple_of(BLOCK_BYTES),
            "an aligned buffer is a positive multiple of {BLOCK_BYTES} bytes, not {len_bytes}"
        );
        let layout = layout(len_bytes);
        // SAFETY: the layout's size is non-zero (asserted above), the one
        // requirement of `alloc_zeroed`.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw)
            .unwrap_or_else(|| panic!("out of memory allocating {len_bytes} bytes"));
        // BLOCK_BYTES is a power of two (2^12 = 4096), so an address is a
        // multiple of it exactly when its low 12 bits are zero, and
        // `address & (BLOCK_BYTES - 1)` (that is, `& 0xfff`) is the address
        // modulo 4096. For example 0x7f00_0000_3000 & 0xfff = 0: aligned;
        // 0x7f00_0000_3010 & 0xfff = 0x10: 16 bytes past a block start,
        // which a direct write would refuse. The layout asked for this
        // alignment; the assert checks the allocator gave it.
        assert_eq!(
            ptr.as_ptr() as usize & (BLOCK_BYTES - 1),
            0,
            "allocator returned an unaligned buffer"
        );
        AlignedBuf { ptr, len_bytes }
    }

    /// The start of the buffer, for a write submitted to the kernel. It
    /// stays valid while `self` lives: the caller must keep the buffer
    /// until every write that points into it has completed.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr().cast_const()
    }

    /// The whole buffer, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` points to `len_bytes` bytes allocated (and zeroed,
        // so initialised) in `zeroed` and owned by `self` until drop; the
        // `&mut self` borrow makes this the only reference for its
        // lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len_bytes) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated in `zeroed` with exactly this layout
        // and is freed only here, once.
        unsafe { dealloc(self.ptr.as_ptr(), layout(self.len_bytes)) }
    }
}

/// The layout of a buffer of `len_bytes`: that size, [`BLOCK_BYTES`]
/// alignment.
fn layout(len_bytes: usize) -> Layout {
    // BLOCK_BYTES is a power of two (asserted in `io`); only a size that
    // overflows isize when rounded up to it could fail.
    Layout::from_size_align(len_bytes, BLOCK_BYTES)
        .unwrap_or_else(|e| panic!("no layout for {len_bytes} aligned bytes: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_block_aligned_zeroed_and_writable() {
        for len_bytes in [BLOCK_BYTES, 3 * BLOCK_BYTES, 256 << 10, 2 << 20] {
            // Several at once, so they cannot all land on one lucky address.
            let mut bufs: Vec<AlignedBuf> = (0..4).map(|_| AlignedBuf::zeroed(len_bytes)).collect();
            for buf in &mut bufs {
                assert_eq!(buf.as_ptr() as usize % BLOCK_BYTES, 0);
                assert_eq!(buf.as_mut_slice().as_ptr(), buf.as_ptr());
                let slice = buf.as_mut_slice();
                assert_eq!(slice.len(), len_bytes);
                assert!(slice.iter().all(|&b| b == 0));
                slice.fill(0x5a);
                assert!(slice.iter().all(|&b| b == 0x5a));
            }
        }
    }

    #[test]
    #[should_panic(expected = "positive multiple of 4096 bytes, not 0")]
    fn an_empty_buffer_is_refused() {
        AlignedBuf::zeroed(0);
    }

    #[test]
    #[should_panic(expected = "positive multiple of 4096 bytes, not 4097")]
    fn a_length_off_the_block_size_is_refused() {
        AlignedBuf::zeroed(BLOCK_BYTES + 1);
    }
}
