#!/usr/bin/env python3
"""Independent cross-check of `ringlog bench produce`: the same workload
through librdkafka (confluent-kafka), timed from the first produce() to the
last delivery report.

    python3 bench/scripts/librdkafka_produce.py --bootstrap 127.0.0.1:9092 \\
        --topic xcheck --records 2000000 --message-bytes 1024

Prints records/s, MB/s of RecordBatch-equivalent value bytes (values only:
librdkafka does not expose batch bytes) and the delivery-report latency
percentiles (closed loop, from produce() to the report). Exits 1 if any
record failed. The topic must exist (create it with `ringlog topic create`
or a `ringlog bench produce` run); use as many partitions as the bench run.
"""

from __future__ import annotations

import argparse
import sys
import time

from confluent_kafka import Producer


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--topic", required=True)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--message-bytes", type=int, default=1024)
    p.add_argument("--batch-bytes", type=int, default=256 * 1024)
    p.add_argument("--linger-ms", type=int, default=5)
    p.add_argument("--max-in-flight", type=int, default=16)
    args = p.parse_args()

    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "acks": "all",
            "linger.ms": args.linger_ms,
            "batch.size": args.batch_bytes,
            "max.in.flight.requests.per.connection": args.max_in_flight,
            "queue.buffering.max.kbytes": 64 * 1024,
            "queue.buffering.max.messages": 1_000_000,
            "enable.idempotence": False,
        }
    )
    value = bytes(65 + i % 26 for i in range(args.message_bytes))
    latencies: list[float] = []
    failed = 0

    def report(err, _msg, sent=None):
        nonlocal failed
        if err is not None:
            failed += 1
        else:
            latencies.append(time.perf_counter() - sent)

    start = time.perf_counter()
    for _ in range(args.records):
        sent = time.perf_counter()
        while True:
            try:
                producer.produce(
                    args.topic, value, on_delivery=lambda e, m, s=sent: report(e, m, s)
                )
                break
            except BufferError:
                producer.poll(0.001)
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - start
    done = len(latencies)
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(done - 1, int(q * done))] * 1000 if done else 0.0

    print(
        f"librdkafka produce: {done} records in {elapsed:.2f} s = {done / elapsed:,.0f} records/s, "
        f"{done * args.message_bytes / elapsed / 1e6:.1f} MB/s of values; failed {failed}"
    )
    print(
        f"delivery latency ms: p50 {pct(0.5):.3f}  p90 {pct(0.9):.3f}  p99 {pct(0.99):.3f}  "
        f"max {latencies[-1] * 1000 if done else 0:.3f}"
    )
    return 1 if failed or done != args.records else 0


if __name__ == "__main__":
    sys.exit(main())
