"""SASL on the Kafka listener (`--security-protocol SASL_PLAINTEXT` and
`SASL_SSL`): confluent-kafka and kafka-python with SCRAM-SHA-256,
SCRAM-SHA-512 and PLAIN against users made with `ringlog user add` while
the broker is stopped; refusals (wrong password, unknown user, a request
before authentication, a mechanism not enabled) with the right error and
nothing written; credentials that survive a restart. ringlog's own
clients (`topic`, `group`, `bench`) over SASL_SSL with every mechanism;
users managed online (`ringlog user add/list/delete --bootstrap`, and
confluent-kafka's AdminClient SCRAM calls, KIP-554).

The certificates of SASL_SSL come from test_tls.py's openssl helpers.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

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
    # ringlog's own clients need a user and a password with SASL, and say
    # where the password comes from.
    out = ringlog("topic", "list", "--bootstrap", "127.0.0.1:1", "--security-protocol",
                  "SASL_PLAINTEXT")
    assert out.returncode == 1 and "needs --sasl-username NAME" in out.stderr, out.stderr
    out = ringlog("topic", "list", "--bootstrap", "127.0.0.1:1", "--security-protocol",
                  "SASL_PLAINTEXT", "--sasl-username", USER, env={})
    assert out.returncode == 1, out.stderr
    assert "--sasl-password-file FILE" in out.stderr and "RINGLOG_SASL_PASSWORD" in out.stderr
    out = ringlog("topic", "list", "--bootstrap", "127.0.0.1:1", "--sasl-username", USER)
    assert out.returncode == 1 and "need --security-protocol SASL_PLAINTEXT or SASL_SSL" in \
        out.stderr, out.stderr
    out = ringlog("topic", "list", "--security-protocol", "SASL_SSL", "--sasl-mechanism", "GSSAPI")
    assert out.returncode == 2 and "is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512" in out.stderr


# ------------------------------------------------ ringlog's own SASL clients


def ringlog(*args: str, stdin: str | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs the CLI; `env` replaces RINGLOG_SASL_PASSWORD's presence (None
    keeps the environment as it is, minus that variable)."""
    full_env = {k: v for k, v in os.environ.items() if k != "RINGLOG_SASL_PASSWORD"}
    full_env.update(env or {})
    return subprocess.run([str(ringlog_bin()), *args], input=stdin, capture_output=True,
                          text=True, timeout=CLIENT_TIMEOUT_S, env=full_env)


def sasl_flags(server: RinglogServer, pki: Pki, mechanism: str, user: str,
               password_file: Path) -> list[str]:
    return ["--bootstrap", server.bootstrap, "--security-protocol", "SASL_SSL",
            "--tls-ca", str(pki.ca), "--sasl-mechanism", mechanism, "--sasl-username", user,
            "--sasl-password-file", str(password_file)]


def password_file(tmp_path: Path, name: str, password: str) -> Path:
    path = tmp_path / f"{name}.password"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def test_ringlog_clients_authenticate_with_every_mechanism(server_factory, pki, tmp_path):
    server = sasl_server(server_factory, "SASL_SSL", pki)
    good = password_file(tmp_path, "good", PASSWORD)
    for mechanism in MECHANISMS:
        flags = sasl_flags(server, pki, mechanism, USER, good)
        tag = mechanism.lower().replace("-", "")
        topic = f"cli-{tag}"
        out = ringlog("topic", "create", topic, "--partitions", "2", *flags)
        assert out.returncode == 0, out.stderr
        out = ringlog("topic", "list", *flags)
        assert out.returncode == 0 and topic in out.stdout, out.stderr
        out = ringlog(
            "bench", "produce", *flags, "--topic", f"bench-{tag}", "--partitions", "2",
            "--records", "5000", "--quiet",
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "verified: 5,000 records acknowledged, 5,000 readable" in out.stdout, out.stdout
        assert f"over SASL_SSL {mechanism}" in out.stdout + out.stderr
        out = ringlog("group", "list", *flags)
        assert out.returncode == 0, out.stderr
        # The password from the environment instead of a file.
        env_flags = [f for f in flags if f != str(good) and f != "--sasl-password-file"]
        out = ringlog("topic", "describe", topic, *env_flags,
                      env={"RINGLOG_SASL_PASSWORD": PASSWORD})
        assert out.returncode == 0, out.stderr
        # A wrong password: a non-zero exit naming the user and mechanism,
        # never the password.
        wrong = password_file(tmp_path, "wrong", "not the password")
        for command in [["topic", "list"], ["group", "list"],
                        ["bench", "produce", "--records", "10", "--quiet"]]:
            out = ringlog(*command, *sasl_flags(server, pki, mechanism, USER, wrong))
            assert out.returncode != 0, out.stdout
            expected = f'SASL authentication as user "{USER}" with {mechanism} failed'
            assert expected in out.stderr, out.stderr
            assert "not the password" not in out.stdout + out.stderr
    assert server.log_lines("SASL authenticated", f"user={USER}")


# ------------------------------------------------ online user management


def confluent_round_trip(server: RinglogServer, pki: Pki, mechanism: str, user: str,
                         password: str, topic: str) -> None:
    config = confluent_config(server, "SASL_SSL", pki, mechanism, user, password)
    values = [f"{user}-{mechanism}-{i}".encode() for i in range(50)]
    confluent_produce(config, topic, values)
    consumer = confluent_kafka.Consumer(
        {**config, "group.id": f"g-{user}-{mechanism}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen: list[bytes] = []

    def consumed_all() -> bool:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None and msg.value() in values:
            seen.append(msg.value())
        return len(seen) >= len(values)

    wait_until(consumed_all, CLIENT_TIMEOUT_S, f"{user} consumed with {mechanism}", interval=0)
    consumer.close()
    assert sorted(seen) == sorted(values)


def refused(server: RinglogServer, pki: Pki, mechanism: str, user: str, password: str) -> None:
    failures: list[str] = []
    config = confluent_config(server, "SASL_SSL", pki, mechanism, user, password)
    producer = confluent_kafka.Producer({**config, "error_cb": lambda e: failures.append(
        (e.code(), e.str()))})
    producer.produce("never-written", b"x")
    wait_until(lambda: producer.poll(0.2) is not None and any(
        code == confluent_kafka.KafkaError._AUTHENTICATION and FAILURE in text
        for code, text in failures), CLIENT_TIMEOUT_S,
        f"{user} with {mechanism}: SASL authentication failed", interval=0)
    producer.purge()
    producer.flush(0)


def user_rows(server: RinglogServer, flags: list[str], *names: str) -> list[dict]:
    out = ringlog("user", "list", *names, "--json", *flags)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_users_are_managed_online(server_factory, pki, tmp_path):
    server = sasl_server(server_factory, "SASL_SSL", pki)
    admin_password = password_file(tmp_path, "a", PASSWORD)
    admin = sasl_flags(server, pki, "SCRAM-SHA-512", USER, admin_password)
    bob_password = "bob's own password"
    for mechanism, iterations in [("SCRAM-SHA-512", "8192"), ("SCRAM-SHA-256", "4096")]:
        out = ringlog("user", "add", "bob", "--password-stdin", "--mechanism", mechanism,
                      "--iterations", iterations, *admin, stdin=bob_password + "\n")
        assert out.returncode == 0, out.stderr
        assert f'user "bob": {mechanism} credential stored on {server.bootstrap}' in out.stdout
    assert bob_password not in server.log_text()
    out = ringlog("user", "list", *admin)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "USER   MECHANISM      ITERATIONS",
        "alice  SCRAM-SHA-256  4096",
        "alice  SCRAM-SHA-512  4096",
        "bob    SCRAM-SHA-256  4096",
        "bob    SCRAM-SHA-512  8192",
    ], out.stdout
    assert user_rows(server, admin, "bob") == [
        {"user": "bob", "mechanism": "SCRAM-SHA-256", "iterations": 4096},
        {"user": "bob", "mechanism": "SCRAM-SHA-512", "iterations": 8192},
    ]
    out = ringlog("user", "list", "nobody", *admin)
    assert out.returncode == 1 and "RESOURCE_NOT_FOUND" in out.stderr, out.stderr

    # bob authenticates with confluent-kafka, both mechanisms and PLAIN.
    topic = "online-users"
    out = ringlog("topic", "create", topic, *admin)
    assert out.returncode == 0, out.stderr
    for mechanism in MECHANISMS:
        confluent_round_trip(server, pki, mechanism, "bob", bob_password, topic)

    # The credentials survive a restart.
    server.stop()
    server.start()
    admin = sasl_flags(server, pki, "SCRAM-SHA-512", USER, admin_password)
    assert len(user_rows(server, admin, "bob")) == 2

    # Deleting one mechanism: new connections with it are refused, the
    # other still works, and list no longer shows it.
    out = ringlog("user", "delete", "bob", "--mechanism", "SCRAM-SHA-512", *admin)
    assert out.returncode == 0, out.stderr
    assert 'user "bob": SCRAM-SHA-512 credential deleted' in out.stdout
    refused(server, pki, "SCRAM-SHA-512", "bob", bob_password)
    confluent_round_trip(server, pki, "SCRAM-SHA-256", "bob", bob_password, topic)
    assert user_rows(server, admin, "bob") == [
        {"user": "bob", "mechanism": "SCRAM-SHA-256", "iterations": 4096}]
    out = ringlog("user", "delete", "bob", "--mechanism", "SCRAM-SHA-512", *admin)
    assert out.returncode == 1 and "RESOURCE_NOT_FOUND" in out.stderr, out.stderr
    out = ringlog("user", "delete", "bob", "--mechanism", "SCRAM-SHA-256", *admin)
    assert out.returncode == 0, out.stderr
    refused(server, pki, "SCRAM-SHA-256", "bob", bob_password)
    assert "bob" not in {r["user"] for r in user_rows(server, admin)}

    # ... and stays deleted after a restart.
    server.stop()
    server.start()
    admin = sasl_flags(server, pki, "SCRAM-SHA-512", USER, admin_password)
    assert "bob" not in {r["user"] for r in user_rows(server, admin)}
    refused(server, pki, "PLAIN", "bob", bob_password)
    assert user_rows(server, admin, USER)

    # Bad input is refused before anything is sent, or by the broker.
    out = ringlog("user", "add", "carol", "--password-stdin", "--iterations", "100", *admin,
                  stdin="pw\n")
    assert out.returncode == 2 and "iterations 100 outside 4096..=16384" in out.stderr
    out = ringlog("user", "add", "carol", "--password-stdin", "--data-dir", str(tmp_path),
                  *admin, stdin="pw\n")
    assert out.returncode == 2 and "cannot be used with" in out.stderr, out.stderr
    flags = [f for f in admin if f not in ("--bootstrap", server.bootstrap)]
    out = ringlog("user", "add", "carol", "--password-stdin", *flags, stdin="pw\n")
    assert out.returncode == 2 and "--data-dir" in out.stderr, out.stderr


def test_admin_client_scram_apis(server_factory, pki):
    from confluent_kafka.admin import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )

    server = sasl_server(server_factory, "SASL_SSL", pki)
    admin = AdminClient(confluent_config(server, "SASL_SSL", pki, "SCRAM-SHA-256"))
    upsert = [
        UserScramCredentialUpsertion(
            "dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"dave-pw"),
        UserScramCredentialUpsertion(
            "erin", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 10000), b"erin-pw",
            b"some salt"),
        UserScramCredentialUpsertion(
            "frank", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"frank-pw"),
    ]
    futures = admin.alter_user_scram_credentials(upsert)
    futures["dave"].result(CLIENT_TIMEOUT_S)
    futures["erin"].result(CLIENT_TIMEOUT_S)
    with pytest.raises(confluent_kafka.KafkaException) as err:
        futures["frank"].result(CLIENT_TIMEOUT_S)
    assert err.value.args[0].code() == confluent_kafka.KafkaError.UNACCEPTABLE_CREDENTIAL

    described = admin.describe_user_scram_credentials().result(CLIENT_TIMEOUT_S)
    assert set(described) == {USER, "dave", "erin"}
    infos = {(i.mechanism, i.iterations) for i in described["erin"].scram_credential_infos}
    assert infos == {(ScramMechanism.SCRAM_SHA_512, 10000)}
    named = admin.describe_user_scram_credentials(["dave", "nobody"])
    assert [i.iterations for i in named["dave"].result(CLIENT_TIMEOUT_S)
            .scram_credential_infos] == [4096]
    with pytest.raises(confluent_kafka.KafkaException) as err:
        named["nobody"].result(CLIENT_TIMEOUT_S)
    assert err.value.args[0].code() == confluent_kafka.KafkaError.RESOURCE_NOT_FOUND

    # The new users authenticate (librdkafka salts client-side too).
    for user, mechanism, password in [("dave", "SCRAM-SHA-256", "dave-pw"),
                                      ("erin", "SCRAM-SHA-512", "erin-pw")]:
        config = confluent_config(server, "SASL_SSL", pki, mechanism, user, password)
        create_topic(config, f"topic-of-{user}", 1)

    deleted = admin.alter_user_scram_credentials([
        UserScramCredentialDeletion("dave", ScramMechanism.SCRAM_SHA_256),
        UserScramCredentialDeletion("erin", ScramMechanism.SCRAM_SHA_256),
    ])
    deleted["dave"].result(CLIENT_TIMEOUT_S)
    with pytest.raises(confluent_kafka.KafkaException) as err:
        deleted["erin"].result(CLIENT_TIMEOUT_S)
    assert err.value.args[0].code() == confluent_kafka.KafkaError.RESOURCE_NOT_FOUND
    refused(server, pki, "SCRAM-SHA-256", "dave", "dave-pw")
