"""SASL on the Kafka listener (`--security-protocol SASL_PLAINTEXT` and
`SASL_SSL`): confluent-kafka and kafka-python with SCRAM-SHA-256,
SCRAM-SHA-512 and PLAIN against users made with `ringlog user add` while
the broker is stopped; refusals (wrong password, unknown user, a request
before authentication, a mechanism not enabled) with the right error and
nothing written; credentials that survive a restart.

The certificates of SASL_SSL come from test_tls.py's openssl helpers.
"""

from __future__ import annotations

import subprocess
import uuid

import confluent_kafka
import kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_wire import (
    API_VERSIONS,
    METADATA,
    KafkaConn,
    api_versions_body,
    i32,
    metadata_v1_body,
    parse_api_versions_v0,
    string,
)
from ringlog_server import RinglogServer, ringlog_bin, wait_until
from test_tls import Pki, confluent_produce, pki  # noqa: F401  (pki is a fixture)

CLIENT_TIMEOUT_S = 60.0
SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33
USER = "alice"
PASSWORD = "correct horse battery staple"
MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]
FAILURE = "Authentication failed during authentication due to invalid credentials"


def user_add(data_dir, name: str, password: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ringlog_bin()), "user", "add", name, "--password-stdin",
         "--data-dir", str(data_dir), *args],
        input=password + "\n", capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S,
    )


def sasl_server(server_factory, protocol: str, pki: Pki | None, *args: str) -> RinglogServer:
    """A stopped broker's data directory gets alice's credentials for both
    SCRAM mechanisms, then the broker starts with SASL."""
    extra = ["--security-protocol", protocol, "--group-initial-rebalance-delay-ms", "0", *args]
    if protocol == "SASL_SSL":
        extra += ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    server = server_factory(*extra, start=False)
    server.data_dir.mkdir(parents=True, exist_ok=True)
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"]:
        out = user_add(server.data_dir, USER, PASSWORD, "--mechanism", mechanism)
        assert out.returncode == 0, out.stderr
        assert f'user "{USER}": {mechanism} credential stored' in out.stdout, out.stdout
    server.extra_env["RINGLOG_LOG"] = "info,ringlog_shard::router=debug"
    return server.start()


def confluent_config(server: RinglogServer, protocol: str, pki: Pki | None, mechanism: str,
                     user: str = USER, password: str = PASSWORD) -> dict:
    config = {
        "bootstrap.servers": server.bootstrap,
        "security.protocol": protocol,
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    if protocol == "SASL_SSL":
        config["ssl.ca.location"] = str(pki.ca)
    return config


def kafka_python_options(server: RinglogServer, protocol: str, pki: Pki | None,
                         mechanism: str) -> dict:
    options = dict(
        bootstrap_servers=server.bootstrap, security_protocol=protocol,
        sasl_mechanism=mechanism, sasl_plain_username=USER, sasl_plain_password=PASSWORD,
    )
    if protocol == "SASL_SSL":
        options.update(ssl_cafile=str(pki.ca), ssl_check_hostname=True)
    return options


def create_topic(config: dict, topic: str, partitions: int) -> None:
    admin = AdminClient(config)
    futures = admin.create_topics([NewTopic(topic, partitions, 1)])
    futures[topic].result(CLIENT_TIMEOUT_S)


def end_offsets(config: dict, topic: str, partitions: int) -> list[int]:
    consumer = confluent_kafka.Consumer({**config, "group.id": "sasl-offsets-probe"})
    ends = [
        consumer.get_watermark_offsets(
            confluent_kafka.TopicPartition(topic, p), timeout=CLIENT_TIMEOUT_S
        )[1]
        for p in range(partitions)
    ]
    consumer.close()
    return ends


def produce_and_consume(server: RinglogServer, protocol: str, pki: Pki | None,
                        mechanism: str) -> None:
    config = confluent_config(server, protocol, pki, mechanism)
    tag = mechanism.lower().replace("-", "")
    topic = f"sasl-{tag}-{uuid.uuid4().hex[:6]}"
    create_topic(config, topic, 3)

    # confluent-kafka: produce, then consume as a consumer group.
    values = [f"{tag}-confluent-{i}".encode() for i in range(200)]
    confluent_produce(config, topic, values)
    consumer = confluent_kafka.Consumer(
        {**config, "group.id": f"group-{tag}", "auto.offset.reset": "earliest",
         "enable.auto.commit": False}
    )
    consumer.subscribe([topic])
    seen: list[bytes] = []

    def consumed_all() -> bool:
        msg = consumer.poll(0.5)
        if msg is not None:
            assert msg.error() is None, msg.error()
            seen.append(msg.value())
        return len(seen) >= len(values)

    wait_until(consumed_all, CLIENT_TIMEOUT_S, f"the group consumed every record ({mechanism})",
               interval=0)
    consumer.commit(asynchronous=False)
    consumer.close()
    assert sorted(seen) == sorted(values)

    # kafka-python: produce, then consume in a group from the beginning.
    options = kafka_python_options(server, protocol, pki, mechanism)
    kp = kafka.KafkaProducer(acks="all", **options)
    more = [f"{tag}-kafka-python-{i}".encode() for i in range(50)]
    for v in more:
        kp.send(topic, v)
    kp.flush(CLIENT_TIMEOUT_S)
    kp.close()
    reader = kafka.KafkaConsumer(
        topic, group_id=f"kp-group-{tag}", auto_offset_reset="earliest", **options
    )
    read: list[bytes] = []

    def read_all() -> bool:
        for batch in reader.poll(timeout_ms=500).values():
            read.extend(r.value for r in batch)
        return len(read) >= len(values) + len(more)

    wait_until(read_all, CLIENT_TIMEOUT_S, f"kafka-python read every record ({mechanism})",
               interval=0)
    reader.commit()
    reader.close()
    assert sorted(read) == sorted(values + more)


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_clients_authenticate_with_every_mechanism(server_factory, pki, protocol):
    server = sasl_server(server_factory, protocol, pki)
    for mechanism in MECHANISMS:
        produce_and_consume(server, protocol, pki, mechanism)
    assert server.log_lines("SASL authenticated", f"user={USER}")
    assert not server.log_lines("SASL authentication failed")


# ---------------------------------------------------------------- raw SASL


def sasl_handshake(conn: KafkaConn, mechanism: str) -> tuple[int, list[str]]:
    corr = conn.send_request(SASL_HANDSHAKE, 1, string(mechanism))
    r = conn.recv_response(corr)
    error = r.i16()
    mechanisms = [r.string() for _ in range(r.i32())]
    return error, mechanisms


def sasl_authenticate(conn: KafkaConn, token: bytes) -> tuple[int, str | None, bytes]:
    corr = conn.send_request(SASL_AUTHENTICATE, 0, i32(len(token)) + token)
    r = conn.recv_response(corr)
    return r.i16(), r.string(), r.bytes_() or b""


def plain_attempt(server: RinglogServer, user: str, password: str) -> tuple[int, str | None]:
    with KafkaConn(server.kafka_addr) as conn:
        corr = conn.send_request(API_VERSIONS, 0, api_versions_body(0))
        apis = parse_api_versions_v0(conn.recv_response(corr)).apis
        assert apis[SASL_HANDSHAKE] == (0, 1) and apis[SASL_AUTHENTICATE] == (0, 2)
        assert sasl_handshake(conn, "PLAIN") == (0, MECHANISMS)
        error, message, _ = sasl_authenticate(conn, f"\0{user}\0{password}".encode())
        if error:
            conn.expect_closed()
        return error, message or None


def request_count(server: RinglogServer) -> float:
    metrics = server.metrics()
    return sum(s.value for s in metrics.find("ringlog_request_duration_seconds_count"))


def test_refusals_say_why_and_write_nothing(server_factory):
    server = sasl_server(server_factory, "SASL_PLAINTEXT", None)
    good = confluent_config(server, "SASL_PLAINTEXT", None, "SCRAM-SHA-512")
    topic = f"guarded-{uuid.uuid4().hex[:6]}"
    create_topic(good, topic, 2)

    # Raw PLAIN: the right password works; a wrong one and an unknown user
    # get the same answer, and the connection is closed.
    assert plain_attempt(server, USER, PASSWORD) == (0, None)
    wrong = plain_attempt(server, USER, "not the password")
    unknown = plain_attempt(server, "mallory", PASSWORD)
    assert wrong == unknown, (wrong, unknown)
    assert wrong[0] == SASL_AUTHENTICATION_FAILED and FAILURE in wrong[1], wrong
    lines = server.log_lines("SASL authentication failed")
    assert any(f'user="{USER}"' in line and "wrong password" in line for line in lines), lines
    assert any('user="mallory"' in line and "unknown user" in line for line in lines), lines
    assert not any(PASSWORD in line or "not the password" in line for line in lines), lines

    # librdkafka with a wrong password or as an unknown user, for every
    # mechanism: the error names the failure, nothing is written.
    for mechanism in MECHANISMS:
        for user, password in [(USER, "wrong"), ("mallory", PASSWORD)]:
            failures: list[str] = []
            config = confluent_config(server, "SASL_PLAINTEXT", None, mechanism, user, password)
            producer = confluent_kafka.Producer(
                {**config, "error_cb": lambda err: failures.append(err.str())}
            )
            producer.produce(topic, b"must not land")
            wait_until(lambda: producer.poll(0.2) is not None and any(
                FAILURE in f for f in failures), CLIENT_TIMEOUT_S,
                f"{mechanism} {user}: an authentication error", interval=0)
            producer.purge()
            producer.flush(0)
    assert end_offsets(good, topic, 2) == [0, 0]

    # A request before authentication: closed without an answer, a WARN
    # with the peer, nothing handled.
    before = request_count(server)
    with KafkaConn(server.kafka_addr) as conn:
        port = conn.sock.getsockname()[1]
        conn.send_request(METADATA, 1, metadata_v1_body(None))
        conn.expect_closed()
    wait_until(
        lambda: server.log_lines("not authenticated", f"peer=127.0.0.1:{port}",
                                 "Metadata before authentication"),
        10, "a WARN naming the peer",
    )
    # SaslAuthenticate before SaslHandshake is an illegal state.
    with KafkaConn(server.kafka_addr) as conn:
        error, _, _ = sasl_authenticate(conn, b"\0alice\0x")
        assert error == 34
        conn.expect_closed()
    assert request_count(server) == before, "a request was handled before authentication"
    assert end_offsets(good, topic, 2) == [0, 0]


def test_a_mechanism_not_enabled_is_refused(server_factory):
    server = sasl_server(server_factory, "SASL_PLAINTEXT", None, "--sasl-mechanisms",
                         "SCRAM-SHA-512")
    with KafkaConn(server.kafka_addr) as conn:
        assert sasl_handshake(conn, "PLAIN") == (UNSUPPORTED_SASL_MECHANISM, ["SCRAM-SHA-512"])
        conn.expect_closed()
    failures: list[str] = []
    config = confluent_config(server, "SASL_PLAINTEXT", None, "SCRAM-SHA-256")
    producer = confluent_kafka.Producer({**config, "error_cb": lambda e: failures.append(e.str())})
    producer.produce("never-written", b"x")
    wait_until(lambda: producer.poll(0.2) is not None and any(
        "SCRAM-SHA-256" in f for f in failures), CLIENT_TIMEOUT_S,
        "librdkafka reports the unsupported mechanism", interval=0)
    producer.purge()
    producer.flush(0)
    assert server.log_lines("not authenticated", "SASL mechanism \"PLAIN\" is not enabled")
    # The enabled one works.
    produce_and_consume(server, "SASL_PLAINTEXT", None, "SCRAM-SHA-512")


def test_credentials_survive_a_restart_and_user_add_needs_a_stopped_broker(server_factory):
    server = sasl_server(server_factory, "SASL_PLAINTEXT", None)
    out = user_add(server.data_dir, "bob", "another password")
    assert out.returncode == 1 and "broker is running" in out.stderr, out.stderr
    server.stop()
    out = user_add(server.data_dir, "bob", "another password", "--iterations", "8192")
    assert out.returncode == 0, out.stderr
    for args, needle in [
        (["--iterations", "100"], "iterations 100 outside 4096..=16384"),
        (["--mechanism", "PLAIN"], "is not SCRAM-SHA-256 or SCRAM-SHA-512"),
    ]:
        out = user_add(server.data_dir, "carol", "pw", *args)
        assert out.returncode == 2 and needle in out.stderr, out.stderr
    out = user_add(server.data_dir, "carol", "")
    assert out.returncode == 2 and "password" in out.stderr, out.stderr
    server.start()
    assert plain_attempt(server, USER, PASSWORD) == (0, None)
    assert plain_attempt(server, "bob", "another password") == (0, None)
    assert plain_attempt(server, "carol", "pw")[0] == SASL_AUTHENTICATION_FAILED
    produce_and_consume(server, "SASL_PLAINTEXT", None, "SCRAM-SHA-256")


def test_sasl_settings_are_checked(server_factory):
    server = server_factory("--sasl-mechanisms", "PLAIN", start=False)
    proc = subprocess.run(server.command(), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "--sasl-mechanisms is set but --security-protocol is PLAINTEXT" in proc.stderr
    server = server_factory("--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanisms",
                            "GSSAPI", name="gssapi", start=False)
    proc = subprocess.run(server.command(), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "\"GSSAPI\" is not a SASL mechanism" in proc.stderr
    # ringlog's own clients say they do not speak SASL.
    out = subprocess.run(
        [str(ringlog_bin()), "topic", "list", "--bootstrap", "127.0.0.1:1",
         "--security-protocol", "SASL_SSL"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "clients do not speak SASL" in out.stderr, out.stderr
