//! The index of one sealed segment, built whole and kept as one blob (an
//! archive member), then reopened from those bytes for search.
//!
//! The blob is a small container of the index's files, since tantivy
//! writes an index as several files:
//!
//! ```text
//! magic "RLSEARCH" | version u16 | file count u32 | body bytes u64 | crc32c u32   (26 bytes, LE)
//! body: per file: name length u16, name (UTF-8), data length u64; then the files' data in order
//! ```
//!
//! The crc32c covers the body: damage in storage or transit is a
//! [`Corruption`], found before tantivy reads a byte (the blob is
//! ringlog's own output, never client bytes). Reopening copies the files into a tantivy
//! `RamDirectory` (the simplest correct choice: the blob is read once from
//! the archive anyway, and a directory over the blob itself would have to
//! implement tantivy's locking and watching for nothing); the index costs
//! its blob's size in memory while open.

use super::documents::batch_documents;
use super::schema::{tokenizers, SearchSchema};
use super::{Corruption, SearchError};
use ringlog_engine::archive::for_each_stored_batch;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use tantivy::directory::{Directory, RamDirectory};
use tantivy::{
    Index, IndexReader, ReloadPolicy, Searcher, SingleSegmentIndexWriter, TantivyDocument,
};

const MAGIC: &[u8; 8] = b"RLSEARCH";
/// The container version this code writes and reads.
pub const SEGMENT_INDEX_VERSION: u16 = 1;
const HEADER_BYTES: usize = 26;
/// The most files one blob may name (an index has a handful per segment).
const FILES_MAX: u32 = 4096;
/// The longest file name (tantivy's are a UUID and an extension).
const NAME_BYTES_MAX: usize = 255;

/// The writer's memory budget while a segment is indexed: a segment is
/// indexed whole, by one thread, at most two per shard at a time (as many
/// as uploads in flight).
pub const SEGMENT_WRITER_MEMORY_BYTES: usize = 64 << 20;

/// Bytes of the largest segment file indexed when it is archived: the
/// builder holds the index in RAM (postings, fast fields and the stored
/// records: about the records' size, decompressed) until the blob is
/// written into the archive, one segment at a time per shard. A larger
/// segment is archived without an index and its offsets are reported
/// unindexed.
pub const SEGMENT_INDEX_RECORDS_BYTES_MAX: u64 = 256 << 20;

/// Builds the index of the sealed segment file at `path` (of
/// `partition`) as one blob, reading the file once, a window at a time.
/// Checks `cancelled` before every batch: a caller that stopped waiting
/// ends the work.
///
/// # Errors
///
/// The file does not read or is not a sealed segment
/// ([`SearchError::Segment`]), a batch does not decode (then no part of
/// the segment is indexed: the archive ships without its index and the
/// whole range is reported unindexed, never a silent gap), or
/// `cancelled` was set ([`SearchError::Unavailable`]).
pub fn index_segment_file(
    partition: u32,
    path: &Path,
    cancelled: &AtomicBool,
) -> Result<Vec<u8>, SearchError> {
    let file = std::fs::File::open(path).map_err(|e| ringlog_engine::Error::io(path, e))?;
    let len_bytes = file
        .metadata()
        .map_err(|e| ringlog_engine::Error::io(path, e))?
        .len();
    let name = path.display().to_string();
    let mut builder = SegmentIndexBuilder::new(partition)?;
    let mut stopped = None;
    let walked = for_each_stored_batch(file, len_bytes, &name, |batch| {
        let added = if cancelled.load(Ordering::Relaxed) {
            Err(SearchError::Unavailable("the archiver stopped waiting"))
        } else {
            builder.add_batch(batch).map(|_| ())
        };
        added.map_err(|e| {
            stopped = Some(e);
            ringlog_engine::Error::io(path, std::io::Error::other("indexing stopped"))
        })
    });
    if let Some(e) = stopped {
        return Err(e);
    }
    walked?;
    builder.finish()
}

/// Builds the index of one sealed segment, on the calling thread, as one
/// tantivy segment: no writer threads, no channel per document and no
/// merge (the segment is indexed whole, so there is nothing to commit
/// along the way), which is most of what a general index writer spends
/// beyond tokenizing and recording postings.
pub struct SegmentIndexBuilder {
    schema: SearchSchema,
    partition: u32,
    writer: SingleSegmentIndexWriter<TantivyDocument>,
}

impl SegmentIndexBuilder {
    /// An empty index of `partition`'s segment.
    pub fn new(partition: u32) -> Result<Self, SearchError> {
        let schema = SearchSchema::new();
        let writer = Index::builder()
            .schema(schema.schema.clone())
            .tokenizers(tokenizers())
            .single_segment_index_writer(RamDirectory::create(), SEGMENT_WRITER_MEMORY_BYTES)?;
        Ok(SegmentIndexBuilder {
            schema,
            partition,
            writer,
        })
    }

    /// Indexes every record of `batch` (a stored batch, whole). Returns how
    /// many records were added.
    pub fn add_batch(&mut self, batch: &[u8]) -> Result<usize, SearchError> {
        let documents = batch_documents(&self.schema, self.partition, batch)?;
        let count = documents.len();
        for document in documents {
            self.writer.add_document(document)?;
        }
        Ok(count)
    }

    /// Writes the segment and returns the index as one blob.
    pub fn finish(self) -> Result<Vec<u8>, SearchError> {
        let index = self.writer.finalize()?;
        let directory = index.directory();
        let mut names: Vec<PathBuf> = directory.list_managed_files().into_iter().collect();
        names.push(PathBuf::from("meta.json"));
        names.sort();
        names.dedup();
        let mut files = Vec::with_capacity(names.len());
        for name in names {
            if directory.exists(&name)? {
                let data = directory.atomic_read(&name)?;
                files.push((name.to_string_lossy().into_owned(), data));
            }
        }
        Ok(encode(&files))
    }
}

/// The container of `files` (name, data).
fn encode(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, data) in files {
        body.extend_from_slice(&(name.len() as u16).to_le_bytes());
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&(data.len() as u64).to_le_bytes());
    }
    for (_, data) in files {
        body.extend_from_slice(data);
    }
    let mut blob = Vec::with_capacity(HEADER_BYTES + body.len());
    blob.extend_from_slice(MAGIC);
    blob.extend_from_slice(&SEGMENT_INDEX_VERSION.to_le_bytes());
    blob.extend_from_slice(&(files.len() as u32).to_le_bytes());
    blob.extend_from_slice(&(body.len() as u64).to_le_bytes());
    blob.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    blob.extend_from_slice(&body);
    blob
}

/// Reads little-endian integers off the front of a slice.
struct Reader<'b> {
    bytes: &'b [u8],
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], Corruption> {
        if n > self.bytes.len() {
            return Err(Corruption::FileTable("the file table runs past the body"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Corruption> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// The files of a container, every check passed.
fn decode(blob: &[u8]) -> Result<Vec<(&str, &[u8])>, Corruption> {
    let truncated = || Corruption::Truncated {
        actual_bytes: blob.len() as u64,
    };
    let header = blob.get(..HEADER_BYTES).ok_or_else(truncated)?;
    let mut fields = Reader { bytes: header };
    if &fields.array::<8>()? != MAGIC {
        return Err(Corruption::BadMagic);
    }
    let version = u16::from_le_bytes(fields.array()?);
    if version != SEGMENT_INDEX_VERSION {
        return Err(Corruption::BadVersion(version));
    }
    let count = u32::from_le_bytes(fields.array()?);
    let body_bytes = u64::from_le_bytes(fields.array()?);
    let stored_crc = u32::from_le_bytes(fields.array()?);
    let body = &blob[HEADER_BYTES..];
    if (body.len() as u64) < body_bytes {
        return Err(truncated());
    }
    if body.len() as u64 > body_bytes {
        return Err(Corruption::FileTable("bytes after the body"));
    }
    let computed_crc = crc32c::crc32c(body);
    if computed_crc != stored_crc {
        return Err(Corruption::BadChecksum {
            stored: stored_crc,
            computed: computed_crc,
        });
    }
    if count > FILES_MAX {
        return Err(Corruption::FileTable("too many files"));
    }
    let mut table = Reader { bytes: body };
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let name_bytes = u16::from_le_bytes(table.array()?) as usize;
        if name_bytes == 0 || name_bytes > NAME_BYTES_MAX {
            return Err(Corruption::FileTable("a file name's length"));
        }
        let name = std::str::from_utf8(table.take(name_bytes)?)
            .map_err(|_| Corruption::FileTable("a file name is not UTF-8"))?;
        if name.contains('/') || name.starts_with('.') && name != ".managed.json" {
            return Err(Corruption::FileTable("a file name outside the index"));
        }
        let data_bytes = u64::from_le_bytes(table.array()?);
        entries.push((name, data_bytes));
    }
    let mut data = table;
    let mut files = Vec::with_capacity(entries.len());
    for (name, data_bytes) in entries {
        let data_bytes = usize::try_from(data_bytes)
            .map_err(|_| Corruption::FileTable("the file table runs past the body"))?;
        files.push((name, data.take(data_bytes)?));
    }
    if !data.bytes.is_empty() {
        return Err(Corruption::FileTable("body bytes no file names"));
    }
    Ok(files)
}

/// A sealed segment's index, opened from its blob.
pub struct SegmentIndex {
    reader: IndexReader,
}

impl SegmentIndex {
    /// Opens the index a [`SegmentIndexBuilder`] serialized; a damaged
    /// blob is [`SearchError::Corrupt`].
    pub fn open(blob: &[u8]) -> Result<Self, SearchError> {
        let files = decode(blob)?;
        let directory = RamDirectory::create();
        for (name, data) in files {
            directory.atomic_write(Path::new(name), data)?;
        }
        let mut index = Index::open(directory)?;
        index.set_tokenizers(tokenizers());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SegmentIndex { reader })
    }

    /// A searcher over the segment's records.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }
}
