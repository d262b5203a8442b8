//! A real server on 127.0.0.1 answering every supported API at every
//! version it advertises: each request is encoded by `kafka-protocol`'s
//! client side, each response must decode at that version and carry no
//! error. This is what catches a response field set at a version that
//! cannot carry it (the encoder then refuses, and the connection closes).

mod common;

use bytes::Bytes;
use common::{create_topic, fetch_from_start, name, Client, Server};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use ringlog_engine::batch::build_batch;
use ringlog_protocol::versions::supported;
use ringlog_shard::config::{RouterCores, ServerConfig};
use ringlog_shard::server::serve;
use ringlog_shard::wake;
use std::path::PathBuf;

fn versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let range = supported(key).unwrap();
    range.min..=range.max
}

#[test]
fn every_api_answers_at_every_advertised_version() {
    let server = Server::start("wire-every-version");
    let mut client = Client::connect(server.addr);

    for version in versions(ApiKey::ApiVersions) {
        let ResponseKind::ApiVersions(response) =
            client.call(version, ApiVersionsRequest::default())
        else {
            panic!("not ApiVersions");
        };
        assert_eq!(response.error_code, 0);
        assert!(response.api_keys.len() >= 13);
    }
    for version in versions(ApiKey::CreateTopics) {
        create_topic(&mut client, version, &format!("created-v{version}"), 2);
    }
    let topic = "t";
    create_topic(&mut client, 7, topic, 3);

    for version in versions(ApiKey::Metadata) {
        let request = MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic))),
        ]));
        let ResponseKind::Metadata(response) = client.call(version, request) else {
            panic!("not Metadata");
        };
        assert_eq!(response.brokers.len(), 1, "Metadata v{version}");
        assert_eq!(response.topics[0].error_code, 0, "Metadata v{version}");
        assert_eq!(
            response.topics[0].partitions.len(),
            3,
            "Metadata v{version}"
        );
    }

    let mut produced = 0i64;
    for version in versions(ApiKey::Produce) {
        let value = format!("value at v{version}");
        let batch = Bytes::from(build_batch(1_700_000_000_000, &[value.as_bytes()]));
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(1)
                        .with_records(Some(batch)),
                ])]);
        let ResponseKind::Produce(response) = client.call(version, request) else {
            panic!("not Produce");
        };
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0, "Produce v{version}");
        assert_eq!(partition.base_offset, produced, "Produce v{version}");
        produced += 1;
    }

    for version in versions(ApiKey::Fetch) {
        let request = fetch_from_start(topic, 1);
        let ResponseKind::Fetch(response) = client.call(version, request) else {
            panic!("not Fetch");
        };
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0, "Fetch v{version}");
        assert_eq!(partition.high_watermark, produced, "Fetch v{version}");
        let records = partition.records.clone().unwrap();
        let batches = ringlog_protocol::batches(&records).count() as i64;
        assert_eq!(batches, produced, "Fetch v{version} returns every batch");
    }

    for version in versions(ApiKey::ListOffsets) {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(1)
                        .with_timestamp(-1),
                ])]);
        let ResponseKind::ListOffsets(response) = client.call(version, request) else {
            panic!("not ListOffsets");
        };
        let partition = &response.topics[0].partitions[0];
        assert_eq!(partition.error_code, 0, "ListOffsets v{version}");
        assert_eq!(partition.offset, produced, "ListOffsets v{version}");
    }

    for version in versions(ApiKey::DescribeConfigs) {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("t")),
        ]);
        let ResponseKind::DescribeConfigs(response) = client.call(version, request) else {
            panic!("not DescribeConfigs");
        };
        assert_eq!(
            response.results[0].error_code, 0,
            "DescribeConfigs v{version}"
        );
        assert_eq!(
            response.results[0].configs.len(),
            ringlog_shard::topic_config::SPECS.len(),
            "every Kafka topic config"
        );
    }

    for version in versions(ApiKey::AlterConfigs) {
        let request = AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("t"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_string(format!(
                        "{}",
                        100_000 + i64::from(version)
                    ))))]),
        ]);
        let ResponseKind::AlterConfigs(response) = client.call(version, request) else {
            panic!("not AlterConfigs");
        };
        assert_eq!(
            response.responses[0].error_code, 0,
            "AlterConfigs v{version}"
        );
    }

    for version in versions(ApiKey::IncrementalAlterConfigs) {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("t"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("segment.bytes"))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_static_str("2097152"))),
                ]),
        ]);
        let ResponseKind::IncrementalAlterConfigs(response) = client.call(version, request) else {
            panic!("not IncrementalAlterConfigs");
        };
        assert_eq!(
            response.responses[0].error_code, 0,
            "IncrementalAlterConfigs v{version}"
        );
    }

    let mut partitions = 3;
    for version in versions(ApiKey::CreatePartitions) {
        partitions += 1;
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(name(topic))
                    .with_count(partitions),
            ]);
        let ResponseKind::CreatePartitions(response) = client.call(version, request) else {
            panic!("not CreatePartitions");
        };
        assert_eq!(
            response.results[0].error_code, 0,
            "CreatePartitions v{version}"
        );
    }

    for version in versions(ApiKey::DescribeCluster) {
        let ResponseKind::DescribeCluster(response) =
            client.call(version, DescribeClusterRequest::default())
        else {
            panic!("not DescribeCluster");
        };
        assert_eq!(response.error_code, 0, "DescribeCluster v{version}");
        assert_eq!(response.brokers[0].port, i32::from(server.addr.port()));
    }

    for version in versions(ApiKey::DeleteRecords) {
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(1)
                        .with_offset(i64::from(version) + 1),
                ])]);
        let ResponseKind::DeleteRecords(response) = client.call(version, request) else {
            panic!("not DeleteRecords");
        };
        let partition = &response.topics[0].partitions[0];
        assert_eq!(partition.error_code, 0, "DeleteRecords v{version}");
        assert_eq!(partition.low_watermark, i64::from(version) + 1);
    }

    let mut producer_ids = Vec::new();
    for version in versions(ApiKey::InitProducerId) {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000);
        let ResponseKind::InitProducerId(response) = client.call(version, request) else {
            panic!("not InitProducerId");
        };
        assert_eq!(response.error_code, 0, "InitProducerId v{version}");
        assert_eq!(response.producer_epoch, 0, "InitProducerId v{version}");
        producer_ids.push(response.producer_id.0);
    }
    assert!(
        producer_ids.windows(2).all(|w| w[0] < w[1]) && producer_ids[0] >= 0,
        "fresh ids every time: {producer_ids:?}"
    );

    for version in versions(ApiKey::DeleteTopics) {
        let doomed = format!("created-v{}", version + 1);
        let request = if version >= 6 {
            DeleteTopicsRequest::default()
                .with_topics(vec![delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(name(&doomed)))])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&doomed)])
        }
        .with_timeout_ms(10_000);
        let ResponseKind::DeleteTopics(response) = client.call(version, request) else {
            panic!("not DeleteTopics");
        };
        assert_eq!(
            response.responses[0].error_code, 0,
            "DeleteTopics v{version}"
        );
    }
}

#[test]
fn with_a_router_on_every_shard_each_connection_sees_the_others_changes() {
    let server = Server::start_with("wire-router-cores-all", |config| {
        config.router_cores = RouterCores::All;
    });
    // SO_REUSEPORT spreads connections over both shards' listeners; a
    // topic created on one connection must be visible on every other at
    // once (the router waits for its replica before answering).
    let mut clients: Vec<Client> = (0..8).map(|_| Client::connect(server.addr)).collect();
    for round in 0..8 {
        let topic = format!("spread-{round}");
        let creator = round % clients.len();
        create_topic(&mut clients[creator], 7, &topic, 2);
        for (i, client) in clients.iter_mut().enumerate() {
            let request = MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(name(&topic))),
            ]));
            let ResponseKind::Metadata(response) = client.call(12, request) else {
                panic!("not Metadata");
            };
            assert_eq!(
                response.topics[0].error_code, 0,
                "connection {i} does not see {topic} created on connection {creator}"
            );
            assert_eq!(response.topics[0].partitions.len(), 2);
        }
    }
}

#[test]
fn with_a_router_on_every_shard_each_connection_reads_every_acknowledged_commit() {
    let server = Server::start_with("wire-router-cores-all-offsets", |config| {
        config.router_cores = RouterCores::All;
    });
    let mut clients: Vec<Client> = (0..8).map(|_| Client::connect(server.addr)).collect();
    create_topic(&mut clients[0], 7, "committed", 1);
    // OffsetFetch is answered by whichever router got the connection, from
    // its own replica: each commit, acknowledged through one router, must
    // be what every other connection reads right after.
    for round in 0..32_i64 {
        let committer = round as usize % clients.len();
        let commit = OffsetCommitRequest::default()
            .with_group_id(group("spread-group"))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(name("committed"))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(round),
                    ]),
            ]);
        let ResponseKind::OffsetCommit(response) = clients[committer].call(8, commit) else {
            panic!("not OffsetCommit");
        };
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
        for (i, client) in clients.iter_mut().enumerate() {
            let fetch = OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(group("spread-group"))
                    .with_topics(None),
            ]);
            let ResponseKind::OffsetFetch(response) = client.call(8, fetch) else {
                panic!("not OffsetFetch");
            };
            let partitions = &response.groups[0].topics[0].partitions;
            assert_eq!(
                partitions[0].committed_offset, round,
                "connection {i} does not read commit {round} made on connection {committer}"
            );
        }
    }
}

#[test]
fn a_second_server_on_the_same_address_refuses_to_start() {
    // The first listens on every shard with SO_REUSEPORT, which would let
    // a second listener share the port unless start-up checks first.
    let first = Server::start_with("wire-address-taken", |config| {
        config.router_cores = RouterCores::All;
    });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wire-address-taken-second");
    let mut config = ServerConfig::new(dir, 1);
    config.listen = first.addr;
    config.advertised_port = first.addr.port();
    // Stopped before it starts: were the bind to succeed, serve would
    // return Ok at once instead of hanging the test.
    let (stop, stopped) = wake::channel::<()>();
    drop(stop);
    let err = serve(config, stopped).expect_err("the address is taken");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is already in use (another ringlog or Kafka broker?)",
            first.addr
        )
    );
    let mut client = Client::connect(first.addr);
    let ResponseKind::ApiVersions(response) = client.call(3, ApiVersionsRequest::default()) else {
        panic!("not ApiVersions");
    };
    assert_eq!(response.error_code, 0, "the first server still answers");
}

fn group(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// JoinGroup at `version` as a new member, following MEMBER_ID_REQUIRED
/// (v4+); returns the join answer.
fn join(client: &mut Client, version: i16, group_id: &str) -> JoinGroupResponse {
    let request = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(group(group_id))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(if version >= 1 { 10_000 } else { -1 })
            .with_member_id(text(member))
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(text("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
    };
    let ResponseKind::JoinGroup(first) = client.call(version, request("")) else {
        panic!("not JoinGroup");
    };
    if version < 4 {
        return first;
    }
    assert_eq!(
        first.error_code, 79,
        "JoinGroup v{version}: MEMBER_ID_REQUIRED"
    );
    let ResponseKind::JoinGroup(joined) = client.call(version, request(&first.member_id)) else {
        panic!("not JoinGroup");
    };
    joined
}

/// Joins `group_id` and syncs an assignment at SyncGroup `version`.
fn join_and_sync(client: &mut Client, version: i16, group_id: &str) -> (String, i32) {
    let joined = join(client, 5, group_id);
    assert_eq!(joined.error_code, 0);
    let member = joined.member_id.to_string();
    let request = SyncGroupRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id(joined.generation_id)
        .with_member_id(text(&member))
        .with_protocol_type(Some(text("consumer")).filter(|_| version >= 5))
        .with_protocol_name(Some(text("range")).filter(|_| version >= 5))
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(text(&member))
                .with_assignment(Bytes::from_static(b"assigned")),
        ]);
    let ResponseKind::SyncGroup(synced) = client.call(version, request) else {
        panic!("not SyncGroup");
    };
    assert_eq!(synced.error_code, 0, "SyncGroup v{version}");
    assert_eq!(synced.assignment, Bytes::from_static(b"assigned"));
    (member, joined.generation_id)
}

#[test]
fn every_group_api_answers_at_every_advertised_version() {
    let server = Server::start_with("wire-groups", |config| {
        config.coordinator.groups.initial_rebalance_delay_ms = 0;
    });
    let mut client = Client::connect(server.addr);
    let topic = "offsets";
    create_topic(&mut client, 7, topic, 2);

    for version in versions(ApiKey::JoinGroup) {
        let joined = join(&mut client, version, &format!("join-v{version}"));
        assert_eq!(joined.error_code, 0, "JoinGroup v{version}");
        assert_eq!(joined.generation_id, 1, "JoinGroup v{version}");
        assert_eq!(joined.leader, joined.member_id, "JoinGroup v{version}");
        assert_eq!(joined.members.len(), 1, "JoinGroup v{version}");
    }
    for version in versions(ApiKey::SyncGroup) {
        join_and_sync(&mut client, version, &format!("sync-v{version}"));
    }
    let (member, generation) = join_and_sync(&mut client, 5, "stable");
    for version in versions(ApiKey::Heartbeat) {
        let request = HeartbeatRequest::default()
            .with_group_id(group("stable"))
            .with_generation_id(generation)
            .with_member_id(text(&member));
        let ResponseKind::Heartbeat(response) = client.call(version, request) else {
            panic!("not Heartbeat");
        };
        assert_eq!(response.error_code, 0, "Heartbeat v{version}");
    }
    for version in versions(ApiKey::OffsetCommit) {
        let request = OffsetCommitRequest::default()
            .with_group_id(group("stable"))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(text(&member))
            .with_retention_time_ms(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(1)
                            .with_committed_offset(100 + i64::from(version))
                            .with_committed_leader_epoch(if version >= 6 { 0 } else { -1 })
                            .with_committed_metadata(Some(text("meta"))),
                    ]),
            ]);
        let ResponseKind::OffsetCommit(response) = client.call(version, request) else {
            panic!("not OffsetCommit");
        };
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "OffsetCommit v{version}"
        );
    }
    let last_commit = 100 + i64::from(*versions(ApiKey::OffsetCommit).end());
    for version in versions(ApiKey::OffsetFetch) {
        let (committed, metadata) = if version >= 8 {
            let request = OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(group("stable"))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopics::default()
                            .with_name(name(topic))
                            .with_partition_indexes(vec![1]),
                    ])),
            ]);
            let ResponseKind::OffsetFetch(response) = client.call(version, request) else {
                panic!("not OffsetFetch");
            };
            let partition = &response.groups[0].topics[0].partitions[0];
            (partition.committed_offset, partition.metadata.clone())
        } else {
            let request = OffsetFetchRequest::default()
                .with_group_id(group("stable"))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(name(topic))
                        .with_partition_indexes(vec![1]),
                ]));
            let ResponseKind::OffsetFetch(response) = client.call(version, request) else {
                panic!("not OffsetFetch");
            };
            let partition = &response.topics[0].partitions[0];
            (partition.committed_offset, partition.metadata.clone())
        };
        assert_eq!(committed, last_commit, "OffsetFetch v{version}");
        assert_eq!(metadata.as_deref(), Some("meta"), "OffsetFetch v{version}");
    }
    for version in versions(ApiKey::DescribeGroups) {
        let request = DescribeGroupsRequest::default().with_groups(vec![group("stable")]);
        let ResponseKind::DescribeGroups(response) = client.call(version, request) else {
            panic!("not DescribeGroups");
        };
        let described = &response.groups[0];
        assert_eq!(
            described.group_state.as_str(),
            "Stable",
            "DescribeGroups v{version}"
        );
        assert_eq!(described.members[0].member_id.as_str(), member);
        assert_eq!(described.members[0].client_id.as_str(), "wire-test");
        assert_eq!(described.members[0].client_host.as_str(), "/127.0.0.1");
    }
    for version in versions(ApiKey::ListGroups) {
        let ResponseKind::ListGroups(response) = client.call(version, ListGroupsRequest::default())
        else {
            panic!("not ListGroups");
        };
        assert_eq!(response.error_code, 0, "ListGroups v{version}");
        assert!(
            response
                .groups
                .iter()
                .any(|g| g.group_id.0.as_str() == "stable"),
            "ListGroups v{version}"
        );
    }
    for version in versions(ApiKey::LeaveGroup) {
        let group_id = format!("leave-v{version}");
        let (member, _) = join_and_sync(&mut client, 5, &group_id);
        let request = if version >= 3 {
            LeaveGroupRequest::default().with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(text(&member)),
            ])
        } else {
            LeaveGroupRequest::default().with_member_id(text(&member))
        }
        .with_group_id(group(&group_id));
        let ResponseKind::LeaveGroup(response) = client.call(version, request) else {
            panic!("not LeaveGroup");
        };
        assert_eq!(response.error_code, 0, "LeaveGroup v{version}");
        assert!(response.members.iter().all(|m| m.error_code == 0));
    }
    let request = LeaveGroupRequest::default()
        .with_group_id(group("stable"))
        .with_member_id(text(&member));
    client.call(0, request);
    for version in versions(ApiKey::OffsetDelete) {
        let request = OffsetDeleteRequest::default()
            .with_group_id(group("stable"))
            .with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![
                        offset_delete_request::OffsetDeleteRequestPartition::default()
                            .with_partition_index(1),
                    ]),
            ]);
        let ResponseKind::OffsetDelete(response) = client.call(version, request) else {
            panic!("not OffsetDelete");
        };
        assert_eq!(response.error_code, 0, "OffsetDelete v{version}");
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
    }
    for version in versions(ApiKey::DeleteGroups) {
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group("stable")]);
        let ResponseKind::DeleteGroups(response) = client.call(version, request) else {
            panic!("not DeleteGroups");
        };
        let expected = if version == 0 { 0 } else { 69 };
        assert_eq!(
            response.results[0].error_code, expected,
            "DeleteGroups v{version}: deleted once, then GROUP_ID_NOT_FOUND"
        );
    }
}

fn init_producer_id(client: &mut Client, transactional_id: Option<&str>) -> InitProducerIdResponse {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.into()))),
        )
        .with_transaction_timeout_ms(60_000);
    let ResponseKind::InitProducerId(response) = client.call(4, request) else {
        panic!("not InitProducerId");
    };
    response
}

/// Produces one batch to partition 0 of `topic`; (error code, base offset).
fn produce_batch(client: &mut Client, topic: &str, batch: Vec<u8>) -> (i16, i64) {
    let answer = common::produce_batch(client, 9, topic, 0, batch);
    (answer.error_code, answer.base_offset)
}

#[test]
fn idempotent_produce_over_the_wire() {
    use ringlog_engine::batch::build_producer_batch;
    let server = Server::start("wire-idempotent");
    let mut client = Client::connect(server.addr);
    create_topic(&mut client, 7, "idem", 1);
    let refused = init_producer_id(&mut client, Some("txn-1"));
    assert_eq!(refused.error_code, 53, "transactions are not supported");
    let granted = init_producer_id(&mut client, None);
    assert_eq!((granted.error_code, granted.producer_epoch), (0, 0));
    let pid = granted.producer_id.0;
    let values = [b"a".as_slice(), b"b".as_slice()];
    let batch = |epoch, seq| build_producer_batch(1_700_000_000_000, &values, pid, epoch, seq);
    assert_eq!(produce_batch(&mut client, "idem", batch(0, 0)), (0, 0));
    assert_eq!(produce_batch(&mut client, "idem", batch(0, 2)), (0, 2));
    // The same batch again: the original offset, not written twice.
    assert_eq!(produce_batch(&mut client, "idem", batch(0, 0)), (0, 0));
    assert_eq!(produce_batch(&mut client, "idem", batch(0, 2)), (0, 2));
    // A gap: OUT_OF_ORDER_SEQUENCE_NUMBER.
    assert_eq!(produce_batch(&mut client, "idem", batch(0, 5)), (45, -1));
    // A new epoch from 0, then the old epoch: INVALID_PRODUCER_EPOCH.
    assert_eq!(produce_batch(&mut client, "idem", batch(1, 0)), (0, 4));
    assert_eq!(produce_batch(&mut client, "idem", batch(0, 4)), (47, -1));
    // A negative sequence with a producer id: INVALID_RECORD.
    assert_eq!(produce_batch(&mut client, "idem", batch(1, -3)), (87, -1));
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name("idem"))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1),
            ])]);
    let ResponseKind::ListOffsets(response) = client.call(6, request) else {
        panic!("not ListOffsets");
    };
    assert_eq!(
        response.topics[0].partitions[0].offset, 6,
        "three batches of two"
    );
}

#[test]
fn producer_ids_are_never_handed_out_again_after_a_restart() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wire-producer-ids");
    let first: Vec<i64> = {
        let server = Server::start_with("wire-producer-ids", |_| {});
        let mut client = Client::connect(server.addr);
        (0..3)
            .map(|_| init_producer_id(&mut client, None).producer_id.0)
            .collect()
    };
    assert_eq!(first, vec![0, 1, 2], "the first block starts at 0");
    let server = Server::start_in(dir, |_| {});
    let mut client = Client::connect(server.addr);
    let after = init_producer_id(&mut client, None);
    assert_eq!(after.error_code, 0);
    // The rest of the first block is skipped: the next block starts at its end.
    assert_eq!(after.producer_id.0, 1000);
}

#[test]
fn pipelined_answers_come_back_in_request_order_whatever_their_size() {
    let server = Server::start("wire-pipelined");
    let mut client = Client::connect(server.addr);
    create_topic(&mut client, 7, "piped", 1);
    // 256 KiB of records: a Fetch from the start answers with more than
    // the router gathers into one write.
    let value = vec![b'x'; 16 * 1024];
    let values: Vec<&[u8]> = (0..16).map(|_| value.as_slice()).collect();
    let batch = build_batch(1_700_000_000_000, &values);
    assert_eq!(produce_batch(&mut client, "piped", batch), (0, 0));
    // A Fetch at the end of the log waits its 50 ms: the answers behind it
    // are ready first and must wait for it.
    let mut waiting_fetch = fetch_from_start("piped", 0).with_max_wait_ms(50);
    waiting_fetch.topics[0].partitions[0].fetch_offset = 16;
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name("piped"))),
    ]));
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for i in 0..120 {
        let (key, (correlation_id, frame)) = match i % 6 {
            0 => (
                ApiKey::Fetch,
                client.frame(12, fetch_from_start("piped", 0)),
            ),
            3 => (ApiKey::Fetch, client.frame(12, waiting_fetch.clone())),
            1 | 4 => (
                ApiKey::ApiVersions,
                client.frame(0, ApiVersionsRequest::default()),
            ),
            _ => (ApiKey::Metadata, client.frame(12, metadata.clone())),
        };
        wire.extend_from_slice(&frame);
        sent.push((i, key, correlation_id));
    }
    client.write_raw(&wire);
    for (i, key, correlation_id) in sent {
        let version = if key == ApiKey::ApiVersions { 0 } else { 12 };
        match client.receive(key, version, correlation_id) {
            ResponseKind::Fetch(response) => {
                let partition = &response.responses[0].partitions[0];
                assert_eq!(partition.error_code, 0, "request {i}");
                let records = partition.records.as_ref().map_or(0, |r| r.len());
                if i % 6 == 0 {
                    assert!(records > 256 * 1024, "request {i}: {records} bytes");
                } else {
                    assert_eq!(records, 0, "request {i}: records past the end");
                }
            }
            ResponseKind::ApiVersions(response) => {
                assert_eq!(response.error_code, 0, "request {i}");
            }
            ResponseKind::Metadata(response) => {
                assert_eq!(response.topics[0].error_code, 0, "request {i}");
            }
            other => panic!("request {i}: unexpected {other:?}"),
        }
    }
}
