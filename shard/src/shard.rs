//! One shard's state, and the partition work it does for requests that
//! reach it over the mesh.
//!
//! Layer: runtime (see the crate docs). May import the foundation
//! modules, `partitions` and `meta_view`; nothing of the controller, the
//! group coordinator, the handlers or the router. Why the partition work is
//! here and not above: produce, fetch, offsets, reconfigure, remove and
//! delete records need nothing but the partitions this shard owns, so the
//! runtime executes them itself; only the work of the layers above it goes
//! up, through [`crate::runtime::Service`].

use crate::admin::ShardLoad;
use crate::archiving::{self, Archiving};
use crate::config::ServerConfig;
use crate::dispatch_order::Turn;
use crate::gate::DataGate;
use crate::load::{now_s, RateWindow};
use crate::message::{
    FetchReply, FoundOffset, OffsetQuery, OpenReply, PartitionOffsets, ProduceAck, ShardRequest,
};
use crate::meta_view::MetaView;
use crate::partitions::{Partition, Partitions};
use crate::runtime::ShardClient;
use crate::search::AppendedBatch;
use crate::tiered::StoreHandle;
use bytes::{Bytes, BytesMut};
use futures_channel::oneshot;
use ringlog_engine::batch::BatchView;
use ringlog_engine::partition::AppendError;
use ringlog_engine::{Error, LogConfig};
use std::cell::{Cell, OnceCell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::rc::Weak;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One shard: an executor pinned to a core, the partitions it owns and its
/// replica of the metadata.
pub struct Shard {
    /// Index in the pool (0 is the controller).
    pub id: usize,
    /// Owned partitions.
    pub partitions: Partitions,
    /// Set by a shutdown request; the shard's main task and its background
    /// tasks wait on it.
    pub stopping: DataGate,
    /// Where the shutdown request wants to hear that the logs are closed.
    pub stopped_reply: RefCell<Option<oneshot::Sender<()>>>,
    /// This shard's replica of the cluster metadata.
    pub meta: MetaView,
    /// The server's settings (and shared metrics).
    pub config: Arc<ServerConfig>,
    /// Partition requests executing now.
    pub in_flight: Cell<u64>,
    /// This shard's object store thread, when the broker archives.
    pub store: Option<StoreHandle>,
    /// Uploads in flight and opened archives.
    pub archiving: Archiving,
    /// The shard's way to every shard (set once the client exists; weak:
    /// the client holds this shard).
    pub client: OnceCell<Weak<ShardClient>>,
    /// Nanoseconds per second the reactor ran tasks.
    pub busy_ns: RefCell<RateWindow>,
    /// Client quota sensors of this shard's router.
    pub throttles: crate::quota::Throttles,
}

impl Shard {
    /// The shard's client to the pool, `None` while the pool is being
    /// built or torn down.
    pub fn client(&self) -> Option<Rc<ShardClient>> {
        self.client.get()?.upgrade()
    }

    /// Counts the reactor time since the last call (glommio hands out its
    /// executor stats once, then starts them again). Called every second.
    pub fn sample_busy(&self) {
        let ran = glommio::executor().executor_stats().executor_runtime();
        let ran_ns = u64::try_from(ran.as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.borrow_mut().add(now_s(), ran_ns);
    }

    /// This shard's load and partitions.
    pub fn load(&self) -> ShardLoad {
        let busy = self.busy_ns.borrow().per_second(now_s()) / 1e9;
        ShardLoad {
            shard: self.id as u32,
            cpu: self
                .config
                .cpus
                .as_ref()
                .and_then(|cpus| cpus.get(self.id).copied()),
            partitions: self.partitions.loads(),
            busy: busy.clamp(0.0, 1.0),
            in_flight: self.in_flight.get(),
        }
    }

    /// Runs `work` every `period` until the shard stops.
    pub fn every<F>(self: &Rc<Self>, period: Duration, mut work: impl FnMut() -> F + 'static)
    where
        F: Future<Output = ()> + 'static,
    {
        let shard = self.clone();
        glommio::spawn_local(async move {
            loop {
                let seen = shard.stopping.generation();
                if shard.stopping.wait_after(seen, period).await {
                    return;
                }
                work().await;
            }
        })
        .detach();
    }
}

/// The partition's offsets, its start taking archives into account.
fn offsets(shard: &Shard, topic: &str, partition: u32, p: &Partition) -> PartitionOffsets {
    PartitionOffsets {
        log_start: archiving::log_start(shard, topic, partition, p),
        high_watermark: p.log.log().high_watermark(),
    }
}

/// Registers a partition on this shard. Synchronous, so the mesh receive
/// loop runs it inline: any request that arrives after the open request
/// finds the partition ([`Partitions::ready`] creates or waits for its
/// log). With [`OpenReply::Registered`] (a new partition) the log is left
/// to the first request that needs it and the answer is immediate; with
/// [`OpenReply::Opened`] (start-up) the open starts now in a task of its
/// own and the answer carries its outcome.
pub fn open(
    shard: &Rc<Shard>,
    topic: String,
    partition: u32,
    config: LogConfig,
    answer: OpenReply,
    reply: oneshot::Sender<Result<(), Error>>,
) {
    match answer {
        OpenReply::Registered => {
            shard.partitions.register(&topic, partition, config);
            let _ = reply.send(Ok(()));
        }
        OpenReply::Opened => {
            let start = shard.partitions.start_open(&topic, partition);
            let shard = shard.clone();
            glommio::spawn_local(async move {
                let outcome = if start {
                    shard
                        .partitions
                        .open_registered(&topic, partition, config)
                        .await
                } else {
                    shard.partitions.ready(&topic, partition).await.map(|_| ())
                };
                let _ = reply.send(outcome);
            })
            .detach();
        }
    }
}

/// Executes one partition request, or a shutdown; replies through its
/// oneshot. A dropped receiver (the client went away) is not an error.
pub async fn handle(shard: Rc<Shard>, request: ShardRequest) {
    let _running = InFlight::enter(&shard);
    match request {
        ShardRequest::Produce {
            topic,
            partition,
            batches,
            durable,
            reply,
        } => {
            // Before the first await: tasks start in arrival order.
            let turn = shard.partitions.arrival_turn(&topic, partition);
            let p = match shard.partitions.ready(&topic, partition).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
            };
            let produced = shard
                .partitions
                .guarded(
                    &topic,
                    partition,
                    &p,
                    produce(&shard, &topic, partition, &p, &batches, durable, turn),
                )
                .await
                .unwrap_or_else(|e| Err(e.into()));
            if let Ok(produced) = &produced {
                let (records, bytes) = (produced.records_written, produced.bytes_written);
                shard.config.metrics.produced(shard.id, records, bytes);
                p.traffic.borrow_mut().produced.add(now_s(), bytes);
            }
            let _ = reply.send(produced.map(|done| ProduceAck {
                base_offset: done.base_offset,
                log_append_time_ms: done.log_append_time_ms,
                offsets: offsets(&shard, &topic, partition, &p),
            }));
        }
        ShardRequest::Fetch {
            topic,
            partition,
            offset,
            max_bytes,
            max_wait,
            reply,
        } => {
            let p = match shard.partitions.ready(&topic, partition).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = reply.send(FetchReply {
                        records: Err(e),
                        offsets: PartitionOffsets {
                            log_start: 0,
                            high_watermark: 0,
                        },
                    });
                    return;
                }
            };
            let start = offsets(&shard, &topic, partition, &p).log_start;
            let archived = match (&shard.store, offset < p.log.log().log_start_offset()) {
                (Some(store), true) if offset >= start => {
                    archiving::archive_for(&shard, &topic, partition, offset)
                        .map(|record| (store.clone(), record))
                }
                _ => None,
            };
            let records = match archived {
                Some((store, record)) => {
                    archiving::read(&shard, &store, &record, offset, max_bytes).await
                }
                None if offset < start => Err(Error::OffsetOutOfRange {
                    offset,
                    start,
                    end: p.log.log().high_watermark(),
                }),
                None => shard
                    .partitions
                    .guarded(
                        &topic,
                        partition,
                        &p,
                        fetch(&p, offset, max_bytes, max_wait),
                    )
                    .await
                    .and_then(|read| read),
            };
            if let Ok(bytes) = &records {
                let count = ringlog_protocol::batches(bytes)
                    .filter_map(Result::ok)
                    .map(|b| record_count(&b))
                    .sum();
                shard
                    .config
                    .metrics
                    .fetched(shard.id, count, bytes.len() as u64);
                p.traffic
                    .borrow_mut()
                    .fetched
                    .add(now_s(), bytes.len() as u64);
            }
            let _ = reply.send(FetchReply {
                records,
                offsets: offsets(&shard, &topic, partition, &p),
            });
        }
        ShardRequest::Offsets {
            topic,
            partition,
            query,
            reply,
        } => {
            let p = match shard.partitions.ready(&topic, partition).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = reply.send(Err(e));
                    return;
                }
            };
            let at = |offset| FoundOffset {
                offset,
                timestamp: -1,
            };
            let now = offsets(&shard, &topic, partition, &p);
            let found = match query {
                OffsetQuery::Earliest => Ok(Some(at(now.log_start))),
                OffsetQuery::Latest => Ok(Some(at(now.high_watermark))),
                OffsetQuery::Timestamp(ts) => {
                    let archived = match &shard.store {
                        Some(store) if now.log_start < p.log.log().log_start_offset() => {
                            archiving::offset_for_timestamp(
                                &shard,
                                store,
                                &topic,
                                partition,
                                now.log_start,
                                ts,
                            )
                            .await
                        }
                        _ => Ok(None),
                    };
                    match archived {
                        Ok(None) => shard
                            .partitions
                            .guarded(&topic, partition, &p, offset_for_timestamp(&p, ts))
                            .await
                            .and_then(|found| found),
                        found => found,
                    }
                }
            };
            let _ = reply.send(found.map(|o| (o, offsets(&shard, &topic, partition, &p))));
        }
        ShardRequest::Reconfigure {
            topic,
            partition,
            config,
            reply,
        } => {
            let unopened = shard
                .partitions
                .configure_unopened(&topic, partition, &config);
            let done = match unopened {
                Some(done) => done,
                None => match shard.partitions.ready(&topic, partition).await {
                    Ok(p) => shard
                        .partitions
                        .guarded(&topic, partition, &p, async {
                            p.log.log().reconfigure(config)
                        })
                        .await
                        .and_then(|done| done),
                    Err(e) => Err(e),
                },
            };
            let _ = reply.send(done);
        }
        ShardRequest::Remove {
            topic,
            partition,
            reply,
        } => {
            if let Some(search) = shard.config.search.as_ref() {
                search.drop_partition(shard.id, &topic, partition);
                crate::archiving::search_archives_dropped(&shard, &topic, partition);
            }
            let _ = reply.send(shard.partitions.remove(&topic, partition).await);
        }
        ShardRequest::DeleteRecords {
            topic,
            partition,
            offset,
            reply,
        } => {
            let deleted = match shard.partitions.ready(&topic, partition).await {
                Ok(p) => delete_records(&shard, &topic, partition, &p, offset).await,
                Err(e) => Err(e),
            };
            let _ = reply.send(deleted);
        }
        ShardRequest::Release {
            topic,
            partition,
            reply,
        } => {
            if let Some(search) = shard.config.search.as_ref() {
                search.drop_partition(shard.id, &topic, partition);
                crate::archiving::search_archives_dropped(&shard, &topic, partition);
            }
            let _ = reply.send(shard.partitions.release(&topic, partition).await);
        }
        ShardRequest::Load { reply } => {
            let _ = reply.send(shard.load());
        }
        ShardRequest::Open { .. }
        | ShardRequest::MetaApplied { .. }
        | ShardRequest::MetaReset { .. }
        | ShardRequest::Service(_) => {
            unreachable!(
                "the runtime runs opens and meta events inline and hands service requests up"
            )
        }
        ShardRequest::Shutdown { reply } => {
            *shard.stopped_reply.borrow_mut() = Some(reply);
            shard.stopping.notify();
        }
    }
}

/// Counts a partition request in [`Shard::in_flight`] while it runs.
struct InFlight(Rc<Shard>);

impl InFlight {
    fn enter(shard: &Rc<Shard>) -> Self {
        shard.in_flight.set(shard.in_flight.get() + 1);
        InFlight(shard.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

/// Kafka DeleteRecords below `offset` (the high watermark if `None`):
/// the local log start moves, and so does the archives' start when the
/// offset lies below the local start; returns the partition's new start.
async fn delete_records(
    shard: &Rc<Shard>,
    topic: &str,
    partition: u32,
    p: &Rc<Partition>,
    offset: Option<u64>,
) -> ringlog_engine::Result<u64> {
    let offset = offset.unwrap_or_else(|| p.log.log().high_watermark());
    shard
        .partitions
        .guarded(
            topic,
            partition,
            p,
            p.log.log().delete_records_below(offset),
        )
        .await
        .and_then(|deleted| deleted)?;
    if let Some(client) = shard.client() {
        archiving::delete_records_below(&client, topic, partition, offset).await?;
    }
    Ok(archiving::log_start(shard, topic, partition, p))
}

/// The first record at or after `timestamp_ms` and its timestamp, exact
/// per record (the engine decodes the one batch it lands in).
async fn offset_for_timestamp(
    p: &Partition,
    timestamp_ms: i64,
) -> ringlog_engine::Result<Option<FoundOffset>> {
    let found = p.log.offset_for_timestamp(timestamp_ms).await?;
    Ok(found.map(|record| FoundOffset {
        offset: record.offset,
        timestamp: record.timestamp_ms,
    }))
}

/// Records in a batch, from its header (never decoding records).
fn record_count(batch: &[u8]) -> u64 {
    BatchView::parse(batch).map_or(0, |view| view.record_count().max(0) as u64)
}

/// What a produce to one partition did.
struct Produced {
    /// Base offset of the first batch.
    base_offset: u64,
    /// The append time of the first batch, for a LogAppendTime topic.
    log_append_time_ms: Option<i64>,
    /// Records and bytes newly written (retries of an idempotent
    /// producer's batches are not written again).
    records_written: u64,
    bytes_written: u64,
}

/// Appends the batches in order; returns the first base offset. With
/// `durable`, waits for the fdatasync covering the last one (group
/// commit) — for a retried idempotent batch, covering where it was first
/// written, so a retry is never acknowledged before the original is
/// durable; otherwise a background sync makes them readable soon.
async fn produce(
    shard: &Rc<Shard>,
    topic: &str,
    partition: u32,
    p: &Rc<Partition>,
    batches: &[Bytes],
    durable: bool,
    turn: Option<Turn>,
) -> Result<Produced, AppendError> {
    if let Some(turn) = &turn {
        turn.wait().await;
    }
    let mut first = None;
    let mut end = 0;
    let (mut records_written, mut bytes_written) = (0, 0);
    for batch in batches {
        let appended = p.log.append_buffered(batch).await?;
        first.get_or_insert((appended.base_offset, appended.log_append_time_ms));
        end = end.max(appended.last_offset + 1);
        if !appended.duplicate {
            records_written += record_count(batch);
            bytes_written += batch.len() as u64;
            if let Some(search) = shard.config.search.as_ref() {
                if p.log.log().config().search {
                    let batch = AppendedBatch {
                        topic: p.search_topic.get_or_init(|| Arc::from(topic)).clone(),
                        partition,
                        base_offset: appended.base_offset,
                        log_append_time_ms: appended.log_append_time_ms,
                        batch: batch.clone(),
                    };
                    search.feed(shard.id, batch, appended.last_offset);
                }
            }
        }
    }
    // Appended: the next request for the partition may append.
    drop(turn);
    let (base, log_append_time_ms) =
        first.ok_or_else(|| Error::Rejected("produce without record batches".into()))?;
    if durable {
        p.log.log().sync_to(end).await?;
        p.gate.notify();
    } else {
        let (shard, topic, background) = (shard.clone(), topic.to_string(), p.clone());
        glommio::spawn_local(async move {
            let synced = shard
                .partitions
                .guarded(&topic, partition, &background, background.log.log().sync_to(end))
                .await
                .and_then(|synced| synced);
            if let Err(e) = synced {
                tracing::error!(%topic, partition, error = %e, "background sync after acks=0/1 produce failed");
            }
            background.gate.notify();
        })
        .detach();
    }
    Ok(Produced {
        base_offset: base,
        log_append_time_ms,
        records_written,
        bytes_written,
    })
}

/// Reads from `offset`; at the end of the log waits up to `max_wait` for
/// new data. Frame headers are stripped: the result is Kafka batches back
/// to back, copied once into one buffer that can cross threads.
async fn fetch(
    p: &Partition,
    offset: u64,
    max_bytes: usize,
    max_wait: Duration,
) -> ringlog_engine::Result<Bytes> {
    let deadline = Instant::now() + max_wait;
    // Bounded: each round either returns or waits for new data or the deadline.
    loop {
        let seen = p.gate.generation();
        let batches = p.log.log().read(offset, max_bytes).await?;
        if !batches.is_empty() {
            let mut out = BytesMut::with_capacity(batches.payload_bytes());
            for (_, payload) in batches.iter() {
                out.extend_from_slice(payload);
            }
            return Ok(out.freeze());
        }
        let now = Instant::now();
        // A move is taking the partition away: answer now, and the next
        // fetch goes to its new shard.
        if now >= deadline || p.released.get() {
            return Ok(Bytes::new());
        }
        if !p.gate.wait_after(seen, deadline - now).await {
            return Ok(Bytes::new());
        }
    }
}
