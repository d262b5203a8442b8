//! DescribeCluster: one broker, which is also the controller.
//!
//! Layer: handlers (see the crate docs).

use super::text;
use crate::ids::{CLUSTER_ID, NODE_ID};
use crate::runtime::ShardClient;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Brokers endpoint type (KIP-919); controllers are not exposed.
const ENDPOINT_BROKERS: i8 = 1;
/// "Authorized operations not requested" in Kafka's encoding.
const OPERATIONS_OMITTED: i32 = i32::MIN;

/// The cluster as clients should see it.
pub fn handle(
    client: &Rc<ShardClient>,
    version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let config = &client.local().config;
    let response = DescribeClusterResponse::default()
        .with_cluster_id(text(CLUSTER_ID))
        .with_controller_id(BrokerId(NODE_ID))
        .with_cluster_authorized_operations(OPERATIONS_OMITTED);
    if version >= 1 && request.endpoint_type != ENDPOINT_BROKERS {
        return response
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(text(format!(
                "endpoint type {} is not served; this broker exposes brokers (1) only",
                request.endpoint_type
            ))))
            .with_endpoint_type(request.endpoint_type);
    }
    response.with_brokers(vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(NODE_ID))
        .with_host(text(config.advertised_host.clone()))
        .with_port(i32::from(config.advertised_port))])
}
