//! Rolling: sealing the active segment and creating the next.
//!
//! Why seal first: only the active segment may hold data that is not
//! durable. The old segment gets its footer, the fdatasync of its data and
//! index files and its trim to the footer before the next file exists, so
//! a crash can tear only the tail of the last segment, and recovery trusts
//! every earlier one by its footer. Appends wait while a roll is under way
//! ([`Rolling`]): the footer is already in the write buffer, and a frame
//! reserved after it would be acknowledged and then cut off with it.

use super::segment::{index_path, Segment, FOOTER_FRAME_BYTES};
use super::write::{index_writes, IndexWriter, Writer};
use super::Log;
use crate::appender::{Appender, PendingWrite};
use crate::error::Result;
use crate::format::{
    encode_footer, encode_frame_header, encode_offset_entry, encode_segment_header,
    encode_time_entry, segment_file_name, FrameHeader, SegmentFooter, SegmentHeader,
    FILE_HEADER_BYTES, FLAG_FOOTER, FOOTER_PAYLOAD_BYTES, FRAME_HEADER_BYTES, OFFSET_ENTRY_BYTES,
    OFFSET_INDEX_EXTENSION, OFFSET_INDEX_MAGIC, SEGMENT_EXTENSION, TIME_ENTRY_BYTES,
    TIME_INDEX_EXTENSION, TIME_INDEX_MAGIC,
};
use crate::io::{OpenMode, Storage, StorageFile};
use std::cell::Cell;
use std::rc::Rc;

/// Marks a roll under way; dropping it (on success, error or
/// cancellation) ends it.
struct Rolling<'a>(&'a Cell<bool>);

impl<'a> Rolling<'a> {
    fn start(flag: &'a Cell<bool>) -> Self {
        assert!(
            !flag.replace(true),
            "rolls hold the I/O permit: one at a time"
        );
        Rolling(flag)
    }
}

impl Drop for Rolling<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// Called after every roll with the base offset of the new active segment.
pub(super) type RollObserver = Rc<dyn Fn(u64)>;

impl<S: Storage> Log<S> {
    pub(super) fn needs_roll(
        &self,
        active: &Segment<S::File>,
        frame_bytes: usize,
        now_ms: i64,
    ) -> bool {
        let (segment_bytes, segment_ms) = {
            let config = self.config.borrow();
            (config.segment_bytes, config.segment_ms)
        };
        // The creation time comes from the segment's file header, which a
        // damaged (or forged) file can set anywhere in i64: the age
        // saturates instead of overflowing (found by the segment_recovery
        // fuzz target): a segment dated far in the past rolls at its first
        // append, one dated in the future rolls by size only.
        active.has_data()
            && (active.data_end_bytes + (frame_bytes + FOOTER_FRAME_BYTES) as u64 > segment_bytes
                || now_ms.saturating_sub(active.created_ms) >= segment_ms)
    }

    /// Seals the active segment if it still needs rolling and starts a new
    /// one. Caller holds the I/O permit.
    pub(super) async fn roll_locked(&self, frame_bytes: usize) -> Result<()> {
        let now_ms = self.clock.now_ms();
        if !self.needs_roll(self.state.borrow().active(), frame_bytes, now_ms) {
            return Ok(());
        }
        let rolling = Rolling::start(&self.rolling);
        self.seal_active_locked().await?;
        let next_offset = self.next_offset();
        self.create_active_segment(next_offset, now_ms).await?;
        drop(rolling);
        self.state.borrow_mut().stats.rolls += 1;
        // Cloned out so the observer runs with no borrow held.
        let observer = self.roll_observer.borrow().clone();
        if let Some(observer) = observer {
            observer(next_offset);
        }
        Ok(())
    }

    /// Appends the footer, writes everything, fdatasyncs the segment and
    /// its index files, and trims the file to end at the footer.
    async fn seal_active_locked(&self) -> Result<()> {
        self.drain_writes_locked().await?;
        let (file, path, writes, index_writes, index_files, footer_end) = {
            let mut st = self.state.borrow_mut();
            self.check_poisoned(&st)?;
            let active = st.active();
            let file = active.file.clone();
            let path = active.path.clone();
            let offset_bytes: Vec<u8> = active
                .offset_index
                .iter()
                .flat_map(encode_offset_entry)
                .collect();
            let time_bytes: Vec<u8> = active
                .time_index
                .iter()
                .flat_map(encode_time_entry)
                .collect();
            let footer = SegmentFooter {
                end_offset: active.end_offset,
                data_end_bytes: active.data_end_bytes,
                max_timestamp_ms: active.max_timestamp_ms,
                offset_entries: active.offset_index.len() as u32,
                time_entries: active.time_index.len() as u32,
                offset_index_crc: crc32c::crc32c(&offset_bytes),
                time_index_crc: crc32c::crc32c(&time_bytes),
            };
            let index_files = [
                (FILE_HEADER_BYTES + offset_bytes.len()) as u64,
                (FILE_HEADER_BYTES + time_bytes.len()) as u64,
            ];
            let index_writes =
                index_writes(st.writer.as_ref().expect("active writer"), active, false);
            let writer = st.writer();
            let index_files = [
                (writer.offset_index.file.clone(), index_files[0]),
                (writer.time_index.file.clone(), index_files[1]),
            ];
            let mut writes = Vec::new();
            if writer.data.room_bytes() < FOOTER_FRAME_BYTES {
                writes.extend(writer.data.take_write(&file, false));
            }
            append_footer(&mut writer.data, &footer);
            let footer_end = writer.data.end_bytes();
            writes.extend(writer.data.take_write(&file, false));
            (file, path, writes, index_writes, index_files, footer_end)
        };
        let sealed: std::io::Result<()> = async {
            for PendingWrite { buf, pos } in writes {
                file.write_at(buf, pos).await?;
            }
            file.truncate(footer_end).await?;
            self.sync_segment_data(&file).await
        }
        .await;
        if let Err(e) = sealed {
            return self.poison(&path, e);
        }
        self.write_index_blocks(index_writes, false).await?;
        for (index_file, end_bytes) in index_files {
            let trimmed = async {
                index_file.truncate(end_bytes).await?;
                index_file.fdatasync().await
            };
            if let Err(e) = trimmed.await {
                return self.poison(&path, e);
            }
        }
        let mut st = self.state.borrow_mut();
        st.writer = None;
        let end = st.next_offset;
        st.durable_offset = end;
        st.written_offset = end;
        st.active_mut().sealed = true;
        Ok(())
    }

    /// Creates segment `base_offset` with its index files and makes it the
    /// active segment.
    pub(super) async fn create_active_segment(&self, base_offset: u64, now_ms: i64) -> Result<()> {
        let path = self
            .dir
            .join(segment_file_name(base_offset, SEGMENT_EXTENSION));
        let opened = async {
            let file = self.storage.open(&path, OpenMode::CreateNew).await?;
            let offset_file = self
                .storage
                .open(
                    &index_path(&self.dir, base_offset, OFFSET_INDEX_EXTENSION),
                    OpenMode::CreateNew,
                )
                .await?;
            let time_file = self
                .storage
                .open(
                    &index_path(&self.dir, base_offset, TIME_INDEX_EXTENSION),
                    OpenMode::CreateNew,
                )
                .await?;
            self.storage.sync_dir(&self.dir).await?;
            Ok::<_, std::io::Error>((file, offset_file, time_file))
        }
        .await;
        let (file, offset_file, time_file) = match opened {
            Ok(files) => files,
            Err(e) => return self.poison(&path, e),
        };
        let (kind, write_buffer_bytes) = {
            let config = self.config.borrow();
            (config.kind, config.write_buffer_bytes)
        };
        let header = encode_segment_header(&SegmentHeader {
            kind,
            base_offset,
            created_ms: now_ms,
        });
        let mut data = Appender::new(&file, write_buffer_bytes, 0, &[]);
        data.reserve(FILE_HEADER_BYTES).copy_from_slice(&header);
        let writer = Writer {
            data,
            offset_index: IndexWriter {
                file: Rc::new(offset_file),
                magic: OFFSET_INDEX_MAGIC,
                entry_bytes: OFFSET_ENTRY_BYTES,
                written_entries: 0,
            },
            time_index: IndexWriter {
                file: Rc::new(time_file),
                magic: TIME_INDEX_MAGIC,
                entry_bytes: TIME_ENTRY_BYTES,
                written_entries: 0,
            },
            bytes_since_index: 0,
        };
        let segment = Segment {
            base_offset,
            file: Rc::new(file),
            path,
            created_ms: now_ms,
            end_offset: base_offset,
            data_end_bytes: FILE_HEADER_BYTES as u64,
            max_timestamp_ms: i64::MIN,
            offset_index: Vec::new(),
            time_index: Vec::new(),
            sealed: false,
        };
        let mut st = self.state.borrow_mut();
        st.segments.insert(base_offset, segment);
        st.writer = Some(writer);
        Ok(())
    }
}

fn append_footer<F: StorageFile>(data: &mut Appender<F>, footer: &SegmentFooter) {
    let payload = encode_footer(footer);
    let frame = data.reserve(FOOTER_FRAME_BYTES);
    let (header_bytes, body) = frame.split_at_mut(FRAME_HEADER_BYTES);
    body.copy_from_slice(&payload);
    let header = FrameHeader {
        payload_len: FOOTER_PAYLOAD_BYTES as u32,
        base_offset: footer.end_offset,
        max_timestamp_ms: footer.max_timestamp_ms,
        count: 0,
        flags: FLAG_FOOTER,
    };
    encode_frame_header(header_bytes, &header, body);
}
