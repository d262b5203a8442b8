//! InitProducerId: gives an idempotent producer its producer id.
//!
//! Ids come from the controller (shard 0), the only writer of the metadata
//! log, in blocks of [`PRODUCER_ID_BLOCK_SIZE`]: the block is recorded
//! durably (`MetaEvent::ProducerIdBlock`) before its first id is answered,
//! and the cursor inside the block lives in memory. After a restart the
//! cursor starts at the recorded block end, so an id answered before a
//! crash is never answered again; the rest of the old block is skipped.
//! Why blocks: one fdatasync of the meta log per thousand producers rather
//! than per producer, at the price of a gap in the ids after each restart.
//!
//! Without a transactional id, Kafka always answers a fresh producer id
//! with epoch 0, even when the request (v3+, KIP-360) names the producer's
//! current id and epoch — an idempotent producer asks again only when it
//! wants a new sequence space, and a fresh id gives it one. We do the same.
//! With a transactional id (even an empty one) the answer is
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as for a Produce request with
//! one: transactions are not supported, and that code makes clients fail
//! the transactional producer at once instead of retrying. The response
//! has no message field, so the reason goes to the log.

use crate::controller::Controller;
use crate::message::ControllerRequest;
use crate::runtime::ShardClient;
use glommio::sync::Semaphore;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};
use kafka_protocol::ResponseError;
use std::cell::Cell;
use std::rc::Rc;

/// Producer ids recorded per metadata event.
pub const PRODUCER_ID_BLOCK_SIZE: u64 = 1000;

/// The controller's position inside the current producer id block.
pub struct ProducerIdCursor {
    /// The next id to hand out; `None` until the first allocation after
    /// start, which begins at the recorded block end.
    pub next: Cell<Option<u64>>,
    /// One allocation at a time: the check for a used-up block and the
    /// append of the next one are one step.
    pub permit: Semaphore,
}

impl ProducerIdCursor {
    /// Nothing handed out yet in this run.
    pub fn new() -> Self {
        ProducerIdCursor {
            next: Cell::new(None),
            permit: Semaphore::new(1),
        }
    }
}

impl Default for ProducerIdCursor {
    fn default() -> Self {
        Self::new()
    }
}

fn refused(error: ResponseError) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(error.code())
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// Answers an InitProducerId request (on the router's core).
pub async fn handle(
    client: &Rc<ShardClient>,
    _version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if let Some(id) = &request.transactional_id {
        tracing::warn!(
            transactional_id = %id.0.as_str(),
            "InitProducerId with a transactional id refused: transactions are not supported"
        );
        return refused(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let reply = super::call_controller(client, ControllerRequest::InitProducerId).await;
    match reply.map(|r| r.body) {
        Ok(Some(ResponseKind::InitProducerId(response))) => response,
        Ok(_) => {
            tracing::error!("the controller answered InitProducerId with another body");
            refused(ResponseError::UnknownServerError)
        }
        Err(e) => {
            tracing::warn!(error = %e, "InitProducerId not answered by the controller");
            refused(ResponseError::CoordinatorNotAvailable)
        }
    }
}

/// Allocates a producer id (on the controller); the InitProducerId
/// response body.
pub async fn allocate(controller: &Controller) -> ResponseKind {
    ResponseKind::InitProducerId(match controller.allocate_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::error!(error = %e.message, "producer id allocation failed");
            refused(e.error)
        }
    })
}
