//! The controller: the one writer of the metadata log, on shard 0.
//!
//! Layer: controller, with the group coordinator above the runtime (see the
//! crate docs). May import the runtime and every layer below it; never the
//! handlers or the router. The admin handlers call it, on its shard; it
//! answers with outcomes, never with Kafka responses.
//!
//! Why a single writer: every metadata change (topic created, partition
//! placed, config changed) must be validated against the state it applies
//! to and logged in that order (see `ringlog_engine::meta`). One task
//! owner on one core gives that order without locks; routers on any core
//! send admin work here over the mesh and read metadata from their local
//! replica ([`crate::meta_view`]).
//!
//! Every change goes: validate, append and fdatasync the event, broadcast
//! it to every shard's replica, then act on the owning shards (open,
//! reconfigure or remove partition logs). A crash between the event and
//! the action is repaired at start-up: partitions of existing topics are
//! opened (and unplaced ones placed), directories of deleted topics are
//! removed.
//!
//! ## Fast topic creation
//!
//! * **Answer when the metadata is durable; create logs on first use.**
//!   The owner registers each new partition the moment the open request
//!   arrives, and the first request that needs its log creates it
//!   ([`crate::partitions`]); the controller waits only for those
//!   registrations (one mesh round trip) before it ships the events to the
//!   replicas. So any router that can see the placement reaches an owner
//!   that already knows the partition, and a request there gets the log
//!   created or waits for it instead of failing. Durability is unchanged: the event is the
//!   truth, and start-up opens every partition of every topic.
//! * **Creates run concurrently and share fdatasyncs.** Admin operations
//!   follow a reader/writer rule on one semaphore of
//!   [`ADMIN_CREATES_CONCURRENT_MAX`] permits: a create takes one, every
//!   other admin operation (delete, create partitions, config changes)
//!   takes all of them. Creates validate and place against the meta log's
//!   *tail* state (durable plus appended, not yet synced), and placement
//!   is computed under the meta log's append permit
//!   ([`MetaLog::append_built`]), so concurrent creates stay balanced and
//!   of two creates of one name exactly one is logged; the other answers
//!   TOPIC_ALREADY_EXISTS. The semaphore is FIFO, so a waiting exclusive
//!   operation is not starved by later creates.
//! * **Why deletes are exclusive.** A delete racing a create of the same
//!   name must never remove the new topic's directory: the delete starts
//!   only after every create before it has registered its opens, and the
//!   owner's remove waits for an open in flight; a create after it starts
//!   only once every remove is done.

mod acls;
mod archives;
mod assignment;
pub mod balance;
pub mod moves;
mod producer_ids;
mod quotas;
mod users;

use crate::config::CoreBalancing;
use crate::ids::random_uuid;
use crate::message::{
    AdminError, AdminResult, ControllerReply, ControllerRequest, OpenReply, ShardRequest,
};
use crate::runtime::ShardClient;
use crate::topic_config;
use crate::wake;
use assignment::requested_partitions;
use futures_channel::oneshot;
use glommio::sync::Semaphore;
use kafka_protocol::ResponseError;
use producer_ids::ProducerIdCursor;
use ringlog_engine::io::dma::DmaStorage;
use ringlog_engine::meta::{
    check_topic_name, MetaConfig, MetaEvent, MetaLog, MetaState, PartitionPlaced, PartitionsAdded,
    TopicConfigChanged, TopicCreated, TopicDeleted, PARTITIONS_MAX,
};
use ringlog_engine::{Clock, Error, LogConfig};
use ringlog_protocol::errors::{response_error_with, Rejection};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Topic creations that run at once. Each holds one admin permit; the
/// other admin operations take all of them (see the module docs).
pub const ADMIN_CREATES_CONCURRENT_MAX: u64 = 256;

/// A created (or, validating only, creatable) topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Created {
    /// The meta offset replicas must reach.
    pub applied: u64,
    /// Its partition count.
    pub partitions: u32,
}

/// The controller of the pool. Lives on shard 0.
pub struct Controller {
    meta: MetaLog<DmaStorage>,
    client: Rc<ShardClient>,
    data_dir: PathBuf,
    log_defaults: LogConfig,
    auto_create_partitions: u32,
    /// The reader/writer rule of admin operations: a create holds one
    /// permit, anything else all [`ADMIN_CREATES_CONCURRENT_MAX`].
    admin: Semaphore,
    /// Where InitProducerId hands out the next producer id.
    producer_ids: ProducerIdCursor,
    /// Partitions being moved between shards (see [`moves`]).
    moving: RefCell<BTreeSet<(String, u32)>>,
    /// Whether a rebalance is running.
    rebalancing: Cell<bool>,
    /// When partitions are re-placed on their own.
    core_balancing: CoreBalancing,
}

impl Controller {
    /// Opens the meta log at `<data>/meta`, repairs what a crash between an
    /// event and its action left behind, hands every shard its replica and
    /// opens every partition on its owner.
    pub async fn start(
        client: Rc<ShardClient>,
        data_dir: &Path,
        log_defaults: LogConfig,
        auto_create_partitions: u32,
        core_balancing: CoreBalancing,
    ) -> Result<Rc<Controller>, Error> {
        let meta = MetaLog::open(
            DmaStorage,
            data_dir.join("meta"),
            MetaConfig::default(),
            Clock::System,
        )
        .await?;
        let controller = Rc::new(Controller {
            meta,
            client,
            data_dir: data_dir.to_path_buf(),
            log_defaults,
            auto_create_partitions,
            admin: Semaphore::new(ADMIN_CREATES_CONCURRENT_MAX),
            producer_ids: Default::default(),
            moving: RefCell::default(),
            rebalancing: Cell::new(false),
            core_balancing,
        });
        controller.remove_orphans()?;
        let state = controller.meta.state();
        controller
            .client
            .local()
            .meta
            .publish(state.applied_offset());
        for shard in 0..controller.client.shard_count() {
            let state = Box::new(state.clone());
            controller
                .client
                .send(shard, ShardRequest::MetaReset { state })
                .await;
        }
        // Placed nowhere (a crash between a create and its placements), or
        // on a shard this start does not have (`--shards` lowered since):
        // such a partition gets a placement event onto a shard that exists.
        // Its files stay where they are, under `<data>/topics`, which every
        // shard reads, so no data is copied.
        let shards = controller.client.shard_count();
        let unplaced: Vec<(String, u32)> = state
            .topics()
            .flat_map(|(name, topic)| {
                topic
                    .partitions
                    .iter()
                    .enumerate()
                    .filter(|(_, shard)| shard.is_none_or(|s| s as usize >= shards))
                    .map(move |(p, _)| (name.to_string(), p as u32))
            })
            .collect();
        for (topic, partition) in unplaced {
            let was = controller
                .meta
                .with_state(|s| s.placement(&topic, partition));
            if let Some(was) = was {
                tracing::warn!(
                    topic, partition, shard = was, shards,
                    "the partition's shard does not exist in this start (fewer --shards than before): placing it again"
                );
            }
            let (first, placed) = controller
                .meta
                .append_built(|tail| placements(tail, shards, &topic, partition..partition + 1))
                .await?;
            controller.ship(first, &placed).await;
        }
        controller.balance_at_start().await?;
        let topics: Vec<String> = controller
            .meta
            .with_state(|s| s.topics().map(|(n, _)| n.to_string()).collect());
        for topic in topics {
            let count = controller.meta.with_state(|s| s.partition_count(&topic));
            let count = count.expect("topic listed above");
            controller
                .open_partitions(&topic, 0..count, OpenReply::Opened)
                .await
                .map_err(|e| Error::Rejected(format!("opening topic {topic}: {}", e.message)))?;
        }
        tracing::info!(
            topics = controller.meta.with_state(MetaState::topic_count),
            applied_offset = controller.meta.applied_offset(),
            "controller started"
        );
        if let Some(store) = controller.client.local().store.clone() {
            let sweeping = controller.clone();
            glommio::spawn_local(async move { sweeping.sweep_archives(&store).await }).detach();
        }
        Ok(controller)
    }

    /// Closes the meta log (final fdatasync).
    pub async fn close(self: Rc<Self>) -> Result<(), Error> {
        match Rc::try_unwrap(self) {
            Ok(controller) => controller.meta.close().await,
            Err(_) => Ok(()), // a request still holds it; every event is already durable
        }
    }

    /// Removes directories under `<data>/topics` that the metadata does
    /// not know: topics deleted (or partitions never created) before a
    /// crash let the controller remove them.
    fn remove_orphans(&self) -> Result<(), Error> {
        let topics_dir = self.data_dir.join("topics");
        let entries = match std::fs::read_dir(&topics_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&topics_dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&topics_dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let count = self.meta.with_state(|s| s.partition_count(&name));
            let path = entry.path();
            let Some(count) = count else {
                tracing::warn!(path = %path.display(), "removing the directory of a deleted topic");
                std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                continue;
            };
            for partition in std::fs::read_dir(&path).map_err(|e| Error::io(&path, e))? {
                let partition = partition.map_err(|e| Error::io(&path, e))?;
                let index = partition.file_name().to_string_lossy().parse::<u32>();
                if !matches!(index, Ok(i) if i < count) {
                    let dir = partition.path();
                    tracing::warn!(path = %dir.display(), "removing a partition directory the metadata does not know");
                    std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                }
            }
        }
        Ok(())
    }

    /// Appends `event` durably and ships it to every shard's replica.
    /// Returns the offset every replica must reach to see it.
    async fn append(&self, event: MetaEvent) -> Result<u64, Error> {
        self.append_all(vec![event]).await
    }

    /// Appends `events` with one fdatasync and ships them to every shard's
    /// replica. Returns the offset every replica must reach to see them.
    async fn append_all(&self, events: Vec<MetaEvent>) -> Result<u64, Error> {
        let first = self.meta.append_all(&events).await?;
        Ok(self.ship(first, &events).await)
    }

    /// Publishes durable `events` (the first at offset `first`) for
    /// routers' catch-up and sends them to every shard's replica. Returns
    /// the offset every replica must reach to see them.
    async fn ship(&self, first: u64, events: &[MetaEvent]) -> u64 {
        let end = first + events.len() as u64;
        self.client.local().meta.publish(end);
        for (offset, event) in (first..).zip(events) {
            for shard in 0..self.client.shard_count() {
                if shard == self.client.local().id {
                    self.client.local().meta.apply(offset, event);
                } else {
                    let event = event.clone();
                    self.client
                        .send(shard, ShardRequest::MetaApplied { offset, event })
                        .await;
                }
            }
        }
        end
    }

    /// The topic's log settings.
    fn topic_log_config(&self, topic: &str) -> AdminResult<LogConfig> {
        let overrides = self
            .meta
            .with_state(|s| s.topic(topic).map(|t| t.configs.clone()))
            .ok_or_else(|| unknown_topic(topic))?;
        topic_config::log_config(&self.log_defaults, &overrides)
            .map_err(|m| AdminError::new(ResponseError::InvalidConfig, m))
    }

    /// The owner of each of `partitions` in the durable state.
    fn owners(
        &self,
        topic: &str,
        partitions: std::ops::Range<u32>,
    ) -> AdminResult<Vec<(u32, u32)>> {
        partitions
            .map(|partition| {
                let owner = self.meta.with_state(|s| s.placement(topic, partition));
                owner.map(|owner| (partition, owner)).ok_or_else(|| {
                    AdminError::new(
                        ResponseError::UnknownServerError,
                        format!("partition {topic}-{partition} is not placed"),
                    )
                })
            })
            .collect()
    }

    /// Sends one request per (partition, owner) and waits for every reply;
    /// the first failure is returned.
    async fn on_owners<T>(
        &self,
        topic: &str,
        owners: Vec<(u32, u32)>,
        request: impl Fn(u32, oneshot::Sender<Result<T, Error>>) -> ShardRequest,
    ) -> AdminResult {
        let mut replies = Vec::with_capacity(owners.len());
        for (partition, owner) in owners {
            let (reply, done) = wake::channel();
            self.client
                .send(owner as usize, request(partition, reply))
                .await;
            replies.push((partition, done));
        }
        let mut first_error = None;
        for (partition, done) in replies {
            let outcome = done.await.unwrap_or_else(|_| {
                Err(Error::Rejected(format!(
                    "shard dropped the request for {topic}-{partition}"
                )))
            });
            if let Err(e) = outcome {
                tracing::error!(%topic, partition, error = %e, "partition operation failed");
                first_error.get_or_insert_with(|| AdminError::engine(&e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Opens `partitions` of `topic` on their owners (placed in the
    /// durable state), answered as `answer` says.
    async fn open_partitions(
        &self,
        topic: &str,
        partitions: std::ops::Range<u32>,
        answer: OpenReply,
    ) -> AdminResult {
        let config = self.topic_log_config(topic)?;
        let owners = self.owners(topic, partitions)?;
        self.open_on(topic, owners, config, answer).await
    }

    async fn open_on(
        &self,
        topic: &str,
        owners: Vec<(u32, u32)>,
        config: LogConfig,
        answer: OpenReply,
    ) -> AdminResult {
        self.on_owners(topic, owners, |partition, reply| ShardRequest::Open {
            topic: topic.to_string(),
            partition,
            config: config.clone(),
            answer,
            reply,
        })
        .await
    }

    /// Appends `first` and the placement of `partitions` (computed from
    /// the tail state under the append permit) with one fdatasync, has the
    /// owners register the partitions, then ships the events
    /// to the replicas: a router that sees a placement reaches an owner
    /// that knows the partition. A refused `first` maps to `rejected`.
    async fn create_and_place(
        &self,
        first: MetaEvent,
        topic: &str,
        partitions: std::ops::Range<u32>,
        config: LogConfig,
        rejected: Rejection,
    ) -> AdminResult<u64> {
        let shards = self.client.shard_count();
        let (offset, events) = self
            .meta
            .append_built(|tail| {
                let mut events = vec![first];
                events.extend(placements(tail, shards, topic, partitions));
                events
            })
            .await
            .map_err(|e| AdminError::new(response_error_with(&e, rejected), e.to_string()))?;
        let owners = events
            .iter()
            .filter_map(|event| match event {
                MetaEvent::PartitionPlaced(placed) => Some((placed.partition, placed.shard)),
                _ => None,
            })
            .collect();
        // Shipped whatever the registrations say: the events are durable,
        // and every replica must see them.
        let registered = self
            .open_on(topic, owners, config, OpenReply::Registered)
            .await;
        let applied = self.ship(offset, &events).await;
        registered.map(|()| applied)
    }

    /// Creates a topic and opens its partitions. With `validate_only`,
    /// only checks. The checks run in Kafka's order: name, existence,
    /// configs, then the layout: `partitions` and `replication_factor`
    /// (-1: the defaults), or a manual replica assignment (`assignments`,
    /// the brokers of each partition; both counts then -1).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignments: &[(i32, Vec<i32>)],
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> AdminResult<Created> {
        let _permit = self.admin.acquire_permit(1).await.expect("never closed");
        check_topic_name(name)
            .map_err(|m| AdminError::new(ResponseError::InvalidTopicException, m))?;
        // The tail state, so a create of a name whose create is still
        // syncing is refused here, the normal path.
        if self.meta.with_tail_state(|s| s.topic(name).is_some()) {
            return Err(AdminError::new(
                ResponseError::TopicAlreadyExists,
                format!("topic {name:?} already exists"),
            ));
        }
        let config = topic_config::log_config(&self.log_defaults, &configs)
            .map_err(|m| AdminError::new(ResponseError::InvalidConfig, m))?;
        let partitions = requested_partitions(
            partitions,
            replication_factor,
            assignments,
            self.auto_create_partitions,
        )?;
        if validate_only {
            return Ok(Created {
                applied: self.meta.applied_offset(),
                partitions,
            });
        }
        let created = MetaEvent::TopicCreated(TopicCreated {
            name: name.to_string(),
            topic_id: random_uuid(),
            partitions,
            configs: configs.into_iter().collect(),
        });
        let applied = self
            .create_and_place(created, name, 0..partitions, config, Rejection::TopicExists)
            .await?;
        tracing::info!(topic = name, partitions, "topic created");
        Ok(Created {
            applied,
            partitions,
        })
    }

    /// Deletes a topic: the event first, then each partition's directory.
    pub async fn delete_topic(&self, name: &str) -> AdminResult<u64> {
        let _permit = self.exclusive().await;
        let owners: Vec<(u32, Option<u32>)> = self
            .meta
            .with_state(|s| {
                s.topic(name).map(|t| {
                    t.partitions
                        .iter()
                        .enumerate()
                        .map(|(p, shard)| (p as u32, *shard))
                        .collect()
                })
            })
            .ok_or_else(|| unknown_topic(name))?;
        let archived: Vec<String> = self.meta.with_state(|s| {
            s.all_archives()
                .filter(|(topic, _, _)| *topic == name)
                .flat_map(|(_, _, a)| a.archives.values().map(|r| r.key.clone()))
                .collect()
        });
        let applied = self
            .append(MetaEvent::TopicDeleted(TopicDeleted {
                name: name.to_string(),
            }))
            .await
            .map_err(|e| AdminError::engine(&e))?;
        if let Some(store) = self.client.local().store.clone() {
            self.delete_archives(&store, archived).await;
        }
        let mut replies = Vec::new();
        for (partition, owner) in owners {
            let Some(owner) = owner else { continue };
            let (reply, done) = wake::channel();
            self.client
                .send(
                    owner as usize,
                    ShardRequest::Remove {
                        topic: name.to_string(),
                        partition,
                        reply,
                    },
                )
                .await;
            replies.push(done);
        }
        for done in replies {
            if let Ok(Err(e)) = done.await {
                // The topic is gone from the metadata; the next start-up
                // removes what is left of the directory.
                tracing::error!(topic = name, error = %e, "removing a deleted partition failed");
            }
        }
        let dir = self.data_dir.join("topics").join(name);
        if let Err(e) = std::fs::remove_dir(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %dir.display(), error = %e, "topic directory not removed");
            }
        }
        tracing::info!(topic = name, "topic deleted");
        Ok(applied)
    }

    /// Grows a topic to `total` partitions.
    pub async fn add_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> AdminResult<u64> {
        let _permit = self.exclusive().await;
        let current = self
            .meta
            .with_state(|s| s.partition_count(name))
            .ok_or_else(|| unknown_topic(name))?;
        if total < 0 || total as u32 <= current || total as u32 > PARTITIONS_MAX {
            return Err(AdminError::new(
                ResponseError::InvalidPartitions,
                format!("topic {name:?} has {current} partitions; the new count {total} must be larger (at most {PARTITIONS_MAX})"),
            ));
        }
        if validate_only {
            return Ok(self.meta.applied_offset());
        }
        let added = MetaEvent::PartitionsAdded(PartitionsAdded {
            name: name.to_string(),
            new_total: total as u32,
        });
        let config = self.topic_log_config(name)?;
        let applied = self
            .create_and_place(
                added,
                name,
                current..total as u32,
                config,
                Rejection::InvalidPartitions,
            )
            .await?;
        tracing::info!(topic = name, from = current, to = total, "partitions added");
        Ok(applied)
    }

    /// Changes a topic's config overrides (with `replace`, the keys that
    /// `changes` does not name go back to their defaults: legacy
    /// AlterConfigs), then applies the result to every open partition.
    /// The whole result is checked before anything is logged.
    pub async fn change_configs(
        &self,
        name: &str,
        changes: &[(String, topic_config::Change)],
        replace: bool,
        validate_only: bool,
    ) -> AdminResult<u64> {
        let _permit = self.exclusive().await;
        let stored = self
            .meta
            .with_state(|s| s.topic(name).map(|t| t.configs.clone()))
            .ok_or_else(|| unknown_topic(name))?;
        let invalid = |m| AdminError::new(ResponseError::InvalidConfig, m);
        let wanted = topic_config::altered(&stored, changes, replace).map_err(invalid)?;
        let config = topic_config::log_config(&self.log_defaults, &wanted).map_err(invalid)?;
        let set: Vec<(String, String)> = wanted
            .iter()
            .filter(|(key, value)| stored.get(*key) != Some(*value))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let remove: Vec<String> = stored
            .keys()
            .filter(|key| !wanted.contains_key(*key))
            .cloned()
            .collect();
        if validate_only || (set.is_empty() && remove.is_empty()) {
            return Ok(self.meta.applied_offset());
        }
        let applied = self
            .append(MetaEvent::TopicConfigChanged(TopicConfigChanged {
                name: name.to_string(),
                set,
                remove,
            }))
            .await
            .map_err(|e| AdminError::engine(&e))?;
        let count = self
            .meta
            .with_state(|s| s.partition_count(name))
            .unwrap_or(0);
        let owners = self.owners(name, 0..count)?;
        self.on_owners(name, owners, |partition, reply| ShardRequest::Reconfigure {
            topic: name.to_string(),
            partition,
            config: config.clone(),
            reply,
        })
        .await?;
        tracing::info!(topic = name, "topic configs changed");
        Ok(applied)
    }

    /// Every admin permit: no create runs meanwhile (see the module docs).
    async fn exclusive(&self) -> glommio::sync::Permit<'_> {
        self.admin
            .acquire_permit(ADMIN_CREATES_CONCURRENT_MAX)
            .await
            .expect("never closed")
    }

    /// Executes a request routed to the controller.
    pub async fn handle(self: Rc<Self>, request: ControllerRequest) -> ControllerReply {
        let done = |applied_offset| ControllerReply {
            failed: None,
            producer_id: None,
            applied_offset,
        };
        match request {
            ControllerRequest::AutoCreate { topics } => {
                let mut applied_offset = self.meta.applied_offset();
                for topic in topics {
                    match self
                        .create_topic(&topic, -1, -1, &[], BTreeMap::new(), false)
                        .await
                    {
                        Ok(created) => applied_offset = created.applied,
                        Err(e) if e.error == ResponseError::TopicAlreadyExists => {}
                        Err(e) => {
                            tracing::warn!(%topic, error = %e.message, "auto-create failed")
                        }
                    }
                }
                done(applied_offset)
            }
            ControllerRequest::Append { event } => match self.append(*event).await {
                Ok(applied_offset) => done(applied_offset),
                Err(e) => {
                    tracing::warn!(error = %e, "metadata append refused");
                    ControllerReply {
                        failed: Some(AdminError::engine(&e)),
                        ..done(self.meta.applied_offset())
                    }
                }
            },
            ControllerRequest::AllocateProducerId => {
                let allocated = self.allocate_producer_id().await;
                if let Err(e) = &allocated {
                    tracing::error!(error = %e.message, "producer id allocation failed");
                }
                ControllerReply {
                    producer_id: allocated.as_ref().ok().copied(),
                    failed: allocated.err(),
                    applied_offset: self.meta.applied_offset(),
                }
            }
        }
    }

    /// A topic's partition count.
    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.meta.with_state(|s| s.partition_count(topic))
    }

    /// A topic's id.
    pub fn topic_id(&self, topic: &str) -> Option<[u8; 16]> {
        self.meta.with_state(|s| s.topic(topic).map(|t| t.topic_id))
    }

    /// The name of the topic with this id.
    pub fn topic_name_by_id(&self, id: &[u8; 16]) -> Option<String> {
        self.meta
            .with_state(|s| s.topic_by_id(id).map(|(name, _)| name.to_string()))
    }

    /// The server's log settings, under every topic's overrides.
    pub fn log_defaults(&self) -> &LogConfig {
        &self.log_defaults
    }

    /// The applied offset of the meta log.
    pub fn applied_offset(&self) -> u64 {
        self.meta.applied_offset()
    }
}

/// Placement events for `partitions` of `topic` against `state` (the
/// tail state): each on the shard with the fewest partitions (lowest id on
/// ties), counting the ones placed before it, so partitions spread evenly;
/// placement is recorded, never recomputed.
fn placements(
    state: &MetaState,
    shards: usize,
    topic: &str,
    partitions: std::ops::Range<u32>,
) -> Vec<MetaEvent> {
    let mut load = vec![0u64; shards];
    for (_, t) in state.topics() {
        // A shard beyond `shards` (a placement from a start with more
        // shards, about to be re-placed) carries no load here.
        for shard in t.partitions.iter().flatten() {
            if let Some(n) = load.get_mut(*shard as usize) {
                *n += 1;
            }
        }
    }
    partitions
        .map(|partition| {
            let (shard, _) = load
                .iter()
                .enumerate()
                .min_by_key(|&(id, &n)| (n, id))
                .expect("at least one shard");
            load[shard] += 1;
            MetaEvent::PartitionPlaced(PartitionPlaced {
                topic: topic.to_string(),
                partition,
                shard: shard as u32,
            })
        })
        .collect()
}

fn unknown_topic(name: &str) -> AdminError {
    AdminError::new(
        ResponseError::UnknownTopicOrPartition,
        format!("topic {name:?} does not exist"),
    )
}
