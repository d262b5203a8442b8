//! InitProducerId: gives an idempotent producer its producer id.
//!
//! Layer: handlers (see the crate docs).
//!
//! The id comes from the controller (shard 0), the only writer of the
//! metadata log, which records ids in blocks so none is answered twice,
//! across restarts too (see `controller/producer_ids.rs`).
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

use crate::calls::call_controller;
use crate::message::{ControllerReply, ControllerRequest};
use crate::runtime::ShardClient;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;
use std::rc::Rc;

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
    match call_controller(client, ControllerRequest::AllocateProducerId).await {
        Ok(ControllerReply {
            failed: Some(e), ..
        }) => refused(e.error),
        Ok(ControllerReply {
            producer_id: Some(id),
            ..
        }) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Ok(_) => {
            tracing::error!("the controller answered AllocateProducerId without an id");
            refused(ResponseError::UnknownServerError)
        }
        Err(e) => {
            tracing::warn!(error = %e, "InitProducerId not answered by the controller");
            refused(ResponseError::CoordinatorNotAvailable)
        }
    }
}
