//! Readers: frames by offset (Fetch) and by time (ListOffsets).
//!
//! Why whole frames, from one segment, below the high watermark: a frame
//! is the unit with a crc and an offset range, so a reader never gets part
//! of a batch, and under `Always` never a record a crash could take back.
//! A call is usually one read into one buffer, and the caller borrows the
//! payloads from it ([`ReadBatches`]), so nothing is copied per frame.
//! Reads take no I/O permit: they run beside appends and syncs.

use super::scan::{ScanItem, Scanner, SCAN_CHUNK_BYTES};
use super::{high_watermark_of, Log};
use crate::error::{Corruption, Error, Result};
use crate::format::{peek_frame_header, read_frame, FrameHeader, FrameRead, FRAME_HEADER_BYTES};
use crate::io::{Storage, StorageFile};
use std::ops::Range;

/// A frame returned by [`Log::read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSpan {
    /// First offset of the payload.
    pub base_offset: u64,
    /// Offsets covered.
    pub count: u32,
    /// Largest timestamp in the payload.
    pub max_timestamp_ms: i64,
    range: Range<usize>,
}

/// Whole frames read from one segment; payloads borrow one read buffer.
pub struct ReadBatches<R> {
    buf: Option<R>,
    frames: Vec<FrameSpan>,
}

impl<R: std::ops::Deref<Target = [u8]>> ReadBatches<R> {
    fn empty() -> Self {
        ReadBatches {
            buf: None,
            frames: Vec::new(),
        }
    }

    /// No frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames with their payloads, in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (&FrameSpan, &[u8])> {
        self.frames.iter().map(|f| {
            let buf = self.buf.as_ref().expect("frames imply a buffer");
            (f, &buf[f.range.clone()])
        })
    }

    /// Offset after the last frame, if any.
    pub fn next_offset(&self) -> Option<u64> {
        self.frames.last().map(|f| f.base_offset + f.count as u64)
    }

    /// Sum of payload bytes.
    pub fn payload_bytes(&self) -> usize {
        self.frames.iter().map(|f| f.range.len()).sum()
    }
}

impl<S: Storage> Log<S> {
    /// Whole frames starting with the one that holds `offset`, from one
    /// segment, up to `max_bytes` of payload — but always at least one frame
    /// (as Kafka returns an oversized first batch). Empty at the high
    /// watermark; [`Error::OffsetOutOfRange`] outside `[start, hw]`.
    pub async fn read(
        &self,
        offset: u64,
        max_bytes: usize,
    ) -> Result<ReadBatches<<S::File as StorageFile>::Read>> {
        let (file, path, mut position, segment_end_bytes, high_watermark) = {
            let st = self.state.borrow();
            let high_watermark = self.high_watermark();
            if offset < st.log_start_offset || offset > high_watermark {
                return Err(Error::OffsetOutOfRange {
                    offset,
                    start: st.log_start_offset,
                    end: high_watermark,
                });
            }
            if offset == high_watermark {
                return Ok(ReadBatches::empty());
            }
            let segment = st
                .segments
                .range(..=offset)
                .next_back()
                .map(|(_, s)| s)
                .expect("offset at or above log start lies in a segment");
            (
                segment.file.clone(),
                segment.path.clone(),
                segment.position_for_offset(offset),
                segment.data_end_bytes,
                high_watermark,
            )
        };
        let want_bytes = max_bytes.clamp(1, SCAN_CHUNK_BYTES * 16);
        while position < segment_end_bytes {
            // From the index entry up to `offset` there are at most
            // index_interval_bytes of frames to skip; after it, frame headers
            // add at most one header per 61-byte minimum batch (< 2x).
            let window = 2 * want_bytes as u64
                + self.config.borrow().index_interval_bytes
                + FRAME_HEADER_BYTES as u64;
            let len = (segment_end_bytes - position).min(window) as usize;
            let buf = file
                .read_at(position, len)
                .await
                .map_err(|e| Error::io(&path, e))?;
            let mut cursor = 0usize;
            let mut frames = Vec::new();
            let mut payload_total = 0usize;
            let mut need_bigger = None;
            while cursor < buf.len() {
                match read_frame(&buf[cursor..], self.frame_payload_max) {
                    FrameRead::Frame(h) if h.is_footer() => break,
                    FrameRead::Frame(h) => {
                        if h.base_offset >= high_watermark {
                            break;
                        }
                        let frame_bytes = h.frame_bytes();
                        if h.end_offset() > offset {
                            if !frames.is_empty()
                                && payload_total + h.payload_len as usize > max_bytes
                            {
                                break;
                            }
                            payload_total += h.payload_len as usize;
                            frames.push(FrameSpan {
                                base_offset: h.base_offset,
                                count: h.count,
                                max_timestamp_ms: h.max_timestamp_ms,
                                range: cursor + FRAME_HEADER_BYTES..cursor + frame_bytes,
                            });
                        }
                        cursor += frame_bytes;
                    }
                    FrameRead::End => break,
                    FrameRead::Invalid(Corruption::LengthPastEnd)
                        if position + (buf.len() as u64) < segment_end_bytes =>
                    {
                        need_bigger = Some(cursor);
                        break;
                    }
                    FrameRead::Invalid(corruption) => {
                        return Err(Error::corrupt(&path, position + cursor as u64, corruption));
                    }
                }
            }
            if !frames.is_empty() {
                return Ok(ReadBatches {
                    buf: Some(buf),
                    frames,
                });
            }
            match need_bigger {
                // The wanted frame is larger than this read: read it whole.
                Some(0) => {
                    let declared = peek_frame_header(&buf).map_or(0, |h| h.payload_len as usize);
                    let grown = FRAME_HEADER_BYTES + declared.min(self.frame_payload_max);
                    if grown <= len {
                        return Err(Error::corrupt(&path, position, Corruption::LengthPastEnd));
                    }
                    let bigger = file
                        .read_at(position, grown)
                        .await
                        .map_err(|e| Error::io(&path, e))?;
                    if let FrameRead::Frame(h) = read_frame(&bigger, self.frame_payload_max) {
                        if h.end_offset() > offset && h.base_offset < high_watermark {
                            return Ok(ReadBatches {
                                buf: Some(bigger),
                                frames: vec![FrameSpan {
                                    base_offset: h.base_offset,
                                    count: h.count,
                                    max_timestamp_ms: h.max_timestamp_ms,
                                    range: FRAME_HEADER_BYTES..h.frame_bytes(),
                                }],
                            });
                        }
                        position += h.frame_bytes() as u64;
                    } else {
                        return Err(Error::corrupt(&path, position, Corruption::LengthPastEnd));
                    }
                }
                Some(at) => position += at as u64,
                None if cursor == 0 => break,
                None => position += cursor as u64,
            }
        }
        Ok(ReadBatches::empty())
    }

    /// The first offset at or after the log start whose frame's max
    /// timestamp is >= `timestamp_ms` (frame granularity: the log does not
    /// look inside payloads), or `None` when every readable frame is older.
    /// A frame that straddles the log start answers with the log start.
    /// [`crate::partition::PartitionLog::offset_for_timestamp`] is the
    /// exact, per-record answer for Kafka batches.
    pub async fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<u64>> {
        self.search_by_timestamp(timestamp_ms, |frame, _, start| {
            Ok(Some(frame.base_offset.max(start)))
        })
        .await
    }

    /// Offers `inspect` the readable frames that end above the log start
    /// and whose max timestamp is >= `timestamp_ms`, in offset order, with
    /// their payload and the log start, starting at the first frame that
    /// can qualify (time index); returns the first answer it gives, or
    /// `None` when it declines every frame. Its [`Corruption`] becomes an
    /// [`Error::Corrupt`] naming the segment and frame position.
    pub async fn search_by_timestamp<T>(
        &self,
        timestamp_ms: i64,
        mut inspect: impl FnMut(&FrameHeader, &[u8], u64) -> Result<Option<T>, Corruption>,
    ) -> Result<Option<T>> {
        // Normally one segment is scanned. The segment holding the log start
        // can match only below the start, and `inspect` may decline every
        // candidate of a segment; then a later segment answers. Each round
        // moves to a later segment, so this ends.
        let mut after_base: Option<u64> = None;
        loop {
            let (file, path, mut position, end_bytes, high_watermark, start, base) = {
                let st = self.state.borrow();
                let high_watermark = high_watermark_of(&st, self.config.borrow().flush_policy);
                let start = st.log_start_offset;
                let Some(segment) = st.segments.values().find(|s| {
                    after_base.is_none_or(|b| s.base_offset > b)
                        && s.has_data()
                        && s.end_offset > start
                        && s.max_timestamp_ms >= timestamp_ms
                }) else {
                    return Ok(None);
                };
                // Every frame before the time index position is older than
                // `timestamp_ms`, and every frame before the offset index
                // position lies below the start: scan from the later one.
                let position = segment
                    .position_for_timestamp(timestamp_ms)
                    .max(segment.position_for_offset(start));
                (
                    segment.file.clone(),
                    segment.path.clone(),
                    position,
                    segment.data_end_bytes,
                    high_watermark,
                    start,
                    segment.base_offset,
                )
            };
            let mut scanner = Scanner::new(&*file, position, end_bytes, self.frame_payload_max);
            while let Some(item) = scanner.next().await.map_err(|e| Error::io(&path, e))? {
                match item {
                    ScanItem::Frame(h) if h.is_footer() => break,
                    ScanItem::Frame(h) if h.base_offset >= high_watermark => return Ok(None),
                    ScanItem::Frame(h)
                        if h.end_offset() > start && h.max_timestamp_ms >= timestamp_ms =>
                    {
                        match inspect(&h, scanner.last_payload(&h), start) {
                            Ok(Some(found)) => return Ok(Some(found)),
                            Ok(None) => position += h.frame_bytes() as u64,
                            Err(corruption) => {
                                return Err(Error::corrupt(&path, position, corruption))
                            }
                        }
                    }
                    ScanItem::Frame(h) => position += h.frame_bytes() as u64,
                    ScanItem::End => break,
                    ScanItem::Invalid(corruption) => {
                        return Err(Error::corrupt(&path, position, corruption))
                    }
                }
            }
            after_base = Some(base);
        }
    }
}
