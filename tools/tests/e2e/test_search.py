"""Record search over the tail (issue 14, first part): records produced by
confluent-kafka in every codec are found by `GET /search` and by
`ringlog search` within a second of their acknowledgement, with the exact
partition, offset, key and headers; JSON members, partitions, time ranges,
newest-first order and limits narrow the hits; bad queries and unknown
topics get 400 and 404; `ringlog.search.enable` switches a topic off and
on live; records archived while a topic was not searchable are reported
as unindexed (archives with indexes: test_search_archives.py).

One server serves the module; every test uses its own topics.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from kafka_clients import CLIENT_TIMEOUT_S, Record, admin, confluent_produce, confluent_producer, create_topic
from ringlog_server import RinglogServer, ringlog_bin, wait_until

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# A record is searchable within this long of its acknowledgement.
FRESHNESS_S = 1.0


@pytest.fixture
def server(module_server) -> RinglogServer:
    return module_server


def search(server: RinglogServer, topic: str, q: str, **params) -> tuple[int, dict]:
    query = urllib.parse.urlencode({"topic": topic, "q": q, **params})
    url = f"http://{server.http_addr}/search?{query}"
    try:
        with urllib.request.urlopen(url, timeout=CLIENT_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def hits(server: RinglogServer, topic: str, q: str, **params) -> list[dict]:
    status, answer = search(server, topic, q, **params)
    assert status == 200, answer
    return answer["hits"]


def filler(tag: str, partitions: int, per_partition: int) -> list[Record]:
    return [
        Record(p, f"k{i}".encode(), f"plain filler {tag} record {i} of partition {p}".encode())
        for p in range(partitions)
        for i in range(per_partition)
    ]


def headers_of(hit: dict) -> tuple:
    return tuple((h["key"], h["value"].encode()) for h in hit["headers"])


@pytest.mark.parametrize("codec", CODECS)
def test_rare_words_are_found_exactly_within_a_second_in_every_codec(server, codec):
    topic = f"search-{codec}"
    create_topic(server.bootstrap, topic, 2)
    rare = {
        # (partition, index in that partition's batch) -> record
        (0, 3): Record(0, b"order-8812", f"shipped zq{codec}alpha to the dock".encode(), (("trace", b"t-1"),)),
        (1, 7): Record(1, None, f"zq{codec}alpha returned".encode(), (("trace", b"t-2"), ("x", b"y"))),
        (1, 9): Record(1, b"k-beta", f"only zq{codec}beta here".encode()),
    }
    records = []
    for p in range(2):
        for i in range(20):
            records.append(rare.get((p, i), Record(p, f"k{i}".encode(), f"filler {i}".encode())))
    delivered = confluent_produce(server.bootstrap, topic, records, codec=codec)
    acknowledged = time.monotonic()
    expected = [d for d in delivered if b"zq" in d.value]

    found = wait_until(
        lambda: (h := hits(server, topic, f"zq{codec}alpha")) and len(h) == 2 and h,
        FRESHNESS_S * 5,
        f"zq{codec}alpha searchable",
        interval=0.02,
    )
    took = time.monotonic() - acknowledged
    assert took < FRESHNESS_S, f"searchable {took:.3f} s after the acknowledgement"
    alpha = {(d.partition, d.offset): d for d in expected if f"zq{codec}alpha".encode() in d.value}
    assert {(h["partition"], h["offset"]) for h in found} == set(alpha)
    for h in found:
        want = alpha[(h["partition"], h["offset"])]
        assert h["topic"] == topic
        assert h["value"].encode() == want.value and not h["value_base64"]
        assert (h["key"].encode() if h["key"] is not None else None) == want.key
        assert headers_of(h) == want.headers
    beta = hits(server, topic, f"zq{codec}beta")
    assert [(h["partition"], h["offset"], h["key"]) for h in beta] == [
        (d.partition, d.offset, "k-beta") for d in expected if b"beta" in d.value
    ]
    # Keys and headers are searchable too.
    assert [h["offset"] for h in hits(server, topic, 'key:"order-8812"')] == [
        d.offset for d in expected if d.key == b"order-8812"
    ]
    assert {h["offset"] for h in hits(server, topic, "headers:t-2")} == {
        d.offset for d in expected if ("trace", b"t-2") in d.headers
    }


def test_json_members_partitions_time_ranges_order_and_limits(server):
    topic = "search-json"
    create_topic(server.bootstrap, topic, 2)
    records = [
        Record(i % 2, None, json.dumps({"user": user, "n": i, "note": "common"}).encode())
        for i, user in enumerate(["alice", "bob", "alice", "carol", "alice", "bob"])
    ]
    # Each record gets its own, later, timestamp (CreateTime, set here).
    producer = confluent_producer(server.bootstrap)
    base_ms = int(time.time() * 1000) - len(records)
    delivered = []

    def report(record):
        def on_delivery(err, msg):
            assert err is None, err
            delivered.append(replace(record, offset=msg.offset()))

        return on_delivery

    for i, record in enumerate(records):
        producer.produce(topic, value=record.value, partition=record.partition,
                         timestamp=base_ms + i, on_delivery=report(record))
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    assert len(delivered) == len(records)
    alices = {(d.partition, d.offset) for d in delivered if b'"alice"' in d.value}
    found = wait_until(
        lambda: (h := hits(server, topic, "value.user:alice")) and len(h) == 3 and h,
        10,
        "alice's records searchable",
    )
    assert {(h["partition"], h["offset"]) for h in found} == alices

    every = hits(server, topic, "common")
    assert len(every) == len(records)
    newest_first = [(h["timestamp"], h["offset"]) for h in every]
    assert newest_first == sorted(newest_first, reverse=True)
    assert hits(server, topic, "common", limit=2) == every[:2]
    assert {h["partition"] for h in hits(server, topic, "common", partition=1)} == {1}
    assert len(hits(server, topic, "common", partition=1)) == 3

    middle = sorted(h["timestamp"] for h in every)[len(every) // 2]
    later = hits(server, topic, "common", from_ts=middle)
    earlier = hits(server, topic, "common", to_ts=middle)
    assert later and all(h["timestamp"] >= middle for h in later)
    assert earlier and all(h["timestamp"] < middle for h in earlier)
    assert len(later) + len(earlier) == len(every)

    scored = hits(server, topic, "alice common", order="score")
    assert scored[0]["score"] is not None
    assert scored[0]["score"] >= scored[-1]["score"]


def test_bad_queries_and_unknown_topics_are_refused(server):
    create_topic(server.bootstrap, "search-bad", 1)
    status, answer = search(server, "search-bad", "value:(unclosed")
    assert status == 400 and "bad query" in answer["error"], answer
    status, answer = search(server, "search-missing", "x")
    assert status == 404 and "search-missing" in answer["error"], answer
    status, answer = search(server, "search-bad", "x", order="oldest")
    assert status == 400 and "order" in answer["error"], answer


def set_search(server: RinglogServer, topic: str, on: bool) -> None:
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("ringlog.search.enable", "true" if on else "false",
                        incremental_operation=AlterConfigOpType.SET)
        ],
    )
    futures = admin(server.bootstrap).incremental_alter_configs([resource])
    futures[resource].result(timeout=CLIENT_TIMEOUT_S)


def test_search_enable_switches_a_topic_live(server):
    create_topic(server.bootstrap, "search-off", 1, {"ringlog.search.enable": "false"})
    create_topic(server.bootstrap, "search-on", 1)
    confluent_produce(server.bootstrap, "search-off", [Record(0, None, b"zqhidden one")])
    confluent_produce(server.bootstrap, "search-on", [Record(0, None, b"zqshown one")])
    # Both batches went through the same indexer queue: once the second is
    # searchable, the first would be too had it been indexed.
    wait_until(lambda: hits(server, "search-on", "zqshown"), 10, "zqshown searchable")
    assert hits(server, "search-off", "zqhidden") == []
    # Not indexed, and said so (not an empty answer standing for "none").
    wait_until(
        lambda: any(r["start"] <= 0 < r["end"] for r in search(server, "search-off", "zqhidden")[1]["unindexed"]),
        10,
        "the unsearchable record reported unindexed",
    )

    set_search(server, "search-off", True)
    [second] = confluent_produce(server.bootstrap, "search-off", [Record(0, None, b"zqhidden two")])
    found = wait_until(lambda: hits(server, "search-off", "zqhidden"), 10, "zqhidden two searchable")
    assert [h["offset"] for h in found] == [second.offset]


def test_the_cli_prints_a_table_and_json(server):
    topic = "search-cli"
    create_topic(server.bootstrap, topic, 1)
    [record] = confluent_produce(server.bootstrap, topic, [Record(0, b"k1", b"zqcli order 8812")])
    wait_until(lambda: hits(server, topic, "zqcli"), 10, "zqcli searchable")
    base = [str(ringlog_bin()), "search", "--http", server.http_addr, "--topic", topic]
    table = subprocess.run(base + ["zqcli"], capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["PARTITION", "OFFSET", "TIMESTAMP", "KEY", "VALUE"]
    assert lines[1].split()[:2] == ["0", str(record.offset)] and "zqcli order 8812" in lines[1]
    assert lines[2].startswith("1 hits in ")
    as_json = subprocess.run(base + ["zqcli", "--json"], capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    assert [h["offset"] for h in json.loads(as_json.stdout)["hits"]] == [record.offset]
    bad = subprocess.run(base + ["value:(("], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "bad query" in bad.stderr, bad.stderr


def test_records_archived_while_not_searchable_are_reported_unindexed(server):
    topic = "search-archived"
    # Small segments, so sealed ones are archived while the test runs; the
    # topic is not searchable, so its archives carry no index.
    create_topic(server.bootstrap, topic, 1, {"segment.bytes": "16384", "ringlog.search.enable": "false"})
    first = confluent_produce(server.bootstrap, topic, [Record(0, None, b"zqearly first")])
    confluent_produce(server.bootstrap, topic, filler("arch", 1, 400), **{"batch.size": 4096})

    def early_unindexed():
        status, answer = search(server, topic, "zqearly")
        assert status == 200, answer
        covered = any(
            r["partition"] == 0 and r["start"] <= first[0].offset < r["end"]
            for r in answer["unindexed"]
        )
        return covered and answer

    answer = wait_until(early_unindexed, 60, "the first segment archived and reported unindexed")
    assert answer["hits"] == []
    assert answer["archives_searched"] == 0
    set_search(server, topic, True)
    [last] = confluent_produce(server.bootstrap, topic, [Record(0, None, b"zqlate last")])
    found = wait_until(lambda: hits(server, topic, "zqlate"), 10, "zqlate searchable")
    assert [h["offset"] for h in found] == [last.offset]
    answer = search(server, topic, "zqearly")[1]
    assert answer["hits"] == [] and answer["archives_searched"] == 0
    assert any(r["start"] <= first[0].offset < r["end"] for r in answer["unindexed"])
