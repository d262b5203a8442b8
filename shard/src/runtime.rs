//! Thread-per-core runtime: one glommio executor pinned per shard, joined
//! by a full channel mesh.
//!
//! Layer: runtime (see the crate docs). May import `shard`, `partitions`,
//! `meta_view` and the foundation modules; never the
//! controller, the group coordinator, the handlers or the router, which it
//! reaches only through [`Service`].
//!
//! Why a mesh of bounded channels rather than shared state: a partition's
//! log, its write buffer and its fetch waiters are touched by exactly one
//! thread, so the data path needs no locks and no atomics; what crosses a
//! core is a message (a few pointers and `Bytes`), not a cache line
//! bouncing between writers.

use crate::archiving::{self, Archiving, Lag};
use crate::config::ServerConfig;
use crate::gate::DataGate;
use crate::message::{ServiceRequest, ShardRequest};
use crate::meta_view::MetaView;
use crate::partitions::Partitions;
use crate::search::{LocalSegment, Tend};
use crate::shard::{self, Shard};
use crate::wake;
use futures_lite::future::BoxedLocal;
use futures_lite::StreamExt;
use glommio::channels::channel_mesh::Full;
use glommio::channels::channel_mesh::{MeshBuilder, Senders};
use glommio::{LocalExecutorBuilder, Placement};
use std::cell::{Cell, OnceCell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Messages buffered per pair of shards before a sender waits.
pub const MESH_CHANNEL_SIZE: usize = 1024;
/// How often each shard runs log maintenance (age rolls, interval syncs,
/// retention).
pub const MAINTENANCE_INTERVAL_MS: u64 = 250;

/// How often each shard counts the time its reactor ran (the busy
/// fraction of `ringlog shard list`).
pub const BUSY_SAMPLE_INTERVAL_MS: u64 = 1_000;

/// The layers above the runtime, as one shard's runtime reaches them: it
/// executes partition and metadata requests itself and hands every
/// [`ServiceRequest`] here. One per shard, made by the function given to
/// [`run_pool`] once the shard has joined the mesh. Why a trait: the
/// runtime sits below the controller, the group coordinator and the
/// router, so it may not name them.
pub trait Service {
    /// Runs `request` on this shard (the runtime spawns it as a task).
    fn handle(self: Rc<Self>, request: ServiceRequest) -> BoxedLocal<()>;
}

/// A shard's way to reach every shard, itself included.
pub struct ShardClient {
    local: Rc<Shard>,
    /// This shard's layers above the runtime, set before the mesh is
    /// served.
    service: OnceCell<Rc<dyn Service>>,
    senders: Senders<ShardRequest>,
    /// Mesh peer index of each shard. The mesh numbers peers by glommio
    /// executor id, which executors take as their threads start, so shard
    /// ids and peer ids need not agree.
    peer_of_shard: Vec<usize>,
}

/// (shard id, glommio executor id) of every shard, filled before the mesh
/// join so that, once the join completes, every shard can map shard ids
/// to mesh peers.
type PeerTable = Arc<Mutex<Vec<(usize, usize)>>>;

impl ShardClient {
    /// This shard.
    pub fn local(&self) -> &Rc<Shard> {
        &self.local
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.senders.nr_consumers()
    }

    /// Delivers `request` to shard `to`: run here if it is this shard,
    /// otherwise sent over the mesh (waiting if that channel is full).
    pub async fn send(&self, to: usize, request: ShardRequest) {
        assert!(to < self.shard_count(), "shard {to} out of range");
        if to == self.local.id {
            self.run(request);
        } else if self
            .senders
            .send_to(self.peer_of_shard[to], request)
            .await
            .is_err()
        {
            tracing::error!(to, "shard mesh closed; request dropped");
        }
    }

    /// Runs a request that reached this shard, from the mesh or from this
    /// shard itself.
    fn run(&self, request: ShardRequest) {
        let shard = &self.local;
        match request {
            // Metadata is folded in arrival order, so inline.
            ShardRequest::MetaApplied { offset, event } => shard.meta.apply(offset, &event),
            ShardRequest::MetaReset { state } => shard.meta.reset(*state),
            // Registered inline too, so a request sent after an open finds
            // the partition (and waits for the open).
            ShardRequest::Open {
                topic,
                partition,
                config,
                answer,
                reply,
            } => shard::open(shard, topic, partition, config, answer, reply),
            ShardRequest::Service(request) => {
                let service = self.service.get().expect("set before the mesh is served");
                glommio::spawn_local(service.clone().handle(request)).detach();
            }
            // Every other request runs as its own task so appends from
            // many producers can share one fdatasync (group commit).
            request => {
                glommio::spawn_local(shard::handle(shard.clone(), request)).detach();
            }
        }
    }
}

/// Joins the mesh, makes the shard's [`Service`], serves requests from
/// every peer and runs maintenance. Returns the client this shard uses to
/// reach the others, and its service.
async fn start<S: Service + 'static>(
    id: usize,
    config: Arc<ServerConfig>,
    mesh: MeshBuilder<ShardRequest, Full>,
    peers: PeerTable,
    published: Arc<AtomicU64>,
    service: fn(&Rc<ShardClient>) -> Rc<S>,
) -> (Rc<ShardClient>, Rc<S>) {
    crate::panics::install_hook();
    let executor_id = glommio::executor().id();
    peers.lock().expect("peer table").push((id, executor_id));
    let (senders, mut receivers) = mesh.join().await.expect("join shard mesh");
    // The join returns once every shard has joined, hence registered.
    let peer_of_shard = {
        let mut table = peers.lock().expect("peer table").clone();
        assert_eq!(
            table.len(),
            senders.nr_consumers(),
            "every shard registered before joining"
        );
        table.sort_unstable_by_key(|&(_, executor)| executor);
        let mut peer_of_shard = vec![usize::MAX; table.len()];
        for (peer, (shard, _)) in table.into_iter().enumerate() {
            peer_of_shard[shard] = peer;
        }
        peer_of_shard
    };
    assert_eq!(
        peer_of_shard[id],
        senders.peer_id(),
        "this shard's own mesh peer id"
    );
    // A failure here is a thread that did not start; the target itself
    // was checked before any shard started.
    let cache = crate::tiered::CacheSettings {
        dir: config.data_dir.join("cache").join(id.to_string()),
        // The bound is the pool's; each shard keeps its share (at least a
        // few chunks, so read-ahead has room).
        bytes_max: (config.archive_cache_bytes / config.shards as u64)
            .max(4 * crate::tiered::CHUNK_BYTES),
        read_bytes_per_s: config.archive_read_bytes_per_s.max(1),
    };
    let store = crate::tiered::start_store_with_cache(&config.archive, &id.to_string(), cache)
        .unwrap_or_else(|e| {
            tracing::error!(shard = id, error = %e, "the archive store thread did not start: this shard archives nothing");
            None
        });
    if let (Some(search), Some(store)) = (config.search.as_ref(), store.as_ref()) {
        search.set_store(id, store.clone());
    }
    let local = Rc::new(Shard {
        id,
        partitions: Partitions::new(config.data_dir.clone(), id, config.metrics.clone()),
        stopping: DataGate::default(),
        stopped_reply: RefCell::new(None),
        meta: MetaView::new(published),
        config,
        in_flight: Cell::new(0),
        busy_ns: RefCell::default(),
        throttles: crate::quota::Throttles::default(),
        store,
        archiving: Archiving::default(),
        client: OnceCell::new(),
    });
    let client = Rc::new(ShardClient {
        local: local.clone(),
        service: OnceCell::new(),
        senders,
        peer_of_shard,
    });
    assert!(
        local.client.set(Rc::downgrade(&client)).is_ok(),
        "the client is set once"
    );
    let above = service(&client);
    let erased: Rc<dyn Service> = above.clone();
    assert!(
        client.service.set(erased).is_ok(),
        "the service is set once"
    );
    for (_, mut stream) in receivers.streams() {
        let client = client.clone();
        glommio::spawn_local(async move {
            while let Some(request) = stream.next().await {
                client.run(request);
            }
        })
        .detach();
    }
    let shard = local.clone();
    local.every(Duration::from_millis(BUSY_SAMPLE_INTERVAL_MS), move || {
        shard.sample_busy();
        std::future::ready(())
    });
    let maintaining = client.clone();
    local.every(Duration::from_millis(MAINTENANCE_INTERVAL_MS), move || {
        let client = maintaining.clone();
        async move {
            let shard = client.local();
            let (mut segments, mut lag) = (0, Lag::default());
            for (topic, index, partition) in shard.partitions.all() {
                let maintained = shard
                    .partitions
                    .guarded(&topic, index, &partition, partition.log.log().maintain())
                    .await
                    .and_then(|maintained| maintained);
                if let Err(e) = maintained {
                    tracing::error!(shard = shard.id, %topic, partition = index, error = %e, "log maintenance failed");
                }
                partition.gate.notify();
                segments += partition.log.log().segments().len() as u64;
                let waiting = archiving::tend(&client, &topic, index, &partition).await;
                if let Some(search) = shard.config.search.as_ref() {
                    let log = partition.log.log();
                    let mut below = log.log_start_offset();
                    if log.config().remote_storage {
                        below = below.max(archiving::archived_end(shard, &topic, index));
                    }
                    let local = if log.config().search {
                        archiving::unarchived(&partition, below)
                            .into_iter()
                            .map(|s| LocalSegment {
                                base_offset: s.base_offset,
                                end_offset: s.end_offset,
                                path: s.path,
                                bytes: s.size_bytes,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let tend = Tend {
                        start: archiving::log_start(shard, &topic, index, &partition),
                        below,
                        end: log.high_watermark(),
                        local,
                    };
                    if let Some((seen, archives)) =
                        archiving::search_archives_changed(shard, &topic, index)
                    {
                        if search.archives(shard.id, &topic, index, archives) {
                            archiving::search_archives_sent(shard, &topic, index, seen);
                        }
                    }
                    search.tend(shard.id, &topic, index, tend);
                }
                lag.segments += waiting.segments;
                lag.bytes += waiting.bytes;
            }
            shard.config.metrics.set_segments(shard.id, segments);
            shard.config.metrics.set_archive_lag(shard.id, lag.bytes, lag.segments);
            if let Some(store) = &shard.store {
                shard.config.metrics.set_store_stats(shard.id, &store.stats());
            }
        }
    });
    (client, above)
}

impl ShardClient {
    /// Asks every other shard to close its logs and stop, waits until they
    /// have, then closes this shard's logs.
    pub async fn shutdown_all(&self) {
        let mut replies = Vec::new();
        for to in (0..self.shard_count()).filter(|&to| to != self.local.id) {
            let (reply, done) = wake::channel();
            self.send(to, ShardRequest::Shutdown { reply }).await;
            replies.push(done);
        }
        for done in replies {
            let _ = done.await;
        }
        self.local.stopping.notify();
        self.local.partitions.close_all().await;
    }
}

/// Starts one pinned executor per shard and waits for all of them. Each
/// shard makes its [`Service`] with `service` once it has joined the mesh.
/// Shard 0 runs `main(client, service)` (the controller and router); when
/// it returns, every shard closes its logs and the pool ends. Other shards
/// serve requests until then.
pub fn run_pool<S, T, F, Fut>(
    config: Arc<ServerConfig>,
    service: fn(&Rc<ShardClient>) -> Rc<S>,
    main: F,
) -> std::io::Result<T>
where
    S: Service + 'static,
    T: Send + 'static,
    F: FnOnce(Rc<ShardClient>, Rc<S>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    assert!(config.shards >= 1, "at least one shard");
    if let Some(cpus) = &config.cpus {
        assert_eq!(cpus.len(), config.shards, "one cpu per shard");
    }
    let mesh = MeshBuilder::<ShardRequest, Full>::full(config.shards, MESH_CHANNEL_SIZE);
    let builder = |id: usize| {
        let placement = match &config.cpus {
            Some(cpus) => Placement::Fixed(cpus[id]),
            None => Placement::Unbound,
        };
        let builder = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{id}"))
            .ring_depth(config.ring_depth)
            .io_memory(config.io_memory_bytes);
        match config.spin_before_park_us {
            0 => builder,
            us => builder.spin_before_park(Duration::from_micros(us)),
        }
    };
    let peers: PeerTable = Arc::new(Mutex::new(Vec::with_capacity(config.shards)));
    // The controller's published meta offset (see `MetaView::catch_up`).
    let published = Arc::new(AtomicU64::new(0));
    let mut others = Vec::new();
    for id in 1..config.shards {
        let mesh = mesh.clone();
        let peers = peers.clone();
        let published = published.clone();
        let shard_config = config.clone();
        let handle = builder(id).spawn(move || async move {
            let (client, _) = start(id, shard_config, mesh, peers, published, service).await;
            let shard = client.local().clone();
            // Serve until a shutdown request arrives.
            while shard.stopped_reply.borrow().is_none() {
                let seen = shard.stopping.generation();
                shard
                    .stopping
                    .wait_after(seen, Duration::from_secs(3600))
                    .await;
            }
            shard.partitions.close_all().await;
            let reply = shard.stopped_reply.borrow_mut().take();
            if let Some(reply) = reply {
                let _ = reply.send(());
            }
        })?;
        others.push(handle);
    }
    let first = builder(0).spawn(move || async move {
        let (client, above) = start(0, config.clone(), mesh, peers, published, service).await;
        let out = main(client.clone(), above).await;
        client.shutdown_all().await;
        out
    })?;
    let out = first
        .join()
        .map_err(|e| std::io::Error::other(format!("shard 0 failed: {e:?}")))?;
    for handle in others {
        handle
            .join()
            .map_err(|e| std::io::Error::other(format!("shard failed: {e:?}")))?;
    }
    Ok(out)
}
