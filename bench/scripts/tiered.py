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
   Then the uploader's capacity on its own: topic `drain` gets N MiB with
   `remote.storage.enable=false`, the config is turned on live, and the
   MB/s archived until the lag is 0 and the local segments are gone. Its
   baseline, run just before: 4 concurrent `dd` copies of N/4 MiB each
   with direct I/O on the data disk (archiving reads each segment back and
   writes its archive, 4 partitions at once).
3. Produce latency with a backfill. `ringlog bench produce` at half the
   rate `local`'s produce reached, 10 s, alone, then with a concurrent
   `ringlog bench consume` of `archived` from the earliest offset, then
   (the control) with one of `local` from the earliest offset, twice
   over. Prints the p99s and their ratios to the run alone.
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


def disk_copy_mb_s(mib: int) -> float:
    """4 concurrent direct-I/O copies of mib/4 MiB each on the data disk."""
    sources = [OUT / f"copy-{i}" for i in range(4)]
    each = max(1, mib // 16)  # 4 MiB blocks per file
    for source in sources:
        subprocess.run(["dd", "if=/dev/zero", f"of={source}", "bs=4M", f"count={each}",
                        "oflag=direct"], check=True, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    copies = [subprocess.Popen(["dd", f"if={source}", f"of={source}.out", "bs=4M",
                                "iflag=direct", "oflag=direct"], stderr=subprocess.DEVNULL)
              for source in sources]
    assert all(copy.wait(600) == 0 for copy in copies)
    elapsed = time.monotonic() - started
    for source in sources:
        source.unlink()
        Path(f"{source}.out").unlink()
    return 4 * each * 4 * 1.048576 / elapsed


def drain(broker: Broker, mib: int) -> None:
    baseline = disk_copy_mb_s(mib)
    create(broker, "drain", "segment.bytes=16777216", "local.retention.ms=0",
           "remote.storage.enable=false")
    bench(broker, "produce", "produce-drain", "--topic", "drain", "--partitions", "4",
          "--records", str(mib * 1024))
    before = broker.metric("ringlog_archived_bytes_total")
    subprocess.run([broker.binary, "topic", "alter", "drain", "--bootstrap", broker.bootstrap,
                    "--set", "remote.storage.enable=true"], check=True,
                   stdout=subprocess.DEVNULL)
    started = time.monotonic()
    done = wait_archived(broker, "drain", 600)
    archived_mb = (broker.metric("ringlog_archived_bytes_total") - before) / 1e6
    rate = archived_mb / (done - started)
    print(f"upload capacity: {archived_mb:.0f} MB archived in {done - started:.2f} s "
          f"= {rate:.1f} MB/s; disk copy baseline (4 direct dd copies) {baseline:.1f} MB/s; "
          f"ratio {rate / baseline:.2f}")


def backfill(broker: Broker, max_records_s: float, mib: int) -> None:
    half = int(max_records_s / 2)

    def produce(name: str, backfill_topic: str | None) -> float:
        consumer = None
        if backfill_topic:
            consumer = subprocess.Popen(
                [broker.binary, "bench", "consume", "--bootstrap", broker.bootstrap, "--quiet",
                 "--topic", backfill_topic, "--records", str(mib * 1024)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        got = bench(broker, "produce", name, "--topic", "latency", "--partitions", "4",
                    "--rate", str(half), "--duration", "10s", "--warmup", "2s")
        if consumer:
            consumer.wait(600)
        return got["p99_ms"]

    create(broker, "latency", "segment.bytes=16777216", "remote.storage.enable=false")
    for round_ in range(2):
        alone = produce(f"half-alone-{round_}", None)
        archived = produce(f"half-archived-{round_}", "archived")
        local = produce(f"half-local-{round_}", "local")
        print(f"produce at {half} records/s: p99 {alone:.2f} ms alone, {archived:.2f} ms with "
              f"a backfill from archives (ratio {archived / alone:.2f}), {local:.2f} ms with a "
              f"backfill from local segments (ratio {local / alone:.2f})")


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
        drain(broker, mib)
        backfill(broker, max_rate, mib)
    finally:
        broker.stop()
    cold_fetch_from_s3(binary)
    shutil.rmtree(OUT, ignore_errors=True)


if __name__ == "__main__":
    main()
