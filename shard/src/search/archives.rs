//! Archived segments' indexes, as a shard's indexer thread searches them.
//!
//! Each archive of a searchable topic carries its segment's index as a
//! member ([`MemberKind::SEARCH_INDEX`], the blob of
//! [`super::SegmentIndexBuilder`]). Opening one costs the footer and at
//! most two ranged reads: the footer (its position is in the metadata
//! log, so no probe of the object's tail), then the member's first
//! [`HEAD_PROBE_BYTES`] (the whole member when it is that small), and,
//! only when the head is longer, the rest of the head. The head holds the
//! hot ranges that opening and warming the index read, so the index opens
//! from it alone; a query reads the rest a block at a time
//! ([`super::directory`]). The reads are plain GETs past the chunk cache,
//! so a cold archive on S3 costs two or three GETs to open, plus one per
//! run of data blocks a query needs.
//!
//! **Pruning.** The metadata log records each archive's offsets and
//! timestamps ([`ArchiveRef`]); an archive whose timestamps or offsets
//! lie outside a search's time or offset range is never opened.
//!
//! **Kept open.** Opened indexes stay in RAM (their head and block
//! cache, or the whole member when it was read whole), up to
//! [`OPENED_INDEX_BYTES_MAX`] per indexer, least recently searched
//! dropped first; an archive without an index is remembered as such.
//!
//! **Faults.** An object that cannot be read, a member whose crc32c (or
//! head's, or a data block's) does not match, or a blob that does not
//! open, is logged as a warning naming the object, and the archive's
//! offsets are reported unindexed: the search answers from everything
//! else, and Fetch, which never reads this member, is unaffected.
//! Failures are not remembered, so a store that comes back serves the
//! next search.

use super::directory::RangeSource;
use super::{SearchError, SearchRequest, SegmentIndex, SegmentIndexHeader};
use crate::tiered::StoreHandle;
use futures_lite::future::block_on;
use ringlog_engine::archive::{Footer, MemberKind, TailRead};
use ringlog_engine::meta::ArchiveRecord;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// Bytes of opened archive indexes one indexer keeps in RAM.
pub const OPENED_INDEX_BYTES_MAX: u64 = 1 << 30;

/// The member bytes the first read after the footer takes: the header
/// and, usually, the head; a smaller member is read whole.
pub const HEAD_PROBE_BYTES: u64 = 256 << 10;

/// An archive as the metadata log records it: what search prunes by and
/// opens with.
pub type ArchiveRef = ArchiveRecord;

/// `archive`'s offsets, `first..last + 1`.
pub fn archive_offsets(archive: &ArchiveRef) -> Range<u64> {
    archive.first_offset..archive.last_offset + 1
}

/// Whether a record of `archive` can fall in `request`'s time and offset
/// ranges: the pruning by the metadata log's timestamps and offsets.
pub fn may_match(archive: &ArchiveRef, request: &SearchRequest) -> bool {
    request
        .from_ts_ms
        .is_none_or(|from| archive.max_timestamp_ms >= from)
        && request
            .to_ts_ms
            .is_none_or(|to| archive.min_timestamp_ms < to)
        && request
            .from_offset
            .is_none_or(|from| archive.last_offset >= from)
        && request.to_offset.is_none_or(|to| archive.first_offset < to)
}

/// An archive as search found it.
pub enum Opened {
    /// Its index.
    Index(SegmentIndex),
    /// It was archived without an index (the topic was not searchable,
    /// the indexer was behind, or the segment too large).
    NoIndex,
}

/// The archives one indexer opened, least recently searched dropped first.
#[derive(Default)]
pub struct OpenedArchives {
    entries: HashMap<String, (u64, Arc<Opened>)>,
    bytes: u64,
    clock: u64,
}

impl OpenedArchives {
    /// `archive`'s index, read from `store` unless open already.
    ///
    /// # Errors
    ///
    /// The object or its member does not read, or is damaged: the
    /// message names what failed (not remembered; the next search tries
    /// again).
    pub fn open(
        &mut self,
        store: &StoreHandle,
        archive: &ArchiveRef,
    ) -> Result<Arc<Opened>, String> {
        self.clock += 1;
        if let Some((used, opened)) = self.entries.get_mut(&archive.key) {
            *used = self.clock;
            return Ok(opened.clone());
        }
        let opened = Arc::new(read_index(store, archive)?);
        let bytes = match &*opened {
            Opened::Index(index) => index.held_bytes(),
            Opened::NoIndex => 0,
        };
        // Bounded: each round removes an entry.
        while self.bytes + bytes > OPENED_INDEX_BYTES_MAX && !self.entries.is_empty() {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(key, _)| key.clone());
            if let Some((_, gone)) = oldest.and_then(|key| self.entries.remove(&key)) {
                if let Opened::Index(index) = &*gone {
                    self.bytes -= index.held_bytes();
                }
            }
        }
        self.bytes += bytes;
        self.entries
            .insert(archive.key.clone(), (self.clock, opened.clone()));
        Ok(opened)
    }

    /// Forgets the archives not in `live` (retention or deletion removed
    /// them).
    pub fn retain(&mut self, live: impl Fn(&str) -> bool) {
        let bytes = &mut self.bytes;
        self.entries.retain(|key, (_, opened)| {
            let keep = live(key);
            if let (false, Opened::Index(index)) = (keep, &**opened) {
                *bytes -= index.held_bytes();
            }
            keep
        });
    }
}

/// Reads `archive`'s footer, then its index member's header and head if
/// it has one: at most three ranged reads.
fn read_index(store: &StoreHandle, archive: &ArchiveRef) -> Result<Opened, String> {
    let key = &archive.key;
    let tail = block_on(store.get_range(key, archive.footer_offset..archive.bytes))
        .map_err(|e| format!("reading the footer: {e}"))?;
    let footer = match Footer::from_tail(&tail, archive.bytes) {
        Ok(TailRead::Complete(footer)) => footer,
        Ok(TailRead::NeedFooter(trailer)) => {
            return Err(format!(
                "the trailer puts the footer at byte {}, the metadata at byte {}",
                trailer.footer_position, archive.footer_offset
            ))
        }
        Err(e) => return Err(format!("the footer: {e}")),
    };
    let Some(member) = footer.member(MemberKind::SEARCH_INDEX) else {
        return Ok(Opened::NoIndex);
    };
    let range = member.range();
    let member_bytes = range.end - range.start;
    let probe = range.start..range.start + member_bytes.min(HEAD_PROBE_BYTES);
    let front = block_on(store.get_range(key, probe.clone()))
        .map_err(|e| format!("reading the search index member: {e}"))?;
    let damaged = |e: SearchError| format!("the search index member: {e}");
    if probe == range {
        let crc = crc32c::crc32c(&front);
        if crc != member.crc32c {
            return Err(format!(
                "the search index member's crc32c is {crc:#010x}, the footer says {:#010x}",
                member.crc32c
            ));
        }
        let index = SegmentIndex::open(front.to_vec()).map_err(damaged)?;
        return Ok(Opened::Index(index));
    }
    let header = SegmentIndexHeader::parse(&front, member_bytes)
        .map_err(|e| damaged(SearchError::Corrupt(e)))?;
    let data_at = header.data_at();
    let front = if data_at <= front.len() as u64 {
        front
    } else {
        let rest = block_on(store.get_range(key, probe.end..range.start + data_at))
            .map_err(|e| format!("reading the search index head: {e}"))?;
        [front, rest].concat().into()
    };
    let data = Arc::new(MemberData {
        store: store.clone(),
        key: key.clone(),
        data_at: range.start + data_at,
    });
    let index = SegmentIndex::open_ranged(&header, &front, data).map_err(damaged)?;
    Ok(Opened::Index(index))
}

/// The data of an archive's search index member, read on demand.
struct MemberData {
    store: StoreHandle,
    key: String,
    /// Where the member's data begins in the object.
    data_at: u64,
}

impl RangeSource for MemberData {
    fn read(&self, range: Range<u64>) -> std::io::Result<Vec<u8>> {
        let at = self.data_at + range.start..self.data_at + range.end;
        block_on(self.store.get_range(&self.key, at.clone()))
            .map(|bytes| bytes.to_vec())
            .map_err(|e| {
                std::io::Error::other(format!("{}: search index bytes {at:?}: {e}", self.key))
            })
    }
}
