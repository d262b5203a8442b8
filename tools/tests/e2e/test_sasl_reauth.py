"""SASL re-authentication (KIP-368, `--connections-max-reauth-ms`): the
session lifetime a client is told, re-authentication on the same
connection between other requests, the connection closed when a session
expires without one, and re-authentications that are refused (another
user, a wrong password).
"""

from __future__ import annotations

import subprocess
import time

import confluent_kafka

from kafka_wire import METADATA, KafkaConn, i32, metadata_v1_body, string
from ringlog_server import RinglogServer
from test_sasl import (
    PASSWORD,
    SASL_AUTHENTICATE,
    SASL_AUTHENTICATION_FAILED,
    SASL_HANDSHAKE,
    USER,
    confluent_config,
    create_topic,
    user_add,
)

LIFETIME_MS = 1500


def authenticate_v1(conn: KafkaConn, user: str, password: str) -> tuple[int, str | None, int]:
    """SaslHandshake v1 (PLAIN) and SaslAuthenticate v1, whose answer is
    ``error_code, error_message, auth_bytes, session_lifetime_ms (i64)``."""
    corr = conn.send_request(SASL_HANDSHAKE, 1, string("PLAIN"))
    r = conn.recv_response(corr)
    assert r.i16() == 0
    token = f"\0{user}\0{password}".encode()
    corr = conn.send_request(SASL_AUTHENTICATE, 1, i32(len(token)) + token)
    r = conn.recv_response(corr)
    error, message = r.i16(), r.string()
    r.bytes_()
    return error, message, r.i64()


def metadata_ok(conn: KafkaConn) -> None:
    corr = conn.send_request(METADATA, 1, metadata_v1_body(None))
    conn.recv_response(corr)


def start_reauth_server(server_factory, with_bob: bool = False) -> RinglogServer:
    server = server_factory(
        "--security-protocol", "SASL_PLAINTEXT", "--connections-max-reauth-ms", str(LIFETIME_MS),
        start=False,
    )
    server.data_dir.mkdir(parents=True, exist_ok=True)
    users = [(USER, PASSWORD)] + ([("bob", "bob's password")] if with_bob else [])
    for name, password in users:
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"]:
            out = user_add(server.data_dir, name, password, "--mechanism", mechanism)
            assert out.returncode == 0, out.stderr
    server.extra_env["RINGLOG_LOG"] = "info,ringlog_shard::router=debug"
    return server.start()


def test_a_session_is_renewed_on_the_connection_and_closed_when_it_expires(server_factory):
    server = start_reauth_server(server_factory, with_bob=True)
    with KafkaConn(server.kafka_addr) as conn:
        assert authenticate_v1(conn, USER, PASSWORD) == (0, None, LIFETIME_MS)
        metadata_ok(conn)
        # Re-authenticated on the same connection: a new lifetime, and the
        # connection goes on serving.
        assert authenticate_v1(conn, USER, PASSWORD) == (0, None, LIFETIME_MS)
        renewed_at = time.monotonic()
        metadata_ok(conn)
        assert server.log_lines("SASL re-authenticated", "alice")
        # The session's end is a point in time: wait for it, then any other
        # request closes the connection.
        time.sleep(max(0.0, renewed_at + LIFETIME_MS / 1000 + 0.2 - time.monotonic()))
        conn.send_request(METADATA, 1, metadata_v1_body(None))
        conn.expect_closed()
    assert server.log_lines("closing connection", "SASL session of User:alice expired")

    # Another user's credentials on alice's connection are refused, and so
    # is a wrong password; both close the connection after the answer.
    for user, password in [("bob", "bob's password"), (USER, "wrong")]:
        with KafkaConn(server.kafka_addr) as conn:
            assert authenticate_v1(conn, USER, PASSWORD)[0] == 0
            error, message, lifetime = authenticate_v1(conn, user, password)
            assert error == SASL_AUTHENTICATION_FAILED and lifetime == 0, (user, message)
            conn.expect_closed()
    assert server.log_lines("SASL re-authentication as another user refused")
    assert server.log_lines("SASL re-authentication failed", "alice")


def test_librdkafka_re_authenticates_and_keeps_producing(server_factory):
    """A producer with SCRAM-SHA-512 sends a record every 100 ms for 4.5 s,
    three lifetimes: librdkafka re-authenticates on its connection, every
    record is delivered, and no connection is closed for an expired
    session."""
    server = start_reauth_server(server_factory)
    config = confluent_config(server, "SASL_PLAINTEXT", None, "SCRAM-SHA-512")
    create_topic(config, "reauth", 1)
    producer = confluent_kafka.Producer({**config, "linger.ms": 0, "acks": "all"})
    delivered, errors = [], []

    def on_delivery(err, msg):
        (errors if err else delivered).append(err or msg.offset())

    end = time.monotonic() + 3 * LIFETIME_MS / 1000
    sent = 0
    while time.monotonic() < end:
        producer.produce("reauth", value=b"v%d" % sent, on_delivery=on_delivery)
        sent += 1
        producer.poll(0.1)
    assert producer.flush(30) == 0
    assert not errors and len(delivered) == sent, (errors[:3], len(delivered), sent)
    assert len(server.log_lines("SASL re-authenticated")) >= 2, server.log_tail()
    assert not server.log_lines("expired"), server.log_tail()


def test_reauth_needs_a_sasl_listener(server_factory):
    server = server_factory("--connections-max-reauth-ms", "1000", start=False)
    proc = subprocess.run(server.command(), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "--connections-max-reauth-ms is set but --security-protocol is PLAINTEXT" in proc.stderr
