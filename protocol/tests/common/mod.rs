//! Real requests for the integration tests, built with `kafka-protocol`'s
//! client-side encoders (the same codecs a Rust client would use).
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use ringlog_engine::batch::build_batch;
use ringlog_protocol::frame::write_frame_header;
use ringlog_protocol::versions::SUPPORTED_APIS;

/// Two concatenated record batches, as a producer could send them.
pub fn records() -> Bytes {
    let mut blob = build_batch(1_700_000_000_000, &[b"k1".as_slice(), b"value".as_slice()]);
    blob.extend(build_batch(1_700_000_000_001, &[b"more".as_slice()]));
    Bytes::from(blob)
}

fn topic(name: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(name))
}

/// A request body for `key` with some content where the API has a
/// natural one, defaults elsewhere.
pub fn body(key: ApiKey, version: i16) -> RequestKind {
    match key {
        ApiKey::Produce => RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic("events"))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(3)
                        .with_records(Some(records()))])]),
        ),
        ApiKey::Fetch => RequestKind::Fetch(
            FetchRequest::default()
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(50 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic("events"))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(3)
                        .with_fetch_offset(42)
                        .with_partition_max_bytes(1 << 20)])]),
        ),
        ApiKey::Metadata => {
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic("events"))),
            ])))
        }
        ApiKey::CreateTopics => RequestKind::CreateTopics(
            CreateTopicsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(topic("new-topic"))
                    .with_num_partitions(4)
                    .with_replication_factor(1)]),
        ),
        ApiKey::ApiVersions if version >= 3 => RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("ringlog-test"))
                .with_client_software_version(StrBytes::from_static_str("0.1.0")),
        ),
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(DeleteRecordsRequest::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(DescribeConfigsRequest::default()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(CreatePartitionsRequest::default())
        }
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
        }
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::FindCoordinator if version >= 4 => RequestKind::FindCoordinator(
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_static_str("group-a")]),
        ),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("group-a")),
        ),
        ApiKey::JoinGroup => RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("group-a")))
                .with_session_timeout_ms(10_000)
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"meta"))]),
        ),
        ApiKey::SyncGroup => RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("group-a")))
                .with_member_id(StrBytes::from_static_str("m-1")),
        ),
        ApiKey::Heartbeat => RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("group-a")))
                .with_member_id(StrBytes::from_static_str("m-1")),
        ),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(
            LeaveGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("group-a"))),
        ),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("group-a")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic("orders"))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_committed_offset(5),
                        ]),
                ]),
        ),
        ApiKey::OffsetFetch if version >= 8 => {
            RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(StrBytes::from_static_str("group-a"))),
            ]))
        }
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(
            OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("group-a")))
                .with_topics((version >= 2).then(Vec::new)),
        ),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(
            DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(StrBytes::from_static_str("group-a"))]),
        ),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(StrBytes::from_static_str("group-a"))]),
        ),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("group-a"))),
        ),
        // An idempotent producer's first request: no transactional id, and
        // from v3 no current producer id and epoch (-1) either.
        ApiKey::InitProducerId => RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        ),
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from_static(b"\0alice\0alice-secret")),
        ),
        // A user's producer quota set, and its request percentage removed.
        ApiKey::AlterClientQuotas => {
            RequestKind::AlterClientQuotas(AlterClientQuotasRequest::default().with_entries(vec![
                alter_client_quotas_request::EntryData::default()
                    .with_entity(vec![alter_client_quotas_request::EntityData::default()
                        .with_entity_type(StrBytes::from_static_str("user"))
                        .with_entity_name(Some(StrBytes::from_static_str("alice")))])
                    .with_ops(vec![
                        alter_client_quotas_request::OpData::default()
                            .with_key(StrBytes::from_static_str("producer_byte_rate"))
                            .with_value(1_048_576.0),
                        alter_client_quotas_request::OpData::default()
                            .with_key(StrBytes::from_static_str("request_percentage"))
                            .with_remove(true),
                    ]),
            ]))
        }
        // Every entity with a client-id part (match type 2: specified).
        ApiKey::DescribeClientQuotas => RequestKind::DescribeClientQuotas(
            DescribeClientQuotasRequest::default().with_components(vec![
                describe_client_quotas_request::ComponentData::default()
                    .with_entity_type(StrBytes::from_static_str("client-id"))
                    .with_match_type(2),
            ]),
        ),
        // alice may write every topic starting with "orders-".
        ApiKey::CreateAcls => RequestKind::CreateAcls(CreateAclsRequest::default().with_creations(
            vec![create_acls_request::AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("orders-"))
                .with_resource_pattern_type(4)
                .with_principal(StrBytes::from_static_str("User:alice"))
                .with_host(StrBytes::from_static_str("*"))
                .with_operation(4)
                .with_permission_type(3)],
        )),
        // Every binding that applies to topic "orders-eu".
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(StrBytes::from_static_str("orders-eu")))
                .with_pattern_type_filter(2)
                .with_operation(1)
                .with_permission_type(1),
        ),
        // Every binding of alice.
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(DeleteAclsRequest::default().with_filters(
            vec![delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_principal_filter(Some(StrBytes::from_static_str("User:alice")))
                .with_operation(1)
                .with_permission_type(1)],
        )),
        ApiKey::DescribeUserScramCredentials => RequestKind::DescribeUserScramCredentials(
            DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                describe_user_scram_credentials_request::UserName::default()
                    .with_name(StrBytes::from_static_str("alice")),
            ])),
        ),
        ApiKey::AlterUserScramCredentials => RequestKind::AlterUserScramCredentials(
            AlterUserScramCredentialsRequest::default()
                .with_deletions(vec![
                    alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                        .with_name(StrBytes::from_static_str("bob"))
                        .with_mechanism(1),
                ])
                .with_upsertions(vec![
                    alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                        .with_name(StrBytes::from_static_str("alice"))
                        .with_mechanism(2)
                        .with_iterations(4096)
                        .with_salt(Bytes::from_static(&[7; 32]))
                        .with_salted_password(Bytes::from_static(&[9; 64])),
                ]),
        ),
        other => panic!("no test body for {other:?}"),
    }
}

/// Header + body of one request (the frame contents, without the size
/// prefix), encoded as a client would.
pub fn encode_request(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<&'static str>,
    body: &RequestKind,
) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(StrBytes::from_static_str));
    let mut out = BytesMut::new();
    header
        .encode(&mut out, key.request_header_version(version))
        .unwrap_or_else(|e| panic!("{key:?} v{version} header: {e:#}"));
    body.encode(&mut out, version)
        .unwrap_or_else(|e| panic!("{key:?} v{version} body: {e:#}"));
    out.freeze()
}

/// The same, with its size prefix: the bytes on the wire.
pub fn wire_request(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<&'static str>,
    body: &RequestKind,
) -> Bytes {
    let inner = encode_request(key, version, correlation_id, client_id, body);
    let mut out = BytesMut::new();
    write_frame_header(&mut out, inner.len()).unwrap();
    out.extend_from_slice(&inner);
    out.freeze()
}

/// Every supported API at its minimum and maximum version (and one in the
/// middle), as (key, version, body, frame contents).
pub fn all_requests() -> Vec<(ApiKey, i16, RequestKind, Bytes)> {
    let mut out = Vec::new();
    for (i, entry) in SUPPORTED_APIS.iter().enumerate() {
        let mut versions = vec![entry.min, (entry.min + entry.max) / 2, entry.max];
        versions.dedup();
        for version in versions {
            let body = body(entry.key, version);
            let frame = encode_request(
                entry.key,
                version,
                1000 + i as i32,
                Some("ringlog-test"),
                &body,
            );
            out.push((entry.key, version, body, frame));
        }
    }
    out
}
