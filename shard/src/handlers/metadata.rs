//! Metadata: the one broker, and the topics with their partitions, from
//! this shard's replica. Every partition is led by the one broker; which
//! shard owns it is internal (clients connect to the broker, the router
//! forwards).
//!
//! Layer: handlers (see the crate docs).

use super::access::Access;
use super::{text, topic_name};
use crate::calls::call_controller;
use crate::ids::{CLUSTER_ID, NODE_ID};
use crate::message::ControllerRequest;
use crate::runtime::ShardClient;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{check_topic_name, AclOperation, AclResourceType, MetaState};
use std::rc::Rc;
use uuid::Uuid;

/// "Authorized operations not requested" in Kafka's encoding.
const OPERATIONS_OMITTED: i32 = i32::MIN;

/// A requested topic: by name, or by id (v10+ with a null name).
enum Wanted {
    Name(String),
    Id(Uuid),
}

/// Answers a Metadata request; creates missing topics first when
/// `--auto-create-topics` is on, the client allows it and the caller may
/// create them (CREATE on the cluster or the topic). Topics the caller may
/// not DESCRIBE are left out of a listing of every topic and answered
/// TOPIC_AUTHORIZATION_FAILED when named.
pub async fn handle(
    client: &Rc<ShardClient>,
    access: &Access<'_>,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let shard = client.local();
    let config = &shard.config;
    let wanted: Option<Vec<Wanted>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| match t.name {
                Some(name) => Wanted::Name(name.0.to_string()),
                None => Wanted::Id(t.topic_id),
            })
            .collect()
    });
    // Listing every topic, or naming one this replica does not know: first
    // catch up with the controller, so a topic created through another
    // router is listed.
    crate::calls::catch_up_unless(client, |state| {
        wanted.as_ref().is_some_and(|wanted| {
            wanted.iter().all(|w| match w {
                Wanted::Name(name) => state.topic(name).is_some(),
                Wanted::Id(id) => state.topic_by_id(id.as_bytes()).is_some(),
            })
        })
    })
    .await;
    // v0-v3 have no allow_auto_topic_creation field and always allowed it.
    let allowed = version < 4 || request.allow_auto_topic_creation;
    if let (Some(wanted), true, true) = (&wanted, config.auto_create_topics, allowed) {
        let missing: Vec<String> = shard.meta.with(|state| {
            wanted
                .iter()
                .filter_map(|w| match w {
                    Wanted::Name(n) if state.topic(n).is_none() && check_topic_name(n).is_ok() => {
                        Some(n.clone())
                    }
                    _ => None,
                })
                .collect()
        });
        let missing = access.may_create(missing);
        if !missing.is_empty() {
            if let Err(e) =
                call_controller(client, ControllerRequest::AutoCreate { topics: missing }).await
            {
                tracing::warn!(error = %e, "auto-create on Metadata failed");
            }
        }
    }
    let topics = shard.meta.with(|state| match &wanted {
        None => state
            .topics()
            .map(|(name, _)| describe(state, version, name))
            .collect(),
        Some(wanted) => wanted
            .iter()
            .map(|w| match w {
                Wanted::Name(name) => describe(state, version, name),
                Wanted::Id(id) => match state.topic_by_id(id.as_bytes()) {
                    Some((name, _)) => describe(state, version, name),
                    None => MetadataResponseTopic::default()
                        .with_error_code(ResponseError::UnknownTopicId.code())
                        .with_topic_id(*id),
                },
            })
            .collect(),
    });
    let topics = if access.is_on() {
        authorized(access, topics, wanted.is_some())
    } else {
        topics
    };
    let mut response = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(text(config.advertised_host.clone()))
            .with_port(i32::from(config.advertised_port))])
        .with_controller_id(BrokerId(NODE_ID))
        .with_topics(topics);
    if version >= 2 {
        response = response.with_cluster_id(Some(text(CLUSTER_ID)));
    }
    if (8..=10).contains(&version) {
        response = response.with_cluster_authorized_operations(OPERATIONS_OMITTED);
    }
    response
}

/// The entries the caller may DESCRIBE; the others are left out of a
/// listing, or answered TOPIC_AUTHORIZATION_FAILED (without partitions or
/// id) when `named`.
fn authorized(
    access: &Access<'_>,
    topics: Vec<MetadataResponseTopic>,
    named: bool,
) -> Vec<MetadataResponseTopic> {
    topics
        .into_iter()
        .filter_map(|entry| {
            let Some(name) = entry.name.as_ref() else {
                return Some(entry);
            };
            if access.allows(
                AclOperation::Describe,
                AclResourceType::Topic,
                name.0.as_str(),
            ) {
                return Some(entry);
            }
            named.then(|| {
                MetadataResponseTopic::default()
                    .with_name(entry.name)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
            })
        })
        .collect()
}

/// One topic's entry (UNKNOWN_TOPIC_OR_PARTITION if it does not exist).
fn describe(state: &MetaState, version: i16, name: &str) -> MetadataResponseTopic {
    let entry = MetadataResponseTopic::default().with_name(Some(topic_name(name)));
    let Some(topic) = state.topic(name) else {
        let error = if check_topic_name(name).is_ok() {
            ResponseError::UnknownTopicOrPartition
        } else {
            ResponseError::InvalidTopicException
        };
        return entry.with_error_code(error.code());
    };
    let partitions = (0..topic.partitions.len() as i32)
        .map(|index| {
            let partition = MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(NODE_ID))
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(vec![BrokerId(NODE_ID)]);
            if version >= 7 {
                partition.with_leader_epoch(0)
            } else {
                partition
            }
        })
        .collect();
    let mut entry = entry.with_partitions(partitions);
    if version >= 10 {
        entry = entry.with_topic_id(Uuid::from_bytes(topic.topic_id));
    }
    if version >= 8 {
        entry = entry.with_topic_authorized_operations(OPERATIONS_OMITTED);
    }
    entry
}
