//! Scanning frames in order: the chunked [`Scanner`], shared by recovery
//! and time lookups, and the segment scans of recovery.
//!
//! Why chunks: recovery and ListOffsets by time walk frames one after
//! another from an index position, and reading [`SCAN_CHUNK_BYTES`] at a
//! time (a chunk grows for a larger frame) costs one read per chunk, not
//! per frame. The scanner stops at the first item that is not a frame and
//! leaves judging it to the caller: a torn tail and damage in the middle
//! of data look alike at that position, and only a look further on
//! (`find_valid_frame_after`: does a valid frame continue the offsets?)
//! tells a tail to truncate from damage that must fail the open.

use super::Log;
use crate::error::{Corruption, Error, Result};
use crate::format::{
    decode_footer, decode_segment_header, peek_frame_header, read_frame, FrameHeader, FrameRead,
    OffsetEntry, SegmentFooter, TimeEntry, FILE_HEADER_BYTES, FRAME_HEADER_BYTES,
};
use crate::io::{Storage, StorageFile};
use std::path::Path;

/// Bytes read per step when scanning frames.
pub(super) const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// What the scanner found at the current position.
#[derive(Debug)]
pub(super) enum ScanItem {
    Frame(FrameHeader),
    End,
    Invalid(Corruption),
}

/// Reads frames sequentially in large chunks.
pub(super) struct Scanner<'a, F: StorageFile> {
    file: &'a F,
    pos: u64,
    end: u64,
    max_payload_bytes: usize,
    chunk: Option<F::Read>,
    chunk_pos: u64,
    done: bool,
}

impl<'a, F: StorageFile> Scanner<'a, F> {
    pub(super) fn new(file: &'a F, pos: u64, end: u64, max_payload_bytes: usize) -> Self {
        Scanner {
            file,
            pos,
            end,
            max_payload_bytes,
            chunk: None,
            chunk_pos: 0,
            done: false,
        }
    }

    fn chunk_slice(&self) -> &[u8] {
        match &self.chunk {
            Some(c)
                if self.pos >= self.chunk_pos && self.pos <= self.chunk_pos + c.len() as u64 =>
            {
                &c[(self.pos - self.chunk_pos) as usize..]
            }
            _ => &[],
        }
    }

    /// The payload of the frame `next` just returned.
    pub(super) fn last_payload(&self, header: &FrameHeader) -> &[u8] {
        let chunk = self.chunk.as_ref().expect("a frame was read");
        let start =
            (self.pos - header.frame_bytes() as u64 - self.chunk_pos) as usize + FRAME_HEADER_BYTES;
        &chunk[start..start + header.payload_len as usize]
    }

    async fn refill(&mut self, min_len: usize) -> std::io::Result<()> {
        let len = ((self.end - self.pos) as usize).min(SCAN_CHUNK_BYTES.max(min_len));
        self.chunk = Some(self.file.read_at(self.pos, len).await?);
        self.chunk_pos = self.pos;
        Ok(())
    }

    /// The next item; `None` at `end`. After `End` or `Invalid` the scan
    /// stops and `pos` stays at the start of that item.
    pub(super) async fn next(&mut self) -> std::io::Result<Option<ScanItem>> {
        if self.done || self.pos >= self.end {
            return Ok(None);
        }
        let remaining = (self.end - self.pos) as usize;
        if self.chunk_slice().len() < FRAME_HEADER_BYTES.min(remaining) {
            self.refill(FRAME_HEADER_BYTES).await?;
        }
        let mut found = read_frame(self.chunk_slice(), self.max_payload_bytes);
        if found == FrameRead::Invalid(Corruption::LengthPastEnd)
            && self.chunk_slice().len() < remaining
        {
            let declared =
                peek_frame_header(self.chunk_slice()).map_or(0, |h| h.payload_len as usize);
            self.refill(FRAME_HEADER_BYTES + declared.min(self.max_payload_bytes))
                .await?;
            found = read_frame(self.chunk_slice(), self.max_payload_bytes);
        }
        Ok(Some(match found {
            FrameRead::Frame(h) => {
                self.pos += h.frame_bytes() as u64;
                ScanItem::Frame(h)
            }
            FrameRead::End => {
                self.done = true;
                ScanItem::End
            }
            FrameRead::Invalid(c) => {
                self.done = true;
                ScanItem::Invalid(c)
            }
        }))
    }
}

/// Recovery's scans: index entries rebuilt from frames, and a torn tail
/// told from damage.
impl<S: Storage> Log<S> {
    /// Scans frames from `from` to `end`, checking offset continuity and
    /// building index entries as appends would have.
    pub(super) async fn scan_segment(
        &self,
        file: &S::File,
        path: &Path,
        expected: u64,
        from: u64,
        end: u64,
        max_ts: i64,
    ) -> Result<Scanned> {
        let segment_base = {
            // The relative offsets are against the file's base, which the
            // caller's first expected offset may exceed (resumed scan).
            let head = file
                .read_at(0, FILE_HEADER_BYTES)
                .await
                .map_err(|e| Error::io(path, e))?;
            decode_segment_header(&head)
                .map_err(|c| Error::corrupt(path, 0, c))?
                .base_offset
        };
        let mut out = Scanned {
            end_offset: expected,
            data_end_bytes: from,
            max_timestamp_ms: max_ts,
            offset_index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_index: 0,
            invalid: None,
            footer: None,
        };
        let interval = self.config.borrow().index_interval_bytes;
        let mut first = true;
        let mut scanner = Scanner::new(file, from, end, self.frame_payload_max);
        let mut position = from;
        while let Some(item) = scanner.next().await.map_err(|e| Error::io(path, e))? {
            match item {
                ScanItem::Frame(h) if h.is_footer() => {
                    let footer = decode_footer(scanner.last_payload(&h))
                        .map_err(|c| Error::corrupt(path, position, c))?;
                    if footer.end_offset != out.end_offset || !footer_sits_at(&h, &footer, position)
                    {
                        return Err(Error::corrupt(
                            path,
                            position,
                            Corruption::Malformed("footer disagrees with the frames"),
                        ));
                    }
                    out.footer = Some(footer);
                    break;
                }
                ScanItem::Frame(h) => {
                    if h.base_offset != out.end_offset {
                        return Err(Error::corrupt(
                            path,
                            position,
                            Corruption::OffsetGap {
                                expected: out.end_offset,
                                found: h.base_offset,
                            },
                        ));
                    }
                    out.max_timestamp_ms = out.max_timestamp_ms.max(h.max_timestamp_ms);
                    if first || out.bytes_since_index >= interval {
                        let relative_offset = (h.base_offset - segment_base) as u32;
                        out.offset_index.push(OffsetEntry {
                            relative_offset,
                            position: position as u32,
                        });
                        out.time_index.push(TimeEntry {
                            max_timestamp_ms: out.max_timestamp_ms,
                            relative_offset,
                            position: position as u32,
                        });
                        out.bytes_since_index = 0;
                    }
                    first = false;
                    out.bytes_since_index += h.frame_bytes() as u64;
                    out.end_offset = h.end_offset();
                    position += h.frame_bytes() as u64;
                    out.data_end_bytes = position;
                }
                ScanItem::End => break,
                ScanItem::Invalid(corruption) => {
                    out.invalid = Some((position, corruption));
                    break;
                }
            }
        }
        Ok(out)
    }

    /// After a bad frame at `from`, looks for any later valid frame
    /// continuing the offsets — the difference between a torn tail (safe
    /// to truncate) and damage in the middle of acknowledged data (not).
    pub(super) async fn find_valid_frame_after(
        &self,
        file: &S::File,
        path: &Path,
        from: u64,
        end: u64,
        expected: u64,
    ) -> Result<Option<u64>> {
        let mut chunk_start = from + 1;
        while chunk_start + FRAME_HEADER_BYTES as u64 <= end {
            let len = ((end - chunk_start) as usize).min(SCAN_CHUNK_BYTES + FRAME_HEADER_BYTES);
            let bytes = file
                .read_at(chunk_start, len)
                .await
                .map_err(|e| Error::io(path, e))?;
            let last_start = bytes.len().saturating_sub(FRAME_HEADER_BYTES);
            for at in 0..=last_start.min(SCAN_CHUNK_BYTES - 1) {
                let h = peek_frame_header(&bytes[at..]).expect("a whole header");
                let (payload_len, base_offset) = (u64::from(h.payload_len), h.base_offset);
                let pos = chunk_start + at as u64;
                // Cheap filters before reading and checksumming a candidate:
                // a plausible length and an offset that could follow.
                let plausible = payload_len > 0
                    && payload_len as usize <= self.frame_payload_max
                    && pos + FRAME_HEADER_BYTES as u64 + payload_len <= end
                    && base_offset >= expected
                    && base_offset - expected <= end - from;
                if !plausible {
                    continue;
                }
                let candidate = file
                    .read_at(pos, FRAME_HEADER_BYTES + payload_len as usize)
                    .await
                    .map_err(|e| Error::io(path, e))?;
                if matches!(
                    read_frame(&candidate, self.frame_payload_max),
                    FrameRead::Frame(_)
                ) {
                    return Ok(Some(pos));
                }
            }
            chunk_start += SCAN_CHUNK_BYTES as u64;
        }
        Ok(None)
    }
}

/// Whether a footer frame (header `h`, payload `footer`) at `position`
/// says so itself: the position its payload names, and the same end
/// offset in header and payload. Both ways of finding a footer (at a
/// file's end, or by walking the frames) check it, so both agree on what
/// a footer is.
pub(super) fn footer_sits_at(h: &FrameHeader, footer: &SegmentFooter, position: u64) -> bool {
    footer.data_end_bytes == position && footer.end_offset == h.base_offset
}

pub(super) struct Scanned {
    pub(super) end_offset: u64,
    pub(super) data_end_bytes: u64,
    pub(super) max_timestamp_ms: i64,
    pub(super) offset_index: Vec<OffsetEntry>,
    pub(super) time_index: Vec<TimeEntry>,
    pub(super) bytes_since_index: u64,
    pub(super) invalid: Option<(u64, Corruption)>,
    pub(super) footer: Option<SegmentFooter>,
}
