//! Recovery: what [`Log::open`] does with the files it finds.
//!
//! Why it reads so little: a sealed segment is trusted by its footer and
//! the index crcs in it, and the active segment is scanned only from its
//! last index entry that checks out against its frame. Index blocks reach
//! the disk only after the fdatasync covering the frames they point at, so
//! a verified entry proves every frame before it durable. What cannot be
//! proven is repaired (indexes rebuilt, a torn tail truncated, an
//! interrupted seal finished) or refused as corruption naming the file and
//! byte. The rules are numbered in ARCHITECTURE.md, "Recovery rules".

use super::scan::{footer_sits_at, ScanItem, Scanner, SCAN_CHUNK_BYTES};
use super::segment::{index_path, Segment, FOOTER_FRAME_BYTES};
use super::write::{IndexWriter, Writer};
use super::Log;
use crate::appender::Appender;
use crate::error::{Corruption, Error, Result};
use crate::format::{
    decode_footer, decode_index_header, decode_log_start, decode_offset_entries,
    decode_segment_header, decode_time_entries, encode_index_header, encode_offset_entry,
    encode_time_entry, index_crc, parse_segment_file_name, read_frame, segment_file_name,
    FrameRead, SegmentFooter, SegmentHeader, FILE_HEADER_BYTES, FOOTER_PAYLOAD_BYTES,
    FRAME_HEADER_BYTES, LOG_START_FILE_NAME, OFFSET_ENTRY_BYTES, OFFSET_INDEX_EXTENSION,
    OFFSET_INDEX_MAGIC, OFFSET_MAX, SEGMENT_EXTENSION, SEGMENT_FILE_EXTENSIONS, TIME_ENTRY_BYTES,
    TIME_INDEX_EXTENSION, TIME_INDEX_MAGIC,
};
use crate::io::{
    align_down, align_up, read_whole_file, OpenMode, Storage, StorageFile, TMP_SUFFIX,
};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// How many index entries recovery tries to verify (newest first) before
/// giving up on the index and scanning the whole segment.
const INDEX_VERIFY_TRIES_MAX: usize = 16;

/// Recovery: everything `Log::open` does after validating the config.
impl<S: Storage> Log<S> {
    pub(super) async fn recover(&self) -> Result<()> {
        // Read before anything is repaired: an open that refuses must
        // refuse before it changes a file, so that the next open of the
        // same files reaches the same verdict.
        let checkpoint = self.read_log_start().await?;
        let names = self
            .storage
            .list_dir(&self.dir)
            .await
            .map_err(|e| Error::io(&self.dir, e))?;
        let mut bases: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_segment_file_name(n, SEGMENT_EXTENSION))
            .collect();
        bases.sort_unstable();
        // Leftovers of interrupted work: temp files, and index files whose
        // segment retention already deleted.
        for name in &names {
            let orphan_index = [OFFSET_INDEX_EXTENSION, TIME_INDEX_EXTENSION]
                .iter()
                .filter_map(|ext| parse_segment_file_name(name, ext))
                .any(|base| bases.binary_search(&base).is_err());
            if name.ends_with(TMP_SUFFIX) || orphan_index {
                let path = self.dir.join(name);
                self.storage
                    .remove(&path)
                    .await
                    .map_err(|e| Error::io(&path, e))?;
            }
        }
        let now_ms = self.clock.now_ms();
        let mut next_base = None;
        let mut blank_base = None;
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let path = self.dir.join(segment_file_name(base, SEGMENT_EXTENSION));
            if base > OFFSET_MAX {
                // Checked on the name because a blank last segment has no
                // header to check, and its name becomes the log end.
                return Err(Error::corrupt(
                    &path,
                    0,
                    Corruption::Malformed("segment name beyond the largest offset"),
                ));
            }
            let file = self
                .storage
                .open(&path, OpenMode::Existing)
                .await
                .map_err(|e| Error::io(&path, e))?;
            let size = file.size().await.map_err(|e| Error::io(&path, e))?;
            let head = file
                .read_at(0, FILE_HEADER_BYTES)
                .await
                .map_err(|e| Error::io(&path, e))?;
            let header = match decode_segment_header(&head) {
                Ok(h) => h,
                Err(corruption) => {
                    if is_last && self.is_zero(&file, 0, size, &path).await? {
                        // A roll that crashed before its first write: the
                        // segment never held acknowledged data.
                        tracing::warn!(file = %path.display(), "removing never-written last segment");
                        drop(file);
                        for extension in SEGMENT_FILE_EXTENSIONS {
                            let p = index_path(&self.dir, base, extension);
                            match self.storage.remove(&p).await {
                                Ok(()) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                                Err(e) => return Err(Error::io(&p, e)),
                            }
                        }
                        self.storage
                            .sync_dir(&self.dir)
                            .await
                            .map_err(|e| Error::io(&self.dir, e))?;
                        blank_base = Some(base);
                        continue;
                    }
                    return Err(Error::corrupt(&path, 0, corruption));
                }
            };
            if header.base_offset != base {
                return Err(Error::corrupt(
                    &path,
                    0,
                    Corruption::Malformed("base offset differs from file name"),
                ));
            }
            if header.kind != self.config.borrow().kind {
                return Err(Error::corrupt(
                    &path,
                    0,
                    Corruption::Malformed("segment kind"),
                ));
            }
            if let Some(expected) = next_base {
                if expected != base {
                    return Err(Error::corrupt(
                        &path,
                        0,
                        Corruption::OffsetGap {
                            expected,
                            found: base,
                        },
                    ));
                }
            }
            // The last segment is told sealed or active by walking its
            // frames (`open_active` finishes at a footer the walk reaches),
            // never by its last bytes alone: those may be the tail of a
            // record a client chose, and can parse as a crc-valid footer.
            let footer = if is_last {
                None
            } else {
                self.read_footer(&file, size, &path).await?
            };
            let segment = match footer {
                Some(footer) => self.open_sealed(file, path, header, footer).await?,
                None if is_last => self.open_active(file, path, header, size).await?,
                None => {
                    // A sealed segment must end in a footer; scan it and
                    // refuse unless every frame is intact.
                    let scanned = self
                        .scan_segment(
                            &file,
                            &path,
                            header.base_offset,
                            FILE_HEADER_BYTES as u64,
                            size,
                            i64::MIN,
                        )
                        .await?;
                    if let Some((at, corruption)) = scanned.invalid {
                        return Err(Error::corrupt(&path, at, corruption));
                    }
                    return Err(Error::corrupt(
                        &path,
                        scanned.data_end_bytes,
                        Corruption::Malformed("sealed segment has no footer"),
                    ));
                }
            };
            next_base = Some(segment.segment.end_offset);
            assert_eq!(segment.segment.sealed, segment.writer.is_none());
            let mut st = self.state.borrow_mut();
            st.segments.insert(base, segment.segment);
            if segment.writer.is_some() {
                st.writer = segment.writer;
            }
        }
        let (needs_active, end_offset) = {
            let st = self.state.borrow();
            match st.segments.values().next_back() {
                Some(s) => (s.sealed, s.end_offset),
                // Retention or DeleteRecords may have deleted every segment
                // before a blank one: its name still says where the log ends.
                None => (true, blank_base.unwrap_or(0)),
            }
        };
        if needs_active {
            self.create_active_segment(end_offset, now_ms).await?;
        }
        let (start, clamped) = {
            let mut st = self.state.borrow_mut();
            let end = st.active().end_offset;
            let first_base = st.segments.values().next().map_or(0, |s| s.base_offset);
            assert!(first_base <= end);
            let (start, clamped) = match checkpoint {
                // Only data that was never durable can be missing above a
                // checkpointed start (a torn tail truncated after
                // DeleteRecords under an interval flush policy): the log
                // restarts empty at its end.
                Some(offset) if offset > end => {
                    tracing::warn!(log = %self.dir.display(), checkpoint = offset, log_end = end, "log start checkpoint above the log end; clamping it to the end");
                    (end, true)
                }
                Some(offset) => (offset.max(first_base), false),
                None => (first_base, false),
            };
            st.next_offset = end;
            st.written_offset = end;
            st.durable_offset = end;
            st.log_start_offset = start;
            st.last_sync_ms = now_ms;
            (start, clamped)
        };
        if clamped {
            // Rewritten before any append: left above the end, the stale
            // checkpoint would hide the next appends after a later restart.
            self.write_log_start(start).await?;
        }
        if checkpoint.is_some() {
            // Finish a DeleteRecords that crashed between its checkpoint and
            // its segment deletions.
            self.delete_prefix(|segment, _| segment.end_offset <= start)
                .await?;
        }
        Ok(())
    }

    /// The log start checkpoint, if the file exists.
    async fn read_log_start(&self) -> Result<Option<u64>> {
        let path = self.dir.join(LOG_START_FILE_NAME);
        match read_whole_file(&self.storage, &path).await {
            Ok(bytes) => decode_log_start(&bytes)
                .map(Some)
                .map_err(|(at, corruption)| Error::corrupt(&path, at, corruption)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// True when a file holds nothing but zeros (or nothing) from `from`
    /// to `size`.
    async fn is_zero(&self, file: &S::File, from: u64, size: u64, path: &Path) -> Result<bool> {
        let mut pos = from;
        while pos < size {
            let len = ((size - pos) as usize).min(SCAN_CHUNK_BYTES);
            let bytes = file
                .read_at(pos, len)
                .await
                .map_err(|e| Error::io(path, e))?;
            if bytes.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            pos += len as u64;
        }
        Ok(true)
    }

    /// The footer frame at the very end of the file, if there is a valid one.
    async fn read_footer(
        &self,
        file: &S::File,
        size: u64,
        path: &Path,
    ) -> Result<Option<SegmentFooter>> {
        if size < (FILE_HEADER_BYTES + FOOTER_FRAME_BYTES) as u64 {
            return Ok(None);
        }
        let at = size - FOOTER_FRAME_BYTES as u64;
        let bytes = file
            .read_at(at, FOOTER_FRAME_BYTES)
            .await
            .map_err(|e| Error::io(path, e))?;
        match read_frame(&bytes, FOOTER_PAYLOAD_BYTES) {
            FrameRead::Frame(h) if h.is_footer() => {
                let footer = decode_footer(&bytes[FRAME_HEADER_BYTES..])
                    .map_err(|c| Error::corrupt(path, at, c))?;
                if !footer_sits_at(&h, &footer, at) {
                    return Err(Error::corrupt(
                        path,
                        at,
                        Corruption::Malformed("footer disagrees with its position"),
                    ));
                }
                Ok(Some(footer))
            }
            _ => Ok(None),
        }
    }

    /// Reads an index file's entries if its header is valid for `base`.
    async fn load_index(
        &self,
        base: u64,
        extension: &str,
        magic: [u8; 8],
    ) -> Result<Option<Vec<u8>>> {
        let path = index_path(&self.dir, base, extension);
        let file = match self.storage.open(&path, OpenMode::Existing).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let size = file.size().await.map_err(|e| Error::io(&path, e))?;
        let bytes = file
            .read_at(0, size as usize)
            .await
            .map_err(|e| Error::io(&path, e))?;
        let valid = decode_index_header(&bytes, magic) == Ok(base);
        file.close().await.map_err(|e| Error::io(&path, e))?;
        Ok(valid.then(|| bytes[FILE_HEADER_BYTES..].to_vec()))
    }

    async fn open_sealed(
        &self,
        file: S::File,
        path: PathBuf,
        header: SegmentHeader,
        footer: SegmentFooter,
    ) -> Result<Opened<S::File>> {
        let base = header.base_offset;
        let offset_bytes = self
            .load_index(base, OFFSET_INDEX_EXTENSION, OFFSET_INDEX_MAGIC)
            .await?;
        let time_bytes = self
            .load_index(base, TIME_INDEX_EXTENSION, TIME_INDEX_MAGIC)
            .await?;
        let matches = |bytes: &Option<Vec<u8>>, entries: u32, entry_bytes: usize, crc: u32| {
            let found = bytes
                .as_deref()
                .and_then(|b| index_crc(b, entries, entry_bytes));
            found == Some(crc)
        };
        let offset_ok = matches(
            &offset_bytes,
            footer.offset_entries,
            OFFSET_ENTRY_BYTES,
            footer.offset_index_crc,
        );
        let time_ok = matches(
            &time_bytes,
            footer.time_entries,
            TIME_ENTRY_BYTES,
            footer.time_index_crc,
        );
        let (offset_index, time_index) = if offset_ok && time_ok {
            let o = offset_bytes.expect("checked");
            let t = time_bytes.expect("checked");
            (
                decode_offset_entries(&o[..footer.offset_entries as usize * OFFSET_ENTRY_BYTES]),
                decode_time_entries(&t[..footer.time_entries as usize * TIME_ENTRY_BYTES]),
            )
        } else {
            // Missing or stale index: rebuild it from the frames (the
            // footer proves the segment complete) and persist it.
            tracing::warn!(file = %path.display(), "rebuilding index of sealed segment");
            let scanned = self
                .scan_segment(
                    &file,
                    &path,
                    base,
                    FILE_HEADER_BYTES as u64,
                    footer.data_end_bytes,
                    i64::MIN,
                )
                .await?;
            if let Some((at, corruption)) = scanned.invalid {
                return Err(Error::corrupt(&path, at, corruption));
            }
            if scanned.end_offset != footer.end_offset {
                return Err(Error::corrupt(
                    &path,
                    footer.data_end_bytes,
                    Corruption::OffsetGap {
                        expected: scanned.end_offset,
                        found: footer.end_offset,
                    },
                ));
            }
            self.write_index_file(
                base,
                OFFSET_INDEX_EXTENSION,
                OFFSET_INDEX_MAGIC,
                &scanned
                    .offset_index
                    .iter()
                    .flat_map(encode_offset_entry)
                    .collect::<Vec<_>>(),
            )
            .await?;
            self.write_index_file(
                base,
                TIME_INDEX_EXTENSION,
                TIME_INDEX_MAGIC,
                &scanned
                    .time_index
                    .iter()
                    .flat_map(encode_time_entry)
                    .collect::<Vec<_>>(),
            )
            .await?;
            (scanned.offset_index, scanned.time_index)
        };
        Ok(Opened {
            writer: None,
            segment: Segment {
                base_offset: base,
                file: Rc::new(file),
                path,
                created_ms: header.created_ms,
                end_offset: footer.end_offset,
                data_end_bytes: footer.data_end_bytes,
                max_timestamp_ms: footer.max_timestamp_ms,
                offset_index,
                time_index,
                sealed: true,
            },
        })
    }

    /// Writes a complete index file atomically (temp file, fdatasync,
    /// rename, directory sync).
    async fn write_index_file(
        &self,
        base: u64,
        extension: &str,
        magic: [u8; 8],
        entries: &[u8],
    ) -> Result<()> {
        let path = index_path(&self.dir, base, extension);
        let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", path.display()));
        let result = async {
            let file = self.storage.open(&tmp, OpenMode::CreateNew).await?;
            let total = FILE_HEADER_BYTES + entries.len();
            let mut buf = file.alloc(align_up(total as u64) as usize);
            {
                let bytes = crate::io::IoBuf::as_mut_slice(&mut buf);
                bytes[..FILE_HEADER_BYTES].copy_from_slice(&encode_index_header(magic, base));
                bytes[FILE_HEADER_BYTES..total].copy_from_slice(entries);
                bytes[total..].fill(0);
            }
            file.write_at(buf, 0).await?;
            file.truncate(total as u64).await?;
            file.fdatasync().await?;
            file.close().await?;
            self.storage.rename(&tmp, &path).await?;
            self.storage.sync_dir(&self.dir).await
        }
        .await;
        result.map_err(|e| Error::io(&path, e))
    }

    /// Verifies index entries newest-first against the frames they point
    /// at; returns how many leading entries are trustworthy.
    async fn verified_prefix(
        &self,
        file: &S::File,
        path: &Path,
        base: u64,
        positions: &[(u32, u32, i64)],
        size: u64,
    ) -> Result<usize> {
        // Structural check first: positions inside the data, both fields
        // strictly increasing.
        let mut n = positions
            .iter()
            .enumerate()
            .take_while(|(i, (rel, pos, _))| {
                (*pos as u64) >= FILE_HEADER_BYTES as u64
                    && (*pos as u64) < size
                    && (*i == 0 || (positions[i - 1].0 < *rel && positions[i - 1].1 < *pos))
            })
            .count();
        for _ in 0..INDEX_VERIFY_TRIES_MAX {
            if n == 0 {
                return Ok(0);
            }
            let (rel, pos, max_ts) = positions[n - 1];
            let mut scanner = Scanner::new(file, pos as u64, size, self.frame_payload_max);
            if let Some(ScanItem::Frame(h)) =
                scanner.next().await.map_err(|e| Error::io(path, e))?
            {
                if !h.is_footer()
                    && h.base_offset == base + rel as u64
                    && h.max_timestamp_ms <= max_ts
                {
                    return Ok(n);
                }
            }
            n -= 1;
        }
        Ok(0)
    }

    async fn open_active(
        &self,
        file: S::File,
        path: PathBuf,
        header: SegmentHeader,
        size: u64,
    ) -> Result<Opened<S::File>> {
        let base = header.base_offset;
        let offset_entries = self
            .load_index(base, OFFSET_INDEX_EXTENSION, OFFSET_INDEX_MAGIC)
            .await?
            .map(|b| decode_offset_entries(&b))
            .unwrap_or_default();
        let time_entries = self
            .load_index(base, TIME_INDEX_EXTENSION, TIME_INDEX_MAGIC)
            .await?
            .map(|b| decode_time_entries(&b))
            .unwrap_or_default();
        let offset_keys: Vec<_> = offset_entries
            .iter()
            .map(|e| (e.relative_offset, e.position, i64::MAX))
            .collect();
        let time_keys: Vec<_> = time_entries
            .iter()
            .map(|e| (e.relative_offset, e.position, e.max_timestamp_ms))
            .collect();
        let n_offset = self
            .verified_prefix(&file, &path, base, &offset_keys, size)
            .await?;
        let n_time = self
            .verified_prefix(&file, &path, base, &time_keys, size)
            .await?;
        // Both indexes get entries at the same frames; resume from the
        // older of their last verified entries.
        let common = n_offset.min(n_time);
        let (mut offset_index, mut time_index) = (offset_entries, time_entries);
        offset_index.truncate(common);
        time_index.truncate(common);
        let (scan_from, expected, max_ts) = match (offset_index.last(), time_index.last()) {
            (Some(o), Some(t))
                if o.position == t.position && o.relative_offset == t.relative_offset =>
            {
                // Rescan from the last verified frame, which re-adds its
                // entries; its time entry's running maximum already covers
                // every frame before it, and max is idempotent.
                let resume = (
                    o.position as u64,
                    base + o.relative_offset as u64,
                    t.max_timestamp_ms,
                );
                offset_index.pop();
                time_index.pop();
                resume
            }
            _ => {
                offset_index.clear();
                time_index.clear();
                (FILE_HEADER_BYTES as u64, base, i64::MIN)
            }
        };
        let mut scanned = self
            .scan_segment(&file, &path, expected, scan_from, size, max_ts)
            .await?;
        if let Some((at, corruption)) = scanned.invalid.take() {
            if let Some(valid_at) = self
                .find_valid_frame_after(&file, &path, at, size, scanned.end_offset)
                .await?
            {
                tracing::error!(file = %path.display(), at, valid_at, "bad frame followed by valid data");
                return Err(Error::corrupt(&path, at, corruption));
            }
            tracing::warn!(file = %path.display(), at, %corruption, "truncating torn tail");
        }
        if let Some(footer) = scanned.footer {
            // Crash after sealing, before the next segment existed. A seal
            // writes the footer's block (zero-padded to the block end),
            // then truncates the file after the footer: a crash between
            // the two leaves the padding, and a later open, which looks for
            // a sealed segment's footer at the end of the file, would call
            // the segment footless. So finish the seal here.
            let footer_end = footer.data_end_bytes + FOOTER_FRAME_BYTES as u64;
            if size > footer_end {
                if !self.is_zero(&file, footer_end, size, &path).await? {
                    return Err(Error::corrupt(
                        &path,
                        footer_end,
                        Corruption::Malformed("bytes after the segment footer"),
                    ));
                }
                file.truncate(footer_end)
                    .await
                    .map_err(|e| Error::io(&path, e))?;
                file.fdatasync().await.map_err(|e| Error::io(&path, e))?;
            }
            drop(file);
            let reopened = self
                .storage
                .open(&path, OpenMode::Existing)
                .await
                .map_err(|e| Error::io(&path, e))?;
            return self.open_sealed(reopened, path, header, footer).await;
        }
        offset_index.append(&mut scanned.offset_index);
        time_index.append(&mut scanned.time_index);
        let data_end = scanned.data_end_bytes;
        if size != data_end {
            file.truncate(data_end)
                .await
                .map_err(|e| Error::io(&path, e))?;
            file.fdatasync().await.map_err(|e| Error::io(&path, e))?;
        }
        // Rewrite the index files to match exactly what was verified, then
        // keep appending to them.
        let offset_bytes: Vec<u8> = offset_index.iter().flat_map(encode_offset_entry).collect();
        let time_bytes: Vec<u8> = time_index.iter().flat_map(encode_time_entry).collect();
        self.write_index_file(
            base,
            OFFSET_INDEX_EXTENSION,
            OFFSET_INDEX_MAGIC,
            &offset_bytes,
        )
        .await?;
        self.write_index_file(base, TIME_INDEX_EXTENSION, TIME_INDEX_MAGIC, &time_bytes)
            .await?;
        let offset_writer = self
            .reopen_index(
                base,
                OFFSET_INDEX_EXTENSION,
                OFFSET_INDEX_MAGIC,
                offset_index.len(),
                OFFSET_ENTRY_BYTES,
            )
            .await?;
        let time_writer = self
            .reopen_index(
                base,
                TIME_INDEX_EXTENSION,
                TIME_INDEX_MAGIC,
                time_index.len(),
                TIME_ENTRY_BYTES,
            )
            .await?;
        let tail_start = align_down(data_end);
        let tail = file
            .read_at(tail_start, (data_end - tail_start) as usize)
            .await
            .map_err(|e| Error::io(&path, e))?;
        let data = Appender::new(
            &file,
            self.config.borrow().write_buffer_bytes,
            data_end,
            &tail,
        );
        Ok(Opened {
            writer: Some(Writer {
                data,
                offset_index: offset_writer,
                time_index: time_writer,
                bytes_since_index: scanned.bytes_since_index,
            }),
            segment: Segment {
                base_offset: base,
                file: Rc::new(file),
                path,
                created_ms: header.created_ms,
                end_offset: scanned.end_offset,
                data_end_bytes: data_end,
                max_timestamp_ms: scanned.max_timestamp_ms,
                offset_index,
                time_index,
                sealed: false,
            },
        })
    }

    /// Opens an index file that `write_index_file` just wrote with
    /// `entries` entries, to keep appending to it.
    async fn reopen_index(
        &self,
        base: u64,
        extension: &str,
        magic: [u8; 8],
        entries: usize,
        entry_bytes: usize,
    ) -> Result<IndexWriter<S::File>> {
        let path = index_path(&self.dir, base, extension);
        let file = self
            .storage
            .open(&path, OpenMode::Existing)
            .await
            .map_err(|e| Error::io(&path, e))?;
        Ok(IndexWriter {
            file: Rc::new(file),
            magic,
            entry_bytes,
            written_entries: entries,
        })
    }
}

struct Opened<F: StorageFile> {
    writer: Option<Writer<F>>,
    segment: Segment<F>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::io::mem::MemStorage;
    use crate::log::{LogConfig, SegmentInfo};

    /// The files of a log of small segments as a crash between a seal
    /// and the next segment's creation leaves them: the first segment
    /// sealed and last. Returns the storage, the log's config, the sealed
    /// segment and the base offset of the next one (whose files are gone).
    async fn sealed_segment_last(dir: &Path) -> (MemStorage, LogConfig, SegmentInfo, u64) {
        let config = LogConfig {
            segment_bytes: 4096,
            write_buffer_bytes: 16 * 1024,
            max_payload_bytes: 1024,
            ..LogConfig::default()
        };
        let mem = MemStorage::new();
        let log = Log::open(mem.clone(), dir, config.clone(), Clock::System)
            .await
            .unwrap();
        while log.segments().len() < 2 {
            log.append_acked(90, 1, 0, |dst, _| dst.fill(7))
                .await
                .unwrap();
        }
        let (sealed, next) = (log.segments()[0].clone(), log.segments()[1].base_offset);
        log.close().await.unwrap();
        for extension in SEGMENT_FILE_EXTENSIONS {
            mem.remove(&index_path(dir, next, extension)).await.unwrap();
        }
        (mem, config, sealed, next)
    }

    /// Found by the segment_recovery fuzz target (its second open of the
    /// same files disagreed with the first): a crash during a seal after
    /// the footer's zero-padded block was written but before the file was
    /// truncated after the footer. The first open found the footer by
    /// scanning and created the next segment; the second looked for the
    /// footer at the end of the file, found padding, and refused the now
    /// not-last segment as footless. Recovery now finishes the seal.
    #[test]
    fn a_seal_interrupted_before_its_truncate_recovers_twice() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = Path::new("/l");
                let (mem, config, sealed, active) = sealed_segment_last(dir).await;
                let footer_end = sealed.size_bytes + FOOTER_FRAME_BYTES as u64;
                assert_ne!(footer_end, align_up(footer_end), "padding to write");
                // The crash image: the sealed one still padded to its
                // block end.
                let mut bytes = mem.file_bytes(&sealed.path).unwrap();
                bytes.resize(align_up(bytes.len() as u64) as usize, 0);
                mem.set_file_bytes(&sealed.path, bytes);
                let mut recovered = Vec::new();
                for _ in 0..2 {
                    let log = Log::open(mem.clone(), dir, config.clone(), Clock::System)
                        .await
                        .unwrap();
                    recovered.push((log.next_offset(), log.segments()));
                }
                assert_eq!(recovered[0], recovered[1]);
                assert_eq!(recovered[0].0, sealed.end_offset);
                assert!(recovered[0].1[0].sealed);
                // Anything but padding after the footer is damage.
                let mut bytes = mem.file_bytes(&sealed.path).unwrap();
                bytes.extend_from_slice(&[0, 1]);
                mem.set_file_bytes(&sealed.path, bytes);
                for extension in SEGMENT_FILE_EXTENSIONS {
                    mem.remove(&index_path(dir, active, extension))
                        .await
                        .unwrap();
                }
                match Log::open(mem, dir, config, Clock::System).await {
                    Err(Error::Corrupt { corruption, .. }) => assert_eq!(
                        corruption,
                        Corruption::Malformed("bytes after the segment footer")
                    ),
                    Err(other) => panic!("expected corruption, got {other}"),
                    Ok(_) => panic!("bytes after a footer opened"),
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// Found by the segment_recovery fuzz target: the first open cut a
    /// torn tail and left last a record whose payload ends in bytes that
    /// parse as a crc-valid footer frame; the second open took them for the
    /// segment's footer and refused the log it had just recovered. A client
    /// chooses those bytes (a record's last header value), so a footer that
    /// even names its own position must not seal the active segment.
    #[test]
    fn a_record_ending_like_a_footer_does_not_seal_the_active_segment() {
        use crate::format::{encode_footer, encode_frame_header, FrameHeader, FLAG_FOOTER};
        const PAYLOAD_BYTES: usize = 200;
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let config = LogConfig {
                    max_payload_bytes: 1024,
                    ..LogConfig::default()
                };
                let dir = Path::new("/l");
                for (names_its_position, torn_tail) in
                    [(false, false), (false, true), (true, false), (true, true)]
                {
                    let mem = MemStorage::new();
                    let log = Log::open(mem.clone(), dir, config.clone(), Clock::System)
                        .await
                        .unwrap();
                    for _ in 0..3 {
                        log.append_acked(PAYLOAD_BYTES, 1, 0, |dst, _| dst.fill(7))
                            .await
                            .unwrap();
                    }
                    // The fake footer ends where the record's frame ends.
                    let frame_at = log.segments()[0].size_bytes;
                    let fake_at = frame_at + (FRAME_HEADER_BYTES + PAYLOAD_BYTES) as u64
                        - FOOTER_FRAME_BYTES as u64;
                    let base = log.next_offset();
                    let footer = SegmentFooter {
                        end_offset: base,
                        data_end_bytes: if names_its_position {
                            fake_at
                        } else {
                            fake_at + 1
                        },
                        max_timestamp_ms: 0,
                        offset_entries: 0,
                        time_entries: 0,
                        offset_index_crc: 0,
                        time_index_crc: 0,
                    };
                    log.append_acked(PAYLOAD_BYTES, 1, 0, |dst, _| {
                        let (records, fake) = dst.split_at_mut(PAYLOAD_BYTES - FOOTER_FRAME_BYTES);
                        records.fill(7);
                        let (header, payload) = fake.split_at_mut(FRAME_HEADER_BYTES);
                        payload.copy_from_slice(&encode_footer(&footer));
                        let frame = FrameHeader {
                            payload_len: FOOTER_PAYLOAD_BYTES as u32,
                            base_offset: base,
                            max_timestamp_ms: 0,
                            count: 0,
                            flags: FLAG_FOOTER,
                        };
                        encode_frame_header(header, &frame, payload);
                    })
                    .await
                    .unwrap();
                    let segment = log.segments()[0].clone();
                    assert_eq!(segment.size_bytes, fake_at + FOOTER_FRAME_BYTES as u64);
                    let expected = log.read(0, 1 << 20).await.unwrap();
                    let expected: Vec<Vec<u8>> = expected.iter().map(|(_, p)| p.to_vec()).collect();
                    assert_eq!(expected.len(), 4);
                    log.close().await.unwrap();
                    if torn_tail {
                        let mut bytes = mem.file_bytes(&segment.path).unwrap();
                        bytes.extend_from_slice(&[0xff; 40]);
                        mem.set_file_bytes(&segment.path, bytes);
                    }
                    let mut recovered = Vec::new();
                    for _ in 0..2 {
                        let log = Log::open(mem.clone(), dir, config.clone(), Clock::System)
                            .await
                            .unwrap_or_else(|e| panic!("{names_its_position} {torn_tail}: {e}"));
                        let read = log.read(0, 1 << 20).await.unwrap();
                        let payloads: Vec<Vec<u8>> = read.iter().map(|(_, p)| p.to_vec()).collect();
                        recovered.push((log.next_offset(), log.segments(), payloads));
                        log.close().await.unwrap();
                    }
                    assert_eq!(recovered[0], recovered[1]);
                    let (next_offset, segments, payloads) = &recovered[0];
                    assert_eq!(*next_offset, 4);
                    assert_eq!(segments.len(), 1);
                    assert!(!segments[0].sealed);
                    assert_eq!(segments[0].size_bytes, segment.size_bytes);
                    assert_eq!(*payloads, expected);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// Found by a fuzz run of the fix above: a last segment whose footer
    /// frame's header names another end offset than its payload. The walk
    /// took it for the footer and sealed the segment; the second open, now
    /// reading the footer at the file's end, refused it. Both ways of
    /// finding a footer now check the same things, so both opens refuse.
    #[test]
    fn a_footer_whose_header_names_another_end_offset_refuses_alike() {
        use crate::format::{frame_crc, FRAME_BASE_OFFSET_AT, FRAME_CRC_AT};
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = Path::new("/l");
                let (mem, config, sealed, _) = sealed_segment_last(dir).await;
                // Its footer's header one offset off.
                let mut bytes = mem.file_bytes(&sealed.path).unwrap();
                let at = sealed.size_bytes as usize;
                let base_at = at + FRAME_BASE_OFFSET_AT;
                let base = u64::from_le_bytes(bytes[base_at..base_at + 8].try_into().unwrap());
                bytes[base_at..base_at + 8].copy_from_slice(&(base + 1).to_le_bytes());
                let (header, payload) =
                    bytes[at..at + FOOTER_FRAME_BYTES].split_at(FRAME_HEADER_BYTES);
                let crc = frame_crc(header, payload);
                bytes[at + FRAME_CRC_AT..at + FRAME_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
                mem.set_file_bytes(&sealed.path, bytes.clone());
                let mut verdicts = Vec::new();
                for _ in 0..2 {
                    match Log::open(mem.clone(), dir, config.clone(), Clock::System).await {
                        Err(e @ Error::Corrupt { .. }) => verdicts.push(e.to_string()),
                        Err(other) => panic!("expected corruption, got {other}"),
                        Ok(_) => panic!("a footer naming another end offset opened"),
                    }
                    assert_eq!(mem.file_bytes(&sealed.path).unwrap(), bytes);
                }
                assert_eq!(verdicts[0], verdicts[1]);
                assert!(verdicts[0].contains("footer disagrees"), "{}", verdicts[0]);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// Found by the metadata_log_replay fuzz target: the first open cut a
    /// torn tail and only then found the log start checkpoint corrupt, so
    /// the second open saw other files and refused for another reason. An
    /// open that refuses now leaves every file as it found it.
    #[test]
    fn a_refused_open_changes_no_file() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = Path::new("/l");
                let mem = MemStorage::new();
                let log = Log::open(mem.clone(), dir, LogConfig::default(), Clock::System)
                    .await
                    .unwrap();
                log.append_acked(100, 1, 0, |dst, _| dst.fill(7))
                    .await
                    .unwrap();
                let segment = log.segments()[0].clone();
                log.close().await.unwrap();
                let mut bytes = mem.file_bytes(&segment.path).unwrap();
                bytes.extend_from_slice(&[0xff; 40]);
                mem.set_file_bytes(&segment.path, bytes);
                mem.set_file_bytes(&dir.join(LOG_START_FILE_NAME), vec![1; 24]);
                let files = |mem: &MemStorage| {
                    let mut paths = mem.paths();
                    paths.sort();
                    paths
                        .into_iter()
                        .map(|p| (mem.file_bytes(&p), p))
                        .collect::<Vec<_>>()
                };
                let before = files(&mem);
                let mut verdicts = Vec::new();
                for _ in 0..2 {
                    match Log::open(mem.clone(), dir, LogConfig::default(), Clock::System).await {
                        Err(e @ Error::Corrupt { .. }) => verdicts.push(e.to_string()),
                        Err(other) => panic!("expected corruption, got {other}"),
                        Ok(_) => panic!("a corrupt checkpoint opened"),
                    }
                    assert_eq!(files(&mem), before);
                }
                assert_eq!(verdicts[0], verdicts[1]);
                assert!(verdicts[0].contains(LOG_START_FILE_NAME), "{}", verdicts[0]);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// Found by the segment_recovery fuzz target: a blank (never written)
    /// last segment named beyond [`OFFSET_MAX`] became the log end, so the
    /// recovered log could not take a single append. Such a name is now
    /// corruption; one at the largest offset is an empty, full log.
    #[test]
    fn blank_segments_named_beyond_the_largest_offset_are_corrupt() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = Path::new("/l");
                let blank = |base| {
                    let mem = MemStorage::new();
                    mem.set_file_bytes(&index_path(dir, base, SEGMENT_EXTENSION), vec![0; 2]);
                    mem
                };
                let beyond = blank(OFFSET_MAX + 1);
                match Log::open(beyond, dir, LogConfig::default(), Clock::System).await {
                    Err(Error::Corrupt {
                        path, corruption, ..
                    }) => {
                        assert_eq!(path, index_path(dir, OFFSET_MAX + 1, SEGMENT_EXTENSION));
                        assert_eq!(
                            corruption,
                            Corruption::Malformed("segment name beyond the largest offset")
                        );
                    }
                    Err(other) => panic!("expected corruption, got {other}"),
                    Ok(_) => panic!("a segment beyond the largest offset opened"),
                }
                let at_max = blank(OFFSET_MAX);
                let log = Log::open(at_max, dir, LogConfig::default(), Clock::System)
                    .await
                    .unwrap();
                assert_eq!(log.next_offset(), OFFSET_MAX);
                assert!(matches!(
                    log.append_with(1, 1, 0, |dst, _| dst.fill(1)).await,
                    Err(Error::OffsetsExhausted { .. })
                ));
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
