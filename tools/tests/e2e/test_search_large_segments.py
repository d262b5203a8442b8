"""Search over the archive of a segment larger than one indexing chunk
(issue 14): the segment indexer builds an archive's index a chunk
(128 MiB of records) at a time, spilled to an unlinked scratch file in
the data directory, and streams it into the archive, so a segment of any
size (the default ``segment.bytes`` is 1 GiB) is archived with its index
instead of without one. Here a 272 MiB segment (past the 256 MiB that
used to be the most indexed, in RAM) is indexed as three chunks: rare
words in the first and the last are found exactly once the segment has
left the local disk, and nothing of it is reported unindexed.

Each test starts its own broker.
"""

from __future__ import annotations

import base64
import os

from kafka_clients import Record, confluent_produce, create_topic
from ringlog_server import wait_until
from test_search_archives import TIERING_TIMEOUT_S, await_off_the_disk, check_exact, inspect, local_archive_files, search

SEGMENT_BYTES = 272 << 20
VALUE_BYTES = 2048


def filler(i: int) -> bytes:
    # Base64 of random bytes: no codec shrinks it, and its words ('+' and
    # '/' split them) are all but unique.
    return f"filler {i} ".encode() + base64.b64encode(os.urandom(VALUE_BYTES * 3 // 4))


def test_a_segment_larger_than_a_chunk_is_archived_with_its_index(server_factory):
    server = server_factory()
    topic = "sl-large"
    create_topic(
        server.bootstrap,
        topic,
        1,
        {"segment.bytes": str(SEGMENT_BYTES), "local.retention.ms": "0"},
    )
    # 142,000 records of ~2 KiB: the first segment fills (272 MiB) and
    # seals; the rest stays in the active segment.
    count = 142_000
    rare_at = {10: "zqfirstchunk", 130_000: "zqlastchunk"}
    records = [
        Record(0, f"k{i}".encode(), f"{rare_at[i]} here ".encode() + filler(i) if i in rare_at else filler(i))
        for i in range(count)
    ]
    delivered = confluent_produce(
        server.bootstrap,
        topic,
        records,
        "none",
        **{"batch.size": 512 << 10, "queue.buffering.max.messages": 2 * count},
    )
    rare = [d for d in delivered if d.value.startswith(b"zq")]
    assert [r.offset for r in rare] == sorted(rare_at)
    await_off_the_disk(server, topic, {0: [r.offset for r in rare]})

    # Found through the archive's index: the tail (which held the newest
    # 256 MiB of the segment) forgets what the archive holds at the next
    # maintenance pass.
    for r in rare:
        word = r.value.split()[0].decode()
        answer = wait_until(
            lambda word=word: (a := search(server, topic, word)) and a["archives_searched"] == 1 and a,
            TIERING_TIMEOUT_S,
            f"{word} searched in the archive",
        )
        check_exact(answer, [r], topic)
    # The archive of the sealed segment (over 256 MiB of records) carries
    # its index.
    [archive] = local_archive_files(server)
    assert archive.stat().st_size > SEGMENT_BYTES
    shown = inspect(str(archive))
    assert "member search index" in shown, shown
    assert "archived without its index" not in server.log_text()
    # The scratch file had no name: nothing is left beside the data.
    assert not list(server.data_dir.glob(".search-scratch-*"))
