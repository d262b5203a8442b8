//! Tiered storage on each shard: sealed segments become archives in the
//! object store, archives past retention go, and reads below the local
//! log start are served from archives.
//!
//! Layer: runtime (see the crate docs). May import `shard`, `partitions`,
//! `meta_view`, `calls` and the foundation modules.
//!
//! ## Archiving, and why in this order
//!
//! Every maintenance tick the owning shard looks at each partition with
//! `remote.storage.enable`: the first sealed segment past the recorded
//! archives is read, encoded and put by the shard's store thread (its
//! blocking pool, never the reactor; into a local directory streamed with
//! direct I/O, see `ringlog_engine::archive::write_archive_file`), and
//! only once the store has
//! acknowledged it is the `ArchiveSealed` event appended to the metadata
//! log. Only then may retention delete the local segment
//! (`Log::set_archived_end`), so a crash anywhere leaves the records in
//! the local segment, the archive, or both:
//!
//! * crash after the put (`archive-uploaded`): the object has no event,
//!   so it is never served; the segment is still local and the next start
//!   uploads it again under the same key (the key is made from the topic
//!   id, the partition and the offsets) and records it;
//! * crash after the event (`archive-recorded`): the archive serves; the
//!   local segment is deleted by the next retention pass.
//!
//! An object without its event is removed by the controller's sweep once
//! it can never be recorded (its topic is gone, or its offsets lie below
//! the partition's archive start; see `controller::archives`).
//!
//! ## Reading
//!
//! A read below the local log start goes to the archive holding the
//! offset, named by the metadata (never by listing the store). The footer
//! and indexes of an archive are read once (the footer's position is in
//! the metadata, so no tail probe) and kept per shard; each fetch then
//! reads exactly the spans it returns, verified against their crc32c, so a
//! flipped byte fails the fetches of that span only, with
//! KAFKA_STORAGE_ERROR naming the object. From a remote store every read
//! goes through the shard's chunk cache and read rate
//! ([`crate::tiered`]); all of it runs on the store thread, never on the
//! reactor.

use crate::calls::call_controller;
use crate::crash;
use crate::message::{ControllerRequest, FoundOffset};
use crate::partitions::Partition;
use crate::runtime::ShardClient;
use crate::shard::Shard;
use crate::tiered::StoreHandle;
use bytes::Bytes;
use ringlog_engine::archive::{
    archive_key, ArchiveIndex, ArchiveMeta, Footer, MemberKind, NewMember, TailRead,
};
use ringlog_engine::batch::BatchView;
use ringlog_engine::log::SegmentInfo;
use ringlog_engine::meta::{ArchiveRecord, ArchiveSealed, ArchivesTrimmed, MetaEvent};
use ringlog_engine::records::find_record;
use ringlog_engine::{Error, LogConfig};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// Uploads one shard runs at once. Each holds a few MiB: into a local
/// directory a read window and a write buffer, to S3 a read window and up
/// to three 8 MiB parts.
pub const UPLOADS_IN_FLIGHT_MAX: usize = 2;
/// Opened archives (footer and indexes) a shard keeps; past it, the
/// oldest opened is dropped.
pub const OPEN_ARCHIVES_MAX: usize = 256;
/// The least time an archive waits for its segment's index, and the
/// slowest indexing it waits for beyond that: past both (an indexer given
/// no CPU) the archive ships without its index. Generous, because the
/// indexers share idle CPU: after a burst of produce on a 2-core host
/// four `SCHED_IDLE` threads (two tails, two segments) split what the
/// shards leave, and a 64 MiB segment at 2 MB/s timed out; waiting only
/// keeps the segment on the local disk a little longer.
pub const SEGMENT_INDEX_WAIT_MIN_MS: u64 = 60_000;
/// See [`SEGMENT_INDEX_WAIT_MIN_MS`].
pub const SEGMENT_INDEX_RATE_MIN_BYTES_PER_S: u64 = 1 << 20;
/// Crash point after an archive's put, before its event.
pub const CRASH_ARCHIVE_UPLOADED: &str = "archive-uploaded";
/// Crash point after an archive's event, before local deletion.
pub const CRASH_ARCHIVE_RECORDED: &str = "archive-recorded";

/// A shard's tiering state.
#[derive(Default)]
pub struct Archiving {
    /// Partitions with an upload in flight (one each).
    uploads: RefCell<BTreeSet<(Rc<str>, u32)>>,
    /// Opened archives by key, with the order they were opened in.
    opened: RefCell<HashMap<String, (u64, Rc<Opened>)>>,
    /// Opens so far (the age of an entry in `opened`).
    opens: std::cell::Cell<u64>,
    /// What each partition's indexer was last given of its archives.
    search_sent: RefCell<HashMap<Rc<str>, BTreeMap<u32, ArchivesSeen>>>,
}

/// Enough of a partition's archive list to tell that it changed: archives
/// are only added at the end and removed from the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchivesSeen {
    count: usize,
    first_offset: u64,
    last_offset: u64,
    log_start_offset: u64,
}

/// An archive's footer and indexes.
struct Opened {
    index: ArchiveIndex,
}

/// What a partition has not archived yet: sealed segments and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lag {
    /// Sealed segments past the recorded archives.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A read of archive `key` that failed below the format (the store, or
/// bytes that do not parse), logged naming the object.
fn store_error(key: &str, e: impl std::fmt::Display) -> Error {
    let e = Error::io(PathBuf::from(key), std::io::Error::other(e.to_string()));
    tracing::error!(object = key, error = %e, "archive read failed");
    e
}

/// The partition's first readable offset: the archives' start when
/// archives hold offsets below the local log start, else the local start.
pub fn log_start(shard: &Shard, topic: &str, partition: u32, p: &Partition) -> u64 {
    let local = p.log.log().log_start_offset();
    if shard.store.is_none() {
        // Archives this start cannot read (`--archive off`) serve nothing.
        return local;
    }
    let archived = shard.meta.with(|s| {
        s.archives(topic, partition).and_then(|a| {
            a.archives
                .values()
                .next()
                .map(|first| first.first_offset.max(a.log_start_offset))
        })
    });
    match archived {
        Some(start) if start < local => start,
        _ => local,
    }
}

/// The archive to read `offset` from, when it lies below the local log
/// start: the one holding it, or the first one after it (offsets between
/// archives were deleted). `None` when no archive lies at or above it.
pub fn archive_for(
    shard: &Shard,
    topic: &str,
    partition: u32,
    offset: u64,
) -> Option<ArchiveRecord> {
    shard.meta.with(|s| {
        let archives = s.archives(topic, partition)?;
        let offset = offset.max(archives.log_start_offset);
        let holding = archives.holding(offset).cloned();
        holding.or_else(|| {
            archives
                .archives
                .range(offset..)
                .next()
                .map(|(_, a)| a.clone())
        })
    })
}

/// Reads batches from `record`'s archive from the span holding `offset`,
/// about `max_bytes` of them (at least one span), verified.
pub async fn read(
    shard: &Shard,
    store: &StoreHandle,
    record: &ArchiveRecord,
    offset: u64,
    max_bytes: usize,
) -> Result<Bytes, Error> {
    let opened = open(shard, store, record).await?;
    let span = opened
        .index
        .span_for_offset(offset.max(record.first_offset))
        .unwrap_or(0);
    read_spans(store, record, &opened, span, max_bytes as u64).await
}

/// The spans from `span` on, about `max_bytes` of them (at least one),
/// read and verified against their crc32c.
async fn read_spans(
    store: &StoreHandle,
    record: &ArchiveRecord,
    opened: &Opened,
    span: usize,
    max_bytes: u64,
) -> Result<Bytes, Error> {
    let range = opened.index.read_range(span, max_bytes);
    let bytes = store
        .read(&record.key, record.bytes, range.bytes.clone())
        .await
        .map_err(|e| store_error(&record.key, e))?;
    opened
        .index
        .verify(&range, &bytes)
        .map_err(|error| archive_error(record, error))?;
    Ok(bytes)
}

fn archive_error(record: &ArchiveRecord, error: ringlog_engine::archive::ArchiveError) -> Error {
    let e = Error::Archive {
        object: record.key.clone(),
        error,
    };
    tracing::error!(object = record.key, error = %e, "archive read failed");
    e
}

/// The first record at or after `timestamp_ms` at or above `min_offset`
/// in the partition's archives, in offset order; `None` if no archive
/// holds one.
pub async fn offset_for_timestamp(
    shard: &Shard,
    store: &StoreHandle,
    topic: &str,
    partition: u32,
    min_offset: u64,
    timestamp_ms: i64,
) -> Result<Option<FoundOffset>, Error> {
    let candidates: Vec<ArchiveRecord> = shard.meta.with(|s| {
        s.archives(topic, partition)
            .map(|a| {
                a.archives
                    .values()
                    .filter(|r| r.last_offset >= min_offset && r.max_timestamp_ms >= timestamp_ms)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    });
    for record in candidates {
        let opened = open(shard, store, &record).await?;
        let Some(span) = opened.index.span_for_timestamp(timestamp_ms) else {
            continue;
        };
        // Bounded: one span per round, to the archive's last span.
        for span in span..opened.index.span_count() {
            let bytes = read_spans(store, &record, &opened, span, 0).await?;
            for batch in ringlog_protocol::batches(&bytes) {
                let batch = batch.map_err(|e| store_error(&record.key, e))?;
                let view = BatchView::parse(&batch).map_err(|e| store_error(&record.key, e))?;
                let base = view.base_offset().max(0) as u64;
                let found = find_record(&view, base, min_offset, timestamp_ms)
                    .map_err(|e| store_error(&record.key, e))?;
                if let Some(found) = found {
                    return Ok(Some(FoundOffset {
                        offset: found.offset,
                        timestamp: found.timestamp_ms,
                    }));
                }
            }
        }
    }
    Ok(None)
}

/// The archive's indexes, read once per shard: the footer (its position
/// is in the metadata: one ranged read to the object's end), then the two
/// indexes it names.
async fn open(
    shard: &Shard,
    store: &StoreHandle,
    record: &ArchiveRecord,
) -> Result<Rc<Opened>, Error> {
    let archiving = &shard.archiving;
    if let Some((_, opened)) = archiving.opened.borrow().get(&record.key) {
        return Ok(opened.clone());
    }
    let tail = store
        .read(
            &record.key,
            record.bytes,
            record.footer_offset..record.bytes,
        )
        .await
        .map_err(|e| store_error(&record.key, e))?;
    let footer = match Footer::from_tail(&tail, record.bytes) {
        Ok(TailRead::Complete(footer)) => footer,
        Ok(TailRead::NeedFooter(trailer)) => {
            // The metadata's footer position disagrees with the trailer.
            return Err(store_error(
                &record.key,
                format!(
                    "the trailer puts the footer at byte {}, the metadata at byte {}",
                    trailer.footer_position, record.footer_offset
                ),
            ));
        }
        Err(error) => return Err(archive_error(record, error)),
    };
    let index_range = footer.index_range();
    let bytes = store
        .read(&record.key, record.bytes, index_range.clone())
        .await
        .map_err(|e| store_error(&record.key, e))?;
    let index = ArchiveIndex::decode(&footer, &bytes, index_range.start)
        .map_err(|error| archive_error(record, error))?;
    let opened = Rc::new(Opened { index });
    let mut cache = archiving.opened.borrow_mut();
    if cache.len() >= OPEN_ARCHIVES_MAX {
        let oldest = cache
            .iter()
            .min_by_key(|(_, (age, _))| *age)
            .map(|(key, _)| key.clone());
        if let Some(oldest) = oldest {
            cache.remove(&oldest);
        }
    }
    let age = archiving.opens.get() + 1;
    archiving.opens.set(age);
    cache.insert(record.key.clone(), (age, opened.clone()));
    Ok(opened)
}

/// Where `partition`'s archives end (0: none archived): every offset
/// below it is in an archive or was removed from them.
pub fn archived_end(shard: &Shard, topic: &str, partition: u32) -> u64 {
    shard.meta.with(|s| {
        s.archives(topic, partition)
            .map_or(0, |a| a.end_offset().max(a.log_start_offset))
    })
}

/// The partition's archives for its indexer, when they changed since they
/// were last [`search_archives_sent`] (or the partition arrived). None
/// without a store: archives this start cannot read serve nothing, search
/// included (the partition's start is then the local log's).
pub fn search_archives_changed(
    shard: &Shard,
    topic: &Rc<str>,
    partition: u32,
) -> Option<(ArchivesSeen, Vec<ArchiveRecord>)> {
    shard.store.as_ref()?;
    let seen = shard.meta.with(|s| {
        s.archives(topic, partition)
            .map_or_else(ArchivesSeen::default, |a| ArchivesSeen {
                count: a.archives.len(),
                first_offset: a.archives.values().next().map_or(0, |r| r.first_offset),
                last_offset: a.archives.values().next_back().map_or(0, |r| r.last_offset),
                log_start_offset: a.log_start_offset,
            })
    });
    let sent = shard.archiving.search_sent.borrow();
    let before = sent.get(&**topic).and_then(|p| p.get(&partition)).copied();
    if before == Some(seen) {
        return None;
    }
    let archives = shard.meta.with(|s| {
        s.archives(topic, partition)
            .map(|a| a.archives.values().cloned().collect())
            .unwrap_or_default()
    });
    Some((seen, archives))
}

/// Records that the partition's indexer took its archives as `seen`.
pub fn search_archives_sent(shard: &Shard, topic: &Rc<str>, partition: u32, seen: ArchivesSeen) {
    let mut sent = shard.archiving.search_sent.borrow_mut();
    sent.entry(topic.clone())
        .or_default()
        .insert(partition, seen);
}

/// Forgets what the partition's indexer was given (the partition left the
/// shard, and its indexer dropped it).
pub fn search_archives_dropped(shard: &Shard, topic: &str, partition: u32) {
    let mut sent = shard.archiving.search_sent.borrow_mut();
    if let Some(partitions) = sent.get_mut(topic) {
        partitions.remove(&partition);
        if partitions.is_empty() {
            sent.remove(topic);
        }
    }
}

/// One maintenance round for a partition with remote storage: tells the
/// log how far its archives go (so retention may delete what they hold),
/// applies overall retention to the archives, and starts the upload of
/// the next sealed segment. Returns what is not archived yet.
pub async fn tend(
    client: &Rc<ShardClient>,
    topic: &Rc<str>,
    partition: u32,
    p: &Rc<Partition>,
) -> Lag {
    let shard = client.local();
    let Some(store) = shard.store.clone() else {
        return Lag::default();
    };
    let config = p.log.log().config();
    if !config.remote_storage {
        return Lag::default();
    }
    let archived_end = archived_end(shard, topic, partition);
    p.log.log().set_archived_end(archived_end);
    trim(client, &store, topic, partition, p, &config).await;
    let waiting = unarchived(p, archived_end);
    let lag = Lag {
        segments: waiting.len() as u64,
        bytes: waiting.iter().map(|s| s.size_bytes).sum(),
    };
    let key = (topic.clone(), partition);
    let start = waiting.into_iter().next().filter(|_| {
        let mut uploads = shard.archiving.uploads.borrow_mut();
        uploads.len() < UPLOADS_IN_FLIGHT_MAX && uploads.insert(key.clone())
    });
    if let Some(next) = start {
        // The borrow above has ended: the task may run at once and
        // borrow the set again when it ends.
        let client = client.clone();
        glommio::spawn_local(async move {
            upload_all(&client, &store, &key.0, key.1, next).await;
            client.local().archiving.uploads.borrow_mut().remove(&key);
        })
        .detach();
    }
    lag
}

/// The sealed segments of `p` past `archived_end`, oldest first.
pub fn unarchived(p: &Partition, archived_end: u64) -> Vec<SegmentInfo> {
    p.log
        .log()
        .segments()
        .into_iter()
        .filter(|s| s.sealed && s.end_offset > archived_end)
        .collect()
}

/// Archives `first`, then each next sealed segment of the partition as
/// soon as the one before it is recorded, instead of one per maintenance
/// round (which capped a shard at two segments per 250 ms). Looks the
/// partition up afresh each round and holds it across no `.await`, so a
/// move is never held up by an upload; a partition that moved away, or
/// turned remote storage off, ends the loop. Bounded: every round archives
/// a segment ending past the last one recorded, or ends.
async fn upload_all(
    client: &Rc<ShardClient>,
    store: &StoreHandle,
    topic: &Rc<str>,
    partition: u32,
    first: SegmentInfo,
) {
    let shard = client.local();
    let mut next = Some(first);
    while let Some(segment) = next.take() {
        if let Err(e) = upload(client, store, topic, partition, segment).await {
            shard.config.metrics.archive_upload_failed(shard.id);
            tracing::warn!(%topic, partition, error = %e, store = store.store(), "archiving a segment failed; retried at the next maintenance round, the segment stays local meanwhile");
            return;
        }
        let Some(p) = shard.partitions.open(topic, partition) else {
            return;
        };
        if !p.log.log().config().remote_storage {
            return;
        }
        let archived_end = archived_end(shard, topic, partition);
        p.log.log().set_archived_end(archived_end);
        next = unarchived(&p, archived_end).into_iter().next();
    }
}

/// Archives one sealed segment: built and put by the store thread (never
/// on the reactor), then recorded.
async fn upload(
    client: &Rc<ShardClient>,
    store: &StoreHandle,
    topic: &str,
    partition: u32,
    segment: SegmentInfo,
) -> Result<(), String> {
    let shard = client.local();
    let Some(topic_id) = shard.meta.with(|s| s.topic(topic).map(|t| t.topic_id)) else {
        return Ok(()); // deleted meanwhile
    };
    let key = archive_key(
        &topic_id,
        partition,
        segment.base_offset,
        segment.end_offset - 1,
    );
    let meta = ArchiveMeta {
        topic_id,
        topic: topic.to_string(),
        partition,
    };
    let members = search_index(shard, topic, partition, &segment).await;
    let archived = store
        .put_segment(&key, meta, segment.path.clone(), members)
        .await
        .map_err(|e| e.to_string())?;
    let (footer, len) = (archived.footer, archived.len_bytes);
    crash::point(CRASH_ARCHIVE_UPLOADED);
    let event = MetaEvent::ArchiveSealed(ArchiveSealed {
        topic: topic.to_string(),
        partition,
        key: key.clone(),
        first_offset: footer.first_offset,
        last_offset: footer.last_offset,
        min_timestamp_ms: footer.min_timestamp_ms,
        max_timestamp_ms: footer.max_timestamp_ms,
        bytes: len,
        footer_offset: footer.trailer.footer_position,
        footer_bytes: footer.trailer.footer_len_bytes,
    });
    if let Err(e) = append(client, event).await {
        if shard.meta.with(|s| s.topic_by_id(&topic_id).is_none()) {
            // The topic was deleted while its segment went up: the object
            // can never be recorded, and the deletion removed only the
            // recorded ones, so it goes now rather than at the next
            // start's sweep.
            if let Err(e) = store.delete(&key).await {
                tracing::warn!(%topic, partition, key, error = %e, "removing the archive of a deleted topic failed; the next start's sweep removes it");
            }
            return Ok(());
        }
        return Err(e);
    }
    crash::point(CRASH_ARCHIVE_RECORDED);
    shard.config.metrics.archived(shard.id, len);
    tracing::debug!(%topic, partition, key, bytes = len, "segment archived");
    Ok(())
}

/// The segment's search index as an archive member, when its topic is
/// searchable and the shard's segment indexer builds it in time; none
/// otherwise (the archive is whole without it, and search reports its
/// offsets unindexed), with the reason logged.
async fn search_index(
    shard: &Shard,
    topic: &str,
    partition: u32,
    segment: &SegmentInfo,
) -> Vec<NewMember> {
    let Some(hub) = shard.config.search.as_ref() else {
        return Vec::new();
    };
    let searchable = shard
        .partitions
        .open(topic, partition)
        .is_some_and(|p| p.log.log().config().search);
    if !searchable {
        return Vec::new();
    }
    let records_bytes = segment.size_bytes;
    let mut indexing = match hub.index_segment(shard.id, partition, segment.path.clone()) {
        Ok(indexing) => indexing,
        Err(reason) => {
            tracing::warn!(%topic, partition, base_offset = segment.base_offset, reason, "search: the segment is archived without its index");
            return Vec::new();
        }
    };
    let wait_ms =
        SEGMENT_INDEX_WAIT_MIN_MS.max(records_bytes * 1000 / SEGMENT_INDEX_RATE_MIN_BYTES_PER_S);
    let answer = &mut indexing.answer;
    let answered = futures_lite::future::or(async { Some(answer.await) }, async {
        glommio::timer::sleep(Duration::from_millis(wait_ms)).await;
        None
    })
    .await;
    let reason = match answered {
        Some(Ok(Ok(built))) => match built.into_member(MemberKind::SEARCH_INDEX) {
            Ok(member) => return vec![member],
            Err(e) => format!("the index's scratch file does not read: {e}"),
        },
        Some(Ok(Err(e))) => e.to_string(),
        Some(Err(_)) => "the segment indexer stopped".to_string(),
        None => format!("the segment indexer did not finish in {wait_ms} ms"),
    };
    tracing::warn!(%topic, partition, base_offset = segment.base_offset, reason, "search: the segment is archived without its index");
    Vec::new()
}

/// Appends `event` through the controller; this shard's replica has it
/// when this returns.
async fn append(client: &ShardClient, event: MetaEvent) -> Result<(), String> {
    let request = ControllerRequest::Append {
        event: Box::new(event),
    };
    let reply = call_controller(client, request).await?;
    match reply.failed {
        Some(failed) => Err(failed.message),
        None => Ok(()),
    }
}

/// Overall retention (`retention.ms`, `retention.bytes`) over archives
/// and the local log together: archives wholly past it go, oldest first,
/// the event first and then the objects (an object left by a crash in
/// between lies below the archive start, and the controller's sweep
/// removes it).
async fn trim(
    client: &ShardClient,
    store: &StoreHandle,
    topic: &str,
    partition: u32,
    p: &Partition,
    config: &LogConfig,
) {
    let shard = client.local();
    let Some(archives) = shard.meta.with(|s| s.archives(topic, partition).cloned()) else {
        return;
    };
    if config.retention_ms.is_none() && config.retention_bytes.is_none() {
        return;
    }
    let archived_end = archives.end_offset();
    let local_bytes: u64 = p
        .log
        .log()
        .segments()
        .iter()
        .filter(|s| s.end_offset > archived_end)
        .map(|s| s.size_bytes)
        .sum();
    let mut total = archives.archives.values().map(|a| a.bytes).sum::<u64>() + local_bytes;
    let now_ms = ringlog_engine::Clock::System.now_ms();
    let mut doomed = Vec::new();
    for archive in archives.archives.values() {
        let expired = config
            .retention_ms
            .is_some_and(|ms| archive.max_timestamp_ms < now_ms.saturating_sub(ms));
        let over = config
            .retention_bytes
            .is_some_and(|limit| total - archive.bytes >= limit);
        if !(expired || over) {
            break;
        }
        total -= archive.bytes;
        doomed.push(archive.clone());
    }
    let Some(last) = doomed.last() else {
        return;
    };
    let event = MetaEvent::ArchivesTrimmed(ArchivesTrimmed {
        topic: topic.to_string(),
        partition,
        log_start_offset: last.last_offset + 1,
    });
    if let Err(e) = append(client, event).await {
        tracing::warn!(%topic, partition, error = %e, "trimming archives past retention failed");
        return;
    }
    for archive in doomed {
        if let Err(e) = store.delete(&archive.key).await {
            tracing::warn!(%topic, partition, key = archive.key, error = %e, "deleting an archive past retention failed; the controller's sweep removes it");
        }
    }
}

/// Kafka DeleteRecords below the local log start: moves the archive
/// start (the event), then deletes the archives wholly below it.
pub async fn delete_records_below(
    client: &ShardClient,
    topic: &str,
    partition: u32,
    offset: u64,
) -> Result<(), Error> {
    let shard = client.local();
    let (start, doomed) = match shard.meta.with(|s| s.archives(topic, partition).cloned()) {
        Some(archives) if offset > archives.log_start_offset && !archives.archives.is_empty() => (
            archives.log_start_offset,
            archives
                .archives
                .values()
                .filter(|a| a.last_offset < offset)
                .cloned()
                .collect::<Vec<_>>(),
        ),
        _ => return Ok(()),
    };
    let event = MetaEvent::ArchivesTrimmed(ArchivesTrimmed {
        topic: topic.to_string(),
        partition,
        log_start_offset: offset.max(start),
    });
    append(client, event).await.map_err(Error::Rejected)?;
    if let Some(store) = &shard.store {
        for archive in doomed {
            if let Err(e) = store.delete(&archive.key).await {
                tracing::warn!(%topic, partition, key = archive.key, error = %e, "deleting an archive below the new log start failed; the controller's sweep removes it");
            }
        }
    }
    Ok(())
}
