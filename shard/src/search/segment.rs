//! The index of one sealed segment, built whole and kept as one blob (an
//! archive member), then opened for search without reading it whole.
//!
//! The blob is a small container of the index's files (tantivy writes an
//! index as several), laid out so a reader needs only its front:
//!
//! ```text
//! header (38 bytes, LE): magic "RLSEARCH" | version u16 | file count u32 | hot range count u32
//!                        | head bytes u64 | data bytes u64 | crc32c u32 (of the 34 bytes before it and the head)
//! head: file table   per file: name length u16, name (UTF-8), data length u64
//!       hot ranges   per range: file u32, start u64, length u64 (sorted, disjoint)
//!       hot bytes    the ranges' bytes, in order
//!       block crcs   crc32c u32 of each DATA_BLOCK_BYTES block of the data
//! data: the files' data, back to back, in table order
//! ```
//!
//! **Why a hotcache.** Opening a tantivy index and warming it (meta
//! files, term dictionaries, fast field columns, field norms, the doc
//! store's skip index) reads a small part of it; a query then reads a
//! few postings and doc store blocks. The builder opens the finished
//! index once through a recording directory, warms it, and stores the
//! byte ranges read as the hot ranges: an archive's index then opens from
//! its header and head alone (one or two ranged reads after the archive
//! footer) and reads the rest a block at a time, on demand
//! ([`super::directory`]). The head's crc32c is checked when it is read,
//! each data block's when the block is.
//!
//! Damage in storage or transit is a [`Corruption`], found before tantivy
//! reads a byte it covers (the blob is ringlog's own output, never client
//! bytes).

use super::directory::{BlobDirectory, Data, RangeSource, Reads};
use super::documents::batch_documents;
use super::schema::{tokenizers, SearchSchema};
use super::{Corruption, SearchError};
use ringlog_engine::archive::{for_each_stored_batch, MemberKind, NewMember};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tantivy::directory::{Directory, OwnedBytes, RamDirectory};
use tantivy::schema::FieldType;
use tantivy::{
    Index, IndexReader, ReloadPolicy, Searcher, SingleSegmentIndexWriter, TantivyDocument,
};

const MAGIC: &[u8; 8] = b"RLSEARCH";
/// The container version this code writes and reads.
pub const SEGMENT_INDEX_VERSION: u16 = 2;
/// The fixed header before the head.
pub const SEGMENT_INDEX_HEADER_BYTES: usize = 38;
/// The header's bytes the crc32c covers (all but the crc itself).
const HEADER_CRC_AT: usize = 34;
const _: () = assert!(HEADER_CRC_AT + 4 == SEGMENT_INDEX_HEADER_BYTES);
/// The most files one blob may name (an index has a handful per segment).
const FILES_MAX: u32 = 4096;
/// The longest file name (tantivy's are a UUID and an extension).
const NAME_BYTES_MAX: usize = 255;
/// The most hot ranges one blob may hold (warming reads a few per file).
const HOT_RANGES_MAX: u32 = 1 << 16;
/// Bytes of one hot range entry: file u32, start u64, length u64.
const HOT_RANGE_ENTRY_BYTES: usize = 20;
/// The unit of reading (and checking) the data on demand: a read is
/// widened to whole blocks, each checked against its crc32c.
pub const DATA_BLOCK_BYTES: u64 = 64 << 10;
/// Recorded reads closer than this are stored as one hot range (a few
/// bytes between two footers cost less than a range entry and a seek).
const HOT_GAP_BYTES_MAX: u64 = 4096;

/// The writer's memory budget while a chunk of a segment is indexed.
pub const SEGMENT_WRITER_MEMORY_BYTES: usize = 64 << 20;

/// Record bytes (keys, values and headers, decompressed) indexed as one
/// tantivy segment. A chunk's index is built in RAM, then written out
/// (after the earlier chunks' files: to the blob's data in RAM, or to a
/// scratch file), so building an index costs about a chunk of RAM
/// whatever the segment's size; the index of a 1 GiB segment is 8
/// tantivy segments in one blob, opened as one index.
pub const CHUNK_RECORDS_BYTES_MAX: u64 = 128 << 20;

/// Builds the index of the sealed segment file at `path` (of
/// `partition`), reading the file once, a window at a time, with its
/// data spilled to a scratch file in `scratch_dir` (any size: for an
/// archive, or searched in place for a local segment). Checks `cancelled` before every batch: a caller
/// that stopped waiting ends the work.
///
/// # Errors
///
/// The file does not read or is not a sealed segment
/// ([`SearchError::Segment`]), a batch does not decode (then no part of
/// the segment is indexed: the archive ships without its index and the
/// whole range is reported unindexed, never a silent gap), the scratch
/// file does not write ([`SearchError::Scratch`]), or `cancelled` was set
/// ([`SearchError::Unavailable`]).
pub fn index_segment_file(
    partition: u32,
    path: &Path,
    scratch_dir: &Path,
    cancelled: &AtomicBool,
) -> Result<BuiltIndex, SearchError> {
    let file = std::fs::File::open(path).map_err(|e| ringlog_engine::Error::io(path, e))?;
    let len_bytes = file
        .metadata()
        .map_err(|e| ringlog_engine::Error::io(path, e))?
        .len();
    let name = path.display().to_string();
    let mut builder = SegmentIndexBuilder::spilling(partition, scratch_dir)?;
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

/// Builds the index of one sealed segment, on the calling thread, a
/// chunk ([`CHUNK_RECORDS_BYTES_MAX`]) at a time, each chunk one tantivy
/// segment: no writer threads, no channel per document and no merge
/// (each chunk is indexed whole, so there is nothing to commit along the
/// way), which is most of what a general index writer spends beyond
/// tokenizing and recording postings.
pub struct SegmentIndexBuilder {
    schema: SearchSchema,
    partition: u32,
    chunk_records_bytes_max: u64,
    chunk: Option<Chunk>,
    written: Written,
}

/// The chunk being indexed.
struct Chunk {
    writer: SingleSegmentIndexWriter<TantivyDocument>,
    records_bytes: u64,
}

/// The chunks written so far: their files, back to back.
struct Written {
    /// Name and length of each file, in data order.
    table: Vec<(String, u64)>,
    /// The last chunk's `meta.json`, and every chunk's segment entries:
    /// the index's `meta.json` is the one with all of them.
    meta: Option<serde_json::Value>,
    segments: Vec<serde_json::Value>,
    data: Sink,
    crcs: BlockCrcs,
}

/// Where the data goes.
enum Sink {
    Memory(Vec<u8>),
    /// A scratch file, unlinked (nothing to clean up after a crash).
    File(std::fs::File, PathBuf),
}

/// The crc32c of each [`DATA_BLOCK_BYTES`] block of bytes fed in pieces.
#[derive(Default)]
struct BlockCrcs {
    crcs: Vec<u32>,
    /// The crc and length of the last, partial block.
    crc: u32,
    len: u64,
}

impl BlockCrcs {
    /// Feeds `bytes`; bounded by the blocks they cover.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = ((DATA_BLOCK_BYTES - self.len) as usize).min(bytes.len());
            self.crc = crc32c::crc32c_append(self.crc, &bytes[..take]);
            self.len += take as u64;
            bytes = &bytes[take..];
            if self.len == DATA_BLOCK_BYTES {
                self.crcs.push(self.crc);
                (self.crc, self.len) = (0, 0);
            }
        }
    }

    fn finish(mut self) -> Vec<u32> {
        if self.len > 0 {
            self.crcs.push(self.crc);
        }
        self.crcs
    }
}

impl Written {
    fn data_bytes(&self) -> u64 {
        self.table.iter().map(|(_, len)| len).sum()
    }

    /// Appends one file.
    fn push(&mut self, name: String, bytes: &[u8]) -> Result<(), SearchError> {
        if self.table.iter().any(|(known, _)| *known == name) {
            return Err(internal(format!("two chunks wrote {name}")));
        }
        match &mut self.data {
            Sink::Memory(data) => data.extend_from_slice(bytes),
            Sink::File(file, dir) => {
                file.write_all(bytes)
                    .map_err(|error| SearchError::Scratch {
                        dir: dir.clone(),
                        error,
                    })?
            }
        }
        self.crcs.feed(bytes);
        self.table.push((name, bytes.len() as u64));
        Ok(())
    }
}

/// A scratch file in `dir`, already unlinked: `O_TMPFILE` where the
/// filesystem has it, else created and removed at once.
fn scratch_file(dir: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).mode(0o600);
    match options.clone().custom_flags(libc::O_TMPFILE).open(dir) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(e),
        Err(_) => {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let path = dir.join(format!(
                ".search-scratch-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let file = options.create_new(true).open(&path)?;
            std::fs::remove_file(&path)?;
            Ok(file)
        }
    }
}

/// A blob's data in a scratch file, read for warming.
struct ScratchSource(std::fs::File);

impl RangeSource for ScratchSource {
    fn read(&self, range: Range<u64>) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut bytes = vec![0; (range.end - range.start) as usize];
        self.0.read_exact_at(&mut bytes, range.start)?;
        Ok(bytes)
    }
}

/// A finished index: the blob's header and head, and its data in RAM or
/// in a scratch file.
pub struct BuiltIndex {
    front: Vec<u8>,
    data: BuiltData,
}

enum BuiltData {
    Memory(OwnedBytes),
    File(std::fs::File, u64),
}

impl BuiltIndex {
    /// The blob's length.
    pub fn len_bytes(&self) -> u64 {
        let data_bytes = match &self.data {
            BuiltData::Memory(data) => data.len() as u64,
            BuiltData::File(_, len) => *len,
        };
        self.front.len() as u64 + data_bytes
    }

    /// The blob, whole in RAM.
    ///
    /// # Errors
    ///
    /// The scratch file does not read back.
    pub fn into_blob(self) -> std::io::Result<Vec<u8>> {
        let mut blob = self.front;
        match self.data {
            BuiltData::Memory(data) => blob.extend_from_slice(data.as_slice()),
            BuiltData::File(mut file, len) => {
                file.seek(SeekFrom::Start(0))?;
                file.take(len).read_to_end(&mut blob)?;
            }
        }
        Ok(blob)
    }

    /// Opens the index for searching where it was built: from RAM, or
    /// from its scratch file (kept open, unlinked, for as long as the
    /// index: its space is freed when the index is dropped, or by the
    /// kernel after a crash), holding only the head and a block cache
    /// in RAM.
    ///
    /// # Errors
    ///
    /// The blob does not decode ([`SearchError::Corrupt`]) or tantivy
    /// cannot open it.
    pub fn open(self) -> Result<SegmentIndex, SearchError> {
        match self.data {
            BuiltData::Memory(data) => {
                let mut blob = self.front;
                blob.extend_from_slice(data.as_slice());
                SegmentIndex::open(blob)
            }
            BuiltData::File(file, len) => {
                let blob_bytes = self.front.len() as u64 + len;
                let header = SegmentIndexHeader::parse(&self.front, blob_bytes)?;
                SegmentIndex::open_ranged(&header, &self.front, Arc::new(ScratchSource(file)))
            }
        }
    }

    /// The blob as an archive member of `kind`, read as the archive is
    /// written (a spilled index never whole in RAM).
    ///
    /// # Errors
    ///
    /// The scratch file does not rewind.
    pub fn into_member(self, kind: MemberKind) -> std::io::Result<NewMember> {
        let len_bytes = self.len_bytes();
        let front = std::io::Cursor::new(self.front);
        let bytes: Box<dyn Read + Send> = match self.data {
            BuiltData::Memory(data) => Box::new(front.chain(std::io::Cursor::new(data))),
            BuiltData::File(mut file, len) => {
                file.seek(SeekFrom::Start(0))?;
                Box::new(front.chain(file.take(len)))
            }
        };
        Ok(NewMember {
            kind,
            len_bytes,
            bytes,
        })
    }
}

impl SegmentIndexBuilder {
    /// An empty index of `partition`'s segment, built in RAM.
    pub fn new(partition: u32) -> Result<Self, SearchError> {
        Ok(Self::with_sink(partition, Sink::Memory(Vec::new())))
    }

    /// An empty index of `partition`'s segment whose data is written to
    /// a scratch file in `dir` (on the data disk: never `/tmp`, which may
    /// be RAM), so its size is bounded by the disk, not RAM.
    pub fn spilling(partition: u32, dir: &Path) -> Result<Self, SearchError> {
        let file = scratch_file(dir).map_err(|error| SearchError::Scratch {
            dir: dir.to_path_buf(),
            error,
        })?;
        Ok(Self::with_sink(
            partition,
            Sink::File(file, dir.to_path_buf()),
        ))
    }

    fn with_sink(partition: u32, data: Sink) -> Self {
        SegmentIndexBuilder {
            schema: SearchSchema::new(),
            partition,
            chunk_records_bytes_max: CHUNK_RECORDS_BYTES_MAX,
            chunk: None,
            written: Written {
                table: Vec::new(),
                meta: None,
                segments: Vec::new(),
                data,
                crcs: BlockCrcs::default(),
            },
        }
    }

    /// Ends a chunk after `bytes` of records (tests: many chunks from few
    /// records).
    pub fn with_chunk_records_bytes_max(mut self, bytes: u64) -> Self {
        assert!(bytes > 0);
        self.chunk_records_bytes_max = bytes;
        self
    }

    /// Indexes every record of `batch` (a stored batch, whole). Returns how
    /// many records were added.
    pub fn add_batch(&mut self, batch: &[u8]) -> Result<usize, SearchError> {
        let (documents, records_bytes) = batch_documents(&self.schema, self.partition, batch)?;
        let count = documents.len();
        let chunk = match &mut self.chunk {
            Some(chunk) => chunk,
            None => self.chunk.insert(Chunk {
                writer: self.chunk_writer()?,
                records_bytes: 0,
            }),
        };
        for document in documents {
            chunk.writer.add_document(document)?;
        }
        chunk.records_bytes += records_bytes;
        if chunk.records_bytes >= self.chunk_records_bytes_max
            || chunk.writer.mem_usage() >= SEGMENT_WRITER_MEMORY_BYTES
        {
            self.write_chunk()?;
        }
        Ok(count)
    }

    /// A new chunk's writer: one tantivy segment, in RAM.
    fn chunk_writer(&self) -> Result<SingleSegmentIndexWriter<TantivyDocument>, SearchError> {
        Ok(Index::builder()
            .schema(self.schema.schema.clone())
            .tokenizers(tokenizers())
            .single_segment_index_writer(RamDirectory::create(), SEGMENT_WRITER_MEMORY_BYTES)?)
    }

    /// Writes the chunk being indexed (an empty one if none was started:
    /// an index has at least one segment) after the earlier ones.
    fn write_chunk(&mut self) -> Result<(), SearchError> {
        let writer = match self.chunk.take() {
            Some(chunk) => chunk.writer,
            None => self.chunk_writer()?,
        };
        let index = writer.finalize()?;
        let directory = index.directory();
        let meta: serde_json::Value =
            serde_json::from_slice(&directory.atomic_read(Path::new(META_FILE))?)
                .map_err(|e| internal(format!("meta.json: {e}")))?;
        let segments = meta
            .get("segments")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| internal("meta.json lists no segments".to_string()))?;
        self.written.segments.extend(segments.iter().cloned());
        let mut names: Vec<PathBuf> = directory
            .list_managed_files()
            .into_iter()
            .filter(|name| name != Path::new(META_FILE) && name != Path::new(".managed.json"))
            .collect();
        names.sort();
        for name in names {
            if directory.exists(&name)? {
                let bytes = directory.atomic_read(&name)?;
                self.written
                    .push(name.to_string_lossy().into_owned(), &bytes)?;
            }
        }
        self.written.meta = Some(meta);
        Ok(())
    }

    /// Writes the last chunk and the index's `meta.json` (every chunk's
    /// segment), then opens the index the way search will, through a
    /// directory that records every read, and keeps what opening and
    /// warming read as the hot ranges.
    pub fn finish(mut self) -> Result<BuiltIndex, SearchError> {
        if self.chunk.is_some() || self.written.meta.is_none() {
            self.write_chunk()?;
        }
        let mut written = self.written;
        let mut meta = written.meta.take().expect("a chunk was written");
        meta["segments"] = serde_json::Value::Array(std::mem::take(&mut written.segments));
        let meta = serde_json::to_vec(&meta).map_err(|e| internal(format!("meta.json: {e}")))?;
        written.push(META_FILE.to_string(), &meta)?;
        let data_bytes = written.data_bytes();
        let mut start = 0;
        let head = Head {
            files: written
                .table
                .iter()
                .map(|(name, len)| {
                    start += len;
                    IndexFile {
                        name: PathBuf::from(name),
                        start: start - len,
                        len: *len,
                    }
                })
                .collect(),
            hot: Vec::new(),
            hot_bytes: OwnedBytes::empty(),
            block_crcs: written.crcs.finish(),
            data_bytes,
        };
        let starts: Vec<u64> = head.files.iter().map(|f| f.start).collect();
        let block_crcs = head.block_crcs.clone();
        let (data, built) = match written.data {
            Sink::Memory(data) => {
                let data = OwnedBytes::new(data);
                (Data::Memory(data.clone()), BuiltData::Memory(data))
            }
            Sink::File(file, dir) => {
                let scratch = |error| SearchError::Scratch {
                    dir: dir.clone(),
                    error,
                };
                let source = ScratchSource(file.try_clone().map_err(scratch)?);
                (
                    Data::Ranged(Arc::new(source)),
                    BuiltData::File(file, data_bytes),
                )
            }
        };
        let directory = BlobDirectory::recording(head, data);
        warm(&open_index(directory.clone())?)?;
        let hot = merge_reads(directory.recorded());
        let mut hot_bytes = Vec::new();
        for (file, range) in &hot {
            let at = starts[*file as usize];
            match &built {
                BuiltData::Memory(data) => hot_bytes.extend_from_slice(
                    &data.as_slice()[(at + range.start) as usize..(at + range.end) as usize],
                ),
                BuiltData::File(file, _) => {
                    use std::os::unix::fs::FileExt;
                    let from = hot_bytes.len();
                    hot_bytes.resize(from + (range.end - range.start) as usize, 0);
                    file.read_exact_at(&mut hot_bytes[from..], at + range.start)?;
                }
            }
        }
        let front = encode_front(&written.table, &hot, &hot_bytes, &block_crcs);
        Ok(BuiltIndex { front, data: built })
    }
}

/// The name tantivy gives an index's list of segments.
const META_FILE: &str = "meta.json";

/// A chunk's index is not what tantivy promises (never expected: the
/// builder's own output, read back in RAM).
fn internal(message: String) -> SearchError {
    SearchError::Index(tantivy::TantivyError::InternalError(message))
}

/// Does what a search's first query does to each segment of `index`
/// before it reads postings or documents: opens every indexed field's
/// term dictionary, every field norm and fast field column, and the doc
/// store's skip index.
fn warm(index: &Index) -> Result<(), SearchError> {
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let searcher = reader.searcher();
    let schema = index.schema();
    for segment in searcher.segment_readers() {
        for (field, entry) in schema.fields() {
            if entry.is_indexed() {
                segment.inverted_index(field)?;
            }
            if entry.has_fieldnorms() {
                segment.get_fieldnorms_reader(field)?;
            }
            if entry.is_fast() {
                match entry.field_type() {
                    FieldType::I64(_) => {
                        segment.fast_fields().i64(entry.name())?;
                    }
                    FieldType::U64(_) => {
                        segment.fast_fields().u64(entry.name())?;
                    }
                    _ => {}
                }
            }
        }
        segment.get_store_reader(0)?;
    }
    Ok(())
}

/// The recorded reads (file, range) as hot ranges: sorted, and merged
/// where they overlap or lie closer than [`HOT_GAP_BYTES_MAX`].
fn merge_reads(mut reads: Reads) -> Reads {
    reads.retain(|(_, range)| !range.is_empty());
    reads.sort_by_key(|(file, range)| (*file, range.start, range.end));
    let mut merged: Reads = Vec::with_capacity(reads.len());
    for (file, range) in reads {
        match merged.last_mut() {
            Some((last_file, last))
                if *last_file == file && range.start <= last.end + HOT_GAP_BYTES_MAX =>
            {
                last.end = last.end.max(range.end);
            }
            _ => merged.push((file, range)),
        }
    }
    merged
}

fn open_index(directory: BlobDirectory) -> Result<Index, SearchError> {
    let mut index = Index::open(directory)?;
    index.set_tokenizers(tokenizers());
    Ok(index)
}

/// The header and head of the container of files `table` (name, length;
/// their data back to back after the head), with the hot ranges `hot`
/// (file, range within it; sorted and disjoint) whose bytes are
/// `hot_bytes`, and the data's `block_crcs`.
fn encode_front(
    table: &[(String, u64)],
    hot: &[(u32, Range<u64>)],
    hot_bytes: &[u8],
    block_crcs: &[u32],
) -> Vec<u8> {
    let data_bytes: u64 = table.iter().map(|(_, len)| len).sum();
    assert_eq!(
        block_crcs.len() as u64,
        data_bytes.div_ceil(DATA_BLOCK_BYTES)
    );
    assert!(hot.len() <= HOT_RANGES_MAX as usize);
    assert_eq!(
        hot.iter().map(|(_, r)| r.end - r.start).sum::<u64>(),
        hot_bytes.len() as u64
    );
    let mut head = Vec::new();
    for (name, len) in table {
        assert!(!name.is_empty() && name.len() <= NAME_BYTES_MAX);
        head.extend_from_slice(&(name.len() as u16).to_le_bytes());
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(&len.to_le_bytes());
    }
    for (file, range) in hot {
        head.extend_from_slice(&file.to_le_bytes());
        head.extend_from_slice(&range.start.to_le_bytes());
        head.extend_from_slice(&(range.end - range.start).to_le_bytes());
    }
    head.extend_from_slice(hot_bytes);
    for crc in block_crcs {
        head.extend_from_slice(&crc.to_le_bytes());
    }
    let mut front = Vec::with_capacity(SEGMENT_INDEX_HEADER_BYTES + head.len());
    front.extend_from_slice(MAGIC);
    front.extend_from_slice(&SEGMENT_INDEX_VERSION.to_le_bytes());
    front.extend_from_slice(&(table.len() as u32).to_le_bytes());
    front.extend_from_slice(&(hot.len() as u32).to_le_bytes());
    front.extend_from_slice(&(head.len() as u64).to_le_bytes());
    front.extend_from_slice(&data_bytes.to_le_bytes());
    assert_eq!(front.len(), HEADER_CRC_AT);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&front), &head);
    front.extend_from_slice(&crc.to_le_bytes());
    front.extend_from_slice(&head);
    front
}

/// Reads little-endian integers off the front of a slice.
struct Reader<'b> {
    bytes: &'b [u8],
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], Corruption> {
        if n > self.bytes.len() {
            return Err(Corruption::FileTable("the head runs past its length"));
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

/// A blob's fixed header, checked against the blob's length.
#[derive(Clone, Copy, Debug)]
pub struct SegmentIndexHeader {
    files: u32,
    hot_ranges: u32,
    /// Bytes of the head after the header.
    pub head_bytes: u64,
    data_bytes: u64,
    crc: u32,
}

impl SegmentIndexHeader {
    /// Where the data begins in the blob: header and head before it.
    pub fn data_at(&self) -> u64 {
        SEGMENT_INDEX_HEADER_BYTES as u64 + self.head_bytes
    }

    /// The header at the front of a blob of `blob_bytes` bytes.
    ///
    /// # Errors
    ///
    /// Fewer bytes than a header, a bad magic or version, or lengths
    /// that do not add up to `blob_bytes` ([`Corruption::Truncated`] when
    /// the blob is shorter than they say).
    pub fn parse(front: &[u8], blob_bytes: u64) -> Result<Self, Corruption> {
        let truncated = Corruption::Truncated {
            actual_bytes: blob_bytes,
        };
        let header = front
            .get(..SEGMENT_INDEX_HEADER_BYTES)
            .ok_or(truncated.clone())?;
        let mut fields = Reader { bytes: header };
        if &fields.array::<8>()? != MAGIC {
            return Err(Corruption::BadMagic);
        }
        let version = u16::from_le_bytes(fields.array()?);
        if version != SEGMENT_INDEX_VERSION {
            return Err(Corruption::BadVersion(version));
        }
        let parsed = SegmentIndexHeader {
            files: u32::from_le_bytes(fields.array()?),
            hot_ranges: u32::from_le_bytes(fields.array()?),
            head_bytes: u64::from_le_bytes(fields.array()?),
            data_bytes: u64::from_le_bytes(fields.array()?),
            crc: u32::from_le_bytes(fields.array()?),
        };
        let total = parsed
            .data_at()
            .checked_add(parsed.data_bytes)
            .ok_or(Corruption::FileTable("lengths overflow"))?;
        if total > blob_bytes {
            return Err(truncated);
        }
        if total < blob_bytes {
            return Err(Corruption::FileTable("bytes after the data"));
        }
        if parsed.files > FILES_MAX {
            return Err(Corruption::FileTable("too many files"));
        }
        if parsed.hot_ranges > HOT_RANGES_MAX {
            return Err(Corruption::FileTable("too many hot ranges"));
        }
        Ok(parsed)
    }
}

/// One file of the index: where its data lies in the blob's data.
#[derive(Debug)]
pub(super) struct IndexFile {
    pub(super) name: PathBuf,
    pub(super) start: u64,
    pub(super) len: u64,
}

/// A hot range: bytes of a file kept in the head.
#[derive(Debug)]
pub(super) struct HotRange {
    pub(super) file: u32,
    pub(super) range: Range<u64>,
    /// Where its bytes begin in the head's hot bytes.
    pub(super) at: usize,
}

/// What the head says, every check passed: enough to open the index and
/// read any byte of it.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) files: Vec<IndexFile>,
    /// Sorted by file, then start; disjoint.
    pub(super) hot: Vec<HotRange>,
    pub(super) hot_bytes: OwnedBytes,
    pub(super) block_crcs: Vec<u32>,
    pub(super) data_bytes: u64,
}

impl Head {
    /// Checks `header_and_head` (the blob's first bytes, at least through
    /// the head) against `header`'s crc32c, then the tables.
    pub(super) fn parse(
        header: &SegmentIndexHeader,
        header_and_head: &[u8],
    ) -> Result<Head, Corruption> {
        let data_at = header.data_at() as usize;
        let front = header_and_head
            .get(..data_at)
            .ok_or(Corruption::Truncated {
                actual_bytes: header_and_head.len() as u64,
            })?;
        let crc = crc32c::crc32c_append(
            crc32c::crc32c(&front[..HEADER_CRC_AT]),
            &front[SEGMENT_INDEX_HEADER_BYTES..],
        );
        if crc != header.crc {
            return Err(Corruption::BadChecksum {
                stored: header.crc,
                computed: crc,
            });
        }
        let mut head = Reader {
            bytes: &front[SEGMENT_INDEX_HEADER_BYTES..],
        };
        let mut files = Vec::with_capacity(header.files as usize);
        let mut start = 0u64;
        for _ in 0..header.files {
            let name_bytes = u16::from_le_bytes(head.array()?) as usize;
            if name_bytes == 0 || name_bytes > NAME_BYTES_MAX {
                return Err(Corruption::FileTable("a file name's length"));
            }
            let name = std::str::from_utf8(head.take(name_bytes)?)
                .map_err(|_| Corruption::FileTable("a file name is not UTF-8"))?;
            if name.contains('/') || name.starts_with('.') && name != ".managed.json" {
                return Err(Corruption::FileTable("a file name outside the index"));
            }
            let len = u64::from_le_bytes(head.array()?);
            files.push(IndexFile {
                name: PathBuf::from(name),
                start,
                len,
            });
            start = start
                .checked_add(len)
                .ok_or(Corruption::FileTable("file lengths overflow"))?;
        }
        if start != header.data_bytes {
            return Err(Corruption::FileTable("file lengths differ from the data"));
        }
        let mut hot = Vec::with_capacity(header.hot_ranges as usize);
        let mut hot_total = 0usize;
        for _ in 0..header.hot_ranges {
            let entry = head.take(HOT_RANGE_ENTRY_BYTES)?;
            let file = u32::from_le_bytes(entry[..4].try_into().expect("4 bytes"));
            let start = u64::from_le_bytes(entry[4..12].try_into().expect("8 bytes"));
            let len = u64::from_le_bytes(entry[12..].try_into().expect("8 bytes"));
            let of = files
                .get(file as usize)
                .ok_or(Corruption::FileTable("a hot range of no file"))?;
            let end = start
                .checked_add(len)
                .filter(|&end| end <= of.len && len > 0)
                .ok_or(Corruption::FileTable("a hot range outside its file"))?;
            if let Some(last) = hot.last() {
                let last: &HotRange = last;
                if (last.file, last.range.end) > (file, start) {
                    return Err(Corruption::FileTable("hot ranges out of order"));
                }
            }
            hot.push(HotRange {
                file,
                range: start..end,
                at: hot_total,
            });
            hot_total = hot_total
                .checked_add(len as usize)
                .ok_or(Corruption::FileTable("hot range lengths overflow"))?;
        }
        let hot_bytes = OwnedBytes::new(head.take(hot_total)?.to_vec());
        let blocks = header.data_bytes.div_ceil(DATA_BLOCK_BYTES) as usize;
        let crcs = head.take(
            blocks
                .checked_mul(4)
                .ok_or(Corruption::FileTable("block count overflows"))?,
        )?;
        let block_crcs = crcs
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        if !head.bytes.is_empty() {
            return Err(Corruption::FileTable("head bytes no table names"));
        }
        Ok(Head {
            files,
            hot,
            hot_bytes,
            block_crcs,
            data_bytes: header.data_bytes,
        })
    }
}

/// A whole blob, parsed: its head, and where its data lies.
struct Layout {
    head: Head,
    data_at: u64,
}

impl Layout {
    fn data_range(&self) -> Range<usize> {
        self.data_at as usize..(self.data_at + self.head.data_bytes) as usize
    }
}

/// The header and head of a whole blob, and every data block checked.
fn decode_whole(blob: &[u8]) -> Result<Layout, Corruption> {
    let header = SegmentIndexHeader::parse(blob, blob.len() as u64)?;
    let head = Head::parse(&header, blob)?;
    let data = &blob[header.data_at() as usize..];
    for (block, (bytes, &stored)) in data
        .chunks(DATA_BLOCK_BYTES as usize)
        .zip(&head.block_crcs)
        .enumerate()
    {
        let computed = crc32c::crc32c(bytes);
        if computed != stored {
            return Err(Corruption::DataBlock {
                block: block as u64,
                stored,
                computed,
            });
        }
    }
    Ok(Layout {
        head,
        data_at: header.data_at(),
    })
}

/// A sealed segment's index, opened from its blob.
pub struct SegmentIndex {
    reader: IndexReader,
    /// Bytes it holds in RAM: the whole blob, or the head and cache.
    held_bytes: u64,
}

impl SegmentIndex {
    /// Opens the index a [`SegmentIndexBuilder`] serialized, held whole
    /// in RAM; every block is checked now, so a damaged blob is
    /// [`SearchError::Corrupt`] here and never during a search.
    pub fn open(blob: Vec<u8>) -> Result<Self, SearchError> {
        let held_bytes = blob.len() as u64;
        let layout = decode_whole(&blob)?;
        let data = OwnedBytes::new(blob).slice(layout.data_range());
        Self::from_directory(
            BlobDirectory::new(layout.head, Data::Memory(data)),
            held_bytes,
        )
    }

    /// Opens an index from its blob's header and head (`header_and_head`,
    /// its first `header.data_at()` bytes or more), reading its data
    /// from `data` on demand: what the hot ranges do not hold is read a
    /// block at a time, each block checked by its crc32c then, so damage
    /// there fails the search that reads it (an I/O error naming the
    /// block).
    pub fn open_ranged(
        header: &SegmentIndexHeader,
        header_and_head: &[u8],
        data: Arc<dyn RangeSource>,
    ) -> Result<Self, SearchError> {
        let head = Head::parse(header, header_and_head)?;
        let directory = BlobDirectory::new(head, Data::Ranged(data));
        let held_bytes = header.data_at() + directory.cache_bytes_max();
        Self::from_directory(directory, held_bytes)
    }

    fn from_directory(directory: BlobDirectory, held_bytes: u64) -> Result<Self, SearchError> {
        let reader = open_index(directory)?
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SegmentIndex { reader, held_bytes })
    }

    /// A searcher over the segment's records.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// The most bytes this index holds in RAM while open.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }
}
