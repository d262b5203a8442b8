//! FindCoordinator: every group's coordinator is this broker (node 0).
//! Which shard serves a group is internal, like partition placement.
//!
//! Layer: handlers (see the crate docs).
//!
//! Why it is answered before consumer groups exist: librdkafka enables LZ4
//! only for brokers that advertise FindCoordinator (its proxy for "Kafka
//! 0.8.2 or later"), so without it librdkafka producers silently send LZ4
//! batches uncompressed. Transaction coordinators are refused:
//! transactions are not supported.

use super::text;
use crate::ids::NODE_ID;
use crate::runtime::ShardClient;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Kafka's coordinator key type of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator version that batches keys (KIP-699).
const BATCHED_VERSION: i16 = 4;

/// The answer for one key: this broker, or why not.
struct Found {
    error: Option<(ResponseError, String)>,
}

fn find(key_type: i8) -> Found {
    if key_type == KEY_TYPE_GROUP {
        Found { error: None }
    } else {
        Found {
            error: Some((
                ResponseError::CoordinatorNotAvailable,
                format!("coordinator key type {key_type} is not served: only consumer groups (0); transactions are not supported"),
            )),
        }
    }
}

/// Answers a FindCoordinator request.
pub fn handle(
    client: &Rc<ShardClient>,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let config = &client.local().config;
    let host = text(config.advertised_host.clone());
    let port = i32::from(config.advertised_port);
    if version >= BATCHED_VERSION {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let found = find(request.key_type);
                let coordinator = Coordinator::default().with_key(key);
                match found.error {
                    None => coordinator
                        .with_node_id(BrokerId(NODE_ID))
                        .with_host(host.clone())
                        .with_port(port),
                    Some((error, message)) => coordinator
                        .with_node_id(BrokerId(-1))
                        .with_host(StrBytes::default())
                        .with_port(-1)
                        .with_error_code(error.code())
                        .with_error_message(Some(text(message))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let response = FindCoordinatorResponse::default();
    match find(request.key_type).error {
        None => response
            .with_node_id(BrokerId(NODE_ID))
            .with_host(host)
            .with_port(port),
        Some((error, message)) => {
            let response = response
                .with_error_code(error.code())
                .with_node_id(BrokerId(-1))
                .with_port(-1);
            if version >= 1 {
                response.with_error_message(Some(text(message)))
            } else {
                response
            }
        }
    }
}
