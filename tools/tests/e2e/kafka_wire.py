"""Raw Kafka wire protocol, just enough for the tests that must control the
bytes on the socket: malformed frames, ApiVersions fallback, Fetch
requests whose timing is measured, and idempotent produce (InitProducerId
v0, Produce v3 with hand-stamped producer ids and sequences).

Layouts (all integers big-endian):

* frame: ``i32 size`` followed by ``size`` bytes.
* request header v1: ``i16 api_key, i16 api_version, i32 correlation_id,
  i16-length client_id``; header v2 (flexible APIs) appends an empty
  tagged-field section (one ``0x00`` byte).
* response header v0: ``i32 correlation_id`` (ApiVersions always answers
  with header v0, even for flexible versions).
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

# API keys.
PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
METADATA = 3
API_VERSIONS = 18
INIT_PRODUCER_ID = 22
DESCRIBE_CLIENT_QUOTAS = 48
ALTER_CLIENT_QUOTAS = 49

# Error codes.
NONE = 0
INVALID_REQUEST = 42
UNSUPPORTED_VERSION = 35
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53

# RecordBatch attribute bits 0-2.
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

CLIENT_ID = "ringlog-e2e"


# ---------------------------------------------------------------- encoding


def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    """Classic (non-compact) nullable string: i16 length, -1 for null."""
    if s is None:
        return i16(-1)
    raw = s.encode()
    return i16(len(raw)) + raw


def uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def compact_string(s: str) -> bytes:
    raw = s.encode()
    return uvarint(len(raw) + 1) + raw


def array(items: list[bytes]) -> bytes:
    return i32(len(items)) + b"".join(items)


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


def request_header(
    api_key: int,
    api_version: int,
    correlation_id: int,
    *,
    flexible: bool = False,
    client_id: str | None = CLIENT_ID,
) -> bytes:
    """Request header v1, or v2 when ``flexible`` (adds empty tagged fields)."""
    header = struct.pack(">hhi", api_key, api_version, correlation_id) + string(client_id)
    return header + (b"\x00" if flexible else b"")


def request_frame(
    api_key: int, api_version: int, correlation_id: int, body: bytes, *, flexible: bool = False
) -> bytes:
    return frame(request_header(api_key, api_version, correlation_id, flexible=flexible) + body)


# ---------------------------------------------------------------- decoding


class Reader:
    """Sequential big-endian reader over one response body."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(
                f"truncated: need {n} bytes at {self.pos}, have {len(self.data) - self.pos}"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def _unpack(self, fmt: str):
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    def i8(self) -> int:
        return self._unpack(">b")

    def i16(self) -> int:
        return self._unpack(">h")

    def i32(self) -> int:
        return self._unpack(">i")

    def u32(self) -> int:
        return self._unpack(">I")

    def f64(self) -> float:
        return self._unpack(">d")

    def i64(self) -> int:
        return self._unpack(">q")

    def string(self) -> str | None:
        n = self.i16()
        return None if n < 0 else self._take(n).decode()

    def bytes_(self) -> bytes | None:
        n = self.i32()
        return None if n < 0 else self._take(n)

    def raw(self, n: int) -> bytes:
        return self._take(n)

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self._take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def varint(self) -> int:
        """Zigzag-encoded signed varint (record fields)."""
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def remaining(self) -> int:
        return len(self.data) - self.pos


# ---------------------------------------------------------------- connection


class ConnectionClosed(Exception):
    """The peer closed the connection (EOF or reset) while we read."""


class KafkaConn:
    """One TCP connection speaking raw Kafka frames."""

    def __init__(
        self,
        addr: tuple[str, int],
        timeout: float = 10.0,
        source: tuple[str, int] | None = None,
    ):
        """Connects to ``addr``; from the local ``source`` address when
        given (e.g. ``("127.0.0.2", 0)``: another loopback IP)."""
        self.sock = socket.create_connection(addr, timeout=timeout, source_address=source)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.correlation_id = 0

    def __enter__(self) -> "KafkaConn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def next_correlation_id(self) -> int:
        self.correlation_id += 1
        return self.correlation_id

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_request(
        self, api_key: int, api_version: int, body: bytes, *, flexible: bool = False
    ) -> int:
        corr = self.next_correlation_id()
        self.send_raw(request_frame(api_key, api_version, corr, body, flexible=flexible))
        return corr

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError as e:
                raise ConnectionClosed("connection reset") from e
            if not chunk:
                raise ConnectionClosed(f"EOF after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self, timeout: float | None = None) -> bytes:
        """One response frame without its size prefix."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        (size,) = struct.unpack(">i", self._recv_exact(4))
        assert 0 <= size < 64 << 20, f"implausible response size {size}"
        return self._recv_exact(size)

    def recv_response(self, correlation_id: int, timeout: float | None = None) -> Reader:
        """The body of the next response, after checking its correlation id
        (response header v0)."""
        r = Reader(self.recv_frame(timeout))
        got = r.i32()
        assert got == correlation_id, f"correlation id {got}, expected {correlation_id}"
        return r

    def expect_closed(self, timeout: float = 5.0) -> str:
        """Waits for the server to close this connection without answering.

        Returns ``"eof"`` or ``"reset"``; fails if the server sends any byte
        or keeps the connection open past ``timeout``.
        """
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return "reset"
        except socket.timeout:
            raise AssertionError(
                f"server neither answered nor closed the connection within {timeout} s"
            ) from None
        assert data == b"", f"expected the server to close the connection, got {data[:64]!r}"
        return "eof"


# ---------------------------------------------------------------- ApiVersions


@dataclass
class ApiVersionsV0:
    error_code: int
    apis: dict[int, tuple[int, int]]  # api_key -> (min, max)


def api_versions_body(version: int) -> bytes:
    """ApiVersions request body: empty before v3, client software name and
    version (compact strings) plus empty tags from v3 on."""
    if version >= 3:
        return compact_string(CLIENT_ID) + compact_string("1.0") + b"\x00"
    return b""


def parse_api_versions_v0(r: Reader) -> ApiVersionsV0:
    """ApiVersions response body v0: ``i16 error, i32 count, count x (i16
    key, i16 min, i16 max)`` and nothing after it."""
    error_code = r.i16()
    count = r.i32()
    assert 0 <= count < 1000, f"implausible ApiVersions count {count}"
    apis = {}
    for _ in range(count):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        assert key not in apis, f"API key {key} listed twice"
        apis[key] = (lo, hi)
    assert r.remaining() == 0, f"{r.remaining()} unexpected bytes after the v0 ApiVersions body"
    return ApiVersionsV0(error_code, apis)


# ---------------------------------------------------------------- Metadata v1


@dataclass
class MetadataV1:
    brokers: dict[int, tuple[str, int]]
    controller_id: int
    topics: dict[str, tuple[int, dict[int, int]]]  # name -> (error, {partition: leader})


def metadata_v1_body(topics: list[str] | None) -> bytes:
    """Metadata v1 request: nullable array of topic names (null = all)."""
    if topics is None:
        return i32(-1)
    return array([string(t) for t in topics])


def parse_metadata_v1(r: Reader) -> MetadataV1:
    brokers = {}
    for _ in range(r.i32()):
        node_id, host, port = r.i32(), r.string(), r.i32()
        r.string()  # rack
        brokers[node_id] = (host, port)
    controller_id = r.i32()
    topics = {}
    for _ in range(r.i32()):
        error, name = r.i16(), r.string()
        r.i8()  # is_internal
        partitions = {}
        for _ in range(r.i32()):
            r.i16()  # partition error
            pid, leader = r.i32(), r.i32()
            for _ in range(r.i32()):  # replicas
                r.i32()
            for _ in range(r.i32()):  # isr
                r.i32()
            partitions[pid] = leader
        topics[name] = (error, partitions)
    return MetadataV1(brokers, controller_id, topics)


def metadata_v1(addr: tuple[str, int], topics: list[str] | None = None) -> MetadataV1:
    with KafkaConn(addr) as conn:
        corr = conn.send_request(METADATA, 1, metadata_v1_body(topics))
        return parse_metadata_v1(conn.recv_response(corr))


# ---------------------------------------------------------------- Fetch v4


@dataclass
class FetchedPartition:
    topic: str
    partition: int
    error_code: int
    high_watermark: int
    last_stable_offset: int
    records: bytes


def fetch_v4_body(
    topic: str,
    partition: int,
    offset: int,
    *,
    max_wait_ms: int,
    min_bytes: int = 1,
    max_bytes: int = 16 << 20,
    partition_max_bytes: int = 8 << 20,
) -> bytes:
    """Fetch v4 request: replica_id, max_wait_ms, min_bytes, max_bytes,
    isolation_level, [topic, [partition, fetch_offset, partition_max_bytes]]."""
    partition_entry = i32(partition) + i64(offset) + i32(partition_max_bytes)
    topic_entry = string(topic) + array([partition_entry])
    return (
        i32(-1)
        + i32(max_wait_ms)
        + i32(min_bytes)
        + i32(max_bytes)
        + i8(0)  # READ_UNCOMMITTED
        + array([topic_entry])
    )


def parse_fetch_v4(r: Reader) -> list[FetchedPartition]:
    """Fetch v4 response: throttle_time_ms, [topic, [partition, error,
    high_watermark, last_stable_offset, aborted_transactions, records]]."""
    r.i32()  # throttle_time_ms
    out = []
    for _ in range(r.i32()):
        topic = r.string()
        for _ in range(r.i32()):
            partition, error = r.i32(), r.i16()
            hw, lso = r.i64(), r.i64()
            aborted = r.i32()
            for _ in range(max(aborted, 0)):
                r.i64(), r.i64()
            records = r.bytes_() or b""
            out.append(FetchedPartition(topic, partition, error, hw, lso, records))
    assert r.remaining() == 0, f"{r.remaining()} unexpected bytes after the Fetch v4 body"
    return out


def fetch_v4(
    addr: tuple[str, int], topic: str, partition: int, offset: int, *, max_wait_ms: int = 100
) -> FetchedPartition:
    """One Fetch v4 round trip for a single partition."""
    with KafkaConn(addr, timeout=max_wait_ms / 1000 + 10) as conn:
        corr = conn.send_request(
            FETCH, 4, fetch_v4_body(topic, partition, offset, max_wait_ms=max_wait_ms)
        )
        (part,) = parse_fetch_v4(conn.recv_response(corr))
    assert (part.topic, part.partition) == (topic, partition)
    return part


# ---------------------------------------------------------------- RecordBatch


@dataclass
class Batch:
    """A RecordBatch (magic 2) header, and its records when uncompressed."""

    base_offset: int
    last_offset_delta: int
    magic: int
    attributes: int
    record_count: int
    payload: bytes = field(repr=False)
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1

    @property
    def codec(self) -> int:
        return self.attributes & 0x07

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    def records(self) -> list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes]]]]:
        """(offset, key, value, headers) of each record; uncompressed batches only."""
        assert self.codec == 0, "records() decodes uncompressed batches only"
        r = Reader(self.payload)
        out = []
        for _ in range(self.record_count):
            length = r.varint()
            rec = Reader(r.raw(length))
            rec.i8()  # attributes
            rec.varint()  # timestamp delta
            offset_delta = rec.varint()
            klen = rec.varint()
            key = None if klen < 0 else rec.raw(klen)
            vlen = rec.varint()
            value = None if vlen < 0 else rec.raw(vlen)
            headers = []
            for _ in range(rec.varint()):
                hk = rec.raw(rec.varint()).decode()
                hlen = rec.varint()
                headers.append((hk, None if hlen < 0 else rec.raw(hlen)))
            out.append((self.base_offset + offset_delta, key, value, headers))
        return out


# base_offset i64, batch_length i32: the 12 bytes before batch_length counts.
BATCH_PREFIX = 12
# From partition_leader_epoch to records_count inclusive.
BATCH_HEADER_AFTER_LENGTH = 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4


def parse_batches(records: bytes) -> list[Batch]:
    """Every whole RecordBatch in a Fetch response's records field; a
    partial batch at the end (allowed by the protocol) is ignored."""
    batches = []
    r = Reader(records)
    while r.remaining() >= BATCH_PREFIX:
        base_offset = r.i64()
        length = r.i32()
        if r.remaining() < length:
            break
        body = Reader(r.raw(length))
        body.i32()  # partition leader epoch
        magic = body.i8()
        assert magic == 2, f"batch at offset {base_offset} has magic {magic}"
        body.u32()  # crc
        attributes = body.i16()
        last_offset_delta = body.i32()
        body.i64(), body.i64()  # first / max timestamp
        producer_id, producer_epoch, base_sequence = body.i64(), body.i16(), body.i32()
        count = body.i32()
        payload = body.raw(body.remaining())
        batches.append(
            Batch(
                base_offset,
                last_offset_delta,
                magic,
                attributes,
                count,
                payload,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                base_sequence=base_sequence,
            )
        )
    return batches


def fetch_all_batches(
    addr: tuple[str, int], topic: str, partition: int, start: int = 0, deadline_s: float = 30.0
) -> list[Batch]:
    """Every batch of a partition from ``start`` to the high watermark,
    following the offsets over as many Fetch v4 requests as needed."""
    batches: list[Batch] = []
    offset = start
    deadline = time.monotonic() + deadline_s
    while True:
        part = fetch_v4(addr, topic, partition, offset)
        assert part.error_code == NONE, f"{topic}/{partition}: fetch error {part.error_code}"
        got = [b for b in parse_batches(part.records) if b.last_offset >= offset]
        batches += got
        if got:
            offset = got[-1].last_offset + 1
        if offset >= part.high_watermark:
            return batches
        assert time.monotonic() < deadline, (
            f"{topic}/{partition}: stuck at offset {offset} below high watermark "
            f"{part.high_watermark}"
        )


# ---------------------------------------------------------------- idempotent produce


@dataclass
class InitProducerIdV0:
    error_code: int
    producer_id: int
    producer_epoch: int


def init_producer_id_v0(
    addr: tuple[str, int], transactional_id: str | None = None
) -> InitProducerIdV0:
    """InitProducerId v0: request ``transactional_id (nullable string),
    transaction_timeout_ms (i32)``; response ``throttle_time_ms, error_code
    (i16), producer_id (i64), producer_epoch (i16)``."""
    with KafkaConn(addr) as conn:
        corr = conn.send_request(INIT_PRODUCER_ID, 0, string(transactional_id) + i32(60_000))
        r = conn.recv_response(corr)
    r.i32()  # throttle_time_ms
    out = InitProducerIdV0(r.i16(), r.i64(), r.i16())
    assert r.remaining() == 0, f"{r.remaining()} unexpected bytes after InitProducerId v0"
    return out


def producer_batch(
    producer_id: int, epoch: int, base_sequence: int, values: list[bytes], timestamp_ms: int
) -> bytes:
    """An uncompressed RecordBatch v2 stamped with an idempotent producer's
    id, epoch and first sequence (kafka-python's builder computes the
    CRC-32C)."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=producer_id,
        producer_epoch=epoch,
        base_sequence=base_sequence,
        batch_size=1 << 20,
    )
    for i, value in enumerate(values):
        assert builder.append(i, timestamp_ms, None, value, []) is not None
    return bytes(builder.build())


@dataclass
class ProducedPartition:
    topic: str
    partition: int
    error_code: int
    base_offset: int


def produce_v3(
    conn: KafkaConn, topic: str, partition: int, batch: bytes, timeout: float = 30.0
) -> ProducedPartition:
    """One Produce v3 round trip (acks=all) of one batch to one partition.
    Request: ``transactional_id, acks (i16), timeout_ms (i32), [topic,
    [partition, records (bytes)]]``; response: ``[topic, [partition,
    error_code, base_offset, log_append_time]], throttle_time_ms``."""
    body = (
        string(None)
        + i16(-1)
        + i32(int(timeout * 1000))
        + array([string(topic) + array([i32(partition) + i32(len(batch)) + batch])])
    )
    corr = conn.send_request(PRODUCE, 3, body)
    r = conn.recv_response(corr, timeout=timeout)
    results = []
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            index, error_code, base_offset = r.i32(), r.i16(), r.i64()
            r.i64()  # log_append_time
            results.append(ProducedPartition(name, index, error_code, base_offset))
    r.i32()  # throttle_time_ms
    assert r.remaining() == 0, f"{r.remaining()} unexpected bytes after Produce v3"
    (got,) = results
    assert (got.topic, got.partition) == (topic, partition), got
    return got


# ---------------------------------------------------------------- client quotas

# A quota entity as Kafka's wire spells it: (entity type, name), a None
# name being the type's default entity.
Entity = list[tuple[str, "str | None"]]


def _entity(entity: Entity) -> bytes:
    return array([string(kind) + string(name) for kind, name in entity])


def _read_entity(r: Reader) -> Entity:
    return [(r.string(), r.string()) for _ in range(r.i32())]


def alter_client_quotas_v0(
    addr: tuple[str, int],
    entries: list[tuple[Entity, list[tuple[str, float, bool]]]],
    validate_only: bool = False,
) -> list[tuple[int, str | None, Entity]]:
    """AlterClientQuotas v0: request ``entries [entity [type, name],
    ops [key, value f64, remove bool]], validate_only bool``; response
    ``throttle_time_ms, entries [error_code, error_message, entity]``.
    Returns ``(error_code, error_message, entity)`` per entry."""
    body = array(
        [
            _entity(entity)
            + array([string(key) + struct.pack(">d", value) + i8(remove) for key, value, remove in ops])
            for entity, ops in entries
        ]
    ) + i8(validate_only)
    with KafkaConn(addr) as conn:
        corr = conn.send_request(ALTER_CLIENT_QUOTAS, 0, body)
        r = conn.recv_response(corr)
    r.i32()  # throttle_time_ms
    out = [(r.i16(), r.string(), _read_entity(r)) for _ in range(r.i32())]
    assert r.remaining() == 0, f"{r.remaining()} unexpected bytes after AlterClientQuotas v0"
    return out


def describe_client_quotas_v0(
    addr: tuple[str, int], components: list[tuple[str, int, "str | None"]], strict: bool = False
) -> tuple[int, str | None, list[tuple[Entity, dict[str, float]]]]:
    """DescribeClientQuotas v0: request ``components [entity_type,
    match_type i8, match], strict bool``; response ``throttle_time_ms,
    error_code, error_message, entries [entity, values [key, value f64]]``
    (entries null on error)."""
    body = array([string(kind) + i8(match_type) + string(name) for kind, match_type, name in components])
    body += i8(strict)
    with KafkaConn(addr) as conn:
        corr = conn.send_request(DESCRIBE_CLIENT_QUOTAS, 0, body)
        r = conn.recv_response(corr)
    r.i32()  # throttle_time_ms
    error_code, message = r.i16(), r.string()
    entries = []
    for _ in range(max(r.i32(), 0)):
        entity = _read_entity(r)
        values = {r.string(): r.f64() for _ in range(r.i32())}
        entries.append((entity, values))
    assert r.remaining() == 0, f"{r.remaining()} unexpected bytes after DescribeClientQuotas v0"
    return error_code, message, entries
