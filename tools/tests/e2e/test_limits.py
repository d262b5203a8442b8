"""Connection limits, the idle timeout and the request-memory bound.

Each limit is hit by a test while the broker keeps serving everyone else:
the connection over ``--max-connections`` (or over
``--max-connections-per-ip`` from its IP) is closed at accept with a WARN
naming the peer and the limit, and a slot freed by a close is usable at
once; a connection idle for ``--connections-max-idle-ms`` is closed while
a busy one and a long-polling one are not; concurrent producers of ~1 MiB
requests against a 4 MiB ``--request-memory-bytes-max`` all complete, and
the shard's high-water mark ``ringlog_request_memory_peak_bytes`` never
exceeds it (a scraped sample of ``ringlog_request_memory_bytes`` could miss
the moments a request is in flight).

Topics are created with ``ringlog topic create``, whose connections close
when it exits, so the tests can wait for ``ringlog_open_connections`` to
reach 0 before counting their own.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import kafka_wire as wire
from kafka_clients import (
    CLIENT_TIMEOUT_S,
    Record,
    assert_same_records,
    by_partition,
    confluent_consume,
    confluent_produce,
)
from ringlog_server import RinglogServer, ringlog_bin, wait_until

OPEN_CONNECTIONS = "ringlog_open_connections"
REQUEST_MEMORY = "ringlog_request_memory_bytes"
REQUEST_MEMORY_PEAK = "ringlog_request_memory_peak_bytes"
# Bound on waits for the broker to notice a close or a limit.
SETTLE_TIMEOUT_S = 10.0


def create_topic(server: RinglogServer, topic: str, partitions: int) -> None:
    out = subprocess.run(
        [
            str(ringlog_bin()),
            "topic",
            "create",
            topic,
            "--partitions",
            str(partitions),
            "--bootstrap",
            server.bootstrap,
        ],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert out.returncode == 0, out.stderr


def open_connections(server: RinglogServer) -> int:
    return int(server.metrics().value(OPEN_CONNECTIONS))


def await_open_connections(server: RinglogServer, count: int) -> None:
    wait_until(
        lambda: open_connections(server) == count,
        SETTLE_TIMEOUT_S,
        f"{count} open connections (now {open_connections(server)})",
    )


def api_versions_ok(conn: wire.KafkaConn) -> None:
    corr = conn.send_request(wire.API_VERSIONS, 0, wire.api_versions_body(0))
    versions = wire.parse_api_versions_v0(conn.recv_response(corr, timeout=10))
    assert versions.error_code == wire.NONE and wire.API_VERSIONS in versions.apis


def peer_field(conn: wire.KafkaConn) -> str:
    """How the broker's log names this connection's client."""
    host, port = conn.sock.getsockname()
    return f"peer={host}:{port}"


def await_log_line(server: RinglogServer, *needles: str) -> str:
    return wait_until(
        lambda: server.log_lines(*needles),
        SETTLE_TIMEOUT_S,
        f"a log line with {needles}",
    )[-1]


def assert_round_trip(server: RinglogServer, topic: str, tag: str) -> None:
    """A confluent-kafka producer and consumer round trip on partition 0
    (the records appended after everything earlier)."""
    records = [Record(0, f"{tag}-{i}".encode(), f"{tag}-value-{i}".encode()) for i in range(5)]
    delivered = confluent_produce(server.bootstrap, topic, records)
    start = delivered[0].offset
    consumed = confluent_consume(server.bootstrap, topic, [0], start=start)
    assert [(r.key, r.value) for r in consumed[0]] == [(r.key, r.value) for r in records]


def test_connection_over_max_connections_is_closed_and_a_freed_slot_is_reused(server_factory):
    limit = 6
    server = server_factory("--max-connections", str(limit))
    create_topic(server, "limited", 1)
    await_open_connections(server, 0)
    conns = [wire.KafkaConn(server.kafka_addr) for _ in range(limit)]
    try:
        for conn in conns:
            api_versions_ok(conn)
        assert open_connections(server) == limit
        with wire.KafkaConn(server.kafka_addr) as refused:
            refused.expect_closed(timeout=SETTLE_TIMEOUT_S)
            line = await_log_line(server, "WARN", "--max-connections", peer_field(refused))
            assert f"limit={limit}" in line, line
        # The refusal counted nothing, and the open connections still work.
        assert open_connections(server) == limit
        for conn in conns:
            api_versions_ok(conn)
        conns.pop().close()
        await_open_connections(server, limit - 1)
        with wire.KafkaConn(server.kafka_addr) as replacement:
            api_versions_ok(replacement)
    finally:
        for conn in conns:
            conn.close()
    await_open_connections(server, 0)
    assert_round_trip(server, "limited", "after-max-connections")


def test_max_connections_counts_over_every_router_shard(server_factory):
    """With ``--router-cores all`` both shards accept on the port (the
    kernel spreads connections between them): the limit is the broker's,
    not each router's, so once it is reached every further connection is
    refused, whichever shard accepts it."""
    limit = 4
    server = server_factory("--router-cores", "all", "--max-connections", str(limit))
    await_open_connections(server, 0)
    conns = [wire.KafkaConn(server.kafka_addr) for _ in range(limit)]
    try:
        for conn in conns:
            api_versions_ok(conn)
        for _ in range(2 * limit):
            with wire.KafkaConn(server.kafka_addr) as refused:
                refused.expect_closed(timeout=SETTLE_TIMEOUT_S)
        assert open_connections(server) == limit
        for conn in conns:
            api_versions_ok(conn)
    finally:
        for conn in conns:
            conn.close()
    await_open_connections(server, 0)
    with wire.KafkaConn(server.kafka_addr) as conn:
        api_versions_ok(conn)


def test_per_ip_limit_spares_clients_from_other_ips(server_factory):
    limit = 3
    server = server_factory("--max-connections-per-ip", str(limit))
    topic = "per-ip"
    create_topic(server, topic, 1)
    await_open_connections(server, 0)
    local = [wire.KafkaConn(server.kafka_addr, source=("127.0.0.1", 0)) for _ in range(limit)]
    try:
        for conn in local:
            api_versions_ok(conn)
        with wire.KafkaConn(server.kafka_addr, source=("127.0.0.1", 0)) as refused:
            refused.expect_closed(timeout=SETTLE_TIMEOUT_S)
            line = await_log_line(
                server, "WARN", "--max-connections-per-ip", peer_field(refused)
            )
            assert "ip=127.0.0.1" in line and f"limit={limit}" in line, line
        # Another loopback address is another client IP: served in full.
        with wire.KafkaConn(server.kafka_addr, source=("127.0.0.2", 0)) as other:
            api_versions_ok(other)
            value = b"from-127.0.0.2"
            batch = wire.producer_batch(-1, -1, -1, [value], int(time.time() * 1000))
            produced = wire.produce_v3(other, topic, 0, batch)
            assert produced.error_code == wire.NONE, produced
            corr = other.send_request(
                wire.FETCH,
                4,
                wire.fetch_v4_body(topic, 0, produced.base_offset, max_wait_ms=100),
            )
            (part,) = wire.parse_fetch_v4(other.recv_response(corr, timeout=10))
            assert part.error_code == wire.NONE
            got = [v for b in wire.parse_batches(part.records) for (_, _, v, _) in b.records()]
            assert got[:1] == [value], got
        for conn in local:
            api_versions_ok(conn)
    finally:
        for conn in local:
            conn.close()
    await_open_connections(server, 0)
    # Freed: clients from 127.0.0.1 are served again.
    assert_round_trip(server, topic, "after-per-ip")


def test_idle_connection_is_closed_while_busy_and_long_polling_ones_stay(server_factory):
    idle_ms = 1000
    server = server_factory("--connections-max-idle-ms", str(idle_ms))
    topic = "idle"
    create_topic(server, topic, 1)
    with wire.KafkaConn(server.kafka_addr) as idle, wire.KafkaConn(server.kafka_addr) as busy:
        api_versions_ok(idle)
        api_versions_ok(busy)
        idle_since = time.monotonic()
        idle.sock.settimeout(0.3)
        closed_after = None
        # ApiVersions every 300 ms for 3 s on `busy`; the waits between
        # them are spent watching `idle` for its EOF.
        while time.monotonic() - idle_since < 3.0:
            api_versions_ok(busy)
            if closed_after is None:
                try:
                    data = idle.sock.recv(65536)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    data = b""
                assert data == b"", f"the idle connection got bytes: {data[:64]!r}"
                closed_after = time.monotonic() - idle_since
            else:
                time.sleep(0.3)
        assert closed_after is not None, "the idle connection was not closed within 3 s"
        assert closed_after >= idle_ms / 1000 * 0.9, f"closed after {closed_after:.2f} s"
        line = await_log_line(server, "closing idle connection", peer_field(idle))
        assert f"idle_ms={idle_ms}" in line, line
        # The busy connection was never taken for idle.
        api_versions_ok(busy)
        assert not server.log_lines("closing idle connection", peer_field(busy))

    # A Fetch parked at the end of the partition for longer than the idle
    # timeout is in flight, not idle: it gets its (empty) answer.
    with wire.KafkaConn(server.kafka_addr, timeout=30) as polling:
        wait_ms = 2500
        started = time.monotonic()
        corr = polling.send_request(
            wire.FETCH, 4, wire.fetch_v4_body(topic, 0, 0, max_wait_ms=wait_ms)
        )
        (part,) = wire.parse_fetch_v4(polling.recv_response(corr, timeout=30))
        assert part.error_code == wire.NONE and part.records == b""
        assert time.monotonic() - started >= wait_ms / 1000 * 0.9
        api_versions_ok(polling)
        assert not server.log_lines("closing idle connection", peer_field(polling))


def test_concurrent_large_producers_stay_within_the_request_memory_bound(server_factory):
    budget = 4 << 20
    max_request = 1 << 20
    server = server_factory(
        "--request-memory-bytes-max", str(budget), "--max-request-bytes", str(max_request)
    )
    topic = "memory"
    producers = 4
    create_topic(server, topic, producers)
    # ~100 KB records, batched into requests of up to ~1 MB: the producers
    # together keep far more than 4 MiB of requests in flight.
    per_producer = 40
    records = {
        p: [
            Record(p, f"p{p}-{i}".encode(), bytes([65 + p]) * 100_000 + f"-{i}".encode())
            for i in range(per_producer)
        ]
        for p in range(producers)
    }
    errors: list[BaseException] = []

    def produce(partition: int):
        try:
            confluent_produce(
                server.bootstrap,
                topic,
                records[partition],
                **{"batch.size": 1_000_000, "linger.ms": 50, "message.max.bytes": 1_000_000},
            )
        except BaseException as e:  # reported by the test thread
            errors.append(e)

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CLIENT_TIMEOUT_S + 10)
    assert not any(t.is_alive() for t in threads), "a producer did not finish"
    assert not errors, errors
    # The peak gauge is the high-water mark kept by the budget itself, so
    # no scrape timing can miss a moment of use.
    peaks = server.metrics().per_shard(REQUEST_MEMORY_PEAK, server.shards)
    assert max(peaks) > 0, "the peak gauge never saw a request in flight"
    assert all(peak <= budget for peak in peaks), peaks
    # Every byte is given back once the answers are written.
    wait_until(
        lambda: server.metrics().per_shard(REQUEST_MEMORY, server.shards) == [0.0] * server.shards,
        SETTLE_TIMEOUT_S,
        "the request memory gauges to return to 0",
    )
    consumed = confluent_consume(server.bootstrap, topic, range(producers))
    expected = by_partition(r for rs in records.values() for r in rs)
    assert_same_records(consumed, expected)
