//! Authorization of every Kafka API, in one place: before a request is
//! dispatched, the parts the caller may not touch are taken out of it and
//! answered with Kafka's error (TOPIC_AUTHORIZATION_FAILED per topic or
//! partition, GROUP_..., CLUSTER_..., TRANSACTIONAL_ID_...); after the
//! handler ran on what is left, those answers are joined into its
//! response.
//!
//! Layer: handlers (see the crate docs).
//!
//! Why here, in the router, and not in each handler: the router is the
//! only place every request passes with its connection's principal. Group
//! requests go on to the coordinator shard and admin requests to the
//! controller, which know nothing of the connection; checking before
//! routing means a denied part never leaves the router, so a denied
//! request never writes anything. Read-only answers that list what exists
//! (Metadata, ListGroups, OffsetFetch of every topic) are filtered instead:
//! the caller does not learn of resources it may not describe.
//!
//! With the authorizer off, [`screen`] returns the request untouched after
//! one branch: Produce and Fetch pay nothing else.
//!
//! The operation per API is Kafka's ("Operations and Resources on
//! Protocols"), with one choice of ours: a transactional Produce needs
//! WRITE on the transactional id as well, though this broker has no
//! transactions.

use super::text;
use crate::authorizer::Identity;
use crate::runtime::ShardClient;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    alter_client_quotas_response, alter_configs_response, alter_user_scram_credentials_response,
    create_partitions_response, incremental_alter_configs_response, AlterClientQuotasResponse,
    AlterUserScramCredentialsResponse, BrokerId, CreateAclsResponse, DeleteAclsResponse,
    DeleteGroupsResponse, DescribeAclsResponse, DescribeClientQuotasResponse,
    DescribeClusterResponse, DescribeConfigsResponse, DescribeGroupsResponse,
    DescribeUserScramCredentialsResponse, FindCoordinatorResponse, HeartbeatResponse,
    InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse, OffsetCommitResponse,
    OffsetDeleteResponse, OffsetFetchResponse, ProducerId, RequestKind, ResponseKind,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{AclOperation, AclResourceType, CLUSTER_RESOURCE_NAME};

/// Kafka's config resource type of a topic.
const CONFIG_RESOURCE_TOPIC: i8 = 2;
/// Kafka's config resource type of a broker.
const CONFIG_RESOURCE_BROKER: i8 = 4;
/// Kafka's coordinator key type of a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;
/// FindCoordinator version that batches keys (KIP-699).
const FIND_COORDINATOR_BATCHED_VERSION: i16 = 4;

/// The authorizer's view of one request: who sent it, and the replica
/// holding the ACLs.
pub struct Access<'a> {
    client: &'a ShardClient,
    identity: &'a Identity,
}

impl<'a> Access<'a> {
    /// The access of `identity` through `client`'s shard.
    pub fn new(client: &'a ShardClient, identity: &'a Identity) -> Self {
        Access { client, identity }
    }

    /// Whether the authorizer is on (`--authorizer on`).
    pub fn is_on(&self) -> bool {
        self.client.local().config.authorizer.is_some()
    }

    /// Whether the caller may do `operation` on `resource_type`/`name`;
    /// always with the authorizer off. A denial is logged at DEBUG: a
    /// client retrying would flood a WARN log.
    pub fn allows(
        &self,
        operation: AclOperation,
        resource_type: AclResourceType,
        name: &str,
    ) -> bool {
        let shard = self.client.local();
        let Some(config) = &shard.config.authorizer else {
            return true;
        };
        let caller = self.identity.caller();
        let allowed = shard
            .meta
            .with(|state| config.allows(state.acls(), caller, operation, resource_type, name));
        if !allowed {
            tracing::debug!(
                principal = %self.identity.principal,
                operation = operation.name(),
                resource = resource_type.name(),
                name,
                "authorization denied"
            );
        }
        allowed
    }

    /// Whether the caller may do `operation` on some resource of
    /// `resource_type` (Kafka's authorization by resource type).
    pub fn allows_any(&self, operation: AclOperation, resource_type: AclResourceType) -> bool {
        let shard = self.client.local();
        let Some(config) = &shard.config.authorizer else {
            return true;
        };
        let caller = self.identity.caller();
        shard
            .meta
            .with(|state| config.allows_any(state.acls(), caller, operation, resource_type))
    }

    /// Whether the caller may do `operation` on the cluster.
    pub fn cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, AclResourceType::Cluster, CLUSTER_RESOURCE_NAME)
    }

    /// The topics of `names` the caller may auto-create: all with CREATE
    /// on the cluster (or the authorizer off), else those with CREATE on
    /// the topic.
    pub fn may_create(&self, mut names: Vec<String>) -> Vec<String> {
        if !self.is_on() || names.is_empty() || self.cluster(AclOperation::Create) {
            return names;
        }
        names.retain(|name| self.allows(AclOperation::Create, AclResourceType::Topic, name));
        names
    }

    fn topic(&self, operation: AclOperation, name: &TopicName) -> bool {
        self.allows(operation, AclResourceType::Topic, name.0.as_str())
    }

    fn group(&self, operation: AclOperation, name: &str) -> bool {
        self.allows(operation, AclResourceType::Group, name)
    }
}

/// What [`screen`] took out of a request, for [`join`].
pub enum Refused {
    /// Nothing: the handler's answer is the answer.
    Nothing,
    /// The whole request is refused: answer this, run no handler.
    Whole(Box<ResponseKind>),
    /// Answers of refused parts, joined into the handler's answer.
    Parts(Box<ResponseKind>),
    /// Filter a listing answer (ListGroups) to what the caller may describe.
    ListGroups,
    /// Filter an OffsetFetch answer: per group (in request order), whether
    /// the topics were named (refused ones are answered with an error) or
    /// not (every committed topic: refused ones are left out).
    OffsetFetch(Vec<bool>),
}

/// Takes out of `body` what the caller may not do (see the module docs):
/// the request left to run, and what to answer for the rest
/// ([`Refused::Whole`] when nothing is left to run).
pub fn screen(access: &Access<'_>, version: i16, body: RequestKind) -> (RequestKind, Refused) {
    if !access.is_on() {
        return (body, Refused::Nothing);
    }
    use AclOperation::*;
    let whole = |response: ResponseKind| Refused::Whole(Box::new(response));
    let parts = |response: ResponseKind| Refused::Parts(Box::new(response));
    match body {
        RequestKind::Produce(mut request) => {
            let transactional = request.transactional_id.as_ref().map(|id| id.0.to_string());
            let error = match transactional {
                Some(id) if !access.allows(Write, AclResourceType::TransactionalId, &id) => {
                    Some(ResponseError::TransactionalIdAuthorizationFailed)
                }
                _ => None,
            };
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topic_data)
                .into_iter()
                .partition(|t| error.is_none() && access.topic(Write, &t.name));
            request.topic_data = allowed;
            let error = error.unwrap_or(ResponseError::TopicAuthorizationFailed);
            let responses = refused
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partition_data
                        .iter()
                        .map(|p| {
                            PartitionProduceResponse::default()
                                .with_index(p.index)
                                .with_error_code(error.code())
                                .with_base_offset(-1)
                                .with_log_append_time_ms(-1)
                                .with_log_start_offset(-1)
                        })
                        .collect();
                    TopicProduceResponse::default()
                        .with_name(t.name)
                        .with_partition_responses(partitions)
                })
                .collect::<Vec<_>>();
            let refused = if responses.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::Produce(
                    kafka_protocol::messages::ProduceResponse::default().with_responses(responses),
                ))
            };
            (RequestKind::Produce(request), refused)
        }
        RequestKind::Fetch(mut request) => {
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
                .into_iter()
                .partition(|t| access.topic(Read, &t.topic));
            request.topics = allowed;
            if refused.is_empty() {
                return (RequestKind::Fetch(request), Refused::Nothing);
            }
            let responses: Vec<FetchableTopicResponse> = refused
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            PartitionData::default()
                                .with_partition_index(p.partition)
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                                .with_high_watermark(-1)
                                .with_last_stable_offset(-1)
                                .with_log_start_offset(-1)
                        })
                        .collect();
                    FetchableTopicResponse::default()
                        .with_topic(t.topic)
                        .with_topic_id(t.topic_id)
                        .with_partitions(partitions)
                })
                .collect();
            let response =
                kafka_protocol::messages::FetchResponse::default().with_responses(responses);
            let refused = if request.topics.is_empty() {
                // Nothing left to wait for: answer now, not after max_wait.
                whole(ResponseKind::Fetch(response))
            } else {
                parts(ResponseKind::Fetch(response))
            };
            (RequestKind::Fetch(request), refused)
        }
        RequestKind::ListOffsets(mut request) => {
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
                .into_iter()
                .partition(|t| access.topic(Describe, &t.name));
            request.topics = allowed;
            let topics: Vec<ListOffsetsTopicResponse> = refused
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            ListOffsetsPartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                                .with_timestamp(-1)
                                .with_offset(-1)
                        })
                        .collect();
                    ListOffsetsTopicResponse::default()
                        .with_name(t.name)
                        .with_partitions(partitions)
                })
                .collect();
            let refused = if topics.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::ListOffsets(
                    kafka_protocol::messages::ListOffsetsResponse::default().with_topics(topics),
                ))
            };
            (RequestKind::ListOffsets(request), refused)
        }
        RequestKind::OffsetCommit(mut request) => {
            if !access.group(Read, &request.group_id.0) {
                let topics = request
                    .topics
                    .iter()
                    .map(|t| offset_commit_refused(t, ResponseError::GroupAuthorizationFailed))
                    .collect();
                return (
                    RequestKind::OffsetCommit(request),
                    whole(ResponseKind::OffsetCommit(
                        OffsetCommitResponse::default().with_topics(topics),
                    )),
                );
            }
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
                .into_iter()
                .partition(|t| access.topic(Read, &t.name));
            request.topics = allowed;
            if refused.is_empty() {
                return (RequestKind::OffsetCommit(request), Refused::Nothing);
            }
            let topics = refused
                .iter()
                .map(|t| offset_commit_refused(t, ResponseError::TopicAuthorizationFailed))
                .collect();
            let response =
                ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics));
            // A commit of nothing would still reach the coordinator.
            let refused = if request.topics.is_empty() {
                whole(response)
            } else {
                parts(response)
            };
            (RequestKind::OffsetCommit(request), refused)
        }
        RequestKind::OffsetFetch(request) => {
            if version < 8 && !access.group(Describe, &request.group_id.0) {
                return (
                    RequestKind::OffsetFetch(request),
                    whole(ResponseKind::OffsetFetch(
                        OffsetFetchResponse::default()
                            .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
                    )),
                );
            }
            let named = if version >= 8 {
                request.groups.iter().map(|g| g.topics.is_some()).collect()
            } else {
                vec![request.topics.is_some()]
            };
            (
                RequestKind::OffsetFetch(request),
                Refused::OffsetFetch(named),
            )
        }
        RequestKind::JoinGroup(request) => {
            let refused = (!access.group(Read, &request.group_id.0)).then(|| {
                let protocol = (version < 7).then(|| text(""));
                ResponseKind::JoinGroup(
                    JoinGroupResponse::default()
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                        .with_protocol_name(protocol),
                )
            });
            (
                RequestKind::JoinGroup(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        RequestKind::SyncGroup(request) => {
            let refused = (!access.group(Read, &request.group_id.0)).then(|| {
                ResponseKind::SyncGroup(
                    SyncGroupResponse::default()
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
                )
            });
            (
                RequestKind::SyncGroup(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        RequestKind::Heartbeat(request) => {
            let refused = (!access.group(Read, &request.group_id.0)).then(|| {
                ResponseKind::Heartbeat(
                    HeartbeatResponse::default()
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
                )
            });
            (
                RequestKind::Heartbeat(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        RequestKind::LeaveGroup(request) => {
            let refused = (!access.group(Read, &request.group_id.0)).then(|| {
                ResponseKind::LeaveGroup(
                    LeaveGroupResponse::default()
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
                )
            });
            (
                RequestKind::LeaveGroup(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        RequestKind::DescribeGroups(mut request) => {
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.groups)
                .into_iter()
                .partition(|g| access.group(Describe, &g.0));
            request.groups = allowed;
            let groups: Vec<DescribedGroup> = refused
                .into_iter()
                .map(|g| {
                    DescribedGroup::default()
                        .with_group_id(g)
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                })
                .collect();
            let refused = if groups.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::DescribeGroups(
                    DescribeGroupsResponse::default().with_groups(groups),
                ))
            };
            (RequestKind::DescribeGroups(request), refused)
        }
        RequestKind::ListGroups(request) => (RequestKind::ListGroups(request), Refused::ListGroups),
        RequestKind::DeleteGroups(mut request) => {
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.groups_names)
                .into_iter()
                .partition(|g| access.group(Delete, &g.0));
            request.groups_names = allowed;
            let results: Vec<DeletableGroupResult> = refused
                .into_iter()
                .map(|g| {
                    DeletableGroupResult::default()
                        .with_group_id(g)
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                })
                .collect();
            let refused = if results.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::DeleteGroups(
                    DeleteGroupsResponse::default().with_results(results),
                ))
            };
            (RequestKind::DeleteGroups(request), refused)
        }
        RequestKind::OffsetDelete(mut request) => {
            if !access.group(Delete, &request.group_id.0) {
                return (
                    RequestKind::OffsetDelete(request),
                    whole(ResponseKind::OffsetDelete(
                        OffsetDeleteResponse::default()
                            .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
                    )),
                );
            }
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
                .into_iter()
                .partition(|t| access.topic(Read, &t.name));
            request.topics = allowed;
            if refused.is_empty() {
                return (RequestKind::OffsetDelete(request), Refused::Nothing);
            }
            let topics = refused
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(partitions)
                })
                .collect();
            (
                RequestKind::OffsetDelete(request),
                parts(ResponseKind::OffsetDelete(
                    OffsetDeleteResponse::default().with_topics(topics),
                )),
            )
        }
        RequestKind::FindCoordinator(mut request) => {
            let (resource_type, error) = if request.key_type == KEY_TYPE_TRANSACTION {
                (
                    AclResourceType::TransactionalId,
                    ResponseError::TransactionalIdAuthorizationFailed,
                )
            } else {
                (
                    AclResourceType::Group,
                    ResponseError::GroupAuthorizationFailed,
                )
            };
            if version < FIND_COORDINATOR_BATCHED_VERSION {
                let refused = (!access.allows(Describe, resource_type, &request.key)).then(|| {
                    ResponseKind::FindCoordinator(
                        FindCoordinatorResponse::default()
                            .with_error_code(error.code())
                            .with_node_id(BrokerId(-1))
                            .with_port(-1),
                    )
                });
                return (
                    RequestKind::FindCoordinator(request),
                    refused.map_or(Refused::Nothing, whole),
                );
            }
            let (allowed, refused): (Vec<_>, Vec<_>) =
                std::mem::take(&mut request.coordinator_keys)
                    .into_iter()
                    .partition(|key| access.allows(Describe, resource_type, key));
            request.coordinator_keys = allowed;
            let coordinators: Vec<Coordinator> = refused
                .into_iter()
                .map(|key| {
                    Coordinator::default()
                        .with_key(key)
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(error.code())
                })
                .collect();
            let refused = if coordinators.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::FindCoordinator(
                    FindCoordinatorResponse::default().with_coordinators(coordinators),
                ))
            };
            (RequestKind::FindCoordinator(request), refused)
        }
        RequestKind::CreateTopics(mut request) => {
            if access.cluster(Create) {
                return (RequestKind::CreateTopics(request), Refused::Nothing);
            }
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
                .into_iter()
                .partition(|t| access.topic(Create, &t.name));
            request.topics = allowed;
            let topics: Vec<CreatableTopicResult> = refused
                .into_iter()
                .map(|t| {
                    CreatableTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                })
                .collect();
            let refused = if topics.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::CreateTopics(
                    kafka_protocol::messages::CreateTopicsResponse::default().with_topics(topics),
                ))
            };
            (RequestKind::CreateTopics(request), refused)
        }
        RequestKind::DeleteTopics(mut request) => {
            let error = ResponseError::TopicAuthorizationFailed.code();
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topic_names)
                .into_iter()
                .partition(|name| access.topic(Delete, name));
            request.topic_names = allowed;
            let mut responses: Vec<DeletableTopicResult> = refused
                .into_iter()
                .map(|name| {
                    DeletableTopicResult::default()
                        .with_name(Some(name))
                        .with_error_code(error)
                })
                .collect();
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
                .into_iter()
                .partition(|t| {
                    // By id: the name from the replica; an unknown id goes on,
                    // to be answered UNKNOWN_TOPIC_ID.
                    let name = t.name.as_ref().map(|n| n.0.to_string()).or_else(|| {
                        access.client.local().meta.with(|state| {
                            state
                                .topic_by_id(t.topic_id.as_bytes())
                                .map(|(name, _)| name.to_string())
                        })
                    });
                    name.is_none_or(|name| access.allows(Delete, AclResourceType::Topic, &name))
                });
            request.topics = allowed;
            responses.extend(refused.into_iter().map(|t| {
                DeletableTopicResult::default()
                    .with_name(t.name)
                    .with_topic_id(t.topic_id)
                    .with_error_code(error)
            }));
            let refused = if responses.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::DeleteTopics(
                    kafka_protocol::messages::DeleteTopicsResponse::default()
                        .with_responses(responses),
                ))
            };
            (RequestKind::DeleteTopics(request), refused)
        }
        RequestKind::CreatePartitions(mut request) => {
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
                .into_iter()
                .partition(|t| access.topic(Alter, &t.name));
            request.topics = allowed;
            let results: Vec<_> = refused
                .into_iter()
                .map(|t| {
                    create_partitions_response::CreatePartitionsTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                })
                .collect();
            let refused = if results.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::CreatePartitions(
                    kafka_protocol::messages::CreatePartitionsResponse::default()
                        .with_results(results),
                ))
            };
            (RequestKind::CreatePartitions(request), refused)
        }
        RequestKind::DescribeConfigs(mut request) => {
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.resources)
                .into_iter()
                .partition(|r| {
                    config_allowed(access, DescribeConfigs, r.resource_type, &r.resource_name)
                        .is_none()
                });
            request.resources = allowed;
            let results: Vec<DescribeConfigsResult> = refused
                .into_iter()
                .map(|r| {
                    let error = config_error(r.resource_type);
                    DescribeConfigsResult::default()
                        .with_error_code(error.code())
                        .with_error_message(Some(text(error.to_string())))
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name)
                })
                .collect();
            let refused = if results.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::DescribeConfigs(
                    DescribeConfigsResponse::default().with_results(results),
                ))
            };
            (RequestKind::DescribeConfigs(request), refused)
        }
        RequestKind::AlterConfigs(mut request) => {
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.resources)
                .into_iter()
                .partition(|r| {
                    config_allowed(access, AlterConfigs, r.resource_type, &r.resource_name)
                        .is_none()
                });
            request.resources = allowed;
            let responses: Vec<_> = refused
                .into_iter()
                .map(|r| {
                    let error = config_error(r.resource_type);
                    alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_error_code(error.code())
                        .with_error_message(Some(text(error.to_string())))
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name)
                })
                .collect();
            let refused = if responses.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::AlterConfigs(
                    kafka_protocol::messages::AlterConfigsResponse::default()
                        .with_responses(responses),
                ))
            };
            (RequestKind::AlterConfigs(request), refused)
        }
        RequestKind::IncrementalAlterConfigs(mut request) => {
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.resources)
                .into_iter()
                .partition(|r| {
                    config_allowed(access, AlterConfigs, r.resource_type, &r.resource_name)
                        .is_none()
                });
            request.resources = allowed;
            let responses: Vec<_> = refused
                .into_iter()
                .map(|r| {
                    let error = config_error(r.resource_type);
                    incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_error_code(error.code())
                        .with_error_message(Some(text(error.to_string())))
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name)
                })
                .collect();
            let refused = if responses.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::IncrementalAlterConfigs(
                    kafka_protocol::messages::IncrementalAlterConfigsResponse::default()
                        .with_responses(responses),
                ))
            };
            (RequestKind::IncrementalAlterConfigs(request), refused)
        }
        RequestKind::DeleteRecords(mut request) => {
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
                .into_iter()
                .partition(|t| access.topic(Delete, &t.name));
            request.topics = allowed;
            let topics: Vec<DeleteRecordsTopicResult> = refused
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            DeleteRecordsPartitionResult::default()
                                .with_partition_index(p.partition_index)
                                .with_low_watermark(-1)
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        })
                        .collect();
                    DeleteRecordsTopicResult::default()
                        .with_name(t.name)
                        .with_partitions(partitions)
                })
                .collect();
            let refused = if topics.is_empty() {
                Refused::Nothing
            } else {
                parts(ResponseKind::DeleteRecords(
                    kafka_protocol::messages::DeleteRecordsResponse::default().with_topics(topics),
                ))
            };
            (RequestKind::DeleteRecords(request), refused)
        }
        RequestKind::InitProducerId(request) => {
            let error = match &request.transactional_id {
                Some(id) => (!access.allows(Write, AclResourceType::TransactionalId, &id.0))
                    .then_some(ResponseError::TransactionalIdAuthorizationFailed),
                None => (!access.cluster(IdempotentWrite)
                    && !access.allows_any(Write, AclResourceType::Topic))
                .then_some(ResponseError::ClusterAuthorizationFailed),
            };
            let refused = error.map(|error| {
                ResponseKind::InitProducerId(
                    InitProducerIdResponse::default()
                        .with_error_code(error.code())
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                )
            });
            (
                RequestKind::InitProducerId(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        RequestKind::DescribeCluster(request) => {
            let refused = (!access.cluster(Describe)).then(|| {
                ResponseKind::DescribeCluster(
                    DescribeClusterResponse::default()
                        .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                        .with_endpoint_type(request.endpoint_type),
                )
            });
            (
                RequestKind::DescribeCluster(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        RequestKind::DescribeAcls(request) => {
            let refused = (!access.cluster(Describe)).then(|| {
                let error = ResponseError::ClusterAuthorizationFailed;
                ResponseKind::DescribeAcls(
                    DescribeAclsResponse::default()
                        .with_error_code(error.code())
                        .with_error_message(Some(text(error.to_string()))),
                )
            });
            (
                RequestKind::DescribeAcls(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        RequestKind::CreateAcls(request) => {
            let refused = (!access.cluster(Alter)).then(|| {
                let results = request
                    .creations
                    .iter()
                    .map(|_| {
                        super::create_acls::failed(ResponseError::ClusterAuthorizationFailed, None)
                    })
                    .collect();
                ResponseKind::CreateAcls(CreateAclsResponse::default().with_results(results))
            });
            (
                RequestKind::CreateAcls(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        RequestKind::DeleteAcls(request) => {
            let refused = (!access.cluster(Alter)).then(|| {
                let results = request
                    .filters
                    .iter()
                    .map(|_| {
                        super::delete_acls::failed(ResponseError::ClusterAuthorizationFailed, None)
                    })
                    .collect();
                ResponseKind::DeleteAcls(DeleteAclsResponse::default().with_filter_results(results))
            });
            (
                RequestKind::DeleteAcls(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        // Client quotas are cluster configuration, as in Kafka.
        RequestKind::DescribeClientQuotas(request) => {
            let refused = (!access.cluster(DescribeConfigs)).then(|| {
                let error = ResponseError::ClusterAuthorizationFailed;
                ResponseKind::DescribeClientQuotas(
                    DescribeClientQuotasResponse::default()
                        .with_error_code(error.code())
                        .with_error_message(Some(text(error.to_string())))
                        .with_entries(None),
                )
            });
            (
                RequestKind::DescribeClientQuotas(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        RequestKind::AlterClientQuotas(request) => {
            let refused = (!access.cluster(AlterConfigs)).then(|| {
                let error = ResponseError::ClusterAuthorizationFailed;
                let entries = request
                    .entries
                    .iter()
                    .map(|entry| {
                        alter_client_quotas_response::EntryData::default()
                            .with_error_code(error.code())
                            .with_error_message(Some(text(error.to_string())))
                            .with_entity(super::alter_client_quotas::echo_entity(&entry.entity))
                    })
                    .collect();
                ResponseKind::AlterClientQuotas(
                    AlterClientQuotasResponse::default().with_entries(entries),
                )
            });
            (
                RequestKind::AlterClientQuotas(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        // SCRAM credentials are cluster resources, as in Kafka.
        RequestKind::DescribeUserScramCredentials(request) => {
            let refused = (!access.cluster(Describe)).then(|| {
                let error = ResponseError::ClusterAuthorizationFailed;
                ResponseKind::DescribeUserScramCredentials(
                    DescribeUserScramCredentialsResponse::default()
                        .with_error_code(error.code())
                        .with_error_message(Some(text(error.to_string()))),
                )
            });
            (
                RequestKind::DescribeUserScramCredentials(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        RequestKind::AlterUserScramCredentials(request) => {
            let refused = (!access.cluster(Alter)).then(|| {
                let error = ResponseError::ClusterAuthorizationFailed;
                let mut users: Vec<_> = request
                    .deletions
                    .iter()
                    .map(|d| d.name.clone())
                    .chain(request.upsertions.iter().map(|u| u.name.clone()))
                    .collect();
                users.sort();
                users.dedup();
                let results = users
                    .into_iter()
                    .map(|user| {
                        alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                            .with_user(user)
                            .with_error_code(error.code())
                            .with_error_message(Some(text(error.to_string())))
                    })
                    .collect();
                ResponseKind::AlterUserScramCredentials(
                    AlterUserScramCredentialsResponse::default().with_results(results),
                )
            });
            (
                RequestKind::AlterUserScramCredentials(request),
                refused.map_or(Refused::Nothing, whole),
            )
        }
        // Metadata filters in its handler (it also decides auto-creation);
        // ApiVersions and the SASL APIs are always allowed.
        other => (other, Refused::Nothing),
    }
}

/// Joins the answers of refused parts into the handler's `response`.
pub fn join(access: &Access<'_>, response: &mut ResponseKind, refused: Refused) {
    use AclOperation::Describe;
    let extra = match refused {
        Refused::Nothing | Refused::Whole(_) => return,
        Refused::ListGroups => {
            if let ResponseKind::ListGroups(response) = response {
                if !access.cluster(Describe) {
                    response
                        .groups
                        .retain(|g| access.group(Describe, &g.group_id.0));
                }
            }
            return;
        }
        Refused::OffsetFetch(named) => {
            if let ResponseKind::OffsetFetch(response) = response {
                filter_offset_fetch(access, response, &named);
            }
            return;
        }
        Refused::Parts(extra) => *extra,
    };
    match (response, extra) {
        (ResponseKind::Produce(all), ResponseKind::Produce(more)) => {
            all.responses.extend(more.responses)
        }
        (ResponseKind::Fetch(all), ResponseKind::Fetch(more)) => {
            all.responses.extend(more.responses)
        }
        (ResponseKind::ListOffsets(all), ResponseKind::ListOffsets(more)) => {
            all.topics.extend(more.topics)
        }
        (ResponseKind::OffsetCommit(all), ResponseKind::OffsetCommit(more)) => {
            all.topics.extend(more.topics)
        }
        (ResponseKind::OffsetDelete(all), ResponseKind::OffsetDelete(more)) => {
            all.topics.extend(more.topics)
        }
        (ResponseKind::DescribeGroups(all), ResponseKind::DescribeGroups(more)) => {
            all.groups.extend(more.groups)
        }
        (ResponseKind::DeleteGroups(all), ResponseKind::DeleteGroups(more)) => {
            all.results.extend(more.results)
        }
        (ResponseKind::FindCoordinator(all), ResponseKind::FindCoordinator(more)) => {
            all.coordinators.extend(more.coordinators)
        }
        (ResponseKind::CreateTopics(all), ResponseKind::CreateTopics(more)) => {
            all.topics.extend(more.topics)
        }
        (ResponseKind::DeleteTopics(all), ResponseKind::DeleteTopics(more)) => {
            all.responses.extend(more.responses)
        }
        (ResponseKind::CreatePartitions(all), ResponseKind::CreatePartitions(more)) => {
            all.results.extend(more.results)
        }
        (ResponseKind::DescribeConfigs(all), ResponseKind::DescribeConfigs(more)) => {
            all.results.extend(more.results)
        }
        (ResponseKind::AlterConfigs(all), ResponseKind::AlterConfigs(more)) => {
            all.responses.extend(more.responses)
        }
        (
            ResponseKind::IncrementalAlterConfigs(all),
            ResponseKind::IncrementalAlterConfigs(more),
        ) => all.responses.extend(more.responses),
        (ResponseKind::DeleteRecords(all), ResponseKind::DeleteRecords(more)) => {
            all.topics.extend(more.topics)
        }
        (response, extra) => {
            unreachable!("refused parts {extra:?} of a different API than {response:?}")
        }
    }
}

/// An OffsetCommit topic answered `error` in every partition.
fn offset_commit_refused(
    topic: &kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic,
    error: ResponseError,
) -> OffsetCommitResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            OffsetCommitResponsePartition::default()
                .with_partition_index(p.partition_index)
                .with_error_code(error.code())
        })
        .collect();
    OffsetCommitResponseTopic::default()
        .with_name(topic.name.clone())
        .with_topic_id(topic.topic_id)
        .with_partitions(partitions)
}

/// OffsetFetch needs DESCRIBE on the group and on each topic (Kafka's
/// table): a refused group is answered GROUP_AUTHORIZATION_FAILED with no
/// topics; a refused topic the caller named is answered
/// TOPIC_AUTHORIZATION_FAILED, one it did not name is left out.
fn filter_offset_fetch(access: &Access<'_>, response: &mut OffsetFetchResponse, named: &[bool]) {
    use AclOperation::Describe;
    let error = ResponseError::TopicAuthorizationFailed.code();
    if response.groups.is_empty() {
        // v0-7: one group, at the top level; the group was checked first.
        let named = named.first().copied().unwrap_or(false);
        response.topics.retain_mut(|t| {
            if access.topic(Describe, &t.name) {
                return true;
            }
            for p in &mut t.partitions {
                p.error_code = error;
                p.committed_offset = -1;
                p.metadata = None;
            }
            named
        });
        return;
    }
    for (group, named) in response.groups.iter_mut().zip(named.iter().copied()) {
        if !access.group(Describe, &group.group_id.0) {
            group.topics.clear();
            group.error_code = ResponseError::GroupAuthorizationFailed.code();
            continue;
        }
        group.topics.retain_mut(|t| {
            if access.topic(Describe, &t.name) {
                return true;
            }
            for p in &mut t.partitions {
                p.error_code = error;
                p.committed_offset = -1;
                p.metadata = None;
            }
            named
        });
    }
}

/// The check of a config resource: `None` if allowed, else its error.
/// Topics need `operation` on the topic, brokers on the cluster; other
/// types go on to the handler, which refuses them.
fn config_allowed(
    access: &Access<'_>,
    operation: AclOperation,
    resource_type: i8,
    name: &str,
) -> Option<ResponseError> {
    let allowed = match resource_type {
        CONFIG_RESOURCE_TOPIC => access.allows(operation, AclResourceType::Topic, name),
        CONFIG_RESOURCE_BROKER => access.cluster(operation),
        _ => true,
    };
    (!allowed).then(|| config_error(resource_type))
}

fn config_error(resource_type: i8) -> ResponseError {
    if resource_type == CONFIG_RESOURCE_TOPIC {
        ResponseError::TopicAuthorizationFailed
    } else {
        ResponseError::ClusterAuthorizationFailed
    }
}
