//! The index of one partition's records not yet archived, in RAM.
//!
//! Memory: tantivy's writer arena takes up to [`TAIL_WRITER_MEMORY_BYTES`]
//! (its minimum for one indexing thread, ~15 MB) before it flushes a
//! segment into the RAM directory, and the committed segments then hold
//! the tail's postings, fast fields and stored records (lz4), roughly the
//! size of the tail's records again. [`TailIndex::drop_below`] forgets
//! what an archive now covers (merges reclaim the space), so the sum is
//! bounded by the partition's unarchived bytes plus the arena. The writer
//! also runs tantivy's threads (one indexing thread, its segment updater
//! and merges), which is why the index is driven from a blocking thread,
//! never from the reactor.

use super::documents::batch_documents;
use super::schema::SearchSchema;
use super::SearchError;
use std::ops::{Bound, Range};
use tantivy::query::RangeQuery;
use tantivy::schema::Value;
use tantivy::{IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

/// The most time between an append and the commit that makes it
/// searchable; a record must be searchable within a second.
pub const TAIL_COMMIT_INTERVAL_MS: i64 = 500;
const _: () = assert!(TAIL_COMMIT_INTERVAL_MS < 1000);

/// The writer's memory budget: tantivy's minimum for its one indexing
/// thread (its `MEMORY_BUDGET_NUM_BYTES_MIN`, not exported).
pub const TAIL_WRITER_MEMORY_BYTES: usize = 15_000_000;

/// One partition's tail index.
pub struct TailIndex {
    schema: SearchSchema,
    partition: u32,
    writer: IndexWriter<TantivyDocument>,
    reader: IndexReader,
    /// The offsets indexed and not dropped: `start..end` (empty at first).
    offsets: Range<u64>,
    /// Whether something was added or dropped since the last commit.
    dirty: bool,
    last_commit_ms: i64,
}

impl TailIndex {
    /// An empty index of `partition`.
    pub fn new(partition: u32) -> Result<Self, SearchError> {
        let schema = SearchSchema::new();
        let (index, writer) = schema.ram_index(TAIL_WRITER_MEMORY_BYTES)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(TailIndex {
            schema,
            partition,
            writer,
            reader,
            offsets: 0..0,
            dirty: false,
            last_commit_ms: i64::MIN,
        })
    }

    /// Indexes every record of `batch` (a stored batch, whole); searchable
    /// after the next commit. Returns how many records were added.
    pub fn add_batch(&mut self, batch: &[u8]) -> Result<usize, SearchError> {
        let (documents, _) = batch_documents(&self.schema, self.partition, batch)?;
        let count = documents.len();
        for document in documents {
            let offset = document
                .get_first(self.schema.offset)
                .and_then(|v| v.as_u64());
            if let Some(offset) = offset {
                if self.offsets.is_empty() {
                    self.offsets = offset..offset + 1;
                } else {
                    self.offsets.start = self.offsets.start.min(offset);
                    self.offsets.end = self.offsets.end.max(offset + 1);
                }
            }
            self.writer.add_document(document)?;
        }
        self.dirty |= count > 0;
        Ok(count)
    }

    /// Commits (and makes searchable) what changed, if anything did and
    /// [`TAIL_COMMIT_INTERVAL_MS`] has passed since the last commit at
    /// `now_ms`. Returns whether it committed.
    pub fn commit_if_due(&mut self, now_ms: i64) -> Result<bool, SearchError> {
        if !self.dirty || now_ms.saturating_sub(self.last_commit_ms) < TAIL_COMMIT_INTERVAL_MS {
            return Ok(false);
        }
        self.writer.commit()?;
        self.reader.reload()?;
        self.dirty = false;
        self.last_commit_ms = now_ms;
        Ok(true)
    }

    /// Commits what changed now, at `now_ms`, whatever the interval (a
    /// forgotten range must be gone before it is reported unindexed).
    pub fn commit(&mut self, now_ms: i64) -> Result<(), SearchError> {
        if self.dirty {
            self.writer.commit()?;
            self.reader.reload()?;
            self.dirty = false;
            self.last_commit_ms = now_ms;
        }
        Ok(())
    }

    /// Forgets the records below `offset` (an archive now holds them), at
    /// the next commit.
    pub fn drop_below(&mut self, offset: u64) -> Result<(), SearchError> {
        if offset <= self.offsets.start {
            return Ok(());
        }
        let below = RangeQuery::new(
            Bound::Unbounded,
            Bound::Excluded(Term::from_field_u64(self.schema.offset, offset)),
        );
        self.writer.delete_query(Box::new(below))?;
        self.offsets.start = offset.min(self.offsets.end);
        self.dirty = true;
        Ok(())
    }

    /// The offsets the index holds (`start..end`; empty when none).
    pub fn offsets(&self) -> Range<u64> {
        self.offsets.clone()
    }

    /// A searcher over what was last committed.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }
}
