//! `ringlog inspect`: print on-disk files frame by frame (an archive
//! member by member) and verify every checksum, stopping at the first
//! corruption with its file and byte offset. Reads with ordinary buffered I/O — it is an offline tool and
//! must work on a copy of a data directory anywhere, even on tmpfs. An
//! archive may also be read from S3, through the broker's store layer.

use futures_lite::future::block_on;
use ringlog_engine::archive::{
    archive_key, verify_all, Footer, TailRead, ARCHIVE_VERSION, TAIL_READ_BYTES, TRAILER_BYTES,
};
use ringlog_engine::batch::BatchView;
use ringlog_engine::format::{
    decode_footer, decode_segment_header, parse_segment_file_name, walk_frames, FrameRead,
    SegmentKind, FILE_HEADER_BYTES, FRAME_HEADER_BYTES, META_SNAPSHOT_EXTENSION, SEGMENT_EXTENSION,
};
use ringlog_shard::tiered::{start_store, ArchiveTarget, StoreHandle};
use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

/// Why a command did not succeed.
pub enum Failure {
    /// A check failed; the report was already printed.
    Check,
    /// Corruption found: `<file> at byte <offset>: <what>`.
    Corrupt(String),
    /// Bad arguments or unreadable files.
    Usage(String),
}

/// Summary of one verified segment.
pub struct SegmentSummary {
    /// Frames with data (not counting the footer).
    pub frames: u64,
    /// First offset.
    pub base_offset: u64,
    /// Offset after the last frame.
    pub end_offset: u64,
    /// Whether a footer seals the segment.
    pub sealed: bool,
}

fn corrupt(file: &Path, offset: u64, what: impl std::fmt::Display) -> Failure {
    Failure::Corrupt(format!(
        "corrupt {} at byte {offset}: {what}",
        file.display()
    ))
}

/// Verifies a segment image, calling `on_frame` for each frame with its
/// position, header and payload.
pub fn verify_segment(
    file: &Path,
    bytes: &[u8],
    mut on_frame: impl FnMut(u64, &ringlog_engine::format::FrameHeader, &[u8]),
) -> Result<SegmentSummary, Failure> {
    let header = decode_segment_header(bytes).map_err(|c| corrupt(file, 0, c))?;
    let mut summary = SegmentSummary {
        frames: 0,
        base_offset: header.base_offset,
        end_offset: header.base_offset,
        sealed: false,
    };
    for (at, found) in walk_frames(bytes, FILE_HEADER_BYTES, usize::MAX) {
        let at = at as u64;
        match found {
            FrameRead::Frame(h) => {
                let payload =
                    &bytes[at as usize + FRAME_HEADER_BYTES..at as usize + h.frame_bytes()];
                if h.base_offset != summary.end_offset {
                    return Err(corrupt(
                        file,
                        at,
                        format!(
                            "offset gap: expected {}, found {}",
                            summary.end_offset, h.base_offset
                        ),
                    ));
                }
                if h.is_footer() {
                    let footer = decode_footer(payload).map_err(|c| corrupt(file, at, c))?;
                    if footer.data_end_bytes != at || at as usize + h.frame_bytes() != bytes.len() {
                        return Err(corrupt(
                            file,
                            at,
                            "footer is not the last frame or disagrees with its position",
                        ));
                    }
                    summary.sealed = true;
                } else {
                    if header.kind == SegmentKind::Partition {
                        BatchView::parse(payload)
                            .map_err(|e| corrupt(file, at, format!("record batch: {e}")))?;
                    }
                    summary.frames += 1;
                    summary.end_offset = h.end_offset();
                }
                on_frame(at, &h, payload);
            }
            FrameRead::End => {
                if let Some(nonzero) = bytes[at as usize..].iter().position(|&b| b != 0) {
                    return Err(corrupt(
                        file,
                        at + nonzero as u64,
                        "data after the end-of-data padding",
                    ));
                }
            }
            FrameRead::Invalid(c) => return Err(corrupt(file, at, c)),
        }
    }
    Ok(summary)
}

/// `ringlog inspect segment <file>`.
pub fn segment(file: &Path, quiet: bool) -> Result<(), Failure> {
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
    let header = decode_segment_header(&bytes).map_err(|c| corrupt(file, 0, c))?;
    if !quiet {
        println!(
            "{}: {:?} segment, format v{}, base offset {}, created {} ms",
            file.display(),
            header.kind,
            ringlog_engine::format::FORMAT_VERSION,
            header.base_offset,
            header.created_ms
        );
    }
    let summary = verify_segment(file, &bytes, |at, h, payload| {
        if quiet {
            return;
        }
        if h.is_footer() {
            println!(
                "{at:>12}  footer: end offset {}, max timestamp {}",
                h.base_offset, h.max_timestamp_ms
            );
            return;
        }
        let detail = match (header.kind, BatchView::parse(payload)) {
            (SegmentKind::Partition, Ok(b)) => format!(
                " records {} codec {} producer {}/{} seq {}",
                b.record_count(),
                b.codec(),
                b.producer_id(),
                b.producer_epoch(),
                b.base_sequence()
            ),
            _ => String::new(),
        };
        println!(
            "{at:>12}  offsets {}..{} max_ts {} bytes {}{detail}",
            h.base_offset,
            h.end_offset(),
            h.max_timestamp_ms,
            h.payload_len
        );
    })?;
    println!(
        "ok: {} frames, offsets {}..{}, {}, every crc verified",
        summary.frames,
        summary.base_offset,
        summary.end_offset,
        if summary.sealed {
            "sealed"
        } else {
            "active (no footer)"
        }
    );
    Ok(())
}

/// Segment files (`<20 digits>.log`) in `dir`, oldest first.
fn segment_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::Usage(format!("cannot list {}: {e}", dir.display())))?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| parse_segment_file_name(n, SEGMENT_EXTENSION))
                .is_some()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// `ringlog inspect meta <data-dir>`.
pub fn meta(data_dir: &Path, quiet: bool) -> Result<(), Failure> {
    use ringlog_engine::format::META_SNAPSHOT_HEADER_BYTES;
    use ringlog_engine::meta::{decode_event, log_dir, read_snapshot_file, snapshot_dir};
    let meta_dir = data_dir.join("meta");
    if !meta_dir.is_dir() {
        return Err(Failure::Usage(format!(
            "{} has no metadata log (no meta/ directory)",
            data_dir.display()
        )));
    }
    let snapshots = snapshot_dir(&meta_dir);
    let mut snapshot_files: Vec<_> = match std::fs::read_dir(&snapshots) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == META_SNAPSHOT_EXTENSION))
            .collect(),
        Err(_) => Vec::new(),
    };
    snapshot_files.sort();
    for file in &snapshot_files {
        let bytes = std::fs::read(file)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
        let (applied_offset, state) = read_snapshot_file(&bytes).map_err(|c| {
            use ringlog_engine::Corruption::*;
            let at = match c {
                BadFrameCrc | BadPayload => META_SNAPSHOT_HEADER_BYTES as u64,
                _ => 0,
            };
            corrupt(file, at, c)
        })?;
        println!(
            "snapshot {}: applied offset {applied_offset}, {} topics",
            file.display(),
            state.topics().count()
        );
    }
    let mut events = 0u64;
    let mut expected_base = None;
    for file in segment_files(&log_dir(&meta_dir))? {
        let bytes = std::fs::read(&file)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
        let mut first_bad = None;
        let summary = verify_segment(&file, &bytes, |at, h, payload| {
            if h.is_footer() || first_bad.is_some() {
                return;
            }
            match decode_event(payload) {
                Ok(event) if !quiet => {
                    println!("{:>10}  {} ms  {event}", h.base_offset, h.max_timestamp_ms)
                }
                Ok(_) => {}
                Err(c) => first_bad = Some(corrupt(&file, at, c)),
            }
        })?;
        if let Some(failure) = first_bad {
            return Err(failure);
        }
        if let Some(expected) = expected_base {
            if summary.base_offset != expected {
                return Err(corrupt(
                    &file,
                    0,
                    format!(
                        "offset gap: previous segment ends at {expected}, this one starts at {}",
                        summary.base_offset
                    ),
                ));
            }
        }
        expected_base = Some(summary.end_offset);
        events += summary.frames;
    }
    println!(
        "ok: {} snapshots, {events} events up to offset {}, every crc verified",
        snapshot_files.len(),
        expected_base.unwrap_or(0)
    );
    Ok(())
}

/// `ringlog inspect archive <path-or-url>`: prints the footer and the
/// member table, then verifies every member. Opens the object as a reader
/// of the object store does, from its last [`TAIL_READ_BYTES`] and then
/// the footer's range if the tail did not hold it, so an archive that
/// opens here opens there. `s3://bucket/key` is read through the store
/// layer the broker uses (credentials and region from the `AWS_*`
/// variables, `s3_endpoint` for an S3-compatible server) by ranged GETs:
/// the tail, the footer if needed, then the whole object to verify it.
pub fn archive(path: &str, s3_endpoint: Option<&str>, quiet: bool) -> Result<(), Failure> {
    let object = ArchiveObject::open(path, s3_endpoint)?;
    let len = object.len();
    let corrupt = |e| Failure::Corrupt(format!("corrupt {path}: {e}"));
    let tail = object.read(len.saturating_sub(TAIL_READ_BYTES)..len)?;
    let footer = match Footer::from_tail(&tail, len).map_err(corrupt)? {
        TailRead::Complete(footer) => footer,
        TailRead::NeedFooter(trailer) => {
            Footer::decode(&object.read(trailer.footer_range())?, &trailer).map_err(corrupt)?
        }
    };
    if !quiet {
        print_footer(path, &footer);
    }
    let report = verify_all(&object.read(0..len)?).map_err(corrupt)?;
    println!(
        "ok: {} batches in {} spans, offsets {}..{}, {} members, every crc verified",
        report.footer.batch_count,
        report.spans,
        report.footer.first_offset,
        report.footer.last_offset + 1,
        report.footer.members.len()
    );
    Ok(())
}

/// An archive being inspected: a local file read whole (an offline tool
/// must work on a copy anywhere), or an object in S3 read by ranges.
enum ArchiveObject {
    Local(Vec<u8>),
    Remote {
        store: StoreHandle,
        key: String,
        url: String,
        len: u64,
    },
}

impl ArchiveObject {
    fn open(path: &str, s3_endpoint: Option<&str>) -> Result<ArchiveObject, Failure> {
        let Some(rest) = path.strip_prefix("s3://") else {
            if let Some((scheme, _)) = path.split_once("://") {
                return Err(Failure::Usage(format!(
                    "{path}: unsupported scheme {scheme}:// (give a local path or s3://bucket/key)"
                )));
            }
            if let Some(endpoint) = s3_endpoint {
                return Err(Failure::Usage(format!(
                    "--s3-endpoint {endpoint} is set but {path} is not an s3:// URL"
                )));
            }
            return std::fs::read(path)
                .map(ArchiveObject::Local)
                .map_err(|e| Failure::Usage(format!("cannot read {path}: {e}")));
        };
        let Some((bucket, key)) = rest.split_once('/').filter(|(_, key)| !key.is_empty()) else {
            return Err(Failure::Usage(format!(
                "{path}: give s3://bucket/key, the key of one archive object"
            )));
        };
        // The bucket's root as the target, so the key is the whole key
        // (prefix included) as S3 lists it. The bucket name and endpoint
        // are S3's to judge: its error names them.
        let target = ArchiveTarget::S3 {
            bucket: bucket.to_string(),
            prefix: String::new(),
            endpoint: s3_endpoint.map(str::to_string),
        };
        let store = start_store(&target, "inspect")
            .map_err(|e| Failure::Usage(format!("{path}: {e}")))?
            .expect("an s3:// target is not off");
        let len = block_on(store.size(key))
            .map_err(|e| Failure::Usage(format!("cannot read {path}: {e}")))?
            .ok_or_else(|| Failure::Usage(format!("cannot read {path}: no such object")))?;
        Ok(ArchiveObject::Remote {
            store,
            key: key.to_string(),
            url: path.to_string(),
            len,
        })
    }

    fn len(&self) -> u64 {
        match self {
            ArchiveObject::Local(bytes) => bytes.len() as u64,
            ArchiveObject::Remote { len, .. } => *len,
        }
    }

    /// The bytes of `range`, which lies within the object (the trailer
    /// and footer checks bound every range asked for).
    fn read(&self, range: Range<u64>) -> Result<Cow<'_, [u8]>, Failure> {
        match self {
            ArchiveObject::Local(bytes) => Ok(Cow::Borrowed(
                &bytes[range.start as usize..range.end as usize],
            )),
            ArchiveObject::Remote { .. } if range.is_empty() => Ok(Cow::Borrowed(&[])),
            ArchiveObject::Remote {
                store, key, url, ..
            } => block_on(store.get_range(key, range))
                .map(|bytes| Cow::Owned(bytes.to_vec()))
                .map_err(|e| Failure::Usage(format!("cannot read {url}: {e}"))),
        }
    }
}

fn print_footer(path: &str, f: &Footer) {
    println!(
        "{path}: archive, format v{}, topic {} (id {}), partition {}",
        ARCHIVE_VERSION,
        f.topic,
        ringlog_engine::meta::format_topic_id(&f.topic_id),
        f.partition
    );
    println!(
        "offsets {}..{} ({} records in {} batches), timestamps min {} max {} ms",
        f.first_offset,
        f.last_offset + 1,
        f.record_count,
        f.batch_count,
        f.min_timestamp_ms,
        f.max_timestamp_ms
    );
    println!(
        "key {}",
        archive_key(&f.topic_id, f.partition, f.first_offset, f.last_offset)
    );
    for m in &f.members {
        println!(
            "{:>12}  member {}: {} bytes, crc32c {:#010x}",
            m.position, m.kind, m.len_bytes, m.crc32c
        );
    }
    let t = &f.trailer;
    println!(
        "{:>12}  footer: {} bytes, crc32c {:#010x}",
        t.footer_position, t.footer_len_bytes, t.footer_crc32c
    );
    println!(
        "{:>12}  trailer: {TRAILER_BYTES} bytes",
        t.footer_range().end
    );
}
