//! Each shard's read-only replica of the cluster metadata.
//!
//! Why a replica per shard instead of asking the controller: Metadata,
//! Produce, Fetch and ListOffsets all need "which shard owns this
//! partition" on every request, and a router on any core (`--router-cores
//! all`) must answer that without a cross-core round trip. The controller
//! makes each event durable, then ships it to every shard; shards fold
//! events in meta log order with the same code replay uses
//! ([`MetaState::apply_event`]), so every replica equals the controller's
//! state at some offset.

use crate::partitions::DataGate;
use ringlog_engine::meta::{MetaEvent, MetaState};
use std::cell::RefCell;
use std::time::Duration;

/// How long a router waits for its replica to catch up with a change the
/// controller acknowledged. The event is already in flight on the mesh, so
/// this only bounds a stuck shard.
pub const CATCH_UP_WAIT_MS: u64 = 10_000;

/// The replica.
#[derive(Default)]
pub struct MetaView {
    state: RefCell<MetaState>,
    applied: DataGate,
}

impl MetaView {
    /// Reads the replica (never across an `.await`).
    pub fn with<T>(&self, f: impl FnOnce(&MetaState) -> T) -> T {
        f(&self.state.borrow())
    }

    /// Replaces the replica with the controller's state.
    pub fn reset(&self, state: MetaState) {
        *self.state.borrow_mut() = state;
        self.applied.notify();
    }

    /// Folds the event at `offset`. An event out of order means a replica
    /// bug; it is logged and skipped rather than corrupting the replica.
    pub fn apply(&self, offset: u64, event: &MetaEvent) {
        let applied = self.state.borrow_mut().apply_event(offset, event);
        if let Err(e) = applied {
            tracing::error!(offset, error = %e, "metadata replica rejected an event");
        }
        self.applied.notify();
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
