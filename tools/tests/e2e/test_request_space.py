"""Every legal request is served (issue 12): large records, concurrent
producers and small fetch sizes, through librdkafka (confluent-kafka).

* ``test_large_records_after_small_ones_regression``: the reported
  workload as it was: 1,000 records of 10 KB, then 1,000 of 500,000 bytes,
  to partition 0 of a new topic with the producer's defaults, read back
  by a consumer with ``fetch.message.max.bytes=100000``. It once panicked
  shard 0 ("append needed more than 4 I/O steps") and, in another run,
  delivered record #490 right after #391.
* ``test_request_space_property``: random seeds, each drawing record
  sizes from 0 bytes to the topic's ``max.message.bytes``, random
  batching (linger, batch size) and codecs, several producers at once on
  one partition and across partitions, and consumers with random
  ``fetch.max.bytes`` / ``max.partition.fetch.bytes``, some below one
  record's size. Every acknowledged record is read back exactly once, in
  offset order, with its value; each producer's records keep their send
  order within a partition; the broker stays up.

``RINGLOG_PROP_SEEDS`` sets how many seeds run (CI: 3); run more by hand,
e.g. ``RINGLOG_PROP_SEEDS=40 RINGLOG_PROP_FIRST_SEED=100 python3 -m pytest
tools/tests/e2e/test_request_space.py -k property``.
"""

from __future__ import annotations

import os
import random
import struct
import threading
import time
from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaError, TopicPartition

from kafka_clients import CODECS, confluent_consumer, confluent_producer, create_topic

SEEDS = int(os.environ.get("RINGLOG_PROP_SEEDS", "3"))
FIRST_SEED = int(os.environ.get("RINGLOG_PROP_FIRST_SEED", "1"))

# The topic limit the property test draws record sizes up to. Record and
# batch overhead (about 100 bytes here: no key, no headers) must fit too.
MAX_MESSAGE_BYTES = 300_000
RECORD_OVERHEAD_BYTES = 128

PRODUCE_TIMEOUT_S = 120.0
CONSUME_TIMEOUT_S = 120.0

# Each value starts with its identity: producer, sequence, its own length.
HEADER = struct.Struct(">IIIq")


def value_of(producer: int, seq: int, size: int, seed: int) -> bytes:
    """A value of exactly ``size`` bytes (at least the header) that names
    its producer and sequence, filled with seed-dependent bytes."""
    size = max(size, HEADER.size)
    fill = bytes([(producer * 31 + seq + seed) % 251]) * (size - HEADER.size)
    return HEADER.pack(producer, seq, size, seed) + fill


def identity(value: bytes) -> tuple[int, int]:
    producer, seq, size, _seed = HEADER.unpack_from(value)
    assert len(value) == size, f"value of producer {producer} seq {seq} is {len(value)} bytes, not {size}"
    return producer, seq


@dataclass
class Produced:
    producer: int
    seq: int
    partition: int
    offset: int


def produce_all(bootstrap: str, topic: str, producer: int, plan: list[tuple[int, int]],
                seed: int, conf: dict, out: list[Produced], errors: list) -> None:
    """Sends ``plan`` (partition, value size) in order; records each
    delivery report, and any failure in ``errors``."""
    try:
        send_plan(bootstrap, topic, producer, plan, seed, conf, out, errors)
    except Exception as e:  # noqa: BLE001 - reported by the main thread
        errors.append((producer, None, repr(e)))


def send_plan(bootstrap: str, topic: str, producer: int, plan: list[tuple[int, int]],
              seed: int, conf: dict, out: list[Produced], errors: list) -> None:
    client = confluent_producer(bootstrap, **conf)

    def report(seq: int):
        def on_delivery(err, msg):
            if err is not None:
                errors.append((producer, seq, err))
            else:
                out.append(Produced(producer, seq, msg.partition(), msg.offset()))

        return on_delivery

    for seq, (partition, size) in enumerate(plan):
        while True:
            try:
                client.produce(topic, value_of(producer, seq, size, seed), partition=partition,
                               on_delivery=report(seq))
                break
            except BufferError:
                client.poll(0.05)
        client.poll(0)
    left = client.flush(PRODUCE_TIMEOUT_S)
    if left:
        errors.append((producer, None, f"{left} records undelivered after {PRODUCE_TIMEOUT_S} s"))


def consume_all(bootstrap: str, topic: str, partitions: list[int], ends: dict[int, int],
                conf: dict) -> dict[int, list[tuple[int, bytes]]]:
    """Reads each partition from offset 0 up to ``ends[p]``; returns
    (offset, value) in the order received."""
    consumer = confluent_consumer(bootstrap, **conf)
    got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in partitions}
    next_offset = {p: 0 for p in partitions}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while any(next_offset[p] < ends[p] for p in partitions):
            assert time.monotonic() < deadline, (
                f"not read to the end in {CONSUME_TIMEOUT_S} s: at {next_offset}, ends {ends}"
            )
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                assert err.code() == KafkaError._PARTITION_EOF or not err.fatal(), f"consumer: {err}"
                continue
            p = msg.partition()
            got[p].append((msg.offset(), msg.value()))
            next_offset[p] = msg.offset() + 1
    finally:
        consumer.close()
    return got


def check_read_back(produced: list[Produced], got: dict[int, list[tuple[int, bytes]]]) -> None:
    by_offset = {(r.partition, r.offset): r for r in produced}
    assert len(by_offset) == len(produced), "two acknowledgements share one offset"
    for p, records in got.items():
        offsets = [o for o, _ in records]
        assert offsets == sorted(set(offsets)), (
            f"partition {p}: offsets out of order or repeated, first at "
            f"{next(i for i in range(1, len(offsets)) if offsets[i] <= offsets[i - 1])}"
        )
        for offset, value in records:
            ack = by_offset.get((p, offset))
            assert ack is not None, f"partition {p} offset {offset} was never acknowledged"
            assert identity(value) == (ack.producer, ack.seq), (
                f"partition {p} offset {offset} holds {identity(value)}, "
                f"acknowledged as {(ack.producer, ack.seq)}"
            )
    read = {(p, o) for p, records in got.items() for o, _ in records}
    missing = sorted(set(by_offset) - read)
    assert not missing, f"{len(missing)} acknowledged records not read, first {missing[:5]}"
    # Each producer's records keep their send order within a partition.
    per_stream: dict[tuple[int, int], list[Produced]] = {}
    for r in produced:
        per_stream.setdefault((r.producer, r.partition), []).append(r)
    for (producer, p), stream in per_stream.items():
        stream.sort(key=lambda r: r.seq)
        offsets = [r.offset for r in stream]
        assert offsets == sorted(offsets), (
            f"producer {producer}, partition {p}: sent in one order, stored in another"
        )


def run_workload(bootstrap: str, topic: str, partitions: list[int], plans: list[list[tuple[int, int]]],
                 producer_confs: list[dict], consumer_conf: dict, seed: int) -> int:
    produced: list[Produced] = []
    errors: list = []
    threads = [
        threading.Thread(target=produce_all,
                         args=(bootstrap, topic, i, plan, seed, conf, produced, errors))
        for i, (plan, conf) in enumerate(zip(plans, producer_confs))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"delivery failed: {errors[:5]}"
    assert len(produced) == sum(len(plan) for plan in plans)
    ends = {p: 1 + max((r.offset for r in produced if r.partition == p), default=-1)
            for p in partitions}
    got = consume_all(bootstrap, topic, partitions, ends, consumer_conf)
    check_read_back(produced, got)
    return len(produced)


def test_large_records_after_small_ones_regression(server):
    topic = "regression-large-records"
    create_topic(server.bootstrap, topic, 1)
    plan = [(0, 10_000)] * 1000 + [(0, 500_000)] * 1000
    count = run_workload(
        server.bootstrap, topic, [0], [plan],
        # The reported producer: librdkafka's defaults.
        [{"acks": "all", "linger.ms": 5, "enable.idempotence": False,
          "message.timeout.ms": int(PRODUCE_TIMEOUT_S * 1000)}],
        {"fetch.message.max.bytes": 100_000},
        seed=0,
    )
    assert count == 2000
    assert server.running, "the broker died"
    assert not server.log_lines("panicked"), server.log_tail()


def draw_size(rng: random.Random) -> int:
    """Record sizes over the whole range, weighted to the edges."""
    largest = MAX_MESSAGE_BYTES - RECORD_OVERHEAD_BYTES
    return rng.choice([
        rng.randint(0, 64),
        rng.randint(0, 4096),
        rng.randint(0, largest),
        rng.randint(largest - 4096, largest),
    ])


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + SEEDS))
def test_request_space_property(server, seed):
    rng = random.Random(seed)
    topic = f"request-space-{seed}"
    partition_count = rng.randint(1, 4)
    partitions = list(range(partition_count))
    create_topic(server.bootstrap, topic, partition_count,
                 {"max.message.bytes": str(MAX_MESSAGE_BYTES)})
    producers = rng.randint(2, 4)
    # Bounded volume: at most ~40 MB a seed, so three seeds stay short.
    budget_bytes = 40_000_000
    plans = []
    for _ in range(producers):
        records = rng.randint(20, 300)
        # Some producers stick to partition 0 (several writers on one
        # partition); others spread.
        one_partition = rng.random() < 0.5
        plan = []
        for _ in range(records):
            size = draw_size(rng)
            if size > budget_bytes:
                break
            budget_bytes -= size
            plan.append((0 if one_partition else rng.choice(partitions), size))
        plans.append(plan)
    producer_confs = []
    for _ in range(producers):
        idempotent = rng.random() < 0.5
        producer_confs.append({
            # librdkafka's idempotent producer requires acks=all.
            "acks": "all" if idempotent else rng.choice(["all", "1"]),
            "enable.idempotence": idempotent,
            "compression.type": rng.choice(CODECS),
            "linger.ms": rng.choice([0, 1, 5, 50]),
            "batch.size": rng.choice([16_384, 100_000, 1_000_000]),
            "message.max.bytes": MAX_MESSAGE_BYTES,
            "message.timeout.ms": int(PRODUCE_TIMEOUT_S * 1000),
        })
    # Fetch limits from one byte up, often below a large record's size:
    # the first batch still comes back whole (KIP-74). librdkafka wants
    # fetch.max.bytes >= its own message.max.bytes, whose minimum is 1000.
    consumer_conf = {
        "message.max.bytes": 1000,
        "fetch.max.bytes": rng.choice([1000, 65_536, 1_000_000, 52_428_800]),
        "max.partition.fetch.bytes": rng.choice([1, 1000, 100_000, 1_048_576]),
        "fetch.wait.max.ms": rng.choice([0, 10, 100]),
    }
    print(f"seed {seed}: {partition_count} partitions, {producers} producers, "
          f"{[len(p) for p in plans]} records, producers {producer_confs}, consumer {consumer_conf}")
    count = run_workload(server.bootstrap, topic, partitions, plans, producer_confs,
                         consumer_conf, seed)
    assert count == sum(len(p) for p in plans)
    assert server.running, "the broker died"
    assert not server.log_lines("panicked"), server.log_tail()
