"""`ringlog bench` against a real `ringlog serve`: its counters agree with
the broker's /metrics, a broker that stops answering makes it fail fast
instead of hanging, and a fixed-rate run charges a broker stall to every
record it delayed (no coordinated omission).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition

from group_helpers import describe
from kafka_clients import CLIENT_TIMEOUT_S, admin
from ringlog_server import RinglogServer, ringlog_bin, wait_until

# Every bench run is bounded: a hung bench fails the test, not the suite.
BENCH_TIMEOUT_S = 120


def bench(server: RinglogServer, out: Path, *args: str, timeout: float = BENCH_TIMEOUT_S):
    """Runs ``ringlog bench <args> --json <out>`` to completion; returns
    (exit code, parsed JSON report, stderr)."""
    cmd = [str(ringlog_bin()), "bench", *args, "--bootstrap", server.bootstrap, "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    report = json.loads(out.read_text()) if out.exists() else None
    return proc.returncode, report, proc.stderr + proc.stdout


def start_bench(server: RinglogServer, out: Path, *args: str) -> subprocess.Popen:
    cmd = [str(ringlog_bin()), "bench", *args, "--bootstrap", server.bootstrap, "--json", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def produced(server: RinglogServer) -> tuple[float, float]:
    m = server.metrics()
    return (
        sum(m.per_shard("ringlog_produce_records_total", server.shards)),
        sum(m.per_shard("ringlog_produce_bytes_total", server.shards)),
    )


def test_bench_counts_agree_with_the_broker_metrics(server, tmp_path):
    records_before, bytes_before = produced(server)
    runs = [
        ("plain", ["--records", "30000", "--connections", "2"]),
        (
            "keyed-zstd",
            ["--records", "20000", "--key-cardinality", "1000", "--compression", "zstd",
             "--message-bytes", "300", "--acks", "1"],
        ),
    ]
    total_records = total_bytes = 0
    for name, extra in runs:
        code, report, output = bench(
            server, tmp_path / f"{name}.json",
            "produce", "--topic", "counted", "--partitions", "4", "--quiet", *extra,
        )
        assert code == 0, output
        assert report["errors"] == 0, output
        assert report["warmup_records"] == 0
        assert report["verified"]["ok"], report["verified"]
        assert report["verified"]["acknowledged"] == report["records"]
        total_records += report["records"]
        total_bytes += report["bytes"]
    assert total_records == 50000

    def grown():
        r, b = produced(server)
        return (r - records_before, b - bytes_before) if r - records_before >= total_records else None

    records_seen, bytes_seen = wait_until(grown, 10, "the broker to count every produced record")
    assert abs(records_seen - total_records) <= 0.01 * total_records, (records_seen, total_records)
    assert abs(bytes_seen - total_bytes) <= 0.01 * total_bytes, (bytes_seen, total_bytes)


def test_bench_fails_fast_when_the_broker_stops_answering(server, tmp_path):
    out = tmp_path / "stalled.json"
    run = start_bench(
        server, out,
        "produce", "--topic", "stall", "--partitions", "2", "--rate", "2000",
        "--duration", "60s", "--request-timeout-ms", "1000",
    )
    try:
        wait_until(lambda: produced(server)[0] >= 1000, 30, "the bench to produce")
        server.pause()
        try:
            # 60 s of schedule, but the broker is gone: the bench must give
            # up after its 1 s request timeout, not run on or hang.
            output, _ = run.communicate(timeout=20)
        finally:
            server.resume()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, output
    assert "timed out" in output, output
    report = json.loads(out.read_text())
    assert report["errors"] > 0, report
    assert any("timed out" in kind for kind in report["error_kinds"]), report["error_kinds"]
    assert report["records"] > 0, "it measured the healthy part of the run"


def test_bench_charges_a_broker_stall_to_every_delayed_record(server, tmp_path):
    args = ("produce", "--topic", "co", "--partitions", "2", "--rate", "5000",
            "--duration", "6s", "--linger-ms", "1")
    code, calm, output = bench(server, tmp_path / "calm.json", *args)
    assert code == 0, output

    run = start_bench(server, tmp_path / "stall.json", *args)
    try:
        before = produced(server)[0]
        wait_until(lambda: produced(server)[0] >= before + 10000, 30, "two seconds of records")
        server.pause()
        time.sleep(0.2)  # the injected stall itself
        server.resume()
        output, _ = run.communicate(timeout=BENCH_TIMEOUT_S)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, output
    stalled = json.loads((tmp_path / "stall.json").read_text())
    assert stalled["records"] == calm["records"] == 30000
    # ~1,000 records (200 ms at 5,000/s) were due during the stall; each
    # waited from its due time to the end of the stall, so the slowest
    # waited ~200 ms and the top 1% of 30,000 (300 records) at least
    # ~140 ms. A closed-loop generator would have recorded only the few
    # requests in flight.
    assert stalled["max_ms"] >= 190, stalled
    assert stalled["p999_ms"] >= 150, stalled
    assert stalled["p99_ms"] >= 100, stalled
    assert calm["p99_ms"] * 2 < stalled["p99_ms"], (calm["p99_ms"], stalled["p99_ms"])


def test_bench_consumes_as_a_group_and_commits_what_it_read(server, tmp_path):
    code, _, output = bench(
        server, tmp_path / "produce.json",
        "produce", "--topic", "grouped", "--partitions", "4", "--records", "20000", "--quiet",
    )
    assert code == 0, output
    code, report, output = bench(
        server, tmp_path / "group.json",
        "consume", "--topic", "grouped", "--group", "bench-group", "--connections", "2",
        "--until-end", "--quiet",
    )
    assert code == 0, output
    assert report["records"] + report["warmup_records"] == 20000, output
    assert report["errors"] == 0, output
    # Each record was read once, and the group committed where it stopped.
    request = ConsumerGroupTopicPartitions(
        "bench-group", [TopicPartition("grouped", p) for p in range(4)]
    )
    offsets = admin(server.bootstrap).list_consumer_group_offsets([request])
    result = offsets["bench-group"].result(CLIENT_TIMEOUT_S)
    committed = {tp.partition: tp.offset for tp in result.topic_partitions}
    assert sum(committed.values()) == 20000, committed
    assert all(offset > 0 for offset in committed.values()), committed
    # The same group again has nothing left to read.
    code, again, output = bench(
        server, tmp_path / "again.json",
        "consume", "--topic", "grouped", "--group", "bench-group", "--until-end", "--quiet",
    )
    assert code == 0, output
    assert again["records"] + again["warmup_records"] == 0, output


def group_committed(server: RinglogServer, group: str, topic: str, partitions: int) -> dict[int, int]:
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    result = admin(server.bootstrap).list_consumer_group_offsets([request])[group]
    return {tp.partition: tp.offset for tp in result.result(CLIENT_TIMEOUT_S).topic_partitions}


def test_bench_group_members_rebalance_without_losing_or_repeating_records(server, tmp_path):
    # The first half is there before anyone reads; the second half is
    # produced only once the second member holds partitions, so it always
    # has records to read, however fast the first member is. On a slow
    # host the second joins while the first is still reading the first half.
    half = 50_000

    def produce(name: str) -> None:
        code, _, output = bench(
            server, tmp_path / f"{name}.json",
            "produce", "--topic", "shared", "--partitions", "4", "--records", str(half),
            "--batch-bytes", "4KiB", "--quiet",
        )
        assert code == 0, output

    def committed() -> int:
        return sum(o for o in group_committed(server, "shared-group", "shared", 4).values() if o > 0)

    produce("first-half")
    # One 4 KiB batch per Fetch, so reading takes a while; each member runs
    # until it is interrupted (its duration is only a bound).
    member = (
        "consume", "--topic", "shared", "--group", "shared-group", "--duration", f"{BENCH_TIMEOUT_S}s",
        "--quiet", "--partition-max-bytes", "4KiB", "--fetch-max-bytes", "4KiB",
    )
    members = [start_bench(server, tmp_path / "first.json", *member, "--connections", "2")]
    try:
        wait_until(committed, 30, "the first member to commit progress")
        members.append(start_bench(server, tmp_path / "second.json", *member))
        wait_until(
            lambda: (g := describe(server, "shared-group")).state == ConsumerGroupState.STABLE
            and len(g.members) == 2
            and all(m.assignment.topic_partitions for m in g.members),
            30, "both members to hold partitions",
        )
        produce("second-half")
        wait_until(lambda: committed() == 2 * half, 60, "the group to commit every record")
        outputs = []
        for proc in members:
            proc.send_signal(signal.SIGINT)
            outputs.append(proc.communicate(timeout=BENCH_TIMEOUT_S)[0])
    finally:
        for proc in members:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, output in zip(members, outputs):
        assert proc.returncode == 0, output
    reports = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("first", "second")]
    read = [r["records"] + r["warmup_records"] for r in reports]
    assert read[1] > 0, f"the second member read nothing: {read}"
    # Rebalanced twice or more (join, leaves), still each record exactly once.
    assert sum(read) == 2 * half, read
    assert sum(group_committed(server, "shared-group", "shared", 4).values()) == 2 * half
