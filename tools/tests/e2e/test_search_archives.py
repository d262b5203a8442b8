"""Record search over archives (issue 14): when a searchable topic's
segment is archived, its index goes into the archive as a member, and
records stay searchable after the local segments are deleted, from the
local-directory store and from S3 (moto on 127.0.0.1). Time and offset
ranges prune archives by the metadata log's timestamps and offsets
(counted by ``archives_searched``); a damaged index member makes that archive's
offsets unindexed while the rest answers and Fetch still serves; a
kill -9 while a segment is indexed leaves every archive whole, with or
without its index, and says which.

Each test starts its own broker(s).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from kafka_clients import (
    CLIENT_TIMEOUT_S,
    Record,
    confluent_consume,
    confluent_produce,
    confluent_producer,
    create_topic,
)
from moto_server import MotoServer
from ringlog_server import RinglogServer, ringlog_bin, wait_until

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 2
# Small segments sealed after a second idle, deleted locally once
# archived: the records of a test leave the data disk within seconds.
TIERED_CONFIG = {
    "segment.bytes": "65536",
    "segment.ms": "1000",
    "local.retention.ms": "0",
}
PRODUCER_CONF = {"batch.size": 16384}
TIERING_TIMEOUT_S = 90.0
ARCHIVE_NAME = re.compile(r"(\d{20})-(\d{20})\.rla")


def search(server: RinglogServer, topic: str, q: str, **params) -> dict:
    query = urllib.parse.urlencode({"topic": topic, "q": q, "limit": 1000, **params})
    url = f"http://{server.http_addr}/search?{query}"
    with urllib.request.urlopen(url, timeout=CLIENT_TIMEOUT_S) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def noise_records(tag: str, count: int) -> list[Record]:
    """Records no codec shrinks much (random base64), so a few hundred
    seal several 64 KiB segments."""
    return [
        Record(p, f"{tag}-{i}".encode(), f"{tag} filler {i} ".encode() + base64.b64encode(os.urandom(300)))
        for i in range(count)
        for p in range(PARTITIONS)
    ]


def local_segments(server: RinglogServer, topic: str, partition: int) -> list[int]:
    directory = server.data_dir / "topics" / topic / str(partition)
    return sorted(int(path.stem) for path in directory.glob("*.log"))


def local_archive_files(server: RinglogServer) -> list[Path]:
    return sorted(
        p for p in (server.data_dir / "archive").glob("topics/*/*/*.rla") if ARCHIVE_NAME.fullmatch(p.name)
    )


def await_off_the_disk(server: RinglogServer, topic: str, offsets: dict[int, list[int]]) -> None:
    """Waits until no local segment holds any of ``offsets`` (by
    partition): their records are only in archives."""

    def gone():
        return all(
            (segments := local_segments(server, topic, p)) and segments[0] > max(wanted)
            for p, wanted in offsets.items()
        )

    wait_until(gone, TIERING_TIMEOUT_S, "the records archived and deleted locally", interval=0.2)


def produce_rare_words(server: RinglogServer, topic: str, codec: str) -> list[Record]:
    """Noise with three rare-word records in it, in ``codec``; returns the
    rare ones as acknowledged."""
    rare = [
        Record(0, b"order-8812", f"shipped zq{codec}arch to the dock".encode(), (("trace", b"t-1"),)),
        Record(1, None, f"zq{codec}arch returned".encode(), (("trace", b"t-2"),)),
        Record(1, b"k-beta", f"only zq{codec}beta here".encode()),
    ]
    noise = noise_records(f"n{codec}", 150)
    records = noise[:100] + rare + noise[100:]
    delivered = confluent_produce(server.bootstrap, topic, records, codec, **PRODUCER_CONF)
    return [d for d in delivered if b"zq" in d.value]


def check_exact(answer: dict, expected: list[Record], topic: str) -> None:
    # Records after them may still be local and unindexed (after a
    # restart, until archived); none of them is.
    for r in expected:
        assert not any(
            u["partition"] == r.partition and u["start"] <= r.offset < u["end"] for u in answer["unindexed"]
        ), answer["unindexed"]
    found = {(h["partition"], h["offset"]): h for h in answer["hits"]}
    assert set(found) == {(r.partition, r.offset) for r in expected}
    for r in expected:
        h = found[(r.partition, r.offset)]
        assert h["topic"] == topic
        assert h["value"].encode() == r.value
        assert (h["key"].encode() if h["key"] is not None else None) == r.key
        assert tuple((x["key"], x["value"].encode()) for x in h["headers"]) == r.headers


@pytest.mark.parametrize("codec", CODECS)
def test_archived_records_are_found_exactly_in_every_codec(server_factory, codec):
    server = server_factory()
    topic = f"sa-{codec}"
    create_topic(server.bootstrap, topic, PARTITIONS, TIERED_CONFIG)
    rare = produce_rare_words(server, topic, codec)
    await_off_the_disk(server, topic, {p: [r.offset for r in rare if r.partition == p] for p in range(PARTITIONS)})

    answer = wait_until(
        lambda: (a := search(server, topic, f"zq{codec}arch")) and not a["unindexed"] and a,
        TIERING_TIMEOUT_S,
        "the archives' indexes searched",
    )
    assert answer["archives_searched"] >= 1
    check_exact(answer, [r for r in rare if f"zq{codec}arch".encode() in r.value], topic)
    beta = search(server, topic, f"zq{codec}beta")
    check_exact(beta, [r for r in rare if b"beta" in r.value], topic)
    assert [h["key"] for h in search(server, topic, 'key:"order-8812"')["hits"]] == ["order-8812"]
    assert {h["offset"] for h in search(server, topic, "headers:t-2")["hits"]} == {
        r.offset for r in rare if ("trace", b"t-2") in r.headers
    }
    # Every archive carries its index.
    for path in local_archive_files(server):
        shown = inspect(str(path))
        assert "member search index" in shown, shown

    # After a restart the archives still answer (nothing was in RAM only).
    server.stop()
    server.start()
    again = wait_until(
        lambda: (a := search(server, topic, f"zq{codec}arch")) and a["hits"] and a,
        TIERING_TIMEOUT_S,
        "the archives searched after the restart",
    )
    check_exact(again, [r for r in rare if f"zq{codec}arch".encode() in r.value], topic)


def test_local_sealed_segments_are_searched_without_archiving(server_factory):
    # --archive off: sealed segments stay on the data disk, searched
    # through the tail (the newest 256 MiB of each partition), and after
    # a restart through indexes built from the segment files.
    server = server_factory("--archive", "off")
    topic = "sa-local"
    create_topic(server.bootstrap, topic, PARTITIONS, {"segment.bytes": "65536"})
    rare = produce_rare_words(server, topic, "lz4")
    confluent_produce(server.bootstrap, topic, noise_records("after", 400), "lz4", **PRODUCER_CONF)
    for p in range(PARTITIONS):
        segments = local_segments(server, topic, p)
        assert len(segments) >= 3, segments
        # Every rare record lies in a sealed segment, not the active one.
        assert all(r.offset < segments[-1] for r in rare if r.partition == p), (segments, rare)
    answer = wait_until(
        lambda: (a := search(server, topic, "zqlz4arch")) and len(a["hits"]) == 2 and a,
        10,
        "the rare words searchable",
    )
    check_exact(answer, [r for r in rare if b"zqlz4arch" in r.value], topic)
    assert answer["archives_searched"] == 0
    assert not local_archive_files(server)

    # After a restart the tail is empty; the sealed segments are indexed
    # from their files.
    server.stop()
    server.start()
    again = wait_until(
        lambda: (a := search(server, topic, "zqlz4arch")) and len(a["hits"]) == 2 and a,
        60,
        "the sealed segments indexed after the restart",
    )
    check_exact(again, [r for r in rare if b"zqlz4arch" in r.value], topic)
    beta = search(server, topic, "zqlz4beta")
    check_exact(beta, [r for r in rare if b"beta" in r.value], topic)


def inspect(target: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(ringlog_bin()), "inspect", "archive", target],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_time_ranges_prune_archives_and_json_members_are_searchable(server_factory):
    server = server_factory()
    topic = "sa-time"
    create_topic(server.bootstrap, topic, 1, TIERED_CONFIG)

    def phase(tag: str) -> list[Record]:
        records = [
            Record(0, None, json.dumps({"user": f"{tag}user", "pad": base64.b64encode(os.urandom(300)).decode()}).encode())
            for _ in range(300)
        ]
        delivered = confluent_produce(server.bootstrap, topic, records, **PRODUCER_CONF)
        await_off_the_disk(server, topic, {0: [d.offset for d in delivered]})
        return delivered

    early = phase("early")
    late = phase("late")
    everything = wait_until(
        lambda: (a := search(server, topic, "")) and not a["unindexed"] and len(a["hits"]) == 600 and a,
        TIERING_TIMEOUT_S,
        "every record searchable in the archives",
    )
    total = everything["archives_searched"]
    assert total >= 4, everything["archives_searched"]
    newest = [(h["timestamp"], h["offset"]) for h in everything["hits"]]
    assert newest == sorted(newest, reverse=True)

    # JSON members, from archives.
    users = search(server, topic, "value.user:lateuser")
    assert sorted(h["offset"] for h in users["hits"]) == [d.offset for d in late]

    # From the first late record's time on: the early archives are pruned.
    late_from = min(h["timestamp"] for h in everything["hits"] if h["offset"] >= late[0].offset)
    pruned = search(server, topic, "value.user:lateuser", from_ts=late_from)
    assert sorted(h["offset"] for h in pruned["hits"]) == [d.offset for d in late]
    assert 1 <= pruned["archives_searched"] < total, (pruned["archives_searched"], total)
    # Before the first late record: only the early ones.
    early_only = search(server, topic, "", to_ts=late_from)
    assert all(h["offset"] < late[0].offset for h in early_only["hits"])
    assert early_only["archives_searched"] < total
    # Offset ranges prune the same way.
    by_offset = search(server, topic, "", from_offset=late[0].offset, to_offset=late[-1].offset + 1)
    assert sorted(h["offset"] for h in by_offset["hits"]) == [d.offset for d in late]
    assert 1 <= by_offset["archives_searched"] < total, (by_offset["archives_searched"], total)
    # Limits hold across archives.
    limited = search(server, topic, "", limit=7)
    assert [h["offset"] for h in limited["hits"]] == [h["offset"] for h in everything["hits"][:7]]
    assert len(early) == 300


def test_s3_archives_are_searched_with_two_gets_each(server_factory):
    s3 = MotoServer(bucket="ringlog-search")
    s3.start()
    try:
        prefix = "search/e2e"
        server = start_on_s3(server_factory, s3, prefix)
        topic = "sa-s3"
        create_topic(server.bootstrap, topic, PARTITIONS, TIERED_CONFIG)
        rare = produce_rare_words(server, topic, "zstd")
        await_off_the_disk(server, topic, {p: [r.offset for r in rare if r.partition == p] for p in range(PARTITIONS)})
        expected = [r for r in rare if b"zqzstdarch" in r.value]
        answer = wait_until(
            lambda: (a := search(server, topic, "zqzstdarch")) and not a["unindexed"] and a,
            TIERING_TIMEOUT_S,
            "the S3 archives' indexes searched",
        )
        check_exact(answer, expected, topic)

        # Cold: a restarted broker opens each archive with two GETs, the
        # footer and the index member (small enough to be read whole).
        gets, opened = cold_search_gets(server, s3, f"{s3.bucket}/{prefix}", topic, "zqzstdarch", expected)
        assert opened >= 2
        assert gets == 2 * opened, (gets, opened)
    finally:
        s3.stop()


def start_on_s3(server_factory, s3: MotoServer, prefix: str) -> RinglogServer:
    """A broker archiving to ``s3`` under ``prefix``, started."""
    server = server_factory("--archive", f"s3://{s3.bucket}/{prefix}", "--s3-endpoint", s3.endpoint, start=False)
    server.extra_env = s3.env()
    server.start()
    return server


def cold_search_gets(
    server: RinglogServer, s3: MotoServer, objects: str, topic: str, q: str, expected: list[Record]
) -> tuple[int, int]:
    """Restarts ``server``, searches ``q`` until it has hits (exactly
    ``expected``), and returns the GETs of archives under ``objects``
    (bucket/prefix) moto served meanwhile, and ``archives_searched``."""
    server.stop()
    server.start()
    before = len(s3.log())
    cold = wait_until(
        lambda: (a := search(server, topic, q)) and a["hits"] and a,
        TIERING_TIMEOUT_S,
        "the S3 archives searched after the restart",
    )
    check_exact(cold, expected, topic)
    gets = re.findall(rf'"GET /{re.escape(objects)}/topics/[^ ?]+\.rla', s3.log()[before:])
    return len(gets), cold["archives_searched"]


def index_member(path: Path) -> tuple[int, int]:
    """(position, length) of an archive's search index member."""
    for line in inspect(str(path)).splitlines():
        m = re.match(r"\s*(\d+)\s+member search index: (\d+) bytes", line)
        if m:
            return int(m[1]), int(m[2])
    raise AssertionError(f"{path} has no search index member")


def test_a_damaged_index_member_reports_its_archive_unindexed(server_factory):
    server = server_factory()
    topic = "sa-corrupt"
    create_topic(server.bootstrap, topic, 1, TIERED_CONFIG)
    records = [Record(0, None, f"zqeach {i} ".encode() + base64.b64encode(os.urandom(300))) for i in range(400)]
    delivered = confluent_produce(server.bootstrap, topic, records, **PRODUCER_CONF)
    await_off_the_disk(server, topic, {0: [d.offset for d in delivered]})
    wait_until(
        lambda: (a := search(server, topic, "zqeach")) and not a["unindexed"] and len(a["hits"]) == 400,
        TIERING_TIMEOUT_S,
        "every record searchable",
    )
    server.stop()
    archives = local_archive_files(server)
    assert len(archives) >= 3
    damaged = archives[1]
    at, length = index_member(damaged)
    data = bytearray(damaged.read_bytes())
    data[at + length // 2] ^= 0x5A
    damaged.write_bytes(bytes(data))
    first, last = (int(x) for x in ARCHIVE_NAME.fullmatch(damaged.name).groups())

    server.start()
    answer = wait_until(
        lambda: (a := search(server, topic, "zqeach")) and a["unindexed"] and a,
        TIERING_TIMEOUT_S,
        "the damaged archive reported",
    )
    assert [(r["start"], r["end"]) for r in answer["unindexed"]] == [(first, last + 1)]
    assert sorted(h["offset"] for h in answer["hits"]) == [
        d.offset for d in delivered if not first <= d.offset <= last
    ]
    assert damaged.name in server.log_text() and "crc32c" in server.log_text()
    # Fetch of those records is unaffected.
    consumed = confluent_consume(server.bootstrap, topic, [0])[0]
    assert [r.offset for r in consumed] == [d.offset for d in delivered]
    assert [r.value for r in consumed] == [d.value for d in delivered]


def test_kill_9_while_a_segment_is_indexed_leaves_whole_archives(server_factory):
    server = server_factory(start=False)
    server.extra_env = {"RINGLOG_CRASH_AT": "segment-indexed"}
    server.start()
    topic = "sa-crash"
    create_topic(server.bootstrap, topic, PARTITIONS, TIERED_CONFIG)
    producer = confluent_producer(
        server.bootstrap, "lz4", **{**PRODUCER_CONF, "linger.ms": 5, "message.timeout.ms": 10000, "retries": 0}
    )
    acked: list[tuple[int, int, bytes]] = []

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))

    step = 0
    while server.proc.poll() is None:
        assert step < 2000, "the server did not reach its crash point"
        for r in noise_records(f"zqcrash{step}", 20):
            producer.produce(topic, value=r.value, key=r.key, partition=r.partition, on_delivery=on_delivery)
        producer.flush(10)
        step += 1
    producer.purge(in_queue=True, in_flight=True)
    producer.flush(10)
    assert server.proc.wait(30) != 0
    assert "crash point segment-indexed reached" in server.log_text()
    assert acked

    server.extra_env = {}
    server.start()
    ends = {p: max(o for q, o, _ in acked if q == p) for p in range(PARTITIONS)}
    await_off_the_disk(server, topic, {p: [ends[p]] for p in range(PARTITIONS)})
    consumed = confluent_consume(server.bootstrap, topic, range(PARTITIONS))
    stored = {(p, r.offset): r.value for p, records in consumed.items() for r in records}
    missing = [(p, o) for p, o, v in acked if stored.get((p, o)) != v]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"

    # Every archive is whole (inspect verifies every member's crc), and
    # each is either searchable or reported unindexed.
    answer = wait_until(
        lambda: (a := search(server, topic, "filler")) and a["hits"] and a,
        TIERING_TIMEOUT_S,
        "the archives searched after the restart",
    )
    unindexed = [(r["partition"], r["start"], r["end"]) for r in answer["unindexed"]]
    for path in local_archive_files(server):
        shown = inspect(str(path))
        partition = int(path.parent.name)
        first, last = (int(x) for x in ARCHIVE_NAME.fullmatch(path.name).groups())
        if "member search index" not in shown:
            assert any(p == partition and s <= first and last < e for p, s, e in unindexed), (path.name, unindexed)
    hit_offsets = {(h["partition"], h["offset"]) for h in search(server, topic, "zqcrash0")["hits"]}
    assert hit_offsets <= set(stored)
