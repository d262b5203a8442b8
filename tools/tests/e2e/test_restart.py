"""Restarts on the same data dir: a clean SIGTERM stop keeps topics,
partition counts, configs, shard placement and every record; a restart
with fewer shards places the partitions of the missing shards again; a
kill -9 in the middle of acks=all produce loses no acknowledged record."""

from __future__ import annotations

import threading

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import NewTopic

from kafka_clients import (
    CLIENT_TIMEOUT_S,
    FILLER,
    Record,
    admin,
    assert_same_records,
    by_partition,
    confluent_consume,
    confluent_produce,
    confluent_producer,
    config_values,
    create_topic,
    make_records,
)
from ringlog_server import RinglogServer, wait_until

TOPICS = {
    "restart-a": (4, {"retention.ms": "3600000", "segment.bytes": "1048576"}),
    "restart-b": (3, {"max.message.bytes": "500000", "segment.ms": "600000"}),
}


def probe_placement(server: RinglogServer, topic: str, partitions: int, tag: str):
    """Which shard owns each partition: produce one record to it alone and
    see which shard's ringlog_produce_records_total moved. Returns the
    placement and the probe records (with offsets)."""
    producer = confluent_producer(server.bootstrap, **{"linger.ms": 0})
    placement, probes = {}, []
    for p in range(partitions):
        before = server.produce_records_per_shard()
        record = Record(
            p, f"probe.{tag}.{topic}.p{p}".encode(), f"probe.{tag}.{topic}.p{p}.value".encode()
        )
        delivered: list[tuple] = []
        producer.produce(
            topic,
            value=record.value,
            key=record.key,
            partition=p,
            on_delivery=lambda err, msg, out=delivered: out.append((err, msg.offset())),
        )
        assert producer.flush(CLIENT_TIMEOUT_S) == 0
        ((err, offset),) = delivered
        assert err is None, err
        probes.append(Record(p, record.key, record.value, (), offset))

        def moved(before=before):
            d = [a - b for a, b in zip(server.produce_records_per_shard(), before)]
            return d if sum(d) >= 1 else None

        deltas = wait_until(moved, 10, f"the produce counter to count the probe of {topic}/{p}")
        assert sorted(deltas) == [0] * (server.shards - 1) + [1], (
            f"one record to {topic}/{p} moved the per-shard counters by {deltas}"
        )
        placement[p] = deltas.index(1)
    return placement, probes


def test_clean_restart_keeps_topics_configs_placement_and_records(server_factory):
    server = server_factory()
    for topic, (partitions, config) in TOPICS.items():
        create_topic(server.bootstrap, topic, partitions, config)

    placement, written = {}, {}
    for (topic, (partitions, _)), codec in zip(TOPICS.items(), ("zstd", "none")):
        placement[topic], probes = probe_placement(server, topic, partitions, "before")
        records = confluent_produce(
            server.bootstrap, topic, make_records(topic, range(partitions), 30), codec
        )
        written[topic] = probes + records
    shards_used = {s for per_topic in placement.values() for s in per_topic.values()}
    assert shards_used == {0, 1}, f"partitions not spread over both shards: {placement}"

    server.stop()  # SIGTERM, exit code 0
    server.start()

    md = admin(server.bootstrap).list_topics(timeout=CLIENT_TIMEOUT_S)
    for topic, (partitions, config) in TOPICS.items():
        assert topic in md.topics, f"{topic} lost in the restart"
        assert len(md.topics[topic].partitions) == partitions, topic
        values = config_values(server.bootstrap, topic)
        for name, value in config.items():
            assert values[name] == value, (
                f"{topic}: {name}={values[name]} after restart, was {value}"
            )
        consumed = confluent_consume(server.bootstrap, topic, range(partitions))
        assert_same_records(consumed, by_partition(written[topic]))

    for topic, (partitions, _) in TOPICS.items():
        after, _ = probe_placement(server, topic, partitions, "after")
        assert after == placement[topic], f"{topic}: placement {placement[topic]} became {after}"


class BackgroundProducer:
    """Produces acks=all records round-robin over the partitions from a
    thread until stopped, keeping every acknowledged (partition, offset,
    value)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        self.producer = confluent_producer(
            bootstrap, **{"linger.ms": 2, "message.timeout.ms": 10000, "retries": 0}
        )
        self.topic, self.partitions = topic, partitions
        self.acked: list[tuple[int, int, bytes]] = []
        self.failed = 0
        self.sent: set[bytes] = set()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, err, msg):
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            self.failed += 1

    def _run(self):
        i = 0
        while not self.stop_event.is_set():
            value = f"crash.{i:08d}.{FILLER}".encode()
            try:
                self.producer.produce(
                    self.topic,
                    value=value,
                    partition=i % self.partitions,
                    on_delivery=self._on_delivery,
                )
            except BufferError:  # local queue full: let deliveries drain
                self.producer.poll(0.05)
                continue
            self.sent.add(value)
            i += 1
            self.producer.poll(0)

    def start(self):
        self.thread.start()

    def finish(self):
        self.stop_event.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        # Whatever the dead server never answered fails now, not after
        # message.timeout.ms.
        self.producer.purge(in_queue=True, in_flight=True)
        self.producer.flush(15)


def test_kill_9_during_acks_all_produce_loses_no_acknowledged_record(server_factory):
    server = server_factory("--flush-policy", "always")
    topic = "crash"
    create_topic(server.bootstrap, topic, 4)

    bg = BackgroundProducer(server.bootstrap, topic, 4)
    bg.start()
    wait_until(lambda: len(bg.acked) >= 3000, 60, "3000 acknowledged records before the kill")
    assert bg.thread.is_alive()
    server.kill()
    acked_at_kill = len(bg.acked)
    bg.finish()
    acked = list(bg.acked)
    assert len(acked) >= acked_at_kill >= 3000

    server.start()
    consumed = confluent_consume(server.bootstrap, topic, range(4))
    total = sum(len(v) for v in consumed.values())
    assert total >= len(acked), (
        f"read {total} records after the crash, {len(acked)} were acknowledged"
    )
    stored = {}
    for p, records in consumed.items():
        offsets = [r.offset for r in records]
        assert offsets == list(range(len(records))), (
            f"partition {p}: offsets have holes after recovery"
        )
        for r in records:
            assert r.value in bg.sent, f"partition {p} offset {r.offset}: a record nobody produced"
            stored[(p, r.offset)] = r.value
    missing = [(p, o) for p, o, v in acked if stored.get((p, o)) != v]
    assert not missing, (
        f"{len(missing)} acknowledged records missing or different after kill -9, "
        f"e.g. (partition, offset) {missing[:10]}"
    )

    # The recovered partitions keep appending after their last record.
    more = confluent_produce(server.bootstrap, topic, make_records("after-crash", range(4), 1))
    assert [(r.partition, r.offset) for r in more] == [(p, len(consumed[p])) for p in range(4)]


def test_kill_9_right_after_create_topics_keeps_every_partition(server_factory):
    """CreateTopics answers once the metadata is durable, while the owners
    may still be creating the partition logs: a kill -9 right after the
    answer must leave topics whose every partition is back after the
    restart, empty and writable."""
    server = server_factory()
    client = admin(server.bootstrap)
    topics = {f"fresh-{i}": 8 for i in range(4)}
    futures = client.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items()]
    )
    for future in futures.values():
        future.result(CLIENT_TIMEOUT_S)
    server.kill()

    server.start()
    described = admin(server.bootstrap).list_topics(timeout=CLIENT_TIMEOUT_S).topics
    for name, partitions in topics.items():
        assert name in described, f"{name} is gone after kill -9 right after its CreateTopics"
        assert sorted(described[name].partitions) == list(range(partitions))
        records = make_records(f"after-kill-{name}", range(partitions), 2)
        produced = confluent_produce(server.bootstrap, name, records)
        assert sorted((r.partition, r.offset) for r in produced) == [
            (p, o) for p in range(partitions) for o in range(2)
        ], f"{name}: the restarted partitions start empty"
        consumed = confluent_consume(server.bootstrap, name, range(partitions))
        assert_same_records(consumed, by_partition(produced))


def test_restarts_with_fewer_and_more_shards_keep_everything(server_factory):
    """A partition placed on a shard that a later start does not have
    (`--shards` lowered) is placed again on one that exists: the broker
    starts, and every topic, record and committed offset is there, at
    1 shard and then at 3."""
    server = server_factory()
    written, on_shard_1 = {}, 0
    for topic, (partitions, config) in TOPICS.items():
        create_topic(server.bootstrap, topic, partitions, config)
        placement, probes = probe_placement(server, topic, partitions, "two-shards")
        assert set(placement.values()) == {0, 1}, f"{topic} not spread over both shards: {placement}"
        on_shard_1 += list(placement.values()).count(1)
        written[topic] = probes + confluent_produce(
            server.bootstrap, topic, make_records(topic, range(partitions), 20)
        )
    group = "shard-count-group"
    committed = {p: 7 + p for p in range(4)}
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition("restart-a", p, o) for p, o in committed.items()]
    )
    admin(server.bootstrap).alter_consumer_group_offsets([request])[group].result(CLIENT_TIMEOUT_S)

    for shards in (1, 3):
        server.stop()
        server.shards = shards
        server.start()
        for topic, (partitions, _) in TOPICS.items():
            consumed = confluent_consume(server.bootstrap, topic, range(partitions))
            assert_same_records(consumed, by_partition(written[topic]))
            # Every partition takes appends right after its last record.
            more = confluent_produce(
                server.bootstrap, topic, make_records(f"{topic}-at-{shards}", range(partitions), 1)
            )
            assert [(r.partition, r.offset) for r in more] == [
                (p, len(consumed[p])) for p in range(partitions)
            ]
            written[topic] += more
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition("restart-a", p) for p in committed]
        )
        listed = admin(server.bootstrap).list_consumer_group_offsets([request])[group]
        offsets = {tp.partition: tp.offset for tp in listed.result(CLIENT_TIMEOUT_S).topic_partitions}
        assert offsets == committed, f"committed offsets changed at {shards} shards"
    # Only the start with 1 shard found partitions on a shard it lacks.
    placed_again = server.log_lines("placing it again")
    assert len(placed_again) == on_shard_1, placed_again
