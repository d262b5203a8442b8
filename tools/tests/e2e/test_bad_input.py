"""Malformed input on the wire.

A frame the server cannot delimit or decode closes that connection (EOF or
reset, without a reply), is logged as a WARN "closing connection" line, and
affects nothing else: a connection opened before keeps working, and so
does a real client afterwards. ApiVersions at an unknown version is the
exception: Kafka answers it (v0 layout, UNSUPPORTED_VERSION, full API
list) so that clients can retry at a version both sides know.

A second `ringlog serve` on the addresses of the running one refuses to
start (its Kafka listener would otherwise share the port through
SO_REUSEPORT and take half the connections).

All cases run against one server, which must survive all of them.
"""

from __future__ import annotations

import random
import socket
import struct
import subprocess

import pytest

import kafka_wire as wire
from kafka_clients import CLIENT_TIMEOUT_S, Record, admin, confluent_produce, create_topic
from ringlog_server import RinglogServer, free_port, ringlog_bin, wait_until

MAX_REQUEST_BYTES = 100 << 20  # the server's default limit
SECOND_SERVER_TIMEOUT_S = 60  # start-up checks, then the refusal
HEALTH_TOPIC = "health"


@pytest.fixture(scope="module")
def server(module_server) -> RinglogServer:
    create_topic(module_server.bootstrap, HEALTH_TOPIC, 2)
    return module_server


def api_versions_v0(conn: wire.KafkaConn) -> wire.ApiVersionsV0:
    corr = conn.send_request(wire.API_VERSIONS, 0, wire.api_versions_body(0))
    return wire.parse_api_versions_v0(conn.recv_response(corr, timeout=10))


def assert_broker_works(server: RinglogServer) -> None:
    """A fresh raw connection, the AdminClient and a produce/fetch round
    trip all work."""
    assert server.running, f"the server died:\n{server.log_tail()}"
    with wire.KafkaConn(server.kafka_addr) as conn:
        versions = api_versions_v0(conn)
        assert versions.error_code == wire.NONE and wire.API_VERSIONS in versions.apis
    md = admin(server.bootstrap).list_topics(timeout=CLIENT_TIMEOUT_S)
    assert {b.id: (b.host, b.port) for b in md.brokers.values()} == {0: server.kafka_addr}
    value = f"still-alive-{random.getrandbits(32):08x}".encode()
    (delivered,) = confluent_produce(server.bootstrap, HEALTH_TOPIC, [Record(1, b"k", value)])
    part = wire.fetch_v4(server.kafka_addr, HEALTH_TOPIC, 1, delivered.offset)
    assert part.error_code == wire.NONE
    got = [
        v
        for b in wire.parse_batches(part.records)
        for (o, _, v, _) in b.records()
        if o == delivered.offset
    ]
    assert got == [value]


def assert_connection_closed(server: RinglogServer, payload: bytes) -> None:
    """Sends ``payload`` on a new connection and checks the server closes
    it without a reply, logs why, and keeps serving everyone else."""
    warnings_before = len(server.log_lines("WARN", "closing connection"))
    with wire.KafkaConn(server.kafka_addr) as bystander:
        assert api_versions_v0(bystander).error_code == wire.NONE
        with wire.KafkaConn(server.kafka_addr) as conn:
            conn.send_raw(payload)
            conn.expect_closed(timeout=5)
        new_warnings = wait_until(
            lambda: server.log_lines("WARN", "closing connection")[warnings_before:],
            5,
            'a WARN "closing connection" log line',
        )
        assert len(new_warnings) >= 1, new_warnings
        # The connection opened before is untouched.
        assert api_versions_v0(bystander).error_code == wire.NONE
    assert_broker_works(server)


# ---------------------------------------------------------------- framing


@pytest.mark.parametrize("size", [MAX_REQUEST_BYTES + 1, 0x7FFFFFFF], ids=["limit+1", "i32-max"])
def test_huge_size_prefix_closes_connection(server, size):
    """Refused as soon as the 4 prefix bytes arrive, without waiting for
    (or reserving) the body."""
    assert_connection_closed(server, wire.i32(size))


@pytest.mark.parametrize("size", [-1, -(1 << 31)], ids=["minus-one", "i32-min"])
def test_negative_size_prefix_closes_connection(server, size):
    assert_connection_closed(server, wire.i32(size) + b"\x00" * 16)


GARBAGE = {
    # Size prefix "GET " = 1,195,725,856 bytes.
    "http-request": b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    # A TLS ClientHello record header: prefix 0x16030100.. is ~369 MB.
    "tls-client-hello": bytes.fromhex("160301020001") + bytes(range(64)),
    # A well-delimited frame of random bytes (API key 0xf00d is unknown).
    "random-frame": wire.frame(b"\xf0\x0d" + random.Random(20240611).randbytes(62)),
}


@pytest.mark.parametrize("name", GARBAGE)
def test_garbage_bytes_close_connection(server, name):
    assert_connection_closed(server, GARBAGE[name])


@pytest.mark.parametrize("length", [0, 1, 5, 7])
def test_frame_shorter_than_request_header_closes_connection(server, length):
    """The fixed header (api_key, api_version, correlation_id) is 8 bytes;
    a complete frame with fewer cannot be a request."""
    header = wire.request_header(wire.METADATA, 1, 42)
    assert_connection_closed(server, wire.frame(header[:length]))


# ---------------------------------------------------------------- requests


def test_unknown_api_key_closes_connection(server):
    assert_connection_closed(server, wire.request_frame(1000, 0, 7, b""))


def test_unsupported_metadata_version_closes_connection(server):
    # Metadata v99 would be a flexible version: header v2.
    assert_connection_closed(
        server, wire.request_frame(wire.METADATA, 99, 8, wire.i32(-1) + b"\x00", flexible=True)
    )


JUNK_PRODUCE = {
    # v3: transactional_id claims 100 bytes, 3 follow.
    "v3-truncated-string": (3, False, wire.i16(100) + b"abc"),
    # v3: null transactional_id, acks -1, timeout, then a topic array
    # claiming 2^31-1 entries with nothing after it.
    "v3-huge-array": (
        3,
        False,
        wire.i16(-1) + wire.i16(-1) + wire.i32(1000) + wire.i32(0x7FFFFFFF),
    ),
    # v9 (flexible): not even a valid varint.
    "v9-bad-varint": (9, True, b"\xff" * 12),
}


@pytest.mark.parametrize("name", JUNK_PRODUCE)
def test_undecodable_produce_body_closes_connection(server, name):
    version, flexible, body = JUNK_PRODUCE[name]
    assert_connection_closed(
        server, wire.request_frame(wire.PRODUCE, version, 9, body, flexible=flexible)
    )


FETCH_V4_PREFIX = wire.i32(-1) + wire.i32(100) + wire.i32(1) + wire.i32(1 << 20) + wire.i8(0)
JUNK_FETCH = {
    # Topic name claims 200 bytes, 3 follow.
    "v4-truncated-topic": (4, False, FETCH_V4_PREFIX + wire.i32(1) + wire.i16(200) + b"abc"),
    # Topic array claiming 2^31-1 entries with nothing after it.
    "v4-huge-array": (4, False, FETCH_V4_PREFIX + wire.i32(0x7FFFFFFF)),
    # Ends in the middle of the fixed fields.
    "v4-truncated-fields": (4, False, wire.i32(-1) + wire.i16(0)),
    "v12-bad-varint": (12, True, wire.i32(-1) + wire.i32(100) + b"\xff" * 12),
}


@pytest.mark.parametrize("name", JUNK_FETCH)
def test_undecodable_fetch_body_closes_connection(server, name):
    version, flexible, body = JUNK_FETCH[name]
    assert_connection_closed(
        server, wire.request_frame(wire.FETCH, version, 10, body, flexible=flexible)
    )


# ---------------------------------------------------------------- ApiVersions fallback


def test_api_versions_unknown_version_gets_v0_fallback(server):
    """ApiVersions v9: a v0-layout answer (header v0, error 35, API list),
    and the connection stays usable for the retry at a known version."""
    with wire.KafkaConn(server.kafka_addr) as conn:
        corr = conn.send_request(wire.API_VERSIONS, 9, wire.api_versions_body(9), flexible=True)
        fallback = wire.parse_api_versions_v0(conn.recv_response(corr, timeout=10))
        assert fallback.error_code == wire.UNSUPPORTED_VERSION == 35
        assert fallback.apis, "empty API list in the fallback answer"
        lo, hi = fallback.apis[wire.API_VERSIONS]
        assert lo == 0 and 3 <= hi < 9, f"ApiVersions advertised as v{lo}-v{hi}"
        for key in (wire.PRODUCE, wire.FETCH, wire.LIST_OFFSETS, wire.METADATA):
            assert key in fallback.apis, f"API {key} missing from {fallback.apis}"
        for key, (lo, hi) in fallback.apis.items():
            assert 0 <= lo <= hi, f"API {key}: bad range v{lo}-v{hi}"

        # What librdkafka and the Java client do next, on the same connection.
        retry = api_versions_v0(conn)
        assert retry.error_code == wire.NONE
        assert retry.apis == fallback.apis
    assert server.running
    assert_broker_works(server)


def test_client_vanishing_mid_answer_does_not_hurt_the_broker(server):
    """A client pipelines many Metadata and ApiVersions requests and resets
    the connection without reading a byte: the broker's writes then fail
    with EPIPE/ECONNRESET on that socket. The broker must drop that one
    connection and keep serving (a broker that let SIGPIPE kill it failed
    exactly this way)."""
    requests = b"".join(
        wire.request_frame(wire.API_VERSIONS, 0, n, b"") + wire.request_frame(3, 1, n, wire.metadata_v1_body(None))
        for n in range(2000)
    )
    for _ in range(5):
        sock = socket.create_connection(server.kafka_addr, timeout=5)
        sock.sendall(requests)
        # RST instead of FIN: unread answers are discarded and later
        # writes by the broker fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert_broker_works(server)


def second_serve(server_factory, listen: str, http: str) -> subprocess.CompletedProcess:
    """Runs a second ``ringlog serve`` on its own data dir to completion."""
    cmd = [
        str(ringlog_bin()),
        "serve",
        "--data-dir",
        str(server_factory.root / "second-data"),
        "--listen",
        listen,
        "--http",
        http,
        "--shards",
        "1",
    ]
    # A second server that starts serves until killed: the timeout fails the test.
    return subprocess.run(cmd, capture_output=True, text=True, timeout=SECOND_SERVER_TIMEOUT_S)


def test_a_second_server_on_the_kafka_port_refuses_to_start(server, server_factory):
    second = second_serve(server_factory, server.bootstrap, f"127.0.0.1:{free_port()}")
    assert second.returncode == 1, (second.returncode, second.stderr)
    assert (
        f"ringlog serve: {server.bootstrap} is already in use (another ringlog or Kafka broker?)"
        in second.stderr
    ), second.stderr
    # Every connection still reaches the first server.
    for _ in range(4):
        assert_broker_works(server)


def test_a_second_server_on_the_metrics_port_refuses_to_start(server, server_factory):
    http = f"127.0.0.1:{server.http_port}"
    second = second_serve(server_factory, f"127.0.0.1:{free_port()}", http)
    assert second.returncode == 1, (second.returncode, second.stderr)
    assert f"cannot serve metrics and the admin API on {http}" in second.stderr, second.stderr
    assert "in use" in second.stderr, second.stderr
    # /metrics still answers from the first server (two shards, not one).
    assert len(server.metrics().find("ringlog_produce_records_total")) == server.shards
    assert_broker_works(server)
