"""Archived indexes opened from their head (issue 14, the hotcache): an
index member larger than the first read after the footer opens from its
header and head (the hot ranges that opening and warming read), and a
query reads the rest a block at a time. On S3 (moto on 127.0.0.1) a cold
archive costs at most three GETs to open and a few more for the blocks
its hits need; a damaged data block fails only the archive whose block a
query reads, which is reported unindexed while the rest answers.

Each test starts its own broker.
"""

from __future__ import annotations

import base64
import os
import struct

from kafka_clients import Record, confluent_consume, confluent_produce, create_topic
from moto_server import MotoServer
from ringlog_server import RinglogServer, wait_until
from test_search_archives import (
    ARCHIVE_NAME,
    TIERING_TIMEOUT_S,
    await_off_the_disk,
    check_exact,
    cold_search_gets,
    index_member,
    local_archive_files,
    search,
    start_on_s3,
)

# Segments of 1 MiB: each archive's index member is several times the
# 256 KiB the first read after the footer takes.
LARGE_SEGMENTS = {
    "segment.bytes": str(1 << 20),
    "segment.ms": "1000",
    "local.retention.ms": "0",
}
HEAD_PROBE_BYTES = 256 << 10
DATA_BLOCK_BYTES = 64 << 10
RECORDS = 12000
RARE_AT = (1500, 6000, 10500)
# The search index blob's header: magic, version, file count, hot range
# count, head bytes, data bytes, crc32c (shard/src/search/segment.rs).
BLOB_HEADER = struct.Struct("<8sHIIQQI")


def produce_large(server: RinglogServer, topic: str) -> tuple[list[Record], list[Record]]:
    """RECORDS records of ~420 bytes into partition 0, rare words at
    RARE_AT; returns the rare ones and all, as acknowledged."""
    records = [
        Record(
            0,
            f"k{i}".encode(),
            (f"zqhot{i} " if i in RARE_AT else "").encode()
            + f"noise {i} ".encode()
            + base64.b64encode(os.urandom(300)),
        )
        for i in range(RECORDS)
    ]
    delivered = confluent_produce(server.bootstrap, topic, records, "lz4", **{"batch.size": 65536, "linger.ms": 5})
    rare = [d for d in delivered if d.value.startswith(b"zqhot")]
    assert len(rare) == len(RARE_AT)
    return rare, delivered


def archive_of(server: RinglogServer, offset: int):
    for path in local_archive_files(server):
        first, last = (int(x) for x in ARCHIVE_NAME.fullmatch(path.name).groups())
        if first <= offset <= last:
            return path, first, last
    raise AssertionError(f"no archive holds offset {offset}")


def test_s3_archives_open_from_their_head_and_read_blocks_on_demand(server_factory):
    s3 = MotoServer(bucket="ringlog-hot")
    s3.start()
    try:
        prefix = "hot/e2e"
        server = start_on_s3(server_factory, s3, prefix)
        topic = "hot-s3"
        create_topic(server.bootstrap, topic, 1, LARGE_SEGMENTS)
        rare, _ = produce_large(server, topic)
        await_off_the_disk(server, topic, {0: [r.offset for r in rare]})
        answer = wait_until(
            lambda: (a := search(server, topic, "zqhot1500 OR zqhot6000 OR zqhot10500"))
            and len(a["hits"]) == len(rare)
            and a,
            TIERING_TIMEOUT_S,
            "the rare records searchable from the S3 archives",
        )
        check_exact(answer, rare, topic)

        expected = [r for r in rare if r.value.startswith(b"zqhot6000 ")]
        gets, opened = cold_search_gets(server, s3, f"{s3.bucket}/{prefix}", topic, "zqhot6000", expected)
        assert opened >= 3, opened
        print(f"cold search on S3: {gets} GETs for {opened} archives opened")
        # Opening: the footer, the member's first 256 KiB, and the rest of
        # the head when it is longer. The one archive with the hit then
        # reads its postings and its doc store block: more than two GETs
        # in all (a member read whole would need none), and few.
        assert 2 * opened < gets <= 3 * opened + 3, (gets, opened)
    finally:
        s3.stop()


def test_a_damaged_data_block_reports_its_archive_unindexed(server_factory):
    server = server_factory()
    topic = "hot-damaged"
    create_topic(server.bootstrap, topic, 1, LARGE_SEGMENTS)
    rare, delivered = produce_large(server, topic)
    await_off_the_disk(server, topic, {0: [r.offset for r in rare]})
    words = " OR ".join(f"zqhot{i}" for i in RARE_AT)
    wait_until(
        lambda: (a := search(server, topic, words)) and len(a["hits"]) == len(rare) and a,
        TIERING_TIMEOUT_S,
        "the rare records searchable from the archives",
    )
    server.stop()
    damaged, first, last = archive_of(server, rare[1].offset)
    at, length = index_member(damaged)
    assert length > 2 * HEAD_PROBE_BYTES, length
    data = bytearray(damaged.read_bytes())
    magic, version, _, _, head_bytes, data_bytes, _ = BLOB_HEADER.unpack_from(data, at)
    assert (magic, version) == (b"RLSEARCH", 2)
    data_at = at + BLOB_HEADER.size + head_bytes
    assert data_at + data_bytes == at + length
    # One byte of every data block: whatever the query reads is damaged,
    # the header and head (what opening reads) are not.
    for block in range(data_at, data_at + data_bytes, DATA_BLOCK_BYTES):
        data[block] ^= 0x5A
    damaged.write_bytes(bytes(data))

    server.start()
    answer = wait_until(
        lambda: (a := search(server, topic, words)) and a["unindexed"] and a,
        TIERING_TIMEOUT_S,
        "the damaged archive reported",
    )
    assert [(r["start"], r["end"]) for r in answer["unindexed"]] == [(first, last + 1)]
    assert sorted(h["offset"] for h in answer["hits"]) == [rare[0].offset, rare[2].offset]
    log = server.log_text()
    assert damaged.name in log and "data block" in log and "crc32c" in log
    # Fetch of those records is unaffected.
    consumed = confluent_consume(server.bootstrap, topic, [0])[0]
    assert [(r.offset, r.value) for r in consumed] == [(d.offset, d.value) for d in delivered]
