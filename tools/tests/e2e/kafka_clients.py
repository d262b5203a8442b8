"""Producing and consuming through the three real clients (kcat,
confluent-kafka, kafka-python), topic admin through confluent-kafka, and
comparing what was read with what was written.

Consumers here use manual assignment and never commit (consumer groups
have their own tests in test_groups.py).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Iterable

import confluent_kafka
import kafka
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigEntry, ConfigResource, NewTopic, ResourceType

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")

# A compressible filler, so every codec really shrinks the batch and the
# clients keep it compressed; only [A-Za-z0-9._-] so it survives kcat's
# line and format handling.
FILLER = "-lorem.ipsum.dolor.sit.amet" * 6

CLIENT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Record:
    partition: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    offset: int = -1

    def content(self) -> tuple:
        return (self.key, self.value, self.headers)


def make_records(tag: str, partitions: Iterable[int], per_partition: int) -> list[Record]:
    """Distinctive ASCII records for every partition: some null keys, and
    zero, one or three headers (with a repeated name, to check order)."""
    out = []
    for p in partitions:
        for i in range(per_partition):
            key = None if i % 7 == 3 else f"key.{tag}.p{p}.n{i}".encode()
            value = f"value.{tag}.p{p}.n{i:05d}.{FILLER}".encode()
            if i % 3 == 0:
                headers = (
                    ("h-seq", str(i).encode()),
                    ("h-part", f"p{p}".encode()),
                    ("h-seq", b"dup"),
                )
            elif i % 3 == 1:
                headers = ()
            else:
                headers = (("h-only", f"{tag}-{i}".encode()),)
            out.append(Record(p, key, value, headers))
    return out


def by_partition(records: Iterable[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        out[r.partition].append(r)
    return dict(out)


def assert_same_records(
    consumed: dict[int, list[Record]],
    expected: dict[int, list[Record]],
    start_offsets: dict[int, int] | None = None,
) -> None:
    """Per partition: the same (key, value, headers) in the same order, at
    contiguous offsets from the start offset (0 unless given)."""
    assert sorted(p for p, rs in consumed.items() if rs) == sorted(
        p for p, rs in expected.items() if rs
    ), f"partitions with records: consumed {sorted(consumed)}, expected {sorted(expected)}"
    for p, want in expected.items():
        got = consumed.get(p, [])
        start = (start_offsets or {}).get(p, 0)
        offsets = [r.offset for r in got]
        assert offsets == list(range(start, start + len(got))), (
            f"partition {p}: offsets not contiguous from {start}: {offsets[:20]}..."
        )
        assert len(got) == len(want), f"partition {p}: read {len(got)} records, wrote {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert g.content() == w.content(), (
                f"partition {p}, record {i} (offset {g.offset}) differs:\n"
                f"  read  {g.content()!r}\n  wrote {w.content()!r}"
            )


# ---------------------------------------------------------------- confluent-kafka


def confluent_producer(bootstrap: str, codec: str = "none", **extra) -> confluent_kafka.Producer:
    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "compression.type": codec,
        "enable.idempotence": False,
        "linger.ms": 20,
        "message.timeout.ms": 30000,
    }
    conf.update(extra)
    return confluent_kafka.Producer(conf)


def confluent_produce(
    bootstrap: str, topic: str, records: list[Record], codec: str = "none", **producer_conf
) -> list[Record]:
    """Produces ``records`` (each to its partition) with acks=all; returns
    them with the offsets from the delivery reports. Fails on any delivery
    error. ``producer_conf`` adds librdkafka settings (``batch.size``, ...;
    dots as in ``**{"batch.size": 16384}``)."""
    producer = confluent_producer(bootstrap, codec, **producer_conf)
    delivered: dict[int, Record] = {}
    errors = []

    def report(index: int, record: Record):
        def on_delivery(err, msg):
            if err is not None:
                errors.append((record, err))
            else:
                assert msg.partition() == record.partition
                delivered[index] = replace(record, offset=msg.offset())

        return on_delivery

    for index, r in enumerate(records):
        producer.produce(
            topic,
            value=r.value,
            key=r.key,
            partition=r.partition,
            headers=list(r.headers) or None,
            on_delivery=report(index, r),
        )
        producer.poll(0)
    left = producer.flush(CLIENT_TIMEOUT_S)
    assert left == 0, f"{left} records still undelivered after {CLIENT_TIMEOUT_S} s"
    assert not errors, f"delivery failed: {errors[:5]}"
    return [delivered[i] for i in range(len(records))]


def confluent_consumer(bootstrap: str, **extra) -> confluent_kafka.Consumer:
    conf = {
        "bootstrap.servers": bootstrap,
        # Required by librdkafka; never used: no subscribe, no commit.
        "group.id": "ringlog-e2e",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    conf.update(extra)
    return confluent_kafka.Consumer(conf)


def confluent_consume(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int],
    *,
    start: int = confluent_kafka.OFFSET_BEGINNING,
    timeout: float = CLIENT_TIMEOUT_S,
    **consumer_conf,
) -> dict[int, list[Record]]:
    """Reads every partition from ``start`` to its end (partition EOF).
    ``consumer_conf`` adds librdkafka settings (``max.partition.fetch.bytes``,
    ...)."""
    partitions = list(partitions)
    consumer = confluent_consumer(bootstrap, **consumer_conf)
    out: dict[int, list[Record]] = {p: [] for p in partitions}
    at_end: set[int] = set()
    other_errors = []
    try:
        consumer.assign([TopicPartition(topic, p, start) for p in partitions])
        deadline = time.monotonic() + timeout
        while at_end != set(partitions):
            assert time.monotonic() < deadline, (
                f"{topic}: partitions {sorted(set(partitions) - at_end)} not read to the end "
                f"within {timeout} s; read { ({p: len(v) for p, v in out.items()}) }; "
                f"client errors: {other_errors[:5]}"
            )
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                # Non-fatal client-level errors (e.g. the group coordinator
                # lookup librdkafka attempts because group.id is set) are
                # kept for the timeout message; fatal ones end the test.
                assert not err.fatal(), f"fatal consumer error: {err}"
                other_errors.append(err)
                continue
            at_end.discard(msg.partition())
            out[msg.partition()].append(
                Record(
                    msg.partition(),
                    msg.key(),
                    msg.value(),
                    tuple(msg.headers() or ()),
                    msg.offset(),
                )
            )
    finally:
        consumer.close()
    return out


_ADMINS: dict[str, AdminClient] = {}


def admin(bootstrap: str) -> AdminClient:
    """One AdminClient per broker address, kept for the whole run: a
    client that is garbage-collected while its futures are pending fails
    them with _DESTROY, so callers must not hold the only reference."""
    if bootstrap not in _ADMINS:
        _ADMINS[bootstrap] = AdminClient({"bootstrap.servers": bootstrap})
    return _ADMINS[bootstrap]


def create_topic(
    bootstrap: str, topic: str, partitions: int, config: dict[str, str] | None = None
) -> None:
    client = admin(bootstrap)
    futures = client.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=30,
        request_timeout=30,
    )
    futures[topic].result(timeout=CLIENT_TIMEOUT_S)


def describe_configs(bootstrap: str, topic: str) -> dict[str, ConfigEntry]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    client = admin(bootstrap)
    futures = client.describe_configs([resource], request_timeout=30)
    return futures[resource].result(timeout=CLIENT_TIMEOUT_S)


def config_values(bootstrap: str, topic: str) -> dict[str, str]:
    return {name: entry.value for name, entry in describe_configs(bootstrap, topic).items()}


def kafka_error(excinfo_value: BaseException) -> KafkaError:
    """The KafkaError carried by an admin future's KafkaException."""
    assert isinstance(excinfo_value, KafkaException), repr(excinfo_value)
    return excinfo_value.args[0]


# ---------------------------------------------------------------- kafka-python


def kafka_python_produce(
    bootstrap: str, topic: str, records: list[Record], codec: str = "none"
) -> list[Record]:
    producer = kafka.KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="ringlog-e2e-kafka-python",
        acks="all",
        compression_type=None if codec == "none" else codec,
        # Plain producers here; idempotence has its own tests
        # (test_idempotence.py). kafka-python 3 defaults to idempotence.
        enable_idempotence=False,
        linger_ms=20,
        request_timeout_ms=20000,
    )
    try:
        futures = [
            producer.send(
                topic, value=r.value, key=r.key, headers=list(r.headers), partition=r.partition
            )
            for r in records
        ]
        producer.flush(timeout=CLIENT_TIMEOUT_S)
        out = []
        for r, future in zip(records, futures):
            meta = future.get(timeout=CLIENT_TIMEOUT_S)
            assert meta.partition == r.partition, (meta, r)
            out.append(replace(r, offset=meta.offset))
        return out
    finally:
        producer.close(timeout=10)


def kafka_python_consumer(bootstrap: str) -> kafka.KafkaConsumer:
    # api_version unset: kafka-python probes the broker with ApiVersions.
    return kafka.KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="ringlog-e2e-kafka-python",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=200,
        request_timeout_ms=20000,
    )


def kafka_python_consume(
    bootstrap: str, topic: str, partitions: Iterable[int], timeout: float = CLIENT_TIMEOUT_S
) -> dict[int, list[Record]]:
    """Reads every partition from the beginning to the end offset that
    ListOffsets reports when reading starts."""
    consumer = kafka_python_consumer(bootstrap)
    tps = [kafka.TopicPartition(topic, p) for p in partitions]
    out: dict[int, list[Record]] = {tp.partition: [] for tp in tps}
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, (
                f"{topic}: not read to the end offsets {ends} within {timeout} s; "
                f"read { ({p: len(v) for p, v in out.items()}) }"
            )
            for tp, batch in consumer.poll(timeout_ms=500).items():
                for m in batch:
                    out[tp.partition].append(
                        Record(
                            m.partition,
                            m.key,
                            m.value,
                            tuple((k, v) for k, v in (m.headers or ())),
                            m.offset,
                        )
                    )
    finally:
        consumer.close()
    return out


# ---------------------------------------------------------------- kcat


def kcat_path() -> str:
    path = shutil.which("kcat")
    assert path, "kcat is not installed (ci/e2e.sh installs Debian's package)"
    return path


KCAT_FORMAT = r"REC\t%p\t%o\t%k\t%s\t%h\tEND\n"


def kcat_produce(
    bootstrap: str,
    topic: str,
    partition: int,
    records: list[Record],
    codec: str,
    headers: tuple[tuple[str, bytes], ...],
) -> None:
    """Produces ``records`` (keys via -K, all with the same -H headers) to
    one partition; kcat exits non-zero when a delivery fails."""
    cmd = [
        kcat_path(), "-b", bootstrap, "-P", "-t", topic, "-p", str(partition),
        "-K", ":", "-z", codec,
        "-X", "acks=all", "-X", "linger.ms=20", "-X", "message.timeout.ms=30000",
    ]  # fmt: skip
    for name, value in headers:
        cmd += ["-H", f"{name}={value.decode()}"]
    lines = []
    for r in records:
        assert r.partition == partition and r.headers == headers and r.key is not None
        assert b":" not in r.key and b"\n" not in r.key + r.value
        lines.append(r.key + b":" + r.value + b"\n")
    res = subprocess.run(cmd, input=b"".join(lines), capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert res.returncode == 0, f"kcat -P exited {res.returncode}:\n{res.stderr.decode()}"


def kcat_consume(bootstrap: str, topic: str) -> dict[int, list[Record]]:
    """Reads every partition from the beginning to the end (-e)."""
    cmd = [
        kcat_path(), "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e",
        "-f", KCAT_FORMAT,
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert res.returncode == 0, f"kcat -C exited {res.returncode}:\n{res.stderr.decode()}"
    out: dict[int, list[Record]] = defaultdict(list)
    for line in res.stdout.decode().splitlines():
        fields = line.split("\t")
        assert len(fields) == 7 and fields[0] == "REC" and fields[-1] == "END", (
            f"unexpected kcat output line {line!r}"
        )
        _, p, o, k, v, h, _ = fields
        headers = tuple(
            (name, value.encode())
            for name, value in (pair.split("=", 1) for pair in h.split(",") if pair)
        )
        out[int(p)].append(Record(int(p), k.encode(), v.encode(), headers, int(o)))
    return dict(out)
