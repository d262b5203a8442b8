#!/usr/bin/env python3
"""The issue 16 benchmarks: a skewed workload before and after
`ringlog shard rebalance`, and the unavailability of partition moves
under load.

    python3 bench/scripts/shard_tuning.py [RINGLOG_BINARY] [--moves N]

1. Skew. A fresh `ringlog serve --shards 2 --http`; topic `hot` with 8
   partitions, every one moved onto shard 0 with the admin API. Then
   `ringlog bench produce` (acks=all, 1 KiB records, maximum rate, 8 s
   after a 2 s warm-up) runs before and after `POST /v1/shards/rebalance`
   (by load: the load windows hold the first run's traffic), back to back
   on the same server. Prints both throughputs and their ratio.
2. Moves. An idempotent confluent-kafka producer sends acks=all records
   to topic `moving` (4 partitions) at a steady rate while the script
   moves partitions back and forth N times (default 100), one at a time.
   Prints the p50, p99 and max of the unavailability each move reports,
   and checks that the producer saw no delivery error.

Data lives under target/benchmarks-shards/ (removed at the end).
"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "target" / "benchmarks-shards"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(http: str, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{http}{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=120) as resp:
        return json.loads(resp.read())


def placement(http: str) -> dict[tuple[str, int], int]:
    return {
        (p["topic"], p["partition"]): p["shard"]
        for p in call(http, "GET", "/v1/partitions")["partitions"]
    }


def move(http: str, topic: str, partition: int, to_shard: int) -> dict:
    body = {"topic": topic, "partition": partition, "to_shard": to_shard}
    return call(http, "POST", "/v1/partitions/move", body)


def bench_produce(binary: str, bootstrap: str, name: str) -> dict:
    report = OUT / f"{name}.json"
    subprocess.run(
        [binary, "bench", "produce", "--bootstrap", bootstrap, "--topic", "hot",
         "--partitions", "8", "--message-bytes", "1024", "--acks", "all",
         "--duration", "8s", "--warmup", "2s", "--quiet", "--json", str(report)],
        check=True, stdout=subprocess.DEVNULL,
    )
    return json.loads(report.read_text())


def skew(binary: str, bootstrap: str, http: str) -> None:
    subprocess.run(
        [binary, "topic", "create", "hot", "--partitions", "8", "--bootstrap", bootstrap],
        check=True, stdout=subprocess.DEVNULL,
    )
    for (topic, partition), shard in placement(http).items():
        if topic == "hot" and shard != 0:
            move(http, topic, partition, 0)
    before = bench_produce(binary, bootstrap, "skewed")
    rebalanced = call(http, "POST", "/v1/shards/rebalance", {"by": "load"})
    after = bench_produce(binary, bootstrap, "rebalanced")
    print(f"skewed (8 hot partitions on shard 0): {before['throughput_mb_s']:.1f} MB/s, "
          f"p99 {before['p99_ms']:.2f} ms")
    print(f"rebalance by load: {len(rebalanced['moved'])} moves, before "
          f"{[round(b, 1) for b in rebalanced['before']]} MB/s per shard, planned after "
          f"{[round(a, 1) for a in rebalanced['after']]}")
    print(f"rebalanced: {after['throughput_mb_s']:.1f} MB/s, p99 {after['p99_ms']:.2f} ms")
    print(f"throughput ratio rebalanced/skewed: {after['throughput_mb_s'] / before['throughput_mb_s']:.2f}")


def moves_under_load(bootstrap: str, http: str, count: int) -> None:
    import confluent_kafka
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("moving", num_partitions=4, replication_factor=1)])[
        "moving"
    ].result(30)
    producer = confluent_kafka.Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
        "linger.ms": 2,
    })
    errors, acked = [], [0]
    stop = threading.Event()

    def on_delivery(err, _msg):
        if err is None:
            acked[0] += 1
        else:
            errors.append(str(err))

    def run():
        i = 0
        while not stop.is_set():
            try:
                producer.produce("moving", value=b"x" * 1024, partition=i % 4,
                                 on_delivery=on_delivery)
                i += 1
            except BufferError:
                producer.poll(0.01)
            producer.poll(0)
            if i % 100 == 0:
                time.sleep(0.005)  # about 20,000 records/s: load, not saturation

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while acked[0] < 5000:
        time.sleep(0.05)
    unavailable = []
    for i in range(count):
        partition = i % 4
        at = placement(http)[("moving", partition)]
        unavailable.append(move(http, "moving", partition, 1 - at)["unavailable_ms"])
    stop.set()
    thread.join()
    producer.flush(60)
    unavailable.sort()
    p99 = unavailable[min(len(unavailable) - 1, int(len(unavailable) * 0.99))]
    print(f"{count} moves under load ({acked[0]} records acknowledged meanwhile): "
          f"unavailable p50 {statistics.median(unavailable):.2f} ms, p99 {p99:.2f} ms, "
          f"max {unavailable[-1]:.2f} ms; delivery errors: {len(errors)}")
    if errors:
        print(f"  e.g. {errors[:3]}")


def main() -> None:
    args = sys.argv[1:]
    count = 100
    if "--moves" in args:
        at = args.index("--moves")
        count = int(args[at + 1])
        del args[at:at + 2]
    binary = args[0] if args else str(REPO / "target" / "release" / "ringlog")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    kafka, http = free_port(), free_port()
    bootstrap, http_addr = f"127.0.0.1:{kafka}", f"127.0.0.1:{http}"
    log = open(OUT / "server.log", "wb")
    server = subprocess.Popen(
        [binary, "serve", "--data-dir", str(OUT / "data"), "--listen", bootstrap,
         "--shards", "2", "--http", http_addr, "--core-balancing", "off"],
        stdout=log, stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", kafka), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        skew(binary, bootstrap, http_addr)
        moves_under_load(bootstrap, http_addr, count)
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(OUT / "data", ignore_errors=True)


if __name__ == "__main__":
    main()
