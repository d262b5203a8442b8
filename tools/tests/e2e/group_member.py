"""A consumer-group member in its own process, so a test can freeze it
(SIGSTOP: no heartbeats, no LeaveGroup, connection left open) the way a
hung application would. Prints one JSON line per assignment change.

Usage: python3 group_member.py BOOTSTRAP GROUP TOPIC SESSION_TIMEOUT_MS
"""

import json
import sys

import confluent_kafka


def main() -> None:
    bootstrap, group, topic, session_timeout_ms = sys.argv[1:5]
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "frozen-member",
            "session.timeout.ms": int(session_timeout_ms),
            "heartbeat.interval.ms": 500,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    last = None
    while True:
        consumer.poll(0.2)
        now = sorted(tp.partition for tp in consumer.assignment())
        if now != last:
            last = now
            print(json.dumps({"assigned": now}), flush=True)


if __name__ == "__main__":
    main()
