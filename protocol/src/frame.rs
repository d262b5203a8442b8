//! Size-prefixed frames: every Kafka request and response is a big-endian
//! `i32` byte count followed by that many bytes.
//!
//! Why the checks sit here: the size prefix is the only thing a peer can
//! make us allocate before anything else is validated. A size that is not
//! positive, or larger than the configured maximum request size, is refused
//! as soon as its four bytes arrive — before any buffer is reserved for the
//! body — so a single forged prefix cannot make the broker reserve 2 GiB.
//! Kafka has no way to answer a frame it cannot delimit (the correlation id
//! lives inside the body), so the caller closes the connection on
//! [`FrameError`], as Kafka's own `NetworkReceive` does.
//!
//! Decoding is incremental: bytes are appended to one `BytesMut` read buffer
//! as they arrive and [`next_frame`] hands out each whole frame as a
//! zero-copy [`Bytes`] split off the front of it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes in the size prefix.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// Why a frame is refused. The connection cannot continue after any of
/// these: the stream can no longer be delimited.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is zero or negative.
    #[error("frame size {0} is not positive")]
    NotPositive(i32),
    /// The size prefix exceeds the limit.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The size the prefix declares (bytes after the prefix).
        size: usize,
        /// The limit in force.
        max: usize,
    },
}

/// Takes the next whole frame off the front of `buf`, without its size
/// prefix.
///
/// Returns `Ok(None)` while the frame is incomplete; call again after more
/// bytes are appended. Once the size prefix is in and valid, the buffer
/// reserves room for the rest of the frame (at most `max_request_bytes`), so
/// a large produce request is not re-copied as it trickles in.
///
/// # Errors
///
/// [`FrameError::NotPositive`] or [`FrameError::TooLarge`] as soon as the
/// four prefix bytes are buffered; nothing is reserved for the body then.
///
/// ```
/// use bytes::{BufMut, BytesMut};
/// use ringlog_protocol::frame::next_frame;
/// let mut buf = BytesMut::new();
/// buf.put_i32(3);
/// buf.put_slice(b"ab");
/// assert_eq!(next_frame(&mut buf, 1024).unwrap(), None);
/// buf.put_slice(b"c");
/// assert_eq!(&next_frame(&mut buf, 1024).unwrap().unwrap()[..], b"abc");
/// assert!(buf.is_empty());
/// ```
pub fn next_frame(
    buf: &mut BytesMut,
    max_request_bytes: usize,
) -> Result<Option<Bytes>, FrameError> {
    let Some(size) = declared_size(buf, max_request_bytes)? else {
        return Ok(None);
    };
    let total = SIZE_PREFIX_BYTES + size;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(SIZE_PREFIX_BYTES);
    Ok(Some(buf.split_to(size).freeze()))
}

/// The body size the prefix at the front of `bytes` declares, checked
/// against `max_bytes`; `None` until the four prefix bytes are there.
fn declared_size(bytes: &[u8], max_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = bytes.get(..SIZE_PREFIX_BYTES) else {
        return Ok(None);
    };
    let declared = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if declared <= 0 {
        return Err(FrameError::NotPositive(declared));
    }
    let size = declared as usize;
    if size > max_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_bytes,
        });
    }
    Ok(Some(size))
}

/// A socket's read buffer: reads land in [`FrameBuffer::room`], whole
/// frames come off the front with [`FrameBuffer::next_frame`].
///
/// Why not `resize` a `BytesMut` before each read, as [`next_frame`]'s
/// callers would: safe Rust reads only into initialised memory, so that
/// zeroes the whole read chunk on every read, however few bytes arrive. At
/// one small request per read that memset was 9% of the bench's CPU (a
/// 256 KiB chunk per Metadata answer). Here the bytes after the received
/// ones stay initialised from one read to the next (they hold zeros or
/// bytes already handed out, never read as frame data), so each byte of
/// the buffer is zeroed once, when the buffer grows.
///
/// ```
/// use ringlog_protocol::frame::FrameBuffer;
/// let mut frames = FrameBuffer::new(1024, 64);
/// let wire = [0, 0, 0, 3, b'a', b'b', b'c'];
/// frames.room()[..5].copy_from_slice(&wire[..5]); // a read of 5 bytes
/// frames.filled(5);
/// assert_eq!(frames.next_frame().unwrap(), None);
/// frames.room()[..2].copy_from_slice(&wire[5..]);
/// frames.filled(2);
/// assert_eq!(&frames.next_frame().unwrap().unwrap()[..], b"abc");
/// assert_eq!(frames.buffered(), 0);
/// ```
pub struct FrameBuffer {
    /// `buf[..filled]` was received; `buf[filled..]` is room for reads.
    buf: BytesMut,
    filled: usize,
    max_frame_bytes: usize,
    chunk_bytes: usize,
}

impl FrameBuffer {
    /// An empty buffer for frames of at most `max_frame_bytes`, offering
    /// reads at least `chunk_bytes / 2` of room (more when a larger frame
    /// is partly in).
    pub fn new(max_frame_bytes: usize, chunk_bytes: usize) -> Self {
        assert!(chunk_bytes >= 2 * SIZE_PREFIX_BYTES);
        FrameBuffer {
            buf: BytesMut::new(),
            filled: 0,
            max_frame_bytes,
            chunk_bytes,
        }
    }

    /// Changes the frame size limit for frames not yet taken (a SASL
    /// listener accepts small frames until the client authenticated).
    pub fn set_max_frame_bytes(&mut self, max_frame_bytes: usize) {
        self.max_frame_bytes = max_frame_bytes;
    }

    /// The body size of the frame at the front once its size prefix is
    /// in (`Ok(None)` before), checked like [`FrameBuffer::next_frame`]
    /// checks it: what a caller accounting for request memory reserves
    /// before reading the rest of the frame.
    ///
    /// # Errors
    ///
    /// As [`FrameBuffer::next_frame`].
    ///
    /// ```
    /// use ringlog_protocol::frame::FrameBuffer;
    /// let mut frames = FrameBuffer::new(1024, 64);
    /// frames.room()[..3].copy_from_slice(&[0, 0, 0]);
    /// frames.filled(3);
    /// assert_eq!(frames.next_frame_bytes().unwrap(), None);
    /// frames.room()[..1].copy_from_slice(&[200]);
    /// frames.filled(1);
    /// assert_eq!(frames.next_frame_bytes().unwrap(), Some(200));
    /// assert_eq!(frames.next_frame().unwrap(), None);
    /// ```
    pub fn next_frame_bytes(&self) -> Result<Option<usize>, FrameError> {
        declared_size(&self.buf[..self.filled], self.max_frame_bytes)
    }

    /// Takes the next whole frame off the front, without its size prefix;
    /// `Ok(None)` while it is incomplete.
    ///
    /// # Errors
    ///
    /// As [`next_frame`], as soon as the four prefix bytes are in; the
    /// stream cannot be delimited after that.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let received = &self.buf[..self.filled];
        let Some(size) = declared_size(received, self.max_frame_bytes)? else {
            return Ok(None);
        };
        let total = SIZE_PREFIX_BYTES + size;
        if self.filled < total {
            return Ok(None);
        }
        self.buf.advance(SIZE_PREFIX_BYTES);
        let frame = self.buf.split_to(size).freeze();
        self.filled -= total;
        Ok(Some(frame))
    }

    /// Where the next read goes: at least the rest of a frame whose prefix
    /// is in, and at least half a chunk. Grows (and zeroes) the buffer only
    /// when the room left is smaller than that. Call after
    /// [`FrameBuffer::next_frame`] returned `Ok(None)`, so a bad prefix was
    /// already refused.
    pub fn room(&mut self) -> &mut [u8] {
        let received = &self.buf[..self.filled];
        let missing = match declared_size(received, self.max_frame_bytes) {
            Ok(Some(size)) => (SIZE_PREFIX_BYTES + size).saturating_sub(self.filled),
            _ => 0,
        };
        let room = self.buf.len() - self.filled;
        if room < missing.max(self.chunk_bytes / 2) {
            self.buf
                .resize(self.filled + missing.max(self.chunk_bytes), 0);
        }
        &mut self.buf[self.filled..]
    }

    /// Records that a read put `n` bytes at the start of the room.
    pub fn filled(&mut self, n: usize) {
        assert!(n <= self.buf.len() - self.filled, "read past the room");
        self.filled += n;
    }

    /// Bytes received and not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.filled
    }
}

/// Appends the size prefix for a frame whose body of `body_len` bytes the
/// caller appends next.
///
/// # Errors
///
/// [`FrameError::TooLarge`] when `body_len` does not fit the `i32` prefix;
/// nothing is written then.
pub fn write_frame_header(out: &mut BytesMut, body_len: usize) -> Result<(), FrameError> {
    let size = prefix_value(body_len)?;
    out.put_i32(size);
    Ok(())
}

/// Starts a frame whose length is not known yet: appends a placeholder
/// prefix and returns where the frame starts. Write the body after it, then
/// call [`finish_frame`] with the returned position.
pub fn begin_frame(out: &mut BytesMut) -> usize {
    let start = out.len();
    out.put_i32(0);
    start
}

/// Completes a frame started with [`begin_frame`] at `start` by patching its
/// size prefix to cover everything written after it.
///
/// # Errors
///
/// [`FrameError::TooLarge`] when the body does not fit the `i32` prefix, and
/// [`FrameError::NotPositive`] when nothing (or less than a prefix) was
/// written after `start`; the buffer is truncated back to `start` in both
/// cases, so it never holds a half-made frame.
pub fn finish_frame(out: &mut BytesMut, start: usize) -> Result<(), FrameError> {
    let Some(body_len) = out.len().checked_sub(start + SIZE_PREFIX_BYTES) else {
        out.truncate(start);
        return Err(FrameError::NotPositive(0));
    };
    if body_len == 0 {
        out.truncate(start);
        return Err(FrameError::NotPositive(0));
    }
    match prefix_value(body_len) {
        Ok(size) => {
            out[start..start + SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

fn prefix_value(body_len: usize) -> Result<i32, FrameError> {
    i32::try_from(body_len).map_err(|_| FrameError::TooLarge {
        size: body_len,
        max: i32::MAX as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        write_frame_header(&mut out, body.len()).unwrap();
        out.put_slice(body);
        out
    }

    /// Plays `wire` into `frames` in reads of at most `read_bytes`, collecting
    /// every frame that comes out.
    fn feed(frames: &mut FrameBuffer, wire: &[u8], read_bytes: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut rest = wire;
        while !rest.is_empty() {
            let room = frames.room();
            assert!(!room.is_empty());
            let n = read_bytes.min(room.len()).min(rest.len());
            room[..n].copy_from_slice(&rest[..n]);
            frames.filled(n);
            rest = &rest[n..];
            while let Some(frame) = frames.next_frame().unwrap() {
                out.push(frame);
            }
        }
        out
    }

    #[test]
    fn frame_buffer_hands_out_frames_in_order_however_the_reads_cut_them() {
        let bodies: Vec<Vec<u8>> = (1..40u8).map(|n| vec![n; n as usize * 7]).collect();
        let mut wire = BytesMut::new();
        for body in &bodies {
            wire.extend_from_slice(&framed(body));
        }
        for read_bytes in [1, 3, 64, 1000, wire.len()] {
            let mut frames = FrameBuffer::new(1 << 20, 64);
            let out = feed(&mut frames, &wire, read_bytes);
            assert_eq!(out.len(), bodies.len(), "reads of {read_bytes}");
            for (frame, body) in out.iter().zip(&bodies) {
                assert_eq!(&frame[..], &body[..]);
            }
            assert_eq!(frames.buffered(), 0);
        }
    }

    #[test]
    fn frame_buffer_reuses_its_room_instead_of_zeroing_a_chunk_per_read() {
        let mut frames = FrameBuffer::new(1 << 20, 4096);
        let room_bytes = frames.room().len();
        assert_eq!(room_bytes, 4096);
        let wire = framed(b"0123456789");
        let out = feed(&mut frames, &wire, wire.len());
        assert_eq!(out.len(), 1);
        // The same initialised room, 14 bytes shorter: no resize happened.
        assert_eq!(frames.room().len(), room_bytes - wire.len());
    }

    #[test]
    fn frame_buffer_room_covers_the_rest_of_a_large_frame() {
        let mut frames = FrameBuffer::new(1 << 20, 64);
        let body = vec![9u8; 100_000];
        let wire = framed(&body);
        let room = frames.room();
        room[..10].copy_from_slice(&wire[..10]);
        frames.filled(10);
        assert_eq!(frames.next_frame().unwrap(), None);
        assert_eq!(frames.room().len(), wire.len() - 10);
        let room = frames.room();
        room.copy_from_slice(&wire[10..]);
        frames.filled(wire.len() - 10);
        assert_eq!(&frames.next_frame().unwrap().unwrap()[..], &body[..]);
    }

    #[test]
    fn frame_buffer_refuses_bad_prefixes() {
        let mut frames = FrameBuffer::new(100, 64);
        frames.room()[..4].copy_from_slice(&101i32.to_be_bytes());
        frames.filled(4);
        assert_eq!(
            frames.next_frame(),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
        let mut frames = FrameBuffer::new(100, 64);
        frames.room()[..4].copy_from_slice(&(-1i32).to_be_bytes());
        frames.filled(4);
        assert_eq!(frames.next_frame(), Err(FrameError::NotPositive(-1)));
        assert_eq!(frames.next_frame_bytes(), Err(FrameError::NotPositive(-1)));
    }

    #[test]
    fn frame_buffer_tells_the_size_of_a_frame_before_its_body() {
        let mut frames = FrameBuffer::new(100, 64);
        frames.room()[..6].copy_from_slice(&[0, 0, 0, 3, b'a', b'b']);
        frames.filled(6);
        assert_eq!(frames.next_frame_bytes(), Ok(Some(3)));
        assert_eq!(frames.next_frame(), Ok(None));
        frames.room()[..5].copy_from_slice(&[b'c', 0, 0, 0, 101]);
        frames.filled(5);
        assert_eq!(&frames.next_frame().unwrap().unwrap()[..], b"abc");
        assert_eq!(
            frames.next_frame_bytes(),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
    }

    #[test]
    fn exactly_max_is_accepted() {
        let body = vec![7u8; 100];
        let mut buf = framed(&body);
        let frame = next_frame(&mut buf, 100).unwrap().unwrap();
        assert_eq!(&frame[..], &body[..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn max_plus_one_is_refused_before_the_body_arrives() {
        let mut buf = BytesMut::new();
        buf.put_i32(101);
        let capacity = buf.capacity();
        assert_eq!(
            next_frame(&mut buf, 100),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
        // Nothing was reserved for the refused body.
        assert_eq!(buf.capacity(), capacity);
    }

    #[test]
    fn huge_prefix_is_refused_without_allocating() {
        let mut buf = BytesMut::with_capacity(4);
        buf.put_i32(i32::MAX);
        assert_eq!(
            next_frame(&mut buf, 100 << 20),
            Err(FrameError::TooLarge {
                size: i32::MAX as usize,
                max: 100 << 20
            })
        );
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn negative_and_zero_sizes_are_refused() {
        for size in [0, -1, i32::MIN] {
            let mut buf = BytesMut::new();
            buf.put_i32(size);
            assert_eq!(
                next_frame(&mut buf, 1 << 20),
                Err(FrameError::NotPositive(size))
            );
        }
    }

    #[test]
    fn incomplete_prefix_waits() {
        let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
        assert_eq!(next_frame(&mut buf, 10), Ok(None));
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn split_across_reads_byte_by_byte() {
        let mut wire = framed(b"first frame");
        wire.extend_from_slice(&framed(b"2nd"));
        wire.extend_from_slice(&framed(b"x"));
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for byte in wire.iter() {
            buf.put_u8(*byte);
            while let Some(frame) = next_frame(&mut buf, 64).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(
            frames,
            vec![
                Bytes::from_static(b"first frame"),
                Bytes::from_static(b"2nd"),
                Bytes::from_static(b"x")
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn valid_prefix_reserves_the_body_once() {
        let mut buf = BytesMut::new();
        buf.put_i32(4096);
        assert_eq!(next_frame(&mut buf, 1 << 20), Ok(None));
        assert!(buf.capacity() >= 4 + 4096);
    }

    #[test]
    fn several_frames_in_one_read() {
        let mut buf = framed(b"a");
        buf.extend_from_slice(&framed(b"bc"));
        buf.extend_from_slice(&[0, 0]); // start of a third prefix
        assert_eq!(
            next_frame(&mut buf, 8).unwrap().unwrap(),
            Bytes::from_static(b"a")
        );
        assert_eq!(
            next_frame(&mut buf, 8).unwrap().unwrap(),
            Bytes::from_static(b"bc")
        );
        assert_eq!(next_frame(&mut buf, 8).unwrap(), None);
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn begin_and_finish_patch_the_prefix() {
        let mut out = BytesMut::new();
        out.put_slice(b"earlier");
        let start = begin_frame(&mut out);
        out.put_slice(b"hello");
        finish_frame(&mut out, start).unwrap();
        let mut rest = out.split_off(start);
        assert_eq!(
            next_frame(&mut rest, 5).unwrap().unwrap(),
            Bytes::from_static(b"hello")
        );
        assert_eq!(&out[..], b"earlier");
    }

    #[test]
    fn finish_of_an_empty_frame_rolls_back() {
        let mut out = BytesMut::new();
        let start = begin_frame(&mut out);
        assert_eq!(
            finish_frame(&mut out, start),
            Err(FrameError::NotPositive(0))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn oversized_body_length_is_refused_by_the_writer() {
        let mut out = BytesMut::new();
        assert!(matches!(
            write_frame_header(&mut out, i32::MAX as usize + 1),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(out.is_empty());
    }
}
