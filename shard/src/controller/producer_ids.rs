//! Producer ids for idempotent producers (InitProducerId).
//!
//! Layer: controller (see the crate docs); a part of the controller, which
//! alone writes the metadata log. Ids are handed out in blocks of
//! [`PRODUCER_ID_BLOCK_SIZE`]: the block is recorded durably
//! (`MetaEvent::ProducerIdBlock`) before its first id is answered, and the
//! cursor inside the block lives in memory. After a restart the cursor
//! starts at the recorded block end, so an id answered before a crash is
//! never answered again; the rest of the old block is skipped. Why blocks:
//! one fdatasync of the meta log per thousand producers rather than per
//! producer, at the price of a gap in the ids after each restart.

use super::Controller;
use crate::message::{AdminError, AdminResult};
use glommio::sync::Semaphore;
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{MetaEvent, MetaState, ProducerIdBlock, PRODUCER_ID_BLOCK_END_MAX};
use std::cell::Cell;

/// Producer ids recorded per metadata event.
pub const PRODUCER_ID_BLOCK_SIZE: u64 = 1000;

/// The controller's position inside the current producer id block.
pub struct ProducerIdCursor {
    /// The next id to hand out; `None` until the first allocation after
    /// start, which begins at the recorded block end.
    next: Cell<Option<u64>>,
    /// One allocation at a time: the check for a used-up block and the
    /// append of the next one are one step.
    permit: Semaphore,
}

impl Default for ProducerIdCursor {
    fn default() -> Self {
        ProducerIdCursor {
            next: Cell::new(None),
            permit: Semaphore::new(1),
        }
    }
}

impl Controller {
    /// Hands out the next producer id. When the current block is used up
    /// (or none was opened since start), the next block is recorded
    /// durably first, so no id is ever answered twice, across restarts too.
    pub async fn allocate_producer_id(&self) -> AdminResult<i64> {
        let cursor = &self.producer_ids;
        let _permit = cursor.permit.acquire_permit(1).await.expect("never closed");
        let end = self.meta.with_state(MetaState::producer_id_block_end);
        let next = cursor.next.get().unwrap_or(end);
        assert!(next <= end, "the cursor stays inside the recorded block");
        if next == end {
            let block_end = end
                .checked_add(PRODUCER_ID_BLOCK_SIZE)
                .filter(|&e| e <= PRODUCER_ID_BLOCK_END_MAX)
                .ok_or_else(|| {
                    AdminError::new(ResponseError::UnknownServerError, "producer ids exhausted")
                })?;
            self.append(MetaEvent::ProducerIdBlock(ProducerIdBlock { block_end }))
                .await
                .map_err(|e| AdminError::engine(&e))?;
        }
        cursor.next.set(Some(next + 1));
        Ok(next as i64)
    }
}
