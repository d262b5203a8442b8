"""Records inside batches, through real clients: ListOffsets by time
answers the exact record inside a compressed batch (every codec), and the
topic configs that change produced batches are honoured:
``compression.type`` recompresses, ``message.timestamp.type=LogAppendTime``
stamps the broker's time, ``message.timestamp.before/after.max.ms`` refuse
records outside the window with INVALID_TIMESTAMP.

One server for the module: each test uses its own topics.
"""

from __future__ import annotations

import time

import confluent_kafka
import kafka
import pytest
from confluent_kafka import KafkaError, TopicPartition

import kafka_wire as wire
from kafka_clients import (
    CLIENT_TIMEOUT_S,
    CODECS,
    FILLER,
    Record,
    assert_same_records,
    config_values,
    confluent_consume,
    confluent_consumer,
    confluent_producer,
    create_topic,
    kafka_python_consume,
    kafka_python_consumer,
    kcat_produce,
)
from ringlog_server import RinglogServer

BATCHES = 4
PER_BATCH = 50
STEP_MS = 10
LOG_APPEND_TIME_BIT = 0x08


def produce_timed(
    bootstrap: str, topic: str, codec: str, timestamps: list[list[int]], **extra
) -> list[tuple[int, int, int]]:
    """Produces each inner list of timestamps as one batch (flush between
    them) to partition 0; returns (offset, timestamp type, timestamp) from
    every delivery report, in produce order."""
    producer = confluent_producer(
        bootstrap, codec, **{"linger.ms": 1000, "batch.num.messages": 10000, **extra}
    )
    reports: dict[int, tuple[int, int, int]] = {}
    errors = []
    index = 0
    for batch in timestamps:
        for ts in batch:

            def on_delivery(err, msg, index=index):
                if err is not None:
                    errors.append(err)
                else:
                    kind, stamp = msg.timestamp()
                    reports[index] = (msg.offset(), kind, stamp)

            producer.produce(
                topic,
                value=f"value.{index:05d}.{FILLER}".encode(),
                partition=0,
                timestamp=ts,
                on_delivery=on_delivery,
            )
            index += 1
        assert producer.flush(CLIENT_TIMEOUT_S) == 0, "undelivered records"
    assert not errors, f"delivery failed: {errors[:3]}"
    return [reports[i] for i in range(index)]


def produce_timed_kafka_python(
    bootstrap: str, topic: str, codec: str, timestamps: list[list[int]]
) -> None:
    """:func:`produce_timed` through kafka-python."""
    producer = kafka.KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type=None if codec == "none" else codec,
        enable_idempotence=False,
        linger_ms=1000,
        batch_size=1 << 20,
        request_timeout_ms=20000,
    )
    try:
        index = 0
        for batch in timestamps:
            futures = []
            for ts in batch:
                value = f"value.{index:05d}.{FILLER}".encode()
                futures.append(producer.send(topic, value=value, partition=0, timestamp_ms=ts))
                index += 1
            producer.flush(timeout=CLIENT_TIMEOUT_S)
            for future in futures:
                future.get(timeout=CLIENT_TIMEOUT_S)
    finally:
        producer.close(timeout=10)


def batch_timestamps(base: int) -> list[list[int]]:
    """BATCHES batches of PER_BATCH records STEP_MS apart; in every batch
    the 10th record is 25 ms older than the 9th (out of order)."""
    out = []
    for b in range(BATCHES):
        batch = []
        for i in range(PER_BATCH):
            ts = base + STEP_MS * (b * PER_BATCH + i)
            batch.append(ts - 25 if i == 9 else ts)
        out.append(batch)
    return out


def first_at_or_after(all_ts: list[int], target: int) -> tuple[int, int]:
    """Kafka's answer: the first record in offset order with ts >= target."""
    for offset, ts in enumerate(all_ts):
        if ts >= target:
            return offset, ts
    return -1, -1


@pytest.mark.parametrize("producer", ["confluent-kafka", "kafka-python"])
@pytest.mark.parametrize("codec", CODECS)
def test_offsets_for_times_inside_a_compressed_batch(
    module_server: RinglogServer, codec: str, producer: str
):
    """confluent-kafka or kafka-python produces batches of 50 records with
    distinct timestamps in each codec; confluent-kafka's and kafka-python's
    offsets_for_times find the exact record for a time in the middle of a
    batch, not the batch's first record."""
    server = module_server
    topic = f"times-{codec}-{producer}"
    create_topic(server.bootstrap, topic, 1)
    base = int(time.time() * 1000) - 3_600_000
    stamps = batch_timestamps(base)
    if producer == "confluent-kafka":
        produce_timed(server.bootstrap, topic, codec, stamps)
    else:
        produce_timed_kafka_python(server.bootstrap, topic, codec, stamps)
    all_ts = [ts for batch in stamps for ts in batch]

    batches = wire.fetch_all_batches(server.kafka_addr, topic, 0)
    assert len(batches) == BATCHES, [b.record_count for b in batches]
    assert {b.codec for b in batches} == {wire.CODEC_IDS[codec]}
    assert all(b.record_count == PER_BATCH for b in batches)

    # Targets in the middle of the second and fourth batches, one just
    # above the out-of-order record's predecessor, and the edges.
    targets = [
        base + STEP_MS * 73 + 3,
        base + STEP_MS * (PER_BATCH + 8) + 1,
        base + STEP_MS * (3 * PER_BATCH + 25),
        base,
        base + STEP_MS * (BATCHES * PER_BATCH),
    ]
    consumer = confluent_consumer(server.bootstrap)
    try:
        for target in targets:
            want_offset, want_ts = first_at_or_after(all_ts, target)
            [found] = consumer.offsets_for_times(
                [TopicPartition(topic, 0, target)], timeout=CLIENT_TIMEOUT_S
            )
            assert found.error is None, found.error
            assert found.offset == want_offset, (codec, target, found.offset, want_offset)
            if want_offset > 0:
                assert want_offset % PER_BATCH != 0, "a target inside a batch, not at its base"
    finally:
        consumer.close()

    kp = kafka_python_consumer(server.bootstrap)
    try:
        tp = kafka.TopicPartition(topic, 0)
        for target in targets[:3]:
            want_offset, want_ts = first_at_or_after(all_ts, target)
            found = kp.offsets_for_times({tp: target})[tp]
            assert (found.offset, found.timestamp) == (want_offset, want_ts), (codec, target)
        assert kp.offsets_for_times({tp: targets[-1]})[tp] is None
    finally:
        kp.close()


def test_compression_type_zstd_recompresses_uncompressed_batches(module_server: RinglogServer):
    """A topic with compression.type=zstd: kcat and confluent-kafka produce
    uncompressed, the stored batches are zstd, and both clients read back
    the records produced (kafka-python checks every batch CRC)."""
    server = module_server
    topic = "stored-as-zstd"
    create_topic(server.bootstrap, topic, 1, {"compression.type": "zstd"})
    assert config_values(server.bootstrap, topic)["compression.type"] == "zstd"
    headers = (("via", b"kcat"),)
    via_kcat = [
        Record(0, f"k{i}".encode(), f"kcat.{i:04d}.{FILLER}".encode(), headers) for i in range(60)
    ]
    kcat_produce(server.bootstrap, topic, 0, via_kcat, "none", headers)
    producer = confluent_producer(server.bootstrap, "none")
    via_confluent = [Record(0, None, f"confluent.{i:04d}.{FILLER}".encode()) for i in range(60)]
    for r in via_confluent:
        producer.produce(topic, value=r.value, partition=0)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0

    batches = wire.fetch_all_batches(server.kafka_addr, topic, 0)
    assert {b.codec for b in batches} == {wire.CODEC_IDS["zstd"]}, [b.codec for b in batches]
    assert sum(b.record_count for b in batches) == 120
    expected = {0: via_kcat + via_confluent}
    assert_same_records(confluent_consume(server.bootstrap, topic, [0]), expected)
    assert_same_records(kafka_python_consume(server.bootstrap, topic, [0]), expected)


def test_log_append_time_topics_carry_the_broker_time(module_server: RinglogServer):
    """message.timestamp.type=LogAppendTime: the delivery report and the
    consumers (confluent-kafka, kafka-python) see the broker's append time
    and timestamp type LOG_APPEND_TIME, whatever the producer stamped."""
    server = module_server
    topic = "log-append-time"
    create_topic(server.bootstrap, topic, 1, {"message.timestamp.type": "LogAppendTime"})
    producer_ts = 1_000_000_000_000  # 2001: far from the broker's clock
    before = int(time.time() * 1000)
    reports = produce_timed(
        server.bootstrap, topic, "lz4", [[producer_ts + i for i in range(20)]]
    )
    after = int(time.time() * 1000)
    kinds = {kind for _, kind, _ in reports}
    stamps = {stamp for _, _, stamp in reports}
    assert kinds == {confluent_kafka.TIMESTAMP_LOG_APPEND_TIME}, kinds
    assert len(stamps) == 1 and before <= next(iter(stamps)) <= after, (before, stamps, after)
    stamp = next(iter(stamps))
    [batch] = wire.fetch_all_batches(server.kafka_addr, topic, 0)
    assert batch.attributes & LOG_APPEND_TIME_BIT
    assert batch.codec == wire.CODEC_IDS["lz4"]

    consumer = confluent_consumer(server.bootstrap, **{"check.crcs": True})
    try:
        consumer.assign([TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
        seen = []
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while len(seen) < 20:
            assert time.monotonic() < deadline, f"read {len(seen)} of 20"
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            seen.append(msg.timestamp())
        assert set(seen) == {(confluent_kafka.TIMESTAMP_LOG_APPEND_TIME, stamp)}
    finally:
        consumer.close()

    kp = kafka_python_consumer(server.bootstrap)
    try:
        tp = kafka.TopicPartition(topic, 0)
        kp.assign([tp])
        kp.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while len(got) < 20:
            assert time.monotonic() < deadline, f"read {len(got)} of 20"
            for records in kp.poll(timeout_ms=500).values():
                got += [(m.timestamp_type, m.timestamp) for m in records]
        assert set(got) == {(1, stamp)}, "kafka-python: type 1 is LogAppendTime"
    finally:
        kp.close()


def test_records_outside_the_timestamp_window_are_refused(module_server: RinglogServer):
    """message.timestamp.before.max.ms / after.max.ms: a record an hour too
    old or too new fails with INVALID_TIMESTAMP and nothing is appended; a
    fresh record succeeds."""
    server = module_server
    topic = "timestamp-window"
    create_topic(
        server.bootstrap,
        topic,
        1,
        {"message.timestamp.before.max.ms": "600000", "message.timestamp.after.max.ms": "600000"},
    )
    now = int(time.time() * 1000)
    producer = confluent_producer(server.bootstrap, "gzip", **{"retries": 0})
    outcomes: dict[str, KafkaError | int] = {}

    def report(name):
        def on_delivery(err, msg):
            outcomes[name] = err if err is not None else msg.offset()

        return on_delivery

    for name, ts in [("old", now - 3_600_000), ("future", now + 3_600_000), ("fresh", now)]:
        producer.produce(
            topic, value=name.encode(), partition=0, timestamp=ts, on_delivery=report(name)
        )
        assert producer.flush(CLIENT_TIMEOUT_S) == 0
    for name in ("old", "future"):
        err = outcomes[name]
        assert isinstance(err, KafkaError), (name, err)
        assert err.code() == KafkaError.INVALID_TIMESTAMP, (name, err)
    assert outcomes["fresh"] == 0, "the refused batches appended nothing"

    kp = kafka.KafkaProducer(
        bootstrap_servers=server.bootstrap,
        acks="all",
        enable_idempotence=False,
        retries=0,
        request_timeout_ms=20000,
    )
    try:
        with pytest.raises(kafka.errors.InvalidTimestampError):
            kp.send(topic, value=b"old", partition=0, timestamp_ms=now - 3_600_000).get(
                timeout=CLIENT_TIMEOUT_S
            )
        meta = kp.send(topic, value=b"fresh", partition=0).get(timeout=CLIENT_TIMEOUT_S)
        assert meta.offset == 1
    finally:
        kp.close(timeout=10)
