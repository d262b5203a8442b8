//! Record search (issue 14): full-text indexes of a partition's records,
//! and one query over any number of them.
//!
//! ## Design
//!
//! * **Per shard, per partition.** A shard owns its partitions, so it owns
//!   their indexes too: a partition's not-yet-archived records live in a
//!   [`TailIndex`] in RAM, fed by the shard's indexer thread
//!   ([`SearchHub`]). A sealed segment's index is built whole
//!   ([`SegmentIndexBuilder`]) as one checksummed blob that
//!   [`SegmentIndex`] opens: when the segment is archived, the blob goes
//!   into the archive as its search index member, so archived records
//!   stay searchable (`archives.rs` opens one from its head, the hotcache:
//!   the footer and at most two ranged reads, the rest on demand);
//!   local sealed segments below the tail are indexed the same way and
//!   kept in RAM. Nothing is shared across shards, and a search fans out
//!   to the owners and merges ([`search`] merges any number of indexes
//!   under one limit).
//! * **Off the reactor.** tantivy blocks (commits, merges, its own writer
//!   threads) and indexing costs CPU in proportion to the record bytes,
//!   so every call here is made from a blocking thread, never from a
//!   glommio task: the reactor hands batches over and keeps serving.
//! * **Searchable within a second.** The tail commits at most every
//!   [`TAIL_COMMIT_INTERVAL_MS`] (500 ms); an archived segment's records
//!   leave the tail ([`TailIndex::drop_below`]) once the archive, with
//!   its index, is recorded.
//! * **Fields** ([`schema`]): `offset`, `timestamp` (ms), `partition`
//!   (indexed, fast for ordering and ranges, stored); `key` (words) and
//!   `key_raw` (exact); `value` (a JSON object value by member:
//!   `value.user:alice`) and `value_text` (every value's words);
//!   `headers` ("key value" per header). The key, value and headers are
//!   also stored as produced, so a [`Hit`] is returned without reading the
//!   log or the archive. The topic is not a field: an index holds one partition of one
//!   topic, which its owner knows.
//!
//! Record bytes come from clients: decoding them goes through the
//! engine's bounded record walk, and no record byte can make this module
//! panic.

mod archives;
mod directory;
mod documents;
mod indexer;
mod query;
pub mod schema;
mod searcher;
mod segment;
mod tail;
mod turns;

#[cfg(test)]
mod tests;

pub use archives::{ArchiveRef, OPENED_INDEX_BYTES_MAX};
pub use directory::{RangeSource, BLOCK_CACHE_BYTES_MAX};
pub use documents::batch_documents;
pub use indexer::{
    AppendedBatch, Found, LocalSegment, SearchHub, SegmentIndexing, Tend, COMMIT_CHECK_INTERVAL_MS,
    CONTROL_QUEUE_JOBS_MAX, CRASH_SEGMENT_INDEXED, INDEX_QUEUE_JOBS_MAX, LOCAL_INDEX_BYTES_MAX,
    SEARCH_TIMEOUT_MS, SEGMENT_QUEUE_JOBS_MAX, TAIL_BATCH_BYTES_MAX, TAIL_CHECKPOINT_BYTES,
    UNINDEXED_RANGES_MAX,
};
pub use query::{
    search, search_each, Hit, Order, Payload, SearchRequest, Searched, SEARCH_LIMIT_MAX,
};
pub use schema::SearchSchema;
pub use searcher::SEARCHER_QUEUE_JOBS_MAX;
pub use segment::{
    index_segment_file, BuiltIndex, SegmentIndex, SegmentIndexBuilder, SegmentIndexHeader,
    CHUNK_RECORDS_BYTES_MAX, DATA_BLOCK_BYTES, SEGMENT_INDEX_HEADER_BYTES, SEGMENT_INDEX_VERSION,
    SEGMENT_WRITER_MEMORY_BYTES,
};
pub use tail::{TailIndex, TAIL_COMMIT_INTERVAL_MS, TAIL_WRITER_MEMORY_BYTES};

use ringlog_engine::batch::BatchError;

/// Why a search index could not be built, opened or searched.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query does not parse (tantivy's message).
    #[error("bad query: {0}")]
    BadQuery(String),
    /// A batch to index does not decode.
    #[error("batch: {0}")]
    Batch(#[from] BatchError),
    /// tantivy failed.
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The indexers cannot answer now (named why).
    #[error("search unavailable: {0}")]
    Unavailable(&'static str),
    /// A sealed segment to index does not read.
    #[error("segment: {0}")]
    Segment(#[from] ringlog_engine::Error),
    /// A segment index blob, or a stored document, is damaged.
    #[error("corrupt search index: {0}")]
    Corrupt(#[from] Corruption),
    /// The scratch file a large index is built in does not write or read.
    #[error("scratch file in {}: {error}", dir.display())]
    Scratch {
        /// The directory it lies in.
        dir: std::path::PathBuf,
        /// What failed.
        error: std::io::Error,
    },
}

impl From<std::io::Error> for SearchError {
    fn from(e: std::io::Error) -> Self {
        SearchError::Index(e.into())
    }
}

impl From<tantivy::directory::error::OpenReadError> for SearchError {
    fn from(e: tantivy::directory::error::OpenReadError) -> Self {
        SearchError::Index(e.into())
    }
}

/// What is wrong with a damaged index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    /// The blob ends before its header or body does.
    #[error("truncated at {actual_bytes} bytes")]
    Truncated {
        /// The blob's length.
        actual_bytes: u64,
    },
    /// Not a segment index blob.
    #[error("bad magic")]
    BadMagic,
    /// A container version this code does not read.
    #[error("unknown version {0}")]
    BadVersion(u16),
    /// The body's crc32c does not match.
    #[error("checksum {computed:#010x}, header says {stored:#010x}")]
    BadChecksum {
        /// The header's.
        stored: u32,
        /// The body's.
        computed: u32,
    },
    /// A block of the data does not match its crc32c in the head.
    #[error("data block {block}: crc32c {computed:#010x}, the head says {stored:#010x}")]
    DataBlock {
        /// The block's number (its first byte over [`DATA_BLOCK_BYTES`]).
        block: u64,
        /// The head's.
        stored: u32,
        /// The block's.
        computed: u32,
    },
    /// The file table is inconsistent (named).
    #[error("file table: {0}")]
    FileTable(&'static str),
    /// A stored document lacks a field or holds a malformed one (named).
    #[error("stored document: {0}")]
    StoredDocument(&'static str),
}
