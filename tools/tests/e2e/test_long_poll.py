"""Long-poll Fetch and ListOffsets.

A fetch at the end of a partition must park until data arrives (then
answer at once) or until max_wait_ms passes (then answer empty), never spin
and never oversleep.
"""

from __future__ import annotations

import threading
import time

import kafka
from confluent_kafka import KafkaError, TopicPartition

import kafka_wire as wire
from kafka_clients import (
    confluent_consumer,
    confluent_produce,
    confluent_producer,
    create_topic,
    kafka_python_consumer,
    make_records,
)
from ringlog_server import RinglogServer


class DelayedProduce:
    """Produces one record from another thread ``delay`` seconds from now,
    with a producer already connected, and records when it started."""

    def __init__(self, bootstrap: str, topic: str, partition: int, value: bytes, delay: float):
        self.producer = confluent_producer(bootstrap, **{"linger.ms": 0})
        self.producer.list_topics(topic, timeout=10)  # connect and learn the leader now
        self.topic, self.partition, self.value = topic, partition, value
        self.started_at: float | None = None
        self.error = None
        self.timer = threading.Timer(delay, self._produce)

    def _produce(self):
        self.started_at = time.monotonic()
        try:
            self.producer.produce(self.topic, value=self.value, partition=self.partition)
            left = self.producer.flush(30)
            assert left == 0, "delayed record not delivered"
        except BaseException as e:  # reported by the test thread
            self.error = e

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.timer.join(35)
        assert self.error is None, f"delayed produce failed: {self.error!r}"


def test_consumer_waiting_at_end_receives_record_produced_later(server: RinglogServer):
    """A confluent-kafka consumer parked at the end (fetch.wait.max.ms=5000)
    gets a record produced ~1 s later well before its wait runs out."""
    topic = "long-poll-client"
    create_topic(server.bootstrap, topic, 1)
    consumer = confluent_consumer(server.bootstrap, **{"fetch.wait.max.ms": 5000})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        # Await the consumer reaching the (empty) end of the partition.
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "consumer never reached partition EOF"
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() and msg.error().code() == KafkaError._PARTITION_EOF:
                break
            assert msg is None or msg.error(), f"unexpected record {msg.value()!r}"

        late = DelayedProduce(server.bootstrap, topic, 0, b"late-record", delay=1.0)
        start = time.monotonic()
        with late:
            while True:
                elapsed = time.monotonic() - start
                assert elapsed < 5.0, "record produced after 1 s did not arrive within 5 s"
                msg = consumer.poll(0.05)
                if msg is None or msg.error():
                    continue
                arrived = time.monotonic()
                break
        assert msg.value() == b"late-record" and msg.offset() == 0
        assert late.started_at is not None and arrived >= late.started_at
        assert arrived - start < 4.5, f"record arrived {arrived - start:.2f} s after start"
    finally:
        consumer.close()


def test_parked_fetch_wakes_when_record_arrives(server: RinglogServer):
    """A raw Fetch v4 (max_wait_ms=5000) at the end offset is answered as
    soon as a record is produced ~1 s later, with that record."""
    topic = "long-poll-raw"
    create_topic(server.bootstrap, topic, 1)
    confluent_produce(server.bootstrap, topic, make_records(topic, [0], 3))

    late = DelayedProduce(server.bootstrap, topic, 0, b"wake-up", delay=1.0)
    with wire.KafkaConn(server.kafka_addr, timeout=15) as conn:
        sent = time.monotonic()
        corr = conn.send_request(
            wire.FETCH, 4, wire.fetch_v4_body(topic, 0, 3, max_wait_ms=5000, min_bytes=1)
        )
        with late:
            (part,) = wire.parse_fetch_v4(conn.recv_response(corr, timeout=15))
            answered = time.monotonic()

    assert late.started_at is not None and answered >= late.started_at, (
        f"fetch answered {answered - sent:.2f} s after sending, before the record was produced"
    )
    assert answered - sent < 4.0, f"fetch answered only after {answered - sent:.2f} s"
    assert part.error_code == wire.NONE
    assert part.high_watermark == 4
    batches = wire.parse_batches(part.records)
    assert batches, "woken fetch returned no records"
    offsets_values = [(o, v) for b in batches for (o, _, v, _) in b.records() if o >= 3]
    assert offsets_values == [(3, b"wake-up")]


def test_idle_fetch_returns_after_max_wait(server: RinglogServer):
    """A raw Fetch v4 (max_wait_ms=500, min_bytes=1) at the end of a
    partition with records, and of an empty one, answers empty after
    0.45-1.5 s with the right high watermark."""
    topic = "idle-fetch"
    create_topic(server.bootstrap, topic, 2)
    confluent_produce(server.bootstrap, topic, make_records(topic, [0], 3))

    for partition, end in ((0, 3), (1, 0)):
        with wire.KafkaConn(server.kafka_addr, timeout=10) as conn:
            sent = time.monotonic()
            corr = conn.send_request(
                wire.FETCH, 4, wire.fetch_v4_body(topic, partition, end, max_wait_ms=500)
            )
            (part,) = wire.parse_fetch_v4(conn.recv_response(corr, timeout=10))
            took = time.monotonic() - sent
        assert 0.45 <= took < 1.5, f"partition {partition}: idle fetch answered after {took:.3f} s"
        assert part.error_code == wire.NONE, part
        assert part.high_watermark == end, part
        assert wire.parse_batches(part.records) == [], f"idle fetch returned records: {part}"


def test_list_offsets_earliest_latest_and_by_time(server: RinglogServer):
    """ListOffsets through confluent-kafka (watermarks, offsets_for_times)
    and kafka-python (beginning/end offsets, offsets_for_times) match what
    was produced."""
    topic = "list-offsets"
    create_topic(server.bootstrap, topic, 2)
    base = int(time.time() * 1000) - 600_000
    producer = confluent_producer(server.bootstrap)
    for i in range(5):
        # One batch per record: this checks the time index, not how the
        # broker looks inside a batch.
        producer.produce(topic, value=f"ts-{i}".encode(), partition=0, timestamp=base + i * 1000)
        assert producer.flush(30) == 0

    consumer = confluent_consumer(server.bootstrap)
    try:
        assert consumer.get_watermark_offsets(
            TopicPartition(topic, 0), timeout=10, cached=False
        ) == (0, 5)
        assert consumer.get_watermark_offsets(
            TopicPartition(topic, 1), timeout=10, cached=False
        ) == (0, 0)
        # -1 (OFFSET_END): no record at or after that time.
        for ts, want in (
            (base - 1, 0),
            (base, 0),
            (base + 2500, 3),
            (base + 4000, 4),
            (base + 60_000, -1),
        ):
            (tp,) = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert tp.error is None, tp.error
            assert tp.offset == want, (
                f"offsets_for_times({ts - base:+d} ms): {tp.offset}, want {want}"
            )
    finally:
        consumer.close()

    kp = kafka_python_consumer(server.bootstrap)
    try:
        tps = [kafka.TopicPartition(topic, 0), kafka.TopicPartition(topic, 1)]
        assert kp.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
        assert kp.end_offsets(tps) == {tps[0]: 5, tps[1]: 0}
        found = kp.offsets_for_times({tps[0]: base + 2500, tps[1]: base})
        assert found[tps[0]] is not None and found[tps[0]].offset == 3, found
        assert found[tps[0]].timestamp == base + 3000, found
        assert found[tps[1]] is None, found
    finally:
        kp.close()
