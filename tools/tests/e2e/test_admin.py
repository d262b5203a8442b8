"""Topic administration through confluent-kafka's AdminClient: create
(with configs, duplicates, invalid names, validate_only), describe and
alter configs (incremental and legacy), create partitions, delete,
DescribeCluster and DeleteRecords.

One server serves the whole module; every test uses its own topic names.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from kafka_clients import (
    CLIENT_TIMEOUT_S,
    admin,
    assert_same_records,
    by_partition,
    confluent_consume,
    confluent_consumer,
    confluent_produce,
    config_values,
    create_topic,
    describe_configs,
    kafka_error,
    make_records,
)
from ringlog_server import RinglogServer, wait_until

# Defaults the broker documents (README, engine::LogConfig), as Kafka
# topic configs.
DEFAULTS = {
    "segment.bytes": str(1 << 30),
    "segment.ms": str(7 * 24 * 3600 * 1000),
    "retention.ms": str(7 * 24 * 3600 * 1000),
    "retention.bytes": "-1",
    "cleanup.policy": "delete",
    "max.message.bytes": str(1 << 20),
}


@pytest.fixture
def server(module_server) -> RinglogServer:
    return module_server


def topic_names(server: RinglogServer) -> set[str]:
    return set(admin(server.bootstrap).list_topics(timeout=CLIENT_TIMEOUT_S).topics)


def partition_count(server: RinglogServer, topic: str) -> int:
    md = admin(server.bootstrap).list_topics(topic, timeout=CLIENT_TIMEOUT_S)
    t = md.topics[topic]
    assert t.error is None, f"{topic}: {t.error}"
    return len(t.partitions)


def create_error(server: RinglogServer, new_topic: NewTopic, **kwargs) -> KafkaError:
    client = admin(server.bootstrap)
    futures = client.create_topics([new_topic], request_timeout=30, **kwargs)
    with pytest.raises(KafkaException) as exc:
        futures[new_topic.topic].result(timeout=CLIENT_TIMEOUT_S)
    return kafka_error(exc.value)


def incremental_alter(
    server: RinglogServer, topic: str, *ops: tuple[str, str | None, AlterConfigOpType]
):
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(name, value, incremental_operation=op) for name, value, op in ops
        ],
    )
    client = admin(server.bootstrap)
    futures = client.incremental_alter_configs([resource], request_timeout=30)
    return futures[resource].result(timeout=CLIENT_TIMEOUT_S)


def legacy_alter(server: RinglogServer, topic: str, configs: dict[str, str]):
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config=configs)
    client = admin(server.bootstrap)
    futures = client.alter_configs([resource], request_timeout=30)
    return futures[resource].result(timeout=CLIENT_TIMEOUT_S)


# ---------------------------------------------------------------- create / list


def test_create_topic_with_config_shows_in_list_topics(server):
    """create_topics with num_partitions and retention.ms; list_topics shows
    the partitions, all led by node 0, and the single broker's address."""
    create_topic(server.bootstrap, "orders", 4, {"retention.ms": "3600000"})
    md = admin(server.bootstrap).list_topics(timeout=CLIENT_TIMEOUT_S)
    assert {b.id: (b.host, b.port) for b in md.brokers.values()} == {0: server.kafka_addr}
    assert "orders" in md.topics
    t = md.topics["orders"]
    assert t.error is None
    assert sorted(t.partitions) == [0, 1, 2, 3]
    for p in t.partitions.values():
        assert p.error is None and p.leader == 0, p
        assert list(p.replicas) == [0] and list(p.isrs) == [0], p


def test_create_duplicate_topic_fails_with_topic_already_exists(server):
    create_topic(server.bootstrap, "dup", 2)
    err = create_error(server, NewTopic("dup", num_partitions=3, replication_factor=1))
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS == 36, err
    assert partition_count(server, "dup") == 2, "the failed create must not change the topic"


@pytest.mark.parametrize(
    "name", ["bad/name", "a b", "..", "x" * 250], ids=["slash", "space", "dot-dot", "250-chars"]
)
def test_create_invalid_topic_name_fails_with_invalid_topic_exception(server, name):
    err = create_error(server, NewTopic(name, num_partitions=1, replication_factor=1))
    assert err.code() == KafkaError.TOPIC_EXCEPTION == 17, err
    assert name not in topic_names(server)


def test_validate_only_create_does_not_create(server):
    """validate_only=True succeeds for a valid request but creates nothing,
    and still reports errors (duplicate name)."""
    client = admin(server.bootstrap)
    futures = client.create_topics(
        [
            NewTopic(
                "validate-only",
                num_partitions=3,
                replication_factor=1,
                config={"retention.ms": "60000"},
            )
        ],
        validate_only=True,
        request_timeout=30,
    )
    futures["validate-only"].result(timeout=CLIENT_TIMEOUT_S)
    assert "validate-only" not in topic_names(server)

    create_topic(server.bootstrap, "validate-dup", 1)
    err = create_error(
        server, NewTopic("validate-dup", num_partitions=1, replication_factor=1), validate_only=True
    )
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS, err


def test_create_with_unknown_config_fails_with_invalid_config(server):
    err = create_error(
        server,
        NewTopic(
            "unknown-config", num_partitions=1, replication_factor=1, config={"no.such.config": "1"}
        ),
    )
    assert err.code() == KafkaError.INVALID_CONFIG == 40, err
    assert "unknown-config" not in topic_names(server)


# ---------------------------------------------------------------- configs


def test_describe_configs_shows_set_value_and_defaults(server):
    create_topic(server.bootstrap, "described", 2, {"retention.ms": "3600000"})
    entries = describe_configs(server.bootstrap, "described")
    assert set(DEFAULTS) <= set(entries), f"missing configs: {set(DEFAULTS) - set(entries)}"

    retention = entries["retention.ms"]
    assert retention.value == "3600000"
    assert ConfigSource(retention.source) == ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source
    assert not retention.is_default

    for name, value in DEFAULTS.items():
        if name == "retention.ms":
            continue
        entry = entries[name]
        assert entry.value == value, f"default {name}={entry.value}, expected {value}"
        assert ConfigSource(entry.source) != ConfigSource.DYNAMIC_TOPIC_CONFIG, (
            f"{name} was never set on the topic but is reported as a topic override"
        )


def test_incremental_alter_configs_changes_values(server):
    """SET changes retention.ms and segment.bytes (others untouched);
    DELETE reverts retention.ms to its default."""
    create_topic(
        server.bootstrap, "inc-alter", 1, {"retention.ms": "3600000", "max.message.bytes": "500000"}
    )
    incremental_alter(
        server,
        "inc-alter",
        ("retention.ms", "7200000", AlterConfigOpType.SET),
        ("segment.bytes", "1048576", AlterConfigOpType.SET),
    )
    values = config_values(server.bootstrap, "inc-alter")
    assert values["retention.ms"] == "7200000"
    assert values["segment.bytes"] == "1048576"
    assert values["max.message.bytes"] == "500000", "an incremental alter must keep other overrides"

    incremental_alter(server, "inc-alter", ("retention.ms", None, AlterConfigOpType.DELETE))
    values = config_values(server.bootstrap, "inc-alter")
    assert values["retention.ms"] == DEFAULTS["retention.ms"]
    assert values["segment.bytes"] == "1048576"


def test_legacy_alter_configs_changes_values(server):
    """The deprecated (non-incremental) AlterConfigs sets retention.ms and
    segment.bytes."""
    create_topic(server.bootstrap, "legacy-alter", 1, {"retention.ms": "3600000"})
    legacy_alter(server, "legacy-alter", {"retention.ms": "1800000", "segment.bytes": "2097152"})
    values = config_values(server.bootstrap, "legacy-alter")
    assert values["retention.ms"] == "1800000"
    assert values["segment.bytes"] == "2097152"


def test_alter_unknown_or_unsupported_config_fails(server):
    """Unknown names fail with INVALID_CONFIG in both alter APIs;
    cleanup.policy=compact is refused; nothing changes."""
    create_topic(server.bootstrap, "alter-bad", 1, {"retention.ms": "3600000"})
    with pytest.raises(KafkaException) as exc:
        incremental_alter(server, "alter-bad", ("no.such.config", "1", AlterConfigOpType.SET))
    assert kafka_error(exc.value).code() == KafkaError.INVALID_CONFIG, exc.value
    with pytest.raises(KafkaException) as exc:
        legacy_alter(server, "alter-bad", {"retention.ms": "3600000", "no.such.config": "1"})
    assert kafka_error(exc.value).code() == KafkaError.INVALID_CONFIG, exc.value
    with pytest.raises(KafkaException):
        incremental_alter(server, "alter-bad", ("cleanup.policy", "compact", AlterConfigOpType.SET))
    values = config_values(server.bootstrap, "alter-bad")
    assert values["retention.ms"] == "3600000"
    assert values["cleanup.policy"] == "delete"
    assert "no.such.config" not in values


# ---------------------------------------------------------------- partitions / delete


def test_create_partitions_grows_topic_and_new_partition_works(server):
    """4 -> 6 partitions: metadata shows 6, partition 5 takes a record at
    offset 0 and returns it; shrinking is refused."""
    create_topic(server.bootstrap, "growing", 4)
    client = admin(server.bootstrap)
    futures = client.create_partitions(
        [NewPartitions("growing", 6)], request_timeout=30
    )
    futures["growing"].result(timeout=CLIENT_TIMEOUT_S)
    assert partition_count(server, "growing") == 6

    records = make_records("growing", [5], 3)
    delivered = confluent_produce(server.bootstrap, "growing", records)
    assert [(r.partition, r.offset) for r in delivered] == [(5, 0), (5, 1), (5, 2)]
    assert_same_records(
        confluent_consume(server.bootstrap, "growing", range(6)), by_partition(records)
    )

    client = admin(server.bootstrap)

    futures = client.create_partitions(
        [NewPartitions("growing", 3)], request_timeout=30
    )
    with pytest.raises(KafkaException) as exc:
        futures["growing"].result(timeout=CLIENT_TIMEOUT_S)
    assert kafka_error(exc.value).code() == KafkaError.INVALID_PARTITIONS, exc.value
    assert partition_count(server, "growing") == 6


def test_delete_topic_then_recreate(server):
    """After delete_topics the topic is gone from metadata; recreating it
    (with another partition count) gives an empty topic."""
    create_topic(server.bootstrap, "doomed", 3)
    confluent_produce(server.bootstrap, "doomed", make_records("doomed", range(3), 5))
    client = admin(server.bootstrap)
    futures = client.delete_topics(
        ["doomed"], request_timeout=30, operation_timeout=30
    )
    futures["doomed"].result(timeout=CLIENT_TIMEOUT_S)
    wait_until(
        lambda: "doomed" not in topic_names(server), 10, "the deleted topic to leave metadata"
    )

    create_topic(server.bootstrap, "doomed", 2)
    assert partition_count(server, "doomed") == 2
    consumer = confluent_consumer(server.bootstrap)
    try:
        for p in range(2):
            wm = consumer.get_watermark_offsets(
                TopicPartition("doomed", p), timeout=10, cached=False
            )
            assert wm == (0, 0), f"recreated partition {p} watermarks {wm}"
    finally:
        consumer.close()
    records = make_records("doomed-again", range(2), 3)
    confluent_produce(server.bootstrap, "doomed", records)
    assert_same_records(
        confluent_consume(server.bootstrap, "doomed", range(2)), by_partition(records)
    )


def test_delete_unknown_topic_fails(server):
    client = admin(server.bootstrap)
    futures = client.delete_topics(["never-created"], request_timeout=30)
    with pytest.raises(KafkaException) as exc:
        futures["never-created"].result(timeout=CLIENT_TIMEOUT_S)
    assert kafka_error(exc.value).code() == KafkaError.UNKNOWN_TOPIC_OR_PART, exc.value


# ---------------------------------------------------------------- cluster / records


def test_describe_cluster_lists_the_single_broker(server):
    result = (
        admin(server.bootstrap)
        .describe_cluster(request_timeout=30)
        .result(timeout=CLIENT_TIMEOUT_S)
    )
    assert [(n.id, n.host, n.port) for n in result.nodes] == [(0, *server.kafka_addr)]
    assert result.controller is not None and result.controller.id == 0
    assert result.cluster_id, "empty cluster id"


def test_delete_records_moves_the_low_watermark(server):
    create_topic(server.bootstrap, "trimmed", 2)
    records = make_records("trimmed", [0], 10)
    confluent_produce(server.bootstrap, "trimmed", records)
    client = admin(server.bootstrap)
    futures = client.delete_records(
        [TopicPartition("trimmed", 0, 4)], request_timeout=30, operation_timeout=30
    )
    (deleted,) = [f.result(timeout=CLIENT_TIMEOUT_S) for f in futures.values()]
    assert deleted.low_watermark == 4
    consumer = confluent_consumer(server.bootstrap)
    try:
        wm = consumer.get_watermark_offsets(TopicPartition("trimmed", 0), timeout=10, cached=False)
        assert wm == (4, 10), wm
    finally:
        consumer.close()
    consumed = confluent_consume(server.bootstrap, "trimmed", [0])
    assert_same_records(consumed, {0: records[4:]}, start_offsets={0: 4})
