"""A producer run in its own process by test_quotas.py, so that two
producers measured side by side share no interpreter lock.

Usage: ``quota_producer.py BOOTSTRAP TOPIC CLIENT_ID SECONDS WARMUP_SECONDS``.
Produces 1 KiB values to partition 0 as fast as the client allows for
SECONDS, then prints one JSON line: ``rate`` (value bytes per second
acknowledged between WARMUP_SECONDS and SECONDS after the start),
``acked`` (records acknowledged in all), ``throttles`` (librdkafka's
throttle events: how often the broker answered with a throttle time).
"""

from __future__ import annotations

import json
import sys
import time

import confluent_kafka

VALUE = b"q" * 1024


def main() -> None:
    bootstrap, topic, client_id = sys.argv[1:4]
    seconds, warmup = float(sys.argv[4]), float(sys.argv[5])
    throttles = []
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": False,
            "linger.ms": 5,
            "batch.size": 65536,
            # A small local queue: the producer blocks on the broker's pace
            # instead of piling up records it would wait on after the run.
            "queue.buffering.max.kbytes": 4096,
            "message.timeout.ms": 60000,
            "throttle_cb": lambda event: throttles.append(event.throttle_time),
        }
    )
    acked: list[float] = []

    def on_delivery(err, _msg):
        if err is None:
            acked.append(time.monotonic())

    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        try:
            producer.produce(topic, value=VALUE, partition=0, on_delivery=on_delivery)
            producer.poll(0)
        except BufferError:
            producer.poll(0.01)
    # Deliveries already acknowledged are reported by poll; the rest of the
    # local queue is not waited for.
    producer.poll(0)
    producer.purge()
    producer.flush(5)
    window = [t for t in acked if start + warmup <= t < end]
    rate = len(window) * len(VALUE) / (seconds - warmup)
    print(json.dumps({"rate": rate, "acked": len(acked), "throttles": len(throttles)}))


if __name__ == "__main__":
    main()
