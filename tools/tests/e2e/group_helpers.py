"""What the consumer-group tests share (test_groups.py with the clients'
own group APIs, test_group_cli.py with `ringlog group`): the server
settings, a topic filled with tagged records, confluent-kafka members,
waiting for a stable split of the partitions, reading every record exactly
once, and the group's committed offsets and description through the
AdminClient."""

from __future__ import annotations

import time
from collections import Counter

import confluent_kafka
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from kafka_clients import CLIENT_TIMEOUT_S, admin, kafka_error
from ringlog_server import RinglogServer, wait_until

# Groups rebalance at once in these tests (Kafka's default waits 3 s for
# more members before the first rebalance of an empty group).
SERVER_ARGS = ("--group-initial-rebalance-delay-ms", "0")
SESSION_TIMEOUT_MS = 6000
PARTITIONS = 6


def produce_tagged(server: RinglogServer, topic: str, tag: str, per_partition: int) -> set[bytes]:
    """Produces ``per_partition`` records to every partition; returns the
    values (unique per record)."""
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": server.bootstrap, "linger.ms": 5, "acks": "all"}
    )
    values = set()
    for p in range(PARTITIONS):
        for i in range(per_partition):
            value = f"{tag}.p{p}.{i}".encode()
            values.add(value)
            producer.produce(topic, value=value, partition=p)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    return values


def member(server: RinglogServer, group: str, name: str, **extra) -> confluent_kafka.Consumer:
    conf = {
        "bootstrap.servers": server.bootstrap,
        "group.id": group,
        "client.id": name,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": 500,
    }
    conf.update(extra)
    return confluent_kafka.Consumer(conf)


def assignments(consumers) -> list[list[int]]:
    return [sorted(tp.partition for tp in c.assignment()) for c in consumers]


def await_partitioned(consumers, what: str) -> list[list[int]]:
    """Polls every consumer until their assignments split all partitions
    among them, each consumer getting some (a stable generation)."""

    def split():
        for c in consumers:
            msg = c.poll(0.05)
            assert msg is None, f"unexpected record before the split: {msg.value()!r}"
        now = assignments(consumers)
        flat = sorted(p for a in now for p in a)
        return now if flat == list(range(PARTITIONS)) and all(now) else None

    return wait_until(split, CLIENT_TIMEOUT_S, what)


def consume_exactly(consumers, expected: set[bytes], what: str) -> Counter:
    """Polls the consumers round robin, committing after each batch, until
    every expected value was read; returns how often each value was read."""
    seen: Counter = Counter()
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while not expected <= set(seen):
        assert time.monotonic() < deadline, (
            f"{what}: {len(expected - set(seen))} of {len(expected)} records never read"
        )
        for c in consumers:
            msgs = c.consume(500, 0.05)
            for m in msgs:
                assert m.error() is None, m.error()
                seen[m.value()] += 1
            if msgs:
                c.commit(asynchronous=False)
    unexpected = set(seen) - expected
    assert not unexpected, f"{what}: read records of another batch: {sorted(unexpected)[:5]}"
    twice = [v for v, n in seen.items() if n > 1]
    assert not twice, f"{what}: {len(twice)} records read more than once, e.g. {twice[:5]}"
    return seen


def committed(server: RinglogServer, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets (-1001: none). Retries transport
    errors: right after a restart the admin client's old connection fails
    one request before it reconnects."""
    client = admin(server.bootstrap)
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(PARTITIONS)]
    )

    def attempt():
        try:
            return client.list_consumer_group_offsets([request])[group].result(CLIENT_TIMEOUT_S)
        except confluent_kafka.KafkaException as e:
            if kafka_error(e).code() != confluent_kafka.KafkaError._TRANSPORT:
                raise
            return None

    result = wait_until(attempt, CLIENT_TIMEOUT_S, f"the offsets of group {group}")
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def describe(server: RinglogServer, group: str):
    client = admin(server.bootstrap)
    return client.describe_consumer_groups([group])[group].result(CLIENT_TIMEOUT_S)
