#!/usr/bin/env python3
"""Search freshness (issue 14): the time from a record's acknowledgement
to the first `GET /search` that finds it.

    python3 bench/scripts/search_freshness.py [RINGLOG_BINARY] [--records N]

One `ringlog serve --shards 2` (search on by default). N times (default
200), confluent-kafka produces one record carrying a word of its own
(acks=all, flushed: the acknowledgement), then `GET /search` for that word
is polled every 5 ms until it answers the record's offset. Run idle, then
again while `ringlog bench produce` writes another topic at
--load-records-s (default 100000) records/s. Prints p50, p90, p99 and max
per phase. Then, while `bench produce` writes at its maximum rate (the
shards keep every core busy, so the `SCHED_IDLE` indexers get next to no
CPU), --busy-queries (default 30) searches of a word committed before
the load: their latency, and how many failed (HTTP 503 when a shard's
search does not answer in time). Data lives under
target/benchmarks-search/ and is removed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "scripts"))
sys.path.insert(0, str(REPO / "tools" / "tests" / "e2e"))

import tiered  # noqa: E402  (its Broker, with OUT moved below)
from kafka_clients import Record, confluent_producer  # noqa: E402

OUT = REPO / "target" / "benchmarks-search"
tiered.OUT = OUT
POLL_INTERVAL_S = 0.005
FIND_TIMEOUT_S = 30.0


def found(broker: tiered.Broker, topic: str, word: str) -> list[int]:
    query = urllib.parse.urlencode({"topic": topic, "q": word})
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http}/search?{query}", timeout=30) as r:
        return [hit["offset"] for hit in json.loads(r.read())["hits"]]


def freshness(broker: tiered.Broker, topic: str, records: int, tag: str) -> list[float]:
    producer = confluent_producer(broker.bootstrap, **{"linger.ms": 0})
    delays = []
    for i in range(records):
        word = f"zq{tag}w{i}"
        offsets = []
        producer.produce(topic, value=f"record {word} of the run".encode(), partition=0,
                         on_delivery=lambda err, msg: offsets.append(msg.offset()))
        assert producer.flush(30) == 0 and offsets, "not acknowledged"
        acknowledged = time.monotonic()
        while found(broker, topic, word) != offsets:
            assert time.monotonic() - acknowledged < FIND_TIMEOUT_S, f"{word} never found"
            time.sleep(POLL_INTERVAL_S)
        delays.append((time.monotonic() - acknowledged) * 1e3)
    return delays


def busy_queries(broker: tiered.Broker, topic: str, word: str, queries: int) -> tuple[list[float], int]:
    """Latencies (ms) of the searches of ``word`` that answered its one
    record, and how many did not answer."""
    latencies, failed = [], 0
    for _ in range(queries):
        start = time.monotonic()
        try:
            assert len(found(broker, topic, word)) == 1
            latencies.append((time.monotonic() - start) * 1e3)
        except urllib.error.HTTPError as e:
            assert e.code == 503, e
            failed += 1
    return latencies, failed


def start_load(binary: str, broker: tiered.Broker, rate: list[str]) -> subprocess.Popen:
    """`bench produce` to topic "load" (``rate``: ``--rate N``, or none
    for the maximum), once the broker has taken records of it."""
    load = subprocess.Popen(
        [binary, "bench", "produce", "--bootstrap", broker.bootstrap, "--topic", "load",
         "--partitions", "4", *rate, "--duration", "600s", "--quiet"],
        stdout=subprocess.DEVNULL,
    )
    before = broker.metric("ringlog_produce_records_total")
    deadline = time.monotonic() + 30
    while broker.metric("ringlog_produce_records_total") <= before + 10_000:
        assert time.monotonic() < deadline and load.poll() is None, "no load arrived"
        time.sleep(POLL_INTERVAL_S)
    return load


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``ordered`` (sorted, not empty)."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, delays: list[float]) -> str:
    s = sorted(delays)
    return (f"{name}: {len(s)} records, acknowledgement to searchable p50 {percentile(s, 0.5):.0f} ms, "
            f"p90 {percentile(s, 0.9):.0f} ms, p99 {percentile(s, 0.99):.0f} ms, max {s[-1]:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("binary", nargs="?", default=str(REPO / "target" / "release" / "ringlog"))
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--load-records-s", type=int, default=100_000)
    parser.add_argument("--busy-queries", type=int, default=30)
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    broker = tiered.Broker(args.binary, "search").start()
    try:
        tiered.create(broker, "fresh")
        tiered.create(broker, "load")
        print(summary("idle", freshness(broker, "fresh", args.records, "idle")), flush=True)
        load = start_load(args.binary, broker, ["--rate", str(args.load_records_s)])
        try:
            print(summary(f"under {args.load_records_s} records/s of produce",
                          freshness(broker, "fresh", args.records, "load")), flush=True)
        finally:
            load.terminate()
            load.wait(30)
        load = start_load(args.binary, broker, [])
        try:
            latencies, failed = busy_queries(broker, "fresh", "zqidlew0", args.busy_queries)
        finally:
            load.terminate()
            load.wait(30)
        s = sorted(latencies) or [float("nan")]
        print(f"under maximum-rate produce: {args.busy_queries} searches, {failed} failed (503); "
              f"answered p50 {percentile(s, 0.5):.0f} ms, p90 {percentile(s, 0.9):.0f} ms, "
              f"p99 {percentile(s, 0.99):.0f} ms, max {s[-1]:.0f} ms", flush=True)
    finally:
        broker.stop()
        shutil.rmtree(OUT, ignore_errors=True)


if __name__ == "__main__":
    main()
