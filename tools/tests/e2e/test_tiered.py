"""Tiered storage (issue 13): sealed segments archived to a local
directory or to S3 (moto on 127.0.0.1), local segments deleted once their
archive is recorded (``local.retention.ms`` 0), and every offset still
served from the archives: a consumer from offset 0, raw Fetch bytes,
ListOffsets earliest and by time, ``ringlog inspect archive``. Then the
faults: the S3 server stopped mid-run and started again, kill -9 at the
crash points of an upload and of its recording, stray objects swept at
start, corrupt archives.

Every topic here has small segments (``segment.bytes`` 65536,
``segment.ms`` 1000) so that a few hundred kilobytes seal many of them,
and records of random bytes so that every codec still fills segments.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

import kafka_wire as wire
from kafka_clients import (
    CLIENT_TIMEOUT_S,
    CODECS,
    Record,
    admin,
    assert_same_records,
    by_partition,
    confluent_consume,
    confluent_consumer,
    confluent_produce,
    confluent_producer,
    create_topic,
)
from moto_server import MotoServer
from ringlog_server import RinglogServer, ringlog_bin, wait_until

# The smallest segments that still hold a few batches of BATCH_BYTES.
SEGMENT_BYTES = 65536
TIERED_CONFIG = {
    "segment.bytes": str(SEGMENT_BYTES),
    "segment.ms": "1000",
    "local.retention.ms": "0",
}
# librdkafka's batch limit: well under what a 64 KiB segment accepts
# (max.message.bytes follows segment.bytes down).
BATCH_BYTES = 16384
PRODUCER_CONF = {"batch.size": BATCH_BYTES}
PARTITIONS = 2
# Records per partition and codec round: about 90 KB of random base64 per
# partition, so each round seals at least one segment whatever the codec.
PER_ROUND = 200
VALUE_RANDOM_BYTES = 300
# How long the broker may take to seal, upload, record and delete locally.
TIERING_TIMEOUT_S = 90.0

# `topics/<topic id>/<partition>/<first offset>-<last offset>.rla`.
ARCHIVE_NAME = re.compile(r"(\d{20})-(\d{20})\.rla")
KAFKA_STORAGE_ERROR = 56


# ---------------------------------------------------------------- records


def random_records(tag: str, partitions: range, count: int) -> list[Record]:
    """``count`` records per partition with a key, a value of random base64
    (which no codec shrinks below three quarters) and a header."""
    out = []
    for p in partitions:
        for i in range(count):
            noise = base64.b64encode(os.urandom(VALUE_RANDOM_BYTES))
            out.append(
                Record(
                    p,
                    f"{tag}.p{p}.n{i}".encode(),
                    f"{tag}.p{p}.n{i:05d}.".encode() + noise,
                    (("round", tag.encode()),),
                )
            )
    return out


def produce_rounds(server: RinglogServer, topic: str, tag: str, codecs=CODECS) -> list[Record]:
    """One round per codec through confluent-kafka (acks=all); the
    acknowledged records with their offsets."""
    acked = []
    for codec in codecs:
        records = random_records(f"{tag}-{codec}", range(PARTITIONS), PER_ROUND)
        acked += confluent_produce(server.bootstrap, topic, records, codec, **PRODUCER_CONF)
    return acked


# ---------------------------------------------------------------- raw batches


def raw_batch(codec: str, records: list[Record], timestamps: list[int]) -> bytes:
    """A RecordBatch v2 as a non-idempotent producer sends it, compressed
    with ``codec`` (kafka-python's builder writes the CRC-32C)."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=wire.CODEC_IDS[codec],
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for delta, (r, ts) in enumerate(zip(records, timestamps)):
        assert builder.append(delta, ts, r.key, r.value, list(r.headers)) is not None
    return bytes(builder.build())


def split_batches(records: bytes) -> list[tuple[int, bytes]]:
    """(base offset, whole batch bytes) of every whole batch in a Fetch
    response's records."""
    out, at = [], 0
    while len(records) - at >= wire.BATCH_PREFIX:
        base_offset = int.from_bytes(records[at : at + 8], "big", signed=True)
        length = int.from_bytes(records[at + 8 : at + 12], "big", signed=True)
        end = at + wire.BATCH_PREFIX + length
        if end > len(records):
            break
        out.append((base_offset, records[at:end]))
        at = end
    return out


def fetch_one(
    server: RinglogServer, topic: str, partition: int, offset: int, max_bytes: int = 8 << 20
) -> wire.FetchedPartition:
    """One Fetch v4 of one partition; ``max_bytes`` 1 returns just the
    batch holding ``offset`` (a broker always returns one whole batch)."""
    with wire.KafkaConn(server.kafka_addr, timeout=30) as conn:
        body = wire.fetch_v4_body(
            topic, partition, offset, max_wait_ms=0, partition_max_bytes=max_bytes
        )
        corr = conn.send_request(wire.FETCH, 4, body)
        (part,) = wire.parse_fetch_v4(conn.recv_response(corr, timeout=30))
    return part


def fetch_raw(server: RinglogServer, topic: str, partition: int) -> list[tuple[int, bytes]]:
    """Every batch of a partition, from offset 0 to the high watermark, as
    the broker sends it."""
    out: list[tuple[int, bytes]] = []
    offset, deadline = 0, time.monotonic() + CLIENT_TIMEOUT_S
    while True:
        part = fetch_one(server, topic, partition, offset)
        assert part.error_code == wire.NONE, (
            f"{topic}/{partition}: Fetch at offset {offset} answered error {part.error_code}"
        )
        got = [
            (base, batch)
            for base, batch in split_batches(part.records)
            if base + last_offset_delta(batch) >= offset
        ]
        out += got
        if got:
            offset = got[-1][0] + last_offset_delta(got[-1][1]) + 1
        if offset >= part.high_watermark:
            return out
        assert time.monotonic() < deadline, (
            f"{topic}/{partition}: stuck at offset {offset} below {part.high_watermark}"
        )


def last_offset_delta(batch: bytes) -> int:
    return int.from_bytes(batch[23:27], "big", signed=True)


def produce_raw_batches(
    server: RinglogServer, topic: str, partition: int, per_batch: int, base_ts: int
) -> tuple[list[Record], list[int], list[tuple[int, bytes]]]:
    """One raw Produce v3 batch per codec, records stamped ``base_ts`` +
    10 ms per record; returns the records (with offsets), their
    timestamps, and each batch as sent with the offset it was given."""
    records, stamps, sent = [], [], []
    with wire.KafkaConn(server.kafka_addr, timeout=30) as conn:
        for codec in CODECS:
            batch_records = random_records(f"raw-{codec}", range(partition, partition + 1), per_batch)
            batch_stamps = [base_ts + 10 * (len(stamps) + i) for i in range(per_batch)]
            batch = raw_batch(codec, batch_records, batch_stamps)
            answer = wire.produce_v3(conn, topic, partition, batch)
            assert answer.error_code == wire.NONE, answer
            records += [
                replace(r, offset=answer.base_offset + i) for i, r in enumerate(batch_records)
            ]
            stamps += batch_stamps
            sent.append((answer.base_offset, batch))
    return records, stamps, sent


# ---------------------------------------------------------------- where the tiers are


def archived(names: list[tuple[int, str]]) -> dict[int, list[tuple[int, int, str]]]:
    """Archive objects by partition: (first, last, key or path), sorted,
    from (partition, name) pairs; names that are not archives (a store's
    temporary files) are left out."""
    out: dict[int, list[tuple[int, int, str]]] = {}
    for partition, name in names:
        m = ARCHIVE_NAME.fullmatch(name.rsplit("/", 1)[-1])
        if m:
            out.setdefault(partition, []).append((int(m[1]), int(m[2]), name))
    return {p: sorted(objects) for p, objects in out.items()}


def local_archives(server: RinglogServer) -> dict[int, list[tuple[int, int, str]]]:
    """The objects of the default local-directory store (one topic per
    test, so the topic id directory is whichever there is)."""
    root = server.data_dir / "archive"
    return archived(
        [(int(path.parent.name), str(path)) for path in root.glob("topics/*/*/*.rla")]
    )


def s3_archives(s3: MotoServer, prefix: str) -> dict[int, list[tuple[int, int, str]]]:
    names = []
    for key in s3.keys(f"{prefix}/topics/"):
        parts = key.split("/")
        names.append((int(parts[-2]), key))
    return archived(names)


def local_segments(server: RinglogServer, topic: str, partition: int) -> list[int]:
    """Base offsets of the partition's segment files on the data disk."""
    directory = server.data_dir / "topics" / topic / str(partition)
    return sorted(int(path.stem) for path in directory.glob("*.log"))


def contiguous_end(objects: list[tuple[int, int, str]]) -> int | None:
    """The offset after the last archive if the archives cover 0 up to it
    without a gap or an overlap, else None."""
    end = 0
    for first, last, _ in objects:
        if first != end or last < first:
            return None
        end = last + 1
    return end


def await_tiered(
    server: RinglogServer,
    topic: str,
    objects_of,
    min_objects: int,
    timeout: float = TIERING_TIMEOUT_S,
) -> dict[int, list[tuple[int, int, str]]]:
    """Waits until, in every partition, at least ``min_objects`` archives
    cover offset 0 up to the active segment without gap or overlap, and
    the active segment is the only one left on the data disk; returns the
    archives."""
    state: dict = {}

    def tiered():
        objects = objects_of()
        state["objects"] = objects
        state["local"] = {p: local_segments(server, topic, p) for p in range(PARTITIONS)}
        for p in range(PARTITIONS):
            mine = objects.get(p, [])
            local = state["local"][p]
            if len(mine) < min_objects or len(local) != 1 or contiguous_end(mine) != local[0]:
                return None
        return objects

    try:
        return wait_until(tiered, timeout, "archives covering every sealed segment", interval=0.2)
    except AssertionError as e:
        ranges = {p: [(f, l) for f, l, _ in o] for p, o in state.get("objects", {}).items()}
        raise AssertionError(
            f"{e}: archives {ranges}, local segments {state.get('local')}"
        ) from None


def inspect_archive(target: str, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(ringlog_bin()), "inspect", "archive", *args, target],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )


def watermarks(server: RinglogServer, topic: str, partition: int) -> tuple[int, int]:
    consumer = confluent_consumer(server.bootstrap)
    try:
        return consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=CLIENT_TIMEOUT_S, cached=False
        )
    finally:
        consumer.close()


# ---------------------------------------------------------------- local directory


def test_local_directory_archives_replace_segments_and_serve_every_offset(server_factory):
    """The default store, <data-dir>/archive: raw batches and confluent-kafka
    rounds in all five codecs seal many segments; once the archives cover
    everything below the active segment and the sealed segments are gone,
    a consumer from 0 reads every record, raw Fetch returns the batches as
    sent, ListOffsets earliest is 0 and by time lands on the exact record
    inside archived batches, and ``ringlog inspect archive`` verifies an
    object."""
    server = server_factory()
    topic = "tiered-local"
    create_topic(server.bootstrap, topic, PARTITIONS, TIERED_CONFIG)

    # First, raw batches in every codec with timestamps an hour old: the
    # oldest records of each partition, so a time inside them has one
    # answer.
    base_ts = int(time.time() * 1000) - 3_600_000
    raw: dict[int, tuple[list[Record], list[int], list[tuple[int, bytes]]]] = {}
    for p in range(PARTITIONS):
        raw[p] = produce_raw_batches(server, topic, p, 20, base_ts)
        assert raw[p][0][0].offset == 0
    acked = produce_rounds(server, topic, "local")
    expected = by_partition([r for p in range(PARTITIONS) for r in raw[p][0]] + acked)
    served_before = {p: fetch_raw(server, topic, p) for p in range(PARTITIONS)}

    objects = await_tiered(server, topic, lambda: local_archives(server), min_objects=4)

    # A consumer from offset 0 reads every record, in order; so does one
    # whose fetches return one batch each, which moves on only if the
    # batch returned holds the offset asked for.
    consumed = confluent_consume(server.bootstrap, topic, range(PARTITIONS))
    assert_same_records(consumed, expected)
    small = confluent_consume(
        server.bootstrap,
        topic,
        range(PARTITIONS),
        **{"max.partition.fetch.bytes": 1, "fetch.max.bytes": 1000, "message.max.bytes": 1000},
    )
    assert_same_records(small, expected)

    for p in range(PARTITIONS):
        served = fetch_raw(server, topic, p)
        # The same bytes as before the segments left the data disk...
        assert [b for _, b in served] == [b for _, b in served_before[p]], (
            f"partition {p}: batches served from the archives differ from those served locally"
        )
        # ...and the raw batches exactly as sent, but for the base offset
        # the broker assigns.
        for (base, got), (offset, want) in zip(served, raw[p][2]):
            assert base == offset
            assert got[8:] == want[8:], f"partition {p}: batch at {base} differs from what was sent"

        low, high = watermarks(server, topic, p)
        assert (low, high) == (0, len(expected[p])), (p, low, high)
        local_start = local_segments(server, topic, p)[0]
        assert objects[p][0][0] == 0 and local_start > 0

    # ListOffsets by time inside archived raw batches (compressed ones:
    # the broker finds the record inside the batch).
    records, stamps, _ = raw[0]
    consumer = confluent_consumer(server.bootstrap)
    try:
        for index in (0, 27, 45, 99):
            assert index < local_segments(server, topic, 0)[0], "the record must be archived"
            for target in (stamps[index], stamps[index] - 5):
                [found] = consumer.offsets_for_times(
                    [TopicPartition(topic, 0, target)], timeout=CLIENT_TIMEOUT_S
                )
                assert found.error is None, found.error
                assert found.offset == records[index].offset, (target, found.offset, index)
    finally:
        consumer.close()

    for p in range(PARTITIONS):
        path = objects[p][len(objects[p]) // 2][2]
        result = inspect_archive(path)
        assert result.returncode == 0, result.stderr
        assert "every crc verified" in result.stdout, result.stdout


# ---------------------------------------------------------------- S3


@pytest.fixture
def s3():
    """A moto server for one test. Requested before ``server_factory`` so
    the broker stops while moto still answers."""
    server = MotoServer(bucket="ringlog-tiered")
    server.start()
    yield server
    server.stop()


def test_s3_archives_survive_the_store_going_down_and_serve_every_offset(s3, server_factory):
    """--archive s3://bucket/prefix on moto: objects appear in the bucket;
    with moto stopped, produce keeps working and sealed segments stay on
    the data disk; with moto back, archiving resumes by itself; a consumer
    from 0 reads everything once the local segments are gone, and
    ``ringlog inspect archive s3://...`` verifies an object."""
    prefix = "cluster/e2e"
    server = server_factory(
        "--archive", f"s3://{s3.bucket}/{prefix}", "--s3-endpoint", s3.endpoint, start=False
    )
    server.extra_env = s3.env()
    server.start()
    topic = "tiered-s3"
    create_topic(server.bootstrap, topic, PARTITIONS, TIERED_CONFIG)

    acked = produce_rounds(server, topic, "s3-up", codecs=("none", "gzip"))
    await_tiered(server, topic, lambda: s3_archives(s3, prefix), min_objects=2)
    # Wait for the idle active segment to seal and upload too (segment.ms),
    # so nothing is in flight when the store goes down.
    ends = {p: watermarks(server, topic, p)[1] for p in range(PARTITIONS)}

    def everything_archived():
        objects = s3_archives(s3, prefix)
        done = all(contiguous_end(objects.get(p, [])) == ends[p] for p in range(PARTITIONS))
        return objects if done else None

    before = wait_until(
        everything_archived,
        TIERING_TIMEOUT_S,
        "every record archived before the store goes down",
        interval=0.2,
    )
    # moto keeps objects in memory only; S3 would keep them through an
    # outage, so they are put back when it returns.
    client = s3.client()
    kept = {
        key: client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
        for objects in before.values()
        for _, _, key in objects
    }

    s3.stop()
    # Produce keeps working while the store is down, and the sealed
    # segments stay on the data disk.
    acked += produce_rounds(server, topic, "s3-down", codecs=("snappy", "lz4"))
    for p in range(PARTITIONS):
        assert len(local_segments(server, topic, p)) >= 2, (
            f"partition {p}: sealed segments left the data disk while the store was down"
        )

    s3.start()
    for key, body in kept.items():
        client.put_object(Bucket=s3.bucket, Key=key, Body=body)
    after = await_tiered(server, topic, lambda: s3_archives(s3, prefix), min_objects=3)
    new_keys = {key for objects in after.values() for _, _, key in objects} - set(kept)
    assert new_keys, "no archive uploaded after the store came back"

    acked += produce_rounds(server, topic, "s3-back", codecs=("zstd",))
    await_tiered(server, topic, lambda: s3_archives(s3, prefix), min_objects=4)
    consumed = confluent_consume(server.bootstrap, topic, range(PARTITIONS))
    assert_same_records(consumed, by_partition(acked))
    for p in range(PARTITIONS):
        assert watermarks(server, topic, p) == (0, len(consumed[p]))

    key = sorted(new_keys)[0]
    result = inspect_archive(
        f"s3://{s3.bucket}/{key}", "--s3-endpoint", s3.endpoint, env=s3.env()
    )
    assert result.returncode == 0, result.stderr
    assert "every crc verified" in result.stdout, result.stdout
    missing = f"s3://{s3.bucket}/{prefix}/topics/none.rla"
    result = inspect_archive(missing, "--s3-endpoint", s3.endpoint, env=s3.env())
    assert result.returncode == 2, result
    assert f"cannot read {missing}: no such object" in result.stderr, result.stderr


# ---------------------------------------------------------------- kill -9


def produce_until_exit(server: RinglogServer, topic: str, timeout: float = 120.0) -> list[tuple]:
    """Produces acks=all until the server process exits by itself (a crash
    point); returns every acknowledged (partition, offset, value)."""
    producer = confluent_producer(
        server.bootstrap,
        "lz4",
        **{**PRODUCER_CONF, "linger.ms": 5, "message.timeout.ms": 10000, "retries": 0},
    )
    acked: list[tuple] = []

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))

    deadline = time.monotonic() + timeout
    step = 0
    while server.proc.poll() is None:
        assert time.monotonic() < deadline, "the server did not reach its crash point"
        for r in random_records(f"crash{step}", range(PARTITIONS), 50):
            producer.produce(topic, value=r.value, key=r.key, partition=r.partition,
                             on_delivery=on_delivery)
        producer.flush(10)
        step += 1
    producer.purge(in_queue=True, in_flight=True)
    producer.flush(10)
    return acked


@pytest.mark.parametrize("point", ["archive-uploaded", "archive-recorded"])
def test_kill_9_during_upload_or_recording_leaves_one_archive_per_segment(server_factory, point):
    """The broker kills itself (RINGLOG_CRASH_AT) once an object is
    uploaded but not recorded, or recorded but its segment not yet deleted;
    after a restart every acknowledged record is readable from 0 and the
    objects cover the archived offsets exactly once: no orphan, no gap."""
    server = server_factory(start=False)
    server.extra_env = {"RINGLOG_CRASH_AT": point}
    server.start()
    topic = f"crash-{point}"
    create_topic(server.bootstrap, topic, PARTITIONS, TIERED_CONFIG)

    acked = produce_until_exit(server, topic)
    assert server.proc.wait(30) != 0
    assert f"crash point {point} reached" in server.log_text()
    assert acked, "nothing was acknowledged before the crash"

    server.extra_env = {}
    server.start()
    # Objects do not overlap and cover 0 up to the active segment: the
    # object of the interrupted upload is the one recorded, or gone.
    await_tiered(server, topic, lambda: local_archives(server), min_objects=1)
    consumed = confluent_consume(server.bootstrap, topic, range(PARTITIONS))
    stored = {(p, r.offset): r.value for p, records in consumed.items() for r in records}
    for p, records in consumed.items():
        assert [r.offset for r in records] == list(range(len(records))), p
    missing = [(p, o) for p, o, v in acked if stored.get((p, o)) != v]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"


# ---------------------------------------------------------------- orphans


def test_a_deleted_topics_archives_go_and_a_start_sweeps_stray_objects(server_factory):
    """Deleting a topic removes its archives; an object no topic can ever
    record (a topic id no live topic has, as a crash during a deletion
    leaves) is removed by the next start, and the live topic's archives
    stay."""
    server = server_factory()
    create_topic(server.bootstrap, "kept", PARTITIONS, TIERED_CONFIG)
    create_topic(server.bootstrap, "dropped", PARTITIONS, TIERED_CONFIG)
    for topic in ("kept", "dropped"):
        produce_rounds(server, topic, topic, codecs=("none",))
    root = server.data_dir / "archive" / "topics"

    def topic_dirs_with_archives() -> set[str]:
        return {path.parent.parent.name for path in root.glob("*/*/*.rla")}

    wait_until(
        lambda: len(topic_dirs_with_archives()) == 2, TIERING_TIMEOUT_S, "both topics archived"
    )
    futures = admin(server.bootstrap).delete_topics(["dropped"], operation_timeout=30)
    futures["dropped"].result(timeout=CLIENT_TIMEOUT_S)
    wait_until(
        lambda: len(topic_dirs_with_archives()) == 1, 30, "the deleted topic's archives removed"
    )
    [kept_id] = topic_dirs_with_archives()
    kept = sorted(root.glob("*/*/*.rla"))

    server.stop()
    stray = root / ("ab" * 16) / "0" / f"{0:020}-{99:020}.rla"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(Path(kept[0]).read_bytes())
    server.start()
    wait_until(lambda: not stray.exists(), 30, f"the start-up sweep removing {stray}")
    assert topic_dirs_with_archives() == {kept_id}
    assert all(path.exists() for path in kept)


# ---------------------------------------------------------------- corruption


def members(path: str) -> dict[str, tuple[int, int]]:
    """(position, length) of the records member and the footer, from
    ``ringlog inspect archive``."""
    result = inspect_archive(path)
    assert result.returncode == 0, result.stderr
    found = {}
    for line in result.stdout.splitlines():
        m = re.match(r"\s*(\d+)\s+(member records|footer): (\d+) bytes", line)
        if m:
            found[m[2].removeprefix("member ")] = (int(m[1]), int(m[3]))
    assert set(found) == {"records", "footer"}, result.stdout
    return found


def batch_around(records: bytes, position: int) -> tuple[int, int, bytes]:
    """(position, base offset, bytes) of the batch of a records member that
    holds byte ``position``."""
    at = 0
    for base, batch in split_batches(bytes(records)):
        if at + len(batch) > position:
            return at, base, batch
        at += len(batch)
    raise AssertionError(f"no batch holds byte {position} of {len(records)}")


def test_corrupt_archives_answer_storage_errors_and_other_ranges_still_serve(server_factory):
    """A flipped byte in one archive's records and a truncated footer in
    another: a Fetch inside either answers KAFKA_STORAGE_ERROR and the log
    names the object, while offsets of the intact archives still serve."""
    server = server_factory()
    topic = "tiered-corrupt"
    create_topic(server.bootstrap, topic, PARTITIONS, TIERED_CONFIG)
    produce_rounds(server, topic, "corrupt")
    objects = await_tiered(server, topic, lambda: local_archives(server), min_objects=4)[0]
    flipped, truncated = objects[1], objects[2]
    intact = [objects[0], objects[3]]
    server.stop()

    # A byte in the middle of a batch in the middle of the records member,
    # inside what the batch CRC and the span crc32c cover.
    records_at, records_len = members(flipped[2])["records"]
    data = bytearray(Path(flipped[2]).read_bytes())
    batch_at, bad_offset, batch = batch_around(
        data[records_at : records_at + records_len], records_len // 2
    )
    data[records_at + batch_at + len(batch) // 2] ^= 0x5A
    Path(flipped[2]).write_bytes(bytes(data))
    # The other loses the end of its footer and its trailer.
    footer_at, footer_len = members(truncated[2])["footer"]
    with open(truncated[2], "r+b") as f:
        f.truncate(footer_at + footer_len // 2)

    server.start()
    for offset in (bad_offset, truncated[0], truncated[1]):
        part = fetch_one(server, topic, 0, offset, max_bytes=1)
        assert part.error_code == KAFKA_STORAGE_ERROR, (offset, part.error_code)
    for first, _, _ in intact:
        part = fetch_one(server, topic, 0, first, max_bytes=1)
        assert part.error_code == wire.NONE, (first, part.error_code)
        batches = split_batches(part.records)
        assert batches and batches[0][0] == first, f"Fetch at {first}: {batches[:1]}"
    for _, _, path in (flipped, truncated):
        name = Path(path).name
        wait_until(lambda: server.log_lines(name), 10, f"a log line naming {name}")
    # The other partition is untouched.
    assert fetch_one(server, topic, 1, 0, max_bytes=1).error_code == wire.NONE
