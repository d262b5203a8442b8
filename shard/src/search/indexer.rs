//! Each shard's indexer thread, and the hub through which the shards feed
//! them and the `--http` thread searches them.
//!
//! Why a thread per shard and not a task: indexing costs CPU in
//! proportion to the record bytes and tantivy blocks (commits, merges),
//! so it may never run on a reactor. Why one per shard and not one pool:
//! a shard's partitions stay with one indexer, which owns their
//! [`TailIndex`]es outright — no lock on an index, and one thread's
//! indexing never waits for another shard's.
//!
//! **Produce is never slowed.** A shard hands each appended batch over
//! with [`SearchHub::feed`], which only tries: when the indexer's queue
//! holds [`INDEX_QUEUE_JOBS_MAX`] jobs, or more than the broker's
//! `--index-lag-bytes-max` of batches, the batch is not indexed and its
//! offsets are recorded as unindexed, which every search of the topic
//! then reports. No glommio waker ever reaches the indexer (the feed is a
//! `try_send` on a std channel), so [`crate::wake`]'s rule holds.
//!
//! **Indexing gets only idle CPU.** The thread (and tantivy's threads
//! it starts) runs under `SCHED_IDLE`: a shard that wants its core gets
//! it, and an indexer that cannot keep up falls behind until batches are
//! refused (above) rather than slowing produce down.
//!
//! **A busy partition does not hold up a quiet one.** Queued batches
//! are indexed a partition at a time in turn ([`super::turns`]), not in
//! arrival order.
//!
//! **Searchable within a second.** The thread commits every tail with
//! new records at most [`TAIL_COMMIT_INTERVAL_MS`] after the last commit,
//! checking at least every [`COMMIT_CHECK_INTERVAL_MS`], idle or not.
//!
//! **What a tail holds.** A partition's records from the first one
//! indexed since the broker started: records an archive holds (and,
//! without archiving, records retention removed) are forgotten at each
//! maintenance pass of the owning shard ([`SearchHub::tend`]). Below the
//! tail, archives are searched through their index members (the list
//! comes with [`SearchHub::archives`]) and local sealed segments through
//! indexes the segment indexer builds from their files; whatever none of
//! these covers is reported unindexed by every search, so "no hits" is
//! never mistaken for "no such record". A partition deleted or moved away
//! is dropped ([`SearchHub::drop_partition`]).
//!
//! **Segments on their own thread.** A sealed segment's index (for its
//! archive, [`SearchHub::index_segment`], or for a local segment below
//! the tail) takes seconds, so a second thread per shard,
//! `seg-indexer-<shard>`, builds them, archives first; the tails'
//! commits and searches never wait for one.
//!
//! **Searches on a third.** A search goes straight to `searcher-<shard>`
//! ([`super::searcher`]), which plans it from what this thread publishes
//! at each tail commit and whenever a partition's indexes change (its
//! tail's and local segments' searchers, its archives and start) and
//! reads archives' indexes from the store: a slow store never delays a
//! tail's commit, and a search never waits for this `SCHED_IDLE` thread
//! to get a core.

use super::archives::{archive_offsets, ArchiveRef};
use super::searcher::{
    serve_searches, PartitionView, SearchJob, SearcherShared, SEARCHER_QUEUE_JOBS_MAX,
};
use super::turns::Turns;
use super::{
    index_segment_file, BuiltIndex, Hit, Order, SearchError, SearchRequest, SegmentIndex,
    TailIndex, TAIL_COMMIT_INTERVAL_MS,
};
use crate::tiered::StoreHandle;
use crate::wake;
use bytes::Bytes;
use crossbeam_channel::{bounded, select_biased, Receiver, Sender, TryRecvError, TrySendError};
use futures_channel::oneshot;
use ringlog_engine::batch::{finish_header, set_base_offset, BatchView, ATTRIBUTE_LOG_APPEND_TIME};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Batches one indexer holds queued (in its channel and its [`Turns`]
/// together); a batch arriving when it holds this many is not indexed. A
/// queued batch shares its request frame's memory, so this (with
/// `--index-lag-bytes-max`) bounds what the queue keeps alive.
pub const INDEX_QUEUE_JOBS_MAX: usize = 1024;
/// Searches, maintenance passes and drops one indexer's queue holds.
pub const CONTROL_QUEUE_JOBS_MAX: usize = 1024;
/// Unindexed ranges remembered per partition; past it the two closest
/// are merged (the report then covers some indexed offsets too).
pub const UNINDEXED_RANGES_MAX: usize = 64;
/// Longest the indexer sleeps between looks at its tails' commits.
pub const COMMIT_CHECK_INTERVAL_MS: u64 = 100;
const _: () = assert!(COMMIT_CHECK_INTERVAL_MS as i64 + TAIL_COMMIT_INTERVAL_MS < 1000);
/// Record batch bytes a partition's tail indexes at most; past it the
/// oldest are forgotten (and reported unindexed), a
/// [`TAIL_CHECKPOINT_BYTES`] step at a time. It bounds the tail's memory:
/// tantivy holds about the records' size again in postings and stored
/// fields, plus the writer's arena.
pub const TAIL_BATCH_BYTES_MAX: u64 = 256 << 20;
/// The step in which a full tail forgets its oldest batches.
pub const TAIL_CHECKPOINT_BYTES: u64 = 16 << 20;
const _: () = assert!(TAIL_BATCH_BYTES_MAX >= 2 * TAIL_CHECKPOINT_BYTES);
/// Longest a search waits for one shard's indexer (behind the batches
/// queued before it).
pub const SEARCH_TIMEOUT_MS: u64 = 10_000;

/// Segments waiting for one shard's segment indexer: as many as the
/// shard archives at once, and one more.
pub const SEGMENT_QUEUE_JOBS_MAX: usize = 3;
/// Crash point after a segment's index is built, before the archive
/// holding it is written.
pub const CRASH_SEGMENT_INDEXED: &str = "segment-indexed";

/// A partition of a topic.
pub(super) type PartitionKey = (String, u32);

/// One appended batch, as the shard hands it over.
pub struct AppendedBatch {
    /// Its topic (shared: one name per partition, not one per batch).
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: u32,
    /// The offset the log gave its first record.
    pub base_offset: u64,
    /// The broker's append time, for a LogAppendTime topic.
    pub log_append_time_ms: Option<i64>,
    /// The batch as the client sent it (its base offset is the client's).
    pub batch: Bytes,
}

/// Everything but batches: served before any queued batch, so a search
/// or a maintenance pass never waits behind an indexing backlog.
enum Job {
    Tend(PartitionKey, Tend),
    /// The partition's archives, replacing what was sent before.
    Archives(PartitionKey, Vec<ArchiveRef>),
    Drop(PartitionKey),
}

/// What one shard's indexer found.
#[derive(Debug, Default)]
pub struct Found {
    /// Its best hits, in the request's order.
    pub hits: Vec<Hit>,
    /// Offsets of the topic's partitions that are not searchable, by
    /// partition.
    pub unindexed: BTreeMap<u32, Vec<Range<u64>>>,
    /// Archives whose index was searched (the others were pruned by
    /// their timestamps, or have no index).
    pub archives_searched: u64,
}

/// One sealed segment to index for its archive.
struct SegmentJob {
    partition: u32,
    path: PathBuf,
    cancelled: Arc<AtomicBool>,
    reply: oneshot::Sender<Result<BuiltIndex, SearchError>>,
}

/// One local sealed segment to index for searches, and where the index
/// goes (back to the indexer thread).
struct LocalJob {
    key: PartitionKey,
    segment: LocalSegment,
    reply: Sender<LocalBuilt>,
}

/// A local segment's index, built and opened.
struct LocalBuilt {
    key: PartitionKey,
    segment: LocalSegment,
    built: Result<SegmentIndex, SearchError>,
}

/// A partition's local sealed segments as its indexer knows them.
#[derive(Default)]
struct Local {
    /// The last pass's list.
    segments: Vec<LocalSegment>,
    /// Indexed, by base offset: the segment and its index.
    indexes: BTreeMap<u64, (LocalSegment, SegmentIndex)>,
    /// Segments whose index failed (not tried again while listed).
    failed: Vec<u64>,
}

/// A segment's index being built for its archive: await
/// [`Self::answer`]; dropping this stops the work.
pub struct SegmentIndexing {
    /// The index, or why there is none.
    pub answer: wake::Answer<Result<BuiltIndex, SearchError>>,
    cancelled: Arc<AtomicBool>,
}

impl Drop for SegmentIndexing {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// One maintenance pass's view of a partition, for its indexer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tend {
    /// Its first readable offset (in an archive or on the local disk).
    pub start: u64,
    /// Its tail may forget the records below this: an archive holds
    /// them, or retention removed them.
    pub below: u64,
    /// Its high watermark.
    pub end: u64,
    /// Its sealed segments on the local disk not archived yet, oldest
    /// first: what lies below the tail is indexed from these (after a
    /// restart, or with `--archive off`).
    pub local: Vec<LocalSegment>,
}

/// A sealed segment file on the local disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSegment {
    /// Its first offset.
    pub base_offset: u64,
    /// The offset after it.
    pub end_offset: u64,
    /// The file.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: u64,
}

/// Segment file bytes of local sealed segments one indexer keeps indexed
/// (newest first; the rest is reported unindexed). Their indexes live in
/// unlinked scratch files in the data directory, about the records' size
/// again, so this bounds the disk they take; in RAM each holds its head
/// and at most a block cache.
pub const LOCAL_INDEX_BYTES_MAX: u64 = 4 << 30;
/// Local segment indexes one indexer keeps open, whatever their size:
/// bounds their heads, block caches and scratch file descriptors.
pub const LOCAL_INDEXES_MAX: usize = 256;

/// Offset ranges not indexed, per partition, written by feeders (a full
/// queue) and the indexer (undecodable batches, and everything below the
/// tail at the last maintenance pass).
#[derive(Default)]
pub(super) struct Unindexed(Mutex<BTreeMap<PartitionKey, Vec<Range<u64>>>>);

impl Unindexed {
    pub(super) fn lock(&self) -> MutexGuard<'_, BTreeMap<PartitionKey, Vec<Range<u64>>>> {
        // Only plain inserts happen under the lock: a poisoned map is whole.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, partition: PartitionKey, range: Range<u64>) {
        let mut map = self.lock();
        let ranges = map.entry(partition).or_default();
        ranges.push(range);
        merge_ranges(ranges);
    }
}

/// Sorts and merges touching ranges, then merges the closest neighbours
/// until at most [`UNINDEXED_RANGES_MAX`] remain.
pub(super) fn merge_ranges(ranges: &mut Vec<Range<u64>>) {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for range in ranges.drain(..) {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    // Bounded: each round removes one range.
    while merged.len() > UNINDEXED_RANGES_MAX {
        let closest = (1..merged.len())
            .min_by_key(|&i| merged[i].start - merged[i - 1].end)
            .unwrap_or(1);
        let next = merged.remove(closest);
        merged[closest - 1].end = next.end;
    }
    *ranges = merged;
}

/// One shard's indexer, as the others see it.
struct Indexer {
    batches: Sender<AppendedBatch>,
    jobs: Sender<Job>,
    segments: Sender<SegmentJob>,
    searches: Sender<SearchJob>,
    /// The shard's archive store, once the shard has started it.
    store: Arc<OnceLock<StoreHandle>>,
    backlog: Arc<Backlog>,
    unindexed: Arc<Unindexed>,
}

/// Batches fed to one indexer and not yet indexed (or dropped), counted
/// by the feeders as they queue one and by the indexer as it takes one.
#[derive(Default)]
struct Backlog {
    bytes: AtomicU64,
    batches: AtomicUsize,
}

impl Backlog {
    fn take(&self, batch: &AppendedBatch) {
        self.bytes
            .fetch_sub(batch.batch.len() as u64, Ordering::Relaxed);
        self.batches.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every shard's indexer: fed by the shards, searched by the `--http`
/// thread.
pub struct SearchHub {
    indexers: Vec<Indexer>,
    lag_bytes_max: u64,
}

impl SearchHub {
    /// Starts one indexer thread per shard (`indexer-<shard>`), each
    /// taking at most `lag_bytes_max` of queued batches, and building
    /// archives' indexes in unlinked scratch files in `scratch_dir` (the
    /// data directory: a real disk, which holds the segments too).
    ///
    /// # Errors
    ///
    /// A thread could not be started.
    pub fn start(
        shards: usize,
        lag_bytes_max: u64,
        scratch_dir: PathBuf,
    ) -> std::io::Result<Arc<SearchHub>> {
        let mut indexers = Vec::with_capacity(shards);
        for shard in 0..shards {
            let (batches, batch_queue) = bounded(INDEX_QUEUE_JOBS_MAX);
            let (jobs, job_queue) = bounded(CONTROL_QUEUE_JOBS_MAX);
            let (segments, segment_queue) = bounded(SEGMENT_QUEUE_JOBS_MAX);
            // One local segment at a time, behind any archive's.
            let (local_jobs, local_queue) = bounded(1);
            let (local_replies, local_built) = bounded(1);
            let backlog = Arc::new(Backlog::default());
            let unindexed = Arc::new(Unindexed::default());
            let store = Arc::new(OnceLock::new());
            let (searches, search_queue) = bounded(SEARCHER_QUEUE_JOBS_MAX);
            let searcher = Arc::new(SearcherShared {
                store: store.clone(),
                views: Mutex::new(BTreeMap::new()),
                unindexed: unindexed.clone(),
            });
            let mut thread = IndexerThread {
                shard,
                started: Instant::now(),
                tails: BTreeMap::new(),
                archives: BTreeMap::new(),
                starts: BTreeMap::new(),
                searcher: searcher.clone(),
                local: BTreeMap::new(),
                local_pending: None,
                local_jobs,
                local_replies,
                backlog: backlog.clone(),
                unindexed: unindexed.clone(),
                turns: Turns::default(),
            };
            std::thread::Builder::new()
                .name(format!("indexer-{shard}"))
                .spawn(move || thread.run(&job_queue, &batch_queue, &local_built))?;
            std::thread::Builder::new()
                .name(format!("searcher-{shard}"))
                .spawn(move || serve_searches(shard, &search_queue, &searcher))?;
            let scratch_dir = scratch_dir.clone();
            std::thread::Builder::new()
                .name(format!("seg-indexer-{shard}"))
                .spawn(move || index_segments(shard, &scratch_dir, &segment_queue, &local_queue))?;
            indexers.push(Indexer {
                batches,
                jobs,
                segments,
                searches,
                store,
                backlog,
                unindexed,
            });
        }
        Ok(Arc::new(SearchHub {
            indexers,
            lag_bytes_max,
        }))
    }

    /// Hands `appended` to `shard`'s indexer, never waiting: when the
    /// indexer is too far behind, the batch's offsets are recorded as
    /// unindexed instead.
    pub fn feed(&self, shard: usize, appended: AppendedBatch, last_offset: u64) {
        let Some(indexer) = self.indexers.get(shard) else {
            return;
        };
        let bytes = appended.batch.len() as u64;
        let queued = indexer.backlog.bytes.fetch_add(bytes, Ordering::Relaxed);
        let queued_batches = indexer.backlog.batches.fetch_add(1, Ordering::Relaxed);
        let range = appended.base_offset..last_offset + 1;
        let refused =
            if queued + bytes > self.lag_bytes_max || queued_batches >= INDEX_QUEUE_JOBS_MAX {
                appended
            } else {
                match indexer.batches.try_send(appended) {
                    Ok(()) => return,
                    Err(TrySendError::Full(back) | TrySendError::Disconnected(back)) => back,
                }
            };
        indexer.backlog.take(&refused);
        indexer
            .unindexed
            .add((refused.topic.to_string(), refused.partition), range);
    }

    /// Gives `shard`'s indexer the shard's archive store, to read the
    /// indexes of archives from; once (later calls change nothing).
    pub fn set_store(&self, shard: usize, store: StoreHandle) {
        if let Some(indexer) = self.indexers.get(shard) {
            let _ = indexer.store.set(store);
        }
    }

    /// Starts building the index of `partition`'s sealed segment file
    /// `path` on `shard`'s segment indexer, for its archive (any size:
    /// the index is spilled to a scratch file a chunk at a time). Refused,
    /// with the reason, when the indexer is more than
    /// `--index-lag-bytes-max` behind: the archive then ships without an
    /// index rather than waiting.
    pub fn index_segment(
        &self,
        shard: usize,
        partition: u32,
        path: PathBuf,
    ) -> Result<SegmentIndexing, &'static str> {
        let indexer = self.indexers.get(shard).ok_or("no indexer for the shard")?;
        if indexer.backlog.bytes.load(Ordering::Relaxed) > self.lag_bytes_max {
            return Err("the indexer is further behind than --index-lag-bytes-max");
        }
        let (reply, answer) = wake::channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let job = SegmentJob {
            partition,
            path,
            cancelled: cancelled.clone(),
            reply,
        };
        indexer
            .segments
            .try_send(job)
            .map_err(|_| "the segment indexer has a full queue")?;
        Ok(SegmentIndexing { answer, cancelled })
    }

    /// Tells `shard`'s indexer where `partition` starts and ends and
    /// which of its records need no tail any more.
    pub fn tend(&self, shard: usize, topic: &str, partition: u32, tend: Tend) {
        self.send_control(shard, Job::Tend((topic.to_string(), partition), tend));
    }

    /// Gives `shard`'s indexer the archives of `partition` (all of them,
    /// replacing what it had). Returns whether the indexer took them (a
    /// full queue does not; the caller sends them again).
    pub fn archives(
        &self,
        shard: usize,
        topic: &str,
        partition: u32,
        archives: Vec<ArchiveRef>,
    ) -> bool {
        self.send_control(
            shard,
            Job::Archives((topic.to_string(), partition), archives),
        )
    }

    /// Tells `shard`'s indexer that `partition` left the shard (deleted
    /// or moved away).
    pub fn drop_partition(&self, shard: usize, topic: &str, partition: u32) {
        self.send_control(shard, Job::Drop((topic.to_string(), partition)));
    }

    /// A control job is small; when the queue is full it is dropped and
    /// the next maintenance pass sends a tend again (a dropped drop leaves
    /// a tail that its partition's next owner never feeds, forgotten as
    /// the partition is archived).
    fn send_control(&self, shard: usize, job: Job) -> bool {
        let Some(indexer) = self.indexers.get(shard) else {
            return false;
        };
        let sent = indexer.jobs.try_send(job).is_ok();
        if !sent {
            tracing::debug!(
                shard,
                "indexer queue full: a control job waits for the next pass"
            );
        }
        sent
    }

    /// Runs `request` over `topic` on every shard's searcher and merges
    /// the answers: the best `request.limit` hits, and every unindexed
    /// range. Blocks the calling (non-reactor) thread.
    ///
    /// # Errors
    ///
    /// [`SearchError::BadQuery`] for a query that does not parse; a
    /// searcher with a full queue ([`SEARCHER_QUEUE_JOBS_MAX`]), or one
    /// that does not answer in [`SEARCH_TIMEOUT_MS`], is
    /// [`SearchError::Unavailable`].
    pub fn search(&self, topic: &str, request: &SearchRequest) -> Result<Found, SearchError> {
        let mut waiting = Vec::with_capacity(self.indexers.len());
        for indexer in &self.indexers {
            let (reply, answer) = bounded(1);
            let job = SearchJob {
                topic: topic.to_string(),
                request: request.clone(),
                reply,
            };
            indexer
                .searches
                .try_send(job)
                .map_err(|_| SearchError::Unavailable("a shard's searcher has a full queue"))?;
            waiting.push(answer);
        }
        let mut found = Found::default();
        for answer in waiting {
            let shard = answer
                .recv_timeout(Duration::from_millis(SEARCH_TIMEOUT_MS))
                .map_err(|_| {
                    SearchError::Unavailable("a shard's searcher did not answer in time")
                })??;
            found.hits.extend(shard.hits);
            found.archives_searched += shard.archives_searched;
            for (partition, ranges) in shard.unindexed {
                found.unindexed.entry(partition).or_default().extend(ranges);
            }
        }
        for ranges in found.unindexed.values_mut() {
            merge_ranges(ranges);
        }
        rank(&mut found.hits, request.order);
        found
            .hits
            .truncate(request.limit.min(super::SEARCH_LIMIT_MAX));
        Ok(found)
    }
}

/// Orders hits from several shards as one index would: newest (timestamp,
/// then offset) or best score first; a partition's record appears once.
fn rank(hits: &mut Vec<Hit>, order: Order) {
    match order {
        Order::Newest => hits.sort_by(|a, b| {
            (b.timestamp_ms, b.offset, b.partition).cmp(&(a.timestamp_ms, a.offset, a.partition))
        }),
        Order::Score => hits.sort_by(|a, b| {
            b.score
                .unwrap_or(0.0)
                .total_cmp(&a.score.unwrap_or(0.0))
                .then((b.offset, b.partition).cmp(&(a.offset, a.partition)))
        }),
    }
    let mut seen = std::collections::BTreeSet::new();
    hits.retain(|hit| seen.insert((hit.partition, hit.offset)));
}

/// The indexer thread's own state.
struct IndexerThread {
    shard: usize,
    started: Instant,
    tails: BTreeMap<PartitionKey, Tail>,
    /// Each partition's archives, oldest first, as last sent.
    archives: BTreeMap<PartitionKey, Vec<ArchiveRef>>,
    /// Each partition's first readable offset at the last pass: hits
    /// below it (removed records an archive still holds) are not shown.
    starts: BTreeMap<PartitionKey, u64>,
    /// What the shard's searcher thread reads.
    searcher: Arc<SearcherShared>,
    /// Each partition's local sealed segments and their indexes.
    local: BTreeMap<PartitionKey, Local>,
    /// The local segment being indexed (one at a time).
    local_pending: Option<(PartitionKey, u64)>,
    local_jobs: Sender<LocalJob>,
    local_replies: Sender<LocalBuilt>,
    backlog: Arc<Backlog>,
    unindexed: Arc<Unindexed>,
    /// Batches taken from the channel, waiting for their partition's turn.
    turns: Turns,
}

impl IndexerThread {
    fn run(
        &mut self,
        jobs: &Receiver<Job>,
        batches: &Receiver<AppendedBatch>,
        local_built: &Receiver<LocalBuilt>,
    ) {
        yield_the_cpu(self.shard);
        let check = Duration::from_millis(COMMIT_CHECK_INTERVAL_MS);
        let mut next_check = self.started + check;
        // Ends when the hub, and with it every sender, is gone.
        loop {
            // A test stalls the thread here, as a core the shards keep
            // busy does (tests/search_stalled_indexer.rs).
            #[cfg(feature = "failpoints")]
            fail::fail_point!("search-indexer-loop");
            // Every batch that arrived joins the turns, so the order is
            // theirs, not the channel's. Bounded by the feeders' count.
            while let Ok(batch) = batches.try_recv() {
                self.turns.push(batch);
            }
            assert!(self.turns.len() <= INDEX_QUEUE_JOBS_MAX);
            if self.turns.is_empty() {
                let wait = next_check.saturating_duration_since(Instant::now());
                select_biased! {
                    recv(jobs) -> job => match job {
                        Ok(job) => self.handle(job),
                        Err(_) => return,
                    },
                    recv(local_built) -> built => {
                        if let Ok(built) = built {
                            self.local_built(built);
                        }
                    },
                    recv(batches) -> batch => match batch {
                        Ok(batch) => self.turns.push(batch),
                        Err(_) => return,
                    },
                    default(wait) => {}
                }
            } else if let Some(job) = match jobs.try_recv() {
                Ok(job) => Some(job),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return,
            } {
                self.handle(job);
            } else if let Ok(built) = local_built.try_recv() {
                self.local_built(built);
            } else if let Some(batch) = self.turns.pop() {
                self.index(&batch);
                self.backlog.take(&batch);
            }
            let now = Instant::now();
            if now >= next_check {
                self.commit_due(self.now_ms());
                next_check = now + check;
            }
        }
    }

    /// Milliseconds since the thread started: the tails' commit clock.
    fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn handle(&mut self, job: Job) {
        match job {
            Job::Tend(partition, tend) => self.tend(partition, tend),
            Job::Archives(partition, archives) => {
                self.archives.insert(partition.clone(), archives);
                self.publish(&partition);
            }
            Job::Drop(partition) => {
                for batch in self.turns.remove(&partition.0, partition.1) {
                    self.backlog.take(&batch);
                }
                self.tails.remove(&partition);
                self.archives.remove(&partition);
                self.local.remove(&partition);
                self.starts.remove(&partition);
                self.unindexed.lock().remove(&partition);
                self.searcher.views().remove(&partition);
            }
        }
    }

    /// Indexes one batch with the offsets and timestamps the log gave it.
    fn index(&mut self, appended: &AppendedBatch) {
        let key = (appended.topic.to_string(), appended.partition);
        let new_tail = !self.tails.contains_key(&key);
        let stored = stored_form(
            &appended.batch,
            appended.base_offset,
            appended.log_append_time_ms,
        );
        let added = match self.tails.entry(key.clone()) {
            std::collections::btree_map::Entry::Occupied(tail) => {
                tail.into_mut().add(&stored, appended.base_offset)
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                TailIndex::new(key.1).and_then(|index| {
                    slot.insert(Tail::new(index))
                        .add(&stored, appended.base_offset)
                })
            }
        };
        if new_tail && self.tails.contains_key(&key) {
            self.publish(&key);
        }
        match added {
            // A full tail forgot its oldest batches: reported now, before
            // the commit that drops them is published (the next
            // maintenance pass then subtracts what local indexes and
            // archives cover).
            Ok(forgotten) if !forgotten.is_empty() => self.unindexed.add(key, forgotten),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(shard = self.shard, topic = %key.0, partition = key.1, error = %e, "search: a batch was not indexed");
                let count = BatchView::parse_unverified(&stored)
                    .map_or(1, |view| u64::from(view.offset_count()));
                let base = appended.base_offset;
                self.unindexed.add(key, base..base + count);
            }
        }
    }

    /// Forgets what the tail need not hold, and records as unindexed
    /// what the partition has below the tail (everything, without one).
    fn tend(&mut self, partition: PartitionKey, tend: Tend) {
        let now_ms = self.now_ms();
        let searchable_from = match self.tails.get_mut(&partition) {
            Some(tail) => {
                if let Err(e) = tail.forget_below(tend.below, now_ms) {
                    tracing::warn!(shard = self.shard, topic = %partition.0, partition = partition.1, error = %e, "search: forgetting archived records failed");
                }
                tail.index.offsets().start
            }
            None => tend.end,
        };
        self.starts.insert(partition.clone(), tend.start);
        self.tend_local(&partition, tend.local, searchable_from);
        let archived = self.archives.get(&partition);
        let local: Vec<Range<u64>> = self
            .local
            .get(&partition)
            .map(|l| {
                l.indexes
                    .values()
                    .map(|(s, _)| s.base_offset..s.end_offset)
                    .collect()
            })
            .unwrap_or_default();
        let mut map = self.unindexed.lock();
        let ranges = map.entry(partition.clone()).or_default();
        // Gaps below the partition's start are gone, not unindexed.
        ranges.retain_mut(|r| {
            r.start = r.start.max(tend.start);
            !r.is_empty()
        });
        ranges.push(tend.start..searchable_from.max(tend.start));
        merge_ranges(ranges);
        // What archives hold is searched there (an archive without its
        // index is reported when a search reaches it), and so are the
        // local segments indexed.
        for archive in archived.into_iter().flatten() {
            subtract(ranges, &archive_offsets(archive));
        }
        for range in &local {
            subtract(ranges, range);
        }
        drop(map);
        // Only now that the ranges cover what the tail forgot and the
        // local indexes dropped.
        self.publish(&partition);
    }

    /// Keeps the indexes of `partition`'s local segments that are still
    /// listed, and starts indexing the newest one below the tail
    /// (`searchable_from`) not indexed yet, within
    /// [`LOCAL_INDEX_BYTES_MAX`] and [`LOCAL_INDEXES_MAX`] for the
    /// indexer, whatever the segment's size (its index is built a chunk
    /// at a time into a scratch file and searched from there).
    fn tend_local(
        &mut self,
        partition: &PartitionKey,
        listed: Vec<LocalSegment>,
        searchable_from: u64,
    ) {
        let local = self.local.entry(partition.clone()).or_default();
        local.indexes.retain(|base, (segment, _)| {
            listed
                .iter()
                .any(|s| s == segment && s.base_offset == *base)
        });
        local
            .failed
            .retain(|base| listed.iter().any(|s| s.base_offset == *base));
        local.segments = listed;
        if self.local_pending.is_some() {
            return;
        }
        let held: u64 = self
            .local
            .values()
            .flat_map(|l| l.indexes.values())
            .map(|(segment, _)| segment.bytes)
            .sum();
        let open: usize = self.local.values().map(|l| l.indexes.len()).sum();
        if open >= LOCAL_INDEXES_MAX {
            return;
        }
        let Some(local) = self.local.get(partition) else {
            return;
        };
        let next = local.segments.iter().rev().find(|s| {
            s.base_offset < searchable_from
                && !local.indexes.contains_key(&s.base_offset)
                && !local.failed.contains(&s.base_offset)
        });
        let Some(next) = next.filter(|s| held + s.bytes <= LOCAL_INDEX_BYTES_MAX) else {
            return;
        };
        let job = LocalJob {
            key: partition.clone(),
            segment: next.clone(),
            reply: self.local_replies.clone(),
        };
        if self.local_jobs.try_send(job).is_ok() {
            self.local_pending = Some((partition.clone(), next.base_offset));
        }
    }

    /// Keeps a local segment's index, if its segment is still listed.
    fn local_built(&mut self, built: LocalBuilt) {
        self.local_pending = None;
        let Some(local) = self.local.get_mut(&built.key) else {
            return;
        };
        if !local.segments.contains(&built.segment) {
            return;
        }
        let base = built.segment.base_offset;
        match built.built {
            Ok(index) => {
                // Searchable now: no longer reported unindexed (the next
                // pass would say so too, up to a pass later).
                let range = built.segment.base_offset..built.segment.end_offset;
                local.indexes.insert(base, (built.segment, index));
                self.publish(&built.key);
                if let Some(ranges) = self.unindexed.lock().get_mut(&built.key) {
                    subtract(ranges, &range);
                }
            }
            Err(e) => {
                tracing::warn!(shard = self.shard, topic = %built.key.0, partition = built.key.1, base_offset = base, error = %e, "search: a local segment could not be indexed; its offsets stay unindexed");
                local.failed.push(base);
            }
        }
    }

    /// Commits every tail that is due, the least changed first, and
    /// publishes each as soon as it is committed. A commit waits for the
    /// tail's tantivy thread to index everything handed to it, which for
    /// a busy partition can be seconds of work: a quiet partition's new
    /// record must not wait behind that.
    fn commit_due(&mut self, now_ms: i64) {
        let mut keys: Vec<(u64, PartitionKey)> = self
            .tails
            .iter()
            .map(|(key, tail)| (tail.bytes - tail.bytes_committed, key.clone()))
            .collect();
        keys.sort_unstable();
        for (_, key) in &keys {
            let Some(tail) = self.tails.get_mut(key) else {
                continue;
            };
            match tail.index.commit_if_due(now_ms) {
                Ok(true) => {
                    tail.bytes_committed = tail.bytes;
                    self.publish(key);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(shard = self.shard, topic = %key.0, partition = key.1, error = %e, "search: commit failed");
                }
            }
        }
    }

    /// Publishes what `partition` can be searched through now, for the
    /// searcher thread: whenever its tail commits or its local indexes,
    /// archives or start change. What a view leaves out must be in the
    /// unindexed ranges by then, so a view that searches less (a tail that
    /// forgot, a local index dropped) is published only after the ranges
    /// cover it, and one that searches more before they shrink: a search,
    /// which reads both without this thread, never misses a record
    /// without reporting its range.
    fn publish(&self, partition: &PartitionKey) {
        let view = PartitionView {
            tail: self.tails.get(partition).map(|tail| tail.index.searcher()),
            local: self.local.get(partition).map_or_else(Vec::new, |local| {
                local
                    .indexes
                    .values()
                    .map(|(segment, index)| {
                        (segment.base_offset..segment.end_offset, index.searcher())
                    })
                    .collect()
            }),
            archives: self.archives.get(partition).cloned().unwrap_or_default(),
            start: self.starts.get(partition).copied(),
        };
        self.searcher.views().insert(partition.clone(), view);
    }
}

/// Removes `cut` from `ranges` (sorted, disjoint), splitting a range it
/// falls inside.
fn subtract(ranges: &mut Vec<Range<u64>>, cut: &Range<u64>) {
    let mut kept = Vec::with_capacity(ranges.len() + 1);
    for range in ranges.drain(..) {
        if range.end <= cut.start || range.start >= cut.end {
            kept.push(range);
            continue;
        }
        if range.start < cut.start {
            kept.push(range.start..cut.start);
        }
        if range.end > cut.end {
            kept.push(cut.end..range.end);
        }
    }
    *ranges = kept;
}

/// One shard's segment indexer: builds the index of each sealed segment
/// the archiver asks for, under `SCHED_IDLE` like the tails' indexer, on
/// a thread of its own so a segment (seconds of work) never holds up the
/// tails' commits or a search.
fn index_segments(
    shard: usize,
    scratch_dir: &Path,
    jobs: &Receiver<SegmentJob>,
    local: &Receiver<LocalJob>,
) {
    yield_the_cpu(shard);
    let never = AtomicBool::new(false);
    // Ends when the hub, and with it the senders, is gone.
    loop {
        select_biased! {
            recv(jobs) -> job => {
                let Ok(job) = job else { return };
                if job.cancelled.load(Ordering::Relaxed) {
                    continue;
                }
                let built =
                    index_segment_file(job.partition, &job.path, scratch_dir, &job.cancelled);
                if built.is_ok() {
                    crate::crash::point(CRASH_SEGMENT_INDEXED);
                }
                // The archiver may have stopped waiting; nobody to tell then.
                let _ = job.reply.send(built);
            },
            recv(local) -> job => {
                let Ok(job) = job else { return };
                let built =
                    index_segment_file(job.key.1, &job.segment.path, scratch_dir, &never)
                        .and_then(BuiltIndex::open);
                let _ = job.reply.send(LocalBuilt {
                    key: job.key,
                    segment: job.segment,
                    built,
                });
            },
        }
    }
}

/// A partition's tail index and what bounds it.
struct Tail {
    index: TailIndex,
    /// Batch bytes added since the tail began.
    bytes: u64,
    /// `bytes` at the last commit by [`IndexerThread::commit_due`] (what
    /// it orders commits by).
    bytes_committed: u64,
    /// (first offset, `bytes` before it) every [`TAIL_CHECKPOINT_BYTES`]
    /// or so, oldest first; at most `TAIL_BATCH_BYTES_MAX /
    /// TAIL_CHECKPOINT_BYTES + 2` of them.
    checkpoints: VecDeque<(u64, u64)>,
    /// [`TAIL_BATCH_BYTES_MAX`] and [`TAIL_CHECKPOINT_BYTES`] (smaller in
    /// tests).
    bytes_max: u64,
    checkpoint_bytes: u64,
}

impl Tail {
    fn new(index: TailIndex) -> Tail {
        Tail::bounded(index, TAIL_BATCH_BYTES_MAX, TAIL_CHECKPOINT_BYTES)
    }

    fn bounded(index: TailIndex, bytes_max: u64, checkpoint_bytes: u64) -> Tail {
        assert!(bytes_max >= 2 * checkpoint_bytes && checkpoint_bytes > 0);
        Tail {
            index,
            bytes: 0,
            bytes_committed: 0,
            checkpoints: VecDeque::new(),
            bytes_max,
            checkpoint_bytes,
        }
    }

    /// Indexes `stored` (its first offset `base_offset`), then forgets the
    /// oldest checkpoints' batches while the tail holds more than
    /// [`TAIL_BATCH_BYTES_MAX`]. Returns the offsets it forgot (empty when
    /// none): gone at the next commit, so the caller must report them
    /// unindexed before that commit is published.
    fn add(&mut self, stored: &[u8], base_offset: u64) -> Result<Range<u64>, SearchError> {
        if self
            .checkpoints
            .back()
            .is_none_or(|&(_, at)| self.bytes - at >= self.checkpoint_bytes)
        {
            self.checkpoints.push_back((base_offset, self.bytes));
        }
        self.index.add_batch(stored)?;
        self.bytes += stored.len() as u64;
        let kept_from = self.index.offsets().start;
        // Bounded: each round removes a checkpoint.
        while self.checkpoints.len() > 1
            && self
                .checkpoints
                .front()
                .is_some_and(|&(_, at)| self.bytes - at > self.bytes_max)
        {
            self.checkpoints.pop_front();
            if let Some(&(offset, _)) = self.checkpoints.front() {
                self.index.drop_below(offset)?;
            }
        }
        Ok(kept_from..self.index.offsets().start)
    }

    /// Forgets the records below `offset`, committing at once (at
    /// `now_ms`): the search that next reports them unindexed must not
    /// find them.
    fn forget_below(&mut self, offset: u64, now_ms: i64) -> Result<(), SearchError> {
        if offset <= self.index.offsets().start {
            return Ok(());
        }
        // Bounded by the checkpoints; keeps the one `offset` falls in.
        while self.checkpoints.len() > 1
            && self.checkpoints.get(1).is_some_and(|&(at, _)| at <= offset)
        {
            self.checkpoints.pop_front();
        }
        self.index.drop_below(offset)?;
        self.index.commit(now_ms)
    }
}

/// Puts the calling thread, and the threads it starts (tantivy's writer
/// and merge threads inherit it), in `SCHED_IDLE`: it runs only on CPU
/// time no shard wants, so indexing never takes a core from produce
/// (without it, indexing at full produce rate cut produce throughput to
/// 0.35-0.41 of the same broker without search on a 2-core host;
/// BENCHMARKS.md, "Search"). If the kernel refuses, nice 19 is the
/// fallback, which only lowers the thread's share.
fn yield_the_cpu(shard: usize) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` outlives the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
        return;
    }
    let err = std::io::Error::last_os_error();
    // SAFETY: a plain syscall on the calling thread (tid from gettid).
    let niced = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19)
    };
    tracing::warn!(shard, error = %err, niced = niced == 0, "search indexer: SCHED_IDLE refused; running at nice 19");
}

/// The batch as the log stores it, as far as indexing reads it: the
/// log's base offset, and for a LogAppendTime topic the append time.
fn stored_form(batch: &[u8], base_offset: u64, log_append_time_ms: Option<i64>) -> Vec<u8> {
    let mut stored = batch.to_vec();
    set_base_offset(&mut stored, base_offset);
    if let Some(append_ms) = log_append_time_ms {
        if let Ok(view) = BatchView::parse_unverified(&stored) {
            let attributes = view.attributes() | ATTRIBUTE_LOG_APPEND_TIME;
            finish_header(&mut stored, attributes, append_ms);
        }
    }
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_stay_bounded() {
        let mut ranges = vec![10..20, 0..5, 5..8, 15..30];
        merge_ranges(&mut ranges);
        assert_eq!(ranges, vec![0..8, 10..30]);
        let mut many: Vec<Range<u64>> = (0..200).map(|i| i * 10..i * 10 + 1).collect();
        many.push(5000..5001);
        merge_ranges(&mut many);
        assert_eq!(many.len(), UNINDEXED_RANGES_MAX);
        assert_eq!(many.first().map(|r| r.start), Some(0));
        assert_eq!(many.last().map(|r| r.end), Some(5001));
    }

    #[test]
    fn archives_cut_what_they_hold_out_of_the_unindexed_ranges() {
        let mut ranges = vec![0..10, 20..30, 40..50];
        subtract(&mut ranges, &(5..25));
        assert_eq!(ranges, vec![0..5, 25..30, 40..50]);
        subtract(&mut ranges, &(42..45));
        assert_eq!(ranges, vec![0..5, 25..30, 40..42, 45..50]);
        subtract(&mut ranges, &(0..100));
        assert!(ranges.is_empty());
    }

    #[test]
    fn a_full_tail_forgets_its_oldest_batches_in_steps() {
        use ringlog_engine::records::build_timed_batch;
        let batch = build_timed_batch(
            ringlog_engine::codec::Codec::None,
            &[(1, b"zqword".as_slice())],
        );
        let len = batch.len() as u64;
        let mut tail = Tail::bounded(TailIndex::new(0).unwrap(), 8 * len, 2 * len);
        let mut forgotten: Vec<Range<u64>> = Vec::new();
        for offset in 0..40u64 {
            let mut stored = batch.clone();
            set_base_offset(&mut stored, offset);
            let dropped = tail.add(&stored, offset).unwrap();
            if !dropped.is_empty() {
                forgotten.push(dropped);
            }
            assert!(tail.bytes - tail.checkpoints[0].1 <= 8 * len + 2 * len);
            assert!(tail.checkpoints.len() <= 6, "{:?}", tail.checkpoints);
        }
        let start = tail.index.offsets().start;
        assert!(
            (30..=33).contains(&start),
            "kept the newest ~8 batches: {start}"
        );
        // What it forgot, it said, in steps, each once: exactly what the
        // index no longer holds (for the unindexed ranges).
        assert!(forgotten.len() > 1, "{forgotten:?}");
        merge_ranges(&mut forgotten);
        assert_eq!(forgotten, vec![0..start]);
        tail.index.commit(0).unwrap();
        let request = SearchRequest {
            q: "zqword".into(),
            limit: 100,
            ..SearchRequest::default()
        };
        let searcher = tail.index.searcher();
        let found = crate::search::search(&[&searcher], &request).unwrap();
        assert_eq!(found.len() as u64, 40 - start);
        tail.forget_below(38, 0).unwrap();
        assert_eq!(tail.index.offsets().start, 38);
        assert_eq!(tail.checkpoints.front().map(|c| c.0), Some(38));
    }

    #[test]
    fn hits_rank_newest_first_without_duplicates() {
        let hit = |partition, offset, timestamp_ms| Hit {
            partition,
            offset,
            timestamp_ms,
            key: None,
            value: None,
            headers: Vec::new(),
            score: None,
        };
        let mut hits = vec![
            hit(0, 1, 100),
            hit(1, 7, 300),
            hit(0, 2, 300),
            hit(1, 7, 300),
        ];
        rank(&mut hits, Order::Newest);
        let order: Vec<_> = hits.iter().map(|h| (h.partition, h.offset)).collect();
        assert_eq!(order, vec![(1, 7), (0, 2), (0, 1)]);
    }
}
