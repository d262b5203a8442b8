"""Kafka 3.9's topic configs and manual replica assignments through
confluent-kafka's AdminClient: every key created, described (value,
source, is_default, synonyms) and deleted; APPEND/SUBTRACT and legacy
alters; refusals; configs across a restart; honoured configs acting on
produce; CreateTopics with a replica assignment to broker 0; the tiered
storage keys following the broker's --archive.

One server serves the module (but the restart and --archive off tests);
every test uses its own topic names.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

from kafka_clients import (
    CLIENT_TIMEOUT_S,
    admin,
    assert_same_records,
    by_partition,
    confluent_consume,
    confluent_producer,
    confluent_produce,
    config_values,
    create_topic,
    describe_configs,
    kafka_error,
    make_records,
)

# A valid value other than the default for every key, and how the broker
# prints it (trimmed, canonical booleans, list elements joined).
EVERY_KEY = {
    "cleanup.policy": ("", ""),
    "compression.gzip.level": ("5", "5"),
    "compression.lz4.level": ("12", "12"),
    "compression.type": ("lz4", "lz4"),
    "compression.zstd.level": ("-5", "-5"),
    "delete.retention.ms": ("1000", "1000"),
    "file.delete.delay.ms": ("0", "0"),
    "flush.messages": ("1", "1"),
    "flush.ms": ("1000", "1000"),
    "follower.replication.throttled.replicas": ("0:0, 1:0", "0:0,1:0"),
    "index.interval.bytes": ("1024", "1024"),
    "leader.replication.throttled.replicas": ("*", "*"),
    "local.retention.bytes": ("-1", "-1"),
    "local.retention.ms": ("1000", "1000"),
    "max.compaction.lag.ms": ("100000", "100000"),
    "max.message.bytes": ("65536", "65536"),
    "message.downconversion.enable": ("FALSE", "false"),
    "message.format.version": ("2.8", "2.8"),
    "message.timestamp.after.max.ms": ("3600000", "3600000"),
    "message.timestamp.before.max.ms": ("3600000", "3600000"),
    "message.timestamp.difference.max.ms": ("3600000", "3600000"),
    "message.timestamp.type": ("LogAppendTime", "LogAppendTime"),
    "min.cleanable.dirty.ratio": ("0.75", "0.75"),
    "min.compaction.lag.ms": ("1000", "1000"),
    "min.insync.replicas": ("2", "2"),
    "preallocate": (" true", "true"),
    "remote.log.copy.disable": ("true", "true"),
    "remote.log.delete.on.disable": ("true", "true"),
    "remote.storage.enable": ("false", "false"),
    "retention.bytes": ("-5", "-5"),
    "retention.ms": ("86400000", "86400000"),
    "ringlog.search.enable": ("false", "false"),
    "segment.bytes": ("16777216", "16777216"),
    "segment.index.bytes": ("1048576", "1048576"),
    "segment.jitter.ms": ("1000", "1000"),
    "segment.ms": ("3600000", "3600000"),
    "unclean.leader.election.enable": ("true", "true"),
}

# What a topic without overrides reports: ringlog's defaults where it
# honours the key (README), Kafka's elsewhere.
DEFAULTS = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "flush.ms": str(2**63 - 1),
    "index.interval.bytes": "16384",
    "max.message.bytes": str(1 << 20),
    "message.format.version": "3.0-IV1",
    "min.cleanable.dirty.ratio": "0.5",
    "min.insync.replicas": "1",
    "retention.ms": str(7 * 24 * 3600 * 1000),
    "segment.bytes": str(1 << 30),
    "unclean.leader.election.enable": "false",
    # The broker archives (by default to <data-dir>/archive).
    "remote.storage.enable": "true",
}

# What the server sets for every topic (STATIC_BROKER_CONFIG, as Kafka's
# log.local.retention.ms): with the default local-directory archive,
# --local-retention-ms is 0.
SERVER_SET = {"local.retention.ms": "0"}


@pytest.fixture
def server(module_server):
    return module_server


def create_error(server, new_topic: NewTopic) -> KafkaError:
    futures = admin(server.bootstrap).create_topics([new_topic], request_timeout=30)
    with pytest.raises(KafkaException) as exc:
        futures[new_topic.topic].result(timeout=CLIENT_TIMEOUT_S)
    return kafka_error(exc.value)


def incremental_alter(server, topic: str, *ops: tuple[str, str | None, AlterConfigOpType]):
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(name, value, incremental_operation=op) for name, value, op in ops
        ],
    )
    futures = admin(server.bootstrap).incremental_alter_configs([resource], request_timeout=30)
    return futures[resource].result(timeout=CLIENT_TIMEOUT_S)


def alter_error(server, topic: str, *ops) -> KafkaError:
    with pytest.raises(KafkaException) as exc:
        incremental_alter(server, topic, *ops)
    return kafka_error(exc.value)


def test_every_key_round_trips_with_sources_and_synonyms(server):
    create_topic(server.bootstrap, "every-key", 2, {k: v for k, (v, _) in EVERY_KEY.items()})
    entries = describe_configs(server.bootstrap, "every-key")
    assert set(entries) == set(EVERY_KEY), set(entries) ^ set(EVERY_KEY)
    for key, (_, printed) in EVERY_KEY.items():
        entry = entries[key]
        assert entry.value == printed, f"{key}={entry.value!r}"
        assert ConfigSource(entry.source) == ConfigSource.DYNAMIC_TOPIC_CONFIG, key
        assert not entry.is_default and not entry.is_read_only and not entry.is_sensitive, key
        assert key in entry.synonyms, f"{key}: synonyms {list(entry.synonyms)}"
    # After the override, the broker config Kafka names as the synonym,
    # with its default.
    segment = entries["segment.bytes"].synonyms
    assert ConfigSource(segment["segment.bytes"].source) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert segment["segment.bytes"].value == "16777216"
    assert ConfigSource(segment["log.segment.bytes"].source) == ConfigSource.DEFAULT_CONFIG
    assert segment["log.segment.bytes"].value == DEFAULTS["segment.bytes"]

    incremental_alter(
        server, "every-key", *[(k, None, AlterConfigOpType.DELETE) for k in EVERY_KEY]
    )
    entries = describe_configs(server.bootstrap, "every-key")
    for key, entry in entries.items():
        if key in SERVER_SET:
            assert entry.value == SERVER_SET[key], f"{key}={entry.value}"
            assert ConfigSource(entry.source) == ConfigSource.STATIC_BROKER_CONFIG, key
            continue
        assert entry.is_default, f"{key} source {entry.source}"
        assert ConfigSource(entry.source) == ConfigSource.DEFAULT_CONFIG, key
    for key, value in DEFAULTS.items():
        assert entries[key].value == value, f"{key}={entries[key].value}"


def test_incremental_append_subtract_and_legacy_alter(server):
    create_topic(server.bootstrap, "list-ops", 1, {"retention.ms": "3600000"})
    key = "leader.replication.throttled.replicas"
    incremental_alter(server, "list-ops", (key, "0:0,1:0", AlterConfigOpType.APPEND))
    incremental_alter(server, "list-ops", (key, "1:0,2:0", AlterConfigOpType.APPEND))
    assert config_values(server.bootstrap, "list-ops")[key] == "0:0,1:0,2:0"
    incremental_alter(server, "list-ops", (key, "0:0", AlterConfigOpType.SUBTRACT))
    values = config_values(server.bootstrap, "list-ops")
    assert values[key] == "1:0,2:0"
    assert values["retention.ms"] == "3600000", "other overrides stay"

    err = alter_error(server, "list-ops", ("retention.ms", "1", AlterConfigOpType.APPEND))
    assert err.code() == KafkaError.INVALID_CONFIG, err
    assert "not LIST" in err.str(), err

    # Legacy AlterConfigs replaces every override.
    resource = ConfigResource(ResourceType.TOPIC, "list-ops", set_config={"segment.ms": "60000"})
    futures = admin(server.bootstrap).alter_configs([resource], request_timeout=30)
    futures[resource].result(timeout=CLIENT_TIMEOUT_S)
    entries = describe_configs(server.bootstrap, "list-ops")
    assert entries["segment.ms"].value == "60000" and not entries["segment.ms"].is_default
    assert entries[key].value == "" and entries[key].is_default
    assert entries["retention.ms"].is_default


@pytest.mark.parametrize(
    "n,key,value,words",
    [
        (1, "cleanup.policy", "compact", "does not compact"),
        (2, "cleanup.policy", "delete,compact", "does not compact"),
        (4, "compression.type", "brotli", "String must be one of"),
        (5, "min.insync.replicas", "0", "Value must be at least 1"),
        (6, "retention.ms", "-2", "Value must be at least -1"),
        (7, "message.format.version", "9.9", "not a valid version"),
        (8, "no.such.config", "1", "Unknown topic config name"),
    ],
)
def test_bad_values_are_invalid_config(server, n, key, value, words):
    assert_refused(server, f"refused-{n}", key, value, words)


def assert_refused(server, topic: str, key: str, value: str, words: str) -> None:
    """CreateTopics and IncrementalAlterConfigs with ``key=value`` answer
    INVALID_CONFIG with ``words``; the refused alter changes nothing."""
    err = create_error(
        server, NewTopic(topic, num_partitions=1, replication_factor=1, config={key: value})
    )
    assert err.code() == KafkaError.INVALID_CONFIG, err
    assert key in err.str() and words in err.str(), err
    create_topic(server.bootstrap, topic, 1)

    def described():
        entries = describe_configs(server.bootstrap, topic)
        return {k: (e.value, ConfigSource(e.source)) for k, e in entries.items()}

    before = described()
    err = alter_error(server, topic, (key, value, AlterConfigOpType.SET))
    assert err.code() == KafkaError.INVALID_CONFIG, err
    assert words in err.str(), err
    assert described() == before, "a refused alter changes nothing"


def test_tiered_storage_keys_follow_the_archive_setting(server, server_factory):
    """On the archiving (default) broker remote.storage.enable=true is
    accepted and local.retention.ms stays within retention.ms; on a broker
    started with --archive off, remote.storage.enable=true is refused and
    the default is false."""
    create_topic(server.bootstrap, "tiered-keys", 1, {"remote.storage.enable": "true"})
    assert config_values(server.bootstrap, "tiered-keys")["remote.storage.enable"] == "true"
    assert_refused(server, "tiered-local-above", "local.retention.ms", "604800001", "must not exceed")
    assert_refused(server, "tiered-local-none", "local.retention.ms", "-1", "must not exceed")

    off = server_factory("--archive", "off", name="archive-off")
    assert_refused(off, "tiered-off", "remote.storage.enable", "true", "remote log storage")
    entries = describe_configs(off.bootstrap, "tiered-off")
    assert entries["remote.storage.enable"].value == "false"
    assert entries["local.retention.ms"].value == "-2" and entries["local.retention.ms"].is_default


def test_max_message_bytes_and_min_insync_replicas_act_on_produce(server):
    create_topic(
        server.bootstrap,
        "honoured",
        1,
        {"max.message.bytes": "2000", "min.insync.replicas": "2"},
    )
    # min.insync.replicas=2 on one replica: Kafka 3.9 needs at most the
    # replication factor in sync, so acks=all succeeds.
    records = make_records("honoured", [0], 3)
    delivered = confluent_produce(server.bootstrap, "honoured", records)
    assert [r.offset for r in delivered] == [0, 1, 2]

    failures = []
    producer = confluent_producer(server.bootstrap, **{"linger.ms": 0})
    producer.produce(
        "honoured", b"x" * 5000, partition=0, on_delivery=lambda err, msg: failures.append(err)
    )
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    assert len(failures) == 1 and failures[0] is not None, failures
    assert failures[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, failures[0]

    incremental_alter(server, "honoured", ("max.message.bytes", "100000", AlterConfigOpType.SET))
    big = [replace(r, value=b"y" * 5000) for r in make_records("honoured-big", [0], 2)]
    delivered = confluent_produce(server.bootstrap, "honoured", big)
    assert [r.offset for r in delivered] == [3, 4]


def test_create_with_a_replica_assignment_to_broker_0(server):
    client = admin(server.bootstrap)
    # librdkafka wants the partition count too (and sends -1 for both
    # counts next to an assignment, as Kafka requires).
    futures = client.create_topics(
        [
            NewTopic(
                "assigned",
                num_partitions=3,
                replica_assignment=[[0], [0], [0]],
                config={"retention.ms": "60000"},
            )
        ],
        request_timeout=30,
    )
    futures["assigned"].result(timeout=CLIENT_TIMEOUT_S)
    md = client.list_topics("assigned", timeout=CLIENT_TIMEOUT_S)
    partitions = md.topics["assigned"].partitions
    assert sorted(partitions) == [0, 1, 2]
    assert all(list(p.replicas) == [0] and p.leader == 0 for p in partitions.values())
    assert config_values(server.bootstrap, "assigned")["retention.ms"] == "60000"
    records = make_records("assigned", [0, 1, 2], 2)
    confluent_produce(server.bootstrap, "assigned", records)
    assert_same_records(
        confluent_consume(server.bootstrap, "assigned", range(3)), by_partition(records)
    )

    err = create_error(server, NewTopic("elsewhere", num_partitions=1, replica_assignment=[[1]]))
    assert err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, err
    assert "broker 1" in err.str(), err
    err = create_error(server, NewTopic("twice", num_partitions=1, replica_assignment=[[0, 0]]))
    assert err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, err
    names = client.list_topics(timeout=CLIENT_TIMEOUT_S).topics
    assert "elsewhere" not in names and "twice" not in names


def test_configs_survive_a_restart(server_factory):
    server = server_factory()
    create_topic(
        server.bootstrap,
        "restarted",
        2,
        {"retention.ms": "3600000", "preallocate": "true", "cleanup.policy": ""},
    )
    incremental_alter(
        server,
        "restarted",
        ("follower.replication.throttled.replicas", "0:0", AlterConfigOpType.APPEND),
        ("preallocate", None, AlterConfigOpType.DELETE),
    )
    def described():
        entries = describe_configs(server.bootstrap, "restarted")
        return {k: (e.value, ConfigSource(e.source)) for k, e in entries.items()}

    before = described()
    server.restart()
    after = described()
    assert after == before
    assert after["follower.replication.throttled.replicas"][0] == "0:0"
    assert after["cleanup.policy"] == ("", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert after["preallocate"] == ("false", ConfigSource.DEFAULT_CONFIG)
