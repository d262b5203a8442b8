//! One segment in memory, and the names of its files.
//!
//! Why the whole sparse index stays in memory: it is small (one entry per
//! `index.interval.bytes` of frames), every read and time lookup searches
//! it before touching the disk, and keeping it here is what lets the index
//! files be regenerated from memory at any time (`write.rs`) instead of
//! buffered. Sealed and active segments look the same here; only the
//! active one has a writer, in the log's state.

use crate::format::{
    segment_file_name, OffsetEntry, TimeEntry, FILE_HEADER_BYTES, FOOTER_PAYLOAD_BYTES,
    FRAME_HEADER_BYTES,
};
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub(super) const FOOTER_FRAME_BYTES: usize = FRAME_HEADER_BYTES + FOOTER_PAYLOAD_BYTES;

/// Read-only facts about one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// First offset.
    pub base_offset: u64,
    /// Next offset after the segment.
    pub end_offset: u64,
    /// Logical size in bytes.
    pub size_bytes: u64,
    /// Largest timestamp (i64::MIN if empty).
    pub max_timestamp_ms: i64,
    /// Sealed (immutable, footer written) or active.
    pub sealed: bool,
    /// The segment file.
    pub path: PathBuf,
}

pub(super) struct Segment<F> {
    pub(super) base_offset: u64,
    pub(super) file: Rc<F>,
    pub(super) path: PathBuf,
    pub(super) created_ms: i64,
    pub(super) end_offset: u64,
    /// Logical end of data, excluding the footer frame.
    pub(super) data_end_bytes: u64,
    pub(super) max_timestamp_ms: i64,
    pub(super) offset_index: Vec<OffsetEntry>,
    pub(super) time_index: Vec<TimeEntry>,
    pub(super) sealed: bool,
}

impl<F> Segment<F> {
    pub(super) fn has_data(&self) -> bool {
        self.end_offset > self.base_offset
    }

    /// File position to start scanning for `offset`.
    pub(super) fn position_for_offset(&self, offset: u64) -> u64 {
        let relative = offset.saturating_sub(self.base_offset);
        match self
            .offset_index
            .partition_point(|e| e.relative_offset as u64 <= relative)
        {
            0 => FILE_HEADER_BYTES as u64,
            i => self.offset_index[i - 1].position as u64,
        }
    }

    /// File position to start scanning for the first timestamp >= `ts`.
    pub(super) fn position_for_timestamp(&self, timestamp_ms: i64) -> u64 {
        match self
            .time_index
            .partition_point(|e| e.max_timestamp_ms < timestamp_ms)
        {
            0 => FILE_HEADER_BYTES as u64,
            i => self.time_index[i - 1].position as u64,
        }
    }

    pub(super) fn info(&self) -> SegmentInfo {
        SegmentInfo {
            base_offset: self.base_offset,
            end_offset: self.end_offset,
            size_bytes: self.data_end_bytes,
            max_timestamp_ms: self.max_timestamp_ms,
            sealed: self.sealed,
            path: self.path.clone(),
        }
    }
}

pub(super) fn index_path(dir: &Path, base_offset: u64, extension: &str) -> PathBuf {
    dir.join(segment_file_name(base_offset, extension))
}
