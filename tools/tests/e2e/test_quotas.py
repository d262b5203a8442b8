"""Client quotas: DescribeClientQuotas and AlterClientQuotas (KIP-546) on
the wire, and the throttling they cause (KIP-219).

The quota APIs are driven with raw requests (kafka_wire): neither
confluent-kafka nor kafka-python exposes them. The throttled clients are
real librdkafka producers and consumers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import kafka_wire as wire
from kafka_clients import confluent_consumer, confluent_produce, create_topic, make_records
from confluent_kafka import TopicPartition
from ringlog_server import RinglogServer

PRODUCER = Path(__file__).with_name("quota_producer.py")
USER, CLIENT_ID = "user", "client-id"
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2


def alter(server: RinglogServer, entity, ops, validate_only=False):
    [(code, message, echoed)] = wire.alter_client_quotas_v0(
        server.kafka_addr, [(entity, ops)], validate_only
    )
    assert echoed == entity
    return code, message


def describe(server: RinglogServer, components, strict=False):
    code, message, entries = wire.describe_client_quotas_v0(server.kafka_addr, components, strict)
    assert code == wire.NONE, message
    return {tuple(entity): values for entity, values in entries}


def test_quotas_are_altered_described_checked_and_kept(server: RinglogServer):
    slow = [(CLIENT_ID, "slow")]
    alice_default_client = [(USER, "alice"), (CLIENT_ID, None)]
    assert alter(server, slow, [("producer_byte_rate", 1048576.0, False)]) == (wire.NONE, None)
    code, _ = alter(
        server,
        alice_default_client,
        [("consumer_byte_rate", 2e6, False), ("request_percentage", 50.0, False)],
    )
    assert code == wire.NONE

    everything = describe(server, [])
    assert everything == {
        tuple(slow): {"producer_byte_rate": 1048576.0},
        tuple(alice_default_client): {"consumer_byte_rate": 2e6, "request_percentage": 50.0},
    }
    assert describe(server, [(USER, MATCH_EXACT, "alice")]).keys() == {tuple(alice_default_client)}
    assert describe(server, [(USER, MATCH_EXACT, "alice")], strict=True) == {}
    assert describe(server, [(CLIENT_ID, MATCH_SPECIFIED, None)], strict=True).keys() == {tuple(slow)}
    assert describe(server, [(CLIENT_ID, MATCH_DEFAULT, None)]).keys() == {tuple(alice_default_client)}

    # Refused, each with INVALID_REQUEST and its reason, and nothing changes.
    refused = [
        (slow, [("controller_mutation_rate", 5.0, False)], "unknown quota key"),
        (slow, [("producer_byte_rate", -1.0, False)], "must be positive"),
        (slow, [("consumer_byte_rate", 10.5, False)], "whole number"),
        ([("ip", "127.0.0.1")], [("producer_byte_rate", 1.0, False)], "ip quotas"),
        ([(USER, "a"), (USER, "b")], [("producer_byte_rate", 1.0, False)], "named twice"),
        ([("group", "g")], [("producer_byte_rate", 1.0, False)], "unknown entity type"),
        ([], [("producer_byte_rate", 1.0, False)], "needs a user or a client id"),
    ]
    for entity, ops, reason in refused:
        code, message = alter(server, entity, ops)
        assert code == wire.INVALID_REQUEST, (entity, ops)
        assert reason in (message or ""), message
    code, message, entries = wire.describe_client_quotas_v0(
        server.kafka_addr, [(USER, MATCH_EXACT, None)]
    )
    assert code == wire.INVALID_REQUEST and "needs a name" in message and entries == []
    # validate_only checks and changes nothing.
    assert alter(server, slow, [("producer_byte_rate", 5.0, False)], validate_only=True)[0] == wire.NONE
    assert describe(server, []) == everything

    # Removing a key keeps the rest; removing the last removes the entity.
    alter(server, alice_default_client, [("request_percentage", 0.0, True)])
    alter(server, slow, [("producer_byte_rate", 0.0, True)])
    kept = describe(server, [])
    assert kept == {tuple(alice_default_client): {"consumer_byte_rate": 2e6}}

    server.restart()
    assert describe(server, []) == kept, "quotas survive a restart"


def run_producer(server: RinglogServer, topic: str, client_id: str, seconds: float, warmup: float):
    return subprocess.Popen(
        [sys.executable, str(PRODUCER), server.bootstrap, topic, client_id, str(seconds), str(warmup)],
        stdout=subprocess.PIPE,
        text=True,
    )


def result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, f"producer exited {process.returncode}"
    return json.loads(out.strip().splitlines()[-1])


def test_a_producer_over_its_quota_is_held_to_it_and_others_keep_their_rate(
    server: RinglogServer,
):
    """The quota: 1,000,000 bytes/s for client id "slow". Over 10 s after a
    2 s warm-up its acknowledged value bytes stay within 10% of the quota
    (a request also carries batch and record headers, so the values run a
    few percent under it), while "free", unthrottled, keeps at least half
    the rate it had alone."""
    quota = 1_000_000.0
    create_topic(server.bootstrap, "quota-slow", 1)
    create_topic(server.bootstrap, "quota-free", 1)
    assert alter(server, [(CLIENT_ID, "slow")], [("producer_byte_rate", quota, False)])[0] == wire.NONE

    alone = result(run_producer(server, "quota-free", "free", 5, 1))
    slow = run_producer(server, "quota-slow", "slow", 12, 2)
    free = run_producer(server, "quota-free", "free", 12, 2)
    slow, free = result(slow), result(free)
    print(f"quota {quota:.0f} B/s: throttled {slow}, unthrottled {free}, alone {alone}")

    assert 0.9 * quota <= slow["rate"] <= 1.1 * quota, slow
    assert slow["throttles"] > 0, "the broker answered with throttle times"
    assert free["throttles"] == 0, free
    assert free["rate"] >= 0.5 * alone["rate"], (free, alone)
    assert free["rate"] > 3 * quota, free


def test_a_consumer_over_its_quota_is_slowed_to_it(server: RinglogServer):
    """6 MB read by client id "slow-reader" with a 2,000,000 bytes/s quota
    takes at least the time the quota allows, every record arrives."""
    quota = 2_000_000.0
    records = 6000
    create_topic(server.bootstrap, "quota-read", 1)
    value = b"r" * 1000
    batch = make_records("quota-read", [0], records)
    confluent_produce(
        server.bootstrap,
        "quota-read",
        [replace(r, value=value) for r in batch],
        **{"linger.ms": 20},
    )
    assert (
        alter(server, [(CLIENT_ID, "slow-reader")], [("consumer_byte_rate", quota, False)])[0]
        == wire.NONE
    )
    consumer = confluent_consumer(server.bootstrap, **{"client.id": "slow-reader"})
    consumer.assign([TopicPartition("quota-read", 0, 0)])
    received = 0
    start = time.monotonic()
    deadline = start + 60
    while received < records and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None:
            received += 1
    elapsed = time.monotonic() - start
    consumer.close()
    assert received == records
    fetched = records * len(value)
    # The first Fetch goes out before any debt (up to 1 MiB per partition),
    # the rest at the quota.
    assert elapsed >= (fetched - (1 << 20)) / quota * 0.9, elapsed
