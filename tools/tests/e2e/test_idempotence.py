"""Idempotent producers: InitProducerId, duplicate batches answered with
their original offsets and stored once, sequence gaps and stale epochs
refused, and all of it across SIGTERM restarts and kill -9.

* A real librdkafka idempotent producer (confluent-kafka,
  ``enable.idempotence=true``) talks to the broker through a proxy that
  sends every Produce request twice; restarts and a kill -9 land in the
  middle. Every record is read back exactly once, in order, and every
  injected copy got the same answer as the original.
* Raw frames stamp batches by hand to hit each rule: duplicate, gap
  (OUT_OF_ORDER_SEQUENCE_NUMBER), old epoch (INVALID_PRODUCER_EPOCH), and
  a resend recognised after SIGTERM and after kill -9.
* Producer ids answered before a kill -9 are never answered again.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import kafka_wire as wire
from kafka_clients import (
    CLIENT_TIMEOUT_S,
    Record,
    assert_same_records,
    by_partition,
    confluent_consume,
    confluent_producer,
    create_topic,
    make_records,
)
from ringlog_server import wait_until

# Correlation ids of injected copies: far above what a client numbers its
# requests with in a test.
INJECTED_CORRELATION_BASE = 0x40000000


@dataclass
class ProxyStats:
    injected: int = 0
    # (original correlation id, original body, copy body) of every copy
    # whose answer arrived.
    answered: list[tuple[int, bytes, bytes]] = field(default_factory=list)


class DuplicatingProxy:
    """A TCP proxy in front of the broker that forwards every request and,
    after each Produce request with acks != 0, sends the same request again
    under a correlation id of its own. The copy's answer is not passed on;
    it is kept with the original's for comparison. Each client connection
    gets a fresh upstream connection to ``upstream()`` (the broker may have
    restarted on another port); when either side closes, both are closed.
    """

    def __init__(self, upstream: Callable[[], tuple[str, int]]):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stats = ProxyStats()
        self.lock = threading.Lock()
        self.next_copy = INJECTED_CORRELATION_BASE
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.closed = True
        self.listener.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream(), timeout=5)
            except OSError:
                client.close()  # broker down: the client reconnects later
                continue
            server.settimeout(None)
            # Copy correlation id -> original correlation id, and the
            # original's answer once it arrived.
            pending: dict[int, int] = {}
            originals: dict[int, bytes | None] = {}
            args = (client, server, pending, originals)
            threading.Thread(target=self._requests, args=args, daemon=True).start()
            threading.Thread(target=self._responses, args=args, daemon=True).start()

    @staticmethod
    def _read_frame(sock: socket.socket) -> bytes | None:
        head = b""
        while len(head) < 4:
            chunk = sock.recv(4 - len(head))
            if not chunk:
                return None
            head += chunk
        (size,) = struct.unpack(">i", head)
        body = bytearray()
        while len(body) < size:
            chunk = sock.recv(min(1 << 20, size - len(body)))
            if not chunk:
                return None
            body += chunk
        return bytes(body)

    @staticmethod
    def _produce_acks(payload: bytes) -> int:
        """The acks field of a Produce request (header v1, or v2 from
        Produce v9 with a compact transactional id)."""
        r = wire.Reader(payload)
        r.i16()  # api key
        version = r.i16()
        r.i32()  # correlation id
        r.string()  # client id (never compact)
        if version >= 9:
            for _ in range(r.uvarint()):  # header tagged fields
                r.uvarint()
                r.raw(r.uvarint())
            n = r.uvarint()  # compact nullable transactional id
            if n > 0:
                r.raw(n - 1)
        else:
            r.string()
        return r.i16()

    def _close(self, *socks: socket.socket) -> None:
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _requests(self, client, server, pending, originals) -> None:
        try:
            while (payload := self._read_frame(client)) is not None:
                (api_key,) = struct.unpack(">h", payload[:2])
                if api_key != wire.PRODUCE or self._produce_acks(payload) == 0:
                    server.sendall(wire.frame(payload))
                    continue
                (corr,) = struct.unpack(">i", payload[4:8])
                # Registered before sending: the answer may come back first.
                with self.lock:
                    copy_corr = self.next_copy
                    self.next_copy += 1
                    self.stats.injected += 1
                    originals[corr] = None
                    pending[copy_corr] = corr
                copy = payload[:4] + struct.pack(">i", copy_corr) + payload[8:]
                server.sendall(wire.frame(payload) + wire.frame(copy))
        except OSError:
            pass
        finally:
            self._close(client, server)

    def _responses(self, client, server, pending, originals) -> None:
        try:
            while (payload := self._read_frame(server)) is not None:
                (corr,) = struct.unpack(">i", payload[:4])
                with self.lock:
                    original = pending.pop(corr, None)
                    if original is not None:
                        self.stats.answered.append(
                            (original, originals.pop(original), payload[4:])
                        )
                        continue
                    if corr in originals:
                        originals[corr] = payload[4:]
                client.sendall(wire.frame(payload))
        except OSError:
            pass
        finally:
            self._close(client, server)


TOPIC = "idempotent"
PARTITIONS = 4


def test_confluent_idempotent_producer_through_duplicated_sends_and_restarts(server_factory):
    holder: dict = {}
    proxy = DuplicatingProxy(lambda: holder["server"].kafka_addr)
    try:
        server = server_factory("--advertised-listener", proxy.bootstrap)
        holder["server"] = server
        create_topic(proxy.bootstrap, TOPIC, PARTITIONS)
        producer = confluent_producer(
            proxy.bootstrap,
            **{
                "enable.idempotence": True,
                "linger.ms": 2,
                "batch.num.messages": 20,
                "max.in.flight.requests.per.connection": 5,
                "message.timeout.ms": 120_000,
                "retry.backoff.ms": 50,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 500,
            },
        )
        records = make_records("idem", range(PARTITIONS), 300)
        phases = [records[i::3] for i in range(3)]
        delivered: dict[int, Record] = {}
        errors: list = []

        def send(batch: list[Record], start: int) -> None:
            for i, r in enumerate(batch):

                def on_delivery(err, msg, index=start + i, record=r):
                    if err is not None:
                        errors.append((record, err))
                    else:
                        delivered[index] = Record(
                            msg.partition(), record.key, record.value, record.headers, msg.offset()
                        )

                producer.produce(
                    TOPIC,
                    value=r.value,
                    key=r.key,
                    partition=r.partition,
                    headers=list(r.headers) or None,
                    on_delivery=on_delivery,
                )
                producer.poll(0)

        def flush() -> None:
            left = producer.flush(CLIENT_TIMEOUT_S)
            assert left == 0, f"{left} records undelivered; errors {errors[:5]}"

        # Phase 1, then a clean restart between two flushes.
        send(phases[0], 0)
        flush()
        server.restart()
        # Phase 2 goes to the restarted broker with the same producer id:
        # its sequences must continue where the state left them.
        send(phases[1], len(phases[0]))
        flush()
        # Phase 3: kill -9 once its first deliveries are in (the rest in
        # flight or queued), then start again; librdkafka resends what it
        # has no answer for.
        before_phase3 = len(delivered)
        send(phases[2], before_phase3)
        wait_until(
            lambda: producer.poll(0.01) >= 0 and len(delivered) > before_phase3,
            CLIENT_TIMEOUT_S,
            "the first deliveries of phase 3",
        )
        server.kill()
        server.start()
        flush()
        assert not errors, f"delivery failed: {errors[:5]}"

        # Every record once, in the order produced (per partition).
        sent = phases[0] + phases[1] + phases[2]
        expected = by_partition(sent)
        consumed = confluent_consume(proxy.bootstrap, TOPIC, range(PARTITIONS))
        assert_same_records(consumed, expected)
        acked = by_partition(delivered[i] for i in range(len(sent)))
        for p, got in consumed.items():
            assert [r.offset for r in got] == [r.offset for r in acked[p]], (
                f"partition {p}: delivery reports disagree with what is stored"
            )

        # The proxy really doubled the produce traffic, and each copy was
        # answered exactly like its original (same error, same base offset).
        stats = proxy.stats
        assert stats.injected >= 30, f"only {stats.injected} produce requests copied"
        compared = [(c, o, d) for c, o, d in stats.answered if o is not None]
        assert len(compared) >= 20, f"only {len(compared)} copies answered"
        differing = [(c, o.hex(), d.hex()) for c, o, d in compared if o != d]
        assert not differing, f"copies answered differently: {differing[:3]}"

        # The stored batches carry the producer id, and per producer the
        # sequences run without a gap or a repeat.
        for p in range(PARTITIONS):
            batches = wire.fetch_all_batches(server.kafka_addr, TOPIC, p)
            assert batches and all(b.producer_id >= 0 for b in batches), f"partition {p}"
            next_seq: dict[tuple[int, int], int] = {}
            for b in batches:
                key = (b.producer_id, b.producer_epoch)
                assert b.base_sequence == next_seq.get(key, 0), (
                    f"partition {p}: batch at {b.base_offset} has sequence {b.base_sequence}, "
                    f"expected {next_seq.get(key, 0)} for producer {key}"
                )
                next_seq[key] = b.base_sequence + b.record_count
    finally:
        proxy.close()


def test_raw_resends_gaps_and_epochs_across_sigterm_and_kill9(server_factory):
    server = server_factory()
    topic = "idempotent-raw"
    create_topic(server.bootstrap, topic, 1)
    refused = wire.init_producer_id_v0(server.kafka_addr, transactional_id="txn")
    assert refused.error_code == wire.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    granted = wire.init_producer_id_v0(server.kafka_addr)
    assert (granted.error_code, granted.producer_epoch) == (wire.NONE, 0)
    pid = granted.producer_id
    ts = int(time.time() * 1000)

    def batch(epoch: int, seq: int, n: int) -> bytes:
        values = [f"e{epoch}s{seq + i}".encode() for i in range(n)]
        return wire.producer_batch(pid, epoch, seq, values, ts)

    def send(data: bytes) -> tuple[int, int]:
        with wire.KafkaConn(server.kafka_addr) as conn:
            got = wire.produce_v3(conn, topic, 0, data)
        return got.error_code, got.base_offset

    a, b = batch(0, 0, 3), batch(0, 3, 2)
    assert send(a) == (wire.NONE, 0)
    assert send(a) == (wire.NONE, 0), "a resend answers the original offset"
    assert send(b) == (wire.NONE, 3)
    assert send(b) == (wire.NONE, 3)
    assert send(batch(0, 7, 1))[0] == wire.OUT_OF_ORDER_SEQUENCE_NUMBER

    server.restart()  # SIGTERM, start on the same data
    assert send(b) == (wire.NONE, 3), "still a duplicate after a clean restart"
    c = batch(0, 5, 2)
    assert send(c) == (wire.NONE, 5), "the next sequence goes on"

    server.kill()  # kill -9: no snapshot at close, the state is rebuilt
    server.start()
    assert send(c) == (wire.NONE, 5), "still a duplicate after kill -9"
    assert send(batch(0, 8, 1))[0] == wire.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert send(batch(0, 7, 1)) == (wire.NONE, 7)

    # A new epoch starts at sequence 0; the old epoch is then fenced.
    assert send(batch(1, 3, 1))[0] == wire.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert send(batch(1, 0, 2)) == (wire.NONE, 8)
    assert send(batch(0, 8, 1))[0] == wire.INVALID_PRODUCER_EPOCH

    # The log holds each batch once.
    batches = wire.fetch_all_batches(server.kafka_addr, topic, 0)
    assert [(b.base_offset, b.producer_epoch, b.base_sequence) for b in batches] == [
        (0, 0, 0),
        (3, 0, 3),
        (5, 0, 5),
        (7, 0, 7),
        (8, 1, 0),
    ]
    values = [v for b in batches for (_, _, v, _) in b.records()]
    assert values == [f"e0s{i}".encode() for i in range(8)] + [b"e1s0", b"e1s1"]


def test_producer_ids_answered_before_kill9_are_never_answered_again(server_factory):
    server = server_factory()
    answered = []
    for _ in range(25):
        got = wire.init_producer_id_v0(server.kafka_addr)
        assert (got.error_code, got.producer_epoch) == (wire.NONE, 0)
        answered.append(got.producer_id)
    assert len(set(answered)) == len(answered), f"an id answered twice: {answered}"
    server.kill()
    server.start()
    after_kill = [wire.init_producer_id_v0(server.kafka_addr).producer_id for _ in range(5)]
    assert min(after_kill) > max(answered), (answered, after_kill)
    server.restart()
    after_restart = wire.init_producer_id_v0(server.kafka_addr).producer_id
    assert after_restart > max(after_kill), (after_kill, after_restart)
