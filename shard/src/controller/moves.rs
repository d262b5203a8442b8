//! Moving partitions between shards: one live move, a rebalance of many,
//! and the automatic balancing of `--core-balancing`.
//!
//! Layer: controller (see the crate docs).
//!
//! ## A move, step by step, and what a crash at each step leaves
//!
//! Every shard reads and writes the same `<data>/topics/<topic>/<p>`
//! directory, so a move hands over files, never copies them:
//!
//! 1. **Release.** The source shard refuses new requests for the
//!    partition, lets the running ones finish (appends with their
//!    fdatasync), writes the producer snapshot and closes the log
//!    ([`crate::partitions::Partitions::release`]). Crash after it
//!    (`move-released`): the placement event is not written, so the
//!    restart opens the partition on the source again.
//! 2. **Record.** The controller appends the `PartitionPlaced` event
//!    durably (not yet shipped to the replicas). Crash after it
//!    (`move-recorded`): the restart reads the event and opens the
//!    partition on the target.
//! 3. **Open.** The target shard opens the log; recovery is a no-op after
//!    the clean close, and the producer state comes from the snapshot.
//!    Crash after it (`move-opened`): as after step 2.
//! 4. **Ship.** The event goes to every shard's metadata replica, and
//!    routers send the partition's requests to the target.
//!
//! So after a crash at any step exactly one shard owns the partition (the
//! meta log says which), and every acknowledged record is in its files.
//!
//! ## Requests during a move
//!
//! A request that reaches the source between steps 1 and 4 is answered
//! NOT_LEADER_OR_FOLLOWER. Kafka clients treat that as a leader change:
//! they refresh metadata and retry the request. Holding requests and
//! forwarding them would be invisible to clients, but an idempotent
//! producer pipelines up to five batches per partition, and a held batch
//! forwarded after a later one reached the target directly would arrive
//! out of sequence; answered with a retriable error, the client resends
//! its batches in order itself.

use super::balance::{self, Plan};
use super::Controller;
use crate::admin::{
    AdminAnswer, AdminFailure, AdminFailureKind, AdminOutcome, AdminRequest, BalanceBy, Moved,
    Rebalanced, ShardLoad,
};
use crate::config::CoreBalancing;
use crate::crash;
use crate::message::{OpenReply, ShardRequest};
use crate::wake;
use ringlog_engine::meta::{MetaEvent, PartitionPlaced, ShardsStarted};
use ringlog_engine::Error;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Crash point after the source shard closed the log (see the module docs).
pub const CRASH_MOVE_RELEASED: &str = "move-released";
/// Crash point after the placement event is durable.
pub const CRASH_MOVE_RECORDED: &str = "move-recorded";
/// Crash point after the target shard opened the log.
pub const CRASH_MOVE_OPENED: &str = "move-opened";

/// How often `--core-balancing continuous` looks at the shards' load.
pub const BALANCE_CHECK_INTERVAL_MS: u64 = 1_000;
/// Load below which a pool is idle and never rebalanced automatically
/// (bytes per second over all shards): at a trickle, differences are
/// noise.
pub const BALANCE_LOAD_FLOOR_BYTES_PER_S: f64 = 1_000_000.0;

/// Claims one partition for a move; dropped, frees it.
struct MoveClaim<'a> {
    controller: &'a Controller,
    key: (String, u32),
}

impl Drop for MoveClaim<'_> {
    fn drop(&mut self) {
        self.controller.moving.borrow_mut().remove(&self.key);
    }
}

fn failure(kind: AdminFailureKind, message: impl Into<String>) -> AdminFailure {
    AdminFailure::new(kind, message)
}

impl Controller {
    /// Executes an operator's call.
    pub async fn admin_call(self: Rc<Self>, request: AdminRequest) -> AdminOutcome {
        match request {
            AdminRequest::Shards => Ok(AdminAnswer::Shards(self.shard_loads().await)),
            AdminRequest::Move {
                topic,
                partition,
                to_shard,
            } => self
                .move_partition(&topic, partition, to_shard)
                .await
                .map(AdminAnswer::Moved),
            AdminRequest::Rebalance { by, dry_run } => self
                .rebalance(by, dry_run)
                .await
                .map(AdminAnswer::Rebalanced),
        }
    }

    /// Every shard's load and partitions, by shard id.
    pub async fn shard_loads(&self) -> Vec<ShardLoad> {
        let mut replies = Vec::with_capacity(self.client.shard_count());
        for shard in 0..self.client.shard_count() {
            let (reply, load) = wake::channel();
            self.client.send(shard, ShardRequest::Load { reply }).await;
            replies.push((shard, load));
        }
        let mut loads = Vec::with_capacity(replies.len());
        for (shard, load) in replies {
            loads.push(load.await.unwrap_or_else(|_| ShardLoad {
                shard: shard as u32,
                cpu: None,
                partitions: Vec::new(),
                busy: 0.0,
                in_flight: 0,
            }));
        }
        loads
    }

    /// Moves `topic`-`partition` to shard `to` live (see the module docs).
    pub async fn move_partition(
        &self,
        topic: &str,
        partition: u32,
        to: u32,
    ) -> Result<Moved, AdminFailure> {
        let shards = self.client.shard_count();
        if to as usize >= shards {
            return Err(failure(
                AdminFailureKind::BadRequest,
                format!(
                    "shard {to} does not exist: this broker runs {shards} shard(s), 0..={}",
                    shards - 1
                ),
            ));
        }
        self.check_partition(topic, partition)?;
        let key = (topic.to_string(), partition);
        if !self.moving.borrow_mut().insert(key.clone()) {
            return Err(failure(
                AdminFailureKind::Conflict,
                format!("a move of {topic}-{partition} is already running"),
            ));
        }
        let _claim = MoveClaim {
            controller: self,
            key,
        };
        // Shared with topic creations; deletes and config changes wait
        // for the move, and it waits for them.
        let _permit = self.admin.acquire_permit(1).await.expect("never closed");
        self.check_partition(topic, partition)?;
        let from = self
            .meta
            .with_state(|s| s.placement(topic, partition))
            .ok_or_else(|| {
                failure(
                    AdminFailureKind::Internal,
                    format!("partition {topic}-{partition} is not placed"),
                )
            })?;
        if from == to {
            return Err(failure(
                AdminFailureKind::BadRequest,
                format!("{topic}-{partition} is already on shard {to}"),
            ));
        }
        let config = self
            .topic_log_config(topic)
            .map_err(|e| failure(AdminFailureKind::Internal, e.message))?;
        let started = Instant::now();
        let (reply, released) = wake::channel();
        let release = ShardRequest::Release {
            topic: topic.to_string(),
            partition,
            reply,
        };
        self.client.send(from as usize, release).await;
        match released.await {
            Ok(Ok(_)) => {}
            Ok(Err(Error::Rejected(why))) => {
                return Err(failure(AdminFailureKind::Conflict, why));
            }
            Ok(Err(e)) => return Err(failure(AdminFailureKind::Internal, e.to_string())),
            Err(_) => {
                return Err(failure(
                    AdminFailureKind::Unavailable,
                    format!("shard {from} stopped before releasing {topic}-{partition}"),
                ))
            }
        }
        crash::point(CRASH_MOVE_RELEASED);
        let events = vec![MetaEvent::PartitionPlaced(PartitionPlaced {
            topic: topic.to_string(),
            partition,
            shard: to,
        })];
        let first = match self.meta.append_all(&events).await {
            Ok(first) => first,
            Err(e) => {
                // Not recorded: the partition stays on the source.
                tracing::error!(%topic, partition, error = %e, "recording a move failed; the partition stays where it was");
                let back = self
                    .open_on(topic, vec![(partition, from)], config, OpenReply::Opened)
                    .await;
                if let Err(back) = back {
                    tracing::error!(%topic, partition, error = %back.message, "reopening the partition on its shard failed");
                }
                return Err(failure(
                    AdminFailureKind::Internal,
                    format!("recording the move of {topic}-{partition} failed: {e}"),
                ));
            }
        };
        crash::point(CRASH_MOVE_RECORDED);
        let opened = self
            .open_on(topic, vec![(partition, to)], config, OpenReply::Opened)
            .await;
        crash::point(CRASH_MOVE_OPENED);
        // Shipped whatever the open says: the event is durable, and the
        // target's entry answers for the partition (a failed open with
        // KAFKA_STORAGE_ERROR naming the cause).
        self.ship(first, &events).await;
        let unavailable = started.elapsed();
        if let Err(e) = opened {
            return Err(failure(
                AdminFailureKind::Internal,
                format!(
                    "{topic}-{partition} moved to shard {to}, but opening its log there failed: {}",
                    e.message
                ),
            ));
        }
        self.client
            .local()
            .config
            .metrics
            .partition_moved(unavailable);
        tracing::info!(
            %topic,
            partition,
            from_shard = from,
            to_shard = to,
            unavailable_ms = unavailable.as_secs_f64() * 1e3,
            "partition moved"
        );
        Ok(Moved {
            topic: topic.to_string(),
            partition,
            from_shard: from,
            to_shard: to,
            unavailable_ms: unavailable.as_secs_f64() * 1e3,
        })
    }

    fn check_partition(&self, topic: &str, partition: u32) -> Result<(), AdminFailure> {
        let count = self
            .meta
            .with_state(|s| s.partition_count(topic))
            .ok_or_else(|| {
                failure(
                    AdminFailureKind::NotFound,
                    format!("topic {topic:?} does not exist"),
                )
            })?;
        if partition >= count {
            return Err(failure(
                AdminFailureKind::NotFound,
                format!("topic {topic:?} has {count} partition(s); partition {partition} does not exist"),
            ));
        }
        Ok(())
    }

    /// Plans moves that even out `by` and, unless `dry_run`, makes them in
    /// order. A move that fails stops the rebalance; the answer names it
    /// and the moves made before it.
    pub async fn rebalance(
        &self,
        by: BalanceBy,
        dry_run: bool,
    ) -> Result<Rebalanced, AdminFailure> {
        if self.rebalancing.replace(true) {
            return Err(failure(
                AdminFailureKind::Conflict,
                "a rebalance is already running",
            ));
        }
        let outcome = self.rebalance_once(by, dry_run).await;
        self.rebalancing.set(false);
        outcome
    }

    async fn rebalance_once(
        &self,
        by: BalanceBy,
        dry_run: bool,
    ) -> Result<Rebalanced, AdminFailure> {
        let Plan {
            moves,
            before,
            after,
        } = balance::plan(&self.shard_loads().await, by);
        let mut moved = Vec::with_capacity(moves.len());
        if !dry_run {
            for (done, planned) in moves.iter().enumerate() {
                let made = self
                    .move_partition(&planned.topic, planned.partition, planned.to_shard)
                    .await;
                match made {
                    Ok(one) => moved.push(one),
                    Err(e) => {
                        return Err(failure(
                            e.kind,
                            format!(
                                "rebalance stopped after {done} of {} moves: moving {}-{} to shard {}: {}",
                                moves.len(),
                                planned.topic,
                                planned.partition,
                                planned.to_shard,
                                e.message
                            ),
                        ))
                    }
                }
            }
        }
        tracing::info!(?by, dry_run, moves = moves.len(), "rebalance planned");
        Ok(Rebalanced {
            by,
            dry_run,
            before,
            after,
            plan: moves,
            moved,
        })
    }

    /// `--core-balancing on-change` (and `continuous`) at start, before any
    /// log opens: when this start has a different shard count than the
    /// last one the metadata recorded, placement events spread the
    /// partitions evenly by count. Nothing is open yet, so the events are
    /// the whole move. Then this start's count is recorded, if it changed
    /// (a data directory of an older build has none recorded: its first
    /// start here only records one).
    pub(super) async fn balance_at_start(&self) -> Result<(), Error> {
        let shards = self.client.shard_count();
        let last = self.meta.with_state(|s| s.started_shards());
        let changed = last.is_some_and(|last| last as usize != shards);
        if changed && self.core_balancing != CoreBalancing::Off {
            self.spread_by_count().await?;
        }
        if last != Some(shards as u32) {
            self.append(MetaEvent::ShardsStarted(ShardsStarted {
                shards: shards as u32,
            }))
            .await?;
        }
        Ok(())
    }

    async fn spread_by_count(&self) -> Result<(), Error> {
        let shards = self.client.shard_count();
        let loads = self.meta.with_state(|state| {
            let mut loads: Vec<ShardLoad> = (0..shards)
                .map(|shard| ShardLoad {
                    shard: shard as u32,
                    cpu: None,
                    partitions: Vec::new(),
                    busy: 0.0,
                    in_flight: 0,
                })
                .collect();
            for (name, topic) in state.topics() {
                for (p, shard) in topic.partitions.iter().enumerate() {
                    if let Some(load) = shard.and_then(|s| loads.get_mut(s as usize)) {
                        load.partitions.push(crate::admin::PartitionLoad {
                            topic: name.to_string(),
                            partition: p as u32,
                            bytes: 0,
                            produce_bytes_per_s: 0.0,
                            fetch_bytes_per_s: 0.0,
                        });
                    }
                }
            }
            loads
        });
        let plan = balance::plan(&loads, BalanceBy::Count);
        if plan.moves.is_empty() {
            return Ok(());
        }
        tracing::info!(
            shards,
            moves = plan.moves.len(),
            "the shard count changed since the last start: spreading partitions evenly (--core-balancing)"
        );
        let events: Vec<MetaEvent> = plan
            .moves
            .iter()
            .map(|m| {
                MetaEvent::PartitionPlaced(PartitionPlaced {
                    topic: m.topic.clone(),
                    partition: m.partition,
                    shard: m.to_shard,
                })
            })
            .collect();
        self.append_all(events).await?;
        Ok(())
    }

    /// `--core-balancing continuous`: every [`BALANCE_CHECK_INTERVAL_MS`],
    /// compares the busiest shard with the mean; when it stays above
    /// `threshold` times the mean for `debounce_ms`, rebalances by load,
    /// then waits a whole load window before judging again (moved
    /// partitions start their traffic figures afresh on the new shard).
    pub async fn keep_balanced(self: Rc<Self>, threshold: f64, debounce_ms: u64) {
        let stopping = &self.client.local().stopping;
        let debounce = Duration::from_millis(debounce_ms);
        let mut watch = balance::Watch::new(threshold, debounce, BALANCE_LOAD_FLOOR_BYTES_PER_S);
        loop {
            let seen = stopping.generation();
            let period = Duration::from_millis(BALANCE_CHECK_INTERVAL_MS);
            if stopping.wait_after(seen, period).await {
                return;
            }
            let per_shard: Vec<f64> = self
                .shard_loads()
                .await
                .iter()
                .map(|l| {
                    l.partitions
                        .iter()
                        .map(|p| p.produce_bytes_per_s + p.fetch_bytes_per_s)
                        .sum()
                })
                .collect();
            if !watch.observe(Instant::now(), &per_shard) {
                continue;
            }
            tracing::info!(
                ?per_shard,
                "shard load uneven for longer than the debounce: rebalancing"
            );
            if let Err(e) = self.rebalance(BalanceBy::Load, false).await {
                tracing::warn!(error = %e.message, "automatic rebalance failed");
            }
            let window = Duration::from_secs(crate::load::LOAD_WINDOW_S);
            let seen = stopping.generation();
            if stopping.wait_after(seen, window).await {
                return;
            }
        }
    }
}
