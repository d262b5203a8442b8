#!/usr/bin/env python3
"""The issue 13 benchmarks: tiered storage against the same broker, in one
run on one machine.

    python3 bench/scripts/tiered.py [RINGLOG_BINARY] [--mib N] [--read-mb-s N]

`--read-mb-s` passes `--archive-read-mb-s` to the first broker (the
backfill's read rate per shard; the broker's default otherwise).

1. Consumption from archives. One `ringlog serve --shards 2` with the
   default local-directory archive. Topic `archived` (4 partitions,
   16 MiB segments, local.retention.ms=0) and topic `local` (the same,
   remote.storage.enable=false) each get N MiB (default 1024) from
   `ringlog bench produce` (1 KiB records, acks=all, maximum rate). Once
   every sealed segment of `archived` is archived and gone from the local
   disk, `ringlog bench consume` reads both from the earliest offset,
   alternating, twice each. Prints MB/s and the archived/local ratio.
2. Upload throughput. From the produce of `archived`: its MB/s, and the
   MB/s archived from the first record until the archive lag reached 0.
3. Produce latency with a backfill. `ringlog bench produce` at half the
   rate `local`'s produce reached, 10 s, alone and then with a concurrent
   `ringlog bench consume` of `archived` from the earliest offset. Prints
   both p99s and their ratio.
4. Cold first fetch from S3. A second broker with `--archive s3://...`
   on a moto server (tools/tests/e2e/moto_server.py); a topic of 1 MiB
   segments, 64 MiB produced, archived and gone locally; the broker
   restarted (empty chunk cache); the time of one Fetch of offset 0, and
   of the next one (from the cache).

Data lives under target/benchmarks-tiered/ and is removed at the end.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "tests" / "e2e"))
OUT = REPO / "target" / "benchmarks-tiered"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, binary: str, name: str, *args: str, env: dict | None = None):
        self.binary, self.name, self.args, self.env = binary, name, args, env
        self.data = OUT / name
        self.proc = None

    def start(self) -> "Broker":
        self.kafka, self.http = free_port(), free_port()
        log = open(OUT / f"{self.name}.log", "ab")
        env = None
        if self.env:
            import os

            env = dict(os.environ, **self.env)
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", str(self.data), "--listen", self.bootstrap,
             "--shards", "2", "--http", f"127.0.0.1:{self.http}", *self.args],
            stdout=log, stderr=log, env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.kafka), timeout=0.5).close()
                return self
            except OSError:
                assert time.monotonic() < deadline and self.proc.poll() is None, "no start"
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka}"

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics", timeout=10) as r:
            text = r.read().decode()
        return sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith(name + "{") or line.startswith(name + " ")
        )


def create(broker: Broker, topic: str, *configs: str) -> None:
    args = [broker.binary, "topic", "create", topic, "--partitions", "4",
            "--bootstrap", broker.bootstrap]
    for config in configs:
        args += ["--config", config]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def bench(broker: Broker, kind: str, name: str, *args: str) -> dict:
    report = OUT / f"{name}.json"
    subprocess.run(
        [broker.binary, "bench", kind, "--bootstrap", broker.bootstrap, "--quiet",
         "--json", str(report), *args],
        check=True, stdout=subprocess.DEVNULL,
    )
    return json.loads(report.read_text())


def wait_archived(broker: Broker, topic: str, timeout: float) -> float:
    """Waits until nothing is left to archive and only active segments
    stay local; returns when that happened (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        lag = broker.metric("ringlog_archive_upload_lag_segments")
        local = [
            path for p in range(4)
            for path in (broker.data / "topics" / topic / str(p)).glob("*.log")
        ]
        if lag == 0 and len(local) <= 4:
            return time.monotonic()
        assert time.monotonic() < deadline, f"lag {lag}, local segments {len(local)}"
        time.sleep(0.1)


def consume_and_upload(binary: str, mib: int, serve_args: list[str]) -> tuple[Broker, float]:
    broker = Broker(binary, "local-archive", *serve_args).start()
    records = mib * 1024
    create(broker, "archived", "segment.bytes=16777216", "local.retention.ms=0")
    create(broker, "local", "segment.bytes=16777216", "remote.storage.enable=false")
    started = time.monotonic()
    produced = bench(broker, "produce", "produce-archived", "--topic", "archived",
                     "--partitions", "4", "--records", str(records))
    done = wait_archived(broker, "archived", 600)
    archived_mb = broker.metric("ringlog_archived_bytes_total") / 1e6
    print(f"produce to archived: {produced['throughput_mb_s']:.1f} MB/s; "
          f"{archived_mb:.0f} MB archived {done - started:.1f} s after the first record: "
          f"{archived_mb / (done - started):.1f} MB/s end to end")
    local = bench(broker, "produce", "produce-local", "--topic", "local",
                  "--partitions", "4", "--records", str(records))
    print(f"produce to local: {local['throughput_mb_s']:.1f} MB/s, "
          f"{local['throughput_records_s']:.0f} records/s")
    rates = {"local": [], "archived": []}
    for round_ in range(2):
        for topic in ("local", "archived"):
            got = bench(broker, "consume", f"consume-{topic}-{round_}", "--topic", topic,
                        "--records", str(records))
            rates[topic].append(got["throughput_mb_s"])
    best = {topic: max(values) for topic, values in rates.items()}
    print(f"consume from earliest: local {rates['local']} MB/s, archived {rates['archived']} MB/s; "
          f"ratio archived/local (best of 2) {best['archived'] / best['local']:.2f}")
    return broker, local["throughput_records_s"]


def backfill(broker: Broker, max_records_s: float, mib: int) -> None:
    half = int(max_records_s / 2)
    alone = bench(broker, "produce", "half-alone", "--topic", "local", "--partitions", "4",
                  "--rate", str(half), "--duration", "10s", "--warmup", "2s")
    consumer = subprocess.Popen(
        [broker.binary, "bench", "consume", "--bootstrap", broker.bootstrap, "--quiet",
         "--topic", "archived", "--records", str(mib * 1024)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    loaded = bench(broker, "produce", "half-backfill", "--topic", "local", "--partitions", "4",
                   "--rate", str(half), "--duration", "10s", "--warmup", "2s")
    consumer.wait(600)
    print(f"produce at {half} records/s: p99 {alone['p99_ms']:.2f} ms alone, "
          f"{loaded['p99_ms']:.2f} ms with a backfill consumer; ratio "
          f"{loaded['p99_ms'] / alone['p99_ms']:.2f}")


def cold_fetch_from_s3(binary: str) -> None:
    from kafka_wire import fetch_v4
    from moto_server import MotoServer

    moto = MotoServer(bucket="bench-archive")
    moto.start()
    try:
        broker = Broker(binary, "s3", "--archive", "s3://bench-archive/ringlog",
                        "--s3-endpoint", moto.endpoint, env=moto.env()).start()
        create(broker, "cold", "segment.bytes=1048576", "local.retention.ms=0")
        bench(broker, "produce", "produce-cold", "--topic", "cold", "--partitions", "4",
              "--records", str(64 * 1024))
        wait_archived(broker, "cold", 300)
        broker.stop()
        broker.start()
        addr = ("127.0.0.1", broker.kafka)
        timings = []
        for _ in range(2):
            started = time.monotonic()
            part = fetch_v4(addr, "cold", 0, 0, max_wait_ms=0)
            timings.append((time.monotonic() - started) * 1e3)
            assert part.error_code == 0 and part.records, part
        print(f"S3 (moto on 127.0.0.1): first Fetch of offset 0 after a restart "
              f"{timings[0]:.1f} ms (cold chunk cache), again {timings[1]:.1f} ms")
        broker.stop()
    finally:
        moto.stop()


def main() -> None:
    args = sys.argv[1:]
    mib = 1024
    if "--mib" in args:
        at = args.index("--mib")
        mib = int(args[at + 1])
        del args[at:at + 2]
    serve_args = []
    if "--read-mb-s" in args:
        at = args.index("--read-mb-s")
        serve_args = ["--archive-read-mb-s", args[at + 1]]
        del args[at:at + 2]
    binary = args[0] if args else str(REPO / "target" / "release" / "ringlog")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    broker, max_rate = consume_and_upload(binary, mib, serve_args)
    try:
        backfill(broker, max_rate, mib)
    finally:
        broker.stop()
    cold_fetch_from_s3(binary)
    shutil.rmtree(OUT, ignore_errors=True)


if __name__ == "__main__":
    main()
