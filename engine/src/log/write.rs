//! The append path: the append line, the write-behind of the buffer, and
//! the index writer.
//!
//! Why these three together: they are everything an append can wait for.
//! An append copies its frame once into the aligned write buffer and gets
//! its offset at once; it waits only when the buffer is full or the
//! segment must roll, and then in a FIFO line ([`AppendLine`]), so offsets
//! follow arrival order. A full buffer's whole blocks go to the ring while
//! the next buffer fills ([`WRITES_IN_FLIGHT_MAX`]). Index entries live in
//! memory and their blocks are regenerated from there when written, so the
//! index has no buffer that could fill up and force a data sync; *when*
//! they are written (after the fdatasync that covers their frames) is up
//! to `sync.rs` and `roll.rs`.

use super::segment::{Segment, FOOTER_FRAME_BYTES};
#[cfg(doc)]
use super::LogConfig;
use super::{FlushPolicy, Log, State};
use crate::appender::{Appender, PendingWrite};
use crate::error::{Error, Result};
use crate::format::{
    encode_frame_header, encode_index_header, encode_offset_entry, encode_time_entry, FrameHeader,
    OffsetEntry, TimeEntry, FILE_HEADER_BYTES, FRAME_HEADER_BYTES, OFFSET_MAX,
};
use crate::io::{align_down, align_up, Storage, StorageFile, BLOCK_BYTES};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Upper bound of I/O steps of one append at the head of the
/// `AppendLine`, which holds the I/O permit throughout: a roll leaves an
/// empty buffer in a new segment; a flush leaves less than one block
/// buffered, and [`LogConfig::validate`] makes the buffer hold a largest
/// frame plus a footer plus two blocks; a roll may follow a flush when
/// `segment.ms` passes meanwhile. More means a broken invariant, not load.
const APPEND_IO_STEPS_MAX: usize = 3;

/// Data writes handed to the disk and not yet awaited, besides the buffer
/// being filled: one keeps the disk busy while the next buffer fills, and
/// bounds the memory of a log to three write buffers.
const WRITES_IN_FLIGHT_MAX: usize = 1;

/// An index file of the active segment. Its entries live in the segment
/// (`Segment::offset_index` / `time_index`); this tracks how many of them are
/// on disk. Index writes regenerate whole blocks from memory, so there is no
/// buffer to fill up and no index write ever forces a data sync.
pub(super) struct IndexWriter<F: StorageFile> {
    pub(super) file: Rc<F>,
    pub(super) magic: [u8; 8],
    pub(super) entry_bytes: usize,
    pub(super) written_entries: usize,
}

/// The writers of the active segment.
pub(super) struct Writer<F: StorageFile> {
    pub(super) data: Appender<F>,
    pub(super) offset_index: IndexWriter<F>,
    pub(super) time_index: IndexWriter<F>,
    pub(super) bytes_since_index: u64,
}

/// Builds the write that puts index entries `written..upto` on disk.
///
/// Entries follow the 64-byte header back to back; because 64, 8 and 16
/// all divide 4096, block boundaries fall between entries — e.g. time index
/// block 1 starts at byte 4096 = 64 + 252 x 16, with entry 252. The write
/// starts at the block holding entry `written` (rewriting its already
/// written prefix with the same bytes, which is safe as for data) and ends
/// at the last whole block, or, with `whole_blocks_only` false, at the
/// block holding the end, zero-padded. Returns the write and the number of
/// entries it puts fully on disk.
fn index_write<F: StorageFile>(
    index: &IndexWriter<F>,
    base_offset: u64,
    upto: usize,
    whole_blocks_only: bool,
    encode: impl Fn(usize, &mut [u8]),
) -> Option<(PendingWrite<F::Buf>, usize)> {
    let e = index.entry_bytes;
    assert!(BLOCK_BYTES.is_multiple_of(e) && FILE_HEADER_BYTES.is_multiple_of(e));
    let end = (FILE_HEADER_BYTES + upto * e) as u64;
    let start = align_down((FILE_HEADER_BYTES + index.written_entries * e) as u64);
    let write_end = if whole_blocks_only {
        align_down(end)
    } else {
        align_up(end)
    };
    if write_end <= start || (whole_blocks_only && index.written_entries == upto) {
        return None;
    }
    let mut buf = index.file.alloc((write_end - start) as usize);
    let bytes = crate::io::IoBuf::as_mut_slice(&mut buf);
    let first = (start.max(FILE_HEADER_BYTES as u64) as usize - FILE_HEADER_BYTES) / e;
    let last = upto.min((write_end as usize - FILE_HEADER_BYTES) / e);
    if start == 0 {
        bytes[..FILE_HEADER_BYTES].copy_from_slice(&encode_index_header(index.magic, base_offset));
    }
    for i in first..last {
        let at = FILE_HEADER_BYTES + i * e - start as usize;
        encode(i, &mut bytes[at..at + e]);
    }
    let data_end = FILE_HEADER_BYTES + last * e - start as usize;
    bytes[data_end..].fill(0);
    Some((PendingWrite { buf, pos: start }, last))
}

/// The index writes of the active segment up to its current entries.
pub(super) fn index_writes<F: StorageFile>(
    writer: &Writer<F>,
    segment: &Segment<F>,
    whole_blocks_only: bool,
) -> Vec<IndexWrite<F>> {
    let offsets = &segment.offset_index;
    let times = &segment.time_index;
    let base = segment.base_offset;
    let offset_write = index_write(
        &writer.offset_index,
        base,
        offsets.len(),
        whole_blocks_only,
        |i, out| out.copy_from_slice(&encode_offset_entry(&offsets[i])),
    );
    let time_write = index_write(
        &writer.time_index,
        base,
        times.len(),
        whole_blocks_only,
        |i, out| out.copy_from_slice(&encode_time_entry(&times[i])),
    );
    [
        (IndexKind::Offset, offset_write),
        (IndexKind::Time, time_write),
    ]
    .into_iter()
    .filter_map(|(kind, w)| {
        w.map(|(write, covered)| IndexWrite {
            kind,
            write,
            covered,
        })
    })
    .collect()
}

#[derive(Clone, Copy)]
enum IndexKind {
    Offset,
    Time,
}

pub(super) struct IndexWrite<F: StorageFile> {
    kind: IndexKind,
    write: PendingWrite<F::Buf>,
    covered: usize,
}

impl<F: StorageFile> Writer<F> {
    fn index(&mut self, kind: IndexKind) -> &mut IndexWriter<F> {
        match kind {
            IndexKind::Offset => &mut self.offset_index,
            IndexKind::Time => &mut self.time_index,
        }
    }
}

enum NeedIo {
    Roll,
    Flush,
}

/// The appenders waiting for I/O before they can append, first come first
/// served.
///
/// Why a line and not a retry loop: an append that finds the write buffer
/// full (or the segment due to roll) must wait for the disk, and while it
/// waits other tasks of the shard run. If they could append whenever the
/// buffer had room, a large frame could wait behind an endless stream of
/// small ones, and — worse for a log — a request that arrived later would
/// get the lower offset. So once anyone is in line the fast path closes:
/// every later append joins the line behind it. The head of the line holds
/// the I/O permit from its first I/O step to its append, so nobody fills
/// the room its roll or flush made; that bounds its steps (see
/// [`APPEND_IO_STEPS_MAX`]). The line is bounded by the tasks appending to
/// this log, each of which stands in it at most once.
#[derive(Default)]
pub(super) struct AppendLine {
    next_ticket: Cell<u64>,
    /// Tickets of the appenders in line, in arrival order, with the waker
    /// of each one waiting for its turn.
    waiting: RefCell<VecDeque<(u64, Option<Waker>)>>,
}

impl AppendLine {
    fn is_empty(&self) -> bool {
        self.waiting.borrow().is_empty()
    }

    /// Joins the end of the line.
    fn join(&self) -> PlaceInLine<'_> {
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        self.waiting.borrow_mut().push_back((ticket, None));
        PlaceInLine { line: self, ticket }
    }
}

/// One appender's place in the [`AppendLine`]. Dropping it (after the
/// append, on error, or when the appending task is cancelled) leaves the
/// line and wakes the next appender.
struct PlaceInLine<'a> {
    line: &'a AppendLine,
    ticket: u64,
}

impl PlaceInLine<'_> {
    /// Resolves when every appender that joined earlier has left.
    async fn turn(&self) {
        poll_fn(|cx| {
            let mut waiting = self.line.waiting.borrow_mut();
            match waiting.iter_mut().position(|(t, _)| *t == self.ticket) {
                Some(0) => Poll::Ready(()),
                Some(at) => {
                    waiting[at].1 = Some(cx.waker().clone());
                    Poll::Pending
                }
                None => unreachable!("a place is in its line until dropped"),
            }
        })
        .await
    }
}

impl Drop for PlaceInLine<'_> {
    fn drop(&mut self) {
        let mut waiting = self.line.waiting.borrow_mut();
        let at = waiting
            .iter()
            .position(|(t, _)| *t == self.ticket)
            .expect("a place is in its line until dropped");
        waiting.remove(at);
        if at == 0 {
            if let Some((_, Some(waker))) = waiting.front_mut().map(|(t, w)| (*t, w.take())) {
                waker.wake();
            }
        }
    }
}

/// A data write handed to the ring, awaited later.
pub(super) type InFlightWrite =
    Pin<Box<dyn Future<Output = std::result::Result<(), (PathBuf, std::io::Error)>>>>;

impl<S: Storage> Log<S> {
    /// Appends one payload covering `count` offsets. `fill` writes the
    /// payload into the log's buffer and receives the assigned base offset
    /// (Kafka batches rewrite their base offset there), so the payload is
    /// copied exactly once. Returns the base offset. Not durable yet: see
    /// [`Log::append_acked`] and [`Log::sync_to`].
    pub async fn append_with(
        &self,
        payload_len: usize,
        count: u32,
        max_timestamp_ms: i64,
        fill: impl FnOnce(&mut [u8], u64),
    ) -> Result<u64> {
        #[cfg(feature = "failpoints")]
        if fail::eval("log-append", |victim| victim)
            .flatten()
            .is_some_and(|victim| self.dir.ends_with(victim))
        {
            panic!(
                "failpoint log-append: an internal invariant broken on purpose in {}",
                self.dir.display()
            );
        }
        let max_bytes = self.config.borrow().max_payload_bytes;
        if payload_len > max_bytes {
            return Err(Error::TooLarge {
                len_bytes: payload_len,
                max_bytes,
            });
        }
        assert!(max_bytes <= self.frame_payload_max);
        assert!(count > 0, "a payload covers at least one offset");
        let frame_bytes = FRAME_HEADER_BYTES + payload_len;
        let mut fill = Some(fill);
        if self.append_line.is_empty() {
            let mut st = self.state.borrow_mut();
            self.check_appendable(&st, count)?;
            if let Ok(base_offset) =
                self.try_append(&mut st, frame_bytes, count, max_timestamp_ms, &mut fill)
            {
                return Ok(base_offset);
            }
        }
        // The slow path: wait for our turn. Nobody appends while we are at
        // the head of the line, so room only grows: take the I/O permit
        // only if we still need a step, and keep it until we have appended.
        let place = self.append_line.join();
        place.turn().await;
        let mut permit = None;
        let mut steps = 0;
        loop {
            let need = {
                let mut st = self.state.borrow_mut();
                self.check_appendable(&st, count)?;
                match self.try_append(&mut st, frame_bytes, count, max_timestamp_ms, &mut fill) {
                    Ok(base_offset) => return Ok(base_offset),
                    Err(need) => need,
                }
            };
            if permit.is_none() {
                // Its holder may have made the room meanwhile: look again.
                permit = Some(
                    self.io_permit
                        .acquire_permit(1)
                        .await
                        .expect("permit never closed"),
                );
                continue;
            }
            if steps == APPEND_IO_STEPS_MAX {
                break;
            }
            steps += 1;
            match need {
                NeedIo::Roll => self.roll_locked(frame_bytes).await?,
                NeedIo::Flush => self.write_behind_locked().await?,
            }
        }
        self.broken_invariant(format!(
            "an append of {frame_bytes} bytes found no room after {APPEND_IO_STEPS_MAX} I/O steps with the I/O permit held"
        ))
    }

    /// Appends and, under [`FlushPolicy::Always`], waits until the append is
    /// durable (sharing the fdatasync with concurrent appenders).
    pub async fn append_acked(
        &self,
        payload_len: usize,
        count: u32,
        max_timestamp_ms: i64,
        fill: impl FnOnce(&mut [u8], u64),
    ) -> Result<u64> {
        let base_offset = self
            .append_with(payload_len, count, max_timestamp_ms, fill)
            .await?;
        if self.config.borrow().flush_policy == FlushPolicy::Always {
            self.sync_to(base_offset + count as u64).await?;
        }
        Ok(base_offset)
    }

    /// An append of `count` offsets may go ahead: the log is not stopped
    /// and its offsets stay within [`OFFSET_MAX`].
    fn check_appendable(&self, st: &State<S::File>, count: u32) -> Result<()> {
        self.check_poisoned(st)?;
        if st.next_offset > OFFSET_MAX - count as u64 {
            return Err(Error::OffsetsExhausted {
                path: self.dir.clone(),
                next_offset: st.next_offset,
                count,
            });
        }
        Ok(())
    }

    fn try_append<G: FnOnce(&mut [u8], u64)>(
        &self,
        st: &mut State<S::File>,
        frame_bytes: usize,
        count: u32,
        max_timestamp_ms: i64,
        fill: &mut Option<G>,
    ) -> Result<u64, NeedIo> {
        let now_ms = self.clock.now_ms();
        // While a roll is under way the active segment is being sealed: its
        // footer is already in the write buffer, and a frame reserved after
        // it would be acknowledged and then cut off with the footer. A
        // smaller frame than the one that forced the roll still "fits", so
        // the size check alone does not keep it out.
        if self.rolling.get() || self.needs_roll(st.active(), frame_bytes, now_ms) {
            return Err(NeedIo::Roll);
        }
        if st.writer().data.room_bytes() < frame_bytes + FOOTER_FRAME_BYTES {
            return Err(NeedIo::Flush);
        }
        let base_offset = st.next_offset;
        let interval = self.config.borrow().index_interval_bytes;
        let (segment_base, segment_max_ts, indexes_empty) = {
            let active = st.active();
            (
                active.base_offset,
                active.max_timestamp_ms,
                active.offset_index.is_empty(),
            )
        };
        let writer = st.writer();
        let position = writer.data.end_bytes();
        let frame = writer.data.reserve(frame_bytes);
        let (header_bytes, payload) = frame.split_at_mut(FRAME_HEADER_BYTES);
        (fill.take().expect("fill used once"))(payload, base_offset);
        let header = FrameHeader {
            payload_len: (frame_bytes - FRAME_HEADER_BYTES) as u32,
            base_offset,
            max_timestamp_ms,
            count,
            flags: 0,
        };
        encode_frame_header(header_bytes, &header, payload);
        let index_now = indexes_empty || writer.bytes_since_index >= interval;
        let new_max_ts = segment_max_ts.max(max_timestamp_ms);
        let relative_offset = (base_offset - segment_base) as u32;
        if index_now {
            writer.bytes_since_index = 0;
        }
        writer.bytes_since_index += frame_bytes as u64;
        let active = st.active_mut();
        if index_now {
            active.offset_index.push(OffsetEntry {
                relative_offset,
                position: position as u32,
            });
            active.time_index.push(TimeEntry {
                max_timestamp_ms: new_max_ts,
                relative_offset,
                position: position as u32,
            });
        }
        active.end_offset += count as u64;
        active.data_end_bytes = position + frame_bytes as u64;
        active.max_timestamp_ms = new_max_ts;
        st.next_offset += count as u64;
        st.stats.appends += 1;
        st.stats.append_bytes += (frame_bytes - FRAME_HEADER_BYTES) as u64;
        Ok(base_offset)
    }

    /// Writes index blocks of the active segment and records what is on
    /// disk; with `sync`, fdatasyncs the index files too.
    pub(super) async fn write_index_blocks(
        &self,
        writes: Vec<IndexWrite<S::File>>,
        sync: bool,
    ) -> Result<()> {
        for IndexWrite {
            kind,
            write,
            covered,
        } in writes
        {
            let file = self.state.borrow_mut().writer().index(kind).file.clone();
            let written = async {
                file.write_at(write.buf, write.pos).await?;
                if sync {
                    file.fdatasync().await?;
                }
                Ok::<_, std::io::Error>(())
            };
            if let Err(e) = written.await {
                return self.poison(&self.dir.clone(), e);
            }
            self.state.borrow_mut().writer().index(kind).written_entries = covered;
        }
        Ok(())
    }

    /// The write buffer is full: hands its whole blocks to the disk without
    /// waiting (the partial last block stays buffered, so queued writes
    /// never overlap) and waits only for writes beyond
    /// [`WRITES_IN_FLIGHT_MAX`]. Waiting for the *oldest* write is also what
    /// lets glommio's reactor submit the newest one, so one write is always
    /// at the disk while the next buffer fills. Caller holds the I/O permit.
    async fn write_behind_locked(&self) -> Result<()> {
        let (write, file, path) = {
            let mut st = self.state.borrow_mut();
            self.check_poisoned(&st)?;
            let (file, path) = {
                let active = st.active();
                (active.file.clone(), active.path.clone())
            };
            (st.writer().data.take_write(&file, true), file, path)
        };
        let Some(PendingWrite { buf, pos }) = write else {
            // Less than one whole block buffered: write it all.
            return self.flush_locked(false).await;
        };
        let mut in_flight: InFlightWrite =
            Box::pin(async move { file.write_at(buf, pos).await.map_err(|e| (path, e)) });
        // The first poll hands the request to the ring.
        match futures_lite::future::poll_once(&mut in_flight).await {
            Some(Err((path, e))) => return self.poison(&path, e),
            Some(Ok(())) => {}
            None => self.writes_in_flight.borrow_mut().push_back(in_flight),
        }
        self.state.borrow_mut().stats.writes += 1;
        while self.writes_in_flight.borrow().len() > WRITES_IN_FLIGHT_MAX {
            let oldest = self
                .writes_in_flight
                .borrow_mut()
                .pop_front()
                .expect("non-empty");
            if let Err((path, e)) = oldest.await {
                return self.poison(&path, e);
            }
        }
        Ok(())
    }

    /// Waits for every write in flight, oldest first. Caller holds the I/O
    /// permit.
    pub(super) async fn drain_writes_locked(&self) -> Result<()> {
        for _ in 0..=WRITES_IN_FLIGHT_MAX {
            let oldest = self.writes_in_flight.borrow_mut().pop_front();
            let Some(write) = oldest else {
                return Ok(());
            };
            if let Err((path, e)) = write.await {
                return self.poison(&path, e);
            }
        }
        unreachable!("more than {WRITES_IN_FLIGHT_MAX} writes in flight")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::format::{encode_segment_header, SegmentHeader, SegmentKind, SEGMENT_EXTENSION};
    use crate::io::mem::MemStorage;
    use crate::log::segment::index_path;
    use crate::log::LogConfig;
    use std::path::Path;

    /// A log recovered with its end just below [`OFFSET_MAX`] (which
    /// recovery accepts) takes appends up to that offset and refuses the
    /// next with [`Error::OffsetsExhausted`], instead of writing a frame
    /// recovery would call corrupt (or overflowing `u64` further on).
    #[test]
    fn appends_stop_at_the_largest_offset() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let config = LogConfig {
                    segment_bytes: 64 * 1024,
                    write_buffer_bytes: 64 * 1024,
                    max_payload_bytes: 1024,
                    ..LogConfig::default()
                };
                let mem = MemStorage::new();
                let base = OFFSET_MAX - 3;
                let header = encode_segment_header(&SegmentHeader {
                    kind: SegmentKind::Partition,
                    base_offset: base,
                    created_ms: 0,
                });
                let dir = Path::new("/l");
                mem.set_file_bytes(&index_path(dir, base, SEGMENT_EXTENSION), header.to_vec());
                let log = Log::open(mem.clone(), dir, config.clone(), Clock::System)
                    .await
                    .unwrap();
                assert_eq!(log.next_offset(), base);
                let appended = log.append_acked(10, 3, 0, |dst, _| dst.fill(7)).await;
                assert_eq!(appended.unwrap(), base);
                match log.append_acked(10, 1, 0, |dst, _| dst.fill(7)).await {
                    Err(Error::OffsetsExhausted {
                        next_offset, count, ..
                    }) => assert_eq!((next_offset, count), (OFFSET_MAX, 1)),
                    other => panic!("expected OffsetsExhausted, got {other:?}"),
                }
                log.close().await.unwrap();
                let log = Log::open(mem, dir, config, Clock::System).await.unwrap();
                assert_eq!(log.next_offset(), OFFSET_MAX);
                let read = log.read(base, 1 << 20).await.unwrap();
                assert_eq!(read.next_offset(), Some(OFFSET_MAX));
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
