//! Building an archive from one sealed segment's record batches.
//!
//! Why a writer that hands its bytes out as it goes
//! ([`ArchiveWriter::take_output`]): the records come first and everything
//! after them is derived from them, so an uploader can send the records
//! part by part (a multipart upload) while it reads them from the segment,
//! and hold only the index entries in memory. [`build_archive`] builds the
//! whole object at once.

use super::format::{
    batch_len, encode_indexes, Footer, Member, SpanEntry, Trailer, INDEX_INTERVAL_BYTES,
    TOPIC_NAME_BYTES_MAX, TRAILER_BYTES,
};
use super::{ArchiveError, InvalidInput, MemberKind};
use crate::batch::{BatchError, BatchView};
use crate::format::OFFSET_MAX;
use std::io::{Read, Write};

/// What names an archive besides its offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveMeta {
    /// The topic's id (the metadata log's `TopicCreated::topic_id`).
    pub topic_id: [u8; 16],
    /// The topic's name.
    pub topic: String,
    /// The partition.
    pub partition: u32,
}

/// What [`ArchiveWriter::finish`] and [`build_archive`] return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The object's bytes not taken yet with
    /// [`ArchiveWriter::take_output`]: from [`build_archive`], the whole
    /// object.
    pub bytes: Vec<u8>,
    /// The footer written, with the trailer's fields: what the metadata
    /// log records about the archive.
    pub footer: Footer,
}

/// Builds one archive from the batches of one segment, pushed in offset
/// order. Each batch is checked as produced batches are (header and
/// Kafka's CRC-32C, [`BatchView::parse`]) and must continue the offsets of
/// the one before; the first batch's base offset is the archive's first
/// offset. The output is a function of the metadata, the batches, the
/// added members and the index interval only.
pub struct ArchiveWriter {
    meta: ArchiveMeta,
    index_interval_bytes: u64,
    output: Vec<u8>,
    records_len_bytes: u64,
    records_crc32c: u32,
    spans: Vec<SpanEntry>,
    span_len_bytes: u64,
    /// First offset and the offset after the last batch, once a batch is in.
    offsets: Option<(u64, u64)>,
    min_timestamp_ms: i64,
    max_timestamp_ms: i64,
    record_count: u64,
    batch_count: u64,
    /// Members added after the records, in order: written to the output
    /// (or by [`archive_segment`], straight to its sink) when added.
    extra: Vec<Member>,
    /// Their bytes: the next member starts at `records_len_bytes` plus this.
    extra_len_bytes: u64,
}

impl ArchiveWriter {
    /// A writer with the default span of [`INDEX_INTERVAL_BYTES`].
    pub fn new(meta: ArchiveMeta) -> Result<Self, ArchiveError> {
        Self::with_index_interval(meta, INDEX_INTERVAL_BYTES)
    }

    /// A writer that starts a new span at the first batch after
    /// `index_interval_bytes` of batches (0: every batch is a span).
    pub fn with_index_interval(
        meta: ArchiveMeta,
        index_interval_bytes: u64,
    ) -> Result<Self, ArchiveError> {
        if meta.topic.len() > TOPIC_NAME_BYTES_MAX {
            return Err(InvalidInput::TopicName(meta.topic.len()).into());
        }
        if meta.partition > i32::MAX as u32 {
            return Err(InvalidInput::Partition(meta.partition).into());
        }
        Ok(ArchiveWriter {
            meta,
            index_interval_bytes,
            output: Vec::new(),
            records_len_bytes: 0,
            records_crc32c: 0,
            spans: Vec::new(),
            span_len_bytes: 0,
            offsets: None,
            min_timestamp_ms: i64::MAX,
            max_timestamp_ms: i64::MIN,
            record_count: 0,
            batch_count: 0,
            extra: Vec::new(),
            extra_len_bytes: 0,
        })
    }

    /// Appends one RecordBatch v2, byte for byte. On error nothing of the
    /// batch was taken and the writer's archive is still the batches
    /// before it.
    pub fn push_batch(&mut self, batch: &[u8]) -> Result<(), ArchiveError> {
        let at = self.records_len_bytes;
        let view = BatchView::parse(batch).map_err(|error| InvalidInput::Batch { at, error })?;
        self.push(view, batch)
    }

    /// [`ArchiveWriter::push_batch`] for a batch read back from a segment
    /// frame whose crc32c was just verified: the batch's own CRC-32C was
    /// checked when it was appended and the frame proves the bytes are the
    /// ones appended, so it is not computed again (one pass over the
    /// records fewer; the length, header and counts are still checked).
    pub fn push_stored_batch(&mut self, batch: &[u8]) -> Result<(), ArchiveError> {
        let at = self.records_len_bytes;
        let view = BatchView::parse_unverified(batch)
            .map_err(|error| InvalidInput::Batch { at, error })?;
        let declared = batch_len(batch).unwrap_or(0);
        if declared != batch.len() {
            let error = BatchError::LengthMismatch {
                declared,
                actual: batch.len(),
            };
            return Err(InvalidInput::Batch { at, error }.into());
        }
        self.push(view, batch)
    }

    fn push(&mut self, view: BatchView<'_>, batch: &[u8]) -> Result<(), ArchiveError> {
        let at = self.records_len_bytes;
        if !self.extra.is_empty() {
            return Err(InvalidInput::BatchAfterMember { at }.into());
        }
        let base_offset = view.base_offset();
        let count = u64::from(view.offset_count());
        let out_of_range = InvalidInput::OffsetOutOfRange { at, base_offset };
        let base = u64::try_from(base_offset).map_err(|_| out_of_range.clone())?;
        if base > OFFSET_MAX - count {
            return Err(out_of_range.into());
        }
        let first = match self.offsets {
            Some((_, end)) if base != end => {
                let (expected, found) = (end, base_offset);
                return Err(InvalidInput::OffsetGap {
                    at,
                    expected,
                    found,
                }
                .into());
            }
            Some((first, _)) => first,
            None => base,
        };
        let end = base + count;
        if end - 1 - first > u64::from(u32::MAX) {
            return Err(out_of_range.into());
        }
        if self.spans.is_empty() || self.span_len_bytes >= self.index_interval_bytes {
            self.spans.push(SpanEntry {
                position: at,
                relative_offset: (base - first) as u32,
                crc32c: 0,
                max_timestamp_ms: i64::MIN,
            });
            self.span_len_bytes = 0;
        }
        self.records_crc32c = crc32c::crc32c_append(self.records_crc32c, batch);
        self.max_timestamp_ms = self.max_timestamp_ms.max(view.max_timestamp());
        let first_timestamp_ms = if view.is_log_append_time() {
            view.max_timestamp()
        } else {
            view.base_timestamp()
        };
        self.min_timestamp_ms = self.min_timestamp_ms.min(first_timestamp_ms);
        let span = self.spans.last_mut().expect("a span was just ensured");
        span.crc32c = crc32c::crc32c_append(span.crc32c, batch);
        span.max_timestamp_ms = self.max_timestamp_ms;
        self.record_count += view.record_count() as u64;
        self.batch_count += 1;
        self.output.extend_from_slice(batch);
        self.records_len_bytes += batch.len() as u64;
        self.span_len_bytes += batch.len() as u64;
        self.offsets = Some((first, end));
        Ok(())
    }

    /// Adds a member of a kind the archive does not write itself (a search
    /// index, a hotcache). Members are placed after the records, in the
    /// order added, and readers that do not know the kind skip it; once
    /// one is added, no batch is.
    pub fn add_member(&mut self, kind: MemberKind, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        self.member_written(kind, bytes.len() as u64, crc32c::crc32c(&bytes))?;
        self.output.extend_from_slice(&bytes);
        Ok(())
    }

    /// Records a member of `len_bytes` with `crc32c` whose bytes follow
    /// the output so far (written by the caller; [`archive_segment`]
    /// streams members it cannot hold in RAM).
    fn member_written(
        &mut self,
        kind: MemberKind,
        len_bytes: u64,
        crc32c: u32,
    ) -> Result<(), ArchiveError> {
        if kind.0 == 0 || kind.is_builtin() {
            return Err(InvalidInput::ReservedKind(kind).into());
        }
        self.extra.push(Member {
            kind,
            position: self.records_len_bytes + self.extra_len_bytes,
            len_bytes,
            crc32c,
        });
        self.extra_len_bytes += len_bytes;
        Ok(())
    }

    /// The object's bytes produced since the last call: the records pushed
    /// so far. What follows them is produced by [`ArchiveWriter::finish`].
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Writes the object's bytes produced since the last call to `out`
    /// (as [`ArchiveWriter::take_output`], keeping the buffer for the
    /// next batches).
    pub fn write_output(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.output)?;
        self.output.clear();
        Ok(())
    }

    /// Writes the offset index, the time index, the footer and the
    /// trailer after the records and the added members.
    pub fn finish(self) -> Result<Finished, ArchiveError> {
        let Some((first_offset, end_offset)) = self.offsets else {
            return Err(InvalidInput::NoBatches.into());
        };
        let mut out = self.output;
        let mut members = vec![Member {
            kind: MemberKind::RECORDS,
            position: 0,
            len_bytes: self.records_len_bytes,
            crc32c: self.records_crc32c,
        }];
        members.extend(self.extra);
        let (offset_index, time_index) = encode_indexes(&self.spans);
        let indexes = [
            (MemberKind::OFFSET_INDEX, offset_index),
            (MemberKind::TIME_INDEX, time_index),
        ];
        let mut position = self.records_len_bytes + self.extra_len_bytes;
        for (kind, bytes) in indexes {
            members.push(Member {
                kind,
                position,
                len_bytes: bytes.len() as u64,
                crc32c: crc32c::crc32c(&bytes),
            });
            position += bytes.len() as u64;
            out.extend_from_slice(&bytes);
        }
        let mut footer = Footer {
            topic_id: self.meta.topic_id,
            topic: self.meta.topic,
            partition: self.meta.partition,
            first_offset,
            last_offset: end_offset - 1,
            min_timestamp_ms: self.min_timestamp_ms,
            max_timestamp_ms: self.max_timestamp_ms,
            record_count: self.record_count,
            batch_count: self.batch_count,
            members,
            trailer: Trailer {
                footer_position: position,
                footer_len_bytes: 0,
                footer_crc32c: 0,
            },
        };
        let footer_bytes = footer.encode();
        footer.trailer.footer_len_bytes =
            u32::try_from(footer_bytes.len()).expect("a footer of fewer than 178 million members");
        footer.trailer.footer_crc32c = crc32c::crc32c(&footer_bytes);
        out.extend_from_slice(&footer_bytes);
        out.extend_from_slice(&footer.trailer.encode());
        Ok(Finished { bytes: out, footer })
    }
}

/// Builds the whole archive of one segment in memory from its records:
/// its batches back to back, as stored (the payloads of its frames).
pub fn build_archive(meta: ArchiveMeta, records: &[u8]) -> Result<Finished, ArchiveError> {
    let mut writer = ArchiveWriter::new(meta)?;
    let mut at = 0;
    while at < records.len() {
        let len = batch_len(&records[at..])
            .filter(|len| at + len <= records.len())
            .ok_or(InvalidInput::Torn { at: at as u64 })?;
        writer.push_batch(&records[at..at + len])?;
        at += len;
    }
    writer.finish()
}

/// Segment bytes asked for per read while archiving a segment, and the
/// least the read window holds: large enough that a read costs one
/// system call per few MiB, small enough that a shard archiving two
/// segments holds a few MiB, not two segments.
pub const SEGMENT_READ_BYTES: usize = 4 << 20;

/// What [`archive_segment`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archived {
    /// The footer written, with the trailer's fields: what the metadata
    /// log records about the archive.
    pub footer: Footer,
    /// Bytes written: the object's length.
    pub len_bytes: u64,
}

/// Builds the archive of one sealed segment, read from `segment` (the
/// whole file, `segment_len_bytes` long), into `out` as it goes: every
/// frame's payload, a record batch as stored, in file order up to the
/// segment's footer frame, then `members` (kinds the archive does not
/// write itself, [`ArchiveWriter::add_member`]), the indexes, the footer
/// and the trailer. It holds one read window ([`SEGMENT_READ_BYTES`], or
/// one frame if larger), the index entries and `members`, never the
/// segment. `object` names the archive in errors. A frame that does not
/// verify or a batch the archive refuses is [`crate::Error::Archive`]
/// naming where, and a segment without its footer frame is refused:
/// whatever reached `out` then is no archive, and the caller discards it.
pub fn archive_segment(
    meta: ArchiveMeta,
    object: &str,
    segment: impl Read,
    segment_len_bytes: u64,
    members: Vec<NewMember>,
    out: &mut impl Write,
) -> crate::Result<Archived> {
    let failed = |error: ArchiveError| crate::Error::Archive {
        object: object.to_string(),
        error,
    };
    let writing = |e: std::io::Error| {
        crate::Error::io(
            object,
            std::io::Error::new(e.kind(), format!("writing the archive: {e}")),
        )
    };
    let mut writer = ArchiveWriter::new(meta).map_err(failed)?;
    let mut records_len_bytes = 0u64;
    for_each_stored_batch(segment, segment_len_bytes, object, |batch| {
        writer.push_stored_batch(batch).map_err(failed)?;
        records_len_bytes += batch.len() as u64;
        writer.write_output(out).map_err(writing)
    })?;
    writer.write_output(out).map_err(writing)?;
    let mut members_len_bytes = 0;
    for member in members {
        let crc32c = copy_member(member.bytes, member.len_bytes, out).map_err(|e| {
            crate::Error::io(
                object,
                std::io::Error::new(e.kind(), format!("writing member {}: {e}", member.kind)),
            )
        })?;
        writer
            .member_written(member.kind, member.len_bytes, crc32c)
            .map_err(failed)?;
        members_len_bytes += member.len_bytes;
    }
    let finished = writer.finish().map_err(failed)?;
    out.write_all(&finished.bytes).map_err(writing)?;
    let len_bytes = records_len_bytes + members_len_bytes + finished.bytes.len() as u64;
    let trailer = &finished.footer.trailer;
    assert_eq!(
        len_bytes,
        trailer.footer_position + u64::from(trailer.footer_len_bytes) + TRAILER_BYTES as u64,
        "the archive ends with its footer and trailer"
    );
    Ok(Archived {
        footer: finished.footer,
        len_bytes,
    })
}

/// A member [`archive_segment`] adds after the records: `len_bytes` read
/// from `bytes` as they are written, so a member larger than RAM (the
/// search index of a 1 GiB segment, spilled to a file) costs one copy
/// buffer, not its size.
pub struct NewMember {
    /// Its kind: one the archive does not write itself.
    pub kind: MemberKind,
    /// Its length: `bytes` must yield exactly this many.
    pub len_bytes: u64,
    /// Its bytes.
    pub bytes: Box<dyn Read + Send>,
}

impl NewMember {
    /// A member held in RAM.
    pub fn from_bytes(kind: MemberKind, bytes: Vec<u8>) -> Self {
        NewMember {
            kind,
            len_bytes: bytes.len() as u64,
            bytes: Box::new(std::io::Cursor::new(bytes)),
        }
    }
}

impl std::fmt::Debug for NewMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMember")
            .field("kind", &self.kind)
            .field("len_bytes", &self.len_bytes)
            .finish_non_exhaustive()
    }
}

/// Bytes copied per read while a member streams into an archive.
const MEMBER_COPY_BYTES: usize = 1 << 20;

/// Copies exactly `len_bytes` from `bytes` to `out` (a source that ends
/// sooner or runs longer is an error: the footer would name a length the
/// object does not hold) and returns their crc32c. Bounded by
/// `len_bytes / MEMBER_COPY_BYTES` full reads plus short ones.
fn copy_member(
    mut bytes: Box<dyn Read + Send>,
    len_bytes: u64,
    out: &mut impl Write,
) -> std::io::Result<u32> {
    let mut buf = vec![0u8; MEMBER_COPY_BYTES];
    let (mut copied, mut crc) = (0u64, 0u32);
    while copied < len_bytes {
        let want = (len_bytes - copied).min(MEMBER_COPY_BYTES as u64) as usize;
        let got = bytes.read(&mut buf[..want])?;
        if got == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the member ends after {copied} of its {len_bytes} bytes"),
            ));
        }
        crc = crc32c::crc32c_append(crc, &buf[..got]);
        out.write_all(&buf[..got])?;
        copied += got as u64;
    }
    if bytes.read(&mut buf[..1])? != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the member runs past its {len_bytes} bytes"),
        ));
    }
    Ok(crc)
}

/// Calls `batch` with every record batch of the sealed segment read from
/// `segment` (the whole file, `segment_len_bytes` long), as stored, in
/// file order up to the footer frame: the walk [`archive_segment`] and
/// the search indexer share. It holds one read window, never the segment.
/// The first error `batch` returns ends the walk; a segment without its
/// footer frame is [`crate::Error::Archive`] with
/// [`InvalidInput::SegmentNotSealed`], `object` naming it.
pub fn for_each_stored_batch(
    segment: impl Read,
    segment_len_bytes: u64,
    object: &str,
    mut batch: impl FnMut(&[u8]) -> crate::Result<()>,
) -> crate::Result<()> {
    use crate::format::{
        peek_frame_header, read_frame, FrameRead, FILE_HEADER_BYTES, FRAME_HEADER_BYTES,
    };
    let reading = |e: std::io::Error| {
        crate::Error::io(
            object,
            std::io::Error::new(e.kind(), format!("reading the segment: {e}")),
        )
    };
    // A frame is never longer than its segment.
    let frame_payload_max = usize::try_from(segment_len_bytes).unwrap_or(usize::MAX);
    let mut window = Window::new(segment);
    let header = window.fill(FILE_HEADER_BYTES).map_err(reading)?.len();
    window.consume(header.min(FILE_HEADER_BYTES));
    // Bounded: every round consumes a whole frame (at least its header) or
    // ends, and the segment is finite.
    loop {
        let available = window.fill(FRAME_HEADER_BYTES).map_err(reading)?;
        if available.is_empty() {
            break;
        }
        let frame_bytes = match peek_frame_header(available) {
            Some(h) if h.payload_len as usize <= frame_payload_max => h.frame_bytes(),
            _ => FRAME_HEADER_BYTES,
        };
        let available = window.fill(frame_bytes).map_err(reading)?;
        match read_frame(available, frame_payload_max) {
            FrameRead::Frame(h) if h.is_footer() => return Ok(()),
            FrameRead::Frame(h) => {
                batch(&available[FRAME_HEADER_BYTES..h.frame_bytes()])?;
                window.consume(h.frame_bytes());
            }
            FrameRead::End | FrameRead::Invalid(_) => break,
        }
    }
    Err(crate::Error::Archive {
        object: object.to_string(),
        error: ArchiveError::Invalid(InvalidInput::SegmentNotSealed),
    })
}

/// A read-ahead window over a segment: the bytes from the reader's
/// position on, refilled [`SEGMENT_READ_BYTES`] at a time, grown only for
/// a frame longer than that.
struct Window<R> {
    source: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    at_end: bool,
}

impl<R: Read> Window<R> {
    fn new(source: R) -> Self {
        Window {
            source,
            buf: Vec::new(),
            start: 0,
            end: 0,
            at_end: false,
        }
    }

    /// At least `len_bytes` from the window's position, fewer only at the
    /// end of the source (then all that is left).
    fn fill(&mut self, len_bytes: usize) -> std::io::Result<&[u8]> {
        if self.end - self.start < len_bytes && !self.at_end {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let window_bytes = len_bytes.max(SEGMENT_READ_BYTES);
            if self.buf.len() < window_bytes {
                self.buf.resize(window_bytes, 0);
            }
            // Bounded: every round reads at least one byte or ends.
            while self.end < len_bytes && !self.at_end {
                match self.source.read(&mut self.buf[self.end..]) {
                    Ok(0) => self.at_end = true,
                    Ok(n) => self.end += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, len_bytes: usize) {
        assert!(
            len_bytes <= self.end - self.start,
            "consumed only what was read"
        );
        self.start += len_bytes;
    }
}
