//! Each shard's read-only replica of the cluster metadata.
//!
//! Layer: shard state (see the crate docs). May import the foundation
//! modules only.
//!
//! Why a replica per shard instead of asking the controller: Metadata,
//! Produce, Fetch and ListOffsets all need "which shard owns this
//! partition" on every request, and a router on any core (`--router-cores
//! all`) must answer that without a cross-core round trip. The controller
//! makes each event durable, then ships it to every shard; shards fold
//! events in meta log order with the same code replay uses
//! ([`MetaState::apply_event`]), so every replica equals the controller's
//! state at some offset.
//!
//! Events can arrive out of order: the controller appends concurrently
//! (offset commits share fdatasyncs) and each append's task sends its own
//! event. The replica parks an early event until the ones before it
//! arrive, so it still applies the log in order.
//!
//! ## Read-your-writes across routers
//!
//! A replica lags the controller by the events in flight on the mesh. The
//! router that forwarded an admin request waits for its own replica before
//! answering, but a client's next request may arrive on another connection
//! served by another shard's router (SO_REUSEPORT spreads them). So the
//! controller also publishes its offset in one shared atomic
//! ([`MetaView::publish`]) before it ships the events, and a router that
//! does not know a topic or partition first waits (bounded) for its replica
//! to reach that offset ([`MetaView::catch_up`]) before answering
//! UNKNOWN_TOPIC_OR_PARTITION. A name that really does not exist costs one
//! atomic load: the replica is almost always caught up.

use crate::gate::DataGate;
use ringlog_engine::meta::{MetaEvent, MetaState};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a router waits for its replica to catch up with a change the
/// controller acknowledged. The event is already in flight on the mesh, so
/// this only bounds a stuck shard.
pub const CATCH_UP_WAIT_MS: u64 = 10_000;
/// Early events a replica holds. The controller has at most this many
/// appends in flight per shard's worth of requests; more means a lost
/// event, which is logged.
pub const EARLY_EVENTS_MAX: usize = 1 << 16;

/// The replica.
pub struct MetaView {
    state: RefCell<MetaState>,
    applied: DataGate,
    /// Events that arrived before the ones below them, by offset.
    early: RefCell<BTreeMap<u64, MetaEvent>>,
    /// Resets so far (the group coordinator restores groups after each).
    resets: Cell<u64>,
    /// The controller's published offset, shared by every shard: each event
    /// below it is durable and on its way to every replica.
    published: Arc<AtomicU64>,
}

impl MetaView {
    /// An empty replica; `published` is shared by every shard of the pool.
    pub fn new(published: Arc<AtomicU64>) -> Self {
        MetaView {
            state: RefCell::default(),
            applied: DataGate::default(),
            early: RefCell::default(),
            resets: Cell::new(0),
            published,
        }
    }

    /// The controller: every event below `offset` is durable and about to
    /// be shipped to every replica.
    pub fn publish(&self, offset: u64) {
        self.published.fetch_max(offset, Ordering::Release);
    }

    /// Waits (bounded) until this replica has applied everything the
    /// controller published. Call before answering that a topic or
    /// partition does not exist.
    pub async fn catch_up(&self) {
        let published = self.published.load(Ordering::Acquire);
        if self.applied_offset() < published && !self.wait_applied(published).await {
            tracing::warn!(
                published,
                applied = self.applied_offset(),
                "metadata replica did not catch up in time"
            );
        }
    }

    /// Reads the replica (never across an `.await`).
    pub fn with<T>(&self, f: impl FnOnce(&MetaState) -> T) -> T {
        f(&self.state.borrow())
    }

    /// Replaces the replica with the controller's state.
    pub fn reset(&self, state: MetaState) {
        let applied = state.applied_offset();
        *self.state.borrow_mut() = state;
        self.early
            .borrow_mut()
            .retain(|&offset, _| offset >= applied);
        self.resets.set(self.resets.get() + 1);
        self.drain_early();
        self.applied.notify();
    }

    /// How many times the replica was reset.
    pub fn resets(&self) -> u64 {
        self.resets.get()
    }

    /// Folds the event at `offset`, or parks it until the events before it
    /// arrive. An event that does not apply means a replica bug; it is
    /// logged and skipped rather than corrupting the replica.
    pub fn apply(&self, offset: u64, event: &MetaEvent) {
        let next = self.applied_offset();
        if offset < next {
            return; // already in the state (sent before a reset)
        }
        if offset > next {
            let mut early = self.early.borrow_mut();
            if early.len() >= EARLY_EVENTS_MAX {
                tracing::error!(
                    offset,
                    expected = next,
                    "metadata replica is missing an event"
                );
                return;
            }
            early.insert(offset, event.clone());
            return;
        }
        self.fold(offset, event);
        self.drain_early();
        self.applied.notify();
    }

    fn fold(&self, offset: u64, event: &MetaEvent) {
        let applied = self.state.borrow_mut().apply_event(offset, event);
        if let Err(e) = applied {
            tracing::error!(offset, error = %e, "metadata replica rejected an event");
        }
    }

    fn drain_early(&self) {
        loop {
            let next = self.applied_offset();
            let Some(event) = self.early.borrow_mut().remove(&next) else {
                return;
            };
            self.fold(next, &event);
            if self.applied_offset() == next {
                return; // rejected; logged by fold
            }
        }
    }

    /// Offset of the next event this replica expects.
    pub fn applied_offset(&self) -> u64 {
        self.state.borrow().applied_offset()
    }

    /// Waits until the replica has applied every event below `offset`.
    /// Returns false if that took longer than [`CATCH_UP_WAIT_MS`].
    pub async fn wait_applied(&self, offset: u64) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_millis(CATCH_UP_WAIT_MS);
        loop {
            let seen = self.applied.generation();
            if self.applied_offset() >= offset {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline || !self.applied.wait_after(seen, deadline - now).await {
                return self.applied_offset() >= offset;
            }
        }
    }
}
