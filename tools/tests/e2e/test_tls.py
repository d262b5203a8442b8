"""TLS on the Kafka listener (`--security-protocol SSL`): real clients
(confluent-kafka, kafka-python, `ringlog topic`, `ringlog bench`) over TLS,
refusals (a plaintext client on the TLS port, clients without a trusted
certificate when one is required), and start-up failures naming the file.

Every certificate is made by the test with the openssl CLI, in its own
directory: a CA, a server certificate for 127.0.0.1 and localhost, a client
certificate from that CA, and a client certificate from another CA the
broker does not trust.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import confluent_kafka
import kafka
import pytest
from confluent_kafka import TopicPartition

from kafka_wire import API_VERSIONS, ConnectionClosed, api_versions_body, request_frame
from ringlog_server import RinglogServer, ringlog_bin, wait_until

CLIENT_TIMEOUT_S = 60.0
OPENSSL_TIMEOUT_S = 30.0
# The broker's handshake bound (TLS_HANDSHAKE_TIMEOUT_MS) plus slack.
HANDSHAKE_BOUND_S = 10.0 + 10.0
# The subject of the trusted client certificate, as the broker names it.
CLIENT_SUBJECT = "/C=US/O=Example/CN=e2e-writer"
CLIENT_PRINCIPAL = "User:CN=e2e-writer,O=Example,C=US"

@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_client_cert: Path
    other_client_key: Path
    other_ca: Path


def openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_S
    )
    assert proc.returncode == 0, f"openssl {' '.join(args)}:\n{proc.stderr}"


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
        cwd=d,
    )
    return d / f"{name}.pem", d / f"{name}.key"


def make_cert(d: Path, name: str, ca: str, subject: str, extensions: str) -> tuple[Path, Path]:
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
        cwd=d,
    )
    (d / f"{name}.ext").write_text(extensions)
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        cwd=d,
    )
    return d / f"{name}.pem", d / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    assert shutil.which("openssl"), "test_tls.py needs the openssl CLI (ci/e2e.sh installs it)"
    d = tmp_path_factory.mktemp("pki")
    ca, _ = make_ca(d, "ca")
    other_ca, _ = make_ca(d, "other-ca")
    server_cert, server_key = make_cert(
        d, "server", "ca", "/CN=localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    client_cert, client_key = make_cert(
        d, "client", "ca", CLIENT_SUBJECT, "extendedKeyUsage=clientAuth\n"
    )
    other_cert, other_key = make_cert(
        d, "other-client", "other-ca", "/CN=intruder", "extendedKeyUsage=clientAuth\n"
    )
    return Pki(ca, server_cert, server_key, client_cert, client_key, other_cert, other_key, other_ca)


def tls_args(pki: Pki, client_ca: bool = False) -> tuple[str, ...]:
    args = (
        "--security-protocol", "SSL",
        "--tls-cert", str(pki.server_cert),
        "--tls-key", str(pki.server_key),
        "--group-initial-rebalance-delay-ms", "0",
    )
    if client_ca:
        args += ("--tls-client-ca", str(pki.ca))
    return args


def ssl_server(server_factory, pki: Pki, client_ca: bool = False) -> RinglogServer:
    server = server_factory(*tls_args(pki, client_ca), start=False)
    server.extra_env["RINGLOG_LOG"] = "info,ringlog_shard::router=debug"
    return server.start()


def client_flags(pki: Pki, cert: bool = False) -> list[str]:
    flags = ["--security-protocol", "SSL", "--tls-ca", str(pki.ca)]
    if cert:
        flags += ["--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
    return flags


def ringlog(*args: str, timeout: float = CLIENT_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ringlog_bin()), *args], capture_output=True, text=True, timeout=timeout
    )


def confluent_config(server: RinglogServer, pki: Pki, cert: bool = False) -> dict:
    config = {
        "bootstrap.servers": server.bootstrap,
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca),
    }
    if cert:
        config["ssl.certificate.location"] = str(pki.client_cert)
        config["ssl.key.location"] = str(pki.client_key)
    return config


def create_topic(server: RinglogServer, pki: Pki, topic: str, partitions: int, cert: bool = False):
    out = ringlog(
        "topic", "create", topic, "--partitions", str(partitions),
        "--bootstrap", server.bootstrap, *client_flags(pki, cert),
    )
    assert out.returncode == 0, out.stderr


def confluent_produce(config: dict, topic: str, values: list[bytes]) -> None:
    producer = confluent_kafka.Producer({**config, "acks": "all"})
    errors = []
    for v in values:
        producer.produce(topic, v, callback=lambda err, _msg: err and errors.append(err))
    assert producer.flush(CLIENT_TIMEOUT_S) == 0, "records left unacknowledged"
    assert not errors, errors


def test_clients_produce_and_consume_over_ssl(server_factory, pki):
    server = ssl_server(server_factory, pki)
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    create_topic(server, pki, topic, 3)

    # confluent-kafka: produce, then consume as a consumer group.
    config = confluent_config(server, pki)
    values = [f"confluent-{i}".encode() for i in range(300)]
    confluent_produce(config, topic, values)
    consumer = confluent_kafka.Consumer(
        {**config, "group.id": "tls-group", "auto.offset.reset": "earliest",
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

    wait_until(consumed_all, CLIENT_TIMEOUT_S, "the group consumed every record", interval=0)
    consumer.commit(asynchronous=False)
    committed = consumer.committed(
        [TopicPartition(topic, p) for p in range(3)], timeout=CLIENT_TIMEOUT_S
    )
    consumer.close()
    assert sorted(seen) == sorted(values)
    assert sum(tp.offset for tp in committed) == len(values)

    # kafka-python: produce, then read everything back from the beginning.
    ssl_opts = dict(
        bootstrap_servers=server.bootstrap, security_protocol="SSL",
        ssl_cafile=str(pki.ca), ssl_check_hostname=True,
    )
    producer = kafka.KafkaProducer(acks="all", **ssl_opts)
    more = [f"kafka-python-{i}".encode() for i in range(100)]
    for v in more:
        producer.send(topic, v)
    producer.flush(CLIENT_TIMEOUT_S)
    producer.close()
    reader = kafka.KafkaConsumer(consumer_timeout_ms=1000, **ssl_opts)
    reader.assign([kafka.TopicPartition(topic, p) for p in range(3)])
    reader.seek_to_beginning()
    read: list[bytes] = []

    def read_all() -> bool:
        for batch in reader.poll(timeout_ms=500).values():
            read.extend(r.value for r in batch)
        return len(read) >= len(values) + len(more)

    wait_until(read_all, CLIENT_TIMEOUT_S, "kafka-python read every record", interval=0)
    reader.close()
    assert sorted(read) == sorted(values + more)

    # ringlog topic over SSL.
    out = ringlog("topic", "list", "--bootstrap", server.bootstrap, *client_flags(pki))
    assert out.returncode == 0, out.stderr
    assert topic in out.stdout
    out = ringlog("topic", "describe", topic, "--bootstrap", server.bootstrap, *client_flags(pki))
    assert out.returncode == 0, out.stderr

    # ringlog bench over SSL: produce (verified) and consume back.
    out = ringlog(
        "bench", "produce", "--bootstrap", server.bootstrap, *client_flags(pki),
        "--topic", "tls-bench", "--partitions", "2", "--records", "20000", "--quiet",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "verified: 20,000 records acknowledged, 20,000 readable" in out.stdout, out.stdout
    assert f"at {server.bootstrap} over SSL," in out.stderr + out.stdout
    out = ringlog(
        "bench", "consume", "--bootstrap", server.bootstrap, *client_flags(pki),
        "--topic", "tls-bench", "--from", "earliest", "--until-end", "--quiet",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "20,000" in out.stdout, out.stdout

    # Every connection was anonymous: no client certificate was asked for.
    assert server.log_lines("TLS connection", "principal=User:ANONYMOUS")

    # The same CLI without TLS gets no answer it can use, and says so.
    out = ringlog("topic", "list", "--bootstrap", server.bootstrap, "--timeout-ms", "5000")
    assert out.returncode == 1, out.stdout


def request_count(server: RinglogServer) -> float:
    metrics = server.metrics()
    return sum(s.value for s in metrics.find("ringlog_request_duration_seconds_count"))


def test_plaintext_client_on_the_tls_port_is_closed(server_factory, pki):
    server = ssl_server(server_factory, pki)
    before = request_count(server)
    sock = socket.create_connection(server.kafka_addr, timeout=10)
    port = sock.getsockname()[1]
    sock.sendall(request_frame(API_VERSIONS, 0, 1, api_versions_body(0)))
    received = b""
    sock.settimeout(10)
    try:
        while len(received) < 1 << 16:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    except ConnectionResetError:
        pass
    sock.close()
    # At most a TLS alert record (content type 21), never a Kafka answer.
    assert received == b"" or received[0] == 0x15, received[:16]
    wait_until(
        lambda: server.log_lines("TLS handshake failed", f"peer=127.0.0.1:{port}"),
        10, "a WARN naming the plaintext peer",
    )
    assert request_count(server) == before, "a request from the plaintext client was handled"
    # The broker keeps serving TLS clients.
    out = ringlog("topic", "list", "--bootstrap", server.bootstrap, *client_flags(pki))
    assert out.returncode == 0, out.stderr


def test_silent_client_is_closed_after_the_handshake_timeout(server_factory, pki):
    server = ssl_server(server_factory, pki)
    sock = socket.create_connection(server.kafka_addr, timeout=HANDSHAKE_BOUND_S)
    port = sock.getsockname()[1]
    try:
        assert sock.recv(1) == b""
    except ConnectionResetError:
        pass
    sock.close()
    lines = server.log_lines("TLS handshake failed", f"peer=127.0.0.1:{port}")
    assert lines and "no TLS handshake within" in lines[0], lines


def tls_api_versions(server: RinglogServer, ca: Path, cert: Path | None, key: Path | None) -> bytes:
    """Connects with Python's ssl module, sends ApiVersions v0 and returns
    the answer frame; raises on any refusal."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    with socket.create_connection(server.kafka_addr, timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(request_frame(API_VERSIONS, 0, 1, api_versions_body(0)))
            size = sock.recv(4)
            if len(size) < 4:
                raise ConnectionClosed("closed without an answer")
            return size


def test_client_certificates_are_required_and_verified(server_factory, pki):
    server = ssl_server(server_factory, pki, client_ca=True)
    before = request_count(server)
    # No certificate, and one from a CA the broker does not trust.
    for cert, key in [(None, None), (pki.other_client_cert, pki.other_client_key)]:
        with pytest.raises((ssl.SSLError, ConnectionClosed, ConnectionResetError, BrokenPipeError)):
            tls_api_versions(server, pki.ca, cert, key)
    assert request_count(server) == before
    assert len(server.log_lines("TLS handshake failed")) >= 2
    out = ringlog("topic", "list", "--bootstrap", server.bootstrap, *client_flags(pki))
    assert out.returncode == 1 and "CertificateRequired" in out.stderr, out.stderr

    # A trusted certificate works, and its subject is the principal.
    assert tls_api_versions(server, pki.ca, pki.client_cert, pki.client_key)
    topic = f"mtls-{uuid.uuid4().hex[:8]}"
    create_topic(server, pki, topic, 1, cert=True)
    config = confluent_config(server, pki, cert=True)
    confluent_produce(config, topic, [b"signed"] * 10)
    assert server.log_lines("TLS connection", f"principal={CLIENT_PRINCIPAL}")


def serve_error(server_factory, *args: str) -> tuple[int, str]:
    server = server_factory(start=False)
    proc = subprocess.run(
        [*server.command(), *args], capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S
    )
    return proc.returncode, proc.stderr


def test_unusable_tls_settings_fail_at_start(server_factory, pki, tmp_path):
    missing = tmp_path / "missing.pem"
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    cases = [
        (["--tls-cert", str(missing), "--tls-key", str(pki.server_key)], str(missing)),
        (["--tls-cert", str(not_pem), "--tls-key", str(pki.server_key)], str(not_pem)),
        (["--tls-cert", str(pki.server_cert), "--tls-key", str(not_pem)], str(not_pem)),
        (["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.client_key)],
         "does not belong to the certificate"),
        (["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
          "--tls-client-ca", str(missing)], str(missing)),
    ]
    for args, needle in cases:
        code, stderr = serve_error(server_factory, "--security-protocol", "SSL", *args)
        assert code == 1, stderr
        assert stderr.startswith("ringlog serve: --tls-") and needle in stderr, stderr
    code, stderr = serve_error(
        server_factory, "--security-protocol", "SSL", "--tls-cert", str(pki.server_cert)
    )
    assert code == 2 and "--security-protocol SSL needs --tls-key FILE" in stderr, stderr
    code, stderr = serve_error(server_factory, "--security-protocol", "SASL_SSL")
    assert code == 2 and "--security-protocol SASL_SSL needs --tls-cert FILE" in stderr, stderr
