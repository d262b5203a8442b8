"""Produce/consume round trips through kcat, confluent-kafka and
kafka-python, for every codec, over a 4-partition topic spread across both
shards.

Each test checks, per partition: what is read equals what was written
(keys, values, headers, order), offsets run contiguously from 0, the stored
batches carry the requested codec, and /metrics counted exactly the records
produced, on both shards.
"""

from __future__ import annotations

import pytest

import kafka_wire as wire
from kafka_clients import (
    CODECS,
    FILLER,
    Record,
    assert_same_records,
    by_partition,
    confluent_consume,
    confluent_produce,
    create_topic,
    kafka_python_consume,
    kafka_python_produce,
    kcat_consume,
    kcat_produce,
    make_records,
)
from ringlog_server import RinglogServer, wait_until

PARTITIONS = 4
PER_PARTITION = 40

# The codec Debian's kcat (librdkafka 2.0.2) actually sends. Before 2.10,
# librdkafka compresses with gzip, snappy or lz4 only if the broker lists
# Produce v0 in ApiVersions (its pre-0.11 heuristic); ringlog, like Kafka
# 4.0, starts Produce at v3 (kafka-protocol has no v0-2 codecs), so that
# kcat logs "Broker does not support compression type" and sends those
# batches uncompressed. zstd is gated on Produce v7 and is compressed.
# confluent-kafka (librdkafka 2.16) and kafka-python compress every codec.
KCAT_SENDS = {"none": "none", "gzip": "none", "snappy": "none", "lz4": "none", "zstd": "zstd"}


def produced_per_shard(server: RinglogServer, before: list[float], total: int) -> list[float]:
    """Waits until /metrics has counted ``total`` more produced records
    than ``before``; returns the per-shard increase."""

    def deltas():
        now = server.produce_records_per_shard()
        d = [a - b for a, b in zip(now, before)]
        return d if sum(d) >= total else None

    return wait_until(deltas, 10, f"ringlog_produce_records_total to grow by {total}")


def check_metrics_and_codec(
    server: RinglogServer, topic: str, before, total: int, codec: str
) -> None:
    shards = server.shards
    deltas = produced_per_shard(
        server, before.per_shard("ringlog_produce_records_total", shards), total
    )
    assert sum(deltas) == total, f"produce records per shard grew by {deltas}, produced {total}"
    assert all(d > 0 for d in deltas), (
        f"a {PARTITIONS}-partition topic should live on both shards; produce records grew by "
        f"{deltas} per shard"
    )
    after = server.metrics()
    grew = [
        a - b
        for a, b in zip(
            after.per_shard("ringlog_produce_bytes_total", shards),
            before.per_shard("ringlog_produce_bytes_total", shards),
        )
    ]
    assert all(g > 0 for g in grew), f"ringlog_produce_bytes_total grew by {grew} per shard"
    fetched = sum(after.per_shard("ringlog_fetch_records_total", shards)) - sum(
        before.per_shard("ringlog_fetch_records_total", shards)
    )
    assert fetched >= total, f"ringlog_fetch_records_total grew by {fetched}, consumed {total}"

    # The stored batches are exactly what the client sent: compressed with
    # the requested codec, covering offsets 0..n-1 without gaps.
    for p in range(PARTITIONS):
        batches = wire.fetch_all_batches(server.kafka_addr, topic, p)
        codecs = {b.codec for b in batches}
        assert codecs == {wire.CODEC_IDS[codec]}, f"partition {p}: batch codecs {codecs}"
        next_offset = 0
        for b in batches:
            assert b.base_offset == next_offset, (p, b)
            next_offset = b.last_offset + 1
        assert next_offset == PER_PARTITION


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_round_trip(server: RinglogServer, codec: str):
    """kcat -P (keys with -K, headers with -H, -z codec, acks=all) into
    every partition, then kcat -C -e reads back the same records."""
    topic = f"kcat-{codec}"
    create_topic(server.bootstrap, topic, PARTITIONS)
    before = server.metrics()
    written = []
    for p in range(PARTITIONS):
        headers = (("codec", codec.encode()), ("part", f"p{p}".encode()))
        records = [
            Record(
                p,
                f"key.{topic}.p{p}.n{i}".encode(),
                f"value.{topic}.p{p}.n{i:05d}.{FILLER}".encode(),
                headers,
            )
            for i in range(PER_PARTITION)
        ]
        kcat_produce(server.bootstrap, topic, p, records, codec, headers)
        written += records

    assert_same_records(kcat_consume(server.bootstrap, topic), by_partition(written))
    check_metrics_and_codec(server, topic, before, len(written), KCAT_SENDS[codec])


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_kafka_round_trip(server: RinglogServer, codec: str):
    """confluent-kafka Producer (acks=all) into every partition with keys,
    null keys and headers; a manually assigned Consumer reads them back."""
    topic = f"confluent-{codec}"
    create_topic(server.bootstrap, topic, PARTITIONS)
    before = server.metrics()
    records = make_records(topic, range(PARTITIONS), PER_PARTITION)
    delivered = confluent_produce(server.bootstrap, topic, records, codec)
    for p, recs in by_partition(delivered).items():
        assert [r.offset for r in recs] == list(range(PER_PARTITION)), f"partition {p} acks"

    consumed = confluent_consume(server.bootstrap, topic, range(PARTITIONS))
    assert_same_records(consumed, by_partition(records))
    check_metrics_and_codec(server, topic, before, len(records), codec)


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_round_trip(server: RinglogServer, codec: str):
    """kafka-python KafkaProducer (acks=all, versions probed) into every
    partition with keys, null keys and headers; an assigned KafkaConsumer
    reads them back."""
    topic = f"kafka-python-{codec}"
    create_topic(server.bootstrap, topic, PARTITIONS)
    before = server.metrics()
    records = make_records(topic, range(PARTITIONS), PER_PARTITION)
    delivered = kafka_python_produce(server.bootstrap, topic, records, codec)
    for p, recs in by_partition(delivered).items():
        assert [r.offset for r in recs] == list(range(PER_PARTITION)), f"partition {p} acks"

    consumed = kafka_python_consume(server.bootstrap, topic, range(PARTITIONS))
    assert_same_records(consumed, by_partition(records))
    check_metrics_and_codec(server, topic, before, len(records), codec)


def test_clients_read_each_others_records(server: RinglogServer):
    """What one client wrote, the others read identically (zstd from
    confluent-kafka, read by kafka-python; lz4 from kafka-python, read by
    confluent-kafka)."""
    create_topic(server.bootstrap, "mixed", PARTITIONS)
    a = make_records("a", range(PARTITIONS), 10)
    confluent_produce(server.bootstrap, "mixed", a, "zstd")
    b = make_records("b", range(PARTITIONS), 10)
    kafka_python_produce(server.bootstrap, "mixed", b, "lz4")
    expected = by_partition(a + b)
    assert_same_records(
        kafka_python_consume(server.bootstrap, "mixed", range(PARTITIONS)), expected
    )
    assert_same_records(confluent_consume(server.bootstrap, "mixed", range(PARTITIONS)), expected)


def test_metrics_export_latency_histograms_and_segment_gauge(server_factory):
    """After acks=all produce and a consume on both shards: request latency
    observed for several APIs, fsyncs timed on both shards, a segment
    gauge per shard, fetch bytes counted."""
    server = server_factory("--flush-policy", "always")
    create_topic(server.bootstrap, "observed", PARTITIONS)
    records = make_records("observed", range(PARTITIONS), 5)
    confluent_produce(server.bootstrap, "observed", records)
    assert_same_records(
        confluent_consume(server.bootstrap, "observed", range(PARTITIONS)), by_partition(records)
    )
    m = server.metrics()

    apis_seen = {
        s.labels.get("api") for s in m.find("ringlog_request_duration_seconds_count") if s.value > 0
    }
    apis_seen.discard(None)
    # At least ApiVersions, Metadata, CreateTopics, Produce, ListOffsets, Fetch.
    assert len(apis_seen) >= 3, f"request latency observed only for {apis_seen}"
    assert m.find("ringlog_request_duration_seconds_bucket"), "no latency histogram buckets"

    for shard in range(server.shards):
        assert m.value("ringlog_fsync_duration_seconds_count", shard=str(shard)) > 0, (
            f"no fsync timed on shard {shard} after acks=all produce"
        )
        assert m.value("ringlog_segments", shard=str(shard)) >= 1, f"shard {shard} segment gauge"
        assert m.value("ringlog_fetch_bytes_total", shard=str(shard)) > 0, (
            f"shard {shard} fetch bytes"
        )
