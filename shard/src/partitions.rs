//! The partitions one shard owns: their logs, and the fetch waiters woken
//! when new records become readable.
//!
//! Layer: shard state (see the crate docs). May import the foundation
//! modules only.
//!
//! Everything here lives on the owning shard's executor and nowhere else;
//! other shards and the router reach it only through messages. That is what
//! lets the data path run without locks.
//!
//! ## Why a partition can be "unopened" or "opening"
//!
//! Creating a partition's log costs two directories, a segment and two
//! index files (five inodes) and a directory fsync: about a millisecond of
//! CPU and disk, more than the rest of a CreateTopics. The controller
//! answers CreateTopics once the metadata event is durable (as Kafka does)
//! and does not wait for the logs: [`Partitions::register`] records a new
//! partition as [`Entry::Unopened`] synchronously when the open request
//! arrives, and its log is created by the first request that needs it.
//! So a burst of topic creations costs metadata appends only (they share
//! fdatasyncs), and a partition nobody writes costs no files. The meta
//! log is the truth: start-up opens (and creates) every partition of every
//! topic, so a crash loses nothing that was acknowledged.
//!
//! Every request for a partition goes through [`Partitions::ready`], which
//! creates an unopened log and waits while a log is opening, so a
//! Produce, Fetch or ListOffsets that arrives right after CreateTopics
//! answered is served, not refused. A failed open is remembered with its
//! error: requests get KAFKA_STORAGE_ERROR naming it until an open is
//! requested again (the next start-up). At most one open runs per
//! partition, and a remove waits for it, so a delete never races the
//! creation of the directory it removes.

use crate::admin::PartitionLoad;
use crate::dispatch_order::{DispatchOrder, Turn};
use crate::gate::DataGate;
use crate::load::{now_s, Traffic};
use crate::metrics::Metrics;
use ringlog_engine::io::dma::DmaStorage;
use ringlog_engine::partition::PartitionLog;
use ringlog_engine::{Clock, LogConfig};
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One partition on its shard.
pub struct Partition {
    /// The log.
    pub log: PartitionLog<DmaStorage>,
    /// Woken when the high watermark moves.
    pub gate: DataGate,
    /// Bytes produced and fetched over the last seconds.
    pub traffic: RefCell<Traffic>,
    /// Set when a move takes the partition away: fetches parked on
    /// [`Partition::gate`] return at once instead of holding the log.
    pub released: Cell<bool>,
    /// The topic's name as the search indexer takes it with each batch,
    /// made once per partition rather than once per produced batch.
    pub search_topic: OnceCell<Arc<str>>,
}

impl Partition {
    fn new(log: PartitionLog<DmaStorage>) -> Self {
        Partition {
            log,
            gate: DataGate::default(),
            traffic: RefCell::default(),
            released: Cell::new(false),
            search_topic: OnceCell::new(),
        }
    }
}

/// `<data>/topics/<topic>/<partition>`.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: u32) -> PathBuf {
    data_dir
        .join("topics")
        .join(topic)
        .join(partition.to_string())
}

/// Topic name and partition index.
type PartitionKey = (Rc<str>, u32);

/// How long a move waits for the requests running on the partition to
/// finish before it gives up (nothing changed). Appends wait for one
/// fdatasync; this bounds a stuck disk.
pub const RELEASE_DRAIN_WAIT_MS: u64 = 5_000;
/// How often the drain checks meanwhile.
const RELEASE_POLL_MS: u64 = 1;
const _: () = assert!(RELEASE_POLL_MS < RELEASE_DRAIN_WAIT_MS);

/// How long a request waits for a partition that is opening. An open is a
/// few file creations and fsyncs; this only bounds a stuck disk.
pub const OPEN_WAIT_MS: u64 = 30_000;

/// What a shard knows of one of its partitions.
enum Entry {
    /// Registered; the log (with this configuration) is created by the
    /// first request that needs it.
    Unopened(LogConfig),
    /// The log is being opened or created; notified when that ends.
    Opening(Rc<DataGate>),
    /// Ready for requests.
    Open(Rc<Partition>),
    /// The open failed with this message (logged when it happened).
    Failed(Rc<str>),
    /// A move is taking it away: requests are refused while the requests
    /// already running finish and the log closes.
    Releasing,
}

/// The partitions of one shard.
pub struct Partitions {
    data_dir: PathBuf,
    shard: usize,
    metrics: Arc<Metrics>,
    by_name: RefCell<HashMap<PartitionKey, Entry>>,
    /// The order Produce requests arrived in, per partition (see
    /// [`Partitions::arrival_turn`]).
    arrivals: RefCell<HashMap<PartitionKey, Rc<DispatchOrder>>>,
}

impl Partitions {
    /// No partitions yet; `shard` labels the fsync metrics.
    pub fn new(data_dir: PathBuf, shard: usize, metrics: Arc<Metrics>) -> Self {
        Partitions {
            data_dir,
            shard,
            metrics,
            by_name: RefCell::new(HashMap::new()),
            arrivals: RefCell::new(HashMap::new()),
        }
    }

    fn key(topic: &str, partition: u32) -> PartitionKey {
        (Rc::from(topic), partition)
    }

    /// Records that the partition is opening, unless it is open or opening
    /// already (a failed open is tried again). Returns true if the caller
    /// must now run [`Partitions::open_registered`]: so at most one open
    /// runs per partition. Synchronous, so a request that arrives after
    /// this one finds the entry.
    pub fn start_open(&self, topic: &str, partition: u32) -> bool {
        let mut by_name = self.by_name.borrow_mut();
        let key = Self::key(topic, partition);
        if matches!(
            by_name.get(&key),
            Some(Entry::Opening(_) | Entry::Open(_) | Entry::Releasing)
        ) {
            return false;
        }
        by_name.insert(key, Entry::Opening(Rc::new(DataGate::default())));
        true
    }

    /// Records a new partition whose log the first request that needs it
    /// creates with `config` (see the module docs), unless the shard knows
    /// it already. Synchronous, so a request that arrives after this one
    /// finds the entry.
    pub fn register(&self, topic: &str, partition: u32, config: LogConfig) {
        let mut by_name = self.by_name.borrow_mut();
        let key = Self::key(topic, partition);
        if matches!(by_name.get(&key), Some(Entry::Failed(_)) | None) {
            by_name.insert(key, Entry::Unopened(config));
        }
    }

    /// Gives an unopened partition the configuration its log will be
    /// created with, if it is valid. `None` if the partition is not
    /// unopened (then the caller reconfigures the log).
    pub fn configure_unopened(
        &self,
        topic: &str,
        partition: u32,
        config: &LogConfig,
    ) -> Option<ringlog_engine::Result<()>> {
        match self
            .by_name
            .borrow_mut()
            .get_mut(&Self::key(topic, partition))
        {
            Some(Entry::Unopened(stored)) => Some(config.validate().map(|()| {
                *stored = config.clone();
            })),
            _ => None,
        }
    }

    /// Opens (recovering) or creates the log of a partition
    /// [`Partitions::start_open`] returned true for, and wakes the requests
    /// waiting for it. A failure is remembered for later requests.
    pub async fn open_registered(
        &self,
        topic: &str,
        partition: u32,
        config: LogConfig,
    ) -> ringlog_engine::Result<()> {
        let dir = partition_dir(&self.data_dir, topic, partition);
        let opened = PartitionLog::open(DmaStorage, dir, config, Clock::System).await;
        let key = Self::key(topic, partition);
        let (entry, outcome) = match opened {
            Ok(log) => {
                let (metrics, shard) = (self.metrics.clone(), self.shard);
                log.log()
                    .set_sync_observer(Rc::new(move |elapsed| metrics.fsync_done(shard, elapsed)));
                let opened = Rc::new(Partition::new(log));
                (Entry::Open(opened), Ok(()))
            }
            Err(e) => {
                tracing::error!(%topic, partition, error = %e, "opening partition failed");
                (Entry::Failed(Rc::from(e.to_string())), Err(e))
            }
        };
        let left = {
            let mut by_name = self.by_name.borrow_mut();
            match by_name.get_mut(&key) {
                Some(slot @ Entry::Opening(_)) => {
                    if let Entry::Opening(gate) = std::mem::replace(slot, entry) {
                        gate.notify();
                    }
                    None
                }
                // Only `close_all` takes an opening entry away.
                _ => Some(entry),
            }
        };
        if let Some(Entry::Open(p)) = left {
            if let Ok(p) = Rc::try_unwrap(p) {
                if let Err(e) = p.log.close().await {
                    tracing::warn!(%topic, partition, error = %e, "closing a log opened during shutdown failed");
                }
            }
        }
        outcome
    }

    /// The partition once it is open: creates the log of an unopened
    /// partition, waits (at most [`OPEN_WAIT_MS`]) while it is opening.
    /// Fails if this shard does not own it or its open failed.
    pub async fn ready(
        &self,
        topic: &str,
        partition: u32,
    ) -> ringlog_engine::Result<Rc<Partition>> {
        let key = Self::key(topic, partition);
        let deadline = Instant::now() + Duration::from_millis(OPEN_WAIT_MS);
        // Bounded: each round ends in an answer or waits for the open to
        // end or the deadline.
        loop {
            let unopened = match self.by_name.borrow().get(&key) {
                Some(Entry::Unopened(config)) => Some(config.clone()),
                _ => None,
            };
            if let Some(config) = unopened {
                let started = self.start_open(topic, partition);
                assert!(started, "an unopened partition has no open running");
                // Its outcome is in the entry, read on the next round.
                let _ = self.open_registered(topic, partition, config).await;
                continue;
            }
            let gate = match self.by_name.borrow().get(&key) {
                Some(Entry::Unopened(_)) => unreachable!("opened above"),
                Some(Entry::Open(p)) => return Ok(p.clone()),
                Some(Entry::Failed(why)) => {
                    return Err(self.storage_error(
                        topic,
                        partition,
                        format!("opening the log failed: {why}"),
                    ))
                }
                Some(Entry::Opening(gate)) => gate.clone(),
                Some(Entry::Releasing) | None => {
                    return Err(ringlog_engine::Error::NotOwned(format!(
                        "partition {topic}-{partition} is not on shard {} (moved, or moving)",
                        self.shard
                    )))
                }
            };
            let seen = gate.generation();
            let now = Instant::now();
            if now >= deadline || !gate.wait_after(seen, deadline - now).await {
                return Err(self.storage_error(
                    topic,
                    partition,
                    format!("the log is still opening after {OPEN_WAIT_MS} ms"),
                ));
            }
        }
    }

    fn storage_error(&self, topic: &str, partition: u32, why: String) -> ringlog_engine::Error {
        ringlog_engine::Error::io(
            partition_dir(&self.data_dir, topic, partition),
            std::io::Error::other(why),
        )
    }

    /// Closes a deleted partition's log and removes its directory, after
    /// an open in flight ends (so the open cannot recreate what is
    /// removed). Reads still holding the log finish on the unlinked files.
    pub async fn remove(&self, topic: &str, partition: u32) -> ringlog_engine::Result<()> {
        self.settle(topic, partition).await;
        let removed = self
            .by_name
            .borrow_mut()
            .remove(&Self::key(topic, partition));
        self.arrivals
            .borrow_mut()
            .remove(&Self::key(topic, partition));
        if let Some(Entry::Open(p)) = removed {
            if let Ok(p) = Rc::try_unwrap(p) {
                p.gate.notify();
                if let Err(e) = p.log.close().await {
                    tracing::warn!(%topic, partition, error = %e, "closing a deleted partition failed");
                }
            }
        }
        let dir = partition_dir(&self.data_dir, topic, partition);
        let removing = dir.clone();
        glommio::executor()
            .spawn_blocking(move || std::fs::remove_dir_all(&removing))
            .await
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(ringlog_engine::Error::io(&dir, e)),
            })
    }

    /// A Produce request's place among the requests for the partition, in
    /// the order they reached this shard; `None` for a partition the shard
    /// does not have ([`Partitions::ready`] refuses it).
    ///
    /// Why: a request that arrives while the log is opening waits in
    /// [`Partitions::ready`]; when the open ends, a request that arrived
    /// later but had not run yet found the log open and appended ahead of
    /// the waiters (seen as a producer's records stored out of the order it
    /// sent them). Taken before the request's first await — tasks start in
    /// arrival order — and held until its batches are appended, the turn
    /// keeps appends in arrival order through opens and any other wait.
    pub fn arrival_turn(&self, topic: &str, partition: u32) -> Option<Turn> {
        let key = Self::key(topic, partition);
        if !self.by_name.borrow().contains_key(&key) {
            return None;
        }
        let order = self.arrivals.borrow_mut().entry(key).or_default().clone();
        Some(order.take())
    }

    /// The partition if it is open on this shard (no waiting, no opening).
    pub fn open(&self, topic: &str, partition: u32) -> Option<Rc<Partition>> {
        match self.by_name.borrow().get(&Self::key(topic, partition)) {
            Some(Entry::Open(p)) => Some(p.clone()),
            _ => None,
        }
    }

    /// Every open partition with its topic and index, for maintenance.
    pub fn all(&self) -> Vec<(Rc<str>, u32, Rc<Partition>)> {
        self.by_name
            .borrow()
            .iter()
            .filter_map(|((topic, index), entry)| match entry {
                Entry::Open(p) => Some((topic.clone(), *index, p.clone())),
                _ => None,
            })
            .collect()
    }

    /// Runs `work` on partition `p` (`topic`-`partition`). A panic inside
    /// it stops this partition only (see [`crate::panics`]): its log
    /// refuses further work, the entry becomes failed, so every later
    /// request answers KAFKA_STORAGE_ERROR until the next start-up
    /// recovers the log; an ERROR line carries the backtrace, and the
    /// `ringlog_partitions_stopped` metric counts it. Every other
    /// partition of the shard goes on.
    pub async fn guarded<T>(
        &self,
        topic: &str,
        partition: u32,
        p: &Rc<Partition>,
        work: impl std::future::Future<Output = T>,
    ) -> ringlog_engine::Result<T> {
        crate::panics::catch(work)
            .await
            .map_err(|caught| self.stop(topic, partition, p, caught))
    }

    fn stop(
        &self,
        topic: &str,
        partition: u32,
        p: &Rc<Partition>,
        caught: crate::panics::Caught,
    ) -> ringlog_engine::Error {
        p.log.log().stop();
        let what = format!("{} at {}", caught.message, caught.location);
        tracing::error!(
            shard = self.shard,
            %topic,
            partition,
            panic = %what,
            backtrace = %caught.backtrace,
            "internal invariant broken: partition stopped until restart; the shard's other partitions go on"
        );
        self.metrics.partition_stopped(self.shard);
        if let Some(entry) = self
            .by_name
            .borrow_mut()
            .get_mut(&Self::key(topic, partition))
        {
            if matches!(entry, Entry::Open(open) if Rc::ptr_eq(open, p)) {
                *entry = Entry::Failed(Rc::from(format!("internal invariant broken: {what}")));
            }
        }
        // Fetches parked on the partition see the stopped log now.
        p.gate.notify();
        ringlog_engine::Error::Invariant {
            path: partition_dir(&self.data_dir, topic, partition),
            what,
        }
    }

    /// Gives the partition up for a move to another shard, and returns
    /// how long new requests were refused here before the log was closed.
    /// New requests are refused at once ([`ringlog_engine::Error::NotOwned`]:
    /// NOT_LEADER_OR_FOLLOWER on the wire); the requests already running
    /// finish (appends with their fdatasync; parked fetches return); then
    /// the log closes, writing its producer snapshot, so the target shard
    /// opens the same files without scanning them.
    ///
    /// If the running requests do not finish within
    /// [`RELEASE_DRAIN_WAIT_MS`], the partition is served here again and
    /// the move fails: nothing has changed.
    pub async fn release(&self, topic: &str, partition: u32) -> ringlog_engine::Result<Duration> {
        self.settle(topic, partition).await;
        let key = Self::key(topic, partition);
        let started = Instant::now();
        let taken = self
            .by_name
            .borrow_mut()
            .insert(key.clone(), Entry::Releasing);
        let p = match taken {
            Some(Entry::Open(p)) => p,
            Some(Entry::Unopened(_) | Entry::Failed(_)) => {
                // No log open: the files are the target's to open.
                self.forget(&key);
                return Ok(started.elapsed());
            }
            Some(other @ (Entry::Opening(_) | Entry::Releasing)) => {
                self.by_name.borrow_mut().insert(key, other);
                return Err(ringlog_engine::Error::Rejected(format!(
                    "partition {topic}-{partition} is busy on shard {} (opening or moving); try again",
                    self.shard
                )));
            }
            None => {
                self.forget(&key);
                return Err(ringlog_engine::Error::NotOwned(format!(
                    "partition {topic}-{partition} is not on shard {}",
                    self.shard
                )));
            }
        };
        p.released.set(true);
        p.gate.notify();
        let deadline = started + Duration::from_millis(RELEASE_DRAIN_WAIT_MS);
        // Bounded by the deadline. Each request running holds the
        // partition; none can start now, so the count only falls.
        while Rc::strong_count(&p) > 1 {
            if Instant::now() >= deadline {
                p.released.set(false);
                self.by_name.borrow_mut().insert(key, Entry::Open(p));
                return Err(ringlog_engine::Error::Rejected(format!(
                    "partition {topic}-{partition}: requests still running on shard {} after {RELEASE_DRAIN_WAIT_MS} ms; move abandoned, nothing changed",
                    self.shard
                )));
            }
            glommio::timer::sleep(Duration::from_millis(RELEASE_POLL_MS)).await;
        }
        let unavailable = started.elapsed();
        let p = Rc::into_inner(p).expect("the only holder, checked above");
        if let Err(e) = p.log.close().await {
            // Appends acknowledged with acks=all are durable already;
            // the target recovers the files as after a crash.
            tracing::warn!(%topic, partition, error = %e, "closing a moved partition's log failed; the new shard recovers it");
        }
        self.forget(&key);
        Ok(unavailable)
    }

    fn forget(&self, key: &PartitionKey) {
        self.by_name.borrow_mut().remove(key);
        self.arrivals.borrow_mut().remove(key);
    }

    /// Every partition this shard owns, by topic then index, with its
    /// bytes on disk and traffic (none for a log not opened yet).
    pub fn loads(&self) -> Vec<PartitionLoad> {
        let now = now_s();
        let mut loads: Vec<PartitionLoad> = self
            .by_name
            .borrow()
            .iter()
            .filter(|(_, entry)| !matches!(entry, Entry::Releasing))
            .map(|((topic, index), entry)| {
                let (bytes, traffic) = match entry {
                    Entry::Open(p) => (
                        p.log.log().segments().iter().map(|s| s.size_bytes).sum(),
                        p.traffic.borrow().clone(),
                    ),
                    _ => (0, Traffic::default()),
                };
                PartitionLoad {
                    topic: topic.to_string(),
                    partition: *index,
                    bytes,
                    produce_bytes_per_s: traffic.produced.per_second(now),
                    fetch_bytes_per_s: traffic.fetched.per_second(now),
                }
            })
            .collect();
        loads.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        loads
    }

    /// Waits until no open of the partition is running (its outcome does
    /// not matter); an unopened partition stays unopened.
    async fn settle(&self, topic: &str, partition: u32) {
        let opening = matches!(
            self.by_name.borrow().get(&Self::key(topic, partition)),
            Some(Entry::Opening(_))
        );
        if opening {
            let _ = self.ready(topic, partition).await;
        }
    }

    /// Partitions registered whose log no request has needed yet (tests
    /// observe that creating a topic creates no files).
    pub fn unopened_count(&self) -> usize {
        self.by_name
            .borrow()
            .values()
            .filter(|entry| matches!(entry, Entry::Unopened(_)))
            .count()
    }

    /// Waits for the opens in flight, then closes every log (final flush
    /// and fdatasync). Logs still referenced by a request in flight are
    /// synced instead and closed when dropped.
    pub async fn close_all(&self) {
        let opening: Vec<PartitionKey> = self
            .by_name
            .borrow()
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::Opening(_)))
            .map(|(key, _)| key.clone())
            .collect();
        for (topic, partition) in opening {
            self.settle(&topic, partition).await;
        }
        let partitions: Vec<_> = self.by_name.borrow_mut().drain().collect();
        for ((topic, index), entry) in partitions {
            let Entry::Open(partition) = entry else {
                continue;
            };
            let closed = match Rc::try_unwrap(partition) {
                Ok(p) => p.log.close().await,
                Err(shared) => shared.log.log().sync().await,
            };
            if let Err(e) = closed {
                tracing::error!(%topic, partition = index, error = %e, "closing partition log failed");
            }
        }
    }
}
